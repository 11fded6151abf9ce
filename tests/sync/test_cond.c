/* test_cond.c - condition variables. */
#include "wt_sim.h"

#include <pthread.h>
#include <weft/sync.h>

#include "sync/internal.h" /* weft__mutex_waiters */

/* White-box: tasks queued on the condition. */
static size_t cond_waiters(weft_cond_t *c)
{
	weft_waitq_lock(&c->q);
	size_t n = c->q.len;
	weft_waitq_unlock(&c->q);
	return n;
}

static void wait_cond_waiters(weft_cond_t *c, size_t n)
{
	while (cond_waiters(c) != n)
		weft_sleep(WEFT_MSEC / 4);
}

/* ------------------------------------------------------------ errors */

static void *errors_main(void *a)
{
	(void)a;
	weft_cond_t c;
	weft_mutex_t m = WEFT_MUTEX_INIT;
	TCHECK_EQ(weft_cond_init(NULL), -EINVAL);
	TCHECK_EQ(weft_cond_init(&c), 0);
	TCHECK_EQ(weft_cond_wait(NULL, &m), -EINVAL);
	TCHECK_EQ(weft_cond_wait(&c, NULL), -EINVAL);
	TCHECK_EQ(weft_cond_signal(NULL), -EINVAL);
	TCHECK_EQ(weft_cond_broadcast(NULL), -EINVAL);
	TCHECK_EQ(weft_cond_destroy(NULL), -EINVAL);
	TCHECK_EQ(weft_cond_wait(&c, &m), -EPERM); /* mutex not held */
	TCHECK_EQ(weft_cond_signal(&c), 0);	   /* nobody waits */
	TCHECK_EQ(weft_cond_broadcast(&c), 0);
	TCHECK_EQ(weft_cond_destroy(&c), 0);
	return NULL;
}

static void test_errors(void **state)
{
	(void)state;
	wt_run(errors_main, NULL, 2);
}

/* ------------------------------------------------------------ producer/consumer */

/* A bounded buffer guarded by one mutex and two conditions: every item is
 * consumed exactly once; producers and consumers are tasks and threads. */
enum { CAP = 8 };
static weft_mutex_t bm = WEFT_MUTEX_INIT;
static weft_cond_t not_full = WEFT_COND_INIT, not_empty = WEFT_COND_INIT;
static long buf[CAP];
static int head, count;
static long items_per_producer;
static _Atomic long consumed_sum, consumed_n;
static bool closed;

static void put(long v)
{
	TCHECK_EQ(weft_mutex_lock(&bm), 0);
	while (count == CAP)
		TCHECK_EQ(weft_cond_wait(&not_full, &bm), 0);
	buf[(head + count++) % CAP] = v;
	weft_cond_signal(&not_empty);
	TCHECK_EQ(weft_mutex_unlock(&bm), 0);
}

static bool take(long *v)
{
	TCHECK_EQ(weft_mutex_lock(&bm), 0);
	while (count == 0 && !closed)
		TCHECK_EQ(weft_cond_wait(&not_empty, &bm), 0);
	if (count == 0) {
		TCHECK_EQ(weft_mutex_unlock(&bm), 0);
		return false;
	}
	*v = buf[head];
	head = (head + 1) % CAP;
	count--;
	weft_cond_signal(&not_full);
	TCHECK_EQ(weft_mutex_unlock(&bm), 0);
	return true;
}

static void *producer(void *a)
{
	long base = (long)a * items_per_producer;
	for (long i = 1; i <= items_per_producer; i++)
		put(base + i);
	return NULL;
}

static void *consumer(void *a)
{
	(void)a;
	long v;
	while (take(&v)) {
		atomic_fetch_add(&consumed_sum, v);
		atomic_fetch_add(&consumed_n, 1);
	}
	return NULL;
}

enum { P = 6, C = 6 };
static int pc_threads; /* a producer and a consumer are plain threads (none under the simulation) */

static void *pc_main(void *a)
{
	(void)a;
	weft_task_t p[P], c[C];
	pthread_t pt, ct;
	pc_threads = weft_runtime_is_sim(weft_runtime_current()) ? 0 : 1;
	if (pc_threads) {
		TCHECK_EQ(pthread_create(&pt, NULL, producer, (void *)(long)P), 0); /* producer number P */
		TCHECK_EQ(pthread_create(&ct, NULL, consumer, NULL), 0);
	}
	for (long i = 0; i < P; i++)
		p[i] = wt_spawn(producer, (void *)i);
	for (int i = 0; i < C; i++)
		c[i] = wt_spawn(consumer, NULL);
	for (int i = 0; i < P; i++)
		wt_join(p[i]);
	if (pc_threads)
		pthread_join(pt, NULL);
	TCHECK_EQ(weft_mutex_lock(&bm), 0);
	closed = true;
	weft_cond_broadcast(&not_empty);
	TCHECK_EQ(weft_mutex_unlock(&bm), 0);
	for (int i = 0; i < C; i++)
		wt_join(c[i]);
	if (pc_threads)
		pthread_join(ct, NULL);
	return NULL;
}

