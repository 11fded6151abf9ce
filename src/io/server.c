/* server.c - an accept loop that runs one task per connection.
 *
 * State (under mu, a plain mutex held for a few instructions, never across
 * a park): the list of live connections, their count, whether serve is
 * running. Waits (serve waiting for a connection slot, stop waiting for the
 * connections to end) use a wait queue: a waiter checks its condition under
 * mu and queues itself before releasing mu; whoever changes the state does
 * so under mu and wakes the queue after, so no change goes unseen.
 *
 * Stopping: stop sets `stopping`, then makes the listener look readable
 * (weft__io_kick). serve marks the listener's reports, then checks
 * `stopping`, before every accept; a kick that comes after the mark counts
 * as a report, so the wait after the accept returns at once: serve always
 * sees the flag.
 *
 * Lifetime: stop returns, and the owner may destroy the server and take
 * its descriptors to be gone, once every connection and serve have ended
 * (all_done). So each of them closes its descriptors before the state
 * change that all_done reads (nconns, serve_state), never after: a
 * connection's task takes it off the list, closes its fd, then drops
 * nconns; serve moves to SERVE_CLOSING (stop no longer kicks the
 * listener), closes the listener, then moves to SERVE_DONE. Stop shuts a
 * connection's fd down (at its deadline) only while the connection is on
 * the list, so it never touches a closed (or reused) descriptor. What a
 * connection task and serve still do after their state change - wake
 * stop's queue, drop their reference - touches only the server struct,
 * which is reference-counted (the owner, serve while it runs, every
 * connection task) and freed by the last reference.
 */
#include "io_impl.h"

#include <assert.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "../base/list.h"

typedef struct conn {
	struct conn *next, *prev;
	weft_server_t *srv;
	int fd;
	weft_task_t task; /* the task running it (0: a plain thread, below) */
	pthread_t thread; /* the thread running it, when the executor runs tasks on threads */
} conn;

struct weft_server {
	int lfd;
	weft_conn_fn_t fn;
	void *ctx;
	weft_server_opts_t opts;
	_Atomic int refs;
	_Atomic bool stopping;
	_Atomic bool stop_called;
	_Atomic int serve_state;      /* SERVE_* */
	_Atomic(weft_runtime_t *) rt; /* where serve runs: stop may come from a plain thread */
	_Atomic int nconns;
	_Atomic uint64_t accepted;
	pthread_mutex_t mu;
	conn *conns;   /* under mu */
	conn *stopper; /* under mu: the connection whose handler called stop */
	weft_waitq_t q;
};

enum {
	SERVE_NEVER,   /* serve not called: the listener is the owner's to close (destroy) */
	SERVE_RUNNING, /* stop kicks the listener */
	SERVE_CLOSING, /* serve is closing the listener */
	SERVE_DONE     /* the listener is closed; serve returns */
};

static void srv_unref(weft_server_t *s)
{
	if (atomic_fetch_sub(&s->refs, 1) == 1) {
		pthread_mutex_destroy(&s->mu);
		free(s);
	}
}

/* Wait on s->q until ok(s) holds (checked under mu) or the deadline. */
static int srv_wait(weft_server_t *s, bool (*ok)(weft_server_t *), weft_time_t deadline)
{
	for (;;) {
		weft_waitq_node_t n;
		pthread_mutex_lock(&s->mu);
		if (ok(s)) {
			pthread_mutex_unlock(&s->mu);
			return 0;
		}
		if (!weft_can_park()) { /* a stackless task: it cannot wait (opens no wait) */
			pthread_mutex_unlock(&s->mu);
			return -EWOULDBLOCK;
		}
		weft_waitq_lock(&s->q);
		weft_waitq_push(&s->q, &n);
		weft_waitq_unlock(&s->q);
		pthread_mutex_unlock(&s->mu);
		int r = weft_park(n.waker, deadline);
		if (r < 0) {
			weft_waitq_remove(&s->q, &n);
			return r;
		}
	}
}

static bool has_slot(weft_server_t *s)
{
	return atomic_load(&s->stopping) || atomic_load(&s->nconns) < s->opts.max_conns;
}

/* Every connection has ended but the stopper's own (its handler is inside
 * weft_server_stop and ends after it returns). Under mu. */
static bool all_done(weft_server_t *s)
{
	int st = atomic_load(&s->serve_state);
	return atomic_load(&s->nconns) == (s->stopper ? 1 : 0) && (st == SERVE_NEVER || st == SERVE_DONE);
}

/* The connection whose handler is the caller, if any. Under mu. */
static conn *own_conn(weft_server_t *s)
{
	weft_task_t self = weft_self();
	for (conn *c = s->conns; c; c = c->next)
		if (self ? c->task == self : (!c->task && pthread_equal(c->thread, pthread_self())))
			return c;
	return NULL;
}

