/* poll.c - the netpoller: epoll (edge-triggered) or io_uring, per-descriptor
 * waiter slots, weft_fd_wait and weft_close.
 *
 * Pieces
 * ------
 * One weft_io per runtime, installed as the runtime's poller
 * (weft_poller_ops_t) by the first I/O call made in it. It owns the backend
 * (an epoll set, or an io_uring), an eventfd that wake() writes to (so a
 * blocked poll returns), a waiter count, and a table of io_slot indexed by
 * descriptor number (chunks of 1024 slots, allocated on first use and freed
 * with the runtime). A slot holds the readiness bits the poller has seen and
 * nobody has consumed yet (`ready`), a generation number, and the list of
 * tasks parked on the descriptor, each wanting some bits (POLLIN, POLLOUT;
 * POLLERR and POLLHUP end every wait, POLLRDHUP every read wait).
 *
 * Registration: a descriptor weft does I/O on is registered once
 * (weft__io_own; weft's sockets at creation, other descriptors at their first
 * wait) and must then be closed with weft_close. epoll: EPOLL_CTL_ADD with
 * EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET; io_uring: one multishot poll for the
 * same bits, armed at the first wait. Reports carry (generation << 32 | fd).
 * weft_close bumps the generation (reports of the old registration are
 * ignored from then on), wakes the waiters with -EBADF, drops the
 * registration and closes.
 *
 * Edge-triggered rules: the kernel reports a descriptor when it becomes
 * ready (and again at every new arrival), never "it is still ready". So the
 * poller records every report in slot->ready, and a task consumes it only
 * right before retrying its operation: a task waits only after its
 * operation said EAGAIN, and a wait returns at once when the wanted bit is
 * set. A stale bit (its data already read) costs one EAGAIN and nothing
 * else; a report is never lost because the bit stays until someone retries.
 * A report is recorded even when it wakes a parked waiter: another task may
 * have had EAGAIN on the same descriptor and not have linked itself yet.
 * (weft_read's drained shortcut tells a stale POLLIN bit from a new one by
 * counting POLLIN reports, slot->in_edges; see socket.c.)
 * POLLERR and POLLHUP are consumed like the others, not kept: a real
 * hang-up or error makes the operation fail instead of saying EAGAIN, so
 * nobody waits after it; a stale one (io_uring reports the state at arming
 * time, and an unconnected TCP socket polls as POLLOUT|POLLHUP) must not
 * make every later wait return at once.
 *
 * Why no wake-up is lost: under the slot's lock the poller sets the bits and
 * then unlinks and unparks every waiter whose bits are set; under the same
 * lock a waiter checks the bits (and the generation it started from) before
 * it links itself. Either the waiter sees the bit, or the poller sees the
 * waiter. weft_unpark remembers a wake that comes before the park.
 *
 * Who polls: the scheduler (src/sched/worker.c) calls poll(ctx, 0) between
 * tasks and poll(ctx, timeout) in the one idle worker that sleeps in it; at
 * most one thread is inside poll at a time, so the event buffer and the
 * io_uring completion queue have a single consumer. With epoll, poll(ctx, 0)
 * returns at once without a system call while no task waits on a
 * descriptor (the atomic count nwait); a report that arrives meanwhile stays
 * queued in the kernel until someone waits. io_uring's poll(ctx, 0) only
 * reads the completion ring, so it keeps no count. A blocking poll also sleeps on the eventfd, so
 * wake() (a write to it) ends it; a wake before the poll leaves the eventfd
 * readable, so the next poll returns at once.
 *
 * weft_fd_wait (descriptors of other libraries): these may be closed with a
 * plain close(2) and their number reused, so it does not trust the slot's
 * registration: it clears the slot's bits, asks poll(2) with no timeout
 * (ready now: done), and otherwise (re)arms the descriptor - epoll MOD, or
 * ADD if the set does not hold this file; io_uring a one-shot poll per
 * wanted direction, cancelled when the wait ends - parks until the poller
 * reports it, and asks poll(2) again (so its answer is never stale).
 *
 * io_uring specifics: submissions are queued from any thread under sq_lock
 * and submitted by the poller in its next poll (one system call per batch;
 * a poller blocked in the kernel is woken to submit, see uring_queue);
 * completions are reaped only by the polling thread. A poll can end on its
 * own (the kernel cancels a thread's requests when it exits, the completion
 * queue overflowed): its waiters are woken, retry their operation and arm a
 * new poll, which reports the current readiness, so nothing is lost.
 * io_uring holds a reference to a polled file, so weft_close cancels the
 * slot's polls and waits (at most 100 ms) until the poller has seen them
 * end before it calls close(2): the descriptor really is closed when
 * weft_close returns (the peer sees the FIN, a listener refuses).
 */
#include "io_impl.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef WEFT_HAVE_URING
#include <liburing.h>
#endif

#define IO_CHUNK_BITS 10
#define IO_CHUNK (1u << IO_CHUNK_BITS)
#define IO_NCHUNKS 4096 /* descriptors up to 4M */
#define IO_EVENTS 256

/* Event data: gen << 32 | fd, the generation cut to 24 bits, and tags in
 * the top byte. */
