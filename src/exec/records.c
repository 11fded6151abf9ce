/* records.c - the task records of the executors whose tasks are not weft
 * tasks (threads.c, uv.c): what a handle names, and the wait for a task's
 * end from coroutines, plain threads and stackless tasks.
 *
 * Records
 * -------
 * A task's record holds fn, arg, its result, its state, its handle's
 * state, a cancel flag and a wait queue for its waiter; a backend's record
 * struct begins with it and adds what its pool needs (a tpool job, a
 * uv_work_t). Records live in chunks that are freed only with the table,
 * and go back to a free list when their last reference goes: the runner's
 * (until the task has ended, its waiter has been woken and the pool lets
 * go of it) and the handle's (until the wait that took the result, or the
 * detach). The id is gen << 32 | slot: a record that has been reused has
 * another gen, so a stale id is -ESRCH.
 *
 * Everything of a record but its wait queue is under t->mu (one mutex per
 * executor: these backends have no speed bar, they are for code that wants
 * plain threads or libuv). Lock order: t->mu, then the pool's locks (a
 * cancel takes a queued job back under t->mu: the tpool's lock, libuv's
 * uv_cancel), then a wait queue's spinlock.
 *
 * States, only forward: INBOX (libuv) -> TIMER (spawn_at) -> QUEUED (in
 * the pool) -> RUNNING -> DONE. A cancel sets the flag; a TIMER record is
 * taken out of the list here, an INBOX or QUEUED one by the backend's take
 * (weft__take_fn), which says whether the pool still holds it. A record
 * taken back moves to ENDING under mu, in the same critical section, and
 * ends with the result -ECANCELED once mu is let go: from ENDING on it is
 * in no list, and every other cancel (or destroy's cancel of everything)
 * finds it past RUNNING and leaves it alone. A record cancelled after the
 * pool took it but before it ran never runs either (weft__rec_run checks
 * the flag as it moves to RUNNING, under mu); a RUNNING one only has the
 * flag, which weft_exec_cancelled() reads.
 *
 * Handle states: LIVE -> WAITING (one wait at a time) -> LIVE (the wait
 * gave up) or GONE (it took the result); LIVE -> DETACHED. The handle's
 * reference is dropped at GONE and DETACHED.
 *
 * The wait: under mu, a waiter either sees DONE or pushes its node on the
 * record's queue; the completion sets DONE under mu and wakes the queue
 * after unlocking, so no completion goes unseen. The runner's reference is
 * dropped only after that wake, so the queue outlives it; the waiter's
 * handle reference keeps the record while its node is queued.
 */
#include "records.h"

#include <weft/time.h>

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 256

/* The record the calling pool thread runs, if any. */
static _Thread_local weft__rec *cur_rec;

/* The op of a stackless waiter: its node lives there while it waits. */
typedef struct exec_op {
	uint8_t call;
	weft_waitq_node_t n;
} exec_op;
_Static_assert(sizeof(exec_op) <= sizeof(((weft_op_t *)0)->opaque), "weft_op_t too small");
_Static_assert(offsetof(exec_op, call) == 0, "an op's first byte is its call's id");
#define STEP_WAIT (WEFT_STEP_ID_EXEC + 1)

static inline uint64_t rec_id(const weft__rec *r)
{
	return (uint64_t)r->gen << 32 | r->slot;
}

static inline weft__rec *rec_at(const weft__recs *t, uint32_t slot)
{
	return (weft__rec *)(t->chunks[slot / CHUNK] + (size_t)(slot % CHUNK) * t->size);
}

void weft__recs_init(weft__recs *t, size_t size)
{
	assert(size >= sizeof(weft__rec));
	memset(t, 0, sizeof *t);
	t->size = size;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->idle, &ca);
	pthread_condattr_destroy(&ca);
}

void weft__recs_fini(weft__recs *t)
{
	assert(t->live == 0);
	for (uint32_t c = 0; c < t->nchunks; c++)
		free(t->chunks[c]);
	free(t->chunks);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->idle);
}

