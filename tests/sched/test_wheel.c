/* test_wheel.c - the timing wheel alone: exact firing ticks, order, deletion,
 * far deadlines, next_expiry bounds, large jumps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sched/wheel.h"

#define BLOCK 64u
#define SPAN ((uint64_t)1 << 36) /* 64^6: the ticks the levels cover */

/* splitmix64: small, seeded, good enough to spread expiries. */
typedef struct {
	uint64_t s;
} rng_t;

static uint64_t rng_next(rng_t *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rng_below(rng_t *r, uint64_t n)
{
	return rng_next(r) % n;
}

enum { ST_IDLE, ST_ARMED, ST_FIRED, ST_DELETED };

/* A population of nodes with their expected state. */
typedef struct {
	weft_wheel_t w;
	weft_tnode_t *nodes;
	unsigned char *st;
	size_t n, armed, fired;
} pop_t;

static void pop_init(pop_t *p, size_t n, uint64_t now)
{
	weft__wheel_init(&p->w, now);
	p->nodes = calloc(n, sizeof *p->nodes);
	p->st = calloc(n, 1);
	assert_non_null(p->nodes);
	assert_non_null(p->st);
	p->n = n;
	p->armed = p->fired = 0;
}

static void pop_free(pop_t *p)
{
	free(p->nodes);
	free(p->st);
}

static void pop_add(pop_t *p, size_t i, uint64_t expiry)
{
	assert_int_not_equal(p->st[i], ST_ARMED);
	weft__wheel_add(&p->w, &p->nodes[i], expiry);
	p->st[i] = ST_ARMED;
	p->armed++;
	assert_int_equal(p->w.count, p->armed);
}

static void pop_del(pop_t *p, size_t i)
{
	bool was = p->st[i] == ST_ARMED;
	assert_int_equal(weft__wheel_del(&p->w, &p->nodes[i]), was);
	assert_false(p->nodes[i].linked);
	if (was) {
		p->st[i] = ST_DELETED;
		p->armed--;
	}
	assert_int_equal(p->w.count, p->armed);
	assert_false(weft__wheel_del(&p->w, &p->nodes[i]));
}

/* Advance to `to` and check the batch: only armed nodes, each once, each due
 * in (previous now, to], in nondecreasing expiry order. */
static size_t pop_advance(pop_t *p, uint64_t to)
{
	uint64_t before = p->w.now;
	weft_tnode_t *list = NULL;
	size_t k = weft__wheel_advance(&p->w, to, &list);
	uint64_t last = 0;
	size_t seen = 0;
	for (weft_tnode_t *x = list; x; x = x->next) {
		assert_true(x >= p->nodes && x < p->nodes + p->n);
		size_t i = (size_t)(x - p->nodes);
		assert_int_equal(p->st[i], ST_ARMED);
		assert_false(x->linked);
		assert_true(x->expiry > before);
		assert_true(x->expiry <= to);
		assert_true(x->expiry >= last);
		last = x->expiry;
		p->st[i] = ST_FIRED;
		seen++;
	}
	assert_int_equal(seen, k);
	p->armed -= k;
	p->fired += k;
	assert_int_equal(p->w.count, p->armed);
	assert_int_equal(p->w.now, to > before ? to : before);
	return k;
}

static uint64_t pop_min_armed(const pop_t *p)
{
	uint64_t m = UINT64_MAX;
	for (size_t i = 0; i < p->n; i++)
		if (p->st[i] == ST_ARMED && p->nodes[i].expiry < m)
			m = p->nodes[i].expiry;
	return m;
}

/* A random step: mostly short, sometimes long, so both dense and sparse
 * stretches of the wheel are crossed. */
static uint64_t random_step(rng_t *r)
{
	uint64_t c = rng_below(r, 10);
	if (c < 5)
		return 1 + rng_below(r, BLOCK);
	if (c < 8)
		return 1 + rng_below(r, 5000);
	return 1 + rng_below(r, 200000);
}

/* ------------------------------------------------------------------ tests */

static void test_tick_of_rounds_up(void **state)
{
	(void)state;
	assert_int_equal(weft__tick_of(INT64_MIN), 0);
	assert_int_equal(weft__tick_of(-1), 0);
	assert_int_equal(weft__tick_of(0), 0);
	assert_int_equal(weft__tick_of(1), 1);
	assert_int_equal(weft__tick_of(999999), 1);
	assert_int_equal(weft__tick_of(1000000), 1);
	assert_int_equal(weft__tick_of(1000001), 2);
	assert_int_equal(weft__tick_of(INT64_MAX), (uint64_t)INT64_MAX / 1000000 + 1);
}

static void test_empty_wheel(void **state)
{
	(void)state;
	weft_wheel_t w;
	weft__wheel_init(&w, 77);
	assert_int_equal(w.now, 77);
	assert_int_equal(w.count, 0);
	assert_int_equal(weft__wheel_next_expiry(&w), UINT64_MAX);
	weft_tnode_t *list = NULL;
	assert_int_equal(weft__wheel_advance(&w, 1000000, &list), 0);
	assert_null(list);
	assert_int_equal(w.now, 1000000);
	assert_int_equal(weft__wheel_next_expiry(&w), UINT64_MAX);
}

static void test_advance_backwards_is_noop(void **state)
{
	(void)state;
	weft_wheel_t w;
	weft_tnode_t n = {0};
	weft__wheel_init(&w, 500);
	weft__wheel_add(&w, &n, 501);
	weft_tnode_t *list = NULL;
	assert_int_equal(weft__wheel_advance(&w, 500, &list), 0);
	assert_int_equal(weft__wheel_advance(&w, 3, &list), 0);
	assert_null(list);
	assert_int_equal(w.now, 500);
	assert_true(n.linked);
	assert_int_equal(weft__wheel_advance(&w, 501, &list), 1);
	assert_ptr_equal(list, &n);
}

/* One timer, tick by tick: silent up to expiry - 1, fires at expiry. */
static void test_single_fires_exactly_at_its_tick(void **state)
{
	(void)state;
	/* {now, expiry}: within a block, across one, across higher boundaries. */
	static const uint64_t cases[][2] = {
		{0, 1},
		{0, 63},
		{0, 64},
		{63, 64},
		{60, 100},
		{0, 4096},
		{4095, 4097},
		{4032, 4160},
		{1000, 1000 + 262144 + 7},
		{0, 262145},
		{262143, 262144 + 4096 + 64 + 1},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		pop_t p;
		pop_init(&p, 1, cases[c][0]);
		pop_add(&p, 0, cases[c][1]);
		for (uint64_t t = cases[c][0] + 1; t < cases[c][1]; t++) {
			assert_int_equal(pop_advance(&p, t), 0);
			assert_true(p.nodes[0].linked);
		}
		assert_int_equal(pop_advance(&p, cases[c][1]), 1);
		assert_int_equal(p.st[0], ST_FIRED);
		pop_free(&p);
	}
}

/* The same timers reached by one jump each: silent at expiry - 1. */
static void test_single_fires_at_its_tick_after_jump(void **state)
{
	(void)state;
	rng_t r = {1};
	for (int c = 0; c < 20000; c++) {
		uint64_t now = rng_below(&r, 4) ? rng_below(&r, 1u << 20) : rng_below(&r, SPAN);
		uint64_t delta = 1 + rng_below(&r, (uint64_t)1 << (1 + rng_below(&r, 36)));
		pop_t p;
		pop_init(&p, 1, now);
		pop_add(&p, 0, now + delta);
		if (delta > 1) {
			uint64_t mid = now + 1 + rng_below(&r, delta - 1);
			assert_int_equal(pop_advance(&p, mid), 0);
			assert_int_equal(pop_advance(&p, now + delta - 1), 0);
		}
		assert_true(p.nodes[0].linked);
		assert_int_equal(pop_advance(&p, now + delta), 1);
		pop_free(&p);
	}
}

/* 200k timers over 10^7 ticks, half armed up front and half while time moves,
 * crossed in random steps: each fires once, in the advance that reaches it. */
static void test_random_timers_fire_once_in_order(void **state)
{
	(void)state;
	enum { N = 200000 };
	const uint64_t range = 10000000;
	rng_t r = {42};
	pop_t p;
	pop_init(&p, N, 123456789);
	size_t next = 0;
	for (; next < N / 2; next++)
		pop_add(&p, next, p.w.now + 1 + rng_below(&r, range));
	while (next < N || p.armed) {
		for (size_t k = rng_below(&r, 200); k && next < N; k--, next++)
			pop_add(&p, next, p.w.now + 1 + rng_below(&r, range));
		pop_advance(&p, p.w.now + random_step(&r));
	}
	for (size_t i = 0; i < N; i++)
		assert_int_equal(p.st[i], ST_FIRED);
	assert_int_equal(p.fired, N);
	assert_int_equal(p.w.count, 0);
	for (int l = 0; l < WEFT_WHEEL_LEVELS; l++)
		assert_int_equal(p.w.occupied[l], 0);
	pop_free(&p);
}

static int cmp_u64_key(const void *a, const void *b, void *keys)
{
	const uint64_t *k = keys;
	uint64_t x = k[*(const size_t *)a], y = k[*(const size_t *)b];
	return (x > y) - (x < y);
}

/* A random half is deleted, each at a random time before its expiry: those
 * never fire, the others fire once. */
static void test_delete_prevents_firing(void **state)
{
	(void)state;
	enum { N = 100000 };
	rng_t r = {7};
	pop_t p;
	pop_init(&p, N, 5000);
	uint64_t *when = calloc(N, sizeof *when);
	size_t *order = calloc(N, sizeof *order);
	assert_non_null(when);
	assert_non_null(order);
	size_t ndel = 0;
	for (size_t i = 0; i < N; i++) {
		uint64_t e = p.w.now + 1 + rng_below(&r, 3000000);
		pop_add(&p, i, e);
		if (rng_below(&r, 2)) {
			when[i] = p.w.now + rng_below(&r, e - p.w.now); /* in [now, e) */
			order[ndel++] = i;
		}
	}
	qsort_r(order, ndel, sizeof *order, cmp_u64_key, when);
	size_t d = 0;
	while (p.armed) {
		uint64_t to = p.w.now + random_step(&r);
		if (d < ndel && when[order[d]] < to)
			to = when[order[d]] > p.w.now ? when[order[d]] : p.w.now;
		pop_advance(&p, to);
		for (; d < ndel && when[order[d]] <= p.w.now; d++) {
			assert_int_equal(p.st[order[d]], ST_ARMED);
			pop_del(&p, order[d]);
		}
		size_t i = rng_below(&r, N);
		if (p.st[i] != ST_ARMED)
			pop_del(&p, i); /* fired, deleted or never armed: must say false */
	}
	assert_int_equal(d, ndel);
	size_t fired = 0, deleted = 0;
	for (size_t i = 0; i < N; i++) {
		fired += p.st[i] == ST_FIRED;
		deleted += p.st[i] == ST_DELETED;
	}
	assert_int_equal(fired + deleted, N);
	assert_int_equal(fired, p.fired);
	assert_int_equal(deleted, ndel);
	assert_true(ndel > N / 3);
	free(when);
	free(order);
	pop_free(&p);
}

static void test_readd_after_delete(void **state)
{
	(void)state;
	pop_t p;
	pop_init(&p, 1, 0);
	pop_add(&p, 0, 100);
	pop_del(&p, 0);
	pop_add(&p, 0, 50); /* earlier than before */
	assert_int_equal(pop_advance(&p, 49), 0);
	assert_int_equal(pop_advance(&p, 50), 1);
	pop_add(&p, 0, 5000); /* a fired node is reusable */
	pop_del(&p, 0);
	pop_add(&p, 0, 300000); /* later, on another level */
	assert_int_equal(pop_advance(&p, 5000), 0);
	assert_int_equal(pop_advance(&p, 299999), 0);
	assert_int_equal(pop_advance(&p, 300000), 1);
	pop_free(&p);
}

/* Deadlines at or before now fire at the first advance that moves time, as
 * now + 1, and only then (advance to now itself does nothing). */
static void test_expiry_in_past_or_now(void **state)
{
	(void)state;
	static const uint64_t nows[] = {1000, 1023, 4095, 262143, 0};
	for (size_t c = 0; c < sizeof nows / sizeof nows[0]; c++) {
		uint64_t now = nows[c];
		pop_t p;
		pop_init(&p, 5, now);
		pop_add(&p, 0, 0);
		pop_add(&p, 1, now);
		pop_add(&p, 2, now / 2);
		pop_add(&p, 3, now + 1);
		pop_add(&p, 4, now + 2);
		for (size_t i = 0; i < 4; i++)
			assert_int_equal(p.nodes[i].expiry, now + 1);
		assert_int_equal(weft__wheel_next_expiry(&p.w), now + 1);
		assert_int_equal(pop_advance(&p, now), 0);
		assert_int_equal(pop_advance(&p, now + 1), 4);
		assert_int_equal(p.st[4], ST_ARMED);
		assert_int_equal(pop_advance(&p, now + 2), 1);
		pop_free(&p);
	}
}

/* Timers beyond the wheel's 2^36-tick reach fire at their exact tick. */
static void test_far_expiries_fire_on_time(void **state)
{
	(void)state;
	static const uint64_t nows[] = {0, SPAN - 5, 3 * SPAN + 12345678, 1000};
	static const uint64_t deltas[] = {
		SPAN - 1,	  SPAN,
		SPAN + 1,	  2 * SPAN - 1,
		3 * SPAN + 12345, ((uint64_t)1 << 40) + 7,
		64 * SPAN + 1,	  ((uint64_t)1 << 44) + ((uint64_t)1 << 30) - 1,
	};
	enum { ND = sizeof deltas / sizeof deltas[0] };
	rng_t r = {99};
	for (size_t c = 0; c < sizeof nows / sizeof nows[0]; c++) {
		/* One at a time, approached by a random jump, then expiry - 1. */
		for (size_t i = 0; i < ND; i++) {
			uint64_t e = nows[c] + deltas[i];
			pop_t p;
			pop_init(&p, 1, nows[c]);
			pop_add(&p, 0, e);
			assert_true(weft__wheel_next_expiry(&p.w) <= e);
			assert_int_equal(pop_advance(&p, nows[c] + 1 + rng_below(&r, deltas[i] - 1)), 0);
			assert_true(weft__wheel_next_expiry(&p.w) <= e);
			assert_int_equal(pop_advance(&p, e - 1), 0);
			assert_int_equal(weft__wheel_next_expiry(&p.w), e);
			assert_int_equal(pop_advance(&p, e), 1);
			pop_free(&p);
		}
		/* All together, crossed in steps of about a top-level slot. */
		pop_t p;
		pop_init(&p, ND, nows[c]);
		for (size_t i = 0; i < ND; i++)
			pop_add(&p, i, nows[c] + deltas[i]);
		while (p.armed)
			pop_advance(&p, p.w.now + 1 + rng_below(&r, (uint64_t)1 << 31));
		assert_int_equal(p.fired, ND);
		pop_free(&p);
	}
}

static void test_unreachable_expiry_stays_armed(void **state)
{
	(void)state;
	pop_t p;
	pop_init(&p, 1, 10);
	pop_add(&p, 0, UINT64_MAX);
	assert_int_equal(pop_advance(&p, (uint64_t)1 << 50), 0);
	assert_true(p.nodes[0].linked);
	assert_int_equal(p.nodes[0].expiry, UINT64_MAX);
	assert_true(weft__wheel_next_expiry(&p.w) > p.w.now);
	pop_del(&p, 0);
	assert_int_equal(weft__wheel_next_expiry(&p.w), UINT64_MAX);
	pop_free(&p);
}

static void test_next_expiry_exact_in_current_block(void **state)
{
	(void)state;
	pop_t p;
	pop_init(&p, 2, 100);
	pop_add(&p, 0, 120);
	assert_int_equal(weft__wheel_next_expiry(&p.w), 120);
	pop_add(&p, 1, 127);
	assert_int_equal(weft__wheel_next_expiry(&p.w), 120);
	assert_int_equal(pop_advance(&p, 120), 1);
	assert_int_equal(weft__wheel_next_expiry(&p.w), 127);
	/* Next block: 130 sits on level 1, so the answer is its slot's start,
	 * 128, until the wheel gets there. */
	pop_del(&p, 1);
	pop_add(&p, 1, 130);
	assert_int_equal(weft__wheel_next_expiry(&p.w), 128);
	assert_int_equal(pop_advance(&p, 128), 0);
	assert_int_equal(weft__wheel_next_expiry(&p.w), 130);
	pop_free(&p);
}

/* Under random adds, deletes and advances, next_expiry is > now, never later
 * than the earliest armed expiry, and equal to it when that is in now's block. */
static void test_next_expiry_is_never_late(void **state)
{
	(void)state;
	enum { N = 3000 };
	rng_t r = {2024};
	pop_t p;
	pop_init(&p, N, 987654);
	for (int op = 0; op < 20000; op++) {
		uint64_t c = rng_below(&r, 10);
		size_t i = rng_below(&r, N);
		if (c < 4 && p.st[i] != ST_ARMED) {
			uint64_t k = rng_below(&r, 4);
			uint64_t span = k == 0 ? 100 : k == 1 ? 10000 : k == 2 ? 10000000 : 3 * SPAN;
			pop_add(&p, i, p.w.now + rng_below(&r, span));
		} else if (c < 6) {
			pop_del(&p, i);
		} else {
			uint64_t ne = weft__wheel_next_expiry(&p.w);
			uint64_t to = rng_below(&r, 2) && ne != UINT64_MAX ? ne : p.w.now + random_step(&r);
			pop_advance(&p, to);
		}
		uint64_t ne = weft__wheel_next_expiry(&p.w), m = pop_min_armed(&p);
		assert_true(ne <= m);
		assert_true(ne > p.w.now);
		if (m == UINT64_MAX || m >> 6 == p.w.now >> 6)
			assert_int_equal(ne, m);
	}
	pop_free(&p);
}

/* Sleeping until next_expiry and advancing there reaches a timer with at most
 * one early wake per level. */
static void test_next_expiry_wakes_early_at_most_once_per_level(void **state)
{
	(void)state;
	rng_t r = {5};
	for (int c = 0; c < 5000; c++) {
		uint64_t now = rng_below(&r, SPAN);
		uint64_t e = now + 1 + rng_below(&r, (uint64_t)1 << (1 + rng_below(&r, 35)));
		pop_t p;
		pop_init(&p, 1, now);
		pop_add(&p, 0, e);
		int early = 0;
		for (;;) {
			uint64_t ne = weft__wheel_next_expiry(&p.w);
			assert_true(ne <= e);
			if (pop_advance(&p, ne))
				break;
			early++;
		}
		assert_int_equal(p.w.now, e);
		assert_true(early < WEFT_WHEEL_LEVELS);
		pop_free(&p);
	}
}

/* A 10^9-tick jump and a 2^50-tick jump with a few timers complete at once:
 * the wheel skips empty time instead of walking it. */
static void test_huge_gap_is_skipped(void **state)
{
	(void)state;
	pop_t p;
	pop_init(&p, 6, 0);
	pop_add(&p, 0, 1000000000);
	pop_add(&p, 1, 5);
	pop_add(&p, 2, 500000000);
	pop_add(&p, 3, 1000000);
	pop_add(&p, 4, 1000000001);
	pop_add(&p, 5, ((uint64_t)1 << 50) + 3);
	weft_tnode_t *list = NULL;
	assert_int_equal(weft__wheel_advance(&p.w, 1000000000, &list), 4);
	assert_ptr_equal(list, &p.nodes[1]);
	assert_ptr_equal(list->next, &p.nodes[3]);
	assert_ptr_equal(list->next->next, &p.nodes[2]);
	assert_ptr_equal(list->next->next->next, &p.nodes[0]);
	assert_null(list->next->next->next->next);
	assert_int_equal(p.w.count, 2);
	assert_int_equal(weft__wheel_next_expiry(&p.w), 1000000001);
	list = NULL;
	assert_int_equal(weft__wheel_advance(&p.w, (uint64_t)1 << 50, &list), 1);
	assert_ptr_equal(list, &p.nodes[4]);
	list = NULL;
	assert_int_equal(weft__wheel_advance(&p.w, ((uint64_t)1 << 50) + 3, &list), 1);
	assert_ptr_equal(list, &p.nodes[5]);
	assert_int_equal(p.w.count, 0);
	pop_free(&p);
}

static void test_count_tracks_links(void **state)
{
	(void)state;
	weft_wheel_t w;
	weft_tnode_t n[3] = {{0}};
	weft__wheel_init(&w, 0);
	weft__wheel_add(&w, &n[0], 10);
	weft__wheel_add(&w, &n[1], 10000);
	weft__wheel_add(&w, &n[2], 20);
	assert_int_equal(w.count, 3);
	assert_true(weft__wheel_del(&w, &n[1]));
	assert_int_equal(w.count, 2);
	assert_false(weft__wheel_del(&w, &n[1]));
	assert_int_equal(w.count, 2);
	weft_tnode_t *list = NULL;
	assert_int_equal(weft__wheel_advance(&w, 15, &list), 1);
	assert_int_equal(w.count, 1);
	assert_false(weft__wheel_del(&w, &n[0])); /* already expired */
	assert_int_equal(w.count, 1);
	list = NULL;
	assert_int_equal(weft__wheel_advance(&w, 20000, &list), 1);
	assert_int_equal(w.count, 0);
}

/* Expired nodes go after whatever *expired already holds. */
static void test_advance_appends_to_list(void **state)
{
	(void)state;
	weft_wheel_t w;
	weft_tnode_t a = {0}, b = {0}, n[2] = {{0}};
	a.next = &b;
	weft__wheel_init(&w, 0);
	weft__wheel_add(&w, &n[0], 70);
	weft__wheel_add(&w, &n[1], 3);
	weft_tnode_t *list = &a;
	assert_int_equal(weft__wheel_advance(&w, 100, &list), 2);
	assert_ptr_equal(list, &a);
	assert_ptr_equal(a.next, &b);
	assert_ptr_equal(b.next, &n[1]);
	assert_ptr_equal(n[1].next, &n[0]);
	assert_null(n[0].next);
}

/* Nodes due at one tick but armed at different times sit on different levels;
 * they come out together, in the one advance that reaches the tick. */
static void test_same_tick_from_different_levels(void **state)
{
	(void)state;
	const uint64_t e = 5000000;
	pop_t p;
	pop_init(&p, 64, 0);
	for (size_t i = 0; i < 64; i++) {
		pop_add(&p, i, e);
		pop_advance(&p, e - (e >> (i / 8 + 1)));
	}
	assert_true(p.w.now < e);
	assert_int_equal(pop_advance(&p, e - 1), 0);
	assert_int_equal(pop_advance(&p, e + 1000), 64);
	pop_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tick_of_rounds_up),
		cmocka_unit_test(test_empty_wheel),
		cmocka_unit_test(test_advance_backwards_is_noop),
		cmocka_unit_test(test_single_fires_exactly_at_its_tick),
		cmocka_unit_test(test_single_fires_at_its_tick_after_jump),
		cmocka_unit_test(test_random_timers_fire_once_in_order),
		cmocka_unit_test(test_delete_prevents_firing),
		cmocka_unit_test(test_readd_after_delete),
		cmocka_unit_test(test_expiry_in_past_or_now),
		cmocka_unit_test(test_far_expiries_fire_on_time),
		cmocka_unit_test(test_unreachable_expiry_stays_armed),
		cmocka_unit_test(test_next_expiry_exact_in_current_block),
		cmocka_unit_test(test_next_expiry_is_never_late),
		cmocka_unit_test(test_next_expiry_wakes_early_at_most_once_per_level),
		cmocka_unit_test(test_huge_gap_is_skipped),
		cmocka_unit_test(test_count_tracks_links),
		cmocka_unit_test(test_advance_appends_to_list),
		cmocka_unit_test(test_same_tick_from_different_levels),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
