/* park.c - park/unpark, the one primitive under every blocking operation,
 * and the wait queue built on it.
 *
 * The parking protocol
 * --------------------
 * Every task and every plain thread that blocks has a parker whose 64-bit
 * state word holds (epoch, result, phase) - see internal.h. A wait is one
 * epoch:
 *
 *   owner:  weft_park_prepare   state := (e+1, 0, OPEN)        [store]
 *           ...hand the waker {parker, e+1} to wakers, re-check...
 *           park                OPEN -> PARKED                 [CAS, by the
 *                               worker after the coroutine is off its stack,
 *                               or by the thread itself]
 *   waker:  weft_unpark(w, r)   (e, -, OPEN)   -> (e, r, WOKEN)  owner sees it
 *                                                                when it parks
 *                               (e, -, PARKED) -> (e, r, WOKEN)  and make the
 *                                                                task runnable
 *
 * Exactly one unpark wins per wait (the CAS out of OPEN/PARKED), so a task
 * is made runnable exactly once and the winner's result is what the owner
 * sees.
 *
 * Claims: a waker that must hand something over outside the lock it found
 * the waiter under (a channel: the woken side may free the channel the
 * moment it returns, so the waker may touch neither it nor its lock after
 * the wake) claims the wait first (weft_unpark_claim: CLAIMED set by a CAS
 * from OPEN/PARKED, same epoch). From then on every other unpark - a
 * deadline's timer, a cancellation, stop - fails, and the owner's park
 * keeps the bit (OPEN|CLAIMED -> PARKED|CLAIMED) and waits: the wait ends
 * only through weft_unpark_finish, which the claimer calls when it is done
 * (after its unlock). So a claimed waiter, and the node it handed over, stay
 * put until then. An unpark for an older epoch fails its epoch check, so a late timer
 * or a slow waker can never wake a later wait. The park CAS fails only if the
 * state is already WOKEN: the owner then continues at once, so a wake that
 * comes before the park is never lost.
 *
 * Cancellation: weft_cancel sets WEFT_TF_CANCELLED and then reads the state; if
 * a wait is open (and not marked WEFT_PS_NOCANCEL, see
 * weft_park_prepare_uncancellable) it unparks it with -ECANCELED. The owner
 * reads the flag after its park CAS (OPEN -> PARKED, weft__park_commit) and,
 * if set, ends the wait itself. Both pairs are seq_cst (a flag RMW then a
 * state load; a state RMW then a flag load), so at least one side sees the
 * other. weft_park_prepare's store of the OPEN state needs no fence (a
 * locked instruction on x86, on every wait): wakers learn of the wait
 * through whatever publishes the waker (a lock, a release store), which
 * also publishes the state; prepare only checks the flag early, to end a
 * wait of an already cancelled task at once.
 *
 * Step registrations: a stackless task cannot sit in a park, so a _step
 * call opens a wait, links its waker where its wakers look (a wait queue,
 * through the caller's op) and returns -EINPROGRESS; the task's step
 * returns PARKED, and the repeated call finishes the wait (the protocol in
 * weft/sched.h). The task record keeps the registered op (step_op; a
 * stackless task has no stack to keep), and three rules make a
 * registration and the task's current wait one thing:
 *  (1) While step_op is set, the task's wait is that op's: no other wait
 *      opens (weft_park_prepare and weft_step_begin refuse with -EBUSY), so
 *      the repeat reads its own wait's result, and no epoch is reused
 *      under a waker that has claimed it.
 *  (2) step_op is cleared only by the repeat that finds the wait ended
 *      (weft_step_begin returning 1), which finishes it before anything
 *      else runs in the task; a repeat that comes earlier changes nothing.
 *  (3) A stackless task's own wait, not registered, is abandoned when the
 *      task opens another or begins a _step call: a CAS moves it OPEN ->
 *      WOKEN first, after which no waker can claim it - unless one has
 *      claimed it already: its finish needs that epoch, so nothing new
 *      opens (-EBUSY) until the claimer is done.
 * Only the task itself sets and clears step_op, while it runs (the worker
 * checks it, on the same thread, when the task ends), so a plain field
 * will do. Without (1) and (3), a wait opened while a claimer held the
 * previous one overwrote the claimed state: the finish then wrote the old
 * epoch back over the new wait, so epochs repeated and a late waker could
 * wake the wrong wait (tests/sched/test_step.c).
 *
 * Memory safety: a waker reads the parker's state word, so the parker must
 * outlive every waker that may still touch it. Task records live in slabs
 * that are never unmapped (see task.c for the pages of free records given
 * back to the OS), and a plain thread's
 * parker in memory that is never freed (it passes to the next thread when
 * its thread exits), so a late unpark meets at worst a later wait of the
 * same parker, and fails its epoch check. Wait-queue wakers may therefore
 * unpark after releasing the queue's lock: a waiter that gave up takes that
 * lock to unlink itself, and a node it finds popped was delivered to it.
 * Timers are cancelled synchronously (weft__tentry_cancel waits out a
 * running fire) before a park returns.
 */
