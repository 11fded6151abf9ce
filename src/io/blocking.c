/* blocking.c - the blocking pool: threads that run blocking calls while the
 * calling task parks, and the _step form of that (weft_blocking_step), on
 * which the io module's other pool calls (files, name lookups) build.
 *
 * Pieces
 * ------
 * One pool per runtime, created on first use and attached to the runtime
 * (weft_runtime_attach), destroyed at weft_runtime_stop. A job holds fn,
 * its argument (then its result), the caller's waker and the job's state;
 * it lives on the caller's stack (weft_blocking, and the _step forms in
 * coroutines), or in a stackless caller's op (struct job is that op's
 * layout: 48 bytes). Jobs wait in one FIFO list; pool threads take them in
 * order.
 *
 * Invariants (all counters, the list and every job's state, slot and
 * waker are guarded by pool->mu)
 * ----------
 *  - threads = idle + (threads running a job) + (threads between the two,
 *    holding or about to retake the lock). A thread counts as idle exactly
 *    while it sleeps in pthread_cond_timedwait on work_cv.
 *  - No lost job: a job is pushed under the lock; afterwards either a thread
 *    is woken for it (idle > 0: signal work_cv), or a new thread is started
 *    (queued > idle and threads < max), or every thread is busy and each one
 *    checks the queue under the lock before it sleeps or exits. A thread
 *    exits (idle time out, pool above its limit, stopping) only after seeing
 *    the queue empty under the lock, or, above the limit, while at least one
 *    other thread remains to drain it. If no thread at all could be started,
 *    the job is unlinked again and the caller gets the error.
 *  - A job goes QUEUED -> RUNNING (a thread took it off the list) -> DONE
 *    (its result is in the slot), or QUEUED -> off the list again, withdrawn
 *    by its caller (a _step form's deadline or cancellation, or submit
 *    failing): then fn never runs. Nothing withdraws a RUNNING job: fn
 *    cannot be interrupted and may use the caller's memory (arg), so the
 *    caller does not return before DONE.
 *  - A job's memory belongs to its caller, who may return (freeing the
 *    stack, or the op) as soon as it sees DONE. So a pool thread writes
 *    the result and sets DONE under the lock, copies the waker first, and
 *    after the unlock touches only the waker (its parker outlives every
 *    wait). A caller that opens a new wait for a RUNNING job (a _step form
 *    whose first wait a deadline or a cancellation ended) stores its waker
 *    under the lock, where the thread reads it.
 *  - weft_blocking does not return before DONE: it parks in an
 *    uncancellable wait (weft_park_prepare_uncancellable), which only the
 *    pool thread's unpark ends. A cancel that comes meanwhile shows at the
 *    task's next ordinary wait (or its next weft_blocking, which checks
 *    first). The _step forms wait cancellably while the job is QUEUED (a
 *    deadline or a cancel withdraws it) and uncancellably, without a
 *    deadline, once it is RUNNING.
 *  - Threads that exit are moved to the dead list and joined later by the
 *    next submit (outside the lock), or by destroy, which first waits until
 *    threads == 0. destroy runs after every task has ended, so no job can be
 *    queued or running then; the queue is drained in any case, because
 *    threads only leave on stopping once the queue is empty.
 */
#include "io_impl.h"

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/list.h"

#define POOL_MAX_DEFAULT 128
#define POOL_MAX_LIMIT 4096
#define POOL_IDLE_DEFAULT (10 * WEFT_SEC)

/* A job; in a stackless caller's op, its first byte is the op's call id
 * (weft_step_begin), which the pool leaves alone. */
struct job {
	uint8_t call;	       /* the _step call's id, in an op; 0 on a stack */
	_Atomic uint8_t state; /* JOB_*: changed under pool->mu */
	struct job *next;      /* the queue's link */
	weft_fn_t fn;
	void *slot;	    /* fn's argument until it runs, then its result */
	weft_waker_t waker; /* the caller's current wait */
};

