/* internal.h - what the sync primitives share: owner tokens, the stackless
 * check, the wait-queue discipline every primitive follows, and the halves
 * of a wait that the _step forms run on either side of a step's return.
 *
 * The discipline (on top of weft_waitq_t, see weft/sched.h):
 *  - A waiter counts itself in and links its node under the queue lock,
 *    after re-checking its condition under that lock, and parks.
 *  - A waker pops the node under the queue lock and claims its wait
 *    (weft_unpark_claim, weft__sync_claim): from then on nothing else can
 *    end that wait - no deadline, no cancellation - so the node stays put.
 *    It writes into the node what it delivers (WEFT__SYNC_WOKEN: "try
 *    again", WEFT__SYNC_GRANTED: "it is yours"), updates the primitive's
 *    counts in the same critical section, links the node on a list of its
 *    own (weft__sync_wakes, chained through the popped nodes), releases the
 *    lock and only then wakes each node on the list (weft_unpark_finish,
 *    reading the node's next before the finish: the node may vanish with
 *    it). The claim is the delivery: a claimed waiter always gets what it
 *    was given.
 *  - A node whose wait cannot be claimed has ended already (timeout,
 *    cancellation): the waker marks it WEFT__SYNC_DROPPED, delivers
 *    nothing, undoes its waiter's counts as the waiter would have, and
 *    goes on to the next. Nothing is lost: what the waker had to give goes
 *    to the next waiter, or stays in the primitive.
 *  - A waiter whose park returned an error takes the queue lock; if its
 *    node is still queued it marks it WEFT__SYNC_WITHDRAWN and undoes its
 *    bookkeeping in the same critical section, then unlinks the node with
 *    weft_waitq_remove. Wakers skip withdrawn nodes. This makes "leave the
 *    queue" and "stop being counted" one atomic step, which
 *    weft_waitq_remove alone (it takes the lock itself) cannot give. A
 *    node it finds dropped was counted out by the waker.
 * Deviations, each explained in its file:
 *  - The mutex, and the rwlock to its writers, hand the lock over without
 *    a claim (weft__sync_hand): the pop is the delivery, the waker copies
 *    the waiter's waker, unlocks and unparks the copy - one atomic RMW
 *    where a claim takes two. A waiter whose park ended meanwhile finds
 *    the delivery under the lock. Safe because that waiter holds the lock
 *    (or, the mutex's WOKEN, is still inside its lock call): nobody may
 *    free the lock before it has returned and unlocked.
 *  - The barrier, whose generation must be all or nothing, reserves every
 *    waiter (WEFT__SYNC_HELD) before it claims any; a waiter leaves by a
 *    CAS on its own node (barrier.c).
 *
 * Lifetime (docs/api.md: an object may be destroyed as soon as every call
 * on it has returned; weft never touches it after the point where another
 * caller can see that its own operation completed - both ways: the waker
 * may free the primitive the moment its call returns, and so may the
 * waiter):
 *  (L1) A waker's last touch of the primitive is the release of its queue
 *       lock (or a state change without the lock that is itself its last
 *       touch: the mutex's and the rwlock's unlock fast paths, a release
 *       or a done that finds nobody waiting). What it does after -
 *       weft__sync_wake, the mutex's unpark - touches only popped nodes,
 *       whose waits it has claimed, and parkers, which are never freed
 *       (weft/sched.h).
 *  (L2) A claimed waiter learns that its wait is over only from the
 *       finish, after (L1)'s unlock, and returns without touching the
 *       primitive again: its park returned 0, and the node says what it
 *       got. (The mutex's woken waiter, a holder-to-be, goes on to touch
 *       the mutex as its lock call must; the condition variable's reacquires
 *       its mutex.)
 *  (L3) A waiter whose park ended otherwise was not claimed (or, handed a
 *       lock, takes the queue lock to learn it): it takes the queue lock
 *       while its own call is still in progress and nobody can have seen
 *       it complete - it has been given nothing (dropped, or withdrawing),
 *       or it holds (or competes for) the lock it will unlock.
 *  (L4) A fast path that sees without the lock a change made under it (a
 *       permit left by a release, a zero count, DONE, a cleared WAIT bit)
 *       waits until the queue lock is free before returning
 *       (weft__sync_settle): the change is a release operation and the
 *       check an acquire, so a lock word read as free after it is the
 *       waker's unlock or later. Only fast paths settle; woken waiters do
 *       not (before this rule, a woken waiter settled on the lock of a
 *       primitive its waker may already have freed).
 * For stackless waiters, weft/sched.h's rule applies: a registered _step
 * call is in progress until its repeat has completed. The repeat finishes
 * the wait (weft__sync_woke) as a coroutine does after its park.
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
	WEFT__SYNC_DROPPED = -2,   /* popped unclaimed (its wait had ended): nothing delivered, counted out */
	WEFT__SYNC_HELD = -3,	   /* barrier: reserved by the arrival that may complete the generation */
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

