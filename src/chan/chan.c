/* chan.c - channels: buffers, non-blocking attempts, wake-ups, close.
 *
 * Three kinds share one struct and one waiter protocol:
 *
 *  rendezvous  no buffer. Everything happens under the channel's spinlock: a
 *              sender that finds a queued receiver claims that receiver's wait
 *              (its `done` word 0 -> 1), copies the value into the receiver's
 *              buffer, marks the node DELIVERED and unparks it; symmetrically
 *              for a receiver finding a queued sender. Claiming before copying
 *              is what makes a select safe: a select's cases share one `done`
 *              word, so at most one case of it is ever completed by others.
 *
 *  bounded     a lock-free ring (Vyukov's bounded MPMC queue): a send or a
 *              receive that neither fills nor empties the ring takes no lock.
 *              Waiters queue under the lock. The one that a change frees
 *              is claimed and handed its operation done where the ring
 *              allows (a sender's element put into the freed slot, a
 *              receiver given the published element: DELIVERED), else
 *              told to retry (NOTIFIED); see chan_notify_one. The
 *              protocol that keeps wake-ups from being lost is a store->load
 *              pairing of seq_cst operations, with no fence on the fast path:
 *              a sender claims its slot with a seq_cst CAS on tail and then
 *              loads nrecvw (seq_cst); a receiver about to wait stores nrecvw
 *              (seq_cst, under the lock) and then retries the ring, loading
 *              tail with seq_cst. In the single total order of seq_cst
 *              operations one of the two comes first, so either the sender
 *              sees the waiter (and notifies it) or the waiter sees the
 *              claimed slot - and a receiver that finds a slot claimed but not
 *              yet written waits for that in-flight writer, so it gets the
 *              element. Symmetrically a receiver frees a slot with a seq_cst
 *              CAS on head and then loads nsendw, and a sender that finds its
 *              slot still full loads head (seq_cst) and, if a receiver has
 *              claimed that slot, waits for the in-flight reader. Close sets
 *              a bit in the tail index, so no enqueue can succeed after it.
 *
 *  unbounded   a growable ring under the lock; senders never block, receivers
 *              are notified like a bounded channel's.
 *
 * A waiter popped by a waker that lost the claim (the wait had already been
 * claimed elsewhere, timed out or been cancelled) is simply dropped from the
 * queue; its owner finds it unqueued when it cleans up.
 *
 * Lifetime: either party of an operation may release the channel the
 * moment its own call returns, while the other party's call is still
 * unwinding (the POSIX rule for mutexes, in both directions). So no call
 * touches the channel after the point where the other party can see its
 * operation completed:
 *  - a waker claims the waiter's wait under the lock (claim_waiter:
 *    weft_unpark_claim), hands over, releases the lock and only then wakes
 *    it (weft_unpark_finish, through a chan_wakes list). A claimed wait
 *    cannot end otherwise (no timeout, no cancellation), so its node stays
 *    put until then; and the woken waiter touches the channel no more;
 *  - a lock-free ring operation loads the other side's waiter count before
 *    it publishes; with no waiters it touches nothing after publishing;
 *    with waiters it holds a reference from before publishing until it has
 *    notified one and unlocked (waiters_before_publish);
 *  - whoever publishes while holding the lock (select, the waits' locked
 *    attempts, close) holds a reference across the locked section, since a
 *    lock-free operation may take what was published and its caller
 *    release the channel before the unlock.
 */
#include "chan_impl.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "../base/pool.h"
#include "../base/spin.h"

#define MAX_ELEM ((size_t)64 * 1024)
#define MAX_CAP ((ssize_t)1 << 30)

/* Tests only (chan_impl.h, chan_hook). */
_Atomic(void (*)(weft_chan_t *ch, int where)) weft__chan_hook;

/* For assert(), under the lock: each queue is empty exactly when its count
 * says so (counts change only under the lock), and the unbounded buffer
 * holds no more than its capacity. */
