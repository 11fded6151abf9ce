/* test_process_forward.c - weft_process_forward and its waits, on every
 * executor that can do real I/O (weft, threads and libuv, `execs` below;
 * and no executor: coroutines of the current runtime), called from a
 * plain thread and from a coroutine: a cat round trip of several MiB from
 * pipes and from regular files (the blocking copiers), compared byte for
 * byte; stderr, and
 * stdout and stderr into one descriptor; a header written before stdin is
 * forwarded; children that exit without reading their input (no error);
 * a forward twice (-EALREADY) and bad arguments; errors of the caller's
 * descriptor (-EPIPE), also while the copier waits for the child; an
 * executor that never runs its tasks (the waiter closes what they owned);
 * destroy while copiers run, from a thread, a coroutine, a stackless task
 * and a cancelled coroutine; forward_wait's deadline, and its step form.
 * Run on both netpoller backends; no zombies, no leaked descriptors.
 *
 * No check depends on timing: children are held alive by input the test
 * controls (cat with a pipe whose writer the test keeps open), and
 * deadlines only bound a hang, except where the test asserts -ETIMEDOUT
 * for a wait nothing can end. */
#include "wt_step_task.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <weft/io.h>

#include "blocking_check.h"

static const char *const cat[] = {"cat", NULL};

static weft_process_t *spawn(const char *const *argv, int in, int out, int err)
{
	weft_process_t *p = NULL;
	weft_process_opts_t o = {.stdio = {in, out, err}};
	TCHECK_EQ(weft_process_spawn(&p, argv, &o), 0);
	return p;
}

static int fwd(weft_process_t *p, int which, int fd, weft_exec_t *ex)
{
	return weft_process_forward(p, which, fd, &(weft_process_forward_opts_t){.exec = ex});
}

static void reap(weft_process_t *p, int code)
{
	weft_exit_status_t st;
	TCHECK_EQ(weft_process_wait(p, &st, wt_hang_deadline()), 0);
	TCHECK_EQ(st.code, code);
	TCHECK_EQ(weft_process_destroy(p), 0);
}

static char *pattern(size_t len, unsigned seed)
{
	char *d = malloc(len);
	for (size_t i = 0; i < len; i++)
		d[i] = (char)(i * 131 + (i >> 11) + seed);
	return d;
}

