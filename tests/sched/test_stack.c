/* test_stack.c - the stack pool: sizes, guards, canaries, caches, the
 * background release to the OS, and a hundred thousand live stacks in few
 * mappings. Tests that make a guard fault run it in a forked child (ASan
 * wants no MADV_GUARD faults in its own process). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sched/stack.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

/* Creates a pool with WEFT_STACK_GUARD set to `guard` (NULL: unset). */
static weft_stack_pool_t *pool_new(size_t cache_bytes, size_t mprotect_budget, const char *guard)
{
	if (guard)
		setenv("WEFT_STACK_GUARD", guard, 1);
	else
		unsetenv("WEFT_STACK_GUARD");
	weft_stack_pool_t *p = NULL;
	int e = weft__stack_pool_create(&p, cache_bytes, mprotect_budget);
	unsetenv("WEFT_STACK_GUARD");
	assert_int_equal(e, 0);
	assert_non_null(p);
	return p;
}

static weft_stack_stats_t stats(weft_stack_pool_t *p)
{
	weft_stack_stats_t s;
	weft__stack_stats(p, &s);
	return s;
}

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* The class a request should get: page-rounded, then a power of two. */
static size_t expected_class(size_t req)
{
	size_t n = page_size() > WEFT_STACK_MIN ? page_size() : WEFT_STACK_MIN;
	while (n < req)
		n <<= 1;
	return n;
}

/* The usable size: the class less the descriptor at the top. */
static size_t expected_size(size_t req)
{
	return expected_class(req) - WEFT_STACK_DESC;
}

/* The background release runs on a clock the test drives: each call is one
 * whole period after the last. */
static int64_t fake_now;

static size_t scavenge(weft_stack_pool_t *p)
{
	fake_now += WEFT_STACK_SCAVENGE_NS;
	size_t n = 0, r;
	while ((r = weft__stack_scavenge(p, fake_now)) != 0) /* a chunk per call */
		n += r;
	return n;
}

/* What sat unused through a whole window is released at the period after
 * it: the first periods only watch. */
static void watch_window(weft_stack_pool_t *p)
{
	for (int i = 0; i < WEFT_STACK_SCAVENGE_WINDOW; i++)
		assert_int_equal(scavenge(p), 0);
}

static size_t release_idle(weft_stack_pool_t *p)
{
	size_t n = 0;
	for (int i = 0; i <= WEFT_STACK_SCAVENGE_WINDOW; i++)
		n += scavenge(p);
	return n;
}

/* Whether the page holding addr is resident. */
static bool resident(const void *addr)
{
	size_t pg = page_size();
	unsigned char v = 0;
	assert_int_equal(mincore((void *)((uintptr_t)addr & ~(pg - 1)), pg, &v), 0);
	return v & 1;
}

static int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	assert_non_null(f);
	int n = 0, ch;
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

static size_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	assert_non_null(f);
	unsigned long size, res;
	assert_int_equal(fscanf(f, "%lu %lu", &size, &res), 2);
	fclose(f);
	return res * page_size();
}

static uint64_t canary_word(const weft_stack_t *s)
{
	return *(const volatile uint64_t *)s->lo;
}

static void test_alloc_free_reuses_stack(void **state)
{
	(void)state;
	weft_stack_pool_t *p = pool_new(64 * MiB, 100, NULL);
	weft_stack_cache_t c = {0};
	weft_stack_t *s, *t;
	assert_int_equal(weft__stack_alloc(p, &c, 64 * KiB, &s), 0);
	assert_non_null(s);
	assert_non_null(s->lo);
	assert_int_equal(s->size, 64 * KiB - WEFT_STACK_DESC);
	assert_ptr_equal((char *)s->lo + s->size, (char *)s); /* the descriptor tops its stack */
	assert_ptr_equal(weft__stack_top(s), s);
	assert_int_equal((uintptr_t)s % 64, 0);
	assert_int_equal(stats(p).in_use, 1);
	assert_true(stats(p).slabs >= 1);
	assert_true(stats(p).mapped_bytes >= 64 * KiB + page_size());
	weft__stack_free(p, &c, s);
	assert_int_equal(stats(p).in_use, 0);
	assert_int_equal(weft__stack_alloc(p, &c, 64 * KiB, &t), 0);
	assert_ptr_equal(t, s);
	assert_ptr_equal(t->lo, s->lo);
	weft__stack_free(p, &c, t);
	weft__stack_cache_flush(p, &c);
	weft__stack_pool_destroy(p);
}

static void test_size_zero_is_default(void **state)
{
	(void)state;
	weft_stack_pool_t *p = pool_new(64 * MiB, 100, NULL);
	weft_stack_cache_t c = {0};
	weft_stack_t *s;
	assert_int_equal(weft__stack_alloc(p, &c, 0, &s), 0);
	assert_int_equal(s->size, expected_size(WEFT_STACK_DEFAULT));
	weft__stack_free(p, &c, s);
	weft__stack_cache_flush(p, &c);
	weft__stack_pool_destroy(p);
}

