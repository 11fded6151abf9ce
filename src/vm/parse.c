/* parse.c - the parser of the weft language: a recursive descent from the
 * tokens of lex.c to the tree of ast.h, and the tree's printer (parse.h).
 *
 * Errors. A parse function returns NULL after reporting an error; its
 * callers return NULL in turn up to the loop of a block, a clause list or
 * the module, which resynchronises (vm_sync: skips to the next newline or
 * `;` at its own bracket depth, or to a closer of an enclosing bracket) and
 * goes on with the next statement. Between the error and the
 * resynchronisation the parser is in panic: further errors are not
 * reported (they would be echoes of the first). Lexical errors are always
 * reported (the lexer found them in the bytes; the lexer then gives a
 * best-effort token). The errors are kept sorted by position, at most one
 * per position and VM_DIAG_MAX in all; at VM_DIAG_MAX the token stream
 * ends.
 *
 * Recovery after unbalanced brackets: a declaration keyword (`fn`, `mvar`,
 * `import`) in column 1 inside a block ends that block as unclosed, and at
 * top level `fn`, `let`, `mvar` or `import` in column 1 ends the skipping
 * of a broken declaration and forgets the lexer's open brackets, so one
 * missing `}` costs one error, not the rest of the file.
 *
 * Depth. The recursion of the parser goes through vm_enter at every
 * expression, pattern and prefix operator, so the C stack holds at most
 * VM_PARSE_DEPTH of those (a few frames each: at the limit about 100 KiB
 * of stack at -O2, more under sanitizers, so parse on a thread's stack or
 * a coroutine of 256 KiB or more). Left-associative chains
 * (`a + b + ...`, `f(x)(y)...`) build deep trees without recursing, so once
 * the parse is clean a pass with its own stack checks that no node is
 * deeper than VM_PARSE_DEPTH, the promise of ast.h to the compiler.
 */
#include "ast.h"
#include "arena.h"
#include "lex.h"
#include "parse.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct vm_parser {
	vm_lexer lx;
	vm_token tok;  /* the current token */
	vm_token next; /* the one after it, if has_next */
	bool has_next;
	bool panic;	    /* an error was reported and not yet resynchronised */
	bool oom;	    /* an allocation failed: the parse is abandoned */
	bool no_pipe;	    /* `|` ends the expression (list elements, a map's base) */
	bool range_ok;	    /* `..` may follow the expression (a for's iterable) */
	unsigned depth;	    /* vm_enter nesting */
	unsigned long ntok; /* tokens consumed, to check that recovery moves on */
	struct vm_arena *arena;
	vm_diag *diags;
	uint32_t ndiags;
} vm_parser;

typedef struct vm_nodes {
	vm_node **v;
	uint32_t n, cap;
} vm_nodes;

/* ---- diagnostics */

static void vm_diag_add(vm_parser *p, uint32_t line, uint32_t col, const char *msg)
{
	if (p->ndiags >= VM_DIAG_MAX)
		return;
	uint32_t k = p->ndiags;
	for (uint32_t j = 0; j < p->ndiags; j++)
		if (p->diags[j].line == line && p->diags[j].col == col)
			return;
	while (k > 0 && (p->diags[k - 1].line > line || (p->diags[k - 1].line == line && p->diags[k - 1].col > col))) {
		p->diags[k] = p->diags[k - 1];
		k--;
	}
	p->diags[k].line = line;
	p->diags[k].col = col;
	snprintf(p->diags[k].msg, sizeof p->diags[k].msg, "%s", msg);
	p->ndiags++;
}

/* A lexical error: always reported, and the parser's own errors in the
 * statement are taken as its echoes (panic, until the statement ends). */
static void vm_lex_report(void *ctx, uint32_t line, uint32_t col, const char *msg)
{
	vm_parser *p = ctx;
	vm_diag_add(p, line, col, msg);
	p->panic = true;
}

