/* test_args.c - every call of weft/exec.h and weft/executors.h fed NULLs,
 * handles of no task, of another executor and of a destroyed one, handles
 * used after their wait, bad option structs and out-of-range values, on
 * every backend and from a plain thread, a coroutine and a stackless task:
 * each returns the negative errno its header documents, and nothing
 * crashes, hangs or asserts. */
#include "wt_exec.h"
#include "wt_kinds.h"

#include <pthread.h>

static void *quick(void *a)
{
	return a;
}

static weft_step_t step_done(void *a, void **r)
{
	*r = a;
	return WEFT_STEP_DONE;
}

static void *gated(void *a)
{
	return (void *)(intptr_t)weft_sem_acquire_until(a, wt_hang_deadline());
}

struct args {
	weft_exec_t *ex, *other, *dead;
	weft_exec_task_t dead_handle; /* a handle of dead, made while it lived */
	weft_sem_t gate;	      /* outlives the tasks a stackless caller lets go */
};

/* Every call on one handle that must be refused with err. */
static void refused_handle(weft_exec_t *ex, weft_exec_task_t h, int err)
{
	weft_op_t op = WEFT_OP_INIT;
	void *r = (void *)1;
	TCHECK_EQ(weft_exec_wait(ex, h, &r), err);
	TCHECK_EQ(weft_exec_wait_until(ex, h, &r, 0), err);
	TCHECK_EQ(weft_exec_wait_step(ex, h, &r, 0, &op), err);
	TCHECK_EQ(weft_exec_detach(ex, h), err);
	TCHECK_EQ(weft_exec_cancel(ex, h), err);
	TCHECK_EQ((intptr_t)r, 1);
}

/* Every spawn on ex refused with err (spawn_step: step_err; 1: not
 * tried), *out NONE afterwards. */
static void refused_spawns(weft_exec_t *ex, weft_fn_t fn, const weft_exec_spawn_opts_t *o, int err, int step_err)
{
	weft_exec_task_t h = {7, 7};
	TCHECK_EQ(weft_exec_spawn(ex, &h, fn, NULL, o), err);
	TCHECK(h.id == 0 && h.exec == 0);
	h = (weft_exec_task_t){7, 7};
	TCHECK_EQ(weft_exec_spawn_blocking(ex, &h, fn, NULL, o), err);
	TCHECK(h.id == 0 && h.exec == 0);
	h = (weft_exec_task_t){7, 7};
	TCHECK_EQ(weft_exec_spawn_at(ex, &h, 0, fn, NULL, o), err);
	TCHECK(h.id == 0 && h.exec == 0);
	h = (weft_exec_task_t){7, 7};
	if (step_err != 1) {
		TCHECK_EQ(weft_exec_spawn_step(ex, &h, fn ? step_done : NULL, NULL, o), step_err);
		TCHECK(h.id == 0 && h.exec == 0);
	}
	TCHECK_EQ(weft_exec_spawn(ex, NULL, fn, NULL, o), err); /* detached */
}

