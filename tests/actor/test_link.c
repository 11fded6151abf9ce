/* test_link.c - links, monitors, trapped exits and exit signals, case by
 * case against Erlang's rules (weft/actor.h), and the order of messages
 * and signals between two processes. */
#include "wt_actor.h"

/* Receive the next message (checked), expecting its kind. */
static weft_msg_t *next_msg(uint32_t kind)
{
	weft_msg_t *m = NULL;
	int e = weft_receive_until(&m, NULL, wt_hang_deadline());
	TCHECK_EQ(e, 0);
	if (e)
		return NULL;
	TCHECK_EQ(m->kind, kind);
	return m;
}

static void expect_exit(weft_pid_t from, int64_t reason)
{
	weft_msg_t *m = next_msg(WEFT_MSG_EXIT);
	if (m) {
		TCHECK_EQ(m->from, from);
		TCHECK_EQ(m->reason, reason);
	}
	weft_msg_destroy(m);
}

static void expect_down(weft_ref_t ref, weft_pid_t from, int64_t reason)
{
	weft_msg_t *m = next_msg(WEFT_MSG_DOWN);
	if (m) {
		TCHECK_EQ(m->ref, ref);
		TCHECK_EQ(m->from, from);
		TCHECK_EQ(m->reason, reason);
	}
	weft_msg_destroy(m);
}

static void expect_nothing(void)
{
	weft_msg_t *m = NULL;
	TCHECK_EQ(weft_receive_until(&m, NULL, 0), -ETIMEDOUT);
	weft_msg_destroy(m);
}

/* Ends with the reason it is sent (after a message "go"). */
static void *exits_with(void *a)
{
	(void)a;
	int64_t r = wt_recv_i();
	weft_proc_exit(r, "why", 3);
	TCHECK(0); /* not reached */
	return NULL;
}

/* Waits for ever; says -ECANCELED when told to end. */
static _Atomic int told_to_end;
static void *waits(void *a)
{
	(void)a;
	weft_msg_t *m;
	int e = weft_receive(&m, NULL);
	if (e == -ECANCELED)
		atomic_fetch_add(&told_to_end, 1);
	else
		weft_msg_destroy(m);
	return NULL;
}

/* ------------------------------------------------------------ links */

/* Linked, not trapping: an abnormal end takes the partner with the same
 * reason (seen by a monitor on the partner); a normal end does not. */
static void *link_kills_main(void *a)
{
	(void)a;
	TCHECK_EQ(weft_proc_trap_exits(true), 0);
	weft_pid_t w, x;
	TCHECK_EQ(weft_proc_spawn(&w, waits, NULL, NULL), 0);
	TCHECK_EQ(weft_proc_spawn(&x, exits_with, NULL, NULL), 0);
	weft_ref_t mw;
	TCHECK_EQ(weft_monitor(w, &mw), 0);
	TCHECK_EQ(weft_link(x), 0);
	TCHECK_EQ(weft_link(x), 0); /* twice is one link */
	weft_proc_info_t in = {.size = sizeof in};
	TCHECK_EQ(weft_proc_info(x, &in), 0);
	TCHECK_EQ(in.links, 1);
	TCHECK_EQ(wt_send_i(x, 77), 0);
	expect_exit(x, 77); /* we trap: a message, with the detail */
	TCHECK(!weft_proc_alive(x));
	TCHECK_EQ(weft_proc_signal(w, WEFT_EXIT_KILL), 0);
	expect_down(mw, w, WEFT_EXIT_KILLED);
	TCHECK_EQ(atomic_load(&told_to_end), 1);
	return NULL;
}

static void test_link_trapped(void **state)
{
	(void)state;
	atomic_store(&told_to_end, 0);
	wt_proc_run(link_kills_main, NULL, 2);
}

/* A linked pair where one end does not trap: it dies with the reason.
 * x waits for its reason from us until w has linked to it (w says so). */
