/* test_rwlock.c - the readers-writer lock. */
#include "wt_sim.h"

#include <pthread.h>
#include <weft/sync.h>

/* White-box (src/sync/rwlock.c): readers holding it, and queued waiters. */
#define RW_READERS(rw) (__atomic_load_n(&(rw)->state, __ATOMIC_ACQUIRE) >> 2)
static uint32_t rw_queued(weft_rwlock_t *rw)
{
	weft_waitq_lock(&rw->wq);
	uint32_t n = rw->nwr + rw->nrd;
	weft_waitq_unlock(&rw->wq);
	return n;
}

static void wait_queued(weft_rwlock_t *rw, uint32_t n)
{
	while (rw_queued(rw) != n)
		weft_sleep(WEFT_MSEC / 4);
}

/* ------------------------------------------------------------ errors */

static weft_rwlock_t erw = WEFT_RWLOCK_INIT;

static void *foreign_unlock(void *a)
{
	(void)a;
	TCHECK_EQ(weft_rwlock_unlock(&erw), -EPERM); /* write-held by test-main */
	TCHECK_EQ(weft_rwlock_try_rdlock(&erw), -EAGAIN);
	TCHECK_EQ(weft_rwlock_try_wrlock(&erw), -EAGAIN);
	return NULL;
}

static void *errors_main(void *a)
{
	(void)a;
	TCHECK_EQ(weft_rwlock_init(NULL), -EINVAL);
	TCHECK_EQ(weft_rwlock_rdlock(NULL), -EINVAL);
	TCHECK_EQ(weft_rwlock_wrlock(NULL), -EINVAL);
	TCHECK_EQ(weft_rwlock_try_rdlock(NULL), -EINVAL);
	TCHECK_EQ(weft_rwlock_try_wrlock(NULL), -EINVAL);
	TCHECK_EQ(weft_rwlock_unlock(NULL), -EINVAL);
	TCHECK_EQ(weft_rwlock_destroy(NULL), -EINVAL);

	TCHECK_EQ(weft_rwlock_unlock(&erw), -EPERM); /* not locked */
	TCHECK_EQ(weft_rwlock_wrlock(&erw), 0);
	TCHECK_EQ(weft_rwlock_wrlock(&erw), -EDEADLK);
	TCHECK_EQ(weft_rwlock_destroy(&erw), -EBUSY);
	wt_join(wt_spawn(foreign_unlock, NULL));
	TCHECK_EQ(weft_rwlock_unlock(&erw), 0);
	TCHECK_EQ(weft_rwlock_unlock(&erw), -EPERM);

	TCHECK_EQ(weft_rwlock_rdlock(&erw), 0);
	TCHECK_EQ(weft_rwlock_try_rdlock(&erw), 0); /* readers share */
	TCHECK_EQ(weft_rwlock_try_wrlock(&erw), -EAGAIN);
	TCHECK_EQ(weft_rwlock_destroy(&erw), -EBUSY);
	TCHECK_EQ(weft_rwlock_unlock(&erw), 0);
	TCHECK_EQ(weft_rwlock_unlock(&erw), 0);
	TCHECK_EQ(weft_rwlock_unlock(&erw), -EPERM);
	TCHECK_EQ(weft_rwlock_try_wrlock(&erw), 0);
	TCHECK_EQ(weft_rwlock_unlock(&erw), 0);
	TCHECK_EQ(weft_rwlock_destroy(&erw), 0);
	return NULL;
}

static void test_errors(void **state)
{
	(void)state;
	wt_run(errors_main, NULL, 2);
}

/* ------------------------------------------------------------ invariants */

/* Tasks and threads mix reads and writes; a writer is never inside with
 * anyone, readers are. Every write is counted exactly. */
static weft_rwlock_t irw = WEFT_RWLOCK_INIT;
static _Atomic int readers_in, writers_in, max_readers;
static long writes; /* plain: written only under the write lock */
static _Atomic long write_ops;
static long rounds, ntasks;

