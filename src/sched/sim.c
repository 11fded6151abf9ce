/* sim.c - the simulation mode: a runtime whose one worker is driven by its
 * owner thread, choosing the next task with a seeded PRNG, on a virtual
 * clock (docs/scheduler.md, "Simulation"; weft/sched.h for the contract).
 *
 * The pieces
 * ----------
 * A sim runtime is weft_runtime_start with cfg.sim: one worker struct and
 * no thread, no monitor. The thread that started it is its owner
 * (weft__sim_mine, thread-local). The owner becomes the worker while it
 * drives (weft__sim_drive): weft__self_worker points to the worker, so
 * tasks run exactly as on a worker thread (run_task in worker.c,
 * unchanged), and everything they make ready goes where it goes on any
 * worker - the next-task slot, the ring, the global queue. Before each
 * pick the drive sweeps those queues, in their own order, into `ready`,
 * and picks one of them uniformly with the schedule's PRNG. So no path
 * that makes a task ready changes; the sim only decides who runs.
 *
 * Who drives: weft_sim_run; every plain-thread wait of the owner (park.c's
 * park_thread: weft_join, weft_chan_recv, weft_sleep... from the owner),
 * until the wait ends; weft_yield on the owner (one run); a stop (cancel
 * and run until no task is left); the wait for a stop request.
 *
 * Time. sm->now is the clock; weft_now() returns it on the owner thread
 * (error.c), so every deadline, the timer wheel and the statistics run on
 * it there. It moves two ways: after each task run by [0, run_ns) from the
 * PRNG, and, when nothing is ready, straight to the next timer. The wheel
 * is the normal one; timers_run hands each run of equal-tick fires to
 * weft__sim_shuffle_fires, which orders them from the PRNG.
 *
 * Invariants (asserted below):
 *  - Only the owner thread touches the runtime: the drive runs on it
 *    (sm == weft__sim_mine), and worker.c, task.c and timer.c refuse or
 *    abort on any other thread (weft__sim_ours). One thread, so the
 *    schedule depends on nothing but the seed and the program.
 *  - The drive is never re-entered: a timer function that waits (it must
 *    not) gets -EDEADLK rather than a second drive on the same stack.
 *  - A ready task is in exactly one place: in `ready`, or in one of the
 *    queues (which every sweep empties); it is RUNNABLE either way.
 *  - The clock never goes back.
 *
 * Deadlock: nothing ready, no timer pending, and the wait that drives has
 * no deadline: nothing in the closed world can make a task ready. The
 * drive returns -EDEADLK; the wait reports it (seed, clock, task dump) and
 * returns -EDEADLK to its caller.
 */
#include "internal.h"

#include <assert.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__thread struct weft_sim *weft__sim_mine __attribute__((tls_model("initial-exec")));

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull
#define CLOCK_START ((weft_time_t)1000000000000) /* 10^12 ns: far from 0 and from the real clock */
#define RUN_NS_DEFAULT 2000

/* What the hash folds, each a tag word then a value word. */
enum { H_RUN = 1, H_ACTION, H_TIME, H_POLL, H_FIRE, H_NOTE };

static void fold(struct weft_sim *sm, uint64_t tag, uint64_t v)
{
	sm->hash = (sm->hash ^ tag) * FNV_PRIME;
	sm->hash = (sm->hash ^ v) * FNV_PRIME;
}

static uint64_t sim_rand(struct weft_sim *sm)
{
	return weft__rand(&sm->rng);
}

static uint64_t env_seed(bool *set)
{
	const char *s = getenv("WEFT_SIM_SEED");
	*set = false;
	if (!s || !*s)
		return 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 0);
	if (*end) {
		fprintf(stderr, "weft: ignoring WEFT_SIM_SEED=%s (not a number)\n", s);
		return 0;
	}
	*set = true;
	return v;
}

