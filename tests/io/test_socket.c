/* test_socket.c - sockets: echo over many connections (TCP, Unix), UDP,
 * deadlines, cancellation of accept/read/connect, peer reset, EOF in the
 * middle of a message, bad and closed descriptors, vectors, sendfile, plain
 * thread clients, name resolution. */
#include "io/wt_io.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MSG 64

/* ------------------------------------------------------------ an echo server */

static void *echo_conn(void *a)
{
	int fd = (int)(intptr_t)a;
	char buf[4096];
	for (;;) {
		ssize_t n = weft_read(fd, buf, sizeof buf, WEFT_NEVER);
		if (n <= 0)
			break;
		if (weft_write_all(fd, buf, (size_t)n, WEFT_NEVER, NULL) != n)
			break;
	}
	weft_close(fd);
	return NULL;
}

/* Accepts until cancelled; one detached task per connection. */
static void *echo_acceptor(void *a)
{
	int lfd = (int)(intptr_t)a;
	for (;;) {
		int fd = weft_accept(lfd, NULL, NULL, WEFT_NEVER);
		if (fd == -ECANCELED)
			break;
		TCHECK(fd >= 0);
		if (fd < 0)
			break;
		TCHECK_EQ(weft_spawn(NULL, echo_conn, (void *)(intptr_t)fd, &(weft_spawn_opts_t){.detached = true}), 0);
	}
	return NULL;
}

/* ------------------------------------------------------------ clients */

typedef struct {
	int port;	  /* TCP port, or 0 */
	const char *path; /* Unix path, or NULL */
	int id, rounds;
	long ok;
} client;

static void fill(unsigned char *m, int id, int round)
{
	for (int i = 0; i < MSG; i++)
		m[i] = (unsigned char)(id * 131 + round * 7 + i);
}

static void *client_fn(void *a)
{
	client *c = a;
	int fd = c->path ? weft_unix_connect(c->path, wt_hang_deadline())
			 : weft_tcp_connect("127.0.0.1", (uint16_t)c->port, wt_hang_deadline());
	TCHECK(fd >= 0);
	if (fd < 0)
		return NULL;
	unsigned char out[MSG], in[MSG];
	for (int r = 0; r < c->rounds; r++) {
		fill(out, c->id, r);
		TCHECK_EQ(weft_write_all(fd, out, MSG, wt_hang_deadline(), NULL), MSG);
		ssize_t n = weft_read_full(fd, in, MSG, wt_hang_deadline(), NULL);
		TCHECK_EQ(n, MSG);
		if (n != MSG)
			break;
		TCHECK(memcmp(in, out, MSG) == 0);
		c->ok++;
	}
	TCHECK_EQ(weft_shutdown(fd, SHUT_WR), 0);
	TCHECK_EQ(weft_read(fd, in, 1, wt_hang_deadline()), 0); /* the server closes after EOF */
	TCHECK_EQ(weft_close(fd), 0);
	return NULL;
}

#define CONNS WT_SIZE(400, 64)
#define ROUNDS WT_SIZE(50, 10)

static void run_clients(int port, const char *path)
{
	client *cs = calloc(CONNS, sizeof *cs);
	weft_task_t *ts = calloc(CONNS, sizeof *ts);
	for (int i = 0; i < CONNS; i++) {
		cs[i] = (client){.port = port, .path = path, .id = i, .rounds = ROUNDS};
		ts[i] = wt_spawn(client_fn, &cs[i]);
	}
	long ok = 0;
	for (int i = 0; i < CONNS; i++) {
		wt_join(ts[i]);
		ok += cs[i].ok;
	}
	TCHECK_EQ(ok, (long)CONNS * ROUNDS);
	free(cs);
	free(ts);
}

static void *tcp_echo_main(void *a)
{
	(void)a;
	int lfd = weft_tcp_listen("127.0.0.1", 0, 1024);
	TCHECK(lfd >= 0);
	int port = weft_local_port(lfd);
	TCHECK(port > 0);
	weft_task_t acc = wt_spawn(echo_acceptor, (void *)(intptr_t)lfd);
	run_clients(port, NULL);
	weft_cancel(acc);
	wt_join(acc);
	weft_sleep(5 * WEFT_MSEC); /* let the connection tasks see EOF and close */
	TCHECK_EQ(weft_close(lfd), 0);
	return NULL;
}

