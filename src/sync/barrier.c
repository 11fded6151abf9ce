/* barrier.c - reusable barriers.
 *
 * Everything but a leaving waiter's first step happens under q's lock:
 * `arrived` counts the waiters of the current generation, which are the
 * queued nodes of q that are neither withdrawn nor dropped. The n-th
 * arrival ends the generation: it releases every queued waiter, resets
 * `arrived` and returns 1; nobody else can return 1 for that generation.
 * Arrivals after it start the next generation on the same (now empty)
 * queue.
 *
 * A generation is all or nothing: it must not pass some of its waiters
 * while one of them leaves (timeout, cancellation). Claims (internal.h)
 * cannot be undone, so the n-th arrival first reserves every waiter, then
 * claims:
 *  - A waiter whose park ended with an error leaves by a CAS of its node's
 *    status WAITING -> WITHDRAWN, without the lock; then, under the lock,
 *    it counts itself out (unless an arrival did: DROPPED) and unlinks its
 *    node.
 *  - The n-th arrival, holding the lock, moves every queued node WAITING ->
 *    HELD (pass 1). A node found WITHDRAWN is a waiter that left before
 *    this arrival: it counts it out (DROPPED), puts the reserved nodes back
 *    to WAITING, and is not the n-th arrival after all - it waits like the
 *    others. Otherwise (pass 2) it pops every node and claims its wait;
 *    one that cannot be claimed belongs to a waiter whose park has ended
 *    and which is spinning on HELD (its CAS failed): it is set GRANTED, and
 *    that waiter passes without touching the barrier again. The claimed
 *    ones are GRANTED and woken after the unlock.
 * So the generation passes exactly the waiters it counted, and a waiter
 * that times out or is cancelled as it completes either passes (0: it was
 * reserved first) or leaves it (its error, and the generation waits for
 * another arrival); a waiter that leaves never counts towards n. A waiter
 * spins on HELD only while the arrival holds the lock, in pass 1 or 2.
 *
 * Lifetime (internal.h): any caller may destroy the barrier as soon as its
 * wait returned. The last arrival touches nothing after its unlock (L1);
 * the waiters it released return without touching the barrier (L2), the
 * claimed ones woken after that unlock, the others on seeing GRANTED in
 * their own node; a leaving waiter takes the lock while nobody can have
 * seen its call complete (L3).
 *
 * Node status: WAITING and WITHDRAWN/HELD/GRANTED (the CASes above) are
 * atomic, since a leaving waiter writes its node without the lock.
 */
#include "internal.h"

int weft_barrier_init(weft_barrier_t *b, unsigned n)
{
	if (!b || n == 0)
		return -EINVAL;
	b->n = n;
	b->arrived = 0;
	weft_waitq_init(&b->q);
	return 0;
}

int weft_barrier_destroy(weft_barrier_t *b)
{
	if (!b)
		return -EINVAL;
	weft_waitq_lock(&b->q);
	bool busy = b->arrived != 0 || b->q.len != 0;
	weft_waitq_unlock(&b->q);
	return busy ? -EBUSY : 0;
}

static inline _Atomic int *bar_status(weft_waitq_node_t *n)
{
	return (_Atomic int *)&n->status;
}

/* Under q's lock, an arrival that would be the n-th: end the generation,
 * claiming its waiters for wk (true); or, if a waiter is found leaving,
 * count it out and change nothing else (false). */
static bool barrier_release(weft_barrier_t *b, weft__sync_wakes *wk)
{
	bool left = false;
	/* Pass 1: reserve every queued waiter (read-only walk of q's links,
	 * which this lock guards). */
	for (weft_waitq_node_t *n = b->q.head; n; n = n->next) {
		int s = WEFT__SYNC_WAITING;
		if (atomic_compare_exchange_strong_explicit(bar_status(n), &s, WEFT__SYNC_HELD, memory_order_relaxed,
							    memory_order_relaxed))
			continue;
		if (s == WEFT__SYNC_WITHDRAWN) {
			/* It left before us: count it out for it. */
			assert(b->arrived > 0);
			b->arrived--;
			atomic_store_explicit(bar_status(n), WEFT__SYNC_DROPPED, memory_order_relaxed);
			left = true;
		} else {
			assert(s == WEFT__SYNC_DROPPED); /* counted out already */
		}
	}
	if (left) {
		/* Not the n-th any more: let the reserved go on waiting. */
		assert(b->arrived + 1 < b->n);
		for (weft_waitq_node_t *n = b->q.head; n; n = n->next) {
			int s = WEFT__SYNC_HELD;
			atomic_compare_exchange_strong_explicit(bar_status(n), &s, WEFT__SYNC_WAITING,
								memory_order_relaxed, memory_order_relaxed);
		}
		return false;
	}
	/* Pass 2: every waiter counted is HELD, so none can leave. */
	weft_waitq_node_t *n;
	while ((n = weft_waitq_pop(&b->q)) != NULL) {
		int s = atomic_load_explicit(bar_status(n), memory_order_relaxed);
		if (s == WEFT__SYNC_DROPPED)
			continue;
		assert(s == WEFT__SYNC_HELD);
		if (weft_unpark_claim(n->waker)) {
			atomic_store_explicit(bar_status(n), WEFT__SYNC_WAITING, memory_order_relaxed);
			weft__sync_give(wk, n, WEFT__SYNC_GRANTED);
		} else {
			/* Its park has ended and it waits for this store; it
			 * passes, and the node is not ours any more. */
			atomic_store_explicit(bar_status(n), WEFT__SYNC_GRANTED, memory_order_release);
		}
	}
	b->arrived = 0;
	return true;
}

