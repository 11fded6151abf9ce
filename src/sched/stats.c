/* stats.c - live statistics and the task dump.
 *
 * Every counter is an atomic written by one owner (relaxed) and read by
 * anyone, so reading never stops or slows the workers; the set is not a
 * consistent snapshot. The dump walks the task table (slabs are never
 * unmapped while the runtime lives) and reads each record's fields racily:
 * it is a diagnostic, and every field it prints is either atomic or a fixed
 * size inline buffer.
 */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t ld(_Atomic uint64_t *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

/* Fills out (all of it but the caller's size, per_worker and
 * per_worker_len), and per_worker[0 .. per_worker_len). */
static void read_stats(struct weft_runtime *rt, weft_stats_t *out)
{
	weft_worker_stats_t *pw = out->per_worker;
	int cap = out->per_worker_len;
	size_t size = out->size;
	memset(out, 0, sizeof *out);
	out->size = size;
	out->per_worker = pw;
	out->per_worker_len = cap;
	weft_time_t now = weft_now();
	uint64_t spawned = ld(&rt->thread_spawned), finished = 0;
	int nw = atomic_load(&rt->nworkers);
	double bmin = 0, bmax = 0, bsum = 0;
	int nb = 0;
	for (int i = 0; i < nw; i++) {
		weft_worker *w = rt->workers[i];
		if (!w)
			continue;
		spawned += ld(&w->st_spawned);
		finished += ld(&w->st_finished);
		out->switches += ld(&w->st_runs);
		weft_worker_stats_t tmp, *s = out->workers < cap ? &pw[out->workers] : &tmp;
		out->workers++;
		memset(s, 0, sizeof *s);
		s->tasks_run = ld(&w->st_runs);
		s->steals = ld(&w->st_steals);
		s->stolen = ld(&w->st_stolen);
		s->parks = ld(&w->st_parks);
		s->xwakes = ld(&w->st_xwakes);
		int64_t start = atomic_load_explicit(&w->st_start, memory_order_relaxed);
		/* Idle time and the current sleep's start as one pair: a sleep
		 * that ends between the two loads adds to st_idle_ns before it
		 * clears st_park_start (worker.c, worker_sleep), so an unchanged
		 * st_park_start around the idle load means they match; read at
		 * different moments, the sleep counted busy and busy_ns could
		 * step back by its length. */
		int64_t idle, ps;
		do {
			ps = atomic_load_explicit(&w->st_park_start, memory_order_acquire);
			idle = atomic_load_explicit(&w->st_idle_ns, memory_order_acquire);
		} while (atomic_load_explicit(&w->st_park_start, memory_order_relaxed) != ps);
		int64_t busy = start ? now - start - idle - (ps ? now - ps : 0) : 0;
		s->busy_ns = busy > 0 ? (uint64_t)busy : 0;
		s->queue_len = weft__runq_len(w);
		s->stuck = atomic_load_explicit(&w->stuck, memory_order_relaxed);
		s->extra = atomic_load_explicit(&w->extra, memory_order_relaxed);
		if (!s->extra) {
			double b = (double)s->busy_ns;
			if (nb == 0 || b < bmin)
				bmin = b;
			if (nb == 0 || b > bmax)
				bmax = b;
			bsum += b;
			nb++;
		}
	}
	out->spawned = spawned;
	out->finished = finished;
	out->live = spawned > finished ? spawned - finished : 0;
	out->load_imbalance = nb && bsum > 0 ? (bmax - bmin) / (bsum / nb) : 0;
	out->global_queue_len = atomic_load_explicit(&rt->gq_len, memory_order_relaxed);
	for (int i = 0; i < rt->nbase; i++) {
		weft_shard_t *sh = &rt->shards[i];
		out->timers_fired += ld(&sh->fired);
		out->timers_active += __atomic_load_n(&sh->wheel.count, __ATOMIC_RELAXED);
	}
	weft_stack_stats_t ss;
	weft__stack_stats(rt->stacks, &ss);
	out->stacks_in_use = ss.in_use;
	out->stack_bytes_mapped = ss.mapped_bytes;
}

/* Run fn on rt (NULL: the current one) holding it if the caller is not one
 * of its workers, so that a stop racing the call cannot free it meanwhile. */
static int with_rt(weft_runtime_t *rt, int (*fn)(struct weft_runtime *rt, void *arg), void *arg)
{
	if (!rt)
		rt = weft_runtime_current();
	if (!rt)
		return -ESHUTDOWN;
	bool outside = !weft__on_rt(rt);
	if (outside && !weft__rt_hold(rt))
		return -ESHUTDOWN;
	int r = fn(rt, arg);
	if (outside)
		weft__rt_unhold(rt);
	return r;
}

static int stats_fn(struct weft_runtime *rt, void *out)
{
	read_stats(rt, out);
	return 0;
}

int weft_stats(weft_runtime_t *rt, weft_stats_t *out)
{
	if (!out || out->per_worker_len < 0 || (out->per_worker_len && !out->per_worker))
		return -EINVAL;
	long n = weft__sized(out, out->size, WEFT__STATS_V1, sizeof *out);
	if (n < 0)
		return (int)n;
	/* This version knows all of weft_stats_t: n == sizeof *out. */
	return with_rt(rt, stats_fn, out);
}

/* Format one line (at most 1 KiB; longer is cut) and write it all to fd,
 * remembering the first failure (-errno) in *err and doing nothing after
 * it. (Not dprintf: glibc's leaks its buffer when the write fails.) */
__attribute__((format(printf, 3, 4))) static void say(int *err, int fd, const char *fmt, ...)
{
	if (*err)
		return;
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0) {
		*err = -EINVAL;
		return;
	}
	size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			*err = w < 0 ? -errno : -EIO;
			return;
		}
		off += (size_t)w;
	}
}

