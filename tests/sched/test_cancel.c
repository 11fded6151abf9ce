/* test_cancel.c - cancellation and task groups. */
#include "wt_sim.h"
#include "sched/internal.h"

#include <sys/resource.h>
#include <unistd.h>

static _Atomic int stage;

static void *sleeper(void *a)
{
	(void)a;
	atomic_store(&stage, 1);
	int r = weft_sleep(3600 * WEFT_SEC); /* only the cancel ends it in time */
	TCHECK_EQ(r, -ECANCELED);
	TCHECK(weft_cancelled());
	TCHECK_EQ(weft_sleep(WEFT_MSEC), -ECANCELED); /* sticky */
	return (void *)(intptr_t)r;
}

static void *cancel_parked(void *a)
{
	(void)a;
	weft_task_t t;
	weft_spawn(&t, sleeper, NULL, NULL);
	while (!atomic_load(&stage))
		weft_sleep(WEFT_MSEC);
	weft_sleep(2 * WEFT_MSEC);
	TCHECK_EQ(weft_cancel(t), 0);
	void *r;
	TCHECK_EQ(weft_join(t, &r), 0);
	TCHECK_EQ((intptr_t)r, -ECANCELED); /* woken by the cancel: a sleep that ran out returns 0 */
	TCHECK_EQ(weft_cancel(t), -ESRCH);  /* finished and joined */
	return NULL;
}

/* Cancels racing the start of a wait: the canceller may read the task's
 * park state before the task's new wait is visible, and the task may read
 * its cancelled flag before the cancel sets it; the park CAS and its flag
 * check afterwards (weft__park_commit) must still end every wait. Tasks
 * (stackful and stackless) open waits only a cancel can end and are
 * cancelled the moment they are spawned, while the other worker runs them.
 * A lost cancel hangs the join. */
#define CR_TASKS 100
static int cr_rounds = 40;

static void *cr_waiter(void *a)
{
	(void)a;
	for (;;) {
		weft_waker_t w = weft_park_prepare();
		int r = weft_park(w, WEFT_NEVER);
		if (r == -ECANCELED)
			return (void *)(intptr_t)r;
	}
}

static weft_step_t cr_step(void *a, void **res)
{
	int *opened = a;
	if (*opened && weft_park_result() == -ECANCELED) {
		*res = (void *)(intptr_t)-ECANCELED;
		return WEFT_STEP_DONE;
	}
	*opened = 1;
	weft_park_prepare();
	return WEFT_STEP_PARKED;
}

static void *cancel_race_main(void *a)
{
	(void)a;
	static int opened[CR_TASKS];
	for (int round = 0; round < cr_rounds; round++) {
		weft_task_t t[CR_TASKS];
		for (int i = 0; i < CR_TASKS; i++) {
			opened[i] = 0;
			int r = (i & 1) ? weft_spawn_step(&t[i], cr_step, &opened[i], NULL)
					: weft_spawn(&t[i], cr_waiter, NULL, NULL);
			TCHECK_EQ(r, 0);
			if (i % 3 == 0)
				weft_yield(); /* let some reach their park before the cancel */
			TCHECK_EQ(weft_cancel(t[i]), 0);
		}
		for (int i = 0; i < CR_TASKS; i++) {
			void *r;
			TCHECK_EQ(weft_join(t[i], &r), 0);
			TCHECK_EQ((intptr_t)r, -ECANCELED);
		}
	}
	return NULL;
}

static void test_cancel_races_wait_start(void **state)
{
	(void)state;
	wt_run(cancel_race_main, NULL, 2);
}

static void test_cancel_parked_task(void **state)
{
	(void)state;
	wt_run(cancel_parked, NULL, 2);
}

static _Atomic int spin_flag;

static void *busy(void *a)
{
	(void)a;
	/* Under the simulation one task runs at a time: the loop yields, so
	 * the task is runnable, never parked, when the cancel comes. */
	bool sim = weft_runtime_is_sim(weft_runtime_current());
	atomic_store(&spin_flag, 1);
	while (atomic_load(&spin_flag) == 1)
		if (sim)
			(void)weft_yield(); /* running, not blocked: the cancel lands at the next blocking call */
	TCHECK(weft_cancelled());
	return (void *)(intptr_t)weft_yield();
}

