/* test_step_dial.c - weft_tcp_connect_step and weft_unix_connect_step
 * through the step protocol of weft/sched.h: connecting to a numeric
 * address and to a name (looked up on the blocking pool first, registered
 * meanwhile); refusals; a past deadline; a deadline and a cancellation
 * while the lookup waits for a pool thread (no socket is made) and while
 * the connect waits (the socket is closed); second registrations (-EBUSY)
 * in either wait; a connect that registers and completes on the repeat;
 * the op freed by the step that completes; coroutines and plain threads,
 * which block. Every test leaves as many descriptors open as it found
 * (WT_IO_TEST). Run on both backends.
 *
 * No check depends on timing: a connect is held by a listener whose
 * accept queue is full (the kernel drops the SYN until there is room), a
 * lookup by the pool's only thread, held by a job that waits for a pipe
 * (test_blocking_step.c does the same), and the test acts on a registered
 * call only once the task has said it registered. The deadline case that
 * needs the deadline to pass while the task is registered retries with a
 * longer one when the task ran too late to register. */
#include "wt_io.h"
#include "wt_step_task.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

/* A listener whose accept queue is full: a connect to it hangs (see
 * test_socket.c: TCP_INFO of a listener gives the accept queue's length,
 * tcpi_unacked, and its limit, tcpi_sacked). */
typedef struct full {
	int lfd, port;
	int fill[8], nfill;
} full;

static int accept_queue_len(int lfd)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	TCHECK_EQ(getsockopt(lfd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	return (int)ti.tcpi_unacked;
}

static bool accept_queue_full(int lfd)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	TCHECK_EQ(getsockopt(lfd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	return ti.tcpi_unacked > ti.tcpi_sacked;
}

static void full_open(full *f)
{
	f->lfd = weft_tcp_listen("127.0.0.1", 0, 1);
	TCHECK(f->lfd >= 0);
	f->port = weft_local_port(f->lfd);
	f->nfill = 0;
	while (!accept_queue_full(f->lfd) && f->nfill < 8) {
		int r = weft_tcp_connect("127.0.0.1", (uint16_t)f->port, wt_hang_deadline());
		TCHECK(r >= 0);
		if (r < 0)
			break;
		f->fill[f->nfill++] = r;
		/* its handshake's last ACK is queued on the listener's side too */
		WT_WAIT_UNTIL(accept_queue_len(f->lfd) == f->nfill);
	}
	TCHECK(accept_queue_full(f->lfd));
}

static void full_close(full *f)
{
	for (int i = 0; i < f->nfill; i++)
		weft_close(f->fill[i]);
	weft_close(f->lfd);
}

/* The pool limited to one thread, held until release_pool. */
typedef struct hold {
	int p[2];
	_Atomic int started;
	weft_task_t t;
} hold;

static void *hold_job(void *a)
{
	hold *h = a;
	atomic_store(&h->started, 1);
	char c;
	TCHECK_EQ(read(h->p[0], &c, 1), 1);
	return NULL;
}

static void *hold_task(void *a)
{
	TCHECK_EQ(weft_blocking(hold_job, a, NULL), 0);
	return NULL;
}

static void hold_pool(hold *h)
{
	TCHECK_EQ(weft_blocking_set_limits(NULL, 1, 0), 0);
	TCHECK_EQ(pipe2(h->p, O_CLOEXEC), 0);
	atomic_store(&h->started, 0);
	h->t = wt_spawn(hold_task, h);
	WT_WAIT_UNTIL(atomic_load(&h->started));
}

static void release_pool(hold *h)
{
	TCHECK_EQ(write(h->p[1], "x", 1), 1);
	wt_join(h->t);
	close(h->p[0]);
	close(h->p[1]);
	TCHECK_EQ(weft_blocking_set_limits(NULL, 128, 0), 0);
}

/* Whether fd is connected to a peer that accepted it on lfd: a byte each
 * way. */
static void check_connected(int fd, int lfd)
{
	TCHECK(fd >= 0);
	if (fd < 0)
		return;
	int s = weft_accept(lfd, NULL, NULL, wt_hang_deadline());
	TCHECK(s >= 0);
	char b = 0;
	TCHECK_EQ(weft_write(fd, "a", 1, wt_hang_deadline()), 1);
	TCHECK_EQ(weft_read(s, &b, 1, wt_hang_deadline()), 1);
	TCHECK_EQ(b, 'a');
	TCHECK_EQ(weft_write(s, "b", 1, wt_hang_deadline()), 1);
	TCHECK_EQ(weft_read(fd, &b, 1, wt_hang_deadline()), 1);
	TCHECK_EQ(b, 'b');
	weft_close(s);
	weft_close(fd);
}

/* Accept on lfd until the connection of fd (the one whose peer is fd's
 * local address) comes: the others are closed. */
static void check_connected_among(int fd, int lfd)
{
	struct sockaddr_in local;
	socklen_t len = sizeof local;
	TCHECK_EQ(getsockname(fd, (struct sockaddr *)&local, &len), 0);
	for (int i = 0; i < 16; i++) {
		int s = weft_accept(lfd, NULL, NULL, wt_hang_deadline());
		TCHECK(s >= 0);
		if (s < 0)
			break;
		struct sockaddr_in peer;
		len = sizeof peer;
		TCHECK_EQ(getpeername(s, (struct sockaddr *)&peer, &len), 0);
		if (peer.sin_port == local.sin_port) {
			TCHECK_EQ(weft_write(fd, "c", 1, wt_hang_deadline()), 1);
			char b = 0;
			TCHECK_EQ(weft_read(s, &b, 1, wt_hang_deadline()), 1);
			TCHECK_EQ(b, 'c');
			weft_close(s);
			weft_close(fd);
			return;
		}
		weft_close(s);
	}
	TCHECK(!"fd's connection was accepted");
}

/* Whether this machine resolves "localhost" (the tests by name need it). */
static bool have_localhost(void)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_INET}, *ai = NULL;
	if (getaddrinfo("localhost", "80", &hints, &ai) != 0)
		return false;
	freeaddrinfo(ai);
	return true;
}

