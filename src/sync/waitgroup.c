/* waitgroup.c - wait groups (Go's sync.WaitGroup).
 *
 * State word: count << 1 | WAIT, WAIT meaning "waiters may be queued".
 * done and add are CAS loops, so that a count that would go negative or
 * overflow changes nothing. A change that takes the count to zero while
 * WAIT is set is made under q's lock, together with waking every queued
 * waiter and clearing WAIT; any other change is one CAS with no lock.
 *
 * Lifetime (internal.h): a waiter may destroy the group as soon as its
 * wait returns, and so may the caller of the done that released it. The
 * zero that lets a waiter return is made either without the lock (WAIT
 * clear: the CAS is that call's last touch) or under q's lock, which claims
 * every queued waiter in the same critical section and wakes them after
 * its unlock, touching nothing of the group then (L1, L2). A wait that
 * finds zero without the lock settles on q's lock before returning (L4).
 * A waiter whose wait had ended (timeout, cancellation) as the zero came
 * cannot be claimed: it is dropped and returns its error, as if it had
 * given up just before.
 *
 * No lost wake-up: a waiter, holding q's lock, sets WAIT by a CAS that sees
 * a non-zero count, and links its node before releasing the lock. The
 * operation that brings the count to zero either comes after that CAS in
 * the word's order (it sees WAIT and takes q's lock, so it finds the node)
 * or before it (the waiter's CAS sees zero and it returns at once).
 *
 * WAIT is cleared only under q's lock, by the change that zeroes the count
 * as the queue is emptied; a waiter that gives up leaves it set (the next
 * zero just finds fewer waiters). A done that finds the count already zero
 * is a caller's error (-EINVAL) and changes nothing.
 *
 * Memory order: done and add are acq_rel and the zero-checking loads
 * acquire, so the work before every done is visible to whoever sees zero;
 * woken waiters are ordered by q's lock and the finish/park pair.
 */
#include "internal.h"

#define WG_WAIT 1u
#define WG_ONE 2u
#define WG_COUNT(s) ((int64_t)(s) >> 1)
#define WG_MAX ((INT64_C(1) << 62) - 1)

static inline _Atomic uint64_t *wg_state(weft_wg_t *wg)
{
	return WEFT__A64(&wg->state);
}

int weft_wg_init(weft_wg_t *wg)
{
	if (!wg)
		return -EINVAL;
	*wg = (weft_wg_t)WEFT_WG_INIT;
	return 0;
}

int weft_wg_destroy(weft_wg_t *wg)
{
	if (!wg)
		return -EINVAL;
	weft_waitq_lock(&wg->q);
	bool busy = WG_COUNT(atomic_load(wg_state(wg))) != 0 || wg->q.len != 0;
	weft_waitq_unlock(&wg->q);
	return busy ? -EBUSY : 0;
}

int64_t weft_wg_count(const weft_wg_t *wg)
{
	if (!wg)
		return -EINVAL;
	int64_t c = WG_COUNT(atomic_load_explicit(WEFT__A64(&wg->state), memory_order_acquire));
	if (c == 0) /* as in wait: a zero seen may let the caller destroy the group */
		weft__sync_settle((weft_waitq_t *)&wg->q);
	return c;
}

/* Change the count by n (a CAS loop; -EINVAL below zero, -EOVERFLOW above
 * WG_MAX). A change that zeroes the count while WAIT is set is made under
 * q's lock, with every queued waiter released in the same critical section
 * (see "Lifetime"). */
