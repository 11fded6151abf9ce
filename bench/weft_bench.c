/* weft_bench.c - weft's side of the benchmark suite.
 *
 * weft-bench WORKLOAD [SIZES...] runs one workload exactly as
 * bench/peers/README.md defines it and prints one line:
 *   name=<workload> n=<sizes> ns_per_op=<f> ops=<n> wall_s=<f> [key=value ...]
 * It exits 1 with "FAIL: ..." on stderr when the self-check fails.
 * WEFT_BENCH_VARIANT=stackless|stackful picks the task kind (default: the
 * lightest, stackless; for churn, which is about stacks, and mvar, whose
 * processes call a blocking lock as the peers' tasks do, stackful;
 * proc_spawn_coro is proc_spawn with coroutines); the main body always runs
 * as a coroutine, like Go's main goroutine. WEFT_WORKERS
 * sets the worker count (default: all CPUs). WEFT_BENCH_EXEC=weft|threads|libuv
 * picks exec_spawn's executor (default weft).
 */
#include <weft.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* ------------------------------------------------------------ exec_spawn */

/* spawn exactly, with every spawn and the wait going through the executor
 * interface (weft/exec.h): the body is itself a task of the executor, which
 * the main thread waits for with weft_exec_wait. WEFT_BENCH_EXEC picks the
 * backend: weft (default: over a runtime configured as weft_main's),
 * threads or libuv (stackful only: their tasks are jobs on plain threads;
 * libuv's own loop, so every spawn from the body, a task on libuv's pool,
 * goes through the inbox). */
static void *exec_spawn_body(void *a)
{
	weft_exec_t *ex = a;
	long n = arg(0, 1000000);
	wg_init(&wg, n);
	weft_time_t t0 = weft_now();
	for (long i = 0; i < n; i++) {
		int e = stackful ? weft_exec_spawn(ex, NULL, spawn_fn, NULL, NULL)
				 : weft_exec_spawn_step(ex, NULL, spawn_step, NULL, NULL);
		if (e)
			fail("spawn failed at", i);
	}
	wg_wait(&wg);
	weft_time_t d = weft_now() - t0;
	if (atomic_load(&counter) != n)
		fail("count", atomic_load(&counter));
	char ns[32], extra[32];
	snprintf(ns, sizeof ns, "%ld", n);
	snprintf(extra, sizeof extra, " exec=%s", weft_exec_name(ex));
	report("exec_spawn", ns, n, d, extra);
	return NULL;
}

static int bench_exec_spawn(void)
{
	const char *which = getenv("WEFT_BENCH_EXEC");
	bool threads = which && strcmp(which, "threads") == 0;
	bool uv = which && strcmp(which, "libuv") == 0;
	if (which && *which && !threads && !uv && strcmp(which, "weft") != 0) {
		fprintf(stderr, "FAIL: WEFT_BENCH_EXEC must be weft, threads or libuv\n");
		return 2;
	}
	weft_runtime_t *rt;
	int e = weft_runtime_start(&rt, NULL);
	if (e < 0)
		fail("runtime start, error", e);
	weft_exec_t *ex;
	if (threads) {
		stackful = true;
		e = weft_exec_create_threads(&ex, NULL);
	} else if (uv) {
		stackful = true;
		e = weft_exec_create_uv(&ex, NULL); /* -ENOTSUP: built with -DWEFT_LIBUV=OFF */
	} else {
		e = weft_exec_create_runtime(&ex, rt);
	}
	if (e < 0)
		fail("executor, error", e);
	weft_exec_task_t body;
	if ((e = weft_exec_spawn(ex, &body, exec_spawn_body, ex, NULL)) < 0)
		fail("spawn body, error", e);
	if ((e = weft_exec_wait(ex, body, NULL)) < 0)
		fail("wait body, error", e);
	if ((e = weft_exec_destroy(ex)) < 0)
		fail("executor destroy, error", e);
	if ((e = weft_runtime_stop(rt)) < 0)
		fail("runtime stop, error", e);
	return 0;
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

/* ------------------------------------------------------------ idle */

static long proc_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = 0;
	size_t kl = strlen(key);
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, key, kl) == 0 && line[kl] == ':')
			v = atol(line + kl + 1);
	if (f)
		fclose(f);
	return v;
}

static _Atomic long parked, idle_sum;

/* A stackless idle task's whole state: 80 bytes. v < 0 until the first step. */
typedef struct {
	weft_op_t op;
	weft_chan_t *c;
	long v;
} idle_state;

static void *idle_fn(void *a)
{
	weft_chan_t *c = a;
	atomic_fetch_add_explicit(&parked, 1, memory_order_relaxed);
	long v = 0;
	if (weft_chan_recv(c, &v))
		fail("idle recv", 0);
	atomic_fetch_add_explicit(&idle_sum, v, memory_order_relaxed);
	wg_done(&wg);
	return NULL;
}

static weft_step_t idle_step(void *a, void **r)
{
	(void)r;
	idle_state *s = a;
	if (s->v < 0) {
		s->v = 0;
		atomic_fetch_add_explicit(&parked, 1, memory_order_relaxed);
	}
	int e = weft_chan_recv_step(s->c, &s->v, WEFT_NEVER, &s->op);
	if (e == -EINPROGRESS)
		return WEFT_STEP_PARKED;
	if (e)
		fail("idle recv", e);
	atomic_fetch_add_explicit(&idle_sum, s->v, memory_order_relaxed);
	wg_done(&wg);
	return WEFT_STEP_DONE;
}

static void bench_idle(void)
{
	long n = arg(0, 1000000);
	long rss0 = proc_kb("VmRSS");
	wg_init(&wg, n);
	weft_time_t t0 = weft_now();
	weft_chan_t **chs = malloc((size_t)n * sizeof *chs);
	idle_state *st = stackful ? NULL : calloc((size_t)n, sizeof *st);
	static const weft_spawn_opts_t det = {.detached = true};
	for (long i = 0; i < n; i++) {
		if (weft_chan_create(&chs[i], sizeof(long), 0))
			fail("chan create", i);
		int e;
		if (stackful) {
			e = weft_spawn(NULL, idle_fn, chs[i], &det);
		} else {
			st[i].c = chs[i];
			st[i].v = -1;
			e = weft_spawn_step(NULL, idle_step, &st[i], &det);
		}
		if (e)
			fail("spawn failed at", i);
	}
	while (atomic_load(&parked) != n)
		weft_sleep(WEFT_MSEC);
	long rss1 = proc_kb("VmRSS");
	weft_time_t tpark = weft_now() - t0;
	long one = 1;
	for (long i = 0; i < n; i++)
		if (weft_chan_send(chs[i], &one))
			fail("idle send", i);
	wg_wait(&wg);
	weft_time_t d = weft_now() - t0;
	if (atomic_load(&idle_sum) != n)
		fail("idle sum", atomic_load(&idle_sum));
	for (long i = 0; i < n; i++)
		weft_chan_release(chs[i]);
	free(chs);
	free(st);
	char ns[32], extra[160];
	snprintf(ns, sizeof ns, "%ld", n);
	snprintf(extra, sizeof extra, " bytes_per_task=%.0f park_s=%.6f rss_parked_kb=%ld",
		 (double)(rss1 - rss0) * 1024.0 / (double)n, (double)tpark / 1e9, rss1);
	report("idle", ns, n, d, extra);
}