#define QUEUES_SANE(ch)                                                                                                \
	(((ch)->kind != CHAN_BOUNDED ||                                                                                \
	  (((ch)->recvq == NULL) == (atomic_load_explicit(chan_nwait(ch, false), memory_order_relaxed) == 0) &&        \
	   ((ch)->sendq == NULL) == (atomic_load_explicit(chan_nwait(ch, true), memory_order_relaxed) == 0))) &&       \
	 ((ch)->kind != CHAN_UNBOUNDED || (UNBOUNDED(ch)->len <= UNBOUNDED(ch)->cap &&                                 \
					   (UNBOUNDED(ch)->cap == 0 || UNBOUNDED(ch)->head < UNBOUNDED(ch)->cap))))

#ifndef NDEBUG
bool chan_queues_sane(weft_chan_t *ch)
{
	return chan_locked(ch) && QUEUES_SANE(ch);
}
#endif

void chan_wake_claimed_list(chan_wakes *wk)
{
	chan_waiter *w = wk->head;
	wk->head = NULL;
	while (w) {
		/* Claimed (so unqueued, and put until its finish) and given a
		 * status by its claimer. */
		assert(!w->queued && w->status != W_WAITING);
		/* Read before the wake: the node may vanish with it. */
		chan_waiter *next = w->next;
		weft_waker_t k = w->waker;
		weft_unpark_finish(k, 0);
		w = next;
	}
}

/* A channel's memory: from the base pool when it is small (most channels:
 * made and freed at a high rate, often on different workers - pool.h says
 * why not malloc), else from malloc. Cache-line aligned when it is a line
 * or more (a bounded channel, whose ring indices have lines of their own);
 * a channel without a buffer (32 bytes) takes just its size, 8-aligned:
 * millions of parked tasks may each hold one. */
static void *chan_mem(size_t bytes, bool *pooled)
{
	void *m = weft__pool_alloc(bytes);
	*pooled = m != NULL;
	if (!m && posix_memalign(&m, WEFT_CACHELINE, bytes))
		m = NULL;
	return m;
}

int weft_chan_create(weft_chan_t **out, size_t elem_size, ssize_t capacity)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (elem_size == 0 || elem_size > MAX_ELEM || capacity < WEFT_CHAN_UNBOUNDED || capacity > MAX_CAP)
		return -EINVAL;
	weft_chan_t *ch;
	bool pooled;
	if (capacity > 0) {
		size_t stride = (sizeof(chan_slot) + elem_size + 7) & ~(size_t)7;
		size_t bytes = sizeof(chan_bounded) + stride * (size_t)capacity;
		chan_bounded *b = chan_mem(bytes, &pooled);
		if (!b)
			return -ENOMEM;
		memset(b, 0, sizeof *b);
		b->cap = (uint64_t)capacity;
		b->mask = (b->cap & (b->cap - 1)) == 0 ? b->cap - 1 : 0;
		b->stride = stride;
		for (uint64_t i = 0; i < b->cap; i++)
			atomic_init(&((chan_slot *)(b->ring + i * stride))->seq, 2 * i);
		ch = &b->c;
		ch->kind = CHAN_BOUNDED;
	} else if (capacity == 0) {
		ch = chan_mem(sizeof *ch, &pooled);
		if (!ch)
			return -ENOMEM;
		memset(ch, 0, sizeof *ch);
		ch->kind = CHAN_RENDEZVOUS;
	} else {
		chan_unbounded *u = chan_mem(sizeof *u, &pooled);
		if (!u)
			return -ENOMEM;
		memset(u, 0, sizeof *u);
		ch = &u->c;
		ch->kind = CHAN_UNBOUNDED;
	}
	ch->pooled = pooled;
	ch->esize = (uint32_t)elem_size;
	atomic_init(&ch->refs, 1);
	*out = ch;
	return 0;
}

int weft_chan_retain(weft_chan_t *ch)
{
	if (!ch)
		return -EINVAL;
	assert(atomic_load_explicit(&ch->refs, memory_order_relaxed) > 0); /* the caller holds one */
	atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
	return 0;
}

