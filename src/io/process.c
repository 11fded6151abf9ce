/* process.c - subprocesses: spawn with piped stdio, stream through the
 * pipes from tasks, wait on a pidfd, kill, reap.
 *
 * Pieces
 * ------
 * A weft_process holds the child's pid, a pidfd for it (pidfd_open; -1 on
 * kernels without one, then waiting polls waitid with a growing sleep), the
 * parent's ends of up to three pipes, and the reaping state under a mutex.
 *
 * Spawning: posix_spawnp, which in glibc runs the child with CLONE_VFORK and
 * returns exec's errno to the parent (so a missing command is -ENOENT here,
 * not a child exiting with 127). Every descriptor the parent creates is
 * O_CLOEXEC from birth (pipe2, open), so a concurrent spawn in another
 * thread never inherits it; the child ends are dup2'ed onto 0, 1, 2 (which
 * clears close-on-exec there) after being moved to numbers >= 3 so that
 * dup2 never maps a descriptor onto itself, and closefrom(3) in the child
 * drops everything else. The child's mask is emptied and its dispositions
 * reset, whatever the spawning worker or pool thread had blocked.
 *
 * Invariants
 * ----------
 *  - The child is reaped exactly once, under p->mu, by waitid with WNOHANG
 *    (wait) or blocking after SIGKILL (destroy, which is the last call on
 *    p). Once reaped, `reaped` stays true and the status never changes; kill
 *    checks `reaped` under the same mutex, so a signal never reaches a
 *    recycled pid (with a pidfd it could not anyway).
 *  - No task parks while holding p->mu: waitid runs with WNOHANG under it,
 *    and the waiting itself (weft_fd_wait on the pidfd) happens outside.
 *  - weft_process_wait_step waits first and reaps after: a repeat must
 *    finish its registration (on the pidfd, in the netpoller) before it
 *    may return anything, and a pidfd polls readable once the child has
 *    exited, reaped or not, so a first call on an exited child does not
 *    wait. Without a pidfd it naps: a wait of its own that only its
 *    deadline ends (1 ms, doubling to 50 ms, as the blocking form sleeps).
 *  - Each pipe end is owned by p until weft_process_close or destroy closes
 *    it (weft_close, which wakes waiters of this runtime's poller), or
 *    weft_process_forward hands it to a copier (p->fds[i] = -1 under p->mu).
 *
 * Forwarding
 * ----------
 * weft_process_forward starts a copier per slot: a task of the caller's
 * executor (or a coroutine of the current runtime) that reads its source
 * and writes its sink until the end. A copier owns its pipe end, a
 * duplicate of the caller's descriptor, a 64 KiB buffer and an epoll set
 * of its own: the stop eventfd, and each of its two descriptors that
 * epoll can wait on (a regular file cannot: then the copier is a
 * spawn_blocking task, and that side never says EAGAIN). Every wait is
 * weft_fd_wait on that set, which parks a coroutine and poll(2)s on a
 * thread: the same code runs on every executor and needs no capability.
 * The set holds the source (EPOLLIN) while the copier waits to read, and
 * the sink with no events (so only its errors: the child closed its
 * stdin, the caller's reader went away) or EPOLLOUT while it waits to
 * write; the source leaves the set then, or its hang-up would keep the
 * set ready. After each wake-up epoll_wait(0) says whether it was the stop
 * or the sink's error; anything else, the copier tries again.
 *
 * The pieces the copiers share live in a struct fwd, apart from p, which
 * they never touch: a reference count (p's, and one per copier until it
 * ends), the stop flag and eventfd, the first error. So destroy may end
 * while a copier is still finishing (a stackless or cancelled destroyer
 * cannot wait for it), and the last reference frees the struct.
 *
 * Waiters (forward_wait and destroy) learn of a copier's end by waiting for
 * its task's handle, not from the copier: an executor may end a task
 * without running it (out of memory, its runtime stopping, a pool backend
 * cancelling queued tasks at destroy), and then the waiter, seeing `ran`
 * still false, closes what the copier owned and drops its reference.
 * Invariants:
 *  - A copier's state goes IDLE -> LIVE (forward, once its task is
 *    spawned) -> DONE (a waiter collected its handle), under p->mu
 *    (destroy, the only call on p then, goes without). Its handle is
 *    waited for by one waiter at a time: f->waiter, the op of a registered
 *    _step wait or a token of a blocking one's frame, claimed under p->mu
 *    and kept while that op is registered (on f->reg's copier).
 *  - What a copier owns (its descriptors, buffer, interest flags) is
 *    forward's until the spawn, then the task's, then, once a waiter has
 *    the handle back and `ran` is false (the task ended without running),
 *    the waiter's: no two of them touch it at a time. The spawn and the
 *    handle's wait order those hand-overs, so `ran` may be relaxed.
 *  - f->refs counts p's reference and every copier whose resources are not
 *    closed yet; whoever closes them drops it, and frees f if it was the
 *    last (acq_rel: every use of f comes before the free).
 */
