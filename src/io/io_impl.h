/* io_impl.h - what the netpoller (poll.c) shares with the socket and server
 * code of the io module. */
#ifndef WEFT_IO_IMPL_H
#define WEFT_IO_IMPL_H

#include <weft/io.h>
#include <weft/time.h>

#include <stdatomic.h>

/* A task waiting on a descriptor: linked on its slot while parked. */
typedef struct io_waiter {
	struct io_waiter *next, *prev;
	weft_waker_t waker;
	uint32_t match; /* readiness bits that end this wait */
	int status;	/* the ready mask or -EBADF, set before the unpark */
	bool linked;
} io_waiter;

/* Per-descriptor state (see the design comment in poll.c). */
typedef struct io_slot {
	_Atomic uint32_t lock;
	_Atomic uint32_t ready; /* readiness seen by the poller and not yet consumed */
	_Atomic uint32_t gen;	/* bumped at every (re)registration and close */
	_Atomic uint32_t flags; /* IO_REG, IO_NOTSOCK, IO_DRAINED */
	_Atomic uint32_t seen;	/* POLLRDHUP/POLLHUP/POLLERR ever reported (never consumed) */
	_Atomic uint32_t in_edges;   /* reports that end a read wait, so far (bumped under lock) */
	_Atomic uint32_t out_edges;  /* reports that end a write wait, so far (bumped under lock) */
	_Atomic uint32_t drained_at; /* in_edges before the read that set IO_DRAINED */
	io_waiter *head;	/* under lock */
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

/* Every call that does I/O on a descriptor it was given runs this first:
 * a descriptor in blocking mode would block the worker (or the thread) in
 * the system call, past any deadline, so it is switched to O_NONBLOCK
 * (see io.h). Free for a descriptor registered with the current runtime's
 * poller (registration made it non-blocking); one fcntl otherwise.
 * 0 or -errno (-EBADF). */
int weft__io_prepare(int fd);
/* Set O_NONBLOCK on fd if it is not set. 0 or -errno. */
int weft__io_nonblock(int fd);

/* The reports a registered descriptor had had in each direction, taken
 * right before an operation on it; the wait after the operation says EAGAIN
 * ends at once if a report came since, whether or not another task took
 * its bit (see "Several tasks on one descriptor" in poll.c). valid: fd was
 * registered with the current runtime's poller and the caller can park. */
typedef struct io_mark {
	uint32_t in, out;
	bool valid;
} io_mark;
io_mark weft__io_mark(int fd);
/* The same for a registered slot the caller already holds. */
static inline io_mark weft__io_slot_mark(const io_slot *s)
{
	return (io_mark){.in = atomic_load_explicit(&s->in_edges, memory_order_acquire),
			 .out = atomic_load_explicit(&s->out_edges, memory_order_acquire),
			 .valid = true};
}

/* After an operation on fd (prepared: non-blocking) returned EAGAIN: wait
 * until it may succeed.
 * Returns the ready mask (> 0) or a negative errno. m is the mark taken
 * before the operation: reports counted since decide. A mark that is not
 * valid registers fd and returns at once (take a new mark and retry). */
int weft__io_wait(int fd, uint32_t events, weft_time_t deadline, const io_mark *m);
typedef struct weft_io weft_io;
/* The slot of fd if fd is registered with the current runtime's poller and
 * the caller is a coroutine (which can park); else NULL. */
io_slot *weft__io_lookup(int fd, weft_io **io);
/* The same for a caller known to be a stackless task (it waits through an
 * op): only the registration is checked. */
io_slot *weft__io_lookup_step(int fd, weft_io **io);
/* weft__io_wait on a slot from weft__io_lookup, for generation gen, with a
 * mark (valid) taken before the operation. */
int weft__io_slot_wait(weft_io *io, io_slot *s, int fd, uint32_t gen, uint32_t events, weft_time_t deadline,
		       const io_mark *since);

/* Stackless tasks (the _step calls). weft__io_step_finish ends the wait
 * that op started, if any: 0 (none), the ready mask (retry the operation),
 * or a negative errno (-EINPROGRESS and -EBUSY from weft_step_begin among
 * them); every _step call runs it first, with its id. weft__io_wait_step
 * (op idle, i.e. finished) is weft__io_wait for them: the ready mask, a
 * negative errno, or -EINPROGRESS (the task is registered in op and must
 * return WEFT_STEP_PARKED, then call again). From coroutines and threads
 * it blocks like weft__io_wait. */
int weft__io_step_finish(weft_op_t *op, uint8_t call);
/* The _step calls' ids (weft_step_begin). */
enum {
	WEFT__IO_FD_WAIT_STEP = WEFT_STEP_ID_IO + 1,
	WEFT__IO_READ_STEP,
	WEFT__IO_WRITE_STEP,
	WEFT__IO_ACCEPT_STEP,
	WEFT__IO_CONNECT_STEP,
};
int weft__io_wait_step(int fd, uint32_t events, weft_time_t deadline, weft_op_t *op, const io_mark *m);
/* weft__io_slot_wait for a stackless task: op idle; -EINPROGRESS as above. */
int weft__io_slot_wait_step(weft_io *io, io_slot *s, int fd, uint32_t gen, uint32_t events, weft_time_t deadline,
			    weft_op_t *op, const io_mark *since);

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
#define IO_NOSIGPIPE(call)                                                    \
	__extension__({                                                       \
		weft__io_sigpipe();                                           \
		weft__io_in_write = true;                                     \
		__typeof__(call) r_nsp_ = (call);                             \
		weft__io_in_write = false;                                    \
		r_nsp_;                                                       \
	})
/* Whether writes to fd must use write(2) (not a socket). */
bool weft__io_notsock(int fd);
void weft__io_set_notsock(int fd);

#endif
