/* test_args.c - every public call of the core (weft/base.h, weft/sched.h,
 * weft/time.h) fed NULLs, invalid handles (0, stale and made-up task ids,
 * stopped runtimes, wakers of ended waits) and out-of-range values, from a
 * plain thread, a coroutine and a stackless task: each returns what its
 * header documents, and nothing crashes, hangs or asserts. */
#include "wt_kinds.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define STACK_MIN ((size_t)8192)
#define STACK_MAX ((size_t)1 << 30)

static void *quick(void *a)
{
	return a;
}

/* Parks until cancelled. */
static void *sleeper(void *a)
{
	(void)weft_sleep(WEFT_NEVER);
	return a;
}

static weft_task_t live_task(void)
{
	weft_task_t t = 0;
	TCHECK_EQ(weft_spawn(&t, sleeper, NULL, NULL), 0);
	return t;
}

/* Cancel a live_task and let it go: joined, or (a stackless caller cannot
 * wait) detached. */
static void end_task(enum wt_kind kind, weft_task_t t)
{
	TCHECK_EQ(weft_cancel(t), 0);
	TCHECK_EQ(kind == WT_STEP ? weft_detach(t) : weft_join(t, NULL), 0);
}

/* Ids that name no task: 0, a joined one, one of a runtime that never
 * existed, one without a runtime index, a slot far past the table, and a
 * generation no id has. The joined id is made by the plain-thread pass (the
 * first of wt_each_kind) and kept for the others, which run in the same
 * runtime. */
#define NBAD_IDS 6
static weft_task_t joined_id;

static void bad_ids(enum wt_kind kind, weft_task_t ids[NBAD_IDS])
{
	if (kind == WT_THREAD) {
		TCHECK_EQ(weft_spawn(&joined_id, quick, NULL, NULL), 0);
		TCHECK_EQ(weft_join(joined_id, NULL), 0);
	}
	ids[0] = 0;
	ids[1] = joined_id;
	ids[2] = UINT64_MAX;
	ids[3] = (weft_task_t)1 << 30;
	ids[4] = joined_id | 0xffffffffu;
	ids[5] = joined_id & ~((weft_task_t)0xffffff << 32);
}

/* ------------------------------------------------------------ errors, time */

static void test_error_texts_of_any_int(void **state)
{
	(void)state;
	static const int odd[] = {1, 4096, INT_MAX, INT_MIN, -4096, -4095, -100000};
	for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
		assert_string_equal(weft_strerror(odd[i]), "Unknown error");
		assert_string_equal(weft_err_name(odd[i]), "UNKNOWN");
	}
	assert_true(weft_version() == (WEFT_VERSION_MAJOR << 16 | WEFT_VERSION_MINOR << 8 | WEFT_VERSION_PATCH));
	assert_non_null(weft_version_string());
	assert_string_equal(weft_strerror(0), "Success");
	assert_string_equal(weft_err_name(0), "OK");
	assert_string_equal(weft_err_name(-EPIPE), "EPIPE");
}

static void test_deadline_in_saturates(void **state)
{
	(void)state;
	static const weft_time_t past[] = {INT64_MIN, -1, 0};
	for (size_t i = 0; i < sizeof past / sizeof past[0]; i++) {
		weft_time_t before = weft_now();
		weft_time_t d = weft_deadline_in(past[i]);
		assert_true(d >= before && d <= weft_now());
	}
	assert_true(weft_deadline_in(INT64_MAX) == WEFT_NEVER);
	assert_true(weft_deadline_in(WEFT_NEVER - 1) == WEFT_NEVER);
	assert_true(weft_now() > 0);
}

/* ------------------------------------------------------------ runtime */

static void test_runtime_start_refuses_bad_config(void **state)
{
	(void)state;
	weft_runtime_t *rt = (weft_runtime_t *)&rt;
	assert_int_equal(weft_runtime_start(NULL, NULL), -EINVAL);
	static const int workers[] = {-1, 257, INT_MIN, INT_MAX};
	for (size_t i = 0; i < sizeof workers / sizeof workers[0]; i++) {
		assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = workers[i]}), -EINVAL);
		assert_null(rt);
	}
	static const size_t stacks[] = {1, STACK_MIN - 1, STACK_MAX + 1, SIZE_MAX};
	for (size_t i = 0; i < sizeof stacks / sizeof stacks[0]; i++)
		assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.stack_size = stacks[i]}), -EINVAL);
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.size = 1}), -EINVAL);
	/* Below the first version's size (which ends where the simulation's
	 * fields begin). */
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.size = offsetof(weft_config_t, sim) - 1}), -EINVAL);
	/* A caller of the first version (no simulation fields) is served. */
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.size = offsetof(weft_config_t, sim), .workers = 1}),
			 0);
	assert_false(weft_runtime_is_sim(rt));
	assert_int_equal(weft_runtime_stop(rt), 0);
	/* A newer caller's larger struct: refused only if it sets what this
	 * library does not know. */
	struct {
		weft_config_t c;
		uint64_t later;
	} big = {.c = {.size = sizeof big, .workers = 1, .no_monitor = true}, .later = 1};
	assert_int_equal(weft_runtime_start(&rt, &big.c), -E2BIG);
	assert_null(rt);
	big.later = 0;
	assert_int_equal(weft_runtime_start(&rt, &big.c), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
}

static void stop_body(enum wt_kind kind, void *gone)
{
	TCHECK_EQ(weft_runtime_stop(NULL), -EINVAL);
	TCHECK_EQ(weft_runtime_stop(gone), -EINVAL);
	if (kind != WT_THREAD)
		TCHECK_EQ(weft_runtime_stop(weft_runtime_current()), -EDEADLK);
}