int weft_server_create(weft_server_t **out, int lfd, weft_conn_fn_t fn, void *ctx, const weft_server_opts_t *opts)
{
	bool badf = lfd < 0 || fcntl(lfd, F_GETFD) < 0;
	if (badf || !out || !fn || (opts && opts->max_conns < 0)) {
		if (!badf)
			weft_close(lfd);
		return badf ? -EBADF : -EINVAL;
	}
	weft_server_t *s = calloc(1, sizeof *s);
	if (!s) {
		weft_close(lfd);
		return -ENOMEM;
	}
	s->lfd = lfd;
	s->fn = fn;
	s->ctx = ctx;
	if (opts)
		s->opts = *opts;
	atomic_init(&s->refs, 1);
	pthread_mutex_init(&s->mu, NULL);
	weft_waitq_init(&s->q);
	*out = s;
	return 0;
}

/* Take c off the server's list of connections (stop no longer shuts its fd
 * down), close the fd, then let it stop counting (stop may return). */
static void conn_end(weft_server_t *s, conn *c)
{
	pthread_mutex_lock(&s->mu);
	WEFT_LIST_UNLINK(s->conns, c, next, prev);
	pthread_mutex_unlock(&s->mu);
	weft_close(c->fd);
	pthread_mutex_lock(&s->mu);
	int was = atomic_fetch_sub(&s->nconns, 1);
	assert(was > 0);
	(void)was;
	pthread_mutex_unlock(&s->mu);
}

static void *conn_main(void *a)
{
	conn *c = a;
	weft_server_t *s = c->srv;
	pthread_mutex_lock(&s->mu);
	c->task = weft_self();
	c->thread = pthread_self();
	pthread_mutex_unlock(&s->mu);
	s->fn(c->fd, s->ctx);
	conn_end(s, c);
	free(c);
	weft_waitq_wake_all(&s->q, 0); /* s is still ours: our reference */
	srv_unref(s);
	return NULL;
}

/* Hand fd to a new task. 0, or a negative errno (fd closed). */
static int start_conn(weft_server_t *s, int fd)
{
	conn *c = malloc(sizeof *c);
	if (!c) {
		weft_close(fd);
		return -ENOMEM;
	}
	c->srv = s;
	c->fd = fd;
	c->task = 0;
	c->thread = (pthread_t)0;
	atomic_fetch_add(&s->refs, 1);
	pthread_mutex_lock(&s->mu);
	WEFT_LIST_PUSH(s->conns, c, next, prev);
	atomic_fetch_add(&s->nconns, 1);
	pthread_mutex_unlock(&s->mu);
	atomic_fetch_add_explicit(&s->accepted, 1, memory_order_relaxed);
	int r;
	if (s->opts.exec)
		r = weft_exec_spawn(s->opts.exec, NULL, conn_main, c,
				    &(weft_exec_spawn_opts_t){.size = sizeof(weft_exec_spawn_opts_t),
							      .name = "conn",
							      .stack_size = s->opts.stack_size});
	else
		r = weft_spawn(
			NULL, conn_main, c,
			&(weft_spawn_opts_t){.detached = true, .stack_size = s->opts.stack_size, .name = "conn"});
	if (r < 0) {
		conn_end(s, c);
		free(c);
		srv_unref(s);
	}
	return r;
}

/* Errors of accept(2) that concern one connection, not the listener. */
static bool transient(int e)
{
	return e == -ECONNABORTED || e == -EPROTO || e == -EPERM || e == -ENETDOWN || e == -ENOPROTOOPT ||
	       e == -EHOSTDOWN || e == -ENONET || e == -EHOSTUNREACH || e == -EOPNOTSUPP || e == -ENETUNREACH ||
	       e == -ETIMEDOUT;
}

/* Out of descriptors or memory: back off, keep serving what we have. */
static bool exhausted(int e)
{
	return e == -EMFILE || e == -ENFILE || e == -ENOBUFS || e == -ENOMEM || e == -EAGAIN;
}

