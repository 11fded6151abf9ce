/* test_sup.c - supervisors: the three strategies, the three restart
 * types, restart intensity with crash loops (exact counts: the crashes
 * all fall within a period of an hour), escalation through nested
 * supervisors, and shutdown in reverse order with a child that ignores
 * SHUTDOWN and is killed after its time. Children are found by their
 * registered names; a restart is seen as a new pid under the name
 * (polled: a state, not a timing). */
#include "wt_actor.h"

/* A child that waits for messages until it is told to end: "crash" ends
 * it with reason 9, "normal" normally. */
static void *worker(void *a)
{
	(void)a;
	for (;;) {
		weft_msg_t *m;
		if (weft_receive(&m, NULL) != 0)
			return NULL;
		bool crash = m->len == 5 && memcmp(m->data, "crash", 5) == 0;
		bool normal = m->len == 6 && memcmp(m->data, "normal", 6) == 0;
		weft_msg_destroy(m);
		if (crash)
			weft_proc_exit(9, NULL, 0);
		if (normal)
			return NULL;
	}
}

static const weft_proc_opts_t name_c0 = {.name = "c0"}, name_c1 = {.name = "c1"}, name_c2 = {.name = "c2"};

static weft_sup_spec_t spec3(weft_sup_strategy_t st, weft_restart_t r1, weft_child_spec_t ch[3])
{
	const weft_proc_opts_t *names[3] = {&name_c0, &name_c1, &name_c2};
	for (int i = 0; i < 3; i++)
		ch[i] = (weft_child_spec_t){.id = names[i]->name,
					    .fn = worker,
					    .restart = i == 1 ? r1 : WEFT_RESTART_PERMANENT,
					    .shutdown = WEFT_SEC,
					    .opts = names[i]};
	return (weft_sup_spec_t){.size = sizeof(weft_sup_spec_t),
				 .strategy = st,
				 .intensity = 10,
				 .period = 3600 * WEFT_SEC,
				 .children = ch,
				 .nchildren = 3};
}

/* The pids under c0..c2 once all three are registered. */
static void pids3(weft_pid_t p[3])
{
	const char *n[3] = {"c0", "c1", "c2"};
	for (int i = 0; i < 3; i++) {
		WT_WAIT_UNTIL(weft_whereis(n[i]) != 0);
		p[i] = weft_whereis(n[i]);
	}
}

/* Wait until name is registered to a pid other than old. */
static weft_pid_t renamed(const char *name, weft_pid_t old)
{
	WT_WAIT_UNTIL(weft_whereis(name) != 0 && weft_whereis(name) != old);
	return weft_whereis(name);
}

static void stop_sup(weft_pid_t sup)
{
	weft_ref_t r;
	TCHECK_EQ(weft_monitor(sup, &r), 0);
	TCHECK_EQ(weft_proc_signal(sup, WEFT_EXIT_SHUTDOWN), 0);
	weft_msg_t *m;
	TCHECK_EQ(weft_receive_ref(&m, r, wt_hang_deadline()), 0);
	if (m)
		TCHECK_EQ(m->reason, WEFT_EXIT_SHUTDOWN);
	weft_msg_destroy(m);
	TCHECK_EQ(weft_whereis("c0"), 0); /* the children are gone with it */
	TCHECK_EQ(weft_whereis("c1"), 0);
	TCHECK_EQ(weft_whereis("c2"), 0);
}

