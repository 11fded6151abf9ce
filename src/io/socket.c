/* socket.c - sockets on the netpoller: TCP, UDP and Unix; reads, writes,
 * vectors, datagrams, sendfile; name resolution on the blocking pool.
 *
 * Every operation is written once, for every kind of caller, in the shape
 * of the wait engine (poll.c, "One wait engine"): weft__io_begin, then the
 * system call on the non-blocking descriptor; on EAGAIN weft__io_wait,
 * which parks a coroutine, poll(2)s in a plain thread or registers a
 * stackless task's op (-EINPROGRESS: the step function returns, and the
 * repeated call starts over at weft__io_begin), and the call tries again.
 * A blocking form and its _step form differ only in the op they pass
 * (none, or the caller's). The wait carries the deadline and returns
 * -ECANCELED for a cancelled task, so every operation has both for free. A
 * descriptor the caller passed in is made non-blocking by weft__io_begin,
 * or the system call itself would wait, past the deadline. Writes to
 * sockets use MSG_NOSIGNAL; a descriptor found not to be a socket
 * (ENOTSOCK) is remembered in its slot and written with write(2) from then
 * on, marked so that SIGPIPE cannot kill (IO_NOSIGPIPE, see poll.c).
 *
 * The calls that move a whole buffer (weft_read_full, weft_write_all) and
 * weft_sendfile count the bytes moved in io_call.progress, which the op of
 * their _step forms keeps from the registration to the repeat: the repeat
 * goes on from there, with the same buffer and length (begin_whole).
 *
 * weft_tcp_connect and weft_unix_connect open their socket themselves, so
 * their _step forms keep it in the op (weft__io_begin_obj: their object is
 * the host or path); weft_tcp_connect's keeps the addresses it has still
 * to try there too (io_call.progress: the rest of the getaddrinfo list,
 * whose head is the address being connected). Its name lookup, when the
 * host is not numeric, runs on the blocking pool with the op as the pool
 * job's (weft__pool_step), before the connect registers in the same op:
 * a repeat finds which of the two waits it is registered in by asking
 * weft_step_begin for the connect first (WEFT__IO_DIAL_STEP), then for
 * the lookup. The repeat passes the same host and port, so it finds the
 * registration; an -EBUSY from the first asks the second.
 */
#include "io_impl.h"

#include <arpa/inet.h>
#include <assert.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

/* The retry loop of the operations on an io_call c that has begun: take a
 * mark of fd's reports, then try `call` (an expression giving ssize_t,
 * setting errno) until it succeeds, fails with something other than
 * EAGAIN, or the wait fails (or registers: -EINPROGRESS); returns that from
 * the enclosing function. The mark lets the wait see the reports that came
 * after the attempt began, so that several tasks on one descriptor cannot
 * take each other's wake-ups (see "Several tasks on one descriptor" in
 * poll.c). */
#define IO_RETRY(c, events, call)                                                                                      \
	for (;;) {                                                                                                     \
		io_mark m_ = weft__io_call_mark(c);                                                                    \
		ssize_t n_ = (call);                                                                                   \
		if (n_ >= 0)                                                                                           \
			return n_;                                                                                     \
		int e_ = errno;                                                                                        \
		if (e_ == EINTR)                                                                                       \
			continue;                                                                                      \
		if (e_ != EAGAIN && e_ != EWOULDBLOCK)                                                                 \
			return -e_;                                                                                    \
		int w_ = weft__io_wait((c), (events), &m_);                                                            \
		assert(w_ != 0); /* a ready mask, or an error */                                                       \
		if (w_ < 0)                                                                                            \
			return w_;                                                                                     \
	}

/* The hot transfers go straight to the kernel: glibc's recv/send wrap the
 * system call in cancellation-point bookkeeping (two calls each) that weft,
 * which does not use pthread cancellation, does not need. */
static inline ssize_t sys_recv(int fd, void *buf, size_t len)
{
	return syscall(SYS_recvfrom, fd, buf, len, 0, NULL, NULL);
}

static inline ssize_t sys_send(int fd, const void *buf, size_t len)
{
	return syscall(SYS_sendto, fd, buf, len, MSG_NOSIGNAL, NULL, 0);
}

/* Whether c's descriptor is known not to be a socket (writes use
 * write(2)): its slot says, if the call holds it. */
static bool notsock(const io_call *c)
{
	return c->s ? atomic_load_explicit(&c->s->flags, memory_order_relaxed) & IO_NOTSOCK : weft__io_notsock(c->fd);
}

static void set_notsock(io_call *c)
{
	if (c->s)
		atomic_fetch_or_explicit(&c->s->flags, IO_NOTSOCK, memory_order_relaxed);
	else
		weft__io_set_notsock(c->fd);
}

/* One write of any descriptor: send, or write(2) for one known (or just
 * found) not to be a socket. -1 and errno on failure. Socket writes use
 * MSG_NOSIGNAL; only the others need SIGPIPE handled. */
static ssize_t write_once(io_call *c, const void *buf, size_t len)
{
	if (!notsock(c)) {
		ssize_t n = sys_send(c->fd, buf, len);
		assert(n < 0 || (size_t)n <= len);
		if (n >= 0 || errno != ENOTSOCK)
			return n;
		set_notsock(c);
	}
	return IO_NOSIGPIPE(write(c->fd, buf, len));
}

