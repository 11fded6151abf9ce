/* interp.c - the interpreter: direct-threaded dispatch over the register
 * bytecode (code.h), frames on the process's own stack, no C recursion.
 *
 * The loop keeps the instruction pointer, the frame's registers (R) and
 * the constants (K) in locals; each handler ends by fetching the next
 * instruction and jumping through the dispatch table (computed goto), so
 * each opcode has its own indirect branch. The frame record is written
 * only when control leaves the frame: a call (the caller's resume point),
 * a yield or a raise.
 *
 * Invariants:
 *  - p->sp == base + nregs of the running frame whenever a collection can
 *    run (every allocation, every built-in): the registers of every frame
 *    are below it, so they are the roots, and R stays valid (the stack is
 *    never moved by a collection; it grows only at a function's entry,
 *    after which R is recomputed).
 *  - A value read into a C local before an allocation is re-read from its
 *    register after it (obj.h's functions take register pointers).
 *  - Handlers (try) name the frame that opened them; a return pops those
 *    of its frame, a raise unwinds to the innermost one.
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
#define VM_FRAMES_MAX (16u << 20)

static inline const vm_proto *closure_proto(vm_value c)
{
	return vm_native(vm_fields(c)[0]);
}

static inline bool is_function(vm_value v)
{
	return vm_is_kind(v, VM_OBJ_CLOSURE);
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

static int push_frame(vm_proc *p)
{
	if (p->nframes < p->cap_frames)
		return 0;
	if (p->cap_frames >= VM_FRAMES_MAX)
		return -E2BIG;
	vm_frame *f = realloc(p->frames, 2 * p->cap_frames * sizeof *f);
	if (!f)
		return -ENOMEM;
	p->frames = f;
	p->cap_frames *= 2;
	return 0;
}

int vm_call_setup(vm_proc *p, vm_value fn, const vm_value *args, uint32_t nargs)
{
	if (!is_function(fn) || nargs > 200)
		return -EINVAL;
	const vm_proto *pr = closure_proto(fn);
	uint32_t nregs = pr->nregs > nargs ? pr->nregs : nargs;
	if (vm_stack_room(p, 1, nregs) || push_frame(p))
		return -ENOMEM;
	p->stack[0] = fn;
	for (uint32_t i = 0; i < nargs; i++)
		p->stack[1 + i] = args[i];
	p->nframes = 1;
	p->nhandlers = 0;
	p->frames[0] = (vm_frame){pr, pr->code, 1, 0};
	p->sp = 1 + nregs;
	if (p->sp > p->stack_hw)
		p->stack_hw = p->sp;
	/* the arity is checked as the call runs: record what was passed */
	p->frames[0].ret = nargs;
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

static void record_trace(vm_proc *p, const uint32_t *pc)
{
	free(p->trace);
	p->ntrace = 0;
	p->trace = malloc(p->nframes * sizeof *p->trace);
	if (!p->trace)
		return;
	for (uint32_t i = p->nframes; i-- > 0;) {
		const vm_frame *f = &p->frames[i];
		const uint32_t *at = i == p->nframes - 1 ? pc : f->pc;
		uint32_t idx = at > f->proto->code ? (uint32_t)(at - f->proto->code - 1) : 0;
		if (idx >= f->proto->ncode)
			idx = f->proto->ncode ? f->proto->ncode - 1 : 0;
		p->trace[p->ntrace++] =
			(vm_trace_ent){f->proto, f->proto->ncode ? f->proto->lines[idx] : f->proto->line};
	}
}

/* ------------------------------------------------------------ literals */

