/* test_lifetime.c - every primitive may be destroyed and freed by either
 * side of a completed operation the moment its own call returns (docs/api.md,
 * "Lifetimes"; src/sync/internal.h, "Lifetime"):
 *  - the waiter frees: each round stretches the waker right after its
 *    wake-up (wt_lifetime.h) while the woken side frees the object - one
 *    waiter, and several woken by one call (the last to return frees);
 *  - the waker frees: the woken side is held off the CPU (one worker, kept
 *    busy) until the waker has returned and freed the object, so its wait
 *    finishes on freed memory if it touches any; plain-thread waiters race
 *    the free, stackless ones are freed after their repeat (the step rule).
 * Freed objects are filled with 0xab first (wt_poison_free): ASan and TSan
 * report a touch, and a release build reads a held lock word or a garbage
 * count (a hang or a failed check). Stackless waiters that free are in
 * test_step.c (test_lifetime). */
#include "wt_lifetime.h"

#include <sched.h>
#include <weft/sync.h>

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
	wt_poison_free(m, sizeof *m); /* no destroy needed: a free mutex holds nothing */
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
	wt_poison_free(s, sizeof *s);
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
	wt_poison_free(wg, sizeof *wg);
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
	wt_poison_free(o, sizeof *o);
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
	wt_poison_free(rw, sizeof *rw);
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
	wt_poison_free(o, sizeof *o);
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
	wt_poison_free(b, sizeof *b);
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

/* ------------------------------------------------------------ several waiters */

/* NW waiters, woken by one call, each freeing the object if it is the last
 * to return; the waker is stretched after every wake-up, the last one's
 * included, so a waker that touched the object after any of them (say, to
 * find the next waiter) would touch freed memory. A claimed waiter's node
 * stays put until it is woken, and the waker reads its successor before
 * waking it. */
#define NW 3

typedef struct multi_round {
	void *obj;
	size_t size;
	_Atomic int arrived; /* waiters about to block */
	_Atomic int refs;    /* waiters whose calls have not returned */
	_Atomic int done;
} multi_round_t;

static uint32_t once_state(weft_once_t *o)
{
	return __atomic_load_n(&o->state, __ATOMIC_ACQUIRE);
}

/* Until q holds n nodes (waiters linked, not yet woken). */
static void until_queued(weft_waitq_t *q, size_t n)
{
	WT_WAIT_UNTIL(wt_queued(q) == n);
}

/* After the waiter's call (and its unlock) returned. */
static void multi_leave(multi_round_t *r)
{
	if (atomic_fetch_sub(&r->refs, 1) == 1)
		wt_poison_free(r->obj, r->size);
	atomic_fetch_add(&r->done, 1);
}

typedef struct multi_ops {
	void *(*make)(multi_round_t *r);
	void *(*waiter)(void *r);
	void *(*waker)(void *r);
} multi_ops_t;

static void *multi_thread(void *a)
{
	wt_thread_arg_t *t = a;
	return t->fn(t->arg);
}

/* Waiters and waker alternate between tasks and plain threads. */
static void multi_rounds(int rounds, const multi_ops_t *ops)
{
	atomic_store(&tcheck_failures, 0);
	atomic_store(&wt_stretched, 0);
	atomic_store(&wt_arms, 0);
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	weft_spawn_opts_t so = {.runtime = rt};
	for (int i = 0; i < rounds; i++) {
		multi_round_t r = {0};
		atomic_store(&r.refs, NW);
		r.obj = ops->make(&r);
		assert_non_null(r.obj);
		weft_task_t t[NW + 1] = {0};
		pthread_t th[NW + 1];
		wt_thread_arg_t ta[NW + 1];
		for (int k = 0; k <= NW; k++) {
			ta[k] = (wt_thread_arg_t){k < NW ? ops->waiter : ops->waker, &r};
			if ((i + k) % 2 == 0)
				assert_int_equal(weft_spawn(&t[k], ta[k].fn, &r, &so), 0);
			else
				assert_int_equal(pthread_create(&th[k], NULL, multi_thread, &ta[k]), 0);
		}
		for (int k = 0; k <= NW; k++) {
			if (t[k])
				assert_int_equal(weft_join(t[k], NULL), 0);
			else
				assert_int_equal(pthread_join(th[k], NULL), 0);
		}
		assert_int_equal(atomic_load(&r.done), NW);
	}
	atomic_store(&weft__unpark_hook, NULL);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
	assert_true(atomic_load(&wt_stretched) > 0);
}

