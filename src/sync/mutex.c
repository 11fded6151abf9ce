/* mutex.c - the task-aware mutex, with Go's starvation mode.
 *
 * State word
 * ----------
 *   bit 0  LOCKED    someone holds the mutex
 *   bit 1  WOKEN     a waiter was woken, or a spinner is active: unlock
 *                    need not wake anyone
 *   bit 2  STARVING  starvation mode: ownership is handed over, FIFO
 *   3..31  waiters   tasks parked (in `front` or in q)
 * Beside it: owner (relaxed; only for the -EPERM / -EDEADLK checks) and gen
 * (unlocks so far, for spinners), both written by the holder alone.
 *
 * Uncontended, lock is one CAS (0 -> LOCKED, or a second try that keeps the
 * waiter bits when there are parked waiters but the mutex is free) and
 * unlock one fetch_sub of LOCKED; neither touches the wait queue.
 *
 * Normal mode. A contended locker spins while the holder is running on
 * another worker, i.e. while gen keeps moving: rounds of pauses that double
 * up to 16x, at most MX_SPIN_ROUNDS, and it stops after MX_SPIN_STALE rounds
 * without an unlock (the holder is in a long section or parked). Probing
 * rarely lets the holder run many lock/unlock pairs in its own cache between
 * two probes, which is what makes a hot mutex fast on several workers. A
 * spinner sets WOKEN if there are waiters, so unlock does not wake one to
 * compete with it. Then it takes q's lock and either grabs a free mutex or
 * counts itself in (waiters + 1) and parks. unlock clears LOCKED; if there
 * are waiters and neither WOKEN nor LOCKED (a newcomer took it: its unlock
 * will do it) is set, it takes q's lock, sets WOKEN and counts one waiter
 * out in one CAS, and wakes the first waiter (status WOKEN). The woken
 * waiter competes with newcomers like a spinner (it clears WOKEN with its
 * next CAS). One waiter at a time is woken: no thundering herd.
 *
 * Starvation mode. A woken waiter that has waited over 1 ms in all and
 * loses the race again sets STARVING as it parks again, and parks in
 * `front`, ahead of the queue (its place in line is its first arrival, as
 * with Go's LIFO requeue). While STARVING is set nobody grabs the mutex:
 * lockers queue behind the waiters, and unlock keeps LOCKED set, counts the
 * first waiter out and hands the mutex over to it as it is (status
 * GRANTED). The new owner leaves the mode if it waited under 1 ms or nobody
 * else waits; if every waiter gave up, the unlock that finds none clears
 * LOCKED and STARVING together.
 *
 * Unlock and lifetime (internal.h: whoever takes the mutex next may
 * destroy it at once). An unlock that wakes or hands over does so holding
 * q's lock from before it lets the mutex go (the release CAS, or the
 * handoff, under that lock): it pops the next waiter, writes what it
 * delivers into the node, copies the node's waker, unlocks q - its last
 * touch of the mutex - and only then unparks the copied waker, which
 * touches the waiter's parker alone (never freed: weft/sched.h). So the
 * waiter, whether its park returns 0 (after that unpark) or ends otherwise
 * at the same moment (it then takes q's lock, after the unlock, and finds
 * its node delivered: the pop is the delivery), cannot run on before the
 * unlocker has let go of the mutex; it no longer waits on q's lock for
 * that. No claim is needed, unlike the other primitives (internal.h):
 * nobody may free the mutex while the waiter is in flight either way -
 * WOKEN, its lock call goes on; GRANTED, it holds the mutex - so a waiter
 * that learns of its delivery under q's lock, after the unlocker returned,
 * touches a mutex that is still in use. One atomic RMW per wake, as
 * before; a claim would add a second. Between a waiter's withdrawal
 * (timeout, cancellation) and the release there is no moment at which the
 * mutex is free, nobody is waiting and the unlock still has the queue to
 * touch. An unlock that wakes nobody releases with one CAS and touches
 * nothing after.
 *
 * Invariants
 *  (1) Whenever q's lock is free, waiters == (front != NULL) + the queued,
 *      not withdrawn nodes of q: every change of the count happens under
 *      q's lock, together with the matching queue change (a waiter counts
 *      itself in and pushes; a waker counts one out and pops; a waiter that
 *      gives up counts itself out and withdraws its node).
 *  (2) While STARVING is set, LOCKED is set too and nobody grabs: every
 *      grab tests LOCKED | STARVING. STARVING is set only by a CAS that
 *      sees LOCKED (so a holder exists, whose unlock will hand over), and
 *      cleared by a new owner, or together with LOCKED by the unlock that
 *      finds nobody to hand over to.
 *  (3) At most one woken waiter is in flight: unlock wakes only when WOKEN
 *      is clear and sets it in the same CAS; the woken waiter clears it in
 *      its next CAS (grab, requeue or give up). Only that waiter fills
 *      `front` (a requeue), and wakes and handoffs empty `front` first, so
 *      `front` holds at most one node.
 *
 * No lost wake-up: a waiter counts itself in with a CAS that sees LOCKED,
 * holding q's lock until its node is linked. An unlock whose fetch_sub
 * follows sees the count and takes q's lock after the node is linked; one
 * that precedes it left LOCKED clear, so the waiter's CAS grabs the mutex
 * instead. A waiter that gives up while WOKEN is its own clears it only by a
 * CAS that sees LOCKED, so the holder's unlock will wake the next one.
 *
 * Stackless lockers (weft_mutex_lock_step) take the same slow path with
 * the waiter's state - its node, when it first queued, whether it starves -
 * in their op instead of on a stack: where a coroutine parks they register
 * and return -EINPROGRESS, and the repeated call picks up after the park
 * (mx_woke), WOKEN theirs to clear as it is a woken coroutine's. Nothing
 * above changes for them: the node is in the queue (or `front`) either way.
 *
 * Uncancellable lockers (WEFT__SYNC_NOCANCEL: a condition wait taking its
 * mutex back, cond.c) open their waits with
 * weft_park_prepare_uncancellable, so a cancelled task queues and parks
 * like anyone else instead of failing at once with -ECANCELED.
 *
 * Memory order: the grabbing CAS is acquire and the releasing fetch_sub
 * release, so the critical sections are ordered; a handoff is ordered by
 * the handoff CAS (acq_rel), q's lock and the unpark/park pair. Pure
 * bookkeeping CASes (counts and flags, under q's lock) are relaxed: RMWs of
 * one word are totally ordered anyway.
 */
