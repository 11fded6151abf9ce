/* test_timer.c - sleep, deadlines, timers. No timing asserts but
 * "never early" (weft/time.h's promise), and ordering only where one
 * thread runs all the timers of one shard (the wheel fires them sorted). */
#include "wt_sim.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

/* Sleepers with distinct deadlines: each wakes no earlier than its own.
 * (Which wakes first is not promised: timers of different workers' shards
 * fire independently, and woken tasks queue LIFO through the next-task
 * slot, so a late worker may run a later sleeper first.) */
static _Atomic int sleepers_ok;

static void *sleep_n(void *a)
{
	long i = (long)a;
	weft_time_t deadline = weft_deadline_in((10 - i) * 20 * WEFT_MSEC); /* task 0 sleeps longest */
	TCHECK_EQ(weft_sleep_until(deadline), 0);
	TCHECK(weft_now() >= deadline); /* never early */
	atomic_fetch_add(&sleepers_ok, 1);
	return NULL;
}

static void *sleepers_main(void *a)
{
	(void)a;
	weft_task_t t[10];
	for (long i = 0; i < 10; i++)
		weft_spawn(&t[i], sleep_n, (void *)i, NULL);
	for (int i = 0; i < 10; i++)
		weft_join(t[i], NULL);
	return NULL;
}

static void test_sleepers_never_wake_early(void **state)
{
	(void)state;
	atomic_store(&sleepers_ok, 0);
	wt_run(sleepers_main, NULL, 2);
	assert_int_equal(atomic_load(&sleepers_ok), 10);
}

/* Deadline order. With one worker and no monitor, one thread runs every
 * timer, all from one shard: the wheel hands each advance's expired
 * timers over sorted by tick, and a later advance only expires later
 * ticks, so callbacks of timers whose deadlines fall in distinct ticks run
 * in deadline order - however late the worker gets to them. The timers
 * are armed latest first, all from the one task running on that worker:
 * the wheel cannot advance meanwhile, and every deadline lies after the
 * tick it stands at, so none is clamped to "due now". */
#define NORDER 10
static weft_time_t order_deadline[NORDER];
static int fired_order[NORDER];
static _Atomic int fired_n, fired_early;

static void on_order_timer(void *a)
{
	long i = (long)a;
	if (weft_now() < order_deadline[i])
		atomic_fetch_add(&fired_early, 1);
	int k = atomic_fetch_add(&fired_n, 1);
	if (k < NORDER)
		fired_order[k] = (int)i;
}

static void *order_main(void *a)
{
	(void)a;
	weft_timer_t *t[NORDER];
	weft_time_t base = weft_deadline_in(5 * WEFT_MSEC);
	for (long i = NORDER - 1; i >= 0; i--) {
		order_deadline[i] = base + i * 2 * WEFT_MSEC; /* two ticks apart: distinct ticks */
		TCHECK_EQ(weft_timer_create(&t[i], on_order_timer, (void *)i), 0);
		TCHECK_EQ(weft_timer_start(t[i], order_deadline[i], 0), 0);
	}
	WT_WAIT_UNTIL(atomic_load(&fired_n) == NORDER);
	for (int i = 0; i < NORDER; i++)
		TCHECK_EQ(weft_timer_destroy(t[i]), 0);
	return NULL;
}

static void test_one_shard_fires_in_deadline_order(void **state)
{
	(void)state;
	atomic_store(&fired_n, 0);
	atomic_store(&fired_early, 0);
	wt_run_cfg(order_main, NULL, &(weft_config_t){.workers = 1, .no_monitor = true});
	assert_int_equal(atomic_load(&fired_n), NORDER);
	assert_int_equal(atomic_load(&fired_early), 0);
	for (int i = 0; i < NORDER; i++)
		assert_int_equal(fired_order[i], i);
}

/* Many timers: all fire, none early. */
static long nmany;
static _Atomic long fired_ok;

static void *short_sleep(void *a)
{
	weft_time_t d = (weft_time_t)(intptr_t)a * WEFT_MSEC;
	weft_time_t t0 = weft_now();
	weft_sleep(d);
	if (weft_now() - t0 >= d)
		atomic_fetch_add(&fired_ok, 1);
	return NULL;
}

