/* test_runtime.c - stealing, the monitor, statistics, dumps, shutdown. */
#include "weft_test.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

/* Stealing. The test-main task spawns tasks onto its own worker's queue
 * (its next-task slot and ring; nothing goes to the global queue) and then
 * keeps that worker busy - it spins, never yields or parks - until every
 * one of them has run. So none can run on that worker: another worker must
 * steal them all, whatever the load and however long it takes (the spin
 * ends when the work is done; only the hang guard bounds it). */
#define NSTEAL 64
static _Atomic int steal_ran, ran_on_owner, owner_worker;

static void note_worker(void)
{
	if (weft_worker_index() == atomic_load(&owner_worker))
		atomic_fetch_add(&ran_on_owner, 1);
	atomic_fetch_add(&steal_ran, 1);
}

static void *note_task(void *a)
{
	(void)a;
	note_worker();
	return NULL;
}

static weft_step_t note_step(void *s, void **r)
{
	(void)s;
	note_worker();
	*r = NULL;
	return WEFT_STEP_DONE;
}

static weft_worker_stats_t after_pw[8];
static weft_stats_t after = {.size = sizeof after, .per_worker = after_pw, .per_worker_len = 8};

static void *uneven(void *a)
{
	(void)a;
	atomic_store(&owner_worker, weft_worker_index());
	weft_group_t *g;
	TCHECK_EQ(weft_group_create(&g, false), 0);
	for (long i = 0; i < NSTEAL; i++) {
		weft_spawn_opts_t o = {.group = g};
		TCHECK_EQ(i & 1 ? weft_spawn_step(NULL, note_step, NULL, &o) : weft_spawn(NULL, note_task, NULL, &o),
			  0);
	}
	/* Hold this worker until all have run elsewhere. */
	weft_time_t give_up = wt_hang_deadline();
	while (atomic_load(&steal_ran) < NSTEAL && weft_now() < give_up) {
	}
	TCHECK_EQ(atomic_load(&steal_ran), NSTEAL);
	TCHECK_EQ(weft_worker_index(), atomic_load(&owner_worker)); /* it never left */
	TCHECK_EQ(weft_group_wait(g), 0);
	TCHECK_EQ(weft_group_destroy(g), 0);
	weft_stats(NULL, &after);
	return NULL;
}

static void test_stealing_empties_a_busy_workers_queue(void **state)
{
	(void)state;
	atomic_store(&steal_ran, 0);
	atomic_store(&ran_on_owner, 0);
	wt_run(uneven, NULL, 2);
	assert_int_equal(atomic_load(&ran_on_owner), 0);
	int owner = atomic_load(&owner_worker);
	assert_true(owner >= 0 && owner < after.workers);
	uint64_t steals = 0, runs = 0;
	for (int i = 0; i < after.workers; i++) {
		if (i == owner)
			continue;
		steals += after.per_worker[i].steals;
		runs += after.per_worker[i].tasks_run;
	}
	assert_true(steals >= 1);
	assert_true(runs >= NSTEAL); /* (a resumed task counts again: >=) */
	assert_true(after.spawned >= NSTEAL + 1);
}

/* The monitor: with one worker, a task stuck in a raw blocking system call
 * does not stall the others - an extra worker is started and runs them. */
static int pipefd[2];
static _Atomic int stuck_on = -1, released_on = -1;

static void *releaser(void *a)
{
	(void)a;
	atomic_store(&released_on, weft_worker_index());
	TCHECK_EQ(write(pipefd[1], "x", 1), 1);
	return NULL;
}

static void *stuck(void *a)
{
	(void)a;
	atomic_store(&stuck_on, weft_worker_index());
	/* r waits in this worker's queue while we block the worker. */
	weft_spawn(NULL, releaser, NULL, &(weft_spawn_opts_t){.detached = true});
	char c;
	TCHECK_EQ(read(pipefd[0], &c, 1), 1); /* a raw blocking read, not weft's */
	return NULL;
}

static void *monitor_main(void *a)
{
	(void)a;
	weft_task_t s;
	weft_spawn(&s, stuck, NULL, NULL);
	weft_join(s, NULL);
	/* The releaser ran while the only base worker was blocked: on an
	 * extra worker. */
	TCHECK_EQ(atomic_load(&stuck_on), 0);
	TCHECK(atomic_load(&released_on) >= 1);
	/* A worker is counted before its thread starts, so the one that ran
	 * the releaser is in the statistics already. */
	weft_stats_t st = {0};
	TCHECK_EQ(weft_stats(NULL, &st), 0);
	TCHECK(st.workers >= 2);
	TCHECK(st.workers > atomic_load(&released_on));
	return NULL;
}

