/* test_locality.c - the steal gate (sched/worker.c, "Stealing") under
 * channel traffic. Tasks that talk across workers teach a thief to wait
 * longer before it steals (up to ~25 ms); it must still never strand work.
 *
 * Each round: a fanin (many producers, one consumer, a small buffer - the
 * traffic that raises the gate), checked for every value exactly once;
 * then the test-main task spawns NHELD tasks onto its own worker and holds
 * that worker - it spins, never yields or parks - until all of them have
 * run. None can run there, so the other worker must take them all, through
 * whatever gate the fanin left it: the spin ends when the work is done
 * (only the hang guard bounds it), so load cannot fail the test. */
#include "weft_test.h"

#include <string.h>

#define NPROD 64
#define NMSG 2000
#define NHELD 64
#define ROUNDS 3

static weft_chan_t *ch;
static _Atomic int held_ran, ran_on_owner;
static int owner;

static void *producer(void *a)
{
	long p = (long)a;
	for (long j = 0; j < NMSG; j++) {
		long v = p * NMSG + j;
		TCHECK_EQ(weft_chan_send(ch, &v), 0);
	}
	return NULL;
}

static void fanin(void)
{
	TCHECK_EQ(weft_chan_create(&ch, sizeof(long), 16), 0);
	weft_group_t *g;
	TCHECK_EQ(weft_group_create(&g, false), 0);
	for (long p = 0; p < NPROD; p++) {
		weft_spawn_opts_t o = {.group = g};
		TCHECK_EQ(weft_spawn(NULL, producer, (void *)p, &o), 0);
	}
	static unsigned char seen[NPROD * NMSG];
	memset(seen, 0, sizeof seen);
	for (long i = 0; i < NPROD * NMSG; i++) {
		long v = -1;
		TCHECK_EQ(weft_chan_recv(ch, &v), 0);
		TCHECK(v >= 0 && v < NPROD * NMSG);
		TCHECK_EQ(seen[v], 0); /* never twice */
		seen[v] = 1;
	}
	TCHECK_EQ(weft_group_wait(g), 0);
	TCHECK_EQ(weft_group_destroy(g), 0);
	TCHECK_EQ(weft_chan_release(ch), 0);
}

static void *held(void *a)
{
	(void)a;
	if (weft_worker_index() == owner)
		atomic_fetch_add(&ran_on_owner, 1);
	atomic_fetch_add(&held_ran, 1);
	return NULL;
}

static void *body(void *a)
{
	(void)a;
	for (int r = 0; r < ROUNDS; r++) {
		fanin();
		atomic_store(&held_ran, 0);
		owner = weft_worker_index();
		weft_group_t *g;
		TCHECK_EQ(weft_group_create(&g, false), 0);
		for (long i = 0; i < NHELD; i++) {
			weft_spawn_opts_t o = {.group = g};
			TCHECK_EQ(weft_spawn(NULL, held, NULL, &o), 0);
		}
		weft_time_t give_up = wt_hang_deadline();
		while (atomic_load(&held_ran) < NHELD && weft_now() < give_up) {
		}
		TCHECK_EQ(atomic_load(&held_ran), NHELD);
		TCHECK_EQ(weft_worker_index(), owner); /* it never left */
		TCHECK_EQ(weft_group_wait(g), 0);
		TCHECK_EQ(weft_group_destroy(g), 0);
	}
	return NULL;
}

static void test_gate_never_strands_work(void **state)
{
	(void)state;
	atomic_store(&ran_on_owner, 0);
	wt_run(body, NULL, 2);
	assert_int_equal(atomic_load(&ran_on_owner), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gate_never_strands_work),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
