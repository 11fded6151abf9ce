/* blocking.c - the blocking pool: threads that run blocking calls while the
 * calling task parks.
 *
 * Pieces
 * ------
 * One pool per runtime, created on first use and attached to the runtime
 * (weft_runtime_attach), destroyed at weft_runtime_stop. A job lives on the
 * caller's stack: fn, arg, the result, the caller's waker and a done flag.
 * Jobs wait in one FIFO list; pool threads take them in order.
 *
 * Invariants (all counters and the list are guarded by pool->mu)
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
 *  - A job's memory belongs to its caller, who may return (freeing the
 *    stack) as soon as it is woken. So a pool thread writes the result and
 *    sets done under the lock, copies the waker first, and after the unlock
 *    touches only the waker (its parker outlives every wait).
 *  - The caller does not return before done: it parks in an uncancellable
 *    wait (weft_park_prepare_uncancellable), which only the pool thread's
 *    unpark ends. A cancel that comes meanwhile shows at the task's next
 *    ordinary wait (or its next weft_blocking, which checks first).
 *  - Threads that exit are moved to the dead list and joined later by the
 *    next submit (outside the lock), or by destroy, which first waits until
 *    threads == 0. destroy runs after every task has ended, so no job can be
 *    queued or running then; the queue is drained in any case, because
 *    threads only leave on stopping once the queue is empty.
 */
#include <weft/io.h>

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../base/list.h"

#define POOL_MAX_DEFAULT 128
#define POOL_MAX_LIMIT 4096
#define POOL_IDLE_DEFAULT (10 * WEFT_SEC)

struct job {
	struct job *next;
	weft_fn_t fn;
	void *arg;
	void *result;
	weft_waker_t waker;
	atomic_bool done; /* release: result is written before */
};

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
			pthread_mutex_unlock(&p->mu);
			void *r = j->fn(j->arg);
			pthread_mutex_lock(&p->mu);
			p->running--;
			p->completed++;
			weft_waker_t w = j->waker;
			j->result = r;
			atomic_store_explicit(&j->done, true, memory_order_release);
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

/* Queue j, waking or starting a thread for it. */
static int submit(struct pool *p, struct job *j)
{
	struct pthr *dead;
	int e = 0;
	pthread_mutex_lock(&p->mu);
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
		if (e) {
			/* No thread at all: take j back out (it is still queued,
			 * since nobody could have taken it). */
			struct job **pp = &p->head;
			while (*pp != j)
				pp = &(*pp)->next;
			*pp = j->next;
			p->tail = NULL;
			for (struct job *q = p->head; q; q = q->next)
				p->tail = q;
			p->queued--;
		}
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
	struct job j = {.fn = fn, .arg = arg};
	atomic_init(&j.done, false);
	j.waker = weft_park_prepare_uncancellable();
	e = submit(p, &j);
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
