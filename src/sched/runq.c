/* runq.c - per-worker run queues and the global injection queue.
 *
 * Local run queue
 * ---------------
 * A ring of WEFT_RUNQ_SIZE task pointers with a head and a tail index
 * (free-running uint32, masked on use). The owner pushes at the tail and
 * pops at the head; thieves take half of the queue from the head. Only the
 * owner writes tail (store-release after writing the slot), so a thief that
 * load-acquires tail sees the slots it covers. The head is advanced by CAS by
 * both the owner (pop) and thieves (steal), so a slot is consumed by exactly
 * one of them: whoever wins the CAS from the head value under which it read
 * the slot. Slots are atomics (relaxed) because a thief may read a slot that
 * the owner is about to overwrite; such a thief's CAS then fails and its read
 * is discarded, which is why the read is harmless.
 *
 * The next-task slot (runnext) holds the task most recently made ready by
 * this worker (a message's receiver, a spawned child): it runs next, which
 * keeps a producer and its consumer on one core. Two guards keep it honest:
 * the owner takes from the queue after WEFT_RUNNEXT_STREAK consecutive runs
 * from the slot, so a ping-pong pair cannot starve the queue; and thieves take
 * it when the queue is empty and the owner is busy in a task.
 *
 * When the ring is full, the owner moves half of it plus the new task to the
 * global queue in one batch (one lock acquisition per WEFT_RUNQ_SIZE/2 tasks).
 *
 * Global queue
 * ------------
 * A mutex-protected intrusive list for tasks made ready outside any worker,
 * overflow from full rings, and a fairness check every WEFT_GLOBAL_CHECK runs.
 * gq_len is read without the lock as a hint.
 */
#include "internal.h"

#include <assert.h>

#define MASK (WEFT_RUNQ_SIZE - 1)

/* For assert(): what may enter a queue is a runnable task (each made
 * runnable once per wake: ready, yield, a park that did not happen). */
#define QUEUEABLE(t) (WEFT_RS_STATE(atomic_load_explicit(&(t)->run_state, memory_order_relaxed)) == WEFT_RS_RUNNABLE)

uint32_t weft__runq_len(weft_worker *w)
{
	uint32_t h = atomic_load_explicit(&w->head, memory_order_acquire);
	uint32_t t = atomic_load_explicit(&w->tail, memory_order_acquire);
	uint32_t n = t - h;
	return (n > WEFT_RUNQ_SIZE ? 0 : n) + (atomic_load_explicit(&w->runnext, memory_order_relaxed) != NULL);
}

bool weft__runq_empty(weft_worker *w)
{
	uint32_t h = atomic_load_explicit(&w->head, memory_order_acquire);
	uint32_t t = atomic_load_explicit(&w->tail, memory_order_acquire);
	return h == t && atomic_load_explicit(&w->runnext, memory_order_acquire) == NULL;
}

/* Move half of the ring plus t to the global queue. False if a thief got in
 * first (then the ring has room again). */
static bool runq_put_slow(weft_worker *w, weft_task *t, uint32_t h, uint32_t tail)
{
	enum { HALF = WEFT_RUNQ_SIZE / 2 };
	assert(tail - h <= WEFT_RUNQ_SIZE);
	if (tail - h != WEFT_RUNQ_SIZE)
		return false;
	/* Claim the older half. Only the owner writes slots, so once the CAS
	 * has moved the head past them they are ours to read at leisure (a
	 * thief that read them before loses its CAS). */
	if (!atomic_compare_exchange_strong_explicit(&w->head, &h, h + HALF, memory_order_acq_rel,
						     memory_order_relaxed))
		return false;
	weft_task *first = atomic_load_explicit(&w->buf[h & MASK], memory_order_relaxed), *x = first;
	for (uint32_t i = 1; i < HALF; i++) {
		weft_task *nx = atomic_load_explicit(&w->buf[(h + i) & MASK], memory_order_relaxed);
		x->next = nx;
		x = nx;
	}
	x->next = t;
	t->next = NULL;
	weft__gq_put(w->rt, first, t, HALF + 1);
	return true;
}

/* Push t (owner only). next: put it in the next-task slot, kicking the old
 * occupant to the tail. Returns where the push left work that another worker
 * could take: RUNQ_NEXT (only the slot, which this worker runs next - no one
 * else needs waking), RUNQ_RING, or RUNQ_GLOBAL (the ring overflowed). */
