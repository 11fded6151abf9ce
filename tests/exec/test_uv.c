/* test_uv.c - the libuv executor beyond the contract that test_exec.c and
 * test_args.c check on every backend: the caller's-loop mode (the test
 * runs uv_run itself), -EDEADLK on the loop's thread, cancel of work queued
 * in libuv's pool, destroy with tasks queued and running, spawn_at's order,
 * the options.
 *
 * Nothing here depends on timing: main() sets UV_THREADPOOL_SIZE before
 * libuv starts its pool, so a test can hold every pool thread (or all but
 * one) with tasks blocked on a semaphore it controls. A task queued behind
 * them stays queued until the test lets them go; with one thread free,
 * tasks run one at a time in libuv's FIFO order. Without libuv (built with
 * -DWEFT_LIBUV=OFF) the tests skip, saying why. */
#include "wt_exec.h"

#include <pthread.h>
#include <stdlib.h>

#ifdef WEFT_HAVE_LIBUV
#include <uv.h>

#define POOL 4 /* UV_THREADPOOL_SIZE, set by main() */

static void *triple(void *a)
{
	return (void *)((intptr_t)a * 3);
}

/* n tasks of ex holding n pool threads, once this returns. */
static void hold_pool(weft_exec_t *ex, wt_hold_t *h, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(weft_exec_spawn(ex, NULL, wt_hold_fn, h, NULL), 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(weft_sem_acquire_until(&h->started, wt_hang_deadline()), 0);
}

/* Wait for t from the loop's thread without running the loop: poll (a
 * blocking wait there is -EDEADLK), sleeping the thread in between. */
static int poll_wait(weft_exec_t *ex, weft_exec_task_t t, void **r)
{
	weft_time_t give_up = wt_hang_deadline();
	int e;
	while ((e = weft_exec_wait_until(ex, t, r, 0)) == -ETIMEDOUT && weft_now() < give_up)
		weft_sleep(WEFT_MSEC / 4);
	return e;
}

/* An executor on the caller's loop, which this initialises. */
static weft_exec_t *make_on(uv_loop_t *loop)
{
	assert_int_equal(uv_loop_init(loop), 0);
	weft_exec_t *ex;
	assert_int_equal(
		weft_exec_create_uv(&ex, &(weft_exec_uv_opts_t){.size = sizeof(weft_exec_uv_opts_t), .loop = loop}), 0);
	return ex;
}

static pthread_t start_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, fn, arg), 0);
	return t;
}

static void *join_thread(pthread_t t)
{
	void *r = NULL;
	assert_int_equal(pthread_join(t, &r), 0);
	return r;
}

/* ------------------------------------------------------------ the caller's loop */

struct foreign {
	weft_exec_t *ex;
	uv_async_t *done; /* the test's own handle: keeps the loop alive until sent */
};

/* Another thread: spawns through the inbox while the test's thread runs
 * the loop, waits (a plain thread may block), and is refused destroy. */
static void *foreign_main(void *a)
{
	struct foreign *f = a;
	enum { N = 6 };
	weft_exec_task_t h[N], at;
	for (intptr_t i = 0; i < N; i++)
		TCHECK_EQ(weft_exec_spawn(f->ex, &h[i], triple, (void *)i, NULL), 0);
	weft_time_t when = weft_exec_now(f->ex) + 2 * WEFT_MSEC;
	TCHECK_EQ(weft_exec_spawn_at(f->ex, &at, when, triple, (void *)7, NULL), 0);
	for (intptr_t i = 0; i < N; i++) {
		void *r = NULL;
		TCHECK_EQ(weft_exec_wait_until(f->ex, h[i], &r, wt_hang_deadline()), 0);
		TCHECK_EQ((intptr_t)r, 3 * i);
	}
	void *r = NULL;
	TCHECK_EQ(weft_exec_wait_until(f->ex, at, &r, wt_hang_deadline()), 0);
	TCHECK_EQ((intptr_t)r, 21);
	TCHECK(weft_exec_now(f->ex) >= when);
	TCHECK_EQ(weft_exec_destroy(f->ex), -EPERM); /* not the loop's thread: still usable */
	TCHECK_EQ(weft_exec_spawn(f->ex, &h[0], triple, (void *)2, NULL), 0);
	TCHECK_EQ(weft_exec_wait_until(f->ex, h[0], &r, wt_hang_deadline()), 0);
	TCHECK_EQ((intptr_t)r, 6);
	uv_async_send(f->done);
	return NULL;
}

