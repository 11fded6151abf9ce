/* io_impl.h - what the netpoller (poll.c) and the blocking pool
 * (blocking.c) share with the rest of the io module (sockets, servers,
 * files, processes). */
#ifndef WEFT_IO_IMPL_H
#define WEFT_IO_IMPL_H

#include <weft/io.h>
#include <weft/time.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

/* A task waiting on a descriptor: linked on its slot while parked. 40
 * bytes: a stackless task's waiter lives in its weft_op_t (56 of its 64
 * bytes are the module's, see poll.c), next to the call's progress. */
typedef struct io_waiter {
	struct io_waiter *next, *prev;
	weft_waker_t waker;
	int status;	/* the ready mask or -EBADF, set before the unpark */
	uint16_t match; /* readiness bits that end this wait (all poll bits fit in 16) */
	bool linked;
	uint8_t owner; /* the waiter's owner's (a stackless op keeps its state here: poll.c) */
} io_waiter;

/* Per-descriptor state (see the design comment in poll.c). */
typedef struct io_slot {
	_Atomic uint32_t lock;
	_Atomic uint32_t ready;	     /* readiness seen by the poller and not yet consumed */
	_Atomic uint32_t gen;	     /* bumped at every (re)registration and close */
	_Atomic uint32_t flags;	     /* IO_REG, IO_NOTSOCK, IO_DRAINED */
	_Atomic uint32_t seen;	     /* POLLRDHUP/POLLHUP/POLLERR ever reported (never consumed) */
	_Atomic uint32_t in_edges;   /* reports that end a read wait, so far (bumped under lock) */
	_Atomic uint32_t out_edges;  /* reports that end a write wait, so far (bumped under lock) */
	_Atomic uint32_t drained_at; /* in_edges before the read that set IO_DRAINED */
	io_waiter *head;	     /* under lock */
	/* io_uring only, under lock: */
	uint32_t armed;		/* directions (POLLIN, POLLOUT) with a poll in flight */
	uint32_t close_pending; /* polls weft_close is waiting to see cancelled */
	uint32_t close_gen;	/* ... of this generation */
	io_waiter *closer;	/* that weft_close */
} io_slot;

#define IO_REG 1u     /* registered with the backend for good (closed with weft_close) */
#define IO_NOTSOCK 2u /* writes use write(2), not send(MSG_NOSIGNAL) */
#define IO_DRAINED 4u /* the last read found the receive queue empty (see weft_read) */
#define IO_TCP 8u     /* a TCP socket: a short read means the queue is empty (see poll.c own_slot) */

/* Register a descriptor weft created or will do I/O on (once; later calls
 * are cheap), making it non-blocking first unless `how` says it is; from a
 * plain thread it is only made non-blocking. 0 or -errno. */
#define IO_OWN_NOTSOCK 1u  /* known not to be a socket */
#define IO_OWN_NONBLOCK 2u /* known to be O_NONBLOCK (weft created it so, or prepared it) */
int weft__io_own(int fd, unsigned how);

/* The reports a registered descriptor had had in each direction, taken
 * right before an operation on it; the wait after the operation says EAGAIN
 * ends at once if a report came since, whether or not another task took
 * its bit (see "Several tasks on one descriptor" in poll.c). valid: the
 * call holds fd's registered slot (io_call.s). */
typedef struct io_mark {
	uint32_t in, out;
	bool valid;
} io_mark;
static inline io_mark weft__io_slot_mark(const io_slot *s)
{
	return (io_mark){.in = atomic_load_explicit(&s->in_edges, memory_order_acquire),
			 .out = atomic_load_explicit(&s->out_edges, memory_order_acquire),
			 .valid = true};
}

/* ------------------------------------------------------------ the wait engine (poll.c) */

/* Whether an absolute deadline has passed (a past deadline polls). */
static inline bool weft__io_deadline_passed(weft_time_t deadline)
{
	return deadline != WEFT_NEVER && deadline <= weft_now();
}