static void body(enum wt_kind kind, void *arg)
{
	struct args *a = arg;
	weft_exec_t *ex = a->ex;

	/* NULL executor. */
	refused_handle(NULL, (weft_exec_task_t){1, 1}, -EINVAL);
	refused_spawns(NULL, quick, NULL, -EINVAL, -EINVAL);
	TCHECK_EQ(weft_exec_now(NULL), -EINVAL);
	TCHECK_EQ(weft_exec_sleep(NULL, 0), -EINVAL);
	TCHECK_EQ(weft_exec_sleep_until(NULL, 0), -EINVAL);
	TCHECK_EQ(weft_exec_caps(NULL), -EINVAL);
	TCHECK(strcmp(weft_exec_name(NULL), "invalid") == 0);
	TCHECK_EQ(weft_exec_destroy(NULL), -EINVAL);
	TCHECK(weft_exec_runtime(NULL) == NULL);
	TCHECK(weft_exec_ctx(NULL, "weft") == NULL);

	/* NULL function, bad option structs. */
	refused_spawns(ex, NULL, NULL, -EINVAL, -EINVAL);
	refused_spawns(ex, quick, &(weft_exec_spawn_opts_t){.size = 1}, -EINVAL, -EINVAL);
	struct {
		weft_exec_spawn_opts_t o;
		uint64_t later;
	} big = {{.size = sizeof big}, 1};
	refused_spawns(ex, quick, &big.o, -E2BIG, -E2BIG);
	big.later = 0; /* a newer header's struct with its new field zero: accepted */
	weft_exec_task_t h;
	void *r = NULL;
	TCHECK_EQ(weft_exec_spawn(ex, &h, quick, (void *)3, &big.o), 0);
	TCHECK_EQ(weft_exec_wait_until(ex, h, &r, kind == WT_STEP ? 0 : wt_hang_deadline()) == 0 || kind == WT_STEP, 1);
	if (kind == WT_STEP)
		weft_exec_detach(ex, h); /* it may not have ended: let it go */
	if (weft_exec_caps(ex) &
	    WEFT_EXEC_CAP_PARK) /* coroutine backends check stack sizes (not for stackless tasks) */
		refused_spawns(ex, quick, &(weft_exec_spawn_opts_t){.stack_size = (size_t)1 << 40}, -EINVAL, 1);

	/* Handles: none, another executor's, a made-up id, a destroyed
	 * executor's. */
	refused_handle(ex, WEFT_EXEC_TASK_NONE, -EINVAL);
	weft_exec_task_t foreign;
	TCHECK_EQ(weft_exec_spawn(a->other, &foreign, quick, NULL, NULL), 0);
	refused_handle(ex, foreign, -EINVAL);
	if (kind == WT_STEP)
		TCHECK_EQ(weft_exec_detach(a->other, foreign), 0);
	else
		TCHECK_EQ(weft_exec_wait_until(a->other, foreign, NULL, wt_hang_deadline()), 0);
	TCHECK_EQ(weft_exec_spawn(ex, &h, quick, NULL, NULL), 0);
	weft_exec_task_t made_up = {h.id ^ ((uint64_t)1 << 31), h.exec};
	refused_handle(ex, made_up, -ESRCH);
	refused_handle(ex, (weft_exec_task_t){UINT64_MAX, h.exec}, -ESRCH);
	if (kind == WT_STEP) {
		TCHECK_EQ(weft_exec_detach(ex, h), 0);
	} else {
		TCHECK_EQ(weft_exec_wait_until(ex, h, NULL, wt_hang_deadline()), 0);
		refused_handle(ex, h, -ESRCH); /* used after its wait */
	}
	refused_handle(a->dead, a->dead_handle, -EINVAL);
	refused_spawns(a->dead, quick, NULL, -EINVAL, -EINVAL);
	TCHECK_EQ(weft_exec_now(a->dead), -EINVAL);
	TCHECK_EQ(weft_exec_sleep(a->dead, 0), -EINVAL);
	TCHECK_EQ(weft_exec_caps(a->dead), -EINVAL);
	TCHECK(strcmp(weft_exec_name(a->dead), "invalid") == 0);
	TCHECK_EQ(weft_exec_destroy(a->dead), -EINVAL);

	/* A live task: waits that time out, a NULL op, deadlines out of range. */
	weft_sem_t *gate = &a->gate;
	TCHECK_EQ(weft_exec_spawn(ex, &h, gated, gate, NULL), 0);
	r = (void *)1;
	TCHECK_EQ(weft_exec_wait_until(ex, h, &r, 0), -ETIMEDOUT);
	TCHECK_EQ(weft_exec_wait_until(ex, h, &r, INT64_MIN), -ETIMEDOUT);
	TCHECK_EQ(weft_exec_wait_step(ex, h, &r, 0, NULL), -EINVAL);
	TCHECK_EQ(weft_exec_wait(a->other, h, &r), -EINVAL); /* ex's handle, another executor */
	TCHECK_EQ((intptr_t)r, 1);
	if (kind == WT_STEP)
		TCHECK_EQ(weft_exec_wait(ex, h, &r), -EPERM);
	TCHECK_EQ(weft_sem_release(gate, 1), 0);
	if (kind == WT_STEP)
		TCHECK_EQ(weft_exec_detach(ex, h), 0);
	else
		TCHECK_EQ(weft_exec_wait_until(ex, h, NULL, wt_hang_deadline()), 0);

	/* Time out of range: past deadlines return at once, a sleep of a
	 * negative length is none. */
	TCHECK_EQ(weft_exec_sleep_until(ex, INT64_MIN), 0);
	TCHECK_EQ(weft_exec_sleep(ex, INT64_MIN), 0);
	TCHECK(weft_exec_now(ex) >= 0);
	if (kind == WT_STEP)
		TCHECK_EQ(weft_exec_sleep(ex, WEFT_SEC), -EPERM);
	TCHECK_EQ(weft_exec_spawn_at(ex, &h, INT64_MIN, quick, (void *)9, NULL), 0);
	if (kind == WT_STEP) {
		TCHECK_EQ(weft_exec_detach(ex, h), 0);
	} else {
		TCHECK_EQ(weft_exec_wait_until(ex, h, &r, wt_hang_deadline()), 0);
		TCHECK_EQ((intptr_t)r, 9);
	}
}