int weft__runq_put(weft_worker *w, weft_task *t, bool next)
{
	assert(w == weft__self_worker && t != NULL && QUEUEABLE(t));
	if (next) {
		/* Only the owner stores a task into the slot; thieves only take
		 * one out (CAS to NULL). So an empty slot stays empty until we fill
		 * it, and a plain store does (release: a thief that takes the task
		 * sees its fields) - no locked instruction on the common path. */
		if (atomic_load_explicit(&w->runnext, memory_order_relaxed) == NULL) {
			atomic_store_explicit(&w->runnext, t, memory_order_release);
			return WEFT_RUNQ_NEXT;
		}
		/* acq_rel: the new occupant's fields are published to a thief that
		 * exchanges it out; the old occupant's are acquired. */
		t = atomic_exchange_explicit(&w->runnext, t, memory_order_acq_rel);
		if (t == NULL)
			return WEFT_RUNQ_NEXT;
	}
	for (;;) {
		uint32_t h = atomic_load_explicit(&w->head, memory_order_acquire);
		uint32_t tail = atomic_load_explicit(&w->tail, memory_order_relaxed);
		/* Only we move tail, and head never passes it: an older head
		 * (thieves move it on) is at most a ring behind. */
		assert(tail - h <= WEFT_RUNQ_SIZE);
		if (tail - h < WEFT_RUNQ_SIZE) {
			atomic_store_explicit(&w->buf[tail & MASK], t, memory_order_relaxed);
			/* release: a thief that acquires tail sees the slot and the task. */
			atomic_store_explicit(&w->tail, tail + 1, memory_order_release);
			return WEFT_RUNQ_RING;
		}
		if (runq_put_slow(w, t, h, tail))
			return WEFT_RUNQ_GLOBAL;
	}
}

/* Pop (owner only): the next-task slot first, unless it has had its streak. */
weft_task *weft__runq_get(weft_worker *w)
{
	assert(w == weft__self_worker);
	if (w->runnext_streak < WEFT_RUNNEXT_STREAK && atomic_load_explicit(&w->runnext, memory_order_relaxed)) {
		weft_task *t = atomic_exchange_explicit(&w->runnext, NULL, memory_order_acq_rel);
		if (t) {
			w->runnext_streak++;
			return t;
		}
	}
	w->runnext_streak = 0;
	for (;;) {
		uint32_t h = atomic_load_explicit(&w->head, memory_order_acquire);
		uint32_t tail = atomic_load_explicit(&w->tail, memory_order_relaxed);
		assert(tail - h <= WEFT_RUNQ_SIZE);
		if (h == tail)
			break;
		weft_task *t = atomic_load_explicit(&w->buf[h & MASK], memory_order_relaxed);
		if (atomic_compare_exchange_weak_explicit(&w->head, &h, h + 1, memory_order_acq_rel,
							  memory_order_relaxed))
			return t;
	}
	/* Queue empty: the slot, even past its streak. */
	if (atomic_load_explicit(&w->runnext, memory_order_relaxed) == NULL)
		return NULL;
	return atomic_exchange_explicit(&w->runnext, NULL, memory_order_acq_rel);
}

/* Steal half of victim's queue into thief's, as much as fits there (a thief
 * usually has an empty ring, but a poll or a timer may have queued work in
 * it; overfilling it would overwrite queued tasks and expose stale slots).
 * Returns how many were taken. */
uint32_t weft__runq_steal(weft_worker *thief, weft_worker *victim, bool take_next)
{
	assert(thief == weft__self_worker && thief != victim);
	uint32_t ttail = atomic_load_explicit(&thief->tail, memory_order_relaxed);
	/* The thief's ring need not be empty (a poll or a timer run may just
	 * have queued work in it): take no more than fits. Its own thieves only
	 * move its head forward, so the room can only grow meanwhile. */
	uint32_t room = WEFT_RUNQ_SIZE - (ttail - atomic_load_explicit(&thief->head, memory_order_acquire));
	assert(room <= WEFT_RUNQ_SIZE);
	if (room == 0)
		return 0;
	for (;;) {
		uint32_t h = atomic_load_explicit(&victim->head, memory_order_acquire);
		uint32_t t = atomic_load_explicit(&victim->tail, memory_order_acquire);
		uint32_t n = t - h;
		if (n > WEFT_RUNQ_SIZE)
			continue; /* inconsistent snapshot: head moved past our tail read */
		n -= n / 2;
		if (n > room)
			n = room;
		if (n == 0) {
			if (!take_next || !atomic_load_explicit(&victim->in_task, memory_order_relaxed))
				return 0;
			weft_task *nx = atomic_load_explicit(&victim->runnext, memory_order_relaxed);
			if (!nx)
				return 0;
			/* The victim is busy in a task and has one waiting in its slot.
			 * Usually that task is about to block and hand the worker to the
			 * slot (a message exchange): give it a few microseconds first,
			 * and take the slot only if the victim is still in the same
			 * task run - pulling a ping-pong pair apart costs more. */
			uint32_t tick = atomic_load_explicit(&victim->mon_tick, memory_order_relaxed);
			for (int i = 0;
			     i < 2000 && atomic_load_explicit(&victim->mon_tick, memory_order_relaxed) == tick; i++)
				weft__cpu_relax();
			if (atomic_load_explicit(&victim->mon_tick, memory_order_relaxed) != tick ||
			    !atomic_load_explicit(&victim->in_task, memory_order_relaxed))
				return 0;
			if (!atomic_compare_exchange_strong_explicit(&victim->runnext, &nx, NULL, memory_order_acq_rel,
								     memory_order_relaxed))
				return 0;
			atomic_store_explicit(&thief->buf[ttail & MASK], nx, memory_order_relaxed);
			atomic_store_explicit(&thief->tail, ttail + 1, memory_order_release);
			return 1;
		}
		for (uint32_t i = 0; i < n; i++) {
			weft_task *x = atomic_load_explicit(&victim->buf[(h + i) & MASK], memory_order_relaxed);
			atomic_store_explicit(&thief->buf[(ttail + i) & MASK], x, memory_order_relaxed);
		}
		if (atomic_compare_exchange_strong_explicit(&victim->head, &h, h + n, memory_order_acq_rel,
							    memory_order_relaxed)) {
			/* Half the victim's ring at most, and it fits ours. */
			assert(n > 0 && n <= room && n <= WEFT_RUNQ_SIZE - WEFT_RUNQ_SIZE / 2);
			atomic_store_explicit(&thief->tail, ttail + n, memory_order_release);
			return n;
		}
	}
}

