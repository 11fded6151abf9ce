/* test_embed.c - the embedding API (weft/vm.h): loading source with
 * errors as values, calls with terms built in C, results, raises, halt,
 * print's descriptor, and bad input. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <weft/vm.h>

static weft_vm_t *load(const char *src)
{
	weft_vm_t *vm;
	assert_int_equal(weft_vm_create(&vm, NULL), 0);
	int e = weft_vm_load_source(vm, "t.wf", src, strlen(src));
	if (e)
		weft_vm_print_errors(vm, stderr);
	assert_int_equal(e, 0);
	return vm;
}

static weft_vm_term_t tint(int64_t i)
{
	return (weft_vm_term_t){.kind = WEFT_VM_INT, .i = i};
}

static weft_vm_term_t tstr(const char *s)
{
	return (weft_vm_term_t){.kind = WEFT_VM_STRING, .str = s, .len = strlen(s)};
}

static void test_bad_arguments(void **state)
{
	(void)state;
	weft_vm_t *vm;
	assert_int_equal(weft_vm_create(NULL, NULL), -EINVAL);
	assert_int_equal(weft_vm_create(&vm, &(weft_vm_opts_t){.size = 1}), -EINVAL);
	assert_int_equal(weft_vm_create(&vm, &(weft_vm_opts_t){.size = sizeof(weft_vm_opts_t), .out_fd = -3}), -EINVAL);
	assert_int_equal(weft_vm_create(&vm, NULL), 0);
	assert_int_equal(weft_vm_load_source(NULL, "x", "", 0), -EINVAL);
	assert_int_equal(weft_vm_load_source(vm, NULL, "", 0), -EINVAL);
	assert_int_equal(weft_vm_load_source(vm, "x", NULL, 3), -EINVAL);
	assert_int_equal(weft_vm_load_file(vm, NULL), -EINVAL);
	weft_vm_term_t *r;
	/* nothing loaded: no module */
	assert_int_equal(weft_vm_call(vm, NULL, "f", NULL, 0, &r), -ENOENT);
	assert_int_equal(weft_vm_call(vm, NULL, NULL, NULL, 0, &r), -EINVAL);
	assert_int_equal(weft_vm_call(vm, NULL, "f", NULL, 1, &r), -EINVAL);
	assert_int_equal(weft_vm_run_main(vm, 0, NULL), -ENOENT);
	assert_int_equal(weft_vm_disassemble(vm, stdout), -EINVAL);
	weft_vm_error_t er;
	assert_int_equal(weft_vm_error_get(vm, 0, &er), -EINVAL);
	assert_int_equal(weft_vm_error_count(NULL), 0);
	weft_vm_destroy(vm);
	weft_vm_destroy(NULL);
	weft_vm_term_free(NULL);
}

static void test_errors_are_values(void **state)
{
	(void)state;
	weft_vm_t *vm;
	assert_int_equal(weft_vm_create(&vm, NULL), 0);
	const char *src = "fn main() {\n  let x = 1\n  x = 2\n  nope(x)\n}\n";
	assert_int_equal(weft_vm_load_source(vm, "bad.wf", src, strlen(src)), -EINVAL);
	assert_int_equal(weft_vm_error_count(vm), 2);
	weft_vm_error_t e;
	assert_int_equal(weft_vm_error_get(vm, 0, &e), 0);
	assert_string_equal(e.path, "bad.wf");
	assert_int_equal(e.line, 3);
	assert_int_equal(e.col, 3);
	assert_non_null(strstr(e.message, "`x`"));
	assert_string_equal(e.source_line, "  x = 2");
	assert_int_equal(weft_vm_error_get(vm, 1, &e), 0);
	assert_int_equal(e.line, 4);
	assert_non_null(strstr(e.message, "nope"));
	/* a syntax error: the parser's position */
	const char *src2 = "fn f( {\n";
	assert_int_equal(weft_vm_load_source(vm, "syn.wf", src2, strlen(src2)), -EINVAL);
	assert_true(weft_vm_error_count(vm) >= 3);
	weft_vm_destroy(vm);
}