void chan_unref(weft_chan_t *ch)
{
	/* acq_rel: the last owner sees every other owner's writes before freeing. */
	uint32_t was = atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel);
	assert(was > 0); /* never below zero */
	if (was == 1) {
		/* Nobody waits on a channel nobody holds: each waiter's call
		 * holds a reference (its caller's, or its own). */
		assert(ch->recvq == NULL && ch->sendq == NULL);
		if (ch->kind == CHAN_UNBOUNDED)
			free(UNBOUNDED(ch)->buf);
		if (ch->pooled)
			weft__pool_free(ch);
		else
			free(ch);
	}
}

uint32_t chan_waiting(weft_chan_t *ch, bool send)
{
	if (ch->kind == CHAN_BOUNDED)
		return atomic_load(chan_nwait(ch, send));
	uint32_t n = 0;
	chan_lock(ch);
	chan_waiter *head = send ? ch->sendq : ch->recvq;
	if (head) {
		chan_waiter *w = head;
		do
			n++;
		while ((w = w->next) != head);
	}
	chan_unlock(ch);
	return n;
}

int weft_chan_release(weft_chan_t *ch)
{
	if (!ch)
		return -EINVAL;
	if (atomic_load(&ch->refs) == 1 && (chan_waiting(ch, false) || chan_waiting(ch, true)))
		return -EBUSY;
	chan_unref(ch);
	return 0;
}

/* ------------------------------------------------------------ bounded ring */

static inline chan_slot *slot_at(chan_bounded *b, uint64_t pos)
{
	uint64_t i = b->mask ? pos & b->mask : pos % b->cap;
	return (chan_slot *)(b->ring + i * b->stride);
}

enum { RING_OK, RING_FULL, RING_EMPTY, RING_CLOSED };

/* Copy one element: word-sized elements (the usual case) without a call. */
static inline void copy_elem(void *dst, const void *src, uint32_t size)
{
	if (size == 8)
		memcpy(dst, src, 8);
	else if (size == 4)
		memcpy(dst, src, 4);
	else
		memcpy(dst, src, size);
}

/* Wait for the other side's in-flight copy of a slot it has claimed: a few
 * loads cover it almost always; pause (which costs ~100 cycles on recent
 * x86) only after that, and give the CPU away after a while: the other side
 * may have been preempted (by the OS, or the hypervisor) between its claim
 * and its copy, and spinning would only burn the time it needs. */
static inline void wait_in_flight(int *spins)
{
	int n = ++*spins;
	if (n > 32 && n <= 1024)
		weft__cpu_relax();
	else if (n > 1024)
		sched_yield();
}

/* After a slot is claimed, before the change is published: whether waiters
 * of the other side must be notified (the load half of the protocol, the
 * top comment). A notifier that does not hold the lock will take it after
 * publishing, when the other side may already have taken the element and
 * released the channel: it holds a reference until it is done. */
static inline bool waiters_before_publish(weft_chan_t *ch, _Atomic uint32_t *waiters, bool locked)
{
	if (!atomic_load(waiters))
		return false;
	assert(!locked || chan_locked(ch));
	assert(atomic_load_explicit(&ch->refs, memory_order_relaxed) > 0); /* the caller's */
	if (!locked) /* (a caller holding the lock holds a reference already) */
		atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
	return true;
}

/* Slot sequence numbers are doubled so that a one-slot ring works too:
 * seq == 2*pos      the slot is free for the enqueue at pos;
 * seq == 2*pos + 1  the slot holds the element enqueued at pos.
 * (With the classic seq == pos / pos + 1 a ring of one slot cannot tell
 * "holds pos" from "free for pos + 1".) */
