/* builtins.c - the built-in functions that need no process machinery and
 * call no closure (LANGUAGE.md "Built-in functions"), and their table.
 *
 * Each takes its arguments in registers (roots: they are re-read after
 * every reservation, which may move objects) and writes its result last.
 * Wrong types or values raise (:badarg, name); a result too large for a
 * heap raises :system_limit, checked before any memory is asked for.
 *
 * Decisions LANGUAGE.md leaves open: to_int, trunc and round of a float
 * out of the int64 range, and to_int of a decimal string past it, raise
 * :overflow; to_int and to_float read an optional sign and then digits
 * only (no spaces; to_float also takes a fraction and an exponent);
 * substr's range must lie within the string; split's separator must not
 * be empty; min and max follow the total order (the first on a tie).
 * random uses xoroshiro128++ on the process's p->rand (seeded with
 * splitmix64, so any seed, 0 included, gives a good state).
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft/time.h>

#include "../base/rand.h"
#include "obj.h"

/* (:badarg, :name) */
static int vm_bi_bad(vm_proc *p, const char *name)
{
	int64_t a = vm_atom_intern(p->vm, name, strlen(name));
	if (a < 0)
		return vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
	return vm_raise2(p, VM_A_BADARG, vm_from_atom((uint32_t)a));
}

#define BAD(name) return vm_bi_bad(p, name)

/* An integer argument within [lo, hi], else (:badarg, name). */
#define INT_ARG(var, v, lo, hi, name)                                                                                  \
	int64_t var;                                                                                                   \
	do {                                                                                                           \
		if (!vm_is_int(v) || vm_int(v) < (lo) || vm_int(v) > (hi))                                             \
			BAD(name);                                                                                     \
		var = vm_int(v);                                                                                       \
	} while (0)

static bool vm_is_num(vm_value v)
{
	return vm_is_float(v) || vm_is_int(v);
}

static double vm_num(vm_value v)
{
	return vm_is_float(v) ? vm_float(v) : (double)vm_int(v);
}

/* A list of the n values v[0..n) (room for 3n words reserved). */
static vm_value vm_list_of(vm_proc *p, const vm_value *v, size_t n, vm_value tail)
{
	vm_value l = tail;
	for (size_t i = n; i-- > 0;) {
		vm_header *c = vm_obj_take(p, VM_OBJ_CONS, 2);
		c[1] = v[i];
		c[2] = l;
		l = vm_from_obj(c);
	}
	return l;
}

/* A string built from bytes already outside the heap. */
static int vm_bi_str(vm_proc *p, const char *s, size_t len, vm_value *out)
{
	return vm_str_new(p, s, len, out);
}

/* ------------------------------------------------------------ output */

