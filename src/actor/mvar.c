/* mvar.c - MVars: a shared value with a FIFO read/write lock.
 *
 * State, all under the lock of the wait queue q: `readers` (read locks
 * held: readers copy the value out with the lock released, which no
 * writer can change meanwhile), `writer` (the holder's token, 0 when
 * free) and the queue of waiters, readers and writers in arrival order.
 *
 * Invariants (asserted under the lock):
 *  - writer != 0 implies readers == 0: the two locks exclude each other.
 *  - FIFO: a caller takes a lock without queueing only when nobody is
 *    queued; otherwise it queues behind. A release grants from the head:
 *    the head writer once both counts are zero, or the run of readers at
 *    the head while there is no writer. So nobody is overtaken, and a
 *    writer is never starved by a stream of readers.
 *  - A grant is made under the lock, by the releaser, as it pops the node
 *    (writer = the node's token, or readers + 1): the pop is the delivery
 *    (the wait queue's rule, weft/sched.h). A waiter whose wait ended at
 *    the same moment (deadline, cancellation) finds itself popped and
 *    holds the lock: it returns success, and nothing is lost.
 *  - Wake-ups happen after the lock is released, from copies of the
 *    popped nodes' wakers (a node vanishes once its waiter returns).
 *
 * Holders. The write lock's token names its holder: the pid of a process,
 * else the task id of a task, else a per-thread number. A process counts
 * the write locks it holds; one that ends holding some has them released
 * at its death (wa_mvar_release), found by a walk of every MVar.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct weft_mvar {
	weft_waitq_t q;
	uint32_t readers;
	uint8_t writer_kind; /* enum tok_kind of writer */
	uint64_t writer;
	void *value;
	size_t len;
	char name[WEFT_NAME_MAX + 1];
	struct weft_mvar *next, *prev; /* every MVar, under all_lock */
};

enum tok_kind { TOK_NONE = 0, TOK_PROC = 1, TOK_TASK = 2, TOK_THREAD = 3 };

struct tok {
	uint8_t kind;
	uint64_t id;
};

static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct weft_mvar *all;

static _Atomic uint64_t thread_tokens;
static __thread uint64_t thread_token;

static struct tok caller(void)
{
	weft_pid_t pid = weft_proc_self();
	if (pid)
		return (struct tok){TOK_PROC, pid};
	weft_task_t t = weft_self();
	if (t)
		return (struct tok){TOK_TASK, t};
	if (!thread_token)
		thread_token = atomic_fetch_add(&thread_tokens, 1) + 1;
	return (struct tok){TOK_THREAD, thread_token};
}

static inline bool held_by(const weft_mvar_t *mv, struct tok t)
{
	return mv->writer_kind == t.kind && mv->writer == t.id;
}

/* The caller's count of write locks held, when it is a process. */
static void count_held(int d)
{
	struct wa_proc *p = wa_self();
	if (p)
		p->mvars_held += d;
}

int weft_mvar_create(weft_mvar_t **out, const char *name, const void *value, size_t len)
{
	if (!out || (len && !value) || (name && !wa_name_ok(name)))
		return -EINVAL;
	if (len > WEFT_MSG_MAX)
		return -EMSGSIZE;
	weft_mvar_t *mv = calloc(1, sizeof *mv);
	if (!mv)
		return -ENOMEM;
	weft_waitq_init(&mv->q);
	if (len) {
		mv->value = malloc(len);
		if (!mv->value) {
			free(mv);
			return -ENOMEM;
		}
		memcpy(mv->value, value, len);
	}
	mv->len = len;
	pthread_mutex_lock(&all_lock);
	if (name) {
		for (weft_mvar_t *o = all; o; o = o->next)
			if (strcmp(o->name, name) == 0) {
				pthread_mutex_unlock(&all_lock);
				free(mv->value);
				free(mv);
				return -EEXIST;
			}
		strcpy(mv->name, name);
	}
	mv->next = all;
	if (all)
		all->prev = mv;
	all = mv;
	pthread_mutex_unlock(&all_lock);
	*out = mv;
	return 0;
}

