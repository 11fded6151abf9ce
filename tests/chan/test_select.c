/* test_select.c - select: fairness, default, deadlines, duplicates, races. */
#include "wt_sim.h"

/* Two always-ready cases: each must be picked about half the time. With
 * 20000 trials a fair coin lands in [45%, 55%] with overwhelming probability
 * (the bound is > 14 standard deviations wide). */
static void test_select_is_fair(void **state)
{
	(void)state;
	weft_chan_t *a, *b;
	weft_chan_create(&a, sizeof(int), 4);
	weft_chan_create(&b, sizeof(int), 4);
	int one = 1;
	long picks[2] = {0, 0};
	enum { TRIALS = 20000 };
	for (int i = 0; i < TRIALS; i++) {
		weft_chan_send(a, &one);
		weft_chan_send(b, &one);
		int x, y;
		weft_select_case_t cs[2] = {{a, WEFT_SELECT_RECV, &x, 0}, {b, WEFT_SELECT_RECV, &y, 0}};
		int k = weft_select(cs, 2, WEFT_NEVER);
		assert_true(k == 0 || k == 1);
		picks[k]++;
		/* drain the other so both are ready again next time */
		assert_int_equal(weft_chan_try_recv(k == 0 ? b : a, &x), 0);
	}
	assert_true(picks[0] > TRIALS * 45 / 100 && picks[0] < TRIALS * 55 / 100);
	weft_chan_release(a);
	weft_chan_release(b);
}

static void test_select_default_and_deadline(void **state)
{
	(void)state;
	weft_chan_t *a, *b;
	weft_chan_create(&a, sizeof(int), 0);
	weft_chan_create(&b, sizeof(int), 1);
	int x = 5, y;
	weft_select_case_t cs[2] = {{a, WEFT_SELECT_RECV, &y, 0}, {b, WEFT_SELECT_RECV, &y, 0}};
	assert_int_equal(weft_select(cs, 2, 0), -ETIMEDOUT);
	weft_time_t t0 = weft_now();
	assert_int_equal(weft_select(cs, 2, weft_deadline_in(3 * WEFT_MSEC)), -ETIMEDOUT);
	assert_true(weft_now() - t0 >= 3 * WEFT_MSEC);
	/* A send case on a buffered channel with room is ready. */
	weft_select_case_t sc[2] = {{a, WEFT_SELECT_SEND, &x, 0}, {b, WEFT_SELECT_SEND, &x, 0}};
	assert_int_equal(weft_select(sc, 2, 0), 1);
	assert_int_equal(weft_chan_recv(b, &y), 0);
	assert_int_equal(y, 5);
	/* Closed channels are ready with -EPIPE. */
	weft_chan_close(a);
	assert_int_equal(weft_select(cs, 2, WEFT_NEVER), 0);
	assert_int_equal(cs[0].result, -EPIPE);
	weft_chan_release(a);
	weft_chan_release(b);
}

/* The same channel twice, send and receive, in one select: no deadlock, and
 * a select never completes with itself. */
static void test_same_channel_twice(void **state)
{
	(void)state;
	weft_chan_t *c;
	weft_chan_create(&c, sizeof(int), 1);
	int in = 3, out = 0;
	weft_select_case_t cs[2] = {{c, WEFT_SELECT_RECV, &out, 0}, {c, WEFT_SELECT_SEND, &in, 0}};
	assert_int_equal(weft_select(cs, 2, WEFT_NEVER), 1); /* empty: only the send is ready */
	assert_int_equal(weft_select(cs, 2, WEFT_NEVER), 0); /* full: only the receive */
	assert_int_equal(out, 3);
	weft_chan_release(c);
	weft_chan_create(&c, sizeof(int), 0);
	weft_select_case_t rz[2] = {{c, WEFT_SELECT_RECV, &out, 0}, {c, WEFT_SELECT_SEND, &in, 0}};
	assert_int_equal(weft_select(rz, 2, weft_deadline_in(2 * WEFT_MSEC)), -ETIMEDOUT);
	weft_chan_release(c);
}

/* Many tasks select over the same channels listed in opposite orders, while
 * others feed them: no deadlock, every value received exactly once. */
static weft_chan_t *xa, *xb;
static _Atomic long got_sum, got_n;
static long per;

static void *feeder(void *a)
{
	weft_chan_t *c = a ? xb : xa;
	for (long i = 1; i <= per; i++)
		weft_chan_send(c, &i);
	return NULL;
}

static void *selector(void *a)
{
	bool flip = a != NULL;
	weft_chan_t *chs[2] = {flip ? xb : xa, flip ? xa : xb};
	size_t n = 2;
	/* Until both channels are closed and drained: a closed channel's case is
	 * ready (-EPIPE) and is dropped; the other keeps being received from. */
	while (n > 0) {
		long v;
		weft_select_case_t cs[2];
		for (size_t i = 0; i < n; i++)
			cs[i] = (weft_select_case_t){chs[i], WEFT_SELECT_RECV, &v, 0};
		int k = weft_select(cs, n, WEFT_NEVER);
		TCHECK(k >= 0);
		if (k < 0)
			return NULL;
		if (cs[k].result == -EPIPE) {
			chs[k] = chs[--n];
			continue;
		}
		atomic_fetch_add(&got_sum, v);
		atomic_fetch_add(&got_n, 1);
	}
	return NULL;
}

