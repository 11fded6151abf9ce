/* test_obj.c - values: arithmetic at the int64 and small-int bounds,
 * equality and the total order, concatenation, indexing, inspect of every
 * kind, copying between heaps, values surviving collections, and the atom
 * table under concurrent interning. */
#include "rt_fixture.h"

#include <pthread.h>

#include "vm/ast.h"

/* a op b with ints; VM_OK and the result, or VM_RAISE and the kind. */
static int arith_ii(rt *t, unsigned op, int64_t a, int64_t b, vm_value *out)
{
	R(0) = rt_int(t, a);
	R(1) = rt_int(t, b);
	int r = vm_arith(&t->p, op, &R(0), &R(1), &R(2));
	*out = R(2);
	return r;
}

static void expect_int(rt *t, unsigned op, int64_t a, int64_t b, int64_t want)
{
	vm_value v;
	assert_int_equal(arith_ii(t, op, a, b, &v), VM_OK);
	assert_true(vm_is_int(v));
	assert_true(vm_int(v) == want);
	/* one representation per integer: small exactly when it fits */
	assert_true(vm_is_small(v) == vm_fits_small(want));
}

static void expect_raise(rt *t, unsigned op, int64_t a, int64_t b, uint32_t kind)
{
	vm_value v;
	assert_int_equal(arith_ii(t, op, a, b, &v), VM_RAISE);
	assert_int_equal(rt_raised_kind(t), kind);
}

static void test_int_arith_bounds(void **state)
{
	rt *t = *state;
	expect_int(t, VM_OP_ADD, INT64_MAX - 1, 1, INT64_MAX);
	expect_raise(t, VM_OP_ADD, INT64_MAX, 1, VM_A_OVERFLOW);
	expect_raise(t, VM_OP_ADD, INT64_MIN, -1, VM_A_OVERFLOW);
	expect_raise(t, VM_OP_SUB, INT64_MIN, 1, VM_A_OVERFLOW);
	expect_raise(t, VM_OP_SUB, 0, INT64_MIN, VM_A_OVERFLOW);
	expect_int(t, VM_OP_SUB, -1, INT64_MAX, INT64_MIN);
	expect_raise(t, VM_OP_MUL, INT64_MAX / 2 + 1, 2, VM_A_OVERFLOW);
	expect_raise(t, VM_OP_MUL, INT64_MIN, -1, VM_A_OVERFLOW);
	expect_int(t, VM_OP_MUL, INT64_MIN / 2, 2, INT64_MIN);
	/* the small/big boundary, both ways */
	expect_int(t, VM_OP_ADD, VM_SMALL_MAX, 1, VM_SMALL_MAX + 1);
	expect_int(t, VM_OP_SUB, VM_SMALL_MAX + 1, 1, VM_SMALL_MAX);
	expect_int(t, VM_OP_SUB, VM_SMALL_MIN, 1, VM_SMALL_MIN - 1);
	expect_int(t, VM_OP_ADD, VM_SMALL_MIN - 1, 1, VM_SMALL_MIN);
	expect_int(t, VM_OP_MUL, INT64_C(1) << 40, INT64_C(1) << 20, INT64_C(1) << 60);
	expect_int(t, VM_OP_DIV, INT64_C(1) << 60, INT64_C(1) << 20, INT64_C(1) << 40);
}

static void test_division_and_modulo_signs(void **state)
{
	rt *t = *state;
	expect_int(t, VM_OP_DIV, 7, 2, 3);
	expect_int(t, VM_OP_DIV, -7, 2, -3);
	expect_int(t, VM_OP_DIV, 7, -2, -3);
	expect_int(t, VM_OP_DIV, -7, -2, 3);
	expect_int(t, VM_OP_MOD, 7, 2, 1);
	expect_int(t, VM_OP_MOD, -7, 2, -1);
	expect_int(t, VM_OP_MOD, 7, -2, 1);
	expect_int(t, VM_OP_MOD, -7, -2, -1);
	expect_raise(t, VM_OP_DIV, 1, 0, VM_A_BADARITH);
	expect_raise(t, VM_OP_MOD, 1, 0, VM_A_BADARITH);
	expect_raise(t, VM_OP_DIV, INT64_MIN, -1, VM_A_OVERFLOW);
	expect_int(t, VM_OP_MOD, INT64_MIN, -1, 0);
	expect_int(t, VM_OP_DIV, INT64_MIN, 1, INT64_MIN);
}

