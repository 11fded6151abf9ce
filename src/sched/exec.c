/* exec.c - the executor interface (weft/exec.h): the table of executor
 * structs, their serial numbers, and the dispatch to a backend's ops.
 *
 * Pieces
 * ------
 * An executor is a struct in a table that only grows: chunks of 64 structs,
 * never freed, with a free list (as the runtime keeps its structs by
 * index). So a pointer to a destroyed executor stays readable: its state
 * says DEAD (-EINVAL), or, once a create reused the struct, its serial
 * differs from the one in every handle the old executor gave out.
 *
 * The dispatch functions check the executor (magic, state), the handle
 * (its serial) and the options, then make one indirect call through the
 * struct's copy of the ops. Nothing on the spawn path writes shared memory:
 * no reference count, no statistics (docs/exec.md: a shared RMW per spawn
 * would cost more than the indirection's budget). Destroy racing a call
 * from outside the executor's tasks is the caller's mistake (the POSIX
 * rule); destroy racing a spawn from one of its own tasks is seen by the
 * spawn (STOPPING: -ESHUTDOWN) and refused by the backend as well.
 *
 * States (state, under the table's rules):
 *   FREE -> LIVE        weft_exec_create, after every field is written
 *                       (release: a reader that sees LIVE sees the ops)
 *   LIVE -> STOPPING    weft_exec_destroy, before ops->destroy
 *   STOPPING -> LIVE    ops->destroy refused (-EDEADLK, -EPERM)
 *   STOPPING -> DEAD    ops->destroy succeeded; the struct joins the free
 *                       list (DEAD and FREE are one state)
 */
#include <weft/exec.h>
#include <weft/time.h>

#include <assert.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define EXEC_MAGIC 0x77657863u /* "wexc" */
#define EXEC_CHUNK 64

enum { EXEC_DEAD = 0, EXEC_LIVE = 1, EXEC_STOPPING = 2 };

/* What the dispatch reads on every call comes first: one cache line holds
 * magic, state, serial, ctx and the required ops. */
struct weft_exec {
	alignas(64) uint32_t magic;
	_Atomic int state;
	_Atomic uint64_t serial; /* relaxed: a stale caller may read it while a create reuses the struct */
	void *ctx;
	weft_exec_ops_t ops;
	struct weft_exec *next_free; /* under table_mu, while DEAD */
};

struct chunk {
	struct chunk *next;
	struct weft_exec e[EXEC_CHUNK];
};

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static struct chunk *chunks;		 /* under table_mu; kept reachable for ever */
static struct weft_exec *free_execs;	 /* under table_mu */
static _Atomic uint64_t next_serial = 1; /* never repeats (2^64 creates) */

static const weft_exec_spawn_opts_t default_opts = {.size = sizeof(weft_exec_spawn_opts_t)};

/* The ops table of the first version: every field up to sleep_until. */
#define EXEC_OPS_V1 sizeof(weft_exec_ops_t)

static _Thread_local bool (*bound_cancelled)(void *);
static _Thread_local void *bound_ctx;

/* 0 if ex is usable for a call that is not a spawn (LIVE or STOPPING). */
static inline int check(const weft_exec_t *ex)
{
	if (unlikely(!ex || ex->magic != EXEC_MAGIC))
		return -EINVAL;
	return atomic_load_explicit(&ex->state, memory_order_acquire) == EXEC_DEAD ? -EINVAL : 0;
}

/* 0 if ex may spawn (LIVE). */
static inline int check_spawn(const weft_exec_t *ex)
{
	if (unlikely(!ex || ex->magic != EXEC_MAGIC))
		return -EINVAL;
	int s = atomic_load_explicit(&ex->state, memory_order_acquire);
	if (likely(s == EXEC_LIVE))
		return 0;
	return s == EXEC_STOPPING ? -ESHUTDOWN : -EINVAL;
}

/* 0 and ex's id of t, or -EINVAL: t is NONE or of another executor. */
static inline int check_task(const weft_exec_t *ex, weft_exec_task_t t)
{
	return likely(t.exec != 0 && t.exec == atomic_load_explicit(&ex->serial, memory_order_relaxed)) ? 0 : -EINVAL;
}

/* The options the ops get: never NULL. A larger struct of a newer header
 * is accepted when its unknown bytes are zero; its known prefix is ours. */
static inline int norm_opts(const weft_exec_spawn_opts_t *o, const weft_exec_spawn_opts_t **out)
{
	if (likely(!o)) {
		*out = &default_opts;
		return 0;
	}
	long n = weft__sized(o, o->size, sizeof *o, sizeof *o);
	if (n < 0)
		return (int)n;
	*out = o;
	return 0;
}

/* The common tail of every spawn: the handle, or NONE after a failure. */
static inline int spawned(const weft_exec_t *ex, weft_exec_task_t *out, uint64_t id, int r)
{
	if (out)
		*out = r == 0 ? (weft_exec_task_t){id, atomic_load_explicit(&ex->serial, memory_order_relaxed)}
			      : WEFT_EXEC_TASK_NONE;
	return r;
}

