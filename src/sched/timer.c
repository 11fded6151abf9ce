/* timer.c - timer shards, deadlines of waits, sleep, periodic timers.
 *
 * Each base worker owns a shard: a timing wheel (wheel.c) behind a spinlock.
 * A task arms its timers in the shard of the worker it runs on, so the lock is
 * almost never contended; the worker runs its shard's expired timers between
 * tasks, and idle (spinning) workers run overdue timers of other shards, so a
 * worker stuck in a long task does not delay them much.
 *
 * Entry states: IDLE -> PENDING (armed, in a wheel) -> FIRING (taken off the
 * wheel under the shard lock, its fire function running) -> IDLE or PENDING
 * again (re-armed by its fire function). The fire function owns the entry
 * while FIRING and leaves that state as the last thing it does with it
 * (weft__tentry_done, or re-arming). Cancelling a PENDING entry unlinks it
 * under the lock; cancelling a FIRING one waits until the fire function is
 * done with it (except from inside that fire function), so that when cancel
 * returns the entry's memory may be reused - a coroutine's deadline lives on
 * its stack.
 */
#include "internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/list.h"
#include "../base/spin.h"
#include "futex.h"

static uint64_t self_thread_id(void)
{
	static __thread char marker;
	return (uint64_t)(uintptr_t)&marker;
}

static uint64_t now_tick(void)
{
	return (uint64_t)weft_now() / 1000000u;
}

int weft__shards_create(struct weft_runtime *rt)
{
	weft_shard_t *s;
	if (posix_memalign((void **)&s, WEFT_CACHELINE, sizeof *s * (size_t)rt->nbase))
		return -ENOMEM;
	memset(s, 0, sizeof *s * (size_t)rt->nbase);
	uint64_t now = now_tick();
	for (int i = 0; i < rt->nbase; i++) {
		weft__wheel_init(&s[i].wheel, now);
		atomic_init(&s[i].next_tick, UINT64_MAX);
	}
	rt->shards = s;
	pthread_mutex_init(&rt->user_timers_lock, NULL);
	return 0;
}

static void user_timers_free(struct weft_runtime *rt);

void weft__shards_destroy(struct weft_runtime *rt)
{
	if (!rt->shards)
		return;
	user_timers_free(rt);
	pthread_mutex_destroy(&rt->user_timers_lock);
	free(rt->shards);
	rt->shards = NULL;
}

static void publish_next(weft_shard_t *s)
{
	assert(weft__spin_held(&s->lock)); /* the wheel changes under the lock only */
	atomic_store_explicit(&s->next_tick, weft__wheel_next_expiry(&s->wheel), memory_order_release);
}

static weft_shard_t *arming_shard(struct weft_runtime **rtp)
{
	weft_worker *w = weft__self_worker;
	if (w) {
		*rtp = w->rt;
		return w->shard;
	}
	struct weft_runtime *rt = weft_runtime_current();
	*rtp = rt;
	return rt ? &rt->shards[0] : NULL;
}

/* Returns whether the shard's next expiry moved earlier. */
static bool arm_in(weft_shard_t *s, weft_tentry_t *e, weft_time_t deadline)
{
	weft__spin_lock(&s->lock);
	/* Fresh, or re-armed by its own fire function (FIRING on this
	 * thread): in no wheel either way. */
	assert(!e->node.linked);
	uint64_t before = atomic_load_explicit(&s->next_tick, memory_order_relaxed);
	e->shard = s;
	atomic_store_explicit(&e->state, WEFT_TE_PENDING, memory_order_relaxed);
	weft__wheel_add(&s->wheel, &e->node, weft__tick_of(deadline));
	publish_next(s);
	bool earlier = atomic_load_explicit(&s->next_tick, memory_order_relaxed) < before;
	weft__spin_unlock(&s->lock);
	return earlier;
}

/* Arms e in shard s of runtime rt (which the caller keeps alive). */
static void tentry_arm_in(struct weft_runtime *rt, weft_shard_t *s, weft_tentry_t *e, weft_time_t deadline,
			  void (*fire)(weft_tentry_t *))
{
	assert(s);
	e->fire = fire;
	e->node.linked = false;
	/* Parked workers sleep until the deadline they saw when they parked: if
	 * this one is earlier (or we are not a worker that will poll it), wake one
	 * so it re-computes its sleep. */
	if (arm_in(s, e, deadline) || !weft__self_worker)
		weft__wakep(rt);
}

