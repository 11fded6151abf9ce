/* main.c - the weft command-line tool.
 *
 *   weft run PROG.wf [ARGS...]   run a weft program (LANGUAGE.md)
 *   weft check PROG.wf           compile only: report errors (exit 2)
 *   weft dis PROG.wf             print the bytecode with source lines
 *   weft demo [SECONDS]          the runtime demo: concurrent work in C
 *                                with live statistics
 *   weft version
 */
#include <weft.h>
#include <weft/vm.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: weft run PROG.wf [ARGS...]   run a weft program\n"
		   "       weft check PROG.wf           compile only, report errors\n"
		   "       weft dis PROG.wf             print the bytecode\n"
		   "       weft demo [SECONDS]          run the runtime demo with live statistics\n"
		   "       weft version\n");
}

/* ------------------------------------------------------------ demo */

struct range {
	long lo, hi;
	long primes;
};

static bool is_prime(long n)
{
	if (n < 2)
		return false;
	for (long d = 2; d * d <= n; d++)
		if (n % d == 0)
			return false;
	return true;
}

/* A coroutine: count primes in [lo, hi), yielding every 2000 numbers so the
 * sleepers and the ticker get their turns. */
static void *count_primes(void *a)
{
	struct range *r = a;
	for (long n = r->lo; n < r->hi; n++) {
		r->primes += is_prime(n);
		if (n % 2000 == 0 && weft_yield() == -ECANCELED)
			return (void *)(intptr_t)-ECANCELED;
	}
	return NULL;
}

static _Atomic long naps;
static weft_time_t demo_t0;

/* A stackless task: sleep a few times, holding no stack while parked. */
struct napper {
	int left;
	weft_time_t ms;
};

static weft_step_t nap_step(void *s, void **res)
{
	struct napper *n = s;
	(void)res;
	if (n->left-- == 0)
		return WEFT_STEP_DONE;
	atomic_fetch_add(&naps, 1);
	weft_waker_t w = weft_park_prepare();
	weft_park_deadline(w, weft_deadline_in(n->ms * WEFT_MSEC));
	return WEFT_STEP_PARKED;
}

static void ticker(void *a)
{
	weft_runtime_t *rt = a;
	weft_worker_stats_t pw[16];
	weft_stats_t s = {.size = sizeof s, .per_worker = pw, .per_worker_len = 16};
	weft_stats(rt, &s);
	printf("[%6.2fs] live=%-6llu finished=%-7llu switches=%-9llu timers=%-5llu naps=%-6ld",
	       (double)(weft_now() - demo_t0) / 1e9, (unsigned long long)s.live, (unsigned long long)s.finished,
	       (unsigned long long)s.switches, (unsigned long long)s.timers_active, atomic_load(&naps));
	for (int i = 0; i < s.workers && i < s.per_worker_len; i++)
		printf(" | w%d run=%llu steals=%llu q=%u", i, (unsigned long long)s.per_worker[i].tasks_run,
		       (unsigned long long)s.per_worker[i].steals, s.per_worker[i].queue_len);
	printf("\n");
	fflush(stdout);
}

static double demo_seconds = 3;

