/* compile.c - the compiler: syntax trees to register bytecode.
 *
 * One pass over each function's tree. Registers are allocated as a stack:
 * a function's parameters are R[0 .. n-1], then its locals in scope order,
 * then temporaries above them (freereg); leaving a scope or finishing an
 * expression gives its registers back. An expression is compiled into a
 * register the caller names (expr_to) or into any register holding its
 * value (expr_any: a local's own register, no copy).
 *
 * Names resolve innermost first: the function's locals (innermost scope
 * first), the enclosing functions' locals (captured by value when the
 * closure is made: the capture list of each function in between grows),
 * the module's top-level functions and constants, the prelude's functions,
 * the built-ins. A captured `var` cannot be assigned in the closure.
 *
 * Control flow: conditions compile to test instructions followed by a
 * jump (code.h) with the jump's target patched later; jump lists chain
 * the pending jumps through a side array. Tail position (the body's last
 * expression, through if/match/receive branches and blocks, and `return`)
 * turns calls into tail calls, except inside `try`, whose handler must
 * stay in the frame.
 *
 * Patterns compile to tests and jumps on a register: each failing test
 * jumps to the clause's fail label; names bind to new locals of the
 * clause's scope.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "compile.h"
#include "obj.h"

/* ------------------------------------------------------------ state */

struct local {
	const char *name;
	uint8_t reg;
	bool is_var;
};

struct capture {
	const char *name;
	uint16_t from; /* code.h: VM_CAP_REG | parent register, or parent capture index */
	bool is_var;
};

struct loop {
	struct loop *outer;
	int breaks;    /* jump list */
	int conts;     /* jump list (for loops: patched to the loop's step) */
	int cont_to;   /* >= 0: continue jumps straight here */
	int try_depth; /* try blocks open when the loop began */
	uint32_t nlocals;
};

typedef struct fstate {
	struct fstate *parent;
	struct cstate *C;
	vm_proto *p;
	uint32_t *code;
	uint32_t *lines;
	uint32_t ncode, capcode;
	int *jnext; /* jump lists: the next pending jump after instruction i (-1 none) */
	vm_value *k;
	uint32_t nk, capk;
	vm_proto **kids;
	uint32_t nkids, capkids;
	struct local locals[VM_MAX_REGS];
	uint32_t nlocals;
	struct capture caps[VM_MAX_REGS];
	uint32_t ncaps;
	uint32_t freereg, maxreg;
	struct loop *loop;
	int try_depth;
	uint32_t line; /* the line of the node being compiled */
	bool regs_reported;
} fstate;

typedef struct cstate {
	vm_program *prog;
	vm_module *mod;
	const char *path;
	const char *src;
	size_t srclen;
	bool failed;
	bool oom;
} cstate;

#define NO_JUMP (-1)

/* ------------------------------------------------------------ errors */

static char *line_text(const char *src, size_t len, uint32_t line)
{
	if (!src)
		return NULL;
	size_t i = 0;
	for (uint32_t l = 1; l < line && i < len; i++)
		if (src[i] == '\n')
			l++;
	size_t j = i;
	while (j < len && src[j] != '\n')
		j++;
	char *t = malloc(j - i + 1);
	if (t) {
		memcpy(t, src + i, j - i);
		t[j - i] = 0;
	}
	return t;
}

static int add_error(vm_program *prog, const char *path, const char *src, size_t len, uint32_t line, uint32_t col,
		     const char *msg)
{
	if (prog->nerrors == prog->caperrors) {
		uint32_t cap = prog->caperrors ? 2 * prog->caperrors : 8;
		vm_error *n = realloc(prog->errors, cap * sizeof *n);
		if (!n)
			return -ENOMEM;
		prog->errors = n;
		prog->caperrors = cap;
	}
	vm_error *e = &prog->errors[prog->nerrors];
	e->path = strdup(path);
	e->msg = strdup(msg);
	e->text = line_text(src, len, line);
	e->line = line;
	e->col = col;
	if (!e->path || !e->msg) {
		free(e->path);
		free(e->msg);
		free(e->text);
		return -ENOMEM;
	}
	prog->nerrors++;
	return 0;
}

__attribute__((format(printf, 3, 4))) static void error_at(fstate *fs, const vm_node *n, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	cstate *C = fs->C;
	C->failed = true;
	if (add_error(C->prog, C->path, C->src, C->srclen, n ? n->line : fs->line, n ? n->col : 1, msg))
		C->oom = true;
}

void vm_print_errors(const vm_program *prog, FILE *f)
{
	for (uint32_t i = 0; i < prog->nerrors; i++) {
		const vm_error *e = &prog->errors[i];
		fprintf(f, "%s:%u:%u: error: %s\n", e->path, e->line, e->col, e->msg);
		if (e->text) {
			fprintf(f, "%s\n", e->text);
			/* the caret under the column: tabs kept so it lines up */
			for (uint32_t c = 1; c < e->col && e->text[c - 1]; c++)
				fputc(e->text[c - 1] == '\t' ? '\t' : ' ', f);
			fputs("^\n", f);
		}
	}
}

/* ------------------------------------------------------------ emitting */

static void *grow(fstate *fs, void *p, uint32_t *cap, size_t elem)
{
	uint32_t n = *cap ? 2 * *cap : 64;
	void *q = realloc(p, n * elem);
	if (!q) {
		fs->C->oom = true;
		return NULL;
	}
	*cap = n;
	return q;
}

static int emit(fstate *fs, uint32_t ins)
{
	if (fs->ncode == fs->capcode) {
		uint32_t cap = fs->capcode;
		uint32_t *c = grow(fs, fs->code, &cap, sizeof *c);
		if (!c)
			return 0;
		fs->code = c;
		uint32_t cap2 = fs->capcode;
		uint32_t *l = grow(fs, fs->lines, &cap2, sizeof *l);
		if (!l)
			return 0;
		fs->lines = l;
		uint32_t cap3 = fs->capcode;
		int *j = grow(fs, fs->jnext, &cap3, sizeof *j);
		if (!j)
			return 0;
		fs->jnext = j;
		fs->capcode = cap;
	}
	fs->code[fs->ncode] = ins;
	fs->lines[fs->ncode] = fs->line;
	fs->jnext[fs->ncode] = NO_JUMP;
	return (int)fs->ncode++;
}

static inline int emit_abc(fstate *fs, unsigned op, unsigned a, unsigned b, unsigned c)
{
	return emit(fs, vm_abc(op, a, b, c));
}

static inline int emit_ad(fstate *fs, unsigned op, unsigned a, unsigned d)
{
	return emit(fs, vm_ad(op, a, d));
}

static int here(fstate *fs)
{
	return (int)fs->ncode;
}

/* A jump to be patched; returns its index (a one-element jump list). */
static int emit_jump(fstate *fs)
{
	return emit(fs, vm_j(OP_JMP, 0));
}

static int concat_jumps(fstate *fs, int l1, int l2)
{
	if (l2 == NO_JUMP)
		return l1;
	if (l1 == NO_JUMP)
		return l2;
	int i = l1;
	while (fs->jnext[i] != NO_JUMP)
		i = fs->jnext[i];
	fs->jnext[i] = l2;
	return l1;
}

static void patch_to(fstate *fs, int list, int target)
{
	while (list != NO_JUMP) {
		int next = fs->jnext[list];
		int off = target - (list + 1);
		if (off > VM_SJ_MAX || off < -VM_SJ_MAX)
			error_at(fs, NULL, "function too large");
		fs->code[list] = vm_j(OP_JMP, off);
		fs->jnext[list] = NO_JUMP;
		list = next;
	}
}

static void patch_here(fstate *fs, int list)
{
	patch_to(fs, list, here(fs));
}

static void emit_jump_to(fstate *fs, int target)
{
	int j = emit_jump(fs);
	patch_to(fs, j, target);
}

/* A test instruction and its jump (taken when the test fails). */
static int emit_test(fstate *fs, uint32_t ins)
{
	emit(fs, ins);
	return emit_jump(fs);
}

static uint32_t add_k(fstate *fs, vm_value v)
{
	for (uint32_t i = 0; i < fs->nk; i++)
		if (fs->k[i] == v)
			return i;
	if (fs->nk == fs->capk) {
		vm_value *k = grow(fs, fs->k, &fs->capk, sizeof *k);
		if (!k)
			return 0;
		fs->k = k;
	}
	if (fs->nk >= 65535) {
		error_at(fs, NULL, "too many constants in one function");
		return 0;
	}
	fs->k[fs->nk] = v;
	return fs->nk++;
}

/* ------------------------------------------------------------ registers */

static uint32_t reserve(fstate *fs, uint32_t n, const vm_node *at)
{
	uint32_t r = fs->freereg;
	if (r + n > VM_MAX_REGS) {
		if (!fs->regs_reported) /* once per function: the rest would be its echo */
			error_at(fs, at, "function too complex (more than %d registers: fewer locals, or split it)",
				 VM_MAX_REGS);
		fs->regs_reported = true;
		return VM_MAX_REGS - n > 0 ? VM_MAX_REGS - n : 0;
	}
	fs->freereg += n;
	if (fs->freereg > fs->maxreg)
		fs->maxreg = fs->freereg;
	return r;
}

static uint32_t new_local(fstate *fs, const char *name, bool is_var, const vm_node *at)
{
	uint32_t r = reserve(fs, 1, at);
	if (fs->nlocals < VM_MAX_REGS)
		fs->locals[fs->nlocals++] = (struct local){name, (uint8_t)r, is_var};
	return r;
}

