/* exec.c - one component, every executor: sum_parts takes a weft_exec_t
 * and never names a runtime, so the same code runs as coroutines of a weft
 * runtime, on a pool of plain threads, on libuv's pool and in the
 * deterministic simulation, and prints the same lines on each. */
#include "check.h"

#include <string.h>

enum { PARTS = 4, N = 1000 };

struct part {
	const int *from;
	int len;
};

static void *add_up(void *arg)
{
	const struct part *p = arg;
	long sum = 0;
	for (int i = 0; i < p->len; i++)
		sum += p->from[i];
	return (void *)(intptr_t)sum;
}

/* The component: split the work into tasks of ex, wait for each (in order,
 * so the answer does not depend on which finished first) and add up. */
static long sum_parts(weft_exec_t *ex, const int *v, int n)
{
	struct part parts[PARTS];
	weft_exec_task_t t[PARTS];
	for (int i = 0; i < PARTS; i++) {
		parts[i] = (struct part){v + i * (n / PARTS), n / PARTS};
		CHECK(weft_exec_spawn(ex, &t[i], add_up, &parts[i], NULL));
	}
	long total = 0;
	for (int i = 0; i < PARTS; i++) {
		void *r;
		CHECK(weft_exec_wait(ex, t[i], &r));
		total += (long)(intptr_t)r;
	}
	return total;
}

static void *blocked_on(void *arg)
{
	return (void *)(intptr_t)weft_sem_acquire(arg); /* 0 once released */
}

static void *never(void *arg)
{
	(void)arg;
	return (void *)"ran";
}

static void show(weft_exec_t *ex, const int *v)
{
	printf("%-8s sum %ld\n", weft_exec_name(ex), sum_parts(ex, v, N));

	/* A deadline on a wait: a task held on a semaphore is not done yet. */
	weft_sem_t sem = WEFT_SEM_INIT(0);
	weft_exec_task_t held;
	CHECK(weft_exec_spawn(ex, &held, blocked_on, &sem, NULL));
	EXPECT(weft_exec_wait_until(ex, held, NULL, weft_exec_now(ex)), -ETIMEDOUT);
	CHECK(weft_sem_release(&sem, 1));
	void *r;
	CHECK(weft_exec_wait(ex, held, &r));
	printf("%-8s held task: %s, then %ld\n", weft_exec_name(ex), weft_err_name(-ETIMEDOUT), (long)(intptr_t)r);

	/* A task due in an hour, cancelled before its time, never runs. */
	weft_exec_task_t later;
	CHECK(weft_exec_spawn_at(ex, &later, weft_exec_now(ex) + 3600 * WEFT_SEC, never, NULL, NULL));
	CHECK(weft_exec_cancel(ex, later));
	CHECK(weft_exec_wait(ex, later, &r));
	printf("%-8s cancelled before its time: %s\n", weft_exec_name(ex), weft_err_name((int)(intptr_t)r));
}

int main(void)
{
	static int v[N];
	for (int i = 0; i < N; i++)
		v[i] = i + 1;

	weft_runtime_t *rt;
	CHECK(weft_runtime_start(&rt, NULL));
	weft_exec_t *ex;
	CHECK(weft_exec_create_runtime(&ex, rt));
	show(ex, v);
	CHECK(weft_exec_destroy(ex));
	CHECK(weft_runtime_stop(rt));

	CHECK(weft_exec_create_threads(&ex, NULL));
	show(ex, v);
	CHECK(weft_exec_destroy(ex));

	/* libuv's thread pool, on a loop the executor runs on a thread of its
	 * own (a program that has a loop passes it in the options). */
	CHECK(weft_exec_create_uv(&ex, NULL));
	show(ex, v);
	CHECK(weft_exec_destroy(ex));

	/* The simulation: every task on this thread, in an order drawn from
	 * the seed, on a virtual clock (the hour costs nothing). */
	CHECK(weft_exec_create_sim(&ex, &(weft_exec_sim_opts_t){.size = sizeof(weft_exec_sim_opts_t), .seed = 42}));
	show(ex, v);
	CHECK(weft_exec_destroy(ex));
	return 0;
}
