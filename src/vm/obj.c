/* obj.c - building values, equality and the total order, the arithmetic
 * slow paths, concatenation and indexing, and copying between heaps.
 *
 * Every builder follows state.h's protocol: reserve the whole result's
 * room first (vm_reserve, which may move every object), then re-read the
 * operands from their roots, then take and fill without further checks.
 *
 * The total order (vm_compare). LANGUAGE.md ranks numbers < atoms <
 * strings < tuples < lists < maps < arrays < closures < pids < refs; nil
 * and the booleans, which it does not place, come between the numbers and
 * the atoms (nil < false < true), and a native pointer (a built-in held as
 * a value) ranks with the closures, after them. Tuples, lists, arrays and
 * maps (as their ascending (key, value) sequence) compare element by
 * element, a proper prefix first; closures by their function's name and
 * arity, then their captured values. An int and a float compare exactly (no
 * rounding of the int), and when equal by value the int comes first, so
 * that compare is 0 exactly when vm_equal holds (0.0 and -0.0 are equal).
 *
 * Recursion: equality, the order and copying descend into nested values.
 * The last element of a tuple, the tail of a list, is followed by a loop,
 * so long lists and right-nested tuples cost no C stack; copying uses no
 * recursion at all (a scan of the copy, as the collector does).
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "obj.h"

#define VM_HEAP_WORDS_MAX ((size_t)1 << 31)

int vm_reserve(vm_proc *p, size_t words)
{
	if (words > VM_HEAP_WORDS_MAX || vm_need(p, words) != 0)
		return vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
	return VM_OK;
}

vm_header *vm_obj_take(vm_proc *p, unsigned kind, size_t size)
{
	assert((size_t)(p->heap.end - p->heap.top) >= vm_obj_words(size));
	vm_header *o = vm_take(p, vm_obj_words(size));
	o[0] = vm_hdr(kind, size);
	if (size == 0)
		o[1] = 0;
	return o;
}

/* ------------------------------------------------------------ building */

size_t vm_str_words(size_t len)
{
	if (len >= VM_BIGSTR_MIN)
		return vm_obj_words(1);
	return vm_obj_words(1 + (len + 1 + 7) / 8);
}

int vm_str_take(vm_proc *p, size_t len, vm_value *out, char **bytes)
{
	if (len >= VM_BIGSTR_MIN) {
		struct vm_bigstr *b = malloc(sizeof *b + len + 1);
		if (!b)
			return -ENOMEM;
		atomic_init(&b->refs, 1);
		b->len = len;
		b->bytes[len] = 0;
		if (vm_heap_add_big(p, b) != 0) {
			free(b);
			return -ENOMEM;
		}
		vm_header *o = vm_obj_take(p, VM_OBJ_BIGSTR, 1);
		o[1] = (vm_value)(uintptr_t)b;
		*bytes = b->bytes;
		*out = vm_from_obj(o);
		return 0;
	}
	size_t size = 1 + (len + 1 + 7) / 8;
	vm_header *o = vm_obj_take(p, VM_OBJ_STR, size);
	o[1] = len;
	o[size] = 0; /* the NUL and the padding */
	*bytes = (char *)(o + 2);
	*out = vm_from_obj(o);
	return 0;
}

int vm_str_alloc(vm_proc *p, size_t len, vm_value *out, char **bytes)
{
	if (len > VM_OBJ_MAX * 8 || vm_reserve(p, vm_str_words(len)) || vm_str_take(p, len, out, bytes))
		return vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
	return VM_OK;
}

int vm_str_new(vm_proc *p, const char *s, size_t len, vm_value *out)
{
	char *d;
	vm_value v;
	if (vm_str_alloc(p, len, &v, &d))
		return VM_RAISE;
	if (len)
		memcpy(d, s, len);
	*out = v;
	return VM_OK;
}

int vm_int_new(vm_proc *p, int64_t i, vm_value *out)
{
	if (vm_fits_small(i)) {
		*out = vm_from_small(i);
		return VM_OK;
	}
	if (vm_reserve(p, 2))
		return VM_RAISE;
	vm_header *o = vm_obj_take(p, VM_OBJ_BIGINT, 1);
	memcpy(o + 1, &i, sizeof i);
	*out = vm_from_obj(o);
	return VM_OK;
}