/* Bind name to register r (a local that lives in an existing register). */
static void bind_local(fstate *fs, const char *name, uint32_t r, bool is_var)
{
	if (fs->nlocals < VM_MAX_REGS)
		fs->locals[fs->nlocals++] = (struct local){name, (uint8_t)r, is_var};
}

struct scope {
	uint32_t nlocals, freereg;
};

static struct scope open_scope(fstate *fs)
{
	return (struct scope){fs->nlocals, fs->freereg};
}

static void close_scope(fstate *fs, struct scope s)
{
	fs->nlocals = s.nlocals;
	fs->freereg = s.freereg;
}

/* ------------------------------------------------------------ literals */

static vm_value lit_str(fstate *fs, const char *s, size_t len)
{
	vm_value v = vm_lit_str(fs->C->prog->vm, s, len);
	if (v == VM_NIL)
		fs->C->oom = true;
	return v;
}

static vm_value lit_int(fstate *fs, int64_t i)
{
	if (vm_fits_small(i))
		return vm_from_small(i);
	vm_header *o = vm_lit_alloc(fs->C->prog->vm, 2);
	if (!o) {
		fs->C->oom = true;
		return VM_NIL;
	}
	o[0] = vm_hdr(VM_OBJ_BIGINT, 1);
	memcpy(&o[1], &i, sizeof i);
	return vm_from_obj(o);
}

static vm_value lit_atom(fstate *fs, const char *s, size_t len, const vm_node *at)
{
	int64_t a = vm_atom_intern(fs->C->prog->vm, s, len);
	if (a < 0) {
		error_at(fs, at, a == -EINVAL ? "atom name too long" : "too many atoms");
		return VM_NIL;
	}
	return vm_from_atom((uint32_t)a);
}

/* The constant value of a literal node, or false if it is none. */
static bool literal_value(fstate *fs, const vm_node *n, vm_value *v)
{
	switch (n->kind) {
	case VM_N_INT:
		*v = lit_int(fs, n->i);
		return true;
	case VM_N_FLOAT:
		*v = vm_from_float(n->f);
		return true;
	case VM_N_STR:
		*v = lit_str(fs, n->s, n->len);
		return true;
	case VM_N_ATOM:
		*v = lit_atom(fs, n->s, n->len, n);
		return true;
	case VM_N_NIL:
		*v = VM_NIL;
		return true;
	case VM_N_TRUE:
		*v = VM_TRUE;
		return true;
	case VM_N_FALSE:
		*v = VM_FALSE;
		return true;
	default:
		return false;
	}
}

static void load_const(fstate *fs, uint32_t dst, vm_value v)
{
	if (vm_is_small(v) && vm_small(v) >= -32768 && vm_small(v) <= 32767)
		emit_ad(fs, OP_LOADI, dst, (unsigned)(vm_small(v) + 32768));
	else if (v == VM_NIL)
		emit_abc(fs, OP_LOADNIL, dst, 0, 0);
	else if (v == VM_TRUE || v == VM_FALSE)
		emit_abc(fs, OP_LOADBOOL, dst, v == VM_TRUE, 0);
	else
		emit_ad(fs, OP_LOADK, dst, add_k(fs, v));
}

/* ------------------------------------------------------------ names */

enum name_kind { NAME_NONE, NAME_LOCAL, NAME_CAP, NAME_GLOBAL, NAME_FN, NAME_BUILTIN };

struct name_ref {
	enum name_kind kind;
	uint32_t index; /* register, capture, global */
	bool is_var;
	const vm_fnent *fn;
	const vm_builtin *bi;
};

static int find_local(fstate *fs, const char *name)
{
	for (int i = (int)fs->nlocals - 1; i >= 0; i--)
		if (strcmp(fs->locals[i].name, name) == 0)
			return i;
	return -1;
}

/* name as a capture of fs (added to fs and to every function between it
 * and the one that has it as a local); -1 if no enclosing function has it. */
static int find_capture(fstate *fs, const char *name, bool *is_var)
{
	for (uint32_t i = 0; i < fs->ncaps; i++)
		if (strcmp(fs->caps[i].name, name) == 0) {
			*is_var = fs->caps[i].is_var;
			return (int)i;
		}
	if (!fs->parent)
		return -1;
	int from;
	int l = find_local(fs->parent, name);
	if (l >= 0) {
		from = VM_CAP_REG | fs->parent->locals[l].reg;
		*is_var = fs->parent->locals[l].is_var;
	} else {
		int c = find_capture(fs->parent, name, is_var);
		if (c < 0)
			return -1;
		from = c;
	}
	if (fs->ncaps >= 127) {
		error_at(fs, NULL, "too many captured names in one closure");
		return -1;
	}
	fs->caps[fs->ncaps] = (struct capture){name, (uint16_t)from, *is_var};
	return (int)fs->ncaps++;
}

static const vm_fnent *module_fn(const vm_module *m, const char *name)
{
	return m ? vm_module_fn(m, name) : NULL;
}

static uint32_t idx_find(const vm_module *m, const char *name);
#define IDX_CONST (1u << 31)

static int module_const(const vm_module *m, const char *name)
{
	uint32_t e = idx_find(m, name);
	return e && ((e - 1) & IDX_CONST) ? (int)m->consts[(e - 1) & ~IDX_CONST] : -1;
}

static struct name_ref resolve(fstate *fs, const char *name)
{
	struct name_ref r = {NAME_NONE, 0, false, NULL, NULL};
	int l = find_local(fs, name);
	if (l >= 0) {
		r.kind = NAME_LOCAL;
		r.index = fs->locals[l].reg;
		r.is_var = fs->locals[l].is_var;
		return r;
	}
	bool is_var = false;
	int c = find_capture(fs, name, &is_var);
	if (c >= 0) {
		r.kind = NAME_CAP;
		r.index = (uint32_t)c;
		r.is_var = is_var;
		return r;
	}
	vm_module *m = fs->C->mod;
	if ((r.fn = module_fn(m, name))) {
		r.kind = NAME_FN;
		return r;
	}
	int g = module_const(m, name);
	if (g >= 0) {
		r.kind = NAME_GLOBAL;
		r.index = (uint32_t)g;
		return r;
	}
	if ((r.bi = vm_builtin_find(name, strlen(name)))) {
		r.kind = NAME_BUILTIN;
		return r;
	}
	if (m != fs->C->prog->prelude && (r.fn = module_fn(fs->C->prog->prelude, name))) {
		r.kind = NAME_FN;
		return r;
	}
	return r;
}

/* ------------------------------------------------------------ expressions */

static void expr_to(fstate *fs, const vm_node *n, uint32_t dst, bool tail);
static uint32_t expr_any(fstate *fs, const vm_node *n);
static void block_to(fstate *fs, const vm_node *n, uint32_t dst, bool tail);
static int cond_jump(fstate *fs, const vm_node *n);
static void pattern(fstate *fs, const vm_node *p, uint32_t reg, int *fails, struct scope clause);

static void set_line(fstate *fs, const vm_node *n)
{
	if (n && n->line)
		fs->line = n->line;
}

/* A built-in used as a value: a function (made once per program) whose
 * body calls it with its parameters. Only for a built-in of fixed arity. */
static bool builtin_value(fstate *fs, const vm_builtin *bi, const vm_node *at, vm_value *out)
{
	vm_program *prog = fs->C->prog;
	for (uint32_t i = 0; i < prog->nbiwraps; i++)
		if (prog->biwraps[i].builtin == bi) {
			*out = prog->biwraps[i].closure;
			return true;
		}
	if (bi->min_args != bi->max_args) {
		error_at(fs, at, "the built-in `%s` takes a varying number of arguments: call it, or wrap it in a `fn`",
			 bi->name);
		return false;
	}
	if (prog->nbiwraps == prog->capbiwraps) {
		uint32_t cap = prog->capbiwraps ? 2 * prog->capbiwraps : 8;
		struct vm_biwrap *w = realloc(prog->biwraps, cap * sizeof *w);
		if (!w) {
			fs->C->oom = true;
			return false;
		}
		prog->biwraps = w;
		prog->capbiwraps = cap;
	}
	unsigned n = (unsigned)bi->min_args;
	vm_proto *p = vm_arena_alloc(prog->arena, sizeof *p);
	uint32_t *code = vm_arena_alloc(prog->arena, (n + 2) * sizeof *code);
	uint32_t *lines = vm_arena_alloc(prog->arena, (n + 2) * sizeof *lines);
	vm_header *o = vm_lit_alloc(prog->vm, 2);
	if (!p || !code || !lines || !o) {
		fs->C->oom = true;
		return false;
	}
	memset(p, 0, sizeof *p);
	p->name = bi->name;
	p->file = "(built-in)";
	p->nparams = (uint8_t)n;
	p->nregs = (uint8_t)(2 * n + 1);
	/* R[n] the callee's slot, the arguments above it */
	for (unsigned i = 0; i < n; i++)
		code[i] = vm_abc(OP_MOVE, n + 1 + i, i, 0);
	code[n] = vm_abc(OP_BUILTIN, n, n, vm_builtin_index(bi));
	code[n + 1] = vm_abc(OP_RET, n, 0, 0);
	memset(lines, 0, (n + 2) * sizeof *lines);
	p->code = code;
	p->lines = lines;
	p->ncode = n + 2;
	o[0] = vm_hdr(VM_OBJ_CLOSURE, 1);
	o[1] = vm_from_native(p);
	*out = vm_from_obj(o);
	prog->biwraps[prog->nbiwraps++] = (struct vm_biwrap){bi, *out};
	return true;
}