#include "internal.h"

#define MX_LOCKED 1u
#define MX_WOKEN 2u
#define MX_STARVING 4u
#define MX_SHIFT 3
#define MX_WAITER (1u << MX_SHIFT)
#define MX_WAITERS(s) ((s) >> MX_SHIFT)

#define MX_STARVE_NS WEFT_MSEC /* waited this long: starvation mode */
#define MX_SPIN_ROUNDS 6       /* rounds of spinning at most before parking */
#define MX_SPIN_PAUSES 30      /* pause instructions in the first round... */
#define MX_SPIN_GROW 4	       /* ...doubling for this many rounds */
#define MX_SPIN_STALE 2	       /* rounds without an unlock: the holder is slow, park */

static inline _Atomic uint32_t *mx_state(weft_mutex_t *m)
{
	return WEFT__A32(&m->state);
}

static inline _Atomic uint32_t *mx_gen(weft_mutex_t *m)
{
	return WEFT__A32(&m->gen);
}

static inline _Atomic uint64_t *mx_owner(weft_mutex_t *m)
{
	return WEFT__A64(&m->owner);
}

int weft_mutex_init(weft_mutex_t *m)
{
	if (!m)
		return -EINVAL;
	*m = (weft_mutex_t)WEFT_MUTEX_INIT;
	return 0;
}

int weft_mutex_destroy(weft_mutex_t *m)
{
	if (!m)
		return -EINVAL;
	weft_waitq_lock(&m->q);
	bool busy = atomic_load(mx_state(m)) != 0 || m->front || m->q.len;
	weft_waitq_unlock(&m->q);
	return busy ? -EBUSY : 0;
}

/* Under q's lock: the next waiter in line (count > 0 guarantees one). */
static weft_waitq_node_t *mx_next(weft_mutex_t *m)
{
	weft_waitq_node_t *n = m->front;
	if (n) {
		m->front = NULL;
	} else {
		n = weft__sync_pop(&m->q);
	}
	assert(n && n->status == WEFT__SYNC_WAITING);
	return n;
}

/* Wait in line once more. Called with q's lock held and the caller counted
 * in. A waiter that has queued before goes to the front. */
