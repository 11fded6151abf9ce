/* test_select_step.c - weft_select_step: the step protocol of weft/sched.h
 * kept by a select (complete, or register and repeat; deadlines;
 * cancellation; one registration at a time; the op free once the call has
 * completed), the same result as weft_select, and conservation under
 * stress with stackless selectors racing senders, deadlines and cancels. */
#include "weft_test.h"

#include <pthread.h>
#include <string.h>

#include "chan/chan_impl.h" /* the waiter counts: a finished select left nothing queued */

static const ssize_t kinds[] = {0, 1, 4, WEFT_CHAN_UNBOUNDED};
#define NKINDS 4

/* No node of anybody's is queued on ch. */
static void no_waiters(weft_chan_t *ch)
{
	TCHECK_EQ(chan_waiting(ch, false), 0);
	TCHECK_EQ(chan_waiting(ch, true), 0);
}

/* ------------------------------------------------------------ one select */

/* A stackless task making one weft_select_step call: it counts its
 * registrations and keeps the call's result. */
typedef struct {
	weft_select_case_t *cs;
	size_t n;
	weft_time_t deadline;
	weft_op_t op;
	_Atomic int registered; /* -EINPROGRESS returns */
	int calls, result;
} one_sel;

static weft_step_t one_step(void *a, void **res)
{
	one_sel *s = a;
	s->calls++;
	int r = weft_select_step(s->cs, s->n, s->deadline, &s->op);
	if (r == -EINPROGRESS) {
		atomic_fetch_add(&s->registered, 1);
		return WEFT_STEP_PARKED;
	}
	s->result = r;
	*res = NULL;
	return WEFT_STEP_DONE;
}

static weft_task_t spawn_one(one_sel *s)
{
	weft_task_t t = 0;
	TCHECK_EQ(weft_spawn_step(&t, one_step, s, NULL), 0);
	return t;
}

/* Three channels: a rendezvous, one of kind `kind`, a bounded one of 1. */
static void make3(weft_chan_t *ch[3], ssize_t kind)
{
	TCHECK_EQ(weft_chan_create(&ch[0], sizeof(long), 0), 0);
	TCHECK_EQ(weft_chan_create(&ch[1], sizeof(long), kind), 0);
	TCHECK_EQ(weft_chan_create(&ch[2], sizeof(long), 1), 0);
}

static void release3(weft_chan_t *ch[3])
{
	for (int i = 0; i < 3; i++)
		TCHECK_EQ(weft_chan_release(ch[i]), 0);
}

/* Ready cases complete in the first call, registering nothing; a closed
 * channel's case is ready with -EPIPE. */
static void *ready_main(void *a)
{
	(void)a;
	weft_chan_t *ch[3];
	make3(ch, 4);
	long v = 31, in[3] = {0, 0, 0};
	TCHECK_EQ(weft_chan_send(ch[1], &v), 0);
	weft_select_case_t cs[3] = {
		{ch[0], WEFT_SELECT_RECV, &in[0], 0},
		{ch[1], WEFT_SELECT_RECV, &in[1], 0},
		{ch[2], WEFT_SELECT_RECV, &in[2], 0},
	};
	one_sel s = {.cs = cs, .n = 3, .deadline = WEFT_NEVER};
	wt_join(spawn_one(&s));
	TCHECK_EQ(s.result, 1);
	TCHECK_EQ(s.calls, 1);
	TCHECK_EQ(atomic_load(&s.registered), 0);
	TCHECK_EQ(cs[1].result, 0);
	TCHECK_EQ(in[1], 31);
	TCHECK_EQ(weft_chan_len(ch[1]), 0);
	/* A send case with room. */
	long out = 32;
	weft_select_case_t sc[2] = {{ch[0], WEFT_SELECT_SEND, &out, 0}, {ch[2], WEFT_SELECT_SEND, &out, 0}};
	one_sel t = {.cs = sc, .n = 2, .deadline = WEFT_NEVER};
	wt_join(spawn_one(&t));
	TCHECK_EQ(t.result, 1);
	TCHECK_EQ(t.calls, 1);
	TCHECK_EQ(weft_chan_recv(ch[2], &v), 0);
	TCHECK_EQ(v, 32);
	/* Closed. */
	TCHECK_EQ(weft_chan_close(ch[0]), 0);
	one_sel c = {.cs = cs, .n = 3, .deadline = WEFT_NEVER};
	wt_join(spawn_one(&c));
	TCHECK_EQ(c.result, 0);
	TCHECK_EQ(c.calls, 1);
	TCHECK_EQ(cs[0].result, -EPIPE);
	for (int i = 0; i < 3; i++)
		no_waiters(ch[i]);
	release3(ch);
	return NULL;
}

static void test_ready_case_completes_at_once(void **state)
{
	(void)state;
	wt_run(ready_main, NULL, 2);
}