static void name_to(fstate *fs, const vm_node *n, uint32_t dst)
{
	struct name_ref r = resolve(fs, n->s);
	switch (r.kind) {
	case NAME_LOCAL:
		if (r.index != dst)
			emit_abc(fs, OP_MOVE, dst, r.index, 0);
		return;
	case NAME_CAP:
		emit_abc(fs, OP_GETCAP, dst, r.index, 0);
		return;
	case NAME_GLOBAL:
		emit_ad(fs, OP_GETGLOBAL, dst, r.index);
		return;
	case NAME_FN:
		emit_ad(fs, OP_LOADK, dst, add_k(fs, r.fn->closure));
		return;
	case NAME_BUILTIN: {
		vm_value c;
		if (builtin_value(fs, r.bi, n, &c))
			emit_ad(fs, OP_LOADK, dst, add_k(fs, c));
		return;
	}
	case NAME_NONE:
		error_at(fs, n, "undefined name `%s`", n->s);
		return;
	}
}

static const unsigned binop_code[] = {
	[VM_OP_ADD] = OP_ADD,	[VM_OP_SUB] = OP_SUB,	    [VM_OP_MUL] = OP_MUL, [VM_OP_DIV] = OP_DIV,
	[VM_OP_MOD] = OP_MOD,	[VM_OP_CONCAT] = OP_CONCAT, [VM_OP_BOR] = OP_BOR, [VM_OP_BXOR] = OP_BXOR,
	[VM_OP_BAND] = OP_BAND, [VM_OP_SHL] = OP_SHL,	    [VM_OP_SHR] = OP_SHR,
};

static bool small_lit(const vm_node *n, int lo, int hi, int *v)
{
	if (n->kind != VM_N_INT || n->i < lo || n->i > hi)
		return false;
	*v = (int)n->i;
	return true;
}

static bool is_local_reg(fstate *fs, uint32_t r);

static void binop_to(fstate *fs, const vm_node *n, uint32_t dst)
{
	struct scope s = open_scope(fs);
	int k;
	unsigned op = n->op;
	/* The left operand straight into dst when dst is the newest
	 * temporary (no local lives there, and nothing after reads it): a
	 * chain a + b + c + ... then needs two registers, not one per term. */
	bool into_dst = dst + 1 == fs->freereg && !is_local_reg(fs, dst);
	if ((op == VM_OP_ADD || op == VM_OP_SUB) && small_lit(n->b, -127, 127, &k)) {
		uint32_t a = into_dst ? (expr_to(fs, n->a, dst, false), dst) : expr_any(fs, n->a);
		emit_abc(fs, OP_ADDI, dst, a, (unsigned)(uint8_t)(int8_t)(op == VM_OP_ADD ? k : -k));
		close_scope(fs, s);
		return;
	}
	uint32_t a = into_dst ? (expr_to(fs, n->a, dst, false), dst) : expr_any(fs, n->a);
	uint32_t b = expr_any(fs, n->b);
	set_line(fs, n);
	switch (op) {
	case VM_OP_EQ:
		emit_abc(fs, OP_EQ, dst, a, b);
		break;
	case VM_OP_NE:
		emit_abc(fs, OP_NE, dst, a, b);
		break;
	case VM_OP_LT:
		emit_abc(fs, OP_LT, dst, a, b);
		break;
	case VM_OP_LE:
		emit_abc(fs, OP_LE, dst, a, b);
		break;
	case VM_OP_GT:
		emit_abc(fs, OP_LT, dst, b, a);
		break;
	case VM_OP_GE:
		emit_abc(fs, OP_LE, dst, b, a);
		break;
	default:
		emit_abc(fs, binop_code[op], dst, a, b);
	}
	close_scope(fs, s);
}

/* The arguments into the next consecutive registers. */
static void args_to(fstate *fs, const vm_node *n)
{
	for (uint32_t i = 0; i < n->nkids; i++) {
		uint32_t r = reserve(fs, 1, n->kids[i]);
		expr_to(fs, n->kids[i], r, false);
	}
}

/* A register some name in scope lives in (a temporary is not). */
static bool is_local_reg(fstate *fs, uint32_t r)
{
	for (uint32_t i = 0; i < fs->nlocals; i++)
		if (fs->locals[i].reg == r)
			return true;
	return false;
}

static void call_to(fstate *fs, const vm_node *n, uint32_t dst, bool tail)
{
	if (n->nkids > 200) {
		error_at(fs, n, "too many arguments");
		return;
	}
	struct scope s = open_scope(fs);
	const vm_node *f = n->a;
	const vm_fnent *known = NULL;
	const vm_builtin *bi = NULL;
	if (f->kind == VM_N_NAME) {
		struct name_ref r = resolve(fs, f->s);
		if (r.kind == NAME_FN)
			known = r.fn;
		else if (r.kind == NAME_BUILTIN)
			bi = r.bi;
		else if (r.kind == NAME_NONE) {
			error_at(fs, f, "undefined function `%s`", f->s);
			return;
		}
	} else if (f->kind == VM_N_DOT) {
		const vm_module *m = NULL;
		for (uint32_t i = 0; i < fs->C->mod->nimports; i++)
			if (strcmp(fs->C->mod->imports[i]->base, f->a->s) == 0)
				m = fs->C->mod->imports[i];
		if (!m) {
			error_at(fs, f->a, "no imported module named `%s`", f->a->s);
			return;
		}
		known = vm_module_fn(m, f->s);
		if (!known) {
			error_at(fs, f, "module `%s` has no function `%s`", f->a->s, f->s);
			return;
		}
	}
	/* A call: base is the callee's link slot, where its result comes
	 * back; base + 1 its function; the arguments above (code.h). A
	 * built-in: its arguments right after base. When dst is the newest
	 * register (a temporary), it is base: no move. */
	uint32_t base;
	if (dst + 1 == fs->freereg && !is_local_reg(fs, dst))
		base = dst;
	else
		base = reserve(fs, 1, n);
	if (!bi) {
		uint32_t fn = reserve(fs, 1, n);
		assert(fn == base + 1);
		if (!known)
			expr_to(fs, f, fn, false);
	}
	args_to(fs, n);
	set_line(fs, n);
	if (bi) {
		emit_abc(fs, OP_BUILTIN, base, n->nkids, vm_builtin_index(bi));
	} else if (known) {
		uint32_t kk = add_k(fs, vm_from_native(known->proto));
		if (kk > 255) {
			/* too many constants for C: a generic call */
			emit_ad(fs, OP_LOADK, base + 1, add_k(fs, known->closure));
			emit_abc(fs, tail ? OP_TAILCALL : OP_CALL, base, n->nkids, 0);
		} else {
			emit_abc(fs, tail ? OP_TAILCALLK : OP_CALLK, base, n->nkids, kk);
		}
	} else {
		emit_abc(fs, tail ? OP_TAILCALL : OP_CALL, base, n->nkids, 0);
	}
	if (base != dst)
		emit_abc(fs, OP_MOVE, dst, base, 0);
	close_scope(fs, s);
}

/* A closure: its own function, compiled now; CLOSURE captures. */
static vm_proto *new_proto(cstate *C, const char *name, uint32_t line);
static bool compile_into(cstate *C, fstate *parent, vm_proto *p, vm_node *const *params, uint32_t nparams,
			 const vm_node *body);

static void closure_to(fstate *fs, const vm_node *n, uint32_t dst)
{
	char name[32];
	snprintf(name, sizeof name, "fn@%u", n->line);
	const char *nm = vm_arena_strdup(fs->C->prog->arena, name, strlen(name));
	vm_proto *p = nm ? new_proto(fs->C, nm, n->line) : NULL;
	if (!p || !compile_into(fs->C, fs, p, n->kids, n->nkids, n->a))
		return;
	if (fs->nkids == fs->capkids) {
		vm_proto **k = grow(fs, fs->kids, &fs->capkids, sizeof *k);
		if (!k)
			return;
		fs->kids = k;
	}
	fs->kids[fs->nkids] = p;
	set_line(fs, n);
	emit_ad(fs, OP_CLOSURE, dst, fs->nkids++);
}

static void tuple_to(fstate *fs, const vm_node *n, uint32_t dst)
{
	if (n->nkids > 200) {
		error_at(fs, n, "tuple literal too large (at most 200 elements)");
		return;
	}
	struct scope s = open_scope(fs);
	uint32_t base = fs->freereg;
	for (uint32_t i = 0; i < n->nkids; i++)
		expr_to(fs, n->kids[i], reserve(fs, 1, n->kids[i]), false);
	set_line(fs, n);
	emit_abc(fs, OP_TUPLE, dst, base, n->nkids);
	close_scope(fs, s);
}

/* [a, b, ... | t]: in chunks of 64 elements from the end, each chunk's
 * tail the list built so far. */
static void list_to(fstate *fs, const vm_node *n, uint32_t dst)
{
	struct scope s = open_scope(fs);
	uint32_t acc = reserve(fs, 1, n);
	if (n->a)
		expr_to(fs, n->a, acc, false);
	else
		load_const(fs, acc, VM_EMPTY);
	uint32_t end = n->nkids;
	do {
		uint32_t start = end > 64 ? end - 64 : 0;
		struct scope c = open_scope(fs);
		uint32_t base = fs->freereg;
		for (uint32_t i = start; i < end; i++)
			expr_to(fs, n->kids[i], reserve(fs, 1, n->kids[i]), false);
		emit_abc(fs, OP_MOVE, reserve(fs, 1, n), acc, 0);
		set_line(fs, n);
		emit_abc(fs, OP_LIST, acc, base, end - start);
		close_scope(fs, c);
		end = start;
	} while (end > 0);
	if (acc != dst)
		emit_abc(fs, OP_MOVE, dst, acc, 0);
	close_scope(fs, s);
}

