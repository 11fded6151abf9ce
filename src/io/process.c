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
 *    it (weft_close, which wakes waiters of this runtime's poller).
 */
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

struct weft_process {
	pid_t pid;
	int pidfd;
	int fds[3]; /* parent ends; -1: not piped or closed */
	pthread_mutex_t mu;
	bool reaped;
	weft_exit_status_t status;
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

int weft_process_destroy(weft_process_t *p)
{
	if (!p)
		return -EINVAL;
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
	if (p->pidfd >= 0)
		weft_close(p->pidfd);
	pthread_mutex_destroy(&p->mu);
	free(p);
	return 0;
}
