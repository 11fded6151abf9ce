/* weft/chan.h - channels and select.
 *
 * A channel carries fixed-size elements (elem_size bytes, copied in and out)
 * between tasks and threads:
 *   capacity 0                 rendezvous: a send completes when a receiver
 *                              takes the value, and the other way round;
 *   capacity > 0               bounded buffer: send blocks while it is full;
 *   WEFT_CHAN_UNBOUNDED        unbounded buffer: send never blocks.
 *
 * Blocking calls park the calling task (or block the calling plain thread);
 * every blocking call has a deadline form (-ETIMEDOUT; a deadline already
 * past polls) and returns -ECANCELED when the task is cancelled. -EINVAL:
 * a NULL channel, element or buffer. Closing: receivers first drain what is
 * buffered, then get -EPIPE; a send on a closed channel returns -EPIPE (and a
 * send blocked when the channel closes returns -EPIPE; its value was not
 * delivered). On an error return, a receive's output buffer is unspecified.
 *
 * Lifetime: weft_chan_create returns one reference; weft_chan_retain adds one
 * and weft_chan_release drops one; the channel is freed with the last. No task
 * may be blocked on a channel when its last reference is dropped (release
 * returns -EBUSY then and keeps it alive). Closing does not free. The last
 * reference may be dropped as soon as no other call on the channel is in
 * progress - and either party of a completed operation may drop it the
 * moment its own call returns, even while the other party's call is still
 * returning (a receiver that got the value, a sender whose value was taken,
 * a caller that saw -EPIPE): weft never touches a channel after the point
 * where another caller can see that its operation completed. A caller woken
 * by a close, or by an element put into an unbounded buffer for it, may still
 * be on its way to taking it when the waker drops the last reference: it
 * holds a reference of its own until its call returns, so the channel is
 * freed then.
 *
 * Stackless tasks use the _step forms, which keep the step protocol of
 * weft/sched.h ("Step forms"): the call either completes (0 or an error)
 * or registers the task to be woken and returns -EINPROGRESS; the step
 * function then returns WEFT_STEP_PARKED and, when called again, repeats
 * the same call with the same op (a weft_op_t, as every step form takes),
 * which completes it or registers again. A task has one registration at a
 * time: until the registered call has completed, every other _step call
 * (another op, call or channel) returns -EBUSY and weft_park_prepare
 * refuses, changing nothing. -EINVAL for a NULL op. The element buffer
 * (elem, out, a case's buf) belongs to the call until it completes, like
 * the op: it must not live in the step function's frame, which is gone
 * while the task waits - keep it in the task's state.
 * The blocking forms and weft_select never wait in a stackless task (their
 * _step forms do): what cannot complete at once returns -ETIMEDOUT if the
 * deadline has passed, else -EPERM, and nothing is registered.
 */
#ifndef WEFT_CHAN_H
#define WEFT_CHAN_H

#include <sys/types.h>
#include <weft/sched.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_chan weft_chan_t;

#define WEFT_CHAN_UNBOUNDED ((ssize_t)-1)

/* -EINVAL: out NULL, elem_size 0 or > 64 KiB, capacity < -1 or > 2^30
 * (*out is NULL then). -ENOMEM. */
int weft_chan_create(weft_chan_t **out, size_t elem_size, ssize_t capacity);
/* -EINVAL for NULL; release: -EBUSY (see "Lifetime"). */
int weft_chan_retain(weft_chan_t *ch);
int weft_chan_release(weft_chan_t *ch);

int weft_chan_send(weft_chan_t *ch, const void *elem);
int weft_chan_send_until(weft_chan_t *ch, const void *elem, weft_time_t deadline);
int weft_chan_try_send(weft_chan_t *ch, const void *elem); /* -EAGAIN: would block */
int weft_chan_recv(weft_chan_t *ch, void *out);
int weft_chan_recv_until(weft_chan_t *ch, void *out, weft_time_t deadline);
int weft_chan_try_recv(weft_chan_t *ch, void *out); /* -EAGAIN: nothing ready */

/* Close: -EPIPE if already closed. Wakes every blocked sender (-EPIPE) and,
 * once the buffer is drained, every receiver (-EPIPE). */