static void map_to(fstate *fs, const vm_node *n, uint32_t dst)
{
	struct scope s = open_scope(fs);
	uint32_t acc = reserve(fs, 1, n);
	if (n->a)
		expr_to(fs, n->a, acc, false);
	else
		emit_ad(fs, OP_LOADK, acc, add_k(fs, vm_map_empty));
	uint32_t i = 0;
	do {
		uint32_t cnt = n->nkids - i > 32 ? 32 : n->nkids - i;
		struct scope c = open_scope(fs);
		uint32_t base = fs->freereg;
		for (uint32_t j = 0; j < cnt; j++) {
			const vm_node *pr = n->kids[i + j];
			expr_to(fs, pr->a, reserve(fs, 1, pr->a), false);
			expr_to(fs, pr->b, reserve(fs, 1, pr->b), false);
		}
		emit_abc(fs, OP_MOVE, reserve(fs, 1, n), acc, 0);
		set_line(fs, n);
		emit_abc(fs, OP_MAP, acc, base, cnt);
		close_scope(fs, c);
		i += cnt;
	} while (i < n->nkids);
	if (acc != dst)
		emit_abc(fs, OP_MOVE, dst, acc, 0);
	close_scope(fs, s);
}

/* a and b / a or b: the deciding operand. */
static void andor_to(fstate *fs, const vm_node *n, uint32_t dst)
{
	expr_to(fs, n->a, dst, false);
	int j = emit_test(fs, vm_abc(n->kind == VM_N_AND ? OP_TESTNOT : OP_TEST, dst, 0, 0));
	/* test holds (a decides): skip b */
	int over = emit_jump(fs);
	patch_here(fs, j);
	expr_to(fs, n->b, dst, false);
	patch_here(fs, over);
}

static void if_to(fstate *fs, const vm_node *n, uint32_t dst, bool tail)
{
	int f = cond_jump(fs, n->a);
	block_to(fs, n->b, dst, tail);
	if (tail) {
		/* a branch in tail position returns at once */
		emit_abc(fs, OP_RET, dst, 0, 0);
		patch_here(fs, f);
		if (!n->c)
			emit_abc(fs, OP_LOADNIL, dst, 0, 0);
		else if (n->c->kind == VM_N_IF)
			if_to(fs, n->c, dst, tail);
		else
			block_to(fs, n->c, dst, tail);
		return;
	}
	if (n->c) {
		int end = emit_jump(fs);
		patch_here(fs, f);
		if (n->c->kind == VM_N_IF)
			if_to(fs, n->c, dst, tail);
		else
			block_to(fs, n->c, dst, tail);
		patch_here(fs, end);
	} else {
		int end = emit_jump(fs);
		patch_here(fs, f);
		emit_abc(fs, OP_LOADNIL, dst, 0, 0);
		patch_here(fs, end);
	}
}

/* Jumps taken when n is falsy (the list returned); falls through when
 * truthy. */
static int cond_jump(fstate *fs, const vm_node *n)
{
	set_line(fs, n);
	if (n->kind == VM_N_NOT) {
		/* jump when the operand is truthy */
		struct scope s = open_scope(fs);
		uint32_t r = expr_any(fs, n->a);
		close_scope(fs, s);
		return emit_test(fs, vm_abc(OP_TESTNOT, r, 0, 0));
	}
	if (n->kind == VM_N_AND) {
		int f1 = cond_jump(fs, n->a);
		int f2 = cond_jump(fs, n->b);
		return concat_jumps(fs, f1, f2);
	}
	if (n->kind == VM_N_BINOP && (n->op >= VM_OP_EQ && n->op <= VM_OP_GE)) {
		struct scope s = open_scope(fs);
		int k;
		uint32_t ins;
		if (n->op == VM_OP_LT && small_lit(n->b, -128, 127, &k)) {
			ins = vm_abc(OP_TLTI, expr_any(fs, n->a), (uint8_t)(int8_t)k, 0);
		} else if (n->op == VM_OP_GT && small_lit(n->b, -128, 127, &k)) {
			ins = vm_abc(OP_TGTI, expr_any(fs, n->a), (uint8_t)(int8_t)k, 0);
		} else if (n->op == VM_OP_LE && small_lit(n->b, -128, 127, &k)) {
			ins = vm_abc(OP_TLEI, expr_any(fs, n->a), (uint8_t)(int8_t)k, 0);
		} else if (n->op == VM_OP_GE && small_lit(n->b, -128, 127, &k)) {
			ins = vm_abc(OP_TGEI, expr_any(fs, n->a), (uint8_t)(int8_t)k, 0);
		} else {
			uint32_t a = expr_any(fs, n->a);
			uint32_t b = expr_any(fs, n->b);
			switch (n->op) {
			case VM_OP_EQ:
				ins = vm_abc(OP_TEQ, a, b, 0);
				break;
			case VM_OP_LT:
				ins = vm_abc(OP_TLT, a, b, 0);
				break;
			case VM_OP_LE:
				ins = vm_abc(OP_TLE, a, b, 0);
				break;
			case VM_OP_GT:
				ins = vm_abc(OP_TLT, b, a, 0);
				break;
			case VM_OP_GE:
				ins = vm_abc(OP_TLE, b, a, 0);
				break;
			default: { /* != : the test inverted */
				uint32_t t = reserve(fs, 1, n);
				emit_abc(fs, OP_NE, t, a, b);
				ins = vm_abc(OP_TEST, t, 0, 0);
			}
			}
		}
		close_scope(fs, s);
		set_line(fs, n);
		return emit_test(fs, ins);
	}
	struct scope s = open_scope(fs);
	uint32_t r = expr_any(fs, n);
	close_scope(fs, s);
	return emit_test(fs, vm_abc(OP_TEST, r, 0, 0));
}

static void while_stmt(fstate *fs, const vm_node *n)
{
	int top = here(fs);
	int exit = cond_jump(fs, n->a);
	struct loop lp = {fs->loop, NO_JUMP, NO_JUMP, top, fs->try_depth, fs->nlocals};
	fs->loop = &lp;
	struct scope s = open_scope(fs);
	uint32_t t = reserve(fs, 1, n);
	block_to(fs, n->b, t, false);
	close_scope(fs, s);
	emit_jump_to(fs, top);
	fs->loop = lp.outer;
	patch_here(fs, exit);
	patch_here(fs, lp.breaks);
}

/* Bind the loop's pattern to the value in r (a mismatch raises badmatch). */
static void loop_pattern(fstate *fs, const vm_node *p, uint32_t r, struct scope body)
{
	int fails = NO_JUMP;
	pattern(fs, p, r, &fails, body);
	if (fails != NO_JUMP) {
		int ok = emit_jump(fs);
		patch_here(fs, fails);
		emit_abc(fs, OP_BADMATCH, r, 0, 0);
		patch_here(fs, ok);
	}
}

static void for_stmt(fstate *fs, const vm_node *n)
{
	struct scope outer = open_scope(fs);
	struct loop lp = {fs->loop, NO_JUMP, NO_JUMP, -1, fs->try_depth, 0};
	if (n->b->kind == VM_N_RANGE) {
		uint32_t r = reserve(fs, 2, n);
		expr_to(fs, n->b->a, r, false);
		expr_to(fs, n->b->b, r + 1, false);
		set_line(fs, n);
		int exit = emit_test(fs, vm_abc(OP_FORPREP, r, 0, 0));
		int body = here(fs);
		lp.nlocals = fs->nlocals;
		fs->loop = &lp;
		struct scope s = open_scope(fs);
		if (n->a->kind == VM_N_NAME)
			bind_local(fs, n->a->s, r, false); /* the counter itself: never assigned */
		else
			loop_pattern(fs, n->a, r, s);
		uint32_t t = reserve(fs, 1, n);
		block_to(fs, n->c, t, false);
		close_scope(fs, s);
		patch_here(fs, lp.conts);
		emit(fs, vm_abc(OP_FORLOOP, r, 0, 0));
		emit_jump_to(fs, body);
		fs->loop = lp.outer;
		patch_here(fs, exit);
	} else {
		uint32_t it = reserve(fs, 2, n);
		uint32_t src = expr_any(fs, n->b);
		set_line(fs, n);
		emit_abc(fs, OP_ITER, it, src, 0);
		int top = here(fs);
		int exit = emit_test(fs, vm_abc(OP_NEXT, it, it + 1, 0));
		lp.nlocals = fs->nlocals;
		lp.cont_to = top;
		fs->loop = &lp;
		struct scope s = open_scope(fs);
		loop_pattern(fs, n->a, it + 1, s);
		uint32_t t = reserve(fs, 1, n);
		block_to(fs, n->c, t, false);
		close_scope(fs, s);
		emit_jump_to(fs, top);
		fs->loop = lp.outer;
		patch_here(fs, exit);
	}
	patch_here(fs, lp.breaks);
	close_scope(fs, outer);
}