static void *many_main(void *a)
{
	(void)a;
	weft_group_t *g;
	weft_group_create(&g, false);
	for (long i = 0; i < nmany; i++)
		weft_spawn(NULL, short_sleep, (void *)(intptr_t)(1 + i % 50),
			   &(weft_spawn_opts_t){.group = g, .stack_size = 8192});
	weft_group_wait(g);
	weft_group_destroy(g);
	return NULL;
}

static void test_many_timers_all_fire(void **state)
{
	(void)state;
	nmany = WT_SIZE(100000, 5000);
	wt_run(many_main, NULL, 0);
	assert_int_equal(atomic_load(&fired_ok), nmany);
}

/* Periodic timer: fires repeatedly; stop from outside and from inside. */
static _Atomic int ticks, self_ticks;
static weft_timer_t *self_timer;

static void on_tick(void *a)
{
	(void)a;
	atomic_fetch_add(&ticks, 1);
}

static void on_self_tick(void *a)
{
	(void)a;
	if (atomic_fetch_add(&self_ticks, 1) == 2)
		TCHECK_EQ(weft_timer_stop(self_timer), 0);
}

static void *ticker_main(void *a)
{
	(void)a;
	weft_timer_t *t;
	TCHECK_EQ(weft_timer_create(&t, on_tick, NULL), 0);
	TCHECK_EQ(weft_timer_start(t, weft_deadline_in(2 * WEFT_MSEC), 2 * WEFT_MSEC), 0);
	TCHECK_EQ(weft_timer_create(&self_timer, on_self_tick, NULL), 0);
	TCHECK_EQ(weft_timer_start(self_timer, weft_deadline_in(WEFT_MSEC), WEFT_MSEC), 0);
	WT_WAIT_UNTIL(atomic_load(&ticks) >= 5);
	TCHECK_EQ(weft_timer_stop(t), 0);
	int seen = atomic_load(&ticks);
	/* The self-stopping timer stops on its third call (whenever that is). */
	WT_WAIT_UNTIL(atomic_load(&self_ticks) >= 3);
	weft_sleep(20 * WEFT_MSEC);		/* room for a call that should not come */
	TCHECK_EQ(atomic_load(&ticks), seen);	/* no fire after stop returned */
	TCHECK_EQ(atomic_load(&self_ticks), 3); /* none after it stopped itself */
	TCHECK_EQ(weft_timer_destroy(t), 0);
	TCHECK_EQ(weft_timer_destroy(self_timer), 0);
	weft_timer_t *one;
	TCHECK_EQ(weft_timer_create(&one, on_tick, NULL), 0);
	TCHECK_EQ(weft_timer_start(one, weft_deadline_in(WEFT_MSEC), 0), 0);
	WT_WAIT_UNTIL(atomic_load(&ticks) >= seen + 1);
	weft_sleep(20 * WEFT_MSEC);		  /* room for a second call that should not come */
	TCHECK_EQ(atomic_load(&ticks), seen + 1); /* one-shot: exactly once */
	TCHECK_EQ(weft_timer_destroy(one), 0);
	return NULL;
}

static void test_periodic_timer(void **state)
{
	(void)state;
	wt_run(ticker_main, NULL, 2);
}

/* Deadline on a park, stackless: the step sees -ETIMEDOUT. */
static weft_step_t step_deadline(void *s, void **r)
{
	int *phase = s;
	if ((*phase)++ == 0) {
		weft_waker_t w = weft_park_prepare();
		TCHECK_EQ(weft_park_deadline(w, weft_deadline_in(3 * WEFT_MSEC)), 0);
		return WEFT_STEP_PARKED;
	}
	*r = (void *)(intptr_t)weft_park_result();
	return WEFT_STEP_DONE;
}

static void *deadline_main(void *a)
{
	(void)a;
	int phase = 0;
	weft_task_t t;
	weft_spawn_step(&t, step_deadline, &phase, NULL);
	void *r;
	weft_join(t, &r);
	TCHECK_EQ((intptr_t)r, -ETIMEDOUT);
	TCHECK_EQ(phase, 2);
	/* Sleep from a plain context: a zero or past deadline returns at once. */
	TCHECK_EQ(weft_sleep_until(0), 0);
	TCHECK_EQ(weft_sleep(-5), 0);
	return NULL;
}

