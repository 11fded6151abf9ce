/* weft/executors.h - the executors weft provides (weft/exec.h is the
 * interface): weft's own scheduler, the same scheduler as a deterministic
 * simulation (sim), a pool of plain threads, and libuv's thread pool and
 * loop.
 * docs/exec.md says what each is for. */
#ifndef WEFT_EXECUTORS_H
#define WEFT_EXECUTORS_H

#include <weft/exec.h>
#include <weft/io.h>

#ifdef __cplusplus
extern "C" {
#endif

/* weft: tasks are coroutines (and stackless tasks) of runtime rt (NULL: the
 * current runtime at this call; none: -ESHUTDOWN). The executor does not
 * own rt: rt must outlive it. Once rt stops, spawns return -ESHUTDOWN -
 * until a runtime started later takes rt's place (weft_runtime_t structs
 * are reused, sched.h): destroy the executor before stopping rt.
 * spawn_blocking runs fn on rt's blocking pool (weft_blocking) from a
 * coroutine that waits for it. Destroy neither waits for nor cancels the
 * tasks (they are rt's). Caps: STEP | PARK | INTERRUPT | REAL_IO; over a
 * sim runtime DETERMINISTIC replaces REAL_IO, and the sim's rules below
 * apply. -EINVAL: out NULL; -ESHUTDOWN: rt has stopped; -ENOMEM. */
int weft_exec_create_runtime(weft_exec_t **out, weft_runtime_t *rt);
/* The runtime of a weft or sim executor, else NULL. */
weft_runtime_t *weft_exec_runtime(const weft_exec_t *ex);

/* sim: the weft executor over a simulation runtime of its own (weft/sched.h,
 * "simulation"): every task on the calling thread, the next one chosen by
 * a PRNG from the seed, on a virtual clock, so a seed repeats its schedule
 * and its output. The same code as the weft backend, not a model of it.
 * Sized (docs/api.md); opts NULL: all defaults. The fields are the
 * weft_config_t fields of the same names (sim_seed, sim_run_ns, ...). */
typedef struct weft_exec_sim_opts {
	size_t size;	    /* 0 or sizeof(weft_exec_sim_opts_t) */
	uint64_t seed;	    /* 0: 1; WEFT_SIM_SEED in the environment overrides it (replay) */
	weft_time_t run_ns; /* each task run advances the clock by [0, run_ns); 0: 2000; < 0: 0; <= WEFT_SEC */
	unsigned flags;	    /* WEFT_SIM_TRACE (one line per task run) */
	int trace_fd;	    /* where the trace goes; 0: stderr */
	size_t stack_size;  /* the tasks' default stack, as weft_config_t.stack_size; 0: default */
} weft_exec_sim_opts_t;
/* The calling thread becomes the sim's owner: only it and the executor's
 * own tasks may call the executor (others get -EPERM; a wake-up of a sim
 * task from another thread aborts, naming the seed). From create to
 * destroy weft_now() there is the virtual clock, and its blocking calls
 * (weft_exec_wait, weft_exec_sleep, weft_join, ...) run the simulation
 * until they return; one that nothing in the sim can end returns -EDEADLK.
 * Tasks may use pipes, AF_UNIX sockets, eventfds and regular files; the
 * rest of the io module's real world (TCP, name lookups, processes,
 * signals) is refused with -ENOTSUP, and the blocking pool is modelled:
 * spawn_blocking (and weft_blocking) runs fn at once in the task, then
 * waits a latency drawn from the seed (docs/exec.md). Destroy cancels
 * every task and runs the sim until they have ended, then stops its
 * runtime; tasks that wait uncancellably on each other are reported on
 * stderr and left behind (destroy still succeeds); -EDEADLK from one of
 * its tasks, -EPERM from another thread (the executor stays usable). Caps:
 * STEP | PARK | INTERRUPT | DETERMINISTIC | OWNS_TASKS. -EINVAL: out NULL,
 * a value out of range; -E2BIG; -EBUSY: the thread owns a sim already;
 * -EPERM: from a task; -ENOMEM. */
int weft_exec_create_sim(weft_exec_t **out, const weft_exec_sim_opts_t *opts);
/* weft_sim_run and weft_sim_info (weft/sched.h) on the runtime of ex, a
 * sim executor (or a weft executor over a sim runtime); -EINVAL for other
 * executors; the core's errors otherwise. */
int weft_exec_sim_run(weft_exec_t *ex, weft_time_t deadline);
int weft_exec_sim_info(weft_exec_t *ex, weft_sim_info_t *out);

/* threads: a pool of plain OS threads; it needs no weft runtime. Sized
 * (docs/api.md); opts NULL: all defaults. */
typedef struct weft_exec_threads_opts {
	size_t size;	     /* 0 or sizeof(weft_exec_threads_opts_t) */
	int max_threads;     /* 1..4096; 0: 128. Tasks beyond it queue (FIFO) */
	weft_time_t idle;    /* a thread idle this long exits; 0: 10 s; WEFT_NEVER: never; else >= 1 ms */
	size_t thread_stack; /* pthread stack size (>= 64 KiB); 0: the system default */
} weft_exec_threads_opts_t;
/* Tasks run on the pool's threads as plain threads (their weft calls block
 * the thread). Cancel takes a queued task (or a spawn_at task before its
 * time) out: it never runs (result -ECANCELED); a running one only gets
 * the flag weft_exec_cancelled() reads. Destroy cancels what is queued,
 * waits for the running tasks and joins the threads; -EDEADLK from one of
 * its own tasks. Caps: OWNS_TASKS | REAL_IO. -EINVAL: out NULL, a value
 * out of range; -E2BIG; -ENOMEM. */
int weft_exec_create_threads(weft_exec_t **out, const weft_exec_threads_opts_t *opts);

/* libuv: tasks run on libuv's thread pool (uv_queue_work: 4 threads unless
 * UV_THREADPOOL_SIZE says otherwise, shared by every loop of the process),
 * spawn_at's timers on a libuv loop. <uv.h> stays out of weft's headers:
 * struct uv_loop_s is uv_loop_t. Sized (docs/api.md); opts NULL: all
 * defaults. */
struct uv_loop_s;
typedef struct weft_exec_uv_opts {
	size_t size; /* 0 or sizeof(weft_exec_uv_opts_t) */
	struct uv_loop_s *
		loop; /* the caller's loop, which the caller runs; NULL: a loop of the executor's own, on a thread of its own */
} weft_exec_uv_opts_t;
/* Tasks run as plain threads of libuv's pool (their weft calls block the
 * thread). Spawns from other threads than the loop's reach the loop through
 * a uv_async_t; a task's end is published on its pool thread, so waits do
 * not need the loop to turn. Cancel takes a task that has not started (not
 * yet handed to the pool, still queued in it: uv_cancel, or a spawn_at task
 * before its time) out: it never runs (result -ECANCELED); a running one
 * only gets the flag weft_exec_cancelled() reads. On the loop's thread, a
 * wait or sleep that would have to block returns -EDEADLK (it would stall
 * the loop). Destroy cancels what has not started, waits for the running
 * tasks and closes the executor's libuv handles; -EDEADLK from one of its
 * own tasks. With the caller's loop:
 *  - create and destroy must be called on the thread that runs the loop,
 *    outside the loop's callbacks (libuv's rule: uv_run is not
 *    reentrant); destroy from another thread is -EPERM (ex stays usable),
 *    and destroy runs the loop (UV_RUN_ONCE) until the executor's handles
 *    are closed, which runs the program's other callbacks too;
 *  - the loop's thread is the thread that called create: run the loop on
 *    that thread, a plain thread (not a coroutine, which may move);
 *  - the executor's inbox does not keep the loop alive (uv_unref): queued
 *    work and armed spawn_at timers do, and spawns from other threads start
 *    when the loop next runs.
 * With its own loop, every call may come from any thread. Caps: OWNS_TASKS
 * | REAL_IO. -EINVAL: out NULL, opts->size below the first version; -E2BIG;
 * -ENOMEM; libuv's errors (negative errno); -ENOTSUP: weft was built
 * without libuv (-DWEFT_LIBUV=OFF). */
int weft_exec_create_uv(weft_exec_t **out, const weft_exec_uv_opts_t *opts);

#ifdef __cplusplus
}
#endif
#endif