/* (:error, :io, :eNAME) for an errno: :epipe, :enospc, :ebadf... */
static int vm_raise_io(vm_proc *p, int err)
{
	char name[32];
	const char *n = strerrorname_np(err);
	snprintf(name, sizeof name, "%s", n ? n : "eio");
	for (char *c = name; *c; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
	int64_t io = vm_atom_intern(p->vm, "io", 2);
	int64_t a = vm_atom_intern(p->vm, name, strlen(name));
	if (io < 0 || a < 0)
		return vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
	return vm_raise2(p, (uint32_t)io, vm_from_atom((uint32_t)a));
}

static int vm_bi_print(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	vm_buf b = {0};
	for (uint32_t i = 0; i < nargs; i++) {
		if (i)
			vm_buf_put(&b, " ", 1);
		vm_print_value(p->vm, &b, args[i]);
	}
	vm_buf_put(&b, "\n", 1);
	if (b.oom) {
		free(b.b);
		return vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
	}
	/* One write: a short one (a pipe, a signal) is finished by more. A
	 * failed one (a closed pipe, a full disk) raises (:error, :io,
	 * :epipe) and the like: output is not lost in silence. */
	size_t done = 0;
	int err = 0;
	while (done < b.len) {
		ssize_t w = write(p->vm->out_fd, b.b + done, b.len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			err = w < 0 ? errno : EIO;
			break;
		}
		done += (size_t)w;
	}
	free(b.b);
	if (err)
		return vm_raise_io(p, err);
	*out = VM_NIL;
	return VM_OK;
}

/* The text of the buffer as a new string (the buffer freed). */
static int vm_bi_buf_str(vm_proc *p, vm_buf *b, vm_value *out)
{
	int r = b->oom ? vm_raise_atom(p, VM_A_SYSTEM_LIMIT) : vm_bi_str(p, b->b ? b->b : "", b->len, out);
	free(b->b);
	return r;
}

static int vm_bi_inspect(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	vm_buf b = {0};
	vm_inspect(p->vm, &b, args[0]);
	return vm_bi_buf_str(p, &b, out);
}

static int vm_bi_to_string(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	if (vm_is_str(args[0])) {
		*out = args[0];
		return VM_OK;
	}
	return vm_bi_inspect(p, args, nargs, out);
}

static int vm_bi_format_float(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	if (!vm_is_num(args[0]))
		BAD("format_float");
	INT_ARG(digits, args[1], 0, 1000, "format_float");
	double d = vm_num(args[0]);
	int n = snprintf(NULL, 0, "%.*f", (int)digits, d);
	char *s = malloc((size_t)n + 1);
	if (!s)
		return vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
	snprintf(s, (size_t)n + 1, "%.*f", (int)digits, d);
	int r = vm_bi_str(p, s, (size_t)n, out);
	free(s);
	return r;
}

/* ------------------------------------------------------------ numbers */

/* A float to an int64 by f (trunc, round): :overflow out of range. */
static int vm_bi_float_int(vm_proc *p, double d, double (*f)(double), vm_value *out)
{
	double t = f(d);
	if (!(t >= -0x1p63 && t < 0x1p63))
		return vm_raise_atom(p, VM_A_OVERFLOW);
	return vm_int_new(p, (int64_t)t, out);
}

static int vm_bi_to_int(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	vm_value v = args[0];
	if (vm_is_int(v)) {
		*out = v;
		return VM_OK;
	}
	if (vm_is_float(v))
		return vm_bi_float_int(p, vm_float(v), trunc, out);
	if (!vm_is_str(v))
		BAD("to_int");
	const char *s = vm_str_bytes(v);
	size_t len = vm_str_len(v), i = 0;
	bool neg = false;
	if (i < len && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	if (i == len)
		BAD("to_int");
	/* accumulated negative: INT64_MIN has no positive twin */
	int64_t acc = 0;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			BAD("to_int");
		if (__builtin_mul_overflow(acc, 10, &acc) || __builtin_sub_overflow(acc, s[i] - '0', &acc))
			return vm_raise_atom(p, VM_A_OVERFLOW);
	}
	if (!neg && acc == INT64_MIN)
		return vm_raise_atom(p, VM_A_OVERFLOW);
	return vm_int_new(p, neg ? acc : -acc, out);
}

static int vm_bi_to_float(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	vm_value v = args[0];
	if (vm_is_num(v))
		return vm_float_new(p, vm_num(v), out);
	if (!vm_is_str(v))
		BAD("to_float");
	const char *s = vm_str_bytes(v);
	size_t len = vm_str_len(v), i = 0;
	/* strtod's extras (spaces, hex, inf, nan) are not the language's */
	if (i < len && (s[i] == '-' || s[i] == '+'))
		i++;
	if (i == len || s[i] < '0' || s[i] > '9' || strlen(s) != len)
		BAD("to_float");
	for (size_t j = i; j < len; j++)
		if (!strchr("0123456789.eE+-", s[j]))
			BAD("to_float");
	char *end;
	double d = strtod(s, &end);
	if (end != s + len || !vm_float_ok(d))
		BAD("to_float");
	*out = vm_from_float(d);
	return VM_OK;
}

static int vm_bi_trunc(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	if (vm_is_int(args[0])) {
		*out = args[0];
		return VM_OK;
	}
	if (!vm_is_float(args[0]))
		BAD("trunc");
	return vm_bi_float_int(p, vm_float(args[0]), trunc, out);
}

static int vm_bi_round(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	if (vm_is_int(args[0])) {
		*out = args[0];
		return VM_OK;
	}
	if (!vm_is_float(args[0]))
		BAD("round");
	return vm_bi_float_int(p, vm_float(args[0]), round, out);
}

static int vm_bi_abs(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	vm_value v = args[0];
	if (vm_is_float(v))
		return vm_float_new(p, fabs(vm_float(v)), out);
	if (!vm_is_int(v))
		BAD("abs");
	int64_t i = vm_int(v);
	if (i == INT64_MIN)
		return vm_raise_atom(p, VM_A_OVERFLOW);
	return vm_int_new(p, i < 0 ? -i : i, out);
}

static int vm_bi_min(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	*out = vm_compare(p->vm, args[1], args[0]) < 0 ? args[1] : args[0];
	return VM_OK;
}

static int vm_bi_max(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	*out = vm_compare(p->vm, args[1], args[0]) > 0 ? args[1] : args[0];
	return VM_OK;
}

static int vm_bi_sqrt(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	if (!vm_is_num(args[0]))
		BAD("sqrt");
	return vm_float_new(p, sqrt(vm_num(args[0])), out); /* negative: NaN, :badarith */
}

void vm_rand_seed(vm_proc *p, uint64_t seed)
{
	p->rand[0] = weft__mix64(seed);
	p->rand[1] = weft__mix64(p->rand[0]);
	if ((p->rand[0] | p->rand[1]) == 0)
		p->rand[1] = 1;
}

static inline uint64_t vm_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t vm_rand_next(vm_proc *p)
{
	if ((p->rand[0] | p->rand[1]) == 0)
		vm_rand_seed(p, p->vm->seed);
	uint64_t s0 = p->rand[0], s1 = p->rand[1];
	uint64_t r = vm_rotl(s0 + s1, 17) + s0;
	s1 ^= s0;
	p->rand[0] = vm_rotl(s0, 49) ^ s1 ^ (s1 << 21);
	p->rand[1] = vm_rotl(s1, 28);
	return r;
}

static int vm_bi_random(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	INT_ARG(n, args[0], 1, INT64_MAX, "random");
	/* Rejecting the first 2^64 mod n draws leaves a multiple of n. */
	uint64_t un = (uint64_t)n, floor = (0 - un) % un, r;
	do
		r = vm_rand_next(p);
	while (r < floor);
	return vm_int_new(p, (int64_t)(r % un), out);
}

static int vm_bi_random_float(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)args;
	(void)nargs;
	*out = vm_from_float((double)(vm_rand_next(p) >> 11) * 0x1p-53);
	return VM_OK;
}

