/* test_server.c - the server helper: echo under a connection limit, graceful
 * stop (and forced at the deadline), connections on the weft, threads and
 * libuv executors, EMFILE recovery,
 * cancellation of the accept loop, bad input. */
#include "io/wt_io.h"

#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define MSG 64

static _Atomic int live, max_live;

static void echo_handler(int fd, void *ctx)
{
	(void)ctx;
	int n = atomic_fetch_add(&live, 1) + 1;
	int m = atomic_load(&max_live);
	while (n > m && !atomic_compare_exchange_weak(&max_live, &m, n))
		;
	char buf[4096];
	for (;;) {
		ssize_t r = weft_read(fd, buf, sizeof buf, WEFT_NEVER);
		if (r <= 0 || weft_write_all(fd, buf, (size_t)r, WEFT_NEVER, NULL) != r)
			break;
	}
	atomic_fetch_sub(&live, 1);
}

static void *serve_task(void *a)
{
	return (void *)(intptr_t)weft_server_serve(a);
}

static intptr_t join_result(weft_task_t t)
{
	void *r = NULL;
	TCHECK_EQ(weft_join(t, &r), 0);
	return (intptr_t)r;
}

/* A client: connect, `rounds` echoes of MSG bytes, close. Returns rounds done. */
static int g_port;
static int barrier_n; /* see the limit test */
static _Atomic int at_barrier;

static void *client(void *a)
{
	int rounds = (int)(intptr_t)a;
	int fd = weft_tcp_connect("127.0.0.1", (uint16_t)g_port, wt_hang_deadline());
	TCHECK(fd >= 0);
	if (fd < 0)
		return (void *)(intptr_t)fd;
	unsigned char out[MSG], in[MSG];
	int done = 0;
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < MSG; i++)
			out[i] = (unsigned char)(fd * 7 + r * 13 + i);
		/* A queued connection waits for every one served before it. */
		if (weft_write_all(fd, out, MSG, wt_hang_deadline(), NULL) != MSG)
			break;
		if (weft_read_full(fd, in, MSG, wt_hang_deadline(), NULL) != MSG || memcmp(in, out, MSG))
			break;
		if (done++ == 0 && barrier_n > 0) {
			/* The first barrier_n clients through their first echo wait
			 * for each other, holding their connections. */
			if (atomic_fetch_add(&at_barrier, 1) < barrier_n)
				WT_WAIT_UNTIL(atomic_load(&at_barrier) >= barrier_n);
		}
	}
	weft_close(fd);
	return (void *)(intptr_t)done;
}

static weft_server_t *start(int max_conns, weft_conn_fn_t fn, weft_task_t *serve, const weft_server_opts_t *o)
{
	int lfd = weft_tcp_listen("127.0.0.1", 0, 1024);
	TCHECK(lfd >= 0);
	g_port = weft_local_port(lfd);
	weft_server_opts_t opts = o ? *o : (weft_server_opts_t){0};
	opts.max_conns = max_conns;
	weft_server_t *s = NULL;
	TCHECK_EQ(weft_server_create(&s, lfd, fn, NULL, &opts), 0);
	*serve = wt_spawn(serve_task, s);
	return s;
}

/* ------------------------------------------------------------ limit */

/* The limit holds (never more than 8 handlers at once) and is reached:
 * the first 8 clients to get an echo back wait for each other before
 * they go on, so 8 connections are live at once. They are the 8 the
 * server accepted - no other client can get an echo while they hold
 * theirs - so the wait ends, whatever the speed and the interleaving. */
#define CLIENTS WT_SIZE(200, 40)
#define LIMIT 8

static void *limit_main(void *a)
{
	(void)a;
	atomic_store(&live, 0);
	atomic_store(&max_live, 0);
	atomic_store(&at_barrier, 0);
	barrier_n = LIMIT;
	weft_task_t serve;
	weft_server_t *s = start(LIMIT, echo_handler, &serve, NULL);
	weft_task_t *cs = calloc(CLIENTS, sizeof *cs);
	for (int i = 0; i < CLIENTS; i++)
		cs[i] = wt_spawn(client, (void *)(intptr_t)20);
	for (int i = 0; i < CLIENTS; i++)
		TCHECK_EQ(join_result(cs[i]), 20);
	free(cs);
	barrier_n = 0;
	TCHECK_EQ(atomic_load(&max_live), LIMIT);
	TCHECK_EQ(weft_server_stop(s, wt_hang_deadline()), 0);
	TCHECK_EQ(join_result(serve), 0);
	TCHECK_EQ(weft_server_accepted(s), CLIENTS);
	TCHECK_EQ(weft_server_conns(s), 0);
	TCHECK_EQ(weft_server_stop(s, WEFT_NEVER), -EALREADY);
	TCHECK_EQ(weft_server_destroy(s), 0);
	/* The listener is closed: nobody accepts any more. */
	TCHECK_EQ(weft_tcp_connect("127.0.0.1", (uint16_t)g_port, wt_hang_deadline()), -ECONNREFUSED);
	return NULL;
}

