/* test_runq.c - the run queue ring, white-box: steals into a thief whose
 * ring is not empty must not overfill it (which overwrote queued tasks and
 * exposed stale slots, so a task could run twice). Single-threaded: the
 * rings are driven directly, no runtime. */
#include "weft_test.h"

#include <string.h>

#include "../../src/sched/internal.h"

#define NT (2 * WEFT_RUNQ_SIZE + 8)
static weft_task tasks[NT];
static int seen[NT];

static weft_worker *worker_new(int index)
{
	weft_worker *w = aligned_alloc(64, (sizeof *w + 63) & ~(size_t)63);
	assert_non_null(w);
	memset(w, 0, sizeof *w);
	w->index = index;
	return w;
}

/* The calling thread plays the owner of each ring it drives (the rings
 * assert that only their owner pushes and pops). */
static void drain(weft_worker *w)
{
	weft__self_worker = w;
	weft_task *t;
	while ((t = weft__runq_get(w)) != NULL) {
		long i = t - tasks;
		assert_true(i >= 0 && i < NT);
		seen[i]++;
	}
}

static void check_fill(uint32_t in_thief)
{
	memset(seen, 0, sizeof seen);
	weft_worker *thief = worker_new(0), *victim = worker_new(1);
	uint32_t k = 0;
	weft__self_worker = thief;
	for (uint32_t i = 0; i < in_thief; i++)
		assert_int_equal(weft__runq_put(thief, &tasks[k++], false), WEFT_RUNQ_RING);
	weft__self_worker = victim;
	for (uint32_t i = 0; i < WEFT_RUNQ_SIZE; i++)
		assert_int_equal(weft__runq_put(victim, &tasks[k++], false), WEFT_RUNQ_RING);
	weft__self_worker = thief;
	uint32_t got = weft__runq_steal(thief, victim, true);
	assert_true(got <= WEFT_RUNQ_SIZE - in_thief);
	assert_true(weft__runq_len(thief) <= WEFT_RUNQ_SIZE);
	assert_int_equal(weft__runq_len(thief) + weft__runq_len(victim), k);
	drain(thief);
	drain(victim);
	weft__self_worker = NULL;
	for (uint32_t i = 0; i < k; i++)
		assert_int_equal(seen[i], 1); /* every task exactly once */
	free(thief);
	free(victim);
}

static void test_steal_into_empty_ring(void **state)
{
	(void)state;
	check_fill(0);
}

static void test_steal_into_busy_ring(void **state)
{
	(void)state;
	check_fill(WEFT_RUNQ_SIZE - WEFT_RUNQ_SIZE / 4); /* half the victim's ring would not fit */
	check_fill(WEFT_RUNQ_SIZE - 1);
	check_fill(WEFT_RUNQ_SIZE); /* full: nothing may be taken */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_steal_into_empty_ring),
		cmocka_unit_test(test_steal_into_busy_ring),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
