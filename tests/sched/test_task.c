/* test_task.c - spawning, joining, detaching, names, ids, bad input. */
#include "wt_sim.h"

#include <limits.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static void *ret_arg(void *a)
{
	return a;
}

static weft_step_t step_ret(void *s, void **r)
{
	*r = s;
	return WEFT_STEP_DONE;
}

static void *join_results(void *a)
{
	(void)a;
	weft_task_t t1, t2;
	TCHECK_EQ(weft_spawn(&t1, ret_arg, (void *)42, NULL), 0);
	TCHECK_EQ(weft_spawn_step(&t2, step_ret, (void *)7, NULL), 0);
	void *r1 = NULL, *r2 = NULL;
	TCHECK_EQ(weft_join(t1, &r1), 0);
	TCHECK_EQ(weft_join(t2, &r2), 0);
	TCHECK_EQ((intptr_t)r1, 42);
	TCHECK_EQ((intptr_t)r2, 7);
	return (void *)1;
}

static void test_join_returns_result(void **state)
{
	(void)state;
	assert_ptr_equal(wt_run(join_results, NULL, 2), (void *)1);
}

static void *bad_join(void *a)
{
	(void)a;
	weft_task_t t;
	TCHECK_EQ(weft_spawn(&t, ret_arg, NULL, NULL), 0);
	TCHECK_EQ(weft_join(t, NULL), 0);
	TCHECK_EQ(weft_join(t, NULL), -ESRCH); /* already joined */
	TCHECK_EQ(weft_spawn(&t, ret_arg, NULL, NULL), 0);
	TCHECK_EQ(weft_detach(t), 0);
	int r = weft_join(t, NULL);
	TCHECK(r == -EINVAL || r == -ESRCH); /* detached (or already gone) */
	TCHECK_EQ(weft_join(weft_self(), NULL), -EINVAL);
	TCHECK_EQ(weft_join(0, NULL), -ESRCH);
	TCHECK_EQ(weft_join((weft_task_t)0xdeadbeef00000001ull, NULL), -ESRCH);
	TCHECK_EQ(weft_detach(0), -ESRCH);
	TCHECK_EQ(weft_spawn(&t, NULL, NULL, NULL), -EINVAL);
	TCHECK_EQ(weft_spawn_step(&t, NULL, NULL, NULL), -EINVAL);
	TCHECK_EQ(weft_spawn(&t, ret_arg, NULL, &(weft_spawn_opts_t){.stack_size = 100}), -EINVAL);
	TCHECK_EQ(weft_spawn(&t, ret_arg, NULL, &(weft_spawn_opts_t){.stack_size = (size_t)1 << 40}), -EINVAL);
	TCHECK_EQ(t, 0);
	return NULL;
}

static void test_bad_input_is_reported(void **state)
{
	(void)state;
	wt_run(bad_join, NULL, 2);
	/* The C library's text and name for standard codes; what a code means
	 * for a call is in that call's header. */
	assert_string_equal(weft_strerror(-ESRCH), "No such process");
	assert_string_equal(weft_err_name(-ESRCH), "ESRCH");
	assert_string_equal(weft_strerror(-EAGAIN), "Resource temporarily unavailable");
	assert_string_equal(weft_err_name(-EAGAIN), "EAGAIN");
	assert_string_equal(weft_strerror(0), "Success");
	assert_string_equal(weft_err_name(0), "OK");
	static const int odd[] = {-12345, -4096, 5, INT_MIN, INT_MAX};
	for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
		assert_string_equal(weft_strerror(odd[i]), "Unknown error");
		assert_string_equal(weft_err_name(odd[i]), "UNKNOWN");
	}
}

static void test_spawn_without_runtime_fails(void **state)
{
	(void)state;
	weft_task_t t = 1;
	assert_int_equal(weft_spawn(&t, ret_arg, NULL, NULL), -ESHUTDOWN);
	assert_int_equal(t, 0);
	assert_int_equal(weft_runtime_start(NULL, NULL), -EINVAL);
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = -1}), -EINVAL);
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.stack_size = 1}), -EINVAL);
	assert_int_equal(weft_runtime_stop(NULL), -EINVAL);
	assert_int_equal(weft_main(NULL, NULL, NULL), -EINVAL);
	assert_int_equal(weft_go(ret_arg, NULL), -ESHUTDOWN);
}

