/* weft/exec.h - executors: one interface for "run this concurrently".
 *
 * A component that starts work (the server helper, subprocess forwarding,
 * later the distribution node) takes a weft_exec_t instead of calling one
 * runtime. The same component then runs on weft's scheduler, in a
 * deterministic simulation of it, on plain threads or on libuv's thread
 * pool (weft/executors.h makes those, through the same ops table). A
 * program can wrap another runtime with weft_exec_create (the ops table at
 * the end of this header). The interface sits on the core's rung so that
 * io can take an executor; the backends live in src/exec/ (docs/exec.md).
 *
 * Tasks and handles. A spawn runs fn(arg) as a task of the executor: a
 * coroutine (weft, sim) or a job on a pool thread (threads, libuv). Its handle
 * (weft_exec_task_t, a 16-byte value) names the task and the executor that
 * made it. A handle is waited for once (weft_exec_wait*), after which it
 * is dead (-ESRCH), or given up with weft_exec_detach. Until then the
 * executor keeps a small record of the task. out == NULL at spawn means
 * detached from the start. Calls given a handle of another executor (or
 * WEFT_EXEC_TASK_NONE) return -EINVAL.
 *
 * Who may call. Every call may be made from any thread and from any task of
 * any executor, unless the executor says otherwise (a sim executor: only
 * its owner thread and its own tasks, others get -EPERM; a libuv executor:
 * wait and sleep from its loop's thread are -EDEADLK when they would block,
 * and on the caller's loop, destroy only from the loop's thread). A
 * blocking call (wait, sleep) parks a weft task, blocks a plain thread,
 * and in a stackless task returns -EPERM when it would have to wait (its
 * _step form waits).
 *
 * Lifetime. The creator owns the executor and destroys it
 * (weft_exec_destroy) once no call on it is in progress from outside its
 * own tasks: the POSIX rule of docs/api.md. An executor struct is never
 * freed: a destroyed one stays a harmless invalid handle (calls fail with
 * -EINVAL) until a later weft_exec_create reuses the struct (as with
 * runtimes); handles of the destroyed executor stay invalid for ever.
 * While destroy runs, spawns fail with -ESHUTDOWN.
 *
 * Results. A task's result is fn's return value. A task that never ran
 * (cancelled before it started) has the result (void *)(intptr_t)-ECANCELED;
 * one that could not start for lack of memory has -ENOMEM. As with
 * weft_spawn, these are results, not errors of the wait.
 */
#ifndef WEFT_EXEC_H
#define WEFT_EXEC_H

#include <weft/sched.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_exec weft_exec_t;

typedef struct weft_exec_task {
	uint64_t id;   /* the backend's name for the task (weft: its weft_task_t) */
	uint64_t exec; /* serial number of the executor that made it; 0: no task */
} weft_exec_task_t;
#define WEFT_EXEC_TASK_NONE ((weft_exec_task_t){0, 0})

/* Sized (docs/api.md, "Structs that grow"); opts NULL: all defaults. */
typedef struct weft_exec_spawn_opts {
	size_t size;	   /* 0 or sizeof(weft_exec_spawn_opts_t) */
	const char *name;  /* copied (first 15 bytes) where the backend names tasks; NULL: unnamed */
	size_t stack_size; /* coroutine backends, as weft_spawn_opts_t; ignored by pool backends; 0: default */
} weft_exec_spawn_opts_t;

/* What an executor can do (weft_exec_caps). */
enum {
	WEFT_EXEC_CAP_STEP = 1 << 0,	      /* weft_exec_spawn_step works */
	WEFT_EXEC_CAP_PARK = 1 << 1,	      /* tasks park (coroutines): they hold no thread while waiting */
	WEFT_EXEC_CAP_INTERRUPT = 1 << 2,     /* cancel ends a running task's blocking weft calls (-ECANCELED) */
	WEFT_EXEC_CAP_DETERMINISTIC = 1 << 3, /* same seed, same schedule (sim) */
	WEFT_EXEC_CAP_REAL_IO = 1 << 4,	      /* tasks may use any descriptor, the blocking pool, processes */
	WEFT_EXEC_CAP_OWNS_TASKS = 1 << 5     /* destroy waits for every task it started */
};

/* ------------------------------------------------------------ spawning */

/* Run fn(arg) as a task of ex. *out (out may be NULL: detached) gets its
 * handle. arg is the caller's and must stay valid until the task has ended.
 * Never waits: on a pool backend the task queues when every thread is busy.
 * 0; -EINVAL: ex or fn NULL, ex destroyed, opts->size below the first
 * version, a bad stack size (weft); -E2BIG: opts larger than this library
 * knows with non-zero unknown bytes; -ESHUTDOWN: ex is being destroyed, or
 * its runtime is stopping; -EPERM: a sim executor, from a thread that is
 * not its owner; -ENOMEM. *out is WEFT_EXEC_TASK_NONE after every
 * failure. */
int weft_exec_spawn(weft_exec_t *ex, weft_exec_task_t *out, weft_fn_t fn, void *arg,
		    const weft_exec_spawn_opts_t *opts);
