/* test_args.c - every call of weft/io.h fed NULLs, invalid handles
 * (descriptors -1, never opened, out of range, of the wrong kind; stopped
 * runtimes; processes and servers in the wrong state) and out-of-range
 * values (sizes, counts, flags, signals, deadlines), from a plain thread, a
 * coroutine and a stackless task: each returns what the header documents,
 * nothing crashes, hangs, asserts or leaks a descriptor. A stackless task
 * cannot park: it gets -EWOULDBLOCK where the others would wait, and
 * -ETIMEDOUT where the deadline has passed already. */
#include "wt_io.h"
#include "wt_kinds.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Descriptors that name nothing: negative, and beyond any open one (the
 * limit on descriptors is far below 2^30). */
static const int bad_fds[] = {-1, INT_MIN, 1 << 30, INT_MAX};
#define NBAD_FDS (sizeof bad_fds / sizeof bad_fds[0])

static const weft_time_t past[] = {INT64_MIN, -1, 0};
#define NPAST (sizeof past / sizeof past[0])

/* What a call that would have to wait returns in each kind of caller, for
 * a deadline that has not passed. */
static int would_wait(enum wt_kind kind)
{
	return kind == WT_STEP ? -EWOULDBLOCK : -ETIMEDOUT;
}

static void make_pipe(int p[2])
{
	TCHECK_EQ(pipe2(p, O_CLOEXEC), 0);
}

static void close_pipe(int p[2])
{
	TCHECK_EQ(weft_close(p[0]), 0);
	TCHECK_EQ(weft_close(p[1]), 0);
}

/* ------------------------------------------------------------ waiting, closing */

static void fd_wait_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	int p[2];
	make_pipe(p);
	for (size_t i = 0; i < NBAD_FDS; i++) {
		TCHECK_EQ(weft_fd_wait(bad_fds[i], POLLIN, WEFT_NEVER), -EBADF);
		TCHECK_EQ(weft_fd_wait(bad_fds[i], POLLOUT, INT64_MIN), -EBADF);
	}
	static const uint32_t events[] = {0, POLLHUP, POLLERR, POLLIN | POLLHUP, POLLNVAL, 0xffffffffu, POLLPRI};
	for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
		TCHECK_EQ(weft_fd_wait(p[0], events[i], WEFT_NEVER), -EINVAL);
	close_pipe(p);
}

static void test_fd_wait_refuses_bad_input(void **state)
{
	(void)state;
	wt_each_kind(fd_wait_body, NULL);
}

static void fd_wait_past_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	int p[2];
	make_pipe(p);
	for (size_t i = 0; i < NPAST; i++)
		TCHECK_EQ(weft_fd_wait(p[0], POLLIN, past[i]), -ETIMEDOUT);
	if (kind == WT_STEP)
		TCHECK_EQ(weft_fd_wait(p[0], POLLIN, WEFT_NEVER), -EWOULDBLOCK);
	/* Ready: the mask, whatever the deadline and the caller. */
	TCHECK_EQ(weft_fd_wait(p[1], POLLOUT, INT64_MIN), POLLOUT);
	TCHECK_EQ(write(p[1], "x", 1), 1);
	TCHECK_EQ(weft_fd_wait(p[0], POLLIN, INT64_MIN), POLLIN);
	close_pipe(p);
}

static void test_fd_wait_with_a_past_deadline(void **state)
{
	(void)state;
	wt_each_kind(fd_wait_past_body, NULL);
}

static void close_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	for (size_t i = 0; i < NBAD_FDS; i++)
		TCHECK_EQ(weft_close(bad_fds[i]), -EBADF);
}

static void test_close_refuses_bad_descriptors(void **state)
{
	(void)state;
	wt_each_kind(close_body, NULL);
}

/* ------------------------------------------------------------ reads and writes */

static void rw_bad_fd_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	char buf[8] = {0};
	struct iovec iov = {buf, sizeof buf};
	struct sockaddr_storage sa;
	socklen_t sl = sizeof sa;
	for (size_t i = 0; i < NBAD_FDS; i++) {
		int fd = bad_fds[i];
		size_t done = 99;
		TCHECK_EQ(weft_read(fd, buf, sizeof buf, WEFT_NEVER), -EBADF);
		TCHECK_EQ(weft_write(fd, buf, sizeof buf, WEFT_NEVER), -EBADF);
		TCHECK_EQ(weft_readv(fd, &iov, 1, INT64_MIN), -EBADF);
		TCHECK_EQ(weft_writev(fd, &iov, 1, INT64_MIN), -EBADF);
		TCHECK_EQ(weft_read_full(fd, buf, sizeof buf, WEFT_NEVER, &done), -EBADF);
		TCHECK_EQ(done, 0);
		done = 99;
		TCHECK_EQ(weft_write_all(fd, buf, sizeof buf, WEFT_NEVER, &done), -EBADF);
		TCHECK_EQ(done, 0);
		TCHECK_EQ(weft_recvfrom(fd, buf, sizeof buf, (struct sockaddr *)&sa, &sl, WEFT_NEVER), -EBADF);
		TCHECK_EQ(weft_sendto(fd, buf, sizeof buf, NULL, 0, WEFT_NEVER), -EBADF);
	}
	/* The wrong end of a pipe. */
	int p[2];
	make_pipe(p);
	TCHECK_EQ(weft_read(p[1], buf, sizeof buf, WEFT_NEVER), -EBADF);
	TCHECK_EQ(weft_write(p[0], buf, sizeof buf, WEFT_NEVER), -EBADF);
	close_pipe(p);
}

static void test_reads_and_writes_refuse_bad_descriptors(void **state)
{
	(void)state;
	wt_each_kind(rw_bad_fd_body, NULL);
}

