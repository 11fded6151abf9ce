/* test_exec.c - the executor contract (weft/exec.h) on every backend: spawn
 * and wait, wait with a deadline, detach, spawn_at, cancel (as far as the
 * backend's caps promise), spawn_blocking, the stackless forms, sleep and
 * now, destroy with live tasks, and an executor of custom ops. Each body
 * runs from a plain thread, a weft coroutine and a task of the executor
 * itself (tests/exec/wt_exec.h). */
#include "wt_exec.h"

#include <pthread.h>
#include <unistd.h>

static void *triple(void *a)
{
	return (void *)((intptr_t)a * 3);
}

/* ------------------------------------------------------------ spawn, wait */

static void body_results(weft_exec_t *ex, weft_runtime_t *rt)
{
	(void)rt;
	enum { N = 8 };
	weft_exec_task_t h[N];
	for (intptr_t i = 0; i < N; i++) {
		weft_exec_spawn_opts_t o = {.size = sizeof o, .name = "triple", .stack_size = 128 * 1024};
		TCHECK_EQ(weft_exec_spawn(ex, &h[i], triple, (void *)i, i % 2 ? &o : NULL), 0);
		TCHECK(h[i].exec != 0);
	}
	for (intptr_t i = 0; i < N; i++) {
		void *r = NULL;
		TCHECK_EQ(weft_exec_wait(ex, h[i], &r), 0);
		TCHECK_EQ((intptr_t)r, 3 * i);
		TCHECK_EQ(weft_exec_wait(ex, h[i], &r), -ESRCH); /* waited for: dead */
		TCHECK_EQ(weft_exec_detach(ex, h[i]), -ESRCH);
	}
}

static void test_spawn_and_wait(void **state)
{
	(void)state;
	wt_each_exec(body_results, WT_BY_ALL);
}

/* A task that waits for the gate, then returns 7. */
static void *gated(void *a)
{
	weft_sem_t *gate = a;
	int e = weft_sem_acquire_until(gate, wt_hang_deadline());
	return (void *)(intptr_t)(e == 0 ? 7 : e);
}

static void body_timeout(weft_exec_t *ex, weft_runtime_t *rt)
{
	(void)rt;
	weft_sem_t gate = WEFT_SEM_INIT(0);
	weft_exec_task_t h;
	TCHECK_EQ(weft_exec_spawn(ex, &h, gated, &gate, NULL), 0);
	void *r = (void *)1;
	TCHECK_EQ(weft_exec_wait_until(ex, h, &r, 0), -ETIMEDOUT); /* a past deadline polls */
	TCHECK_EQ(weft_exec_wait_until(ex, h, &r, weft_deadline_in(2 * WEFT_MSEC)), -ETIMEDOUT);
	TCHECK_EQ((intptr_t)r, 1); /* untouched */
	TCHECK_EQ(weft_sem_release(&gate, 1), 0);
	TCHECK_EQ(weft_exec_wait_until(ex, h, &r, wt_hang_deadline()), 0); /* still waitable */
	TCHECK_EQ((intptr_t)r, 7);
}

static void test_wait_with_a_deadline(void **state)
{
	(void)state;
	wt_each_exec(body_timeout, WT_BY_ALL);
}

static void *release_sem(void *a)
{
	weft_sem_release(a, 1);
	return NULL;
}

static void body_detach(weft_exec_t *ex, weft_runtime_t *rt)
{
	(void)rt;
	weft_sem_t done = WEFT_SEM_INIT(0);
	weft_exec_task_t h;
	TCHECK_EQ(weft_exec_spawn(ex, &h, release_sem, &done, NULL), 0);
	TCHECK_EQ(weft_exec_detach(ex, h), 0);
	TCHECK_EQ(weft_exec_detach(ex, h), -ESRCH);
	TCHECK_EQ(weft_exec_wait(ex, h, NULL), -ESRCH);
	TCHECK_EQ(weft_exec_spawn(ex, NULL, release_sem, &done, NULL), 0); /* detached from the start */
	TCHECK_EQ(weft_sem_acquire_until(&done, wt_hang_deadline()), 0);
	TCHECK_EQ(weft_sem_acquire_until(&done, wt_hang_deadline()), 0);
}

static void test_detach(void **state)
{
	(void)state;
	wt_each_exec(body_detach, WT_BY_ALL);
}

/* ------------------------------------------------------------ spawn_at, cancel */

struct at_probe {
	weft_exec_t *ex;
	_Atomic weft_time_t ran_at;
};

static void *record_time(void *a)
{
	struct at_probe *p = a;
	atomic_store(&p->ran_at, weft_exec_now(p->ex));
	return (void *)5;
}

