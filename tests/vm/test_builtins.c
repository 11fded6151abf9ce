/* test_builtins.c - every built-in of builtins.c: its happy path and its
 * bad input ((:badarg, :name), :system_limit for huge sizes), with
 * collections forced between calls. */
#include "rt_fixture.h"

#include <unistd.h>

/* name(R(a0), ...) with n arguments taken from registers [a0, a0 + n);
 * the result in register 40. */
static int call(rt *t, const char *name, int a0, int n)
{
	const vm_builtin *b = vm_builtin_find(name, strlen(name));
	assert_non_null(b);
	assert_true(n >= b->min_args && (b->max_args < 0 || n <= b->max_args));
	R(40) = VM_NIL;
	return b->fn(&t->p, &R(a0), (uint32_t)n, &R(40));
}

/* The call raises (:badarg, :name). */
static void bad(rt *t, const char *name, int a0, int n)
{
	assert_int_equal(call(t, name, a0, n), VM_RAISE);
	assert_int_equal(rt_raised_kind(t), VM_A_BADARG);
	assert_true(rt_raised_detail(t) == rt_atom(t, name));
}

/* The call succeeds and inspect of its result is text. */
#define ok(t, name, a0, n, text)                                                                                       \
	do {                                                                                                           \
		assert_int_equal(call(t, name, a0, n), VM_OK);                                                         \
		assert_inspect(t, R(40), text);                                                                        \
		assert_int_equal(vm_gc(&(t)->p, 0), 0);                                                                \
	} while (0)

static void raises(rt *t, const char *name, int a0, int n, uint32_t kind)
{
	assert_int_equal(call(t, name, a0, n), VM_RAISE);
	assert_int_equal(rt_raised_kind(t), kind);
}

/* The list [ints...] into register r. */
static void ints(rt *t, int r, int n, const int64_t *v)
{
	for (int i = 0; i < n; i++)
		R(20 + i) = rt_int(t, v[i]);
	rt_list(t, r, 20, n);
}

static void test_table(void **state)
{
	(void)state;
	assert_null(vm_builtin_find("nope", 4));
	assert_null(vm_builtin_find("len", 2));
	assert_null(vm_builtin_find("lenx", 4));
	assert_null(vm_builtin_find(NULL, 0));
	assert_non_null(vm_builtin_find("abs", 3));
	assert_non_null(vm_builtin_find("values", 6));
	assert_null(vm_builtin_find("map", 3)); /* written in the language */
	const vm_builtin *p = vm_builtin_find("print", 5);
	assert_int_equal(p->min_args, 0);
	assert_int_equal(p->max_args, -1);
}

static void test_output(void **state)
{
	rt *t = *state;
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	t->vm.out_fd = fds[1];
	rt_str(t, 0, "sum:");
	R(1) = vm_from_small(285);
	rt_str(t, 2, "q\"");
	assert_int_equal(vm_tuple_new(&t->p, 2, &R(3)), VM_OK);
	vm_fields(R(3))[0] = R(2);
	ok(t, "print", 0, 4, "nil");
	ok(t, "print", 0, 0, "nil");
	char buf[128] = {0};
	ssize_t n = read(fds[0], buf, sizeof buf - 1);
	assert_true(n > 0);
	assert_string_equal(buf, "sum: 285 q\" (\"q\\\"\", nil)\n\n");
	close(fds[0]);
	close(fds[1]);
	ok(t, "inspect", 2, 1, "\"\\\"q\\\\\\\"\\\"\"");
	ok(t, "to_string", 2, 1, "\"q\\\"\"");
	ok(t, "to_string", 1, 1, "\"285\"");
	R(5) = vm_from_float(3.14159);
	R(6) = vm_from_small(2);
	ok(t, "format_float", 5, 2, "\"3.14\"");
	R(6) = vm_from_small(0);
	ok(t, "format_float", 5, 2, "\"3\"");
	R(5) = vm_from_small(2);
	R(6) = vm_from_small(3);
	ok(t, "format_float", 5, 2, "\"2.000\"");
	R(6) = vm_from_small(-1);
	bad(t, "format_float", 5, 2);
	R(5) = VM_NIL;
	R(6) = vm_from_small(1);
	bad(t, "format_float", 5, 2);
}