static void test_runtime_stop_refuses_bad_handles(void **state)
{
	(void)state;
	wt_each_kind_stopped(stop_body, NULL);
}

static void wait_body(enum wt_kind kind, void *gone)
{
	TCHECK_EQ(weft_runtime_wait_stop_request(NULL), -EINVAL);
	TCHECK_EQ(weft_runtime_wait_stop_request_until(NULL, WEFT_NEVER), -EINVAL);
	/* A stop that has begun counts as a request: a stopped runtime's
	 * waiters return at once. */
	TCHECK_EQ(weft_runtime_wait_stop_request(gone), 0);
	TCHECK_EQ(weft_runtime_wait_stop_request_until(gone, INT64_MIN), 0);
	if (kind != WT_THREAD) {
		TCHECK_EQ(weft_runtime_wait_stop_request(weft_runtime_current()), -EDEADLK);
		TCHECK_EQ(weft_runtime_wait_stop_request_until(weft_runtime_current(), INT64_MAX), -EDEADLK);
	}
}

static void test_runtime_wait_stop_request_refuses_bad_handles(void **state)
{
	(void)state;
	wt_each_kind_stopped(wait_body, NULL);
}

static void *stop_later(void *rt)
{
	return (void *)(intptr_t)weft_runtime_stop(rt);
}

/* A waiter must not wait for a stop request that can no longer come. */
static void test_runtime_wait_stop_request_ends_when_the_runtime_stops(void **state)
{
	(void)state;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 1, .no_monitor = true}), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, stop_later, rt), 0);
	/* Whether it stops before or during the wait. */
	assert_int_equal(weft_runtime_wait_stop_request(rt), 0);
	void *s;
	assert_int_equal(pthread_join(th, &s), 0);
	assert_int_equal((intptr_t)s, 0);
	assert_int_equal(weft_runtime_wait_stop_request(rt), 0);
}

static void shutdown_body(enum wt_kind kind, void *gone)
{
	(void)kind;
	TCHECK_EQ(weft_runtime_request_stop(NULL), -EINVAL);
	TCHECK_EQ(weft_runtime_request_stop(gone), 0); /* harmless */
	TCHECK_EQ(weft_runtime_wait_stop_request(gone), 0);
}

static void test_runtime_request_stop_ignores_bad_handles(void **state)
{
	(void)state;
	wt_each_kind_stopped(shutdown_body, NULL);
}

static void workers_body(enum wt_kind kind, void *gone)
{
	(void)kind;
	TCHECK_EQ(weft_runtime_workers(NULL), -EINVAL);
	TCHECK_EQ(weft_runtime_workers(gone), -ESHUTDOWN);
	TCHECK_EQ(weft_runtime_workers(weft_runtime_current()), 2);
}

static void test_runtime_workers_of_bad_handles(void **state)
{
	(void)state;
	wt_each_kind_stopped(workers_body, NULL);
}

static void *main_fn(void *a)
{
	return a;
}

static void main_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	TCHECK_EQ(weft_main(NULL, NULL, NULL), -EINVAL);
	int want = kind == WT_STEP ? -EPERM : -EINVAL; /* a stackless task cannot wait for main */
	TCHECK_EQ(weft_main(main_fn, NULL, &(weft_config_t){.workers = -1}), want);
	TCHECK_EQ(weft_main(main_fn, NULL, &(weft_config_t){.size = 1}), want);
	if (kind == WT_STEP)
		TCHECK_EQ(weft_main(main_fn, (void *)3, &(weft_config_t){.workers = 1}), -EPERM);
}

static void test_main_refuses_bad_input(void **state)
{
	(void)state;
	wt_each_kind(main_body, NULL);
	assert_int_equal(weft_main(main_fn, (void *)3, &(weft_config_t){.workers = 1, .size = 1}), -EINVAL);
}

static int nop_poll(void *ctx, weft_time_t timeout)
{
	(void)ctx, (void)timeout;
	return -ENOSYS; /* the workers use their futex */
}

static void nop_wake(void *ctx)
{
	(void)ctx;
}

static int ext_destroyed;
static void ext_destroy(void *ctx)
{
	(void)ctx;
	ext_destroyed++;
}

static const weft_poller_ops_t nop_ops = {nop_poll, nop_wake, NULL};
static const weft_runtime_ext_t key_a = {"args-a", ext_destroy, NULL};
static const weft_runtime_ext_t key_b = {"args-b", NULL, NULL};
static int ext_ctx, poller_ctx;

static void ext_prep(weft_runtime_t *gone)
{
	assert_int_equal(weft_runtime_attach(gone, &key_a, &ext_ctx), 0);
	assert_int_equal(weft_runtime_set_poller(gone, &nop_ops, &poller_ctx), 0);
	assert_ptr_equal(weft_runtime_attached(gone, &key_a), &ext_ctx);
	assert_ptr_equal(weft_runtime_poller(gone, &nop_ops), &poller_ctx);
	ext_destroyed = 0;
}