static void *cancel_running(void *a)
{
	(void)a;
	weft_task_t t;
	weft_spawn(&t, busy, NULL, NULL);
	while (atomic_load(&spin_flag) != 1)
		weft_yield();
	TCHECK_EQ(weft_cancel(t), 0);
	atomic_store(&spin_flag, 2);
	void *r;
	TCHECK_EQ(weft_join(t, &r), 0);
	TCHECK_EQ((intptr_t)r, -ECANCELED);
	return NULL;
}

static void test_cancel_running_task(void **state)
{
	(void)state;
	wt_run(cancel_running, NULL, 2);
}

/* A cancelled joiner stops waiting; the task stays joinable. The joined
 * task waits on a gate the test opens only after the checks that need it
 * unfinished (it used to sleep 30 ms, which a loaded machine outlasts). */
static weft_waitq_t gate = WEFT_WAITQ_INIT;
static bool gate_open; /* under gate's lock */

static void *long_sleeper(void *a)
{
	(void)a;
	weft_waitq_node_t n;
	weft_waitq_lock(&gate);
	if (gate_open) {
		weft_waitq_unlock(&gate);
		return (void *)3;
	}
	weft_waitq_push(&gate, &n);
	weft_waitq_unlock(&gate);
	TCHECK_EQ(weft_park(n.waker, WEFT_NEVER), 0);
	return (void *)3;
}

static void open_gate(void)
{
	weft_waitq_lock(&gate);
	gate_open = true;
	weft_waitq_unlock(&gate);
	weft_waitq_wake_all(&gate, 0);
}

static void *joiner(void *a)
{
	return (void *)(intptr_t)weft_join(*(weft_task_t *)a, NULL);
}

static void *cancel_joiner(void *a)
{
	(void)a;
	weft_task_t t, j;
	weft_spawn(&t, long_sleeper, NULL, NULL);
	weft_spawn(&j, joiner, &t, NULL);
	weft_sleep(5 * WEFT_MSEC);
	weft_cancel(j);
	void *r;
	TCHECK_EQ(weft_join(j, &r), 0);
	TCHECK_EQ((intptr_t)r, -ECANCELED);
	TCHECK_EQ(weft_join_until(t, &r, weft_deadline_in(WEFT_MSEC)), -ETIMEDOUT);
	open_gate();
	TCHECK_EQ(weft_join(t, &r), 0);
	TCHECK_EQ((intptr_t)r, 3);
	return NULL;
}

static void test_cancelled_join_keeps_task_joinable(void **state)
{
	(void)state;
	wt_run(cancel_joiner, NULL, 2);
}

/* Cancels racing wake-ups and deadlines: coroutines and stackless tasks
 * wait on a wait queue with short deadlines, again and again; a waker pops
 * them one at a time, handing each a numbered token; a third of the
 * waiters are cancelled meanwhile. Each wait ends one way: popped (the
 * token is delivered, whatever its park returned: the pop is the
 * delivery) or not (timed out or cancelled, and the waiter unlinks
 * itself). So every token handed out is received exactly once, and no
 * wait is left queued. */
enum { CW_CORO = 6, CW_STEP = 6, CW_N = CW_CORO + CW_STEP };
static weft_waitq_t cwq = WEFT_WAITQ_INIT;
static long cw_rounds;
static _Atomic long cw_given, cw_got, cw_done;
static _Atomic unsigned char *cw_seen; /* per token: times received */

static weft_time_t cw_deadline(uint64_t *seed)
{
	*seed = wt_lcg(*seed);
	return weft_deadline_in((weft_time_t)((*seed >> 33) % 30000));
}

/* A popped wait's token. */
static void cw_receive(const weft_waitq_node_t *n)
{
	TCHECK(n->status > 0 && n->status <= atomic_load(&cw_given));
	if (n->status > 0 && n->status <= atomic_load(&cw_given))
		TCHECK_EQ(atomic_fetch_add(&cw_seen[n->status], 1), 0);
	atomic_fetch_add(&cw_got, 1);
}