static void test_numbers(void **state)
{
	rt *t = *state;
	R(0) = vm_from_float(-2.7);
	ok(t, "to_int", 0, 1, "-2");
	ok(t, "trunc", 0, 1, "-2");
	ok(t, "round", 0, 1, "-3");
	ok(t, "abs", 0, 1, "2.7");
	R(0) = vm_from_float(2.5);
	ok(t, "round", 0, 1, "3");
	R(0) = vm_from_float(-2.5);
	ok(t, "round", 0, 1, "-3");
	R(0) = vm_from_float(1e19);
	raises(t, "to_int", 0, 1, VM_A_OVERFLOW);
	raises(t, "round", 0, 1, VM_A_OVERFLOW);
	rt_str(t, 0, "-9223372036854775808");
	ok(t, "to_int", 0, 1, "-9223372036854775808");
	rt_str(t, 0, "9223372036854775808");
	raises(t, "to_int", 0, 1, VM_A_OVERFLOW);
	rt_str(t, 0, "+42");
	ok(t, "to_int", 0, 1, "42");
	static const char *junk[] = {"", "-", "12a", " 1", "1.5", "0x10"};
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
		rt_str(t, 0, junk[i]);
		bad(t, "to_int", 0, 1);
	}
	R(0) = VM_NIL;
	bad(t, "to_int", 0, 1);
	bad(t, "trunc", 0, 1);
	bad(t, "round", 0, 1);
	bad(t, "abs", 0, 1);
	bad(t, "sqrt", 0, 1);
	bad(t, "to_float", 0, 1);
	rt_str(t, 0, "1.5e3");
	ok(t, "to_float", 0, 1, "1500.0");
	rt_str(t, 0, "-7");
	ok(t, "to_float", 0, 1, "-7.0");
	static const char *fjunk[] = {"", "inf", "nan", " 1.0", "1.0x", "1e999", ".5"};
	for (size_t i = 0; i < sizeof fjunk / sizeof fjunk[0]; i++) {
		rt_str(t, 0, fjunk[i]);
		bad(t, "to_float", 0, 1);
	}
	R(0) = rt_int(t, INT64_MIN);
	raises(t, "abs", 0, 1, VM_A_OVERFLOW);
	R(0) = rt_int(t, -5);
	ok(t, "abs", 0, 1, "5");
	ok(t, "to_float", 0, 1, "-5.0");
	ok(t, "trunc", 0, 1, "-5");
	R(0) = vm_from_small(16);
	ok(t, "sqrt", 0, 1, "4.0");
	R(0) = vm_from_float(-1.0);
	raises(t, "sqrt", 0, 1, VM_A_BADARITH);
	R(0) = vm_from_small(1);
	R(1) = vm_from_float(1.0);
	ok(t, "min", 0, 2, "1");
	ok(t, "max", 0, 2, "1.0");
	rt_str(t, 1, "a");
	ok(t, "min", 0, 2, "1");
	ok(t, "max", 0, 2, "\"a\"");
}

static void test_random(void **state)
{
	rt *t = *state;
	R(0) = vm_from_small(10);
	int64_t first[20];
	int seen[10] = {0};
	for (int i = 0; i < 20; i++) {
		assert_int_equal(call(t, "random", 0, 1), VM_OK);
		first[i] = vm_small(R(40));
		assert_true(first[i] >= 0 && first[i] < 10);
		seen[first[i]]++;
	}
	/* seed(n) replays the sequence */
	R(1) = vm_from_small(99);
	ok(t, "seed", 1, 1, "nil");
	int64_t a[20];
	for (int i = 0; i < 20; i++) {
		assert_int_equal(call(t, "random", 0, 1), VM_OK);
		a[i] = vm_small(R(40));
	}
	ok(t, "seed", 1, 1, "nil");
	for (int i = 0; i < 20; i++) {
		assert_int_equal(call(t, "random", 0, 1), VM_OK);
		assert_true(vm_small(R(40)) == a[i]);
	}
	/* an unseeded process starts from the program seed */
	t->p.rand[0] = t->p.rand[1] = 0;
	for (int i = 0; i < 20; i++) {
		assert_int_equal(call(t, "random", 0, 1), VM_OK);
		assert_true(vm_small(R(40)) == first[i]);
	}
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(call(t, "random_float", 0, 0), VM_OK);
		assert_true(vm_is_float(R(40)) && vm_float(R(40)) >= 0 && vm_float(R(40)) < 1);
	}
	R(0) = rt_int(t, INT64_MAX);
	assert_int_equal(call(t, "random", 0, 1), VM_OK);
	assert_true(vm_is_int(R(40)) && vm_int(R(40)) >= 0);
	R(0) = vm_from_small(0);
	bad(t, "random", 0, 1);
	R(0) = vm_from_float(1.0);
	bad(t, "random", 0, 1);
	bad(t, "seed", 0, 1);
}

