/* test_blocking.c - the blocking pool: results, growth, limit, shrink after
 * idle, the worker keeps running, cancellation, drain at stop. */
#include "weft_test.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <weft/io.h>

#include "blocking_check.h"

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static void *square(void *a)
{
	long *v = a;
	*v = *v * *v;
	return (void *)(intptr_t)(*v + 1);
}

static void *self_id(void *a)
{
	(void)a;
	return (void *)(uintptr_t)weft_self();
}

/* ------------------------------------------------------------ errors, plain threads */

static void test_plain_thread_and_errors(void **state)
{
	(void)state;
	assert_int_equal(weft_blocking(NULL, NULL, NULL), -EINVAL);
	long v = 7;
	void *r = NULL;
	assert_int_equal(weft_blocking(square, &v, &r), 0); /* runs inline */
	assert_int_equal(v, 49);
	assert_int_equal((intptr_t)r, 50);
	assert_int_equal(weft_blocking(square, &v, NULL), 0);
	weft_blocking_stats_t st;
	assert_int_equal(weft_blocking_stats(NULL, NULL), -EINVAL);
	assert_int_equal(weft_blocking_set_limits(NULL, -1, 0), -EINVAL);
	assert_int_equal(weft_blocking_set_limits(NULL, 5000, 0), -EINVAL);
	assert_int_equal(weft_blocking_set_limits(NULL, 0, 10), -EINVAL); /* idle < 1 ms */

	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 1}), 0);
	assert_int_equal(weft_blocking_stats(rt, &st), 0);
	assert_int_equal(st.threads, 0);
	assert_int_equal(st.max, 128);
	assert_int_equal(weft_blocking_set_limits(rt, 9, 20 * WEFT_MSEC), 0);
	assert_int_equal(weft_blocking_stats(rt, &st), 0);
	assert_int_equal(st.max, 9);
	assert_int_equal(weft_runtime_stop(rt), 0);
}

/* ------------------------------------------------------------ results, on another thread */

enum { NRES = 200 };

static void *result_task(void *a)
{
	long v = (long)(intptr_t)a; /* on this task's stack */
	void *r = NULL;
	TCHECK_EQ(weft_blocking(square, &v, &r), 0);
	TCHECK_EQ(v, (long)(intptr_t)a * (long)(intptr_t)a);
	TCHECK_EQ((intptr_t)r, v + 1);
	r = NULL;
	TCHECK_EQ(weft_blocking(self_id, NULL, &r), 0);
	TCHECK_EQ((uintptr_t)r, 0); /* fn ran on a pool thread, not in a task */
	return NULL;
}

static void *results_main(void *a)
{
	(void)a;
	weft_task_t t[NRES];
	for (long i = 0; i < NRES; i++)
		t[i] = wt_spawn(result_task, (void *)(intptr_t)i);
	for (int i = 0; i < NRES; i++)
		wt_join(t[i]);
	weft_blocking_stats_t st;
	TCHECK_EQ(weft_blocking_stats(NULL, &st), 0);
	TCHECK_EQ(st.completed, 2 * NRES);
	TCHECK_EQ(st.queued, 0);
	TCHECK_EQ(st.running, 0);
	TCHECK(st.threads >= 1 && st.threads <= st.max);
	return NULL;
}

static void test_results(void **state)
{
	(void)state;
	int fds = wt_count_fds();
	wt_run(results_main, NULL, 2);
	WT_ASSERT_FDS(fds);
}

/* ------------------------------------------------------------ growth and shrink */

static _Atomic int inside, max_inside, released;

static void *hold_until_released(void *a)
{
	(void)a;
	int n = atomic_fetch_add(&inside, 1) + 1;
	int m = atomic_load(&max_inside);
	while (n > m && !atomic_compare_exchange_weak(&max_inside, &m, n))
		;
	while (!atomic_load(&released))
		nap_ms(1);
	atomic_fetch_sub(&inside, 1);
	return NULL;
}

