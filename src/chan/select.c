/* select.c - the wait engine behind every blocking channel operation.
 * send, recv and the stackless ops are waits of one case, with a shorter
 * path of their own (wait_one_begin, below: no shuffle, no lock ordering, a
 * node claimed by being unqueued - see chan_impl.h); a select of n cases
 * goes through the steps below (select_begin is step 2, resolve step 4), and
 * so does a stackless select, cut at the park (weft_select_step, at the
 * end: its nodes live outside its op).
 *
 * 1. Try every case without waiting, in a random order (fairness: among
 *    ready cases each is equally likely to be picked first).
 * 2. Lock every distinct channel of the select, in address order (so two
 *    selects over the same channels in different orders cannot deadlock, and
 *    a channel named twice is locked once). Under the locks, try again; then
 *    open a wait and queue one node per case, all sharing one `done` word.
 *    For buffered channels, whose fast paths take no lock, re-try once more
 *    after queueing (the waiter half of the store->load protocol in chan.c:
 *    the queueing stored the waiter count with seq_cst, the re-try loads the
 *    ring indices with seq_cst); during that re-try `done` is held at 2, so a notification this
 *    select sends itself (a send case kicking its own receive case) claims
 *    nothing.
 * 3. Unlock and park. Wakers claim `done` (0 -> 1) under their channel's
 *    lock before touching a node, so at most one case is completed for us.
 * 4. On waking, withdraw (`done` 0 -> 2), take every lock again and unqueue
 *    the nodes still queued. If we withdrew, nobody claimed us: return the
 *    park's result (timeout, cancellation). Otherwise exactly one node was
 *    claimed: DELIVERED and CLOSED complete its case; NOTIFIED means "try
 *    again" - unless the wait also timed out or was cancelled, in which case
 *    the notification is passed on to the channel's next waiter, so that no
 *    wake-up is swallowed.
 */
#include "chan_impl.h"

#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../base/rand.h"

#define MAX_CASES 64

/* The thread's stream (base/rand.h): under a simulation it repeats with
 * the seed. */
static uint64_t next_rand(void)
{
	return weft__trand();
}

/* wk NULL: without the lock; else under it, with what it claims to wake. */
static bool try_case(weft_select_case_t *c, chan_wakes *wk)
{
	return c->op == WEFT_SELECT_SEND ? chan_try_send(c->ch, c->buf, &c->result, wk)
					 : chan_try_recv(c->ch, c->buf, &c->result, wk);
}

/* A reference on each channel of a blocking select, for its whole wait
 * (delta +1 before, -1 after): a locked section may publish into a bounded
 * ring (chan_impl.h, chan_try_send), and after a wake-up the select takes
 * every lock again to take its other cases' nodes out - including, for a
 * channel named in two cases, the one whose waker may already have
 * released it. */
static void hold_all(weft_chan_t **chs, size_t k, int delta)
{
	for (size_t i = 0; i < k; i++) {
		assert(atomic_load_explicit(&chs[i]->refs, memory_order_relaxed) > 0); /* the caller's, at least */
		if (delta > 0)
			atomic_fetch_add_explicit(&chs[i]->refs, 1, memory_order_relaxed);
		else
			chan_unref(chs[i]);
	}
}

static size_t lock_order(weft_select_case_t *c, size_t n, weft_chan_t **locks)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		weft_chan_t *ch = c[i].ch;
		size_t j = k;
		while (j > 0 && (uintptr_t)locks[j - 1] > (uintptr_t)ch)
			j--;
		if (j > 0 && locks[j - 1] == ch)
			continue;
		memmove(&locks[j + 1], &locks[j], (k - j) * sizeof *locks);
		locks[j] = ch;
		k++;
	}
	assert(k >= 1 && k <= n);
	return k;
}

static void lock_all(weft_chan_t **locks, size_t k)
{
	for (size_t i = 0; i < k; i++) {
		/* Address order, each channel once: no deadlock with another
		 * select, no self-deadlock on a channel named twice. */
		assert(i == 0 || (uintptr_t)locks[i - 1] < (uintptr_t)locks[i]);
		chan_lock(locks[i]);
	}
}

