/* poll_uring.c - the netpoller's io_uring backend (see poll.c for the
 * design shared with epoll).
 *
 * Readiness comes from poll requests: a registered descriptor gets one
 * multishot poll for POLLIN|POLLOUT|POLLRDHUP, armed at its first wait and
 * kept until weft_close (each readiness change posts a completion, like an
 * epoll edge); a foreign one (weft_fd_wait) a one-shot poll per wanted
 * direction, cancelled when the wait ends. slot->armed (under the slot's
 * lock) says which are in flight. The wake eventfd has a multishot poll
 * tagged TAG_WAKE.
 *
 * A completion's mask is the wake-up's, not a fresh poll of the file: a
 * socket's "data arrived" wake-up says POLLIN|POLLPRI, urgent data or not.
 * So POLLPRI is not polled for here and not remembered in slot->seen.
 *
 * Submissions are queued from any thread under sq_lock and submitted by the
 * poller in its next poll (one system call per batch); a poller blocked in
 * the kernel is woken to submit (see uring_queue). Completions are reaped
 * only by the polling thread. The ring is set up with COOP_TASKRUN: a
 * completion runs as task work at the submitting thread's next kernel entry
 * instead of interrupting it (a sleeping thread is still woken).
 *
 * Who submits. A request's task work runs on the thread that submitted it,
 * for as long as the request lives - for a multishot poll, until
 * weft_close. A thread that mostly sleeps would be woken for every
 * readiness change of the polls it submitted, only to post a completion
 * that then wakes the poller: two wake-ups per event, and the first one
 * preempts a worker. So queued polls are submitted by workers only, which
 * run (and enter the kernel) anyway: the monitor's polls (timeout 0, when
 * no worker has polled for 10 ms) reap completions but leave the queue to
 * the next worker that polls. The wake eventfd's poll is queued at start
 * for the first worker to submit; the thread that sets the ring up only
 * submits a probe, which it removes again. Two rare paths still submit
 * from the calling thread: a cancel (weft_close, the end of a foreign
 * wait) first submits what is queued, so that it finds those polls armed,
 * and a full submission queue is submitted by whoever needs an entry.
 *
 * A poll can end on its own (the kernel cancels a thread's requests when it
 * exits, the completion queue overflowed): its waiters are woken, retry
 * their operation and arm a new poll, which reports the current readiness,
 * so nothing is lost; a multishot poll that ends with a report is re-armed
 * at once when others still wait.
 *
 * io_uring holds a reference to a polled file, so weft_close cancels the
 * slot's polls and waits (at most 100 ms) until the poller has seen them
 * end before it calls close(2): the descriptor really is closed when
 * weft_close returns (the peer sees the FIN, a listener refuses).
 */
#include "poll_impl.h"

#ifdef WEFT_HAVE_URING

#include <errno.h>
#include <string.h>

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

/* Queue a poll; the poller submits it with its next poll (a batch per
 * system call). A poller blocked in the kernel is woken to do so: the
 * waiter stores sq_pending before it reads in_wait, the poller stores
 * in_wait before it re-reads sq_pending (all seq_cst).
 * False if no submission entry could be had (the ring full and the kernel
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
		weft__io_wake(io);
	return sqe != NULL;
}

/* Submit the queued requests - from a worker only (see the top). */
static void uring_flush(weft_io *io)
{
	if (!atomic_load(&io->sq_pending) || weft_worker_index() < 0)
		return;
	pthread_mutex_lock(&io->sq_lock);
	atomic_store(&io->sq_pending, false);
	int r = io_uring_submit(&io->ring);
	if (r < 0 || io_uring_sq_ready(&io->ring)) /* not all taken (-EBUSY, ...): try again later */
		atomic_store(&io->sq_pending, true);
	pthread_mutex_unlock(&io->sq_lock);
}

bool weft__uring_arm(weft_io *io, io_slot *s, int fd, uint32_t gen, uint32_t events, bool multi)
{
	uint64_t d = slot_data(fd, gen);
	if (s->armed & ARM_MULTI)
		return true;
	if (multi) {
		if (uring_queue(io, fd, POLLIN | POLLOUT | POLLRDHUP, d | TAG_MULTI, true))
			s->armed |= ARM_MULTI;
		return (s->armed & ARM_MULTI) != 0;
	}
	uint32_t dirs = events & (POLLIN | POLLOUT) & ~s->armed;
	if ((dirs & POLLIN) && uring_queue(io, fd, POLLIN | POLLRDHUP, d | TAG_IN, false))
		s->armed |= POLLIN;
	if ((dirs & POLLOUT) && uring_queue(io, fd, POLLOUT, d | TAG_OUT, false))
		s->armed |= POLLOUT;
	return (events & (POLLIN | POLLOUT) & ~s->armed) == 0;
}

/* Under the slot lock: cancel the polls of `dirs` (POLLIN, POLLOUT,
 * ARM_MULTI), now. */
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
		if (!(dirs & bits[i]))
			continue;
		struct io_uring_sqe *sqe = sqe_get(io);
		if (!sqe)
			break;
		/* An async cancel, not a poll removal: a removal fails with
		 * -EALREADY while the poll's task work is pending (a readiness
		 * report under way) and leaves the poll armed; a cancel marks
		 * it, and the task work ends it with -ECANCELED. */
		io_uring_prep_cancel64(sqe, d | tags[i], 0);
		io_uring_sqe_set_data64(sqe, TAG_IGNORE);
	}
	atomic_store(&io->sq_pending, false);
	int r = io_uring_submit(&io->ring);
	if (r < 0 || io_uring_sq_ready(&io->ring))
		atomic_store(&io->sq_pending, true);
	pthread_mutex_unlock(&io->sq_lock);
}

