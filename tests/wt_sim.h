/* wt_sim.h - run a test body under many seeds of the simulation mode
 * (docs/scheduler.md, "Simulation").
 *
 * wt_sim_sweep(test, fn, check, arg, dflt) runs fn(arg) as the main task of
 * a fresh sim runtime per seed, joins it from the test thread (the sim's
 * owner, whose join drives the simulation), stops the runtime, then calls
 * check(arg) (may be NULL), which checks with TCHECK what must hold after a
 * run (conservation, counts). fn and check see the seed's number in
 * wt_sim_seed_index if they need to reset state.
 *
 * Seeds: WEFT_SIM_SEED (that one alone; the library honours it for every
 * sim runtime), else WEFT_SIM_SEEDS=N seeds, else dflt. Seed i of a test
 * is splitmix64(fnv1a(test) + i): the same from run to run, different
 * from test to test. The seed also picks the run cost (wt_sim_run_ns).
 * Every 100th seed runs twice and the two schedule hashes must be equal
 * (determinism checks itself as it goes).
 *
 * Failures: everything checked per seed is a TCHECK, or the start, join
 * and stop results. On the first seed with a failure the harness prints
 * the seed and how to replay it, then fails the test (cmocka's fail_msg,
 * on the test thread). A crash (SIGABRT, SIGSEGV, SIGBUS) prints the seed
 * before the process dies; so does a seed that runs past WT_SIM_WATCHDOG
 * seconds of real time (default 120: a task that loops without a weft call
 * never gives the one thread back). */
#ifndef WT_SIM_H
#define WT_SIM_H

#include "weft_test.h"

#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Seeds per stress twin in make check: release / ASan / TSan (TSan makes a
 * fiber per coroutine, at a real cost each; one thread has no races for it
 * to find). A seed costs about a millisecond of start and stop in release
 * before the body runs, and there are many twins: make check-sim is the
 * long sweep (1000 seeds each, WEFT_SIM_SEEDS). */
#define WT_SIM_SEEDS WT_SIZE3(100, 20, 2)

/* WT_SIM_ONLY=1 runs only a program's _sim twins (make check-sim, which
 * gives them many seeds; the other tests have run in make check); another
 * value is a cmocka test-name pattern (`*` and `?`): WT_SIM_ONLY=test_fifo_sim
 * runs that twin alone. */
__attribute__((constructor)) static void wt_sim_only(void)
{
	const char *o = getenv("WT_SIM_ONLY");
	if (o && *o && strcmp(o, "0") != 0)
		cmocka_set_test_filter(strcmp(o, "1") == 0 ? "*_sim" : o);
}

static const char *wt_sim_test;
static uint64_t wt_sim_seed;
static int wt_sim_seed_index;

