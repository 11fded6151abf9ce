/* mailbox.c - messages, send, and selective receive (internal.h,
 * "Mailbox", gives the layout and the wake-up protocol).
 *
 * Selective receive. The private list is singly linked; a receive walks it
 * with `pos`, the address of the link that leads to the next message to
 * examine (&first, or &m->next_ of the last one rejected). Taking a message
 * out rewrites *pos, so the links before it stay valid. A receive that
 * finds nothing keeps pos where the walk stopped, drains the inbox onto the
 * end of the list and goes on from there: no message is examined twice by
 * one receive (Erlang's save pointer). The same holds across the waits of a
 * stackless receive: pos lives in its op.
 *
 * Marks (OTP's reference trick). weft_make_ref and weft_monitor drain the
 * inbox and remember the list's end (`mark`, a link address, with the
 * reference `mark_ref`): a message carrying that reference can only arrive
 * later, so weft_receive_ref for it starts at the mark. A receive that
 * takes the message after the mark's link out moves the mark back to the
 * link before it. Only the process itself touches its list, pos and mark.
 *
 * Bounded mailboxes. `count` counts the messages in the mailbox; a sender
 * takes room by a CAS below the bound before it pushes, and waits in the
 * cold part's sendq when there is none. No lost wake-up: a waiting sender
 * adds itself to nsendw (seq_cst) and then re-reads count; a receive
 * decrements count (seq_cst) and then reads nsendw: one of the two sees the
 * other. Signals (exit and down messages) ignore the bound.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define WA_STEP_RECV (WEFT_STEP_ID_ACTOR + 1)
#define WA_STEP_SEND (WEFT_STEP_ID_ACTOR + 2)

weft_msg_t *wa_msg_new(size_t len)
{
	weft_msg_t *m = malloc(sizeof *m + len);
	if (!m)
		return NULL;
	m->next_ = NULL;
	m->from = 0;
	m->ref = 0;
	m->reason = 0;
	m->kind = WEFT_MSG_DATA;
	m->flags_ = WA_MSG_MAGIC;
	m->len = len;
	m->data = m + 1;
	return m;
}

int weft_msg_create(weft_msg_t **out, size_t len)
{
	if (!out)
		return -EINVAL;
	if (len > WEFT_MSG_MAX)
		return -EMSGSIZE;
	*out = wa_msg_new(len);
	return *out ? 0 : -ENOMEM;
}

void weft_msg_destroy(weft_msg_t *m)
{
	free(m);
}

static inline void push_room_taken(struct wa_proc *p, weft_msg_t *m)
{
	m->flags_ |= WA_MSG_SENT;
	uintptr_t v = atomic_load_explicit(&p->inbox, memory_order_relaxed);
	for (;;) {
		m->next_ = WA_IS_WAITING(v) ? NULL : (weft_msg_t *)v;
		/* release: the receiver sees the message; acquire: this sender
		 * sees the parker the receiver stored before its WAITING word. */
		if (atomic_compare_exchange_weak_explicit(&p->inbox, &v, (uintptr_t)m, memory_order_acq_rel,
							  memory_order_relaxed))
			break;
	}
	if (WA_IS_WAITING(v))
		weft_unpark((weft_waker_t){atomic_load_explicit(&p->rparker, memory_order_relaxed), v >> 1}, 0);
}

void wa_push(struct wa_proc *p, weft_msg_t *m)
{
	atomic_fetch_add(&p->count, 1);
	push_room_taken(p, m);
}

/* The receiver: move what the inbox holds onto the end of the list.
 * False if it held nothing. */
static bool drain(struct wa_proc *p)
{
	uintptr_t v = atomic_load_explicit(&p->inbox, memory_order_acquire);
	if (v == 0 || WA_IS_WAITING(v))
		return false;
	v = atomic_exchange_explicit(&p->inbox, 0, memory_order_acquire);
	assert(v != 0 && !WA_IS_WAITING(v)); /* only the receiver sets or clears WAITING */
	weft_msg_t *rev = NULL, *m = (weft_msg_t *)v;
	while (m) { /* newest first: reverse into arrival order */
		weft_msg_t *next = m->next_;
		m->next_ = rev;
		rev = m;
		m = next;
	}
	*p->tail = rev;
	while (rev) {
		p->tail = &rev->next_;
		rev = rev->next_;
	}
	return true;
}

void wa_mark(struct wa_proc *p, weft_ref_t ref)
{
	if (p->receiving)
		return; /* from a match function: the walk in progress owns the list */
	drain(p);
	p->mark = p->tail;
	p->mark_ref = ref;
}

