/* test_socket_lifetime.c - the destroy rule (io.h): an object may be closed
 * or freed as soon as every call on it has returned, in particular by the
 * side a wake-up let go, while the waker may still be finishing. Stress
 * tests for each kind, meant for ASan (a touch after the wake-up is a
 * use-after-free there) and TSan: sockets closed by their reader right
 * after its read returns while the poller dispatches a burst of reports;
 * stackless readers that free their state (and its op) in the step that
 * finishes; blocking-pool callers that free the job's argument and end at
 * once; processes destroyed as soon as their wait returns; servers whose
 * descriptors are all closed when weft_server_stop returns; signal channels
 * released as soon as a signal is received. Run on both backends. */
#include "wt_io.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PAIRS WT_SIZE(64, 32)
#define ROUNDS WT_SIZE(40, 20)

/* ------------------------------------------------------------ sockets */

static _Atomic long got;

/* Read one byte, close the socket at once (its number is reused by the
 * next round's socketpair while the poller may still be dispatching this
 * round's burst). */
static void *read_then_close(void *a)
{
	int fd = (int)(intptr_t)a;
	char b;
	ssize_t n = weft_read(fd, &b, 1, weft_deadline_in(10 * WEFT_SEC));
	weft_close(fd);
	TCHECK_EQ(n, 1);
	if (n == 1)
		atomic_fetch_add(&got, 1);
	return NULL;
}

struct burst {
	int *fds, n;
};

/* A plain thread writes to every socket of the round in one burst, so the
 * poller reports them in one batch. */
static void *write_burst(void *a)
{
	struct burst *b = a;
	for (int i = 0; i < b->n; i++)
		TCHECK_EQ(write(b->fds[i], "x", 1), 1);
	return NULL;
}

static void *sockets_main(void *a)
{
	(void)a;
	atomic_store(&got, 0);
	for (int round = 0; round < ROUNDS; round++) {
		int rd[PAIRS], wr[PAIRS];
		weft_task_t t[PAIRS];
		for (int i = 0; i < PAIRS; i++) {
			int sv[2];
			TCHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
			rd[i] = sv[0];
			wr[i] = sv[1];
			t[i] = wt_spawn(read_then_close, (void *)(intptr_t)rd[i]);
		}
		weft_sleep(WEFT_MSEC); /* most readers are parked */
		struct burst b = {wr, PAIRS};
		pthread_t th;
		TCHECK_EQ(pthread_create(&th, NULL, write_burst, &b), 0);
		for (int i = 0; i < PAIRS; i++)
			wt_join(t[i]);
		pthread_join(th, NULL);
		for (int i = 0; i < PAIRS; i++)
			close(wr[i]);
	}
	TCHECK_EQ(atomic_load(&got), (long)ROUNDS * PAIRS); /* nothing lost */
	return NULL;
}

static void test_reader_closes_at_once(void **state)
{
	(void)state;
	wt_run(sockets_main, NULL, 2);
}

/* ------------------------------------------------------------ stackless */

typedef struct sread {
	int fd;
	weft_op_t op;
	char buf[16];
} sread;

/* Frees its own state, op included, in the step that finishes. */
static weft_step_t sread_step(void *a, void **res)
{
	sread *s = a;
	ssize_t n = weft_read_step(s->fd, s->buf, sizeof s->buf, weft_deadline_in(10 * WEFT_SEC), &s->op);
	if (n == -EINPROGRESS)
		return WEFT_STEP_PARKED;
	weft_close(s->fd);
	free(s);
	*res = (void *)(intptr_t)n;
	return WEFT_STEP_DONE;
}

static void *stackless_main(void *a)
{
	(void)a;
	for (int round = 0; round < ROUNDS; round++) {
		int wr[PAIRS];
		weft_task_t t[PAIRS];
		for (int i = 0; i < PAIRS; i++) {
			int sv[2];
			TCHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
			sread *s = calloc(1, sizeof *s);
			s->fd = sv[0];
			wr[i] = sv[1];
			TCHECK_EQ(weft_spawn_step(&t[i], sread_step, s, NULL), 0);
		}
		weft_sleep(WEFT_MSEC);
		struct burst b = {wr, PAIRS};
		pthread_t th;
		TCHECK_EQ(pthread_create(&th, NULL, write_burst, &b), 0);
		for (int i = 0; i < PAIRS; i++) {
			void *r = NULL;
			TCHECK_EQ(weft_join(t[i], &r), 0);
			TCHECK_EQ((intptr_t)r, 1);
		}
		pthread_join(th, NULL);
		for (int i = 0; i < PAIRS; i++)
			close(wr[i]);
	}
	return NULL;
}

