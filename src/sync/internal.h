/* internal.h - what the sync primitives share: owner tokens, the stackless
 * check, the wait-queue discipline every primitive follows, and the halves
 * of a wait that the _step forms run on either side of a step's return.
 *
 * The discipline (on top of weft_waitq_t, see weft/sched.h):
 *  - A waker pops a node under the queue lock and sets node->status to what
 *    it delivers (WEFT__SYNC_WOKEN: "try again", WEFT__SYNC_GRANTED: "you
 *    now hold it") before unparking it. The pop itself is the delivery: a
 *    waiter whose park ended by timeout or cancellation at the same moment
 *    still honours it (it holds the lock, the permit, ...).
 *  - A waiter whose park returned an error takes the queue lock; if its node
 *    is still queued it marks it WEFT__SYNC_WITHDRAWN and undoes its
 *    bookkeeping in the same critical section, then unlinks the node with
 *    weft_waitq_remove. Wakers skip withdrawn nodes (weft__sync_pop). This
 *    makes "leave the queue" and "stop being counted" one atomic step, which
 *    weft_waitq_remove alone (it takes the lock itself) cannot give.
 *
 * Committing at the pop lets a waker update the primitive's counts in the
 * same critical section as the pop; the waiter, which takes the queue lock
 * after any failed park, learns what it got either way. Wakers here unpark
 * while holding the queue lock (a broadcast wakes any number of waiters, and
 * their nodes may vanish once the lock is free), which weft/sched.h's
 * wake_one and wake_all do not do; sync's queues are woken only by sync's
 * own wakers.
 *
 * Lifetime (the POSIX rule: a primitive may be destroyed as soon as no call
 * on it is in progress, and in particular by a caller the moment its own
 * call returns):
 *  - A waker's last touch of the primitive is the release of its lock; the
 *    state change that lets someone else return (a permit, a zero count, a
 *    free lock) is made while the lock is held, or is itself the waker's
 *    last touch (the mutex's and the rwlock's unlock fast paths).
 *  - Whoever returns because of a change made under the lock waits until the
 *    lock is free before returning (weft__sync_settle): a woken waiter, and
 *    a fast path that saw the change without the lock. The change is a
 *    release operation and the fast path's check an acquire, so a lock word
 *    read as free after it is the waker's unlock or later.
 */
#ifndef WEFT_SYNC_INTERNAL_H
#define WEFT_SYNC_INTERNAL_H

#include <weft/sched.h>
#include <weft/sync.h>
#include <weft/time.h>

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "../base/spin.h"

/* The public structs hold plain integers (so that the header also serves
 * C++); every access goes through these. */
#define WEFT__A32(p) ((_Atomic uint32_t *)(p))
#define WEFT__A64(p) ((_Atomic uint64_t *)(p))

enum {
	WEFT__SYNC_WAITING = 0,	   /* queued, nothing delivered (weft_waitq_push sets it) */
	WEFT__SYNC_WITHDRAWN = -1, /* its waiter gave up; wakers skip it */
	WEFT__SYNC_WOKEN = 1,	   /* woken to compete again (mutex) */
	WEFT__SYNC_GRANTED = 2,	   /* handed what it waited for */
};

/* Who is calling: the task id, or for plain threads (and timer callbacks)
 * the thread with the top bit set, which no task id reaches. */
static inline uint64_t weft__sync_self(void)
{
	weft_task_t t = weft_self();
	return t ? t : ((uint64_t)(uintptr_t)pthread_self() | (UINT64_C(1) << 63));
}

/* 0 if the caller may park, -EPERM in a stackless task. */
static inline int weft__sync_can_park(void)
{
	return weft_can_park() ? 0 : -EPERM;
}

/* Under q's lock: pop the first node that has not been withdrawn. */
static inline weft_waitq_node_t *weft__sync_pop(weft_waitq_t *q)
{
	weft_waitq_node_t *n;
	while ((n = weft_waitq_pop(q)) != NULL && n->status == WEFT__SYNC_WITHDRAWN)
		;
	return n;
}

/* Wait until q's lock is free: whoever changed the primitive under it, and
 * so let the caller return, is then done with it (see "Lifetime"). The
 * holder is inside a short critical section; if it was preempted there,
 * give it the CPU. */
static inline void weft__sync_settle(weft_waitq_t *q)
{
	_Atomic uint32_t *l = (_Atomic uint32_t *)&q->lock;
	for (int n = 0; atomic_load_explicit(l, memory_order_acquire) != 0; n++)
		weft__spin_backoff(n);
}

/* Under q's lock: deliver status to n (already popped) and wake it. n may
 * return from its wait as soon as the unpark lands, so it is not touched
 * after; the waker is copied out first. */
static inline void weft__sync_deliver(weft_waitq_node_t *n, int status)
{
	weft_waker_t w = n->waker;
	n->status = status;
	weft_unpark(w, 0);
}

/* The wait on n, which the caller pushed on q, has ended with r (the
 * park's result). Returns what a waker delivered (> 0), or r after
 * withdrawing n; in that case withdraw(ctx), if given, ran under q's lock
 * to undo the caller's bookkeeping. lock is the lock that guards q's pops:
 * q's own, or the primitive's master queue (rwlock readers). */
