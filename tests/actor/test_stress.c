/* test_stress.c - conservation: many senders (coroutines and stackless
 * processes) send numbered messages to collectors while a killer ends
 * random senders and collectors; every message a sender's send returned 0
 * for reaches its collector exactly once and in order, unless that
 * collector died (then none after its death is counted), and every death
 * is reported once to the trapping supervisor process that linked them
 * all. Runs on real workers and swept over sim seeds. */
#include "wt_actor.h"

#define NSEND 24
#define NCOLL 3
#define MSGS WT_SIZE(400, 100)

struct stress {
	weft_pid_t coll[NCOLL];
	weft_pid_t send[NSEND];
	_Atomic long sent[NSEND];     /* messages whose send returned 0 */
	long got[NCOLL][NSEND];	      /* written by the collector alone */
	_Atomic int coll_done[NCOLL]; /* a collector that finished counting */
	uint64_t seed;
};

struct sender_arg {
	struct stress *s;
	int id;
	weft_op_t op;
	long i;
	int64_t v;
};

static void *sender(void *a)
{
	struct sender_arg *sa = a;
	struct stress *s = sa->s;
	for (long i = 0; i < MSGS; i++) {
		int64_t v = (int64_t)sa->id << 32 | i;
		int e = weft_send(s->coll[sa->id % NCOLL], &v, sizeof v);
		if (e)
			return NULL; /* cancelled while waiting for room: nothing sent */
		atomic_fetch_add(&s->sent[sa->id], 1);
		if (i % 8 == 0 && weft_yield() == -ECANCELED)
			return NULL;
	}
	return NULL;
}

