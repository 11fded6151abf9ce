/* records.h - task records of the executors whose tasks are not weft tasks
 * (threads.c, uv.c): the table, ids with generations, the handle's states,
 * the wait for a task's end in each form, detach, cancel and its flag, and
 * the timer list of spawn_at. The design comment is in records.c. */
#ifndef WEFT_EXEC_RECORDS_H
#define WEFT_EXEC_RECORDS_H

#include <weft/exec.h>

#include <pthread.h>
#include <stdatomic.h>

/* How far a task has got (state, under the table's mu). Only forward. */
enum {
	WEFT__REC_INBOX,   /* libuv: a spawn the loop has not taken yet */
	WEFT__REC_TIMER,   /* spawn_at: in the table's timer list until its time */
	WEFT__REC_QUEUED,  /* handed to the pool (the tpool's FIFO, uv_queue_work) */
	WEFT__REC_RUNNING, /* a pool thread runs fn */
	WEFT__REC_ENDING,  /* taken back by a cancel: to be completed -ECANCELED, outside mu */
	WEFT__REC_DONE	   /* the result is published */
};

/* The handle's state (handle, under mu). */
enum {
	WEFT__H_LIVE,	  /* may be waited for or detached */
	WEFT__H_DETACHED, /* given up (or out == NULL at spawn) */
	WEFT__H_WAITING,  /* a wait is in progress */
	WEFT__H_GONE	  /* a wait took the result */
};

typedef struct weft__recs weft__recs;

/* The first member of a backend's record struct. */
typedef struct weft__rec {
	weft__recs *tab;
	weft_fn_t fn;
	void *arg;
	void *result;		 /* DONE: fn's, or -ECANCELED / -ENOMEM for a task that never ran */
	weft_time_t at;		 /* TIMER: when */
	struct weft__rec *next;	 /* the free list, the timer list, weft__recs_cancel_all's own */
	uint32_t gen, slot;	 /* the id is gen << 32 | slot */
	int state, handle, refs; /* under mu; refs: the runner's and the handle's */
	bool used;		 /* under mu: not on the free list */
	_Atomic bool cancelled;	 /* relaxed: a flag that fn polls, no data hangs on it */
	weft_waitq_t q;		 /* the waiter */
} weft__rec;

struct weft__recs {
	pthread_mutex_t mu;  /* the lock of every record of the table, and of the backend's own lists */
	pthread_cond_t idle; /* live reached 0 while stopping (CLOCK_MONOTONIC: backends may time waits on mu) */
	size_t size;	     /* bytes of the backend's record struct */
	char **chunks;	     /* under mu */
	uint32_t nchunks, cap;
	weft__rec *free;
	weft__rec *timers; /* TIMER records, sorted by at */
	uint64_t live;	   /* records whose runner has not let go */
	bool stopping;	   /* set by the backend's destroy: starts fail with -ESHUTDOWN */
};

/* A table of records of `size` bytes (the backend's struct, whose first
 * member is a weft__rec). */
void weft__recs_init(weft__recs *t, size_t size);
/* Free the records (every one has ended and been let go). */
void weft__recs_fini(weft__recs *t);

/* Under mu: the record of id, or NULL (a stale or made-up id). */
weft__rec *weft__recs_lookup(weft__recs *t, uint64_t id);
/* Under mu: a record for fn(arg), counted live, with the runner's reference
 * and (id non-NULL) the handle's; *id gets its id. -ESHUTDOWN (stopping),
 * -ENOMEM. The backend then sets its state. */
int weft__recs_start(weft__recs *t, uint64_t *id, weft_fn_t fn, void *arg, weft__rec **out);
/* Under mu: undo weft__recs_start for a record that never got anywhere. */
void weft__recs_abandon(weft__recs *t, weft__rec *r);

/* Under mu: put r in the timer list for `at` (TIMER); true if it is the
 * list's new head (the timer must be re-armed). */
bool weft__recs_timer_add(weft__recs *t, weft__rec *r, weft_time_t at);
/* Under mu: take the head of the timer list if its time is <= now, else
 * NULL. The record stays TIMER: the caller moves it on. */
weft__rec *weft__recs_timer_due(weft__recs *t, weft_time_t now);

/* On a pool thread: run r's fn (unless r was cancelled before it started:
 * then the result is -ECANCELED), with weft_exec_cancelled() reading r's
 * flag, and complete r. The runner's reference stays. */
void weft__rec_run(weft__rec *r);
/* Without mu: r has ended with `result`: publish it (DONE) and wake the
 * waiter. The runner's reference stays. */
void weft__rec_complete(weft__rec *r, void *result);
/* Without mu: drop the runner's reference (r may be reused from then on).
 * True if that was the last live record of a stopping table. */
bool weft__rec_release(weft__rec *r);

/* weft_exec_wait's op (weft/exec.h). refuse: 0, or the error to return
 * where the wait would have to block (libuv's loop thread: -EDEADLK). */
int weft__recs_wait(weft__recs *t, uint64_t id, void **result, weft_time_t deadline, weft_op_t *op, int refuse);
/* weft_exec_detach's op. */
int weft__recs_detach(weft__recs *t, uint64_t id);

/* What a backend's take-back did with a record that has not run (called
 * under mu, for INBOX and QUEUED records; TIMER ones the table takes out of
 * its list itself). */
enum {
	WEFT__TAKE_NONE,     /* it may still run: the flag stays for fn to see */
	WEFT__TAKE_OUT,	     /* out of everything: complete it -ECANCELED, release the runner's reference */
	WEFT__TAKE_CANCELLED /* it will never run, but the pool still holds it: complete it -ECANCELED only */
};
typedef int (*weft__take_fn)(void *ctx, weft__rec *r);
/* weft_exec_cancel's op: set the flag and take r back if it has not run. */
int weft__recs_cancel(weft__recs *t, uint64_t id, weft__take_fn take, void *ctx);
/* Without mu, once stopping is set: take back every record that has not
 * run (they end with -ECANCELED). */
void weft__recs_cancel_all(weft__recs *t, weft__take_fn take, void *ctx);
/* Without mu, once stopping is set: wait until no record is live. */
void weft__recs_wait_idle(weft__recs *t);
/* Whether the calling thread is running a task of t. */
bool weft__recs_own_task(const weft__recs *t);

#endif