static void run_on(const wt_backend_t *b)
{
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	struct args a = {.gate = WEFT_SEM_INIT(0)};
	int e = b->make(&a.ex, rt);
	if (e == -ENOTSUP) {
		fprintf(stderr, "  %s: skipped (weft was built without it: -DWEFT_LIBUV=OFF)\n", b->name);
		assert_int_equal(weft_runtime_stop(rt), 0);
		return;
	}
	assert_int_equal(e, 0);
	/* A thread owns one sim: the sim's other executors are weft
	 * executors over its runtime, and its callers its own tasks. */
	weft_runtime_t *home = wt_exec_home(a.ex, rt);
	assert_int_equal(home == rt ? b->make(&a.other, rt) : weft_exec_create_runtime(&a.other, home), 0);
	assert_int_equal(home == rt ? b->make(&a.dead, rt) : weft_exec_create_runtime(&a.dead, home), 0);
	assert_int_equal(weft_exec_spawn(a.dead, &a.dead_handle, quick, NULL, NULL), 0);
	assert_int_equal(weft_exec_wait(a.dead, a.dead_handle, NULL), 0);
	assert_int_equal(weft_exec_destroy(a.dead), 0);
	int before = atomic_load(&tcheck_failures);
	wt_kinds_in(home, body, &a);
	if (atomic_load(&tcheck_failures) != before)
		fprintf(stderr, "  ^ on %s\n", b->name);
	assert_int_equal(weft_exec_destroy(a.other), 0);
	assert_int_equal(weft_exec_destroy(a.ex), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
}

static void test_bad_input_on_every_backend(void **state)
{
	(void)state;
	atomic_store(&tcheck_failures, 0);
	for (size_t i = 0; i < WT_NALL; i++)
		run_on(wt_backend(i));
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

static int x_spawn(void *c, uint64_t *id, weft_fn_t fn, void *arg, const weft_exec_spawn_opts_t *o)
{
	(void)c, (void)id, (void)fn, (void)arg, (void)o;
	return -ENOSYS;
}
static int x_wait(void *c, uint64_t id, void **r, weft_time_t d, weft_op_t *op)
{
	(void)c, (void)id, (void)r, (void)d, (void)op;
	return -ENOSYS;
}
static int x_detach(void *c, uint64_t id)
{
	(void)c, (void)id;
	return -ENOSYS;
}
static int x_destroy(void *c)
{
	(void)c;
	return 0;
}

/* weft_exec_create refuses incomplete ops tables and bad sizes; a spawn
 * that fails in the backend leaves *out NONE. */
static void test_create_refuses_bad_ops(void **state)
{
	(void)state;
	const weft_exec_ops_t good = {
		.name = "x", .spawn = x_spawn, .wait = x_wait, .detach = x_detach, .destroy = x_destroy};
	weft_exec_t *ex = (weft_exec_t *)1;
	assert_int_equal(weft_exec_create(NULL, &good, NULL), -EINVAL);
	assert_int_equal(weft_exec_create(&ex, NULL, NULL), -EINVAL);
	assert_null(ex);
	weft_exec_ops_t o = good;
	o.name = NULL;
	assert_int_equal(weft_exec_create(&ex, &o, NULL), -EINVAL);
	o = good;
	o.spawn = NULL;
	assert_int_equal(weft_exec_create(&ex, &o, NULL), -EINVAL);
	o = good;
	o.wait = NULL;
	assert_int_equal(weft_exec_create(&ex, &o, NULL), -EINVAL);
	o = good;
	o.detach = NULL;
	assert_int_equal(weft_exec_create(&ex, &o, NULL), -EINVAL);
	o = good;
	o.destroy = NULL;
	assert_int_equal(weft_exec_create(&ex, &o, NULL), -EINVAL);
	o = good;
	o.size = 8;
	assert_int_equal(weft_exec_create(&ex, &o, NULL), -EINVAL);
	struct {
		weft_exec_ops_t o;
		void *later;
	} big = {good, (void *)1};
	big.o.size = sizeof big;
	assert_int_equal(weft_exec_create(&ex, &big.o, NULL), -E2BIG);
	assert_null(ex);
	assert_int_equal(weft_exec_create(&ex, &good, NULL), 0);
	weft_exec_task_t h = {5, 5};
	assert_int_equal(weft_exec_spawn(ex, &h, quick, NULL, NULL), -ENOSYS);
	assert_true(h.id == 0 && h.exec == 0);
	assert_null(weft_exec_runtime(ex)); /* not a weft executor */
	assert_int_equal(weft_exec_destroy(ex), 0);
}

static void test_create_runtime_refuses_a_stopped_runtime(void **state)
{
	(void)state;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, NULL), 0);
	weft_exec_t *ex;
	assert_int_equal(weft_exec_create_runtime(NULL, rt), -EINVAL);
	assert_int_equal(weft_exec_create_runtime(&ex, rt), 0);
	assert_ptr_equal(weft_exec_runtime(ex), rt);
	assert_string_equal(weft_exec_name(ex), "weft");
	assert_int_equal(weft_runtime_stop(rt), 0);
	/* Its runtime stopped under it: spawns fail, nothing crashes. */
	weft_exec_task_t h;
	assert_int_equal(weft_exec_spawn(ex, &h, quick, NULL, NULL), -ESHUTDOWN);
	assert_int_equal(weft_exec_destroy(ex), 0);
	ex = (weft_exec_t *)1;
	assert_int_equal(weft_exec_create_runtime(&ex, rt), -ESHUTDOWN);
	assert_null(ex);
}