static void body_spawn_at(weft_exec_t *ex, weft_runtime_t *rt)
{
	(void)rt;
	struct at_probe p = {ex, 0};
	weft_time_t at = weft_exec_now(ex) + 3 * WEFT_MSEC;
	weft_exec_task_t h;
	void *r = NULL;
	TCHECK_EQ(weft_exec_spawn_at(ex, &h, at, record_time, &p, NULL), 0);
	TCHECK_EQ(weft_exec_wait_until(ex, h, &r, wt_hang_deadline()), 0);
	TCHECK_EQ((intptr_t)r, 5);
	TCHECK(atomic_load(&p.ran_at) >= at); /* never early */

	/* A past time: as soon as possible. */
	TCHECK_EQ(weft_exec_spawn_at(ex, &h, 0, record_time, &p, NULL), 0);
	TCHECK_EQ(weft_exec_wait_until(ex, h, &r, wt_hang_deadline()), 0);
	TCHECK_EQ((intptr_t)r, 5);

	/* Cancelled before its time: never runs, on every backend. */
	atomic_store(&p.ran_at, 0);
	TCHECK_EQ(weft_exec_spawn_at(ex, &h, weft_exec_now(ex) + 3600 * WEFT_SEC, record_time, &p, NULL), 0);
	TCHECK_EQ(weft_exec_cancel(ex, h), 0);
	TCHECK_EQ(weft_exec_wait_until(ex, h, &r, wt_hang_deadline()), 0);
	TCHECK_EQ((intptr_t)r, -ECANCELED);
	TCHECK_EQ(atomic_load(&p.ran_at), 0);
	TCHECK_EQ(weft_exec_cancel(ex, h), -ESRCH); /* waited for */
}

static void test_spawn_at(void **state)
{
	(void)state;
	wt_each_exec(body_spawn_at, WT_BY_ALL);
}

struct running {
	weft_sem_t started, gate;
	bool interrupt;
};

/* Tells it has started, then waits to be cancelled: blocked in a weft call
 * where cancel interrupts (the call's -ECANCELED is the result), else
 * polling weft_exec_cancelled() (result 1). */
static void *wait_for_cancel(void *a)
{
	struct running *s = a;
	weft_sem_release(&s->started, 1);
	if (s->interrupt)
		return (void *)(intptr_t)weft_sem_acquire_until(&s->gate, wt_hang_deadline());
	weft_time_t give_up = wt_hang_deadline();
	while (!weft_exec_cancelled() && weft_now() < give_up)
		weft_sleep(WEFT_MSEC / 4);
	return (void *)(intptr_t)weft_exec_cancelled();
}

static void body_cancel_running(weft_exec_t *ex, weft_runtime_t *rt)
{
	(void)rt;
	struct running s = {WEFT_SEM_INIT(0), WEFT_SEM_INIT(0), (weft_exec_caps(ex) & WEFT_EXEC_CAP_INTERRUPT) != 0};
	weft_exec_task_t h;
	TCHECK_EQ(weft_exec_spawn(ex, &h, wait_for_cancel, &s, NULL), 0);
	TCHECK_EQ(weft_sem_acquire_until(&s.started, wt_hang_deadline()), 0);
	TCHECK_EQ(weft_exec_cancel(ex, h), 0);
	void *r = NULL;
	TCHECK_EQ(weft_exec_wait_until(ex, h, &r, wt_hang_deadline()), 0);
	TCHECK_EQ((intptr_t)r, s.interrupt ? -ECANCELED : 1);
	TCHECK(!weft_exec_cancelled() || weft_cancelled()); /* the caller's own flag, not the task's */
}

static void test_cancel_a_running_task(void **state)
{
	(void)state;
	wt_each_exec(body_cancel_running, WT_BY_THREAD | WT_BY_CORO);
}

/* ------------------------------------------------------------ spawn_blocking */

static void *read_byte(void *a)
{
	int *fd = a;
	char c = 0;
	ssize_t n = read(*fd, &c, 1); /* a real blocking call */
	return (void *)(intptr_t)(n == 1 ? c : -1);
}

/* Two blocking calls sit in read(2) while an ordinary task of the same
 * executor runs and ends: on weft (two workers), blocking calls that held
 * a worker each would leave it nowhere to run. The sim models the pool:
 * fn runs at once in its task, so it must not wait for another task (the
 * bytes are there before it reads). */