static bool writes_now(uint64_t seed)
{
	return (seed >> 33) % 4 == 0;
}

/* The writes the mixed loops of seeds from .. from + n - 1 make: each
 * loop's choices depend on its seed alone. */
static long writes_of(uint64_t from, long n)
{
	long w = 0;
	for (uint64_t s = from; s < from + (uint64_t)n; s++)
		for (uint64_t x = s, i = 0; i < (uint64_t)rounds; i++)
			w += writes_now(x = wt_lcg(x));
	return w;
}

static void mixed_loop(uint64_t seed)
{
	for (long i = 0; i < rounds; i++) {
		seed = wt_lcg(seed);
		if (writes_now(seed)) {
			TCHECK_EQ(weft_rwlock_wrlock(&irw), 0);
			TCHECK_EQ(atomic_fetch_add(&writers_in, 1), 0);
			TCHECK_EQ(atomic_load(&readers_in), 0);
			writes++;
			atomic_fetch_add_explicit(&write_ops, 1, memory_order_relaxed);
			if (i % 16 == 0)
				weft_yield();
			atomic_fetch_sub(&writers_in, 1);
		} else {
			TCHECK_EQ(weft_rwlock_rdlock(&irw), 0);
			int r = atomic_fetch_add(&readers_in, 1) + 1;
			TCHECK_EQ(atomic_load(&writers_in), 0);
			int m = atomic_load(&max_readers);
			while (r > m && !atomic_compare_exchange_weak(&max_readers, &m, r))
				;
			TCHECK(writes >= 0); /* reads the data the writers write (TSan checks it) */
			if (i % 8 == 0)
				weft_yield();
			atomic_fetch_sub(&readers_in, 1);
		}
		TCHECK_EQ(weft_rwlock_unlock(&irw), 0);
	}
}

static void *mixed_task(void *a)
{
	mixed_loop((uint64_t)(uintptr_t)a);
	return NULL;
}

static void *invariants_main(void *a)
{
	(void)a;
	/* Two of the parties are plain threads; none under the simulation,
	 * which only its own thread may touch. */
	int threads = weft_runtime_is_sim(weft_runtime_current()) ? 0 : 2;
	pthread_t th[2];
	for (int i = 0; i < threads; i++)
		TCHECK_EQ(pthread_create(&th[i], NULL, mixed_task, (void *)(uintptr_t)(1000 + i)), 0);
	weft_group_t *g;
	TCHECK_EQ(weft_group_create(&g, false), 0);
	for (long i = 0; i < ntasks; i++)
		TCHECK_EQ(weft_spawn(NULL, mixed_task, (void *)(i + 1), &(weft_spawn_opts_t){.group = g}), 0);
	TCHECK_EQ(weft_group_wait(g), 0);
	weft_group_destroy(g);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	return NULL;
}

static void test_invariants_under_contention(void **state)
{
	(void)state;
	rounds = WT_SIZE(1000, 500);
	ntasks = WT_SIZE(300, 60);
	wt_run(invariants_main, NULL, 0);
	assert_int_equal(writes, atomic_load(&write_ops));
	assert_int_equal(writes, writes_of(1, ntasks) + writes_of(1000, 2));
	assert_true(atomic_load(&max_readers) >= 1);
	assert_int_equal(weft_rwlock_destroy(&irw), 0);
}

/* ------------------------------------------------------------ readers share */

enum { NR = 8 };
static weft_rwlock_t srw = WEFT_RWLOCK_INIT;
static _Atomic int sharing;

static void *sharing_reader(void *a)
{
	(void)a;
	TCHECK_EQ(weft_rwlock_rdlock(&srw), 0);
	atomic_fetch_add(&sharing, 1);
	/* Only if all NR hold it at once can this end. */
	while (atomic_load(&sharing) < NR)
		weft_sleep(WEFT_MSEC / 4);
	TCHECK_EQ(weft_rwlock_unlock(&srw), 0);
	return NULL;
}

