/* test_step.c - the _step forms of the io calls in stackless tasks: a
 * stackless echo server (accept, read, write) under many coroutine
 * clients, a stackless writer that fills the socket buffer, deadlines,
 * cancellation, weft_close of a waited descriptor, a foreign pipe,
 * connecting, and the same calls from coroutines and plain threads.
 * Run on both backends. */
#include "wt_io.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLIENTS WT_SIZE(40, 12)
#define ROUNDS WT_SIZE(200, 30)

/* ------------------------------------------------------------ stackless echo */

typedef struct conn_st {
	int fd, phase;
	ssize_t n, off;
	long served;
	char buf[512];
	weft_op_t op;
} conn_st;

static weft_step_t conn_step(void *a, void **res)
{
	conn_st *c = a;
	for (;;) {
		if (c->phase == 0) {
			ssize_t n = weft_read_step(c->fd, c->buf, sizeof c->buf, WEFT_NEVER, &c->op);
			if (n == -EINPROGRESS)
				return WEFT_STEP_PARKED;
			if (n <= 0) {
				weft_close(c->fd);
				*res = (void *)(intptr_t)(n == 0 ? c->served : n);
				return WEFT_STEP_DONE;
			}
			c->n = n;
			c->off = 0;
			c->phase = 1;
		}
		ssize_t w = weft_write_step(c->fd, c->buf + c->off, (size_t)(c->n - c->off), WEFT_NEVER, &c->op);
		if (w == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		if (w <= 0) {
			weft_close(c->fd);
			*res = (void *)(intptr_t)(w < 0 ? w : -EIO);
			return WEFT_STEP_DONE;
		}
		c->off += w;
		c->served += w;
		if (c->off == c->n)
			c->phase = 0;
	}
}

typedef struct accept_st {
	int lfd, accepted;
	conn_st conns[CLIENTS];
	weft_task_t tasks[CLIENTS];
	weft_op_t op;
} accept_st;

static weft_step_t accept_step(void *a, void **res)
{
	accept_st *s = a;
	while (s->accepted < CLIENTS) {
		int fd = weft_accept_step(s->lfd, NULL, NULL, wt_hang_deadline(), &s->op);
		if (fd == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		if (fd < 0) {
			*res = (void *)(intptr_t)fd;
			return WEFT_STEP_DONE;
		}
		conn_st *c = &s->conns[s->accepted];
		memset(c, 0, sizeof *c);
		c->fd = fd;
		if (weft_spawn_step(&s->tasks[s->accepted], conn_step, c, NULL) < 0) {
			weft_close(fd);
			*res = (void *)(intptr_t)-ENOMEM;
			return WEFT_STEP_DONE;
		}
		s->accepted++;
	}
	*res = NULL;
	return WEFT_STEP_DONE;
}

static _Atomic int client_failures;
static _Atomic long client_bytes;

static void *echo_client(void *a)
{
	int port = (int)(intptr_t)a;
	int fd = weft_tcp_connect("127.0.0.1", (uint16_t)port, wt_hang_deadline());
	if (fd < 0) {
		atomic_fetch_add(&client_failures, 1);
		return NULL;
	}
	char out[300], in[300];
	for (int r = 0; r < ROUNDS; r++) {
		size_t len = 1 + (size_t)(r * 37 + fd) % sizeof out;
		for (size_t i = 0; i < len; i++)
			out[i] = (char)(fd * 7 + r * 13 + (int)i);
		if (weft_write_all(fd, out, len, wt_hang_deadline(), NULL) != (ssize_t)len ||
		    weft_read_full(fd, in, len, wt_hang_deadline(), NULL) != (ssize_t)len ||
		    memcmp(in, out, len) != 0) {
			atomic_fetch_add(&client_failures, 1);
			break;
		}
		atomic_fetch_add(&client_bytes, (long)len);
	}
	weft_close(fd);
	return NULL;
}

static void *echo_main(void *a)
{
	(void)a;
	accept_st *s = calloc(1, sizeof *s);
	TCHECK(s);
	s->lfd = weft_tcp_listen("127.0.0.1", 0, 0);
	TCHECK(s->lfd >= 0);
	int port = weft_local_port(s->lfd);
	weft_task_t acc;
	TCHECK_EQ(weft_spawn_step(&acc, accept_step, s, NULL), 0);
	weft_task_t cl[CLIENTS];
	for (int i = 0; i < CLIENTS; i++)
		cl[i] = wt_spawn(echo_client, (void *)(intptr_t)port);
	for (int i = 0; i < CLIENTS; i++)
		wt_join(cl[i]);
	void *r;
	TCHECK_EQ(weft_join(acc, &r), 0);
	TCHECK_EQ((intptr_t)r, 0);
	TCHECK_EQ(s->accepted, CLIENTS);
	long total = 0;
	for (int i = 0; i < CLIENTS; i++) {
		TCHECK_EQ(weft_join(s->tasks[i], &r), 0);
		TCHECK((intptr_t)r > 0); /* bytes served, ended by the client's close */
		total += (intptr_t)r;
	}
	TCHECK_EQ(total, atomic_load(&client_bytes)); /* every byte echoed once */
	TCHECK_EQ(atomic_load(&client_failures), 0);
	weft_close(s->lfd);
	free(s);
	return NULL;
}

static void test_stackless_echo(void **state)
{
	(void)state;
	wt_run(echo_main, NULL, 2);
}

/* ------------------------------------------------------------ a full socket buffer */

#define BIG (4u << 20)

typedef struct writer_st {
	int fd;
	size_t off;
	const unsigned char *data;
	weft_op_t op;
	_Atomic int waits; /* times the step parked */
} writer_st;

static weft_step_t writer_step(void *a, void **res)
{
	writer_st *w = a;
	while (w->off < BIG) {
		ssize_t n = weft_write_step(w->fd, w->data + w->off, BIG - w->off, wt_hang_deadline(), &w->op);
		if (n == -EINPROGRESS) {
			w->waits++;
			return WEFT_STEP_PARKED;
		}
		if (n < 0) {
			*res = (void *)(intptr_t)n;
			return WEFT_STEP_DONE;
		}
		w->off += (size_t)n;
	}
	*res = NULL;
	return WEFT_STEP_DONE;
}

static void *big_main(void *a)
{
	(void)a;
	unsigned char *data = malloc(BIG), *got = malloc(BIG);
	TCHECK(data && got);
	for (size_t i = 0; i < BIG; i++)
		data[i] = (unsigned char)(i * 2654435761u >> 13);
	int sv[2];
	TCHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	writer_st w = {.fd = sv[0], .data = data};
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, writer_step, &w, NULL), 0);
	/* Nobody reads yet: the writer fills the buffer and must park. */
	WT_WAIT_UNTIL(atomic_load(&w.waits) > 0);
	size_t off = 0;
	while (off < BIG) {
		ssize_t n = weft_read(sv[1], got + off, 65536 < BIG - off ? 65536 : BIG - off, wt_hang_deadline());
		TCHECK(n > 0);
		off += (size_t)n;
	}
	void *r;
	TCHECK_EQ(weft_join(t, &r), 0);
	TCHECK_EQ((intptr_t)r, 0);
	TCHECK(w.waits > 0); /* it really waited for POLLOUT */
	TCHECK_EQ(memcmp(data, got, BIG), 0);
	weft_close(sv[0]);
	weft_close(sv[1]);
	free(data);
	free(got);
	return NULL;
}