/* The common head of every spawn: the executor, the function (fn: given)
 * and the options checked; 0, or the error (spawned() then clears out). */
static inline int spawn_check(const weft_exec_t *ex, bool fn, const weft_exec_spawn_opts_t *opts,
			      const weft_exec_spawn_opts_t **o)
{
	int r = check_spawn(ex);
	if (likely(r == 0))
		r = fn ? norm_opts(opts, o) : -EINVAL;
	return r;
}

__attribute__((hot)) int weft_exec_spawn(weft_exec_t *ex, weft_exec_task_t *out, weft_fn_t fn, void *arg,
					 const weft_exec_spawn_opts_t *opts)
{
	const weft_exec_spawn_opts_t *o;
	int r = spawn_check(ex, fn != NULL, opts, &o);
	if (unlikely(r < 0))
		return spawned(ex, out, 0, r);
	uint64_t id = 0;
	return spawned(ex, out, id, ex->ops.spawn(ex->ctx, out ? &id : NULL, fn, arg, o));
}

__attribute__((hot)) int weft_exec_spawn_step(weft_exec_t *ex, weft_exec_task_t *out, weft_step_fn_t step, void *state,
					      const weft_exec_spawn_opts_t *opts)
{
	const weft_exec_spawn_opts_t *o;
	int r = spawn_check(ex, step != NULL, opts, &o);
	if (likely(r == 0) && !ex->ops.spawn_step)
		r = -ENOTSUP;
	if (unlikely(r < 0))
		return spawned(ex, out, 0, r);
	uint64_t id = 0;
	return spawned(ex, out, id, ex->ops.spawn_step(ex->ctx, out ? &id : NULL, step, state, o));
}

int weft_exec_spawn_blocking(weft_exec_t *ex, weft_exec_task_t *out, weft_fn_t fn, void *arg,
			     const weft_exec_spawn_opts_t *opts)
{
	const weft_exec_spawn_opts_t *o;
	int r = spawn_check(ex, fn != NULL, opts, &o);
	if (unlikely(r < 0))
		return spawned(ex, out, 0, r);
	uint64_t id = 0;
	if (ex->ops.spawn_blocking)
		r = ex->ops.spawn_blocking(ex->ctx, out ? &id : NULL, fn, arg, o);
	else
		r = ex->ops.spawn(ex->ctx, out ? &id : NULL, fn, arg, o);
	return spawned(ex, out, id, r);
}

/* The default spawn_at: a task that sleeps the backend's way until `at`,
 * then runs fn unless it was cancelled meanwhile. The cell is the task's
 * and freed by it. The backend's ctx must outlive its tasks (a backend
 * whose destroy does not wait for them writes its own spawn_at). */
struct at_cell {
	weft_fn_t fn;
	void *arg;
	weft_time_t at;
	int (*sleep_until)(void *ctx, weft_time_t deadline);
	void *ctx;
};

static void *at_main(void *a)
{
	struct at_cell c = *(struct at_cell *)a;
	free(a);
	int r = c.sleep_until ? c.sleep_until(c.ctx, c.at) : weft_sleep_until(c.at);
	if (r == -ECANCELED || weft_exec_cancelled())
		return (void *)(intptr_t)-ECANCELED;
	return c.fn(c.arg);
}

int weft_exec_spawn_at(weft_exec_t *ex, weft_exec_task_t *out, weft_time_t at, weft_fn_t fn, void *arg,
		       const weft_exec_spawn_opts_t *opts)
{
	const weft_exec_spawn_opts_t *o;
	int r = spawn_check(ex, fn != NULL, opts, &o);
	if (unlikely(r < 0))
		return spawned(ex, out, 0, r);
	uint64_t id = 0;
	if (ex->ops.spawn_at)
		return spawned(ex, out, id, ex->ops.spawn_at(ex->ctx, out ? &id : NULL, at, fn, arg, o));
	struct at_cell *c = malloc(sizeof *c);
	if (!c)
		return spawned(ex, out, 0, -ENOMEM);
	*c = (struct at_cell){fn, arg, at, ex->ops.sleep_until, ex->ctx};
	r = ex->ops.spawn(ex->ctx, out ? &id : NULL, at_main, c, o);
	if (r < 0)
		free(c);
	return spawned(ex, out, id, r);
}

__attribute__((hot)) int weft_exec_wait_until(weft_exec_t *ex, weft_exec_task_t t, void **result, weft_time_t deadline)
{
	int r = check(ex);
	if (likely(r == 0))
		r = check_task(ex, t);
	if (unlikely(r < 0))
		return r;
	return ex->ops.wait(ex->ctx, t.id, result, deadline, NULL);
}

int weft_exec_wait(weft_exec_t *ex, weft_exec_task_t t, void **result)
{
	return weft_exec_wait_until(ex, t, result, WEFT_NEVER);
}

int weft_exec_wait_step(weft_exec_t *ex, weft_exec_task_t t, void **result, weft_time_t deadline, weft_op_t *op)
{
	int r = check(ex);
	if (r == 0)
		r = check_task(ex, t);
	if (r == 0 && !op)
		r = -EINVAL;
	if (r < 0)
		return r;
	return ex->ops.wait(ex->ctx, t.id, result, deadline, op);
}