static void vm_error_at(vm_parser *p, uint32_t line, uint32_t col, const char *fmt, ...)
{
	if (p->panic)
		return;
	p->panic = true;
	char msg[sizeof p->diags[0].msg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	vm_diag_add(p, line, col, msg);
}

#define vm_error(p, fmt, ...) vm_error_at((p), (p)->tok.line, (p)->tok.col, fmt, __VA_ARGS__)

/* How the current token is named in a message: its text in backquotes,
 * or "a string", "newline", "end of input". */
static const char *vm_found(vm_parser *p, char *buf, size_t cap)
{
	const vm_token *t = &p->tok;
	switch (t->kind) {
	case VM_T_EOF:
	case VM_T_NEWLINE:
	case VM_T_STR:
		return vm_tok_name(t->kind);
	default:
		if (t->srclen > 24)
			snprintf(buf, cap, "`%.20s...`", t->src);
		else
			snprintf(buf, cap, "`%.*s`", (int)t->srclen, t->src);
		return buf;
	}
}

/* "expected WHAT, found TOKEN" at the current token. */
static void vm_expected(vm_parser *p, const char *what)
{
	char buf[40];
	vm_error(p, "expected %s, found %s", what, vm_found(p, buf, sizeof buf));
}

/* ---- tokens */

static void vm_lex(vm_parser *p, vm_token *t)
{
	if (p->ndiags >= VM_DIAG_MAX || p->oom) {
		/* Stop: an end of input at the last position. */
		if (t != &p->tok)
			*t = p->tok;
		t->kind = VM_T_EOF;
		t->srclen = 0;
		t->depth = 0;
		return;
	}
	vm_lex_next(&p->lx, t);
	if (p->lx.oom)
		p->oom = true;
}

static void vm_advance(vm_parser *p)
{
	p->ntok++;
	if (p->has_next) {
		p->tok = p->next;
		p->has_next = false;
	} else {
		vm_lex(p, &p->tok);
	}
}

static const vm_token *vm_peek(vm_parser *p)
{
	if (!p->has_next) {
		vm_lex(p, &p->next);
		p->has_next = true;
	}
	return &p->next;
}

static bool vm_accept(vm_parser *p, unsigned kind)
{
	if (p->tok.kind != kind)
		return false;
	vm_advance(p);
	return true;
}

/* Consumes a token of the kind, or reports "expected `)` WHERE, found X". */
static bool vm_expect(vm_parser *p, unsigned kind, const char *where)
{
	if (vm_accept(p, kind))
		return true;
	char what[160];
	snprintf(what, sizeof what, "%s %s", vm_tok_name(kind), where);
	vm_expected(p, what);
	return false;
}

/* ---- nodes */

static vm_node *vm_node_new(vm_parser *p, unsigned kind, uint32_t line, uint32_t col)
{
	vm_node *n = vm_arena_alloc(p->arena, sizeof *n);
	if (!n) {
		p->oom = true;
		return NULL;
	}
	memset(n, 0, sizeof *n);
	n->kind = (uint8_t)kind;
	n->line = line;
	n->col = col;
	return n;
}

/* A node at the current token. */
static vm_node *vm_node_here(vm_parser *p, unsigned kind)
{
	return vm_node_new(p, kind, p->tok.line, p->tok.col);
}

/* A node at the position of another. */
static vm_node *vm_node_at(vm_parser *p, unsigned kind, const vm_node *at)
{
	return vm_node_new(p, kind, at->line, at->col);
}

static bool vm_push(vm_parser *p, vm_nodes *l, vm_node *n)
{
	if (l->n == l->cap) {
		if (l->cap >= UINT32_MAX / 2) {
			p->oom = true;
			return false;
		}
		uint32_t cap = l->cap ? l->cap * 2 : 4;
		vm_node **v = vm_arena_alloc(p->arena, (size_t)cap * sizeof *v);
		if (!v) {
			p->oom = true;
			return false;
		}
		if (l->n)
			memcpy(v, l->v, (size_t)l->n * sizeof *v);
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = n;
	return true;
}

static void vm_set_kids(vm_node *n, const vm_nodes *l)
{
	n->kids = l->v;
	n->nkids = l->n;
}

/* Names the node with the current token's text (a VM_T_NAME or VM_T_ATOM),
 * copied NUL-terminated into the arena. */
static bool vm_take_name(vm_parser *p, vm_node *n)
{
	char *s = vm_arena_strdup(p->arena, p->tok.s, p->tok.len);
	if (!s) {
		p->oom = true;
		return false;
	}
	n->s = s;
	n->len = p->tok.len;
	return true;
}

/* A VM_N_NAME (or kind) node from the current VM_T_NAME token, consumed. */
static vm_node *vm_name_node(vm_parser *p, unsigned kind)
{
	assert(p->tok.kind == VM_T_NAME);
	vm_node *n = vm_node_here(p, kind);
	if (!n || !vm_take_name(p, n))
		return NULL;
	vm_advance(p);
	return n;
}

/* A node of the kind at the current token (a keyword), which is consumed,
 * named by the name that must follow it (else "expected WHAT"). */
static vm_node *vm_keyword_named(vm_parser *p, unsigned kind, const char *what)
{
	vm_node *n = vm_node_here(p, kind);
	if (!n)
		return NULL;
	vm_advance(p);
	if (p->tok.kind != VM_T_NAME) {
		vm_expected(p, what);
		return NULL;
	}
	if (!vm_take_name(p, n))
		return NULL;
	vm_advance(p);
	return n;
}

static bool vm_enter(vm_parser *p)
{
	if (p->depth >= VM_PARSE_DEPTH) {
		vm_error(p, "nesting too deep (more than %d levels)", VM_PARSE_DEPTH);
		return false;
	}
	p->depth++;
	return true;
}

static void vm_leave(vm_parser *p)
{
	assert(p->depth > 0);
	p->depth--;
}

/* ---- recovery */

static bool vm_is_sep(unsigned kind)
{
	return kind == VM_T_NEWLINE || kind == VM_T_SEMI;
}

/* A declaration keyword at the start of a line (recovery, see the top). */
static bool vm_decl_at_col1(vm_parser *p, bool with_let)
{
	if (p->tok.col != 1)
		return false;
	switch (p->tok.kind) {
	case VM_T_FN:
		return vm_peek(p)->kind == VM_T_NAME;
	case VM_T_LET:
		return with_let;
	case VM_T_MVAR:
	case VM_T_IMPORT:
		return true;
	default:
		return false;
	}
}

/* Skips to the next statement boundary at depth (a newline or `;`, and a
 * `,` too if comma) or to a closer of an enclosing bracket (a token whose
 * depth is below), without consuming it. */
static void vm_sync(vm_parser *p, uint32_t depth, bool comma)
{
	for (;;) {
		unsigned k = p->tok.kind;
		if (k == VM_T_EOF || p->tok.depth < depth)
			return;
		if (p->tok.depth == depth && (k == VM_T_NEWLINE || k == VM_T_SEMI || (comma && k == VM_T_COMMA)))
			return;
		if (vm_decl_at_col1(p, false))
			return;
		vm_advance(p);
	}
}

/* After a statement of a block or a clause of a match, receive or catch
 * (clauses: also `,` separates), at depth, that began at token number
 * start: checks that a separator or the closing `}` follows it (ok: it
 * parsed), and after an error resynchronises. Returns false if the
 * block or clause list is cut short (in panic still: a closer of an
 * enclosing bracket, or a declaration in column 1, comes first). */
static bool vm_item_end(vm_parser *p, bool ok, uint32_t depth, bool clauses, unsigned long start)
{
	unsigned k = p->tok.kind;
	if (ok && !vm_is_sep(k) && !(clauses && k == VM_T_COMMA) && k != VM_T_RBRACE && k != VM_T_EOF) {
		vm_expected(p, clauses ? "newline or `,` after the clause" : "newline or `;` after the statement");
		ok = false;
	}
	if (!ok) {
		if (p->oom)
			return false;
		vm_sync(p, depth, clauses);
		if ((p->tok.depth < depth && p->tok.kind != VM_T_RBRACE) || vm_decl_at_col1(p, false))
			return false;
		if (p->ntok == start && p->tok.kind != VM_T_RBRACE && p->tok.kind != VM_T_EOF)
			vm_advance(p);
	}
	p->panic = false;
	return true;
}

/* ---- expressions */

static vm_node *vm_parse_expr_in(vm_parser *p, bool no_pipe, bool range_ok);
static vm_node *vm_parse_block(vm_parser *p, const char *where);
static vm_node *vm_parse_pattern(vm_parser *p);
static vm_node *vm_parse_stmt(vm_parser *p);
static vm_node *vm_parse_unary(vm_parser *p);

static vm_node *vm_parse_expr(vm_parser *p)
{
	return vm_parse_expr_in(p, false, false);
}

/* -LITERAL: the literal node at the `-` (line, col), negated. */
static vm_node *vm_negate(vm_parser *p, vm_node *a, uint32_t line, uint32_t col)
{
	if (a->kind == VM_N_INT) {
		if (a->i == INT64_MIN) {
			vm_error_at(p, line, col, "integer literal too large (the negation of -9223372036854775808)");
			return NULL;
		}
		a->i = -a->i;
	} else if (a->kind == VM_N_FLOAT) {
		a->f = -a->f;
	} else {
		vm_node *n = vm_node_new(p, VM_N_NEG, line, col);
		if (n)
			n->a = a;
		return n;
	}
	a->line = line;
	a->col = col;
	return a;
}

/* The current VM_T_INT or VM_T_FLOAT token as a literal node, consumed;
 * neg: under a unary minus (at line, col), which is folded into it. */
static vm_node *vm_number(vm_parser *p, bool neg, uint32_t line, uint32_t col)
{
	vm_token t = p->tok;
	assert(t.kind == VM_T_INT || t.kind == VM_T_FLOAT);
	if (t.big && !neg) {
		vm_error(p, "%s", "integer literal too large");
		return NULL;
	}
	vm_node *n = vm_node_new(p, t.kind == VM_T_INT ? VM_N_INT : VM_N_FLOAT, neg ? line : t.line, neg ? col : t.col);
	if (!n)
		return NULL;
	vm_advance(p);
	if (t.kind == VM_T_FLOAT)
		n->f = neg ? -t.f : t.f;
	else if (t.big)
		n->i = INT64_MIN;
	else
		n->i = neg ? -t.i : t.i;
	return n;
}

/* The literals common to expressions and patterns (and a map pattern's
 * keys): numbers, strings, atoms, nil, true, false; NULL (no error) if the
 * current token is none. */
static vm_node *vm_literal(vm_parser *p)
{
	vm_node *n;
	switch (p->tok.kind) {
	case VM_T_INT:
	case VM_T_FLOAT:
		return vm_number(p, false, 0, 0);
	case VM_T_STR:
		n = vm_node_here(p, VM_N_STR);
		if (!n)
			return NULL;
		n->s = p->tok.s;
		n->len = p->tok.len;
		vm_advance(p);
		return n;
	case VM_T_ATOM:
		n = vm_node_here(p, VM_N_ATOM);
		if (!n || !vm_take_name(p, n))
			return NULL;
		vm_advance(p);
		return n;
	case VM_T_NIL:
	case VM_T_TRUE:
	case VM_T_FALSE:
		n = vm_node_here(p, p->tok.kind == VM_T_NIL    ? VM_N_NIL
				    : p->tok.kind == VM_T_TRUE ? VM_N_TRUE
							       : VM_N_FALSE);
		if (n)
			vm_advance(p);
		return n;
	default:
		return NULL;
	}
}

static bool vm_is_literal_start(unsigned kind)
{
	switch (kind) {
	case VM_T_INT:
	case VM_T_FLOAT:
	case VM_T_STR:
	case VM_T_ATOM:
	case VM_T_NIL:
	case VM_T_TRUE:
	case VM_T_FALSE:
		return true;
	default:
		return false;
	}
}

/* `(params)` into l. */
static bool vm_parse_params(vm_parser *p, vm_nodes *l, const char *where)
{
	if (!vm_expect(p, VM_T_LPAREN, where))
		return false;
	while (p->tok.kind != VM_T_RPAREN) {
		if (p->tok.kind != VM_T_NAME) {
			vm_expected(p, "a parameter name");
			return false;
		}
		vm_node *n = vm_name_node(p, VM_N_NAME);
		if (!n || !vm_push(p, l, n))
			return false;
		if (!vm_accept(p, VM_T_COMMA))
			break;
	}
	return vm_expect(p, VM_T_RPAREN, "after the parameters");
}

/* A clause's or an `after`'s body: a `{ block }`, or one statement (an
 * assignment or a let is wrapped in a block of its own). */
static vm_node *vm_parse_body(vm_parser *p)
{
	if (p->tok.kind == VM_T_LBRACE)
		return vm_parse_block(p, "");
	vm_node *s = vm_parse_stmt(p);
	if (!s)
		return NULL;
	switch (s->kind) {
	case VM_N_LET:
	case VM_N_VAR:
	case VM_N_ASSIGN:
	case VM_N_INDEX_ASSIGN: {
		vm_node *b = vm_node_at(p, VM_N_BLOCK, s);
		if (!b)
			return NULL;
		vm_nodes l = {0};
		if (!vm_push(p, &l, s))
			return NULL;
		vm_set_kids(b, &l);
		return b;
	}
	default:
		return s;
	}
}

/* The clauses of match, receive (with after) and catch, from `{` to `}`. */
static bool vm_parse_clauses(vm_parser *p, vm_node *owner, const char *where)
{
	bool receive = owner->kind == VM_N_RECEIVE, after = false;
	vm_token open = p->tok;
	if (!vm_expect(p, VM_T_LBRACE, where))
		return false;
	uint32_t depth = open.depth + 1;
	vm_nodes l = {0};
	for (;;) {
		while (vm_is_sep(p->tok.kind) || p->tok.kind == VM_T_COMMA)
			vm_advance(p);
		if (vm_accept(p, VM_T_RBRACE))
			break;
		if (p->tok.kind == VM_T_EOF) {
			char what[80];
			snprintf(what, sizeof what, "`}` to close the clauses opened at line %" PRIu32, open.line);
			vm_expected(p, what);
			return false;
		}
		unsigned long start = p->ntok;
		bool ok = false;
		if (p->tok.kind == VM_T_AFTER && receive && !after) {
			vm_advance(p);
			vm_node *ms = vm_parse_expr(p);
			if (ms && vm_expect(p, VM_T_ARROW, "after the timeout of `after`")) {
				vm_node *body = vm_parse_body(p);
				if (body) {
					owner->a = ms;
					owner->b = body;
					after = ok = true;
				}
			}
		} else if (p->tok.kind == VM_T_AFTER) {
			vm_error(p, "%s",
				 receive ? "`receive` takes one `after` clause" : "`after` belongs to `receive`");
		} else if (after) {
			vm_error(p, "%s", "`after` must be the last clause of `receive`");
		} else {
			vm_node *pat = vm_parse_pattern(p);
			vm_node *cl = pat ? vm_node_at(p, VM_N_CLAUSE, pat) : NULL;
			if (cl) {
				cl->a = pat;
				bool guard_ok = true;
				if (vm_accept(p, VM_T_IF))
					guard_ok = (cl->b = vm_parse_expr(p)) != NULL;
				if (guard_ok &&
				    vm_expect(p, VM_T_ARROW, cl->b ? "after the guard" : "after the pattern")) {
					cl->c = vm_parse_body(p);
					ok = cl->c && vm_push(p, &l, cl);
				}
			}
		}
		if (!vm_item_end(p, ok, depth, true, start))
			return false;
	}
	vm_set_kids(owner, &l);
	return true;
}

/* ---- tuples and lists, in expressions and patterns alike */

/* Parses one element; in_list: a list's element (before a possible `|`). */
typedef vm_node *vm_item_fn(vm_parser *p, bool in_list);

static vm_node *vm_expr_item(vm_parser *p, bool in_list)
{
	return vm_parse_expr_in(p, in_list, false);
}

static vm_node *vm_pattern_item(vm_parser *p, bool in_list)
{
	(void)in_list;
	return vm_parse_pattern(p);
}

/* `()`, `(x)` (just x), `(x,)`, `(a, b)`; what: "" or " pattern". */
static vm_node *vm_parse_tuple(vm_parser *p, vm_item_fn *item, const char *what)
{
	vm_token open = p->tok;
	char where[40];
	vm_advance(p);
	vm_nodes l = {0};
	if (p->tok.kind != VM_T_RPAREN) {
		vm_node *first = item(p, false);
		if (!first)
			return NULL;
		if (!vm_accept(p, VM_T_COMMA))
			return vm_expect(p, VM_T_RPAREN, "to close the parenthesis") ? first : NULL;
		if (!vm_push(p, &l, first))
			return NULL;
		while (p->tok.kind != VM_T_RPAREN) {
			vm_node *e = item(p, false);
			if (!e || !vm_push(p, &l, e))
				return NULL;
			if (!vm_accept(p, VM_T_COMMA))
				break;
		}
	}
	snprintf(where, sizeof where, "to close the tuple%s", what);
	if (!vm_expect(p, VM_T_RPAREN, where))
		return NULL;
	vm_node *n = vm_node_new(p, VM_N_TUPLE, open.line, open.col);
	if (n)
		vm_set_kids(n, &l);
	return n;
}

/* `[a, b]`, `[a, b | tail]`; what: "" or " pattern". */
static vm_node *vm_parse_list(vm_parser *p, vm_item_fn *item, const char *what)
{
	vm_node *n = vm_node_here(p, VM_N_LIST);
	char where[48];
	if (!n)
		return NULL;
	vm_advance(p);
	vm_nodes l = {0};
	while (p->tok.kind != VM_T_RBRACKET) {
		vm_node *e = item(p, true);
		if (!e || !vm_push(p, &l, e))
			return NULL;
		if (vm_accept(p, VM_T_BAR)) {
			if (!(n->a = item(p, false)))
				return NULL;
			break;
		}
		if (!vm_accept(p, VM_T_COMMA))
			break;
	}
	vm_set_kids(n, &l);
	snprintf(where, sizeof where, "%s the list%s", n->a ? "after the tail of" : "to close", what);
	return vm_expect(p, VM_T_RBRACKET, where) ? n : NULL;
}

static vm_node *vm_parse_if(vm_parser *p)
{
	vm_node *n = vm_node_here(p, VM_N_IF);
	if (!n)
		return NULL;
	vm_advance(p);
	if (!(n->a = vm_parse_expr(p)) || !(n->b = vm_parse_block(p, "after the condition of `if`")))
		return NULL;
	if (!vm_accept(p, VM_T_ELSE))
		return n;
	if (p->tok.kind == VM_T_IF) {
		if (!vm_enter(p))
			return NULL;
		n->c = vm_parse_if(p);
		vm_leave(p);
	} else if (p->tok.kind == VM_T_LBRACE) {
		n->c = vm_parse_block(p, "");
	} else {
		vm_expected(p, "`{` or `if` after `else`");
	}
	return n->c ? n : NULL;
}

static vm_node *vm_parse_primary(vm_parser *p)
{
	vm_node *n;
	if (vm_is_literal_start(p->tok.kind))
		return vm_literal(p);
	switch (p->tok.kind) {
	case VM_T_NAME:
		if (p->tok.len == 1 && p->tok.s[0] == '_') {
			vm_error(p, "%s", "`_` is only allowed in patterns");
			return NULL;
		}
		return vm_name_node(p, VM_N_NAME);
	case VM_T_LPAREN:
		return vm_parse_tuple(p, vm_expr_item, "");
	case VM_T_LBRACKET:
		return vm_parse_list(p, vm_expr_item, "");
	case VM_T_MAPOPEN: {
		if (!(n = vm_node_here(p, VM_N_MAP)))
			return NULL;
		vm_advance(p);
		vm_nodes l = {0};
		bool first = true;
		while (p->tok.kind != VM_T_RBRACE) {
			vm_node *k = vm_parse_expr_in(p, first && !n->a, false);
			if (!k)
				return NULL;
			if (first && vm_accept(p, VM_T_BAR)) {
				n->a = k;
				first = false;
				continue;
			}
			first = false;
			vm_node *pair = vm_node_at(p, VM_N_PAIR, k);
			if (!pair || !vm_expect(p, VM_T_FATARROW, "after the key") || !(pair->b = vm_parse_expr(p)))
				return NULL;
			pair->a = k;
			if (!vm_push(p, &l, pair))
				return NULL;
			if (!vm_accept(p, VM_T_COMMA))
				break;
		}
		vm_set_kids(n, &l);
		return vm_expect(p, VM_T_RBRACE, "to close the map") ? n : NULL;
	}
	case VM_T_LBRACE:
		return vm_parse_block(p, "");
	case VM_T_FN: {
		if (vm_decl_at_col1(p, false)) {
			vm_expected(p, "an expression"); /* most likely a `)`, `]` or `}` is missing above */
			return NULL;
		}
		if (!(n = vm_node_here(p, VM_N_FN)))
			return NULL;
		vm_advance(p);
		if (p->tok.kind == VM_T_NAME) {
			vm_error(p, "%s",
				 "a named function is only allowed at top level (a closure is `fn(params) { ... }`)");
			return NULL;
		}
		vm_nodes l = {0};
		if (!vm_parse_params(p, &l, "after `fn`"))
			return NULL;
		vm_set_kids(n, &l);
		return (n->a = vm_parse_block(p, "to open the closure's body")) ? n : NULL;
	}
	case VM_T_IF:
		return vm_parse_if(p);
	case VM_T_WHILE:
		if (!(n = vm_node_here(p, VM_N_WHILE)))
			return NULL;
		vm_advance(p);
		if (!(n->a = vm_parse_expr(p)))
			return NULL;
		return (n->b = vm_parse_block(p, "after the condition of `while`")) ? n : NULL;
	case VM_T_FOR:
		if (!(n = vm_node_here(p, VM_N_FOR)))
			return NULL;
		vm_advance(p);
		if (!(n->a = vm_parse_pattern(p)) || !vm_expect(p, VM_T_IN, "after the pattern of `for`"))
			return NULL;
		if (!(n->b = vm_parse_expr_in(p, false, true)))
			return NULL;
		if (p->tok.kind == VM_T_DOTDOT) {
			vm_node *r = vm_node_at(p, VM_N_RANGE, n->b);
			if (!r)
				return NULL;
			vm_advance(p);
			r->a = n->b;
			if (!(r->b = vm_parse_expr(p)))
				return NULL;
			n->b = r;
		}
		return (n->c = vm_parse_block(p, "after the iterable of `for`")) ? n : NULL;
	case VM_T_MATCH:
		if (!(n = vm_node_here(p, VM_N_MATCH)))
			return NULL;
		vm_advance(p);
		if (!(n->a = vm_parse_expr(p)))
			return NULL;
		return vm_parse_clauses(p, n, "after the value of `match`") ? n : NULL;
	case VM_T_RECEIVE:
		if (!(n = vm_node_here(p, VM_N_RECEIVE)))
			return NULL;
		vm_advance(p);
		return vm_parse_clauses(p, n, "after `receive`") ? n : NULL;
	case VM_T_TRY:
		if (!(n = vm_node_here(p, VM_N_TRY)))
			return NULL;
		vm_advance(p);
		if (!(n->a = vm_parse_block(p, "after `try`")))
			return NULL;
		while (p->tok.kind == VM_T_NEWLINE)
			vm_advance(p); /* a try needs its catch: no statement ends here */
		if (!vm_expect(p, VM_T_CATCH, "after the block of `try`"))
			return NULL;
		return vm_parse_clauses(p, n, "after `catch`") ? n : NULL;
	case VM_T_LOCK:
		if (!(n = vm_keyword_named(p, VM_N_LOCK, "the name of an mvar after `lock`")))
			return NULL;
		return (n->a = vm_parse_block(p, "after the name of `lock`")) ? n : NULL;
	case VM_T_BREAK:
	case VM_T_CONTINUE:
		n = vm_node_here(p, p->tok.kind == VM_T_BREAK ? VM_N_BREAK : VM_N_CONTINUE);
		if (n)
			vm_advance(p);
		return n;
	case VM_T_RETURN:
		if (!(n = vm_node_here(p, VM_N_RETURN)))
			return NULL;
		vm_advance(p);
		switch (p->tok.kind) {
		case VM_T_NEWLINE:
		case VM_T_SEMI:
		case VM_T_RBRACE:
		case VM_T_RPAREN:
		case VM_T_RBRACKET:
		case VM_T_COMMA:
		case VM_T_EOF:
			return n;
		default:
			return (n->a = vm_parse_expr(p)) ? n : NULL;
		}
	default:
		vm_expected(p, "an expression");
		return NULL;
	}
}

/* Calls, indexing and module.function after a primary. */
static vm_node *vm_parse_postfix(vm_parser *p, vm_node *n)
{
	for (;;) {
		vm_node *m;
		switch (p->tok.kind) {
		case VM_T_LPAREN: {
			vm_advance(p);
			if (!(m = vm_node_at(p, VM_N_CALL, n)))
				return NULL;
			m->a = n;
			vm_nodes l = {0};
			while (p->tok.kind != VM_T_RPAREN) {
				vm_node *e = vm_parse_expr(p);
				if (!e || !vm_push(p, &l, e))
					return NULL;
				if (!vm_accept(p, VM_T_COMMA))
					break;
			}
			vm_set_kids(m, &l);
			if (!vm_expect(p, VM_T_RPAREN, "after the arguments"))
				return NULL;
			break;
		}
		case VM_T_LBRACKET:
			vm_advance(p);
			if (!(m = vm_node_at(p, VM_N_INDEX, n)))
				return NULL;
			m->a = n;
			if (!(m->b = vm_parse_expr(p)) || !vm_expect(p, VM_T_RBRACKET, "after the index"))
				return NULL;
			break;
		case VM_T_DOT:
			if (n->kind != VM_N_NAME) {
				vm_error(p, "%s", "`.` follows a module's name only (`module.function`)");
				return NULL;
			}
			vm_advance(p);
			if (p->tok.kind != VM_T_NAME) {
				vm_expected(p, "a function name after `.`");
				return NULL;
			}
			if (!(m = vm_node_at(p, VM_N_DOT, n)) || !vm_take_name(p, m))
				return NULL;
			m->a = n;
			vm_advance(p);
			break;
		default:
			return n;
		}
		n = m;
	}
}

static vm_node *vm_parse_unary(vm_parser *p)
{
	vm_token t = p->tok;
	vm_node *a;
	switch (t.kind) {
	case VM_T_MINUS:
		vm_advance(p);
		if ((p->tok.kind == VM_T_INT || p->tok.kind == VM_T_FLOAT)) {
			unsigned after = vm_peek(p)->kind;
			if (after != VM_T_LPAREN && after != VM_T_LBRACKET && after != VM_T_DOT)
				return vm_number(p, true, t.line, t.col);
		}
		if (!vm_enter(p))
			return NULL;
		a = vm_parse_unary(p);
		vm_leave(p);
		return a ? vm_negate(p, a, t.line, t.col) : NULL;
	case VM_T_TILDE: {
		vm_advance(p);
		if (!vm_enter(p))
			return NULL;
		a = vm_parse_unary(p);
		vm_leave(p);
		vm_node *n = a ? vm_node_new(p, VM_N_BNOT, t.line, t.col) : NULL;
		if (n)
			n->a = a;
		return n;
	}
	default:
		a = vm_parse_primary(p);
		return a ? vm_parse_postfix(p, a) : NULL;
	}
}

/* The binary operators from `|` to `* / %`: their level (0 loosest) and
 * vm_binop, or -1. */
static int vm_bin_level(unsigned kind, uint8_t *op)
{
	static const struct {
		uint8_t tok, op, level;
	} ops[] = {
		{VM_T_BAR, VM_OP_BOR, 0},   {VM_T_CARET, VM_OP_BXOR, 1},  {VM_T_AMP, VM_OP_BAND, 2},
		{VM_T_SHL, VM_OP_SHL, 3},   {VM_T_SHR, VM_OP_SHR, 3},	  {VM_T_CONCAT, VM_OP_CONCAT, 4},
		{VM_T_PLUS, VM_OP_ADD, 5},  {VM_T_MINUS, VM_OP_SUB, 5},	  {VM_T_STAR, VM_OP_MUL, 6},
		{VM_T_SLASH, VM_OP_DIV, 6}, {VM_T_PERCENT, VM_OP_MOD, 6},
	};
	for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
		if (ops[k].tok == kind) {
			*op = ops[k].op;
			return ops[k].level;
		}
	}
	return -1;
}

/* Precedence climbing over the levels of vm_bin_level, all
 * left-associative. */
static vm_node *vm_parse_binary(vm_parser *p, int min)
{
	vm_node *lhs = vm_parse_unary(p);
	while (lhs) {
		uint8_t op = 0;
		int level = vm_bin_level(p->tok.kind, &op);
		if (level < min || (p->tok.kind == VM_T_BAR && p->no_pipe))
			break;
		vm_advance(p);
		vm_node *rhs = vm_parse_binary(p, level + 1);
		vm_node *n = rhs ? vm_node_at(p, VM_N_BINOP, lhs) : NULL;
		if (!n)
			return NULL;
		n->op = op;
		n->a = lhs;
		n->b = rhs;
		lhs = n;
	}
	return lhs;
}

static int vm_cmp_op(unsigned kind)
{
	switch (kind) {
	case VM_T_EQ:
		return VM_OP_EQ;
	case VM_T_NE:
		return VM_OP_NE;
	case VM_T_LT:
		return VM_OP_LT;
	case VM_T_LE:
		return VM_OP_LE;
	case VM_T_GT:
		return VM_OP_GT;
	case VM_T_GE:
		return VM_OP_GE;
	default:
		return 0;
	}
}

/* Comparisons: non-associative (`a < b < c` is an error). */
static vm_node *vm_parse_cmp(vm_parser *p)
{
	vm_node *lhs = vm_parse_binary(p, 0);
	int op = lhs ? vm_cmp_op(p->tok.kind) : 0;
	if (!op)
		return lhs;
	vm_advance(p);
	vm_node *rhs = vm_parse_binary(p, 0);
	if (!rhs)
		return NULL;
	if (vm_cmp_op(p->tok.kind)) {
		vm_error(p, "comparisons do not chain: %s cannot follow a comparison (use `and`)",
			 vm_tok_name(p->tok.kind));
		return NULL;
	}
	vm_node *n = vm_node_at(p, VM_N_BINOP, lhs);
	if (n) {
		n->op = (uint8_t)op;
		n->a = lhs;
		n->b = rhs;
	}
	return n;
}

static vm_node *vm_parse_not(vm_parser *p)
{
	if (p->tok.kind != VM_T_NOT)
		return vm_parse_cmp(p);
	vm_token t = p->tok;
	vm_advance(p);
	if (!vm_enter(p))
		return NULL;
	vm_node *a = vm_parse_not(p);
	vm_leave(p);
	vm_node *n = a ? vm_node_new(p, VM_N_NOT, t.line, t.col) : NULL;
	if (n)
		n->a = a;
	return n;
}

/* `and` (is_or false) and `or`, left-associative, `or` the looser. */
static vm_node *vm_parse_logic(vm_parser *p, bool is_or)
{
	vm_node *lhs = is_or ? vm_parse_logic(p, false) : vm_parse_not(p);
	while (lhs && vm_accept(p, is_or ? VM_T_OR : VM_T_AND)) {
		vm_node *rhs = is_or ? vm_parse_logic(p, false) : vm_parse_not(p);
		vm_node *n = rhs ? vm_node_at(p, is_or ? VM_N_OR : VM_N_AND, lhs) : NULL;
		if (!n)
			return NULL;
		n->a = lhs;
		n->b = rhs;
		lhs = n;
	}
	return lhs;
}

/* An expression. no_pipe: `|` ends it (a list element, a map's base);
 * range_ok: `a..b` may follow (a for's iterable). Both hold for this level
 * only: brackets inside start afresh. */
static vm_node *vm_parse_expr_in(vm_parser *p, bool no_pipe, bool range_ok)
{
	if (!vm_enter(p))
		return NULL;
	bool saved = p->no_pipe;
	p->no_pipe = no_pipe;
	vm_node *n = vm_parse_logic(p, true);
	p->no_pipe = saved;
	vm_leave(p);
	if (n && p->tok.kind == VM_T_DOTDOT && !range_ok) {
		vm_error(p, "%s", "a range `a..b` is only allowed as the iterable of `for`");
		return NULL;
	}
	return n;
}

/* ---- patterns */

static vm_node *vm_parse_pattern1(vm_parser *p)
{
	vm_node *n;
	if (vm_is_literal_start(p->tok.kind))
		return vm_literal(p);
	switch (p->tok.kind) {
	case VM_T_MINUS: {
		vm_token t = p->tok;
		vm_advance(p);
		if (p->tok.kind != VM_T_INT && p->tok.kind != VM_T_FLOAT) {
			vm_expected(p, "a number after `-` in a pattern");
			return NULL;
		}
		return vm_number(p, true, t.line, t.col);
	}
	case VM_T_NAME:
		return vm_name_node(p, p->tok.len == 1 && p->tok.s[0] == '_' ? VM_N_WILD : VM_N_NAME);
	case VM_T_CARET:
		vm_advance(p);
		if (p->tok.kind != VM_T_NAME) {
			vm_expected(p, "a name after `^`");
			return NULL;
		}
		if ((n = vm_name_node(p, VM_N_PIN))) {
			n->col--; /* at the `^` */
		}
		return n;
	case VM_T_LPAREN:
		return vm_parse_tuple(p, vm_pattern_item, " pattern");
	case VM_T_LBRACKET:
		return vm_parse_list(p, vm_pattern_item, " pattern");
	case VM_T_MAPOPEN: {
		if (!(n = vm_node_here(p, VM_N_MAP)))
			return NULL;
		vm_advance(p);
		vm_nodes l = {0};
		while (p->tok.kind != VM_T_RBRACE) {
			vm_node *k;
			if (p->tok.kind == VM_T_CARET || p->tok.kind == VM_T_MINUS ||
			    vm_is_literal_start(p->tok.kind)) {
				k = vm_parse_pattern1(p);
			} else {
				vm_expected(p, "a literal or `^name` as the key of a map pattern");
				return NULL;
			}
			vm_node *pair = k ? vm_node_at(p, VM_N_PAIR, k) : NULL;
			if (!pair || !vm_expect(p, VM_T_FATARROW, "after the key") || !(pair->b = vm_parse_pattern(p)))
				return NULL;
			pair->a = k;
			if (!vm_push(p, &l, pair))
				return NULL;
			if (!vm_accept(p, VM_T_COMMA))
				break;
		}
		vm_set_kids(n, &l);
		return vm_expect(p, VM_T_RBRACE, "to close the map pattern") ? n : NULL;
	}
	default:
		vm_expected(p, "a pattern");
		return NULL;
	}
}

static vm_node *vm_parse_pattern(vm_parser *p)
{
	if (!vm_enter(p))
		return NULL;
	vm_node *n = vm_parse_pattern1(p);
	while (n && vm_accept(p, VM_T_AS)) {
		if (p->tok.kind != VM_T_NAME) {
			vm_expected(p, "a name after `as`");
			n = NULL;
			break;
		}
		vm_node *m = vm_node_at(p, VM_N_AS, n);
		if (!m || !vm_take_name(p, m)) {
			n = NULL;
			break;
		}
		vm_advance(p);
		m->a = n;
		n = m;
	}
	vm_leave(p);
	return n;
}

/* ---- statements and blocks */

/* `let NAME = e` and `mvar NAME = e` at top level, `var NAME = e` in a
 * block: the name in s, e in a; what: the message if the name is missing. */
static vm_node *vm_parse_binding(vm_parser *p, unsigned kind, const char *what)
{
	vm_node *n = vm_keyword_named(p, kind, what);
	if (!n || !vm_expect(p, VM_T_ASSIGN, "after the name"))
		return NULL;
	return (n->a = vm_parse_expr(p)) ? n : NULL;
}

static vm_node *vm_parse_stmt(vm_parser *p)
{
	vm_node *n;
	switch (p->tok.kind) {
	case VM_T_LET:
		if (!(n = vm_node_here(p, VM_N_LET)))
			return NULL;
		vm_advance(p);
		if (!(n->a = vm_parse_pattern(p)) || !vm_expect(p, VM_T_ASSIGN, "after the pattern of `let`"))
			return NULL;
		return (n->b = vm_parse_expr(p)) ? n : NULL;
	case VM_T_VAR:
		return vm_parse_binding(p, VM_N_VAR, "a name after `var`");
	case VM_T_MVAR:
	case VM_T_IMPORT:
		vm_error(p, "%s is only allowed at top level", vm_tok_name(p->tok.kind));
		return NULL;
	case VM_T_ELSE:
		vm_error(p, "%s", "`else` must follow `}` on the same line");
		return NULL;
	default:
		break;
	}
	vm_node *e = vm_parse_expr(p);
	if (!e || p->tok.kind != VM_T_ASSIGN)
		return e;
	if (e->kind == VM_N_NAME) {
		if (!(n = vm_node_at(p, VM_N_ASSIGN, e)))
			return NULL;
		n->s = e->s;
		n->len = e->len;
		vm_advance(p);
		return (n->a = vm_parse_expr(p)) ? n : NULL;
	}
	if (e->kind == VM_N_INDEX) {
		if (!(n = vm_node_at(p, VM_N_INDEX_ASSIGN, e)))
			return NULL;
		n->a = e->a;
		n->b = e->b;
		vm_advance(p);
		return (n->c = vm_parse_expr(p)) ? n : NULL;
	}
	vm_error_at(p, e->line, e->col, "%s", "only a name or an element `a[i]` can be assigned");
	return NULL;
}

/* A `{ block }`; where completes "expected `{` WHERE" (may be ""). */
static vm_node *vm_parse_block(vm_parser *p, const char *where)
{
	vm_token open = p->tok;
	if (open.kind != VM_T_LBRACE) {
		char what[80];
		snprintf(what, sizeof what, "`{`%s%s", *where ? " " : "", where);
		vm_expected(p, what);
		return NULL;
	}
	vm_node *b = vm_node_here(p, VM_N_BLOCK);
	if (!b)
		return NULL;
	vm_advance(p);
	uint32_t depth = open.depth + 1;
	vm_nodes l = {0};
	for (;;) {
		while (vm_is_sep(p->tok.kind))
			vm_advance(p);
		if (vm_accept(p, VM_T_RBRACE))
			break;
		if (p->tok.kind == VM_T_EOF || vm_decl_at_col1(p, false)) {
			char what[80];
			snprintf(what, sizeof what, "`}` to close the block opened at line %" PRIu32, open.line);
			vm_expected(p, what);
			return NULL;
		}
		unsigned long start = p->ntok;
		vm_node *s = vm_parse_stmt(p);
		if (s && !vm_push(p, &l, s))
			return NULL;
		if (!vm_item_end(p, s != NULL, depth, false, start))
			return NULL;
	}
	vm_set_kids(b, &l);
	return b;
}

/* ---- declarations */

static vm_node *vm_parse_decl(vm_parser *p)
{
	vm_node *n;
	switch (p->tok.kind) {
	case VM_T_FN: {
		if (!(n = vm_keyword_named(p, VM_N_FNDEF, "the function's name after `fn`")))
			return NULL;
		vm_nodes l = {0};
		if (!vm_parse_params(p, &l, "after the function's name"))
			return NULL;
		vm_set_kids(n, &l);
		return (n->a = vm_parse_block(p, "to open the function's body")) ? n : NULL;
	}
	case VM_T_LET:
		return vm_parse_binding(p, VM_N_CONST, "a name after `let` (at top level it binds one name)");
	case VM_T_MVAR:
		return vm_parse_binding(p, VM_N_MVAR, "a name after `mvar`");
	case VM_T_IMPORT:
		if (!(n = vm_node_here(p, VM_N_IMPORT)))
			return NULL;
		vm_advance(p);
		if (p->tok.kind != VM_T_STR) {
			vm_expected(p, "a string after `import`");
			return NULL;
		}
		n->s = p->tok.s;
		n->len = p->tok.len;
		vm_advance(p);
		return n;
	default:
		vm_expected(p, "a declaration (`fn`, `let`, `mvar` or `import`)");
		return NULL;
	}
}

/* After a broken declaration: to the next newline or `;` at top level, or
 * to a declaration keyword in column 1 (see the top). */
static void vm_sync_top(vm_parser *p)
{
	for (;;) {
		unsigned k = p->tok.kind;
		if (k == VM_T_EOF || (p->tok.depth == 0 && vm_is_sep(k)))
			return;
		if (vm_decl_at_col1(p, true)) {
			vm_lex_reset_brackets(&p->lx);
			p->tok.depth = 0;
			return;
		}
		vm_advance(p);
	}
}

static vm_node *vm_parse_module(vm_parser *p)
{
	vm_node *m = vm_node_new(p, VM_N_MODULE, 1, 1);
	if (!m)
		return NULL;
	vm_nodes l = {0};
	for (;;) {
		while (vm_is_sep(p->tok.kind))
			vm_advance(p);
		if (p->tok.kind == VM_T_EOF)
			break;
		unsigned long start = p->ntok;
		vm_node *d = vm_parse_decl(p);
		if (d && !vm_push(p, &l, d))
			return NULL;
		if (d && !vm_is_sep(p->tok.kind) && p->tok.kind != VM_T_EOF) {
			vm_expected(p, "newline or `;` after the declaration");
			d = NULL;
		}
		if (d)
			p->panic = false;
		if (!d) {
			if (p->oom)
				return NULL;
			vm_sync_top(p);
			p->panic = false;
			if (p->ntok == start && p->tok.kind != VM_T_EOF)
				vm_advance(p);
		}
	}
	vm_set_kids(m, &l);
	return m;
}

/* ---- the depth check (see the top) */

struct vm_walk {
	const vm_node *n;
	uint32_t depth;
};

/* 0, or -ENOMEM. Reports the first node found deeper than VM_PARSE_DEPTH. */
static int vm_check_depth(vm_parser *p, const vm_node *root)
{
	size_t cap = 256, n = 0;
	struct vm_walk *st = malloc(cap * sizeof *st);
	if (!st)
		return -ENOMEM;
	st[n++] = (struct vm_walk){root, 1};
	while (n > 0) {
		struct vm_walk w = st[--n];
		if (w.depth > VM_PARSE_DEPTH) {
			vm_error_at(p, w.n->line, w.n->col, "nesting too deep (more than %d levels)", VM_PARSE_DEPTH);
			break;
		}
		size_t need = n + 3 + w.n->nkids;
		if (need > cap) {
			size_t ncap = cap;
			while (ncap < need)
				ncap *= 2;
			struct vm_walk *nst = realloc(st, ncap * sizeof *st);
			if (!nst) {
				free(st);
				return -ENOMEM;
			}
			st = nst;
			cap = ncap;
		}
		const vm_node *ch[3] = {w.n->a, w.n->b, w.n->c};
		for (int k = 0; k < 3; k++)
			if (ch[k])
				st[n++] = (struct vm_walk){ch[k], w.depth + 1};
		for (uint32_t k = 0; k < w.n->nkids; k++)
			if (w.n->kids[k])
				st[n++] = (struct vm_walk){w.n->kids[k], w.depth + 1};
	}
	free(st);
	return 0;
}

int vm_parse_source(const char *src, size_t len, vm_parse *out)
{
	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof *out);
	if (!src && len > 0)
		return -EINVAL;
	vm_parser p;
	memset(&p, 0, sizeof p);
	if (!(p.arena = vm_arena_create()))
		return -ENOMEM;
	p.diags = vm_arena_alloc(p.arena, VM_DIAG_MAX * sizeof *p.diags);
	if (!p.diags) {
		vm_arena_destroy(p.arena);
		return -ENOMEM;
	}
	vm_lex_init(&p.lx, src ? src : "", len, p.arena, vm_lex_report, &p);
	vm_advance(&p);
	vm_node *m = vm_parse_module(&p);
	if (m && !p.oom && p.ndiags == 0 && vm_check_depth(&p, m) < 0)
		p.oom = true;
	if (!m || p.oom) {
		vm_arena_destroy(p.arena);
		return -ENOMEM;
	}
	assert(p.depth == 0);
	out->module = m;
	out->diags = p.diags;
	out->ndiags = p.ndiags;
	out->arena = p.arena;
	return 0;
}

