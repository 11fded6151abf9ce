/* test_poll.c - the netpoller: weft_fd_wait on pipes from tasks and threads,
 * deadlines, cancellation, weft_close waking waiters, no lost wake-ups. */
#include "io/wt_io.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
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
	TCHECK_EQ(weft_fd_wait(g_pipe[0], POLLIN, weft_deadline_in(5 * WEFT_SEC)), POLLIN);
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
	TCHECK(weft_fd_wait(g_pipe[0], POLLIN, weft_deadline_in(WEFT_SEC)) & POLLHUP);
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
			int r = weft_fd_wait(p->in, POLLIN, weft_deadline_in(20 * WEFT_SEC));
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
	int (*fds)[4] = calloc(PAIRS, sizeof *fds);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		WT_IO_TEST(test_bad_input),   WT_IO_TEST(test_thread_wait), WT_IO_TEST(test_task_wait),
		WT_IO_TEST(test_cancel_close), WT_IO_TEST(test_pingpong),    WT_IO_TEST(test_stackless),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