static void break_stmt(fstate *fs, const vm_node *n, bool cont)
{
	if (!fs->loop) {
		error_at(fs, n, "`%s` outside a loop", cont ? "continue" : "break");
		return;
	}
	for (int i = fs->try_depth; i > fs->loop->try_depth; i--)
		emit_abc(fs, OP_ENDTRY, 0, 0, 0);
	if (cont && fs->loop->cont_to >= 0) {
		emit_jump_to(fs, fs->loop->cont_to);
	} else {
		int j = emit_jump(fs);
		if (cont)
			fs->loop->conts = concat_jumps(fs, fs->loop->conts, j);
		else
			fs->loop->breaks = concat_jumps(fs, fs->loop->breaks, j);
	}
}

/* match / receive / catch clauses on the value in v: each clause's body to
 * dst, a jump to the end; when none matches, fallthrough (returned: the
 * jump list of "no clause matched" is where the code continues). */
static void clauses_to(fstate *fs, const vm_node *n, uint32_t v, uint32_t dst, bool tail, int *end)
{
	for (uint32_t i = 0; i < n->nkids; i++) {
		const vm_node *cl = n->kids[i];
		if (cl->kind != VM_N_CLAUSE)
			continue;
		struct scope s = open_scope(fs);
		int fails = NO_JUMP;
		set_line(fs, cl);
		pattern(fs, cl->a, v, &fails, s);
		if (cl->b) {
			/* a guard that raises counts as no match */
			uint32_t g = reserve(fs, 1, cl->b);
			int t = emit_ad(fs, OP_TRY, g, 0);
			fs->try_depth++;
			expr_to(fs, cl->b, g, false);
			fs->try_depth--;
			emit_abc(fs, OP_ENDTRY, 0, 0, 0);
			int ok = emit_jump(fs);
			/* the handler: the guard raised */
			fs->code[t] = vm_ad(OP_TRY, g, (unsigned)(here(fs) - (t + 1) + 32768));
			emit_abc(fs, OP_LOADBOOL, g, 0, 0);
			patch_here(fs, ok);
			fails = concat_jumps(fs, fails, emit_test(fs, vm_abc(OP_TEST, g, 0, 0)));
		}
		block_to(fs, cl->c, dst, tail);
		*end = concat_jumps(fs, *end, emit_jump(fs));
		close_scope(fs, s);
		patch_here(fs, fails);
	}
}

static void match_to(fstate *fs, const vm_node *n, uint32_t dst, bool tail)
{
	struct scope s = open_scope(fs);
	/* the value, in a register of its own (the bodies may assign a var) */
	uint32_t v = reserve(fs, 1, n);
	expr_to(fs, n->a, v, false);
	int end = NO_JUMP;
	clauses_to(fs, n, v, dst, tail, &end);
	set_line(fs, n);
	emit_abc(fs, OP_BADMATCH, v, 1, 0);
	patch_here(fs, end);
	close_scope(fs, s);
}

static void try_to(fstate *fs, const vm_node *n, uint32_t dst)
{
	struct scope s = open_scope(fs);
	uint32_t v = reserve(fs, 1, n);
	set_line(fs, n);
	int t = emit_ad(fs, OP_TRY, v, 0);
	fs->try_depth++;
	block_to(fs, n->a, dst, false);
	fs->try_depth--;
	emit_abc(fs, OP_ENDTRY, 0, 0, 0);
	int end = emit_jump(fs);
	int h = here(fs);
	if (h - (t + 1) > VM_SD_MAX)
		error_at(fs, n, "try block too large");
	fs->code[t] = vm_ad(OP_TRY, v, (unsigned)(h - (t + 1) + 32768));
	clauses_to(fs, n, v, dst, false, &end);
	emit_abc(fs, OP_RAISE, v, 0, 0);
	patch_here(fs, end);
	close_scope(fs, s);
}

static void index_to(fstate *fs, const vm_node *n, uint32_t dst)
{
	struct scope s = open_scope(fs);
	uint32_t a = expr_any(fs, n->a);
	uint32_t b = expr_any(fs, n->b);
	set_line(fs, n);
	emit_abc(fs, OP_INDEX, dst, a, b);
	close_scope(fs, s);
}

static void unary_to(fstate *fs, const vm_node *n, uint32_t dst, unsigned op)
{
	struct scope s = open_scope(fs);
	uint32_t a = expr_any(fs, n->a);
	set_line(fs, n);
	emit_abc(fs, op, dst, a, 0);
	close_scope(fs, s);
}

static void expr_to(fstate *fs, const vm_node *n, uint32_t dst, bool tail)
{
	if (fs->C->oom)
		return;
	set_line(fs, n);
	vm_value v;
	if (literal_value(fs, n, &v)) {
		load_const(fs, dst, v);
		return;
	}
	switch (n->kind) {
	case VM_N_NAME:
		name_to(fs, n, dst);
		return;
	case VM_N_TUPLE:
		tuple_to(fs, n, dst);
		return;
	case VM_N_LIST:
		list_to(fs, n, dst);
		return;
	case VM_N_MAP:
		map_to(fs, n, dst);
		return;
	case VM_N_BINOP:
		binop_to(fs, n, dst);
		return;
	case VM_N_AND:
	case VM_N_OR:
		andor_to(fs, n, dst);
		return;
	case VM_N_NOT:
		unary_to(fs, n, dst, OP_NOT);
		return;
	case VM_N_NEG:
		unary_to(fs, n, dst, OP_NEG);
		return;
	case VM_N_BNOT:
		unary_to(fs, n, dst, OP_BNOT);
		return;
	case VM_N_CALL:
		call_to(fs, n, dst, tail && fs->try_depth == 0);
		return;
	case VM_N_DOT:
		error_at(fs, n, "`%s.%s` can only be called", n->a->s, n->s);
		return;
	case VM_N_INDEX:
		index_to(fs, n, dst);
		return;
	case VM_N_FN:
		closure_to(fs, n, dst);
		return;
	case VM_N_BLOCK:
		block_to(fs, n, dst, tail);
		return;
	case VM_N_IF:
		if_to(fs, n, dst, tail);
		return;
	case VM_N_MATCH:
		match_to(fs, n, dst, tail);
		return;
	case VM_N_TRY:
		try_to(fs, n, dst);
		return;
	case VM_N_WHILE:
		while_stmt(fs, n);
		emit_abc(fs, OP_LOADNIL, dst, 0, 0);
		return;
	case VM_N_FOR:
		for_stmt(fs, n);
		emit_abc(fs, OP_LOADNIL, dst, 0, 0);
		return;
	case VM_N_BREAK:
	case VM_N_CONTINUE:
		break_stmt(fs, n, n->kind == VM_N_CONTINUE);
		return;
	case VM_N_RETURN: {
		struct scope s = open_scope(fs);
		uint32_t r = reserve(fs, 1, n);
		if (n->a)
			expr_to(fs, n->a, r, fs->try_depth == 0);
		else
			emit_abc(fs, OP_LOADNIL, r, 0, 0);
		emit_abc(fs, OP_RET, r, 0, 0);
		close_scope(fs, s);
		return;
	}
	case VM_N_RECEIVE:
	case VM_N_LOCK:
		error_at(fs, n, "`%s` needs processes, which this version of the VM does not run yet",
			 n->kind == VM_N_RECEIVE ? "receive" : "lock");
		return;
	case VM_N_RANGE:
		error_at(fs, n, "a range `a..b` can only be iterated by `for`");
		return;
	default:
		error_at(fs, n, "this is not an expression");
		return;
	}
}

static uint32_t expr_any(fstate *fs, const vm_node *n)
{
	if (n->kind == VM_N_NAME) {
		struct name_ref r = resolve(fs, n->s);
		if (r.kind == NAME_LOCAL)
			return r.index;
	}
	uint32_t r = reserve(fs, 1, n);
	expr_to(fs, n, r, false);
	return r;
}

/* ------------------------------------------------------------ statements */

static void assign_stmt(fstate *fs, const vm_node *n)
{
	struct name_ref r = resolve(fs, n->s);
	switch (r.kind) {
	case NAME_LOCAL:
		if (!r.is_var) {
			error_at(fs, n, "cannot assign `%s`: it is not a `var`", n->s);
			return;
		}
		expr_to(fs, n->a, r.index, false);
		return;
	case NAME_CAP:
		error_at(fs, n,
			 r.is_var ? "cannot assign `%s` in a closure: it is captured (by value)"
				  : "cannot assign `%s`: it is not a `var`",
			 n->s);
		return;
	case NAME_GLOBAL:
		error_at(fs, n, "cannot assign `%s`: it is a constant", n->s);
		return;
	case NAME_FN:
	case NAME_BUILTIN:
		error_at(fs, n, "cannot assign `%s`: it is a function", n->s);
		return;
	case NAME_NONE:
		error_at(fs, n, "undefined name `%s`", n->s);
		return;
	}
}

static void let_stmt(fstate *fs, const vm_node *n)
{
	if (n->a->kind == VM_N_NAME) {
		/* the value first (it may use an outer x), then the name */
		uint32_t r = reserve(fs, 1, n);
		expr_to(fs, n->b, r, false);
		bind_local(fs, n->a->s, r, false);
		return;
	}
	uint32_t r = reserve(fs, 1, n);
	expr_to(fs, n->b, r, false);
	int fails = NO_JUMP;
	pattern(fs, n->a, r, &fails, open_scope(fs));
	if (fails != NO_JUMP) {
		int ok = emit_jump(fs);
		patch_here(fs, fails);
		set_line(fs, n);
		emit_abc(fs, OP_BADMATCH, r, 0, 0);
		patch_here(fs, ok);
	}
}