static int ring_put(weft_chan_t *ch, const void *v, bool locked, bool *notify)
{
	chan_bounded *b = BOUNDED(ch);
	uint64_t pos = atomic_load_explicit(&b->tail, memory_order_relaxed);
	int spins = 0;
	for (;;) {
		if (pos & CHAN_CLOSED_BIT)
			return RING_CLOSED;
		chan_slot *s = slot_at(b, pos);
		uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		int64_t dif = (int64_t)(seq - 2 * pos);
		if (dif == 0) {
			/* seq_cst: the store half of the protocol with waiting receivers
			 * (the top comment); a locked instruction on x86 either way. */
			if (atomic_compare_exchange_weak_explicit(&b->tail, &pos, pos + 1, memory_order_seq_cst,
								  memory_order_relaxed)) {
				/* The slot was free for pos: the receive of pos - cap
				 * has moved head past it, so with ours the ring holds
				 * at most cap elements. */
				assert(pos + 1 - atomic_load_explicit(&b->head, memory_order_relaxed) <= b->cap);
				/* The load half, before the element is published: once
				 * it is, a receiver may take it and release the channel. */
				*notify = waiters_before_publish(ch, &b->nrecvw, locked);
				copy_elem(s->data, v, ch->esize);
				/* release: the receiver that acquires seq sees the data. */
				atomic_store_explicit(&s->seq, 2 * pos + 1, memory_order_release);
				return RING_OK;
			}
		} else if (dif < 0) {
			/* The slot still holds the element of the previous lap: full,
			 * unless a receiver has claimed it and is copying it out. */
			uint64_t h = atomic_load(&b->head);
			if (h + b->cap <= pos)
				return RING_FULL;
			wait_in_flight(&spins);
			pos = atomic_load_explicit(&b->tail, memory_order_relaxed);
		} else {
			pos = atomic_load_explicit(&b->tail, memory_order_relaxed);
		}
	}
}

static int ring_get(weft_chan_t *ch, void *out, bool locked, bool *notify)
{
	chan_bounded *b = BOUNDED(ch);
	uint64_t pos = atomic_load_explicit(&b->head, memory_order_relaxed);
	int spins = 0;
	for (;;) {
		chan_slot *s = slot_at(b, pos);
		uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		int64_t dif = (int64_t)(seq - (2 * pos + 1));
		if (dif == 0) {
			/* seq_cst: the store half of the protocol with waiting senders. */
			if (atomic_compare_exchange_weak_explicit(&b->head, &pos, pos + 1, memory_order_seq_cst,
								  memory_order_relaxed)) {
				/* The slot held the element of pos: its send moved
				 * tail past pos before publishing it. */
				assert((atomic_load_explicit(&b->tail, memory_order_relaxed) & ~CHAN_CLOSED_BIT) > pos);
				*notify = waiters_before_publish(ch, &b->nsendw, locked);
				copy_elem(out, s->data, ch->esize);
				/* release: the sender of the next lap sees the slot free. */
				atomic_store_explicit(&s->seq, 2 * (pos + b->cap), memory_order_release);
				return RING_OK;
			}
		} else if (dif < 0) {
			/* seq_cst: the load half of the protocol, for a waiter's retry. */
			uint64_t t = atomic_load(&b->tail);
			if ((t & ~CHAN_CLOSED_BIT) == pos)
				return (t & CHAN_CLOSED_BIT) ? RING_CLOSED : RING_EMPTY;
			wait_in_flight(&spins); /* a sender claimed pos and is still writing it */
			pos = atomic_load_explicit(&b->head, memory_order_relaxed);
		} else {
			pos = atomic_load_explicit(&b->head, memory_order_relaxed);
		}
	}
}

/* ------------------------------------------------------------ waiters */

/* Under the lock: pop waiters until one can be claimed; NULL if none. The
 * claim has two steps: the wait's own claim word (a select's cases share
 * one: at most one case of it is completed by others), then the waiter's
 * parker (weft_unpark_claim: from then on no deadline or cancellation can
 * end the wait, so the node and its buffer stay put until it is woken). A
 * waiter whose wait has ended already is dropped: its owner finds the node
 * unqueued, with nothing delivered, when it cleans up. */
