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
#include "wt_sim.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <weft/sync.h>

#include "sched/internal.h"

/* The calling stackless task's parker state. */
static uint64_t my_state(void)
{
	return atomic_load(&weft__cur_task()->park.state);
}

/* The second registrations a stackless task with a pending one tries:
 * every one is refused with -EBUSY and changes nothing. */
static void check_refused(weft_op_t *registered, weft_chan_t *ch, uint8_t registered_call_is_recv)
{
	uint64_t before = my_state();
	weft_waker_t w = weft_park_prepare();
	TCHECK(w.parker == NULL);
	TCHECK_EQ(weft_park_deadline(w, WEFT_NEVER), -EBUSY);
	TCHECK_EQ(weft_park(w, WEFT_NEVER), -EBUSY);
	TCHECK(!weft_unpark(w, 0));

	weft_chan_t *other;
	TCHECK_EQ(weft_chan_create(&other, sizeof(long), 0), 0);
	weft_op_t op2;
	memset(&op2, 0x5a, sizeof op2);
	weft_op_t copy = op2;
	long v = 7;
	TCHECK_EQ(weft_chan_recv_step(other, &v, WEFT_NEVER, &op2), -EBUSY);
	TCHECK_EQ(weft_chan_send_step(other, &v, WEFT_NEVER, &op2), -EBUSY);
	TCHECK(memcmp(&op2, &copy, sizeof op2) == 0);	   /* op2 untouched */
	TCHECK_EQ(weft_chan_try_recv(other, &v), -EAGAIN); /* nobody queued a send */
	TCHECK_EQ(weft_chan_release(other), 0);		   /* nobody waits on it */

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
	weft_op_t op;
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
		weft_op_t op;
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
	weft_op_t op;
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
	memset(&s, 0, sizeof s);
	atomic_store(&o_registered, 0);
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
	int b = weft_step_begin(op, MY_CALL, NULL);
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
		TCHECK_EQ(weft_step_begin(&s->op, MY_CALL + 1, NULL), -EBUSY); /* the same op, another call */
		TCHECK_EQ(weft_step_begin(&s->op, MY_CALL, s), -EBUSY);	       /* the same call on another object */
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
	memset(&s, 0, sizeof s);
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, my_task, &s, NULL), 0);
	void *r;
	TCHECK_EQ(weft_join(t, &r), 0);
	TCHECK_EQ((intptr_t)r, 4);
	/* Outside stackless tasks: nothing to register; calls block. */
	weft_op_t op;
	TCHECK_EQ(weft_step_begin(&op, MY_CALL, NULL), WEFT_STEP_BLOCKS);
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
	weft_op_t *op = a;
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
		static weft_op_t op;
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

/* ------------------------------------------------------------ join */

#define NJOIN WT_SIZE(64, 16)

static void *returns_arg(void *a)
{
	weft_yield();
	return a;
}

static weft_step_t returns_arg_step(void *a, void **res)
{
	*res = a;
	return WEFT_STEP_DONE;
}

typedef struct {
	weft_op_t op;
	weft_task_t target;
	intptr_t want;
	int result;
	void *got;
	_Atomic int registered;
	_Atomic int runs;
	weft_time_t dl;
	int phase;
} join_st;

static weft_step_t join_step(void *a, void **res)
{
	join_st *s = a;
	*res = NULL;
	s->runs++;
	int r = weft_join_step(s->target, &s->got, s->dl ? s->dl : WEFT_NEVER, &s->op);
	if (r == -EINPROGRESS) {
		atomic_store(&s->registered, 1);
		return WEFT_STEP_PARKED;
	}
	s->result = r;
	return WEFT_STEP_DONE;
}

/* Stackless joiners of coroutines and of stackless tasks get each result
 * once; a second joiner of the same task gets -ESRCH; coroutines and
 * threads may call the step form, which blocks there. */
