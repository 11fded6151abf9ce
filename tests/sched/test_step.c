/* test_step.c - the step protocol's core (weft/sched.h, "Step forms"): one
 * registration at a time, a repeat before the wake, weft_step_retry, the
 * end of a task with an op registered.
 *
 * Regression: a stackless task that opened another wait while a waker had
 * claimed (weft_unpark_claim) but not yet finished (weft_unpark_finish) its
 * registered wait overwrote the claimed state, so the finish wrote an old
 * epoch back over the new wait. Here the waker is held between claim and
 * finish by the test hook in weft_unpark (no sleep: it waits for the task
 * to have made its checks), and the second registration must be refused
 * with the parker's state untouched. */
#include "weft_test.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sched/internal.h"

/* The calling stackless task's parker state. */
static uint64_t my_state(void)
{
	return atomic_load(&weft__cur_task()->park.state);
}

/* The second registrations a stackless task with a pending one tries:
 * every one is refused with -EBUSY and changes nothing. */
static void check_refused(weft_chan_op_t *registered, weft_chan_t *ch, uint8_t registered_call_is_recv)
{
	uint64_t before = my_state();
	weft_waker_t w = weft_park_prepare();
	TCHECK(w.parker == NULL);
	TCHECK_EQ(weft_park_deadline(w, WEFT_NEVER), -EBUSY);
	TCHECK_EQ(weft_park(w, WEFT_NEVER), -EBUSY);
	TCHECK(!weft_unpark(w, 0));

	weft_chan_t *other;
	TCHECK_EQ(weft_chan_create(&other, sizeof(long), 0), 0);
	weft_chan_op_t op2;
	memset(&op2, 0x5a, sizeof op2);
	weft_chan_op_t copy = op2;
	long v = 7;
	TCHECK_EQ(weft_chan_recv_step(other, &v, WEFT_NEVER, &op2), -EBUSY);
	TCHECK_EQ(weft_chan_send_step(other, &v, WEFT_NEVER, &op2), -EBUSY);
	TCHECK(memcmp(&op2, &copy, sizeof op2) == 0); /* op2 untouched */
	TCHECK_EQ(weft_chan_try_recv(other, &v), -EAGAIN); /* nobody queued a send */
	TCHECK_EQ(weft_chan_release(other), 0);		    /* nobody waits on it */

	/* The same op in the other call: another registration too. */
	if (registered_call_is_recv)
		TCHECK_EQ(weft_chan_send_step(ch, &v, WEFT_NEVER, registered), -EBUSY);
	else
		TCHECK_EQ(weft_chan_recv_step(ch, &v, WEFT_NEVER, registered), -EBUSY);
	TCHECK_EQ(v, 7);
	TCHECK_EQ(my_state(), before); /* no wait opened, the epoch kept */
}

/* ------------------------------------------------------------ a claimed registration */

static weft_chan_t *cch;
static _Atomic int c_s_registered, c_t_registered, c_held, c_checked, c_hook_saw_claim;
static _Atomic(weft_task *) c_s_task;

typedef struct {
	weft_chan_op_t op;
	long v;
	int phase;
	uint64_t epoch;
} claim_st;

/* After every wake the closing thread makes: the first one (the second
 * receiver's finish) comes while the first receiver is claimed and not yet
 * finished; hold the closer there until that receiver has tried its second
 * registrations. */
static __thread bool c_in_close;
static void claim_hook(void)
{
	if (!c_in_close || atomic_exchange(&c_held, 1))
		return;
	weft_task *s = atomic_load(&c_s_task);
	uint64_t st = atomic_load(&s->park.state);
	atomic_store(&c_hook_saw_claim, (st & WEFT_PS_CLAIMED) != 0 && WEFT_PS_PHASE(st) != WEFT_PH_WOKEN);
	weft_time_t give_up = wt_hang_deadline();
	while (!atomic_load(&c_checked) && weft_now() < give_up)
		sched_yield();
}

static weft_step_t claim_s_step(void *a, void **res)
{
	claim_st *s = a;
	*res = NULL;
	int e = weft_chan_recv_step(cch, &s->v, WEFT_NEVER, &s->op);
	if (s->phase == 0) {
		TCHECK_EQ(e, -EINPROGRESS);
		s->phase = 1;
		s->epoch = WEFT_PS_EPOCH(my_state());
		atomic_store(&c_s_task, weft__cur_task());
		atomic_store(&c_s_registered, 1);
		/* Stay on the CPU, the wait open, until the closer holds it
		 * claimed and unfinished. */
		weft_time_t give_up = wt_hang_deadline();
		while (!atomic_load(&c_held) && weft_now() < give_up)
			;
		TCHECK(my_state() & WEFT_PS_CLAIMED);
		check_refused(&s->op, cch, 1);
		TCHECK_EQ(weft_chan_recv_step(cch, &s->v, WEFT_NEVER, &s->op), -EINPROGRESS); /* not ended */
		TCHECK_EQ(WEFT_PS_EPOCH(my_state()), s->epoch);
		atomic_store(&c_checked, 1);
		return WEFT_STEP_PARKED;
	}
	TCHECK_EQ(e, -EPIPE); /* the close, finished */
	/* The next wait is a new epoch: the claimed one was never reused. */
	weft_waker_t w = weft_park_prepare();
	TCHECK(w.parker != NULL);
	TCHECK_EQ(w.epoch, s->epoch + 1);
	TCHECK(weft_unpark(w, 0));
	return WEFT_STEP_DONE;
}

