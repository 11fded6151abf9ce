/* test_waitgroup.c - wait groups. */
#include "wt_sim.h"

#include <pthread.h>
#include <weft/sync.h>

static size_t wg_waiters(weft_wg_t *wg)
{
	weft_waitq_lock(&wg->q);
	size_t n = wg->q.len;
	weft_waitq_unlock(&wg->q);
	return n;
}

/* ------------------------------------------------------------ counting rules */

static void test_negative_count_is_refused(void **state)
{
	(void)state;
	weft_wg_t wg;
	assert_int_equal(weft_wg_init(NULL), -EINVAL);
	assert_int_equal(weft_wg_init(&wg), 0);
	assert_int_equal(weft_wg_add(NULL, 1), -EINVAL);
	assert_int_equal(weft_wg_done(NULL), -EINVAL);
	assert_int_equal(weft_wg_wait(NULL), -EINVAL);
	assert_int_equal(weft_wg_destroy(NULL), -EINVAL);

	assert_int_equal(weft_wg_done(&wg), -EINVAL); /* below zero */
	assert_int_equal(weft_wg_count(&wg), 0);
	assert_int_equal(weft_wg_add(&wg, -1), -EINVAL);
	assert_int_equal(weft_wg_count(&wg), 0);
	assert_int_equal(weft_wg_add(&wg, 3), 0);
	assert_int_equal(weft_wg_add(&wg, -4), -EINVAL); /* nothing changes */
	assert_int_equal(weft_wg_count(&wg), 3);
	assert_int_equal(weft_wg_add(&wg, INT64_MAX), -EOVERFLOW);
	assert_int_equal(weft_wg_count(&wg), 3);
	assert_int_equal(weft_wg_destroy(&wg), -EBUSY);
	assert_int_equal(weft_wg_add(&wg, -2), 0);
	assert_int_equal(weft_wg_done(&wg), 0);
	assert_int_equal(weft_wg_done(&wg), -EINVAL);
	assert_int_equal(weft_wg_count(&wg), 0);
	assert_int_equal(weft_wg_wait(&wg), 0); /* zero: returns at once, even on a plain thread */
	assert_int_equal(weft_wg_destroy(&wg), 0);
}

/* ------------------------------------------------------------ many done, many waiters */

static weft_wg_t wg = WEFT_WG_INIT;
static _Atomic long finished;
static _Atomic int waiters_back;

static void *worker(void *a)
{
	(void)a;
	if ((atomic_fetch_add(&finished, 1) & 7) == 0)
		weft_yield();
	TCHECK_EQ(weft_wg_done(&wg), 0);
	return NULL;
}

static void *waiter(void *a)
{
	long n = (long)a;
	TCHECK_EQ(weft_wg_wait(&wg), 0);
	TCHECK_EQ(atomic_load(&finished), n); /* every done happened before */
	atomic_fetch_add(&waiters_back, 1);
	return NULL;
}

static void *thread_waiter(void *a)
{
	waiter(a);
	return NULL;
}

static long nworkers;

static void *many_main(void *a)
{
	(void)a;
	long n = nworkers;
	/* One waiter is a plain thread; none under the simulation, which only
	 * its own thread may touch. */
	int threads = weft_runtime_is_sim(weft_runtime_current()) ? 0 : 1;
	for (int round = 0; round < 3; round++) { /* reused round after round */
		atomic_store(&finished, 0);
		atomic_store(&waiters_back, 0);
		TCHECK_EQ(weft_wg_add(&wg, n), 0);
		enum { W = 4 };
		weft_task_t w[W];
		pthread_t th;
		for (int i = 0; i < W; i++)
			w[i] = wt_spawn(waiter, (void *)n);
		if (threads)
			TCHECK_EQ(pthread_create(&th, NULL, thread_waiter, (void *)n), 0);
		for (long i = 0; i < n; i++)
			TCHECK_EQ(weft_spawn(NULL, worker, NULL,
					     &(weft_spawn_opts_t){.detached = true, .stack_size = 8192}),
				  0);
		TCHECK_EQ(weft_wg_wait(&wg), 0);
		for (int i = 0; i < W; i++)
			wt_join(w[i]);
		if (threads)
			pthread_join(th, NULL);
		TCHECK_EQ(atomic_load(&waiters_back), W + threads); /* every waiter woken, once */
		TCHECK_EQ(atomic_load(&finished), n);
		TCHECK_EQ(weft_wg_count(&wg), 0);
	}
	return NULL;
}