static void test_producer_consumer(void **state)
{
	(void)state;
	items_per_producer = WT_SIZE(20000, 5000);
	wt_run(pc_main, NULL, 0);
	long n = 7 * items_per_producer; /* producers 0..6, items base+1..base+n */
	assert_int_equal(atomic_load(&consumed_n), n);
	assert_int_equal(atomic_load(&consumed_sum), n * (n + 1) / 2);
	assert_int_equal(weft_cond_destroy(&not_full), 0);
	assert_int_equal(weft_cond_destroy(&not_empty), 0);
}

/* ------------------------------------------------------------ signal vs broadcast */

enum { NW = 5 };
static weft_mutex_t sm = WEFT_MUTEX_INIT;
static weft_cond_t sc = WEFT_COND_INIT;
static _Atomic int woken;

static void *sleeper(void *a)
{
	(void)a;
	TCHECK_EQ(weft_mutex_lock(&sm), 0);
	TCHECK_EQ(weft_cond_wait(&sc, &sm), 0);
	atomic_fetch_add(&woken, 1);
	TCHECK_EQ(weft_mutex_unlock(&sm), 0); /* it holds the mutex again */
	return NULL;
}

static void *signal_main(void *a)
{
	(void)a;
	weft_task_t t[NW];
	for (int i = 0; i < NW; i++)
		t[i] = wt_spawn(sleeper, NULL);
	wait_cond_waiters(&sc, NW);
	TCHECK_EQ(weft_cond_destroy(&sc), -EBUSY);
	TCHECK_EQ(weft_cond_signal(&sc), 1);
	while (atomic_load(&woken) != 1)
		weft_sleep(WEFT_MSEC / 4);
	weft_sleep(2 * WEFT_MSEC);
	TCHECK_EQ(atomic_load(&woken), 1); /* one signal, one waiter */
	TCHECK_EQ(cond_waiters(&sc), NW - 1);
	TCHECK_EQ(weft_cond_broadcast(&sc), NW - 1);
	for (int i = 0; i < NW; i++)
		wt_join(t[i]);
	TCHECK_EQ(atomic_load(&woken), NW);
	TCHECK_EQ(weft_cond_destroy(&sc), 0);
	return NULL;
}

static void test_signal_wakes_one_broadcast_all(void **state)
{
	(void)state;
	wt_run(signal_main, NULL, 2);
}

/* ------------------------------------------------------------ deadline, cancel */

static weft_mutex_t dm = WEFT_MUTEX_INIT;
static weft_cond_t dc = WEFT_COND_INIT;

static void *timed_waiter(void *a)
{
	(void)a;
	TCHECK_EQ(weft_mutex_lock(&dm), 0);
	weft_time_t dl = weft_deadline_in(5 * WEFT_MSEC);
	TCHECK_EQ(weft_cond_wait_until(&dc, &dm, dl), -ETIMEDOUT);
	TCHECK(weft_now() >= dl);
	TCHECK_EQ(weft_mutex_unlock(&dm), 0); /* held again after the timeout */
	return NULL;
}

static void *cancelled_waiter(void *a)
{
	(void)a;
	TCHECK_EQ(weft_mutex_lock(&dm), 0);
	TCHECK_EQ(weft_cond_wait(&dc, &dm), -ECANCELED);
	TCHECK_EQ(weft_mutex_unlock(&dm), 0); /* held again after the cancel */
	return NULL;
}

static void *deadline_cancel_main(void *a)
{
	(void)a;
	wt_join(wt_spawn(timed_waiter, NULL));
	TCHECK_EQ(cond_waiters(&dc), 0);
	/* Cancelled while the mutex is held by someone else: it must wait for
	 * the mutex again before it returns - queued on it like any locker
	 * (it used to retry between yields, never queued: this waited for
	 * ever), and still queued after many turns of ours. */
	weft_task_t t = wt_spawn(cancelled_waiter, NULL);
	wait_cond_waiters(&dc, 1);
	TCHECK_EQ(weft_mutex_lock(&dm), 0);
	TCHECK_EQ(weft_cancel(t), 0);
	WT_WAIT_UNTIL(weft__mutex_waiters(&dm) == 1);
	for (int i = 0; i < 100; i++)
		weft_yield();
	TCHECK_EQ(weft__mutex_waiters(&dm), 1);
	TCHECK_EQ(weft_mutex_unlock(&dm), 0);
	wt_join(t);
	TCHECK_EQ(cond_waiters(&dc), 0);
	TCHECK_EQ(weft_cond_signal(&dc), 0); /* nobody left to signal */
	return NULL;
}