int vm_float_new(vm_proc *p, double d, vm_value *out)
{
	if (!vm_float_ok(d))
		return vm_raise_atom(p, VM_A_BADARITH);
	*out = vm_from_float(d);
	return VM_OK;
}

int vm_tuple_new(vm_proc *p, size_t n, vm_value *out)
{
	if (n > VM_OBJ_MAX)
		return vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
	if (vm_reserve(p, vm_obj_words(n)))
		return VM_RAISE;
	vm_header *o = vm_obj_take(p, VM_OBJ_TUPLE, n);
	for (size_t i = 1; i <= n; i++)
		o[i] = VM_NIL;
	*out = vm_from_obj(o);
	return VM_OK;
}

int vm_cons(vm_proc *p, const vm_value *head, const vm_value *tail, vm_value *out)
{
	if (vm_reserve(p, 3))
		return VM_RAISE;
	vm_header *o = vm_obj_take(p, VM_OBJ_CONS, 2);
	o[1] = *head;
	o[2] = *tail;
	*out = vm_from_obj(o);
	return VM_OK;
}

/* ------------------------------------------------------------ comparing */

static int vm_cmp_bytes(const char *a, size_t la, const char *b, size_t lb)
{
	int c = memcmp(a, b, la < lb ? la : lb);
	if (c)
		return c < 0 ? -1 : 1;
	return la < lb ? -1 : la > lb;
}

/* The work of vm_equal and vm_compare: pairs of values still to compare,
 * on a stack of our own (a value nested 10^6 deep, as a list of lists
 * can be, must not need 10^6 C frames). An entry with res != VM_CMP_PAIR
 * is a decision deferred until the pairs above it are found equal: the
 * order of two sequences of different lengths once their common prefix
 * is equal. */
#define VM_CMP_PAIR 2
typedef struct vm_cmp_entry {
	vm_value a, b;
	int res;
} vm_cmp_entry;

typedef struct vm_cmp_stack {
	vm_cmp_entry *e;
	size_t n, cap;
	bool oom;
	/* Pairs of arrays already taken apart: arrays are the one mutable
	 * kind, so the one way to a cycle (a[0] = a); a pair met again is not
	 * taken apart again (if its contents differ, the first visit finds
	 * it), so == and the order end on cyclic values too. An open-
	 * addressing set, made at the first pair. */
	vm_value (*seen)[2];
	size_t nseen, capseen;
	vm_cmp_entry local[64];
} vm_cmp_stack;

static void vm_cmp_init(vm_cmp_stack *s)
{
	s->e = s->local;
	s->n = 0;
	s->cap = sizeof s->local / sizeof s->local[0];
	s->oom = false;
	s->seen = NULL;
	s->nseen = s->capseen = 0;
}

static void vm_cmp_free(vm_cmp_stack *s)
{
	if (s->e != s->local)
		free(s->e);
	free(s->seen);
}

static size_t vm_pair_hash(vm_value a, vm_value b, size_t mask)
{
	uint64_t h = (a * UINT64_C(0x9E3779B97F4A7C15)) ^ (b * UINT64_C(0xC2B2AE3D27D4EB4F));
	return (size_t)(h ^ (h >> 29)) & mask;
}

/* Whether the pair (a, b) of arrays was met before; records it if not.
 * Out of memory: says not met (the walk goes on without the set). */
static bool vm_cmp_seen(vm_cmp_stack *s, vm_value a, vm_value b)
{
	if (2 * (s->nseen + 1) > s->capseen) {
		size_t cap = s->capseen ? 2 * s->capseen : 64;
		vm_value(*t)[2] = calloc(cap, sizeof *t);
		if (!t)
			return false;
		for (size_t i = 0; i < s->capseen; i++)
			if (s->seen[i][0]) {
				size_t j = vm_pair_hash(s->seen[i][0], s->seen[i][1], cap - 1);
				while (t[j][0])
					j = (j + 1) & (cap - 1);
				t[j][0] = s->seen[i][0];
				t[j][1] = s->seen[i][1];
			}
		free(s->seen);
		s->seen = t;
		s->capseen = cap;
	}
	size_t mask = s->capseen - 1;
	for (size_t j = vm_pair_hash(a, b, mask);; j = (j + 1) & mask) {
		if (!s->seen[j][0]) {
			s->seen[j][0] = a;
			s->seen[j][1] = b;
			s->nseen++;
			return false;
		}
		if (s->seen[j][0] == a && s->seen[j][1] == b)
			return true;
	}
}

