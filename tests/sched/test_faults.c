/* test_faults.c - the runtime core under calls a hostile user makes:
 * joins, cancels, names and spawns racing a stop, from plain threads and
 * from another runtime's tasks; nested weft_main; timers while every worker
 * is stuck; task-local keys deleted and re-created; ids after a slot's
 * generations run out; step functions returning garbage; periodic timers
 * with huge periods; dumps to bad descriptors. */
#include "weft_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "sched/internal.h"

/* ------------------------------------------------------------ racing a stop */

static void *sleep_forever(void *a)
{
	(void)a;
	return (void *)(intptr_t)weft_sleep(3600 * WEFT_SEC);
}

struct racer {
	weft_runtime_t *rt;
	weft_task_t id;
	_Atomic int *go;
	int bad; /* results outside the documented set */
};

/* A plain thread joins a task of the runtime being stopped. */
static void *join_racer(void *a)
{
	struct racer *r = a;
	while (!atomic_load(r->go))
		sched_yield();
	void *res = NULL;
	int e = weft_join(r->id, &res);
	if (!(e == -ESRCH || (e == 0 && (intptr_t)res == -ECANCELED)))
		r->bad++;
	return NULL;
}

/* A plain thread cancels and names tasks of the runtime being stopped, and
 * spawns into it, until the stop has returned. */
static _Atomic int stopped;

static void *hammer_racer(void *a)
{
	struct racer *r = a;
	while (!atomic_load(r->go))
		sched_yield();
	while (!atomic_load(&stopped)) {
		int e = weft_cancel(r->id);
		if (e != 0 && e != -ESRCH)
			r->bad++;
		char name[16];
		e = weft_task_name(r->id, name, sizeof name);
		if (e != 0 && e != -ESRCH)
			r->bad++;
		weft_task_t t;
		e = weft_spawn(&t, sleep_forever, NULL, &(weft_spawn_opts_t){.runtime = r->rt, .detached = true});
		if (e != 0 && e != -ESHUTDOWN)
			r->bad++;
	}
	/* Once stopped: nothing resolves, nothing spawns. */
	if (weft_cancel(r->id) != -ESRCH)
		r->bad++;
	if (weft_spawn(NULL, sleep_forever, NULL, &(weft_spawn_opts_t){.runtime = r->rt}) != -ESHUTDOWN)
		r->bad++;
	return NULL;
}

/* A task of another runtime joins a task of the runtime being stopped. */
static void *join_from_task(void *a)
{
	struct racer *r = a;
	while (!atomic_load(r->go))
		weft_yield();
	void *res = NULL;
	int e = weft_join(r->id, &res);
	if (!(e == -ESRCH || (e == 0 && (intptr_t)res == -ECANCELED)))
		r->bad++;
	return NULL;
}