static void test_sizes_round_up_to_power_of_two_classes(void **state)
{
	(void)state;
	weft_stack_pool_t *p = pool_new(64 * MiB, 100, NULL);
	weft_stack_cache_t c = {0};
	static const size_t req[] = {8192, 8193, 10000, 16384, 20000, 65536, 65537, 1000000, 3 * MiB};
	weft_stack_t *s[sizeof req / sizeof req[0]];
	for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
		assert_int_equal(weft__stack_alloc(p, &c, req[i], &s[i]), 0);
		assert_int_equal(s[i]->size, expected_size(req[i]));
		assert_true(s[i]->size + WEFT_STACK_DESC >= req[i]);
		assert_int_equal((uintptr_t)s[i]->lo % page_size(), 0);
	}
	for (size_t i = 0; i < sizeof req / sizeof req[0]; i++)
		weft__stack_free(p, &c, s[i]);
	weft__stack_cache_flush(p, &c);
	weft__stack_pool_destroy(p);
}

static void test_classes_do_not_share_stacks(void **state)
{
	(void)state;
	weft_stack_pool_t *p = pool_new(64 * MiB, 100, NULL);
	weft_stack_cache_t c = {0};
	weft_stack_t *small, *big, *small2;
	assert_int_equal(weft__stack_alloc(p, &c, 8 * KiB, &small), 0);
	weft__stack_free(p, &c, small);
	/* A free 8 KiB stack is in the cache; a 16 KiB request must not get it. */
	assert_int_equal(weft__stack_alloc(p, &c, 16 * KiB, &big), 0);
	assert_ptr_not_equal(big, small);
	assert_int_not_equal(big->cls, small->cls);
	assert_int_equal(big->size, 16 * KiB - WEFT_STACK_DESC);
	char *a = small->lo, *b = big->lo;
	assert_true(a + small->size <= b - page_size() || b + big->size <= a - page_size());
	assert_int_equal(weft__stack_alloc(p, &c, 8 * KiB, &small2), 0);
	assert_ptr_equal(small2, small);
	weft__stack_free(p, &c, big);
	weft__stack_free(p, &c, small2);
	weft__stack_cache_flush(p, &c);
	weft__stack_pool_destroy(p);
}

static void test_bad_arguments_return_einval(void **state)
{
	(void)state;
	weft_stack_pool_t *p = pool_new(64 * MiB, 100, NULL);
	weft_stack_cache_t c = {0};
	static const size_t bad[] = {1, 100, WEFT_STACK_MIN - 1, WEFT_STACK_MAX + 1, (size_t)1 << 40, SIZE_MAX};
	weft_stack_t *s = (weft_stack_t *)&c; /* a sentinel: must stay untouched */
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(weft__stack_alloc(p, &c, bad[i], &s), -EINVAL);
		assert_ptr_equal(s, (weft_stack_t *)&c);
	}
	assert_int_equal(weft__stack_alloc(NULL, &c, 0, &s), -EINVAL);
	assert_int_equal(weft__stack_alloc(p, NULL, 0, &s), -EINVAL);
	assert_int_equal(weft__stack_alloc(p, &c, 0, NULL), -EINVAL);
	assert_int_equal(weft__stack_pool_create(NULL, 0, 0), -EINVAL);
	assert_int_equal(stats(p).in_use, 0);
	assert_int_equal(stats(p).slabs, 0);
	weft__stack_free(p, &c, NULL);
	weft__stack_pool_destroy(NULL);
	weft__stack_pool_destroy(p);
}

static void test_whole_usable_range_is_writable(void **state)
{
	(void)state;
	weft_stack_pool_t *p = pool_new(64 * MiB, 100, NULL);
	weft_stack_cache_t c = {0};
	static const size_t sz[] = {8 * KiB, 64 * KiB, 1 * MiB};
	for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
		/* Three neighbours: writing one whole stack must not disturb
		 * the next (nor fault on its guard). */
		weft_stack_t *s[3];
		for (int j = 0; j < 3; j++)
			assert_int_equal(weft__stack_alloc(p, &c, sz[i], &s[j]), 0);
		for (int j = 0; j < 3; j++)
			memset(s[j]->lo, 0x40 + j, s[j]->size);
		for (int j = 0; j < 3; j++) {
			unsigned char *m = s[j]->lo;
			for (size_t k = 0; k < s[j]->size; k++)
				if (m[k] != 0x40 + j)
					fail_msg("stack %d of %zu bytes: byte %zu is %#x", j, sz[i], k, m[k]);
		}
		for (int j = 0; j < 3; j++)
			weft__stack_free(p, &c, s[j]);
	}
	weft__stack_cache_flush(p, &c);
	weft__stack_pool_destroy(p);
}

