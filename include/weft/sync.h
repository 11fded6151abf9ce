/* weft/sync.h - task-aware synchronization: mutex, rwlock, condition
 * variable, wait group, semaphore, once, barrier.
 *
 * Every blocking call parks the calling task (never its worker thread) and
 * also works from plain threads, which block on a futex. Common rules:
 *
 *  - Each blocking call has a deadline form (`_until`, an absolute
 *    weft_time_t; WEFT_NEVER for none) that returns -ETIMEDOUT when the
 *    deadline passes first.
 *  - A blocking call returns -ECANCELED when the calling task is cancelled
 *    (weft_cancel) while it waits, or was cancelled before it had to wait.
 *    A call that completes without waiting succeeds even in a cancelled task
 *    (like weft_join of a finished task). On -ETIMEDOUT and -ECANCELED
 *    nothing was acquired and nothing changed, except where a function
 *    says otherwise (weft_cond_wait reacquires its mutex).
 *  - A stackless task cannot park: there a blocking call that would have
 *    to wait returns -EPERM (nothing changes). Every blocking call has a
 *    _step form instead (weft_mutex_lock_step, ...), which keeps the step
 *    protocol of weft/sched.h ("Step forms"): it takes the call's
 *    arguments, an absolute deadline (WEFT_NEVER: none) and a weft_op_t,
 *    and completes with the blocking call's results or registers the task
 *    and returns -EINPROGRESS, to be repeated with the same op once the
 *    task runs again. In coroutines and plain threads the _step forms
 *    block as the _until forms do.
 *  - Errors are negative errno values: -EINVAL for a NULL object or a bad
 *    argument, -EAGAIN from try forms that would have to wait, -EBUSY from
 *    destroy of an object in use, -EPERM for unlocking what
 *    the caller does not hold, -EDEADLK for relocking what it already holds.
 *  - Objects are plain structs owned by the caller, placed anywhere; the
 *    fields are internal. Each has a static initializer (except the barrier,
 *    which needs a count) and an init function. destroy checks that nobody
 *    holds or waits on the object (-EBUSY otherwise) and frees nothing: it
 *    exists so that misuse is reported. Freeing an object while tasks use
 *    it is undefined behaviour.
 *  - Lifetimes (docs/api.md): an object may be destroyed and freed as soon
 *    as every call on it has returned, and no call touches it after the
 *    point where another caller can see that its own operation completed.
 *    So the caller of a release, of the done that brings a wait group to
 *    zero, of a signal or broadcast, of the once that ran fn, or the last
 *    arrival at a barrier may free the object the moment its own call
 *    returns, although the waiters it let go are still returning; and each
 *    of those waiters may free it the moment its own call returns, although
 *    the caller that let it go is still returning. (A mutex or rwlock is
 *    in use until its last holder unlocks it; that unlock may free it the
 *    moment it returns, although the unlock that handed it to this holder
 *    may still be returning.) A stackless task's registered _step call is in progress until
 *    its repeat has completed (weft/sched.h): an object a stackless task
 *    waits on must outlive that repeat, even when the call that woke the
 *    task has returned before it.
 *
 * "Owner" below is the calling task, or the calling thread outside tasks.
 * Owners are recorded for the mutex and the rwlock's writer, so unlocking
 * from another task fails with -EPERM.
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <weft/base.h>
#include <weft/sched.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ mutex */

/* A mutex like Go's sync.Mutex. Uncontended lock and unlock are one atomic
 * operation each. A contended lock spins briefly (on multi-worker runtimes
 * and plain threads), then parks. Newcomers may take the lock ahead of
 * parked waiters (for throughput) until a waiter has waited over 1 ms; then
 * the mutex turns to starvation mode: unlock hands it directly to the
 * longest-waiting waiter and newcomers queue, until the queue empties or a
 * waiter got it after waiting under 1 ms. Not recursive. */
typedef struct weft_mutex {
	uint32_t state;		  /* internal: locked/woken/starving bits, waiter count */
	uint32_t gen;		  /* internal: unlocks so far (wrapping), for spinners */
	uint64_t owner;		  /* internal: the holder's token, 0 while free or in handoff */
	weft_waitq_node_t *front; /* internal: a woken waiter that lost the race, first in line */
	weft_waitq_t q;		  /* internal: parked waiters, FIFO */
} weft_mutex_t;