static void test_calls_racing_a_stop(void **state)
{
	(void)state;
	weft_runtime_t *other;
	assert_int_equal(weft_runtime_start(&other, &(weft_config_t){.workers = 1}), 0);
	for (int round = 0; round < WT_SIZE(30, 10); round++) {
		weft_runtime_t *rt;
		assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
		_Atomic int go = 0;
		atomic_store(&stopped, 0);
		enum { NJ = 3, NH = 2 };
		struct racer jr[NJ], hr[NH], tr;
		pthread_t jt[NJ], ht[NH];
		for (int i = 0; i < NJ; i++) {
			jr[i] = (struct racer){.rt = rt, .go = &go};
			assert_int_equal(
				weft_spawn(&jr[i].id, sleep_forever, NULL, &(weft_spawn_opts_t){.runtime = rt}), 0);
			assert_int_equal(pthread_create(&jt[i], NULL, join_racer, &jr[i]), 0);
		}
		for (int i = 0; i < NH; i++) {
			hr[i] = (struct racer){.rt = rt, .go = &go};
			assert_int_equal(weft_spawn(&hr[i].id, sleep_forever, NULL,
						    &(weft_spawn_opts_t){.runtime = rt, .detached = true}),
					 0);
			assert_int_equal(pthread_create(&ht[i], NULL, hammer_racer, &hr[i]), 0);
		}
		tr = (struct racer){.rt = rt, .go = &go};
		assert_int_equal(weft_spawn(&tr.id, sleep_forever, NULL, &(weft_spawn_opts_t){.runtime = rt}), 0);
		weft_task_t jt2;
		assert_int_equal(weft_spawn(&jt2, join_from_task, &tr, &(weft_spawn_opts_t){.runtime = other}), 0);
		atomic_store(&go, 1);
		if (round % 2)
			sched_yield();
		assert_int_equal(weft_runtime_stop(rt), 0);
		atomic_store(&stopped, 1);
		for (int i = 0; i < NJ; i++) {
			assert_int_equal(pthread_join(jt[i], NULL), 0);
			assert_int_equal(jr[i].bad, 0);
		}
		for (int i = 0; i < NH; i++) {
			assert_int_equal(pthread_join(ht[i], NULL), 0);
			assert_int_equal(hr[i].bad, 0);
		}
		assert_int_equal(weft_join(jt2, NULL), 0);
		assert_int_equal(tr.bad, 0);
		/* A stopped runtime: stop again is refused, ids do not resolve. */
		assert_int_equal(weft_runtime_stop(rt), -EINVAL);
		assert_int_equal(weft_join(jr[0].id, NULL), -ESRCH);
	}
	assert_int_equal(weft_runtime_stop(other), 0);
}

/* A plain thread creates timers on the default runtime while the main
 * thread starts and stops it: each create either succeeds (and the stop
 * frees the timer: LeakSanitizer checks) or fails with -ESHUTDOWN; none
 * reaches a freed timer list. (The thread makes no other call on its
 * timers: the stop may free them at any moment. Calls during a stop are
 * test_timer_calls_while_stopping's.) */
static _Atomic int timers_done;
static _Atomic long timers_started, timers_bad;

static void no_op(void *a)
{
	(void)a;
}

static void *timer_starter(void *a)
{
	(void)a;
	while (!atomic_load(&timers_done)) {
		weft_timer_t *t;
		int e = weft_timer_create(&t, no_op, NULL);
		if (e == 0)
			atomic_fetch_add(&timers_started, 1);
		else if (e != -ESHUTDOWN || t != NULL)
			atomic_fetch_add(&timers_bad, 1);
	}
	return NULL;
}

static void test_timer_create_racing_a_stop(void **state)
{
	(void)state;
	pthread_t th;
	atomic_store(&timers_done, 0);
	assert_int_equal(pthread_create(&th, NULL, timer_starter, NULL), 0);
	for (int round = 0; round < WT_SIZE(1000, 200); round++) {
		weft_runtime_t *rt;
		assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 1, .no_monitor = true}), 0);
		for (int k = 0; k < round % 8; k++)
			sched_yield();
		assert_int_equal(weft_runtime_stop(rt), 0);
	}
	atomic_store(&timers_done, 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&timers_bad), 0);
}

/* Timer calls while the runtime stops. A task that the stop cancels, and a
 * plain thread while that task holds the stop back (the stop waits for
 * every task, so the timers stay whole), find create and start refused
 * with -ESHUTDOWN and stop and destroy working. The timers left - armed,
 * stopped, never started - are freed by the stop (LeakSanitizer checks). */
enum { NSTOPPING = 5 };
static weft_timer_t *stopping_timers[NSTOPPING];
static _Atomic int stopping_phase; /* 1: the task has made its calls; 2: the thread too */

static void *stopping_task(void *a)
{
	(void)a;
	weft_time_t give_up = wt_hang_deadline();
	while (weft_sleep(WEFT_MSEC) != -ECANCELED && weft_now() < give_up)
		;
	weft_timer_t *t = stopping_timers[0];
	TCHECK_EQ(weft_timer_create(&t, no_op, NULL), -ESHUTDOWN);
	TCHECK(t == NULL);
	TCHECK_EQ(weft_timer_start(stopping_timers[0], weft_deadline_in(WEFT_MSEC), WEFT_MSEC), -ESHUTDOWN);
	TCHECK_EQ(weft_timer_stop(stopping_timers[0]), 0);
	TCHECK_EQ(weft_timer_destroy(stopping_timers[0]), 0);
	atomic_store(&stopping_phase, 1);
	while (atomic_load(&stopping_phase) != 2 && weft_now() < give_up)
		usleep(100);
	return NULL;
}