static ssize_t writev_once(io_call *c, const struct iovec *iov, int iovcnt)
{
	if (!notsock(c)) {
		struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
		ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
		if (n >= 0 || errno != ENOTSOCK)
			return n;
		set_notsock(c);
	}
	return IO_NOSIGPIPE(writev(c->fd, iov, iovcnt));
}

/* ------------------------------------------------------------ sockets */

/* Under sim only AF_UNIX: other families' readiness is not a function of
 * the schedule (sim.c). */
static bool sim_refuses(int family)
{
	return family != AF_UNIX && weft__io_sim();
}

int weft_socket(int domain, int type, int protocol)
{
	int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (base != SOCK_STREAM && base != SOCK_DGRAM && base != SOCK_SEQPACKET)
		return -EINVAL;
	if (sim_refuses(domain))
		return -ENOTSUP;
	int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
	if (fd < 0)
		return -errno;
	int r = weft__io_own(fd, IO_OWN_NONBLOCK);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int weft_bind_listen(int fd, const struct sockaddr *addr, socklen_t len, int backlog)
{
	if (fd < 0)
		return -EBADF;
	if (!addr)
		return -EINVAL;
	if (sim_refuses(addr->sa_family))
		return -ENOTSUP;
	if (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) {
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	}
	if (bind(fd, addr, len) < 0)
		return -errno;
	if (listen(fd, backlog <= 0 ? SOMAXCONN : backlog) < 0)
		return -errno;
	return 0;
}

/* After a wait for POLLOUT on a connecting socket: 0 (connected),
 * -EINPROGRESS (not yet: the report was stale), or the connection's error. */
static int connect_check(int fd)
{
	int err = 0;
	socklen_t el = sizeof err;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		return -errno;
	if (err)
		return -err;
	/* Writable and no error: connected, unless the report was stale. */
	struct sockaddr_storage peer;
	socklen_t pl = sizeof peer;
	if (getpeername(fd, (struct sockaddr *)&peer, &pl) == 0) {
		weft__io_connected(fd);
		return 0;
	}
	return errno == ENOTCONN ? -EINPROGRESS : -errno;
}

/* Start connecting: 0 (connected), -EINPROGRESS (wait for POLLOUT), or an
 * error; -EAGAIN for a Unix socket means the listener's backlog is full
 * (nothing to poll for; for TCP it means no free local port). */
static int connect_start(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (connect(fd, addr, len) == 0) {
		weft__io_connected(fd);
		return 0;
	}
	/* EINTR: the connection goes on in the background, as for EINPROGRESS. */
	return errno == EINTR ? -EINPROGRESS : -errno;
}

/* Connect c's descriptor (c has begun; w is what its start returned: > 0
 * for a repeat whose wait for POLLOUT ended, which asks how the connection
 * it started went). 0, -EINPROGRESS (registered in c's op), or an error. */
static int connect_on(io_call *c, const struct sockaddr *addr, socklen_t len, int w)
{
	io_mark m = weft__io_call_mark(c);
	int r = w > 0 ? connect_check(c->fd) : connect_start(c->fd, addr, len);
	while (r == -EAGAIN && addr->sa_family == AF_UNIX) {
		/* The listener's backlog is full: nothing to wait for in the
		 * poller, so a coroutine or thread sleeps and tries again; a
		 * stackless task gets -EAGAIN (io.h). */
		uint8_t kind = weft__io_kind(c);
		if (kind != IO_PARK && kind != IO_POLL)
			return r;
		if (weft__io_deadline_passed(c->deadline))
			return -ETIMEDOUT;
		r = weft_sleep(WEFT_MSEC);
		if (r < 0)
			return r;
		m = weft__io_call_mark(c);
		r = connect_start(c->fd, addr, len);
	}
	while (r == -EINPROGRESS) {
		w = weft__io_wait(c, POLLOUT, &m);
		if (w < 0)
			return w;
		m = weft__io_call_mark(c);
		r = connect_check(c->fd);
	}
	return r;
}

/* weft_connect and weft_connect_step. */
static int connect_call(int fd, const struct sockaddr *addr, socklen_t len, weft_time_t deadline, weft_op_t *op)
{
	if (fd < 0)
		return -EBADF;
	if (!addr)
		return -EINVAL;
	if (sim_refuses(addr->sa_family))
		return -ENOTSUP;
	io_call c; /* non-blocking: a blocking connect would wait out its own timeout */
	int w = weft__io_begin(&c, fd, deadline, op, WEFT__IO_CONNECT_STEP, 0);
	return w < 0 ? w : connect_on(&c, addr, len, w);
}

int weft_connect(int fd, const struct sockaddr *addr, socklen_t len, weft_time_t deadline)
{
	return connect_call(fd, addr, len, deadline, NULL);
}

int weft_connect_step(int fd, const struct sockaddr *addr, socklen_t len, weft_time_t deadline, weft_op_t *op)
{
	return op ? connect_call(fd, addr, len, deadline, op) : -EINVAL;
}

/* One accept4: the new fd (registered), or -1 and errno. */
static int accept_once(int lfd, struct sockaddr *addr, socklen_t *len)
{
	int fd = accept4(lfd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0) {
		int r = weft__io_own(fd, IO_OWN_NONBLOCK);
		if (r < 0) {
			close(fd);
			errno = -r;
			return -1;
		}
	}
	return fd;
}

static int accept_call(int lfd, struct sockaddr *addr, socklen_t *len, weft_time_t deadline, weft_op_t *op)
{
	if (lfd < 0)
		return -EBADF;
	if (addr && !len)
		return -EINVAL;
	io_call c;
	int w = weft__io_begin(&c, lfd, deadline, op, WEFT__IO_ACCEPT_STEP, 0);
	if (w < 0)
		return w;
	IO_RETRY(&c, POLLIN, accept_once(lfd, addr, len));
}

int weft_accept(int lfd, struct sockaddr *addr, socklen_t *len, weft_time_t deadline)
{
	return accept_call(lfd, addr, len, deadline, NULL);
}

int weft_accept_step(int lfd, struct sockaddr *addr, socklen_t *len, weft_time_t deadline, weft_op_t *op)
{
	return op ? accept_call(lfd, addr, len, deadline, op) : -EINVAL;
}

int weft_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &l) < 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}