struct chain {
	weft_pid_t peer;
};

static void *linker(void *a)
{
	struct chain *c = a;
	TCHECK_EQ(weft_link(c->peer), 0);
	TCHECK_EQ(wt_send_i(c[1].peer, 1), 0); /* "linked" to the main process */
	weft_msg_t *m;
	TCHECK_EQ(weft_receive(&m, NULL), -ECANCELED);
	return NULL;
}

static void *link_propagates_main(void *a)
{
	(void)a;
	weft_pid_t x, w;
	TCHECK_EQ(weft_proc_spawn(&x, exits_with, NULL, NULL), 0);
	struct chain c[2] = {{x}, {weft_proc_self()}};
	weft_ref_t mw, mx;
	weft_proc_opts_t o = {.size = sizeof o, .monitor = true, .monitor_ref = &mw};
	TCHECK_EQ(weft_proc_spawn(&w, linker, c, &o), 0);
	TCHECK_EQ(weft_monitor(x, &mx), 0);
	TCHECK_EQ(wt_recv_i(), 1); /* w has linked to x */
	TCHECK_EQ(wt_send_i(x, 33), 0);
	weft_msg_t *m1 = next_msg(WEFT_MSG_DOWN), *m2 = next_msg(WEFT_MSG_DOWN);
	if (m1 && m2) {
		weft_msg_t *dx = m1->ref == mx ? m1 : m2, *dw = m1->ref == mx ? m2 : m1;
		TCHECK_EQ(dx->from, x);
		TCHECK_EQ(dx->reason, 33);
		TCHECK_EQ(dx->len, 3);
		TCHECK(memcmp(dx->data, "why", 3) == 0);
		TCHECK_EQ(dw->from, w);
		TCHECK_EQ(dw->reason, 33); /* died of the link, with x's reason */
		TCHECK_EQ(dw->ref, mw);
	}
	weft_msg_destroy(m1);
	weft_msg_destroy(m2);
	/* A normal end does not propagate. */
	TCHECK_EQ(weft_proc_spawn(&x, exits_with, NULL, NULL), 0);
	c[0].peer = x;
	TCHECK_EQ(weft_proc_spawn(&w, linker, c, &o), 0);
	TCHECK_EQ(weft_monitor(x, &mx), 0);
	TCHECK_EQ(wt_recv_i(), 1);
	TCHECK_EQ(wt_send_i(x, WEFT_EXIT_NORMAL), 0);
	expect_down(mx, x, WEFT_EXIT_NORMAL);
	TCHECK(weft_proc_alive(w));
	weft_proc_info_t in = {.size = sizeof in};
	TCHECK_EQ(weft_proc_info(w, &in), 0);
	TCHECK_EQ(in.links, 0); /* the link went with x */
	TCHECK_EQ(weft_proc_signal(w, WEFT_EXIT_SHUTDOWN), 0);
	expect_down(mw, w, WEFT_EXIT_SHUTDOWN);
	return NULL;
}

static void test_link_propagates(void **state)
{
	(void)state;
	wt_proc_run(link_propagates_main, NULL, 2);
}

/* Spawned linked: the link exists before the child runs, so a child that
 * ends at once is still seen. */
static void *ends_now(void *a)
{
	weft_proc_exit((int64_t)(intptr_t)a, NULL, 0);
	return NULL;
}

static void *spawn_link_main(void *a)
{
	(void)a;
	weft_proc_trap_exits(true);
	for (int i = 0; i < 100; i++) {
		weft_pid_t c;
		weft_proc_opts_t o = {.size = sizeof o, .link = true};
		TCHECK_EQ(weft_proc_spawn(&c, ends_now, (void *)(intptr_t)(100 + i), &o), 0);
		expect_exit(c, 100 + i);
	}
	/* NORMAL ends are messages too when trapping */
	weft_pid_t c;
	TCHECK_EQ(weft_proc_spawn(&c, ends_now, (void *)0, &(weft_proc_opts_t){.link = true}), 0);
	expect_exit(c, WEFT_EXIT_NORMAL);
	return NULL;
}