void weft__tentry_arm(weft_tentry_t *e, weft_time_t deadline, void (*fire)(weft_tentry_t *))
{
	struct weft_runtime *rt;
	weft_shard_t *s = arming_shard(&rt);
	tentry_arm_in(rt, s, e, deadline, fire);
}

void weft__tentry_done(weft_tentry_t *e)
{
	/* Only its fire function ends a FIRING entry. */
	assert(atomic_load_explicit(&e->state, memory_order_relaxed) == WEFT_TE_FIRING &&
	       atomic_load_explicit(&e->firing_thread, memory_order_relaxed) == self_thread_id() && !e->node.linked);
	atomic_store_explicit(&e->firing_thread, 0, memory_order_relaxed);
	/* release: the canceller that sees IDLE may reuse the memory. */
	atomic_store_explicit(&e->state, WEFT_TE_IDLE, memory_order_release);
}

bool weft__tentry_cancel(weft_tentry_t *e)
{
	for (;;) {
		int st = atomic_load_explicit(&e->state, memory_order_acquire);
		if (st == WEFT_TE_IDLE)
			return false;
		if (st == WEFT_TE_FIRING) {
			if (atomic_load_explicit(&e->firing_thread, memory_order_relaxed) == self_thread_id())
				return false; /* from inside its own fire function */
			weft__cpu_relax();
			continue;
		}
		weft_shard_t *s = e->shard;
		weft__spin_lock(&s->lock);
		if (atomic_load_explicit(&e->state, memory_order_relaxed) == WEFT_TE_PENDING && e->shard == s) {
			assert(e->node.linked); /* PENDING: in s's wheel */
			weft__wheel_del(&s->wheel, &e->node);
			atomic_store_explicit(&e->state, WEFT_TE_IDLE, memory_order_relaxed);
			publish_next(s);
			weft__spin_unlock(&s->lock);
			return true;
		}
		weft__spin_unlock(&s->lock);
	}
}

/* Whether this thread is running timer fire functions (weft_timer_stop
 * must not wait for another thread's fire from inside one: two timers
 * stopping each other would wait forever). */
static __thread bool in_fire;

size_t weft__timers_run(struct weft_runtime *rt, weft_shard_t *s, uint64_t tick)
{
	(void)rt;
	weft_tnode_t *list = NULL;
	weft__spin_lock(&s->lock);
	size_t n = weft__wheel_advance(&s->wheel, tick, &list);
	uint64_t me = self_thread_id();
	for (weft_tnode_t *x = list; x; x = x->next) {
		weft_tentry_t *e = (weft_tentry_t *)x;
		/* Taken off the wheel now: it was PENDING in this shard. */
		assert(!x->linked && e->shard == s &&
		       atomic_load_explicit(&e->state, memory_order_relaxed) == WEFT_TE_PENDING);
		atomic_store_explicit(&e->firing_thread, me, memory_order_relaxed);
		/* release: a canceller that acquires FIRING sees this firing_thread. */
		atomic_store_explicit(&e->state, WEFT_TE_FIRING, memory_order_release);
	}
	/* Always: an advance that only cascaded still moves the next expiry
	 * (a lower bound for nodes above level 0); a stale value in the past
	 * would keep idle workers from sleeping. */
	publish_next(s);
	if (n)
		atomic_fetch_add_explicit(&s->fired, n, memory_order_relaxed);
	weft__spin_unlock(&s->lock);
	bool outer = in_fire;
	in_fire = true;
	while (list) {
		weft_tentry_t *e = (weft_tentry_t *)list;
		list = list->next; /* before firing: the entry belongs to fire now */
		e->fire(e);
	}
	in_fire = outer;
	return n;
}

size_t weft__timers_run_due(struct weft_runtime *rt, weft_shard_t *s)
{
	uint64_t tick = now_tick();
	if (atomic_load_explicit(&s->next_tick, memory_order_acquire) > tick)
		return 0;
	return weft__timers_run(rt, s, tick);
}

size_t weft__timers_poll(weft_worker *w, bool all_shards)
{
	struct weft_runtime *rt = w->rt;
	uint64_t tick = now_tick();
	size_t n = 0;
	if (atomic_load_explicit(&w->shard->next_tick, memory_order_acquire) <= tick)
		n += weft__timers_run(rt, w->shard, tick);
	if (all_shards) {
		for (int i = 0; i < rt->nbase; i++) {
			weft_shard_t *s = &rt->shards[i];
			if (s != w->shard && atomic_load_explicit(&s->next_tick, memory_order_acquire) <= tick)
				n += weft__timers_run(rt, s, tick);
		}
	}
	return n;
}

