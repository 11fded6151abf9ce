/* test_sim.c - the simulation mode: virtual time, deadlock reports,
 * refusals, and determinism itself (same seed, same schedule and output;
 * other seeds, other schedules). */
#include "wt_sim.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static weft_config_t sim_cfg(uint64_t seed)
{
	return (weft_config_t){.size = sizeof(weft_config_t), .sim = true, .sim_seed = seed};
}

static weft_runtime_t *sim_start(uint64_t seed)
{
	weft_runtime_t *rt = NULL;
	weft_config_t c = sim_cfg(seed);
	assert_int_equal(weft_runtime_start(&rt, &c), 0);
	assert_true(weft_runtime_is_sim(rt));
	return rt;
}

static weft_sim_info_t sim_info(weft_runtime_t *rt)
{
	weft_sim_info_t i = {.size = sizeof i};
	assert_int_equal(weft_sim_info(rt, &i), 0);
	return i;
}

static double real_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ virtual time */

typedef struct vt {
	_Atomic long fires;
	long fires_at_wake;
	weft_time_t t0, t1;
} vt;

static void vt_tick(void *a)
{
	atomic_fetch_add(&((vt *)a)->fires, 1);
}

static void *vt_main(void *a)
{
	vt *v = a;
	atomic_store(&v->fires, 0);
	weft_timer_t *tm;
	TCHECK_EQ(weft_timer_create(&tm, vt_tick, v), 0);
	v->t0 = weft_now();
	TCHECK_EQ(weft_timer_start(tm, v->t0 + WEFT_SEC, WEFT_SEC), 0);
	TCHECK_EQ(weft_sleep_until(v->t0 + 3600 * WEFT_SEC), 0);
	v->fires_at_wake = atomic_load(&v->fires);
	v->t1 = weft_now();
	TCHECK_EQ(weft_timer_destroy(tm), 0);
	return NULL;
}

static void vt_check(void *a)
{
	vt *v = a;
	/* An hour, plus at most a tick of rounding and a few runs. */
	TCHECK(v->t1 - v->t0 >= 3600 * WEFT_SEC);
	TCHECK(v->t1 - v->t0 < 3600 * WEFT_SEC + 2 * WEFT_MSEC);
	/* The last period ends in the sleeper's tick: it fires in the same
	 * batch, before the sleeper runs again. */
	TCHECK(v->fires_at_wake == 3599 || v->fires_at_wake == 3600);
}

static void test_an_hour_of_sleep_takes_no_real_hour(void **state)
{
	(void)state;
	vt v = {0};
	double t = real_seconds();
	wt_sim_sweep("an_hour_of_sleep", vt_main, vt_check, &v, 5);
	/* An hour did not pass; WT_HANG_NS is the bound for "did not wait". */
	assert_true(real_seconds() - t < (double)WT_HANG_NS / 1e9);
}

/* The owner thread's own sleeps and deadlines are virtual too. */
static void test_owner_thread_time_is_virtual(void **state)
{
	(void)state;
	weft_runtime_t *rt = sim_start(7);
	assert_ptr_equal(weft_runtime_current(), rt);
	weft_time_t t0 = weft_now();
	double r0 = real_seconds();
	assert_int_equal(weft_sleep(30 * WEFT_SEC), 0);
	assert_true(weft_now() - t0 >= 30 * WEFT_SEC);
	assert_true(weft_now() - t0 < 30 * WEFT_SEC + WEFT_MSEC);
	weft_chan_t *ch;
	assert_int_equal(weft_chan_create(&ch, sizeof(int), 0), 0);
	int v;
	t0 = weft_now();
	assert_int_equal(weft_chan_recv_until(ch, &v, t0 + 5 * WEFT_SEC), -ETIMEDOUT);
	assert_true(weft_now() >= t0 + 5 * WEFT_SEC);
	assert_int_equal(weft_sim_run(rt, weft_now() + WEFT_SEC), 0); /* no task: done at once */
	assert_true(real_seconds() - r0 < (double)WT_HANG_NS / 1e9);
	weft_chan_release(ch);
	assert_int_equal(weft_runtime_stop(rt), 0);
	/* The real clock is back. */
	assert_true(weft_now() < 1000000000000ll || weft_now() != t0);
}

/* Two timers due in one tick fire in an order drawn from the seed: over
 * 20 seeds both orders occur; a seed gives its order every time. */
typedef struct order {
	char log[8];
	int n;
} order;

static void order_a(void *a)
{
	order *o = a;
	o->log[o->n++] = 'a';
}

static void order_b(void *a)
{
	order *o = a;
	o->log[o->n++] = 'b';
}

static void *order_main(void *a)
{
	order *o = a;
	weft_timer_t *ta, *tb;
	TCHECK_EQ(weft_timer_create(&ta, order_a, o), 0);
	TCHECK_EQ(weft_timer_create(&tb, order_b, o), 0);
	weft_time_t due = weft_now() + 5 * WEFT_MSEC;
	TCHECK_EQ(weft_timer_start(ta, due, 0), 0);
	TCHECK_EQ(weft_timer_start(tb, due, 0), 0);
	weft_sleep(10 * WEFT_MSEC);
	weft_timer_destroy(ta);
	weft_timer_destroy(tb);
	return NULL;
}