static void ext_body(enum wt_kind kind, void *gone)
{
	(void)kind;
	weft_runtime_t *rt = weft_runtime_current();
	TCHECK_EQ(weft_runtime_attach(NULL, &key_b, &ext_ctx), -EINVAL);
	TCHECK_EQ(weft_runtime_attach(rt, NULL, &ext_ctx), -EINVAL);
	TCHECK(weft_runtime_attached(NULL, &key_b) == NULL);
	TCHECK(weft_runtime_attached(rt, NULL) == NULL);
	TCHECK_EQ(weft_runtime_set_poller(NULL, &nop_ops, NULL), -EINVAL);
	TCHECK_EQ(weft_runtime_set_poller(rt, NULL, NULL), -EINVAL);
	TCHECK_EQ(weft_runtime_set_poller(rt, &(weft_poller_ops_t){NULL, nop_wake, NULL}, NULL), -EINVAL);
	TCHECK_EQ(weft_runtime_set_poller(rt, &(weft_poller_ops_t){nop_poll, NULL, NULL}, NULL), -EINVAL);
	TCHECK(weft_runtime_poller(NULL, &nop_ops) == NULL);
	TCHECK(weft_runtime_poller(rt, NULL) == NULL);
	/* A stopped runtime: its extensions and poller are gone (destroyed at
	 * stop), and it takes no new ones. */
	TCHECK_EQ(ext_destroyed, 1);
	TCHECK(weft_runtime_attached(gone, &key_a) == NULL);
	TCHECK(weft_runtime_poller(gone, &nop_ops) == NULL);
	TCHECK_EQ(weft_runtime_attach(gone, &key_b, &ext_ctx), -ESHUTDOWN);
	TCHECK_EQ(weft_runtime_set_poller(gone, &nop_ops, &poller_ctx), -ESHUTDOWN);
}

static void test_runtime_extensions_refuse_bad_input(void **state)
{
	(void)state;
	wt_each_kind_stopped(ext_body, ext_prep);
}

/* ------------------------------------------------------------ spawning */

static weft_step_t done_step(void *s, void **r)
{
	*r = s;
	return WEFT_STEP_DONE;
}

static void spawn_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_task_t t = 77;
	TCHECK_EQ(weft_spawn(&t, NULL, NULL, NULL), -EINVAL);
	TCHECK_EQ(t, 0);
	t = 77;
	TCHECK_EQ(weft_spawn_step(&t, NULL, NULL, NULL), -EINVAL);
	TCHECK_EQ(t, 0);
	TCHECK_EQ(weft_go(NULL, NULL), -EINVAL);
	static const size_t stacks[] = {1, STACK_MIN - 1, STACK_MAX + 1, SIZE_MAX};
	for (size_t i = 0; i < sizeof stacks / sizeof stacks[0]; i++) {
		t = 77;
		TCHECK_EQ(weft_spawn(&t, quick, NULL, &(weft_spawn_opts_t){.stack_size = stacks[i]}), -EINVAL);
		TCHECK_EQ(t, 0);
	}
	/* A stackless task has no stack: the size is not looked at. */
	TCHECK_EQ(weft_spawn_step(NULL, done_step, NULL, &(weft_spawn_opts_t){.stack_size = 1, .detached = true}), 0);
}

static void test_spawn_refuses_bad_input(void **state)
{
	(void)state;
	wt_each_kind(spawn_body, NULL);
}

static void spawn_gone_body(enum wt_kind kind, void *gone)
{
	(void)kind;
	weft_spawn_opts_t o = {.runtime = gone};
	weft_task_t t = 77;
	TCHECK_EQ(weft_spawn(&t, quick, NULL, &o), -ESHUTDOWN);
	TCHECK_EQ(t, 0);
	TCHECK_EQ(weft_spawn_step(&t, done_step, NULL, &o), -ESHUTDOWN);
	TCHECK_EQ(weft_spawn(NULL, quick, NULL, &o), -ESHUTDOWN);
}

static void test_spawn_into_a_stopped_runtime(void **state)
{
	(void)state;
	wt_each_kind_stopped(spawn_gone_body, NULL);
}

static void no_runtime_spawn_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_task_t t = 77;
	TCHECK_EQ(weft_spawn(&t, quick, NULL, NULL), -ESHUTDOWN);
	TCHECK_EQ(t, 0);
	TCHECK_EQ(weft_spawn_step(&t, done_step, NULL, NULL), -ESHUTDOWN);
	TCHECK_EQ(weft_go(quick, NULL), -ESHUTDOWN);
}

static void test_spawn_without_a_runtime(void **state)
{
	(void)state;
	wt_no_runtime(no_runtime_spawn_body, NULL);
}

/* ------------------------------------------------------------ join, detach, cancel */

static void join_ids_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	weft_task_t ids[NBAD_IDS];
	bad_ids(kind, ids);
	for (int i = 0; i < NBAD_IDS; i++) {
		void *r;
		TCHECK_EQ(weft_join(ids[i], &r), -ESRCH);
		TCHECK_EQ(weft_join_until(ids[i], NULL, weft_deadline_in(WEFT_SEC)), -ESRCH);
		TCHECK_EQ(weft_join_until(ids[i], NULL, INT64_MIN), -ESRCH);
	}
	if (kind != WT_THREAD)
		TCHECK_EQ(weft_join(weft_self(), NULL), -EINVAL);
}

static void test_join_refuses_bad_ids(void **state)
{
	(void)state;
	wt_each_kind(join_ids_body, NULL);
}

static void join_detached_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_task_t t;
	TCHECK_EQ(weft_spawn(&t, sleeper, NULL, &(weft_spawn_opts_t){.detached = true}), 0);
	TCHECK_EQ(weft_join(t, NULL), -EINVAL);
	TCHECK_EQ(weft_join_until(t, NULL, INT64_MIN), -EINVAL);
	TCHECK_EQ(weft_cancel(t), 0);
}

static void test_join_refuses_detached_tasks(void **state)
{
	(void)state;
	wt_each_kind(join_detached_body, NULL);
}

