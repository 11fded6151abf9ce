/* weft_bench.c - weft's side of the benchmark suite.
 *
 * weft-bench WORKLOAD [SIZES...] runs one workload exactly as
 * bench/peers/README.md defines it and prints one line:
 *   name=<workload> n=<sizes> ns_per_op=<f> ops=<n> wall_s=<f> [key=value ...]
 * It exits 1 with "FAIL: ..." on stderr when the self-check fails.
 * WEFT_BENCH_VARIANT=stackless|stackful picks the task kind (default: the
 * lightest, stackless); the main body always runs as a coroutine, like Go's
 * main goroutine. WEFT_WORKERS sets the worker count (default: all CPUs).
 */
#include <weft.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_argc;
static char **g_argv;
static bool stackful;

static long arg(int i, long def)
{
	if (g_argc > i + 2) {
		char *end;
		long v = strtol(g_argv[i + 2], &end, 10);
		if (*end || v <= 0) {
			fprintf(stderr, "FAIL: bad argument %s\n", g_argv[i + 2]);
			exit(1);
		}
		return v;
	}
	return def;
}

static void fail(const char *msg, long long a)
{
	fprintf(stderr, "FAIL: %s %lld\n", msg, a);
	exit(1);
}

static void report(const char *name, const char *n, long long ops, weft_time_t ns, const char *extra)
{
	printf("name=%s n=%s ns_per_op=%.1f ops=%lld wall_s=%.6f variant=%s%s\n", name, n, (double)ns / (double)ops,
	       ops, (double)ns / 1e9, stackful ? "stackful" : "stackless", extra);
}

/* A wait group as the workloads define it: an atomic counter; whoever brings
 * it to zero wakes the waiter. */
typedef struct {
	_Atomic long n;
	_Atomic(void *) parker;
	_Atomic uint64_t epoch;
} wg_t;

static void wg_init(wg_t *g, long n)
{
	atomic_init(&g->n, n);
	atomic_init(&g->parker, NULL);
	atomic_init(&g->epoch, 0);
}

static void wg_done(wg_t *g)
{
	if (atomic_fetch_sub(&g->n, 1) == 1) {
		weft_waker_t w;
		w.parker = atomic_load(&g->parker); /* loaded before the epoch: wg_wait stores them the other way */
		w.epoch = atomic_load(&g->epoch);
		weft_unpark(w, 0);
	}
}

static void wg_wait(wg_t *g)
{
	while (atomic_load(&g->n) != 0) {
		weft_waker_t w = weft_park_prepare();
		atomic_store(&g->epoch, w.epoch);
		atomic_store(&g->parker, w.parker);
		if (atomic_load(&g->n) == 0)
			break;
		weft_park(w, WEFT_NEVER);
	}
}

static int spawn_kind(weft_fn_t fn, weft_step_fn_t step, void *arg_)
{
	static const weft_spawn_opts_t det = {.detached = true};
	return stackful ? weft_spawn(NULL, fn, arg_, &det) : weft_spawn_step(NULL, step, arg_, &det);
}

/* ------------------------------------------------------------ spawn */

static _Atomic long counter;
static wg_t wg;

static void *spawn_fn(void *a)
{
	(void)a;
	atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
	wg_done(&wg);
	return NULL;
}

static weft_step_t spawn_step(void *a, void **r)
{
	(void)r;
	spawn_fn(a);
	return WEFT_STEP_DONE;
}

static void bench_spawn(void)
{
	long n = arg(0, 1000000);
	wg_init(&wg, n);
	weft_time_t t0 = weft_now();
	for (long i = 0; i < n; i++)
		if (spawn_kind(spawn_fn, spawn_step, NULL))
			fail("spawn failed at", i);
	wg_wait(&wg);
	weft_time_t d = weft_now() - t0;
	if (atomic_load(&counter) != n)
		fail("count", atomic_load(&counter));
	char ns[32];
	snprintf(ns, sizeof ns, "%ld", n);
	report("spawn", ns, n, d, "");
}

/* ------------------------------------------------------------ yield */

static long yield_iters;
typedef struct {
	long i;
} yield_state;

static void *yield_fn(void *a)
{
	(void)a;
	for (long i = 0; i < yield_iters; i++)
		weft_yield();
	atomic_fetch_add_explicit(&counter, yield_iters, memory_order_relaxed);
	wg_done(&wg);
	return NULL;
}

static weft_step_t yield_step(void *a, void **r)
{
	(void)r;
	yield_state *s = a;
	if (s->i++ < yield_iters)
		return WEFT_STEP_YIELD;
	atomic_fetch_add_explicit(&counter, yield_iters, memory_order_relaxed);
	wg_done(&wg);
	return WEFT_STEP_DONE;
}

static void bench_yield(void)
{
	long tasks = arg(0, 100);
	yield_iters = arg(1, 100000);
	yield_state *st = calloc((size_t)tasks, sizeof *st);
	wg_init(&wg, tasks);
	weft_time_t t0 = weft_now();
	for (long i = 0; i < tasks; i++)
		if (spawn_kind(yield_fn, yield_step, &st[i]))
			fail("spawn failed at", i);
	wg_wait(&wg);
	weft_time_t d = weft_now() - t0;
	if (atomic_load(&counter) != tasks * yield_iters)
		fail("count", atomic_load(&counter));
	free(st);
	char ns[64];
	snprintf(ns, sizeof ns, "%ldx%ld", tasks, yield_iters);
	report("yield", ns, tasks * yield_iters, d, "");
}