#include "../base/sized.h"
#include "io_impl.h"
#include <weft/time.h>

#include <assert.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define WEFT_HAVE_VALGRIND 1
#endif
#endif

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char **environ;

struct fwd;

struct weft_process {
	pid_t pid;
	int pidfd;
	int fds[3]; /* parent ends; -1: not piped, closed or forwarded */
	pthread_mutex_t mu;
	bool reaped;
	weft_exit_status_t status;
	struct fwd *fwd; /* under mu: set by the first weft_process_forward */
};

/* A descriptor >= 3 for fd (closing fd if it had to move), O_CLOEXEC. */
static int above_stdio(int fd)
{
	if (fd >= 3)
		return fd;
	int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	int e = errno;
	close(fd);
	errno = e;
	return moved;
}

#ifdef WEFT_HAVE_VALGRIND
/* Under Valgrind, posix_spawn cannot report exec's error. glibc runs the
 * child with CLONE_VM|CLONE_VFORK, and the child writes exec's errno into
 * the parent's memory; Valgrind cannot model a child that shares its
 * parent's memory and runs that clone as a fork, so the error is lost:
 * the spawn succeeds and the child exits with 127. There (only), the
 * parent makes the checks exec would make first - the working directory,
 * then the command, searched in PATH like execvp - so that a missing
 * command is still -ENOENT (or -EACCES) from weft_process_spawn, as io.h
 * says. */
static int can_exec(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	return S_ISREG(st.st_mode) && access(path, X_OK) == 0 ? 0 : -EACCES;
}

/* dir/name into buf (dir relative to cwd, if given and dir is relative). */
static int join_path(char *buf, size_t cap, const char *cwd, const char *dir, size_t dlen, const char *name)
{
	int n;
	if (cwd && (dlen == 0 || dir[0] != '/'))
		n = snprintf(buf, cap, "%s/%.*s%s%s", cwd, (int)dlen, dir, dlen ? "/" : "", name);
	else
		n = snprintf(buf, cap, "%.*s%s%s", (int)dlen, dir, dlen ? "/" : "", name);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int exec_precheck(const char *cmd, const char *cwd)
{
	char buf[PATH_MAX];
	if (cwd) {
		struct stat st;
		if (stat(cwd, &st) < 0)
			return -errno;
		if (!S_ISDIR(st.st_mode))
			return -ENOTDIR;
		if (access(cwd, X_OK) < 0)
			return -errno;
	}
	if (strchr(cmd, '/')) {
		if (cmd[0] == '/')
			return can_exec(cmd);
		int r = join_path(buf, sizeof buf, cwd, "", 0, cmd);
		return r < 0 ? r : can_exec(cwd ? buf : cmd);
	}
	const char *path = getenv("PATH");
	if (!path)
		path = "/bin:/usr/bin"; /* glibc's default */
	int err = -ENOENT;
	for (const char *d = path;;) {
		const char *end = strchrnul(d, ':');
		/* An empty entry is the (child's) current directory. */
		int r = join_path(buf, sizeof buf, cwd, end == d ? "." : d, end == d ? 1 : (size_t)(end - d), cmd);
		if (r == 0) {
			r = can_exec(buf);
			if (r == 0)
				return 0;
			if (r == -EACCES)
				err = -EACCES; /* found, not executable: execvp's answer unless found elsewhere */
		}
		if (!*end)
			return err;
		d = end + 1;
	}
}
#endif

/* Make the descriptors of stdio slot i: *parent (-1 if none) and *child. */
static int make_stdio(int i, int mode, int *parent, int *child)
{
	*parent = *child = -1;
	if (mode == WEFT_STDIO_INHERIT)
		return 0;
	if (mode == WEFT_STDIO_NULL) {
		*child = open("/dev/null", O_RDWR | O_CLOEXEC);
	} else {
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0)
			return -errno;
		*parent = i == WEFT_STDIN ? p[1] : p[0];
		*child = i == WEFT_STDIN ? p[0] : p[1];
		if (fcntl(*parent, F_SETFL, O_NONBLOCK) < 0) {
			int e = -errno;
			close(p[0]);
			close(p[1]);
			*parent = *child = -1;
			return e;
		}
	}
	if (*child >= 0)
		*child = above_stdio(*child);
	if (*child < 0) {
		int e = -errno;
		if (*parent >= 0)
			close(*parent);
		*parent = -1;
		return e;
	}
	return 0;
}

