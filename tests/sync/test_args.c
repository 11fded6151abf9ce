/* test_args.c - every call of weft/sync.h fed NULLs, objects in the wrong
 * state (not held, held by someone else, held already, waited on) and
 * out-of-range values (counts, permits, deadlines), from a plain thread, a
 * coroutine and a stackless task: each returns what the header documents,
 * and nothing crashes, hangs or asserts. A stackless task cannot wait: it
 * gets -EPERM where the others would. */
#include "wt_kinds.h"

#include <limits.h>
#include <pthread.h>
#include <time.h>

/* ------------------------------------------------------------ another holder */

/* A plain thread that takes something (a lock, a permit...), holds it until
 * let go, and gives it back: "held by someone else" for every kind of
 * caller of the body. */
struct holder {
	pthread_t th;
	int (*take)(void *obj);
	int (*give)(void *obj);
	void *obj;
	_Atomic int state; /* 0 starting, 1 holding, 2 asked to let go */
};

static void *holder_main(void *a)
{
	struct holder *h = a;
	if (h->take(h->obj) != 0)
		return (void *)1;
	atomic_store(&h->state, 1);
	while (atomic_load(&h->state) != 2)
		nanosleep(&(struct timespec){0, 200000}, NULL);
	return (void *)(intptr_t)(h->give ? h->give(h->obj) : 0);
}

static void hold(struct holder *h, int (*take)(void *), int (*give)(void *), void *obj)
{
	*h = (struct holder){.take = take, .give = give, .obj = obj};
	assert_int_equal(pthread_create(&h->th, NULL, holder_main, h), 0);
	while (atomic_load(&h->state) != 1)
		nanosleep(&(struct timespec){0, 200000}, NULL);
}

static void let_go(struct holder *h)
{
	atomic_store(&h->state, 2);
	void *r;
	assert_int_equal(pthread_join(h->th, &r), 0);
	assert_null(r);
}

static const weft_time_t past[] = {INT64_MIN, -1, 0};
#define NPAST (sizeof past / sizeof past[0])

/* ------------------------------------------------------------ mutex */

static void mutex_null_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	TCHECK_EQ(weft_mutex_init(NULL), -EINVAL);
	TCHECK_EQ(weft_mutex_destroy(NULL), -EINVAL);
	TCHECK_EQ(weft_mutex_lock(NULL), -EINVAL);
	TCHECK_EQ(weft_mutex_lock_until(NULL, INT64_MIN), -EINVAL);
	TCHECK_EQ(weft_mutex_lock_until(NULL, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_mutex_try_lock(NULL), -EINVAL);
	TCHECK_EQ(weft_mutex_unlock(NULL), -EINVAL);
}

static void test_mutex_calls_refuse_null(void **state)
{
	(void)state;
	wt_each_kind(mutex_null_body, NULL);
}

static void mutex_self_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_mutex_t m;
	TCHECK_EQ(weft_mutex_init(&m), 0);
	TCHECK_EQ(weft_mutex_unlock(&m), -EPERM); /* not locked */
	TCHECK_EQ(weft_mutex_lock(&m), 0);
	TCHECK_EQ(weft_mutex_lock(&m), -EDEADLK);
	TCHECK_EQ(weft_mutex_lock_until(&m, WEFT_NEVER), -EDEADLK);
	TCHECK_EQ(weft_mutex_lock_until(&m, INT64_MIN), -EDEADLK);
	TCHECK_EQ(weft_mutex_try_lock(&m), -EAGAIN);
	TCHECK_EQ(weft_mutex_destroy(&m), -EBUSY);
	TCHECK_EQ(weft_mutex_unlock(&m), 0);
	TCHECK_EQ(weft_mutex_unlock(&m), -EPERM); /* twice */
	TCHECK_EQ(weft_mutex_destroy(&m), 0);
}

static void test_mutex_relocked_or_not_locked(void **state)
{
	(void)state;
	wt_each_kind(mutex_self_body, NULL);
}