int weft_shutdown(int fd, int how)
{
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return -EINVAL;
	return shutdown(fd, how) < 0 ? -errno : 0;
}

/* ------------------------------------------------------------ reading, writing */

/* Reads skip the system call that would only say EAGAIN (as Tokio does):
 * on a TCP socket, a read that returns fewer bytes than asked for (or
 * EAGAIN) marks the slot IO_DRAINED and remembers how many POLLIN reports
 * had been counted before it (drained_at); the next read waits first if no
 * report has come since, whatever the POLLIN bit says (its wait is marked,
 * see "Several tasks on one descriptor" in poll.c). Safe because data
 * that arrives after the draining read began is reported again, and every
 * report bumps in_edges (epoll: a new edge; io_uring: a multishot completion,
 * or the poll armed by the wait, which checks the queue when armed). A short
 * read of a datagram, pipe or terminal, or of a Unix stream (which stops
 * at a message carrying descriptors or credentials), says nothing about
 * what is queued behind it, so those never use the shortcut; nor does a
 * TCP socket once urgent data was reported (POLLPRI in slot->seen: a read
 * stops at the urgent mark). End of file and errors persist without new
 * reports, so once a hang-up or error has been reported (slot->seen, never
 * consumed) reads always try the system call. Other reads of the same
 * descriptor (weft_readv, weft_recvfrom, weft_fd_wait then read(2)) read
 * what a report announced without weft_read seeing it, so their waits clear
 * IO_DRAINED (the next weft_read tries the system call).
 *
 * Any reader keeps the mark (it says what the queue held), but only the
 * callers that wait for reports in the poller may take the shortcut: a
 * coroutine, and a stackless task in a _step form, whose repeated call
 * starts over at the drained check. A plain thread waits with poll(2),
 * which counts no reports, and a stackless task in weft_read cannot wait
 * at all: both always try the system call; so does a call whose deadline
 * has passed (it polls: it must see data that came and was not reported
 * yet). */
static bool waits_for_reports(io_call *c)
{
	uint8_t kind = weft__io_kind(c);
	return (kind == IO_PARK || kind == IO_REGISTER) && !weft__io_deadline_passed(c->deadline);
}

static ssize_t read_some(io_call *c, void *buf, size_t len)
{
	assert(c->reader);
	for (;;) {
		io_slot *s = c->s; /* set by the first wait, if fd was not registered */
		uint32_t f = s ? atomic_load_explicit(&s->flags, memory_order_relaxed) : 0;
		if ((f & IO_DRAINED) && len > 0 && !atomic_load_explicit(&s->seen, memory_order_relaxed)) {
			/* Drained, and no report for readers since the read that
			 * drained it (a hang-up or error counts too, see
			 * count_report in poll.c), and none ever (slot->seen):
			 * wait, whatever the bits say. */
			uint32_t at = atomic_load_explicit(&s->drained_at, memory_order_relaxed);
			if (atomic_load_explicit(&s->in_edges, memory_order_acquire) == at && waits_for_reports(c)) {
				io_mark since = {.in = at, .valid = true};
				int w = weft__io_wait(c, POLLIN, &since);
				assert(w != 0);
				if (w < 0)
					return w;
				continue;
			}
		}
		/* Reports counted before the read: one that comes after it may
		 * carry data the read did not see. */
		io_mark m = weft__io_call_mark(c);
		ssize_t n = !s || (f & IO_NOTSOCK) ? read(c->fd, buf, len) : sys_recv(c->fd, buf, len);
		if (n < 0 && errno == ENOTSOCK) { /* recv on a registered descriptor that is no socket */
			assert(s != NULL);
			atomic_fetch_or_explicit(&s->flags, IO_NOTSOCK, memory_order_relaxed);
			continue;
		}
		assert(n < 0 || (size_t)n <= len);
		if (n >= 0) {
			if (!s) {
				/* No slot: no mark to keep. */
			} else if (n == 0 || (size_t)n == len || !(f & IO_TCP)) {
				/* End of file persists: no report would come. Only a
				 * TCP socket's short read empties its queue; a
				 * datagram, a Unix stream (see own_slot), a pipe or a
				 * terminal may leave more queued behind it. */
				if (f & IO_DRAINED)
					atomic_fetch_and_explicit(&s->flags, ~IO_DRAINED, memory_order_relaxed);
			} else {
				atomic_store_explicit(&s->drained_at, m.in, memory_order_relaxed);
				if (!(f & IO_DRAINED))
					atomic_fetch_or_explicit(&s->flags, IO_DRAINED, memory_order_relaxed);
			}
			return n;
		}
		int e = errno;
		if (e == EINTR)
			continue;
		if (e != EAGAIN && e != EWOULDBLOCK)
			return -e;
		if (s) {
			/* Empty now: wait for a report newer than the read (a POLLIN
			 * bit from before it is stale), whatever slot->seen says. */
			atomic_store_explicit(&s->drained_at, m.in, memory_order_relaxed);
			if (!(f & IO_DRAINED))
				atomic_fetch_or_explicit(&s->flags, IO_DRAINED, memory_order_relaxed);
		}
		int w = weft__io_wait(c, POLLIN, &m);
		assert(w != 0);
		if (w < 0)
			return w;
	}
}

