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

/* A job: the caller's memory, linked while queued. run(j) is called on a
 * pool thread, without the pool's lock. Then the pool counts the job
 * completed and calls complete(j) under its lock (it must not block; it
 * may end j's life: free it, wake its owner), so that whoever complete
 * wakes sees the statistics count the job. The pool touches j no more
 * after that. complete NULL: the pool touches j no more once run has been
 * called, and run may end j's life itself. */
typedef struct weft__tpool_job {
	struct weft__tpool_job *next, *prev;
	void (*run)(struct weft__tpool_job *j);
	void (*complete)(struct weft__tpool_job *j);
	bool queued; /* under the pool's lock */
} weft__tpool_job;

typedef struct weft__tpool weft__tpool;

typedef struct weft__tpool_stats {
	uint32_t threads, idle, max;
	uint64_t queued, running, completed;
} weft__tpool_stats;

#define WEFT__TPOOL_NEVER INT64_MAX /* an idle time: threads never time out */

/* A pool of at most max threads (>= 1) that exit after idle_ns (ns > 0, or
 * WEFT__TPOOL_NEVER) without work, named `name` (static; at most 15
 * characters), with stacks of stack bytes (0: the system default). NULL:
 * out of memory. */
weft__tpool *weft__tpool_create(const char *name, uint32_t max, int64_t idle_ns, size_t stack);
/* Wait until every thread has drained the queue and exited, join them,
 * free p. No submit may come meanwhile or after. */
void weft__tpool_destroy(weft__tpool *p);
/* Queue j, waking or starting a thread for it. 0, or -ENOMEM / -EAGAIN
 * when no thread at all could be started (j is not queued then). */
int weft__tpool_submit(weft__tpool *p, weft__tpool_job *j);
/* Take j out of the queue: true if it was still queued (run will never be
 * called), false if a thread has taken it. */
bool weft__tpool_remove(weft__tpool *p, weft__tpool_job *j);
/* Change the limits (0 / 0: keep that one). */
void weft__tpool_set_limits(weft__tpool *p, uint32_t max, int64_t idle_ns);
void weft__tpool_read_stats(weft__tpool *p, weft__tpool_stats *out);

#endif
