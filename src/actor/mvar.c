/* mvar.c - MVars: a shared value behind sync's mutex.
 *
 * The lock is a weft_mutex_t (src/sync/mutex.c: Go's design): waiters of
 * every kind are parked, never spinning a worker for long, and woken one
 * at a time in FIFO order; a caller that finds the lock free may take it
 * ahead of a woken waiter (that is what makes a hot lock cheap: its holder
 * can take it again in its own cache), until a waiter has waited over
 * 1 ms, when the mutex hands it over in strict FIFO order. Readers take the
 * same lock for the time of a copy: reads are short, and one lock keeps
 * the fast path one atomic operation.
 *
 * Ownership is the mutex's: it knows its holder (its -EPERM and -EDEADLK,
 * and weft_mutex_held for get, set and the holder's own reads), so the
 * MVar adds nothing to a lock or an unlock but one flag in a process
 * (`used_mvars`, set at its first lock). A process that ends with the flag
 * set has every MVar it still holds unlocked for its task at its death
 * (wa_mvar_release: a walk of every MVar, weft_mutex_unlock_for, which
 * refuses those its task does not hold).
 */
#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <weft/sync.h>

#include "internal.h"

/* The mutex (56 bytes) and a value of up to 8 bytes share one cache line,
 * so a holder that changes a small value in place moves one line between
 * cores, not two; a larger value lives in its own allocation. */
#define MV_SMALL 8
struct weft_mvar {
	alignas(64) weft_mutex_t m;
	alignas(8) unsigned char small[MV_SMALL];
	void *value; /* small, or malloc'd */
	size_t len;
	char name[WEFT_NAME_MAX + 1];
	struct weft_mvar *next, *prev; /* every MVar, under all_lock */
};

static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct weft_mvar *all;

static inline bool mine(weft_mvar_t *mv)
{
	return weft_mutex_held(&mv->m) == 1;
}

int weft_mvar_create(weft_mvar_t **out, const char *name, const void *value, size_t len)
{
	if (!out || (len && !value) || (name && !wa_name_ok(name)))
		return -EINVAL;
	if (len > WEFT_MSG_MAX)
		return -EMSGSIZE;
	weft_mvar_t *mv = aligned_alloc(64, sizeof *mv);
	if (!mv)
		return -ENOMEM;
	memset(mv, 0, sizeof *mv);
	weft_mutex_init(&mv->m);
	mv->value = len <= MV_SMALL ? mv->small : malloc(len);
	if (!mv->value) {
		free(mv);
		return -ENOMEM;
	}
	if (len)
		memcpy(mv->value, value, len);
	mv->len = len;
	pthread_mutex_lock(&all_lock);
	if (name) {
		for (weft_mvar_t *o = all; o; o = o->next)
			if (strcmp(o->name, name) == 0) {
				pthread_mutex_unlock(&all_lock);
				if (mv->value != mv->small)
					free(mv->value);
				free(mv);
				return -EEXIST;
			}
		strcpy(mv->name, name);
	}
	mv->next = all;
	if (all)
		all->prev = mv;
	all = mv;
	pthread_mutex_unlock(&all_lock);
	*out = mv;
	return 0;
}

int weft_mvar_destroy(weft_mvar_t *mv)
{
	if (!mv)
		return -EINVAL;
	pthread_mutex_lock(&all_lock);
	int e = weft_mutex_destroy(&mv->m); /* -EBUSY while held or waited for */
	if (e) {
		pthread_mutex_unlock(&all_lock);
		return e;
	}
	if (mv->prev)
		mv->prev->next = mv->next;
	else
		all = mv->next;
	if (mv->next)
		mv->next->prev = mv->prev;
	pthread_mutex_unlock(&all_lock);
	if (mv->value != mv->small)
		free(mv->value);
	free(mv);
	return 0;
}

weft_mvar_t *weft_mvar_find(const char *name)
{
	if (!wa_name_ok(name))
		return NULL;
	pthread_mutex_lock(&all_lock);
	weft_mvar_t *mv = all;
	while (mv && strcmp(mv->name, name) != 0)
		mv = mv->next;
	pthread_mutex_unlock(&all_lock);
	return mv;
}

ssize_t weft_mvar_waiting(weft_mvar_t *mv)
{
	return mv ? weft_mutex_waiters(&mv->m) : -EINVAL;
}

/* ------------------------------------------------------------ the lock */

/* The caller has just taken the lock: a process notes that it has used
 * MVars, so that its death looks for those it still holds. */
static inline void took(void)
{
	struct wa_proc *p = wa_self();
	if (p && !p->used_mvars) {
		p->used_mvars = true;
		/* the id its death unlocks for: the spawner may not have
		 * stored it yet (the same value) */
		atomic_store(&p->task, weft_self());
	}
}