static void test_bitwise_and_shifts(void **state)
{
	rt *t = *state;
	expect_int(t, VM_OP_BOR, 12, 3, 15);
	expect_int(t, VM_OP_BAND, 12, 6, 4);
	expect_int(t, VM_OP_BXOR, 12, 6, 10);
	expect_int(t, VM_OP_SHL, 1, 62, INT64_C(1) << 62);
	expect_raise(t, VM_OP_SHL, 1, 63, VM_A_OVERFLOW);
	expect_int(t, VM_OP_SHL, -1, 63, INT64_MIN);
	expect_raise(t, VM_OP_SHL, 3, 62, VM_A_OVERFLOW);
	expect_int(t, VM_OP_SHL, 5, 0, 5);
	expect_raise(t, VM_OP_SHL, 1, 64, VM_A_BADARG);
	expect_raise(t, VM_OP_SHL, 1, -1, VM_A_BADARG);
	expect_raise(t, VM_OP_SHR, 1, 64, VM_A_BADARG);
	expect_int(t, VM_OP_SHR, -8, 1, -4);
	expect_int(t, VM_OP_SHR, -1, 63, -1);
	expect_int(t, VM_OP_SHR, INT64_MAX, 62, 1);
	R(0) = rt_int(t, 5);
	assert_int_equal(vm_bnot(&t->p, &R(0), &R(1)), VM_OK);
	assert_true(vm_int(R(1)) == -6);
	R(0) = vm_from_float(1.0);
	assert_int_equal(vm_bnot(&t->p, &R(0), &R(1)), VM_RAISE);
	assert_int_equal(rt_raised_kind(t), VM_A_BADARITH);
}

static void test_negate(void **state)
{
	rt *t = *state;
	R(0) = rt_int(t, INT64_MIN);
	assert_int_equal(vm_negate(&t->p, &R(0), &R(1)), VM_RAISE);
	assert_int_equal(rt_raised_kind(t), VM_A_OVERFLOW);
	R(0) = rt_int(t, VM_SMALL_MIN);
	assert_int_equal(vm_negate(&t->p, &R(0), &R(1)), VM_OK);
	assert_true(vm_int(R(1)) == -VM_SMALL_MIN && !vm_is_small(R(1)));
	R(0) = rt_int(t, INT64_MAX);
	assert_int_equal(vm_negate(&t->p, &R(0), &R(1)), VM_OK);
	assert_true(vm_int(R(1)) == -INT64_MAX);
	R(0) = vm_from_float(2.5);
	assert_int_equal(vm_negate(&t->p, &R(0), &R(1)), VM_OK);
	assert_true(vm_float(R(1)) == -2.5);
	R(0) = VM_NIL;
	assert_int_equal(vm_negate(&t->p, &R(0), &R(1)), VM_RAISE);
	assert_int_equal(rt_raised_kind(t), VM_A_BADARG);
}

static void test_float_arith(void **state)
{
	rt *t = *state;
	R(0) = rt_int(t, 1);
	R(1) = vm_from_float(0.5);
	assert_int_equal(vm_arith(&t->p, VM_OP_ADD, &R(0), &R(1), &R(2)), VM_OK);
	assert_true(vm_is_float(R(2)) && vm_float(R(2)) == 1.5);
	assert_int_equal(vm_arith(&t->p, VM_OP_DIV, &R(0), &R(1), &R(2)), VM_OK);
	assert_true(vm_float(R(2)) == 2.0);
	R(1) = vm_from_float(2.0);
	assert_int_equal(vm_arith(&t->p, VM_OP_MUL, &R(1), &R(0), &R(2)), VM_OK);
	assert_true(vm_is_float(R(2)) && vm_float(R(2)) == 2.0);
	R(1) = vm_from_float(0.0);
	assert_int_equal(vm_arith(&t->p, VM_OP_DIV, &R(0), &R(1), &R(2)), VM_RAISE);
	assert_int_equal(rt_raised_kind(t), VM_A_BADARITH);
	R(0) = vm_from_float(1e308);
	R(1) = rt_int(t, 10);
	assert_int_equal(vm_arith(&t->p, VM_OP_MUL, &R(0), &R(1), &R(2)), VM_RAISE);
	assert_int_equal(rt_raised_kind(t), VM_A_BADARITH);
	assert_int_equal(vm_arith(&t->p, VM_OP_MOD, &R(0), &R(1), &R(2)), VM_RAISE);
	assert_int_equal(rt_raised_kind(t), VM_A_BADARITH);
	assert_int_equal(vm_float_new(&t->p, 0.0 / 0.0, &R(2)), VM_RAISE);
	rt_str(t, 0, "a");
	assert_int_equal(vm_arith(&t->p, VM_OP_ADD, &R(0), &R(1), &R(2)), VM_RAISE);
	assert_int_equal(rt_raised_kind(t), VM_A_BADARG);
}

