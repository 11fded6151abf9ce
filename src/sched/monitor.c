/* monitor.c - the monitor thread, and the process-wide signal handlers.
 *
 * The monitor wakes every 2 ms (20 ms when every worker is idle). For each
 * worker it compares the run counter it published at its last task start with
 * what it saw before: a worker that has been inside the same task run for
 * more than 10 ms is "stuck" (a long C loop, a raw blocking system call). The
 * monitor runs the due timers of the stuck worker's shard itself (their
 * fire functions only wake tasks, or call a user timer's function, which
 * must not block) and wakes an idle worker, which steals the stuck worker's
 * queue (its next-task slot included, since its owner is busy) and runs the
 * tasks the timers woke. A stuck worker is either computing (its thread is running or
 * waiting for a CPU) or blocked (asleep in the kernel: a raw system call). If every
 * worker is stuck, work is waiting and at least one stuck worker is blocked -
 * so a CPU is free - the monitor starts an extra worker (up to
 * WEFT_EXTRA_WORKERS). Computing workers alone never cause one: that would
 * only oversubscribe the CPUs. An extra worker retires when it finds no work
 * and no base worker is stuck.
 *
 * Signals: SIGQUIT asks every runtime's monitor to print a task dump (the
 * handler only bumps a counter; printing happens on the monitor thread).
 * SIGSEGV on a stack's guard page is reported with the task's id and name on
 * the worker's alternate signal stack, then the process dies of the signal;
 * any other SIGSEGV goes to the previous handler.
 */
#include "internal.h"

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "futex.h"
#include "../base/pool.h"

#define STUCK_NS (10 * WEFT_MSEC)

static _Atomic uint32_t sigquit_count;
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static int sig_users;
static struct sigaction old_segv, old_quit;
static bool have_segv, have_quit;

static void start_extra(struct weft_runtime *rt)
{
	int nw = atomic_load(&rt->nworkers);
	for (int i = rt->nbase; i < nw; i++) {
		weft_worker *w = rt->workers[i];
		if (w && atomic_load(&w->exited)) {
			if (w->joinable)
				pthread_join(w->thread, NULL);
			w->joinable = false;
			weft__worker_start(rt, i, true);
			return;
		}
	}
	if (nw < rt->nbase + WEFT_EXTRA_WORKERS)
		weft__worker_start(rt, nw, true); /* counts it in nworkers before it runs */
}

static bool work_waiting(struct weft_runtime *rt)
{
	if (atomic_load(&rt->gq_len))
		return true;
	int nw = atomic_load(&rt->nworkers);
	for (int i = 0; i < nw; i++)
		if (rt->workers[i] && !weft__runq_empty(rt->workers[i]))
			return true;
	return false;
}

/* Whether the worker's thread sleeps in the kernel (state S or D in
 * /proc/self/task/TID/stat) rather than running or waiting for a CPU (R). */
static bool thread_blocked(weft_worker *w)
{
	char path[64], buf[256];
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)w->tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* the command name may contain spaces */
	return p && p[1] == ' ' && (p[2] == 'S' || p[2] == 'D');
}

__thread struct weft_runtime *weft__monitor_of;