static ssize_t read_call(int fd, void *buf, size_t len, weft_time_t deadline, weft_op_t *op)
{
	if ((!buf && len) || len > (size_t)SSIZE_MAX) /* the count must fit the result */
		return -EINVAL;
	io_call c;
	int w = weft__io_begin(&c, fd, deadline, op, WEFT__IO_READ_STEP, IO_CALL_READ);
	return w < 0 ? w : read_some(&c, buf, len);
}

ssize_t weft_read(int fd, void *buf, size_t len, weft_time_t deadline)
{
	return read_call(fd, buf, len, deadline, NULL);
}

ssize_t weft_read_step(int fd, void *buf, size_t len, weft_time_t deadline, weft_op_t *op)
{
	return op ? read_call(fd, buf, len, deadline, op) : -EINVAL;
}

/* One write: at least one byte, or an error (or -EINPROGRESS). */
static ssize_t write_some(io_call *c, const void *buf, size_t len)
{
	IO_RETRY(c, POLLOUT, write_once(c, buf, len));
}

static ssize_t write_call(int fd, const void *buf, size_t len, weft_time_t deadline, weft_op_t *op)
{
	if ((!buf && len) || len > (size_t)SSIZE_MAX)
		return -EINVAL;
	io_call c;
	int w = weft__io_begin(&c, fd, deadline, op, WEFT__IO_WRITE_STEP, 0);
	return w < 0 ? w : write_some(&c, buf, len);
}

ssize_t weft_write(int fd, const void *buf, size_t len, weft_time_t deadline)
{
	return write_call(fd, buf, len, deadline, NULL);
}

ssize_t weft_write_step(int fd, const void *buf, size_t len, weft_time_t deadline, weft_op_t *op)
{
	return op ? write_call(fd, buf, len, deadline, op) : -EINVAL;
}

/* A vector the calls refuse (-EINVAL): a count out of range, or lengths
 * whose sum does not fit the result (the kernel refuses one length above
 * SSIZE_MAX, but cuts a larger sum short, or says EFAULT). */
static bool bad_iov(const struct iovec *iov, int iovcnt)
{
	if ((!iov && iovcnt) || iovcnt < 0 || iovcnt > IOV_MAX)
		return true;
	size_t total = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > (size_t)SSIZE_MAX - total)
			return true;
		total += iov[i].iov_len;
	}
	return false;
}

static ssize_t readv_call(int fd, const struct iovec *iov, int iovcnt, weft_time_t deadline, weft_op_t *op)
{
	if (bad_iov(iov, iovcnt))
		return -EINVAL;
	io_call c;
	int w = weft__io_begin(&c, fd, deadline, op, WEFT__IO_READV_STEP, 0);
	if (w < 0)
		return w;
	IO_RETRY(&c, POLLIN, readv(fd, iov, iovcnt));
}

ssize_t weft_readv(int fd, const struct iovec *iov, int iovcnt, weft_time_t deadline)
{
	return readv_call(fd, iov, iovcnt, deadline, NULL);
}

ssize_t weft_readv_step(int fd, const struct iovec *iov, int iovcnt, weft_time_t deadline, weft_op_t *op)
{
	return op ? readv_call(fd, iov, iovcnt, deadline, op) : -EINVAL;
}

static ssize_t writev_call(int fd, const struct iovec *iov, int iovcnt, weft_time_t deadline, weft_op_t *op)
{
	if (bad_iov(iov, iovcnt))
		return -EINVAL;
	io_call c;
	int w = weft__io_begin(&c, fd, deadline, op, WEFT__IO_WRITEV_STEP, 0);
	if (w < 0)
		return w;
	IO_RETRY(&c, POLLOUT, writev_once(&c, iov, iovcnt));
}

ssize_t weft_writev(int fd, const struct iovec *iov, int iovcnt, weft_time_t deadline)
{
	return writev_call(fd, iov, iovcnt, deadline, NULL);
}

