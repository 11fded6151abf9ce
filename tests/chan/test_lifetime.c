/* test_lifetime.c - a channel may be released by the side an operation
 * completed for the moment its call returns: the other side's call, still
 * unwinding after its wake-up, must not touch the channel any more. Each
 * round stretches the waker right after the wake-up (wt_lifetime.h) while
 * the woken side releases the last reference; ASan and TSan catch a touch
 * of the freed channel. */
#include "wt_lifetime.h"

#include <string.h>

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
	TCHECK_EQ(weft_select(c, 2, WEFT_NEVER, false), 1);
	TCHECK_EQ(v, 42);
	TCHECK_EQ(weft_chan_release(ch), 0);
	TCHECK_EQ(weft_chan_release(other), 0);
	atomic_store(&r->done, 1);
	return NULL;
}

/* A stackless receiver. */
typedef struct {
	wt_round_t *r;
	weft_chan_op_t op;
	long v;
} step_recv_t;

static weft_step_t step_recv(void *s, void **res)
{
	(void)res;
	step_recv_t *st = s;
	atomic_store(&st->r->waiting, 1);
	int e = weft_chan_recv_step(st->r->obj, &st->v, &st->op);
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
	step_recv_t st = {.r = a, .op = WEFT_CHAN_OP_INIT};
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
