/* group.c - task groups: wait for all members; optionally cancel the rest on
 * the first failure.
 *
 * A group keeps its member ids (ids are never reused, so cancelling one that
 * has finished is a harmless -ESRCH), a count of running members and the
 * first failure, all under one spinlock-protected wait queue's lock. Members
 * are spawned detached: the group, not a joiner, collects their results.
 *
 * Waiters queue on that wait queue; the last member to end wakes them all
 * under the lock, and a waiter returns only after taking the lock again
 * (group_queue), so the group may be destroyed the moment a wait returns.
 * A stackless waiter (weft_group_wait_step) keeps its node in its op and
 * registers where a coroutine parks; its repeat does what the coroutine
 * does after the park.
 *
 * Simulation: a sim's tasks are its owner thread's alone (sim.c), and so
 * is a group while it has running members of a sim: g->sim names that sim
 * (NULL when no member is of one). While members run, they are all of
 * g->sim's runtime, or none is of a sim: a spawn that would mix them is
 * refused (-EPERM), so a member's end never wakes or cancels across the
 * sim's boundary. Every call on a group bound to a live sim from a thread
 * that does not own it returns -EPERM and changes nothing (a cancel from
 * there used to cancel nothing and return 0: weft__task_get refuses each
 * member, silently).
 */
#include "internal.h"

#include <assert.h>
#include <stdlib.h>

struct weft_group {
	weft_waitq_t waiters; /* its lock protects everything below */
	weft_task_t *ids;
	size_t nids, cap;
	size_t running;
	int first_error;
	bool cancel_on_error;
	bool cancelling;
	struct weft_runtime *sim; /* the sim of its members, NULL if none is of a sim (see the top) */
};

int weft_group_create(weft_group_t **out, bool cancel_on_error)
{
	if (!out)
		return -EINVAL;
	weft_group_t *g = calloc(1, sizeof *g);
	if (!g)
		return -ENOMEM;
	weft_waitq_init(&g->waiters);
	g->cancel_on_error = cancel_on_error;
	*out = g;
	return 0;
}

/* Under g's lock: whether the caller must be refused g (see the top). */
static bool group_foreign(weft_group_t *g)
{
	return g->sim && weft__sim_foreign(g->sim);
}

int weft__group_add(weft_group_t *g, weft_task *t)
{
	struct weft_runtime *rt = weft__task_rt(t);
	struct weft_runtime *sim = rt->sim ? rt : NULL;
	weft_waitq_lock(&g->waiters);
	if ((g->running > 0 && g->sim != sim) || group_foreign(g)) {
		weft_waitq_unlock(&g->waiters);
		return -EPERM; /* a sim's members with others', or a sim's group from outside it */
	}
	g->sim = sim;
	if (g->nids == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 16;
		weft_task_t *n = realloc(g->ids, cap * sizeof *n);
		if (!n) {
			weft_waitq_unlock(&g->waiters);
			return -ENOMEM;
		}
		g->ids = n;
		g->cap = cap;
	}
	g->ids[g->nids++] = atomic_load_explicit(&t->id, memory_order_relaxed);
	g->running++;
	if (g->cancelling)
		atomic_fetch_or(&t->flags, WEFT_TF_CANCELLED);
	weft_waitq_unlock(&g->waiters);
	return 0;
}

_Atomic(void (*)(weft_group_t *g)) weft__group_spawn_hook;

void weft__group_published(weft_group_t *g, weft_task *t)
{
	/* Under the lock: a cancel's section either came before this one (we
	 * see cancelling) or comes after, and then its lookups come after our
	 * publication and find the record. */
	weft_waitq_lock(&g->waiters);
	if (g->cancelling)
		atomic_fetch_or(&t->flags, WEFT_TF_CANCELLED);
	weft_waitq_unlock(&g->waiters);
}

/* Outside the group's lock; g itself may be gone by now, so only the
 * copied ids are used (each names its runtime). */
static void cancel_members(weft_task_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		weft_task *t = weft__task_get(ids[i], NULL);
		if (t) {
			weft__task_cancel(t);
			weft__task_put(t);
		}
	}
}