/* false (and s->oom set) when out of memory. */
static bool vm_cmp_push(vm_cmp_stack *s, vm_value a, vm_value b, int res)
{
	if (s->n == s->cap) {
		size_t cap = 2 * s->cap;
		vm_cmp_entry *e = s->e == s->local ? malloc(cap * sizeof *e) : realloc(s->e, cap * sizeof *e);
		if (!e) {
			s->oom = true;
			return false;
		}
		if (s->e == s->local)
			memcpy(e, s->local, sizeof s->local);
		s->e = e;
		s->cap = cap;
	}
	s->e[s->n++] = (vm_cmp_entry){a, b, res};
	return true;
}

/* The entries of two maps pairwise, keys then values, as far as the
 * smaller goes: pushed so as to pop in key order. */
static void vm_cmp_push_map(vm_cmp_stack *s, vm_value a, vm_value b)
{
	size_t from = s->n;
	vm_map_iter ia, ib;
	vm_map_iter_init(&ia, a);
	vm_map_iter_init(&ib, b);
	vm_value ka, va, kb, vb;
	while (vm_map_next(&ia, &ka, &va) && vm_map_next(&ib, &kb, &vb))
		if (!vm_cmp_push(s, ka, kb, VM_CMP_PAIR) || !vm_cmp_push(s, va, vb, VM_CMP_PAIR))
			return;
	for (size_t i = from, j = s->n; i + 1 < j; i++, j--) {
		vm_cmp_entry t = s->e[i];
		s->e[i] = s->e[j - 1];
		s->e[j - 1] = t;
	}
}

/* One step of vm_equal: false when a and b differ; true when they are
 * equal or their parts were pushed. */
static bool vm_eq_step(vm_cmp_stack *s, vm_value a, vm_value b)
{
	if (a == b)
		return true;
	if (vm_is_float(a) || vm_is_float(b))
		return vm_is_float(a) && vm_is_float(b) && vm_float(a) == vm_float(b);
	if (!vm_is_obj(a) || !vm_is_obj(b))
		return false;
	if (vm_is_str(a) && vm_is_str(b))
		return vm_str_len(a) == vm_str_len(b) && memcmp(vm_str_bytes(a), vm_str_bytes(b), vm_str_len(a)) == 0;
	unsigned k = vm_hdr_kind(*vm_obj(a));
	if (k != vm_hdr_kind(*vm_obj(b)))
		return false;
	vm_value *fa = vm_fields(a), *fb = vm_fields(b);
	size_t n = vm_obj_size(a);
	switch (k) {
	case VM_OBJ_BIGINT:
	case VM_OBJ_PID:
	case VM_OBJ_REF:
		return fa[0] == fb[0];
	case VM_OBJ_MAP: {
		if (vm_map_size(a) != vm_map_size(b))
			return false;
		vm_cmp_push_map(s, a, b);
		return true;
	}
	case VM_OBJ_ARRAY:
		if (n == vm_obj_size(b) && vm_cmp_seen(s, a, b))
			return true;
		__attribute__((fallthrough));
	case VM_OBJ_TUPLE:
	case VM_OBJ_CONS:
	case VM_OBJ_CLOSURE:
		if (n != vm_obj_size(b))
			return false;
		for (size_t i = n; i-- > 0;)
			if (!vm_cmp_push(s, fa[i], fb[i], VM_CMP_PAIR))
				break;
		return true;
	default:
		return false;
	}
}

bool vm_equal(vm_value a, vm_value b)
{
	vm_cmp_stack s;
	vm_cmp_init(&s);
	bool r = true;
	vm_cmp_push(&s, a, b, VM_CMP_PAIR);
	while (r && s.n > 0) {
		vm_cmp_entry e = s.e[--s.n];
		size_t base = s.n;
		r = vm_eq_step(&s, e.a, e.b);
		if (s.oom) { /* no room to push its parts: this pair on the C stack */
			s.n = base;
			s.oom = false;
			r = vm_equal(e.a, e.b);
		}
	}
	vm_cmp_free(&s);
	return r;
}

