/* runtime.c - starting, configuring and stopping a runtime; weft_main.
 *
 * Shutdown: weft_runtime_stop refuses new spawns, cancels every live task
 * (their blocking calls return -ECANCELED; a task that never blocks again
 * must finish by itself), waits until every spawned task has finished, then
 * stops and joins the workers and the monitor and frees everything. The
 * task table's memory goes back to the OS, but its slabs stay mapped (a
 * stale waker may still point into them) and are reused by the next runtime
 * of the same index, with ids and epochs that go on from where they were.
 *
 * Lifetime. Calls from outside a runtime's workers - a plain thread or a
 * task of another runtime joining, cancelling, naming or spawning a task of
 * it - may race its stop. Two things make that safe:
 *  - A runtime's struct is never freed. There is one per index (the top
 *    byte of its task ids), made the first time the index is used and
 *    taken again by the next runtime that gets the index, so a pointer to
 *    a runtime, or the runtime an id names, always points to valid memory.
 *    Its permanent fields (index, claimed, live, users, spawning, and the
 *    task table: task.c) carry over; the rest is reset by each start.
 *  - Such a call holds the runtime while it uses it (weft__rt_hold: users++
 *    then a check of `live`, both seq_cst), and destroy clears `live`
 *    (seq_cst) and then waits until `users` is zero before it frees what
 *    the runtime owns. So a holder either sees the runtime live, and keeps
 *    it whole until it lets go, or does not, and touches nothing. A joiner
 *    from outside holds it across its whole wait: stop cancels the task it
 *    waits for, the task ends, the joiner returns and lets go.
 * The index, and the struct with it, goes back to the free ones only once
 * destroy is done; a stale pointer or id may then reach a later runtime
 * that took the same index (documented in sched.h).
 */
#include "internal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sched.h>
#include <unistd.h>

#include "futex.h"

struct weft_runtime *weft__default_rt;
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
struct weft_runtime *weft__live_rts; /* for signal handlers (stats.c) */
/* The struct of each index, once made; written under live_lock. */
static struct weft_runtime *_Atomic rt_by_index[WEFT_MAX_RUNTIMES + 1];

struct weft_runtime *weft__rt_of_id(weft_task_t id)
{
	uint32_t index = (uint32_t)(id >> WEFT_ID_RT_SHIFT);
	if (index == 0)
		return NULL;
	return atomic_load_explicit(&rt_by_index[index], memory_order_acquire);
}

bool weft__rt_hold(struct weft_runtime *rt)
{
	atomic_fetch_add(&rt->users, 1);
	if (atomic_load(&rt->live))
		return true;
	atomic_fetch_sub_explicit(&rt->users, 1, memory_order_release);
	return false;
}

void weft__rt_unhold(struct weft_runtime *rt)
{
	/* release: destroy, which acquires zero, sees everything we did. */
	uint32_t prev = atomic_fetch_sub_explicit(&rt->users, 1, memory_order_release);
	assert(prev > 0);
	(void)prev;
}

weft_runtime_t *weft_runtime_current(void)
{
	weft_worker *w = weft__self_worker;
	if (w)
		return w->rt;
	if (weft__monitor_of) /* running a stuck worker's timers */
		return weft__monitor_of;
	if (weft__sim_mine) /* the owner thread of a sim, between its drives */
		return weft__sim_mine->rt;
	return __atomic_load_n(&weft__default_rt, __ATOMIC_ACQUIRE);
}

int weft_runtime_workers(const weft_runtime_t *rt)
{
	if (!rt)
		return -EINVAL;
	return atomic_load(&((struct weft_runtime *)rt)->live) ? rt->nbase : -ESHUTDOWN;
}

static long env_long(const char *name, long def)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return def;
	char *end;
	long v = strtol(s, &end, 0);
	if (*end == 'k' || *end == 'K')
		v *= 1024, end++;
	else if (*end == 'm' || *end == 'M')
		v *= 1024 * 1024, end++;
	if (*end || v <= 0) {
		fprintf(stderr, "weft: ignoring %s=%s (not a positive number)\n", name, s);
		return def;
	}
	return v;
}

