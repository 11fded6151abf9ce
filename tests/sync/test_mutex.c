/* test_mutex.c - the task-aware mutex. */
#include "wt_sim.h"

#include <pthread.h>
#include <weft/sync.h>

/* White-box: the state word's low bits and waiter count (src/sync/mutex.c). */
#define MX_STARVING 4u
#define MX_WAITERS(m) (__atomic_load_n(&(m)->state, __ATOMIC_ACQUIRE) >> 3)

/* Wait (parking) until m has n parked waiters. */
static void wait_waiters(weft_mutex_t *m, uint32_t n)
{
	while (MX_WAITERS(m) != n)
		weft_sleep(WEFT_MSEC / 4);
}

/* ------------------------------------------------------------ errors */

static weft_mutex_t em = WEFT_MUTEX_INIT;

static void *unlock_foreign(void *a)
{
	(void)a;
	TCHECK_EQ(weft_mutex_unlock(&em), -EPERM); /* held by the test-main task */
	TCHECK_EQ(weft_mutex_try_lock(&em), -EAGAIN);
	return NULL;
}

static void *locks_and_ends(void *a)
{
	TCHECK_EQ(weft_mutex_lock(a), 0);
	return NULL; /* ends holding it */
}

static void *locks_and_unlocks(void *a)
{
	TCHECK_EQ(weft_mutex_lock(a), 0);
	TCHECK_EQ(weft_mutex_unlock(a), 0);
	return NULL;
}