static int mutex_take(void *m)
{
	return weft_mutex_lock(m);
}

static int mutex_give(void *m)
{
	return weft_mutex_unlock(m);
}

static void mutex_other_body(enum wt_kind kind, void *m)
{
	for (size_t i = 0; i < NPAST; i++)
		TCHECK_EQ(weft_mutex_lock_until(m, past[i]), -ETIMEDOUT);
	TCHECK_EQ(weft_mutex_try_lock(m), -EAGAIN);
	TCHECK_EQ(weft_mutex_unlock(m), -EPERM);
	TCHECK_EQ(weft_mutex_destroy(m), -EBUSY);
	if (kind == WT_STEP) {
		TCHECK_EQ(weft_mutex_lock(m), -EPERM);
		TCHECK_EQ(weft_mutex_lock_until(m, weft_deadline_in(WEFT_SEC)), -EPERM);
	}
}

static void test_mutex_held_by_another(void **state)
{
	(void)state;
	weft_mutex_t m = WEFT_MUTEX_INIT;
	struct holder h;
	hold(&h, mutex_take, mutex_give, &m);
	wt_each_kind(mutex_other_body, &m);
	let_go(&h);
	assert_int_equal(weft_mutex_destroy(&m), 0);
}

/* ------------------------------------------------------------ rwlock */

static void rwlock_null_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	TCHECK_EQ(weft_rwlock_init(NULL), -EINVAL);
	TCHECK_EQ(weft_rwlock_destroy(NULL), -EINVAL);
	TCHECK_EQ(weft_rwlock_rdlock(NULL), -EINVAL);
	TCHECK_EQ(weft_rwlock_rdlock_until(NULL, INT64_MIN), -EINVAL);
	TCHECK_EQ(weft_rwlock_try_rdlock(NULL), -EINVAL);
	TCHECK_EQ(weft_rwlock_wrlock(NULL), -EINVAL);
	TCHECK_EQ(weft_rwlock_wrlock_until(NULL, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_rwlock_try_wrlock(NULL), -EINVAL);
	TCHECK_EQ(weft_rwlock_unlock(NULL), -EINVAL);
}

static void test_rwlock_calls_refuse_null(void **state)
{
	(void)state;
	wt_each_kind(rwlock_null_body, NULL);
}

static void rwlock_self_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_rwlock_t rw;
	TCHECK_EQ(weft_rwlock_init(&rw), 0);
	TCHECK_EQ(weft_rwlock_unlock(&rw), -EPERM); /* not locked */
	TCHECK_EQ(weft_rwlock_wrlock(&rw), 0);
	TCHECK_EQ(weft_rwlock_wrlock(&rw), -EDEADLK);
	TCHECK_EQ(weft_rwlock_wrlock_until(&rw, INT64_MIN), -EDEADLK);
	TCHECK_EQ(weft_rwlock_try_wrlock(&rw), -EAGAIN);
	TCHECK_EQ(weft_rwlock_try_rdlock(&rw), -EAGAIN);
	TCHECK_EQ(weft_rwlock_destroy(&rw), -EBUSY);
	TCHECK_EQ(weft_rwlock_unlock(&rw), 0);
	TCHECK_EQ(weft_rwlock_unlock(&rw), -EPERM);
	/* Read-held: no writer gets in, not even its reader. */
	TCHECK_EQ(weft_rwlock_rdlock(&rw), 0);
	TCHECK_EQ(weft_rwlock_try_wrlock(&rw), -EAGAIN);
	for (size_t i = 0; i < NPAST; i++)
		TCHECK_EQ(weft_rwlock_wrlock_until(&rw, past[i]), -ETIMEDOUT);
	TCHECK_EQ(weft_rwlock_destroy(&rw), -EBUSY);
	TCHECK_EQ(weft_rwlock_unlock(&rw), 0);
	TCHECK_EQ(weft_rwlock_unlock(&rw), -EPERM);
	TCHECK_EQ(weft_rwlock_destroy(&rw), 0);
}

