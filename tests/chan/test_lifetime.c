/* test_lifetime.c - a channel may be released by the side an operation
 * completed for the moment its call returns: the other side's call, still
 * unwinding after its wake-up, must not touch the channel any more. Each
 * round stretches the waker right after the wake-up (wt_lifetime.h) while
 * the woken side releases the last reference; ASan and TSan catch a touch
 * of the freed channel. */
#include "wt_lifetime.h"

#include <sched.h>
#include <string.h>

#include "chan/chan_impl.h" /* the waiter counts: a waiter is queued */

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#define ROUNDS WT_SIZE(40, 24)

static weft_chan_t *new_chan(ssize_t cap)
{
	weft_chan_t *ch = NULL;
	if (weft_chan_create(&ch, sizeof(long), cap) != 0)
		return NULL;
	return ch;
}

static void *new_rendezvous(void)
{
	return new_chan(0);
}

static void *new_bounded(void)
{
	return new_chan(1);
}

static void *new_unbounded(void)
{
	return new_chan(WEFT_CHAN_UNBOUNDED);
}

/* The waiter receives; the waker sends. */
static void *recv_then_release(void *a)
{
	wt_round_t *r = a;
	weft_chan_t *ch = r->obj;
	long v = 0;
	atomic_store(&r->waiting, 1);
	r->result = weft_chan_recv(ch, &v);
	TCHECK_EQ(r->result, 0);
	TCHECK_EQ(v, 42);
	TCHECK_EQ(weft_chan_release(ch), 0);
	atomic_store(&r->done, 1);
	return NULL;
}

static void *send_armed(void *a)
{
	wt_round_t *r = a;
	weft_chan_t *ch = r->obj;
	long v = 42;
	wt_until_waiting(r);
	wt_arm();
	TCHECK_EQ(weft_chan_send(ch, &v), 0);
	wt_disarm();
	return NULL;
}

/* The waiter sends into a full (or rendezvous) channel; the waker receives. */
static void *send_then_release(void *a)
{
	wt_round_t *r = a;
	weft_chan_t *ch = r->obj;
	long v = 7;
	if (weft_chan_cap(ch) > 0)
		TCHECK_EQ(weft_chan_send(ch, &v), 0); /* fill it */
	atomic_store(&r->waiting, 1);
	r->result = weft_chan_send(ch, &v);
	TCHECK_EQ(r->result, 0);
	TCHECK_EQ(weft_chan_release(ch), 0);
	atomic_store(&r->done, 1);
	return NULL;
}

static void *recv_armed(void *a)
{
	wt_round_t *r = a;
	weft_chan_t *ch = r->obj;
	wt_until_waiting(r);
	/* The waiter holds the only reference: take one ourselves to drain the
	 * second value after the woken sender has released it. */
	TCHECK_EQ(weft_chan_retain(ch), 0);
	long v = 0;
	wt_arm();
	TCHECK_EQ(weft_chan_recv(ch, &v), 0);
	wt_disarm();
	TCHECK_EQ(v, 7);
	wt_until_done(r);
	if (weft_chan_cap(ch) > 0)
		TCHECK_EQ(weft_chan_recv(ch, &v), 0);
	TCHECK_EQ(weft_chan_release(ch), 0);
	return NULL;
}

/* The waiter receives; the waker closes. */
static void *recv_closed_then_release(void *a)
{
	wt_round_t *r = a;
	weft_chan_t *ch = r->obj;
	long v;
	atomic_store(&r->waiting, 1);
	r->result = weft_chan_recv(ch, &v);
	TCHECK_EQ(r->result, -EPIPE);
	TCHECK_EQ(weft_chan_release(ch), 0);
	atomic_store(&r->done, 1);
	return NULL;
}

static void *close_armed(void *a)
{
	wt_round_t *r = a;
	wt_until_waiting(r);
	wt_arm();
	TCHECK_EQ(weft_chan_close(r->obj), 0);
	wt_disarm();
	return NULL;
}