static weft_step_t claim_t_step(void *a, void **res)
{
	claim_st *s = a;
	*res = NULL;
	int e = weft_chan_recv_step(cch, &s->v, WEFT_NEVER, &s->op);
	if (s->phase++ == 0) {
		TCHECK_EQ(e, -EINPROGRESS);
		atomic_store(&c_t_registered, 1);
		return WEFT_STEP_PARKED;
	}
	TCHECK_EQ(e, -EPIPE);
	return WEFT_STEP_DONE;
}

static void test_claimed_registration_refuses(void **state)
{
	(void)state;
	atomic_store(&tcheck_failures, 0);
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	assert_int_equal(weft_chan_create(&cch, sizeof(long), 0), 0);
	static claim_st s, t;
	weft_spawn_opts_t o = {.runtime = rt};
	weft_task_t ts, tt;
	assert_int_equal(weft_spawn_step(&ts, claim_s_step, &s, &o), 0);
	while (!atomic_load(&c_s_registered))
		sched_yield();
	/* Queued behind s: close claims s first, then t, and wakes t first. */
	assert_int_equal(weft_spawn_step(&tt, claim_t_step, &t, &o), 0);
	while (!atomic_load(&c_t_registered))
		sched_yield();
	atomic_store(&weft__unpark_hook, claim_hook);
	c_in_close = true;
	assert_int_equal(weft_chan_close(cch), 0);
	c_in_close = false;
	atomic_store(&weft__unpark_hook, NULL);
	assert_int_equal(weft_join(tt, NULL), 0);
	assert_int_equal(weft_join(ts, NULL), 0);
	assert_true(atomic_load(&c_hook_saw_claim));
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(weft_chan_release(cch), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* ------------------------------------------------------------ a claimed wait of the task's own */

static weft_waker_t raw_w; /* published by raw_published */
static _Atomic int raw_published, raw_claimed, raw_checked;

static weft_step_t raw_step(void *a, void **res)
{
	int *phase = a;
	*res = NULL;
	if ((*phase)++ == 0) {
		raw_w = weft_park_prepare();
		atomic_store(&raw_published, 1);
		weft_time_t give_up = wt_hang_deadline();
		while (!atomic_load(&raw_claimed) && weft_now() < give_up)
			;
		/* Claimed and not finished: nothing opens a wait, nothing
		 * registers (the claimer's finish needs this epoch). */
		uint64_t before = my_state();
		TCHECK(before & WEFT_PS_CLAIMED);
		weft_waker_t w2 = weft_park_prepare();
		TCHECK(w2.parker == NULL);
		TCHECK_EQ(weft_park_deadline(w2, WEFT_NEVER), -EBUSY);
		weft_chan_t *ch;
		TCHECK_EQ(weft_chan_create(&ch, sizeof(long), 0), 0);
		weft_chan_op_t op;
		long v;
		TCHECK_EQ(weft_chan_recv_step(ch, &v, WEFT_NEVER, &op), -EBUSY);
		TCHECK_EQ(weft_chan_release(ch), 0);
		TCHECK_EQ(my_state(), before);
		atomic_store(&raw_checked, 1);
		return WEFT_STEP_PARKED;
	}
	TCHECK_EQ(weft_park_result(), -EPIPE); /* the claimer's result */
	weft_waker_t w = weft_park_prepare();
	TCHECK(w.parker != NULL);
	TCHECK_EQ(w.epoch, raw_w.epoch + 1);
	TCHECK(weft_unpark(w, 0));
	return WEFT_STEP_DONE;
}

static void test_claimed_wait_refuses(void **state)
{
	(void)state;
	atomic_store(&tcheck_failures, 0);
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 1}), 0);
	static int phase;
	weft_task_t t;
	assert_int_equal(weft_spawn_step(&t, raw_step, &phase, &(weft_spawn_opts_t){.runtime = rt}), 0);
	while (!atomic_load(&raw_published))
		sched_yield();
	weft_waker_t w = raw_w;
	assert_true(weft_unpark_claim(w));
	atomic_store(&raw_claimed, 1);
	while (!atomic_load(&raw_checked))
		sched_yield();
	weft_unpark_finish(w, -EPIPE);
	assert_int_equal(weft_join(t, NULL), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* ------------------------------------------------------------ a registration, open */

static weft_chan_t *och;

typedef struct {
	weft_chan_op_t op;
	long v;
	int phase;
} open_st;

static _Atomic int o_registered;

/* Registered, its wait open: the same refusals; a repeat before the wake
 * (even after a yield) returns -EINPROGRESS and changes nothing. */
static weft_step_t open_step(void *a, void **res)
{
	open_st *s = a;
	*res = NULL;
	int e = weft_chan_recv_step(och, &s->v, WEFT_NEVER, &s->op);
	switch (s->phase++) {
	case 0:
		TCHECK_EQ(e, -EINPROGRESS);
		check_refused(&s->op, och, 1);
		return WEFT_STEP_YIELD;
	case 1:
		TCHECK_EQ(e, -EINPROGRESS); /* run again before the wake */
		check_refused(&s->op, och, 1);
		atomic_store(&o_registered, 1);
		return WEFT_STEP_PARKED;
	default:
		TCHECK_EQ(e, 0);
		TCHECK_EQ(s->v, 42);
		/* Completed: the op is idle, anything may register now. */
		weft_waker_t w = weft_park_prepare();
		TCHECK(w.parker != NULL);
		TCHECK(weft_unpark(w, 0));
		return WEFT_STEP_DONE;
	}
}

static void *open_main(void *a)
{
	(void)a;
	TCHECK_EQ(weft_chan_create(&och, sizeof(long), 0), 0);
	static open_st s;
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, open_step, &s, NULL), 0);
	WT_WAIT_UNTIL(atomic_load(&o_registered));
	long v = 42;
	TCHECK_EQ(weft_chan_send(och, &v), 0);
	TCHECK_EQ(weft_join(t, NULL), 0);
	TCHECK_EQ(weft_chan_release(och), 0);
	return NULL;
}