#include "internal.h"

#include <assert.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>

#include "../base/spin.h"
#include "futex.h"

void weft__parker_init(weft_parker_t *p)
{
	atomic_init(&p->state, WEFT_PS(0, 0, WEFT_PH_IDLE));
}

/* Plain threads' parkers. A waker may still hold a thread's waker after
 * the thread has returned from its wait (a wait queue's waker unparks after
 * releasing the queue's lock, when a timed-out waiter may already have left)
 * and even after the thread has exited, so a thread parker lives in memory
 * that is never freed: a thread takes one on its first wait and gives it
 * back when it exits (a pthread key destructor), and the next thread to take
 * it continues its epochs. A stale waker then fails the epoch check, whoever
 * holds the parker now. Each parker has a cache line of its own (its state
 * word is a futex, woken from other CPUs). */
typedef struct thread_parker {
	alignas(WEFT_CACHELINE) weft_parker_t p;
	struct thread_parker *next_free;
	/* The sim its thread owned when it opened its current wait (or NULL),
	 * for the wakers' check (woke). Stored before the wait's state, whose
	 * release store publishes it with the wait. */
	_Atomic(struct weft_sim *) sim;
} thread_parker_t;
_Static_assert(offsetof(thread_parker_t, p) == 0, "a thread's waker names its thread_parker_t");

#define TP_RESERVE 256 /* in static memory, for when malloc fails */
#define TP_CHUNK 64

static thread_parker_t tp_reserve[TP_RESERVE];
static unsigned tp_reserve_used;
static thread_parker_t *tp_free;
static pthread_mutex_t tp_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t tp_key;
static pthread_once_t tp_once = PTHREAD_ONCE_INIT;
static bool tp_key_ok;
static __thread thread_parker_t *tp_mine;

static void tp_give_back(void *arg)
{
	thread_parker_t *tp = arg;
	if (tp_mine == tp)
		tp_mine = NULL;
	pthread_mutex_lock(&tp_lock);
	tp->next_free = tp_free;
	tp_free = tp;
	pthread_mutex_unlock(&tp_lock);
}

static void tp_init_key(void)
{
	tp_key_ok = pthread_key_create(&tp_key, tp_give_back) == 0;
}

/* The calling thread's parker, taken on first use; NULL only when memory
 * for one cannot be had. */
static __attribute__((noinline)) weft_parker_t *thread_parker_slow(void)
{
	pthread_once(&tp_once, tp_init_key);
	pthread_mutex_lock(&tp_lock);
	thread_parker_t *tp = tp_free;
	if (!tp) {
		thread_parker_t *chunk = NULL;
		if (posix_memalign((void **)&chunk, WEFT_CACHELINE, TP_CHUNK * sizeof *chunk) == 0) {
			for (int i = 0; i < TP_CHUNK; i++) {
				weft__parker_init(&chunk[i].p);
				atomic_init(&chunk[i].sim, NULL);
				chunk[i].next_free = i + 1 < TP_CHUNK ? &chunk[i + 1] : NULL;
			}
			tp_free = chunk;
		} else if (tp_reserve_used < TP_RESERVE) {
			tp_free = &tp_reserve[tp_reserve_used++];
			weft__parker_init(&tp_free->p);
			atomic_init(&tp_free->sim, NULL);
			tp_free->next_free = NULL;
		}
		tp = tp_free;
	}
	if (tp)
		tp_free = tp->next_free;
	pthread_mutex_unlock(&tp_lock);
	if (!tp)
		return NULL;
	/* Without the key (it failed to be created), the parker is simply
	 * never given back. */
	if (tp_key_ok)
		pthread_setspecific(tp_key, tp);
	tp_mine = tp;
	return &tp->p;
}

static inline weft_parker_t *thread_parker(void)
{
	thread_parker_t *tp = tp_mine;
	return likely(tp != NULL) ? &tp->p : thread_parker_slow();
}

