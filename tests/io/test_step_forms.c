/* test_step_forms.c - the _step forms of the vector, datagram, sendfile and
 * whole-buffer calls (weft_readv_step, weft_writev_step, weft_recvfrom_step,
 * weft_sendto_step, weft_sendfile_step, weft_read_full_step,
 * weft_write_all_step), each through the step protocol of weft/sched.h:
 * completing at once; registering, then completing when the peer acts; a
 * past deadline (polls); a deadline that passes while registered;
 * cancellation while registered; a second registration (-EBUSY); the op
 * freed by the step that completes; the progress of the whole-buffer calls
 * and sendfile kept in the op across repeats while the peer moves data in
 * small pieces; and the same calls from coroutines and plain threads,
 * which block. Run on both backends.
 *
 * No check depends on timing: the test's coroutine acts on a registered
 * call only after the stackless task has said it registered (a message on
 * a channel, sent right after the -EINPROGRESS), so the call is linked
 * where the peer's action will wake it. The deadline cases, which need a
 * deadline to pass while the task is registered, retry with a longer one
 * when the task ran too late to register first. */
#include "wt_io.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum form { F_READV, F_WRITEV, F_RECVFROM, F_SENDTO, F_SENDFILE, F_READ_FULL, F_WRITE_ALL, NFORMS };

static const char *const form_names[NFORMS] = {"readv",	   "writev",	"recvfrom", "sendto",
					       "sendfile", "read_full", "write_all"};

static bool writes(enum form f)
{
	return f == F_WRITEV || f == F_SENDTO || f == F_SENDFILE || f == F_WRITE_ALL;
}

static bool dgram(enum form f)
{
	return f == F_RECVFROM || f == F_SENDTO;
}

static bool whole(enum form f)
{
	return f == F_READ_FULL || f == F_WRITE_ALL;
}

#define PAYLOAD 300

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 7 + 3);
}

/* One call of a form: its descriptors, buffer and arguments. */
typedef struct call_st {
	enum form f;
	int fd;		    /* the caller's end */
	int peer;	    /* the other end */
	int file;	    /* sendfile's source, len bytes of pattern() */
	off_t off;	    /* sendfile's offset, advanced by the kernel */
	size_t len;	    /* bytes the call moves */
	unsigned char *buf; /* len bytes: pattern() to send, or room to receive */
	weft_time_t deadline;
	size_t done; /* *done of the whole-buffer forms */
	size_t fill; /* bytes (datagrams, of one byte) that block a write */
	struct sockaddr_storage sa;
	socklen_t sl;
} call_st;

/* The call, with op: the _step form. */
static ssize_t call(call_st *c, weft_op_t *op)
{
	struct iovec iov[2] = {{c->buf, c->len / 3}, {c->buf + c->len / 3, c->len - c->len / 3}};
	switch (c->f) {
	case F_READV:
		return weft_readv_step(c->fd, iov, 2, c->deadline, op);
	case F_WRITEV:
		return weft_writev_step(c->fd, iov, 2, c->deadline, op);
	case F_RECVFROM:
		c->sl = sizeof c->sa;
		return weft_recvfrom_step(c->fd, c->buf, c->len, (struct sockaddr *)&c->sa, &c->sl, c->deadline, op);
	case F_SENDTO:
		return weft_sendto_step(c->fd, c->buf, c->len, NULL, 0, c->deadline, op);
	case F_SENDFILE:
		return weft_sendfile_step(c->fd, c->file, &c->off, c->len, c->deadline, op);
	case F_READ_FULL:
		return weft_read_full_step(c->fd, c->buf, c->len, c->deadline, &c->done, op);
	case F_WRITE_ALL:
		return weft_write_all_step(c->fd, c->buf, c->len, c->deadline, &c->done, op);
	default:
		return -EINVAL;
	}
}

/* What the call has moved so far: the whole-buffer forms' *done, sendfile's
 * offset. */
static size_t progress(const call_st *c)
{
	return c->f == F_SENDFILE ? (size_t)c->off : whole(c->f) ? c->done : 0;
}