static void *errors_main(void *a)
{
	(void)a;
	TCHECK_EQ(weft_mutex_init(NULL), -EINVAL);
	TCHECK_EQ(weft_mutex_lock(NULL), -EINVAL);
	TCHECK_EQ(weft_mutex_lock_until(NULL, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_mutex_try_lock(NULL), -EINVAL);
	TCHECK_EQ(weft_mutex_unlock(NULL), -EINVAL);
	TCHECK_EQ(weft_mutex_destroy(NULL), -EINVAL);

	TCHECK_EQ(weft_mutex_unlock(&em), -EPERM); /* not locked */
	TCHECK_EQ(weft_mutex_lock(&em), 0);
	TCHECK_EQ(weft_mutex_lock(&em), -EDEADLK);
	TCHECK_EQ(weft_mutex_lock_until(&em, weft_deadline_in(WEFT_MSEC)), -EDEADLK);
	TCHECK_EQ(weft_mutex_destroy(&em), -EBUSY);
	wt_join(wt_spawn(unlock_foreign, NULL));
	TCHECK_EQ(weft_mutex_unlock(&em), 0);
	TCHECK_EQ(weft_mutex_unlock(&em), -EPERM); /* twice */
	TCHECK_EQ(weft_mutex_destroy(&em), 0);

	weft_mutex_t m;
	TCHECK_EQ(weft_mutex_init(&m), 0);
	TCHECK_EQ(weft_mutex_try_lock(&m), 0);
	TCHECK_EQ(weft_mutex_try_lock(&m), -EAGAIN);
	TCHECK_EQ(weft_mutex_unlock(&m), 0);
	TCHECK_EQ(weft_mutex_destroy(&m), 0);

	/* Unlocking for a task that holds it (and has ended). */
	TCHECK_EQ(weft_mutex_unlock_for(NULL, weft_self()), -EINVAL);
	TCHECK_EQ(weft_mutex_unlock_for(&m, 0), -EINVAL);
	TCHECK_EQ(weft_mutex_waiters(NULL), -EINVAL);
	weft_task_t holder = wt_spawn(locks_and_ends, &m);
	wt_join(holder);
	TCHECK_EQ(weft_mutex_try_lock(&m), -EAGAIN); /* still held by the ended task */
	TCHECK_EQ(weft_mutex_unlock_for(&m, weft_self()), -EPERM);
	weft_task_t w = wt_spawn(locks_and_unlocks, &m);
	WT_WAIT_UNTIL(weft_mutex_waiters(&m) == 1); /* parked behind the ended holder */
	TCHECK_EQ(weft_mutex_unlock_for(&m, holder), 0);
	wt_join(w); /* it got the lock */
	TCHECK_EQ(weft_mutex_waiters(&m), 0);
	TCHECK_EQ(weft_mutex_unlock_for(&m, holder), -EPERM);
	TCHECK_EQ(weft_mutex_destroy(&m), 0);
	return NULL;
}

static void test_errors(void **state)
{
	(void)state;
	wt_run(errors_main, NULL, 2);
}

/* A plain thread is an owner too: a task cannot unlock what it holds. */
static void *unlock_thread_held(void *a)
{
	TCHECK_EQ(weft_mutex_unlock(a), -EPERM);
	TCHECK_EQ(weft_mutex_try_lock(a), -EAGAIN);
	return NULL;
}

static void test_thread_owner(void **state)
{
	(void)state;
	weft_mutex_t m = WEFT_MUTEX_INIT;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	atomic_store(&tcheck_failures, 0);
	assert_int_equal(weft_mutex_unlock(&m), -EPERM);
	assert_int_equal(weft_mutex_lock(&m), 0);
	assert_int_equal(weft_mutex_lock(&m), -EDEADLK);
	weft_task_t t;
	assert_int_equal(weft_spawn(&t, unlock_thread_held, &m, NULL), 0);
	assert_int_equal(weft_join(t, NULL), 0);
	assert_int_equal(weft_mutex_unlock(&m), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* ------------------------------------------------------------ exclusion */

static weft_mutex_t cm = WEFT_MUTEX_INIT;
static long counter; /* plain: only the mutex protects it */
static _Atomic int inside;
static long iters;

static void increment_loop(void)
{
	for (long i = 0; i < iters; i++) {
		TCHECK_EQ(weft_mutex_lock(&cm), 0);
		TCHECK_EQ(atomic_fetch_add_explicit(&inside, 1, memory_order_relaxed), 0);
		counter++;
		if ((i & 63) == 0)
			weft_yield(); /* hold it across a switch now and then */
		atomic_fetch_sub_explicit(&inside, 1, memory_order_relaxed);
		TCHECK_EQ(weft_mutex_unlock(&cm), 0);
	}
}

static void *incrementer(void *a)
{
	(void)a;
	increment_loop();
	return NULL;
}

static void *contention_main(void *a)
{
	long ntasks = (long)a;
	weft_group_t *g;
	TCHECK_EQ(weft_group_create(&g, false), 0);
	for (long i = 0; i < ntasks; i++)
		TCHECK_EQ(weft_spawn(NULL, incrementer, NULL, &(weft_spawn_opts_t){.group = g}), 0);
	TCHECK_EQ(weft_group_wait(g), 0);
	weft_group_destroy(g);
	return NULL;
}

static void run_contention(long ntasks, int workers)
{
	counter = 0;
	wt_run(contention_main, (void *)ntasks, workers);
	assert_int_equal(counter, ntasks * iters);
	assert_int_equal(weft_mutex_destroy(&cm), 0); /* nothing left behind */
}

static void test_exclusion_tasks(void **state)
{
	(void)state;
	iters = WT_SIZE(2000, 1000);
	run_contention(WT_SIZE(1000, 200), 0);
	run_contention(WT_SIZE(200, 50), 4); /* more workers than CPUs */
	run_contention(WT_SIZE(100, 20), 1);
}

/* Plain threads and tasks on the same mutex. */
static void *thread_incrementer(void *a)
{
	(void)a;
	increment_loop();
	return NULL;
}

static void *mixed_main(void *a)
{
	(void)a;
	enum { THREADS = 3 };
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++)
		TCHECK_EQ(pthread_create(&th[i], NULL, thread_incrementer, NULL), 0);
	contention_main((void *)(long)WT_SIZE(200, 40));
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL); /* blocks this worker; fine at the end */
	return NULL;
}

static void test_exclusion_threads_and_tasks(void **state)
{
	(void)state;
	iters = WT_SIZE(2000, 1000);
	counter = 0;
	wt_run(mixed_main, NULL, 2);
	assert_int_equal(counter, (WT_SIZE(200, 40) + 3) * iters);
	assert_int_equal(weft_mutex_destroy(&cm), 0);
}

/* ------------------------------------------------------------ starvation */

/* A "barger" holds the mutex, unlocks and relocks at once, so a woken
 * waiter never finds it free. Without starvation mode the waiters would
 * wait for ever; with it, once a waiter has waited over 1 ms the mutex is
 * handed over FIFO and the barger queues behind them.
 *
 * One worker and no monitor make the interleaving the scheduler's, not the
 * machine's: the barger's unlock queues the first waiter in the next-task
 * slot, its relock succeeds (the mode is still normal), and its yield
 * (holding the mutex) runs that waiter, which has waited over 2 ms, finds
 * the mutex held and turns starvation mode on. From then on every unlock
 * is a handoff: each waiter in turn, then the barger, queued behind them.
 * (Waits are measured by a clock, but only as "over 1 ms" after a 2 ms
 * sleep, which load can only lengthen.) */
enum { SW = 5 };
static weft_mutex_t sm = WEFT_MUTEX_INIT;
static int slog[4096]; /* who held it, in order: 0 barger, i+1 waiter i */
static int nslog;
static _Atomic int sdone, saw_starving;

static void slog_add(int who)
{
	if (nslog < (int)(sizeof slog / sizeof *slog))
		slog[nslog++] = who;
}

static void *starved_waiter(void *a)
{
	int i = (int)(intptr_t)a;
	TCHECK_EQ(weft_mutex_lock(&sm), 0);
	slog_add(i + 1);
	if (__atomic_load_n(&sm.state, __ATOMIC_RELAXED) & MX_STARVING)
		atomic_fetch_add(&saw_starving, 1);
	TCHECK_EQ(weft_mutex_unlock(&sm), 0);
	atomic_fetch_add(&sdone, 1);
	return NULL;
}

static void *starvation_main(void *a)
{
	(void)a;
	weft_task_t w[SW];
	TCHECK_EQ(weft_mutex_lock(&sm), 0);
	for (int i = 0; i < SW; i++) {
		w[i] = wt_spawn(starved_waiter, (void *)(intptr_t)i);
		wait_waiters(&sm, (uint32_t)i + 1); /* queued in this order */
	}
	weft_sleep(2 * WEFT_MSEC); /* all have waited over 1 ms */
	slog_add(0);
	/* Barge: relock at once and let the others run (holding it), until
	 * every waiter is done. Without starvation mode this never ends: the
	 * hang guard turns that into a failure. */
	weft_time_t give_up = wt_hang_deadline();
	while (atomic_load(&sdone) < SW && weft_now() < give_up) {
		TCHECK_EQ(weft_mutex_unlock(&sm), 0);
		TCHECK_EQ(weft_mutex_lock(&sm), 0);
		slog_add(0);
		weft_yield();
	}
	TCHECK_EQ(atomic_load(&sdone), SW);
	TCHECK_EQ(weft_mutex_unlock(&sm), 0);
	for (int i = 0; i < SW; i++)
		wt_join(w[i]);
	return NULL;
}

static void test_starvation_mode_fifo(void **state)
{
	(void)state;
	wt_run_cfg(starvation_main, NULL, &(weft_config_t){.workers = 1, .no_monitor = true});
	assert_int_equal(atomic_load(&sdone), SW);
	/* FIFO: the waiters got it in the order they queued. */
	int next = 1, first = -1, last = -1;
	for (int k = 0; k < nslog; k++) {
		if (slog[k] == 0)
			continue;
		assert_int_equal(slog[k], next);
		next++;
		if (first < 0)
			first = k;
		last = k;
	}
	assert_int_equal(next, SW + 1);
	/* Handed over: the mode was on while each of them had it... */
	assert_int_equal(atomic_load(&saw_starving), SW);
	/* ...and the barger did not get it once while they were served. */
	int barges = 0;
	for (int k = first; k <= last; k++)
		barges += slog[k] == 0;
	assert_int_equal(barges, 0);
	assert_int_equal(weft_mutex_destroy(&sm), 0);
}

/* ------------------------------------------------------------ deadlines */

static weft_mutex_t dm = WEFT_MUTEX_INIT;
static _Atomic int dstage;

static void *deadline_waiter(void *a)
{
	(void)a;
	weft_time_t dl = weft_deadline_in(5 * WEFT_MSEC);
	TCHECK_EQ(weft_mutex_lock_until(&dm, dl), -ETIMEDOUT);
	TCHECK(weft_now() >= dl);
	TCHECK_EQ(weft_mutex_lock_until(&dm, weft_now() - 1), -ETIMEDOUT); /* past: no wait */
	TCHECK_EQ(weft_mutex_unlock(&dm), -EPERM);			   /* it got nothing */
	atomic_store(&dstage, 1);
	while (atomic_load(&dstage) != 2)
		weft_sleep(WEFT_MSEC / 4);
	TCHECK_EQ(weft_mutex_lock_until(&dm, weft_now() - 1), 0); /* free: a past deadline is fine */
	TCHECK_EQ(weft_mutex_unlock(&dm), 0);
	return NULL;
}

static void *deadline_main(void *a)
{
	(void)a;
	TCHECK_EQ(weft_mutex_lock(&dm), 0);
	weft_task_t t = wt_spawn(deadline_waiter, NULL);
	while (atomic_load(&dstage) != 1)
		weft_sleep(WEFT_MSEC / 4);
	TCHECK_EQ(MX_WAITERS(&dm), 0); /* it left the queue */
	TCHECK_EQ(weft_mutex_unlock(&dm), 0);
	atomic_store(&dstage, 2);
	wt_join(t);
	return NULL;
}

static void test_deadline(void **state)
{
	(void)state;
	wt_run(deadline_main, NULL, 2);
	assert_int_equal(weft_mutex_destroy(&dm), 0);
}

/* A plain thread times out too. */
static void *thread_lock_5ms(void *m)
{
	return (void *)(intptr_t)weft_mutex_lock_until(m, weft_deadline_in(5 * WEFT_MSEC));
}

static void test_deadline_thread(void **state)
{
	(void)state;
	weft_mutex_t m = WEFT_MUTEX_INIT;
	assert_int_equal(weft_mutex_lock(&m), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, thread_lock_5ms, &m), 0);
	void *res;
	pthread_join(th, &res);
	assert_int_equal((int)(intptr_t)res, -ETIMEDOUT);
	assert_int_equal(weft_mutex_unlock(&m), 0);
	assert_int_equal(weft_mutex_destroy(&m), 0);
}