/* clang-format off */
#define WEFT_MUTEX_INIT {0, 0, 0, NULL, WEFT_WAITQ_INIT}
/* clang-format on */

int weft_mutex_init(weft_mutex_t *m);
/* -EBUSY if locked or waited on. */
int weft_mutex_destroy(weft_mutex_t *m);
/* 0 with the mutex held; -EDEADLK if the caller already holds it;
 * -ETIMEDOUT, -ECANCELED, -EPERM (stackless task, blocking forms) as
 * above. */
int weft_mutex_lock(weft_mutex_t *m);
int weft_mutex_lock_until(weft_mutex_t *m, weft_time_t deadline);
int weft_mutex_lock_step(weft_mutex_t *m, weft_time_t deadline, weft_op_t *op);
/* 0, or -EAGAIN if held by anyone (or handed over in starvation mode). */
int weft_mutex_try_lock(weft_mutex_t *m);
/* -EPERM if the mutex is not locked or the caller does not hold it. */
int weft_mutex_unlock(weft_mutex_t *m);
/* Unlock m on behalf of task t, which holds it and has ended or is ending
 * (for the layer that owns t: a process that ends holding an MVar). The
 * same as t's own unlock. -EPERM if t does not hold m; -EINVAL. */
int weft_mutex_unlock_for(weft_mutex_t *m, weft_task_t t);
/* How many callers are parked waiting for m (for dumps and tests; a
 * caller still spinning is not counted). -EINVAL for NULL. */
int weft_mutex_waiters(weft_mutex_t *m);
/* Whether the caller holds m: 1 or 0 (-EINVAL for NULL). */
int weft_mutex_held(weft_mutex_t *m);

/* ----------------------------------------------------------------- rwlock */

/* A readers-writer lock. Readers share it; a writer has it alone. A waiting
 * writer blocks new readers, so writers are not starved; when a writer
 * unlocks, every reader waiting at that moment gets in before the next
 * writer, so readers are not starved either. Writers get it in FIFO order.
 * Not recursive: a reader that read-locks again while a writer waits
 * deadlocks. */
typedef struct weft_rwlock {
	uint32_t state;	   /* internal: writer bit, waiters bit, reader count */
	uint32_t nwr, nrd; /* internal: waiting writers and readers (under wq's lock) */
	uint64_t owner;	   /* internal: the writer's token */
	weft_waitq_t wq;   /* internal: waiting writers; its lock guards the slow paths */
	weft_waitq_t rq;   /* internal: waiting readers */
} weft_rwlock_t;

/* clang-format off */
#define WEFT_RWLOCK_INIT {0, 0, 0, 0, WEFT_WAITQ_INIT, WEFT_WAITQ_INIT}
/* clang-format on */

int weft_rwlock_init(weft_rwlock_t *rw);
/* -EBUSY if held or waited on. */
int weft_rwlock_destroy(weft_rwlock_t *rw);
/* Shared: 0, -EOVERFLOW (2^29 readers), -ETIMEDOUT, -ECANCELED, -EPERM. */
int weft_rwlock_rdlock(weft_rwlock_t *rw);
int weft_rwlock_rdlock_until(weft_rwlock_t *rw, weft_time_t deadline);
int weft_rwlock_rdlock_step(weft_rwlock_t *rw, weft_time_t deadline, weft_op_t *op);
int weft_rwlock_try_rdlock(weft_rwlock_t *rw); /* -EAGAIN: a writer holds or waits */
/* Exclusive: 0, -EDEADLK (the caller holds it as writer), -ETIMEDOUT,
 * -ECANCELED, -EPERM. */
int weft_rwlock_wrlock(weft_rwlock_t *rw);
int weft_rwlock_wrlock_until(weft_rwlock_t *rw, weft_time_t deadline);
int weft_rwlock_wrlock_step(weft_rwlock_t *rw, weft_time_t deadline, weft_op_t *op);
int weft_rwlock_try_wrlock(weft_rwlock_t *rw); /* -EAGAIN: held or waited on */
/* Release a read or write hold. -EPERM if it is write-locked by someone
 * else, or not locked at all. (Readers are not recorded: a task that
 * releases a read hold it does not have releases someone else's.) */
