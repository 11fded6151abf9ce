/* blocking_check.h - leak checks shared by the blocking-pool, file,
 * process and signal tests: open descriptors and unreaped children. */
#ifndef BLOCKING_CHECK_H
#define BLOCKING_CHECK_H

#include <dirent.h>
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

/* True if some child of this process has ended and not been reaped. */
static inline bool wt_have_zombie(void)
{
	siginfo_t si = {0};
	return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid != 0;
}

#endif