static void rw_bad_args_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	int p[2];
	make_pipe(p);
	char buf[8] = {0};
	struct iovec iov = {buf, sizeof buf};
	struct sockaddr_storage sa;
	static const size_t huge[] = {(size_t)SSIZE_MAX + 1, SIZE_MAX};
	for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
		size_t done = 99;
		TCHECK_EQ(weft_read(p[0], buf, huge[i], WEFT_NEVER), -EINVAL);
		TCHECK_EQ(weft_write(p[1], buf, huge[i], WEFT_NEVER), -EINVAL);
		TCHECK_EQ(weft_read_full(p[0], buf, huge[i], WEFT_NEVER, &done), -EINVAL);
		TCHECK_EQ(done, 0);
		TCHECK_EQ(weft_write_all(p[1], buf, huge[i], WEFT_NEVER, &done), -EINVAL);
		TCHECK_EQ(weft_recvfrom(p[0], buf, huge[i], NULL, NULL, WEFT_NEVER), -EINVAL);
		TCHECK_EQ(weft_sendto(p[1], buf, huge[i], NULL, 0, WEFT_NEVER), -EINVAL);
	}
	TCHECK_EQ(weft_read(p[0], NULL, 1, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_write(p[1], NULL, 1, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_read_full(p[0], NULL, 1, WEFT_NEVER, NULL), -EINVAL);
	TCHECK_EQ(weft_write_all(p[1], NULL, 1, WEFT_NEVER, NULL), -EINVAL);
	TCHECK_EQ(weft_recvfrom(p[0], NULL, 1, NULL, NULL, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_recvfrom(p[0], buf, sizeof buf, (struct sockaddr *)&sa, NULL, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_sendto(p[1], NULL, 1, NULL, 0, WEFT_NEVER), -EINVAL);
	static const int counts[] = {-1, INT_MIN, IOV_MAX + 1, INT_MAX};
	for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
		TCHECK_EQ(weft_readv(p[0], &iov, counts[i], WEFT_NEVER), -EINVAL);
		TCHECK_EQ(weft_writev(p[1], &iov, counts[i], WEFT_NEVER), -EINVAL);
	}
	TCHECK_EQ(weft_readv(p[0], NULL, 1, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_writev(p[1], NULL, 1, WEFT_NEVER), -EINVAL);
	/* Vectors whose lengths add up to more than SSIZE_MAX. */
	struct iovec huge_iov[][2] = {{{buf, (size_t)SSIZE_MAX + 1}, {buf, 0}},
				      {{buf, (size_t)SSIZE_MAX}, {buf, 1}},
				      {{buf, SIZE_MAX}, {buf, SIZE_MAX}}};
	for (size_t i = 0; i < sizeof huge_iov / sizeof huge_iov[0]; i++) {
		TCHECK_EQ(weft_readv(p[0], huge_iov[i], 2, WEFT_NEVER), -EINVAL);
		TCHECK_EQ(weft_writev(p[1], huge_iov[i], 2, WEFT_NEVER), -EINVAL);
	}
	/* Nothing was written by any of them. */
	TCHECK_EQ(weft_read(p[0], buf, sizeof buf, INT64_MIN), -ETIMEDOUT);
	close_pipe(p);
}

static void test_reads_and_writes_refuse_bad_arguments(void **state)
{
	(void)state;
	wt_each_kind(rw_bad_args_body, NULL);
}

static void rw_past_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	int p[2];
	make_pipe(p);
	int u = weft_udp_bind("127.0.0.1", 0);
	TCHECK(u >= 0);
	int l = weft_tcp_listen("127.0.0.1", 0, 1);
	TCHECK(l >= 0);
	char buf[8];
	struct iovec iov = {buf, sizeof buf};
	for (size_t i = 0; i < NPAST; i++) {
		size_t done = 99;
		TCHECK_EQ(weft_read(p[0], buf, sizeof buf, past[i]), -ETIMEDOUT);
		TCHECK_EQ(weft_readv(p[0], &iov, 1, past[i]), -ETIMEDOUT);
		TCHECK_EQ(weft_read_full(p[0], buf, sizeof buf, past[i], &done), -ETIMEDOUT);
		TCHECK_EQ(done, 0);
		TCHECK_EQ(weft_recvfrom(u, buf, sizeof buf, NULL, NULL, past[i]), -ETIMEDOUT);
		TCHECK_EQ(weft_accept(l, NULL, NULL, past[i]), -ETIMEDOUT);
	}
	TCHECK_EQ(weft_read(p[0], buf, sizeof buf, weft_deadline_in(WEFT_MSEC)), would_wait(kind));
	TCHECK_EQ(weft_accept(l, NULL, NULL, weft_deadline_in(WEFT_MSEC)), would_wait(kind));
	/* Zero bytes, or zero buffers: nothing to wait for. */
	TCHECK_EQ(weft_write(p[1], buf, 0, INT64_MIN), 0);
	TCHECK_EQ(weft_writev(p[1], &iov, 0, INT64_MIN), 0);
	TCHECK_EQ(weft_write_all(p[1], NULL, 0, INT64_MIN, NULL), 0);
	TCHECK_EQ(weft_read_full(p[0], NULL, 0, INT64_MIN, NULL), 0);
	close_pipe(p);
	TCHECK_EQ(weft_close(u), 0);
	TCHECK_EQ(weft_close(l), 0);
}

static void test_reads_with_a_past_deadline(void **state)
{
	(void)state;
	wt_each_kind(rw_past_body, NULL);
}

static void sendfile_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	int p[2];
	make_pipe(p);
	int f = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	TCHECK(f >= 0);
	for (size_t i = 0; i < NBAD_FDS; i++) {
		TCHECK_EQ(weft_sendfile(bad_fds[i], f, NULL, 1, WEFT_NEVER), -EBADF);
		TCHECK_EQ(weft_sendfile(p[1], bad_fds[i], NULL, 1, WEFT_NEVER), -EBADF);
	}
	TCHECK_EQ(weft_sendfile(p[1], f, NULL, (size_t)SSIZE_MAX + 1, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_sendfile(p[1], f, NULL, SIZE_MAX, WEFT_NEVER), -EINVAL);
	off_t off = -1;
	TCHECK_EQ(weft_sendfile(p[1], f, &off, 1, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_sendfile(p[1], f, NULL, 0, INT64_MIN), 0);
	close(f);
	close_pipe(p);
}

static void test_sendfile_refuses_bad_input(void **state)
{
	(void)state;
	wt_each_kind(sendfile_body, NULL);
}

static void shutdown_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	int u = weft_udp_bind("127.0.0.1", 0);
	TCHECK(u >= 0);
	static const int hows[] = {-1, 3, INT_MAX, INT_MIN};
	for (size_t i = 0; i < sizeof hows / sizeof hows[0]; i++)
		TCHECK_EQ(weft_shutdown(u, hows[i]), -EINVAL);
	for (size_t i = 0; i < NBAD_FDS; i++)
		TCHECK_EQ(weft_shutdown(bad_fds[i], SHUT_RDWR), -EBADF);
	int p[2];
	make_pipe(p);
	TCHECK_EQ(weft_shutdown(p[0], SHUT_RD), -ENOTSOCK);
	close_pipe(p);
	TCHECK_EQ(weft_close(u), 0);
}

static void test_shutdown_refuses_bad_input(void **state)
{
	(void)state;
	wt_each_kind(shutdown_body, NULL);
}

/* ------------------------------------------------------------ stackless forms */

static void step_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	int p[2];
	make_pipe(p);
	char buf[8] = {0};
	weft_op_t op = WEFT_OP_INIT;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof sin;
	/* A NULL op. */
	TCHECK_EQ(weft_fd_wait_step(p[0], POLLIN, WEFT_NEVER, NULL), -EINVAL);
	TCHECK_EQ(weft_read_step(p[0], buf, 1, WEFT_NEVER, NULL), -EINVAL);
	TCHECK_EQ(weft_write_step(p[1], buf, 1, WEFT_NEVER, NULL), -EINVAL);
	int l = weft_tcp_listen("127.0.0.1", 0, 1);
	TCHECK(l >= 0);
	TCHECK_EQ(weft_accept_step(l, NULL, NULL, WEFT_NEVER, NULL), -EINVAL);
	int s = weft_socket(AF_INET, SOCK_STREAM, 0);
	TCHECK(s >= 0);
	TCHECK_EQ(weft_connect_step(s, (struct sockaddr *)&sin, sl, WEFT_NEVER, NULL), -EINVAL);
	/* Bad descriptors. */
	for (size_t i = 0; i < NBAD_FDS; i++) {
		TCHECK_EQ(weft_fd_wait_step(bad_fds[i], POLLIN, WEFT_NEVER, &op), -EBADF);
		TCHECK_EQ(weft_read_step(bad_fds[i], buf, 1, WEFT_NEVER, &op), -EBADF);
		TCHECK_EQ(weft_write_step(bad_fds[i], buf, 1, WEFT_NEVER, &op), -EBADF);
		TCHECK_EQ(weft_accept_step(bad_fds[i], NULL, NULL, WEFT_NEVER, &op), -EBADF);
		TCHECK_EQ(weft_connect_step(bad_fds[i], (struct sockaddr *)&sin, sl, WEFT_NEVER, &op), -EBADF);
	}
	/* Bad arguments. */
	TCHECK_EQ(weft_fd_wait_step(p[0], 0, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_fd_wait_step(p[0], POLLHUP, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_read_step(p[0], NULL, 1, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_write_step(p[1], NULL, 1, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_read_step(p[0], buf, SIZE_MAX, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_write_step(p[1], buf, SIZE_MAX, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_accept_step(l, (struct sockaddr *)&sin, NULL, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_connect_step(s, NULL, sl, WEFT_NEVER, &op), -EINVAL);
	/* A past deadline polls. */
	for (size_t i = 0; i < NPAST; i++) {
		TCHECK_EQ(weft_fd_wait_step(p[0], POLLIN, past[i], &op), -ETIMEDOUT);
		TCHECK_EQ(weft_read_step(p[0], buf, 1, past[i], &op), -ETIMEDOUT);
		TCHECK_EQ(weft_accept_step(l, NULL, NULL, past[i], &op), -ETIMEDOUT);
	}
	TCHECK_EQ(weft_close(s), 0);
	TCHECK_EQ(weft_close(l), 0);
	close_pipe(p);
}

static void test_step_forms_refuse_bad_input(void **state)
{
	(void)state;
	wt_each_kind(step_body, NULL);
}

/* The _step forms of the vector, datagram, sendfile and whole-buffer
 * calls. None of these calls may register (a stackless body that ended
 * with its op registered would be fatal): they are refused, poll a past
 * deadline, or have nothing to wait for. *done is 0 whenever a whole-buffer
 * call is refused. */
static void more_step_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	int p[2];
	make_pipe(p);
	int u = weft_udp_bind("127.0.0.1", 0);
	TCHECK(u >= 0);
	int f = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	TCHECK(f >= 0);
	char buf[8] = {0};
	struct iovec iov = {buf, sizeof buf};
	struct sockaddr_storage sa;
	socklen_t sl = sizeof sa;
	weft_op_t op = WEFT_OP_INIT;
	size_t done = 99;
#define DONE_IS_0()                                                                                                    \
	do {                                                                                                           \
		TCHECK_EQ(done, 0);                                                                                    \
		done = 99;                                                                                             \
	} while (0)
	/* A NULL op. */
	TCHECK_EQ(weft_readv_step(p[0], &iov, 1, WEFT_NEVER, NULL), -EINVAL);
	TCHECK_EQ(weft_writev_step(p[1], &iov, 1, WEFT_NEVER, NULL), -EINVAL);
	TCHECK_EQ(weft_recvfrom_step(u, buf, sizeof buf, NULL, NULL, WEFT_NEVER, NULL), -EINVAL);
	TCHECK_EQ(weft_sendto_step(u, buf, sizeof buf, NULL, 0, WEFT_NEVER, NULL), -EINVAL);
	TCHECK_EQ(weft_sendfile_step(p[1], f, NULL, 1, WEFT_NEVER, NULL), -EINVAL);
	TCHECK_EQ(weft_read_full_step(p[0], buf, sizeof buf, WEFT_NEVER, &done, NULL), -EINVAL);
	DONE_IS_0();
	TCHECK_EQ(weft_write_all_step(p[1], buf, sizeof buf, WEFT_NEVER, &done, NULL), -EINVAL);
	DONE_IS_0();
	/* Bad descriptors. */
	for (size_t i = 0; i < NBAD_FDS; i++) {
		int fd = bad_fds[i];
		TCHECK_EQ(weft_readv_step(fd, &iov, 1, WEFT_NEVER, &op), -EBADF);
		TCHECK_EQ(weft_writev_step(fd, &iov, 1, WEFT_NEVER, &op), -EBADF);
		TCHECK_EQ(weft_recvfrom_step(fd, buf, sizeof buf, NULL, NULL, WEFT_NEVER, &op), -EBADF);
		TCHECK_EQ(weft_sendto_step(fd, buf, sizeof buf, NULL, 0, WEFT_NEVER, &op), -EBADF);
		TCHECK_EQ(weft_sendfile_step(fd, f, NULL, 1, WEFT_NEVER, &op), -EBADF);
		TCHECK_EQ(weft_sendfile_step(p[1], fd, NULL, 1, WEFT_NEVER, &op), -EBADF);
		TCHECK_EQ(weft_read_full_step(fd, buf, sizeof buf, WEFT_NEVER, &done, &op), -EBADF);
		DONE_IS_0();
		TCHECK_EQ(weft_write_all_step(fd, buf, sizeof buf, WEFT_NEVER, &done, &op), -EBADF);
		DONE_IS_0();
	}
	TCHECK_EQ(weft_readv_step(p[1], &iov, 1, WEFT_NEVER, &op), -EBADF); /* the wrong end */
	TCHECK_EQ(weft_write_all_step(p[0], buf, sizeof buf, WEFT_NEVER, &done, &op), -EBADF);
	DONE_IS_0();
	/* Lengths and counts out of range, NULL buffers. */
	static const size_t huge[] = {(size_t)SSIZE_MAX + 1, SIZE_MAX};
	for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
		struct iovec big[2] = {{buf, huge[i]}, {buf, 1}};
		TCHECK_EQ(weft_readv_step(p[0], big, 2, WEFT_NEVER, &op), -EINVAL);
		TCHECK_EQ(weft_writev_step(p[1], big, 2, WEFT_NEVER, &op), -EINVAL);
		TCHECK_EQ(weft_recvfrom_step(u, buf, huge[i], NULL, NULL, WEFT_NEVER, &op), -EINVAL);
		TCHECK_EQ(weft_sendto_step(u, buf, huge[i], NULL, 0, WEFT_NEVER, &op), -EINVAL);
		TCHECK_EQ(weft_sendfile_step(p[1], f, NULL, huge[i], WEFT_NEVER, &op), -EINVAL);
		TCHECK_EQ(weft_read_full_step(p[0], buf, huge[i], WEFT_NEVER, &done, &op), -EINVAL);
		DONE_IS_0();
		TCHECK_EQ(weft_write_all_step(p[1], buf, huge[i], WEFT_NEVER, &done, &op), -EINVAL);
		DONE_IS_0();
	}
	struct iovec sum[2] = {{buf, (size_t)SSIZE_MAX}, {buf, 1}};
	TCHECK_EQ(weft_readv_step(p[0], sum, 2, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_writev_step(p[1], sum, 2, WEFT_NEVER, &op), -EINVAL);
	static const int counts[] = {-1, INT_MIN, IOV_MAX + 1, INT_MAX};
	for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
		TCHECK_EQ(weft_readv_step(p[0], &iov, counts[i], WEFT_NEVER, &op), -EINVAL);
		TCHECK_EQ(weft_writev_step(p[1], &iov, counts[i], WEFT_NEVER, &op), -EINVAL);
	}
	TCHECK_EQ(weft_readv_step(p[0], NULL, 1, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_writev_step(p[1], NULL, 1, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_recvfrom_step(u, NULL, 1, NULL, NULL, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_recvfrom_step(u, buf, sizeof buf, (struct sockaddr *)&sa, NULL, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_sendto_step(u, NULL, 1, NULL, 0, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_read_full_step(p[0], NULL, 1, WEFT_NEVER, &done, &op), -EINVAL);
	DONE_IS_0();
	TCHECK_EQ(weft_write_all_step(p[1], NULL, 1, WEFT_NEVER, &done, &op), -EINVAL);
	DONE_IS_0();
	off_t off = -1;
	TCHECK_EQ(weft_sendfile_step(p[1], f, &off, 1, WEFT_NEVER, &op), -EINVAL);
	/* A past deadline polls. */
	for (size_t i = 0; i < NPAST; i++) {
		TCHECK_EQ(weft_readv_step(p[0], &iov, 1, past[i], &op), -ETIMEDOUT);
		TCHECK_EQ(weft_recvfrom_step(u, buf, sizeof buf, (struct sockaddr *)&sa, &sl, past[i], &op),
			  -ETIMEDOUT);
		TCHECK_EQ(weft_read_full_step(p[0], buf, sizeof buf, past[i], &done, &op), -ETIMEDOUT);
		DONE_IS_0();
	}
	/* Nothing to move: done at once, whatever the deadline. */
	TCHECK_EQ(weft_readv_step(p[0], &iov, 0, INT64_MIN, &op), 0);
	TCHECK_EQ(weft_writev_step(p[1], &iov, 0, INT64_MIN, &op), 0);
	TCHECK_EQ(weft_read_full_step(p[0], NULL, 0, INT64_MIN, &done, &op), 0);
	DONE_IS_0();
	TCHECK_EQ(weft_write_all_step(p[1], NULL, 0, INT64_MIN, NULL, &op), 0);
	TCHECK_EQ(weft_sendfile_step(p[1], f, NULL, 0, INT64_MIN, &op), 0);
	/* None of them wrote anything. */
	TCHECK_EQ(weft_read(p[0], buf, sizeof buf, INT64_MIN), -ETIMEDOUT);
#undef DONE_IS_0
	close(f);
	TCHECK_EQ(weft_close(u), 0);
	close_pipe(p);
}

static void test_more_step_forms_refuse_bad_input(void **state)
{
	(void)state;
	wt_each_kind(more_step_body, NULL);
}

/* ------------------------------------------------------------ sockets */

static void socket_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	TCHECK_EQ(weft_socket(AF_INET, 99, 0), -EINVAL);
	TCHECK_EQ(weft_socket(AF_INET, SOCK_RAW, 0), -EINVAL);
	TCHECK_EQ(weft_socket(AF_INET, -1, 0), -EINVAL);
	TCHECK_EQ(weft_socket(-1, SOCK_STREAM, 0), -EAFNOSUPPORT);
	TCHECK_EQ(weft_socket(INT_MAX, SOCK_DGRAM, 0), -EAFNOSUPPORT);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int s = weft_socket(AF_INET, SOCK_STREAM, 0);
	TCHECK(s >= 0);
	int p[2];
	make_pipe(p);
	for (size_t i = 0; i < NBAD_FDS; i++) {
		TCHECK_EQ(weft_bind_listen(bad_fds[i], (struct sockaddr *)&sin, sizeof sin, 1), -EBADF);
		TCHECK_EQ(weft_connect(bad_fds[i], (struct sockaddr *)&sin, sizeof sin, INT64_MIN), -EBADF);
		TCHECK_EQ(weft_accept(bad_fds[i], NULL, NULL, INT64_MIN), -EBADF);
		TCHECK_EQ(weft_local_port(bad_fds[i]), -EBADF);
	}
	TCHECK_EQ(weft_bind_listen(s, NULL, sizeof sin, 1), -EINVAL);
	TCHECK_EQ(weft_bind_listen(s, (struct sockaddr *)&sin, 0, 1), -EINVAL);
	TCHECK_EQ(weft_bind_listen(p[0], (struct sockaddr *)&sin, sizeof sin, 1), -ENOTSOCK);
	TCHECK_EQ(weft_connect(s, NULL, sizeof sin, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_connect(s, (struct sockaddr *)&sin, 0, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_connect(p[0], (struct sockaddr *)&sin, sizeof sin, WEFT_NEVER), -ENOTSOCK);
	socklen_t sl = sizeof sin;
	TCHECK_EQ(weft_accept(s, (struct sockaddr *)&sin, NULL, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_accept(s, NULL, NULL, WEFT_NEVER), -EINVAL); /* not listening */
	TCHECK_EQ(weft_accept(p[0], (struct sockaddr *)&sin, &sl, WEFT_NEVER), -ENOTSOCK);
	TCHECK_EQ(weft_local_port(p[0]), -ENOTSOCK);
	int us = weft_socket(AF_UNIX, SOCK_STREAM, 0);
	TCHECK(us >= 0);
	TCHECK_EQ(weft_local_port(us), -EAFNOSUPPORT);
	TCHECK_EQ(weft_close(us), 0);
	TCHECK_EQ(weft_close(s), 0);
	close_pipe(p);
}

static void test_sockets_refuse_bad_input(void **state)
{
	(void)state;
	wt_each_kind(socket_body, NULL);
}

static void dial_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	TCHECK_EQ(weft_tcp_connect("127.0.0.1", 0, INT64_MIN), -EINVAL);
	TCHECK_EQ(weft_tcp_connect(NULL, 0, WEFT_NEVER), -EINVAL);
	char longpath[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	memset(longpath, 'a', sizeof longpath - 1);
	longpath[sizeof longpath - 1] = 0;
	TCHECK_EQ(weft_unix_listen(NULL, 1), -EINVAL);
	TCHECK_EQ(weft_unix_listen("", 1), -EINVAL);
	TCHECK_EQ(weft_unix_listen(longpath, 1), -ENAMETOOLONG);
	TCHECK_EQ(weft_unix_connect(NULL, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_unix_connect("", INT64_MIN), -EINVAL);
	TCHECK_EQ(weft_unix_connect(longpath, WEFT_NEVER), -ENAMETOOLONG);
	TCHECK_EQ(weft_unix_connect("/nonexistent/weft-args.sock", WEFT_NEVER), -ENOENT);
	/* Numeric hosts only: a name would be looked up on the network. A
	 * backlog out of range is the system's largest. */
	int l = weft_tcp_listen("127.0.0.1", 0, INT_MIN);
	TCHECK(l >= 0);
	TCHECK_EQ(weft_close(l), 0);
	struct addrinfo *res = (struct addrinfo *)&res;
	TCHECK_EQ(weft_getaddrinfo("127.0.0.1", "80", NULL, NULL), -EINVAL);
	TCHECK_EQ(weft_getaddrinfo(NULL, NULL, NULL, &res), -EINVAL);
	struct addrinfo badflags = {.ai_flags = 0x7fff0000};
	TCHECK_EQ(weft_getaddrinfo("127.0.0.1", NULL, &badflags, &res), kind == WT_STEP ? -EWOULDBLOCK : -EINVAL);
	TCHECK(res == NULL);
}

static void test_dialling_refuses_bad_input(void **state)
{
	(void)state;
	wt_each_kind(dial_body, NULL);
}

/* ------------------------------------------------------------ servers */

static void conn_nop(int fd, void *ctx)
{
	(void)fd, (void)ctx;
}

static void server_null_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_server_t *s = (weft_server_t *)&s;
	(void)weft_io_backend(NULL); /* the poller's descriptors are there before we count */
	int fds = wt_fd_count();
	/* The listener passes to the server even when create fails: each of
	 * these closes it. */
	TCHECK_EQ(weft_server_create(NULL, weft_tcp_listen("127.0.0.1", 0, 1), conn_nop, NULL, NULL), -EINVAL);
	TCHECK_EQ(weft_server_create(&s, weft_tcp_listen("127.0.0.1", 0, 1), NULL, NULL, NULL), -EINVAL);
	TCHECK_EQ(weft_server_create(&s, weft_tcp_listen("127.0.0.1", 0, 1), conn_nop, NULL,
				     &(weft_server_opts_t){.max_conns = -1}),
		  -EINVAL);
	TCHECK_EQ(weft_server_create(&s, weft_tcp_listen("127.0.0.1", 0, 1), conn_nop, NULL,
				     &(weft_server_opts_t){.max_conns = INT_MIN}),
		  -EINVAL);
	TCHECK_EQ(wt_fd_count(), fds);
	for (size_t i = 0; i < NBAD_FDS; i++)
		TCHECK_EQ(weft_server_create(&s, bad_fds[i], conn_nop, NULL, NULL), -EBADF);
	TCHECK_EQ(weft_server_serve(NULL), -EINVAL);
	TCHECK_EQ(weft_server_stop(NULL, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_server_conns(NULL), -EINVAL);
	TCHECK_EQ(weft_server_accepted(NULL), 0);
	TCHECK_EQ(weft_server_destroy(NULL), -EINVAL);
}

static void test_server_calls_refuse_bad_input(void **state)
{
	(void)state;
	wt_each_kind(server_null_body, NULL);
}

static _Atomic int served = 1;

static void *serve_noting(void *s)
{
	atomic_store(&served, weft_server_serve(s));
	return NULL;
}

static void server_twice_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	weft_server_t *s;
	TCHECK_EQ(weft_server_create(&s, weft_tcp_listen("127.0.0.1", 0, 1), conn_nop, NULL, NULL), 0);
	if (kind == WT_STEP) /* it would serve until stopped: a stackless task cannot */
		TCHECK_EQ(weft_server_serve(s), -EWOULDBLOCK);
	TCHECK_EQ(weft_server_stop(s, WEFT_NEVER), 0);
	TCHECK_EQ(weft_server_stop(s, WEFT_NEVER), -EALREADY);
	TCHECK_EQ(weft_server_stop(s, INT64_MIN), -EALREADY);
	if (kind == WT_STEP) {
		/* The refused serve left the server whole: a coroutine serves it
		 * (at once: it is stopped). */
		atomic_store(&served, 1);
		TCHECK_EQ(weft_go(serve_noting, s), 0);
		WT_WAIT_UNTIL(atomic_load(&served) != 1);
		TCHECK_EQ(atomic_load(&served), 0);
	} else {
		TCHECK_EQ(weft_server_serve(s), 0); /* stopped before it began */
		TCHECK_EQ(weft_server_serve(s), -EBUSY);
	}
	TCHECK_EQ(weft_server_conns(s), 0);
	TCHECK_EQ(weft_server_destroy(s), 0);
}

static void test_server_calls_made_twice(void **state)
{
	(void)state;
	wt_each_kind(server_twice_body, NULL);
}

static void *serve_task(void *s)
{
	return (void *)(intptr_t)weft_server_serve(s);
}

static void server_busy_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	if (kind == WT_STEP)
		return; /* it would have to wait for the connection */
	weft_server_t *s;
	int l = weft_tcp_listen("127.0.0.1", 0, 1);
	int port = weft_local_port(l);
	TCHECK_EQ(weft_server_create(&s, l, conn_nop, NULL, NULL), 0);
	weft_task_t t;
	TCHECK_EQ(weft_spawn(&t, serve_task, s, NULL), 0);
	int c = weft_tcp_connect("127.0.0.1", (uint16_t)port, wt_hang_deadline());
	TCHECK(c >= 0);
	WT_WAIT_UNTIL(weft_server_accepted(s) == 1);
	TCHECK_EQ(weft_server_destroy(s), -EBUSY); /* serving */
	TCHECK_EQ(weft_server_stop(s, WEFT_NEVER), 0);
	void *r;
	TCHECK_EQ(weft_join(t, &r), 0);
	TCHECK_EQ((intptr_t)r, 0);
	TCHECK_EQ(weft_server_serve(s), -EBUSY);
	TCHECK_EQ(weft_server_destroy(s), 0);
	TCHECK_EQ(weft_close(c), 0);
}

static void test_server_destroyed_while_serving(void **state)
{
	(void)state;
	wt_each_kind(server_busy_body, NULL);
}

/* ------------------------------------------------------------ blocking pool */

static void *ret_arg(void *a)
{
	return a;
}

static void blocking_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	weft_runtime_t *rt = weft_runtime_current();
	void *r = NULL;
	TCHECK_EQ(weft_blocking(NULL, NULL, &r), -EINVAL);
	TCHECK_EQ(weft_blocking(ret_arg, (void *)5, &r), kind == WT_STEP ? -EWOULDBLOCK : 0);
	TCHECK_EQ((intptr_t)r, kind == WT_STEP ? 0 : 5);
	static const int maxes[] = {-1, INT_MIN, 4097, INT_MAX};
	for (size_t i = 0; i < sizeof maxes / sizeof maxes[0]; i++) {
		TCHECK_EQ(weft_blocking_set_limits(rt, maxes[i], 0), -EINVAL);
		TCHECK_EQ(weft_blocking_set_limits(NULL, maxes[i], WEFT_SEC), -EINVAL);
	}
	static const weft_time_t idles[] = {1, WEFT_MSEC - 1, -1, INT64_MIN};
	for (size_t i = 0; i < sizeof idles / sizeof idles[0]; i++)
		TCHECK_EQ(weft_blocking_set_limits(rt, 0, idles[i]), -EINVAL);
	TCHECK_EQ(weft_blocking_set_limits(rt, 4096, WEFT_MSEC), 0);
	TCHECK_EQ(weft_blocking_set_limits(rt, 1, WEFT_NEVER), 0);
	TCHECK_EQ(weft_blocking_stats(rt, NULL), -EINVAL);
	TCHECK_EQ(weft_blocking_stats(NULL, NULL), -EINVAL);
	weft_blocking_stats_t st;
	TCHECK_EQ(weft_blocking_stats(NULL, &st), 0);
	TCHECK_EQ(st.max, 1);
	TCHECK_EQ(weft_blocking_set_limits(rt, 128, 10 * WEFT_SEC), 0);
}

static void test_blocking_pool_refuses_bad_input(void **state)
{
	(void)state;
	wt_each_kind(blocking_body, NULL);
}

static void idle_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	if (kind != WT_CORO)
		return; /* a plain thread runs the job itself; a stackless task cannot */
	/* Idle times so long that "idle since + idle time" does not fit. */
	static const weft_time_t idles[] = {WEFT_NEVER - 1, WEFT_NEVER - WEFT_SEC};
	for (size_t i = 0; i < sizeof idles / sizeof idles[0]; i++) {
		TCHECK_EQ(weft_blocking_set_limits(NULL, 0, idles[i]), 0);
		TCHECK_EQ(weft_blocking(ret_arg, NULL, NULL), 0);
		weft_blocking_stats_t st;
		/* The pool thread that ran it goes idle, for (nearly) ever. */
		WT_WAIT_UNTIL(weft_blocking_stats(NULL, &st) == 0 && st.idle >= 1 && st.running == 0);
	}
	TCHECK_EQ(weft_blocking_set_limits(NULL, 0, 10 * WEFT_SEC), 0);
}

static void test_blocking_pool_idle_time_near_forever(void **state)
{
	(void)state;
	wt_each_kind(idle_body, NULL);
}

static void no_runtime_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_blocking_stats_t st;
	TCHECK_EQ(weft_blocking_set_limits(NULL, 1, WEFT_SEC), -EINVAL);
	TCHECK_EQ(weft_blocking_stats(NULL, &st), -EINVAL);
	TCHECK(weft_io_backend(NULL) == NULL);
	void *r = NULL;
	TCHECK_EQ(weft_blocking(ret_arg, (void *)6, &r), 0); /* run right here */
	TCHECK_EQ((intptr_t)r, 6);
}

static void test_io_without_a_runtime(void **state)
{
	(void)state;
	wt_no_runtime(no_runtime_body, NULL);
}

static void io_gone_prep(weft_runtime_t *gone)
{
	/* Its pool and its poller, destroyed by its stop. */
	assert_int_equal(weft_blocking_set_limits(gone, 2, WEFT_SEC), 0);
	assert_non_null(weft_io_backend(gone));
}

static void io_gone_body(enum wt_kind kind, void *gone)
{
	(void)kind;
	weft_blocking_stats_t st;
	TCHECK_EQ(weft_blocking_set_limits(gone, 1, WEFT_SEC), -ESHUTDOWN);
	TCHECK_EQ(weft_blocking_stats(gone, &st), -ESHUTDOWN);
	TCHECK(weft_io_backend(gone) == NULL);
}

static void test_io_of_a_stopped_runtime(void **state)
{
	(void)state;
	wt_each_kind_stopped(io_gone_body, io_gone_prep);
}

/* ------------------------------------------------------------ files */

static char dir[64];

static void file_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	char path[128], missing[128];
	snprintf(path, sizeof path, "%s/f", dir);
	snprintf(missing, sizeof missing, "%s/none/f", dir);
	int ok = kind == WT_STEP ? -EWOULDBLOCK : 0; /* a valid call */
	void *data = &data;
	TCHECK_EQ(weft_file_read_all(NULL, &data, 0), -EINVAL);
	TCHECK(data == NULL);
	TCHECK_EQ(weft_file_read_all(path, NULL, 0), -EINVAL);
	TCHECK_EQ(weft_file_write_all(NULL, "x", 1, 0), -EINVAL);
	TCHECK_EQ(weft_file_write_all(path, NULL, 1, 0), -EINVAL);
	static const unsigned flags[] = {1u << 3, UINT_MAX, WEFT_FILE_ATOMIC | WEFT_FILE_APPEND};
	for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
		TCHECK_EQ(weft_file_write_all(path, "x", 1, flags[i]), -EINVAL);
	TCHECK_EQ(weft_file_write_all(path, "xy", (size_t)SSIZE_MAX + 1, 0), -EINVAL);
	TCHECK_EQ(weft_file_write_all(path, "xy", SIZE_MAX, WEFT_FILE_ATOMIC), -EINVAL);
	TCHECK_EQ(weft_file_open(NULL, O_RDONLY, 0), -EINVAL);
	if (kind == WT_STEP) {
		TCHECK_EQ(weft_file_write_all(path, "xy", 2, 0), -EWOULDBLOCK);
		TCHECK_EQ(weft_file_read_all(path, &data, 0), -EWOULDBLOCK);
		TCHECK_EQ(weft_file_open(path, O_RDONLY, 0), -EWOULDBLOCK);
	} else {
		/* The system calls' errors. */
		TCHECK_EQ(weft_file_write_all(path, "xy", 2, 0), 0);
		TCHECK_EQ(weft_file_read_all("", &data, 0), -ENOENT);
		TCHECK_EQ(weft_file_read_all(missing, &data, 0), -ENOENT);
		TCHECK_EQ(weft_file_read_all(dir, &data, 0), -EISDIR);
		TCHECK_EQ(weft_file_read_all(path, &data, 1), -EFBIG);
		TCHECK(data == NULL);
		TCHECK_EQ(weft_file_read_all(path, &data, SIZE_MAX), 2);
		free(data);
		TCHECK_EQ(weft_file_write_all(missing, "x", 1, 0), -ENOENT);
		TCHECK_EQ(weft_file_write_all(missing, "x", 1, WEFT_FILE_ATOMIC), -ENOENT);
		TCHECK_EQ(weft_file_write_all(dir, "x", 1, WEFT_FILE_ATOMIC), -EISDIR);
		TCHECK_EQ(weft_file_open(missing, O_RDONLY, 0), -ENOENT);
		TCHECK_EQ(weft_file_open(dir, O_TMPFILE | O_RDONLY, 0600), -EINVAL); /* flags open(2) refuses */
	}
	int fd = open(path, O_RDWR | O_CLOEXEC);
	TCHECK(fd >= 0);
	char buf[4];
	for (size_t i = 0; i < NBAD_FDS; i++) {
		TCHECK_EQ(weft_file_pread(bad_fds[i], buf, 1, 0), bad_fds[i] < 0 || kind != WT_STEP ? -EBADF : ok);
		TCHECK_EQ(weft_file_pwrite(bad_fds[i], buf, 1, 0), bad_fds[i] < 0 || kind != WT_STEP ? -EBADF : ok);
	}
	TCHECK_EQ(weft_file_pread(fd, NULL, 1, 0), -EINVAL);
	TCHECK_EQ(weft_file_pwrite(fd, NULL, 1, 0), -EINVAL);
	static const int64_t offs[] = {-1, INT64_MIN};
	for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
		TCHECK_EQ(weft_file_pread(fd, buf, 1, offs[i]), -EINVAL);
		TCHECK_EQ(weft_file_pwrite(fd, buf, 1, offs[i]), -EINVAL);
	}
	TCHECK_EQ(weft_file_pread(fd, buf, SIZE_MAX, 0), -EINVAL);
	TCHECK_EQ(weft_file_pwrite(fd, buf, (size_t)SSIZE_MAX + 1, 0), -EINVAL);
	TCHECK_EQ(weft_file_pread(fd, buf, 1, INT64_MAX), -EINVAL); /* offset + len past INT64_MAX */
	TCHECK_EQ(weft_file_pwrite(fd, buf, 2, INT64_MAX - 1), -EINVAL);
	TCHECK_EQ(weft_file_pread(fd, buf, 2, 0), kind == WT_STEP ? -EWOULDBLOCK : 2);
	close(fd);
}

static void test_file_helpers_refuse_bad_input(void **state)
{
	(void)state;
	wt_each_kind(file_body, NULL);
}

/* ------------------------------------------------------------ the pool's _step forms */

/* weft_blocking_step, the file calls' and weft_getaddrinfo_step. None of
 * these calls may register (a stackless body that ended with its op
 * registered would be fatal): they are refused, or poll a past deadline
 * (a pool job cannot be done without waiting: -ETIMEDOUT, and it does not
 * run), and only the other kinds make valid calls with a deadline to
 * come. Outputs (*result, *data, *res) are left alone, or NULL. */
static void pool_step_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	char path[128], missing[128];
	snprintf(path, sizeof path, "%s/f", dir);
	snprintf(missing, sizeof missing, "%s/none/f", dir);
	weft_op_t op = WEFT_OP_INIT;
	void *r = &r;
	TCHECK_EQ(weft_blocking_step(NULL, NULL, &r, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_blocking_step(ret_arg, (void *)5, &r, WEFT_NEVER, NULL), -EINVAL);
	for (size_t i = 0; i < NPAST; i++)
		TCHECK_EQ(weft_blocking_step(ret_arg, (void *)5, &r, past[i], &op), -ETIMEDOUT);
	TCHECK(r == &r);
	if (kind != WT_STEP) {
		TCHECK_EQ(weft_blocking_step(ret_arg, (void *)5, &r, WEFT_NEVER, &op), 0);
		TCHECK_EQ((intptr_t)r, 5);
		TCHECK_EQ(weft_blocking_step(ret_arg, NULL, NULL, wt_hang_deadline(), &op), 0);
	}

	/* Files: NULLs, bad flags and lengths, a NULL op. */
	void *data = &data;
	TCHECK_EQ(weft_file_read_all_step(NULL, &data, 0, WEFT_NEVER, &op), -EINVAL);
	TCHECK(data == NULL);
	TCHECK_EQ(weft_file_read_all_step(path, NULL, 0, WEFT_NEVER, &op), -EINVAL);
	data = &data;
	TCHECK_EQ(weft_file_read_all_step(path, &data, 0, WEFT_NEVER, NULL), -EINVAL);
	TCHECK(data == NULL);
	TCHECK_EQ(weft_file_write_all_step(NULL, "x", 1, 0, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_file_write_all_step(path, NULL, 1, 0, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_file_write_all_step(path, "x", 1, 0, WEFT_NEVER, NULL), -EINVAL);
	static const unsigned flags[] = {1u << 3, UINT_MAX, WEFT_FILE_ATOMIC | WEFT_FILE_APPEND};
	for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
		TCHECK_EQ(weft_file_write_all_step(path, "x", 1, flags[i], WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_file_write_all_step(path, "xy", (size_t)SSIZE_MAX + 1, 0, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_file_open_step(NULL, O_RDONLY, 0, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_file_open_step(path, O_RDONLY, 0, WEFT_NEVER, NULL), -EINVAL);
	char buf[4] = {0};
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	TCHECK(fd >= 0);
	for (size_t i = 0; i < NBAD_FDS; i++) {
		int want = bad_fds[i] < 0 ? -EBADF : -ETIMEDOUT; /* a past deadline: not run */
		TCHECK_EQ(weft_file_pread_step(bad_fds[i], buf, 1, 0, INT64_MIN, &op), want);
		TCHECK_EQ(weft_file_pwrite_step(bad_fds[i], buf, 1, 0, INT64_MIN, &op), want);
		if (kind != WT_STEP) {
			TCHECK_EQ(weft_file_pread_step(bad_fds[i], buf, 1, 0, WEFT_NEVER, &op), -EBADF);
			TCHECK_EQ(weft_file_pwrite_step(bad_fds[i], buf, 1, 0, WEFT_NEVER, &op), -EBADF);
		}
	}
	TCHECK_EQ(weft_file_pread_step(fd, NULL, 1, 0, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_file_pwrite_step(fd, NULL, 1, 0, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_file_pread_step(fd, buf, 1, 0, WEFT_NEVER, NULL), -EINVAL);
	TCHECK_EQ(weft_file_pwrite_step(fd, buf, 1, 0, WEFT_NEVER, NULL), -EINVAL);
	static const int64_t offs[] = {-1, INT64_MIN};
	for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
		TCHECK_EQ(weft_file_pread_step(fd, buf, 1, offs[i], WEFT_NEVER, &op), -EINVAL);
		TCHECK_EQ(weft_file_pwrite_step(fd, buf, 1, offs[i], WEFT_NEVER, &op), -EINVAL);
	}
	TCHECK_EQ(weft_file_pread_step(fd, buf, SIZE_MAX, 0, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_file_pwrite_step(fd, buf, 2, INT64_MAX - 1, WEFT_NEVER, &op), -EINVAL);
	/* A past deadline: nothing done. */
	for (size_t i = 0; i < NPAST; i++) {
		data = &data;
		TCHECK_EQ(weft_file_read_all_step("/dev/null", &data, 0, past[i], &op), -ETIMEDOUT);
		TCHECK(data == NULL);
		TCHECK_EQ(weft_file_write_all_step(path, "x", 1, 0, past[i], &op), -ETIMEDOUT);
		TCHECK_EQ(weft_file_open_step(path, O_RDWR | O_CREAT, 0600, past[i], &op), -ETIMEDOUT);
		TCHECK_EQ(weft_file_pread_step(fd, buf, 1, 0, past[i], &op), -ETIMEDOUT);
	}
	TCHECK_EQ(access(path, F_OK), -1); /* not created */
	if (kind != WT_STEP) {
		/* The system calls' errors. */
		TCHECK_EQ(weft_file_read_all_step(missing, &data, 0, WEFT_NEVER, &op), -ENOENT);
		TCHECK(data == NULL);
		TCHECK_EQ(weft_file_read_all_step(dir, &data, 0, WEFT_NEVER, &op), -EISDIR);
		TCHECK_EQ(weft_file_write_all_step(missing, "x", 1, 0, WEFT_NEVER, &op), -ENOENT);
		TCHECK_EQ(weft_file_open_step(missing, O_RDONLY, 0, WEFT_NEVER, &op), -ENOENT);
		TCHECK_EQ(weft_file_pread_step(fd, buf, 1, 0, WEFT_NEVER, &op), 0); /* end of file */
	}
	close(fd);

	/* Lookups. */
	struct addrinfo *res = (struct addrinfo *)&res;
	TCHECK_EQ(weft_getaddrinfo_step("127.0.0.1", "80", NULL, NULL, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_getaddrinfo_step(NULL, NULL, NULL, &res, WEFT_NEVER, &op), -EINVAL);
	TCHECK(res == NULL);
	res = (struct addrinfo *)&res;
	TCHECK_EQ(weft_getaddrinfo_step("127.0.0.1", "80", NULL, &res, WEFT_NEVER, NULL), -EINVAL);
	TCHECK(res == NULL);
	for (size_t i = 0; i < NPAST; i++) {
		res = (struct addrinfo *)&res;
		TCHECK_EQ(weft_getaddrinfo_step("127.0.0.1", "80", NULL, &res, past[i], &op), -ETIMEDOUT);
		TCHECK(res == NULL);
	}
	if (kind != WT_STEP) {
		struct addrinfo badflags = {.ai_flags = 0x7fff0000};
		TCHECK_EQ(weft_getaddrinfo_step("127.0.0.1", NULL, &badflags, &res, WEFT_NEVER, &op), -EINVAL);
		TCHECK(res == NULL);
	}
}

static void test_pool_step_forms_refuse_bad_input(void **state)
{
	(void)state;
	wt_each_kind(pool_step_body, NULL);
}

/* weft_tcp_connect_step and weft_unix_connect_step: refused, or nothing
 * to wait for (nobody listens: refused at once), or a past deadline. */
static void dial_step_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_op_t op = WEFT_OP_INIT;
	(void)weft_io_backend(NULL); /* the poller's descriptors are there before we count */
	int fds = wt_fd_count();
	TCHECK_EQ(weft_tcp_connect_step("127.0.0.1", 0, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_tcp_connect_step(NULL, 0, INT64_MIN, &op), -EINVAL);
	TCHECK_EQ(weft_tcp_connect_step("127.0.0.1", 80, WEFT_NEVER, NULL), -EINVAL);
	char longpath[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	memset(longpath, 'a', sizeof longpath - 1);
	longpath[sizeof longpath - 1] = 0;
	TCHECK_EQ(weft_unix_connect_step(NULL, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_unix_connect_step("", INT64_MIN, &op), -EINVAL);
	TCHECK_EQ(weft_unix_connect_step(longpath, WEFT_NEVER, &op), -ENAMETOOLONG);
	TCHECK_EQ(weft_unix_connect_step("/nonexistent/weft-args.sock", WEFT_NEVER, NULL), -EINVAL);
	TCHECK_EQ(weft_unix_connect_step("/nonexistent/weft-args.sock", WEFT_NEVER, &op), -ENOENT);
	TCHECK_EQ(weft_unix_connect_step("@weft-args-nobody-listens", INT64_MIN, &op), -ECONNREFUSED);
	/* A past deadline: a lookup cannot start; an unreachable connect
	 * cannot complete without waiting (a host that does not resolve is
	 * never asked for). */
	for (size_t i = 0; i < NPAST; i++)
		TCHECK_EQ(weft_tcp_connect_step("weft-args.invalid", 80, past[i], &op), -ETIMEDOUT);
	/* Whatever failed left nothing open. */
	TCHECK_EQ(wt_fd_count(), fds);
}

static void test_dial_step_forms_refuse_bad_input(void **state)
{
	(void)state;
	wt_each_kind(dial_step_body, NULL);
}

/* ------------------------------------------------------------ processes */

static void process_null_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_process_t *p = (weft_process_t *)&p;
	const char *const cat[] = {"cat", NULL};
	TCHECK_EQ(weft_process_spawn(NULL, cat, NULL), -EINVAL);
	TCHECK_EQ(weft_process_spawn(&p, NULL, NULL), -EINVAL);
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){NULL}, NULL), -EINVAL);
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"", NULL}, NULL), -EINVAL);
	static const int modes[] = {-1, 3, INT_MAX, INT_MIN};
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
		for (int which = 0; which < 3; which++) {
			weft_process_opts_t o = {0};
			o.stdio[which] = modes[i];
			TCHECK_EQ(weft_process_spawn(&p, cat, &o), -EINVAL);
		}
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"/nonexistent/weft-args", NULL}, NULL), -ENOENT);
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"weft-args-no-such-command", NULL}, NULL), -ENOENT);
	TCHECK_EQ(weft_process_spawn(&p, cat, &(weft_process_opts_t){.cwd = "/nonexistent/weft-args"}), -ENOENT);
	char buf[4];
	TCHECK_EQ(weft_process_pid(NULL), -EINVAL);
	TCHECK_EQ(weft_process_fd(NULL, WEFT_STDIN), -EINVAL);
	TCHECK_EQ(weft_process_write(NULL, buf, 1, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_process_read(NULL, WEFT_STDOUT, buf, 1, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_process_close(NULL, WEFT_STDIN), -EINVAL);
	TCHECK_EQ(weft_process_wait(NULL, NULL, INT64_MIN), -EINVAL);
	TCHECK_EQ(weft_process_kill(NULL, SIGTERM), -EINVAL);
	TCHECK_EQ(weft_process_destroy(NULL), -EINVAL);
	weft_op_t op = WEFT_OP_INIT;
	TCHECK_EQ(weft_process_wait_step(NULL, NULL, INT64_MIN, &op), -EINVAL);
	TCHECK_EQ(weft_process_read_step(NULL, WEFT_STDOUT, buf, 1, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_process_write_step(NULL, buf, 1, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_process_forward(NULL, WEFT_STDOUT, 1, NULL), -EINVAL);
	TCHECK_EQ(weft_process_forward_wait(NULL, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_process_forward_wait_step(NULL, WEFT_NEVER, &op), -EINVAL);
}

static void test_process_calls_refuse_null(void **state)
{
	(void)state;
	wt_each_kind(process_null_body, NULL);
}

static void process_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	weft_process_t *p;
	weft_process_opts_t o = {.stdio = {WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, WEFT_STDIO_NULL}};
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"cat", NULL}, &o), 0);
	char buf[4] = "abc";
	static const int whiches[] = {-1, 3, INT_MAX, INT_MIN};
	for (size_t i = 0; i < sizeof whiches / sizeof whiches[0]; i++) {
		TCHECK_EQ(weft_process_fd(p, whiches[i]), -EINVAL);
		TCHECK_EQ(weft_process_read(p, whiches[i], buf, 1, WEFT_NEVER), -EINVAL);
		TCHECK_EQ(weft_process_close(p, whiches[i]), -EINVAL);
	}
	TCHECK_EQ(weft_process_read(p, WEFT_STDIN, buf, 1, WEFT_NEVER), -EINVAL); /* not a readable one */
	TCHECK_EQ(weft_process_fd(p, WEFT_STDERR), -EBADF);			  /* not piped */
	TCHECK_EQ(weft_process_read(p, WEFT_STDERR, buf, 1, WEFT_NEVER), -EBADF);
	TCHECK_EQ(weft_process_close(p, WEFT_STDERR), -EBADF);
	TCHECK_EQ(weft_process_read(p, WEFT_STDOUT, NULL, 1, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_process_write(p, NULL, 1, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_process_read(p, WEFT_STDOUT, buf, SIZE_MAX, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_process_write(p, buf, (size_t)SSIZE_MAX + 1, WEFT_NEVER), -EINVAL);
	static const int sigs[] = {-1, NSIG, INT_MAX, INT_MIN};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		TCHECK_EQ(weft_process_kill(p, sigs[i]), -EINVAL);
	TCHECK_EQ(weft_process_kill(p, 0), 0); /* no signal: is it there? */
	/* Nothing to read, the child runs: a past deadline polls. */
	for (size_t i = 0; i < NPAST; i++) {
		TCHECK_EQ(weft_process_read(p, WEFT_STDOUT, buf, 1, past[i]), -ETIMEDOUT);
		weft_exit_status_t st;
		TCHECK_EQ(weft_process_wait(p, &st, past[i]), -ETIMEDOUT);
	}
	if (kind == WT_STEP) {
		TCHECK_EQ(weft_process_read(p, WEFT_STDOUT, buf, 1, WEFT_NEVER), -EWOULDBLOCK);
		TCHECK_EQ(weft_process_wait(p, NULL, WEFT_NEVER), -EWOULDBLOCK);
	}
	/* The _step forms: the same checks, and a NULL op. */
	weft_op_t op = WEFT_OP_INIT;
	weft_exit_status_t st = {5, 5};
	TCHECK_EQ(weft_process_wait_step(p, &st, WEFT_NEVER, NULL), -EINVAL);
	TCHECK_EQ(weft_process_read_step(p, WEFT_STDOUT, buf, 1, WEFT_NEVER, NULL), -EINVAL);
	TCHECK_EQ(weft_process_write_step(p, buf, 1, WEFT_NEVER, NULL), -EINVAL);
	for (size_t i = 0; i < sizeof whiches / sizeof whiches[0]; i++)
		TCHECK_EQ(weft_process_read_step(p, whiches[i], buf, 1, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_process_read_step(p, WEFT_STDIN, buf, 1, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_process_read_step(p, WEFT_STDERR, buf, 1, WEFT_NEVER, &op), -EBADF);
	TCHECK_EQ(weft_process_read_step(p, WEFT_STDOUT, NULL, 1, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_process_write_step(p, NULL, 1, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_process_read_step(p, WEFT_STDOUT, buf, SIZE_MAX, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_process_write_step(p, buf, (size_t)SSIZE_MAX + 1, WEFT_NEVER, &op), -EINVAL);
	for (size_t i = 0; i < NPAST; i++) {
		TCHECK_EQ(weft_process_read_step(p, WEFT_STDOUT, buf, 1, past[i], &op), -ETIMEDOUT);
		TCHECK_EQ(weft_process_wait_step(p, &st, past[i], &op), -ETIMEDOUT);
	}
	TCHECK(st.code == 5 && st.signal == 5);
	/* Forwarding: bad slots, descriptors, sizes; nothing forwarded yet. */
	for (size_t i = 0; i < sizeof whiches / sizeof whiches[0]; i++)
		TCHECK_EQ(weft_process_forward(p, whiches[i], 1, NULL), -EINVAL);
	static const int fds[] = {-1, INT_MIN, INT_MAX};
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		TCHECK_EQ(weft_process_forward(p, WEFT_STDOUT, fds[i], NULL), -EBADF);
	int null_w = open("/dev/null", O_WRONLY | O_CLOEXEC);
	TCHECK_EQ(weft_process_forward(p, WEFT_STDERR, null_w, NULL), -EBADF); /* not piped */
	TCHECK_EQ(weft_process_forward(p, WEFT_STDIN, null_w, NULL), -EBADF);  /* not readable */
	TCHECK_EQ(weft_process_forward(p, WEFT_STDOUT, null_w, &(weft_process_forward_opts_t){.size = 1}), -EINVAL);
	weft_exec_t *gone;
	TCHECK_EQ(weft_exec_create_threads(&gone, NULL), 0);
	TCHECK_EQ(weft_exec_destroy(gone), 0);
	TCHECK_EQ(weft_process_forward(p, WEFT_STDOUT, null_w, &(weft_process_forward_opts_t){.exec = gone}), -EINVAL);
	for (size_t i = 0; i < NPAST; i++) {
		TCHECK_EQ(weft_process_forward_wait(p, past[i]), 0);
		TCHECK_EQ(weft_process_forward_wait_step(p, past[i], &op), 0);
	}
	TCHECK_EQ(weft_process_forward_wait_step(p, WEFT_NEVER, NULL), -EINVAL);
	if (kind != WT_STEP) {
		/* cat's stdout into /dev/null: cat lives while its stdin is open */
		TCHECK_EQ(weft_process_forward(p, WEFT_STDOUT, null_w, NULL), 0);
		TCHECK_EQ(weft_process_forward(p, WEFT_STDOUT, null_w, NULL), -EALREADY);
		for (size_t i = 0; i < NPAST; i++)
			TCHECK_EQ(weft_process_forward_wait(p, past[i]), -ETIMEDOUT);
	}
	close(null_w);
	TCHECK_EQ(weft_process_write_step(p, buf, 0, WEFT_NEVER, &op), 0); /* nothing to write */
	TCHECK_EQ(weft_process_close(p, WEFT_STDIN), 0);
	TCHECK_EQ(weft_process_close(p, WEFT_STDIN), -EBADF);
	TCHECK_EQ(weft_process_write(p, buf, 1, WEFT_NEVER), -EBADF);
	TCHECK_EQ(weft_process_write_step(p, buf, 1, WEFT_NEVER, &op), -EBADF);
	TCHECK_EQ(weft_process_fd(p, WEFT_STDIN), -EBADF);
	TCHECK(weft_process_pid(p) > 0);
	TCHECK_EQ(weft_process_destroy(p), 0);
}

static void test_process_calls_refuse_bad_values(void **state)
{
	(void)state;
	wt_each_kind(process_body, NULL);
}

/* ------------------------------------------------------------ signals */

static void signal_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_chan_t *ch, *wide;
	TCHECK_EQ(weft_chan_create(&ch, sizeof(int), 4), 0);
	TCHECK_EQ(weft_chan_create(&wide, sizeof(long), 4), 0);
	int usr1 = SIGUSR1;
	TCHECK_EQ(weft_signal_notify(NULL, &usr1, 1), -EINVAL);
	TCHECK_EQ(weft_signal_notify(ch, NULL, 1), -EINVAL);
	static const int counts[] = {0, -1, INT_MIN};
	for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
		TCHECK_EQ(weft_signal_notify(ch, &usr1, counts[i]), -EINVAL);
	TCHECK_EQ(weft_signal_notify(wide, &usr1, 1), -EINVAL); /* not int-sized */
	static const int bad[] = {0,	   -1,	   SIGKILL, SIGSTOP, SIGSEGV, SIGBUS,  SIGFPE, SIGILL,
				  SIGTRAP, SIGSYS, 32,	    33,	     NSIG,    INT_MAX, INT_MIN};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		TCHECK_EQ(weft_signal_notify(ch, &bad[i], 1), -EINVAL);
		int two[2] = {SIGUSR1, bad[i]};
		TCHECK_EQ(weft_signal_notify(ch, two, 2), -EINVAL);
	}
	/* None of them registered anything. */
	TCHECK_EQ(weft_signal_stop(ch), -ENOENT);
	TCHECK_EQ(weft_signal_stop(NULL), -EINVAL);
	TCHECK_EQ(weft_signal_stop(wide), -ENOENT);
	TCHECK_EQ(weft_chan_release(ch), 0);
	TCHECK_EQ(weft_chan_release(wide), 0);
}

static void test_signal_calls_refuse_bad_input(void **state)
{
	(void)state;
	wt_each_kind(signal_body, NULL);
}

static int setup(void **state)
{
	strcpy(dir, "/tmp/weft-args-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	return wt_fd_setup(state);
}

static int teardown(void **state)
{
	char p[128];
	snprintf(p, sizeof p, "%s/f", dir);
	unlink(p);
	if (rmdir(dir) != 0)
		return -1;
	return wt_fd_teardown(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		WT_IO_TEST(test_fd_wait_refuses_bad_input),
		WT_IO_TEST(test_fd_wait_with_a_past_deadline),
		WT_IO_TEST(test_close_refuses_bad_descriptors),
		WT_IO_TEST(test_reads_and_writes_refuse_bad_descriptors),
		WT_IO_TEST(test_reads_and_writes_refuse_bad_arguments),
		WT_IO_TEST(test_reads_with_a_past_deadline),
		WT_IO_TEST(test_sendfile_refuses_bad_input),
		WT_IO_TEST(test_shutdown_refuses_bad_input),
		WT_IO_TEST(test_step_forms_refuse_bad_input),
		WT_IO_TEST(test_more_step_forms_refuse_bad_input),
		WT_IO_TEST(test_sockets_refuse_bad_input),
		WT_IO_TEST(test_dialling_refuses_bad_input),
		WT_IO_TEST(test_server_calls_refuse_bad_input),
		WT_IO_TEST(test_server_calls_made_twice),
		WT_IO_TEST(test_server_destroyed_while_serving),
		WT_IO_TEST(test_blocking_pool_refuses_bad_input),
		WT_IO_TEST(test_blocking_pool_idle_time_near_forever),
		WT_IO_TEST(test_io_without_a_runtime),
		WT_IO_TEST(test_io_of_a_stopped_runtime),
		cmocka_unit_test_setup_teardown(test_file_helpers_refuse_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_step_forms_refuse_bad_input, setup, teardown),
		WT_IO_TEST(test_dial_step_forms_refuse_bad_input),
		WT_IO_TEST(test_process_calls_refuse_null),
		WT_IO_TEST(test_process_calls_refuse_bad_values),
		WT_IO_TEST(test_signal_calls_refuse_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