static void *sharing_main(void *a)
{
	(void)a;
	weft_task_t t[NR];
	for (int i = 0; i < NR; i++)
		t[i] = wt_spawn(sharing_reader, NULL);
	for (int i = 0; i < NR; i++)
		wt_join(t[i]);
	return NULL;
}

static void test_readers_share(void **state)
{
	(void)state;
	wt_run(sharing_main, NULL, 2);
	assert_int_equal(atomic_load(&sharing), NR);
}

/* A writer's unlock lets every reader queued behind it in at once. */
static weft_rwlock_t brw = WEFT_RWLOCK_INIT;
static _Atomic int batch_in;

static void *batch_reader(void *a)
{
	(void)a;
	TCHECK_EQ(weft_rwlock_rdlock(&brw), 0);
	atomic_fetch_add(&batch_in, 1);
	while (atomic_load(&batch_in) < NR)
		weft_sleep(WEFT_MSEC / 4);
	TCHECK_EQ(weft_rwlock_unlock(&brw), 0);
	return NULL;
}

static void *batch_main(void *a)
{
	(void)a;
	TCHECK_EQ(weft_rwlock_wrlock(&brw), 0);
	weft_task_t t[NR];
	for (int i = 0; i < NR; i++)
		t[i] = wt_spawn(batch_reader, NULL);
	wait_queued(&brw, NR);
	TCHECK_EQ(atomic_load(&batch_in), 0);
	TCHECK_EQ(weft_rwlock_unlock(&brw), 0);
	for (int i = 0; i < NR; i++)
		wt_join(t[i]);
	TCHECK_EQ(weft_rwlock_destroy(&brw), 0);
	return NULL;
}

static void test_writer_unlock_admits_readers(void **state)
{
	(void)state;
	wt_run(batch_main, NULL, 2);
}

/* ------------------------------------------------------------ no writer starvation */

/* Readers keep the lock read-held without a gap (each rdlocks again before
 * it unlocks), yet a writer gets in: once it waits, new readers queue. */
static weft_rwlock_t wrw = WEFT_RWLOCK_INIT;
static _Atomic int writer_done;

static void *relay_reader(void *a)
{
	(void)a;
	TCHECK_EQ(weft_rwlock_rdlock(&wrw), 0);
	while (!atomic_load(&writer_done)) {
		weft_sleep(WEFT_MSEC / 10);
		/* Hand over to a fresh read hold: the count never drops to 0. */
		int r = weft_rwlock_try_rdlock(&wrw);
		if (r == 0) {
			TCHECK_EQ(weft_rwlock_unlock(&wrw), 0);
			continue;
		}
		TCHECK_EQ(r, -EAGAIN); /* a writer waits: new readers are refused */
		TCHECK_EQ(weft_rwlock_unlock(&wrw), 0);
		TCHECK_EQ(weft_rwlock_rdlock(&wrw), 0); /* queues behind the writer */
	}
	TCHECK_EQ(weft_rwlock_unlock(&wrw), 0);
	return NULL;
}

static void *writer_starvation_main(void *a)
{
	(void)a;
	enum { R = 6 };
	weft_task_t t[R];
	for (int i = 0; i < R; i++)
		t[i] = wt_spawn(relay_reader, NULL);
	while (RW_READERS(&wrw) < R)
		weft_sleep(WEFT_MSEC / 4);
	/* A generous deadline only so that a bug fails instead of hanging. */
	TCHECK_EQ(weft_rwlock_wrlock_until(&wrw, wt_hang_deadline()), 0);
	TCHECK_EQ(RW_READERS(&wrw), 0);
	atomic_store(&writer_done, 1);
	TCHECK_EQ(weft_rwlock_unlock(&wrw), 0);
	for (int i = 0; i < R; i++)
		wt_join(t[i]);
	return NULL;
}

static void test_writer_not_starved(void **state)
{
	(void)state;
	wt_run(writer_starvation_main, NULL, 2);
	assert_int_equal(weft_rwlock_destroy(&wrw), 0);
}