#define TAG_WAKE (1ull << 63)	/* the eventfd */
#define TAG_IGNORE (1ull << 62) /* io_uring removal requests */
#define TAG_IN (1ull << 57)	/* io_uring poll for POLLIN */
#define TAG_OUT (1ull << 58)	/* io_uring poll for POLLOUT */
#define TAG_MULTI (1ull << 59)	/* io_uring multishot poll of a registered descriptor */
#define ARM_MULTI 0x100u	/* slot->armed: the multishot poll is in flight */
#define GEN_MASK 0xffffffu

#define ERRBITS (POLLERR | POLLHUP)

enum { BACKEND_EPOLL, BACKEND_URING };

struct weft_io {
	int backend;
	int epfd; /* epoll backend */
	int efd;  /* wake eventfd */
	alignas(64) _Atomic long nwait;	 /* tasks parked on descriptors */
	alignas(64) _Atomic(io_slot *) chunks[IO_NCHUNKS];
#ifdef WEFT_HAVE_URING
	alignas(64) pthread_mutex_t sq_lock;
	_Atomic bool sq_pending; /* queued submissions the poller has not submitted */
	_Atomic bool in_wait;	 /* the poller is (about to be) blocked in the kernel */
	struct io_uring ring;
#endif
	uint64_t efd_buf; /* the poller's read target for the eventfd */
	struct epoll_event ev[IO_EVENTS];
};

static const weft_poller_ops_t io_ops;

/* The waiter count exists for epoll, whose poll(ctx, 0) is a system call
 * worth skipping when nobody waits; io_uring's looks at the completion ring
 * in memory, so its waits do not pay for two shared atomics. */
static inline void nwait_add(weft_io *io, long d)
{
	if (io->backend == BACKEND_EPOLL)
		atomic_fetch_add_explicit(&io->nwait, d, d > 0 ? memory_order_seq_cst : memory_order_relaxed);
}

/* ------------------------------------------------------------ slots */

static inline void slot_lock(io_slot *s)
{
	for (;;) {
		/* acquire: the section reads what the previous holder wrote. */
		if (!atomic_load_explicit(&s->lock, memory_order_relaxed) &&
		    !atomic_exchange_explicit(&s->lock, 1, memory_order_acquire))
			return;
#if defined(__x86_64__)
		__builtin_ia32_pause();
#elif defined(__aarch64__)
		__asm__ __volatile__("yield" ::: "memory");
#endif
	}
}

static inline void slot_unlock(io_slot *s)
{
	atomic_store_explicit(&s->lock, 0, memory_order_release);
}

/* The slot of fd, creating its chunk if `create`. NULL for fd out of range
 * or (create) no memory. */
static io_slot *slot_of(weft_io *io, int fd, bool create)
{
	if (fd < 0 || (unsigned)fd >= (unsigned)IO_NCHUNKS * IO_CHUNK)
		return NULL;
	unsigned i = (unsigned)fd >> IO_CHUNK_BITS;
	/* acquire: the chunk's zeroed contents are visible before we use it. */
	io_slot *c = atomic_load_explicit(&io->chunks[i], memory_order_acquire);
	if (!c) {
		if (!create)
			return NULL;
		io_slot *n = calloc(IO_CHUNK, sizeof *n);
		if (!n)
			return NULL;
		if (atomic_compare_exchange_strong_explicit(&io->chunks[i], &c, n, memory_order_acq_rel,
							    memory_order_acquire))
			c = n;
		else
			free(n);
	}
	return &c[fd & (IO_CHUNK - 1)];
}

static inline uint64_t slot_data(int fd, uint32_t gen)
{
	return (uint64_t)(gen & GEN_MASK) << 32 | (uint32_t)fd;
}

static void unlink_waiter(io_slot *s, io_waiter *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		s->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	n->linked = false;
}

/* Under the lock: wake every waiter whose bits are in mask (all, for a
 * negative status). *taken (may be NULL) gets the bits handed to waiters
 * that this call woke: they retry their operation now, so those bits need
 * not be recorded in slot->ready. */
static int wake_matching(io_slot *s, uint32_t mask, int status, uint32_t *taken)
{
	int woke = 0;
	uint32_t t = 0;
	for (io_waiter *n = s->head, *next; n; n = next) {
		next = n->next;
		if (status < 0 || (n->match & mask)) {
			unlink_waiter(s, n);
			uint32_t m = n->match;
			n->status = status < 0 ? status : (int)(mask & m);
			/* Once unparked, the waiter returns without the lock and
			 * its frame (n) is gone: nothing of n is read after this. */
			if (weft_unpark(n->waker, 0)) {
				woke++;
				t |= m;
			}
		}
	}
	if (taken)
		*taken = t;
	return woke;
}

/* The poller saw `events` on (fd, gen). */
static int deliver(weft_io *io, int fd, uint32_t gen, uint32_t events)
{
	io_slot *s = slot_of(io, fd, false);
	if (!s)
		return 0;
	slot_lock(s);
	int woke = 0;
	if ((atomic_load_explicit(&s->gen, memory_order_relaxed) & GEN_MASK) == gen) {
		if (events & (POLLRDHUP | ERRBITS))
			atomic_fetch_or_explicit(&s->seen, events & (POLLRDHUP | ERRBITS), memory_order_relaxed);
		/* Recorded even when it wakes someone: another task may have had
		 * EAGAIN and not be linked yet (several tasks on one descriptor);
		 * a stale bit costs one EAGAIN, a missing one a lost wake-up. */
		if (events & POLLIN)
			atomic_store_explicit(&s->in_edges, atomic_load_explicit(&s->in_edges, memory_order_relaxed) + 1,
					      memory_order_release);
		atomic_fetch_or_explicit(&s->ready, events, memory_order_release);
		woke = wake_matching(s, events, 0, NULL);
	}
	slot_unlock(s);
	return woke;
}