/* The rank of a value's kind in the total order (see the top). */
enum {
	VM_R_NUM,
	VM_R_NIL,
	VM_R_FALSE,
	VM_R_TRUE,
	VM_R_ATOM,
	VM_R_STR,
	VM_R_TUPLE,
	VM_R_LIST,
	VM_R_MAP,
	VM_R_ARRAY,
	VM_R_CLOSURE,
	VM_R_NATIVE,
	VM_R_PID,
	VM_R_REF,
};

static int vm_rank(vm_value v)
{
	if (vm_is_float(v) || vm_is_small(v))
		return VM_R_NUM;
	switch (vm_tag(v)) {
	case VM_TAG_CONST:
		if (v == VM_EMPTY)
			return VM_R_LIST;
		return v == VM_NIL ? VM_R_NIL : v == VM_FALSE ? VM_R_FALSE : VM_R_TRUE;
	case VM_TAG_ATOM:
		return VM_R_ATOM;
	case VM_TAG_NATIVE:
		return VM_R_NATIVE;
	default:
		break;
	}
	switch (vm_hdr_kind(*vm_obj(v))) {
	case VM_OBJ_STR:
	case VM_OBJ_BIGSTR:
		return VM_R_STR;
	case VM_OBJ_TUPLE:
		return VM_R_TUPLE;
	case VM_OBJ_CONS:
		return VM_R_LIST;
	case VM_OBJ_MAP:
		return VM_R_MAP;
	case VM_OBJ_ARRAY:
		return VM_R_ARRAY;
	case VM_OBJ_CLOSURE:
		return VM_R_CLOSURE;
	case VM_OBJ_PID:
		return VM_R_PID;
	case VM_OBJ_REF:
		return VM_R_REF;
	default:
		return VM_R_NUM; /* VM_OBJ_BIGINT */
	}
}

/* An int against a float, exactly: <0, 0 or >0 by value. */
static int vm_cmp_int_float(int64_t i, double d)
{
	if (d >= 0x1p63)
		return -1;
	if (d < -0x1p63)
		return 1;
	double t = trunc(d);
	int64_t ti = (int64_t)t;
	if (i != ti)
		return i < ti ? -1 : 1;
	double frac = d - t;
	return frac > 0 ? -1 : frac < 0;
}

/* Two numbers by value: 0 when equal (1 and 1.0 too). */
static int vm_cmp_value(vm_value a, vm_value b)
{
	if (vm_is_float(a) && vm_is_float(b)) {
		double x = vm_float(a), y = vm_float(b);
		return x < y ? -1 : x > y;
	}
	if (vm_is_float(a))
		return -vm_cmp_int_float(vm_int(b), vm_float(a));
	if (vm_is_float(b))
		return vm_cmp_int_float(vm_int(a), vm_float(b));
	int64_t x = vm_int(a), y = vm_int(b);
	return x < y ? -1 : x > y;
}

/* Two numbers in the total order: by value, then the int first. */
static int vm_cmp_num(vm_value a, vm_value b)
{
	int c = vm_cmp_value(a, b);
	if (c || vm_is_float(a) == vm_is_float(b))
		return c;
	return vm_is_float(a) ? 1 : -1;
}

/* Element by element, a proper prefix first; the last pair is left to
 * the caller's loop in *a, *b when the others are equal (returns 2). */
/* Two closures' functions: by name, then arity (a run's output must not
 * depend on where the allocator put the prototypes), then, for two
 * functions of one name and arity (two modules'), by address. */
static int vm_cmp_proto(vm_value pa, vm_value pb)
{
	const char *na, *nb;
	int aa, ab;
	vm_proto_describe(vm_native(pa), &na, &aa);
	vm_proto_describe(vm_native(pb), &nb, &ab);
	int c = vm_cmp_bytes(na, strlen(na), nb, strlen(nb));
	if (c)
		return c;
	if (aa != ab)
		return aa < ab ? -1 : 1;
	return pa < pb ? -1 : 1;
}

