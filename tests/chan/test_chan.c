/* test_chan.c - channels: every kind, close, deadlines, cancellation, stress. */
#include "wt_sim.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>

static const ssize_t kinds[] = {0, 1, 16, WEFT_CHAN_UNBOUNDED};
#define NKINDS 4

static void test_bad_input(void **state)
{
	(void)state;
	weft_chan_t *c;
	assert_int_equal(weft_chan_create(NULL, 8, 0), -EINVAL);
	assert_int_equal(weft_chan_create(&c, 0, 0), -EINVAL);
	assert_int_equal(weft_chan_create(&c, 8, -2), -EINVAL);
	assert_int_equal(weft_chan_create(&c, (size_t)1 << 20, 1), -EINVAL);
	assert_int_equal(weft_chan_create(&c, 8, 4), 0);
	long v = 1;
	int small = 0;
	assert_int_equal(weft_chan_send(NULL, &v), -EINVAL);
	assert_int_equal(weft_chan_send(c, NULL), -EINVAL);
	assert_int_equal(weft_chan_recv(c, NULL), -EINVAL);
	assert_int_equal(WEFT_CHAN_SEND(c, small), -EINVAL); /* 4 bytes into an 8-byte channel */
	assert_int_equal(WEFT_CHAN_SEND(c, v), 0);
	assert_int_equal(WEFT_CHAN_RECV(c, small), -EINVAL);
	long out = 0;
	assert_int_equal(WEFT_CHAN_RECV(c, out), 0);
	assert_int_equal(out, 1);
	assert_int_equal(weft_chan_cap(c), 4);
	assert_int_equal(weft_chan_elem_size(c), 8);
	assert_int_equal(weft_chan_close(c), 0);
	assert_int_equal(weft_chan_close(c), -EPIPE);
	assert_int_equal(weft_chan_release(c), 0);
	assert_int_equal(weft_chan_release(NULL), -EINVAL);
	weft_select_case_t cs[1] = {{.ch = NULL, .op = WEFT_SELECT_RECV, .buf = &v}};
	assert_int_equal(weft_select(cs, 1, WEFT_NEVER), -EINVAL);
	assert_int_equal(weft_select(cs, 0, WEFT_NEVER), -EINVAL);
	assert_string_equal(weft_err_name(-EPIPE), "EPIPE");
}

/* try_ forms, len and cap, FIFO order, from a plain thread. */
static void test_try_len_cap_order(void **state)
{
	(void)state;
	weft_chan_t *c;
	assert_int_equal(weft_chan_create(&c, sizeof(int), 3), 0);
	int x;
	assert_int_equal(weft_chan_try_recv(c, &x), -EAGAIN);
	for (int i = 0; i < 3; i++)
		assert_int_equal(weft_chan_try_send(c, &i), 0);
	assert_int_equal(weft_chan_try_send(c, &x), -EAGAIN);
	assert_int_equal(weft_chan_len(c), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(weft_chan_try_recv(c, &x), 0);
		assert_int_equal(x, i);
	}
	assert_int_equal(weft_chan_len(c), 0);
	weft_chan_release(c);

	assert_int_equal(weft_chan_create(&c, sizeof(int), WEFT_CHAN_UNBOUNDED), 0);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(weft_chan_send(c, &i), 0); /* never blocks */
	assert_int_equal(weft_chan_len(c), 10000);
	assert_int_equal(weft_chan_cap(c), WEFT_CHAN_UNBOUNDED);
	for (int i = 0; i < 10000; i++) {
		assert_int_equal(weft_chan_recv(c, &x), 0);
		assert_int_equal(x, i);
	}
	weft_chan_release(c);

	assert_int_equal(weft_chan_create(&c, sizeof(int), 0), 0);
	assert_int_equal(weft_chan_try_send(c, &x), -EAGAIN); /* nobody receiving */
	assert_int_equal(weft_chan_len(c), 0);
	assert_int_equal(weft_chan_cap(c), 0);
	weft_chan_release(c);
}