static void mx_enqueue(weft_mutex_t *m, weft__sync_op *w, bool requeue)
{
	bool nocancel = w->flags & WEFT__SYNC_NOCANCEL;
	if (requeue) {
		assert(m->front == NULL); /* invariant (3) */
		w->n.waker = nocancel ? weft_park_prepare_uncancellable() : weft_park_prepare();
		w->n.status = WEFT__SYNC_WAITING;
		w->n.queued = false;
		m->front = &w->n;
	} else {
		weft_waitq_push(&m->q, &w->n);
		/* The wait push opened (over at once in a cancelled task) is
		 * replaced before anyone can see its waker: q's lock is held. */
		if (nocancel)
			w->n.waker = weft_park_prepare_uncancellable();
	}
}

/* Under q's lock: hand n (popped) what it gets, release q's lock - the
 * last touch of the mutex - and wake n (weft__sync_hand: the waker is
 * copied first, since n's wait may end otherwise once the lock is free, and
 * n vanish; a late unpark of an ended wait does nothing). */
static void mx_deliver_unlock(weft_mutex_t *m, weft_waitq_node_t *n, int status)
{
	weft__sync_wakes wk = WEFT__SYNC_WAKES_INIT;
	weft__sync_hand(&wk, n, status);
	weft_waitq_unlock(&m->q);
	weft_unpark(wk.handed, 0);
}

/* After the park: what was delivered (> 0), or the park's error once the
 * waiter has left the line and counted itself out. */
static int mx_delivered(weft_mutex_t *m, weft__sync_op *w, int r)
{
	if (r == 0) {
		/* Unparked after the unlocker's last touch (mx_deliver_unlock). */
		assert(w->n.status > 0);
		return w->n.status;
	}
	weft_waitq_lock(&m->q);
	bool in_front = m->front == &w->n;
	bool in_q = w->n.queued && w->n.status == WEFT__SYNC_WAITING;
	if (in_front || in_q) {
		if (in_front)
			m->front = NULL;
		else
			w->n.status = WEFT__SYNC_WITHDRAWN;
		atomic_fetch_sub_explicit(mx_state(m), MX_WAITER, memory_order_relaxed);
		weft_waitq_unlock(&m->q);
		if (in_q)
			weft_waitq_remove(&m->q, &w->n);
		return r;
	}
	weft_waitq_unlock(&m->q);
	assert(w->n.status > 0);
	return w->n.status;
}

/* After a wait on w ended with r: 0 the mutex was handed over (leaving
 * starvation mode if it is no longer needed), 1 woken to compete again
 * (the unlocker counted w out and set WOKEN for it), or r once w has left
 * the line. */
static int mx_woke(weft_mutex_t *m, weft__sync_op *w, int r)
{
	_Atomic uint32_t *st = mx_state(m);
	r = mx_delivered(m, w, r);
	if (r < 0)
		return r;
	if (r == WEFT__SYNC_GRANTED) {
		/* The unlocker left LOCKED set for us and counted us out. */
		bool long_wait = weft__sync_waited(w, weft_now()) > MX_STARVE_NS;
		uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
		while ((s & MX_STARVING) && (!long_wait || MX_WAITERS(s) == 0) &&
		       !atomic_compare_exchange_weak_explicit(st, &s, s & ~MX_STARVING, memory_order_relaxed,
							      memory_order_relaxed))
			;
		return 0;
	}
	assert(r == WEFT__SYNC_WOKEN);
	if (weft__sync_waited(w, weft_now()) > MX_STARVE_NS)
		w->flags |= WEFT__SYNC_STARVING;
	return 1;
}

static void mx_spin(int round)
{
	int n = MX_SPIN_PAUSES << (round < MX_SPIN_GROW ? round : MX_SPIN_GROW);
	for (int i = 0; i < n; i++)
		weft__cpu_relax();
}

/* mx_lock_slow's `how`: its low byte, the flags a coroutine's or a
 * thread's waiter state starts with (0 or WEFT__SYNC_NOCANCEL); or this. */
#define MX_AWOKE 0x100u /* a stackless repeat woken to compete again */

/* The contended lock; s is the state the fast path saw. w: the waiter's
 * state across parks - NULL for a coroutine or a thread, which keep it
 * here and park; a stackless task's op, where it registers instead (and
 * returns -EINPROGRESS) and whose repeat comes back with MX_AWOKE when it
 * was woken to compete again (WOKEN is then ours to clear). Six arguments:
 * the fast path's call is a jump. */
