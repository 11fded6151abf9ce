/* wt_kinds.h - run one check body from each kind of caller, for the
 * argument tests (tests/<module>/test_args.c): a plain thread (the test's
 * own), a coroutine and a stackless task, all with one runtime running.
 *
 * A body checks with TCHECK/TCHECK_EQ and is told which kind it runs as,
 * so it can expect what differs (a stackless task gets -EPERM or
 * -EWOULDBLOCK where the others would wait). A body run as a stackless task
 * runs inside one step: it must not wait for anything. */
#ifndef WT_KINDS_H
#define WT_KINDS_H

#include "weft_test.h"

enum wt_kind { WT_THREAD = 0, WT_CORO = 1, WT_STEP = 2 };

typedef void (*wt_body_t)(enum wt_kind kind, void *arg);

struct wt_kind_call {
	wt_body_t fn;
	void *arg;
};

static void *wt_kind_coro(void *a)
{
	struct wt_kind_call *c = a;
	c->fn(WT_CORO, c->arg);
	return NULL;
}

static weft_step_t wt_kind_step(void *a, void **r)
{
	struct wt_kind_call *c = a;
	c->fn(WT_STEP, c->arg);
	*r = NULL;
	return WEFT_STEP_DONE;
}

static const char *const wt_kind_names[] = {"plain thread", "coroutine", "stackless task"};

/* Run fn(kind, arg) as each kind of caller in runtime rt (its default
 * runtime when it is the only one), saying which kind a failed check came
 * from. */
static inline void wt_kinds_in(weft_runtime_t *rt, wt_body_t fn, void *arg)
{
	struct wt_kind_call c = {fn, arg};
	for (int k = WT_THREAD; k <= WT_STEP; k++) {
		int before = atomic_load(&tcheck_failures);
		if (k == WT_THREAD) {
			fn(WT_THREAD, arg);
		} else {
			weft_task_t t;
			weft_spawn_opts_t o = {.runtime = rt, .name = "args"};
			int e = k == WT_CORO ? weft_spawn(&t, wt_kind_coro, &c, &o)
					     : weft_spawn_step(&t, wt_kind_step, &c, &o);
			assert_int_equal(e, 0);
			assert_int_equal(weft_join(t, NULL), 0);
		}
		if (atomic_load(&tcheck_failures) != before)
			fprintf(stderr, "  ^ those checks failed in a %s\n", wt_kind_names[k]);
	}
}

/* The same in a fresh runtime of two workers, stopped afterwards; fails the
 * test if any check failed. */
static inline void wt_each_kind(wt_body_t fn, void *arg)
{
	atomic_store(&tcheck_failures, 0);
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	wt_kinds_in(rt, fn, arg);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* wt_each_kind with arg a runtime that has been started and stopped: an
 * invalid handle (its struct is never freed). prep(gone), if given, runs
 * while it is still running. No runtime is started while the body runs, so
 * nothing takes its place. */
static inline void wt_each_kind_stopped(wt_body_t fn, void (*prep)(weft_runtime_t *gone))
{
	atomic_store(&tcheck_failures, 0);
	weft_runtime_t *rt, *gone;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	assert_int_equal(weft_runtime_start(&gone, &(weft_config_t){.workers = 1, .no_monitor = true}), 0);
	if (prep)
		prep(gone);
	assert_int_equal(weft_runtime_stop(gone), 0);
	wt_kinds_in(rt, fn, gone);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* Run fn(WT_THREAD, arg) on the test thread with no runtime at all. */
static inline void wt_no_runtime(wt_body_t fn, void *arg)
{
	atomic_store(&tcheck_failures, 0);
	assert_null(weft_runtime_current());
	fn(WT_THREAD, arg);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

#endif
