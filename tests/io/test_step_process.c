/* test_step_process.c - weft_process_wait_step, weft_process_read_step and
 * weft_process_write_step through the step protocol of weft/sched.h: a
 * wait that registers on the child's pidfd and completes when the child
 * ends (and one that completes at once, the child reaped already); a past
 * deadline, a deadline and a cancellation while registered (the child
 * keeps running); second registrations (-EBUSY); the same without a pidfd
 * (the wait naps); a stackless cat round trip of a megabyte, the writer
 * and the reader each a stackless task; a write stopped by the child's
 * exit after some bytes (their count, then -EPIPE); coroutines and plain
 * threads, which block. Run on both backends; no zombies, no leaked
 * descriptors.
 *
 * No check depends on timing: the children end when the test lets them
 * (cat ends when its stdin is closed; sleep when it is killed), and the
 * test acts on a registered call only once the task has said it
 * registered. */
#include "wt_io.h"
#include "wt_step_task.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "blocking_check.h"

static const weft_process_opts_t piped = {.stdio = {WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, WEFT_STDIO_INHERIT}};

/* ------------------------------------------------------------ the calls */

enum pcall { PC_WAIT, PC_READ, PC_WRITE };

typedef struct pargs {
	enum pcall which;
	weft_process_t *p;
	weft_exit_status_t st;
	char *buf;
	size_t len;
} pargs;

static long process_call(wt_step_task *t, weft_op_t *op)
{
	pargs *a = t->ctx;
	switch (a->which) {
	case PC_WAIT:
		return weft_process_wait_step(a->p, &a->st, t->deadline, op);
	case PC_READ:
		return weft_process_read_step(a->p, WEFT_STDOUT, a->buf, a->len, t->deadline, op);
	case PC_WRITE:
		return weft_process_write_step(a->p, a->buf, a->len, t->deadline, op);
	default:
		return -EINVAL;
	}
}

static void *nop_job(void *a)
{
	return a;
}

/* While registered: every other _step call is refused, changing nothing
 * (another op; the same op in another call). */
static void second_registrations(wt_step_task *t)
{
	pargs *a = t->ctx;
	weft_op_t op2;
	memset(&op2, 0x5a, sizeof op2);
	weft_exit_status_t st = {7, 7};
	TCHECK_EQ(weft_process_wait_step(a->p, &st, WEFT_NEVER, &op2), -EBUSY);
	TCHECK(st.code == 7 && st.signal == 7);
	char b[4];
	bool piped_out = weft_process_fd(a->p, WEFT_STDOUT) >= 0;
	if (a->which != PC_READ && piped_out)
		TCHECK_EQ(weft_process_read_step(a->p, WEFT_STDOUT, b, sizeof b, WEFT_NEVER, t->op), -EBUSY);
	if (a->which != PC_WRITE && weft_process_fd(a->p, WEFT_STDIN) >= 0)
		TCHECK_EQ(weft_process_write_step(a->p, "x", 1, WEFT_NEVER, t->op), -EBUSY);
	if (a->which != PC_WAIT)
		TCHECK_EQ(weft_process_wait_step(a->p, &st, WEFT_NEVER, t->op), -EBUSY);
	if (piped_out)
		TCHECK_EQ(weft_process_read_step(a->p, WEFT_STDOUT, b, sizeof b, WEFT_NEVER, &op2), -EBUSY);
	TCHECK_EQ(weft_blocking_step(nop_job, NULL, NULL, WEFT_NEVER, t->op), -EBUSY);
}

static void pargs_init(pargs *a, enum pcall which, weft_process_t *p)
{
	memset(a, 0, sizeof *a);
	a->which = which;
	a->p = p;
}

/* ------------------------------------------------------------ waiting */

static const weft_time_t past[] = {INT64_MIN, -1, 0};
#define NPAST (sizeof past / sizeof past[0])

