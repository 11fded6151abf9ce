/* tpool.h - a pool of plain threads running jobs in FIFO order: the
 * machinery of the blocking pool (src/io/blocking.c) and of the threads
 * executor (src/exec/threads.c). It grows on demand up to a limit, a thread
 * idle for a while exits, and jobs queue when every thread is busy. Plain
 * pthreads and CLOCK_MONOTONIC: nothing of weft above base. */
#ifndef WEFT_BASE_TPOOL_H
#define WEFT_BASE_TPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A job: the caller's memory, linked while queued. The pool's run(j) is
 * called on a pool thread, without the pool's lock. Then the pool counts
 * the job completed and calls its complete(j) under its lock (it must not
 * block; it may end j's life: free it, wake its owner), so that whoever
 * complete wakes sees the statistics count the job. The pool touches j no
 * more after that. complete NULL: the pool touches j no more once run has
 * been called, and run may end j's life itself. run and complete are the
 * pool's, not each job's: 16 bytes a job (the blocking pool's jobs live in
 * a stackless task's weft_op_t, next to their call's fields). The links
 * are the pool's, under its lock: whether a job is queued is whether the
 * queue links it. */
typedef struct weft__tpool_job {
	struct weft__tpool_job *next, *prev;
} weft__tpool_job;

typedef void (*weft__tpool_fn)(weft__tpool_job *j);

typedef struct weft__tpool weft__tpool;

typedef struct weft__tpool_stats {
	uint32_t threads, idle, max;
	uint64_t queued, running, completed;
} weft__tpool_stats;

#define WEFT__TPOOL_NEVER INT64_MAX /* an idle time: threads never time out */

/* A pool of at most max threads (>= 1) that exit after idle_ns (ns > 0, or
 * WEFT__TPOOL_NEVER) without work, named `name` (static; at most 15
 * characters), with stacks of stack bytes (0: the system default), whose
 * jobs are run by run and completed by complete (NULL: none; see
 * weft__tpool_job). NULL: out of memory. */
weft__tpool *weft__tpool_create(const char *name, uint32_t max, int64_t idle_ns, size_t stack, weft__tpool_fn run,
				weft__tpool_fn complete);
/* Wait until every thread has drained the queue and exited, join them,
 * free p. No submit may come meanwhile or after. */
void weft__tpool_destroy(weft__tpool *p);
/* Queue j, waking or starting a thread for it. 0, or -ENOMEM / -EAGAIN
 * when no thread at all could be started (j is not queued then). */
int weft__tpool_submit(weft__tpool *p, weft__tpool_job *j);
/* Take j out of the queue: true if it was still queued (run will never be
 * called), false if a thread has taken it. */
bool weft__tpool_remove(weft__tpool *p, weft__tpool_job *j);
/* Hold p's lock, under which the pool takes jobs off the queue and calls
 * complete: while it is held, a job that was submitted is either queued
 * (weft__tpool_remove_locked takes it out), or taken by a thread that has
 * not called complete yet (the owner may change what complete reads), or
 * completed. Hold it briefly, and call nothing else of the pool meanwhile
 * but weft__tpool_remove_locked. */
void weft__tpool_lock(weft__tpool *p);
void weft__tpool_unlock(weft__tpool *p);
/* weft__tpool_remove with p's lock held. */
bool weft__tpool_remove_locked(weft__tpool *p, weft__tpool_job *j);
/* Change the limits (0 / 0: keep that one). */
void weft__tpool_set_limits(weft__tpool *p, uint32_t max, int64_t idle_ns);
void weft__tpool_read_stats(weft__tpool *p, weft__tpool_stats *out);

#endif
