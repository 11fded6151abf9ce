/* test_park.c - park/unpark and the wait queue. */
#include "weft_test.h"

#include <pthread.h>
#include <unistd.h>

/* A wake that comes before the park is not lost; the second wake of the same
 * wait fails; a stale waker cannot wake a later wait. */
static void *early_wake(void *a)
{
	(void)a;
	weft_waker_t w = weft_park_prepare();
	TCHECK(weft_unpark(w, 0));
	TCHECK(!weft_unpark(w, 0));
	TCHECK_EQ(weft_park(w, WEFT_NEVER), 0);
	weft_waker_t w2 = weft_park_prepare();
	TCHECK(!weft_unpark(w, 0)); /* stale: names the previous wait */
	TCHECK_EQ(weft_park(w2, weft_deadline_in(2 * WEFT_MSEC)), -ETIMEDOUT);
	TCHECK_EQ(weft_park(w, WEFT_NEVER), -EINVAL); /* not the current wait */
	weft_waker_t w3 = weft_park_prepare();
	TCHECK(weft_unpark(w3, -EPIPE)); /* a reason travels to the parker */
	TCHECK_EQ(weft_park(w3, WEFT_NEVER), -EPIPE);
	return NULL;
}

static void test_wake_before_park_is_kept(void **state)
{
	(void)state;
	wt_run(early_wake, NULL, 1);
}

/* Park-and-wake stress: N tasks park; main wakes each once; every wake lands
 * exactly once and every task completes. */
static long nwait;
static weft_waker_t *wakers;
static _Atomic long parked, woken;

static void *parker(void *a)
{
	long i = (long)a;
	weft_waker_t w = weft_park_prepare();
	wakers[i] = w;
	atomic_fetch_add(&parked, 1); /* publishes wakers[i] */
	int r = weft_park(w, WEFT_NEVER);
	TCHECK_EQ(r, 0);
	atomic_fetch_add(&woken, 1);
	return NULL;
}

struct step_state {
	int phase;
	long i;
};

static weft_step_t step_parker(void *s, void **res)
{
	struct step_state *st = s;
	(void)res;
	if (st->phase++ == 0) {
		wakers[st->i] = weft_park_prepare();
		atomic_fetch_add(&parked, 1);
		return WEFT_STEP_PARKED;
	}
	TCHECK_EQ(weft_park_result(), 0);
	atomic_fetch_add(&woken, 1);
	return WEFT_STEP_DONE;
}

static void *park_many(void *a)
{
	bool step = a != NULL;
	struct step_state *ss = step ? calloc((size_t)nwait, sizeof *ss) : NULL;
	weft_group_t *g;
	weft_group_create(&g, false);
	for (long i = 0; i < nwait; i++) {
		if (step) {
			ss[i].i = i;
			weft_spawn_step(NULL, step_parker, &ss[i], &(weft_spawn_opts_t){.group = g});
		} else {
			weft_spawn(NULL, parker, (void *)i, &(weft_spawn_opts_t){.group = g, .stack_size = 8192});
		}
	}
	WT_WAIT_UNTIL(atomic_load(&parked) == nwait);
	long wins = 0;
	for (long i = 0; i < nwait; i++) {
		wins += weft_unpark(wakers[i], 0);
		wins -= weft_unpark(wakers[i], 0) ? 1000000 : 0; /* a second wake must fail */
	}
	TCHECK_EQ(wins, nwait);
	TCHECK_EQ(weft_group_wait(g), 0);
	weft_group_destroy(g);
	free(ss);
	return NULL;
}

static void test_park_and_wake_many(void **state)
{
	(void)state;
	nwait = WT_SIZE3(1000000, 20000, 4000);
	wakers = calloc((size_t)nwait, sizeof *wakers);
	atomic_store(&parked, 0);
	atomic_store(&woken, 0);
	wt_run(park_many, (void *)1, 0);
	assert_int_equal(atomic_load(&woken), nwait);
	nwait = WT_SIZE(200000, 5000); /* TSan allows ~8000 live fibers */
	atomic_store(&parked, 0);
	atomic_store(&woken, 0);
	wt_run(park_many, NULL, 0);
	assert_int_equal(atomic_load(&woken), nwait);
	free(wakers);
}

/* A plain thread parks and a task wakes it (and the other way round). */
static weft_waker_t thread_waker;
static _Atomic int thread_ready;

static void *wake_thread(void *a)
{
	(void)a;
	while (!atomic_load(&thread_ready))
		weft_sleep(WEFT_MSEC);
	TCHECK(weft_unpark(thread_waker, 0));
	return NULL;
}