static void body_blocking(weft_exec_t *ex, weft_runtime_t *rt)
{
	(void)rt;
	int p[2];
	TCHECK_EQ(pipe(p), 0);
	bool model = weft_exec_caps(ex) & WEFT_EXEC_CAP_DETERMINISTIC;
	if (model)
		TCHECK_EQ(write(p[1], "ab", 2), 2);
	weft_exec_task_t b1, b2, t;
	TCHECK_EQ(weft_exec_spawn_blocking(ex, &b1, read_byte, &p[0], NULL), 0);
	TCHECK_EQ(weft_exec_spawn_blocking(ex, &b2, read_byte, &p[0], NULL), 0);
	TCHECK_EQ(weft_exec_spawn(ex, &t, triple, (void *)2, NULL), 0);
	void *r = NULL;
	TCHECK_EQ(weft_exec_wait_until(ex, t, &r, wt_hang_deadline()), 0);
	TCHECK_EQ((intptr_t)r, 6);
	if (!model)
		TCHECK_EQ(write(p[1], "ab", 2), 2);
	void *r1 = NULL, *r2 = NULL;
	TCHECK_EQ(weft_exec_wait_until(ex, b1, &r1, wt_hang_deadline()), 0);
	TCHECK_EQ(weft_exec_wait_until(ex, b2, &r2, wt_hang_deadline()), 0);
	TCHECK_EQ((intptr_t)r1 + (intptr_t)r2, 'a' + 'b');
	close(p[0]);
	close(p[1]);
}

static void test_spawn_blocking(void **state)
{
	(void)state;
	wt_each_exec(body_blocking, WT_BY_THREAD | WT_BY_CORO);
}

/* ------------------------------------------------------------ stackless */

struct stepper {
	weft_exec_t *ex;
	weft_exec_task_t h;
	weft_op_t op;
	void *result;
	int r, eperm;
	bool probed;
	weft_sem_t probed_sem;
};

static weft_step_t step_waiter(void *a, void **result)
{
	struct stepper *s = a;
	if (!s->probed) { /* the gate is still shut: the task cannot have ended */
		s->probed = true;
		s->eperm = weft_exec_wait(s->ex, s->h, NULL); /* would have to wait: -EPERM, nothing changes */
		weft_sem_release(&s->probed_sem, 1);
	}
	int r = weft_exec_wait_step(s->ex, s->h, &s->result, WEFT_NEVER, &s->op);
	if (r == -EINPROGRESS)
		return WEFT_STEP_PARKED;
	s->r = r;
	*result = NULL;
	return WEFT_STEP_DONE;
}

static weft_step_t yield_twice(void *a, void **result)
{
	int *n = a;
	if ((*n)++ < 2)
		return WEFT_STEP_YIELD;
	*result = (void *)11;
	return WEFT_STEP_DONE;
}

static void body_stackless(weft_exec_t *ex, weft_runtime_t *rt)
{
	/* A stackless task of rt waits for a task of ex with the step form. */
	weft_sem_t gate = WEFT_SEM_INIT(0);
	struct stepper s = {.ex = ex, .probed_sem = WEFT_SEM_INIT(0)};
	TCHECK_EQ(weft_exec_spawn(ex, &s.h, gated, &gate, NULL), 0);
	weft_task_t w;
	TCHECK_EQ(weft_spawn_step(&w, step_waiter, &s, &(weft_spawn_opts_t){.runtime = rt}), 0);
	TCHECK_EQ(weft_sem_acquire_until(&s.probed_sem, wt_hang_deadline()), 0);
	weft_sleep(WEFT_MSEC); /* often lets it register first; either order is correct */
	TCHECK_EQ(weft_sem_release(&gate, 1), 0);
	TCHECK_EQ(weft_join_until(w, NULL, wt_hang_deadline()), 0);
	TCHECK_EQ(s.r, 0);
	TCHECK_EQ((intptr_t)s.result, 7);
	TCHECK_EQ(s.eperm, -EPERM);

	/* Stackless tasks of ex itself, where the backend has them. */
	int n = 0;
	weft_exec_task_t h;
	if (weft_exec_caps(ex) & WEFT_EXEC_CAP_STEP) {
		TCHECK_EQ(weft_exec_spawn_step(ex, &h, yield_twice, &n, NULL), 0);
		void *r = NULL;
		TCHECK_EQ(weft_exec_wait_until(ex, h, &r, wt_hang_deadline()), 0);
		TCHECK_EQ((intptr_t)r, 11);
		TCHECK_EQ(n, 3);
	} else {
		h = (weft_exec_task_t){1, 1};
		TCHECK_EQ(weft_exec_spawn_step(ex, &h, yield_twice, &n, NULL), -ENOTSUP);
		TCHECK(h.exec == 0 && h.id == 0);
	}
}

static void test_stackless(void **state)
{
	(void)state;
	wt_each_exec(body_stackless, WT_BY_THREAD | WT_BY_CORO);
}

/* ------------------------------------------------------------ time */

static void body_time(weft_exec_t *ex, weft_runtime_t *rt)
{
	(void)rt;
	weft_time_t t0 = weft_exec_now(ex);
	TCHECK(t0 >= 0);
	TCHECK_EQ(weft_exec_sleep(ex, 2 * WEFT_MSEC), 0);
	TCHECK(weft_exec_now(ex) - t0 >= 2 * WEFT_MSEC); /* never wakes early */
	TCHECK_EQ(weft_exec_sleep_until(ex, 0), 0);
	TCHECK_EQ(weft_exec_sleep(ex, -5), 0);
	TCHECK(weft_exec_now(ex) >= t0);
}