/* ------------------------------------------------------------ the grant order */

/* Writers get the lock in the order they queued; a writer's unlock lets in
 * every reader waiting at that moment, before the next writer. Queued
 * behind the main task's write hold: W0, three readers, W1, two readers,
 * W2 (each seen queued before the next comes). */
enum { OW = 3, OR = 5 };
static weft_rwlock_t orw = WEFT_RWLOCK_INIT;
static int o_order[OW], o_n; /* written under the write lock */
static int o_readers_at[OW];
static _Atomic int o_readers;

static void *order_writer(void *a)
{
	int k = (int)(intptr_t)a;
	TCHECK_EQ(weft_rwlock_wrlock(&orw), 0);
	o_order[o_n++] = k;
	o_readers_at[k] = atomic_load(&o_readers);
	if (k == 0)
		weft_yield(); /* held: nobody may come in meanwhile */
	TCHECK_EQ(weft_rwlock_unlock(&orw), 0);
	return NULL;
}

static void *order_reader(void *a)
{
	(void)a;
	TCHECK_EQ(weft_rwlock_rdlock(&orw), 0);
	atomic_fetch_add(&o_readers, 1);
	TCHECK_EQ(weft_rwlock_unlock(&orw), 0);
	return NULL;
}

static void *grant_order_main(void *a)
{
	(void)a;
	o_n = 0;
	atomic_store(&o_readers, 0);
	TCHECK_EQ(weft_rwlock_wrlock(&orw), 0);
	weft_task_t t[OW + OR];
	int nt = 0, nw = 0;
	for (const char *c = "wrrrwrrw"; *c; c++) {
		t[nt++] = *c == 'w' ? wt_spawn(order_writer, (void *)(intptr_t)nw++) : wt_spawn(order_reader, NULL);
		wait_queued(&orw, (uint32_t)nt);
	}
	TCHECK_EQ(weft_rwlock_unlock(&orw), 0);
	for (int i = 0; i < nt; i++)
		wt_join(t[i]);
	TCHECK_EQ(o_n, OW);
	for (int k = 0; k < OW; k++) {
		TCHECK_EQ(o_order[k], k);	/* FIFO */
		TCHECK_EQ(o_readers_at[k], OR); /* every reader waiting at the unlock went first */
	}
	TCHECK_EQ(weft_rwlock_destroy(&orw), 0);
	return NULL;
}

static void test_grant_order(void **state)
{
	(void)state;
	wt_run(grant_order_main, NULL, 2);
}

/* ------------------------------------------------------------ deadlines, cancel */

static weft_rwlock_t drw = WEFT_RWLOCK_INIT;
static _Atomic int dstage, writer_done;

static weft_time_t writer_wait; /* the timed writer's deadline, from now */

static void *timed_writer(void *a)
{
	(void)a;
	weft_time_t dl = weft_deadline_in(writer_wait);
	TCHECK_EQ(weft_rwlock_wrlock_until(&drw, dl), -ETIMEDOUT);
	TCHECK(weft_now() >= dl);
	TCHECK_EQ(weft_rwlock_wrlock_until(&drw, weft_now() - 1), -ETIMEDOUT);
	atomic_store(&writer_done, 1);
	return NULL;
}

static void *queued_reader(void *a)
{
	(void)a;
	TCHECK_EQ(weft_rwlock_rdlock(&drw), 0);
	atomic_store(&dstage, 1);
	TCHECK_EQ(weft_rwlock_unlock(&drw), 0);
	return NULL;
}

static void *timed_reader(void *a)
{
	(void)a;
	weft_time_t dl = weft_deadline_in(5 * WEFT_MSEC);
	TCHECK_EQ(weft_rwlock_rdlock_until(&drw, dl), -ETIMEDOUT);
	TCHECK(weft_now() >= dl);
	return NULL;
}