static void *cw_coro(void *a)
{
	uint64_t seed = (uint64_t)(uintptr_t)a;
	for (long i = 0; i < cw_rounds; i++) {
		weft_waitq_node_t n;
		weft_waitq_lock(&cwq);
		weft_waitq_push(&cwq, &n);
		weft_waitq_unlock(&cwq);
		int r = weft_park(n.waker, cw_deadline(&seed));
		if (r != 0 && weft_waitq_remove(&cwq, &n)) {
			TCHECK(r == -ETIMEDOUT || r == -ECANCELED); /* not popped: nothing delivered */
			if (r == -ECANCELED)
				break;
			continue;
		}
		cw_receive(&n); /* popped: r is 0, or a deadline or cancel that came just then */
	}
	atomic_fetch_add(&cw_done, 1);
	return NULL;
}

typedef struct {
	weft_waitq_node_t n;
	uint64_t seed;
	long i;
	bool waiting;
} cw_st;

static weft_step_t cw_step(void *a, void **res)
{
	cw_st *s = a;
	*res = NULL;
	if (s->waiting) {
		s->waiting = false;
		int r = weft_park_result();
		if (r != 0 && weft_waitq_remove(&cwq, &s->n)) {
			TCHECK(r == -ETIMEDOUT || r == -ECANCELED);
			if (r == -ECANCELED)
				s->i = cw_rounds;
		} else {
			cw_receive(&s->n);
		}
	}
	if (s->i++ >= cw_rounds) {
		atomic_fetch_add(&cw_done, 1);
		return WEFT_STEP_DONE;
	}
	weft_waitq_lock(&cwq);
	weft_waitq_push(&cwq, &s->n);
	weft_waitq_unlock(&cwq);
	TCHECK_EQ(weft_park_deadline(s->n.waker, cw_deadline(&s->seed)), 0);
	s->waiting = true;
	return WEFT_STEP_PARKED;
}

static void *cw_waker(void *a)
{
	(void)a;
	for (long k = 0; atomic_load(&cw_done) < CW_N; k++) {
		int token = (int)atomic_load(&cw_given) + 1;
		atomic_store(&cw_given, token); /* before the pop: the waiter checks against it */
		if (weft_waitq_wake_one(&cwq, token) == 0)
			atomic_store(&cw_given, token - 1); /* nobody waited: not handed out */
		if (k % 3 == 2)
			weft_sleep(10000);
		else
			weft_yield();
	}
	return NULL;
}

static void *cancel_wake_main(void *a)
{
	(void)a;
	atomic_store(&cw_given, 0);
	atomic_store(&cw_got, 0);
	atomic_store(&cw_done, 0);
	cw_seen = calloc((size_t)(CW_N * cw_rounds + 2), 1);
	cw_st st[CW_STEP] = {0};
	weft_task_t t[CW_N];
	for (long i = 0; i < CW_CORO; i++)
		t[i] = wt_spawn(cw_coro, (void *)(i + 1));
	for (int i = 0; i < CW_STEP; i++) {
		st[i].seed = (uint64_t)(100 + i);
		TCHECK_EQ(weft_spawn_step(&t[CW_CORO + i], cw_step, &st[i], NULL), 0);
	}
	weft_task_t w = wt_spawn(cw_waker, NULL);
	weft_sleep(50000);
	for (int i = 0; i < CW_N; i += 3)
		TCHECK_EQ(weft_cancel(t[i]), 0);
	for (int i = 0; i < CW_N; i++)
		wt_join(t[i]);
	wt_join(w);
	long given = atomic_load(&cw_given);
	TCHECK_EQ(atomic_load(&cw_got), given); /* nothing lost, nothing twice */
	for (long k = 1; k <= given; k++)
		TCHECK_EQ(atomic_load(&cw_seen[k]), 1);
	TCHECK_EQ(cwq.len, 0); /* every wait that gave up unlinked itself */
	free((void *)cw_seen);
	return NULL;
}

static void test_cancel_races_wakes_and_deadlines(void **state)
{
	(void)state;
	cw_rounds = WT_SIZE(300, 100);
	wt_run(cancel_wake_main, NULL, 2);
}

/* Groups: wait for all; the first failure cancels the rest. Members that
 * must be cancelled sleep an hour: only a cancel ends them in time. */
#define HOUR_MS 3600000L
static _Atomic int finished_ok, finished_cancelled;

