/* test_once_barrier.c - once and barriers. */
#include "wt_sim.h"

#include <pthread.h>
#include <weft/sync.h>

static size_t queued(weft_waitq_t *q)
{
	weft_waitq_lock(q);
	size_t n = q->len;
	weft_waitq_unlock(q);
	return n;
}

static void wait_queued(weft_waitq_t *q, size_t n)
{
	while (queued(q) != n)
		weft_sleep(WEFT_MSEC / 4);
}

/* ------------------------------------------------------------ once */

/* Many tasks and threads race to run the init; it runs exactly once, and
 * everyone returns only after it finished (and sees what it wrote). */
static weft_once_t once = WEFT_ONCE_INIT;
static _Atomic int runs;
static long init_value; /* plain: written by the init, read by every caller */

static void init_fn(void *arg)
{
	atomic_fetch_add(&runs, 1);
	weft_sleep(2 * WEFT_MSEC); /* let the others pile up */
	init_value = (long)arg;
}

static void *once_caller(void *a)
{
	(void)a;
	TCHECK_EQ(weft_once(&once, init_fn, (void *)42), 0);
	TCHECK_EQ(init_value, 42);
	return NULL;
}

static int once_callers = 200;

static void *once_main(void *a)
{
	(void)a;
	enum { N = 200 };
	weft_task_t t[N];
	pthread_t th[2];
	/* Two callers are plain threads; none under the simulation, which
	 * only its own thread may touch. */
	int threads = weft_runtime_is_sim(weft_runtime_current()) ? 0 : 2;
	for (int i = 0; i < threads; i++)
		TCHECK_EQ(pthread_create(&th[i], NULL, once_caller, NULL), 0);
	for (int i = 0; i < once_callers; i++)
		t[i] = wt_spawn(once_caller, NULL);
	for (int i = 0; i < once_callers; i++)
		wt_join(t[i]);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	TCHECK_EQ(weft_once(&once, init_fn, (void *)7), 0); /* done: fn not run again */
	return NULL;
}

static void test_once_runs_exactly_once(void **state)
{
	(void)state;
	wt_run(once_main, NULL, 0);
	assert_int_equal(atomic_load(&runs), 1);
	assert_int_equal(init_value, 42);
}

static weft_once_t once2 = WEFT_ONCE_INIT;
static _Atomic int inner_result = 1;

static void recursive_fn(void *a)
{
	(void)a;
	atomic_store(&inner_result, weft_once(&once2, recursive_fn, NULL));
}

static void count_call(void *a)
{
	(*(int *)a)++;
}

static void test_once_errors(void **state)
{
	(void)state;
	weft_once_t o;
	int calls = 0;
	assert_int_equal(weft_once_init(NULL), -EINVAL);
	assert_int_equal(weft_once_init(&o), 0);
	assert_int_equal(weft_once(&o, count_call, &calls), 0);
	assert_int_equal(weft_once(&o, count_call, &calls), 0);
	assert_int_equal(calls, 1);
	assert_int_equal(weft_once(NULL, recursive_fn, NULL), -EINVAL);
	assert_int_equal(weft_once(&once2, NULL, NULL), -EINVAL);
	assert_int_equal(weft_once(&once2, recursive_fn, NULL), 0); /* a plain thread runs it */
	assert_int_equal(atomic_load(&inner_result), -EDEADLK);
}

/* A caller waiting for a slow init can time out or be cancelled; the init
 * still completes and later callers see it done. */
static weft_once_t once3 = WEFT_ONCE_INIT;
static _Atomic int slow_started, slow_release;

static void slow_fn(void *a)
{
	(void)a;
	atomic_store(&slow_started, 1);
	while (!atomic_load(&slow_release))
		weft_sleep(WEFT_MSEC / 4);
}

static void *slow_runner(void *a)
{
	(void)a;
	TCHECK_EQ(weft_once(&once3, slow_fn, NULL), 0);
	return NULL;
}

static void *cancelled_once(void *a)
{
	(void)a;
	TCHECK_EQ(weft_once(&once3, slow_fn, NULL), -ECANCELED);
	return NULL;
}