ssize_t weft_writev_step(int fd, const struct iovec *iov, int iovcnt, weft_time_t deadline, weft_op_t *op)
{
	return op ? writev_call(fd, iov, iovcnt, deadline, op) : -EINVAL;
}

/* The whole-buffer calls (and sendfile) begin where the call got to: 0 for
 * a new call, the op's count for the repeat of a registered one. A count
 * beyond the buffer means the repeat did not pass the length the call was
 * registered with (io.h: it must): refused, with nothing moved. */
static int begin_whole(io_call *c, int fd, weft_time_t deadline, weft_op_t *op, uint8_t call, unsigned how, size_t len)
{
	int w = weft__io_begin(c, fd, deadline, op, call, how);
	if (c->progress > len) {
		c->progress = 0;
		if (w >= 0)
			w = -EINVAL;
	}
	return w;
}

static ssize_t read_full_call(int fd, void *buf, size_t len, weft_time_t deadline, size_t *done, weft_op_t *op)
{
	if (done)
		*done = 0;
	if ((!buf && len) || len > (size_t)SSIZE_MAX)
		return -EINVAL;
	io_call c;
	ssize_t r = begin_whole(&c, fd, deadline, op, WEFT__IO_READ_FULL_STEP, IO_CALL_READ, len);
	if (r >= 0)
		r = (ssize_t)len;
	while (r > 0 && c.progress < len) {
		ssize_t n = read_some(&c, (char *)buf + c.progress, len - c.progress);
		assert(n <= (ssize_t)(len - c.progress)); /* never past the buffer */
		if (n <= 0)
			r = n < 0 ? n : c.progress == 0 ? 0 : -EPROTO;
		else
			c.progress += (size_t)n;
	}
	assert(c.progress <= len);
	if (done)
		*done = c.progress;
	return r;
}

ssize_t weft_read_full(int fd, void *buf, size_t len, weft_time_t deadline, size_t *done)
{
	return read_full_call(fd, buf, len, deadline, done, NULL);
}

ssize_t weft_read_full_step(int fd, void *buf, size_t len, weft_time_t deadline, size_t *done, weft_op_t *op)
{
	if (op)
		return read_full_call(fd, buf, len, deadline, done, op);
	if (done)
		*done = 0;
	return -EINVAL;
}

static ssize_t write_all_call(int fd, const void *buf, size_t len, weft_time_t deadline, size_t *done, weft_op_t *op)
{
	if (done)
		*done = 0;
	if ((!buf && len) || len > (size_t)SSIZE_MAX)
		return -EINVAL;
	io_call c;
	ssize_t r = begin_whole(&c, fd, deadline, op, WEFT__IO_WRITE_ALL_STEP, 0, len);
	if (r >= 0)
		r = (ssize_t)len;
	while (r > 0 && c.progress < len) {
		ssize_t n = write_some(&c, (const char *)buf + c.progress, len - c.progress);
		assert(n <= (ssize_t)(len - c.progress));
		if (n < 0)
			r = n;
		else
			c.progress += (size_t)n;
	}
	assert(c.progress <= len);
	if (done)
		*done = c.progress;
	return r;
}

ssize_t weft_write_all(int fd, const void *buf, size_t len, weft_time_t deadline, size_t *done)
{
	return write_all_call(fd, buf, len, deadline, done, NULL);
}

ssize_t weft_write_all_step(int fd, const void *buf, size_t len, weft_time_t deadline, size_t *done, weft_op_t *op)
{
	if (op)
		return write_all_call(fd, buf, len, deadline, done, op);
	if (done)
		*done = 0;
	return -EINVAL;
}

static ssize_t recvfrom_call(int fd, void *buf, size_t len, struct sockaddr *addr, socklen_t *alen,
			     weft_time_t deadline, weft_op_t *op)
{
	if ((!buf && len) || len > (size_t)SSIZE_MAX || (addr && !alen))
		return -EINVAL;
	io_call c;
	int w = weft__io_begin(&c, fd, deadline, op, WEFT__IO_RECVFROM_STEP, 0);
	if (w < 0)
		return w;
	IO_RETRY(&c, POLLIN, recvfrom(fd, buf, len, 0, addr, alen));
}

ssize_t weft_recvfrom(int fd, void *buf, size_t len, struct sockaddr *addr, socklen_t *alen, weft_time_t deadline)
{
	return recvfrom_call(fd, buf, len, addr, alen, deadline, NULL);
}

ssize_t weft_recvfrom_step(int fd, void *buf, size_t len, struct sockaddr *addr, socklen_t *alen, weft_time_t deadline,
			   weft_op_t *op)
{
	return op ? recvfrom_call(fd, buf, len, addr, alen, deadline, op) : -EINVAL;
}

static ssize_t sendto_call(int fd, const void *buf, size_t len, const struct sockaddr *addr, socklen_t alen,
			   weft_time_t deadline, weft_op_t *op)
{
	if ((!buf && len) || len > (size_t)SSIZE_MAX)
		return -EINVAL;
	io_call c;
	int w = weft__io_begin(&c, fd, deadline, op, WEFT__IO_SENDTO_STEP, 0);
	if (w < 0)
		return w;
	IO_RETRY(&c, POLLOUT, sendto(fd, buf, len, MSG_NOSIGNAL, addr, alen));
}