/* ------------------------------------------------------------ backends */

#ifdef WEFT_HAVE_URING
/* Under sq_lock. */
static struct io_uring_sqe *sqe_get(weft_io *io)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
	if (!sqe) {
		io_uring_submit(&io->ring);
		sqe = io_uring_get_sqe(&io->ring);
	}
	return sqe;
}

static void io_wake(void *ctx);

/* Queue a poll; the poller submits it with its next poll (a batch per
 * system call). A poller blocked in the kernel is woken to do so: the
 * waiter stores sq_pending before it reads in_wait, the poller stores
 * in_wait before it re-reads sq_pending (all seq_cst). */
/* False if no submission entry could be had (the ring full and the kernel
 * not taking submissions): the caller must not count the poll as armed. */
static bool uring_queue(weft_io *io, int fd, uint32_t events, uint64_t data, bool multi)
{
	pthread_mutex_lock(&io->sq_lock);
	struct io_uring_sqe *sqe = sqe_get(io);
	if (sqe) {
		if (multi)
			io_uring_prep_poll_multishot(sqe, fd, events);
		else
			io_uring_prep_poll_add(sqe, fd, events);
		io_uring_sqe_set_data64(sqe, data);
	}
	pthread_mutex_unlock(&io->sq_lock);
	atomic_store(&io->sq_pending, true);
	if (atomic_load(&io->in_wait))
		io_wake(io);
	return sqe != NULL;
}

static void uring_flush(weft_io *io)
{
	if (!atomic_load(&io->sq_pending))
		return;
	pthread_mutex_lock(&io->sq_lock);
	atomic_store(&io->sq_pending, false);
	int r = io_uring_submit(&io->ring);
	if (r < 0 || io_uring_sq_ready(&io->ring)) /* not all taken (-EBUSY, ...): try again later */
		atomic_store(&io->sq_pending, true);
	pthread_mutex_unlock(&io->sq_lock);
}

/* Under the slot lock, before a wait: a registered descriptor gets one
 * multishot poll for all its events, armed at its first wait and kept until
 * weft_close (each readiness change posts a completion, like an epoll
 * edge); a foreign one a one-shot poll per wanted direction. */
static void uring_arm(weft_io *io, io_slot *s, int fd, uint32_t gen, uint32_t events, bool multi)
{
	uint64_t d = slot_data(fd, gen);
	if (s->armed & ARM_MULTI)
		return;
	if (multi) {
		if (uring_queue(io, fd, POLLIN | POLLOUT | POLLRDHUP, d | TAG_MULTI, true))
			s->armed |= ARM_MULTI;
		return;
	}
	uint32_t dirs = events & (POLLIN | POLLOUT) & ~s->armed;
	if ((dirs & POLLIN) && uring_queue(io, fd, POLLIN | POLLRDHUP, d | TAG_IN, false))
		s->armed |= POLLIN;
	if ((dirs & POLLOUT) && uring_queue(io, fd, POLLOUT, d | TAG_OUT, false))
		s->armed |= POLLOUT;
}

/* Under the slot lock: whether a poll covers `events` (after uring_arm). */
static bool uring_armed(io_slot *s, uint32_t events, bool multi)
{
	return multi ? (s->armed & ARM_MULTI) != 0 : (events & (POLLIN | POLLOUT) & ~s->armed) == 0;
}

/* Under the slot lock: cancel the polls of `dirs`, now. */
static void uring_cancel(weft_io *io, int fd, uint32_t gen, uint32_t dirs)
{
	uint64_t d = slot_data(fd, gen);
	pthread_mutex_lock(&io->sq_lock);
	/* The polls to cancel may still sit in the queue: submit them first,
	 * in their own call, so that the removals below find them armed. */
	if (io_uring_sq_ready(&io->ring))
		io_uring_submit(&io->ring);
	for (int i = 0; i < 3; i++) {
		static const uint64_t tags[3] = {TAG_IN, TAG_OUT, TAG_MULTI};
		static const uint32_t bits[3] = {POLLIN, POLLOUT, ARM_MULTI};
		uint64_t tag = tags[i];
		if (!(dirs & bits[i]))
			continue;
		struct io_uring_sqe *sqe = sqe_get(io);
		if (!sqe)
			break;
		io_uring_prep_poll_remove(sqe, d | tag);
		io_uring_sqe_set_data64(sqe, TAG_IGNORE);
	}
	atomic_store(&io->sq_pending, false);
	int r = io_uring_submit(&io->ring);
	if (r < 0 || io_uring_sq_ready(&io->ring))
		atomic_store(&io->sq_pending, true);
	pthread_mutex_unlock(&io->sq_lock);
}
#endif