static weft_parker_t *current_parker(weft_task **task)
{
	weft_task *t = weft__cur_task();
	*task = t;
	if (t)
		return &t->park;
	return thread_parker();
}

/* A thread about to open a wait: mark its parker with the sim the thread
 * owns, if any (woke checks the mark). */
static inline void thread_mark_sim(weft_parker_t *p)
{
	atomic_store_explicit(&((thread_parker_t *)p)->sim, weft__sim_mine, memory_order_relaxed);
}

/* For assert(): whether a parker's owner, running, may open a new wait
 * over state s: it is not parked (it runs), and no waker has claimed its
 * last wait without finishing it (a claimed wait ends only by
 * weft_unpark_finish, whose CAS needs the claimed epoch; its owner parks
 * until then). The epoch stays below 2^48 (internal.h), so it fits its
 * field and never meets the thread bit of a waker. */
#define PRIOR_WAIT_OVER(s)                                                                                             \
	(WEFT_PS_PHASE(s) != WEFT_PH_PARKED && !((s)&WEFT_PS_CLAIMED) && WEFT_PS_EPOCH(s) + 1 < ((uint64_t)1 << 48))

/* In a stackless task t, which runs, before a wait of its own opens: true
 * if one may. Not while an op is registered: it owns the task's wait (see
 * "Step registrations"). An open wait is abandoned - moved to WOKEN, after
 * which no waker can claim or end it - unless a waker has claimed it
 * already: its finish needs that epoch, so the new wait must not open
 * before it (false). */
static bool step_may_open(weft_task *t)
{
	if (t->step_op)
		return false;
	uint64_t s = atomic_load_explicit(&t->park.state, memory_order_relaxed);
	for (;;) {
		assert(WEFT_PS_PHASE(s) != WEFT_PH_PARKED); /* it runs */
		if (s & WEFT_PS_CLAIMED)
			return false;
		if (WEFT_PS_PHASE(s) != WEFT_PH_OPEN)
			return true;
		/* One word: whoever moves it first decides (a claim, a wake, or
		 * this); nothing handed over is read, so relaxed. */
		if (atomic_compare_exchange_weak_explicit(&t->park.state, &s,
							  WEFT_PS(WEFT_PS_EPOCH(s), 0, WEFT_PH_WOKEN),
							  memory_order_relaxed, memory_order_relaxed))
			return true;
	}
}

weft_waker_t weft_park_prepare(void)
{
	weft_task *t;
	weft_parker_t *p = current_parker(&t);
	if (unlikely(!p))
		return WEFT_WAKER_FAILED(ENOMEM);
	if (t && weft__is_step(t) && unlikely(!step_may_open(t)))
		return WEFT_WAKER_FAILED(EBUSY);
	if (!t)
		thread_mark_sim(p);
	uint64_t s = atomic_load_explicit(&p->state, memory_order_relaxed);
	assert(PRIOR_WAIT_OVER(s));
	uint64_t e = WEFT_PS_EPOCH(s) + 1;
	atomic_store_explicit(&p->state, WEFT_PS(e, 0, WEFT_PH_OPEN), memory_order_release);
	if (t && unlikely(atomic_load_explicit(&t->flags, memory_order_relaxed) & WEFT_TF_CANCELLED)) {
		uint64_t open = WEFT_PS(e, 0, WEFT_PH_OPEN);
		atomic_compare_exchange_strong(&p->state, &open, WEFT_PS(e, -ECANCELED, WEFT_PH_WOKEN));
	}
	return (weft_waker_t){.parker = p, .epoch = t ? e : e | WEFT_WAKER_THREAD};
}

/* The futex word of a thread parker: the low half of the state (on a
 * little-endian machine the low half is at the word's address). */
static inline _Atomic uint32_t *state_futex(weft_parker_t *p)
{
	_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the low half of the state word comes first");
	return (_Atomic uint32_t *)&p->state;
}

weft_waker_t weft_park_prepare_uncancellable(void)
{
	weft_task *t;
	weft_parker_t *p = current_parker(&t);
	if (unlikely(!p))
		return WEFT_WAKER_FAILED(ENOMEM);
	if (t && weft__is_step(t) && unlikely(!step_may_open(t)))
		return WEFT_WAKER_FAILED(EBUSY);
	if (!t)
		thread_mark_sim(p);
	uint64_t s = atomic_load_explicit(&p->state, memory_order_relaxed);
	assert(PRIOR_WAIT_OVER(s));
	uint64_t e = WEFT_PS_EPOCH(s) + 1;
	atomic_store_explicit(&p->state, WEFT_PS(e, 0, WEFT_PH_OPEN) | WEFT_PS_NOCANCEL, memory_order_release);
	return (weft_waker_t){.parker = p, .epoch = t ? e : e | WEFT_WAKER_THREAD};
}

