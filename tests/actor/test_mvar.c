/* test_mvar.c - MVars: mutual exclusion and exact counts from every kind
 * of caller (processes that are coroutines or stackless, plain tasks,
 * plain threads), FIFO order of waiters (each queued before the next
 * starts, seen through weft_mvar_waiting), a reader behind a queued writer,
 * release of a killed holder's lock, ownership errors, names. */
#include "wt_actor.h"

#include <pthread.h>

#define T WT_SIZE(16, 6)
#define I WT_SIZE(2000, 300)

struct count {
	weft_mvar_t *mv;
	weft_op_t op;
	int i;
	bool locked;
};

static void bump(weft_mvar_t *mv)
{
	void *v;
	size_t len;
	TCHECK_EQ(weft_mvar_get(mv, &v, &len), 0);
	TCHECK_EQ(len, sizeof(int64_t));
	(*(int64_t *)v)++;
}

static void *coro_counter(void *a)
{
	struct count *c = a;
	for (int i = 0; i < I; i++) {
		TCHECK_EQ(weft_mvar_lock(c->mv), 0);
		bump(c->mv);
		if (i % 64 == 0)
			weft_yield(); /* hold it across a switch now and then */
		TCHECK_EQ(weft_mvar_unlock(c->mv), 0);
	}
	return NULL;
}

static weft_step_t step_counter(void *a, void **res)
{
	struct count *c = a;
	while (c->i < I) {
		int e = weft_mvar_lock_step(c->mv, WEFT_NEVER, &c->op);
		if (e == -EINPROGRESS)
			return WEFT_STEP_PARKED;
		TCHECK_EQ(e, 0);
		bump(c->mv);
		TCHECK_EQ(weft_mvar_unlock(c->mv), 0);
		c->i++;
		if (c->i % 32 == 0)
			return WEFT_STEP_YIELD;
	}
	*res = NULL;
	return WEFT_STEP_DONE;
}

static void *thread_counter(void *a)
{
	coro_counter(a);
	return NULL;
}

static void *counts_main(void *a)
{
	(void)a;
	int64_t zero = 0;
	weft_mvar_t *mv;
	TCHECK_EQ(weft_mvar_create(&mv, "hits", &zero, sizeof zero), 0);
	TCHECK(weft_mvar_find("hits") == mv);
	struct count c[T];
	weft_pid_t pids[T];
	weft_task_t tasks[2];
	pthread_t th;
	struct count tc = {mv, WEFT_OP_INIT, 0, false};
	pthread_create(&th, NULL, thread_counter, &tc);
	struct count kc[2] = {{mv, WEFT_OP_INIT, 0, false}, {mv, WEFT_OP_INIT, 0, false}};
	TCHECK_EQ(weft_spawn(&tasks[0], coro_counter, &kc[0], NULL), 0); /* tasks, not processes */
	TCHECK_EQ(weft_spawn_step(&tasks[1], step_counter, &kc[1], NULL), 0);
	for (int i = 0; i < T; i++) {
		c[i] = (struct count){mv, WEFT_OP_INIT, 0, false};
		TCHECK_EQ(i % 2 ? weft_proc_spawn_step(&pids[i], step_counter, &c[i], NULL)
				: weft_proc_spawn(&pids[i], coro_counter, &c[i], NULL),
			  0);
	}
	for (int i = 0; i < T; i++) {
		int e = weft_proc_wait(pids[i], wt_hang_deadline());
		TCHECK(e == 0 || e == -ESRCH);
	}
	for (int i = 0; i < 2; i++)
		TCHECK_EQ(weft_join(tasks[i], NULL), 0);
	pthread_join(th, NULL);
	int64_t v = -1;
	TCHECK_EQ(weft_mvar_read(mv, &v, sizeof v), sizeof v);
	TCHECK_EQ(v, (int64_t)(T + 3) * I);
	TCHECK_EQ(weft_mvar_destroy(mv), 0);
	TCHECK(weft_mvar_find("hits") == NULL);
	return NULL;
}

static void test_counts(void **state)
{
	(void)state;
	wt_run(counts_main, NULL, 2);
}

/* ------------------------------------------------------------ FIFO */