static void test_lists(void **state)
{
	rt *t = *state;
	ints(t, 0, 4, (int64_t[]){3, 1, 2, 1});
	ok(t, "len", 0, 1, "4");
	ok(t, "hd", 0, 1, "3");
	ok(t, "tl", 0, 1, "[1, 2, 1]");
	ok(t, "reverse", 0, 1, "[1, 2, 1, 3]");
	R(1) = vm_from_small(9);
	ok(t, "append", 0, 2, "[3, 1, 2, 1, 9]");
	ints(t, 1, 2, (int64_t[]){7, 8});
	ok(t, "concat", 0, 2, "[3, 1, 2, 1, 7, 8]");
	ok(t, "sort", 0, 1, "[1, 1, 2, 3]");
	/* stable, and in the total order across kinds */
	R(20) = vm_from_float(1.0);
	R(21) = rt_atom(t, "z");
	R(22) = vm_from_small(1);
	rt_str(t, 23, "s");
	R(24) = VM_NIL;
	R(25) = vm_from_float(-0.0);
	R(26) = vm_from_float(0.0);
	rt_list(t, 2, 20, 7);
	ok(t, "sort", 2, 1, "[-0.0, 0.0, 1, 1.0, nil, :z, \"s\"]");
	R(3) = VM_EMPTY;
	ok(t, "sort", 3, 1, "[]");
	ok(t, "reverse", 3, 1, "[]");
	ok(t, "len", 3, 1, "0");
	bad(t, "hd", 3, 1);
	bad(t, "tl", 3, 1);
	R(3) = VM_NIL;
	for (const char *const *n = (const char *const[]){"len", "reverse", "sort", "to_list", "array_of", NULL}; *n;
	     n++)
		bad(t, *n, 3, 1);
	R(4) = VM_NIL;
	bad(t, "append", 3, 2);
	bad(t, "concat", 3, 2);
	R(3) = VM_EMPTY;
	bad(t, "concat", 3, 2);
	/* range */
	R(5) = vm_from_small(2);
	R(6) = vm_from_small(5);
	ok(t, "range", 5, 2, "[2, 3, 4]");
	R(5) = vm_from_small(5);
	ok(t, "range", 5, 2, "[]");
	R(5) = rt_int(t, VM_SMALL_MAX - 1);
	R(6) = rt_int(t, VM_SMALL_MAX + 2);
	ok(t, "range", 5, 2, "[140737488355326, 140737488355327, 140737488355328]");
	R(5) = rt_int(t, INT64_MAX - 1);
	R(6) = rt_int(t, INT64_MAX);
	ok(t, "range", 5, 2, "[9223372036854775806]");
	R(5) = vm_from_small(0);
	R(6) = rt_int(t, INT64_C(1) << 40);
	raises(t, "range", 5, 2, VM_A_SYSTEM_LIMIT);
	R(5) = rt_int(t, INT64_MIN);
	R(6) = rt_int(t, INT64_MAX);
	raises(t, "range", 5, 2, VM_A_SYSTEM_LIMIT);
	R(6) = vm_from_float(2.0);
	bad(t, "range", 5, 2);
	/* a long list: no recursion */
	R(5) = vm_from_small(0);
	R(6) = vm_from_small(100000);
	assert_int_equal(call(t, "range", 5, 2), VM_OK);
	R(7) = R(40);
	ok(t, "len", 7, 1, "100000");
	assert_int_equal(call(t, "reverse", 7, 1), VM_OK);
	R(8) = R(40);
	assert_int_equal(call(t, "sort", 8, 1), VM_OK);
	assert_true(vm_equal(R(40), R(7)));
	assert_int_equal(vm_compare(&t->vm, R(40), R(7)), 0);
}

