/* sem.c - counting semaphores with FIFO waiters.
 *
 * State word: permits << 1 | WAIT, WAIT meaning "tasks are queued". While
 * WAIT is clear, acquire takes a permit with one CAS and release adds its
 * permits with one CAS. Once anyone queues, both go through q's lock:
 * newcomers queue behind the waiters (no barging, hence FIFO), and release
 * hands permits to the waiters in queue order, adding to the count only
 * what is left when the queue is empty (and clearing WAIT in the same CAS).
 *
 * Invariants, whenever q's lock is free:
 *  (1) nwait == the queued, not withdrawn nodes of q, and WAIT == (nwait > 0);
 *  (2) WAIT implies permits == 0: a waiter sets WAIT only by a CAS that sees
 *      no permit, and permits are added only while WAIT is clear or in the
 *      CAS that clears it.
 * So a permit is never lost (it is either counted or handed to a waiter
 * whose wait the release claimed as it counted it out; a waiter whose wait
 * had ended - timeout, cancellation - cannot be claimed, is dropped and
 * counted out, and the permit goes to the next one) and never made up
 * (every acquire takes one from the count or from a release).
 * No lost wake-up: the same argument as in waitgroup.c, with "permits > 0"
 * in place of "count == 0".
 * Lifetime (internal.h): either side may free the semaphore the moment its
 * call returns. A release with waiters claims them, hands out permits and
 * adds what is left under q's lock, and wakes the claimed ones after
 * unlocking, touching nothing of the semaphore then (L1, L2); an acquire
 * that took a permit without the lock settles on q's lock before returning
 * (L4): the permit may have been left by a release still holding it.
 */
#include "internal.h"

#define SEM_WAIT 1u
#define SEM_ONE 2u
#define SEM_COUNT(s) ((s) >> 1)

static inline _Atomic uint64_t *sem_state(weft_sem_t *s)
{
	return WEFT__A64(&s->state);
}

int weft_sem_init(weft_sem_t *s, unsigned value)
{
	if (!s || value > WEFT_SEM_MAX)
		return -EINVAL;
	*s = (weft_sem_t)WEFT_SEM_INIT(value);
	return 0;
}

int weft_sem_destroy(weft_sem_t *s)
{
	if (!s)
		return -EINVAL;
	weft_waitq_lock(&s->q);
	bool busy = s->nwait != 0 || s->q.len != 0;
	weft_waitq_unlock(&s->q);
	return busy ? -EBUSY : 0;
}

unsigned weft_sem_value(const weft_sem_t *s)
{
	if (!s)
		return 0;
	return (unsigned)SEM_COUNT(atomic_load_explicit(WEFT__A64(&s->state), memory_order_relaxed));
}

int weft_sem_try_acquire(weft_sem_t *s)
{
	if (!s)
		return -EINVAL;
	_Atomic uint64_t *st = sem_state(s);
	uint64_t v = atomic_load_explicit(st, memory_order_relaxed);
	do {
		if ((v & SEM_WAIT) || SEM_COUNT(v) == 0)
			return -EAGAIN;
	} while (!atomic_compare_exchange_weak_explicit(st, &v, v - SEM_ONE, memory_order_acquire,
							memory_order_relaxed));
	/* The permit may have been left by a release still holding q's lock. */
	weft__sync_settle(&s->q);
	return 0;
}

/* Under q's lock: a waiter gives up. */
static void sem_withdraw(void *ctx)
{
	weft_sem_t *s = ctx;
	if (--s->nwait == 0)
		atomic_fetch_and_explicit(sem_state(s), ~(uint64_t)SEM_WAIT, memory_order_relaxed);
}

