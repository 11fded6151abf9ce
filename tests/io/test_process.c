/* test_process.c - subprocesses: stdin -> stdout round trips with large
 * data, exit codes, kill, missing commands, early-dying children, deadlines,
 * cancellation; no zombies, no leaked descriptors. */
#include "weft_test.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <weft/io.h>

#include "blocking_check.h"

static const weft_process_opts_t piped_io = {.stdio = {WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, WEFT_STDIO_INHERIT}};

/* Read all of stream `which` into buf (cap bytes); returns the length. */
static ssize_t read_all(weft_process_t *p, int which, char *buf, size_t cap)
{
	size_t len = 0;
	for (;;) {
		ssize_t n = weft_process_read(p, which, buf + len, cap - len, wt_hang_deadline());
		if (n <= 0)
			return n < 0 ? n : (ssize_t)len;
		len += (size_t)n;
		if (len == cap)
			return (ssize_t)len;
	}
}

/* ------------------------------------------------------------ round trip through cat */

struct feed {
	weft_process_t *p;
	const char *data;
	size_t len;
};

static void *feeder(void *a)
{
	struct feed *f = a;
	/* in uneven pieces, to exercise partial writes and the parking */
	size_t off = 0, piece = 1;
	while (off < f->len) {
		size_t n = f->len - off < piece ? f->len - off : piece;
		TCHECK_EQ(weft_process_write(f->p, f->data + off, n, WEFT_NEVER), (ssize_t)n);
		off += n;
		piece = piece * 3 + 7;
		if (piece > 300000)
			piece = 1;
	}
	TCHECK_EQ(weft_process_close(f->p, WEFT_STDIN), 0);
	return NULL;
}

static void cat_round_trip(size_t len)
{
	char *src = malloc(len), *back = malloc(len + 1);
	for (size_t i = 0; i < len; i++)
		src[i] = (char)(i * 131 + (i >> 11));
	weft_process_t *p;
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"cat", NULL}, &piped_io), 0);
	TCHECK(weft_process_pid(p) > 0);
	TCHECK(fcntl(weft_process_fd(p, WEFT_STDOUT), F_GETFL) & O_NONBLOCK);
	TCHECK(fcntl(weft_process_fd(p, WEFT_STDIN), F_GETFD) & FD_CLOEXEC);
	TCHECK_EQ(weft_process_fd(p, WEFT_STDERR), -EBADF);
	struct feed f = {p, src, len};
	weft_task_t t = wt_spawn(feeder, &f);
	TCHECK_EQ(read_all(p, WEFT_STDOUT, back, len + 1), (ssize_t)len);
	TCHECK(memcmp(src, back, len) == 0);
	wt_join(t);
	weft_exit_status_t st;
	TCHECK_EQ(weft_process_wait(p, &st, wt_hang_deadline()), 0);
	TCHECK_EQ(st.code, 0);
	TCHECK_EQ(st.signal, 0);
	TCHECK_EQ(weft_process_destroy(p), 0);
	free(src);
	free(back);
}

static void *large_main(void *a)
{
	(void)a;
	cat_round_trip((size_t)WT_SIZE(8 << 20, 3 << 20));
	return NULL;
}

static void test_cat_large_round_trip(void **state)
{
	(void)state;
	wt_run(large_main, NULL, 2);
}

enum { NCAT = 16 };

static void *small_cat(void *a)
{
	(void)a;
	cat_round_trip(100000);
	return NULL;
}

static void *concurrent_main(void *a)
{
	(void)a;
	weft_task_t t[NCAT];
	for (int i = 0; i < NCAT; i++)
		t[i] = wt_spawn(small_cat, NULL);
	for (int i = 0; i < NCAT; i++)
		wt_join(t[i]);
	return NULL;
}

static void test_many_concurrent_processes(void **state)
{
	(void)state;
	wt_run(concurrent_main, NULL, 2);
}

/* ------------------------------------------------------------ exit status, stderr, env, cwd */