/* ------------------------------------------------------------ pingpong */

static weft_chan_t *ping, *pong;

static void *echo_fn(void *a)
{
	(void)a;
	long v;
	while (weft_chan_recv(ping, &v) == 0) {
		v++;
		if (weft_chan_send(pong, &v))
			fail("pong send", 0);
	}
	wg_done(&wg);
	return NULL;
}

typedef struct {
	weft_op_t op;
	long v;
	int phase; /* 0: receiving on ping, 1: sending on pong */
} echo_state;

static weft_step_t echo_step(void *a, void **r)
{
	(void)r;
	echo_state *s = a;
	for (;;) {
		if (s->phase == 0) {
			int e = weft_chan_recv_step(ping, &s->v, WEFT_NEVER, &s->op);
			if (e == -EINPROGRESS)
				return WEFT_STEP_PARKED;
			if (e == -EPIPE) {
				wg_done(&wg);
				return WEFT_STEP_DONE;
			}
			s->v++;
			s->phase = 1;
		}
		int e = weft_chan_send_step(pong, &s->v, WEFT_NEVER, &s->op);
		if (e == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		if (e)
			fail("pong send", e);
		s->phase = 0;
	}
}

static void bench_pingpong(void)
{
	long n = arg(0, 1000000);
	weft_chan_create(&ping, sizeof(long), 0);
	weft_chan_create(&pong, sizeof(long), 0);
	wg_init(&wg, 1);
	echo_state es = {.phase = 0};
	if (spawn_kind(echo_fn, echo_step, &es))
		fail("spawn", 0);
	long v = 0;
	weft_time_t t0 = weft_now();
	for (long i = 0; i < n; i++) {
		if (weft_chan_send(ping, &v) || weft_chan_recv(pong, &v))
			fail("pingpong at", i);
	}
	weft_time_t d = weft_now() - t0;
	weft_chan_close(ping);
	wg_wait(&wg);
	if (v != n)
		fail("pingpong final value", v);
	weft_chan_release(ping);
	weft_chan_release(pong);
	char ns[32];
	snprintf(ns, sizeof ns, "%ld", n);
	report("pingpong", ns, n, d, "");
}

/* ------------------------------------------------------------ ring */

static weft_chan_t **ring_ch, *ring_done;
static long ring_n;

typedef struct {
	long i, t;
	weft_op_t op;
	int phase; /* 0 recv, 1 forward, 2 report done */
} ring_state;

static void *ring_fn(void *a)
{
	long i = (long)(intptr_t)a;
	for (;;) {
		long t;
		if (weft_chan_recv(ring_ch[i], &t))
			fail("ring recv", i);
		if (t == 0) {
			weft_chan_send(ring_done, &t);
			break;
		}
		long nt = t - 1;
		if (weft_chan_send(ring_ch[(i + 1) % ring_n], &nt))
			fail("ring send", i);
		if (t < ring_n)
			break;
	}
	wg_done(&wg);
	return NULL;
}

static weft_step_t ring_step(void *a, void **r)
{
	(void)r;
	ring_state *s = a;
	for (;;) {
		int e;
		switch (s->phase) {
		case 0:
			e = weft_chan_recv_step(ring_ch[s->i], &s->t, WEFT_NEVER, &s->op);
			if (e == -EINPROGRESS)
				return WEFT_STEP_PARKED;
			if (e)
				fail("ring recv", s->i);
			s->phase = s->t == 0 ? 2 : 1;
			if (s->t != 0)
				s->t--; /* forward t - 1; t itself is t + 1 below */
			break;
		case 1:
			e = weft_chan_send_step(ring_ch[(s->i + 1) % ring_n], &s->t, WEFT_NEVER, &s->op);
			if (e == -EINPROGRESS)
				return WEFT_STEP_PARKED;
			if (e)
				fail("ring send", s->i);
			if (s->t + 1 < ring_n) {
				wg_done(&wg);
				return WEFT_STEP_DONE;
			}
			s->phase = 0;
			break;
		default:
			e = weft_chan_send_step(ring_done, &s->t, WEFT_NEVER, &s->op);
			if (e == -EINPROGRESS)
				return WEFT_STEP_PARKED;
			wg_done(&wg);
			return WEFT_STEP_DONE;
		}
	}
}

static void bench_ring(void)
{
	ring_n = arg(0, 10000);
	long laps = arg(1, 100);
	ring_ch = malloc((size_t)ring_n * sizeof *ring_ch);
	ring_state *st = calloc((size_t)ring_n, sizeof *st);
	for (long i = 0; i < ring_n; i++)
		weft_chan_create(&ring_ch[i], sizeof(long), 0);
	weft_chan_create(&ring_done, sizeof(long), 0);
	wg_init(&wg, ring_n);
	for (long i = 0; i < ring_n; i++) {
		st[i].i = i;
		if (spawn_kind(ring_fn, ring_step, stackful ? (void *)(intptr_t)i : (void *)&st[i]))
			fail("spawn", i);
	}
	long h = ring_n * laps, got = -1;
	weft_time_t t0 = weft_now();
	weft_chan_send(ring_ch[0], &h);
	weft_chan_recv(ring_done, &got);
	weft_time_t d = weft_now() - t0;
	wg_wait(&wg);
	if (got != 0)
		fail("ring token", got);
	for (long i = 0; i < ring_n; i++)
		weft_chan_release(ring_ch[i]);
	weft_chan_release(ring_done);
	free(ring_ch);
	free(st);
	char ns[64];
	snprintf(ns, sizeof ns, "%ldx%ld", ring_n, laps);
	report("ring", ns, h, d, "");
}

/* ------------------------------------------------------------ fanin */

static weft_chan_t *fan;
static long fan_m;

typedef struct {
	long p, j;
	weft_op_t op;
	long v;
} fan_state;

static void *fan_fn(void *a)
{
	long p = (long)(intptr_t)a;
	for (long j = 0; j < fan_m; j++) {
		long v = p * fan_m + j;
		if (weft_chan_send(fan, &v))
			fail("fanin send", p);
	}
	return NULL;
}

static weft_step_t fan_step(void *a, void **r)
{
	(void)r;
	fan_state *s = a;
	while (s->j < fan_m) {
		s->v = s->p * fan_m + s->j;
		int e = weft_chan_send_step(fan, &s->v, WEFT_NEVER, &s->op);
		if (e == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		if (e)
			fail("fanin send", s->p);
		s->j++;
	}
	return WEFT_STEP_DONE;
}

static void bench_fanin(void)
{
	long p = arg(0, 1000);
	fan_m = arg(1, 1000);
	weft_chan_create(&fan, sizeof(long), 1024);
	fan_state *st = calloc((size_t)p, sizeof *st);
	weft_time_t t0 = weft_now();
	for (long i = 0; i < p; i++) {
		st[i].p = i;
		if (spawn_kind(fan_fn, fan_step, stackful ? (void *)(intptr_t)i : (void *)&st[i]))
			fail("spawn", i);
	}
	long total = p * fan_m, sum = 0, v;
	for (long k = 0; k < total; k++) {
		if (weft_chan_recv(fan, &v))
			fail("fanin recv", k);
		sum += v;
	}
	weft_time_t d = weft_now() - t0;
	if (sum != total * (total - 1) / 2)
		fail("fanin sum", sum);
	weft_chan_release(fan);
	free(st);
	char ns[64];
	snprintf(ns, sizeof ns, "%ldx%ld", p, fan_m);
	report("fanin", ns, total, d, "");
}

/* ------------------------------------------------------------ mutex */

/* T tasks x I times lock; counter++; unlock on one weft_mutex_t. The tasks
 * are coroutines whatever the variant, calling weft_mutex_lock, as the
 * peers' tasks call theirs; the line says variant=stackful. (A stackless
 * task locks with weft_mutex_lock_step, which waits in the same queue; this
 * workload does not measure it.) */
static weft_mutex_t mutex_mu = WEFT_MUTEX_INIT;
static weft_wg_t mutex_wg = WEFT_WG_INIT;
static long mutex_counter; /* plain: the mutex is what protects it */
static long mutex_iters;

static void *mutex_fn(void *a)
{
	(void)a;
	for (long i = 0; i < mutex_iters; i++) {
		weft_mutex_lock(&mutex_mu);
		mutex_counter++;
		weft_mutex_unlock(&mutex_mu);
	}
	weft_wg_done(&mutex_wg);
	return NULL;
}

static void bench_mutex(void)
{
	long tasks = arg(0, 1000);
	mutex_iters = arg(1, 1000);
	stackful = true;
	weft_wg_add(&mutex_wg, tasks);
	weft_time_t t0 = weft_now();
	for (long t = 0; t < tasks; t++)
		if (weft_spawn(NULL, mutex_fn, NULL, &(weft_spawn_opts_t){.detached = true}))
			fail("spawn failed at", t);
	weft_wg_wait(&mutex_wg);
	weft_time_t d = weft_now() - t0;
	if (mutex_counter != tasks * mutex_iters)
		fail("counter", mutex_counter);
	char n[64];
	snprintf(n, sizeof n, "%ldx%ld", tasks, mutex_iters);
	report("mutex", n, tasks * mutex_iters, d, "");
}

/* ------------------------------------------------------------ processes */

/* The process workloads (weft/actor.h; bench/peers/README.md, "Process
 * workloads"): vm_spawn, ring, selective and mutex with processes,
 * mailboxes and an MVar. A process is stackless (weft_proc_spawn_step, the
 * kind the VM uses) or a coroutine as WEFT_BENCH_VARIANT says; a workload
 * body that must receive (a process's mailbox is the only way in) runs as a
 * coroutine process, like Erlang's -run process, and weft-bench's main
 * coroutine waits for it. Each checks its counts and the runtime's process
 * statistics afterwards. */

static int spawn_proc(weft_pid_t *pid, weft_fn_t fn, weft_step_fn_t step, void *arg_)
{
	return stackful ? weft_proc_spawn(pid, fn, arg_, NULL) : weft_proc_spawn_step(pid, step, arg_, NULL);
}

/* The long a data message carries; the message is freed. */
static long msg_long(weft_msg_t *m, const char *what)
{
	long v;
	if (m->kind != WEFT_MSG_DATA || m->len != sizeof v)
		fail(what, (long long)m->len);
	memcpy(&v, m->data, sizeof v);
	weft_msg_destroy(m);
	return v;
}

/* Wait until each of pids has ended (-ESRCH: it had already). */
static void wait_procs(const weft_pid_t *pids, long n)
{
	for (long i = 0; i < n; i++) {
		int e = weft_proc_wait(pids[i], WEFT_NEVER);
		if (e && e != -ESRCH)
			fail("proc wait, error", e);
	}
}

/* The runtime's process counts after a workload: n processes ended, all of
 * them normally, `live` still alive, no message sent to a dead process. */
static void check_procs(uint64_t n, uint64_t live)
{
	weft_actor_stats_t s = {.size = sizeof s};
	int e = weft_actor_stats(NULL, &s);
	if (e)
		fail("actor stats, error", e);
	if (s.exits_normal != n || s.exits_killed || s.exits_other)
		fail("processes ended normally", (long long)s.exits_normal);
	if (s.live != live)
		fail("processes alive", (long long)s.live);
	if (s.dropped)
		fail("messages dropped", (long long)s.dropped);
}

/* Run fn(a) as a coroutine process and wait until it has ended. */
static void run_body_proc(weft_fn_t fn, void *a)
{
	weft_pid_t pid;
	int e = weft_proc_spawn(&pid, fn, a, NULL);
	if (e)
		fail("spawn body process, error", e);
	wait_procs(&pid, 1);
}

/* A process that takes the messages of its mailbox in arrival order and
 * hands each to on_msg (which frees it) until on_msg says it is done; its
 * state begins with this header. loop_fn as a coroutine, loop_step as a
 * stackless process. */
typedef struct loop_hdr {
	weft_op_t op;
	bool (*on_msg)(struct loop_hdr *h, weft_msg_t *m);
	const char *what; /* for failures */
} loop_hdr;

static void *loop_fn(void *a)
{
	loop_hdr *h = a;
	for (;;) {
		weft_msg_t *m;
		int e = weft_receive(&m, NULL);
		if (e)
			fail(h->what, e);
		if (h->on_msg(h, m))
			return NULL;
	}
}

static weft_step_t loop_step(void *a, void **r)
{
	(void)r;
	loop_hdr *h = a;
	for (;;) {
		weft_msg_t *m;
		int e = weft_receive_step(&m, NULL, WEFT_NEVER, &h->op);
		if (e == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		if (e)
			fail(h->what, e);
		if (h->on_msg(h, m))
			return WEFT_STEP_DONE;
	}
}

/* proc_spawn: N processes that each wait for one message (a long, 1),
 * add it to a sum and end; bytes per parked process as idle measures them
 * (VmRSS once all N have started, the state array and pid array
 * included). */
static _Atomic long psp_sum;

typedef struct {
	weft_op_t op;
	bool started;
} psp_state; /* a stackless process's whole state: 72 bytes */

static void *psp_fn(void *a)
{
	(void)a;
	atomic_fetch_add_explicit(&parked, 1, memory_order_relaxed);
	weft_msg_t *m;
	int e = weft_receive(&m, NULL);
	if (e)
		fail("proc_spawn receive, error", e);
	atomic_fetch_add_explicit(&psp_sum, msg_long(m, "proc_spawn message of length"), memory_order_relaxed);
	return NULL;
}

static weft_step_t psp_step(void *a, void **r)
{
	(void)r;
	psp_state *s = a;
	if (!s->started) {
		s->started = true;
		atomic_fetch_add_explicit(&parked, 1, memory_order_relaxed);
	}
	weft_msg_t *m;
	int e = weft_receive_step(&m, NULL, WEFT_NEVER, &s->op);
	if (e == -EINPROGRESS)
		return WEFT_STEP_PARKED;
	if (e)
		fail("proc_spawn receive, error", e);
	atomic_fetch_add_explicit(&psp_sum, msg_long(m, "proc_spawn message of length"), memory_order_relaxed);
	return WEFT_STEP_DONE;
}

static void proc_spawn_run(const char *name)
{
	long n = arg(0, 1000000);
	long rss0 = proc_kb("VmRSS");
	weft_time_t t0 = weft_now();
	weft_pid_t *pids = malloc((size_t)n * sizeof *pids);
	psp_state *st = stackful ? NULL : calloc((size_t)n, sizeof *st);
	if (!pids || (!stackful && !st))
		fail("malloc", n);
	for (long i = 0; i < n; i++) {
		int e = stackful ? weft_proc_spawn(&pids[i], psp_fn, NULL, NULL)
				 : weft_proc_spawn_step(&pids[i], psp_step, &st[i], NULL);
		if (e)
			fail("proc spawn, error", e);
	}
	weft_time_t t1 = weft_now();
	while (atomic_load(&parked) != n)
		weft_sleep(WEFT_MSEC);
	long rss1 = proc_kb("VmRSS");
	weft_time_t tpark = weft_now() - t0;
	long one = 1;
	for (long i = 0; i < n; i++) {
		int e = weft_send(pids[i], &one, sizeof one);
		if (e)
			fail("proc_spawn send, error", e);
	}
	wait_procs(pids, n);
	weft_time_t d = weft_now() - t0;
	if (atomic_load(&psp_sum) != n)
		fail("proc_spawn sum", atomic_load(&psp_sum));
	check_procs((uint64_t)n, 0);
	free(pids);
	free(st);
	char ns[32], extra[192];
	snprintf(ns, sizeof ns, "%ld", n);
	snprintf(extra, sizeof extra, " spawn_us_per_proc=%.3f bytes_per_proc=%.0f rss_parked_kb=%ld park_s=%.6f",
		 (double)(t1 - t0) / 1e3 / (double)n, (double)(rss1 - rss0) * 1024.0 / (double)n, rss1,
		 (double)tpark / 1e9);
	report(name, ns, n, d, extra);
}

static void bench_proc_spawn(void)
{
	proc_spawn_run("proc_spawn");
}

static void bench_proc_spawn_coro(void)
{
	stackful = true;
	proc_spawn_run("proc_spawn_coro");
}

/* proc_ring: ring with processes. Ring process i takes the token (the hops
 * left) from its mailbox and sends t - 1 to process i + 1; the body
 * process sends the first token and receives the final 0. Each process
 * counts the tokens it took (its own field): H + 1 in all. */
static weft_pid_t *pring_pids, pring_body;
static long pring_n;

typedef struct {
	loop_hdr h;
	long i, got;
} pring_state;

/* Process i took the token: pass it on; true when i is done. */
static bool pring_hop(loop_hdr *h, weft_msg_t *m)
{
	pring_state *s = (pring_state *)h;
	long t = msg_long(m, "proc_ring token of length");
	s->got++;
	if (t == 0) {
		if (weft_send(pring_body, &t, sizeof t))
			fail("proc_ring done send", s->i);
		return true;
	}
	long nt = t - 1;
	int e = weft_send(pring_pids[(s->i + 1) % pring_n], &nt, sizeof nt);
	if (e)
		fail("proc_ring send, error", e);
	return t < pring_n; /* the token cannot come back to it */
}

static void *pring_body_fn(void *a)
{
	long laps = *(long *)a;
	pring_body = weft_proc_self();
	pring_pids = malloc((size_t)pring_n * sizeof *pring_pids);
	pring_state *st = calloc((size_t)pring_n, sizeof *st);
	if (!pring_pids || !st)
		fail("malloc", pring_n);
	for (long i = 0; i < pring_n; i++) {
		st[i] = (pring_state){.h = {.on_msg = pring_hop, .what = "proc_ring receive, error"}, .i = i};
		int e = spawn_proc(&pring_pids[i], loop_fn, loop_step, &st[i]);
		if (e)
			fail("proc_ring spawn, error", e);
	}
	long h = pring_n * laps;
	weft_time_t t0 = weft_now();
	if (weft_send(pring_pids[0], &h, sizeof h))
		fail("proc_ring first send", 0);
	weft_msg_t *m;
	int e = weft_receive(&m, NULL);
	weft_time_t d = weft_now() - t0;
	if (e)
		fail("proc_ring body receive, error", e);
	weft_pid_t from = m->from;
	long got = msg_long(m, "proc_ring final token of length");
	wait_procs(pring_pids, pring_n);
	if (got != 0)
		fail("proc_ring final token", got);
	if (from != pring_pids[0])
		fail("proc_ring final token not from process 0, from pid", (long long)from);
	long took = 0;
	for (long i = 0; i < pring_n; i++)
		took += st[i].got;
	if (took != h + 1)
		fail("proc_ring tokens taken", took);
	check_procs((uint64_t)pring_n, 1); /* the body is alive */
	free(pring_pids);
	free(st);
	char ns[64];
	snprintf(ns, sizeof ns, "%ldx%ld", pring_n, laps);
	report("proc_ring", ns, h, d, "");
	return NULL;
}

static void bench_proc_ring(void)
{
	pring_n = arg(0, 10000);
	long laps = arg(1, 100);
	run_body_proc(pring_body_fn, &laps);
}

/* selective: the body process has D noise messages (longs 1..D) in its
 * mailbox; M times it makes a reference, sends it to the echo process
 * (weft_send_ref: the request carries it, and the body's pid as sender)
 * and takes the reply that carries it (weft_receive_ref), past the noise.
 * The echo answers each request with its reference, and ends on a message
 * without one. */
static weft_pid_t sel_echo;

/* The echo took m: answer it; true (done) for the stop message. */
static bool sel_answer(loop_hdr *h, weft_msg_t *m)
{
	(void)h;
	weft_ref_t ref = m->ref;
	weft_pid_t from = m->from;
	weft_msg_destroy(m);
	if (!ref)
		return true;
	int e = weft_send_ref(from, ref, NULL, 0);
	if (e)
		fail("selective reply, error", e);
	return false;
}

static weft_proc_info_t self_info(void)
{
	weft_proc_info_t in = {.size = sizeof in};
	int e = weft_proc_info(weft_proc_self(), &in);
	if (e)
		fail("proc info, error", e);
	return in;
}

static void *sel_body_fn(void *a)
{
	(void)a;
	long msgs = arg(0, 100000), depth = arg(1, 1000);
	loop_hdr st = {.on_msg = sel_answer, .what = "selective echo receive, error"};
	int e = spawn_proc(&sel_echo, loop_fn, loop_step, &st);
	if (e)
		fail("selective echo spawn, error", e);
	weft_pid_t self = weft_proc_self();
	for (long i = 1; i <= depth; i++)
		if ((e = weft_send(self, &i, sizeof i)))
			fail("selective noise send, error", e);
	weft_proc_info_t in0 = self_info();
	if (in0.mailbox_len != (size_t)depth)
		fail("selective noise before", (long long)in0.mailbox_len);
	long replies = 0;
	weft_time_t t0 = weft_now();
	for (long k = 0; k < msgs; k++) {
		weft_ref_t ref = weft_make_ref();
		if ((e = weft_send_ref(sel_echo, ref, NULL, 0)))
			fail("selective request, error", e);
		weft_msg_t *m;
		if ((e = weft_receive_ref(&m, ref, WEFT_NEVER)))
			fail("selective receive, error", e);
		if (m->ref != ref || m->from != sel_echo)
			fail("selective reply does not match, at", k);
		weft_msg_destroy(m);
		replies++;
	}
	weft_time_t d = weft_now() - t0;
	weft_proc_info_t in1 = self_info();
	if (replies != msgs)
		fail("selective replies", replies);
	if (in1.mailbox_len != (size_t)depth)
		fail("selective noise after", (long long)in1.mailbox_len);
	/* Untimed: the noise is intact and in order. */
	for (long i = 1; i <= depth; i++) {
		weft_msg_t *m;
		if ((e = weft_receive_until(&m, NULL, 0)))
			fail("selective noise receive, error", e);
		long v = msg_long(m, "selective noise of length");
		if (v != i)
			fail("selective noise out of order", v);
	}
	if (weft_send(sel_echo, NULL, 0))
		fail("selective stop", 0);
	wait_procs(&sel_echo, 1);
	check_procs(1, 1);
	char ns[64], extra[64];
	snprintf(ns, sizeof ns, "%ldx%ld", msgs, depth);
	snprintf(extra, sizeof extra, " examined_per_recv=%.3f", (double)(in1.examined - in0.examined) / (double)msgs);
	report("selective", ns, msgs, d, extra);
	return NULL;
}

static void bench_selective(void)
{
	run_body_proc(sel_body_fn, NULL);
}

/* mvar: mutex with processes and one MVar holding a long. T processes
 * each do I times: lock, take the value in place, increment it, unlock.
 * Coroutine processes (weft_mvar_lock) by default, as the peers' tasks call
 * their lock; WEFT_BENCH_VARIANT=stackless: weft_mvar_lock_step. */
static weft_mvar_t *mvar_mv;
static long mvar_iters;
static _Atomic long mvar_done;

typedef struct {
	weft_op_t op;
	long i;
} mvar_state;

/* Under the write lock: the long in place, plus one; then unlock. */
static void mvar_incr(void)
{
	void *v;
	size_t len;
	int e = weft_mvar_get(mvar_mv, &v, &len);
	if (e)
		fail("mvar get, error", e);
	if (len != sizeof(long))
		fail("mvar value of length", (long long)len);
	long x;
	memcpy(&x, v, sizeof x); /* the value's bytes need not be aligned for a long */
	x++;
	memcpy(v, &x, sizeof x);
	if ((e = weft_mvar_unlock(mvar_mv)))
		fail("mvar unlock, error", e);
}

static void *mvar_fn(void *a)
{
	(void)a;
	for (long i = 0; i < mvar_iters; i++) {
		int e = weft_mvar_lock(mvar_mv);
		if (e)
			fail("mvar lock, error", e);
		mvar_incr();
	}
	atomic_fetch_add_explicit(&mvar_done, 1, memory_order_relaxed);
	return NULL;
}

static weft_step_t mvar_step(void *a, void **r)
{
	(void)r;
	mvar_state *s = a;
	while (s->i < mvar_iters) {
		int e = weft_mvar_lock_step(mvar_mv, WEFT_NEVER, &s->op);
		if (e == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		if (e)
			fail("mvar lock, error", e);
		mvar_incr();
		s->i++;
	}
	atomic_fetch_add_explicit(&mvar_done, 1, memory_order_relaxed);
	return WEFT_STEP_DONE;
}

static void bench_mvar(void)
{
	const char *var = getenv("WEFT_BENCH_VARIANT");
	if (!var || !*var)
		stackful = true; /* the peers' tasks call a blocking lock: coroutines unless asked */
	long tasks = arg(0, 1000);
	mvar_iters = arg(1, 1000);
	long v = 0;
	int e = weft_mvar_create(&mvar_mv, NULL, &v, sizeof v);
	if (e)
		fail("mvar create, error", e);
	weft_pid_t *pids = malloc((size_t)tasks * sizeof *pids);
	mvar_state *st = stackful ? NULL : calloc((size_t)tasks, sizeof *st);
	if (!pids || (!stackful && !st))
		fail("malloc", tasks);
	weft_time_t t0 = weft_now();
	for (long t = 0; t < tasks; t++)
		if ((e = spawn_proc(&pids[t], mvar_fn, mvar_step, st ? &st[t] : NULL)))
			fail("mvar spawn, error", e);
	wait_procs(pids, tasks);
	weft_time_t d = weft_now() - t0;
	ssize_t n = weft_mvar_read(mvar_mv, &v, sizeof v);
	if (n != (ssize_t)sizeof v)
		fail("mvar read, length or error", (long long)n);
	if (v != tasks * mvar_iters)
		fail("mvar counter", v);
	if (atomic_load(&mvar_done) != tasks)
		fail("mvar processes done", atomic_load(&mvar_done));
	check_procs((uint64_t)tasks, 0);
	if ((e = weft_mvar_destroy(mvar_mv)))
		fail("mvar destroy, error", e);
	free(pids);
	free(st);
	char ns[64];
	snprintf(ns, sizeof ns, "%ldx%ld", tasks, mvar_iters);
	report("mvar", ns, tasks * mvar_iters, d, "");
}

/* ------------------------------------------------------------ churn */

/* weft's own workload (bench/peers/README.md, "churn"): P parent coroutines;
 * in each of R rounds every parent spawns C children, each with its own
 * input channel (capacity 1) and a reference to its parent's reply channel
 * (capacity C). A child signals its parent's `started` wait group, receives
 * v, sends 2v + 1 back and exits. Each parent waits until its C children have
 * started, then all parents meet at the round's wait group (P) before any
 * value is sent: at that point all P*C children of the round are alive (each
 * has run, none can have exited), by construction. Then the memory is
 * watched coming back down (rss_after_kb, settle_s).
 *
 * variant=stackful (the default here: the workload is about stacks) runs the
 * children as coroutines; variant=stackless as stackless tasks whose state is
 * one malloc'd struct freed by the task. Parents are coroutines in both (they
 * wait on wait groups). Channels are reference-counted: the parent and the
 * child each hold a reference to the child's input channel and drop it when
 * done with it; every child holds one on the reply channel. */
static long churn_p, churn_c, churn_r;
static weft_wg_t *churn_round; /* one per round, count P: the round barrier */
static weft_wg_t churn_done = WEFT_WG_INIT;
static _Atomic long long churn_sum;

typedef struct churn_parent {
	long p;
	weft_chan_t *reply;
	weft_wg_t started;
	weft_chan_t **in;	  /* the current round's C input channels */
	struct churn_slot *slots; /* stackful children's arguments */
} churn_parent;

typedef struct churn_slot {
	churn_parent *par;
	weft_chan_t *in;
} churn_slot;

static void *churn_child_fn(void *a)
{
	churn_slot *s = a; /* reused by the parent only after our reply */
	weft_chan_t *in = s->in, *reply = s->par->reply;
	weft_wg_done(&s->par->started);
	long v;
	if (weft_chan_recv(in, &v))
		fail("churn child recv", 0);
	weft_chan_release(in);
	v = 2 * v + 1;
	if (weft_chan_send(reply, &v))
		fail("churn child send", 0);
	weft_chan_release(reply);
	return NULL;
}

typedef struct {
	weft_op_t op;
	weft_chan_t *in, *reply;
	weft_wg_t *started;
	long v;
	int phase; /* 0: not started, 1: receiving, 2: replying */
} churn_child_st;

static weft_step_t churn_child_step(void *a, void **r)
{
	churn_child_st *s = a;
	int e;
	switch (s->phase) {
	case 0:
		weft_wg_done(s->started);
		s->phase = 1;
		/* fall through */
	case 1:
		e = weft_chan_recv_step(s->in, &s->v, WEFT_NEVER, &s->op);
		if (e == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		if (e)
			fail("churn child recv", e);
		weft_chan_release(s->in);
		s->v = 2 * s->v + 1;
		s->phase = 2;
		/* fall through */
	default:
		e = weft_chan_send_step(s->reply, &s->v, WEFT_NEVER, &s->op);
		if (e == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		if (e)
			fail("churn child send", e);
	}
	weft_chan_release(s->reply);
	free(s); /* the runtime does not touch the state after DONE */
	*r = NULL;
	return WEFT_STEP_DONE;
}

static void *churn_parent_fn(void *a)
{
	static const weft_spawn_opts_t det = {.detached = true};
	churn_parent pp = {.p = (long)(intptr_t)a};
	long c = churn_c;
	long long sum = 0;
	if (weft_chan_create(&pp.reply, sizeof(long), c))
		fail("churn reply chan", pp.p);
	weft_wg_init(&pp.started);
	pp.in = malloc((size_t)c * sizeof *pp.in);
	pp.slots = stackful ? malloc((size_t)c * sizeof *pp.slots) : NULL;
	if (!pp.in || (stackful && !pp.slots))
		fail("churn parent malloc", pp.p);
	for (long r = 0; r < churn_r; r++) {
		weft_wg_add(&pp.started, c);
		for (long j = 0; j < c; j++) {
			weft_chan_t *in;
			if (weft_chan_create(&in, sizeof(long), 1))
				fail("churn chan create", j);
			pp.in[j] = in;
			weft_chan_retain(in);	    /* the child's reference */
			weft_chan_retain(pp.reply); /* the child's reference */
			int e;
			if (stackful) {
				pp.slots[j] = (churn_slot){.par = &pp, .in = in};
				e = weft_spawn(NULL, churn_child_fn, &pp.slots[j], &det);
			} else {
				churn_child_st *st = malloc(sizeof *st);
				if (!st)
					fail("churn child malloc", j);
				*st = (churn_child_st){
					.op = WEFT_OP_INIT, .in = in, .reply = pp.reply, .started = &pp.started};
				e = weft_spawn_step(NULL, churn_child_step, st, &det);
			}
			if (e)
				fail("churn spawn child, error", e);
		}
		weft_wg_wait(&pp.started); /* our C children have run */
		weft_wg_done(&churn_round[r]);
		weft_wg_wait(&churn_round[r]); /* everyone's have: P*C alive now */
		for (long j = 0; j < c; j++) {
			long v = (r * churn_p + pp.p) * c + j;
			if (weft_chan_send(pp.in[j], &v))
				fail("churn parent send", j);
			weft_chan_release(pp.in[j]);
		}
		for (long j = 0; j < c; j++) {
			long v;
			if (weft_chan_recv(pp.reply, &v))
				fail("churn parent recv", j);
			sum += v;
		}
	}
	weft_chan_release(pp.reply);
	free(pp.in);
	free(pp.slots);
	atomic_fetch_add_explicit(&churn_sum, sum, memory_order_relaxed);
	weft_wg_done(&churn_done);
	return NULL;
}

/* One churn of p x c x r; returns its wall time (fails on a wrong sum). */
static weft_time_t churn_run(long p, long c, long r)
{
	churn_p = p;
	churn_c = c;
	churn_r = r;
	atomic_store(&churn_sum, 0);
	churn_round = malloc((size_t)r * sizeof *churn_round);
	if (!churn_round)
		fail("malloc", 0);
	for (long i = 0; i < r; i++) {
		weft_wg_init(&churn_round[i]);
		weft_wg_add(&churn_round[i], p);
	}
	weft_wg_add(&churn_done, p);
	weft_time_t t0 = weft_now();
	for (long i = 0; i < p; i++)
		if (weft_spawn(NULL, churn_parent_fn, (void *)(intptr_t)i, &(weft_spawn_opts_t){.detached = true}))
			fail("spawn parent", i);
	weft_wg_wait(&churn_done);
	weft_time_t d = weft_now() - t0;
	long long n = (long long)p * c * r;
	if (atomic_load(&churn_sum) != n * n)
		fail("churn sum", atomic_load(&churn_sum));
	free(churn_round);
	return d;
}

/* VmRSS at rest: once it has stayed within 1 % for two seconds (readings
 * 100 ms apart), or after 10 s. Two seconds: longer than the runtime waits
 * before it gives memory that sat unused back (the stacks' release window,
 * sched/stack.h), so the baseline is a program at rest, not one still
 * holding the warm-up's stacks. */
static long churn_settled_rss(void)
{
	long ref = proc_kb("VmRSS");
	int stable = 0;
	for (int k = 0; k < 100 && stable < 20; k++) {
		weft_sleep(100 * WEFT_MSEC);
		long now = proc_kb("VmRSS");
		if (labs(now - ref) * 100 <= ref) {
			stable++;
		} else {
			ref = now;
			stable = 0;
		}
	}
	return proc_kb("VmRSS");
}

static void bench_churn(void)
{
	const char *var = getenv("WEFT_BENCH_VARIANT");
	if (!var || !*var)
		stackful = true; /* this workload is about stacks: coroutines unless asked */
	long p = arg(0, 1000), c = arg(1, 100), r = arg(2, 10);
	/* The idle baseline: the program at rest after a warm-up churn of 1 %
	 * of the spike (one round, P/100 parents), so that code, allocator
	 * arenas and runtime structures are what they are in a program that
	 * has run, not a fresh process. */
	churn_run(p >= 100 ? p / 100 : 1, c, 1);
	long rss_base = churn_settled_rss();
	weft_time_t d = churn_run(p, c, r);
	weft_time_t t1 = weft_now();
	long rss_peak = proc_kb("VmHWM");
	long long n = (long long)p * c * r;
	/* Memory after the spike: read VmRSS now and after each 100 ms sleep, up
	 * to 5 s, until it is back under 1.2x the baseline. */
	long rss_after = 0;
	double settle_s = 5.0;
	bool settled = false;
	for (int k = 0; k <= 50; k++) {
		if (k)
			weft_sleep(100 * WEFT_MSEC);
		rss_after = proc_kb("VmRSS");
		if (rss_after * 5 <= rss_base * 6) {
			settle_s = (double)(weft_now() - t1) / 1e9;
			settled = true;
			break;
		}
	}
	char ns[64], extra[192];
	snprintf(ns, sizeof ns, "%ldx%ldx%ld", p, c, r);
	snprintf(extra, sizeof extra, " rss_base_kb=%ld rss_peak_kb=%ld rss_after_kb=%ld settle_s=%.3f settled=%d",
		 rss_base, rss_peak, rss_after, settle_s, settled);
	report("churn", ns, n, d, extra);
}

/* ------------------------------------------------------------ echo */

/* The TCP echo server of bench/peers/README.md: one task per connection,
 * TCP_NODELAY set; each reads up to 4096 bytes and writes back exactly
 * those until end of file or an error. Serves until killed.
 *
 * variant=stackless (the default, like Tokio's tasks): the main coroutine
 * accepts and spawns a detached stackless task per connection whose state
 * (the 4096-byte buffer included, as in Tokio's future) is one allocation.
 * variant=stackful: the io module's server helper, a coroutine per
 * connection with the buffer on its stack. */
static void echo_conn(int fd, void *ctx)
{
	(void)ctx;
	char buf[4096];
	for (;;) {
		ssize_t n = weft_read(fd, buf, sizeof buf, WEFT_NEVER);
		if (n <= 0 || weft_write_all(fd, buf, (size_t)n, WEFT_NEVER, NULL) != n)
			return;
	}
}

typedef struct echo_conn_st {
	weft_op_t op;
	int fd;
	bool writing; /* writing buf[off..n) back */
	size_t n, off;
	char buf[4096];
} echo_conn_st;

static weft_step_t echo_conn_step(void *a, void **res)
{
	echo_conn_st *c = a;
	for (;;) {
		if (!c->writing) {
			ssize_t n = weft_read_step(c->fd, c->buf, sizeof c->buf, WEFT_NEVER, &c->op);
			if (n == -EINPROGRESS)
				return WEFT_STEP_PARKED;
			if (n <= 0)
				break;
			c->n = (size_t)n;
			c->off = 0;
			c->writing = true;
		}
		ssize_t w = weft_write_step(c->fd, c->buf + c->off, c->n - c->off, WEFT_NEVER, &c->op);
		if (w == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		if (w <= 0)
			break;
		c->off += (size_t)w;
		if (c->off == c->n)
			c->writing = false;
	}
	/* The runtime does not touch the state after the step that returns
	 * DONE (weft/sched.h), so the task frees its own. */
	weft_close(c->fd);
	free(c);
	*res = NULL;
	return WEFT_STEP_DONE;
}

static void echo_serve_stackless(int lfd)
{
	static const weft_spawn_opts_t det = {.detached = true};
	for (;;) {
		int fd = weft_accept(lfd, NULL, NULL, WEFT_NEVER);
		if (fd == -EINTR || fd == -ECONNABORTED || fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS ||
		    fd == -ENOMEM) {
			if (fd != -EINTR && fd != -ECONNABORTED)
				weft_sleep(WEFT_MSEC); /* out of descriptors: let connections end */
			continue;
		}
		if (fd < 0)
			fail("accept", fd);
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		echo_conn_st *c = malloc(sizeof *c);
		if (!c) {
			weft_close(fd);
			continue;
		}
		*c = (echo_conn_st){.op = WEFT_OP_INIT, .fd = fd};
		int e = weft_spawn_step(NULL, echo_conn_step, c, &det);
		if (e) {
			weft_close(fd);
			free(c);
			if (e != -ENOMEM)
				fail("spawn", e);
		}
	}
}

static void bench_echo(void)
{
	long port = 0;
	if (g_argc > 2) {
		char *end;
		port = strtol(g_argv[2], &end, 10);
		if (*end || port < 0 || port > 65535)
			fail("bad port", port);
	}
	int lfd = weft_tcp_listen("127.0.0.1", (uint16_t)port, 0);
	if (lfd < 0)
		fail("listen", lfd);
	printf("port=%d pid=%d\n", weft_local_port(lfd), (int)getpid());
	fflush(stdout);
	if (!stackful)
		echo_serve_stackless(lfd);
	weft_server_t *srv;
	int r = weft_server_create(&srv, lfd, echo_conn, NULL, NULL);
	if (r == 0)
		r = weft_server_serve(srv);
	fail("echo server stopped", r);
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
	{"idle", bench_idle},
	{"pingpong", bench_pingpong},
	{"ring", bench_ring},
	{"fanin", bench_fanin},
	{"mutex", bench_mutex},
	{"echo", bench_echo},
	{"churn", bench_churn},
	{"proc_spawn", bench_proc_spawn},
	{"proc_spawn_coro", bench_proc_spawn_coro},
	{"proc_ring", bench_proc_ring},
	{"selective", bench_selective},
	{"mvar", bench_mvar},
};

/* ------------------------------------------------------------ the VM */

/* fib and binary_trees: the weft programs of bench/vm/ run through the
 * embedding API (weft/vm.h) on this thread - one worker, the default tier
 * (the interpreter) - timed around the one call, as the anchors time
 * their Lua and Erlang programs. */
#ifndef WEFT_BENCH_VM_DIR
#define WEFT_BENCH_VM_DIR "bench/vm"
#endif

static weft_vm_t *vm_load(const char *file)
{
	weft_vm_t *vm;
	int e = weft_vm_create(&vm, NULL);
	if (e)
		fail("vm create, error", e);
	char path[4096];
	const char *dir = getenv("WEFT_BENCH_VM_DIR");
	snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : WEFT_BENCH_VM_DIR, file);
	if ((e = weft_vm_load_file(vm, path))) {
		weft_vm_print_errors(vm, stderr);
		fail("vm load, error", e);
	}
	return vm;
}

static weft_vm_term_t *vm_call1(weft_vm_t *vm, const char *fn, long n, weft_time_t *ns)
{
	weft_vm_term_t arg = {.kind = WEFT_VM_INT, .i = n}, *res;
	weft_time_t t0 = weft_now();
	int e = weft_vm_call(vm, NULL, fn, &arg, 1, &res);
	*ns = weft_now() - t0;
	if (e) {
		if (e == 1 && res->kind == WEFT_VM_OTHER)
			fprintf(stderr, "raised: %s\n", res->str);
		fail("vm call, error", e);
	}
	return res;
}

static int bench_fib(void)
{
	long n = arg(0, 32);
	if (n < 1 || n > 40)
		fail("fib: N in 1..40, not", n);
	weft_vm_t *vm = vm_load("fib.wf");
	weft_time_t d;
	weft_vm_term_t *r = vm_call1(vm, "fib", n, &d);
	long long a = 0, b = 1;
	for (long i = 0; i < n; i++) {
		long long t = a + b;
		a = b;
		b = t;
	}
	if (r->kind != WEFT_VM_INT || r->i != a)
		fail("fib result", r->kind == WEFT_VM_INT ? r->i : -1);
	char ns[32], extra[64];
	snprintf(ns, sizeof ns, "%ld", n);
	snprintf(extra, sizeof extra, " result=%lld tier=interp", a);
	stackful = false;
	report("fib", ns, 2 * b - 1, d, extra);
	weft_vm_term_free(r);
	weft_vm_destroy(vm);
	return 0;
}

static long long tree_nodes(long d)
{
	return (1LL << (d + 1)) - 1;
}

static int bench_binary_trees(void)
{
	long n = arg(0, 16);
	if (n < 0 || n > 24)
		fail("binary_trees: N in 0..24, not", n);
	long maxd = n < 6 ? 6 : n;
	weft_vm_t *vm = vm_load("binary_trees.wf");
	weft_time_t d;
	weft_vm_term_t *r = vm_call1(vm, "run", maxd, &d);
	if (r->kind != WEFT_VM_TUPLE || r->n != 3 || r->items[0].kind != WEFT_VM_INT ||
	    r->items[1].kind != WEFT_VM_LIST || r->items[2].kind != WEFT_VM_INT)
		fail("binary_trees: result of kind", r->kind);
	if (r->items[0].i != tree_nodes(maxd + 1))
		fail("binary_trees: stretch check", r->items[0].i);
	long long ops = tree_nodes(maxd + 1) + tree_nodes(maxd);
	size_t k = 0;
	for (long depth = 4; depth <= maxd; depth += 2, k++) {
		long long want = (1LL << (maxd - depth + 4)) * tree_nodes(depth);
		weft_vm_term_t *t = k < r->items[1].n ? &r->items[1].items[k] : NULL;
		if (!t || t->kind != WEFT_VM_TUPLE || t->n != 2 || t->items[0].i != depth || t->items[1].i != want)
			fail("binary_trees: check at depth", depth);
		ops += want;
	}
	if (r->items[2].i != tree_nodes(maxd))
		fail("binary_trees: long-lived check", r->items[2].i);
	char ns[32], extra[96];
	snprintf(ns, sizeof ns, "%ld", maxd);
	snprintf(extra, sizeof extra, " check=%lld peak_rss_kb=%ld tier=interp", tree_nodes(maxd), proc_kb("VmHWM"));
	stackful = false;
	report("binary_trees", ns, ops, d, extra);
	weft_vm_term_free(r);
	weft_vm_destroy(vm);
	return 0;
}

/* compile: the compiler's speed. A generated program of about N lines
 * (functions of ten lines each: lets, a var, a counted loop, an if, a
 * match with a guard, a call, a map) is compiled - lexed, parsed,
 * compiled to bytecode - by weft_vm_load_source; ns_per_op is ns per
 * line. bench/peers/lua/compile.lua generates the same program in Lua and
 * times Lua's load() on it. */
static int bench_compile(void)
{
	long lines = arg(0, 200000);
	if (lines < 10 || lines > 10000000)
		fail("compile: LINES in 10..1e7, not", lines);
	long nfn = lines / 10;
	size_t cap = (size_t)nfn * 400 + 64, len = 0;
	char *src = malloc(cap);
	if (!src)
		fail("malloc", (long long)cap);
	for (long i = 0; i < nfn; i++)
		len += (size_t)snprintf(src + len, cap - len,
					"fn f%ld(a, b) {\n"
					"  let x = a * %ld + b\n"
					"  var acc = []\n"
					"  for k in 0..x { acc = [k * 2 | acc] }\n"
					"  if x > 10 { acc = [x | acc] } else { acc = [] }\n"
					"  match (a, b) {\n"
					"    (0, _) -> len(acc)\n"
					"    (n, m) if n > m -> n - m + f%ld(m, n)\n"
					"    _ -> %%{\"k\" => x, :v => acc}[:v]\n"
					"  }\n}\n",
					i, i, i ? i - 1 : 0);
	weft_vm_t *vm;
	int e = weft_vm_create(&vm, NULL);
	if (e)
		fail("vm create, error", e);
	/* the prelude first, so that only the program is timed */
	if ((e = weft_vm_load_source(vm, "empty.wf", "", 0)))
		fail("vm load, error", e);
	weft_time_t t0 = weft_now();
	e = weft_vm_load_source(vm, "generated.wf", src, len);
	weft_time_t d = weft_now() - t0;
	if (e) {
		weft_vm_print_errors(vm, stderr);
		fail("compile, error", e);
	}
	char ns[32], extra[64];
	snprintf(ns, sizeof ns, "%ld", nfn * 10);
	snprintf(extra, sizeof extra, " lines_per_s=%.0f bytes=%zu", (double)(nfn * 10) * 1e9 / (double)d, len);
	stackful = false;
	report("compile", ns, nfn * 10, d, extra);
	weft_vm_destroy(vm);
	free(src);
	return 0;
}

static void *bench_main(void *a)
{
	void (*fn)(void) = (void (*)(void))a;
	fn();
	const char *st = getenv("WEFT_BENCH_STATS"); /* diagnostics: the runtime's counters, on stderr */
	if (st && *st == '1')
		weft_stats_print(NULL, 2);
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
		fprintf(stderr, " exec_spawn fib binary_trees compile\n");
		return 2;
	}
	const char *v = getenv("WEFT_BENCH_VARIANT");
	if (v && strcmp(v, "stackful") == 0)
		stackful = true;
	else if (v && *v && strcmp(v, "stackless") != 0) {
		fprintf(stderr, "FAIL: WEFT_BENCH_VARIANT must be stackless or stackful\n");
		return 2;
	}
	if (strcmp(argv[1], "exec_spawn") == 0)
		return bench_exec_spawn();
	if (strcmp(argv[1], "fib") == 0)
		return bench_fib();
	if (strcmp(argv[1], "compile") == 0)
		return bench_compile();
	if (strcmp(argv[1], "binary_trees") == 0)
		return bench_binary_trees();
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