static void count_tasks(struct weft_runtime *rt, uint64_t *sp, uint64_t *fin)
{
	*sp = atomic_load(&rt->thread_spawned);
	*fin = 0;
	int nw = atomic_load(&rt->nworkers);
	for (int i = 0; i < nw; i++) {
		weft_worker *w = rt->workers[i];
		if (w) {
			*sp += atomic_load(&w->st_spawned);
			*fin += atomic_load(&w->st_finished);
		}
	}
}

/* Tasks spawned and not finished. The counters are read one by one while
 * tasks spawn and finish, so a single pass can miss a child spawned after
 * its counter was read whose parent's finish is then counted; the counters
 * only grow, so two passes that agree saw them all at one instant. */
static uint64_t live_tasks(struct weft_runtime *rt)
{
	uint64_t sp, fin, sp2, fin2;
	count_tasks(rt, &sp, &fin);
	for (;;) {
		count_tasks(rt, &sp2, &fin2);
		if (sp2 == sp && fin2 == fin)
			return sp > fin ? sp - fin : 0;
		sp = sp2;
		fin = fin2;
	}
}

int weft_runtime_attach(weft_runtime_t *rt, const weft_runtime_ext_t *key, void *ctx)
{
	if (!rt || !key)
		return -EINVAL;
	if (!atomic_load(&rt->live))
		return -ESHUTDOWN; /* stopped: its lock is destroyed (see "Lifetime") */
	if (unlikely(weft__sim_foreign(rt)))
		return -EPERM; /* a sim is its owner thread's alone (sim.c) */
	int e = 0;
	pthread_mutex_lock(&rt->poller_lock);
	int n = atomic_load_explicit(&rt->next_ext, memory_order_relaxed);
	if (atomic_load(&rt->stopping))
		e = -ESHUTDOWN;
	else if (weft_runtime_attached(rt, key))
		e = -EBUSY;
	else if (n == (int)(sizeof rt->ext_keys / sizeof rt->ext_keys[0]))
		e = -ENOSPC;
	else {
		rt->ext_keys[n] = key;
		rt->ext_ctx[n] = ctx;
		atomic_store_explicit(&rt->next_ext, n + 1, memory_order_release);
	}
	pthread_mutex_unlock(&rt->poller_lock);
	return e;
}

void *weft_runtime_attached(weft_runtime_t *rt, const weft_runtime_ext_t *key)
{
	/* A stopped runtime's slots name contexts its stop destroyed. */
	if (!rt || !key || !atomic_load_explicit(&rt->live, memory_order_acquire))
		return NULL;
	int n = atomic_load_explicit(&rt->next_ext, memory_order_acquire);
	for (int i = 0; i < n; i++)
		if (rt->ext_keys[i] == key)
			return rt->ext_ctx[i];
	return NULL;
}

static void destroy(struct weft_runtime *rt)
{
	/* Calls from outside that hold it finish first (see "Lifetime"). */
	atomic_store(&rt->live, false);
	for (int n = 0; atomic_load_explicit(&rt->users, memory_order_acquire) != 0; n++) {
		if (n < 100)
			sched_yield();
		else
			nanosleep(&(struct timespec){0, 100000}, NULL);
	}
	for (int i = atomic_load(&rt->next_ext) - 1; i >= 0; i--)
		if (rt->ext_keys[i]->destroy)
			rt->ext_keys[i]->destroy(rt->ext_ctx[i]);
	const weft_poller_ops_t *ops = atomic_load(&rt->poller_ops);
	if (ops && ops->destroy)
		ops->destroy(rt->poller_ctx);
	for (int i = 0; i < WEFT_MAX_WORKERS + WEFT_EXTRA_WORKERS; i++) {
		weft_worker *w = rt->workers[i];
		if (!w)
			continue;
		if (w->altstack)
			munmap(w->altstack, 64 * 1024);
		free(w);
	}
	if (rt->stacks)
		weft__stack_pool_destroy(rt->stacks);
	if (rt->slabs)
		weft__task_park_all(rt);
	weft__shards_destroy(rt);
	pthread_mutex_destroy(&rt->poller_lock);
	pthread_mutex_destroy(&rt->gq_lock);
	pthread_mutex_destroy(&rt->idle_lock);
	pthread_mutex_destroy(&rt->slab_lock);
	pthread_mutex_lock(&live_lock);
	rt->claimed = false; /* the index, and this struct, may be taken again */
	pthread_mutex_unlock(&live_lock);
}

