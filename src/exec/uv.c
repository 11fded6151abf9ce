/* uv.c - the libuv executor: tasks are work requests on libuv's thread pool
 * (uv_queue_work), spawn_at timers live on a libuv loop, handles name
 * records of the executor's own table (records.c says how records, handles,
 * the wait and cancel work).
 *
 * The loop
 * --------
 * Either the caller's (opts->loop: the caller runs it, and calls create and
 * destroy on the thread that runs it) or one of the executor's own, run by
 * a thread of its own with UV_RUN_DEFAULT until destroy. A libuv loop is
 * single-threaded: of everything used here, only uv_async_send may be
 * called from another thread. So:
 *  - On the loop's thread, a spawn calls uv_queue_work at once, a cancel
 *    calls uv_cancel, a spawn_at arms the timer.
 *  - From any other thread, a spawn puts the record in the inbox (a list
 *    under mu) and calls uv_async_send; so does a cancel of a QUEUED
 *    record (the loop calls uv_cancel), and a spawn_at that changed the
 *    timer list's head sets `rearm`. The inbox's callback (async_cb) does
 *    on the loop what was asked.
 *  - work_cb (a libuv pool thread) runs fn and completes the record there
 *    (DONE, the waiter woken): a waiter never needs the loop to turn.
 *    after_cb (the loop) only drops the runner's reference, which libuv's
 *    uv_work_t needs until then.
 *  - One uv_timer_t serves the table's timer list (records.c): armed for
 *    its head, its callback queues every record that is due (at <= now,
 *    by weft_now: uv_now is a cached millisecond and is never used) and
 *    arms itself again.
 *  - A wait or sleep on the loop's thread that would have to block returns
 *    -EDEADLK: it would stall every callback of the loop (a past deadline
 *    polls, a task that has ended is waited for as anywhere).
 *
 * Records: INBOX (spawned from another thread, in the inbox) or TIMER ->
 * QUEUED (uv_queue_work called) -> RUNNING -> DONE. A cancel takes an INBOX
 * or TIMER record out of its list and ends it -ECANCELED at once; a QUEUED
 * one gets uv_cancel (on the loop): if libuv still had it queued, it ends
 * -ECANCELED at once and after_cb (status UV_ECANCELED) drops the runner's
 * reference later; if a pool thread has taken it, the flag set under mu
 * before makes weft__rec_run end it -ECANCELED without running fn.
 *
 * Invariants (asserted):
 *  - A record is in the inbox (in_inbox) only as INBOX (a spawn to queue)
 *    or QUEUED (a cancel to make): the runner's reference keeps an INBOX
 *    one, and after_cb takes a QUEUED one out before it drops the runner's
 *    reference, so the inbox never names a record that has been let go.
 *  - uv_async_send is called under mu and only while !closing; closing is
 *    set (under mu, on the loop) only once stopping and no record is live,
 *    and a push needs a live record: no send reaches a closed handle.
 *  - Once stop_all has run, the last live record is let go of on the loop
 *    (after_cb), which then closes the handles: stop_all took every INBOX
 *    and TIMER record back, and only those are let go of elsewhere (by a
 *    cancel), by a caller that is one of the executor's tasks (live
 *    itself, so never the last) or that the POSIX rule keeps out of a
 *    destroy in progress.
 *  - Every libuv call but uv_async_send is made on the loop's thread.
 *  - Lock order: mu, then libuv's pool locks (uv_queue_work and uv_cancel
 *    are called under mu; libuv calls work_cb, after_cb and the handles'
 *    callbacks holding none of its locks), then a wait queue's spinlock.
 *
 * Destroy: stopping (spawns fail), then on the loop (own loop: async_cb;
 * caller's loop: destroy itself, which must run there): every record that
 * has not run is taken back (weft__recs_cancel_all with uv_cancel), and
 * once no record is live (at once, or in the last after_cb) the inbox and
 * the timer are closed (libuv's close protocol: uv_close, then their close
 * callbacks). The own loop's uv_run then returns for want of handles and
 * its thread is joined; with the caller's loop, destroy runs the loop
 * (UV_RUN_ONCE: it blocks only while a task still runs, whose end wakes
 * the loop through libuv's own completion handle) until both close
 * callbacks have run.
 */