static void *join_thread(void *a)
{
	weft_task_t t = (weft_task_t)(uintptr_t)a;
	weft_op_t op;
	void *r;
	TCHECK_EQ(weft_join_step(t, &r, WEFT_NEVER, &op), 0);
	TCHECK_EQ((intptr_t)r, 77);
	return NULL;
}

static void *join_main(void *a)
{
	(void)a;
	join_st *st = calloc(2 * NJOIN, sizeof *st);
	weft_task_t *j = calloc(2 * NJOIN, sizeof *j);
	for (int i = 0; i < NJOIN; i++) {
		intptr_t v = 1000 + i;
		if (i % 2)
			TCHECK_EQ(weft_spawn_step(&st[i].target, returns_arg_step, (void *)v, NULL), 0);
		else
			st[i].target = wt_spawn(returns_arg, (void *)v);
		st[i].want = v;
		st[NJOIN + i].target = st[i].target; /* a second joiner of the same task */
		st[NJOIN + i].want = v;
	}
	for (int i = 0; i < 2 * NJOIN; i++)
		TCHECK_EQ(weft_spawn_step(&j[i], join_step, &st[i], NULL), 0);
	for (int i = 0; i < 2 * NJOIN; i++)
		wt_join(j[i]);
	for (int i = 0; i < NJOIN; i++) {
		join_st *x = &st[i], *y = &st[NJOIN + i];
		/* Exactly one of the two joined it, and got its result. */
		TCHECK((x->result == 0) != (y->result == 0));
		join_st *w = x->result == 0 ? x : y, *l = x->result == 0 ? y : x;
		TCHECK_EQ((intptr_t)w->got, w->want);
		TCHECK_EQ(l->result, -ESRCH);
		TCHECK(l->got == NULL);
		TCHECK_EQ(weft_join(x->target, NULL), -ESRCH); /* dead */
	}
	/* Step forms in a coroutine and a plain thread block there. */
	weft_task_t t = wt_spawn(returns_arg, (void *)77);
	weft_op_t op;
	void *r;
	TCHECK_EQ(weft_join_step(t, &r, WEFT_NEVER, &op), 0);
	TCHECK_EQ((intptr_t)r, 77);
	if (!weft_runtime_is_sim(weft_runtime_current())) { /* only the sim's own thread may touch it */
		t = wt_spawn(returns_arg, (void *)77);
		pthread_t th;
		TCHECK_EQ(pthread_create(&th, NULL, join_thread, (void *)(uintptr_t)t), 0);
		pthread_join(th, NULL);
	}
	free(st);
	free(j);
	return NULL;
}

static void test_join_step(void **state)
{
	(void)state;
	wt_run(join_main, NULL, 2);
}

/* A target that runs until told. */
static _Atomic int target_go;
static void *waits_for_go(void *a)
{
	WT_WAIT_UNTIL(atomic_load(&target_go));
	return a;
}

/* Deadlines: a past one polls (-ETIMEDOUT, nothing registered); one that
 * passes while registered gives -ETIMEDOUT; either way the target stays
 * joinable. Cancellation while registered: -ECANCELED, joinable too. */
static weft_step_t join_poll_step(void *a, void **res)
{
	join_st *s = a;
	*res = NULL;
	if (s->phase++ == 0) {
		TCHECK_EQ(weft_join_step(s->target, &s->got, weft_now() - 1, &s->op), -ETIMEDOUT);
		TCHECK_EQ(weft_join_step(s->target, &s->got, 1, &s->op), -ETIMEDOUT);
		s->dl = weft_deadline_in(2 * WEFT_MSEC); /* (registers, unless it has passed already) */
	}
	return join_step(a, res);
}