static weft_step_t sender_step(void *a, void **res)
{
	struct sender_arg *sa = a;
	struct stress *s = sa->s;
	while (sa->i < MSGS) {
		sa->v = (int64_t)sa->id << 32 | sa->i;
		int e = weft_send_step(s->coll[sa->id % NCOLL], &sa->v, sizeof sa->v, WEFT_NEVER, &sa->op);
		if (e == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		if (e) {
			*res = NULL;
			return WEFT_STEP_DONE;
		}
		atomic_fetch_add(&s->sent[sa->id], 1);
		sa->i++;
		if (sa->i % 8 == 0)
			return WEFT_STEP_YIELD;
	}
	*res = NULL;
	return WEFT_STEP_DONE;
}

static void *collector(void *a)
{
	struct stress *s = ((struct sender_arg *)a)->s;
	int c = ((struct sender_arg *)a)->id;
	long next[NSEND] = {0};
	for (;;) {
		weft_msg_t *m;
		int e = weft_receive(&m, NULL);
		if (e) /* killed, or told to stop */
			break;
		int64_t v = wt_msg_i(m);
		weft_msg_destroy(m);
		if (v == -1)
			break;
		int id = (int)(v >> 32);
		TCHECK(id >= 0 && id < NSEND && id % NCOLL == c);
		if (id < 0 || id >= NSEND)
			break;
		TCHECK_EQ(v & 0xffffffff, next[id]); /* in order, no gap, no double */
		next[id]++;
		s->got[c][id] = next[id];
	}
	atomic_store(&s->coll_done[c], 1);
	return NULL;
}

static void *supervisor(void *a)
{
	struct stress *s = a;
	weft_proc_trap_exits(true);
	struct sender_arg ca[NCOLL], sa[NSEND];
	for (int c = 0; c < NCOLL; c++) {
		ca[c] = (struct sender_arg){.s = s, .id = c};
		weft_proc_opts_t o = {.size = sizeof o, .link = true, .bounded = c == 0, .mailbox_bound = 16};
		TCHECK_EQ(weft_proc_spawn(&s->coll[c], collector, &ca[c], &o), 0);
	}
	for (int i = 0; i < NSEND; i++) {
		sa[i] = (struct sender_arg){.s = s, .id = i, .op = WEFT_OP_INIT};
		weft_proc_opts_t o = {.size = sizeof o, .link = true};
		if (i % 2)
			TCHECK_EQ(weft_proc_spawn_step(&s->send[i], sender_step, &sa[i], &o), 0);
		else
			TCHECK_EQ(weft_proc_spawn(&s->send[i], sender, &sa[i], &o), 0);
	}
	/* Kill a pseudo-random third of the senders, and collector 2. */
	uint64_t x = s->seed;
	bool killed[NSEND] = {false};
	for (int k = 0; k < NSEND / 3; k++) {
		x = wt_lcg(x);
		int i = (int)((x >> 33) % NSEND);
		killed[i] = true;
		TCHECK_EQ(weft_proc_signal(s->send[i], (x >> 20) & 1 ? WEFT_EXIT_KILL : 1000 + i), 0);
		if ((x >> 21) & 1)
			weft_yield();
	}
	TCHECK_EQ(weft_proc_signal(s->coll[2], WEFT_EXIT_KILL), 0);
	/* Every sender ends (normally, or killed): one EXIT each. */
	int ended[NSEND] = {0}, collector2 = 0;
	for (int n = 0; n < NSEND + 1; n++) {
		weft_msg_t *m;
		TCHECK_EQ(weft_receive_until(&m, NULL, wt_hang_deadline()), 0);
		if (!m)
			break;
		TCHECK_EQ(m->kind, WEFT_MSG_EXIT);
		int found = 0;
		for (int i = 0; i < NSEND; i++)
			if (m->from == s->send[i]) {
				ended[i]++;
				found = 1;
				if (!killed[i])
					TCHECK_EQ(m->reason, WEFT_EXIT_NORMAL);
			}
		if (m->from == s->coll[2]) {
			collector2++;
			found = 1;
			TCHECK_EQ(m->reason, WEFT_EXIT_KILLED);
		}
		TCHECK(found);
		weft_msg_destroy(m);
	}
	for (int i = 0; i < NSEND; i++)
		TCHECK_EQ(ended[i], 1);
	TCHECK_EQ(collector2, 1);
	/* The live collectors get an end marker after everything. */
	for (int c = 0; c < 2; c++)
		TCHECK_EQ(wt_send_i(s->coll[c], -1), 0);
	for (int c = 0; c < 2; c++) {
		weft_msg_t *m;
		TCHECK_EQ(weft_receive_until(&m, NULL, wt_hang_deadline()), 0);
		if (m)
			TCHECK_EQ(m->kind, WEFT_MSG_EXIT);
		weft_msg_destroy(m);
	}
	return NULL;
}

static void check(void *a)
{
	struct stress *s = a;
	for (int i = 0; i < NSEND; i++) {
		int c = i % NCOLL;
		if (c == 2) /* killed: it counted a prefix, at most what was sent */
			TCHECK(s->got[c][i] <= atomic_load(&s->sent[i]));
		else
			TCHECK_EQ(s->got[c][i], atomic_load(&s->sent[i]));
	}
	for (int c = 0; c < NCOLL; c++)
		TCHECK_EQ(atomic_load(&s->coll_done[c]), 1);
}

static struct stress S;

static void *stress_main(void *a)
{
	(void)a;
	memset(&S, 0, sizeof S);
	S.seed = 12345 + (uint64_t)wt_sim_seed_index;
	struct wt_proc_call c = {supervisor, &S, {0}};
	return wt_proc_main(&c);
}

static void test_conservation(void **state)
{
	(void)state;
	for (int round = 0; round < WT_SIZE(10, 3); round++) {
		wt_sim_seed_index = round;
		wt_run(stress_main, NULL, 2);
		check(&S);
		assert_int_equal(atomic_load(&tcheck_failures), 0);
	}
}

static void sim_check(void *a)
{
	(void)a;
	check(&S);
}

static void test_conservation_sim(void **state)
{
	(void)state;
	wt_sim_sweep("actor/conservation", stress_main, sim_check, NULL, WT_SIM_SEEDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conservation),
		cmocka_unit_test(test_conservation_sim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