/* A regular file (unlinked) holding data, at offset 0. */
static int file_with(const void *data, size_t len)
{
	char path[] = "/tmp/weft-fwd-XXXXXX";
	int fd = mkstemp(path);
	TCHECK(fd >= 0);
	unlink(path);
	TCHECK_EQ(write(fd, data, len), (ssize_t)len);
	TCHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static void pipe_cloexec(int p[2])
{
	TCHECK_EQ(pipe2(p, O_CLOEXEC), 0);
}

/* ------------------------------------------------------------ feeding and draining, on threads */

/* Plain threads with blocking descriptors of the test's own (forward makes
 * only the ends it is given non-blocking): a feeder writes data and closes
 * its end, tolerating a reader that went away; a drainer reads until end
 * of file and closes its end. */
typedef struct pump {
	int fd;
	const char *data;
	size_t len;
	char *got;
	size_t got_len;
	pthread_t th;
} pump;

static void *feed_main(void *a)
{
	pump *m = a;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGPIPE); /* a reader gone: EPIPE (a pending SIGPIPE dies with the thread) */
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	for (size_t off = 0; off < m->len;) {
		ssize_t n = write(m->fd, m->data + off, m->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(m->fd);
	return NULL;
}

static void *drain_main(void *a)
{
	pump *m = a;
	size_t cap = 1 << 16;
	m->got = malloc(cap);
	for (;;) {
		if (m->got_len == cap)
			m->got = realloc(m->got, cap *= 2);
		ssize_t n = read(m->fd, m->got + m->got_len, cap - m->got_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		m->got_len += (size_t)n;
	}
	close(m->fd);
	return NULL;
}

static void pump_start(pump *m, void *(*fn)(void *), int fd, const char *data, size_t len)
{
	*m = (pump){.fd = fd, .data = data, .len = len};
	TCHECK_EQ(pthread_create(&m->th, NULL, fn, m), 0);
}

/* Join m; for a drainer, whether it got exactly want[0..len). */
static bool pump_end(pump *m, const char *want, size_t len)
{
	pthread_join(m->th, NULL);
	bool ok = !want || (m->got_len == len && memcmp(m->got, want, len) == 0);
	if (!ok)
		fprintf(stderr, "drained %zu bytes, expected %zu\n", m->got_len, len);
	free(m->got);
	return ok;
}

/* ------------------------------------------------------------ running a body on every executor */

/* The executors forwarding runs on (each with the runtime the test
 * started, which only the weft one uses). Every backend of
 * weft/executors.h that can do real I/O belongs here. */
static int make_weft(weft_exec_t **ex, weft_runtime_t *rt)
{
	return weft_exec_create_runtime(ex, rt);
}

static int make_threads(weft_exec_t **ex, weft_runtime_t *rt)
{
	(void)rt;
	return weft_exec_create_threads(ex, NULL);
}

/* A loop of the executor's own; -ENOTSUP in a build without libuv. */
static int make_uv(weft_exec_t **ex, weft_runtime_t *rt)
{
	(void)rt;
	return weft_exec_create_uv(ex, NULL);
}

static const struct {
	const char *name;
	int (*make)(weft_exec_t **ex, weft_runtime_t *rt);
} execs[] = {{"weft", make_weft}, {"threads", make_threads}, {"libuv", make_uv}};
#define NEXECS (int)(sizeof execs / sizeof execs[0])

typedef void (*fwd_body_t)(weft_exec_t *ex);

struct fwd_call {
	fwd_body_t body;
	weft_exec_t *ex;
};

static void *fwd_call_main(void *a)
{
	struct fwd_call *c = a;
	c->body(c->ex);
	return NULL;
}

/* body(ex) with each executor that can do real I/O, and with none (NULL:
 * coroutines of the current runtime), from a plain thread and (by_coro) a
 * coroutine of a runtime of two workers. */
static void each_exec(fwd_body_t body, bool by_coro)
{
	atomic_store(&tcheck_failures, 0);
	for (int b = -1; b < NEXECS; b++) {
		const char *name = b < 0 ? "no executor" : execs[b].name;
		weft_runtime_t *rt;
		assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
		weft_exec_t *ex = NULL;
		if (b >= 0) {
			int e = execs[b].make(&ex, rt);
			if (e == -ENOTSUP || (e == 0 && !(weft_exec_caps(ex) & WEFT_EXEC_CAP_REAL_IO))) {
				fprintf(stderr, "  %s: skipped (%s)\n", name,
					e ? "weft was built without it" : "no real I/O");
				if (ex)
					assert_int_equal(weft_exec_destroy(ex), 0);
				assert_int_equal(weft_runtime_stop(rt), 0);
				continue;
			}
			assert_int_equal(e, 0);
		}
		struct fwd_call c = {body, ex};
		for (int k = 0; k < (by_coro ? 2 : 1); k++) {
			int before = atomic_load(&tcheck_failures);
			if (k == 0) {
				body(ex);
			} else {
				weft_task_t t;
				assert_int_equal(weft_spawn(&t, fwd_call_main, &c, &(weft_spawn_opts_t){.runtime = rt}),
						 0);
				assert_int_equal(weft_join(t, NULL), 0);
			}
			if (atomic_load(&tcheck_failures) != before)
				fprintf(stderr, "  ^ those checks failed with %s, in a %s\n", name,
					k ? "coroutine" : "plain thread");
		}
		if (ex)
			assert_int_equal(weft_exec_destroy(ex), 0);
		assert_int_equal(weft_runtime_stop(rt), 0);
	}
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* ------------------------------------------------------------ round trips */

static size_t big(void)
{
	return (size_t)WT_SIZE(6 << 20, 2 << 20) + 12345; /* not a multiple of the copiers' buffer */
}

/* cat: stdin from a pipe the test feeds, stdout to a pipe it drains. The
 * test closes its copies of both ends at once: the copiers have their own. */
static void pipes_body(weft_exec_t *ex)
{
	size_t len = big();
	char *data = pattern(len, 1);
	weft_process_t *p = spawn(cat, WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, WEFT_STDIO_INHERIT);
	int a[2], b[2];
	pipe_cloexec(a);
	pipe_cloexec(b);
	TCHECK_EQ(fwd(p, WEFT_STDIN, a[0], ex), 0);
	TCHECK_EQ(fwd(p, WEFT_STDOUT, b[1], ex), 0);
	TCHECK(fcntl(a[0], F_GETFL) & O_NONBLOCK); /* pollable: made non-blocking (its description) */
	TCHECK(!(fcntl(a[1], F_GETFL) & O_NONBLOCK));
	close(a[0]);
	close(b[1]);
	pump feed, drain;
	pump_start(&feed, feed_main, a[1], data, len);
	pump_start(&drain, drain_main, b[0], NULL, 0);
	TCHECK_EQ(weft_process_forward_wait(p, wt_hang_deadline()), 0);
	TCHECK(pump_end(&feed, NULL, 0));
	TCHECK(pump_end(&drain, data, len));	       /* end of file: the copier closed its end */
	TCHECK_EQ(weft_process_forward_wait(p, 0), 0); /* ended: the same answer again */
	reap(p, 0);
	free(data);
}

static void test_round_trip_pipes(void **state)
{
	(void)state;
	each_exec(pipes_body, true);
}

/* cat: stdin from a regular file, stdout into another (both copiers are
 * blocking tasks); the offsets the copiers moved are the caller's. */
static void files_body(weft_exec_t *ex)
{
	size_t len = big();
	char *data = pattern(len, 2);
	int in = file_with(data, len), out = file_with("", 0);
	weft_process_t *p = spawn(cat, WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, WEFT_STDIO_NULL);
	TCHECK_EQ(fwd(p, WEFT_STDIN, in, ex), 0);
	TCHECK_EQ(fwd(p, WEFT_STDOUT, out, ex), 0);
	TCHECK_EQ(weft_process_forward_wait(p, wt_hang_deadline()), 0);
	TCHECK_EQ(lseek(in, 0, SEEK_CUR), (off_t)len);
	TCHECK_EQ(lseek(out, 0, SEEK_CUR), (off_t)len);
	char *back = malloc(len + 1);
	TCHECK_EQ(pread(out, back, len + 1, 0), (ssize_t)len);
	TCHECK(memcmp(back, data, len) == 0);
	reap(p, 0);
	close(in);
	close(out);
	free(back);
	free(data);
}

static void test_round_trip_files(void **state)
{
	(void)state;
	each_exec(files_body, true);
}

/* stderr: stdin (a file) copied to stderr by the child, drained from a
 * pipe; then stdout and stderr into one pipe. */
static void stderr_body(weft_exec_t *ex)
{
	size_t len = big() / 4;
	char *data = pattern(len, 3);
	int in = file_with(data, len), e[2];
	pipe_cloexec(e);
	weft_process_t *p = spawn((const char *const[]){"sh", "-c", "cat >&2", NULL}, WEFT_STDIO_PIPE, WEFT_STDIO_NULL,
				  WEFT_STDIO_PIPE);
	TCHECK_EQ(fwd(p, WEFT_STDOUT, 1, ex), -EBADF); /* not piped */
	TCHECK_EQ(fwd(p, WEFT_STDIN, in, ex), 0);
	TCHECK_EQ(fwd(p, WEFT_STDERR, e[1], ex), 0);
	close(in);
	close(e[1]);
	pump drain;
	pump_start(&drain, drain_main, e[0], NULL, 0);
	TCHECK_EQ(weft_process_forward_wait(p, wt_hang_deadline()), 0);
	TCHECK(pump_end(&drain, data, len));
	reap(p, 0);
	free(data);

	/* Both streams into one descriptor: each line arrives whole (one
	 * write of less than PIPE_BUF each), in either order. */
	pipe_cloexec(e);
	p = spawn((const char *const[]){"sh", "-c", "echo out; echo err >&2", NULL}, WEFT_STDIO_NULL, WEFT_STDIO_PIPE,
		  WEFT_STDIO_PIPE);
	TCHECK_EQ(fwd(p, WEFT_STDOUT, e[1], ex), 0);
	TCHECK_EQ(fwd(p, WEFT_STDERR, e[1], ex), 0);
	close(e[1]);
	pump_start(&drain, drain_main, e[0], NULL, 0);
	TCHECK_EQ(weft_process_forward_wait(p, wt_hang_deadline()), 0);
	pthread_join(drain.th, NULL);
	TCHECK_EQ(drain.got_len, 8);
	TCHECK(drain.got_len == 8 &&
	       (memcmp(drain.got, "out\nerr\n", 8) == 0 || memcmp(drain.got, "err\nout\n", 8) == 0));
	free(drain.got);
	reap(p, 0);
}

static void test_stderr_and_one_sink(void **state)
{
	(void)state;
	each_exec(stderr_body, true);
}

/* A header written with weft_process_write, then the rest forwarded; the
 * forwarded pipe is no longer p's. */
static void header_body(weft_exec_t *ex)
{
	int in = file_with("body", 4), o[2];
	pipe_cloexec(o);
	weft_process_t *p = spawn(cat, WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, WEFT_STDIO_INHERIT);
	TCHECK_EQ(weft_process_write(p, "head:", 5, wt_hang_deadline()), 5);
	TCHECK_EQ(fwd(p, WEFT_STDOUT, o[1], ex), 0);
	TCHECK_EQ(weft_process_fd(p, WEFT_STDOUT), -EBADF);
	char buf[8];
	TCHECK_EQ(weft_process_read(p, WEFT_STDOUT, buf, sizeof buf, 0), -EBADF);
	TCHECK_EQ(weft_process_close(p, WEFT_STDOUT), -EBADF);
	TCHECK_EQ(fwd(p, WEFT_STDIN, in, ex), 0);
	TCHECK_EQ(weft_process_write(p, "x", 1, 0), -EBADF);
	close(in);
	close(o[1]);
	pump drain;
	pump_start(&drain, drain_main, o[0], NULL, 0);
	TCHECK_EQ(weft_process_forward_wait(p, wt_hang_deadline()), 0);
	TCHECK(pump_end(&drain, "head:body", 9));
	reap(p, 0);
}

static void test_header_then_forward(void **state)
{
	(void)state;
	each_exec(header_body, true);
}

/* ------------------------------------------------------------ children that stop reading */

static void early_exit_body(weft_exec_t *ex)
{
	/* true, stdin from a pipe nobody writes: the copier waits for input
	 * and sees the child close its stdin. */
	int a[2];
	pipe_cloexec(a);
	weft_process_t *p =
		spawn((const char *const[]){"true", NULL}, WEFT_STDIO_PIPE, WEFT_STDIO_NULL, WEFT_STDIO_NULL);
	TCHECK_EQ(fwd(p, WEFT_STDIN, a[0], ex), 0);
	TCHECK_EQ(weft_process_forward_wait(p, wt_hang_deadline()), 0);
	reap(p, 0);
	close(a[0]);
	close(a[1]);

	/* true, stdin from a large file: the copier's write fails with EPIPE */
	size_t len = big();
	char *data = pattern(len, 4);
	int in = file_with(data, len);
	p = spawn((const char *const[]){"true", NULL}, WEFT_STDIO_PIPE, WEFT_STDIO_NULL, WEFT_STDIO_NULL);
	TCHECK_EQ(fwd(p, WEFT_STDIN, in, ex), 0);
	TCHECK_EQ(weft_process_forward_wait(p, wt_hang_deadline()), 0);
	TCHECK(lseek(in, 0, SEEK_CUR) < (off_t)len); /* the rest stays unread */
	reap(p, 0);
	close(in);

	/* head -c 10 fed from a socket without end: 10 bytes out, no error */
	int s[2], o[2];
	TCHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	pipe_cloexec(o);
	p = spawn((const char *const[]){"head", "-c", "10", NULL}, WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, WEFT_STDIO_NULL);
	TCHECK_EQ(fwd(p, WEFT_STDIN, s[0], ex), 0);
	TCHECK_EQ(fwd(p, WEFT_STDOUT, o[1], ex), 0);
	close(s[0]);
	close(o[1]);
	pump feed, drain;
	pump_start(&feed, feed_main, s[1], data, len);
	pump_start(&drain, drain_main, o[0], NULL, 0);
	TCHECK_EQ(weft_process_forward_wait(p, wt_hang_deadline()), 0);
	TCHECK(pump_end(&drain, data, 10));
	TCHECK(pump_end(&feed, NULL, 0)); /* its reader is gone: it stopped */
	reap(p, 0);
	free(data);
}

static void test_child_stops_reading(void **state)
{
	(void)state;
	each_exec(early_exit_body, true);
}

/* ------------------------------------------------------------ the caller's descriptor fails */

static void sink_error_body(weft_exec_t *ex)
{
	/* out's reader is gone before the child writes */
	int o[2];
	pipe_cloexec(o);
	close(o[0]);
	weft_process_t *p =
		spawn((const char *const[]){"echo", "hi", NULL}, WEFT_STDIO_NULL, WEFT_STDIO_PIPE, WEFT_STDIO_NULL);
	TCHECK_EQ(fwd(p, WEFT_STDOUT, o[1], ex), 0);
	close(o[1]);
	TCHECK_EQ(weft_process_forward_wait(p, wt_hang_deadline()), -EPIPE);
	TCHECK_EQ(weft_process_forward_wait(p, 0), -EPIPE);
	weft_process_wait(p, NULL, wt_hang_deadline()); /* echo may have died of SIGPIPE */
	TCHECK_EQ(weft_process_destroy(p), 0);

	/* out's reader goes away while the copier waits for cat's output
	 * (cat writes nothing and lives on: its stdin stays open in p). */
	pipe_cloexec(o);
	p = spawn(cat, WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, WEFT_STDIO_NULL);
	TCHECK_EQ(fwd(p, WEFT_STDOUT, o[1], ex), 0);
	close(o[1]);
	close(o[0]);
	TCHECK_EQ(weft_process_forward_wait(p, wt_hang_deadline()), -EPIPE);
	TCHECK_EQ(weft_process_kill(p, 0), 0); /* cat is still there */
	TCHECK_EQ(weft_process_destroy(p), 0);

	/* An error of one copier is the answer once the others have ended
	 * too (the stdin copier: at the end of its input, or cat's death of
	 * SIGPIPE). */
	int a[2];
	pipe_cloexec(a);
	pipe_cloexec(o);
	p = spawn(cat, WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, WEFT_STDIO_NULL);
	TCHECK_EQ(fwd(p, WEFT_STDIN, a[0], ex), 0);
	TCHECK_EQ(fwd(p, WEFT_STDOUT, o[1], ex), 0);
	close(a[0]);
	close(o[1]);
	close(o[0]);
	TCHECK_EQ(write(a[1], "x", 1), 1); /* through cat to a sink without a reader */
	close(a[1]);
	TCHECK_EQ(weft_process_forward_wait(p, wt_hang_deadline()), -EPIPE);
	weft_process_wait(p, NULL, wt_hang_deadline()); /* cat may have died of SIGPIPE */
	TCHECK_EQ(weft_process_destroy(p), 0);
}

static void test_sink_errors(void **state)
{
	(void)state;
	each_exec(sink_error_body, true);
}

/* ------------------------------------------------------------ deadlines, -EALREADY, bad arguments */

/* cat holds on while its stdin's writer (the test) stays open: nothing can
 * end the forwarding before the test writes and closes. */
static void deadline_body(weft_exec_t *ex)
{
	int a[2], o[2];
	pipe_cloexec(a);
	pipe_cloexec(o);
	weft_process_t *p = spawn(cat, WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, WEFT_STDIO_NULL);
	TCHECK_EQ(weft_process_forward_wait(p, 0), 0); /* nothing forwarded yet */
	TCHECK_EQ(fwd(p, WEFT_STDIN, a[0], ex), 0);
	TCHECK_EQ(fwd(p, WEFT_STDOUT, o[1], ex), 0);
	TCHECK_EQ(fwd(p, WEFT_STDIN, a[0], ex), -EALREADY);
	TCHECK_EQ(fwd(p, WEFT_STDOUT, o[1], ex), -EALREADY);
	close(a[0]);
	close(o[1]);
	pump drain;
	pump_start(&drain, drain_main, o[0], NULL, 0);
	TCHECK_EQ(weft_process_forward_wait(p, weft_deadline_in(10 * WEFT_MSEC)), -ETIMEDOUT);
	TCHECK_EQ(weft_process_forward_wait(p, 0), -ETIMEDOUT); /* a past deadline polls */
	TCHECK_EQ(weft_process_kill(p, 0), 0);			/* cat is still there */
	TCHECK_EQ(write(a[1], "hello", 5), 5);
	close(a[1]);
	TCHECK_EQ(weft_process_forward_wait(p, wt_hang_deadline()), 0);
	TCHECK(pump_end(&drain, "hello", 5));
	TCHECK_EQ(fwd(p, WEFT_STDIN, 0, ex), -EALREADY); /* ended, still forwarded */
	reap(p, 0);
}

static void test_deadline_then_success(void **state)
{
	(void)state;
	each_exec(deadline_body, true);
}

static void bad_args_body(weft_exec_t *ex)
{
	int a[2];
	pipe_cloexec(a);
	weft_process_t *p = spawn(cat, WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, WEFT_STDIO_INHERIT);
	int in = weft_process_fd(p, WEFT_STDIN), out = weft_process_fd(p, WEFT_STDOUT);
	weft_process_forward_opts_t o = {.exec = ex};
	TCHECK_EQ(weft_process_forward(NULL, WEFT_STDIN, a[0], &o), -EINVAL);
	TCHECK_EQ(weft_process_forward(p, -1, a[0], &o), -EINVAL);
	TCHECK_EQ(weft_process_forward(p, 3, a[0], &o), -EINVAL);
	TCHECK_EQ(weft_process_forward(p, WEFT_STDIN, -1, &o), -EBADF);
	TCHECK_EQ(weft_process_forward(p, WEFT_STDIN, INT_MIN, &o), -EBADF);
	int closed = dup(a[0]);
	close(closed);
	TCHECK_EQ(weft_process_forward(p, WEFT_STDIN, closed, &o), -EBADF);
	TCHECK_EQ(weft_process_forward(p, WEFT_STDIN, a[1], &o), -EBADF);  /* not open for reading */
	TCHECK_EQ(weft_process_forward(p, WEFT_STDOUT, a[0], &o), -EBADF); /* not open for writing */
	TCHECK_EQ(weft_process_forward(p, WEFT_STDERR, a[1], &o), -EBADF); /* stderr not piped */
	int path = open("/tmp", O_PATH | O_CLOEXEC);
	TCHECK_EQ(weft_process_forward(p, WEFT_STDIN, path, &o), -EBADF);
	close(path);
	/* sizes: below the first version; larger with unknown bytes set */
	weft_process_forward_opts_t small = {.size = 1, .exec = ex};
	TCHECK_EQ(weft_process_forward(p, WEFT_STDIN, a[0], &small), -EINVAL);
	struct {
		weft_process_forward_opts_t o;
		uint64_t more;
	} larger = {{.size = sizeof larger, .exec = ex}, 1};
	TCHECK_EQ(weft_process_forward(p, WEFT_STDIN, a[0], &larger.o), -E2BIG);
	/* None of that changed anything. */
	TCHECK_EQ(weft_process_fd(p, WEFT_STDIN), in);
	TCHECK_EQ(weft_process_fd(p, WEFT_STDOUT), out);
	TCHECK(!(fcntl(a[0], F_GETFL) & O_NONBLOCK));
	TCHECK_EQ(weft_process_forward_wait(NULL, 0), -EINVAL);
	weft_op_t op = WEFT_OP_INIT;
	TCHECK_EQ(weft_process_forward_wait_step(NULL, 0, &op), -EINVAL);
	TCHECK_EQ(weft_process_forward_wait_step(p, 0, NULL), -EINVAL);
	/* A larger struct whose extra bytes are zero is fine; so is size 0. */
	larger.more = 0;
	TCHECK_EQ(weft_process_forward(p, WEFT_STDIN, a[0], &larger.o), 0);
	TCHECK_EQ(weft_process_forward(p, WEFT_STDIN, a[0], &larger.o), -EALREADY);
	TCHECK_EQ(weft_process_close(p, WEFT_STDOUT), 0);
	TCHECK_EQ(weft_process_forward(p, WEFT_STDOUT, a[1], &(weft_process_forward_opts_t){.exec = ex}),
		  -EBADF); /* closed */
	close(a[1]);
	TCHECK_EQ(weft_process_forward_wait(p, wt_hang_deadline()), 0);
	reap(p, 0);
	close(a[0]);
}

static void test_bad_arguments(void **state)
{
	(void)state;
	each_exec(bad_args_body, false);
}

/* ------------------------------------------------------------ custom executors */

/* An executor that accepts spawns and never runs them: each "ends" at once
 * with the result -ENOMEM, as a task that found no memory to start. */
static int nr_spawn(void *ctx, uint64_t *id, weft_fn_t fn, void *arg, const weft_exec_spawn_opts_t *o)
{
	(void)ctx, (void)fn, (void)arg, (void)o;
	if (id)
		*id = 1;
	return 0;
}

static int nr_wait(void *ctx, uint64_t id, void **result, weft_time_t deadline, weft_op_t *op)
{
	(void)ctx, (void)id, (void)deadline, (void)op;
	if (result)
		*result = (void *)(intptr_t)-ENOMEM;
	return 0;
}

static int nr_detach(void *ctx, uint64_t id)
{
	(void)ctx, (void)id;
	return 0;
}

static int nr_destroy(void *ctx)
{
	(void)ctx;
	return 0;
}

static void test_executor_that_never_runs(void **state)
{
	(void)state;
	atomic_store(&tcheck_failures, 0);
	weft_exec_ops_t ops = {.name = "never",
			       .caps = WEFT_EXEC_CAP_REAL_IO,
			       .spawn = nr_spawn,
			       .wait = nr_wait,
			       .detach = nr_detach,
			       .destroy = nr_destroy};
	weft_exec_t *never, *no_io;
	assert_int_equal(weft_exec_create(&never, &ops, NULL), 0);
	ops.caps = 0;
	assert_int_equal(weft_exec_create(&no_io, &ops, NULL), 0);
	int o[2];
	pipe_cloexec(o);
	weft_process_t *p =
		spawn((const char *const[]){"echo", "lost", NULL}, WEFT_STDIO_NULL, WEFT_STDIO_PIPE, WEFT_STDIO_NULL);
	TCHECK_EQ(fwd(p, WEFT_STDOUT, o[1], no_io), -ENOTSUP);
	TCHECK_EQ(fwd(p, WEFT_STDOUT, o[1], never), 0);
	close(o[1]);
	/* The waiter closes what the copier would have: our reader sees end of file. */
	TCHECK_EQ(weft_process_forward_wait(p, wt_hang_deadline()), -ENOMEM);
	char c;
	TCHECK_EQ(read(o[0], &c, 1), 0);
	close(o[0]);
	weft_process_wait(p, NULL, wt_hang_deadline()); /* echo may have died of SIGPIPE */
	TCHECK_EQ(weft_process_destroy(p), 0);
	assert_int_equal(weft_exec_destroy(never), 0);
	assert_int_equal(weft_exec_destroy(no_io), 0);
	/* A destroyed executor; no executor and no runtime. */
	pipe_cloexec(o);
	p = spawn(cat, WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, WEFT_STDIO_INHERIT);
	TCHECK_EQ(fwd(p, WEFT_STDIN, o[0], never), -EINVAL);
	TCHECK_EQ(fwd(p, WEFT_STDIN, o[0], NULL), -ESHUTDOWN);
	TCHECK_EQ(weft_process_forward(p, WEFT_STDIN, o[0], NULL), -ESHUTDOWN);
	TCHECK(weft_process_fd(p, WEFT_STDIN) >= 0);
	TCHECK_EQ(weft_process_destroy(p), 0);
	close(o[0]);
	close(o[1]);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

/* ------------------------------------------------------------ destroy while forwarding */

static void destroy_body(weft_exec_t *ex)
{
	/* Idle copiers: cat's stdin from a pipe the test keeps silent, its
	 * stdout into a pipe nobody reads. */
	int a[2], o[2];
	pipe_cloexec(a);
	pipe_cloexec(o);
	weft_process_t *p = spawn(cat, WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, WEFT_STDIO_PIPE);
	TCHECK_EQ(fwd(p, WEFT_STDIN, a[0], ex), 0);
	TCHECK_EQ(fwd(p, WEFT_STDOUT, o[1], ex), 0);
	TCHECK_EQ(fwd(p, WEFT_STDERR, o[1], ex), 0);
	TCHECK_EQ(weft_process_forward_wait(p, 0), -ETIMEDOUT);
	TCHECK_EQ(weft_process_destroy(p), 0);
	/* The copiers closed their ends when destroy returned: once ours is
	 * closed too, the reader sees end of file. */
	char c;
	TCHECK_EQ(fcntl(o[0], F_SETFL, O_NONBLOCK), 0);
	TCHECK_EQ(read(o[0], &c, 1), -1);
	TCHECK_EQ(errno, EAGAIN);
	close(o[1]);
	TCHECK_EQ(read(o[0], &c, 1), 0);
	close(a[0]);
	close(a[1]);
	close(o[0]);

	/* Busy copiers: /dev/zero through cat into /dev/null, both blocking
	 * copiers, streaming when destroy comes; and /dev/zero into a pipe
	 * nobody reads, the stdout copier waiting for room. */
	for (int round = 0; round < 2; round++) {
		int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC), sink = -1;
		if (round == 0)
			sink = open("/dev/null", O_WRONLY | O_CLOEXEC);
		else
			pipe_cloexec(o), sink = o[1];
		p = spawn(cat, WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, WEFT_STDIO_NULL);
		TCHECK_EQ(fwd(p, WEFT_STDIN, zero, ex), 0);
		TCHECK_EQ(fwd(p, WEFT_STDOUT, sink, ex), 0);
		TCHECK_EQ(weft_process_forward_wait(p, weft_deadline_in(5 * WEFT_MSEC)), -ETIMEDOUT);
		TCHECK_EQ(weft_process_destroy(p), 0);
		close(zero);
		close(sink);
		if (round == 1)
			close(o[0]);
	}
}

static void test_destroy_while_forwarding(void **state)
{
	(void)state;
	each_exec(destroy_body, true);
}

/* Destroy right after forwarding, over and over: the copiers may not have
 * started, may be setting up their first wait, or be streaming. */
static void destroy_at_once_body(weft_exec_t *ex)
{
	int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC), o[2];
	pipe_cloexec(o);
	TCHECK_EQ(fcntl(o[0], F_SETFL, O_NONBLOCK), 0);
	for (int i = 0; i < WT_SIZE(60, 20); i++) {
		weft_process_t *p = spawn(cat, WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, WEFT_STDIO_PIPE);
		TCHECK_EQ(fwd(p, WEFT_STDIN, zero, ex), 0);
		TCHECK_EQ(fwd(p, WEFT_STDOUT, o[1], ex), 0);
		if (i % 2)
			TCHECK_EQ(fwd(p, WEFT_STDERR, o[1], ex), 0);
		TCHECK_EQ(weft_process_destroy(p), 0);
		char buf[1 << 16];
		while (read(o[0], buf, sizeof buf) > 0) /* what cat got through: room for the next round */
			;
	}
	close(zero);
	close(o[0]);
	close(o[1]);
}

static void test_destroy_at_once(void **state)
{
	(void)state;
	each_exec(destroy_at_once_body, false);
}

/* Destroy from a caller that cannot wait for the copiers: they end on
 * their own, and close everything they had. */
struct held {
	weft_process_t *p;
	bool cancel_self;
};

static weft_step_t destroy_step(void *a, void **r)
{
	struct held *h = a;
	TCHECK_EQ(weft_process_destroy(h->p), 0);
	*r = NULL;
	return WEFT_STEP_DONE;
}

static void *destroy_cancelled(void *a)
{
	struct held *h = a;
	TCHECK_EQ(weft_cancel(weft_self()), 0);
	TCHECK_EQ(weft_process_destroy(h->p), 0);
	return NULL;
}

static void undrained_body(weft_exec_t *ex)
{
	TCHECK(weft_io_backend(NULL) != NULL); /* the poller the copiers' waits install, in the count */
	int base = wt_count_fds();
	for (int round = 0; round < 2; round++) {
		int a[2], o[2];
		pipe_cloexec(a);
		pipe_cloexec(o);
		struct held h = {spawn(cat, WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, WEFT_STDIO_NULL), round == 1};
		TCHECK_EQ(fwd(h.p, WEFT_STDIN, a[0], ex), 0);
		TCHECK_EQ(fwd(h.p, WEFT_STDOUT, o[1], ex), 0);
		close(a[0]);
		close(o[1]);
		weft_task_t t;
		TCHECK_EQ(round == 0 ? weft_spawn_step(&t, destroy_step, &h, NULL)
				     : weft_spawn(&t, destroy_cancelled, &h, NULL),
			  0);
		TCHECK_EQ(weft_join(t, NULL), 0);
		char c;
		TCHECK_EQ(read(o[0], &c, 1), 0); /* the stdout copier ends and closes its end */
		close(a[1]);
		close(o[0]);
		WT_WAIT_UNTIL(wt_count_fds() == base); /* and the stdin copier its own */
	}
}

static void test_destroy_that_cannot_wait(void **state)
{
	(void)state;
	each_exec(undrained_body, false);
}

/* ------------------------------------------------------------ the step form */

static long fwd_wait_call(wt_step_task *t, weft_op_t *op)
{
	return weft_process_forward_wait_step(t->ctx, t->deadline, op);
}

static void busy_check(wt_step_task *t)
{
	weft_op_t other = WEFT_OP_INIT;
	TCHECK_EQ(weft_process_forward_wait_step(t->ctx, WEFT_NEVER, &other), -EBUSY);
	t->busy_checks++;
}

static void step_body(weft_exec_t *ex)
{
	int a[2], o[2];
	pipe_cloexec(a);
	pipe_cloexec(o);
	weft_process_t *p = spawn(cat, WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, WEFT_STDIO_NULL);
	TCHECK_EQ(fwd(p, WEFT_STDIN, a[0], ex), 0);
	TCHECK_EQ(fwd(p, WEFT_STDOUT, o[1], ex), 0);
	close(a[0]);
	close(o[1]);
	pump drain;
	pump_start(&drain, drain_main, o[0], NULL, 0);
	weft_op_t op;
	wt_step_task t;
	wt_step_init(&t, fwd_wait_call, p, &op);

	/* a deadline that passes while registered */
	t.deadline = weft_deadline_in(10 * WEFT_MSEC);
	weft_task_t id = wt_step_start(&t);
	wt_step_until_done(&t);
	wt_step_join(id);
	TCHECK_EQ(t.result, -ETIMEDOUT);

	/* registered: another waiter is refused, the repeat before the end
	 * changes nothing; the input ends and the wait completes */
	t.deadline = WEFT_NEVER;
	t.busy = busy_check;
	t.yield = true;
	id = wt_step_start(&t);
	TCHECK_EQ(wt_step_event(&t), WT_EV_REG);
	TCHECK_EQ(weft_process_forward_wait(p, 0), -EBUSY);
	TCHECK_EQ(write(a[1], "step", 4), 4);
	close(a[1]);
	wt_step_until_done(&t);
	wt_step_join(id);
	TCHECK_EQ(t.result, 0);
	TCHECK_EQ(t.busy_checks, 2);
	TCHECK(pump_end(&drain, "step", 4));
	wt_step_fini(&t);
	TCHECK_EQ(weft_process_forward_wait(p, 0), 0);
	reap(p, 0);
}

static void test_step_form(void **state)
{
	(void)state;
	each_exec(step_body, true);
}

static weft_step_t blocking_form_step(void *a, void **r)
{
	TCHECK_EQ(weft_process_forward_wait(a, WEFT_NEVER), -EWOULDBLOCK);
	*r = NULL;
	return WEFT_STEP_DONE;
}

static void stackless_blocking_body(weft_exec_t *ex)
{
	int a[2];
	pipe_cloexec(a);
	weft_process_t *p = spawn(cat, WEFT_STDIO_PIPE, WEFT_STDIO_NULL, WEFT_STDIO_NULL);
	TCHECK_EQ(fwd(p, WEFT_STDIN, a[0], ex), 0);
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, blocking_form_step, p, NULL), 0);
	TCHECK_EQ(weft_join(t, NULL), 0);
	close(a[1]);
	TCHECK_EQ(weft_process_forward_wait(p, wt_hang_deadline()), 0);
	reap(p, 0);
	close(a[0]);
}

static void test_stackless_blocking_form(void **state)
{
	(void)state;
	each_exec(stackless_blocking_body, false);
}

int main(void)
{
	/* libuv opens a pipe for the whole process with its first loop and
	 * keeps it: open it before the tests count descriptors. */
	weft_exec_t *ex;
	if (weft_exec_create_uv(&ex, NULL) == 0)
		assert_int_equal(weft_exec_destroy(ex), 0);
	const struct CMUnitTest tests[] = {
		WT_PROC_TEST(test_round_trip_pipes),
		WT_PROC_TEST(test_round_trip_files),
		WT_PROC_TEST(test_stderr_and_one_sink),
		WT_PROC_TEST(test_header_then_forward),
		WT_PROC_TEST(test_child_stops_reading),
		WT_PROC_TEST(test_sink_errors),
		WT_PROC_TEST(test_deadline_then_success),
		WT_PROC_TEST(test_bad_arguments),
		WT_PROC_TEST(test_executor_that_never_runs),
		WT_PROC_TEST(test_destroy_while_forwarding),
		WT_PROC_TEST(test_destroy_at_once),
		WT_PROC_TEST(test_destroy_that_cannot_wait),
		WT_PROC_TEST(test_step_form),
		WT_PROC_TEST(test_stackless_blocking_form),
	};
	/* The copiers' waits park in the netpoller: both backends. */
	int failed = 0;
	const char *backends[] = {"epoll", "uring"};
	for (int b = 0; b < 2; b++) {
		setenv("WEFT_IO", backends[b], 1);
		failed += cmocka_run_group_tests_name(backends[b], tests, NULL, NULL);
	}
	return failed;
}