static void test_tcp_echo(void **state)
{
	(void)state;
	wt_run(tcp_echo_main, NULL, 0);
}

static void *unix_echo_main(void *a)
{
	(void)a;
	char path[64];
	snprintf(path, sizeof path, "@weft-test-%d", (int)getpid());
	int lfd = weft_unix_listen(path, 1024);
	TCHECK(lfd >= 0);
	weft_task_t acc = wt_spawn(echo_acceptor, (void *)(intptr_t)lfd);
	run_clients(0, path);
	weft_cancel(acc);
	wt_join(acc);
	weft_sleep(5 * WEFT_MSEC);
	TCHECK_EQ(weft_close(lfd), 0);
	TCHECK_EQ(weft_unix_connect(path, wt_hang_deadline()), -ECONNREFUSED);
	TCHECK_EQ(weft_unix_listen("", 0), -EINVAL);
	char longp[200];
	memset(longp, 'x', sizeof longp - 1);
	longp[sizeof longp - 1] = 0;
	TCHECK_EQ(weft_unix_listen(longp, 0), -ENAMETOOLONG);
	return NULL;
}

static void test_unix_echo(void **state)
{
	(void)state;
	wt_run(unix_echo_main, NULL, 0);
}

/* ------------------------------------------------------------ UDP */

static void *udp_server(void *a)
{
	int fd = (int)(intptr_t)a;
	char buf[256];
	struct sockaddr_storage from;
	for (int i = 0; i < 100; i++) {
		socklen_t fl = sizeof from;
		ssize_t n = weft_recvfrom(fd, buf, sizeof buf, (struct sockaddr *)&from, &fl, wt_hang_deadline());
		TCHECK(n > 0);
		if (n <= 0)
			break;
		TCHECK_EQ(weft_sendto(fd, buf, (size_t)n, (struct sockaddr *)&from, fl, WEFT_NEVER), n);
	}
	return NULL;
}

static void *udp_main(void *a)
{
	(void)a;
	int s = weft_udp_bind("127.0.0.1", 0);
	TCHECK(s >= 0);
	int c = weft_udp_bind(NULL, 0);
	TCHECK(c >= 0);
	struct sockaddr_in to = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)weft_local_port(s)),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	weft_task_t t = wt_spawn(udp_server, (void *)(intptr_t)s);
	for (int i = 0; i < 100; i++) {
		char m[32], r[32];
		int len = snprintf(m, sizeof m, "datagram %d", i);
		TCHECK_EQ(weft_sendto(c, m, (size_t)len, (struct sockaddr *)&to, sizeof to, WEFT_NEVER), len);
		TCHECK_EQ(weft_recvfrom(c, r, sizeof r, NULL, NULL, wt_hang_deadline()), len);
		TCHECK(memcmp(m, r, (size_t)len) == 0);
	}
	wt_join(t);
	char b[8];
	TCHECK_EQ(weft_recvfrom(c, b, sizeof b, NULL, NULL, weft_deadline_in(5 * WEFT_MSEC)), -ETIMEDOUT);
	weft_close(s);
	weft_close(c);
	return NULL;
}

static void test_udp(void **state)
{
	(void)state;
	wt_run(udp_main, NULL, 2);
}

/* ------------------------------------------------------------ deadlines, cancellation */

static void *accept_forever(void *a)
{
	return (void *)(intptr_t)weft_accept((int)(intptr_t)a, NULL, NULL, WEFT_NEVER);
}

static void *read_forever(void *a)
{
	char b[8];
	return (void *)(intptr_t)weft_read((int)(intptr_t)a, b, sizeof b, WEFT_NEVER);
}

static void *readv10(void *a)
{
	char x[4], y[6];
	struct iovec iov[2] = {{x, sizeof x}, {y, sizeof y}};
	return (void *)(intptr_t)weft_readv((int)(intptr_t)a, iov, 2, wt_hang_deadline());
}

static int g_full_port;

static void *connect_forever(void *a)
{
	(void)a;
	return (void *)(intptr_t)weft_tcp_connect("127.0.0.1", (uint16_t)g_full_port, WEFT_NEVER);
}

/* A TCP listener's accept queue: its length, and whether it is full. */
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

