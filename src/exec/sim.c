/* sim.c - the sim executor: the weft executor (runtime.c) over a
 * simulation runtime that it starts on the calling thread at create and
 * stops at destroy.
 *
 * It runs nothing itself. Its ops are the weft backend's, unchanged
 * (weft__exec_over), and every primitive its tasks use is the scheduler's
 * own code in its simulation mode (src/sched/sim.c): the owner thread,
 * the virtual clock, the seeded choice of the next task, the refusals of
 * other threads, deadlock reports. What this file adds is the ownership
 * of the runtime (so the OWNS_TASKS cap: destroy ends every task), the
 * DETERMINISTIC cap, and weft_sim_run / weft_sim_info by executor.
 *
 * Invariants:
 *  - The executor and its runtime live and die together: create starts
 *    the runtime first and stops it if the executor cannot be made;
 *    destroy frees the context only once the runtime is no longer live
 *    (stopped, or abandoned by a stop that found tasks waiting
 *    uncancellably on each other, which the core reports).
 *  - Destroy refuses, leaving both usable, exactly when the core's stop
 *    refuses before it begins: from another thread (-EPERM), from a task
 *    or a timer function of the sim (-EDEADLK).
 */
#include "runtime.h"

#include "../base/sized.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

const char weft__exec_sim_name[] = "sim";

#define SIM_CAPS                                                                                                       \
	(WEFT_EXEC_CAP_STEP | WEFT_EXEC_CAP_PARK | WEFT_EXEC_CAP_INTERRUPT | WEFT_EXEC_CAP_DETERMINISTIC |             \
	 WEFT_EXEC_CAP_OWNS_TASKS)

/* Whether x's sim is still live, and the calling thread's: -EPERM (live,
 * another thread's), 1 (yes), 0 (stopped already, through
 * weft_exec_runtime: rt's struct may hold a later sim by now). */
static int still_ours(const struct rt_exec *x)
{
	weft_sim_info_t i = {.size = sizeof i};
	int e = weft_sim_info(x->rt, &i);
	if (e == -EPERM)
		return e;
	return e == 0 && i.id == x->sim_id;
}

static int sim_destroy(void *ctx)
{
	struct rt_exec *x = ctx;
	int ours = still_ours(x);
	if (ours < 0)
		return ours; /* another thread's: refused, nothing changed */
	if (ours) {
		/* Cancels every task and runs the sim until they have ended. */
		int r = weft_runtime_stop(x->rt);
		if (r < 0 && still_ours(x) == 1)
			return r; /* refused before it began: nothing changed */
	}
	/* Stopped; or abandoned (-EDEADLK, reported on stderr); or stopped
	 * already through weft_exec_runtime (-EINVAL). Not live either way. */
	assert(still_ours(x) != 1);
	free(x);
	return 0;
}

int weft_exec_create_sim(weft_exec_t **out, const weft_exec_sim_opts_t *opts)
{
	if (out)
		*out = NULL;
	if (!out)
		return -EINVAL;
	weft_exec_sim_opts_t o;
	int e = weft__opts_in(&o, sizeof o, opts, opts ? opts->size : 0);
	if (e < 0)
		return e;
	/* The core checks the values, the thread (-EPERM from a task) and
	 * that it owns no other sim (-EBUSY). */
	weft_config_t c = {
		.size = sizeof c,
		.stack_size = o.stack_size,
		.sim = true,
		.sim_seed = o.seed,
		.sim_run_ns = o.run_ns,
		.sim_flags = o.flags,
		.sim_trace_fd = o.trace_fd,
	};
	weft_runtime_t *rt;
	e = weft_runtime_start(&rt, &c);
	if (e < 0)
		return e;
	e = weft__exec_over(out, rt, weft__exec_sim_name, SIM_CAPS, sim_destroy);
	if (e < 0) {
		int s = weft_runtime_stop(rt); /* no task has run: nothing to wait for */
		assert(s == 0);
		(void)s;
	}
	return e;
}

int weft_exec_sim_run(weft_exec_t *ex, weft_time_t deadline)
{
	weft_runtime_t *rt = weft_exec_runtime(ex);
	return rt ? weft_sim_run(rt, deadline) : -EINVAL;
}

int weft_exec_sim_info(weft_exec_t *ex, weft_sim_info_t *out)
{
	weft_runtime_t *rt = weft_exec_runtime(ex);
	return rt ? weft_sim_info(rt, out) : -EINVAL;
}