weft__rec *weft__recs_lookup(weft__recs *t, uint64_t id)
{
	uint32_t slot = (uint32_t)id, gen = (uint32_t)(id >> 32);
	if (slot / CHUNK >= t->nchunks)
		return NULL;
	weft__rec *r = rec_at(t, slot);
	return r->used && r->gen == gen ? r : NULL;
}

/* Under mu: a fresh record, or NULL (out of memory). */
static weft__rec *rec_new(weft__recs *t)
{
	if (!t->free) {
		if (t->nchunks == t->cap) {
			uint32_t cap = t->cap ? 2 * t->cap : 4;
			if ((uint64_t)cap * CHUNK > UINT32_MAX)
				return NULL;
			char **c = realloc(t->chunks, cap * sizeof *c);
			if (!c)
				return NULL;
			t->chunks = c;
			t->cap = cap;
		}
		char *c = calloc(CHUNK, t->size);
		if (!c)
			return NULL;
		t->chunks[t->nchunks++] = c;
		for (int i = CHUNK - 1; i >= 0; i--) {
			weft__rec *r = (weft__rec *)(c + (size_t)i * t->size);
			r->tab = t;
			r->slot = (t->nchunks - 1) * CHUNK + (uint32_t)i;
			r->next = t->free;
			t->free = r;
		}
	}
	weft__rec *r = t->free;
	t->free = r->next;
	assert(!r->used && r->refs == 0);
	r->next = NULL;
	r->gen++;
	r->used = true;
	r->result = NULL;
	atomic_store_explicit(&r->cancelled, false, memory_order_relaxed);
	weft_waitq_init(&r->q);
	return r;
}

/* Under mu: drop a reference; the last one frees r. */
static void rec_unref(weft__recs *t, weft__rec *r)
{
	assert(r->refs > 0);
	if (--r->refs > 0)
		return;
	assert(r->state == WEFT__REC_DONE && r->q.len == 0 && r->handle != WEFT__H_WAITING);
	r->used = false;
	r->next = t->free;
	t->free = r;
}

int weft__recs_start(weft__recs *t, uint64_t *id, weft_fn_t fn, void *arg, weft__rec **out)
{
	if (t->stopping)
		return -ESHUTDOWN;
	weft__rec *r = rec_new(t);
	if (!r)
		return -ENOMEM;
	r->fn = fn;
	r->arg = arg;
	r->refs = id ? 2 : 1;
	r->handle = id ? WEFT__H_LIVE : WEFT__H_DETACHED;
	r->state = WEFT__REC_INBOX;
	t->live++;
	if (id)
		*id = rec_id(r);
	*out = r;
	return 0;
}

void weft__recs_abandon(weft__recs *t, weft__rec *r)
{
	assert(r->state < WEFT__REC_QUEUED && r->q.len == 0);
	r->state = WEFT__REC_DONE;
	r->handle = WEFT__H_DETACHED;
	r->refs = 1;
	rec_unref(t, r);
	t->live--;
}

bool weft__recs_timer_add(weft__recs *t, weft__rec *r, weft_time_t at)
{
	assert(r->state == WEFT__REC_INBOX);
	r->state = WEFT__REC_TIMER;
	r->at = at;
	weft__rec **pp = &t->timers;
	while (*pp && (*pp)->at <= at) /* FIFO among equal times */
		pp = &(*pp)->next;
	r->next = *pp;
	*pp = r;
	return t->timers == r;
}

weft__rec *weft__recs_timer_due(weft__recs *t, weft_time_t now)
{
	weft__rec *r = t->timers;
	if (!r || r->at > now)
		return NULL;
	assert(r->state == WEFT__REC_TIMER);
	t->timers = r->next;
	r->next = NULL;
	return r;
}

/* Under mu: take r out of the timer list. */
static void timer_remove(weft__recs *t, weft__rec *r)
{
	weft__rec **pp = &t->timers;
	while (*pp != r) {
		assert(*pp);
		pp = &(*pp)->next;
	}
	*pp = r->next;
	r->next = NULL;
}