/* weft_go: a detached coroutine with the default stack; its record goes
 * back when it ends (nobody joins it). */
static weft_wg_t go_wg = WEFT_WG_INIT;
static _Atomic long go_sum;

static void *go_child(void *a)
{
	atomic_fetch_add(&go_sum, (long)(intptr_t)a);
	weft_wg_done(&go_wg);
	return NULL;
}

static void *go_main(void *a)
{
	(void)a;
	TCHECK_EQ(weft_go(NULL, NULL), -EINVAL);
	TCHECK_EQ(weft_wg_add(&go_wg, 100), 0);
	for (long i = 1; i <= 100; i++)
		TCHECK_EQ(weft_go(go_child, (void *)(intptr_t)i), 0);
	TCHECK_EQ(weft_wg_wait(&go_wg), 0);
	TCHECK_EQ(atomic_load(&go_sum), 5050);
	return NULL;
}

static void test_go_spawns_detached(void **state)
{
	(void)state;
	wt_run(go_main, NULL, 2);
}

static void test_version(void **state)
{
	(void)state;
	unsigned v = weft_version();
	assert_int_equal(v >> 16, WEFT_VERSION_MAJOR);
	assert_int_equal(v >> 8 & 0xff, WEFT_VERSION_MINOR);
	assert_int_equal(v & 0xff, WEFT_VERSION_PATCH);
	char want[32];
	snprintf(want, sizeof want, "%d.%d.%d", WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR, WEFT_VERSION_PATCH);
	assert_string_equal(weft_version_string(), want);
}

static void *names(void *a)
{
	(void)a;
	char buf[32];
	TCHECK_EQ(weft_task_name(weft_self(), buf, sizeof buf), 0);
	TCHECK(strcmp(buf, "test-main") == 0);
	TCHECK_EQ(weft_set_name("a-rather-long-task-name"), 0);
	TCHECK_EQ(weft_task_name(weft_self(), buf, sizeof buf), 0);
	TCHECK(strcmp(buf, "a-rather-long-t") == 0); /* 15 bytes kept */
	TCHECK_EQ(weft_task_name(weft_self(), buf, 4), 0);
	TCHECK(strcmp(buf, "a-r") == 0);
	TCHECK_EQ(weft_task_name(0, buf, sizeof buf), -ESRCH);
	return NULL;
}

static void test_task_names(void **state)
{
	(void)state;
	wt_run(names, NULL, 1);
	assert_int_equal(weft_set_name("x"), -EPERM);
	assert_int_equal(weft_self(), 0);
}

/* Ids are unique: spawn many, collect, check no two equal. Under TSan
 * every coroutine is a TSan fiber, created and destroyed at a few ms each:
 * 2000 there (20 rounds of record reuse) instead of 20000 keeps the test
 * at seconds instead of two minutes. */
#define NIDS WT_SIZE(20000, 2000)
static weft_task_t ids[20000];

static int cmp_id(const void *a, const void *b)
{
	weft_task_t x = *(const weft_task_t *)a, y = *(const weft_task_t *)b;
	return x < y ? -1 : x > y;
}

static void *unique_ids(void *a)
{
	(void)a;
	for (int i = 0; i < NIDS; i++) {
		TCHECK_EQ(weft_spawn(&ids[i], ret_arg, NULL, NULL), 0);
		if (i % 100 == 99) /* join some, so records get reused */
			for (int j = i - 99; j <= i; j++)
				weft_join(ids[j], NULL);
	}
	return NULL;
}

static void test_ids_are_never_reused(void **state)
{
	(void)state;
	wt_run(unique_ids, NULL, 2);
	qsort(ids, NIDS, sizeof ids[0], cmp_id);
	for (int i = 1; i < NIDS; i++)
		assert_true(ids[i] != ids[i - 1]);
}

/* Spawning and joining from plain threads outside the runtime. */
static _Atomic long foreign_sum;

static void *add_arg(void *a)
{
	atomic_fetch_add(&foreign_sum, (long)a);
	return a;
}

static void *foreign_thread(void *a)
{
	weft_runtime_t *rt = a;
	for (long i = 1; i <= 1000; i++) {
		weft_task_t t;
		if (weft_spawn(&t, add_arg, (void *)i, &(weft_spawn_opts_t){.runtime = rt}) != 0)
			return (void *)1;
		if (i % 2 == 0) {
			void *r;
			if (weft_join(t, &r) != 0 || (long)r != i)
				return (void *)2;
		} else {
			weft_detach(t);
		}
	}
	return NULL;
}