/* ------------------------------------------------------------ the sim */

enum { SIM_CAPS = WEFT_EXEC_CAP_STEP | WEFT_EXEC_CAP_PARK | WEFT_EXEC_CAP_INTERRUPT | WEFT_EXEC_CAP_DETERMINISTIC };

/* Every call a thread that is not the owner may make on a sim executor. */
struct foreign {
	weft_exec_t *ex;
	weft_exec_task_t h;
	int spawn, wait, detach, cancel, sleep, destroy, run, info;
	weft_time_t now;
};

static void *foreign_calls(void *a)
{
	struct foreign *f = a;
	weft_exec_task_t h;
	f->spawn = weft_exec_spawn(f->ex, &h, quick, NULL, NULL);
	f->wait = weft_exec_wait(f->ex, f->h, NULL);
	f->detach = weft_exec_detach(f->ex, f->h);
	f->cancel = weft_exec_cancel(f->ex, f->h);
	f->now = weft_exec_now(f->ex);
	f->sleep = weft_exec_sleep(f->ex, WEFT_MSEC);
	f->destroy = weft_exec_destroy(f->ex);
	f->run = weft_exec_sim_run(f->ex, WEFT_NEVER);
	weft_sim_info_t i = {.size = sizeof i};
	f->info = weft_exec_sim_info(f->ex, &i);
	return NULL;
}

/* What a task of the sim may not do with it. */
static void *sim_inside(void *a)
{
	weft_exec_t *ex = a, *other = (weft_exec_t *)1;
	TCHECK_EQ(weft_exec_create_sim(&other, NULL), -EPERM);
	TCHECK(other == NULL);
	TCHECK_EQ(weft_exec_destroy(ex), -EDEADLK);
	TCHECK_EQ(weft_exec_sim_run(ex, WEFT_NEVER), -EPERM);
	weft_sim_info_t i = {.size = sizeof i};
	TCHECK_EQ(weft_exec_sim_info(ex, &i), 0);
	TCHECK_EQ(weft_exec_now(ex), weft_now()); /* the virtual clock */
	return NULL;
}

