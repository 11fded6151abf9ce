/* test_wake_race.c - a waiter whose wait ends (here: it is cancelled) at
 * the moment a waker reaches it. Nothing may be lost: what the waker hands
 * out goes to that waiter, or to the next one, or stays in the primitive
 * (src/sync/internal.h, "The discipline").
 *
 * Made deterministic, not timed: one worker and no monitor; the waiters
 * are coroutines parked on the primitive; a task spinning on the worker
 * holds it while the test's thread cancels the first waiter (its wait
 * ends, but it cannot run) and then wakes. Only then is the worker let go.
 * So the waker always finds a waiter whose wait has ended and has not yet
 * looked at its node:
 *  - a claim fails: the waiter is dropped (it returns -ECANCELED, having
 *    got nothing) and the waker goes on to the next waiter;
 *  - the barrier reserves every waiter before it claims any: the cancelled
 *    one still passes with its generation;
 *  - the mutex's and the rwlock writers' pop is the delivery: a cancelled
 *    writer is handed the lock all the same; a cancelled mutex waiter is
 *    woken to compete, finds the mutex free and takes it (a call that
 *    completes without waiting succeeds in a cancelled task). */
#include "wt_lifetime.h"

#include <pthread.h>
#include <sched.h>
#include <weft/sync.h>

#include "sync/internal.h" /* weft__mutex_waiters */

static weft_runtime_t *rt;

static wt_hold_t hold;

static void start(void)
{
	atomic_store(&tcheck_failures, 0);
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 1, .no_monitor = true}), 0);
}

