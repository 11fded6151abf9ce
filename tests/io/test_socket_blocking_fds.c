/* test_socket_blocking_fds.c - deadlines hold on descriptors the caller
 * created in blocking mode (a pipe(2), a socket(2), a socketpair(2), a
 * listener): every weft call that takes such a descriptor returns
 * -ETIMEDOUT at its deadline instead of blocking its worker (or thread) in
 * the system call, from coroutines, stackless tasks and plain threads; the
 * descriptor is left O_NONBLOCK, as io.h says. Run on both backends.
 *
 * Each wait has a rescuer: a plain thread that, 2 s later, does what ends a
 * blocked system call (writes a byte, drains the pipe, connects, accepts).
 * With the calls fixed it is never needed (the test tells it to go away);
 * without, a call would return that data instead of -ETIMEDOUT, so the
 * test fails rather than hangs. */
#include "wt_io.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stddef.h>
#include <unistd.h>

#define DEADLINE (200 * WEFT_MSEC)
#define HANG_GUARD (1500 * WEFT_MSEC) /* far beyond the deadline: only a blocked call takes this long */
#define RESCUE_AFTER_MS 2000

/* ------------------------------------------------------------ the rescuer */

typedef struct rescuer {
	pthread_t thread;
	int efd;	       /* written to call it off */
	void (*fn)(void *arg); /* what unblocks the call */
	void *arg;
	_Atomic bool rescued;
} rescuer;

static void *rescuer_main(void *a)
{
	rescuer *r = a;
	struct pollfd p = {.fd = r->efd, .events = POLLIN};
	if (poll(&p, 1, RESCUE_AFTER_MS) == 0) {
		atomic_store(&r->rescued, true);
		r->fn(r->arg);
	}
	return NULL;
}

static void rescue_start(rescuer *r, void (*fn)(void *), void *arg)
{
	r->efd = eventfd(0, EFD_CLOEXEC);
	r->fn = fn;
	r->arg = arg;
	atomic_init(&r->rescued, false);
	TCHECK(r->efd >= 0);
	TCHECK_EQ(pthread_create(&r->thread, NULL, rescuer_main, r), 0);
}

/* Call it off (if it has not acted) and join it; true if it had to act. */
static bool rescue_end(rescuer *r)
{
	uint64_t one = 1;
	TCHECK_EQ(write(r->efd, &one, sizeof one), (ssize_t)sizeof one);
	pthread_join(r->thread, NULL);
	close(r->efd);
	return atomic_load(&r->rescued);
}

static void write_byte(void *a)
{
	ssize_t n = write((int)(intptr_t)a, "r", 1);
	(void)n;
}

/* Read until the writing end is closed. */
static void drain(void *a)
{
	int fd = (int)(intptr_t)a;
	char b[65536];
	while (read(fd, b, sizeof b) > 0) {
	}
}

static bool nonblocking(int fd)
{
	return fcntl(fd, F_GETFL) & O_NONBLOCK;
}

/* A call that waited for `deadline` returned r at `end`. */
static void check_timed_out(long r, weft_time_t deadline, weft_time_t start, weft_time_t end)
{
	TCHECK_EQ(r, -ETIMEDOUT);
	TCHECK(end >= deadline); /* not before the deadline */
	TCHECK(end - start < HANG_GUARD);
}

/* ------------------------------------------------------------ reads */

/* weft_read on fds[0] (blocking, empty); fds[1] is its writing end. */
static void read_times_out(int rfd, int wfd)
{
	TCHECK(!nonblocking(rfd));
	rescuer r;
	rescue_start(&r, write_byte, (void *)(intptr_t)wfd);
	char b;
	weft_time_t start = weft_now(), deadline = start + DEADLINE;
	ssize_t n = weft_read(rfd, &b, 1, deadline);
	check_timed_out(n, deadline, start, weft_now());
	TCHECK(!rescue_end(&r));
	TCHECK(nonblocking(rfd));
	/* And it still reads what comes. */
	TCHECK_EQ(write(wfd, "x", 1), 1);
	TCHECK_EQ(weft_read(rfd, &b, 1, weft_deadline_in(5 * WEFT_SEC)), 1);
	TCHECK_EQ(b, 'x');
}

static void *read_pipe_main(void *a)
{
	(void)a;
	int p[2];
	TCHECK_EQ(pipe2(p, O_CLOEXEC), 0); /* blocking, like a shell's stdin */
	read_times_out(p[0], p[1]);
	weft_close(p[0]);
	close(p[1]);
	return NULL;
}

static void test_read_blocking_pipe(void **state)
{
	(void)state;
	wt_run(read_pipe_main, NULL, 1);
}