#include <weft/executors.h>
#include <weft/time.h>

#include "../base/sized.h"
#include "records.h"

#ifdef WEFT_HAVE_LIBUV

#include <assert.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <uv.h>

static const char uv_name[] = "libuv";

typedef struct uv_rec {
	weft__rec r; /* first: the table's record */
	uv_work_t req;
	struct uv_rec *inbox_next; /* under mu */
	bool in_inbox;		   /* under mu */
} uv_rec;

struct ux {
	weft__recs recs; /* first: a record's tab is its executor */
	uv_loop_t *loop;
	uv_loop_t own;	     /* loop == &own: the executor's own loop */
	pthread_t thread;    /* the own loop's thread; the caller's loop: the thread that created the executor */
	uv_async_t inbox;    /* wakes the loop for the inbox's requests */
	uv_timer_t timer;    /* for the head of the timer list */
	uv_rec *head, *tail; /* the inbox, under mu */
	bool rearm;	     /* under mu: the timer list's head changed off the loop */
	bool closing;	     /* under mu: the handles are closed (no uv_async_send from then on) */
	bool stopped;	     /* the loop's thread only: stop_all ran */
	int closed;	     /* the loop's thread only (the own loop's: read after the join): close callbacks run */
};

/* The executor whose own loop the calling thread runs, if any. */
static _Thread_local struct ux *own_loop_of;

static inline struct ux *rec_ux(weft__rec *r)
{
	return (struct ux *)r->tab;
}

static inline uv_rec *req_rec(uv_work_t *req)
{
	return (uv_rec *)((char *)req - offsetof(uv_rec, req));
}

/* Whether the caller is on the loop's thread. */
static inline bool on_loop(const struct ux *x)
{
	return x->loop == &x->own ? own_loop_of == x : pthread_equal(pthread_self(), x->thread);
}

static void work_cb(uv_work_t *req)
{
	weft__rec_run(&req_rec(req)->r);
}

static void close_cb(uv_handle_t *h)
{
	((struct ux *)h->data)->closed++;
}

/* On the loop: close the handles, once. */
static void close_handles(struct ux *x)
{
	assert(on_loop(x));
	pthread_mutex_lock(&x->recs.mu);
	assert(x->recs.stopping && x->recs.live == 0);
	bool already = x->closing;
	x->closing = true;
	pthread_mutex_unlock(&x->recs.mu);
	if (already)
		return;
	uv_close((uv_handle_t *)&x->inbox, close_cb);
	uv_close((uv_handle_t *)&x->timer, close_cb);
}

/* Under mu: take u out of the inbox. */
static void inbox_remove(struct ux *x, uv_rec *u)
{
	assert(u->in_inbox);
	uv_rec *prev = NULL;
	for (uv_rec *p = x->head; p != u; p = p->inbox_next) {
		assert(p);
		prev = p;
	}
	if (prev)
		prev->inbox_next = u->inbox_next;
	else
		x->head = u->inbox_next;
	if (x->tail == u)
		x->tail = prev;
	u->inbox_next = NULL;
	u->in_inbox = false;
}

/* Under mu, off the loop: ask the loop to deal with u. */
static void inbox_push(struct ux *x, uv_rec *u)
{
	assert(!x->closing && x->recs.live > 0);
	assert(u->r.state == WEFT__REC_INBOX || u->r.state == WEFT__REC_QUEUED);
	if (!u->in_inbox) {
		u->in_inbox = true;
		u->inbox_next = NULL;
		if (x->tail)
			x->tail->inbox_next = u;
		else
			x->head = u;
		x->tail = u;
	}
	uv_async_send(&x->inbox);
}

