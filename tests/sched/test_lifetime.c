/* test_lifetime.c - an object holding a weft_waitq_t may be freed by the
 * waiter the moment it is woken: wake_one and wake_all unpark after
 * releasing the queue's lock and touch nothing afterwards. Each round
 * stretches the waker right after the wake-up (wt_lifetime.h) while the
 * woken side frees the object; ASan and TSan catch a touch of freed memory.
 * Also: a plain thread's parker outlives the thread, so a late unpark of a
 * thread that has exited is harmless. */
#include "wt_lifetime.h"

#define ROUNDS WT_SIZE(40, 24)

typedef struct {
	weft_waitq_t q;
	bool ready;
} gate_t;

static void *new_gate(void)
{
	gate_t *g = malloc(sizeof *g);
	weft_waitq_init(&g->q);
	g->ready = false;
	return g;
}

static void *gate_waiter(void *a)
{
	wt_round_t *r = a;
	gate_t *g = r->obj;
	for (;;) {
		weft_waitq_node_t n;
		weft_waitq_lock(&g->q);
		if (g->ready) {
			weft_waitq_unlock(&g->q);
			break;
		}
		weft_waitq_push(&g->q, &n);
		weft_waitq_unlock(&g->q);
		atomic_store(&r->waiting, 1);
		int e = weft_park(n.waker, WEFT_NEVER);
		TCHECK_EQ(e, 0);
		TCHECK_EQ(n.status, 5); /* what the waker delivered */
		break;
	}
	free(g);
	atomic_store(&r->done, 1);
	return NULL;
}

static void *gate_wake_one(void *a)
{
	wt_round_t *r = a;
	gate_t *g = r->obj;
	wt_until_waiting(r);
	weft_waitq_lock(&g->q);
	g->ready = true;
	weft_waitq_unlock(&g->q);
	wt_arm();
	TCHECK_EQ(weft_waitq_wake_one(&g->q, 5), 1);
	wt_disarm();
	return NULL;
}

static void *gate_wake_all(void *a)
{
	wt_round_t *r = a;
	gate_t *g = r->obj;
	wt_until_waiting(r);
	weft_waitq_lock(&g->q);
	g->ready = true;
	weft_waitq_unlock(&g->q);
	wt_arm();
	TCHECK_EQ(weft_waitq_wake_all(&g->q, 5), 1);
	wt_disarm();
	return NULL;
}

static void test_waitq_wake_one(void **state)
{
	(void)state;
	wt_rounds(ROUNDS, new_gate, gate_waiter, gate_wake_one);
}

static void test_waitq_wake_all(void **state)
{
	(void)state;
	wt_rounds(ROUNDS, new_gate, gate_waiter, gate_wake_all);
}

/* A waiter whose wait ended (timeout) at the moment a waker popped it
 * honours the delivery: weft_waitq_remove says it was popped. */
static void *timeout_waiter(void *a)
{
	weft_waitq_t *q = a;
	int delivered = 0;
	for (int i = 0; i < WT_SIZE(20000, 2000); i++) {
		weft_waitq_node_t n;
		weft_waitq_lock(q);
		weft_waitq_push(q, &n);
		weft_waitq_unlock(q);
		int e = weft_park(n.waker, weft_now() + (i % 3) * 1000);
		if (e == 0 || !weft_waitq_remove(q, &n)) {
			TCHECK_EQ(n.status, 9);
			delivered++;
		} else {
			TCHECK_EQ(e, -ETIMEDOUT);
		}
	}
	return (void *)(intptr_t)delivered;
}

static _Atomic int stop_waking;
static _Atomic long wakes;

static void *waker_loop(void *a)
{
	weft_waitq_t *q = a;
	while (!atomic_load(&stop_waking))
		atomic_fetch_add(&wakes, weft_waitq_wake_one(q, 9));
	return NULL;
}

static void test_delivery_is_never_lost(void **state)
{
	(void)state;
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	atomic_store(&tcheck_failures, 0);
	weft_waitq_t q = WEFT_WAITQ_INIT;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, waker_loop, &q), 0);
	weft_task_t t;
	assert_int_equal(weft_spawn(&t, timeout_waiter, &q, &(weft_spawn_opts_t){.runtime = rt}), 0);
	void *delivered;
	assert_int_equal(weft_join(t, &delivered), 0);
	atomic_store(&stop_waking, 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	/* Every pop was a delivery the waiter saw, none more. */
	assert_int_equal((long)(intptr_t)delivered, atomic_load(&wakes));
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* A thread that parked once, then exited: a waker it left behind (a stale
 * weft_waker_t) unparks nothing, and the next thread to park is not woken
 * by it. */
static weft_waker_t stale;

static void *park_once_and_exit(void *a)
{
	(void)a;
	weft_waker_t w = weft_park_prepare();
	stale = w;
	weft_unpark(w, 0);
	TCHECK_EQ(weft_park(w, WEFT_NEVER), 0);
	return NULL;
}

static void *park_with_deadline(void *a)
{
	(void)a;
	weft_waker_t w = weft_park_prepare();
	return (void *)(intptr_t)weft_park(w, weft_now() + 20 * WEFT_MSEC);
}

static void test_stale_thread_waker_is_harmless(void **state)
{
	(void)state;
	atomic_store(&tcheck_failures, 0);
	pthread_t th;
	for (int i = 0; i < 50; i++) {
		assert_int_equal(pthread_create(&th, NULL, park_once_and_exit, NULL), 0);
		assert_int_equal(pthread_join(th, NULL), 0);
		/* The next thread probably gets the same parker. */
		assert_int_equal(pthread_create(&th, NULL, park_with_deadline, NULL), 0);
		assert_false(weft_unpark(stale, 0)); /* an old wait: refused */
		void *r;
		assert_int_equal(pthread_join(th, &r), 0);
		assert_int_equal((intptr_t)r, -ETIMEDOUT);
	}
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_waitq_wake_one),
		cmocka_unit_test(test_waitq_wake_all),
		cmocka_unit_test(test_delivery_is_never_lost),
		cmocka_unit_test(test_stale_thread_waker_is_harmless),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