int vm_lit_copy(vm_state *vm, vm_value v, vm_value *out)
{
	/* Iterative (a long list or a deep tree must not run out of C stack):
	 * a stack of slots still holding old values; each popped slot gets
	 * its copy, whose fields are pushed in turn. Sharing is not kept. */
	*out = v;
	size_t n = 0, cap = 64;
	vm_value **todo = malloc(cap * sizeof *todo);
	if (!todo)
		return -ENOMEM;
	todo[n++] = out;
	int e = 0;
	while (n && !e) {
		vm_value *slot = todo[--n];
		if (!vm_is_obj(*slot))
			continue;
		vm_header *o = vm_obj(*slot);
		size_t size = vm_hdr_size(*o);
		vm_header *c = vm_lit_alloc(vm, 1 + size);
		if (!c) {
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
			vm_value **t = realloc(todo, ncap * sizeof *t);
			if (!t) {
				e = -ENOMEM;
				break;
			}
			todo = t;
			cap = ncap;
		}
		for (size_t i = 1; i <= size; i++)
			todo[n++] = &c[i];
	}
	free(todo);
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
	vm_frame *f = &p->frames[p->nframes - 1];
	const vm_proto *proto = f->proto;
	const uint32_t *pc = f->pc;
	vm_value *R = p->stack + f->base;
	const vm_value *K = proto->k;
	int64_t red = budget;
	uint32_t ins;
	int st;

	/* A fresh call (vm_call_setup): check the arity as a call would. */
	if (p->nframes == 1 && pc == proto->code && f->ret != 0xffffffffu) {
		uint32_t nargs = f->ret;
		f->ret = 0xffffffffu;
		if (nargs != proto->nparams) {
			st = raise_badarity(p, proto->name);
			goto raise;
		}
	}

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
		st = vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
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
		f->pc = pc;
		return VM_RUN_YIELD;
	}
	NEXT();
}
L_TEST:
	TEST_RESULT(vm_truthy(RA));
L_TESTNOT:
	TEST_RESULT(!vm_truthy(RA));
L_TLT:
L_TLE : {
	vm_value a = RA, b = RB;
	bool le = VM_OPOF(ins) == OP_TLE;
	if (vm_is_small(a) && vm_is_small(b))
		TEST_RESULT(le ? vm_small(a) <= vm_small(b) : vm_small(a) < vm_small(b));
	vm_value r;
	CHECK(vm_order(p, le ? VM_OP_LE : VM_OP_LT, a, b, &r));
	TEST_RESULT(r == VM_TRUE);
}
L_TLTI:
L_TGTI : {
	vm_value a = RA;
	int64_t k = VM_SB(ins);
	bool lt = VM_OPOF(ins) == OP_TLTI;
	if (vm_is_small(a))
		TEST_RESULT(lt ? vm_small(a) < k : vm_small(a) > k);
	vm_value r;
	CHECK(vm_order(p, lt ? VM_OP_LT : VM_OP_GT, a, vm_from_small(k), &r));
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
L_TMATCHFAIL:
	NEXT();
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
		st = vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
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
		st = vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
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

	/* Calls. The callee's frame starts after its slot (R[A]), where its
	 * result goes when it returns (so a frame's result slot is always
	 * stack[base - 1]); its arity is checked, its stack room made (the
	 * limit checked once, here), its reduction counted. CALLK, the call
	 * of a known function, is the fast path; the rest share `call`. */
	{
		const vm_proto *callee;
		bool tail;
	L_CALLK : {
		const vm_proto *c = vm_native(K[VM_C(ins)]);
		uint32_t cbase = (uint32_t)(R - p->stack) + VM_A(ins) + 1;
		if (unlikely(VM_B(ins) != c->nparams || p->nframes >= p->cap_frames ||
			     cbase + c->nregs > p->stack_cap)) {
			callee = c;
			tail = false;
			goto call;
		}
		f->pc = pc;
		f = &p->frames[p->nframes++];
		f->proto = proto = c;
		f->base = cbase;
		K = c->k;
		R += VM_A(ins) + 1;
		pc = c->code;
		p->sp = cbase + c->nregs;
		if (p->sp > p->stack_hw)
			p->stack_hw = p->sp;
		if (unlikely(--red <= 0)) {
			f->pc = pc;
			return VM_RUN_YIELD;
		}
		NEXT();
	}
	L_CALL:
	L_TAILCALL : {
		vm_value fn = RA;
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
		uint32_t nargs = VM_B(ins), cbase;
		if (nargs != callee->nparams) {
			st = raise_badarity(p, callee->name);
			goto raise;
		}
		if (tail) {
			/* the callee and its arguments replace this frame's */
			uint32_t a = VM_A(ins);
			if (VM_OPOF(ins) == OP_TAILCALL)
				R[-1] = R[a];
			for (uint32_t i = 0; i < nargs; i++)
				R[i] = R[a + 1 + i];
			cbase = f->base;
		} else {
			cbase = f->base + VM_A(ins) + 1;
			if (push_frame(p)) {
				st = vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
				goto raise;
			}
			f = &p->frames[p->nframes - 1];
		}
		if (vm_stack_room(p, cbase, callee->nregs)) {
			st = vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
			goto raise;
		}
		R = p->stack + f->base;
		if (!tail) {
			f->pc = pc;
			f = &p->frames[p->nframes++];
		}
		f->proto = proto = callee;
		f->base = cbase;
		K = proto->k;
		R = p->stack + cbase;
		pc = proto->code;
		p->sp = cbase + proto->nregs;
		if (p->sp > p->stack_hw)
			p->stack_hw = p->sp;
		if (--red <= 0) {
			f->pc = pc;
			return VM_RUN_YIELD;
		}
		NEXT();
	}
	}
L_BUILTIN : {
	const vm_builtin *bi = vm_native(K[VM_C(ins)]);
	uint32_t n = VM_B(ins);
	if ((int)n < bi->min_args || (bi->max_args >= 0 && (int)n > bi->max_args)) {
		st = raise_badarity(p, bi->name);
		goto raise;
	}
	st = bi->fn(p, &R[VM_A(ins) + 1], n, &RA);
	if (st == VM_HALT) {
		f->pc = pc;
		return VM_RUN_HALT;
	}
	if (st != VM_OK)
		goto raise;
	NEXT();
}
L_RET : {
	vm_value v = RA;
	if (unlikely(p->nhandlers)) {
		uint32_t fi = p->nframes - 1;
		while (p->nhandlers && p->handlers[p->nhandlers - 1].frame >= fi)
			p->nhandlers--;
	}
	if (unlikely(p->nframes == 1)) {
		p->nframes = 0;
		*result = v;
		return VM_RUN_DONE;
	}
	R[-1] = v; /* the callee's slot in the caller's frame */
	f = &p->frames[--p->nframes - 1];
	proto = f->proto;
	K = proto->k;
	R = p->stack + f->base;
	pc = f->pc;
	p->sp = f->base + proto->nregs;
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
			f->pc = pc;
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
			st = vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
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
			st = vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
			goto raise;
		}
		p->handlers = h;
		p->cap_handlers = cap;
	}
	p->handlers[p->nhandlers++] = (vm_handler){p->nframes - 1, VM_A(ins), pc + VM_SD(ins)};
	NEXT();
}
L_ENDTRY:
	assert(p->nhandlers > 0 && p->handlers[p->nhandlers - 1].frame == p->nframes - 1);
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
		f->pc = pc;
		return VM_RUN_HALT;
	}
