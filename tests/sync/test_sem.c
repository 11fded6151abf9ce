/* test_sem.c - counting semaphores. */
#include "wt_sim.h"

#include <pthread.h>
#include <string.h>
#include <weft/sync.h>

static uint32_t sem_waiters(weft_sem_t *s)
{
	weft_waitq_lock(&s->q);
	uint32_t n = s->nwait;
	weft_waitq_unlock(&s->q);
	return n;
}

static void wait_sem_waiters(weft_sem_t *s, uint32_t n)
{
	while (sem_waiters(s) != n)
		weft_sleep(WEFT_MSEC / 4);
}

/* ------------------------------------------------------------ errors */

static void test_errors(void **state)
{
	(void)state;
	weft_sem_t s;
	assert_int_equal(weft_sem_init(NULL, 1), -EINVAL);
	assert_int_equal(weft_sem_init(&s, (unsigned)WEFT_SEM_MAX + 1), -EINVAL);
	assert_int_equal(weft_sem_init(&s, 2), 0);
	assert_int_equal(weft_sem_acquire(NULL), -EINVAL);
	assert_int_equal(weft_sem_try_acquire(NULL), -EINVAL);
	assert_int_equal(weft_sem_release(NULL, 1), -EINVAL);
	assert_int_equal(weft_sem_destroy(NULL), -EINVAL);

	assert_int_equal(weft_sem_try_acquire(&s), 0);
	assert_int_equal(weft_sem_acquire(&s), 0); /* free: no wait, fine on a plain thread */
	assert_int_equal(weft_sem_try_acquire(&s), -EAGAIN);
	assert_int_equal(weft_sem_value(&s), 0);
	assert_int_equal(weft_sem_acquire_until(&s, weft_deadline_in(2 * WEFT_MSEC)), -ETIMEDOUT);
	assert_int_equal(weft_sem_release(&s, 0), 0);
	assert_int_equal(weft_sem_release(&s, 2), 0);
	assert_int_equal(weft_sem_value(&s), 2);
	assert_int_equal(weft_sem_release(&s, WEFT_SEM_MAX), -EOVERFLOW); /* nothing changes */
	assert_int_equal(weft_sem_value(&s), 2);
	assert_int_equal(weft_sem_release(&s, WEFT_SEM_MAX - 2), 0);
	assert_int_equal(weft_sem_value(&s), WEFT_SEM_MAX);
	assert_int_equal(weft_sem_release(&s, 1), -EOVERFLOW);
	assert_int_equal(weft_sem_destroy(&s), 0);
	weft_sem_t s2 = WEFT_SEM_INIT(3);
	assert_int_equal(weft_sem_value(&s2), 3);
}

/* ------------------------------------------------------------ never exceeded, never lost */

enum { PERMITS = 3 };
static weft_sem_t cs = WEFT_SEM_INIT(PERMITS);
static _Atomic int holding, max_holding;
static _Atomic long acquisitions;
static long rounds, ntasks;
static int nthreads;

static void hold_loop(void)
{
	for (long i = 0; i < rounds; i++) {
		TCHECK_EQ(weft_sem_acquire(&cs), 0);
		int h = atomic_fetch_add(&holding, 1) + 1;
		TCHECK(h <= PERMITS);
		int m = atomic_load(&max_holding);
		while (h > m && !atomic_compare_exchange_weak(&max_holding, &m, h))
			;
		atomic_fetch_add_explicit(&acquisitions, 1, memory_order_relaxed);
		if (i % 4 == 0)
			weft_yield();
		atomic_fetch_sub(&holding, 1);
		TCHECK_EQ(weft_sem_release(&cs, 1), 0);
	}
}

static void *holder(void *a)
{
	(void)a;
	hold_loop();
	return NULL;
}

