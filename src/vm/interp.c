/* interp.c - the interpreter: direct-threaded dispatch over the register
 * bytecode (code.h), frames on the process's own stack, no C recursion.
 *
 * Frames live in the register stack itself, as LuaJIT's do. A frame whose
 * registers start at base has two slots below them:
 *
 *   stack[base - 2]  its link: the caller's resume point (a native value:
 *                    the instruction after the call), or VM_ROOT_LINK for
 *                    the outermost frame; the frame's result replaces it
 *   stack[base - 1]  its function: the closure (CALL) or the native proto
 *                    (CALLK: a known function, no closure loaded)
 *
 * The caller's base is found from the call instruction before the resume
 * point (its A: the callee's base is the caller's + A + 2), so a call
 * writes two slots and a return reads them back: no frame records. The
 * collector ignores native values, so links and protos are safe roots.
 *
 * The loop keeps the instruction pointer, the registers (R) and the
 * constants (K) in locals; each handler ends by fetching the next
 * instruction and jumping through the dispatch table (computed goto).
 *
 * Invariants:
 *  - p->sp == base + nregs of the running frame whenever a collection can
 *    run (every allocation, every built-in): the registers of every frame
 *    are below it, so they are the roots, and R stays valid (the stack is
 *    never moved by a collection; it grows only at a function's entry,
 *    after which R is recomputed).
 *  - A value read into a C local before an allocation is re-read from its
 *    register after it (obj.h's functions take register pointers).
 *  - Handlers (try) name the base of the frame that opened them; a return
 *    pops those of its frame, a raise unwinds to the innermost one.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/cpu.h"
#include "interp.h"
#include "obj.h"

#define VM_STACK_MAX (64u << 20) /* register slots: 512 MiB of stack at most */
#define VM_ROOT_LINK VM_TAGGED(VM_TAG_NATIVE, 0)
#define VM_TRACE_MAX 200 /* frames a crash report shows (the innermost) */

static inline const vm_proto *closure_proto(vm_value c)
{
	return vm_native(vm_fields(c)[0]);
}

static inline bool is_function(vm_value v)
{
	return vm_is_kind(v, VM_OBJ_CLOSURE);
}

/* The function of the frame at base (its slot holds a closure or a
 * native proto). */
static inline const vm_proto *frame_proto(const vm_value *R)
{
	vm_value f = R[-1];
	return vm_is_native(f) ? vm_native(f) : closure_proto(f);
}

/* Room for a frame of nregs registers at base (the stack may move). */
int vm_stack_room(vm_proc *p, uint32_t base, uint32_t nregs)
{
	uint64_t need = (uint64_t)base + nregs;
	if (need <= p->stack_cap)
		return 0;
	if (need > VM_STACK_MAX)
		return -E2BIG;
	uint64_t cap = p->stack_cap;
	while (cap < need)
		cap *= 2;
	if (cap > VM_STACK_MAX)
		cap = VM_STACK_MAX;
	vm_value *s = realloc(p->stack, cap * sizeof *s);
	if (!s)
		return -ENOMEM;
	for (uint64_t i = p->stack_cap; i < cap; i++)
		s[i] = VM_NIL;
	p->stack = s;
	p->stack_cap = (uint32_t)cap;
	return 0;
}

int vm_call_setup(vm_proc *p, vm_value fn, const vm_value *args, uint32_t nargs)
{
	if (!is_function(fn) || nargs > 200)
		return -EINVAL;
	const vm_proto *pr = closure_proto(fn);
	uint32_t nregs = pr->nregs > nargs ? pr->nregs : nargs;
	if (vm_stack_room(p, 2, nregs))
		return -ENOMEM;
	p->stack[0] = VM_ROOT_LINK;
	p->stack[1] = fn;
	for (uint32_t i = 0; i < nargs; i++)
		p->stack[2 + i] = args[i];
	p->running = true;
	p->base = 2;
	p->pc = pr->code;
	p->nhandlers = 0;
	p->sp = 2 + nregs;
	if (p->sp > p->stack_hw)
		p->stack_hw = p->sp;
	p->entry_nargs = nargs; /* checked as the call runs, as a call would */
	return 0;
}

/* ------------------------------------------------------------ raising */

static int64_t atom_of(vm_state *vm, const char *s)
{
	return vm_atom_intern(vm, s, strlen(s));
}