static void unlock_all(weft_chan_t **locks, size_t k)
{
	for (size_t i = k; i-- > 0;)
		chan_unlock(locks[i]);
}

/* Under the locks, with the nodes queued: the buffered re-try of step 2.
 * Returns the index of a case that completed, or -1. */
static int recheck_buffered(weft_select_case_t *c, size_t n, const uint8_t *order, chan_waiter *nodes, chan_wakes *wk)
{
	_Atomic int *done = &nodes[0].done;
	/* Every lock is held, so no waker has claimed the wait yet. */
	assert(atomic_load_explicit(done, memory_order_relaxed) == 0);
	bool any = false;
	for (size_t i = 0; i < n; i++) {
		assert(nodes[i].queued && nodes[i].index == i && chan_locked(c[i].ch));
		any |= c[i].ch->kind == CHAN_BOUNDED;
	}
	if (!any)
		return -1;
	chan_hook(c[0].ch, CHAN_HOOK_RETRY);
	if (n == 1) {
		/* One node, one channel, whose lock we hold: nobody else can claim
		 * it meanwhile. But a retry that succeeds hands its change on to
		 * the channel's waiters (chan_notify_one), side after side, and
		 * must not hand it to this node: done 2 says its owner is
		 * re-trying, and claim_waiter drops it (the try succeeded, or it
		 * would not notify anyone). The count stays: the waiter's store
		 * before its retry is what keeps wake-ups from being lost. */
		atomic_store_explicit(done, 2, memory_order_relaxed);
		if (!try_case(&c[0], wk)) {
			assert(nodes[0].queued); /* a failed try notifies nobody */
			atomic_store_explicit(done, 0, memory_order_relaxed);
			return -1;
		}
		chan_dequeue_waiter(c[0].ch, &nodes[0], c[0].op == WEFT_SELECT_SEND);
		return 0;
	}
	atomic_store(done, 2);
	for (size_t k = 0; k < n; k++) {
		size_t i = order[k];
		if (c[i].ch->kind == CHAN_BOUNDED && try_case(&c[i], wk)) {
			for (size_t j = 0; j < n; j++)
				chan_dequeue_waiter(c[j].ch, &nodes[j], c[j].op == WEFT_SELECT_SEND);
			return (int)i;
		}
	}
	atomic_store(done, 0);
	return -1;
}

#ifndef NDEBUG
/* For assert(): whether one of a wait's nodes has been given a status. */
static bool status_set(const chan_waiter *nodes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (nodes[i].status != W_WAITING)
			return true;
	return false;
}
#endif

/* After a wake: withdraw, unqueue, and work out what happened. Returns a case
 * index, -EAGAIN to try again, or the park's error. */
static int resolve(weft_select_case_t *c, size_t n, chan_waiter *nodes, int r, weft_chan_t **locks, size_t k)
{
	_Atomic int *done = &nodes[0].done;
	bool withdrew;
	if (n == 1) {
		if (r == 0 && atomic_load_explicit(done, memory_order_relaxed) == 1) {
			/* The common wake: a waker unqueued our node (and so claimed
			 * it), gave it its status and woke us once it had let go of
			 * the channel - all visible through the wake, no lock
			 * needed, and the channel is not touched again. (A stackless
			 * op's repeat comes after its wait has ended, too: the
			 * result is that wait's.) */
			int st = nodes[0].status;
			if (st == W_DELIVERED || st == W_CLOSED) {
				c[0].result = st == W_CLOSED ? -EPIPE : 0;
				return 0;
			}
			return -EAGAIN;
		}
		/* Timed out or cancelled: still queued means nobody claimed it. */
		lock_all(locks, k);
		withdrew = nodes[0].queued;
	} else {
		/* A claimed wait stays claimed: when the claim is visible, skip
		 * the locked instruction. */
		int zero = 0;
		withdrew = atomic_load(done) == 0 && atomic_compare_exchange_strong(done, &zero, 2);
		lock_all(locks, k);
	}
	for (size_t i = 0; i < n; i++) {
		chan_dequeue_waiter(c[i].ch, &nodes[i], c[i].op == WEFT_SELECT_SEND);
		/* A wait we withdrew from was claimed by nobody: no status. */
		assert(!nodes[i].queued && (!withdrew || nodes[i].status == W_WAITING));
	}
	int out = r != 0 ? r : -EAGAIN;
	chan_wakes wk = CHAN_WAKES_INIT;
	if (!withdrew) {
		for (size_t i = 0; i < n; i++) {
			int st = nodes[i].status;
			if (st == W_DELIVERED || st == W_CLOSED) {
				c[i].result = st == W_CLOSED ? -EPIPE : 0;
				out = (int)i;
				break;
			}
			if (st == W_NOTIFIED && r != 0) /* not taking it: pass it on */
				chan_notify_one(c[i].ch, c[i].op == WEFT_SELECT_SEND, &wk);
		}
		/* A wait ended with 0 only by a claimer's finish, which came
		 * after the status (a stackless op's too: its repeat comes once
		 * its own wait has ended, weft_step_begin). */
		assert(r != 0 || out != -EAGAIN || status_set(nodes, n));
	}
	unlock_all(locks, k);
	chan_wake_claimed(&wk);
	/* A single node told to retry holds a reference for the retry
	 * (chan.c, notify_retry): it gives it back if it does not retry. */
	if (n == 1 && nodes[0].single && !withdrew && nodes[0].status == W_NOTIFIED && out != -EAGAIN)
		chan_unref(c[0].ch);
	return out;
}