static void join_past_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	weft_task_t t = live_task();
	static const weft_time_t past[] = {INT64_MIN, -1, 0, 1};
	for (size_t i = 0; i < sizeof past / sizeof past[0]; i++)
		TCHECK_EQ(weft_join_until(t, NULL, past[i]), -ETIMEDOUT);
	end_task(kind, t);
}

/* A deadline already past polls, in every kind of caller. */
static void test_join_until_a_past_deadline_polls(void **state)
{
	(void)state;
	wt_each_kind(join_past_body, NULL);
}

static weft_task_t finished_task;

static void join_step_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	if (kind == WT_THREAD) {
		/* Finished but not joined: cancelling it says -ESRCH. */
		TCHECK_EQ(weft_spawn(&finished_task, quick, (void *)5, NULL), 0);
		WT_WAIT_UNTIL(weft_cancel(finished_task) == -ESRCH);
		return;
	}
	if (kind != WT_STEP)
		return;
	/* Joining a finished task does not wait: a stackless task may. */
	void *r = NULL;
	TCHECK_EQ(weft_join(finished_task, &r), 0);
	TCHECK_EQ((intptr_t)r, 5);
	TCHECK_EQ(weft_join(finished_task, NULL), -ESRCH);
	weft_task_t t = live_task();
	TCHECK_EQ(weft_join(t, NULL), -EPERM); /* it would have to wait */
	end_task(kind, t);
}

static void test_join_from_a_stackless_task(void **state)
{
	(void)state;
	wt_each_kind(join_step_body, NULL);
}

static void detach_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	weft_task_t ids[NBAD_IDS];
	bad_ids(kind, ids);
	for (int i = 0; i < NBAD_IDS; i++)
		TCHECK_EQ(weft_detach(ids[i]), -ESRCH);
	weft_task_t t = live_task();
	TCHECK_EQ(weft_detach(t), 0);
	TCHECK_EQ(weft_detach(t), -EINVAL);
	TCHECK_EQ(weft_cancel(t), 0);
}

static void test_detach_refuses_bad_ids(void **state)
{
	(void)state;
	wt_each_kind(detach_body, NULL);
}

static void cancel_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	weft_task_t ids[NBAD_IDS];
	bad_ids(kind, ids);
	for (int i = 0; i < NBAD_IDS; i++)
		TCHECK_EQ(weft_cancel(ids[i]), -ESRCH);
}

static void test_cancel_refuses_bad_ids(void **state)
{
	(void)state;
	wt_each_kind(cancel_body, NULL);
}

static weft_task_t gone_id;

static void ids_gone_body(enum wt_kind kind, void *gone)
{
	(void)kind, (void)gone;
	/* The tasks of a stopped runtime are gone with it. */
	TCHECK_EQ(weft_join(gone_id, NULL), -ESRCH);
	TCHECK_EQ(weft_detach(gone_id), -ESRCH);
	TCHECK_EQ(weft_cancel(gone_id), -ESRCH);
	char name[8];
	TCHECK_EQ(weft_task_name(gone_id, name, sizeof name), -ESRCH);
}

static void gone_task(weft_runtime_t *gone)
{
	/* A task of the runtime about to stop, left unjoined. */
	assert_int_equal(weft_spawn(&gone_id, quick, NULL, &(weft_spawn_opts_t){.runtime = gone}), 0);
}

static void test_task_ids_of_a_stopped_runtime(void **state)
{
	(void)state;
	wt_each_kind_stopped(ids_gone_body, gone_task);
}

/* ------------------------------------------------------------ the calling task */

static void self_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	TCHECK_EQ(weft_yield(), kind == WT_STEP ? -EPERM : 0);
	if (kind != WT_CORO)
		TCHECK_EQ(weft_exit((void *)1), -EPERM);
	TCHECK(weft_can_park() == (kind != WT_STEP));
	TCHECK((weft_self() == 0) == (kind == WT_THREAD));
	TCHECK(!weft_cancelled());
	int wi = weft_worker_index();
	TCHECK(kind == WT_THREAD ? wi == -1 : wi >= 0);
	if (kind == WT_THREAD)
		TCHECK(weft_spin_worthwhile());
	else
		(void)weft_spin_worthwhile();
}

static void test_calls_on_the_calling_task(void **state)
{
	(void)state;
	wt_each_kind(self_body, NULL);
}

static void name_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	char buf[32];
	weft_task_t ids[NBAD_IDS];
	bad_ids(kind, ids);
	weft_task_t me = weft_self();
	TCHECK_EQ(weft_task_name(me ? me : ids[1], NULL, sizeof buf), -EINVAL);
	TCHECK_EQ(weft_task_name(me ? me : ids[1], buf, 0), -EINVAL);
	for (int i = 0; i < NBAD_IDS; i++)
		TCHECK_EQ(weft_task_name(ids[i], buf, sizeof buf), -ESRCH);
	if (kind == WT_THREAD) {
		TCHECK_EQ(weft_set_name("x"), -EPERM);
		TCHECK_EQ(weft_set_name(NULL), -EPERM);
		return;
	}
	TCHECK_EQ(weft_set_name(NULL), -EINVAL);
	TCHECK_EQ(weft_task_name(me, buf, sizeof buf), 0);
	TCHECK(strcmp(buf, "args") == 0);
	TCHECK_EQ(weft_set_name("a name longer than fifteen bytes"), 0);
	TCHECK_EQ(weft_task_name(me, buf, sizeof buf), 0);
	TCHECK_EQ(strlen(buf), 15);
	TCHECK_EQ(weft_task_name(me, buf, 1), 0);
	TCHECK_EQ(buf[0], 0);
}