static void test_limit(void **state)
{
	(void)state;
	wt_run(limit_main, NULL, 0);
}

/* ------------------------------------------------------------ stop */

static void idle_handler(int fd, void *ctx)
{
	(void)ctx;
	char b[16];
	while (weft_read(fd, b, sizeof b, WEFT_NEVER) > 0)
		;
}

/* Returns once s's accept loop runs: it has accepted a connection, which
 * has ended again. */
static void wait_serving(weft_server_t *s)
{
	int c = weft_tcp_connect("127.0.0.1", (uint16_t)g_port, wt_hang_deadline());
	TCHECK(c >= 0);
	WT_WAIT_UNTIL(weft_server_accepted(s) >= 1);
	weft_close(c);
	WT_WAIT_UNTIL(weft_server_conns(s) == 0);
}

static void *stop_main(void *a)
{
	(void)a;
	/* Nothing connected: stop returns at once. A server whose serve has
	 * not begun yet is not busy (destroy would free it under the serve
	 * task), so first see it serve: one connection, accepted and ended. */
	weft_task_t serve;
	weft_server_t *s = start(0, idle_handler, &serve, NULL);
	wait_serving(s);
	TCHECK_EQ(weft_server_destroy(s), -EBUSY);
	TCHECK_EQ(weft_server_stop(s, wt_hang_deadline()), 0);
	TCHECK_EQ(join_result(serve), 0);
	TCHECK_EQ(weft_server_destroy(s), 0);

	/* Idle connections that never end: shut down at the deadline. */
	s = start(0, idle_handler, &serve, NULL);
	int c[3];
	for (int i = 0; i < 3; i++)
		c[i] = weft_tcp_connect("127.0.0.1", (uint16_t)g_port, wt_hang_deadline());
	WT_WAIT_UNTIL(weft_server_conns(s) == 3);
	weft_time_t t0 = weft_now();
	TCHECK_EQ(weft_server_stop(s, weft_deadline_in(30 * WEFT_MSEC)), -ETIMEDOUT);
	TCHECK(weft_now() - t0 >= 30 * WEFT_MSEC);
	TCHECK_EQ(weft_server_conns(s), 0);
	TCHECK_EQ(join_result(serve), 0);
	TCHECK_EQ(weft_server_destroy(s), 0);
	char b[4];
	for (int i = 0; i < 3; i++) {
		TCHECK_EQ(weft_read(c[i], b, sizeof b, wt_hang_deadline()), 0); /* the server hung up */
		weft_close(c[i]);
	}

	/* A server that never served: destroy closes its listener. */
	int lfd = weft_tcp_listen("127.0.0.1", 0, 4);
	TCHECK_EQ(weft_server_create(&s, lfd, idle_handler, NULL, NULL), 0);
	TCHECK_EQ(weft_server_destroy(s), 0);
	return NULL;
}

static void test_stop(void **state)
{
	(void)state;
	wt_run(stop_main, NULL, 2);
}

/* ------------------------------------------------------------ executors */

/* The server on each executor: connection tasks as coroutines of the
 * runtime (a weft executor), as plain threads of a pool (threads), and as
 * work on libuv's pool of 4 threads (libuv: the 10 connections take turns,
 * each holding a pool thread until its client is done). A counting wrapper
 * around each one checks that every connection went through it. */
struct counted {
	weft_exec_t *inner;
	_Atomic int spawns;
};

static int counted_spawn(void *ctx, uint64_t *id, weft_fn_t fn, void *arg, const weft_exec_spawn_opts_t *o)
{
	struct counted *c = ctx;
	TCHECK(id == NULL); /* the server's connection tasks are detached */
	TCHECK(o->stack_size == 32 << 10 && o->name && strcmp(o->name, "conn") == 0);
	atomic_fetch_add(&c->spawns, 1);
	return weft_exec_spawn(c->inner, NULL, fn, arg, o);
}

