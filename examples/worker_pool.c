/* worker_pool.c - a fixed pool of workers takes jobs from one channel and
 * sends results back on another; a select with a deadline collects them. */
#include <weft.h>

#include <stdio.h>

struct job {
	int id;
	long n;
};
struct result {
	int id;
	long collatz_steps;
};

struct pool {
	weft_chan_t *jobs, *results;
};

static void *worker(void *arg)
{
	struct pool *p = arg;
	struct job j;
	while (weft_chan_recv(p->jobs, &j) == 0) {
		long n = j.n, steps = 0;
		while (n != 1) {
			n = n % 2 ? 3 * n + 1 : n / 2;
			steps++;
		}
		struct result r = {j.id, steps};
		weft_chan_send(p->results, &r);
	}
	return NULL;
}

static void *main_task(void *arg)
{
	(void)arg;
	enum { WORKERS = 8, JOBS = 100 };
	struct pool p;
	weft_chan_create(&p.jobs, sizeof(struct job), 16);
	weft_chan_create(&p.results, sizeof(struct result), WEFT_CHAN_UNBOUNDED);
	weft_group_t *g;
	weft_group_create(&g, false);
	for (int i = 0; i < WORKERS; i++)
		weft_spawn(NULL, worker, &p, &(weft_spawn_opts_t){.group = g, .name = "worker"});
	for (int i = 0; i < JOBS; i++) {
		struct job j = {i, 1000000 + i};
		weft_chan_send(p.jobs, &j);
	}
	weft_chan_close(p.jobs); /* workers finish what is queued, then exit */
	long best = 0;
	int best_id = -1;
	for (int got = 0; got < JOBS;) {
		struct result r;
		weft_select_case_t c = {p.results, WEFT_SELECT_RECV, &r, 0};
		int k = weft_select(&c, 1, weft_deadline_in(WEFT_SEC));
		if (k == -ETIMEDOUT) {
			printf("no result for a second, giving up\n");
			break;
		}
		got++;
		if (r.collatz_steps > best) {
			best = r.collatz_steps;
			best_id = r.id;
		}
	}
	weft_group_wait(g);
	weft_group_destroy(g);
	printf("longest Collatz chain: job %d (%ld steps)\n", best_id, best);
	weft_chan_release(p.jobs);
	weft_chan_release(p.results);
	return NULL;
}

int main(void)
{
	return weft_main(main_task, NULL, NULL) < 0;
}