static void *status_main(void *a)
{
	(void)a;
	weft_process_t *p;
	weft_exit_status_t st;
	const weft_process_opts_t outs = {.stdio = {WEFT_STDIO_NULL, WEFT_STDIO_PIPE, WEFT_STDIO_PIPE}};
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"sh", "-c", "echo out; echo err >&2; exit 3", NULL},
				     &outs),
		  0);
	char buf[64] = {0};
	TCHECK_EQ(read_all(p, WEFT_STDOUT, buf, sizeof buf - 1), 4);
	TCHECK(strcmp(buf, "out\n") == 0);
	memset(buf, 0, sizeof buf);
	TCHECK_EQ(read_all(p, WEFT_STDERR, buf, sizeof buf - 1), 4);
	TCHECK(strcmp(buf, "err\n") == 0);
	TCHECK_EQ(weft_process_wait(p, &st, WEFT_NEVER), 0);
	TCHECK_EQ(st.code, 3);
	TCHECK_EQ(st.signal, 0);
	/* a second wait gives the same status */
	st.code = 99;
	TCHECK_EQ(weft_process_wait(p, &st, WEFT_NEVER), 0);
	TCHECK_EQ(st.code, 3);
	TCHECK_EQ(weft_process_kill(p, SIGTERM), -ESRCH); /* reaped */
	TCHECK_EQ(weft_process_destroy(p), 0);

	/* environment and working directory */
	const char *env[] = {"WEFT_T=hello there", "PATH=/usr/bin:/bin", NULL};
	weft_process_opts_t o = {
		.env = env, .cwd = "/tmp", .stdio = {WEFT_STDIO_NULL, WEFT_STDIO_PIPE, WEFT_STDIO_INHERIT}};
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"sh", "-c", "echo \"$WEFT_T\"; pwd", NULL}, &o), 0);
	memset(buf, 0, sizeof buf);
	TCHECK_EQ(read_all(p, WEFT_STDOUT, buf, sizeof buf - 1), 17);
	TCHECK(strcmp(buf, "hello there\n/tmp\n") == 0);
	TCHECK_EQ(weft_process_wait(p, &st, WEFT_NEVER), 0);
	TCHECK_EQ(st.code, 0);
	TCHECK_EQ(weft_process_destroy(p), 0);

	/* stdin from /dev/null: cat ends at once */
	o = (weft_process_opts_t){.stdio = {WEFT_STDIO_NULL, WEFT_STDIO_PIPE, WEFT_STDIO_NULL}};
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"cat", NULL}, &o), 0);
	TCHECK_EQ(weft_process_read(p, WEFT_STDOUT, buf, sizeof buf, wt_hang_deadline()), 0);
	TCHECK_EQ(weft_process_write(p, "x", 1, WEFT_NEVER), -EBADF); /* not piped */
	TCHECK_EQ(weft_process_wait(p, &st, WEFT_NEVER), 0);
	TCHECK_EQ(st.code, 0);
	TCHECK_EQ(weft_process_destroy(p), 0);

	/* the child does not inherit our descriptors, and its signal mask is clean */
	int keep = open("/dev/null", O_RDONLY); /* no O_CLOEXEC */
	sigset_t usr, old;
	sigemptyset(&usr);
	sigaddset(&usr, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr, &old);
	TCHECK_EQ(weft_process_spawn(&p,
				     (const char *const[]){"sh", "-c",
							   "ls /proc/self/fd | wc -l; grep SigBlk /proc/self/status",
							   NULL},
				     &o),
		  0);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(keep);
	memset(buf, 0, sizeof buf);
	TCHECK(read_all(p, WEFT_STDOUT, buf, sizeof buf - 1) > 0);
	/* ls sees 0, 1, 2 and its own directory descriptor */
	TCHECK(strncmp(buf, "4\nSigBlk:\t0000000000000000\n", 27) == 0);
	TCHECK_EQ(weft_process_wait(p, &st, WEFT_NEVER), 0);
	TCHECK_EQ(weft_process_destroy(p), 0);
	return NULL;
}

static void test_status_stderr_env_cwd(void **state)
{
	(void)state;
	wt_run(status_main, NULL, 2);
}

/* ------------------------------------------------------------ kill, deadlines, destroy */

static void *blocked_reader(void *a)
{
	char buf[16];
	return (void *)(intptr_t)weft_process_read(a, WEFT_STDOUT, buf, sizeof buf, WEFT_NEVER);
}

static void *blocked_waiter(void *a)
{
	return (void *)(intptr_t)weft_process_wait(a, NULL, WEFT_NEVER);
}