/* ------------------------------------------------------------ cancellation */

static weft_mutex_t xm = WEFT_MUTEX_INIT;
static _Atomic int xstage;

static void *cancelled_locker(void *a)
{
	(void)a;
	atomic_store(&xstage, 1);
	int r = weft_mutex_lock(&xm);
	TCHECK_EQ(r, -ECANCELED);
	TCHECK_EQ(weft_mutex_lock(&xm), -ECANCELED); /* sticky while it would wait */
	return NULL;
}

static void *cancel_main(void *a)
{
	(void)a;
	TCHECK_EQ(weft_mutex_lock(&xm), 0);
	weft_task_t t = wt_spawn(cancelled_locker, NULL);
	wait_waiters(&xm, 1);
	TCHECK_EQ(weft_cancel(t), 0);
	wt_join(t);
	TCHECK_EQ(MX_WAITERS(&xm), 0);
	TCHECK_EQ(weft_mutex_unlock(&xm), 0);
	TCHECK_EQ(weft_mutex_destroy(&xm), 0);
	return NULL;
}

static void test_cancel(void **state)
{
	(void)state;
	wt_run(cancel_main, NULL, 2);
}

/* ------------------------------------------------------------ give-up stress */

/* Many lockers with short deadlines, some cancelled: every successful lock
 * is counted, the counter matches, and nothing is left queued or locked. */