void vm_parse_free(vm_parse *p)
{
	if (!p)
		return;
	vm_arena_destroy(p->arena);
	memset(p, 0, sizeof *p);
}

/* ---- names and the printer */

static const char *const vm_node_names[] = {
	[VM_N_INT] = "int",
	[VM_N_FLOAT] = "float",
	[VM_N_STR] = "str",
	[VM_N_ATOM] = "atom",
	[VM_N_NIL] = "nil",
	[VM_N_TRUE] = "true",
	[VM_N_FALSE] = "false",
	[VM_N_NAME] = "name",
	[VM_N_TUPLE] = "tuple",
	[VM_N_LIST] = "list",
	[VM_N_MAP] = "map",
	[VM_N_PAIR] = "pair",
	[VM_N_BINOP] = "binop",
	[VM_N_AND] = "and",
	[VM_N_OR] = "or",
	[VM_N_NOT] = "not",
	[VM_N_NEG] = "neg",
	[VM_N_BNOT] = "bnot",
	[VM_N_CALL] = "call",
	[VM_N_DOT] = "dot",
	[VM_N_INDEX] = "index",
	[VM_N_FN] = "fn",
	[VM_N_BLOCK] = "block",
	[VM_N_IF] = "if",
	[VM_N_WHILE] = "while",
	[VM_N_FOR] = "for",
	[VM_N_RANGE] = "range",
	[VM_N_MATCH] = "match",
	[VM_N_RECEIVE] = "receive",
	[VM_N_TRY] = "try",
	[VM_N_CLAUSE] = "clause",
	[VM_N_LOCK] = "lock",
	[VM_N_BREAK] = "break",
	[VM_N_CONTINUE] = "continue",
	[VM_N_RETURN] = "return",
	[VM_N_LET] = "let",
	[VM_N_VAR] = "var",
	[VM_N_ASSIGN] = "assign",
	[VM_N_INDEX_ASSIGN] = "index-assign",
	[VM_N_WILD] = "_",
	[VM_N_PIN] = "pin",
	[VM_N_AS] = "as",
	[VM_N_MODULE] = "module",
	[VM_N_FNDEF] = "fndef",
	[VM_N_CONST] = "const",
	[VM_N_MVAR] = "mvar",
	[VM_N_IMPORT] = "import",
};

