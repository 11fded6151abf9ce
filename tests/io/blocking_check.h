/* blocking_check.h - leak checks shared by the blocking-pool, file,
 * process and signal tests: open descriptors and unreaped children, and a
 * cmocka setup/teardown pair for the process tests that checks both. */
#ifndef BLOCKING_CHECK_H
#define BLOCKING_CHECK_H

#include <dirent.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/wait.h>

/* Descriptors open in this process now (not counting the one used to
 * list them). */
static inline int wt_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

/* Print what every open descriptor refers to (for a failed leak check). */
static inline void wt_dump_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char path[300], target[256] = "";
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(path, target, sizeof target - 1);
		fprintf(stderr, "  fd %s -> %s\n", e->d_name, n > 0 ? target : "?");
	}
	if (d)
		closedir(d);
}

/* Assert (on the test thread) that the descriptor count is back to `before`. */
#define WT_ASSERT_FDS(before)                                                                                          \
	do {                                                                                                           \
		int now_ = wt_count_fds();                                                                             \
		if (now_ != (before))                                                                                  \
			wt_dump_fds();                                                                                 \
		assert_int_equal(now_, (before));                                                                      \
	} while (0)

/* True if some child of this process has ended and not been reaped. */
static inline bool wt_have_zombie(void)
{
	siginfo_t si = {0};
	return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid != 0;
}

/* The process tests' setup and teardown: the teardown fails the test if it
 * left a descriptor open or a child unreaped. */
static int wt_proc_fds_before;

static inline int wt_proc_setup(void **state)
{
	(void)state;
	wt_proc_fds_before = wt_count_fds();
	return 0;
}

static inline int wt_proc_teardown(void **state)
{
	(void)state;
	if (wt_count_fds() != wt_proc_fds_before) {
		wt_dump_fds();
		fprintf(stderr, "leaked descriptors: %d before, %d after\n", wt_proc_fds_before, wt_count_fds());
		return -1;
	}
	if (wt_have_zombie()) {
		fprintf(stderr, "a child was left unreaped\n");
		return -1;
	}
	return 0;
}
#define WT_PROC_TEST(fn) cmocka_unit_test_setup_teardown(fn, wt_proc_setup, wt_proc_teardown)

#endif