static void test_rwlock_relocked_or_not_locked(void **state)
{
	(void)state;
	wt_each_kind(rwlock_self_body, NULL);
}

static int wr_take(void *rw)
{
	return weft_rwlock_wrlock(rw);
}

static int rw_give(void *rw)
{
	return weft_rwlock_unlock(rw);
}

static void rwlock_other_body(enum wt_kind kind, void *rw)
{
	for (size_t i = 0; i < NPAST; i++) {
		TCHECK_EQ(weft_rwlock_rdlock_until(rw, past[i]), -ETIMEDOUT);
		TCHECK_EQ(weft_rwlock_wrlock_until(rw, past[i]), -ETIMEDOUT);
	}
	TCHECK_EQ(weft_rwlock_try_rdlock(rw), -EAGAIN);
	TCHECK_EQ(weft_rwlock_try_wrlock(rw), -EAGAIN);
	TCHECK_EQ(weft_rwlock_unlock(rw), -EPERM); /* another's write hold */
	TCHECK_EQ(weft_rwlock_destroy(rw), -EBUSY);
	if (kind == WT_STEP) {
		TCHECK_EQ(weft_rwlock_rdlock(rw), -EPERM);
		TCHECK_EQ(weft_rwlock_wrlock(rw), -EPERM);
		TCHECK_EQ(weft_rwlock_wrlock_until(rw, weft_deadline_in(WEFT_SEC)), -EPERM);
	}
}

static void test_rwlock_write_held_by_another(void **state)
{
	(void)state;
	weft_rwlock_t rw = WEFT_RWLOCK_INIT;
	struct holder h;
	hold(&h, wr_take, rw_give, &rw);
	wt_each_kind(rwlock_other_body, &rw);
	let_go(&h);
	assert_int_equal(weft_rwlock_destroy(&rw), 0);
}

/* ------------------------------------------------------------ condition variable */

static void cond_null_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_cond_t c = WEFT_COND_INIT;
	weft_mutex_t m = WEFT_MUTEX_INIT;
	TCHECK_EQ(weft_cond_init(NULL), -EINVAL);
	TCHECK_EQ(weft_cond_destroy(NULL), -EINVAL);
	TCHECK_EQ(weft_cond_wait(NULL, &m), -EINVAL);
	TCHECK_EQ(weft_cond_wait(&c, NULL), -EINVAL);
	TCHECK_EQ(weft_cond_wait_until(NULL, &m, INT64_MIN), -EINVAL);
	TCHECK_EQ(weft_cond_wait_until(&c, NULL, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_cond_signal(NULL), -EINVAL);
	TCHECK_EQ(weft_cond_broadcast(NULL), -EINVAL);
	TCHECK_EQ(weft_cond_destroy(&c), 0);
}

static void test_cond_calls_refuse_null(void **state)
{
	(void)state;
	wt_each_kind(cond_null_body, NULL);
}

static void cond_unheld_body(enum wt_kind kind, void *held_elsewhere)
{
	(void)kind;
	weft_cond_t c;
	weft_mutex_t m = WEFT_MUTEX_INIT;
	TCHECK_EQ(weft_cond_init(&c), 0);
	/* The mutex must be the caller's: free, or someone else's. */
	TCHECK_EQ(weft_cond_wait(&c, &m), -EPERM);
	TCHECK_EQ(weft_cond_wait_until(&c, &m, INT64_MIN), -EPERM);
	TCHECK_EQ(weft_cond_wait(&c, held_elsewhere), -EPERM);
	TCHECK_EQ(weft_cond_wait_until(&c, held_elsewhere, WEFT_NEVER), -EPERM);
	TCHECK_EQ(weft_mutex_try_lock(&m), 0); /* untouched */
	TCHECK_EQ(weft_mutex_unlock(&m), 0);
	TCHECK_EQ(weft_cond_signal(&c), 0);
	TCHECK_EQ(weft_cond_broadcast(&c), 0);
	TCHECK_EQ(weft_cond_destroy(&c), 0);
}