/* epoll: register fd for good (edge-triggered). io_uring arms its polls at
 * the first wait (uring_arm), so there is nothing to do. */
static int backend_register(weft_io *io, int fd, uint32_t gen)
{
	if (io->backend == BACKEND_URING)
		return 0;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = slot_data(fd, gen)};
	if (epoll_ctl(io->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
		return 0;
	if (errno == EEXIST && epoll_ctl(io->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
		return 0;
	return -errno;
}

/* weft_fd_wait (epoll): arm a descriptor that may not be (or no longer be)
 * the file the slot registered. */
static int epoll_arm_foreign(weft_io *io, int fd, uint32_t gen)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = slot_data(fd, gen)};
	/* MOD re-arms: the next epoll_wait reports fd if it is ready now. */
	if (epoll_ctl(io->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
		return 0;
	if (errno == ENOENT && epoll_ctl(io->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
		return 0;
	return -errno;
}

/* ------------------------------------------------------------ the poller */

static void drain_wake(weft_io *io)
{
	/* Only the polling thread reads; a wake after this read makes the
	 * eventfd readable again and is reported by the next poll. */
	ssize_t r = read(io->efd, &io->efd_buf, sizeof io->efd_buf);
	(void)r;
}

static int epoll_poll(weft_io *io, weft_time_t timeout)
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
			drain_wake(io);
			continue;
		}
		woke += deliver(io, (int)(uint32_t)d, (uint32_t)(d >> 32), io->ev[i].events);
	}
	return woke;
}

#ifdef WEFT_HAVE_URING
static int uring_handle(weft_io *io, struct io_uring_cqe *cqe)
{
	uint64_t d = io_uring_cqe_get_data64(cqe);
	if (d & TAG_IGNORE)
		return 0;
	if (d & TAG_WAKE) {
		drain_wake(io);
		if (!(cqe->flags & IORING_CQE_F_MORE)) /* the multishot poll ended: re-arm */
			uring_queue(io, io->efd, POLLIN, TAG_WAKE, true);
		return 0;
	}
	int fd = (int)(uint32_t)d;
	uint32_t gen = (uint32_t)(d >> 32) & GEN_MASK;
	uint32_t dirs = (d & TAG_IN ? POLLIN : 0) | (d & TAG_OUT ? POLLOUT : 0);
	bool multi = d & TAG_MULTI;
	/* The armed bits this completion retires: a multishot poll stays armed
	 * while the kernel says more will come. */
	uint32_t done = multi ? ((cqe->flags & IORING_CQE_F_MORE) ? 0 : ARM_MULTI) : dirs;
	io_slot *s = slot_of(io, fd, false);
	if (!s)
		return 0;
	int woke = 0;
	slot_lock(s);
	if ((atomic_load_explicit(&s->gen, memory_order_relaxed) & GEN_MASK) == gen) {
		if (cqe->res == -ECANCELED && !multi && !(s->armed & dirs)) {
			slot_unlock(s); /* cancelled by weft_fd_wait itself */
			return 0;
		}
		s->armed &= ~done;
		/* An error (the poll was cancelled because the thread that
		 * submitted it exited, ...) wakes the waiters too: they retry
		 * their operation and arm a new poll. */
		uint32_t ev = cqe->res > 0 ? (uint32_t)cqe->res : (multi ? POLLIN | POLLOUT : dirs) | POLLERR;
		if (cqe->res > 0 && (ev & (POLLRDHUP | ERRBITS)))
			atomic_fetch_or_explicit(&s->seen, ev & (POLLRDHUP | ERRBITS), memory_order_relaxed);
		if (ev & POLLIN) /* as in deliver */
			atomic_store_explicit(&s->in_edges, atomic_load_explicit(&s->in_edges, memory_order_relaxed) + 1,
					      memory_order_release);
		atomic_fetch_or_explicit(&s->ready, ev, memory_order_release);
		woke = wake_matching(s, ev, 0, NULL);
		/* A multishot poll can end with a readiness report (the kernel
		 * could not post more): waiters for other bits need a new one. */
		if ((done & ARM_MULTI) && s->head)
			uring_arm(io, s, fd, gen, 0, true);
	} else if (s->closer && s->close_gen == gen) {
		s->close_pending &= ~done;
		if (!s->close_pending) {
			weft_unpark(s->closer->waker, 0);
			s->closer = NULL;
		}
	}
	slot_unlock(s);
	return woke;
}

static int uring_poll(weft_io *io, weft_time_t timeout)
{
	struct io_uring_cqe *cqe;
	int woke = 0;
	uring_flush(io);
	if (io_uring_cq_ready(&io->ring) == 0) {
		if (timeout == 0) {
			if (io_uring_cq_has_overflow(&io->ring) ||
			    (IO_URING_READ_ONCE(*io->ring.sq.kflags) & IORING_SQ_TASKRUN))
				io_uring_get_events(&io->ring);
		} else {
			atomic_store(&io->in_wait, true);
			if (atomic_load(&io->sq_pending)) {
				uring_flush(io);
			} else {
				int r;
				if (timeout == WEFT_NEVER) {
					r = io_uring_wait_cqe(&io->ring, &cqe);
				} else {
					struct __kernel_timespec ts = {.tv_sec = timeout / WEFT_SEC,
								       .tv_nsec = timeout % WEFT_SEC};
					r = io_uring_wait_cqe_timeout(&io->ring, &cqe, &ts);
				}
				if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN) {
					atomic_store(&io->in_wait, false);
					return r;
				}
			}
			atomic_store(&io->in_wait, false);
		}
	}
	for (;;) {
		unsigned head, n = 0;
		io_uring_for_each_cqe(&io->ring, head, cqe)
		{
			woke += uring_handle(io, cqe);
			n++;
		}
		if (n == 0)
			break;
		io_uring_cq_advance(&io->ring, n);
	}
	uring_flush(io); /* re-arms queued while handling */
	return woke;
}
#endif

static int io_poll(void *ctx, weft_time_t timeout)
{
	weft_io *io = ctx;
	if (timeout == 0 && io->backend == BACKEND_EPOLL && atomic_load_explicit(&io->nwait, memory_order_relaxed) == 0)
		return 0;
#ifdef WEFT_HAVE_URING
	if (io->backend == BACKEND_URING)
		return uring_poll(io, timeout);
#endif
	return epoll_poll(io, timeout);
}

static void io_wake(void *ctx)
{
	weft_io *io = ctx;
	uint64_t one = 1;
	ssize_t r = write(io->efd, &one, sizeof one);
	(void)r; /* EAGAIN: the counter is full, so the eventfd is readable anyway */
}

static void io_destroy(void *ctx)
{
	weft_io *io = ctx;
#ifdef WEFT_HAVE_URING
	if (io->backend == BACKEND_URING) {
		io_uring_queue_exit(&io->ring);
		pthread_mutex_destroy(&io->sq_lock);
	}
#endif
	if (io->epfd >= 0)
		close(io->epfd);
	close(io->efd);
	for (int i = 0; i < IO_NCHUNKS; i++)
		free(atomic_load_explicit(&io->chunks[i], memory_order_relaxed));
	free(io);
}

static const weft_poller_ops_t io_ops = {io_poll, io_wake, io_destroy};

/* ------------------------------------------------------------ installing */

static _Atomic int fallback_logged; /* one log line per process, not per runtime */

static void log_fallback(const char *why, int err)
{
	if (!atomic_exchange(&fallback_logged, 1))
		fprintf(stderr, "weft: io_uring unavailable (%s: %s), using epoll\n", why, weft_strerror(err));
}

#ifdef WEFT_HAVE_URING
static int uring_init(weft_io *io)
{
	/* COOP_TASKRUN: a completion runs as task work at the submitting
	 * thread's next kernel entry instead of interrupting it with an IPI (a
	 * sleeping thread is still woken); kernels before 5.19 refuse it. */
	struct io_uring_params p = {.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG};
	int r = io_uring_queue_init_params(1024, &io->ring, &p);
	if (r == -EINVAL) {
		memset(&p, 0, sizeof p);
		r = io_uring_queue_init_params(1024, &io->ring, &p);
	}
	if (r < 0) {
		log_fallback("io_uring_queue_init", r);
		return r;
	}
	if (!(p.features & IORING_FEAT_EXT_ARG) || !(p.features & IORING_FEAT_NODROP)) {
		io_uring_queue_exit(&io->ring);
		log_fallback("kernel lacks IORING_FEAT_EXT_ARG/NODROP", -ENOSYS);
		return -ENOSYS;
	}
	pthread_mutex_init(&io->sq_lock, NULL);
	io->backend = BACKEND_URING;
	/* Probe multishot poll on the wake eventfd (kernel 5.13+). */
	uring_queue(io, io->efd, POLLIN, TAG_WAKE, true);
	pthread_mutex_lock(&io->sq_lock);
	r = io_uring_submit(&io->ring);
	atomic_store(&io->sq_pending, false);
	pthread_mutex_unlock(&io->sq_lock);
	if (r >= 0) {
		io_wake(io);
		struct io_uring_cqe *cqe;
		r = io_uring_wait_cqe(&io->ring, &cqe);
		if (r == 0) {
			r = cqe->res < 0 ? cqe->res : (cqe->flags & IORING_CQE_F_MORE) ? 0 : -ENOSYS;
			io_uring_cqe_seen(&io->ring, cqe);
		}
		drain_wake(io);
	}
	if (r < 0) {
		io_uring_queue_exit(&io->ring);
		pthread_mutex_destroy(&io->sq_lock);
		io->backend = BACKEND_EPOLL;
		log_fallback("multishot poll", r);
	}
	return r;
}
#endif

static weft_io *io_create(void)
{
	weft_io *io = aligned_alloc(64, (sizeof(weft_io) + 63) & ~(size_t)63);
	if (!io)
		return NULL;
	memset(io, 0, sizeof *io);
	io->epfd = -1;
	io->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (io->efd < 0) {
		free(io);
		return NULL;
	}
	const char *want = getenv("WEFT_IO");
	bool uring = !want || !*want || strcmp(want, "auto") == 0 || strcmp(want, "uring") == 0;
#ifdef WEFT_HAVE_URING
	if (uring && uring_init(io) == 0)
		return io;
#else
	if (uring && want && strcmp(want, "uring") == 0)
		log_fallback("weft was built without liburing", -ENOSYS);
#endif
	io->backend = BACKEND_EPOLL;
	io->epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = TAG_WAKE};
	if (io->epfd < 0 || epoll_ctl(io->epfd, EPOLL_CTL_ADD, io->efd, &ev) < 0) {
		io_destroy(io);
		return NULL;
	}
	return io;
}