static void test_spawn_link(void **state)
{
	(void)state;
	wt_proc_run(spawn_link_main, NULL, 2);
}

/* After unlink no signal comes through the link. */
static void *unlink_main(void *a)
{
	(void)a;
	weft_pid_t x;
	TCHECK_EQ(weft_proc_spawn(&x, exits_with, NULL, &(weft_proc_opts_t){.link = true}), 0);
	TCHECK_EQ(weft_unlink(x), 0);
	TCHECK_EQ(weft_unlink(x), 0); /* no link: still 0 */
	weft_ref_t r;
	TCHECK_EQ(weft_monitor(x, &r), 0);
	TCHECK_EQ(wt_send_i(x, 5), 0);
	expect_down(r, x, 5); /* and we are alive to see it */
	TCHECK(weft_proc_alive(weft_proc_self()));
	expect_nothing();
	return NULL;
}

static void test_unlink(void **state)
{
	(void)state;
	wt_proc_run(unlink_main, NULL, 2);
}

/* ------------------------------------------------------------ noproc */

static void *noproc_main(void *a)
{
	(void)a;
	weft_pid_t x;
	TCHECK_EQ(weft_proc_spawn(&x, ends_now, (void *)0, NULL), 0);
	TCHECK_EQ(weft_proc_wait(x, wt_hang_deadline()), 0);
	weft_ref_t r;
	TCHECK_EQ(weft_monitor(x, &r), 0);
	expect_down(r, x, WEFT_EXIT_NOPROC);
	weft_proc_trap_exits(true);
	TCHECK_EQ(weft_link(x), -ESRCH);
	expect_exit(x, WEFT_EXIT_NOPROC);
	expect_nothing();
	return NULL;
}

static void test_noproc(void **state)
{
	(void)state;
	wt_proc_run(noproc_main, NULL, 2);
}

/* Not trapping, linking to a dead process: told to end with NOPROC. */
static void *links_dead(void *a)
{
	weft_pid_t x = (weft_pid_t)(uintptr_t)a;
	TCHECK_EQ(weft_link(x), -ESRCH);
	weft_msg_t *m;
	TCHECK_EQ(weft_receive(&m, NULL), -ECANCELED);
	return NULL;
}

static void *noproc_kills_main(void *a)
{
	(void)a;
	weft_pid_t x, y;
	TCHECK_EQ(weft_proc_spawn(&x, ends_now, (void *)0, NULL), 0);
	TCHECK_EQ(weft_proc_wait(x, wt_hang_deadline()), 0);
	weft_ref_t r;
	weft_proc_opts_t o = {.size = sizeof o, .monitor = true, .monitor_ref = &r};
	TCHECK_EQ(weft_proc_spawn(&y, links_dead, (void *)(uintptr_t)x, &o), 0);
	expect_down(r, y, WEFT_EXIT_NOPROC);
	return NULL;
}

static void test_noproc_kills(void **state)
{
	(void)state;
	wt_proc_run(noproc_kills_main, NULL, 2);
}

/* ------------------------------------------------------------ monitors */