static void test_stackless_deadline(void **state)
{
	(void)state;
	wt_run(deadline_main, NULL, 1);
	weft_time_t t0 = weft_now();
	assert_int_equal(weft_sleep(2 * WEFT_MSEC), 0); /* plain thread */
	assert_true(weft_now() - t0 >= 2 * WEFT_MSEC);
}

/* Timers whose functions stop or destroy each other (pairs alternate),
 * firing at once on both workers: no stop or destroy may wait for the
 * other's running function (that would deadlock). Each timer is stopped or
 * destroyed at most once (the exchange); the survivors of each pair keep
 * ticking, and they and the stopped ones are freed by the runtime's stop
 * (LeakSanitizer checks that; ASan that none is freed twice). */
#define PAIRS 200
typedef struct {
	_Atomic(weft_timer_t *) t[2];
} timer_pair;
static timer_pair pairs[PAIRS];
static _Atomic int pair_stops, pair_fires, pairs_hit, pair_hit[PAIRS];

static void stop_partner(void *a)
{
	_Atomic(weft_timer_t *) *partner = a;
	atomic_fetch_add(&pair_fires, 1);
	weft_timer_t *p = atomic_exchange(partner, NULL);
	if (p) {
		size_t i = (size_t)((char *)partner - (char *)pairs) / sizeof(timer_pair);
		TCHECK_EQ(i % 2 ? weft_timer_stop(p) : weft_timer_destroy(p), 0);
		atomic_fetch_add(&pair_stops, 1);
		if (atomic_exchange(&pair_hit[i], 1) == 0)
			atomic_fetch_add(&pairs_hit, 1);
	}
}

static void *cross_stop_main(void *a)
{
	(void)a;
	weft_time_t at = weft_deadline_in(5 * WEFT_MSEC);
	for (int i = 0; i < PAIRS; i++) {
		weft_timer_t *x, *y;
		TCHECK_EQ(weft_timer_create(&x, stop_partner, &pairs[i].t[1]), 0);
		TCHECK_EQ(weft_timer_create(&y, stop_partner, &pairs[i].t[0]), 0);
		/* Each is handed to its partner after our last call on it: the
		 * partner may destroy it at once. */
		TCHECK_EQ(weft_timer_start(x, at, WEFT_MSEC), 0);
		atomic_store(&pairs[i].t[0], x);
		TCHECK_EQ(weft_timer_start(y, at, WEFT_MSEC), 0);
		atomic_store(&pairs[i].t[1], y);
	}
	/* Every pair loses a timer: the second one's first call stops the
	 * first (which was stored before the second started), unless the
	 * first stopped it already. Under load arming can outlast the 5 ms,
	 * so early pairs may tick long before late ones are armed: wait for
	 * each pair, not for a number of calls. Then let the survivors tick. */
	WT_WAIT_UNTIL(atomic_load(&pairs_hit) == PAIRS);
	int fires = atomic_load(&pair_fires);
	WT_WAIT_UNTIL(atomic_load(&pair_fires) >= fires + 2 * PAIRS);
	int stops = atomic_load(&pair_stops);
	TCHECK(stops >= PAIRS && stops <= 2 * PAIRS); /* at least one, at most both */
	return NULL;
}

static void test_timers_stop_each_other(void **state)
{
	(void)state;
	wt_run(cross_stop_main, NULL, 2);
}

/* ------------------------------------------------------------ lifecycle
 *
 * create / start / stop / destroy. Each test asserts what the header
 * promises - after stop returns the count of calls does not move, a
 * replaced schedule's calls stop coming - never how soon or how often a
 * timer fires. "Room for a call that should not come" sleeps only make a
 * broken guarantee likely to show; they cannot make a kept one fail. */
static _Atomic int calls;

static void count_call(void *a)
{
	(void)a;
	atomic_fetch_add(&calls, 1);
}

/* Stop, then start again: the timer stays allocated and works again.
 * Stopping a timer that is not started does nothing. */