static void test_deadline_and_cancel(void **state)
{
	(void)state;
	wt_run(deadline_cancel_main, NULL, 2);
	assert_int_equal(weft_mutex_destroy(&dm), 0);
	assert_int_equal(weft_cond_destroy(&dc), 0);
}

/* ------------------------------------------------------------ signals racing deadlines */

/* Waiters with short deadlines, a third of them cancelled, against a
 * signaller: a waiter that times out or is cancelled as it is signalled
 * reports the signal (0), so the wake-ups signal and broadcast count equal
 * the 0 results exactly (cond.c: a 0 is a pop, nothing else returns one),
 * and every waiter holds the mutex again whatever its result. */
enum { RACERS = 8 };
static weft_mutex_t rm = WEFT_MUTEX_INIT;
static weft_cond_t rc = WEFT_COND_INIT;
static _Atomic long r_signalled, r_zeros, r_done;
static long r_rounds;

static void *racing_waiter(void *a)
{
	uint64_t seed = (uint64_t)(uintptr_t)a;
	/* The ones main cancels wait until they are: a cancel must find them
	 * alive, whatever the load did to the others' pace. */
	bool until_cancelled = ((uintptr_t)a - 1) % 3 == 0;
	for (long i = 0; until_cancelled || i < r_rounds; i++) {
		seed = wt_lcg(seed);
		TCHECK_EQ(weft_mutex_lock(&rm), 0);
		int r = weft_cond_wait_until(&rc, &rm, weft_deadline_in((weft_time_t)((seed >> 33) % 40000)));
		TCHECK(r == 0 || r == -ETIMEDOUT || r == -ECANCELED);
		if (r == 0)
			atomic_fetch_add(&r_zeros, 1);
		TCHECK_EQ(weft_mutex_unlock(&rm), 0); /* held again */
		if (r == -ECANCELED)
			break;
	}
	atomic_fetch_add(&r_done, 1);
	return NULL;
}

static void *racing_signaller(void *a)
{
	(void)a;
	for (long k = 0; atomic_load(&r_done) < RACERS; k++) {
		int w = k % 4 == 3 ? weft_cond_broadcast(&rc) : weft_cond_signal(&rc);
		TCHECK(w >= 0);
		atomic_fetch_add(&r_signalled, w);
		if (k % 2)
			weft_sleep(10000);
		else
			weft_yield();
	}
	return NULL;
}

static void *racing_main(void *a)
{
	(void)a;
	atomic_store(&r_signalled, 0);
	atomic_store(&r_zeros, 0);
	atomic_store(&r_done, 0);
	weft_task_t w[RACERS];
	for (long i = 0; i < RACERS; i++)
		w[i] = wt_spawn(racing_waiter, (void *)(i + 1));
	weft_task_t s = wt_spawn(racing_signaller, NULL);
	weft_sleep(100000);
	for (int i = 0; i < RACERS; i += 3)
		TCHECK_EQ(weft_cancel(w[i]), 0);
	for (int i = 0; i < RACERS; i++)
		wt_join(w[i]);
	wt_join(s);
	TCHECK_EQ(atomic_load(&r_zeros), atomic_load(&r_signalled)); /* no signal lost, none made up */
	TCHECK_EQ(weft_cond_destroy(&rc), 0);
	TCHECK_EQ(weft_mutex_destroy(&rm), 0);
	return NULL;
}

static void test_signals_race_deadlines_and_cancels(void **state)
{
	(void)state;
	r_rounds = WT_SIZE(300, 100);
	wt_run(racing_main, NULL, 2);
}

/* ------------------------------------------------------------ threads */

/* A plain thread waits, a task signals. */
static weft_mutex_t tm = WEFT_MUTEX_INIT;
static weft_cond_t tc = WEFT_COND_INIT;
static bool tflag;

static void *thread_signaller(void *a)
{
	(void)a;
	weft_sleep(2 * WEFT_MSEC);
	TCHECK_EQ(weft_mutex_lock(&tm), 0);
	tflag = true;
	weft_cond_signal(&tc);
	TCHECK_EQ(weft_mutex_unlock(&tm), 0);
	return NULL;
}