static weft_mutex_t gm = WEFT_MUTEX_INIT;
static long gcount;
static _Atomic long gsucc;

static void *impatient(void *a)
{
	uint64_t seed = (uint64_t)(uintptr_t)a;
	for (int i = 0; i < 200; i++) {
		seed = wt_lcg(seed);
		weft_time_t wait = (weft_time_t)((seed >> 33) % (WEFT_MSEC / 2));
		int r = weft_mutex_lock_until(&gm, weft_deadline_in(wait));
		if (r == -ECANCELED)
			return NULL;
		if (r == -ETIMEDOUT)
			continue;
		TCHECK_EQ(r, 0);
		gcount++;
		atomic_fetch_add_explicit(&gsucc, 1, memory_order_relaxed);
		if (i % 7 == 0)
			weft_sleep(50000); /* hold it a while, parked */
		TCHECK_EQ(weft_mutex_unlock(&gm), 0);
	}
	return NULL;
}

static void *giveup_main(void *a)
{
	(void)a;
	wt_spawn_cancel_some(impatient, 64, 5);
	return NULL;
}

static void test_giving_up_is_clean(void **state)
{
	(void)state;
	wt_run(giveup_main, NULL, 2);
	assert_int_equal(gcount, atomic_load(&gsucc));
	assert_true(gcount > 0);
	assert_int_equal(weft_mutex_destroy(&gm), 0);
	assert_int_equal(gm.state, 0);
}

