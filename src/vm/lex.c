/* lex.c - the lexer of the weft language (lex.h).
 *
 * Which newlines end a statement. A newline is a token (VM_T_NEWLINE) only
 * when it can end a statement; every other newline is white space. It is
 * white space when
 *   - the innermost open bracket is `(`, `[` or a map's `%{`: inside those
 *     an expression or a list of them goes on over lines;
 *   - the last token of the line cannot end an expression: a binary
 *     operator, `,`, `=`, `->`, `=>`, `..`, `.` (and the prefix operators
 *     `not` and `~`, after which an operand must follow anyway);
 *   - the line holds no token since the last statement end (after a
 *     newline, a `;`, a block's `{`, or at the start), so blank lines and
 *     comment lines make no empty statements.
 * Inside a block `{ }` the newline counts again, even if the block itself
 * sits in parentheses (a closure passed to a call): so the lexer keeps the
 * stack of open brackets, each with its kind, and looks at its top. Every
 * `{` opens a block except the two-character `%{` of a map.
 *
 * A closer pops the stack down to the nearest opener it matches (`)` a `(`,
 * `]` a `[`, `}` a `{` or `%{`); a closer that matches none is stray and
 * pops nothing. So after unbalanced input the stack still follows the
 * source's structure as well as can be guessed, which the parser's error
 * recovery (resynchronising on the depth recorded in each token) relies on.
 */
#include "lex.h"
#include "arena.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *word;
	uint8_t kind;
} vm_keywords[] = {
	{"fn", VM_T_FN},	   {"let", VM_T_LET},		{"var", VM_T_VAR},	 {"if", VM_T_IF},
	{"else", VM_T_ELSE},	   {"while", VM_T_WHILE},	{"for", VM_T_FOR},	 {"in", VM_T_IN},
	{"break", VM_T_BREAK},	   {"continue", VM_T_CONTINUE}, {"return", VM_T_RETURN}, {"match", VM_T_MATCH},
	{"receive", VM_T_RECEIVE}, {"after", VM_T_AFTER},	{"try", VM_T_TRY},	 {"catch", VM_T_CATCH},
	{"mvar", VM_T_MVAR},	   {"lock", VM_T_LOCK},		{"as", VM_T_AS},	 {"and", VM_T_AND},
	{"or", VM_T_OR},	   {"not", VM_T_NOT},		{"nil", VM_T_NIL},	 {"true", VM_T_TRUE},
	{"false", VM_T_FALSE},	   {"import", VM_T_IMPORT},
};

static const char *const vm_tok_names[VM_T_COUNT] = {
	[VM_T_EOF] = "end of input",
	[VM_T_NEWLINE] = "newline",
	[VM_T_NAME] = "a name",
	[VM_T_INT] = "an integer",
	[VM_T_FLOAT] = "a float",
	[VM_T_STR] = "a string",
	[VM_T_ATOM] = "an atom",
	[VM_T_FN] = "`fn`",
	[VM_T_LET] = "`let`",
	[VM_T_VAR] = "`var`",
	[VM_T_IF] = "`if`",
	[VM_T_ELSE] = "`else`",
	[VM_T_WHILE] = "`while`",
	[VM_T_FOR] = "`for`",
	[VM_T_IN] = "`in`",
	[VM_T_BREAK] = "`break`",
	[VM_T_CONTINUE] = "`continue`",
	[VM_T_RETURN] = "`return`",
	[VM_T_MATCH] = "`match`",
	[VM_T_RECEIVE] = "`receive`",
	[VM_T_AFTER] = "`after`",
	[VM_T_TRY] = "`try`",
	[VM_T_CATCH] = "`catch`",
	[VM_T_MVAR] = "`mvar`",
	[VM_T_LOCK] = "`lock`",
	[VM_T_AS] = "`as`",
	[VM_T_AND] = "`and`",
	[VM_T_OR] = "`or`",
	[VM_T_NOT] = "`not`",
	[VM_T_NIL] = "`nil`",
	[VM_T_TRUE] = "`true`",
	[VM_T_FALSE] = "`false`",
	[VM_T_IMPORT] = "`import`",
	[VM_T_PLUS] = "`+`",
	[VM_T_MINUS] = "`-`",
	[VM_T_STAR] = "`*`",
	[VM_T_SLASH] = "`/`",
	[VM_T_PERCENT] = "`%`",
	[VM_T_CONCAT] = "`++`",
	[VM_T_EQ] = "`==`",
	[VM_T_NE] = "`!=`",
	[VM_T_LT] = "`<`",
	[VM_T_LE] = "`<=`",
	[VM_T_GT] = "`>`",
	[VM_T_GE] = "`>=`",
	[VM_T_BAR] = "`|`",
	[VM_T_CARET] = "`^`",
	[VM_T_AMP] = "`&`",
	[VM_T_SHL] = "`<<`",
	[VM_T_SHR] = "`>>`",
	[VM_T_TILDE] = "`~`",
	[VM_T_ASSIGN] = "`=`",
	[VM_T_ARROW] = "`->`",
	[VM_T_FATARROW] = "`=>`",
	[VM_T_DOTDOT] = "`..`",
	[VM_T_DOT] = "`.`",
	[VM_T_COMMA] = "`,`",
	[VM_T_SEMI] = "`;`",
	[VM_T_COLON] = "`:`",
	[VM_T_LPAREN] = "`(`",
	[VM_T_RPAREN] = "`)`",
	[VM_T_LBRACKET] = "`[`",
	[VM_T_RBRACKET] = "`]`",
	[VM_T_LBRACE] = "`{`",
	[VM_T_RBRACE] = "`}`",
	[VM_T_MAPOPEN] = "`%{`",
};