static void test_calls_with_terms(void **state)
{
	(void)state;
	weft_vm_t *vm = load("fn add(a, b) { a + b }\n"
			     "fn greet(s) { \"hello, \" ++ s }\n"
			     "fn swap(t) { let (a, b) = t; (b, a) }\n"
			     "fn total(l) { fold(l, 0, fn(acc, x) { acc + x }) }\n"
			     "fn lookup(m, k) { get(m, k, :none) }\n"
			     "fn all() { (nil, true, 1.5, :ok, [1, 2], %{\"k\" => [3]}, \"s\") }\n");
	weft_vm_term_t *r;
	weft_vm_term_t args[2] = {tint(40), tint(2)};
	assert_int_equal(weft_vm_call(vm, NULL, "add", args, 2, &r), 0);
	assert_int_equal(r->kind, WEFT_VM_INT);
	assert_int_equal(r->i, 42);
	weft_vm_term_free(r);
	/* beyond the small range and back */
	args[0] = tint(INT64_MAX - 5);
	args[1] = tint(5);
	assert_int_equal(weft_vm_call(vm, "t", "add", args, 2, &r), 0);
	assert_true(r->i == INT64_MAX);
	weft_vm_term_free(r);
	weft_vm_term_t s = tstr("weft");
	assert_int_equal(weft_vm_call(vm, NULL, "greet", &s, 1, &r), 0);
	assert_int_equal(r->kind, WEFT_VM_STRING);
	assert_string_equal(r->str, "hello, weft");
	weft_vm_term_free(r);
	weft_vm_term_t pair_items[2] = {tint(1), tstr("b")};
	weft_vm_term_t pair = {.kind = WEFT_VM_TUPLE, .items = pair_items, .n = 2};
	assert_int_equal(weft_vm_call(vm, NULL, "swap", &pair, 1, &r), 0);
	assert_int_equal(r->kind, WEFT_VM_TUPLE);
	assert_int_equal(r->n, 2);
	assert_string_equal(r->items[0].str, "b");
	assert_int_equal(r->items[1].i, 1);
	weft_vm_term_free(r);
	/* a long list (collections happen while it is built and walked) */
	enum { N = 20000 };
	weft_vm_term_t *items = calloc(N, sizeof *items);
	for (int i = 0; i < N; i++)
		items[i] = tint(i);
	weft_vm_term_t list = {.kind = WEFT_VM_LIST, .items = items, .n = N};
	assert_int_equal(weft_vm_call(vm, NULL, "total", &list, 1, &r), 0);
	assert_int_equal(r->i, (int64_t)N * (N - 1) / 2);
	weft_vm_term_free(r);
	free(items);
	weft_vm_term_t kv[4] = {{.kind = WEFT_VM_ATOM, .str = "a", .len = 1},
				tint(1),
				{.kind = WEFT_VM_ATOM, .str = "b", .len = 1},
				tint(2)};
	weft_vm_term_t m = {.kind = WEFT_VM_MAP, .items = kv, .n = 4};
	weft_vm_term_t margs[2] = {m, {.kind = WEFT_VM_ATOM, .str = "b", .len = 1}};
	assert_int_equal(weft_vm_call(vm, NULL, "lookup", margs, 2, &r), 0);
	assert_int_equal(r->i, 2);
	weft_vm_term_free(r);
	margs[1].str = "zz";
	margs[1].len = 2;
	assert_int_equal(weft_vm_call(vm, NULL, "lookup", margs, 2, &r), 0);
	assert_int_equal(r->kind, WEFT_VM_ATOM);
	assert_string_equal(r->str, "none");
	weft_vm_term_free(r);
	assert_int_equal(weft_vm_call(vm, NULL, "all", NULL, 0, &r), 0);
	assert_int_equal(r->kind, WEFT_VM_TUPLE);
	assert_int_equal(r->n, 7);
	assert_int_equal(r->items[0].kind, WEFT_VM_NIL);
	assert_true(r->items[1].kind == WEFT_VM_BOOL && r->items[1].b);
	assert_true(r->items[2].kind == WEFT_VM_FLOAT && r->items[2].f == 1.5);
	assert_string_equal(r->items[3].str, "ok");
	assert_int_equal(r->items[4].kind, WEFT_VM_LIST);
	assert_int_equal(r->items[4].n, 2);
	assert_int_equal(r->items[5].kind, WEFT_VM_MAP);
	assert_int_equal(r->items[5].n, 2);
	assert_string_equal(r->items[5].items[0].str, "k");
	assert_int_equal(r->items[5].items[1].items[0].i, 3);
	assert_string_equal(r->items[6].str, "s");
	weft_vm_term_free(r);
	weft_vm_destroy(vm);
}