/* ------------------------------------------------------------ stackless */

static weft_mutex_t pm = WEFT_MUTEX_INIT;

static weft_step_t step_locker(void *s, void **r)
{
	(void)s;
	(void)r;
	TCHECK_EQ(weft_mutex_try_lock(&pm), -EAGAIN); /* held by test-main */
	TCHECK_EQ(weft_mutex_lock(&pm), -EPERM);      /* would have to wait */
	TCHECK_EQ(weft_mutex_lock_until(&pm, weft_deadline_in(WEFT_MSEC)), -EPERM);
	TCHECK_EQ(MX_WAITERS(&pm), 0);
	return WEFT_STEP_DONE;
}

static weft_step_t step_free_locker(void *s, void **r)
{
	(void)s;
	(void)r;
	TCHECK_EQ(weft_mutex_lock(&pm), 0); /* no wait needed */
	TCHECK_EQ(weft_mutex_unlock(&pm), 0);
	TCHECK_EQ(weft_mutex_try_lock(&pm), 0);
	TCHECK_EQ(weft_mutex_unlock(&pm), 0);
	return WEFT_STEP_DONE;
}

static void *stackless_main(void *a)
{
	(void)a;
	weft_task_t t;
	TCHECK_EQ(weft_mutex_lock(&pm), 0);
	TCHECK_EQ(weft_spawn_step(&t, step_locker, NULL, NULL), 0);
	wt_join(t);
	TCHECK_EQ(weft_mutex_unlock(&pm), 0);
	TCHECK_EQ(weft_spawn_step(&t, step_free_locker, NULL, NULL), 0);
	wt_join(t);
	return NULL;
}

static void test_stackless(void **state)
{
	(void)state;
	wt_run(stackless_main, NULL, 2);
	assert_int_equal(weft_mutex_destroy(&pm), 0);
}

/* ------------------------------------------------------------ under the simulation */

/* The twins: the same bodies, one task at a time in an order drawn from
 * each seed (tests/wt_sim.h). The run cost of the virtual clock lets
 * waits outlast the starvation threshold under contention. */
static void *contention_sim_main(void *a)
{
	counter = 0;
	return contention_main(a);
}

static void contention_sim_check(void *a)
{
	TCHECK_EQ(counter, (long)a * iters);
	TCHECK_EQ(weft_mutex_destroy(&cm), 0);
}

static void test_exclusion_tasks_sim(void **state)
{
	(void)state;
	iters = 50;
	wt_sim_sweep("sync/exclusion_tasks", contention_sim_main, contention_sim_check, (void *)20L, WT_SIM_SEEDS);
}

static void test_cancel_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/mutex_cancel", cancel_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *giveup_sim_main(void *a)
{
	gcount = 0;
	atomic_store(&gsucc, 0);
	return giveup_main(a);
}

static void giveup_sim_check(void *a)
{
	(void)a;
	TCHECK_EQ(gcount, atomic_load(&gsucc));
	TCHECK(gcount > 0);
	TCHECK_EQ(weft_mutex_destroy(&gm), 0);
	TCHECK_EQ(gm.state, 0);
}

static void test_giving_up_is_clean_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/mutex_giving_up_is_clean", giveup_sim_main, giveup_sim_check, NULL, WT_SIZE3(60, 20, 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_thread_owner),
		cmocka_unit_test(test_exclusion_tasks),
		cmocka_unit_test(test_exclusion_threads_and_tasks),
		cmocka_unit_test(test_starvation_mode_fifo),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_deadline_thread),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_giving_up_is_clean),
		cmocka_unit_test(test_stackless),
		cmocka_unit_test(test_exclusion_tasks_sim),
		cmocka_unit_test(test_cancel_sim),
		cmocka_unit_test(test_giving_up_is_clean_sim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