static void test_sleep_and_now(void **state)
{
	(void)state;
	wt_each_exec(body_time, WT_BY_ALL);
}

/* ------------------------------------------------------------ destroy */

struct slow {
	weft_sem_t *started;
	_Atomic int done;
};

static void *slow_set(void *a)
{
	struct slow *s = a;
	weft_sem_release(s->started, 1);
	weft_sleep(5 * WEFT_MSEC);
	atomic_store(&s->done, 1);
	return NULL;
}

/* Destroy with tasks running: a backend that owns its tasks waits for
 * them; weft's tasks are the runtime's and go on. Handles die with the
 * executor either way. (Tasks still queued at destroy are cancelled on
 * the pool backends: test_destroy_cancels_what_has_not_started.) */
static void test_destroy_with_live_tasks(void **state)
{
	(void)state;
	atomic_store(&tcheck_failures, 0);
	for (size_t i = 0; i < WT_NALL; i++) {
		weft_runtime_t *rt;
		assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
		weft_exec_t *ex;
		int e = wt_backend(i)->make(&ex, rt);
		if (e == -ENOTSUP) {
			assert_int_equal(weft_runtime_stop(rt), 0);
			continue;
		}
		assert_int_equal(e, 0);
		weft_sem_t started = WEFT_SEM_INIT(0);
		struct slow s1 = {&started, 0}, s2 = {&started, 0};
		weft_exec_task_t h;
		assert_int_equal(weft_exec_spawn(ex, &h, slow_set, &s1, NULL), 0);
		assert_int_equal(weft_exec_spawn(ex, NULL, slow_set, &s2, NULL), 0);
		assert_int_equal(weft_sem_acquire_until(&started, wt_hang_deadline()), 0);
		assert_int_equal(weft_sem_acquire_until(&started, wt_hang_deadline()), 0);
		bool owns = weft_exec_caps(ex) & WEFT_EXEC_CAP_OWNS_TASKS;
		assert_int_equal(weft_exec_destroy(ex), 0);
		if (owns) {
			assert_int_equal(atomic_load(&s1.done), 1);
			assert_int_equal(atomic_load(&s2.done), 1);
		}
		assert_int_equal(weft_exec_wait(ex, h, NULL), -EINVAL);
		assert_int_equal(weft_exec_spawn(ex, NULL, slow_set, &s1, NULL), -EINVAL);
		assert_int_equal(weft_exec_destroy(ex), -EINVAL);
		WT_WAIT_UNTIL(atomic_load(&s1.done) && atomic_load(&s2.done));
		assert_int_equal(weft_runtime_stop(rt), 0);
	}
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* ------------------------------------------------------------ custom ops */

/* A wrapper around another executor that counts its calls: what a program
 * writes to put weft components on a runtime of its own. */
struct counting {
	weft_exec_t *inner;
	_Atomic uint64_t serial; /* the inner executor's, from its first handle */
	_Atomic int spawns, waits, destroyed;
};

static int c_spawn(void *ctx, uint64_t *id, weft_fn_t fn, void *arg, const weft_exec_spawn_opts_t *o)
{
	struct counting *c = ctx;
	atomic_fetch_add(&c->spawns, 1);
	weft_exec_task_t h;
	int r = weft_exec_spawn(c->inner, id ? &h : NULL, fn, arg, o);
	if (r == 0 && id) {
		atomic_store(&c->serial, h.exec);
		*id = h.id;
	}
	return r;
}

static int c_wait(void *ctx, uint64_t id, void **result, weft_time_t deadline, weft_op_t *op)
{
	struct counting *c = ctx;
	atomic_fetch_add(&c->waits, 1);
	weft_exec_task_t h = {id, atomic_load(&c->serial)};
	return op ? weft_exec_wait_step(c->inner, h, result, deadline, op)
		  : weft_exec_wait_until(c->inner, h, result, deadline);
}

static int c_detach(void *ctx, uint64_t id)
{
	struct counting *c = ctx;
	return weft_exec_detach(c->inner, (weft_exec_task_t){id, atomic_load(&c->serial)});
}

static int c_destroy(void *ctx)
{
	struct counting *c = ctx;
	atomic_store(&c->destroyed, 1);
	return 0;
}

static void test_custom_ops(void **state)
{
	(void)state;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	struct counting c = {0};
	assert_int_equal(weft_exec_create_runtime(&c.inner, rt), 0);
	weft_exec_ops_t ops = {
		.name = "counting", .spawn = c_spawn, .wait = c_wait, .detach = c_detach, .destroy = c_destroy};
	weft_exec_t *ex;
	assert_int_equal(weft_exec_create(&ex, &ops, &c), 0);
	assert_string_equal(weft_exec_name(ex), "counting");
	assert_int_equal(weft_exec_caps(ex), 0);
	weft_exec_task_t h;
	void *r = NULL;
	assert_int_equal(weft_exec_spawn(ex, &h, triple, (void *)4, NULL), 0);
	assert_int_equal(weft_exec_wait(ex, h, &r), 0);
	assert_int_equal((intptr_t)r, 12);
	/* The defaults: spawn_blocking is spawn, spawn_at a task that sleeps
	 * first; no cancel, no stackless tasks. */
	assert_int_equal(weft_exec_spawn_blocking(ex, &h, triple, (void *)5, NULL), 0);
	assert_int_equal(weft_exec_wait(ex, h, &r), 0);
	assert_int_equal((intptr_t)r, 15);
	weft_time_t at = weft_now() + 2 * WEFT_MSEC;
	assert_int_equal(weft_exec_spawn_at(ex, &h, at, triple, (void *)6, NULL), 0);
	assert_int_equal(weft_exec_wait(ex, h, &r), 0);
	assert_int_equal((intptr_t)r, 18);
	assert_true(weft_now() >= at);
	assert_int_equal(weft_exec_cancel(ex, h), -ENOTSUP);
	assert_int_equal(weft_exec_spawn_step(ex, &h, yield_twice, NULL, NULL), -ENOTSUP);
	assert_int_equal(atomic_load(&c.spawns), 3);
	assert_int_equal(atomic_load(&c.waits), 3);
	assert_int_equal(weft_exec_destroy(ex), 0);
	assert_int_equal(atomic_load(&c.destroyed), 1);
	assert_int_equal(weft_exec_destroy(c.inner), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
}

/* ------------------------------------------------------------ threads */

/* A pool of one thread, held: a task queued behind it is cancelled before
 * it starts, and never runs (result -ECANCELED); one left queued at
 * destroy is cancelled too, while the running one is waited for. */
static void test_threads_cancel_queued(void **state)
{
	(void)state;
	weft_exec_t *ex;
	weft_exec_threads_opts_t o = {.size = sizeof o, .max_threads = 1, .idle = WEFT_NEVER};
	assert_int_equal(weft_exec_create_threads(&ex, &o), 0);
	wt_hold_t h = WT_HOLD_INIT;
	_Atomic int ran = 0;
	weft_exec_task_t hold, q1, q2;
	assert_int_equal(weft_exec_spawn(ex, &hold, wt_hold_fn, &h, NULL), 0);
	assert_int_equal(weft_sem_acquire_until(&h.started, wt_hang_deadline()), 0);
	assert_int_equal(weft_exec_spawn(ex, &q1, wt_count_fn, &ran, NULL), 0);
	assert_int_equal(weft_exec_spawn(ex, &q2, wt_count_fn, &ran, NULL), 0);
	assert_int_equal(weft_exec_cancel(ex, q1), 0);
	void *r = NULL;
	assert_int_equal(weft_exec_wait(ex, q1, &r), 0);
	assert_int_equal((intptr_t)r, -ECANCELED);
	assert_int_equal(weft_exec_detach(ex, q2), 0);
	assert_int_equal(weft_sem_release(&h.gate, 1), 0);
	assert_int_equal(weft_exec_wait(ex, hold, &r), 0);
	assert_int_equal((intptr_t)r, 0);
	assert_int_equal(weft_exec_destroy(ex), 0);
	assert_true(atomic_load(&ran) <= 1); /* q2 ran, or was cancelled at destroy; q1 never */
}

static void test_threads_destroy_from_own_task(void **state)
{
	(void)state;
	weft_exec_t *ex;
	assert_int_equal(weft_exec_create_threads(&ex, NULL), 0);
	weft_exec_task_t t;
	void *r = NULL;
	assert_int_equal(weft_exec_spawn(ex, &t, wt_destroy_own, ex, NULL), 0);
	assert_int_equal(weft_exec_wait(ex, t, &r), 0);
	assert_int_equal((intptr_t)r, -EDEADLK);
	assert_string_equal(weft_exec_name(ex), "threads"); /* still usable */
	assert_int_equal(weft_exec_destroy(ex), 0);
}

static void test_threads_options(void **state)
{
	(void)state;
	weft_exec_t *ex = (weft_exec_t *)1;
	assert_int_equal(weft_exec_create_threads(NULL, NULL), -EINVAL);
	assert_int_equal(weft_exec_create_threads(&ex, &(weft_exec_threads_opts_t){.max_threads = -1}), -EINVAL);
	assert_null(ex);
	assert_int_equal(weft_exec_create_threads(&ex, &(weft_exec_threads_opts_t){.max_threads = 4097}), -EINVAL);
	assert_int_equal(weft_exec_create_threads(&ex, &(weft_exec_threads_opts_t){.idle = -1}), -EINVAL);
	assert_int_equal(weft_exec_create_threads(&ex, &(weft_exec_threads_opts_t){.idle = 10}), -EINVAL);
	assert_int_equal(weft_exec_create_threads(&ex, &(weft_exec_threads_opts_t){.thread_stack = 100}), -EINVAL);
	assert_int_equal(weft_exec_create_threads(&ex, &(weft_exec_threads_opts_t){.size = 3}), -EINVAL);
	struct {
		weft_exec_threads_opts_t o;
		int later;
	} big = {{.size = sizeof big}, 1};
	assert_int_equal(weft_exec_create_threads(&ex, &big.o), -E2BIG);
	weft_exec_threads_opts_t o = {.max_threads = 2, .idle = WEFT_MSEC, .thread_stack = 256 * 1024};
	assert_int_equal(weft_exec_create_threads(&ex, &o), 0);
	weft_exec_task_t t;
	void *r = NULL;
	assert_int_equal(weft_exec_spawn(ex, &t, triple, (void *)3, NULL), 0);
	assert_int_equal(weft_exec_wait(ex, t, &r), 0);
	assert_int_equal((intptr_t)r, 9);
	assert_int_equal(weft_exec_caps(ex), WEFT_EXEC_CAP_OWNS_TASKS | WEFT_EXEC_CAP_REAL_IO);
	assert_int_equal(weft_exec_destroy(ex), 0);
}

/* ------------------------------------------------------------ sim */

/* A run of the interface's operations: tasks that sleep and finish in an
 * order the schedule decides, a spawn_at, a blocking call, a cancel, a
 * wait that times out. The order of the ends is the run's output. */
struct sim_run {
	weft_exec_t *ex;
	char order[64];
	int n;
};

static void *sim_worker(void *a)
{
	struct sim_run *s = *(struct sim_run **)a;
	int i = (int)((intptr_t *)a)[1];
	weft_exec_sleep(s->ex, (i % 3) * WEFT_MSEC);
	for (int k = 0; k < i % 4; k++)
		weft_yield();
	s->order[s->n++] = (char)('a' + i);
	return (void *)(intptr_t)i;
}

static uint64_t sim_once(uint64_t seed, struct sim_run *s)
{
	*s = (struct sim_run){0};
	assert_int_equal(weft_exec_create_sim(
				 &s->ex, &(weft_exec_sim_opts_t){.size = sizeof(weft_exec_sim_opts_t), .seed = seed}),
			 0);
	enum { N = 8 };
	intptr_t args[N][2];
	weft_exec_task_t h[N], at, blk, never;
	for (int i = 0; i < N; i++) {
		args[i][0] = (intptr_t)s;
		args[i][1] = i;
		assert_int_equal(weft_exec_spawn(s->ex, &h[i], sim_worker, args[i], NULL), 0);
	}
	assert_int_equal(weft_exec_spawn_at(s->ex, &at, weft_exec_now(s->ex) + WEFT_MSEC, triple, (void *)1, NULL), 0);
	assert_int_equal(weft_exec_spawn_blocking(s->ex, &blk, triple, (void *)2, NULL), 0);
	weft_sem_t gate = WEFT_SEM_INIT(0);
	assert_int_equal(weft_exec_spawn(s->ex, &never, gated, &gate, NULL), 0);
	void *r;
	assert_int_equal(weft_exec_wait_until(s->ex, never, &r, weft_exec_now(s->ex) + 2 * WEFT_MSEC), -ETIMEDOUT);
	assert_int_equal(weft_exec_cancel(s->ex, never), 0);
	assert_int_equal(weft_exec_wait(s->ex, never, &r), 0);
	assert_int_equal((intptr_t)r, -ECANCELED);
	for (int i = 0; i < N; i++) {
		assert_int_equal(weft_exec_wait(s->ex, h[i], &r), 0);
		assert_int_equal((intptr_t)r, i);
	}
	assert_int_equal(weft_exec_wait(s->ex, at, &r), 0);
	assert_int_equal((intptr_t)r, 3);
	assert_int_equal(weft_exec_wait(s->ex, blk, &r), 0);
	assert_int_equal((intptr_t)r, 6);
	weft_sim_info_t i = {.size = sizeof i};
	assert_int_equal(weft_exec_sim_info(s->ex, &i), 0);
	assert_int_equal(weft_exec_destroy(s->ex), 0);
	return i.hash;
}

/* Same seed, same schedule and output; the seeds give different ones. */
static void test_sim_a_seed_repeats_its_run(void **state)
{
	(void)state;
	struct sim_run a, b;
	assert_true(sim_once(21, &a) == sim_once(21, &b));
	assert_int_equal(a.n, 8);
	assert_string_equal(a.order, b.order);
	int distinct = 0;
	uint64_t h[10];
	for (int k = 0; k < 10; k++) {
		h[k] = sim_once(100 + (uint64_t)k, &a);
		bool seen = false;
		for (int j = 0; j < k; j++)
			seen |= h[j] == h[k];
		distinct += !seen;
	}
	assert_true(distinct >= 8);
}

static void *wait_forever(void *a)
{
	weft_chan_t *ch = a;
	int v;
	return (void *)(intptr_t)weft_chan_recv(ch, &v);
}

static void *wait_uncancellably(void *a)
{
	(void)a;
	weft_waker_t w = weft_park_prepare_uncancellable();
	return (void *)(intptr_t)weft_park(w, WEFT_NEVER);
}

/* The owner's waits run the sim on its virtual clock: an hour's sleep
 * takes none, a wait nothing can end is a deadlock (and can be tried
 * again), destroy cancels what is left; tasks that not even a cancel ends
 * are reported and left behind, and destroy still ends the sim. */
static void test_sim_waits_deadlocks_and_destroy(void **state)
{
	(void)state;
	weft_exec_t *ex;
	assert_int_equal(weft_exec_create_sim(&ex, NULL), 0);
	weft_time_t t0 = weft_exec_now(ex);
	assert_int_equal(weft_exec_sleep(ex, 3600 * WEFT_SEC), 0);
	assert_true(weft_exec_now(ex) - t0 >= 3600 * WEFT_SEC);
	assert_true(weft_now() == weft_exec_now(ex)); /* the owner's clock is the sim's */
	weft_chan_t *ch;
	assert_int_equal(weft_chan_create(&ch, sizeof(int), 0), 0);
	weft_exec_task_t h;
	assert_int_equal(weft_exec_spawn(ex, &h, wait_forever, ch, NULL), 0);
	assert_int_equal(weft_exec_wait(ex, h, NULL), -EDEADLK);
	assert_int_equal(weft_exec_wait_until(ex, h, NULL, weft_exec_now(ex) + WEFT_SEC), -ETIMEDOUT);
	weft_sim_info_t i = {.size = sizeof i};
	assert_int_equal(weft_exec_sim_info(ex, &i), 0);
	assert_int_equal(i.deadlocks, 1);
	assert_int_equal(weft_exec_detach(ex, h), 0);
	assert_int_equal(weft_exec_destroy(ex), 0); /* the receive is cancelled */
	weft_chan_release(ch);

	assert_int_equal(weft_exec_create_sim(&ex, NULL), 0);
	assert_int_equal(weft_exec_spawn(ex, NULL, wait_uncancellably, NULL, NULL), 0);
	assert_int_equal(weft_exec_destroy(ex), 0);
	assert_false(weft_runtime_is_sim(weft_runtime_current()));
	assert_int_equal(weft_exec_create_sim(&ex, NULL), 0); /* the thread owns none */
	assert_int_equal(weft_exec_destroy(ex), 0);
}

/* ------------------------------------------------------------ probe faults */

/* Two threads cancel one handle at once (every call may come from any
 * thread): the task is taken back once, ends -ECANCELED once, and neither
 * cancel fails otherwise. On the pool backends a cancel takes a TIMER or
 * INBOX record out of its list and completes it after unlocking: the
 * other cancel must not take it out again. */
static weft_exec_t *race_ex;
static weft_exec_task_t race_task;
static pthread_barrier_t race_go, race_done;
static _Atomic bool race_stop;
static _Atomic long race_bad;

static void *race_canceller(void *a)
{
	(void)a;
	for (;;) {
		pthread_barrier_wait(&race_go);
		if (atomic_load(&race_stop))
			return NULL;
		int rc = weft_exec_cancel(race_ex, race_task);
		if (rc != 0 && rc != -ESRCH)
			atomic_fetch_add(&race_bad, 1);
		pthread_barrier_wait(&race_done);
	}
}

static void *one(void *a)
{
	(void)a;
	return (void *)1;
}

static void cancel_race(const wt_backend_t *b, bool at)
{
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	int e = b->make(&race_ex, rt);
	if (e == -ENOTSUP) {
		assert_int_equal(weft_runtime_stop(rt), 0);
		return;
	}
	assert_int_equal(e, 0);
	atomic_store(&race_stop, false);
	atomic_store(&race_bad, 0);
	pthread_barrier_init(&race_go, NULL, 3);
	pthread_barrier_init(&race_done, NULL, 3);
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, race_canceller, NULL), 0);
	for (long i = 0; i < WT_SIZE3(20000, 4000, 1000); i++) {
		if (at)
			assert_int_equal(weft_exec_spawn_at(race_ex, &race_task, WEFT_NEVER, one, NULL, NULL), 0);
		else
			assert_int_equal(weft_exec_spawn(race_ex, &race_task, one, NULL, NULL), 0);
		pthread_barrier_wait(&race_go);
		pthread_barrier_wait(&race_done);
		void *r = NULL;
		assert_int_equal(weft_exec_wait(race_ex, race_task, &r), 0);
		/* Before its time: taken back, never run. A plain spawn: ran, or not. */
		if (at || (intptr_t)r != 1)
			assert_int_equal((intptr_t)r, -ECANCELED);
	}
	atomic_store(&race_stop, true);
	pthread_barrier_wait(&race_go);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(atomic_load(&race_bad), 0);
	pthread_barrier_destroy(&race_go);
	pthread_barrier_destroy(&race_done);
	assert_int_equal(weft_exec_destroy(race_ex), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
}

static void test_cancel_races_cancel(void **state)
{
	(void)state;
	for (size_t i = 0; i < WT_NBACKENDS; i++) {
		cancel_race(&wt_backends[i], true);
		cancel_race(&wt_backends[i], false);
	}
}

/* A task of a sim (or its owner thread) cannot wait for a task of another
 * executor that has not ended: the end would wake it from another thread.
 * -EPERM, and nothing else changes (it can be waited for from elsewhere). */
static weft_exec_t *other_ex;
static weft_sem_t other_sem = WEFT_SEM_INIT(0);

static void *held(void *a)
{
	(void)a;
	return (void *)(intptr_t)weft_sem_acquire(&other_sem);
}

static void *sim_waits_other(void *a)
{
	return (void *)(intptr_t)weft_exec_wait(other_ex, *(weft_exec_task_t *)a, NULL);
}

static void test_sim_waits_only_for_its_own(void **state)
{
	(void)state;
	assert_int_equal(weft_exec_create_threads(&other_ex, NULL), 0);
	weft_exec_task_t t;
	assert_int_equal(weft_exec_spawn(other_ex, &t, held, NULL, NULL), 0);
	weft_exec_t *sim;
	assert_int_equal(weft_exec_create_sim(&sim, NULL), 0);
	weft_exec_task_t s;
	assert_int_equal(weft_exec_spawn(sim, &s, sim_waits_other, &t, NULL), 0);
	void *r;
	assert_int_equal(weft_exec_wait(sim, s, &r), 0);
	assert_int_equal((intptr_t)r, -EPERM);			     /* its task */
	assert_int_equal(weft_exec_wait(other_ex, t, NULL), -EPERM); /* the owner thread */
	assert_int_equal(weft_exec_destroy(sim), 0);
	assert_int_equal(weft_sem_release(&other_sem, 1), 0);
	assert_int_equal(weft_exec_wait(other_ex, t, &r), 0); /* not a sim's thread any more */
	assert_int_equal((intptr_t)r, 0);
	assert_int_equal(weft_exec_destroy(other_ex), 0);
}

/* A sim executor whose runtime was stopped through weft_exec_runtime, and
 * whose runtime struct a later sim of the thread took: its destroy must
 * not stop the later sim. */
static void test_sim_stale_destroy(void **state)
{
	(void)state;
	weft_exec_t *a, *b;
	assert_int_equal(weft_exec_create_sim(&a, NULL), 0);
	assert_int_equal(weft_runtime_stop(weft_exec_runtime(a)), 0);
	assert_int_equal(weft_exec_create_sim(&b, NULL), 0);
	weft_exec_task_t t;
	assert_int_equal(weft_exec_spawn(b, &t, one, NULL, NULL), 0);
	assert_int_equal(weft_exec_destroy(a), 0);
	void *r;
	assert_int_equal(weft_exec_wait(b, t, &r), 0);
	assert_int_equal((intptr_t)r, 1);
	assert_int_equal(weft_exec_spawn(b, NULL, one, NULL, NULL), 0);
	assert_int_equal(weft_exec_destroy(b), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spawn_and_wait),
		cmocka_unit_test(test_wait_with_a_deadline),
		cmocka_unit_test(test_detach),
		cmocka_unit_test(test_spawn_at),
		cmocka_unit_test(test_cancel_a_running_task),
		cmocka_unit_test(test_spawn_blocking),
		cmocka_unit_test(test_stackless),
		cmocka_unit_test(test_sleep_and_now),
		cmocka_unit_test(test_destroy_with_live_tasks),
		cmocka_unit_test(test_custom_ops),
		cmocka_unit_test(test_threads_cancel_queued),
		cmocka_unit_test(test_threads_destroy_from_own_task),
		cmocka_unit_test(test_threads_options),
		cmocka_unit_test(test_sim_a_seed_repeats_its_run),
		cmocka_unit_test(test_sim_waits_deadlocks_and_destroy),
		cmocka_unit_test(test_cancel_races_cancel),
		cmocka_unit_test(test_sim_waits_only_for_its_own),
		cmocka_unit_test(test_sim_stale_destroy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