/* A statement whose value is not wanted, or (last) wanted in dst. */
static void stmt(fstate *fs, const vm_node *n, uint32_t dst, bool last, bool tail)
{
	set_line(fs, n);
	switch (n->kind) {
	case VM_N_LET:
		let_stmt(fs, n);
		break;
	case VM_N_VAR: {
		uint32_t r = reserve(fs, 1, n);
		expr_to(fs, n->a, r, false);
		bind_local(fs, n->s, r, true);
		break;
	}
	case VM_N_ASSIGN:
		assign_stmt(fs, n);
		break;
	case VM_N_INDEX_ASSIGN: {
		struct scope s = open_scope(fs);
		uint32_t a = expr_any(fs, n->a);
		uint32_t b = expr_any(fs, n->b);
		uint32_t c = expr_any(fs, n->c);
		set_line(fs, n);
		emit_abc(fs, OP_SETINDEX, a, b, c);
		close_scope(fs, s);
		break;
	}
	case VM_N_WHILE:
		while_stmt(fs, n);
		break;
	case VM_N_FOR:
		for_stmt(fs, n);
		break;
	default:
		if (last) {
			expr_to(fs, n, dst, tail);
		} else {
			struct scope s = open_scope(fs);
			expr_to(fs, n, reserve(fs, 1, n), false);
			close_scope(fs, s);
		}
		return;
	}
	if (last)
		emit_abc(fs, OP_LOADNIL, dst, 0, 0);
}

static void block_to(fstate *fs, const vm_node *n, uint32_t dst, bool tail)
{
	if (n->kind != VM_N_BLOCK) {
		expr_to(fs, n, dst, tail);
		return;
	}
	struct scope s = open_scope(fs);
	if (n->nkids == 0)
		emit_abc(fs, OP_LOADNIL, dst, 0, 0);
	for (uint32_t i = 0; i < n->nkids && !fs->C->oom; i++)
		stmt(fs, n->kids[i], dst, i + 1 == n->nkids, tail);
	close_scope(fs, s);
}

/* ------------------------------------------------------------ patterns */

static bool bound_in_clause(fstate *fs, const char *name, struct scope clause, uint32_t *reg)
{
	for (uint32_t i = clause.nlocals; i < fs->nlocals; i++)
		if (strcmp(fs->locals[i].name, name) == 0) {
			*reg = fs->locals[i].reg;
			return true;
		}
	return false;
}

static void pattern(fstate *fs, const vm_node *p, uint32_t reg, int *fails, struct scope clause)
{
	set_line(fs, p);
	vm_value v;
	if (literal_value(fs, p, &v)) {
		*fails = concat_jumps(fs, *fails, emit_test(fs, vm_ad(OP_TEQK, reg, add_k(fs, v))));
		return;
	}
	switch (p->kind) {
	case VM_N_WILD:
		return;
	case VM_N_NAME: {
		uint32_t prev;
		if (bound_in_clause(fs, p->s, clause, &prev)) {
			*fails = concat_jumps(fs, *fails, emit_test(fs, vm_abc(OP_TEQ, reg, prev, 0)));
			return;
		}
		uint32_t r = new_local(fs, p->s, false, p);
		emit_abc(fs, OP_MOVE, r, reg, 0);
		return;
	}
	case VM_N_PIN: {
		struct name_ref r = resolve(fs, p->s);
		uint32_t cmp;
		if (r.kind == NAME_LOCAL) {
			cmp = r.index;
		} else {
			cmp = reserve(fs, 1, p);
			vm_node nm = *p;
			nm.kind = VM_N_NAME;
			name_to(fs, &nm, cmp);
		}
		*fails = concat_jumps(fs, *fails, emit_test(fs, vm_abc(OP_TEQ, reg, cmp, 0)));
		return;
	}
	case VM_N_AS:
		pattern(fs, p->a, reg, fails, clause);
		{
			vm_node nm = *p;
			nm.kind = VM_N_NAME;
			pattern(fs, &nm, reg, fails, clause);
		}
		return;
	case VM_N_TUPLE: {
		if (p->nkids > 255) {
			error_at(fs, p, "tuple pattern too large");
			return;
		}
		*fails = concat_jumps(fs, *fails, emit_test(fs, vm_abc(OP_TTUPLE, reg, p->nkids, 0)));
		for (uint32_t i = 0; i < p->nkids; i++) {
			if (p->kids[i]->kind == VM_N_WILD)
				continue;
			uint32_t t = reserve(fs, 1, p->kids[i]);
			emit_abc(fs, OP_FIELD, t, reg, i);
			pattern(fs, p->kids[i], t, fails, clause);
		}
		return;
	}
	case VM_N_LIST: {
		uint32_t cur = reg;
		for (uint32_t i = 0; i < p->nkids; i++) {
			*fails = concat_jumps(fs, *fails, emit_test(fs, vm_abc(OP_TCONS, cur, 0, 0)));
			uint32_t h = reserve(fs, 1, p->kids[i]);
			emit_abc(fs, OP_HEAD, h, cur, 0);
			uint32_t t = reserve(fs, 1, p->kids[i]);
			emit_abc(fs, OP_TAIL, t, cur, 0);
			pattern(fs, p->kids[i], h, fails, clause);
			cur = t;
		}
		if (p->a)
			pattern(fs, p->a, cur, fails, clause);
		else
			*fails = concat_jumps(fs, *fails, emit_test(fs, vm_abc(OP_TEMPTY, cur, 0, 0)));
		return;
	}
	case VM_N_MAP: {
		*fails = concat_jumps(fs, *fails, emit_test(fs, vm_abc(OP_TMAP, reg, 0, 0)));
		for (uint32_t i = 0; i < p->nkids; i++) {
			const vm_node *pr = p->kids[i];
			uint32_t k = reserve(fs, 1, pr);
			if (pr->a->kind == VM_N_PIN) {
				vm_node nm = *pr->a;
				nm.kind = VM_N_NAME;
				name_to(fs, &nm, k);
			} else if (literal_value(fs, pr->a, &v)) {
				load_const(fs, k, v);
			} else {
				error_at(fs, pr->a, "a map pattern's key must be a literal or a `^name`");
				return;
			}
			uint32_t val = reserve(fs, 1, pr);
			*fails = concat_jumps(fs, *fails, emit_test(fs, vm_abc(OP_TMAPGET, reg, k, val)));
			pattern(fs, pr->b, val, fails, clause);
		}
		return;
	}
	default:
		error_at(fs, p, "this is not a pattern");
		return;
	}
}

/* ------------------------------------------------------------ functions */

static void fs_free(fstate *fs)
{
	free(fs->code);
	free(fs->lines);
	free(fs->jnext);
	free(fs->k);
	free(fs->kids);
}

/* Move fs's buffers into p (the program's arena). */
static bool finish(fstate *fs, vm_proto *p)
{
	struct vm_arena *a = fs->C->prog->arena;
	p->ncode = fs->ncode;
	p->code = vm_arena_alloc(a, fs->ncode * sizeof *p->code);
	p->lines = vm_arena_alloc(a, fs->ncode * sizeof *p->lines);
	p->nk = fs->nk;
	p->k = vm_arena_alloc(a, (fs->nk ? fs->nk : 1) * sizeof *p->k);
	p->nkids = fs->nkids;
	p->kids = vm_arena_alloc(a, (fs->nkids ? fs->nkids : 1) * sizeof *p->kids);
	p->ncaps = (uint8_t)fs->ncaps;
	p->cap_from = vm_arena_alloc(a, (fs->ncaps ? fs->ncaps : 1) * sizeof *p->cap_from);
	if (!p->code || !p->lines || !p->k || !p->kids || !p->cap_from) {
		fs->C->oom = true;
		return false;
	}
	memcpy(p->code, fs->code, fs->ncode * sizeof *p->code);
	memcpy(p->lines, fs->lines, fs->ncode * sizeof *p->lines);
	if (fs->nk)
		memcpy(p->k, fs->k, fs->nk * sizeof *p->k);
	if (fs->nkids)
		memcpy(p->kids, fs->kids, fs->nkids * sizeof *p->kids);
	for (uint32_t i = 0; i < fs->ncaps; i++)
		p->cap_from[i] = fs->caps[i].from;
	p->nregs = (uint8_t)(fs->maxreg ? fs->maxreg : 1);
	return true;
}

/* Compile a function body into p (already allocated: top-level functions
 * are made before any body is compiled, so calls can name them). */
static bool compile_into(cstate *C, fstate *parent, vm_proto *p, vm_node *const *params, uint32_t nparams,
			 const vm_node *body)
{
	fstate *fs = calloc(1, sizeof *fs);
	if (!fs) {
		C->oom = true;
		return false;
	}
	fs->parent = parent;
	fs->C = C;
	fs->p = p;
	fs->line = p->line;
	if (nparams > 200) {
		error_at(fs, body, "too many parameters");
		free(fs);
		return false;
	}
	for (uint32_t i = 0; i < nparams; i++) {
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(params[j]->s, params[i]->s) == 0)
				error_at(fs, params[i], "parameter `%s` given twice", params[i]->s);
		new_local(fs, params[i]->s, false, params[i]);
	}
	p->nparams = (uint8_t)nparams;
	uint32_t r = reserve(fs, 1, body);
	block_to(fs, body, r, true);
	emit_abc(fs, OP_RET, r, 0, 0);
	bool ok = !C->oom && finish(fs, p);
	fs_free(fs);
	free(fs);
	return ok;
}

