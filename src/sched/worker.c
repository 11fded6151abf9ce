/* worker.c - the worker loop: finding work, running tasks, spinning, parking.
 *
 * How work moves
 * --------------
 * A worker runs tasks from, in order: the global queue first every
 * WEFT_GLOBAL_CHECK runs (so it cannot be starved by local work); its
 * next-task slot and ring (runq.c); expired timers of its shard (which make
 * tasks ready); the global queue; then, as a "spinning" worker, it steals half
 * of a random victim's ring (and, on the last round, the victim's next-task
 * slot if the victim is busy in a task) if the steal gate allows (below),
 * and runs other shards' expired timers. Finding only gated work, it sleeps
 * until the gate opens; finding nothing, it parks on a futex until the next
 * timer deadline.
 *
 * Spinning and parking (the protocol that keeps work from being stranded)
 * -----------------------------------------------------------------------
 * rt->nspinning counts workers looking for work; at most half of the busy
 * workers spin at once. Whoever makes a task ready (weft__ready, spawn) calls
 * weft__wakep after publishing it: if nobody spins and a worker is idle, it
 * claims the spinning role for that worker (nspinning 0 -> 1 by CAS), pops it
 * from the idle list and wakes its futex. A spinning worker that finds work
 * stops spinning and, if it was the last spinner, calls wakep itself, so that
 * one worker keeps looking while work may remain (a chain of wake-ups rather
 * than a thundering herd).
 *
 * Why no wake-up is lost: a worker about to park (1) stops spinning
 * (nspinning--), (2) pushes itself on the idle list (nidle++), (3) re-checks
 * every run queue, the global queue and the timers, and only then sleeps; a
 * producer (a) publishes the task, (b) issues a full fence, (c) reads
 * nspinning and nidle. All of (1)-(3) and (a)-(c) are sequentially
 * consistent, so either the producer sees the worker idle (and wakes it) or
 * the worker sees the task in its re-check (and takes itself off the list).
 * The futex word is read before the re-check, so a wake between the re-check
 * and the sleep makes the futex wait return at once.
 *
 * Stealing, and the gate that keeps communicating tasks together
 * --------------------------------------------------------------
 * A message or a lock handed between two workers moves cache lines across
 * cores, which costs far more than the work itself when the work is small
 * (on an AMD guest, ~100 ns a line): fanin ran 3x slower on two workers
 * than on one. Wakes already keep partners together (the woken task goes
 * to the waker's worker); stealing is what pulls them apart. So a thief
 * takes work from a busy victim (its ring or its next-task slot) only once
 * the victim has had work queued without a break (its `dry` count has not
 * moved) for the gate, WEFT_STEAL_AGE << steal_shift, and then at most once
 * per gate per victim (steal_ripe). A victim that is parked, or whose
 * queues are empty, is not gated; nor is the global queue (work from
 * outside, or a full ring's overflow).
 *
 * The gate learns (judge_steal). Each worker counts the cross-worker wakes
 * its tasks make (st_xwakes: a running task wakes one that parked on
 * another worker - weft__ready sees where from the link field, which holds
 * the parking worker while a task is parked). At each steal the thief
 * looks back at the time since its previous steal: if the workers woke
 * each other more often than once per WEFT_STEAL_COMM, what it stole was
 * talking to what it was stolen from - it doubles its gate (up to
 * WEFT_STEAL_SHIFT_MAX doublings, ~25 ms); otherwise it halves it (down to
 * WEFT_STEAL_AGE, 50 us). Independent work (spawned children, yielding
 * loops, a pool of long jobs) keeps the short gate and spreads within
 * 50 us; a producer/consumer mesh ends up on one worker, with the thief
 * trying again at most every ~25 ms. The gate only shortens: a victim that
 * has stayed in one task run for WEFT_STEAL_STUCK (1 ms) is not getting to
 * its queue, and a thief takes from it then, whatever its gate, steal after
 * steal. So work queued behind a worker that keeps running other tasks
 * waits for that worker or for the gate (per half of the queue), and work
 * queued behind one long task waits 1 ms at most.
 *
 * A thief that finds only gated work sleeps until the gate opens
 * (gate_sleep), keeping the spinning role - so the busy worker's wakep
 * finds a spinner and stays a few loads - and registered in rt->ngated, so
 * a put on the global queue (weft__kick_gated) or a timer armed earlier
 * than the sleepers know (weft__wake_for_timer) kicks it; a full fence on
 * each side pairs the put or the arming with the registration, and the
 * sleeper reads the queue and the timers after registering. It sleeps in
 * the poller when it can, so a ready descriptor wakes it too, and never
 * past the next timer. The statistics count the sleep as idle time.
 *
 * The poller (the io module's netpoller, or any weft_poller_ops_t)
 * ----------------------------------------------------------------
 * There is no poller thread. rt->poll_busy admits one worker at a time into
 * ops->poll. Workers poll without blocking when their queues run dry and
 * every WEFT_GLOBAL_CHECK runs; the monitor polls when nobody has for 10 ms.
 * One parking worker sleeps inside a blocking poll instead of on its futex
 * (bounded by the next timer), so a ready descriptor wakes it directly; the
 * others sleep on their futexes. Tasks the poll wakes queue on the polling
 * worker without waking anyone (w->dispatching); once the batch is in, the
 * worker calls wakep if it holds more than it will run next. Waking a worker
 * that sleeps in the poller goes through ops->wake (weft__worker_kick).
 */