/* The waiters a waker wakes once it has let go of the primitive (see
 * "Lifetime", (L1)): those it claimed, in the order it claimed them, on a
 * list chained through the popped nodes' next (unused once popped; a
 * claimed node stays put until its finish), and at most one it handed over
 * without a claim (weft__sync_hand), by a copy of its waker. */
typedef struct weft__sync_wakes {
	weft_waitq_node_t *head, *tail;
	weft_waker_t handed;
} weft__sync_wakes;
/* clang-format off */
#define WEFT__SYNC_WAKES_INIT {NULL, NULL, {NULL, 0}}
/* clang-format on */

/* Under q's lock: pop the first node that has not been withdrawn. */
static inline weft_waitq_node_t *weft__sync_pop(weft_waitq_t *q)
{
	weft_waitq_node_t *n;
	while ((n = weft_waitq_pop(q)) != NULL && n->status == WEFT__SYNC_WITHDRAWN)
		;
	return n;
}

/* Under q's lock: pop nodes until one whose wait can be claimed (returned),
 * or NULL once q is empty. Withdrawn nodes are skipped (their waiters have
 * counted themselves out); nodes whose waits have ended are marked DROPPED
 * and counted in *dropped, for the caller to count them out of the
 * primitive as their waiters would have. */
static inline weft_waitq_node_t *weft__sync_claim(weft_waitq_t *q, unsigned *dropped)
{
	weft_waitq_node_t *n;
	while ((n = weft_waitq_pop(q)) != NULL) {
		if (n->status == WEFT__SYNC_WITHDRAWN)
			continue;
		assert(n->status == WEFT__SYNC_WAITING);
		if (weft_unpark_claim(n->waker))
			return n;
		n->status = WEFT__SYNC_DROPPED; /* its waiter finds it so under the lock (L3) */
		(*dropped)++;
	}
	return NULL;
}

/* Under the lock: deliver status to n, claimed by weft__sync_claim, and
 * put it on wk, to be woken by weft__sync_wake. */
static inline void weft__sync_give(weft__sync_wakes *wk, weft_waitq_node_t *n, int status)
{
	assert(!n->queued && n->status == WEFT__SYNC_WAITING && status > 0);
	n->status = status;
	n->next = NULL;
	if (wk->tail)
		wk->tail->next = n;
	else
		wk->head = n;
	wk->tail = n;
}

/* Under the lock: deliver status to n, popped (weft__sync_pop) but not
 * claimed, and keep a copy of its waker in wk. The pop is the delivery: a
 * waiter whose wait ends otherwise meanwhile finds it under the lock and
 * honours it. Only for a handoff to a waiter that goes on to hold or to
 * compete for a lock (the mutex; the rwlock's writers): nobody may free the
 * lock before that waiter's call has returned and it has unlocked, so it
 * may take the lock after the waker's call returned (see "Lifetime"). One
 * atomic RMW, the unpark, where a claim takes two. */
static inline void weft__sync_hand(weft__sync_wakes *wk, weft_waitq_node_t *n, int status)
{
	assert(!n->queued && n->status == WEFT__SYNC_WAITING && status > 0 && !wk->handed.parker);
	wk->handed = n->waker;
	n->status = status;
}

/* With every lock released, and the primitive touched no more (L1): wake
 * the waiters on wk. An unpark of a handed wait that has ended meanwhile
 * does nothing (its waiter finds the delivery under the lock). */