/* A select over the channel and a second one that stays silent. */
static void *select_then_release(void *a)
{
	wt_round_t *r = a;
	weft_chan_t *ch = r->obj, *other = new_chan(0);
	long v = 0, w = 0;
	weft_select_case_t c[2] = {
		{.ch = other, .op = WEFT_SELECT_RECV, .buf = &w},
		{.ch = ch, .op = WEFT_SELECT_RECV, .buf = &v},
	};
	atomic_store(&r->waiting, 1);
	TCHECK_EQ(weft_select(c, 2, WEFT_NEVER), 1);
	TCHECK_EQ(v, 42);
	TCHECK_EQ(weft_chan_release(ch), 0);
	TCHECK_EQ(weft_chan_release(other), 0);
	atomic_store(&r->done, 1);
	return NULL;
}

/* A stackless receiver. */
typedef struct {
	wt_round_t *r;
	weft_op_t op;
	long v;
} step_recv_t;

static weft_step_t step_recv(void *s, void **res)
{
	(void)res;
	step_recv_t *st = s;
	atomic_store(&st->r->waiting, 1);
	int e = weft_chan_recv_step(st->r->obj, &st->v, WEFT_NEVER, &st->op);
	if (e == -EINPROGRESS)
		return WEFT_STEP_PARKED;
	TCHECK_EQ(e, 0);
	TCHECK_EQ(st->v, 42);
	TCHECK_EQ(weft_chan_release(st->r->obj), 0);
	atomic_store(&st->r->done, 1);
	return WEFT_STEP_DONE;
}

static void *step_recv_then_release(void *a)
{
	step_recv_t st = {.r = a, .op = WEFT_OP_INIT};
	if (weft_self() == 0) {
		/* A plain thread waits like a coroutine. */
		return recv_then_release(a);
	}
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, step_recv, &st, NULL), 0);
	TCHECK_EQ(weft_join(t, NULL), 0);
	return NULL;
}

static void test_rendezvous_recv(void **state)
{
	(void)state;
	wt_rounds(ROUNDS, new_rendezvous, recv_then_release, send_armed);
}

static void test_rendezvous_send(void **state)
{
	(void)state;
	wt_rounds(ROUNDS, new_rendezvous, send_then_release, recv_armed);
}

static void test_bounded_recv(void **state)
{
	(void)state;
	wt_rounds(ROUNDS, new_bounded, recv_then_release, send_armed);
}

static void test_bounded_send(void **state)
{
	(void)state;
	wt_rounds(ROUNDS, new_bounded, send_then_release, recv_armed);
}

static void test_unbounded_recv(void **state)
{
	(void)state;
	wt_rounds(ROUNDS, new_unbounded, recv_then_release, send_armed);
}

static void test_close_wakes_receiver(void **state)
{
	(void)state;
	wt_rounds(ROUNDS, new_rendezvous, recv_closed_then_release, close_armed);
	wt_rounds(ROUNDS, new_bounded, recv_closed_then_release, close_armed);
}

static void test_select(void **state)
{
	(void)state;
	wt_rounds(ROUNDS, new_rendezvous, select_then_release, send_armed);
	wt_rounds(ROUNDS, new_bounded, select_then_release, send_armed);
}

static void test_stackless_recv(void **state)
{
	(void)state;
	wt_rounds(ROUNDS, new_rendezvous, step_recv_then_release, send_armed);
	wt_rounds(ROUNDS, new_bounded, step_recv_then_release, send_armed);
}

/* ------------------------------------------------------------ the waker releases */

/* The other direction: the waker's call returns first and it releases the
 * only reference while the side it woke is still returning; that side must
 * not touch the channel after its wake-up either. */
static void *recv_keep(void *a)
{
	wt_round_t *r = a;
	long v = 0;
	atomic_store(&r->waiting, 1);
	TCHECK_EQ(weft_chan_recv(r->obj, &v), 0);
	TCHECK_EQ(v, 42);
	atomic_store(&r->done, 1);
	return NULL;
}