static void test_stackless_writer_waits_for_room(void **state)
{
	(void)state;
	wt_run(big_main, NULL, 2);
}

/* ------------------------------------------------------------ one read with a deadline */

typedef struct reader_st {
	int fd;
	weft_time_t deadline;
	weft_op_t op;
	_Atomic int parks;
	char buf[16];
} reader_st;

static weft_step_t reader_step(void *a, void **res)
{
	reader_st *r = a;
	ssize_t n = weft_read_step(r->fd, r->buf, sizeof r->buf, r->deadline, &r->op);
	if (n == -EINPROGRESS) {
		r->parks++;
		return WEFT_STEP_PARKED;
	}
	*res = (void *)(intptr_t)n;
	return WEFT_STEP_DONE;
}

static intptr_t run_reader(reader_st *r)
{
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, reader_step, r, NULL), 0);
	void *res;
	TCHECK_EQ(weft_join(t, &res), 0);
	return (intptr_t)res;
}

static void *deadline_main(void *a)
{
	(void)a;
	int sv[2];
	TCHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	/* Nothing comes: -ETIMEDOUT, never before the deadline. The step
	 * parks if it runs before the deadline, which no load can promise:
	 * when it did not, try again with a deadline twice as long, until it
	 * parked and the deadline ended the park. */
	reader_st r = {.fd = sv[0]};
	for (weft_time_t wait = 20 * WEFT_MSEC;; wait *= 2) {
		r.deadline = weft_deadline_in(wait);
		atomic_store(&r.parks, 0);
		TCHECK_EQ(run_reader(&r), -ETIMEDOUT);
		TCHECK(weft_now() >= r.deadline);
		if (atomic_load(&r.parks) >= 1)
			break;
		TCHECK(wait < WT_HANG_NS);
		if (wait >= WT_HANG_NS)
			break;
	}
	/* The op is idle again: a later read with it gets the data. */
	TCHECK_EQ(write(sv[1], "hello", 5), 5);
	r.deadline = wt_hang_deadline();
	TCHECK_EQ(run_reader(&r), 5);
	TCHECK_EQ(memcmp(r.buf, "hello", 5), 0);
	/* A deadline already past: no wait at all when data is there, a
	 * timeout when it is not. */
	r.deadline = weft_now() - 1;
	TCHECK_EQ(run_reader(&r), -ETIMEDOUT);
	weft_close(sv[0]);
	weft_close(sv[1]);
	return NULL;
}