static int vm_bi_seed(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	INT_ARG(n, args[0], INT64_MIN, INT64_MAX, "seed");
	vm_rand_seed(p, (uint64_t)n);
	*out = VM_NIL;
	return VM_OK;
}

/* ------------------------------------------------------------ collections */

static int vm_bi_len(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	vm_value v = args[0];
	int64_t n;
	if (vm_is_str(v))
		n = (int64_t)vm_str_len(v);
	else if (vm_is_list(v))
		n = vm_list_len(v);
	else if (vm_is_map(v))
		n = (int64_t)vm_map_size(v);
	else if (vm_is_kind(v, VM_OBJ_TUPLE) || vm_is_kind(v, VM_OBJ_ARRAY))
		n = (int64_t)vm_obj_size(v);
	else
		n = -1;
	if (n < 0)
		BAD("len");
	return vm_int_new(p, n, out);
}

static int vm_bi_hd(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	if (!vm_is_kind(args[0], VM_OBJ_CONS))
		BAD("hd");
	*out = vm_fields(args[0])[0];
	return VM_OK;
}

static int vm_bi_tl(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	if (!vm_is_kind(args[0], VM_OBJ_CONS))
		BAD("tl");
	*out = vm_fields(args[0])[1];
	return VM_OK;
}

static int vm_bi_reverse(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	int64_t n = vm_list_len(args[0]);
	if (n < 0)
		BAD("reverse");
	if (vm_reserve(p, 3 * (size_t)n))
		return VM_RAISE;
	vm_value r = VM_EMPTY;
	for (vm_value l = args[0]; l != VM_EMPTY; l = vm_fields(l)[1]) {
		vm_header *c = vm_obj_take(p, VM_OBJ_CONS, 2);
		c[1] = vm_fields(l)[0];
		c[2] = r;
		r = vm_from_obj(c);
	}
	*out = r;
	return VM_OK;
}

static int vm_bi_append(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	if (vm_list_len(args[0]) < 0)
		BAD("append");
	/* [x] is built as the tail; the list is then copied in front of it */
	if (vm_reserve(p, 3))
		return VM_RAISE;
	vm_header *c = vm_obj_take(p, VM_OBJ_CONS, 2);
	c[1] = args[1];
	c[2] = VM_EMPTY;
	assert(p->ntmp < VM_TMP_ROOTS);
	p->tmp[p->ntmp++] = vm_from_obj(c);
	int r = vm_concat(p, &args[0], &p->tmp[p->ntmp - 1], out);
	p->ntmp--;
	return r;
}