static void test_equality(void **state)
{
	rt *t = *state;
	assert_false(vm_equal(vm_from_small(1), vm_from_float(1.0)));
	assert_true(vm_equal(vm_from_float(0.0), vm_from_float(-0.0)));
	assert_true(vm_equal(rt_int(t, INT64_MAX), rt_int(t, INT64_MAX)));
	assert_false(vm_equal(rt_int(t, INT64_MAX), rt_int(t, INT64_MIN)));
	rt_str(t, 0, "abc");
	rt_str(t, 1, "abc");
	rt_str(t, 2, "abd");
	assert_true(vm_equal(R(0), R(1)));
	assert_false(vm_equal(R(0), R(2)));
	char big[300];
	memset(big, 'x', sizeof big);
	assert_int_equal(vm_str_new(&t->p, big, sizeof big, &R(3)), VM_OK);
	assert_int_equal(vm_str_new(&t->p, big, sizeof big, &R(4)), VM_OK);
	assert_true(vm_is_kind(R(3), VM_OBJ_BIGSTR));
	assert_true(vm_equal(R(3), R(4)));
	/* tuples and lists structurally, nested */
	R(5) = vm_from_small(1);
	rt_list(t, 6, 0, 3);
	rt_list(t, 7, 1, 3);
	assert_false(vm_equal(R(6), R(7)));
	rt_list(t, 8, 0, 3);
	assert_true(vm_equal(R(6), R(8)));
	assert_int_equal(vm_tuple_new(&t->p, 2, &R(9)), VM_OK);
	vm_fields(R(9))[0] = R(6);
	assert_int_equal(vm_tuple_new(&t->p, 2, &R(10)), VM_OK);
	vm_fields(R(10))[0] = R(8);
	assert_true(vm_equal(R(9), R(10)));
	vm_fields(R(10))[1] = VM_FALSE;
	assert_false(vm_equal(R(9), R(10)));
	assert_false(vm_equal(VM_EMPTY, VM_NIL));
}

/* An object of one payload word into register r. */
static void rt_obj(rt *t, int r, unsigned kind, vm_value f0)
{
	assert_int_equal(vm_reserve(&t->p, 2), VM_OK);
	vm_header *o = vm_obj_take(&t->p, kind, 1);
	o[1] = f0;
	R(r) = vm_from_obj(o);
}

/* One value of each rank, in ascending order. */
static int one_of_each(rt *t, int from)
{
	int r = from;
	R(r++) = rt_int(t, INT64_MIN);
	R(r++) = vm_from_float(-1.5);
	R(r++) = vm_from_small(-1);
	R(r++) = vm_from_float(-1.0); /* after the int equal by value */
	R(r++) = vm_from_small(0);
	R(r++) = vm_from_float(0.5);
	R(r++) = rt_int(t, (INT64_C(1) << 53) + 0);
	R(r++) = vm_from_float(0x1p53);
	R(r++) = rt_int(t, (INT64_C(1) << 53) + 1);
	R(r++) = rt_int(t, INT64_MAX);
	R(r++) = vm_from_float(1e300);
	R(r++) = VM_NIL;
	R(r++) = VM_FALSE;
	R(r++) = VM_TRUE;
	R(r++) = rt_atom(t, "a");
	R(r++) = rt_atom(t, "ab");
	R(r++) = rt_atom(t, "b");
	rt_str(t, r++, "");
	rt_str(t, r++, "a");
	rt_str(t, r++, "a\x01");
	rt_str(t, r++, "b");
	assert_int_equal(vm_tuple_new(&t->p, 0, &R(r++)), VM_OK);
	assert_int_equal(vm_tuple_new(&t->p, 1, &R(r)), VM_OK);
	vm_fields(R(r++))[0] = vm_from_small(1);
	assert_int_equal(vm_tuple_new(&t->p, 2, &R(r)), VM_OK);
	vm_fields(R(r++))[0] = vm_from_small(1);
	assert_int_equal(vm_tuple_new(&t->p, 1, &R(r)), VM_OK);
	vm_fields(R(r++))[0] = vm_from_small(2);
	R(r++) = VM_EMPTY;
	R(r) = vm_from_small(1);
	R(r + 1) = VM_EMPTY;
	assert_int_equal(vm_cons(&t->p, &R(r), &R(r + 1), &R(r)), VM_OK);
	r++;
	R(r++) = vm_map_empty;
	R(r) = vm_map_empty;
	R(r + 1) = vm_from_small(1);
	assert_int_equal(vm_map_put(&t->p, &R(r), &R(r + 1), &R(r + 1), &R(r)), VM_OK);
	r++;
	rt_obj(t, r++, VM_OBJ_ARRAY, vm_from_small(1));
	rt_obj(t, r++, VM_OBJ_CLOSURE, vm_from_native("f"));
	rt_obj(t, r++, VM_OBJ_PID, 5);
	rt_obj(t, r++, VM_OBJ_PID, 6);
	rt_obj(t, r++, VM_OBJ_REF, 1);
	return r;
}