static void test_spawn_from_foreign_threads(void **state)
{
	(void)state;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, foreign_thread, rt);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(th[i], &r);
		assert_null(r);
	}
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&foreign_sum), 4 * 1000 * 1001 / 2);
}

/* Free records travel between workers' caches, chains on the runtime and
 * single records for plain threads: churn them from workers, then hold many
 * tasks live at once, spawned from two workers and two plain threads, and
 * check that no record (slot) was handed out twice. */
#define NLIVE WT_SIZE3(1500, 1500, 500)
static weft_chan_t *gate;
static weft_task_t live_ids[4][NLIVE];

static weft_step_t churn_step(void *s, void **r)
{
	(void)s;
	(void)r;
	return WEFT_STEP_DONE;
}

static void *wait_gate(void *a)
{
	int x;
	TCHECK_EQ(weft_chan_recv(gate, &x), -EPIPE); /* closed: all go at once */
	return a;
}

static void *spawn_live(void *a)
{
	weft_task_t *out = a;
	for (int i = 0; i < NLIVE; i++)
		if (weft_spawn(&out[i], wait_gate, NULL, &(weft_spawn_opts_t){.stack_size = 16384}) != 0)
			return (void *)1;
	return NULL;
}

static void *churn_main(void *a)
{
	(void)a;
	for (int round = 0; round < 3; round++) {
		weft_group_t *g;
		TCHECK_EQ(weft_group_create(&g, false), 0);
		for (int i = 0; i < 5000; i++)
			TCHECK_EQ(weft_spawn_step(NULL, churn_step, NULL, &(weft_spawn_opts_t){.group = g}), 0);
		TCHECK_EQ(weft_group_wait(g), 0);
		TCHECK_EQ(weft_group_destroy(g), 0);
	}
	return NULL;
}

static int cmp_slot(const void *a, const void *b)
{
	uint32_t x = (uint32_t) * (const weft_task_t *)a, y = (uint32_t) * (const weft_task_t *)b;
	return x < y ? -1 : x > y;
}

static void test_free_records_are_handed_out_once(void **state)
{
	(void)state;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	weft_spawn_opts_t o = {.runtime = rt};
	weft_task_t t;
	assert_int_equal(weft_spawn(&t, churn_main, NULL, &o), 0);
	assert_int_equal(weft_join(t, NULL), 0);
	assert_int_equal(weft_chan_create(&gate, sizeof(int), 0), 0);
	weft_task_t sp[2];
	pthread_t th[2];
	for (int i = 0; i < 2; i++) {
		assert_int_equal(weft_spawn(&sp[i], spawn_live, live_ids[i], &o), 0);
		pthread_create(&th[i], NULL, spawn_live, live_ids[2 + i]);
	}
	for (int i = 0; i < 2; i++) {
		void *r = (void *)2;
		assert_int_equal(weft_join(sp[i], &r), 0);
		assert_null(r);
		pthread_join(th[i], &r);
		assert_null(r);
	}
	/* All 4 * NLIVE tasks are parked on the gate now: distinct records. */
	static weft_task_t all[4 * NLIVE];
	memcpy(all, live_ids, sizeof all);
	qsort(all, 4 * NLIVE, sizeof all[0], cmp_slot);
	for (int i = 1; i < 4 * NLIVE; i++)
		assert_true((uint32_t)all[i] != (uint32_t)all[i - 1]);
	assert_int_equal(weft_chan_close(gate), 0);
	for (int k = 0; k < 4; k++)
		for (int i = 0; i < NLIVE; i++)
			assert_int_equal(weft_join(live_ids[k][i], NULL), 0);
	weft_chan_release(gate);
	assert_int_equal(weft_runtime_stop(rt), 0);
}

/* The million-task stress: every task runs exactly once. */
static _Atomic long ran;
static long nstress;

static void *count_one(void *a)
{
	(void)a;
	atomic_fetch_add_explicit(&ran, 1, memory_order_relaxed);
	return NULL;
}

static weft_step_t count_step(void *s, void **r)
{
	(void)r;
	count_one(s);
	return WEFT_STEP_DONE;
}