/* A stackless task (weft_spawn_step's rules: state outlives its last
 * step). Errors as weft_exec_spawn, and -ENOTSUP where WEFT_EXEC_CAP_STEP
 * is not set (threads, libuv). */
int weft_exec_spawn_step(weft_exec_t *ex, weft_exec_task_t *out, weft_step_fn_t step, void *state,
			 const weft_exec_spawn_opts_t *opts);
/* Run fn(arg), which may block its thread (a system call, a library without
 * an async API), without holding up the executor's other tasks:
 *  - weft: a coroutine that calls weft_blocking (the runtime's pool);
 *  - sim: the same, with the pool modelled: fn runs in that coroutine, then
 *    it waits a latency drawn from the seed (fn must not wait for another
 *    task of the sim: docs/exec.md);
 *  - threads, libuv: as weft_exec_spawn (their threads may block).
 * A cancel before fn starts means fn never runs (result -ECANCELED). Once
 * it runs, it runs to the end (weft_blocking's rule). Errors as
 * weft_exec_spawn. */
int weft_exec_spawn_blocking(weft_exec_t *ex, weft_exec_task_t *out, weft_fn_t fn, void *arg,
			     const weft_exec_spawn_opts_t *opts);
/* Run fn(arg) as a task at time `at` (absolute, on weft_exec_now's clock;
 * a past time: as soon as possible). The handle exists at once. A cancel
 * before `at` means fn never runs (result -ECANCELED) on every backend.
 * Errors as weft_exec_spawn. */
int weft_exec_spawn_at(weft_exec_t *ex, weft_exec_task_t *out, weft_time_t at, weft_fn_t fn, void *arg,
		       const weft_exec_spawn_opts_t *opts);

/* ------------------------------------------------------------ waiting */

/* Wait until task t has ended and take its result (*result, written only
 * on success; result may be NULL). One waiter at a time: a second concurrent wait gets -ESRCH, and so
 * does any wait after one that succeeded. 0; -ETIMEDOUT (the _until form:
 * the deadline passed first; a past deadline polls; t keeps running and
 * may be waited for again); -ECANCELED (the caller was cancelled; t keeps
 * running and may be waited for again); -ESRCH (t was waited for or
 * detached, or its record is gone); -EINVAL (ex NULL or destroyed, t of
 * another executor, t NONE); -EPERM (when t has not ended: a stackless
 * task (use the _step form); a task or the owner thread of a simulation,
 * when t is not a task of that simulation; and a sim executor from a
 * thread that is not its owner); -EDEADLK (t is the caller itself; a sim's
 * owner thread, when nothing in the sim can end the wait; libuv: from the
 * loop's thread, when t has not ended). Tasks of every backend can be
 * waited for from tasks of every backend and from plain threads, except
 * that a simulation's tasks and owner thread wait only for tasks of their
 * own simulation. */
int weft_exec_wait(weft_exec_t *ex, weft_exec_task_t t, void **result);
int weft_exec_wait_until(weft_exec_t *ex, weft_exec_task_t t, void **result, weft_time_t deadline);
/* The step form (weft/sched.h, "Step forms"): -EINPROGRESS registered,
 * -EBUSY another registration is pending; else as weft_exec_wait_until. */
int weft_exec_wait_step(weft_exec_t *ex, weft_exec_task_t t, void **result, weft_time_t deadline, weft_op_t *op);
/* Give up the handle: the record goes when the task ends. 0; -ESRCH
 * (waited for, detached, a wait is in progress, or unknown); -EINVAL as
 * above. */
int weft_exec_detach(weft_exec_t *ex, weft_exec_task_t t);
/* Ask t to stop. What that does depends on the backend and on how far t
 * has got:
 *  - t has not started yet: it never runs (result -ECANCELED): tasks of
 *    weft_exec_spawn_at before their time on every backend, and queued
 *    tasks on the pool backends.
 *  - t runs, WEFT_EXEC_CAP_INTERRUPT: its current or next blocking weft
 *    call returns -ECANCELED (sticky), as weft_cancel.
 *  - t runs, no INTERRUPT: only a flag is set, which fn may poll with
 *    weft_exec_cancelled().
 * 0; -ESRCH (t has ended, so there is nothing to cancel, as weft_cancel
 * says - a handle not waited for yet must still be waited for or
 * detached - or t is unknown); -ENOTSUP (a custom backend without
 * cancel); -EINVAL as above. */
int weft_exec_cancel(weft_exec_t *ex, weft_exec_task_t t);
/* Whether the calling task, of whatever executor, has been cancelled
 * (false outside executor tasks and weft tasks). */
bool weft_exec_cancelled(void);

/* ------------------------------------------------------------ time */

/* ex's clock (weft_now() for the backends of weft/executors.h: a sim's
 * virtual clock on its owner thread). -EINVAL (negative) for NULL or a
 * destroyed executor, -EPERM for a sim executor off its owner thread;
 * never negative otherwise. */
