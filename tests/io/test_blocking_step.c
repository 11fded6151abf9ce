/* test_blocking_step.c - the _step forms of the blocking pool
 * (weft_blocking_step), of the file calls that run on it and of
 * weft_getaddrinfo, each through the step protocol of weft/sched.h: a
 * call registers and completes on the repeat; a repeat before the wait has
 * ended changes nothing; a past deadline and a cancelled task refuse
 * without running the job; a deadline or a cancellation that comes while
 * the job waits in the queue takes it out (it never runs), and one that
 * comes while it runs is waited out (the job's result is returned); a
 * second registration is -EBUSY; the op and the argument may be freed by
 * the step that completes; coroutines and plain threads block.
 *
 * No check depends on timing. A job that must be running, or must stay
 * queued, is held by a gate: a pipe the job reads (blocking) until the
 * test writes to it; the pool is limited to one thread, held by such a
 * job, when another must stay queued. The stackless task says when it
 * has registered (a message on a channel). The one case that needs a
 * deadline to pass while the task is registered and its job runs retries
 * with a longer deadline when the job had not started by then. */
#include "wt_io.h"
#include "wt_step_task.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ jobs */

/* A job that runs until its gate opens. */
typedef struct gate {
	int p[2]; /* blocking pipe: the job reads p[0] */
	_Atomic int started, ran;
	void *ret;
} gate;

static void gate_init(gate *g, void *ret)
{
	memset(g, 0, sizeof *g);
	TCHECK_EQ(pipe2(g->p, O_CLOEXEC), 0);
	g->ret = ret;
}

static void gate_open(gate *g)
{
	TCHECK_EQ(write(g->p[1], "x", 1), 1);
}

static void gate_fini(gate *g)
{
	close(g->p[0]);
	close(g->p[1]);
}

static void *gate_job(void *a)
{
	gate *g = a;
	atomic_store(&g->started, 1);
	char c;
	TCHECK_EQ(read(g->p[0], &c, 1), 1);
	atomic_fetch_add(&g->ran, 1);
	return g->ret;
}

/* A job that runs at once: counts its runs, returns arg's value + 1. */
typedef struct count {
	_Atomic int ran;
	long v;
} count;

static void *count_job(void *a)
{
	count *c = a;
	atomic_fetch_add(&c->ran, 1);
	return (void *)(intptr_t)(c->v + 1);
}

static void *thread_job(void *a)
{
	(void)a;
	return (void *)pthread_self();
}

/* The pool limited to one thread, which a coroutine's weft_blocking holds
 * until release_pool: a job submitted meanwhile stays queued. */
typedef struct hold {
	gate g;
	weft_task_t t;
} hold;

static void *hold_task(void *a)
{
	TCHECK_EQ(weft_blocking(gate_job, a, NULL), 0);
	return NULL;
}

static void hold_pool(hold *h)
{
	TCHECK_EQ(weft_blocking_set_limits(NULL, 1, 0), 0);
	gate_init(&h->g, NULL);
	h->t = wt_spawn(hold_task, &h->g);
	WT_WAIT_UNTIL(atomic_load(&h->g.started));
}

static void release_pool(hold *h)
{
	gate_open(&h->g);
	wt_join(h->t);
	gate_fini(&h->g);
}

static weft_blocking_stats_t pool_stats(void)
{
	weft_blocking_stats_t st;
	TCHECK_EQ(weft_blocking_stats(NULL, &st), 0);
	return st;
}

/* ------------------------------------------------------------ the stackless caller */

/* weft_blocking_step's arguments, and what a test does when it completes. */
typedef struct bcall {
	weft_fn_t fn;
	void *arg;
	void *res;     /* *result */
	bool free_arg; /* arg was malloc'd: the completing step frees it */
	bool after;    /* once completed, call again (a cancellation shows there) */
	count after_count;
	long after_result;
} bcall;

static long blocking_call(wt_step_task *t, weft_op_t *op)
{
	bcall *b = t->ctx;
	return weft_blocking_step(b->fn, b->arg, &b->res, t->deadline, op);
}

static void blocking_done(wt_step_task *t)
{
	bcall *b = t->ctx;
	if (b->free_arg) {
		/* The call has completed: the job's argument is the caller's. */
		free(b->arg);
		b->arg = NULL;
	}
	if (b->after) {
		weft_op_t op2;
		b->after_result = weft_blocking_step(count_job, &b->after_count, NULL, WEFT_NEVER, &op2);
	}
}