int weft_mvar_destroy(weft_mvar_t *mv)
{
	if (!mv)
		return -EINVAL;
	pthread_mutex_lock(&all_lock);
	weft_waitq_lock(&mv->q);
	bool busy = mv->writer_kind != TOK_NONE || mv->readers || mv->q.len;
	weft_waitq_unlock(&mv->q);
	if (busy) {
		pthread_mutex_unlock(&all_lock);
		return -EBUSY;
	}
	if (mv->prev)
		mv->prev->next = mv->next;
	else
		all = mv->next;
	if (mv->next)
		mv->next->prev = mv->prev;
	pthread_mutex_unlock(&all_lock);
	free(mv->value);
	free(mv);
	return 0;
}

weft_mvar_t *weft_mvar_find(const char *name)
{
	if (!wa_name_ok(name))
		return NULL;
	pthread_mutex_lock(&all_lock);
	weft_mvar_t *mv = all;
	while (mv && strcmp(mv->name, name) != 0)
		mv = mv->next;
	pthread_mutex_unlock(&all_lock);
	return mv;
}

/* --------------------------------------------------------------- granting */

/* A waiting caller: the call byte of a step op, read or write, its token,
 * then the queue node (which a releaser reaches; container_of gives the
 * rest). The same layout on a blocking caller's stack and in an op. */
struct mv_wait {
	uint8_t call;
	uint8_t write;
	uint8_t kind;
	uint8_t pad[5];
	weft_waitq_node_t n; /* n.data: the token's id */
};
_Static_assert(sizeof(struct mv_wait) <= sizeof(((weft_op_t *)0)->opaque), "an MVar wait fits an op");

#define MV_WAIT(node) ((struct mv_wait *)((char *)(node)-offsetof(struct mv_wait, n)))

#define MV_BATCH 32

struct wakes {
	weft_waker_t w[MV_BATCH];
	int n;
};

/* Under the lock: grant what the head of the queue may have now, at most
 * MV_BATCH grants (more: the caller wakes these and calls again). True if
 * it stopped at the batch's end with more grants possible. */
static bool grant(weft_mvar_t *mv, struct wakes *wk)
{
	assert(weft__spin_held((_Atomic uint32_t *)&mv->q.lock));
	assert(mv->writer_kind == TOK_NONE || mv->readers == 0);
	while (mv->q.head) {
		struct mv_wait *w = MV_WAIT(mv->q.head);
		if (w->write ? mv->readers || mv->writer_kind : mv->writer_kind != TOK_NONE)
			return false;
		if (wk->n == MV_BATCH)
			return true;
		weft_waitq_node_t *n = weft_waitq_pop(&mv->q);
		if (w->write) {
			mv->writer_kind = w->kind;
			mv->writer = (uint64_t)(uintptr_t)n->data;
		} else {
			mv->readers++;
		}
		n->status = 0;
		wk->w[wk->n++] = n->waker;
	}
	return false;
}

static void wake(struct wakes *wk)
{
	for (int i = 0; i < wk->n; i++)
		weft_unpark(wk->w[i], 0);
	wk->n = 0;
}

/* Take the lock, grant, release, wake, as often as batches need. */
static void regrant(weft_mvar_t *mv)
{
	struct wakes wk = {.n = 0};
	bool more;
	do {
		weft_waitq_lock(&mv->q);
		more = grant(mv, &wk);
		weft_waitq_unlock(&mv->q);
		wake(&wk);
	} while (more);
}

/* -------------------------------------------------------------- the locks */

enum { TAKEN = 0, QUEUED = 1 };

/* Under the lock: take the lock at once (TAKEN), queue w (QUEUED), or an
 * error (-EDEADLK, -EAGAIN for try and a past deadline: the caller maps
 * it). */
static int acquire_locked(weft_mvar_t *mv, struct mv_wait *w, struct tok t, bool may_wait)
{
	if (w->write && held_by(mv, t))
		return -EDEADLK;
	if (!mv->q.head && (w->write ? !mv->readers && mv->writer_kind == TOK_NONE : mv->writer_kind == TOK_NONE)) {
		if (w->write) {
			mv->writer_kind = t.kind;
			mv->writer = t.id;
		} else {
			mv->readers++;
		}
		return TAKEN;
	}
	if (!may_wait)
		return -EAGAIN;
	w->kind = t.kind;
	w->n.data = (void *)(uintptr_t)t.id;
	weft_waitq_push(&mv->q, &w->n);
	return QUEUED;
}

