/* wt_io.h - helpers for the netpoller, socket and server tests: counting
 * open descriptors (every test must leave as many as it found). */
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

#endif
