/* runtime.c - the weft executor: tasks are coroutines and stackless tasks
 * of one runtime, handles are their weft_task_t ids.
 *
 * Every op is a direct call of the scheduler's API: a spawn with default
 * options is one weft_spawn with options prepared at create (no
 * allocation, no trampoline: weft_fn_t is the executor's function type).
 * The executor holds no record of its tasks: ids name their runtime, so
 * waits, detaches and cancels work from any thread, and destroy has
 * nothing to wait for.
 */
#include <weft/executors.h>
#include <weft/time.h>

#include <stdint.h>
#include <stdlib.h>

static const char weft_name[] = "weft";

struct rt_exec {
	weft_runtime_t *rt;
	weft_spawn_opts_t joinable, detached; /* default options, prepared */
};

/* The weft_spawn_opts_t for o: a prepared one for the defaults. */
static inline const weft_spawn_opts_t *spawn_opts(const struct rt_exec *x, const uint64_t *id,
						  const weft_exec_spawn_opts_t *o, weft_spawn_opts_t *tmp)
{
	if (o->name == NULL && o->stack_size == 0)
		return id ? &x->joinable : &x->detached;
	*tmp = id ? x->joinable : x->detached;
	tmp->name = o->name;
	tmp->stack_size = o->stack_size;
	return tmp;
}

static int rt_spawn(void *ctx, uint64_t *id, weft_fn_t fn, void *arg, const weft_exec_spawn_opts_t *o)
{
	weft_spawn_opts_t tmp;
	return weft_spawn(id, fn, arg, spawn_opts(ctx, id, o, &tmp));
}

static int rt_spawn_step(void *ctx, uint64_t *id, weft_step_fn_t step, void *state, const weft_exec_spawn_opts_t *o)
{
	weft_spawn_opts_t tmp;
	return weft_spawn_step(id, step, state, spawn_opts(ctx, id, o, &tmp));
}

/* spawn_blocking and spawn_at: a coroutine around fn; the cell is its. */
struct cell {
	weft_fn_t fn;
	void *arg;
	weft_time_t at;
};

static void *blocking_main(void *a)
{
	struct cell c = *(struct cell *)a;
	free(a);
	void *r;
	int e = weft_blocking(c.fn, c.arg, &r); /* a cancel before it starts: -ECANCELED, fn never runs */
	return e < 0 ? (void *)(intptr_t)e : r;
}

static void *at_main(void *a)
{
	struct cell c = *(struct cell *)a;
	free(a);
	if (weft_sleep_until(c.at) == -ECANCELED)
		return (void *)(intptr_t)-ECANCELED;
	return c.fn(c.arg);
}

static int spawn_cell(void *ctx, uint64_t *id, weft_fn_t main, struct cell c, const weft_exec_spawn_opts_t *o)
{
	struct cell *p = malloc(sizeof *p);
	if (!p)
		return -ENOMEM;
	*p = c;
	int r = rt_spawn(ctx, id, main, p, o);
	if (r < 0)
		free(p);
	return r;
}

static int rt_spawn_blocking(void *ctx, uint64_t *id, weft_fn_t fn, void *arg, const weft_exec_spawn_opts_t *o)
{
	return spawn_cell(ctx, id, blocking_main, (struct cell){fn, arg, 0}, o);
}

static int rt_spawn_at(void *ctx, uint64_t *id, weft_time_t at, weft_fn_t fn, void *arg,
		       const weft_exec_spawn_opts_t *o)
{
	return spawn_cell(ctx, id, at_main, (struct cell){fn, arg, at}, o);
}

static int rt_wait(void *ctx, uint64_t id, void **result, weft_time_t deadline, weft_op_t *op)
{
	(void)ctx;
	void *v;
	int r = op ? weft_join_step(id, &v, deadline, op) : weft_join_until(id, &v, deadline);
	if (r == 0 && result)
		*result = v; /* only on success (weft_join writes NULL on a timeout) */
	if (r == -EINVAL)    /* weft_join's "detached, or the caller itself" */
		r = id == weft_self() ? -EDEADLK : -ESRCH;
	return r;
}

static int rt_detach(void *ctx, uint64_t id)
{
	(void)ctx;
	int r = weft_detach(id);
	return r == -EINVAL ? -ESRCH : r; /* detached already */
}

static int rt_cancel(void *ctx, uint64_t id)
{
	(void)ctx;
	return weft_cancel(id);
}

static int rt_destroy(void *ctx)
{
	free(ctx);
	return 0;
}

static const weft_exec_ops_t rt_ops = {
	.size = sizeof(weft_exec_ops_t),
	.name = weft_name,
	.caps = WEFT_EXEC_CAP_STEP | WEFT_EXEC_CAP_PARK | WEFT_EXEC_CAP_INTERRUPT | WEFT_EXEC_CAP_REAL_IO,
	.spawn = rt_spawn,
	.wait = rt_wait,
	.detach = rt_detach,
	.destroy = rt_destroy,
	.spawn_step = rt_spawn_step,
	.spawn_blocking = rt_spawn_blocking,
	.spawn_at = rt_spawn_at,
	.cancel = rt_cancel,
};

int weft_exec_create_runtime(weft_exec_t **out, weft_runtime_t *rt)
{
	if (out)
		*out = NULL;
	if (!out)
		return -EINVAL;
	if (!rt)
		rt = weft_runtime_current();
	if (!rt)
		return -ESHUTDOWN;
	int w = weft_runtime_workers(rt);
	if (w < 0)
		return w == -EINVAL ? -ESHUTDOWN : w;
	struct rt_exec *x = malloc(sizeof *x);
	if (!x)
		return -ENOMEM;
	*x = (struct rt_exec){
		.rt = rt,
		.joinable = {.runtime = rt},
		.detached = {.runtime = rt, .detached = true},
	};
	int r = weft_exec_create(out, &rt_ops, x);
	if (r < 0)
		free(x);
	return r;
}

weft_runtime_t *weft_exec_runtime(const weft_exec_t *ex)
{
	struct rt_exec *x = weft_exec_ctx(ex, weft_name);
	return x ? x->rt : NULL;
}