ssize_t weft_sendto(int fd, const void *buf, size_t len, const struct sockaddr *addr, socklen_t alen,
		    weft_time_t deadline)
{
	return sendto_call(fd, buf, len, addr, alen, deadline, NULL);
}

ssize_t weft_sendto_step(int fd, const void *buf, size_t len, const struct sockaddr *addr, socklen_t alen,
			 weft_time_t deadline, weft_op_t *op)
{
	return op ? sendto_call(fd, buf, len, addr, alen, deadline, op) : -EINVAL;
}

static ssize_t sendfile_call(int out_fd, int in_fd, off_t *offset, size_t count, weft_time_t deadline, weft_op_t *op)
{
	if (out_fd < 0 || in_fd < 0)
		return -EBADF;
	if (count > (size_t)SSIZE_MAX)
		return -EINVAL;
	io_call c; /* out_fd; in_fd is a regular file: its reads do not wait */
	int w = begin_whole(&c, out_fd, deadline, op, WEFT__IO_SENDFILE_STEP, 0, count);
	while (w >= 0 && c.progress < count) {
		size_t chunk = count - c.progress > (1u << 30) ? (1u << 30) : count - c.progress;
		io_mark m = weft__io_call_mark(&c);
		ssize_t n = IO_NOSIGPIPE(sendfile(out_fd, in_fd, offset, chunk)); /* no MSG_NOSIGNAL here */
		assert(n <= (ssize_t)chunk);
		if (n > 0) {
			c.progress += (size_t)n;
			continue;
		}
		if (n == 0)
			break; /* the file ended */
		int e = errno;
		if (e == EINTR)
			continue;
		w = e == EAGAIN || e == EWOULDBLOCK ? weft__io_wait(&c, POLLOUT, &m) : -e;
		assert(w != 0);
	}
	assert(c.progress <= count);
	/* An error after some bytes went is not reported (io.h); a
	 * registration is, whatever went before it (the op keeps the count). */
	return w < 0 && (c.progress == 0 || w == -EINPROGRESS) ? w : (ssize_t)c.progress;
}

ssize_t weft_sendfile(int out_fd, int in_fd, off_t *offset, size_t count, weft_time_t deadline)
{
	return sendfile_call(out_fd, in_fd, offset, count, deadline, NULL);
}

ssize_t weft_sendfile_step(int out_fd, int in_fd, off_t *offset, size_t count, weft_time_t deadline, weft_op_t *op)
{
	return op ? sendfile_call(out_fd, in_fd, offset, count, deadline, op) : -EINVAL;
}

/* ------------------------------------------------------------ names */

typedef struct gai_job {
	const char *host, *service;
	const struct addrinfo *hints;
	struct addrinfo *res;
	int rc, err;
} gai_job;

static void *gai_run(void *a)
{
	gai_job *j = a;
	j->rc = getaddrinfo(j->host, j->service, j->hints, &j->res);
	j->err = errno;
	return j;
}

static int gai_errno(int rc, int err)
{
	switch (rc) {
	case 0:
		return 0;
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
	case EAI_SERVICE:
	case EAI_ADDRFAMILY:
		return -ENOENT;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return err ? -err : -EIO;
	default:
		return -EINVAL;
	}
}

/* weft_getaddrinfo, and with op its _step form, which leaves *res alone
 * until the call completes. The job either ran to its end, and its list
 * comes back here, or never ran: nothing to free on an error. */
static int getaddrinfo_call(const char *host, const char *service, const struct addrinfo *hints, struct addrinfo **res,
			    weft_time_t deadline, weft_op_t *op)
{
	gai_job j = {.host = host, .service = service, .hints = hints};
	int r = op ? weft__pool_step(gai_run, &j, sizeof j, deadline, op, WEFT__IO_GETADDRINFO_STEP, host)
		   : weft_blocking(gai_run, &j, NULL);
	if (r < 0)
		return r;
	r = gai_errno(j.rc, j.err);
	assert(r != 0 || j.res != NULL); /* a lookup that succeeds finds something */
	*res = r == 0 ? j.res : NULL;
	return r;
}

int weft_getaddrinfo(const char *host, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
	if (!res || (!host && !service))
		return -EINVAL;
	*res = NULL;
	if (weft__io_sim())
		return -ENOTSUP; /* the network's time, not the schedule's */
	return getaddrinfo_call(host, service, hints, res, WEFT_NEVER, NULL);
}

int weft_getaddrinfo_step(const char *host, const char *service, const struct addrinfo *hints, struct addrinfo **res,
			  weft_time_t deadline, weft_op_t *op)
{
	if (!res || (!host && !service) || !op) {
		if (res)
			*res = NULL;
		return -EINVAL;
	}
	if (weft__io_sim()) {
		*res = NULL;
		return -ENOTSUP;
	}
	int r = getaddrinfo_call(host, service, hints, res, deadline, op);
	if (r < 0 && r != -EINPROGRESS && r != -EBUSY)
		*res = NULL;
	return r;
}