#define NW 12

struct fifo {
	weft_mvar_t *mv;
	_Atomic int log[NW + 1];
	_Atomic int nlog;
};

struct fifo_arg {
	struct fifo *f;
	int id;
	weft_op_t op;
};

static void fifo_log(struct fifo *f, int id)
{
	f->log[atomic_fetch_add(&f->nlog, 1)] = id;
}

static void *fifo_coro(void *a)
{
	struct fifo_arg *fa = a;
	TCHECK_EQ(weft_mvar_lock(fa->f->mv), 0);
	fifo_log(fa->f, fa->id);
	TCHECK_EQ(weft_mvar_unlock(fa->f->mv), 0);
	return NULL;
}

static weft_step_t fifo_step(void *a, void **res)
{
	struct fifo_arg *fa = a;
	int e = weft_mvar_lock_step(fa->f->mv, WEFT_NEVER, &fa->op);
	if (e == -EINPROGRESS)
		return WEFT_STEP_PARKED;
	TCHECK_EQ(e, 0);
	fifo_log(fa->f, fa->id);
	TCHECK_EQ(weft_mvar_unlock(fa->f->mv), 0);
	*res = NULL;
	return WEFT_STEP_DONE;
}

static void *fifo_thread(void *a)
{
	return fifo_coro(a);
}

static void *fifo_main(void *a)
{
	(void)a;
	struct fifo f = {0};
	TCHECK_EQ(weft_mvar_create(&f.mv, NULL, NULL, 0), 0);
	TCHECK_EQ(weft_mvar_lock(f.mv), 0);
	struct fifo_arg fa[NW];
	pthread_t th[NW];
	bool is_thread[NW] = {false};
	weft_pid_t pids[NW];
	for (int i = 0; i < NW; i++) {
		fa[i] = (struct fifo_arg){&f, i, WEFT_OP_INIT};
		switch (i % 3) {
		case 0:
			TCHECK_EQ(weft_proc_spawn(&pids[i], fifo_coro, &fa[i], NULL), 0);
			break;
		case 1:
			TCHECK_EQ(weft_proc_spawn_step(&pids[i], fifo_step, &fa[i], NULL), 0);
			break;
		default:
			pids[i] = 0;
			is_thread[i] = true;
			pthread_create(&th[i], NULL, fifo_thread, &fa[i]);
		}
		WT_WAIT_UNTIL(weft_mvar_waiting(f.mv) == i + 1); /* queued before the next starts */
	}
	TCHECK_EQ(weft_mvar_try_lock(f.mv), -EDEADLK);
	TCHECK_EQ(weft_mvar_lock(f.mv), -EDEADLK);
	TCHECK_EQ(weft_mvar_unlock(f.mv), 0);
	for (int i = 0; i < NW; i++) {
		if (is_thread[i])
			pthread_join(th[i], NULL);
		else
			(void)weft_proc_wait(pids[i], wt_hang_deadline());
	}
	TCHECK_EQ(atomic_load(&f.nlog), NW);
	for (int i = 0; i < NW; i++)
		TCHECK_EQ(f.log[i], i); /* served in arrival order */
	TCHECK_EQ(weft_mvar_destroy(f.mv), 0);
	return NULL;
}

static void test_fifo(void **state)
{
	(void)state;
	wt_run(fifo_main, NULL, 2);
}

/* A reader queued behind a writer reads what that writer wrote. */
struct rw {
	weft_mvar_t *mv;
	int64_t seen;
};

static void *writer_sets_2(void *a)
{
	struct rw *r = a;
	TCHECK_EQ(weft_mvar_write(r->mv, &(int64_t){2}, sizeof(int64_t)), 0);
	return NULL;
}

static void *reader(void *a)
{
	struct rw *r = a;
	TCHECK_EQ(weft_mvar_read(r->mv, &r->seen, sizeof r->seen), sizeof(int64_t));
	return NULL;
}

