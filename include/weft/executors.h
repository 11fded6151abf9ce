/* weft/executors.h - the executors weft provides (weft/exec.h is the
 * interface): weft's own scheduler and a pool of plain threads (libuv's
 * and the deterministic simulation are to come). docs/exec.md says what
 * each is for. */
#ifndef WEFT_EXECUTORS_H
#define WEFT_EXECUTORS_H

#include <weft/exec.h>
#include <weft/io.h>

#ifdef __cplusplus
extern "C" {
#endif

/* weft: tasks are coroutines (and stackless tasks) of runtime rt (NULL: the
 * current runtime at this call; none: -ESHUTDOWN). The executor does not
 * own rt: rt must outlive it, and once rt stops, spawns return -ESHUTDOWN.
 * spawn_blocking runs fn on rt's blocking pool (weft_blocking) from a
 * coroutine that waits for it. Destroy neither waits for nor cancels the
 * tasks (they are rt's). Caps: STEP | PARK | INTERRUPT | REAL_IO.
 * -EINVAL: out NULL; -ESHUTDOWN: rt has stopped; -ENOMEM. */
int weft_exec_create_runtime(weft_exec_t **out, weft_runtime_t *rt);
/* The runtime of a weft executor, else NULL. */
weft_runtime_t *weft_exec_runtime(const weft_exec_t *ex);

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

#ifdef __cplusplus
}
#endif
#endif