static void test_monitor_unsticks_a_blocked_worker(void **state)
{
	(void)state;
	assert_int_equal(pipe(pipefd), 0);
	wt_run(monitor_main, NULL, 1);
	close(pipefd[0]);
	close(pipefd[1]);
}

/* Statistics and the task dump, read while tasks are parked. */
static void *parked_forever(void *a)
{
	(void)a;
	weft_set_name("sleepy");
	return (void *)(intptr_t)weft_sleep(3600 * WEFT_SEC);
}

static char dump[65536];

static void *stats_main(void *a)
{
	(void)a;
	for (int i = 0; i < 10; i++)
		weft_spawn(NULL, parked_forever, NULL, &(weft_spawn_opts_t){.detached = true});
	/* Until all ten have armed their sleep (the test-main task's own
	 * sleep timer is cancelled before its sleep returns). */
	weft_stats_t s = {0};
	WT_WAIT_UNTIL(weft_stats(NULL, &s) == 0 && s.timers_active >= 10);
	TCHECK_EQ(weft_stats(NULL, &s), 0);
	TCHECK(s.live >= 11);
	TCHECK(s.timers_active >= 10);
	TCHECK(s.stacks_in_use >= 11);
	int p[2];
	TCHECK_EQ(pipe(p), 0);
	int n = weft_task_dump(NULL, p[1]);
	TCHECK(n >= 11);
	close(p[1]);
	ssize_t got = read(p[0], dump, sizeof dump - 1);
	close(p[0]);
	TCHECK(got > 0);
	return NULL;
}

static void test_stats_and_dump_while_running(void **state)
{
	(void)state;
	/* The parked tasks are still there at stop: stop cancels them. */
	wt_run(stats_main, NULL, 2);
	assert_non_null(strstr(dump, "'sleepy' coroutine waiting on sleep"));
	assert_non_null(strstr(dump, "'test-main' coroutine running"));
	assert_non_null(strstr(dump, " runs "));
}

/* Shutdown with tasks parked forever in every kind of wait. */
static _Atomic int cancelled_seen, waits_opened;

static void *wait_forever(void *a)
{
	(void)a;
	weft_waker_t w = weft_park_prepare();
	atomic_fetch_add(&waits_opened, 1);
	if (weft_park(w, WEFT_NEVER) == -ECANCELED)
		atomic_fetch_add(&cancelled_seen, 1);
	return NULL;
}

static weft_step_t step_forever(void *s, void **r)
{
	(void)r;
	int *phase = s;
	if ((*phase)++ == 0) {
		weft_park_prepare();
		atomic_fetch_add(&waits_opened, 1);
		return WEFT_STEP_PARKED;
	}
	if (weft_park_result() == -ECANCELED)
		atomic_fetch_add(&cancelled_seen, 1);
	return WEFT_STEP_DONE;
}

static int phases[100];

static void test_shutdown_with_parked_tasks(void **state)
{
	(void)state;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(weft_spawn(NULL, wait_forever, NULL, NULL), 0); /* never joined */
		assert_int_equal(weft_spawn_step(NULL, step_forever, &phases[i], NULL), 0);
	}
	/* Every task has opened its wait (and parks, or is about to). */
	weft_time_t give_up = wt_hang_deadline();
	while (atomic_load(&waits_opened) < 200 && weft_now() < give_up)
		usleep(1000);
	assert_int_equal(atomic_load(&waits_opened), 200);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&cancelled_seen), 200);
	assert_int_equal(weft_spawn(NULL, wait_forever, NULL, NULL), -ESHUTDOWN);
}

static void *stop_from_task(void *a)
{
	TCHECK_EQ(weft_runtime_stop(a), -EDEADLK);
	TCHECK_EQ(weft_runtime_wait_stop_request(a), -EDEADLK);
	TCHECK_EQ(weft_runtime_wait_stop_request_until(a, 0), -EDEADLK);
	TCHECK_EQ(weft_runtime_request_stop(a), 0);
	return NULL;
}

