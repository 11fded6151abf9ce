/* waitgroup.c - wait groups (Go's sync.WaitGroup).
 *
 * State word: count << 1 | WAIT, WAIT meaning "waiters may be queued".
 * done is one fetch_sub; add is a CAS loop, so that a count that would go
 * negative or overflow changes nothing. Whoever takes the count to zero
 * and sees WAIT takes q's lock and wakes every queued waiter.
 *
 * No lost wake-up: a waiter, holding q's lock, sets WAIT by a CAS that sees
 * a non-zero count, and links its node before releasing the lock. The
 * operation that brings the count to zero either comes after that CAS in
 * the word's order (it sees WAIT and takes q's lock, so it finds the node)
 * or before it (the waiter's CAS sees zero and it returns at once).
 *
 * WAIT is cleared only under q's lock, when the count is zero and the queue
 * has been emptied; a waiter that gives up leaves it set (the next zero
 * just finds fewer waiters). A done that finds the count already zero is a
 * caller's error: it adds the one back and reports -EINVAL; until then the
 * word is briefly one below zero, which only that misuse can make visible.
 *
 * Memory order: done and add are acq_rel and the zero-checking loads
 * acquire, so the work before every done is visible to whoever sees zero;
 * woken waiters are ordered by q's lock and the unpark/park pair.
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
	return WG_COUNT(atomic_load_explicit(WEFT__A64(&wg->state), memory_order_acquire));
}

/* The count reached zero with waiters queued: release them all. */
static void wg_wake(weft_wg_t *wg)
{
	_Atomic uint64_t *st = wg_state(wg);
	weft_waitq_lock(&wg->q);
	weft_waitq_node_t *n;
	while ((n = weft__sync_pop(&wg->q)) != NULL)
		weft__sync_deliver(n, WEFT__SYNC_GRANTED);
	uint64_t s = atomic_load_explicit(st, memory_order_relaxed);
	while (WG_COUNT(s) == 0 && (s & WG_WAIT) &&
	       !atomic_compare_exchange_weak_explicit(st, &s, s & ~(uint64_t)WG_WAIT, memory_order_relaxed,
						      memory_order_relaxed))
		;
	weft_waitq_unlock(&wg->q);
}

int weft_wg_add(weft_wg_t *wg, int64_t n)
{
	if (!wg)
		return -EINVAL;
	_Atomic uint64_t *st = wg_state(wg);
	uint64_t s = atomic_load_explicit(st, memory_order_relaxed);
	int64_t c;
	do {
		c = WG_COUNT(s);
		if (n < 0 ? c + n < 0 : n > WG_MAX - c)
			return n < 0 ? -EINVAL : -EOVERFLOW;
		c += n;
	} while (!atomic_compare_exchange_weak_explicit(st, &s, ((uint64_t)c << 1) | (s & WG_WAIT),
							memory_order_acq_rel, memory_order_relaxed));
	if (c == 0 && n != 0 && (s & WG_WAIT))
		wg_wake(wg);
	return 0;
}

int weft_wg_done(weft_wg_t *wg)
{
	if (!wg)
		return -EINVAL;
	_Atomic uint64_t *st = wg_state(wg);
	uint64_t s = atomic_fetch_sub_explicit(st, WG_ONE, memory_order_acq_rel);
	if (likely(WG_COUNT(s) > 1))
		return 0;
	if (unlikely(WG_COUNT(s) <= 0)) {
		atomic_fetch_add_explicit(st, WG_ONE, memory_order_relaxed);
		return -EINVAL;
	}
	if (s & WG_WAIT)
		wg_wake(wg);
	return 0;
}

int weft_wg_wait_until(weft_wg_t *wg, weft_time_t deadline)
{
	if (!wg)
		return -EINVAL;
	_Atomic uint64_t *st = wg_state(wg);
	uint64_t s = atomic_load_explicit(st, memory_order_acquire);
	if (WG_COUNT(s) == 0)
		return 0;
	if (deadline != WEFT_NEVER && weft_now() >= deadline)
		return -ETIMEDOUT;
	int r = weft__sync_can_park();
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
	weft_waitq_node_t node;
	weft_waitq_push(&wg->q, &node);
	weft_waitq_unlock(&wg->q);
	r = weft__sync_wait(&wg->q, &wg->q, &node, deadline, NULL, NULL);
	return r < 0 ? r : 0;
}

int weft_wg_wait(weft_wg_t *wg)
{
	return weft_wg_wait_until(wg, WEFT_NEVER);
}