static inline int weft__sync_woke(weft_waitq_t *lock, weft_waitq_t *q, weft_waitq_node_t *n, int r,
				  void (*withdraw)(void *ctx), void *ctx)
{
	if (r == 0) {
		/* Only our queue's wakers hold this waker, and they deliver
		 * before they unpark; the unpark/park pair orders the status.
		 * The waker unparked us holding the lock: let it finish. */
		assert(n->status > 0);
		int st = n->status;
		weft__sync_settle(lock);
		return st;
	}
	weft_waitq_lock(lock);
	if (n->queued && n->status == WEFT__SYNC_WAITING) {
		n->status = WEFT__SYNC_WITHDRAWN;
		if (withdraw)
			withdraw(ctx);
		weft_waitq_unlock(lock);
		weft_waitq_remove(q, n); /* false if a waker popped (and skipped) it meanwhile */
		return r;
	}
	weft_waitq_unlock(lock);
	assert(n->status > 0);
	return n->status; /* delivered as the wait ended: honour it */
}

/* Park on n, which the caller pushed on q (q unlocked): weft__sync_woke
 * after weft_park. */
static inline int weft__sync_wait(weft_waitq_t *lock, weft_waitq_t *q, weft_waitq_node_t *n, weft_time_t deadline,
				  void (*withdraw)(void *ctx), void *ctx)
{
	return weft__sync_woke(lock, q, n, weft_park(n->waker, deadline), withdraw, ctx);
}

/* ------------------------------------------------------------ step forms */

/* A stackless task's wait in a primitive lives in its weft_op_t (the step
 * protocol of weft/sched.h): the _step call pushes the node and registers
 * (weft__sync_step_park) where the blocking call would park, and the
 * repeated call, once weft_step_begin says the wait has ended, finishes it
 * with weft__sync_woke(..., weft_park_result(), ...) - the same two halves
 * as a park, with the task's return in between. The fields past the node
 * keep what the blocking call keeps in locals across its park. */
typedef struct weft__sync_op {
	uint8_t call;	     /* the step call's id (first: weft_step_begin) */
	uint8_t phase;	     /* cond: which wait is registered (cond.c) */
	uint8_t flags;	     /* mutex: WEFT__SYNC_QUEUED, WEFT__SYNC_STARVING */
	uint8_t result;	     /* cond: minus its wait's result (0 .. 255), returned once the mutex is back */
	uint32_t start;	     /* mutex: when it first queued (QUEUED), in WEFT__SYNC_TICK ticks, modulo 2^32 */
	weft_waitq_node_t n; /* its data: cond: the mutex of the registered wait */
} weft__sync_op;
enum {
	WEFT__SYNC_QUEUED = 1,	 /* mutex: it has queued (start is set) */
	WEFT__SYNC_STARVING = 2, /* mutex: has waited over 1 ms in all */
};
/* The unit of weft__sync_op.start: 1024 ns. Its 32 bits wrap after 73
 * minutes, so a wait that long may be taken for a short one: the mutex
 * then stays out of starvation mode a while longer (a heuristic, not a
 * guarantee - mutex.c). */
#define WEFT__SYNC_TICK_SHIFT 10
static inline uint32_t weft__sync_tick(weft_time_t t)
{
	return (uint32_t)((uint64_t)t >> WEFT__SYNC_TICK_SHIFT);
}
/* Nanoseconds since o first queued (QUEUED set), at now. */
static inline uint64_t weft__sync_waited(const weft__sync_op *o, weft_time_t now)
{
	return (uint64_t)(uint32_t)(weft__sync_tick(now) - o->start) << WEFT__SYNC_TICK_SHIFT;
}
_Static_assert(sizeof(weft__sync_op) <= sizeof(((weft_op_t *)0)->opaque),
	       "weft_op_t too small (its obj is the protocol's)");
_Static_assert(_Alignof(weft__sync_op) <= _Alignof(weft_op_t), "weft_op_t under-aligned");
_Static_assert(offsetof(weft__sync_op, call) == 0, "an op's first byte is its call's id");

/* The step calls' ids. */
enum {
	WEFT__SYNC_MUTEX_LOCK = WEFT_STEP_ID_SYNC + 1,
	WEFT__SYNC_RDLOCK,
	WEFT__SYNC_WRLOCK,
	WEFT__SYNC_COND_WAIT,
	WEFT__SYNC_WG_WAIT,
	WEFT__SYNC_SEM_ACQUIRE,
	WEFT__SYNC_ONCE,
	WEFT__SYNC_BARRIER_WAIT,
};

/* Where a stackless task would park on o's node (pushed, q unlocked): arm
 * the deadline and register. Returns -EINPROGRESS. Without memory for the
 * timer the wait ends at once with -ENOMEM, which the repeat reports after
 * withdrawing, as for any other error. */
static inline int weft__sync_step_park(weft__sync_op *o, weft_time_t deadline)
{
	if (deadline != WEFT_NEVER && weft_park_deadline(o->n.waker, deadline) != 0)
		weft_unpark(o->n.waker, -ENOMEM); /* (false: delivered already) */
	return weft_step_register((weft_op_t *)o);
}

/* mutex.c, for cond.c: the lock and unlock behind the public calls, with
 * the owner token already computed. weft__mutex_lock_step is the step
 * form's lock in a stackless task, waiting in o: resumed, the repeat of a
 * registered wait (weft_step_begin returned 1); else a fresh lock. */
int weft__mutex_lock(weft_mutex_t *m, uint64_t self, weft_time_t deadline);
int weft__mutex_lock_step(weft_mutex_t *m, uint64_t self, weft_time_t deadline, weft__sync_op *o, bool resumed);
void weft__mutex_unlock(weft_mutex_t *m);

#endif