static void *spawn_many(void *a)
{
	bool step = a != NULL;
	weft_group_t *g;
	TCHECK_EQ(weft_group_create(&g, false), 0);
	for (long i = 0; i < nstress; i++) {
		int e = step ? weft_spawn_step(NULL, count_step, NULL, &(weft_spawn_opts_t){.group = g})
			     : weft_spawn(NULL, count_one, NULL, &(weft_spawn_opts_t){.group = g, .stack_size = 16384});
		TCHECK_EQ(e, 0);
	}
	TCHECK_EQ(weft_group_wait(g), 0);
	TCHECK_EQ(weft_group_destroy(g), 0);
	return NULL;
}

static void test_million_tasks_spawn_and_complete(void **state)
{
	(void)state;
	nstress = WT_SIZE(1000000, 50000);
	atomic_store(&ran, 0);
	wt_run(spawn_many, (void *)1, 0);
	assert_int_equal(atomic_load(&ran), nstress);
	nstress = WT_SIZE3(300000, 5000, 1500);
	atomic_store(&ran, 0);
	wt_run(spawn_many, NULL, 0);
	assert_int_equal(atomic_load(&ran), nstress);
}

/* errno's value travels with the coroutine across a blocking call. The
 * address must be looked up afresh after the call (see weft/sched.h: glibc
 * lets the compiler cache &errno, which is per thread). */
__attribute__((noinline, noipa)) static int *errno_now(void)
{
	return &errno;
}

static void *errno_keeper(void *a)
{
	*errno_now() = (int)(intptr_t)a;
	for (int i = 0; i < 50; i++) {
		weft_yield();
		weft_sleep(WEFT_MSEC / 10);
		TCHECK_EQ(*errno_now(), (intptr_t)a);
		*errno_now() = (int)(intptr_t)a;
	}
	return NULL;
}

static void *errno_main(void *a)
{
	(void)a;
	weft_task_t t[8];
	for (long i = 0; i < 8; i++)
		weft_spawn(&t[i], errno_keeper, (void *)(i + 100), NULL);
	for (int i = 0; i < 8; i++)
		weft_join(t[i], NULL);
	return NULL;
}

static void test_errno_is_per_task(void **state)
{
	(void)state;
	wt_run(errno_main, NULL, 2);
}

/* Task-local storage: per-task values, destructors at exit. */
static weft_tls_key_t key;
static _Atomic int dtor_calls;

static void dtor(void *v)
{
	(void)v;
	atomic_fetch_add(&dtor_calls, 1);
}

static void *tls_user(void *a)
{
	TCHECK(weft_tls_get(key) == NULL);
	TCHECK_EQ(weft_tls_set(key, a), 0);
	weft_yield();
	weft_sleep(WEFT_MSEC);
	TCHECK(weft_tls_get(key) == a);
	return NULL;
}

static void *tls_main(void *a)
{
	(void)a;
	weft_task_t t[16];
	for (long i = 0; i < 16; i++)
		weft_spawn(&t[i], tls_user, (void *)(i + 1), NULL);
	for (int i = 0; i < 16; i++)
		weft_join(t[i], NULL);
	TCHECK_EQ(weft_tls_set(99, NULL), -EINVAL);
	return NULL;
}

static void test_task_local_storage(void **state)
{
	(void)state;
	assert_int_equal(weft_tls_key_create(&key, dtor), 0);
	assert_int_equal(weft_tls_set(key, NULL), -EPERM);
	wt_run(tls_main, NULL, 2);
	assert_int_equal(atomic_load(&dtor_calls), 16);
	assert_int_equal(weft_tls_key_delete(key), 0);
	assert_int_equal(weft_tls_key_delete(key), -EINVAL);
}

/* Records live in slabs of 4096 with each record's extension pointer and
 * the runtime in the slab's tail (found by masking the record's address):
 * names set on tasks in several slabs must come back from the right one. */
#define NSLABBED (3 * 4096 + 5)
static weft_task_t slabbed[NSLABBED];