/* Blocking form (coroutines, threads) of taking a read or write lock. */
static int acquire(weft_mvar_t *mv, bool write, weft_time_t deadline, bool try)
{
	struct tok t = caller();
	struct mv_wait w = {.write = write};
	bool past = try || (deadline != WEFT_NEVER && weft_now() >= deadline);
	weft_waitq_lock(&mv->q);
	int r = acquire_locked(mv, &w, t, !past && weft_can_park());
	weft_waitq_unlock(&mv->q);
	if (r == -EAGAIN)
		return try ? -EAGAIN : past ? -ETIMEDOUT : -EPERM;
	if (r < 0)
		return r;
	if (r == QUEUED) {
		int e = weft_park(w.n.waker, deadline);
		if (e != 0 && weft_waitq_remove(&mv->q, &w.n)) {
			regrant(mv); /* leaving may let those behind go (readers behind a writer) */
			return e;
		}
		/* popped: granted (even if the wait ended at that moment) */
	}
	if (write)
		count_held(1);
	return 0;
}

static void release_read(weft_mvar_t *mv)
{
	struct wakes wk = {.n = 0};
	bool more;
	weft_waitq_lock(&mv->q);
	assert(mv->readers > 0);
	mv->readers--;
	more = grant(mv, &wk);
	weft_waitq_unlock(&mv->q);
	wake(&wk);
	if (more)
		regrant(mv);
}

int weft_mvar_lock_until(weft_mvar_t *mv, weft_time_t deadline)
{
	if (!mv)
		return -EINVAL;
	return acquire(mv, true, deadline, false);
}

int weft_mvar_lock(weft_mvar_t *mv)
{
	return weft_mvar_lock_until(mv, WEFT_NEVER);
}

int weft_mvar_try_lock(weft_mvar_t *mv)
{
	if (!mv)
		return -EINVAL;
	return acquire(mv, true, WEFT_NEVER, true);
}

int weft_mvar_unlock(weft_mvar_t *mv)
{
	if (!mv)
		return -EINVAL;
	struct tok t = caller();
	struct wakes wk = {.n = 0};
	weft_waitq_lock(&mv->q);
	if (!held_by(mv, t)) {
		weft_waitq_unlock(&mv->q);
		return -EPERM;
	}
	mv->writer_kind = TOK_NONE;
	mv->writer = 0;
	bool more = grant(mv, &wk);
	weft_waitq_unlock(&mv->q);
	wake(&wk);
	if (more)
		regrant(mv);
	count_held(-1);
	return 0;
}

int weft_mvar_get(weft_mvar_t *mv, void **value, size_t *len)
{
	if (!mv || !value || !len)
		return -EINVAL;
	struct tok t = caller();
	weft_waitq_lock(&mv->q);
	bool mine = held_by(mv, t);
	weft_waitq_unlock(&mv->q);
	if (!mine)
		return -EPERM;
	*value = mv->value; /* the holder's alone until it unlocks */
	*len = mv->len;
	return 0;
}

int weft_mvar_set(weft_mvar_t *mv, const void *value, size_t len)
{
	if (!mv || (len && !value))
		return -EINVAL;
	if (len > WEFT_MSG_MAX)
		return -EMSGSIZE;
	struct tok t = caller();
	weft_waitq_lock(&mv->q);
	bool mine = held_by(mv, t);
	weft_waitq_unlock(&mv->q);
	if (!mine)
		return -EPERM;
	void *v = NULL;
	if (len) {
		v = malloc(len);
		if (!v)
			return -ENOMEM;
		memcpy(v, value, len);
	}
	free(mv->value);
	mv->value = v;
	mv->len = len;
	return 0;
}

int weft_mvar_write(weft_mvar_t *mv, const void *value, size_t len)
{
	if (!mv || (len && !value))
		return -EINVAL;
	if (len > WEFT_MSG_MAX)
		return -EMSGSIZE;
	int e = weft_mvar_lock(mv);
	if (e)
		return e;
	e = weft_mvar_set(mv, value, len);
	int u = weft_mvar_unlock(mv);
	return e ? e : u;
}

ssize_t weft_mvar_waiting(weft_mvar_t *mv)
{
	if (!mv)
		return -EINVAL;
	weft_waitq_lock(&mv->q);
	ssize_t n = (ssize_t)mv->q.len;
	weft_waitq_unlock(&mv->q);
	return n;
}