/* Semaphore: one release of NW permits. */
static void *m_sem_make(multi_round_t *r)
{
	r->size = sizeof(weft_sem_t);
	return new_sem();
}

static void *m_sem_waiter(void *a)
{
	multi_round_t *r = a;
	TCHECK_EQ(weft_sem_acquire(r->obj), 0);
	multi_leave(r);
	return NULL;
}

static void *m_sem_waker(void *a)
{
	multi_round_t *r = a;
	weft_sem_t *s = r->obj;
	until_queued(&s->q, NW);
	wt_arm_n(NW);
	TCHECK_EQ(weft_sem_release(s, NW), 0);
	wt_disarm();
	return NULL;
}

/* Wait group: the last done. */
static void *m_wg_make(multi_round_t *r)
{
	r->size = sizeof(weft_wg_t);
	return new_wg();
}

static void *m_wg_waiter(void *a)
{
	multi_round_t *r = a;
	TCHECK_EQ(weft_wg_wait(r->obj), 0);
	multi_leave(r);
	return NULL;
}

static void *m_wg_waker(void *a)
{
	multi_round_t *r = a;
	weft_wg_t *wg = r->obj;
	until_queued(&wg->q, NW);
	wt_arm_n(NW);
	TCHECK_EQ(weft_wg_done(wg), 0);
	wt_disarm();
	return NULL;
}

/* Once: the runner's function returns once every waiter is queued. */
static void *m_once_make(multi_round_t *r)
{
	r->size = sizeof(once_obj_t);
	return new_once();
}

static void m_once_fn(void *a)
{
	multi_round_t *r = a;
	once_obj_t *o = r->obj;
	until_queued(&o->once.q, NW);
	wt_arm_n(NW);
}

static void *m_once_waiter(void *a)
{
	multi_round_t *r = a;
	once_obj_t *o = r->obj;
	while (once_state(&o->once) == 0)
		weft_yield(); /* until the waker runs the function */
	TCHECK_EQ(weft_once(&o->once, m_once_fn, r), 0);
	multi_leave(r);
	return NULL;
}

static void *m_once_waker(void *a)
{
	multi_round_t *r = a;
	once_obj_t *o = r->obj;
	TCHECK_EQ(weft_once(&o->once, m_once_fn, r), 0);
	wt_disarm();
	return NULL;
}

/* Readers-writer lock: a writer's unlock lets every queued reader in. */
static _Atomic int m_rw_writer_in;

static void *m_rw_make(multi_round_t *r)
{
	r->size = sizeof(weft_rwlock_t);
	atomic_store(&m_rw_writer_in, 0);
	return new_rwlock();
}

static void *m_rw_waiter(void *a)
{
	multi_round_t *r = a;
	weft_rwlock_t *rw = r->obj;
	while (!atomic_load(&m_rw_writer_in))
		weft_yield();
	TCHECK_EQ(weft_rwlock_rdlock(rw), 0); /* behind the writer */
	TCHECK_EQ(weft_rwlock_unlock(rw), 0);
	multi_leave(r);
	return NULL;
}

static void *m_rw_waker(void *a)
{
	multi_round_t *r = a;
	weft_rwlock_t *rw = r->obj;
	TCHECK_EQ(weft_rwlock_wrlock(rw), 0);
	atomic_store(&m_rw_writer_in, 1);
	until_queued(&rw->rq, NW);
	wt_arm_n(NW);
	TCHECK_EQ(weft_rwlock_unlock(rw), 0);
	wt_disarm();
	return NULL;
}

/* Condition variable: a broadcast after the predicate changed. */
static void *m_cond_make(multi_round_t *r)
{
	r->size = sizeof(cond_obj_t);
	return new_cond();
}