int weft_stats_print(weft_runtime_t *rt, int fd)
{
	if (fd < 0)
		return -EBADF;
	/* On the heap: a task calling this may have the smallest stack. Out of
	 * memory, the per-worker lines are left out. */
	enum { MAXW = WEFT_MAX_WORKERS + WEFT_EXTRA_WORKERS };
	weft_worker_stats_t *pw = malloc(MAXW * sizeof *pw);
	weft_stats_t s = {.size = sizeof s, .per_worker = pw, .per_worker_len = pw ? MAXW : 0};
	int e = weft_stats(rt, &s);
	if (e) {
		free(pw);
		return e;
	}
	say(&e, fd,
	    "weft: tasks spawned=%llu finished=%llu live=%llu switches=%llu timers active=%llu fired=%llu "
	    "global_queue=%llu stacks=%llu (%llu MiB mapped) imbalance=%.2f\n",
	    (unsigned long long)s.spawned, (unsigned long long)s.finished, (unsigned long long)s.live,
	    (unsigned long long)s.switches, (unsigned long long)s.timers_active, (unsigned long long)s.timers_fired,
	    (unsigned long long)s.global_queue_len, (unsigned long long)s.stacks_in_use,
	    (unsigned long long)(s.stack_bytes_mapped >> 20), s.load_imbalance);
	for (int i = 0; i < s.workers && i < s.per_worker_len; i++) {
		weft_worker_stats_t *w = &s.per_worker[i];
		say(&e, fd,
		    "  worker %d%s: run=%llu steals=%llu stolen=%llu xwakes=%llu parks=%llu queue=%u busy=%.3fs%s\n", i,
		    w->extra ? " (extra)" : "", (unsigned long long)w->tasks_run, (unsigned long long)w->steals,
		    (unsigned long long)w->stolen, (unsigned long long)w->xwakes, (unsigned long long)w->parks,
		    w->queue_len, (double)w->busy_ns / 1e9, w->stuck ? " STUCK" : "");
	}
	free(pw);
	return e;
}

static const char *state_name(int st)
{
	switch (st) {
	case WEFT_RS_RUNNABLE:
		return "runnable";
	case WEFT_RS_RUNNING:
		return "running";
	case WEFT_RS_WAITING:
		return "waiting";
	case WEFT_RS_DONE:
		return "done, not joined";
	default:
		return "?";
	}
}

static int dump_fn(struct weft_runtime *rt, void *arg)
{
	int fd = *(int *)arg, err = 0;
	uint32_t n = atomic_load(&rt->bump);
	int count = 0;
	say(&err, fd, "weft: task dump\n");
	static const char *const what_name[] = {"park", "join", "group", "sleep"};
	for (uint32_t slot = 0; slot < n && !err; slot++) {
		weft_task *r = weft__task_at(rt, slot);
		if (!r || WEFT_RS_STATE(atomic_load_explicit(&r->run_state, memory_order_relaxed)) == WEFT_RS_FREE)
			continue;
		/* A reference keeps the record and its aux record from being freed while we
		 * read them. */
		weft_task *t = weft__task_ref(rt, atomic_load(&r->id));
		if (!t)
			continue;
		int v = atomic_load_explicit(&t->run_state, memory_order_acquire);
		int st = WEFT_RS_STATE(v);
		char name[WEFT_NAME_LEN] = {0};
		weft_task_aux *x = atomic_load_explicit(weft__task_auxp(t), memory_order_acquire);
		if (x)
			memcpy(name, x->name, sizeof name - 1);
		const char *what = st == WEFT_RS_WAITING ? what_name[WEFT_RS_WHAT(v) & 3] : NULL;
		Dl_info di;
		void *fn = (void *)t->fn;
		const char *sym = "?";
		if (fn && dladdr(fn, &di) && di.dli_sname)
			sym = di.dli_sname;
		say(&err, fd, "  task %#llx '%s' %s %s%s%s%s runs %s (%p)\n", (unsigned long long)atomic_load(&t->id),
		    name, weft__is_step(t) ? "stackless" : "coroutine", state_name(st), what ? " on " : "",
		    what ? what : "", weft__task_cancelled(t) ? " (cancelled)" : "", sym, fn);
		weft__task_unref(t);
		count++;
	}
	say(&err, fd, "weft: %d tasks\n", count);
	int next = atomic_load_explicit(&rt->next_ext, memory_order_acquire);
	for (int i = 0; i < next && !err; i++)
		if (rt->ext_keys[i]->dump)
			rt->ext_keys[i]->dump(rt->ext_ctx[i], fd);
	return err ? err : count;
}

int weft_task_dump(weft_runtime_t *rt, int fd)
{
	if (fd < 0)
		return -EBADF;
	return with_rt(rt, dump_fn, &fd);
}
