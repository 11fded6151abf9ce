/* test_sigpipe.c - SIGPIPE and children: after weft_process_spawn with a
 * piped stdin (and after every other write path), SIGPIPE is not ignored
 * process-wide, so children started by other code (popen, system) get the
 * default disposition; children weft starts get every default even when the
 * parent ignores SIGPIPE; writes to a closed pipe still give -EPIPE from
 * weft's calls; and the program's own writes (not weft's) behave as with
 * the default disposition. Each case runs in a forked child, since signal
 * dispositions belong to the process. */
#include "weft_test.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <weft/io.h>

/* Run fn in a child that starts with SIGPIPE at its default; returns the
 * child's wait status. */
static int in_child(int (*fn)(void))
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		_exit(fn());
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

static void expect_exit0(int st)
{
	if (!WIFEXITED(st))
		fprintf(stderr, "child killed by signal %d\n", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* A shell command that exits with 0 iff SIGPIPE is not ignored in the
 * shell's child, awk (bit 12 of SigIgn is SIGPIPE, signal 13). */
#define SHELL_SIGPIPE_DEFAULT "exit $(( 0x$(awk '/^SigIgn/{print $2}' /proc/self/status) >> 12 & 1 ))"

static bool sigpipe_ignored_here(void)
{
	struct sigaction sa;
	return sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;
}

/* ------------------------------------------------------------ other code's children */

static void *spawn_piped(void *a)
{
	(void)a;
	weft_process_t *p;
	weft_process_opts_t o = {.stdio = {WEFT_STDIO_PIPE, WEFT_STDIO_NULL, WEFT_STDIO_INHERIT}};
	if (weft_process_spawn(&p, (const char *const[]){"true", NULL}, &o) != 0)
		return (void *)1;
	weft_exit_status_t st;
	weft_process_wait(p, &st, WEFT_NEVER);
	/* stdin's pipe is still open: its reader is gone */
	ssize_t w = weft_process_write(p, "x", 1, weft_deadline_in(5 * WEFT_SEC));
	weft_process_destroy(p);
	return (void *)(intptr_t)(w == -EPIPE && st.code == 0 ? 0 : 2);
}

static int popen_after_spawn(void)
{
	weft_config_t cfg = {.workers = 1};
	int r = weft_main(spawn_piped, NULL, &cfg);
	if (r != 0)
		return 10 + r;
	if (sigpipe_ignored_here())
		return 20;
	/* popen's shell runs awk, which reports its own SigIgn */
	FILE *f = popen("awk '/^SigIgn/{print $2}' /proc/self/status", "r");
	if (!f)
		return 30;
	unsigned long long ign = 0;
	int n = fscanf(f, "%llx", &ign);
	pclose(f);
	if (n != 1)
		return 31;
	if (ign & (1ull << (SIGPIPE - 1)))
		return 32; /* the child inherited an ignored SIGPIPE */
	return system(SHELL_SIGPIPE_DEFAULT) == 0 ? 0 : 33;
}

static void test_popen_after_spawn_sees_default(void **state)
{
	(void)state;
	expect_exit0(in_child(popen_after_spawn));
}

/* ------------------------------------------------------------ weft's children */

static void *spawn_checker(void *a)
{
	(void)a;
	weft_process_t *p;
	if (weft_process_spawn(&p, (const char *const[]){"sh", "-c", SHELL_SIGPIPE_DEFAULT, NULL}, NULL) != 0)
		return (void *)1;
	weft_exit_status_t st = {0};
	int r = weft_process_wait(p, &st, weft_deadline_in(20 * WEFT_SEC));
	weft_process_destroy(p);
	return (void *)(intptr_t)(r == 0 && st.code == 0 ? 0 : 2);
}

/* The parent ignores SIGPIPE itself: weft's child still gets the default. */
static int spawn_with_parent_ignoring(void)
{
	signal(SIGPIPE, SIG_IGN);
	weft_config_t cfg = {.workers = 1};
	int r = weft_main(spawn_checker, NULL, &cfg);
	if (!sigpipe_ignored_here())
		return 40; /* the program's own choice is kept */
	return r;
}

static void test_weft_children_get_default(void **state)
{
	(void)state;
	expect_exit0(in_child(spawn_with_parent_ignoring));
}

/* ------------------------------------------------------------ writes */

static void *pipe_writes(void *a)
{
	(void)a;
	int p[2];
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
		return (void *)1;
	close(p[0]);
	int bad = 0;
	if (weft_write(p[1], "x", 1, WEFT_NEVER) != -EPIPE)
		bad |= 2;
	struct iovec iov = {"y", 1};
	if (weft_writev(p[1], &iov, 1, WEFT_NEVER) != -EPIPE)
		bad |= 4;
	if (weft_write_all(p[1], "zz", 2, WEFT_NEVER, NULL) != -EPIPE)
		bad |= 8;
	weft_close(p[1]);
	return (void *)(intptr_t)bad;
}

/* weft's writes give -EPIPE (tasks and plain threads); the program's own
 * write(2) to a closed pipe afterwards ends the process with SIGPIPE, as
 * the default disposition would. */
static int weft_epipe_then_own_write(void)
{
	weft_config_t cfg = {.workers = 1};
	int r = weft_main(pipe_writes, NULL, &cfg);
	if (r != 0)
		return 50 + r;
	if ((intptr_t)pipe_writes(NULL) != 0) /* from this plain thread */
		return 60;
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return 70;
	close(p[0]);
	ssize_t n = write(p[1], "x", 1);
	(void)n;
	return 71; /* not reached: SIGPIPE */
}

static void test_own_writes_keep_default(void **state)
{
	(void)state;
	int st = in_child(weft_epipe_then_own_write);
	if (WIFEXITED(st))
		fprintf(stderr, "child exited with %d\n", WEXITSTATUS(st));
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGPIPE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_popen_after_spawn_sees_default),
		cmocka_unit_test(test_weft_children_get_default),
		cmocka_unit_test(test_own_writes_keep_default),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