static weft_step_t step_once(void *s, void **r)
{
	(void)s;
	(void)r;
	TCHECK_EQ(weft_once(&once3, slow_fn, NULL), -EPERM); /* would wait */
	return WEFT_STEP_DONE;
}

static void *once_wait_main(void *a)
{
	(void)a;
	weft_task_t r = wt_spawn(slow_runner, NULL);
	while (!atomic_load(&slow_started))
		weft_sleep(WEFT_MSEC / 4);
	weft_time_t dl = weft_deadline_in(3 * WEFT_MSEC);
	TCHECK_EQ(weft_once_until(&once3, slow_fn, NULL, dl), -ETIMEDOUT);
	TCHECK(weft_now() >= dl);
	weft_task_t c = wt_spawn(cancelled_once, NULL);
	wait_queued(&once3.q, 1);
	TCHECK_EQ(weft_cancel(c), 0);
	wt_join(c);
	weft_task_t s;
	TCHECK_EQ(weft_spawn_step(&s, step_once, NULL, NULL), 0);
	wt_join(s);
	TCHECK_EQ(queued(&once3.q), 0);
	atomic_store(&slow_release, 1);
	wt_join(r);
	TCHECK_EQ(weft_once(&once3, slow_fn, NULL), 0);
	return NULL;
}

static void test_once_wait_deadline_cancel(void **state)
{
	(void)state;
	wt_run(once_wait_main, NULL, 2);
}

/* ------------------------------------------------------------ barrier */

/* N tasks (and a thread) through G generations: in each, exactly one gets
 * the serial result, and nobody starts generation g+1 before all N have
 * arrived at g. */
enum { BN = 16, BG = 50 };
static weft_barrier_t bar;
static _Atomic int arrived[BG], serials[BG];

static void *bar_task(void *a)
{
	(void)a;
	for (int g = 0; g < BG; g++) {
		atomic_fetch_add(&arrived[g], 1);
		int r = weft_barrier_wait(&bar);
		TCHECK(r == 0 || r == 1);
		if (r == 1)
			atomic_fetch_add(&serials[g], 1);
		TCHECK_EQ(atomic_load(&arrived[g]), BN); /* all arrived before anyone left */
		if (g % 3 == 0)
			weft_yield();
	}
	return NULL;
}

static void *barrier_main(void *a)
{
	(void)a;
	/* One member is a thread; a task under the simulation, which only its
	 * own thread may touch. */
	int threads = weft_runtime_is_sim(weft_runtime_current()) ? 0 : 1;
	weft_task_t t[BN];
	pthread_t th;
	if (threads)
		TCHECK_EQ(pthread_create(&th, NULL, bar_task, NULL), 0);
	for (int i = 0; i < BN - threads; i++)
		t[i] = wt_spawn(bar_task, NULL);
	for (int i = 0; i < BN - threads; i++)
		wt_join(t[i]);
	if (threads)
		pthread_join(th, NULL);
	return NULL;
}

static void test_barrier_generations(void **state)
{
	(void)state;
	assert_int_equal(weft_barrier_init(&bar, BN), 0);
	wt_run(barrier_main, NULL, 0);
	for (int g = 0; g < BG; g++) {
		assert_int_equal(atomic_load(&arrived[g]), BN);
		assert_int_equal(atomic_load(&serials[g]), 1);
	}
	assert_int_equal(weft_barrier_destroy(&bar), 0);
}

static void test_barrier_errors(void **state)
{
	(void)state;
	weft_barrier_t b = {0};
	assert_int_equal(weft_barrier_wait(&b), -EINVAL); /* not initialised */
	assert_int_equal(weft_barrier_init(NULL, 2), -EINVAL);
	assert_int_equal(weft_barrier_init(&b, 0), -EINVAL);
	assert_int_equal(weft_barrier_wait(NULL), -EINVAL);
	assert_int_equal(weft_barrier_destroy(NULL), -EINVAL);
	assert_int_equal(weft_barrier_init(&b, 1), 0);
	assert_int_equal(weft_barrier_wait(&b), 1); /* alone: always serial */
	assert_int_equal(weft_barrier_wait(&b), 1);
	assert_int_equal(weft_barrier_init(&b, 2), 0);
	assert_int_equal(weft_barrier_wait_until(&b, weft_deadline_in(2 * WEFT_MSEC)), -ETIMEDOUT); /* a thread */
	assert_int_equal(b.arrived, 0);
	assert_int_equal(weft_barrier_destroy(&b), 0);
}