/* cat waits for its stdin: it ends when the test closes it. */
static void wait_cat(bool busy)
{
	weft_process_t *p;
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"cat", NULL}, &piped), 0);
	pargs a;
	pargs_init(&a, PC_WAIT, p);
	weft_op_t op;
	memset(&op, 0xa5, sizeof op);
	wt_step_task t;
	wt_step_init(&t, process_call, &a, &op);
	/* Running: a past deadline polls. */
	for (size_t i = 0; i < NPAST; i++) {
		t.deadline = past[i];
		TCHECK_EQ(wt_step_run(&t), -ETIMEDOUT);
		TCHECK_EQ(atomic_load(&t.parks), 0);
	}
	/* Registered: cancelled, the child runs on. */
	t.deadline = WEFT_NEVER;
	t.busy = busy ? second_registrations : NULL;
	t.yield = true;
	weft_task_t id = wt_step_start(&t);
	TCHECK_EQ(wt_step_event(&t), WT_EV_REG);
	TCHECK_EQ(weft_cancel(id), 0);
	wt_step_until_done(&t);
	wt_step_join(id);
	TCHECK_EQ(t.result, -ECANCELED);
	TCHECK_EQ(t.busy_checks, busy ? 1 : 0);
	TCHECK_EQ(weft_process_kill(p, 0), 0); /* still there */
	/* A deadline that passes while registered (a task that ran too late
	 * times out without registering: again, longer). */
	t.busy = NULL;
	t.yield = false;
	for (weft_time_t wait = 20 * WEFT_MSEC;; wait *= 2) {
		t.deadline = weft_deadline_in(wait);
		TCHECK_EQ(wt_step_run(&t), -ETIMEDOUT);
		TCHECK(weft_now() >= t.deadline);
		if (atomic_load(&t.parks) >= 1 || wait >= WT_HANG_NS)
			break;
	}
	TCHECK(atomic_load(&t.parks) >= 1);
	/* Registered until the child ends. */
	t.deadline = WEFT_NEVER;
	id = wt_step_start(&t);
	TCHECK_EQ(wt_step_event(&t), WT_EV_REG);
	TCHECK_EQ(weft_process_close(p, WEFT_STDIN), 0);
	wt_step_until_done(&t);
	wt_step_join(id);
	TCHECK_EQ(t.result, 0);
	TCHECK_EQ(a.st.code, 0);
	TCHECK_EQ(a.st.signal, 0);
	/* Reaped: every later wait completes at once with the same status,
	 * whatever the deadline. */
	a.st = (weft_exit_status_t){9, 9};
	t.deadline = INT64_MIN;
	TCHECK_EQ(wt_step_run(&t), 0);
	TCHECK_EQ(atomic_load(&t.parks), 0);
	TCHECK(a.st.code == 0 && a.st.signal == 0);
	wt_step_fini(&t);
	TCHECK_EQ(weft_process_destroy(p), 0);
}

static void *wait_main(void *a)
{
	(void)a;
	wait_cat(true);
	return NULL;
}

static void test_wait_step(void **state)
{
	(void)state;
	wt_run(wait_main, NULL, 2);
}

static int lowest_free_fd(void)
{
	int fd = 0;
	while (fcntl(fd, F_GETFD) >= 0)
		fd++;
	return fd;
}

/* Without a pidfd the wait naps. A process gets none when no descriptor
 * is left for it: spawned (everything inherited, so the spawn itself needs
 * none) with the descriptor limit at the lowest free number - above 3,
 * which the spawn names (it closes the child's descriptors from 3 on):
 * lower free numbers are taken first. */
static weft_process_t *spawn_without_pidfd(const char *const *argv)
{
	int held[4], nheld = 0;
	while (lowest_free_fd() <= 3 && nheld < 4)
		held[nheld++] = fcntl(0, F_DUPFD_CLOEXEC, 0);
	int lowest = lowest_free_fd();
	TCHECK(lowest > 3);
	struct rlimit old, low;
	TCHECK_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)lowest;
	weft_process_t *p = NULL;
	TCHECK_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
	int e = weft_process_spawn(&p, argv, NULL);
	TCHECK_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
	TCHECK_EQ(e, 0);
	TCHECK_EQ(fcntl(lowest, F_GETFD), -1); /* no pidfd was made */
	for (int i = 0; i < nheld; i++)
		close(held[i]);
	return p;
}

