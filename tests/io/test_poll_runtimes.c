/* test_poll_runtimes.c - descriptors and pollers of a runtime other than
 * the caller's: weft_close of a descriptor that a second runtime registered,
 * from a plain thread and from a task of the first runtime, leaves nothing
 * behind (the peer sees end of file; the number, once reused in that
 * runtime, gets its events), and weft_io_backend of another runtime
 * installs and names its poller. Run on both backends. */
#include "wt_io.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static weft_runtime_t *g_rt2;

/* Run fn(arg) as a task of g_rt2 and return its result. */
static void *in_rt2(weft_fn_t fn, void *arg)
{
	weft_task_t t;
	TCHECK_EQ(weft_spawn(&t, fn, arg, &(weft_spawn_opts_t){.runtime = g_rt2}), 0);
	void *r = NULL;
	TCHECK_EQ(weft_join(t, &r), 0);
	return r;
}

/* ------------------------------------------------------------ closing */

typedef struct pair {
	int lfd, c, s; /* listener, client end, server end */
} pair;

/* In rt2: a TCP pair, the server end registered and waited on (so that with
 * io_uring its poll is armed and holds the file). */
static void *make_pair(void *a)
{
	pair *p = a;
	wt_tcp_pair(&p->lfd, &p->c, &p->s);
	char b;
	TCHECK_EQ(weft_read(p->s, &b, 1, weft_deadline_in(20 * WEFT_MSEC)), -ETIMEDOUT);
	return NULL;
}

/* In rt2: the client end sees end of file, then the pair is torn down. */
static void *sees_eof(void *a)
{
	pair *p = a;
	char b;
	TCHECK_EQ(weft_read(p->c, &b, 1, weft_deadline_in(2 * WEFT_SEC)), 0);
	weft_close(p->c);
	weft_close(p->lfd);
	return NULL;
}

static void *write_later(void *a)
{
	usleep(50 * 1000);
	ssize_t n = write((int)(intptr_t)a, "z", 1);
	(void)n;
	return NULL;
}

/* In rt2: a new socket given number `want` (the closed one) is polled by
 * rt2: a read that waits for its data wakes when it comes. */
static void *reuse_number(void *a)
{
	int want = (int)(intptr_t)a;
	int sv[2];
	TCHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	/* want is free, so the pair may have got it (the lowest free number,
	 * when the other ends' closes have not completed yet): move things so
	 * that sv[0]'s socket is `want` and sv[1] is not. */
	if (sv[1] == want) {
		int moved = fcntl(sv[1], F_DUPFD_CLOEXEC, want + 1);
		TCHECK(moved > want);
		close(sv[1]);
		sv[1] = moved;
	}
	if (sv[0] != want) {
		TCHECK_EQ(dup3(sv[0], want, O_CLOEXEC), want); /* want is free: nothing is replaced */
		close(sv[0]);
	}
	for (int round = 0; round < 2; round++) { /* the first read registers, the second waits registered */
		pthread_t th;
		TCHECK_EQ(pthread_create(&th, NULL, write_later, (void *)(intptr_t)sv[1]), 0);
		char b = 0;
		TCHECK_EQ(weft_read(want, &b, 1, weft_deadline_in(2 * WEFT_SEC)), 1);
		TCHECK_EQ(b, 'z');
		pthread_join(th, NULL);
	}
	weft_close(want);
	close(sv[1]);
	return NULL;
}

static void *close_fd_thread(void *a)
{
	return (void *)(intptr_t)weft_close((int)(intptr_t)a);
}

/* The server end of a pair registered in rt2 is closed by closer(fd). */
static void close_elsewhere_case(int (*closer)(int))
{
	pair p;
	in_rt2(make_pair, &p);
	TCHECK_EQ(closer(p.s), 0);
	in_rt2(sees_eof, &p);
	in_rt2(reuse_number, (void *)(intptr_t)p.s);
}

static int close_from_plain_thread(int fd)
{
	pthread_t th;
	void *r;
	TCHECK_EQ(pthread_create(&th, NULL, close_fd_thread, (void *)(intptr_t)fd), 0);
	pthread_join(th, &r);
	return (int)(intptr_t)r;
}