/* While t's call is registered: every other _step call is refused with
 * -EBUSY and changes nothing (another op; the same op in another call, or
 * on another object). */
static void second_registrations(wt_step_task *t)
{
	weft_op_t op2; /* needs no initialisation */
	memset(&op2, 0x5a, sizeof op2);
	count c = {0};
	void *res = &res;
	TCHECK_EQ(weft_blocking_step(count_job, &c, &res, WEFT_NEVER, &op2), -EBUSY);
	TCHECK_EQ(weft_blocking_step(thread_job, &c, &res, WEFT_NEVER, t->op), -EBUSY);
	TCHECK(res == &res);
	TCHECK_EQ(atomic_load(&c.ran), 0);
	void *data = &data;
	TCHECK_EQ(weft_file_read_all_step("/dev/null", &data, 0, WEFT_NEVER, &op2), -EBUSY);
	TCHECK_EQ(weft_file_read_all_step("/dev/null", &data, 0, WEFT_NEVER, t->op), -EBUSY);
	TCHECK(data == &data);
	TCHECK_EQ(weft_file_open_step("/dev/null", O_RDONLY, 0, WEFT_NEVER, t->op), -EBUSY);
	TCHECK_EQ(weft_file_write_all_step("/dev/null", "x", 1, 0, WEFT_NEVER, t->op), -EBUSY);
	char b[1];
	TCHECK_EQ(weft_file_pread_step(0, b, 1, 0, WEFT_NEVER, t->op), -EBUSY);
	TCHECK_EQ(weft_file_pwrite_step(1, b, 1, 0, WEFT_NEVER, t->op), -EBUSY);
	struct addrinfo *ai = (struct addrinfo *)&ai;
	TCHECK_EQ(weft_getaddrinfo_step("127.0.0.1", "1", NULL, &ai, WEFT_NEVER, &op2), -EBUSY);
	TCHECK_EQ(weft_getaddrinfo_step("127.0.0.1", "1", NULL, &ai, WEFT_NEVER, t->op), -EBUSY);
	TCHECK(ai == (struct addrinfo *)&ai);
	TCHECK_EQ(weft_tcp_connect_step("127.0.0.1", 1, WEFT_NEVER, t->op), -EBUSY);
	TCHECK_EQ(weft_unix_connect_step("@weft-none", WEFT_NEVER, t->op), -EBUSY);
	weft_sem_t sem;
	TCHECK_EQ(weft_sem_init(&sem, 0), 0);
	TCHECK_EQ(weft_sem_acquire_step(&sem, WEFT_NEVER, &op2), -EBUSY);
}

static void bcall_task(wt_step_task *t, bcall *b, weft_op_t *op, weft_fn_t fn, void *arg)
{
	memset(b, 0, sizeof *b);
	b->fn = fn;
	b->arg = arg;
	wt_step_init(t, blocking_call, b, op);
	t->done = blocking_done;
}

/* ------------------------------------------------------------ weft_blocking_step */

static void *completes_main(void *a)
{
	(void)a;
	count c = {.v = 41};
	weft_op_t op; /* needs no initialisation */
	memset(&op, 0xa5, sizeof op);
	wt_step_task t;
	bcall b;
	bcall_task(&t, &b, &op, count_job, &c);
	weft_task_t id = wt_step_start(&t);
	/* A job cannot end inside the call that queues it: it registers. */
	TCHECK_EQ(wt_step_event(&t), WT_EV_REG);
	TCHECK_EQ(wt_step_event(&t), WT_EV_DONE);
	wt_step_join(id);
	TCHECK_EQ(t.result, 0);
	TCHECK_EQ((intptr_t)b.res, 42);
	TCHECK_EQ(atomic_load(&c.ran), 1);
	TCHECK_EQ(atomic_load(&t.parks), 1);
	/* The same op serves again at once. */
	c.v = 1;
	TCHECK_EQ(wt_step_run(&t), 0);
	TCHECK_EQ((intptr_t)b.res, 2);
	TCHECK_EQ(atomic_load(&c.ran), 2);
	wt_step_fini(&t);
	return NULL;
}

static void test_blocking_step_completes(void **state)
{
	(void)state;
	wt_run(completes_main, NULL, 2);
}

