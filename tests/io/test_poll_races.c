/* test_poll_races.c - readiness is never lost when several tasks use one
 * descriptor (reading with weft_read or weft_readv, accepting, writing),
 * when the first waits on a foreign descriptor race, or when a short read
 * does not mean "empty" (datagrams). Run on both backends. */
#include "wt_io.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define ROUNDS WT_SIZE(300, 40)

/* Three readers block on one stream socket; three bytes arrive in one write
 * (one report): each reader must get one, none may time out. */
static _Atomic int got, failed, ebadf;

static void *one_byte_reader(void *a)
{
	int fd = (int)(intptr_t)a;
	char c;
	ssize_t n = weft_read(fd, &c, 1, wt_hang_deadline());
	if (n == 1)
		atomic_fetch_add(&got, 1);
	else if (n == -EBADF)
		atomic_fetch_add(&ebadf, 1);
	else
		atomic_fetch_add(&failed, 1);
	return NULL;
}

static void *readers_main(void *a)
{
	(void)a;
	for (int i = 0; i < ROUNDS; i++) {
		int sv[2];
		TCHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
		weft_task_t t[3];
		for (int k = 0; k < 3; k++)
			t[k] = wt_spawn(one_byte_reader, (void *)(intptr_t)sv[0]);
		weft_sleep(WEFT_MSEC / 5);
		TCHECK_EQ(write(sv[1], "abc", 3), 3);
		for (int k = 0; k < 3; k++)
			wt_join(t[k]);
		weft_close(sv[0]);
		close(sv[1]);
	}
	TCHECK_EQ(atomic_load(&got), 3 * ROUNDS);
	TCHECK_EQ(atomic_load(&failed), 0);
	TCHECK_EQ(atomic_load(&ebadf), 0); /* the first waits of a foreign descriptor raced: no -EBADF */
	return NULL;
}

static void test_several_readers_one_descriptor(void **state)
{
	(void)state;
	wt_run(readers_main, NULL, 2);
}

/* The generic retry (weft_readv, weft_accept, weft_write): K tasks share
 * one descriptor and each must complete M operations, while a plain thread
 * feeds it one item at a time (a byte, a connection, room for a byte), so
 * reports keep landing while some tasks are between an EAGAIN and their
 * wait. A report taken by the wrong task leaves one parked with its item
 * queued: at the end nobody else would take it, and it times out. */
#define K_TASKS 4
#define M_ITEMS WT_SIZE(64, 16)
#define FEED_ROUNDS WT_SIZE(40, 8)

typedef struct feed {
	int fd;	  /* the shared descriptor (the tasks' end) */
	int peer; /* the feeder's end (a listener's port for accept) */
} feed;

static void *readv_task(void *a)
{
	feed *f = a;
	for (int i = 0; i < M_ITEMS; i++) {
		char c;
		struct iovec iov = {.iov_base = &c, .iov_len = 1};
		ssize_t n = weft_readv(f->fd, &iov, 1, wt_hang_deadline());
		if (n != 1) {
			atomic_fetch_add(&failed, 1);
			return NULL;
		}
		atomic_fetch_add(&got, 1);
	}
	return NULL;
}

static void *byte_feeder(void *a)
{
	feed *f = a;
	for (int i = 0, n; i < K_TASKS * M_ITEMS; i += n) { /* 1-3 bytes per write: one report for several readers */
		n = 1 + i % 3 < K_TASKS * M_ITEMS - i ? 1 + i % 3 : K_TASKS * M_ITEMS - i;
		TCHECK_EQ(write(f->peer, "bbb", (size_t)n), n);
		sched_yield();
	}
	return NULL;
}

static void *accept_task(void *a)
{
	feed *f = a;
	for (int i = 0; i < M_ITEMS; i++) {
		int fd = weft_accept(f->fd, NULL, NULL, wt_hang_deadline());
		if (fd < 0) {
			atomic_fetch_add(&failed, 1);
			return NULL;
		}
		atomic_fetch_add(&got, 1);
		weft_close(fd);
	}
	return NULL;
}

static void *conn_feeder(void *a)
{
	feed *f = a;
	struct sockaddr_in sa = {
		.sin_family = AF_INET, .sin_port = htons((uint16_t)f->peer), .sin_addr.s_addr = htonl(0x7f000001)};
	for (int i = 0; i < K_TASKS * M_ITEMS; i++) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		TCHECK(c >= 0);
		TCHECK_EQ(connect(c, (struct sockaddr *)&sa, sizeof sa), 0);
		close(c);
	}
	return NULL;
}

static void *write_task(void *a)
{
	feed *f = a;
	for (int i = 0; i < M_ITEMS; i++) {
		if (weft_write(f->fd, "w", 1, wt_hang_deadline()) != 1) {
			atomic_fetch_add(&failed, 1);
			return NULL;
		}
		atomic_fetch_add(&got, 1);
	}
	return NULL;
}