static void *names_across_slabs(void *a)
{
	(void)a;
	char want[16], got[16];
	for (int i = 0; i < NSLABBED; i++) { /* joinable: each record stays taken until joined */
		snprintf(want, sizeof want, "s%d", i);
		weft_spawn_opts_t o = {.name = want};
		TCHECK_EQ(weft_spawn_step(&slabbed[i], step_ret, (void *)(intptr_t)i, &o), 0);
	}
	for (int i = 0; i < NSLABBED; i++) {
		snprintf(want, sizeof want, "s%d", i);
		TCHECK_EQ(weft_task_name(slabbed[i], got, sizeof got), 0);
		TCHECK(strcmp(got, want) == 0);
	}
	for (int i = 0; i < NSLABBED; i++) {
		void *r = NULL;
		TCHECK_EQ(weft_join(slabbed[i], &r), 0);
		TCHECK_EQ((intptr_t)r, i);
		TCHECK_EQ(weft_task_name(slabbed[i], got, sizeof got), -ESRCH);
	}
	return NULL;
}

static void test_names_across_slabs(void **state)
{
	(void)state;
	wt_run(names_across_slabs, NULL, 2);
}

static void *exit_early(void *a)
{
	(void)a;
	weft_exit((void *)5);
	return (void *)6;
}

static void *exit_main(void *a)
{
	(void)a;
	weft_task_t t;
	weft_spawn(&t, exit_early, NULL, NULL);
	void *r;
	TCHECK_EQ(weft_join(t, &r), 0);
	TCHECK_EQ((intptr_t)r, 5);
	return NULL;
}

static void test_exit_ends_the_task(void **state)
{
	(void)state;
	wt_run(exit_main, NULL, 1);
	assert_int_equal(weft_exit(NULL), -EPERM);
}

/* A stackless task may free its state in the step that returns DONE
 * (weft/sched.h): the runtime never reads it afterwards. Under ASan a read
 * of the freed state would be a use-after-free. */
typedef struct owned_st {
	int yields;
	intptr_t result;
} owned_st;

static _Atomic int owned_done;

static weft_step_t owned_step(void *a, void **r)
{
	owned_st *st = a;
	if (st->yields-- > 0)
		return WEFT_STEP_YIELD;
	*r = (void *)st->result;
	memset(st, 0xa5, sizeof *st);
	free(st);
	atomic_fetch_add(&owned_done, 1);
	return WEFT_STEP_DONE;
}

static void *owned_main(void *a)
{
	(void)a;
	atomic_store(&owned_done, 0);
	enum { N = 2000, JOINED = 100 };
	weft_task_t joined[JOINED];
	for (int i = 0; i < N; i++) {
		owned_st *st = malloc(sizeof *st);
		TCHECK(st != NULL);
		*st = (owned_st){.yields = i % 5, .result = i};
		if (i < JOINED)
			TCHECK_EQ(weft_spawn_step(&joined[i], owned_step, st, NULL), 0);
		else
			TCHECK_EQ(weft_spawn_step(NULL, owned_step, st, &(weft_spawn_opts_t){.detached = true}), 0);
	}
	for (int i = 0; i < JOINED; i++) {
		void *r = NULL;
		TCHECK_EQ(weft_join(joined[i], &r), 0);
		TCHECK_EQ((intptr_t)r, i);
	}
	while (atomic_load(&owned_done) < N)
		weft_yield();
	return NULL;
}

static void *owned_sim_main(void *a)
{
	return owned_main(a);
}

static void test_step_may_free_its_state_when_done(void **state)
{
	(void)state;
	wt_run(owned_main, NULL, 2);
	assert_int_equal(atomic_load(&owned_done), 2000);
}

/* ------------------------------------------------------------ joins racing */

/* Targets (coroutines and stackless tasks that yield a few times) each
 * have joiners racing for them: a coroutine looping on weft_join_until
 * with short deadlines, a stackless task looping on weft_join_step with
 * short deadlines, and for every other target a coroutine in weft_join; a
 * third of the joiners are cancelled. A joiner holds the target's handle
 * while it waits (another join gets -ESRCH), and a deadline or a cancel
 * gives it back, so each result is delivered exactly once: to one joiner,
 * or else to the main task's last join. */
typedef struct jr_target {
	weft_task_t id;
	intptr_t want;
	int yields;
	_Atomic int got; /* results delivered */
} jr_target;

static long jr_n;

static weft_time_t jr_deadline(uint64_t *seed)
{
	*seed = wt_lcg(*seed);
	return weft_deadline_in((weft_time_t)((*seed >> 33) % 20000));
}