/* A waiter that times out or is cancelled leaves its generation: it does
 * not count towards n. */
static weft_barrier_t lb;
static _Atomic int lb_results;

static void *leaving_timed(void *a)
{
	(void)a;
	TCHECK_EQ(weft_barrier_wait_until(&lb, weft_deadline_in(3 * WEFT_MSEC)), -ETIMEDOUT);
	return NULL;
}

static void *leaving_cancelled(void *a)
{
	(void)a;
	TCHECK_EQ(weft_barrier_wait(&lb), -ECANCELED);
	return NULL;
}

static void *staying(void *a)
{
	(void)a;
	int r = weft_barrier_wait(&lb);
	TCHECK(r == 0 || r == 1);
	atomic_fetch_add(&lb_results, 1 + 10 * r);
	return NULL;
}

static weft_step_t step_barrier(void *s, void **r)
{
	(void)s;
	(void)r;
	TCHECK_EQ(weft_barrier_wait(&lb), -EPERM); /* would wait */
	return WEFT_STEP_DONE;
}

static void *leaving_main(void *a)
{
	(void)a;
	TCHECK_EQ(weft_barrier_init(&lb, 3), 0);
	weft_task_t s1 = wt_spawn(staying, NULL);
	wait_queued(&lb.q, 1);
	wt_join(wt_spawn(leaving_timed, NULL)); /* arrives second, leaves */
	weft_task_t c = wt_spawn(leaving_cancelled, NULL);
	wait_queued(&lb.q, 2);
	TCHECK_EQ(weft_cancel(c), 0);
	wt_join(c);
	weft_task_t st;
	TCHECK_EQ(weft_spawn_step(&st, step_barrier, NULL, NULL), 0);
	wt_join(st);
	TCHECK_EQ(lb.arrived, 1); /* only the one staying */
	TCHECK_EQ(weft_barrier_destroy(&lb), -EBUSY);
	weft_task_t s2 = wt_spawn(staying, NULL);
	wait_queued(&lb.q, 2);
	TCHECK_EQ(atomic_load(&lb_results), 0); /* two of three: still waiting */
	TCHECK_EQ(weft_barrier_wait(&lb), 1);	/* the third completes it */
	wt_join(s1);
	wt_join(s2);
	TCHECK_EQ(atomic_load(&lb_results), 2); /* both got 0 */
	TCHECK_EQ(weft_barrier_destroy(&lb), 0);
	return NULL;
}

static void test_barrier_leavers_do_not_count(void **state)
{
	(void)state;
	wt_run(leaving_main, NULL, 2);
}

/* Waits with short deadlines, a quarter of the parties cancelled, racing
 * the arrivals that complete generations: a waiter timing out or
 * cancelled just as its generation completes still passes (the pop is the
 * delivery), and one that has left does not count. So every completed
 * generation has n passers, one of them serial: the passes are n times
 * the serial results, and nobody is left counted. */
enum { BR_N = 3, BR_PARTIES = 7 };
static weft_barrier_t brb;
static _Atomic long br_passes, br_serials;
static long br_rounds;

static void *br_party(void *a)
{
	uint64_t seed = (uint64_t)(uintptr_t)a;
	for (long i = 0; i < br_rounds; i++) {
		seed = wt_lcg(seed);
		int r = weft_barrier_wait_until(&brb, weft_deadline_in((weft_time_t)((seed >> 33) % 30000)));
		if (r == -ECANCELED)
			break;
		TCHECK(r == 0 || r == 1 || r == -ETIMEDOUT);
		if (r >= 0)
			atomic_fetch_add(&br_passes, 1);
		if (r == 1)
			atomic_fetch_add(&br_serials, 1);
		if (i % 2)
			weft_yield();
	}
	return NULL;
}