void weft__uring_disarm(weft_io *io, io_slot *s, int fd, uint32_t gen, uint32_t events)
{
	/* (gen may be cut to 24 bits: a stackless op's, poll.c) */
	if (((atomic_load_explicit(&s->gen, memory_order_relaxed) ^ gen) & GEN_MASK) != 0)
		return; /* closed: weft_close cancelled everything */
	uint32_t dirs = s->armed & events & (POLLIN | POLLOUT);
	for (io_waiter *n = s->head; n && dirs; n = n->next)
		dirs &= ~n->match; /* still wanted by another waiter */
	if (dirs) {
		uring_cancel(io, fd, gen, dirs);
		s->armed &= ~dirs;
	}
}

bool weft__uring_close(weft_io *io, io_slot *s, int fd, uint32_t gen)
{
	if (!s->armed)
		return false;
	uring_cancel(io, fd, gen, s->armed);
	s->close_pending = s->armed;
	s->close_gen = gen & GEN_MASK;
	s->armed = 0;
	return true;
}

static int uring_handle(weft_io *io, struct io_uring_cqe *cqe)
{
	uint64_t d = io_uring_cqe_get_data64(cqe);
	if (d & TAG_IGNORE)
		return 0;
	if (d & TAG_WAKE) {
		weft__io_drain_wake(io);
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
	io_slot *s = weft__io_slot(io, fd, false);
	if (!s)
		return 0;
	int woke = 0;
	slot_lock(s);
	if ((atomic_load_explicit(&s->gen, memory_order_relaxed) & GEN_MASK) == gen) {
		if (cqe->res == -ECANCELED && !multi && !(s->armed & dirs)) {
			slot_unlock(s); /* cancelled by weft__uring_disarm */
			return 0;
		}
		s->armed &= ~done;
		/* An error (the poll was cancelled because the thread that
		 * submitted it exited, ...) wakes the waiters too: they retry
		 * their operation and arm a new poll. It is no hang-up, so it
		 * is not remembered in slot->seen. */
		if (cqe->res > 0)
			woke = weft__io_report(s, (uint32_t)cqe->res, SEEN_BITS & ~(uint32_t)POLLPRI);
		else
			woke = weft__io_report(s, (multi ? POLLIN | POLLOUT : dirs) | POLLERR, 0);
		/* A multishot poll can end with a readiness report (the kernel
		 * could not post more): waiters for other bits need a new one. */
		if ((done & ARM_MULTI) && s->head)
			weft__uring_arm(io, s, fd, gen, 0, true);
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

int weft__uring_poll(weft_io *io, weft_time_t timeout)
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

int weft__uring_init(weft_io *io)
{
	/* COOP_TASKRUN: see the top; kernels before 5.19 refuse it. */
	struct io_uring_params p = {.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG};
	int r = io_uring_queue_init_params(1024, &io->ring, &p);
	if (r == -EINVAL) {
		memset(&p, 0, sizeof p);
		r = io_uring_queue_init_params(1024, &io->ring, &p);
	}
	if (r < 0) {
		weft__io_log_fallback("io_uring_queue_init", r);
		return r;
	}
	if (!(p.features & IORING_FEAT_EXT_ARG) || !(p.features & IORING_FEAT_NODROP)) {
		io_uring_queue_exit(&io->ring);
		weft__io_log_fallback("kernel lacks IORING_FEAT_EXT_ARG/NODROP", -ENOSYS);
		return -ENOSYS;
	}
	pthread_mutex_init(&io->sq_lock, NULL);
	io->backend = BACKEND_URING;
	/* Probe multishot poll on the wake eventfd (kernel 5.13+). The probe
	 * belongs to this thread, which need not be a worker (see the top): it
	 * is removed again, and the poll that stays is queued for the first
	 * worker to submit. Both of the probe's completions and the removal's
	 * are TAG_IGNORE, reaped by the first poll. */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
	io_uring_prep_poll_multishot(sqe, io->efd, POLLIN);
	io_uring_sqe_set_data64(sqe, TAG_IGNORE);
	r = io_uring_submit(&io->ring);
	if (r >= 0) {
		weft__io_wake(io);
		struct io_uring_cqe *cqe;
		r = io_uring_wait_cqe(&io->ring, &cqe);
		if (r == 0) {
			r = cqe->res < 0 ? cqe->res : (cqe->flags & IORING_CQE_F_MORE) ? 0 : -ENOSYS;
			io_uring_cqe_seen(&io->ring, cqe);
		}
		weft__io_drain_wake(io);
	}
	if (r == 0) {
		sqe = io_uring_get_sqe(&io->ring);
		io_uring_prep_cancel64(sqe, TAG_IGNORE, 0);
		io_uring_sqe_set_data64(sqe, TAG_IGNORE);
		r = io_uring_submit(&io->ring);
		if (r >= 0) {
			r = 0;
			uring_queue(io, io->efd, POLLIN, TAG_WAKE, true);
		}
	}
	if (r < 0) {
		io_uring_queue_exit(&io->ring);
		pthread_mutex_destroy(&io->sq_lock);
		io->backend = BACKEND_EPOLL;
		weft__io_log_fallback("multishot poll", r);
	}
	return r;
}

void weft__uring_exit(weft_io *io)
{
	io_uring_queue_exit(&io->ring);
	pthread_mutex_destroy(&io->sq_lock);
}

#endif