__attribute__((noinline)) static int mx_lock_slow(weft_mutex_t *m, uint64_t self, weft_time_t deadline, uint32_t s,
						  weft__sync_op *w, unsigned how)
{
	_Atomic uint32_t *st = mx_state(m);
	if (atomic_load_explicit(mx_owner(m), memory_order_relaxed) == self)
		return -EDEADLK;

	weft__sync_op local;
	bool step = w != NULL, awoke = how & MX_AWOKE;
	if (!step) {
		w = &local;
		w->flags = (uint8_t)how; /* not queued yet, not starving */
	}
	assert(!awoke || (step && (w->flags & WEFT__SYNC_QUEUED)));
	bool spin = weft_spin_worthwhile();
	int iter = 0, stale = 0, can_park = step ? 0 : 1; /* 1: not checked yet */
	uint32_t gen = atomic_load_explicit(mx_gen(m), memory_order_relaxed);
	for (;;) {
		/* Spin while the holder keeps unlocking (so it is running) and the
		 * mode allows it. */
		if ((s & (MX_LOCKED | MX_STARVING)) == MX_LOCKED && spin && iter < MX_SPIN_ROUNDS &&
		    stale < MX_SPIN_STALE) {
			if (!awoke && !(s & MX_WOKEN) && MX_WAITERS(s) &&
			    atomic_compare_exchange_weak_explicit(st, &s, s | MX_WOKEN, memory_order_relaxed,
								  memory_order_relaxed))
				awoke = true;
			mx_spin(iter);
			iter++;
			uint32_t g = atomic_load_explicit(mx_gen(m), memory_order_relaxed);
			stale = g == gen ? stale + 1 : 0;
			gen = g;
			s = atomic_load_explicit(st, memory_order_relaxed);
			continue;
		}
		if (!(s & (MX_LOCKED | MX_STARVING))) {
			uint32_t n = (s | MX_LOCKED) & ~(awoke ? MX_WOKEN : 0u);
			if (atomic_compare_exchange_weak_explicit(st, &s, n, memory_order_acquire,
								  memory_order_relaxed))
				break;
			continue;
		}

		/* It stays locked: park, unless we may not. */
		int err = 0;
		if (deadline != WEFT_NEVER && weft_now() >= deadline)
			err = -ETIMEDOUT;
		else if (can_park == 1)
			err = can_park = weft__sync_can_park();
		else
			err = can_park;
		bool requeue = w->flags & WEFT__SYNC_QUEUED;
		if (!requeue) {
			w->start = weft__sync_tick(weft_now());
			w->flags |= WEFT__SYNC_QUEUED;
		}
		weft_waitq_lock(&m->q);
		s = atomic_load_explicit(st, memory_order_relaxed);
		bool got = false;
		for (;;) {
			uint32_t n;
			if (!(s & (MX_LOCKED | MX_STARVING))) {
				n = (s | MX_LOCKED) & ~(awoke ? MX_WOKEN : 0u);
				if (atomic_compare_exchange_weak_explicit(st, &s, n, memory_order_acquire,
									  memory_order_relaxed)) {
					got = true;
					break;
				}
				continue;
			}
			if (err) {
				/* Give up. Clearing WOKEN here is safe: LOCKED is set,
				 * so the holder's unlock wakes the next waiter. */
				if (!awoke ||
				    atomic_compare_exchange_weak_explicit(st, &s, s & ~MX_WOKEN, memory_order_relaxed,
									  memory_order_relaxed))
					break;
				continue;
			}
			n = s + MX_WAITER;
			if (w->flags & WEFT__SYNC_STARVING)
				n |= MX_STARVING; /* s has LOCKED, or STARVING already: invariant (2) */
			if (awoke)
				n &= ~MX_WOKEN;
			if (atomic_compare_exchange_weak_explicit(st, &s, n, memory_order_relaxed,
								  memory_order_relaxed))
				break;
		}
		if (got || err) {
			weft_waitq_unlock(&m->q);
			if (got)
				break;
			return err;
		}
		awoke = false;
		mx_enqueue(m, w, requeue);
		weft_waitq_unlock(&m->q);
		if (step)
			return weft__sync_step_park(w, deadline);

		int r = mx_woke(m, w, weft_park(w->n.waker, deadline));
		if (r < 0)
			return r;
		if (r == 0)
			break; /* handed over */
		awoke = true;
		iter = stale = 0;
		s = atomic_load_explicit(st, memory_order_relaxed);
	}
	atomic_store_explicit(mx_owner(m), self, memory_order_relaxed);
	return 0;
}

