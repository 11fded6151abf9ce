/* timer.c - timer shards, deadlines of waits, sleep, user timers.
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
		weft__wake_for_timer(rt);
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

/* Whether this thread is running timer fire functions (weft_timer_stop and
 * weft_timer_destroy must not wait for another thread's fire from inside
 * one: two timers stopping each other would wait forever). */
static __thread bool in_fire;

size_t weft__timers_run(struct weft_runtime *rt, weft_shard_t *s, uint64_t tick)
{
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
	if (unlikely(rt->sim) && n > 1)
		weft__sim_shuffle_fires(rt, &list); /* equal ticks fire in a seeded order */
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
	if (!t && unlikely(weft__sim_mine != NULL)) {
		/* A sim's owner thread sleeps in virtual time: its park drives
		 * the simulation. */
		int r = weft_park(weft_park_prepare(), deadline);
		return r == -ETIMEDOUT ? 0 : r;
	}
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

/* ------------------------------------------------------------ user timers */

/* A user timer (weft_timer_t): an entry and a schedule. Calls on a timer
 * race each other and the timer's fires; the timer's spinlock `lk` orders
 * them.
 *  - Under lk the entry's state changes only in these ways: IDLE -> PENDING
 *    by an arming (every arming of a user timer holds lk), FIRING -> PENDING
 *    or IDLE at the end of timer_fire (under lk), and PENDING -> FIRING by
 *    weft__timers_run (under the shard lock only). So a holder of lk that
 *    sees IDLE or FIRING sees it stay so, and one that sees PENDING takes
 *    the entry off its wheel under the shard lock unless it is FIRING by
 *    then (timer_unarm).
 *  - Every start and stop bumps `gen`; an arming records the gen it arms
 *    for (`armed_gen`). timer_fire calls fn only if that schedule is still
 *    in force (started, armed_gen == gen, read under lk). After fn, under
 *    lk, it frees the timer (destroyed from a timer function meanwhile:
 *    `orphaned`), or arms the schedule a start set meanwhile, or re-arms its
 *    periodic one, or ends the entry (IDLE); then it bumps `fires`, its last
 *    touch of the timer but for unlocking lk.
 *  - So neither start nor stop waits to change the schedule: they take a
 *    PENDING entry off its wheel (start then arms an IDLE one at once) and
 *    leave a FIRING one to timer_fire, which sees the new gen: it does not
 *    call fn (if it has not yet) and arms the new schedule, if any. A stop
 *    from outside the timer functions then waits until `fires` moves: the
 *    fire that had the entry is over, fn is not running. From a timer
 *    function it must not wait (two timers stopping each other would wait
 *    for ever): a call begun on another worker may still be running when
 *    it returns.
 *  - destroy is a stop that also frees the timer: at once, after that wait,
 *    or - from a timer function, of an entry still FIRING - by timer_fire
 *    when the fire ends (`orphaned`).
 * Lock order: lk, then a shard lock. Timers are on the runtime's list from
 * create to destroy; weft_runtime_stop frees the ones left (its workers have
 * exited by then, so nothing fires any more). */
struct weft_timer {
	weft_tentry_t e;
	void (*fn)(void *);
	void *arg;
	struct weft_runtime *rt;
	struct weft_timer *prev, *next_timer; /* rt->user_timers, under its lock */
	_Atomic uint32_t lk;
	/* Under lk: */
	weft_time_t next, period; /* the schedule: the next call's deadline; 0 or the period */
	uint64_t gen;		  /* bumped by every start and stop */
	uint64_t armed_gen;	  /* the gen of the schedule the entry was armed for */
	bool started;		  /* a schedule is in force */
	bool destroyed;		  /* weft_timer_destroy has begun */
	bool orphaned;		  /* destroyed while FIRING, from a timer function: timer_fire frees it */
	_Atomic uint64_t fires;	  /* fires ended; bumped under lk */
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
		assert(atomic_load_explicit(&t->e.state, memory_order_relaxed) != WEFT_TE_FIRING && !t->orphaned);
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

/* Under lk: takes t's entry off its wheel if it is PENDING. Returns the state
 * it is in now, IDLE or FIRING (a fire has it; only timer_fire ends that). */
static int timer_unarm(weft_timer_t *t)
{
	assert(weft__spin_held(&t->lk));
	weft_tentry_t *e = &t->e;
	int st = atomic_load_explicit(&e->state, memory_order_acquire);
	if (st == WEFT_TE_PENDING) {
		weft_shard_t *s = e->shard; /* set by the arming, under lk: stable */
		weft__spin_lock(&s->lock);
		st = atomic_load_explicit(&e->state, memory_order_relaxed);
		if (st == WEFT_TE_PENDING) {
			assert(e->node.linked && e->shard == s); /* PENDING: in s's wheel */
			weft__wheel_del(&s->wheel, &e->node);
			atomic_store_explicit(&e->state, WEFT_TE_IDLE, memory_order_relaxed);
			publish_next(s);
			st = WEFT_TE_IDLE;
		}
		weft__spin_unlock(&s->lock);
	}
	/* A fire of this thread's batch runs with in_fire set. */
	assert(st != WEFT_TE_FIRING || in_fire ||
	       atomic_load_explicit(&e->firing_thread, memory_order_relaxed) != self_thread_id());
	return st;
}

/* Under lk, the entry IDLE or FIRING on this thread: arms it in shard s for
 * the schedule in force. Returns whether the shard's next expiry moved
 * earlier (a parked worker may need waking). */
static bool timer_arm(weft_timer_t *t, weft_shard_t *s)
{
	assert(weft__spin_held(&t->lk) && t->started && !t->destroyed);
	t->armed_gen = t->gen;
	if (t->next == WEFT_NEVER)
		return false; /* started, never due */
	return arm_in(s, &t->e, t->next);
}

static void timer_fire(weft_tentry_t *e)
{
	weft_timer_t *t = (weft_timer_t *)e;
	assert(in_fire && atomic_load_explicit(&e->state, memory_order_relaxed) == WEFT_TE_FIRING);
	weft__spin_lock(&t->lk);
	bool run = t->started && t->armed_gen == t->gen;
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
	if (t->started && t->armed_gen == t->gen) {
		/* The schedule this fire was armed for: its call is done. (gen
		 * only grows, and started only turns true with a new gen: the
		 * same schedule now means the same before fn, so fn ran.) */
		assert(run);
		if (t->period > 0)
			t->next = next_due(t->next, t->period, weft_now()); /* WEFT_NEVER: beyond the end of time */
		else
			t->started = false; /* a one-shot timer's call */
	}
	/* Else a start or stop replaced the schedule while the fire had the
	 * entry: a start left its first deadline in next, for us to arm. */
	if (t->started && t->next != WEFT_NEVER) {
		/* FIRING -> PENDING, under lk. The worker running this fire
		 * re-reads the shards' next expiries before it parks: no wake. */
		timer_arm(t, e->shard);
	} else {
		weft__tentry_done(e); /* FIRING -> IDLE */
	}
	/* release: a stop that waits for this fire to end (it acquires the
	 * bump) sees everything it did. */
	atomic_fetch_add_explicit(&t->fires, 1, memory_order_release);
	weft__spin_unlock(&t->lk);
}

/* Calls on a timer made outside its runtime's workers (plain threads, tasks
 * and timers of other runtimes) hold the runtime: its shards and timer list
 * stay whole until they let go (runtime.c, "Lifetime"). Returns whether the
 * caller is outside; in *err 0, -ESHUTDOWN if the runtime's destroy has
 * begun, or -EPERM if it is a sim the caller does not own. */
static bool timer_hold(struct weft_runtime *rt, int *err)
{
	weft_worker *w = weft__self_worker;
	bool outside = !w || w->rt != rt;
	*err = 0;
	if (outside && !weft__rt_hold(rt)) {
		*err = -ESHUTDOWN;
	} else if (outside && unlikely(rt->sim) && !weft__sim_ours(rt)) {
		weft__rt_unhold(rt);
		*err = -EPERM;
	}
	return outside;
}

int weft_timer_create(weft_timer_t **out, void (*fn)(void *), void *arg)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!fn)
		return -EINVAL;
	/* Nothing of the runtime is read before the hold: a stop racing this
	 * call must not free its timer list under it; a stop that has begun
	 * refuses the timer. */
	struct weft_runtime *rt = weft_runtime_current();
	if (!rt)
		return -ESHUTDOWN;
	int e;
	bool outside = timer_hold(rt, &e);
	if (e)
		return e;
	weft_timer_t *t = NULL;
	if (atomic_load(&rt->stopping))
		e = -ESHUTDOWN;
	else if (!(t = calloc(1, sizeof *t)))
		e = -ENOMEM;
	if (!e) {
		t->e.fire = timer_fire;
		t->fn = fn;
		t->arg = arg;
		t->rt = rt;
		pthread_mutex_lock(&rt->user_timers_lock);
		WEFT_LIST_PUSH(rt->user_timers, t, next_timer, prev);
		pthread_mutex_unlock(&rt->user_timers_lock);
		*out = t;
	}
	if (outside)
		weft__rt_unhold(rt);
	return e;
}

