/* sim.c - the io module's policy under the simulation mode (weft/sched.h,
 * "simulation"; docs/io.md, "Under the simulation"): which descriptors a
 * sim runtime may wait on, and the test every refusal uses.
 *
 * A sim repeats its schedule from its seed only if everything that makes a
 * task ready is a function of the schedule. Descriptor readiness is, for
 * the descriptors whose state changes only inside the system calls of the
 * one thread that runs the sim: a pipe write, an AF_UNIX send or connect,
 * an eventfd write mark the other end ready (and put it on epoll's ready
 * list) before the call returns. The netpoller is polled by the sim's loop
 * alone, with timeout 0, at points the schedule decides (sim.c in the
 * core), and epoll returns its ready list in the order the descriptors
 * became ready. So what a poll reports depends on the seed and the
 * program, nothing else. Regular files are always ready, never waited on.
 *
 * Everything else changes state on the kernel's or another process's time:
 * TCP delivery and handshakes run partly in softirq context after the call
 * returns, timers and signals on their own clocks, a child process on the
 * scheduler's, a name lookup on the network's. Those calls are refused
 * with -ENOTSUP under sim (socket.c, process.c, signal.c), and so is any
 * other descriptor a sim task would wait on: the check below runs when a
 * descriptor is registered with a sim's poller (poll.c, own_slot) and at
 * each weft_fd_wait on one (which does not trust registrations). The
 * owner thread's own descriptor waits are refused as well (poll.c,
 * thread_wait): a plain thread blocks in poll(2), and while it does
 * nothing else in the sim can run to make the descriptor ready.
 *
 * io_uring is never used under sim (poll.c, io_create): its completions
 * come from kernel worker threads, at times no seed controls.
 */
#include "io_impl.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

bool weft__io_sim(void)
{
	return weft_runtime_is_sim(weft_runtime_current());
}

/* Whether fd is an eventfd: an anonymous inode, named so in /proc. */
static bool is_eventfd(int fd)
{
	char path[40], link[32];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof link - 1);
	if (n <= 0)
		return false;
	link[n] = 0;
	return strcmp(link, "anon_inode:[eventfd]") == 0;
}

int weft__io_sim_local(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISFIFO(st.st_mode) || S_ISREG(st.st_mode))
		return 0;
	if (S_ISSOCK(st.st_mode)) {
		int domain = 0;
		socklen_t len = sizeof domain;
		return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX ? 0 : -ENOTSUP;
	}
	return is_eventfd(fd) ? 0 : -ENOTSUP;
}