static void test_thread_waits_task_signals(void **state)
{
	(void)state;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	atomic_store(&tcheck_failures, 0);
	assert_int_equal(weft_mutex_lock(&tm), 0);
	weft_task_t t;
	assert_int_equal(weft_spawn(&t, thread_signaller, NULL, NULL), 0);
	while (!tflag)
		assert_int_equal(weft_cond_wait(&tc, &tm), 0);
	assert_int_equal(weft_mutex_unlock(&tm), 0);
	assert_int_equal(weft_join(t, NULL), 0);
	/* And a thread's timed wait times out. */
	assert_int_equal(weft_mutex_lock(&tm), 0);
	assert_int_equal(weft_cond_wait_until(&tc, &tm, weft_deadline_in(2 * WEFT_MSEC)), -ETIMEDOUT);
	assert_int_equal(weft_mutex_unlock(&tm), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* ------------------------------------------------------------ stackless */

static weft_mutex_t pm = WEFT_MUTEX_INIT;
static weft_cond_t pc = WEFT_COND_INIT;

static weft_step_t step_waiter(void *s, void **r)
{
	(void)s;
	(void)r;
	TCHECK_EQ(weft_mutex_lock(&pm), 0);
	TCHECK_EQ(weft_cond_wait(&pc, &pm), -EPERM);
	TCHECK_EQ(weft_mutex_unlock(&pm), 0); /* still held: nothing happened */
	TCHECK_EQ(cond_waiters(&pc), 0);
	return WEFT_STEP_DONE;
}

static void *stackless_main(void *a)
{
	(void)a;
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, step_waiter, NULL, NULL), 0);
	wt_join(t);
	return NULL;
}

static void test_stackless(void **state)
{
	(void)state;
	wt_run(stackless_main, NULL, 2);
}

/* ------------------------------------------------------------ under the simulation */

/* The twins: the same bodies, one task at a time in an order drawn from
 * each seed (tests/wt_sim.h); each seed starts from fresh objects. */
static void *pc_sim_main(void *a)
{
	weft_mutex_init(&bm);
	weft_cond_init(&not_full);
	weft_cond_init(&not_empty);
	head = count = 0;
	closed = false;
	atomic_store(&consumed_sum, 0);
	atomic_store(&consumed_n, 0);
	return pc_main(a);
}

static void pc_sim_check(void *a)
{
	(void)a;
	long n = P * items_per_producer; /* producers 0..P-1: every item exactly once */
	TCHECK_EQ(atomic_load(&consumed_n), n);
	TCHECK_EQ(atomic_load(&consumed_sum), n * (n + 1) / 2);
	TCHECK_EQ(count, 0);
	TCHECK_EQ(weft_cond_destroy(&not_full), 0);
	TCHECK_EQ(weft_cond_destroy(&not_empty), 0);
	TCHECK_EQ(weft_mutex_destroy(&bm), 0);
}

static void test_producer_consumer_sim(void **state)
{
	(void)state;
	items_per_producer = 30;
	wt_sim_sweep("sync/cond_producer_consumer", pc_sim_main, pc_sim_check, NULL, WT_SIM_SEEDS);
}

static void *signal_sim_main(void *a)
{
	weft_cond_init(&sc);
	atomic_store(&woken, 0);
	return signal_main(a);
}

static void test_signal_wakes_one_broadcast_all_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/cond_signal_wakes_one_broadcast_all", signal_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void deadline_cancel_sim_check(void *a)
{
	(void)a;
	TCHECK_EQ(weft_mutex_destroy(&dm), 0);
	TCHECK_EQ(weft_cond_destroy(&dc), 0);
}

static void test_signals_race_deadlines_and_cancels_sim(void **state)
{
	(void)state;
	r_rounds = 20;
	wt_sim_sweep("sync/cond_signals_race_deadlines_and_cancels", racing_main, NULL, NULL, WT_SIM_SEEDS);
}

static void test_deadline_and_cancel_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/cond_deadline_and_cancel", deadline_cancel_main, deadline_cancel_sim_check, NULL,
		     WT_SIM_SEEDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_producer_consumer),
		cmocka_unit_test(test_signal_wakes_one_broadcast_all),
		cmocka_unit_test(test_deadline_and_cancel),
		cmocka_unit_test(test_signals_race_deadlines_and_cancels),
		cmocka_unit_test(test_thread_waits_task_signals),
		cmocka_unit_test(test_stackless),
		cmocka_unit_test(test_producer_consumer_sim),
		cmocka_unit_test(test_signal_wakes_one_broadcast_all_sim),
		cmocka_unit_test(test_signals_race_deadlines_and_cancels_sim),
		cmocka_unit_test(test_deadline_and_cancel_sim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