static void test_cond_wait_without_the_mutex(void **state)
{
	(void)state;
	weft_mutex_t other = WEFT_MUTEX_INIT;
	struct holder h;
	hold(&h, mutex_take, mutex_give, &other);
	wt_each_kind(cond_unheld_body, &other);
	let_go(&h);
}

static void cond_past_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	weft_cond_t c = WEFT_COND_INIT;
	weft_mutex_t m = WEFT_MUTEX_INIT;
	TCHECK_EQ(weft_mutex_lock(&m), 0);
	for (size_t i = 0; i < NPAST; i++) {
		/* Nobody signals: the wait times out, the mutex held again
		 * (a past deadline polls, in a stackless task too). */
		TCHECK_EQ(weft_cond_wait_until(&c, &m, past[i]), -ETIMEDOUT);
		TCHECK_EQ(weft_mutex_try_lock(&m), -EAGAIN);
		TCHECK_EQ(weft_mutex_unlock(&m), 0);
		TCHECK_EQ(weft_mutex_lock(&m), 0);
	}
	if (kind == WT_STEP)
		TCHECK_EQ(weft_cond_wait(&c, &m), -EPERM);
	TCHECK_EQ(weft_cond_destroy(&c), 0);
	TCHECK_EQ(weft_mutex_unlock(&m), 0);
	TCHECK_EQ(weft_mutex_destroy(&m), 0);
}

static void test_cond_wait_with_a_past_deadline(void **state)
{
	(void)state;
	wt_each_kind(cond_past_body, NULL);
}

/* ------------------------------------------------------------ wait group */

static void wg_null_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	TCHECK_EQ(weft_wg_init(NULL), -EINVAL);
	TCHECK_EQ(weft_wg_destroy(NULL), -EINVAL);
	TCHECK_EQ(weft_wg_add(NULL, 1), -EINVAL);
	TCHECK_EQ(weft_wg_done(NULL), -EINVAL);
	TCHECK_EQ(weft_wg_wait(NULL), -EINVAL);
	TCHECK_EQ(weft_wg_wait_until(NULL, INT64_MIN), -EINVAL);
	TCHECK_EQ(weft_wg_count(NULL), -EINVAL);
}

static void test_wait_group_calls_refuse_null(void **state)
{
	(void)state;
	wt_each_kind(wg_null_body, NULL);
}

#define WG_MAX ((INT64_C(1) << 62) - 1)

static void wg_range_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_wg_t wg;
	TCHECK_EQ(weft_wg_init(&wg), 0);
	/* Below zero. */
	TCHECK_EQ(weft_wg_done(&wg), -EINVAL);
	TCHECK_EQ(weft_wg_add(&wg, -1), -EINVAL);
	TCHECK_EQ(weft_wg_add(&wg, INT64_MIN), -EINVAL);
	TCHECK_EQ(weft_wg_count(&wg), 0);
	/* Above 2^62 - 1. */
	TCHECK_EQ(weft_wg_add(&wg, INT64_MAX), -EOVERFLOW);
	TCHECK_EQ(weft_wg_add(&wg, WG_MAX + 1), -EOVERFLOW);
	TCHECK_EQ(weft_wg_count(&wg), 0);
	TCHECK_EQ(weft_wg_add(&wg, WG_MAX), 0);
	TCHECK_EQ(weft_wg_add(&wg, 1), -EOVERFLOW);
	TCHECK_EQ(weft_wg_add(&wg, INT64_MIN), -EINVAL);
	TCHECK_EQ(weft_wg_count(&wg), WG_MAX);
	TCHECK_EQ(weft_wg_add(&wg, -WG_MAX), 0);
	TCHECK_EQ(weft_wg_add(&wg, 0), 0);
	TCHECK_EQ(weft_wg_count(&wg), 0);
	TCHECK_EQ(weft_wg_destroy(&wg), 0);
}

