/* test_lifetime.c - each lock may be destroyed and freed by the caller its
 * operation completed for, the moment that call returns (the POSIX rule),
 * while the caller that woke it is still unwinding. Each round stretches
 * the waker right after its wake-up (wt_lifetime.h) while the woken side
 * frees the object; ASan and TSan catch a touch of freed memory. */
#include "wt_lifetime.h"

#define ROUNDS WT_SIZE(40, 24)

/* ------------------------------------------------------------ mutex */

static void *new_mutex_unlocked(void)
{
	weft_mutex_t *m = malloc(sizeof *m);
	weft_mutex_init(m);
	return m;
}

static _Atomic int mutex_held;

static void *mutex_waiter(void *a)
{
	wt_round_t *r = a;
	weft_mutex_t *m = r->obj;
	while (!atomic_load(&mutex_held))
		weft_yield();
	atomic_store(&r->waiting, 1);
	TCHECK_EQ(weft_mutex_lock(m), 0); /* behind the waker */
	TCHECK_EQ(weft_mutex_unlock(m), 0);
	free(m); /* no destroy needed: a free mutex holds nothing */
	atomic_store(&r->done, 1);
	return NULL;
}

static void *mutex_waker_locking(void *a)
{
	wt_round_t *r = a;
	weft_mutex_t *m = r->obj;
	TCHECK_EQ(weft_mutex_lock(m), 0);
	atomic_store(&mutex_held, 1);
	wt_until_waiting(r);
	atomic_store(&mutex_held, 0);
	wt_arm();
	TCHECK_EQ(weft_mutex_unlock(m), 0);
	wt_disarm();
	return NULL;
}

/* ------------------------------------------------------------ semaphore */

static void *new_sem(void)
{
	weft_sem_t *s = malloc(sizeof *s);
	weft_sem_init(s, 0);
	return s;
}

static void *sem_waiter(void *a)
{
	wt_round_t *r = a;
	weft_sem_t *s = r->obj;
	atomic_store(&r->waiting, 1);
	TCHECK_EQ(weft_sem_acquire(s), 0);
	TCHECK_EQ(weft_sem_destroy(s), 0);
	free(s);
	atomic_store(&r->done, 1);
	return NULL;
}

static void *sem_waker(void *a)
{
	wt_round_t *r = a;
	wt_until_waiting(r);
	wt_arm();
	TCHECK_EQ(weft_sem_release(r->obj, 1), 0);
	wt_disarm();
	return NULL;
}

/* ------------------------------------------------------------ wait group */

static void *new_wg(void)
{
	weft_wg_t *wg = malloc(sizeof *wg);
	weft_wg_init(wg);
	weft_wg_add(wg, 1);
	return wg;
}

static void *wg_waiter(void *a)
{
	wt_round_t *r = a;
	weft_wg_t *wg = r->obj;
	atomic_store(&r->waiting, 1);
	TCHECK_EQ(weft_wg_wait(wg), 0);
	TCHECK_EQ(weft_wg_destroy(wg), 0);
	free(wg);
	atomic_store(&r->done, 1);
	return NULL;
}

static void *wg_waker(void *a)
{
	wt_round_t *r = a;
	wt_until_waiting(r);
	wt_arm();
	TCHECK_EQ(weft_wg_done(r->obj), 0);
	wt_disarm();
	return NULL;
}

/* ------------------------------------------------------------ once */

typedef struct {
	weft_once_t once;
	wt_round_t *r;
} once_obj_t;

static void *new_once(void)
{
	once_obj_t *o = malloc(sizeof *o);
	weft_once_init(&o->once);
	return o;
}

/* The waker runs the function; it returns once the waiter is queued behind
 * it, and the waker (armed) then wakes it. */
static void once_fn(void *a)
{
	wt_round_t *r = a;
	wt_until_waiting(r);
	wt_arm();
}

static void *once_waiter(void *a)
{
	wt_round_t *r = a;
	once_obj_t *o = r->obj;
	while (atomic_load(&((weft_once_t *)&o->once)->state) == 0)
		weft_yield(); /* until the waker runs the function */
	atomic_store(&r->waiting, 1);
	TCHECK_EQ(weft_once(&o->once, once_fn, r), 0);
	free(o);
	atomic_store(&r->done, 1);
	return NULL;
}

static void *once_waker(void *a)
{
	wt_round_t *r = a;
	once_obj_t *o = r->obj;
	TCHECK_EQ(weft_once(&o->once, once_fn, r), 0);
	wt_disarm();
	return NULL;
}

/* ------------------------------------------------------------ rwlock */

static void *new_rwlock(void)
{
	weft_rwlock_t *rw = malloc(sizeof *rw);
	weft_rwlock_init(rw);
	return rw;
}

static _Atomic int rw_writer_in;