static void test_raises_and_bad_terms(void **state)
{
	(void)state;
	weft_vm_t *vm = load("fn div(a, b) { a / b }\nfn boom(v) { raise(v) }\nfn one(x) { x }\n");
	weft_vm_term_t *r;
	weft_vm_term_t args[2] = {tint(1), tint(0)};
	assert_int_equal(weft_vm_call(vm, NULL, "div", args, 2, &r), 1);
	assert_int_equal(r->kind, WEFT_VM_TUPLE);
	assert_string_equal(r->items[0].str, "error");
	assert_string_equal(r->items[1].str, "badarith");
	weft_vm_term_free(r);
	assert_int_equal(weft_vm_call(vm, NULL, "boom", args, 1, &r), 1);
	assert_int_equal(r->i, 1);
	weft_vm_term_free(r);
	/* the wrong number of arguments is a raise of the call */
	assert_int_equal(weft_vm_call(vm, NULL, "div", args, 1, &r), 1);
	assert_string_equal(r->items[1].str, "badarity");
	weft_vm_term_free(r);
	assert_int_equal(weft_vm_call(vm, NULL, "nope", args, 1, &r), -ENOENT);
	assert_int_equal(weft_vm_call(vm, "nomodule", "one", args, 1, &r), -ENOENT);
	weft_vm_term_t bad = {.kind = WEFT_VM_FLOAT, .f = NAN};
	assert_int_equal(weft_vm_call(vm, NULL, "one", &bad, 1, &r), -EINVAL);
	bad = (weft_vm_term_t){.kind = WEFT_VM_FLOAT, .f = INFINITY};
	assert_int_equal(weft_vm_call(vm, NULL, "one", &bad, 1, &r), -EINVAL);
	bad = (weft_vm_term_t){.kind = WEFT_VM_LIST, .items = NULL, .n = 3};
	assert_int_equal(weft_vm_call(vm, NULL, "one", &bad, 1, &r), -EINVAL);
	bad = (weft_vm_term_t){.kind = WEFT_VM_STRING, .str = NULL, .len = 3};
	assert_int_equal(weft_vm_call(vm, NULL, "one", &bad, 1, &r), -EINVAL);
	bad = (weft_vm_term_t){.kind = (weft_vm_kind_t)99};
	assert_int_equal(weft_vm_call(vm, NULL, "one", &bad, 1, &r), -EINVAL);
	weft_vm_term_t odd[1] = {tint(1)};
	bad = (weft_vm_term_t){.kind = WEFT_VM_MAP, .items = odd, .n = 1};
	assert_int_equal(weft_vm_call(vm, NULL, "one", &bad, 1, &r), -EINVAL);
	/* after all that, the VM still works */
	assert_int_equal(weft_vm_call(vm, NULL, "one", args, 1, &r), 0);
	assert_int_equal(r->i, 1);
	weft_vm_term_free(r);
	weft_vm_destroy(vm);
}

static void test_halt_and_output(void **state)
{
	(void)state;
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	weft_vm_t *vm;
	assert_int_equal(weft_vm_create(&vm, &(weft_vm_opts_t){.size = sizeof(weft_vm_opts_t), .out_fd = fds[1]}), 0);
	const char *src = "fn main(args) { print(\"args\", args); print(inspect(1.0)); halt(7); print(\"never\") }\n";
	assert_int_equal(weft_vm_load_source(vm, "h.wf", src, strlen(src)), 0);
	char *argv[] = {"a", "b c"};
	assert_int_equal(weft_vm_run_main(vm, 2, argv), 7);
	assert_int_equal(weft_vm_halt_status(vm), 7);
	close(fds[1]);
	char buf[256] = {0};
	ssize_t n = read(fds[0], buf, sizeof buf - 1);
	assert_true(n > 0);
	assert_string_equal(buf, "args [\"a\", \"b c\"]\n1.0\n");
	close(fds[0]);
	weft_vm_destroy(vm);
}

