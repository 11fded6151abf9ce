/* test_poll.c - the netpoller: weft_fd_wait on pipes from tasks and threads,
 * deadlines, cancellation, weft_close waking waiters, no lost wake-ups, and
 * no sleeping thread woken for every event. */
#include "io/wt_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void mkpipe(int p[2])
{
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

static void test_bad_input(void **state)
{
	(void)state;
	assert_int_equal(weft_fd_wait(-1, POLLIN, WEFT_NEVER), -EBADF);
	assert_int_equal(weft_close(-1), -EBADF);
	int p[2];
	mkpipe(p);
	assert_int_equal(weft_fd_wait(p[0], 0, WEFT_NEVER), -EINVAL);
	assert_int_equal(weft_fd_wait(p[0], 0x8000, WEFT_NEVER), -EINVAL);
	close(p[0]);
	close(p[1]);
	/* A closed descriptor in a plain thread: poll(2) says POLLNVAL. */
	assert_int_equal(weft_fd_wait(p[0], POLLIN, weft_deadline_in(WEFT_MSEC)), -EBADF);
}

/* Plain threads block in poll(2). */
static void test_thread_wait(void **state)
{
	(void)state;
	int p[2];
	mkpipe(p);
	weft_time_t t0 = weft_now();
	assert_int_equal(weft_fd_wait(p[0], POLLIN, weft_deadline_in(20 * WEFT_MSEC)), -ETIMEDOUT);
	assert_true(weft_now() - t0 >= 20 * WEFT_MSEC);
	assert_int_equal(weft_fd_wait(p[1], POLLOUT, WEFT_NEVER), POLLOUT);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(weft_fd_wait(p[0], POLLIN, WEFT_NEVER), POLLIN);
	close(p[1]);
	assert_true(weft_fd_wait(p[0], POLLIN, WEFT_NEVER) & (POLLIN | POLLHUP));
	close(p[0]);
}

static int g_pipe[2];

static void *writer_later(void *a)
{
	weft_sleep((weft_time_t)(intptr_t)a);
	TCHECK_EQ(write(g_pipe[1], "y", 1), 1);
	return NULL;
}

/* A task waits; another writes after a while; the waiter is woken by the poller. */
static void *task_wait_main(void *a)
{
	(void)a;
	const char *b = weft_io_backend(NULL);
	TCHECK(b != NULL);
	const char *want = getenv("WEFT_IO");
	if (b && want && strcmp(want, "epoll") == 0)
		TCHECK(strcmp(b, "epoll") == 0);
	printf("netpoller backend: %s (WEFT_IO=%s)\n", b ? b : "none", want ? want : "");
	TCHECK_EQ(pipe2(g_pipe, O_NONBLOCK | O_CLOEXEC), 0);
	weft_task_t w = wt_spawn(writer_later, (void *)(intptr_t)(5 * WEFT_MSEC));
	TCHECK_EQ(weft_fd_wait(g_pipe[0], POLLIN, wt_hang_deadline()), POLLIN);
	char c;
	TCHECK_EQ(read(g_pipe[0], &c, 1), 1);
	wt_join(w);
	/* Nothing left: a deadline expires. */
	weft_time_t t0 = weft_now();
	TCHECK_EQ(weft_fd_wait(g_pipe[0], POLLIN, weft_deadline_in(10 * WEFT_MSEC)), -ETIMEDOUT);
	TCHECK(weft_now() - t0 >= 10 * WEFT_MSEC);
	/* Ready now: returns at once. */
	TCHECK_EQ(weft_fd_wait(g_pipe[1], POLLOUT, WEFT_NEVER), POLLOUT);
	TCHECK_EQ(write(g_pipe[1], "z", 1), 1);
	TCHECK_EQ(weft_fd_wait(g_pipe[0], POLLIN | POLLOUT, WEFT_NEVER), POLLIN);
	/* The writer end closes: the reader sees POLLHUP. */
	TCHECK_EQ(weft_close(g_pipe[1]), 0);
	TCHECK(weft_fd_wait(g_pipe[0], POLLIN, wt_hang_deadline()) & POLLHUP);
	TCHECK_EQ(weft_close(g_pipe[0]), 0);
	return NULL;
}

static void test_task_wait(void **state)
{
	(void)state;
	wt_run(task_wait_main, NULL, 2);
}

/* Cancellation and weft_close end a wait. */
static void *blocked_waiter(void *a)
{
	int fd = (int)(intptr_t)a;
	return (void *)(intptr_t)weft_fd_wait(fd, POLLIN, weft_deadline_in(10 * WEFT_SEC));
}

static void *cancel_close_main(void *a)
{
	(void)a;
	int p[2];
	TCHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	weft_task_t t = wt_spawn(blocked_waiter, (void *)(intptr_t)p[0]);
	weft_sleep(5 * WEFT_MSEC);
	TCHECK_EQ(weft_cancel(t), 0);
	void *r;
	TCHECK_EQ(weft_join(t, &r), 0);
	TCHECK_EQ((intptr_t)r, -ECANCELED);

	weft_task_t ts[4];
	for (int i = 0; i < 4; i++)
		ts[i] = wt_spawn(blocked_waiter, (void *)(intptr_t)p[0]);
	weft_sleep(5 * WEFT_MSEC);
	TCHECK_EQ(weft_close(p[0]), 0);
	for (int i = 0; i < 4; i++) {
		TCHECK_EQ(weft_join(ts[i], &r), 0);
		TCHECK_EQ((intptr_t)r, -EBADF);
	}
	TCHECK_EQ(weft_close(p[1]), 0);
	/* A closed descriptor in a task. */
	TCHECK_EQ(weft_fd_wait(p[0], POLLIN, weft_deadline_in(WEFT_MSEC)), -EBADF);
	/* A cancelled task's wait ends at once. */
	weft_task_t self_cancelled = wt_spawn(blocked_waiter, (void *)(intptr_t)0);
	weft_cancel(self_cancelled);
	TCHECK_EQ(weft_join(self_cancelled, &r), 0);
	TCHECK((intptr_t)r == -ECANCELED || (intptr_t)r > 0);
	return NULL;
}

static void test_cancel_close(void **state)
{
	(void)state;
	wt_run(cancel_close_main, NULL, 2);
}

/* No lost wake-ups: pairs of tasks play ping-pong over pipes, every read
 * preceded by a wait, on several workers. Counts are conserved. */
#define PAIRS WT_SIZE(64, 16)
#define ROUNDS WT_SIZE(2000, 200)

typedef struct {
	int in, out;
	long got;
} player;

static void *play(void *a)
{
	player *p = a;
	unsigned char c = 0;
	for (int i = 0; i < ROUNDS; i++) {
		for (;;) {
			ssize_t n = read(p->in, &c, 1);
			if (n == 1)
				break;
			TCHECK(n < 0 && errno == EAGAIN);
			int r = weft_fd_wait(p->in, POLLIN, wt_hang_deadline());
			TCHECK(r > 0);
			if (r <= 0)
				return NULL;
		}
		p->got++;
		c++;
		for (;;) {
			ssize_t n = write(p->out, &c, 1);
			if (n == 1)
				break;
			TCHECK(n < 0 && errno == EAGAIN);
			TCHECK(weft_fd_wait(p->out, POLLOUT, WEFT_NEVER) > 0);
		}
	}
	return NULL;
}

static void *pingpong_main(void *a)
{
	(void)a;
	int(*fds)[4] = calloc(PAIRS, sizeof *fds);
	player *pl = calloc(2 * PAIRS, sizeof *pl);
	weft_task_t *ts = calloc(2 * PAIRS, sizeof *ts);
	for (int i = 0; i < PAIRS; i++) {
		TCHECK_EQ(pipe2(fds[i], O_NONBLOCK | O_CLOEXEC), 0);
		TCHECK_EQ(pipe2(fds[i] + 2, O_NONBLOCK | O_CLOEXEC), 0);
		pl[2 * i] = (player){.in = fds[i][0], .out = fds[i][3]};
		pl[2 * i + 1] = (player){.in = fds[i][2], .out = fds[i][1]};
		ts[2 * i] = wt_spawn(play, &pl[2 * i]);
		ts[2 * i + 1] = wt_spawn(play, &pl[2 * i + 1]);
		TCHECK_EQ(write(fds[i][1], "", 1), 1); /* serve */
	}
	long total = 0;
	for (int i = 0; i < 2 * PAIRS; i++) {
		wt_join(ts[i]);
		total += pl[i].got;
	}
	TCHECK_EQ(total, 2L * PAIRS * ROUNDS);
	for (int i = 0; i < PAIRS; i++)
		for (int j = 0; j < 4; j++)
			TCHECK_EQ(weft_close(fds[i][j]), 0);
	free(fds);
	free(pl);
	free(ts);
	return NULL;
}

static void test_pingpong(void **state)
{
	(void)state;
	wt_run(pingpong_main, NULL, 0);
}

/* Stackless tasks cannot park: they get -EWOULDBLOCK. */
static weft_step_t stackless_step(void *st, void **r)
{
	int *p = st;
	p[2] = weft_fd_wait(p[0], POLLIN, WEFT_NEVER);
	*r = NULL;
	return WEFT_STEP_DONE;
}

static void *stackless_main(void *a)
{
	(void)a;
	int p[3];
	TCHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, stackless_step, p, NULL), 0);
	wt_join(t);
	TCHECK_EQ(p[2], -EWOULDBLOCK);
	weft_close(p[0]);
	weft_close(p[1]);
	return NULL;
}