int weft_server_serve(weft_server_t *s)
{
	if (!s)
		return -EINVAL;
	if (!weft_can_park())
		return -EWOULDBLOCK; /* it waits for connections: not in a stackless task */
	int expect = SERVE_NEVER;
	atomic_store(&s->rt, weft_runtime_current()); /* before state 1: stop reads it after */
	/* Registered before state 1: a registration resets the ready bits, so
	 * one made by the first wait could wipe a stop's kick. */
	if (atomic_load(&s->serve_state) != SERVE_NEVER)
		return -EBUSY;
	int reg = weft__io_own(s->lfd, 0); /* made non-blocking: accept4 below must not wait */
	io_call c;
	if (reg == 0)
		reg = weft__io_begin(&c, s->lfd, WEFT_NEVER, NULL, 0, 0);
	if (reg < 0)
		return reg;
	if (!atomic_compare_exchange_strong(&s->serve_state, &expect, SERVE_RUNNING))
		return -EBUSY;
	atomic_fetch_add(&s->refs, 1);
	int result = 0;
	weft_time_t backoff = 0;
	for (;;) {
		/* The mark before the flag: a stop's kick after it ends the
		 * wait below (see the top). */
		io_mark mark = weft__io_call_mark(&c);
		if (atomic_load(&s->stopping))
			break;
		if (s->opts.max_conns > 0 && atomic_load(&s->nconns) >= s->opts.max_conns) {
			int r = srv_wait(s, has_slot, WEFT_NEVER);
			if (r < 0) {
				result = r;
				break;
			}
			continue;
		}
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int e = fd < 0 ? -errno : 0;
		if (fd >= 0) {
			backoff = 0;
			int one =
				1; /* like Go: no Nagle delay on accepted TCP connections (fails harmlessly elsewhere) */
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			/* Not registered here: the connection's first wait registers
			 * it with the poller of the runtime its task runs in (an
			 * executor may use another runtime, which must also be the
			 * one whose weft_close drops the registration). */
			e = start_conn(s, fd);
			if (e == -ESHUTDOWN) {
				result = e;
				break;
			}
			if (e == 0)
				continue;
		}
		if (e == -EINTR || transient(e))
			continue;
		if (e == -EAGAIN && fd < 0) {
			int w = weft__io_wait(&c, POLLIN, &mark);
			if (w < 0 && w != -EBADF) {
				result = w;
				break;
			}
			continue;
		}
		if (exhausted(e)) {
			backoff = backoff ? (backoff * 2 > 100 * WEFT_MSEC ? 100 * WEFT_MSEC : backoff * 2) : WEFT_MSEC;
			int r = weft_sleep(backoff);
			if (r < 0) {
				result = r;
				break;
			}
			continue;
		}
		result = e; /* the listener itself failed (EBADF, EINVAL, ...) */
		break;
	}
	pthread_mutex_lock(&s->mu);
	atomic_store(&s->serve_state, SERVE_CLOSING); /* stop no longer kicks the listener */
	pthread_mutex_unlock(&s->mu);
	weft_close(s->lfd);
	pthread_mutex_lock(&s->mu);
	atomic_store(&s->serve_state, SERVE_DONE); /* stop may return */
	pthread_mutex_unlock(&s->mu);
	weft_waitq_wake_all(&s->q, 0); /* s is still ours: our reference */
	srv_unref(s);
	return result;
}

int weft_server_stop(weft_server_t *s, weft_time_t deadline)
{
	if (!s)
		return -EINVAL;
	if (atomic_exchange(&s->stop_called, true))
		return -EALREADY;
	pthread_mutex_lock(&s->mu);
	atomic_store(&s->stopping, true);
	s->stopper = own_conn(s); /* a handler stopping its own server: do not wait for itself */
	if (atomic_load(&s->serve_state) == SERVE_RUNNING)
		weft__io_kick(atomic_load(&s->rt), s->lfd,
			      POLLIN); /* serve closes lfd only after leaving RUNNING under mu */
	pthread_mutex_unlock(&s->mu);
	weft_waitq_wake_all(&s->q, 0);
	int r = srv_wait(s, all_done, deadline);
	if (r != -ETIMEDOUT)
		return r;
	pthread_mutex_lock(&s->mu);
	for (conn *c = s->conns; c; c = c->next)
		if (c != s->stopper)
			shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&s->mu);
	r = srv_wait(s, all_done, WEFT_NEVER);
	return r < 0 ? r : -ETIMEDOUT;
}

int weft_server_conns(const weft_server_t *s)
{
	return s ? atomic_load(&((weft_server_t *)s)->nconns) : -EINVAL;
}

uint64_t weft_server_accepted(const weft_server_t *s)
{
	return s ? atomic_load(&((weft_server_t *)s)->accepted) : 0;
}

int weft_server_destroy(weft_server_t *s)
{
	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->mu);
	int state = atomic_load(&s->serve_state);
	bool busy = state == SERVE_RUNNING || state == SERVE_CLOSING || atomic_load(&s->nconns) > 0;
	pthread_mutex_unlock(&s->mu);
	if (busy)
		return -EBUSY;
	if (state == SERVE_NEVER)
		weft_close(s->lfd); /* never served: the listener is still ours */
	srv_unref(s);
	return 0;
}