static void *rw_waiter(void *a)
{
	wt_round_t *r = a;
	weft_rwlock_t *rw = r->obj;
	while (!atomic_load(&rw_writer_in))
		weft_yield();
	atomic_store(&r->waiting, 1);
	TCHECK_EQ(weft_rwlock_rdlock(rw), 0); /* behind the writer */
	TCHECK_EQ(weft_rwlock_unlock(rw), 0);
	TCHECK_EQ(weft_rwlock_destroy(rw), 0);
	free(rw);
	atomic_store(&r->done, 1);
	return NULL;
}

static void *rw_waker(void *a)
{
	wt_round_t *r = a;
	weft_rwlock_t *rw = r->obj;
	TCHECK_EQ(weft_rwlock_wrlock(rw), 0);
	atomic_store(&rw_writer_in, 1);
	wt_until_waiting(r);
	atomic_store(&rw_writer_in, 0);
	wt_arm();
	TCHECK_EQ(weft_rwlock_unlock(rw), 0);
	wt_disarm();
	return NULL;
}

/* ------------------------------------------------------------ condition variable */

typedef struct {
	weft_mutex_t m;
	weft_cond_t c;
	bool flag;
} cond_obj_t;

static void *new_cond(void)
{
	cond_obj_t *o = malloc(sizeof *o);
	weft_mutex_init(&o->m);
	weft_cond_init(&o->c);
	o->flag = false;
	return o;
}

static void *cond_waiter(void *a)
{
	wt_round_t *r = a;
	cond_obj_t *o = r->obj;
	TCHECK_EQ(weft_mutex_lock(&o->m), 0);
	atomic_store(&r->waiting, 1);
	while (!o->flag)
		TCHECK_EQ(weft_cond_wait(&o->c, &o->m), 0);
	TCHECK_EQ(weft_mutex_unlock(&o->m), 0);
	TCHECK_EQ(weft_cond_destroy(&o->c), 0);
	free(o);
	atomic_store(&r->done, 1);
	return NULL;
}

/* Signals after unlocking the mutex (allowed), so the woken waiter can take
 * the mutex and free everything while the signal is still returning. */
static void *cond_waker(void *a)
{
	wt_round_t *r = a;
	cond_obj_t *o = r->obj;
	wt_until_waiting(r);
	TCHECK_EQ(weft_mutex_lock(&o->m), 0); /* the waiter is parked in cond_wait */
	o->flag = true;
	TCHECK_EQ(weft_mutex_unlock(&o->m), 0);
	wt_arm();
	TCHECK_EQ(weft_cond_signal(&o->c), 1);
	wt_disarm();
	return NULL;
}

/* ------------------------------------------------------------ barrier */

static void *new_barrier(void)
{
	weft_barrier_t *b = malloc(sizeof *b);
	weft_barrier_init(b, 2);
	return b;
}

static void *barrier_waiter(void *a)
{
	wt_round_t *r = a;
	weft_barrier_t *b = r->obj;
	atomic_store(&r->waiting, 1);
	TCHECK_EQ(weft_barrier_wait(b), 0); /* the first to arrive */
	free(b);
	atomic_store(&r->done, 1);
	return NULL;
}

static void *barrier_waker(void *a)
{
	wt_round_t *r = a;
	wt_until_waiting(r);
	wt_arm();
	TCHECK_EQ(weft_barrier_wait(r->obj), 1); /* the last: releases the first */
	wt_disarm();
	return NULL;
}

/* ------------------------------------------------------------ tests */

static void test_mutex(void **state)
{
	(void)state;
	wt_rounds(ROUNDS, new_mutex_unlocked, mutex_waiter, mutex_waker_locking);
}

static void test_sem(void **state)
{
	(void)state;
	wt_rounds(ROUNDS, new_sem, sem_waiter, sem_waker);
}

static void test_wait_group(void **state)
{
	(void)state;
	wt_rounds(ROUNDS, new_wg, wg_waiter, wg_waker);
}

static void test_once(void **state)
{
	(void)state;
	wt_rounds(ROUNDS, new_once, once_waiter, once_waker);
}

static void test_rwlock(void **state)
{
	(void)state;
	wt_rounds(ROUNDS, new_rwlock, rw_waiter, rw_waker);
}

static void test_cond(void **state)
{
	(void)state;
	wt_rounds(ROUNDS, new_cond, cond_waiter, cond_waker);
}

static void test_barrier(void **state)
{
	(void)state;
	wt_rounds(ROUNDS, new_barrier, barrier_waiter, barrier_waker);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutex),	cmocka_unit_test(test_sem),    cmocka_unit_test(test_wait_group),
		cmocka_unit_test(test_once),	cmocka_unit_test(test_rwlock), cmocka_unit_test(test_cond),
		cmocka_unit_test(test_barrier),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