static void test_canary_written_on_canary_only_stacks(void **state)
{
	(void)state;
	static const char *modes[] = {"madvise", "mprotect", "canary"};
	for (int m = 0; m < 3; m++) {
		weft_stack_pool_t *p = pool_new(64 * MiB, 100, modes[m]);
		weft_stack_cache_t c = {0};
		weft_stack_t *s;
		assert_int_equal(weft__stack_alloc(p, &c, 16 * KiB, &s), 0);
		if (m < 2) {
			/* Guarded: no canary, so the lowest page stays untouched. */
			assert_int_not_equal(s->guard, WEFT_GUARD_CANARY_ONLY);
			assert_true(canary_word(s) == 0);
			assert_true(weft__stack_canary_ok(s));
			weft__stack_free(p, &c, s);
			weft__stack_cache_flush(p, &c);
			weft__stack_pool_destroy(p);
			continue;
		}
		assert_true(canary_word(s) == WEFT_STACK_CANARY);
		assert_true(weft__stack_canary_ok(s));
		/* A reused stack gets it again, even after its task smashed it. */
		*(volatile uint64_t *)s->lo = 0;
		weft__stack_free(p, &c, s);
		weft_stack_t *t;
		assert_int_equal(weft__stack_alloc(p, &c, 16 * KiB, &t), 0);
		assert_ptr_equal(t, s);
		assert_true(canary_word(t) == WEFT_STACK_CANARY);
		weft__stack_free(p, &c, t);
		weft__stack_cache_flush(p, &c);
		weft__stack_pool_destroy(p);
	}
}

static void test_smashed_canary_is_detected(void **state)
{
	(void)state;
	weft_stack_pool_t *p = pool_new(64 * MiB, 100, "canary");
	assert_int_equal(weft__stack_guard_kind(p), WEFT_GUARD_CANARY_ONLY);
	weft_stack_cache_t c = {0};
	weft_stack_t *s;
	assert_int_equal(weft__stack_alloc(p, &c, 16 * KiB, &s), 0);
	assert_int_equal(s->guard, WEFT_GUARD_CANARY_ONLY);
	assert_true(weft__stack_canary_ok(s));
	((volatile char *)s->lo)[3] ^= 1; /* one bit of the deepest word */
	assert_false(weft__stack_canary_ok(s));
	((volatile char *)s->lo)[3] ^= 1;
	assert_true(weft__stack_canary_ok(s));
	weft__stack_free(p, &c, s);
	weft__stack_cache_flush(p, &c);
	weft__stack_pool_destroy(p);
}

enum { CHILD_SKIP = 77, CHILD_BAD = 78, CHILD_NO_FAULT = 79 };

/* In a child: a pool in guard mode `mode`, the third stack of a slab, a write
 * one byte below its lo. With `recycle`, the stack first goes through
 * MADV_DONTNEED and comes back: its guard must have survived. */
static int guard_child(const char *mode, weft_guard_kind_t want, bool recycle)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sigaction sa = {.sa_handler = SIG_DFL};
		sigaction(SIGSEGV, &sa, NULL);
		setenv("WEFT_STACK_GUARD", mode, 1);
		weft_stack_pool_t *p;
		if (weft__stack_pool_create(&p, 0, 100) != 0)
			_exit(CHILD_BAD);
		if (weft__stack_guard_kind(p) != want)
			_exit(CHILD_SKIP);
		weft_stack_cache_t c = {0};
		weft_stack_t *s[3];
		for (int i = 0; i < 3; i++)
			if (weft__stack_alloc(p, &c, 16 * KiB, &s[i]) != 0)
				_exit(CHILD_BAD);
		weft_stack_t *v = s[2];
		if (recycle) {
			for (int i = 0; i < 3; i++)
				weft__stack_free(p, &c, s[i]);
			weft__stack_cache_flush(p, &c);
			release_idle(p); /* keep_bytes 0: all released */
			weft_stack_stats_t st;
			weft__stack_stats(p, &st);
			if (st.released < 3 || st.warm != 0)
				_exit(CHILD_BAD);
			weft_stack_t *again;
			do {
				if (weft__stack_alloc(p, &c, 16 * KiB, &again) != 0)
					_exit(CHILD_BAD);
			} while (again != v);
		}
		if (v->guard != want || !weft__stack_canary_ok(v))
			_exit(CHILD_BAD);
		((volatile char *)v->lo)[-1] = 1;
		_exit(CHILD_NO_FAULT);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_SKIP)
		return CHILD_SKIP;
	if (WIFEXITED(status))
		fail_msg("child exited with %d instead of dying on SIGSEGV", WEXITSTATUS(status));
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSEGV);
	return 0;
}

static void test_guard_page_faults_madvise(void **state)
{
	if (getenv("WEFT_TEST_EMULATED"))
		skip(); /* qemu-user accepts MADV_GUARD_INSTALL and ignores it */
	(void)state;
	if (guard_child("madvise", WEFT_GUARD_MADVISE, false) == CHILD_SKIP)
		skip(); /* kernel without MADV_GUARD_INSTALL */
}

static void test_guard_page_faults_mprotect(void **state)
{
	(void)state;
	assert_int_equal(guard_child("mprotect", WEFT_GUARD_MPROTECT, false), 0);
}

static void test_guard_survives_release_and_reuse(void **state)
{
	if (getenv("WEFT_TEST_EMULATED"))
		skip(); /* as above */
	(void)state;
	assert_int_equal(guard_child("mprotect", WEFT_GUARD_MPROTECT, true), 0);
	if (guard_child("madvise", WEFT_GUARD_MADVISE, true) == CHILD_SKIP)
		skip();
}