static void *member(void *a)
{
	long ms = (long)a;
	if (ms < 0) {
		weft_sleep(5 * WEFT_MSEC);
		return (void *)(intptr_t)-EIO;
	}
	int r = weft_sleep(ms * WEFT_MSEC);
	if (r == -ECANCELED)
		atomic_fetch_add(&finished_cancelled, 1);
	else
		atomic_fetch_add(&finished_ok, 1);
	return (void *)(intptr_t)r;
}

static void *group_main(void *a)
{
	(void)a;
	weft_group_t *g;
	TCHECK_EQ(weft_group_create(&g, false), 0);
	for (long i = 0; i < 20; i++)
		weft_spawn(NULL, member, (void *)(i % 5), &(weft_spawn_opts_t){.group = g});
	TCHECK_EQ(weft_group_wait(g), 0);
	TCHECK_EQ(atomic_load(&finished_ok), 20);
	TCHECK_EQ(weft_group_destroy(g), 0);

	TCHECK_EQ(weft_group_create(&g, true), 0);
	for (long i = 0; i < 10; i++)
		weft_spawn(NULL, member, (void *)HOUR_MS, &(weft_spawn_opts_t){.group = g});
	weft_spawn(NULL, member, (void *)-1L, &(weft_spawn_opts_t){.group = g});
	TCHECK_EQ(weft_group_wait(g), -EIO);
	TCHECK_EQ(atomic_load(&finished_cancelled), 10); /* cut short: none slept its hour */
	TCHECK_EQ(weft_group_destroy(g), 0);

	TCHECK_EQ(weft_group_create(&g, false), 0);
	for (long i = 0; i < 5; i++)
		weft_spawn(NULL, member, (void *)HOUR_MS, &(weft_spawn_opts_t){.group = g});
	TCHECK_EQ(weft_group_destroy(g), -EBUSY);
	/* Members sleep for an hour: a deadline ends the wait, a past one polls,
	 * and the group is untouched by either. */
	TCHECK_EQ(weft_group_wait_until(g, weft_deadline_in(2 * WEFT_MSEC)), -ETIMEDOUT);
	TCHECK_EQ(weft_group_wait_until(g, 0), -ETIMEDOUT);
	TCHECK_EQ(atomic_load(&finished_cancelled), 10);
	TCHECK_EQ(weft_group_cancel(g), 0);
	TCHECK_EQ(weft_group_wait(g), -ECANCELED); /* the members' first failure */
	TCHECK_EQ(atomic_load(&finished_cancelled), 15);
	TCHECK_EQ(weft_group_destroy(g), 0);
	TCHECK_EQ(weft_group_wait(NULL), -EINVAL);
	TCHECK_EQ(weft_group_wait_until(NULL, WEFT_NEVER), -EINVAL);
	return NULL;
}

static void test_task_groups(void **state)
{
	(void)state;
	wt_run(group_main, NULL, 2);
}

/* A cancel that begins while a member is being spawned - after the spawn
 * has joined it to the group, before its record can be looked up - still
 * reaches it. The hook cancels the group exactly there. */
static void cancel_in_spawn(weft_group_t *g)
{
	atomic_store(&weft__group_spawn_hook, NULL); /* once */
	TCHECK_EQ(weft_group_cancel(g), 0);
}

static void *group_spawn_race_main(void *a)
{
	(void)a;
	for (int round = 0; round < 2; round++) {
		bool on_error = round == 1;
		weft_group_t *g;
		TCHECK_EQ(weft_group_create(&g, on_error), 0);
		atomic_store(&weft__group_spawn_hook, cancel_in_spawn);
		weft_spawn(NULL, member, (void *)HOUR_MS, &(weft_spawn_opts_t){.group = g});
		TCHECK(atomic_load(&weft__group_spawn_hook) == NULL); /* it ran */
		/* Without the cancel the member sleeps its hour. */
		TCHECK_EQ(weft_group_wait_until(g, weft_deadline_in(10 * WEFT_SEC)), -ECANCELED);
		TCHECK_EQ(weft_group_destroy(g), 0);
	}
	return NULL;
}

static void test_group_cancel_reaches_a_member_being_spawned(void **state)
{
	(void)state;
	wt_run(group_spawn_race_main, NULL, 2);
}

/* An uncancellable wait outlives a cancel: it ends only by its wake (or
 * deadline), and the cancel shows at the next ordinary wait. */