/* A select with nothing ready registers; then the other side acts on its
 * second case, of every kind, receive and send: the select completes with
 * that case (the value handed over exactly once), and its other nodes are
 * gone - what is sent or received on the other channels afterwards is not
 * taken by the finished select. */
static void *second_case_main(void *a)
{
	(void)a;
	for (int k = 0; k < NKINDS; k++) {
		for (int send = 0; send < 2; send++) {
			if (send && kinds[k] == WEFT_CHAN_UNBOUNDED)
				continue; /* its sends never wait */
			weft_chan_t *ch[3];
			make3(ch, kinds[k]);
			long fill = -7;
			if (send) { /* full: a send case waits */
				for (ssize_t i = 0; i < weft_chan_cap(ch[1]); i++)
					TCHECK_EQ(weft_chan_send(ch[1], &fill), 0);
				TCHECK_EQ(weft_chan_send(ch[2], &fill), 0);
			}
			long buf[3] = {100, 101, 102};
			int op = send ? WEFT_SELECT_SEND : WEFT_SELECT_RECV;
			weft_select_case_t cs[3];
			for (int i = 0; i < 3; i++)
				cs[i] = (weft_select_case_t){ch[i], op, &buf[i], 0};
			one_sel s = {.cs = cs, .n = 3, .deadline = WEFT_NEVER};
			weft_task_t t = spawn_one(&s);
			WT_WAIT_UNTIL(atomic_load(&s.registered) == 1);
			long v = 55;
			if (send) {
				/* Take what fills the channel (if anything), then the
				 * select's value. */
				for (ssize_t i = 0; i < weft_chan_cap(ch[1]); i++) {
					TCHECK_EQ(weft_chan_recv(ch[1], &v), 0);
					TCHECK_EQ(v, fill);
				}
				TCHECK_EQ(weft_chan_recv(ch[1], &v), 0);
				TCHECK_EQ(v, 101);
			} else {
				TCHECK_EQ(weft_chan_send(ch[1], &v), 0);
			}
			wt_join(t);
			TCHECK_EQ(s.result, 1);
			TCHECK_EQ(cs[1].result, 0);
			TCHECK(s.calls >= 2);
			if (!send)
				TCHECK_EQ(buf[1], 55);
			TCHECK_EQ(buf[0], 100); /* untouched */
			TCHECK_EQ(buf[2], 102);
			for (int i = 0; i < 3; i++)
				no_waiters(ch[i]);
			/* Handed over once: nothing more on ch[1]. */
			TCHECK_EQ(weft_chan_len(ch[1]), 0);
			TCHECK_EQ(weft_chan_try_recv(ch[1], &v), -EAGAIN);
			/* The other cases are gone. */
			if (send) {
				TCHECK_EQ(weft_chan_try_recv(ch[0], &v), -EAGAIN);
				TCHECK_EQ(weft_chan_try_recv(ch[2], &v), 0);
				TCHECK_EQ(v, fill);
				TCHECK_EQ(weft_chan_try_recv(ch[2], &v), -EAGAIN);
			} else {
				TCHECK_EQ(weft_chan_try_send(ch[0], &v), -EAGAIN);
				TCHECK_EQ(weft_chan_try_send(ch[2], &v), 0);
				TCHECK_EQ(weft_chan_len(ch[2]), 1);
				TCHECK_EQ(weft_chan_try_recv(ch[2], &v), 0);
			}
			release3(ch);
		}
	}
	return NULL;
}

static void test_registers_then_second_case_fires(void **state)
{
	(void)state;
	wt_run(second_case_main, NULL, 2);
}

/* One rendezvous channel named twice, receive and send: the select's own
 * cases never meet; a receiver that comes completes the send case. */
static void *twice_main(void *a)
{
	(void)a;
	weft_chan_t *ch;
	TCHECK_EQ(weft_chan_create(&ch, sizeof(long), 0), 0);
	long in = 0, out = 77;
	weft_select_case_t cs[2] = {{ch, WEFT_SELECT_RECV, &in, 0}, {ch, WEFT_SELECT_SEND, &out, 0}};
	one_sel s = {.cs = cs, .n = 2, .deadline = WEFT_NEVER};
	weft_task_t t = spawn_one(&s);
	WT_WAIT_UNTIL(atomic_load(&s.registered) == 1);
	long v = 0;
	TCHECK_EQ(weft_chan_recv(ch, &v), 0);
	TCHECK_EQ(v, 77);
	wt_join(t);
	TCHECK_EQ(s.result, 1);
	TCHECK_EQ(in, 0);
	no_waiters(ch);
	TCHECK_EQ(weft_chan_release(ch), 0);
	return NULL;
}

static void test_same_channel_twice(void **state)
{
	(void)state;
	wt_run(twice_main, NULL, 2);
}

/* Closing the channel of a registered select's case completes it with
 * -EPIPE, receive and send, on every kind. */