static void test_wait_group_counts_out_of_range(void **state)
{
	(void)state;
	wt_each_kind(wg_range_body, NULL);
}

static void wg_wait_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	weft_wg_t wg = WEFT_WG_INIT;
	TCHECK_EQ(weft_wg_wait(&wg), 0); /* zero: nothing to wait for */
	TCHECK_EQ(weft_wg_wait_until(&wg, INT64_MIN), 0);
	TCHECK_EQ(weft_wg_add(&wg, 1), 0);
	for (size_t i = 0; i < NPAST; i++)
		TCHECK_EQ(weft_wg_wait_until(&wg, past[i]), -ETIMEDOUT);
	if (kind == WT_STEP) {
		TCHECK_EQ(weft_wg_wait(&wg), -EPERM);
		TCHECK_EQ(weft_wg_wait_until(&wg, weft_deadline_in(WEFT_SEC)), -EPERM);
	}
	TCHECK_EQ(weft_wg_destroy(&wg), -EBUSY);
	TCHECK_EQ(weft_wg_done(&wg), 0);
	TCHECK_EQ(weft_wg_wait(&wg), 0);
	TCHECK_EQ(weft_wg_destroy(&wg), 0);
}

static void test_wait_group_wait_with_work_outstanding(void **state)
{
	(void)state;
	wt_each_kind(wg_wait_body, NULL);
}

/* ------------------------------------------------------------ semaphore */

static void sem_null_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	TCHECK_EQ(weft_sem_init(NULL, 1), -EINVAL);
	TCHECK_EQ(weft_sem_destroy(NULL), -EINVAL);
	TCHECK_EQ(weft_sem_acquire(NULL), -EINVAL);
	TCHECK_EQ(weft_sem_acquire_until(NULL, INT64_MIN), -EINVAL);
	TCHECK_EQ(weft_sem_try_acquire(NULL), -EINVAL);
	TCHECK_EQ(weft_sem_release(NULL, 1), -EINVAL);
	TCHECK_EQ(weft_sem_value(NULL), 0);
}

static void test_semaphore_calls_refuse_null(void **state)
{
	(void)state;
	wt_each_kind(sem_null_body, NULL);
}

static void sem_range_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_sem_t s;
	TCHECK_EQ(weft_sem_init(&s, (unsigned)WEFT_SEM_MAX + 1), -EINVAL);
	TCHECK_EQ(weft_sem_init(&s, UINT_MAX), -EINVAL);
	TCHECK_EQ(weft_sem_init(&s, WEFT_SEM_MAX), 0);
	TCHECK_EQ(weft_sem_release(&s, 1), -EOVERFLOW);
	TCHECK_EQ(weft_sem_release(&s, UINT_MAX), -EOVERFLOW);
	TCHECK_EQ(weft_sem_value(&s), WEFT_SEM_MAX);
	TCHECK_EQ(weft_sem_release(&s, 0), 0);
	TCHECK_EQ(weft_sem_init(&s, 0), 0);
	TCHECK_EQ(weft_sem_release(&s, (unsigned)WEFT_SEM_MAX + 1), -EOVERFLOW);
	TCHECK_EQ(weft_sem_release(&s, UINT_MAX), -EOVERFLOW);
	TCHECK_EQ(weft_sem_value(&s), 0);
	TCHECK_EQ(weft_sem_release(&s, WEFT_SEM_MAX), 0);
	TCHECK_EQ(weft_sem_value(&s), WEFT_SEM_MAX);
	TCHECK_EQ(weft_sem_destroy(&s), 0);
}

static void test_semaphore_counts_out_of_range(void **state)
{
	(void)state;
	wt_each_kind(sem_range_body, NULL);
}