/* Close: buffered values drain, then -EPIPE; sends fail. */
static void test_close_drains_then_fails(void **state)
{
	(void)state;
	for (int k = 1; k < NKINDS; k++) {
		weft_chan_t *c;
		assert_int_equal(weft_chan_create(&c, sizeof(int), kinds[k]), 0);
		int x = 7;
		assert_int_equal(weft_chan_send(c, &x), 0);
		assert_int_equal(weft_chan_close(c), 0);
		assert_true(weft_chan_closed(c));
		assert_int_equal(weft_chan_send(c, &x), -EPIPE);
		assert_int_equal(weft_chan_try_send(c, &x), -EPIPE);
		x = 0;
		assert_int_equal(weft_chan_recv(c, &x), 0);
		assert_int_equal(x, 7);
		assert_int_equal(weft_chan_recv(c, &x), -EPIPE);
		assert_int_equal(weft_chan_try_recv(c, &x), -EPIPE);
		weft_chan_release(c);
	}
}

/* Blocked senders and receivers are woken by close. */
static weft_chan_t *blk;
static _Atomic int blocked_results[4];

static void *blocked_recv(void *a)
{
	int x;
	blocked_results[(intptr_t)a] = weft_chan_recv(blk, &x);
	return NULL;
}

static void *blocked_send(void *a)
{
	int x = 1;
	blocked_results[(intptr_t)a] = weft_chan_send(blk, &x);
	return NULL;
}

static void *close_wakes_main(void *a)
{
	(void)a;
	for (int kind = 0; kind < 2; kind++) {
		weft_chan_create(&blk, sizeof(int), kind ? 1 : 0);
		int fill = 0;
		if (kind)
			weft_chan_send(blk, &fill); /* full: a sender blocks */
		weft_task_t t[2];
		weft_spawn(&t[0], kind ? blocked_send : blocked_recv, (void *)0, NULL);
		weft_spawn(&t[1], blocked_send, (void *)1, NULL);
		weft_sleep(5 * WEFT_MSEC);
		TCHECK_EQ(weft_chan_close(blk), 0);
		weft_join(t[0], NULL);
		weft_join(t[1], NULL);
		if (kind) {
			TCHECK_EQ(blocked_results[0], -EPIPE);
			TCHECK_EQ(blocked_results[1], -EPIPE);
		} else {
			/* Rendezvous: the receiver may have taken the sender's value
			 * before the close (then both succeeded), or both failed. */
			TCHECK(blocked_results[0] == blocked_results[1]);
		}
		weft_chan_release(blk);
	}
	return NULL;
}

static void test_close_wakes_blocked_tasks(void **state)
{
	(void)state;
	wt_run(close_wakes_main, NULL, 2);
}

/* Deadlines and cancellation on blocking calls. */
static weft_chan_t *dl;

static void *recv_forever(void *a)
{
	(void)a;
	int x;
	return (void *)(intptr_t)weft_chan_recv(dl, &x);
}

static void *deadline_main(void *a)
{
	(void)a;
	for (int k = 0; k < NKINDS; k++) {
		weft_chan_create(&dl, sizeof(int), kinds[k]);
		int x = 0;
		weft_time_t t0 = weft_now();
		TCHECK_EQ(weft_chan_recv_until(dl, &x, weft_deadline_in(3 * WEFT_MSEC)), -ETIMEDOUT);
		TCHECK(weft_now() - t0 >= 3 * WEFT_MSEC);
		if (kinds[k] >= 0) {
			for (ssize_t i = 0; i < kinds[k]; i++)
				weft_chan_send(dl, &x);
			TCHECK_EQ(weft_chan_send_until(dl, &x, weft_deadline_in(2 * WEFT_MSEC)), -ETIMEDOUT);
		}
		weft_task_t t;
		weft_chan_t *fresh;
		weft_chan_create(&fresh, sizeof(int), kinds[k]);
		weft_chan_t *old = dl;
		dl = fresh;
		weft_spawn(&t, recv_forever, NULL, NULL);
		weft_sleep(2 * WEFT_MSEC);
		TCHECK_EQ(weft_cancel(t), 0);
		void *r;
		weft_join(t, &r);
		TCHECK_EQ((intptr_t)r, -ECANCELED);
		/* The cancelled receiver left nothing behind: a value sent now stays. */
		if (kinds[k] != 0) {
			TCHECK_EQ(weft_chan_try_send(dl, &x), 0);
			TCHECK_EQ(weft_chan_len(dl), 1);
		}
		TCHECK_EQ(weft_chan_release(fresh), 0);
		TCHECK_EQ(weft_chan_release(old), 0);
	}
	return NULL;
}