static void *closed_main(void *a)
{
	(void)a;
	for (int k = 0; k < NKINDS; k++) {
		for (int send = 0; send < 2; send++) {
			if (send && kinds[k] == WEFT_CHAN_UNBOUNDED)
				continue;
			weft_chan_t *ch[3];
			make3(ch, kinds[k]);
			long fill = 1;
			if (send) {
				for (ssize_t i = 0; i < weft_chan_cap(ch[1]); i++)
					TCHECK_EQ(weft_chan_send(ch[1], &fill), 0);
				TCHECK_EQ(weft_chan_send(ch[2], &fill), 0);
			}
			long buf[3] = {0, 0, 0};
			int op = send ? WEFT_SELECT_SEND : WEFT_SELECT_RECV;
			weft_select_case_t cs[3];
			for (int i = 0; i < 3; i++)
				cs[i] = (weft_select_case_t){ch[i], op, &buf[i], 0};
			one_sel s = {.cs = cs, .n = 3, .deadline = WEFT_NEVER};
			weft_task_t t = spawn_one(&s);
			WT_WAIT_UNTIL(atomic_load(&s.registered) == 1);
			TCHECK_EQ(weft_chan_close(ch[1]), 0);
			wt_join(t);
			TCHECK_EQ(s.result, 1);
			TCHECK_EQ(cs[1].result, -EPIPE);
			for (int i = 0; i < 3; i++)
				no_waiters(ch[i]);
			release3(ch);
		}
	}
	return NULL;
}

static void test_closed_channel_case(void **state)
{
	(void)state;
	wt_run(closed_main, NULL, 2);
}

/* A past deadline polls: -ETIMEDOUT in the first call, nothing registered
 * or queued; a ready case is still taken. */
typedef struct {
	weft_chan_t *ch[3];
} poll_state;

static weft_step_t poll_step(void *a, void **res)
{
	poll_state *p = a;
	*res = NULL;
	long buf = 0, v = 12;
	weft_select_case_t cs[3] = {
		{p->ch[0], WEFT_SELECT_RECV, &buf, 0},
		{p->ch[1], WEFT_SELECT_SEND, &v, 0},
		{p->ch[2], WEFT_SELECT_RECV, &buf, 0},
	};
	static const weft_time_t past[] = {INT64_MIN, -1, 0};
	for (size_t i = 0; i < sizeof past / sizeof past[0]; i++) {
		weft_op_t op;
		memset(&op, 0xa5, sizeof op); /* needs no initialisation */
		TCHECK_EQ(weft_select_step(cs, 3, past[i], &op), -ETIMEDOUT);
		TCHECK_EQ(weft_select_step(cs, 3, weft_now() - 1, &op), -ETIMEDOUT);
		for (int c = 0; c < 3; c++)
			no_waiters(p->ch[c]);
	}
	/* Ready: taken, whatever the deadline - and with another op: nothing
	 * was registered (else -EBUSY). */
	TCHECK_EQ(weft_chan_try_send(p->ch[2], &v), 0);
	weft_op_t op = WEFT_OP_INIT;
	TCHECK_EQ(weft_select_step(cs, 3, INT64_MIN, &op), 2);
	TCHECK_EQ(buf, 12);
	return WEFT_STEP_DONE;
}

static void *poll_main(void *a)
{
	(void)a;
	poll_state p;
	TCHECK_EQ(weft_chan_create(&p.ch[0], sizeof(long), 0), 0);
	TCHECK_EQ(weft_chan_create(&p.ch[1], sizeof(long), 0), 0);
	TCHECK_EQ(weft_chan_create(&p.ch[2], sizeof(long), WEFT_CHAN_UNBOUNDED), 0);
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, poll_step, &p, NULL), 0);
	wt_join(t);
	release3(p.ch);
	return NULL;
}

static void test_past_deadline_polls(void **state)
{
	(void)state;
	wt_run(poll_main, NULL, 2);
}

/* A deadline that passes while the select is registered: the repeat
 * returns -ETIMEDOUT and leaves nothing queued. (The deadline is set in the
 * first call; should that call find it passed already - a loaded machine -
 * it only polls, and the test tries again with a longer one.) */
typedef struct {
	one_sel s;
	weft_time_t wait;
} dl_sel;

static weft_step_t dl_step(void *a, void **res)
{
	dl_sel *d = a;
	if (d->s.calls == 0)
		d->s.deadline = weft_deadline_in(d->wait);
	return one_step(&d->s, res);
}