static void shuffle(uint8_t *order, size_t n)
{
	for (size_t i = 0; i < n; i++)
		order[i] = (uint8_t)i;
	if (n == 1)
		return;
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)(next_rand() % i);
		uint8_t t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
}

/* Step 2, with the locks ordered (lock_order) and a reference held on each
 * channel (hold_all): under every lock, try the cases in `order`, else open
 * a wait and queue one node per case (then the buffered re-try). Returns
 * the index of the case that completed, or -1: the nodes are queued, and
 * nodes[0].waker is the wait to park on (weft_select) or to register (a
 * stackless select) before resolve finishes it. */
static int select_begin(weft_select_case_t *c, size_t n, const uint8_t *order, weft_chan_t **locks, size_t nlocks,
			chan_waiter *nodes)
{
	chan_wakes wk = CHAN_WAKES_INIT;
	lock_all(locks, nlocks);
	int got = -1;
	for (size_t k = 0; k < n && got < 0; k++)
		if (try_case(&c[order[k]], &wk))
			got = order[k];
	if (got < 0) {
		weft_waker_t w = weft_park_prepare();
		for (size_t i = 0; i < n; i++) {
			nodes[i] = (chan_waiter){.waker = w, .data = c[i].buf, .index = (uint8_t)i, .single = n == 1};
			chan_enqueue_waiter(c[i].ch, &nodes[i], c[i].op == WEFT_SELECT_SEND);
		}
		got = recheck_buffered(c, n, order, nodes, &wk);
		/* The re-try that completed a case took every node out again. */
		assert(got < 0 || !nodes[0].queued);
	}
	unlock_all(locks, nlocks);
	chan_wake_claimed(&wk);
	return got;
}

/* The blocking part of weft_select (steps 2-4), with its arrays. */
static int select_wait(weft_select_case_t *c, size_t n, weft_time_t deadline, uint8_t *order, weft_chan_t **locks,
		       chan_waiter *nodes)
{
	size_t nlocks = lock_order(c, n, locks);
	hold_all(locks, nlocks, +1);
	int out;
	for (;;) {
		out = select_begin(c, n, order, locks, nlocks, nodes);
		if (out >= 0)
			break;
		int r = weft_park(nodes[0].waker, deadline);
		out = resolve(c, n, nodes, r, locks, nlocks);
		if (out != -EAGAIN)
			break;
		shuffle(order, n);
	}
	hold_all(locks, nlocks, -1);
	return out;
}

/* Selects of up to this many cases keep their arrays on the stack (a select
 * must fit the smallest stack, 8 KiB, with the frames below it); larger ones
 * allocate them. */
#define STACK_CASES 8

/* -EINVAL for what weft_select refuses (chan.h), else 0; reads only. */
static int check_cases(const weft_select_case_t *c, size_t n)
{
	if (!c || n == 0 || n > MAX_CASES)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!c[i].ch || !c[i].buf || (c[i].op != WEFT_SELECT_SEND && c[i].op != WEFT_SELECT_RECV))
			return -EINVAL;
	return 0;
}