/* ------------------------------------------------------------ timers */

static weft_time_t timer_ms;
typedef struct {
	bool armed;
} timer_state;

static void *timer_fn(void *a)
{
	(void)a;
	if (weft_sleep(timer_ms * WEFT_MSEC))
		fail("sleep", 0);
	atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
	wg_done(&wg);
	return NULL;
}

static weft_step_t timer_step(void *a, void **r)
{
	(void)r;
	timer_state *s = a;
	if (!s->armed) {
		s->armed = true;
		weft_waker_t w = weft_park_prepare();
		if (weft_park_deadline(w, weft_deadline_in(timer_ms * WEFT_MSEC)))
			fail("park_deadline", 0);
		return WEFT_STEP_PARKED;
	}
	if (weft_park_result() != -ETIMEDOUT)
		fail("timer result", weft_park_result());
	atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
	wg_done(&wg);
	return WEFT_STEP_DONE;
}

static void bench_timers(void)
{
	long n = arg(0, 100000);
	timer_ms = arg(1, 10);
	timer_state *st = calloc((size_t)n, sizeof *st);
	wg_init(&wg, n);
	weft_time_t t0 = weft_now();
	for (long i = 0; i < n; i++)
		if (spawn_kind(timer_fn, timer_step, &st[i]))
			fail("spawn failed at", i);
	wg_wait(&wg);
	weft_time_t d = weft_now() - t0;
	if (atomic_load(&counter) != n)
		fail("timers", atomic_load(&counter));
	free(st);
	printf("name=timers n=%ldx%ldms ns_per_op=%.1f ops=%ld wall_s=%.6f variant=%s\n", n, (long)timer_ms,
	       (double)(d - timer_ms * WEFT_MSEC) / (double)n, n, (double)d / 1e9, stackful ? "stackful" : "stackless");
}

/* ------------------------------------------------------------ scale */

/* 64 tasks, each a fixed CPU-bound loop (a xorshift chain the compiler cannot
 * fold); ns per task-iteration. Run with WEFT_WORKERS=1 and =2 to see how it
 * scales. */
static long scale_iters;
static _Atomic uint64_t scale_sink;

static uint64_t scale_work(uint64_t seed)
{
	uint64_t x = seed | 1;
	for (long i = 0; i < scale_iters; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

static void *scale_fn(void *a)
{
	atomic_fetch_xor_explicit(&scale_sink, scale_work((uint64_t)(uintptr_t)a), memory_order_relaxed);
	wg_done(&wg);
	return NULL;
}

static weft_step_t scale_step(void *a, void **r)
{
	(void)r;
	scale_fn(a);
	return WEFT_STEP_DONE;
}

static void bench_scale(void)
{
	long tasks = arg(0, 64);
	scale_iters = arg(1, 20000000);
	wg_init(&wg, tasks);
	weft_time_t t0 = weft_now();
	for (long i = 0; i < tasks; i++)
		if (spawn_kind(scale_fn, scale_step, (void *)(uintptr_t)(i + 1)))
			fail("spawn failed at", i);
	wg_wait(&wg);
	weft_time_t d = weft_now() - t0;
	/* Self-check: recompute serially (untimed) and compare the xor of results. */
	uint64_t want = 0;
	for (long i = 0; i < tasks; i++)
		want ^= scale_work((uint64_t)(i + 1));
	if (want != atomic_load(&scale_sink))
		fail("scale checksum mismatch", 0);
	char ns[64], extra[64];
	snprintf(ns, sizeof ns, "%ldx%ld", tasks, scale_iters);
	snprintf(extra, sizeof extra, " workers=%d", weft_runtime_workers(weft_runtime_current()));
	report("scale", ns, tasks * scale_iters, d, extra);
}

/* ------------------------------------------------------------ main */

static const struct {
	const char *name;
	void (*fn)(void);
} workloads[] = {
	{"spawn", bench_spawn},
	{"yield", bench_yield},
	{"timers", bench_timers},
	{"scale", bench_scale},
};

static void *bench_main(void *a)
{
	void (*fn)(void) = (void (*)(void))a;
	fn();
	return NULL;
}

int main(int argc, char **argv)
{
	g_argc = argc;
	g_argv = argv;
	if (argc < 2) {
		fprintf(stderr, "usage: weft-bench WORKLOAD [SIZES...]\nworkloads:");
		for (size_t i = 0; i < sizeof workloads / sizeof *workloads; i++)
			fprintf(stderr, " %s", workloads[i].name);
		fprintf(stderr, "\n");
		return 2;
	}
	const char *v = getenv("WEFT_BENCH_VARIANT");
	if (v && strcmp(v, "stackful") == 0)
		stackful = true;
	else if (v && *v && strcmp(v, "stackless") != 0) {
		fprintf(stderr, "FAIL: WEFT_BENCH_VARIANT must be stackless or stackful\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof workloads / sizeof *workloads; i++) {
		if (strcmp(argv[1], workloads[i].name) == 0) {
			int r = weft_main(bench_main, (void *)workloads[i].fn, NULL);
			if (r < 0) {
				fprintf(stderr, "FAIL: runtime: %s\n", weft_strerror(r));
				return 1;
			}
			return 0;
		}
	}
	fprintf(stderr, "unknown workload: %s\n", argv[1]);
	return 2;
}