static void *deadline_main(void *a)
{
	(void)a;
	weft_chan_t *ch[3];
	make3(ch, WEFT_CHAN_UNBOUNDED);
	long buf = 0;
	weft_select_case_t cs[3] = {
		{ch[0], WEFT_SELECT_SEND, &buf, 0},
		{ch[1], WEFT_SELECT_RECV, &buf, 0},
		{ch[2], WEFT_SELECT_RECV, &buf, 0},
	};
	bool registered = false;
	for (weft_time_t wait = 2 * WEFT_MSEC; !registered && wait < 10 * WEFT_SEC; wait *= 4) {
		dl_sel d = {.s = {.cs = cs, .n = 3}, .wait = wait};
		weft_task_t t;
		TCHECK_EQ(weft_spawn_step(&t, dl_step, &d, NULL), 0);
		wt_join(t);
		TCHECK_EQ(d.s.result, -ETIMEDOUT);
		registered = atomic_load(&d.s.registered) > 0;
		for (int i = 0; i < 3; i++)
			no_waiters(ch[i]);
	}
	TCHECK(registered);
	/* Nothing of it is left to take a value. */
	long v = 3;
	TCHECK_EQ(weft_chan_try_send(ch[0], &v), -EAGAIN);
	TCHECK_EQ(weft_chan_try_send(ch[1], &v), 0);
	TCHECK_EQ(weft_chan_len(ch[1]), 1);
	release3(ch);
	return NULL;
}

static void test_deadline_passes_while_registered(void **state)
{
	(void)state;
	wt_run(deadline_main, NULL, 2);
}

/* weft_cancel of a registered select: -ECANCELED, nothing queued, and what
 * is sent afterwards stays for others. */
static void *cancel_main(void *a)
{
	(void)a;
	for (int k = 0; k < NKINDS; k++) {
		weft_chan_t *ch[3];
		make3(ch, kinds[k]);
		long buf = 0, out = 8;
		TCHECK_EQ(weft_chan_send(ch[2], &out), 0); /* full */
		weft_select_case_t cs[3] = {
			{ch[0], WEFT_SELECT_RECV, &buf, 0},
			{ch[1], WEFT_SELECT_RECV, &buf, 0},
			{ch[2], WEFT_SELECT_SEND, &out, 0},
		};
		one_sel s = {.cs = cs, .n = 3, .deadline = WEFT_NEVER};
		weft_task_t t = spawn_one(&s);
		WT_WAIT_UNTIL(atomic_load(&s.registered) == 1);
		TCHECK_EQ(weft_cancel(t), 0);
		wt_join(t);
		TCHECK_EQ(s.result, -ECANCELED);
		for (int i = 0; i < 3; i++)
			no_waiters(ch[i]);
		long v = 9;
		TCHECK_EQ(weft_chan_try_send(ch[0], &v), -EAGAIN);
		TCHECK_EQ(weft_chan_try_recv(ch[2], &v), 0);
		TCHECK_EQ(v, 8);
		TCHECK_EQ(weft_chan_try_recv(ch[2], &v), -EAGAIN); /* its send did not happen */
		if (kinds[k] != 0) {
			TCHECK_EQ(weft_chan_try_send(ch[1], &v), 0);
			TCHECK_EQ(weft_chan_len(ch[1]), 1);
		}
		release3(ch);
	}
	return NULL;
}

static void test_cancel_while_registered(void **state)
{
	(void)state;
	wt_run(cancel_main, NULL, 2);
}

/* ------------------------------------------------------------ one registration */

/* A registered select owns the task's wait: every other _step call, and
 * weft_park_prepare, is -EBUSY; a repeat before the wake is -EINPROGRESS;
 * both change nothing. Then the other way round: a registered recv_step
 * makes a select_step -EBUSY. */
typedef struct {
	weft_chan_t *a, *b, *other;
	long in, x;
	weft_select_case_t cs[2], cs2[1];
	weft_op_t op, op2;
	weft_op_t cop;
	int phase, result;
	_Atomic int stage;
} busy_state;