/* Every io call is written once, whoever calls it (the design comment in
 * poll.c, "One wait engine"):
 *
 *     io_call c;
 *     int w = weft__io_begin(&c, fd, deadline, op, call, how);
 *     if (w < 0)
 *         return w;                    // the step protocol's answers, or how a registered wait ended
 *     for (;;) {
 *         io_mark m = weft__io_call_mark(&c);
 *         ... the system call; done: return ...
 *         w = weft__io_wait(&c, events, &m);   // it said EAGAIN
 *         if (w < 0)
 *             return w;                // -ETIMEDOUT, -ECANCELED, -EBADF, ..., or -EINPROGRESS
 *     }
 *
 * The engine waits the way the caller can (io_call.kind): a coroutine
 * parks, a plain thread poll(2)s, a stackless task in a _step form
 * registers in its op (-EINPROGRESS; the repeated call starts over at the
 * top, where weft__io_begin finishes the wait), and a stackless task in a
 * blocking form gets -EWOULDBLOCK. */
enum {
	IO_PARK,      /* a coroutine: park on fd's slot */
	IO_REGISTER,  /* a stackless task with an op (a _step form): register in it */
	IO_POLL,      /* a plain thread (or no poller could be had): poll(2) */
	IO_REFUSE,    /* a stackless task without an op: -EWOULDBLOCK, or -ETIMEDOUT for a past deadline */
	IO_KIND_LATER /* not asked yet (weft__io_kind) */
};

typedef struct weft_io weft_io;

typedef struct io_call {
	int fd;
	uint8_t kind; /* IO_PARK ..., or IO_KIND_LATER: read it with weft__io_kind */
	bool foreign; /* weft_fd_wait: fd is not weft's (IO_CALL_FOREIGN) */
	bool reader;  /* weft_read's own path (IO_CALL_READ): its waits keep IO_DRAINED */
	uint32_t gen; /* s's generation when the call took it (a close moves it on: -EBADF) */
	weft_time_t deadline;
	weft_op_t *op;	 /* IO_REGISTER: where the waits register; else NULL */
	weft_io *io;	 /* with s: the current runtime's poller */
	io_slot *s;	 /* fd's slot, registered (foreign: any), or NULL (not yet) */
	size_t progress; /* bytes a whole-buffer call has moved (weft_tcp_connect_step: the addresses
			    left to try); kept in the op across a registration */
} io_call;

#define IO_CALL_FOREIGN 1u /* weft_fd_wait: do not touch fd's mode; waits use the ready bits, no mark */
#define IO_CALL_READ 2u	   /* weft_read and weft_read_full (see socket.c, read_some) */

/* Start (or, for a _step form, continue) a call on fd; op NULL for the
 * blocking forms, else the call's op with its id `call` (weft_step_begin).
 * fd is made non-blocking (see io.h) unless foreign: free for a descriptor
 * registered with the current runtime's poller, whose slot c then holds;
 * one fcntl otherwise. Returns 0 (a new call), the ready mask of the
 * registered wait that ended (> 0: a repeat; try again), or a negative
 * errno to return as it is: -EINPROGRESS (a repeat before the wait ended),
 * -EBUSY (another registration), how the wait ended (-ETIMEDOUT,
 * -ECANCELED, -EBADF...), -EBADF (fd). c->progress is the op's on a
 * repeat (-EINPROGRESS included), else 0. */
int weft__io_begin(io_call *c, int fd, weft_time_t deadline, weft_op_t *op, uint8_t call, unsigned how);
/* weft__io_begin for a call that opens its descriptor itself
 * (weft_tcp_connect and weft_unix_connect, and their _step forms): obj
 * (not a descriptor) names the call's object for weft_step_begin, and a
 * repeat takes the descriptor and progress its registration kept (c->fd,
 * c->progress, also when it returns how the wait ended, so that the call
 * can close the descriptor). Returns as weft__io_begin; a call that is not
 * a repeat gets 0 with c->fd -1: it opens its descriptor and hands it to
 * weft__io_adopt. op NULL: the blocking form (always a new call). */
int weft__io_begin_obj(io_call *c, const void *obj, weft_time_t deadline, weft_op_t *op, uint8_t call);
/* Make fd c's descriptor (a new one, after weft__io_begin_obj, or the next
 * one a call tries). 0 or -errno (-EBADF). */
int weft__io_adopt(io_call *c, int fd);
/* weft_fd_wait and weft_fd_wait_step, with `call` the _step call's id (the
 * process wait waits on its pidfd with an id of its own). */
int weft__io_fd_wait(int fd, uint32_t events, weft_time_t deadline, weft_op_t *op, uint8_t call);
/* The kind of caller (IO_PARK ... IO_REFUSE): asked of the scheduler the
 * first time a call needs it, which a call that does not wait may never. */