static void setup_len(call_st *c, enum form f, size_t len)
{
	memset(c, 0, sizeof *c);
	c->f = f;
	c->len = len;
	c->deadline = wt_hang_deadline();
	c->buf = malloc(len);
	TCHECK(c->buf != NULL);
	for (size_t i = 0; i < len; i++)
		c->buf[i] = writes(f) ? pattern(i) : 0;
	int sv[2];
	TCHECK_EQ(socketpair(AF_UNIX, (dgram(f) ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	c->fd = sv[0];
	c->peer = sv[1];
	/* Every call has a file, so that any form can be called on it. */
	char path[] = "/tmp/weft-step-forms-XXXXXX";
	c->file = mkostemp(path, O_CLOEXEC);
	TCHECK(c->file >= 0);
	unlink(path);
	TCHECK_EQ(pwrite(c->file, c->buf, len, 0), (ssize_t)len);
	if (f == F_SENDFILE) {
		for (size_t i = 0; i < len; i++)
			c->buf[i] = pattern(i);
		TCHECK_EQ(pwrite(c->file, c->buf, len, 0), (ssize_t)len);
	}
}

static void setup(call_st *c, enum form f)
{
	setup_len(c, f, PAYLOAD);
}

static void teardown(call_st *c)
{
	TCHECK_EQ(weft_close(c->fd), 0);
	TCHECK_EQ(weft_close(c->peer), 0);
	close(c->file);
	free(c->buf);
}

/* Writes: fill the way until a write says EAGAIN, so that the call must
 * wait. Nothing reads the peer meanwhile, so any write after this one says
 * EAGAIN too (a stream socket's sent bytes stay at or above its buffer
 * size; a datagram socket's peer queue stays full). */
static void fill(call_st *c)
{
	static const char junk[4096];
	if (dgram(c->f)) {
		while (send(c->fd, junk, 1, MSG_DONTWAIT) == 1)
			c->fill++;
	} else {
		for (size_t chunk = sizeof junk; chunk > 0; chunk /= 2) {
			ssize_t n;
			while ((n = send(c->fd, junk, chunk, MSG_DONTWAIT)) > 0)
				c->fill += (size_t)n;
		}
	}
	TCHECK(errno == EAGAIN);
	TCHECK(c->fill > 0);
}

/* Block the call: a write finds no room, a read nothing to read. */
static void block(call_st *c)
{
	if (writes(c->f))
		fill(c);
}

/* Make the call able to complete: a read's peer sends the payload (one
 * datagram, or one write); a write's peer takes what fill() put in the way
 * (the call's own bytes are read by settle()). */
static void ready(call_st *c)
{
	unsigned char b[PAYLOAD];
	if (!writes(c->f)) {
		TCHECK(c->len <= sizeof b);
		for (size_t i = 0; i < c->len; i++)
			b[i] = pattern(i);
		TCHECK_EQ(weft_write(c->peer, b, c->len, wt_hang_deadline()), (ssize_t)c->len);
		return;
	}
	if (dgram(c->f)) {
		for (size_t i = 0; i < c->fill; i++)
			TCHECK_EQ(weft_recvfrom(c->peer, b, sizeof b, NULL, NULL, wt_hang_deadline()), 1);
	} else {
		for (size_t left = c->fill; left > 0;) {
			size_t n = left < sizeof b ? left : sizeof b;
			TCHECK_EQ(weft_read_full(c->peer, b, n, wt_hang_deadline(), NULL), (ssize_t)n);
			left -= n;
		}
	}
	c->fill = 0;
}

/* After the call completed: a read's buffer holds the payload; a write's
 * bytes are the next thing its peer receives. */
static void settle(call_st *c)
{
	unsigned char *got = c->buf;
	if (writes(c->f)) {
		got = malloc(c->len + 1);
		TCHECK(got != NULL);
		if (dgram(c->f))
			TCHECK_EQ(weft_recvfrom(c->peer, got, c->len + 1, NULL, NULL, wt_hang_deadline()),
				  (ssize_t)c->len);
		else
			TCHECK_EQ(weft_read_full(c->peer, got, c->len, wt_hang_deadline(), NULL), (ssize_t)c->len);
	}
	for (size_t i = 0; i < c->len; i++)
		if (got[i] != pattern(i)) {
			TCHECK_EQ(got[i], pattern(i));
			break;
		}
	if (got != c->buf)
		free(got);
}

/* Which form a failed check came from: call with the failure count taken
 * before the form's checks. */
static void form_checked(const call_st *c, int before)
{
	if (atomic_load(&tcheck_failures) != before)
		fprintf(stderr, "  ^ those checks failed for weft_%s_step\n", form_names[c->f]);
}

/* ------------------------------------------------------------ the stackless caller */

typedef struct task_st {
	call_st *c;
	weft_op_t *op;	   /* the call's op */
	bool free_op;	   /* op was malloc'd: the completing step frees it */
	bool busy;	   /* at the first registration, try a second one */
	weft_chan_t *regs; /* a message per registration: progress(c) then */
	_Atomic int parks;
	ssize_t result;
	int busy_checks; /* second registrations refused as they must be */
} task_st;

/* While t's call is registered: every other _step call is refused with
 * -EBUSY and changes nothing (another op, or the same op in another call);
 * the same call with the same op, made before its wait ended, says
 * -EINPROGRESS. */
static void second_registrations(task_st *t)
{
	call_st *c = t->c;
	weft_op_t op2; /* needs no initialisation */
	memset(&op2, 0x5a, sizeof op2);
	call_st other = *c;
	for (int f = 0; f < NFORMS; f++) {
		other.f = (enum form)f;
		other.done = 99;
		TCHECK_EQ(call(&other, &op2), -EBUSY);
		if (whole(other.f))
			TCHECK_EQ(other.done, 0);
		if (f != (int)c->f)
			TCHECK_EQ(call(&other, t->op), -EBUSY);
	}
	char b[4];
	TCHECK_EQ(weft_read_step(c->fd, b, sizeof b, WEFT_NEVER, &op2), -EBUSY);
	TCHECK_EQ(weft_fd_wait_step(c->peer, POLLIN, WEFT_NEVER, t->op), -EBUSY);
	TCHECK(weft_park_prepare().parker == NULL);
	/* Nothing moved: the call's bytes are still where they were. */
	TCHECK_EQ(other.off, c->off);
	size_t before = progress(c);
	TCHECK_EQ(call(c, t->op), -EINPROGRESS);
	TCHECK_EQ(progress(c), before);
	t->busy_checks++;
}

static weft_step_t task_step(void *a, void **res)
{
	task_st *t = a;
	ssize_t r = call(t->c, t->op);
	if (r == -EINPROGRESS) {
		if (atomic_fetch_add(&t->parks, 1) == 0 && t->busy)
			second_registrations(t);
		size_t p = progress(t->c);
		if (t->regs)
			TCHECK_EQ(weft_chan_try_send(t->regs, &p), 0);
		return WEFT_STEP_PARKED;
	}
	t->result = r;
	if (t->free_op) {
		/* The call has completed: op is the caller's again (sched.h). */
		free(t->op);
		t->op = NULL;
	}
	*res = NULL;
	return WEFT_STEP_DONE;
}

static void task_init(task_st *t, call_st *c, weft_op_t *op)
{
	memset(t, 0, sizeof *t);
	t->c = c;
	t->op = op;
	TCHECK_EQ(weft_chan_create(&t->regs, sizeof(size_t), 4096), 0);
}

static void task_fini(task_st *t)
{
	TCHECK_EQ(weft_chan_release(t->regs), 0);
}

static weft_task_t task_start(task_st *t)
{
	weft_task_t id = 0;
	TCHECK_EQ(weft_spawn_step(&id, task_step, t, NULL), 0);
	return id;
}

static void task_join(weft_task_t id)
{
	TCHECK_EQ(weft_join(id, NULL), 0);
}

/* Until the task has registered (again): the progress it had then. */
static size_t task_registered(task_st *t)
{
	size_t p = SIZE_MAX;
	TCHECK_EQ(weft_chan_recv_until(t->regs, &p, wt_hang_deadline()), 0);
	return p;
}

/* ------------------------------------------------------------ at once, after a wait */

static void *at_once_main(void *a)
{
	(void)a;
	for (int f = 0; f < NFORMS; f++) {
		int before = atomic_load(&tcheck_failures);
		call_st c;
		setup(&c, (enum form)f);
		if (!writes(c.f))
			ready(&c); /* a write has room */
		weft_op_t op = WEFT_OP_INIT;
		task_st t;
		task_init(&t, &c, &op);
		task_join(task_start(&t));
		TCHECK_EQ(t.result, (ssize_t)c.len);
		TCHECK_EQ(t.parks, 0);
		TCHECK_EQ(progress(&c), whole(c.f) || c.f == F_SENDFILE ? c.len : 0);
		settle(&c);
		task_fini(&t);
		teardown(&c);
		form_checked(&c, before);
	}
	return NULL;
}

static void test_completes_at_once(void **state)
{
	(void)state;
	wt_run(at_once_main, NULL, 2);
}

static void *after_wait_main(void *a)
{
	(void)a;
	for (int f = 0; f < NFORMS; f++) {
		int before = atomic_load(&tcheck_failures);
		call_st c;
		setup(&c, (enum form)f);
		block(&c);
		weft_op_t op; /* needs no initialisation */
		memset(&op, 0xa5, sizeof op);
		task_st t;
		task_init(&t, &c, &op);
		weft_task_t id = task_start(&t);
		TCHECK_EQ(task_registered(&t), 0); /* nothing could move */
		ready(&c);
		task_join(id);
		TCHECK_EQ(t.result, (ssize_t)c.len);
		TCHECK(t.parks >= 1);
		TCHECK_EQ(progress(&c), whole(c.f) || c.f == F_SENDFILE ? c.len : 0);
		settle(&c);
		task_fini(&t);
		teardown(&c);
		form_checked(&c, before);
	}
	return NULL;
}

static void test_registers_then_completes(void **state)
{
	(void)state;
	wt_run(after_wait_main, NULL, 2);
}

/* ------------------------------------------------------------ deadlines */

static const weft_time_t past[] = {INT64_MIN, -1, 0};
#define NPAST (sizeof past / sizeof past[0])

static void *past_main(void *a)
{
	(void)a;
	for (int f = 0; f < NFORMS; f++) {
		int before = atomic_load(&tcheck_failures);
		call_st c;
		setup(&c, (enum form)f);
		block(&c);
		weft_op_t op = WEFT_OP_INIT;
		task_st t;
		task_init(&t, &c, &op);
		/* Nothing can move: -ETIMEDOUT at once, nothing registered. */
		for (size_t i = 0; i <= NPAST; i++) {
			c.deadline = i < NPAST ? past[i] : weft_now() - 1;
			c.done = 99;
			task_join(task_start(&t));
			TCHECK_EQ(t.result, -ETIMEDOUT);
			TCHECK_EQ(t.parks, 0);
			TCHECK_EQ(progress(&c), 0);
		}
		/* Ready: a past deadline does what it can without waiting. */
		ready(&c);
		c.deadline = INT64_MIN;
		task_join(task_start(&t));
		TCHECK_EQ(t.result, (ssize_t)c.len);
		TCHECK_EQ(t.parks, 0);
		settle(&c);
		task_fini(&t);
		teardown(&c);
		form_checked(&c, before);
	}
	/* A whole-buffer read with part of its bytes there takes that part,
	 * then times out, and says how much it took. */
	call_st c;
	setup(&c, F_READ_FULL);
	c.len = 100;
	ready(&c);
	c.len = PAYLOAD;
	c.deadline = -1;
	weft_op_t op = WEFT_OP_INIT;
	task_st t;
	task_init(&t, &c, &op);
	task_join(task_start(&t));
	TCHECK_EQ(t.result, -ETIMEDOUT);
	TCHECK_EQ(t.parks, 0);
	TCHECK_EQ(c.done, 100);
	task_fini(&t);
	teardown(&c);
	return NULL;
}

static void test_past_deadline_polls(void **state)
{
	(void)state;
	wt_run(past_main, NULL, 2);
}

static void *deadline_main(void *a)
{
	(void)a;
	for (int f = 0; f < NFORMS; f++) {
		int before = atomic_load(&tcheck_failures);
		call_st c;
		setup(&c, (enum form)f);
		block(&c);
		weft_op_t op = WEFT_OP_INIT;
		task_st t;
		task_init(&t, &c, &op);
		/* The deadline must pass while the task is registered, which
		 * needs the task to run before it: no load can promise that, so
		 * when it did not register, try again with a deadline twice as
		 * long. */
		for (weft_time_t wait = 20 * WEFT_MSEC;; wait *= 2) {
			c.deadline = weft_deadline_in(wait);
			atomic_store(&t.parks, 0);
			task_join(task_start(&t));
			TCHECK_EQ(t.result, -ETIMEDOUT);
			TCHECK(weft_now() >= c.deadline);
			TCHECK_EQ(progress(&c), 0);
			if (atomic_load(&t.parks) >= 1)
				break;
			TCHECK(wait < WT_HANG_NS);
			if (wait >= WT_HANG_NS)
				break;
		}
		/* The op is idle again: the same op serves the next call. */
		ready(&c);
		c.deadline = wt_hang_deadline();
		task_join(task_start(&t));
		TCHECK_EQ(t.result, (ssize_t)c.len);
		settle(&c);
		task_fini(&t);
		teardown(&c);
		form_checked(&c, before);
	}
	return NULL;
}

static void test_deadline_passes_while_registered(void **state)
{
	(void)state;
	wt_run(deadline_main, NULL, 2);
}

/* ------------------------------------------------------------ cancellation, -EBUSY */

static void *cancel_main(void *a)
{
	(void)a;
	for (int f = 0; f < NFORMS; f++) {
		int before = atomic_load(&tcheck_failures);
		call_st c;
		setup(&c, (enum form)f);
		block(&c);
		weft_op_t op = WEFT_OP_INIT;
		task_st t;
		task_init(&t, &c, &op);
		weft_task_t id = task_start(&t);
		task_registered(&t);
		TCHECK_EQ(weft_cancel(id), 0);
		task_join(id);
		TCHECK_EQ(t.result, -ECANCELED);
		TCHECK_EQ(progress(&c), 0);
		/* Nothing of the cancelled wait is left on the descriptor: the
		 * same call from this coroutine completes once the peer acts. */
		ready(&c);
		TCHECK_EQ(call(&c, &op), (ssize_t)c.len);
		settle(&c);
		task_fini(&t);
		teardown(&c);
		form_checked(&c, before);
	}
	return NULL;
}

static void test_cancel_while_registered(void **state)
{
	(void)state;
	wt_run(cancel_main, NULL, 2);
}

static void *busy_main(void *a)
{
	(void)a;
	for (int f = 0; f < NFORMS; f++) {
		int before = atomic_load(&tcheck_failures);
		call_st c;
		setup(&c, (enum form)f);
		block(&c);
		weft_op_t op = WEFT_OP_INIT;
		task_st t;
		task_init(&t, &c, &op);
		t.busy = true;
		weft_task_t id = task_start(&t);
		TCHECK_EQ(task_registered(&t), 0);
		ready(&c);
		task_join(id);
		TCHECK_EQ(t.busy_checks, 1);
		TCHECK_EQ(t.result, (ssize_t)c.len);
		settle(&c);
		task_fini(&t);
		teardown(&c);
		form_checked(&c, before);
	}
	return NULL;
}

static void test_second_registration_is_busy(void **state)
{
	(void)state;
	wt_run(busy_main, NULL, 2);
}

/* ------------------------------------------------------------ the op's lifetime */

/* The step that completes frees the op at once, while the poller that
 * woke the task may still be handling the same report: under ASan any
 * later touch of the op is a use after free. */
static void *free_op_main(void *a)
{
	(void)a;
	for (int round = 0; round < WT_SIZE(40, 10); round++) {
		for (int f = 0; f < NFORMS; f++) {
			int before = atomic_load(&tcheck_failures);
			call_st c;
			setup(&c, (enum form)f);
			block(&c);
			task_st t;
			task_init(&t, &c, malloc(sizeof(weft_op_t)));
			TCHECK(t.op != NULL);
			t.free_op = true;
			weft_task_t id = task_start(&t);
			if (round % 2 == 0)
				task_registered(&t); /* else it completes at once, or registers first */
			ready(&c);
			task_join(id);
			TCHECK_EQ(t.result, (ssize_t)c.len);
			TCHECK(t.op == NULL);
			settle(&c);
			task_fini(&t);
			teardown(&c);
			form_checked(&c, before);
		}
	}
	return NULL;
}

static void test_op_freed_on_completion(void **state)
{
	(void)state;
	wt_run(free_op_main, NULL, 2);
}

/* ------------------------------------------------------------ progress across repeats */

#define PIECES 16

/* weft_read_full_step while the peer writes one small piece after each
 * registration: the call registers again and again, and goes on where it
 * left off each time. */
static void *read_full_pieces_main(void *a)
{
	(void)a;
	size_t sizes[PIECES], len = 0;
	for (int i = 0; i < PIECES; i++)
		len += sizes[i] = 1 + (size_t)(i * 37) % 61;
	call_st c;
	setup_len(&c, F_READ_FULL, len);
	weft_op_t op = WEFT_OP_INIT;
	task_st t;
	task_init(&t, &c, &op);
	weft_task_t id = task_start(&t);
	size_t written = 0, last = 0;
	unsigned char piece[64];
	for (int i = 0; i < PIECES; i++) {
		size_t p = task_registered(&t);
		/* What it had read when it registered: no more than was
		 * written, no less than before. */
		TCHECK(p >= last && p <= written);
		last = p;
		for (size_t j = 0; j < sizes[i]; j++)
			piece[j] = pattern(written + j);
		TCHECK_EQ(weft_write(c.peer, piece, sizes[i], wt_hang_deadline()), (ssize_t)sizes[i]);
		written += sizes[i];
	}
	task_join(id);
	TCHECK_EQ(t.result, (ssize_t)len);
	TCHECK_EQ(c.done, len);
	TCHECK(t.parks >= PIECES);
	for (size_t p; weft_chan_try_recv(t.regs, &p) == 0;) {
		TCHECK(p >= last && p < len);
		last = p;
	}
	TCHECK(last > 0); /* a repeat went on from bytes already read */
	settle(&c);
	task_fini(&t);
	teardown(&c);
	return NULL;
}

static void test_read_full_progress_across_repeats(void **state)
{
	(void)state;
	wt_run(read_full_pieces_main, NULL, 2);
}

#define BIGLEN (1u << 20)
#define PAGE 4096

/* weft_write_all_step and weft_sendfile_step of far more than a pipe
 * holds, the reader taking one page after each of the first
 * registrations, then the rest. A pipe, because a writer waiting on it is
 * woken as soon as a page is free (a Unix socket's writer waits until
 * three quarters of its buffer are): each of those reads lets the writer
 * move one more page and register again, further on. */
static void *write_pieces_main(void *a)
{
	(void)a;
	static const enum form forms[] = {F_WRITE_ALL, F_SENDFILE};
	for (size_t k = 0; k < sizeof forms / sizeof forms[0]; k++) {
		int before = atomic_load(&tcheck_failures);
		call_st c;
		setup_len(&c, forms[k], BIGLEN);
		weft_close(c.fd);
		weft_close(c.peer);
		int p[2];
		TCHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
		c.peer = p[0];
		c.fd = p[1];
		weft_op_t op = WEFT_OP_INIT;
		task_st t;
		task_init(&t, &c, &op);
		weft_task_t id = task_start(&t);
		unsigned char *got = malloc(BIGLEN);
		TCHECK(got != NULL);
		size_t off = 0, first = 0, last = 0;
		for (int i = 0; i < PIECES; i++) {
			/* Never less than before, never less than was read. */
			size_t moved = task_registered(&t);
			TCHECK(moved >= last && moved >= off && moved < BIGLEN);
			if (i == 0)
				first = moved;
			last = moved;
			TCHECK_EQ(weft_read_full(c.peer, got + off, PAGE, wt_hang_deadline(), NULL), PAGE);
			off += PAGE;
		}
		TCHECK_EQ(weft_read_full(c.peer, got + off, BIGLEN - off, wt_hang_deadline(), NULL),
			  (ssize_t)(BIGLEN - off));
		task_join(id);
		TCHECK_EQ(t.result, (ssize_t)BIGLEN);
		TCHECK_EQ(progress(&c), BIGLEN);
		TCHECK(t.parks >= PIECES);
		/* After the first page read the writer moved on and registered
		 * again further on: a repeat went on from bytes already moved. */
		for (size_t moved; weft_chan_try_recv(t.regs, &moved) == 0;) {
			TCHECK(moved >= last && moved < BIGLEN);
			last = moved;
		}
		TCHECK(last > first);
		TCHECK_EQ(memcmp(got, c.buf, BIGLEN), 0);
		free(got);
		task_fini(&t);
		teardown(&c);
		form_checked(&c, before);
	}
	return NULL;
}

static void test_write_all_and_sendfile_progress_across_repeats(void **state)
{
	(void)state;
	wt_run(write_pieces_main, NULL, 2);
}

/* Cancelled part way: weft_write_all_step says -ECANCELED and how far it
 * got; weft_sendfile_step returns the bytes it sent (as weft_sendfile). */
static void *cancel_midway_main(void *a)
{
	(void)a;
	static const enum form forms[] = {F_WRITE_ALL, F_SENDFILE};
	for (size_t k = 0; k < sizeof forms / sizeof forms[0]; k++) {
		int before = atomic_load(&tcheck_failures);
		call_st c;
		setup_len(&c, forms[k], BIGLEN);
		weft_op_t op = WEFT_OP_INIT;
		task_st t;
		task_init(&t, &c, &op);
		weft_task_t id = task_start(&t);
		size_t p = task_registered(&t);
		TCHECK(p > 0 && p < BIGLEN); /* it filled the socket, then waited */
		TCHECK_EQ(weft_cancel(id), 0);
		task_join(id);
		TCHECK_EQ(progress(&c), p);
		TCHECK_EQ(t.result, c.f == F_SENDFILE ? (ssize_t)p : -ECANCELED);
		/* Exactly those bytes went. */
		unsigned char *got = malloc(p + 1);
		TCHECK(got != NULL);
		TCHECK_EQ(weft_read_full(c.peer, got, p, wt_hang_deadline(), NULL), (ssize_t)p);
		TCHECK_EQ(memcmp(got, c.buf, p), 0);
		TCHECK_EQ(weft_read(c.peer, got, 1, -1), -ETIMEDOUT);
		free(got);
		task_fini(&t);
		teardown(&c);
		form_checked(&c, before);
	}
	return NULL;
}

static void test_cancel_part_way(void **state)
{
	(void)state;
	wt_run(cancel_midway_main, NULL, 2);
}

/* A repeat with a shorter length than what has moved already (the
 * caller's mistake): refused with -EINVAL, and the op is idle again (the
 * task may end). */
static weft_step_t shrink_step(void *a, void **res)
{
	task_st *t = a;
	ssize_t r = call(t->c, t->op);
	if (r == -EINPROGRESS) {
		atomic_fetch_add(&t->parks, 1);
		size_t p = progress(t->c);
		TCHECK_EQ(weft_chan_try_send(t->regs, &p), 0);
		if (p > 0)
			t->c->len = p - 1;
		return WEFT_STEP_PARKED;
	}
	t->result = r;
	*res = NULL;
	return WEFT_STEP_DONE;
}

static void *shrink_main(void *a)
{
	(void)a;
	call_st c;
	setup_len(&c, F_WRITE_ALL, BIGLEN);
	weft_op_t op = WEFT_OP_INIT;
	task_st t;
	task_init(&t, &c, &op);
	weft_task_t id = 0;
	TCHECK_EQ(weft_spawn_step(&id, shrink_step, &t, NULL), 0);
	size_t p = task_registered(&t);
	TCHECK(p > 0);
	/* Take everything it wrote: room, so the repeat runs. */
	unsigned char *got = malloc(BIGLEN);
	TCHECK(got != NULL);
	TCHECK_EQ(weft_read_full(c.peer, got, p, wt_hang_deadline(), NULL), (ssize_t)p);
	task_join(id);
	TCHECK_EQ(t.result, -EINVAL);
	TCHECK_EQ(c.done, 0);
	free(got);
	task_fini(&t);
	teardown(&c);
	return NULL;
}

static void test_repeat_with_a_shorter_length(void **state)
{
	(void)state;
	wt_run(shrink_main, NULL, 2);
}

/* ------------------------------------------------------------ coroutines and threads */

static void *ready_fn(void *a)
{
	ready(a);
	return NULL;
}

/* A coroutine or a plain thread: the _step forms block as the blocking
 * forms do (never -EINPROGRESS) and leave the op alone. */
static void blocking_kind(bool thread)
{
	static const unsigned char zero[sizeof(weft_op_t)];
	for (int f = 0; f < NFORMS; f++) {
		int before = atomic_load(&tcheck_failures);
		weft_op_t op = WEFT_OP_INIT;
		call_st c;
		setup(&c, (enum form)f);
		/* Ready: completes. */
		if (!writes(c.f))
			ready(&c);
		TCHECK_EQ(call(&c, &op), (ssize_t)c.len);
		settle(&c);
		/* Blocked, with a near deadline: it waits for it. */
		block(&c);
		c.deadline = weft_deadline_in(5 * WEFT_MSEC);
		c.done = 0;
		c.off = 0;
		TCHECK_EQ(call(&c, &op), -ETIMEDOUT);
		TCHECK(weft_now() >= c.deadline);
		/* Blocked until the peer, in another thread or task, acts. */
		c.deadline = wt_hang_deadline();
		if (thread) {
			pthread_t th;
			TCHECK_EQ(pthread_create(&th, NULL, ready_fn, &c), 0);
			TCHECK_EQ(call(&c, &op), (ssize_t)c.len);
			TCHECK_EQ(pthread_join(th, NULL), 0);
		} else {
			weft_task_t peer = wt_spawn(ready_fn, &c);
			TCHECK_EQ(call(&c, &op), (ssize_t)c.len);
			wt_join(peer);
		}
		settle(&c);
		TCHECK_EQ(memcmp(&op, zero, sizeof op), 0);
		teardown(&c);
		form_checked(&c, before);
	}
}

static void *coroutine_main(void *a)
{
	(void)a;
	blocking_kind(false);
	return NULL;
}

static void test_coroutines_block(void **state)
{
	(void)state;
	wt_run(coroutine_main, NULL, 2);
}

static void test_threads_block(void **state)
{
	(void)state;
	/* Outside any runtime, then with one running (the default runtime). */
	atomic_store(&tcheck_failures, 0);
	blocking_kind(true);
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	blocking_kind(true);
	assert_int_equal(weft_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		WT_IO_TEST(test_completes_at_once),
		WT_IO_TEST(test_registers_then_completes),
		WT_IO_TEST(test_past_deadline_polls),
		WT_IO_TEST(test_deadline_passes_while_registered),
		WT_IO_TEST(test_cancel_while_registered),
		WT_IO_TEST(test_second_registration_is_busy),
		WT_IO_TEST(test_op_freed_on_completion),
		WT_IO_TEST(test_read_full_progress_across_repeats),
		WT_IO_TEST(test_write_all_and_sendfile_progress_across_repeats),
		WT_IO_TEST(test_cancel_part_way),
		WT_IO_TEST(test_repeat_with_a_shorter_length),
		WT_IO_TEST(test_coroutines_block),
		WT_IO_TEST(test_threads_block),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