static void test_sim_options_and_owner_rule(void **state)
{
	(void)state;
	atomic_store(&tcheck_failures, 0);
	weft_exec_t *ex = (weft_exec_t *)1;
	assert_int_equal(weft_exec_create_sim(NULL, NULL), -EINVAL);
	assert_int_equal(weft_exec_create_sim(&ex, &(weft_exec_sim_opts_t){.size = 3}), -EINVAL);
	assert_null(ex);
	struct {
		weft_exec_sim_opts_t o;
		int later;
	} big = {{.size = sizeof big}, 1};
	assert_int_equal(weft_exec_create_sim(&ex, &big.o), -E2BIG);
	assert_int_equal(weft_exec_create_sim(&ex, &(weft_exec_sim_opts_t){.run_ns = WEFT_SEC + 1}), -EINVAL);
	assert_int_equal(weft_exec_create_sim(&ex, &(weft_exec_sim_opts_t){.flags = 0x80}), -EINVAL);
	assert_int_equal(weft_exec_create_sim(&ex, &(weft_exec_sim_opts_t){.trace_fd = -1}), -EINVAL);
	assert_int_equal(weft_exec_create_sim(&ex, &(weft_exec_sim_opts_t){.stack_size = 100}), -EINVAL);
	assert_null(ex);

	/* Refused creates left no sim behind: this one is the thread's. */
	assert_int_equal(weft_exec_create_sim(&ex, &(weft_exec_sim_opts_t){.seed = 9, .run_ns = -1}), 0);
	assert_string_equal(weft_exec_name(ex), "sim");
	assert_int_equal(weft_exec_caps(ex), SIM_CAPS | WEFT_EXEC_CAP_OWNS_TASKS);
	weft_runtime_t *rt = weft_exec_runtime(ex);
	assert_true(weft_runtime_is_sim(rt));
	assert_ptr_equal(weft_runtime_current(), rt);
	weft_sim_info_t i = {.size = sizeof i};
	assert_int_equal(weft_exec_sim_info(ex, &i), 0);
	if (!getenv("WEFT_SIM_SEED"))
		assert_int_equal(i.seed, 9);
	assert_int_equal(weft_exec_sim_run(ex, WEFT_NEVER), 0); /* nothing to run */
	weft_exec_t *second = (weft_exec_t *)1;
	assert_int_equal(weft_exec_create_sim(&second, NULL), -EBUSY);
	assert_null(second);

	/* A weft executor over the sim: deterministic, its own, not the
	 * runtime's owner; the forwarding calls work through it too. */
	weft_exec_t *over;
	assert_int_equal(weft_exec_create_runtime(&over, NULL), 0);
	assert_int_equal(weft_exec_caps(over), SIM_CAPS);
	assert_ptr_equal(weft_exec_runtime(over), rt);
	assert_int_equal(weft_exec_sim_info(over, &i), 0);
	assert_int_equal(weft_exec_destroy(over), 0);

	/* Not a sim: -EINVAL. */
	weft_exec_t *threads;
	assert_int_equal(weft_exec_create_threads(&threads, NULL), 0);
	assert_int_equal(weft_exec_sim_run(threads, WEFT_NEVER), -EINVAL);
	assert_int_equal(weft_exec_sim_info(threads, &i), -EINVAL);
	assert_int_equal(weft_exec_destroy(threads), 0);
	assert_int_equal(weft_exec_sim_run(NULL, WEFT_NEVER), -EINVAL);
	assert_int_equal(weft_exec_sim_info(NULL, &i), -EINVAL);
	assert_int_equal(weft_exec_sim_info(ex, NULL), -EINVAL);

	/* Another thread: every call is refused, destroy included (the
	 * executor stays usable). */
	struct foreign f = {.ex = ex};
	weft_sem_t gate = WEFT_SEM_INIT(0);
	assert_int_equal(weft_exec_spawn(ex, &f.h, gated, &gate, NULL), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, foreign_calls, &f), 0);
	pthread_join(th, NULL);
	assert_int_equal(f.spawn, -EPERM);
	assert_int_equal(f.wait, -EPERM);
	assert_int_equal(f.detach, -EPERM);
	assert_int_equal(f.cancel, -EPERM);
	assert_int_equal(f.now, -EPERM);
	assert_int_equal(f.sleep, -EPERM);
	assert_int_equal(f.destroy, -EPERM);
	assert_int_equal(f.run, -EPERM);
	assert_int_equal(f.info, -EPERM);

	/* Its own task: no create, no destroy, no run. */
	weft_exec_task_t h;
	assert_int_equal(weft_exec_spawn(ex, &h, sim_inside, ex, NULL), 0);
	assert_int_equal(weft_exec_wait(ex, h, NULL), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
	assert_int_equal(weft_sem_release(&gate, 1), 0);
	void *r = NULL;
	assert_int_equal(weft_exec_wait(ex, f.h, &r), 0);
	assert_int_equal((intptr_t)r, 0);

	/* Destroyed: its runtime is gone with it, and the thread owns none. */
	assert_int_equal(weft_exec_destroy(ex), 0);
	assert_null(weft_exec_runtime(ex));
	assert_false(weft_runtime_is_sim(weft_runtime_current()));
	assert_int_equal(weft_exec_sim_run(ex, WEFT_NEVER), -EINVAL);
	assert_int_equal(weft_exec_create_sim(&ex, NULL), 0);
	assert_int_equal(weft_exec_destroy(ex), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_input_on_every_backend),
		cmocka_unit_test(test_create_refuses_bad_ops),
		cmocka_unit_test(test_create_runtime_refuses_a_stopped_runtime),
		cmocka_unit_test(test_sim_options_and_owner_rule),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