static void test_stackless_frees_state(void **state)
{
	(void)state;
	wt_run(stackless_main, NULL, 2);
}

/* ------------------------------------------------------------ blocking pool */

static void *job(void *a)
{
	long *v = a;
	*v += 1;
	return (void *)(*v);
}

/* The job's argument is freed, and the task (its stack, with the job
 * struct) ends, as soon as weft_blocking returns. */
static void *blocking_caller(void *a)
{
	(void)a;
	long *v = malloc(sizeof *v);
	*v = 41;
	void *r = NULL;
	TCHECK_EQ(weft_blocking(job, v, &r), 0);
	free(v);
	TCHECK_EQ((intptr_t)r, 42);
	return NULL;
}

static void *blocking_main(void *a)
{
	(void)a;
	int n = WT_SIZE(2000, 400);
	for (int i = 0; i < n; i++)
		TCHECK_EQ(weft_spawn(NULL, blocking_caller, NULL, &(weft_spawn_opts_t){.detached = true}), 0);
	weft_blocking_stats_t st;
	weft_time_t give_up = weft_deadline_in(60 * WEFT_SEC);
	do {
		weft_sleep(WEFT_MSEC);
		TCHECK_EQ(weft_blocking_stats(NULL, &st), 0);
	} while (st.completed < (uint64_t)n && weft_now() < give_up);
	TCHECK_EQ(st.completed, n);
	return NULL;
}

static void test_blocking_caller_frees_at_once(void **state)
{
	(void)state;
	wt_run(blocking_main, NULL, 2);
}

/* ------------------------------------------------------------ processes */

static void *process_waiter(void *a)
{
	(void)a;
	weft_process_t *p;
	weft_process_opts_t o = {.stdio = {WEFT_STDIO_NULL, WEFT_STDIO_PIPE, WEFT_STDIO_NULL}};
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"true", NULL}, &o), 0);
	char b[8];
	TCHECK_EQ(weft_process_read(p, WEFT_STDOUT, b, sizeof b, weft_deadline_in(20 * WEFT_SEC)), 0);
	weft_exit_status_t st;
	TCHECK_EQ(weft_process_wait(p, &st, weft_deadline_in(20 * WEFT_SEC)), 0);
	TCHECK_EQ(weft_process_destroy(p), 0); /* at once */
	TCHECK_EQ(st.code, 0);
	return NULL;
}

static void *process_main(void *a)
{
	(void)a;
	int n = WT_SIZE(64, 16);
	weft_task_t *t = calloc((size_t)n, sizeof *t);
	for (int i = 0; i < n; i++)
		t[i] = wt_spawn(process_waiter, NULL);
	for (int i = 0; i < n; i++)
		wt_join(t[i]);
	free(t);
	return NULL;
}

static void test_process_destroyed_at_once(void **state)
{
	(void)state;
	wt_run(process_main, NULL, 2);
}

/* ------------------------------------------------------------ servers */

/* Sockets open in this process: what a server owns. (Counting every
 * descriptor would also count ones other code opens for a moment, such as
 * Valgrind reading /proc.) With `dump`, print them. */
static int socket_count(bool dump)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;
	while (d && (e = readdir(d))) {
		char path[300], target[256] = "";
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t l = readlink(path, target, sizeof target - 1);
		if (l > 0 && strncmp(target, "socket:", 7) == 0) {
			n++;
			if (dump)
				fprintf(stderr, "  fd %s -> %s\n", e->d_name, target);
		}
	}
	if (d)
		closedir(d);
	return n;
}