static intptr_t join_result(weft_task_t t)
{
	void *r = NULL;
	TCHECK_EQ(weft_join(t, &r), 0);
	return (intptr_t)r;
}

static void *deadline_cancel_main(void *a)
{
	(void)a;
	int lfd = weft_tcp_listen("127.0.0.1", 0, 16);
	TCHECK(lfd >= 0);
	int port = weft_local_port(lfd);
	/* accept: deadline, then cancellation. */
	weft_time_t t0 = weft_now();
	TCHECK_EQ(weft_accept(lfd, NULL, NULL, weft_deadline_in(10 * WEFT_MSEC)), -ETIMEDOUT);
	TCHECK(weft_now() - t0 >= 10 * WEFT_MSEC);
	weft_task_t t = wt_spawn(accept_forever, (void *)(intptr_t)lfd);
	weft_sleep(5 * WEFT_MSEC);
	weft_cancel(t);
	TCHECK_EQ(join_result(t), -ECANCELED);

	/* read: deadline, then cancellation. */
	int c = weft_tcp_connect("127.0.0.1", (uint16_t)port, wt_hang_deadline());
	TCHECK(c >= 0);
	int s = weft_accept(lfd, NULL, NULL, wt_hang_deadline());
	TCHECK(s >= 0);
	char b[8];
	t0 = weft_now();
	TCHECK_EQ(weft_read(s, b, sizeof b, weft_deadline_in(10 * WEFT_MSEC)), -ETIMEDOUT);
	TCHECK(weft_now() - t0 >= 10 * WEFT_MSEC);
	TCHECK_EQ(weft_read_full(s, b, sizeof b, weft_now(), NULL), -ETIMEDOUT);
	t = wt_spawn(read_forever, (void *)(intptr_t)s);
	weft_sleep(5 * WEFT_MSEC);
	weft_cancel(t);
	TCHECK_EQ(join_result(t), -ECANCELED);
	/* The connection still works after the cancelled read. */
	TCHECK_EQ(weft_write_all(c, "hello", 5, WEFT_NEVER, NULL), 5);
	TCHECK_EQ(weft_read_full(s, b, 5, wt_hang_deadline(), NULL), 5);
	TCHECK(memcmp(b, "hello", 5) == 0);
	/* write: fill the socket buffers until a deadline stops us. */
	static char big[1 << 16];
	ssize_t w;
	int rounds = 0;
	while ((w = weft_write(c, big, sizeof big, weft_deadline_in(20 * WEFT_MSEC))) > 0)
		rounds++;
	TCHECK_EQ(w, -ETIMEDOUT);
	TCHECK(rounds > 0);
	/* weft_close wakes a reader with -EBADF. */
	int c2 = weft_tcp_connect("127.0.0.1", (uint16_t)port, wt_hang_deadline());
	int s2 = weft_accept(lfd, NULL, NULL, wt_hang_deadline());
	t = wt_spawn(read_forever, (void *)(intptr_t)s2);
	weft_sleep(5 * WEFT_MSEC);
	TCHECK_EQ(weft_close(s2), 0);
	TCHECK_EQ(join_result(t), -EBADF);
	weft_close(c2);
	weft_close(c);
	weft_close(s);
	weft_close(lfd);

	/* connect: a listener whose accept queue is full drops SYNs, so the
	 * connect hangs: first a deadline, then cancellation. Fill the queue
	 * with connects that must succeed, until the listener says it is full
	 * (TCP_INFO of a listener: tcpi_unacked is the accept queue's length,
	 * tcpi_sacked its limit; full when the length exceeds the limit). */
	int full = weft_tcp_listen("127.0.0.1", 0, 1);
	g_full_port = weft_local_port(full);
	int fill_fds[8], nfill = 0;
	while (!accept_queue_full(full) && nfill < 8) {
		int r = weft_tcp_connect("127.0.0.1", (uint16_t)g_full_port, wt_hang_deadline());
		TCHECK(r >= 0);
		if (r < 0)
			break;
		fill_fds[nfill++] = r;
		/* its handshake's last ACK is queued on the listener's side too */
		WT_WAIT_UNTIL(accept_queue_len(full) == nfill);
	}
	TCHECK(accept_queue_full(full));
	TCHECK_EQ(weft_tcp_connect("127.0.0.1", (uint16_t)g_full_port, weft_deadline_in(20 * WEFT_MSEC)), -ETIMEDOUT);
	t = wt_spawn(connect_forever, NULL);
	weft_sleep(10 * WEFT_MSEC);
	weft_cancel(t);
	TCHECK_EQ(join_result(t), -ECANCELED);
	for (int i = 0; i < nfill; i++)
		weft_close(fill_fds[i]);
	weft_close(full);
	return NULL;
}

