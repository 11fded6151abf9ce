/* wt_io.h - helpers for the netpoller, socket and server tests: counting
 * open descriptors (every test must leave as many as it found), a connected
 * pair of TCP sockets over loopback. */
#ifndef WT_IO_H
#define WT_IO_H

#include "weft_test.h"

#include <dirent.h>

/* Open descriptors of this process (/proc/self/fd, minus the directory's own). */
static inline int wt_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

/* cmocka setup/teardown pair: the teardown fails the test if it leaked. */
static int wt_fd_before;
static inline int wt_fd_setup(void **state)
{
	(void)state;
	wt_fd_before = wt_fd_count();
	return 0;
}
static inline int wt_fd_teardown(void **state)
{
	(void)state;
	int now = wt_fd_count();
	if (now != wt_fd_before) {
		fprintf(stderr, "descriptor leak: %d open before the test, %d after\n", wt_fd_before, now);
		return -1;
	}
	return 0;
}
#define WT_IO_TEST(fn) cmocka_unit_test_setup_teardown(fn, wt_fd_setup, wt_fd_teardown)

/* From a coroutine: a client connected to TCP listener lfd (*c) and the
 * listener's end of it (*s). Checks both. */
static inline void wt_tcp_accepted(int lfd, int *c, int *s)
{
	*c = weft_tcp_connect("127.0.0.1", (uint16_t)weft_local_port(lfd), weft_deadline_in(5 * WEFT_SEC));
	*s = weft_accept(lfd, NULL, NULL, weft_deadline_in(5 * WEFT_SEC));
	TCHECK(*c >= 0 && *s >= 0);
}

/* The same on a new listener on a free loopback port (*lfd). */
static inline void wt_tcp_pair(int *lfd, int *c, int *s)
{
	*lfd = weft_tcp_listen("127.0.0.1", 0, 4);
	TCHECK(*lfd >= 0);
	wt_tcp_accepted(*lfd, c, s);
}

#endif