static void *br_main(void *a)
{
	(void)a;
	atomic_store(&br_passes, 0);
	atomic_store(&br_serials, 0);
	TCHECK_EQ(weft_barrier_init(&brb, BR_N), 0);
	weft_task_t t[BR_PARTIES];
	for (long i = 0; i < BR_PARTIES; i++)
		t[i] = wt_spawn(br_party, (void *)(i + 1));
	weft_yield();
	for (int i = 0; i < BR_PARTIES; i += 4) {
		int e = weft_cancel(t[i]);
		TCHECK(e == 0 || e == -ESRCH); /* -ESRCH: it has finished */
	}
	for (int i = 0; i < BR_PARTIES; i++)
		wt_join(t[i]);
	TCHECK_EQ(atomic_load(&br_passes), BR_N * atomic_load(&br_serials));
	TCHECK_EQ(weft_barrier_destroy(&brb), 0); /* nobody left counted or queued */
	return NULL;
}

static void test_barrier_deadlines_race_generations(void **state)
{
	(void)state;
	br_rounds = WT_SIZE(300, 100);
	wt_run(br_main, NULL, 2);
}

/* ------------------------------------------------------------ under the simulation */

/* The twins: the same bodies, one task at a time in an order drawn from
 * each seed (tests/wt_sim.h); each seed starts from fresh objects. */
static void *once_sim_main(void *a)
{
	weft_once_init(&once);
	atomic_store(&runs, 0);
	init_value = 0;
	return once_main(a);
}

static void once_sim_check(void *a)
{
	(void)a;
	TCHECK_EQ(atomic_load(&runs), 1);
	TCHECK_EQ(init_value, 42);
}

static void test_once_runs_exactly_once_sim(void **state)
{
	(void)state;
	once_callers = 24;
	wt_sim_sweep("sync/once_runs_exactly_once", once_sim_main, once_sim_check, NULL, WT_SIM_SEEDS);
}

static void *once_wait_sim_main(void *a)
{
	weft_once_init(&once3);
	atomic_store(&slow_started, 0);
	atomic_store(&slow_release, 0);
	return once_wait_main(a);
}

static void test_once_wait_deadline_cancel_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/once_wait_deadline_cancel", once_wait_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *barrier_sim_main(void *a)
{
	TCHECK_EQ(weft_barrier_init(&bar, BN), 0);
	for (int g = 0; g < BG; g++) {
		atomic_store(&arrived[g], 0);
		atomic_store(&serials[g], 0);
	}
	return barrier_main(a);
}

static void barrier_sim_check(void *a)
{
	(void)a;
	for (int g = 0; g < BG; g++) {
		TCHECK_EQ(atomic_load(&arrived[g]), BN);
		TCHECK_EQ(atomic_load(&serials[g]), 1); /* exactly one serial task a generation */
	}
	TCHECK_EQ(weft_barrier_destroy(&bar), 0);
}

static void test_barrier_generations_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/barrier_generations", barrier_sim_main, barrier_sim_check, NULL, WT_SIM_SEEDS);
}

static void *leaving_sim_main(void *a)
{
	atomic_store(&lb_results, 0);
	return leaving_main(a);
}

static void test_barrier_deadlines_race_generations_sim(void **state)
{
	(void)state;
	br_rounds = 20;
	wt_sim_sweep("sync/barrier_deadlines_race_generations", br_main, NULL, NULL, WT_SIM_SEEDS);
}

static void test_barrier_leavers_do_not_count_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/barrier_leavers_do_not_count", leaving_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_once_runs_exactly_once),
		cmocka_unit_test(test_once_errors),
		cmocka_unit_test(test_once_wait_deadline_cancel),
		cmocka_unit_test(test_barrier_generations),
		cmocka_unit_test(test_barrier_errors),
		cmocka_unit_test(test_barrier_leavers_do_not_count),
		cmocka_unit_test(test_barrier_deadlines_race_generations),
		cmocka_unit_test(test_once_runs_exactly_once_sim),
		cmocka_unit_test(test_once_wait_deadline_cancel_sim),
		cmocka_unit_test(test_barrier_generations_sim),
		cmocka_unit_test(test_barrier_deadlines_race_generations_sim),
		cmocka_unit_test(test_barrier_leavers_do_not_count_sim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