int weft_runtime_start(weft_runtime_t **out, const weft_config_t *cfg)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	weft_config_t c = {0};
	if (cfg) {
		long n = weft__sized(cfg, cfg->size, WEFT__CONFIG_V1, sizeof c);
		if (n < 0)
			return (int)n;
		memcpy(&c, cfg, (size_t)n);
	}
	if (c.workers < 0 || c.workers > WEFT_MAX_WORKERS)
		return -EINVAL;
	if (c.stack_size && (c.stack_size < WEFT_STACK_MIN || c.stack_size > WEFT_STACK_MAX))
		return -EINVAL;
	if ((c.sim_flags & ~(unsigned)WEFT_SIM_TRACE) || c.sim_run_ns > WEFT_SEC || c.sim_trace_fd < 0)
		return -EINVAL;
	if (c.sim) {
		/* One worker, which its owner thread becomes while it drives
		 * (sim.c): a thread that is a worker already cannot, and one
		 * thread drives one sim. */
		if (weft__self_worker || weft__monitor_of)
			return -EPERM;
		if (weft__sim_mine)
			return -EBUSY;
		if (c.workers > 1)
			return -EINVAL;
		c.workers = 1;
		c.no_monitor = true;
		c.no_sigquit_dump = true;
	}
	if (c.workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		c.workers = (int)env_long("WEFT_WORKERS", n > 0 ? n : 1);
		if (c.workers > WEFT_MAX_WORKERS)
			c.workers = WEFT_MAX_WORKERS;
	}
	if (!c.stack_size) {
		long s = env_long("WEFT_STACK_SIZE", (long)WEFT_STACK_DEFAULT);
		c.stack_size = s >= (long)WEFT_STACK_MIN && s <= (long)WEFT_STACK_MAX ? (size_t)s : WEFT_STACK_DEFAULT;
	}
	if (!c.stack_cache_bytes)
		c.stack_cache_bytes = (size_t)1 << 20;

	/* An index for its task ids, with the struct that goes with it (see
	 * "Lifetime"): a free one whose last holders have let go, or a new
	 * one. */
	struct weft_runtime *rt = NULL;
	pthread_mutex_lock(&live_lock);
	for (uint32_t k = 1; k <= WEFT_MAX_RUNTIMES && !rt; k++) {
		/* Sims from the top, others from the bottom: a sim then mostly
		 * finds an index only sims have used, whose ids it restarts. */
		uint32_t i = c.sim ? WEFT_MAX_RUNTIMES + 1 - k : k;
		struct weft_runtime *r = atomic_load_explicit(&rt_by_index[i], memory_order_relaxed);
		if (!r) {
			if (posix_memalign((void **)&r, WEFT_CACHELINE, sizeof *r)) {
				pthread_mutex_unlock(&live_lock);
				return -ENOMEM;
			}
			memset(r, 0, sizeof *r);
			r->index = i;
			r->sim_only = true; /* until a runtime that is not a sim takes it */
			atomic_store_explicit(&rt_by_index[i], r, memory_order_release);
		} else if (r->claimed || atomic_load(&r->users) || atomic_load(&r->spawning)) {
			continue;
		}
		r->claimed = true;
		r->sim_only = r->sim_only && c.sim;
		rt = r;
	}
	pthread_mutex_unlock(&live_lock);
	if (!rt)
		return -EAGAIN; /* WEFT_MAX_RUNTIMES running */
	memset(&rt->nbase, 0, sizeof *rt - offsetof(struct weft_runtime, nbase));
	rt->cfg = c;
	rt->nbase = c.workers;
	rt->stack_default = c.stack_size;
	rt->sim = c.sim;
	pthread_mutex_init(&rt->gq_lock, NULL);
	pthread_mutex_init(&rt->idle_lock, NULL);
	pthread_mutex_init(&rt->slab_lock, NULL);
	pthread_mutex_init(&rt->poller_lock, NULL);
	int e = -ENOMEM;
	if (!rt->slabs) { /* the first runtime of this index; later ones keep it */
		void *m = mmap(NULL, sizeof(*rt->slabs) * WEFT_MAX_SLABS, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m == MAP_FAILED)
			goto fail;
		rt->slabs = m;
	}
	if (c.sim) {
		/* Before the shards: their wheels start at the virtual clock. */
		if ((e = weft__sim_create(rt, &c)) != 0)
			goto fail;
		if (rt->sim_only)
			weft__sim_reset_table(rt);
	}
	if ((e = weft__stack_pool_create(&rt->stacks, c.stack_cache_bytes, 16000)) != 0)
		goto fail;
	if ((e = weft__shards_create(rt)) != 0)
		goto fail;
	atomic_store(&rt->nworkers, rt->nbase);
	rt->has_monitor = !c.no_monitor; /* before the workers: they read it */
	if (c.sim) {
		/* Its worker has no thread: the owner drives it (sim.c). */
		if (!(rt->workers[0] = weft__worker_alloc(rt, 0))) {
			e = -ENOMEM;
			goto fail;
		}
		atomic_store(&rt->live, true);
		weft__signals_install(rt); /* the overflow report, for a coroutine of it */
		*out = rt;
		return 0;
	}
	atomic_store(&rt->live, true); /* whole now: calls from outside may hold it */
	for (int i = 0; i < rt->nbase; i++) {
		if ((e = weft__worker_start(rt, i, false)) != 0) {
			atomic_store(&rt->nworkers, i);
			atomic_store(&rt->halt, true);
			for (int j = 0; j < i; j++) {
				atomic_fetch_add(&rt->workers[j]->park_word, 1);
				weft__futex_wake(&rt->workers[j]->park_word, 1);
				pthread_join(rt->workers[j]->thread, NULL);
			}
			goto fail;
		}
	}
	if (rt->has_monitor && weft__monitor_start(rt) == 0)
		rt->monitor_started = true;
	pthread_mutex_lock(&live_lock);
	rt->next_rt = weft__live_rts;
	__atomic_store_n(&weft__live_rts, rt, __ATOMIC_RELEASE);
	if (!weft__default_rt)
		__atomic_store_n(&weft__default_rt, rt, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&live_lock);
	weft__signals_install(rt);
	*out = rt;
	return 0;