/* The elements of two sequences, in order, then their lengths. */
static void vm_cmp_push_seq(vm_cmp_stack *s, const vm_value *fa, size_t na, const vm_value *fb, size_t nb)
{
	if (!vm_cmp_push(s, 0, 0, na < nb ? -1 : na > nb))
		return;
	for (size_t i = na < nb ? na : nb; i-- > 0;)
		if (!vm_cmp_push(s, fa[i], fb[i], VM_CMP_PAIR))
			return;
}

/* One step: the order of a and b when it is decided by them alone
 * (-1, 0 or 1), or VM_CMP_PAIR when their parts were pushed. */
static int vm_cmp_step(vm_state *vm, vm_cmp_stack *s, vm_value a, vm_value b)
{
	if (a == b)
		return 0;
	int ra = vm_rank(a), rb = vm_rank(b);
	if (ra != rb)
		return ra < rb ? -1 : 1;
	switch (ra) {
	case VM_R_NUM:
		return vm_cmp_num(a, b);
	case VM_R_ATOM: {
		size_t la = 0, lb = 0;
		const char *na = vm_atom_name(vm, vm_atom(a), &la);
		const char *nb = vm_atom_name(vm, vm_atom(b), &lb);
		if (!na || !nb) /* not in the table: by index, to stay total */
			return vm_atom(a) < vm_atom(b) ? -1 : 1;
		int c = vm_cmp_bytes(na, la, nb, lb);
		return c ? c : (vm_atom(a) < vm_atom(b) ? -1 : vm_atom(a) > vm_atom(b));
	}
	case VM_R_STR:
		return vm_cmp_bytes(vm_str_bytes(a), vm_str_len(a), vm_str_bytes(b), vm_str_len(b));
	case VM_R_LIST:
		if (a == VM_EMPTY || b == VM_EMPTY)
			return a == VM_EMPTY ? -1 : 1;
		if (vm_cmp_push(s, vm_fields(a)[1], vm_fields(b)[1], VM_CMP_PAIR))
			vm_cmp_push(s, vm_fields(a)[0], vm_fields(b)[0], VM_CMP_PAIR);
		return VM_CMP_PAIR;
	case VM_R_MAP: {
		size_t na = vm_map_size(a), nb = vm_map_size(b);
		if (!vm_cmp_push(s, 0, 0, na < nb ? -1 : na > nb))
			return VM_CMP_PAIR;
		vm_cmp_push_map(s, a, b);
		return VM_CMP_PAIR;
	}
	case VM_R_CLOSURE:
		if (vm_fields(a)[0] != vm_fields(b)[0])
			return vm_cmp_proto(vm_fields(a)[0], vm_fields(b)[0]);
		__attribute__((fallthrough)); /* then the captured values */
	case VM_R_ARRAY:
		if (vm_cmp_seen(s, a, b))
			return 0;
		__attribute__((fallthrough));
	case VM_R_TUPLE:
		vm_cmp_push_seq(s, vm_fields(a), vm_obj_size(a), vm_fields(b), vm_obj_size(b));
		return VM_CMP_PAIR;
	case VM_R_PID:
	case VM_R_REF:
		return vm_fields(a)[0] < vm_fields(b)[0] ? -1 : vm_fields(a)[0] > vm_fields(b)[0];
	case VM_R_NATIVE:
		return a < b ? -1 : 1;
	default: /* nil, false, true: one value each, equal words */
		return 0;
	}
}

int vm_compare(vm_state *vm, vm_value a, vm_value b)
{
	vm_cmp_stack s;
	vm_cmp_init(&s);
	int r = 0;
	vm_cmp_push(&s, a, b, VM_CMP_PAIR);
	while (r == 0 && s.n > 0) {
		vm_cmp_entry e = s.e[--s.n];
		if (e.res != VM_CMP_PAIR) {
			r = e.res;
			continue;
		}
		size_t base = s.n;
		r = vm_cmp_step(vm, &s, e.a, e.b);
		if (s.oom) { /* no room to push its parts: this pair on the C stack */
			s.n = base;
			s.oom = false;
			r = vm_compare(vm, e.a, e.b);
		} else if (r == VM_CMP_PAIR) {
			r = 0;
		}
	}
	vm_cmp_free(&s);
	return r;
}