/* Held by a gate: registered, a repeat before the job ends says
 * -EINPROGRESS (the yield), second registrations are refused, and only
 * the job's end completes the call. */
static void *held_main(void *a)
{
	(void)a;
	gate g;
	gate_init(&g, (void *)(intptr_t)7);
	weft_op_t op = WEFT_OP_INIT;
	wt_step_task t;
	bcall b;
	bcall_task(&t, &b, &op, gate_job, &g);
	t.yield = true;
	t.busy = second_registrations;
	weft_task_t id = wt_step_start(&t);
	TCHECK_EQ(wt_step_event(&t), WT_EV_REG);
	WT_WAIT_UNTIL(atomic_load(&g.started));
	TCHECK_EQ(pool_stats().running, 1);
	gate_open(&g);
	TCHECK_EQ(wt_step_event(&t), WT_EV_DONE);
	wt_step_join(id);
	TCHECK_EQ(t.result, 0);
	TCHECK_EQ((intptr_t)b.res, 7);
	TCHECK_EQ(atomic_load(&g.ran), 1);
	TCHECK_EQ(atomic_load(&t.parks), 1);
	TCHECK_EQ(t.busy_checks, 1);
	gate_fini(&g);
	wt_step_fini(&t);
	return NULL;
}

static void test_blocking_step_registers_then_completes(void **state)
{
	(void)state;
	wt_run(held_main, NULL, 2);
}

static const weft_time_t past[] = {INT64_MIN, -1, 0};
#define NPAST (sizeof past / sizeof past[0])

/* A past deadline, a cancelled task: refused at once, the job never runs,
 * *result is left alone. */
static void *refused_main(void *a)
{
	(void)a;
	count c = {0};
	weft_op_t op = WEFT_OP_INIT;
	wt_step_task t;
	bcall b;
	bcall_task(&t, &b, &op, count_job, &c);
	for (size_t i = 0; i <= NPAST; i++) {
		t.deadline = i < NPAST ? past[i] : weft_now();
		b.res = &b;
		TCHECK_EQ(wt_step_run(&t), -ETIMEDOUT);
		TCHECK_EQ(atomic_load(&t.parks), 0);
		TCHECK(b.res == &b);
	}
	t.deadline = WEFT_NEVER;
	t.self_cancel = true;
	TCHECK_EQ(wt_step_run(&t), -ECANCELED);
	TCHECK_EQ(atomic_load(&t.parks), 0);
	TCHECK(b.res == &b);
	TCHECK_EQ(atomic_load(&c.ran), 0);
	TCHECK_EQ(pool_stats().completed, 0);
	wt_step_fini(&t);
	return NULL;
}

static void test_blocking_step_refuses_past_deadline_and_cancelled(void **state)
{
	(void)state;
	wt_run(refused_main, NULL, 2);
}

/* A deadline or a cancellation while the job waits in the queue (the
 * pool's one thread held): taken out of the queue, it never runs. */
static void *queued_main(void *a)
{
	(void)a;
	for (int cancel = 0; cancel < 2; cancel++) {
		hold h;
		hold_pool(&h);
		count c = {0};
		weft_op_t op = WEFT_OP_INIT;
		wt_step_task t;
		bcall b;
		bcall_task(&t, &b, &op, count_job, &c);
		if (cancel) {
			weft_task_t id = wt_step_start(&t);
			TCHECK_EQ(wt_step_event(&t), WT_EV_REG);
			TCHECK_EQ(pool_stats().queued, 1);
			TCHECK_EQ(weft_cancel(id), 0);
			TCHECK_EQ(wt_step_event(&t), WT_EV_DONE);
			wt_step_join(id);
			TCHECK_EQ(t.result, -ECANCELED);
		} else {
			/* The deadline must pass while the task is registered;
			 * a task that ran too late times out without
			 * registering: again, with a longer deadline. */
			for (weft_time_t wait = 20 * WEFT_MSEC;; wait *= 2) {
				t.deadline = weft_deadline_in(wait);
				TCHECK_EQ(wt_step_run(&t), -ETIMEDOUT);
				TCHECK(weft_now() >= t.deadline);
				if (atomic_load(&t.parks) == 1 || wait >= WT_HANG_NS)
					break;
			}
			TCHECK_EQ(atomic_load(&t.parks), 1);
		}
		/* Out of the queue: the held job runs alone, then nothing. */
		weft_blocking_stats_t st = pool_stats();
		TCHECK_EQ(st.queued, 0);
		TCHECK_EQ(st.running, 1);
		release_pool(&h);
		st = pool_stats();
		TCHECK_EQ(st.completed, (uint64_t)cancel + 1);
		TCHECK_EQ(st.queued, 0);
		TCHECK_EQ(atomic_load(&c.ran), 0);
		wt_step_fini(&t);
	}
	return NULL;
}