static void *join_deadline_main(void *a)
{
	(void)a;
	atomic_store(&target_go, 0);
	weft_task_t target = wt_spawn(waits_for_go, (void *)5);
	join_st s = {.target = target};
	weft_task_t j;
	TCHECK_EQ(weft_spawn_step(&j, join_poll_step, &s, NULL), 0);
	wt_join(j);
	TCHECK_EQ(s.result, -ETIMEDOUT);

	join_st c = {.target = target};
	TCHECK_EQ(weft_spawn_step(&j, join_step, &c, NULL), 0);
	WT_WAIT_UNTIL(atomic_load(&c.registered));
	TCHECK_EQ(weft_join(target, NULL), -ESRCH); /* taken by the registered joiner */
	TCHECK_EQ(weft_cancel(j), 0);
	wt_join(j);
	TCHECK_EQ(c.result, -ECANCELED);

	atomic_store(&target_go, 1);
	void *r;
	TCHECK_EQ(weft_join(target, &r), 0); /* still joinable */
	TCHECK_EQ((intptr_t)r, 5);
	return NULL;
}

static void test_join_step_deadline_cancel(void **state)
{
	(void)state;
	wt_run(join_deadline_main, NULL, 2);
}

/* ------------------------------------------------------------ group wait */

#define NMEMBERS 6

static void *member(void *a)
{
	WT_WAIT_UNTIL(atomic_load(&target_go));
	return a;
}

typedef struct {
	weft_op_t op;
	weft_group_t *g;
	int result;
	int phase;
	weft_time_t dl;
	bool destroy; /* the group, the moment the wait returns */
	_Atomic int registered;
} group_st;

static weft_step_t group_step(void *a, void **res)
{
	group_st *s = a;
	*res = NULL;
	if (s->phase++ == 0) {
		TCHECK_EQ(weft_group_wait_step(s->g, weft_now() - 1, &s->op), -ETIMEDOUT); /* polls */
	}
	int r = weft_group_wait_step(s->g, s->dl ? s->dl : WEFT_NEVER, &s->op);
	if (r == -EINPROGRESS) {
		atomic_store(&s->registered, 1);
		return WEFT_STEP_PARKED;
	}
	s->result = r;
	if (s->destroy)
		TCHECK_EQ(weft_group_destroy(s->g), 0);
	return WEFT_STEP_DONE;
}

static void *group_thread(void *a)
{
	weft_op_t op;
	TCHECK_EQ(weft_group_wait_step(a, WEFT_NEVER, &op), -EPIPE);
	return NULL;
}

/* Stackless waiters, a coroutine and a plain thread (the step form,
 * blocking there) all see the first failure once every member ended; a
 * deadline passes (-ETIMEDOUT) and a cancellation ends a registered wait
 * (-ECANCELED) without changing the group. */
static void *group_main(void *a)
{
	(void)a;
	atomic_store(&target_go, 0);
	weft_group_t *g;
	TCHECK_EQ(weft_group_create(&g, false), 0);
	for (int i = 0; i < NMEMBERS; i++)
		TCHECK_EQ(weft_spawn(NULL, member, (void *)(intptr_t)(i == 3 ? -EPIPE : 0),
				     &(weft_spawn_opts_t){.group = g}),
			  0);
	group_st w[4] = {{.g = g}, {.g = g}, {.g = g, .dl = weft_deadline_in(2 * WEFT_MSEC)}, {.g = g}};
	weft_task_t t[4];
	for (int i = 0; i < 4; i++)
		TCHECK_EQ(weft_spawn_step(&t[i], group_step, &w[i], NULL), 0);
	WT_WAIT_UNTIL(atomic_load(&w[0].registered) && atomic_load(&w[1].registered));
	wt_join(t[2]);
	TCHECK_EQ(w[2].result, -ETIMEDOUT);
	WT_WAIT_UNTIL(atomic_load(&w[3].registered));
	TCHECK_EQ(weft_cancel(t[3]), 0);
	wt_join(t[3]);
	TCHECK_EQ(w[3].result, -ECANCELED);
	/* A plain thread waits too; not under the simulation, which only its
	 * own thread may touch. */
	bool thread = !weft_runtime_is_sim(weft_runtime_current());
	pthread_t th;
	if (thread)
		TCHECK_EQ(pthread_create(&th, NULL, group_thread, g), 0);
	atomic_store(&target_go, 1);
	weft_op_t op;
	TCHECK_EQ(weft_group_wait_step(g, WEFT_NEVER, &op), -EPIPE);
	wt_join(t[0]);
	wt_join(t[1]);
	TCHECK_EQ(w[0].result, -EPIPE);
	TCHECK_EQ(w[1].result, -EPIPE);
	if (thread)
		pthread_join(th, NULL);
	TCHECK_EQ(weft_group_destroy(g), 0);
	return NULL;
}

