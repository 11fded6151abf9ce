/* stats.c - statistics: counters of the runtime and of each worker, read
 * while it runs; the same as a table, and the task dump (to stderr here:
 * their numbers depend on timing). */
#include "check.h"

#include <unistd.h>

enum { TASKS = 100, WORKERS = 2, ROOM = 8 };

static void *nap(void *arg)
{
	CHECK(weft_sleep(WEFT_MSEC));
	return arg;
}

static void *main_task(void *arg)
{
	(void)arg;
	weft_task_t t[TASKS];
	for (int i = 0; i < TASKS; i++)
		CHECK(weft_spawn(&t[i], nap, NULL, NULL));

	weft_worker_stats_t per[ROOM]; /* room for extra workers the monitor may start */
	weft_stats_t st = {.size = sizeof st, .per_worker = per, .per_worker_len = ROOM};
	CHECK(weft_stats(NULL, &st)); /* NULL: the current runtime */
	printf("workers: %d\n", (int)CHECK(weft_runtime_workers(weft_runtime_current())));
	printf("spawned at least %d: %s\n", TASKS + 1, st.spawned >= TASKS + 1 ? "yes" : "no"); /* and main */
	CHECK(weft_task_dump(NULL, STDERR_FILENO));

	for (int i = 0; i < TASKS; i++)
		CHECK(weft_join(t[i], NULL));
	CHECK(weft_stats(NULL, &st));
	uint64_t runs = 0;
	for (int i = 0; i < st.workers && i < ROOM; i++)
		runs += per[i].tasks_run; /* a task that parked and resumed counts again */
	printf("finished at least %d: %s\n", TASKS, st.finished >= TASKS ? "yes" : "no");
	printf("task runs at least %d: %s\n", TASKS + 1, runs >= TASKS + 1 ? "yes" : "no");
	CHECK(weft_stats_print(NULL, STDERR_FILENO));
	return NULL;
}

int main(void)
{
	weft_config_t cfg = {.size = sizeof cfg, .workers = WORKERS};
	return (int)CHECK(weft_main(main_task, NULL, &cfg));
}