static inline void weft__sync_wake(weft__sync_wakes *wk)
{
	if (wk->handed.parker)
		weft_unpark(wk->handed, 0);
	weft_waitq_node_t *n = wk->head;
	while (n) {
		assert(!n->queued && n->status > 0);
		/* Read before the finish: the node may vanish with it. */
		weft_waitq_node_t *next = n->next;
		weft_unpark_finish(n->waker, 0);
		n = next;
	}
}

/* Wait until q's lock is free: whoever changed the primitive under it, and
 * so let the caller return, is then done with it (see "Lifetime", (L4):
 * fast paths only). The holder is inside a short critical section; if it
 * was preempted there, give it the CPU. */
static inline void weft__sync_settle(weft_waitq_t *q)
{
	_Atomic uint32_t *l = (_Atomic uint32_t *)&q->lock;
	for (int n = 0; atomic_load_explicit(l, memory_order_acquire) != 0; n++)
		weft__spin_backoff(n);
}

/* The wait on n, which the caller pushed on q, has ended with r (the
 * park's result). Returns what a waker delivered (> 0), or r after
 * withdrawing n (withdraw(ctx), if given, ran under q's lock to undo the
 * caller's bookkeeping) or finding it dropped. lock is the lock that guards
 * q's pops: q's own, or the primitive's master queue (rwlock readers). */
static inline int weft__sync_woke(weft_waitq_t *lock, weft_waitq_t *q, weft_waitq_node_t *n, int r,
				  void (*withdraw)(void *ctx), void *ctx)
{
	if (r == 0) {
		/* Claimed, given and finished (or handed and unparked): after
		 * the waker's last touch of the primitive, and nothing here
		 * touches it (L2). The finish/park pair orders the status. */
		assert(!n->queued && n->status > 0);
		return n->status;
	}
	/* Not claimed (L3): nothing was delivered, and the primitive is ours
	 * to touch - our call is in progress and has got nothing - or a lock
	 * was handed over, which we now hold. */
	weft_waitq_lock(lock);
	int st = n->status;
	if (st == WEFT__SYNC_WAITING) {
		assert(n->queued);
		n->status = WEFT__SYNC_WITHDRAWN;
		if (withdraw)
			withdraw(ctx);
		weft_waitq_unlock(lock);
		weft_waitq_remove(q, n); /* false if a waker popped (and skipped) it meanwhile */
		return r;
	}
	weft_waitq_unlock(lock);
	assert(!n->queued);
	if (st > 0)
		return st; /* handed over as the wait ended (weft__sync_hand): honour it */
	assert(st == WEFT__SYNC_DROPPED);
	return r;
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
	uint8_t flags;	     /* mutex: WEFT__SYNC_QUEUED, _STARVING, _NOCANCEL */
	uint8_t result;	     /* cond: minus its wait's result (0 .. 255), returned once the mutex is back */
	uint32_t start;	     /* mutex: when it first queued (QUEUED), in WEFT__SYNC_TICK ticks, modulo 2^32 */
	weft_waitq_node_t n; /* its data: cond: the mutex of the registered wait */
} weft__sync_op;
enum {
	WEFT__SYNC_QUEUED = 1,	 /* mutex: it has queued (start is set) */
	WEFT__SYNC_STARVING = 2, /* mutex: has waited over 1 ms in all */
	WEFT__SYNC_NOCANCEL = 4, /* mutex: its waits are uncancellable (cond.c's reacquisition) */
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
 * registered wait (weft_step_begin returned 1); else a fresh lock. With
 * nocancel the lock's waits are uncancellable: a cancelled task queues
 * and waits its turn like any other (a fresh lock only: a repeat keeps
 * what its first call had). */
int weft__mutex_lock(weft_mutex_t *m, uint64_t self, weft_time_t deadline, bool nocancel);
int weft__mutex_lock_step(weft_mutex_t *m, uint64_t self, weft_time_t deadline, weft__sync_op *o, bool resumed,
			  bool nocancel);
void weft__mutex_unlock(weft_mutex_t *m);
/* Tests: how many waiters m counts (queued in line, woken ones not). */
uint32_t weft__mutex_waiters(weft_mutex_t *m);

#endif
