/* threads.c - the threads executor: tasks are jobs on a pool of plain OS
 * threads (src/base/tpool.c), handles name records in a table of the
 * executor's own.
 *
 * Records
 * -------
 * A task's record holds fn, arg, its result, its state, its handle's
 * state, a cancel flag and a wait queue for its waiter. Records live in
 * chunks that are freed only with the executor, and go back to a free
 * list when their last reference goes: the runner's (until the task has
 * ended and its waiter has been woken) and the handle's (until the wait
 * that took the result, or the detach). The id is gen << 32 | slot: a
 * record that has been reused has another gen, so a stale id is -ESRCH.
 *
 * Everything of a record but its result's hand-over is under x->mu (one
 * mutex per executor: this backend has no speed bar, it is for code that
 * wants plain threads). Lock order: x->mu, then the pool's lock (cancel
 * takes a queued job back out under x->mu), then a wait queue's spinlock.
 *
 * States: TIMER (spawn_at: in the timer list until its time) -> QUEUED (in
 * the pool's FIFO) -> RUNNING (a pool thread took it) -> DONE. A cancel
 * of a TIMER or QUEUED record takes it out (tpool_remove says whether the
 * pool had taken it already) and ends it with the result -ECANCELED; a
 * RUNNING one only gets the flag that weft_exec_cancelled() reads.
 *
 * The wait: under x->mu, a waiter either sees DONE or pushes its node on
 * the record's queue; the runner sets DONE under x->mu and wakes the queue
 * after unlocking, so no completion goes unseen. The runner's reference is
 * dropped only after that wake, so the queue outlives it.
 */
#include <weft/executors.h>
#include <weft/time.h>

#include <assert.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/tpool.h"

#define CHUNK 256
#define MAX_THREADS_DEFAULT 128
#define MAX_THREADS_LIMIT 4096
#define IDLE_DEFAULT (10 * WEFT_SEC)
#define STACK_MIN (64 * 1024)

static const char threads_name[] = "threads";

enum { ST_TIMER, ST_QUEUED, ST_RUNNING, ST_DONE };
enum { H_LIVE, H_DETACHED, H_WAITING, H_GONE };

struct tx;

struct rec {
	weft__tpool_job job; /* first: the pool's job is the record */
	struct tx *x;
	weft_fn_t fn;
	void *arg;
	void *result;
	weft_time_t at;		/* TIMER: when */
	struct rec *next_timer; /* TIMER: the list, by at */
	struct rec *next_free;
	uint32_t gen, slot;
	int state, handle, refs; /* under x->mu */
	bool used;		 /* under x->mu: not on the free list */
	_Atomic bool cancelled;
	weft_waitq_t q;
};

struct tx {
	pthread_mutex_t mu;
	pthread_cond_t idle_cv;	 /* live reached 0 while stopping */
	pthread_cond_t timer_cv; /* the timer list's head changed; stopping */
	weft__tpool *pool;
	struct rec **chunks; /* under mu */
	uint32_t nchunks, cap;
	struct rec *free_recs;
	struct rec *timers; /* sorted by at */
	uint64_t live;	    /* records whose runner has not finished */
	bool stopping, timer_started, timer_stop;
	pthread_t timer;
};

/* The record the calling pool thread runs, if any. */
static _Thread_local struct rec *cur_rec;

/* The op of a stackless waiter: its node lives there while it waits. */
typedef struct exec_op {
	uint8_t call;
	weft_waitq_node_t n;
} exec_op;
_Static_assert(sizeof(exec_op) <= sizeof(((weft_op_t *)0)->opaque), "weft_op_t too small");
_Static_assert(offsetof(exec_op, call) == 0, "an op's first byte is its call's id");
#define STEP_WAIT (WEFT_STEP_ID_EXEC + 1)

static inline uint64_t rec_id(const struct rec *r)
{
	return (uint64_t)r->gen << 32 | r->slot;
}

/* Under mu. */
static struct rec *lookup(struct tx *x, uint64_t id)
{
	uint32_t slot = (uint32_t)id, gen = (uint32_t)(id >> 32);
	if (slot / CHUNK >= x->nchunks)
		return NULL;
	struct rec *r = &x->chunks[slot / CHUNK][slot % CHUNK];
	return r->used && r->gen == gen ? r : NULL;
}

