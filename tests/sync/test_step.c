/* test_step.c - the sync primitives' _step forms (weft/sched.h, "Step
 * forms"): stackless tasks contending with coroutines and plain threads
 * (nothing lost, nothing duplicated), deadlines (a past one polls),
 * cancellation while registered, the object freed the moment the repeated
 * call returns, and one registration at a time. Nothing here depends on
 * timing: whoever must wait is seen registered before it is let go. */
#include "wt_lifetime.h"
#include "wt_sim.h"

#include <pthread.h>
#include <string.h>
#include <weft/chan.h>
#include <weft/sync.h>

#include "sync/internal.h"

/* ------------------------------------------------------------ a mix of task kinds */

static _Atomic int threads_done;

typedef struct {
	void *(*fn)(void *);
	long i;
} thread_arg;

static void *thread_main(void *a)
{
	thread_arg *t = a;
	t->fn((void *)t->i);
	atomic_fetch_add(&threads_done, 1);
	return NULL;
}

/* Thread i's part under the simulation, which only its own thread may
 * touch: a coroutine running fn((void *)(AS_THREAD + i)) (even: i's
 * parity is kept). */
#define AS_THREAD 100

/* Run nstep stackless tasks (state i at states + i * size), ncoro
 * coroutines and nthread plain threads (fn((void *)i) for i = 0, 1, ...:
 * coroutine i and thread i), from a coroutine, until all are done. */
static void run_mix(int nstep, weft_step_fn_t step, void *states, size_t size, int ncoro, int nthread,
		    void *(*fn)(void *))
{
	if (nthread > 0 && weft_runtime_is_sim(weft_runtime_current())) {
		weft_task_t *t = calloc((size_t)nthread + 1, sizeof *t);
		for (int i = 0; i < nthread; i++)
			TCHECK_EQ(weft_spawn(&t[i], fn, (void *)(long)(AS_THREAD + i), NULL), 0);
		run_mix(nstep, step, states, size, ncoro, 0, fn);
		for (int i = 0; i < nthread; i++)
			TCHECK_EQ(weft_join(t[i], NULL), 0);
		free(t);
		return;
	}
	weft_task_t *t = calloc((size_t)(nstep + ncoro), sizeof *t);
	pthread_t *th = calloc((size_t)nthread + 1, sizeof *th);
	thread_arg *ta = calloc((size_t)nthread + 1, sizeof *ta);
	atomic_store(&threads_done, 0);
	for (int i = 0; i < nthread; i++) {
		ta[i] = (thread_arg){fn, i};
		TCHECK_EQ(pthread_create(&th[i], NULL, thread_main, &ta[i]), 0);
	}
	for (int i = 0; i < nstep; i++)
		TCHECK_EQ(weft_spawn_step(&t[i], step, (char *)states + (size_t)i * size, NULL), 0);
	for (int i = 0; i < ncoro; i++)
		TCHECK_EQ(weft_spawn(&t[nstep + i], fn, (void *)(long)i, NULL), 0);
	for (int i = 0; i < nstep + ncoro; i++)
		TCHECK_EQ(weft_join(t[i], NULL), 0);
	/* Threads may wait on tasks: park until they are done, then reap. */
	WT_WAIT_UNTIL(atomic_load(&threads_done) == nthread);
	for (int i = 0; i < nthread; i++)
		pthread_join(th[i], NULL);
	free(t);
	free(th);
	free(ta);
}

#define NSTEP WT_SIZE(8, 4)
#define NCORO WT_SIZE(4, 2)
#define NTHREAD 2
static int iters = WT_SIZE(300, 40);
#define ITERS iters

/* ------------------------------------------------------------ mutex: contention */

static weft_mutex_t mu = WEFT_MUTEX_INIT;
static long mu_counter; /* the mutex protects it */
static _Atomic int mu_inside;

typedef struct {
	weft_op_t op;
	int left;
	bool held; /* across a yield, to make the others queue */
} mu_st;

static void mu_enter(void)
{
	TCHECK_EQ(atomic_fetch_add(&mu_inside, 1), 0);
	mu_counter++;
}

static void mu_leave(void)
{
	atomic_fetch_sub(&mu_inside, 1);
	TCHECK_EQ(weft_mutex_unlock(&mu), 0);
}