static void test_blocking_step_deadline_and_cancel_while_queued(void **state)
{
	(void)state;
	wt_run(queued_main, NULL, 2);
}

/* A cancellation while the job runs: the call waits for its end (it
 * registers again), returns its result, and the cancel shows at the next
 * call. */
static void *cancel_running_main(void *a)
{
	(void)a;
	gate g;
	gate_init(&g, (void *)(intptr_t)9);
	weft_op_t op = WEFT_OP_INIT;
	wt_step_task t;
	bcall b;
	bcall_task(&t, &b, &op, gate_job, &g);
	b.after = true;
	weft_task_t id = wt_step_start(&t);
	TCHECK_EQ(wt_step_event(&t), WT_EV_REG);
	WT_WAIT_UNTIL(atomic_load(&g.started));
	TCHECK_EQ(weft_cancel(id), 0);
	TCHECK_EQ(wt_step_event(&t), WT_EV_REG); /* registered again: the job runs */
	TCHECK_EQ(atomic_load(&g.ran), 0);
	gate_open(&g);
	TCHECK_EQ(wt_step_event(&t), WT_EV_DONE);
	wt_step_join(id);
	TCHECK_EQ(t.result, 0);
	TCHECK_EQ((intptr_t)b.res, 9);
	TCHECK_EQ(atomic_load(&g.ran), 1);
	TCHECK_EQ(atomic_load(&t.parks), 2);
	TCHECK_EQ(b.after_result, -ECANCELED);
	TCHECK_EQ(atomic_load(&b.after_count.ran), 0);
	gate_fini(&g);
	wt_step_fini(&t);
	return NULL;
}

static void test_blocking_step_cancel_while_running(void **state)
{
	(void)state;
	wt_run(cancel_running_main, NULL, 2);
}

/* A deadline that passes while the job runs: the same. A job that had not
 * started when the deadline passed was taken back (it never runs): again,
 * with a longer deadline. */
static void *deadline_running_main(void *a)
{
	(void)a;
	weft_op_t op = WEFT_OP_INIT;
	wt_step_task t;
	bcall b;
	bcall_task(&t, &b, &op, gate_job, NULL);
	for (weft_time_t wait = 20 * WEFT_MSEC;; wait *= 2) {
		gate g;
		gate_init(&g, (void *)(intptr_t)11);
		b.arg = &g;
		t.deadline = weft_deadline_in(wait);
		weft_task_t id = wt_step_start(&t);
		bool done = wt_step_event(&t) == WT_EV_DONE;
		if (!done) {
			/* Registered. Until the job runs, or the deadline took
			 * it back. */
			WT_WAIT_UNTIL(atomic_load(&g.started) || weft_chan_len(t.ev) > 0);
			done = !atomic_load(&g.started);
			if (done)
				TCHECK_EQ(wt_step_event(&t), WT_EV_DONE);
		}
		if (done) { /* taken back, or it ran too late to register */
			wt_step_join(id);
			TCHECK_EQ(t.result, -ETIMEDOUT);
			TCHECK_EQ(atomic_load(&g.started), 0);
			gate_fini(&g);
			TCHECK(wait < WT_HANG_NS);
			if (wait >= WT_HANG_NS)
				break;
			continue;
		}
		/* It runs: the deadline passes, the task registers again and
		 * waits for its end. */
		TCHECK_EQ(wt_step_event(&t), WT_EV_REG);
		TCHECK(weft_now() >= t.deadline);
		TCHECK_EQ(atomic_load(&g.ran), 0);
		gate_open(&g);
		TCHECK_EQ(wt_step_event(&t), WT_EV_DONE);
		wt_step_join(id);
		TCHECK_EQ(t.result, 0);
		TCHECK_EQ((intptr_t)b.res, 11);
		TCHECK_EQ(atomic_load(&t.parks), 2);
		gate_fini(&g);
		break;
	}
	wt_step_fini(&t);
	return NULL;
}