static void *monitor_main(void *a)
{
	(void)a;
	weft_pid_t x;
	TCHECK_EQ(weft_proc_spawn(&x, exits_with, NULL, NULL), 0);
	weft_ref_t r1, r2, r3;
	TCHECK_EQ(weft_monitor(x, &r1), 0);
	TCHECK_EQ(weft_monitor(x, &r2), 0); /* monitors stack */
	TCHECK_EQ(weft_monitor(x, &r3), 0);
	TCHECK(r1 != r2 && r2 != r3);
	TCHECK_EQ(weft_demonitor(r2, false), 0);
	TCHECK_EQ(weft_demonitor(r2, false), -ENOENT);
	weft_proc_info_t in = {.size = sizeof in};
	TCHECK_EQ(weft_proc_info(x, &in), 0);
	TCHECK_EQ(in.monitors, 2);
	TCHECK_EQ(wt_send_i(x, 8), 0);
	/* r1 and r3, once each, in the order they were made; not r2 */
	expect_down(r1, x, 8);
	expect_down(r3, x, 8);
	expect_nothing();
	/* A DOWN that has arrived is dropped by demonitor with flush. */
	TCHECK_EQ(weft_proc_spawn(&x, exits_with, NULL, NULL), 0);
	TCHECK_EQ(weft_monitor(x, &r1), 0);
	TCHECK_EQ(wt_send_i(x, 9), 0);
	TCHECK_EQ(weft_proc_wait(x, wt_hang_deadline()), 0);
	TCHECK_EQ(wt_send_i(weft_proc_self(), 1234), 0);
	/* the DOWN is in the mailbox before the 1234 (it came first) */
	TCHECK_EQ(weft_demonitor(r1, true), -ENOENT);
	TCHECK_EQ(wt_recv_i(), 1234);
	expect_nothing();
	return NULL;
}

static void test_monitor(void **state)
{
	(void)state;
	wt_proc_run(monitor_main, NULL, 2);
}

/* ------------------------------------------------------------ signals */

static void *signal_main(void *a)
{
	(void)a;
	weft_pid_t w;
	weft_ref_t r;
	/* NORMAL to a process that does not trap: ignored. */
	TCHECK_EQ(weft_proc_spawn(&w, exits_with, NULL, NULL), 0);
	TCHECK_EQ(weft_monitor(w, &r), 0);
	TCHECK_EQ(weft_proc_signal(w, WEFT_EXIT_NORMAL), 0);
	TCHECK(weft_proc_alive(w));
	TCHECK_EQ(wt_send_i(w, 3), 0);
	expect_down(r, w, 3);
	/* A trapping process gets signals as messages; KILL is not trapped. */
	TCHECK_EQ(weft_proc_trap_exits(true), 0);
	TCHECK_EQ(weft_proc_trap_exits(true), 1);
	TCHECK_EQ(weft_proc_signal(weft_proc_self(), 44), 0);
	expect_exit(weft_proc_self(), 44);
	TCHECK_EQ(weft_proc_signal(weft_proc_self(), WEFT_EXIT_NORMAL), 0);
	expect_exit(weft_proc_self(), WEFT_EXIT_NORMAL);
	/* A signal with detail. */
	TCHECK_EQ(weft_proc_signal_detail(weft_proc_self(), 45, "abc", 3), 0);
	weft_msg_t *m = next_msg(WEFT_MSG_EXIT);
	if (m) {
		TCHECK_EQ(m->reason, 45);
		TCHECK_EQ(m->len, 3);
		TCHECK(memcmp(m->data, "abc", 3) == 0);
	}
	weft_msg_destroy(m);
	atomic_store(&told_to_end, 0);
	TCHECK_EQ(weft_proc_spawn(&w, waits, NULL, &(weft_proc_opts_t){.trap_exits = true}), 0);
	TCHECK_EQ(weft_monitor(w, &r), 0);
	TCHECK_EQ(weft_proc_signal(w, WEFT_EXIT_KILL), 0);
	expect_down(r, w, WEFT_EXIT_KILLED);
	TCHECK_EQ(atomic_load(&told_to_end), 1);
	return NULL;
}

static void test_signals(void **state)
{
	(void)state;
	wt_proc_run(signal_main, NULL, 2);
}

/* NORMAL sent by a process to itself ends it (when not trapping). */
static void *normal_self(void *a)
{
	(void)a;
	TCHECK_EQ(weft_proc_signal(weft_proc_self(), WEFT_EXIT_NORMAL), 0);
	weft_msg_t *m;
	TCHECK_EQ(weft_receive(&m, NULL), -ECANCELED);
	return NULL;
}