/* ------------------------------------------------------------ the calls */

typedef struct dial {
	const char *host; /* or the Unix path */
	uint16_t port;	  /* 0: a Unix socket */
} dial;

static long dial_call(wt_step_task *t, weft_op_t *op)
{
	dial *d = t->ctx;
	return d->port ? weft_tcp_connect_step(d->host, d->port, t->deadline, op)
		       : weft_unix_connect_step(d->host, t->deadline, op);
}

/* While registered (in the lookup or in the connect): every other _step
 * call is refused, changing nothing - another op; the same op in another
 * call, or with another host. */
static void second_registrations(wt_step_task *t)
{
	dial *d = t->ctx;
	weft_op_t op2;
	memset(&op2, 0x5a, sizeof op2);
	char other[64];
	snprintf(other, sizeof other, "%s", d->host);
	TCHECK_EQ(weft_tcp_connect_step(d->host, d->port, WEFT_NEVER, &op2), -EBUSY);
	TCHECK_EQ(weft_tcp_connect_step(other, d->port, WEFT_NEVER, t->op), -EBUSY);
	TCHECK_EQ(weft_unix_connect_step("@weft-none", WEFT_NEVER, t->op), -EBUSY);
	TCHECK_EQ(weft_unix_connect_step("@weft-none", WEFT_NEVER, &op2), -EBUSY);
	struct addrinfo *ai = (struct addrinfo *)&ai;
	TCHECK_EQ(weft_getaddrinfo_step(d->host, "1", NULL, &ai, WEFT_NEVER, t->op), -EBUSY);
	TCHECK(ai == (struct addrinfo *)&ai);
	TCHECK_EQ(weft_blocking_step(hold_job, NULL, NULL, WEFT_NEVER, t->op), -EBUSY);
	TCHECK_EQ(weft_connect_step(0, (struct sockaddr *)&(struct sockaddr_in){.sin_family = AF_INET},
				    sizeof(struct sockaddr_in), WEFT_NEVER, t->op),
		  -EBUSY);
}

/* ------------------------------------------------------------ connecting */

static void *numeric_main(void *a)
{
	(void)a;
	int lfd = weft_tcp_listen("127.0.0.1", 0, 16);
	TCHECK(lfd >= 0);
	dial d = {"127.0.0.1", (uint16_t)weft_local_port(lfd)};
	weft_op_t op;
	memset(&op, 0xa5, sizeof op); /* needs no initialisation */
	wt_step_task t;
	wt_step_init(&t, dial_call, &d, &op);
	long fd = wt_step_run(&t);
	check_connected((int)fd, lfd);
	/* NULL and "": 127.0.0.1. The op serves again. */
	d.host = NULL;
	check_connected((int)wt_step_run(&t), lfd);
	d.host = "";
	check_connected((int)wt_step_run(&t), lfd);
	/* A port bound but not listening: refused, nothing left open. */
	weft_close(lfd);
	int dead = weft_socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in da = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	TCHECK_EQ(bind(dead, (struct sockaddr *)&da, sizeof da), 0);
	d.host = "127.0.0.1";
	d.port = (uint16_t)weft_local_port(dead);
	TCHECK_EQ(wt_step_run(&t), -ECONNREFUSED);
	weft_close(dead);
	wt_step_fini(&t);
	return NULL;
}