/* host:port for `type`: numeric addresses without a trip to the pool. */
static int resolve(const char *host, uint16_t port, int type, bool passive, struct addrinfo **res)
{
	char svc[8];
	snprintf(svc, sizeof svc, "%u", (unsigned)port);
	struct addrinfo hints = {.ai_socktype = type,
				 .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST | (passive ? AI_PASSIVE : 0)};
	if (!host || !*host) {
		host = passive ? "0.0.0.0" : "127.0.0.1";
	}
	int rc = getaddrinfo(host, svc, &hints, res);
	if (rc == 0)
		return 0;
	if (rc != EAI_NONAME)
		return gai_errno(rc, errno);
	hints.ai_flags &= ~AI_NUMERICHOST;
	hints.ai_flags |= AI_ADDRCONFIG;
	return weft_getaddrinfo(host, svc, &hints, res);
}

int weft_tcp_listen(const char *host, uint16_t port, int backlog)
{
	if (sim_refuses(AF_INET))
		return -ENOTSUP;
	struct addrinfo *ai;
	int r = resolve(host, port, SOCK_STREAM, true, &ai);
	if (r < 0)
		return r;
	r = -EADDRNOTAVAIL;
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		int fd = weft_socket(a->ai_family, SOCK_STREAM, 0);
		if (fd < 0) {
			r = fd;
			continue;
		}
		if (a->ai_family == AF_INET6) {
			int on = 0; /* "::" takes IPv4 too */
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
		}
		r = weft_bind_listen(fd, a->ai_addr, a->ai_addrlen, backlog);
		if (r == 0) {
			freeaddrinfo(ai);
			return fd;
		}
		weft_close(fd);
	}
	freeaddrinfo(ai);
	return r;
}

/* weft_tcp_connect_step's name lookup, on the pool: a record with no
 * pointers into itself (the pool works on a copy). */
typedef struct dial_lookup {
	const char *host;
	char svc[8];
	struct addrinfo hints;
	struct addrinfo *res;
	int rc, err;
} dial_lookup;

static void *dial_lookup_job(void *a)
{
	dial_lookup *d = a;
	d->rc = getaddrinfo(d->host, d->svc, &d->hints, &d->res);
	d->err = errno;
	return d;
}

/* host:port for weft_tcp_connect_step: a numeric address in place (unless
 * `repeat`: the repeat of a lookup registered in op), a name on the pool
 * (weft__pool_step: -EINPROGRESS while it runs). 0 with *res, or an error
 * (-EBUSY: op is not registered in a lookup). */
static int dial_resolve(const char *host, uint16_t port, weft_time_t deadline, weft_op_t *op, bool repeat,
			struct addrinfo **res)
{
	dial_lookup d = {.host = host && *host ? host : "127.0.0.1",
			 .hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST}};
	snprintf(d.svc, sizeof d.svc, "%u", (unsigned)port);
	if (!repeat) {
		int rc = getaddrinfo(d.host, d.svc, &d.hints, res);
		if (rc == 0)
			return 0;
		if (rc != EAI_NONAME)
			return gai_errno(rc, errno);
	}
	d.hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
	int r = weft__pool_step(dial_lookup_job, &d, sizeof d, deadline, op, WEFT__IO_DIAL_LOOKUP_STEP, host);
	if (r < 0)
		return r;
	r = gai_errno(d.rc, d.err);
	assert(r != 0 || d.res != NULL); /* a lookup that succeeds finds something */
	*res = d.res;
	return r;
}

/* A TCP socket of `family` for c (weft__io_adopt). 0 or -errno. */
static int dial_socket(io_call *c, int family)
{
	int fd = weft_socket(family, SOCK_STREAM, 0);
	if (fd < 0)
		return fd;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	int r = weft__io_adopt(c, fd);
	if (r < 0)
		weft_close(fd);
	return r;
}

/* Connect c to the addresses of ai in turn, from the first (w: what c's
 * start returned; > 0, a repeat whose wait for the first one's connection
 * ended), until one connects: its descriptor; or -EINPROGRESS, registered
 * in c's op with the descriptor and the addresses left (c->progress: ai
 * from the one being connected on); or the last error. The addresses
 * tried are freed as it goes (freeaddrinfo frees any tail of a list), and
 * the rest when it completes. */
static int dial(io_call *c, struct addrinfo *ai, int w)
{
	int r = -EHOSTUNREACH;
	for (; ai; w = 0) {
		/* A repeat goes on with its socket; the next address gets one. */
		if (w > 0 || (r = dial_socket(c, ai->ai_family)) == 0) {
			c->progress = (size_t)(uintptr_t)ai;
			r = connect_on(c, ai->ai_addr, ai->ai_addrlen, w);
			if (r == -EINPROGRESS)
				return r;
			if (r == 0) {
				freeaddrinfo(ai);
				return c->fd;
			}
			weft_close(c->fd);
			if (r == -ETIMEDOUT || r == -ECANCELED)
				break;
		}
		struct addrinfo *next = ai->ai_next;
		ai->ai_next = NULL;
		freeaddrinfo(ai);
		ai = next;
	}
	if (ai)
		freeaddrinfo(ai);
	return r;
}