static void after_cb(uv_work_t *req, int status)
{
	uv_rec *u = req_rec(req);
	struct ux *x = rec_ux(&u->r);
	(void)status;
	pthread_mutex_lock(&x->recs.mu);
	assert(u->r.state == WEFT__REC_DONE && (status == 0 || status == UV_ECANCELED));
	if (u->in_inbox) /* a cancel to make: too late */
		inbox_remove(x, u);
	pthread_mutex_unlock(&x->recs.mu);
	if (weft__rec_release(&u->r))
		close_handles(x);
}

/* Under mu, on the loop: hand u to libuv's pool. */
static void queue_work(struct ux *x, uv_rec *u)
{
	assert(on_loop(x) && !u->in_inbox);
	u->r.state = WEFT__REC_QUEUED;
	int e = uv_queue_work(x->loop, &u->req, work_cb, after_cb);
	assert(e == 0); /* it fails only without a work_cb */
	(void)e;
}

/* Under mu, on the loop: take a QUEUED u back from libuv's pool; true if
 * libuv had not given it to a thread yet (u will never run). */
static bool cancel_work(struct ux *x, uv_rec *u)
{
	assert(on_loop(x) && u->r.state == WEFT__REC_QUEUED);
	(void)x;
	return uv_cancel((uv_req_t *)&u->req) == 0;
}

static void timer_cb(uv_timer_t *h);

/* Under mu, on the loop: arm the timer for the head of the timer list, or
 * stop it (an active timer keeps the caller's loop alive). */
static void arm(struct ux *x)
{
	assert(on_loop(x) && !x->closing);
	weft__rec *head = x->recs.timers;
	if (!head) {
		uv_timer_stop(&x->timer);
		return;
	}
	uv_update_time(x->loop); /* the timer counts from the loop's time */
	weft_time_t now = weft_now();
	weft_time_t d = head->at > now ? head->at - now : 0;
	uint64_t ms = (uint64_t)(d / WEFT_MSEC) + (d % WEFT_MSEC != 0); /* never early: timer_cb checks again */
	uv_timer_start(&x->timer, timer_cb, ms, 0);
}

static void timer_cb(uv_timer_t *h)
{
	struct ux *x = h->data;
	pthread_mutex_lock(&x->recs.mu);
	weft_time_t now = weft_now();
	weft__rec *r;
	while ((r = weft__recs_timer_due(&x->recs, now)))
		queue_work(x, (uv_rec *)r);
	arm(x);
	pthread_mutex_unlock(&x->recs.mu);
}

/* On the loop: do what the inbox asks. Records taken back from libuv's
 * pool are completed after mu is released (on inbox_next: they have left
 * the inbox). */
static void drain(struct ux *x)
{
	uv_rec *cancelled = NULL;
	pthread_mutex_lock(&x->recs.mu);
	uv_rec *u;
	while ((u = x->head)) {
		inbox_remove(x, u);
		if (u->r.state == WEFT__REC_INBOX) {
			queue_work(x, u);
		} else if (u->r.state == WEFT__REC_QUEUED && cancel_work(x, u)) {
			u->r.state = WEFT__REC_ENDING; /* (records.c: no other cancel takes it now) */
			u->inbox_next = cancelled;
			cancelled = u;
		}
	}
	if (x->rearm && !x->closing) {
		x->rearm = false;
		arm(x);
	}
	pthread_mutex_unlock(&x->recs.mu);
	while ((u = cancelled)) {
		cancelled = u->inbox_next;
		u->inbox_next = NULL;
		weft__rec_complete(&u->r, (void *)(intptr_t)-ECANCELED); /* after_cb lets go of it */
	}
}

/* Under mu (records.c's take-back, for INBOX and QUEUED records). */
static int take(void *ctx, weft__rec *r)
{
	struct ux *x = ctx;
	uv_rec *u = (uv_rec *)r;
	if (r->state == WEFT__REC_INBOX) {
		inbox_remove(x, u);
		return WEFT__TAKE_OUT;
	}
	assert(r->state == WEFT__REC_QUEUED);
	if (on_loop(x))
		return cancel_work(x, u) ? WEFT__TAKE_CANCELLED : WEFT__TAKE_NONE;
	inbox_push(x, u); /* the loop calls uv_cancel; the flag covers the rest */
	return WEFT__TAKE_NONE;
}