int weft_select(weft_select_case_t *c, size_t n, weft_time_t deadline)
{
	int e = check_cases(c, n);
	if (e)
		return e;
	for (size_t i = 0; i < n; i++)
		c[i].result = 0;
	/* A deadline already past polls: Go's select with a default case. */
	bool poll = deadline != WEFT_NEVER && deadline <= weft_now();
	uint8_t order[MAX_CASES];
	shuffle(order, n);
	/* A lock-free attempt first where there is one (bounded channels); the
	 * others are tried under the locks below anyway. */
	for (size_t k = 0; k < n; k++)
		if ((poll || c[order[k]].ch->kind == CHAN_BOUNDED) && try_case(&c[order[k]], NULL))
			return order[k];
	if (poll)
		return -ETIMEDOUT;
	if (!weft_can_park()) {
		/* A stackless task cannot park (it has the _step forms): try the
		 * other cases too, then give up, having queued nothing. */
		for (size_t k = 0; k < n; k++)
			if (c[order[k]].ch->kind != CHAN_BOUNDED && try_case(&c[order[k]], NULL))
				return order[k];
		return -EPERM;
	}
	if (n <= STACK_CASES) {
		weft_chan_t *locks[STACK_CASES];
		chan_waiter nodes[STACK_CASES];
		return select_wait(c, n, deadline, order, locks, nodes);
	}
	void *mem = malloc(n * (sizeof(weft_chan_t *) + sizeof(chan_waiter)));
	if (!mem)
		return -ENOMEM;
	chan_waiter *nodes = mem; /* first: it needs the stricter alignment */
	weft_chan_t **locks = (weft_chan_t **)(nodes + n);
	int out = select_wait(c, n, deadline, order, locks, nodes);
	free(mem);
	return out;
}

/* ------------------------------------------------------------ send & recv */

/* A wait of one case skips the select machinery (no shuffle, no lock
 * ordering, no arrays): under the channel's lock, try, else open a wait and
 * queue `node`. Returns 1 when the case completed (c->result), 0 when the
 * node is queued (the caller parks, then calls resolve; a waker may take
 * the node off the queue the moment the lock is free), or -1 when a
 * blocking form (call 0) called by a stackless task, which cannot park,
 * would have had to wait (nothing queued). Shared by send/recv and the
 * stackless ops (call: the op's id). `notified`: the caller was woken
 * NOTIFIED (told to retry), so it tries the ring even behind others. */
static inline __attribute__((always_inline)) int wait_one_begin(weft_select_case_t *c, chan_waiter *node, uint8_t call,
								bool notified)
{
	weft_chan_t *ch = c->ch;
	bool bounded = ch->kind == CHAN_BOUNDED;
	/* Waiters of our own side queued on a bounded channel: the ring is
	 * full (empty) for us, and each slot (element) that frees up is handed
	 * to them in turn (chan_notify_one). Trying the ring would only move
	 * its cache lines between cores and overtake them: queue behind them.
	 * (A hint here; decided under the lock below.) A waiter told to retry
	 * (NOTIFIED: something changed for it) does try: it may be the one an
	 * element (a slot) is there for. */
	_Atomic uint32_t *ours = bounded ? chan_nwait(ch, c->op == WEFT_SELECT_SEND) : NULL;
	bool behind = bounded && !notified && atomic_load_explicit(ours, memory_order_relaxed) != 0;
	if (bounded && !behind && try_case(c, NULL)) {
		if (notified)
			chan_unref(ch); /* the retry's reference (below) */
		return 1;
	}
	/* A reference across a locked section that may publish (bounded), and
	 * across a retry (notified: the notifier handed us one, chan.c,
	 * notify_retry); dropped once the lock is let go. */
	if (bounded && !notified)
		atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
	chan_wakes wk = CHAN_WAKES_INIT;
	chan_lock(ch);
	/* Under the lock the count is exact. The first of a bounded channel's
	 * queued waiters re-tried the ring after queueing, and every slot
	 * (element) freed since then is handed to the first waiter queued: one
	 * queued behind them needs no attempt of its own, then or after
	 * queueing. */
	behind = bounded && !notified && atomic_load_explicit(ours, memory_order_relaxed) != 0 &&
		 !atomic_load_explicit(&ch->closed, memory_order_relaxed);
	bool done = !behind && try_case(c, &wk);
	bool refused = !done && call == 0 && !weft_can_park();
	if (!done && !refused) {
		*node = (chan_waiter){.call = call, .waker = weft_park_prepare(), .data = c->buf, .single = 1};
		/* A stackless op opens its wait here: weft_step_begin let it. */
		assert(node->waker.parker != NULL);
		chan_enqueue_waiter(ch, node, c->op == WEFT_SELECT_SEND);
		uint8_t order[1] = {0};
		/* (Only a bounded channel has a ring to re-try.) */
		done = bounded && !behind && recheck_buffered(c, 1, order, node, &wk) >= 0;
		assert(done == !node->queued); /* under the lock: nobody else took it */
	}
	chan_unlock(ch);
	chan_wake_claimed(&wk);
	if (bounded || notified)
		chan_unref(ch);
	return done ? 1 : refused ? -1 : 0;
}

