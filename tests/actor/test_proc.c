/* test_proc.c - processes and mailboxes: spawn, send and receive, order
 * between pairs, selective receive that never examines a message twice,
 * the reference mark, bounded mailboxes, stackless processes, the
 * registry, waiting for a process. Messages examined are counted by the
 * library (weft_proc_info.examined): the cost tests assert counts, never
 * times. */
#include "wt_actor.h"

#include <pthread.h>

/* ------------------------------------------------------------ echo */

static void *echo(void *a)
{
	(void)a;
	for (;;) {
		weft_msg_t *m;
		if (weft_receive(&m, NULL) != 0)
			return NULL;
		int64_t v = wt_msg_i(m);
		weft_pid_t from = m->from;
		weft_msg_destroy(m);
		if (v < 0)
			return NULL;
		TCHECK_EQ(weft_send_ref(from, 0, &v, sizeof v), 0);
	}
}

static void *echo_client(void *a)
{
	(void)a;
	weft_pid_t e;
	TCHECK_EQ(weft_proc_spawn(&e, echo, NULL, NULL), 0);
	TCHECK(e != 0 && e != weft_proc_self());
	TCHECK(weft_proc_alive(e));
	for (int64_t i = 0; i < 1000; i++) {
		TCHECK_EQ(wt_send_i(e, i), 0);
		weft_msg_t *m;
		TCHECK_EQ(weft_receive(&m, NULL), 0);
		TCHECK_EQ(wt_msg_i(m), i);
		TCHECK_EQ(m->from, e);
		TCHECK_EQ(m->kind, WEFT_MSG_DATA);
		weft_msg_destroy(m);
	}
	TCHECK_EQ(wt_send_i(e, -1), 0);
	TCHECK_EQ(weft_proc_wait(e, wt_hang_deadline()), 0);
	TCHECK(!weft_proc_alive(e));
	/* A dead pid: sending is not an error, the message is dropped. */
	TCHECK_EQ(wt_send_i(e, 5), 0);
	TCHECK_EQ(weft_proc_wait(e, 0), 0);
	return NULL;
}

static void test_echo(void **state)
{
	(void)state;
	wt_proc_run(echo_client, NULL, 2);
}

/* ------------------------------------------------------------ order */

#define SENDERS 8
#define PER WT_SIZE(5000, 500)

struct order {
	weft_pid_t to;
	int64_t id;
};

static void *order_sender(void *a)
{
	struct order *o = a;
	for (int64_t i = 0; i < PER; i++)
		TCHECK_EQ(wt_send_i(o->to, o->id << 32 | i), 0);
	return NULL;
}

static void *order_receiver(void *a)
{
	(void)a;
	struct order o[SENDERS];
	for (int s = 0; s < SENDERS; s++) {
		o[s] = (struct order){weft_proc_self(), s};
		TCHECK_EQ(weft_proc_spawn(NULL, order_sender, &o[s], NULL), 0);
	}
	int64_t next[SENDERS] = {0};
	for (long n = 0; n < (long)SENDERS * PER; n++) {
		int64_t v = wt_recv_i();
		int s = (int)(v >> 32);
		TCHECK(s >= 0 && s < SENDERS);
		if (s < 0 || s >= SENDERS)
			return NULL;
		TCHECK_EQ(v & 0xffffffff, next[s]); /* in order, nothing lost or doubled */
		next[s]++;
	}
	weft_msg_t *m;
	TCHECK_EQ(weft_receive_until(&m, NULL, 0), -ETIMEDOUT); /* nothing more */
	return NULL;
}

static void test_order(void **state)
{
	(void)state;
	wt_proc_run(order_receiver, NULL, 2);
}

/* The same from plain threads: any thread may send. */
struct thread_send {
	weft_pid_t to;
	int id;
};

static void *thread_sender(void *a)
{
	struct thread_send *t = a;
	for (int64_t i = 0; i < PER; i++)
		TCHECK_EQ(wt_send_i(t->to, (int64_t)t->id << 32 | i), 0);
	return NULL;
}