/* Under mu: a fresh record, or NULL (out of memory). */
static struct rec *rec_new(struct tx *x)
{
	if (!x->free_recs) {
		if (x->nchunks == x->cap) {
			uint32_t cap = x->cap ? 2 * x->cap : 4;
			if ((uint64_t)cap * CHUNK > UINT32_MAX)
				return NULL;
			struct rec **c = realloc(x->chunks, cap * sizeof *c);
			if (!c)
				return NULL;
			x->chunks = c;
			x->cap = cap;
		}
		struct rec *c = calloc(CHUNK, sizeof *c);
		if (!c)
			return NULL;
		for (int i = CHUNK - 1; i >= 0; i--) {
			c[i].x = x;
			c[i].slot = x->nchunks * CHUNK + (uint32_t)i;
			c[i].next_free = x->free_recs;
			x->free_recs = &c[i];
		}
		x->chunks[x->nchunks++] = c;
	}
	struct rec *r = x->free_recs;
	x->free_recs = r->next_free;
	r->gen++;
	r->used = true;
	r->result = NULL;
	atomic_store_explicit(&r->cancelled, false, memory_order_relaxed);
	weft_waitq_init(&r->q);
	return r;
}

/* Under mu: drop a reference; the last one frees r. */
static void rec_unref(struct tx *x, struct rec *r)
{
	assert(r->refs > 0);
	if (--r->refs > 0)
		return;
	assert(r->state == ST_DONE && r->q.len == 0);
	r->used = false;
	r->next_free = x->free_recs;
	x->free_recs = r;
}

/* Without mu: the task has ended with `result` (fn's, or -ECANCELED for
 * one that never ran): publish it, wake its waiter, drop the runner's
 * reference. */
static void rec_finish(struct tx *x, struct rec *r, void *result)
{
	pthread_mutex_lock(&x->mu);
	r->result = result;
	r->state = ST_DONE;
	pthread_mutex_unlock(&x->mu);
	weft_waitq_wake_all(&r->q, 0);
	pthread_mutex_lock(&x->mu);
	rec_unref(x, r);
	if (--x->live == 0 && x->stopping)
		pthread_cond_broadcast(&x->idle_cv);
	pthread_mutex_unlock(&x->mu);
}

static bool rec_cancelled(void *a)
{
	return atomic_load_explicit(&((struct rec *)a)->cancelled, memory_order_relaxed);
}

/* On a pool thread. */
static void rec_run(weft__tpool_job *j)
{
	struct rec *r = (struct rec *)j;
	struct tx *x = r->x;
	pthread_mutex_lock(&x->mu);
	r->state = ST_RUNNING;
	pthread_mutex_unlock(&x->mu);
	cur_rec = r;
	weft_exec_bind_cancel(rec_cancelled, r);
	void *result = r->fn(r->arg);
	weft_exec_bind_cancel(NULL, NULL);
	cur_rec = NULL;
	rec_finish(x, r, result);
}

/* Under mu: a record for fn(arg), its references counted, or an error. */
static int rec_start(struct tx *x, uint64_t *id, weft_fn_t fn, void *arg, struct rec **out)
{
	if (x->stopping)
		return -ESHUTDOWN;
	struct rec *r = rec_new(x);
	if (!r)
		return -ENOMEM;
	r->fn = fn;
	r->arg = arg;
	r->refs = id ? 2 : 1;
	r->handle = id ? H_LIVE : H_DETACHED;
	x->live++;
	if (id)
		*id = rec_id(r);
	*out = r;
	return 0;
}

/* Under mu: undo rec_start for a record that never reached the pool. */
static void rec_abandon(struct tx *x, struct rec *r)
{
	r->state = ST_DONE;
	r->refs = 1;
	rec_unref(x, r);
	x->live--;
}

static int th_spawn(void *ctx, uint64_t *id, weft_fn_t fn, void *arg, const weft_exec_spawn_opts_t *o)
{
	(void)o; /* names and stack sizes are for coroutines */
	struct tx *x = ctx;
	struct rec *r;
	pthread_mutex_lock(&x->mu);
	int e = rec_start(x, id, fn, arg, &r);
	if (e == 0) {
		r->state = ST_QUEUED;
		e = weft__tpool_submit(x->pool, &r->job);
		if (e < 0)
			rec_abandon(x, r);
	}
	pthread_mutex_unlock(&x->mu);
	return e;
}

static struct timespec mono_ts(weft_time_t t)
{
	return (struct timespec){.tv_sec = t / WEFT_SEC, .tv_nsec = t % WEFT_SEC};
}