static void test_total_order(void **state)
{
	rt *t = *state;
	int n = one_of_each(t, 0);
	for (int i = 0; i < n; i++) {
		assert_int_equal(vm_compare(&t->vm, R(i), R(i)), 0);
		for (int j = i + 1; j < n; j++) {
			if (vm_compare(&t->vm, R(i), R(j)) >= 0 || vm_compare(&t->vm, R(j), R(i)) <= 0)
				fail_msg("order broken between %d and %d", i, j);
			assert_false(vm_equal(R(i), R(j)));
		}
	}
}

static void test_order_operators(void **state)
{
	rt *t = *state;
	R(0) = vm_from_small(1);
	R(1) = vm_from_float(1.0);
	assert_int_equal(vm_order(&t->p, VM_OP_LT, R(0), R(1), &R(2)), VM_OK);
	assert_true(R(2) == VM_FALSE);
	assert_int_equal(vm_order(&t->p, VM_OP_LE, R(0), R(1), &R(2)), VM_OK);
	assert_true(R(2) == VM_TRUE);
	assert_int_equal(vm_order(&t->p, VM_OP_GE, R(1), R(0), &R(2)), VM_OK);
	assert_true(R(2) == VM_TRUE);
	R(1) = vm_from_float(1.5);
	assert_int_equal(vm_arith(&t->p, VM_OP_GT, &R(1), &R(0), &R(2)), VM_OK);
	assert_true(R(2) == VM_TRUE);
	rt_str(t, 3, "ab");
	rt_str(t, 4, "b");
	assert_int_equal(vm_order(&t->p, VM_OP_LT, R(3), R(4), &R(2)), VM_OK);
	assert_true(R(2) == VM_TRUE);
	assert_int_equal(vm_order(&t->p, VM_OP_LT, R(0), R(3), &R(2)), VM_RAISE);
	assert_int_equal(rt_raised_kind(t), VM_A_BADARG);
	assert_int_equal(vm_order(&t->p, VM_OP_LT, VM_NIL, VM_NIL, &R(2)), VM_RAISE);
	assert_int_equal(vm_arith(&t->p, VM_OP_EQ, &R(3), &R(3), &R(2)), VM_OK);
	assert_true(R(2) == VM_TRUE);
	assert_int_equal(vm_arith(&t->p, VM_OP_NE, &R(3), &R(4), &R(2)), VM_OK);
	assert_true(R(2) == VM_TRUE);
}