static vm_proto *new_proto(cstate *C, const char *name, uint32_t line)
{
	vm_proto *p = vm_arena_alloc(C->prog->arena, sizeof *p);
	if (!p) {
		C->oom = true;
		return NULL;
	}
	memset(p, 0, sizeof *p);
	p->name = name;
	p->file = C->mod->path;
	p->line = line;
	return p;
}

/* ------------------------------------------------------------ modules */

int vm_program_init(vm_program *prog, vm_state *vm, const char *lib_dir)
{
	memset(prog, 0, sizeof *prog);
	prog->vm = vm;
	prog->lib_dir = lib_dir;
	prog->arena = vm_arena_create();
	return prog->arena ? 0 : -ENOMEM;
}

void vm_program_free(vm_program *prog)
{
	for (uint32_t i = 0; i < prog->nmods; i++) {
		vm_module *m = prog->mods[i];
		free(m->fns);
		free(m->index);
		free(m->imports);
		free(m->consts);
		free(m->const_names);
		free(m->path);
		free(m->base);
		free(m);
	}
	free(prog->mods);
	free(prog->globals);
	free(prog->global_names);
	for (uint32_t i = 0; i < prog->nerrors; i++) {
		free(prog->errors[i].path);
		free(prog->errors[i].msg);
		free(prog->errors[i].text);
	}
	free(prog->errors);
	free(prog->biwraps);
	vm_arena_destroy(prog->arena);
	memset(prog, 0, sizeof *prog);
}

/* The module's names (functions and constants) in a hash index, so
 * resolving a name costs the same in a module of 20,000 functions as in
 * one of 2. */

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static const char *idx_name(const vm_module *m, uint32_t e)
{
	return e & IDX_CONST ? m->const_names[e & ~IDX_CONST] : m->fns[e].name;
}

/* The index entry of name (entry + 1 as stored), or 0. */
static uint32_t idx_find(const vm_module *m, const char *name)
{
	if (!m->index_cap)
		return 0;
	uint32_t mask = m->index_cap - 1;
	for (uint32_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
		uint32_t e = m->index[i];
		if (!e || strcmp(idx_name(m, e - 1), name) == 0)
			return e;
	}
}

static int idx_add(vm_module *m, uint32_t entry, uint32_t total)
{
	if (!m->index_cap) {
		uint32_t cap = 16;
		while (cap < 2 * total)
			cap *= 2;
		m->index = calloc(cap, sizeof *m->index);
		if (!m->index)
			return -ENOMEM;
		m->index_cap = cap;
	}
	uint32_t mask = m->index_cap - 1;
	uint32_t i = name_hash(idx_name(m, entry)) & mask;
	while (m->index[i])
		i = (i + 1) & mask;
	m->index[i] = entry + 1;
	return 0;
}

const vm_fnent *vm_module_fn(const vm_module *m, const char *name)
{
	uint32_t e = idx_find(m, name);
	return e && !((e - 1) & IDX_CONST) ? &m->fns[e - 1] : NULL;
}

void vm_proto_describe(const void *proto, const char **name, int *arity)
{
	const vm_proto *p = proto;
	*name = p->name;
	*arity = p->nparams;
}

static vm_module *find_module(vm_program *prog, const char *path)
{
	for (uint32_t i = 0; i < prog->nmods; i++)
		if (strcmp(prog->mods[i]->path, path) == 0)
			return prog->mods[i];
	return NULL;
}

static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	while (b) {
		size_t r = fread(b + n, 1, cap - n, f);
		n += r;
		if (n < cap) {
			if (ferror(f)) {
				free(b);
				fclose(f);
				return -EIO;
			}
			break;
		}
		char *nb = realloc(b, cap * 2);
		if (!nb) {
			free(b);
			b = NULL;
			break;
		}
		b = nb;
		cap *= 2;
	}
	fclose(f);
	if (!b)
		return -ENOMEM;
	*out = b;
	*len = n;
	return 0;
}

static char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	s = s ? s + 1 : path;
	size_t n = strlen(s);
	if (n > 3 && strcmp(s + n - 3, ".wf") == 0)
		n -= 3;
	return strndup(s, n);
}

/* The file an import names: "name" (no directory, no .wf) is a module of
 * the standard library; "path.wf" or a path with a directory is relative
 * to the importing file (or absolute). */
static char *import_path(vm_program *prog, const char *from, const char *name)
{
	char buf[4096];
	size_t nl = strlen(name);
	bool has_ext = nl > 3 && strcmp(name + nl - 3, ".wf") == 0;
	if (!has_ext && !strchr(name, '/') && prog->lib_dir) {
		snprintf(buf, sizeof buf, "%s/%s.wf", prog->lib_dir, name);
		return strdup(buf);
	}
	const char *slash = strrchr(from, '/');
	int dl = slash ? (int)(slash - from + 1) : 0;
	if (name[0] == '/')
		snprintf(buf, sizeof buf, "%s%s", name, has_ext ? "" : ".wf");
	else
		snprintf(buf, sizeof buf, "%.*s%s%s", dl, from, name, has_ext ? "" : ".wf");
	return strdup(buf);
}

static int add_module(vm_program *prog, vm_module *m)
{
	if (prog->nmods == prog->capmods) {
		uint32_t cap = prog->capmods ? 2 * prog->capmods : 8;
		vm_module **n = realloc(prog->mods, cap * sizeof *n);
		if (!n)
			return -ENOMEM;
		prog->mods = n;
		prog->capmods = cap;
	}
	prog->mods[prog->nmods++] = m;
	return 0;
}

static int new_global(vm_program *prog)
{
	if (prog->nglobals == prog->capglobals) {
		uint32_t cap = prog->capglobals ? 2 * prog->capglobals : 16;
		vm_value *n = realloc(prog->globals, cap * sizeof *n);
		if (!n)
			return -ENOMEM;
		prog->globals = n;
		vm_value *nm = realloc(prog->global_names, cap * sizeof *nm);
		if (!nm)
			return -ENOMEM;
		prog->global_names = nm;
		prog->capglobals = cap;
	}
	if (prog->nglobals >= 65535)
		return -ENOSPC;
	prog->globals[prog->nglobals] = VM_UNSET;
	return (int)prog->nglobals++;
}

static int compile_tree(vm_program *prog, vm_module *m, const char *src, size_t len, vm_node *mod);

static int compile_module(vm_program *prog, const char *path, const char *src, size_t len, vm_module **out)
{
	vm_module *m = calloc(1, sizeof *m);
	if (!m)
		return -ENOMEM;
	m->path = strdup(path);
	m->base = base_name(path);
	if (!m->path || !m->base || add_module(prog, m)) {
		free(m->path);
		free(m->base);
		free(m);
		return -ENOMEM;
	}
	vm_parse pr;
	int e = vm_parse_source(src, len, &pr);
	if (e)
		return e;
	for (uint32_t i = 0; i < pr.ndiags; i++)
		if (add_error(prog, path, src, len, pr.diags[i].line, pr.diags[i].col, pr.diags[i].msg))
			e = -ENOMEM;
	if (!e && pr.ndiags)
		e = -EINVAL;
	if (!e)
		e = compile_tree(prog, m, src, len, pr.module);
	vm_parse_free(&pr);
	m->failed = e != 0;
	/* the module moves behind its imports: initialisers run imports first */
	for (uint32_t i = 0; i < prog->nmods; i++)
		if (prog->mods[i] == m) {
			memmove(&prog->mods[i], &prog->mods[i + 1], (prog->nmods - i - 1) * sizeof *prog->mods);
			prog->mods[prog->nmods - 1] = m;
			break;
		}
	m->done = true;
	*out = m;
	return e;
}

int vm_compile_source(vm_program *prog, const char *path, const char *src, size_t len, vm_module **out)
{
	if (!prog || !path || (!src && len) || !out)
		return -EINVAL;
	*out = NULL;
	if (prog->prelude_failed) {
		add_error(prog, path, NULL, 0, 1, 1,
			  "the prelude (lib/prelude.wf) did not compile: nothing can be loaded");
		return -EINVAL;
	}
	if (prog->lib_dir && !prog->prelude) {
		char buf[4096];
		snprintf(buf, sizeof buf, "%s/prelude.wf", prog->lib_dir);
		char *ps;
		size_t pl;
		int e = read_file(buf, &ps, &pl);
		if (e) {
			add_error(prog, buf, NULL, 0, 1, 1, "cannot read the prelude");
			return e;
		}
		vm_module *pm;
		e = compile_module(prog, buf, ps, pl, &pm);
		free(ps);
		if (e) {
			prog->prelude_failed = e != -ENOMEM;
			return e;
		}
		prog->prelude = pm;
	}
	return compile_module(prog, path, src, len, out);
}

int vm_compile_file(vm_program *prog, const char *path, vm_module **out)
{
	if (!prog || !path || !out)
		return -EINVAL;
	char *src;
	size_t len;
	int e = read_file(path, &src, &len);
	if (e) {
		char msg[200];
		snprintf(msg, sizeof msg, "cannot read the file: %s", strerror(-e));
		add_error(prog, path, NULL, 0, 1, 1, msg);
		return e;
	}
	e = vm_compile_source(prog, path, src, len, out);
	free(src);
	return e;
}