static void test_group_wait_step(void **state)
{
	(void)state;
	wt_run(group_main, NULL, 2);
}

/* Lifetime: the stackless waiter destroys the group the moment its wait
 * returns, while the last member's end, which woke it, is stretched right
 * after the wake-up (the unpark hook); ASan and TSan see any later touch. */
#define GROUNDS WT_SIZE(24, 12)
static _Atomic int stretch_armed;
static __thread bool armed_here;
static void stretch_hook(void)
{
	if (!armed_here)
		return;
	armed_here = false;
	atomic_fetch_add(&stretch_armed, 1);
	struct timespec ts = {0, 2 * 1000 * 1000};
	nanosleep(&ts, NULL);
}

static void *last_member(void *a)
{
	group_st *s = a;
	WT_WAIT_UNTIL(atomic_load(&s->registered));
	armed_here = true; /* group_done, on this worker, wakes the waiter */
	return NULL;
}

static void *group_life_main(void *a)
{
	(void)a;
	atomic_store(&weft__unpark_hook, stretch_hook);
	for (int round = 0; round < GROUNDS; round++) {
		weft_group_t *g;
		TCHECK_EQ(weft_group_create(&g, false), 0);
		group_st s = {.g = g, .destroy = true};
		TCHECK_EQ(weft_spawn(NULL, last_member, &s, &(weft_spawn_opts_t){.group = g}), 0);
		weft_task_t t;
		TCHECK_EQ(weft_spawn_step(&t, group_step, &s, NULL), 0);
		wt_join(t);
		TCHECK_EQ(s.result, 0);
	}
	atomic_store(&weft__unpark_hook, NULL);
	TCHECK(atomic_load(&stretch_armed) > 0);
	return NULL;
}

static void test_group_destroyed_at_once(void **state)
{
	(void)state;
	wt_run(group_life_main, NULL, 2);
}

/* One registration at a time, across modules: registered in a join, a
 * stackless task is refused a group wait, a lock, a channel receive and a
 * wait of its own; the same op is refused in the other call. */
static weft_step_t join_busy_step(void *a, void **res)
{
	join_st *s = a;
	*res = NULL;
	int r = weft_join_step(s->target, &s->got, WEFT_NEVER, &s->op);
	if (s->phase++ > 0) {
		s->result = r;
		return WEFT_STEP_DONE;
	}
	TCHECK_EQ(r, -EINPROGRESS);
	weft_group_t *g;
	TCHECK_EQ(weft_group_create(&g, false), 0);
	weft_mutex_t m = WEFT_MUTEX_INIT;
	weft_chan_t *ch;
	TCHECK_EQ(weft_chan_create(&ch, sizeof(long), 0), 0);
	weft_op_t op2;
	weft_op_t cop;
	long v;
	TCHECK_EQ(weft_group_wait_step(g, WEFT_NEVER, &op2), -EBUSY);
	TCHECK_EQ(weft_group_wait_step(g, WEFT_NEVER, &s->op), -EBUSY);
	TCHECK_EQ(weft_mutex_lock_step(&m, WEFT_NEVER, &op2), -EBUSY); /* even one that would not wait */
	TCHECK_EQ(weft_mutex_try_lock(&m), 0);			       /* untouched */
	TCHECK_EQ(weft_mutex_unlock(&m), 0);
	TCHECK_EQ(weft_chan_recv_step(ch, &v, WEFT_NEVER, &cop), -EBUSY);
	TCHECK(weft_park_prepare().parker == NULL);
	TCHECK_EQ(weft_join_step(s->target, &s->got, WEFT_NEVER, &s->op), -EINPROGRESS);
	TCHECK_EQ(weft_group_destroy(g), 0);
	TCHECK_EQ(weft_chan_release(ch), 0);
	atomic_store(&s->registered, 1);
	return WEFT_STEP_PARKED;
}

