/* test_memory.c - memory comes back after a spike: the records of finished
 * tasks go back to the OS page by page in the background, their ids never
 * resolve again, and records brought back carry generations and parker
 * epochs above everything their slots had before. The release is driven
 * here on a clock the test owns (the runtime has no monitor). */
#include "weft_test.h"

#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sched/internal.h"

/* Well above the 1024 records a runtime keeps, in every build. */
#define N WT_SIZE3(40000, 8000, 2048)

/* How many pages of the runtime's task records are resident (mincore: the
 * pages given back read as absent, whatever else the process maps). */
static long resident_record_pages(struct weft_runtime *r)
{
	long page = sysconf(_SC_PAGESIZE), n = 0;
	uint32_t per_page = (uint32_t)(page / (long)sizeof(weft_task));
	uint32_t bump = atomic_load(&r->bump);
	for (uint32_t slot = 0; slot < bump; slot += per_page) {
		weft_task *t = weft__task_at(r, slot);
		unsigned char v = 0;
		if (t && mincore((void *)((uintptr_t)t & ~(uintptr_t)(page - 1)), (size_t)page, &v) == 0 && (v & 1))
			n++;
	}
	return n;
}

static weft_wg_t gate = WEFT_WG_INIT;

static void *wait_gate(void *a)
{
	(void)a;
	TCHECK_EQ(weft_wg_wait(&gate), 0);
	return NULL;
}

static weft_task_t ids[N];

/* Spawn N tasks that wait until the gate opens, then open it and join them
 * all; with `old`, check no new id is one of `old`. */
static void spike(weft_runtime_t *rt, const weft_task_t *old)
{
	weft_wg_init(&gate);
	weft_wg_add(&gate, 1);
	for (int i = 0; i < N; i++)
		assert_int_equal(
			weft_spawn(&ids[i], wait_gate, NULL, &(weft_spawn_opts_t){.runtime = rt, .stack_size = 8192}),
			0);
	weft_wg_done(&gate);
	for (int i = 0; i < N; i++)
		assert_int_equal(weft_join(ids[i], NULL), 0);
	if (old)
		for (int i = 0; i < N; i++)
			for (int j = i % 7; j < N; j += 997) /* a sample of the pairs */
				assert_true(ids[i] != old[j]);
}

static weft_task_t first[N];

/* Until every record is free and back on the runtime's lists (the workers
 * hand their cached ones back when they go idle). */
static void until_all_listed(struct weft_runtime *r)
{
	for (;;) {
		pthread_mutex_lock(&r->slab_lock);
		bool all =
			r->nfree + r->nreleased * (sysconf(_SC_PAGESIZE) / sizeof(weft_task)) == atomic_load(&r->bump);
		pthread_mutex_unlock(&r->slab_lock);
		if (all)
			return;
		usleep(1000);
	}
}

static void test_records_go_back_and_return_with_fresh_ids(void **state)
{
	(void)state;
	atomic_store(&tcheck_failures, 0);
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2, .no_monitor = true}), 0);
	spike(rt, NULL);
	memcpy(first, ids, sizeof first);
	struct weft_runtime *r = rt;
	until_all_listed(r);
	weft_time_t far = weft_now() + 3600 * WEFT_SEC;
	long before = resident_record_pages(r);
	/* Two periods: whatever the first finds idle (an idle worker may have
	 * begun a period already), the second sees everything idle. */
	size_t n = weft__task_scavenge(r, far);
	n += weft__task_scavenge(r, far + WEFT_SEC);
	long after = resident_record_pages(r);
	/* All but KEEP_RECORDS (1024) records were idle; whole free pages go,
	 * to within a page of that, and are no longer resident. */
	assert_true(n + 1024 + 64 >= (size_t)N);
	long per_page = sysconf(_SC_PAGESIZE) / (long)sizeof(weft_task);
	assert_true(before - after >= (long)n / per_page);
	/* Their ids resolve to nothing. */
	for (int i = 0; i < N; i += 101)
		assert_int_equal(weft_cancel(first[i]), -ESRCH);
	/* Bring them back: new ids, never the old ones. */
	spike(rt, first);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* A parker's epochs survive its record's release: a waker aimed at a wait
 * of the record's previous life wakes nothing in its next one. */
static weft_waker_t old_waker;
static _Atomic int woke_wrongly;

static void *keep_waker(void *a)
{
	(void)a;
	old_waker = weft_park_prepare();
	weft_unpark(old_waker, 0);
	TCHECK_EQ(weft_park(old_waker, WEFT_NEVER), 0);
	return NULL;
}

static void *wait_short(void *a)
{
	(void)a;
	weft_waker_t w = weft_park_prepare();
	int r = weft_park(w, weft_now() + 2 * WEFT_MSEC);
	if (r != -ETIMEDOUT)
		atomic_fetch_add(&woke_wrongly, 1);
	return NULL;
}

static void test_stale_waker_after_release(void **state)
{
	(void)state;
	atomic_store(&tcheck_failures, 0);
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 1, .no_monitor = true}), 0);
	weft_task_t t;
	assert_int_equal(weft_spawn(&t, keep_waker, NULL, &(weft_spawn_opts_t){.runtime = rt}), 0);
	assert_int_equal(weft_join(t, NULL), 0);
	spike(rt, NULL); /* many more free records, then the release */
	until_all_listed(rt);
	weft_time_t far = weft_now() + 3600 * WEFT_SEC;
	weft__task_scavenge(rt, far);
	weft__task_scavenge(rt, far + WEFT_SEC);
	/* Bring every page back, each record in a short wait, while the old
	 * waker is fired at them all the time. */
	for (int i = 0; i < N; i++)
		assert_int_equal(
			weft_spawn(&ids[i], wait_short, NULL, &(weft_spawn_opts_t){.runtime = rt, .stack_size = 8192}),
			0);
	for (int k = 0; k < 1000; k++)
		assert_false(weft_unpark(old_waker, 0));
	for (int i = 0; i < N; i++)
		assert_int_equal(weft_join(ids[i], NULL), 0);
	assert_int_equal(atomic_load(&woke_wrongly), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records_go_back_and_return_with_fresh_ids),
		cmocka_unit_test(test_stale_waker_after_release),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