static int counted_wait(void *ctx, uint64_t id, void **result, weft_time_t deadline, weft_op_t *op)
{
	(void)ctx, (void)id, (void)result, (void)deadline, (void)op;
	return -ESRCH; /* it hands out no handles */
}

static int counted_detach(void *ctx, uint64_t id)
{
	(void)ctx, (void)id;
	return -ESRCH;
}

static int counted_destroy(void *ctx)
{
	(void)ctx;
	return 0;
}

static void *executor_main(void *a)
{
	weft_exec_t *inner = a;
	struct counted c = {inner, 0};
	weft_exec_ops_t ops = {.name = "counted",
			       .spawn = counted_spawn,
			       .wait = counted_wait,
			       .detach = counted_detach,
			       .destroy = counted_destroy};
	weft_exec_t *ex;
	TCHECK_EQ(weft_exec_create(&ex, &ops, &c), 0);
	weft_task_t serve;
	weft_server_t *s = start(0, echo_handler, &serve, &(weft_server_opts_t){.exec = ex, .stack_size = 32 << 10});
	weft_task_t cs[10];
	for (int i = 0; i < 10; i++)
		cs[i] = wt_spawn(client, (void *)(intptr_t)5);
	for (int i = 0; i < 10; i++)
		TCHECK_EQ(join_result(cs[i]), 5);
	TCHECK_EQ(weft_server_stop(s, wt_hang_deadline()), 0);
	TCHECK_EQ(join_result(serve), 0);
	TCHECK_EQ(atomic_load(&c.spawns), 10);
	TCHECK_EQ(weft_server_destroy(s), 0);
	TCHECK_EQ(weft_exec_destroy(ex), 0);
	return NULL;
}

static void *executor_weft_main(void *a)
{
	(void)a;
	weft_exec_t *ex;
	TCHECK_EQ(weft_exec_create_runtime(&ex, NULL), 0);
	executor_main(ex);
	TCHECK_EQ(weft_exec_destroy(ex), 0);
	return NULL;
}

static void *executor_threads_main(void *a)
{
	(void)a;
	weft_exec_t *ex;
	TCHECK_EQ(weft_exec_create_threads(&ex, NULL), 0);
	executor_main(ex);
	TCHECK_EQ(weft_exec_destroy(ex), 0); /* waits for the connection threads to end */
	return NULL;
}

static void *executor_uv_main(void *a)
{
	(void)a;
	weft_exec_t *ex;
	int e = weft_exec_create_uv(&ex, NULL);
	if (e == -ENOTSUP) {
		fprintf(stderr, "  libuv: skipped (weft was built without it: -DWEFT_LIBUV=OFF)\n");
		return NULL;
	}
	TCHECK_EQ(e, 0);
	executor_main(ex);
	TCHECK_EQ(weft_exec_destroy(ex), 0); /* waits for the connection tasks to end */
	return NULL;
}

static void test_executors(void **state)
{
	(void)state;
	wt_run(executor_weft_main, NULL, 2);
	wt_run(executor_threads_main, NULL, 2);
	wt_run(executor_uv_main, NULL, 2);
}

/* ------------------------------------------------------------ EMFILE */

/* Connect K clients first, then lower RLIMIT_NOFILE so that the server can
 * accept only a few: it must keep serving those, back off on EMFILE, and
 * accept the rest as descriptors free up. */
#define EMFILE_K 24

typedef struct {
	int fd, done;
} emc;

static void *emfile_client(void *a)
{
	emc *c = a;
	unsigned char out[MSG], in[MSG];
	memset(out, c->fd, MSG);
	if (weft_write_all(c->fd, out, MSG, wt_hang_deadline(), NULL) == MSG &&
	    weft_read_full(c->fd, in, MSG, wt_hang_deadline(), NULL) == MSG && memcmp(in, out, MSG) == 0)
		c->done = 1;
	weft_close(c->fd); /* frees a descriptor: the server can accept one more */
	return NULL;
}

