/* test_poll_races.c - readiness is never lost when several tasks use one
 * descriptor, when the first waits on a foreign descriptor race, or when a
 * short read does not mean "empty" (datagrams). Run on both backends. */
#include "wt_io.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#define ROUNDS WT_SIZE(300, 40)

/* Three readers block on one stream socket; three bytes arrive in one write
 * (one report): each reader must get one, none may time out. */
static _Atomic int got, failed, ebadf;

static void *one_byte_reader(void *a)
{
	int fd = (int)(intptr_t)a;
	char c;
	ssize_t n = weft_read(fd, &c, 1, weft_deadline_in(2 * WEFT_SEC));
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

/* Two datagrams arrive together: a short read of the first must not make
 * the second wait for a report that will not come. */
static int udp_port;

static void *udp_sender(void *a)
{
	(void)a;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)udp_port),
				 .sin_addr.s_addr = htonl(0x7f000001)};
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
		TCHECK_EQ(weft_read(fd, buf, sizeof buf, weft_deadline_in(2 * WEFT_SEC)), 3);
		TCHECK_EQ(weft_read(fd, buf, sizeof buf, weft_deadline_in(2 * WEFT_SEC)), 3);
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
		WT_IO_TEST(test_several_readers_one_descriptor),
		WT_IO_TEST(test_datagrams_in_one_report),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