/* An operator given operands of the wrong kind. */
static int vm_badarg(vm_proc *p)
{
	return vm_raise_atom(p, VM_A_BADARG);
}

static bool vm_is_num(vm_value v)
{
	return vm_is_float(v) || vm_is_int(v);
}

int vm_order(vm_proc *p, unsigned op, vm_value a, vm_value b, vm_value *out)
{
	int c;
	if (vm_is_num(a) && vm_is_num(b)) {
		c = vm_cmp_value(a, b); /* 1 < 1.0 is false: by value only */
	} else if (vm_is_str(a) && vm_is_str(b)) {
		c = vm_cmp_bytes(vm_str_bytes(a), vm_str_len(a), vm_str_bytes(b), vm_str_len(b));
	} else {
		return vm_badarg(p);
	}
	bool r;
	switch (op) {
	case VM_OP_LT:
		r = c < 0;
		break;
	case VM_OP_LE:
		r = c <= 0;
		break;
	case VM_OP_GT:
		r = c > 0;
		break;
	case VM_OP_GE:
		r = c >= 0;
		break;
	default:
		return vm_badarg(p);
	}
	*out = vm_bool(r);
	return VM_OK;
}

/* ------------------------------------------------------------ arithmetic */

static int vm_int_op(vm_proc *p, unsigned op, int64_t x, int64_t y, vm_value *out)
{
	int64_t r;
	switch (op) {
	case VM_OP_ADD:
		if (__builtin_add_overflow(x, y, &r))
			return vm_raise_atom(p, VM_A_OVERFLOW);
		break;
	case VM_OP_SUB:
		if (__builtin_sub_overflow(x, y, &r))
			return vm_raise_atom(p, VM_A_OVERFLOW);
		break;
	case VM_OP_MUL:
		if (__builtin_mul_overflow(x, y, &r))
			return vm_raise_atom(p, VM_A_OVERFLOW);
		break;
	case VM_OP_DIV:
	case VM_OP_MOD:
		if (y == 0)
			return vm_raise_atom(p, VM_A_BADARITH);
		if (x == INT64_MIN && y == -1) {
			if (op == VM_OP_DIV)
				return vm_raise_atom(p, VM_A_OVERFLOW);
			r = 0;
			break;
		}
		r = op == VM_OP_DIV ? x / y : x % y; /* C truncates: % has the dividend's sign */
		break;
	case VM_OP_BOR:
		r = x | y;
		break;
	case VM_OP_BXOR:
		r = x ^ y;
		break;
	case VM_OP_BAND:
		r = x & y;
		break;
	case VM_OP_SHL:
	case VM_OP_SHR:
		if (y < 0 || y >= 64)
			return vm_badarg(p);
		if (op == VM_OP_SHR) {
			r = x >> y; /* arithmetic: GCC and Clang define it so */
			break;
		}
		r = (int64_t)((uint64_t)x << y);
		if ((r >> y) != x)
			return vm_raise_atom(p, VM_A_OVERFLOW);
		break;
	default:
		return vm_badarg(p);
	}
	return vm_int_new(p, r, out);
}

int vm_arith(vm_proc *p, unsigned op, const vm_value *a, const vm_value *b, vm_value *out)
{
	vm_value x = *a, y = *b;
	switch (op) {
	case VM_OP_EQ:
	case VM_OP_NE:
		*out = vm_bool(vm_equal(x, y) == (op == VM_OP_EQ));
		return VM_OK;
	case VM_OP_LT:
	case VM_OP_LE:
	case VM_OP_GT:
	case VM_OP_GE:
		return vm_order(p, op, x, y, out);
	case VM_OP_CONCAT:
		return vm_concat(p, a, b, out);
	default:
		break;
	}
	if (!vm_is_num(x) || !vm_is_num(y))
		return vm_badarg(p);
	if (vm_is_int(x) && vm_is_int(y))
		return vm_int_op(p, op, vm_int(x), vm_int(y), out);
	/* a float among the operands */
	double dx = vm_is_float(x) ? vm_float(x) : (double)vm_int(x);
	double dy = vm_is_float(y) ? vm_float(y) : (double)vm_int(y);
	double r;
	switch (op) {
	case VM_OP_ADD:
		r = dx + dy;
		break;
	case VM_OP_SUB:
		r = dx - dy;
		break;
	case VM_OP_MUL:
		r = dx * dy;
		break;
	case VM_OP_DIV:
		r = dx / dy;
		break;
	case VM_OP_MOD:
	case VM_OP_BOR:
	case VM_OP_BXOR:
	case VM_OP_BAND:
	case VM_OP_SHL:
	case VM_OP_SHR:
		return vm_raise_atom(p, VM_A_BADARITH); /* integers only */
	default:
		return vm_badarg(p);
	}
	return vm_float_new(p, r, out);
}