static weft_step_t busy_step(void *a, void **res)
{
	busy_state *s = a;
	*res = NULL;
	int r;
	switch (s->phase) {
	case 0:
		s->cs[0] = (weft_select_case_t){s->a, WEFT_SELECT_RECV, &s->in, 0};
		s->cs[1] = (weft_select_case_t){s->b, WEFT_SELECT_RECV, &s->in, 0};
		s->cs2[0] = (weft_select_case_t){s->other, WEFT_SELECT_RECV, &s->x, 0};
		TCHECK_EQ(weft_select_step(s->cs, 2, WEFT_NEVER, &s->op), -EINPROGRESS);
		s->phase = 1;
		return WEFT_STEP_YIELD; /* run again while registered */
	case 1:
		/* Nobody sends yet: the wait has not ended. */
		TCHECK_EQ(weft_select_step(s->cs, 2, WEFT_NEVER, &s->op), -EINPROGRESS);
		TCHECK_EQ(weft_select_step(s->cs2, 1, WEFT_NEVER, &s->op2), -EBUSY);
		TCHECK_EQ(weft_select_step(s->cs2, 1, INT64_MIN, &s->op2), -EBUSY);
		TCHECK_EQ(weft_chan_recv_step(s->other, &s->x, WEFT_NEVER, &s->cop), -EBUSY);
		TCHECK_EQ(weft_park_prepare().parker == NULL, 1);
		TCHECK_EQ(chan_waiting(s->other, false), 0);
		TCHECK_EQ(chan_waiting(s->a, false), 1);
		s->phase = 2;
		atomic_store(&s->stage, 1);
		return WEFT_STEP_PARKED;
	case 2:
		r = weft_select_step(s->cs, 2, WEFT_NEVER, &s->op);
		if (r == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		TCHECK_EQ(r, 1);
		TCHECK_EQ(s->in, 44);
		/* The other way round. */
		TCHECK_EQ(weft_chan_recv_step(s->other, &s->x, WEFT_NEVER, &s->cop), -EINPROGRESS);
		TCHECK_EQ(weft_select_step(s->cs, 2, WEFT_NEVER, &s->op), -EBUSY);
		TCHECK_EQ(weft_select_step(s->cs, 2, INT64_MIN, &s->op2), -EBUSY);
		TCHECK_EQ(chan_waiting(s->a, false), 0);
		s->phase = 3;
		atomic_store(&s->stage, 2);
		return WEFT_STEP_PARKED;
	default:
		r = weft_chan_recv_step(s->other, &s->x, WEFT_NEVER, &s->cop);
		if (r == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		TCHECK_EQ(r, 0);
		TCHECK_EQ(s->x, 45);
		return WEFT_STEP_DONE;
	}
}

static void *busy_main(void *a)
{
	(void)a;
	busy_state s = {0};
	TCHECK_EQ(weft_chan_create(&s.a, sizeof(long), 0), 0);
	TCHECK_EQ(weft_chan_create(&s.b, sizeof(long), 2), 0);
	TCHECK_EQ(weft_chan_create(&s.other, sizeof(long), 0), 0);
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, busy_step, &s, NULL), 0);
	WT_WAIT_UNTIL(atomic_load(&s.stage) == 1);
	long v = 44;
	TCHECK_EQ(weft_chan_send(s.b, &v), 0);
	WT_WAIT_UNTIL(atomic_load(&s.stage) == 2);
	v = 45;
	TCHECK_EQ(weft_chan_send(s.other, &v), 0);
	wt_join(t);
	no_waiters(s.a);
	no_waiters(s.b);
	no_waiters(s.other);
	TCHECK_EQ(weft_chan_release(s.a), 0);
	TCHECK_EQ(weft_chan_release(s.b), 0);
	TCHECK_EQ(weft_chan_release(s.other), 0);
	return NULL;
}

static void test_second_registration_is_busy(void **state)
{
	(void)state;
	wt_run(busy_main, NULL, 2);
}

/* Once a call has completed, its op is the caller's at once: reused for
 * another select over other cases in the same step, then freed - with the
 * cases - in the step that completes that one (ASan sees any later touch). */
typedef struct {
	weft_chan_t *ch[2];
	weft_op_t *op;
	weft_select_case_t *cs;
	long *in;
	int round;
	_Atomic int registered;
} reuse_state;

static weft_select_case_t *reuse_cases(reuse_state *s, int round)
{
	weft_select_case_t *cs = malloc(2 * sizeof *cs);
	cs[0] = (weft_select_case_t){s->ch[round & 1], WEFT_SELECT_RECV, s->in, 0};
	cs[1] = (weft_select_case_t){s->ch[(round + 1) & 1], WEFT_SELECT_RECV, s->in, 0};
	return cs;
}

static weft_step_t reuse_step(void *a, void **res)
{
	reuse_state *s = a;
	*res = NULL;
	for (;;) {
		int r = weft_select_step(s->cs, 2, WEFT_NEVER, s->op);
		if (r == -EINPROGRESS) {
			atomic_fetch_add(&s->registered, 1);
			return WEFT_STEP_PARKED;
		}
		TCHECK(r == 0 || r == 1);
		TCHECK_EQ(*s->in, s->round + 1);
		free(s->cs);
		if (++s->round == 4) {
			free(s->op);
			free(s->in);
			return WEFT_STEP_DONE;
		}
		if (s->round == 2) { /* a fresh op, never initialised */
			free(s->op);
			s->op = malloc(sizeof *s->op);
			memset(s->op, 0x5a, sizeof *s->op);
		}
		s->cs = reuse_cases(s, s->round);
	}
}