int weft_timer_start(weft_timer_t *t, weft_time_t first, weft_time_t period)
{
	if (!t || period < 0)
		return -EINVAL;
	struct weft_runtime *rt = t->rt;
	int e;
	bool outside = timer_hold(rt, &e);
	if (e)
		return e;
	bool wake = false;
	weft__spin_lock(&t->lk);
	if (t->destroyed) {
		e = -EINVAL; /* destroyed from its function, which still runs */
	} else if (atomic_load(&rt->stopping)) {
		e = -ESHUTDOWN;
	} else {
		t->gen++;
		t->started = true;
		t->next = first;
		t->period = period;
		/* IDLE: arm it here (in this worker's shard, or the first
		 * one from outside, waking a worker to see it). FIRING:
		 * timer_fire arms the new schedule when the fire ends. */
		if (timer_unarm(t) == WEFT_TE_IDLE)
			wake = timer_arm(t, outside ? &rt->shards[0] : weft__self_worker->shard) ||
			       (outside && first != WEFT_NEVER);
	}
	weft__spin_unlock(&t->lk);
	if (wake)
		weft__wake_for_timer(rt);
	if (outside)
		weft__rt_unhold(rt);
	return e;
}

/* Ends t's schedule; with destroy, also marks it destroyed. Returns
 * -EINVAL if it was destroyed already, 1 if timer_fire will free it, else 0
 * once no fire has it any more - unless called from a timer function, which
 * does not wait for a fire running on another worker. */
