/* threads.c - the threads executor: tasks are jobs on a pool of plain OS
 * threads (src/base/tpool.c), handles name records of the executor's own
 * table (records.c, whose design comment says how records, handles, the
 * wait and cancel work).
 *
 * A record is a tpool job: th_rec begins with the table's record and adds
 * the job. Lock order: the table's mu, then the pool's lock (a cancel
 * takes a queued job back out under mu), then a wait queue's spinlock.
 *
 * spawn_at: one timer thread per executor, started on the first
 * spawn_at, sleeps on timer_cv (with mu) until the head of the table's
 * timer list is due and submits it to the pool. A cancel before then
 * takes the record out of the list (records.c).
 *
 * Destroy: stopping (spawns fail), every record that has not run taken
 * back (weft__recs_cancel_all: they end -ECANCELED), wait until no record
 * is live, stop the timer thread, join the pool.
 */
#include <weft/executors.h>
#include <weft/time.h>

#include <assert.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/sized.h"
#include "../base/tpool.h"
#include "records.h"

#define MAX_THREADS_DEFAULT 128
#define MAX_THREADS_LIMIT 4096
#define IDLE_DEFAULT (10 * WEFT_SEC)
#define STACK_MIN (64 * 1024)

static const char threads_name[] = "threads";

typedef struct th_rec {
	weft__rec r; /* first: the table's record */
	weft__tpool_job job;
} th_rec;

struct tx {
	weft__recs recs;
	pthread_cond_t timer_cv; /* the timer list's head changed; stopping */
	weft__tpool *pool;
	bool timer_started, timer_stop; /* under recs.mu */
	pthread_t timer;
};

static inline th_rec *job_rec(weft__tpool_job *j)
{
	return (th_rec *)((char *)j - offsetof(th_rec, job));
}

/* On a pool thread. */
static void rec_run(weft__tpool_job *j)
{
	th_rec *r = job_rec(j);
	weft__rec_run(&r->r);
	weft__rec_release(&r->r);
}

/* Under mu: submit r to the pool (QUEUED); false if no thread could be
 * started for it. */
static bool submit(struct tx *x, weft__rec *r)
{
	if (weft__tpool_submit(x->pool, &((th_rec *)r)->job) < 0)
		return false;
	r->state = WEFT__REC_QUEUED; /* before its run: that takes mu first */
	return true;
}

static int th_spawn(void *ctx, uint64_t *id, weft_fn_t fn, void *arg, const weft_exec_spawn_opts_t *o)
{
	(void)o; /* names and stack sizes are for coroutines */
	struct tx *x = ctx;
	weft__rec *r;
	pthread_mutex_lock(&x->recs.mu);
	int e = weft__recs_start(&x->recs, id, fn, arg, &r);
	if (e == 0 && !submit(x, r)) {
		weft__recs_abandon(&x->recs, r);
		e = -ENOMEM;
	}
	pthread_mutex_unlock(&x->recs.mu);
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
	pthread_mutex_lock(&x->recs.mu);
	while (!x->timer_stop) {
		weft__rec *head = x->recs.timers;
		if (!head) {
			pthread_cond_wait(&x->timer_cv, &x->recs.mu);
			continue;
		}
		weft__rec *r = weft__recs_timer_due(&x->recs, weft_now());
		if (!r) {
			struct timespec ts = mono_ts(head->at);
			pthread_cond_timedwait(&x->timer_cv, &x->recs.mu, &ts);
			continue;
		}
		if (!submit(x, r)) {
			pthread_mutex_unlock(&x->recs.mu);
			weft__rec_complete(r, (void *)(intptr_t)-ENOMEM);
			weft__rec_release(r);
			pthread_mutex_lock(&x->recs.mu);
		}
	}
	pthread_mutex_unlock(&x->recs.mu);
	return NULL;
}

static int th_spawn_at(void *ctx, uint64_t *id, weft_time_t at, weft_fn_t fn, void *arg,
		       const weft_exec_spawn_opts_t *o)
{
	(void)o;
	struct tx *x = ctx;
	weft__rec *r;
	pthread_mutex_lock(&x->recs.mu);
	int e = weft__recs_start(&x->recs, id, fn, arg, &r);
	if (e == 0 && !x->timer_started) {
		sigset_t all, old; /* the timer thread takes no signals (as the pool's threads) */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		int c = pthread_create(&x->timer, NULL, timer_main, x);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (c != 0) {
			weft__recs_abandon(&x->recs, r);
			e = -ENOMEM;
		} else {
			x->timer_started = true;
		}
	}
	if (e == 0 && weft__recs_timer_add(&x->recs, r, at))
		pthread_cond_signal(&x->timer_cv);
	pthread_mutex_unlock(&x->recs.mu);
	return e;
}

/* Under mu: take a QUEUED record back out of the pool if no thread has
 * taken it yet (tpool_remove says). */
static int take(void *ctx, weft__rec *r)
{
	struct tx *x = ctx;
	assert(r->state == WEFT__REC_QUEUED);
	return weft__tpool_remove(x->pool, &((th_rec *)r)->job) ? WEFT__TAKE_OUT : WEFT__TAKE_NONE;
}

static int th_cancel(void *ctx, uint64_t id)
{
	struct tx *x = ctx;
	return weft__recs_cancel(&x->recs, id, take, x);
}

static int th_wait(void *ctx, uint64_t id, void **result, weft_time_t deadline, weft_op_t *op)
{
	struct tx *x = ctx;
	return weft__recs_wait(&x->recs, id, result, deadline, op, 0);
}

static int th_detach(void *ctx, uint64_t id)
{
	struct tx *x = ctx;
	return weft__recs_detach(&x->recs, id);
}

static int th_destroy(void *ctx)
{
	struct tx *x = ctx;
	if (weft__recs_own_task(&x->recs))
		return -EDEADLK;
	pthread_mutex_lock(&x->recs.mu);
	x->recs.stopping = true;
	pthread_mutex_unlock(&x->recs.mu);
	weft__recs_cancel_all(&x->recs, take, x); /* what has not started never will */
	weft__recs_wait_idle(&x->recs);
	pthread_mutex_lock(&x->recs.mu);
	x->timer_stop = true;
	pthread_cond_signal(&x->timer_cv);
	pthread_mutex_unlock(&x->recs.mu);
	if (x->timer_started)
		pthread_join(x->timer, NULL);
	weft__tpool_destroy(x->pool);
	weft__recs_fini(&x->recs);
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
	int e = weft__opts_in(&o, sizeof o, opts, opts ? opts->size : 0);
	if (e < 0)
		return e;
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
	weft__recs_init(&x->recs, sizeof(th_rec));
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&x->timer_cv, &ca);
	pthread_condattr_destroy(&ca);
	e = weft_exec_create(out, &threads_ops, x);
	if (e < 0)
		th_destroy(x);
	return e;
}