static void *reuse_main(void *a)
{
	(void)a;
	reuse_state s = {0};
	TCHECK_EQ(weft_chan_create(&s.ch[0], sizeof(long), 0), 0);
	TCHECK_EQ(weft_chan_create(&s.ch[1], sizeof(long), 3), 0);
	s.op = malloc(sizeof *s.op);
	s.in = malloc(sizeof *s.in);
	s.cs = reuse_cases(&s, 0);
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, reuse_step, &s, NULL), 0);
	for (long i = 1; i <= 4; i++) {
		WT_WAIT_UNTIL(atomic_load(&s.registered) == i);
		TCHECK_EQ(weft_chan_send(s.ch[i & 1], &i), 0);
	}
	wt_join(t);
	no_waiters(s.ch[0]);
	no_waiters(s.ch[1]);
	TCHECK_EQ(weft_chan_release(s.ch[0]), 0);
	TCHECK_EQ(weft_chan_release(s.ch[1]), 0);
	return NULL;
}

static void test_op_reused_and_freed_at_once(void **state)
{
	(void)state;
	wt_run(reuse_main, NULL, 2);
}

/* ------------------------------------------------------------ other callers */

/* In a coroutine and a plain thread weft_select_step is weft_select: it
 * blocks until a case fires, never returns -EINPROGRESS, leaves op alone. */
static weft_chan_t *blk[2];

static void *blocking_caller(void *a)
{
	(void)a;
	long in = 0;
	weft_select_case_t cs[2] = {{blk[0], WEFT_SELECT_RECV, &in, 0}, {blk[1], WEFT_SELECT_RECV, &in, 0}};
	weft_op_t op, copy;
	memset(&op, 0x3c, sizeof op);
	copy = op;
	TCHECK_EQ(weft_select_step(cs, 2, INT64_MIN, &op), -ETIMEDOUT);
	TCHECK_EQ(weft_select_step(cs, 2, WEFT_NEVER, &op), 1);
	TCHECK_EQ(in, 66);
	TCHECK_EQ(cs[1].result, 0);
	TCHECK(memcmp(&op, &copy, sizeof op) == 0);
	return NULL;
}

static void *blocking_main(void *a)
{
	(void)a;
	TCHECK_EQ(weft_chan_create(&blk[0], sizeof(long), 0), 0);
	TCHECK_EQ(weft_chan_create(&blk[1], sizeof(long), 0), 0);
	for (int thread = 0; thread < 2; thread++) {
		weft_task_t t = 0;
		pthread_t th;
		if (thread)
			pthread_create(&th, NULL, blocking_caller, NULL);
		else
			t = wt_spawn(blocking_caller, NULL);
		WT_WAIT_UNTIL(chan_waiting(blk[1], false) == 1); /* blocked in it */
		long v = 66;
		TCHECK_EQ(weft_chan_send(blk[1], &v), 0);
		if (thread)
			pthread_join(th, NULL);
		else
			wt_join(t);
		no_waiters(blk[0]);
		no_waiters(blk[1]);
	}
	TCHECK_EQ(weft_chan_release(blk[0]), 0);
	TCHECK_EQ(weft_chan_release(blk[1]), 0);
	return NULL;
}

static void test_coroutines_and_threads_block(void **state)
{
	(void)state;
	wt_run(blocking_main, NULL, 2);
}

/* Fair as weft_select: two always-ready cases each fire about half the
 * time (20000 trials: [45%, 55%] is > 14 standard deviations wide). */
typedef struct {
	weft_chan_t *a, *b;
	long picks[2];
} fair_state;

static weft_step_t fair_step(void *p, void **res)
{
	fair_state *f = p;
	*res = NULL;
	weft_op_t op;
	long one = 1, x;
	for (int i = 0; i < 20000; i++) {
		TCHECK_EQ(weft_chan_try_send(f->a, &one), 0);
		TCHECK_EQ(weft_chan_try_send(f->b, &one), 0);
		weft_select_case_t cs[2] = {{f->a, WEFT_SELECT_RECV, &x, 0}, {f->b, WEFT_SELECT_RECV, &x, 0}};
		int k = weft_select_step(cs, 2, WEFT_NEVER, &op);
		TCHECK(k == 0 || k == 1);
		if (k != 0 && k != 1)
			break;
		f->picks[k]++;
		TCHECK_EQ(weft_chan_try_recv(k == 0 ? f->b : f->a, &x), 0);
	}
	return WEFT_STEP_DONE;
}

static void *fair_main(void *a)
{
	(void)a;
	fair_state f = {0};
	TCHECK_EQ(weft_chan_create(&f.a, sizeof(long), 4), 0);
	TCHECK_EQ(weft_chan_create(&f.b, sizeof(long), 4), 0);
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, fair_step, &f, NULL), 0);
	wt_join(t);
	TCHECK_EQ(f.picks[0] + f.picks[1], 20000);
	TCHECK(f.picks[0] > 20000 * 45 / 100 && f.picks[0] < 20000 * 55 / 100);
	TCHECK_EQ(weft_chan_release(f.a), 0);
	TCHECK_EQ(weft_chan_release(f.b), 0);
	return NULL;
}

static void test_fair(void **state)
{
	(void)state;
	wt_run(fair_main, NULL, 2);
}

/* ------------------------------------------------------------ stress */