static void *stopping_thread(void *a)
{
	(void)a;
	weft_time_t give_up = wt_hang_deadline();
	while (atomic_load(&stopping_phase) != 1 && weft_now() < give_up)
		usleep(100);
	weft_timer_t *t = stopping_timers[1];
	TCHECK_EQ(weft_timer_create(&t, no_op, NULL), -ESHUTDOWN); /* the default runtime, stopping */
	TCHECK(t == NULL);
	TCHECK_EQ(weft_timer_start(stopping_timers[1], weft_deadline_in(WEFT_MSEC), 0), -ESHUTDOWN);
	TCHECK_EQ(weft_timer_stop(stopping_timers[1]), 0);
	TCHECK_EQ(weft_timer_destroy(stopping_timers[1]), 0);
	TCHECK_EQ(weft_timer_stop(stopping_timers[2]), 0);
	atomic_store(&stopping_phase, 2);
	return NULL;
}

static void test_timer_calls_while_stopping(void **state)
{
	(void)state;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	assert_ptr_equal(weft_runtime_current(), rt); /* the default: the thread's calls go to it */
	atomic_store(&tcheck_failures, 0);
	atomic_store(&stopping_phase, 0);
	for (int i = 0; i < NSTOPPING; i++) {
		assert_int_equal(weft_timer_create(&stopping_timers[i], no_op, NULL), 0);
		if (i < NSTOPPING - 1) /* the last is never started */
			assert_int_equal(weft_timer_start(stopping_timers[i], weft_deadline_in(WEFT_MSEC), WEFT_MSEC),
					 0);
	}
	assert_int_equal(weft_spawn(NULL, stopping_task, NULL, &(weft_spawn_opts_t){.detached = true}), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, stopping_thread, NULL), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&stopping_phase), 2);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* Once weft_join returns, the id is dead even if the finishing worker still
 * holds its reference on the record (held here by an internal lookup, the
 * way the worker holds it between waking the joiner and letting go). */
static void *return_nine(void *a)
{
	(void)a;
	return (void *)9;
}

static void *joined_main(void *a)
{
	(void)a;
	weft_task_t t;
	TCHECK_EQ(weft_spawn(&t, return_nine, NULL, NULL), 0);
	weft_task *held = weft__task_get(t, NULL);
	TCHECK(held != NULL);
	void *r = NULL;
	TCHECK_EQ(weft_join(t, &r), 0);
	TCHECK_EQ((intptr_t)r, 9);
	char name[16];
	TCHECK_EQ(weft_task_name(t, name, sizeof name), -ESRCH);
	TCHECK_EQ(weft_cancel(t), -ESRCH);
	TCHECK_EQ(weft_join(t, NULL), -ESRCH);
	TCHECK_EQ(weft_detach(t), -ESRCH);
	if (held)
		weft__task_put(held);
	return NULL;
}

static void test_joined_id_is_dead_at_once(void **state)
{
	(void)state;
	wt_run(joined_main, NULL, 1);
}

/* A waker kept past its runtime's stop (the task it names is gone) unparks
 * nothing and does not crash; the next runtime of the same index reuses
 * the task table with epochs and ids that go on, so the old waker and the
 * old ids reach none of its tasks. */
static weft_waker_t kept_waker;
static _Atomic int kept;

static void *park_and_keep(void *a)
{
	(void)a;
	kept_waker = weft_park_prepare();
	atomic_store(&kept, 1);
	return (void *)(intptr_t)weft_park(kept_waker, WEFT_NEVER); /* until stop cancels it */
}