static void test_deadline_cancel(void **state)
{
	(void)state;
	wt_run(deadline_cancel_main, NULL, 2);
}

/* ------------------------------------------------------------ faults */

static void *faults_main(void *a)
{
	(void)a;
	int lfd = weft_tcp_listen(NULL, 0, 16);
	TCHECK(lfd >= 0);
	int c, s;
	char b[MSG];

	/* EOF in the middle of a message, and at a message boundary. */
	wt_tcp_accepted(lfd, &c, &s);
	TCHECK_EQ(weft_write_all(c, "0123456789", 10, WEFT_NEVER, NULL), 10);
	TCHECK_EQ(weft_shutdown(c, SHUT_WR), 0);
	TCHECK_EQ(weft_read_full(s, b, MSG, wt_hang_deadline(), NULL), -EPROTO);
	TCHECK_EQ(weft_read_full(s, b, MSG, wt_hang_deadline(), NULL), 0);
	TCHECK_EQ(weft_read(s, b, MSG, wt_hang_deadline()), 0);
	weft_close(c);
	weft_close(s);

	/* Data and end of file reported together to a parked reader: the short
	 * read is followed by end of file, not by a wait for a report that
	 * never comes. */
	for (int i = 0; i < 20; i++) {
		wt_tcp_accepted(lfd, &c, &s);
		weft_task_t rd = wt_spawn(read_forever, (void *)(intptr_t)s);
		weft_sleep(WEFT_MSEC);
		TCHECK_EQ(weft_write_all(c, "abc", 3, WEFT_NEVER, NULL), 3);
		TCHECK_EQ(weft_shutdown(c, SHUT_WR), 0);
		TCHECK_EQ(join_result(rd), 3);
		TCHECK_EQ(weft_read(s, b, MSG, wt_hang_deadline()), 0);
		weft_close(c);
		weft_close(s);
	}

	/* A short weft_read, then a readv that waits and fills its buffer, then
	 * weft_read again: the rest must come without a new report. */
	wt_tcp_accepted(lfd, &c, &s);
	TCHECK_EQ(weft_write_all(c, "ab", 2, WEFT_NEVER, NULL), 2);
	TCHECK_EQ(weft_read(s, b, MSG, wt_hang_deadline()), 2);
	weft_task_t rv = wt_spawn(readv10, (void *)(intptr_t)s);
	weft_sleep(2 * WEFT_MSEC);
	static char hundred[100];
	TCHECK_EQ(weft_write_all(c, hundred, sizeof hundred, WEFT_NEVER, NULL), 100);
	TCHECK_EQ(join_result(rv), 10);
	TCHECK_EQ(weft_read_full(s, b, 60, wt_hang_deadline(), NULL), 60);
	TCHECK_EQ(weft_read(s, b, MSG, wt_hang_deadline()), 30);
	weft_close(c);
	weft_close(s);

	/* Peer reset: SO_LINGER 0 makes close send RST. */
	wt_tcp_accepted(lfd, &c, &s);
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	TCHECK_EQ(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
	weft_task_t t = wt_spawn(read_forever, (void *)(intptr_t)s);
	weft_sleep(5 * WEFT_MSEC);
	weft_close(c);
	TCHECK_EQ(join_result(t), -ECONNRESET);
	weft_close(s);

	/* Writing to a closed peer: -EPIPE or -ECONNRESET, never SIGPIPE.
	 * The first writes may succeed until the peer's reset has come back
	 * (over loopback that can wait for ksoftirqd on a loaded machine): keep
	 * writing, a little at a time, until one fails. */
	wt_tcp_accepted(lfd, &c, &s);
	weft_close(s);
	ssize_t w = 0;
	for (weft_time_t give_up = wt_hang_deadline(); w >= 0 && weft_now() < give_up;) {
		w = weft_write(c, b, sizeof b, wt_hang_deadline());
		if (w >= 0)
			weft_sleep(WEFT_MSEC / 4);
	}
	TCHECK(w == -EPIPE || w == -ECONNRESET);
	weft_close(c);

	/* Refused, bad and closed descriptors. */
	/* A port bound but not listening (held for the whole check, so nothing
	 * else can take it meanwhile) refuses. */
	int dead = weft_socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in da = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	TCHECK_EQ(bind(dead, (struct sockaddr *)&da, sizeof da), 0);
	int dead_port = weft_local_port(dead);
	TCHECK_EQ(weft_tcp_connect("127.0.0.1", (uint16_t)dead_port, wt_hang_deadline()), -ECONNREFUSED);
	weft_close(dead);
	TCHECK_EQ(weft_tcp_connect("127.0.0.1", 0, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_read(-1, b, 1, WEFT_NEVER), -EBADF);
	TCHECK_EQ(weft_write(-1, b, 1, WEFT_NEVER), -EBADF);
	TCHECK_EQ(weft_read(s, b, 1, WEFT_NEVER), -EBADF); /* s is closed (its number may be reused: not here) */
	TCHECK_EQ(weft_accept(-1, NULL, NULL, WEFT_NEVER), -EBADF);
	TCHECK_EQ(weft_read(lfd, NULL, 1, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_shutdown(lfd, 7), -EINVAL);
	TCHECK_EQ(weft_socket(AF_INET, 12345, 0), -EINVAL);
	int unconnected = weft_socket(AF_INET, SOCK_STREAM, 0);
	TCHECK_EQ(weft_accept(unconnected, NULL, NULL, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_read(unconnected, b, 1, WEFT_NEVER), -ENOTCONN);
	weft_close(unconnected);
	TCHECK_EQ(weft_close(unconnected), -EBADF);
	weft_close(lfd);
	return NULL;
}

static void test_faults(void **state)
{
	(void)state;
	wt_run(faults_main, NULL, 2);
}

/* ------------------------------------------------------------ vectors, sendfile, names */

typedef struct {
	int s;
	unsigned char *back;
	size_t n;
} read_job;

static void *read_job_fn(void *p)
{
	read_job *r = p;
	return (void *)(intptr_t)weft_read_full(r->s, r->back, r->n, wt_hang_deadline(), NULL);
}

static void *vectors_main(void *a)
{
	(void)a;
	int lfd = weft_tcp_listen("localhost", 0, 16); /* a name: resolved on the blocking pool */
	TCHECK(lfd >= 0);
	int c, s;
	wt_tcp_accepted(lfd, &c, &s);
	struct iovec out[3] = {{"abc", 3}, {"defg", 4}, {"h", 1}};
	TCHECK_EQ(weft_writev(c, out, 3, WEFT_NEVER), 8);
	char x[3], y[5];
	struct iovec in[2] = {{x, 3}, {y, 5}};
	ssize_t got = 0;
	while (got < 8) {
		ssize_t n = weft_readv(s, in, 2, wt_hang_deadline());
		TCHECK(n > 0);
		if (n <= 0)
			break;
		got += n;
		/* loopback delivers the 8 bytes in one segment */
	}
	TCHECK(memcmp(x, "abc", 3) == 0 && memcmp(y, "defgh", 5) == 0);
	TCHECK_EQ(weft_writev(c, NULL, -1, WEFT_NEVER), -EINVAL);

	/* sendfile: a 1 MiB file, then a request past its end. */
	char tmpl[] = "/tmp/weft-sendfile-XXXXXX";
	int f = mkostemp(tmpl, O_CLOEXEC);
	TCHECK(f >= 0);
	unlink(tmpl);
	size_t fsz = 1 << 20;
	unsigned char *data = malloc(fsz), *back = malloc(fsz);
	for (size_t i = 0; i < fsz; i++)
		data[i] = (unsigned char)(i * 2654435761u >> 13);
	TCHECK_EQ(write(f, data, fsz), (ssize_t)fsz);
	read_job rd = {s, back, fsz};
	weft_task_t t = wt_spawn(read_job_fn, &rd);
	off_t off = 0;
	TCHECK_EQ(weft_sendfile(c, f, &off, fsz, wt_hang_deadline()), (ssize_t)fsz);
	TCHECK_EQ(off, (off_t)fsz);
	TCHECK_EQ(join_result(t), (intptr_t)fsz);
	TCHECK(memcmp(data, back, fsz) == 0);
	off = (off_t)fsz - 10;
	TCHECK_EQ(weft_sendfile(c, f, &off, 100, WEFT_NEVER), 10);
	TCHECK_EQ(weft_read_full(s, back, 10, wt_hang_deadline(), NULL), 10);
	TCHECK(memcmp(back, data + fsz - 10, 10) == 0);
	close(f);
	free(data);
	free(back);

	struct addrinfo *ai = NULL;
	TCHECK_EQ(weft_getaddrinfo("localhost", "80", &(struct addrinfo){.ai_socktype = SOCK_STREAM}, &ai), 0);
	TCHECK(ai != NULL);
	if (ai)
		freeaddrinfo(ai);
	int r = weft_getaddrinfo("no-such-host.invalid", NULL, NULL, &ai);
	TCHECK(r == -ENOENT || r == -EAGAIN);
	TCHECK_EQ(weft_getaddrinfo(NULL, NULL, NULL, &ai), -EINVAL);
	weft_close(c);
	weft_close(s);
	weft_close(lfd);
	return NULL;
}

static void test_vectors_sendfile_names(void **state)
{
	(void)state;
	wt_run(vectors_main, NULL, 2);
}

/* ------------------------------------------------------------ plain threads */

static int g_port;

static void *thread_client(void *a)
{
	client c = {.port = g_port, .id = (int)(intptr_t)a, .rounds = 20};
	client_fn(&c);
	return (void *)c.ok;
}

static void *threads_main(void *a)
{
	(void)a;
	int lfd = weft_tcp_listen("127.0.0.1", 0, 64);
	g_port = weft_local_port(lfd);
	weft_task_t acc = wt_spawn(echo_acceptor, (void *)(intptr_t)lfd);
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, thread_client, (void *)(intptr_t)i);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(th[i], &r); /* blocks this worker: the others serve */
		TCHECK_EQ((intptr_t)r, 20);
	}
	weft_cancel(acc);
	wt_join(acc);
	weft_sleep(5 * WEFT_MSEC);
	weft_close(lfd);
	return NULL;
}

static void test_thread_clients(void **state)
{
	(void)state;
	wt_run(threads_main, NULL, 2);
}

/* write_all and read_full say how far they got when they fail: a write
 * into a pipe nobody reads stops at the deadline with *done bytes in the
 * pipe, exactly; a read that meets end of file early has *done bytes. */
static void *partial_main(void *a)
{
	(void)a;
	int p[2];
	TCHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	enum { BIG = 1 << 20 };
	char *big = calloc(1, BIG);
	size_t done = 12345;
	TCHECK_EQ(weft_write_all(p[1], big, BIG, weft_deadline_in(5 * WEFT_MSEC), &done), -ETIMEDOUT);
	TCHECK(done > 0 && done < BIG);
	size_t drained = 0;
	for (ssize_t n; (n = read(p[0], big, BIG)) > 0;)
		drained += (size_t)n;
	TCHECK_EQ(drained, done);
	TCHECK_EQ(weft_write_all(p[1], "0123456789", 10, WEFT_NEVER, &done), 10);
	TCHECK_EQ(done, 10);
	TCHECK_EQ(weft_close(p[1]), 0);
	TCHECK_EQ(weft_read_full(p[0], big, 20, WEFT_NEVER, &done), -EPROTO);
	TCHECK_EQ(done, 10);
	TCHECK_EQ(weft_read_full(p[0], big, 20, WEFT_NEVER, &done), 0); /* end of file first */
	TCHECK_EQ(done, 0);
	TCHECK_EQ(weft_write_all(-1, NULL, 1, WEFT_NEVER, &done), -EINVAL);
	TCHECK_EQ(done, 0);
	TCHECK_EQ(weft_close(p[0]), 0);
	free(big);
	return NULL;
}

static void test_partial_transfers(void **state)
{
	(void)state;
	wt_run(partial_main, NULL, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		WT_IO_TEST(test_tcp_echo),
		WT_IO_TEST(test_unix_echo),
		WT_IO_TEST(test_udp),
		WT_IO_TEST(test_deadline_cancel),
		WT_IO_TEST(test_faults),
		WT_IO_TEST(test_vectors_sendfile_names),
		WT_IO_TEST(test_thread_clients),
		WT_IO_TEST(test_partial_transfers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