static void *blocking_task(void *a)
{
	weft_fn_t fn = (weft_fn_t)a;
	TCHECK_EQ(weft_blocking(fn, NULL, NULL), 0);
	return NULL;
}

static void reset_counters(void)
{
	atomic_store(&inside, 0);
	atomic_store(&max_inside, 0);
	atomic_store(&released, 0);
}

enum { GROW = 48 };

static void *growth_main(void *a)
{
	(void)a;
	reset_counters();
	TCHECK_EQ(weft_blocking_set_limits(NULL, 0, 30 * WEFT_MSEC), 0);
	weft_task_t t[GROW];
	for (int i = 0; i < GROW; i++)
		t[i] = wt_spawn(blocking_task, (void *)hold_until_released);
	/* Every call runs at once, each on its own thread. */
	WT_WAIT_UNTIL(atomic_load(&inside) == GROW);
	weft_blocking_stats_t st;
	weft_blocking_stats(NULL, &st);
	TCHECK_EQ(st.threads, GROW);
	TCHECK_EQ(st.running, GROW);
	TCHECK_EQ(st.idle, 0);
	TCHECK_EQ(st.queued, 0);
	atomic_store(&released, 1);
	for (int i = 0; i < GROW; i++)
		wt_join(t[i]);
	/* Idle threads exit after the idle time (30 ms). */
	WT_WAIT_UNTIL(weft_blocking_stats(NULL, &st) == 0 && st.threads == 0);
	TCHECK_EQ(st.idle, 0);
	TCHECK_EQ(st.completed, GROW);
	/* And the pool grows again from nothing. */
	long v = 3;
	TCHECK_EQ(weft_blocking(square, &v, NULL), 0);
	TCHECK_EQ(v, 9);
	return NULL;
}

static void test_growth_and_shrink(void **state)
{
	(void)state;
	int fds = wt_count_fds();
	wt_run(growth_main, NULL, 2);
	WT_ASSERT_FDS(fds);
}

/* ------------------------------------------------------------ the limit */

static _Atomic long busy_done;

static void *busy_2ms(void *a)
{
	(void)a;
	int n = atomic_fetch_add(&inside, 1) + 1;
	int m = atomic_load(&max_inside);
	while (n > m && !atomic_compare_exchange_weak(&max_inside, &m, n))
		;
	nap_ms(2);
	atomic_fetch_sub(&inside, 1);
	atomic_fetch_add(&busy_done, 1);
	return NULL;
}

enum { LIMIT = 4, NHELD = 12, NLIMIT = 60 };