const char *vm_tok_name(unsigned kind)
{
	return kind < VM_T_COUNT && vm_tok_names[kind] ? vm_tok_names[kind] : "?";
}

void vm_lex_init(vm_lexer *lx, const char *src, size_t len, struct vm_arena *arena, vm_lex_error_fn *error, void *ctx)
{
	memset(lx, 0, sizeof *lx);
	lx->src = src;
	lx->len = src ? len : 0;
	lx->line = 1;
	lx->prev = VM_T_NEWLINE;
	lx->arena = arena;
	lx->error = error;
	lx->ctx = ctx;
}

void vm_lex_reset_brackets(vm_lexer *lx)
{
	lx->depth = 0;
}

static bool vm_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int vm_hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool vm_is_ident_start(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool vm_is_ident(int c)
{
	return vm_is_ident_start(c) || vm_is_digit(c);
}

/* The length (1 to 4) of the well-formed UTF-8 sequence at s (n bytes
 * available), or 0: no overlong forms, no surrogates, nothing past
 * U+10FFFF. The code point goes to *cp. */
static size_t vm_utf8_len(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned c = s[0];
	size_t len;
	uint32_t v, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xC2 && c <= 0xDF) {
		len = 2, v = c & 0x1F, min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3, v = c & 0x0F, min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		v = v << 6 | (s[k] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return len;
}

/* Reports an error at byte offset pos of the current line. */
static void vm_lex_error(vm_lexer *lx, size_t pos, const char *fmt, ...)
{
	char msg[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	assert(pos >= lx->line_start);
	if (lx->error)
		lx->error(lx->ctx, lx->line, (uint32_t)(pos - lx->line_start + 1), msg);
}

/* A byte that cannot start a token: reports it and returns how many bytes
 * to skip. */
static size_t vm_lex_stray(vm_lexer *lx, size_t pos)
{
	const unsigned char *s = (const unsigned char *)lx->src + pos;
	uint32_t cp;
	if (s[0] == 0) {
		vm_lex_error(lx, pos, "NUL byte in the source");
		return 1;
	}
	if (s[0] >= 0x80) {
		size_t n = vm_utf8_len(s, lx->len - pos, &cp);
		if (!n) {
			vm_lex_error(lx, pos, "invalid UTF-8");
			return 1;
		}
		vm_lex_error(lx, pos, "unexpected character U+%04X", (unsigned)cp);
		return n;
	}
	if (s[0] == '!')
		vm_lex_error(lx, pos, "unexpected character `!` (negation is `not`, inequality `!=`)");
	else if (s[0] > 0x20 && s[0] < 0x7F)
		vm_lex_error(lx, pos, "unexpected character `%c`", s[0]);
	else
		vm_lex_error(lx, pos, "unexpected control character 0x%02X", s[0]);
	return 1;
}

/* Skips a comment (from `#` to the end of the line), checking its bytes. */
static void vm_lex_comment(vm_lexer *lx)
{
	const unsigned char *s = (const unsigned char *)lx->src;
	uint32_t cp;
	while (lx->pos < lx->len && s[lx->pos] != '\n') {
		if (s[lx->pos] == 0) {
			vm_lex_error(lx, lx->pos, "NUL byte in the source");
			lx->pos++;
		} else if (s[lx->pos] >= 0x80) {
			size_t n = vm_utf8_len(s + lx->pos, lx->len - lx->pos, &cp);
			if (!n) {
				vm_lex_error(lx, lx->pos, "invalid UTF-8");
				n = 1;
			}
			lx->pos += n;
		} else {
			lx->pos++;
		}
	}
}

static bool vm_continues_line(unsigned kind)
{
	switch (kind) {
	case VM_T_NEWLINE:
	case VM_T_SEMI:
	case VM_T_LBRACE:
	case VM_T_PLUS:
	case VM_T_MINUS:
	case VM_T_STAR:
	case VM_T_SLASH:
	case VM_T_PERCENT:
	case VM_T_CONCAT:
	case VM_T_EQ:
	case VM_T_NE:
	case VM_T_LT:
	case VM_T_LE:
	case VM_T_GT:
	case VM_T_GE:
	case VM_T_BAR:
	case VM_T_CARET:
	case VM_T_AMP:
	case VM_T_SHL:
	case VM_T_SHR:
	case VM_T_TILDE:
	case VM_T_ASSIGN:
	case VM_T_ARROW:
	case VM_T_FATARROW:
	case VM_T_DOTDOT:
	case VM_T_DOT:
	case VM_T_COMMA:
	case VM_T_AND:
	case VM_T_OR:
	case VM_T_NOT:
		return true;
	default:
		return false;
	}
}

/* Does a newline here end a statement? (The rule at the top.) */
static bool vm_newline_counts(const vm_lexer *lx)
{
	if (lx->depth > 0) {
		unsigned char top = lx->depth <= VM_LEX_STACK ? lx->stack[lx->depth - 1] : '(';
		if (top != '{')
			return false;
	}
	return !vm_continues_line(lx->prev);
}

static void vm_push(vm_lexer *lx, vm_token *t, unsigned char kind)
{
	t->depth = lx->depth;
	if (lx->depth < VM_LEX_STACK)
		lx->stack[lx->depth] = kind;
	if (lx->depth < UINT32_MAX)
		lx->depth++;
}

static void vm_pop(vm_lexer *lx, vm_token *t, unsigned char want)
{
	if (lx->depth > VM_LEX_STACK) {
		lx->depth--; /* the kinds of the deepest are not kept */
	} else {
		for (uint32_t k = lx->depth; k > 0; k--) {
			unsigned char o = lx->stack[k - 1];
			if (o == want || (want == '{' && o == '%')) {
				lx->depth = k - 1;
				break;
			}
		}
	}
	t->depth = lx->depth;
}

/* A number: integer (decimal or 0x hex, `_` between digits) or float. */
static void vm_lex_number(vm_lexer *lx, vm_token *t, size_t start)
{
	const char *s = lx->src;
	size_t n = lx->len, p = start;
	uint64_t v = 0;
	bool overflow = false, is_float = false, malformed = false;
	if (s[p] == '0' && p + 1 < n && (s[p + 1] == 'x' || s[p + 1] == 'X')) {
		size_t ndig = 0;
		p += 2;
		for (;;) {
			int d = p < n ? vm_hex_value((unsigned char)s[p]) : -1;
			if (d >= 0) {
				if (v > (UINT64_MAX >> 4))
					overflow = true;
				else
					v = v << 4 | (uint64_t)d;
				ndig++;
				p++;
			} else if (ndig > 0 && p + 1 < n && s[p] == '_' && vm_hex_value((unsigned char)s[p + 1]) >= 0) {
				p++;
			} else {
				break;
			}
		}
		if (ndig == 0)
			malformed = true;
	} else {
		for (;;) {
			if (p < n && vm_is_digit(s[p])) {
				uint64_t d = (uint64_t)(s[p] - '0');
				if (v > (UINT64_MAX - d) / 10)
					overflow = true;
				else
					v = v * 10 + d;
				p++;
			} else if (p + 1 < n && s[p] == '_' && vm_is_digit(s[p + 1])) {
				p++;
			} else {
				break;
			}
		}
		if (p + 1 < n && s[p] == '.' && vm_is_digit(s[p + 1])) {
			is_float = true;
			p++;
			while (p < n && (vm_is_digit(s[p]) || (s[p] == '_' && p + 1 < n && vm_is_digit(s[p + 1]))))
				p++;
		}
		if (p < n && (s[p] == 'e' || s[p] == 'E')) {
			size_t q = p + 1;
			if (q < n && (s[q] == '+' || s[q] == '-'))
				q++;
			if (q < n && vm_is_digit(s[q])) {
				is_float = true;
				p = q;
				while (p < n &&
				       (vm_is_digit(s[p]) || (s[p] == '_' && p + 1 < n && vm_is_digit(s[p + 1]))))
					p++;
			} else {
				malformed = true;
				p = q;
			}
		}
	}
	if (p < n && vm_is_ident(s[p]))
		malformed = true;
	if (malformed) {
		while (p < n && vm_is_ident(s[p]))
			p++;
		vm_lex_error(lx, start, "malformed number `%.*s`", (int)(p - start > 40 ? 40 : p - start), s + start);
		t->kind = VM_T_INT;
	} else if (is_float) {
		t->kind = VM_T_FLOAT;
		char *buf = vm_arena_alloc(lx->arena, p - start + 1);
		if (!buf) {
			lx->oom = 1;
		} else {
			size_t k = 0;
			for (size_t j = start; j < p; j++)
				if (s[j] != '_')
					buf[k++] = s[j];
			buf[k] = 0;
			t->f = strtod(buf, NULL);
			if (isinf(t->f)) {
				vm_lex_error(lx, start, "float literal too large");
				t->f = 0;
			}
		}
	} else {
		t->kind = VM_T_INT;
		if (overflow || v > (uint64_t)INT64_MAX + 1)
			vm_lex_error(lx, start, "integer literal too large");
		else if (v == (uint64_t)INT64_MAX + 1)
			t->big = 1;
		else
			t->i = (int64_t)v;
	}
	lx->pos = p;
}

static size_t vm_utf8_put(char *d, uint32_t cp)
{
	if (cp < 0x80) {
		d[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (char)(0xC0 | cp >> 6);
		d[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (char)(0xE0 | cp >> 12);
		d[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		d[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	d[0] = (char)(0xF0 | cp >> 18);
	d[1] = (char)(0x80 | (cp >> 12 & 0x3F));
	d[2] = (char)(0x80 | (cp >> 6 & 0x3F));
	d[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* A `\u{HEX}` escape at s[p] (the backslash), ending before end: writes the
 * character to d and returns the bytes of source it took, or 0 if it is
 * malformed (reported). *dn gets the bytes written. */
static size_t vm_lex_unicode(vm_lexer *lx, size_t p, size_t end, char *d, size_t *dn)
{
	const char *s = lx->src;
	size_t q = p + 2;
	uint32_t v = 0;
	size_t ndig = 0;
	*dn = 0;
	if (q >= end || s[q] != '{') {
		vm_lex_error(lx, p, "malformed escape: `\\u` takes `{HEX}`");
		return 0;
	}
	q++;
	while (q < end && vm_hex_value((unsigned char)s[q]) >= 0 && ndig < 7) {
		v = v << 4 | (uint32_t)vm_hex_value((unsigned char)s[q]);
		ndig++;
		q++;
	}
	if (ndig == 0 || ndig > 6 || q >= end || s[q] != '}') {
		vm_lex_error(lx, p, "malformed escape: `\\u{...}` takes 1 to 6 hex digits");
		return 0;
	}
	if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
		vm_lex_error(lx, p, "invalid code point in `\\u{...}` escape (a surrogate or beyond 10FFFF)");
		return q + 1 - p;
	}
	*dn = vm_utf8_put(d, v);
	return q + 1 - p;
}

/* A string (s[start] is the opening quote). A raw newline ends it as
 * unterminated: strings do not span lines. */
static void vm_lex_string(vm_lexer *lx, vm_token *t, size_t start)
{
	const unsigned char *s = (const unsigned char *)lx->src;
	size_t n = lx->len, end = start + 1;
	bool closed = false;
	while (end < n && s[end] != '\n') {
		if (s[end] == '"') {
			closed = true;
			break;
		}
		if (s[end] == '\\' && end + 1 < n && s[end + 1] != '\n')
			end++;
		end++;
	}
	if (!closed)
		vm_lex_error(lx, start, "unterminated string");
	t->kind = VM_T_STR;
	/* The decoded form is never longer than the source: a `\u{...}` of k
	 * digits takes 4 + k >= 5 bytes and writes at most 4. */
	char *d = vm_arena_alloc(lx->arena, end - start);
	if (!d) {
		lx->oom = 1;
		t->s = "";
		lx->pos = closed ? end + 1 : end;
		return;
	}
	size_t k = 0, p = start + 1;
	uint32_t cp;
	while (p < end) {
		unsigned c = s[p];
		if (c == '\\') {
			if (p + 1 >= end) {
				p++; /* a backslash right before the end of an unterminated string */
				continue;
			}
			unsigned e = s[p + 1];
			char out = 0;
			switch (e) {
			case 'n':
				out = '\n';
				break;
			case 't':
				out = '\t';
				break;
			case 'r':
				out = '\r';
				break;
			case '0':
				out = 0;
				break;
			case '"':
				out = '"';
				break;
			case '\\':
				out = '\\';
				break;
			case 'u': {
				size_t dn;
				size_t took = vm_lex_unicode(lx, p, end, d + k, &dn);
				k += dn;
				p += took ? took : 2;
				continue;
			}
			default:
				if (e > 0x20 && e < 0x7F)
					vm_lex_error(lx, p, "invalid escape `\\%c` in a string", (int)e);
				else
					vm_lex_error(lx, p, "invalid escape in a string");
				p += 1; /* the next byte is checked as an ordinary one */
				continue;
			}
			d[k++] = out;
			p += 2;
		} else if (c == 0) {
			vm_lex_error(lx, p, "NUL byte in the source");
			p++;
		} else if (c >= 0x80) {
			size_t l = vm_utf8_len(s + p, end - p, &cp);
			if (!l) {
				vm_lex_error(lx, p, "invalid UTF-8");
				p++;
				continue;
			}
			memcpy(d + k, s + p, l);
			k += l;
			p += l;
		} else {
			d[k++] = (char)c;
			p++;
		}
	}
	assert(k < end - start);
	d[k] = 0;
	t->s = d;
	t->len = k;
	lx->pos = closed ? end + 1 : end;
}

/* The operators and punctuation: the token kind of the longest one at p
 * (0 if none) and its length in *n. */
static unsigned vm_lex_op(const vm_lexer *lx, size_t p, size_t *n)
{
	const char *s = lx->src;
	char c = s[p], d = p + 1 < lx->len ? s[p + 1] : 0;
	*n = 2;
	switch (c) {
	case '+':
		if (d == '+')
			return VM_T_CONCAT;
		*n = 1;
		return VM_T_PLUS;
	case '-':
		if (d == '>')
			return VM_T_ARROW;
		*n = 1;
		return VM_T_MINUS;
	case '=':
		if (d == '=')
			return VM_T_EQ;
		if (d == '>')
			return VM_T_FATARROW;
		*n = 1;
		return VM_T_ASSIGN;
	case '!':
		if (d == '=')
			return VM_T_NE;
		return 0;
	case '<':
		if (d == '=')
			return VM_T_LE;
		if (d == '<')
			return VM_T_SHL;
		*n = 1;
		return VM_T_LT;
	case '>':
		if (d == '=')
			return VM_T_GE;
		if (d == '>')
			return VM_T_SHR;
		*n = 1;
		return VM_T_GT;
	case '.':
		if (d == '.')
			return VM_T_DOTDOT;
		*n = 1;
		return VM_T_DOT;
	case '%':
		if (d == '{')
			return VM_T_MAPOPEN;
		*n = 1;
		return VM_T_PERCENT;
	default:
		break;
	}
	*n = 1;
	switch (c) {
	case '*':
		return VM_T_STAR;
	case '/':
		return VM_T_SLASH;
	case '|':
		return VM_T_BAR;
	case '^':
		return VM_T_CARET;
	case '&':
		return VM_T_AMP;
	case '~':
		return VM_T_TILDE;
	case ',':
		return VM_T_COMMA;
	case ';':
		return VM_T_SEMI;
	case ':':
		return VM_T_COLON;
	case '(':
		return VM_T_LPAREN;
	case ')':
		return VM_T_RPAREN;
	case '[':
		return VM_T_LBRACKET;
	case ']':
		return VM_T_RBRACKET;
	case '{':
		return VM_T_LBRACE;
	case '}':
		return VM_T_RBRACE;
	default:
		return 0;
	}
}

void vm_lex_next(vm_lexer *lx, vm_token *t)
{
	const char *s = lx->src;
	memset(t, 0, sizeof *t);
	for (;;) {
		size_t p = lx->pos;
		t->line = lx->line;
		t->col = (uint32_t)(p - lx->line_start + 1);
		t->src = s + p;
		t->depth = lx->depth;
		if (p >= lx->len) {
			t->kind = VM_T_EOF;
			t->src = s ? s + lx->len : "";
			break;
		}
		char c = s[p];
		if (c == ' ' || c == '\t' || c == '\r') {
			lx->pos++;
			continue;
		}
		if (c == '#') {
			vm_lex_comment(lx);
			continue;
		}
		if (c == '\n') {
			bool counts = vm_newline_counts(lx);
			lx->pos++;
			lx->line++;
			lx->line_start = lx->pos;
			if (counts) {
				t->kind = VM_T_NEWLINE;
				t->srclen = 1;
				break;
			}
			continue;
		}
		if (vm_is_ident_start(c)) {
			size_t e = p + 1;
			while (e < lx->len && vm_is_ident(s[e]))
				e++;
			t->kind = VM_T_NAME;
			t->s = s + p;
			t->len = e - p;
			for (size_t k = 0; k < sizeof vm_keywords / sizeof vm_keywords[0]; k++) {
				if (strlen(vm_keywords[k].word) == t->len &&
				    !memcmp(vm_keywords[k].word, t->s, t->len)) {
					t->kind = vm_keywords[k].kind;
					break;
				}
			}
			lx->pos = e;
		} else if (vm_is_digit(c)) {
			vm_lex_number(lx, t, p);
		} else if (c == '"') {
			vm_lex_string(lx, t, p);
		} else if (c == ':' && p + 1 < lx->len && vm_is_ident_start(s[p + 1])) {
			size_t e = p + 2;
			while (e < lx->len && vm_is_ident(s[e]))
				e++;
			t->kind = VM_T_ATOM;
			t->s = s + p + 1;
			t->len = e - p - 1;
			lx->pos = e;
		} else {
			size_t n;
			unsigned k = vm_lex_op(lx, p, &n);
			if (!k) {
				lx->pos += vm_lex_stray(lx, p);
				continue;
			}
			t->kind = (uint8_t)k;
			lx->pos += n;
			switch (k) {
			case VM_T_LPAREN:
				vm_push(lx, t, '(');
				break;
			case VM_T_LBRACKET:
				vm_push(lx, t, '[');
				break;
			case VM_T_MAPOPEN:
				vm_push(lx, t, '%');
				break;
			case VM_T_LBRACE:
				vm_push(lx, t, '{');
				break;
			case VM_T_RPAREN:
				vm_pop(lx, t, '(');
				break;
			case VM_T_RBRACKET:
				vm_pop(lx, t, '[');
				break;
			case VM_T_RBRACE:
				vm_pop(lx, t, '{');
				break;
			default:
				break;
			}
		}
		t->srclen = (size_t)(s + lx->pos - t->src);
		break;
	}
	lx->prev = t->kind;
}