static void *monitor_main(void *arg)
{
	struct weft_runtime *rt = arg;
	weft__monitor_of = rt;
	pthread_setname_np(pthread_self(), "weft-monitor");
	uint32_t last[WEFT_MAX_WORKERS + WEFT_EXTRA_WORKERS] = {0};
	weft_time_t since[WEFT_MAX_WORKERS + WEFT_EXTRA_WORKERS] = {0};
	uint32_t quit_seen = atomic_load(&sigquit_count);
	int64_t sleep_ns = 2 * WEFT_MSEC;
	while (!atomic_load(&rt->monitor_stop)) {
		uint32_t f = atomic_load(&rt->monitor_futex);
		struct timespec ts = weft__ts_of(sleep_ns);
		weft__futex_wait(&rt->monitor_futex, f, &ts);
		if (atomic_load(&rt->monitor_stop))
			break;
		uint32_t q = atomic_load(&sigquit_count);
		if (q != quit_seen) {
			quit_seen = q;
			weft_task_dump(rt, STDERR_FILENO);
			weft_stats_print(rt, STDERR_FILENO);
		}
		weft_time_t now = weft_now();
		int nw = atomic_load_explicit(&rt->nworkers, memory_order_acquire);
		int running = 0, stuck = 0, idle = 0, blocked = 0;
		for (int i = 0; i < nw; i++) {
			weft_worker *w = rt->workers[i];
			if (!w || atomic_load(&w->exited))
				continue;
			running++;
			if (atomic_load_explicit(&w->parked, memory_order_relaxed))
				idle++;
			uint32_t tick = atomic_load_explicit(&w->mon_tick, memory_order_relaxed);
			bool in = atomic_load_explicit(&w->in_task, memory_order_relaxed);
			if (in && tick == last[i]) {
				if (now - since[i] > STUCK_NS) {
					atomic_store_explicit(&w->stuck, 1, memory_order_relaxed);
					stuck++;
					blocked += thread_blocked(w);
				}
			} else {
				last[i] = tick;
				since[i] = now;
				atomic_store_explicit(&w->stuck, 0, memory_order_relaxed);
			}
		}
		weft__poll_from_monitor(rt);
		weft__release_memory(rt, now);
		if (stuck) {
			/* A stuck worker runs no timers: run the due ones of its
			 * shard here. The tasks they wake go to the global queue,
			 * which a free worker - or, if all are blocked, an extra
			 * one started below - runs. */
			for (int i = 0; i < rt->nbase; i++) {
				weft_worker *w = rt->workers[i];
				if (w && atomic_load_explicit(&w->stuck, memory_order_relaxed))
					weft__timers_run_due(rt, w->shard);
			}
			weft__wakep(rt);
			if (stuck == running && blocked && work_waiting(rt) && !atomic_load(&rt->halt))
				start_extra(rt);
		}
		sleep_ns = idle == running ? 20 * WEFT_MSEC : 2 * WEFT_MSEC;
	}
	return NULL;
}

/* Memory nobody needed for a while goes back to the OS: free stacks and
 * records (stack.c, task.c) and the pool's empty runs (channels,
 * base/pool.c). After a spike that freed a lot of these, what the program
 * and weft allocated with malloc alongside (tasks' aux records, the
 * program's own state) is in malloc's free lists: ask malloc to give back
 * its free pages too, once the release is done. */
#define TRIM_AFTER ((size_t)1 << 20)

void weft__release_memory(struct weft_runtime *rt, weft_time_t now)
{
	size_t pooled = weft__pool_release(now); /* the base layer's blocks (channels) */
	size_t stacks = weft__stack_scavenge(rt->stacks, now);
	size_t records = weft__task_scavenge(rt, now);
	size_t bytes = pooled + stacks * (size_t)4096 + records * sizeof(weft_task);
	if (bytes) {
		atomic_fetch_add_explicit(&rt->released_since_trim, bytes, memory_order_relaxed);
		return;
	}
	if (atomic_load_explicit(&rt->released_since_trim, memory_order_relaxed) >= TRIM_AFTER &&
	    atomic_exchange_explicit(&rt->released_since_trim, 0, memory_order_relaxed) >= TRIM_AFTER)
		malloc_trim(0);
}

int weft__monitor_start(struct weft_runtime *rt)
{
	return -pthread_create(&rt->monitor, NULL, monitor_main, rt);
}

void weft__monitor_stop(struct weft_runtime *rt)
{
	atomic_store(&rt->monitor_stop, true);
	atomic_fetch_add(&rt->monitor_futex, 1);
	weft__futex_wake(&rt->monitor_futex, 1);
	pthread_join(rt->monitor, NULL);
}

/* ------------------------------------------------------------ signals */

static void put(const char *s)
{
	ssize_t r = write(STDERR_FILENO, s, strlen(s));
	(void)r;
}