static void test_blocking_step_deadline_while_running(void **state)
{
	(void)state;
	wt_run(deadline_running_main, NULL, 2);
}

/* The step that completes frees the op and the job's argument at once,
 * while the pool thread that woke it may still be finishing: under ASan
 * any later touch of either is a use after free. */
static void *free_main(void *a)
{
	(void)a;
	for (int round = 0; round < WT_SIZE(200, 50); round++) {
		count *c = calloc(1, sizeof *c);
		TCHECK(c != NULL);
		c->v = round;
		wt_step_task t;
		bcall b;
		bcall_task(&t, &b, malloc(sizeof(weft_op_t)), count_job, c);
		TCHECK(t.op != NULL);
		t.free_op = true;
		b.free_arg = true;
		TCHECK_EQ(wt_step_run(&t), 0);
		TCHECK_EQ((intptr_t)b.res, round + 1);
		TCHECK(t.op == NULL && b.arg == NULL);
		wt_step_fini(&t);
	}
	return NULL;
}

static void test_blocking_step_op_and_arg_freed_on_completion(void **state)
{
	(void)state;
	wt_run(free_main, NULL, 2);
}

/* ------------------------------------------------------------ coroutines and threads */

static const unsigned char zero_op[sizeof(weft_op_t)];

static void *coro_queued(void *a)
{
	count *c = a;
	weft_op_t op = WEFT_OP_INIT;
	return (void *)(intptr_t)weft_blocking_step(count_job, c, NULL, WEFT_NEVER, &op);
}

static void *coro_running(void *a)
{
	gate *g = a;
	weft_op_t op = WEFT_OP_INIT;
	void *res = NULL;
	int r = weft_blocking_step(gate_job, g, &res, WEFT_NEVER, &op);
	TCHECK_EQ(memcmp(&op, zero_op, sizeof op), 0);
	return r == 0 ? res : (void *)(intptr_t)r;
}

static void *coroutine_main(void *a)
{
	(void)a;
	weft_op_t op = WEFT_OP_INIT;
	count c = {.v = 5};
	void *res = NULL;
	/* Blocks and completes; the op is left alone. */
	TCHECK_EQ(weft_blocking_step(count_job, &c, &res, WEFT_NEVER, &op), 0);
	TCHECK_EQ((intptr_t)res, 6);
	TCHECK(weft_blocking_step(thread_job, NULL, &res, WEFT_NEVER, &op) == 0 && res != (void *)pthread_self());
	TCHECK_EQ(memcmp(&op, zero_op, sizeof op), 0);
	for (size_t i = 0; i < NPAST; i++)
		TCHECK_EQ(weft_blocking_step(count_job, &c, &res, past[i], &op), -ETIMEDOUT);
	TCHECK_EQ(atomic_load(&c.ran), 1);
	/* Queued behind the pool's only thread: a deadline takes it back. */
	hold h;
	hold_pool(&h);
	weft_time_t d = weft_deadline_in(10 * WEFT_MSEC);
	TCHECK_EQ(weft_blocking_step(count_job, &c, &res, d, &op), -ETIMEDOUT);
	TCHECK(weft_now() >= d);
	TCHECK_EQ(pool_stats().queued, 0);
	/* ... and so does a cancellation. */
	weft_task_t q = wt_spawn(coro_queued, &c);
	WT_WAIT_UNTIL(pool_stats().queued == 1);
	TCHECK_EQ(weft_cancel(q), 0);
	void *r = NULL;
	TCHECK_EQ(weft_join(q, &r), 0);
	TCHECK_EQ((intptr_t)r, -ECANCELED);
	TCHECK_EQ(pool_stats().queued, 0);
	release_pool(&h);
	TCHECK_EQ(atomic_load(&c.ran), 1);
	/* A cancellation while the job runs: its result, once it ends. */
	TCHECK_EQ(weft_blocking_set_limits(NULL, 4, 0), 0);
	gate g;
	gate_init(&g, (void *)(intptr_t)13);
	weft_task_t run = wt_spawn(coro_running, &g);
	WT_WAIT_UNTIL(atomic_load(&g.started));
	TCHECK_EQ(weft_cancel(run), 0);
	gate_open(&g);
	TCHECK_EQ(weft_join(run, &r), 0);
	TCHECK_EQ((intptr_t)r, 13);
	gate_fini(&g);
	/* A cancelled coroutine: refused, the job does not run. */
	TCHECK_EQ(weft_cancel(weft_self()), 0);
	TCHECK_EQ(weft_blocking_step(count_job, &c, &res, WEFT_NEVER, &op), -ECANCELED);
	TCHECK_EQ(atomic_load(&c.ran), 1);
	TCHECK_EQ(memcmp(&op, zero_op, sizeof op), 0);
	return NULL;
}

