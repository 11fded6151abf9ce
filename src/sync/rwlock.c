/* rwlock.c - the readers-writer lock.
 *
 * State word: bit 0 WRITER (a writer holds it), bit 1 WAIT (someone is
 * queued), bits 2.. the number of readers holding it. Fast paths, one
 * atomic each, run only while WAIT is clear: a reader adds itself if no
 * writer holds; a writer takes a lock nobody holds (CAS 0 -> WRITER); a
 * reader leaves with one CAS; a writer leaves with CAS WRITER -> 0.
 *
 * Everything else happens under wq's lock (the "master" lock; rq's own
 * lock nests inside it and only guards rq's links): waiters count
 * themselves (nwr, nrd) and queue, waiters that give up withdraw, and the
 * unlock that frees the lock while WAIT is set hands it on (grant). Grants
 * are handoffs: the state is updated for the new holders before they are
 * woken, so a lock handed on is never seen free. The readers of a grant
 * are claimed (internal.h: the waker walks their nodes after its unlock);
 * one whose wait had ended (timeout, cancellation) cannot be, and is
 * dropped and counted out (rw_grant then goes on to the writers if nobody
 * got in). A writer is handed the lock without a claim (weft__sync_hand):
 * the pop is the delivery, as with the mutex.
 *
 * Policy (grant): after a writer, every reader waiting at that moment gets
 * in together; after the last reader, the first waiting writer. A newcomer
 * reader queues if a writer holds or waits, so a stream of readers cannot
 * starve a writer, and a stream of writers cannot starve readers (each
 * writer's unlock lets the readers queued behind it in). Writers are FIFO.
 *
 * Invariants, whenever wq's lock is free:
 *  (1) nwr / nrd == the queued, not withdrawn nodes of wq / rq;
 *  (2) WAIT == (nwr + nrd > 0);
 *  (3) if nrd > 0, a writer holds or nwr > 0 (readers wait only behind a
 *      writer), and if the lock is free, nwr == 0 - except between a
 *      reader's fast unlock that emptied it and that reader's grant, which
 *      it makes under the lock right after (it saw WAIT in its own CAS).
 * No lost wake-up: a waiter sets WAIT by a CAS that sees the lock held,
 * under the master lock, and links its node before releasing it; an
 * unlock whose CAS follows sees WAIT and takes the master lock (after the
 * node is linked); one that precedes it lets the waiter's CAS take the lock.
 *
 * Stackless waiters (the _step forms) queue their node from their op and
 * register where others park; the repeat finishes the wait (rw_woke).
 *
 * Lifetime (internal.h): an unlock's last touch is its fast CAS, or the
 * release of the master lock; the waiters it granted are woken after that
 * (L1) and touch the lock no more before returning (L2) - and hold it, so
 * nobody frees it before they unlock anyway. Whatever lets someone in under
 * the master lock without a wake (clearing WAIT) is seen before that
 * release, so a fast path that gets in settles on the master lock before
 * returning (L4): the lock may then be destroyed once it is released.
 */
#include "internal.h"

#define RW_WRITER 1u
#define RW_WAIT 2u
#define RW_READER 4u
#define RW_READERS(s) ((s) >> 2)
#define RW_MAX_READERS (1u << 29)

static inline _Atomic uint32_t *rw_state(weft_rwlock_t *rw)
{
	return WEFT__A32(&rw->state);
}

int weft_rwlock_init(weft_rwlock_t *rw)
{
	if (!rw)
		return -EINVAL;
	*rw = (weft_rwlock_t)WEFT_RWLOCK_INIT;
	return 0;
}

int weft_rwlock_destroy(weft_rwlock_t *rw)
{
	if (!rw)
		return -EINVAL;
	weft_waitq_lock(&rw->wq);
	weft_waitq_lock(&rw->rq);
	bool busy = atomic_load(rw_state(rw)) != 0 || rw->wq.len || rw->rq.len;
	weft_waitq_unlock(&rw->rq);
	weft_waitq_unlock(&rw->wq);
	return busy ? -EBUSY : 0;
}

/* ------------------------------------------------------------ handing on */

/* Under the master lock: keep WAIT equal to "someone is queued". */
static void rw_sync_wait_bit(weft_rwlock_t *rw)
{
	/* release: a fast path that now gets in settles on the master lock
	 * (see "Lifetime"). */
	if (rw->nwr + rw->nrd == 0)
		atomic_fetch_and_explicit(rw_state(rw), ~RW_WAIT, memory_order_release);
}