static void test_mprotect_budget_then_canary_only(void **state)
{
	(void)state;
	weft_stack_pool_t *p = pool_new(64 * MiB, 3, "mprotect");
	assert_int_equal(weft__stack_guard_kind(p), WEFT_GUARD_MPROTECT);
	weft_stack_cache_t c = {0};
	weft_stack_t *s[10];
	int nprot = 0, ncanary = 0;
	for (int i = 0; i < 10; i++) {
		assert_int_equal(weft__stack_alloc(p, &c, 8 * KiB, &s[i]), 0);
		nprot += s[i]->guard == WEFT_GUARD_MPROTECT;
		ncanary += s[i]->guard == WEFT_GUARD_CANARY_ONLY;
		assert_true(s[i]->guard != WEFT_GUARD_CANARY_ONLY || canary_word(s[i]) == WEFT_STACK_CANARY);
	}
	assert_int_equal(nprot, 3);
	assert_int_equal(ncanary, 7);
	for (int i = 0; i < 10; i++)
		weft__stack_free(p, &c, s[i]);
	weft__stack_cache_flush(p, &c);
	weft__stack_pool_destroy(p);

	p = pool_new(64 * MiB, 0, "mprotect"); /* no budget at all */
	assert_int_equal(weft__stack_guard_kind(p), WEFT_GUARD_CANARY_ONLY);
	weft__stack_pool_destroy(p);
}

static void test_unknown_guard_value_gives_default(void **state)
{
	(void)state;
	weft_stack_pool_t *p = pool_new(64 * MiB, 100, NULL);
	weft_guard_kind_t dflt = weft__stack_guard_kind(p);
	weft__stack_pool_destroy(p);
	assert_int_not_equal(dflt, WEFT_GUARD_CANARY_ONLY);
	p = pool_new(64 * MiB, 100, "bogus");
	assert_int_equal(weft__stack_guard_kind(p), dflt);
	weft__stack_pool_destroy(p);
	p = pool_new(64 * MiB, 100, "");
	assert_int_equal(weft__stack_guard_kind(p), dflt);
	weft__stack_pool_destroy(p);
}