/* The poller of the caller's runtime, installing it on first use. */
static weft_io *io_get(void)
{
	weft_runtime_t *rt = weft_runtime_current();
	if (!rt)
		return NULL;
	weft_io *io = weft_runtime_poller(rt, &io_ops);
	if (io)
		return io;
	/* A write to a socket whose peer is gone must give EPIPE, not kill the
	 * process (sockets also use MSG_NOSIGNAL; this covers pipes). */
	struct sigaction sa;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL && !(sa.sa_flags & SA_SIGINFO)) {
		sa.sa_handler = SIG_IGN;
		sigaction(SIGPIPE, &sa, NULL);
	}
	io = io_create();
	if (!io)
		return NULL;
	if (weft_runtime_set_poller(rt, &io_ops, io) < 0) {
		io_destroy(io); /* someone else installed one first: use theirs */
		return weft_runtime_poller(rt, &io_ops);
	}
	return io;
}

/* The poller if installed, without installing it. */
static weft_io *io_peek(void)
{
	weft_runtime_t *rt = weft_runtime_current();
	return rt ? weft_runtime_poller(rt, &io_ops) : NULL;
}

const char *weft_io_backend(weft_runtime_t *rt)
{
	if (!rt)
		rt = weft_runtime_current();
	if (!rt)
		return NULL;
	weft_io *io = weft_runtime_poller(rt, &io_ops);
	if (!io && rt == weft_runtime_current())
		io = io_get();
	if (!io)
		return NULL;
	return io->backend == BACKEND_URING ? "uring" : "epoll";
}