weft_time_t weft__timers_next_deadline(struct weft_runtime *rt)
{
	uint64_t m = UINT64_MAX;
	for (int i = 0; i < rt->nbase; i++) {
		uint64_t t = atomic_load_explicit(&rt->shards[i].next_tick, memory_order_acquire);
		if (t < m)
			m = t;
	}
	if (m == UINT64_MAX || m > (uint64_t)(INT64_MAX / 1000000))
		return WEFT_NEVER;
	return (weft_time_t)m * 1000000;
}

/* ------------------------------------------------------------ sleep */

int weft_sleep_until(weft_time_t deadline)
{
	weft_task *t = weft__cur_task();
	if (!t) {
		struct timespec ts = weft__ts_of(deadline == WEFT_NEVER ? INT64_MAX : deadline);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		return 0;
	}
	if (weft__is_step(t)) /* it cannot park: only a deadline that has passed is kept */
		return deadline != WEFT_NEVER && deadline <= weft_now() ? 0 : -EPERM;
	for (;;) {
		weft_waker_t w = weft_park_prepare();
		int r = weft__park_on(w, deadline, WEFT_WAIT_SLEEP);
		if (r == -ETIMEDOUT)
			return 0;
		if (r == -ECANCELED)
			return r;
		if (weft_now() >= deadline)
			return 0;
	}
}

int weft_sleep(weft_time_t ns)
{
	return weft_sleep_until(weft_deadline_in(ns));
}

/* ------------------------------------------------------------ periodic timers */

/* A user timer. Stopping it races with firing it; `lk` orders the two:
 *  - timer_fire reads `stopped` under lk before calling fn and again after,
 *    and re-arms or ends the entry (IDLE) under lk, so once a stop has set
 *    `stopped` under lk, fn runs at most to the end of a call already begun
 *    and the timer is never re-armed;
 *  - a stop that finds the entry FIRING on its own thread (from fn, or from
 *    another timer's fn in the same batch) or on another thread while this
 *    thread is itself inside a fire function sets `orphaned` instead of
 *    waiting: the firing side frees the timer when it is done with it. Any
 *    other stop waits for the entry to leave FIRING (weft__tentry_cancel),
 *    then frees it.
 * Live timers are on the runtime's list; weft_runtime_stop frees those still
 * started. */
struct weft_timer {
	weft_tentry_t e;
	void (*fn)(void *);
	void *arg;
	weft_time_t next, period;
	struct weft_runtime *rt;
	struct weft_timer *prev, *next_timer; /* rt->user_timers */
	_Atomic uint32_t lk;
	bool stopped;
	bool orphaned;
};

static void timer_unlist(weft_timer_t *t)
{
	struct weft_runtime *rt = t->rt;
	pthread_mutex_lock(&rt->user_timers_lock);
	assert((t->prev == NULL) == (rt->user_timers == t) && (!t->next_timer || t->next_timer->prev == t));
	WEFT_LIST_UNLINK(rt->user_timers, t, next_timer, prev);
	pthread_mutex_unlock(&rt->user_timers_lock);
}

static void user_timers_free(struct weft_runtime *rt)
{
	/* The workers have exited: nothing fires any more. */
	weft_timer_t *t = rt->user_timers;
	while (t) {
		weft_timer_t *n = t->next_timer;
		free(t);
		t = n;
	}
	rt->user_timers = NULL;
}

/* The first period boundary after now: last + k * period, k >= 1, missed
 * periods skipped (not bunched); WEFT_NEVER if it would not fit. */
static weft_time_t next_due(weft_time_t last, weft_time_t period, weft_time_t now)
{
	weft_time_t next;
	if (__builtin_add_overflow(last, period, &next) || next >= WEFT_NEVER)
		return WEFT_NEVER;
	if (next > now)
		return next;
	/* now - next in unsigned: a first deadline long past (INT64_MIN) is
	 * further from now than int64_t reaches. The boundary after now is
	 * now + (period - (now - next) % period), in (now, now + period]. */
	uint64_t behind = (uint64_t)now - (uint64_t)next;
	weft_time_t left = period - (weft_time_t)(behind % (uint64_t)period);
	if (left >= WEFT_NEVER - now)
		return WEFT_NEVER;
	return now + left;
}