static int vm_bi_concat(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	if (vm_list_len(args[0]) < 0 || !vm_is_list(args[1]))
		BAD("concat");
	return vm_concat(p, &args[0], &args[1], out);
}

/* Stable merge sort of v[0, n) by the total order; tmp: n more slots. */
static void vm_merge_sort(vm_state *vm, vm_value *v, vm_value *tmp, size_t n)
{
	for (size_t w = 1; w < n; w *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * w) {
			size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
			size_t i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				tmp[k++] = vm_compare(vm, v[j], v[i]) < 0 ? v[j++] : v[i++];
			while (i < mid)
				tmp[k++] = v[i++];
			while (j < hi)
				tmp[k++] = v[j++];
		}
		memcpy(v, tmp, n * sizeof *v);
	}
}

static int vm_bi_sort(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	int64_t n = vm_list_len(args[0]);
	if (n < 0)
		BAD("sort");
	if ((size_t)n > VM_OBJ_MAX)
		return vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
	/* Room first: the elements gathered below then stay where they are. */
	if (vm_reserve(p, 3 * (size_t)n))
		return VM_RAISE;
	vm_value *v = malloc(2 * (size_t)n * sizeof *v + 1);
	if (!v)
		return vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
	size_t i = 0;
	for (vm_value l = args[0]; l != VM_EMPTY; l = vm_fields(l)[1])
		v[i++] = vm_fields(l)[0];
	vm_merge_sort(p->vm, v, v + n, (size_t)n);
	*out = vm_list_of(p, v, (size_t)n, VM_EMPTY);
	free(v);
	return VM_OK;
}

static int vm_bi_range(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	INT_ARG(a, args[0], INT64_MIN, INT64_MAX, "range");
	INT_ARG(b, args[1], INT64_MIN, INT64_MAX, "range");
	if (b <= a) {
		*out = VM_EMPTY;
		return VM_OK;
	}
	uint64_t n = (uint64_t)b - (uint64_t)a;
	if (n > VM_OBJ_MAX)
		return vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
	/* Ints outside the small range take an object each. */
	int64_t slo = a > VM_SMALL_MIN ? a : VM_SMALL_MIN, shi = b - 1 < VM_SMALL_MAX ? b - 1 : VM_SMALL_MAX;
	uint64_t nsmall = shi >= slo ? (uint64_t)(shi - slo) + 1 : 0;
	if (vm_reserve(p, 3 * n + 2 * (n - nsmall)))
		return VM_RAISE;
	vm_value l = VM_EMPTY;
	for (int64_t x = b - 1;; x--) {
		vm_value e;
		vm_int_new(p, x, &e); /* cannot fail: its room is reserved */
		vm_header *c = vm_obj_take(p, VM_OBJ_CONS, 2);
		c[1] = e;
		c[2] = l;
		l = vm_from_obj(c);
		if (x == a)
			break;
	}
	*out = l;
	return VM_OK;
}

static int vm_bi_keys(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	if (!vm_is_map(args[0]))
		BAD("keys");
	return vm_map_keys(p, &args[0], out);
}

static int vm_bi_values(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	if (!vm_is_map(args[0]))
		BAD("values");
	return vm_map_values(p, &args[0], out);
}

static int vm_bi_has_key(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	if (!vm_is_map(args[0]))
		BAD("has_key");
	vm_value v;
	*out = vm_bool(vm_map_get(p->vm, args[0], args[1], &v));
	return VM_OK;
}

static int vm_bi_get(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	if (!vm_is_map(args[0]))
		BAD("get");
	vm_value v;
	*out = vm_map_get(p->vm, args[0], args[1], &v) ? v : args[2];
	return VM_OK;
}

static int vm_bi_delete(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	if (!vm_is_map(args[0]))
		BAD("delete");
	return vm_map_delete(p, &args[0], &args[1], out);
}