static void test_concat(void **state)
{
	rt *t = *state;
	char a[200], b[100];
	memset(a, 'a', sizeof a);
	memset(b, 'b', sizeof b);
	assert_int_equal(vm_str_new(&t->p, a, sizeof a, &R(0)), VM_OK);
	assert_int_equal(vm_str_new(&t->p, b, sizeof b, &R(1)), VM_OK);
	assert_true(vm_is_kind(R(0), VM_OBJ_STR));
	assert_int_equal(vm_concat(&t->p, &R(0), &R(1), &R(2)), VM_OK);
	assert_true(vm_is_kind(R(2), VM_OBJ_BIGSTR)); /* 300 bytes: off-heap */
	assert_int_equal(vm_str_len(R(2)), 300);
	assert_memory_equal(vm_str_bytes(R(2)), a, 200);
	assert_memory_equal(vm_str_bytes(R(2)) + 200, b, 100);
	assert_int_equal(vm_str_bytes(R(2))[300], 0);
	rt_str(t, 3, "x");
	assert_int_equal(vm_concat(&t->p, &R(3), &R(3), &R(3)), VM_OK);
	assert_string_equal(vm_str_bytes(R(3)), "xx");
	/* lists: the left one copied, the right one shared */
	for (int i = 0; i < 4; i++)
		R(10 + i) = vm_from_small(i);
	rt_list(t, 4, 10, 2);
	rt_list(t, 5, 12, 2);
	assert_int_equal(vm_concat(&t->p, &R(4), &R(5), &R(6)), VM_OK);
	assert_inspect(t, R(6), "[0, 1, 2, 3]");
	assert_true(vm_fields(vm_fields(R(6))[1])[1] == R(5));
	assert_inspect(t, R(4), "[0, 1]");
	R(7) = VM_EMPTY;
	assert_int_equal(vm_concat(&t->p, &R(7), &R(5), &R(8)), VM_OK);
	assert_true(R(8) == R(5));
	assert_int_equal(vm_concat(&t->p, &R(4), &R(3), &R(8)), VM_RAISE);
	assert_int_equal(rt_raised_kind(t), VM_A_BADARG);
}

static void test_index(void **state)
{
	rt *t = *state;
	for (int i = 0; i < 3; i++)
		R(10 + i) = vm_from_small(10 * i);
	rt_list(t, 0, 10, 3);
	rt_str(t, 1, "AB");
	assert_int_equal(vm_tuple_new(&t->p, 2, &R(2)), VM_OK);
	vm_fields(R(2))[1] = VM_TRUE;
	R(5) = vm_from_small(1);
	assert_int_equal(vm_index(&t->p, &R(0), &R(5), &R(6)), VM_OK);
	assert_true(R(6) == vm_from_small(10));
	assert_int_equal(vm_index(&t->p, &R(1), &R(5), &R(6)), VM_OK);
	assert_true(R(6) == vm_from_small('B'));
	assert_int_equal(vm_index(&t->p, &R(2), &R(5), &R(6)), VM_OK);
	assert_true(R(6) == VM_TRUE);
	R(5) = vm_from_small(3);
	assert_int_equal(vm_index(&t->p, &R(0), &R(5), &R(6)), VM_RAISE);
	assert_int_equal(rt_raised_kind(t), VM_A_BADARG);
	R(5) = vm_from_small(2);
	assert_int_equal(vm_index(&t->p, &R(1), &R(5), &R(6)), VM_RAISE);
	assert_int_equal(vm_index(&t->p, &R(2), &R(5), &R(6)), VM_RAISE);
	R(5) = vm_from_small(-1);
	assert_int_equal(vm_index(&t->p, &R(2), &R(5), &R(6)), VM_RAISE);
	R(5) = vm_from_float(0.0);
	assert_int_equal(vm_index(&t->p, &R(2), &R(5), &R(6)), VM_RAISE);
	R(5) = vm_from_small(0);
	assert_int_equal(vm_index(&t->p, &R(5), &R(5), &R(6)), VM_RAISE);
	/* arrays: read and set */
	rt_obj(t, 3, VM_OBJ_ARRAY, VM_NIL);
	assert_int_equal(vm_index_set(&t->p, R(3), R(5), R(1)), VM_OK);
	assert_int_equal(vm_index(&t->p, &R(3), &R(5), &R(6)), VM_OK);
	assert_true(R(6) == R(1));
	assert_int_equal(vm_index_set(&t->p, R(3), vm_from_small(1), R(1)), VM_RAISE);
	assert_int_equal(vm_index_set(&t->p, R(2), R(5), R(1)), VM_RAISE);
	/* maps: a missing key is (:badkey, k) */
	R(4) = vm_map_empty;
	assert_int_equal(vm_map_put(&t->p, &R(4), &R(1), &R(5), &R(4)), VM_OK);
	assert_int_equal(vm_index(&t->p, &R(4), &R(1), &R(6)), VM_OK);
	assert_true(R(6) == vm_from_small(0));
	assert_int_equal(vm_index(&t->p, &R(4), &R(5), &R(6)), VM_RAISE);
	assert_int_equal(rt_raised_kind(t), VM_A_BADKEY);
	assert_true(rt_raised_detail(t) == vm_from_small(0));
}