/* The timer thread: moves spawn_at records to the pool at their time. */
static void *timer_main(void *a)
{
	struct tx *x = a;
	pthread_setname_np(pthread_self(), "weft-exec-timer");
	pthread_mutex_lock(&x->mu);
	while (!x->timer_stop) {
		struct rec *r = x->timers;
		if (!r) {
			pthread_cond_wait(&x->timer_cv, &x->mu);
			continue;
		}
		if (r->at > weft_now()) {
			struct timespec ts = mono_ts(r->at);
			pthread_cond_timedwait(&x->timer_cv, &x->mu, &ts);
			continue;
		}
		x->timers = r->next_timer;
		r->state = ST_QUEUED;
		if (weft__tpool_submit(x->pool, &r->job) < 0) {
			pthread_mutex_unlock(&x->mu);
			rec_finish(x, r, (void *)(intptr_t)-ENOMEM);
			pthread_mutex_lock(&x->mu);
		}
	}
	pthread_mutex_unlock(&x->mu);
	return NULL;
}

static int th_spawn_at(void *ctx, uint64_t *id, weft_time_t at, weft_fn_t fn, void *arg,
		       const weft_exec_spawn_opts_t *o)
{
	(void)o;
	struct tx *x = ctx;
	struct rec *r;
	pthread_mutex_lock(&x->mu);
	int e = rec_start(x, id, fn, arg, &r);
	if (e == 0 && !x->timer_started) {
		sigset_t all, old; /* the timer thread takes no signals (as the pool's threads) */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		int c = pthread_create(&x->timer, NULL, timer_main, x);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (c != 0) {
			rec_abandon(x, r);
			e = -ENOMEM;
		} else {
			x->timer_started = true;
		}
	}
	if (e == 0) {
		r->state = ST_TIMER;
		r->at = at;
		struct rec **pp = &x->timers;
		while (*pp && (*pp)->at <= at)
			pp = &(*pp)->next_timer;
		r->next_timer = *pp;
		*pp = r;
		if (x->timers == r)
			pthread_cond_signal(&x->timer_cv);
	}
	pthread_mutex_unlock(&x->mu);
	return e;
}

/* Under mu: take r, which has not run, out of the timer list or the pool.
 * True if it was still there (the caller ends it, after unlocking). */
static bool take_back(struct tx *x, struct rec *r)
{
	if (r->state == ST_TIMER) {
		struct rec **pp = &x->timers;
		while (*pp != r)
			pp = &(*pp)->next_timer;
		*pp = r->next_timer;
		return true;
	}
	return r->state == ST_QUEUED && weft__tpool_remove(x->pool, &r->job);
}

static int th_cancel(void *ctx, uint64_t id)
{
	struct tx *x = ctx;
	pthread_mutex_lock(&x->mu);
	struct rec *r = lookup(x, id);
	if (!r || r->state == ST_DONE) {
		pthread_mutex_unlock(&x->mu);
		return -ESRCH;
	}
	atomic_store_explicit(&r->cancelled, true, memory_order_relaxed);
	bool never_ran = take_back(x, r);
	pthread_mutex_unlock(&x->mu);
	if (never_ran)
		rec_finish(x, r, (void *)(intptr_t)-ECANCELED);
	return 0;
}

static int th_wait(void *ctx, uint64_t id, void **result, weft_time_t deadline, weft_op_t *op)
{
	struct tx *x = ctx;
	exec_op *o = NULL;
	int woke = 0;
	bool resumed = false;
	if (op) {
		int b = weft_step_begin(op, STEP_WAIT, (const void *)(uintptr_t)id);
		if (b < 0)
			return b;
		if (b != WEFT_STEP_BLOCKS)
			o = (exec_op *)op;
		if (b == 1) {
			resumed = true;
			woke = weft_park_result();
		}
	}
	pthread_mutex_lock(&x->mu);
	struct rec *r = lookup(x, id);
	if (resumed) {
		assert(r && r->handle == H_WAITING); /* the handle's reference kept it */
		pthread_mutex_unlock(&x->mu);
		weft_waitq_remove(&r->q, &o->n);
		pthread_mutex_lock(&x->mu);
	} else if (!r || r->handle != H_LIVE) {
		pthread_mutex_unlock(&x->mu);
		return -ESRCH;
	} else if (r == cur_rec) {
		pthread_mutex_unlock(&x->mu);
		return -EDEADLK;
	}
	for (;;) {
		if (r->state == ST_DONE) {
			if (result)
				*result = r->result;
			r->handle = H_GONE;
			rec_unref(x, r);
			pthread_mutex_unlock(&x->mu);
			return 0;
		}
		int e = woke < 0 ? woke : 0;
		if (!e && deadline != WEFT_NEVER && weft_now() >= deadline)
			e = -ETIMEDOUT;
		if (!e && !o && !weft_can_park())
			e = -EPERM;
		if (e) {
			r->handle = H_LIVE; /* t keeps running, and may be waited for again */
			pthread_mutex_unlock(&x->mu);
			return e;
		}
		r->handle = H_WAITING;
		weft_waitq_node_t local;
		weft_waitq_node_t *n = o ? &o->n : &local;
		weft_waitq_lock(&r->q);
		weft_waitq_push(&r->q, n);
		weft_waitq_unlock(&r->q);
		pthread_mutex_unlock(&x->mu);
		if (o) {
			if (deadline != WEFT_NEVER && weft_park_deadline(n->waker, deadline) != 0)
				weft_unpark(n->waker, -ENOMEM);
			return weft_step_register(op);
		}
		woke = weft_park(n->waker, deadline);
		weft_waitq_remove(&r->q, n);
		pthread_mutex_lock(&x->mu);
	}
}

