/* runtime.c - the weft executor: tasks are coroutines and stackless tasks
 * of one runtime, handles are their weft_task_t ids.
 *
 * Every op is a direct call of the scheduler's API: a spawn with default
 * options is one weft_spawn with options prepared at create (no
 * allocation, no trampoline: weft_fn_t is the executor's function type).
 * The executor holds no record of its tasks: ids name their runtime, so
 * waits, detaches and cancels work from any thread, and destroy has
 * nothing to wait for.
 *
 * The sim executor (sim.c) is this one over a sim runtime of its own: the
 * same ops, with its own name, caps, destroy and clock (weft__exec_over).
 */
#include "runtime.h"

#include <weft/time.h>

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

static const char weft_name[] = "weft";

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

/* Every executor over a runtime; with REAL_IO, or DETERMINISTIC over a
 * sim. */
#define RT_CAPS (WEFT_EXEC_CAP_STEP | WEFT_EXEC_CAP_PARK | WEFT_EXEC_CAP_INTERRUPT)

static const weft_exec_ops_t rt_ops = {
	.size = sizeof(weft_exec_ops_t),
	.spawn = rt_spawn,
	.wait = rt_wait,
	.detach = rt_detach,
	.spawn_step = rt_spawn_step,
	.spawn_blocking = rt_spawn_blocking,
	.spawn_at = rt_spawn_at,
	.cancel = rt_cancel,
};

/* Over a sim, the clock and the sleeps are virtual on its owner thread
 * (and in its tasks) only: anywhere else weft_now() reads the real clock,
 * so the call is refused as every other call there is (-EPERM). */
static weft_time_t sim_now(void *ctx)
{
	struct rt_exec *x = ctx;
	return weft_runtime_current() == x->rt ? weft_now() : -EPERM;
}

static int sim_sleep_until(void *ctx, weft_time_t deadline)
{
	struct rt_exec *x = ctx;
	return weft_runtime_current() == x->rt ? weft_sleep_until(deadline) : -EPERM;
}

int weft__exec_over(weft_exec_t **out, weft_runtime_t *rt, const char *name, unsigned caps, int (*destroy)(void *ctx))
{
	assert(rt != NULL && name != NULL && destroy != NULL);
	weft_exec_ops_t ops = rt_ops;
	ops.name = name;
	ops.caps = caps;
	ops.destroy = destroy;
	if (weft_runtime_is_sim(rt)) {
		ops.now = sim_now;
		ops.sleep_until = sim_sleep_until;
	}
	struct rt_exec *x = malloc(sizeof *x);
	if (!x)
		return -ENOMEM;
	*x = (struct rt_exec){
		.rt = rt,
		.joinable = {.runtime = rt},
		.detached = {.runtime = rt, .detached = true},
	};
	weft_sim_info_t si = {.size = sizeof si};
	if (weft_runtime_is_sim(rt) && weft_sim_info(rt, &si) == 0)
		x->sim_id = si.id;
	int r = weft_exec_create(out, &ops, x);
	if (r < 0)
		free(x);
	return r;
}

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
	unsigned caps = RT_CAPS | (weft_runtime_is_sim(rt) ? WEFT_EXEC_CAP_DETERMINISTIC : WEFT_EXEC_CAP_REAL_IO);
	return weft__exec_over(out, rt, weft_name, caps, rt_destroy);
}

weft_runtime_t *weft_exec_runtime(const weft_exec_t *ex)
{
	struct rt_exec *x = weft_exec_ctx(ex, weft_name);
	if (!x)
		x = weft_exec_ctx(ex, weft__exec_sim_name);
	return x ? x->rt : NULL;
}