static void *short_wait(void *a)
{
	(void)a;
	weft_waker_t w = weft_park_prepare();
	return (void *)(intptr_t)weft_park(w, weft_now() + 2 * WEFT_MSEC);
}

static void test_waker_and_ids_outlive_their_runtime(void **state)
{
	(void)state;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 1}), 0);
	weft_task_t t;
	assert_int_equal(weft_spawn(&t, park_and_keep, NULL, &(weft_spawn_opts_t){.runtime = rt}), 0);
	while (!atomic_load(&kept))
		sched_yield();
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_false(weft_unpark(kept_waker, 0));
	assert_false(weft_unpark_claim(kept_waker));
	/* The next runtime takes the same index, and the same records. */
	weft_runtime_t *again;
	assert_int_equal(weft_runtime_start(&again, &(weft_config_t){.workers = 1}), 0);
	enum { M = 2000 };
	weft_task_t ids[M];
	for (int i = 0; i < M; i++)
		assert_int_equal(weft_spawn(&ids[i], short_wait, NULL, &(weft_spawn_opts_t){.runtime = again}), 0);
	for (int k = 0; k < 200; k++)
		assert_false(weft_unpark(kept_waker, 0)); /* wakes none of them */
	for (int i = 0; i < M; i++) {
		assert_true(ids[i] != t);
		void *r;
		assert_int_equal(weft_join(ids[i], &r), 0);
		assert_int_equal((intptr_t)r, -ETIMEDOUT);
	}
	assert_int_equal(weft_join(t, NULL), -ESRCH);
	assert_int_equal(weft_runtime_stop(again), 0);
}

/* ------------------------------------------------------------ nested weft_main */

static int count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void *inner_main(void *a)
{
	return (void *)((intptr_t)a + 1);
}

static void *outer_main(void *a)
{
	(void)a;
	for (int i = 0; i < WT_SIZE(300, 40); i++)
		TCHECK_EQ(weft_main(inner_main, (void *)(intptr_t)i, &(weft_config_t){.workers = 1}), i + 1);
	return NULL;
}

static void test_weft_main_inside_a_task(void **state)
{
	(void)state;
	int before = count_threads();
	/* More nested runtimes than can run at once: each is stopped before
	 * the next starts, so none leaks. */
	wt_run(outer_main, NULL, 1);
	assert_int_equal(count_threads(), before);
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, NULL), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
}

static void *stop_self(void *a)
{
	TCHECK_EQ(weft_runtime_stop(a), -EDEADLK);
	return NULL;
}