static void test_main_status(void **state)
{
	(void)state;
	weft_vm_t *vm = load("fn main() { 3 }\n");
	assert_int_equal(weft_vm_run_main(vm, 0, NULL), 3);
	weft_vm_destroy(vm);
	vm = load("fn main() { 300 }\n");
	assert_int_equal(weft_vm_run_main(vm, 0, NULL), 0);
	weft_vm_destroy(vm);
	vm = load("let K = 1 / 0\nfn main() { K }\n");
	assert_int_equal(weft_vm_run_main(vm, 0, NULL), 1); /* the constant's crash is the first process's */
	weft_vm_destroy(vm);
}

static void test_failed_load_is_never_run(void **state)
{
	(void)state;
	weft_vm_t *vm = load("fn ok() { 1 }\n");
	const char *bad = "fn h() { nosuch + 1 }\nfn g() { 2 }\n";
	assert_int_equal(weft_vm_load_source(vm, "bad.wf", bad, strlen(bad)), -EINVAL);
	weft_vm_term_t *r;
	/* neither by name nor as "the last loaded" */
	assert_int_equal(weft_vm_call(vm, "bad", "g", NULL, 0, &r), -ENOENT);
	assert_int_equal(weft_vm_call(vm, NULL, "g", NULL, 0, &r), -ENOENT);
	assert_int_equal(weft_vm_call(vm, NULL, "ok", NULL, 0, &r), 0);
	assert_int_equal(r->i, 1);
	weft_vm_term_free(r);
	/* nor imported */
	const char *imp = "import \"bad.wf\"\nfn k() { bad.g() }\n";
	assert_int_equal(weft_vm_load_source(vm, "imp.wf", imp, strlen(imp)), -EINVAL);
	weft_vm_destroy(vm);
}

static void test_limits(void **state)
{
	(void)state;
	weft_vm_t *vm;
	assert_int_equal(weft_vm_create(&vm, &(weft_vm_opts_t){.size = sizeof(weft_vm_opts_t), .out_fd = 1000000}),
			 -EBADF);
	assert_int_equal(weft_vm_create(&vm, &(weft_vm_opts_t){.size = sizeof(weft_vm_opts_t),
							       .max_reductions = 100000,
							       .max_heap_bytes = 1 << 20}),
			 0);
	const char *src = "fn spin(n) { spin(n + 1) }\n"
			  "fn grow(l) { grow([l, l]) }\n"
			  "fn big() { range(0, 1000000) }\n"
			  "fn ok(n) { n * 2 }\n";
	assert_int_equal(weft_vm_load_source(vm, "lim.wf", src, strlen(src)), 0);
	weft_vm_term_t *r, one = tint(1);
	/* a call that never returns is abandoned after its reductions */
	assert_int_equal(weft_vm_call(vm, NULL, "spin", &one, 1, &r), -ETIMEDOUT);
	/* a heap past its limit: the code raises :system_limit */
	assert_int_equal(weft_vm_call(vm, NULL, "big", NULL, 0, &r), 1);
	assert_string_equal(r->items[1].str, "system_limit");
	weft_vm_term_free(r);
	/* and the VM goes on */
	assert_int_equal(weft_vm_call(vm, NULL, "ok", &one, 1, &r), 0);
	assert_int_equal(r->i, 2);
	weft_vm_term_free(r);
	/* a DAG of terms that names 2^40 of them */
	weft_vm_term_t dag[41];
	dag[0] = tint(0);
	for (int i = 1; i <= 40; i++) {
		static weft_vm_term_t pairs[41][2];
		pairs[i][0] = pairs[i][1] = dag[i - 1];
		dag[i] = (weft_vm_term_t){.kind = WEFT_VM_TUPLE, .items = pairs[i], .n = 2};
	}
	/* (under this VM's heap limit the heap runs out first) */
	int e = weft_vm_call(vm, NULL, "ok", &dag[40], 1, &r);
	assert_true(e == -E2BIG || e == -ENOMEM);
	weft_vm_destroy(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_errors_are_values),
		cmocka_unit_test(test_calls_with_terms),
		cmocka_unit_test(test_raises_and_bad_terms),
		cmocka_unit_test(test_halt_and_output),
		cmocka_unit_test(test_main_status),
		cmocka_unit_test(test_failed_load_is_never_run),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