static void *kill_main(void *a)
{
	(void)a;
	weft_process_t *p;
	weft_exit_status_t st;
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"sleep", "3600", NULL}, &piped_io), 0);
	char buf[16];
	TCHECK_EQ(weft_process_read(p, WEFT_STDOUT, buf, sizeof buf, weft_deadline_in(20 * WEFT_MSEC)), -ETIMEDOUT);
	TCHECK_EQ(weft_process_wait(p, &st, weft_deadline_in(20 * WEFT_MSEC)), -ETIMEDOUT);
	/* cancellation of tasks blocked in read and wait */
	weft_task_t r = wt_spawn(blocked_reader, p), w = wt_spawn(blocked_waiter, p);
	weft_sleep(10 * WEFT_MSEC);
	weft_cancel(r);
	weft_cancel(w);
	void *res;
	TCHECK_EQ(weft_join(r, &res), 0);
	TCHECK_EQ((intptr_t)res, -ECANCELED);
	TCHECK_EQ(weft_join(w, &res), 0);
	TCHECK_EQ((intptr_t)res, -ECANCELED);
	/* a waiter in another task sees the kill */
	w = wt_spawn(blocked_waiter, p);
	weft_sleep(5 * WEFT_MSEC);
	TCHECK_EQ(weft_process_kill(p, 0), 0); /* alive */
	TCHECK_EQ(weft_process_kill(p, SIGTERM), 0);
	TCHECK_EQ(weft_join(w, &res), 0);
	TCHECK_EQ((intptr_t)res, 0);
	TCHECK_EQ(weft_process_wait(p, &st, WEFT_NEVER), 0);
	TCHECK_EQ(st.code, -1);
	TCHECK_EQ(st.signal, SIGTERM);
	TCHECK_EQ(weft_process_kill(p, SIGKILL), -ESRCH);
	TCHECK_EQ(weft_process_kill(p, -1), -EINVAL);
	TCHECK_EQ(weft_process_kill(NULL, SIGKILL), -EINVAL);
	TCHECK_EQ(weft_process_destroy(p), 0);

	/* destroy kills and reaps a child still running */
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"sleep", "3600", NULL}, &piped_io), 0);
	TCHECK_EQ(weft_process_destroy(p), 0);
	/* and reaps one that has exited without being waited for */
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"true", NULL}, NULL), 0);
	weft_sleep(20 * WEFT_MSEC);
	TCHECK_EQ(weft_process_destroy(p), 0);
	return NULL;
}

static void test_kill_deadlines_destroy(void **state)
{
	(void)state;
	wt_run(kill_main, NULL, 2);
}

/* ------------------------------------------------------------ commands that cannot start */

static void *missing_main(void *a)
{
	(void)a;
	weft_process_t *p = (weft_process_t *)1;
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"weft-no-such-command", NULL}, &piped_io), -ENOENT);
	TCHECK(p == NULL);
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"/no/such/dir/cmd", NULL}, &piped_io), -ENOENT);
	weft_process_opts_t o = {.cwd = "/no/such/dir"};
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"true", NULL}, &o), -ENOENT);
	char path[] = "/tmp/weft-noexec-XXXXXX";
	int fd = mkstemp(path);
	TCHECK(fd >= 0);
	close(fd);
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){path, NULL}, &piped_io), -EACCES);
	unlink(path);
	/* out of descriptors halfway through making the pipes: nothing leaks */
	struct rlimit old, low;
	getrlimit(RLIMIT_NOFILE, &old);
	low = old;
	/* New descriptors take the lowest free numbers: leave exactly two free
	 * below the limit, room for the first pipe only. */
	int fd_free = 0, lim = 0;
	while (fd_free < 2) {
		if (fcntl(lim, F_GETFD) < 0)
			fd_free++;
		lim++;
	}
	low.rlim_cur = (rlim_t)lim;
	if (setrlimit(RLIMIT_NOFILE, &low) == 0) {
		int before = wt_count_fds();
		TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"cat", NULL}, &piped_io), -EMFILE);
		TCHECK_EQ(wt_count_fds(), before);
		setrlimit(RLIMIT_NOFILE, &old);
	}
	/* bad input */
	TCHECK_EQ(weft_process_spawn(NULL, (const char *const[]){"true", NULL}, NULL), -EINVAL);
	TCHECK_EQ(weft_process_spawn(&p, NULL, NULL), -EINVAL);
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){NULL}, NULL), -EINVAL);
	o = (weft_process_opts_t){.stdio = {7, 0, 0}};
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"true", NULL}, &o), -EINVAL);
	TCHECK_EQ(weft_process_wait(NULL, NULL, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_process_destroy(NULL), -EINVAL);
	TCHECK_EQ(weft_process_pid(NULL), -EINVAL);
	return NULL;
}