static void *nap_main(void *arg)
{
	(void)arg;
	weft_process_t *p = spawn_without_pidfd((const char *const[]){"sleep", "3600", NULL});
	pargs a;
	pargs_init(&a, PC_WAIT, p);
	weft_op_t op = WEFT_OP_INIT;
	wt_step_task t;
	wt_step_init(&t, process_call, &a, &op);
	for (size_t i = 0; i < NPAST; i++) {
		t.deadline = past[i];
		TCHECK_EQ(wt_step_run(&t), -ETIMEDOUT);
		TCHECK_EQ(atomic_load(&t.parks), 0);
	}
	/* A deadline: it naps (registers) until it passes. */
	t.deadline = weft_deadline_in(30 * WEFT_MSEC);
	TCHECK_EQ(wt_step_run(&t), -ETIMEDOUT);
	TCHECK(weft_now() >= t.deadline);
	/* Cancelled while napping. */
	t.deadline = WEFT_NEVER;
	t.busy = second_registrations;
	weft_task_t id = wt_step_start(&t);
	TCHECK_EQ(wt_step_event(&t), WT_EV_REG);
	TCHECK_EQ(weft_cancel(id), 0);
	wt_step_until_done(&t); /* (naps that ended meanwhile) */
	wt_step_join(id);
	TCHECK_EQ(t.result, -ECANCELED);
	TCHECK_EQ(t.busy_checks, 1);
	/* Napping until the child ends. */
	t.busy = NULL;
	id = wt_step_start(&t);
	TCHECK_EQ(wt_step_event(&t), WT_EV_REG);
	TCHECK_EQ(weft_process_kill(p, SIGTERM), 0);
	wt_step_until_done(&t);
	wt_step_join(id);
	TCHECK_EQ(t.result, 0);
	TCHECK_EQ(a.st.code, -1);
	TCHECK_EQ(a.st.signal, SIGTERM);
	wt_step_fini(&t);
	TCHECK_EQ(weft_process_destroy(p), 0);
	/* A coroutine waits the same way (the blocking form's naps). */
	p = spawn_without_pidfd((const char *const[]){"sleep", "3600", NULL});
	weft_exit_status_t st;
	TCHECK_EQ(weft_process_wait_step(p, &st, weft_deadline_in(5 * WEFT_MSEC), &op), -ETIMEDOUT);
	TCHECK_EQ(weft_process_kill(p, SIGKILL), 0);
	TCHECK_EQ(weft_process_wait_step(p, &st, wt_hang_deadline(), &op), 0);
	TCHECK_EQ(st.signal, SIGKILL);
	TCHECK_EQ(weft_process_destroy(p), 0);
	return NULL;
}

static void test_wait_step_without_a_pidfd(void **state)
{
	(void)state;
	wt_run(nap_main, NULL, 2);
}

/* ------------------------------------------------------------ reading and writing */

#define BIG (1u << 20)

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 13 + 5);
}

static long read_all_call(wt_step_task *t, weft_op_t *op)
{
	pargs *a = t->ctx;
	/* Reads until end of file, one _step call at a time: a step that
	 * gets bytes goes on at once with the next call. */
	for (;;) {
		ssize_t n =
			weft_process_read_step(a->p, WEFT_STDOUT, a->buf + a->len, BIG + 1 - a->len, t->deadline, op);
		if (n <= 0)
			return n < 0 ? n : (long)a->len;
		a->len += (size_t)n;
	}
}

/* cat, fed a megabyte by one stackless task and read by another: both
 * register on the full or empty pipe, and everything comes back. */
static void *round_trip_main(void *arg)
{
	(void)arg;
	weft_process_t *p;
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"cat", NULL}, &piped), 0);
	pargs w, r;
	pargs_init(&w, PC_WRITE, p);
	pargs_init(&r, PC_READ, p);
	w.buf = malloc(BIG);
	w.len = BIG;
	r.buf = malloc(BIG + 1);
	TCHECK(w.buf && r.buf);
	for (size_t i = 0; i < BIG; i++)
		w.buf[i] = (char)pattern(i);
	weft_op_t wop = WEFT_OP_INIT, rop = WEFT_OP_INIT;
	wt_step_task wt, rt;
	wt_step_init(&wt, process_call, &w, &wop);
	wt_step_init(&rt, read_all_call, &r, &rop);
	wt.busy = second_registrations;
	weft_task_t wid = wt_step_start(&wt);
	/* Nobody reads cat's output yet: both pipes fill, and the writer has
	 * to register (a reader started with it could keep up with it). */
	WT_WAIT_UNTIL(atomic_load(&wt.parks) >= 1);
	weft_task_t rid = wt_step_start(&rt);
	wt_step_join(wid);
	TCHECK_EQ(wt.result, (long)BIG);
	TCHECK(atomic_load(&wt.parks) >= 1); /* a megabyte does not fit a pipe */
	TCHECK_EQ(wt.busy_checks, 1);
	TCHECK_EQ(weft_process_close(p, WEFT_STDIN), 0);
	wt_step_join(rid);
	TCHECK_EQ(rt.result, (long)BIG);
	TCHECK_EQ(memcmp(w.buf, r.buf, BIG), 0);
	weft_exit_status_t st;
	TCHECK_EQ(weft_process_wait(p, &st, wt_hang_deadline()), 0);
	TCHECK_EQ(st.code, 0);
	wt_step_fini(&wt);
	wt_step_fini(&rt);
	free(w.buf);
	free(r.buf);
	TCHECK_EQ(weft_process_destroy(p), 0);
	return NULL;
}

static void test_read_and_write_steps(void **state)
{
	(void)state;
	wt_run(round_trip_main, NULL, 2);
}