static int raise_badarity(vm_proc *p, const char *name)
{
	int64_t a = atom_of(p->vm, name);
	return vm_raise2(p, VM_A_BADARITY, a >= 0 ? vm_from_atom((uint32_t)a) : VM_NIL);
}

static int raise_badfun(vm_proc *p, vm_value v)
{
	int64_t a = atom_of(p->vm, "badfun");
	p->tmp[p->ntmp++] = v;
	int r = a >= 0 ? vm_raise2(p, (uint32_t)a, v) : vm_raise_atom(p, VM_A_UNDEF);
	p->ntmp--;
	return r;
}

/* The line of the instruction before pc in proto. */
static uint32_t line_at(const vm_proto *pr, const uint32_t *pc)
{
	if (!pr->ncode)
		return pr->line;
	uint32_t idx = pc > pr->code ? (uint32_t)(pc - pr->code - 1) : 0;
	return pr->lines[idx < pr->ncode ? idx : pr->ncode - 1];
}

/* The running frames, innermost first (at most VM_TRACE_MAX), from the
 * frame at R about to run pc: each frame's link leads to its caller. */
static void record_trace(vm_proc *p, const vm_value *R, const uint32_t *pc)
{
	p->ntrace = 0;
	p->trace_cut = false;
	if (!p->trace && !(p->trace = malloc(VM_TRACE_MAX * sizeof *p->trace)))
		return;
	for (;;) {
		const vm_proto *pr = frame_proto(R);
		p->trace[p->ntrace++] = (vm_trace_ent){pr, line_at(pr, pc)};
		vm_value link = R[-2];
		if (link == VM_ROOT_LINK)
			break;
		if (p->ntrace == VM_TRACE_MAX) {
			p->trace_cut = true;
			break;
		}
		pc = vm_native(link);
		R -= VM_A(pc[-1]) + 2;
	}
}

/* ------------------------------------------------------------ literals */

/* The copies made so far, old object -> new: sharing is kept (a value
 * that reaches one object twice, a DAG or a cycle through an array, is
 * copied once). Open addressing on the old address. */
struct lit_map {
	vm_value *old, *copy;
	size_t n, cap;
};

static size_t lit_slot(const struct lit_map *m, vm_value o)
{
	size_t mask = m->cap - 1;
	size_t j = (size_t)((o * UINT64_C(0x9E3779B97F4A7C15)) >> 20) & mask;
	while (m->old[j] && m->old[j] != o)
		j = (j + 1) & mask;
	return j;
}

static int lit_put(struct lit_map *m, vm_value o, vm_value c)
{
	if (2 * (m->n + 1) > m->cap) {
		struct lit_map g = {NULL, NULL, 0, m->cap ? 2 * m->cap : 64};
		g.old = calloc(g.cap, sizeof *g.old);
		g.copy = calloc(g.cap, sizeof *g.copy);
		if (!g.old || !g.copy) {
			free(g.old);
			free(g.copy);
			return -ENOMEM;
		}
		for (size_t i = 0; i < m->cap; i++)
			if (m->old[i]) {
				size_t j = lit_slot(&g, m->old[i]);
				g.old[j] = m->old[i];
				g.copy[j] = m->copy[i];
			}
		g.n = m->n;
		free(m->old);
		free(m->copy);
		*m = g;
	}
	size_t j = lit_slot(m, o);
	m->old[j] = o;
	m->copy[j] = c;
	m->n++;
	return 0;
}