static void timer_fire(weft_tentry_t *e)
{
	weft_timer_t *t = (weft_timer_t *)e;
	assert(in_fire && atomic_load_explicit(&e->state, memory_order_relaxed) == WEFT_TE_FIRING);
	weft__spin_lock(&t->lk);
	bool run = !t->stopped;
	weft__spin_unlock(&t->lk);
	if (run)
		t->fn(t->arg);
	weft__spin_lock(&t->lk);
	if (t->orphaned) {
		weft__spin_unlock(&t->lk);
		timer_unlist(t);
		free(t);
		return;
	}
	if (t->period > 0 && !t->stopped) {
		weft_time_t now = weft_now();
		t->next = next_due(t->next, t->period, now);
		if (t->next != WEFT_NEVER) {
			/* FIRING -> PENDING, under lk: a stop that sets stopped
			 * later finds it in a wheel and cancels it there. */
			assert(atomic_load_explicit(&e->state, memory_order_relaxed) == WEFT_TE_FIRING);
			arm_in(e->shard, e, t->next);
			weft__spin_unlock(&t->lk);
			return;
		}
		/* The next one is beyond the end of time: the timer stays
		 * started (stop frees it) but never fires again. */
	}
	weft__tentry_done(e); /* a stop waiting in weft__tentry_cancel frees it after this */
	weft__spin_unlock(&t->lk);
}

int weft_timer_start(weft_timer_t **out, weft_time_t first, weft_time_t period, void (*fn)(void *), void *arg)
{
	if (!out || !fn || period < 0)
		return -EINVAL;
	/* From outside the runtime's workers, hold it: a stop racing this call
	 * must not free its shards and timer list under it (runtime.c,
	 * "Lifetime"); a stop that has begun refuses the timer. Nothing of the
	 * runtime is read before the hold. */
	weft_worker *w = weft__self_worker;
	struct weft_runtime *rt = w ? w->rt : weft_runtime_current();
	if (!rt)
		return -ESHUTDOWN;
	bool outside = !w;
	if (outside && !weft__rt_hold(rt))
		return -ESHUTDOWN;
	int e = 0;
	weft_timer_t *t = NULL;
	if (atomic_load(&rt->stopping))
		e = -ESHUTDOWN;
	else if (!(t = calloc(1, sizeof *t)))
		e = -ENOMEM;
	if (e) {
		if (outside)
			weft__rt_unhold(rt);
		return e;
	}
	t->fn = fn;
	t->arg = arg;
	t->next = first;
	t->period = period;
	t->rt = rt;
	pthread_mutex_lock(&rt->user_timers_lock);
	WEFT_LIST_PUSH(rt->user_timers, t, next_timer, prev);
	pthread_mutex_unlock(&rt->user_timers_lock);
	*out = t;
	/* Arm in the runtime held above, not the one current now: a plain
	 * thread's default runtime may have changed (or gone) meanwhile. */
	if (first != WEFT_NEVER) /* else: started, never due */
		tentry_arm_in(rt, outside ? &rt->shards[0] : w->shard, &t->e, first, timer_fire);
	if (outside)
		weft__rt_unhold(rt);
	return 0;
}

int weft_timer_stop(weft_timer_t *t)
{
	if (!t)
		return -EINVAL;
	weft__spin_lock(&t->lk);
	if (t->stopped) {
		weft__spin_unlock(&t->lk);
		return -EINVAL; /* stopped twice (from fn, then again) */
	}
	t->stopped = true;
	if (atomic_load_explicit(&t->e.state, memory_order_acquire) == WEFT_TE_FIRING &&
	    (in_fire || atomic_load_explicit(&t->e.firing_thread, memory_order_relaxed) == self_thread_id())) {
		t->orphaned = true; /* the firing side frees it */
		weft__spin_unlock(&t->lk);
		return 0;
	}
	weft__spin_unlock(&t->lk);
	/* Not re-armed from here on; a fire already under way ends without
	 * calling fn again (it saw stopped) or finishes its current call. */
	weft__tentry_cancel(&t->e);
	/* Stopped, so not re-armed: the entry is in no wheel and no fire
	 * function has it. */
	assert(atomic_load_explicit(&t->e.state, memory_order_acquire) == WEFT_TE_IDLE);
	/* A fire that just ended the entry (IDLE) still holds lk for one more
	 * store: let it go before freeing. */
	weft__spin_lock(&t->lk);
	weft__spin_unlock(&t->lk);
	timer_unlist(t);
	free(t);
	return 0;
}