static void test_stop_from_its_own_task_is_refused(void **state)
{
	(void)state;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, NULL), 0);
	atomic_store(&tcheck_failures, 0);
	weft_task_t t;
	assert_int_equal(weft_spawn(&t, stop_self, rt, &(weft_spawn_opts_t){.runtime = rt}), 0);
	assert_int_equal(weft_join(t, NULL), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* ------------------------------------------------------------ timers while every worker is stuck */

static int stuck_pipe[2];
static _Atomic int sleeps_done;

static void *blocker(void *a)
{
	(void)a;
	/* A raw blocking call, up to 20 s: the sleeper's write ends it. */
	struct pollfd p = {.fd = stuck_pipe[0], .events = POLLIN};
	int r = poll(&p, 1, 20000);
	TCHECK_EQ(r, 1);
	return NULL;
}

static void *sleeper(void *a)
{
	_Atomic int *blocking = a;
	/* Arm a timer on a worker, then let both workers block. */
	atomic_store(blocking, 1);
	for (int i = 0; i < 20; i++) {
		TCHECK_EQ(weft_sleep(5 * WEFT_MSEC), 0);
		atomic_fetch_add(&sleeps_done, 1);
	}
	TCHECK_EQ(write(stuck_pipe[1], "xx", 2), 2);
	return NULL;
}

static void test_timers_fire_while_every_worker_is_stuck(void **state)
{
	(void)state;
	assert_int_equal(pipe(stuck_pipe), 0);
	atomic_store(&tcheck_failures, 0);
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	_Atomic int blocking = 0;
	weft_task_t s, b[2];
	assert_int_equal(weft_spawn(&s, sleeper, &blocking, &(weft_spawn_opts_t){.runtime = rt}), 0);
	while (!atomic_load(&blocking))
		sched_yield();
	for (int i = 0; i < 2; i++)
		assert_int_equal(weft_spawn(&b[i], blocker, NULL, &(weft_spawn_opts_t){.runtime = rt}), 0);
	/* The sleeper's 20 sleeps end although both workers are blocked in
	 * poll(2) until they do (or give up after 20 s: a failure). */
	assert_int_equal(weft_join(s, NULL), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(weft_join(b[i], NULL), 0);
	assert_int_equal(atomic_load(&sleeps_done), 20);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
	close(stuck_pipe[0]);
	close(stuck_pipe[1]);
}

/* ------------------------------------------------------------ task-local keys */

static _Atomic int dtor_calls;
static void *dtor_seen;

static void count_dtor(void *v)
{
	atomic_fetch_add(&dtor_calls, 1);
	dtor_seen = v;
}

static int old_value = 1, new_value = 2;

static void *tls_main(void *a)
{
	(void)a;
	weft_tls_key_t k1, k2;
	TCHECK_EQ(weft_tls_key_create(&k1, count_dtor), 0);
	TCHECK_EQ(weft_tls_set(k1, &old_value), 0);
	TCHECK_EQ(weft_tls_key_delete(k1), 0);
	TCHECK_EQ(weft_tls_key_create(&k2, count_dtor), 0);
	TCHECK(k2 != k1);			  /* the same slot, a new generation */
	TCHECK((void *)weft_tls_get(k2) == NULL); /* not the deleted key's value */
	TCHECK((void *)weft_tls_get(k1) == NULL); /* a deleted key reads nothing */
	TCHECK_EQ(weft_tls_set(k1, &old_value), -EINVAL);
	TCHECK_EQ(weft_tls_key_delete(k1), -EINVAL);
	TCHECK_EQ(weft_tls_set(k2, &new_value), 0);
	TCHECK(weft_tls_get(k2) == &new_value);
	TCHECK_EQ(weft_tls_set(-1, NULL), -EINVAL);
	TCHECK_EQ(weft_tls_set(1 << 30, NULL), -EINVAL);
	return (void *)(intptr_t)k2;
}

static void test_tls_key_deleted_and_recreated(void **state)
{
	(void)state;
	void *k2 = wt_run(tls_main, NULL, 1);
	/* At exit, k2's destructor ran once, on k2's value only. */
	assert_int_equal(atomic_load(&dtor_calls), 1);
	assert_ptr_equal(dtor_seen, &new_value);
	assert_int_equal(weft_tls_key_delete((weft_tls_key_t)(intptr_t)k2), 0);
}

/* A slot whose key generations are used up is retired: no handle ever
 * names two keys (2^25 deletions of one slot; release builds only, as the
 * sanitizers make it too slow). */
static void test_tls_key_generations_do_not_wrap(void **state)
{
	(void)state;
#ifdef WEFT_SANITIZED
	skip();
#else
	weft_tls_key_t first, k;
	assert_int_equal(weft_tls_key_create(&first, NULL), 0);
	assert_int_equal(weft_tls_key_delete(first), 0);
	int slot = first & 63;
	long n = 0;
	for (;;) {
		assert_int_equal(weft_tls_key_create(&k, NULL), 0);
		if ((k & 63) != slot) { /* the slot was retired: keys go elsewhere */
			assert_int_equal(weft_tls_key_delete(k), 0);
			break;
		}
		assert_true(k != first || n == 0);
		assert_int_equal(weft_tls_key_delete(k), 0);
		n++;
		assert_true(n <= (1L << 25) + 1);
	}
	assert_true(n >= (1L << 25) - 64); /* all the slot's generations, less those used before */
	assert_int_equal(weft_tls_key_delete(first), -EINVAL);
#endif
}

/* ------------------------------------------------------------ a select on the smallest stack */

static void *wide_select(void *a)
{
	(void)a;
	enum { N = 64 };
	weft_chan_t *ch[N];
	long v[N];
	weft_select_case_t c[N];
	for (int i = 0; i < N; i++) {
		TCHECK_EQ(weft_chan_create(&ch[i], sizeof(long), 0), 0);
		c[i] = (weft_select_case_t){.ch = ch[i], .op = WEFT_SELECT_RECV, .buf = &v[i]};
	}
	TCHECK_EQ(weft_select(c, N, weft_now() + WEFT_MSEC), -ETIMEDOUT);
	for (int i = 0; i < N; i++)
		TCHECK_EQ(weft_chan_release(ch[i]), 0);
	return NULL;
}

static void *wide_select_main(void *a)
{
	(void)a;
	weft_task_t t;
	TCHECK_EQ(weft_spawn(&t, wide_select, NULL, &(weft_spawn_opts_t){.stack_size = 16 * 1024}), 0);
	TCHECK_EQ(weft_join(t, NULL), 0);
	return NULL;
}

static void test_select_of_64_cases_fits_a_small_stack(void **state)
{
	(void)state;
	wt_run(wide_select_main, NULL, 1);
}

/* ------------------------------------------------------------ ids */

static void *nothing(void *a)
{
	return a;
}

static void *ids_main(void *a)
{
	(void)a;
	/* A record freed on this worker is the next one it hands out. Give it
	 * its last generation, then free it once more: it is retired. */
	weft_task_t t;
	TCHECK_EQ(weft_spawn(&t, nothing, NULL, NULL), 0);
	TCHECK_EQ(weft_join(t, NULL), 0);
	struct weft_runtime *rt = weft__rt_of_id(t);
	weft_task *rec = weft__task_at(rt, (uint32_t)t);
	uint64_t last = (t & ~WEFT_ID_GEN_MASK) | WEFT_ID_GEN_MASK;
	atomic_store(&rec->id, last);
	weft_task_t u;
	TCHECK_EQ(weft_spawn(&u, nothing, NULL, NULL), 0);
	TCHECK_EQ(u, last); /* the same slot, generation 2^24 - 1 */
	TCHECK_EQ(weft_join(u, NULL), 0);
	/* Never again: no spawn gets that slot, and the stale id resolves to
	 * nothing. */
	for (int i = 0; i < 1000; i++) {
		weft_task_t v;
		TCHECK_EQ(weft_spawn(&v, nothing, NULL, NULL), 0);
		TCHECK((uint32_t)v != (uint32_t)u);
		TCHECK_EQ(weft_join(v, NULL), 0);
	}
	TCHECK_EQ(weft_join(u, NULL), -ESRCH);
	TCHECK_EQ(weft_cancel(u), -ESRCH);
	return NULL;
}

static void test_ids_are_never_reused(void **state)
{
	(void)state;
	wt_run(ids_main, NULL, 1);
}

/* ------------------------------------------------------------ step functions */

static weft_step_t bad_step(void *s, void **r)
{
	(void)s;
	(void)r;
	return (weft_step_t)42;
}

static void test_step_returning_garbage_ends_the_task(void **state)
{
	(void)state;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 1}), 0);
	weft_task_t t;
	assert_int_equal(weft_spawn_step(&t, bad_step, NULL, &(weft_spawn_opts_t){.runtime = rt, .name = "bad"}), 0);
	void *r = NULL;
	assert_int_equal(weft_join(t, &r), 0);
	assert_int_equal((intptr_t)r, -EINVAL);
	assert_int_equal(weft_spawn_step(NULL, bad_step, NULL, &(weft_spawn_opts_t){.runtime = rt}), 0);
	assert_int_equal(weft_runtime_stop(rt), 0); /* returns: the task ended */
}