static void test_stackless_deadline(void **state)
{
	(void)state;
	wt_run(deadline_main, NULL, 2);
}

/* ------------------------------------------------------------ TCP reads after a short read */

/* On TCP, a short read marks the socket drained and the next read waits
 * for a report before its system call (socket.c, read_some); stackless
 * readers take that path too. Data that comes after a short read, in
 * pieces or all at once, and the end of file must all be seen. */
typedef struct sink_st {
	int fd;
	weft_op_t op;
	long got, bad;
	char buf[4096];
} sink_st;

static weft_step_t sink_step(void *a, void **res)
{
	sink_st *k = a;
	for (;;) {
		ssize_t n = weft_read_step(k->fd, k->buf, sizeof k->buf, wt_hang_deadline(), &k->op);
		if (n == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		if (n <= 0) {
			*res = (void *)(intptr_t)n;
			return WEFT_STEP_DONE;
		}
		for (ssize_t i = 0; i < n; i++)
			if ((unsigned char)k->buf[i] != (unsigned char)((k->got + i) * 7))
				k->bad++;
		k->got += n;
	}
}

static void *tcp_short_reads_main(void *a)
{
	(void)a;
	int lfd, c, s;
	wt_tcp_pair(&lfd, &c, &s);
	reader_st r = {.fd = s, .deadline = wt_hang_deadline()};
	/* A short read, then nothing: the next read waits until its deadline. */
	TCHECK_EQ(weft_write(c, "hello", 5, WEFT_NEVER), 5);
	TCHECK_EQ(run_reader(&r), 5);
	r.deadline = weft_deadline_in(20 * WEFT_MSEC);
	TCHECK_EQ(run_reader(&r), -ETIMEDOUT);
	/* Data after the short read, asked for with a past deadline: the read
	 * polls, so it tries the system call whether or not the poller has
	 * seen the data's report yet (poll(2) here says the data is in the
	 * socket, and consumes no report). Stackless, then a coroutine. */
	struct pollfd pfd = {.fd = s, .events = POLLIN};
	TCHECK_EQ(weft_write(c, "xyz", 3, WEFT_NEVER), 3);
	TCHECK_EQ(poll(&pfd, 1, (int)(WT_HANG_NS / WEFT_MSEC)), 1);
	r.deadline = weft_now() - 1;
	TCHECK_EQ(run_reader(&r), 3);
	TCHECK_EQ(weft_write(c, "uv", 2, WEFT_NEVER), 2);
	TCHECK_EQ(poll(&pfd, 1, (int)(WT_HANG_NS / WEFT_MSEC)), 1);
	TCHECK_EQ(weft_read(s, r.buf, sizeof r.buf, INT64_MIN), 2);
	/* Data after the short read wakes it; two writes queued before the
	 * read are read together or one after the other, never lost. */
	r.deadline = wt_hang_deadline();
	TCHECK_EQ(weft_write(c, "abc", 3, WEFT_NEVER), 3);
	TCHECK_EQ(run_reader(&r), 3);
	TCHECK_EQ(memcmp(r.buf, "abc", 3), 0);
	TCHECK_EQ(weft_write(c, "def", 3, WEFT_NEVER), 3);
	TCHECK_EQ(weft_write(c, "ghij", 4, WEFT_NEVER), 4);
	weft_sleep(2 * WEFT_MSEC);
	intptr_t n = run_reader(&r);
	TCHECK(n == 3 || n == 7);
	if (n == 3)
		TCHECK_EQ(run_reader(&r), 4);
	/* A stream in uneven pieces, some written while the reader waits,
	 * some while it runs, then the end of file. */
	sink_st *k = calloc(1, sizeof *k);
	TCHECK(k != NULL);
	k->fd = s;
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, sink_step, k, NULL), 0);
	long sent = 0;
	char chunk[600];
	for (int i = 0; i < WT_SIZE(3000, 500); i++) {
		size_t len = 1 + (size_t)(i * 131) % sizeof chunk;
		for (size_t j = 0; j < len; j++)
			chunk[j] = (char)((sent + (long)j) * 7);
		TCHECK_EQ(weft_write_all(c, chunk, len, wt_hang_deadline(), NULL), (ssize_t)len);
		sent += (long)len;
		if (i % 7 == 0)
			weft_yield();
		if (i % 101 == 0)
			weft_sleep(WEFT_MSEC);
	}
	TCHECK_EQ(weft_shutdown(c, SHUT_WR), 0);
	void *res;
	TCHECK_EQ(weft_join(t, &res), 0);
	TCHECK_EQ((intptr_t)res, 0);
	TCHECK_EQ(k->got, sent);
	TCHECK_EQ(k->bad, 0);
	free(k);
	weft_close(s);
	weft_close(c);
	weft_close(lfd);
	return NULL;
}

