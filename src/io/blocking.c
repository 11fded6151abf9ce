/* blocking.c - the blocking pool: threads that run blocking calls while the
 * calling task parks, and the _step form of that (weft_blocking_step), on
 * which the io module's other pool calls (files, name lookups) build.
 *
 * Pieces
 * ------
 * One pool per runtime, created on first use and attached to the runtime
 * (weft_runtime_attach), destroyed at weft_runtime_stop. The threads, the
 * FIFO and the grow and shrink rules are src/base/tpool.c's (its design
 * comment states their invariants: no lost job, no exit while jobs queue,
 * dead threads joined, a job's owner holding the pool's lock sees it
 * queued, taken or completed); this file adds the runtime attachment, the
 * limits, the statistics and the jobs of parked callers. A job holds fn,
 * its argument (then its result), the caller's waker, the job's state and
 * the pool's part (its links); it lives on the caller's stack
 * (weft_blocking, and the _step forms in coroutines), or in a stackless
 * caller's op (struct job is that op's layout: 64 bytes, all of the
 * module's part of it).
 *
 * Invariants (every job's state and waker are guarded by the pool's lock,
 * weft__tpool_lock, under which the pool takes a job off its queue and
 * calls job_complete)
 * ----------
 *  - A job goes QUEUED -> RUNNING (a thread took it off the queue: the
 *    pool's part is no longer `queued`) -> DONE (its result is in the
 *    slot; job_complete sets it), or QUEUED -> off the queue again,
 *    withdrawn by its caller (weft__tpool_remove_locked: a _step form's
 *    deadline or cancellation; or the submit failing, when the pool takes
 *    it back itself): then fn never runs. The state byte says QUEUED or
 *    DONE; RUNNING is QUEUED no longer on the queue. Nothing withdraws a
 *    RUNNING job: fn cannot be interrupted and may use the caller's memory
 *    (arg), so the caller does not return before DONE.
 *  - A job's memory belongs to its caller, who may return (freeing the
 *    stack, or the op) as soon as it sees DONE. So job_run writes the
 *    result (the caller reads the slot only at DONE, or when it withdrew
 *    the job), and job_complete, under the lock, copies the waker, sets
 *    DONE (release) and afterwards touches only the waker (its parker
 *    outlives every wait). A caller that opens a new wait for a RUNNING
 *    job (a _step form whose first wait a deadline or a cancellation
 *    ended) stores its waker under the lock, where job_complete reads it.
 *  - weft_blocking does not return before DONE: it parks in an
 *    uncancellable wait (weft_park_prepare_uncancellable), which only the
 *    pool thread's unpark ends. A cancel that comes meanwhile shows at the
 *    task's next ordinary wait (or its next weft_blocking, which checks
 *    first). The _step forms wait cancellably while the job is QUEUED (a
 *    deadline or a cancel withdraws it) and uncancellably, without a
 *    deadline, once it is RUNNING.
 *  - destroy runs after every task has ended, so no job can be queued or
 *    running then (tpool asserts it).
 *
 * Under the simulation the pool is modelled, not used (a sim runs on one
 * thread, and a pool thread's timing is no function of the seed): fn runs
 * at once in the calling task, on the sim's owner thread, then the task
 * waits uncancellably, as a caller whose job runs does, for a latency the
 * sim's seed draws in [0, 1 ms) of virtual time (sim_call, sim_submit). So
 * completions interleave with the other tasks at seeded points. The
 * cancellation rules hold: a task cancelled before the call gets
 * -ECANCELED and fn never runs; one cancelled during "the call" gets fn's
 * result and the cancel at its next wait. What the model changes: fn must
 * not wait for another task of the sim (its thread is the only one the
 * sim has); docs/exec.md says so. A job of the model never reaches the
 * pool: its state goes straight to DONE, so weft__blocking_finish hands
 * its result over before it looks for a pool.
 */
#include "io_impl.h"

#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/rand.h"
#include "../base/tpool.h"

#define POOL_MAX_DEFAULT 128
#define POOL_MAX_LIMIT 4096
#define POOL_IDLE_DEFAULT (10 * WEFT_SEC)