int weft_process_spawn(weft_process_t **out, const char *const *argv, const weft_process_opts_t *opts)
{
	if (!out || !argv || !argv[0] || !argv[0][0])
		return -EINVAL;
	*out = NULL;
	weft_process_opts_t none = {0};
	if (!opts)
		opts = &none;
	for (int i = 0; i < 3; i++)
		if (opts->stdio[i] < WEFT_STDIO_INHERIT || opts->stdio[i] > WEFT_STDIO_NULL)
			return -EINVAL;
	if (weft__io_sim())
		return -ENOTSUP; /* a child runs on the OS scheduler's time (sim.c) */
#ifdef WEFT_HAVE_VALGRIND
	if (RUNNING_ON_VALGRIND) {
		int r = exec_precheck(argv[0], opts->cwd);
		if (r < 0)
			return r;
	}
#endif
	struct weft_process *p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	p->pidfd = -1;
	p->fds[0] = p->fds[1] = p->fds[2] = -1; /* slots not reached on an error stay unowned */
	int child[3] = {-1, -1, -1};
	int e = 0;
	for (int i = 0; i < 3 && !e; i++)
		e = make_stdio(i, opts->stdio[i], &p->fds[i], &child[i]);
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	bool fa_ok = false, attr_ok = false;
	if (!e)
		e = -posix_spawn_file_actions_init(&fa);
	fa_ok = !e;
	if (!e)
		e = -posix_spawnattr_init(&attr);
	attr_ok = fa_ok && !e;
	for (int i = 0; i < 3 && !e; i++)
		if (child[i] >= 0)
			e = -posix_spawn_file_actions_adddup2(&fa, child[i], i);
	if (!e && opts->cwd)
		e = -posix_spawn_file_actions_addchdir_np(&fa, opts->cwd);
	if (!e)
		e = -posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	if (!e) {
		sigset_t empty, all;
		sigemptyset(&empty);
		sigfillset(&all);
		short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
		if (opts->new_group)
			flags |= POSIX_SPAWN_SETPGROUP;
		e = -posix_spawnattr_setsigmask(&attr, &empty);
		if (!e)
			e = -posix_spawnattr_setsigdefault(&attr, &all);
		if (!e)
			e = -posix_spawnattr_setpgroup(&attr, 0);
		if (!e)
			e = -posix_spawnattr_setflags(&attr, flags);
	}
	if (!e) {
		char *const *envp = opts->env ? (char *const *)opts->env : environ;
		e = -posix_spawnp(&p->pid, argv[0], fa_ok ? &fa : NULL, &attr, (char *const *)argv, envp);
	}
	if (attr_ok)
		posix_spawnattr_destroy(&attr);
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	for (int i = 0; i < 3; i++)
		if (child[i] >= 0)
			close(child[i]);
	if (e) {
		for (int i = 0; i < 3; i++)
			if (p->fds[i] >= 0)
				close(p->fds[i]);
		free(p);
		return e;
	}
	/* Without a pidfd (old kernel, or no descriptor left) waiting polls. */
	p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	if (p->pidfd < 0)
		p->pidfd = -1;
	pthread_mutex_init(&p->mu, NULL);
	*out = p;
	return 0;
}

int weft_process_pid(const weft_process_t *p)
{
	return p ? p->pid : -EINVAL;
}

int weft_process_fd(const weft_process_t *p, int which)
{
	if (!p || which < WEFT_STDIN || which > WEFT_STDERR)
		return -EINVAL;
	return p->fds[which] >= 0 ? p->fds[which] : -EBADF;
}

ssize_t weft_process_write(weft_process_t *p, const void *buf, size_t len, weft_time_t deadline)
{
	if (!p || (!buf && len > 0) || len > (size_t)SSIZE_MAX)
		return -EINVAL;
	int fd = p->fds[WEFT_STDIN];
	if (fd < 0)
		return -EBADF;
	size_t done = 0;
	while (done < len) {
		/* A child that exits early gives -EPIPE, not SIGPIPE. */
		ssize_t n = IO_NOSIGPIPE(write(fd, (const char *)buf + done, len - done));
		if (n >= 0) {
			done += (size_t)n;
			continue;
		}
		int e = errno;
		if (e == EINTR)
			continue;
		if (e == EAGAIN) {
			int r = weft_fd_wait(fd, POLLOUT, deadline);
			if (r >= 0)
				continue;
			e = -r;
		}
		return done ? (ssize_t)done : -e;
	}
	return (ssize_t)done;
}