static void *thread_order_receiver(void *a)
{
	(void)a;
	pthread_t th[2];
	struct thread_send ts[2] = {{weft_proc_self(), 0}, {weft_proc_self(), 1}};
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, thread_sender, &ts[i]);
	int64_t next[2] = {0, 0};
	for (long n = 0; n < 2L * PER; n++) {
		weft_msg_t *m;
		TCHECK_EQ(weft_receive_until(&m, NULL, wt_hang_deadline()), 0);
		TCHECK_EQ(m->from, 0); /* not a process */
		int64_t v = wt_msg_i(m);
		weft_msg_destroy(m);
		int s = (int)(v >> 32);
		TCHECK(s == 0 || s == 1);
		if (s != 0 && s != 1)
			break;
		TCHECK_EQ(v & 0xffffffff, next[s]);
		next[s]++;
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	return NULL;
}

static void test_order_threads(void **state)
{
	(void)state;
	wt_proc_run(thread_order_receiver, NULL, 2);
}

/* ------------------------------------------------------------ selective receive */

#define NOISE WT_SIZE(20000, 2000)
#define LATE 50

struct sel {
	weft_pid_t receiver;
	_Atomic int done;
};

static void *sel_receiver(void *a)
{
	struct sel *s = a;
	int64_t want = -7;
	weft_match_t mt = {wt_match_i, &want, 0};
	weft_msg_t *m;
	TCHECK_EQ(weft_receive_until(&m, &mt, wt_hang_deadline()), 0);
	TCHECK_EQ(wt_msg_i(m), -7);
	weft_msg_destroy(m);
	/* The noise is still there, in order. */
	for (int64_t i = 0; i < NOISE + LATE; i++)
		TCHECK_EQ(wt_recv_i(), i);
	atomic_store(&s->done, 1);
	return NULL;
}

static void *sel_driver(void *a)
{
	struct sel *s = a;
	weft_pid_t r;
	/* Noise first: the receiver examines each message as it comes
	 * (whenever it runs) and matches none until -7. */
	TCHECK_EQ(weft_proc_spawn(&r, sel_receiver, s, NULL), 0);
	for (int64_t i = 0; i < NOISE; i++)
		TCHECK_EQ(wt_send_i(r, i), 0);
	/* Then LATE more, one at a time, each once the receiver waits again:
	 * each new message costs its receive one examination. */
	for (int64_t i = NOISE; i < NOISE + LATE; i++) {
		wt_until_receiving(r);
		TCHECK_EQ(wt_send_i(r, i), 0);
	}
	wt_until_receiving(r);
	uint64_t before_match = wt_examined(r);
	TCHECK_EQ(before_match, NOISE + LATE); /* each message examined once, none twice */
	TCHECK_EQ(wt_send_i(r, -7), 0);
	TCHECK_EQ(weft_proc_wait(r, wt_hang_deadline()), 0);
	TCHECK_EQ(atomic_load(&s->done), 1);
	return NULL;
}

static void test_selective_examines_once(void **state)
{
	(void)state;
	struct sel s = {0, 0};
	wt_proc_run(sel_driver, &s, 2);
}

/* The reference mark: a request/reply after D messages that do not match
 * examines only what came after the reference was made. */
static void *ref_server(void *a)
{
	(void)a;
	for (;;) {
		weft_msg_t *m;
		if (weft_receive(&m, NULL) != 0)
			return NULL;
		weft_ref_t ref;
		TCHECK_EQ(m->len, sizeof ref);
		memcpy(&ref, m->data, sizeof ref);
		weft_pid_t from = m->from;
		weft_msg_destroy(m);
		if (ref == 0)
			return NULL;
		TCHECK_EQ(weft_send_ref(from, ref, "ok", 2), 0);
	}
}

static void *ref_client(void *a)
{
	(void)a;
	weft_pid_t srv, me = weft_proc_self();
	TCHECK_EQ(weft_proc_spawn(&srv, ref_server, NULL, NULL), 0);
	for (int64_t i = 0; i < NOISE; i++) /* D messages nobody will match */
		TCHECK_EQ(wt_send_i(me, i), 0);
	for (int round = 0; round < 100; round++) {
		uint64_t before = wt_examined(me);
		weft_ref_t ref = weft_make_ref();
		TCHECK(ref != 0);
		TCHECK_EQ(weft_send(srv, &ref, sizeof ref), 0);
		weft_msg_t *m;
		TCHECK_EQ(weft_receive_ref(&m, ref, wt_hang_deadline()), 0);
		TCHECK_EQ(m->ref, ref);
		TCHECK_EQ(m->len, 2);
		TCHECK_EQ(m->from, srv);
		weft_msg_destroy(m);
		TCHECK_EQ(wt_examined(me) - before, 1); /* the reply alone */
	}
	weft_ref_t zero = 0;
	TCHECK_EQ(weft_send(srv, &zero, sizeof zero), 0);
	for (int64_t i = 0; i < NOISE; i++) /* the noise is intact */
		TCHECK_EQ(wt_recv_i(), i);
	return NULL;
}