int vm_negate(vm_proc *p, const vm_value *a, vm_value *out)
{
	vm_value x = *a;
	if (vm_is_float(x))
		return vm_float_new(p, -vm_float(x), out);
	if (!vm_is_int(x))
		return vm_badarg(p);
	int64_t i = vm_int(x);
	if (i == INT64_MIN)
		return vm_raise_atom(p, VM_A_OVERFLOW);
	return vm_int_new(p, -i, out);
}

int vm_bnot(vm_proc *p, const vm_value *a, vm_value *out)
{
	if (vm_is_float(*a))
		return vm_raise_atom(p, VM_A_BADARITH);
	if (!vm_is_int(*a))
		return vm_badarg(p);
	return vm_int_new(p, ~vm_int(*a), out);
}

int64_t vm_list_len(vm_value l)
{
	int64_t n = 0;
	while (vm_is_kind(l, VM_OBJ_CONS)) {
		n++;
		l = vm_fields(l)[1];
	}
	return l == VM_EMPTY ? n : -1;
}

int vm_concat(vm_proc *p, const vm_value *a, const vm_value *b, vm_value *out)
{
	if (vm_is_str(*a) && vm_is_str(*b)) {
		size_t la = vm_str_len(*a), lb = vm_str_len(*b);
		char *d;
		vm_value s;
		if (vm_str_alloc(p, la + lb, &s, &d))
			return VM_RAISE;
		memcpy(d, vm_str_bytes(*a), la);
		memcpy(d + la, vm_str_bytes(*b), lb);
		*out = s;
		return VM_OK;
	}
	int64_t n = vm_list_len(*a);
	if (n < 0 || !vm_is_list(*b))
		return vm_badarg(p);
	if (n == 0) {
		*out = *b;
		return VM_OK;
	}
	if (vm_reserve(p, 3 * (size_t)n))
		return VM_RAISE;
	vm_value l = *a, first = VM_EMPTY;
	vm_header *prev = NULL;
	for (; l != VM_EMPTY; l = vm_fields(l)[1]) {
		vm_header *c = vm_obj_take(p, VM_OBJ_CONS, 2);
		c[1] = vm_fields(l)[0];
		if (prev)
			prev[2] = vm_from_obj(c);
		else
			first = vm_from_obj(c);
		prev = c;
	}
	prev[2] = *b;
	*out = first;
	return VM_OK;
}

/* ------------------------------------------------------------ containers */

int vm_index(vm_proc *p, const vm_value *a, const vm_value *i, vm_value *out)
{
	vm_value x = *a, k = *i;
	if (vm_is_map(x)) {
		vm_value v;
		if (!vm_map_get(p->vm, x, k, &v))
			return vm_raise2(p, VM_A_BADKEY, k);
		*out = v;
		return VM_OK;
	}
	if (!vm_is_int(k))
		return vm_badarg(p);
	int64_t n = vm_int(k);
	if (n < 0)
		return vm_badarg(p);
	if (vm_is_kind(x, VM_OBJ_TUPLE) || vm_is_kind(x, VM_OBJ_ARRAY)) {
		if ((uint64_t)n >= vm_obj_size(x))
			return vm_badarg(p);
		*out = vm_fields(x)[n];
		return VM_OK;
	}
	if (vm_is_str(x)) {
		if ((uint64_t)n >= vm_str_len(x))
			return vm_badarg(p);
		*out = vm_from_small((unsigned char)vm_str_bytes(x)[n]);
		return VM_OK;
	}
	if (vm_is_list(x)) {
		while (n > 0 && vm_is_kind(x, VM_OBJ_CONS)) {
			x = vm_fields(x)[1];
			n--;
		}
		if (!vm_is_kind(x, VM_OBJ_CONS))
			return vm_badarg(p);
		*out = vm_fields(x)[0];
		return VM_OK;
	}
	return vm_badarg(p);
}