static void test_open_registration_refuses(void **state)
{
	(void)state;
	wt_run(open_main, NULL, 2);
}

/* ------------------------------------------------------------ a step form of the program's own */

enum { MY_CALL = WEFT_STEP_ID_USER + 1 };

typedef struct {
	uint8_t call; /* the op's first byte */
	int tries;
} my_op;

/* "Try again later" three times, then complete: a step form written with
 * the building blocks. */
static int my_step(weft_op_t *op)
{
	my_op *o = (my_op *)op;
	int b = weft_step_begin(op, MY_CALL);
	if (b < 0)
		return b;
	if (b == 0)
		o->tries = 0;
	else
		TCHECK_EQ(weft_park_result(), 0); /* a retry's wait ends with 0 */
	if (o->tries++ < 3)
		return weft_step_retry(op);
	return o->tries;
}

typedef struct {
	weft_op_t op;
	int runs;
} my_st;

static weft_step_t my_task(void *a, void **res)
{
	my_st *s = a;
	s->runs++;
	int r = my_step(&s->op);
	if (r == -EINPROGRESS) {
		TCHECK_EQ(weft_step_begin(&s->op, MY_CALL + 1), -EBUSY); /* the same op, another call */
		return WEFT_STEP_PARKED;
	}
	TCHECK_EQ(r, 4);
	*res = (void *)(intptr_t)s->runs;
	return WEFT_STEP_DONE;
}

static void *my_main(void *a)
{
	(void)a;
	static my_st s;
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, my_task, &s, NULL), 0);
	void *r;
	TCHECK_EQ(weft_join(t, &r), 0);
	TCHECK_EQ((intptr_t)r, 4);
	/* Outside stackless tasks: nothing to register; calls block. */
	weft_op_t op;
	TCHECK_EQ(weft_step_begin(&op, MY_CALL), 0);
	TCHECK_EQ(weft_step_register(&op), -EPERM);
	return NULL;
}

static void test_retry_and_own_step_form(void **state)
{
	(void)state;
	wt_run(my_main, NULL, 1);
}

/* ------------------------------------------------------------ ending with an op registered */

static weft_step_t leaves_registered(void *a, void **res)
{
	weft_chan_op_t *op = a;
	*res = NULL;
	long v;
	weft_chan_t *ch;
	weft_chan_create(&ch, sizeof(long), 0);
	weft_chan_recv_step(ch, &v, WEFT_NEVER, op); /* registers */
	return WEFT_STEP_DONE;			     /* without repeating it: fatal */
}

static void test_ending_registered_aborts(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0)
			dup2(devnull, 2); /* the report */
		weft_runtime_t *rt;
		if (weft_runtime_start(&rt, &(weft_config_t){.workers = 1}) != 0)
			_exit(2);
		static weft_chan_op_t op;
		weft_task_t t;
		weft_spawn_step(&t, leaves_registered, &op, &(weft_spawn_opts_t){.runtime = rt});
		weft_join(t, NULL);
		_exit(0); /* not reached */
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ending_registered_aborts), /* first: it forks, no runtime running */
		cmocka_unit_test(test_claimed_registration_refuses),
		cmocka_unit_test(test_claimed_wait_refuses),
		cmocka_unit_test(test_open_registration_refuses),
		cmocka_unit_test(test_retry_and_own_step_form),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