static void test_task_names_refuse_bad_input(void **state)
{
	(void)state;
	wt_each_kind(name_body, NULL);
}

/* ------------------------------------------------------------ task-local storage */

static void tls_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	/* No key is in use: none of these names one. */
	static const weft_tls_key_t bad[] = {-1, INT_MIN, INT_MAX, 64, 0, 1 << 20};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		TCHECK_EQ(weft_tls_key_delete(bad[i]), -EINVAL);
		TCHECK_EQ(weft_tls_set(bad[i], &joined_id), kind == WT_THREAD ? -EPERM : -EINVAL);
		TCHECK(weft_tls_get(bad[i]) == NULL);
	}
	TCHECK_EQ(weft_tls_key_create(NULL, NULL), -EINVAL);
	weft_tls_key_t k;
	TCHECK_EQ(weft_tls_key_create(&k, NULL), 0);
	if (kind != WT_THREAD)
		TCHECK_EQ(weft_tls_set(k, &k), 0);
	TCHECK_EQ(weft_tls_key_delete(k), 0);
	/* Deleted: the handle is stale. */
	TCHECK_EQ(weft_tls_key_delete(k), -EINVAL);
	TCHECK_EQ(weft_tls_set(k, &k), kind == WT_THREAD ? -EPERM : -EINVAL);
	TCHECK(weft_tls_get(k) == NULL);
}

static void test_tls_refuses_bad_keys(void **state)
{
	(void)state;
	wt_each_kind(tls_body, NULL);
}

static void tls_full_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_tls_key_t keys[64];
	for (int i = 0; i < 64; i++)
		TCHECK_EQ(weft_tls_key_create(&keys[i], NULL), 0);
	weft_tls_key_t k = 12345;
	TCHECK_EQ(weft_tls_key_create(&k, NULL), -EAGAIN);
	TCHECK_EQ(k, 12345);
	for (int i = 0; i < 64; i++)
		TCHECK_EQ(weft_tls_key_delete(keys[i]), 0);
}

static void test_tls_keys_run_out(void **state)
{
	(void)state;
	wt_each_kind(tls_full_body, NULL);
}

/* ------------------------------------------------------------ task groups */

static void group_null_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	TCHECK_EQ(weft_group_create(NULL, false), -EINVAL);
	TCHECK_EQ(weft_group_create(NULL, true), -EINVAL);
	TCHECK_EQ(weft_group_wait(NULL), -EINVAL);
	TCHECK_EQ(weft_group_wait_until(NULL, INT64_MIN), -EINVAL);
	TCHECK_EQ(weft_group_wait_until(NULL, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_group_cancel(NULL), -EINVAL);
	TCHECK_EQ(weft_group_destroy(NULL), -EINVAL);
}

static void test_group_calls_refuse_null(void **state)
{
	(void)state;
	wt_each_kind(group_null_body, NULL);
}

/* Waits for the group's members and destroys it (for a stackless body,
 * which cannot wait); the test stops the runtime only once it is done. */
static _Atomic int group_reapers;

static void *group_reaper(void *g)
{
	TCHECK_EQ(weft_group_wait(g), 0);
	TCHECK_EQ(weft_group_destroy(g), 0);
	atomic_fetch_sub(&group_reapers, 1);
	return NULL;
}

static void group_busy_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	weft_group_t *g;
	TCHECK_EQ(weft_group_create(&g, false), 0);
	TCHECK_EQ(weft_spawn(NULL, sleeper, NULL, &(weft_spawn_opts_t){.group = g}), 0);
	TCHECK_EQ(weft_group_destroy(g), -EBUSY);
	static const weft_time_t past[] = {INT64_MIN, -1, 0};
	for (size_t i = 0; i < sizeof past / sizeof past[0]; i++)
		TCHECK_EQ(weft_group_wait_until(g, past[i]), -ETIMEDOUT);
	if (kind == WT_STEP)
		TCHECK_EQ(weft_group_wait(g), -EPERM); /* it would have to wait */
	TCHECK_EQ(weft_group_cancel(g), 0);
	if (kind == WT_STEP) {
		atomic_fetch_add(&group_reapers, 1);
		TCHECK_EQ(weft_go(group_reaper, g), 0);
		return;
	}
	TCHECK_EQ(weft_group_wait(g), 0);
	TCHECK_EQ(weft_group_destroy(g), 0);
}

static void test_group_with_running_members(void **state)
{
	(void)state;
	/* wt_each_kind, but the runtime stops only after the stackless body's
	 * reaper is done (a stop would cancel its wait). It ends once the
	 * cancelled member has. */
	atomic_store(&tcheck_failures, 0);
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	wt_kinds_in(rt, group_busy_body, NULL);
	while (atomic_load(&group_reapers) != 0)
		sched_yield();
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

static void group_empty_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_group_t *g;
	TCHECK_EQ(weft_group_create(&g, true), 0);
	/* Nothing to wait for: no kind of caller has to wait. */
	TCHECK_EQ(weft_group_wait(g), 0);
	TCHECK_EQ(weft_group_wait_until(g, INT64_MIN), 0);
	TCHECK_EQ(weft_group_cancel(g), 0);
	TCHECK_EQ(weft_group_destroy(g), 0);
}

static void test_group_without_members(void **state)
{
	(void)state;
	wt_each_kind(group_empty_body, NULL);
}

/* ------------------------------------------------------------ parking */

static uint64_t not_a_parker;