static void *limit_main(void *a)
{
	(void)a;
	reset_counters();
	atomic_store(&busy_done, 0);
	TCHECK_EQ(weft_blocking_set_limits(NULL, LIMIT, 0), 0);
	/* NHELD calls that hold their thread: LIMIT run, the rest queue. */
	weft_task_t held[NHELD];
	for (int i = 0; i < NHELD; i++)
		held[i] = wt_spawn(blocking_task, (void *)hold_until_released);
	weft_blocking_stats_t st;
	WT_WAIT_UNTIL(weft_blocking_stats(NULL, &st) == 0 && atomic_load(&inside) >= LIMIT &&
		      st.queued >= NHELD - LIMIT);
	weft_sleep(10 * WEFT_MSEC); /* room for a thread too many to show up */
	weft_blocking_stats(NULL, &st);
	TCHECK_EQ(atomic_load(&inside), LIMIT);
	TCHECK_EQ(st.threads, LIMIT);
	TCHECK_EQ(st.running, LIMIT);
	TCHECK_EQ(st.queued, NHELD - LIMIT);
	atomic_store(&released, 1);
	for (int i = 0; i < NHELD; i++)
		wt_join(held[i]);
	weft_blocking_stats(NULL, &st);
	TCHECK_EQ(st.completed, NHELD);
	TCHECK_EQ(st.queued, 0);

	/* Many short calls: never more than LIMIT at once, none lost. */
	weft_task_t t[NLIMIT];
	for (int i = 0; i < NLIMIT; i++)
		t[i] = wt_spawn(blocking_task, (void *)busy_2ms);
	for (int i = 0; i < NLIMIT; i++)
		wt_join(t[i]);
	TCHECK(atomic_load(&max_inside) <= LIMIT);
	TCHECK_EQ(atomic_load(&busy_done), NLIMIT);
	weft_blocking_stats(NULL, &st);
	TCHECK(st.threads <= LIMIT);
	TCHECK_EQ(st.completed, NHELD + NLIMIT);
	TCHECK_EQ(st.queued, 0);
	TCHECK_EQ(st.max, LIMIT);

	/* Lowering the limit sends idle threads above it away at once. */
	reset_counters();
	TCHECK_EQ(weft_blocking_set_limits(NULL, 2 * LIMIT, WEFT_NEVER), 0);
	for (int i = 0; i < 2 * LIMIT; i++)
		held[i] = wt_spawn(blocking_task, (void *)hold_until_released);
	WT_WAIT_UNTIL(atomic_load(&inside) == 2 * LIMIT);
	atomic_store(&released, 1);
	for (int i = 0; i < 2 * LIMIT; i++)
		wt_join(held[i]);
	weft_blocking_stats(NULL, &st);
	TCHECK_EQ(st.threads, 2 * LIMIT); /* idle, kept (they never time out) */
	TCHECK_EQ(weft_blocking_set_limits(NULL, 2, 0), 0);
	WT_WAIT_UNTIL(weft_blocking_stats(NULL, &st) == 0 && st.threads <= 2);
	TCHECK_EQ(st.threads, 2);
	return NULL;
}

static void test_limit_respected(void **state)
{
	(void)state;
	wt_run(limit_main, NULL, 2);
}

/* WEFT_BLOCKING_MAX sets the default limit of a new pool. */
static void *env_main(void *a)
{
	(void)a;
	weft_blocking_stats_t st;
	TCHECK_EQ(weft_blocking_stats(NULL, &st), 0);
	TCHECK_EQ(st.max, 3);
	return NULL;
}

static void test_env_limit(void **state)
{
	(void)state;
	setenv("WEFT_BLOCKING_MAX", "3", 1);
	wt_run(env_main, NULL, 1);
	unsetenv("WEFT_BLOCKING_MAX");
}

/* ------------------------------------------------------------ the worker keeps running */

static _Atomic long ticks;
static _Atomic int sleeper_done;

/* On a pool thread: returns once the ticker task has ticked 3 more times -
 * which it can only do if the one worker is free meanwhile (if
 * weft_blocking held the worker, it would wait for the hang guard). */
static void *wait_for_ticks(void *a)
{
	long until = *(long *)a;
	weft_time_t give_up = wt_hang_deadline();
	while (atomic_load(&ticks) < until && weft_now() < give_up)
		nap_ms(1);
	return (void *)(intptr_t)(atomic_load(&ticks) >= until);
}

static void *ticker_task(void *a)
{
	(void)a;
	while (!atomic_load(&sleeper_done)) {
		atomic_fetch_add(&ticks, 1);
		weft_sleep(WEFT_MSEC);
	}
	return NULL;
}

static void *worker_free_main(void *a)
{
	(void)a;
	atomic_store(&ticks, 0);
	atomic_store(&sleeper_done, 0);
	weft_task_t t = wt_spawn(ticker_task, NULL);
	long until = atomic_load(&ticks) + 3;
	void *saw = NULL;
	TCHECK_EQ(weft_blocking(wait_for_ticks, &until, &saw), 0);
	atomic_store(&sleeper_done, 1);
	wt_join(t);
	TCHECK(saw != NULL); /* the one worker ran the ticker meanwhile */
	return NULL;
}