ssize_t weft_process_read(weft_process_t *p, int which, void *buf, size_t len, weft_time_t deadline)
{
	if (!p || (which != WEFT_STDOUT && which != WEFT_STDERR) || (!buf && len > 0) || len > (size_t)SSIZE_MAX)
		return -EINVAL;
	int fd = p->fds[which];
	if (fd < 0)
		return -EBADF;
	for (;;) {
		ssize_t n = read(fd, buf, len);
		if (n >= 0)
			return n;
		int e = errno;
		if (e == EINTR)
			continue;
		if (e != EAGAIN)
			return -e;
		int r = weft_fd_wait(fd, POLLIN, deadline);
		if (r < 0)
			return r;
	}
}

int weft_process_close(weft_process_t *p, int which)
{
	if (!p || which < WEFT_STDIN || which > WEFT_STDERR)
		return -EINVAL;
	int fd = p->fds[which];
	if (fd < 0)
		return -EBADF;
	p->fds[which] = -1;
	return weft_close(fd);
}

/* Under p->mu: reap the child if it has ended (or, with `block`, once it
 * ends). 0 reaped (now or before), -EAGAIN still running, -ECHILD. */
static int try_reap(struct weft_process *p, bool block)
{
	if (p->reaped)
		return 0;
	for (;;) {
		siginfo_t si = {0};
		int opts = WEXITED | (block ? 0 : WNOHANG);
		int r = p->pidfd >= 0 ? waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, opts)
				      : waitid(P_PID, (id_t)p->pid, &si, opts);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (si.si_pid == 0)
			return -EAGAIN;
		p->reaped = true;
		if (si.si_code == CLD_EXITED)
			p->status = (weft_exit_status_t){.code = si.si_status, .signal = 0};
		else
			p->status = (weft_exit_status_t){.code = -1, .signal = si.si_status};
		return 0;
	}
}

/* Reap the child if it has ended: 0 (with *st, st may be NULL), -EAGAIN
 * (still running), -ECHILD. */
static int reap_now(struct weft_process *p, weft_exit_status_t *st)
{
	pthread_mutex_lock(&p->mu);
	int e = try_reap(p, false);
	if (e == 0 && st)
		*st = p->status;
	pthread_mutex_unlock(&p->mu);
	return e;
}

#define NAP_FIRST WEFT_MSEC
#define NAP_MAX (50 * WEFT_MSEC)

int weft_process_wait(weft_process_t *p, weft_exit_status_t *st, weft_time_t deadline)
{
	if (!p)
		return -EINVAL;
	weft_time_t nap = NAP_FIRST;
	for (;;) {
		int e = reap_now(p, st);
		if (e != -EAGAIN)
			return e;
		if (p->pidfd >= 0) {
			int r = weft_fd_wait(p->pidfd, POLLIN, deadline);
			if (r < 0)
				return r;
			continue;
		}
		weft_time_t now = weft_now();
		if (now >= deadline)
			return -ETIMEDOUT;
		int r = weft_sleep(deadline - now < nap ? deadline - now : nap);
		if (r == -ECANCELED)
			return r;
		if (nap < NAP_MAX)
			nap *= 2;
	}
}

/* weft_process_wait_step without a pidfd, in a stackless task: a nap is a
 * wait of the task's own, registered in op, that its deadline ends. */
typedef struct nap_op {
	uint8_t call;
	weft_time_t nap; /* the next nap */
} nap_op;
_Static_assert(sizeof(nap_op) <= 48, "an io op is at most 48 bytes (but the netpoller's)");
_Static_assert(sizeof(nap_op) <= sizeof(((weft_op_t *)0)->opaque), "weft_op_t too small (its obj is the protocol's)");
_Static_assert(_Alignof(nap_op) <= _Alignof(weft_op_t), "weft_op_t under-aligned");
_Static_assert(offsetof(nap_op, call) == 0, "an op's first byte is its call's id");

static int nap_wait_step(struct weft_process *p, weft_exit_status_t *st, weft_time_t deadline, weft_op_t *op)
{
	int b = weft_step_begin(op, WEFT__IO_PROCESS_NAP_STEP, p);
	if (b < 0)
		return b;
	if (b == WEFT_STEP_BLOCKS)
		return weft_process_wait(p, st, deadline);
	nap_op *o = (nap_op *)op;
	if (b == 0) {
		o->nap = NAP_FIRST;
	} else {
		/* Only its deadline ends a nap: -ETIMEDOUT (the nap's, or the
		 * call's), or a cancellation. */
		int r = weft_park_result();
		if (r < 0 && r != -ETIMEDOUT)
			return r;
	}
	int e = reap_now(p, st);
	if (e != -EAGAIN)
		return e;
	weft_time_t now = weft_now();
	if (now >= deadline)
		return -ETIMEDOUT;
	weft_waker_t w = weft_park_prepare();
	assert(w.parker != NULL); /* weft_step_begin let the task open a wait */
	e = weft_park_deadline(w, deadline - now < o->nap ? deadline : now + o->nap);
	if (e)
		return e;
	if (o->nap < NAP_MAX)
		o->nap *= 2;
	e = weft_step_register(op);
	assert(e == -EINPROGRESS);
	return e;
}