static void *normal_self_main(void *a)
{
	(void)a;
	weft_ref_t r;
	weft_pid_t w;
	TCHECK_EQ(weft_proc_spawn(&w, normal_self, NULL, &(weft_proc_opts_t){.monitor = true, .monitor_ref = &r}), 0);
	expect_down(r, w, WEFT_EXIT_NORMAL);
	return NULL;
}

static void test_normal_self(void **state)
{
	(void)state;
	wt_proc_run(normal_self_main, NULL, 2);
}

/* ------------------------------------------------------------ order */

/* Everything a process sent arrives before its exit and down messages. */
static void *sends_then_fails(void *a)
{
	weft_pid_t to = (weft_pid_t)(uintptr_t)a;
	for (int64_t i = 0; i < 1000; i++)
		TCHECK_EQ(wt_send_i(to, i), 0);
	weft_proc_exit(99, NULL, 0);
	return NULL;
}

static void *order_main(void *a)
{
	(void)a;
	weft_proc_trap_exits(true);
	for (int round = 0; round < 20; round++) {
		weft_pid_t x;
		weft_ref_t r;
		weft_proc_opts_t o = {.size = sizeof o, .link = true, .monitor = true, .monitor_ref = &r};
		TCHECK_EQ(weft_proc_spawn(&x, sends_then_fails, (void *)(uintptr_t)weft_proc_self(), &o), 0);
		for (int64_t i = 0; i < 1000; i++)
			TCHECK_EQ(wt_recv_i(), i);
		/* then the two signals, exit and down (in the order sent) */
		weft_msg_t *m1 = next_msg(WEFT_MSG_EXIT), *m2 = next_msg(WEFT_MSG_DOWN);
		if (m1 && m2) {
			TCHECK_EQ(m1->reason, 99);
			TCHECK_EQ(m2->ref, r);
		}
		weft_msg_destroy(m1);
		weft_msg_destroy(m2);
	}
	return NULL;
}

static void test_signal_order(void **state)
{
	(void)state;
	wt_proc_run(order_main, NULL, 2);
}

/* ------------------------------------------------------------ sim */

static void *sim_link(void *a)
{
	struct wt_proc_call c = {link_propagates_main, a, {0}};
	return wt_proc_main(&c);
}

static void test_link_propagates_sim(void **state)
{
	(void)state;
	wt_sim_sweep("actor/link_propagates", sim_link, NULL, NULL, WT_SIM_SEEDS);
}

static void *sim_order(void *a)
{
	struct wt_proc_call c = {order_main, a, {0}};
	return wt_proc_main(&c);
}

static void test_signal_order_sim(void **state)
{
	(void)state;
	wt_sim_sweep("actor/signal_order", sim_order, NULL, NULL, WT_SIZE3(30, 10, 2));
}

static void *sim_monitor(void *a)
{
	struct wt_proc_call c = {monitor_main, a, {0}};
	return wt_proc_main(&c);
}

static void test_monitor_sim(void **state)
{
	(void)state;
	wt_sim_sweep("actor/monitor", sim_monitor, NULL, NULL, WT_SIM_SEEDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_link_trapped),
		cmocka_unit_test(test_link_propagates),
		cmocka_unit_test(test_spawn_link),
		cmocka_unit_test(test_unlink),
		cmocka_unit_test(test_noproc),
		cmocka_unit_test(test_noproc_kills),
		cmocka_unit_test(test_monitor),
		cmocka_unit_test(test_signals),
		cmocka_unit_test(test_normal_self),
		cmocka_unit_test(test_signal_order),
		cmocka_unit_test(test_link_propagates_sim),
		cmocka_unit_test(test_signal_order_sim),
		cmocka_unit_test(test_monitor_sim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