int vm_lit_copy(vm_state *vm, vm_value v, vm_value *out)
{
	/* Iterative (a long list or a deep tree must not run out of C stack):
	 * a stack of slots still holding old values; each popped slot gets
	 * its copy (made now, or found in the map), whose fields are pushed
	 * in turn. */
	*out = v;
	size_t n = 0, cap = 64;
	vm_value **pending = malloc(cap * sizeof *pending);
	struct lit_map map = {NULL, NULL, 0, 0};
	if (!pending)
		return -ENOMEM;
	pending[n++] = out;
	int e = 0;
	while (n && !e) {
		vm_value *slot = pending[--n];
		if (!vm_is_obj(*slot))
			continue;
		if (map.cap) {
			size_t j = lit_slot(&map, *slot);
			if (map.old[j]) {
				*slot = map.copy[j];
				continue;
			}
		}
		vm_header *o = vm_obj(*slot);
		size_t size = vm_hdr_size(*o);
		vm_header *c = vm_lit_alloc(vm, 1 + size);
		if (!c || lit_put(&map, *slot, vm_from_obj(c))) {
			e = -ENOMEM;
			break;
		}
		memcpy(c, o, (1 + size) * sizeof *c);
		unsigned kind = vm_hdr_kind(*o);
		if (kind == VM_OBJ_BIGSTR)
			atomic_fetch_add(&((struct vm_bigstr *)(uintptr_t)o[1])->refs, 1);
		*slot = vm_from_obj(c);
		if (kind < VM_OBJ_SCANNED)
			continue;
		if (n + size > cap) {
			size_t ncap = 2 * (n + size);
			vm_value **t = realloc(pending, ncap * sizeof *t);
			if (!t) {
				e = -ENOMEM;
				break;
			}
			pending = t;
			cap = ncap;
		}
		for (size_t i = 1; i <= size; i++)
			pending[n++] = &c[i];
	}
	free(pending);
	free(map.old);
	free(map.copy);
	return e;
}

/* ------------------------------------------------------------ the loop */

enum vm_run vm_run(vm_proc *p, int64_t budget, vm_value *result)
{
	static const void *const dispatch[] = {
#define VM_OP_LABEL(name, fmt, doc) &&L_##name,
		VM_OPCODES(VM_OP_LABEL)
#undef VM_OP_LABEL
	};
	vm_program *prog = p->vm->prog;
	vm_value *R = p->stack + p->base;
	const vm_proto *proto = frame_proto(R);
	const uint32_t *pc = p->pc;
	const vm_value *K = proto->k;
	int64_t red = budget;
	uint32_t ins;
	int st;
	assert(p->running);

	/* A fresh call (vm_call_setup): check the arity as a call would. */
	if (p->entry_nargs != UINT32_MAX) {
		uint32_t nargs = p->entry_nargs;
		p->entry_nargs = UINT32_MAX;
		if (nargs != proto->nparams) {
			st = raise_badarity(p, proto->name);
			goto raise;
		}
	}

/* Leave the loop with the frame saved: vm_run resumes it. */
#define SAVE()                                                                                                         \
	do {                                                                                                           \
		p->base = (uint32_t)(R - p->stack);                                                                    \
		p->pc = pc;                                                                                            \
	} while (0)

#define NEXT()                                                                                                         \
	do {                                                                                                           \
		ins = *pc++;                                                                                           \
		goto *dispatch[VM_OPOF(ins)];                                                                          \
	} while (0)
#define RA (R[VM_A(ins)])
#define RB (R[VM_B(ins)])
#define RC (R[VM_C(ins)])
/* a test holds: skip its JMP; fails: take it */
#define TEST_RESULT(ok)                                                                                                \
	do {                                                                                                           \
		if (ok) {                                                                                              \
			pc++;                                                                                          \
		} else {                                                                                               \
			int32_t j_ = VM_SJ(*pc);                                                                       \
			pc += 1 + j_;                                                                                  \
		}                                                                                                      \
		NEXT();                                                                                                \
	} while (0)
#define CHECK(st_)                                                                                                     \
	do {                                                                                                           \
		if ((st = (st_)) != VM_OK)                                                                             \
			goto failed;                                                                                   \
	} while (0)

	NEXT();

L_MOVE:
	RA = RB;
	NEXT();
L_LOADK:
	RA = K[VM_D(ins)];
	NEXT();
L_LOADI:
	RA = vm_from_small(VM_SD(ins));
	NEXT();
L_LOADNIL:
	for (uint32_t i = 0; i <= VM_B(ins); i++)
		R[VM_A(ins) + i] = VM_NIL;
	NEXT();
L_LOADBOOL:
	RA = vm_bool(VM_B(ins) != 0);
	NEXT();
L_GETCAP:
	RA = vm_fields(R[-1])[1 + VM_B(ins)];
	NEXT();
L_GETGLOBAL : {
	vm_value g = prog->globals[VM_D(ins)];
	if (g == VM_UNSET) {
		st = vm_raise2(p, VM_A_UNDEF, prog->global_names[VM_D(ins)]);
		goto raise;
	}
	RA = g;
	NEXT();
}
L_SETGLOBAL : {
	vm_value c;
	if (vm_lit_copy(p->vm, RA, &c)) {
		st = vm_raise2(p, VM_A_SYSTEM_LIMIT, VM_NIL);
		goto raise;
	}
	prog->globals[VM_D(ins)] = c;
	NEXT();
}

#define ARITH(opname, binop, intexpr, fexpr)                                                                           \
	L_##opname:                                                                                                    \
	{                                                                                                              \
		vm_value a = RB, b = RC;                                                                               \
		if (vm_is_small(a) && vm_is_small(b)) {                                                                \
			int64_t x = vm_small(a), y = vm_small(b), r;                                                   \
			intexpr;                                                                                       \
		}                                                                                                      \
		if (vm_is_float(a) && vm_is_float(b)) {                                                                \
			double d = fexpr;                                                                              \
			if (vm_float_ok(d)) {                                                                          \
				RA = vm_from_float(d);                                                                 \
				NEXT();                                                                                \
			}                                                                                              \
		}                                                                                                      \
		CHECK(vm_arith(p, binop, &RB, &RC, &RA));                                                              \
		NEXT();                                                                                                \
	}