static void test_maps(void **state)
{
	rt *t = *state;
	R(0) = vm_map_empty;
	R(1) = rt_atom(t, "a");
	R(2) = vm_from_small(1);
	assert_int_equal(vm_map_put(&t->p, &R(0), &R(1), &R(2), &R(0)), VM_OK);
	rt_str(t, 3, "b");
	assert_int_equal(vm_map_put(&t->p, &R(0), &R(3), &R(3), &R(0)), VM_OK);
	ok(t, "len", 0, 1, "2");
	ok(t, "keys", 0, 1, "[:a, \"b\"]");
	ok(t, "values", 0, 1, "[1, \"b\"]");
	ok(t, "to_list", 0, 1, "[(:a, 1), (\"b\", \"b\")]");
	ok(t, "has_key", 0, 2, "true");
	R(4) = VM_NIL;
	ok(t, "get", 0, 3, "1");
	ok(t, "delete", 0, 2, "%{\"b\" => \"b\"}");
	R(5) = R(0);
	R(6) = rt_atom(t, "zz");
	R(7) = vm_from_small(0);
	ok(t, "has_key", 5, 2, "false");
	ok(t, "get", 5, 3, "0");
	ok(t, "delete", 5, 2, "%{:a => 1, \"b\" => \"b\"}");
	R(5) = VM_EMPTY;
	for (const char *const *n = (const char *const[]){"keys", "values", NULL}; *n; n++)
		bad(t, *n, 5, 1);
	for (const char *const *n = (const char *const[]){"has_key", "delete", NULL}; *n; n++)
		bad(t, *n, 5, 2);
	bad(t, "get", 5, 3);
}

static void test_arrays_and_tuples(void **state)
{
	rt *t = *state;
	R(0) = vm_from_small(3);
	R(1) = VM_TRUE;
	ok(t, "array", 0, 2, "#array<[true, true, true]>");
	R(2) = R(40);
	ok(t, "len", 2, 1, "3");
	ok(t, "to_list", 2, 1, "[true, true, true]");
	R(0) = vm_from_small(0);
	ok(t, "array", 0, 2, "#array<[]>");
	R(0) = rt_int(t, 1000000000000);
	raises(t, "array", 0, 2, VM_A_SYSTEM_LIMIT);
	R(0) = vm_from_small(-1);
	bad(t, "array", 0, 2);
	ints(t, 3, 2, (int64_t[]){4, 5});
	ok(t, "array_of", 3, 1, "#array<[4, 5]>");
	R(3) = VM_EMPTY;
	ok(t, "array_of", 3, 1, "#array<[]>");
	assert_int_equal(vm_tuple_new(&t->p, 2, &R(4)), VM_OK);
	vm_fields(R(4))[0] = vm_from_small(7);
	ok(t, "to_list", 4, 1, "[7, nil]");
	ok(t, "len", 4, 1, "2");
	R(5) = vm_from_small(0);
	ok(t, "elem", 4, 2, "7");
	R(5) = vm_from_small(2);
	bad(t, "elem", 4, 2);
	R(5) = vm_from_small(-1);
	bad(t, "elem", 4, 2);
	R(5) = vm_from_small(0);
	bad(t, "elem", 2, 2);
	ok(t, "to_list", 3, 1, "[]");
	R(6) = vm_from_small(1);
	bad(t, "to_list", 6, 1);
}