int weft_process_wait_step(weft_process_t *p, weft_exit_status_t *st, weft_time_t deadline, weft_op_t *op)
{
	if (!p || !op)
		return -EINVAL;
	if (p->pidfd < 0)
		return nap_wait_step(p, st, deadline, op);
	for (;;) {
		/* First: a repeat finishes its wait here. */
		int r = weft__io_fd_wait(p->pidfd, POLLIN, deadline, op, WEFT__IO_PROCESS_WAIT_STEP);
		if (r < 0)
			return r;
		int e = reap_now(p, st);
		if (e != -EAGAIN)
			return e;
	}
}

ssize_t weft_process_write_step(weft_process_t *p, const void *buf, size_t len, weft_time_t deadline, weft_op_t *op)
{
	if (!p || (!buf && len > 0) || len > (size_t)SSIZE_MAX || !op)
		return -EINVAL;
	int fd = p->fds[WEFT_STDIN];
	if (fd < 0)
		return -EBADF;
	size_t done = 0;
	ssize_t r = weft_write_all_step(fd, buf, len, deadline, &done, op);
	/* As weft_process_write: stopped after some bytes, the count. */
	return r < 0 && r != -EINPROGRESS && done > 0 ? (ssize_t)done : r;
}

ssize_t weft_process_read_step(weft_process_t *p, int which, void *buf, size_t len, weft_time_t deadline, weft_op_t *op)
{
	if (!p || (which != WEFT_STDOUT && which != WEFT_STDERR) || (!buf && len > 0) || len > (size_t)SSIZE_MAX || !op)
		return -EINVAL;
	int fd = p->fds[which];
	if (fd < 0)
		return -EBADF;
	return weft_read_step(fd, buf, len, deadline, op);
}

int weft_process_kill(weft_process_t *p, int sig)
{
	if (!p || sig < 0 || sig >= NSIG)
		return -EINVAL;
	int e = 0;
	pthread_mutex_lock(&p->mu);
	if (p->reaped)
		e = -ESRCH;
	else if ((p->pidfd >= 0 ? syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) : kill(p->pid, sig)) < 0)
		e = -errno;
	pthread_mutex_unlock(&p->mu);
	return e;
}

static void *reap_job(void *a)
{
	struct weft_process *p = a;
	pthread_mutex_lock(&p->mu);
	try_reap(p, true);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* ------------------------------------------------------------ forwarding */

#define FWD_BUF (64 * 1024)

enum { EV_STOP, EV_SRC, EV_DST }; /* what a copier's epoll set reports */
enum { C_IDLE, C_LIVE, C_DONE };  /* a copier's state, as its waiters see it */

typedef struct copier {
	/* weft_process_forward's, then the running copier's: */
	struct fwd *f;
	int which;		 /* WEFT_STDIN, WEFT_STDOUT, WEFT_STDERR */
	int src, dst;		 /* the pipe end and the duplicate of the caller's fd */
	int ep;			 /* the epoll set: the stop eventfd, src and dst where epoll can wait */
	bool src_poll, dst_poll; /* epoll can wait on src, on dst */
	bool src_in;		 /* src is in the set (waiting to read) */
	bool dst_out;		 /* dst is in the set with EPOLLOUT (waiting to write), else with no events */
	char *buf;
	_Atomic bool ran; /* the copier started (relaxed: its waiter reads it after the task's end) */
	/* The waiters' (under p->mu): */
	int state;	 /* C_* */
	weft_exec_t *ex; /* its executor; NULL: a weft task, t.id */
	weft_exec_task_t t;
} copier;

struct fwd {
	_Atomic int refs;      /* p's, and one per copier whose resources are open */
	_Atomic bool stopping; /* set by destroy, with a write to stopfd */
	_Atomic int err;       /* the first copier error, 0 if none */
	int stopfd;	       /* an eventfd in every copier's set */
	const void *waiter;    /* under p->mu: the forward wait in progress, NULL if none */
	int reg;	       /* under p->mu: the copier that wait's op is registered on, -1 if none */
	copier c[3];
};

static void fwd_unref(struct fwd *f)
{
	int was = atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel);
	assert(was > 0);
	if (was == 1) {
		close(f->stopfd);
		free(f);
	}
}

static void fwd_fail(struct fwd *f, int e)
{
	int none = 0;
	atomic_compare_exchange_strong(&f->err, &none, e);
}

/* Close what c owns: its end, or (a task never ran) its waiter's. */
static void copier_close(copier *c)
{
	weft_close(c->ep);
	weft_close(c->src);
	weft_close(c->dst);
	free(c->buf);
	c->ep = c->src = c->dst = -1;
	c->buf = NULL;
}

