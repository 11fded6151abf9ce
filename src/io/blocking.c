/* blocking.c - the blocking pool: threads that run blocking calls while the
 * calling task parks.
 *
 * Pieces
 * ------
 * One pool per runtime, created on first use and attached to the runtime
 * (weft_runtime_attach), destroyed at weft_runtime_stop. The threads, the
 * FIFO and the grow and shrink rules are src/base/tpool.c's (its design
 * comment states their invariants: no lost job, no exit while jobs queue,
 * dead threads joined); this file adds the runtime attachment, the limits,
 * the statistics and the job of a parked caller. A job lives on the
 * caller's stack: fn, arg, the result, the caller's waker and a done flag.
 *
 * Invariants
 * ----------
 *  - A job's memory belongs to its caller, who may return (freeing the
 *    stack) as soon as it is woken. So the pool thread writes the result,
 *    copies the waker, sets done (release), and afterwards touches only
 *    the waker (its parker outlives every wait).
 *  - The caller does not return before done: it parks in an uncancellable
 *    wait (weft_park_prepare_uncancellable), which only the pool thread's
 *    unpark ends. A cancel that comes meanwhile shows at the task's next
 *    ordinary wait (or its next weft_blocking, which checks first).
 *  - destroy runs after every task has ended, so no job can be queued or
 *    running then.
 */
#include <weft/io.h>

#include <assert.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "../base/tpool.h"

#define POOL_MAX_DEFAULT 128
#define POOL_MAX_LIMIT 4096
#define POOL_IDLE_DEFAULT (10 * WEFT_SEC)

struct job {
	weft__tpool_job base;
	weft_fn_t fn;
	void *arg;
	void *result;
	weft_waker_t waker;
	atomic_bool done; /* release: result is written before */
};

static void pool_destroy(void *ctx);
static const weft_runtime_ext_t pool_key = {.name = "io.blocking", .destroy = pool_destroy};

/* On a pool thread: run the call. */
static void job_run(weft__tpool_job *base)
{
	struct job *j = (struct job *)base;
	j->result = j->fn(j->arg);
}

/* Under the pool's lock, the job counted: hand the result over, wake the
 * caller. */
static void job_complete(weft__tpool_job *base)
{
	struct job *j = (struct job *)base;
	weft_waker_t w = j->waker;
	atomic_store_explicit(&j->done, true, memory_order_release);
	weft_unpark(w, 0); /* j may be gone now; w is a copy */
}

static int env_max(void)
{
	const char *s = getenv("WEFT_BLOCKING_MAX");
	if (!s || !*s)
		return POOL_MAX_DEFAULT;
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || v < 1 || v > POOL_MAX_LIMIT) {
		fprintf(stderr, "weft: ignoring WEFT_BLOCKING_MAX=%s (not in 1..%d)\n", s, POOL_MAX_LIMIT);
		return POOL_MAX_DEFAULT;
	}
	return (int)v;
}

static struct weft__tpool *pool_new(void)
{
	return weft__tpool_create("weft-blocking", (uint32_t)env_max(), POOL_IDLE_DEFAULT, 0);
}

static void pool_destroy(void *ctx)
{
	weft__tpool_destroy(ctx);
}

/* rt's pool, created and attached on first use. */
static int pool_get(weft_runtime_t *rt, struct weft__tpool **out)
{
	if (!rt)
		return -EINVAL;
	struct weft__tpool *p = weft_runtime_attached(rt, &pool_key);
	if (!p) {
		struct weft__tpool *fresh = pool_new();
		if (!fresh)
			return -ENOMEM;
		int e = weft_runtime_attach(rt, &pool_key, fresh);
		if (e == 0) {
			p = fresh;
		} else {
			weft__tpool_destroy(fresh);
			if (e != -EBUSY)
				return e;
			p = weft_runtime_attached(rt, &pool_key); /* lost the race */
		}
	}
	*out = p;
	return 0;
}

int weft_blocking(weft_fn_t fn, void *arg, void **result)
{
	if (!fn)
		return -EINVAL;
	if (weft_self() == 0) {
		void *r = fn(arg);
		if (result)
			*result = r;
		return 0;
	}
	if (!weft_can_park())
		return -EWOULDBLOCK;
	if (weft_cancelled())
		return -ECANCELED;
	struct weft__tpool *p;
	int e = pool_get(weft_runtime_current(), &p);
	if (e)
		return e;
	struct job j = {.base.run = job_run, .base.complete = job_complete, .fn = fn, .arg = arg};
	atomic_init(&j.done, false);
	j.waker = weft_park_prepare_uncancellable();
	e = weft__tpool_submit(p, &j.base);
	if (e)
		return e;
	int r = weft_park(j.waker, WEFT_NEVER);
	/* Only the pool thread ends this wait, after setting done (acquire:
	 * j.result was written before). */
	bool done = atomic_load_explicit(&j.done, memory_order_acquire);
	assert(r == 0 && done);
	(void)r, (void)done;
	if (result)
		*result = j.result;
	return 0;
}

int weft_blocking_set_limits(weft_runtime_t *rt, int max_threads, weft_time_t idle)
{
	if (max_threads < 0 || max_threads > POOL_MAX_LIMIT || (idle != 0 && idle < WEFT_MSEC))
		return -EINVAL;
	struct weft__tpool *p;
	int e = pool_get(rt ? rt : weft_runtime_current(), &p);
	if (e)
		return e;
	weft__tpool_set_limits(p, (uint32_t)max_threads, idle);
	return 0;
}

int weft_blocking_stats(weft_runtime_t *rt, weft_blocking_stats_t *out)
{
	if (!rt)
		rt = weft_runtime_current();
	if (!rt || !out)
		return -EINVAL;
	int w = weft_runtime_workers(rt);
	if (w < 0)
		return w; /* stopped: -ESHUTDOWN */
	struct weft__tpool *p = weft_runtime_attached(rt, &pool_key);
	if (!p) {
		*out = (weft_blocking_stats_t){.max = (uint32_t)env_max()};
		return 0;
	}
	weft__tpool_stats st;
	weft__tpool_read_stats(p, &st);
	*out = (weft_blocking_stats_t){
		.threads = st.threads,
		.idle = st.idle,
		.max = st.max,
		.queued = st.queued,
		.running = st.running,
		.completed = st.completed,
	};
	return 0;
}