/* head -c 10 reads ten bytes and exits: a write of a megabyte is stopped
 * after what the pipe took - their count - and the next one says -EPIPE.
 * A read at the end of the output: 0. Past deadlines and bad pipes. */
static void *early_exit_main(void *arg)
{
	(void)arg;
	weft_process_t *p;
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"head", "-c", "10", NULL}, &piped), 0);
	pargs w;
	pargs_init(&w, PC_WRITE, p);
	w.buf = calloc(1, BIG);
	w.len = BIG;
	weft_op_t op = WEFT_OP_INIT;
	wt_step_task t;
	wt_step_init(&t, process_call, &w, &op);
	long n = wt_step_run(&t);
	TCHECK(n > 0 && n < (long)BIG);
	TCHECK_EQ(wt_step_run(&t), -EPIPE);
	pargs r;
	pargs_init(&r, PC_READ, p);
	char out[32];
	r.buf = out;
	r.len = sizeof out;
	wt_step_task rt;
	wt_step_init(&rt, process_call, &r, &op);
	TCHECK_EQ(wt_step_run(&rt), 10);
	TCHECK_EQ(wt_step_run(&rt), 0);
	TCHECK_EQ(weft_process_close(p, WEFT_STDIN), 0);
	TCHECK_EQ(wt_step_run(&t), -EBADF);
	wt_step_fini(&rt);
	wt_step_fini(&t);
	free(w.buf);
	TCHECK_EQ(weft_process_destroy(p), 0);
	/* Nothing to read yet: a past deadline polls. */
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"cat", NULL}, &piped), 0);
	char b[4];
	for (size_t i = 0; i < NPAST; i++)
		TCHECK_EQ(weft_process_read_step(p, WEFT_STDOUT, b, sizeof b, past[i], &op), -ETIMEDOUT);
	TCHECK_EQ(weft_process_read_step(p, WEFT_STDERR, b, sizeof b, WEFT_NEVER, &op), -EBADF); /* not piped */
	TCHECK_EQ(weft_process_destroy(p), 0);
	return NULL;
}

static void test_write_step_stopped_by_the_child(void **state)
{
	(void)state;
	wt_run(early_exit_main, NULL, 2);
}

/* ------------------------------------------------------------ coroutines and threads */

static const unsigned char zero_op[sizeof(weft_op_t)];

static void *closer(void *a)
{
	weft_sleep(WEFT_MSEC);
	TCHECK_EQ(weft_process_close(a, WEFT_STDIN), 0);
	return NULL;
}

static void blocking_body(bool thread)
{
	weft_op_t op = WEFT_OP_INIT;
	weft_process_t *p;
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"cat", NULL}, &piped), 0);
	weft_exit_status_t st;
	TCHECK_EQ(weft_process_wait_step(p, &st, weft_deadline_in(5 * WEFT_MSEC), &op), -ETIMEDOUT);
	TCHECK_EQ(weft_process_write_step(p, "hello", 5, WEFT_NEVER, &op), 5);
	char b[8];
	TCHECK_EQ(weft_process_read_step(p, WEFT_STDOUT, b, sizeof b, wt_hang_deadline(), &op), 5);
	TCHECK_EQ(memcmp(b, "hello", 5), 0);
	/* Blocked until another thread or task closes cat's stdin. */
	if (thread) {
		pthread_t th;
		TCHECK_EQ(pthread_create(&th, NULL, closer, p), 0);
		TCHECK_EQ(weft_process_wait_step(p, &st, wt_hang_deadline(), &op), 0);
		TCHECK_EQ(pthread_join(th, NULL), 0);
	} else {
		weft_task_t c = wt_spawn(closer, p);
		TCHECK_EQ(weft_process_wait_step(p, &st, wt_hang_deadline(), &op), 0);
		wt_join(c);
	}
	TCHECK_EQ(st.code, 0);
	TCHECK_EQ(memcmp(&op, zero_op, sizeof op), 0);
	TCHECK_EQ(weft_process_destroy(p), 0);
}

static void *coroutine_main(void *a)
{
	(void)a;
	blocking_body(false);
	return NULL;
}

static void test_coroutines_and_threads_block(void **state)
{
	(void)state;
	wt_run(coroutine_main, NULL, 2);
	atomic_store(&tcheck_failures, 0);
	blocking_body(true);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		WT_PROC_TEST(test_wait_step),
		WT_PROC_TEST(test_wait_step_without_a_pidfd),
		WT_PROC_TEST(test_read_and_write_steps),
		WT_PROC_TEST(test_write_step_stopped_by_the_child),
		WT_PROC_TEST(test_coroutines_and_threads_block),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