static void test_stackless_tcp_reads_after_a_short_read(void **state)
{
	(void)state;
	wt_run(tcp_short_reads_main, NULL, 2);
}

/* ------------------------------------------------------------ cancellation, close */

static void *cancel_main(void *a)
{
	(void)a;
	for (int i = 0; i < WT_SIZE(50, 10); i++) {
		int sv[2];
		TCHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
		reader_st r = {.fd = sv[0], .deadline = WEFT_NEVER};
		weft_task_t t;
		TCHECK_EQ(weft_spawn_step(&t, reader_step, &r, NULL), 0);
		while (r.parks == 0)
			weft_yield();
		if (i & 1)
			weft_sleep(WEFT_MSEC / 10);
		TCHECK_EQ(weft_cancel(t), 0);
		void *res;
		TCHECK_EQ(weft_join(t, &res), 0);
		TCHECK_EQ((intptr_t)res, -ECANCELED);
		/* Nothing of the cancelled wait is left on the descriptor: a
		 * coroutine reads from it normally. */
		TCHECK_EQ(write(sv[1], "x", 1), 1);
		char c;
		TCHECK_EQ(weft_read(sv[0], &c, 1, wt_hang_deadline()), 1);
		weft_close(sv[0]);
		close(sv[1]);
	}
	/* weft_close of a descriptor a stackless task waits on: -EBADF. */
	int sv[2];
	TCHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	reader_st r = {.fd = sv[0], .deadline = wt_hang_deadline()};
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, reader_step, &r, NULL), 0);
	while (r.parks == 0)
		weft_yield();
	weft_close(sv[0]);
	void *res;
	TCHECK_EQ(weft_join(t, &res), 0);
	TCHECK_EQ((intptr_t)res, -EBADF);
	close(sv[1]);
	return NULL;
}