static int vm_bi_array(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	INT_ARG(n, args[0], 0, INT64_MAX, "array");
	if ((uint64_t)n > VM_OBJ_MAX)
		return vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
	if (vm_reserve(p, vm_obj_words((size_t)n)))
		return VM_RAISE;
	vm_header *a = vm_obj_take(p, VM_OBJ_ARRAY, (size_t)n);
	for (int64_t i = 1; i <= n; i++)
		a[i] = args[1];
	*out = vm_from_obj(a);
	return VM_OK;
}

static int vm_bi_array_of(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	int64_t n = vm_list_len(args[0]);
	if (n < 0)
		BAD("array_of");
	if ((uint64_t)n > VM_OBJ_MAX)
		return vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
	if (vm_reserve(p, vm_obj_words((size_t)n)))
		return VM_RAISE;
	vm_header *a = vm_obj_take(p, VM_OBJ_ARRAY, (size_t)n);
	size_t i = 1;
	for (vm_value l = args[0]; l != VM_EMPTY; l = vm_fields(l)[1])
		a[i++] = vm_fields(l)[0];
	*out = vm_from_obj(a);
	return VM_OK;
}

static int vm_bi_to_list(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	vm_value v = args[0];
	if (vm_is_map(v))
		return vm_map_to_list(p, &args[0], out);
	if (vm_is_list(v)) {
		*out = v;
		return VM_OK;
	}
	if (!vm_is_kind(v, VM_OBJ_TUPLE) && !vm_is_kind(v, VM_OBJ_ARRAY))
		BAD("to_list");
	size_t n = vm_obj_size(v);
	if (vm_reserve(p, 3 * n))
		return VM_RAISE;
	*out = vm_list_of(p, vm_fields(args[0]), n, VM_EMPTY);
	return VM_OK;
}

static int vm_bi_elem(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	if (!vm_is_kind(args[0], VM_OBJ_TUPLE))
		BAD("elem");
	INT_ARG(i, args[1], 0, (int64_t)vm_obj_size(args[0]) - 1, "elem");
	*out = vm_fields(args[0])[i];
	return VM_OK;
}

/* ------------------------------------------------------------ strings */

/* A new string of the bytes [start, start + len) of the string in *src. */
static int vm_substring(vm_proc *p, const vm_value *src, size_t start, size_t len, vm_value *out)
{
	char *d;
	vm_value s;
	if (vm_str_alloc(p, len, &s, &d))
		return VM_RAISE;
	memcpy(d, vm_str_bytes(*src) + start, len);
	*out = s;
	return VM_OK;
}

static int vm_bi_substr(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	if (!vm_is_str(args[0]))
		BAD("substr");
	int64_t slen = (int64_t)vm_str_len(args[0]);
	INT_ARG(start, args[1], 0, slen, "substr");
	INT_ARG(len, args[2], 0, slen - start, "substr");
	return vm_substring(p, &args[0], (size_t)start, (size_t)len, out);
}

/* Where sub (m bytes) first occurs in s (n bytes) from `from`, or -1. */
static int64_t vm_find(const char *s, size_t n, size_t from, const char *sub, size_t m)
{
	if (m == 0)
		return (int64_t)from;
	const char *f = memmem(s + from, n - from, sub, m);
	return f ? f - s : -1;
}

static int vm_bi_split(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	if (!vm_is_str(args[0]) || !vm_is_str(args[1]) || vm_str_len(args[1]) == 0)
		BAD("split");
	size_t n = vm_str_len(args[0]), m = vm_str_len(args[1]);
	/* Count the pieces and their words; then one reservation for all. */
	size_t parts = 0, words = 0, at = 0;
	for (;;) {
		int64_t f = vm_find(vm_str_bytes(args[0]), n, at, vm_str_bytes(args[1]), m);
		size_t end = f < 0 ? n : (size_t)f;
		parts++;
		words += 3 + vm_str_words(end - at);
		if (f < 0)
			break;
		at = end + m;
	}
	if (vm_reserve(p, words))
		return VM_RAISE;
	/* The pieces are built first to last, each consed onto a reversed
	 * list held in a root; the list is then reversed in place (its cells
	 * are new). */
	vm_value rev = VM_EMPTY;
	at = 0;
	for (size_t i = 0; i < parts; i++) {
		int64_t f = vm_find(vm_str_bytes(args[0]), n, at, vm_str_bytes(args[1]), m);
		size_t end = f < 0 ? n : (size_t)f;
		char *d;
		vm_value s;
		if (vm_str_take(p, end - at, &s, &d))
			return vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
		memcpy(d, vm_str_bytes(args[0]) + at, end - at);
		vm_header *c = vm_obj_take(p, VM_OBJ_CONS, 2);
		c[1] = s;
		c[2] = rev;
		rev = vm_from_obj(c);
		at = end + m;
	}
	vm_value l = VM_EMPTY;
	while (rev != VM_EMPTY) {
		vm_value next = vm_fields(rev)[1];
		vm_fields(rev)[1] = l;
		l = rev;
		rev = next;
	}
	*out = l;
	return VM_OK;
}