static void *conservation_main(void *a)
{
	(void)a;
	/* Two holders are plain threads; none under the simulation, which
	 * only its own thread may touch. */
	nthreads = weft_runtime_is_sim(weft_runtime_current()) ? 0 : 2;
	pthread_t th[2];
	for (int i = 0; i < nthreads; i++)
		TCHECK_EQ(pthread_create(&th[i], NULL, holder, NULL), 0);
	weft_group_t *g;
	TCHECK_EQ(weft_group_create(&g, false), 0);
	for (long i = 0; i < ntasks; i++)
		TCHECK_EQ(weft_spawn(NULL, holder, NULL, &(weft_spawn_opts_t){.group = g}), 0);
	TCHECK_EQ(weft_group_wait(g), 0);
	weft_group_destroy(g);
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	return NULL;
}

static void test_count_never_exceeded_nor_lost(void **state)
{
	(void)state;
	rounds = WT_SIZE(1000, 500);
	ntasks = WT_SIZE(500, 100);
	wt_run(conservation_main, NULL, 0);
	assert_int_equal(atomic_load(&acquisitions), (ntasks + nthreads) * rounds);
	assert_true(atomic_load(&max_holding) <= PERMITS);
	assert_int_equal(weft_sem_value(&cs), PERMITS); /* every permit came back */
	assert_int_equal(weft_sem_destroy(&cs), 0);
}

/* All the permits can be held at once, and no more. */
static weft_sem_t as = WEFT_SEM_INIT(PERMITS);
static _Atomic int all_in, all_release;

static void *all_holder(void *a)
{
	(void)a;
	TCHECK_EQ(weft_sem_acquire(&as), 0);
	atomic_fetch_add(&all_in, 1);
	while (!atomic_load(&all_release))
		weft_sleep(WEFT_MSEC / 4);
	TCHECK_EQ(weft_sem_release(&as, 1), 0);
	return NULL;
}

static void *all_main(void *a)
{
	(void)a;
	weft_task_t t[PERMITS + 1];
	for (int i = 0; i < PERMITS; i++)
		t[i] = wt_spawn(all_holder, NULL);
	while (atomic_load(&all_in) < PERMITS)
		weft_sleep(WEFT_MSEC / 4);
	t[PERMITS] = wt_spawn(all_holder, NULL);
	wait_sem_waiters(&as, 1); /* one more has to wait */
	TCHECK_EQ(atomic_load(&all_in), PERMITS);
	TCHECK_EQ(weft_sem_try_acquire(&as), -EAGAIN);
	atomic_store(&all_release, 1);
	for (int i = 0; i <= PERMITS; i++)
		wt_join(t[i]);
	TCHECK_EQ(atomic_load(&all_in), PERMITS + 1);
	TCHECK_EQ(weft_sem_value(&as), PERMITS);
	return NULL;
}

static void test_all_permits_at_once(void **state)
{
	(void)state;
	wt_run(all_main, NULL, 2);
}

/* Permits given to waiters that are timing out or being cancelled are not
 * lost: with short deadlines and cancels racing releases, every permit is
 * back at the end. */
static weft_sem_t gs = WEFT_SEM_INIT(2);
static int g_iters = 300, g_tasks = 48;

static void *impatient(void *a)
{
	uint64_t seed = (uint64_t)(uintptr_t)a;
	for (int i = 0; i < g_iters; i++) {
		seed = wt_lcg(seed);
		int r = weft_sem_acquire_until(&gs, weft_deadline_in((weft_time_t)((seed >> 33) % 200000)));
		if (r == -ECANCELED)
			return NULL;
		if (r == -ETIMEDOUT)
			continue;
		TCHECK_EQ(r, 0);
		if (i % 5 == 0)
			weft_sleep(20000);
		TCHECK_EQ(weft_sem_release(&gs, 1), 0);
	}
	return NULL;
}

static void *giveup_main(void *a)
{
	(void)a;
	wt_spawn_cancel_some(impatient, g_tasks, 4);
	return NULL;
}

static void test_giving_up_loses_nothing(void **state)
{
	(void)state;
	wt_run(giveup_main, NULL, 2);
	assert_int_equal(weft_sem_value(&gs), 2);
	assert_int_equal(weft_sem_destroy(&gs), 0);
}

/* ------------------------------------------------------------ FIFO */

enum { NF = 6 };
static weft_sem_t fs = WEFT_SEM_INIT(0);
static int order[NF], norder;

