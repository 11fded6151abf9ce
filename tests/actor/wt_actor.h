/* wt_actor.h - helpers of the actor tests: run a body as a process, and
 * small message helpers. */
#ifndef WT_ACTOR_H
#define WT_ACTOR_H

#include "../wt_sim.h"

#include <string.h>
#include <weft/actor.h>

struct wt_proc_call {
	weft_fn_t fn;
	void *arg;
	weft_proc_opts_t opts;
};

/* The main task of a runtime (real or sim): start c->fn(c->arg) as a
 * process and wait for it to end. */
static void *wt_proc_main(void *a)
{
	struct wt_proc_call *c = a;
	weft_pid_t pid = 0;
	TCHECK_EQ(weft_proc_spawn(&pid, c->fn, c->arg, &c->opts), 0);
	TCHECK_EQ(weft_proc_wait(pid, wt_hang_deadline()), 0);
	return NULL;
}

/* Run fn(arg) as a process of a fresh runtime with `workers` workers. */
static inline void wt_proc_run(weft_fn_t fn, void *arg, int workers)
{
	struct wt_proc_call c = {fn, arg, {0}};
	wt_run(wt_proc_main, &c, workers);
}

/* A message that is one int64_t (the tests' usual payload). */
static inline int wt_send_i(weft_pid_t to, int64_t v)
{
	return weft_send(to, &v, sizeof v);
}

static inline int64_t wt_msg_i(const weft_msg_t *m)
{
	int64_t v = -1;
	if (m && m->len == sizeof v)
		memcpy(&v, m->data, sizeof v);
	return v;
}

/* Receive one message (checked) and return its int64_t; -1 on failure. */
static inline int64_t wt_recv_i(void)
{
	weft_msg_t *m = NULL;
	int e = weft_receive_until(&m, NULL, wt_hang_deadline());
	TCHECK_EQ(e, 0);
	int64_t v = e ? -1 : wt_msg_i(m);
	weft_msg_destroy(m);
	return v;
}

/* Until p waits in a receive (polling: a state, not a timing). */
static inline void wt_until_receiving(weft_pid_t p)
{
	weft_proc_info_t in = {.size = sizeof in};
	WT_WAIT_UNTIL(weft_proc_info(p, &in) == 0 && in.receiving);
}

static inline uint64_t wt_examined(weft_pid_t p)
{
	weft_proc_info_t in = {.size = sizeof in};
	TCHECK_EQ(weft_proc_info(p, &in), 0);
	return in.examined;
}

static inline bool wt_match_i(const weft_msg_t *m, void *ctx)
{
	return m->kind == WEFT_MSG_DATA && wt_msg_i(m) == *(int64_t *)ctx;
}

#endif