static void *send_then_release_waker(void *a)
{
	wt_round_t *r = a;
	long v = 42;
	wt_until_waiting(r);
	TCHECK_EQ(weft_chan_send(r->obj, &v), 0);
	TCHECK_EQ(weft_chan_release(r->obj), 0);
	return NULL;
}

static void *select_keep(void *a)
{
	wt_round_t *r = a;
	weft_chan_t *other = new_chan(0);
	long v = 0, w = 0;
	weft_select_case_t c[2] = {
		{.ch = other, .op = WEFT_SELECT_RECV, .buf = &w},
		{.ch = r->obj, .op = WEFT_SELECT_RECV, .buf = &v},
	};
	atomic_store(&r->waiting, 1);
	TCHECK_EQ(weft_select(c, 2, WEFT_NEVER), 1);
	TCHECK_EQ(v, 42);
	TCHECK_EQ(weft_chan_release(other), 0);
	atomic_store(&r->done, 1);
	return NULL;
}

static void *send_keep(void *a)
{
	wt_round_t *r = a;
	long v = 42;
	atomic_store(&r->waiting, 1);
	TCHECK_EQ(weft_chan_send(r->obj, &v), 0);
	atomic_store(&r->done, 1);
	return NULL;
}

static void *recv_then_release_waker(void *a)
{
	wt_round_t *r = a;
	long v = 0;
	wt_until_waiting(r);
	TCHECK_EQ(weft_chan_recv(r->obj, &v), 0);
	TCHECK_EQ(v, 42);
	TCHECK_EQ(weft_chan_release(r->obj), 0);
	return NULL;
}

static void test_waker_releases(void **state)
{
	(void)state;
	/* Rendezvous only: a send completes the receiver's operation there; into a
	 * buffer it does not, and a sender that released the channel then would
	 * pull it from under a receiver still on its way. */
	wt_rounds(ROUNDS, new_rendezvous, recv_keep, send_then_release_waker);
	wt_rounds(ROUNDS, new_rendezvous, select_keep, send_then_release_waker);
	wt_rounds(ROUNDS, new_rendezvous, send_keep, recv_then_release_waker);
}

/* No wake-up at all: a bounded channel's lock-free receiver takes the value
 * a lock-free sender has just published and releases the channel, while
 * the sender's call is still returning. */
static _Atomic(weft_chan_t *) lf_ch;
static _Atomic int lf_stop;

static void *lf_receiver(void *a)
{
	(void)a;
	for (;;) {
		weft_chan_t *ch;
		while ((ch = atomic_load(&lf_ch)) == NULL) {
			if (atomic_load(&lf_stop))
				return NULL;
			sched_yield(); /* a busy machine: let the sender run */
		}
		long v;
		/* Spin a little (the race of interest is with a sender still in
		 * its call), then yield, so a descheduled sender gets the CPU. */
		for (int spins = 0; weft_chan_try_recv(ch, &v) != 0; spins++)
			if (spins > 64)
				sched_yield();
		atomic_store(&lf_ch, NULL);
		TCHECK_EQ(weft_chan_release(ch), 0); /* the only reference */
	}
}