static void put_u64(uint64_t v)
{
	char buf[24];
	int i = sizeof buf - 1;
	buf[i] = 0;
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(buf + i);
}

static void put_hex(uint64_t v)
{
	char buf[24];
	int i = sizeof buf - 1;
	buf[i] = 0;
	do {
		buf[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	buf[--i] = 'x';
	buf[--i] = '0';
	put(buf + i);
}

/* Async-signal-safe report about a task (its death, a misuse). */
static void report_task_value(weft_task *t, const char *what, bool with_value, long value)
{
	char name[WEFT_NAME_LEN] = {0};
	weft_task_aux *x = atomic_load_explicit(weft__task_auxp(t), memory_order_relaxed);
	if (x)
		memcpy(name, x->name, sizeof name - 1);
	put("weft: ");
	put(what);
	put(" in task ");
	put_hex(atomic_load_explicit(&t->id, memory_order_relaxed));
	put(" '");
	put(name);
	put("'");
	if (!weft__is_step(t) && t->stack) {
		put(" (stack of ");
		put_u64(t->stack->size);
		put(" bytes)");
	}
	if (with_value) {
		put(": ");
		if (value < 0)
			put("-");
		put_u64(value < 0 ? -(uint64_t)value : (uint64_t)value);
	}
	put("\n");
}

static void report_task(weft_task *t, const char *what)
{
	report_task_value(t, what, false, 0);
}

void weft__report_task(weft_task *t, const char *what, long value)
{
	report_task_value(t, what, true, value);
}

void weft__fatal_task(weft_task *t, const char *what)
{
	report_task(t, what);
	abort();
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	weft_worker *w = weft__self_worker;
	if (w && w->cur && !weft__is_step(w->cur) && w->cur->stack &&
	    weft__stack_find_guard(w->rt->stacks, si->si_addr)) {
		report_task(w->cur, "stack overflow");
		signal(SIGSEGV, SIG_DFL);
		return; /* the access faults again and the default action ends the process */
	}
	if (old_segv.sa_flags & SA_SIGINFO) {
		old_segv.sa_sigaction(sig, si, uc);
	} else if (old_segv.sa_handler != SIG_IGN && old_segv.sa_handler != SIG_DFL) {
		old_segv.sa_handler(sig);
	} else {
		signal(SIGSEGV, SIG_DFL);
	}
}

static void on_quit(int sig)
{
	(void)sig;
	atomic_fetch_add(&sigquit_count, 1);
	for (struct weft_runtime *rt = __atomic_load_n(&weft__live_rts, __ATOMIC_ACQUIRE); rt; rt = rt->next_rt) {
		atomic_fetch_add(&rt->monitor_futex, 1);
		weft__futex_wake(&rt->monitor_futex, 1);
	}
}

void weft__signals_install(struct weft_runtime *rt)
{
	pthread_mutex_lock(&sig_lock);
	if (sig_users++ == 0) {
		if (!rt->cfg.no_overflow_handler) {
			struct sigaction sa = {0};
			sa.sa_sigaction = on_segv;
			sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
			sigemptyset(&sa.sa_mask);
			have_segv = sigaction(SIGSEGV, &sa, &old_segv) == 0;
		}
		if (!rt->cfg.no_sigquit_dump) {
			struct sigaction sa = {0};
			sa.sa_handler = on_quit;
			sa.sa_flags = SA_RESTART;
			sigemptyset(&sa.sa_mask);
			have_quit = sigaction(SIGQUIT, &sa, &old_quit) == 0;
		}
	}
	pthread_mutex_unlock(&sig_lock);
}

void weft__signals_remove(struct weft_runtime *rt)
{
	(void)rt;
	pthread_mutex_lock(&sig_lock);
	if (--sig_users == 0) {
		if (have_segv)
			sigaction(SIGSEGV, &old_segv, NULL);
		if (have_quit)
			sigaction(SIGQUIT, &old_quit, NULL);
		have_segv = have_quit = false;
	}
	pthread_mutex_unlock(&sig_lock);
}