enum {
	JOB_QUEUED = 1, /* on the list; the caller may withdraw it */
	JOB_RUNNING,	/* taken by a thread: fn runs */
	JOB_DONE	/* fn has returned; the slot holds its result (release) */
};

_Static_assert(sizeof(struct job) <= 48, "a pool op is at most 48 bytes");
_Static_assert(sizeof(struct job) <= sizeof(((weft_op_t *)0)->opaque),
	       "weft_op_t too small (its obj is the protocol's)");
_Static_assert(_Alignof(struct job) <= _Alignof(weft_op_t), "weft_op_t under-aligned");
_Static_assert(offsetof(struct job, call) == 0, "an op's first byte is its call's id");

struct pthr {
	pthread_t thread;
	struct pthr *next, *prev;
	struct pool *pool;
};

struct pool {
	pthread_mutex_t mu;
	pthread_cond_t work_cv; /* jobs for idle threads; limits changed; stopping */
	pthread_cond_t exit_cv; /* a thread exited while stopping */
	struct job *head, *tail;
	struct pthr *live, *dead;
	uint32_t threads, idle, max;
	uint64_t queued, running, completed;
	weft_time_t idle_ns;
	bool stopping;
};

static void pool_destroy(void *ctx);
static const weft_runtime_ext_t pool_key = {.name = "io.blocking", .destroy = pool_destroy};

static struct timespec mono_ts(weft_time_t t)
{
	return (struct timespec){.tv_sec = t / WEFT_SEC, .tv_nsec = t % WEFT_SEC};
}

static void *pool_thread(void *a)
{
	struct pthr *self = a;
	struct pool *p = self->pool;
	pthread_setname_np(pthread_self(), "weft-blocking");
	pthread_mutex_lock(&p->mu);
	weft_time_t idle_since = weft_now();
	for (;;) {
		if (p->head) {
			struct job *j = p->head;
			p->head = j->next;
			if (!p->head)
				p->tail = NULL;
			p->queued--;
			p->running++;
			assert(atomic_load_explicit(&j->state, memory_order_relaxed) == JOB_QUEUED);
			atomic_store_explicit(&j->state, JOB_RUNNING, memory_order_relaxed);
			weft_fn_t fn = j->fn;
			void *arg = j->slot;
			pthread_mutex_unlock(&p->mu);
			void *r = fn(arg);
			pthread_mutex_lock(&p->mu);
			p->running--;
			p->completed++;
			weft_waker_t w = j->waker; /* the caller's current wait (under the lock) */
			j->slot = r;
			atomic_store_explicit(&j->state, JOB_DONE, memory_order_release);
			pthread_mutex_unlock(&p->mu);
			weft_unpark(w, 0); /* j may be gone now; w is a copy */
			pthread_mutex_lock(&p->mu);
			idle_since = weft_now();
			if (p->threads > p->max)
				break; /* above a lowered limit: others drain the queue */
			continue;
		}
		if (p->stopping || p->threads > p->max)
			break; /* the queue is empty: nothing to drain */
		p->idle++;
		if (p->idle_ns == WEFT_NEVER) { /* threads never time out */
			pthread_cond_wait(&p->work_cv, &p->mu);
		} else {
			/* Saturating: an idle time near WEFT_NEVER is "for ever". */
			weft_time_t deadline =
				p->idle_ns > WEFT_NEVER - idle_since ? WEFT_NEVER : idle_since + p->idle_ns;
			if (weft_now() >= deadline) {
				p->idle--;
				break;
			}
			struct timespec ts = mono_ts(deadline);
			if (deadline == WEFT_NEVER)
				pthread_cond_wait(&p->work_cv, &p->mu);
			else
				pthread_cond_timedwait(&p->work_cv, &p->mu, &ts);
		}
		p->idle--;
	}
	p->threads--;
	WEFT_LIST_UNLINK(p->live, self, next, prev);
	self->next = p->dead;
	p->dead = self;
	if (p->stopping)
		pthread_cond_signal(&p->exit_cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void join_all(struct pthr *t)
{
	while (t) {
		struct pthr *next = t->next;
		pthread_join(t->thread, NULL);
		free(t);
		t = next;
	}
}

/* Start a pool thread with every asynchronous signal blocked (the mask is
 * inherited from the creating thread, so there is no window in which the
 * new thread could take one). Called with p->mu held and threads already
 * counted; returns 0 or a negative errno (then the count is undone). */
static int start_thread(struct pool *p)
{
	struct pthr *t = calloc(1, sizeof *t);
	if (!t) {
		p->threads--;
		return -ENOMEM;
	}
	t->pool = p;
	sigset_t all, old;
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGTRAP);
	sigdelset(&all, SIGSYS);
	sigdelset(&all, SIGABRT);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(&t->thread, NULL, pool_thread, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		p->threads--;
		free(t);
		return -ENOMEM; /* EAGAIN from pthread_create: out of threads or memory */
	}
	WEFT_LIST_PUSH(p->live, t, next, prev);
	return 0;
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

static struct pool *pool_new(void)
{
	struct pool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work_cv, &ca);
	pthread_cond_init(&p->exit_cv, &ca);
	pthread_condattr_destroy(&ca);
	p->max = (uint32_t)env_max();
	p->idle_ns = POOL_IDLE_DEFAULT;
	return p;
}

static void pool_free(struct pool *p)
{
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work_cv);
	pthread_cond_destroy(&p->exit_cv);
	free(p);
}