_Atomic(void (*)(void)) weft__unpark_hook;

static void woke(weft_waker_t w, uint64_t s);

/* For assert(): a wait's result lives in one byte of the state word
 * (WEFT_PS); whether parker p's current wait is `epoch` and in `phase`. */
#define RESULT_FITS(r) ((r) <= 0 && (r) >= -255)
#define WAIT_IS(p, epoch, phase)                                                                                       \
	(WEFT_PS_EPOCH(atomic_load_explicit(&(p)->state, memory_order_relaxed)) == (epoch) &&                          \
	 WEFT_PS_PHASE(atomic_load_explicit(&(p)->state, memory_order_relaxed)) == (phase))

bool weft_unpark(weft_waker_t w, int reason)
{
	if (unlikely(!RESULT_FITS(reason)))
		reason = -EINVAL; /* not a result a wait can carry (sched.h) */
	weft_parker_t *p = w.parker;
	if (!p)
		return false;
	uint64_t epoch = w.epoch & ~WEFT_WAKER_THREAD;
	uint64_t s = atomic_load(&p->state);
	for (;;) {
		if (WEFT_PS_EPOCH(s) != epoch)
			return false;
		int ph = WEFT_PS_PHASE(s);
		if ((ph != WEFT_PH_OPEN && ph != WEFT_PH_PARKED) || (s & WEFT_PS_CLAIMED))
			return false;
		/* acq_rel: whatever the waker wrote before (a handoff) is visible to
		 * the owner, which acquires the state when it resumes. */
		if (atomic_compare_exchange_weak_explicit(&p->state, &s, WEFT_PS(epoch, reason, WEFT_PH_WOKEN),
							  memory_order_acq_rel, memory_order_acquire))
			break;
	}
	woke(w, s);
	return true;
}

bool weft_unpark_claim(weft_waker_t w)
{
	weft_parker_t *p = w.parker;
	if (!p)
		return false;
	uint64_t epoch = w.epoch & ~WEFT_WAKER_THREAD;
	uint64_t s = atomic_load(&p->state);
	for (;;) {
		int ph = WEFT_PS_PHASE(s);
		if (WEFT_PS_EPOCH(s) != epoch || (ph != WEFT_PH_OPEN && ph != WEFT_PH_PARKED) || (s & WEFT_PS_CLAIMED))
			return false;
		if (atomic_compare_exchange_weak_explicit(&p->state, &s, s | WEFT_PS_CLAIMED, memory_order_acq_rel,
							  memory_order_acquire))
			return true;
	}
}

void weft_unpark_finish(weft_waker_t w, int reason)
{
	if (unlikely(!RESULT_FITS(reason)))
		reason = -EINVAL;
	weft_parker_t *p = w.parker;
	if (unlikely(!p))
		return;
	uint64_t epoch = w.epoch & ~WEFT_WAKER_THREAD;
	uint64_t s = atomic_load(&p->state);
	/* A wait w's claim holds: only the owner's park (OPEN -> PARKED) can
	 * change it meanwhile. Anything else (an ended wait, one nobody
	 * claimed) is a caller's mistake, and left alone. */
	do
		if (unlikely(WEFT_PS_EPOCH(s) != epoch || !(s & WEFT_PS_CLAIMED) ||
			     (WEFT_PS_PHASE(s) != WEFT_PH_OPEN && WEFT_PS_PHASE(s) != WEFT_PH_PARKED)))
			return;
	while (!atomic_compare_exchange_weak_explicit(&p->state, &s, WEFT_PS(epoch, reason, WEFT_PH_WOKEN),
						      memory_order_acq_rel, memory_order_acquire));
	woke(w, s);
}