static void test_lock_free_taker_releases(void **state)
{
	(void)state;
	atomic_store(&tcheck_failures, 0);
	atomic_store(&lf_stop, 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, lf_receiver, NULL), 0);
	for (int i = 0; i < WT_SIZE(50000, 20000); i++) {
		weft_chan_t *ch = new_chan(1);
		assert_non_null(ch);
		atomic_store(&lf_ch, ch);
		long v = i;
		assert_int_equal(weft_chan_try_send(ch, &v), 0); /* then never touched again */
		while (atomic_load(&lf_ch) != NULL)
			sched_yield();
	}
	atomic_store(&lf_stop, 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* A waiter told to retry (a buffered channel closed, or an element put in
 * an unbounded buffer for it) is on no queue any more but still has to
 * look at the channel, and the caller that woke it may drop the last
 * reference the moment its own call returns. The retry holds a reference
 * of its own (chan.c, notify_retry). Forced, not waited for: one worker,
 * no monitor (which would start another), held by a spinning task while
 * the plain thread wakes the waiter and releases the channel; only then
 * may the waiter run. Before the fix the retry read the freed channel
 * (ASan), and in release builds took the value of the next channel made
 * in its memory. */
typedef struct retry_scene {
	weft_chan_t *ch;
	bool step; /* the receiver is a stackless task */
	long got;
	int res;
	weft_op_t op;
} retry_scene;

static void *retry_recv(void *a)
{
	retry_scene *s = a;
	s->res = weft_chan_recv(s->ch, &s->got);
	return NULL;
}

static weft_step_t retry_recv_step(void *a, void **res)
{
	(void)res;
	retry_scene *s = a;
	int r = weft_chan_recv_step(s->ch, &s->got, WEFT_NEVER, &s->op);
	if (r == -EINPROGRESS)
		return WEFT_STEP_PARKED;
	s->res = r;
	return WEFT_STEP_DONE;
}

/* cap: the channel's; close: close it (else send 42 into it). */
static void retry_round(ssize_t cap, bool close, bool step)
{
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 1, .no_monitor = true}), 0);
	retry_scene s = {.ch = new_chan(cap), .step = step, .res = 1};
	weft_spawn_opts_t o = {.runtime = rt};
	weft_task_t r;
	if (step)
		assert_int_equal(weft_spawn_step(&r, retry_recv_step, &s, &o), 0);
	else
		assert_int_equal(weft_spawn(&r, retry_recv, &s, &o), 0);
	/* Queued (the count changes under the lock, with the node). */
	weft_time_t give_up = wt_hang_deadline();
	while (chan_waiting(s.ch, false) == 0 && weft_now() < give_up)
		sched_yield();
	assert_int_equal(chan_waiting(s.ch, false), 1);
	wt_hold_t h;
	wt_hold(&h, rt);
	/* The worker spins in wt_hold's task: the receiver, once woken, waits. */
	long v = 42;
	if (close)
		assert_int_equal(weft_chan_close(s.ch), 0);
	else
		assert_int_equal(weft_chan_send(s.ch, &v), 0);
	assert_int_equal(chan_waiting(s.ch, false), 0); /* woken: off the queue */
	assert_int_equal(weft_chan_release(s.ch), 0);
	wt_unhold(&h);
	assert_int_equal(weft_join(r, NULL), 0);
	if (close) {
		assert_int_equal(s.res, -EPIPE);
	} else {
		assert_int_equal(s.res, 0);
		assert_int_equal(s.got, 42);
	}
#if defined(__SANITIZE_ADDRESS__)
	/* The retry gave its reference back: the channel is freed (a pool
	 * block is poisoned when it is). */
	assert_true(__asan_address_is_poisoned(s.ch));
#endif
	assert_int_equal(weft_runtime_stop(rt), 0);
}

static void test_a_retry_outlives_the_last_release(void **state)
{
	(void)state;
	for (int step = 0; step < 2; step++) {
		retry_round(1, true, step);		       /* bounded, closed */
		retry_round(4, true, step);		       /* bounded, closed */
		retry_round(WEFT_CHAN_UNBOUNDED, true, step);  /* unbounded, closed */
		retry_round(WEFT_CHAN_UNBOUNDED, false, step); /* unbounded, a send */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rendezvous_recv),
		cmocka_unit_test(test_rendezvous_send),
		cmocka_unit_test(test_bounded_recv),
		cmocka_unit_test(test_bounded_send),
		cmocka_unit_test(test_unbounded_recv),
		cmocka_unit_test(test_close_wakes_receiver),
		cmocka_unit_test(test_select),
		cmocka_unit_test(test_stackless_recv),
		cmocka_unit_test(test_waker_releases),
		cmocka_unit_test(test_a_retry_outlives_the_last_release),
		cmocka_unit_test(test_lock_free_taker_releases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