static weft_step_t mu_step(void *a, void **res)
{
	mu_st *s = a;
	*res = NULL;
	for (; s->left > 0; s->left--) {
		if (s->held) {
			s->held = false;
			mu_leave();
			continue;
		}
		int r = weft_mutex_lock_step(&mu, WEFT_NEVER, &s->op);
		if (r == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		TCHECK_EQ(r, 0);
		mu_enter();
		if (s->left % 3 == 0) {
			s->held = true; /* held across a yield: the others queue */
			return WEFT_STEP_YIELD;
		}
		mu_leave();
	}
	return WEFT_STEP_DONE;
}

/* Coroutines and threads: the blocking call, or (odd i) the step form,
 * which blocks there. */
static void *mu_other(void *a)
{
	long i = (long)a;
	for (int k = 0; k < ITERS; k++) {
		weft_op_t op;
		TCHECK_EQ(i % 2 ? weft_mutex_lock_step(&mu, WEFT_NEVER, &op) : weft_mutex_lock(&mu), 0);
		mu_enter();
		if (k % 3 == 0)
			weft_yield();
		mu_leave();
	}
	return NULL;
}

static void *mu_main(void *a)
{
	(void)a;
	mu_st *st = calloc(NSTEP, sizeof *st);
	for (int i = 0; i < NSTEP; i++)
		st[i].left = ITERS;
	run_mix(NSTEP, mu_step, st, sizeof *st, NCORO, NTHREAD, mu_other);
	TCHECK_EQ(mu_counter, (long)(NSTEP + NCORO + NTHREAD) * ITERS);
	TCHECK_EQ(weft_mutex_destroy(&mu), 0);
	free(st);
	return NULL;
}

static void test_mutex_contention(void **state)
{
	(void)state;
	wt_run(mu_main, NULL, 2);
}

/* ------------------------------------------------------------ rwlock: contention */

static weft_rwlock_t rwl = WEFT_RWLOCK_INIT;
static long rw_a, rw_b; /* writers keep them equal */
static _Atomic long rw_reads, rw_writers_in, rw_readers_in;

typedef struct {
	weft_op_t op;
	int left;
	int held; /* 0, 1 read, 2 write: held across a yield */
} rw_st;

static void rw_read(void)
{
	atomic_fetch_add(&rw_readers_in, 1);
	TCHECK_EQ(atomic_load(&rw_writers_in), 0);
	TCHECK_EQ(rw_a, rw_b);
	atomic_fetch_add(&rw_reads, 1);
}

static void rw_write(void)
{
	TCHECK_EQ(atomic_fetch_add(&rw_writers_in, 1), 0);
	TCHECK_EQ(atomic_load(&rw_readers_in), 0);
	rw_a++;
	rw_b++;
}

static void rw_leave(bool writer)
{
	if (writer)
		atomic_fetch_sub(&rw_writers_in, 1);
	else
		atomic_fetch_sub(&rw_readers_in, 1);
	TCHECK_EQ(weft_rwlock_unlock(&rwl), 0);
}

/* Every third round a writer, the others readers. */
static weft_step_t rw_step(void *a, void **res)
{
	rw_st *s = a;
	*res = NULL;
	for (; s->left > 0; s->left--) {
		if (s->held) {
			rw_leave(s->held == 2);
			s->held = 0;
			continue;
		}
		bool writer = s->left % 3 == 0;
		int r = writer ? weft_rwlock_wrlock_step(&rwl, WEFT_NEVER, &s->op)
			       : weft_rwlock_rdlock_step(&rwl, WEFT_NEVER, &s->op);
		if (r == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		TCHECK_EQ(r, 0);
		if (writer)
			rw_write();
		else
			rw_read();
		if (s->left % 2 == 0) {
			s->held = writer ? 2 : 1;
			return WEFT_STEP_YIELD;
		}
		rw_leave(writer);
	}
	return WEFT_STEP_DONE;
}

static void *rw_other(void *a)
{
	long i = (long)a;
	for (int k = 0; k < ITERS; k++) {
		weft_op_t op;
		bool writer = k % 3 == 0;
		int r;
		if (writer)
			r = i % 2 ? weft_rwlock_wrlock_step(&rwl, WEFT_NEVER, &op) : weft_rwlock_wrlock(&rwl);
		else
			r = i % 2 ? weft_rwlock_rdlock_step(&rwl, WEFT_NEVER, &op) : weft_rwlock_rdlock(&rwl);
		TCHECK_EQ(r, 0);
		if (writer)
			rw_write();
		else
			rw_read();
		if (k % 2 == 0)
			weft_yield();
		rw_leave(writer);
	}
	return NULL;
}

static void *rw_main(void *a)
{
	(void)a;
	rw_st *st = calloc(NSTEP, sizeof *st);
	for (int i = 0; i < NSTEP; i++)
		st[i].left = ITERS;
	run_mix(NSTEP, rw_step, st, sizeof *st, NCORO, NTHREAD, rw_other);
	long all = (long)(NSTEP + NCORO + NTHREAD) * ITERS;
	long writes = (long)NSTEP * (ITERS / 3) + (long)(NCORO + NTHREAD) * ((ITERS + 2) / 3);
	TCHECK_EQ(rw_a, writes);
	TCHECK_EQ(atomic_load(&rw_reads), all - writes);
	TCHECK_EQ(weft_rwlock_destroy(&rwl), 0);
	free(st);
	return NULL;
}

static void test_rwlock_contention(void **state)
{
	(void)state;
	wt_run(rw_main, NULL, 2);
}

/* ------------------------------------------------------------ cond: a bounded queue */

#define QCAP 4
#define PER_PRODUCER WT_SIZE(200, 40)
#define NPROD 4 /* 2 stackless, 1 coroutine, 1 thread */
#define NCONS 4 /* 2 stackless, 1 coroutine, 1 thread */
static weft_mutex_t qm = WEFT_MUTEX_INIT;
static weft_cond_t not_empty = WEFT_COND_INIT, not_full = WEFT_COND_INIT;
static long qbuf[QCAP];
static int qhead, qlen;
static long taken, taken_sum; /* under qm */
static const long total_items = (long)NPROD * PER_PRODUCER;

/* Producer p makes p * PER_PRODUCER + 1 .. (p + 1) * PER_PRODUCER. */
static void q_put(long v)
{
	qbuf[(qhead + qlen) % QCAP] = v;
	qlen++;
	weft_cond_signal(&not_empty);
}

/* A consumer's turn, qm held and something there or all taken: false when
 * everything is taken (and the others are told). */
static bool q_take(void)
{
	if (taken == total_items) {
		weft_cond_broadcast(&not_empty);
		return false;
	}
	taken_sum += qbuf[qhead];
	qhead = (qhead + 1) % QCAP;
	qlen--;
	taken++;
	weft_cond_signal(&not_full);
	return true;
}

enum { Q_LOCK, Q_CHECK, Q_WAIT };

typedef struct {
	weft_op_t op;
	int phase;
	bool producer;
	long next, end; /* producers: what to put */
} q_st;

static weft_step_t q_step(void *a, void **res)
{
	q_st *s = a;
	*res = NULL;
	for (;;) {
		int r;
		switch (s->phase) {
		case Q_LOCK:
			if (s->producer && s->next == s->end)
				return WEFT_STEP_DONE;
			r = weft_mutex_lock_step(&qm, WEFT_NEVER, &s->op);
			if (r == -EINPROGRESS)
				return WEFT_STEP_PARKED;
			TCHECK_EQ(r, 0);
			s->phase = Q_CHECK;
			break;
		case Q_CHECK:
			if (s->producer ? qlen == QCAP : qlen == 0 && taken < total_items) {
				s->phase = Q_WAIT;
				break;
			}
			if (s->producer) {
				q_put(s->next++);
			} else if (!q_take()) {
				TCHECK_EQ(weft_mutex_unlock(&qm), 0);
				return WEFT_STEP_DONE;
			}
			TCHECK_EQ(weft_mutex_unlock(&qm), 0);
			s->phase = Q_LOCK;
			return WEFT_STEP_YIELD;
		case Q_WAIT:
			r = weft_cond_wait_step(s->producer ? &not_full : &not_empty, &qm, WEFT_NEVER, &s->op);
			if (r == -EINPROGRESS)
				return WEFT_STEP_PARKED;
			TCHECK_EQ(r, 0);
			/* The mutex is held again. */
			TCHECK_EQ(atomic_load_explicit(WEFT__A64(&qm.owner), memory_order_relaxed), weft_self());
			s->phase = Q_CHECK;
			break;
		}
	}
}

/* Coroutine/thread 0: a producer (p = 2 for the coroutine, 3 for the
 * thread), 1: a consumer. */
static void *q_other(void *a)
{
	long i = (long)a;
	bool thread = !weft_self() || i >= AS_THREAD;
	bool producer = i % 2 == 0;
	bool step = !thread; /* coroutines: the step forms, which block there */
	long p = thread ? 3 : 2;
	long next = p * PER_PRODUCER + 1, end = next + PER_PRODUCER;
	weft_op_t op;
	for (;;) {
		if (producer && next == end)
			return NULL;
		TCHECK_EQ(step ? weft_mutex_lock_step(&qm, WEFT_NEVER, &op) : weft_mutex_lock(&qm), 0);
		for (;;) {
			if (producer ? qlen < QCAP : qlen > 0 || taken == total_items)
				break;
			weft_cond_t *c = producer ? &not_full : &not_empty;
			TCHECK_EQ(step ? weft_cond_wait_step(c, &qm, WEFT_NEVER, &op) : weft_cond_wait(c, &qm), 0);
		}
		bool more = true;
		if (producer)
			q_put(next++);
		else
			more = q_take();
		TCHECK_EQ(weft_mutex_unlock(&qm), 0);
		if (!more)
			return NULL;
	}
}

static void *q_main(void *a)
{
	(void)a;
	qhead = qlen = 0;
	taken = taken_sum = 0;
	q_st st[4] = {0};
	for (int p = 0; p < 2; p++) {
		st[p].producer = true;
		st[p].next = p * PER_PRODUCER + 1;
		st[p].end = st[p].next + PER_PRODUCER;
	}
	/* Coroutines 0 (producer 2) and 1 (consumer), threads 0 (producer 3)
	 * and 1 (consumer). */
	run_mix(4, q_step, st, sizeof st[0], 2, 2, q_other);
	TCHECK_EQ(taken, total_items);
	TCHECK_EQ(taken_sum, total_items * (total_items + 1) / 2);
	TCHECK_EQ(qlen, 0);
	TCHECK_EQ(weft_cond_destroy(&not_empty), 0);
	TCHECK_EQ(weft_cond_destroy(&not_full), 0);
	TCHECK_EQ(weft_mutex_destroy(&qm), 0);
	return NULL;
}

static void test_cond_queue(void **state)
{
	(void)state;
	wt_run(q_main, NULL, 2);
}

/* ------------------------------------------------------------ semaphore: contention */

enum { PERMITS = 3 };
static weft_sem_t sem = WEFT_SEM_INIT(PERMITS);
static _Atomic int sem_in;
static _Atomic long sem_acquired;

typedef struct {
	weft_op_t op;
	int left;
	bool held;
} sem_st;

static void sem_enter(void)
{
	TCHECK(atomic_fetch_add(&sem_in, 1) < PERMITS);
	atomic_fetch_add(&sem_acquired, 1);
}

static void sem_leave(void)
{
	atomic_fetch_sub(&sem_in, 1);
	TCHECK_EQ(weft_sem_release(&sem, 1), 0);
}

static weft_step_t sem_step(void *a, void **res)
{
	sem_st *s = a;
	*res = NULL;
	for (; s->left > 0; s->left--) {
		if (s->held) {
			s->held = false;
			sem_leave();
			continue;
		}
		int r = weft_sem_acquire_step(&sem, WEFT_NEVER, &s->op);
		if (r == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		TCHECK_EQ(r, 0);
		sem_enter();
		if (s->left % 2 == 0) {
			s->held = true;
			return WEFT_STEP_YIELD;
		}
		sem_leave();
	}
	return WEFT_STEP_DONE;
}

static void *sem_other(void *a)
{
	long i = (long)a;
	for (int k = 0; k < ITERS; k++) {
		weft_op_t op;
		TCHECK_EQ(i % 2 ? weft_sem_acquire_step(&sem, WEFT_NEVER, &op) : weft_sem_acquire(&sem), 0);
		sem_enter();
		if (k % 2 == 0)
			weft_yield();
		sem_leave();
	}
	return NULL;
}

static void *sem_main(void *a)
{
	(void)a;
	sem_st *st = calloc(NSTEP, sizeof *st);
	for (int i = 0; i < NSTEP; i++)
		st[i].left = ITERS;
	run_mix(NSTEP, sem_step, st, sizeof *st, NCORO, NTHREAD, sem_other);
	TCHECK_EQ(atomic_load(&sem_acquired), (long)(NSTEP + NCORO + NTHREAD) * ITERS);
	TCHECK_EQ(weft_sem_value(&sem), PERMITS); /* none lost, none made up */
	TCHECK_EQ(weft_sem_destroy(&sem), 0);
	free(st);
	return NULL;
}

static void test_sem_contention(void **state)
{
	(void)state;
	wt_run(sem_main, NULL, 2);
}

/* ------------------------------------------------------------ wait group: rounds */

#define WG_ROUNDS WT_SIZE(50, 10)
#define WG_WORKERS 4
static weft_wg_t wg = WEFT_WG_INIT;
static _Atomic int wg_finished;	   /* workers done this round */
static _Atomic int wg_waiters_out; /* waiters returned this round */

typedef struct {
	weft_op_t op;
} wg_st;

static weft_step_t wg_step(void *a, void **res)
{
	wg_st *s = a;
	*res = NULL;
	int r = weft_wg_wait_step(&wg, WEFT_NEVER, &s->op);
	if (r == -EINPROGRESS)
		return WEFT_STEP_PARKED;
	TCHECK_EQ(r, 0);
	TCHECK_EQ(atomic_load(&wg_finished), WG_WORKERS); /* only once all are done */
	atomic_fetch_add(&wg_waiters_out, 1);
	return WEFT_STEP_DONE;
}

/* Coroutines and threads: i < WG_WORKERS work, the others wait. */
static void *wg_other(void *a)
{
	long i = (long)a % AS_THREAD;
	if (i < 2) { /* coroutine or thread 0, 1: workers */
		weft_yield();
		atomic_fetch_add(&wg_finished, 1);
		TCHECK_EQ(weft_wg_done(&wg), 0);
		return NULL;
	}
	weft_op_t op;
	TCHECK_EQ(i % 2 ? weft_wg_wait_step(&wg, WEFT_NEVER, &op) : weft_wg_wait(&wg), 0);
	TCHECK_EQ(atomic_load(&wg_finished), WG_WORKERS);
	atomic_fetch_add(&wg_waiters_out, 1);
	return NULL;
}

static void *wg_main(void *a)
{
	(void)a;
	wg_st st[NSTEP];
	for (int round = 0; round < WG_ROUNDS; round++) {
		atomic_store(&wg_finished, 0);
		atomic_store(&wg_waiters_out, 0);
		TCHECK_EQ(weft_wg_add(&wg, WG_WORKERS), 0);
		/* 2 coroutine and 2 thread workers, 2 + 2 more as waiters. */
		run_mix(NSTEP, wg_step, st, sizeof st[0], 4, 4, wg_other);
		TCHECK_EQ(atomic_load(&wg_waiters_out), NSTEP + 4);
		TCHECK_EQ(weft_wg_count(&wg), 0);
	}
	TCHECK_EQ(weft_wg_destroy(&wg), 0);
	return NULL;
}

static void test_wait_group_rounds(void **state)
{
	(void)state;
	wt_run(wg_main, NULL, 2);
}

/* ------------------------------------------------------------ barrier: generations */

#define B_ROUNDS WT_SIZE(100, 20)
#define B_PARTIES (NSTEP + 2 + 2)
static weft_barrier_t bar;
static _Atomic int b_arrived[B_ROUNDS];
static _Atomic int b_serial;

typedef struct {
	weft_op_t op;
	int round;
	bool arrived;
} b_st;

static void b_passed(int round, int r)
{
	/* Nobody passes before every party of its generation has arrived. */
	TCHECK_EQ(atomic_load(&b_arrived[round]), B_PARTIES);
	TCHECK(r == 0 || r == 1);
	if (r == 1)
		atomic_fetch_add(&b_serial, 1);
}

static weft_step_t b_step(void *a, void **res)
{
	b_st *s = a;
	*res = NULL;
	while (s->round < B_ROUNDS) {
		if (!s->arrived) {
			atomic_fetch_add(&b_arrived[s->round], 1);
			s->arrived = true;
		}
		int r = weft_barrier_wait_step(&bar, WEFT_NEVER, &s->op);
		if (r == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		b_passed(s->round, r);
		s->arrived = false;
		s->round++;
	}
	return WEFT_STEP_DONE;
}

static void *b_other(void *a)
{
	long i = (long)a;
	for (int round = 0; round < B_ROUNDS; round++) {
		atomic_fetch_add(&b_arrived[round], 1);
		weft_op_t op;
		b_passed(round, i % 2 ? weft_barrier_wait_step(&bar, WEFT_NEVER, &op) : weft_barrier_wait(&bar));
	}
	return NULL;
}

static void *b_main(void *a)
{
	(void)a;
	TCHECK_EQ(weft_barrier_init(&bar, B_PARTIES), 0);
	b_st st[NSTEP];
	memset(st, 0, sizeof st);
	run_mix(NSTEP, b_step, st, sizeof st[0], 2, 2, b_other);
	TCHECK_EQ(atomic_load(&b_serial), B_ROUNDS); /* one serial party a generation */
	TCHECK_EQ(weft_barrier_destroy(&bar), 0);
	return NULL;
}

static void test_barrier_generations(void **state)
{
	(void)state;
	wt_run(b_main, NULL, 2);
}

/* ------------------------------------------------------------ once */

#define ONCES WT_SIZE(100, 20)
static weft_once_t onces[ONCES];
static _Atomic int once_runs[ONCES];
static int once_value[ONCES]; /* written by fn; read after once returns */

static void once_fn(void *a)
{
	long k = (long)a;
	atomic_fetch_add(&once_runs[k], 1);
	once_value[k] = (int)k + 1;
}

typedef struct {
	weft_op_t op;
	int k;
} once_st;

static weft_step_t once_step(void *a, void **res)
{
	once_st *s = a;
	*res = NULL;
	for (; s->k < ONCES; s->k++) {
		int r = weft_once_step(&onces[s->k], once_fn, (void *)(long)s->k, WEFT_NEVER, &s->op);
		if (r == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		TCHECK_EQ(r, 0);
		TCHECK_EQ(once_value[s->k], s->k + 1); /* fn's effects are visible */
	}
	return WEFT_STEP_DONE;
}

static void *once_other(void *a)
{
	long i = (long)a;
	for (long k = 0; k < ONCES; k++) {
		weft_op_t op;
		TCHECK_EQ(i % 2 ? weft_once_step(&onces[k], once_fn, (void *)k, WEFT_NEVER, &op)
				: weft_once(&onces[k], once_fn, (void *)k),
			  0);
		TCHECK_EQ(once_value[k], k + 1);
	}
	return NULL;
}

/* A waiter surely waits: fn, run by a coroutine, returns only once a
 * stackless caller has registered behind it. */
static weft_once_t held_once = WEFT_ONCE_INIT;
static _Atomic int held_registered, held_fn_in;

static void held_fn(void *a)
{
	(void)a;
	atomic_store(&held_fn_in, 1);
	WT_WAIT_UNTIL(atomic_load(&held_registered));
}

static void *held_runner(void *a)
{
	(void)a;
	TCHECK_EQ(weft_once(&held_once, held_fn, NULL), 0);
	return NULL;
}

static weft_step_t held_step(void *a, void **res)
{
	weft_op_t *op = a;
	*res = NULL;
	int r = weft_once_step(&held_once, held_fn, NULL, WEFT_NEVER, op);
	if (r == -EINPROGRESS) {
		atomic_store(&held_registered, 1);
		return WEFT_STEP_PARKED;
	}
	TCHECK_EQ(r, 0);
	TCHECK(atomic_load(&held_registered)); /* it did wait */
	return WEFT_STEP_DONE;
}

static void *once_main(void *a)
{
	(void)a;
	for (int k = 0; k < ONCES; k++)
		weft_once_init(&onces[k]);
	once_st st[NSTEP];
	memset(st, 0, sizeof st);
	run_mix(NSTEP, once_step, st, sizeof st[0], NCORO, NTHREAD, once_other);
	for (int k = 0; k < ONCES; k++)
		TCHECK_EQ(atomic_load(&once_runs[k]), 1);

	weft_task_t r = wt_spawn(held_runner, NULL);
	WT_WAIT_UNTIL(atomic_load(&held_fn_in));
	static weft_op_t op;
	weft_task_t s;
	TCHECK_EQ(weft_spawn_step(&s, held_step, &op, NULL), 0);
	wt_join(r);
	wt_join(s);
	return NULL;
}

static void test_once_callers(void **state)
{
	(void)state;
	wt_run(once_main, NULL, 2);
}

/* ------------------------------------------------------------ one primitive at a time */

/* The waits a stackless task can be registered in, each with what makes it
 * wait (set up by the main coroutine), what lets it go, and what shows that
 * nothing changed. */
enum { K_MUTEX, K_RDLOCK, K_WRLOCK, K_COND, K_WG, K_SEM, K_ONCE, K_BARRIER, K_COUNT };

typedef struct {
	weft_mutex_t m;
	weft_rwlock_t rw;
	weft_cond_t c;
	weft_mutex_t cm; /* the condition's */
	weft_wg_t wg;
	weft_sem_t sem;
	weft_once_t once;
	weft_barrier_t b;
} objs_t;

static _Atomic int once_release;
static void once_slow(void *a)
{
	(void)a;
	WT_WAIT_UNTIL(atomic_load(&once_release));
}

static void objs_init(objs_t *o)
{
	weft_mutex_init(&o->m);
	weft_rwlock_init(&o->rw);
	weft_cond_init(&o->c);
	weft_mutex_init(&o->cm);
	weft_wg_init(&o->wg);
	weft_sem_init(&o->sem, 0);
	weft_once_init(&o->once);
	weft_barrier_init(&o->b, 2);
}

/* The step call of kind k, with deadline dl; cond needs cm held (the
 * caller's job). */
static int call_kind(objs_t *o, int k, weft_time_t dl, weft_op_t *op)
{
	switch (k) {
	case K_MUTEX:
		return weft_mutex_lock_step(&o->m, dl, op);
	case K_RDLOCK:
		return weft_rwlock_rdlock_step(&o->rw, dl, op);
	case K_WRLOCK:
		return weft_rwlock_wrlock_step(&o->rw, dl, op);
	case K_COND:
		return weft_cond_wait_step(&o->c, &o->cm, dl, op);
	case K_WG:
		return weft_wg_wait_step(&o->wg, dl, op);
	case K_SEM:
		return weft_sem_acquire_step(&o->sem, dl, op);
	case K_ONCE:
		return weft_once_step(&o->once, once_slow, NULL, dl, op);
	default:
		return weft_barrier_wait_step(&o->b, dl, op);
	}
}

static _Atomic int once_runner_in;
static void *once_runner(void *a)
{
	objs_t *o = a;
	atomic_store(&once_runner_in, 1);
	TCHECK_EQ(weft_once(&o->once, once_slow, NULL), 0);
	return NULL;
}

static weft_task_t once_runner_task;

/* Make every kind's call wait (from the main coroutine). */
static void objs_block(objs_t *o)
{
	TCHECK_EQ(weft_mutex_lock(&o->m), 0);
	TCHECK_EQ(weft_rwlock_wrlock(&o->rw), 0);
	TCHECK_EQ(weft_wg_add(&o->wg, 1), 0);
	atomic_store(&once_release, 0);
	atomic_store(&once_runner_in, 0);
	once_runner_task = wt_spawn(once_runner, o);
	WT_WAIT_UNTIL(atomic_load(&once_runner_in) &&
		      atomic_load_explicit(WEFT__A32(&o->once.state), memory_order_acquire) == 1);
}

/* Let every kind's waiter go (the barrier: the main coroutine arrives). */
static void objs_release(objs_t *o, bool barrier_too)
{
	TCHECK_EQ(weft_mutex_unlock(&o->m), 0);
	TCHECK_EQ(weft_rwlock_unlock(&o->rw), 0);
	TCHECK_EQ(weft_cond_broadcast(&o->c) >= 0, 1);
	TCHECK_EQ(weft_wg_done(&o->wg), 0);
	TCHECK_EQ(weft_sem_release(&o->sem, 1), 0);
	atomic_store(&once_release, 1);
	wt_join(once_runner_task);
	if (barrier_too)
		TCHECK_EQ(weft_barrier_wait(&o->b), 1);
}

/* Nobody waits on anything and nothing is held or counted: every kind's
 * state is what objs_block/objs_release left. */
static void objs_check_idle(objs_t *o, bool sem_permit)
{
	TCHECK_EQ(weft_mutex_destroy(&o->m), 0);
	TCHECK_EQ(weft_rwlock_destroy(&o->rw), 0);
	TCHECK_EQ(weft_cond_destroy(&o->c), 0);
	TCHECK_EQ(weft_mutex_destroy(&o->cm), 0);
	TCHECK_EQ(weft_wg_destroy(&o->wg), 0);
	TCHECK_EQ(weft_sem_value(&o->sem), sem_permit ? 1 : 0);
	TCHECK_EQ(weft_sem_destroy(&o->sem), 0);
	TCHECK_EQ(weft_barrier_destroy(&o->b), 0);
}

typedef struct {
	objs_t *o;
	int kind;
	int phase;
	int result;
	_Atomic int runs;
	weft_time_t dl;
	weft_op_t op, other;
	_Atomic int registered;
} one_st;

/* Register in the kind's wait, then try every other kind's call, and the
 * same op in every other call: all -EBUSY, nothing changed. */
static weft_step_t busy_step(void *a, void **res)
{
	one_st *s = a;
	*res = NULL;
	if (s->phase == 0 && s->kind == K_COND) {
		int r = weft_mutex_lock_step(&s->o->cm, WEFT_NEVER, &s->op);
		if (r == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		TCHECK_EQ(r, 0);
	}
	int r = call_kind(s->o, s->kind, WEFT_NEVER, &s->op);
	if (s->phase == 0) {
		s->phase = 1;
		TCHECK_EQ(r, -EINPROGRESS);
		weft_waker_t w = weft_park_prepare();
		TCHECK(w.parker == NULL);
		TCHECK_EQ(weft_park_deadline(w, WEFT_NEVER), -EBUSY);
		for (int k = 0; k < K_COUNT; k++) {
			memset(&s->other, 0, sizeof s->other);
			TCHECK_EQ(call_kind(s->o, k, WEFT_NEVER, &s->other), -EBUSY);
			if (k != s->kind)
				TCHECK_EQ(call_kind(s->o, k, WEFT_NEVER, &s->op), -EBUSY);
		}
		TCHECK_EQ(call_kind(s->o, s->kind, WEFT_NEVER, &s->op), -EINPROGRESS); /* not woken yet */
		atomic_store(&s->registered, 1);
		return WEFT_STEP_PARKED;
	}
	if (r == -EINPROGRESS)
		return WEFT_STEP_PARKED; /* cond: registered for its mutex now */
	TCHECK(r >= 0);
	if (s->kind == K_MUTEX)
		TCHECK_EQ(weft_mutex_unlock(&s->o->m), 0);
	else if (s->kind == K_RDLOCK || s->kind == K_WRLOCK)
		TCHECK_EQ(weft_rwlock_unlock(&s->o->rw), 0);
	else if (s->kind == K_COND)
		TCHECK_EQ(weft_mutex_unlock(&s->o->cm), 0);
	return WEFT_STEP_DONE;
}

static void *busy_main(void *a)
{
	(void)a;
	for (int k = 0; k < K_COUNT; k++) {
		objs_t o;
		objs_init(&o);
		objs_block(&o);
		one_st s = {.o = &o, .kind = k};
		weft_task_t t;
		TCHECK_EQ(weft_spawn_step(&t, busy_step, &s, NULL), 0);
		WT_WAIT_UNTIL(atomic_load(&s.registered));
		/* Nothing the refused calls touched has a waiter besides s's. */
		objs_release(&o, k == K_BARRIER);
		wt_join(t);
		objs_check_idle(&o, k != K_SEM); /* s took the permit in K_SEM */
	}
	return NULL;
}

static void test_one_registration_at_a_time(void **state)
{
	(void)state;
	wt_run(busy_main, NULL, 2);
}

/* ------------------------------------------------------------ deadlines */

/* A past deadline polls: -ETIMEDOUT at once, nothing registered. A
 * deadline that passes while registered: -ETIMEDOUT from the repeat,
 * nothing acquired and nothing left queued. */
static weft_step_t deadline_step(void *a, void **res)
{
	one_st *s = a;
	*res = NULL;
	s->runs++;
	if (s->phase == 0) {
		if (s->kind == K_COND) {
			int r = weft_mutex_lock_step(&s->o->cm, WEFT_NEVER, &s->op);
			if (r == -EINPROGRESS)
				return WEFT_STEP_PARKED;
			TCHECK_EQ(r, 0);
		}
		TCHECK_EQ(call_kind(s->o, s->kind, weft_now() - 1, &s->op), -ETIMEDOUT);
		TCHECK_EQ(call_kind(s->o, s->kind, 1, &s->op), -ETIMEDOUT);
		s->phase = 1;
		s->dl = weft_deadline_in(2 * WEFT_MSEC); /* (registers, unless it has passed already) */
	}
	int r = call_kind(s->o, s->kind, s->dl, &s->op);
	if (r == -EINPROGRESS) {
		atomic_store(&s->registered, 1);
		return WEFT_STEP_PARKED;
	}
	TCHECK_EQ(r, -ETIMEDOUT);
	if (s->kind == K_COND) /* back with the mutex */
		TCHECK_EQ(weft_mutex_unlock(&s->o->cm), 0);
	return WEFT_STEP_DONE;
}

static void *deadline_main(void *a)
{
	(void)a;
	for (int k = 0; k < K_COUNT; k++) {
		objs_t o;
		objs_init(&o);
		objs_block(&o);
		one_st s = {.o = &o, .kind = k};
		weft_task_t t;
		TCHECK_EQ(weft_spawn_step(&t, deadline_step, &s, NULL), 0);
		wt_join(t);
		if (k == K_BARRIER) /* it left its generation: it does not count */
			TCHECK_EQ(weft_barrier_wait_until(&o.b, weft_now()), -ETIMEDOUT);
		objs_release(&o, false);
		objs_check_idle(&o, true); /* the permit is still there */
	}
	return NULL;
}

static void test_deadlines(void **state)
{
	(void)state;
	wt_run(deadline_main, NULL, 2);
}

/* ------------------------------------------------------------ cancellation */

static weft_step_t cancel_step(void *a, void **res)
{
	one_st *s = a;
	*res = NULL;
	s->runs++;
	if (s->phase == 0 && s->kind == K_COND) {
		int r = weft_mutex_lock_step(&s->o->cm, WEFT_NEVER, &s->op);
		if (r == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		TCHECK_EQ(r, 0);
	}
	int r = call_kind(s->o, s->kind, WEFT_NEVER, &s->op);
	if (r == -EINPROGRESS) {
		s->phase = 1;
		atomic_store(&s->registered, 1);
		return WEFT_STEP_PARKED;
	}
	s->result = r;
	if (s->kind == K_COND) { /* back with the mutex, whatever the result */
		TCHECK_EQ(atomic_load_explicit(WEFT__A64(&s->o->cm.owner), memory_order_relaxed), weft_self());
		TCHECK_EQ(weft_mutex_unlock(&s->o->cm), 0);
	}
	return WEFT_STEP_DONE;
}

static void *cancel_main(void *a)
{
	(void)a;
	for (int k = 0; k < K_COUNT; k++) {
		objs_t o;
		objs_init(&o);
		objs_block(&o);
		one_st s = {.o = &o, .kind = k};
		weft_task_t t;
		TCHECK_EQ(weft_spawn_step(&t, cancel_step, &s, NULL), 0);
		WT_WAIT_UNTIL(atomic_load(&s.registered));
		if (k == K_COND) {
			/* Hold the condition's mutex as the waiter is cancelled: it
			 * queues on the mutex like any locker (uncancellably) and
			 * waits there, instead of retrying: its step runs once more
			 * (the cancelled signal wait's repeat, which registers on the
			 * mutex) and then not again until the mutex is free. */
			TCHECK_EQ(weft_mutex_lock(&o.cm), 0);
			int runs = atomic_load(&s.runs);
			TCHECK_EQ(weft_cancel(t), 0);
			WT_WAIT_UNTIL(weft__mutex_waiters(&o.cm) == 1);
			for (int i = 0; i < 100; i++)
				weft_yield(); /* (a retrying waiter would run meanwhile) */
			TCHECK_EQ(atomic_load(&s.runs), runs + 1);
			TCHECK_EQ(weft__mutex_waiters(&o.cm), 1);
			TCHECK_EQ(weft_mutex_unlock(&o.cm), 0);
		} else {
			TCHECK_EQ(weft_cancel(t), 0);
		}
		wt_join(t);
		TCHECK_EQ(s.result, -ECANCELED);
		if (k == K_BARRIER)
			TCHECK_EQ(weft_barrier_wait_until(&o.b, weft_now()), -ETIMEDOUT);
		objs_release(&o, false);
		objs_check_idle(&o, true); /* nothing taken */
	}
	return NULL;
}

static void test_cancel_while_registered(void **state)
{
	(void)state;
	wt_run(cancel_main, NULL, 2);
}

/* ------------------------------------------------------------ lifetime */

/* A stackless waiter frees the object the moment its repeated call
 * returns, while the waker - a plain thread or a coroutine, stretched
 * right after its wake-up (wt_lifetime.h) - is still returning. */
#define LROUNDS WT_SIZE(16, 8)

typedef struct {
	int kind;
	objs_t *o;
	weft_op_t op;
	bool locked; /* cond: its mutex taken */
	_Atomic int blocked, registered, done;
} life_st;

static weft_step_t life_step(void *a, void **res)
{
	life_st *s = a;
	*res = NULL;
	objs_t *o = s->o;
	if (s->kind == K_COND && !s->locked) {
		int r = weft_mutex_lock_step(&o->cm, WEFT_NEVER, &s->op);
		if (r == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		TCHECK_EQ(r, 0);
		s->locked = true;
	}
	int r = call_kind(o, s->kind, WEFT_NEVER, &s->op);
	if (r == -EINPROGRESS) {
		atomic_store(&s->registered, 1);
		return WEFT_STEP_PARKED;
	}
	TCHECK(r >= 0);
	if (s->kind == K_MUTEX)
		TCHECK_EQ(weft_mutex_unlock(&o->m), 0);
	else if (s->kind == K_RDLOCK || s->kind == K_WRLOCK)
		TCHECK_EQ(weft_rwlock_unlock(&o->rw), 0);
	else if (s->kind == K_COND)
		TCHECK_EQ(weft_mutex_unlock(&o->cm), 0);
	wt_poison_free(o, sizeof *o); /* the moment its call returned: nothing else holds it */
	atomic_store(&s->done, 1);
	return WEFT_STEP_DONE;
}

/* once: the waker runs the function, which returns (armed) once the
 * waiter is registered behind it; finishing the once wakes it. */
static void life_once_fn(void *a)
{
	life_st *s = a;
	atomic_store(&s->blocked, 1);
	while (!atomic_load(&s->registered))
		weft_yield();
	wt_arm();
}

/* Make kind's call wait, then (armed) let the registered waiter go; o is
 * not touched after that. */
static void *life_waker(void *a)
{
	life_st *s = a;
	objs_t *o = s->o;
	switch (s->kind) {
	case K_ONCE:
		TCHECK_EQ(weft_once(&o->once, life_once_fn, s), 0);
		wt_disarm();
		return NULL;
	case K_MUTEX:
		TCHECK_EQ(weft_mutex_lock(&o->m), 0);
		break;
	case K_RDLOCK:
	case K_WRLOCK:
		TCHECK_EQ(weft_rwlock_wrlock(&o->rw), 0);
		break;
	case K_WG:
		TCHECK_EQ(weft_wg_add(&o->wg, 1), 0);
		break;
	default:
		break;
	}
	atomic_store(&s->blocked, 1);
	while (!atomic_load(&s->registered))
		weft_yield();
	wt_arm();
	switch (s->kind) {
	case K_MUTEX:
		TCHECK_EQ(weft_mutex_unlock(&o->m), 0);
		break;
	case K_RDLOCK:
	case K_WRLOCK:
		TCHECK_EQ(weft_rwlock_unlock(&o->rw), 0);
		break;
	case K_COND:
		TCHECK_EQ(weft_cond_signal(&o->c), 1);
		break;
	case K_WG:
		TCHECK_EQ(weft_wg_done(&o->wg), 0);
		break;
	case K_SEM:
		TCHECK_EQ(weft_sem_release(&o->sem, 1), 0);
		break;
	default:
		TCHECK_EQ(weft_barrier_wait(&o->b), 1);
	}
	wt_disarm();
	return NULL;
}

static void *life_main(void *a)
{
	(void)a;
	for (int k = 0; k < K_COUNT; k++) {
		for (int round = 0; round < LROUNDS; round++) {
			objs_t *o = malloc(sizeof *o);
			objs_init(o);
			life_st s = {.kind = k, .o = o};
			bool on_thread = round % 2 == 0;
			pthread_t th;
			weft_task_t w = 0;
			if (on_thread)
				TCHECK_EQ(pthread_create(&th, NULL, life_waker, &s), 0);
			else
				w = wt_spawn(life_waker, &s);
			WT_WAIT_UNTIL(atomic_load(&s.blocked));
			weft_task_t t;
			TCHECK_EQ(weft_spawn_step(&t, life_step, &s, NULL), 0);
			wt_join(t);
			if (on_thread)
				pthread_join(th, NULL);
			else
				wt_join(w);
			TCHECK(atomic_load(&s.done));
		}
	}
	return NULL;
}

static void test_lifetime(void **state)
{
	(void)state;
	atomic_store(&wt_stretched, 0);
	atomic_store(&wt_arms, 0);
	wt_run(life_main, NULL, 2);
	atomic_store(&weft__unpark_hook, NULL);
	assert_true(atomic_load(&wt_stretched) > 0);
}

/* A task that takes the mutex itself (a try-lock) while its condition wait
 * is registered: the repeat finds it holds the mutex, which is what the
 * call promises on return, and completes (it asserted, and in release
 * retried for ever). */
typedef struct {
	weft_mutex_t m;
	weft_cond_t c;
	weft_op_t op;
	int phase;
	_Atomic bool registered;
} ct_state;

static weft_step_t ct_step(void *a, void **res)
{
	ct_state *s = a;
	int r;
	switch (s->phase) {
	case 0:
		TCHECK_EQ(weft_mutex_try_lock(&s->m), 0);
		s->phase = 1;
		/* fall through */
	case 1:
		r = weft_cond_wait_step(&s->c, &s->m, WEFT_NEVER, &s->op);
		if (r == -EINPROGRESS) {
			if (!atomic_load(&s->registered)) {
				/* Registered, m released: take it back at once. */
				TCHECK_EQ(weft_mutex_try_lock(&s->m), 0);
				atomic_store(&s->registered, true);
			}
			return WEFT_STEP_PARKED;
		}
		*res = (void *)(intptr_t)r;
		TCHECK_EQ(weft_mutex_unlock(&s->m), 0); /* held */
		return WEFT_STEP_DONE;
	}
	return WEFT_STEP_DONE;
}

static void *ct_main(void *a)
{
	(void)a;
	ct_state s = {.m = WEFT_MUTEX_INIT};
	TCHECK_EQ(weft_cond_init(&s.c), 0);
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, ct_step, &s, NULL), 0);
	while (!atomic_load(&s.registered))
		weft_yield();
	TCHECK_EQ(weft_cond_signal(&s.c), 1);
	void *r;
	TCHECK_EQ(weft_join(t, &r), 0);
	TCHECK_EQ((intptr_t)r, 0);
	TCHECK_EQ(weft_mutex_try_lock(&s.m), 0); /* free again */
	TCHECK_EQ(weft_mutex_unlock(&s.m), 0);
	TCHECK_EQ(weft_cond_destroy(&s.c), 0);
	return NULL;
}

static void test_cond_repeat_when_the_task_took_the_mutex(void **state)
{
	(void)state;
	wt_run(ct_main, NULL, 2);
}

/* A repeat of a registered call on another object (another semaphore,
 * mutex, channel, task; the same condition with another mutex) is another
 * call: -EBUSY, with nothing changed on either object, before the wake
 * and after it; the right repeat then completes. (Each used to finish the
 * wait against the wrong object: crashes, lost wake-ups, a mutex taken.) */
enum { OB_SEM, OB_MUTEX, OB_CHAN, OB_COND, OB_JOIN, OB_KINDS };

typedef struct {
	int kind, phase;
	weft_op_t op;
	weft_sem_t sem[2];
	weft_mutex_t mu[2];
	weft_chan_t *ch[2];
	weft_cond_t cond;
	weft_task_t task[2];
	long v;
	_Atomic bool parked;
} ob_state;

/* The call on object i (0: the registered one, 1: the other). */
static int ob_call(ob_state *s, int i)
{
	switch (s->kind) {
	case OB_SEM:
		return weft_sem_acquire_step(&s->sem[i], WEFT_NEVER, &s->op);
	case OB_MUTEX:
		return weft_mutex_lock_step(&s->mu[i], WEFT_NEVER, &s->op);
	case OB_CHAN:
		return weft_chan_recv_step(s->ch[i], &s->v, WEFT_NEVER, &s->op);
	case OB_COND:
		return weft_cond_wait_step(&s->cond, &s->mu[i], WEFT_NEVER, &s->op);
	default:
		return weft_join_step(s->task[i], NULL, WEFT_NEVER, &s->op);
	}
}

static weft_step_t ob_step(void *a, void **res)
{
	ob_state *s = a;
	if (s->phase == 0) {
		if (s->kind == OB_COND)
			TCHECK_EQ(weft_mutex_try_lock(&s->mu[0]), 0);
		TCHECK_EQ(ob_call(s, 0), -EINPROGRESS);
		TCHECK_EQ(ob_call(s, 1), -EBUSY); /* before the wake */
		s->phase = 1;
		atomic_store(&s->parked, true);
		return WEFT_STEP_PARKED;
	}
	TCHECK_EQ(ob_call(s, 1), -EBUSY); /* after it */
	int r = ob_call(s, 0);
	if (r == -EINPROGRESS)
		return WEFT_STEP_PARKED; /* (a mutex relock after the signal) */
	if (r == 0 && (s->kind == OB_MUTEX || s->kind == OB_COND))
		TCHECK_EQ(weft_mutex_unlock(&s->mu[0]), 0); /* ours: the call took it */
	*res = (void *)(intptr_t)r;
	return WEFT_STEP_DONE;
}

static void *ob_sleeper(void *a)
{
	(void)a;
	weft_sleep_until(WEFT_NEVER);
	return NULL;
}

static void *ob_main(void *a)
{
	(void)a;
	for (int kind = 0; kind < OB_KINDS; kind++) {
		ob_state s = {.kind = kind, .mu = {WEFT_MUTEX_INIT, WEFT_MUTEX_INIT}};
		TCHECK_EQ(weft_sem_init(&s.sem[0], 0), 0);
		TCHECK_EQ(weft_sem_init(&s.sem[1], 1), 0);
		TCHECK_EQ(weft_cond_init(&s.cond), 0);
		for (int i = 0; i < 2; i++) {
			TCHECK_EQ(weft_chan_create(&s.ch[i], sizeof(long), 1), 0);
			TCHECK_EQ(weft_spawn(&s.task[i], ob_sleeper, NULL, NULL), 0);
		}
		long one = 1;
		TCHECK_EQ(weft_chan_try_send(s.ch[1], &one), 0); /* the other is ready */
		if (kind == OB_MUTEX)
			TCHECK_EQ(weft_mutex_lock(&s.mu[0]), 0);
		weft_task_t t;
		TCHECK_EQ(weft_spawn_step(&t, ob_step, &s, NULL), 0);
		while (!atomic_load(&s.parked))
			weft_yield();
		switch (kind) { /* make the registered object ready */
		case OB_SEM:
			TCHECK_EQ(weft_sem_release(&s.sem[0], 1), 0);
			break;
		case OB_MUTEX:
			TCHECK_EQ(weft_mutex_unlock(&s.mu[0]), 0);
			break;
		case OB_CHAN: {
			long seven = 7;
			TCHECK_EQ(weft_chan_send(s.ch[0], &seven), 0);
			break;
		}
		case OB_COND:
			TCHECK_EQ(weft_cond_signal(&s.cond), 1);
			break;
		default:
			TCHECK_EQ(weft_cancel(s.task[0]), 0);
		}
		void *r;
		TCHECK_EQ(weft_join(t, &r), 0);
		TCHECK_EQ((intptr_t)r, 0);
		/* The other objects are as they were. */
		TCHECK_EQ(weft_sem_try_acquire(&s.sem[1]), 0);
		TCHECK_EQ(weft_mutex_try_lock(&s.mu[1]), 0);
		TCHECK_EQ(weft_mutex_unlock(&s.mu[1]), 0);
		long v = 0;
		TCHECK_EQ(weft_chan_try_recv(s.ch[1], &v), 0);
		TCHECK_EQ(v, 1);
		if (kind == OB_CHAN)
			TCHECK_EQ(s.v, 7);
		TCHECK_EQ(weft_mutex_try_lock(&s.mu[0]), 0); /* free again */
		TCHECK_EQ(weft_mutex_unlock(&s.mu[0]), 0);
		TCHECK_EQ(weft_cancel(s.task[1]), 0);
		if (kind != OB_JOIN)
			TCHECK_EQ(weft_cancel(s.task[0]), 0);
		else
			TCHECK_EQ(weft_join(s.task[0], NULL), -ESRCH); /* joined by the task */
		TCHECK_EQ(weft_join(s.task[1], NULL), 0);
		if (kind != OB_JOIN)
			TCHECK_EQ(weft_join(s.task[0], NULL), 0);
		for (int i = 0; i < 2; i++)
			TCHECK_EQ(weft_chan_release(s.ch[i]), 0);
		TCHECK_EQ(weft_cond_destroy(&s.cond), 0);
	}
	return NULL;
}

static void test_a_repeat_on_another_object_is_refused(void **state)
{
	(void)state;
	wt_run(ob_main, NULL, 2);
}

/* ------------------------------------------------------------ under the simulation */

/* The twins: the same bodies, one task at a time in an order drawn from
 * each seed (tests/wt_sim.h); the plain threads' parts are coroutines
 * there (run_mix), and each seed starts from fresh objects and counts. */
#define SIM_ITERS 30

static void *mu_sim_main(void *a)
{
	weft_mutex_init(&mu);
	mu_counter = 0;
	atomic_store(&mu_inside, 0);
	return mu_main(a);
}

static void test_mutex_contention_sim(void **state)
{
	(void)state;
	iters = SIM_ITERS;
	wt_sim_sweep("sync/step_mutex_contention", mu_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *rw_sim_main(void *a)
{
	weft_rwlock_init(&rwl);
	rw_a = rw_b = 0;
	atomic_store(&rw_reads, 0);
	atomic_store(&rw_writers_in, 0);
	atomic_store(&rw_readers_in, 0);
	return rw_main(a);
}

static void test_rwlock_contention_sim(void **state)
{
	(void)state;
	iters = SIM_ITERS;
	wt_sim_sweep("sync/step_rwlock_contention", rw_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *q_sim_main(void *a)
{
	weft_mutex_init(&qm);
	weft_cond_init(&not_empty);
	weft_cond_init(&not_full);
	return q_main(a);
}

static void test_cond_queue_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/step_cond_queue", q_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *sem_sim_main(void *a)
{
	weft_sem_init(&sem, PERMITS);
	atomic_store(&sem_in, 0);
	atomic_store(&sem_acquired, 0);
	return sem_main(a);
}

static void test_sem_contention_sim(void **state)
{
	(void)state;
	iters = SIM_ITERS;
	wt_sim_sweep("sync/step_sem_contention", sem_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *wg_sim_main(void *a)
{
	weft_wg_init(&wg);
	return wg_main(a);
}

static void test_wait_group_rounds_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/step_wait_group_rounds", wg_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *b_sim_main(void *a)
{
	for (int r = 0; r < B_ROUNDS; r++)
		atomic_store(&b_arrived[r], 0);
	atomic_store(&b_serial, 0);
	return b_main(a);
}

static void test_barrier_generations_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/step_barrier_generations", b_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void *once_sim_main(void *a)
{
	for (int k = 0; k < ONCES; k++) {
		atomic_store(&once_runs[k], 0);
		once_value[k] = 0;
	}
	weft_once_init(&held_once);
	atomic_store(&held_registered, 0);
	atomic_store(&held_fn_in, 0);
	return once_main(a);
}

static void test_once_callers_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/step_once_callers", once_sim_main, NULL, NULL, WT_SIM_SEEDS);
}

static void test_one_registration_at_a_time_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/step_one_registration_at_a_time", busy_main, NULL, NULL, WT_SIM_SEEDS);
}

static void test_deadlines_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/step_deadlines", deadline_main, NULL, NULL, WT_SIM_SEEDS);
}

static void test_cancel_while_registered_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/step_cancel_while_registered", cancel_main, NULL, NULL, WT_SIM_SEEDS);
}

static void test_cond_repeat_when_the_task_took_the_mutex_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/step_cond_repeat_when_the_task_took_the_mutex", ct_main, NULL, NULL, WT_SIM_SEEDS);
}

static void test_a_repeat_on_another_object_is_refused_sim(void **state)
{
	(void)state;
	wt_sim_sweep("sync/step_a_repeat_on_another_object_is_refused", ob_main, NULL, NULL, WT_SIM_SEEDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutex_contention),
		cmocka_unit_test(test_rwlock_contention),
		cmocka_unit_test(test_cond_queue),
		cmocka_unit_test(test_sem_contention),
		cmocka_unit_test(test_wait_group_rounds),
		cmocka_unit_test(test_barrier_generations),
		cmocka_unit_test(test_once_callers),
		cmocka_unit_test(test_one_registration_at_a_time),
		cmocka_unit_test(test_deadlines),
		cmocka_unit_test(test_cancel_while_registered),
		cmocka_unit_test(test_lifetime),
		cmocka_unit_test(test_cond_repeat_when_the_task_took_the_mutex),
		cmocka_unit_test(test_a_repeat_on_another_object_is_refused),
		cmocka_unit_test(test_mutex_contention_sim),
		cmocka_unit_test(test_rwlock_contention_sim),
		cmocka_unit_test(test_cond_queue_sim),
		cmocka_unit_test(test_sem_contention_sim),
		cmocka_unit_test(test_wait_group_rounds_sim),
		cmocka_unit_test(test_barrier_generations_sim),
		cmocka_unit_test(test_once_callers_sim),
		cmocka_unit_test(test_one_registration_at_a_time_sim),
		cmocka_unit_test(test_deadlines_sim),
		cmocka_unit_test(test_cancel_while_registered_sim),
		cmocka_unit_test(test_cond_repeat_when_the_task_took_the_mutex_sim),
		cmocka_unit_test(test_a_repeat_on_another_object_is_refused_sim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