static void test_plain_thread_parks(void **state)
{
	(void)state;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	weft_task_t t;
	thread_waker = weft_park_prepare();
	assert_int_equal(weft_spawn(&t, wake_thread, NULL, NULL), 0);
	atomic_store(&thread_ready, 1);
	assert_int_equal(weft_park(thread_waker, WEFT_NEVER), 0);
	assert_int_equal(weft_join(t, NULL), 0);
	weft_waker_t w = weft_park_prepare();
	weft_time_t t0 = weft_now();
	assert_int_equal(weft_park(w, weft_deadline_in(5 * WEFT_MSEC)), -ETIMEDOUT);
	assert_true(weft_now() - t0 >= 5 * WEFT_MSEC);
	assert_int_equal(weft_runtime_stop(rt), 0);
}

/* Wait queue: wake_one wakes in FIFO order; a waiter that times out removes
 * itself; wake_all wakes the rest. */
static weft_waitq_t q = WEFT_WAITQ_INIT;
static _Atomic int order_n, queued;

static void *q_waiter(void *a)
{
	long i = (long)a;
	weft_waitq_node_t n;
	weft_waitq_lock(&q);
	weft_waitq_push(&q, &n);
	atomic_fetch_add(&queued, 1);
	weft_waitq_unlock(&q);
	weft_time_t dl = i == 3 ? weft_deadline_in(WEFT_MSEC) : WEFT_NEVER;
	int r = weft_park(n.waker, dl);
	if (r != 0) {
		TCHECK(weft_waitq_remove(&q, &n));
		TCHECK_EQ(r, -ETIMEDOUT);
		TCHECK_EQ(i, 3);
		return NULL;
	}
	TCHECK(!n.queued);
	atomic_fetch_add(&order_n, 1);
	/* wake_one pops in FIFO order: waiter 0 got status 10, 1 got 11, 2 got 12. */
	TCHECK_EQ(n.status, i < 3 ? 10 + i : 2);
	return NULL;
}

static void *waitq_main(void *a)
{
	(void)a;
	weft_task_t t[6];
	for (long i = 0; i < 6; i++) {
		weft_spawn(&t[i], q_waiter, (void *)i, NULL);
		while (atomic_load(&queued) != i + 1)
			weft_yield();
	}
	/* Waiter 3 times out and removes itself. Wait for that to be done, not
	 * a fixed 10 ms: a wait whose deadline fired is not woken by a wake_all,
	 * but its node stays queued until the waiter runs, and a wake_all that
	 * popped it first would leave the waiter's remove nothing to find. */
	wt_join(t[3]);
	TCHECK_EQ(weft_waitq_wake_one(&q, 10), 1);
	TCHECK_EQ(weft_waitq_wake_one(&q, 11), 1);
	TCHECK_EQ(weft_waitq_wake_one(&q, 12), 1);
	TCHECK_EQ(weft_waitq_wake_all(&q, 2), 2);
	TCHECK_EQ(weft_waitq_wake_one(&q, 1), 0);
	for (int i = 0; i < 6; i++)
		if (i != 3)
			weft_join(t[i], NULL);
	return NULL;
}

static void test_waitq_fifo_and_timeout(void **state)
{
	(void)state;
	wt_run(waitq_main, NULL, 1);
	assert_int_equal(atomic_load(&order_n), 5);
}

/* Park from a stackless task is refused for the blocking call itself. */
static weft_step_t step_blocking(void *s, void **r)
{
	(void)s;
	TCHECK(!weft_can_park());
	TCHECK_EQ(weft_sleep(WEFT_MSEC), -EPERM);
	TCHECK_EQ(weft_yield(), -EPERM);
	weft_waker_t w = weft_park_prepare();
	TCHECK_EQ(weft_park(w, WEFT_NEVER), -EPERM);
	weft_unpark(w, 0);
	*r = (void *)9;
	return WEFT_STEP_DONE;
}

static void *step_blocking_main(void *a)
{
	(void)a;
	TCHECK(weft_can_park()); /* a coroutine */
	weft_task_t t;
	weft_spawn_step(&t, step_blocking, NULL, NULL);
	void *r;
	TCHECK_EQ(weft_join(t, &r), 0);
	TCHECK_EQ((intptr_t)r, 9);
	return NULL;
}

static void test_stackless_cannot_block(void **state)
{
	(void)state;
	assert_true(weft_can_park()); /* a plain thread */
	wt_run(step_blocking_main, NULL, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wake_before_park_is_kept), cmocka_unit_test(test_park_and_wake_many),
		cmocka_unit_test(test_plain_thread_parks),	 cmocka_unit_test(test_waitq_fifo_and_timeout),
		cmocka_unit_test(test_stackless_cannot_block),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