static void test_stackless_cancel_and_close(void **state)
{
	(void)state;
	wt_run(cancel_main, NULL, 2);
}

/* ------------------------------------------------------------ foreign descriptors */

typedef struct fdwait_st {
	int fd;
	weft_op_t op;
	_Atomic int parks;
} fdwait_st;

static weft_step_t fdwait_step(void *a, void **res)
{
	fdwait_st *f = a;
	int r = weft_fd_wait_step(f->fd, POLLIN, wt_hang_deadline(), &f->op);
	if (r == -EINPROGRESS) {
		f->parks++;
		return WEFT_STEP_PARKED;
	}
	*res = (void *)(intptr_t)r;
	return WEFT_STEP_DONE;
}

static void *foreign_main(void *a)
{
	(void)a;
	for (int i = 0; i < WT_SIZE(50, 10); i++) {
		int p[2];
		TCHECK_EQ(pipe2(p, O_CLOEXEC), 0); /* blocking, never seen by weft */
		fdwait_st f = {.fd = p[0]};
		weft_task_t t;
		TCHECK_EQ(weft_spawn_step(&t, fdwait_step, &f, NULL), 0);
		while (f.parks == 0)
			weft_yield();
		TCHECK_EQ(write(p[1], "z", 1), 1);
		void *res;
		TCHECK_EQ(weft_join(t, &res), 0);
		TCHECK((intptr_t)res > 0 && ((intptr_t)res & POLLIN));
		/* Ready before the call: no parking. */
		f.parks = 0;
		TCHECK_EQ(weft_spawn_step(&t, fdwait_step, &f, NULL), 0);
		TCHECK_EQ(weft_join(t, &res), 0);
		TCHECK((intptr_t)res & POLLIN);
		TCHECK_EQ(f.parks, 0);
		weft_close(p[0]);
		close(p[1]);
	}
	/* Bad arguments. */
	weft_op_t op = WEFT_OP_INIT;
	TCHECK_EQ(weft_fd_wait_step(-1, POLLIN, WEFT_NEVER, &op), -EBADF);
	TCHECK_EQ(weft_fd_wait_step(0, 0, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_fd_wait_step(0, POLLIN, WEFT_NEVER, NULL), -EINVAL);
	TCHECK_EQ(weft_read_step(0, NULL, 1, WEFT_NEVER, &op), -EINVAL);
	return NULL;
}

static void test_stackless_foreign_fd(void **state)
{
	(void)state;
	wt_run(foreign_main, NULL, 2);
}

/* A repeat of weft_fd_wait_step on a registered op with other events is
 * another call: -EBUSY, and the registration stays; the repeat with the
 * same events then finishes it. */
typedef struct rewait_st {
	int fd;
	_Atomic int phase; /* polled by the main task */
	int first, other, same;
	weft_op_t op;
} rewait_st;

static weft_step_t rewait_step(void *a, void **res)
{
	(void)res;
	rewait_st *w = a;
	if (w->phase == 0) {
		/* nothing to read until the main task writes, which it does
		 * once phase says this wait is registered */
		w->first = weft_fd_wait_step(w->fd, POLLIN, wt_hang_deadline(), &w->op);
		w->phase = 1;
		if (w->first == -EINPROGRESS)
			return WEFT_STEP_PARKED;
	}
	if (w->phase == 1) { /* run again: the other events, once */
		w->phase = 2;
		w->other = weft_fd_wait_step(w->fd, POLLOUT, wt_hang_deadline(), &w->op);
	}
	/* then the same call, repeated until it completes (a repeat before
	 * the wait has ended is -EINPROGRESS, as the protocol allows) */
	w->same = weft_fd_wait_step(w->fd, POLLIN, wt_hang_deadline(), &w->op);
	return w->same == -EINPROGRESS ? WEFT_STEP_PARKED : WEFT_STEP_DONE;
}

static void *rewait_main(void *a)
{
	(void)a;
	int p[2];
	TCHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	rewait_st w = {.fd = p[0], .op = WEFT_OP_INIT};
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, rewait_step, &w, NULL), 0);
	while (w.phase == 0)
		weft_yield();
	TCHECK_EQ(write(p[1], "z", 1), 1);
	TCHECK_EQ(weft_join(t, NULL), 0);
	TCHECK_EQ(w.first, -EINPROGRESS);
	TCHECK_EQ(w.other, -EBUSY);
	TCHECK(w.same > 0 && (w.same & POLLIN));
	close(p[0]);
	close(p[1]);
	return NULL;
}