static void test_stop_from_inside_is_refused(void **state)
{
	(void)state;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, NULL), 0);
	atomic_store(&tcheck_failures, 0);
	assert_int_equal(weft_spawn(NULL, stop_from_task, rt, &(weft_spawn_opts_t){.detached = true}), 0);
	assert_int_equal(weft_runtime_wait_stop_request(rt), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* Task ids name their runtime: a plain thread (whose default runtime is
 * the first one) joins, cancels and names tasks of a second runtime, and a
 * task of one runtime joins a task of the other. Ids of a stopped runtime
 * resolve to nothing. */
static void *return_arg(void *a)
{
	return a;
}

static void *sleep_long(void *a)
{
	(void)a;
	return (void *)(intptr_t)weft_sleep(3600 * WEFT_SEC); /* only the cancel ends it in time */
}

static void *join_other(void *a)
{
	void *r = NULL;
	TCHECK_EQ(weft_join((weft_task_t)(uintptr_t)a, &r), 0);
	return r;
}

static void test_ids_resolve_across_runtimes(void **state)
{
	(void)state;
	weft_runtime_t *first, *second;
	assert_int_equal(weft_runtime_start(&first, &(weft_config_t){.workers = 1}), 0);
	assert_int_equal(weft_runtime_start(&second, &(weft_config_t){.workers = 1}), 0);
	atomic_store(&tcheck_failures, 0);
	weft_task_t a, b, c, j;
	assert_int_equal(
		weft_spawn(&a, return_arg, (void *)7, &(weft_spawn_opts_t){.runtime = second, .name = "in-second"}), 0);
	assert_int_equal(weft_spawn(&b, sleep_long, NULL, &(weft_spawn_opts_t){.runtime = second}), 0);
	assert_int_equal(weft_spawn(&c, return_arg, (void *)9, &(weft_spawn_opts_t){.runtime = second}), 0);
	assert_true(a != b && (a >> 56) != 0);
	char name[16];
	assert_int_equal(weft_task_name(a, name, sizeof name), 0); /* from this plain thread */
	assert_string_equal(name, "in-second");
	void *r = NULL;
	assert_int_equal(weft_join(a, &r), 0);
	assert_ptr_equal(r, (void *)7);
	assert_int_equal(weft_cancel(b), 0);
	assert_int_equal(weft_join(b, &r), 0);
	assert_int_equal((intptr_t)r, -ECANCELED);
	/* A task of the first runtime joins one of the second. */
	assert_int_equal(weft_spawn(&j, join_other, (void *)(uintptr_t)c, &(weft_spawn_opts_t){.runtime = first}), 0);
	assert_int_equal(weft_join(j, &r), 0);
	assert_ptr_equal(r, (void *)9);
	/* A stale id of a stopped runtime. */
	weft_task_t d;
	assert_int_equal(weft_spawn(&d, return_arg, NULL, &(weft_spawn_opts_t){.runtime = second}), 0);
	assert_int_equal(weft_runtime_stop(second), 0);
	assert_int_equal(weft_join(d, NULL), -ESRCH);
	assert_int_equal(weft_cancel(d), -ESRCH);
	assert_int_equal(weft_runtime_stop(first), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* Sized structs: size 0 or sizeof; below the first version -EINVAL; a
 * larger (newer) struct only with zeros past what the library knows. The
 * statistics of every worker, into an array of the caller's length. */
static void test_sized_config_and_stats(void **state)
{
	(void)state;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.size = 4, .workers = 2}), -EINVAL);
	struct {
		weft_config_t c;
		uint64_t newer;
	} big = {.c = {.size = sizeof big, .workers = 2, .no_monitor = true}, .newer = 1};
	assert_int_equal(weft_runtime_start(&rt, &big.c), -E2BIG);
	big.newer = 0;
	assert_int_equal(weft_runtime_start(&rt, &big.c), 0);
	assert_int_equal(weft_runtime_workers(rt), 2);

	weft_worker_stats_t pw[2];
	memset(pw, 0xee, sizeof pw);
	weft_stats_t s = {.size = sizeof s, .per_worker = pw, .per_worker_len = 1};
	assert_int_equal(weft_stats(rt, &s), 0);
	assert_int_equal(s.workers, 2); /* all of them counted, */
	assert_int_equal(s.per_worker_len, 1);
	assert_ptr_equal(s.per_worker, pw);
	assert_false(pw[0].extra);		       /* one filled in, */
	assert_int_equal(pw[1].queue_len, 0xeeeeeeee); /* the rest untouched */
	s = (weft_stats_t){.per_worker_len = -1};
	assert_int_equal(weft_stats(rt, &s), -EINVAL);
	s = (weft_stats_t){.per_worker_len = 1};
	assert_int_equal(weft_stats(rt, &s), -EINVAL);
	s = (weft_stats_t){.size = 3};
	assert_int_equal(weft_stats(rt, &s), -EINVAL);
	s = (weft_stats_t){0};
	assert_int_equal(weft_stats(rt, &s), 0);
	assert_int_equal(s.workers, 2);
	assert_int_equal(weft_runtime_stop(rt), 0);
}