static void *strategies_main(void *a)
{
	(void)a;
	weft_child_spec_t ch[3];
	weft_pid_t sup, p[3], q[3];
	/* one for one: only c1 */
	weft_sup_spec_t sp = spec3(WEFT_SUP_ONE_FOR_ONE, WEFT_RESTART_PERMANENT, ch);
	TCHECK_EQ(weft_sup_start(&sup, &sp, NULL), 0);
	pids3(p);
	TCHECK_EQ(weft_send(p[1], "crash", 5), 0);
	q[1] = renamed("c1", p[1]);
	TCHECK_EQ(weft_whereis("c0"), p[0]);
	TCHECK_EQ(weft_whereis("c2"), p[2]);
	TCHECK_EQ(weft_sup_restarts(sup), 1);
	stop_sup(sup);
	/* one for all: all three */
	sp = spec3(WEFT_SUP_ONE_FOR_ALL, WEFT_RESTART_PERMANENT, ch);
	TCHECK_EQ(weft_sup_start(&sup, &sp, NULL), 0);
	pids3(p);
	TCHECK_EQ(weft_send(p[1], "crash", 5), 0);
	for (int i = 0; i < 3; i++) {
		const char *n[3] = {"c0", "c1", "c2"};
		q[i] = renamed(n[i], p[i]);
		TCHECK(!weft_proc_alive(p[i]));
	}
	TCHECK_EQ(weft_sup_restarts(sup), 1);
	stop_sup(sup);
	/* rest for one: c1 and c2 */
	sp = spec3(WEFT_SUP_REST_FOR_ONE, WEFT_RESTART_PERMANENT, ch);
	TCHECK_EQ(weft_sup_start(&sup, &sp, NULL), 0);
	pids3(p);
	TCHECK_EQ(weft_send(p[1], "crash", 5), 0);
	q[1] = renamed("c1", p[1]);
	q[2] = renamed("c2", p[2]);
	TCHECK_EQ(weft_whereis("c0"), p[0]);
	TCHECK(weft_proc_alive(p[0]));
	stop_sup(sup);
	(void)q;
	return NULL;
}

static void test_strategies(void **state)
{
	(void)state;
	wt_proc_run(strategies_main, NULL, 2);
}

static void *restart_types_main(void *a)
{
	(void)a;
	weft_child_spec_t ch[3];
	weft_pid_t sup, p[3];
	/* transient: a normal end is not restarted, a crash is */
	weft_sup_spec_t sp = spec3(WEFT_SUP_ONE_FOR_ONE, WEFT_RESTART_TRANSIENT, ch);
	TCHECK_EQ(weft_sup_start(&sup, &sp, NULL), 0);
	pids3(p);
	TCHECK_EQ(weft_send(p[1], "crash", 5), 0);
	weft_pid_t c1 = renamed("c1", p[1]);
	TCHECK_EQ(weft_send(c1, "normal", 6), 0);
	/* Its EXIT is in the supervisor's mailbox when the wait returns; c0's
	 * crash comes after it, so once c0 is back, c1's end was handled. */
	TCHECK_EQ(weft_proc_wait(c1, wt_hang_deadline()), 0);
	TCHECK_EQ(weft_send(p[0], "crash", 5), 0);
	(void)renamed("c0", p[0]);
	TCHECK_EQ(weft_sup_restarts(sup), 2); /* c1's crash and c0's, not c1's normal end */
	TCHECK_EQ(weft_whereis("c1"), 0);
	stop_sup(sup);
	/* temporary: never */
	sp = spec3(WEFT_SUP_ONE_FOR_ONE, WEFT_RESTART_TEMPORARY, ch);
	TCHECK_EQ(weft_sup_start(&sup, &sp, NULL), 0);
	pids3(p);
	TCHECK_EQ(weft_send(p[1], "crash", 5), 0);
	TCHECK_EQ(weft_proc_wait(p[1], wt_hang_deadline()), 0);
	TCHECK_EQ(weft_send(p[0], "crash", 5), 0);
	(void)renamed("c0", p[0]);
	TCHECK_EQ(weft_sup_restarts(sup), 1);
	TCHECK_EQ(weft_whereis("c1"), 0);
	/* stop_sup checks c1 is not registered: fine, it is not running */
	weft_ref_t r;
	TCHECK_EQ(weft_monitor(sup, &r), 0);
	TCHECK_EQ(weft_proc_signal(sup, WEFT_EXIT_SHUTDOWN), 0);
	weft_msg_t *m;
	TCHECK_EQ(weft_receive_ref(&m, r, wt_hang_deadline()), 0);
	weft_msg_destroy(m);
	return NULL;
}

static void test_restart_types(void **state)
{
	(void)state;
	wt_proc_run(restart_types_main, NULL, 2);
}

/* ------------------------------------------------------------ intensity */

static _Atomic int crash_starts;

static void *crashes_at_once(void *a)
{
	(void)a;
	atomic_fetch_add(&crash_starts, 1);
	weft_proc_exit(13, NULL, 0);
	return NULL;
}