/* Wait until c may go on: src readable, or (writing) dst writable. 0: try
 * again; -ECANCELED: stopping (or the task was cancelled); -EPIPE: dst
 * reported an error or a hang-up while c waited to read. */
static int copier_wait(copier *c, bool writing)
{
	if (writing ? !c->dst_poll : !c->src_poll)
		return -EAGAIN; /* a descriptor epoll cannot wait on said EAGAIN (nothing will say when to retry) */
	if (c->src_poll && c->src_in == writing) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = EV_SRC};
		if (epoll_ctl(c->ep, writing ? EPOLL_CTL_DEL : EPOLL_CTL_ADD, c->src, &ev) < 0)
			return -errno;
		c->src_in = !writing;
	}
	if (c->dst_poll && c->dst_out != writing) {
		struct epoll_event ev = {.events = writing ? EPOLLOUT : 0, .data.u32 = EV_DST};
		if (epoll_ctl(c->ep, EPOLL_CTL_MOD, c->dst, &ev) < 0)
			return -errno;
		c->dst_out = writing;
	}
	int r = weft_fd_wait(c->ep, POLLIN, WEFT_NEVER);
	if (r < 0)
		return r;
	struct epoll_event ev[3];
	int n = epoll_wait(c->ep, ev, 3, 0);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		if (ev[i].data.u32 == EV_STOP)
			return -ECANCELED;
		if (ev[i].data.u32 == EV_DST && !writing && (ev[i].events & (EPOLLERR | EPOLLHUP)))
			return -EPIPE;
	}
	return 0;
}

/* Copy src to dst until end of file (0), an error, or the stop. The flag
 * is read relaxed: it only saves a wait, the eventfd is what wakes. */
static int copy(copier *c)
{
	for (;;) {
		if (atomic_load_explicit(&c->f->stopping, memory_order_relaxed))
			return -ECANCELED;
		ssize_t n = read(c->src, c->buf, FWD_BUF);
		if (n == 0)
			return 0;
		if (n < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			if (e != EAGAIN)
				return -e;
			int r = copier_wait(c, false);
			if (r < 0)
				return r;
			continue;
		}
		for (ssize_t off = 0; off < n;) {
			if (atomic_load_explicit(&c->f->stopping, memory_order_relaxed))
				return -ECANCELED;
			ssize_t m = IO_NOSIGPIPE(write(c->dst, c->buf + off, (size_t)(n - off)));
			if (m >= 0) {
				off += m;
				continue;
			}
			int e = errno;
			if (e == EINTR)
				continue;
			if (e != EAGAIN)
				return -e;
			int r = copier_wait(c, true);
			if (r < 0)
				return r;
		}
	}
}

static void *copy_main(void *a)
{
	copier *c = a;
	struct fwd *f = c->f;
	bool twice = atomic_exchange_explicit(&c->ran, true, memory_order_relaxed);
	assert(!twice); /* one task per copier */
	(void)twice;
	int e = copy(c);
	if (e == -EPIPE && c->which == WEFT_STDIN)
		e = 0; /* the child stopped reading */
	if (e == -ECANCELED && !atomic_load(&f->stopping))
		e = -ESHUTDOWN; /* not our stop: the task was cancelled (its executor or runtime is ending) */
	if (e < 0 && e != -ECANCELED)
		fwd_fail(f, e);
	copier_close(c);
	fwd_unref(f); /* c may be gone now */
	return (void *)(intptr_t)e;
}

/* A copier that must not block a worker, without an executor: as the weft
 * executor's spawn_blocking does. */
static void *copy_blocking_main(void *a)
{
	void *r;
	int e = weft_blocking(copy_main, a, &r);
	return e < 0 ? (void *)(intptr_t)e : r;
}

static int copier_spawn(copier *c, weft_exec_t *ex)
{
	static const char *const names[] = {"fwd-stdin", "fwd-stdout", "fwd-stderr"};
	bool blocking = !c->src_poll || !c->dst_poll;
	c->ex = ex;
	if (ex) {
		const weft_exec_spawn_opts_t o = {.size = sizeof o, .name = names[c->which]};
		return blocking ? weft_exec_spawn_blocking(ex, &c->t, copy_main, c, &o)
				: weft_exec_spawn(ex, &c->t, copy_main, c, &o);
	}
	weft_task_t t = 0;
	int r = weft_spawn(&t, blocking ? copy_blocking_main : copy_main, c,
			   &(weft_spawn_opts_t){.name = names[c->which]});
	c->t = (weft_exec_task_t){t, 0};
	return r;
}

