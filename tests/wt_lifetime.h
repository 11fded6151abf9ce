/* wt_lifetime.h - the harness of the lifetime tests: the side an operation
 * completes for frees the object the moment its call returns, while the
 * other side's call is stretched right after its wake-up.
 *
 * weft__unpark_hook (src/sched/park.c) runs after every successful unpark.
 * A test arms it on the waker's thread just before the waking call; the
 * hook then sleeps there for WT_STRETCH_NS, long enough for the woken side
 * to run on another worker (or thread), return and free the object. A
 * waker that still touched the object after the wake-up would then touch
 * freed memory, which ASan and TSan report. */
#ifndef WT_LIFETIME_H
#define WT_LIFETIME_H

#include "weft_test.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

extern _Atomic(void (*)(void)) weft__unpark_hook;

#define WT_STRETCH_NS (5 * WEFT_MSEC)

static __thread int wt_armed; /* wake-ups of this thread left to stretch */
static _Atomic int wt_stretched, wt_arms;

static void wt_hook(void)
{
	if (wt_armed <= 0)
		return;
	wt_armed--;
	atomic_fetch_add(&wt_stretched, 1);
	struct timespec ts = {0, WT_STRETCH_NS};
	nanosleep(&ts, NULL);
}

/* Arm the stretch for the next n wake-ups made by this thread (a waker
 * that wakes several waiters: stretched after each, the last one's
 * included). */
static inline void wt_arm_n(int n)
{
	atomic_store(&weft__unpark_hook, wt_hook);
	atomic_fetch_add(&wt_arms, 1);
	wt_armed = n;
}

/* Arm the stretch for the next wake-up made by this thread. */
static inline void wt_arm(void)
{
	wt_arm_n(1);
}

static inline void wt_disarm(void)
{
	wt_armed = 0;
}

/* Free p (n bytes) after filling it with 0xab, so that a late touch shows
 * in a build without a sanitizer too: a lock word reads as held, a count
 * or a state as garbage. */
static inline void wt_poison_free(void *p, size_t n)
{
	memset(p, 0xab, n);
	free(p);
}

/* Hold a runtime's only worker (a runtime of one worker and no monitor,
 * which would start another): a task spins there until wt_unhold, so a
 * task woken meanwhile runs only after that. From the test's thread. */
typedef struct wt_hold {
	_Atomic int hold, holding;
	weft_task_t task;
} wt_hold_t;

static void *wt_hold_main(void *a)
{
	wt_hold_t *h = a;
	atomic_store(&h->holding, 1);
	while (atomic_load(&h->hold))
		; /* the only worker: nothing else runs meanwhile */
	return NULL;
}

static inline void wt_hold(wt_hold_t *h, weft_runtime_t *rt)
{
	atomic_store(&h->hold, 1);
	atomic_store(&h->holding, 0);
	assert_int_equal(weft_spawn(&h->task, wt_hold_main, h, &(weft_spawn_opts_t){.runtime = rt}), 0);
	weft_time_t give_up = wt_hang_deadline();
	while (!atomic_load(&h->holding) && weft_now() < give_up)
		sched_yield();
	assert_true(atomic_load(&h->holding));
}

static inline void wt_unhold(wt_hold_t *h)
{
	atomic_store(&h->hold, 0);
	assert_int_equal(weft_join(h->task, NULL), 0);
}

/* How many nodes q holds now (under its lock). */
static inline size_t wt_queued(weft_waitq_t *q)
{
	weft_waitq_lock(q);
	size_t n = q->len;
	weft_waitq_unlock(q);
	return n;
}

/* One round: `waiter` blocks on the object and frees it when its call
 * returns; `waker` (armed) makes that call return. Each runs either as a
 * task of the runtime or on a plain thread. */
typedef struct wt_round {
	void *obj;
	_Atomic int waiting; /* the waiter is about to block */
	_Atomic int done;    /* the waiter freed the object */
	int result;	     /* what the waiter's call returned */
} wt_round_t;

/* Until the waiter has announced itself, then a little longer so that it
 * is most likely parked (if it is not yet, the round is merely weaker). */
static inline void wt_until_waiting(wt_round_t *r)
{
	while (!atomic_load(&r->waiting))
		weft_yield();
	weft_sleep(WEFT_MSEC);
}

static inline void wt_until_done(wt_round_t *r)
{
	while (!atomic_load(&r->done))
		weft_yield();
}

typedef struct wt_thread_arg {
	void *(*fn)(void *);
	void *arg;
} wt_thread_arg_t;

static void *wt_thread_main(void *a)
{
	wt_thread_arg_t *t = a;
	return t->fn(t->arg);
}

/* Run waiter and waker for `rounds` rounds: in half of them the waiter is a
 * task and the waker a plain thread, in the other half the other way round.
 * new_obj makes a fresh object for each round. */
static inline void wt_rounds(int rounds, void *(*new_obj)(void), void *(*waiter)(void *), void *(*waker)(void *))
{
	atomic_store(&tcheck_failures, 0);
	atomic_store(&wt_stretched, 0);
	atomic_store(&wt_arms, 0);
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	for (int i = 0; i < rounds; i++) {
		wt_round_t r = {.obj = new_obj()};
		assert_non_null(r.obj);
		bool task_waits = i % 2 == 0;
		pthread_t th;
		wt_thread_arg_t ta = {task_waits ? waker : waiter, &r};
		weft_task_t t;
		void *(*in_task)(void *) = task_waits ? waiter : waker;
		assert_int_equal(weft_spawn(&t, in_task, &r, &(weft_spawn_opts_t){.runtime = rt}), 0);
		assert_int_equal(pthread_create(&th, NULL, wt_thread_main, &ta), 0);
		assert_int_equal(pthread_join(th, NULL), 0);
		assert_int_equal(weft_join(t, NULL), 0);
		assert_int_equal(atomic_load(&r.done), 1);
	}
	atomic_store(&weft__unpark_hook, NULL);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
	if (atomic_load(&wt_arms)) /* the wake-ups asked to be stretched were */
		assert_true(atomic_load(&wt_stretched) > 0);
}

#endif