/* ------------------------------------------------------------ waiting */

/* A plain thread (or a runtime with another poller): poll(2). */
static int thread_wait(int fd, uint32_t events, weft_time_t deadline)
{
	struct pollfd p = {.fd = fd, .events = (short)events};
	for (;;) {
		int ms = -1;
		if (deadline != WEFT_NEVER) {
			weft_time_t left = deadline - weft_now();
			if (left <= 0)
				ms = 0;
			else
				ms = left / WEFT_MSEC + 1 > INT_MAX ? INT_MAX : (int)(left / WEFT_MSEC + 1);
		}
		int r = poll(&p, 1, ms);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r > 0)
			return p.revents & POLLNVAL ? -EBADF : p.revents;
		if (deadline != WEFT_NEVER && weft_now() >= deadline)
			return -ETIMEDOUT;
	}
}

#ifdef WEFT_HAVE_URING
/* Whether a waiter other than `self` waits for one of dirs. Under the lock. */
static bool others_want(io_slot *s, io_waiter *self, uint32_t dirs)
{
	for (io_waiter *n = s->head; n; n = n->next)
		if (n != self && (n->match & dirs))
			return true;
	return false;
}
#endif

/* Park on slot s until one of events (or an error bit) is reported, the
 * generation moves on from gen (closed: -EBADF), or the deadline. With
 * io_uring, a poll is armed for each wanted direction that has none in
 * flight; `foreign` (weft_fd_wait) cancels them again when the wait ends,
 * since io_uring keeps a polled file open and the owner of a foreign
 * descriptor may close(2) it at any time. */
static int slot_wait(weft_io *io, io_slot *s, int fd, uint32_t gen, uint32_t events, weft_time_t deadline,
		     bool foreign, bool drained)
{
	uint32_t match = events | ERRBITS | ((events & POLLIN) ? POLLRDHUP : 0);
	io_waiter n = {.match = match};
	n.waker = weft_park_prepare();
	nwait_add(io, 1);
	slot_lock(s);
	if (atomic_load_explicit(&s->gen, memory_order_relaxed) != gen) {
		slot_unlock(s);
		nwait_add(io, -1);
		return -EBADF;
	}
	if (drained && atomic_load_explicit(&s->in_edges, memory_order_relaxed) ==
			       atomic_load_explicit(&s->drained_at, memory_order_relaxed))
		atomic_fetch_and_explicit(&s->ready, ~(uint32_t)POLLIN, memory_order_relaxed); /* stale */
	uint32_t r = atomic_load_explicit(&s->ready, memory_order_relaxed) & match;
	if (r) {
		atomic_fetch_and_explicit(&s->ready, ~match, memory_order_relaxed);
		slot_unlock(s);
		nwait_add(io, -1);
		return (int)r;
	}
	n.next = s->head;
	n.prev = NULL;
	if (s->head)
		s->head->prev = &n;
	s->head = &n;
	n.linked = true;
#ifdef WEFT_HAVE_URING
	if (io->backend == BACKEND_URING) {
		uring_arm(io, s, fd, gen, events, !foreign);
		if (!uring_armed(s, events, !foreign)) {
			/* No submission entry (the ring is full): do not park without
			 * a poll. Let the poller drain it, then the caller retries its
			 * operation and waits again. */
			unlink_waiter(s, &n);
			slot_unlock(s);
			nwait_add(io, -1);
			weft_yield();
			return (int)events;
		}
	}
#endif
	slot_unlock(s);
	int e = weft_park(n.waker, deadline);
	nwait_add(io, -1);
	/* Woken (e == 0): whoever woke us unlinked us first and handed us the
	 * bits (wake_matching), so there is nothing to undo. */
	if (e == 0 && !(foreign && io->backend == BACKEND_URING))
		return n.status;
	slot_lock(s);
	if (n.linked)
		unlink_waiter(s, &n);
#ifdef WEFT_HAVE_URING
	if (foreign && io->backend == BACKEND_URING && atomic_load_explicit(&s->gen, memory_order_relaxed) == gen) {
		uint32_t dirs = 0;
		for (uint32_t d = POLLIN; d; d = d == POLLIN ? POLLOUT : 0)
			if ((s->armed & events & d) && !others_want(s, &n, d))
				dirs |= d;
		if (dirs) {
			uring_cancel(io, fd, gen, dirs);
			s->armed &= ~dirs;
		}
	}
#else
	(void)foreign, (void)fd;
#endif
	slot_unlock(s);
	return e < 0 ? e : n.status;
}