int weft_exec_detach(weft_exec_t *ex, weft_exec_task_t t)
{
	int r = check(ex);
	if (r == 0)
		r = check_task(ex, t);
	return r < 0 ? r : ex->ops.detach(ex->ctx, t.id);
}

int weft_exec_cancel(weft_exec_t *ex, weft_exec_task_t t)
{
	int r = check(ex);
	if (r == 0)
		r = check_task(ex, t);
	if (r < 0)
		return r;
	return ex->ops.cancel ? ex->ops.cancel(ex->ctx, t.id) : -ENOTSUP;
}

bool weft_exec_cancelled(void)
{
	if (weft_self())
		return weft_cancelled();
	return bound_cancelled ? bound_cancelled(bound_ctx) : false;
}

void weft_exec_bind_cancel(bool (*cancelled)(void *ctx), void *ctx)
{
	bound_cancelled = cancelled;
	bound_ctx = cancelled ? ctx : NULL;
}

weft_time_t weft_exec_now(const weft_exec_t *ex)
{
	int r = check(ex);
	if (r < 0)
		return r;
	return ex->ops.now ? ex->ops.now(ex->ctx) : weft_now();
}

int weft_exec_sleep_until(weft_exec_t *ex, weft_time_t deadline)
{
	int r = check(ex);
	if (r < 0)
		return r;
	return ex->ops.sleep_until ? ex->ops.sleep_until(ex->ctx, deadline) : weft_sleep_until(deadline);
}

int weft_exec_sleep(weft_exec_t *ex, weft_time_t ns)
{
	weft_time_t now = weft_exec_now(ex);
	if (now < 0)
		return (int)now;
	if (ns < 0)
		ns = 0;
	return weft_exec_sleep_until(ex, ns > WEFT_NEVER - now ? WEFT_NEVER : now + ns);
}

int weft_exec_caps(const weft_exec_t *ex)
{
	int r = check(ex);
	return r < 0 ? r : (int)ex->ops.caps;
}

void *weft_exec_ctx(const weft_exec_t *ex, const char *name)
{
	return check(ex) == 0 && name && ex->ops.name == name ? ex->ctx : NULL;
}

const char *weft_exec_name(const weft_exec_t *ex)
{
	return check(ex) < 0 ? "invalid" : ex->ops.name;
}

int weft_exec_create(weft_exec_t **out, const weft_exec_ops_t *ops, void *ctx)
{
	if (out)
		*out = NULL;
	if (!out || !ops)
		return -EINVAL;
	long n = weft__sized(ops, ops->size, EXEC_OPS_V1, sizeof *ops);
	if (n < 0)
		return (int)n;
	if (!ops->name || !ops->spawn || !ops->wait || !ops->detach || !ops->destroy)
		return -EINVAL;
	pthread_mutex_lock(&table_mu);
	if (!free_execs) {
		struct chunk *c = aligned_alloc(64, sizeof *c);
		if (!c) {
			pthread_mutex_unlock(&table_mu);
			return -ENOMEM;
		}
		memset(c, 0, sizeof *c);
		c->next = chunks;
		chunks = c;
		for (int i = EXEC_CHUNK - 1; i >= 0; i--) {
			c->e[i].magic = EXEC_MAGIC;
			c->e[i].next_free = free_execs;
			free_execs = &c->e[i];
		}
	}
	weft_exec_t *ex = free_execs;
	free_execs = ex->next_free;
	pthread_mutex_unlock(&table_mu);
	assert(ex->magic == EXEC_MAGIC && atomic_load(&ex->state) == EXEC_DEAD);
	ex->ops = *ops;
	ex->ops.size = sizeof ex->ops;
	ex->ctx = ctx;
	atomic_store_explicit(&ex->serial, atomic_fetch_add_explicit(&next_serial, 1, memory_order_relaxed),
			      memory_order_relaxed);
	ex->next_free = NULL;
	atomic_store_explicit(&ex->state, EXEC_LIVE, memory_order_release);
	*out = ex;
	return 0;
}

int weft_exec_destroy(weft_exec_t *ex)
{
	if (!ex || ex->magic != EXEC_MAGIC)
		return -EINVAL;
	int expect = EXEC_LIVE;
	if (!atomic_compare_exchange_strong(&ex->state, &expect, EXEC_STOPPING))
		return expect == EXEC_STOPPING ? -EBUSY : -EINVAL; /* being destroyed; destroyed already */
	int r = ex->ops.destroy(ex->ctx);
	if (r < 0) {
		atomic_store(&ex->state, EXEC_LIVE); /* refused: still usable */
		return r;
	}
	pthread_mutex_lock(&table_mu);
	atomic_store(&ex->state, EXEC_DEAD);
	ex->ctx = NULL;
	ex->next_free = free_execs;
	free_execs = ex;
	pthread_mutex_unlock(&table_mu);
	return 0;
}