weft_time_t weft_exec_now(const weft_exec_t *ex);
/* Sleep the caller the way ex's tasks sleep (a weft task parks, a thread
 * blocks, a sim's owner thread runs the sim until the virtual deadline).
 * 0; -ECANCELED; -EPERM (a stackless task, unless the deadline has
 * passed: 0; a sim executor off its owner thread); -EINVAL; -EDEADLK
 * (libuv: from the loop's thread). */
int weft_exec_sleep(weft_exec_t *ex, weft_time_t ns);
int weft_exec_sleep_until(weft_exec_t *ex, weft_time_t deadline);

/* ------------------------------------------------------------ the executor */

/* WEFT_EXEC_CAP_* flags (>= 0), or -EINVAL. */
int weft_exec_caps(const weft_exec_t *ex);
/* "weft", "sim", "threads", "libuv", a custom backend's name; "invalid" for NULL
 * or a destroyed executor. Never NULL; the string is static (or the
 * backend's). */
const char *weft_exec_name(const weft_exec_t *ex);
/* End ex: spawns fail from then on (-ESHUTDOWN).
 *  - OWNS_TASKS backends (sim, threads, libuv): cancel what can be
 *    cancelled, wait until every task has ended, join the threads, free
 *    the records. A sim executor stops its runtime (weft_runtime_stop).
 *  - weft: the tasks belong to the runtime. It neither waits for nor
 *    cancels them; stop the runtime, or wait for the handles first.
 * Handles of ex are dead afterwards (-EINVAL). 0; -EINVAL (NULL,
 * destroyed already); -EBUSY (another destroy of ex is in progress: it may
 * still be refused, so ex may be usable again); -EDEADLK (a backend that
 * waits, called from one of ex's own tasks: ex stays usable); -EPERM (sim:
 * not its owner thread; libuv with the caller's loop: not the loop's
 * thread; ex stays usable). While a destroy runs, even one about to be
 * refused, spawns fail with -ESHUTDOWN. */
int weft_exec_destroy(weft_exec_t *ex);

/* ------------------------------------------------------------ writing a backend */

/* An executor is an ops table and a context. The dispatch functions above
 * check the executor, the handle (its serial) and the options before any
 * op is called. Ops get normalized options, never NULL, and the backend's
 * own 64-bit id in place of a handle (id NULL: detached). Their results
 * are the dispatch functions'. */
typedef struct weft_exec_ops {
	size_t size;	  /* 0 or sizeof(weft_exec_ops_t) */
	const char *name; /* static */
	unsigned caps;	  /* WEFT_EXEC_CAP_* */
	/* Required. */
	int (*spawn)(void *ctx, uint64_t *id, weft_fn_t fn, void *arg, const weft_exec_spawn_opts_t *o);
	/* op non-NULL: the step form (register with weft_step_begin/_register). */
	int (*wait)(void *ctx, uint64_t id, void **result, weft_time_t deadline, weft_op_t *op);
	int (*detach)(void *ctx, uint64_t id);
	/* End every task the executor must end (or refuse: -EDEADLK, -EPERM;
	 * the executor stays usable then), free ctx. Called by
	 * weft_exec_destroy. */
	int (*destroy)(void *ctx);
	/* Optional: NULL gives the behaviour in brackets. */
	int (*spawn_step)(void *ctx, uint64_t *id, weft_step_fn_t step, void *state,
			  const weft_exec_spawn_opts_t *o); /* [-ENOTSUP] */
	int (*spawn_blocking)(void *ctx, uint64_t *id, weft_fn_t fn, void *arg,
			      const weft_exec_spawn_opts_t *o); /* [spawn] */
	int (*spawn_at)(void *ctx, uint64_t *id, weft_time_t at, weft_fn_t fn, void *arg,
			const weft_exec_spawn_opts_t *o);    /* [a task: sleep_until(at), then fn unless cancelled] */
	int (*cancel)(void *ctx, uint64_t id);		     /* [-ENOTSUP] */
	weft_time_t (*now)(void *ctx);			     /* [weft_now] */
	int (*sleep_until)(void *ctx, weft_time_t deadline); /* [weft_sleep_until] */
} weft_exec_ops_t;

/* Make an executor of ops and ctx (ops is copied; ctx is owned by the
 * executor from a successful call on, freed by ops->destroy). -EINVAL: out
 * or ops NULL, ops->size below the first version, name NULL, or spawn,
 * wait, detach or destroy missing; -E2BIG (see weft_exec_spawn_opts_t);
 * -ENOMEM. *out is NULL on every failure. */
int weft_exec_create(weft_exec_t **out, const weft_exec_ops_t *ops, void *ctx);

/* For pool backends, whose tasks are not weft tasks: while a thread runs a
 * task, weft_exec_cancelled() there returns cancelled(ctx). Call it with
 * the task's function before running the task and with NULL after. */
void weft_exec_bind_cancel(bool (*cancelled)(void *ctx), void *ctx);
/* The ctx of ex if ex is not destroyed and its ops' name is the very
 * pointer `name` (a backend's own static string), else NULL: how a backend
 * finds its context in a call of its own (weft_exec_runtime). */
void *weft_exec_ctx(const weft_exec_t *ex, const char *name);

#ifdef __cplusplus
}
#endif
#endif