static _Atomic int unc_stage;
static weft_waker_t unc_waker;

static void *uncancellable_waiter(void *a)
{
	(void)a;
	unc_waker = weft_park_prepare_uncancellable();
	atomic_store(&unc_stage, 1);
	TCHECK_EQ(weft_park(unc_waker, WEFT_NEVER), 0); /* the wake, not the cancel */
	TCHECK(weft_cancelled());
	weft_waker_t d = weft_park_prepare_uncancellable();
	TCHECK_EQ(weft_park(d, weft_deadline_in(WEFT_MSEC)), -ETIMEDOUT); /* deadlines still apply */
	return (void *)(intptr_t)weft_sleep(WEFT_MSEC);			  /* ordinary: -ECANCELED */
}

static void *uncancellable_main(void *a)
{
	(void)a;
	weft_task_t t;
	TCHECK_EQ(weft_spawn(&t, uncancellable_waiter, NULL, NULL), 0);
	while (!atomic_load(&unc_stage))
		weft_sleep(WEFT_MSEC);
	TCHECK_EQ(weft_cancel(t), 0);
	weft_sleep(5 * WEFT_MSEC); /* still parked: nothing woke it */
	TCHECK(weft_unpark(unc_waker, 0));
	void *r;
	TCHECK_EQ(weft_join(t, &r), 0);
	TCHECK_EQ((intptr_t)r, -ECANCELED);
	return NULL;
}

static void test_uncancellable_wait(void **state)
{
	(void)state;
	wt_run(uncancellable_main, NULL, 2);
}

/* A coroutine on the smallest stack spawning coroutines of fresh stack classes: the stack
 * allocator's carving runs on that small stack and must fit. */
static void *small_child(void *a)
{
	return a;
}

static void *small_parent(void *a)
{
	weft_task_t t;
	TCHECK_EQ(weft_spawn(&t, small_child, NULL, &(weft_spawn_opts_t){.stack_size = (size_t)(uintptr_t)a}), 0);
	TCHECK_EQ(weft_join(t, NULL), 0);
	return NULL;
}

static void *small_stack_main(void *a)
{
	(void)a;
	for (size_t sz = 16384; sz <= ((size_t)1 << 20); sz *= 2) {
		weft_task_t t;
		TCHECK_EQ(weft_spawn(&t, small_parent, (void *)(uintptr_t)sz, &(weft_spawn_opts_t){.stack_size = 8192}),
			  0);
		TCHECK_EQ(weft_join(t, NULL), 0);
	}
	return NULL;
}

static void test_spawn_from_minimal_stack(void **state)
{
	(void)state;
	wt_run(small_stack_main, NULL, 2);
}

/* A coroutine takes its stack when it first runs. If none can be had (here:
 * an address-space limit too small for a 1 GiB stack), it never runs and
 * ends with the result -ENOMEM, which its joiner and its group see. */
static _Atomic int big_ran;

static void *big_child(void *a)
{
	(void)a;
	atomic_store(&big_ran, 1);
	return NULL;
}