/* Read until the client's end of file, then return (the server closes). */
static void drain_conn(int fd, void *ctx)
{
	(void)ctx;
	char b[64];
	while (weft_read(fd, b, sizeof b, weft_deadline_in(10 * WEFT_SEC)) > 0) {
	}
}

static void *serve_task(void *a)
{
	return (void *)(intptr_t)weft_server_serve(a);
}

/* When weft_server_stop returns, every descriptor the server owned (each
 * connection's, the listener) is closed: the owner destroys the server and
 * counts sockets at once. The connections end while stop runs. */
static void *server_main(void *a)
{
	(void)a;
	int conns = WT_SIZE(24, 8);
	for (int round = 0; round < ROUNDS; round++) {
		int before = socket_count(false);
		int lfd = weft_tcp_listen("127.0.0.1", 0, 64);
		TCHECK(lfd >= 0);
		int port = weft_local_port(lfd);
		weft_server_t *s;
		TCHECK_EQ(weft_server_create(&s, lfd, drain_conn, NULL, NULL), 0);
		weft_task_t t = wt_spawn(serve_task, s);
		int *c = calloc((size_t)conns, sizeof *c);
		for (int i = 0; i < conns; i++) {
			c[i] = weft_tcp_connect("127.0.0.1", (uint16_t)port, weft_deadline_in(5 * WEFT_SEC));
			TCHECK(c[i] >= 0);
		}
		while (weft_server_conns(s) < conns)
			weft_sleep(WEFT_MSEC / 4);
		for (int i = 0; i < conns; i++)
			shutdown(c[i], SHUT_WR); /* every handler returns now */
		TCHECK_EQ(weft_server_stop(s, weft_deadline_in(10 * WEFT_SEC)), 0);
		/* serve has returned (stop waited for it); its task may still be
		 * finishing, which touches nothing of ours. */
		TCHECK_EQ(weft_server_destroy(s), 0);
		int open_now = socket_count(false);
		if (open_now != before + conns) {
			fprintf(stderr, "round %d: %d sockets open after stop, want %d\n", round, open_now,
				before + conns);
			socket_count(true);
		}
		TCHECK_EQ(open_now, before + conns); /* only the clients' */
		void *r;
		TCHECK_EQ(weft_join(t, &r), 0);
		TCHECK_EQ((intptr_t)r, 0);
		for (int i = 0; i < conns; i++)
			weft_close(c[i]);
		free(c);
	}
	return NULL;
}

static void test_server_closed_when_stop_returns(void **state)
{
	(void)state;
	wt_run(server_main, NULL, 2);
}

/* ------------------------------------------------------------ signals */

static void *signal_receiver(void *a)
{
	(void)a;
	for (int i = 0; i < WT_SIZE(50, 15); i++) {
		weft_chan_t *ch;
		TCHECK_EQ(weft_chan_create(&ch, sizeof(int), 4), 0);
		TCHECK_EQ(weft_signal_notify(ch, (int[]){SIGUSR2}, 1), 0);
		kill(getpid(), SIGUSR2);
		int s = 0;
		TCHECK_EQ(weft_chan_recv_until(ch, &s, weft_deadline_in(10 * WEFT_SEC)), 0);
		TCHECK_EQ(s, SIGUSR2);
		/* at once: stop and drop the last reference */
		TCHECK_EQ(weft_signal_stop(ch), 0);
		TCHECK_EQ(weft_chan_release(ch), 0);
	}
	return NULL;
}

static void test_signal_channel_released_at_once(void **state)
{
	(void)state;
	/* Blocked in every thread (workers inherit the mask), as io.h
	 * recommends: the signal then waits for the signalfd instead of
	 * interrupting a worker (under TSan, a worker asleep in a raw system
	 * call would run the forwarding handler only when it wakes). */
	sigset_t usr2, old;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, &old);
	wt_run(signal_receiver, NULL, 2);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		WT_IO_TEST(test_reader_closes_at_once),		  WT_IO_TEST(test_stackless_frees_state),
		WT_IO_TEST(test_blocking_caller_frees_at_once),	  WT_IO_TEST(test_process_destroyed_at_once),
		WT_IO_TEST(test_server_closed_when_stop_returns), WT_IO_TEST(test_signal_channel_released_at_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
