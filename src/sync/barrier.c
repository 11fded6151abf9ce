/* barrier.c - reusable barriers.
 *
 * Everything happens under q's lock: `arrived` counts the waiters of the
 * current generation, which are exactly the queued, not withdrawn nodes of
 * q. The n-th arrival resets `arrived`, pops and releases every node (that
 * ends the generation: the pop is the delivery, so a waiter timing out at
 * that moment still passes) and returns 1; nobody else can return 1 for
 * that generation. Arrivals after it start the next generation on the same
 * (now empty) queue. A waiter that times out or is cancelled while still
 * queued withdraws and uncounts itself in one critical section, so a
 * generation never completes with a task that has left it.
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

/* Under q's lock: a waiter gives up. */
static void barrier_withdraw(void *ctx)
{
	weft_barrier_t *b = ctx;
	assert(b->arrived > 0);
	b->arrived--;
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
		b->arrived = 0;
		weft_waitq_node_t *n;
		while ((n = weft__sync_pop(&b->q)) != NULL)
			weft__sync_deliver(n, WEFT__SYNC_GRANTED);
		weft_waitq_unlock(&b->q);
		return 1;
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
	r = weft__sync_wait(&b->q, &b->q, n, deadline, barrier_withdraw, b);
	return r < 0 ? r : 0;
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
	if (bg == 1) {
		int r = weft__sync_woke(&b->q, &b->q, &o->n, weft_park_result(), barrier_withdraw, b);
		return r < 0 ? r : 0;
	}
	return barrier_wait(b, deadline, weft_can_park() ? NULL : o);
}