static void pool_destroy(void *ctx)
{
	struct pool *p = ctx;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->work_cv);
	while (p->threads > 0)
		pthread_cond_wait(&p->exit_cv, &p->mu);
	assert(!p->head && p->running == 0);
	struct pthr *dead = p->dead;
	p->dead = NULL;
	pthread_mutex_unlock(&p->mu);
	join_all(dead);
	pool_free(p);
}

/* rt's pool, created and attached on first use. */
static int pool_get(weft_runtime_t *rt, struct pool **out)
{
	if (!rt)
		return -EINVAL;
	struct pool *p = weft_runtime_attached(rt, &pool_key);
	if (!p) {
		struct pool *fresh = pool_new();
		if (!fresh)
			return -ENOMEM;
		int e = weft_runtime_attach(rt, &pool_key, fresh);
		if (e == 0) {
			p = fresh;
		} else {
			pool_free(fresh);
			if (e != -EBUSY)
				return e;
			p = weft_runtime_attached(rt, &pool_key); /* lost the race */
		}
	}
	*out = p;
	return 0;
}

/* Under p->mu: take the QUEUED job j off the list (fn will not run). */
static void unqueue(struct pool *p, struct job *j)
{
	assert(atomic_load_explicit(&j->state, memory_order_relaxed) == JOB_QUEUED && p->queued > 0);
	struct job **pp = &p->head;
	while (*pp != j) {
		assert(*pp != NULL); /* a QUEUED job is on the list */
		pp = &(*pp)->next;
	}
	*pp = j->next;
	if (p->tail == j) {
		p->tail = NULL;
		for (struct job *q = p->head; q; q = q->next)
			p->tail = q;
	}
	p->queued--;
	j->next = NULL;
}