static void *demo_main(void *a)
{
	(void)a;
	weft_runtime_t *rt = weft_runtime_current();
	demo_t0 = weft_now();
	printf("weft demo: %d workers; 64 prime-counting coroutines in a task group, 20000 stackless sleepers\n",
	       weft_runtime_workers(rt));
	weft_timer_t *tick = NULL; /* statistics every 250 ms (none if the timer cannot be had) */
	if (weft_timer_create(&tick, ticker, rt) == 0)
		weft_timer_start(tick, weft_deadline_in(250 * WEFT_MSEC), 250 * WEFT_MSEC);

	enum { NSLEEP = 20000 };
	struct napper *nappers = calloc(NSLEEP, sizeof *nappers);
	weft_group_t *sleepers;
	weft_group_create(&sleepers, false);
	long rounds = (long)(demo_seconds * 1000 / 200);
	for (int i = 0; i < NSLEEP; i++) {
		nappers[i] = (struct napper){.left = (int)rounds, .ms = 150 + i % 100};
		weft_spawn_step(NULL, nap_step, &nappers[i], &(weft_spawn_opts_t){.group = sleepers, .name = "napper"});
	}

	enum { NRANGE = 64 };
	struct range ranges[NRANGE];
	long limit = (long)(demo_seconds * 1500000);
	weft_group_t *g;
	weft_group_create(&g, true);
	for (int i = 0; i < NRANGE; i++) {
		ranges[i] = (struct range){.lo = limit * i / NRANGE, .hi = limit * (i + 1) / NRANGE};
		weft_spawn(NULL, count_primes, &ranges[i], &(weft_spawn_opts_t){.group = g, .name = "primes"});
	}
	weft_time_t t0 = weft_now();
	int e = weft_group_wait(g);
	long total = 0;
	for (int i = 0; i < NRANGE; i++)
		total += ranges[i].primes;
	printf("primes below %ld: %ld (%.2fs, group result %d)\n", limit, total, (double)(weft_now() - t0) / 1e9, e);
	weft_group_wait(sleepers);
	printf("sleepers done: %ld naps\n", atomic_load(&naps));
	if (tick)
		weft_timer_destroy(tick);
	weft_group_destroy(g);
	weft_group_destroy(sleepers);
	free(nappers);
	weft_stats_print(rt, STDOUT_FILENO);
	void *loadavg = NULL; /* a file read on the blocking pool */
	if (weft_file_read_all("/proc/loadavg", &loadavg, 4096) > 0)
		printf("load average (read on the blocking pool): %s", (char *)loadavg);
	free(loadavg);
	weft_blocking_stats_t bs;
	weft_blocking_stats(rt, &bs);
	printf("blocking pool: threads=%u idle=%u max=%u queued=%llu running=%llu completed=%llu\n", bs.threads,
	       bs.idle, bs.max, (unsigned long long)bs.queued, (unsigned long long)bs.running,
	       (unsigned long long)bs.completed);
	return NULL;
}

/* ------------------------------------------------------------ the language */

/* weft run | check | dis PROG.wf [ARGS...]: exit 2 on compile errors, else
 * the program's status (run) or 0. */
static int language(int argc, char **argv)
{
	if (argc < 3) {
		usage(stderr);
		return 2;
	}
	/* print to a closed pipe is the program's error ((:error, :io, :epipe)),
	 * not a signal that kills weft */
	signal(SIGPIPE, SIG_IGN);
	weft_vm_t *vm;
	int e = weft_vm_create(&vm, NULL);
	if (e) {
		fprintf(stderr, "weft: %s\n", weft_strerror(e));
		return 1;
	}
	int status = 0;
	e = weft_vm_load_file(vm, argv[2]);
	if (e) {
		weft_vm_print_errors(vm, stderr);
		status = 2;
	} else if (strcmp(argv[1], "dis") == 0) {
		weft_vm_disassemble(vm, stdout);
	} else if (strcmp(argv[1], "run") == 0) {
		fflush(stdout);
		status = weft_vm_run_main(vm, argc - 3, argv + 3);
		if (status < 0) {
			fprintf(stderr, "weft: %s\n", weft_strerror(status));
			status = 1;
		}
	}
	weft_vm_destroy(vm);
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "version") == 0) {
		printf("weft %s\n", weft_version_string()); /* the library's, not the header's */
		return 0;
	}
	if (strcmp(argv[1], "demo") == 0) {
		if (argc > 2) {
			demo_seconds = atof(argv[2]);
			if (demo_seconds <= 0 || demo_seconds > 3600) {
				fprintf(stderr, "weft demo: SECONDS must be in (0, 3600]\n");
				return 2;
			}
		}
		int r = weft_main(demo_main, NULL, NULL);
		if (r < 0) {
			fprintf(stderr, "weft: %s\n", weft_strerror(r));
			return 1;
		}
		return 0;
	}
	if (strcmp(argv[1], "run") == 0 || strcmp(argv[1], "check") == 0 || strcmp(argv[1], "dis") == 0)
		return language(argc, argv);
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "weft: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
