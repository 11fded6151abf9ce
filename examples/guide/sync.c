/* sync.c - task-aware locks: a mutex and a condition variable for shared
 * state, a wait group to wait for the workers, a semaphore to let only a
 * few of them into a section at once. A task that waits on one of these
 * parks; its worker runs other tasks meanwhile. */
#include "check.h"

enum { WORKERS = 8, ROUNDS = 100, SLOTS = 3 };

static weft_mutex_t mu = WEFT_MUTEX_INIT;
static weft_cond_t opened = WEFT_COND_INIT;
static bool gate_open;	 /* under mu */
static long counter;	 /* under mu */
static int inside, most; /* under mu: tasks between acquire and release */
static weft_sem_t slots = WEFT_SEM_INIT(SLOTS);
static weft_wg_t running = WEFT_WG_INIT;

static void *worker(void *arg)
{
	(void)arg;
	CHECK(weft_mutex_lock(&mu));
	while (!gate_open) /* always re-check: a wake-up may be spurious */
		CHECK(weft_cond_wait(&opened, &mu));
	CHECK(weft_mutex_unlock(&mu));

	for (int i = 0; i < ROUNDS; i++) {
		CHECK(weft_mutex_lock(&mu));
		counter++;
		CHECK(weft_mutex_unlock(&mu));
	}

	CHECK(weft_sem_acquire(&slots)); /* at most SLOTS tasks get past here */
	CHECK(weft_mutex_lock(&mu));
	if (++inside > most)
		most = inside;
	CHECK(weft_mutex_unlock(&mu));
	CHECK(weft_sleep(WEFT_MSEC)); /* holding a permit across a wait is fine */
	CHECK(weft_mutex_lock(&mu));
	inside--;
	CHECK(weft_mutex_unlock(&mu));
	CHECK(weft_sem_release(&slots, 1));

	CHECK(weft_wg_done(&running));
	return NULL;
}

static void *main_task(void *arg)
{
	(void)arg;
	CHECK(weft_wg_add(&running, WORKERS)); /* before the workers start */
	for (int i = 0; i < WORKERS; i++)
		CHECK(weft_go(worker, NULL));

	CHECK(weft_mutex_lock(&mu));
	gate_open = true;
	CHECK(weft_mutex_unlock(&mu));
	CHECK(weft_cond_broadcast(&opened)); /* wakes every waiter */

	CHECK(weft_wg_wait(&running));
	CHECK(weft_mutex_lock(&mu));
	printf("counter: %ld\n", counter);
	printf("at most %d inside at once: %s\n", SLOTS, most <= SLOTS ? "yes" : "no");
	CHECK(weft_mutex_unlock(&mu));
	CHECK(weft_mutex_destroy(&mu)); /* -EBUSY if still held or waited on */
	CHECK(weft_cond_destroy(&opened));
	CHECK(weft_wg_destroy(&running));
	CHECK(weft_sem_destroy(&slots));
	return NULL;
}

int main(void)
{
	return (int)CHECK(weft_main(main_task, NULL, NULL));
}