int weft_rwlock_unlock(weft_rwlock_t *rw);

/* ------------------------------------------------------- condition variable */

typedef struct weft_cond {
	weft_waitq_t q; /* internal: waiters, FIFO */
} weft_cond_t;

/* clang-format off */
#define WEFT_COND_INIT {WEFT_WAITQ_INIT}
/* clang-format on */

int weft_cond_init(weft_cond_t *c);
/* -EBUSY if tasks wait on it. */
int weft_cond_destroy(weft_cond_t *c);
/* Atomically release m (which the caller must hold: else -EPERM and nothing
 * happens) and wait for a signal; reacquire m before returning, whatever
 * the result: 0 (signalled, or possibly a spurious wake: always re-check the
 * condition in a loop), -ETIMEDOUT, -ECANCELED. No signal is lost: a
 * waiter whose wait ends (timeout, cancellation) just as it is signalled
 * either returns 0, or has left already and the signal goes to the next
 * waiter (signal's count says whether one got it). A deadline already past
 * returns -ETIMEDOUT at once, m held throughout. m is reacquired as any
 * locker takes it, queueing while it is held; a cancelled task too (its
 * wait for m is uncancellable). The step form's repeats first finish the
 * wait for the signal, then reacquire m, which may register again (on m):
 * it completes, with m held, only once m is back. */
int weft_cond_wait(weft_cond_t *c, weft_mutex_t *m);
int weft_cond_wait_until(weft_cond_t *c, weft_mutex_t *m, weft_time_t deadline);
int weft_cond_wait_step(weft_cond_t *c, weft_mutex_t *m, weft_time_t deadline, weft_op_t *op);
/* Wake the longest waiter / every waiter. Holding the mutex is not needed.
 * Return how many waiters were woken. */
int weft_cond_signal(weft_cond_t *c);
int weft_cond_broadcast(weft_cond_t *c);

/* ------------------------------------------------------------- wait group */

/* A counter of outstanding work (Go's sync.WaitGroup): add(n) before
 * starting work, done() when each piece ends, wait() until it is zero. A
 * wait group may be reused once every wait of the previous round has
 * returned. */
typedef struct weft_wg {
	uint64_t state; /* internal: count << 1 | waiters bit */
	weft_waitq_t q; /* internal: waiters */
} weft_wg_t;

/* clang-format off */
#define WEFT_WG_INIT {0, WEFT_WAITQ_INIT}
/* clang-format on */

int weft_wg_init(weft_wg_t *wg);
/* -EBUSY if the count is not zero or tasks wait. */
int weft_wg_destroy(weft_wg_t *wg);
/* Add n (may be negative). -EINVAL if the count would go below zero,
 * -EOVERFLOW above 2^62 - 1; nothing changes then. Reaching zero wakes every
 * waiter. */
int weft_wg_add(weft_wg_t *wg, int64_t n);
/* weft_wg_add(wg, -1). -EINVAL if the count was zero (nothing changes). */
int weft_wg_done(weft_wg_t *wg);
/* Wait until the count is zero: 0, -ETIMEDOUT, -ECANCELED, -EPERM. A wait
 * that times out or is cancelled just as the count reaches zero returns
 * either. */
int weft_wg_wait(weft_wg_t *wg);
int weft_wg_wait_until(weft_wg_t *wg, weft_time_t deadline);
int weft_wg_wait_step(weft_wg_t *wg, weft_time_t deadline, weft_op_t *op);
/* The current count (for diagnostics: it may change at once). */
int64_t weft_wg_count(const weft_wg_t *wg);

/* -------------------------------------------------------------- semaphore */

/* A counting semaphore. Waiters are served in FIFO order: while any task
 * waits, a newcomer queues behind it, and release hands permits directly to
 * the waiters in order. */
typedef struct weft_sem {
	uint64_t state; /* internal: permits << 1 | waiters bit */
	uint32_t nwait; /* internal: queued waiters (under q's lock) */
	weft_waitq_t q; /* internal: waiters, FIFO */
} weft_sem_t;