static void *restart_body(void *a)
{
	(void)a;
	atomic_store(&calls, 0);
	weft_timer_t *t;
	TCHECK_EQ(weft_timer_create(&t, count_call, NULL), 0);
	TCHECK_EQ(weft_timer_stop(t), 0); /* never started */
	TCHECK_EQ(weft_timer_start(t, weft_deadline_in(WEFT_MSEC), 0), 0);
	WT_WAIT_UNTIL(atomic_load(&calls) == 1);
	TCHECK_EQ(weft_timer_stop(t), 0); /* a one-shot timer whose call came */
	TCHECK_EQ(weft_timer_start(t, weft_deadline_in(WEFT_MSEC), WEFT_MSEC), 0); /* again, periodic */
	WT_WAIT_UNTIL(atomic_load(&calls) >= 4);
	TCHECK_EQ(weft_timer_stop(t), 0);
	int n = atomic_load(&calls);
	weft_sleep(20 * WEFT_MSEC); /* room for a call that should not come */
	TCHECK_EQ(atomic_load(&calls), n);
	TCHECK_EQ(weft_timer_stop(t), 0);				   /* stopped already */
	TCHECK_EQ(weft_timer_start(t, weft_deadline_in(WEFT_MSEC), 0), 0); /* and once more */
	WT_WAIT_UNTIL(atomic_load(&calls) == n + 1);
	weft_sleep(20 * WEFT_MSEC);
	TCHECK_EQ(atomic_load(&calls), n + 1);
	TCHECK_EQ(weft_timer_destroy(t), 0);
	return NULL;
}