static chan_waiter *claim_waiter(weft_chan_t *ch, bool send)
{
	assert(chan_locked(ch));
	chan_waiter **q = queue_of(ch, send);
	while (*q) {
		chan_waiter *w = *q;
		chan_dequeue_waiter(ch, w, send);
		if (w->single) {
			/* Its owner holds this lock and is re-trying the ring
			 * with it queued (select.c, recheck_buffered): that try
			 * succeeded, so the owner is done with it. */
			if (atomic_load_explicit(&w->done, memory_order_relaxed) == 2)
				continue;
			/* Queued until now, so nobody has claimed it. */
			assert(atomic_load_explicit(&w->done, memory_order_relaxed) == 0);
			/* Unqueued under the lock: ours among wakers (chan_impl.h).
			 * The plain store only tells a task run again without this
			 * wake (a stackless op) that it was taken. */
			atomic_store_explicit(&w->done, 1, memory_order_relaxed);
		} else {
			int zero = 0;
			if (!atomic_compare_exchange_strong(chan_waiter_done(w), &zero, 1))
				continue;
		}
		if (weft_unpark_claim(w->waker)) {
			/* Ours alone now: no other waker has given it a status. */
			assert(w->status == W_WAITING);
			return w;
		}
	}
	return NULL;
}

static inline void add_wake(chan_wakes *wk, chan_waiter *w)
{
	assert(!w->queued && w->status != W_WAITING);
	w->next = wk->head;
	wk->head = w;
}

/* Under the lock: something changed for the waiters of one side (`send`:
 * a slot was freed; else an element was published). Claim one of them
 * and, on a bounded channel, complete its operation for it - a waiting
 * sender's element goes into the ring, a waiting receiver gets the oldest
 * one - so that it wakes done (W_DELIVERED) instead of retrying against
 * the running tasks that may take the slot first (Go hands over the same
 * way). If the ring changed back meanwhile (lock-free operations do not
 * take the lock), the waiter is told to retry (W_NOTIFIED), as it is on
 * the other kinds. A hand-over is itself a change for the other side's
 * waiters (an element published, a slot freed), so it is handed on to
 * them in turn, side after side (the loop below). */
/* Under the lock: tell claimed waiter w to retry. A retry touches the
 * channel again after w's wait has ended, and w is on no queue then, so
 * nothing would keep the channel alive for it (weft_chan_release counts
 * queued waiters, and the caller may drop the last reference the moment
 * its own call returns): a single-case waiter is handed a reference with
 * the notification, which its owner gives back (select.c: the retry in
 * wait_one_begin, or resolve if it does not retry). A select holds its
 * own references for its whole wait (hold_all). */
static void notify_retry(weft_chan_t *ch, chan_waiter *w)
{
	assert(chan_locked(ch) && !w->queued);
	w->status = W_NOTIFIED;
	if (w->single)
		atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed); /* ours: the caller's is held */
}

void chan_notify_one(weft_chan_t *ch, bool send, chan_wakes *wk)
{
	assert(chan_locked(ch));
	if (ch->kind != CHAN_BOUNDED) {
		chan_waiter *w = claim_waiter(ch, send);
		if (w) {
			notify_retry(ch, w);
			add_wake(wk, w);
		}
		return;
	}
	/* A hand-over changes the ring for the other side in turn: a sender's
	 * element published with receivers queued, a slot freed with senders
	 * queued. Hand that on as well, side after side, until a side has no
	 * waiter or the ring refuses (each round moves one element, so this
	 * ends; both sides have waiters only for a moment). */
	for (;;) {
		chan_waiter *w = claim_waiter(ch, send);
		if (!w)
			return;
		bool other = false;
		int r = send ? ring_put(ch, w->data, true, &other) : ring_get(ch, w->data, true, &other);
		/* Closing claims every waiter under the lock, and none queues
		 * on a closed channel. */
		assert(r != RING_CLOSED);
		if (r == RING_OK)
			w->status = W_DELIVERED;
		else
			notify_retry(ch, w);
		add_wake(wk, w);
		if (r != RING_OK || !other)
			return;
		send = !send;
	}
}

/* A lock-free change of a bounded channel is published; notify one waiter of
 * the other side if there were any (waiters_before_publish). Without the
 * lock, this takes it, holding the reference taken before publishing (see
 * "Lifetime"); nothing is touched after a plain publish. */