const char *vm_node_name(unsigned kind)
{
	if (kind < sizeof vm_node_names / sizeof vm_node_names[0] && vm_node_names[kind])
		return vm_node_names[kind];
	return "?";
}

static const char *const vm_op_names[] = {
	[VM_OP_ADD] = "+",     [VM_OP_SUB] = "-",  [VM_OP_MUL] = "*", [VM_OP_DIV] = "/",  [VM_OP_MOD] = "%",
	[VM_OP_CONCAT] = "++", [VM_OP_EQ] = "==",  [VM_OP_NE] = "!=", [VM_OP_LT] = "<",	  [VM_OP_LE] = "<=",
	[VM_OP_GT] = ">",      [VM_OP_GE] = ">=",  [VM_OP_BOR] = "|", [VM_OP_BXOR] = "^", [VM_OP_BAND] = "&",
	[VM_OP_SHL] = "<<",    [VM_OP_SHR] = ">>",
};

struct vm_out {
	char *buf;
	size_t cap, n;
};

static void vm_put(struct vm_out *o, const char *s, size_t len)
{
	for (size_t k = 0; k < len; k++, o->n++)
		if (o->n + 1 < o->cap)
			o->buf[o->n] = s[k];
}

static void vm_puts(struct vm_out *o, const char *s)
{
	vm_put(o, s, strlen(s));
}