/* After the CAS that ended w's wait, from state s: make its owner run. */
static void woke(weft_waker_t w, uint64_t s)
{
	weft_parker_t *p = w.parker;
	/* s is the state our CAS replaced: the wait was open or parked, its
	 * epoch ours. */
	assert(WEFT_PS_EPOCH(s) == (w.epoch & ~WEFT_WAKER_THREAD));
	assert(WEFT_PS_PHASE(s) == WEFT_PH_OPEN || WEFT_PS_PHASE(s) == WEFT_PH_PARKED);
	/* A sim's tasks, and its owner thread's waits, end on that thread
	 * alone (sim.c): a wake from elsewhere would make the run depend on
	 * the OS. weft__ready checks a parked task's; an open wait's owner
	 * runs now and sees the wake when it parks, so it is checked here. */
	if (w.epoch & WEFT_WAKER_THREAD) {
		struct weft_sim *sm = atomic_load_explicit(&((thread_parker_t *)p)->sim, memory_order_relaxed);
		if (unlikely(sm != NULL) && sm != weft__sim_mine)
			weft__sim_leak(sm->rt, "its owner thread woken from another thread");
	} else if (WEFT_PS_PHASE(s) == WEFT_PH_OPEN) {
		struct weft_runtime *rt = weft__task_rt((weft_task *)p);
		if (unlikely(rt->sim) && !weft__sim_ours(rt))
			weft__sim_leak(rt, "a task woken from another thread");
	}
	if (WEFT_PS_PHASE(s) == WEFT_PH_PARKED) {
		if (!(w.epoch & WEFT_WAKER_THREAD)) {
			/* Parked, so the owner cannot have opened another wait:
			 * ours is still the one that ended. */
			assert(WAIT_IS(p, WEFT_PS_EPOCH(s), WEFT_PH_WOKEN));
			weft__ready((weft_task *)p);
		} else {
			/* The thread may have returned from its wait already; its
			 * parker outlives it, and a futex wake-up that reaches the
			 * parker's next wait is spurious, which park_thread allows. */
			weft__futex_wake(state_futex(p), 1);
		}
	}
	void (*hook)(void) = atomic_load_explicit(&weft__unpark_hook, memory_order_relaxed);
	if (unlikely(hook != NULL))
		hook();
}

int weft__park_commit(weft_task *t)
{
	/* On the worker, the task just off its stack (or out of its step). */
	assert(weft__self_worker != NULL && weft__self_worker->cur == NULL);
	uint64_t s = atomic_load_explicit(&t->park.state, memory_order_relaxed);
	uint64_t parked;
	/* OPEN -> PARKED, keeping the flags: a claim (CLAIMED) may come in
	 * meanwhile, which still parks; only a wake (WOKEN) does not. */
	do {
		if (WEFT_PS_PHASE(s) != WEFT_PH_OPEN)
			return 0;
		parked = (s & ~(uint64_t)WEFT_PH_MASK) | WEFT_PH_PARKED;
	} while (!atomic_compare_exchange_weak(&t->park.state, &s, parked));
	/* The owner's half of the cancellation pairing (top comment): a cancel
	 * that read the state before our CAS made it visible is seen here. */
	if (unlikely(!(parked & (WEFT_PS_NOCANCEL | WEFT_PS_CLAIMED)) && weft__task_cancelled(t))) {
		uint64_t woken = WEFT_PS(WEFT_PS_EPOCH(parked), -ECANCELED, WEFT_PH_WOKEN);
		if (atomic_compare_exchange_strong(&t->park.state, &parked, woken))
			return 0; /* ended here: the caller runs it again */
		/* Lost to a waker: its unpark ended the wait (and made the task
		 * ready), or its claim did (and its finish will). */
		assert(WEFT_PS_PHASE(parked) == WEFT_PH_WOKEN || (parked & WEFT_PS_CLAIMED));
	}
	return 1;
}

static int current_result(weft_parker_t *p)
{
	/* acquire: pairs with the waker's CAS, so its handoff is visible. */
	uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire);
	return WEFT_PS_RESULT(s);
}

/* A deadline for a wait: on the waiter's stack (coroutines), or allocated
 * (stackless tasks: t->timer, dropped by the worker when the task next
 * runs, or when it ends). */
struct park_timer {
	weft_tentry_t e;
	weft_waker_t w;
};

void weft__park_timer_drop(weft_task *t)
{
	assert(weft__is_step(t) && t->timer != NULL);
	weft__tentry_cancel(t->timer);
	free((struct park_timer *)((char *)t->timer - offsetof(struct park_timer, e)));
	t->timer = NULL;
}

void weft__park_timer_fire(weft_tentry_t *e)
{
	struct park_timer *pt = (struct park_timer *)((char *)e - offsetof(struct park_timer, e));
	weft_unpark(pt->w, -ETIMEDOUT);
	weft__tentry_done(e);
}