static void park_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	/* A waker naming nobody, and one naming another parker. */
	TCHECK_EQ(weft_park((weft_waker_t){0}, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_park((weft_waker_t){.parker = &not_a_parker, .epoch = 1}, WEFT_NEVER), -EINVAL);
	weft_waker_t w1 = weft_park_prepare();
	TCHECK(weft_unpark(w1, 0));
	if (kind == WT_STEP) {
		TCHECK_EQ(weft_park_result(), 0);
		TCHECK_EQ(weft_park(w1, WEFT_NEVER), -EPERM);
		return;
	}
	TCHECK_EQ(weft_park(w1, WEFT_NEVER), 0);
	/* w1's wait is over and another is open: w1 is not the current wait. */
	weft_waker_t w2 = weft_park_prepare();
	TCHECK_EQ(weft_park(w1, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_park(w1, INT64_MIN), -EINVAL);
	/* The current wait's waker with its kind bit flipped (what a waker
	 * carries besides the parker is internal, but must not be trusted). */
	weft_waker_t odd = w2;
	odd.epoch ^= (uint64_t)1 << 63;
	TCHECK_EQ(weft_park(odd, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_park(w2, INT64_MIN), -ETIMEDOUT);
}

static void test_park_refuses_wakers_of_other_waits(void **state)
{
	(void)state;
	wt_each_kind(park_body, NULL);
}

static void park_deadline_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	weft_waker_t w = weft_park_prepare();
	if (kind != WT_STEP) {
		/* Only a stackless task arms its deadline this way. */
		TCHECK_EQ(weft_park_deadline(w, weft_deadline_in(WEFT_SEC)), -EPERM);
		TCHECK(weft_unpark(w, 0));
		TCHECK_EQ(weft_park(w, WEFT_NEVER), 0);
		return;
	}
	TCHECK_EQ(weft_park_deadline((weft_waker_t){0}, weft_deadline_in(WEFT_SEC)), -EINVAL);
	TCHECK_EQ(weft_park_deadline((weft_waker_t){.parker = &not_a_parker, .epoch = 1}, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_park_deadline(w, WEFT_NEVER), 0);
	TCHECK_EQ(weft_park_deadline(w, weft_deadline_in(3600 * WEFT_SEC)), 0);
	TCHECK_EQ(weft_park_deadline(w, weft_deadline_in(3600 * WEFT_SEC)), 0); /* replaces the first */
	TCHECK(weft_unpark(w, 0));
	/* An ended wait's waker: not the current wait once another opens. */
	weft_waker_t w2 = weft_park_prepare();
	TCHECK_EQ(weft_park_deadline(w, weft_deadline_in(WEFT_SEC)), -EINVAL);
	TCHECK_EQ(weft_park_deadline(w2, INT64_MIN), 0); /* past: ends the wait at once */
	TCHECK_EQ(weft_park_result(), -ETIMEDOUT);
}

static void test_park_deadline_refuses_bad_calls(void **state)
{
	(void)state;
	wt_each_kind(park_deadline_body, NULL);
}

/* The result of the caller's current wait, once it has ended. */
static int wait_result(enum wt_kind kind, weft_waker_t w)
{
	return kind == WT_STEP ? weft_park_result() : weft_park(w, WEFT_NEVER);
}

static void unpark_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	weft_waker_t none = {0};
	TCHECK(!weft_unpark(none, 0));
	TCHECK(!weft_unpark_claim(none));
	weft_unpark_finish(none, 0);
	/* Wakers of an ended wait do nothing. */
	weft_waker_t w = weft_park_prepare();
	TCHECK(weft_unpark(w, 0));
	TCHECK_EQ(wait_result(kind, w), 0);
	TCHECK(!weft_unpark(w, -ETIMEDOUT));
	TCHECK(!weft_unpark_claim(w));
	weft_unpark_finish(w, -ECANCELED); /* not claimed: nothing happens */
	TCHECK_EQ(wait_result(kind, w), 0);
	/* A wait that is open, not claimed: a finish leaves it alone. */
	w = weft_park_prepare();
	weft_unpark_finish(w, 0);
	TCHECK(weft_unpark(w, -ETIMEDOUT));
	TCHECK_EQ(wait_result(kind, w), -ETIMEDOUT);
	/* A reason that is not 0 or a negative errno a wait can carry. */
	static const int odd[] = {1, INT_MAX, INT_MIN, -256, -4096};
	for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
		w = i & 1 ? weft_park_prepare_uncancellable() : weft_park_prepare();
		TCHECK(weft_unpark(w, odd[i]));
		TCHECK_EQ(wait_result(kind, w), -EINVAL);
		w = weft_park_prepare();
		TCHECK(weft_unpark_claim(w));
		weft_unpark_finish(w, odd[i]);
		TCHECK_EQ(wait_result(kind, w), -EINVAL);
	}
}

static void test_unpark_of_bad_wakers_and_reasons(void **state)
{
	(void)state;
	wt_each_kind(unpark_body, NULL);
}

static void waitq_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_waitq_init(NULL);
	weft_waitq_lock(NULL);
	weft_waitq_unlock(NULL);
	weft_waitq_node_t n = {0};
	weft_waitq_push(NULL, &n);
	TCHECK(!n.queued);
	TCHECK(weft_waitq_pop(NULL) == NULL);
	TCHECK(!weft_waitq_remove(NULL, &n));
	TCHECK_EQ(weft_waitq_wake_one(NULL, 0), -EINVAL);
	TCHECK_EQ(weft_waitq_wake_all(NULL, 0), -EINVAL);
	weft_waitq_t q;
	weft_waitq_init(&q);
	weft_waitq_lock(&q);
	weft_waitq_push(&q, NULL);
	TCHECK_EQ(q.len, 0);
	weft_waitq_unlock(&q);
	TCHECK(!weft_waitq_remove(&q, NULL));
	TCHECK(!weft_waitq_remove(&q, &n)); /* never queued */
	TCHECK_EQ(weft_waitq_wake_one(&q, 0), 0);
	TCHECK_EQ(weft_waitq_wake_all(&q, 0), 0);
}