/* A job; in a stackless caller's op, its first byte is the op's call id
 * (weft_step_begin), which the pool leaves alone. */
struct job {
	uint8_t call;	       /* the _step call's id, in an op; 0 on a stack */
	_Atomic uint8_t state; /* JOB_QUEUED, then JOB_DONE (under the pool's lock) */
	weft__tpool_job base;  /* the pool's: the queue's links */
	weft_fn_t fn;
	void *slot;	    /* fn's argument until it runs, then its result */
	weft_waker_t waker; /* the caller's current wait */
};

enum {
	JOB_QUEUED = 1, /* submitted: on the queue (the caller may withdraw it) or, off it, running */
	JOB_RUNNING,	/* not stored: a QUEUED job a thread took off the queue (early_end's answer) */
	JOB_DONE	/* fn has returned; the slot holds its result (release) */
};

_Static_assert(sizeof(struct job) <= 56, "a pool op is at most 56 bytes");
_Static_assert(sizeof(struct job) <= sizeof(((weft_op_t *)0)->opaque),
	       "weft_op_t too small (its obj is the protocol's)");
_Static_assert(_Alignof(struct job) <= _Alignof(weft_op_t), "weft_op_t under-aligned");
_Static_assert(offsetof(struct job, call) == 0, "an op's first byte is its call's id");

/* The end of a modelled call: now plus a latency from the seeded stream
 * of the sim's owner thread (base/rand.h). */
static weft_time_t sim_done_at(void)
{
	return weft_now() + (weft_time_t)(weft__trand() % (uint64_t)WEFT_MSEC);
}

/* A coroutine's modelled call (its caller checked cancellation): fn here,
 * then the latency. Always 0. */
static int sim_call(weft_fn_t fn, void *arg, void **result)
{
	void *r = fn(arg);
	weft_waker_t w = weft_park_prepare_uncancellable();
	int e = weft_park(w, sim_done_at());
	/* Nobody else holds w, and no cancel ends it: only the deadline (or
	 * no memory to arm it, which ends the latency early). */
	assert(e == -ETIMEDOUT || e == -ENOMEM);
	(void)e;
	if (result)
		*result = r;
	return 0;
}

static inline struct job *job_of(weft__tpool_job *base)
{
	return (struct job *)((char *)base - offsetof(struct job, base));
}

static void pool_destroy(void *ctx);
static const weft_runtime_ext_t pool_key = {.name = "io.blocking", .destroy = pool_destroy};

/* On a pool thread, without the lock: run the call. */
static void job_run(weft__tpool_job *base)
{
	struct job *j = job_of(base);
	assert(atomic_load_explicit(&j->state, memory_order_relaxed) == JOB_QUEUED);
	j->slot = j->fn(j->slot);
}

/* Under the pool's lock, the job counted: hand the result over, wake the
 * caller's current wait. */