static void jr_joined(jr_target *j, int e, void *r)
{
	if (e == 0) {
		TCHECK_EQ((intptr_t)r, j->want);
		atomic_fetch_add(&j->got, 1);
	} else {
		TCHECK(e == -ESRCH || e == -ECANCELED); /* another joiner has it, or we were cancelled */
	}
}

static void *jr_coro_target(void *a)
{
	jr_target *j = a;
	for (int k = 0; k < j->yields; k++)
		weft_yield();
	return (void *)j->want;
}

static weft_step_t jr_step_target(void *a, void **res)
{
	jr_target *j = a;
	if (j->yields-- > 0)
		return WEFT_STEP_YIELD;
	*res = (void *)j->want;
	return WEFT_STEP_DONE;
}

static void *jr_until_joiner(void *a)
{
	jr_target *j = a;
	uint64_t seed = (uint64_t)j->want;
	for (;;) {
		void *r = NULL;
		int e = weft_join_until(j->id, &r, jr_deadline(&seed));
		if (e != -ETIMEDOUT) {
			jr_joined(j, e, r);
			return NULL;
		}
		weft_yield(); /* a past deadline polls: let the target run */
	}
}

static void *jr_plain_joiner(void *a)
{
	jr_target *j = a;
	void *r = NULL;
	int e = weft_join(j->id, &r);
	jr_joined(j, e, r);
	return NULL;
}

typedef struct {
	weft_op_t op;
	jr_target *j;
	uint64_t seed;
	weft_time_t dl;
	bool registered;
	void *r;
} jr_stepper;

static weft_step_t jr_step_joiner(void *a, void **res)
{
	jr_stepper *s = a;
	*res = NULL;
	if (!s->registered)
		s->dl = jr_deadline(&s->seed);
	int e = weft_join_step(s->j->id, &s->r, s->dl, &s->op);
	s->registered = e == -EINPROGRESS;
	if (e == -EINPROGRESS)
		return WEFT_STEP_PARKED;
	if (e == -ETIMEDOUT)
		return WEFT_STEP_YIELD; /* again, after the others */
	jr_joined(s->j, e, s->r);
	return WEFT_STEP_DONE;
}

static void *join_race_main(void *a)
{
	(void)a;
	jr_target *tg = calloc((size_t)jr_n, sizeof *tg);
	jr_stepper *st = calloc((size_t)jr_n, sizeof *st);
	weft_task_t *jn = calloc((size_t)jr_n * 3, sizeof *jn);
	size_t njn = 0;
	for (long i = 0; i < jr_n; i++) {
		tg[i].want = 1000 + i;
		tg[i].yields = (int)(i % 4);
		if (i % 2)
			TCHECK_EQ(weft_spawn_step(&tg[i].id, jr_step_target, &tg[i], NULL), 0);
		else
			TCHECK_EQ(weft_spawn(&tg[i].id, jr_coro_target, &tg[i], NULL), 0);
	}
	for (long i = 0; i < jr_n; i++) {
		jn[njn++] = wt_spawn(jr_until_joiner, &tg[i]);
		st[i] = (jr_stepper){.j = &tg[i], .seed = (uint64_t)(7 * i + 3)};
		TCHECK_EQ(weft_spawn_step(&jn[njn++], jr_step_joiner, &st[i], NULL), 0);
		if (i % 2 == 0)
			jn[njn++] = wt_spawn(jr_plain_joiner, &tg[i]);
	}
	weft_yield();
	for (size_t k = 0; k < njn; k += 3) {
		int e = weft_cancel(jn[k]);
		TCHECK(e == 0 || e == -ESRCH); /* -ESRCH: it has finished */
	}
	for (size_t k = 0; k < njn; k++)
		wt_join(jn[k]);
	for (long i = 0; i < jr_n; i++) {
		void *r = NULL;
		int e = weft_join(tg[i].id, &r);
		if (e == 0)
			jr_joined(&tg[i], e, r);
		else
			TCHECK_EQ(e, -ESRCH);	       /* a joiner had it */
		TCHECK_EQ(atomic_load(&tg[i].got), 1); /* delivered exactly once */
	}
	free(tg);
	free(st);
	free(jn);
	return NULL;
}

static void test_joins_race_deadlines_and_cancels(void **state)
{
	(void)state;
	jr_n = WT_SIZE3(400, 100, 40);
	wt_run(join_race_main, NULL, 2);
}