static int one(weft_chan_t *ch, int op, void *buf, weft_time_t deadline)
{
	if (!ch || !buf)
		return -EINVAL;
	weft_select_case_t c = {.ch = ch, .op = op, .buf = buf};
	chan_waiter node;
	for (bool notified = false;;) {
		int b = wait_one_begin(&c, &node, 0, notified);
		if (b > 0)
			return c.result;
		if (b < 0) /* a stackless task: it cannot wait */
			return deadline != WEFT_NEVER && deadline <= weft_now() ? -ETIMEDOUT : -EPERM;
		int r = weft_park(node.waker, deadline);
		int out = resolve(&c, 1, &node, r, &ch, 1);
		if (out != -EAGAIN)
			return out < 0 ? out : c.result;
		/* Told to retry (with a reference for it: chan.c, notify_retry). */
		notified = node.status == W_NOTIFIED;
	}
}

int weft_chan_send(weft_chan_t *ch, const void *elem)
{
	return one(ch, WEFT_SELECT_SEND, (void *)elem, WEFT_NEVER);
}

int weft_chan_send_until(weft_chan_t *ch, const void *elem, weft_time_t deadline)
{
	return one(ch, WEFT_SELECT_SEND, (void *)elem, deadline);
}

int weft_chan_recv(weft_chan_t *ch, void *out)
{
	return one(ch, WEFT_SELECT_RECV, out, WEFT_NEVER);
}

int weft_chan_recv_until(weft_chan_t *ch, void *out, weft_time_t deadline)
{
	return one(ch, WEFT_SELECT_RECV, out, deadline);
}

int weft_chan_send_sized(weft_chan_t *ch, const void *elem, size_t size)
{
	if (ch && size != ch->esize)
		return -EINVAL;
	return weft_chan_send(ch, elem);
}

int weft_chan_recv_sized(weft_chan_t *ch, void *out, size_t size)
{
	if (ch && size != ch->esize)
		return -EINVAL;
	return weft_chan_recv(ch, out);
}

/* ------------------------------------------------------------ stackless */

/* A stackless op is one waiter node (chan_impl.h): the step protocol of
 * weft/sched.h, with the wait engine's two halves around the step's
 * return - wait_one_begin before, resolve in the repeated call. */
_Static_assert(sizeof(chan_waiter) <= sizeof(((weft_op_t *)0)->opaque),
	       "weft_op_t too small (its obj is the protocol's)");
_Static_assert(_Alignof(chan_waiter) <= _Alignof(weft_op_t), "weft_op_t under-aligned");
_Static_assert(offsetof(chan_waiter, call) == 0, "an op's first byte is its call's id");

enum { STEP_SEND = WEFT_STEP_ID_CHAN + 1, STEP_RECV = WEFT_STEP_ID_CHAN + 2 };