#include "internal.h"

#include <assert.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../arch/context.h"
#include "../base/pool.h"
#include "futex.h"

__thread weft_worker *weft__self_worker __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------------ switching */

/* glibc declares __errno_location const, so the compiler may reuse the
 * address it returned before a switch - the previous thread's errno. Going
 * through a function the optimizer cannot see into forces a fresh lookup. */
__attribute__((noinline, noipa)) static int *errno_here(void)
{
	return &errno;
}

/* Called on the coroutine's stack: go back to the worker loop, which carries
 * out `action`. Returns when the task is resumed. */
void weft__switch_to_sched(weft_worker *w, int action)
{
	weft_task *t = w->cur;
	/* Only a coroutine has a stack of its own to switch away from. */
	assert(w == weft__self_worker && t != NULL && !weft__is_step(t));
	assert(action == WEFT_ACT_YIELD || action == WEFT_ACT_PARK || action == WEFT_ACT_EXIT);
	w->action = action;
	int e = *errno_here();
#ifdef WEFT_ASAN
	__sanitizer_start_switch_fiber(action == WEFT_ACT_EXIT ? NULL : &t->asan_fake, w->asan_bottom, w->asan_size);
#endif
#ifdef WEFT_TSAN
	__tsan_switch_to_fiber(w->tsan_fiber, 0);
#endif
	weft__ctx_switch(&t->sp, w->sched_sp);
	/* Resumed, maybe on another worker. */
#ifdef WEFT_ASAN
	/* The stack we came from is that worker's own: where we go back to. */
	w = weft__self_worker;
	__sanitizer_finish_switch_fiber(t->asan_fake, &w->asan_bottom, &w->asan_size);
#endif
	*errno_here() = e;
}

static void coro_entry(void *arg)
{
	weft_task *t = arg;
#ifdef WEFT_ASAN
	/* Record the worker's stack, which the switch back names (ASan
	 * must know which stack it is on: a sim's worker is its owner
	 * thread, which goes back to its own code between drives). */
	weft_worker *w = weft__self_worker;
	__sanitizer_finish_switch_fiber(NULL, &w->asan_bottom, &w->asan_size);
#endif
	void *r = t->fn(t->arg);
	/* weft_exit comes here too, through its own switch. */
	t->result = r;
	weft__switch_to_sched(weft__self_worker, WEFT_ACT_EXIT);
	__builtin_unreachable();
}

/* A coroutine's first run: take a stack from this worker's cache, where the
 * stacks of the coroutines it has finished went (stack.h). False if none can
 * be had: the coroutine then ends without running, with result -ENOMEM. */
static bool bind_stack(weft_worker *w, weft_task *t)
{
	assert(t->stack == NULL);
	weft_stack_t *s;
	if (unlikely(weft__stack_alloc(w->rt->stacks, &w->stacks, t->stack_req, &s) != 0))
		return false;
	t->stack = s;
#ifdef WEFT_HAVE_VALGRIND
	s->valgrind_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s->lo + s->size);
#endif
	t->sp = weft__ctx_make(weft__stack_top(s), coro_entry, t);
	return true;
}

/* Returns false if the coroutine could not start (no stack). */
static inline __attribute__((always_inline)) bool run_coro(weft_worker *w, weft_task *t)
{
	if (unlikely(t->stack == NULL) && !bind_stack(w, t))
		return false;
#ifdef WEFT_ASAN
	__sanitizer_start_switch_fiber(&w->asan_fake, t->stack->lo, t->stack->size);
#endif
#ifdef WEFT_TSAN
	__tsan_switch_to_fiber(t->tsan_fiber, 0);
#endif
	weft__ctx_switch(&w->sched_sp, t->sp);
#ifdef WEFT_ASAN
	__sanitizer_finish_switch_fiber(w->asan_fake, NULL, NULL);
#endif
	if (unlikely(!weft__stack_canary_ok(t->stack)))
		weft__fatal_task(t, "stack overflow (canary overwritten)");
	return true;
}

/* Returns the action the task ended its run with (the sim hashes it).
 * Inlined into both callers: the worker loop keeps it in line, as when it
 * was its only caller. */
