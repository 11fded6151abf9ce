/* test_overflow.c - a stack overflow is reported with the task's id and name
 * and kills the process; never silent corruption. Run in a child process. */
#include "weft_test.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The recursive calls go through volatile pointers: an optimiser that saw
 * them would turn each recursion into a loop (gcc -O3 does), and nothing
 * would overflow. */
static int recurse(int n);
static int big_frame(int n);
static int (*volatile recurse_p)(int) = recurse;
static int (*volatile big_frame_p)(int) = big_frame;

static int recurse(int n)
{
	volatile char buf[512];
	buf[0] = (char)n;
	buf[511] = (char)n;
	return n == 0 ? buf[0] : recurse_p(n - 1) + buf[511];
}

/* A frame far larger than a page: it must land in the guard region, not
 * step over it into the neighbouring stack. */
static int big_frame(int n)
{
	volatile char buf[20000];
	buf[0] = (char)n;
	buf[sizeof buf - 1] = (char)n;
	return n == 0 ? buf[0] : big_frame_p(n - 1) + buf[0];
}

static bool use_big_frames;

static void *deep(void *a)
{
	(void)a;
	return (void *)(intptr_t)(use_big_frames ? big_frame(1000) : recurse(1000000));
}

static void *overflow_main(void *a)
{
	(void)a;
	weft_task_t t;
	weft_spawn(&t, deep, NULL, &(weft_spawn_opts_t){.name = "deep-diver", .stack_size = 16384});
	weft_join(t, NULL);
	return NULL;
}

/* Runs the child with WEFT_STACK_GUARD=mode; returns its stderr. */
static void run_child(const char *mode, char *out, size_t cap, int *status)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		setenv("WEFT_STACK_GUARD", mode, 1);
		weft_main(overflow_main, NULL, &(weft_config_t){.workers = 1});
		_exit(0); /* reaching here means the overflow went unnoticed */
	}
	close(p[1]);
	size_t n = 0;
	ssize_t r;
	while (n < cap - 1 && (r = read(p[0], out + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = 0;
	close(p[0]);
	waitpid(pid, status, 0);
}

static void check_mode(const char *mode)
{
	char out[8192];
	int status;
	run_child(mode, out, sizeof out, &status);
	assert_true(WIFSIGNALED(status));
	assert_non_null(strstr(out, "stack overflow"));
	assert_non_null(strstr(out, "'deep-diver'"));
	assert_non_null(strstr(out, "in task "));
}

static void test_overflow_guard_page_madvise(void **state)
{
	(void)state;
	check_mode("madvise");
}

static void test_overflow_guard_page_mprotect(void **state)
{
	(void)state;
	check_mode("mprotect");
}

static void test_overflow_with_frames_larger_than_a_page(void **state)
{
	(void)state;
	use_big_frames = true;
	check_mode("madvise");
	check_mode("mprotect");
	use_big_frames = false;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overflow_guard_page_madvise),
		cmocka_unit_test(test_overflow_with_frames_larger_than_a_page),
		cmocka_unit_test(test_overflow_guard_page_mprotect),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