static void job_complete(weft__tpool_job *base)
{
	struct job *j = job_of(base);
	weft_waker_t w = j->waker; /* the caller's current wait (under the lock) */
	atomic_store_explicit(&j->state, JOB_DONE, memory_order_release);
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

static weft__tpool *pool_new(void)
{
	return weft__tpool_create("weft-blocking", (uint32_t)env_max(), POOL_IDLE_DEFAULT, 0, job_run, job_complete);
}

static void pool_destroy(void *ctx)
{
	weft__tpool_destroy(ctx);
}

/* rt's pool, created and attached on first use. */
static int pool_get(weft_runtime_t *rt, weft__tpool **out)
{
	if (!rt)
		return -EINVAL;
	weft__tpool *p = weft_runtime_attached(rt, &pool_key);
	if (!p) {
		weft__tpool *fresh = pool_new();
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

/* Queue j (fn and slot set, and the waker the pool thread wakes). 0, or
 * an error with j not queued. */
static int submit(weft__tpool *p, struct job *j)
{
	atomic_store_explicit(&j->state, JOB_QUEUED, memory_order_relaxed);
	return weft__tpool_submit(p, &j->base);
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
	if (weft__io_sim())
		return sim_call(fn, arg, result);
	weft__tpool *p;
	int e = pool_get(weft_runtime_current(), &p);
	if (e)
		return e;
	struct job j = {.fn = fn, .slot = arg};
	j.waker = weft_park_prepare_uncancellable();
	e = submit(p, &j);
	if (e)
		return e;
	int r = weft_park(j.waker, WEFT_NEVER);
	/* Only the pool thread ends this wait, after setting DONE (acquire:
	 * the result was written before). */
	uint8_t st = atomic_load_explicit(&j.state, memory_order_acquire);
	assert(r == 0 && st == JOB_DONE);
	(void)r, (void)st;
	if (result)
		*result = j.slot;
	return 0;
}

/* ------------------------------------------------------------ the _step forms */

/* A job whose caller's wait ended (r < 0 early: its deadline, or a
 * cancellation), under the pool's lock: withdrawn if still on the queue
 * (returns r), JOB_RUNNING if a thread took it (the caller must wait for
 * its end), 0 if it is DONE (the result was handed over at that moment). */
static int early_end(weft__tpool *p, struct job *j, int r)
{
	uint8_t st = atomic_load_explicit(&j->state, memory_order_relaxed);
	/* Only the pool thread ends the wait with 0, after setting DONE. */
	assert(st == JOB_DONE || r < 0);
	if (st == JOB_DONE)
		return 0;
	assert(st == JOB_QUEUED);
	if (weft__tpool_remove_locked(p, &j->base))
		return r; /* fn never runs */
	return JOB_RUNNING;
}

int weft__blocking_run(weft_fn_t fn, void *arg, void **result, weft_time_t deadline)
{
	assert(weft_can_park());
	if (weft__io_deadline_passed(deadline))
		return -ETIMEDOUT; /* fn would have to wait for a thread: it does not run */
	if (weft_self() == 0) {
		void *r = fn(arg); /* a plain thread runs it itself */
		if (result)
			*result = r;
		return 0;
	}
	if (weft_cancelled())
		return -ECANCELED;
	if (weft__io_sim())
		return sim_call(fn, arg, result); /* fn runs at once: no deadline can withdraw it */
	weft__tpool *p;
	int e = pool_get(weft_runtime_current(), &p);
	if (e)
		return e;
	struct job j = {.fn = fn, .slot = arg};
	j.waker = weft_park_prepare();
	assert(j.waker.parker != NULL); /* a coroutine can always open a wait */
	e = submit(p, &j);
	if (e)
		return e;
	int r = weft_park(j.waker, deadline);
	if (r < 0) {
		weft__tpool_lock(p);
		r = early_end(p, &j, r);
		if (r == JOB_RUNNING) {
			/* fn runs and may use arg: wait for its end, whatever comes. */
			j.waker = weft_park_prepare_uncancellable();
			weft__tpool_unlock(p);
			r = weft_park(j.waker, WEFT_NEVER);
			assert(r == 0);
		} else {
			weft__tpool_unlock(p);
		}
		if (r < 0)
			return r; /* withdrawn: fn did not run */
	}
	/* Woken by the pool thread after DONE (acquire: the result before). */
	uint8_t st = atomic_load_explicit(&j.state, memory_order_acquire);
	assert(st == JOB_DONE);
	(void)st;
	if (result)
		*result = j.slot;
	return 0;
}

/* A stackless task's modelled call: fn here, the job DONE, then a
 * registration that only the latency ends. -EINPROGRESS. */
static int sim_submit(struct job *j, weft_fn_t fn, void *arg)
{
	j->fn = fn;
	j->slot = fn(arg);
	atomic_store_explicit(&j->state, JOB_DONE, memory_order_relaxed);
	j->waker = weft_park_prepare_uncancellable();
	assert(j->waker.parker != NULL); /* weft_step_begin let the task open a wait */
	if (weft_park_deadline(j->waker, sim_done_at()) < 0)
		weft_unpark(j->waker, 0); /* no memory for the timer: no latency */
	int e = weft_step_register((weft_op_t *)j);
	assert(e == -EINPROGRESS); /* weft_step_begin let the task register */
	return e;
}

int weft__blocking_submit(weft_op_t *op, weft_fn_t fn, void *arg, weft_time_t deadline)
{
	/* weft_step_begin returned 0 in a stackless task: op is the call's. */
	assert(!weft_can_park() && *(const uint8_t *)op != 0);
	if (weft_cancelled())
		return -ECANCELED;
	if (weft__io_deadline_passed(deadline))
		return -ETIMEDOUT;
	if (weft__io_sim())
		return sim_submit((struct job *)op, fn, arg);
	weft__tpool *p;
	int e = pool_get(weft_runtime_current(), &p);
	if (e)
		return e;
	struct job *j = (struct job *)op;
	j->fn = fn;
	j->slot = arg;
	j->waker = weft_park_prepare();
	assert(j->waker.parker != NULL); /* weft_step_begin let the task open a wait */
	/* Armed before the job is queued: without a timer, nothing was. */
	e = weft_park_deadline(j->waker, deadline);
	if (e)
		return e;
	e = submit(p, j);
	if (e)
		return e;
	e = weft_step_register(op);
	assert(e == -EINPROGRESS); /* weft_step_begin let the task register */
	return e;
}

int weft__blocking_finish(weft_op_t *op, void **slot)
{
	struct job *j = (struct job *)op;
	int r = weft_park_result();
	if (atomic_load_explicit(&j->state, memory_order_acquire) == JOB_DONE) {
		/* fn has returned (a modelled job always has): the result is
		 * the call's, whatever ended the wait, and the pool is done with
		 * j (job_complete touches only its copy of the waker after). */
		*slot = j->slot;
		return 0;
	}
	weft__tpool *p = weft_runtime_attached(weft_runtime_current(), &pool_key);
	/* The job went to the pool of the task's runtime, which lives while
	 * the task does. */
	assert(p != NULL);
	weft__tpool_lock(p);
	if (r < 0)
		r = early_end(p, j, r);
	else
		assert(atomic_load_explicit(&j->state, memory_order_relaxed) == JOB_DONE);
	if (r == JOB_RUNNING) {
		/* fn runs and may use arg: register again, to be woken by its
		 * end and nothing else (no deadline, no cancellation). */
		j->waker = weft_park_prepare_uncancellable();
		assert(j->waker.parker != NULL); /* the registration has just ended */
		weft__tpool_unlock(p);
		r = weft_step_register(op);
		assert(r == -EINPROGRESS);
		return r;
	}
	*slot = j->slot; /* fn's result, or (withdrawn) its argument */
	weft__tpool_unlock(p);
	return r;
}

int weft__pool_step(weft_fn_t job, void *args, size_t size, weft_time_t deadline, weft_op_t *op, uint8_t call,
		    const void *obj)
{
	int b = weft_step_begin(op, call, obj);
	if (b < 0)
		return b;
	if (b == WEFT_STEP_BLOCKS)
		return weft__blocking_run(job, args, NULL, deadline);
	void *rec;
	int r;
	if (b == 1) {
		r = weft__blocking_finish(op, &rec);
		if (r == -EINPROGRESS)
			return r;
		assert(rec != NULL); /* job returns rec: the slot holds it, run or not */
		if (r == 0)
			memcpy(args, rec, size);
		free(rec);
		return r;
	}
	/* The job may run after this call has returned: it works on a copy. */
	rec = malloc(size);
	if (!rec)
		return -ENOMEM;
	memcpy(rec, args, size);
	r = weft__blocking_submit(op, job, rec, deadline);
	if (r != -EINPROGRESS)
		free(rec); /* not queued */
	return r;
}

int weft_blocking_step(weft_fn_t fn, void *arg, void **result, weft_time_t deadline, weft_op_t *op)
{
	if (!fn || !op)
		return -EINVAL;
	int b = weft_step_begin(op, WEFT__IO_BLOCKING_STEP, (const void *)(uintptr_t)fn);
	if (b < 0)
		return b;
	if (b == WEFT_STEP_BLOCKS)
		return weft__blocking_run(fn, arg, result, deadline);
	void *slot;
	int r = b == 1 ? weft__blocking_finish(op, &slot) : weft__blocking_submit(op, fn, arg, deadline);
	if (r == 0 && result)
		*result = slot;
	return r;
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