static void test_tcp_connect_numeric(void **state)
{
	(void)state;
	wt_run(numeric_main, NULL, 2);
}

/* By name: the lookup runs on the pool, so the call registers first, and
 * second registrations are refused there. */
static void *by_name_main(void *a)
{
	(void)a;
	if (!have_localhost()) {
		fprintf(stderr, "skipped: \"localhost\" does not resolve here\n");
		return NULL;
	}
	int lfd = weft_tcp_listen("127.0.0.1", 0, 16);
	TCHECK(lfd >= 0);
	dial d = {"localhost", (uint16_t)weft_local_port(lfd)};
	weft_op_t op = WEFT_OP_INIT;
	wt_step_task t;
	wt_step_init(&t, dial_call, &d, &op);
	t.busy = second_registrations;
	long fd = wt_step_run(&t);
	TCHECK(atomic_load(&t.parks) >= 1);
	TCHECK_EQ(t.busy_checks, 1);
	check_connected((int)fd, lfd);
	/* A name that does not resolve. */
	d.host = "weft-no-such-host.invalid";
	t.busy = NULL;
	TCHECK_EQ(wt_step_run(&t), -ENOENT);
	weft_close(lfd);
	wt_step_fini(&t);
	return NULL;
}

static void test_tcp_connect_by_name(void **state)
{
	(void)state;
	wt_run(by_name_main, NULL, 2);
}

/* A past deadline: nothing can complete without waiting - neither the
 * lookup nor the connect to a full listener: -ETIMEDOUT, nothing
 * registered, nothing left open. */
static const weft_time_t past[] = {INT64_MIN, -1, 0};
#define NPAST (sizeof past / sizeof past[0])

static void *past_main(void *a)
{
	(void)a;
	full f;
	full_open(&f);
	dial d = {"127.0.0.1", (uint16_t)f.port};
	weft_op_t op = WEFT_OP_INIT;
	wt_step_task t;
	wt_step_init(&t, dial_call, &d, &op);
	for (size_t i = 0; i < NPAST; i++) {
		t.deadline = past[i];
		d.host = "127.0.0.1";
		TCHECK_EQ(wt_step_run(&t), -ETIMEDOUT);
		TCHECK_EQ(atomic_load(&t.parks), 0);
		d.host = "localhost";
		TCHECK_EQ(wt_step_run(&t), -ETIMEDOUT);
		TCHECK_EQ(atomic_load(&t.parks), 0);
	}
	full_close(&f);
	wt_step_fini(&t);
	return NULL;
}

static void test_tcp_connect_past_deadline(void **state)
{
	(void)state;
	wt_run(past_main, NULL, 2);
}

/* The connect registered (its listener's queue full): second
 * registrations are refused; a deadline, or a cancellation, ends it and
 * closes its socket. */
static void *connect_wait_main(void *a)
{
	(void)a;
	full f;
	full_open(&f);
	dial d = {"127.0.0.1", (uint16_t)f.port};
	weft_op_t op = WEFT_OP_INIT;
	wt_step_task t;
	wt_step_init(&t, dial_call, &d, &op);
	t.busy = second_registrations;
	t.yield = true;
	int fds = wt_fd_count();
	weft_task_t id = wt_step_start(&t);
	TCHECK_EQ(wt_step_event(&t), WT_EV_REG);
	TCHECK_EQ(wt_fd_count(), fds + 1); /* its socket */
	TCHECK_EQ(weft_cancel(id), 0);
	wt_step_until_done(&t);
	wt_step_join(id);
	TCHECK_EQ(t.result, -ECANCELED);
	TCHECK_EQ(t.busy_checks, 1);
	TCHECK_EQ(wt_fd_count(), fds);
	/* The deadline must pass while the task is registered: a task that
	 * ran too late times out without registering; again, longer. */
	t.busy = NULL;
	t.yield = false;
	for (weft_time_t wait = 20 * WEFT_MSEC;; wait *= 2) {
		t.deadline = weft_deadline_in(wait);
		TCHECK_EQ(wt_step_run(&t), -ETIMEDOUT);
		TCHECK(weft_now() >= t.deadline);
		if (atomic_load(&t.parks) == 1 || wait >= WT_HANG_NS)
			break;
	}
	TCHECK_EQ(atomic_load(&t.parks), 1);
	TCHECK_EQ(wt_fd_count(), fds);
	full_close(&f);
	wt_step_fini(&t);
	return NULL;
}