static void test_waitq_calls_refuse_null(void **state)
{
	(void)state;
	wt_each_kind(waitq_body, NULL);
}

/* ------------------------------------------------------------ sleeping */

static void sleep_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	static const weft_time_t past[] = {INT64_MIN, -1, 0};
	for (size_t i = 0; i < sizeof past / sizeof past[0]; i++) {
		/* Nothing to wait for: even a stackless task may. */
		TCHECK_EQ(weft_sleep(past[i]), 0);
		TCHECK_EQ(weft_sleep_until(past[i]), 0);
	}
	if (kind == WT_STEP) {
		TCHECK_EQ(weft_sleep(WEFT_SEC), -EPERM);
		TCHECK_EQ(weft_sleep_until(WEFT_NEVER), -EPERM);
	}
}

static void test_sleep_with_past_deadlines(void **state)
{
	(void)state;
	wt_each_kind(sleep_body, NULL);
}

/* ------------------------------------------------------------ timers (weft/time.h) */

static void fire_count(void *a)
{
	atomic_fetch_add((_Atomic int *)a, 1);
}

static void timer_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	_Atomic int n = 0;
	weft_timer_t *t = (weft_timer_t *)&t;
	TCHECK_EQ(weft_timer_create(NULL, fire_count, &n), -EINVAL);
	TCHECK_EQ(weft_timer_create(&t, NULL, &n), -EINVAL);
	TCHECK(t == NULL); /* set to NULL on every failure */
	TCHECK_EQ(weft_timer_start(NULL, 0, 0), -EINVAL);
	TCHECK_EQ(weft_timer_stop(NULL), -EINVAL);
	TCHECK_EQ(weft_timer_destroy(NULL), -EINVAL);
	TCHECK_EQ(weft_timer_create(&t, fire_count, &n), 0);
	static const weft_time_t periods[] = {-1, INT64_MIN};
	for (size_t i = 0; i < sizeof periods / sizeof periods[0]; i++)
		TCHECK_EQ(weft_timer_start(t, weft_now(), periods[i]), -EINVAL);
	/* Stopping a timer never started does nothing. */
	TCHECK_EQ(weft_timer_stop(t), 0);
	/* A timer never due is started all the same. */
	TCHECK_EQ(weft_timer_start(t, WEFT_NEVER, 0), 0);
	TCHECK_EQ(weft_timer_stop(t), 0);
	TCHECK_EQ(weft_timer_destroy(t), 0);
	TCHECK_EQ(atomic_load(&n), 0);
}

static void test_timer_calls_refuse_bad_input(void **state)
{
	(void)state;
	wt_each_kind(timer_body, NULL);
}

static void no_runtime_timer_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_timer_t *t = (weft_timer_t *)&t;
	int n = 0;
	TCHECK_EQ(weft_timer_create(&t, fire_count, &n), -ESHUTDOWN);
	TCHECK(t == NULL);
}

static void test_timer_without_a_runtime(void **state)
{
	(void)state;
	wt_no_runtime(no_runtime_timer_body, NULL);
}

static void timer_past_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	if (kind == WT_STEP)
		return; /* it would have to wait for the fires */
	/* Tickers whose first deadline is long past (the next ones are the
	 * period boundaries after now) fire, again and again. */
	static const weft_time_t firsts[] = {INT64_MIN, -1, 0};
	static const weft_time_t periods[] = {WEFT_MSEC, INT64_MAX};
	for (size_t i = 0; i < sizeof firsts / sizeof firsts[0]; i++) {
		for (size_t j = 0; j < sizeof periods / sizeof periods[0]; j++) {
			_Atomic int n = 0;
			weft_timer_t *t;
			TCHECK_EQ(weft_timer_create(&t, fire_count, &n), 0);
			TCHECK_EQ(weft_timer_start(t, firsts[i], periods[j]), 0);
			WT_WAIT_UNTIL(atomic_load(&n) >= (periods[j] == WEFT_MSEC ? 3 : 1));
			TCHECK_EQ(weft_timer_destroy(t), 0);
		}
	}
}

static void test_timer_with_a_first_deadline_long_past(void **state)
{
	(void)state;
	wt_each_kind(timer_past_body, NULL);
}

/* ------------------------------------------------------------ statistics */

static void stats_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_runtime_t *rt = weft_runtime_current();
	weft_worker_stats_t pw[4];
	TCHECK_EQ(weft_stats(rt, NULL), -EINVAL);
	TCHECK_EQ(weft_stats(NULL, NULL), -EINVAL);
	TCHECK_EQ(weft_stats(rt, &(weft_stats_t){.per_worker_len = -1, .per_worker = pw}), -EINVAL);
	TCHECK_EQ(weft_stats(rt, &(weft_stats_t){.per_worker_len = INT_MIN, .per_worker = pw}), -EINVAL);
	TCHECK_EQ(weft_stats(rt, &(weft_stats_t){.per_worker_len = 1}), -EINVAL);
	TCHECK_EQ(weft_stats(rt, &(weft_stats_t){.size = 1}), -EINVAL);
	TCHECK_EQ(weft_stats(rt, &(weft_stats_t){.size = sizeof(weft_stats_t) - 1}), -EINVAL);
	struct {
		weft_stats_t s;
		uint64_t later;
	} big = {.s = {.size = sizeof big}, .later = 1};
	TCHECK_EQ(weft_stats(rt, &big.s), -E2BIG);
	big.later = 0;
	TCHECK_EQ(weft_stats(rt, &big.s), 0);
	TCHECK(big.s.workers >= 2); /* (the monitor may add workers) */
	weft_stats_t s = {.size = sizeof s, .per_worker = pw, .per_worker_len = 1};
	TCHECK_EQ(weft_stats(NULL, &s), 0);
	TCHECK(s.workers >= 2);
	TCHECK(s.per_worker == pw && s.per_worker_len == 1);
}