	ARITH(
		ADD, VM_OP_ADD,
		{
			r = x + y; /* 48-bit operands: no int64 overflow */
			if (vm_fits_small(r)) {
				RA = vm_from_small(r);
				NEXT();
			}
		},
		vm_float(a) + vm_float(b))
	ARITH(
		SUB, VM_OP_SUB,
		{
			r = x - y;
			if (vm_fits_small(r)) {
				RA = vm_from_small(r);
				NEXT();
			}
		},
		vm_float(a) - vm_float(b))
	ARITH(
		MUL, VM_OP_MUL,
		{
			if (!__builtin_mul_overflow(x, y, &r) && vm_fits_small(r)) {
				RA = vm_from_small(r);
				NEXT();
			}
		},
		vm_float(a) * vm_float(b))
	ARITH(
		DIV, VM_OP_DIV,
		{
			if (y != 0) {
				r = x / y; /* |x| < 2^47: no INT64_MIN / -1 */
				RA = vm_from_small(r);
				NEXT();
			}
		},
		vm_float(a) / vm_float(b))

L_MOD : {
	vm_value a = RB, b = RC;
	if (vm_is_small(a) && vm_is_small(b) && vm_small(b) != 0) {
		RA = vm_from_small(vm_small(a) % vm_small(b));
		NEXT();
	}
	CHECK(vm_arith(p, VM_OP_MOD, &RB, &RC, &RA));
	NEXT();
}
L_ADDI : {
	vm_value a = RB;
	if (vm_is_small(a)) {
		int64_t r = vm_small(a) + VM_SC(ins);
		if (vm_fits_small(r)) {
			RA = vm_from_small(r);
			NEXT();
		}
	}
	/* the constant in a root: tmp */
	p->tmp[p->ntmp++] = vm_from_small(VM_SC(ins));
	st = vm_arith(p, VM_OP_ADD, &RB, &p->tmp[p->ntmp - 1], &RA);
	p->ntmp--;
	CHECK(st);
	NEXT();
}
L_CONCAT:
	CHECK(vm_concat(p, &RB, &RC, &RA));
	NEXT();
L_BAND:
	CHECK(vm_arith(p, VM_OP_BAND, &RB, &RC, &RA));
	NEXT();
L_BOR:
	CHECK(vm_arith(p, VM_OP_BOR, &RB, &RC, &RA));
	NEXT();
L_BXOR:
	CHECK(vm_arith(p, VM_OP_BXOR, &RB, &RC, &RA));
	NEXT();
L_SHL:
	CHECK(vm_arith(p, VM_OP_SHL, &RB, &RC, &RA));
	NEXT();
L_SHR:
	CHECK(vm_arith(p, VM_OP_SHR, &RB, &RC, &RA));
	NEXT();
L_NEG : {
	vm_value a = RB;
	if (vm_is_small(a) && vm_small(a) != VM_SMALL_MIN) {
		RA = vm_from_small(-vm_small(a));
		NEXT();
	}
	CHECK(vm_negate(p, &RB, &RA));
	NEXT();
}
L_BNOT:
	CHECK(vm_bnot(p, &RB, &RA));
	NEXT();
L_NOT:
	RA = vm_bool(!vm_truthy(RB));
	NEXT();
L_EQ : {
	vm_value a = RB, b = RC;
	RA = vm_bool(a == b ? true : vm_equal(a, b));
	NEXT();
}
L_NE : {
	vm_value a = RB, b = RC;
	RA = vm_bool(!(a == b ? true : vm_equal(a, b)));
	NEXT();
}
L_LT : {
	vm_value a = RB, b = RC;
	if (vm_is_small(a) && vm_is_small(b)) {
		RA = vm_bool(vm_small(a) < vm_small(b));
		NEXT();
	}
	CHECK(vm_order(p, VM_OP_LT, a, b, &RA));
	NEXT();
}
L_LE : {
	vm_value a = RB, b = RC;
	if (vm_is_small(a) && vm_is_small(b)) {
		RA = vm_bool(vm_small(a) <= vm_small(b));
		NEXT();
	}
	CHECK(vm_order(p, VM_OP_LE, a, b, &RA));
	NEXT();
}
L_JMP : {
	int32_t j = VM_SJ(ins);
	pc += j;
	if (j < 0 && --red <= 0) {
		SAVE();
		return VM_RUN_YIELD;
	}
	NEXT();
}
L_TEST:
	TEST_RESULT(vm_truthy(RA));
L_TESTNOT:
	TEST_RESULT(!vm_truthy(RA));
L_TLT : {
	vm_value a = RA, b = RB;
	if (vm_is_small(a) && vm_is_small(b))
		TEST_RESULT(vm_small(a) < vm_small(b));
	vm_value r;
	CHECK(vm_order(p, VM_OP_LT, a, b, &r));
	TEST_RESULT(r == VM_TRUE);
}
L_TLE : {
	vm_value a = RA, b = RB;
	if (vm_is_small(a) && vm_is_small(b))
		TEST_RESULT(vm_small(a) <= vm_small(b));
	vm_value r;
	CHECK(vm_order(p, VM_OP_LE, a, b, &r));
	TEST_RESULT(r == VM_TRUE);
}
L_TLTI : {
	vm_value a = RA;
	if (vm_is_small(a))
		TEST_RESULT(vm_small(a) < VM_SB(ins));
	vm_value r;
	CHECK(vm_order(p, VM_OP_LT, a, vm_from_small(VM_SB(ins)), &r));
	TEST_RESULT(r == VM_TRUE);
}
L_TGTI : {
	vm_value a = RA;
	if (vm_is_small(a))
		TEST_RESULT(vm_small(a) > VM_SB(ins));
	vm_value r;
	CHECK(vm_order(p, VM_OP_GT, a, vm_from_small(VM_SB(ins)), &r));
	TEST_RESULT(r == VM_TRUE);
}
L_TLEI : {
	vm_value a = RA;
	if (vm_is_small(a))
		TEST_RESULT(vm_small(a) <= VM_SB(ins));
	vm_value r;
	CHECK(vm_order(p, VM_OP_LE, a, vm_from_small(VM_SB(ins)), &r));
	TEST_RESULT(r == VM_TRUE);
}
L_TGEI : {
	vm_value a = RA;
	if (vm_is_small(a))
		TEST_RESULT(vm_small(a) >= VM_SB(ins));
	vm_value r;
	CHECK(vm_order(p, VM_OP_GE, a, vm_from_small(VM_SB(ins)), &r));
	TEST_RESULT(r == VM_TRUE);
}
L_TEQ : {
	vm_value a = RA, b = RB;
	TEST_RESULT(a == b || vm_equal(a, b));
}
L_TEQK : {
	vm_value a = RA, b = K[VM_D(ins)];
	TEST_RESULT(a == b || vm_equal(a, b));
}
L_TTUPLE:
	TEST_RESULT(vm_is_kind(RA, VM_OBJ_TUPLE) && vm_obj_size(RA) == VM_B(ins));
L_TCONS:
	TEST_RESULT(vm_is_kind(RA, VM_OBJ_CONS));
L_TEMPTY:
	TEST_RESULT(RA == VM_EMPTY);
L_TMAP:
	TEST_RESULT(vm_is_map(RA));
L_TMAPGET : {
	vm_value v;
	bool ok = vm_is_map(RA) && vm_map_get(p->vm, RA, RB, &v);
	if (ok)
		RC = v;
	TEST_RESULT(ok);
}
L_FIELD:
	RA = vm_fields(RB)[VM_C(ins)];
	NEXT();
L_HEAD:
	RA = vm_fields(RB)[0];
	NEXT();
L_TAIL:
	RA = vm_fields(RB)[1];
	NEXT();
L_TUPLE : {
	uint32_t n = VM_C(ins);
	size_t words = 1 + n < 2 ? 2 : 1 + n;
	if (vm_need(p, words)) {
		st = vm_raise2(p, VM_A_SYSTEM_LIMIT, VM_NIL);
		goto raise;
	}
	vm_header *o = vm_take(p, words);
	o[0] = vm_hdr(VM_OBJ_TUPLE, n);
	if (n == 0)
		o[1] = VM_NIL;
	for (uint32_t i = 0; i < n; i++)
		o[1 + i] = R[VM_B(ins) + i];
	RA = vm_from_obj(o);
	NEXT();
}
L_LIST : {
	uint32_t b = VM_B(ins), n = VM_C(ins);
	for (uint32_t i = n; i-- > 0;)
		CHECK(vm_cons(p, &R[b + i], &R[b + n], &R[b + n]));
	RA = R[b + n];
	NEXT();
}
L_MAP : {
	uint32_t b = VM_B(ins), n = VM_C(ins);
	if (!vm_is_map(R[b + 2 * n])) {
		st = vm_raise2(p, VM_A_BADARG, R[b + 2 * n]);
		goto raise;
	}
	for (uint32_t i = 0; i < n; i++)
		CHECK(vm_map_put(p, &R[b + 2 * n], &R[b + 2 * i], &R[b + 2 * i + 1], &R[b + 2 * n]));
	RA = R[b + 2 * n];
	NEXT();
}
L_INDEX:
	CHECK(vm_index(p, &RB, &RC, &RA));
	NEXT();
L_SETINDEX:
	CHECK(vm_index_set(p, RA, RB, RC));
	NEXT();
L_CLOSURE : {
	const vm_proto *c = proto->kids[VM_D(ins)];
	size_t words = 2 + c->ncaps;
	if (vm_need(p, words)) {
		st = vm_raise2(p, VM_A_SYSTEM_LIMIT, VM_NIL);
		goto raise;
	}
	vm_header *o = vm_take(p, words);
	o[0] = vm_hdr(VM_OBJ_CLOSURE, 1 + c->ncaps);
	o[1] = vm_from_native(c);
	for (uint32_t i = 0; i < c->ncaps; i++) {
		uint16_t from = c->cap_from[i];
		o[2 + i] = from & VM_CAP_REG ? R[from & 0xff] : vm_fields(R[-1])[1 + from];
	}
	RA = vm_from_obj(o);
	NEXT();
}