static void *deadline_main(void *a)
{
	(void)a;
	/* A writer times out behind a reader; a reader that queued behind the
	 * writer then gets in (while the first reader still holds it). The
	 * reader must queue before the writer's deadline, which no load can
	 * promise: when it did not (it then just got in), try again with a
	 * deadline twice as long, until the order happened. Every attempt
	 * checks only what holds either way. */
	writer_wait = WT_SIZE(5, 20) * WEFT_MSEC;
	for (;; writer_wait *= 2) {
		atomic_store(&dstage, 0);
		atomic_store(&writer_done, 0);
		TCHECK_EQ(weft_rwlock_rdlock(&drw), 0);
		weft_task_t w = wt_spawn(timed_writer, NULL);
		while (rw_queued(&drw) != 1 && !atomic_load(&writer_done))
			weft_sleep(WEFT_MSEC / 4);
		weft_task_t r = wt_spawn(queued_reader, NULL);
		while (rw_queued(&drw) != 2 && !atomic_load(&writer_done))
			weft_sleep(WEFT_MSEC / 4);
		bool queued_behind = rw_queued(&drw) == 2;
		wt_join(w);
		wt_join(r);
		TCHECK_EQ(atomic_load(&dstage), 1);
		TCHECK_EQ(weft_rwlock_unlock(&drw), 0);
		if (queued_behind)
			break;
		TCHECK(writer_wait < WT_HANG_NS);
		if (writer_wait >= WT_HANG_NS)
			return NULL;
	}
	/* A reader times out behind a writer. */
	TCHECK_EQ(weft_rwlock_wrlock(&drw), 0);
	wt_join(wt_spawn(timed_reader, NULL));
	TCHECK_EQ(rw_queued(&drw), 0);
	TCHECK_EQ(weft_rwlock_unlock(&drw), 0);
	TCHECK_EQ(weft_rwlock_destroy(&drw), 0);
	return NULL;
}

static void test_deadlines(void **state)
{
	(void)state;
	wt_run(deadline_main, NULL, 2);
}

static weft_rwlock_t xrw = WEFT_RWLOCK_INIT;
static _Atomic int xread;

static void *cancelled_reader(void *a)
{
	(void)a;
	TCHECK_EQ(weft_rwlock_rdlock(&xrw), -ECANCELED);
	return NULL;
}

static void *cancelled_writer(void *a)
{
	(void)a;
	TCHECK_EQ(weft_rwlock_wrlock(&xrw), -ECANCELED);
	return NULL;
}

static void *late_reader(void *a)
{
	(void)a;
	TCHECK_EQ(weft_rwlock_rdlock(&xrw), 0);
	atomic_store(&xread, 1);
	TCHECK_EQ(weft_rwlock_unlock(&xrw), 0);
	return NULL;
}

static void *cancel_main(void *a)
{
	(void)a;
	TCHECK_EQ(weft_rwlock_wrlock(&xrw), 0);
	weft_task_t r = wt_spawn(cancelled_reader, NULL);
	weft_task_t w = wt_spawn(cancelled_writer, NULL);
	wait_queued(&xrw, 2);
	TCHECK_EQ(weft_cancel(r), 0);
	TCHECK_EQ(weft_cancel(w), 0);
	wt_join(r);
	wt_join(w);
	TCHECK_EQ(rw_queued(&xrw), 0);
	TCHECK_EQ(weft_rwlock_unlock(&xrw), 0);
	TCHECK_EQ(weft_rwlock_destroy(&xrw), 0);
	/* A reader queued behind a writer that is cancelled gets in. */
	TCHECK_EQ(weft_rwlock_rdlock(&xrw), 0);
	w = wt_spawn(cancelled_writer, NULL);
	wait_queued(&xrw, 1);
	r = wt_spawn(late_reader, NULL);
	wait_queued(&xrw, 2);
	TCHECK_EQ(weft_cancel(w), 0);
	wt_join(w);
	wt_join(r); /* while we still hold a read lock */
	TCHECK_EQ(atomic_load(&xread), 1);
	TCHECK_EQ(weft_rwlock_unlock(&xrw), 0);
	TCHECK_EQ(weft_rwlock_destroy(&xrw), 0);
	return NULL;
}