raise:
	(void)st;
	/* The trace is taken where the value is raised, caught or not: a
	 * catch that matches no clause raises the value again (RAISE), and
	 * a crash then reports where it came from. */
	record_trace(p, pc);
reraise:
	if (p->nhandlers == 0) {
		f->pc = pc;
		return VM_RUN_CRASH;
	}
	{
		vm_handler h = p->handlers[--p->nhandlers];
		p->nframes = h.frame + 1;
		f = &p->frames[h.frame];
		proto = f->proto;
		K = proto->k;
		R = p->stack + f->base;
		p->sp = f->base + proto->nregs;
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
}

enum vm_run vm_call(vm_proc *p, vm_value fn, const vm_value *args, uint32_t nargs, vm_value *result)
{
	if (vm_call_setup(p, fn, args, nargs)) {
		p->raised = vm_from_atom(VM_A_SYSTEM_LIMIT);
		return VM_RUN_CRASH;
	}
	enum vm_run r;
	while ((r = vm_run(p, 1 << 20, result)) == VM_RUN_YIELD)
		;
	return r;
}

void vm_print_crash(vm_proc *p, const char *who, FILE *f)
{
	vm_buf b = {0};
	vm_inspect(p->vm, &b, p->raised);
	fprintf(f, "** process %s crashed: %.*s\n", who, (int)b.len, b.b ? b.b : "");
	free(b.b);
	for (uint32_t i = 0; i < p->ntrace; i++)
		fprintf(f, "  at %s (%s:%u)\n", p->trace[i].proto->name, p->trace[i].proto->file, p->trace[i].line);
}