static void test_inspect(void **state)
{
	rt *t = *state;
	assert_inspect(t, vm_from_small(-42), "-42");
	assert_inspect(t, rt_int(t, INT64_MIN), "-9223372036854775808");
	assert_inspect(t, VM_NIL, "nil");
	assert_inspect(t, VM_TRUE, "true");
	assert_inspect(t, VM_FALSE, "false");
	assert_inspect(t, VM_EMPTY, "[]");
	assert_inspect(t, vm_from_atom(VM_A_OK), ":ok");
	assert_inspect(t, rt_atom(t, "hello world"), ":\"hello world\"");
	static const struct {
		double d;
		const char *text;
	} floats[] = {
		{1.0, "1.0"},
		{0.1, "0.1"},
		{-2.5, "-2.5"},
		{1e30, "1.0e30"},
		{1e-7, "1.0e-7"},
		{0.0, "0.0"},
		{-0.0, "-0.0"},
		{100.0, "100.0"},
		{0.0001, "0.0001"},
		{1.5e-5, "1.5e-5"},
		{1e15, "1000000000000000.0"},
		{1e16, "1.0e16"},
		{123456.789, "123456.789"},
		{1.0 / 3, "0.3333333333333333"},
		{5e-324, "5.0e-324"},
		{1.7976931348623157e308, "1.7976931348623157e308"},
		{0.1 + 0.2, "0.30000000000000004"},
	};
	for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++)
		assert_inspect(t, vm_from_float(floats[i].d), floats[i].text);
	rt_str(t, 0, "a\"b\\c\n\t\r\x01\x7f\xe2\x98\xba");
	assert_inspect(t, R(0), "\"a\\\"b\\\\c\\n\\t\\r\\u{1}\\u{7f}\xe2\x98\xba\"");
	assert_int_equal(vm_str_new(&t->p, "a\0b", 3, &R(0)), VM_OK);
	assert_inspect(t, R(0), "\"a\\0b\"");
	assert_int_equal(vm_tuple_new(&t->p, 0, &R(1)), VM_OK);
	assert_inspect(t, R(1), "()");
	assert_int_equal(vm_tuple_new(&t->p, 1, &R(1)), VM_OK);
	vm_fields(R(1))[0] = vm_from_small(1);
	assert_inspect(t, R(1), "(1,)");
	assert_int_equal(vm_tuple_new(&t->p, 2, &R(1)), VM_OK);
	vm_fields(R(1))[0] = vm_from_small(1);
	vm_fields(R(1))[1] = vm_from_small(2);
	assert_inspect(t, R(1), "(1, 2)");
	R(10) = vm_from_small(1);
	R(11) = vm_from_small(2);
	rt_list(t, 2, 10, 2);
	assert_inspect(t, R(2), "[1, 2]");
	R(3) = vm_map_empty;
	assert_inspect(t, R(3), "%{}");
	rt_str(t, 4, "k");
	R(5) = vm_from_atom(VM_A_OK);
	assert_int_equal(vm_map_put(&t->p, &R(3), &R(4), &R(10), &R(3)), VM_OK);
	assert_int_equal(vm_map_put(&t->p, &R(3), &R(5), &R(11), &R(3)), VM_OK);
	assert_inspect(t, R(3), "%{:ok => 2, \"k\" => 1}");
	rt_obj(t, 6, VM_OBJ_PID, 12);
	assert_inspect(t, R(6), "#pid<12>");
	rt_obj(t, 6, VM_OBJ_REF, 7);
	assert_inspect(t, R(6), "#ref<7>");
	rt_obj(t, 6, VM_OBJ_CLOSURE, vm_from_native("main"));
	assert_inspect(t, R(6), "#fn<main/2>");
	assert_int_equal(vm_reserve(&t->p, 3), VM_OK);
	vm_header *a = vm_obj_take(&t->p, VM_OBJ_ARRAY, 2);
	a[1] = R(10);
	a[2] = R(2);
	assert_inspect(t, vm_from_obj(a), "#array<[1, [1, 2]]>");
	/* an improper list, which only C code can build */
	assert_int_equal(vm_cons(&t->p, &R(10), &R(11), &R(7)), VM_OK);
	assert_inspect(t, R(7), "[1 | 2]");
	vm_buf b = {0};
	rt_str(t, 8, "raw\n");
	vm_print_value(&t->vm, &b, R(8));
	vm_print_value(&t->vm, &b, R(1));
	assert_string_equal(b.b, "raw\n(1, 2)");
	free(b.b);
}