static void test_worker_keeps_running(void **state)
{
	(void)state;
	wt_run(worker_free_main, NULL, 1);
}

/* ------------------------------------------------------------ cancellation */

struct slow_arg {
	_Atomic int started;
	int finished; /* written by fn, on the caller's stack */
};

/* Set by slow_fn once it runs; slow_fn returns only after slow_release. */
static _Atomic int slow_running, slow_release;

static void *slow_fn(void *a)
{
	struct slow_arg *s = a;
	atomic_store(&s->started, 1);
	atomic_store(&slow_running, 1);
	weft_time_t give_up = wt_hang_deadline();
	while (!atomic_load(&slow_release) && weft_now() < give_up)
		nap_ms(1);
	s->finished = 1;
	return (void *)(intptr_t)42;
}

static void *cancelled_caller(void *a)
{
	(void)a;
	struct slow_arg s = {0};
	void *r = NULL;
	int e = weft_blocking(slow_fn, &s, &r);
	/* Cancelled while fn ran: the call waited for it and reports it. */
	TCHECK_EQ(atomic_load(&s.started), 1);
	TCHECK_EQ(e, 0);
	TCHECK_EQ(s.finished, 1);
	TCHECK_EQ((intptr_t)r, 42);
	TCHECK(weft_cancelled());
	TCHECK_EQ(weft_blocking(slow_fn, &s, &r), -ECANCELED); /* the cancel shows now */
	return NULL;
}

static void *precancelled(void *a)
{
	(void)a;
	while (!weft_cancelled())
		weft_yield();
	struct slow_arg s = {0};
	int e = weft_blocking(slow_fn, &s, NULL);
	TCHECK_EQ(atomic_load(&s.started), 0); /* never ran */
	return (void *)(intptr_t)e;
}

static void *cancel_main(void *a)
{
	(void)a;
	/* The cancel lands while fn runs: fn is seen running first, and is
	 * let go only once the cancel is in. */
	for (int round = 0; round < 3; round++) {
		atomic_store(&slow_running, 0);
		atomic_store(&slow_release, 0);
		weft_task_t t = wt_spawn(cancelled_caller, NULL);
		WT_WAIT_UNTIL(atomic_load(&slow_running));
		TCHECK_EQ(weft_cancel(t), 0);
		atomic_store(&slow_release, 1);
		wt_join(t);
	}
	/* The cancel comes first: fn never runs. */
	weft_task_t t = wt_spawn(precancelled, NULL);
	weft_cancel(t);
	void *r = NULL;
	TCHECK_EQ(weft_join(t, &r), 0);
	TCHECK_EQ((intptr_t)r, -ECANCELED);
	return NULL;
}

static void test_cancellation(void **state)
{
	(void)state;
	wt_run(cancel_main, NULL, 2);
}

/* ------------------------------------------------------------ stackless tasks */

static weft_step_t stackless_step(void *s, void **result)
{
	long v = 2;
	*(int *)s = weft_blocking(square, &v, NULL);
	*result = NULL;
	return WEFT_STEP_DONE;
}

static void *stackless_main(void *a)
{
	(void)a;
	int e = 0;
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, stackless_step, &e, NULL), 0);
	TCHECK_EQ(weft_join(t, NULL), 0);
	TCHECK_EQ(e, -EWOULDBLOCK);
	return NULL;
}

static void test_stackless_refused(void **state)
{
	(void)state;
	wt_run(stackless_main, NULL, 1);
}

/* ------------------------------------------------------------ churn: threads come and go, nothing lost */

static _Atomic long churn_sum;

static void *add_arg(void *a)
{
	long v = *(long *)a;
	atomic_fetch_add(&churn_sum, v);
	if (v % 7 == 0)
		nap_ms(1);
	return (void *)(intptr_t)(v * 2);
}

enum { CHURN_CALLS = 20 };