/* Under the master lock: let in every reader queued now, claiming each
 * (wk: to be woken once the lock is released). Returns how many got in;
 * the others' waits had ended, and they are counted out with the rest. */
static uint32_t rw_grant_readers(weft_rwlock_t *rw, weft__sync_wakes *wk)
{
	uint32_t k = 0;
	unsigned dropped = 0;
	weft_waitq_lock(&rw->rq);
	weft_waitq_node_t *n;
	while ((n = weft__sync_claim(&rw->rq, &dropped)) != NULL) {
		weft__sync_give(wk, n, WEFT__SYNC_GRANTED);
		k++;
	}
	weft_waitq_unlock(&rw->rq);
	assert(k + dropped == rw->nrd); /* invariant (1) */
	rw->nrd = 0;
	/* Counted in before they are woken (after the master lock's release). */
	if (k)
		atomic_fetch_add_explicit(rw_state(rw), k * RW_READER, memory_order_acq_rel);
	return k;
}

/* Under the master lock: hand the lock to the first waiting writer. A
 * handoff without a claim (weft__sync_hand): the writer holds the lock
 * from here on, so nobody may free it before that writer's unlock, even if
 * its wait ends otherwise meanwhile and it learns of the grant under the
 * master lock after this unlock has returned. */
static void rw_grant_writer(weft_rwlock_t *rw, weft__sync_wakes *wk)
{
	weft_waitq_node_t *n = weft__sync_pop(&rw->wq);
	assert(n); /* invariant (1) */
	rw->nwr--;
	atomic_fetch_or_explicit(rw_state(rw), RW_WRITER, memory_order_acq_rel);
	weft__sync_hand(wk, n, WEFT__SYNC_GRANTED);
}

/* Under the master lock, after an unlock or a withdrawal: hand the lock to
 * whoever may have it now. after_writer picks the readers first. A round
 * that lets nobody in has emptied the readers' queue (all dropped), so this
 * ends. */
static void rw_grant(weft_rwlock_t *rw, bool after_writer, weft__sync_wakes *wk)
{
	uint32_t s = atomic_load_explicit(rw_state(rw), memory_order_relaxed);
	while (!(s & RW_WRITER)) {
		if (RW_READERS(s) > 0) {
			/* Readers hold it: queued readers may join only if no writer
			 * waits (the writer they queued behind gave up). */
			if (rw->nwr == 0 && rw->nrd > 0)
				rw_grant_readers(rw, wk);
			break;
		}
		if (rw->nrd > 0 && (after_writer || rw->nwr == 0)) {
			if (rw_grant_readers(rw, wk) > 0)
				break;
		} else if (rw->nwr > 0) {
			rw_grant_writer(rw, wk);
			break;
		} else {
			break;
		}
	}
	rw_sync_wait_bit(rw);
}

/* ------------------------------------------------------------ waiting */

struct rw_wait {
	weft_rwlock_t *rw;
	bool writer;
	weft__sync_wakes wk; /* whom the withdrawal let in */
};

/* Under the master lock: a waiter gives up. */
static void rw_withdraw(void *ctx)
{
	struct rw_wait *w = ctx;
	if (w->writer)
		w->rw->nwr--;
	else
		w->rw->nrd--;
	/* Readers queued behind a writer that leaves may get in now. */
	rw_grant(w->rw, false, &w->wk);
}

/* The wait on n ended with r: 0 once granted, or r after withdrawing. */
static int rw_woke(weft_rwlock_t *rw, bool writer, weft_waitq_node_t *n, int r)
{
	if (r == 0) {
		/* Granted and woken (weft__sync_woke's first case, without the
		 * withdrawal's set-up). */
		assert(!n->queued && n->status == WEFT__SYNC_GRANTED);
		return 0;
	}
	struct rw_wait w = {rw, writer, WEFT__SYNC_WAKES_INIT};
	r = weft__sync_woke(&rw->wq, writer ? &rw->wq : &rw->rq, n, r, rw_withdraw, &w);
	weft__sync_wake(&w.wk); /* the master lock is released */
	if (r < 0)
		return r;
	assert(r == WEFT__SYNC_GRANTED);
	return 0;
}

