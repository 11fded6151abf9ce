/* tpool.c - a pool of plain threads running jobs in FIFO order (tpool.h).
 *
 * Invariants (all counters and the list are guarded by p->mu)
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
 *  - A job is the caller's memory: a thread unlinks it under the lock (it
 *    is no longer `queued`, so remove can no longer take it), calls run
 *    without the lock, then counts it and calls complete under the lock,
 *    and never touches it afterwards. A job's owner that holds the lock
 *    (weft__tpool_lock) therefore sees its job in one of three places:
 *    queued (it may remove it: run is never called), taken and not yet
 *    completed (what complete reads, the owner may still change), or
 *    completed.
 *  - Threads that exit are moved to the dead list and joined later by the
 *    next submit (outside the lock), or by destroy, which first waits until
 *    threads == 0. Threads leave on stopping only once the queue is empty,
 *    so destroy drains it.
 */
#include "tpool.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "list.h"

#define NS 1000000000LL

struct pthr {
	pthread_t thread;
	struct pthr *next, *prev;
	struct weft__tpool *pool;
};

struct weft__tpool {
	pthread_mutex_t mu;
	pthread_cond_t work_cv; /* jobs for idle threads; limits changed; stopping */
	pthread_cond_t exit_cv; /* a thread exited while stopping */
	weft__tpool_job *head, *tail;
	struct pthr *live, *dead;
	uint32_t threads, idle, max;
	uint64_t queued, running, completed;
	int64_t idle_ns;
	size_t stack;
	weft__tpool_fn run, complete; /* every job's */
	const char *name;
	bool stopping;
};

static int64_t mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* Append j (under mu). */
static void push(weft__tpool *p, weft__tpool_job *j)
{
	j->next = NULL;
	j->prev = p->tail;
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->queued++;
}

/* Whether submitted job j is on the queue (under mu): off it (taken by a
 * thread, or removed), its links are NULL and the head is another job. */
static bool on_queue(const weft__tpool *p, const weft__tpool_job *j)
{
	return j->prev ? j->prev->next == j : p->head == j;
}

/* Unlink queued j (under mu). */
static void unlink_job(weft__tpool *p, weft__tpool_job *j)
{
	assert(on_queue(p, j));
	if (p->tail == j)
		p->tail = j->prev;
	WEFT_LIST_UNLINK(p->head, j, next, prev); /* (its links NULL) */
	p->queued--;
}

static void *pool_thread(void *a)
{
	struct pthr *self = a;
	weft__tpool *p = self->pool;
	pthread_setname_np(pthread_self(), p->name);
	pthread_mutex_lock(&p->mu);
	int64_t idle_since = mono_now();
	for (;;) {
		if (p->head) {
			weft__tpool_job *j = p->head;
			unlink_job(p, j);
			p->running++;
			pthread_mutex_unlock(&p->mu);
			p->run(j); /* complete NULL: run may end j's life */
			pthread_mutex_lock(&p->mu);
			p->running--;
			p->completed++;
			if (p->complete)
				p->complete(j); /* j may be gone now */
			idle_since = mono_now();
			if (p->threads > p->max)
				break; /* above a lowered limit: others drain the queue */
			continue;
		}
		if (p->stopping || p->threads > p->max)
			break; /* the queue is empty: nothing to drain */
		p->idle++;
		if (p->idle_ns == WEFT__TPOOL_NEVER) { /* threads never time out */
			pthread_cond_wait(&p->work_cv, &p->mu);
		} else {
			/* Saturating: an idle time near the end of time is "for ever". */
			int64_t deadline = p->idle_ns > INT64_MAX - idle_since ? INT64_MAX : idle_since + p->idle_ns;
			if (mono_now() >= deadline) {
				p->idle--;
				break;
			}
			struct timespec ts = {.tv_sec = deadline / NS, .tv_nsec = deadline % NS};
			if (deadline == INT64_MAX)
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
static int start_thread(weft__tpool *p)
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
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	if (p->stack)
		pthread_attr_setstacksize(&attr, p->stack);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(&t->thread, &attr, pool_thread, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (e) {
		p->threads--;
		free(t);
		return -ENOMEM; /* EAGAIN from pthread_create: out of threads or memory */
	}
	WEFT_LIST_PUSH(p->live, t, next, prev);
	return 0;
}

weft__tpool *weft__tpool_create(const char *name, uint32_t max, int64_t idle_ns, size_t stack, weft__tpool_fn run,
				weft__tpool_fn complete)
{
	assert(max >= 1 && idle_ns > 0 && run);
	weft__tpool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work_cv, &ca);
	pthread_cond_init(&p->exit_cv, &ca);
	pthread_condattr_destroy(&ca);
	p->max = max;
	p->idle_ns = idle_ns;
	p->stack = stack;
	p->name = name;
	p->run = run;
	p->complete = complete;
	return p;
}

void weft__tpool_destroy(weft__tpool *p)
{
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
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work_cv);
	pthread_cond_destroy(&p->exit_cv);
	free(p);
}

int weft__tpool_submit(weft__tpool *p, weft__tpool_job *j)
{
	struct pthr *dead;
	int e = 0;
	pthread_mutex_lock(&p->mu);
	assert(!p->stopping);
	push(p, j);
	if (p->idle > 0)
		pthread_cond_signal(&p->work_cv);
	if (p->queued > p->idle && p->threads < p->max) {
		p->threads++;
		e = start_thread(p);
		if (e && p->threads > 0)
			e = 0; /* a running thread will take it */
		if (e)
			unlink_job(p, j); /* no thread at all: nobody could have taken it */
	}
	dead = p->dead;
	p->dead = NULL;
	pthread_mutex_unlock(&p->mu);
	join_all(dead);
	return e;
}

bool weft__tpool_remove_locked(weft__tpool *p, weft__tpool_job *j)
{
	bool was = on_queue(p, j);
	if (was)
		unlink_job(p, j);
	return was;
}

bool weft__tpool_remove(weft__tpool *p, weft__tpool_job *j)
{
	pthread_mutex_lock(&p->mu);
	bool was = weft__tpool_remove_locked(p, j);
	pthread_mutex_unlock(&p->mu);
	return was;
}

void weft__tpool_lock(weft__tpool *p)
{
	pthread_mutex_lock(&p->mu);
}

void weft__tpool_unlock(weft__tpool *p)
{
	pthread_mutex_unlock(&p->mu);
}

void weft__tpool_set_limits(weft__tpool *p, uint32_t max, int64_t idle_ns)
{
	pthread_mutex_lock(&p->mu);
	if (max)
		p->max = max;
	if (idle_ns)
		p->idle_ns = idle_ns;
	pthread_cond_broadcast(&p->work_cv); /* idle threads re-read idle_ns */
	pthread_mutex_unlock(&p->mu);
}

void weft__tpool_read_stats(weft__tpool *p, weft__tpool_stats *out)
{
	pthread_mutex_lock(&p->mu);
	*out = (weft__tpool_stats){
		.threads = p->threads,
		.idle = p->idle,
		.max = p->max,
		.queued = p->queued,
		.running = p->running,
		.completed = p->completed,
	};
	pthread_mutex_unlock(&p->mu);
}