static void *m_cond_waiter(void *a)
{
	multi_round_t *r = a;
	cond_obj_t *o = r->obj;
	TCHECK_EQ(weft_mutex_lock(&o->m), 0);
	while (!o->flag)
		TCHECK_EQ(weft_cond_wait(&o->c, &o->m), 0);
	TCHECK_EQ(weft_mutex_unlock(&o->m), 0);
	multi_leave(r);
	return NULL;
}

static void *m_cond_waker(void *a)
{
	multi_round_t *r = a;
	cond_obj_t *o = r->obj;
	until_queued(&o->c.q, NW);
	TCHECK_EQ(weft_mutex_lock(&o->m), 0);
	o->flag = true;
	TCHECK_EQ(weft_mutex_unlock(&o->m), 0);
	wt_arm_n(NW);
	TCHECK_EQ(weft_cond_broadcast(&o->c), NW);
	wt_disarm();
	return NULL;
}

/* Barrier of NW + 1: the waker arrives last. */
static void *m_barrier_make(multi_round_t *r)
{
	r->size = sizeof(weft_barrier_t);
	weft_barrier_t *b = malloc(sizeof *b);
	weft_barrier_init(b, NW + 1);
	return b;
}

static void *m_barrier_waiter(void *a)
{
	multi_round_t *r = a;
	TCHECK_EQ(weft_barrier_wait(r->obj), 0);
	multi_leave(r);
	return NULL;
}

static void *m_barrier_waker(void *a)
{
	multi_round_t *r = a;
	weft_barrier_t *b = r->obj;
	until_queued(&b->q, NW);
	wt_arm_n(NW);
	TCHECK_EQ(weft_barrier_wait(b), 1);
	wt_disarm();
	return NULL;
}

/* ------------------------------------------------------------ the waker frees */

/* The waiter's call completes through the waker's, and the waker frees the
 * object the moment its own call returns. A task waiter is held off the
 * only worker (a task spinning there; no monitor to start another) from
 * before the wake until after the free, so whatever it does after its
 * wake-up comes after the free. A stackless waiter's registered call is in
 * progress until its repeat completes (weft/sched.h): the waker frees once
 * the repeat has. The mutex and the rwlock are not here: the waiter they
 * wake will hold the lock, so nobody may free it before that waiter's
 * unlock - the waiter frees, above. */
enum { W_SEM, W_WG, W_ONCE, W_BARRIER, W_COND, W_KINDS };
enum { AS_CORO, AS_STEP, AS_THREAD };

typedef struct free_scene {
	int kind, as;
	void *obj;	/* freed by the waker */
	weft_mutex_t m; /* the condition's, outlives it */
	bool flag;	/* the condition's predicate, under m */
	bool locked;	/* stackless cond waiter: m taken */
	bool waiting;	/* stackless cond waiter: its wait is registered */
	weft_op_t op;
	int result;
	_Atomic int started, done;
} free_scene_t;

/* The waiter's once function: the waker runs first, so never called. */
static void free_never_run(void *a)
{
	(void)a;
	TCHECK(false);
}

static weft_waitq_t *free_scene_q(free_scene_t *s)
{
	switch (s->kind) {
	case W_SEM:
		return &((weft_sem_t *)s->obj)->q;
	case W_WG:
		return &((weft_wg_t *)s->obj)->q;
	case W_ONCE:
		return &((weft_once_t *)s->obj)->q;
	case W_BARRIER:
		return &((weft_barrier_t *)s->obj)->q;
	default:
		return &((weft_cond_t *)s->obj)->q;
	}
}