/* Reads what the writers write, 1-3 bytes at a time, so room for a few
 * more keeps appearing; gives up after the hang guard without a byte. */
static void *room_feeder(void *a)
{
	feed *f = a;
	for (int i = 0; i < K_TASKS * M_ITEMS;) {
		struct pollfd p = {.fd = f->peer, .events = POLLIN};
		if (poll(&p, 1, (int)(WT_HANG_NS / WEFT_MSEC)) != 1) {
			atomic_fetch_add(&failed, 1);
			return NULL;
		}
		char c[3];
		ssize_t n = read(f->peer, c, 1 + (size_t)i % 3);
		TCHECK(n > 0);
		if (n <= 0)
			return NULL;
		i += (int)n;
	}
	return NULL;
}

static void run_feed(void *(*task)(void *), void *(*feeder)(void *), feed *f)
{
	weft_task_t t[K_TASKS];
	for (int k = 0; k < K_TASKS; k++)
		t[k] = wt_spawn(task, f);
	pthread_t th;
	TCHECK_EQ(pthread_create(&th, NULL, feeder, f), 0);
	for (int k = 0; k < K_TASKS; k++)
		wt_join(t[k]);
	pthread_join(th, NULL);
}

static void *readv_main(void *a)
{
	(void)a;
	for (int i = 0; i < FEED_ROUNDS; i++) {
		int sv[2];
		TCHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
		feed f = {sv[0], sv[1]};
		run_feed(readv_task, byte_feeder, &f);
		weft_close(sv[0]);
		close(sv[1]);
	}
	return NULL;
}

static void *accept_main(void *a)
{
	(void)a;
	for (int i = 0; i < FEED_ROUNDS; i++) {
		int lfd = weft_tcp_listen("127.0.0.1", 0, 1024);
		TCHECK(lfd >= 0);
		feed f = {lfd, weft_local_port(lfd)};
		run_feed(accept_task, conn_feeder, &f);
		weft_close(lfd);
	}
	return NULL;
}

static void *write_main(void *a)
{
	(void)a;
	for (int i = 0; i < FEED_ROUNDS; i++) {
		int sv[2];
		TCHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
		int small = 1; /* the kernel's minimum: a few one-byte messages fill it */
		TCHECK_EQ(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
		feed f = {sv[0], sv[1]};
		run_feed(write_task, room_feeder, &f);
		weft_close(sv[0]);
		close(sv[1]);
	}
	return NULL;
}

static void run_feed_test(void *(*main_fn)(void *))
{
	atomic_store(&got, 0);
	atomic_store(&failed, 0);
	wt_run(main_fn, NULL, 2);
	assert_int_equal(atomic_load(&failed), 0);
	assert_int_equal(atomic_load(&got), FEED_ROUNDS * K_TASKS * M_ITEMS);
}

static void test_several_readv_one_descriptor(void **state)
{
	(void)state;
	run_feed_test(readv_main);
}

static void test_several_acceptors_one_listener(void **state)
{
	(void)state;
	run_feed_test(accept_main);
}

static void test_several_writers_one_descriptor(void **state)
{
	(void)state;
	run_feed_test(write_main);
}

/* Two datagrams arrive together: a short read of the first must not make
 * the second wait for a report that will not come. */
static int udp_port;

static void *udp_sender(void *a)
{
	(void)a;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {
		.sin_family = AF_INET, .sin_port = htons((uint16_t)udp_port), .sin_addr.s_addr = htonl(0x7f000001)};
	usleep(2000);
	sendto(s, "one", 3, 0, (struct sockaddr *)&sa, sizeof sa);
	sendto(s, "two", 3, 0, (struct sockaddr *)&sa, sizeof sa);
	close(s);
	return NULL;
}

static void *udp_main(void *a)
{
	(void)a;
	for (int i = 0; i < WT_SIZE(50, 10); i++) {
		int fd = weft_udp_bind("127.0.0.1", 0);
		TCHECK(fd >= 0);
		udp_port = weft_local_port(fd);
		pthread_t th;
		TCHECK_EQ(pthread_create(&th, NULL, udp_sender, NULL), 0);
		char buf[256];
		TCHECK_EQ(weft_read(fd, buf, sizeof buf, wt_hang_deadline()), 3);
		TCHECK_EQ(weft_read(fd, buf, sizeof buf, wt_hang_deadline()), 3);
		pthread_join(th, NULL);
		weft_close(fd);
	}
	return NULL;
}

static void test_datagrams_in_one_report(void **state)
{
	(void)state;
	wt_run(udp_main, NULL, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		WT_IO_TEST(test_several_readers_one_descriptor), WT_IO_TEST(test_several_readv_one_descriptor),
		WT_IO_TEST(test_several_acceptors_one_listener), WT_IO_TEST(test_several_writers_one_descriptor),
		WT_IO_TEST(test_datagrams_in_one_report),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