static void test_deadlines_and_cancel(void **state)
{
	(void)state;
	wt_run(deadline_main, NULL, 2);
}

/* Deadlines racing hand-overs on a rendezvous channel: senders and
 * receivers all use deadlines of a few microseconds, so waits time out while
 * a partner is completing them. A value whose send reported success must be
 * received exactly once, and one whose send timed out never. (A send or recv
 * waits with one queued node, claimed by being unqueued under the lock: a
 * timeout that finds its node gone must still report the hand-over.) */
#define DR_SENDERS 3
#define DR_PER 20000
static weft_chan_t *dr;
static _Atomic unsigned char dr_sent[DR_SENDERS * DR_PER], dr_got[DR_SENDERS * DR_PER];
static _Atomic long dr_bad;
static long dr_per = DR_PER; /* values per sender (fewer under the sim's seeds) */

static void *dr_send(void *a)
{
	long base = (long)(intptr_t)a * dr_per;
	for (long j = 0; j < dr_per; j++) {
		long v = base + j;
		/* The last send of each sender waits: at least DR_SENDERS
		 * hand-overs happen, however the deadlines fall. */
		weft_time_t until = j == dr_per - 1 ? WEFT_NEVER : weft_deadline_in((j % 7) * 1000);
		int r = weft_chan_send_until(dr, &v, until);
		if (r == 0)
			atomic_store(&dr_sent[v], 1);
		else if (r != -ETIMEDOUT)
			atomic_fetch_add(&dr_bad, 1);
	}
	return NULL;
}

static void *dr_recv(void *a)
{
	(void)a;
	for (long j = 0;; j++) {
		long v;
		int r = weft_chan_recv_until(dr, &v, weft_deadline_in((j % 5) * 1000));
		if (r == -EPIPE)
			return NULL;
		if (r == 0) {
			if (v < 0 || v >= DR_SENDERS * dr_per || atomic_fetch_add(&dr_got[v], 1) != 0)
				atomic_fetch_add(&dr_bad, 1);
		} else if (r != -ETIMEDOUT) {
			atomic_fetch_add(&dr_bad, 1);
		}
	}
}

static void *deadline_race_main(void *a)
{
	(void)a;
	TCHECK_EQ(weft_chan_create(&dr, sizeof(long), 0), 0);
	weft_task_t s[DR_SENDERS], r[3];
	/* One sender is a plain thread; a task under the sim, which only its
	 * own thread may touch. */
	bool sim = weft_runtime_is_sim(weft_runtime_current());
	pthread_t th;
	if (!sim)
		pthread_create(&th, NULL, dr_send, (void *)(intptr_t)(DR_SENDERS - 1));
	for (int i = 0; i < DR_SENDERS - !sim; i++)
		TCHECK_EQ(weft_spawn(&s[i], dr_send, (void *)(intptr_t)i, NULL), 0);
	for (int i = 0; i < 3; i++)
		TCHECK_EQ(weft_spawn(&r[i], dr_recv, NULL, NULL), 0);
	for (int i = 0; i < DR_SENDERS - !sim; i++)
		weft_join(s[i], NULL);
	if (!sim)
		pthread_join(th, NULL);
	weft_chan_close(dr);
	for (int i = 0; i < 3; i++)
		weft_join(r[i], NULL);
	TCHECK_EQ(atomic_load(&dr_bad), 0);
	long sent = 0, mismatched = 0;
	for (long v = 0; v < DR_SENDERS * dr_per; v++) {
		sent += atomic_load(&dr_sent[v]);
		mismatched += atomic_load(&dr_sent[v]) != atomic_load(&dr_got[v]);
	}
	TCHECK_EQ(mismatched, 0);
	TCHECK(sent >= DR_SENDERS); /* the senders' last, undeadlined sends */
	TCHECK_EQ(weft_chan_release(dr), 0);
	return NULL;
}