static void stop(void)
{
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

static weft_task_t spawn(weft_fn_t fn, void *arg)
{
	weft_task_t t;
	assert_int_equal(weft_spawn(&t, fn, arg, &(weft_spawn_opts_t){.runtime = rt}), 0);
	return t;
}

static intptr_t join(weft_task_t t)
{
	void *res = NULL;
	assert_int_equal(weft_join(t, &res), 0);
	return (intptr_t)res;
}

/* Until cond holds (a bound only: the hang guard). */
#define UNTIL(cond)                                                                                                    \
	do {                                                                                                           \
		weft_time_t give_up_ = wt_hang_deadline();                                                             \
		while (!(cond) && weft_now() < give_up_)                                                               \
			sched_yield();                                                                                 \
		assert_true(cond);                                                                                     \
	} while (0)

/* Hold the worker, then cancel t: its wait ends, and it cannot run. */
static void hold_and_cancel(weft_task_t t)
{
	wt_hold(&hold, rt);
	assert_int_equal(weft_cancel(t), 0);
}

static void unhold(void)
{
	wt_unhold(&hold);
}

/* ------------------------------------------------------------ semaphore */

static weft_sem_t sem;

static void *sem_waiter(void *a)
{
	(void)a;
	return (void *)(intptr_t)weft_sem_acquire(&sem);
}

static void test_sem(void **state)
{
	(void)state;
	start();
	for (int second = 0; second < 2; second++) {
		weft_sem_init(&sem, 0);
		weft_task_t w1 = spawn(sem_waiter, NULL), w2 = 0;
		UNTIL(wt_queued(&sem.q) == 1);
		if (second) {
			w2 = spawn(sem_waiter, NULL);
			UNTIL(wt_queued(&sem.q) == 2);
		}
		hold_and_cancel(w1);
		assert_int_equal(weft_sem_release(&sem, 1), 0);
		/* The permit went to the second waiter, or back to the count. */
		assert_int_equal(weft_sem_value(&sem), second ? 0 : 1);
		unhold();
		assert_int_equal(join(w1), -ECANCELED);
		if (second)
			assert_int_equal(join(w2), 0);
		assert_int_equal(weft_sem_destroy(&sem), 0);
	}
	stop();
}

/* ------------------------------------------------------------ condition variable */

static weft_mutex_t cm;
static weft_cond_t cv;

static void *cond_waiter(void *a)
{
	(void)a;
	TCHECK_EQ(weft_mutex_lock(&cm), 0);
	int r = weft_cond_wait(&cv, &cm);
	TCHECK_EQ(weft_mutex_unlock(&cm), 0); /* held again, whatever the result */
	return (void *)(intptr_t)r;
}

static void test_cond(void **state)
{
	(void)state;
	start();
	for (int second = 0; second < 2; second++) {
		weft_mutex_init(&cm);
		weft_cond_init(&cv);
		weft_task_t w1 = spawn(cond_waiter, NULL), w2 = 0;
		UNTIL(wt_queued(&cv.q) == 1);
		if (second) {
			w2 = spawn(cond_waiter, NULL);
			UNTIL(wt_queued(&cv.q) == 2);
		}
		hold_and_cancel(w1);
		/* The signal skips the leaving waiter for the next one. */
		assert_int_equal(weft_cond_signal(&cv), second ? 1 : 0);
		assert_int_equal(wt_queued(&cv.q), 0);
		unhold();
		assert_int_equal(join(w1), -ECANCELED);
		if (second)
			assert_int_equal(join(w2), 0);
		assert_int_equal(weft_cond_destroy(&cv), 0);
		assert_int_equal(weft_mutex_destroy(&cm), 0);
	}
	stop();
}

/* ------------------------------------------------------------ wait group, once */

static weft_wg_t wg;

static void *wg_waiter(void *a)
{
	(void)a;
	return (void *)(intptr_t)weft_wg_wait(&wg);
}

static weft_once_t once;
static _Atomic int once_ran;

/* The waiter's function: the runner got there first, so never called. */
static void never_run(void *a)
{
	(void)a;
	TCHECK(false);
}

static void *once_waiter(void *a)
{
	(void)a;
	return (void *)(intptr_t)weft_once(&once, never_run, NULL);
}

static weft_task_t once_w;

static void once_fn(void *a)
{
	(void)a;
	atomic_fetch_add(&once_ran, 1);
	once_w = spawn(once_waiter, NULL);
	UNTIL(wt_queued(&once.q) == 1);
	hold_and_cancel(once_w);
}

static void test_wait_group_and_once(void **state)
{
	(void)state;
	start();
	weft_wg_init(&wg);
	assert_int_equal(weft_wg_add(&wg, 1), 0);
	weft_task_t w = spawn(wg_waiter, NULL);
	UNTIL(wt_queued(&wg.q) == 1);
	hold_and_cancel(w);
	assert_int_equal(weft_wg_done(&wg), 0);
	unhold();
	assert_int_equal(join(w), -ECANCELED); /* it had left: the zero came after */
	assert_int_equal(weft_wg_destroy(&wg), 0);

	weft_once_init(&once);
	assert_int_equal(weft_once(&once, once_fn, NULL), 0);
	unhold();
	assert_int_equal(join(once_w), -ECANCELED);
	assert_int_equal(atomic_load(&once_ran), 1);
	stop();
}

/* ------------------------------------------------------------ barrier */

static weft_barrier_t bar;

static void *barrier_waiter(void *a)
{
	(void)a;
	return (void *)(intptr_t)weft_barrier_wait(&bar);
}

static void test_barrier(void **state)
{
	(void)state;
	start();
	for (unsigned n = 2; n <= 3; n++) {
		weft_barrier_init(&bar, n);
		weft_task_t w1 = spawn(barrier_waiter, NULL), w2 = 0;
		UNTIL(wt_queued(&bar.q) == 1);
		if (n == 3) {
			w2 = spawn(barrier_waiter, NULL);
			UNTIL(wt_queued(&bar.q) == 2);
		}
		hold_and_cancel(w1);
		/* The last arrival reserves the cancelled waiter before its
		 * claim fails: the generation passes whole. */
		assert_int_equal(weft_barrier_wait(&bar), 1);
		assert_int_equal(wt_queued(&bar.q), 0);
		unhold();
		assert_int_equal(join(w1), 0);
		if (w2)
			assert_int_equal(join(w2), 0);
		assert_int_equal(weft_barrier_destroy(&bar), 0);
	}
	stop();
}

/* A waiter that has begun to leave (its node WITHDRAWN, without the lock)
 * but not yet counted itself out (under the lock, held here by the test)
 * when the arrival that would have been the n-th comes: whichever of the
 * two gets the lock first, the leaver leaves and the arrival waits for the
 * next one. The leaver is a stackless task, whose node (in its op) the
 * test can watch; the test's thread arrives the moment it lets the lock
 * go (so it mostly gets it first: the leaver is backing off by then), and
 * a plain thread arrives last, once the leaver is gone. */
static weft_op_t leaver_op;
static _Atomic int leaver_res = 1;

static weft_step_t leaver(void *a, void **res)
{
	(void)a;
	*res = NULL;
	int r = weft_barrier_wait_step(&bar, WEFT_NEVER, &leaver_op);
	if (r == -EINPROGRESS)
		return WEFT_STEP_PARKED;
	atomic_store(&leaver_res, r);
	return WEFT_STEP_DONE;
}

/* The last arrival: once the leaver has left and the test's thread waits. */
static void *last_arrival(void *a)
{
	(void)a;
	weft_time_t give_up = wt_hang_deadline();
	while ((atomic_load(&leaver_res) == 1 || wt_queued(&bar.q) != 1) && weft_now() < give_up)
		sched_yield();
	return (void *)(intptr_t)weft_barrier_wait(&bar);
}

#define LEAVER_ROUNDS WT_SIZE(40, 10)

static void test_barrier_leaver(void **state)
{
	(void)state;
	start();
	weft__sync_op *o = (weft__sync_op *)&leaver_op;
	for (int i = 0; i < LEAVER_ROUNDS; i++) {
		weft_barrier_init(&bar, 2);
		atomic_store(&leaver_res, 1);
		weft_task_t w;
		assert_int_equal(weft_spawn_step(&w, leaver, NULL, &(weft_spawn_opts_t){.runtime = rt}), 0);
		UNTIL(wt_queued(&bar.q) == 1);
		pthread_t th;
		assert_int_equal(pthread_create(&th, NULL, last_arrival, NULL), 0);
		weft_waitq_lock(&bar.q);
		assert_int_equal(weft_cancel(w), 0);
		UNTIL(__atomic_load_n(&o->n.status, __ATOMIC_ACQUIRE) == WEFT__SYNC_WITHDRAWN);
		weft_waitq_unlock(&bar.q);
		/* Not the second: it waits, for the last arrival. */
		assert_int_equal(weft_barrier_wait(&bar), 0);
		void *r;
		assert_int_equal(pthread_join(th, &r), 0);
		assert_int_equal((intptr_t)r, 1);
		join(w);
		assert_int_equal(atomic_load(&leaver_res), -ECANCELED);
		assert_int_equal(weft_barrier_destroy(&bar), 0);
	}
	stop();
}

/* ------------------------------------------------------------ readers-writer lock */

static weft_rwlock_t rw;

static void *reader(void *a)
{
	(void)a;
	int r = weft_rwlock_rdlock(&rw);
	if (r == 0)
		TCHECK_EQ(weft_rwlock_unlock(&rw), 0);
	return (void *)(intptr_t)r;
}

static void *writer(void *a)
{
	(void)a;
	int r = weft_rwlock_wrlock(&rw);
	if (r == 0)
		TCHECK_EQ(weft_rwlock_unlock(&rw), 0);
	return (void *)(intptr_t)r;
}

static void test_rwlock(void **state)
{
	(void)state;
	start();
	for (int writers = 0; writers < 2; writers++) {
		weft_rwlock_init(&rw);
		assert_int_equal(weft_rwlock_wrlock(&rw), 0);
		weft_waitq_t *q = writers ? &rw.wq : &rw.rq;
		weft_task_t w1 = spawn(writers ? writer : reader, NULL);
		UNTIL(wt_queued(q) == 1);
		weft_task_t w2 = spawn(writers ? writer : reader, NULL);
		UNTIL(wt_queued(q) == 2);
		hold_and_cancel(w1);
		assert_int_equal(weft_rwlock_unlock(&rw), 0);
		/* Readers: the cancelled one is dropped, the second let in.
		 * Writers: the first is handed the lock (the pop is the
		 * delivery), cancelled or not; the second gets it after. */
		assert_int_equal(weft_rwlock_try_wrlock(&rw), -EAGAIN);
		assert_int_equal(weft_rwlock_try_rdlock(&rw), writers ? -EAGAIN : 0);
		if (!writers)
			assert_int_equal(weft_rwlock_unlock(&rw), 0);
		unhold();
		assert_int_equal(join(w1), writers ? 0 : -ECANCELED);
		assert_int_equal(join(w2), 0);
		assert_int_equal(weft_rwlock_destroy(&rw), 0);
	}
	stop();
}

/* ------------------------------------------------------------ mutex */

static weft_mutex_t mx;

static void *locker(void *a)
{
	(void)a;
	int r = weft_mutex_lock(&mx);
	if (r == 0)
		TCHECK_EQ(weft_mutex_unlock(&mx), 0);
	return (void *)(intptr_t)r;
}

static void test_mutex(void **state)
{
	(void)state;
	start();
	weft_mutex_init(&mx);
	assert_int_equal(weft_mutex_lock(&mx), 0);
	weft_task_t w = spawn(locker, NULL);
	UNTIL(weft__mutex_waiters(&mx) == 1);
	hold_and_cancel(w);
	assert_int_equal(weft_mutex_unlock(&mx), 0);
	assert_int_equal(weft__mutex_waiters(&mx), 0); /* woken: counted out */
	unhold();
	assert_int_equal(join(w), 0); /* woke to a free mutex and took it */
	assert_int_equal(weft_mutex_destroy(&mx), 0);
	stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sem),
		cmocka_unit_test(test_cond),
		cmocka_unit_test(test_wait_group_and_once),
		cmocka_unit_test(test_barrier),
		cmocka_unit_test(test_barrier_leaver),
		cmocka_unit_test(test_rwlock),
		cmocka_unit_test(test_mutex),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