static long vm_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0;
	if (f) {
		if (fscanf(f, "%ld", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	return pages * sysconf(_SC_PAGESIZE);
}

static void *no_stack_main(void *a)
{
	(void)a;
	weft_group_t *g;
	TCHECK_EQ(weft_group_create(&g, true), 0);
	struct rlimit old, lim;
	TCHECK_EQ(getrlimit(RLIMIT_AS, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)vm_bytes() + ((rlim_t)64 << 20);
	TCHECK_EQ(setrlimit(RLIMIT_AS, &lim), 0);
	weft_task_t c;
	void *r = NULL;
	TCHECK_EQ(weft_spawn(&c, big_child, NULL, &(weft_spawn_opts_t){.stack_size = (size_t)1 << 30}), 0);
	TCHECK_EQ(weft_join(c, &r), 0); /* one worker: the child's first run is now */
	TCHECK_EQ(weft_spawn(NULL, big_child, NULL, &(weft_spawn_opts_t){.group = g, .stack_size = (size_t)1 << 30}),
		  0);
	int e = weft_group_wait(g);
	setrlimit(RLIMIT_AS, &old);
	TCHECK_EQ((intptr_t)r, -ENOMEM);
	TCHECK_EQ(e, -ENOMEM);
	TCHECK_EQ(atomic_load(&big_ran), 0);
	TCHECK_EQ(weft_group_destroy(g), 0);
	/* With the limit gone, the same spawn runs. */
	TCHECK_EQ(weft_spawn(&c, big_child, NULL, &(weft_spawn_opts_t){.stack_size = (size_t)1 << 30}), 0);
	TCHECK_EQ(weft_join(c, NULL), 0);
	TCHECK_EQ(atomic_load(&big_ran), 1);
	return NULL;
}

static void test_coroutine_without_a_stack_ends_with_enomem(void **state)
{
	(void)state;
#ifdef WEFT_SANITIZED
	/* The sanitizers reserve far more address space than the limit allows. */
	(void)no_stack_main;
	skip();
#else
	if (getenv("WEFT_TEST_EMULATED"))
		skip(); /* so does qemu-user */
	wt_run(no_stack_main, NULL, 1);
#endif
}

/* ------------------------------------------------------------ under the simulation */

/* The twins: the same bodies, one task at a time in an order drawn from
 * each seed (tests/wt_sim.h), each seed starting from what the last left. */
static void *parked_sim_main(void *a)
{
	atomic_store(&stage, 0);
	return cancel_parked(a);
}

static void test_cancel_parked_task_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sched/cancel_parked_task", parked_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *running_sim_main(void *a)
{
	atomic_store(&spin_flag, 0);
	return cancel_running(a);
}

static void test_cancel_running_task_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sched/cancel_running_task", running_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void test_cancel_races_wait_start_sim(void **state)
{
	(void)state;
	cr_rounds = 2;
	wt_sim_sweep("sched/cancel_races_wait_start", cancel_race_main, NULL, NULL, WT_SIM_SEEDS);
}

static void test_cancel_races_wakes_and_deadlines_sim(void **state)
{
	(void)state;
	cw_rounds = 15;
	wt_sim_sweep("sched/cancel_races_wakes_and_deadlines", cancel_wake_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *joiner_sim_main(void *a)
{
	weft_waitq_lock(&gate);
	gate_open = false;
	weft_waitq_unlock(&gate);
	return cancel_joiner(a);
}

static void test_cancelled_join_keeps_task_joinable_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sched/cancelled_join_keeps_task_joinable", joiner_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *groups_sim_main(void *a)
{
	atomic_store(&finished_ok, 0);
	atomic_store(&finished_cancelled, 0);
	return group_main(a);
}

static void test_task_groups_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sched/task_groups", groups_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void test_group_cancel_reaches_a_member_being_spawned_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sched/group_cancel_reaches_a_member_being_spawned", group_spawn_race_main, NULL, NULL,
		     WT_SIM_SEEDS);
}

static void *uncancellable_sim_main(void *a)
{
	atomic_store(&unc_stage, 0);
	return uncancellable_main(a);
}

static void test_uncancellable_wait_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sched/uncancellable_wait", uncancellable_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cancel_parked_task),
		cmocka_unit_test(test_cancel_running_task),
		cmocka_unit_test(test_cancel_races_wait_start),
		cmocka_unit_test(test_cancel_races_wakes_and_deadlines),
		cmocka_unit_test(test_cancelled_join_keeps_task_joinable),
		cmocka_unit_test(test_task_groups),
		cmocka_unit_test(test_group_cancel_reaches_a_member_being_spawned),
		cmocka_unit_test(test_uncancellable_wait),
		cmocka_unit_test(test_spawn_from_minimal_stack),
		cmocka_unit_test(test_coroutine_without_a_stack_ends_with_enomem),
		cmocka_unit_test(test_cancel_parked_task_sim),
		cmocka_unit_test(test_cancel_running_task_sim),
		cmocka_unit_test(test_cancel_races_wait_start_sim),
		cmocka_unit_test(test_cancel_races_wakes_and_deadlines_sim),
		cmocka_unit_test(test_cancelled_join_keeps_task_joinable_sim),
		cmocka_unit_test(test_task_groups_sim),
		cmocka_unit_test(test_group_cancel_reaches_a_member_being_spawned_sim),
		cmocka_unit_test(test_uncancellable_wait_sim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