static void *fifo_waiter(void *a)
{
	TCHECK_EQ(weft_sem_acquire(&fs), 0);
	order[norder++] = (int)(intptr_t)a; /* one permit at a time: serialized */
	return NULL;
}

static void *fifo_main(void *a)
{
	(void)a;
	weft_task_t t[NF];
	for (int i = 0; i < NF; i++) {
		t[i] = wt_spawn(fifo_waiter, (void *)(intptr_t)i);
		wait_sem_waiters(&fs, (uint32_t)i + 1);
	}
	TCHECK_EQ(weft_sem_destroy(&fs), -EBUSY);
	TCHECK_EQ(weft_sem_try_acquire(&fs), -EAGAIN);
	for (int i = 0; i < NF; i++) {
		/* A newcomer does not barge: the permit goes to the queue. */
		TCHECK_EQ(weft_sem_release(&fs, 1), 0);
		TCHECK_EQ(weft_sem_try_acquire(&fs), -EAGAIN);
		wt_join(t[i]);
	}
	for (int i = 0; i < NF; i++)
		TCHECK_EQ(order[i], i);
	TCHECK_EQ(weft_sem_value(&fs), 0);
	TCHECK_EQ(weft_sem_destroy(&fs), 0);
	return NULL;
}

static void test_fifo(void **state)
{
	(void)state;
	wt_run(fifo_main, NULL, 2);
}

/* release(n) wakes up to n waiters; the rest goes to the count. */
static weft_sem_t ms = WEFT_SEM_INIT(0);

static void *one_acquire(void *a)
{
	(void)a;
	TCHECK_EQ(weft_sem_acquire(&ms), 0);
	return NULL;
}

static void *multi_main(void *a)
{
	(void)a;
	weft_task_t t[3];
	for (int i = 0; i < 3; i++)
		t[i] = wt_spawn(one_acquire, NULL);
	wait_sem_waiters(&ms, 3);
	TCHECK_EQ(weft_sem_release(&ms, 5), 0);
	for (int i = 0; i < 3; i++)
		wt_join(t[i]);
	TCHECK_EQ(weft_sem_value(&ms), 2);
	return NULL;
}

static void test_release_many(void **state)
{
	(void)state;
	wt_run(multi_main, NULL, 2);
}

/* ------------------------------------------------------------ deadline, cancel */

static weft_sem_t ds = WEFT_SEM_INIT(0);

static void *timed(void *a)
{
	(void)a;
	weft_time_t dl = weft_deadline_in(5 * WEFT_MSEC);
	TCHECK_EQ(weft_sem_acquire_until(&ds, dl), -ETIMEDOUT);
	TCHECK(weft_now() >= dl);
	TCHECK_EQ(weft_sem_acquire_until(&ds, weft_now() - 1), -ETIMEDOUT);
	return NULL;
}

static void *cancelled(void *a)
{
	(void)a;
	TCHECK_EQ(weft_sem_acquire(&ds), -ECANCELED);
	return NULL;
}

static void *deadline_main(void *a)
{
	(void)a;
	wt_join(wt_spawn(timed, NULL));
	TCHECK_EQ(sem_waiters(&ds), 0);
	weft_task_t t = wt_spawn(cancelled, NULL);
	wait_sem_waiters(&ds, 1);
	TCHECK_EQ(weft_cancel(t), 0);
	wt_join(t);
	TCHECK_EQ(sem_waiters(&ds), 0);
	TCHECK_EQ(weft_sem_release(&ds, 1), 0); /* goes to the count: nobody waits */
	TCHECK_EQ(weft_sem_value(&ds), 1);
	return NULL;
}

static void test_deadline_and_cancel(void **state)
{
	(void)state;
	wt_run(deadline_main, NULL, 2);
	assert_int_equal(weft_sem_destroy(&ds), 0);
}

/* ------------------------------------------------------------ stackless */

static weft_sem_t ps = WEFT_SEM_INIT(1);