static void test_deadlines_race_handovers(void **state)
{
	(void)state;
	wt_run(deadline_race_main, NULL, 2);
}

/* Conservation: P producers, C consumers; every value received exactly once.
 * One producer is a plain thread. */
#define P 4
#define C 3
static long per_producer;
static weft_chan_t *cons;
static _Atomic unsigned char *seen;
static _Atomic long received, dupes;

static void produce_range(long p)
{
	for (long j = 0; j < per_producer; j++) {
		long v = p * per_producer + j;
		if (weft_chan_send(cons, &v) != 0)
			atomic_fetch_add(&dupes, 1000000);
	}
}

static void *producer(void *a)
{
	produce_range((long)(intptr_t)a);
	return NULL;
}

static void *consumer(void *a)
{
	(void)a;
	long v;
	while (weft_chan_recv(cons, &v) == 0) {
		if (atomic_fetch_add(&seen[v], 1) != 0)
			atomic_fetch_add(&dupes, 1);
		atomic_fetch_add(&received, 1);
	}
	return NULL;
}

static void *thread_producer(void *a)
{
	produce_range((long)(intptr_t)a);
	return NULL;
}

static void *conserve_main(void *a)
{
	(void)a;
	weft_task_t prod[P], con[C];
	pthread_t th;
	pthread_create(&th, NULL, thread_producer, (void *)(intptr_t)(P - 1));
	for (long p = 0; p < P - 1; p++)
		weft_spawn(&prod[p], producer, (void *)(intptr_t)p, NULL);
	for (int i = 0; i < C; i++)
		weft_spawn(&con[i], consumer, NULL, NULL);
	for (int p = 0; p < P - 1; p++)
		weft_join(prod[p], NULL);
	pthread_join(th, NULL);
	weft_chan_close(cons);
	for (int i = 0; i < C; i++)
		weft_join(con[i], NULL);
	return NULL;
}

static void test_conservation_every_kind(void **state)
{
	(void)state;
	per_producer = WT_SIZE(100000, 5000);
	long total = P * per_producer;
	for (int k = 0; k < NKINDS; k++) {
		seen = calloc((size_t)total, 1);
		atomic_store(&received, 0);
		atomic_store(&dupes, 0);
		assert_int_equal(weft_chan_create(&cons, sizeof(long), kinds[k]), 0);
		wt_run(conserve_main, NULL, 0);
		assert_int_equal(atomic_load(&dupes), 0);
		assert_int_equal(atomic_load(&received), total);
		for (long v = 0; v < total; v++)
			assert_int_equal(seen[v], 1);
		weft_chan_release(cons);
		free((void *)seen);
	}
}

/* Close racing with sends and receives: every successful send is received. */
static _Atomic long sent_ok, recv_ok;
static weft_chan_t *race;

static void *race_sender(void *a)
{
	(void)a;
	long v = 1;
	while (weft_chan_send(race, &v) == 0)
		atomic_fetch_add(&sent_ok, 1);
	return NULL;
}

static void *race_receiver(void *a)
{
	(void)a;
	long v;
	while (weft_chan_recv(race, &v) == 0)
		atomic_fetch_add(&recv_ok, v);
	return NULL;
}

static void *race_main(void *a)
{
	(void)a;
	weft_task_t s[4], r[4];
	for (int i = 0; i < 4; i++) {
		weft_spawn(&s[i], race_sender, NULL, NULL);
		weft_spawn(&r[i], race_receiver, NULL, NULL);
	}
	weft_sleep(3 * WEFT_MSEC);
	weft_chan_close(race);
	for (int i = 0; i < 4; i++) {
		weft_join(s[i], NULL);
		weft_join(r[i], NULL);
	}
	return NULL;
}

static void test_close_races_send_recv(void **state)
{
	(void)state;
	for (int round = 0; round < WT_SIZE(20, 5); round++) {
		for (int k = 0; k < NKINDS; k++) {
			if (kinds[k] < 0)
				continue; /* unbounded senders never block: covered elsewhere */
			atomic_store(&sent_ok, 0);
			atomic_store(&recv_ok, 0);
			assert_int_equal(weft_chan_create(&race, sizeof(long), kinds[k]), 0);
			wt_run(race_main, NULL, 2);
			assert_int_equal(atomic_load(&sent_ok), atomic_load(&recv_ok));
			weft_chan_release(race);
		}
	}
}