static int compile_tree(vm_program *prog, vm_module *m, const char *src, size_t len, vm_node *mod)
{
	cstate C = {prog, m, m->path, src, len, false, false};
	fstate top = {0};
	top.C = &C;
	/* Pass 1: imports, function names, constant names. */
	uint32_t nfns = 0, nconsts = 0, nimports = 0;
	for (uint32_t i = 0; i < mod->nkids; i++) {
		unsigned k = mod->kids[i]->kind;
		nfns += k == VM_N_FNDEF;
		nconsts += k == VM_N_CONST;
		nimports += k == VM_N_IMPORT;
	}
	m->fns = calloc(nfns ? nfns : 1, sizeof *m->fns);
	m->consts = calloc(nconsts ? nconsts : 1, sizeof *m->consts);
	m->const_names = calloc(nconsts ? nconsts : 1, sizeof *m->const_names);
	m->imports = calloc(nimports ? nimports : 1, sizeof *m->imports);
	if (!m->fns || !m->consts || !m->const_names || !m->imports)
		return -ENOMEM;
	for (uint32_t i = 0; i < mod->nkids && !C.oom; i++) {
		vm_node *d = mod->kids[i];
		top.line = d->line;
		if (d->kind == VM_N_IMPORT) {
			char *ip = import_path(prog, m->path, d->s);
			if (!ip)
				return -ENOMEM;
			vm_module *im = find_module(prog, ip);
			if (im && !im->done) {
				error_at(&top, d, "import cycle: `%s` imports itself through `%s`", m->path, d->s);
				free(ip);
				continue;
			}
			if (!im) {
				char *isrc;
				size_t ilen;
				int e = read_file(ip, &isrc, &ilen);
				if (e) {
					error_at(&top, d, "cannot import `%s`: %s", d->s, strerror(-e));
					free(ip);
					continue;
				}
				e = compile_module(prog, ip, isrc, ilen, &im);
				free(isrc);
				if (e == -ENOMEM) {
					free(ip);
					return e;
				}
				if (e)
					C.failed = true;
			}
			free(ip);
			if (im->failed) {
				/* its errors were reported when it was first loaded */
				error_at(&top, d, "`%s` has errors: it cannot be imported", d->s);
				continue;
			}
			for (uint32_t j = 0; j < m->nimports; j++)
				if (strcmp(m->imports[j]->base, im->base) == 0)
					error_at(&top, d, "a module named `%s` is imported already", im->base);
			m->imports[m->nimports++] = im;
		} else if (d->kind == VM_N_FNDEF) {
			if (vm_module_fn(m, d->s) || module_const(m, d->s) >= 0) {
				error_at(&top, d, "`%s` is defined twice", d->s);
				continue;
			}
			vm_proto *p = new_proto(&C, d->s, d->line);
			vm_header *o = vm_lit_alloc(prog->vm, 2);
			if (!p || !o)
				return -ENOMEM;
			o[0] = vm_hdr(VM_OBJ_CLOSURE, 1);
			o[1] = vm_from_native(p);
			p->nparams = (uint8_t)(d->nkids > 255 ? 255 : d->nkids);
			m->fns[m->nfns] = (vm_fnent){d->s, p, vm_from_obj(o)};
			if (idx_add(m, m->nfns++, nfns + nconsts))
				return -ENOMEM;
		} else if (d->kind == VM_N_CONST) {
			if (vm_module_fn(m, d->s) || module_const(m, d->s) >= 0) {
				error_at(&top, d, "`%s` is defined twice", d->s);
				continue;
			}
			int g = new_global(prog);
			if (g < 0)
				return g;
			int64_t a = vm_atom_intern(prog->vm, d->s, strlen(d->s));
			prog->global_names[g] = a >= 0 ? vm_from_atom((uint32_t)a) : VM_NIL;
			m->consts[m->nconsts] = (uint32_t)g;
			m->const_names[m->nconsts] = d->s;
			if (idx_add(m, m->nconsts++ | IDX_CONST, nfns + nconsts))
				return -ENOMEM;
		} else if (d->kind == VM_N_MVAR) {
			error_at(&top, d, "`mvar` needs processes, which this version of the VM does not run yet");
		} else {
			error_at(&top, d, "only `fn`, `let`, `mvar` and `import` may appear at top level");
		}
	}
	/* Names live in the tree's arena: keep copies in the program's. */
	for (uint32_t i = 0; i < m->nfns; i++)
		m->fns[i].proto->name = m->fns[i].name =
			vm_arena_strdup(prog->arena, m->fns[i].name, strlen(m->fns[i].name));
	for (uint32_t i = 0; i < m->nconsts; i++)
		m->const_names[i] = vm_arena_strdup(prog->arena, m->const_names[i], strlen(m->const_names[i]));
	/* Pass 2: the bodies. */
	uint32_t fi = 0;
	for (uint32_t i = 0; i < mod->nkids && !C.oom; i++) {
		vm_node *d = mod->kids[i];
		if (d->kind != VM_N_FNDEF)
			continue;
		const vm_fnent *fe = vm_module_fn(m, d->s);
		if (!fe || fe->proto->ncode || fi >= m->nfns)
			continue;
		fi++;
		compile_into(&C, NULL, fe->proto, d->kids, d->nkids, d->a);
	}
	/* The initialiser: each constant in order. */
	if (m->nconsts && !C.oom) {
		vm_proto *p = new_proto(&C, "(top level)", 1);
		fstate *fs = calloc(1, sizeof *fs);
		if (!p || !fs) {
			free(fs);
			return -ENOMEM;
		}
		fs->C = &C;
		fs->p = p;
		fs->line = 1;
		uint32_t ci = 0;
		for (uint32_t i = 0; i < mod->nkids && !C.oom; i++) {
			vm_node *d = mod->kids[i];
			if (d->kind != VM_N_CONST)
				continue;
			set_line(fs, d);
			struct scope s = open_scope(fs);
			uint32_t r = reserve(fs, 1, d);
			expr_to(fs, d->a, r, false);
			emit_ad(fs, OP_SETGLOBAL, r, m->consts[ci++]);
			close_scope(fs, s);
		}
		uint32_t r = reserve(fs, 1, mod);
		emit_abc(fs, OP_LOADNIL, r, 0, 0);
		emit_abc(fs, OP_RET, r, 0, 0);
		if (!C.oom && finish(fs, p))
			m->init = p;
		fs_free(fs);
		free(fs);
	}
	if (C.oom)
		return -ENOMEM;
	return C.failed ? -EINVAL : 0;
}

/* ------------------------------------------------------------ dis */

static const char *const opnames[] = {
#define VM_OP_NAME(name, fmt, doc) #name,
	VM_OPCODES(VM_OP_NAME)
#undef VM_OP_NAME
};

static const uint8_t opformats[] = {
#define VM_OP_FMT(name, fmt, doc) VM_FMT_##fmt,
	VM_OPCODES(VM_OP_FMT)
#undef VM_OP_FMT
};

const char *vm_opname(unsigned op)
{
	return op < VM_NOPCODES ? opnames[op] : "?";
}

enum vm_format vm_opformat(unsigned op)
{
	return op < VM_NOPCODES ? (enum vm_format)opformats[op] : VM_FMT_ABC;
}

static void dis_proto(const vm_program *prog, const vm_proto *p, FILE *f)
{
	fprintf(f, "function %s/%u (%s:%u): %u registers, %u constants, %u captured\n", p->name, p->nparams, p->file,
		p->line, p->nregs, p->nk, p->ncaps);
	uint32_t last = 0;
	for (uint32_t i = 0; i < p->ncode; i++) {
		uint32_t ins = p->code[i];
		unsigned op = VM_OPOF(ins);
		char line[16] = "";
		if (p->lines[i] != last)
			snprintf(line, sizeof line, "%u", p->lines[i]);
		last = p->lines[i];
		fprintf(f, "  %5u  [%4s]  %-10s", i, line, vm_opname(op));
		switch (vm_opformat(op)) {
		case VM_FMT_ABC:
			fprintf(f, " %u %u %u", VM_A(ins), VM_B(ins), VM_C(ins));
			break;
		case VM_FMT_AD:
			fprintf(f, " %u %u", VM_A(ins), VM_D(ins));
			break;
		case VM_FMT_J:
			fprintf(f, " %+d  -> %u", VM_SJ(ins), (unsigned)((int)i + 1 + VM_SJ(ins)));
			break;
		}
		if (op == OP_LOADK || op == OP_TEQK) {
			vm_buf b = {0};
			vm_inspect(prog->vm, &b, p->k[VM_D(ins)]);
			fprintf(f, "  ; %.*s", (int)(b.len > 60 ? 60 : b.len), b.b ? b.b : "");
			free(b.b);
		} else if (op == OP_LOADI) {
			fprintf(f, "  ; %d", VM_SD(ins));
		} else if (op == OP_CALLK || op == OP_TAILCALLK) {
			const vm_proto *c = vm_native(p->k[VM_C(ins)]);
			fprintf(f, "  ; %s/%u", c->name, c->nparams);
		} else if (op == OP_BUILTIN) {
			const vm_builtin *b = vm_builtin_at(VM_C(ins));
			fprintf(f, "  ; %s", b ? b->name : "?");
		}
		fputc('\n', f);
	}
	for (uint32_t i = 0; i < p->nkids; i++)
		dis_proto(prog, p->kids[i], f);
}

void vm_disassemble(const vm_program *prog, const vm_module *m, FILE *f)
{
	if (m->init)
		dis_proto(prog, m->init, f);
	for (uint32_t i = 0; i < m->nfns; i++)
		dis_proto(prog, m->fns[i].proto, f);
}