static void *intensity_main(void *a)
{
	(void)a;
	atomic_store(&crash_starts, 0);
	weft_child_spec_t ch = {.id = "loop", .fn = crashes_at_once, .shutdown = 0};
	weft_sup_spec_t sp = {
		.size = sizeof sp, .intensity = 3, .period = 3600 * WEFT_SEC, .children = &ch, .nchildren = 1};
	weft_pid_t sup;
	weft_ref_t r;
	TCHECK_EQ(weft_sup_start(&sup, &sp, &(weft_proc_opts_t){.monitor = true, .monitor_ref = &r}), 0);
	weft_msg_t *m;
	TCHECK_EQ(weft_receive_ref(&m, r, wt_hang_deadline()), 0);
	if (m)
		TCHECK_EQ(m->reason, WEFT_EXIT_SHUTDOWN); /* gave up */
	weft_msg_destroy(m);
	TCHECK_EQ(atomic_load(&crash_starts), 4); /* the first start and 3 restarts */
	return NULL;
}

static void test_intensity(void **state)
{
	(void)state;
	wt_proc_run(intensity_main, NULL, 2);
}

/* Escalation: an inner supervisor of a crash loop gives up; the outer one
 * restarts it (permanent) within its own intensity of 1, and then gives
 * up too. */
static void *escalation_main(void *a)
{
	(void)a;
	atomic_store(&crash_starts, 0);
	weft_child_spec_t loop = {.id = "loop", .fn = crashes_at_once};
	weft_sup_spec_t inner = {
		.size = sizeof inner, .intensity = 2, .period = 3600 * WEFT_SEC, .children = &loop, .nchildren = 1};
	weft_child_spec_t sub = {.id = "inner", .sup = &inner, .shutdown = WEFT_NEVER};
	weft_sup_spec_t outer = {
		.size = sizeof outer, .intensity = 1, .period = 3600 * WEFT_SEC, .children = &sub, .nchildren = 1};
	weft_pid_t top;
	weft_ref_t r;
	TCHECK_EQ(weft_sup_start(&top, &outer, &(weft_proc_opts_t){.monitor = true, .monitor_ref = &r}), 0);
	weft_msg_t *m;
	TCHECK_EQ(weft_receive_ref(&m, r, wt_hang_deadline()), 0);
	if (m)
		TCHECK_EQ(m->reason, WEFT_EXIT_SHUTDOWN);
	weft_msg_destroy(m);
	TCHECK_EQ(atomic_load(&crash_starts), 2 * 3); /* two inner supervisors, 1 + 2 starts each */
	return NULL;
}

static void test_escalation(void **state)
{
	(void)state;
	wt_proc_run(escalation_main, NULL, 2);
}

/* ------------------------------------------------------------ shutdown */

static _Atomic int stop_log[3];
static _Atomic int nstop;

/* Traps exits; logs its id when SHUTDOWN comes; id 1 then ignores it. */
static void *trapping(void *a)
{
	int id = (int)(intptr_t)a;
	for (;;) {
		weft_msg_t *m;
		int e = weft_receive(&m, NULL);
		if (e)
			return NULL; /* killed */
		bool shutdown = m->kind == WEFT_MSG_EXIT && m->reason == WEFT_EXIT_SHUTDOWN;
		weft_msg_destroy(m);
		if (shutdown) {
			stop_log[atomic_fetch_add(&nstop, 1)] = id;
			if (id != 1)
				weft_proc_exit(WEFT_EXIT_SHUTDOWN, NULL, 0);
		}
	}
}

static void *shutdown_main(void *a)
{
	(void)a;
	atomic_store(&nstop, 0);
	weft_child_spec_t ch[3];
	/* trapping from the start: a SHUTDOWN that comes before a child has
	 * run is a message all the same */
	static const weft_proc_opts_t t0 = {.name = "c0", .trap_exits = true}, t1 = {.name = "c1", .trap_exits = true},
				      t2 = {.name = "c2", .trap_exits = true};
	const weft_proc_opts_t *names[3] = {&t0, &t1, &t2};
	for (int i = 0; i < 3; i++)
		ch[i] = (weft_child_spec_t){.id = names[i]->name,
					    .fn = trapping,
					    .arg = (void *)(intptr_t)i,
					    .shutdown = i == 1 ? 5 * WEFT_MSEC : WEFT_NEVER,
					    .opts = names[i]};
	weft_sup_spec_t sp = {.size = sizeof sp, .children = ch, .nchildren = 3};
	weft_pid_t sup, p[3];
	TCHECK_EQ(weft_sup_start(&sup, &sp, NULL), 0);
	pids3(p);
	weft_ref_t r1;
	TCHECK_EQ(weft_monitor(p[1], &r1), 0);
	stop_sup(sup);
	TCHECK_EQ(atomic_load(&nstop), 3);
	TCHECK_EQ(stop_log[0], 2); /* reverse order of start */
	TCHECK_EQ(stop_log[1], 1);
	TCHECK_EQ(stop_log[2], 0);
	weft_msg_t *m;
	TCHECK_EQ(weft_receive_ref(&m, r1, wt_hang_deadline()), 0);
	if (m)
		TCHECK_EQ(m->reason, WEFT_EXIT_KILLED); /* ignored SHUTDOWN: killed after 5 ms */
	weft_msg_destroy(m);
	return NULL;
}