static void sem_empty_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	weft_sem_t s = WEFT_SEM_INIT(0);
	TCHECK_EQ(weft_sem_try_acquire(&s), -EAGAIN);
	for (size_t i = 0; i < NPAST; i++)
		TCHECK_EQ(weft_sem_acquire_until(&s, past[i]), -ETIMEDOUT);
	if (kind == WT_STEP) {
		TCHECK_EQ(weft_sem_acquire(&s), -EPERM);
		TCHECK_EQ(weft_sem_acquire_until(&s, weft_deadline_in(WEFT_SEC)), -EPERM);
	}
	TCHECK_EQ(weft_sem_value(&s), 0);
	TCHECK_EQ(weft_sem_release(&s, 1), 0);
	TCHECK_EQ(weft_sem_acquire_until(&s, INT64_MIN), 0); /* a past deadline still takes a free permit */
	TCHECK_EQ(weft_sem_destroy(&s), 0);
}

static void test_semaphore_without_permits(void **state)
{
	(void)state;
	wt_each_kind(sem_empty_body, NULL);
}

/* ------------------------------------------------------------ barrier */

static void barrier_null_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_barrier_t b;
	TCHECK_EQ(weft_barrier_init(NULL, 2), -EINVAL);
	TCHECK_EQ(weft_barrier_init(&b, 0), -EINVAL);
	TCHECK_EQ(weft_barrier_destroy(NULL), -EINVAL);
	TCHECK_EQ(weft_barrier_wait(NULL), -EINVAL);
	TCHECK_EQ(weft_barrier_wait_until(NULL, INT64_MIN), -EINVAL);
	/* Never initialised (zeroed, say): refused, not waited on. */
	weft_barrier_t zero = {0};
	TCHECK_EQ(weft_barrier_wait(&zero), -EINVAL);
	TCHECK_EQ(weft_barrier_wait_until(&zero, WEFT_NEVER), -EINVAL);
}

static void test_barrier_calls_refuse_bad_input(void **state)
{
	(void)state;
	wt_each_kind(barrier_null_body, NULL);
}

static void barrier_wait_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	weft_barrier_t b;
	TCHECK_EQ(weft_barrier_init(&b, 1), 0);
	TCHECK_EQ(weft_barrier_wait(&b), 1); /* alone: the serial one, no wait */
	TCHECK_EQ(weft_barrier_wait_until(&b, INT64_MIN), 1);
	TCHECK_EQ(weft_barrier_init(&b, 2), 0);
	for (size_t i = 0; i < NPAST; i++)
		TCHECK_EQ(weft_barrier_wait_until(&b, past[i]), -ETIMEDOUT);
	if (kind == WT_STEP) {
		TCHECK_EQ(weft_barrier_wait(&b), -EPERM);
		TCHECK_EQ(weft_barrier_wait_until(&b, weft_deadline_in(WEFT_SEC)), -EPERM);
	}
	/* Those who gave up left the generation. */
	TCHECK_EQ(weft_barrier_destroy(&b), 0);
	TCHECK_EQ(weft_barrier_init(&b, UINT_MAX), 0);
	TCHECK_EQ(weft_barrier_wait_until(&b, INT64_MIN), -ETIMEDOUT);
	TCHECK_EQ(weft_barrier_destroy(&b), 0);
}

static void test_barrier_wait_alone(void **state)
{
	(void)state;
	wt_each_kind(barrier_wait_body, NULL);
}

/* ------------------------------------------------------------ once */

static void nop(void *a)
{
	(void)a;
}

static void mark(void *a)
{
	*(int *)a = 1;
}

static void once_null_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_once_t o = WEFT_ONCE_INIT;
	TCHECK_EQ(weft_once_init(NULL), -EINVAL);
	TCHECK_EQ(weft_once(NULL, nop, NULL), -EINVAL);
	TCHECK_EQ(weft_once(&o, NULL, NULL), -EINVAL);
	TCHECK_EQ(weft_once_until(NULL, nop, NULL, INT64_MIN), -EINVAL);
	TCHECK_EQ(weft_once_until(&o, NULL, NULL, WEFT_NEVER), -EINVAL);
	/* The once is unused: it still runs its function. */
	int ran = 0;
	TCHECK_EQ(weft_once(&o, mark, &ran), 0);
	TCHECK_EQ(ran, 1);
}