/* On the loop, once stopping (once): take back what has not run, drain
 * the inbox, close the handles if nothing is live (else the last after_cb
 * will). */
static void stop_all(struct ux *x)
{
	assert(on_loop(x) && !x->stopped);
	x->stopped = true;
	weft__recs_cancel_all(&x->recs, take, x);
	drain(x);
	pthread_mutex_lock(&x->recs.mu);
	assert(!x->recs.timers && !x->head);
	bool idle = x->recs.live == 0;
	if (!x->closing)
		uv_timer_stop(&x->timer);
	pthread_mutex_unlock(&x->recs.mu);
	if (idle)
		close_handles(x);
}

static void async_cb(uv_async_t *h)
{
	struct ux *x = h->data;
	pthread_mutex_lock(&x->recs.mu);
	bool stop = x->recs.stopping && !x->stopped;
	pthread_mutex_unlock(&x->recs.mu);
	if (stop)
		stop_all(x);
	else
		drain(x);
}

static int ux_spawn(void *ctx, uint64_t *id, weft_fn_t fn, void *arg, const weft_exec_spawn_opts_t *o)
{
	(void)o; /* names and stack sizes are for coroutines */
	struct ux *x = ctx;
	weft__rec *r;
	pthread_mutex_lock(&x->recs.mu);
	int e = weft__recs_start(&x->recs, id, fn, arg, &r);
	if (e == 0) {
		if (on_loop(x))
			queue_work(x, (uv_rec *)r);
		else
			inbox_push(x, (uv_rec *)r);
	}
	pthread_mutex_unlock(&x->recs.mu);
	return e;
}

static int ux_spawn_at(void *ctx, uint64_t *id, weft_time_t at, weft_fn_t fn, void *arg,
		       const weft_exec_spawn_opts_t *o)
{
	(void)o;
	struct ux *x = ctx;
	weft__rec *r;
	pthread_mutex_lock(&x->recs.mu);
	int e = weft__recs_start(&x->recs, id, fn, arg, &r);
	if (e == 0 && weft__recs_timer_add(&x->recs, r, at)) {
		if (on_loop(x)) {
			arm(x);
		} else {
			x->rearm = true;
			uv_async_send(&x->inbox); /* !closing: r is live */
		}
	}
	pthread_mutex_unlock(&x->recs.mu);
	return e;
}

static int ux_cancel(void *ctx, uint64_t id)
{
	struct ux *x = ctx;
	return weft__recs_cancel(&x->recs, id, take, x);
}

static int ux_wait(void *ctx, uint64_t id, void **result, weft_time_t deadline, weft_op_t *op)
{
	struct ux *x = ctx;
	return weft__recs_wait(&x->recs, id, result, deadline, op, on_loop(x) ? -EDEADLK : 0);
}

static int ux_detach(void *ctx, uint64_t id)
{
	struct ux *x = ctx;
	return weft__recs_detach(&x->recs, id);
}

static int ux_sleep_until(void *ctx, weft_time_t deadline)
{
	struct ux *x = ctx;
	if (on_loop(x))
		return weft_now() >= deadline ? 0 : -EDEADLK;
	return weft_sleep_until(deadline);
}

/* The own loop's thread: runs the loop until destroy has closed the
 * handles. */
static void *loop_main(void *a)
{
	struct ux *x = a;
	pthread_setname_np(pthread_self(), "weft-exec-uv");
	own_loop_of = x;
	uv_run(x->loop, UV_RUN_DEFAULT);
	own_loop_of = NULL;
	return NULL;
}

/* Free x, whose handles are closed and whose loop (if its own) is closed. */
static void ux_free(struct ux *x)
{
	weft__recs_fini(&x->recs);
	free(x);
}