static void test_shutdown_order(void **state)
{
	(void)state;
	wt_proc_run(shutdown_main, NULL, 2);
}

/* A child that cannot start stops the supervisor with the error. */
static void *start_fails_main(void *a)
{
	(void)a;
	weft_child_spec_t ch[2] = {{.id = "a", .fn = worker, .opts = &name_c0},
				   {.id = "b", .fn = worker, .opts = &name_c0}}; /* the same name: -EEXIST */
	weft_sup_spec_t sp = {.size = sizeof sp, .children = ch, .nchildren = 2};
	weft_pid_t sup;
	weft_ref_t r;
	TCHECK_EQ(weft_sup_start(&sup, &sp, &(weft_proc_opts_t){.monitor = true, .monitor_ref = &r}), 0);
	weft_msg_t *m;
	TCHECK_EQ(weft_receive_ref(&m, r, wt_hang_deadline()), 0);
	if (m)
		TCHECK_EQ(m->reason, -EEXIST);
	weft_msg_destroy(m);
	TCHECK_EQ(weft_whereis("c0"), 0); /* the first child was stopped */
	/* bad specs */
	weft_child_spec_t bad = {.id = "x"};
	TCHECK_EQ(weft_sup_start(&sup, &(weft_sup_spec_t){.children = &bad, .nchildren = 1}, NULL), -EINVAL);
	bad.fn = worker;
	bad.step = (weft_step_fn_t)1;
	TCHECK_EQ(weft_sup_start(&sup, &(weft_sup_spec_t){.children = &bad, .nchildren = 1}, NULL), -EINVAL);
	TCHECK_EQ(weft_sup_start(&sup, NULL, NULL), -EINVAL);
	TCHECK_EQ(weft_sup_start(&sup, &(weft_sup_spec_t){.nchildren = 1}, NULL), -EINVAL);
	TCHECK_EQ(weft_sup_start(&sup, &(weft_sup_spec_t){.strategy = 7}, NULL), -EINVAL);
	TCHECK_EQ(weft_sup_restarts(weft_proc_self()), -EINVAL);
	return NULL;
}

static void test_start_fails(void **state)
{
	(void)state;
	wt_proc_run(start_fails_main, NULL, 2);
}

/* ------------------------------------------------------------ sim */

static void *sim_of(void *a)
{
	struct wt_proc_call c = {(weft_fn_t)a, NULL, {0}};
	return wt_proc_main(&c);
}

static void test_strategies_sim(void **state)
{
	(void)state;
	wt_sim_sweep("actor/sup_strategies", sim_of, NULL, (void *)strategies_main, WT_SIZE3(30, 10, 2));
}

static void test_escalation_sim(void **state)
{
	(void)state;
	wt_sim_sweep("actor/sup_escalation", sim_of, NULL, (void *)escalation_main, WT_SIM_SEEDS);
}

static void test_shutdown_order_sim(void **state)
{
	(void)state;
	wt_sim_sweep("actor/sup_shutdown", sim_of, NULL, (void *)shutdown_main, WT_SIM_SEEDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strategies),	   cmocka_unit_test(test_restart_types),
		cmocka_unit_test(test_intensity),	   cmocka_unit_test(test_escalation),
		cmocka_unit_test(test_shutdown_order),	   cmocka_unit_test(test_start_fails),
		cmocka_unit_test(test_strategies_sim),	   cmocka_unit_test(test_escalation_sim),
		cmocka_unit_test(test_shutdown_order_sim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