/* Inlined into each form, so that the case's direction is a constant. */
static inline __attribute__((always_inline)) int step(weft_chan_t *ch, int op, void *buf, weft_time_t deadline,
						      weft_op_t *opaque)
{
	if (unlikely(!ch || !buf || !opaque))
		return -EINVAL;
	int b = weft_step_begin(opaque, op == WEFT_SELECT_SEND ? STEP_SEND : STEP_RECV, ch);
	if (unlikely(b < 0))
		return b;
	if (unlikely(b == WEFT_STEP_BLOCKS)) /* a coroutine or a plain thread */
		return one(ch, op, buf, deadline);
	chan_waiter *node = (chan_waiter *)opaque;
	weft_select_case_t c = {.ch = ch, .op = op, .buf = buf};
	if (b == 1) {
		/* The registered op is that wait's single node, and its wait has
		 * ended (weft_step_begin, whose load of the wait's state acquired
		 * what its waker wrote). The common end: a waker claimed the node
		 * and completed it - a status it sets only once its claim of the
		 * wait succeeded, so the wait's result is 0 (resolve's first
		 * case, without asking for the result). */
		assert(node->single && node->index == 0);
		int st = node->status;
		if (likely(st == W_DELIVERED || st == W_CLOSED) &&
		    atomic_load_explicit(&node->done, memory_order_relaxed) == 1) {
			assert(weft_park_result() == 0);
			return st == W_CLOSED ? -EPIPE : 0;
		}
		int out = resolve(&c, 1, node, weft_park_result(), &ch, 1);
		if (out != -EAGAIN)
			return out < 0 ? out : c.result;
		/* NOTIFIED: try again below, without queueing behind. */
	}
	/* Told to retry, with a reference for it (chan.c, notify_retry). */
	bool notified = b == 1 && node->status == W_NOTIFIED;
	if (deadline != WEFT_NEVER && deadline <= weft_now()) {
		/* A past deadline polls. */
		int res;
		bool done = op == WEFT_SELECT_SEND ? chan_try_send(ch, buf, &res, NULL)
						   : chan_try_recv(ch, buf, &res, NULL);
		if (notified)
			chan_unref(ch);
		return done ? res : -ETIMEDOUT;
	}
	if (wait_one_begin(&c, node, node->call, notified) > 0)
		return c.result;
	if (deadline != WEFT_NEVER && weft_park_deadline(node->waker, deadline) != 0)
		weft_unpark(node->waker, -ENOMEM); /* no timer: the repeat gives up */
	return weft_step_register(opaque);
}

int weft_chan_send_step(weft_chan_t *ch, const void *elem, weft_time_t deadline, weft_op_t *op)
{
	return step(ch, WEFT_SELECT_SEND, (void *)elem, deadline, op);
}

int weft_chan_recv_step(weft_chan_t *ch, void *out, weft_time_t deadline, weft_op_t *op)
{
	return step(ch, WEFT_SELECT_RECV, out, deadline, op);
}

/* ------------------------------------------------------------ stackless select */

/* weft_select_step is weft_select's engine cut around the step's return, as
 * send/recv's step is: select_begin before it, resolve in the repeated
 * call. A select waits with one node per case, up to 64 of them, which a
 * 64-byte weft_op_t cannot hold (a node is 48 bytes): the op holds a pointer
 * to a block allocated when the call first has to wait - its n nodes, then
 * its distinct channels in lock order - and freed by the repeat that
 * completes the call. From that allocation to that free the call also holds
 * a reference on each of its channels (hold_all), as the blocking select
 * does for its wait. A repeat told to try again (NOTIFIED) keeps the block
 * and queues the same nodes again. A call that completes without waiting
 * (something ready, or a past deadline) allocates nothing. So: while the
 * call is registered its nodes stay put and may be linked into the
 * channels' queues (wakers write through them into the cases' buffers);
 * once it has completed nothing of it is left in op or anywhere else. */
typedef struct select_op {
	uint8_t call;		   /* STEP_SELECT (first: weft_step_begin) */
	uint8_t n, nlocks;	   /* the registered call's cases, and its distinct channels */
	weft_select_case_t *cases; /* the registered call's: its repeats pass them again */
	chan_waiter *nodes;	   /* n nodes, then the nlocks channels (weft_chan_t *) */
} select_op;

_Static_assert(sizeof(select_op) <= sizeof(((weft_op_t *)0)->opaque),
	       "weft_op_t too small (its obj is the protocol's)");