/* Queue (master lock held, WAIT set, caller counted in) and park - or, a
 * stackless task's op o given, register there (-EINPROGRESS; its repeat
 * calls rw_woke). 0 once granted, or the park's error. */
static int rw_park(weft_rwlock_t *rw, bool writer, weft_time_t deadline, weft__sync_op *o)
{
	weft_waitq_node_t local;
	weft_waitq_node_t *n = o ? &o->n : &local;
	weft_waitq_t *q = writer ? &rw->wq : &rw->rq;
	if (!writer)
		weft_waitq_lock(q);
	weft_waitq_push(q, n);
	if (!writer)
		weft_waitq_unlock(q);
	weft_waitq_unlock(&rw->wq);
	if (o)
		return weft__sync_step_park(o, deadline);
	return rw_woke(rw, writer, n, weft_park(n->waker, deadline));
}

/* ------------------------------------------------------------ readers */

int weft_rwlock_try_rdlock(weft_rwlock_t *rw)
{
	if (!rw)
		return -EINVAL;
	_Atomic uint32_t *st = rw_state(rw);
	uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
	do {
		if (s & (RW_WRITER | RW_WAIT))
			return -EAGAIN;
		if (RW_READERS(s) >= RW_MAX_READERS)
			return -EOVERFLOW;
	} while (!atomic_compare_exchange_weak_explicit(st, &s, s + RW_READER, memory_order_acquire,
							memory_order_relaxed));
	weft__sync_settle(&rw->wq);
	return 0;
}

/* o: a stackless task's op, where it registers instead of parking. */
static int rw_rdlock(weft_rwlock_t *rw, weft_time_t deadline, weft__sync_op *o)
{
	int r = weft_rwlock_try_rdlock(rw);
	if (r != -EAGAIN)
		return r;
	if (deadline != WEFT_NEVER && weft_now() >= deadline)
		return -ETIMEDOUT;
	if (!o && (r = weft__sync_can_park()) != 0)
		return r;
	_Atomic uint32_t *st = rw_state(rw);
	weft_waitq_lock(&rw->wq);
	uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
	for (;;) {
		if (!(s & RW_WRITER) && rw->nwr == 0) {
			if (RW_READERS(s) >= RW_MAX_READERS) {
				weft_waitq_unlock(&rw->wq);
				return -EOVERFLOW;
			}
			if (atomic_compare_exchange_weak_explicit(st, &s, s + RW_READER, memory_order_acquire,
								  memory_order_relaxed)) {
				weft_waitq_unlock(&rw->wq);
				return 0;
			}
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(st, &s, s | RW_WAIT, memory_order_relaxed,
							  memory_order_relaxed))
			break;
	}
	rw->nrd++;
	return rw_park(rw, false, deadline, o);
}

int weft_rwlock_rdlock_until(weft_rwlock_t *rw, weft_time_t deadline)
{
	return rw_rdlock(rw, deadline, NULL);
}

int weft_rwlock_rdlock(weft_rwlock_t *rw)
{
	return rw_rdlock(rw, WEFT_NEVER, NULL);
}

int weft_rwlock_rdlock_step(weft_rwlock_t *rw, weft_time_t deadline, weft_op_t *op)
{
	if (!rw || !op)
		return -EINVAL;
	int b = weft_step_begin(op, WEFT__SYNC_RDLOCK, rw);
	if (b < 0)
		return b;
	weft__sync_op *o = (weft__sync_op *)op;
	if (b == 1)
		return rw_woke(rw, false, &o->n, weft_park_result());
	return rw_rdlock(rw, deadline, b == WEFT_STEP_BLOCKS ? NULL : o);
}

/* ------------------------------------------------------------ writers */

int weft_rwlock_try_wrlock(weft_rwlock_t *rw)
{
	if (!rw)
		return -EINVAL;
	uint32_t s = 0;
	if (!atomic_compare_exchange_strong_explicit(rw_state(rw), &s, RW_WRITER, memory_order_acquire,
						     memory_order_relaxed))
		return -EAGAIN;
	weft__sync_settle(&rw->wq);
	atomic_store_explicit(WEFT__A64(&rw->owner), weft__sync_self(), memory_order_relaxed);
	return 0;
}