static void *rw_main(void *a)
{
	(void)a;
	struct rw r = {NULL, 0};
	TCHECK_EQ(weft_mvar_create(&r.mv, NULL, &(int64_t){1}, sizeof(int64_t)), 0);
	TCHECK_EQ(weft_mvar_lock(r.mv), 0);
	int64_t own = 0;
	TCHECK_EQ(weft_mvar_read(r.mv, &own, sizeof own), sizeof own); /* the holder reads without waiting */
	TCHECK_EQ(own, 1);
	weft_task_t w, rd;
	TCHECK_EQ(weft_spawn(&w, writer_sets_2, &r, NULL), 0);
	WT_WAIT_UNTIL(weft_mvar_waiting(r.mv) == 1);
	TCHECK_EQ(weft_spawn(&rd, reader, &r, NULL), 0);
	WT_WAIT_UNTIL(weft_mvar_waiting(r.mv) == 2);
	TCHECK_EQ(weft_mvar_unlock(r.mv), 0);
	TCHECK_EQ(weft_join(w, NULL), 0);
	TCHECK_EQ(weft_join(rd, NULL), 0);
	TCHECK_EQ(r.seen, 2);
	/* A short buffer: the copy is cut, the length is the value's. */
	char small[3];
	TCHECK_EQ(weft_mvar_read(r.mv, small, sizeof small), sizeof(int64_t));
	TCHECK_EQ(weft_mvar_destroy(r.mv), 0);
	return NULL;
}

static void test_reader_behind_writer(void **state)
{
	(void)state;
	wt_run(rw_main, NULL, 2);
}

/* ------------------------------------------------------------ death, errors */

static void *holds_and_waits(void *a)
{
	weft_mvar_t *mv = a;
	TCHECK_EQ(weft_mvar_lock(mv), 0);
	TCHECK_EQ(weft_send(weft_whereis("main"), "held", 4), 0);
	weft_msg_t *m;
	TCHECK_EQ(weft_receive(&m, NULL), -ECANCELED); /* killed holding it */
	return NULL;
}

static void *death_main(void *a)
{
	(void)a;
	TCHECK_EQ(weft_register("main", weft_proc_self()), 0);
	weft_mvar_t *mv;
	TCHECK_EQ(weft_mvar_create(&mv, NULL, &(int64_t){5}, sizeof(int64_t)), 0);
	weft_pid_t h;
	TCHECK_EQ(weft_proc_spawn(&h, holds_and_waits, mv, NULL), 0);
	weft_msg_t *m;
	TCHECK_EQ(weft_receive_until(&m, NULL, wt_hang_deadline()), 0);
	weft_msg_destroy(m);
	/* Not ours: no unlock, get or set. */
	TCHECK_EQ(weft_mvar_unlock(mv), -EPERM);
	void *v;
	size_t len;
	TCHECK_EQ(weft_mvar_get(mv, &v, &len), -EPERM);
	TCHECK_EQ(weft_mvar_set(mv, "x", 1), -EPERM);
	TCHECK_EQ(weft_mvar_try_lock(mv), -EAGAIN);
	TCHECK_EQ(weft_mvar_lock_until(mv, weft_deadline_in(WEFT_MSEC)), -ETIMEDOUT);
	TCHECK_EQ(weft_mvar_destroy(mv), -EBUSY);
	TCHECK_EQ(weft_proc_signal(h, WEFT_EXIT_KILL), 0);
	TCHECK_EQ(weft_mvar_lock_until(mv, wt_hang_deadline()), 0); /* released by its death */
	TCHECK_EQ(weft_mvar_get(mv, &v, &len), 0);
	TCHECK_EQ(*(int64_t *)v, 5);
	TCHECK_EQ(weft_mvar_set(mv, "abc", 3), 0);
	TCHECK_EQ(weft_mvar_unlock(mv), 0);
	TCHECK_EQ(weft_mvar_unlock(mv), -EPERM);
	char buf[8];
	TCHECK_EQ(weft_mvar_read(mv, buf, sizeof buf), 3);
	TCHECK(memcmp(buf, "abc", 3) == 0);
	TCHECK_EQ(weft_mvar_destroy(mv), 0);
	return NULL;
}

static void test_killed_holder(void **state)
{
	(void)state;
	wt_proc_run(death_main, NULL, 2);
}