/* Queue j (fn and slot set), waking or starting a thread for it. */
static int submit(struct pool *p, struct job *j)
{
	struct pthr *dead;
	int e = 0;
	pthread_mutex_lock(&p->mu);
	atomic_store_explicit(&j->state, JOB_QUEUED, memory_order_relaxed);
	j->next = NULL;
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->queued++;
	if (p->idle > 0)
		pthread_cond_signal(&p->work_cv);
	if (p->queued > p->idle && p->threads < p->max) {
		p->threads++;
		e = start_thread(p);
		if (e && p->threads > 0)
			e = 0; /* a running thread will take it */
		if (e)	       /* no thread at all: nobody could have taken j */
			unqueue(p, j);
	}
	dead = p->dead;
	p->dead = NULL;
	pthread_mutex_unlock(&p->mu);
	join_all(dead);
	return e;
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
	struct pool *p;
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

/* A job whose caller's wait ended early (r < 0: its deadline, or a
 * cancellation), under p->mu: withdrawn if still QUEUED (returns r),
 * JOB_RUNNING if a thread runs it (the caller must wait for its end), 0
 * if it is DONE (the result was handed over at that moment). */
static int early_end(struct pool *p, struct job *j, int r)
{
	uint8_t st = atomic_load_explicit(&j->state, memory_order_relaxed);
	/* Only the pool thread ends the wait with 0, after setting DONE. */
	assert(st == JOB_DONE || r < 0);
	if (st == JOB_DONE)
		return 0;
	if (st == JOB_RUNNING)
		return JOB_RUNNING;
	assert(st == JOB_QUEUED);
	unqueue(p, j);
	return r;
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
	struct pool *p;
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
		pthread_mutex_lock(&p->mu);
		r = early_end(p, &j, r);
		if (r == JOB_RUNNING) {
			/* fn runs and may use arg: wait for its end, whatever comes. */
			j.waker = weft_park_prepare_uncancellable();
			pthread_mutex_unlock(&p->mu);
			r = weft_park(j.waker, WEFT_NEVER);
			assert(r == 0);
		} else {
			pthread_mutex_unlock(&p->mu);
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

int weft__blocking_submit(weft_op_t *op, weft_fn_t fn, void *arg, weft_time_t deadline)
{
	/* weft_step_begin returned 0 in a stackless task: op is the call's. */
	assert(!weft_can_park() && *(const uint8_t *)op != 0);
	if (weft_cancelled())
		return -ECANCELED;
	if (weft__io_deadline_passed(deadline))
		return -ETIMEDOUT;
	struct pool *p;
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
	struct pool *p = weft_runtime_attached(weft_runtime_current(), &pool_key);
	/* The job went to the pool of the task's runtime, which lives while
	 * the task does. */
	assert(p != NULL);
	pthread_mutex_lock(&p->mu);
	if (r < 0)
		r = early_end(p, j, r);
	else
		assert(atomic_load_explicit(&j->state, memory_order_relaxed) == JOB_DONE);
	if (r == JOB_RUNNING) {
		/* fn runs and may use arg: register again, to be woken by its
		 * end and nothing else (no deadline, no cancellation). */
		j->waker = weft_park_prepare_uncancellable();
		assert(j->waker.parker != NULL); /* the registration has just ended */
		pthread_mutex_unlock(&p->mu);
		r = weft_step_register(op);
		assert(r == -EINPROGRESS);
		return r;
	}
	*slot = j->slot; /* fn's result, or (withdrawn) its argument */
	pthread_mutex_unlock(&p->mu);
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
	struct pool *p;
	int e = pool_get(rt ? rt : weft_runtime_current(), &p);
	if (e)
		return e;
	pthread_mutex_lock(&p->mu);
	if (max_threads)
		p->max = (uint32_t)max_threads;
	if (idle)
		p->idle_ns = idle;
	pthread_cond_broadcast(&p->work_cv); /* idle threads re-read idle_ns */
	pthread_mutex_unlock(&p->mu);
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
	struct pool *p = weft_runtime_attached(rt, &pool_key);
	if (!p) {
		*out = (weft_blocking_stats_t){.max = (uint32_t)env_max()};
		return 0;
	}
	pthread_mutex_lock(&p->mu);
	*out = (weft_blocking_stats_t){
		.threads = p->threads,
		.idle = p->idle,
		.max = p->max,
		.queued = p->queued,
		.running = p->running,
		.completed = p->completed,
	};
	pthread_mutex_unlock(&p->mu);
	return 0;
}
