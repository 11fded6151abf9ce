/* runtime.h - the weft executor (runtime.c) as the sim executor (sim.c)
 * reuses it: the same ops over a runtime, with a name, caps and destroy of
 * the caller's. */
#ifndef WEFT_EXEC_RUNTIME_H
#define WEFT_EXEC_RUNTIME_H

#include <weft/executors.h>

/* The context of an executor over a runtime. */
struct rt_exec {
	weft_runtime_t *rt;
	weft_spawn_opts_t joinable, detached; /* default options, prepared */
	uint64_t sim_id; /* over a sim: its weft_sim_info id, to tell it from a later sim in rt's struct */
};

/* An executor of the weft backend's ops over rt (live), named `name` (a
 * static string: weft_exec_ctx finds the context by it), with caps, and
 * destroy(ctx), which must free the struct rt_exec it is given when it
 * succeeds. Over a sim, weft_exec_now and weft_exec_sleep are refused off
 * its owner thread (-EPERM). 0, -ENOMEM. */
int weft__exec_over(weft_exec_t **out, weft_runtime_t *rt, const char *name, unsigned caps, int (*destroy)(void *ctx));

/* The sim executor's name (sim.c). */
extern const char weft__exec_sim_name[];

#endif