int weft_mvar_lock_until(weft_mvar_t *mv, weft_time_t deadline)
{
	if (!mv)
		return -EINVAL;
	int e = weft_mutex_lock_until(&mv->m, deadline);
	if (e == 0)
		took();
	return e;
}

int weft_mvar_lock(weft_mvar_t *mv)
{
	return weft_mvar_lock_until(mv, WEFT_NEVER);
}

int weft_mvar_try_lock(weft_mvar_t *mv)
{
	if (!mv)
		return -EINVAL;
	if (mine(mv))
		return -EDEADLK;
	int e = weft_mutex_try_lock(&mv->m);
	if (e == 0)
		took();
	return e;
}

int weft_mvar_lock_step(weft_mvar_t *mv, weft_time_t deadline, weft_op_t *op)
{
	if (!mv)
		return -EINVAL;
	int e = weft_mutex_lock_step(&mv->m, deadline, op);
	if (e == 0)
		took();
	return e;
}

int weft_mvar_unlock(weft_mvar_t *mv)
{
	if (!mv)
		return -EINVAL;
	return weft_mutex_unlock(&mv->m); /* -EPERM if the caller does not hold it */
}

int weft_mvar_get(weft_mvar_t *mv, void **value, size_t *len)
{
	if (!mv || !value || !len)
		return -EINVAL;
	if (!mine(mv))
		return -EPERM;
	*value = mv->value; /* the holder's alone until it unlocks */
	*len = mv->len;
	return 0;
}

int weft_mvar_set(weft_mvar_t *mv, const void *value, size_t len)
{
	if (!mv || (len && !value))
		return -EINVAL;
	if (len > WEFT_MSG_MAX)
		return -EMSGSIZE;
	if (!mine(mv))
		return -EPERM;
	void *v = len <= MV_SMALL ? mv->small : malloc(len);
	if (!v)
		return -ENOMEM;
	if (len)
		memmove(v, value, len); /* value may be the MVar's own */
	if (mv->value != mv->small && mv->value != v)
		free(mv->value);
	mv->value = v;
	mv->len = len;
	return 0;
}

int weft_mvar_write(weft_mvar_t *mv, const void *value, size_t len)
{
	if (!mv || (len && !value))
		return -EINVAL;
	if (len > WEFT_MSG_MAX)
		return -EMSGSIZE;
	int e = weft_mvar_lock(mv);
	if (e)
		return e;
	e = weft_mvar_set(mv, value, len);
	int u = weft_mvar_unlock(mv);
	return e ? e : u;
}

/* ------------------------------------------------------------ reads */

static ssize_t copy_out(weft_mvar_t *mv, void *buf, size_t cap)
{
	size_t n = mv->len < cap ? mv->len : cap;
	if (n)
		memcpy(buf, mv->value, n);
	return (ssize_t)mv->len;
}

/* Under the lock taken for the read: copy, let go. */
static ssize_t read_locked(weft_mvar_t *mv, void *buf, size_t cap)
{
	ssize_t n = copy_out(mv, buf, cap);
	weft_mutex_unlock(&mv->m);
	return n;
}

ssize_t weft_mvar_read_until(weft_mvar_t *mv, void *buf, size_t cap, weft_time_t deadline)
{
	if (!mv || (cap && !buf))
		return -EINVAL;
	if (mine(mv)) /* the holder reads its own value */
		return copy_out(mv, buf, cap);
	int e = weft_mutex_lock_until(&mv->m, deadline);
	return e ? e : read_locked(mv, buf, cap);
}

ssize_t weft_mvar_read(weft_mvar_t *mv, void *buf, size_t cap)
{
	return weft_mvar_read_until(mv, buf, cap, WEFT_NEVER);
}

ssize_t weft_mvar_read_step(weft_mvar_t *mv, void *buf, size_t cap, weft_time_t deadline, weft_op_t *op)
{
	if (!mv || (cap && !buf))
		return -EINVAL;
	if (mine(mv))
		return copy_out(mv, buf, cap);
	int e = weft_mutex_lock_step(&mv->m, deadline, op);
	return e ? e : read_locked(mv, buf, cap);
}

/* ------------------------------------------------------ a process's end */

void wa_mvar_release(weft_task_t task)
{
	pthread_mutex_lock(&all_lock);
	for (weft_mvar_t *mv = all; mv; mv = mv->next)
		(void)weft_mutex_unlock_for(&mv->m, task); /* -EPERM: not its */
	pthread_mutex_unlock(&all_lock);
}