/* ------------------------------------------------------------ periodic timers */

static _Atomic int fired;

static void tick(void *a)
{
	(void)a;
	atomic_fetch_add(&fired, 1);
}

static void *huge_period_main(void *a)
{
	(void)a;
	static const weft_time_t periods[] = {INT64_MAX, WEFT_NEVER - 1, INT64_MAX / 2 + 1};
	for (size_t i = 0; i < sizeof periods / sizeof periods[0]; i++) {
		atomic_store(&fired, 0);
		weft_timer_t *t;
		TCHECK_EQ(weft_timer_create(&t, tick, NULL), 0);
		TCHECK_EQ(weft_timer_start(t, weft_now() + WEFT_MSEC, periods[i]), 0);
		while (atomic_load(&fired) == 0)
			weft_sleep(WEFT_MSEC);
		weft_sleep(20 * WEFT_MSEC);
		TCHECK_EQ(atomic_load(&fired), 1); /* the next one is beyond the end of time */
		/* It stays started, never due. The first is stopped and the
		 * second destroyed; the runtime's stop frees the first and the
		 * last (LeakSanitizer checks). */
		TCHECK_EQ(i == 0 ? weft_timer_stop(t) : i == 1 ? weft_timer_destroy(t) : 0, 0);
	}
	/* A first deadline of WEFT_NEVER: started, never due. */
	weft_timer_t *t;
	atomic_store(&fired, 0);
	TCHECK_EQ(weft_timer_create(&t, tick, NULL), 0);
	TCHECK_EQ(weft_timer_start(t, WEFT_NEVER, WEFT_MSEC), 0);
	weft_sleep(10 * WEFT_MSEC);
	TCHECK_EQ(atomic_load(&fired), 0);
	TCHECK_EQ(weft_timer_destroy(t), 0);
	return NULL;
}

