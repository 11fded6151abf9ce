/* chan_impl.h - channel internals shared by chan.c (buffers, non-blocking
 * attempts, wake-ups) and select.c (blocking: the wait engine). */
#ifndef WEFT_CHAN_IMPL_H
#define WEFT_CHAN_IMPL_H

#include <weft/chan.h>

#include <assert.h>
#include <stdalign.h>
#include <stdatomic.h>

#include "../base/cpu.h"
#include "../base/spin.h"

enum chan_kind { CHAN_RENDEZVOUS, CHAN_BOUNDED, CHAN_UNBOUNDED };

/* What a waker did to a waiter's node (node->n.status). */
enum {
	W_WAITING = 0,	 /* still queued, or popped by a waker that lost the claim */
	W_DELIVERED = 1, /* the value was handed over (the case is done) */
	W_NOTIFIED = 2,	 /* buffered: something changed, try again */
	W_CLOSED = 3,	 /* rendezvous: the channel closed (the case is done: -EPIPE) */
};

/* A waiting case: 48 bytes, so that a stackless task's weft_op_t holds
 * one node. The cases of one wait are an array of nodes (a select's, or the
 * single node of a send, a recv or an op) and share one claim word, the
 * `done` of node 0 (chan_waiter_done): a waker claims the wait by moving it
 * 0 -> 1 before touching the node's buffer, the waiter withdraws by moving it
 * 0 -> 2; whoever moves it first decides. A wait of one node (`single`: a
 * send, a recv, a stackless op) needs no claim word: it is queued on one
 * channel, and both its waker and its owner take it off that queue under
 * the channel's lock, so whoever unqueues it decides (no locked instruction
 * for the common hand-over). Queues are circular doubly linked lists
 * reached through their first node. */
typedef struct chan_waiter {
	uint8_t call;	/* stackless ops: the step call's id (first: weft_step_begin) */
	uint8_t status; /* W_*, set by the waker that claimed the wait */
	bool queued;
	uint8_t index : 7;  /* this node's position in its array */
	uint8_t single : 1; /* the wait's only node: claimed by being unqueued */
	_Atomic int done;   /* node 0 only: the wait's claim word */
	struct chan_waiter *next, *prev;
	weft_waker_t waker;
	void *data; /* the case's buffer */
} chan_waiter;

static inline _Atomic int *chan_waiter_done(chan_waiter *w)
{
	return &(w - w->index)->done;
}

/* Bounded ring slot (Vyukov's MPMC queue, with doubled sequence numbers: see
 * ring_put in chan.c). */
_Static_assert(sizeof(chan_waiter) == 48, "chan_waiter grew");

typedef struct chan_slot {
	_Atomic uint64_t seq;
	alignas(8) unsigned char data[];
} chan_slot;

#define CHAN_CLOSED_BIT ((uint64_t)1 << 63)

struct weft_chan {
	uint32_t esize;
	uint8_t kind;
	_Atomic bool closed;
	bool pooled; /* its memory came from the base pool (else malloc) */
	_Atomic uint32_t refs;
	_Atomic uint32_t lock;	    /* protects the lists and the unbounded buffer */
	chan_waiter *recvq, *sendq; /* first waiting node of each circular queue */
};
/* 32 bytes: a channel without a buffer is all of this, and millions of
 * parked tasks may each hold one. */
_Static_assert(sizeof(struct weft_chan) == 32, "struct weft_chan grew");

/* Unbounded: a growable ring under the lock. */
typedef struct chan_unbounded {
	struct weft_chan c;
	unsigned char *buf;
	size_t cap, head, len;
} chan_unbounded;

/* Bounded: the lock-free ring. */
typedef struct chan_bounded {
	struct weft_chan c;
	uint64_t cap, mask; /* mask = cap - 1 when cap is a power of two, else 0 */
	size_t stride;
	/* Queued waiters, readable without the lock: the lock-free paths' half
	 * of the wake-up protocol (chan.c). The other kinds need no count:
	 * their queues are only read under the lock. */
	_Atomic uint32_t nrecvw, nsendw;
	alignas(WEFT_CACHELINE) _Atomic uint64_t head;
	alignas(WEFT_CACHELINE) _Atomic uint64_t tail; /* CHAN_CLOSED_BIT once closed */
	alignas(WEFT_CACHELINE) unsigned char ring[];
} chan_bounded;

#define BOUNDED(ch) ((chan_bounded *)(ch))
#define UNBOUNDED(ch) ((chan_unbounded *)(ch))

/* A bounded channel's count of the waiters queued on one side. */
static inline _Atomic uint32_t *chan_nwait(weft_chan_t *ch, bool send)
{
	assert(ch->kind == CHAN_BOUNDED);
	return send ? &BOUNDED(ch)->nsendw : &BOUNDED(ch)->nrecvw;
}
/* How many waiters are queued on one side (chan.c; for tests and the
 * release check): a bounded channel's count, else counted under the lock,
 * which the caller must not hold. */
uint32_t chan_waiting(weft_chan_t *ch, bool send);

static inline void chan_lock(weft_chan_t *ch)
{
	weft__spin_lock(&ch->lock);
}
#ifndef NDEBUG
bool chan_queues_sane(weft_chan_t *ch); /* for assert(), under the lock: chan.c */
#endif
static inline void chan_unlock(weft_chan_t *ch)
{
	assert(chan_queues_sane(ch));
	weft__spin_unlock(&ch->lock);
}
/* For assert() only: whether ch's lock is held (by the caller, where a
 * comment says "under the lock"; the spinlock records no owner). */