/* A stackless task receives and sends with the _step forms. */
typedef struct {
	weft_chan_t *in, *out;
	weft_op_t op;
	long v, sum;
	int phase;
} relay_state;

static weft_step_t relay(void *s_, void **res)
{
	relay_state *s = s_;
	for (;;) {
		int e;
		if (s->phase == 0) {
			e = weft_chan_recv_step(s->in, &s->v, WEFT_NEVER, &s->op);
			if (e == -EINPROGRESS)
				return WEFT_STEP_PARKED;
			if (e == -EPIPE) {
				*res = (void *)(intptr_t)s->sum;
				return WEFT_STEP_DONE;
			}
			s->sum += s->v;
			s->v *= 2;
			s->phase = 1;
		}
		e = weft_chan_send_step(s->out, &s->v, WEFT_NEVER, &s->op);
		if (e == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		TCHECK_EQ(e, 0);
		s->phase = 0;
	}
}

static void *relay_main(void *a)
{
	(void)a;
	for (int k = 0; k < NKINDS; k++) {
		relay_state s = {0};
		weft_chan_create(&s.in, sizeof(long), kinds[k]);
		weft_chan_create(&s.out, sizeof(long), kinds[k]);
		weft_task_t t;
		weft_spawn_step(&t, relay, &s, NULL);
		for (long i = 1; i <= 1000; i++) {
			long back;
			TCHECK_EQ(weft_chan_send(s.in, &i), 0);
			TCHECK_EQ(weft_chan_recv(s.out, &back), 0);
			TCHECK_EQ(back, 2 * i);
		}
		weft_chan_close(s.in);
		void *r;
		weft_join(t, &r);
		TCHECK_EQ((intptr_t)r, 1000 * 1001 / 2);
		weft_chan_release(s.in);
		weft_chan_release(s.out);
	}
	return NULL;
}

static void test_stackless_step_forms(void **state)
{
	(void)state;
	wt_run(relay_main, NULL, 2);
}

/* The step forms' deadlines and cancellation, on every kind: a past
 * deadline polls (-ETIMEDOUT, nothing registered); one that passes while
 * registered gives -ETIMEDOUT, a cancellation -ECANCELED, and nothing was
 * sent or taken either way. In a coroutine the step form blocks. */
typedef struct {
	weft_chan_t *ch;
	weft_op_t op;
	long v;
	int phase, result;
	bool send, timed;
	weft_time_t dl;
	_Atomic int registered;
} dl_state;

static int dl_call(dl_state *s, weft_time_t deadline)
{
	return s->send ? weft_chan_send_step(s->ch, &s->v, deadline, &s->op)
		       : weft_chan_recv_step(s->ch, &s->v, deadline, &s->op);
}

static weft_step_t dl_step(void *s_, void **res)
{
	dl_state *s = s_;
	*res = NULL;
	if (s->phase++ == 0) {
		TCHECK_EQ(dl_call(s, weft_now() - 1), -ETIMEDOUT);
		s->dl = s->timed ? weft_deadline_in(2 * WEFT_MSEC) : WEFT_NEVER;
	}
	int e = dl_call(s, s->dl);
	if (e == -EINPROGRESS) {
		atomic_store(&s->registered, 1);
		return WEFT_STEP_PARKED;
	}
	s->result = e;
	return WEFT_STEP_DONE;
}

static void *dl_main(void *a)
{
	(void)a;
	for (int k = 0; k < NKINDS; k++) {
		for (int send = 0; send < 2; send++) {
			if (send && kinds[k] == WEFT_CHAN_UNBOUNDED)
				continue; /* its sends never wait */
			weft_chan_t *ch;
			weft_chan_create(&ch, sizeof(long), kinds[k]);
			long v = 5;
			for (ssize_t i = 0; send && i < weft_chan_cap(ch); i++)
				TCHECK_EQ(weft_chan_send(ch, &v), 0); /* full: a send waits */
			ssize_t len = weft_chan_len(ch);
			dl_state t1 = {.ch = ch, .send = send, .timed = true}, t2 = {.ch = ch, .send = send};
			weft_task_t a1, a2;
			weft_spawn_step(&a1, dl_step, &t1, NULL);
			wt_join(a1);
			TCHECK_EQ(t1.result, -ETIMEDOUT);
			weft_spawn_step(&a2, dl_step, &t2, NULL);
			WT_WAIT_UNTIL(atomic_load(&t2.registered));
			TCHECK_EQ(weft_cancel(a2), 0);
			wt_join(a2);
			TCHECK_EQ(t2.result, -ECANCELED);
			TCHECK_EQ(weft_chan_len(ch), len); /* nothing sent or taken */
			dl_state mine = {.ch = ch, .send = send};
			TCHECK_EQ(dl_call(&mine, weft_deadline_in(WEFT_MSEC)), -ETIMEDOUT); /* blocks here */
			while (weft_chan_try_recv(ch, &v) == 0)
				;
			TCHECK_EQ(weft_chan_release(ch), 0);
		}
	}
	return NULL;
}

static void test_step_deadlines_and_cancel(void **state)
{
	(void)state;
	wt_run(dl_main, NULL, 2);
}

/* ------------------------------------------------------------ hand-over */

/* A waiter of a bounded channel that a change frees wakes with its
 * operation done: a receive that frees a slot puts the waiting sender's
 * element in it, and a send that publishes gives its element to the
 * waiting receiver - before the woken task runs. The only worker is held
 * busy by a spinning coroutine, so the woken task provably has not run
 * when the plain thread looks. */
typedef struct {
	weft_chan_t *ch;
	bool send;
	long v;
	_Atomic bool registered;
	weft_op_t op;
} ho_state;

static weft_step_t ho_step(void *a, void **res)
{
	ho_state *s = a;
	int e = s->send ? weft_chan_send_step(s->ch, &s->v, WEFT_NEVER, &s->op)
			: weft_chan_recv_step(s->ch, &s->v, WEFT_NEVER, &s->op);
	if (e == -EINPROGRESS) {
		atomic_store(&s->registered, true);
		return WEFT_STEP_PARKED;
	}
	*res = (void *)(intptr_t)e;
	return WEFT_STEP_DONE;
}

static _Atomic int ho_hold; /* 1: the blocker holds the worker; 2: let go */

static void *ho_blocker(void *a)
{
	(void)a;
	atomic_store(&ho_hold, 1);
	while (atomic_load(&ho_hold) != 2)
		sched_yield(); /* the OS thread; the worker stays ours */
	return NULL;
}

static void test_bounded_hands_over_to_waiters(void **state)
{
	(void)state;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 1, .no_monitor = true}), 0);
	for (int side = 0; side < 2; side++) {
		bool send = side == 0;
		weft_chan_t *ch;
		assert_int_equal(weft_chan_create(&ch, sizeof(long), 1), 0);
		long x = 1;
		if (send)
			assert_int_equal(weft_chan_try_send(ch, &x), 0); /* full */
		ho_state s = {.ch = ch, .send = send, .v = send ? 2 : 0};
		weft_task_t t, b;
		assert_int_equal(weft_spawn_step(&t, ho_step, &s, NULL), 0);
		WT_WAIT_UNTIL(atomic_load(&s.registered));
		atomic_store(&ho_hold, 0);
		assert_int_equal(weft_spawn(&b, ho_blocker, NULL, NULL), 0);
		WT_WAIT_UNTIL(atomic_load(&ho_hold) == 1);
		if (send) {
			assert_int_equal(weft_chan_try_recv(ch, &x), 0);
			assert_int_equal(x, 1);
			/* The sender's element took the freed slot. */
			assert_int_equal(weft_chan_len(ch), 1);
			assert_int_equal(weft_chan_try_recv(ch, &x), 0);
			assert_int_equal(x, 2);
		} else {
			x = 7;
			assert_int_equal(weft_chan_try_send(ch, &x), 0);
			/* The receiver has it: the ring is empty again. */
			assert_int_equal(weft_chan_len(ch), 0);
			x = 8;
			assert_int_equal(weft_chan_try_send(ch, &x), 0);
		}
		atomic_store(&ho_hold, 2);
		assert_int_equal(weft_join(b, NULL), 0);
		void *r;
		assert_int_equal(weft_join(t, &r), 0);
		assert_int_equal((intptr_t)r, 0);
		if (!send) {
			assert_int_equal(s.v, 7);
			assert_int_equal(weft_chan_try_recv(ch, &x), 0);
			assert_int_equal(x, 8);
		}
		/* Nothing duplicated. */
		assert_int_equal(weft_chan_try_recv(ch, &x), -EAGAIN);
		assert_int_equal(weft_chan_release(ch), 0);
	}
	assert_int_equal(weft_runtime_stop(rt), 0);
}