static void test_blocking_step_in_coroutines(void **state)
{
	(void)state;
	wt_run(coroutine_main, NULL, 2);
}

static void thread_body(void)
{
	weft_op_t op = WEFT_OP_INIT;
	count c = {.v = 1};
	void *res = NULL;
	/* Run right here. */
	TCHECK_EQ(weft_blocking_step(count_job, &c, &res, WEFT_NEVER, &op), 0);
	TCHECK_EQ((intptr_t)res, 2);
	TCHECK_EQ(weft_blocking_step(thread_job, NULL, &res, wt_hang_deadline(), &op), 0);
	TCHECK(res == (void *)pthread_self());
	for (size_t i = 0; i < NPAST; i++)
		TCHECK_EQ(weft_blocking_step(count_job, &c, &res, past[i], &op), -ETIMEDOUT);
	TCHECK_EQ(atomic_load(&c.ran), 1);
	TCHECK_EQ(memcmp(&op, zero_op, sizeof op), 0);
}

static void test_blocking_step_in_plain_threads(void **state)
{
	(void)state;
	atomic_store(&tcheck_failures, 0);
	thread_body(); /* no runtime */
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	thread_body();
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* ------------------------------------------------------------ files */

static char dir[64];

static int dir_setup(void **state)
{
	strcpy(dir, "/tmp/weft-bstep-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	return wt_fd_setup(state);
}

static int dir_teardown(void **state)
{
	char p[128];
	static const char *const names[] = {"a", "b", "c"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, names[i]);
		unlink(p);
	}
	if (rmdir(dir) != 0)
		return -1;
	return wt_fd_teardown(state);
}

/* One file call, _step form, with its arguments (they belong to the call
 * until it completes: here, not in the step's frame). */
enum fcall { FC_WRITE_ALL, FC_READ_ALL, FC_OPEN, FC_PWRITE, FC_PREAD, FC_GAI, NFCALLS };
static const char *const fcall_names[NFCALLS] = {"file_write_all", "file_read_all", "file_open",
						 "file_pwrite",	   "file_pread",    "getaddrinfo"};

typedef struct fargs {
	enum fcall which;
	char path[128];
	const char *data;
	size_t len;
	int fd;
	char buf[64];
	void *out;	     /* read_all's *data */
	struct addrinfo *ai; /* getaddrinfo's *res */
	struct addrinfo hints;
} fargs;

static long file_call(wt_step_task *t, weft_op_t *op)
{
	fargs *f = t->ctx;
	switch (f->which) {
	case FC_WRITE_ALL:
		return weft_file_write_all_step(f->path, f->data, f->len, WEFT_FILE_SYNC, t->deadline, op);
	case FC_READ_ALL:
		return weft_file_read_all_step(f->path, &f->out, 0, t->deadline, op);
	case FC_OPEN:
		return weft_file_open_step(f->path, O_RDWR | O_CREAT, 0600, t->deadline, op);
	case FC_PWRITE:
		return weft_file_pwrite_step(f->fd, f->data, f->len, 3, t->deadline, op);
	case FC_PREAD:
		return weft_file_pread_step(f->fd, f->buf, f->len, 3, t->deadline, op);
	case FC_GAI:
		return weft_getaddrinfo_step("127.0.0.1", "80", &f->hints, &f->ai, t->deadline, op);
	default:
		return -EINVAL;
	}
}

static void fargs_init(fargs *f, enum fcall which, const char *name)
{
	memset(f, 0, sizeof *f);
	f->which = which;
	snprintf(f->path, sizeof f->path, "%s/%s", dir, name);
	f->data = "0123456789";
	f->len = 10;
	f->fd = -1;
	f->out = &f->out;
	f->ai = (struct addrinfo *)&f->ai;
	f->hints = (struct addrinfo){.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* What a completed call did, checked. */
static void fcall_done(fargs *f, long r)
{
	switch (f->which) {
	case FC_WRITE_ALL:
		TCHECK_EQ(r, 0);
		break;
	case FC_READ_ALL:
		TCHECK_EQ(r, 10);
		TCHECK(f->out != NULL && memcmp(f->out, "0123456789", 11) == 0);
		free(f->out);
		break;
	case FC_OPEN:
		TCHECK(r >= 0);
		if (r >= 0)
			TCHECK_EQ(close((int)r), 0);
		break;
	case FC_PWRITE:
		TCHECK_EQ(r, 10);
		break;
	case FC_PREAD:
		TCHECK_EQ(r, 10); /* from offset 3: up to the end of file */
		TCHECK_EQ(memcmp(f->buf, "0123456789", 10), 0);
		break;
	case FC_GAI:
		TCHECK_EQ(r, 0);
		TCHECK(f->ai != NULL && f->ai->ai_family == AF_INET);
		freeaddrinfo(f->ai);
		break;
	default:
		break;
	}
}

/* Each call from a stackless task: it registers once and completes with
 * the blocking form's result. The files: a written by write_all, read by
 * read_all; b opened (created), written at offset 3, read back. */
static void *files_main(void *a)
{
	(void)a;
	int bfd = -1;
	for (int k = 0; k < NFCALLS; k++) {
		int before = atomic_load(&tcheck_failures);
		fargs f;
		fargs_init(&f, (enum fcall)k, k == FC_OPEN ? "b" : "a");
		if (k == FC_PREAD) {
			f.len = sizeof f.buf;
			f.fd = bfd;
		} else if (k == FC_PWRITE) {
			char p[160];
			snprintf(p, sizeof p, "%s/b", dir);
			bfd = open(p, O_RDWR | O_CLOEXEC);
			TCHECK(bfd >= 0);
			f.fd = bfd;
		}
		weft_op_t op;
		memset(&op, 0xa5, sizeof op);
		wt_step_task t;
		wt_step_init(&t, file_call, &f, &op);
		wt_step_join(wt_step_start(&t));
		TCHECK_EQ(atomic_load(&t.parks), 1);
		fcall_done(&f, t.result);
		wt_step_fini(&t);
		if (atomic_load(&tcheck_failures) != before)
			fprintf(stderr, "  ^ those checks failed for weft_%s_step\n", fcall_names[k]);
	}
	/* b holds three zero bytes, then the ten. */
	char got[13];
	TCHECK_EQ(pread(bfd, got, sizeof got, 0), 13);
	TCHECK_EQ(memcmp(got + 3, "0123456789", 10), 0);
	close(bfd);
	return NULL;
}

static void test_file_steps_complete(void **state)
{
	(void)state;
	wt_run(files_main, NULL, 2);
}

/* Refused (a past deadline), taken back from the queue (a deadline, a
 * cancellation) and -EBUSY: nothing is done - no file created, no data
 * handed out. */
static void *files_refused_main(void *a)
{
	(void)a;
	static const enum fcall creators[] = {FC_WRITE_ALL, FC_OPEN};
	for (size_t k = 0; k < sizeof creators / sizeof creators[0]; k++) {
		fargs f;
		fargs_init(&f, creators[k], "c");
		weft_op_t op = WEFT_OP_INIT;
		wt_step_task t;
		wt_step_init(&t, file_call, &f, &op);
		for (size_t i = 0; i < NPAST; i++) {
			t.deadline = past[i];
			wt_step_join(wt_step_start(&t));
			TCHECK_EQ(t.result, -ETIMEDOUT);
			TCHECK_EQ(atomic_load(&t.parks), 0);
		}
		uint64_t completed = pool_stats().completed;
		hold h;
		hold_pool(&h);
		/* Queued: the cancel takes it back. Second registrations
		 * meanwhile are refused. */
		t.deadline = WEFT_NEVER;
		t.busy = second_registrations;
		weft_task_t id = wt_step_start(&t);
		TCHECK_EQ(wt_step_event(&t), WT_EV_REG);
		TCHECK_EQ(weft_cancel(id), 0);
		TCHECK_EQ(wt_step_event(&t), WT_EV_DONE);
		wt_step_join(id);
		TCHECK_EQ(t.result, -ECANCELED);
		TCHECK_EQ(t.busy_checks, 1);
		/* ... and so does a deadline. */
		t.busy = NULL;
		t.deadline = weft_deadline_in(10 * WEFT_MSEC);
		wt_step_join(wt_step_start(&t));
		TCHECK_EQ(t.result, -ETIMEDOUT);
		release_pool(&h);
		TCHECK_EQ(pool_stats().completed, completed + 1); /* the holder only */
		TCHECK(!exists(f.path));
		wt_step_fini(&t);
		TCHECK_EQ(weft_blocking_set_limits(NULL, 128, 0), 0);
	}
	/* read_all: *data stays NULL. */
	fargs f;
	fargs_init(&f, FC_READ_ALL, "a");
	TCHECK_EQ(weft_file_write_all(f.path, "xy", 2, 0), 0);
	weft_op_t op = WEFT_OP_INIT;
	wt_step_task t;
	wt_step_init(&t, file_call, &f, &op);
	t.deadline = -1;
	wt_step_join(wt_step_start(&t));
	TCHECK_EQ(t.result, -ETIMEDOUT);
	TCHECK(f.out == NULL);
	wt_step_fini(&t);
	return NULL;
}

static void test_file_steps_refused_and_taken_back(void **state)
{
	(void)state;
	wt_run(files_refused_main, NULL, 2);
}

/* The file _step forms in a coroutine and a plain thread: they block and
 * return the blocking forms' results. */
static void files_blocking_body(void)
{
	weft_op_t op = WEFT_OP_INIT;
	char p[160];
	snprintf(p, sizeof p, "%s/a", dir);
	TCHECK_EQ(weft_file_write_all_step(p, "abc", 3, 0, WEFT_NEVER, &op), 0);
	void *data = NULL;
	TCHECK_EQ(weft_file_read_all_step(p, &data, 0, WEFT_NEVER, &op), 3);
	TCHECK(data != NULL && memcmp(data, "abc", 4) == 0);
	free(data);
	TCHECK_EQ(weft_file_read_all_step(p, &data, 0, -1, &op), -ETIMEDOUT);
	TCHECK(data == NULL);
	int fd = weft_file_open_step(p, O_RDWR, 0, WEFT_NEVER, &op);
	TCHECK(fd >= 0);
	TCHECK_EQ(weft_file_pwrite_step(fd, "Z", 1, 1, WEFT_NEVER, &op), 1);
	char b[4] = {0};
	TCHECK_EQ(weft_file_pread_step(fd, b, sizeof b, 0, WEFT_NEVER, &op), 3);
	TCHECK_EQ(memcmp(b, "aZc", 3), 0);
	TCHECK_EQ(weft_file_pread_step(fd, b, 1, 0, INT64_MIN, &op), -ETIMEDOUT);
	close(fd);
	struct addrinfo *ai = NULL;
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	TCHECK_EQ(weft_getaddrinfo_step("127.0.0.1", "80", &hints, &ai, WEFT_NEVER, &op), 0);
	TCHECK(ai != NULL);
	freeaddrinfo(ai);
	TCHECK_EQ(weft_getaddrinfo_step("weft.invalid", "80", &hints, &ai, WEFT_NEVER, &op), -ENOENT);
	TCHECK(ai == NULL);
	TCHECK_EQ(memcmp(&op, zero_op, sizeof op), 0);
}

static void *files_coroutine_main(void *a)
{
	(void)a;
	files_blocking_body();
	return NULL;
}

static void test_file_steps_in_coroutines_and_threads(void **state)
{
	(void)state;
	wt_run(files_coroutine_main, NULL, 2);
	atomic_store(&tcheck_failures, 0);
	files_blocking_body();
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		WT_IO_TEST(test_blocking_step_completes),
		WT_IO_TEST(test_blocking_step_registers_then_completes),
		WT_IO_TEST(test_blocking_step_refuses_past_deadline_and_cancelled),
		WT_IO_TEST(test_blocking_step_deadline_and_cancel_while_queued),
		WT_IO_TEST(test_blocking_step_cancel_while_running),
		WT_IO_TEST(test_blocking_step_deadline_while_running),
		WT_IO_TEST(test_blocking_step_op_and_arg_freed_on_completion),
		WT_IO_TEST(test_blocking_step_in_coroutines),
		WT_IO_TEST(test_blocking_step_in_plain_threads),
		cmocka_unit_test_setup_teardown(test_file_steps_complete, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_file_steps_refused_and_taken_back, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_file_steps_in_coroutines_and_threads, dir_setup, dir_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