int weft__sim_create(struct weft_runtime *rt, const weft_config_t *c)
{
	assert(c->sim && !weft__sim_mine && !weft__self_worker);
	struct weft_sim *sm = calloc(1, sizeof *sm);
	if (!sm)
		return -ENOMEM;
	bool set;
	uint64_t seed = env_seed(&set);
	sm->seed = set ? seed : c->sim_seed ? c->sim_seed : 1;
	sm->rng = weft__mix64(sm->seed ^ 0x5eedc10c);
	if (!sm->rng)
		sm->rng = 1;
	static _Atomic uint64_t next_id = 1;
	sm->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
	sm->rt = rt;
	sm->hash = FNV_OFFSET;
	sm->now = CLOCK_START + (weft_time_t)(sim_rand(sm) % (uint64_t)WEFT_MSEC);
	sm->run_ns = c->sim_run_ns == 0 ? RUN_NS_DEFAULT : c->sim_run_ns < 0 ? 0 : c->sim_run_ns;
	const char *tr = getenv("WEFT_SIM_TRACE");
	bool trace = (c->sim_flags & WEFT_SIM_TRACE) || (tr && *tr && strcmp(tr, "0") != 0);
	sm->trace_fd = !trace ? -1 : c->sim_trace_fd > 0 ? c->sim_trace_fd : STDERR_FILENO;
	/* The modules' randomness on this thread (select's case order) is
	 * the sim's from now on. */
	weft__trand_seed(sm->seed ^ 0x5e1ec7);
	rt->simst = sm;
	weft__sim_mine = sm;
	return 0;
}

void weft__sim_destroy(struct weft_sim *sm)
{
	assert(!sm->driving);
	if (weft__sim_mine == sm)
		weft__sim_mine = NULL;
	free(sm->ready);
	free(sm);
}

void weft__sim_reset_table(struct weft_runtime *rt)
{
	/* Only sims have used this index, and the last one's destroy gave
	 * every record page back zeroed (weft__task_park_all): ids and
	 * epochs may start again from the beginning, as in a fresh process.
	 * Nobody else holds the runtime yet (it is being started). */
	assert(rt->sim_only && rt->claimed && !atomic_load(&rt->live));
	uint32_t n = atomic_load(&rt->nslabs), rpp = 4096 / sizeof(weft_task);
	for (uint32_t si = 0; si < n; si++) {
		weft_task *slab = atomic_load(&rt->slabs[si]);
		memset(weft__slab_released(slab), 0, WEFT_SLAB_RWORDS * sizeof(uint64_t));
		memset(weft__slab_floors(slab), 0, WEFT_SLAB_RPAGES * sizeof(weft_page_floor_t));
		for (uint32_t j = 0; j < WEFT_SLAB_TASKS; j += rpp)
			assert(atomic_load_explicit(&slab[j].refs, memory_order_relaxed) == 0);
	}
	rt->nreleased = 0;
	atomic_store(&rt->bump, 0);
}

/* ------------------------------------------------------------ the drive */

static void ready_push(struct weft_sim *sm, weft_task *t)
{
	assert(WEFT_RS_STATE(atomic_load_explicit(&t->run_state, memory_order_relaxed)) == WEFT_RS_RUNNABLE);
	if (sm->nready == sm->ready_cap) {
		size_t cap = sm->ready_cap ? 2 * sm->ready_cap : 256;
		weft_task **r = realloc(sm->ready, cap * sizeof *r);
		if (!r) {
			fprintf(stderr, "weft: sim seed %#llx: out of memory for the ready set\n",
				(unsigned long long)sm->seed);
			abort();
		}
		sm->ready = r;
		sm->ready_cap = cap;
	}
	sm->ready[sm->nready++] = t;
}

/* Everything made ready since the last sweep, in queue order. */
static void sweep(struct weft_sim *sm, weft_worker *w)
{
	weft_task *t;
	while ((t = weft__runq_get(w)) != NULL)
		ready_push(sm, t);
	while ((t = weft__gq_get(sm->rt, w, 1)) != NULL)
		ready_push(sm, t);
	assert(weft__runq_empty(w) && atomic_load_explicit(&sm->rt->gq_len, memory_order_relaxed) == 0);
}

