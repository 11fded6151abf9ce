/* test_pool.c - the base layer's block pool: sizes and alignment, blocks
 * made on one thread and freed on another with nothing handed out twice,
 * thread caches flushed at exit and when a worker goes to sleep, and the
 * background release with its window. The pool is process-wide, so each test measures what it changed. */
#include "weft_test.h"

#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/pool.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POOL_TEST_ASAN 1
#endif

static void test_sizes_and_alignment(void **state)
{
	(void)state;
	assert_null(weft__pool_alloc(0));
	assert_null(weft__pool_alloc(WEFT_POOL_MAX + 1));
	assert_null(weft__pool_alloc(SIZE_MAX));
	weft__pool_free(NULL);
	void *b[WEFT_POOL_MAX + 1];
	for (size_t n = 1; n <= WEFT_POOL_MAX; n++) {
		b[n] = weft__pool_alloc(n);
		assert_non_null(b[n]);
		assert_int_equal((uintptr_t)b[n] % (n < WEFT_POOL_ALIGN ? 8 : WEFT_POOL_ALIGN), 0);
		memset(b[n], (int)(n & 0xff), n); /* the whole size is ours */
	}
	for (size_t n = 1; n <= WEFT_POOL_MAX; n++) {
		for (size_t i = 0; i < n; i++)
			assert_int_equal(((unsigned char *)b[n])[i], n & 0xff);
		weft__pool_free(b[n]);
#ifdef POOL_TEST_ASAN
		/* A use after free is reported, as with malloc. */
		assert_true(__asan_address_is_poisoned(b[n]));
#endif
	}
	weft__pool_flush();
}

/* ------------------------------------------------------------ threads */

enum { THREADS = 4, PER = 600, ROUNDS = 20 };

typedef struct {
	int id;
	pthread_barrier_t *bar;
	void **mine;	/* PER blocks this thread made in this round */
	void ***others; /* every thread's array: frees half of its neighbour's */
} stress_arg;

static size_t size_of(int id, int i)
{
	return 1 + (size_t)((id * 131 + i * 17) % WEFT_POOL_MAX);
}

/* Every thread makes PER blocks of assorted sizes and fills each with a
 * pattern of its own; once all have, each checks its patterns (two live
 * blocks handed out twice would overwrite each other), frees half of its
 * own and, after a barrier, half of its neighbour's: blocks freed on
 * another thread than they were made on. */
static void *stress(void *a)
{
	stress_arg *s = a;
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < PER; i++) {
			size_t n = size_of(s->id, i);
			unsigned char *b = weft__pool_alloc(n);
			assert_non_null(b);
			memset(b, (s->id * 37 + i + r) & 0xff, n);
			s->mine[i] = b;
		}
		pthread_barrier_wait(s->bar);
		for (int i = 0; i < PER; i++) {
			unsigned char *b = s->mine[i];
			size_t n = size_of(s->id, i);
			for (size_t k = 0; k < n; k += 61)
				assert_int_equal(b[k], (s->id * 37 + i + r) & 0xff);
		}
		for (int i = 0; i < PER; i += 2)
			weft__pool_free(s->mine[i]);
		pthread_barrier_wait(s->bar);
		void **theirs = s->others[(s->id + 1) % THREADS];
		for (int i = 1; i < PER; i += 2)
			weft__pool_free(theirs[i]);
		pthread_barrier_wait(s->bar);
	}
	return NULL; /* the thread's cache is flushed as it exits */
}

static void test_threads_share_blocks_and_nothing_is_lost(void **state)
{
	(void)state;
	weft__pool_flush();
	weft_pool_stats_t before = weft__pool_stats();
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, THREADS);
	static void *blocks[THREADS][PER];
	void **arrays[THREADS];
	stress_arg args[THREADS];
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++)
		arrays[t] = blocks[t];
	for (int t = 0; t < THREADS; t++) {
		args[t] = (stress_arg){.id = t, .bar = &bar, .mine = blocks[t], .others = arrays};
		assert_int_equal(pthread_create(&th[t], NULL, stress, &args[t]), 0);
	}
	for (int t = 0; t < THREADS; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	pthread_barrier_destroy(&bar);
	/* Every block came back to its run: the exiting threads flushed
	 * their caches. */
	weft_pool_stats_t after = weft__pool_stats();
	assert_int_equal(after.in_use, before.in_use);
	assert_true(after.runs >= after.empty);
}

/* ------------------------------------------------------------ release */

/* The release runs on a clock the test drives, far from any real one. */
static int64_t fake_now = (int64_t)1 << 60;

static size_t period(void)
{
	fake_now += WEFT_POOL_PERIOD_NS;
	return weft__pool_release(fake_now);
}

static bool resident(const void *p)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char v = 0;
	assert_int_equal(mincore((void *)((uintptr_t)p & ~(pg - 1)), pg, &v), 0);
	return v & 1;
}