/* Stop requests: a wait returns once a stop has been requested (at once
 * if it was before), or once a stop has begun; it times out when neither
 * happened; requesting stops nothing. */
static void *wait_for_request(void *a)
{
	return (void *)(intptr_t)weft_runtime_wait_stop_request(a);
}

static void test_stop_request(void **state)
{
	(void)state;
	assert_int_equal(weft_runtime_request_stop(NULL), -EINVAL);
	assert_int_equal(weft_runtime_wait_stop_request(NULL), -EINVAL);
	assert_int_equal(weft_runtime_wait_stop_request_until(NULL, 0), -EINVAL);
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 1}), 0);
	/* Nothing requested: the deadline passes. */
	assert_int_equal(weft_runtime_wait_stop_request_until(rt, 0), -ETIMEDOUT);
	weft_time_t deadline = weft_deadline_in(2 * WEFT_MSEC);
	assert_int_equal(weft_runtime_wait_stop_request_until(rt, deadline), -ETIMEDOUT);
	assert_true(weft_now() >= deadline);
	/* Requested (twice): every wait returns, now and later; the runtime
	 * still runs. */
	assert_int_equal(weft_runtime_request_stop(rt), 0);
	assert_int_equal(weft_runtime_request_stop(rt), 0);
	assert_int_equal(weft_runtime_wait_stop_request(rt), 0);
	assert_int_equal(weft_runtime_wait_stop_request_until(rt, 0), 0);
	weft_task_t t;
	assert_int_equal(weft_spawn(&t, return_arg, (void *)7, &(weft_spawn_opts_t){.runtime = rt}), 0);
	void *r = NULL;
	assert_int_equal(weft_join(t, &r), 0);
	assert_ptr_equal(r, (void *)7);
	assert_int_equal(weft_runtime_stop(rt), 0);

	/* A thread waiting when another thread stops the runtime returns. */
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 1}), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, wait_for_request, rt), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
	void *res = (void *)1;
	assert_int_equal(pthread_join(th, &res), 0);
	assert_ptr_equal(res, NULL);
}

/* weft_main's runtime stopped by another thread - a watchdog that waits
 * for a stop request and stops the runtime it was given - is not stopped
 * again by weft_main (which asserted, and could have stopped a later
 * runtime that took the same struct). */
static void *watchdog(void *rt)
{
	TCHECK_EQ(weft_runtime_wait_stop_request(rt), 0);
	TCHECK_EQ(weft_runtime_stop(rt), 0);
	return NULL;
}

static void *main_stopped_from_outside(void *a)
{
	(void)a;
	weft_runtime_t *rt = weft_runtime_current();
	pthread_t th;
	TCHECK_EQ(pthread_create(&th, NULL, watchdog, rt), 0);
	TCHECK_EQ(pthread_detach(th), 0);
	TCHECK_EQ(weft_runtime_request_stop(rt), 0);
	int r = weft_sleep_until(WEFT_NEVER); /* until the watchdog's stop cancels us */
	return (void *)(intptr_t)r;
}

static void test_main_whose_runtime_another_thread_stops(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(weft_main(main_stopped_from_outside, NULL, &(weft_config_t){.workers = 1}),
				 -ECANCELED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stealing_empties_a_busy_workers_queue),
		cmocka_unit_test(test_monitor_unsticks_a_blocked_worker),
		cmocka_unit_test(test_stats_and_dump_while_running),
		cmocka_unit_test(test_shutdown_with_parked_tasks),
		cmocka_unit_test(test_stop_from_inside_is_refused),
		cmocka_unit_test(test_stop_request),
		cmocka_unit_test(test_ids_resolve_across_runtimes),
		cmocka_unit_test(test_sized_config_and_stats),
		cmocka_unit_test(test_main_whose_runtime_another_thread_stops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