static void test_cancel(void **state)
{
	(void)state;
	wt_run(cancel_main, NULL, 2);
}

/* ------------------------------------------------------------ give-up stress */

/* Readers and writers with short deadlines, some cancelled, race each
 * other: exclusion holds throughout, and nothing is left held or queued. */
static weft_rwlock_t grw = WEFT_RWLOCK_INIT;
static _Atomic int g_readers, g_writers;
static _Atomic long g_ok;
static int g_iters = 200, g_tasks = 48;

static void *impatient(void *a)
{
	uint64_t seed = (uint64_t)(uintptr_t)a;
	for (int i = 0; i < g_iters; i++) {
		seed = wt_lcg(seed);
		bool writer = (seed >> 40) % 3 == 0;
		weft_time_t dl = weft_deadline_in((weft_time_t)((seed >> 33) % 300000));
		int r = writer ? weft_rwlock_wrlock_until(&grw, dl) : weft_rwlock_rdlock_until(&grw, dl);
		if (r == -ECANCELED)
			return NULL;
		if (r == -ETIMEDOUT)
			continue;
		TCHECK_EQ(r, 0);
		atomic_fetch_add(&g_ok, 1);
		if (writer) {
			TCHECK_EQ(atomic_fetch_add(&g_writers, 1), 0);
			TCHECK_EQ(atomic_load(&g_readers), 0);
		} else {
			atomic_fetch_add(&g_readers, 1);
			TCHECK_EQ(atomic_load(&g_writers), 0);
		}
		if (i % 5 == 0)
			weft_sleep(30000);
		else
			weft_yield();
		if (writer)
			atomic_fetch_sub(&g_writers, 1);
		else
			atomic_fetch_sub(&g_readers, 1);
		TCHECK_EQ(weft_rwlock_unlock(&grw), 0);
	}
	return NULL;
}

static void *giveup_main(void *a)
{
	(void)a;
	wt_spawn_cancel_some(impatient, g_tasks, 4);
	return NULL;
}

static void test_giving_up_is_clean(void **state)
{
	(void)state;
	wt_run(giveup_main, NULL, 2);
	assert_true(atomic_load(&g_ok) > 0);
	assert_int_equal(grw.state, 0);
	assert_int_equal(grw.nwr + grw.nrd, 0);
	assert_int_equal(weft_rwlock_destroy(&grw), 0);
}

/* ------------------------------------------------------------ stackless */

static weft_rwlock_t prw = WEFT_RWLOCK_INIT;

static weft_step_t step_user(void *s, void **r)
{
	(void)s;
	(void)r;
	TCHECK_EQ(weft_rwlock_try_rdlock(&prw), -EAGAIN);
	TCHECK_EQ(weft_rwlock_rdlock(&prw), -EPERM);
	TCHECK_EQ(weft_rwlock_wrlock(&prw), -EPERM);
	TCHECK_EQ(rw_queued(&prw), 0);
	return WEFT_STEP_DONE;
}

static void *stackless_main(void *a)
{
	(void)a;
	weft_task_t t;
	TCHECK_EQ(weft_rwlock_wrlock(&prw), 0);
	TCHECK_EQ(weft_spawn_step(&t, step_user, NULL, NULL), 0);
	wt_join(t);
	TCHECK_EQ(weft_rwlock_unlock(&prw), 0);
	TCHECK_EQ(weft_rwlock_destroy(&prw), 0);
	return NULL;
}

static void test_stackless(void **state)
{
	(void)state;
	wt_run(stackless_main, NULL, 2);
}

/* ------------------------------------------------------------ under the simulation */

/* The twins: the same bodies, one task at a time in an order drawn from
 * each seed (tests/wt_sim.h), each seed starting from what its checks
 * leave. */