int vm_index_set(vm_proc *p, vm_value a, vm_value i, vm_value v)
{
	if (!vm_is_kind(a, VM_OBJ_ARRAY) || !vm_is_int(i))
		return vm_badarg(p);
	int64_t n = vm_int(i);
	if (n < 0 || (uint64_t)n >= vm_obj_size(a))
		return vm_badarg(p);
	/* Only an array of this process's heap is mutable: one outside it is a
	 * top-level constant's (the literal area, shared by every process and
	 * never scanned by a collection, so a heap value stored there would
	 * dangle after the next one). */
	const vm_value *o = (const vm_value *)vm_obj(a);
	if (o < p->heap.start || o >= p->heap.top)
		return vm_badarg(p);
	vm_fields(a)[n] = v;
	return VM_OK;
}

/* ------------------------------------------------------------ copying */

size_t vm_copy_size(vm_value v)
{
	/* Depth first with a stack of our own: nesting costs no C stack. */
	vm_value local[64], *stack = local;
	size_t n = 0, cap = 64, words = 0;
	stack[n++] = v;
	while (n > 0) {
		vm_value x = stack[--n];
		if (!vm_is_obj(x) || x == vm_map_empty)
			continue;
		vm_header h = *vm_obj(x);
		size_t size = vm_hdr_size(h);
		words += vm_obj_words(size);
		if (words > VM_HEAP_WORDS_MAX) {
			words = SIZE_MAX;
			break;
		}
		if (vm_hdr_kind(h) < VM_OBJ_SCANNED)
			continue;
		if (cap - n < size) {
			size_t ncap = 2 * (n + size);
			vm_value *ns = malloc(ncap * sizeof *ns);
			if (!ns) {
				words = SIZE_MAX;
				break;
			}
			memcpy(ns, stack, n * sizeof *ns);
			if (stack != local)
				free(stack);
			stack = ns;
			cap = ncap;
		}
		memcpy(stack + n, vm_fields(x), size * sizeof *stack);
		n += size;
	}
	if (stack != local)
		free(stack);
	return words;
}

/* One object copied flat into p's heap (its fields still name the source);
 * -ENOMEM when a big string cannot be tracked. */
static int vm_copy_one(vm_proc *p, vm_value *v)
{
	if (!vm_is_obj(*v) || *v == vm_map_empty)
		return 0;
	vm_header *o = vm_obj(*v);
	size_t size = vm_hdr_size(*o);
	if (vm_hdr_kind(*o) == VM_OBJ_BIGSTR) {
		struct vm_bigstr *b = (struct vm_bigstr *)(uintptr_t)o[1];
		if (vm_heap_add_big(p, b))
			return -ENOMEM;
		atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
	}
	vm_header *n = vm_obj_take(p, vm_hdr_kind(*o), size);
	memcpy(n + 1, o + 1, size * sizeof *n);
	*v = vm_from_obj(n);
	return 0;
}

int vm_copy(vm_proc *p, vm_value v, vm_value *out)
{
	size_t words = vm_copy_size(v);
	if (words == SIZE_MAX || vm_reserve(p, words))
		return vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
	/* As the collector does: copy the root, then scan the copies left to
	 * right, copying what their fields name, until the scan catches up. */
	vm_value *scan = p->heap.top;
	if (vm_copy_one(p, &v))
		return vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
	while (scan < p->heap.top) {
		vm_header h = *scan;
		size_t size = vm_hdr_size(h);
		if (vm_hdr_kind(h) >= VM_OBJ_SCANNED)
			for (size_t i = 1; i <= size; i++)
				if (vm_copy_one(p, &scan[i]))
					return vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
		scan += vm_obj_words(size);
	}
	*out = v;
	return VM_OK;
}