static inline uint64_t wt_sim_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline uint64_t wt_sim_fnv(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

/* Async-signal-safe: the seed in hex, with the test's name. */
static inline void wt_sim_say_seed(const char *why)
{
	char buf[256];
	size_t n = 0;
	const char *parts[] = {"weft-sim: ", wt_sim_test ? wt_sim_test : "?", ": ", why, " at seed 0x"};
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
		for (const char *p = parts[i]; *p && n < sizeof buf - 80; p++)
			buf[n++] = *p;
	char hex[17];
	for (int i = 0; i < 16; i++)
		hex[i] = "0123456789abcdef"[(wt_sim_seed >> (60 - 4 * i)) & 15];
	hex[16] = 0;
	for (const char *p = hex; *p; p++)
		buf[n++] = *p;
	const char *tail = "; replay: WEFT_SIM_SEED=0x";
	for (const char *p = tail; *p; p++)
		buf[n++] = *p;
	for (const char *p = hex; *p; p++)
		buf[n++] = *p;
	buf[n++] = '\n';
	(void)!write(STDERR_FILENO, buf, n);
}

static struct sigaction wt_sim_old[4];
static const int wt_sim_sigs[4] = {SIGABRT, SIGSEGV, SIGBUS, SIGALRM};

/* Say the seed, then let what was there before handle the signal (the
 * sanitizers' reports among them): a fault re-faults on return. */
static void wt_sim_on_signal(int sig)
{
	wt_sim_say_seed(sig == SIGALRM ? "no progress (watchdog)" : "crashed");
	for (int i = 0; i < 4; i++)
		if (wt_sim_sigs[i] == sig)
			sigaction(sig, &wt_sim_old[i], NULL);
	if (sig == SIGALRM)
		abort();
	if (sig == SIGABRT)
		raise(sig);
}

static inline void wt_sim_handlers(bool on)
{
	for (int i = 0; i < 4; i++) {
		if (on) {
			struct sigaction sa = {0};
			sa.sa_handler = wt_sim_on_signal;
			sa.sa_flags = SA_ONSTACK;
			sigemptyset(&sa.sa_mask);
			sigaction(wt_sim_sigs[i], &sa, &wt_sim_old[i]);
		} else {
			sigaction(wt_sim_sigs[i], &wt_sim_old[i], NULL);
		}
	}
}

/* The run cost of a seed's sim (cfg.sim_run_ns): half the seeds the
 * default (runs cost up to 2 us), a quarter up to 50 us, a quarter up to
 * 1 ms, so that deadlines also pass in the middle of busy phases, between
 * any two runs. Drawn from the seed the sim will use - WEFT_SIM_SEED's
 * when it is set, as the library reads it - so a replay repeats it. */
static inline weft_time_t wt_sim_run_ns(uint64_t seed)
{
	const char *fixed = getenv("WEFT_SIM_SEED");
	if (fixed && *fixed) {
		char *end;
		uint64_t v = strtoull(fixed, &end, 0);
		if (!*end)
			seed = v;
	}
	static const weft_time_t cost[4] = {0, 0, 50 * 1000, 1000 * 1000};
	return cost[wt_sim_mix(seed) >> 62];
}

/* One run of fn under seed; the schedule hash in *hash. Returns the
 * failures seen (TCHECKs and bad results). */
static inline int wt_sim_once(void *(*fn)(void *), void (*check)(void *), void *arg, uint64_t seed, uint64_t *hash)
{
	atomic_store(&tcheck_failures, 0);
	int bad = 0;
	weft_runtime_t *rt;
	weft_config_t cfg = {.size = sizeof cfg, .sim = true, .sim_seed = seed, .sim_run_ns = wt_sim_run_ns(seed)};
	int e = weft_runtime_start(&rt, &cfg);
	if (e) {
		fprintf(stderr, "weft-sim: runtime start: %s\n", weft_strerror(e));
		return 1;
	}
	weft_sim_info_t info = {.size = sizeof info};
	weft_sim_info(rt, &info);
	wt_sim_seed = info.seed; /* WEFT_SIM_SEED may have overridden it */
	weft_task_t t;
	e = weft_spawn(&t, fn, arg, &(weft_spawn_opts_t){.name = "test-main", .runtime = rt});
	if (e == 0)
		e = weft_join(t, NULL);
	if (e) {
		fprintf(stderr, "weft-sim: the main task: %s\n", weft_strerror(e));
		bad++;
	}
	weft_sim_info(rt, &info);
	*hash = info.hash;
	if ((e = weft_runtime_stop(rt)) != 0) {
		fprintf(stderr, "weft-sim: runtime stop: %s\n", weft_strerror(e));
		bad++;
	}
	if (check)
		check(arg);
	return bad + atomic_load(&tcheck_failures);
}

static inline void wt_sim_sweep(const char *test, void *(*fn)(void *), void (*check)(void *), void *arg, int dflt)
{
	const char *fixed = getenv("WEFT_SIM_SEED");
	const char *ns = getenv("WEFT_SIM_SEEDS");
	int n = fixed && *fixed ? 1 : ns && *ns ? atoi(ns) : dflt;
	const char *wd = getenv("WT_SIM_WATCHDOG");
	unsigned watchdog = wd && *wd ? (unsigned)atoi(wd) : 120;
	wt_sim_test = test;
	wt_sim_handlers(true);
	uint64_t base = wt_sim_fnv(test);
	int failed = -1;
	for (int i = 0; i < n && failed < 0; i++) {
		wt_sim_seed = wt_sim_mix(base + (uint64_t)i);
		wt_sim_seed_index = i;
		alarm(watchdog);
		uint64_t h1 = 0, h2 = 0;
		int bad = wt_sim_once(fn, check, arg, wt_sim_seed, &h1);
		if (!bad && i % 100 == 0) {
			bad = wt_sim_once(fn, check, arg, wt_sim_seed, &h2);
			if (!bad && h1 != h2) {
				fprintf(stderr,
					"weft-sim: %s: seed %#llx ran twice with different schedules (%#llx, %#llx)\n",
					test, (unsigned long long)wt_sim_seed, (unsigned long long)h1,
					(unsigned long long)h2);
				bad = 1;
			}
		}
		alarm(0);
		if (bad)
			failed = i;
	}
	wt_sim_handlers(false);
	if (failed >= 0) {
		wt_sim_say_seed("failed");
		fail_msg("%s failed at seed %#llx (%d of %d)", test, (unsigned long long)wt_sim_seed, failed + 1, n);
	}
	wt_sim_test = NULL;
}

/* Run this test program again (/proc/self/exe) with environment envp
 * (its main() looks at it and plays a child's part), capturing what it
 * writes to descriptor `which` (STDOUT_FILENO or STDERR_FILENO) into out
 * (len bytes, NUL-terminated). Its wait status, or -1 if it could not be
 * started. posix_spawn, not fork: a fork of a threaded process cannot
 * start threads under TSan; and a fresh process is what a replay is. */
static inline int wt_sim_rerun(char *const envp[], int which, char *out, size_t len)
{
	int pfd[2];
	if (pipe(pfd) < 0)
		return -1;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], which);
	posix_spawn_file_actions_addclose(&fa, pfd[0]);
	char *argv[] = {"weft-test-child", NULL};
	pid_t pid;
	int e = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	size_t n = 0;
	ssize_t k;
	while (e == 0 && n < len - 1 && (k = read(pfd[0], out + n, len - 1 - n)) > 0)
		n += (size_t)k;
	out[n] = 0;
	close(pfd[0]);
	int st = -1;
	if (e == 0 && waitpid(pid, &st, 0) != pid)
		st = -1;
	return st;
}

#endif