static void test_strings(void **state)
{
	rt *t = *state;
	rt_str(t, 0, "hello, world");
	R(1) = vm_from_small(7);
	R(2) = vm_from_small(5);
	ok(t, "substr", 0, 3, "\"world\"");
	ok(t, "len", 0, 1, "12");
	R(2) = vm_from_small(6);
	bad(t, "substr", 0, 3);
	R(1) = vm_from_small(12);
	R(2) = vm_from_small(0);
	ok(t, "substr", 0, 3, "\"\"");
	R(1) = vm_from_small(-1);
	bad(t, "substr", 0, 3);
	rt_str(t, 1, ", ");
	ok(t, "split", 0, 2, "[\"hello\", \"world\"]");
	ok(t, "contains", 0, 2, "true");
	ok(t, "index_of", 0, 2, "5");
	rt_str(t, 1, "xyz");
	ok(t, "contains", 0, 2, "false");
	ok(t, "index_of", 0, 2, "-1");
	rt_str(t, 1, "");
	bad(t, "split", 0, 2);
	ok(t, "contains", 0, 2, "true");
	ok(t, "index_of", 0, 2, "0");
	rt_str(t, 2, ",a,,b,");
	rt_str(t, 3, ",");
	ok(t, "split", 2, 2, "[\"\", \"a\", \"\", \"b\", \"\"]");
	R(4) = R(40);
	R(5) = R(4);
	R(6) = R(3);
	ok(t, "join", 5, 2, "\",a,,b,\"");
	R(5) = VM_EMPTY;
	ok(t, "join", 5, 2, "\"\"");
	ints(t, 5, 1, (int64_t[]){1});
	bad(t, "join", 5, 2);
	/* big pieces: joined past VM_BIGSTR_MIN, split back */
	char big[700];
	memset(big, 'x', sizeof big);
	big[350] = '|';
	assert_int_equal(vm_str_new(&t->p, big, sizeof big, &R(7)), VM_OK);
	rt_str(t, 8, "|");
	assert_int_equal(call(t, "split", 7, 2), VM_OK);
	R(9) = R(40);
	ok(t, "len", 9, 1, "2");
	assert_int_equal(vm_str_len(vm_fields(R(9))[0]), 350);
	assert_true(vm_is_kind(vm_fields(R(9))[0], VM_OBJ_BIGSTR));
	R(10) = R(9);
	R(11) = R(8);
	assert_int_equal(call(t, "join", 10, 2), VM_OK);
	assert_true(vm_equal(R(40), R(7)));
	R(12) = vm_from_small(65);
	ok(t, "chr", 12, 1, "\"A\"");
	R(12) = vm_from_small(256);
	bad(t, "chr", 12, 1);
	rt_str(t, 13, "ok");
	ok(t, "to_atom", 13, 1, ":ok");
	assert_true(R(40) == vm_from_atom(VM_A_OK));
	R(14) = R(40);
	ok(t, "atom_name", 14, 1, "\"ok\"");
	bad(t, "atom_name", 13, 1);
	R(14) = VM_TRUE;
	bad(t, "atom_name", 14, 1);
	assert_int_equal(vm_str_new(&t->p, big, 300, &R(15)), VM_OK);
	bad(t, "to_atom", 15, 1);
	R(16) = VM_NIL;
	for (const char *const *n = (const char *const[]){"split", "contains", "index_of", NULL}; *n; n++)
		bad(t, *n, 15, 2);
	R(17) = vm_from_small(0);
	bad(t, "substr", 16, 3);
}

static void test_system(void **state)
{
	rt *t = *state;
	ok(t, "args", 0, 0, "[]");
	R(0) = rt_atom(t, "boom");
	assert_int_equal(call(t, "raise", 0, 1), VM_RAISE);
	assert_true(t->p.raised == R(0));
	R(0) = vm_from_small(3);
	assert_int_equal(call(t, "halt", 0, 1), VM_HALT);
	assert_int_equal(t->vm.halt_status, 3);
	R(0) = vm_from_small(256);
	bad(t, "halt", 0, 1);
	R(0) = VM_NIL;
	bad(t, "halt", 0, 1);
	assert_int_equal(call(t, "now_ms", 0, 0), VM_OK);
	int64_t ms = vm_int(R(40));
	assert_int_equal(call(t, "now_us", 0, 0), VM_OK);
	int64_t us = vm_int(R(40));
	assert_true(ms > 0 && us >= ms * 1000);
	assert_int_equal(call(t, "now_ms", 0, 0), VM_OK);
	assert_true(vm_int(R(40)) >= ms);
}

static void test_read_line(void **state)
{
	rt *t = *state;
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "one\ntwo", 7), 7);
	close(fds[1]);
	int saved = dup(0);
	assert_int_equal(dup2(fds[0], 0), 0);
	close(fds[0]);
	ok(t, "read_line", 0, 0, "\"one\"");
	ok(t, "read_line", 0, 0, "\"two\"");
	ok(t, "read_line", 0, 0, "nil");
	dup2(saved, 0);
	close(saved);
	clearerr(stdin);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test_setup_teardown(test_output, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_numbers, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_random, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_lists, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_maps, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_arrays_and_tuples, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_strings, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_system, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_read_line, rt_setup, rt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