static void test_periodic_timer_with_huge_period(void **state)
{
	(void)state;
	wt_run(huge_period_main, NULL, 1);
}

/* ------------------------------------------------------------ dumps to bad descriptors */

static void test_dump_and_stats_on_bad_descriptors(void **state)
{
	(void)state;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 1}), 0);
	int p[2];
	assert_int_equal(pipe(p), 0);
	close(p[0]);
	close(p[1]); /* now a closed descriptor */
	assert_int_equal(weft_task_dump(rt, -1), -EBADF);
	assert_int_equal(weft_task_dump(rt, p[1]), -EBADF);
	assert_int_equal(weft_stats_print(rt, -1), -EBADF);
	assert_int_equal(weft_stats_print(rt, p[1]), -EBADF);
	int ro = open("/dev/null", O_RDONLY);
	assert_true(ro >= 0);
	assert_int_equal(weft_task_dump(rt, ro), -EBADF);
	close(ro);
	assert_int_equal(weft_stats(rt, NULL), -EINVAL);
	assert_int_equal(weft_runtime_stop(rt), 0);
	weft_stats_t s = {0};
	assert_int_equal(weft_stats(rt, &s), -ESHUTDOWN); /* a stopped runtime */
	assert_int_equal(weft_task_dump(rt, 2), -ESHUTDOWN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_calls_racing_a_stop),
		cmocka_unit_test(test_timer_create_racing_a_stop),
		cmocka_unit_test(test_timer_calls_while_stopping),
		cmocka_unit_test(test_joined_id_is_dead_at_once),
		cmocka_unit_test(test_waker_and_ids_outlive_their_runtime),
		cmocka_unit_test(test_weft_main_inside_a_task),
		cmocka_unit_test(test_stop_from_its_own_task_is_refused),
		cmocka_unit_test(test_timers_fire_while_every_worker_is_stuck),
		cmocka_unit_test(test_tls_key_deleted_and_recreated),
		cmocka_unit_test(test_tls_key_generations_do_not_wrap),
		cmocka_unit_test(test_select_of_64_cases_fits_a_small_stack),
		cmocka_unit_test(test_ids_are_never_reused),
		cmocka_unit_test(test_step_returning_garbage_ends_the_task),
		cmocka_unit_test(test_periodic_timer_with_huge_period),
		cmocka_unit_test(test_dump_and_stats_on_bad_descriptors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