	/* Calls. R[A] is the callee's link slot (its result comes back there),
	 * R[A+1] its function, R[A+2 ..] its arguments and then its registers:
	 * its base is A + 2. Arity checked, stack room made (the limit checked
	 * once, here), a reduction counted. CALLK, the call of a known
	 * function, is the fast path; the rest share `call`. */
	{
		const vm_proto *callee;
		bool tail;
	L_CALLK : {
		const vm_proto *c = vm_native(K[VM_C(ins)]);
		uint32_t cbase = (uint32_t)(R - p->stack) + VM_A(ins) + 2;
		if (unlikely(VM_B(ins) != c->nparams || cbase + c->nregs > p->stack_cap)) {
			callee = c;
			tail = false;
			goto call;
		}
		R += VM_A(ins) + 2;
		R[-2] = vm_from_native(pc);
		R[-1] = vm_from_native(c);
		proto = c;
		K = c->k;
		pc = c->code;
		p->sp = cbase + c->nregs;
		if (p->sp > p->stack_hw)
			p->stack_hw = p->sp;
		if (unlikely(--red <= 0)) {
			SAVE();
			return VM_RUN_YIELD;
		}
		NEXT();
	}
	L_CALL:
	L_TAILCALL : {
		vm_value fn = R[VM_A(ins) + 1];
		if (!is_function(fn)) {
			st = raise_badfun(p, fn);
			goto raise;
		}
		callee = closure_proto(fn);
		tail = VM_OPOF(ins) == OP_TAILCALL;
		goto call;
	}
	L_TAILCALLK:
		callee = vm_native(K[VM_C(ins)]);
		tail = true;
	call : {
		uint32_t nargs = VM_B(ins), a = VM_A(ins);
		if (nargs != callee->nparams) {
			st = raise_badarity(p, callee->name);
			goto raise;
		}
		uint32_t base = (uint32_t)(R - p->stack);
		uint32_t cbase = tail ? base : base + a + 2;
		if (vm_stack_room(p, cbase, callee->nregs)) {
			st = vm_raise2(p, VM_A_SYSTEM_LIMIT, VM_NIL);
			goto raise;
		}
		R = p->stack + base; /* the stack may have moved */
		bool known = VM_OPOF(ins) == OP_CALLK || VM_OPOF(ins) == OP_TAILCALLK;
		if (tail) {
			/* the function and its arguments replace this frame's; the
			 * link stays */
			R[-1] = known ? vm_from_native(callee) : R[a + 1];
			for (uint32_t i = 0; i < nargs; i++)
				R[i] = R[a + 2 + i];
		} else {
			R += a + 2;
			R[-2] = vm_from_native(pc);
			if (known)
				R[-1] = vm_from_native(callee);
		}
		proto = callee;
		K = proto->k;
		pc = proto->code;
		p->sp = cbase + proto->nregs;
		if (p->sp > p->stack_hw)
			p->stack_hw = p->sp;
		if (--red <= 0) {
			SAVE();
			return VM_RUN_YIELD;
		}
		NEXT();
	}
	}
L_BUILTIN : {
	const vm_builtin *bi = vm_builtin_at(VM_C(ins));
	assert(bi); /* the compiler's number */
	uint32_t n = VM_B(ins);
	if ((int)n < bi->min_args || (bi->max_args >= 0 && (int)n > bi->max_args)) {
		st = raise_badarity(p, bi->name);
		goto raise;
	}
	st = bi->fn(p, &R[VM_A(ins) + 1], n, &RA);
	if (st == VM_HALT) {
		SAVE();
		p->running = false;
		return VM_RUN_HALT;
	}
	if (st != VM_OK)
		goto raise;
	NEXT();
}
L_RET : {
	vm_value v = RA;
	if (unlikely(p->nhandlers)) {
		uint32_t base = (uint32_t)(R - p->stack);
		while (p->nhandlers && p->handlers[p->nhandlers - 1].base >= base)
			p->nhandlers--;
	}
	vm_value link = R[-2];
	R[-2] = v; /* the result, where the caller expects it */
	if (unlikely(link == VM_ROOT_LINK)) {
		p->running = false;
		*result = v;
		return VM_RUN_DONE;
	}
	pc = vm_native(link);
	R -= VM_A(pc[-1]) + 2;
	proto = frame_proto(R);
	K = proto->k;
	p->sp = (uint32_t)(R - p->stack) + proto->nregs;
	NEXT();
}
L_FORPREP : {
	vm_value a = RA, b = R[VM_A(ins) + 1];
	if (!vm_is_int(a) || !vm_is_int(b)) {
		st = vm_raise2(p, VM_A_BADARG, vm_is_int(a) ? b : a);
		goto raise;
	}
	TEST_RESULT(vm_int(a) < vm_int(b));
}
L_FORLOOP : {
	vm_value a = RA;
	if (vm_is_small(a) && vm_small(a) < VM_SMALL_MAX) {
		RA = vm_from_small(vm_small(a) + 1);
	} else {
		vm_value v;
		CHECK(vm_int_new(p, vm_int(a) + 1, &v));
		RA = v;
	}
	vm_value n = RA, e = R[VM_A(ins) + 1];
	bool more = vm_is_small(n) && vm_is_small(e) ? vm_small(n) < vm_small(e) : vm_int(n) < vm_int(e);
	if (more) {
		/* the JMP back: taken, with a reduction */
		pc += 1 + VM_SJ(*pc);
		if (--red <= 0) {
			SAVE();
			return VM_RUN_YIELD;
		}
		NEXT();
	}
	pc++;
	NEXT();
}
L_ITER : {
	vm_value v = RB;
	if (vm_is_list(v)) {
		RA = v;
		NEXT();
	}
	if (vm_is_map(v)) {
		CHECK(vm_map_to_list(p, &RB, &RA));
		NEXT();
	}
	if (vm_is_kind(v, VM_OBJ_ARRAY)) {
		size_t n = vm_obj_size(v);
		if (vm_need(p, 3 * n)) {
			st = vm_raise2(p, VM_A_SYSTEM_LIMIT, VM_NIL);
			goto raise;
		}
		vm_value *el = vm_fields(RB), l = VM_EMPTY;
		for (size_t i = n; i-- > 0;) {
			vm_header *c = vm_take(p, 3);
			c[0] = vm_hdr(VM_OBJ_CONS, 2);
			c[1] = el[i];
			c[2] = l;
			l = vm_from_obj(c);
		}
		RA = l;
		NEXT();
	}
	st = vm_raise2(p, VM_A_BADARG, v);
	goto raise;
}
L_NEXT : {
	vm_value l = RA;
	if (vm_is_kind(l, VM_OBJ_CONS)) {
		R[VM_B(ins)] = vm_fields(l)[0];
		RA = vm_fields(l)[1];
		TEST_RESULT(true);
	}
	TEST_RESULT(false);
}
L_TRY : {
	if (p->nhandlers == p->cap_handlers) {
		uint32_t cap = p->cap_handlers ? 2 * p->cap_handlers : 8;
		vm_handler *h = realloc(p->handlers, cap * sizeof *h);
		if (!h) {
			st = vm_raise2(p, VM_A_SYSTEM_LIMIT, VM_NIL);
			goto raise;
		}
		p->handlers = h;
		p->cap_handlers = cap;
	}
	p->handlers[p->nhandlers++] = (vm_handler){(uint32_t)(R - p->stack), VM_A(ins), pc + VM_SD(ins)};
	NEXT();
}
L_ENDTRY:
	assert(p->nhandlers > 0 && p->handlers[p->nhandlers - 1].base == (uint32_t)(R - p->stack));
	p->nhandlers--;
	NEXT();
L_RAISE:
	/* only emitted for the implicit re-raise at the end of a catch */
	p->raised = RA;
	goto reraise;
L_BADMATCH:
	st = vm_raise2(p, VM_B(ins) ? VM_A_NOMATCH : VM_A_BADMATCH, RA);
	goto raise;

failed:
	if (st == VM_HALT) {
		SAVE();
		p->running = false;
		return VM_RUN_HALT;
	}
raise:
	(void)st;
	/* The trace is taken where the value is raised, caught or not: a
	 * catch that matches no clause raises the value again (RAISE), and
	 * a crash then reports where it came from. */
	record_trace(p, R, pc);
reraise:
	if (p->nhandlers == 0) {
		SAVE();
		p->running = false;
		return VM_RUN_CRASH;
	}
	{
		vm_handler h = p->handlers[--p->nhandlers];
		R = p->stack + h.base;
		proto = frame_proto(R);
		K = proto->k;
		p->sp = h.base + proto->nregs;
		pc = h.pc;
		R[h.reg] = p->raised;
		p->raised = VM_NIL;
		NEXT();
	}
#undef NEXT
#undef RA
#undef RB
#undef RC
#undef TEST_RESULT
#undef CHECK
#undef SAVE
}