/* ------------------------------------------------------------ under the simulation */

/* The twins: the same bodies, one task at a time in an order drawn from
 * each seed (tests/wt_sim.h). */
static void test_close_wakes_blocked_tasks_sim(void **state)
{
	(void)state;
	wt_sim_sweep("chan/close_wakes_blocked_tasks", close_wakes_main, NULL, NULL, WT_SIM_SEEDS);
}

static void test_deadlines_and_cancel_sim(void **state)
{
	(void)state;
	wt_sim_sweep("chan/deadlines_and_cancel", deadline_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *dr_sim_main(void *a)
{
	memset((void *)dr_sent, 0, sizeof dr_sent);
	memset((void *)dr_got, 0, sizeof dr_got);
	atomic_store(&dr_bad, 0);
	return deadline_race_main(a);
}

static void test_deadlines_race_handovers_sim(void **state)
{
	(void)state;
	dr_per = 60;
	wt_sim_sweep("chan/deadlines_race_handovers", dr_sim_main, NULL, NULL, WT_SIM_SEEDS);
	dr_per = DR_PER;
}

static void *race_sim_main(void *a)
{
	atomic_store(&sent_ok, 0);
	atomic_store(&recv_ok, 0);
	TCHECK_EQ(weft_chan_create(&race, sizeof(long), wt_sim_seed_index % 2 ? 4 : 0), 0);
	race_main(a);
	weft_chan_release(race);
	return NULL;
}

static void race_sim_check(void *a)
{
	(void)a;
	TCHECK_EQ(atomic_load(&sent_ok), atomic_load(&recv_ok));
}

static void test_close_races_send_recv_sim(void **state)
{
	(void)state;
	wt_sim_sweep("chan/close_races_send_recv", race_sim_main, race_sim_check, NULL, WT_SIM_SEEDS);
}

static void test_stackless_step_forms_sim(void **state)
{
	(void)state;
	wt_sim_sweep("chan/stackless_step_forms", relay_main, NULL, NULL, WT_SIZE3(30, 10, 2));
}

static void test_step_deadlines_and_cancel_sim(void **state)
{
	(void)state;
	wt_sim_sweep("chan/step_deadlines_and_cancel", dl_main, NULL, NULL, WT_SIM_SEEDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_try_len_cap_order),
		cmocka_unit_test(test_close_drains_then_fails),
		cmocka_unit_test(test_close_wakes_blocked_tasks),
		cmocka_unit_test(test_deadlines_and_cancel),
		cmocka_unit_test(test_deadlines_race_handovers),
		cmocka_unit_test(test_conservation_every_kind),
		cmocka_unit_test(test_close_races_send_recv),
		cmocka_unit_test(test_stackless_step_forms),
		cmocka_unit_test(test_step_deadlines_and_cancel),
		cmocka_unit_test(test_bounded_hands_over_to_waiters),
		cmocka_unit_test(test_close_wakes_blocked_tasks_sim),
		cmocka_unit_test(test_deadlines_and_cancel_sim),
		cmocka_unit_test(test_deadlines_race_handovers_sim),
		cmocka_unit_test(test_close_races_send_recv_sim),
		cmocka_unit_test(test_stackless_step_forms_sim),
		cmocka_unit_test(test_step_deadlines_and_cancel_sim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