static void *cross_main(void *a)
{
	(void)a;
	weft_task_t f[2], s[6];
	for (long i = 0; i < 6; i++)
		weft_spawn(&s[i], selector, (void *)(intptr_t)(i & 1), NULL);
	for (long i = 0; i < 2; i++)
		weft_spawn(&f[i], feeder, (void *)(intptr_t)i, NULL);
	for (int i = 0; i < 2; i++)
		weft_join(f[i], NULL);
	weft_chan_close(xa);
	weft_chan_close(xb);
	for (int i = 0; i < 6; i++)
		weft_join(s[i], NULL);
	return NULL;
}

static void test_crossed_selects_conserve(void **state)
{
	(void)state;
	per = WT_SIZE(50000, 3000);
	ssize_t caps[] = {0, 8};
	for (int k = 0; k < 2; k++) {
		atomic_store(&got_sum, 0);
		atomic_store(&got_n, 0);
		weft_chan_create(&xa, sizeof(long), caps[k]);
		weft_chan_create(&xb, sizeof(long), caps[k]);
		wt_run(cross_main, NULL, 0);
		assert_int_equal(atomic_load(&got_n), 2 * per);
		assert_int_equal(atomic_load(&got_sum), per * (per + 1));
		weft_chan_release(xa);
		weft_chan_release(xb);
	}
}

/* A select blocked in a send is completed by a receiver exactly once. */
static weft_chan_t *s1, *s2;

static void *send_selector(void *a)
{
	(void)a;
	long v1 = 11, v2 = 22;
	weft_select_case_t cs[2] = {{s1, WEFT_SELECT_SEND, &v1, 0}, {s2, WEFT_SELECT_SEND, &v2, 0}};
	return (void *)(intptr_t)weft_select(cs, 2, WEFT_NEVER);
}

static void *send_select_main(void *a)
{
	(void)a;
	weft_chan_create(&s1, sizeof(long), 0);
	weft_chan_create(&s2, sizeof(long), 0);
	weft_task_t t;
	weft_spawn(&t, send_selector, NULL, NULL);
	weft_sleep(2 * WEFT_MSEC);
	long v = 0;
	TCHECK_EQ(weft_chan_recv(s2, &v), 0);
	TCHECK_EQ(v, 22);
	void *r;
	weft_join(t, &r);
	TCHECK_EQ((intptr_t)r, 1);
	/* Nothing else was sent: s1 has no sender now. */
	TCHECK_EQ(weft_chan_recv_until(s1, &v, weft_deadline_in(WEFT_MSEC)), -ETIMEDOUT);
	weft_chan_release(s1);
	weft_chan_release(s2);
	return NULL;
}

static void test_blocked_send_select_completes_once(void **state)
{
	(void)state;
	wt_run(send_select_main, NULL, 2);
}

/* The twins under the simulation: the same bodies, one task at a time in
 * an order drawn from each seed (tests/wt_sim.h). */
static void *cross_sim_main(void *a)
{
	(void)a;
	atomic_store(&got_sum, 0);
	atomic_store(&got_n, 0);
	ssize_t cap = wt_sim_seed_index % 2 ? 8 : 0;
	TCHECK_EQ(weft_chan_create(&xa, sizeof(long), cap), 0);
	TCHECK_EQ(weft_chan_create(&xb, sizeof(long), cap), 0);
	cross_main(NULL);
	weft_chan_release(xa);
	weft_chan_release(xb);
	return NULL;
}

static void cross_sim_check(void *a)
{
	(void)a;
	TCHECK_EQ(atomic_load(&got_n), 2 * per);
	TCHECK_EQ(atomic_load(&got_sum), per * (per + 1));
}

static void test_crossed_selects_conserve_sim(void **state)
{
	(void)state;
	per = 40;
	wt_sim_sweep("chan/crossed_selects_conserve", cross_sim_main, cross_sim_check, NULL, WT_SIM_SEEDS);
}

static void test_blocked_send_select_completes_once_sim(void **state)
{
	(void)state;
	wt_sim_sweep("chan/blocked_send_select_completes_once", send_select_main, NULL, NULL, WT_SIM_SEEDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_select_is_fair),
		cmocka_unit_test(test_select_default_and_deadline),
		cmocka_unit_test(test_same_channel_twice),
		cmocka_unit_test(test_crossed_selects_conserve),
		cmocka_unit_test(test_blocked_send_select_completes_once),
		cmocka_unit_test(test_crossed_selects_conserve_sim),
		cmocka_unit_test(test_blocked_send_select_completes_once_sim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
