/* wt_step_task.h - a stackless task that makes one _step call until it
 * completes, for the tests of the step forms: it reports each
 * registration and its end on a channel (so the test acts on a registered
 * call only once it has registered), counts its registrations, and can
 * try second registrations at its first one, yield once and repeat before
 * the wait has ended, cancel itself first, and free its op in the step
 * that completes. */
#ifndef WT_STEP_TASK_H
#define WT_STEP_TASK_H

#include "weft_test.h"

#include <string.h>

enum { WT_EV_REG = 1, WT_EV_DONE = 2 };

typedef struct wt_step_task wt_step_task;
struct wt_step_task {
	long (*call)(wt_step_task *t, weft_op_t *op); /* the _step call under test */
	void *ctx;				      /* its arguments (not in the step's frame) */
	weft_time_t deadline;			      /* its deadline (WEFT_NEVER unless set) */
	weft_op_t *op;
	bool free_op;	  /* op was malloc'd: the completing step frees it */
	bool yield;	  /* after the first registration, yield and repeat (before the wait can end) */
	bool self_cancel; /* cancel itself before the call */
	/* At the first registration (second registrations, which must be
	 * refused), and in the step that completes (after `result` is set). */
	void (*busy)(wt_step_task *t);
	void (*done)(wt_step_task *t);
	weft_chan_t *ev; /* WT_EV_REG at each registration, WT_EV_DONE at the end */
	_Atomic int parks;
	long result;
	int busy_checks;
	bool yielded;
};

static inline void wt_step_send(wt_step_task *t, int ev)
{
	TCHECK_EQ(weft_chan_try_send(t->ev, &ev), 0);
}

static weft_step_t wt_step_fn(void *a, void **res)
{
	wt_step_task *t = a;
	if (t->self_cancel) {
		t->self_cancel = false;
		TCHECK_EQ(weft_cancel(weft_self()), 0);
	}
	long r = t->call(t, t->op);
	if (t->yielded) {
		/* The repeat made before the wait ended (nothing can end it
		 * before the test hears of the registration): nothing changed. */
		t->yielded = false;
		TCHECK_EQ(r, -EINPROGRESS);
		wt_step_send(t, WT_EV_REG);
		return WEFT_STEP_PARKED;
	}
	if (r == -EINPROGRESS) {
		int n = atomic_fetch_add(&t->parks, 1);
		if (n == 0 && t->busy) {
			t->busy(t);
			TCHECK(weft_park_prepare().parker == NULL);
			t->busy_checks++;
		}
		if (n == 0 && t->yield) {
			t->yielded = true; /* the registration is reported after the repeat */
			return WEFT_STEP_YIELD;
		}
		wt_step_send(t, WT_EV_REG);
		return WEFT_STEP_PARKED;
	}
	t->result = r;
	if (t->free_op) {
		/* The call has completed: op is the caller's again (sched.h). */
		free(t->op);
		t->op = NULL;
	}
	if (t->done)
		t->done(t);
	wt_step_send(t, WT_EV_DONE);
	*res = NULL;
	return WEFT_STEP_DONE;
}

static inline void wt_step_init(wt_step_task *t, long (*call)(wt_step_task *, weft_op_t *), void *ctx, weft_op_t *op)
{
	memset(t, 0, sizeof *t);
	t->call = call;
	t->ctx = ctx;
	t->op = op;
	t->deadline = WEFT_NEVER;
	TCHECK_EQ(weft_chan_create(&t->ev, sizeof(int), 64), 0);
}

static inline void wt_step_fini(wt_step_task *t)
{
	TCHECK_EQ(weft_chan_release(t->ev), 0);
}

/* Spawn the task (again: the events and counts of an earlier run are
 * dropped). */
static inline weft_task_t wt_step_start(wt_step_task *t)
{
	for (int ev; weft_chan_try_recv(t->ev, &ev) == 0;)
		;
	atomic_store(&t->parks, 0);
	t->busy_checks = 0;
	weft_task_t id = 0;
	TCHECK_EQ(weft_spawn_step(&id, wt_step_fn, t, NULL), 0);
	return id;
}

/* The task's next event. */
static inline int wt_step_event(wt_step_task *t)
{
	int ev = 0;
	TCHECK_EQ(weft_chan_recv_until(t->ev, &ev, wt_hang_deadline()), 0);
	return ev;
}

/* Until the task's end: the registrations it made on the way (a wait in
 * the netpoller may end on a stale report, and the repeat register
 * again). */
static inline int wt_step_until_done(wt_step_task *t)
{
	int regs = 0;
	for (int ev; (ev = wt_step_event(t)) != WT_EV_DONE; regs++)
		if (ev != WT_EV_REG) {
			TCHECK_EQ(ev, WT_EV_REG);
			break;
		}
	return regs;
}

static inline void wt_step_join(weft_task_t id)
{
	TCHECK_EQ(weft_join(id, NULL), 0);
}

/* Run the task to its end; its result. */
static inline long wt_step_run(wt_step_task *t)
{
	wt_step_join(wt_step_start(t));
	return t->result;
}

#endif
