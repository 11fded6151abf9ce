/* test_rwlock.c - the readers-writer lock. */
#include "weft_test.h"

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
static long rounds;

static void mixed_loop(uint64_t seed)
{
	for (long i = 0; i < rounds; i++) {
		seed = seed * 6364136223846793005u + 1442695040888963407u;
		if ((seed >> 33) % 4 == 0) {
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
	enum { THREADS = 2 };
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++)
		TCHECK_EQ(pthread_create(&th[i], NULL, mixed_task, (void *)(uintptr_t)(1000 + i)), 0);
	long n = WT_SIZE(300, 60);
	weft_group_t *g;
	TCHECK_EQ(weft_group_create(&g, false), 0);
	for (long i = 0; i < n; i++)
		TCHECK_EQ(weft_spawn(NULL, mixed_task, (void *)(i + 1), &(weft_spawn_opts_t){.group = g}), 0);
	TCHECK_EQ(weft_group_wait(g), 0);
	weft_group_destroy(g);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	return NULL;
}

static void test_invariants_under_contention(void **state)
{
	(void)state;
	rounds = WT_SIZE(1000, 500);
	wt_run(invariants_main, NULL, 0);
	assert_int_equal(writes, atomic_load(&write_ops));
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

static void *impatient(void *a)
{
	uint64_t seed = (uint64_t)(uintptr_t)a;
	for (int i = 0; i < 200; i++) {
		seed = seed * 6364136223846793005u + 1442695040888963407u;
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
	wt_spawn_cancel_some(impatient, 48, 4);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_invariants_under_contention),
		cmocka_unit_test(test_readers_share),
		cmocka_unit_test(test_writer_unlock_admits_readers),
		cmocka_unit_test(test_writer_not_starved),
		cmocka_unit_test(test_deadlines),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_giving_up_is_clean),
		cmocka_unit_test(test_stackless),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
