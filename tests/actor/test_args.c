/* test_args.c - every actor call fed NULLs, zero and stale pids, other
 * nodes' pids, out-of-range sizes and calls from the wrong kind of caller
 * (plain threads, coroutines and stackless tasks that are not processes,
 * and processes), each returning its documented errno and changing
 * nothing. */
#include "../wt_kinds.h"
#include "wt_actor.h"

static void *nothing(void *a)
{
	(void)a;
	return NULL;
}

static weft_pid_t dead_pid(void)
{
	weft_pid_t p = 0;
	TCHECK_EQ(weft_proc_spawn(&p, nothing, NULL, NULL), 0);
	TCHECK_EQ(weft_proc_wait(p, wt_hang_deadline()), 0);
	return p;
}

/* What every caller gets, process or not. */
static void common(enum wt_kind kind, weft_pid_t dead)
{
	weft_pid_t other_node = (weft_pid_t)1 << 48 | 5;
	/* spawn */
	TCHECK_EQ(weft_proc_spawn(NULL, NULL, NULL, NULL), -EINVAL);
	TCHECK_EQ(weft_proc_spawn_step(NULL, NULL, NULL, NULL), -EINVAL);
	TCHECK_EQ(weft_proc_spawn(NULL, nothing, NULL, &(weft_proc_opts_t){.bounded = true}), -EINVAL);
	TCHECK_EQ(weft_proc_spawn(NULL, nothing, NULL, &(weft_proc_opts_t){.monitor = true}), -EINVAL);
	TCHECK_EQ(weft_proc_spawn(NULL, nothing, NULL, &(weft_proc_opts_t){.name = ""}), -EINVAL);
	char longname[100];
	memset(longname, 'n', sizeof longname - 1);
	longname[sizeof longname - 1] = 0;
	TCHECK_EQ(weft_proc_spawn(NULL, nothing, NULL, &(weft_proc_opts_t){.name = longname}), -EINVAL);
	TCHECK_EQ(weft_proc_spawn(NULL, nothing, NULL, &(weft_proc_opts_t){.size = 3}), -EINVAL);
	TCHECK_EQ(weft_proc_spawn(NULL, nothing, NULL, &(weft_proc_opts_t){.max_message = WEFT_MSG_MAX + 1}), -EINVAL);
	TCHECK_EQ(weft_proc_spawn(NULL, nothing, NULL, &(weft_proc_opts_t){.stack_size = 1}), -EINVAL);
	/* messages */
	TCHECK_EQ(weft_msg_create(NULL, 1), -EINVAL);
	weft_msg_t *m = NULL;
	TCHECK_EQ(weft_msg_create(&m, WEFT_MSG_MAX + 1), -EMSGSIZE);
	weft_msg_destroy(NULL);
	TCHECK_EQ(weft_send(0, "x", 1), -EINVAL);
	TCHECK_EQ(weft_send(other_node, "x", 1), -EHOSTUNREACH);
	TCHECK_EQ(weft_send(dead, NULL, 1), -EINVAL);
	TCHECK_EQ(weft_send(dead, "x", WEFT_MSG_MAX + 1), -EMSGSIZE);
	TCHECK_EQ(weft_send(dead, "x", 1), 0); /* dead: dropped, not an error */
	TCHECK_EQ(weft_try_send(dead, "x", 1), 0);
	TCHECK_EQ(weft_send_until(dead, "x", 1, 0), 0);
	TCHECK_EQ(weft_send_ref(dead, 7, "x", 1), 0);
	TCHECK_EQ(weft_send_name(NULL, "x", 1), -EINVAL);
	TCHECK_EQ(weft_send_name("", "x", 1), -EINVAL);
	TCHECK_EQ(weft_send_name("nobody", "x", 1), -ESRCH);
	TCHECK_EQ(weft_send_msg(dead, NULL), -EINVAL);
	weft_msg_t fake = {0};
	TCHECK_EQ(weft_send_msg(dead, &fake), -EINVAL);
	TCHECK_EQ(weft_msg_create(&m, 3), 0);
	TCHECK_EQ(weft_send_msg(0, m), -EINVAL); /* still ours */
	TCHECK_EQ(weft_send_msg(dead, m), 0);	 /* now weft's (dropped) */
	weft_op_t op = WEFT_OP_INIT;
	TCHECK_EQ(weft_send_step(0, "x", 1, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_send_step(dead, "x", 1, WEFT_NEVER, &op), 0);
	TCHECK_EQ(weft_send_step(dead, "x", 1, WEFT_NEVER, NULL), kind == WT_STEP ? -EINVAL : 0);
	/* exits */
	TCHECK_EQ(weft_proc_signal(0, 5), -EINVAL);
	TCHECK_EQ(weft_proc_signal(other_node, 5), -EHOSTUNREACH);
	TCHECK_EQ(weft_proc_signal(dead, WEFT_EXIT_KILL), 0);
	TCHECK_EQ(weft_proc_signal_detail(dead, 5, NULL, 3), -EINVAL);
	TCHECK_EQ(weft_proc_signal_detail(dead, 5, "x", (size_t)1 << 20), -EMSGSIZE);
	TCHECK(!weft_proc_alive(0));
	TCHECK(!weft_proc_alive(dead));
	TCHECK(!weft_proc_alive(other_node));
	TCHECK(!weft_proc_alive(~(weft_pid_t)0 >> 16));
	/* registry */
	TCHECK_EQ(weft_register(NULL, dead), -EINVAL);
	TCHECK_EQ(weft_register("", dead), -EINVAL);
	TCHECK_EQ(weft_register(longname, dead), -EINVAL);
	TCHECK_EQ(weft_register("x", 0), -EINVAL);
	TCHECK_EQ(weft_register("x", dead), -ESRCH);
	TCHECK_EQ(weft_unregister(NULL), -EINVAL);
	TCHECK_EQ(weft_unregister("never"), -ESRCH);
	TCHECK_EQ(weft_whereis(NULL), 0);
	TCHECK_EQ(weft_whereis(longname), 0);
	/* wait, info, stats, dump */
	TCHECK_EQ(weft_proc_wait(0, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_proc_wait(dead, WEFT_NEVER), 0);
	TCHECK_EQ(weft_proc_wait(other_node, WEFT_NEVER), -EHOSTUNREACH);
	TCHECK_EQ(weft_proc_wait_step(dead, WEFT_NEVER, &op), 0);
	weft_proc_info_t in = {.size = sizeof in};
	TCHECK_EQ(weft_proc_info(dead, NULL), -EINVAL);
	TCHECK_EQ(weft_proc_info(dead, &in), -ESRCH);
	in.size = 1;
	TCHECK_EQ(weft_proc_info(dead, &in), -EINVAL);
	weft_actor_stats_t st = {.size = 1};
	TCHECK_EQ(weft_actor_stats(NULL, NULL), -EINVAL);
	TCHECK_EQ(weft_actor_stats(NULL, &st), -EINVAL);
	TCHECK_EQ(weft_actor_dump(NULL, -1), -EBADF);
	TCHECK_EQ(weft_actor_dump(NULL, 987654), -EBADF);
}

/* Callers that are not processes. */
static void not_a_process(enum wt_kind kind, void *arg)
{
	(void)arg;
	weft_pid_t dead = kind == WT_STEP ? 0 : dead_pid();
	if (kind != WT_STEP)
		common(kind, dead);
	TCHECK_EQ(weft_proc_self(), 0);
	weft_msg_t *m = NULL;
	weft_op_t op = WEFT_OP_INIT;
	TCHECK_EQ(weft_receive(&m, NULL), -EPERM);
	TCHECK_EQ(weft_receive_until(&m, NULL, 0), -EPERM);
	TCHECK_EQ(weft_receive_step(&m, NULL, 0, &op), -EPERM);
	TCHECK_EQ(weft_receive_ref(&m, 5, 0), -EPERM);
	TCHECK_EQ(weft_link(dead ? dead : 5), -EPERM);
	TCHECK_EQ(weft_unlink(dead ? dead : 5), -EPERM);
	weft_ref_t r;
	TCHECK_EQ(weft_monitor(dead ? dead : 5, &r), -EPERM);
	TCHECK_EQ(weft_demonitor(5, true), -EPERM);
	TCHECK_EQ(weft_proc_exit(1, NULL, 0), -EPERM);
	TCHECK_EQ(weft_proc_trap_exits(true), -EPERM);
	TCHECK_EQ(weft_proc_spawn(NULL, nothing, NULL, &(weft_proc_opts_t){.link = true}), -EPERM);
	TCHECK(weft_make_ref() != 0); /* refs work anywhere in a runtime */
}

static void test_not_a_process(void **state)
{
	(void)state;
	wt_each_kind(not_a_process, NULL);
}

static void *in_a_process(void *a)
{
	(void)a;
	weft_pid_t dead = dead_pid(), me = weft_proc_self();
	common(WT_CORO, dead);
	TCHECK(me != 0);
	TCHECK_EQ(weft_receive(NULL, NULL), -EINVAL);
	TCHECK_EQ(weft_receive_ref(NULL, 1, 0), -EINVAL);
	weft_msg_t *m;
	TCHECK_EQ(weft_receive_ref(&m, 0, 0), -EINVAL);
	TCHECK_EQ(weft_receive_until(&m, NULL, 0), -ETIMEDOUT);
	TCHECK_EQ(weft_link(me), -EINVAL);
	TCHECK_EQ(weft_link(0), -EINVAL);
	TCHECK_EQ(weft_unlink(me), -EINVAL);
	weft_ref_t r;
	TCHECK_EQ(weft_monitor(me, &r), -EINVAL);
	TCHECK_EQ(weft_monitor(dead, NULL), -EINVAL);
	TCHECK_EQ(weft_demonitor(12345, false), -ENOENT);
	TCHECK_EQ(weft_proc_exit(1, NULL, 5), -EINVAL);
	TCHECK_EQ(weft_proc_exit(1, "x", (size_t)1 << 20), -EMSGSIZE);
	TCHECK_EQ(weft_proc_wait(me, WEFT_NEVER), -EDEADLK);
	/* A receiver's size limit. */
	weft_pid_t small;
	TCHECK_EQ(weft_proc_spawn(&small, nothing, NULL, &(weft_proc_opts_t){.max_message = 4}), 0);
	int e = weft_send(small, "12345", 5);
	TCHECK(e == -EMSGSIZE || e == 0); /* 0: it had ended already */
	/* A full bounded mailbox of one's own. */
	weft_proc_trap_exits(false);
	return NULL;
}

static void *bounded_self(void *a)
{
	(void)a;
	weft_pid_t me = weft_proc_self();
	TCHECK_EQ(weft_send(me, "a", 1), 0);
	TCHECK_EQ(weft_send(me, "b", 1), -EDEADLK);
	TCHECK_EQ(weft_try_send(me, "b", 1), -EAGAIN);
	weft_msg_t *m;
	TCHECK_EQ(weft_receive(&m, NULL), 0);
	weft_msg_destroy(m);
	return NULL;
}

static void *process_main(void *a)
{
	(void)a;
	weft_pid_t p;
	TCHECK_EQ(weft_proc_spawn(&p, in_a_process, NULL, NULL), 0);
	TCHECK_EQ(weft_proc_wait(p, wt_hang_deadline()), 0);
	weft_proc_opts_t o = {.size = sizeof o, .bounded = true, .mailbox_bound = 1};
	TCHECK_EQ(weft_proc_spawn(&p, bounded_self, NULL, &o), 0);
	TCHECK_EQ(weft_proc_wait(p, wt_hang_deadline()), 0);
	return NULL;
}

static void test_in_a_process(void **state)
{
	(void)state;
	wt_run(process_main, NULL, 2);
}

/* A runtime that has stopped: its pids are dead processes. */
static weft_pid_t gone_pid;
static void *spawn_one(void *a)
{
	(void)a;
	return NULL;
}

static void gone(enum wt_kind kind, void *arg)
{
	(void)kind;
	(void)arg;
	TCHECK_EQ(weft_send(gone_pid, "x", 1), 0);
	TCHECK_EQ(weft_proc_signal(gone_pid, WEFT_EXIT_KILL), 0);
	TCHECK(!weft_proc_alive(gone_pid));
	weft_proc_info_t in = {.size = sizeof in};
	TCHECK_EQ(weft_proc_info(gone_pid, &in), -ESRCH);
	TCHECK_EQ(weft_proc_wait(gone_pid, 0), 0);
}

static void prep_gone(weft_runtime_t *rt)
{
	weft_pid_t p;
	weft_proc_opts_t o = {.size = sizeof o, .runtime = rt};
	assert_int_equal(weft_proc_spawn(&p, spawn_one, NULL, &o), 0);
	gone_pid = p;
	weft_actor_stats_t st = {.size = sizeof st};
	assert_int_equal(weft_actor_stats(rt, &st), 0);
}

static void test_stopped_runtime(void **state)
{
	(void)state;
	wt_each_kind_stopped(gone, prep_gone);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_a_process),
		cmocka_unit_test(test_in_a_process),
		cmocka_unit_test(test_stopped_runtime),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