static void *invariants_sim_main(void *a)
{
	writes = 0;
	atomic_store(&write_ops, 0);
	return invariants_main(a);
}

static void invariants_sim_check(void *a)
{
	(void)a;
	TCHECK_EQ(writes, atomic_load(&write_ops));
	TCHECK_EQ(writes, writes_of(1, ntasks)); /* every write counted once */
	TCHECK_EQ(atomic_load(&readers_in) + atomic_load(&writers_in), 0);
	TCHECK_EQ(weft_rwlock_destroy(&irw), 0);
}

static void test_invariants_under_contention_sim(void **state)
{
	(void)state;
	rounds = 30;
	ntasks = 12;
	wt_sim_sweep("sync/rwlock_invariants", invariants_sim_main, invariants_sim_check, NULL, WT_SIM_SEEDS);
}

static void *sharing_sim_main(void *a)
{
	atomic_store(&sharing, 0);
	return sharing_main(a);
}

static void sharing_sim_check(void *a)
{
	(void)a;
	TCHECK_EQ(atomic_load(&sharing), NR);
	TCHECK_EQ(weft_rwlock_destroy(&srw), 0);
}

static void test_readers_share_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/rwlock_readers_share", sharing_sim_main, sharing_sim_check, NULL, WT_SIM_SEEDS);
}

static void *batch_sim_main(void *a)
{
	atomic_store(&batch_in, 0);
	return batch_main(a);
}

static void test_writer_unlock_admits_readers_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/rwlock_writer_unlock_admits_readers", batch_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *starvation_sim_main(void *a)
{
	atomic_store(&writer_done, 0);
	return writer_starvation_main(a);
}

static void starvation_sim_check(void *a)
{
	(void)a;
	TCHECK_EQ(weft_rwlock_destroy(&wrw), 0);
}

static void test_writer_not_starved_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/rwlock_writer_not_starved", starvation_sim_main, starvation_sim_check, NULL, WT_SIM_SEEDS);
}

static void test_grant_order_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/rwlock_grant_order", grant_order_main, NULL, NULL, WT_SIM_SEEDS);
}

static void test_deadlines_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/rwlock_deadlines", deadline_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *cancel_sim_main(void *a)
{
	atomic_store(&xread, 0);
	return cancel_main(a);
}

static void test_cancel_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/rwlock_cancel", cancel_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *giveup_sim_main(void *a)
{
	atomic_store(&g_ok, 0);
	return giveup_main(a);
}

static void giveup_sim_check(void *a)
{
	(void)a;
	TCHECK(atomic_load(&g_ok) > 0);
	TCHECK_EQ(grw.state, 0);
	TCHECK_EQ(grw.nwr + grw.nrd, 0);
	TCHECK_EQ(weft_rwlock_destroy(&grw), 0);
}

static void test_giving_up_is_clean_sim(void **state)
{
	(void)state;
	g_iters = 60;
	g_tasks = 16;
	wt_sim_sweep("sync/rwlock_giving_up_is_clean", giveup_sim_main, giveup_sim_check, NULL, WT_SIM_SEEDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_invariants_under_contention),
		cmocka_unit_test(test_readers_share),
		cmocka_unit_test(test_writer_unlock_admits_readers),
		cmocka_unit_test(test_writer_not_starved),
		cmocka_unit_test(test_grant_order),
		cmocka_unit_test(test_deadlines),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_giving_up_is_clean),
		cmocka_unit_test(test_stackless),
		cmocka_unit_test(test_invariants_under_contention_sim),
		cmocka_unit_test(test_readers_share_sim),
		cmocka_unit_test(test_writer_unlock_admits_readers_sim),
		cmocka_unit_test(test_writer_not_starved_sim),
		cmocka_unit_test(test_grant_order_sim),
		cmocka_unit_test(test_deadlines_sim),
		cmocka_unit_test(test_cancel_sim),
		cmocka_unit_test(test_giving_up_is_clean_sim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