static int own_slot(weft_io *io, io_slot *s, int fd, bool notsock)
{
	int type = 0;
	socklen_t tlen = sizeof type;
	bool stream = !notsock && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 && type == SOCK_STREAM;
	slot_lock(s);
	if (atomic_load_explicit(&s->flags, memory_order_relaxed) & IO_REG) {
		slot_unlock(s); /* registered meanwhile by another task's first wait */
		return 0;
	}
	uint32_t gen = atomic_load_explicit(&s->gen, memory_order_relaxed) + 1;
	atomic_store_explicit(&s->gen, gen, memory_order_relaxed);
	atomic_store_explicit(&s->ready, 0, memory_order_relaxed);
	atomic_store_explicit(&s->seen, 0, memory_order_relaxed);
	atomic_store_explicit(&s->flags, IO_REG | (notsock ? IO_NOTSOCK : 0) | (stream ? IO_STREAM : 0),
			      memory_order_release);
	s->armed = 0; /* polls of an earlier file are ignored (their generation is old) */
	wake_matching(s, 0, -EBADF, NULL); /* waiters of a file that had this number */
	slot_unlock(s);
	int r = backend_register(io, fd, gen);
	if (r < 0) {
		slot_lock(s);
		if (atomic_load_explicit(&s->gen, memory_order_relaxed) == gen)
			atomic_store_explicit(&s->flags, 0, memory_order_relaxed);
		slot_unlock(s);
	}
	return r;
}

int weft__io_own(int fd, bool notsock)
{
	if (fd < 0)
		return -EBADF;
	weft_io *io = io_get();
	if (!io)
		return 0; /* no runtime here: plain threads use poll(2) */
	io_slot *s = slot_of(io, fd, true);
	if (!s)
		return fd >= 0 ? -ENOMEM : -EBADF;
	if (atomic_load_explicit(&s->flags, memory_order_acquire) & IO_REG)
		return 0;
	return own_slot(io, s, fd, notsock);
}

int weft__io_wait(int fd, uint32_t events, weft_time_t deadline)
{
	if (fd < 0)
		return -EBADF;
	if (!weft_self())
		return thread_wait(fd, events, deadline);
	if (!weft_can_park())
		return -EWOULDBLOCK;
	weft_io *io = io_get();
	if (!io)
		return thread_wait(fd, events, deadline);
	io_slot *s = slot_of(io, fd, true);
	if (!s)
		return -EBADF;
	uint32_t gen = atomic_load_explicit(&s->gen, memory_order_acquire);
	if (!(atomic_load_explicit(&s->flags, memory_order_acquire) & IO_REG)) {
		int r = own_slot(io, s, fd, false);
		if (r == -EPERM) /* a regular file: always ready */
			return (int)events;
		if (r < 0)
			return r;
		gen = atomic_load_explicit(&s->gen, memory_order_acquire);
	}
	if (events & POLLIN) /* a POLLIN report consumed outside weft_read (see socket.c) */
		atomic_fetch_and_explicit(&s->flags, ~IO_DRAINED, memory_order_relaxed);
	return slot_wait(io, s, fd, gen, events, deadline, false, false);
}

int weft_fd_wait(int fd, uint32_t events, weft_time_t deadline)
{
	if (fd < 0)
		return -EBADF;
	if ((events & (POLLIN | POLLOUT)) == 0 || (events & ~(uint32_t)(POLLIN | POLLOUT | POLLPRI | POLLRDHUP)))
		return -EINVAL;
	if (!weft_self())
		return thread_wait(fd, events, deadline);
	if (!weft_can_park())
		return -EWOULDBLOCK;
	weft_io *io = io_get();
	if (!io)
		return thread_wait(fd, events, deadline);
	io_slot *s = slot_of(io, fd, true);
	if (!s)
		return -EBADF;
	if (atomic_load_explicit(&s->flags, memory_order_relaxed) & IO_DRAINED)
		atomic_fetch_and_explicit(&s->flags, ~IO_DRAINED, memory_order_relaxed); /* see socket.c */
	for (;;) {
		/* Forget old reports, then ask the kernel what holds now:
		 * anything that becomes ready after this point is reported
		 * again. Checking again after every wake-up keeps the answer
		 * exact (a report may be stale, or a cancelled poll's). */
		atomic_fetch_and_explicit(&s->ready, ~(events | ERRBITS | POLLRDHUP), memory_order_relaxed);
		uint32_t gen = atomic_load_explicit(&s->gen, memory_order_acquire);
		struct pollfd p = {.fd = fd, .events = (short)events};
		int r = poll(&p, 1, 0);
		if (r < 0)
			return -errno;
		if (r > 0)
			return p.revents & POLLNVAL ? -EBADF : p.revents;
		if (io->backend == BACKEND_EPOLL) {
			r = epoll_arm_foreign(io, fd, gen);
			if (r < 0)
				return r == -EPERM ? (int)events : r; /* a regular file: always ready */
		}
		r = slot_wait(io, s, fd, gen, events, deadline, true, false);
		if (r < 0)
			return r;
	}
}

