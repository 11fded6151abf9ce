/* wt_exec.h - run a test body against every executor backend (weft,
 * threads, libuv, sim), from each kind of caller: the test's own plain
 * thread, a coroutine of a weft runtime, and a task of the executor under
 * test.
 *
 * Each backend gets a fresh weft runtime of two workers (the weft backend
 * runs on it; the others use it only for the coroutine caller) and a fresh
 * executor, destroyed and stopped afterwards. libuv is skipped, saying so,
 * when weft was built without it.
 *
 * The sim runs apart from the table, under WT_EXEC_SIM_SEEDS seeds: only
 * its owner thread (the test's) and its own tasks may call it (anything
 * else gets -EPERM, by design), so its "coroutine" caller is a coroutine
 * of its own runtime, and bodies get that runtime as rt (wt_exec_home). */
#ifndef WT_EXEC_H
#define WT_EXEC_H

#include "weft_test.h"

#include <string.h>

typedef struct wt_backend {
	const char *name;
	int (*make)(weft_exec_t **ex, weft_runtime_t *rt);
} wt_backend_t;

static int wt_make_weft(weft_exec_t **ex, weft_runtime_t *rt)
{
	return weft_exec_create_runtime(ex, rt);
}

static int wt_make_threads(weft_exec_t **ex, weft_runtime_t *rt)
{
	(void)rt;
	return weft_exec_create_threads(ex, NULL);
}

/* libuv: a loop of the executor's own (tests/exec/test_uv.c runs the
 * caller's-loop mode itself); -ENOTSUP when weft was built without it. */
static int wt_make_uv(weft_exec_t **ex, weft_runtime_t *rt)
{
	(void)rt;
	return weft_exec_create_uv(ex, NULL);
}

static const wt_backend_t wt_backends[] = {
	{"weft", wt_make_weft},
	{"threads", wt_make_threads},
	{"libuv", wt_make_uv},
};
#define WT_NBACKENDS (sizeof wt_backends / sizeof wt_backends[0])

enum { WT_BY_THREAD = 1, WT_BY_CORO = 2, WT_BY_TASK = 4, WT_BY_ALL = 7 };

typedef void (*wt_exec_body_t)(weft_exec_t *ex, weft_runtime_t *rt);

struct wt_exec_call {
	wt_exec_body_t fn;
	weft_exec_t *ex;
	weft_runtime_t *rt;
};

static void *wt_exec_call_main(void *a)
{
	struct wt_exec_call *c = a;
	c->fn(c->ex, c->rt);
	return NULL;
}

static const char *const wt_by_names[] = {"plain thread", "weft coroutine", "task of the executor"};

/* The sim backend, one seed after another (WEFT_SIM_SEED replays one). */
#define WT_EXEC_SIM_SEEDS 3
static uint64_t wt_exec_sim_seed = 1;

static int wt_make_sim(weft_exec_t **ex, weft_runtime_t *rt)
{
	(void)rt;
	weft_exec_sim_opts_t o = {.size = sizeof o, .seed = wt_exec_sim_seed};
	return weft_exec_create_sim(ex, &o);
}

static const wt_backend_t wt_sim_backend = {"sim", wt_make_sim};

/* Every backend: the table's, then the sim (i == WT_NBACKENDS). */
static inline const wt_backend_t *wt_backend(size_t i)
{
	return i < WT_NBACKENDS ? &wt_backends[i] : &wt_sim_backend;
}
#define WT_NALL (WT_NBACKENDS + 1)

/* The runtime a body and its coroutine caller use with ex: a sim's own,
 * else rt. */
static inline weft_runtime_t *wt_exec_home(const weft_exec_t *ex, weft_runtime_t *rt)
{
	weft_runtime_t *own = weft_exec_runtime(ex);
	return weft_runtime_is_sim(own) ? own : rt;
}

/* body(ex, rt) on backend b, from each caller kind in `by`. */
static inline void wt_exec_run(const wt_backend_t *b, wt_exec_body_t body, unsigned by)
{
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	weft_exec_t *ex;
	int e = b->make(&ex, rt);
	if (e == -ENOTSUP) {
		fprintf(stderr, "  %s: skipped (weft was built without it: -DWEFT_LIBUV=OFF)\n", b->name);
		assert_int_equal(weft_runtime_stop(rt), 0);
		return;
	}
	assert_int_equal(e, 0);
	weft_runtime_t *home = wt_exec_home(ex, rt);
	struct wt_exec_call c = {body, ex, home};
	for (int k = 0; k < 3; k++) {
		if (!(by & (1u << k)))
			continue;
		int before = atomic_load(&tcheck_failures);
		if (k == 0) {
			body(ex, home);
		} else if (k == 1) {
			weft_task_t t;
			assert_int_equal(weft_spawn(&t, wt_exec_call_main, &c, &(weft_spawn_opts_t){.runtime = home}),
					 0);
			assert_int_equal(weft_join(t, NULL), 0);
		} else {
			weft_exec_task_t h;
			assert_int_equal(weft_exec_spawn(ex, &h, wt_exec_call_main, &c, NULL), 0);
			assert_int_equal(weft_exec_wait(ex, h, NULL), 0);
		}
		if (atomic_load(&tcheck_failures) != before)
			fprintf(stderr, "  ^ those checks failed on %s, in a %s\n", b->name, wt_by_names[k]);
	}
	assert_int_equal(weft_exec_destroy(ex), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
}

/* Tasks that hold their thread (a pool backend's) until the test opens the
 * gate: each tells `started`, waits for `gate` (the hang guard bounds it)
 * and counts itself in `done`; its result is the wait's. */
typedef struct wt_hold {
	weft_sem_t started, gate;
	_Atomic int done;
} wt_hold_t;
#define WT_HOLD_INIT                                                                                                   \
	{                                                                                                              \
		WEFT_SEM_INIT(0), WEFT_SEM_INIT(0), 0                                                                  \
	}

static inline void *wt_hold_fn(void *a)
{
	wt_hold_t *h = a;
	weft_sem_release(&h->started, 1);
	int e = weft_sem_acquire_until(&h->gate, wt_hang_deadline());
	atomic_fetch_add(&h->done, 1);
	return (void *)(intptr_t)e;
}

/* A task that counts its runs in the _Atomic int at a; result 1. */
static inline void *wt_count_fn(void *a)
{
	atomic_fetch_add((_Atomic int *)a, 1);
	return (void *)1;
}

/* A task that destroys its own executor (a): the result is destroy's. */
static inline void *wt_destroy_own(void *a)
{
	return (void *)(intptr_t)weft_exec_destroy(a);
}

/* wt_exec_run on every backend; fails the test if a check failed. */
static inline void wt_each_exec(wt_exec_body_t body, unsigned by)
{
	atomic_store(&tcheck_failures, 0);
	for (size_t i = 0; i < WT_NBACKENDS; i++)
		wt_exec_run(&wt_backends[i], body, by);
	for (wt_exec_sim_seed = 1; wt_exec_sim_seed <= WT_EXEC_SIM_SEEDS; wt_exec_sim_seed++) {
		int before = atomic_load(&tcheck_failures);
		wt_exec_run(&wt_sim_backend, body, by);
		if (atomic_load(&tcheck_failures) != before)
			fprintf(stderr, "  ^ sim seed %llu (replay: WEFT_SIM_SEED=%llu)\n",
				(unsigned long long)wt_exec_sim_seed, (unsigned long long)wt_exec_sim_seed);
	}
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

#endif
