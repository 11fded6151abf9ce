/* cond.c - condition variables on weft_mutex_t.
 *
 * A waiter links its node on the condition's queue *before* it releases the
 * mutex. A signaller changes the predicate under the mutex and then pops,
 * so it either finds the waiter's node or ran before the waiter took the
 * mutex (and the waiter then sees the new predicate): no signal falls
 * between "release the mutex" and "park". signal claims one waiter and
 * broadcast every one (internal.h), marking each GRANTED, and wakes them
 * after the unlock of the queue. A waiter whose wait had ended (timeout,
 * cancellation) cannot be claimed: signal drops it and takes the next, so
 * a signal is never swallowed by a waiter that is leaving. A waiter that
 * finds its node still queued withdraws it (see internal.h).
 *
 * Lifetime (internal.h): the condition may be destroyed by a signaller the
 * moment its signal or broadcast returns - the woken waiters touch it no
 * more (L2), only their mutex - and by a waiter once its wait returned: the
 * signaller's last touch was the unlock of the queue (L1).
 *
 * After the wait the mutex is reacquired whatever happened, the way any
 * locker takes it: queued on the mutex when it is taken, parked until its
 * turn. A cancelled task does the same with an uncancellable wait
 * (weft__mutex_lock's nocancel), so it neither fails to get the mutex back
 * nor spins for it. A deadline already past returns -ETIMEDOUT before
 * anything is released: nothing could signal the waiter in between that it
 * may not miss.
 *
 * A stackless waiter (weft_cond_wait_step) registers in one op, one wait
 * at a time: first for the signal (COND_SIGNAL), then, as long as the mutex
 * is taken, on the mutex (COND_MUTEX: the mutex's own step path,
 * weft__mutex_lock_step, uncancellable as above). The op keeps which, and
 * the signal wait's result, returned once the mutex is back.
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
	/* Uncancellable and without a deadline, this lock ends only with m
	 * held; a plain thread that cannot get a parker (-ENOMEM: no memory)
	 * tries again. */
	int lr;
	while ((lr = weft__mutex_lock(m, self, WEFT_NEVER, true)) != 0) {
		assert(lr == -ENOMEM && !weft_self());
		weft_yield();
	}
	return r;
}

int weft_cond_wait(weft_cond_t *c, weft_mutex_t *m)
{
	return weft_cond_wait_until(c, m, WEFT_NEVER);
}

enum { COND_SIGNAL = 1, COND_MUTEX };

/* The stackless reacquisition of m, o's signal wait over (its result in
 * o->result): resumed, the repeat of a registration on m. The lock is
 * uncancellable and has no deadline: it completes with m held or registers
 * on m, in a cancelled task too. */
static int cond_relock(weft_mutex_t *m, uint64_t self, weft__sync_op *o, bool resumed)
{
	int r = weft__mutex_lock_step(m, self, WEFT_NEVER, o, resumed, true);
	if (r == -EINPROGRESS) {
		o->phase = COND_MUTEX;
		return r;
	}
	/* 0, or -EDEADLK: the caller took m itself meanwhile (its own
	 * try-lock while the wait was registered). Either way it holds m, as
	 * the call promises on return. */
	assert(r == 0 || r == -EDEADLK);
	(void)r;
	return -(int)o->result;
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
		default:
			assert(o->phase == COND_MUTEX);
			return cond_relock(m, self, o, true);
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
	weft__sync_wakes wk = WEFT__SYNC_WAKES_INIT;
	unsigned dropped = 0; /* (no count of waiters to keep) */
	weft_waitq_lock(&c->q);
	weft_waitq_node_t *n = weft__sync_claim(&c->q, &dropped);
	if (n)
		weft__sync_give(&wk, n, WEFT__SYNC_GRANTED);
	weft_waitq_unlock(&c->q);
	weft__sync_wake(&wk);
	return n != NULL;
}

int weft_cond_broadcast(weft_cond_t *c)
{
	if (!c)
		return -EINVAL;
	int woke = 0;
	weft__sync_wakes wk = WEFT__SYNC_WAKES_INIT;
	unsigned dropped = 0;
	weft_waitq_lock(&c->q);
	weft_waitq_node_t *n;
	while ((n = weft__sync_claim(&c->q, &dropped)) != NULL) {
		weft__sync_give(&wk, n, WEFT__SYNC_GRANTED);
		woke++;
	}
	weft_waitq_unlock(&c->q);
	weft__sync_wake(&wk);
	return woke;
}