/* The waiter's blocking call: what the kind waits for. */
static int free_wait(free_scene_t *s)
{
	switch (s->kind) {
	case W_SEM:
		return weft_sem_acquire(s->obj);
	case W_WG:
		return weft_wg_wait(s->obj);
	case W_ONCE:
		while (once_state(s->obj) == 0)
			weft_yield(); /* until the waker runs the function */
		return weft_once(s->obj, free_never_run, s);
	case W_BARRIER:
		return weft_barrier_wait(s->obj);
	default: {
		TCHECK_EQ(weft_mutex_lock(&s->m), 0);
		int r = 0;
		while (!s->flag && r == 0)
			r = weft_cond_wait(s->obj, &s->m);
		TCHECK_EQ(weft_mutex_unlock(&s->m), 0);
		return r;
	}
	}
}

static void *free_waiter(void *a)
{
	free_scene_t *s = a;
	atomic_store(&s->started, 1);
	s->result = free_wait(s);
	atomic_store(&s->done, 1);
	return NULL;
}

static weft_step_t free_waiter_step(void *a, void **res)
{
	free_scene_t *s = a;
	*res = NULL;
	atomic_store(&s->started, 1);
	int r;
	switch (s->kind) {
	case W_SEM:
		r = weft_sem_acquire_step(s->obj, WEFT_NEVER, &s->op);
		break;
	case W_WG:
		r = weft_wg_wait_step(s->obj, WEFT_NEVER, &s->op);
		break;
	case W_ONCE:
		if (once_state(s->obj) == 0)
			return WEFT_STEP_YIELD; /* until the waker runs the function */
		r = weft_once_step(s->obj, free_never_run, s, WEFT_NEVER, &s->op);
		break;
	case W_BARRIER:
		r = weft_barrier_wait_step(s->obj, WEFT_NEVER, &s->op);
		break;
	default:
		if (!s->locked) {
			r = weft_mutex_lock_step(&s->m, WEFT_NEVER, &s->op);
			if (r == -EINPROGRESS)
				return WEFT_STEP_PARKED;
			TCHECK_EQ(r, 0);
			s->locked = true;
		}
		/* m held (a registered wait repeats until it has it back). */
		for (r = 0; s->waiting || !s->flag;) {
			r = weft_cond_wait_step(s->obj, &s->m, WEFT_NEVER, &s->op);
			s->waiting = r == -EINPROGRESS;
			if (s->waiting)
				return WEFT_STEP_PARKED;
			if (r != 0)
				break;
		}
		TCHECK_EQ(weft_mutex_unlock(&s->m), 0);
		break;
	}
	if (r == -EINPROGRESS)
		return WEFT_STEP_PARKED;
	s->result = r;
	atomic_store(&s->done, 1);
	return WEFT_STEP_DONE;
}

/* The once's function, run by the waker: returns once the waiter is
 * queued behind it and, for a task waiter, held off the worker. */
static void free_once_fn(void *a);

static weft_runtime_t *free_rt;
static wt_hold_t free_h;

/* Hold the only worker (task waiters): from now on no task runs until
 * free_unhold. */
static void free_hold_worker(free_scene_t *s)
{
	if (s->as != AS_THREAD)
		wt_hold(&free_h, free_rt);
}

static void free_unhold(free_scene_t *s)
{
	if (s->as != AS_THREAD)
		wt_unhold(&free_h);
}

static void free_once_fn(void *a)
{
	free_scene_t *s = a;
	weft_time_t give_up = wt_hang_deadline();
	while (wt_queued(free_scene_q(s)) != 1 && weft_now() < give_up)
		sched_yield();
	TCHECK_EQ(wt_queued(free_scene_q(s)), 1);
	free_hold_worker(s);
}