static inline int mx_lock(weft_mutex_t *m, uint64_t self, weft_time_t deadline, uint8_t flags)
{
	_Atomic uint32_t *st = mx_state(m);
	uint32_t s = 0;
	/* Free (the second try: free while waiters are parked). */
	if (likely(atomic_compare_exchange_strong_explicit(st, &s, MX_LOCKED, memory_order_acquire,
							   memory_order_relaxed)) ||
	    (!(s & (MX_LOCKED | MX_STARVING)) &&
	     atomic_compare_exchange_strong_explicit(st, &s, s | MX_LOCKED, memory_order_acquire,
						     memory_order_relaxed))) {
		atomic_store_explicit(mx_owner(m), self, memory_order_relaxed);
		return 0;
	}
	return mx_lock_slow(m, self, deadline, s, NULL, flags);
}

int weft__mutex_lock(weft_mutex_t *m, uint64_t self, weft_time_t deadline, bool nocancel)
{
	return mx_lock(m, self, deadline, nocancel ? WEFT__SYNC_NOCANCEL : 0);
}

int weft__mutex_lock_step(weft_mutex_t *m, uint64_t self, weft_time_t deadline, weft__sync_op *o, bool resumed,
			  bool nocancel)
{
	assert(!weft_can_park());
	_Atomic uint32_t *st = mx_state(m);
	if (resumed) {
		int r = mx_woke(m, o, weft_park_result());
		if (r < 0)
			return r;
		if (r == 0) { /* handed over */
			atomic_store_explicit(mx_owner(m), self, memory_order_relaxed);
			return 0;
		}
		return mx_lock_slow(m, self, deadline, atomic_load_explicit(st, memory_order_relaxed), o, MX_AWOKE);
	}
	uint32_t s = 0;
	if (atomic_compare_exchange_strong_explicit(st, &s, MX_LOCKED, memory_order_acquire, memory_order_relaxed) ||
	    (!(s & (MX_LOCKED | MX_STARVING)) &&
	     atomic_compare_exchange_strong_explicit(st, &s, s | MX_LOCKED, memory_order_acquire,
						     memory_order_relaxed))) {
		atomic_store_explicit(mx_owner(m), self, memory_order_relaxed);
		return 0;
	}
	o->flags = nocancel ? WEFT__SYNC_NOCANCEL : 0;
	return mx_lock_slow(m, self, deadline, s, o, 0);
}

int weft_mutex_lock_step(weft_mutex_t *m, weft_time_t deadline, weft_op_t *op)
{
	if (!m || !op)
		return -EINVAL;
	int b = weft_step_begin(op, WEFT__SYNC_MUTEX_LOCK, m);
	if (b < 0)
		return b;
	if (b == WEFT_STEP_BLOCKS) /* a coroutine or a plain thread */
		return mx_lock(m, weft__sync_self(), deadline, 0);
	return weft__mutex_lock_step(m, weft__sync_self(), deadline, (weft__sync_op *)op, b == 1, false);
}

int weft_mutex_lock_until(weft_mutex_t *m, weft_time_t deadline)
{
	if (!m)
		return -EINVAL;
	return mx_lock(m, weft__sync_self(), deadline, 0);
}

int weft_mutex_lock(weft_mutex_t *m)
{
	if (!m)
		return -EINVAL;
	return mx_lock(m, weft__sync_self(), WEFT_NEVER, 0);
}

int weft_mutex_try_lock(weft_mutex_t *m)
{
	if (!m)
		return -EINVAL;
	_Atomic uint32_t *st = mx_state(m);
	uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
	do {
		if (s & (MX_LOCKED | MX_STARVING))
			return -EAGAIN;
	} while (!atomic_compare_exchange_weak_explicit(st, &s, s | MX_LOCKED, memory_order_acquire,
							memory_order_relaxed));
	atomic_store_explicit(mx_owner(m), weft__sync_self(), memory_order_relaxed);
	return 0;
}

/* The contended unlock: s (LOCKED set) shows waiters, starvation mode or a
 * woken waiter in flight. Whatever has to be done with the queue is done
 * while the mutex is still held, and the release of LOCKED (or the handoff
 * that passes it on) comes last: once the mutex is seen free, this call
 * touches it no more, so whoever takes it next may destroy it (see
 * internal.h, "Lifetime"). */