static inline __attribute__((always_inline)) int run_task(weft_worker *w, weft_task *t)
{
	/* Out of exactly one queue, and alive: the running reference is held
	 * until weft__task_finish. */
	assert(w->cur == NULL);
	assert(WEFT_RS_STATE(atomic_load_explicit(&t->run_state, memory_order_relaxed)) == WEFT_RS_RUNNABLE);
	assert(atomic_load_explicit(&t->refs, memory_order_relaxed) > 0);
	w->cur = t;
	w->tick++;
	atomic_store_explicit(&w->mon_tick, w->tick, memory_order_relaxed);
	atomic_store_explicit(&w->in_task, 1, memory_order_relaxed);
	atomic_store_explicit(&t->run_state, WEFT_RS_RUNNING, memory_order_relaxed);
	atomic_store_explicit(&w->st_runs, atomic_load_explicit(&w->st_runs, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	int action;
	if (weft__is_step(t)) {
		if (unlikely(t->timer != NULL) &&
		    WEFT_PS_PHASE(atomic_load_explicit(&t->park.state, memory_order_relaxed)) != WEFT_PH_OPEN) {
			/* The wait it parked in has ended: its deadline must not
			 * fire later. (A wait still open - the task yielded while
			 * registered, and runs again before it ends - keeps its
			 * deadline.) */
			weft__park_timer_drop(t);
		}
		void *res = NULL;
		weft_step_t r = t->step(t->arg, &res);
		if (r == WEFT_STEP_DONE) {
			t->result = res;
			action = WEFT_ACT_EXIT;
		} else if (likely(r == WEFT_STEP_PARKED || r == WEFT_STEP_YIELD)) {
			action = r == WEFT_STEP_PARKED ? WEFT_ACT_PARK : WEFT_ACT_YIELD;
		} else {
			/* A programming error: say so, and end the task. */
			weft__report_task(t, "step function returned a value that is not a weft_step_t", (long)r);
			t->result = (void *)(intptr_t)-EINVAL;
			action = WEFT_ACT_EXIT;
		}
		/* Its op may be freed with its state now, while a wait queue
		 * still links it: nothing can be saved. */
		if (unlikely(action == WEFT_ACT_EXIT && t->step_op != NULL))
			weft__fatal_task(t, "ended with a _step call registered (repeat it until it completes first)");
	} else if (likely(run_coro(w, t))) {
		action = w->action;
	} else {
		t->result = (void *)(intptr_t)-ENOMEM;
		action = WEFT_ACT_EXIT;
	}
	atomic_store_explicit(&w->in_task, 0, memory_order_relaxed);
	/* Nobody changes the state of a running task (weft__ready only takes
	 * a parked one). */
	assert(w->cur == t && atomic_load_explicit(&t->run_state, memory_order_relaxed) == WEFT_RS_RUNNING);
	w->cur = NULL;
	switch (action) {
	case WEFT_ACT_YIELD:
		atomic_store_explicit(&t->run_state, WEFT_RS_RUNNABLE, memory_order_relaxed);
		/* The yielder goes behind the others: work another worker may take. */
		weft__runq_put(w, t, false);
		weft__wakep(w->rt);
		break;
	case WEFT_ACT_PARK:
		/* A coroutine parks in an open wait (weft__park_on checked it),
		 * which a waker may have ended since; only this worker's commit
		 * below moves it to PARKED. (A step function may return PARKED
		 * without a wait: it then runs again.) */
		assert(weft__is_step(t) ||
		       WEFT_PS_PHASE(atomic_load_explicit(&t->park.state, memory_order_relaxed)) == WEFT_PH_OPEN ||
		       WEFT_PS_PHASE(atomic_load_explicit(&t->park.state, memory_order_relaxed)) == WEFT_PH_WOKEN);
		atomic_store_explicit(&t->run_state, (uint8_t)(WEFT_RS_WAITING | w->wait_what << 4),
				      memory_order_relaxed);
		w->wait_what = WEFT_WAIT_PARK;
		/* In no queue while parked: the link names where it parked, for
		 * weft__ready's count of cross-worker wakes (before the commit,
		 * which publishes it to the waker). */
		t->next = (weft_task *)w;
		if (!weft__park_commit(t)) {
			/* Woken before it got off the CPU: run it again soon, after the
			 * others (a yield), which keeps a spinning waiter fair. */
			atomic_store_explicit(&t->run_state, WEFT_RS_RUNNABLE, memory_order_relaxed);
			if (weft__runq_put(w, t, false) == WEFT_RUNQ_GLOBAL)
				weft__wakep(w->rt);
		}
		break;
	case WEFT_ACT_EXIT:
		weft__task_finish(w, t);
		break;
	default:
		abort(); /* unreachable: a coroutine always names its action */
	}
	return action;
}

int weft__run_task(weft_worker *w, weft_task *t)
{
	return run_task(w, t);
}

/* ------------------------------------------------------------ waking */

void weft__wakep(struct weft_runtime *rt)
{
	weft__full_fence(rt);
	if (atomic_load(&rt->nspinning) != 0 || atomic_load(&rt->nidle) == 0)
		return;
	int zero = 0;
	if (!atomic_compare_exchange_strong(&rt->nspinning, &zero, 1))
		return;
	pthread_mutex_lock(&rt->idle_lock);
	int n = atomic_load_explicit(&rt->nidle, memory_order_relaxed);
	weft_worker *v = NULL;
	assert(n >= 0 && n <= WEFT_MAX_WORKERS + WEFT_EXTRA_WORKERS);
	if (n > 0) {
		v = rt->idle[n - 1];
		assert(atomic_load_explicit(&v->parked, memory_order_relaxed));
		atomic_store(&rt->nidle, n - 1);
		atomic_store_explicit(&v->parked, false, memory_order_relaxed);
		/* Under the lock: a worker that fails to find itself in remove_idle
		 * must then see that it was handed the spinning role. */
		atomic_store(&v->woken_spinning, true);
	}
	pthread_mutex_unlock(&rt->idle_lock);
	if (!v) {
		assert(atomic_load_explicit(&rt->nspinning, memory_order_relaxed) > 0); /* our claim is in it */
		atomic_fetch_sub(&rt->nspinning, 1);
		return;
	}
	weft__worker_kick(v);
}

/* Wake a parked worker wherever it sleeps. The worker stores in_poll before
 * it re-reads park_word and we bump park_word before we read in_poll (both
 * seq_cst): either it sees the bump and does not block, or we see in_poll
 * and break its poll (a poller's wake is remembered until its next poll). */
void weft__worker_kick(weft_worker *v)
{
	atomic_fetch_add(&v->park_word, 1);
	if (atomic_load(&v->in_poll)) {
		struct weft_runtime *rt = v->rt;
		const weft_poller_ops_t *ops = atomic_load_explicit(&rt->poller_ops, memory_order_acquire);
		assert(ops != NULL); /* in_poll: it got into the poller, which stays installed */
		ops->wake(rt->poller_ctx);
	} else {
		weft__futex_wake(&v->park_word, 1);
	}
}

void weft__ready(weft_task *t)
{
	weft_worker *w = weft__self_worker;
	struct weft_runtime *rt = weft__task_rt(t);
	/* Two ways in: a new task (FREE, from spawn) or one whose park a waker
	 * has just ended (WAITING, from PARKED: woke in park.c). Either way it
	 * is alive and in no queue, and its wait is not PARKED. */
	assert(WEFT_RS_STATE(atomic_load_explicit(&t->run_state, memory_order_relaxed)) == WEFT_RS_FREE ||
	       WEFT_RS_STATE(atomic_load_explicit(&t->run_state, memory_order_relaxed)) == WEFT_RS_WAITING);
	assert(WEFT_PS_PHASE(atomic_load_explicit(&t->park.state, memory_order_relaxed)) != WEFT_PH_PARKED);
	assert(atomic_load_explicit(&t->refs, memory_order_relaxed) > 0);
	if (w && w->rt == rt && w->cur &&
	    WEFT_RS_STATE(atomic_load_explicit(&t->run_state, memory_order_relaxed)) == WEFT_RS_WAITING &&
	    t->next != (weft_task *)w) {
		/* A task woke one that parked on another worker: communication
		 * across workers, which the steal gate weighs (steal_work). */
		atomic_store_explicit(&w->st_xwakes, atomic_load_explicit(&w->st_xwakes, memory_order_relaxed) + 1,
				      memory_order_relaxed);
	}
	atomic_store_explicit(&t->run_state, WEFT_RS_RUNNABLE, memory_order_relaxed);
	if (w && w->rt == rt) {
		if (w->dispatching) {
			/* A poller is handing out ready tasks: queue them all here; the
			 * worker wakes helpers once the batch is in (poll_once). */
			weft__runq_put(w, t, false);
			return;
		}
		/* Into the next-task slot. If the slot was empty, this worker runs
		 * the task as soon as the current one blocks or yields: waking
		 * another worker for it would only pull a message exchange across
		 * cores. A task kicked out of the slot is work to share. */
		if (weft__runq_put(w, t, true) == WEFT_RUNQ_NEXT && rt->has_monitor)
			return; /* if the current task runs on, the monitor sees it stuck */
	} else {
		/* From outside: a sim's owner thread alone may do this. */
		if (unlikely(rt->sim) && !weft__sim_ours(rt))
			weft__sim_leak(rt, "a task woken from another thread");
		weft__gq_put(rt, t, t, 1);
	}
	weft__wakep(rt);
}

bool weft_spin_worthwhile(void)
{
	weft_worker *w = weft__self_worker;
	if (!w)
		return !weft__sim_mine; /* a sim's owner thread: the holder cannot run meanwhile */
	struct weft_runtime *rt = w->rt;
	int nw = atomic_load_explicit(&rt->nworkers, memory_order_relaxed);
	/* Somebody else must be running, and nothing else waits here. */
	int resting = atomic_load_explicit(&rt->nidle, memory_order_relaxed) +
		      atomic_load_explicit(&rt->ngated, memory_order_relaxed);
	return nw > 1 && resting < nw - 1 && weft__runq_empty(w);
}

/* ------------------------------------------------------------ polling */

/* The poller's ops if the runtime has one and the caller got poll_busy
 * (nobody else is inside poll); release with poll_release. */
static const weft_poller_ops_t *poll_claim(struct weft_runtime *rt)
{
	const weft_poller_ops_t *ops = atomic_load_explicit(&rt->poller_ops, memory_order_acquire);
	if (!ops || atomic_load_explicit(&rt->poll_busy, memory_order_relaxed) || atomic_exchange(&rt->poll_busy, true))
		return NULL;
	return ops;
}

static void poll_release(struct weft_runtime *rt)
{
	assert(atomic_load_explicit(&rt->poll_busy, memory_order_relaxed)); /* ours, from poll_claim */
	atomic_store_explicit(&rt->last_poll, weft_now(), memory_order_relaxed);
	atomic_store(&rt->poll_busy, false);
}

/* One call of the poller. A worker (w) gets the tasks it wakes in its own
 * queue (w->dispatching); the monitor (w NULL) sends them to the global
 * queue, as any thread does. Returns poll's result. */
static int poll_call(struct weft_runtime *rt, const weft_poller_ops_t *ops, weft_worker *w, weft_time_t timeout)
{
	/* One poller at a time, never nested (poll only readies tasks). */
	assert(atomic_load_explicit(&rt->poll_busy, memory_order_relaxed));
	assert(!w || (w == weft__self_worker && !w->dispatching));
	if (w)
		w->dispatching = true;
	int n = ops->poll(rt->poller_ctx, timeout);
	if (w)
		w->dispatching = false;
	return n;
}

/* A non-blocking poll between tasks. Tasks it wakes queue here; if there is
 * more than one, others are woken to share them. */
static void poll_once(weft_worker *w)
{
	struct weft_runtime *rt = w->rt;
	const weft_poller_ops_t *ops = poll_claim(rt);
	if (!ops)
		return;
	int n = poll_call(rt, ops, w, 0);
	poll_release(rt);
	if (n > 0 && weft__runq_len(w) > 1)
		weft__wakep(rt);
}

void weft__poll_once(weft_worker *w)
{
	poll_once(w);
}

/* Busy workers that never run dry would leave ready descriptors unseen:
 * the monitor polls when nobody has for 10 ms (its wakes go to the global
 * queue, as from any thread). */
void weft__poll_from_monitor(struct weft_runtime *rt)
{
	if (weft_now() - atomic_load_explicit(&rt->last_poll, memory_order_relaxed) < 10 * WEFT_MSEC)
		return;
	const weft_poller_ops_t *ops = poll_claim(rt);
	if (!ops)
		return;
	poll_call(rt, ops, NULL, 0);
	poll_release(rt);
}

int weft_runtime_set_poller(weft_runtime_t *rt, const weft_poller_ops_t *ops, void *ctx)
{
	if (!rt || !ops || !ops->poll || !ops->wake)
		return -EINVAL;
	if (!atomic_load(&rt->live))
		return -ESHUTDOWN; /* stopped: its lock is destroyed (runtime.c, "Lifetime") */
	if (unlikely(weft__sim_foreign(rt)))
		return -EPERM; /* a sim is its owner thread's alone (sim.c) */
	int e = 0;
	pthread_mutex_lock(&rt->poller_lock);
	if (atomic_load(&rt->stopping))
		e = -ESHUTDOWN;
	else if (atomic_load_explicit(&rt->poller_ops, memory_order_relaxed))
		e = -EBUSY;
	else {
		rt->poller_ctx = ctx;
		atomic_store_explicit(&rt->poller_ops, ops, memory_order_release);
	}
	pthread_mutex_unlock(&rt->poller_lock);
	return e;
}

void *weft_runtime_poller(weft_runtime_t *rt, const weft_poller_ops_t *ops)
{
	/* A stopped runtime's poller was destroyed by its stop. */
	if (!rt || !ops || !atomic_load_explicit(&rt->live, memory_order_acquire))
		return NULL;
	return atomic_load_explicit(&rt->poller_ops, memory_order_acquire) == ops ? rt->poller_ctx : NULL;
}

/* ------------------------------------------------------------ finding work */

/* The gate: whether the work queued on v (ring or next-task slot) has
 * waited long enough to be stolen (see "Stealing" above). If not,
 * w->steal_wait says when it will have. */
static bool steal_ripe(weft_worker *w, weft_worker *v, weft_time_t *now)
{
	if (atomic_load_explicit(&v->parked, memory_order_relaxed))
		return true; /* nobody is there */
	if (weft__runq_empty(v))
		return true; /* nothing to gate */
	if (*now == 0)
		*now = weft_now();
	assert(v->index >= 0 && v->index < WEFT_MAX_WORKERS + WEFT_EXTRA_WORKERS);
	__typeof__(w->seen[0]) *s = &w->seen[v->index];
	uint32_t dry = atomic_load_explicit(&v->dry, memory_order_relaxed);
	uint32_t tick = atomic_load_explicit(&v->mon_tick, memory_order_relaxed);
	bool first = !s->set;
	s->set = true;
	if (first || s->dry != dry) {
		/* First sight, or its queues have run empty since: the work
		 * there now is new. */
		s->dry = dry;
		s->at = *now;
	}
	if (first || s->tick != tick) {
		s->tick = tick;
		s->tick_at = *now;
	}
	weft_time_t due = s->at + (WEFT_STEAL_AGE << w->steal_shift);
	/* A victim in one task run all along is not getting to its queue:
	 * locality gains nothing there. */
	weft_time_t stuck = s->tick_at + WEFT_STEAL_STUCK;
	if (atomic_load_explicit(&v->in_task, memory_order_relaxed) && stuck < due)
		due = stuck;
	if (*now >= due)
		return true;
	if (w->steal_wait == 0 || due < w->steal_wait)
		w->steal_wait = due;
	return false;
}

static uint64_t xwakes(struct weft_runtime *rt, int nw)
{
	uint64_t x = 0;
	for (int i = 0; i < nw; i++) {
		weft_worker *v = rt->workers[i];
		if (v)
			x += atomic_load_explicit(&v->st_xwakes, memory_order_relaxed);
	}
	return x;
}

/* At each steal, judge the time since the last one: if tasks woke each
 * other across workers more often than once per WEFT_STEAL_COMM of this
 * worker's busy time (the window less its time parked or asleep in the
 * gate) - the work stolen then, waking or woken by the work it was taken
 * from - spreading work costs more than it gains here: wait longer before
 * the next steal; otherwise shorter. */
static void judge_steal(weft_worker *w, weft_time_t now, uint64_t x)
{
	if (w->steal_t0) {
		int64_t idle =
			atomic_load_explicit(&w->st_idle_ns, memory_order_relaxed); /* ours: parks and gate sleeps */
		weft_time_t busy = now - w->steal_t0 - (idle - w->steal_i0);
		if ((x - w->steal_x0) * WEFT_STEAL_COMM > (uint64_t)(busy > 0 ? busy : 0)) {
			if (w->steal_shift < WEFT_STEAL_SHIFT_MAX)
				w->steal_shift++;
		} else if (w->steal_shift > 0) {
			w->steal_shift--;
		}
	}
	w->steal_t0 = now;
	w->steal_i0 = atomic_load_explicit(&w->st_idle_ns, memory_order_relaxed);
	w->steal_x0 = x;
}

static weft_task *steal_work(weft_worker *w)
{
	struct weft_runtime *rt = w->rt;
	int nw = atomic_load_explicit(&rt->nworkers, memory_order_acquire);
	weft_time_t now = 0;
	w->steal_wait = 0;
	for (int round = 0; round < 4; round++) {
		bool last = round == 3;
		int start = (int)(weft__rand(&w->rng) % (uint64_t)nw);
		for (int i = 0; i < nw; i++) {
			weft_worker *v = rt->workers[(start + i) % nw];
			if (v == w || v == NULL)
				continue;
			if (!steal_ripe(w, v, &now))
				continue;
			if (weft__runq_steal(w, v, last)) {
				if (now == 0)
					now = weft_now();
				judge_steal(w, now, xwakes(rt, nw));
				/* The next steal from v waits a whole gate again. */
				w->seen[v->index].at = now;
				atomic_store_explicit(&w->st_steals,
						      atomic_load_explicit(&w->st_steals, memory_order_relaxed) + 1,
						      memory_order_relaxed);
				uint32_t got = weft__runq_len(w);
				atomic_store_explicit(&w->st_stolen,
						      atomic_load_explicit(&w->st_stolen, memory_order_relaxed) + got,
						      memory_order_relaxed);
				return weft__runq_get(w);
			}
		}
		if (weft__timers_poll(w, true)) {
			weft_task *t = weft__runq_get(w);
			if (t)
				return t;
		}
	}
	return NULL;
}

static bool any_work(struct weft_runtime *rt)
{
	if (atomic_load(&rt->gq_len))
		return true;
	int nw = atomic_load(&rt->nworkers);
	for (int i = 0; i < nw; i++) {
		weft_worker *v = rt->workers[i];
		if (v && !weft__runq_empty(v))
			return true;
	}
	return false;
}

static void stop_spinning(weft_worker *w)
{
	if (w->spinning) {
		w->spinning = false;
		assert(atomic_load_explicit(&w->rt->nspinning, memory_order_relaxed) > 0); /* counts us */
		if (atomic_fetch_sub(&w->rt->nspinning, 1) == 1)
			weft__wakep(w->rt); /* we were the last spinner: hand the role on */
	}
}

static void remove_idle(struct weft_runtime *rt, weft_worker *w)
{
	pthread_mutex_lock(&rt->idle_lock);
	int n = atomic_load_explicit(&rt->nidle, memory_order_relaxed);
	assert(n >= 0 && n <= WEFT_MAX_WORKERS + WEFT_EXTRA_WORKERS);
	for (int i = 0; i < n; i++) {
		if (rt->idle[i] == w) {
			assert(atomic_load_explicit(&w->parked, memory_order_relaxed));
			rt->idle[i] = rt->idle[n - 1];
			atomic_store(&rt->nidle, n - 1);
			atomic_store_explicit(&w->parked, false, memory_order_relaxed);
			break;
		}
	}
	pthread_mutex_unlock(&rt->idle_lock);
}

/* Off the idle list, by ourselves (timeout, work found in the re-check) or
 * by a wakep that popped us. wakep sets woken_spinning under idle_lock as it
 * pops, so once remove_idle has taken that lock the flag tells which: a
 * popped worker inherits the spinning role wakep claimed for it. */
static void leave_idle(struct weft_runtime *rt, weft_worker *w)
{
	remove_idle(rt, w);
	assert(!atomic_load_explicit(&w->parked, memory_order_relaxed));
	if (atomic_exchange(&w->woken_spinning, false))
		w->spinning = true;
}

/* Sleep until deadline (> now) or a kick (weft__worker_kick; park_word is
 * no longer `word`): in the poller if nobody else is in it, so that a
 * ready descriptor wakes us too, else on the futex. The statistics see the
 * sleep as idle time: st_park_start is set for its length and st_idle_ns
 * grows by it before st_park_start is cleared (release: read_stats reads
 * them as a pair, stats.c). */
static void worker_sleep(weft_worker *w, uint32_t word, weft_time_t deadline, weft_time_t now)
{
	struct weft_runtime *rt = w->rt;
	atomic_store_explicit(&w->st_park_start, now, memory_order_release);
	bool polled = false;
	const weft_poller_ops_t *ops = poll_claim(rt);
	if (ops) {
		atomic_store(&w->in_poll, true);
		polled = atomic_load(&w->park_word) != word ||
			 poll_call(rt, ops, w, deadline == WEFT_NEVER ? WEFT_NEVER : deadline - now) >= 0;
		atomic_store(&w->in_poll, false);
		poll_release(rt);
	}
	if (!polled) {
		struct timespec ts = weft__ts_of(deadline - now);
		weft__futex_wait(&w->park_word, word, deadline == WEFT_NEVER ? NULL : &ts);
	}
	atomic_store_explicit(&w->st_idle_ns,
			      atomic_load_explicit(&w->st_idle_ns, memory_order_relaxed) + (weft_now() - now),
			      memory_order_release);
	atomic_store_explicit(&w->st_park_start, 0, memory_order_release);
}

/* Asleep in the steal gate until `until`: work is queued on a busy worker,
 * too young to take. Still spinning (so the busy worker's wakep, finding a
 * spinner, stays cheap); registered in ngated, so that work put on the
 * global queue - from outside, which no gate holds back - kicks us
 * (weft__kick_gated). A ready descriptor ends the sleep too (in the poller),
 * and the next timer bounds it. */
static void gate_sleep(weft_worker *w, weft_time_t until)
{
	struct weft_runtime *rt = w->rt;
	assert(w->spinning);
	uint32_t word = atomic_load(&w->park_word);
	atomic_store(&w->gated, true);
	atomic_fetch_add(&rt->ngated, 1);
	/* Pairs with the fence of weft__gq_put and of weft__wake_for_timer:
	 * either they see us registered (and kick us), or we see their task
	 * or their timer's deadline below. */
	weft__full_fence(rt);
	weft_time_t dl = weft__timers_next_deadline(rt);
	if (dl < until)
		until = dl;
	weft_time_t now = weft_now();
	if (until > now && atomic_load(&rt->gq_len) == 0 && !atomic_load(&rt->halt))
		worker_sleep(w, word, until, now);
	atomic_fetch_sub(&rt->ngated, 1);
	atomic_store(&w->gated, false);
}

void weft__wake_for_timer(struct weft_runtime *rt)
{
	weft__wakep(rt); /* its full fence orders the timer's arming before the load below */
	if (atomic_load(&rt->ngated) != 0)
		weft__kick_gated(rt, 1); /* one is enough: any worker runs any shard's timers */
}

void weft__kick_gated(struct weft_runtime *rt, uint32_t n)
{
	int nw = atomic_load_explicit(&rt->nworkers, memory_order_acquire);
	for (int i = 0; i < nw && n > 0; i++) {
		weft_worker *v = rt->workers[i];
		if (v && atomic_load(&v->gated)) {
			weft__worker_kick(v);
			n--;
		}
	}
}

/* Park until woken or the next timer is due. */
static void park_worker(weft_worker *w)
{
	struct weft_runtime *rt = w->rt;
	if (w->spinning) {
		w->spinning = false;
		assert(atomic_load_explicit(&rt->nspinning, memory_order_relaxed) > 0); /* counts us */
		atomic_fetch_sub(&rt->nspinning, 1);
	}
	uint32_t word = atomic_load(&w->park_word);
	pthread_mutex_lock(&rt->idle_lock);
	int n = atomic_load_explicit(&rt->nidle, memory_order_relaxed);
	/* On the idle list at most once (every way off it clears parked), so
	 * the list has room. */
	assert(!atomic_load_explicit(&w->parked, memory_order_relaxed));
	assert(n >= 0 && n < WEFT_MAX_WORKERS + WEFT_EXTRA_WORKERS);
	rt->idle[n] = w;
	atomic_store_explicit(&w->parked, true, memory_order_relaxed);
	atomic_store(&rt->nidle, n + 1);
	pthread_mutex_unlock(&rt->idle_lock);
	weft__full_fence(rt);

	if (any_work(rt) || atomic_load(&rt->halt)) {
		leave_idle(rt, w);
		return;
	}
	weft_time_t deadline = weft__timers_next_deadline(rt);
	weft_time_t now = weft_now();
	if (deadline <= now) {
		leave_idle(rt, w);
		return;
	}
	/* Going to sleep: this worker's free stacks and records go back to
	 * the runtime, where the others can take them and the background
	 * release sees them (stack.h, task.c), and so do the blocks its thread
	 * caches for the base pool (channels): a cached block keeps its whole
	 * run resident, and a run empties (to be released) only once every
	 * block of it is back (pool.c). Without a monitor, the release runs
	 * here. */
	weft__stack_cache_flush(rt->stacks, &w->stacks);
	weft__task_cache_flush(w);
	weft__pool_flush();
	if (!rt->has_monitor)
		weft__release_memory(rt, now);
	atomic_store_explicit(&w->st_parks, atomic_load_explicit(&w->st_parks, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	worker_sleep(w, word, deadline, now);
	leave_idle(rt, w);
	if (weft__runq_len(w) > 1)
		weft__wakep(rt); /* the poll readied more than this worker will run next */
}

static weft_task *find_work(weft_worker *w)
{
	struct weft_runtime *rt = w->rt;
	weft_task *t;
	for (;;) {
		if (unlikely(atomic_load_explicit(&rt->halt, memory_order_acquire)))
			return NULL;
		if (unlikely(w->tick % WEFT_GLOBAL_CHECK == 0)) {
			if (atomic_load_explicit(&rt->gq_len, memory_order_relaxed)) {
				t = weft__gq_get(rt, w, 1);
				if (t)
					return t;
			}
			poll_once(w);
		}
		if ((w->tick & 15) == 0 || weft__runq_empty(w))
			weft__timers_poll(w, false);
		t = weft__runq_get(w);
		if (t)
			return t;
		t = weft__gq_get(rt, w, WEFT_GQ_BATCH);
		if (t)
			return t;
		poll_once(w);
		if ((t = weft__runq_get(w)) != NULL)
			return t; /* whatever the poll queued here */
		/* Dry: tell thieves that what they saw queued here is gone. */
		atomic_store_explicit(&w->dry, atomic_load_explicit(&w->dry, memory_order_relaxed) + 1,
				      memory_order_relaxed);
		/* Spin only while fewer than half of the busy workers do. */
		int nw = atomic_load_explicit(&rt->nworkers, memory_order_relaxed);
		int busy = nw - atomic_load_explicit(&rt->nidle, memory_order_relaxed);
		if (!w->spinning && 2 * atomic_load_explicit(&rt->nspinning, memory_order_relaxed) < busy) {
			w->spinning = true;
			atomic_fetch_add(&rt->nspinning, 1);
		}
		if (w->spinning) {
			t = steal_work(w);
			if (t)
				return t;
			if (w->steal_wait) {
				gate_sleep(w, w->steal_wait);
				continue;
			}
		}
		if (atomic_load_explicit(&w->extra, memory_order_relaxed) && !atomic_load(&rt->halt)) {
			/* Retire an extra worker once no base worker is stuck. */
			bool stuck = false;
			for (int i = 0; i < rt->nbase; i++)
				stuck |= atomic_load_explicit(&rt->workers[i]->stuck, memory_order_relaxed);
			if (!stuck && weft__runq_empty(w)) {
				/* Leave the spinning role before going, then re-check: a
				 * producer that saw us spinning did not wake anyone. */
				if (w->spinning) {
					w->spinning = false;
					assert(atomic_load_explicit(&rt->nspinning, memory_order_relaxed) > 0);
					atomic_fetch_sub(&rt->nspinning, 1);
				}
				weft__full_fence(rt);
				if (any_work(rt))
					weft__wakep(rt);
				w->stop_thread = true;
				return NULL;
			}
		}
		park_worker(w);
	}
}

void *weft__worker_main(void *arg)
{
	weft_worker *w = arg;
	struct weft_runtime *rt = w->rt;
	weft__self_worker = w;
	w->tid = gettid();
	char name[16];
	snprintf(name, sizeof name, "weft-w%d", w->index);
	pthread_setname_np(pthread_self(), name); /* shown by top -H, perf, gdb */
#ifdef WEFT_TSAN
	w->tsan_fiber = __tsan_get_current_fiber();
#endif
	if (w->altstack) {
		stack_t ss = {.ss_sp = w->altstack, .ss_size = 64 * 1024, .ss_flags = 0};
		sigaltstack(&ss, NULL);
	}
	atomic_store_explicit(&w->st_start, weft_now(), memory_order_relaxed);
	for (;;) {
		weft_task *t = find_work(w);
		if (!t)
			break;
		if (w->spinning)
			stop_spinning(w);
		(void)run_task(w, t);
	}
	assert(w->cur == NULL && !atomic_load_explicit(&w->parked, memory_order_relaxed));
	if (w->spinning) {
		w->spinning = false;
		assert(atomic_load_explicit(&rt->nspinning, memory_order_relaxed) > 0);
		atomic_fetch_sub(&rt->nspinning, 1);
	}
	weft__task_cache_flush(w);
	weft__stack_cache_flush(rt->stacks, &w->stacks);
	if (w->altstack) {
		stack_t ss = {.ss_flags = SS_DISABLE};
		sigaltstack(&ss, NULL);
	}
	weft__self_worker = NULL;
	atomic_store(&w->exited, true);
	return NULL;
}

weft_worker *weft__worker_alloc(struct weft_runtime *rt, int index)
{
	weft_worker *w;
	if (posix_memalign((void **)&w, WEFT_CACHELINE, sizeof *w))
		return NULL;
	memset(w, 0, sizeof *w);
	w->rt = rt;
	w->index = index;
	w->rng = 0x9e3779b97f4a7c15ull * (uint64_t)(index + 1);
	w->shard = &rt->shards[index % rt->nbase];
	w->altstack = mmap(NULL, 64 * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w->altstack == MAP_FAILED)
		w->altstack = NULL;
	return w;
}

int weft__worker_start(struct weft_runtime *rt, int index, bool extra)
{
	weft_worker *w = rt->workers[index];
	if (!w && !(w = weft__worker_alloc(rt, index)))
		return -ENOMEM;
	atomic_store_explicit(&w->extra, extra, memory_order_relaxed);
	w->stop_thread = false;
	atomic_store(&w->exited, false);
	atomic_store(&w->stuck, 0);
	if (rt->workers[index] != w)
		rt->workers[index] = w;
	/* Counted before it runs: every loop over the workers (stealing, the
	 * re-checks before parking, the monitor, statistics) must see a worker
	 * that may already hold tasks. (Base workers are counted by start.) */
	if (index >= atomic_load_explicit(&rt->nworkers, memory_order_relaxed))
		atomic_store_explicit(&rt->nworkers, index + 1, memory_order_release);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int e = pthread_create(&w->thread, &attr, weft__worker_main, w);
	pthread_attr_destroy(&attr);
	w->joinable = e == 0;
	if (e)
		atomic_store(&w->exited, true); /* never ran: its slot may be taken again */
	return -e;
}
