/* cond.c - condition variables on weft_mutex_t.
 *
 * A waiter links its node on the condition's queue *before* it releases the
 * mutex. A signaller changes the predicate under the mutex and then pops,
 * so it either finds the waiter's node or ran before the waiter took the
 * mutex (and the waiter then sees the new predicate): no signal falls
 * between "release the mutex" and "park". signal pops one node and
 * broadcast all of them, marking each GRANTED before the unpark; a waiter
 * whose park timed out or was cancelled just then finds its node popped and
 * reports the signal (0), so a signal is never swallowed by a waiter that
 * is leaving. One that finds its node still queued withdraws it (see
 * internal.h), so signals skip it.
 *
 * After the wait the mutex is reacquired whatever happened. A cancelled
 * task cannot park any more (every wait it opens ends at once), so it
 * reacquires by retrying the lock between yields; in starvation mode that
 * lasts until the queue ahead of it drains. A deadline already past
 * returns -ETIMEDOUT before anything is released: nothing could signal
 * the waiter in between that it may not miss.
 *
 * A stackless waiter (weft_cond_wait_step) registers twice at most per
 * wait, one wait at a time, in one op: first for the signal (COND_SIGNAL),
 * then, if the mutex is taken, for the mutex (COND_MUTEX: the mutex's own
 * step path, weft__mutex_lock_step) - or, cancelled, for a retry
 * (COND_RETRY, its yield). The op keeps which, and the signal wait's
 * result, returned once the mutex is back.
 */
#include "internal.h"

int weft_cond_init(weft_cond_t *c)
{
	if (!c)
		return -EINVAL;
	*c = (weft_cond_t)WEFT_COND_INIT;
	return 0;
}

int weft_cond_destroy(weft_cond_t *c)
{
	if (!c)
		return -EINVAL;
	weft_waitq_lock(&c->q);
	bool busy = c->q.len != 0;
	weft_waitq_unlock(&c->q);
	return busy ? -EBUSY : 0;
}

int weft_cond_wait_until(weft_cond_t *c, weft_mutex_t *m, weft_time_t deadline)
{
	if (!c || !m)
		return -EINVAL;
	uint64_t self = weft__sync_self();
	if (atomic_load_explicit(WEFT__A64(&m->owner), memory_order_relaxed) != self)
		return -EPERM;
	if (deadline != WEFT_NEVER && weft_now() >= deadline)
		return -ETIMEDOUT;
	int r = weft__sync_can_park();
	if (r) /* a stackless task: a past deadline polls (m stays held), any other would be waited for */
		return deadline != WEFT_NEVER && deadline <= weft_now() ? -ETIMEDOUT : r;
	weft_waitq_node_t n;
	weft_waitq_lock(&c->q);
	weft_waitq_push(&c->q, &n);
	weft_waitq_unlock(&c->q);
	weft__mutex_unlock(m);
	r = weft__sync_wait(&c->q, &c->q, &n, deadline, NULL, NULL);
	if (r > 0)
		r = 0;
	while (weft__mutex_lock(m, self, WEFT_NEVER) != 0) {
		assert(weft_cancelled());
		weft_yield();
	}
	return r;
}

int weft_cond_wait(weft_cond_t *c, weft_mutex_t *m)
{
	return weft_cond_wait_until(c, m, WEFT_NEVER);
}

enum { COND_SIGNAL = 1, COND_MUTEX, COND_RETRY };

/* The stackless reacquisition of m, o's signal wait over (its result in
 * o->result): resumed, the repeat of a registration on m. */
static int cond_relock(weft_mutex_t *m, uint64_t self, weft__sync_op *o, bool resumed)
{
	int r = weft__mutex_lock_step(m, self, WEFT_NEVER, o, resumed);
	if (r == -EINPROGRESS) {
		o->phase = COND_MUTEX;
		return r;
	}
	if (r == 0)
		return -(int)o->result;
	/* The caller took m itself meanwhile (its own try-lock while the wait
	 * was registered): it holds m, as the call promises on return. */
	if (r == -EDEADLK)
		return -(int)o->result;
	/* A cancelled task cannot wait for m: try again after a yield. */
	assert(r == -ECANCELED && weft_cancelled());
	o->phase = COND_RETRY;
	return weft_step_retry((weft_op_t *)o);
}

int weft_cond_wait_step(weft_cond_t *c, weft_mutex_t *m, weft_time_t deadline, weft_op_t *op)
{
	if (!c || !m || !op)
		return -EINVAL;
	int b = weft_step_begin(op, WEFT__SYNC_COND_WAIT, c);
	weft__sync_op *o = (weft__sync_op *)op;
	if (b == -EINPROGRESS && o->n.data != (void *)m)
		return -EBUSY; /* registered on c with another mutex */
	if (b < 0)
		return b;
	if (b == WEFT_STEP_BLOCKS) /* a coroutine or a plain thread */
		return weft_cond_wait_until(c, m, deadline);
	if (b == 1 && o->n.data != (void *)m) {
		/* The registered wait is on c with another mutex: another call.
		 * Keep it registered (its wait has ended; the right repeat
		 * finishes it) and refuse this one. */
		int r = weft_step_register(op);
		assert(r == -EINPROGRESS);
		(void)r;
		return -EBUSY;
	}
	uint64_t self = weft__sync_self();
	if (b == 1) {
		switch (o->phase) {
		case COND_SIGNAL: {
			int r = weft__sync_woke(&c->q, &c->q, &o->n, weft_park_result(), NULL, NULL);
			/* 0, or a wait's result: one byte of the wait's state (sched.h). */
			assert(r > 0 || r >= -255);
			o->result = (uint8_t)(r > 0 ? 0 : -r);
			return cond_relock(m, self, o, false);
		}
		case COND_MUTEX:
			return cond_relock(m, self, o, true);
		default:
			assert(o->phase == COND_RETRY);
			return cond_relock(m, self, o, false);
		}
	}
	if (atomic_load_explicit(WEFT__A64(&m->owner), memory_order_relaxed) != self)
		return -EPERM;
	if (deadline != WEFT_NEVER && weft_now() >= deadline)
		return -ETIMEDOUT;
	o->n.data = m;
	weft_waitq_lock(&c->q);
	weft_waitq_push(&c->q, &o->n);
	weft_waitq_unlock(&c->q);
	weft__mutex_unlock(m);
	o->phase = COND_SIGNAL;
	return weft__sync_step_park(o, deadline);
}

int weft_cond_signal(weft_cond_t *c)
{
	if (!c)
		return -EINVAL;
	weft_waitq_lock(&c->q);
	weft_waitq_node_t *n = weft__sync_pop(&c->q);
	if (n)
		weft__sync_deliver(n, WEFT__SYNC_GRANTED);
	weft_waitq_unlock(&c->q);
	return n != NULL;
}

int weft_cond_broadcast(weft_cond_t *c)
{
	if (!c)
		return -EINVAL;
	int woke = 0;
	weft_waitq_lock(&c->q);
	weft_waitq_node_t *n;
	while ((n = weft__sync_pop(&c->q)) != NULL) {
		weft__sync_deliver(n, WEFT__SYNC_GRANTED);
		woke++;
	}
	weft_waitq_unlock(&c->q);
	return woke;
}