#define chan_locked(ch) (atomic_load_explicit(&(ch)->lock, memory_order_relaxed) != 0)
/* Drop a reference; the last one frees the channel. */
void chan_unref(weft_chan_t *ch);

/* Waiters claimed under a channel's lock (weft_unpark_claim), to be woken
 * (weft_unpark_finish) once every lock is released: chan.c, "Lifetime". A
 * claimed node is unqueued and stays put until it is woken, so the list
 * links it through its own `next`. */
typedef struct chan_wakes {
	chan_waiter *head;
} chan_wakes;
/* clang-format off */
#define CHAN_WAKES_INIT {NULL}
/* clang-format on */
void chan_wake_claimed_list(chan_wakes *wk);
static inline void chan_wake_claimed(chan_wakes *wk)
{
	if (wk->head) /* mostly nobody: no call */
		chan_wake_claimed_list(wk);
}

/* Non-blocking attempts. Return true when the operation is done (*res = 0,
 * -EPIPE or -ENOMEM), false when it would block. wk NULL: the caller does
 * not hold ch's lock; else it does, and wakes what the attempt claimed
 * (chan_wake_claimed) once it has let go of every lock. A caller holding a
 * bounded channel's lock also holds a reference to it: an element published
 * under the lock may be taken, and the channel released, before the unlock. */
bool chan_try_send(weft_chan_t *ch, const void *v, int *res, chan_wakes *wk);
bool chan_try_recv(weft_chan_t *ch, void *out, int *res, chan_wakes *wk);

/* Under the lock: queue / unqueue a waiter (inline: on every wait's path,
 * with `send` mostly a constant). */
static inline chan_waiter **queue_of(weft_chan_t *ch, bool send)
{
	return send ? &ch->sendq : &ch->recvq;
}

static inline void chan_enqueue_waiter(weft_chan_t *ch, chan_waiter *w, bool send)
{
	assert(chan_queues_sane(ch));
	/* A fresh node, of an open wait, single only if alone in its wait. */
	assert(!w->queued && w->status == W_WAITING && (!w->single || w->index == 0));
	assert(atomic_load_explicit(chan_waiter_done(w), memory_order_relaxed) == 0);
	/* Under the lock a case of a closed channel completes (-EPIPE, or a
	 * buffered element), and an unbounded channel's send always does;
	 * its receive waits only on an empty buffer. */
	assert(!atomic_load_explicit(&ch->closed, memory_order_relaxed));
	assert(ch->kind != CHAN_UNBOUNDED || (!send && UNBOUNDED(ch)->len == 0));
	chan_waiter **q = queue_of(ch, send);
	chan_waiter *head = *q;
	if (!head) {
		w->next = w->prev = w;
		*q = w;
	} else {
		w->prev = head->prev;
		w->next = head;
		head->prev->next = w;
		head->prev = w;
	}
	w->queued = true;
	/* Under the lock, so a plain increment; atomic because the bounded fast
	 * paths read it without the lock. seq_cst for bounded channels: the
	 * store half of the waiter's side of the protocol (chan.c, top comment), before
	 * its retry; the others are only read under the lock. */
	if (ch->kind == CHAN_BOUNDED) {
		_Atomic uint32_t *cnt = chan_nwait(ch, send);
		atomic_store(cnt, atomic_load_explicit(cnt, memory_order_relaxed) + 1);
	}
	assert(chan_queues_sane(ch));
}

static inline void chan_dequeue_waiter(weft_chan_t *ch, chan_waiter *w, bool send)
{
	assert(chan_locked(ch));
	if (!w->queued)
		return;
	chan_waiter **q = queue_of(ch, send);
	assert(*q != NULL && w->next != NULL && w->prev != NULL && w->next->prev == w && w->prev->next == w);
	assert(ch->kind != CHAN_BOUNDED || atomic_load_explicit(chan_nwait(ch, send), memory_order_relaxed) > 0);
	if (w->next == w) {
		*q = NULL;
	} else {
		w->prev->next = w->next;
		w->next->prev = w->prev;
		if (*q == w)
			*q = w->next;
	}
	w->next = w->prev = NULL;
	w->queued = false;
	if (ch->kind == CHAN_BOUNDED) {
		_Atomic uint32_t *cnt = chan_nwait(ch, send);
		atomic_store_explicit(cnt, atomic_load_explicit(cnt, memory_order_relaxed) - 1, memory_order_relaxed);
	}
	assert(chan_queues_sane(ch));
}

/* Under the lock: something changed for the waiters of one side. Claim
 * one (woken through wk) and, on a bounded channel, complete its operation
 * for it (DELIVERED) where the ring allows, else mark it NOTIFIED (retry);
 * a hand-over goes on to the other side's waiters in turn (chan.c). */
void chan_notify_one(weft_chan_t *ch, bool send, chan_wakes *wk);

/* Tests only: called at two moments where a thread may be preempted, so that
 * a test can act there (tests/chan/test_retry.c); NULL otherwise. RETRY: a
 * waiter has queued its nodes, holds their channels' locks (ch: its first
 * case's) and re-tries the rings next (select.c, recheck_buffered). NOTIFY:
 * a lock-free operation has published, and takes ch's lock next to notify
 * the other side (chan.c, after_ring_op). */
enum { CHAN_HOOK_RETRY, CHAN_HOOK_NOTIFY };
extern _Atomic(void (*)(weft_chan_t *ch, int where)) weft__chan_hook;
static inline void chan_hook(weft_chan_t *ch, int where)
{
	void (*hook)(weft_chan_t *, int) = atomic_load_explicit(&weft__chan_hook, memory_order_relaxed);
	if (unlikely(hook != NULL))
		hook(ch, where);
}

#endif