/* From a coroutine, then from a plain thread (the default runtime's timer). */
static void run_in_task_and_thread(void *(*body)(void *))
{
	wt_run(body, NULL, 2);
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	atomic_store(&tcheck_failures, 0);
	body(NULL);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

static void test_timer_restart_after_stop(void **state)
{
	(void)state;
	run_in_task_and_thread(restart_body);
}

/* A timer function whose first call stays until a helper thread releases
 * it, a few milliseconds after the call began; stop and destroy from
 * outside the timer functions must wait for a call under way. The caller
 * sees `entered` while that call is under way (it cannot end before the
 * release) and stops the timer - before the release, or, if the caller was
 * slow (its own wake-up may wait for that call: a timer function holds up
 * its worker's timers), after it: either way, once the stop returns no call
 * is running, the release has come, and no call comes any more. (The
 * release must not wait for the caller: a timer function that waits for a
 * task may wait for ever.) */
static _Atomic int slow_entered, slow_release, slow_running;

static void slow_call(void *a)
{
	(void)a;
	atomic_store(&slow_running, 1);
	atomic_store(&slow_entered, 1);
	weft_time_t give_up = wt_hang_deadline();
	while (!atomic_load(&slow_release) && weft_now() < give_up)
		sched_yield();
	atomic_store(&slow_running, 0);
	atomic_fetch_add(&calls, 1);
}

static void *release_later(void *a)
{
	(void)a;
	weft_time_t give_up = wt_hang_deadline();
	while (!atomic_load(&slow_entered) && weft_now() < give_up)
		usleep(100);
	usleep(5000);
	atomic_store(&slow_release, 1);
	return NULL;
}

static void *stop_waits_body(void *a)
{
	(void)a;
	atomic_store(&calls, 0);
	weft_timer_t *t;
	TCHECK_EQ(weft_timer_create(&t, slow_call, NULL), 0);
	for (int destroy = 0; destroy <= 1; destroy++) {
		atomic_store(&slow_entered, 0);
		atomic_store(&slow_release, 0);
		pthread_t th;
		TCHECK_EQ(pthread_create(&th, NULL, release_later, NULL), 0);
		TCHECK_EQ(weft_timer_start(t, weft_deadline_in(WEFT_MSEC), WEFT_MSEC), 0);
		WT_WAIT_UNTIL(atomic_load(&slow_entered));
		TCHECK_EQ(destroy ? weft_timer_destroy(t) : weft_timer_stop(t), 0);
		TCHECK_EQ(atomic_load(&slow_release), 1); /* the call ended before the stop returned */
		TCHECK_EQ(atomic_load(&slow_running), 0);
		int n = atomic_load(&calls);
		weft_sleep(20 * WEFT_MSEC); /* room for a call that should not come */
		TCHECK_EQ(atomic_load(&calls), n);
		TCHECK_EQ(pthread_join(th, NULL), 0);
	}
	return NULL;
}

static void test_timer_stop_and_destroy_wait_for_a_call(void **state)
{
	(void)state;
	run_in_task_and_thread(stop_waits_body);
}

/* A start while the timer is started replaces its schedule: an entry armed
 * for an hour from now, re-started for a millisecond from now, is called
 * (once); a periodic timer re-started as never due stops being called (but
 * for a call already under way when the start came). */
static void *replace_body(void *a)
{
	(void)a;
	atomic_store(&calls, 0);
	weft_timer_t *t;
	TCHECK_EQ(weft_timer_create(&t, count_call, NULL), 0);
	TCHECK_EQ(weft_timer_start(t, weft_deadline_in(3600 * WEFT_SEC), WEFT_SEC), 0);
	TCHECK_EQ(weft_timer_start(t, weft_deadline_in(WEFT_MSEC), 0), 0);
	WT_WAIT_UNTIL(atomic_load(&calls) == 1);
	weft_sleep(20 * WEFT_MSEC); /* room for a second call that should not come */
	TCHECK_EQ(atomic_load(&calls), 1);

	TCHECK_EQ(weft_timer_start(t, weft_deadline_in(WEFT_MSEC), WEFT_MSEC), 0);
	WT_WAIT_UNTIL(atomic_load(&calls) >= 4);
	TCHECK_EQ(weft_timer_start(t, WEFT_NEVER, WEFT_MSEC), 0);
	int n = atomic_load(&calls);
	weft_sleep(20 * WEFT_MSEC);
	TCHECK(atomic_load(&calls) <= n + 1); /* at most the one under way */
	TCHECK_EQ(weft_timer_stop(t), 0);
	n = atomic_load(&calls);
	weft_sleep(20 * WEFT_MSEC);
	TCHECK_EQ(atomic_load(&calls), n);
	TCHECK_EQ(weft_timer_destroy(t), 0);
	return NULL;
}

static void test_timer_restart_replaces_the_schedule(void **state)
{
	(void)state;
	run_in_task_and_thread(replace_body);
}

/* From its own function: a periodic timer re-starts itself as a one-shot
 * timer on its third call (exactly one more call comes), and another
 * destroys itself on its third call (after which calls on it from that
 * function are refused, and no call comes). */
static weft_timer_t *self_restart, *self_destroy;
static _Atomic int restart_calls, destroy_calls, destroyed_checked;

static void restart_self(void *a)
{
	(void)a;
	if (atomic_fetch_add(&restart_calls, 1) == 2)
		TCHECK_EQ(weft_timer_start(self_restart, weft_deadline_in(WEFT_MSEC), 0), 0);
}

static void destroy_self(void *a)
{
	(void)a;
	if (atomic_fetch_add(&destroy_calls, 1) != 2)
		return;
	TCHECK_EQ(weft_timer_destroy(self_destroy), 0);
	/* Destroyed; freed when this call returns. */
	TCHECK_EQ(weft_timer_start(self_destroy, 0, 0), -EINVAL);
	TCHECK_EQ(weft_timer_stop(self_destroy), -EINVAL);
	TCHECK_EQ(weft_timer_destroy(self_destroy), -EINVAL);
	atomic_store(&destroyed_checked, 1);
}

static void *from_fn_main(void *a)
{
	(void)a;
	atomic_store(&restart_calls, 0);
	atomic_store(&destroy_calls, 0);
	atomic_store(&destroyed_checked, 0);
	TCHECK_EQ(weft_timer_create(&self_restart, restart_self, NULL), 0);
	TCHECK_EQ(weft_timer_create(&self_destroy, destroy_self, NULL), 0);
	TCHECK_EQ(weft_timer_start(self_restart, weft_deadline_in(WEFT_MSEC), WEFT_MSEC), 0);
	TCHECK_EQ(weft_timer_start(self_destroy, weft_deadline_in(WEFT_MSEC), WEFT_MSEC), 0);
	WT_WAIT_UNTIL(atomic_load(&restart_calls) == 4 && atomic_load(&destroyed_checked));
	weft_sleep(20 * WEFT_MSEC); /* room for calls that should not come */
	TCHECK_EQ(atomic_load(&restart_calls), 4);
	TCHECK_EQ(atomic_load(&destroy_calls), 3);
	TCHECK_EQ(weft_timer_destroy(self_restart), 0);
	return NULL;
}

static void test_timer_restart_and_destroy_from_its_function(void **state)
{
	(void)state;
	wt_run(from_fn_main, NULL, 2);
}

/* A timer belongs to the runtime it was created in; a task of another
 * runtime starts, stops and destroys it (the calls hold the timer's
 * runtime and arm in its shards), and it is called there. */
static void *other_runtime_body(void *a)
{
	weft_timer_t *t = a;
	TCHECK_EQ(weft_timer_start(t, weft_deadline_in(WEFT_MSEC), WEFT_MSEC), 0);
	WT_WAIT_UNTIL(atomic_load(&calls) >= 3);
	TCHECK_EQ(weft_timer_stop(t), 0);
	int n = atomic_load(&calls);
	weft_sleep(20 * WEFT_MSEC); /* room for a call that should not come */
	TCHECK_EQ(atomic_load(&calls), n);
	TCHECK_EQ(weft_timer_start(t, weft_deadline_in(WEFT_MSEC), 0), 0);
	WT_WAIT_UNTIL(atomic_load(&calls) == n + 1);
	TCHECK_EQ(weft_timer_destroy(t), 0);
	return NULL;
}

static void test_timer_used_from_another_runtime(void **state)
{
	(void)state;
	atomic_store(&calls, 0);
	weft_runtime_t *owner;
	assert_int_equal(weft_runtime_start(&owner, &(weft_config_t){.workers = 1}), 0);
	weft_timer_t *t;
	assert_int_equal(weft_timer_create(&t, count_call, NULL), 0); /* the default runtime: owner */
	wt_run(other_runtime_body, t, 1);
	assert_int_equal(weft_runtime_stop(owner), 0);
}

/* Arguments: NULL objects and a negative period are -EINVAL; a failed
 * create leaves NULL in *out. */
static void *args_main(void *a)
{
	(void)a;
	weft_timer_t *t = (weft_timer_t *)&t;
	TCHECK_EQ(weft_timer_create(NULL, count_call, NULL), -EINVAL);
	TCHECK_EQ(weft_timer_create(&t, NULL, NULL), -EINVAL);
	TCHECK(t == NULL);
	TCHECK_EQ(weft_timer_start(NULL, 0, 0), -EINVAL);
	TCHECK_EQ(weft_timer_stop(NULL), -EINVAL);
	TCHECK_EQ(weft_timer_destroy(NULL), -EINVAL);
	TCHECK_EQ(weft_timer_create(&t, count_call, NULL), 0);
	TCHECK_EQ(weft_timer_start(t, 0, -1), -EINVAL);
	TCHECK_EQ(weft_timer_start(t, 0, INT64_MIN), -EINVAL);
	TCHECK_EQ(weft_timer_destroy(t), 0); /* never started */
	return NULL;
}

static void test_timer_arguments(void **state)
{
	(void)state;
	wt_run(args_main, NULL, 1);
	/* No runtime at all. */
	weft_timer_t *t = (weft_timer_t *)&t;
	assert_int_equal(weft_timer_create(&t, count_call, NULL), -ESHUTDOWN);
	assert_null(t);
}

/* ------------------------------------------------------------ stuck worker */

/* The due timers of a worker stuck in one task run on its runtime's
 * monitor, which counts as the runtime's own thread there: the runtime a
 * timer function sees is its timer's (not the process default), and it
 * cannot stop it. rt2 is not the default runtime; its only worker is held
 * by a task that spins until the timer function has run, so the monitor
 * is the only thread that can run it. */
static weft_runtime_t *st_rt2;
static _Atomic int st_done;
static weft_runtime_t *_Atomic st_current;
static _Atomic int st_stop_result, st_index;

static void st_fire(void *a)
{
	(void)a;
	weft_runtime_t *cur = weft_runtime_current();
	atomic_store(&st_current, cur);
	atomic_store(&st_index, weft_worker_index());
	/* (Only if it is rt2's thread: else the stop would wait for the
	 * spinner, which waits for us.) */
	atomic_store(&st_stop_result, cur == st_rt2 ? weft_runtime_stop(st_rt2) : 1);
	atomic_store(&st_done, 1);
}

static void *st_spinner(void *a)
{
	(void)a;
	weft_timer_t *tm;
	TCHECK_EQ(weft_timer_create(&tm, st_fire, NULL), 0); /* rt2's: made by its task */
	TCHECK_EQ(weft_timer_start(tm, weft_now(), 0), 0);
	while (!atomic_load(&st_done))
		sched_yield(); /* the OS thread only: the worker stays ours */
	TCHECK_EQ(weft_timer_destroy(tm), 0);
	return NULL;
}

static void test_stuck_workers_timers_run_as_their_runtimes(void **state)
{
	(void)state;
	weft_runtime_t *rt1;
	assert_int_equal(weft_runtime_start(&rt1, &(weft_config_t){.workers = 1}), 0);
	assert_int_equal(weft_runtime_start(&st_rt2, &(weft_config_t){.workers = 1}), 0);
	assert_true(weft_runtime_current() == rt1); /* the default, from this thread */
	weft_task_t t;
	assert_int_equal(weft_spawn(&t, st_spinner, NULL, &(weft_spawn_opts_t){.runtime = st_rt2}), 0);
	assert_int_equal(weft_join(t, NULL), 0);
	assert_true(atomic_load(&st_current) == st_rt2);
	assert_int_equal(atomic_load(&st_stop_result), -EDEADLK);
	assert_int_equal(atomic_load(&st_index), -1); /* not a worker */
	assert_int_equal(weft_runtime_stop(st_rt2), 0);
	assert_int_equal(weft_runtime_stop(rt1), 0);
}

/* ------------------------------------------------------------ under the simulation */

/* The twins: the same bodies on the virtual clock, one task at a time in
 * an order drawn from each seed (tests/wt_sim.h). */
static void *sleepers_sim_main(void *a)
{
	atomic_store(&sleepers_ok, 0);
	return sleepers_main(a);
}

static void sleepers_sim_check(void *a)
{
	(void)a;
	TCHECK_EQ(atomic_load(&sleepers_ok), 10);
}

static void test_sleepers_never_wake_early_sim(void **state)
{
	(void)state;
	wt_sim_sweep("time/sleepers_never_wake_early", sleepers_sim_main, sleepers_sim_check, NULL, WT_SIM_SEEDS);
}

static void *ticker_sim_main(void *a)
{
	atomic_store(&ticks, 0);
	atomic_store(&self_ticks, 0);
	return ticker_main(a);
}

static void test_periodic_timer_sim(void **state)
{
	(void)state;
	wt_sim_sweep("time/periodic_timer", ticker_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sleepers_never_wake_early),
		cmocka_unit_test(test_one_shard_fires_in_deadline_order),
		cmocka_unit_test(test_many_timers_all_fire),
		cmocka_unit_test(test_periodic_timer),
		cmocka_unit_test(test_stackless_deadline),
		cmocka_unit_test(test_timers_stop_each_other),
		cmocka_unit_test(test_timer_restart_after_stop),
		cmocka_unit_test(test_timer_stop_and_destroy_wait_for_a_call),
		cmocka_unit_test(test_timer_restart_replaces_the_schedule),
		cmocka_unit_test(test_timer_restart_and_destroy_from_its_function),
		cmocka_unit_test(test_timer_used_from_another_runtime),
		cmocka_unit_test(test_timer_arguments),
		cmocka_unit_test(test_stuck_workers_timers_run_as_their_runtimes),
		cmocka_unit_test(test_sleepers_never_wake_early_sim),
		cmocka_unit_test(test_periodic_timer_sim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