static void *read_socketpair_main(void *a)
{
	(void)a;
	int sv[2];
	TCHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	read_times_out(sv[0], sv[1]);
	weft_close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_read_blocking_socketpair(void **state)
{
	(void)state;
	wt_run(read_socketpair_main, NULL, 1);
}

/* A TCP socket from socket(2), connected with connect(2): blocking. */
static void *read_tcp_main(void *a)
{
	(void)a;
	int lfd = weft_tcp_listen("127.0.0.1", 0, 4);
	TCHECK(lfd >= 0);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	TCHECK(fd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)weft_local_port(lfd)),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	TCHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0); /* loopback: at once */
	int s = weft_accept(lfd, NULL, NULL, weft_deadline_in(5 * WEFT_SEC));
	TCHECK(s >= 0);
	TCHECK(!nonblocking(fd));
	rescuer r;
	rescue_start(&r, write_byte, (void *)(intptr_t)s);
	char b;
	weft_time_t start = weft_now(), deadline = start + DEADLINE;
	/* readv takes the generic path (weft_read has its own). */
	struct iovec iov = {&b, 1};
	ssize_t n = weft_readv(fd, &iov, 1, deadline);
	check_timed_out(n, deadline, start, weft_now());
	TCHECK(!rescue_end(&r));
	TCHECK(nonblocking(fd));
	weft_close(fd);
	weft_close(s);
	weft_close(lfd);
	return NULL;
}

static void test_readv_blocking_tcp_socket(void **state)
{
	(void)state;
	wt_run(read_tcp_main, NULL, 1);
}

static void send_datagram(void *a)
{
	int fd = (int)(intptr_t)a;
	struct sockaddr_in sa;
	socklen_t l = sizeof sa;
	int c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (getsockname(fd, (struct sockaddr *)&sa, &l) == 0)
		sendto(c, "r", 1, 0, (struct sockaddr *)&sa, l);
	close(c);
}