static int park_thread(weft_parker_t *p, weft_waker_t w, weft_time_t deadline)
{
	assert(w.epoch & WEFT_WAKER_THREAD);
	uint64_t epoch = w.epoch & ~WEFT_WAKER_THREAD;
	uint64_t s = atomic_load(&p->state);
	/* OPEN -> PARKED, keeping the flags; a claim may set CLAIMED meanwhile,
	 * so retry while the wait is still open. */
	while (WEFT_PS_EPOCH(s) == epoch && WEFT_PS_PHASE(s) == WEFT_PH_OPEN &&
	       !atomic_compare_exchange_weak(&p->state, &s, (s & ~(uint64_t)WEFT_PH_MASK) | WEFT_PH_PARKED))
		;
	for (;;) {
		s = atomic_load(&p->state);
		if (WEFT_PS_PHASE(s) != WEFT_PH_PARKED)
			break;
		if (unlikely(weft__sim_mine != NULL)) {
			/* A sim's owner thread: its wait runs the simulation (sim.c),
			 * which only returns between task runs, when no claim is
			 * pending (a claimer finishes within its run). */
			int r = weft__sim_wait(&p->state, deadline);
			assert(r == 0 || !(atomic_load(&p->state) & WEFT_PS_CLAIMED));
			if (r)
				weft_unpark(w, r);
			continue;
		}
		if (deadline == WEFT_NEVER || (s & WEFT_PS_CLAIMED)) {
			/* A claimed wait ends only by its claimer, soon. */
			weft__futex_wait(state_futex(p), (uint32_t)s, NULL);
			continue;
		}
		weft_time_t now = weft_now();
		if (now >= deadline) {
			weft_unpark(w, -ETIMEDOUT);
			continue;
		}
		struct timespec ts = weft__ts_of(deadline - now);
		weft__futex_wait(state_futex(p), (uint32_t)s, &ts);
	}
	/* Only the owner opens a wait: its own one has ended (a waker of
	 * an older wait passed in returns at once, with the current result). */
	assert(WEFT_PS_EPOCH(s) != epoch || WEFT_PS_PHASE(s) == WEFT_PH_WOKEN);
	return current_result(p);
}

int weft__park_on(weft_waker_t w, weft_time_t deadline, int what)
{
	weft_task *t;
	weft_parker_t *p = current_parker(&t);
	if (unlikely(!w.parker))
		return w.epoch ? -(int)w.epoch : -EINVAL; /* a failed prepare's error */
	if (w.parker != p)
		return -EINVAL;
	if (!t) {
		/* Only the owner opens waits, so the epoch read here stays. */
		uint64_t cur = WEFT_PS_EPOCH(atomic_load_explicit(&p->state, memory_order_relaxed));
		if (!(w.epoch & WEFT_WAKER_THREAD) || (w.epoch & ~WEFT_WAKER_THREAD) != cur)
			return -EINVAL; /* not the caller's current wait */
		return park_thread(p, w, deadline);
	}
	if (weft__is_step(t))
		return -EPERM;
	uint64_t s0 = atomic_load_explicit(&p->state, memory_order_acquire);
	if (WEFT_PS_EPOCH(s0) != w.epoch)
		return -EINVAL; /* not the caller's current wait */
	if (WEFT_PS_PHASE(s0) == WEFT_PH_WOKEN)
		return WEFT_PS_RESULT(s0); /* already woken: no switch */
	struct park_timer pt;
	bool timed = deadline != WEFT_NEVER;
	if (timed) {
		uint64_t s = atomic_load(&p->state);
		if (WEFT_PS_PHASE(s) != WEFT_PH_OPEN || WEFT_PS_EPOCH(s) != w.epoch)
			return current_result(p);
		if (deadline <= weft_now()) {
			if (weft_unpark(w, -ETIMEDOUT) || !(atomic_load(&p->state) & WEFT_PS_CLAIMED))
				return current_result(p);
			timed = false; /* claimed: only its claimer ends it now, soon */
		} else {
			pt.w = w;
			weft__tentry_arm(&pt.e, deadline, weft__park_timer_fire);
		}
	}
	assert(t == weft__self_worker->cur);
	weft__self_worker->wait_what = (uint8_t)what;
	weft__switch_to_sched(weft__self_worker, WEFT_ACT_PARK);
	/* Resumed: only the end of this wait makes the task run again (a
	 * waker's ready, or the commit finding it ended), and the owner alone
	 * opens the next one. */
	assert(WAIT_IS(p, w.epoch, WEFT_PH_WOKEN));
	if (timed)
		weft__tentry_cancel(&pt.e);
	return current_result(p);
}