static void test_find_guard_maps_guard_addresses_to_their_stack(void **state)
{
	(void)state;
	weft_stack_pool_t *p = pool_new(64 * MiB, 100, NULL);
	weft_stack_cache_t c = {0};
	weft_stack_t *s[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(weft__stack_alloc(p, &c, 64 * KiB, &s[i]), 0);
	size_t pg = page_size();
	for (int i = 0; i < 4; i++) {
		char *lo = s[i]->lo;
		assert_ptr_equal(weft__stack_find_guard(p, lo - 1), s[i]);
		assert_ptr_equal(weft__stack_find_guard(p, lo - pg), s[i]);
		assert_ptr_equal(weft__stack_find_guard(p, lo), s[i]);
		assert_ptr_equal(weft__stack_find_guard(p, lo + 255), s[i]);
		assert_null(weft__stack_find_guard(p, lo + 256));
		assert_null(weft__stack_find_guard(p, lo + s[i]->size / 2));
		assert_null(weft__stack_find_guard(p, lo + s[i]->size - 1));
	}
	int local;
	assert_null(weft__stack_find_guard(p, &local));
	assert_null(weft__stack_find_guard(p, NULL));
	assert_null(weft__stack_find_guard(NULL, s[0]->lo));
	/* Another pool's stacks are not this pool's. */
	weft_stack_pool_t *q = pool_new(64 * MiB, 100, NULL);
	assert_null(weft__stack_find_guard(q, (char *)s[0]->lo - 1));
	weft__stack_pool_destroy(q);
	for (int i = 0; i < 4; i++)
		weft__stack_free(p, &c, s[i]);
	weft__stack_cache_flush(p, &c);
	weft__stack_pool_destroy(p);
}

static void test_cache_is_bounded_and_spills_to_pool(void **state)
{
	(void)state;
	weft_stack_pool_t *p = pool_new(64 * MiB, 100, NULL);
	weft_stack_cache_t c = {0};
	enum { N = 200 };
	weft_stack_t *s[N];
	for (int i = 0; i < N; i++)
		assert_int_equal(weft__stack_alloc(p, &c, 64 * KiB, &s[i]), 0);
	unsigned k = s[0]->cls;
	assert_int_equal(stats(p).in_use, N);
	for (int i = 0; i < N; i++) {
		weft__stack_free(p, &c, s[i]);
		assert_true(c.count[k] <= 64);
	}
	weft_stack_stats_t st = stats(p);
	assert_int_equal(st.in_use, 0);
	assert_true(st.warm + c.count[k] >= N); /* the spills went to the pool, resident */
	assert_int_equal(st.released, 0);
	/* The cache's list and its count agree. */
	uint32_t n = 0;
	for (weft_stack_t *x = c.head[k]; x; x = x->next)
		n++;
	assert_int_equal(n, c.count[k]);
	weft__stack_cache_flush(p, &c);
	weft__stack_pool_destroy(p);
}

static void test_large_stacks_skip_the_worker_cache(void **state)
{
	(void)state;
	weft_stack_pool_t *p = pool_new(64 * MiB, 100, NULL);
	weft_stack_cache_t c = {0};
	weft_stack_t *s;
	assert_int_equal(weft__stack_alloc(p, &c, 8 * MiB, &s), 0);
	unsigned k = s->cls;
	weft__stack_free(p, &c, s);
	assert_int_equal(c.count[k], 0);
	assert_null(c.head[k]);
	assert_int_equal(stats(p).warm, 1);
	weft__stack_pool_destroy(p);
}

static void test_largest_class_gets_its_own_slabs(void **state)
{
	(void)state;
	weft_stack_pool_t *p = pool_new(0, 100, NULL);
	weft_stack_cache_t c = {0};
	weft_stack_t *a, *b;
	assert_int_equal(weft__stack_alloc(p, &c, WEFT_STACK_MAX, &a), 0);
	assert_int_equal(weft__stack_alloc(p, &c, WEFT_STACK_MAX, &b), 0);
	assert_int_equal(a->size, WEFT_STACK_MAX - WEFT_STACK_DESC);
	assert_ptr_not_equal(a->lo, b->lo);
	assert_int_equal(stats(p).slabs, 2);
	((volatile char *)a->lo)[a->size - 1] = 1; /* the top, where a task starts */
	assert_ptr_equal(weft__stack_find_guard(p, (char *)b->lo - 1), b);
	weft__stack_free(p, &c, a);
	weft__stack_free(p, &c, b);
	assert_int_equal(stats(p).warm, 2);
	assert_int_equal(release_idle(p), 2);
	assert_int_equal(stats(p).released, 2);
	assert_int_equal(stats(p).cold, 2);
	weft__stack_pool_destroy(p);
}

static void test_cache_flush_returns_everything_to_pool(void **state)
{
	(void)state;
	weft_stack_pool_t *p = pool_new(64 * MiB, 100, NULL);
	weft_stack_cache_t c = {0};
	weft_stack_t *s[10], *t[3];
	for (int i = 0; i < 10; i++)
		assert_int_equal(weft__stack_alloc(p, &c, 64 * KiB, &s[i]), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(weft__stack_alloc(p, &c, 8 * KiB, &t[i]), 0);
	for (int i = 0; i < 10; i++)
		weft__stack_free(p, &c, s[i]);
	for (int i = 0; i < 3; i++)
		weft__stack_free(p, &c, t[i]);
	uint32_t held = 0;
	for (int k = 0; k < WEFT_STACK_CLASSES; k++)
		held += c.count[k];
	assert_true(held >= 13);
	weft_stack_stats_t before = stats(p);
	weft__stack_cache_flush(p, &c);
	for (int k = 0; k < WEFT_STACK_CLASSES; k++) {
		assert_null(c.head[k]);
		assert_int_equal(c.count[k], 0);
	}
	weft_stack_stats_t after = stats(p);
	assert_int_equal(after.warm, before.warm + held);
	assert_int_equal(after.cold, 0);
	/* Another cache now gets them from the pool, with no new mapping. */
	weft_stack_cache_t d = {0};
	for (int i = 0; i < 10; i++)
		assert_int_equal(weft__stack_alloc(p, &d, 64 * KiB, &s[i]), 0);
	assert_int_equal(stats(p).mapped_bytes, before.mapped_bytes);
	for (int i = 0; i < 10; i++)
		weft__stack_free(p, &d, s[i]);
	weft__stack_cache_flush(p, &d);
	weft__stack_pool_destroy(p);
}

/* Nothing on the free path returns memory: freed stacks stay resident, in
 * the cache and then the pool, until the background release decides. */
static void test_free_path_keeps_memory(void **state)
{
	(void)state;
	enum { N = 256 };
	weft_stack_pool_t *p = pool_new(0, 100, NULL);
	weft_stack_cache_t c = {0};
	weft_stack_t *s[N];
	for (int i = 0; i < N; i++) {
		assert_int_equal(weft__stack_alloc(p, &c, 64 * KiB, &s[i]), 0);
		memset(s[i]->lo, 0xAB, s[i]->size);
	}
	for (int i = 0; i < N; i++)
		weft__stack_free(p, &c, s[i]);
	weft__stack_cache_flush(p, &c);
	weft_stack_stats_t st = stats(p);
	assert_int_equal(st.in_use, 0);
	assert_int_equal(st.released, 0);
	assert_int_equal(st.warm, N);
	for (int i = 0; i < N; i++)
		assert_true(resident((char *)s[i]->lo + s[i]->size / 2));
	/* And they come back as they were: warm memory, no new mapping. */
	weft_stack_t *x;
	assert_int_equal(weft__stack_alloc(p, &c, 64 * KiB, &x), 0);
	assert_int_equal(((unsigned char *)x->lo)[x->size / 2], 0xAB);
	assert_int_equal(stats(p).mapped_bytes, st.mapped_bytes);
	weft__stack_free(p, &c, x);
	weft__stack_cache_flush(p, &c);
	weft__stack_pool_destroy(p);
}

/* The background release: stacks that sat in the pool through a whole
 * period go back to the OS, down to the floor; RSS comes down. */
static void test_idle_stacks_are_released_in_the_background(void **state)
{
	(void)state;
	enum { N = 256 };
	weft_stack_pool_t *p = pool_new(1 * MiB, 100, NULL); /* floor: 16 stacks of 64 KiB */
	weft_stack_cache_t c = {0};
	weft_stack_t *s[N];
	for (int i = 0; i < N; i++) {
		assert_int_equal(weft__stack_alloc(p, &c, 64 * KiB, &s[i]), 0);
		memset(s[i]->lo, 0xAB, s[i]->size);
	}
	for (int i = 0; i < N; i++)
		weft__stack_free(p, &c, s[i]);
	weft__stack_cache_flush(p, &c);
	size_t rss_before = rss_bytes();
	watch_window(p); /* the first periods only watch */
	assert_int_equal(stats(p).warm, N);
	assert_int_equal(scavenge(p), N - 16);
	size_t rss_after = rss_bytes();
	weft_stack_stats_t st = stats(p);
	assert_int_equal(st.warm, 16);
	assert_int_equal(st.cold, N - 16);
	assert_int_equal(st.released, N - 16);
	assert_true(rss_before - rss_after >= (N - 32) * 64 * KiB); /* 16 MiB were touched */
	assert_int_equal(scavenge(p), 0);			    /* the floor stays */
	assert_int_equal(stats(p).warm, 16);
	weft__stack_pool_destroy(p);
}

/* Hysteresis: a stack taken from the pool during a period was needed, so
 * the release leaves as many as the pool's lowest level in the window. */
static void test_release_spares_what_was_used(void **state)
{
	(void)state;
	enum { N = 192, USED = 150 }; /* N: six carved batches of 32, no leftover */
	weft_stack_pool_t *p = pool_new(0, 100, NULL);
	weft_stack_cache_t c = {0};
	weft_stack_t *s[N];
	for (int i = 0; i < N; i++)
		assert_int_equal(weft__stack_alloc(p, &c, 64 * KiB, &s[i]), 0);
	for (int i = 0; i < N; i++)
		weft__stack_free(p, &c, s[i]);
	weft__stack_cache_flush(p, &c);
	watch_window(p); /* N sat warm since */
	/* During the next period, demand takes USED stacks and gives them
	 * back. */
	for (int i = 0; i < USED; i++)
		assert_int_equal(weft__stack_alloc(p, &c, 64 * KiB, &s[i]), 0);
	for (int i = 0; i < USED; i++)
		weft__stack_free(p, &c, s[i]);
	weft__stack_cache_flush(p, &c);
	size_t low = N - 160; /* USED were taken in batches of 32 */
	assert_int_equal(scavenge(p), low);
	assert_int_equal(stats(p).warm, N - low);
	/* A whole window with no demand at all releases the rest. */
	for (int i = 1; i < WEFT_STACK_SCAVENGE_WINDOW; i++)
		assert_int_equal(scavenge(p), 0);
	assert_int_equal(scavenge(p), N - low);
	assert_int_equal(stats(p).warm, 0);
	weft__stack_pool_destroy(p);
}

/* Demand that comes back in bursts less than a window apart (rounds of
 * spawns with quiet periods between them) keeps its stacks: nothing is
 * released, so no burst pays to fault them in again. */
static void test_bursts_within_a_window_keep_their_stacks(void **state)
{
	(void)state;
	enum { N = 192 };
	weft_stack_pool_t *p = pool_new(0, 100, NULL);
	weft_stack_cache_t c = {0};
	weft_stack_t *s[N];
	for (int round = 0; round < 4 * WEFT_STACK_SCAVENGE_WINDOW; round++) {
		for (int i = 0; i < N; i++)
			assert_int_equal(weft__stack_alloc(p, &c, 64 * KiB, &s[i]), 0);
		for (int i = 0; i < N; i++)
			weft__stack_free(p, &c, s[i]);
		weft__stack_cache_flush(p, &c);
		/* Quiet periods between bursts, a window less one. */
		for (int i = 0; i < WEFT_STACK_SCAVENGE_WINDOW - 1; i++)
			assert_int_equal(scavenge(p), 0);
	}
	weft_stack_stats_t st = stats(p);
	assert_int_equal(st.released, 0);
	assert_int_equal(st.warm, N);
	weft__stack_pool_destroy(p);
}

/* Released stacks come back zeroed, with their top page populated before
 * the first touch (where the kernel supports it), and a fresh canary. */
static void test_released_stack_comes_back_zeroed_and_populated(void **state)
{
	(void)state;
	static const char *modes[] = {NULL, "canary"};
	for (int m = 0; m < 2; m++) {
		weft_stack_pool_t *p = pool_new(0, 100, modes[m]);
		weft_stack_cache_t c = {0};
		weft_stack_t *s, *t;
		assert_int_equal(weft__stack_alloc(p, &c, 64 * KiB, &s), 0);
		memset(s->lo, 0xCD, s->size);
		void *lo = s->lo;
		weft__stack_free(p, &c, s);
		weft__stack_cache_flush(p, &c);
		assert_true(release_idle(p) >= 1);
		assert_false(resident((char *)lo + 32 * KiB));
		assert_false(resident(s)); /* its descriptor went with it */
		size_t populated = stats(p).populated;
		weft_stack_t *got[64];
		int ngot = 0;
		do {
			assert_true(ngot < 64);
			assert_int_equal(weft__stack_alloc(p, &c, 64 * KiB, &t), 0);
			got[ngot++] = t;
		} while (t != s);
		for (int i = 0; i < ngot - 1; i++)
			weft__stack_free(p, &c, got[i]);
		assert_ptr_equal(t->lo, lo);
		assert_int_equal(t->size, 64 * KiB - WEFT_STACK_DESC);
		assert_true(t->guard != WEFT_GUARD_CANARY_ONLY || canary_word(t) == WEFT_STACK_CANARY);
		assert_int_equal(((unsigned char *)t->lo)[t->size / 2], 0);
		assert_int_equal(((unsigned char *)t->lo)[t->size - 1], 0);
		assert_true(stats(p).populated > populated || populated == 0);
		weft__stack_free(p, &c, t);
		weft__stack_cache_flush(p, &c);
		weft__stack_pool_destroy(p);
	}
}

/* A carved batch has its top pages populated in one go, not by a fault
 * each; the rest of the stack is untouched. */
static void test_carved_batch_has_top_pages_populated(void **state)
{
	(void)state;
	weft_stack_pool_t *p = pool_new(0, 100, NULL);
	weft_stack_cache_t c = {0};
	weft_stack_t *s[32];
	for (int i = 0; i < 32; i++)
		assert_int_equal(weft__stack_alloc(p, &c, 64 * KiB, &s[i]), 0);
	if (stats(p).populated == 0) {
		for (int i = 0; i < 32; i++)
			weft__stack_free(p, &c, s[i]);
		weft__stack_cache_flush(p, &c);
		weft__stack_pool_destroy(p);
		skip(); /* kernel without MADV_POPULATE_WRITE */
	}
	assert_true(stats(p).populated >= 32);
	for (int i = 0; i < 32; i++) {
		assert_true(resident((char *)s[i]->lo + s[i]->size - 1));
		assert_false(resident(s[i]->lo));
	}
	for (int i = 0; i < 32; i++)
		weft__stack_free(p, &c, s[i]);
	weft__stack_cache_flush(p, &c);
	weft__stack_pool_destroy(p);
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)(*(weft_stack_t *const *)a)->lo, y = (uintptr_t)(*(weft_stack_t *const *)b)->lo;
	return x < y ? -1 : x > y;
}

static void test_100k_live_stacks_in_few_mappings(void **state)
{
	(void)state;
	enum { N = 100000 };
	weft_stack_pool_t *p = pool_new(64 * MiB, 1000, NULL);
	weft_stack_cache_t c = {0};
	weft_stack_t **s = malloc(N * sizeof *s);
	assert_non_null(s);
	int maps_before = count_maps();
	for (int i = 0; i < N; i++)
		assert_int_equal(weft__stack_alloc(p, &c, 64 * KiB, &s[i]), 0);
	int maps_live = count_maps();
	weft_stack_stats_t st = stats(p);
	assert_int_equal(st.in_use, N);
	assert_true(st.mapped_bytes >= (size_t)N * 64 * KiB);
	assert_true(maps_live < 5000);
	assert_true(maps_live - maps_before < 1000);
	assert_true(st.slabs < 200);
	qsort(s, N, sizeof *s, cmp_ptr);
	for (int i = 1; i < N; i++)
		assert_true((char *)s[i - 1]->lo + s[i - 1]->size < (char *)s[i]->lo);
	for (int i = 0; i < N; i++)
		weft__stack_free(p, &c, s[i]);
	weft__stack_cache_flush(p, &c);
	st = stats(p);
	assert_int_equal(st.in_use, 0);
	assert_int_equal(st.warm, N);
	assert_int_equal(release_idle(p), N - 64 * MiB / (64 * KiB));
	free(s);
	weft__stack_pool_destroy(p);
}

/* Threads allocate and free through their own caches and stamp each stack
 * they hold; a stack handed to two holders at once would lose a stamp. At the
 * end every stack ever seen is back in the pool, once. */
enum { NTHREADS = 4, ROUNDS = 20000, HOLD = 48 };

struct stress {
	weft_stack_pool_t *p;
	int id;
	int errors;
	weft_stack_t **seen;
	size_t nseen, capseen;
};

static void stamp(weft_stack_t *s, uint64_t v)
{
	uint64_t *lo = s->lo;
	lo[1] = v;
	*(uint64_t *)((char *)s->lo + s->size - 8) = v;
}

static bool stamped(weft_stack_t *s, uint64_t v)
{
	uint64_t *lo = s->lo;
	return lo[1] == v && *(uint64_t *)((char *)s->lo + s->size - 8) == v;
}

static void *stress_thread(void *a)
{
	struct stress *st = a;
	weft_stack_cache_t c = {0};
	weft_stack_t *held[HOLD] = {0};
	uint64_t tag[HOLD] = {0};
	uint32_t rnd = 0x9e3779b9u * (uint32_t)(st->id + 1);
	for (int r = 0; r < ROUNDS; r++) {
		rnd = rnd * 1664525u + 1013904223u;
		int i = (int)((rnd >> 8) % HOLD);
		if (held[i]) {
			if (!stamped(held[i], tag[i]) || !weft__stack_canary_ok(held[i]))
				st->errors++;
			weft__stack_free(st->p, &c, held[i]);
			held[i] = NULL;
		} else {
			if (weft__stack_alloc(st->p, &c, 16 * KiB, &held[i]) != 0) {
				st->errors++;
				continue;
			}
			if (held[i]->guard == WEFT_GUARD_CANARY_ONLY && *(uint64_t *)held[i]->lo != WEFT_STACK_CANARY)
				st->errors++;
			tag[i] = ((uint64_t)st->id << 32) | (uint32_t)r;
			stamp(held[i], tag[i]);
			if (st->nseen == st->capseen) {
				st->capseen = st->capseen ? 2 * st->capseen : 1024;
				st->seen = realloc(st->seen, st->capseen * sizeof *st->seen);
			}
			st->seen[st->nseen++] = held[i];
		}
	}
	for (int i = 0; i < HOLD; i++) {
		if (!held[i])
			continue;
		if (!stamped(held[i], tag[i]))
			st->errors++;
		weft__stack_free(st->p, &c, held[i]);
	}
	weft__stack_cache_flush(st->p, &c);
	return NULL;
}

static _Atomic bool stress_done;

/* The background release, racing the threads: a period per call. */
static void *scavenger_thread(void *a)
{
	weft_stack_pool_t *p = a;
	int64_t now = 0;
	while (!atomic_load(&stress_done)) {
		now += WEFT_STACK_SCAVENGE_NS;
		weft__stack_scavenge(p, now);
		sched_yield();
	}
	return NULL;
}

static void test_threads_never_share_or_lose_a_stack(void **state)
{
	(void)state;
	weft_stack_pool_t *p = pool_new(256 * KiB, 100, NULL); /* small: exercise release too */
	struct stress st[NTHREADS];
	pthread_t th[NTHREADS], scav;
	atomic_store(&stress_done, false);
	assert_int_equal(pthread_create(&scav, NULL, scavenger_thread, p), 0);
	for (int i = 0; i < NTHREADS; i++) {
		st[i] = (struct stress){.p = p, .id = i};
		assert_int_equal(pthread_create(&th[i], NULL, stress_thread, &st[i]), 0);
	}
	size_t nseen = 0;
	for (int i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(st[i].errors, 0);
		nseen += st[i].nseen;
	}
	atomic_store(&stress_done, true);
	assert_int_equal(pthread_join(scav, NULL), 0);
	weft_stack_stats_t before = stats(p);
	assert_int_equal(before.in_use, 0);
	size_t npool = before.warm + before.cold;

	/* Drain the pool: exactly npool distinct stacks, no new slab. */
	weft_stack_cache_t c = {0};
	weft_stack_t **all = malloc(npool * sizeof *all);
	assert_non_null(all);
	for (size_t i = 0; i < npool; i++)
		assert_int_equal(weft__stack_alloc(p, &c, 16 * KiB, &all[i]), 0);
	weft_stack_stats_t drained = stats(p);
	assert_int_equal(drained.warm + drained.cold, 0);
	assert_int_equal(drained.mapped_bytes, before.mapped_bytes);
	qsort(all, npool, sizeof *all, cmp_ptr);
	for (size_t i = 1; i < npool; i++)
		assert_ptr_not_equal(all[i - 1], all[i]);

	/* Every stack a thread ever held is among them. */
	for (int t = 0; t < NTHREADS; t++) {
		for (size_t i = 0; i < st[t].nseen; i++) {
			weft_stack_t *key = st[t].seen[i];
			assert_non_null(bsearch(&key, all, npool, sizeof *all, cmp_ptr));
		}
		free(st[t].seen);
	}
	assert_true(nseen >= npool / 2);
	for (size_t i = 0; i < npool; i++)
		weft__stack_free(p, &c, all[i]);
	weft__stack_cache_flush(p, &c);
	free(all);
	weft__stack_pool_destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_free_reuses_stack),
		cmocka_unit_test(test_size_zero_is_default),
		cmocka_unit_test(test_sizes_round_up_to_power_of_two_classes),
		cmocka_unit_test(test_classes_do_not_share_stacks),
		cmocka_unit_test(test_bad_arguments_return_einval),
		cmocka_unit_test(test_whole_usable_range_is_writable),
		cmocka_unit_test(test_canary_written_on_canary_only_stacks),
		cmocka_unit_test(test_smashed_canary_is_detected),
		cmocka_unit_test(test_guard_page_faults_madvise),
		cmocka_unit_test(test_guard_page_faults_mprotect),
		cmocka_unit_test(test_guard_survives_release_and_reuse),
		cmocka_unit_test(test_mprotect_budget_then_canary_only),
		cmocka_unit_test(test_unknown_guard_value_gives_default),
		cmocka_unit_test(test_find_guard_maps_guard_addresses_to_their_stack),
		cmocka_unit_test(test_cache_is_bounded_and_spills_to_pool),
		cmocka_unit_test(test_large_stacks_skip_the_worker_cache),
		cmocka_unit_test(test_largest_class_gets_its_own_slabs),
		cmocka_unit_test(test_cache_flush_returns_everything_to_pool),
		cmocka_unit_test(test_free_path_keeps_memory),
		cmocka_unit_test(test_idle_stacks_are_released_in_the_background),
		cmocka_unit_test(test_release_spares_what_was_used),
		cmocka_unit_test(test_bursts_within_a_window_keep_their_stacks),
		cmocka_unit_test(test_released_stack_comes_back_zeroed_and_populated),
		cmocka_unit_test(test_carved_batch_has_top_pages_populated),
		cmocka_unit_test(test_100k_live_stacks_in_few_mappings),
		cmocka_unit_test(test_threads_never_share_or_lose_a_stack),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