/* Wait for c's task (the blocking form with op NULL). */
static int copier_join(copier *c, void **res, weft_time_t deadline, weft_op_t *op)
{
	if (c->ex)
		return op ? weft_exec_wait_step(c->ex, c->t, res, deadline, op)
			  : weft_exec_wait_until(c->ex, c->t, res, deadline);
	return op ? weft_join_step(c->t.id, res, deadline, op) : weft_join_until(c->t.id, res, deadline);
}

/* Under p->mu (or in destroy, the only call on p): c's task has ended with
 * result res. If it never ran, what it owned is the waiter's to close. */
static void copier_ended(struct fwd *f, copier *c, void *res)
{
	assert(c->state == C_LIVE);
	c->state = C_DONE;
	if (atomic_load_explicit(&c->ran, memory_order_relaxed))
		return;
	intptr_t v = (intptr_t)res;
	fwd_fail(f, v < 0 && v >= -4095 && v != -ECANCELED ? (int)v : -ESHUTDOWN);
	copier_close(c);
	fwd_unref(f); /* c's reference; p's keeps f */
}

/* Add fd to c's set. 0; -EPERM: epoll cannot wait on fd. */
static int ep_add(int ep, int fd, uint32_t events, uint32_t tag)
{
	struct epoll_event ev = {.events = events, .data.u32 = tag};
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

/* Under p->mu: set c up for slot `which` (its pipe end `pipe`, the
 * caller's fd) and start its task. On error nothing has changed. */
static int copier_start(struct fwd *f, copier *c, int which, int pipe, int fd, weft_exec_t *ex)
{
	assert(c->state == C_IDLE);
	bool in = which == WEFT_STDIN;
	int mine = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (mine < 0)
		return -errno;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	char *buf = ep >= 0 ? malloc(FWD_BUF) : NULL;
	int e = ep < 0 ? -errno : !buf ? -ENOMEM : 0;
	c->f = f;
	c->which = which;
	c->src = in ? mine : pipe;
	c->dst = in ? pipe : mine;
	c->ep = ep;
	c->buf = buf;
	c->src_in = true;
	c->dst_out = false;
	atomic_init(&c->ran, false);
	if (!e)
		e = ep_add(ep, f->stopfd, EPOLLIN, EV_STOP);
	int rs = e ? e : ep_add(ep, c->src, EPOLLIN, EV_SRC);
	int rd = e ? e : ep_add(ep, c->dst, 0, EV_DST);
	c->src_poll = rs == 0;
	c->dst_poll = rd == 0;
	if (!e)
		e = rs == -EPERM ? rd : rs < 0 ? rs : rd == -EPERM ? 0 : rd;
	assert(e || (in ? c->dst_poll : c->src_poll)); /* epoll waits on a pipe */
	/* The caller's description must not block where epoll says when to
	 * retry (io.h); it is set back if the start fails. */
	int fl = e ? 0 : fcntl(mine, F_GETFL);
	bool set_nb = !e && (in ? c->src_poll : c->dst_poll) && fl >= 0 && !(fl & O_NONBLOCK);
	if (set_nb && fcntl(mine, F_SETFL, fl | O_NONBLOCK) < 0)
		e = -errno, set_nb = false;
	if (!e) {
		atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed); /* before the copier may drop it */
		e = copier_spawn(c, ex);
		if (e)
			atomic_fetch_sub_explicit(&f->refs, 1, memory_order_relaxed);
	}
	if (e) {
		if (set_nb)
			fcntl(mine, F_SETFL, fl);
		if (ep >= 0)
			close(ep);
		close(mine);
		free(buf);
		c->ep = c->src = c->dst = -1;
		c->buf = NULL;
		return e;
	}
	c->state = C_LIVE;
	return 0;
}

int weft_process_forward(weft_process_t *p, int which, int fd, const weft_process_forward_opts_t *opts)
{
	if (!p || which < WEFT_STDIN || which > WEFT_STDERR)
		return -EINVAL;
	weft_process_forward_opts_t o;
	int oe = weft__opts_in(&o, sizeof o, opts, opts ? opts->size : 0);
	if (oe < 0)
		return oe;
	if (o.exec) {
		int caps = weft_exec_caps(o.exec);
		if (caps < 0)
			return -EINVAL;
		if (!(caps & WEFT_EXEC_CAP_REAL_IO))
			return -ENOTSUP;
	}
	int fl = fd < 0 ? -1 : fcntl(fd, F_GETFL);
	if (fl < 0 || (fl & O_PATH) || (fl & O_ACCMODE) == (which == WEFT_STDIN ? O_WRONLY : O_RDONLY))
		return -EBADF;
	pthread_mutex_lock(&p->mu);
	int e = 0;
	if (!p->fwd) {
		struct fwd *f = calloc(1, sizeof *f);
		int efd = f ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) : -1;
		if (efd < 0) {
			e = f ? -errno : -ENOMEM;
			free(f);
		} else {
			f->stopfd = efd;
			f->reg = -1;
			atomic_init(&f->refs, 1);
			p->fwd = f;
		}
	}
	if (!e && p->fwd->c[which].state != C_IDLE)
		e = -EALREADY;
	else if (!e && p->fds[which] < 0)
		e = -EBADF;
	if (!e)
		e = copier_start(p->fwd, &p->fwd->c[which], which, p->fds[which], fd, o.exec);
	if (!e)
		p->fds[which] = -1;
	pthread_mutex_unlock(&p->mu);
	return e;
}