static void run_order(uint64_t seed, order *o)
{
	memset(o, 0, sizeof *o);
	weft_runtime_t *rt = sim_start(seed);
	weft_task_t t;
	assert_int_equal(weft_spawn(&t, order_main, o, NULL), 0);
	assert_int_equal(weft_join(t, NULL), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(o->n, 2);
}

static void test_equal_tick_timers_fire_in_a_seeded_order(void **state)
{
	(void)state;
	int ab = 0, ba = 0;
	for (uint64_t s = 1; s <= 20; s++) {
		order o, again;
		run_order(s, &o);
		run_order(s, &again);
		assert_memory_equal(o.log, again.log, 2);
		if (o.log[0] == 'a')
			ab++;
		else
			ba++;
	}
	assert_true(ab > 0 && ba > 0);
}

/* ------------------------------------------------------------ deadlock */

typedef struct dl {
	weft_chan_t *a, *b;
} dl;

static void *dl_left(void *p)
{
	dl *d = p;
	int v;
	int e = weft_chan_recv(d->a, &v);
	return (void *)(intptr_t)(e == 0 ? weft_chan_send(d->b, &v) : e);
}

static void *dl_right(void *p)
{
	dl *d = p;
	int v;
	int e = weft_chan_recv(d->b, &v);
	return (void *)(intptr_t)(e == 0 ? weft_chan_send(d->a, &v) : e);
}

/* Runs body with stderr going to a memory file; what it wrote comes back
 * in buf. */
static void capture_stderr(void (*body)(void *), void *arg, char *buf, size_t len)
{
	fflush(stderr);
	int mfd = memfd_create("stderr", 0);
	assert_true(mfd >= 0);
	int saved = dup(STDERR_FILENO);
	dup2(mfd, STDERR_FILENO);
	body(arg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	ssize_t n = pread(mfd, buf, len - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	close(mfd);
}

typedef struct dl_run {
	weft_runtime_t *rt;
	weft_task_t l, r;
	int join, run;
} dl_run;

static void dl_body(void *p)
{
	dl_run *x = p;
	x->join = weft_join(x->l, NULL);
	x->run = weft_sim_run(x->rt, WEFT_NEVER);
}

static void test_deadlock_is_reported_not_hung(void **state)
{
	(void)state;
	weft_runtime_t *rt = sim_start(0x5eed);
	dl d;
	assert_int_equal(weft_chan_create(&d.a, sizeof(int), 0), 0);
	assert_int_equal(weft_chan_create(&d.b, sizeof(int), 0), 0);
	dl_run x = {.rt = rt};
	assert_int_equal(weft_spawn(&x.l, dl_left, &d, NULL), 0);
	assert_int_equal(weft_spawn(&x.r, dl_right, &d, NULL), 0);
	char out[8192];
	capture_stderr(dl_body, &x, out, sizeof out);
	assert_int_equal(x.join, -EDEADLK);
	assert_int_equal(x.run, -EDEADLK);
	assert_non_null(strstr(out, "sim seed 0x5eed"));
	assert_non_null(strstr(out, "WEFT_SIM_SEED=0x5eed"));
	assert_non_null(strstr(out, "2 tasks wait"));
	assert_non_null(strstr(out, "weft: 2 tasks")); /* the task dump */
	assert_int_equal(sim_info(rt).deadlocks, 2);
	/* The join can be tried again; the stop cancels both. */
	void *r;
	weft_task_t l = x.l;
	assert_int_equal(weft_runtime_stop(rt), 0);
	(void)l;
	(void)r;
	weft_chan_release(d.a);
	weft_chan_release(d.b);
}

/* A stop whose tasks wait uncancellably on each other reports them and
 * gives the runtime up rather than hanging. */
static void *nocancel_wait(void *a)
{
	(void)a;
	weft_waker_t w = weft_park_prepare_uncancellable();
	return (void *)(intptr_t)weft_park(w, WEFT_NEVER);
}

static void nc_body(void *p)
{
	*(int *)p = weft_runtime_stop(*(weft_runtime_t **)((int *)p + 2));
}

static void test_stop_gives_up_on_uncancellable_deadlock(void **state)
{
	(void)state;
	struct {
		int stop, pad;
		weft_runtime_t *rt;
	} x = {0};
	x.rt = sim_start(3);
	assert_int_equal(weft_go(nocancel_wait, NULL), 0);
	char out[8192];
	capture_stderr(nc_body, &x, out, sizeof out);
	assert_int_equal(x.stop, -EDEADLK);
	assert_non_null(strstr(out, "abandoned"));
	/* The thread owns no sim any more: it may start another. */
	weft_runtime_t *rt = sim_start(4);
	assert_int_equal(weft_runtime_stop(rt), 0);
}

/* ------------------------------------------------------------ refusals */

typedef struct foreign {
	weft_runtime_t *rt, *normal;
	weft_task_t t;
	weft_timer_t *tm;
	weft_group_t *g; /* a running member of rt's */
	int spawn, join, cancel, detach, name, run, info, stop, timer, current_is_sim;
	int gcancel, gwait, gwait_until, gwait_step, gdestroy, gspawn;
	int request_stop, wait_stop, attach, poller;
} foreign;

static void ext_destroy(void *ctx)
{
	(void)ctx;
}

static const weft_runtime_ext_t ext_key = {.name = "test", .destroy = ext_destroy};

static int nop_poll(void *ctx, weft_time_t timeout)
{
	(void)ctx;
	(void)timeout;
	return 0;
}

static void nop_wake(void *ctx)
{
	(void)ctx;
}

static const weft_poller_ops_t nop_poller = {.poll = nop_poll, .wake = nop_wake};

static void *noop(void *a)
{
	return a;
}

static void nop_fn(void *a)
{
	(void)a;
}

static void *foreign_thread(void *a)
{
	foreign *f = a;
	weft_task_t t;
	f->spawn = weft_spawn(&t, noop, NULL, &(weft_spawn_opts_t){.runtime = f->rt});
	f->join = weft_join(f->t, NULL);
	f->cancel = weft_cancel(f->t);
	f->detach = weft_detach(f->t);
	char nm[16];
	f->name = weft_task_name(f->t, nm, sizeof nm);
	f->run = weft_sim_run(f->rt, WEFT_NEVER);
	weft_sim_info_t i = {.size = sizeof i};
	f->info = weft_sim_info(f->rt, &i);
	f->stop = weft_runtime_stop(f->rt);
	f->timer = weft_timer_start(f->tm, weft_now() + WEFT_SEC, 0);
	f->current_is_sim = weft_runtime_current() == f->rt;
	/* A group of the sim's tasks: each call used to go through (a cancel
	 * cancelled nothing and said 0). */
	f->gcancel = weft_group_cancel(f->g);
	f->gwait_until = weft_group_wait_until(f->g, 0);
	/* (Were they not refused, they would wait for the hour: the hang
	 * guard ends that.) */
	f->gwait = weft_group_wait_until(f->g, wt_hang_deadline());
	weft_op_t op = WEFT_OP_INIT;
	f->gwait_step = weft_group_wait_step(f->g, wt_hang_deadline(), &op);
	f->gdestroy = weft_group_destroy(f->g);
	f->gspawn = weft_spawn(&t, noop, NULL, &(weft_spawn_opts_t){.runtime = f->normal, .group = f->g});
	f->request_stop = weft_runtime_request_stop(f->rt);
	f->wait_stop = weft_runtime_wait_stop_request_until(f->rt, 0);
	f->attach = weft_runtime_attach(f->rt, &ext_key, f);
	f->poller = weft_runtime_set_poller(f->rt, &nop_poller, f);
	return NULL;
}

static void *hour_member(void *a)
{
	(void)a;
	return (void *)(intptr_t)weft_sleep(3600 * WEFT_SEC);
}

static void *inside_task(void *a)
{
	weft_runtime_t *rt = a;
	weft_runtime_t *other;
	TCHECK_EQ(weft_runtime_start(&other, &(weft_config_t){.size = sizeof(weft_config_t), .sim = true}), -EPERM);
	TCHECK_EQ(weft_sim_run(rt, WEFT_NEVER), -EPERM);
	TCHECK_EQ(weft_runtime_stop(rt), -EDEADLK);
	TCHECK(weft_runtime_current() == rt);
	TCHECK_EQ(weft_worker_index(), 0);
	return NULL;
}

static void test_only_the_owner_thread_may_touch_it(void **state)
{
	(void)state;
	atomic_store(&tcheck_failures, 0);
	weft_runtime_t *rt = sim_start(11);
	weft_runtime_t *second;
	weft_config_t c = sim_cfg(1);
	assert_int_equal(weft_runtime_start(&second, &c), -EBUSY);
	c.workers = 2;
	weft_runtime_t *bad;
	foreign f = {.rt = rt};
	assert_int_equal(weft_spawn(&f.t, noop, NULL, &(weft_spawn_opts_t){.name = "kept"}), 0);
	assert_int_equal(weft_timer_create(&f.tm, nop_fn, NULL), 0);
	assert_int_equal(weft_group_create(&f.g, false), 0);
	assert_int_equal(weft_spawn(NULL, hour_member, NULL, &(weft_spawn_opts_t){.group = f.g}), 0);
	assert_int_equal(weft_runtime_start(&f.normal, &(weft_config_t){.workers = 1}), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, foreign_thread, &f), 0);
	pthread_join(th, NULL);
	assert_int_equal(f.spawn, -EPERM);
	assert_int_equal(f.join, -EPERM);
	assert_int_equal(f.cancel, -EPERM);
	assert_int_equal(f.detach, -EPERM);
	assert_int_equal(f.name, -EPERM);
	assert_int_equal(f.run, -EPERM);
	assert_int_equal(f.info, -EPERM);
	assert_int_equal(f.stop, -EPERM);
	assert_int_equal(f.timer, -EPERM);
	assert_false(f.current_is_sim); /* a sim is never the default runtime */
	assert_int_equal(f.gcancel, -EPERM);
	assert_int_equal(f.gwait, -EPERM);
	assert_int_equal(f.gwait_until, -EPERM);
	assert_int_equal(f.gwait_step, -EPERM);
	assert_int_equal(f.gdestroy, -EPERM);
	assert_int_equal(f.gspawn, -EPERM);
	assert_int_equal(f.request_stop, -EPERM);
	assert_int_equal(f.wait_stop, -EPERM);
	assert_int_equal(f.attach, -EPERM);
	assert_int_equal(f.poller, -EPERM);
	/* Nothing changed: the member still sleeps (not cancelled), no stop
	 * was requested, nothing is attached or installed. */
	assert_int_equal(weft_group_wait_until(f.g, weft_now() + WEFT_SEC), -ETIMEDOUT);
	assert_int_equal(weft_runtime_wait_stop_request_until(rt, weft_now() + WEFT_MSEC), -ETIMEDOUT);
	assert_null(weft_runtime_attached(rt, &ext_key));
	assert_null(weft_runtime_poller(rt, &nop_poller));
	/* The owner may: a stop request, an extension, the group's cancel. */
	assert_int_equal(weft_runtime_request_stop(rt), 0);
	assert_int_equal(weft_runtime_wait_stop_request(rt), 0);
	assert_int_equal(weft_runtime_attach(rt, &ext_key, &f), 0);
	assert_ptr_equal(weft_runtime_attached(rt, &ext_key), &f);
	assert_int_equal(weft_group_cancel(f.g), 0);
	assert_int_equal(weft_group_wait(f.g), -ECANCELED);
	assert_int_equal(weft_group_destroy(f.g), 0);
	/* The owner may do all of it. */
	weft_task_t t;
	assert_int_equal(weft_spawn(&t, inside_task, rt, NULL), 0);
	assert_int_equal(weft_join(t, NULL), 0);
	assert_int_equal(weft_join(f.t, NULL), 0);
	assert_int_equal(weft_timer_destroy(f.tm), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(weft_runtime_stop(f.normal), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
	/* After the stop the thread owns nothing. */
	c.workers = 2;
	assert_int_equal(weft_runtime_start(&bad, &c), -EINVAL);
}

/* A group's running members are all of one sim, or none is of a sim: a
 * spawn that would mix them is refused, from either side, so no member's
 * end wakes or cancels across the sim's boundary. */
static void *group_waiter(void *a)
{
	return (void *)(intptr_t)weft_group_wait(a);
}

static void test_a_group_does_not_mix_a_sim_with_others(void **state)
{
	(void)state;
	weft_runtime_t *rt = sim_start(12), *normal;
	assert_int_equal(weft_runtime_start(&normal, &(weft_config_t){.workers = 1}), 0);
	weft_spawn_opts_t in_normal = {.runtime = normal};
	weft_group_t *g;
	assert_int_equal(weft_group_create(&g, false), 0);
	in_normal.group = g;
	assert_int_equal(weft_spawn(NULL, hour_member, NULL, &(weft_spawn_opts_t){.group = g}), 0);
	assert_int_equal(weft_spawn(NULL, noop, NULL, &in_normal), -EPERM);
	assert_int_equal(weft_group_cancel(g), 0);
	assert_int_equal(weft_group_wait(g), -ECANCELED);
	assert_int_equal(weft_group_destroy(g), 0);
	/* Members of the normal runtime: a task of the sim is refused. Their
	 * group is no sim's: the owner may cancel it; a plain thread waits. */
	assert_int_equal(weft_group_create(&g, false), 0);
	in_normal.group = g;
	assert_int_equal(weft_spawn(NULL, hour_member, NULL, &in_normal), 0);
	assert_int_equal(weft_spawn(NULL, noop, NULL, &(weft_spawn_opts_t){.group = g}), -EPERM);
	assert_int_equal(weft_group_cancel(g), 0);
	pthread_t th;
	void *r;
	assert_int_equal(pthread_create(&th, NULL, group_waiter, g), 0);
	pthread_join(th, &r);
	assert_int_equal((intptr_t)r, -ECANCELED);
	assert_int_equal(weft_group_destroy(g), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(weft_runtime_stop(normal), 0);
}

/* A wake-up from another thread would make the run depend on the OS: the
 * process aborts, naming the seed. In a child, whose end we look at. */
typedef struct wake {
	weft_chan_t *ch;
} wake;

static void *wake_recv(void *a)
{
	int v;
	return (void *)(intptr_t)weft_chan_recv(((wake *)a)->ch, &v);
}

static void *wake_send(void *a)
{
	int v = 1;
	weft_chan_send(((wake *)a)->ch, &v);
	return NULL;
}

/* A task of the sim whose wait is open (it runs: no switch yet) is woken
 * from another thread; the task waits for that thread meanwhile. */
static weft_waker_t open_w;

static void *unpark_open_w(void *a)
{
	(void)a;
	weft_unpark(open_w, 0);
	return NULL;
}

static void *open_task(void *a)
{
	(void)a;
	open_w = weft_park_prepare();
	pthread_t th;
	pthread_create(&th, NULL, unpark_open_w, NULL);
	pthread_join(th, NULL);
	return NULL;
}

static void open_child(void)
{
	weft_runtime_t *rt;
	weft_config_t c = sim_cfg(0xabd);
	if (weft_runtime_start(&rt, &c) != 0)
		_exit(3);
	weft_task_t t;
	weft_spawn(&t, open_task, NULL, NULL);
	weft_join(t, NULL);
	_exit(0); /* not reached: the unpark aborts */
}

/* The owner thread's own wait, woken from another thread. */
static void owner_child(void)
{
	weft_runtime_t *rt;
	weft_config_t c = sim_cfg(0xabe);
	if (weft_runtime_start(&rt, &c) != 0)
		_exit(3);
	open_w = weft_park_prepare();
	pthread_t th;
	pthread_create(&th, NULL, unpark_open_w, NULL);
	pthread_join(th, NULL);
	_exit(0); /* not reached */
}

static void *wake_owner(void *a)
{
	wake *w = a;
	weft_runtime_t *rt;
	weft_config_t c = sim_cfg(0xabc);
	if (weft_runtime_start(&rt, &c) != 0 || weft_chan_create(&w->ch, sizeof(int), 0) != 0)
		_exit(3);
	weft_task_t t;
	weft_spawn(&t, wake_recv, w, NULL);
	weft_sim_run(rt, weft_now() + WEFT_MSEC); /* the receiver waits now */
	pthread_t th;
	pthread_create(&th, NULL, wake_send, w);
	pthread_join(th, NULL);
	_exit(0); /* not reached: the send aborts */
}

/* In a child process of its own (the test program run again with
 * WT_SIM_CHILD=which: wt_sim_rerun), whose end we look at. */
static void child_aborts(const char *which, const char *seed)
{
	char env[64];
	snprintf(env, sizeof env, "WT_SIM_CHILD=%s", which);
	char *envp[] = {env, NULL};
	char out[4096];
	int st = wt_sim_rerun(envp, STDERR_FILENO, out, sizeof out);
	if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT))
		fprintf(stderr, "child status %#x: %s\n", st, out);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
	assert_non_null(strstr(out, seed));
	assert_non_null(strstr(out, "not its owner"));
}

static void test_a_foreign_wake_aborts_with_the_seed(void **state)
{
	(void)state;
	child_aborts("wake", "sim seed 0xabc");
}

/* The same for a task whose wait is still open (the wake would be seen
 * when it parks), and for the owner thread's own wait. */
static void test_a_foreign_wake_of_an_open_wait_aborts(void **state)
{
	(void)state;
	child_aborts("open", "sim seed 0xabd");
	child_aborts("owner", "sim seed 0xabe");
}

/* ------------------------------------------------------------ determinism */

/* A mixed workload whose every event goes into a log with the virtual time
 * and task id: channels of the three kinds, select, a mutex and a
 * condition, sleeps and deadlines, a periodic timer, cancellation, a group
 * that cancels on error, stackless tasks. */
typedef struct mix {
	weft_chan_t *c0, *c1, *cu;
	weft_mutex_t mu;
	weft_cond_t cv;
	long shared, received, sum;
	weft_timer_t *tm;
	long ticks;
	weft_time_t start;
	char log[1 << 16];
	size_t len;
} mix;

__attribute__((format(printf, 2, 3))) static void mlog(mix *m, const char *fmt, ...)
{
	if (m->len >= sizeof m->log - 256)
		return;
	m->len += (size_t)snprintf(m->log + m->len, sizeof m->log - m->len, "%lld %llx ",
				   (long long)(weft_now() - m->start), (unsigned long long)weft_self());
	va_list ap;
	va_start(ap, fmt);
	m->len += (size_t)vsnprintf(m->log + m->len, sizeof m->log - m->len, fmt, ap);
	va_end(ap);
	m->log[m->len++] = '\n';
	m->log[m->len] = 0;
}

typedef struct prod {
	mix *m;
	int i;
} prod;

#define MIX_PER 12

static void *mix_producer(void *a)
{
	prod *p = a;
	mix *m = p->m;
	weft_chan_t *ch = p->i == 0 ? m->c0 : p->i == 1 ? m->c1 : m->cu;
	for (int k = 0; k < MIX_PER; k++) {
		long v = p->i * 1000 + k;
		TCHECK_EQ(weft_chan_send(ch, &v), 0);
		if (k % 4 == 3)
			weft_sleep((p->i + 1) * 300 * (WEFT_MSEC / 1000));
		else
			weft_yield();
	}
	mlog(m, "producer %d done", p->i);
	return NULL;
}

static void *mix_consumer(void *a)
{
	mix *m = a;
	long v0, v1, vu;
	weft_select_case_t cs[3] = {
		{.ch = m->c0, .op = WEFT_SELECT_RECV, .buf = &v0},
		{.ch = m->c1, .op = WEFT_SELECT_RECV, .buf = &v1},
		{.ch = m->cu, .op = WEFT_SELECT_RECV, .buf = &vu},
	};
	while (m->received < 3 * MIX_PER) {
		int k = weft_select(cs, 3, weft_deadline_in(700 * (WEFT_MSEC / 1000)));
		if (k == -ETIMEDOUT) {
			mlog(m, "select timed out");
			continue;
		}
		TCHECK(k >= 0 && k < 3);
		if (k < 0)
			break;
		long v = k == 0 ? v0 : k == 1 ? v1 : vu;
		m->received++;
		m->sum += v;
		mlog(m, "got %ld on %d", v, k);
		weft_mutex_lock(&m->mu);
		m->shared++;
		weft_cond_broadcast(&m->cv);
		weft_mutex_unlock(&m->mu);
	}
	return NULL;
}

static void *mix_waiter(void *a)
{
	mix *m = a;
	weft_mutex_lock(&m->mu);
	while (m->shared < 2 * MIX_PER)
		weft_cond_wait(&m->cv, &m->mu);
	mlog(m, "waiter saw %ld", m->shared);
	weft_mutex_unlock(&m->mu);
	return NULL;
}

static void mix_tick(void *a)
{
	((mix *)a)->ticks++;
}

static void *mix_forever(void *a)
{
	mix *m = a;
	long v;
	weft_chan_t *never;
	weft_chan_create(&never, sizeof v, 0);
	int e = weft_chan_recv(never, &v);
	weft_chan_release(never);
	mlog(m, "forever ended %d", e);
	return (void *)(intptr_t)e;
}

static void *mix_fails(void *a)
{
	mix *m = a;
	weft_sleep(2 * WEFT_MSEC);
	mlog(m, "member fails");
	return (void *)(intptr_t)-EIO;
}

static void *mix_long(void *a)
{
	mix *m = a;
	int e = weft_sleep(WEFT_SEC);
	mlog(m, "long member ended %d", e);
	return NULL;
}

typedef struct stepper {
	mix *m;
	int n;
	weft_op_t op;
	long v;
	int phase;
} stepper;

static weft_step_t mix_step(void *s_, void **res)
{
	stepper *s = s_;
	if (s->phase == 0) {
		if (s->n++ < 5) {
			mlog(s->m, "step %d", s->n);
			return WEFT_STEP_YIELD;
		}
		s->phase = 1;
	}
	*res = NULL;
	return WEFT_STEP_DONE;
}

static void *mix_main(void *a)
{
	mix *m = a;
	m->start = weft_now();
	m->len = 0;
	m->log[0] = 0;
	m->shared = m->received = m->sum = m->ticks = 0;
	TCHECK_EQ(weft_chan_create(&m->c0, sizeof(long), 0), 0);
	TCHECK_EQ(weft_chan_create(&m->c1, sizeof(long), 4), 0);
	TCHECK_EQ(weft_chan_create(&m->cu, sizeof(long), WEFT_CHAN_UNBOUNDED), 0);
	weft_mutex_init(&m->mu);
	weft_cond_init(&m->cv);
	TCHECK_EQ(weft_timer_create(&m->tm, mix_tick, m), 0);
	TCHECK_EQ(weft_timer_start(m->tm, weft_deadline_in(WEFT_MSEC), WEFT_MSEC), 0);
	prod p[3];
	weft_task_t pt[3], ct, wt, ft, st;
	for (int i = 0; i < 3; i++) {
		p[i] = (prod){m, i};
		TCHECK_EQ(weft_spawn(&pt[i], mix_producer, &p[i], NULL), 0);
	}
	TCHECK_EQ(weft_spawn(&ct, mix_consumer, m, NULL), 0);
	TCHECK_EQ(weft_spawn(&wt, mix_waiter, m, NULL), 0);
	TCHECK_EQ(weft_spawn(&ft, mix_forever, m, NULL), 0);
	stepper sp = {.m = m};
	TCHECK_EQ(weft_spawn_step(&st, mix_step, &sp, NULL), 0);
	weft_group_t *g;
	TCHECK_EQ(weft_group_create(&g, true), 0);
	for (int i = 0; i < 3; i++)
		TCHECK_EQ(weft_spawn(NULL, mix_long, m, &(weft_spawn_opts_t){.group = g}), 0);
	TCHECK_EQ(weft_spawn(NULL, mix_fails, m, &(weft_spawn_opts_t){.group = g}), 0);
	TCHECK_EQ(weft_group_wait(g), -EIO);
	TCHECK_EQ(weft_group_destroy(g), 0);
	weft_sleep(3 * WEFT_MSEC);
	TCHECK_EQ(weft_cancel(ft), 0);
	void *r;
	TCHECK_EQ(weft_join(ft, &r), 0);
	TCHECK_EQ((intptr_t)r, -ECANCELED);
	for (int i = 0; i < 3; i++)
		TCHECK_EQ(weft_join(pt[i], NULL), 0);
	TCHECK_EQ(weft_join(ct, NULL), 0);
	TCHECK_EQ(weft_join(wt, NULL), 0);
	TCHECK_EQ(weft_join(st, NULL), 0);
	weft_timer_destroy(m->tm);
	mlog(m, "received %ld sum %ld ticks %ld", m->received, m->sum, m->ticks);
	TCHECK_EQ(m->received, 3 * MIX_PER);
	weft_sim_note((uint64_t)m->sum);
	weft_chan_release(m->c0);
	weft_chan_release(m->c1);
	weft_chan_release(m->cu);
	weft_mutex_destroy(&m->mu);
	weft_cond_destroy(&m->cv);
	return NULL;
}

/* One run of the workload under seed: its hash, its log, its trace. */
static uint64_t mix_run(uint64_t seed, mix *m, char *trace, size_t tlen)
{
	atomic_store(&tcheck_failures, 0);
	int tfd = -1;
	weft_config_t c = sim_cfg(seed);
	if (trace) {
		tfd = memfd_create("trace", 0);
		assert_true(tfd >= 0);
		c.sim_flags = WEFT_SIM_TRACE;
		c.sim_trace_fd = tfd;
	}
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &c), 0);
	weft_task_t t;
	assert_int_equal(weft_spawn(&t, mix_main, m, NULL), 0);
	assert_int_equal(weft_join(t, NULL), 0);
	uint64_t h = sim_info(rt).hash;
	assert_true(sim_info(rt).steps > 50);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
	if (trace) {
		ssize_t n = pread(tfd, trace, tlen - 1, 0);
		assert_true(n > 0 && (size_t)n < tlen - 1);
		trace[n] = 0;
		close(tfd);
	}
	return h;
}

static void test_a_seed_repeats_its_schedule_and_output(void **state)
{
	(void)state;
	static mix m1, m2;
	static char t1[1 << 20], t2[1 << 20];
	uint64_t h1 = mix_run(0x1234, &m1, t1, sizeof t1);
	uint64_t h2 = mix_run(0x1234, &m2, t2, sizeof t2);
	assert_true(h1 == h2);
	assert_int_equal(m1.len, m2.len);
	assert_memory_equal(m1.log, m2.log, m1.len);
	assert_string_equal(t1, t2);
	assert_non_null(strstr(m1.log, "forever ended -125")); /* -ECANCELED */
	assert_non_null(strstr(m1.log, "member fails"));
	/* The trace has a line per run. */
	assert_non_null(strstr(t1, "sim 0x1234 step 0 "));
}

static void test_seeds_give_different_schedules(void **state)
{
	(void)state;
	static mix m;
	uint64_t h[20];
	int distinct = 0;
	for (int i = 0; i < 20; i++) {
		h[i] = mix_run((uint64_t)i + 100, &m, NULL, 0);
		bool seen = false;
		for (int j = 0; j < i; j++)
			seen |= h[j] == h[i];
		distinct += !seen;
	}
	assert_true(distinct >= 15);
}

static void test_the_environment_seed_overrides(void **state)
{
	(void)state;
	setenv("WEFT_SIM_SEED", "0x77", 1);
	weft_runtime_t *rt = sim_start(5);
	assert_int_equal(sim_info(rt).seed, 0x77);
	assert_int_equal(weft_runtime_stop(rt), 0);
	unsetenv("WEFT_SIM_SEED");
	rt = sim_start(0);
	assert_int_equal(sim_info(rt).seed, 1);
	assert_int_equal(weft_runtime_stop(rt), 0);
}

/* Task ids restart in every sim: the same seed names the same tasks. */
static void test_ids_restart_in_each_sim(void **state)
{
	(void)state;
	weft_task_t first[2];
	for (int k = 0; k < 2; k++) {
		weft_runtime_t *rt = sim_start(9);
		assert_int_equal(weft_spawn(&first[k], noop, NULL, NULL), 0);
		assert_int_equal(weft_join(first[k], NULL), 0);
		assert_int_equal(weft_runtime_stop(rt), 0);
	}
	assert_true(first[0] == first[1]);
}

/* weft_main runs a whole program as a simulation. */
static void *main_prog(void *a)
{
	(void)a;
	weft_sleep(10 * WEFT_SEC);
	return (void *)(intptr_t)(weft_runtime_is_sim(weft_runtime_current()) ? 42 : 1);
}

static void test_weft_main_runs_a_simulation(void **state)
{
	(void)state;
	weft_config_t c = sim_cfg(2);
	assert_int_equal(weft_main(main_prog, NULL, &c), 42);
}

/* ------------------------------------------------------------ primitives under seeds */

/* Many tasks move numbers through channels guarded by a mutex-counted
 * total; a wait group and a semaphore bound the rest. Conservation is
 * checked after every seed. */
typedef struct cons {
	weft_chan_t *ch;
	weft_mutex_t mu;
	weft_sem_t sem;
	weft_wg_t wg;
	long sent, got, sum_sent, sum_got, in_sem, max_in_sem;
} cons;

#define CONS_P 4
#define CONS_N 40

static void *cons_prod(void *a)
{
	cons *c = a;
	for (long k = 1; k <= CONS_N; k++) {
		TCHECK_EQ(weft_sem_acquire(&c->sem), 0);
		c->in_sem++;
		if (c->in_sem > c->max_in_sem)
			c->max_in_sem = c->in_sem;
		if (k % 7 == 0)
			weft_yield();
		c->in_sem--;
		weft_sem_release(&c->sem, 1);
		TCHECK_EQ(weft_chan_send(c->ch, &k), 0);
		weft_mutex_lock(&c->mu);
		c->sent++;
		c->sum_sent += k;
		weft_mutex_unlock(&c->mu);
	}
	weft_wg_done(&c->wg);
	return NULL;
}

static void *cons_cons(void *a)
{
	cons *c = a;
	long v;
	int e;
	while ((e = weft_chan_recv_until(c->ch, &v, weft_deadline_in(50 * WEFT_MSEC))) == 0) {
		weft_mutex_lock(&c->mu);
		c->got++;
		c->sum_got += v;
		weft_mutex_unlock(&c->mu);
	}
	TCHECK(e == -EPIPE || e == -ETIMEDOUT);
	return NULL;
}

static void *cons_main(void *a)
{
	cons *c = a;
	memset(c, 0, sizeof *c);
	TCHECK_EQ(weft_chan_create(&c->ch, sizeof(long), wt_sim_seed_index % 3 == 0 ? 0 : 3), 0);
	weft_mutex_init(&c->mu);
	weft_sem_init(&c->sem, 2);
	weft_wg_init(&c->wg);
	weft_wg_add(&c->wg, CONS_P);
	weft_task_t cs[2];
	for (int i = 0; i < 2; i++)
		TCHECK_EQ(weft_spawn(&cs[i], cons_cons, c, NULL), 0);
	for (int i = 0; i < CONS_P; i++)
		TCHECK_EQ(weft_go(cons_prod, c), 0);
	TCHECK_EQ(weft_wg_wait(&c->wg), 0);
	weft_chan_close(c->ch);
	for (int i = 0; i < 2; i++)
		TCHECK_EQ(weft_join(cs[i], NULL), 0);
	weft_chan_release(c->ch);
	return NULL;
}

static void cons_check(void *a)
{
	cons *c = a;
	TCHECK_EQ(c->sent, CONS_P * CONS_N);
	TCHECK_EQ(c->got, c->sent);
	TCHECK_EQ(c->sum_got, c->sum_sent);
	TCHECK(c->max_in_sem <= 2);
}

static void test_primitives_conserve_sim(void **state)
{
	(void)state;
	static cons c;
	wt_sim_sweep("primitives_conserve", cons_main, cons_check, &c, WT_SIM_SEEDS);
}

/* A configuration the sim cannot honour is refused; a clock driven to the
 * end of time stays there (it saturated; a run cost once overflowed it). */
static void *far_main(void *a)
{
	(void)a;
	weft_time_t far = WEFT_NEVER - WEFT_SEC;
	TCHECK_EQ(weft_sleep_until(far), 0);
	for (int i = 0; i < 100; i++)
		weft_yield();
	TCHECK(weft_now() >= far && weft_now() < WEFT_NEVER);
	return NULL;
}

static void test_bad_configurations_and_the_end_of_time(void **state)
{
	(void)state;
	weft_runtime_t *rt = NULL;
	weft_config_t c = sim_cfg(3);
	c.sim_run_ns = WEFT_SEC + 1;
	assert_int_equal(weft_runtime_start(&rt, &c), -EINVAL);
	c = sim_cfg(3);
	c.sim_flags = 0x80;
	assert_int_equal(weft_runtime_start(&rt, &c), -EINVAL);
	c = sim_cfg(3);
	c.sim_trace_fd = -1;
	assert_int_equal(weft_runtime_start(&rt, &c), -EINVAL);
	c = sim_cfg(3);
	c.sim_run_ns = WEFT_SEC; /* the most: every run may cost up to a second */
	assert_int_equal(weft_runtime_start(&rt, &c), 0);
	weft_task_t t;
	assert_int_equal(weft_spawn(&t, far_main, NULL, NULL), 0);
	assert_int_equal(weft_join(t, NULL), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
}

int main(void)
{
	const char *child = getenv("WT_SIM_CHILD");
	if (child && strcmp(child, "wake") == 0) {
		static wake w;
		wake_owner(&w);
	}
	if (child && strcmp(child, "open") == 0)
		open_child();
	if (child && strcmp(child, "owner") == 0)
		owner_child();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_an_hour_of_sleep_takes_no_real_hour),
		cmocka_unit_test(test_owner_thread_time_is_virtual),
		cmocka_unit_test(test_equal_tick_timers_fire_in_a_seeded_order),
		cmocka_unit_test(test_deadlock_is_reported_not_hung),
		cmocka_unit_test(test_stop_gives_up_on_uncancellable_deadlock),
		cmocka_unit_test(test_only_the_owner_thread_may_touch_it),
		cmocka_unit_test(test_a_group_does_not_mix_a_sim_with_others),
		cmocka_unit_test(test_a_foreign_wake_aborts_with_the_seed),
		cmocka_unit_test(test_a_foreign_wake_of_an_open_wait_aborts),
		cmocka_unit_test(test_a_seed_repeats_its_schedule_and_output),
		cmocka_unit_test(test_seeds_give_different_schedules),
		cmocka_unit_test(test_the_environment_seed_overrides),
		cmocka_unit_test(test_ids_restart_in_each_sim),
		cmocka_unit_test(test_weft_main_runs_a_simulation),
		cmocka_unit_test(test_primitives_conserve_sim),
		cmocka_unit_test(test_bad_configurations_and_the_end_of_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