/* ------------------------------------------------------------ under the simulation */

/* The twins: the same bodies, one task at a time in an order drawn from
 * each seed (tests/wt_sim.h). */
static void test_joins_race_deadlines_and_cancels_sim(void **state)
{
	(void)state;
	jr_n = 12;
	wt_sim_sweep("sched/joins_race_deadlines_and_cancels", join_race_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *go_sim_main(void *a)
{
	weft_wg_init(&go_wg);
	atomic_store(&go_sum, 0);
	return go_main(a);
}

static void test_go_spawns_detached_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sched/go_spawns_detached", go_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void test_step_may_free_its_state_when_done_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sched/step_may_free_its_state_when_done", owned_sim_main, NULL, NULL, WT_SIZE3(30, 10, 1));
}

/* ---------------------------------------------------- local word, end hook */

/* A task's local word is what it was spawned with; the end hook runs once
 * with it and the result, whichever way the task ends - it returned,
 * called weft_exit, or its step returned DONE - and before a joiner
 * returns. */
static _Atomic int hook_calls;
static void *hook_result[3];

static void end_hook(void *local, void *result)
{
	int k = (int)(intptr_t)local;
	TCHECK(weft_self() == 0); /* outside any task */
	hook_result[k] = result;
	atomic_fetch_add(&hook_calls, 1);
}

static void *local_returns(void *a)
{
	TCHECK_EQ((intptr_t)weft_task_local(end_hook), 0);
	return a;
}

static void *local_exits(void *a)
{
	TCHECK_EQ((intptr_t)weft_task_local(end_hook), 1);
	weft_exit(a);
	return NULL;
}

static weft_step_t local_step(void *a, void **r)
{
	TCHECK_EQ((intptr_t)weft_task_local(end_hook), 2);
	*r = a;
	return WEFT_STEP_DONE;
}

static void *local_main(void *a)
{
	(void)a;
	TCHECK(weft_task_local(end_hook) == NULL); /* spawned without one */
	TCHECK(weft_task_local(NULL) == NULL);
	weft_task_t t[3];
	weft_spawn_opts_t o = {.on_end = end_hook};
	o.local = (void *)0;
	TCHECK_EQ(weft_spawn(&t[0], local_returns, (void *)10, &o), 0);
	o.local = (void *)1;
	TCHECK_EQ(weft_spawn(&t[1], local_exits, (void *)11, &o), 0);
	o.local = (void *)2;
	TCHECK_EQ(weft_spawn_step(&t[2], local_step, (void *)12, &o), 0);
	for (int i = 0; i < 3; i++) {
		void *r;
		TCHECK_EQ(weft_join(t[i], &r), 0);
		TCHECK_EQ((intptr_t)r, 10 + i);
		TCHECK_EQ((intptr_t)hook_result[i], 10 + i); /* the hook ran before the join returned */
	}
	TCHECK_EQ(atomic_load(&hook_calls), 3);
	return NULL;
}

static void test_local_and_end_hook(void **state)
{
	(void)state;
	atomic_store(&hook_calls, 0);
	wt_run(local_main, NULL, 2);
	assert_null(weft_task_local(end_hook)); /* a plain thread */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_join_returns_result),
		cmocka_unit_test(test_bad_input_is_reported),
		cmocka_unit_test(test_spawn_without_runtime_fails),
		cmocka_unit_test(test_go_spawns_detached),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_task_names),
		cmocka_unit_test(test_ids_are_never_reused),
		cmocka_unit_test(test_spawn_from_foreign_threads),
		cmocka_unit_test(test_free_records_are_handed_out_once),
		cmocka_unit_test(test_million_tasks_spawn_and_complete),
		cmocka_unit_test(test_errno_is_per_task),
		cmocka_unit_test(test_task_local_storage),
		cmocka_unit_test(test_exit_ends_the_task),
		cmocka_unit_test(test_names_across_slabs),
		cmocka_unit_test(test_step_may_free_its_state_when_done),
		cmocka_unit_test(test_joins_race_deadlines_and_cancels),
		cmocka_unit_test(test_joins_race_deadlines_and_cancels_sim),
		cmocka_unit_test(test_go_spawns_detached_sim),
		cmocka_unit_test(test_step_may_free_its_state_when_done_sim),
		cmocka_unit_test(test_local_and_end_hook),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