static void *plain_thread_main(void *a)
{
	(void)a;
	TCHECK_EQ(weft_runtime_start(&g_rt2, &(weft_config_t){.workers = 1}), 0);
	TCHECK(weft_io_backend(NULL) != NULL); /* the default runtime polls too */
	close_elsewhere_case(close_from_plain_thread);
	return NULL;
}

/* Two runtimes; a descriptor registered by the second is closed by a
 * plain thread (whose current runtime is the first, the default). */
static void test_close_from_plain_thread(void **state)
{
	(void)state;
	wt_run(plain_thread_main, NULL, 1);
	assert_int_equal(weft_runtime_stop(g_rt2), 0);
}

static void *other_task_main(void *a)
{
	(void)a;
	TCHECK_EQ(weft_runtime_start(&g_rt2, &(weft_config_t){.workers = 1}), 0);
	close_elsewhere_case(weft_close); /* from this task, of the first runtime */
	return NULL;
}

static void test_close_from_other_runtime(void **state)
{
	(void)state;
	wt_run(other_task_main, NULL, 1);
	assert_int_equal(weft_runtime_stop(g_rt2), 0);
}

/* The same with the first runtime never polling: the plain thread's
 * current runtime has no poller at all. */
static void test_close_without_default_poller(void **state)
{
	(void)state;
	atomic_store(&tcheck_failures, 0);
	weft_runtime_t *rt1;
	assert_int_equal(weft_runtime_start(&rt1, &(weft_config_t){.workers = 1}), 0);
	assert_int_equal(weft_runtime_start(&g_rt2, &(weft_config_t){.workers = 1}), 0);
	close_elsewhere_case(weft_close); /* this test thread is a plain thread */
	assert_int_equal(weft_runtime_stop(g_rt2), 0);
	assert_int_equal(weft_runtime_stop(rt1), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* ------------------------------------------------------------ weft_io_backend */

static void *own_backend(void *a)
{
	(void)a;
	return (void *)weft_io_backend(NULL);
}

static void *backend_main(void *a)
{
	(void)a;
	TCHECK_EQ(weft_runtime_start(&g_rt2, &(weft_config_t){.workers = 1}), 0);
	/* rt2 has done no I/O: asking installs its poller, from this task of
	 * another runtime. */
	const char *b2 = weft_io_backend(g_rt2);
	TCHECK(b2 != NULL);
	const char *b1 = weft_io_backend(NULL);
	TCHECK(b1 != NULL);
	if (b1 && b2) {
		TCHECK(strcmp(b2, "epoll") == 0 || strcmp(b2, "uring") == 0);
		TCHECK(strcmp(b1, b2) == 0); /* both chosen by WEFT_IO */
		const char *seen = in_rt2(own_backend, NULL);
		TCHECK(seen && strcmp(seen, b2) == 0); /* the poller rt2 uses */
	}
	return NULL;
}

static void test_backend_of_other_runtime(void **state)
{
	(void)state;
	wt_run(backend_main, NULL, 1);
	assert_int_equal(weft_runtime_stop(g_rt2), 0);
}

/* From a plain thread, for a runtime that is not the default. */
static void test_backend_from_plain_thread(void **state)
{
	(void)state;
	weft_runtime_t *rt1;
	assert_int_equal(weft_runtime_start(&rt1, &(weft_config_t){.workers = 1}), 0);
	assert_int_equal(weft_runtime_start(&g_rt2, &(weft_config_t){.workers = 1}), 0);
	assert_non_null(weft_io_backend(g_rt2));
	assert_non_null(weft_io_backend(rt1));
	assert_string_equal(weft_io_backend(g_rt2), weft_io_backend(NULL));
	assert_int_equal(weft_runtime_stop(g_rt2), 0);
	assert_int_equal(weft_runtime_stop(rt1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		WT_IO_TEST(test_close_from_plain_thread),      WT_IO_TEST(test_close_from_other_runtime),
		WT_IO_TEST(test_close_without_default_poller), WT_IO_TEST(test_backend_of_other_runtime),
		WT_IO_TEST(test_backend_from_plain_thread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