/* The wait on n, queued on b, ended with r: 0 once released, or r after
 * leaving. */
static int barrier_woke(weft_barrier_t *b, weft_waitq_node_t *n, int r)
{
	_Atomic int *st = bar_status(n);
	if (r == 0) {
		/* Claimed and finished after the last arrival's unlock (L2). */
		assert(atomic_load_explicit(st, memory_order_relaxed) == WEFT__SYNC_GRANTED);
		return 0;
	}
	int s = WEFT__SYNC_WAITING;
	for (int i = 0; !atomic_compare_exchange_weak_explicit(st, &s, WEFT__SYNC_WITHDRAWN, memory_order_acquire,
							       memory_order_acquire);
	     i++) {
		if (s == WEFT__SYNC_GRANTED)
			return 0; /* released as the wait ended: b is not ours to touch */
		if (s == WEFT__SYNC_HELD)
			weft__spin_backoff(i); /* an arrival holds the lock, deciding */
		else
			assert(s == WEFT__SYNC_WAITING); /* (a spurious CAS failure) */
		s = WEFT__SYNC_WAITING;
	}
	/* Leaving (L3): nobody can have seen our call complete. */
	weft_waitq_lock(&b->q);
	if (atomic_load_explicit(st, memory_order_relaxed) == WEFT__SYNC_WITHDRAWN) {
		assert(b->arrived > 0);
		b->arrived--;
		atomic_store_explicit(st, WEFT__SYNC_DROPPED, memory_order_relaxed);
	}
	weft_waitq_unlock(&b->q);
	weft_waitq_remove(&b->q, n); /* false if an arrival popped it (pass 2) meanwhile */
	return r;
}

/* o: a stackless task's op, where it registers instead of parking. */
static int barrier_wait(weft_barrier_t *b, weft_time_t deadline, weft__sync_op *o)
{
	weft_waitq_lock(&b->q);
	if (b->n == 0) {
		weft_waitq_unlock(&b->q);
		return -EINVAL;
	}
	if (b->arrived + 1 == b->n) {
		weft__sync_wakes wk = WEFT__SYNC_WAKES_INIT;
		if (barrier_release(b, &wk)) {
			weft_waitq_unlock(&b->q);
			weft__sync_wake(&wk);
			return 1;
		}
	}
	int r = 0;
	if (deadline != WEFT_NEVER && weft_now() >= deadline)
		r = -ETIMEDOUT;
	else if (!o)
		r = weft__sync_can_park();
	if (r) {
		weft_waitq_unlock(&b->q);
		return r;
	}
	b->arrived++;
	weft_waitq_node_t local;
	weft_waitq_node_t *n = o ? &o->n : &local;
	weft_waitq_push(&b->q, n);
	weft_waitq_unlock(&b->q);
	if (o)
		return weft__sync_step_park(o, deadline);
	return barrier_woke(b, n, weft_park(n->waker, deadline));
}

int weft_barrier_wait_until(weft_barrier_t *b, weft_time_t deadline)
{
	if (!b)
		return -EINVAL;
	return barrier_wait(b, deadline, NULL);
}

int weft_barrier_wait(weft_barrier_t *b)
{
	return weft_barrier_wait_until(b, WEFT_NEVER);
}

int weft_barrier_wait_step(weft_barrier_t *b, weft_time_t deadline, weft_op_t *op)
{
	if (!b || !op)
		return -EINVAL;
	int bg = weft_step_begin(op, WEFT__SYNC_BARRIER_WAIT, b);
	if (bg < 0)
		return bg;
	weft__sync_op *o = (weft__sync_op *)op;
	if (bg == 1)
		return barrier_woke(b, &o->n, weft_park_result());
	return barrier_wait(b, deadline, weft_can_park() ? NULL : o);
}