weft_ref_t weft_make_ref(void)
{
	struct wa_proc *p = wa_self();
	if (p) {
		weft_ref_t r = wa_new_ref(p->ctx);
		wa_mark(p, r);
		return r;
	}
	int e;
	struct wa_ctx *c = wa_ctx_hold(NULL, true, &e);
	if (!c)
		return 0;
	weft_ref_t r = wa_new_ref(c);
	wa_ctx_drop(c);
	return r;
}

/* Room came in a bounded mailbox: wake the first sender waiting for it. */
static void wake_sender(struct wa_cold *cd)
{
	weft_waitq_lock(&cd->sendq);
	weft_waitq_node_t *n = weft_waitq_pop(&cd->sendq);
	weft_waker_t w = {0};
	if (n) {
		atomic_fetch_sub(&cd->nsendw, 1);
		n->status = 0;
		w = n->waker; /* copied: the node may vanish once the lock is free */
	}
	weft_waitq_unlock(&cd->sendq);
	weft_unpark(w, 0);
}

/* Unlink the message after *pos (the walk's position) from the list. */
static weft_msg_t *take(struct wa_proc *p, weft_msg_t **pos)
{
	weft_msg_t *m = *pos;
	*pos = m->next_;
	if (p->tail == &m->next_)
		p->tail = pos;
	if (p->mark == &m->next_)
		p->mark = pos;
	m->next_ = NULL;
	atomic_store_explicit(&p->received, atomic_load_explicit(&p->received, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	if (!p->bound) {
		atomic_fetch_sub_explicit(&p->count, 1, memory_order_relaxed);
		return m;
	}
	atomic_fetch_sub(&p->count, 1);
	if (atomic_load(&p->cold->nsendw) != 0)
		wake_sender(p->cold);
	return m;
}

static inline bool matches(const weft_match_t *mt, const weft_msg_t *m)
{
	if (!mt)
		return true;
	if (mt->ref && m->ref != mt->ref)
		return false;
	return !mt->fn || mt->fn(m, mt->ctx);
}

/* Walk from *posp to the end of the list, draining the inbox when the end
 * is reached; the first message that matches is taken out and returned.
 * *posp is left where the walk stopped. */
static weft_msg_t *scan(struct wa_proc *p, const weft_match_t *mt, weft_msg_t ***posp)
{
	weft_msg_t **pos = *posp;
	for (;;) {
		for (weft_msg_t *m = *pos; m; m = *pos) {
			atomic_store_explicit(&p->examined,
					      atomic_load_explicit(&p->examined, memory_order_relaxed) + 1,
					      memory_order_relaxed);
			if (matches(mt, m)) {
				*posp = pos;
				return take(p, pos);
			}
			pos = &m->next_;
		}
		if (!drain(p))
			break;
	}
	*posp = pos;
	return NULL;
}

static weft_msg_t **start_pos(struct wa_proc *p, const weft_match_t *mt)
{
	if (mt && mt->ref && mt->ref == p->mark_ref && p->mark)
		return p->mark;
	return &p->first;
}

/* Stop waiting: take back the WAITING word of wait `epoch`, unless a
 * sender has replaced it already. */
static void retract(struct wa_proc *p, uint64_t epoch)
{
	uintptr_t w = WA_WAITING(epoch);
	(void)atomic_compare_exchange_strong(&p->inbox, &w, 0);
}

/* Open a wait for new messages: 0 and *w armed with the inbox WAITING;
 * 1 if messages came meanwhile (walk again); or why no wait could be
 * opened. */
static int arm(struct wa_proc *p, weft_waker_t *w)
{
	*w = weft_park_prepare();
	if (!w->parker) /* says why (-ENOMEM, -EBUSY), in any kind of caller */
		return weft_park_deadline(*w, WEFT_NEVER);
	assert(w->epoch < (UINT64_C(1) << 63));
	atomic_store_explicit(&p->rparker, w->parker, memory_order_relaxed);
	uintptr_t expect = 0;
	/* release: a sender that replaces the word sees rparker */
	if (!atomic_compare_exchange_strong_explicit(&p->inbox, &expect, WA_WAITING(w->epoch), memory_order_release,
						     memory_order_relaxed))
		return 1;
	return 0;
}

/* A stackless receive's op: where its walk stopped, and its wait. */
struct recv_op {
	uint8_t call;
	uint8_t pad[7];
	weft_msg_t **pos;
	uint64_t epoch;
};
_Static_assert(sizeof(struct recv_op) <= sizeof(((weft_op_t *)0)->opaque), "a receive fits an op");

/* The receive engine, for every kind of caller: walk from *pos (draining
 * the inbox at the end), and wait when nothing matches - parked (op NULL:
 * a coroutine or a thread), or registered in op (a stackless task, which
 * returns -EINPROGRESS and repeats). woke: how the wait that brought the
 * caller here ended (0, or -ETIMEDOUT / -ECANCELED: one more walk, then
 * that). The caller has set p->receiving; the engine clears it when the
 * receive completes. */
static int recv_engine(struct wa_proc *p, weft_msg_t **out, const weft_match_t *mt, weft_time_t deadline,
		       weft_msg_t **pos, int woke, weft_op_t *op)
{
	int r;
	for (;;) {
		weft_msg_t *m = scan(p, mt, &pos);
		if (m) {
			*out = m;
			r = 0;
			break;
		}
		if (woke != 0) {
			r = woke;
			break;
		}
		if (deadline != WEFT_NEVER && weft_now() >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
		if (!op && !weft_can_park()) {
			r = -EPERM;
			break;
		}
		weft_waker_t w;
		int a = arm(p, &w);
		if (a == 1)
			continue; /* messages came meanwhile */
		if (a < 0) {
			r = a;
			break;
		}
		if (!op) {
			woke = weft_park(w, deadline);
			if (woke != 0)
				retract(p, w.epoch);
			continue;
		}
		if (deadline != WEFT_NEVER)
			(void)weft_park_deadline(w, deadline);
		struct recv_op *ro = (struct recv_op *)op->opaque;
		ro->pos = pos;
		ro->epoch = w.epoch;
		r = weft_step_register(op);
		if (r == -EINPROGRESS)
			return r; /* still receiving */
		retract(p, w.epoch);
		break;
	}
	p->receiving = false;
	return r;
}

static int recv_check(struct wa_proc **pp, weft_msg_t **out)
{
	*pp = wa_self();
	if (!*pp)
		return -EPERM;
	if (!out)
		return -EINVAL;
	return (*pp)->receiving ? -EBUSY : 0;
}

int weft_receive_until(weft_msg_t **out, const weft_match_t *match, weft_time_t deadline)
{
	struct wa_proc *p;
	int e = recv_check(&p, out);
	if (e)
		return e;
	p->receiving = true;
	return recv_engine(p, out, match, deadline, start_pos(p, match), 0, NULL);
}

int weft_receive(weft_msg_t **out, const weft_match_t *match)
{
	return weft_receive_until(out, match, WEFT_NEVER);
}

int weft_receive_ref(weft_msg_t **out, weft_ref_t ref, weft_time_t deadline)
{
	if (ref == 0)
		return -EINVAL;
	weft_match_t mt = {NULL, NULL, ref};
	return weft_receive_until(out, &mt, deadline);
}

int weft_receive_step(weft_msg_t **out, const weft_match_t *match, weft_time_t deadline, weft_op_t *op)
{
	struct wa_proc *p = wa_self();
	if (!p)
		return -EPERM;
	if (!out)
		return -EINVAL;
	int b = weft_step_begin(op, WA_STEP_RECV, p);
	if (b == WEFT_STEP_BLOCKS) {
		if (p->receiving)
			return -EBUSY;
		p->receiving = true;
		return recv_engine(p, out, match, deadline, start_pos(p, match), 0, NULL);
	}
	if (b < 0)
		return b;
	if (b == 0) {
		if (p->receiving)
			return -EBUSY;
		p->receiving = true;
		return recv_engine(p, out, match, deadline, start_pos(p, match), 0, op);
	}
	/* The wait ended: go on from where the walk stopped. */
	assert(p->receiving);
	struct recv_op *ro = (struct recv_op *)op->opaque;
	int woke = weft_park_result();
	if (woke != 0)
		retract(p, ro->epoch);
	return recv_engine(p, out, match, deadline, ro->pos, woke, op);
}

int wa_flush_ref(struct wa_proc *p, weft_ref_t ref, uint32_t kind)
{
	if (p->receiving)
		return -EBUSY;
	drain(p);
	for (weft_msg_t **pos = &p->first; *pos;) {
		weft_msg_t *m = *pos;
		if (m->ref == ref && m->kind == kind) {
			weft_msg_destroy(take(p, pos));
			continue;
		}
		pos = &m->next_;
	}
	return 0;
}

void wa_mailbox_free(struct wa_proc *p)
{
	uintptr_t v = atomic_exchange(&p->inbox, 0);
	weft_msg_t *m = WA_IS_WAITING(v) ? NULL : (weft_msg_t *)v;
	size_t n = 0;
	while (m) {
		weft_msg_t *next = m->next_;
		free(m);
		m = next;
		n++;
	}
	for (m = p->first; m;) {
		weft_msg_t *next = m->next_;
		free(m);
		m = next;
		n++;
	}
	p->first = NULL;
	p->tail = &p->first;
	p->mark = NULL;
	atomic_fetch_add(&p->ctx->delivered_dead, n);
	atomic_store(&p->count, 0);
	struct wa_cold *cd = p->cold;
	if (cd) {
		free(cd->links);
		free(cd->mons);
		free(cd->watches);
		free(cd->detail);
		free(cd);
		p->cold = NULL;
	}
}

/* ------------------------------------------------------------------- send */

/* The op of a bounded send that waits for room: the call byte, then the
 * queue node (its data: the receiver, referenced while queued). */
struct send_op {
	uint8_t call;
	uint8_t pad[7];
	weft_waitq_node_t n;
};
_Static_assert(sizeof(struct send_op) <= sizeof(((weft_op_t *)0)->opaque), "a send fits an op");

/* Take room in p's bounded mailbox: true if there was some. */
static bool room(struct wa_proc *p)
{
	size_t c = atomic_load(&p->count);
	while (c < p->bound)
		if (atomic_compare_exchange_weak(&p->count, &c, c + 1))
			return true;
	return false;
}

/* Queue n for room in p's mailbox: 0 queued, 1 room came or p ended (try
 * again). Under sendq's lock: nsendw first, then the re-check. */
static int sendq_enqueue(struct wa_proc *p, weft_waitq_node_t *n)
{
	struct wa_cold *cd = p->cold;
	weft_waitq_lock(&cd->sendq);
	atomic_fetch_add(&cd->nsendw, 1);
	if (atomic_load(&p->count) < p->bound || p->state != WA_ALIVE) {
		atomic_fetch_sub(&cd->nsendw, 1);
		weft_waitq_unlock(&cd->sendq);
		return 1;
	}
	weft_waitq_push(&cd->sendq, n);
	weft_waitq_unlock(&cd->sendq);
	return 0;
}

/* A waiting sender gives up: out of the queue, or, if a receive popped it
 * meanwhile, pass the wake-up on so the room it announced is not lost. */
static void sendq_leave(struct wa_proc *p, weft_waitq_node_t *n)
{
	struct wa_cold *cd = p->cold;
	if (weft_waitq_remove(&cd->sendq, n)) {
		atomic_fetch_sub(&cd->nsendw, 1);
		return;
	}
	wake_sender(cd);
}

enum { SEND_WAIT, SEND_TRY };

enum { ROOM = 0, ENDED = 1 };

/* Take room in p's bounded mailbox for one message, waiting for it - parked
 * (op NULL: a coroutine or a thread, n on its stack) or registered in op
 * (a stackless task: -EINPROGRESS, with n in the op holding the reference
 * to p). ROOM: taken; ENDED: p ended meanwhile (the message is dropped);
 * or an error, with nothing taken. */
static int take_room(struct wa_proc *p, weft_time_t deadline, int mode, weft_op_t *op, weft_waitq_node_t *n)
{
	for (;;) {
		if (room(p))
			return ROOM;
		if (p->state != WA_ALIVE)
			return ENDED;
		if (mode == SEND_TRY)
			return -EAGAIN;
		if (p == wa_self()) /* nobody else can make room */
			return -EDEADLK;
		if (deadline != WEFT_NEVER && weft_now() >= deadline)
			return -ETIMEDOUT;
		if (!op && !weft_can_park())
			return -EPERM;
		if (sendq_enqueue(p, n))
			continue; /* room came, or p ended */
		if (op) {
			n->data = p; /* the reference goes with the registration */
			if (deadline != WEFT_NEVER)
				(void)weft_park_deadline(n->waker, deadline);
			return weft_step_register(op);
		}
		int r = weft_park(n->waker, deadline);
		if (r != 0) {
			sendq_leave(p, n);
			return r;
		}
	}
}

/* Deliver m (the caller's until this returns 0) to `to`. */
static int send_msg(weft_pid_t to, weft_msg_t *m, weft_time_t deadline, int mode)
{
	int e;
	struct wa_proc *p = wa_get(to, &e);
	if (!p) {
		if (e != -ESRCH)
			return e;
		free(m); /* dead: dropped (counted in the caller's runtime, if it has processes) */
		struct wa_ctx *c = wa_ctx_hold(NULL, false, &e);
		if (c) {
			atomic_fetch_add_explicit(&c->sent_dead, 1, memory_order_relaxed);
			wa_ctx_drop(c);
		}
		return 0;
	}
	if (m->len > p->max_message) {
		wa_put(p);
		return -EMSGSIZE;
	}
	if (!p->bound) {
		wa_push(p, m);
		wa_put(p);
		return 0;
	}
	weft_waitq_node_t n;
	e = take_room(p, deadline, mode, NULL, &n);
	if (e == ROOM)
		push_room_taken(p, m);
	else if (e == ENDED)
		free(m); /* ended while we waited: dropped */
	wa_put(p);
	return e < 0 ? e : 0;
}

static int send_copy(weft_pid_t to, weft_ref_t ref, const void *data, size_t len, weft_time_t deadline, int mode)
{
	if (len && !data)
		return -EINVAL;
	if (len > WEFT_MSG_MAX)
		return -EMSGSIZE;
	weft_msg_t *m = wa_msg_new(len);
	if (!m)
		return -ENOMEM;
	if (len)
		memcpy(m->data, data, len);
	m->from = weft_proc_self();
	m->ref = ref;
	int e = send_msg(to, m, deadline, mode);
	if (e)
		free(m);
	return e;
}

int weft_send(weft_pid_t to, const void *data, size_t len)
{
	return send_copy(to, 0, data, len, WEFT_NEVER, SEND_WAIT);
}

int weft_send_until(weft_pid_t to, const void *data, size_t len, weft_time_t deadline)
{
	return send_copy(to, 0, data, len, deadline, SEND_WAIT);
}

int weft_try_send(weft_pid_t to, const void *data, size_t len)
{
	return send_copy(to, 0, data, len, WEFT_NEVER, SEND_TRY);
}

int weft_send_ref(weft_pid_t to, weft_ref_t ref, const void *data, size_t len)
{
	return send_copy(to, ref, data, len, WEFT_NEVER, SEND_WAIT);
}

int weft_send_msg(weft_pid_t to, weft_msg_t *m)
{
	if (!m || (m->flags_ & ~WA_MSG_SENT) != WA_MSG_MAGIC || (m->flags_ & WA_MSG_SENT) || m->data != (void *)(m + 1))
		return -EINVAL;
	m->from = weft_proc_self();
	m->kind = WEFT_MSG_DATA;
	m->reason = 0;
	return send_msg(to, m, WEFT_NEVER, SEND_WAIT);
}

int weft_send_name(const char *name, const void *data, size_t len)
{
	if (!wa_name_ok(name))
		return -EINVAL;
	weft_pid_t pid = weft_whereis(name);
	if (!pid)
		return -ESRCH;
	return weft_send(pid, data, len);
}

int weft_send_step(weft_pid_t to, const void *data, size_t len, weft_time_t deadline, weft_op_t *op)
{
	int b = weft_step_begin(op, WA_STEP_SEND, (const void *)(uintptr_t)to);
	if (b == WEFT_STEP_BLOCKS)
		return weft_send_until(to, data, len, deadline);
	if (b < 0)
		return b;
	struct send_op *so = (struct send_op *)op->opaque;
	if (b == 1) { /* the wait for room ended */
		struct wa_proc *p = so->n.data;
		int r = weft_park_result();
		if (r != 0) {
			sendq_leave(p, &so->n);
			wa_put(p);
			return r;
		}
		wa_put(p);
	}
	if (len && !data)
		return -EINVAL;
	if (len > WEFT_MSG_MAX)
		return -EMSGSIZE;
	int e;
	struct wa_proc *p = wa_get(to, &e);
	if (!p)
		return e == -ESRCH ? 0 : e;
	if (!p->bound || len > p->max_message) {
		wa_put(p);
		return weft_send_until(to, data, len, deadline); /* neither waits */
	}
	e = take_room(p, deadline, SEND_WAIT, op, &so->n);
	if (e == -EINPROGRESS)
		return e;
	if (e == ROOM) {
		weft_msg_t *m = wa_msg_new(len);
		if (m) {
			if (len)
				memcpy(m->data, data, len);
			m->from = weft_proc_self();
			push_room_taken(p, m);
		} else {
			atomic_fetch_sub(&p->count, 1); /* give the room back */
			e = -ENOMEM;
		}
	}
	wa_put(p);
	return e < 0 ? e : 0;
}
