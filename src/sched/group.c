/* group.c - task groups: wait for all members; optionally cancel the rest on
 * the first failure.
 *
 * A group keeps its member ids (ids are never reused, so cancelling one that
 * has finished is a harmless -ESRCH), a count of running members and the
 * first failure, all under one spinlock-protected wait queue's lock. Members
 * are spawned detached: the group, not a joiner, collects their results.
 */
#include "internal.h"

#include <stdlib.h>

struct weft_group {
	weft_waitq_t waiters; /* its lock protects everything below */
	weft_task_t *ids;
	size_t nids, cap;
	size_t running;
	int first_error;
	bool cancel_on_error;
	bool cancelling;
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

int weft__group_add(weft_group_t *g, weft_task *t)
{
	weft_waitq_lock(&g->waiters);
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


/* Outside the group's lock; g itself may be gone by now, so only the
 * copied ids are used (each names its runtime). */
static void cancel_members(weft_task_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		weft_task *t = weft__task_get(ids[i]);
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

int weft_group_wait_until(weft_group_t *g, weft_time_t deadline)
{
	if (!g)
		return -EINVAL;
	for (;;) {
		weft_waitq_lock(&g->waiters);
		if (g->running == 0) {
			int e = g->first_error;
			weft_waitq_unlock(&g->waiters);
			return e;
		}
		if (deadline != WEFT_NEVER && deadline <= weft_now()) {
			weft_waitq_unlock(&g->waiters);
			return -ETIMEDOUT; /* a past deadline polls */
		}
		if (!weft_can_park()) {
			weft_waitq_unlock(&g->waiters);
			return -EPERM; /* a stackless task would have to wait */
		}
		weft_waitq_node_t n;
		weft_waitq_push(&g->waiters, &n);
		weft_waitq_unlock(&g->waiters);
		int r = weft__park_on(n.waker, deadline, WEFT_WAIT_GROUP);
		if (r != 0 && weft_waitq_remove(&g->waiters, &n))
			return r;
	}
}

int weft_group_cancel(weft_group_t *g)
{
	if (!g)
		return -EINVAL;
	weft_waitq_lock(&g->waiters);
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
	bool busy = g->running != 0 || g->waiters.head != NULL;
	weft_waitq_unlock(&g->waiters);
	if (busy)
		return -EBUSY;
	free(g->ids);
	free(g);
	return 0;
}