fail:;
	struct weft_sim *sm = rt->simst;
	destroy(rt);
	if (sm)
		weft__sim_destroy(sm);
	return e;
}

void weft__cancel_all(struct weft_runtime *rt)
{
	uint32_t n = atomic_load(&rt->bump);
	for (uint32_t s = 0; s < n; s++) {
		weft_task *t = weft__task_at(rt, s);
		if (!t)
			continue;
		int st = atomic_load(&t->run_state);
		if (st == WEFT_RS_DONE || st == WEFT_RS_FREE)
			continue;
		weft_task *r = weft__task_ref(rt, atomic_load(&t->id));
		if (r) {
			weft__task_cancel(r);
			weft__task_unref(r);
		}
	}
}

/* The first half of a stop: make the caller the one that stops rt (0), or
 * say why not. */
static int stop_claim(struct weft_runtime *rt)
{
	if (!rt)
		return -EINVAL;
	if (weft__on_rt(rt))
		return -EDEADLK; /* it would wait for itself */
	if (!atomic_load(&rt->live))
		return -EINVAL; /* stopped already (a struct is never freed: see "Lifetime") */
	if (unlikely(rt->sim) && !weft__sim_ours(rt))
		return -EPERM; /* only its owner thread can run what a stop must run */
	/* Under poller_lock: an attach or a poller install either completes
	 * before this or sees stopping (destroy reads the slots unlocked). */
	pthread_mutex_lock(&rt->poller_lock);
	bool already = atomic_exchange(&rt->stopping, true);
	pthread_mutex_unlock(&rt->poller_lock);
	return already ? -EINVAL : 0; /* already stopping */
}

static int stop_finish(struct weft_runtime *rt);

int weft_runtime_stop(weft_runtime_t *rt)
{
	int e = stop_claim(rt);
	if (e)
		return e;
	return stop_finish(rt);
}

/* The rest of a stop, by the caller that claimed it. 0, or -EDEADLK from a
 * sim whose tasks could not all be ended (it is abandoned: sim.c). */