static void *join_busy_main(void *a)
{
	(void)a;
	atomic_store(&target_go, 0);
	join_st s = {.target = wt_spawn(waits_for_go, (void *)6)};
	weft_task_t j;
	TCHECK_EQ(weft_spawn_step(&j, join_busy_step, &s, NULL), 0);
	WT_WAIT_UNTIL(atomic_load(&s.registered));
	atomic_store(&target_go, 1);
	wt_join(j);
	TCHECK_EQ(s.result, 0);
	TCHECK_EQ((intptr_t)s.got, 6);
	return NULL;
}

static void test_join_one_registration(void **state)
{
	(void)state;
	wt_run(join_busy_main, NULL, 2);
}

/* ------------------------------------------------------------ a yield keeps the deadline */

/* A stackless task registered with a deadline that returns WEFT_STEP_YIELD
 * (allowed: its early repeat says -EINPROGRESS) and then parks still gets
 * -ETIMEDOUT when the deadline passes: running again with its wait open
 * must not drop the wait's timer. For a channel op, a semaphore and a bare
 * park. */
typedef struct {
	int kind; /* 0 chan, 1 sem, 2 park */
	int yields;
	weft_chan_t *ch;
	weft_sem_t *sem;
	weft_time_t deadline;
	weft_op_t cop;
	weft_op_t op;
	long v;
	weft_waker_t w;
	bool waiting;
} yd_state;

static weft_step_t yd_step(void *a, void **res)
{
	yd_state *s = a;
	int r;
	if (s->kind == 0) {
		r = weft_chan_recv_step(s->ch, &s->v, s->deadline, &s->cop);
	} else if (s->kind == 1) {
		r = weft_sem_acquire_step(s->sem, s->deadline, &s->op);
	} else if (!s->waiting) {
		s->w = weft_park_prepare();
		TCHECK(s->w.parker != NULL);
		TCHECK_EQ(weft_park_deadline(s->w, s->deadline), 0);
		s->waiting = true;
		r = -EINPROGRESS;
	} else {
		r = s->yields < 3 ? -EINPROGRESS : weft_park_result();
	}
	if (r != -EINPROGRESS) {
		*res = (void *)(intptr_t)r;
		return WEFT_STEP_DONE;
	}
	/* Registered (or the repeat came before the wake): yield twice, then
	 * park. */
	if (s->yields++ < 2)
		return WEFT_STEP_YIELD;
	return WEFT_STEP_PARKED;
}

static void *yd_main(void *a)
{
	(void)a;
	for (int kind = 0; kind < 3; kind++) {
		yd_state s = {.kind = kind, .deadline = weft_deadline_in(20 * WEFT_MSEC)};
		weft_sem_t sem;
		TCHECK_EQ(weft_chan_create(&s.ch, sizeof(long), 0), 0);
		TCHECK_EQ(weft_sem_init(&sem, 0), 0);
		s.sem = &sem;
		weft_task_t t;
		TCHECK_EQ(weft_spawn_step(&t, yd_step, &s, NULL), 0);
		void *r;
		/* Without its deadline the task would wait for ever. */
		TCHECK_EQ(weft_join_until(t, &r, weft_deadline_in(30 * WEFT_SEC)), 0);
		TCHECK_EQ((intptr_t)r, -ETIMEDOUT);
		TCHECK(s.yields >= 3);
		TCHECK_EQ(weft_chan_release(s.ch), 0);
		TCHECK_EQ(weft_sem_destroy(&sem), 0);
	}
	return NULL;
}