static void test_stackless_fd_wait_other_events(void **state)
{
	(void)state;
	wt_run(rewait_main, NULL, 2);
}

/* ------------------------------------------------------------ connecting */

typedef struct connect_st {
	int fd;
	struct sockaddr_in sa;
	weft_op_t op;
} connect_st;

static weft_step_t connect_step(void *a, void **res)
{
	connect_st *c = a;
	int r = weft_connect_step(c->fd, (struct sockaddr *)&c->sa, sizeof c->sa, wt_hang_deadline(), &c->op);
	if (r == -EINPROGRESS)
		return WEFT_STEP_PARKED;
	*res = (void *)(intptr_t)r;
	return WEFT_STEP_DONE;
}

static void *connect_main(void *a)
{
	(void)a;
	int lfd = weft_tcp_listen("127.0.0.1", 0, 0);
	TCHECK(lfd >= 0);
	connect_st c = {.sa = {.sin_family = AF_INET,
			       .sin_port = htons((uint16_t)weft_local_port(lfd)),
			       .sin_addr.s_addr = htonl(INADDR_LOOPBACK)}};
	c.fd = weft_socket(AF_INET, SOCK_STREAM, 0);
	TCHECK(c.fd >= 0);
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, connect_step, &c, NULL), 0);
	void *res;
	TCHECK_EQ(weft_join(t, &res), 0);
	TCHECK_EQ((intptr_t)res, 0);
	int afd = weft_accept(lfd, NULL, NULL, wt_hang_deadline());
	TCHECK(afd >= 0);
	TCHECK_EQ(weft_write(c.fd, "ok", 2, WEFT_NEVER), 2);
	char b[2];
	TCHECK_EQ(weft_read_full(afd, b, 2, wt_hang_deadline(), NULL), 2);
	weft_close(afd);
	weft_close(c.fd);
	/* A port bound but not listening: refused. */
	weft_close(lfd);
	int dead = weft_socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in da = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	TCHECK_EQ(bind(dead, (struct sockaddr *)&da, sizeof da), 0);
	c.sa.sin_port = htons((uint16_t)weft_local_port(dead));
	c.fd = weft_socket(AF_INET, SOCK_STREAM, 0);
	TCHECK(c.fd >= 0);
	memset(&c.op, 0, sizeof c.op);
	TCHECK_EQ(weft_spawn_step(&t, connect_step, &c, NULL), 0);
	TCHECK_EQ(weft_join(t, &res), 0);
	TCHECK_EQ((intptr_t)res, -ECONNREFUSED);
	weft_close(c.fd);
	weft_close(dead);
	return NULL;
}

static void test_stackless_connect(void **state)
{
	(void)state;
	wt_run(connect_main, NULL, 2);
}

/* ------------------------------------------------------------ coroutines and threads */