int weft_chan_close(weft_chan_t *ch);
bool weft_chan_closed(const weft_chan_t *ch);
/* Elements buffered now (0 for rendezvous), and the capacity (-1 unbounded);
 * -EINVAL for NULL. The element size (0 for NULL). closed: false for NULL. */
ssize_t weft_chan_len(const weft_chan_t *ch);
ssize_t weft_chan_cap(const weft_chan_t *ch);
size_t weft_chan_elem_size(const weft_chan_t *ch);

/* Typed helpers: the element's size must match the channel's (-EINVAL). */
int weft_chan_send_sized(weft_chan_t *ch, const void *elem, size_t size);
int weft_chan_recv_sized(weft_chan_t *ch, void *out, size_t size);
#define WEFT_CHAN_SEND(ch, value) weft_chan_send_sized((ch), &(value), sizeof(value))
#define WEFT_CHAN_RECV(ch, lvalue) weft_chan_recv_sized((ch), &(lvalue), sizeof(lvalue))

/* ----------------------------------------------------------- select */

enum { WEFT_SELECT_RECV = 0, WEFT_SELECT_SEND = 1 };

typedef struct weft_select_case {
	weft_chan_t *ch;
	int op;	    /* WEFT_SELECT_RECV or WEFT_SELECT_SEND */
	void *buf;  /* recv: where the value goes; send: the value */
	int result; /* out: 0, or -EPIPE (closed) for the chosen case */
} weft_select_case_t;

/* Wait until one of the n cases can proceed or the deadline passes, perform
 * the case and return its index. Among several ready cases one is chosen
 * uniformly at random. A receive on a closed, drained channel and a send on
 * a closed channel are "ready" with result -EPIPE. A deadline already past
 * (0, say) polls: -ETIMEDOUT at once if none is ready (Go's default case);
 * WEFT_NEVER waits for ever. Errors: -EINVAL (cases NULL, n 0 or above 64,
 * or a case with a NULL channel or buffer or another op; nothing is done
 * then), -ETIMEDOUT, -ECANCELED, -EPERM (a stackless task, when no case is
 * ready: it cannot wait; weft_select_step waits there). A channel may
 * appear in several cases. */
int weft_select(weft_select_case_t *cases, size_t n, weft_time_t deadline);

/* ----------------------------------------------------------- stackless */

/* weft_chan_send_until and weft_chan_recv_until, the stackless way. */
int weft_chan_send_step(weft_chan_t *ch, const void *elem, weft_time_t deadline, weft_op_t *op);
int weft_chan_recv_step(weft_chan_t *ch, void *out, weft_time_t deadline, weft_op_t *op);

/* weft_select, the stackless way (weft/sched.h, "Step forms"): the index of
 * the case that fired, its result in cases[i].result, as weft_select - or
 * -EINPROGRESS: the task is registered; return WEFT_STEP_PARKED and, when
 * called again, repeat the call with the same cases array (the same
 * address, n and contents) and the same op. Its errors are weft_select's
 * and the step protocol's: -EINVAL also for a NULL op; -ETIMEDOUT when the
 * deadline passes while registered (one already past polls, registering
 * nothing); -ECANCELED when the task is cancelled while registered, unless
 * a case was completed for it at that moment (then that case's index:
 * nothing is lost); -EBUSY while another call is registered (a repeat
 * with another cases array or n is another call); -ENOMEM. In
 * coroutines and plain threads it is weft_select (it blocks).
 *
 * Memory: a select waits with one node per case, more than op holds. When
 * the call first has to wait, weft allocates the nodes (56 bytes a case on
 * 64-bit systems) and op points to them; they stay put while the call is
 * registered, linked into the channels' queues, and the repeat that
 * completes the call frees them. A call that completes without waiting
 * allocates nothing. While the call is registered, cases and the buffers
 * they name belong to it (a sender may copy into a receive case's buffer
 * at any moment): do not move, change or free them; the call also holds a
 * reference on each channel until it completes. Once it has completed, op
 * and cases are the caller's again, to reuse or free at once. */
int weft_select_step(weft_select_case_t *cases, size_t n, weft_time_t deadline, weft_op_t *op);

#ifdef __cplusplus
}
#endif
#endif