static void after_ring_op(weft_chan_t *ch, bool send_waiters, chan_wakes *wk, bool notify)
{
	if (!notify)
		return; /* (ch may be gone already: nothing of it is read) */
	assert(ch->kind == CHAN_BOUNDED && (!wk || chan_locked(ch)));
	if (wk) {
		chan_notify_one(ch, send_waiters, wk);
		return;
	}
	chan_wakes mine = CHAN_WAKES_INIT;
	chan_hook(ch, CHAN_HOOK_NOTIFY);
	chan_lock(ch);
	chan_notify_one(ch, send_waiters, &mine);
	chan_unlock(ch);
	chan_wake_claimed(&mine);
	chan_unref(ch); /* taken before publishing */
}

/* ------------------------------------------------------------ attempts */

static bool unbounded_grow(chan_unbounded *u)
{
	size_t es = u->c.esize;
	size_t ncap = u->cap ? 2 * u->cap : 16;
	unsigned char *nb = malloc(ncap * es);
	if (!nb)
		return false;
	for (size_t i = 0; i < u->len; i++)
		memcpy(nb + i * es, u->buf + ((u->head + i) % u->cap) * es, es);
	free(u->buf);
	u->buf = nb;
	u->cap = ncap;
	u->head = 0;
	return true;
}

bool chan_try_send(weft_chan_t *ch, const void *v, int *res, chan_wakes *wk)
{
	assert(!wk || chan_locked(ch));
	*res = 0;
	if (ch->kind == CHAN_BOUNDED) {
		bool notify = false;
		int r = ring_put(ch, v, wk != NULL, &notify);
		if (r == RING_FULL)
			return false;
		if (r == RING_CLOSED)
			*res = -EPIPE;
		after_ring_op(ch, false, wk, notify);
		return true;
	}
	chan_wakes mine = CHAN_WAKES_INIT;
	chan_wakes *w_ = wk ? wk : &mine;
	if (!wk)
		chan_lock(ch);
	bool done = true;
	if (atomic_load_explicit(&ch->closed, memory_order_relaxed)) {
		*res = -EPIPE;
	} else if (ch->kind == CHAN_RENDEZVOUS) {
		chan_waiter *w = claim_waiter(ch, false);
		if (w) {
			copy_elem(w->data, v, ch->esize);
			w->status = W_DELIVERED;
			add_wake(w_, w);
		} else {
			done = false;
		}
	} else {
		chan_unbounded *u = UNBOUNDED(ch);
		if (u->len == u->cap && !unbounded_grow(u)) {
			*res = -ENOMEM;
		} else {
			assert(u->len < u->cap);
			copy_elem(u->buf + ((u->head + u->len) % u->cap) * ch->esize, v, ch->esize);
			u->len++;
			if (ch->recvq)
				chan_notify_one(ch, false, w_);
		}
	}
	if (!wk) {
		chan_unlock(ch);
		chan_wake_claimed(&mine);
	}
	return done;
}

bool chan_try_recv(weft_chan_t *ch, void *out, int *res, chan_wakes *wk)
{
	assert(!wk || chan_locked(ch));
	*res = 0;
	if (ch->kind == CHAN_BOUNDED) {
		bool notify = false;
		int r = ring_get(ch, out, wk != NULL, &notify);
		if (r == RING_EMPTY)
			return false;
		if (r == RING_CLOSED)
			*res = -EPIPE;
		after_ring_op(ch, true, wk, notify);
		return true;
	}
	chan_wakes mine = CHAN_WAKES_INIT;
	chan_wakes *w_ = wk ? wk : &mine;
	if (!wk)
		chan_lock(ch);
	bool done = true;
	if (ch->kind == CHAN_RENDEZVOUS) {
		chan_waiter *w = claim_waiter(ch, true);
		if (w) {
			copy_elem(out, w->data, ch->esize);
			w->status = W_DELIVERED;
			add_wake(w_, w);
		} else if (atomic_load_explicit(&ch->closed, memory_order_relaxed)) {
			*res = -EPIPE;
		} else {
			done = false;
		}
	} else if (UNBOUNDED(ch)->len) {
		chan_unbounded *u = UNBOUNDED(ch);
		assert(u->len <= u->cap && u->head < u->cap);
		copy_elem(out, u->buf + u->head * ch->esize, ch->esize);
		u->head = (u->head + 1) % u->cap;
		u->len--;
	} else if (atomic_load_explicit(&ch->closed, memory_order_relaxed)) {
		*res = -EPIPE;
	} else {
		done = false;
	}
	if (!wk) {
		chan_unlock(ch);
		chan_wake_claimed(&mine);
	}
	return done;
}

