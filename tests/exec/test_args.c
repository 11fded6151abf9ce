/* test_args.c - every call of weft/exec.h and weft/executors.h fed NULLs,
 * handles of no task, of another executor and of a destroyed one, handles
 * used after their wait, bad option structs and out-of-range values, on
 * every backend and from a plain thread, a coroutine and a stackless task:
 * each returns the negative errno its header documents, and nothing
 * crashes, hangs or asserts. */
#include "wt_exec.h"
#include "wt_kinds.h"

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
	assert_int_equal(b->make(&a.other, rt), 0);
	assert_int_equal(b->make(&a.dead, rt), 0);
	assert_int_equal(weft_exec_spawn(a.dead, &a.dead_handle, quick, NULL, NULL), 0);
	assert_int_equal(weft_exec_wait(a.dead, a.dead_handle, NULL), 0);
	assert_int_equal(weft_exec_destroy(a.dead), 0);
	int before = atomic_load(&tcheck_failures);
	wt_kinds_in(rt, body, &a);
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
	for (size_t i = 0; i < WT_NBACKENDS; i++)
		run_on(&wt_backends[i]);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_input_on_every_backend),
		cmocka_unit_test(test_create_refuses_bad_ops),
		cmocka_unit_test(test_create_runtime_refuses_a_stopped_runtime),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
