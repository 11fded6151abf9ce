/* once.c - run a function exactly once.
 *
 * State: NEW -> RUNNING (the CAS that elects the runner) -> DONE (a release
 * store after fn returned, made under q's lock). Callers that find it
 * RUNNING queue on q; the runner, holding q's lock, stores DONE and wakes
 * everyone queued. A waiter checks the state again under q's lock before it
 * links its node, so it either sees DONE (and does not wait) or is linked
 * before the runner takes the lock: no wake-up is lost. The DONE store is
 * release and every check of it acquire, so fn's effects are visible to
 * each caller that returns 0. runner records who runs fn, to turn a call
 * from inside fn (which would wait for itself) into -EDEADLK.
 *
 * Lifetime (internal.h): any caller may destroy the once as soon as its
 * call has returned, even while the runner is still waking the others. The
 * runner claims every queued waiter under q's lock, with the DONE store,
 * and wakes them after its unlock, touching nothing of the once then (L1,
 * L2); whoever sees DONE without the lock settles on q's lock before
 * returning (L4). A waiter whose wait had ended (timeout, cancellation) as
 * DONE came cannot be claimed: it is dropped and returns its error.
 */
#include "internal.h"

enum { ONCE_NEW = 0, ONCE_RUNNING = 1, ONCE_DONE = 2 };

int weft_once_init(weft_once_t *once)
{
	if (!once)
		return -EINVAL;
	*once = (weft_once_t)WEFT_ONCE_INIT;
	return 0;
}

/* o: a stackless task's op, where it registers instead of parking. */
static int once_run(weft_once_t *once, void (*fn)(void *), void *arg, weft_time_t deadline, weft__sync_op *o)
{
	_Atomic uint32_t *st = WEFT__A32(&once->state);
	uint32_t s = atomic_load_explicit(st, memory_order_acquire);
	if (likely(s == ONCE_DONE)) {
		weft__sync_settle(&once->q);
		return 0;
	}
	uint64_t self = weft__sync_self();
	if (s == ONCE_NEW &&
	    atomic_compare_exchange_strong_explicit(st, &s, ONCE_RUNNING, memory_order_acquire, memory_order_acquire)) {
		atomic_store_explicit(WEFT__A64(&once->runner), self, memory_order_relaxed);
		fn(arg);
		weft__sync_wakes wk = WEFT__SYNC_WAKES_INIT;
		weft_waitq_lock(&once->q);
		atomic_store_explicit(st, ONCE_DONE, memory_order_release);
		weft_waitq_node_t *n;
		unsigned dropped = 0; /* (no count of waiters to keep) */
		while ((n = weft__sync_claim(&once->q, &dropped)) != NULL)
			weft__sync_give(&wk, n, WEFT__SYNC_GRANTED);
		weft_waitq_unlock(&once->q);
		weft__sync_wake(&wk);
		return 0;
	}
	if (s == ONCE_DONE) {
		weft__sync_settle(&once->q);
		return 0;
	}
	if (atomic_load_explicit(WEFT__A64(&once->runner), memory_order_relaxed) == self)
		return -EDEADLK;
	if (deadline != WEFT_NEVER && weft_now() >= deadline)
		return -ETIMEDOUT;
	int r = o ? 0 : weft__sync_can_park();
	if (r)
		return r;
	weft_waitq_lock(&once->q);
	if (atomic_load_explicit(st, memory_order_acquire) == ONCE_DONE) {
		weft_waitq_unlock(&once->q);
		return 0;
	}
	weft_waitq_node_t local;
	weft_waitq_node_t *n = o ? &o->n : &local;
	weft_waitq_push(&once->q, n);
	weft_waitq_unlock(&once->q);
	if (o)
		return weft__sync_step_park(o, deadline);
	r = weft__sync_wait(&once->q, &once->q, n, deadline, NULL, NULL);
	return r < 0 ? r : 0;
}

int weft_once_until(weft_once_t *once, void (*fn)(void *), void *arg, weft_time_t deadline)
{
	if (!once || !fn)
		return -EINVAL;
	return once_run(once, fn, arg, deadline, NULL);
}

int weft_once(weft_once_t *once, void (*fn)(void *), void *arg)
{
	return weft_once_until(once, fn, arg, WEFT_NEVER);
}

int weft_once_step(weft_once_t *once, void (*fn)(void *), void *arg, weft_time_t deadline, weft_op_t *op)
{
	if (!once || !fn || !op)
		return -EINVAL;
	int b = weft_step_begin(op, WEFT__SYNC_ONCE, once);
	if (b < 0)
		return b;
	weft__sync_op *o = (weft__sync_op *)op;
	if (b == 1) {
		int r = weft__sync_woke(&once->q, &once->q, &o->n, weft_park_result(), NULL, NULL);
		return r < 0 ? r : 0;
	}
	return once_run(once, fn, arg, deadline, weft_can_park() ? NULL : o);
}