/* Under the read lock (or the write lock, its own holder): copy out. */
static ssize_t copy_out(weft_mvar_t *mv, void *buf, size_t cap)
{
	size_t n = mv->len < cap ? mv->len : cap;
	if (n)
		memcpy(buf, mv->value, n);
	return (ssize_t)mv->len;
}

ssize_t weft_mvar_read_until(weft_mvar_t *mv, void *buf, size_t cap, weft_time_t deadline)
{
	if (!mv || (cap && !buf))
		return -EINVAL;
	struct tok t = caller();
	weft_waitq_lock(&mv->q);
	bool mine = held_by(mv, t);
	weft_waitq_unlock(&mv->q);
	if (mine) /* the holder reads its own value */
		return copy_out(mv, buf, cap);
	int e = acquire(mv, false, deadline, false);
	if (e)
		return e;
	ssize_t n = copy_out(mv, buf, cap);
	release_read(mv);
	return n;
}

ssize_t weft_mvar_read(weft_mvar_t *mv, void *buf, size_t cap)
{
	return weft_mvar_read_until(mv, buf, cap, WEFT_NEVER);
}

/* ---------------------------------------------------------- step forms */

#define MV_STEP_READ (WEFT_STEP_ID_ACTOR + 4)
#define MV_STEP_LOCK (WEFT_STEP_ID_ACTOR + 5)

/* The stackless path of a read or a lock: 0 granted (the caller copies
 * out and releases, for a read), -EINPROGRESS, or an error. */
static int acquire_step(weft_mvar_t *mv, bool write, weft_time_t deadline, weft_op_t *op, uint8_t call)
{
	int b = weft_step_begin(op, call, mv);
	if (b < 0)
		return b;
	struct mv_wait *w = (struct mv_wait *)op->opaque;
	if (b == 1) { /* the wait ended */
		int e = weft_park_result();
		if (e != 0 && weft_waitq_remove(&mv->q, &w->n)) {
			regrant(mv);
			return e;
		}
		if (write)
			count_held(1);
		return 0;
	}
	struct tok t = caller();
	w->write = write;
	bool past = deadline != WEFT_NEVER && weft_now() >= deadline;
	weft_waitq_lock(&mv->q);
	int r = acquire_locked(mv, w, t, !past);
	weft_waitq_unlock(&mv->q);
	if (r == -EAGAIN)
		return -ETIMEDOUT;
	if (r < 0)
		return r;
	if (r == TAKEN) {
		if (write)
			count_held(1);
		return 0;
	}
	if (deadline != WEFT_NEVER)
		(void)weft_park_deadline(w->n.waker, deadline);
	return weft_step_register(op);
}

int weft_mvar_lock_step(weft_mvar_t *mv, weft_time_t deadline, weft_op_t *op)
{
	if (!mv)
		return -EINVAL;
	if (weft_can_park()) /* coroutines and threads block as the blocking call */
		return acquire(mv, true, deadline, false);
	return acquire_step(mv, true, deadline, op, MV_STEP_LOCK);
}

ssize_t weft_mvar_read_step(weft_mvar_t *mv, void *buf, size_t cap, weft_time_t deadline, weft_op_t *op)
{
	if (!mv || (cap && !buf))
		return -EINVAL;
	if (weft_can_park())
		return weft_mvar_read_until(mv, buf, cap, deadline);
	struct tok t = caller();
	weft_waitq_lock(&mv->q);
	bool mine = held_by(mv, t);
	weft_waitq_unlock(&mv->q);
	if (mine)
		return copy_out(mv, buf, cap);
	int e = acquire_step(mv, false, deadline, op, MV_STEP_READ);
	if (e)
		return e;
	ssize_t n = copy_out(mv, buf, cap);
	release_read(mv);
	return n;
}

/* ------------------------------------------------------ a process's end */

void wa_mvar_release(weft_pid_t pid)
{
	pthread_mutex_lock(&all_lock);
	for (weft_mvar_t *mv = all; mv; mv = mv->next) {
		struct wakes wk = {.n = 0};
		weft_waitq_lock(&mv->q);
		bool more = false;
		if (mv->writer_kind == TOK_PROC && mv->writer == pid) {
			mv->writer_kind = TOK_NONE;
			mv->writer = 0;
			more = grant(mv, &wk);
		}
		weft_waitq_unlock(&mv->q);
		wake(&wk);
		if (more)
			regrant(mv);
	}
	pthread_mutex_unlock(&all_lock);
}
