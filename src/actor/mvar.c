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
 * Ownership. The mutex knows its holder (its -EPERM and -EDEADLK). Beside
 * it the MVar keeps the holder's token (`owner`: written by the holder
 * after it locks and cleared before it unlocks, read by get/set/read to
 * tell the holder from the others) and, when the holder is a process, its
 * pid and task. A process counts the write locks it holds; when it ends
 * holding some, its death (wa_mvar_release) finds them by a walk of every
 * MVar and unlocks them for its task (weft_mutex_unlock_for).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <weft/sync.h>

#include "internal.h"

struct weft_mvar {
	weft_mutex_t m;
	_Atomic uint64_t owner;	   /* the holder's token (below), 0 when free */
	_Atomic weft_pid_t holder; /* a process holding it, 0 otherwise */
	weft_task_t holder_task;   /* its task (written with holder, by it) */
	void *value;
	size_t len;
	char name[WEFT_NAME_MAX + 1];
	struct weft_mvar *next, *prev; /* every MVar, under all_lock */
};

static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct weft_mvar *all;

/* The caller: its task id, or its thread with the top bit set (as sync's
 * mutex tells holders apart). */
static inline uint64_t token(void)
{
	weft_task_t t = weft_self();
	return t ? t : ((uint64_t)(uintptr_t)pthread_self() | (UINT64_C(1) << 63));
}

static inline bool mine(weft_mvar_t *mv)
{
	return atomic_load_explicit(&mv->owner, memory_order_relaxed) == token();
}

int weft_mvar_create(weft_mvar_t **out, const char *name, const void *value, size_t len)
{
	if (!out || (len && !value) || (name && !wa_name_ok(name)))
		return -EINVAL;
	if (len > WEFT_MSG_MAX)
		return -EMSGSIZE;
	weft_mvar_t *mv = calloc(1, sizeof *mv);
	if (!mv)
		return -ENOMEM;
	weft_mutex_init(&mv->m);
	if (len) {
		mv->value = malloc(len);
		if (!mv->value) {
			free(mv);
			return -ENOMEM;
		}
		memcpy(mv->value, value, len);
	}
	mv->len = len;
	pthread_mutex_lock(&all_lock);
	if (name) {
		for (weft_mvar_t *o = all; o; o = o->next)
			if (strcmp(o->name, name) == 0) {
				pthread_mutex_unlock(&all_lock);
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

/* The caller has just taken the mutex: record it as the holder. */
static void took(weft_mvar_t *mv)
{
	atomic_store_explicit(&mv->owner, token(), memory_order_relaxed);
	struct wa_proc *p = wa_self();
	if (p) {
		mv->holder_task = weft_self();
		atomic_store_explicit(&mv->holder, atomic_load_explicit(&p->pid, memory_order_relaxed),
				      memory_order_relaxed);
		p->mvars_held++;
	}
}

/* The holder is about to let go. */
static void letting_go(weft_mvar_t *mv)
{
	atomic_store_explicit(&mv->owner, 0, memory_order_relaxed);
	if (atomic_load_explicit(&mv->holder, memory_order_relaxed)) {
		atomic_store_explicit(&mv->holder, 0, memory_order_relaxed);
		struct wa_proc *p = wa_self();
		if (p)
			p->mvars_held--;
	}
}

int weft_mvar_lock_until(weft_mvar_t *mv, weft_time_t deadline)
{
	if (!mv)
		return -EINVAL;
	int e = weft_mutex_lock_until(&mv->m, deadline);
	if (e == 0)
		took(mv);
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
		took(mv);
	return e;
}

int weft_mvar_lock_step(weft_mvar_t *mv, weft_time_t deadline, weft_op_t *op)
{
	if (!mv)
		return -EINVAL;
	int e = weft_mutex_lock_step(&mv->m, deadline, op);
	if (e == 0)
		took(mv);
	return e;
}

int weft_mvar_unlock(weft_mvar_t *mv)
{
	if (!mv)
		return -EINVAL;
	if (!mine(mv))
		return -EPERM;
	letting_go(mv);
	return weft_mutex_unlock(&mv->m);
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
	void *v = NULL;
	if (len) {
		v = malloc(len);
		if (!v)
			return -ENOMEM;
		memcpy(v, value, len);
	}
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

void wa_mvar_release(weft_pid_t pid)
{
	pthread_mutex_lock(&all_lock);
	for (weft_mvar_t *mv = all; mv; mv = mv->next) {
		if (atomic_load_explicit(&mv->holder, memory_order_relaxed) != pid)
			continue;
		/* Its task has ended: nobody else writes these now. */
		weft_task_t t = mv->holder_task;
		atomic_store_explicit(&mv->owner, 0, memory_order_relaxed);
		atomic_store_explicit(&mv->holder, 0, memory_order_relaxed);
		int e = weft_mutex_unlock_for(&mv->m, t);
		assert(e == 0);
		(void)e;
	}
	pthread_mutex_unlock(&all_lock);
}