static int wg_change(weft_wg_t *wg, int64_t n)
{
	_Atomic uint64_t *st = wg_state(wg);
	uint64_t s = atomic_load_explicit(st, memory_order_relaxed);
	for (;;) {
		int64_t c = WG_COUNT(s);
		if (n < 0 ? c + n < 0 : n > WG_MAX - c)
			return n < 0 ? -EINVAL : -EOVERFLOW;
		c += n;
		if (c == 0 && n != 0 && (s & WG_WAIT))
			break;
		/* release: the work before a done is visible to whoever sees
		 * the count it leaves. */
		if (atomic_compare_exchange_weak_explicit(st, &s, ((uint64_t)c << 1) | (s & WG_WAIT),
							  memory_order_acq_rel, memory_order_relaxed))
			return 0;
	}
	weft_waitq_lock(&wg->q);
	s = atomic_load_explicit(st, memory_order_relaxed);
	int64_t c;
	for (;;) {
		c = WG_COUNT(s);
		if (n < 0 ? c + n < 0 : n > WG_MAX - c) {
			weft_waitq_unlock(&wg->q);
			return n < 0 ? -EINVAL : -EOVERFLOW;
		}
		c += n;
		/* Waiters queue only under this lock: WAIT and the queue agree
		 * now. Zero releases them all and clears WAIT. */
		uint64_t nw = c == 0 ? 0 : ((uint64_t)c << 1) | (s & WG_WAIT);
		if (atomic_compare_exchange_weak_explicit(st, &s, nw, memory_order_acq_rel, memory_order_relaxed))
			break;
	}
	weft__sync_wakes wk = WEFT__SYNC_WAKES_INIT;
	weft_waitq_node_t *w;
	unsigned dropped = 0; /* (no count of waiters to keep) */
	while (c == 0 && (w = weft__sync_claim(&wg->q, &dropped)) != NULL)
		weft__sync_give(&wk, w, WEFT__SYNC_GRANTED);
	weft_waitq_unlock(&wg->q);
	weft__sync_wake(&wk);
	return 0;
}

int weft_wg_add(weft_wg_t *wg, int64_t n)
{
	if (!wg)
		return -EINVAL;
	return wg_change(wg, n);
}

int weft_wg_done(weft_wg_t *wg)
{
	if (!wg)
		return -EINVAL;
	return wg_change(wg, -1);
}

/* o: a stackless task's op, where it registers instead of parking. */
static int wg_wait(weft_wg_t *wg, weft_time_t deadline, weft__sync_op *o)
{
	_Atomic uint64_t *st = wg_state(wg);
	uint64_t s = atomic_load_explicit(st, memory_order_acquire);
	if (WG_COUNT(s) == 0) {
		weft__sync_settle(&wg->q); /* the zero may have been made under the lock */
		return 0;
	}
	if (deadline != WEFT_NEVER && weft_now() >= deadline)
		return -ETIMEDOUT;
	int r = o ? 0 : weft__sync_can_park();
	if (r)
		return r;
	weft_waitq_lock(&wg->q);
	s = atomic_load_explicit(st, memory_order_acquire);
	do {
		if (WG_COUNT(s) == 0) {
			weft_waitq_unlock(&wg->q);
			return 0;
		}
	} while (!(s & WG_WAIT) && !atomic_compare_exchange_weak_explicit(st, &s, s | WG_WAIT, memory_order_acq_rel,
									  memory_order_acquire));
	weft_waitq_node_t local;
	weft_waitq_node_t *n = o ? &o->n : &local;
	weft_waitq_push(&wg->q, n);
	weft_waitq_unlock(&wg->q);
	if (o)
		return weft__sync_step_park(o, deadline);
	r = weft__sync_wait(&wg->q, &wg->q, n, deadline, NULL, NULL);
	return r < 0 ? r : 0;
}

int weft_wg_wait_until(weft_wg_t *wg, weft_time_t deadline)
{
	if (!wg)
		return -EINVAL;
	return wg_wait(wg, deadline, NULL);
}

int weft_wg_wait(weft_wg_t *wg)
{
	return weft_wg_wait_until(wg, WEFT_NEVER);
}

int weft_wg_wait_step(weft_wg_t *wg, weft_time_t deadline, weft_op_t *op)
{
	if (!wg || !op)
		return -EINVAL;
	int b = weft_step_begin(op, WEFT__SYNC_WG_WAIT, wg);
	if (b < 0)
		return b;
	weft__sync_op *o = (weft__sync_op *)op;
	if (b == 1) {
		int r = weft__sync_woke(&wg->q, &wg->q, &o->n, weft_park_result(), NULL, NULL);
		return r < 0 ? r : 0;
	}
	return wg_wait(wg, deadline, weft_can_park() ? NULL : o);
}