static void test_last_done_wakes_all(void **state)
{
	(void)state;
	nworkers = WT_SIZE3(100000, 3000, 1000);
	wt_run(many_main, NULL, 0);
	assert_int_equal(weft_wg_destroy(&wg), 0);
}

/* ------------------------------------------------------------ deadline, cancel */

static weft_wg_t dwg = WEFT_WG_INIT;

static void *timed_waiter(void *a)
{
	(void)a;
	weft_time_t dl = weft_deadline_in(5 * WEFT_MSEC);
	TCHECK_EQ(weft_wg_wait_until(&dwg, dl), -ETIMEDOUT);
	TCHECK(weft_now() >= dl);
	TCHECK_EQ(weft_wg_wait_until(&dwg, weft_now() - 1), -ETIMEDOUT);
	return NULL;
}

static void *cancelled_waiter(void *a)
{
	(void)a;
	TCHECK_EQ(weft_wg_wait(&dwg), -ECANCELED);
	return NULL;
}

static void *patient_waiter(void *a)
{
	(void)a;
	TCHECK_EQ(weft_wg_wait(&dwg), 0);
	return NULL;
}

static void *deadline_main(void *a)
{
	(void)a;
	TCHECK_EQ(weft_wg_add(&dwg, 1), 0);
	wt_join(wt_spawn(timed_waiter, NULL));
	weft_task_t p = wt_spawn(patient_waiter, NULL);
	weft_task_t t = wt_spawn(cancelled_waiter, NULL);
	while (wg_waiters(&dwg) != 2)
		weft_sleep(WEFT_MSEC / 4);
	TCHECK_EQ(weft_wg_destroy(&dwg), -EBUSY);
	TCHECK_EQ(weft_cancel(t), 0);
	wt_join(t);
	TCHECK_EQ(wg_waiters(&dwg), 1); /* the patient one still waits */
	TCHECK_EQ(weft_wg_done(&dwg), 0);
	wt_join(p);
	TCHECK_EQ(weft_wg_destroy(&dwg), 0);
	return NULL;
}

static void test_deadline_and_cancel(void **state)
{
	(void)state;
	wt_run(deadline_main, NULL, 2);
}

/* ------------------------------------------------------------ stackless */

static weft_wg_t pwg = WEFT_WG_INIT;

static weft_step_t step_waiter(void *s, void **r)
{
	(void)s;
	(void)r;
	TCHECK_EQ(weft_wg_wait(&pwg), -EPERM); /* count 1: would wait */
	TCHECK_EQ(weft_wg_done(&pwg), 0);      /* done never waits */
	TCHECK_EQ(weft_wg_wait(&pwg), 0);      /* zero: fine */
	return WEFT_STEP_DONE;
}

static void *stackless_main(void *a)
{
	(void)a;
	weft_task_t t;
	TCHECK_EQ(weft_wg_add(&pwg, 1), 0);
	TCHECK_EQ(weft_spawn_step(&t, step_waiter, NULL, NULL), 0);
	wt_join(t);
	TCHECK_EQ(wg_waiters(&pwg), 0);
	return NULL;
}

static void test_stackless(void **state)
{
	(void)state;
	wt_run(stackless_main, NULL, 2);
}

/* ------------------------------------------------------------ under the simulation */

/* The twins: the same bodies, one task at a time in an order drawn from
 * each seed (tests/wt_sim.h). */
static void many_sim_check(void *a)
{
	(void)a;
	TCHECK_EQ(weft_wg_destroy(&wg), 0);
}

static void test_last_done_wakes_all_sim(void **state)
{
	(void)state;
	nworkers = 40;
	wt_sim_sweep("sync/wg_last_done_wakes_all", many_main, many_sim_check, NULL, WT_SIM_SEEDS);
}

static void test_deadline_and_cancel_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/wg_deadline_and_cancel", deadline_main, NULL, NULL, WT_SIM_SEEDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_negative_count_is_refused),
		cmocka_unit_test(test_last_done_wakes_all),
		cmocka_unit_test(test_deadline_and_cancel),
		cmocka_unit_test(test_stackless),
		/* under the simulation */
		cmocka_unit_test(test_last_done_wakes_all_sim),
		cmocka_unit_test(test_deadline_and_cancel_sim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