static void test_stats_refuse_bad_input(void **state)
{
	(void)state;
	wt_each_kind(stats_body, NULL);
}

static void print_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_runtime_t *rt = weft_runtime_current();
	int ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
	TCHECK(ro >= 0);
	static const int bad[] = {-1, INT_MIN, 1 << 30, INT_MAX};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		TCHECK_EQ(weft_stats_print(rt, bad[i]), -EBADF);
		TCHECK_EQ(weft_task_dump(rt, bad[i]), -EBADF);
	}
	TCHECK_EQ(weft_stats_print(rt, ro), -EBADF);
	TCHECK_EQ(weft_task_dump(rt, ro), -EBADF);
	close(ro);
}

static void test_stats_print_refuses_bad_descriptors(void **state)
{
	(void)state;
	wt_each_kind(print_body, NULL);
}

static void stats_gone_body(enum wt_kind kind, void *gone)
{
	(void)kind;
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	TCHECK(devnull >= 0);
	TCHECK_EQ(weft_stats(gone, &(weft_stats_t){0}), -ESHUTDOWN);
	TCHECK_EQ(weft_stats_print(gone, devnull), -ESHUTDOWN);
	TCHECK_EQ(weft_task_dump(gone, devnull), -ESHUTDOWN);
	close(devnull);
}

static void test_stats_of_a_stopped_runtime(void **state)
{
	(void)state;
	wt_each_kind_stopped(stats_gone_body, NULL);
}

static void no_runtime_stats_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	TCHECK(devnull >= 0);
	TCHECK_EQ(weft_stats(NULL, &(weft_stats_t){0}), -ESHUTDOWN);
	TCHECK_EQ(weft_stats_print(NULL, devnull), -ESHUTDOWN);
	TCHECK_EQ(weft_task_dump(NULL, devnull), -ESHUTDOWN);
	TCHECK_EQ(weft_runtime_workers(NULL), -EINVAL);
	close(devnull);
}

static void test_stats_without_a_runtime(void **state)
{
	(void)state;
	wt_no_runtime(no_runtime_stats_body, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_texts_of_any_int),
		cmocka_unit_test(test_deadline_in_saturates),
		cmocka_unit_test(test_runtime_start_refuses_bad_config),
		cmocka_unit_test(test_runtime_stop_refuses_bad_handles),
		cmocka_unit_test(test_runtime_wait_stop_request_refuses_bad_handles),
		cmocka_unit_test(test_runtime_wait_stop_request_ends_when_the_runtime_stops),
		cmocka_unit_test(test_runtime_request_stop_ignores_bad_handles),
		cmocka_unit_test(test_runtime_workers_of_bad_handles),
		cmocka_unit_test(test_main_refuses_bad_input),
		cmocka_unit_test(test_runtime_extensions_refuse_bad_input),
		cmocka_unit_test(test_spawn_refuses_bad_input),
		cmocka_unit_test(test_spawn_into_a_stopped_runtime),
		cmocka_unit_test(test_spawn_without_a_runtime),
		cmocka_unit_test(test_join_refuses_bad_ids),
		cmocka_unit_test(test_join_refuses_detached_tasks),
		cmocka_unit_test(test_join_until_a_past_deadline_polls),
		cmocka_unit_test(test_join_from_a_stackless_task),
		cmocka_unit_test(test_detach_refuses_bad_ids),
		cmocka_unit_test(test_cancel_refuses_bad_ids),
		cmocka_unit_test(test_task_ids_of_a_stopped_runtime),
		cmocka_unit_test(test_calls_on_the_calling_task),
		cmocka_unit_test(test_task_names_refuse_bad_input),
		cmocka_unit_test(test_tls_refuses_bad_keys),
		cmocka_unit_test(test_tls_keys_run_out),
		cmocka_unit_test(test_group_calls_refuse_null),
		cmocka_unit_test(test_group_with_running_members),
		cmocka_unit_test(test_group_without_members),
		cmocka_unit_test(test_park_refuses_wakers_of_other_waits),
		cmocka_unit_test(test_park_deadline_refuses_bad_calls),
		cmocka_unit_test(test_unpark_of_bad_wakers_and_reasons),
		cmocka_unit_test(test_waitq_calls_refuse_null),
		cmocka_unit_test(test_sleep_with_past_deadlines),
		cmocka_unit_test(test_timer_calls_refuse_bad_input),
		cmocka_unit_test(test_timer_without_a_runtime),
		cmocka_unit_test(test_timer_with_a_first_deadline_long_past),
		cmocka_unit_test(test_stats_refuse_bad_input),
		cmocka_unit_test(test_stats_print_refuses_bad_descriptors),
		cmocka_unit_test(test_stats_of_a_stopped_runtime),
		cmocka_unit_test(test_stats_without_a_runtime),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