static void test_bad_input(void **state)
{
	(void)state;
	weft_mvar_t *mv;
	assert_int_equal(weft_mvar_create(NULL, NULL, NULL, 0), -EINVAL);
	assert_int_equal(weft_mvar_create(&mv, NULL, NULL, 3), -EINVAL);
	assert_int_equal(weft_mvar_create(&mv, "", NULL, 0), -EINVAL);
	assert_int_equal(weft_mvar_create(&mv, "x", NULL, WEFT_MSG_MAX + 1), -EINVAL);
	assert_int_equal(weft_mvar_create(&mv, "x", "v", 1), 0);
	weft_mvar_t *mv2;
	assert_int_equal(weft_mvar_create(&mv2, "x", NULL, 0), -EEXIST);
	assert_int_equal(weft_mvar_destroy(NULL), -EINVAL);
	assert_int_equal(weft_mvar_read(NULL, NULL, 0), -EINVAL);
	assert_int_equal(weft_mvar_read(mv, NULL, 1), -EINVAL);
	assert_int_equal(weft_mvar_read(mv, NULL, 0), 1); /* the length only */
	assert_int_equal(weft_mvar_lock(NULL), -EINVAL);
	assert_int_equal(weft_mvar_try_lock(NULL), -EINVAL);
	assert_int_equal(weft_mvar_unlock(NULL), -EINVAL);
	assert_int_equal(weft_mvar_unlock(mv), -EPERM);
	assert_int_equal(weft_mvar_get(mv, NULL, NULL), -EINVAL);
	assert_int_equal(weft_mvar_set(NULL, "x", 1), -EINVAL);
	assert_int_equal(weft_mvar_set(mv, NULL, 1), -EINVAL);
	assert_int_equal(weft_mvar_write(mv, "yz", 2), 0); /* from a plain thread, no runtime */
	char b[2];
	assert_int_equal(weft_mvar_read(mv, b, 2), 2);
	assert_int_equal(weft_mvar_waiting(NULL), -EINVAL);
	assert_int_equal(weft_mvar_waiting(mv), 0);
	assert_null(weft_mvar_find(NULL));
	assert_null(weft_mvar_find("nope"));
	assert_ptr_equal(weft_mvar_find("x"), mv);
	assert_int_equal(weft_mvar_destroy(mv), 0);
}

/* ------------------------------------------------------------ sim */

static void *sim_death(void *a)
{
	struct wt_proc_call c = {death_main, a, {0}};
	return wt_proc_main(&c);
}

/* The counts under the simulation: no plain thread there (it would block
 * the one thread); processes and tasks of both kinds. */
static void *sim_counts_main(void *a)
{
	(void)a;
	int64_t zero = 0;
	weft_mvar_t *mv;
	TCHECK_EQ(weft_mvar_create(&mv, NULL, &zero, sizeof zero), 0);
	struct count c[T];
	weft_pid_t pids[T];
	for (int i = 0; i < T; i++) {
		c[i] = (struct count){mv, WEFT_OP_INIT, 0, false};
		TCHECK_EQ(i % 2 ? weft_proc_spawn_step(&pids[i], step_counter, &c[i], NULL)
				: weft_proc_spawn(&pids[i], coro_counter, &c[i], NULL),
			  0);
	}
	for (int i = 0; i < T; i++)
		(void)weft_proc_wait(pids[i], wt_hang_deadline());
	int64_t v = -1;
	TCHECK_EQ(weft_mvar_read(mv, &v, sizeof v), sizeof v);
	TCHECK_EQ(v, (int64_t)T * I);
	TCHECK_EQ(weft_mvar_destroy(mv), 0);
	return NULL;
}

static void test_counts_sim(void **state)
{
	(void)state;
	wt_sim_sweep("actor/mvar_counts", sim_counts_main, NULL, NULL, WT_SIZE3(30, 10, 2));
}

static void test_killed_holder_sim(void **state)
{
	(void)state;
	wt_sim_sweep("actor/mvar_killed_holder", sim_death, NULL, NULL, WT_SIM_SEEDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_fifo),
		cmocka_unit_test(test_reader_behind_writer),
		cmocka_unit_test(test_killed_holder),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_counts_sim),
		cmocka_unit_test(test_killed_holder_sim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