#define WEFT_SEM_MAX 0x7fffffff
/* clang-format off */
#define WEFT_SEM_INIT(value) {(uint64_t)(value) << 1, 0, WEFT_WAITQ_INIT}
/* clang-format on */

/* value: 0 .. WEFT_SEM_MAX, else -EINVAL. */
int weft_sem_init(weft_sem_t *s, unsigned value);
/* -EBUSY if tasks wait on it. */
int weft_sem_destroy(weft_sem_t *s);
/* Take one permit: 0, -ETIMEDOUT, -ECANCELED, -EPERM. A waiter whose wait
 * ends (timeout, cancellation) just as a permit is released to it either
 * gets it (0), or returns its error and the permit goes to the next waiter
 * or back to the count: none is lost. */
int weft_sem_acquire(weft_sem_t *s);
int weft_sem_acquire_until(weft_sem_t *s, weft_time_t deadline);
int weft_sem_acquire_step(weft_sem_t *s, weft_time_t deadline, weft_op_t *op);
/* 0, or -EAGAIN if no permit is free (or others wait for one). */
int weft_sem_try_acquire(weft_sem_t *s);
/* Return n permits (waking up to n waiters). -EOVERFLOW if the count would
 * pass WEFT_SEM_MAX (nothing changes); n == 0 does nothing. */
int weft_sem_release(weft_sem_t *s, unsigned n);
/* Free permits now (for diagnostics: it may change at once). */
unsigned weft_sem_value(const weft_sem_t *s);

/* ------------------------------------------------------------------- once */

typedef struct weft_once {
	uint32_t state;	 /* internal: not run / running / done */
	uint64_t runner; /* internal: the token of the caller running fn */
	weft_waitq_t q;	 /* internal: callers waiting for fn to finish */
} weft_once_t;

/* clang-format off */
#define WEFT_ONCE_INIT {0, 0, WEFT_WAITQ_INIT}
/* clang-format on */

int weft_once_init(weft_once_t *once);

/* Run fn(arg) if no caller has run it on this once yet; callers that arrive
 * while it runs wait until it has returned. 0 once fn has run (whoever ran
 * it; its effects are visible to the caller); -EDEADLK if called from
 * inside fn; -ETIMEDOUT, -ECANCELED, -EPERM for a waiting caller (fn still
 * runs, in the caller that started it). A cancelled task that gets to run
 * fn runs it all the same. */
int weft_once(weft_once_t *once, void (*fn)(void *arg), void *arg);
int weft_once_until(weft_once_t *once, void (*fn)(void *arg), void *arg, weft_time_t deadline);
/* A stackless caller elected to run fn runs it inside the call. */
int weft_once_step(weft_once_t *once, void (*fn)(void *arg), void *arg, weft_time_t deadline, weft_op_t *op);

/* ---------------------------------------------------------------- barrier */

/* A reusable barrier for n tasks. Each generation ends when the n-th task
 * arrives; all n continue, and exactly one of them (the last to arrive) gets
 * 1 (the "serial" task), the others 0. A waiter that times out or is
 * cancelled leaves the generation: it no longer counts towards n - unless
 * the n-th task arrived first, and then it passes with the others (0). A
 * generation passes all of its n tasks or none. */
typedef struct weft_barrier {
	uint32_t n;	  /* internal: tasks per generation */
	uint32_t arrived; /* internal: waiting in this generation (under q's lock) */
	weft_waitq_t q;	  /* internal: waiters */
} weft_barrier_t;

/* n >= 1, else -EINVAL. */
int weft_barrier_init(weft_barrier_t *b, unsigned n);
/* -EBUSY if tasks wait on it. */
int weft_barrier_destroy(weft_barrier_t *b);
/* 1 (serial) or 0; -ETIMEDOUT, -ECANCELED, -EPERM; -EINVAL if b was not
 * initialised. */
int weft_barrier_wait(weft_barrier_t *b);
int weft_barrier_wait_until(weft_barrier_t *b, weft_time_t deadline);
int weft_barrier_wait_step(weft_barrier_t *b, weft_time_t deadline, weft_op_t *op);

#ifdef __cplusplus
}
#endif
#endif