void weft__rec_complete(weft__rec *r, void *result)
{
	weft__recs *t = r->tab;
	pthread_mutex_lock(&t->mu);
	assert(r->used && r->refs > 0 && r->state != WEFT__REC_DONE);
	assert(r->state == WEFT__REC_RUNNING || r->state == WEFT__REC_ENDING || r->state == WEFT__REC_QUEUED);
	r->result = result;
	r->state = WEFT__REC_DONE;
	pthread_mutex_unlock(&t->mu);
	weft_waitq_wake_all(&r->q, 0);
}

bool weft__rec_release(weft__rec *r)
{
	weft__recs *t = r->tab;
	pthread_mutex_lock(&t->mu);
	assert(r->state == WEFT__REC_DONE && t->live > 0);
	rec_unref(t, r);
	bool last = --t->live == 0 && t->stopping;
	if (last)
		pthread_cond_broadcast(&t->idle);
	pthread_mutex_unlock(&t->mu);
	return last;
}

static bool rec_cancelled(void *a)
{
	return atomic_load_explicit(&((weft__rec *)a)->cancelled, memory_order_relaxed);
}

void weft__rec_run(weft__rec *r)
{
	weft__recs *t = r->tab;
	pthread_mutex_lock(&t->mu);
	assert(r->state == WEFT__REC_QUEUED);
	bool cancelled = rec_cancelled(r); /* under mu: a cancel from now on finds RUNNING */
	if (!cancelled)
		r->state = WEFT__REC_RUNNING;
	pthread_mutex_unlock(&t->mu);
	if (cancelled) {
		weft__rec_complete(r, (void *)(intptr_t)-ECANCELED);
		return;
	}
	assert(!cur_rec);
	cur_rec = r;
	weft_exec_bind_cancel(rec_cancelled, r);
	void *result = r->fn(r->arg);
	weft_exec_bind_cancel(NULL, NULL);
	cur_rec = NULL;
	weft__rec_complete(r, result);
}

int weft__recs_wait(weft__recs *t, uint64_t id, void **result, weft_time_t deadline, weft_op_t *op, int refuse)
{
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
	pthread_mutex_lock(&t->mu);
	weft__rec *r = weft__recs_lookup(t, id);
	if (resumed) {
		assert(r && r->handle == WEFT__H_WAITING); /* the handle's reference kept it */
		pthread_mutex_unlock(&t->mu);
		weft_waitq_remove(&r->q, &o->n);
		pthread_mutex_lock(&t->mu);
	} else if (!r || r->handle != WEFT__H_LIVE) {
		pthread_mutex_unlock(&t->mu);
		return -ESRCH;
	} else if (r == cur_rec) {
		pthread_mutex_unlock(&t->mu);
		return -EDEADLK;
	}
	for (;;) {
		if (r->state == WEFT__REC_DONE) {
			if (result)
				*result = r->result;
			r->handle = WEFT__H_GONE;
			rec_unref(t, r);
			pthread_mutex_unlock(&t->mu);
			return 0;
		}
		int e = woke < 0 ? woke : 0;
		if (!e && deadline != WEFT_NEVER && weft_now() >= deadline)
			e = -ETIMEDOUT;
		if (!e)
			e = refuse;
		if (!e && !o && !weft_can_park())
			e = -EPERM;
		if (!e && weft_runtime_is_sim(weft_runtime_current()))
			e = -EPERM; /* a sim's thread: the pool thread's wake could not reach it */
		if (e) {
			r->handle = WEFT__H_LIVE; /* t keeps running, and may be waited for again */
			pthread_mutex_unlock(&t->mu);
			return e;
		}
		r->handle = WEFT__H_WAITING;
		weft_waitq_node_t local;
		weft_waitq_node_t *n = o ? &o->n : &local;
		weft_waitq_lock(&r->q);
		weft_waitq_push(&r->q, n);
		weft_waitq_unlock(&r->q);
		pthread_mutex_unlock(&t->mu);
		if (o) {
			if (deadline != WEFT_NEVER && weft_park_deadline(n->waker, deadline) != 0)
				weft_unpark(n->waker, -ENOMEM);
			return weft_step_register(op);
		}
		woke = weft_park(n->waker, deadline);
		weft_waitq_remove(&r->q, n);
		pthread_mutex_lock(&t->mu);
		assert(r->handle == WEFT__H_WAITING);
	}
}