int weft_chan_try_send(weft_chan_t *ch, const void *elem)
{
	if (!ch || !elem)
		return -EINVAL;
	int res;
	return chan_try_send(ch, elem, &res, NULL) ? res : -EAGAIN;
}

int weft_chan_try_recv(weft_chan_t *ch, void *out)
{
	if (!ch || !out)
		return -EINVAL;
	int res;
	return chan_try_recv(ch, out, &res, NULL) ? res : -EAGAIN;
}

/* ------------------------------------------------------------ close & co */

int weft_chan_close(weft_chan_t *ch)
{
	if (!ch)
		return -EINVAL;
	/* A reference for the call: once closed is visible, a lock-free ring
	 * operation may return -EPIPE and its caller release the channel while
	 * this still holds the lock. */
	assert(atomic_load_explicit(&ch->refs, memory_order_relaxed) > 0); /* the caller's */
	atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
	chan_wakes wk = CHAN_WAKES_INIT;
	chan_lock(ch);
	int e = 0;
	if (atomic_load(&ch->closed)) {
		e = -EPIPE;
	} else {
		atomic_store(&ch->closed, true);
		if (ch->kind == CHAN_BOUNDED)
			atomic_fetch_or(&BOUNDED(ch)->tail, CHAN_CLOSED_BIT);
		/* Rendezvous waiters are done (-EPIPE); buffered ones retry and see
		 * it. */
		for (int q = 0; q < 2; q++) {
			chan_waiter *w;
			while ((w = claim_waiter(ch, q == 1)) != NULL) {
				if (ch->kind == CHAN_RENDEZVOUS)
					w->status = W_CLOSED;
				else
					notify_retry(ch, w);
				add_wake(&wk, w);
			}
		}
		/* Every waiter is claimed or dropped, and none can queue again
		 * (see chan_enqueue_waiter). */
		assert(ch->recvq == NULL && ch->sendq == NULL);
	}
	chan_unlock(ch);
	chan_wake_claimed(&wk);
	chan_unref(ch);
	return e;
}

bool weft_chan_closed(const weft_chan_t *ch)
{
	return ch && atomic_load(&((weft_chan_t *)ch)->closed);
}

ssize_t weft_chan_len(const weft_chan_t *ch)
{
	weft_chan_t *c = (weft_chan_t *)ch;
	if (!c)
		return -EINVAL;
	if (c->kind == CHAN_BOUNDED) {
		uint64_t h = atomic_load(&BOUNDED(c)->head), t = atomic_load(&BOUNDED(c)->tail) & ~CHAN_CLOSED_BIT;
		return t > h ? (ssize_t)(t - h) : 0;
	}
	if (c->kind == CHAN_RENDEZVOUS)
		return 0;
	chan_lock(c);
	ssize_t n = (ssize_t)UNBOUNDED(c)->len;
	chan_unlock(c);
	return n;
}

ssize_t weft_chan_cap(const weft_chan_t *ch)
{
	if (!ch)
		return -EINVAL;
	return ch->kind == CHAN_BOUNDED	     ? (ssize_t)BOUNDED(ch)->cap
	       : ch->kind == CHAN_RENDEZVOUS ? 0
					     : WEFT_CHAN_UNBOUNDED;
}

size_t weft_chan_elem_size(const weft_chan_t *ch)
{
	return ch ? ch->esize : 0;
}