enum vm_run vm_call(vm_proc *p, vm_value fn, const vm_value *args, uint32_t nargs, uint64_t max_reductions,
		    vm_value *result)
{
	if (vm_call_setup(p, fn, args, nargs)) {
		p->raised = p->vm->system_limit;
		return VM_RUN_CRASH;
	}
	/* budget after budget, at most max_reductions in all */
	uint64_t spent = 0, slice = 1 << 20;
	for (;;) {
		if (max_reductions && max_reductions - spent < slice)
			slice = max_reductions - spent;
		enum vm_run r = vm_run(p, (int64_t)slice, result);
		if (r != VM_RUN_YIELD)
			return r;
		spent += slice;
		if (max_reductions && spent >= max_reductions) {
			p->running = false;
			return VM_RUN_LIMIT;
		}
	}
}

/* A crash report's reason is cut after this many bytes. */
#define VM_CRASH_REASON_MAX 4096

void vm_print_crash(vm_proc *p, const char *who, FILE *f)
{
	vm_buf b = {0};
	vm_inspect(p->vm, &b, p->raised);
	int len = (int)(b.len > VM_CRASH_REASON_MAX ? VM_CRASH_REASON_MAX : b.len);
	fprintf(f, "** process %s crashed: %.*s%s\n", who, len, b.b ? b.b : "",
		b.len > VM_CRASH_REASON_MAX ? " ... (cut)" : "");
	free(b.b);
	for (uint32_t i = 0; i < p->ntrace; i++)
		fprintf(f, "  at %s (%s:%u)\n", p->trace[i].proto->name, p->trace[i].proto->file, p->trace[i].line);
	if (p->trace_cut)
		fprintf(f, "  ... (more frames)\n");
}