int weft__recs_detach(weft__recs *t, uint64_t id)
{
	pthread_mutex_lock(&t->mu);
	weft__rec *r = weft__recs_lookup(t, id);
	int e = -ESRCH;
	if (r && r->handle == WEFT__H_LIVE) {
		r->handle = WEFT__H_DETACHED;
		rec_unref(t, r);
		e = 0;
	}
	pthread_mutex_unlock(&t->mu);
	return e;
}

/* Under mu: set r's flag and take it back if it has not run (ENDING
 * then: taken is the caller's to call, once, after unlocking). */
static int take_back(weft__recs *t, weft__rec *r, weft__take_fn take, void *ctx)
{
	atomic_store_explicit(&r->cancelled, true, memory_order_relaxed);
	int how = WEFT__TAKE_NONE;
	if (r->state == WEFT__REC_TIMER) {
		timer_remove(t, r);
		how = WEFT__TAKE_OUT;
	} else if (r->state == WEFT__REC_INBOX || r->state == WEFT__REC_QUEUED) {
		how = take(ctx, r);
	}
	if (how != WEFT__TAKE_NONE)
		r->state = WEFT__REC_ENDING;
	return how;
}

/* Without mu: end a record that take_back took, the way it says. */
static void taken(weft__rec *r, int how)
{
	if (how == WEFT__TAKE_NONE)
		return;
	weft__rec_complete(r, (void *)(intptr_t)-ECANCELED);
	if (how == WEFT__TAKE_OUT)
		weft__rec_release(r);
}

int weft__recs_cancel(weft__recs *t, uint64_t id, weft__take_fn take, void *ctx)
{
	pthread_mutex_lock(&t->mu);
	weft__rec *r = weft__recs_lookup(t, id);
	/* Unknown, or ended (weft_cancel's answer too; it may still be
	 * waited for): -ESRCH. Being ended by another cancel: done. */
	if (!r || r->state == WEFT__REC_DONE) {
		pthread_mutex_unlock(&t->mu);
		return -ESRCH;
	}
	if (r->state == WEFT__REC_ENDING) {
		pthread_mutex_unlock(&t->mu);
		return 0;
	}
	int how = take_back(t, r, take, ctx);
	pthread_mutex_unlock(&t->mu);
	taken(r, how); /* the runner's reference keeps r until here */
	return 0;
}

void weft__recs_cancel_all(weft__recs *t, weft__take_fn take, void *ctx)
{
	/* One pass under mu collects what was taken, on `next` (a taken record
	 * is in no list of the table), by how; each ends outside mu. */
	weft__rec *lists[3] = {NULL, NULL, NULL};
	pthread_mutex_lock(&t->mu);
	assert(t->stopping);
	for (uint32_t s = 0; s < t->nchunks * CHUNK; s++) {
		weft__rec *r = rec_at(t, s);
		if (!r->used || r->state >= WEFT__REC_RUNNING)
			continue;
		int how = take_back(t, r, take, ctx);
		if (how != WEFT__TAKE_NONE) {
			r->next = lists[how];
			lists[how] = r;
		}
	}
	assert(!t->timers);
	pthread_mutex_unlock(&t->mu);
	for (int how = WEFT__TAKE_OUT; how <= WEFT__TAKE_CANCELLED; how++)
		while (lists[how]) {
			weft__rec *r = lists[how];
			lists[how] = r->next;
			r->next = NULL;
			taken(r, how);
		}
}

void weft__recs_wait_idle(weft__recs *t)
{
	pthread_mutex_lock(&t->mu);
	assert(t->stopping);
	while (t->live > 0)
		pthread_cond_wait(&t->idle, &t->mu);
	pthread_mutex_unlock(&t->mu);
}

bool weft__recs_own_task(const weft__recs *t)
{
	return cur_rec && cur_rec->tab == t;
}