/* For assert(), under gq_lock: the list and its length agree. */
#define GQ_SANE(rt)                                                                                                    \
	(((rt)->gq_head == NULL) == ((rt)->gq_tail == NULL) &&                                                         \
	 ((rt)->gq_head == NULL) == (atomic_load_explicit(&(rt)->gq_len, memory_order_relaxed) == 0))

void weft__gq_put(struct weft_runtime *rt, weft_task *head, weft_task *tail, uint32_t n)
{
	assert(n > 0 && head != NULL && tail != NULL && QUEUEABLE(head) && QUEUEABLE(tail));
	assert(n > 1 || head == tail);
	tail->next = NULL;
	pthread_mutex_lock(&rt->gq_lock);
	assert(GQ_SANE(rt));
	if (rt->gq_tail)
		rt->gq_tail->next = head;
	else
		rt->gq_head = head;
	rt->gq_tail = tail;
	atomic_fetch_add_explicit(&rt->gq_len, n, memory_order_relaxed);
	assert(GQ_SANE(rt));
	pthread_mutex_unlock(&rt->gq_lock);
	/* A worker asleep in the steal gate holds the spinning role, so
	 * wakep wakes nobody for this work: kick it (worker.c, gate_sleep). */
	weft__full_fence(rt);
	if (unlikely(atomic_load(&rt->ngated) != 0))
		weft__kick_gated(rt, n); /* one per task: a taker takes a fair share, not all */
}

/* Take up to max tasks (at most a fair share, and WEFT_GQ_BATCH) from the global
 * queue; return the first and push the rest on w's ring. */
weft_task *weft__gq_get(struct weft_runtime *rt, weft_worker *w, uint32_t max)
{
	if (atomic_load_explicit(&rt->gq_len, memory_order_relaxed) == 0)
		return NULL;
	pthread_mutex_lock(&rt->gq_lock);
	assert(GQ_SANE(rt));
	uint32_t len = atomic_load_explicit(&rt->gq_len, memory_order_relaxed);
	int nw = atomic_load_explicit(&rt->nworkers, memory_order_relaxed);
	uint32_t n = len / (uint32_t)nw + 1;
	if (n > len)
		n = len;
	if (n > max)
		n = max;
	if (n > WEFT_GQ_BATCH)
		n = WEFT_GQ_BATCH;
	weft_task *first = rt->gq_head, *t = first;
	if (n == 0) {
		pthread_mutex_unlock(&rt->gq_lock);
		return NULL;
	}
	for (uint32_t i = 1; i < n; i++)
		t = t->next;
	assert(t != NULL && n <= len); /* gq_len counts the list */
	rt->gq_head = t->next;
	if (!rt->gq_head)
		rt->gq_tail = NULL;
	atomic_fetch_sub_explicit(&rt->gq_len, n, memory_order_relaxed);
	assert(GQ_SANE(rt));
	pthread_mutex_unlock(&rt->gq_lock);
	assert(QUEUEABLE(first));
	t->next = NULL;
	for (weft_task *x = first->next; x;) {
		weft_task *nx = x->next;
		weft__runq_put(w, x, false);
		x = nx;
	}
	return first;
}