/* o: a stackless task's op, where it registers instead of parking. */
static int sem_acquire(weft_sem_t *s, weft_time_t deadline, weft__sync_op *o)
{
	int r = weft_sem_try_acquire(s);
	if (r != -EAGAIN)
		return r;
	if (deadline != WEFT_NEVER && weft_now() >= deadline)
		return -ETIMEDOUT;
	if (!o && (r = weft__sync_can_park()) != 0)
		return r;
	_Atomic uint64_t *st = sem_state(s);
	weft_waitq_lock(&s->q);
	uint64_t v = atomic_load_explicit(st, memory_order_relaxed);
	for (;;) {
		if (!(v & SEM_WAIT) && SEM_COUNT(v) > 0) {
			if (atomic_compare_exchange_weak_explicit(st, &v, v - SEM_ONE, memory_order_acquire,
								  memory_order_relaxed)) {
				weft_waitq_unlock(&s->q);
				return 0;
			}
			continue;
		}
		if ((v & SEM_WAIT) || atomic_compare_exchange_weak_explicit(st, &v, v | SEM_WAIT, memory_order_relaxed,
									    memory_order_relaxed))
			break;
	}
	s->nwait++;
	weft_waitq_node_t local;
	weft_waitq_node_t *n = o ? &o->n : &local;
	weft_waitq_push(&s->q, n);
	weft_waitq_unlock(&s->q);
	if (o)
		return weft__sync_step_park(o, deadline);
	r = weft__sync_wait(&s->q, &s->q, n, deadline, sem_withdraw, s);
	return r < 0 ? r : 0;
}

int weft_sem_acquire_until(weft_sem_t *s, weft_time_t deadline)
{
	return sem_acquire(s, deadline, NULL);
}

int weft_sem_acquire(weft_sem_t *s)
{
	return sem_acquire(s, WEFT_NEVER, NULL);
}

int weft_sem_acquire_step(weft_sem_t *s, weft_time_t deadline, weft_op_t *op)
{
	if (!s || !op)
		return -EINVAL;
	int b = weft_step_begin(op, WEFT__SYNC_SEM_ACQUIRE, s);
	if (b < 0)
		return b;
	weft__sync_op *o = (weft__sync_op *)op;
	if (b == 1) {
		int r = weft__sync_woke(&s->q, &s->q, &o->n, weft_park_result(), sem_withdraw, s);
		return r < 0 ? r : 0;
	}
	return sem_acquire(s, deadline, weft_can_park() ? NULL : o);
}

int weft_sem_release(weft_sem_t *s, unsigned n)
{
	if (!s)
		return -EINVAL;
	if (n > WEFT_SEM_MAX)
		return -EOVERFLOW;
	if (n == 0)
		return 0;
	_Atomic uint64_t *st = sem_state(s);
	uint64_t v = atomic_load_explicit(st, memory_order_relaxed);
	for (;;) {
		while (!(v & SEM_WAIT)) {
			if (SEM_COUNT(v) + n > WEFT_SEM_MAX)
				return -EOVERFLOW;
			if (atomic_compare_exchange_weak_explicit(st, &v, v + (uint64_t)n * SEM_ONE,
								  memory_order_release, memory_order_relaxed))
				return 0;
		}
		weft_waitq_lock(&s->q);
		if (s->nwait > 0)
			break;
		/* The waiters left (and cleared WAIT) since we looked: retry. */
		weft_waitq_unlock(&s->q);
		v = atomic_load_explicit(st, memory_order_relaxed);
	}
	/* Waiters queued: the count is zero (invariant (2)), so the rest of n
	 * cannot overflow it. */
	weft__sync_wakes wk = WEFT__SYNC_WAKES_INIT;
	while (n > 0 && s->nwait > 0) {
		unsigned dropped = 0;
		weft_waitq_node_t *w = weft__sync_claim(&s->q, &dropped);
		assert(dropped <= s->nwait);
		s->nwait -= dropped;
		if (!w) {
			assert(s->nwait == 0); /* invariant (1) */
			break;
		}
		s->nwait--;
		n--;
		weft__sync_give(&wk, w, WEFT__SYNC_GRANTED);
	}
	if (s->nwait == 0) {
		v = atomic_load_explicit(st, memory_order_relaxed);
		assert(SEM_COUNT(v) == 0 && (v & SEM_WAIT));
		while (!atomic_compare_exchange_weak_explicit(st, &v, (v & ~(uint64_t)SEM_WAIT) + (uint64_t)n * SEM_ONE,
							      memory_order_release, memory_order_relaxed))
			;
	}
	weft_waitq_unlock(&s->q);
	weft__sync_wake(&wk);
	return 0;
}