static void vm_putf(struct vm_out *o, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (k > 0)
		vm_put(o, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

static void vm_put_str(struct vm_out *o, const char *s, size_t len)
{
	vm_puts(o, "\"");
	for (size_t k = 0; k < len; k++) {
		unsigned char c = (unsigned char)s[k];
		if (c == '"' || c == '\\')
			vm_putf(o, "\\%c", c);
		else if (c == '\n')
			vm_puts(o, "\\n");
		else if (c == '\t')
			vm_puts(o, "\\t");
		else if (c < 0x20 || c >= 0x7F)
			vm_putf(o, "\\x%02x", c);
		else
			vm_put(o, (const char *)&c, 1);
	}
	vm_puts(o, "\"");
}

static void vm_dump(struct vm_out *o, const vm_node *n, unsigned depth);

static void vm_dump_kids(struct vm_out *o, const vm_node *n, unsigned depth)
{
	for (uint32_t k = 0; k < n->nkids; k++) {
		vm_puts(o, " ");
		vm_dump(o, n->kids[k], depth + 1);
	}
}

static void vm_dump_child(struct vm_out *o, const vm_node *c, unsigned depth)
{
	vm_puts(o, " ");
	vm_dump(o, c, depth + 1);
}

static void vm_dump(struct vm_out *o, const vm_node *n, unsigned depth)
{
	if (!n) {
		vm_puts(o, "?");
		return;
	}
	if (depth > VM_PARSE_DEPTH + 16) {
		vm_puts(o, "...");
		return;
	}
	switch (n->kind) {
	case VM_N_NIL:
	case VM_N_TRUE:
	case VM_N_FALSE:
	case VM_N_WILD:
		vm_puts(o, vm_node_name(n->kind));
		return;
	case VM_N_INT:
		vm_putf(o, "(int %" PRId64 ")", n->i);
		return;
	case VM_N_FLOAT: {
		char tmp[40];
		snprintf(tmp, sizeof tmp, "%.15g", n->f);
		if (strtod(tmp, NULL) != n->f)
			snprintf(tmp, sizeof tmp, "%.17g", n->f);
		vm_putf(o, "(float %s)", tmp);
		return;
	}
	case VM_N_STR:
	case VM_N_IMPORT:
		vm_putf(o, "(%s ", vm_node_name(n->kind));
		vm_put_str(o, n->s ? n->s : "", n->s ? n->len : 0);
		vm_puts(o, ")");
		return;
	case VM_N_BINOP:
		vm_putf(o, "(%s",
			n->op < sizeof vm_op_names / sizeof vm_op_names[0] && vm_op_names[n->op] ? vm_op_names[n->op]
												 : "?");
		break;
	case VM_N_FN:
	case VM_N_FNDEF:
		vm_putf(o, "(%s", vm_node_name(n->kind));
		if (n->kind == VM_N_FNDEF) {
			vm_puts(o, " ");
			vm_put(o, n->s ? n->s : "?", n->s ? n->len : 1);
		}
		vm_puts(o, " (params");
		for (uint32_t k = 0; k < n->nkids; k++) {
			const vm_node *q = n->kids[k];
			vm_puts(o, " ");
			vm_put(o, q && q->s ? q->s : "?", q && q->s ? q->len : 1);
		}
		vm_puts(o, ")");
		vm_dump_child(o, n->a, depth);
		vm_puts(o, ")");
		return;
	case VM_N_LIST:
	case VM_N_MAP:
		vm_putf(o, "(%s", vm_node_name(n->kind));
		if (n->kind == VM_N_MAP && n->a) {
			vm_dump_child(o, n->a, depth);
			vm_puts(o, " |");
		}
		vm_dump_kids(o, n, depth);
		if (n->kind == VM_N_LIST && n->a) {
			vm_puts(o, " |");
			vm_dump_child(o, n->a, depth);
		}
		vm_puts(o, ")");
		return;
	case VM_N_RECEIVE:
		vm_puts(o, "(receive");
		vm_dump_kids(o, n, depth);
		if (n->a) {
			vm_puts(o, " (after");
			vm_dump_child(o, n->a, depth);
			vm_dump_child(o, n->b, depth);
			vm_puts(o, ")");
		}
		vm_puts(o, ")");
		return;
	case VM_N_CLAUSE:
		vm_puts(o, "(clause");
		vm_dump_child(o, n->a, depth);
		if (n->b) {
			vm_puts(o, " (guard");
			vm_dump_child(o, n->b, depth);
			vm_puts(o, ")");
		}
		vm_dump_child(o, n->c, depth);
		vm_puts(o, ")");
		return;
	default:
		vm_putf(o, "(%s", vm_node_name(n->kind));
		break;
	}
	/* The generic form: the name (s) unless it is an operand, then a, b, c
	 * and the kids. */
	bool name_last = n->kind == VM_N_AS || n->kind == VM_N_DOT;
	if (n->s && !name_last) {
		vm_puts(o, " ");
		vm_put(o, n->s, n->len);
	}
	if (n->a)
		vm_dump_child(o, n->a, depth);
	if (name_last) {
		vm_puts(o, " ");
		vm_put(o, n->s ? n->s : "?", n->s ? n->len : 1);
	}
	if (n->b)
		vm_dump_child(o, n->b, depth);
	if (n->c)
		vm_dump_child(o, n->c, depth);
	vm_dump_kids(o, n, depth);
	vm_puts(o, ")");
}

int vm_ast_dump(const vm_node *n, char *buf, size_t cap)
{
	struct vm_out o = {buf, buf ? cap : 0, 0};
	vm_dump(&o, n, 0);
	if (o.cap > 0)
		o.buf[o.n < o.cap ? o.n : o.cap - 1] = 0;
	return o.n > INT_MAX ? INT_MAX : (int)o.n;
}