io_slot *weft__io_lookup(int fd, weft_io **out)
{
	weft_io *io = io_peek();
	io_slot *s = io ? slot_of(io, fd, false) : NULL;
	if (!s || !(atomic_load_explicit(&s->flags, memory_order_acquire) & IO_REG) || !weft_self() ||
	    !weft_can_park())
		return NULL;
	*out = io;
	return s;
}

int weft__io_slot_wait(weft_io *io, io_slot *s, int fd, uint32_t gen, uint32_t events, weft_time_t deadline,
		       bool drained)
{
	return slot_wait(io, s, fd, gen, events, deadline, false, drained);
}

void weft__io_connected(int fd)
{
	weft_io *io = io_peek();
	io_slot *s = io ? slot_of(io, fd, false) : NULL;
	if (s)
		atomic_store_explicit(&s->seen, 0, memory_order_relaxed);
}

void weft__io_kick(weft_runtime_t *rt, int fd, uint32_t events)
{
	weft_io *io = rt ? weft_runtime_poller(rt, &io_ops) : io_peek();
	io_slot *s = io ? slot_of(io, fd, false) : NULL;
	if (!s)
		return;
	slot_lock(s);
	atomic_fetch_or_explicit(&s->ready, events, memory_order_release);
	wake_matching(s, events, 0, NULL);
	slot_unlock(s);
}

bool weft__io_notsock(int fd)
{
	weft_io *io = io_peek();
	io_slot *s = io ? slot_of(io, fd, false) : NULL;
	return s && (atomic_load_explicit(&s->flags, memory_order_relaxed) & IO_NOTSOCK);
}

void weft__io_set_notsock(int fd)
{
	weft_io *io = io_peek();
	io_slot *s = io ? slot_of(io, fd, false) : NULL;
	if (s)
		atomic_fetch_or_explicit(&s->flags, IO_NOTSOCK, memory_order_relaxed);
}

int weft_close(int fd)
{
	if (fd < 0)
		return -EBADF;
	weft_io *io = io_peek();
	io_slot *s = io ? slot_of(io, fd, false) : NULL;
	if (s) {
		io_waiter closer = {0};
		bool wait = false;
		slot_lock(s);
		uint32_t gen = atomic_load_explicit(&s->gen, memory_order_relaxed);
		atomic_store_explicit(&s->gen, gen + 1, memory_order_relaxed);
		atomic_store_explicit(&s->flags, 0, memory_order_relaxed);
		atomic_store_explicit(&s->ready, 0, memory_order_relaxed);
		wake_matching(s, 0, -EBADF, NULL);
#ifdef WEFT_HAVE_URING
		if (io->backend == BACKEND_URING && s->armed) {
			/* io_uring holds the file open while a poll is in flight:
			 * cancel the polls and wait (briefly) until the poller has
			 * seen them end, so that close(2) below really closes. */
			uring_cancel(io, fd, gen, s->armed);
			s->close_pending = s->armed;
			s->close_gen = gen & GEN_MASK;
			s->armed = 0;
			if (weft_can_park()) {
				closer.waker = weft_park_prepare();
				s->closer = &closer;
				wait = true;
			}
		}
#endif
		slot_unlock(s);
		if (wait) {
			/* Counted as a waiter: poll(ctx, 0) must reap for us. */
			nwait_add(io, 1);
			weft_time_t until = weft_deadline_in(100 * WEFT_MSEC);
			if (weft_park(closer.waker, until) == -ECANCELED) {
				/* A cancelled task cannot park: let the others (and the
				 * poller) run until the polls are gone. */
				for (bool done = false; !done && weft_now() < until;) {
					weft_yield();
					slot_lock(s);
					done = s->closer != &closer;
					slot_unlock(s);
				}
			}
			nwait_add(io, -1);
			slot_lock(s);
			bool late = s->closer == &closer;
			if (late)
				s->closer = NULL;
			slot_unlock(s);
			/* A poll that has not ended keeps the file open after
			 * close(2): shut a socket down so its peer sees the end
			 * (ENOTSOCK for other descriptors is harmless). */
			if (late)
				shutdown(fd, SHUT_RDWR);
		}
	}
	if (close(fd) < 0 && errno != EINTR) /* Linux frees fd even on EINTR */
		return -errno;
	return 0;
}