static uint64_t live_tasks(struct weft_runtime *rt)
{
	weft_worker *w = rt->workers[0];
	uint64_t sp = atomic_load_explicit(&rt->thread_spawned, memory_order_relaxed) +
		      atomic_load_explicit(&w->st_spawned, memory_order_relaxed);
	uint64_t fin = atomic_load_explicit(&w->st_finished, memory_order_relaxed);
	assert(sp >= fin);
	return sp - fin;
}

static const char *action_name(int a)
{
	static const char *const names[] = {"none", "yield", "park", "exit"};
	return a >= 0 && a <= WEFT_ACT_EXIT ? names[a] : "?";
}

static void trace_step(struct weft_sim *sm, uint64_t id, const char *name, int action)
{
	char line[160];
	int n = snprintf(line, sizeof line, "sim %#llx step %llu t=%lld task %#llx '%s' %s\n",
			 (unsigned long long)sm->seed, (unsigned long long)sm->steps, (long long)sm->now,
			 (unsigned long long)id, name, action_name(action));
	if (n > 0 && write(sm->trace_fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0)
		sm->trace_fd = -1; /* a trace that cannot be written is dropped, not retried */
}

static void advance(struct weft_sim *sm, weft_time_t to)
{
	if (to > sm->now)
		sm->now = to;
}

int weft__sim_drive(struct weft_sim *sm, bool (*done)(void *), void *arg, weft_time_t deadline)
{
	assert(sm == weft__sim_mine); /* the owner thread */
	if (sm->driving)
		return -EDEADLK; /* a timer function waits: nothing else can run meanwhile */
	struct weft_runtime *rt = sm->rt;
	weft_worker *w = rt->workers[0];
	assert(weft__self_worker == NULL && w->cur == NULL);
	sm->driving = true;
	weft__self_worker = w;
#ifdef WEFT_TSAN
	w->tsan_fiber = __tsan_get_current_fiber();
#endif
	stack_t old_ss;
	bool ss = false;
	if (w->altstack) {
		/* The stack-overflow report runs on it (monitor.c, on_segv). */
		stack_t s = {.ss_sp = w->altstack, .ss_size = 64 * 1024, .ss_flags = 0};
		ss = sigaltstack(&s, &old_ss) == 0;
	}
	int r;
	for (;;) {
		if (done(arg)) {
			r = 0;
			break;
		}
		sweep(sm, w);
		size_t fired = weft__timers_poll(w, false);
		if (fired) {
			fold(sm, H_FIRE, fired);
			sweep(sm, w);
		}
		if (atomic_load_explicit(&rt->poller_ops, memory_order_relaxed) &&
		    (sm->nready == 0 || sm->steps % WEFT_GLOBAL_CHECK == 0)) {
			size_t before = sm->nready;
			weft__poll_once(w);
			sweep(sm, w);
			if (sm->nready != before)
				fold(sm, H_POLL, sm->nready - before);
		}
		if (sm->nready == 0) {
			weft_time_t next = weft__timers_next_deadline(rt);
			if (next == WEFT_NEVER && deadline == WEFT_NEVER) {
				r = -EDEADLK;
				break;
			}
			if (next <= deadline) {
				/* A timer is due no later than the caller's deadline: its
				 * tick comes at once. (The next expiry is exact in the
				 * wheel's lowest level, a lower bound above it; reaching
				 * a bound cascades, and the loop looks again.) */
				advance(sm, next);
				fold(sm, H_TIME, (uint64_t)sm->now);
				continue;
			}
			advance(sm, deadline);
			r = -ETIMEDOUT;
			break;
		}
		if (sm->now >= deadline) {
			r = -ETIMEDOUT; /* runs passed it, with tasks still ready */
			break;
		}
		size_t k = (size_t)(sim_rand(sm) % sm->nready);
		weft_task *t = sm->ready[k];
		sm->ready[k] = sm->ready[--sm->nready];
		uint64_t id = atomic_load_explicit(&t->id, memory_order_relaxed);
		char name[WEFT_NAME_LEN] = "";
		if (unlikely(sm->trace_fd >= 0)) {
			weft_task_aux *x = atomic_load_explicit(weft__task_auxp(t), memory_order_relaxed);
			if (x)
				memcpy(name, x->name, sizeof name - 1);
		}
		fold(sm, H_RUN, id);
		int action = weft__run_task(w, t); /* t may be freed now (an exit) */
		fold(sm, H_ACTION, (uint64_t)action);
		if (unlikely(sm->trace_fd >= 0))
			trace_step(sm, id, name, action);
		sm->steps++;
		weft_time_t before = sm->now;
		if (sm->run_ns > 0) {
			/* Saturating: a sleep to near WEFT_NEVER put the clock there. */
			weft_time_t d = (weft_time_t)(sim_rand(sm) % (uint64_t)sm->run_ns);
			sm->now = d > WEFT_NEVER - 1 - sm->now ? WEFT_NEVER - 1 : sm->now + d;
		}
		assert(sm->now >= before);
		(void)before;
	}
	if (ss)
		sigaltstack(&old_ss, NULL);
	assert(w->cur == NULL);
	weft__self_worker = NULL;
	sm->driving = false;
	return r;
}

static void report_deadlock(struct weft_sim *sm, const char *where)
{
	sm->deadlocks++;
	fprintf(stderr,
		"weft: sim seed %#llx: nothing can run at t=%lld (%s): %llu tasks wait, no timer is pending "
		"(replay: WEFT_SIM_SEED=%#llx)\n",
		(unsigned long long)sm->seed, (long long)sm->now, where, (unsigned long long)live_tasks(sm->rt),
		(unsigned long long)sm->seed);
	weft_task_dump(sm->rt, STDERR_FILENO);
}

static bool parker_left_parked(void *arg)
{
	return WEFT_PS_PHASE(atomic_load((_Atomic uint64_t *)arg)) != WEFT_PH_PARKED;
}

int weft__sim_wait(_Atomic uint64_t *state, weft_time_t deadline)
{
	struct weft_sim *sm = weft__sim_mine;
	int r = weft__sim_drive(sm, parker_left_parked, (void *)state, deadline);
	if (r == -EDEADLK && !sm->driving)
		report_deadlock(sm, "a wait of the owner thread");
	return r;
}

static bool one_more_step(void *arg)
{
	struct weft_sim *sm = weft__sim_mine;
	return sm->steps != *(uint64_t *)arg;
}

void weft__sim_yield(void)
{
	struct weft_sim *sm = weft__sim_mine;
	uint64_t steps = sm->steps;
	(void)weft__sim_drive(sm, one_more_step, &steps, WEFT_NEVER); /* nothing to run: a yield returns anyway */
}

static bool no_live_task(void *arg)
{
	return live_tasks(arg) == 0;
}

bool weft__sim_stop(struct weft_runtime *rt)
{
	struct weft_sim *sm = rt->simst;
	assert(sm == weft__sim_mine && !sm->driving);
	/* As a normal stop: cancel what is live, let it run, again while any
	 * is left (a cancelled task may spawn). Tasks that wait uncancellably
	 * on each other end nothing: after two rounds that leave as many
	 * tasks as before, the stop gives up on them. */
	uint64_t before = live_tasks(rt);
	for (int stuck = 0; before > 0;) {
		weft__cancel_all(rt);
		if (weft__sim_drive(sm, no_live_task, rt, WEFT_NEVER) == 0)
			return true;
		uint64_t n = live_tasks(rt);
		stuck = n < before ? 0 : stuck + 1;
		if (stuck == 2) {
			report_deadlock(sm, "stop: the tasks left wait uncancellably; the runtime is abandoned");
			return false;
		}
		before = n;
	}
	return true;
}

void weft__sim_abandon(struct weft_runtime *rt)
{
	/* Its tasks still hold stacks and records: nothing is freed, and the
	 * index stays claimed, so no later runtime takes what they hold.
	 * Calls on it fail from now on (not live); its owner may start
	 * another sim. */
	assert(rt->simst == weft__sim_mine && !rt->simst->driving);
	atomic_store(&rt->live, false);
	weft__signals_remove(rt);
	weft__sim_mine = NULL;
}

static bool stop_requested(void *arg)
{
	return atomic_load(&((struct weft_runtime *)arg)->stop_requested);
}

int weft__sim_wait_stop_request(struct weft_runtime *rt, weft_time_t deadline)
{
	struct weft_sim *sm = rt->simst;
	int r = weft__sim_drive(sm, stop_requested, rt, deadline);
	if (r == -EDEADLK && !sm->driving)
		report_deadlock(sm, "a wait for a stop request");
	return r;
}

void weft__sim_leak(struct weft_runtime *rt, const char *what)
{
	struct weft_sim *sm = rt->simst;
	fprintf(stderr,
		"weft: sim seed %#llx: %s, not its owner: the simulation cannot repeat (replay: WEFT_SIM_SEED=%#llx)\n",
		sm ? (unsigned long long)sm->seed : 0ull, what, sm ? (unsigned long long)sm->seed : 0ull);
	abort();
}

void weft__sim_shuffle_fires(struct weft_runtime *rt, weft_tnode_t **list)
{
	struct weft_sim *sm = rt->simst;
	assert(sm == weft__sim_mine && sm->driving);
	/* Each run of equal expiries, in place: a Fisher-Yates shuffle of
	 * the run's nodes, by swapping their places in the list. */
	weft_tnode_t **link = list;
	while (*link) {
		weft_tnode_t *first = *link;
		size_t n = 0;
		for (weft_tnode_t *x = first; x && x->expiry == first->expiry; x = x->next)
			n++;
		for (size_t i = n; i > 1; i--) {
			/* Move the j-th of the run's first i nodes to position i - 1. */
			size_t j = (size_t)(sim_rand(sm) % i);
			if (j == i - 1)
				continue;
			weft_tnode_t **pj = link, **pl = link;
			for (size_t a = 0; a < j; a++)
				pj = &(*pj)->next;
			for (size_t a = 0; a < i - 1; a++)
				pl = &(*pl)->next;
			weft_tnode_t *nj = *pj, *nl = *pl;
			/* Swap nj (earlier) and nl (later) in the list. */
			if (nj->next == nl) {
				nj->next = nl->next;
				nl->next = nj;
				*pj = nl;
			} else {
				weft_tnode_t *after_j = nj->next, *after_l = nl->next;
				*pj = nl;
				nl->next = after_j;
				*pl = nj;
				nj->next = after_l;
			}
		}
		for (size_t a = 0; a < n; a++)
			link = &(*link)->next;
	}
}

/* ------------------------------------------------------------ the API */

bool weft_runtime_is_sim(const weft_runtime_t *rt)
{
	return rt && atomic_load(&((struct weft_runtime *)rt)->live) && rt->sim;
}

int weft_sim_run(weft_runtime_t *rt, weft_time_t deadline)
{
	if (!weft_runtime_is_sim(rt))
		return -EINVAL;
	if (!weft__sim_ours(rt) || weft__self_worker)
		return -EPERM; /* another thread, or a task or timer function of rt */
	struct weft_sim *sm = rt->simst;
	int r = weft__sim_drive(sm, no_live_task, rt, deadline);
	if (r == -EDEADLK)
		report_deadlock(sm, "weft_sim_run");
	return r;
}

int weft_sim_info(weft_runtime_t *rt, weft_sim_info_t *out)
{
	if (!out || !weft_runtime_is_sim(rt))
		return -EINVAL;
	if (!weft__sim_ours(rt))
		return -EPERM;
	long n = weft__sized(out, out->size, sizeof *out, sizeof *out);
	if (n < 0)
		return (int)n;
	struct weft_sim *sm = rt->simst;
	weft_sim_info_t v = {
		.size = (size_t)n,
		.seed = sm->seed,
		.hash = sm->hash,
		.steps = sm->steps,
		.now = sm->now,
		.deadlocks = sm->deadlocks,
		.id = sm->id,
	};
	memcpy(out, &v, (size_t)n);
	return 0;
}

void weft_sim_note(uint64_t v)
{
	struct weft_sim *sm = weft__sim_mine;
	if (sm)
		fold(sm, H_NOTE, v);
}