enum { BIG = 4096, BIG_SIZE = 512 }; /* 2 MiB: 32 runs */

static void alloc_big(void **b)
{
	for (int i = 0; i < BIG; i++) {
		b[i] = weft__pool_alloc(BIG_SIZE);
		assert_non_null(b[i]);
		memset(b[i], 0x5a, BIG_SIZE);
	}
}

static void free_big(void **b)
{
	for (int i = 0; i < BIG; i++)
		weft__pool_free(b[i]);
	weft__pool_flush();
}

/* Runs whose blocks have all been free through a whole window go back to
 * the OS, and nothing sooner; a later burst reuses them. */
static void test_release_after_a_window(void **state)
{
	(void)state;
	static void *b[BIG];
	weft__pool_flush();
	/* Whatever earlier tests left empty goes first. */
	for (int i = 0; i <= WEFT_POOL_WINDOW; i++)
		period();
	alloc_big(b);
	free_big(b);
	weft_pool_stats_t full = weft__pool_stats();
	assert_true(full.empty >= 30);
	for (int i = 1; i < WEFT_POOL_WINDOW; i++)
		assert_int_equal(period(), 0);
	assert_true(resident(b[BIG / 2]));
	size_t bytes = period();
	assert_true(bytes >= (size_t)30 * 64 * 1024);
	weft_pool_stats_t st = weft__pool_stats();
	assert_true(st.released >= full.released + 30);
	assert_true(st.runs + 30 <= full.runs);
	assert_false(resident(b[BIG / 2]));
	/* A burst after the release takes the released runs first. */
	alloc_big(b);
	weft_pool_stats_t again = weft__pool_stats();
	assert_true(again.released + 30 <= st.released);
	free_big(b);
}

/* Bursts less than a window apart keep their runs: nothing is released,
 * so no burst pays to fault its memory in again. */
static void test_bursts_within_a_window_keep_their_runs(void **state)
{
	(void)state;
	static void *b[BIG];
	weft__pool_flush();
	/* Whatever earlier tests left empty goes first. */
	for (int i = 0; i <= WEFT_POOL_WINDOW; i++)
		period();
	size_t released = weft__pool_stats().released;
	for (int round = 0; round < 3 * WEFT_POOL_WINDOW; round++) {
		alloc_big(b);
		free_big(b);
		for (int i = 0; i < WEFT_POOL_WINDOW - 1; i++)
			assert_int_equal(period(), 0);
	}
	assert_true(weft__pool_stats().released <= released);
	assert_true(resident(b[0]));
}

/* A worker going to sleep gives its thread's cached blocks back to their
 * runs (a cached block would keep its run resident, and unreleasable, for
 * as long as the worker idles). Channels take their memory from the pool:
 * a task on the only worker makes and releases some, which leaves blocks
 * in that worker's cache; once the worker has gone to sleep with nothing
 * left to run, none are out of their runs. */
static uint64_t worker_parks(weft_runtime_t *rt)
{
	weft_worker_stats_t w;
	weft_stats_t st = {.size = sizeof st, .per_worker = &w, .per_worker_len = 1};
	return weft_stats(rt, &st) == 0 ? w.parks : UINT64_MAX;
}

/* Returns the worker's sleeps so far: read while this task runs on it, so
 * the worker sleeps again only after it. */
static void *make_and_release_channels(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20; i++) {
		weft_chan_t *c;
		TCHECK(weft_chan_create(&c, sizeof(long), 0) == 0);
		TCHECK(weft_chan_release(c) == 0);
	}
	return (void *)(uintptr_t)worker_parks(NULL);
}

static void test_a_sleeping_worker_gives_its_cache_back(void **state)
{
	(void)state;
	weft__pool_flush();
	size_t before = weft__pool_stats().in_use;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 1}), 0);
	weft_task_t t;
	assert_int_equal(weft_spawn(&t, make_and_release_channels, NULL, &(weft_spawn_opts_t){.runtime = rt}), 0);
	void *res;
	assert_int_equal(weft_join(t, &res), 0);
	uint64_t parks = (uint64_t)(uintptr_t)res;
	assert_true(parks != UINT64_MAX);
	weft_time_t give_up = wt_hang_deadline();
	while (worker_parks(rt) == parks && weft_now() < give_up)
		weft_sleep(WEFT_MSEC / 4);
	assert_true(worker_parks(rt) > parks);
	assert_int_equal(weft__pool_stats().in_use, before);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes_and_alignment),
		cmocka_unit_test(test_threads_share_blocks_and_nothing_is_lost),
		cmocka_unit_test(test_release_after_a_window),
		cmocka_unit_test(test_bursts_within_a_window_keep_their_runs),
		cmocka_unit_test(test_a_sleeping_worker_gives_its_cache_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