static void test_tcp_connect_deadline_and_cancel_while_connecting(void **state)
{
	(void)state;
	wt_run(connect_wait_main, NULL, 2);
}

/* The lookup registered, waiting in the pool's queue: second
 * registrations are refused, a repeat before the wait has ended changes
 * nothing, and a cancellation or a deadline takes the lookup back, before
 * any socket was made. */
static void *lookup_wait_main(void *a)
{
	(void)a;
	int lfd = weft_tcp_listen("127.0.0.1", 0, 16);
	TCHECK(lfd >= 0);
	dial d = {"localhost", (uint16_t)weft_local_port(lfd)};
	weft_op_t op = WEFT_OP_INIT;
	wt_step_task t;
	wt_step_init(&t, dial_call, &d, &op);
	t.busy = second_registrations;
	t.yield = true;
	hold h;
	hold_pool(&h);
	int fds = wt_fd_count();
	weft_task_t id = wt_step_start(&t);
	TCHECK_EQ(wt_step_event(&t), WT_EV_REG);
	TCHECK_EQ(wt_fd_count(), fds); /* no socket yet */
	TCHECK_EQ(weft_cancel(id), 0);
	TCHECK_EQ(wt_step_event(&t), WT_EV_DONE);
	wt_step_join(id);
	TCHECK_EQ(t.result, -ECANCELED);
	TCHECK_EQ(t.busy_checks, 1);
	t.busy = NULL;
	t.yield = false;
	t.deadline = weft_deadline_in(10 * WEFT_MSEC);
	TCHECK_EQ(wt_step_run(&t), -ETIMEDOUT);
	TCHECK(weft_now() >= t.deadline);
	TCHECK_EQ(wt_fd_count(), fds);
	/* Held until released: then it looks up and connects. */
	if (have_localhost()) {
		t.deadline = WEFT_NEVER;
		weft_task_t id2 = wt_step_start(&t);
		TCHECK_EQ(wt_step_event(&t), WT_EV_REG);
		release_pool(&h);
		wt_step_join(id2);
		check_connected((int)t.result, lfd);
	} else {
		release_pool(&h);
	}
	weft_close(lfd);
	wt_step_fini(&t);
	return NULL;
}

static void test_tcp_connect_while_looking_up(void **state)
{
	(void)state;
	wt_run(lookup_wait_main, NULL, 2);
}

/* Registered in the connect, completed by the repeat: the full queue
 * gets room (one connection accepted), and the kernel's next SYN (its
 * retransmission timer: about a second) gets through. */
static void *connect_repeat_main(void *a)
{
	(void)a;
	full f;
	full_open(&f);
	dial d = {"127.0.0.1", (uint16_t)f.port};
	wt_step_task t;
	wt_step_init(&t, dial_call, &d, malloc(sizeof(weft_op_t)));
	t.free_op = true; /* freed by the step that completes */
	weft_task_t id = wt_step_start(&t);
	TCHECK_EQ(wt_step_event(&t), WT_EV_REG);
	int s = weft_accept(f.lfd, NULL, NULL, wt_hang_deadline());
	TCHECK(s >= 0);
	weft_close(s);
	wt_step_until_done(&t);
	wt_step_join(id);
	TCHECK(t.op == NULL);
	TCHECK(t.result >= 0);
	if (t.result >= 0)
		check_connected_among((int)t.result, f.lfd); /* behind the fillers left in the queue */
	full_close(&f);
	wt_step_fini(&t);
	return NULL;
}

static void test_tcp_connect_registers_then_completes(void **state)
{
	(void)state;
	wt_run(connect_repeat_main, NULL, 2);
}

/* Unix sockets connect at once or not at all: no wait in the poller (a
 * full backlog is -EAGAIN here, as for weft_connect_step). */