static void test_once_calls_refuse_null(void **state)
{
	(void)state;
	wt_each_kind(once_null_body, NULL);
}

struct reentry {
	weft_once_t o;
	int inner, inner_until;
};

static void reenter(void *a)
{
	struct reentry *r = a;
	r->inner = weft_once(&r->o, reenter, r);
	r->inner_until = weft_once_until(&r->o, nop, NULL, INT64_MIN);
}

static void once_reenter_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	struct reentry r = {.o = WEFT_ONCE_INIT};
	TCHECK_EQ(weft_once(&r.o, reenter, &r), 0);
	TCHECK_EQ(r.inner, -EDEADLK);
	TCHECK_EQ(r.inner_until, -EDEADLK);
	TCHECK_EQ(weft_once(&r.o, reenter, &r), 0); /* done: not run again */
}

static void test_once_called_from_its_function(void **state)
{
	(void)state;
	wt_each_kind(once_reenter_body, NULL);
}

static _Atomic int once_release;

static void slow_once(void *a)
{
	atomic_store((_Atomic int *)a, 1);
	while (!atomic_load(&once_release))
		nanosleep(&(struct timespec){0, 200000}, NULL);
}

struct once_runner {
	pthread_t th;
	weft_once_t o;
	_Atomic int running;
};

static void *run_once(void *a)
{
	struct once_runner *r = a;
	return (void *)(intptr_t)weft_once(&r->o, slow_once, (void *)&r->running);
}

static void once_busy_body(enum wt_kind kind, void *arg)
{
	weft_once_t *o = arg;
	/* Another thread is running the function: waiting for it is all
	 * there is to do. */
	for (size_t i = 0; i < NPAST; i++)
		TCHECK_EQ(weft_once_until(o, nop, NULL, past[i]), -ETIMEDOUT);
	if (kind == WT_STEP)
		TCHECK_EQ(weft_once(o, nop, NULL), -EPERM);
}

static void test_once_running_elsewhere(void **state)
{
	(void)state;
	struct once_runner r = {.o = WEFT_ONCE_INIT};
	atomic_store(&once_release, 0);
	assert_int_equal(pthread_create(&r.th, NULL, run_once, &r), 0);
	while (!atomic_load(&r.running))
		nanosleep(&(struct timespec){0, 200000}, NULL);
	wt_each_kind(once_busy_body, &r.o);
	atomic_store(&once_release, 1);
	void *res;
	assert_int_equal(pthread_join(r.th, &res), 0);
	assert_int_equal((intptr_t)res, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutex_calls_refuse_null),
		cmocka_unit_test(test_mutex_relocked_or_not_locked),
		cmocka_unit_test(test_mutex_held_by_another),
		cmocka_unit_test(test_rwlock_calls_refuse_null),
		cmocka_unit_test(test_rwlock_relocked_or_not_locked),
		cmocka_unit_test(test_rwlock_write_held_by_another),
		cmocka_unit_test(test_cond_calls_refuse_null),
		cmocka_unit_test(test_cond_wait_without_the_mutex),
		cmocka_unit_test(test_cond_wait_with_a_past_deadline),
		cmocka_unit_test(test_wait_group_calls_refuse_null),
		cmocka_unit_test(test_wait_group_counts_out_of_range),
		cmocka_unit_test(test_wait_group_wait_with_work_outstanding),
		cmocka_unit_test(test_semaphore_calls_refuse_null),
		cmocka_unit_test(test_semaphore_counts_out_of_range),
		cmocka_unit_test(test_semaphore_without_permits),
		cmocka_unit_test(test_barrier_calls_refuse_bad_input),
		cmocka_unit_test(test_barrier_wait_alone),
		cmocka_unit_test(test_once_calls_refuse_null),
		cmocka_unit_test(test_once_called_from_its_function),
		cmocka_unit_test(test_once_running_elsewhere),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