void weft__group_done(weft_group_t *g, weft_task *t)
{
	intptr_t r = (intptr_t)t->result;
	bool failed = r < 0 && r >= -4095;
	weft_waitq_lock(&g->waiters);
	/* A running member: all are of g->sim, or none is of a sim. */
	assert(g->running > 0 && g->sim == (weft__task_rt(t)->sim ? weft__task_rt(t) : NULL));
	bool cancel_now = false;
	if (failed && g->first_error == 0) {
		g->first_error = (int)r;
		if (g->cancel_on_error && !g->cancelling)
			cancel_now = g->cancelling = true;
	}
	bool last = --g->running == 0;
	/* Copy the ids to cancel outside the lock (cancelling takes other locks). */
	weft_task_t *ids = NULL;
	size_t n = 0;
	if (cancel_now && !last) {
		ids = malloc(g->nids * sizeof *ids);
		if (ids) {
			n = g->nids;
			for (size_t i = 0; i < n; i++)
				ids[i] = g->ids[i];
		}
	}
	weft_waitq_node_t *w;
	while (last && (w = weft_waitq_pop(&g->waiters)) != NULL)
		weft_unpark(w->waker, 0);
	weft_waitq_unlock(&g->waiters);
	if (ids) {
		cancel_members(ids, n);
		free(ids);
	}
}

int weft_group_wait(weft_group_t *g)
{
	return weft_group_wait_until(g, WEFT_NEVER);
}

/* Whether g's members have all ended (then *res: the first failure, or 0),
 * the deadline has passed (*res -ETIMEDOUT: a past deadline polls), or the
 * caller may not wait (*res -EPERM); else n is queued for the last member's
 * wake-up. Only a waiter that has taken the lock after its wake-up returns,
 * so group_done's wake (under the lock) is over by then, and the group
 * may be destroyed at once. */
static bool group_queue(weft_group_t *g, weft_time_t deadline, weft_waitq_node_t *n, bool step, int *res)
{
	bool queued = false;
	weft_waitq_lock(&g->waiters);
	if (group_foreign(g))
		*res = -EPERM;
	else if (g->running == 0)
		*res = g->first_error;
	else if (deadline != WEFT_NEVER && deadline <= weft_now())
		*res = -ETIMEDOUT;
	else if (!step && !weft_can_park())
		*res = -EPERM; /* a stackless task: weft_group_wait_step */
	else {
		weft_waitq_push(&g->waiters, n);
		queued = true;
	}
	weft_waitq_unlock(&g->waiters);
	return queued;
}

int weft_group_wait_until(weft_group_t *g, weft_time_t deadline)
{
	if (!g)
		return -EINVAL;
	for (;;) {
		weft_waitq_node_t n;
		int res;
		if (!group_queue(g, deadline, &n, false, &res))
			return res;
		int r = weft__park_on(n.waker, deadline, WEFT_WAIT_GROUP);
		if (r != 0 && weft_waitq_remove(&g->waiters, &n))
			return r;
	}
}

/* A stackless waiter's op: its call's id (first: weft_step_begin), and its
 * node, queued from the call that registers to the repeat. */
typedef struct group_op {
	uint8_t call;
	weft_waitq_node_t n;
} group_op;
_Static_assert(sizeof(group_op) <= sizeof(((weft_op_t *)0)->opaque), "weft_op_t too small (its obj is the protocol's)");

int weft_group_wait_step(weft_group_t *g, weft_time_t deadline, weft_op_t *op)
{
	if (!g || !op)
		return -EINVAL;
	int b = weft_step_begin(op, WEFT__STEP_GROUP_WAIT, g);
	if (b < 0)
		return b;
	group_op *o = (group_op *)op;
	if (b == 1) {
		/* As after weft_group_wait_until's park. */
		int r = weft_park_result();
		if (r != 0 && weft_waitq_remove(&g->waiters, &o->n))
			return r;
	} else if (weft_can_park()) { /* a coroutine or a plain thread */
		return weft_group_wait_until(g, deadline);
	}
	int res;
	if (!group_queue(g, deadline, &o->n, true, &res))
		return res;
	if (deadline != WEFT_NEVER && weft_park_deadline(o->n.waker, deadline) != 0)
		weft_unpark(o->n.waker, -ENOMEM); /* no timer: the repeat gives up */
	return weft_step_register(op);
}

int weft_group_cancel(weft_group_t *g)
{
	if (!g)
		return -EINVAL;
	weft_waitq_lock(&g->waiters);
	if (group_foreign(g)) {
		weft_waitq_unlock(&g->waiters);
		return -EPERM;
	}
	g->cancelling = true;
	size_t n = g->nids;
	weft_task_t *ids = n ? malloc(n * sizeof *ids) : NULL;
	if (n && !ids) {
		weft_waitq_unlock(&g->waiters);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		ids[i] = g->ids[i];
	weft_waitq_unlock(&g->waiters);
	cancel_members(ids, n);
	free(ids);
	return 0;
}

int weft_group_destroy(weft_group_t *g)
{
	if (!g)
		return -EINVAL;
	weft_waitq_lock(&g->waiters);
	bool foreign = group_foreign(g);
	bool busy = g->running != 0 || g->waiters.head != NULL;
	weft_waitq_unlock(&g->waiters);
	if (foreign)
		return -EPERM;
	if (busy)
		return -EBUSY;
	free(g->ids);
	free(g);
	return 0;
}