static int th_detach(void *ctx, uint64_t id)
{
	struct tx *x = ctx;
	pthread_mutex_lock(&x->mu);
	struct rec *r = lookup(x, id);
	int e = -ESRCH;
	if (r && r->handle == H_LIVE) {
		r->handle = H_DETACHED;
		rec_unref(x, r);
		e = 0;
	}
	pthread_mutex_unlock(&x->mu);
	return e;
}

static int th_destroy(void *ctx)
{
	struct tx *x = ctx;
	if (cur_rec && cur_rec->x == x)
		return -EDEADLK;
	pthread_mutex_lock(&x->mu);
	x->stopping = true;
	/* What has not started never will: end it cancelled. */
	for (;;) {
		struct rec *found = NULL;
		for (uint32_t c = 0; c < x->nchunks && !found; c++)
			for (int i = 0; i < CHUNK && !found; i++) {
				struct rec *r = &x->chunks[c][i];
				if (r->used && (r->state == ST_TIMER || r->state == ST_QUEUED) && take_back(x, r))
					found = r;
			}
		if (!found)
			break;
		atomic_store_explicit(&found->cancelled, true, memory_order_relaxed);
		pthread_mutex_unlock(&x->mu);
		rec_finish(x, found, (void *)(intptr_t)-ECANCELED);
		pthread_mutex_lock(&x->mu);
	}
	while (x->live > 0)
		pthread_cond_wait(&x->idle_cv, &x->mu);
	x->timer_stop = true;
	pthread_cond_signal(&x->timer_cv);
	pthread_mutex_unlock(&x->mu);
	if (x->timer_started)
		pthread_join(x->timer, NULL);
	weft__tpool_destroy(x->pool);
	for (uint32_t c = 0; c < x->nchunks; c++)
		free(x->chunks[c]);
	free(x->chunks);
	pthread_mutex_destroy(&x->mu);
	pthread_cond_destroy(&x->idle_cv);
	pthread_cond_destroy(&x->timer_cv);
	free(x);
	return 0;
}

static const weft_exec_ops_t threads_ops = {
	.size = sizeof(weft_exec_ops_t),
	.name = threads_name,
	.caps = WEFT_EXEC_CAP_OWNS_TASKS | WEFT_EXEC_CAP_REAL_IO,
	.spawn = th_spawn,
	.wait = th_wait,
	.detach = th_detach,
	.destroy = th_destroy,
	.spawn_at = th_spawn_at,
	.cancel = th_cancel,
};

int weft_exec_create_threads(weft_exec_t **out, const weft_exec_threads_opts_t *opts)
{
	if (out)
		*out = NULL;
	if (!out)
		return -EINVAL;
	weft_exec_threads_opts_t o = {0};
	if (opts) {
		if (opts->size != 0 && opts->size < sizeof o)
			return -EINVAL;
		for (size_t i = sizeof o; i < opts->size; i++)
			if (((const unsigned char *)opts)[i])
				return -E2BIG;
		memcpy(&o, opts, sizeof o);
	}
	if (o.max_threads < 0 || o.max_threads > MAX_THREADS_LIMIT || (o.idle != 0 && o.idle < WEFT_MSEC) ||
	    (o.thread_stack != 0 && o.thread_stack < STACK_MIN))
		return -EINVAL;
	struct tx *x = calloc(1, sizeof *x);
	if (!x)
		return -ENOMEM;
	x->pool = weft__tpool_create("weft-exec", o.max_threads ? (uint32_t)o.max_threads : MAX_THREADS_DEFAULT,
				     o.idle ? o.idle : IDLE_DEFAULT, o.thread_stack, rec_run, NULL);
	if (!x->pool) {
		free(x);
		return -ENOMEM;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->idle_cv, &ca);
	pthread_cond_init(&x->timer_cv, &ca);
	pthread_condattr_destroy(&ca);
	int e = weft_exec_create(out, &threads_ops, x);
	if (e < 0)
		th_destroy(x);
	return e;
}