static weft_step_t step_user(void *s, void **r)
{
	(void)s;
	(void)r;
	TCHECK_EQ(weft_sem_acquire(&ps), 0); /* a permit is free: no wait */
	TCHECK_EQ(weft_sem_try_acquire(&ps), -EAGAIN);
	TCHECK_EQ(weft_sem_acquire(&ps), -EPERM);
	TCHECK_EQ(sem_waiters(&ps), 0);
	TCHECK_EQ(weft_sem_release(&ps, 1), 0);
	return WEFT_STEP_DONE;
}

static void *stackless_main(void *a)
{
	(void)a;
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, step_user, NULL, NULL), 0);
	wt_join(t);
	TCHECK_EQ(weft_sem_value(&ps), 1);
	return NULL;
}

static void test_stackless(void **state)
{
	(void)state;
	wt_run(stackless_main, NULL, 2);
}

/* ------------------------------------------------------------ under the simulation */

/* The twins: the same bodies, one task at a time in an order drawn from
 * each seed (tests/wt_sim.h); each seed starts from a fresh semaphore. */
static void *conservation_sim_main(void *a)
{
	weft_sem_init(&cs, PERMITS);
	atomic_store(&acquisitions, 0);
	atomic_store(&holding, 0);
	atomic_store(&max_holding, 0);
	return conservation_main(a);
}

static void conservation_sim_check(void *a)
{
	(void)a;
	TCHECK_EQ(atomic_load(&acquisitions), ntasks * rounds); /* none lost, none twice */
	TCHECK(atomic_load(&max_holding) <= PERMITS);
	TCHECK_EQ(weft_sem_value(&cs), PERMITS); /* every permit came back */
	TCHECK_EQ(weft_sem_destroy(&cs), 0);
}

static void test_count_never_exceeded_nor_lost_sim(void **state)
{
	(void)state;
	rounds = 20;
	ntasks = 12;
	wt_sim_sweep("sync/sem_count_never_exceeded_nor_lost", conservation_sim_main, conservation_sim_check, NULL,
		     WT_SIM_SEEDS);
}

static void *all_sim_main(void *a)
{
	weft_sem_init(&as, PERMITS);
	atomic_store(&all_in, 0);
	atomic_store(&all_release, 0);
	return all_main(a);
}

static void test_all_permits_at_once_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/sem_all_permits_at_once", all_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *giveup_sim_main(void *a)
{
	weft_sem_init(&gs, 2);
	return giveup_main(a);
}

static void giveup_sim_check(void *a)
{
	(void)a;
	TCHECK_EQ(weft_sem_value(&gs), 2);
	TCHECK_EQ(weft_sem_destroy(&gs), 0);
}

static void test_giving_up_loses_nothing_sim(void **state)
{
	(void)state;
	g_iters = 60;
	g_tasks = 16;
	wt_sim_sweep("sync/sem_giving_up_loses_nothing", giveup_sim_main, giveup_sim_check, NULL, WT_SIM_SEEDS);
}

static void *fifo_sim_main(void *a)
{
	weft_sem_init(&fs, 0);
	norder = 0;
	memset(order, 0xff, sizeof order);
	return fifo_main(a);
}

static void test_fifo_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/sem_fifo", fifo_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *multi_sim_main(void *a)
{
	weft_sem_init(&ms, 0);
	return multi_main(a);
}

static void test_release_many_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/sem_release_many", multi_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *deadline_sim_main(void *a)
{
	weft_sem_init(&ds, 0);
	return deadline_main(a);
}

static void test_deadline_and_cancel_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/sem_deadline_and_cancel", deadline_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_count_never_exceeded_nor_lost),
		cmocka_unit_test(test_all_permits_at_once),
		cmocka_unit_test(test_giving_up_loses_nothing),
		cmocka_unit_test(test_fifo),
		cmocka_unit_test(test_release_many),
		cmocka_unit_test(test_deadline_and_cancel),
		cmocka_unit_test(test_stackless),
		cmocka_unit_test(test_count_never_exceeded_nor_lost_sim),
		cmocka_unit_test(test_all_permits_at_once_sim),
		cmocka_unit_test(test_giving_up_loses_nothing_sim),
		cmocka_unit_test(test_fifo_sim),
		cmocka_unit_test(test_release_many_sim),
		cmocka_unit_test(test_deadline_and_cancel_sim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