int weft_park(weft_waker_t w, weft_time_t deadline)
{
	return weft__park_on(w, deadline, WEFT_WAIT_PARK);
}

int weft_park_deadline(weft_waker_t w, weft_time_t deadline)
{
	if (unlikely(!w.parker))
		return w.epoch ? -(int)w.epoch : -EINVAL; /* a failed prepare's error */
	weft_task *t;
	weft_parker_t *p = current_parker(&t);
	if (!t || !weft__is_step(t))
		return -EPERM;
	if (w.parker != p || w.epoch != WEFT_PS_EPOCH(atomic_load_explicit(&p->state, memory_order_relaxed)))
		return -EINVAL; /* not the caller's current wait */
	if (deadline == WEFT_NEVER)
		return 0;
	if (deadline <= weft_now()) {
		weft_unpark(w, -ETIMEDOUT);
		return 0;
	}
	if (t->timer) {
		/* Armed earlier in this run (the worker drops the last run's):
		 * for a wait this one replaced, or for this one. The new
		 * deadline replaces it. */
		weft__park_timer_drop(t);
	}
	struct park_timer *pt = malloc(sizeof *pt);
	if (!pt)
		return -ENOMEM;
	pt->w = w;
	t->timer = &pt->e;
	weft__tentry_arm(&pt->e, deadline, weft__park_timer_fire);
	return 0;
}

int weft_park_result(void)
{
	weft_task *t;
	weft_parker_t *p = current_parker(&t);
	return p ? current_result(p) : -ENOMEM;
}

/* ------------------------------------------------------------ step registrations */

_Static_assert(sizeof(weft_op_t) == 64, "the size sched.h states");

int weft_step_begin(weft_op_t *op, uint8_t call, const void *obj)
{
	weft_task *t = weft__cur_task();
	if (!t || !weft__is_step(t))
		return WEFT_STEP_BLOCKS; /* coroutines and threads block: nothing to register */
	if (!op || !call)
		return -EINVAL;
	uint8_t *id = (uint8_t *)op;
	if (!t->step_op) {
		if (!step_may_open(t))
			return -EBUSY; /* a waker claimed its own wait */
		*id = call;
		op->obj = obj;
		return 0;
	}
	/* Another op, another call, or the same call on another object (whose
	 * finish would work on the wrong lock, queue or channel). */
	if (t->step_op != op || *id != call || op->obj != obj)
		return -EBUSY;
	/* acquire: what a waker handed over before it ended the wait. */
	uint64_t s = atomic_load_explicit(&t->park.state, memory_order_acquire);
	/* Nothing else opens a wait while op is registered, so the task's
	 * wait is op's: open (perhaps claimed), or ended. */
	assert(WEFT_PS_PHASE(s) == WEFT_PH_OPEN || WEFT_PS_PHASE(s) == WEFT_PH_WOKEN);
	if (WEFT_PS_PHASE(s) != WEFT_PH_WOKEN)
		return -EINPROGRESS;
	t->step_op = NULL;
	return 1;
}

int weft_step_register(weft_op_t *op)
{
	weft_task *t = weft__cur_task();
	if (!t || !weft__is_step(t) || !op)
		return -EPERM;
	if (t->step_op)
		return -EBUSY;
	/* A registration goes through weft_step_begin, which names op's call,
	 * and opens its wait after that: open, or already ended (woken, a past
	 * deadline, a cancelled task), when the task runs again at once. A
	 * caller that skipped either could never have the registration
	 * cleared: refuse it. */
	int ph = WEFT_PS_PHASE(atomic_load_explicit(&t->park.state, memory_order_relaxed));
	if (*(uint8_t *)op == 0 || (ph != WEFT_PH_OPEN && ph != WEFT_PH_WOKEN))
		return -EINVAL;
	t->step_op = op;
	return -EINPROGRESS;
}

int weft_step_retry(weft_op_t *op)
{
	weft_waker_t w = weft_park_prepare();
	if (!w.parker)
		return w.epoch ? -(int)w.epoch : -EPERM;
	weft_unpark(w, 0); /* (a cancelled task's wait has ended already) */
	return weft_step_register(op);
}

/* ------------------------------------------------------------ wait queue */