static void *unix_main(void *a)
{
	(void)a;
	char path[64];
	snprintf(path, sizeof path, "@weft-step-dial-%d", (int)getpid());
	int lfd = weft_unix_listen(path, 1);
	TCHECK(lfd >= 0);
	dial d = {path, 0};
	weft_op_t op = WEFT_OP_INIT;
	wt_step_task t;
	wt_step_init(&t, dial_call, &d, &op);
	int c = (int)wt_step_run(&t);
	TCHECK_EQ(atomic_load(&t.parks), 0);
	TCHECK(c >= 0);
	int s = weft_accept(lfd, NULL, NULL, wt_hang_deadline());
	TCHECK(s >= 0);
	TCHECK_EQ(weft_write(c, "u", 1, wt_hang_deadline()), 1);
	char b = 0;
	TCHECK_EQ(weft_read(s, &b, 1, wt_hang_deadline()), 1);
	TCHECK_EQ(b, 'u');
	weft_close(s);
	weft_close(c);
	/* Fill the backlog: -EAGAIN, the socket closed. */
	int fds = wt_fd_count();
	int fill[8], nfill = 0;
	long r = 0;
	while (nfill < 8 && (r = wt_step_run(&t)) >= 0)
		fill[nfill++] = (int)r;
	TCHECK_EQ(r, -EAGAIN);
	TCHECK(nfill < 8);
	TCHECK_EQ(wt_fd_count(), fds + nfill);
	for (int i = 0; i < nfill; i++)
		weft_close(fill[i]);
	weft_close(lfd);
	/* Nobody listens. */
	TCHECK_EQ(wt_step_run(&t), -ECONNREFUSED);
	d.host = "/nonexistent/weft-step-dial";
	TCHECK_EQ(wt_step_run(&t), -ENOENT);
	wt_step_fini(&t);
	return NULL;
}

static void test_unix_connect(void **state)
{
	(void)state;
	wt_run(unix_main, NULL, 2);
}

/* ------------------------------------------------------------ coroutines and threads */

static const unsigned char zero_op[sizeof(weft_op_t)];

static void blocking_body(void)
{
	weft_op_t op = WEFT_OP_INIT;
	int lfd = weft_tcp_listen("127.0.0.1", 0, 16);
	TCHECK(lfd >= 0);
	uint16_t port = (uint16_t)weft_local_port(lfd);
	check_connected(weft_tcp_connect_step("127.0.0.1", port, wt_hang_deadline(), &op), lfd);
	if (have_localhost())
		check_connected(weft_tcp_connect_step("localhost", port, wt_hang_deadline(), &op), lfd);
	weft_close(lfd);
	full f;
	full_open(&f);
	weft_time_t d = weft_deadline_in(10 * WEFT_MSEC);
	TCHECK_EQ(weft_tcp_connect_step("127.0.0.1", (uint16_t)f.port, d, &op), -ETIMEDOUT);
	TCHECK(weft_now() >= d);
	TCHECK_EQ(weft_tcp_connect_step("localhost", (uint16_t)f.port, -1, &op), -ETIMEDOUT);
	full_close(&f);
	char path[64];
	snprintf(path, sizeof path, "@weft-step-dial-b-%d", (int)getpid());
	int ul = weft_unix_listen(path, 4);
	TCHECK(ul >= 0);
	int c = weft_unix_connect_step(path, WEFT_NEVER, &op);
	TCHECK(c >= 0);
	weft_close(c);
	weft_close(ul);
	TCHECK_EQ(memcmp(&op, zero_op, sizeof op), 0);
}

static void *coroutine_main(void *a)
{
	(void)a;
	blocking_body();
	return NULL;
}

static void test_coroutines_and_threads_block(void **state)
{
	(void)state;
	wt_run(coroutine_main, NULL, 2);
	/* A plain thread, outside any runtime and then with one running. */
	atomic_store(&tcheck_failures, 0);
	blocking_body();
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	blocking_body();
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		WT_IO_TEST(test_tcp_connect_numeric),
		WT_IO_TEST(test_tcp_connect_by_name),
		WT_IO_TEST(test_tcp_connect_past_deadline),
		WT_IO_TEST(test_tcp_connect_deadline_and_cancel_while_connecting),
		WT_IO_TEST(test_tcp_connect_while_looking_up),
		WT_IO_TEST(test_tcp_connect_registers_then_completes),
		WT_IO_TEST(test_unix_connect),
		WT_IO_TEST(test_coroutines_and_threads_block),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