static int ux_destroy(void *ctx)
{
	struct ux *x = ctx;
	if (weft__recs_own_task(&x->recs))
		return -EDEADLK;
	bool own = x->loop == &x->own;
	if (!own && !on_loop(x))
		return -EPERM;
	pthread_mutex_lock(&x->recs.mu);
	assert(!x->recs.stopping && !x->closing);
	x->recs.stopping = true;
	if (own)
		uv_async_send(&x->inbox); /* the loop runs stop_all */
	pthread_mutex_unlock(&x->recs.mu);
	if (own) {
		pthread_join(x->thread, NULL);
		int e = uv_loop_close(&x->own);
		assert(e == 0); /* every handle closed, every request done */
		(void)e;
	} else {
		stop_all(x);
		while (x->closed < 2)
			uv_run(x->loop, UV_RUN_ONCE);
	}
	assert(x->closed == 2 && x->recs.live == 0);
	ux_free(x);
	return 0;
}

static const weft_exec_ops_t uv_ops = {
	.size = sizeof(weft_exec_ops_t),
	.name = uv_name,
	.caps = WEFT_EXEC_CAP_OWNS_TASKS | WEFT_EXEC_CAP_REAL_IO,
	.spawn = ux_spawn,
	.wait = ux_wait,
	.detach = ux_detach,
	.destroy = ux_destroy,
	.spawn_at = ux_spawn_at,
	.cancel = ux_cancel,
	.sleep_until = ux_sleep_until,
};

/* Undo the handles' init of a create that failed, on the creating thread
 * (the loop's, or the own loop before its thread exists). */
static void close_now(struct ux *x, int handles)
{
	if (handles > 0)
		uv_close((uv_handle_t *)&x->inbox, close_cb);
	if (handles > 1)
		uv_close((uv_handle_t *)&x->timer, close_cb);
	while (x->closed < handles)
		uv_run(x->loop, UV_RUN_NOWAIT);
	if (x->loop == &x->own)
		uv_loop_close(&x->own);
	ux_free(x);
}

int weft_exec_create_uv(weft_exec_t **out, const weft_exec_uv_opts_t *opts)
{
	if (out)
		*out = NULL;
	if (!out)
		return -EINVAL;
	weft_exec_uv_opts_t o;
	int e = weft__opts_in(&o, sizeof o, opts, opts ? opts->size : 0);
	if (e < 0)
		return e;
	struct ux *x = calloc(1, sizeof *x);
	if (!x)
		return -ENOMEM;
	weft__recs_init(&x->recs, sizeof(uv_rec));
	if (o.loop) {
		x->loop = o.loop;
		x->thread = pthread_self();
	} else {
		x->loop = &x->own;
		if ((e = uv_loop_init(&x->own)) < 0) {
			ux_free(x);
			return e;
		}
	}
	x->inbox.data = x->timer.data = x;
	if ((e = uv_async_init(x->loop, &x->inbox, async_cb)) < 0) {
		close_now(x, 0);
		return e;
	}
	uv_timer_init(x->loop, &x->timer); /* cannot fail */
	if (o.loop) {
		uv_unref((uv_handle_t *)&x->inbox); /* the caller's loop lives for its work and timers, not for us */
	} else {
		sigset_t all, old; /* the loop's thread takes no signals (as the pool's threads) */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		int c = pthread_create(&x->thread, NULL, loop_main, x);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (c != 0) {
			close_now(x, 2);
			return -ENOMEM;
		}
	}
	if ((e = weft_exec_create(out, &uv_ops, x)) < 0)
		ux_destroy(x);
	return e;
}

#else /* built without libuv (-DWEFT_LIBUV=OFF) */

int weft_exec_create_uv(weft_exec_t **out, const weft_exec_uv_opts_t *opts)
{
	(void)opts;
	if (out)
		*out = NULL;
	return out ? -ENOTSUP : -EINVAL;
}

#endif