static int vm_bi_join(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	if (!vm_is_str(args[1]) || vm_list_len(args[0]) < 0)
		BAD("join");
	size_t total = 0, count = 0, m = vm_str_len(args[1]);
	for (vm_value l = args[0]; l != VM_EMPTY; l = vm_fields(l)[1]) {
		vm_value s = vm_fields(l)[0];
		if (!vm_is_str(s))
			BAD("join");
		total += vm_str_len(s) + (count++ ? m : 0);
		if (total > VM_OBJ_MAX * 8)
			return vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
	}
	char *d;
	vm_value r;
	if (vm_str_alloc(p, total, &r, &d))
		return VM_RAISE;
	size_t at = 0;
	for (vm_value l = args[0]; l != VM_EMPTY; l = vm_fields(l)[1]) {
		vm_value s = vm_fields(l)[0];
		if (l != args[0]) {
			memcpy(d + at, vm_str_bytes(args[1]), m);
			at += m;
		}
		memcpy(d + at, vm_str_bytes(s), vm_str_len(s));
		at += vm_str_len(s);
	}
	*out = r;
	return VM_OK;
}

/* Where args[1] first occurs in args[0], or -1; -2: not two strings. */
static int64_t vm_bi_find(const vm_value *args)
{
	if (!vm_is_str(args[0]) || !vm_is_str(args[1]))
		return -2;
	return vm_find(vm_str_bytes(args[0]), vm_str_len(args[0]), 0, vm_str_bytes(args[1]), vm_str_len(args[1]));
}

static int vm_bi_contains(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	int64_t f = vm_bi_find(args);
	if (f == -2)
		BAD("contains");
	*out = vm_bool(f >= 0);
	return VM_OK;
}

static int vm_bi_index_of(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	int64_t f = vm_bi_find(args);
	if (f == -2)
		BAD("index_of");
	*out = vm_from_small(f);
	return VM_OK;
}

static int vm_bi_chr(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	INT_ARG(c, args[0], 0, 255, "chr");
	char b = (char)c;
	return vm_bi_str(p, &b, 1, out);
}

static int vm_bi_to_atom(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	if (!vm_is_str(args[0]))
		BAD("to_atom");
	int64_t a = vm_atom_intern(p->vm, vm_str_bytes(args[0]), vm_str_len(args[0]));
	if (a == -EINVAL)
		BAD("to_atom");
	if (a < 0)
		return vm_raise_atom(p, VM_A_SYSTEM_LIMIT);
	*out = vm_from_atom((uint32_t)a);
	return VM_OK;
}

static int vm_bi_atom_name(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	size_t len;
	const char *name = vm_is_atom(args[0]) ? vm_atom_name(p->vm, vm_atom(args[0]), &len) : NULL;
	if (!name)
		BAD("atom_name");
	return vm_bi_str(p, name, len, out); /* atom names live outside every heap */
}

/* ------------------------------------------------------------ system */

static int vm_bi_args(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)args;
	(void)nargs;
	*out = p->vm->args;
	return VM_OK;
}

static int vm_bi_raise(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	(void)out;
	return vm_raise(p, args[0]);
}

static int vm_bi_halt(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)nargs;
	INT_ARG(status, args[0], 0, 255, "halt");
	p->vm->halt_status = (int)status;
	*out = VM_NIL;
	return VM_HALT;
}

static int vm_bi_read_line(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)args;
	(void)nargs;
	char *line = NULL;
	size_t cap = 0;
	errno = 0;
	ssize_t n = getline(&line, &cap, stdin);
	if (n < 0) {
		int err = ferror(stdin) ? (errno ? errno : EIO) : 0;
		free(line);
		clearerr(stdin);
		if (err) /* a read error (a directory, a closed descriptor) is not the end */
			return vm_raise_io(p, err);
		*out = VM_NIL;
		return VM_OK;
	}
	if (n > 0 && line[n - 1] == '\n')
		n--;
	int r = vm_bi_str(p, line, (size_t)n, out);
	free(line);
	return r;
}