static void test_stackless(void **state)
{
	(void)state;
	wt_run(stackless_main, NULL, 1);
}

/* The monitor thread (named weft-monitor): its id, 0 if there is none. */
static pid_t monitor_tid(void)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return 0;
	pid_t tid = 0;
	struct dirent *e;
	while (!tid && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], buf[64];
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof buf, f) && strcmp(buf, "weft-monitor\n") == 0)
			tid = (pid_t)atoi(e->d_name);
		fclose(f);
	}
	closedir(d);
	return tid;
}

/* Its voluntary context switches so far (-1 if unknown): one per sleep. */
static long tid_switches(pid_t tid)
{
	char path[64], buf[256];
	snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long n = -1;
	while (fgets(buf, sizeof buf, f))
		if (sscanf(buf, "voluntary_ctxt_switches: %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* The system call it is blocked in, -1 if it is running (or unknown). */
static long tid_syscall(pid_t tid)
{
	char path[64], buf[256];
	snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long n = -1;
	if (!fgets(buf, sizeof buf, f) || sscanf(buf, "%ld", &n) != 1)
		n = -1;
	fclose(f);
	return n;
}

#define QUIET_ROUNDS 2000

static _Atomic int quiet_phase; /* 1: accepted; 2: the echo task may read */

static void *quiet_echo(void *a)
{
	int lfd = (int)(intptr_t)a;
	int c = weft_accept(lfd, NULL, NULL, WEFT_NEVER);
	TCHECK(c >= 0);
	atomic_store(&quiet_phase, 1);
	while (atomic_load(&quiet_phase) != 2)
		weft_yield();
	char b[64];
	for (;;) {
		ssize_t n = weft_read(c, b, sizeof b, WEFT_NEVER);
		if (n <= 0)
			break;
		TCHECK_EQ(weft_write_all(c, b, (size_t)n, WEFT_NEVER, NULL), n);
	}
	weft_close(c);
	return NULL;
}

static void *quiet_main(void *a)
{
	(void)a;
	atomic_store(&quiet_phase, 0);
	pid_t mon = 0; /* named by the monitor thread itself once it runs */
	WT_WAIT_UNTIL((mon = monitor_tid()) > 0);
	int lfd = weft_tcp_listen("127.0.0.1", 0, 16);
	TCHECK(lfd >= 0);
	weft_task_t e = wt_spawn(quiet_echo, (void *)(intptr_t)lfd);
	int c = weft_tcp_connect("127.0.0.1", (uint16_t)weft_local_port(lfd), WEFT_NEVER);
	TCHECK(c >= 0);
	while (atomic_load(&quiet_phase) != 1)
		weft_yield();
	/* One yield lets the echo task start its first read, whose poll is
	 * queued for submission; then the only worker stays busy without
	 * polling until the monitor has polled (nobody else has for 10 ms):
	 * that poll must not make the connection's readiness its business.
	 * The monitor sleeps between its checks; two of its sleeps ending
	 * after the 10 ms mark mean one whole check ran after it. */
	atomic_store(&quiet_phase, 2);
	weft_yield();
	weft_time_t busy = weft_now(), give_up = wt_hang_deadline();
	long mark = -1;
	for (;;) {
		weft_time_t now = weft_now();
		if (mark < 0 && now - busy >= 10 * WEFT_MSEC)
			mark = tid_switches(mon);
		if (mark >= 0 && now - busy >= 30 * WEFT_MSEC && tid_switches(mon) >= mark + 3)
			break;
		if (now > give_up) {
			TCHECK(!"the monitor never polled");
			break;
		}
	}
	/* Freeze the monitor where nothing wakes it: a task dump (SIGQUIT)
	 * to a stderr that is a full pipe nobody reads. A thread blocked in
	 * that write wakes only for a signal or for task work - which is how
	 * io_uring would run the connection's poll reports on the monitor if
	 * it had submitted the poll: one wake-up per report. So during the
	 * round trips its count of sleeps must not move at all; no rate, no
	 * elapsed time. Nothing may print to stderr meanwhile: failures are
	 * counted and checked after it is restored. */
	int p[2], saved = dup(STDERR_FILENO);
	TCHECK(saved >= 0);
	TCHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	static char junk[4096];
	TCHECK_EQ(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
	while (write(p[1], junk, sizeof junk) > 0) {
	}
	TCHECK_EQ(fcntl(p[1], F_SETFL, 0), 0);
	TCHECK_EQ(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
	raise(SIGQUIT); /* to this thread: handled now, the monitor is woken to dump */
	bool frozen = false;
	for (weft_time_t until = wt_hang_deadline(); !frozen && weft_now() < until;) {
		frozen = tid_syscall(mon) == SYS_write;
		if (!frozen)
			weft_sleep(WEFT_MSEC / 4);
	}
	long before = tid_switches(mon);
	int bad = 0;
	char b[8] = "ping";
	for (int i = 0; frozen && i < QUIET_ROUNDS; i++)
		bad += weft_write_all(c, b, 4, WEFT_NEVER, NULL) != 4 || weft_read_full(c, b, 4, WEFT_NEVER, NULL) != 4;
	long woken = tid_switches(mon) - before;
	long in_call = tid_syscall(mon);
	/* Thaw: the rest of the dump goes to /dev/null; drain the pipe until
	 * the monitor is back in its futex wait. */
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	dup2(devnull, STDERR_FILENO);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	bool thawed = false;
	for (weft_time_t until = wt_hang_deadline(); !thawed && weft_now() < until;) {
		while (read(p[0], junk, sizeof junk) > 0) {
		}
		thawed = tid_syscall(mon) == SYS_futex;
		if (!thawed)
			weft_sleep(WEFT_MSEC / 4);
	}
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(devnull);
	close(p[0]);
	close(p[1]);
	TCHECK(frozen);
	TCHECK(thawed);
	TCHECK_EQ(bad, 0);
	TCHECK_EQ(in_call, SYS_write); /* still frozen: nothing ended the write */
	if (woken != 0)
		fprintf(stderr, "monitor woken %ld times in %d round trips\n", woken, QUIET_ROUNDS);
	TCHECK_EQ(woken, 0);
	weft_close(c);
	wt_join(e);
	weft_close(lfd);
	return NULL;
}

/* Readiness is not routed through a thread that sleeps: io_uring runs a
 * poll's work on the thread that submitted it, and the monitor, which polls
 * when the workers are busy, must not be that thread. */
static void test_monitor_not_woken_per_event(void **state)
{
	(void)state;
	wt_run(quiet_main, NULL, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		WT_IO_TEST(test_bad_input),
		WT_IO_TEST(test_thread_wait),
		WT_IO_TEST(test_task_wait),
		WT_IO_TEST(test_cancel_close),
		WT_IO_TEST(test_pingpong),
		WT_IO_TEST(test_stackless),
		WT_IO_TEST(test_monitor_not_woken_per_event),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