__attribute__((noinline)) static void mx_unlock_slow(weft_mutex_t *m, uint32_t s)
{
	_Atomic uint32_t *st = mx_state(m);
	for (;;) {
		assert(s & MX_LOCKED);
		bool wake = MX_WAITERS(s) != 0 && !(s & (MX_WOKEN | MX_STARVING));
		bool handoff = (s & MX_STARVING) && MX_WAITERS(s) != 0;
		if (!wake && !handoff) {
			/* Nobody to wake (a woken waiter or a spinner will take it),
			 * or starvation mode with nobody left: release, ending the
			 * mode. */
			if (atomic_compare_exchange_weak_explicit(st, &s, s & ~(MX_LOCKED | MX_STARVING),
								  memory_order_release, memory_order_relaxed))
				return;
			continue;
		}
		weft_waitq_lock(&m->q);
		s = atomic_load_explicit(st, memory_order_relaxed);
		if ((s & MX_STARVING) && MX_WAITERS(s) != 0) {
			/* Starvation mode: the first in line gets the mutex as it
			 * is, LOCKED and all (invariant (2)). Under q's lock the count
			 * does not change; only WOKEN may. */
			weft_waitq_node_t *n = mx_next(m);
			while (!atomic_compare_exchange_weak_explicit(st, &s, s - MX_WAITER, memory_order_acq_rel,
								      memory_order_relaxed))
				;
			mx_deliver_unlock(m, n, WEFT__SYNC_GRANTED);
			return;
		}
		/* Normal mode: release, and in the same CAS count one waiter out
		 * as the woken one (invariant (3)), while q's lock is held: it
		 * cannot requeue before the mutex is free, and no caller may
		 * destroy the mutex before this call's unlock of q (its last
		 * touch): the woken waiter's call is still in progress, and it
		 * learns of the wake only after that unlock. A spinner may take
		 * the woken role (WOKEN) meanwhile: then there is nobody to
		 * wake. */
		while (MX_WAITERS(s) != 0 && !(s & (MX_WOKEN | MX_STARVING))) {
			if (atomic_compare_exchange_weak_explicit(st, &s, ((s - MX_WAITER) | MX_WOKEN) & ~MX_LOCKED,
								  memory_order_release, memory_order_relaxed)) {
				mx_deliver_unlock(m, mx_next(m), WEFT__SYNC_WOKEN);
				return;
			}
		}
		weft_waitq_unlock(&m->q); /* changed meanwhile: look again */
	}
}

static inline void mx_unlock(weft_mutex_t *m)
{
	atomic_store_explicit(mx_owner(m), 0, memory_order_relaxed);
	/* Only the holder writes gen: no read-modify-write needed. */
	atomic_store_explicit(mx_gen(m), atomic_load_explicit(mx_gen(m), memory_order_relaxed) + 1,
			      memory_order_relaxed);
	uint32_t s = MX_LOCKED;
	if (likely(atomic_compare_exchange_strong_explicit(mx_state(m), &s, 0, memory_order_release,
							   memory_order_relaxed)))
		return;
	if (!(s & MX_STARVING) && (MX_WAITERS(s) == 0 || (s & MX_WOKEN))) {
		/* Waiters or a woken one, but nobody to wake now: release. */
		if (atomic_compare_exchange_strong_explicit(mx_state(m), &s, s & ~MX_LOCKED, memory_order_release,
							    memory_order_relaxed))
			return;
	}
	mx_unlock_slow(m, s);
}

void weft__mutex_unlock(weft_mutex_t *m)
{
	mx_unlock(m);
}

uint32_t weft__mutex_waiters(weft_mutex_t *m)
{
	return MX_WAITERS(atomic_load_explicit(mx_state(m), memory_order_relaxed));
}

int weft_mutex_unlock_for(weft_mutex_t *m, weft_task_t t)
{
	if (!m || !t)
		return -EINVAL;
	if (atomic_load_explicit(mx_owner(m), memory_order_relaxed) != t)
		return -EPERM;
	mx_unlock(m);
	return 0;
}

int weft_mutex_held(weft_mutex_t *m)
{
	if (!m)
		return -EINVAL;
	/* The holder wrote owner itself (as in unlock). */
	return atomic_load_explicit(mx_owner(m), memory_order_relaxed) == weft__sync_self();
}

int weft_mutex_waiters(weft_mutex_t *m)
{
	return m ? (int)weft__mutex_waiters(m) : -EINVAL;
}

int weft_mutex_unlock(weft_mutex_t *m)
{
	if (!m)
		return -EINVAL;
	/* The holder wrote owner itself, so it reads its own token back; any
	 * other caller reads another token or 0 (free, or being handed over). */
	if (atomic_load_explicit(mx_owner(m), memory_order_relaxed) != weft__sync_self())
		return -EPERM;
	mx_unlock(m);
	return 0;
}