/* weft's clock: monotonic, and a simulation's virtual time under one. */
static int64_t vm_now_ns(void)
{
	return (int64_t)weft_now();
}

static int vm_bi_now_ms(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)args;
	(void)nargs;
	return vm_int_new(p, vm_now_ns() / 1000000, out);
}

static int vm_bi_now_us(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out)
{
	(void)args;
	(void)nargs;
	return vm_int_new(p, vm_now_ns() / 1000, out);
}

/* ------------------------------------------------------------ the table */

/* Sorted by name (vm_builtin_find searches it by halves). */
static const vm_builtin vm_builtins[] = {
	{"abs", vm_bi_abs, 1, 1},
	{"append", vm_bi_append, 2, 2},
	{"args", vm_bi_args, 0, 0},
	{"array", vm_bi_array, 2, 2},
	{"array_of", vm_bi_array_of, 1, 1},
	{"atom_name", vm_bi_atom_name, 1, 1},
	{"chr", vm_bi_chr, 1, 1},
	{"concat", vm_bi_concat, 2, 2},
	{"contains", vm_bi_contains, 2, 2},
	{"delete", vm_bi_delete, 2, 2},
	{"elem", vm_bi_elem, 2, 2},
	{"format_float", vm_bi_format_float, 2, 2},
	{"get", vm_bi_get, 3, 3},
	{"halt", vm_bi_halt, 1, 1},
	{"has_key", vm_bi_has_key, 2, 2},
	{"hd", vm_bi_hd, 1, 1},
	{"index_of", vm_bi_index_of, 2, 2},
	{"inspect", vm_bi_inspect, 1, 1},
	{"join", vm_bi_join, 2, 2},
	{"keys", vm_bi_keys, 1, 1},
	{"len", vm_bi_len, 1, 1},
	{"max", vm_bi_max, 2, 2},
	{"min", vm_bi_min, 2, 2},
	{"now_ms", vm_bi_now_ms, 0, 0},
	{"now_us", vm_bi_now_us, 0, 0},
	{"print", vm_bi_print, 0, -1},
	{"raise", vm_bi_raise, 1, 1},
	{"random", vm_bi_random, 1, 1},
	{"random_float", vm_bi_random_float, 0, 0},
	{"range", vm_bi_range, 2, 2},
	{"read_line", vm_bi_read_line, 0, 0},
	{"reverse", vm_bi_reverse, 1, 1},
	{"round", vm_bi_round, 1, 1},
	{"seed", vm_bi_seed, 1, 1},
	{"sort", vm_bi_sort, 1, 1},
	{"split", vm_bi_split, 2, 2},
	{"sqrt", vm_bi_sqrt, 1, 1},
	{"substr", vm_bi_substr, 3, 3},
	{"tl", vm_bi_tl, 1, 1},
	{"to_atom", vm_bi_to_atom, 1, 1},
	{"to_float", vm_bi_to_float, 1, 1},
	{"to_int", vm_bi_to_int, 1, 1},
	{"to_list", vm_bi_to_list, 1, 1},
	{"to_string", vm_bi_to_string, 1, 1},
	{"trunc", vm_bi_trunc, 1, 1},
	{"values", vm_bi_values, 1, 1},
};

unsigned vm_builtin_index(const vm_builtin *b)
{
	assert(b >= vm_builtins && b < vm_builtins + sizeof vm_builtins / sizeof vm_builtins[0]);
	return (unsigned)(b - vm_builtins);
}

const vm_builtin *vm_builtin_at(unsigned i)
{
	return i < sizeof vm_builtins / sizeof vm_builtins[0] ? &vm_builtins[i] : NULL;
}

const vm_builtin *vm_builtin_find(const char *name, size_t len)
{
	if (!name)
		return NULL;
	size_t lo = 0, hi = sizeof vm_builtins / sizeof vm_builtins[0];
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const char *n = vm_builtins[mid].name;
		size_t nl = strlen(n);
		int c = memcmp(name, n, len < nl ? len : nl);
		if (c == 0)
			c = len < nl ? -1 : len > nl;
		if (c == 0)
			return &vm_builtins[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}