static void test_copy_between_heaps(void **state)
{
	rt *t = *state;
	char big[400];
	memset(big, 'q', sizeof big);
	assert_int_equal(vm_str_new(&t->p, big, sizeof big, &R(0)), VM_OK);
	struct vm_bigstr *bs = (struct vm_bigstr *)(uintptr_t)vm_fields(R(0))[0];
	assert_int_equal(atomic_load(&bs->refs), 1);
	rt_str(t, 1, "small");
	R(2) = rt_int(t, INT64_MAX);
	rt_obj(t, 3, VM_OBJ_ARRAY, VM_TRUE);
	rt_obj(t, 4, VM_OBJ_CLOSURE, vm_from_native("f"));
	R(5) = vm_map_empty;
	assert_int_equal(vm_map_put(&t->p, &R(5), &R(1), &R(2), &R(5)), VM_OK);
	rt_list(t, 6, 0, 6);
	/* a second process takes a copy; the first one then goes away */
	vm_proc *q = calloc(1, sizeof *q);
	assert_int_equal(vm_proc_init(q, &t->vm), 0);
	q->stack[0] = VM_NIL;
	q->sp = 1;
	size_t words = vm_copy_size(R(6));
	assert_true(words > 0 && words != SIZE_MAX);
	assert_int_equal(vm_copy(q, R(6), &q->stack[0]), VM_OK);
	assert_true(vm_equal(q->stack[0], R(6)));
	assert_int_equal(atomic_load(&bs->refs), 2);
	vm_value arr_copy = vm_fields(vm_fields(vm_fields(vm_fields(q->stack[0])[1])[1])[1])[0];
	assert_true(vm_is_kind(arr_copy, VM_OBJ_ARRAY));
	assert_true(arr_copy != R(3)); /* arrays are copied, not shared */
	vm_proc_free(&t->p);
	assert_int_equal(vm_proc_init(&t->p, &t->vm), 0);
	for (int i = 0; i < RT_REGS; i++)
		t->p.stack[i] = VM_NIL;
	t->p.sp = RT_REGS;
	assert_int_equal(atomic_load(&bs->refs), 1);
	assert_int_equal(vm_gc(q, 0), 0);
	char want[600] = "[\"";
	memcpy(want + 2, big, sizeof big);
	strcpy(want + 2 + sizeof big,
	       "\", \"small\", 9223372036854775807, #array<[true]>, #fn<f/2>, %{\"small\" => 9223372036854775807}]");
	assert_inspect(t, q->stack[0], want);
	vm_proc_free(q);
	free(q);
}

/* Values built between collections keep their contents. */
static void test_values_survive_collections(void **state)
{
	rt *t = *state;
	R(0) = VM_EMPTY;
	R(1) = vm_map_empty;
	char text[300];
	for (int i = 0; i < 2000; i++) {
		size_t len = (size_t)(i % 3 == 0 ? 280 : 5);
		memset(text, 'a' + i % 26, len);
		snprintf(text, sizeof text, "%d", i);
		text[strlen(text)] = '-';
		assert_int_equal(vm_str_new(&t->p, text, len, &R(2)), VM_OK);
		R(3) = rt_int(t, (int64_t)i << 50);
		assert_int_equal(vm_tuple_new(&t->p, 2, &R(4)), VM_OK);
		vm_fields(R(4))[0] = R(2);
		vm_fields(R(4))[1] = R(3);
		assert_int_equal(vm_cons(&t->p, &R(4), &R(0), &R(0)), VM_OK);
		assert_int_equal(vm_map_put(&t->p, &R(1), &R(3), &R(2), &R(1)), VM_OK);
		if (i % 7 == 0)
			assert_int_equal(vm_gc(&t->p, 0), 0);
	}
	assert_true(t->p.heap.collections > 100);
	int i = 1999;
	for (vm_value l = R(0); l != VM_EMPTY; l = vm_fields(l)[1], i--) {
		vm_value e = vm_fields(l)[0];
		vm_value s = vm_fields(e)[0];
		char want[16];
		int n = snprintf(want, sizeof want, "%d-", i);
		assert_int_equal(vm_str_len(s), i % 3 == 0 ? 280 : 5);
		assert_memory_equal(vm_str_bytes(s), want, (size_t)n < vm_str_len(s) ? (size_t)n : vm_str_len(s));
		assert_true(vm_int(vm_fields(e)[1]) == (int64_t)i << 50);
		vm_value got;
		assert_true(vm_map_get(&t->vm, R(1), vm_fields(e)[1], &got));
		assert_true(vm_equal(got, s));
	}
	assert_int_equal(i, -1);
	assert_int_equal(vm_map_size(R(1)), 2000);
}