static void *churn_task(void *a)
{
	long base = (long)(intptr_t)a * 1000;
	for (long i = 0; i < CHURN_CALLS; i++) {
		long v = base + i;
		void *r = NULL;
		TCHECK_EQ(weft_blocking(add_arg, &v, &r), 0);
		TCHECK_EQ((intptr_t)r, v * 2);
		if (i % 5 == (base / 1000) % 5)
			weft_sleep(2 * WEFT_MSEC); /* let the pool go idle: threads expire */
	}
	return NULL;
}

static void *churn_main(void *a)
{
	(void)a;
	atomic_store(&churn_sum, 0);
	TCHECK_EQ(weft_blocking_set_limits(NULL, 6, WEFT_MSEC), 0);
	long n = WT_SIZE(400, 100);
	weft_task_t *t = calloc((size_t)n, sizeof *t);
	long expect = 0;
	for (long i = 0; i < n; i++) {
		t[i] = wt_spawn(churn_task, (void *)(intptr_t)i);
		for (long k = 0; k < CHURN_CALLS; k++)
			expect += i * 1000 + k;
	}
	for (long i = 0; i < n; i++)
		wt_join(t[i]);
	free(t);
	TCHECK_EQ(atomic_load(&churn_sum), expect);
	weft_blocking_stats_t st;
	weft_blocking_stats(NULL, &st);
	TCHECK_EQ(st.completed, (uint64_t)n * CHURN_CALLS);
	TCHECK_EQ(st.queued, 0);
	TCHECK(st.threads <= 6);
	return NULL;
}

static void test_churn_conservation(void **state)
{
	(void)state;
	wt_run(churn_main, NULL, 0);
}

/* ------------------------------------------------------------ stop drains */

static _Atomic long drained;

static void *count_after_1ms(void *a)
{
	(void)a;
	nap_ms(1);
	atomic_fetch_add(&drained, 1);
	return NULL;
}

static _Atomic long calls_started;

static void *loop_blocking(void *a)
{
	(void)a;
	for (;;) {
		atomic_fetch_add(&calls_started, 1);
		int e = weft_blocking(count_after_1ms, NULL, NULL);
		if (e != 0) {
			TCHECK_EQ(e, -ECANCELED);
			return NULL;
		}
	}
}

static void test_stop_drains(void **state)
{
	(void)state;
	int fds = wt_count_fds();
	atomic_store(&drained, 0);
	atomic_store(&calls_started, 0);
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	assert_int_equal(weft_blocking_set_limits(rt, 8, 0), 0);
	int n = WT_SIZE(200, 50);
	for (int i = 0; i < n; i++)
		assert_int_equal(
			weft_spawn(NULL, loop_blocking, NULL, &(weft_spawn_opts_t){.runtime = rt, .detached = true}),
			0);
	/* Calls are under way (at least one has run) before the stop. */
	weft_time_t give_up = wt_hang_deadline();
	while (atomic_load(&drained) < 1 && weft_now() < give_up)
		nap_ms(1);
	assert_int_equal(weft_runtime_stop(rt), 0); /* cancels them mid-call */
	/* Every call that was queued ran: a cancelled precheck never queues, so
	 * calls started = calls run + calls refused at once. */
	long started = atomic_load(&calls_started), ran = atomic_load(&drained);
	assert_true(ran >= 1);
	assert_true(ran <= started && started - ran <= n);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
	WT_ASSERT_FDS(fds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_thread_and_errors),
		cmocka_unit_test(test_results),
		cmocka_unit_test(test_growth_and_shrink),
		cmocka_unit_test(test_limit_respected),
		cmocka_unit_test(test_env_limit),
		cmocka_unit_test(test_worker_keeps_running),
		cmocka_unit_test(test_cancellation),
		cmocka_unit_test(test_stackless_refused),
		cmocka_unit_test(test_churn_conservation),
		cmocka_unit_test(test_stop_drains),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