uint8_t weft__io_kind_of(io_call *c);
static inline uint8_t weft__io_kind(io_call *c)
{
	return c->kind != IO_KIND_LATER ? c->kind : weft__io_kind_of(c);
}
/* The mark to take right before each attempt. */
static inline io_mark weft__io_call_mark(const io_call *c)
{
	return c->s ? weft__io_slot_mark(c->s) : (io_mark){0, 0, false};
}
/* The attempt said EAGAIN: wait until it may succeed. Returns the ready
 * mask (> 0: try again) or a negative errno, -EINPROGRESS when it
 * registered the task in c->op (the call returns it; its progress is kept).
 * m is the mark taken before the attempt (NULL for foreign calls). A mark
 * that is not valid registers fd (c->s is set) and returns at once: take a
 * new mark and try again. */
int weft__io_wait(io_call *c, uint32_t events, const io_mark *m);

/* The _step calls' ids (weft_step_begin). */
enum {
	WEFT__IO_FD_WAIT_STEP = WEFT_STEP_ID_IO + 1,
	WEFT__IO_READ_STEP,
	WEFT__IO_WRITE_STEP,
	WEFT__IO_ACCEPT_STEP,
	WEFT__IO_CONNECT_STEP,
	WEFT__IO_READV_STEP,
	WEFT__IO_WRITEV_STEP,
	WEFT__IO_RECVFROM_STEP,
	WEFT__IO_SENDTO_STEP,
	WEFT__IO_SENDFILE_STEP,
	WEFT__IO_READ_FULL_STEP,
	WEFT__IO_WRITE_ALL_STEP,
	WEFT__IO_DIAL_STEP,	    /* weft_tcp_connect_step, connecting (its object: the host) */
	WEFT__IO_PROCESS_WAIT_STEP, /* weft_process_wait_step on the pidfd (its object) */
	WEFT__IO_PROCESS_NAP_STEP,  /* ... without a pidfd (its object: the process) */
};
_Static_assert(WEFT__IO_PROCESS_NAP_STEP < WEFT_STEP_ID_IO + 0x10, "the io module's step ids are 0x40..0x4f");

/* The _step calls on the blocking pool: their op is a pool job (blocking.c). */
enum {
	WEFT__IO_BLOCKING_STEP = WEFT_STEP_ID_IO_POOL + 1, /* its object: fn */
	WEFT__IO_FILE_READ_ALL_STEP,			   /* the files': the path, or the descriptor */
	WEFT__IO_FILE_WRITE_ALL_STEP,
	WEFT__IO_FILE_OPEN_STEP,
	WEFT__IO_FILE_PREAD_STEP,
	WEFT__IO_FILE_PWRITE_STEP,
	WEFT__IO_GETADDRINFO_STEP, /* the lookups': the host */
	WEFT__IO_DIAL_LOOKUP_STEP, /* weft_tcp_connect_step, looking its host up */
};
_Static_assert(WEFT__IO_DIAL_LOOKUP_STEP < WEFT_STEP_ID_IO_POOL + 0x10, "the pool's step ids are 0x50..0x5f");

/* ------------------------------------------------------------ the blocking pool's _step forms (blocking.c) */

/* A stackless caller's pool job lives in its op (64 bytes; see
 * blocking.c), which goes through weft_step_begin first, as every _step
 * form's does, with one of the ids above.
 *
 * weft_step_begin returned 0 in a stackless task: queue fn(arg) as op's
 * job and register. -EINPROGRESS, or an error with nothing queued:
 * -ECANCELED (a cancelled task), -ETIMEDOUT (a past deadline), -ENOMEM,
 * -ESHUTDOWN. */
int weft__blocking_submit(weft_op_t *op, weft_fn_t fn, void *arg, weft_time_t deadline);
/* weft_step_begin returned 1: the job's wait has ended. 0 with *slot fn's
 * result once fn has returned (also when a deadline or a cancellation came
 * at that moment: the result was handed over); the deadline's or the
 * cancellation's error with *slot = arg when it came while the job waited
 * in the queue (withdrawn: fn never runs); -EINPROGRESS when it came while
 * fn runs: the task is registered again, to be woken by fn's end only. */