/* ------------------------------------------------------------ atoms */

static void test_atoms_fixed_and_limits(void **state)
{
	rt *t = *state;
	size_t len;
	assert_string_equal(vm_atom_name(&t->vm, VM_A_OK, &len), "ok");
	assert_int_equal(len, 2);
	assert_string_equal(vm_atom_name(&t->vm, VM_A_SYSTEM_LIMIT, NULL), "system_limit");
	assert_int_equal(vm_atom_intern(&t->vm, "badarg", 6), VM_A_BADARG);
	assert_null(vm_atom_name(&t->vm, 1u << 30, NULL));
	char name[VM_ATOM_MAX_LEN + 1];
	memset(name, 'n', sizeof name);
	assert_int_equal(vm_atom_intern(&t->vm, name, sizeof name), -EINVAL);
	int64_t a = vm_atom_intern(&t->vm, name, sizeof name - 1);
	assert_true(a >= VM_A_COUNT);
	assert_int_equal(vm_atom_intern(&t->vm, name, sizeof name - 1), a);
	assert_int_equal(vm_atom_intern(&t->vm, "", 0), vm_atom_intern(&t->vm, "", 0));
	assert_int_equal(vm_atom_intern(&t->vm, "a\0b", 3), vm_atom_intern(&t->vm, "a\0b", 3));
	assert_int_not_equal(vm_atom_intern(&t->vm, "a\0b", 3), vm_atom_intern(&t->vm, "a", 1));
}

#define ATOM_THREADS 4
#define ATOM_NAMES 3000

struct atom_worker {
	vm_state *vm;
	int seed;
	int64_t got[ATOM_NAMES];
};

/* Every thread interns the same names in its own order and reads names
 * back by index while the others intern. */
static void *atom_worker(void *arg)
{
	struct atom_worker *w = arg;
	char name[32];
	for (int k = 0; k < ATOM_NAMES; k++) {
		int i = (k * 7 + w->seed * 1013) % ATOM_NAMES;
		int n = snprintf(name, sizeof name, "atom_%d", i);
		w->got[i] = vm_atom_intern(w->vm, name, (size_t)n);
		if (w->got[i] < 0)
			return NULL;
		size_t len;
		const char *back = vm_atom_name(w->vm, (uint32_t)w->got[i], &len);
		if (!back || len != (size_t)n || memcmp(back, name, len) != 0)
			w->got[i] = -1;
	}
	return NULL;
}

static void test_atoms_concurrent(void **state)
{
	rt *t = *state;
	static struct atom_worker w[ATOM_THREADS];
	pthread_t th[ATOM_THREADS];
	for (int i = 0; i < ATOM_THREADS; i++) {
		w[i].vm = &t->vm;
		w[i].seed = i;
		assert_int_equal(pthread_create(&th[i], NULL, atom_worker, &w[i]), 0);
	}
	for (int i = 0; i < ATOM_THREADS; i++)
		pthread_join(th[i], NULL);
	/* one index per name, the same for every thread, all distinct */
	char *seen = calloc(ATOM_NAMES + VM_A_COUNT + 8, 1);
	for (int k = 0; k < ATOM_NAMES; k++) {
		for (int i = 0; i < ATOM_THREADS; i++)
			assert_true(w[i].got[k] == w[0].got[k]);
		assert_true(w[0].got[k] >= VM_A_COUNT && w[0].got[k] < VM_A_COUNT + ATOM_NAMES);
		assert_false(seen[w[0].got[k]]);
		seen[w[0].got[k]] = 1;
	}
	free(seen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_int_arith_bounds, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_division_and_modulo_signs, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_bitwise_and_shifts, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_negate, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_float_arith, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_equality, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_total_order, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_order_operators, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_concat, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_index, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_inspect, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_copy_between_heaps, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_values_survive_collections, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_atoms_fixed_and_limits, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_atoms_concurrent, rt_setup, rt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