/* Wait for every copier's task in turn; op NULL: the blocking form. */
static int fwd_wait(weft_process_t *p, weft_time_t deadline, weft_op_t *op)
{
	char frame;
	const void *me = op ? (const void *)op : (const void *)&frame;
	pthread_mutex_lock(&p->mu);
	struct fwd *f = p->fwd;
	int e = 0;
	if (f && f->waiter && f->waiter != me) {
		e = -EBUSY;
	} else if (f) {
		f->waiter = me;
		for (;;) {
			/* A repeat goes on with the copier its op is registered on. */
			int i = f->reg;
			f->reg = -1;
			for (int k = 0; i < 0 && k < 3; k++)
				if (f->c[k].state == C_LIVE)
					i = k;
			if (i < 0) {
				e = atomic_load(&f->err);
				break;
			}
			copier *c = &f->c[i];
			pthread_mutex_unlock(&p->mu); /* c stays LIVE: only its waiter, us, ends that */
			void *res = NULL;
			int r = copier_join(c, &res, deadline, op);
			pthread_mutex_lock(&p->mu);
			assert(f->waiter == me && c->state == C_LIVE);
			if (r == -EINPROGRESS) {
				f->reg = i; /* the wait stays ours until the repeat completes */
				pthread_mutex_unlock(&p->mu);
				return r;
			}
			if (r < 0) {
				e = r == -EPERM ? -EWOULDBLOCK : r;
				break;
			}
			copier_ended(f, c, res);
		}
		f->waiter = NULL;
	}
	pthread_mutex_unlock(&p->mu);
	return e;
}

int weft_process_forward_wait(weft_process_t *p, weft_time_t deadline)
{
	return p ? fwd_wait(p, deadline, NULL) : -EINVAL;
}

int weft_process_forward_wait_step(weft_process_t *p, weft_time_t deadline, weft_op_t *op)
{
	return p && op ? fwd_wait(p, deadline, op) : -EINVAL;
}

/* destroy: make every copier end at its next step. */
static void fwd_stop(struct fwd *f)
{
	atomic_store(&f->stopping, true);
	uint64_t one = 1;
	ssize_t n = write(f->stopfd, &one, sizeof one);
	assert(n == (ssize_t)sizeof one); /* a counter this far from its limit */
	(void)n;
}

/* destroy: wait for the copiers (stopped), or leave those it cannot wait
 * for to end on their own, and drop p's reference. */
static void fwd_end(struct fwd *f)
{
	for (int i = 0; i < 3; i++) {
		copier *c = &f->c[i];
		if (c->state != C_LIVE)
			continue;
		void *res = NULL;
		if (copier_join(c, &res, WEFT_NEVER, NULL) == 0)
			copier_ended(f, c, res);
		else if (c->ex) /* a stackless or cancelled destroyer */
			weft_exec_detach(c->ex, c->t);
		else
			weft_detach(c->t.id);
	}
	fwd_unref(f);
}

int weft_process_destroy(weft_process_t *p)
{
	if (!p)
		return -EINVAL;
	if (p->fwd)
		fwd_stop(p->fwd);
	for (int i = 0; i < 3; i++)
		if (p->fds[i] >= 0)
			weft_close(p->fds[i]);
	pthread_mutex_lock(&p->mu);
	bool running = try_reap(p, false) == -EAGAIN;
	if (running) {
		if (p->pidfd >= 0)
			syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
		else
			kill(p->pid, SIGKILL);
	}
	pthread_mutex_unlock(&p->mu);
	/* A killed child ends at once, but its exit still takes a moment: wait
	 * on the pool, or right here if the task is already cancelled (then
	 * weft_blocking does not run the job) or stackless. */
	if (running && weft_blocking(reap_job, p, NULL) != 0)
		reap_job(p); /* does nothing if the pool reaped it */
	if (p->fwd)
		fwd_end(p->fwd);
	if (p->pidfd >= 0)
		weft_close(p->pidfd);
	pthread_mutex_destroy(&p->mu);
	free(p);
	return 0;
}