/* Stackless selectors take values from every open "in" channel (a
 * rendezvous, bounded ones of 1 and 8, an unbounded one) and pass each on
 * through a select of send cases to the "out" channels (a rendezvous,
 * bounded ones of 1 and 8); coroutines and a plain thread feed the ins
 * through blocking selects, coroutines drain the outs. One selector call in
 * four has a deadline of a few microseconds, so deadlines race hand-overs.
 * Cancel mode: recv-only selectors, cancelled and replaced all the while
 * (a cancelled one ends at its next -ECANCELED), and values fed only into
 * the rendezvous and the bounded channel of 1, so that selectors wait
 * (most cancels find one registered) and hand-overs race the cancels.
 * Every value arrives exactly once. */
#define ST_IN 4
#define ST_OUT 3
static weft_chan_t *st_in[ST_IN], *st_out[ST_OUT];
static long st_total, st_senders;
static size_t st_fed; /* the senders feed the first st_fed ins */
static _Atomic unsigned char *st_seen;
static _Atomic long st_bad;
static bool st_cancel_mode;

static void st_mark(long v)
{
	if (v < 0 || v >= st_total || atomic_fetch_add(&st_seen[v], 1) != 0)
		atomic_fetch_add(&st_bad, 1);
}

typedef struct {
	weft_op_t op;
	weft_select_case_t cs[ST_IN];
	weft_chan_t *open[ST_IN];
	size_t nopen, n;
	long v;
	weft_time_t dl;
	unsigned calls;
	bool sending, pending;
	_Atomic bool done;
} st_sel;

