/* extra_worker_unpublished.c - reproduction of a runtime race, kept out of
 * the suite (CMake builds tests/<module>/test_*.c only).
 *
 * src/sched/monitor.c, start_extra(): a new extra worker's thread is
 * started (weft__worker_start, which calls pthread_create) before the
 * monitor publishes it with atomic_store(&rt->nworkers, nw + 1). The new
 * worker steals and runs tasks at once, so for a while a worker that has
 * run tasks is not in rt->nworkers: weft_stats() does not list it, and
 * every loop over the workers (stealing, any_work before a worker parks,
 * the monitor's own stuck check) does not see its run queue.
 *
 * Here: one worker; a task blocks it in a raw read() after queueing the
 * task that will satisfy the read. The monitor starts an extra worker,
 * which runs that task; the read returns and the blocked task ends. Right
 * after joining it, weft_stats() can still report one worker although a
 * second one has run a task (workers == 1, released_on >= 1). Seen in 3
 * of 200 rounds under TSan on a loaded 2-CPU machine (0 of 200 in a
 * release build there); sched/test_runtime's
 * test_monitor_unsticks_a_blocked_worker, which asserted workers >= 2 right
 * after the join, failed 1 run in 3 under TSan. That test now waits for
 * the statistics to show the extra worker instead.
 *
 * Build and run from the repository root, after make check-tsan:
 *   cc -g -O1 -fsanitize=thread -Iinclude tests/repro/extra_worker_unpublished.c \
 *      build/tsan/libweft.a -luring -lpthread -o /tmp/extra_worker_unpublished
 *   setarch $(uname -m) -R /tmp/extra_worker_unpublished
 * (or with build/release/libweft.a and no -fsanitize). Exit status 1 and
 * a line per occurrence when the race is seen in 200 rounds. */
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>
#include <weft.h>

static int pipefd[2];
static _Atomic int released_on;

static void *releaser(void *a)
{
	(void)a;
	atomic_store(&released_on, weft_worker_index());
	if (write(pipefd[1], "x", 1) != 1)
		perror("write");
	return NULL;
}

static void *stuck(void *a)
{
	(void)a;
	weft_spawn(NULL, releaser, NULL, &(weft_spawn_opts_t){.detached = true});
	char c;
	if (read(pipefd[0], &c, 1) != 1) /* a raw blocking read: the worker is stuck */
		perror("read");
	return NULL;
}

int main(void)
{
	int seen = 0;
	for (int round = 0; round < 200; round++) {
		if (pipe(pipefd) != 0)
			return 2;
		atomic_store(&released_on, -1);
		weft_runtime_t *rt;
		if (weft_runtime_start(&rt, &(weft_config_t){.workers = 1}) != 0)
			return 2;
		weft_task_t t;
		weft_spawn(&t, stuck, NULL, &(weft_spawn_opts_t){.runtime = rt});
		weft_join(t, NULL);
		weft_stats_t st;
		weft_stats(rt, &st);
		if (st.workers < 2 && atomic_load(&released_on) >= 1) {
			printf("round %d: the releaser ran on worker %d, weft_stats lists %d worker(s)\n", round,
			       atomic_load(&released_on), st.workers);
			seen++;
		}
		weft_runtime_stop(rt);
		close(pipefd[0]);
		close(pipefd[1]);
	}
	printf("%d of 200 rounds saw a worker that had run a task missing from rt->nworkers\n", seen);
	return seen ? 1 : 0;
}