/* NULL (a queue or a node) makes each call a no-op (or NULL, false,
 * -EINVAL): callers check nothing on the primitives' hot paths, which never
 * pass NULL. */
void weft_waitq_init(weft_waitq_t *q)
{
	if (q)
		*q = (weft_waitq_t)WEFT_WAITQ_INIT;
}

void weft_waitq_lock(weft_waitq_t *q)
{
	if (q)
		weft__spin_lock((_Atomic uint32_t *)&q->lock);
}

/* For assert(): q's lock is held (by the caller, in an "Under the lock"
 * function), and its list and length agree. */
#define WAITQ_LOCKED(q) weft__spin_held((_Atomic uint32_t *)&(q)->lock)
#define WAITQ_SANE(q) (((q)->head == NULL) == ((q)->tail == NULL) && ((q)->head == NULL) == ((q)->len == 0))

void weft_waitq_unlock(weft_waitq_t *q)
{
	if (!q)
		return;
	assert(WAITQ_LOCKED(q) && WAITQ_SANE(q));
	weft__spin_unlock((_Atomic uint32_t *)&q->lock);
}

void weft_waitq_push(weft_waitq_t *q, weft_waitq_node_t *n)
{
	if (!q || !n)
		return;
	assert(WAITQ_LOCKED(q) && WAITQ_SANE(q));
	n->waker = weft_park_prepare();
	n->status = 0;
	n->next = NULL;
	n->prev = q->tail;
	if (q->tail)
		q->tail->next = n;
	else
		q->head = n;
	q->tail = n;
	q->len++;
	n->queued = true;
}

static void unlink_node(weft_waitq_t *q, weft_waitq_node_t *n)
{
	assert(WAITQ_LOCKED(q) && n->queued && q->len > 0);
	assert((n->prev == NULL) == (q->head == n) && (n->next == NULL) == (q->tail == n));
	if (n->prev)
		n->prev->next = n->next;
	else
		q->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		q->tail = n->prev;
	n->next = n->prev = NULL;
	n->queued = false;
	q->len--;
	assert(WAITQ_SANE(q));
}

weft_waitq_node_t *weft_waitq_pop(weft_waitq_t *q)
{
	if (!q)
		return NULL;
	assert(WAITQ_LOCKED(q) && WAITQ_SANE(q));
	weft_waitq_node_t *n = q->head;
	if (n)
		unlink_node(q, n);
	return n;
}

bool weft_waitq_remove(weft_waitq_t *q, weft_waitq_node_t *n)
{
	if (!q || !n)
		return false;
	weft_waitq_lock(q);
	bool was = n->queued;
	if (was)
		unlink_node(q, n);
	weft_waitq_unlock(q);
	return was;
}

/* Wakers pop under the lock (the pop is the delivery: the node's owner
 * honours it even if its wait ended meanwhile) and unpark after unlocking,
 * so that a waiter that returns the moment it is woken, and frees the
 * object holding the queue, never has its lock touched by the waker
 * afterwards. The wakers are copied out first: a node may vanish once the
 * lock is free. */
int weft_waitq_wake_one(weft_waitq_t *q, int status)
{
	if (!q)
		return -EINVAL;
	weft_waitq_lock(q);
	weft_waitq_node_t *n = weft_waitq_pop(q);
	weft_waker_t w = {0};
	if (n) {
		n->status = status;
		w = n->waker;
	}
	weft_waitq_unlock(q);
	if (!n)
		return 0;
	weft_unpark(w, 0);
	return 1;
}

#define WAKE_CHUNK 16

int weft_waitq_wake_all(weft_waitq_t *q, int status)
{
	/* In chunks, each unparked after its unlock. Only the waiters queued
	 * when the call began are woken: later ones wait for the next wake. */
	if (!q)
		return -EINVAL;
	weft_waker_t w[WAKE_CHUNK];
	int woke = 0;
	weft_waitq_lock(q);
	size_t left = q->len;
	for (;;) {
		int k = 0;
		weft_waitq_node_t *n;
		while (left && k < WAKE_CHUNK && (n = weft_waitq_pop(q)) != NULL) {
			n->status = status;
			w[k++] = n->waker;
			left--;
		}
		weft_waitq_unlock(q);
		for (int i = 0; i < k; i++)
			weft_unpark(w[i], 0);
		woke += k;
		if (k < WAKE_CHUNK || !left)
			return woke;
		weft_waitq_lock(q);
	}
}