static weft_step_t st_step(void *a, void **res)
{
	st_sel *s = a;
	*res = NULL;
	for (;;) {
		if (!s->pending) {
			/* A new call: its cases and deadline, kept by its repeats. */
			s->calls++;
			s->dl = s->calls % 4 == 0 ? weft_deadline_in((s->calls / 4 % 5) * 1000) : WEFT_NEVER;
			if (s->sending) {
				s->n = ST_OUT;
				for (size_t i = 0; i < ST_OUT; i++)
					s->cs[i] = (weft_select_case_t){st_out[i], WEFT_SELECT_SEND, &s->v, 0};
			} else {
				s->n = s->nopen;
				for (size_t i = 0; i < s->nopen; i++)
					s->cs[i] = (weft_select_case_t){s->open[i], WEFT_SELECT_RECV, &s->v, 0};
			}
		}
		int r = weft_select_step(s->cs, s->n, s->dl, &s->op);
		s->pending = r == -EINPROGRESS;
		if (r == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		if (r == -ETIMEDOUT)
			return WEFT_STEP_YIELD; /* try again (the same value, if sending) */
		if (r == -ECANCELED && st_cancel_mode) {
			atomic_store(&s->done, true);
			return WEFT_STEP_DONE;
		}
		if (r < 0 || (size_t)r >= s->n) {
			atomic_fetch_add(&st_bad, 1);
			atomic_store(&s->done, true);
			return WEFT_STEP_DONE;
		}
		if (s->sending) {
			TCHECK_EQ(s->cs[r].result, 0); /* the outs close after every selector is done */
			s->sending = false;
		} else if (s->cs[r].result == -EPIPE) {
			s->open[r] = s->open[--s->nopen];
			if (s->nopen == 0) {
				atomic_store(&s->done, true);
				return WEFT_STEP_DONE;
			}
		} else if (st_cancel_mode) {
			st_mark(s->v);
		} else {
			s->sending = true;
		}
	}
}

static void st_init(st_sel *s)
{
	memset(s, 0, sizeof *s);
	for (size_t i = 0; i < ST_IN; i++)
		s->open[i] = st_in[i];
	s->nopen = ST_IN;
}

static void *st_sender(void *a)
{
	long id = (long)(intptr_t)a;
	for (long v = id; v < st_total; v += st_senders) {
		weft_select_case_t cs[ST_IN];
		for (size_t i = 0; i < st_fed; i++)
			cs[i] = (weft_select_case_t){st_in[i], WEFT_SELECT_SEND, &v, 0};
		int r = weft_select(cs, st_fed, WEFT_NEVER);
		if (r < 0 || cs[r].result != 0)
			atomic_fetch_add(&st_bad, 1);
	}
	return NULL;
}

static void *st_collector(void *a)
{
	(void)a;
	weft_chan_t *open[ST_OUT];
	memcpy(open, st_out, sizeof open);
	size_t n = ST_OUT;
	while (n > 0) {
		long v;
		weft_select_case_t cs[ST_OUT];
		for (size_t i = 0; i < n; i++)
			cs[i] = (weft_select_case_t){open[i], WEFT_SELECT_RECV, &v, 0};
		int r = weft_select(cs, n, WEFT_NEVER);
		if (r < 0) {
			atomic_fetch_add(&st_bad, 1);
			return NULL;
		}
		if (cs[r].result == -EPIPE)
			open[r] = open[--n];
		else
			st_mark(v);
	}
	return NULL;
}

static void *st_main(void *a)
{
	long nsel = (long)(intptr_t)a;
	st_sel *sel = calloc((size_t)nsel, sizeof *sel);
	weft_task_t *tsel = calloc((size_t)nsel, sizeof *tsel);
	weft_task_t send[3], coll[3];
	pthread_t th;
	for (long i = 0; i < nsel; i++) {
		st_init(&sel[i]);
		TCHECK_EQ(weft_spawn_step(&tsel[i], st_step, &sel[i], NULL), 0);
	}
	for (int i = 0; i < 3 && !st_cancel_mode; i++)
		coll[i] = wt_spawn(st_collector, NULL);
	for (long i = 0; i < 3; i++)
		send[i] = wt_spawn(st_sender, (void *)(intptr_t)i);
	pthread_create(&th, NULL, st_sender, (void *)(intptr_t)3);
	if (st_cancel_mode) {
		/* Cancel selectors, one after another, while the values flow; a
		 * replacement takes each one's place once it has ended. */
		long rounds = WT_SIZE3(3000, 1000, 300);
		for (long k = 0; k < rounds; k++) {
			long i = k % nsel;
			TCHECK_EQ(weft_cancel(tsel[i]), 0);
			wt_join(tsel[i]);
			st_init(&sel[i]);
			TCHECK_EQ(weft_spawn_step(&tsel[i], st_step, &sel[i], NULL), 0);
			weft_yield();
		}
	}
	for (int i = 0; i < 3; i++)
		wt_join(send[i]);
	pthread_join(th, NULL);
	for (int i = 0; i < ST_IN; i++)
		TCHECK_EQ(weft_chan_close(st_in[i]), 0);
	for (long i = 0; i < nsel; i++)
		wt_join(tsel[i]);
	for (int i = 0; i < ST_OUT; i++)
		TCHECK_EQ(weft_chan_close(st_out[i]), 0);
	for (int i = 0; i < 3 && !st_cancel_mode; i++)
		wt_join(coll[i]);
	free(sel);
	free(tsel);
	return NULL;
}

static void st_run(bool cancel_mode, long total, long nsel)
{
	st_cancel_mode = cancel_mode;
	st_total = total;
	st_senders = 4;
	st_fed = cancel_mode ? 2 : ST_IN;
	atomic_store(&st_bad, 0);
	st_seen = calloc((size_t)total, 1);
	static const ssize_t in_caps[ST_IN] = {0, 1, 8, WEFT_CHAN_UNBOUNDED}, out_caps[ST_OUT] = {0, 1, 8};
	for (int i = 0; i < ST_IN; i++)
		assert_int_equal(weft_chan_create(&st_in[i], sizeof(long), in_caps[i]), 0);
	for (int i = 0; i < ST_OUT; i++)
		assert_int_equal(weft_chan_create(&st_out[i], sizeof(long), out_caps[i]), 0);
	wt_run(st_main, (void *)(intptr_t)nsel, 0);
	assert_int_equal(atomic_load(&st_bad), 0);
	for (long v = 0; v < total; v++)
		assert_int_equal(st_seen[v], 1);
	for (int i = 0; i < ST_IN; i++) {
		no_waiters(st_in[i]);
		assert_int_equal(weft_chan_release(st_in[i]), 0);
	}
	for (int i = 0; i < ST_OUT; i++) {
		no_waiters(st_out[i]);
		assert_int_equal(weft_chan_release(st_out[i]), 0);
	}
	assert_int_equal(atomic_load(&tcheck_failures), 0);
	free((void *)st_seen);
}

static void test_stress_selectors_conserve(void **state)
{
	(void)state;
	st_run(false, WT_SIZE3(200000, 40000, 10000), WT_SIZE3(64, 32, 16));
}

static void test_stress_cancels_lose_nothing(void **state)
{
	(void)state;
	st_run(true, WT_SIZE3(200000, 40000, 10000), WT_SIZE3(16, 8, 8));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ready_case_completes_at_once),
		cmocka_unit_test(test_registers_then_second_case_fires),
		cmocka_unit_test(test_same_channel_twice),
		cmocka_unit_test(test_closed_channel_case),
		cmocka_unit_test(test_past_deadline_polls),
		cmocka_unit_test(test_deadline_passes_while_registered),
		cmocka_unit_test(test_cancel_while_registered),
		cmocka_unit_test(test_second_registration_is_busy),
		cmocka_unit_test(test_op_reused_and_freed_at_once),
		cmocka_unit_test(test_coroutines_and_threads_block),
		cmocka_unit_test(test_fair),
		cmocka_unit_test(test_stress_selectors_conserve),
		cmocka_unit_test(test_stress_cancels_lose_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