static void *emfile_main(void *a)
{
	(void)a;
	int lfd = weft_tcp_listen("127.0.0.1", 0, 1024);
	g_port = weft_local_port(lfd);
	weft_server_t *s;
	TCHECK_EQ(weft_server_create(&s, lfd, echo_handler, NULL, NULL), 0);
	emc cs[EMFILE_K];
	for (int i = 0; i < EMFILE_K; i++) {
		cs[i].fd = weft_tcp_connect("127.0.0.1", (uint16_t)g_port, wt_hang_deadline());
		cs[i].done = 0;
		TCHECK(cs[i].fd >= 0); /* connected: waiting in the listen queue */
	}
	/* Room for 3 more descriptors, then start serving. */
	struct rlimit old, low;
	TCHECK_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
	int lim = 0;
	for (int free_slots = 0; free_slots < 3; lim++)
		if (fcntl(lim, F_GETFD) < 0)
			free_slots++;
	low = old;
	low.rlim_cur = (rlim_t)lim; /* exactly 3 free numbers below the limit */
	TCHECK_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
	weft_task_t serve = wt_spawn(serve_task, s);
	WT_WAIT_UNTIL(weft_server_accepted(s) >= 3);
	weft_sleep(30 * WEFT_MSEC);	       /* room for an accept too many to show up */
	TCHECK_EQ(weft_server_accepted(s), 3); /* the rest hit EMFILE */
	TCHECK_EQ(weft_server_conns(s), 3);
	weft_task_t ts[EMFILE_K];
	for (int i = 0; i < EMFILE_K; i++)
		ts[i] = wt_spawn(emfile_client, &cs[i]);
	for (int i = 0; i < EMFILE_K; i++)
		wt_join(ts[i]);
	TCHECK_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
	int done = 0;
	for (int i = 0; i < EMFILE_K; i++)
		done += cs[i].done;
	TCHECK_EQ(done, EMFILE_K);
	TCHECK_EQ(weft_server_accepted(s), EMFILE_K);
	TCHECK_EQ(weft_server_stop(s, wt_hang_deadline()), 0);
	TCHECK_EQ(join_result(serve), 0);
	TCHECK_EQ(weft_server_destroy(s), 0);
	return NULL;
}

static void test_emfile(void **state)
{
	(void)state;
	/* Valgrind emulates RLIMIT_NOFILE (the kernel's limit stays): it closes
	 * a descriptor that accept4 returned above its limit and reports
	 * EMFILE, so the connection is lost instead of waiting in the queue. */
	if (getenv("WEFT_TEST_VALGRIND"))
		skip();
	wt_run(emfile_main, NULL, 2);
}

/* ------------------------------------------------------------ cancel, bad input */

static void *cancel_main(void *a)
{
	(void)a;
	weft_task_t serve;
	weft_server_t *s = start(0, echo_handler, &serve, NULL);
	wait_serving(s); /* cancelled in its accept loop, not before it */
	weft_cancel(serve);
	TCHECK_EQ(join_result(serve), -ECANCELED);
	TCHECK_EQ(weft_tcp_connect("127.0.0.1", (uint16_t)g_port, wt_hang_deadline()), -ECONNREFUSED);
	TCHECK_EQ(weft_server_serve(s), -EBUSY); /* once */
	TCHECK_EQ(weft_server_stop(s, WEFT_NEVER), 0);
	TCHECK_EQ(weft_server_destroy(s), 0);

	weft_server_t *x;
	int lfd = weft_tcp_listen("127.0.0.1", 0, 4);
	TCHECK_EQ(weft_server_create(&x, lfd, NULL, NULL, NULL), -EINVAL); /* closes lfd */
	TCHECK_EQ(weft_close(lfd), -EBADF);
	TCHECK_EQ(weft_server_create(&x, -1, echo_handler, NULL, NULL), -EBADF);
	TCHECK_EQ(weft_server_serve(NULL), -EINVAL);
	TCHECK_EQ(weft_server_stop(NULL, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_server_destroy(NULL), -EINVAL);
	return NULL;
}

static void test_cancel_bad_input(void **state)
{
	(void)state;
	wt_run(cancel_main, NULL, 2);
}

int main(void)
{
	/* libuv opens a pipe for the whole process with its first loop (the
	 * lock of its signal handling) and keeps it: open it before the tests
	 * count descriptors. */
	weft_exec_t *ex;
	if (weft_exec_create_uv(&ex, NULL) == 0)
		assert_int_equal(weft_exec_destroy(ex), 0);
	const struct CMUnitTest tests[] = {
		WT_IO_TEST(test_limit),
		WT_IO_TEST(test_stop),
		WT_IO_TEST(test_executors),
		WT_IO_TEST(test_emfile),
		WT_IO_TEST(test_cancel_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