int weft__blocking_finish(weft_op_t *op, void **slot);
/* weft_step_begin returned WEFT_STEP_BLOCKS (a coroutine or a plain
 * thread): the same rules, blocking. A plain thread runs fn itself (a past
 * deadline: -ETIMEDOUT, fn does not run). */
int weft__blocking_run(weft_fn_t fn, void *arg, void **result, weft_time_t deadline);
/* A call of the io module run on the pool, the _step way (call and obj
 * as weft_step_begin's): job(rec) works on rec, a copy of the call's
 * arguments and results (args, size bytes), and returns rec. Returns 0
 * with the results copied back into args, or what the step protocol says
 * (-EINPROGRESS, -EBUSY, how the job's wait ended when it did not run, or
 * the errors of weft__blocking_submit). A stackless caller's copy is
 * malloc'd while the call is registered (-ENOMEM); the others' is args
 * itself. */
int weft__pool_step(weft_fn_t job, void *args, size_t size, weft_time_t deadline, weft_op_t *op, uint8_t call,
		    const void *obj);

/* Forget the hang-ups reported so far (an unconnected TCP socket polls as
 * POLLHUP; weft_connect calls this once connected). */
void weft__io_connected(int fd);

/* Pretend fd became ready for events: wakes its waiters and sets its ready
 * bits (the server uses it to interrupt its accept loop). */
void weft__io_kick(weft_runtime_t *rt, int fd, uint32_t events); /* rt NULL: the current one */
/* Install weft's SIGPIPE handler if SIGPIPE has its default disposition
 * (once; see poll.c). */
void weft__io_sigpipe(void);
/* Set (on this thread) while a write of weft's that may raise SIGPIPE runs. */
extern __thread bool weft__io_in_write __attribute__((tls_model("initial-exec")));
/* Evaluate `call`, a write(2)-like call on a pipe, or a sendfile(2), that
 * may raise SIGPIPE: with weft's handler installed and the flag set, a
 * vanished reader gives EPIPE and the process lives. No weft call (no
 * park, so no move to another thread) may run inside. */
#if !defined(__SANITIZE_THREAD__)
#define IO_NOSIGPIPE(call)                                                                                             \
	__extension__({                                                                                                \
		weft__io_sigpipe();                                                                                    \
		weft__io_in_write = true;                                                                              \
		__typeof__(call) r_nsp_ = (call);                                                                      \
		weft__io_in_write = false;                                                                             \
		r_nsp_;                                                                                                \
	})
#else
/* Under TSan, which runs a signal's handler late (at a point of its own
 * choosing after the system call, possibly once the flag is clear again):
 * SIGPIPE is blocked around the call instead, and the one it raised, if
 * any, taken back before it is unblocked. */
#define IO_NOSIGPIPE(call)                                                                                             \
	__extension__({                                                                                                \
		sigset_t s_nsp_, o_nsp_;                                                                               \
		sigemptyset(&s_nsp_);                                                                                  \
		sigaddset(&s_nsp_, SIGPIPE);                                                                           \
		pthread_sigmask(SIG_BLOCK, &s_nsp_, &o_nsp_);                                                          \
		__typeof__(call) r_nsp_ = (call);                                                                      \
		int e_nsp_ = errno;                                                                                    \
		if (r_nsp_ < 0 && e_nsp_ == EPIPE && !sigismember(&o_nsp_, SIGPIPE)) {                                 \
			const struct timespec z_nsp_ = {0, 0};                                                         \
			while (sigtimedwait(&s_nsp_, NULL, &z_nsp_) < 0 && errno == EINTR)                             \
				;                                                                                      \
		}                                                                                                      \
		pthread_sigmask(SIG_SETMASK, &o_nsp_, NULL);                                                           \
		errno = e_nsp_;                                                                                        \
		r_nsp_;                                                                                                \
	})
#endif
/* Whether writes to fd must use write(2) (not a socket). */
bool weft__io_notsock(int fd);
void weft__io_set_notsock(int fd);

/* ------------------------------------------------------------ under the simulation (sim.c) */

/* Whether the caller's runtime is a sim (a task of one, or its owner
 * thread): the calls sim.c's comment lists are then refused (-ENOTSUP). */
bool weft__io_sim(void);
/* 0 if a sim may wait on fd (a pipe, an AF_UNIX socket, an eventfd, a
 * regular file), else -ENOTSUP (or fstat's error). */
int weft__io_sim_local(int fd);

#endif