static void *recvfrom_main(void *a)
{
	(void)a;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	TCHECK(fd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	TCHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	rescuer r;
	rescue_start(&r, send_datagram, (void *)(intptr_t)fd);
	char b[8];
	weft_time_t start = weft_now(), deadline = start + DEADLINE;
	ssize_t n = weft_recvfrom(fd, b, sizeof b, NULL, NULL, deadline);
	check_timed_out(n, deadline, start, weft_now());
	TCHECK(!rescue_end(&r));
	TCHECK(nonblocking(fd));
	weft_close(fd);
	return NULL;
}

static void test_recvfrom_blocking_udp_socket(void **state)
{
	(void)state;
	wt_run(recvfrom_main, NULL, 1);
}

/* ------------------------------------------------------------ writes */

static void *write_pipe_main(void *a)
{
	(void)a;
	int p[2];
	TCHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	rescuer r;
	rescue_start(&r, drain, (void *)(intptr_t)p[0]);
	size_t len = 1 << 20; /* more than the pipe holds */
	char *buf = calloc(1, len);
	weft_time_t start = weft_now(), deadline = start + DEADLINE;
	ssize_t n = weft_write(p[1], buf, len, deadline); /* fills the pipe */
	TCHECK(n > 0 && (size_t)n < len);
	n = weft_write(p[1], buf, len, deadline); /* finds it full */
	check_timed_out(n, deadline, start, weft_now());
	TCHECK(nonblocking(p[1]));
	weft_close(p[1]); /* the end of file ends a drain that had to run */
	TCHECK(!rescue_end(&r));
	free(buf);
	close(p[0]);
	return NULL;
}

static void test_write_blocking_pipe(void **state)
{
	(void)state;
	wt_run(write_pipe_main, NULL, 1);
}

/* ------------------------------------------------------------ accept, connect */

static void connect_to(void *a)
{
	int port = (int)(intptr_t)a;
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {
		.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (connect(c, (struct sockaddr *)&sa, sizeof sa) == 0)
		usleep(100 * 1000); /* let the accept take it */
	close(c);
}

static int blocking_listener(void)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	TCHECK(lfd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	TCHECK_EQ(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	TCHECK_EQ(listen(lfd, 4), 0);
	return lfd;
}

static void *accept_main(void *a)
{
	(void)a;
	int lfd = blocking_listener();
	rescuer r;
	rescue_start(&r, connect_to, (void *)(intptr_t)weft_local_port(lfd));
	weft_time_t start = weft_now(), deadline = start + DEADLINE;
	int fd = weft_accept(lfd, NULL, NULL, deadline);
	check_timed_out(fd, deadline, start, weft_now());
	if (fd >= 0)
		weft_close(fd);
	TCHECK(!rescue_end(&r));
	weft_close(lfd);
	return NULL;
}

static void test_accept_blocking_listener(void **state)
{
	(void)state;
	wt_run(accept_main, NULL, 1);
}

struct unix_backlog {
	int lfd;
	char path[64];
};

static void accept_one(void *a)
{
	struct unix_backlog *u = a;
	int c = accept4(u->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c >= 0)
		close(c);
}

/* A Unix listener whose backlog is full: a blocking connect(2) would wait
 * for room (for good); weft_connect waits until its deadline. */
static void *connect_main(void *a)
{
	(void)a;
	struct unix_backlog u;
	snprintf(u.path, sizeof u.path, "@weft-blocking-connect-%d", (int)getpid());
	u.lfd = weft_unix_listen(u.path, 1);
	TCHECK(u.lfd >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t plen = strlen(u.path);
	memcpy(sa.sun_path, u.path, plen);
	sa.sun_path[0] = '\0';
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	int filler[8], nfill = 0;
	for (; nfill < 8; nfill++) {
		filler[nfill] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (connect(filler[nfill], (struct sockaddr *)&sa, salen) < 0) {
			TCHECK_EQ(errno, EAGAIN);
			close(filler[nfill]);
			break;
		}
	}
	TCHECK(nfill < 8); /* the backlog is full */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	TCHECK(fd >= 0);
	rescuer r;
	rescue_start(&r, accept_one, &u);
	weft_time_t start = weft_now(), deadline = start + DEADLINE;
	int c = weft_connect(fd, (struct sockaddr *)&sa, salen, deadline);
	check_timed_out(c, deadline, start, weft_now());
	TCHECK(!rescue_end(&r));
	TCHECK(nonblocking(fd));
	weft_close(fd);
	for (int i = 0; i < nfill; i++)
		close(filler[i]);
	weft_close(u.lfd);
	return NULL;
}

static void test_connect_blocking_unix_socket(void **state)
{
	(void)state;
	wt_run(connect_main, NULL, 1);
}

/* ------------------------------------------------------------ the server */

static void noop_conn(int fd, void *ctx)
{
	(void)fd, (void)ctx;
}

static void *serve_task(void *a)
{
	return (void *)(intptr_t)weft_server_serve(a);
}

static _Atomic bool served;

/* Connect again and again until serve has returned: a blocking accept4
 * would take each connection and block again. */
static void connect_until_served(void *a)
{
	while (!atomic_load(&served)) {
		connect_to(a);
		usleep(50 * 1000);
	}
}

/* The server's accept loop on a listener made by socket(2): one worker, and
 * stop must still end serve (a blocking accept4 would hold the worker). */
static void *server_main(void *a)
{
	(void)a;
	int lfd = blocking_listener();
	int port = weft_local_port(lfd);
	weft_server_t *s;
	TCHECK_EQ(weft_server_create(&s, lfd, noop_conn, NULL, NULL), 0);
	rescuer r;
	atomic_store(&served, false);
	rescue_start(&r, connect_until_served, (void *)(intptr_t)port);
	weft_task_t t = wt_spawn(serve_task, s);
	weft_sleep(20 * WEFT_MSEC);
	weft_time_t start = weft_now();
	TCHECK_EQ(weft_server_stop(s, weft_deadline_in(5 * WEFT_SEC)), 0);
	void *res;
	TCHECK_EQ(weft_join(t, &res), 0);
	TCHECK_EQ((intptr_t)res, 0);
	TCHECK(weft_now() - start < HANG_GUARD);
	atomic_store(&served, true);
	TCHECK(!rescue_end(&r));
	TCHECK_EQ(weft_server_destroy(s), 0);
	return NULL;
}

static void test_server_blocking_listener(void **state)
{
	(void)state;
	wt_run(server_main, NULL, 1);
}

/* ------------------------------------------------------------ other callers */

/* A plain thread: the call blocks the thread, but only until the deadline. */
static void test_plain_thread_read(void **state)
{
	(void)state;
	atomic_store(&tcheck_failures, 0);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	read_times_out(p[0], p[1]);
	close(p[0]);
	close(p[1]);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

typedef struct step_st {
	int fd;
	weft_time_t start, deadline, end;
	ssize_t r;
	weft_op_t op;
} step_st;

static weft_step_t read_step(void *a, void **res)
{
	step_st *st = a;
	char b;
	ssize_t n = weft_read_step(st->fd, &b, 1, st->deadline, &st->op);
	if (n == -EINPROGRESS)
		return WEFT_STEP_PARKED;
	st->r = n;
	st->end = weft_now();
	*res = NULL;
	return WEFT_STEP_DONE;
}

static void *step_main(void *a)
{
	(void)a;
	int p[2];
	TCHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	rescuer r;
	rescue_start(&r, write_byte, (void *)(intptr_t)p[1]);
	step_st st = {.fd = p[0], .op = WEFT_OP_INIT};
	st.start = weft_now();
	st.deadline = st.start + DEADLINE;
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, read_step, &st, NULL), 0);
	TCHECK_EQ(weft_join(t, NULL), 0);
	check_timed_out(st.r, st.deadline, st.start, st.end);
	TCHECK(!rescue_end(&r));
	weft_close(p[0]);
	close(p[1]);
	return NULL;
}

static void test_stackless_read_step(void **state)
{
	(void)state;
	wt_run(step_main, NULL, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		WT_IO_TEST(test_read_blocking_pipe),
		WT_IO_TEST(test_read_blocking_socketpair),
		WT_IO_TEST(test_readv_blocking_tcp_socket),
		WT_IO_TEST(test_recvfrom_blocking_udp_socket),
		WT_IO_TEST(test_write_blocking_pipe),
		WT_IO_TEST(test_accept_blocking_listener),
		WT_IO_TEST(test_connect_blocking_unix_socket),
		WT_IO_TEST(test_server_blocking_listener),
		WT_IO_TEST(test_plain_thread_read),
		WT_IO_TEST(test_stackless_read_step),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