static void test_ref_mark(void **state)
{
	(void)state;
	wt_proc_run(ref_client, NULL, 2);
}

/* ------------------------------------------------------------ bounded */

#define BOUND 4

struct bnd {
	weft_pid_t r;
	_Atomic int go;
	_Atomic long sent;
};

static void *bnd_receiver(void *a)
{
	struct bnd *b = a;
	while (!atomic_load(&b->go))
		weft_sleep(WEFT_MSEC / 4);
	for (int64_t i = 0; i < 100; i++)
		TCHECK_EQ(wt_recv_i(), i);
	return NULL;
}

static void *bnd_sender(void *a)
{
	struct bnd *b = a;
	for (int64_t i = BOUND + 1; i < 100; i++) {
		TCHECK_EQ(wt_send_i(b->r, i), 0);
		atomic_fetch_add(&b->sent, 1);
	}
	return NULL;
}

static void *bnd_main(void *a)
{
	struct bnd *b = a;
	weft_proc_opts_t o = {.size = sizeof o, .bounded = true, .mailbox_bound = BOUND};
	TCHECK_EQ(weft_proc_spawn(&b->r, bnd_receiver, b, &o), 0);
	for (int64_t i = 0; i < BOUND; i++)
		TCHECK_EQ(weft_try_send(b->r, &i, sizeof i), 0);
	int64_t x = BOUND;
	TCHECK_EQ(weft_try_send(b->r, &x, sizeof x), -EAGAIN);
	TCHECK_EQ(weft_send_until(b->r, &x, sizeof x, weft_deadline_in(WEFT_MSEC)), -ETIMEDOUT);
	weft_proc_info_t in = {.size = sizeof in};
	TCHECK_EQ(weft_proc_info(b->r, &in), 0);
	TCHECK_EQ(in.mailbox_len, BOUND);
	/* Released, the receiver makes room: a blocking send waits for it
	 * (or finds it), then a second sender goes on behind, in order. */
	atomic_store(&b->go, 1);
	TCHECK_EQ(weft_send(b->r, &x, sizeof x), 0);
	weft_pid_t s;
	TCHECK_EQ(weft_proc_spawn(&s, bnd_sender, b, NULL), 0);
	TCHECK_EQ(weft_proc_wait(b->r, wt_hang_deadline()), 0);
	TCHECK_EQ(atomic_load(&b->sent), 100 - BOUND - 1);
	return NULL;
}

static void test_bounded(void **state)
{
	(void)state;
	struct bnd b = {0};
	wt_proc_run(bnd_main, &b, 2);
}

/* ------------------------------------------------------------ stackless */

struct sl {
	weft_op_t op;
	int64_t n;
	weft_pid_t peer;
	weft_msg_t *m;
	int64_t out;
};