_Static_assert(_Alignof(select_op) <= _Alignof(weft_op_t), "weft_op_t under-aligned");
_Static_assert(offsetof(select_op, call) == 0, "an op's first byte is its call's id");
_Static_assert(MAX_CASES <= UINT8_MAX, "select_op counts cases in a byte");

enum { STEP_SELECT = WEFT_STEP_ID_CHAN + 3 };

static weft_chan_t **op_locks(select_op *s)
{
	return (weft_chan_t **)(s->nodes + s->n);
}

/* The call has to wait: its block, and a reference on each channel. */
static int op_start(select_op *s, weft_select_case_t *c, size_t n)
{
	/* Zeroed: no node is queued until select_begin queues them. */
	chan_waiter *nodes = calloc(n, sizeof(chan_waiter) + sizeof(weft_chan_t *));
	if (!nodes)
		return -ENOMEM;
	s->n = (uint8_t)n;
	s->cases = c;
	s->nodes = nodes; /* first: they need the stricter alignment */
	s->nlocks = (uint8_t)lock_order(c, n, op_locks(s));
	hold_all(op_locks(s), s->nlocks, +1);
	return 0;
}

/* The call completes: nothing of it may stay linked anywhere. */
static void op_end(select_op *s)
{
	for (size_t i = 0; i < s->n; i++)
		assert(!s->nodes[i].queued);
	hold_all(op_locks(s), s->nlocks, -1);
	free(s->nodes);
}

/* Every case once without waiting, in `order`: the index of the first that
 * completed, else -ETIMEDOUT. */
static int poll_cases(weft_select_case_t *c, size_t n, const uint8_t *order)
{
	for (size_t k = 0; k < n; k++)
		if (try_case(&c[order[k]], NULL))
			return order[k];
	return -ETIMEDOUT;
}

int weft_select_step(weft_select_case_t *c, size_t n, weft_time_t deadline, weft_op_t *op)
{
	if (!op)
		return -EINVAL;
	int e = check_cases(c, n);
	if (e)
		return e;
	int b = weft_step_begin(op, STEP_SELECT, c);
	select_op *s = (select_op *)op;
	if (b == -EINPROGRESS && s->n != n)
		return -EBUSY; /* registered on these cases, but not so many */
	if (b < 0)
		return b;
	if (b == WEFT_STEP_BLOCKS) /* a coroutine or a plain thread */
		return weft_select(c, n, deadline);
	if (b == 1 && s->n != n) {
		/* Another call (other cases): keep the registered one (its wait
		 * has ended; its own repeat finishes it) and refuse this. */
		int r = weft_step_register(op);
		assert(r == -EINPROGRESS);
		(void)r;
		return -EBUSY;
	}
	assert(b == 0 || s->cases == c);
	bool poll = deadline != WEFT_NEVER && deadline <= weft_now();
	uint8_t order[MAX_CASES];
	shuffle(order, n);
	if (b == 1) {
		/* The registered call, whose wait has ended (weft_step_begin): as
		 * after a park. */
		int out = resolve(c, n, s->nodes, weft_park_result(), op_locks(s), s->nlocks);
		if (out == -EAGAIN && poll)
			out = poll_cases(c, n, order);
		if (out != -EAGAIN) {
			op_end(s);
			return out;
		}
	} else {
		for (size_t i = 0; i < n; i++)
			c[i].result = 0;
		/* What is ready needs no nodes; a past deadline only polls. */
		int out = poll_cases(c, n, order);
		if (out >= 0 || poll)
			return out;
		if (op_start(s, c, n) != 0)
			return -ENOMEM;
	}
	int got = select_begin(c, n, order, op_locks(s), s->nlocks, s->nodes);
	if (got >= 0) {
		op_end(s);
		return got;
	}
	weft_waker_t w = s->nodes[0].waker;
	/* A stackless select opens its wait here: weft_step_begin let it. */
	assert(w.parker != NULL);
	if (deadline != WEFT_NEVER && weft_park_deadline(w, deadline) != 0)
		weft_unpark(w, -ENOMEM); /* no timer: the repeat gives up */
	e = weft_step_register(op);
	/* Nothing else is registered (weft_step_begin), in a stackless task. */
	assert(e == -EINPROGRESS);
	return e;
}