static int timer_disarm(weft_timer_t *t, bool destroy)
{
	weft__spin_lock(&t->lk);
	if (t->destroyed) {
		weft__spin_unlock(&t->lk);
		return -EINVAL;
	}
	t->gen++;
	t->started = false;
	t->destroyed = destroy;
	if (timer_unarm(t) == WEFT_TE_IDLE) {
		weft__spin_unlock(&t->lk);
		return 0;
	}
	/* FIRING: that fire sees the new gen - it calls fn no more and does
	 * not re-arm. */
	if (in_fire) {
		t->orphaned = destroy;
		weft__spin_unlock(&t->lk);
		return destroy ? 1 : 0;
	}
	uint64_t f = atomic_load_explicit(&t->fires, memory_order_relaxed);
	weft__spin_unlock(&t->lk);
	for (int n = 0; atomic_load_explicit(&t->fires, memory_order_acquire) == f; n++)
		weft__spin_backoff(n);
	/* The fire bumped fires under lk: let it unlock before a destroy
	 * frees the timer. */
	weft__spin_lock(&t->lk);
	weft__spin_unlock(&t->lk);
	return 0;
}

int weft_timer_stop(weft_timer_t *t)
{
	if (!t)
		return -EINVAL;
	int e;
	bool outside = timer_hold(t->rt, &e);
	if (e)
		return e;
	e = timer_disarm(t, false);
	if (outside)
		weft__rt_unhold(t->rt);
	return e;
}

int weft_timer_destroy(weft_timer_t *t)
{
	if (!t)
		return -EINVAL;
	struct weft_runtime *rt = t->rt;
	int e;
	bool outside = timer_hold(rt, &e);
	if (e)
		return e;
	e = timer_disarm(t, true);
	if (e == 0) {
		/* IDLE for good: nothing arms a destroyed timer. */
		assert(atomic_load_explicit(&t->e.state, memory_order_acquire) == WEFT_TE_IDLE);
		timer_unlist(t);
		free(t);
	}
	if (outside)
		weft__rt_unhold(rt);
	return e < 0 ? e : 0;
}