static void test_yield_while_registered_keeps_the_deadline(void **state)
{
	(void)state;
	wt_run(yd_main, NULL, 2);
}

/* weft_step_register with an op that did not go through weft_step_begin,
 * or with no wait open, is refused: nothing could ever end such a
 * registration (it asserted; in release the task could never finish). */
static weft_step_t reg_step(void *a, void **res)
{
	(void)a;
	weft_op_t op;
	memset(&op, 0, sizeof op);
	TCHECK_EQ(weft_step_register(&op), -EINVAL); /* never begun */
	TCHECK_EQ(weft_step_begin(&op, 7, NULL), 0);
	TCHECK_EQ(weft_step_register(&op), -EINVAL); /* no wait open */
	TCHECK_EQ(weft_step_register(NULL), -EPERM);
	*res = NULL;
	return WEFT_STEP_DONE; /* nothing registered: it may end */
}

static void *reg_main(void *a)
{
	(void)a;
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, reg_step, NULL, NULL), 0);
	TCHECK_EQ(weft_join(t, NULL), 0);
	return NULL;
}

static void test_register_refuses_what_could_never_end(void **state)
{
	(void)state;
	wt_run(reg_main, NULL, 1);
}

/* ------------------------------------------------------------ under the simulation */

/* The twins: the same bodies, one task at a time in an order drawn from
 * each seed (tests/wt_sim.h). */
static void test_open_registration_refuses_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sched/step_open_registration_refuses", open_main, NULL, NULL, WT_SIM_SEEDS);
}

static void test_retry_and_own_step_form_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sched/step_retry_and_own_step_form", my_main, NULL, NULL, WT_SIM_SEEDS);
}

static void test_join_step_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sched/join_step", join_main, NULL, NULL, WT_SIM_SEEDS);
}

static void test_join_step_deadline_cancel_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sched/join_step_deadline_cancel", join_deadline_main, NULL, NULL, WT_SIM_SEEDS);
}

static void test_join_one_registration_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sched/join_one_registration", join_busy_main, NULL, NULL, WT_SIM_SEEDS);
}

static void test_group_wait_step_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sched/group_wait_step", group_main, NULL, NULL, WT_SIM_SEEDS);
}

static void test_yield_while_registered_keeps_the_deadline_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sched/step_yield_while_registered_keeps_the_deadline", yd_main, NULL, NULL, WT_SIM_SEEDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ending_registered_aborts), /* first: it forks, no runtime running */
		cmocka_unit_test(test_claimed_registration_refuses),
		cmocka_unit_test(test_claimed_wait_refuses),
		cmocka_unit_test(test_open_registration_refuses),
		cmocka_unit_test(test_retry_and_own_step_form),
		cmocka_unit_test(test_join_step),
		cmocka_unit_test(test_join_step_deadline_cancel),
		cmocka_unit_test(test_join_one_registration),
		cmocka_unit_test(test_group_wait_step),
		cmocka_unit_test(test_group_destroyed_at_once),
		cmocka_unit_test(test_yield_while_registered_keeps_the_deadline),
		cmocka_unit_test(test_register_refuses_what_could_never_end),
		cmocka_unit_test(test_open_registration_refuses_sim),
		cmocka_unit_test(test_retry_and_own_step_form_sim),
		cmocka_unit_test(test_join_step_sim),
		cmocka_unit_test(test_join_step_deadline_cancel_sim),
		cmocka_unit_test(test_join_one_registration_sim),
		cmocka_unit_test(test_group_wait_step_sim),
		cmocka_unit_test(test_yield_while_registered_keeps_the_deadline_sim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