/* o: a stackless task's op, where it registers instead of parking. */
static int rw_wrlock(weft_rwlock_t *rw, weft_time_t deadline, weft__sync_op *o)
{
	if (!rw)
		return -EINVAL;
	_Atomic uint32_t *st = rw_state(rw);
	uint64_t self = weft__sync_self();
	uint32_t s = 0;
	if (likely(atomic_compare_exchange_strong_explicit(st, &s, RW_WRITER, memory_order_acquire,
							   memory_order_relaxed))) {
		weft__sync_settle(&rw->wq);
		goto got;
	}
	if ((s & RW_WRITER) && atomic_load_explicit(WEFT__A64(&rw->owner), memory_order_relaxed) == self)
		return -EDEADLK;
	if (deadline != WEFT_NEVER && weft_now() >= deadline)
		return -ETIMEDOUT;
	int r = o ? 0 : weft__sync_can_park();
	if (r)
		return r;
	weft_waitq_lock(&rw->wq);
	s = atomic_load_explicit(st, memory_order_relaxed);
	for (;;) {
		if (!(s & RW_WRITER) && RW_READERS(s) == 0 && rw->nwr == 0) {
			assert(rw->nrd == 0); /* invariant (3) */
			if (atomic_compare_exchange_weak_explicit(st, &s, s | RW_WRITER, memory_order_acquire,
								  memory_order_relaxed)) {
				weft_waitq_unlock(&rw->wq);
				goto got;
			}
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(st, &s, s | RW_WAIT, memory_order_relaxed,
							  memory_order_relaxed))
			break;
	}
	rw->nwr++;
	if ((r = rw_park(rw, true, deadline, o)) != 0)
		return r;
got:
	atomic_store_explicit(WEFT__A64(&rw->owner), self, memory_order_relaxed);
	return 0;
}

int weft_rwlock_wrlock_until(weft_rwlock_t *rw, weft_time_t deadline)
{
	return rw_wrlock(rw, deadline, NULL);
}

int weft_rwlock_wrlock(weft_rwlock_t *rw)
{
	return rw_wrlock(rw, WEFT_NEVER, NULL);
}

int weft_rwlock_wrlock_step(weft_rwlock_t *rw, weft_time_t deadline, weft_op_t *op)
{
	if (!rw || !op)
		return -EINVAL;
	int b = weft_step_begin(op, WEFT__SYNC_WRLOCK, rw);
	if (b < 0)
		return b;
	weft__sync_op *o = (weft__sync_op *)op;
	if (b == 1) {
		int r = rw_woke(rw, true, &o->n, weft_park_result());
		if (r == 0)
			atomic_store_explicit(WEFT__A64(&rw->owner), weft__sync_self(), memory_order_relaxed);
		return r;
	}
	return rw_wrlock(rw, deadline, b == WEFT_STEP_BLOCKS ? NULL : o);
}

/* ------------------------------------------------------------ unlock */

int weft_rwlock_unlock(weft_rwlock_t *rw)
{
	if (!rw)
		return -EINVAL;
	_Atomic uint32_t *st = rw_state(rw);
	uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
	if (s & RW_WRITER) {
		_Atomic uint64_t *owner = WEFT__A64(&rw->owner);
		if (atomic_load_explicit(owner, memory_order_relaxed) != weft__sync_self())
			return -EPERM;
		atomic_store_explicit(owner, 0, memory_order_relaxed);
		s = RW_WRITER;
		if (atomic_compare_exchange_strong_explicit(st, &s, 0, memory_order_release, memory_order_relaxed))
			return 0;
		weft__sync_wakes wk = WEFT__SYNC_WAKES_INIT;
		weft_waitq_lock(&rw->wq);
		atomic_fetch_and_explicit(st, ~RW_WRITER, memory_order_release);
		rw_grant(rw, true, &wk);
		weft_waitq_unlock(&rw->wq);
		weft__sync_wake(&wk);
		return 0;
	}
	do {
		if (RW_READERS(s) == 0 || (s & RW_WRITER))
			return -EPERM; /* not read-locked (it changed under a caller that held nothing) */
	} while (!atomic_compare_exchange_weak_explicit(st, &s, s - RW_READER, memory_order_release,
							memory_order_relaxed));
	s -= RW_READER;
	if (RW_READERS(s) == 0 && (s & RW_WAIT)) {
		weft__sync_wakes wk = WEFT__SYNC_WAKES_INIT;
		weft_waitq_lock(&rw->wq);
		rw_grant(rw, false, &wk);
		weft_waitq_unlock(&rw->wq);
		weft__sync_wake(&wk);
	}
	return 0;
}