static void test_missing_command(void **state)
{
	(void)state;
	wt_run(missing_main, NULL, 1);
}

/* ------------------------------------------------------------ a child that dies early */

static void *early_main(void *a)
{
	(void)a;
	weft_process_t *p;
	weft_exit_status_t st;
	/* reads 10 bytes, then exits: our writes end with -EPIPE, not SIGPIPE */
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"head", "-c", "10", NULL}, &piped_io), 0);
	char *big = calloc(1, 1 << 20);
	ssize_t n;
	long total = 0;
	while ((n = weft_process_write(p, big, 1 << 20, wt_hang_deadline())) > 0)
		total += n;
	TCHECK_EQ(n, -EPIPE);
	TCHECK(total < (1 << 20) * 2);
	char buf[32];
	TCHECK_EQ(read_all(p, WEFT_STDOUT, buf, sizeof buf), 10);
	TCHECK_EQ(weft_process_wait(p, &st, WEFT_NEVER), 0);
	TCHECK_EQ(st.code, 0);
	TCHECK_EQ(weft_process_write(p, big, 10, WEFT_NEVER), -EPIPE);
	TCHECK_EQ(weft_process_close(p, WEFT_STDIN), 0);
	TCHECK_EQ(weft_process_close(p, WEFT_STDIN), -EBADF);
	TCHECK_EQ(weft_process_write(p, big, 10, WEFT_NEVER), -EBADF);
	TCHECK_EQ(weft_process_destroy(p), 0);

	/* killed by a signal before reading anything */
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"sh", "-c", "kill -9 $$", NULL}, &piped_io), 0);
	TCHECK_EQ(weft_process_wait(p, &st, WEFT_NEVER), 0);
	TCHECK_EQ(st.signal, SIGKILL);
	TCHECK_EQ(weft_process_write(p, big, 1 << 20, WEFT_NEVER), -EPIPE);
	TCHECK_EQ(weft_process_read(p, WEFT_STDOUT, buf, sizeof buf, WEFT_NEVER), 0);
	TCHECK_EQ(weft_process_destroy(p), 0);
	free(big);
	return NULL;
}

static void test_early_dying_child(void **state)
{
	(void)state;
	wt_run(early_main, NULL, 2);
}

/* ------------------------------------------------------------ from a plain thread */

static void test_plain_thread(void **state)
{
	(void)state;
	weft_process_t *p;
	assert_int_equal(weft_process_spawn(&p, (const char *const[]){"echo", "plain", NULL}, &piped_io), 0);
	char buf[16] = {0};
	assert_int_equal(weft_process_read(p, WEFT_STDOUT, buf, sizeof buf, wt_hang_deadline()), 6);
	assert_string_equal(buf, "plain\n");
	weft_exit_status_t st;
	assert_int_equal(weft_process_wait(p, &st, wt_hang_deadline()), 0);
	assert_int_equal(st.code, 0);
	assert_int_equal(weft_process_destroy(p), 0);
	assert_int_equal(weft_process_spawn(&p, (const char *const[]){"sleep", "3600", NULL}, NULL), 0);
	assert_int_equal(weft_process_wait(p, &st, weft_deadline_in(10 * WEFT_MSEC)), -ETIMEDOUT);
	assert_int_equal(weft_process_destroy(p), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		WT_PROC_TEST(test_cat_large_round_trip),  WT_PROC_TEST(test_many_concurrent_processes),
		WT_PROC_TEST(test_status_stderr_env_cwd), WT_PROC_TEST(test_kill_deadlines_destroy),
		WT_PROC_TEST(test_missing_command),	  WT_PROC_TEST(test_early_dying_child),
		WT_PROC_TEST(test_plain_thread),
	};
	/* Waiting parks in the netpoller: run everything on both backends. */
	int failed = 0;
	const char *backends[] = {"epoll", "uring"};
	for (int b = 0; b < 2; b++) {
		setenv("WEFT_IO", backends[b], 1);
		failed += cmocka_run_group_tests_name(backends[b], tests, NULL, NULL);
	}
	return failed;
}