/* A stackless task closes a listener another task is accepting on: the
 * acceptor gets -EBADF and the listener refuses at once. (A stackless closer
 * cannot wait for io_uring's poll to end; here the poll's owner is the
 * closing thread itself, whose cancel drops the file: see docs/io.md for
 * the other case.) */
static void *accept_forever(void *a)
{
	return (void *)(intptr_t)weft_accept((int)(intptr_t)a, NULL, NULL, wt_hang_deadline());
}

static weft_step_t close_step(void *a, void **res)
{
	*res = (void *)(intptr_t)weft_close((int)(intptr_t)a);
	return WEFT_STEP_DONE;
}

static void *stackless_close_main(void *a)
{
	(void)a;
	int lfd = weft_tcp_listen("127.0.0.1", 0, 16);
	TCHECK(lfd >= 0);
	int port = weft_local_port(lfd);
	weft_task_t acc = wt_spawn(accept_forever, (void *)(intptr_t)lfd);
	weft_sleep(2 * WEFT_MSEC); /* parked in accept: the poll is armed */
	weft_task_t cl;
	TCHECK_EQ(weft_spawn_step(&cl, close_step, (void *)(intptr_t)lfd, NULL), 0);
	void *r = (void *)1;
	TCHECK_EQ(weft_join(cl, &r), 0);
	TCHECK_EQ((intptr_t)r, 0);
	TCHECK_EQ(weft_tcp_connect("127.0.0.1", (uint16_t)port, wt_hang_deadline()), -ECONNREFUSED);
	TCHECK_EQ(weft_join(acc, &r), 0);
	TCHECK_EQ((intptr_t)r, -EBADF);
	return NULL;
}

static void test_stackless_close_of_a_polled_listener(void **state)
{
	(void)state;
	wt_run(stackless_close_main, NULL, 1);
}

static void *coroutine_main(void *a)
{
	(void)a;
	int sv[2];
	TCHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	weft_op_t op = WEFT_OP_INIT;
	char b[4];
	/* Blocks like weft_read: times out, never -EINPROGRESS. */
	TCHECK_EQ(weft_read_step(sv[0], b, sizeof b, weft_deadline_in(10 * WEFT_MSEC), &op), -ETIMEDOUT);
	TCHECK_EQ(weft_write_step(sv[1], "abc", 3, WEFT_NEVER, &op), 3);
	TCHECK_EQ(weft_read_step(sv[0], b, sizeof b, wt_hang_deadline(), &op), 3);
	TCHECK_EQ(weft_fd_wait_step(sv[1], POLLOUT, WEFT_NEVER, &op) & POLLOUT, POLLOUT);
	weft_close(sv[0]);
	weft_close(sv[1]);
	return NULL;
}

static void test_blocking_contexts(void **state)
{
	(void)state;
	wt_run(coroutine_main, NULL, 1);
	/* A plain thread outside any runtime. */
	int sv[2];
	TCHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	weft_op_t op = WEFT_OP_INIT;
	char b[4];
	TCHECK_EQ(weft_read_step(sv[0], b, sizeof b, weft_deadline_in(10 * WEFT_MSEC), &op), -ETIMEDOUT);
	TCHECK_EQ(weft_write_step(sv[1], "de", 2, WEFT_NEVER, &op), 2);
	TCHECK_EQ(weft_read_step(sv[0], b, sizeof b, WEFT_NEVER, &op), 2);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		WT_IO_TEST(test_stackless_echo),
		WT_IO_TEST(test_stackless_writer_waits_for_room),
		WT_IO_TEST(test_stackless_deadline),
		WT_IO_TEST(test_stackless_tcp_reads_after_a_short_read),
		WT_IO_TEST(test_stackless_cancel_and_close),
		WT_IO_TEST(test_stackless_foreign_fd),
		WT_IO_TEST(test_stackless_fd_wait_other_events),
		WT_IO_TEST(test_stackless_connect),
		WT_IO_TEST(test_stackless_close_of_a_polled_listener),
		WT_IO_TEST(test_blocking_contexts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
