/* weft_test.h - helpers shared by the test programs.
 *
 * cmocka's assert_* must run on the test's own thread and stack (a failure
 * longjmps), so code running inside tasks checks with TCHECK, which records a
 * failure with its location; the test asserts that none were recorded once
 * the runtime has stopped. */
#ifndef WEFT_TEST_H
#define WEFT_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <weft.h>

static _Atomic int tcheck_failures;

#define TCHECK(cond)                                                                                                   \
	do {                                                                                                           \
		if (!(cond)) {                                                                                         \
			atomic_fetch_add(&tcheck_failures, 1);                                                         \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                       \
		}                                                                                                      \
	} while (0)

#define TCHECK_EQ(a, b)                                                                                                \
	do {                                                                                                           \
		long long a_ = (long long)(a), b_ = (long long)(b);                                                    \
		if (a_ != b_) {                                                                                        \
			atomic_fetch_add(&tcheck_failures, 1);                                                         \
			fprintf(stderr, "%s:%d: check failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, #b,  \
				a_, b_);                                                                               \
		}                                                                                                      \
	} while (0)

/* Sizes: full in release builds, smaller under the sanitizers. WT_SIZE3
 * gives TSan its own, for tests of many live coroutines: TSan sets up a
 * fiber per coroutine, at milliseconds each. */
#ifdef WEFT_SANITIZED
#define WT_SIZE(release, sanitized) (sanitized)
#else
#define WT_SIZE(release, sanitized) (release)
#endif
#ifdef __SANITIZE_THREAD__
#define WT_SIZE3(release, asan, tsan) (tsan)
#else
#define WT_SIZE3(release, asan, tsan) WT_SIZE(release, asan)
#endif

/* Hang guard: how long a test waits for something that must happen (a
 * wake-up, a reply, a thread that must start) before it reports a failure
 * instead of hanging. Only a bug reaches it, so it is generous: a TSan
 * build on a loaded machine is slower than an idle release build by far.
 * It is never a claim that the thing happens quickly - tests assert no
 * timing, rate or interleaving that load can change. */
#define WT_HANG_NS (60 * WEFT_SEC)

static inline weft_time_t wt_hang_deadline(void)
{
	return weft_deadline_in(WT_HANG_NS);
}

/* Wait until cond holds, polling every 250 us (parking a task, sleeping a
 * plain thread); a failed TCHECK if the hang guard passes first. */
#define WT_WAIT_UNTIL(cond)                                                                                            \
	do {                                                                                                           \
		weft_time_t wt_give_up_ = wt_hang_deadline();                                                          \
		while (!(cond) && weft_now() < wt_give_up_)                                                            \
			weft_sleep(WEFT_MSEC / 4);                                                                     \
		TCHECK(cond);                                                                                          \
	} while (0)

/* Run fn(arg) as the main coroutine of a fresh runtime configured by cfg,
 * then stop it; asserts on the test thread. */
static inline void *wt_run_cfg(void *(*fn)(void *), void *arg, const weft_config_t *cfg)
{
	atomic_store(&tcheck_failures, 0);
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, cfg), 0);
	weft_task_t t;
	assert_int_equal(weft_spawn(&t, fn, arg, &(weft_spawn_opts_t){.name = "test-main", .runtime = rt}), 0);
	void *res = NULL;
	assert_int_equal(weft_join(t, &res), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
	return res;
}

/* The same with `workers` workers (0 = default) and everything else default. */
static inline void *wt_run(void *(*fn)(void *), void *arg, int workers)
{
	return wt_run_cfg(fn, arg, &(weft_config_t){.workers = workers});
}

/* The tests' own pseudo-random choices (deadlines, reads or writes): the
 * next value of a 64-bit LCG, which depends on its seed alone. */
static inline uint64_t wt_lcg(uint64_t seed)
{
	return seed * 6364136223846793005u + 1442695040888963407u;
}

/* Spawn a joinable coroutine (checked) and join it (checked). */
static inline weft_task_t wt_spawn(weft_fn_t fn, void *arg)
{
	weft_task_t t = 0;
	TCHECK_EQ(weft_spawn(&t, fn, arg, NULL), 0);
	return t;
}

static inline void wt_join(weft_task_t t)
{
	TCHECK_EQ(weft_join(t, NULL), 0);
}

/* The "giving up" stress shared by the lock tests: n tasks run fn((void *)i)
 * for i = 1..n; after 3 ms every stride-th is cancelled; all are joined. */
static inline void wt_spawn_cancel_some(weft_fn_t fn, long n, long stride)
{
	weft_task_t *t = calloc((size_t)n, sizeof *t);
	for (long i = 0; i < n; i++)
		t[i] = wt_spawn(fn, (void *)(i + 1));
	weft_sleep(3 * WEFT_MSEC);
	for (long i = 0; i < n; i += stride)
		weft_cancel(t[i]);
	for (long i = 0; i < n; i++)
		wt_join(t[i]);
	free(t);
}

#endif
