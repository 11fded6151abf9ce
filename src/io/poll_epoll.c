/* poll_epoll.c - the netpoller's epoll backend (see poll.c for the design).
 *
 * One epoll set per runtime. A registered descriptor is added once, for
 * EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLPRI edge-triggered, with (generation << 32 | fd)
 * as its data, and stays until weft_close (closing the file removes it from
 * the set). The wake eventfd is in the set with TAG_WAKE. Every report goes
 * to weft__io_deliver, which ignores reports of an old generation.
 */
#include "poll_impl.h"

#include <errno.h>
#include <unistd.h>

int weft__epoll_init(weft_io *io)
{
	io->backend = BACKEND_EPOLL;
	io->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (io->epfd < 0)
		return -errno;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = TAG_WAKE};
	if (epoll_ctl(io->epfd, EPOLL_CTL_ADD, io->efd, &ev) < 0)
		return -errno;
	return 0;
}

int weft__epoll_register(weft_io *io, int fd, uint32_t gen)
{
	struct epoll_event ev = {.events = POLL_ALL | EPOLLET, .data.u64 = slot_data(fd, gen)};
	if (epoll_ctl(io->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
		return 0;
	if (errno == EEXIST && epoll_ctl(io->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
		return 0;
	return -errno;
}

int weft__epoll_arm_foreign(weft_io *io, int fd, uint32_t gen)
{
	struct epoll_event ev = {.events = POLL_ALL | EPOLLET, .data.u64 = slot_data(fd, gen)};
	/* MOD re-arms: the next epoll_wait reports fd if it is ready now. */
	if (epoll_ctl(io->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
		return 0;
	if (errno == ENOENT && epoll_ctl(io->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
		return 0;
	return -errno;
}

int weft__epoll_poll(weft_io *io, weft_time_t timeout)
{
	int n;
	if (timeout == 0) {
		n = epoll_wait(io->epfd, io->ev, IO_EVENTS, 0);
	} else if (timeout == WEFT_NEVER) {
		n = epoll_wait(io->epfd, io->ev, IO_EVENTS, -1);
	} else {
		struct timespec ts = {.tv_sec = timeout / WEFT_SEC, .tv_nsec = timeout % WEFT_SEC};
		n = epoll_pwait2(io->epfd, io->ev, IO_EVENTS, &ts, NULL);
	}
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	int woke = 0;
	for (int i = 0; i < n; i++) {
		uint64_t d = io->ev[i].data.u64;
		if (d & TAG_WAKE) {
			weft__io_drain_wake(io);
			continue;
		}
		woke += weft__io_deliver(io, (int)(uint32_t)d, (uint32_t)(d >> 32), io->ev[i].events);
	}
	return woke;
}