/* weft_tcp_connect, and with op its _step form. */
static int tcp_connect_call(const char *host, uint16_t port, weft_time_t deadline, weft_op_t *op)
{
	if (port == 0)
		return -EINVAL;
	if (sim_refuses(AF_INET))
		return -ENOTSUP;
	struct addrinfo *ai = NULL;
	io_call c;
	int w = weft__io_begin_obj(&c, host, deadline, op, WEFT__IO_DIAL_STEP);
	if (w >= 0 && c.fd >= 0) {
		ai = (struct addrinfo *)(uintptr_t)c.progress; /* a repeat of the connect */
		assert(ai != NULL);
		return dial(&c, ai, w);
	}
	if (w < 0 && w != -EBUSY) {
		/* -EINPROGRESS, or how the connect's wait ended (a deadline,
		 * a cancellation): the call is over. */
		if (w != -EINPROGRESS && c.fd >= 0) {
			weft_close(c.fd);
			freeaddrinfo((struct addrinfo *)(uintptr_t)c.progress);
		}
		return w;
	}
	/* A new call (w 0), or op is registered in the lookup, or busy. */
	int r = op ? dial_resolve(host, port, deadline, op, w == -EBUSY, &ai)
		   : resolve(host, port, SOCK_STREAM, false, &ai);
	if (r < 0)
		return r;
	/* The lookup is over (its registration too): now the connect. */
	w = weft__io_begin_obj(&c, host, deadline, op, WEFT__IO_DIAL_STEP);
	assert(w == 0 && c.fd < 0); /* op is not registered: a new call */
	if (w != 0) {
		freeaddrinfo(ai);
		return w;
	}
	return dial(&c, ai, 0);
}

int weft_tcp_connect(const char *host, uint16_t port, weft_time_t deadline)
{
	return tcp_connect_call(host, port, deadline, NULL);
}

int weft_tcp_connect_step(const char *host, uint16_t port, weft_time_t deadline, weft_op_t *op)
{
	return op ? tcp_connect_call(host, port, deadline, op) : -EINVAL;
}

static int unix_addr(const char *path, struct sockaddr_un *sa, socklen_t *len)
{
	if (!path || !*path)
		return -EINVAL;
	size_t n = strlen(path);
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (n >= sizeof sa->sun_path)
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, n);
	if (path[0] == '@') {
		sa->sun_path[0] = '\0'; /* the abstract namespace: no terminating NUL */
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	assert(*len <= sizeof *sa);
	return 0;
}

/* A stream socket for path's address (*sa, *len), or a negative errno. */
static int unix_socket(const char *path, struct sockaddr_un *sa, socklen_t *len)
{
	int r = unix_addr(path, sa, len);
	return r < 0 ? r : weft_socket(AF_UNIX, SOCK_STREAM, 0);
}

int weft_unix_listen(const char *path, int backlog)
{
	struct sockaddr_un sa;
	socklen_t len;
	int fd = unix_socket(path, &sa, &len);
	if (fd < 0)
		return fd;
	int r = weft_bind_listen(fd, (struct sockaddr *)&sa, len, backlog);
	if (r < 0) {
		weft_close(fd);
		return r;
	}
	return fd;
}

/* weft_unix_connect, and with op its _step form (registered as a connect
 * whose object is path: weft_connect_step's is a descriptor). */
static int unix_connect_call(const char *path, weft_time_t deadline, weft_op_t *op)
{
	struct sockaddr_un sa;
	socklen_t len;
	int r = unix_addr(path, &sa, &len);
	if (r < 0)
		return r;
	io_call c;
	int w = weft__io_begin_obj(&c, path, deadline, op, WEFT__IO_CONNECT_STEP);
	if (w < 0) {
		if (w != -EINPROGRESS && c.fd >= 0)
			weft_close(c.fd); /* how its wait ended: the call is over */
		return w;
	}
	if (c.fd < 0) { /* a new call */
		int fd = weft_socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0)
			return fd;
		r = weft__io_adopt(&c, fd);
		if (r < 0) {
			weft_close(fd);
			return r;
		}
	}
	r = connect_on(&c, (struct sockaddr *)&sa, len, w);
	if (r == -EINPROGRESS)
		return r;
	if (r < 0) {
		weft_close(c.fd);
		return r;
	}
	return c.fd;
}

int weft_unix_connect(const char *path, weft_time_t deadline)
{
	return unix_connect_call(path, deadline, NULL);
}

int weft_unix_connect_step(const char *path, weft_time_t deadline, weft_op_t *op)
{
	return op ? unix_connect_call(path, deadline, op) : -EINVAL;
}

int weft_udp_bind(const char *host, uint16_t port)
{
	if (sim_refuses(AF_INET))
		return -ENOTSUP;
	struct addrinfo *ai;
	int r = resolve(host, port, SOCK_DGRAM, true, &ai);
	if (r < 0)
		return r;
	r = -EADDRNOTAVAIL;
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		int fd = weft_socket(a->ai_family, SOCK_DGRAM, 0);
		if (fd < 0) {
			r = fd;
			continue;
		}
		if (bind(fd, a->ai_addr, a->ai_addrlen) == 0) {
			freeaddrinfo(ai);
			return fd;
		}
		r = -errno;
		weft_close(fd);
	}
	freeaddrinfo(ai);
	return r;
}