static int stop_finish(struct weft_runtime *rt)
{
	/* A stop that has begun ends every wait for a stop request (the flag
	 * stays set until a later runtime takes this struct). */
	weft_runtime_request_stop(rt);
	/* Spawns that passed the stopping check before we set it finish first
	 * (seq_cst on both sides: a spawner either sees stopping or is counted). */
	while (atomic_load(&rt->spawning) != 0)
		sched_yield();
	struct weft_sim *sm = rt->simst;
	if (sm && !weft__sim_stop(rt)) { /* cancels and runs what is left, on this thread */
		weft__sim_abandon(rt);
		return -EDEADLK;
	}
	while (!sm && live_tasks(rt) > 0) {
		weft__cancel_all(rt);
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	if (rt->monitor_started)
		weft__monitor_stop(rt); /* first: it may start extra workers */
	atomic_store(&rt->halt, true);
	int nw = atomic_load(&rt->nworkers);
	for (int i = 0; i < nw; i++)
		weft__worker_kick(rt->workers[i]);
	for (int i = 0; i < nw; i++) {
		weft_worker *w = rt->workers[i];
		if (w->joinable)
			pthread_join(w->thread, NULL);
		w->joinable = false;
	}
	weft__signals_remove(rt);
	pthread_mutex_lock(&live_lock);
	for (struct weft_runtime **p = &weft__live_rts; *p; p = &(*p)->next_rt) {
		if (*p == rt) {
			__atomic_store_n(p, rt->next_rt, __ATOMIC_RELEASE);
			break;
		}
	}
	if (weft__default_rt == rt)
		__atomic_store_n(&weft__default_rt, weft__live_rts, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&live_lock);
	destroy(rt);
	if (sm)
		weft__sim_destroy(sm); /* rt may belong to another start by now */
	return 0;
}

int weft_runtime_request_stop(weft_runtime_t *rt)
{
	if (!rt)
		return -EINVAL;
	if (unlikely(weft__sim_foreign(rt)))
		return -EPERM; /* it would end the owner's wait at a moment no seed repeats */
	/* The flag, then the futex word: a waiter that read the word before
	 * this bump sleeps on its old value and returns at once. */
	atomic_store(&rt->stop_requested, true);
	atomic_fetch_add(&rt->stop_request_futex, 1);
	weft__futex_wake(&rt->stop_request_futex, INT32_MAX);
	return 0;
}

int weft_runtime_wait_stop_request_until(weft_runtime_t *rt, weft_time_t deadline)
{
	if (!rt)
		return -EINVAL;
	if (weft__on_rt(rt))
		return -EDEADLK;
	if (unlikely(rt->sim) && weft__sim_ours(rt))
		return weft__sim_wait_stop_request(rt, deadline); /* runs the sim meanwhile */
	if (unlikely(weft__sim_foreign(rt)))
		return -EPERM;
	for (;;) {
		uint32_t f = atomic_load(&rt->stop_request_futex);
		if (atomic_load(&rt->stop_requested))
			return 0;
		struct timespec ts, *rel = NULL;
		if (deadline != WEFT_NEVER) {
			weft_time_t now = weft_now();
			if (now >= deadline)
				return -ETIMEDOUT;
			ts = weft__ts_of(deadline - now);
			rel = &ts;
		}
		weft__futex_wait(&rt->stop_request_futex, f, rel);
	}
}

int weft_runtime_wait_stop_request(weft_runtime_t *rt)
{
	return weft_runtime_wait_stop_request_until(rt, WEFT_NEVER);
}

int weft_main(void *(*fn)(void *), void *arg, const weft_config_t *cfg)
{
	if (!fn)
		return -EINVAL;
	if (!weft_can_park())
		return -EPERM; /* a stackless task cannot wait for fn */
	weft_runtime_t *rt;
	int e = weft_runtime_start(&rt, cfg);
	if (e)
		return e;
	/* Held until we know who stops it: another thread may stop rt (as a
	 * program whose watchdog waits for a stop request does), and then a
	 * later runtime may take its struct - which we must not stop. While we
	 * hold rt its destroy waits for us, so its struct cannot be taken. */
	bool held = weft__rt_hold(rt);
	assert(held); /* nobody else knows rt yet */
	(void)held;
	weft_task_t t;
	e = weft_spawn(&t, fn, arg, &(weft_spawn_opts_t){.name = "main", .runtime = rt});
	void *res = NULL;
	if (!e)
		e = weft__join(t, &res, WEFT_NEVER);
	bool ours = stop_claim(rt) == 0; /* else another thread stops it */
	weft__rt_unhold(rt);
	if (ours)
		(void)stop_finish(rt); /* fn's result is what weft_main reports */
	return e ? e : (int)(intptr_t)res;
}