static void free_round(int kind, int as)
{
	free_scene_t *s = calloc(1, sizeof *s);
	assert_non_null(s);
	s->kind = kind;
	s->as = as;
	weft_mutex_init(&s->m);
	size_t size;
	switch (kind) {
	case W_SEM:
		s->obj = new_sem();
		size = sizeof(weft_sem_t);
		break;
	case W_WG:
		s->obj = new_wg(); /* counts 1 */
		size = sizeof(weft_wg_t);
		break;
	case W_ONCE:
		s->obj = malloc(size = sizeof(weft_once_t));
		weft_once_init(s->obj);
		break;
	case W_BARRIER:
		s->obj = malloc(size = sizeof(weft_barrier_t));
		weft_barrier_init(s->obj, 2);
		break;
	default:
		s->obj = malloc(size = sizeof(weft_cond_t));
		weft_cond_init(s->obj);
		break;
	}
	weft_task_t t = 0;
	pthread_t th;
	weft_spawn_opts_t so = {.runtime = free_rt};
	if (as == AS_CORO)
		assert_int_equal(weft_spawn(&t, free_waiter, s, &so), 0);
	else if (as == AS_STEP)
		assert_int_equal(weft_spawn_step(&t, free_waiter_step, s, &so), 0);
	else
		assert_int_equal(pthread_create(&th, NULL, free_waiter, s), 0);
	if (kind == W_ONCE) {
		/* The waker runs the function; the waiter queues behind it. */
		TCHECK_EQ(weft_once(s->obj, free_once_fn, s), 0);
	} else {
		weft_time_t give_up = wt_hang_deadline();
		while (wt_queued(free_scene_q(s)) != 1 && weft_now() < give_up)
			sched_yield();
		assert_int_equal(wt_queued(free_scene_q(s)), 1);
		free_hold_worker(s);
		switch (kind) {
		case W_SEM:
			assert_int_equal(weft_sem_release(s->obj, 1), 0);
			break;
		case W_WG:
			assert_int_equal(weft_wg_done(s->obj), 0);
			break;
		case W_BARRIER:
			assert_int_equal(weft_barrier_wait(s->obj), 1);
			break;
		default:
			assert_int_equal(weft_mutex_lock(&s->m), 0);
			s->flag = true;
			assert_int_equal(weft_mutex_unlock(&s->m), 0);
			assert_int_equal(weft_cond_signal(s->obj), 1);
			break;
		}
	}
	/* The waker's call has returned: free, unless the waiter is
	 * stackless, whose registered call lasts until its repeat. */
	if (as == AS_STEP) {
		free_unhold(s);
		weft_time_t give_up = wt_hang_deadline();
		while (!atomic_load(&s->done) && weft_now() < give_up)
			sched_yield();
		assert_true(atomic_load(&s->done));
		wt_poison_free(s->obj, size);
	} else {
		wt_poison_free(s->obj, size);
		free_unhold(s);
	}
	if (t)
		assert_int_equal(weft_join(t, NULL), 0);
	else
		assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(atomic_load(&s->done));
	assert_int_equal(s->result, 0);
	assert_int_equal(weft_mutex_destroy(&s->m), 0);
	free(s);
}

#define FREE_ROUNDS WT_SIZE(30, 10)

static void test_waker_frees(void **state)
{
	(void)state;
	atomic_store(&tcheck_failures, 0);
	assert_int_equal(weft_runtime_start(&free_rt, &(weft_config_t){.workers = 1, .no_monitor = true}), 0);
	for (int kind = 0; kind < W_KINDS; kind++)
		for (int as = AS_CORO; as <= AS_THREAD; as++)
			for (int i = 0; i < FREE_ROUNDS; i++)
				free_round(kind, as);
	assert_int_equal(weft_runtime_stop(free_rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
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

#define MROUNDS WT_SIZE(24, 10)

static void test_several_waiters(void **state)
{
	(void)state;
	static const multi_ops_t ops[] = {
		{m_sem_make, m_sem_waiter, m_sem_waker},    {m_wg_make, m_wg_waiter, m_wg_waker},
		{m_once_make, m_once_waiter, m_once_waker}, {m_rw_make, m_rw_waiter, m_rw_waker},
		{m_cond_make, m_cond_waiter, m_cond_waker}, {m_barrier_make, m_barrier_waiter, m_barrier_waker},
	};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		multi_rounds(MROUNDS, &ops[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutex),	    cmocka_unit_test(test_sem),
		cmocka_unit_test(test_wait_group),  cmocka_unit_test(test_once),
		cmocka_unit_test(test_rwlock),	    cmocka_unit_test(test_cond),
		cmocka_unit_test(test_barrier),	    cmocka_unit_test(test_several_waiters),
		cmocka_unit_test(test_waker_frees),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