static void close_self(uv_async_t *h)
{
	uv_close((uv_handle_t *)h, NULL);
}

/* The test's thread owns a loop and runs it; the executor puts its work on
 * libuv's pool and its timer on that loop. */
static void test_callers_loop(void **state)
{
	(void)state;
	atomic_store(&tcheck_failures, 0);
	uv_loop_t loop;
	weft_exec_t *ex = make_on(&loop);
	assert_string_equal(weft_exec_name(ex), "libuv");

	/* From the loop's thread: queued at once; the loop lives until the
	 * work is done and the timer has fired. */
	enum { N = 8 };
	weft_exec_task_t h[N], at;
	for (intptr_t i = 0; i < N; i++)
		assert_int_equal(weft_exec_spawn(ex, &h[i], triple, (void *)i, NULL), 0);
	weft_time_t when = weft_now() + 2 * WEFT_MSEC;
	assert_int_equal(weft_exec_spawn_at(ex, &at, when, triple, (void *)100, NULL), 0);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	void *r = NULL;
	for (intptr_t i = 0; i < N; i++) {
		assert_int_equal(weft_exec_wait_until(ex, h[i], &r, 0), 0); /* ended: no -EDEADLK */
		assert_int_equal((intptr_t)r, 3 * i);
	}
	assert_int_equal(weft_exec_wait(ex, at, &r), 0);
	assert_int_equal((intptr_t)r, 300);
	assert_true(weft_now() >= when);

	/* From another thread, while this one runs the loop. */
	uv_async_t done;
	assert_int_equal(uv_async_init(&loop, &done, close_self), 0);
	struct foreign f = {ex, &done};
	pthread_t t = start_thread(foreign_main, &f);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	join_thread(t);

	assert_int_equal(weft_exec_destroy(ex), 0);
	assert_int_equal(uv_loop_close(&loop), 0); /* the executor closed its handles */
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* ------------------------------------------------------------ -EDEADLK */

/* On the loop's thread, a wait or sleep that would block would stall the
 * loop: -EDEADLK. Past deadlines poll, and a task that has ended is waited
 * for: its end is published on its pool thread, the loop need not turn. */
static void test_wait_on_the_loop_thread(void **state)
{
	(void)state;
	uv_loop_t loop;
	weft_exec_t *ex = make_on(&loop);
	wt_hold_t h = WT_HOLD_INIT;
	weft_exec_task_t g;
	assert_int_equal(weft_exec_spawn(ex, &g, wt_hold_fn, &h, NULL), 0);
	assert_int_equal(weft_sem_acquire_until(&h.started, wt_hang_deadline()), 0);
	void *r = (void *)1;
	weft_op_t op = WEFT_OP_INIT;
	assert_int_equal(weft_exec_wait(ex, g, &r), -EDEADLK);
	assert_int_equal(weft_exec_wait_until(ex, g, &r, weft_deadline_in(WEFT_SEC)), -EDEADLK);
	assert_int_equal(weft_exec_wait_step(ex, g, &r, WEFT_NEVER, &op), -EDEADLK); /* a plain thread blocks */
	assert_int_equal(weft_exec_wait_until(ex, g, &r, 0), -ETIMEDOUT);
	assert_int_equal((intptr_t)r, 1);
	assert_int_equal(weft_exec_sleep(ex, WEFT_MSEC), -EDEADLK);
	assert_int_equal(weft_exec_sleep_until(ex, weft_deadline_in(WEFT_SEC)), -EDEADLK);
	assert_int_equal(weft_exec_sleep_until(ex, 0), 0);
	assert_int_equal(weft_exec_sleep(ex, -1), 0);
	assert_int_equal(weft_sem_release(&h.gate, 1), 0);
	assert_int_equal(poll_wait(ex, g, &r), 0); /* the loop has not run */
	assert_int_equal((intptr_t)r, 0);
	assert_int_equal(weft_exec_destroy(ex), 0); /* runs the loop for after_cb and the close callbacks */
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* ------------------------------------------------------------ cancel queued */

struct canceller {
	weft_exec_t *ex;
	weft_exec_task_t t;
};

static void *cancel_main(void *a)
{
	struct canceller *c = a;
	return (void *)(intptr_t)weft_exec_cancel(c->ex, c->t);
}

/* Every pool thread held: tasks queued in libuv's pool behind them are
 * cancelled (uv_cancel) and never run. On the loop's thread the cancel
 * takes effect at once; from another thread it asks the loop, which does
 * it when it next runs. */
static void test_cancel_queued_callers_loop(void **state)
{
	(void)state;
	uv_loop_t loop;
	weft_exec_t *ex = make_on(&loop);
	wt_hold_t h = WT_HOLD_INIT;
	hold_pool(ex, &h, POOL);
	_Atomic int ran = 0;
	weft_exec_task_t q1, q2;
	assert_int_equal(weft_exec_spawn(ex, &q1, wt_count_fn, &ran, NULL), 0); /* queued in libuv's pool */
	assert_int_equal(weft_exec_spawn(ex, &q2, wt_count_fn, &ran, NULL), 0);

	assert_int_equal(weft_exec_cancel(ex, q1), 0);
	void *r = NULL;
	assert_int_equal(weft_exec_wait_until(ex, q1, &r, 0), 0); /* ended at once */
	assert_int_equal((intptr_t)r, -ECANCELED);

	struct canceller c = {ex, q2};
	assert_int_equal((intptr_t)join_thread(start_thread(cancel_main, &c)), 0);
	assert_int_equal(weft_exec_wait_until(ex, q2, &r, 0), -ETIMEDOUT); /* the loop has not run since */
	uv_run(&loop, UV_RUN_NOWAIT);					   /* its inbox: uv_cancel */
	assert_int_equal(weft_exec_wait_until(ex, q2, &r, 0), 0);
	assert_int_equal((intptr_t)r, -ECANCELED);
	assert_int_equal(weft_exec_cancel(ex, q2), -ESRCH);

	assert_int_equal(weft_sem_release(&h.gate, POOL), 0);
	assert_int_equal(weft_exec_destroy(ex), 0); /* waits for the holders */
	assert_int_equal(atomic_load(&h.done), POOL);
	assert_int_equal(atomic_load(&ran), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* The same with the executor's own loop, everything from the test's
 * thread: the task is still in the inbox or already queued in libuv's
 * pool when the cancel comes; either way it never runs. */
static void test_cancel_queued_own_loop(void **state)
{
	(void)state;
	weft_exec_t *ex;
	assert_int_equal(weft_exec_create_uv(&ex, NULL), 0);
	wt_hold_t h = WT_HOLD_INIT;
	hold_pool(ex, &h, POOL);
	_Atomic int ran = 0;
	enum { N = 16 };
	weft_exec_task_t q[N];
	for (int i = 0; i < N; i++)
		assert_int_equal(weft_exec_spawn(ex, &q[i], wt_count_fn, &ran, NULL), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(weft_exec_cancel(ex, q[i]), 0);
		void *r = NULL;
		assert_int_equal(weft_exec_wait_until(ex, q[i], &r, wt_hang_deadline()), 0);
		assert_int_equal((intptr_t)r, -ECANCELED);
	}
	assert_int_equal(weft_sem_release(&h.gate, POOL), 0);
	assert_int_equal(weft_exec_destroy(ex), 0);
	assert_int_equal(atomic_load(&h.done), POOL);
	assert_int_equal(atomic_load(&ran), 0);
}

/* ------------------------------------------------------------ destroy */

struct teardown {
	weft_exec_t *ex;
	wt_hold_t *h;
	weft_exec_task_t queued, timed; /* a task queued behind the holders, one at a time far away */
};

/* The side that does not destroy: the destroy cancels what has not
 * started (so these waits end), then waits for the holders, which this
 * lets go. */
static void *teardown_release(void *a)
{
	struct teardown *d = a;
	void *r = NULL;
	TCHECK_EQ(weft_exec_wait_until(d->ex, d->queued, &r, wt_hang_deadline()), 0);
	TCHECK_EQ((intptr_t)r, -ECANCELED);
	TCHECK_EQ(weft_exec_wait_until(d->ex, d->timed, &r, wt_hang_deadline()), 0);
	TCHECK_EQ((intptr_t)r, -ECANCELED);
	TCHECK_EQ(atomic_load(&d->h->done), 0); /* destroy is still waiting for them */
	TCHECK_EQ(weft_sem_release(&d->h->gate, POOL), 0);
	return NULL;
}

static void *teardown_destroy(void *a)
{
	return (void *)(intptr_t)weft_exec_destroy(((struct teardown *)a)->ex);
}

/* Destroy with every pool thread running a task, tasks queued behind them
 * (one with a handle, one detached) and a spawn_at task before its time:
 * the queued ones never run, the running ones are waited for, handles die.
 * With its own loop, destroy runs on another thread; with the caller's,
 * on the loop's thread, where it runs the loop until its handles close. */
static void destroy_busy(uv_loop_t *loop)
{
	atomic_store(&tcheck_failures, 0);
	weft_exec_t *ex;
	if (loop)
		ex = make_on(loop);
	else
		assert_int_equal(weft_exec_create_uv(&ex, NULL), 0);
	wt_hold_t h = WT_HOLD_INIT;
	weft_exec_task_t holder;
	assert_int_equal(weft_exec_spawn(ex, &holder, wt_hold_fn, &h, NULL), 0);
	assert_int_equal(weft_sem_acquire_until(&h.started, wt_hang_deadline()), 0);
	hold_pool(ex, &h, POOL - 1);
	_Atomic int ran = 0;
	struct teardown d = {.ex = ex, .h = &h};
	assert_int_equal(weft_exec_spawn(ex, &d.queued, wt_count_fn, &ran, NULL), 0);
	assert_int_equal(weft_exec_spawn(ex, NULL, wt_count_fn, &ran, NULL), 0);
	assert_int_equal(weft_exec_spawn_at(ex, &d.timed, weft_now() + 3600 * WEFT_SEC, wt_count_fn, &ran, NULL), 0);
	if (loop) {
		pthread_t t = start_thread(teardown_release, &d);
		assert_int_equal(weft_exec_destroy(ex), 0);
		join_thread(t);
		assert_int_equal(uv_loop_close(loop), 0);
	} else {
		pthread_t t = start_thread(teardown_destroy, &d);
		teardown_release(&d);
		assert_int_equal((intptr_t)join_thread(t), 0);
	}
	assert_int_equal(atomic_load(&h.done), POOL);
	assert_int_equal(atomic_load(&ran), 0);
	assert_int_equal(weft_exec_wait(ex, holder, NULL), -EINVAL); /* handles died with it */
	assert_int_equal(weft_exec_destroy(ex), -EINVAL);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

static void test_destroy_busy_own_loop(void **state)
{
	(void)state;
	destroy_busy(NULL);
}

static void test_destroy_busy_callers_loop(void **state)
{
	(void)state;
	uv_loop_t loop;
	destroy_busy(&loop);
}

/* ------------------------------------------------------------ spawn_at */

struct order {
	weft_time_t at[8];
	int log[8];
	weft_time_t ran_at[8];
	_Atomic int n;
};

struct at_task {
	struct order *o;
	int i;
};

static void *log_fn(void *a)
{
	struct at_task *t = a;
	int k = atomic_fetch_add(&t->o->n, 1);
	t->o->log[k] = t->i;
	t->o->ran_at[t->i] = weft_now();
	return NULL;
}

/* spawn_at tasks run in the order of their times, FIFO among equal times,
 * never early. All but one pool thread held: tasks run one at a time in
 * the order the timer hands them to libuv. The loop is the test's, run
 * only once every time has passed, so one timer callback queues them all. */
static void test_spawn_at_order(void **state)
{
	(void)state;
	uv_loop_t loop;
	weft_exec_t *ex = make_on(&loop);
	wt_hold_t h = WT_HOLD_INIT;
	hold_pool(ex, &h, POOL - 1);
	struct order o = {.n = 0};
	weft_time_t base = weft_now() + 2 * WEFT_MSEC;
	const int offset_ms[] = {4, 1, 3, 1, 0, 2, 4, 0}; /* spawn order; expected: 4 7 1 3 5 2 0 6 */
	const int expect[] = {4, 7, 1, 3, 5, 2, 0, 6};
	struct at_task tasks[8];
	weft_exec_task_t hs[8];
	for (int i = 0; i < 8; i++) {
		o.at[i] = base + offset_ms[i] * WEFT_MSEC;
		tasks[i] = (struct at_task){&o, i};
		assert_int_equal(weft_exec_spawn_at(ex, &hs[i], o.at[i], log_fn, &tasks[i], NULL), 0);
	}
	weft_sleep_until(base + 5 * WEFT_MSEC); /* the plain thread sleeps; the loop does not run */
	while (atomic_load(&o.n) < 8)
		uv_run(&loop, UV_RUN_ONCE); /* the timer, then the work's completions */
	for (int i = 0; i < 8; i++)
		assert_int_equal(poll_wait(ex, hs[i], NULL), 0);
	assert_int_equal(atomic_load(&o.n), 8);
	for (int k = 0; k < 8; k++)
		assert_int_equal(o.log[k], expect[k]);
	for (int i = 0; i < 8; i++)
		assert_true(o.ran_at[i] >= o.at[i]);
	assert_int_equal(weft_sem_release(&h.gate, POOL - 1), 0);
	assert_int_equal(weft_exec_destroy(ex), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* ------------------------------------------------------------ options */

static void test_options_and_refusals(void **state)
{
	(void)state;
	weft_exec_t *ex = (weft_exec_t *)1;
	assert_int_equal(weft_exec_create_uv(NULL, NULL), -EINVAL);
	assert_int_equal(weft_exec_create_uv(&ex, &(weft_exec_uv_opts_t){.size = 3}), -EINVAL);
	assert_null(ex);
	struct {
		weft_exec_uv_opts_t o;
		int later;
	} big = {{.size = sizeof big}, 1};
	assert_int_equal(weft_exec_create_uv(&ex, &big.o), -E2BIG);
	big.later = 0; /* a newer struct whose new field is zero: accepted */
	assert_int_equal(weft_exec_create_uv(&ex, &big.o), 0);
	assert_int_equal(weft_exec_caps(ex), WEFT_EXEC_CAP_OWNS_TASKS | WEFT_EXEC_CAP_REAL_IO);
	assert_string_equal(weft_exec_name(ex), "libuv");
	weft_exec_task_t t;
	void *r = NULL;
	assert_int_equal(weft_exec_spawn(ex, &t, wt_destroy_own, ex, NULL), 0);
	assert_int_equal(weft_exec_wait(ex, t, &r), 0);
	assert_int_equal((intptr_t)r, -EDEADLK);			       /* from its own task */
	assert_int_equal(weft_exec_spawn(ex, &t, triple, (void *)5, NULL), 0); /* still usable */
	assert_int_equal(weft_exec_wait(ex, t, &r), 0);
	assert_int_equal((intptr_t)r, 15);
	assert_int_equal(weft_exec_destroy(ex), 0);
	assert_int_equal(weft_exec_create_uv(&ex, &(weft_exec_uv_opts_t){0}), 0); /* size 0: the first version */
	assert_int_equal(weft_exec_destroy(ex), 0);
}

int main(void)
{
	setenv("UV_THREADPOOL_SIZE", "4", 1); /* POOL: read when libuv first uses its pool */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_callers_loop),
		cmocka_unit_test(test_wait_on_the_loop_thread),
		cmocka_unit_test(test_cancel_queued_callers_loop),
		cmocka_unit_test(test_cancel_queued_own_loop),
		cmocka_unit_test(test_destroy_busy_own_loop),
		cmocka_unit_test(test_destroy_busy_callers_loop),
		cmocka_unit_test(test_spawn_at_order),
		cmocka_unit_test(test_options_and_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* built with -DWEFT_LIBUV=OFF */

static void test_built_without_libuv(void **state)
{
	(void)state;
	weft_exec_t *ex = (weft_exec_t *)1;
	assert_int_equal(weft_exec_create_uv(&ex, NULL), -ENOTSUP);
	assert_null(ex);
	fprintf(stderr, "  libuv tests skipped: weft was built without libuv (-DWEFT_LIBUV=OFF)\n");
	skip();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_built_without_libuv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