/* A stackless echo: receive, send back, until -1. */
static weft_step_t sl_echo(void *a, void **res)
{
	struct sl *s = a;
	for (;;) {
		int r = weft_receive_step(&s->m, NULL, WEFT_NEVER, &s->op);
		if (r == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		TCHECK_EQ(r, 0);
		if (r) {
			*res = NULL;
			return WEFT_STEP_DONE;
		}
		int64_t v = wt_msg_i(s->m);
		weft_pid_t from = s->m->from;
		weft_msg_destroy(s->m);
		if (v < 0) {
			*res = NULL;
			return WEFT_STEP_DONE;
		}
		TCHECK_EQ(wt_send_i(from, v * 2), 0);
		s->n++;
	}
}

static void *sl_client(void *a)
{
	(void)a;
	struct sl s = {WEFT_OP_INIT, 0, 0, NULL, 0};
	weft_pid_t e;
	TCHECK_EQ(weft_proc_spawn_step(&e, sl_echo, &s, NULL), 0);
	for (int64_t i = 0; i < 1000; i++) {
		TCHECK_EQ(wt_send_i(e, i), 0);
		TCHECK_EQ(wt_recv_i(), 2 * i);
	}
	TCHECK_EQ(wt_send_i(e, -1), 0);
	TCHECK_EQ(weft_proc_wait(e, wt_hang_deadline()), 0);
	TCHECK_EQ(s.n, 1000);
	return NULL;
}

static void test_stackless(void **state)
{
	(void)state;
	wt_proc_run(sl_client, NULL, 2);
}

/* A stackless sender into a bounded mailbox, and a stackless waiter. */
struct slsend {
	weft_op_t op;
	weft_pid_t to;
	int64_t i;
};

static weft_step_t sl_sender(void *a, void **res)
{
	struct slsend *s = a;
	while (s->i < 200) {
		int r = weft_send_step(s->to, &s->i, sizeof s->i, WEFT_NEVER, &s->op);
		if (r == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		TCHECK_EQ(r, 0);
		s->i++;
	}
	*res = NULL;
	return WEFT_STEP_DONE;
}

static void *slow_receiver(void *a)
{
	(void)a;
	for (int64_t i = 0; i < 200; i++) {
		TCHECK_EQ(wt_recv_i(), i);
		if (i % 16 == 0)
			weft_sleep(WEFT_MSEC / 10);
	}
	return NULL;
}

static void *sl_bounded_main(void *a)
{
	(void)a;
	weft_pid_t r;
	weft_proc_opts_t o = {.size = sizeof o, .bounded = true, .mailbox_bound = 2};
	TCHECK_EQ(weft_proc_spawn(&r, slow_receiver, NULL, &o), 0);
	struct slsend s = {WEFT_OP_INIT, r, 0};
	weft_pid_t sp;
	TCHECK_EQ(weft_proc_spawn_step(&sp, sl_sender, &s, NULL), 0);
	TCHECK_EQ(weft_proc_wait(r, wt_hang_deadline()), 0);
	TCHECK_EQ(weft_proc_wait(sp, wt_hang_deadline()), 0);
	TCHECK_EQ(s.i, 200);
	return NULL;
}

static void test_stackless_bounded(void **state)
{
	(void)state;
	wt_proc_run(sl_bounded_main, NULL, 2);
}

/* ------------------------------------------------------------ registry */

static void *named(void *a)
{
	(void)a;
	TCHECK_EQ(wt_recv_i(), 42);
	return NULL;
}

static void *reg_main(void *a)
{
	(void)a;
	weft_pid_t p, q;
	weft_proc_opts_t o = {.size = sizeof o, .name = "svc"};
	TCHECK_EQ(weft_proc_spawn(&p, named, NULL, &o), 0);
	TCHECK_EQ(weft_whereis("svc"), p);
	TCHECK_EQ(weft_proc_spawn(&q, named, NULL, &o), -EEXIST);
	TCHECK_EQ(weft_register("svc", weft_proc_self()), -EEXIST);
	TCHECK_EQ(weft_register("other", p), -EBUSY); /* one name per process */
	weft_proc_info_t in = {.size = sizeof in};
	TCHECK_EQ(weft_proc_info(p, &in), 0);
	TCHECK(strcmp(in.name, "svc") == 0);
	TCHECK_EQ(weft_send_name("svc", &(int64_t){42}, sizeof(int64_t)), 0);
	TCHECK_EQ(weft_proc_wait(p, wt_hang_deadline()), 0);
	TCHECK_EQ(weft_whereis("svc"), 0); /* freed with its process */
	TCHECK_EQ(weft_send_name("svc", "x", 1), -ESRCH);
	TCHECK_EQ(weft_register("me", weft_proc_self()), 0);
	TCHECK_EQ(weft_whereis("me"), weft_proc_self());
	TCHECK_EQ(weft_unregister("me"), 0);
	TCHECK_EQ(weft_unregister("me"), -ESRCH);
	TCHECK_EQ(weft_whereis("me"), 0);
	TCHECK_EQ(weft_register("me", weft_proc_self()), 0); /* again, after unregister */
	return NULL;
}

static void test_registry(void **state)
{
	(void)state;
	wt_proc_run(reg_main, NULL, 2);
}

/* ------------------------------------------------------------ wait, stats */

static void *waits_for_word(void *a)
{
	(void)a;
	TCHECK_EQ(wt_recv_i(), 1);
	return NULL;
}

static void test_wait_from_thread(void **state)
{
	(void)state;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	weft_pid_t p;
	assert_int_equal(weft_proc_spawn(&p, waits_for_word, NULL, &(weft_proc_opts_t){.runtime = rt}), 0);
	assert_int_equal(weft_proc_wait(p, weft_deadline_in(WEFT_MSEC)), -ETIMEDOUT);
	assert_int_equal(wt_send_i(p, 1), 0);
	assert_int_equal(weft_proc_wait(p, wt_hang_deadline()), 0);
	assert_int_equal(weft_proc_wait(p, WEFT_NEVER), 0);
	weft_actor_stats_t st = {.size = sizeof st};
	assert_int_equal(weft_actor_stats(rt, &st), 0);
	assert_int_equal(st.spawned, 1);
	assert_int_equal(st.live, 0);
	assert_int_equal(st.received, 1);
	assert_int_equal(st.exits_normal, 1);
	assert_int_equal(weft_runtime_stop(rt), 0);
	/* A stopped runtime's pid: as a dead process. */
	assert_int_equal(wt_send_i(p, 1), 0);
	assert_false(weft_proc_alive(p));
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* ------------------------------------------------- a wait sees the end */

/* Each of N processes, registered under a name, ends at once; the waiter
 * (the other worker's, or this one's) waits for each in turn: when a wait
 * returns, the end's effects are visible - the exit counted, the name free.
 * (A wait once returned as soon as the process was marked ended, before
 * its counts and name had changed.) */
#define SEEN WT_SIZE(2000, 300)

static void *ends_at_once(void *a)
{
	(void)a;
	return NULL;
}

static void *waits_and_checks(void *a)
{
	(void)a;
	weft_actor_stats_t st0 = {.size = sizeof st0};
	TCHECK_EQ(weft_actor_stats(NULL, &st0), 0);
	enum { BATCH = 100 };
	for (int b = 0; b < SEEN / BATCH; b++) {
		weft_pid_t p[BATCH];
		char name[BATCH][32];
		for (int i = 0; i < BATCH; i++) {
			snprintf(name[i], sizeof name[i], "seen%d", i);
			TCHECK_EQ(weft_proc_spawn(&p[i], ends_at_once, NULL, &(weft_proc_opts_t){.name = name[i]}), 0);
		}
		/* They end on both workers while this one waits in turn. */
		for (int i = 0; i < BATCH; i++) {
			TCHECK_EQ(weft_proc_wait(p[i], wt_hang_deadline()), 0);
			weft_actor_stats_t st = {.size = sizeof st};
			TCHECK_EQ(weft_actor_stats(NULL, &st), 0);
			TCHECK(st.exits_normal >= st0.exits_normal + (uint64_t)(b * BATCH + i) + 1);
			TCHECK_EQ(weft_whereis(name[i]), 0);
		}
	}
	return NULL;
}

static void test_wait_sees_end(void **state)
{
	(void)state;
	wt_proc_run(waits_and_checks, NULL, 2);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* ------------------------------------------------------------ pid reuse */

/* One slot, spawned and ended again and again (the freed slot is the next
 * one given out): each pid is new, a stale one reaches nothing, and past
 * 2^18 incarnations the slot retires instead of wrapping. */
#define CYCLES WT_SIZE3(270000, 20000, 3000)

static void *ends(void *a)
{
	(void)a;
	return NULL;
}

static void *reuse_main(void *a)
{
	(void)a;
	weft_pid_t first = 0, prev = 0;
	long moved = 0;
	for (long i = 0; i < CYCLES; i++) {
		weft_pid_t p;
		TCHECK_EQ(weft_proc_spawn(&p, ends, NULL, NULL), 0);
		TCHECK_EQ(weft_proc_wait(p, wt_hang_deadline()), 0);
		if (i == 0)
			first = p;
		else if (p == first || p == prev) {
			TCHECK(0); /* a pid given out twice */
			break;
		}
		if ((p & 0x3fffff) != (first & 0x3fffff))
			moved++;
		prev = p;
	}
	TCHECK(!weft_proc_alive(first));
	TCHECK_EQ(wt_send_i(first, 1), 0); /* dropped, reaches no one */
	if (CYCLES > (1L << 18))
		TCHECK(moved > 0); /* the first slot retired */
	return NULL;
}

static void test_pid_reuse(void **state)
{
	(void)state;
	wt_run(reuse_main, NULL, 1);
}

/* A spawn that fails once its name is registered (a bad stack size is
 * found by weft_spawn) still ends the process as a death: a monitor made
 * through the name in that window would hear of it. Here: the error comes
 * back, the name is free, and the pid names no process. */
static void *spawn_fails_main(void *a)
{
	(void)a;
	weft_pid_t p = 0;
	weft_proc_opts_t o = {.size = sizeof o, .name = "fails", .stack_size = 1};
	TCHECK_EQ(weft_proc_spawn(&p, ends, NULL, &o), -EINVAL);
	TCHECK_EQ(weft_whereis("fails"), 0);
	weft_actor_stats_t st = {.size = sizeof st};
	TCHECK_EQ(weft_actor_stats(NULL, &st), 0);
	TCHECK_EQ(st.live, 1); /* this process alone */
	TCHECK_EQ(st.exits_other, 1);
	return NULL;
}

static void test_spawn_fails_late(void **state)
{
	(void)state;
	wt_proc_run(spawn_fails_main, NULL, 2);
}

/* ------------------------------------------------------------ dump */

static void *waiter_named(void *a)
{
	(void)a;
	weft_msg_t *m;
	(void)weft_receive(&m, NULL); /* until told to end */
	return NULL;
}

static void *dump_check(void *a)
{
	(void)a;
	weft_pid_t p;
	TCHECK_EQ(weft_proc_spawn(&p, waiter_named, NULL, &(weft_proc_opts_t){.name = "dumped", .link = true}), 0);
	wt_until_receiving(p);
	FILE *f = tmpfile();
	TCHECK(f != NULL);
	if (!f)
		return NULL;
	TCHECK(weft_task_dump(NULL, fileno(f)) >= 2);
	TCHECK_EQ(weft_actor_dump(NULL, fileno(f)), 0);
	char buf[8192] = {0};
	rewind(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	TCHECK(n > 0);
	char want[128];
	snprintf(want, sizeof want, "proc %#llx", (unsigned long long)p);
	char *at = strstr(buf, want);
	TCHECK(at != NULL);
	if (at) {
		TCHECK(strstr(at, "'dumped' mailbox 0 links 1") != NULL);
		TCHECK(strstr(at, "waits: receive") != NULL);
	}
	TCHECK(strstr(at ? at + 1 : buf, want) != NULL); /* once in each dump */
	TCHECK_EQ(weft_proc_signal(p, WEFT_EXIT_SHUTDOWN), 0);
	return NULL;
}

static void test_dump(void **state)
{
	(void)state;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	weft_pid_t p;
	assert_int_equal(weft_proc_spawn(&p, dump_check, NULL, &(weft_proc_opts_t){.runtime = rt, .trap_exits = true}),
			 0);
	assert_int_equal(weft_proc_wait(p, wt_hang_deadline()), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* ------------------------------------------------------------ sim */

static void *sim_main(void *a)
{
	struct wt_proc_call c = {order_receiver, a, {0}};
	return wt_proc_main(&c);
}

static void test_order_sim(void **state)
{
	(void)state;
	wt_sim_sweep("actor/order", sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *sim_sel_main(void *a)
{
	struct wt_proc_call c = {ref_client, a, {0}};
	return wt_proc_main(&c);
}

static void test_ref_mark_sim(void **state)
{
	(void)state;
	wt_sim_sweep("actor/ref_mark", sim_sel_main, NULL, NULL, WT_SIZE3(20, 5, 2));
}

static void *sim_bnd_main(void *a)
{
	struct wt_proc_call c = {sl_bounded_main, a, {0}};
	return wt_proc_main(&c);
}

static void test_stackless_bounded_sim(void **state)
{
	(void)state;
	wt_sim_sweep("actor/stackless_bounded", sim_bnd_main, NULL, NULL, WT_SIM_SEEDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_order_threads),
		cmocka_unit_test(test_selective_examines_once),
		cmocka_unit_test(test_ref_mark),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_stackless),
		cmocka_unit_test(test_stackless_bounded),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_wait_from_thread),
		cmocka_unit_test(test_wait_sees_end),
		cmocka_unit_test(test_dump),
		cmocka_unit_test(test_pid_reuse),
		cmocka_unit_test(test_spawn_fails_late),
		cmocka_unit_test(test_order_sim),
		cmocka_unit_test(test_ref_mark_sim),
		cmocka_unit_test(test_stackless_bounded_sim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
