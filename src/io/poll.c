/* poll.c - the netpoller's core: per-descriptor waiter slots, waiting
 * (blocking and stackless), weft_fd_wait, weft_close, and installing the
 * poller in a runtime. The backends are poll_epoll.c (edge-triggered epoll)
 * and poll_uring.c (io_uring poll requests); poll_impl.h is what they share.
 *
 * Pieces
 * ------
 * One weft_io per runtime, installed as the runtime's poller
 * (weft_poller_ops_t) by the first I/O call made in it. It owns the backend
 * (an epoll set, or an io_uring), an eventfd that wake() writes to (so a
 * blocked poll returns), a waiter count, and a table of io_slot indexed by
 * descriptor number (chunks of 1024 slots, allocated on first use and freed
 * with the runtime). A slot holds the readiness bits the poller has seen and
 * nobody has consumed yet (`ready`), a generation number, and the list of
 * tasks parked on the descriptor, each wanting some bits (POLLIN, POLLOUT;
 * POLLERR and POLLHUP end every wait, POLLRDHUP every read wait).
 *
 * Registration: a descriptor weft does I/O on is registered once
 * (weft__io_own; weft's sockets at creation, other descriptors at their first
 * wait), made O_NONBLOCK first if it was not (a deadline cannot end a system
 * call that blocks; calls on a descriptor not registered yet make it
 * non-blocking themselves, weft__io_begin), and must then be closed with
 * weft_close - from any thread: every poller is on a process-wide list
 * that weft_close also looks in ("every poller" below). epoll: EPOLL_CTL_ADD with
 * EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET; io_uring: one multishot poll for the
 * same bits, armed at the first wait. Reports carry (generation << 32 | fd).
 * weft_close bumps the generation (reports of the old registration are
 * ignored from then on), wakes the waiters with -EBADF, drops the
 * registration and closes.
 *
 * Edge-triggered rules: the kernel reports a descriptor when it becomes
 * ready (and again at every new arrival), never "it is still ready". So the
 * poller records every report, and a task waits only after its operation
 * said EAGAIN, and its wait returns at once if a report came after the
 * operation began. weft's own operations know that by counting reports
 * (see "Several tasks on one descriptor" below); weft_fd_wait uses the bits
 * in slot->ready, consumed by the wait that returns on them. A stale report
 * (its data already read) costs one EAGAIN and nothing else. A report is
 * recorded even when it wakes a parked waiter: another task may have had
 * EAGAIN on the same descriptor and not have linked itself yet. POLLERR
 * and POLLHUP end a wait once, like the others: a real hang-up or error
 * makes the operation fail instead of saying EAGAIN, so nobody waits after
 * it; a stale one (io_uring reports the state at arming time, and an
 * unconnected TCP socket polls as POLLOUT|POLLHUP) must not make every
 * later wait return at once.
 *
 * Why no wake-up is lost: under the slot's lock the poller sets the bits and
 * then unlinks and unparks every waiter whose bits are set; under the same
 * lock a waiter checks the bits (and the generation it started from) before
 * it links itself. Either the waiter sees the bit, or the poller sees the
 * waiter. weft_unpark remembers a wake that comes before the park.
 *
 * Several tasks on one descriptor. A bit is not enough when several tasks
 * read (or accept, or write) one descriptor: three readers get EAGAIN, a
 * write of three bytes arrives and is reported once, and the first reader
 * to look at the bit consumes it; a second reader whose EAGAIN came before
 * the report finds no bit, parks, and stays parked with a byte queued. So
 * the poller also counts reports per direction (in_edges: POLLIN,
 * POLLRDHUP, POLLERR, POLLHUP; out_edges: POLLOUT, POLLERR, POLLHUP), and
 * weft's own operations take a mark of both counts right before each
 * attempt (weft__io_call_mark). The wait after an EAGAIN ends at once if its
 * direction's count moved since the mark; if not, any bit still set came
 * before the attempt, which saw its data gone, so it is ignored. A marked
 * wait neither reads nor consumes bits, so no task can take another's
 * report. The count is bumped under the slot's lock, so the rule above
 * holds for it too. Waits without a mark (weft_fd_wait, which asks poll(2)
 * itself) use and consume the bits.
 *
 * Who polls: the scheduler (src/sched/worker.c) calls poll(ctx, 0) between
 * tasks and poll(ctx, timeout) in the one idle worker that sleeps in it; at
 * most one thread is inside poll at a time, so the event buffer and the
 * io_uring completion queue have a single consumer. With epoll, poll(ctx, 0)
 * returns at once without a system call while no task waits on a
 * descriptor (the atomic count nwait); a report that arrives meanwhile stays
 * queued in the kernel until someone waits. io_uring's poll(ctx, 0) only
 * reads the completion ring, so it keeps no count. A blocking poll also sleeps on the eventfd, so
 * wake() (a write to it) ends it; a wake before the poll leaves the eventfd
 * readable, so the next poll returns at once. A sim runtime has no idle
 * worker: its loop alone polls, always with timeout 0 (sched/sim.c), its
 * poller is epoll, and only local descriptors may register with it or be
 * waited on from its owner's tasks (sim.c in this module).
 *
 * weft_fd_wait (descriptors of other libraries): these may be closed with a
 * plain close(2) and their number reused, so it does not trust the slot's
 * registration: it clears the slot's bits, asks poll(2) with no timeout
 * (ready now: done), and otherwise (re)arms the descriptor - epoll MOD, or
 * ADD if the set does not hold this file; io_uring a one-shot poll per
 * wanted direction, cancelled when the wait ends - parks until the poller
 * reports it, and asks poll(2) again (so its answer is never stale).
 *
 * One wait engine. Every io call (socket.c, weft_fd_wait below, the
 * server's accept loop) is written once, as "attempt; if it would block,
 * wait" (the loop is in io_impl.h): weft__io_begin starts it, and after
 * each attempt that says EAGAIN, weft__io_wait waits the way the caller
 * can (io_call.kind, asked of the scheduler at most once per call):
 *  - a coroutine parks on the slot (slot_wait: wait_begin, weft_park,
 *    wait_end);
 *  - a plain thread poll(2)s (thread_wait): its registrations would land
 *    in whatever runtime is current, so it keeps out of the slots;
 *  - a stackless task in a _step form registers in its weft_op_t (the step
 *    protocol of weft/sched.h): wait_begin links the waiter node kept in
 *    the op, and the call returns -EINPROGRESS. The step function returns
 *    WEFT_STEP_PARKED and repeats the same call, which starts over at the
 *    top: weft__io_begin sees the op's wait has ended (weft_step_begin),
 *    finishes it (wait_end, unlinking the node if no report did) and
 *    either returns how it ended (-ETIMEDOUT, -ECANCELED, -EBADF) or lets
 *    the call attempt again. So a wait is cut in two around the step
 *    function's return, and the retry loop is the blocking one;
 *  - a stackless task in a blocking form cannot wait: -EWOULDBLOCK
 *    (-ETIMEDOUT once the deadline has passed), nothing registered.
 * What a call has done before it waits is its own business, except for
 * the calls that move a whole buffer (weft_read_full, weft_write_all,
 * weft_sendfile): their count of bytes moved (io_call.progress) goes into
 * the op with the registration and comes back out in the repeat, which
 * goes on from there; the caller repeats with the same buffer and length.
 * An op is 64 bytes: the waiter (40), what wait_end needs (16) and that
 * count (8).
 *
 * io_uring specifics (submission batching, polls that end on their own,
 * closing a polled file) are described in poll_uring.c.
 */
#include "poll_impl.h"

#include <assert.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../base/list.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define WEFT_HAVE_VALGRIND 1
#endif
#endif

static const weft_poller_ops_t io_ops;

/* The waiter count exists for epoll, whose poll(ctx, 0) is a system call
 * worth skipping when nobody waits; io_uring's looks at the completion ring
 * in memory, so its waits do not pay for two shared atomics. */
static inline void nwait_add(weft_io *io, long d)
{
	/* A wait leaving the count is in it: never below zero. */
	assert(d > 0 || io->backend != BACKEND_EPOLL || atomic_load_explicit(&io->nwait, memory_order_relaxed) >= -d);
	if (io->backend == BACKEND_EPOLL)
		atomic_fetch_add_explicit(&io->nwait, d, d > 0 ? memory_order_seq_cst : memory_order_relaxed);
}

/* ------------------------------------------------------------ slots */

io_slot *weft__io_slot(weft_io *io, int fd, bool create)
{
	if (fd < 0 || (unsigned)fd >= (unsigned)IO_NCHUNKS * IO_CHUNK)
		return NULL;
	unsigned i = (unsigned)fd >> IO_CHUNK_BITS;
	/* acquire: the chunk's zeroed contents are visible before we use it. */
	io_slot *c = atomic_load_explicit(&io->chunks[i], memory_order_acquire);
	if (!c) {
		if (!create)
			return NULL;
		io_slot *n = calloc(IO_CHUNK, sizeof *n);
		if (!n)
			return NULL;
		if (atomic_compare_exchange_strong_explicit(&io->chunks[i], &c, n, memory_order_acq_rel,
							    memory_order_acquire))
			c = n;
		else
			free(n);
	}
	return &c[fd & (IO_CHUNK - 1)];
}

static void unlink_waiter(io_slot *s, io_waiter *n)
{
	assert(slot_locked(s) && n->linked && s->head != NULL);
	assert((n->prev == NULL) == (s->head == n) && (!n->next || n->next->prev == n));
	WEFT_LIST_UNLINK(s->head, n, next, prev);
	n->linked = false;
}

static void link_waiter(io_slot *s, io_waiter *n)
{
	assert(slot_locked(s) && !n->linked && (!s->head || s->head->prev == NULL));
	WEFT_LIST_PUSH(s->head, n, next, prev);
	n->linked = true;
}

/* Under the lock: wake every waiter whose bits are in mask (all, for a
 * negative status). */
static int wake_matching(io_slot *s, uint32_t mask, int status)
{
	assert(slot_locked(s));
	int woke = 0;
	for (io_waiter *n = s->head, *next; n; n = next) {
		next = n->next;
		assert(n->linked && n->status == 0); /* nothing delivered to a linked waiter yet */
		if (status < 0 || (n->match & mask)) {
			unlink_waiter(s, n);
			n->status = status < 0 ? status : (int)(mask & n->match);
			/* Once unparked, the waiter returns without the lock and
			 * its frame (n) is gone: nothing of n is read after this. */
			if (weft_unpark(n->waker, 0))
				woke++;
		}
	}
	return woke;
}

#define IN_EDGE_BITS (POLLIN | POLLRDHUP | ERRBITS)
#define OUT_EDGE_BITS (POLLOUT | ERRBITS)

/* Under the slot lock: count a report in the directions it ends waits of. */
static void count_report(io_slot *s, uint32_t events)
{
	assert(slot_locked(s)); /* the counts are bumped under the lock only */
	if (events & IN_EDGE_BITS)
		atomic_store_explicit(&s->in_edges, atomic_load_explicit(&s->in_edges, memory_order_relaxed) + 1,
				      memory_order_release);
	if (events & OUT_EDGE_BITS)
		atomic_store_explicit(&s->out_edges, atomic_load_explicit(&s->out_edges, memory_order_relaxed) + 1,
				      memory_order_release);
}

int weft__io_report(io_slot *s, uint32_t events, uint32_t seen)
{
	assert(slot_locked(s));
	if (events & seen)
		atomic_fetch_or_explicit(&s->seen, events & seen, memory_order_relaxed);
	/* Recorded even when it wakes someone: another task may have had
	 * EAGAIN and not be linked yet (several tasks on one descriptor); a
	 * stale bit costs one EAGAIN, a missing one a lost wake-up. */
	count_report(s, events);
	atomic_fetch_or_explicit(&s->ready, events, memory_order_release);
	return wake_matching(s, events, 0);
}

int weft__io_deliver(weft_io *io, int fd, uint32_t gen, uint32_t events)
{
	io_slot *s = weft__io_slot(io, fd, false);
	if (!s)
		return 0;
	slot_lock(s);
	int woke = 0;
	if ((atomic_load_explicit(&s->gen, memory_order_relaxed) & GEN_MASK) == gen)
		woke = weft__io_report(s, events, SEEN_BITS);
	slot_unlock(s);
	return woke;
}

/* ------------------------------------------------------------ the poller */

void weft__io_drain_wake(weft_io *io)
{
	/* Only the polling thread reads; a wake after this read makes the
	 * eventfd readable again and is reported by the next poll. */
	ssize_t r = read(io->efd, &io->efd_buf, sizeof io->efd_buf);
	(void)r;
}

static int io_poll(void *ctx, weft_time_t timeout)
{
	weft_io *io = ctx;
#ifdef WEFT_HAVE_URING
	if (io->backend == BACKEND_URING)
		return weft__uring_poll(io, timeout);
#endif
	if (timeout == 0 && atomic_load_explicit(&io->nwait, memory_order_relaxed) == 0)
		return 0;
	return weft__epoll_poll(io, timeout);
}

void weft__io_wake(void *ctx)
{
	weft_io *io = ctx;
	uint64_t one = 1;
	ssize_t r = write(io->efd, &one, sizeof one);
	(void)r; /* EAGAIN: the counter is full, so the eventfd is readable anyway */
}

static void pollers_remove(weft_io *io);

static void io_destroy(void *ctx)
{
	weft_io *io = ctx;
	pollers_remove(io);
#ifdef WEFT_HAVE_URING
	if (io->backend == BACKEND_URING)
		weft__uring_exit(io);
#endif
	if (io->epfd >= 0)
		close(io->epfd);
	close(io->efd);
	for (int i = 0; i < IO_NCHUNKS; i++)
		free(atomic_load_explicit(&io->chunks[i], memory_order_relaxed));
	free(io);
}

static const weft_poller_ops_t io_ops = {io_poll, weft__io_wake, io_destroy};

/* ------------------------------------------------------------ installing */

static _Atomic int fallback_logged; /* one log line per process, not per runtime */

void weft__io_log_fallback(const char *why, int err)
{
	if (!atomic_exchange(&fallback_logged, 1))
		fprintf(stderr, "weft: io_uring unavailable (%s: %s), using epoll\n", why, weft_strerror(err));
}

static weft_io *io_create(bool sim)
{
	weft_io *io =
		aligned_alloc(WEFT_CACHELINE, (sizeof(weft_io) + WEFT_CACHELINE - 1) & ~(size_t)(WEFT_CACHELINE - 1));
	if (!io)
		return NULL;
	memset(io, 0, sizeof *io);
	io->epfd = -1;
	io->sim = sim;
	io->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (io->efd < 0) {
		free(io);
		return NULL;
	}
	/* The default (auto) is epoll: it used less server CPU and gave lower
	 * latency than io_uring in every echo comparison on the machines we
	 * measure (bench/RESULTS.md); io_uring is there on request, but never
	 * under sim: its completions come from kernel threads (sim.c). */
	const char *want = getenv("WEFT_IO");
	bool uring = !sim && want && strcmp(want, "uring") == 0;
#if defined(WEFT_HAVE_VALGRIND) && defined(WEFT_HAVE_URING)
	/* Valgrind does not model io_uring: under it the completions of the
	 * polls stop coming and the runtime hangs (io/test_process, which runs
	 * its cases on both backends, hung in its first io_uring case). */
	if (uring && RUNNING_ON_VALGRIND) {
		weft__io_log_fallback("running under Valgrind, which does not model io_uring", -ENOSYS);
		uring = false;
	}
#endif
#ifdef WEFT_HAVE_URING
	if (uring && weft__uring_init(io) == 0)
		return io;
#else
	if (uring)
		weft__io_log_fallback("weft was built without liburing", -ENOSYS);
#endif
	if (weft__epoll_init(io) < 0) {
		io_destroy(io);
		return NULL;
	}
	return io;
}

/* A write to a pipe or socket whose reader is gone must give EPIPE, not
 * kill the process. Socket writes use MSG_NOSIGNAL, but write(2) to a pipe
 * and sendfile(2) cannot, and the signal goes to the thread that wrote. So
 * while SIGPIPE has its default disposition, weft installs a handler, and
 * marks its own such writes in a thread-local flag (IO_NOSIGPIPE): during
 * one the handler returns and the write fails with EPIPE; at any other
 * time it does what the default would have done (the process ends, killed
 * by SIGPIPE), so the program's own writes behave as before.
 *
 * A handler, not SIG_IGN: an ignored signal stays ignored across exec, so
 * every child started by other code (system, popen) would inherit it,
 * while exec resets a handler to the default. Children weft starts get
 * every disposition reset anyway (process.c). A program that sets SIGPIPE
 * itself (to SIG_IGN or a handler) before weft's first I/O keeps its
 * choice; one that resets it to SIG_DFL later gives that guarantee up for
 * weft's pipe writes. */
__thread bool weft__io_in_write __attribute__((tls_model("initial-exec")));

static pthread_once_t sigpipe_once = PTHREAD_ONCE_INIT;

static void sigpipe_handler(int sig)
{
	if (weft__io_in_write)
		return; /* a write of weft's: it fails with EPIPE */
	/* Someone else's write (or kill): the default action. The signal is
	 * blocked while this handler runs; raised again with the default
	 * disposition, it ends the process as soon as the handler returns. */
	int saved = errno;
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	raise(sig);
	errno = saved;
}

static void sigpipe_install(void)
{
	struct sigaction sa;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL && !(sa.sa_flags & SA_SIGINFO)) {
		sa.sa_handler = sigpipe_handler;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGPIPE, &sa, NULL);
	}
}

void weft__io_sigpipe(void)
{
	pthread_once(&sigpipe_once, sigpipe_install);
}

/* ------------------------------------------------------------ every poller */

/* Descriptors belong to the process, registrations to a runtime's poller:
 * a descriptor registered by a task of one runtime may be closed from a
 * plain thread or from a task of another runtime, and weft_close must then
 * find the registration (or the poller keeps a stale one: io_uring holds
 * the file open, and the number, once reused, is never registered again).
 * So every installed poller is also on this process-wide list - like the
 * signal registry, state that belongs to the process, not to a runtime.
 * A weft_close that works on a poller from outside pins it (users) with
 * the list's lock dropped (it may park); io_destroy marks the poller dying,
 * waits until no one uses it, then unlinks it. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a dying poller's users dropped to 0 */
	weft_io *head;
	_Atomic int n; /* pollers listed */
} pollers = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0};

static void pollers_add(weft_io *io)
{
	pthread_mutex_lock(&pollers.mu);
	io->next_io = pollers.head;
	pollers.head = io;
	io->listed = true;
	atomic_fetch_add(&pollers.n, 1);
	pthread_mutex_unlock(&pollers.mu);
}

static void pollers_remove(weft_io *io)
{
	if (!io->listed)
		return;
	pthread_mutex_lock(&pollers.mu);
	io->dying = true;
	while (io->users > 0)
		pthread_cond_wait(&pollers.cv, &pollers.mu);
	assert(io->users == 0);
	weft_io **pp = &pollers.head;
	while (*pp != io)
		pp = &(*pp)->next_io;
	*pp = io->next_io;
	io->listed = false;
	atomic_fetch_sub(&pollers.n, 1);
	pthread_mutex_unlock(&pollers.mu);
}

/* rt's poller, installing it on first use (from any thread). */
static weft_io *io_install(weft_runtime_t *rt)
{
	weft_io *io = weft_runtime_poller(rt, &io_ops);
	if (io)
		return io;
	weft__io_sigpipe();
	io = io_create(weft_runtime_is_sim(rt));
	if (!io)
		return NULL;
	pollers_add(io); /* before it is visible: weft_close finds every registration */
	if (weft_runtime_set_poller(rt, &io_ops, io) < 0) {
		io_destroy(io); /* someone else installed one first: use theirs */
		return weft_runtime_poller(rt, &io_ops);
	}
	return io;
}

/* The poller of the caller's runtime, installing it on first use. */
static weft_io *io_get(void)
{
	weft_runtime_t *rt = weft_runtime_current();
	return rt ? io_install(rt) : NULL;
}

/* The poller if installed, without installing it. */
static weft_io *io_peek(void)
{
	weft_runtime_t *rt = weft_runtime_current();
	return rt ? weft_runtime_poller(rt, &io_ops) : NULL;
}

const char *weft_io_backend(weft_runtime_t *rt)
{
	if (!rt)
		rt = weft_runtime_current();
	if (!rt)
		return NULL;
	weft_io *io = io_install(rt);
	if (!io)
		return NULL;
	return io->backend == BACKEND_URING ? "uring" : "epoll";
}

/* ------------------------------------------------------------ waiting */

/* A plain thread (or a runtime with another poller): poll(2). Not the
 * owner thread of a sim: nothing else in the sim could run meanwhile to
 * make fd ready (sim.c). */
static int thread_wait(int fd, uint32_t events, weft_time_t deadline)
{
	if (weft__io_sim())
		return -ENOTSUP;
	struct pollfd p = {.fd = fd, .events = (short)events};
	for (;;) {
		int ms = -1;
		if (deadline != WEFT_NEVER) {
			weft_time_t now = weft_now();
			if (deadline <= now) { /* (deadline - now would overflow for INT64_MIN) */
				ms = 0;
			} else {
				weft_time_t left = deadline - now;
				ms = left / WEFT_MSEC + 1 > INT_MAX ? INT_MAX : (int)(left / WEFT_MSEC + 1);
			}
		}
		int r = poll(&p, 1, ms);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r > 0)
			return p.revents & POLLNVAL ? -EBADF : p.revents;
		if (deadline != WEFT_NEVER && weft_now() >= deadline)
			return -ETIMEDOUT;
	}
}

/* The backend could not arm a poll (io_uring's ring is full): the waiter
 * must not park without one; it lets the poller drain the ring, then
 * retries its operation. */
#define WAIT_NOROOM (-EAGAIN)

/* Whether a report that ends a wait for events came after mark m. */
static bool moved_since(const io_slot *s, uint32_t events, const io_mark *m)
{
	return ((events & POLLIN) && atomic_load_explicit(&s->in_edges, memory_order_relaxed) != m->in) ||
	       ((events & POLLOUT) && atomic_load_explicit(&s->out_edges, memory_order_relaxed) != m->out);
}

/* First half of a wait on slot s for events (n->waker already prepared):
 * > 0, the ready mask (the bits were set: consumed, nothing linked); < 0,
 * an error (-EBADF: the generation moved on from gen) or WAIT_NOROOM;
 * 0, n is linked and the backend armed: park, then call wait_end. With a
 * mark (`since`, taken before the operation that said EAGAIN) the counts
 * decide and the bits are left alone (see "Several tasks on one
 * descriptor" above). `foreign` (weft_fd_wait): with io_uring, arm one-shot
 * polls for the wanted directions instead of the registered multishot
 * poll. */
static int wait_begin(weft_io *io, io_slot *s, int fd, uint32_t gen, uint32_t events, bool foreign,
		      const io_mark *since, io_waiter *n)
{
	n->match = (uint16_t)(events | ERRBITS | ((events & POLLIN) ? POLLRDHUP : 0));
	n->status = 0;
	n->linked = false;
	nwait_add(io, 1);
	slot_lock(s);
	if (atomic_load_explicit(&s->gen, memory_order_relaxed) != gen) {
		slot_unlock(s);
		nwait_add(io, -1);
		return -EBADF;
	}
	uint32_t r;
	if (since) {
		r = moved_since(s, events, since) ? events : 0;
	} else {
		r = atomic_load_explicit(&s->ready, memory_order_relaxed) & n->match;
		if (r)
			atomic_fetch_and_explicit(&s->ready, ~n->match, memory_order_relaxed);
	}
	if (r) {
		slot_unlock(s);
		nwait_add(io, -1);
		return (int)r;
	}
	link_waiter(s, n);
#ifdef WEFT_HAVE_URING
	if (io->backend == BACKEND_URING && !weft__uring_arm(io, s, fd, gen, events, !foreign)) {
		unlink_waiter(s, n);
		slot_unlock(s);
		assert(io->backend != BACKEND_EPOLL); /* so no waiter count to give back */
		return WAIT_NOROOM;
	}
#else
	(void)fd, (void)foreign;
#endif
	slot_unlock(s);
	return 0;
}

/* Second half, after the park ended with e (0: woken, else -ETIMEDOUT,
 * -ECANCELED): the ready mask or a negative errno. */
static int wait_end(weft_io *io, io_slot *s, int fd, uint32_t gen, uint32_t events, bool foreign, io_waiter *n, int e)
{
	nwait_add(io, -1);
	/* Woken (e == 0): whoever woke us unlinked us first and handed us the
	 * bits (wake_matching), so there is nothing to undo. */
	if (e == 0 && !(foreign && io->backend == BACKEND_URING)) {
		assert(!n->linked && n->status != 0);
		return n->status;
	}
	slot_lock(s);
	if (n->linked)
		unlink_waiter(s, n);
	/* Unlinked by a report (a status) or by us (none yet). */
	assert(!n->linked);
#ifdef WEFT_HAVE_URING
	if (foreign && io->backend == BACKEND_URING)
		weft__uring_disarm(io, s, fd, gen, events);
#else
	(void)fd, (void)gen, (void)events;
#endif
	slot_unlock(s);
	return e < 0 ? e : n->status;
}

/* Park on slot s until one of events (or an error bit) is reported, the
 * generation moves on from gen (closed: -EBADF), or the deadline. */
static int slot_wait(weft_io *io, io_slot *s, int fd, uint32_t gen, uint32_t events, weft_time_t deadline, bool foreign,
		     const io_mark *since)
{
	io_waiter n;
	n.waker = weft_park_prepare();
	int r = wait_begin(io, s, fd, gen, events, foreign, since, &n);
	if (r == WAIT_NOROOM) {
		weft_yield();
		return (int)events;
	}
	if (r != 0)
		return r;
	return wait_end(io, s, fd, gen, events, foreign, &n, weft_park(n.waker, deadline));
}

/* Set O_NONBLOCK on fd if it is not set. 0 or -errno. */
static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static int own_slot(weft_io *io, io_slot *s, int fd, unsigned how)
{
	if (io->sim) { /* local descriptors only (sim.c) */
		int r = weft__io_sim_local(fd);
		if (r < 0)
			return r;
	}
	/* A registered descriptor is non-blocking (weft__io_begin relies on
	 * it): a wait with a deadline is no use if the call itself blocks. */
	if (!(how & IO_OWN_NONBLOCK)) {
		int r = set_nonblock(fd);
		if (r < 0)
			return r;
	}
	assert(fcntl(fd, F_GETFL) < 0 || (fcntl(fd, F_GETFL) & O_NONBLOCK)); /* IO_OWN_NONBLOCK was true */
	bool notsock = how & IO_OWN_NOTSOCK;
	/* The drained-read shortcut (socket.c) needs "a short read emptied the
	 * queue", which holds for TCP only: a Unix stream read stops at a
	 * message carrying descriptors or credentials. TCP's exception, urgent
	 * data (a read stops at its mark), is reported as POLLPRI by epoll and
	 * turns the shortcut off (slot->seen); see socket.c for io_uring. */
	int proto = 0;
	socklen_t plen = sizeof proto;
	bool tcp = !notsock && getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &plen) == 0 && proto == IPPROTO_TCP;
	slot_lock(s);
	if (atomic_load_explicit(&s->flags, memory_order_relaxed) & IO_REG) {
		slot_unlock(s); /* registered meanwhile by another task's first wait */
		return 0;
	}
	uint32_t gen = atomic_load_explicit(&s->gen, memory_order_relaxed) + 1;
	atomic_store_explicit(&s->gen, gen, memory_order_relaxed);
	atomic_store_explicit(&s->ready, 0, memory_order_relaxed);
	atomic_store_explicit(&s->seen, 0, memory_order_relaxed);
	atomic_store_explicit(&s->flags, IO_REG | (notsock ? IO_NOTSOCK : 0) | (tcp ? IO_TCP : 0),
			      memory_order_release);
	s->armed = 0;		     /* polls of an earlier file are ignored (their generation is old) */
	wake_matching(s, 0, -EBADF); /* waiters of a file that had this number */
	assert(s->head == NULL);
	slot_unlock(s);
	/* epoll: register for good; io_uring arms its poll at the first wait. */
	int r = io->backend == BACKEND_EPOLL ? weft__epoll_register(io, fd, gen) : 0;
	if (r < 0) {
		slot_lock(s);
		if (atomic_load_explicit(&s->gen, memory_order_relaxed) == gen)
			atomic_store_explicit(&s->flags, 0, memory_order_relaxed);
		slot_unlock(s);
	}
	return r;
}

int weft__io_own(int fd, unsigned how)
{
	if (fd < 0)
		return -EBADF;
	/* Plain threads wait with poll(2): a registration made from one would
	 * land in whatever runtime is current there. The first wait in a task
	 * registers it. */
	if (!weft_self())
		return (how & IO_OWN_NONBLOCK) ? 0 : set_nonblock(fd);
	weft_io *io = io_get();
	if (!io)
		return 0;
	io_slot *s = weft__io_slot(io, fd, true);
	if (!s) /* beyond the table (no such descriptor, normally), or no memory */
		return fcntl(fd, F_GETFD) < 0 ? -errno : -ENOMEM;
	if (atomic_load_explicit(&s->flags, memory_order_acquire) & IO_REG)
		return 0;
	return own_slot(io, s, fd, how);
}

/* fd's slot if it is registered (IO_REG), with its generation. The flag
 * before the generation: own_slot stores the generation, then the flag
 * (release), so a registration seen here has its generation seen too.
 * (Read the other way round, a first wait racing another task's
 * registration could keep the old generation: a false -EBADF.) */
static bool take_registered(io_call *c, weft_io *io, io_slot *s)
{
	if (!s || !(atomic_load_explicit(&s->flags, memory_order_acquire) & IO_REG))
		return false;
	c->io = io;
	c->s = s;
	c->gen = atomic_load_explicit(&s->gen, memory_order_acquire);
	return true;
}

/* The slot weft_fd_wait uses (NULL: fd out of range or no memory). The
 * caller reads the descriptor itself, so the drained mark of weft_read
 * (socket.c) no longer holds. */
static io_slot *foreign_slot(weft_io *io, int fd)
{
	io_slot *s = weft__io_slot(io, fd, true);
	if (s && (atomic_load_explicit(&s->flags, memory_order_relaxed) & IO_DRAINED))
		atomic_fetch_and_explicit(&s->flags, ~IO_DRAINED, memory_order_relaxed);
	return s;
}

/* ------------------------------------------------------------ the wait engine */

/* A stackless task's registration: the waiter node of its parked wait,
 * what wait_end needs to finish that wait in the repeated call, and the
 * call's progress (the bytes a whole-buffer call or sendfile has moved so
 * far, which the repeat continues from). 56 bytes, so that a weft_op_t is
 * 64: the events the wait is for are in n (n.match holds their
 * directions, which is all wait_end needs of them; n.status holds them
 * while the op is OP_RETRY, when nothing is linked), whether the
 * descriptor is foreign is a bit of n.owner, and the slot's generation is
 * kept to 24 bits, as the poller's event data keeps it (GEN_MASK). */
typedef struct io_op {
	uint8_t call;	/* the step call's id (first: weft_step_begin) */
	uint8_t gen[3]; /* the slot's generation when the wait began, low 24 bits */
	int fd;		/* the descriptor (a call whose object is not its descriptor needs it) */
	io_waiter n;	/* n.owner: OP_IDLE, OP_PARKED or OP_RETRY, | OP_FOREIGN */
	size_t progress;
} io_op;

enum {
	OP_IDLE,   /* not registered (whatever it held before) */
	OP_PARKED, /* n is (or was) linked on fd's slot: wait_end finishes it */
	OP_RETRY,  /* the backend had no room for a poll: nothing linked, try again */
	OP_STATE = 0x7f,
	OP_FOREIGN = 0x80 /* OP_PARKED on a descriptor that is not weft's (weft_fd_wait) */
};

static inline void op_set_gen(io_op *op, uint32_t gen)
{
	op->gen[0] = (uint8_t)gen;
	op->gen[1] = (uint8_t)(gen >> 8);
	op->gen[2] = (uint8_t)(gen >> 16);
}

static inline uint32_t op_gen(const io_op *op)
{
	return (uint32_t)op->gen[0] | (uint32_t)op->gen[1] << 8 | (uint32_t)op->gen[2] << 16;
}

_Static_assert(sizeof(io_op) <= sizeof(((weft_op_t *)0)->opaque), "weft_op_t too small (its obj is the protocol's)");
_Static_assert(sizeof(io_op) == 56, "io_op grew");
_Static_assert(_Alignof(io_op) <= _Alignof(weft_op_t), "weft_op_t under-aligned");
_Static_assert(offsetof(io_op, call) == 0, "an op's first byte is its call's id");
_Static_assert((POLLIN | POLLOUT | POLLPRI | POLLRDHUP | ERRBITS) <= UINT16_MAX, "io_waiter.match is 16 bits");
_Static_assert(GEN_MASK == 0xffffffu, "io_op keeps 24 bits of a generation");

/* The registered wait of op has ended (weft_step_begin returned 1): finish
 * it. The ready mask, or how it ended (a negative errno). */
static int op_finish(io_op *op, int fd)
{
	uint8_t state = op->n.owner & OP_STATE;
	bool foreign = op->n.owner & OP_FOREIGN;
	/* Registered by this call (weft_step_begin): parked or to retry. */
	assert(state == OP_PARKED || state == OP_RETRY);
	op->n.owner = OP_IDLE;
	if (state == OP_RETRY)
		return op->n.status; /* the events asked: try again */
	int e = weft_park_result();
	weft_io *io = io_peek();
	io_slot *s = io ? weft__io_slot(io, fd, false) : NULL;
	assert(s != NULL); /* the slot was linked into, in this runtime's poller */
	if (!s)
		return e < 0 ? e : op->n.status;
	return wait_end(io, s, fd, op_gen(op), op->n.match & (POLLIN | POLLOUT), foreign, &op->n, e);
}

uint8_t weft__io_kind_of(io_call *c)
{
	assert(c->kind == IO_KIND_LATER);
	c->kind = !weft_can_park() ? (c->op ? IO_REGISTER : IO_REFUSE) : weft_self() ? IO_PARK : IO_POLL;
	return c->kind;
}

/* weft__io_begin's part for _step forms and foreign descriptors (the
 * blocking calls on weft's own descriptors skip it): the caller's kind now,
 * the op's last wait finished, a foreign call's slot. obj names the call's
 * object for weft_step_begin; fd_in_op: the call's descriptor is the one
 * its registration kept (weft__io_begin_obj). */
static __attribute__((noinline)) int begin_more(io_call *c, weft_op_t *opaque, uint8_t call, const void *obj,
						bool fd_in_op)
{
	int w = 0;
	if (opaque) {
		io_op *op = (io_op *)opaque;
		/* 0 in coroutines and threads, which block as the blocking form
		 * does and leave op alone. */
		int b = weft_step_begin(opaque, call, obj);
		if (b == 1 || b == -EINPROGRESS) {
			c->progress = op->progress; /* registered by this call: how far it got */
			if (fd_in_op)
				c->fd = op->fd;
		}
		if (b < 0)
			return b;
		assert(b == WEFT_STEP_BLOCKS || !weft_can_park()); /* only a stackless task registers */
		if (b != WEFT_STEP_BLOCKS) {
			c->op = opaque;
			c->kind = IO_REGISTER;
			if (b == 0)
				op->n.owner = OP_IDLE;
			else if ((w = op_finish(op, c->fd)) < 0) /* the same fd: weft_step_begin, or op's */
				return w;
		}
	}
	if (!c->foreign)
		return w;
	/* Not weft's descriptor: its mode stays; waits use any slot. */
	uint8_t kind = weft__io_kind(c);
	if (kind != IO_PARK && kind != IO_REGISTER)
		return w;
	weft_io *io = io_get();
	if (!io) {
		if (kind == IO_REGISTER)
			return -ENOMEM;
		c->kind = IO_POLL; /* no poller: poll(2), blocking the worker */
		return w;
	}
	if (io->sim) { /* not trusted to be the file a registration saw (sim.c) */
		int r = weft__io_sim_local(c->fd);
		if (r < 0)
			return r;
	}
	c->s = foreign_slot(io, c->fd);
	c->io = io;
	return c->s ? w : -EBADF;
}

static void call_init(io_call *c, int fd, weft_time_t deadline, unsigned how)
{
	c->fd = fd;
	c->kind = IO_KIND_LATER; /* asked when first needed: a call that does not wait may never need it */
	c->foreign = how & IO_CALL_FOREIGN;
	c->reader = how & IO_CALL_READ;
	c->deadline = deadline;
	c->op = NULL;
	c->io = NULL;
	c->s = NULL;
	c->progress = 0;
}

/* The last part of a start: c's descriptor, weft's own - its slot if it
 * is registered, else made non-blocking. 0 or -errno. */
static int take_fd(io_call *c)
{
	if (c->fd < 0)
		return -EBADF;
	weft_io *io = io_peek();
	if (io && take_registered(c, io, weft__io_slot_peek(io, c->fd)))
		return 0; /* made non-blocking when it was registered */
	int r = set_nonblock(c->fd);
	return r < 0 ? r : 0;
}

int weft__io_begin(io_call *c, int fd, weft_time_t deadline, weft_op_t *op, uint8_t call, unsigned how)
{
	call_init(c, fd, deadline, how);
	int w = 0;
	if (op || c->foreign) {
		w = begin_more(c, op, call, (const void *)(intptr_t)fd, false);
		if (w < 0 || c->foreign)
			return w;
	}
	int r = take_fd(c);
	return r < 0 ? r : w;
}

int weft__io_begin_obj(io_call *c, const void *obj, weft_time_t deadline, weft_op_t *op, uint8_t call)
{
	call_init(c, -1, deadline, 0);
	int w = op ? begin_more(c, op, call, obj, true) : 0;
	if (w < 0 || c->fd < 0)
		return w; /* (a new call: 0, and no descriptor yet) */
	/* A repeat: the registration's descriptor, registered when it waited. */
	int r = take_fd(c);
	return r < 0 ? r : w;
}

int weft__io_adopt(io_call *c, int fd)
{
	c->fd = fd;
	c->io = NULL;
	c->s = NULL;
	return take_fd(c);
}

/* The first wait of a call whose descriptor is not registered (it had no
 * valid mark): register it, so that the next attempt takes a valid mark.
 * events (try again), or a negative errno. */
static int call_register(io_call *c, uint32_t events)
{
	assert(!c->foreign && (c->kind == IO_PARK || c->kind == IO_REGISTER)); /* (known by now) */
	weft_io *io = io_get();
	if (!io) /* no poller: a coroutine waits in poll(2), blocking its worker */
		return c->kind == IO_PARK ? thread_wait(c->fd, events, c->deadline) : -ENOMEM;
	io_slot *s = weft__io_slot(io, c->fd, true);
	if (!s) /* beyond the table (no such descriptor, normally), or no memory */
		return fcntl(c->fd, F_GETFD) < 0 ? -errno : -ENOMEM;
	if (!take_registered(c, io, s)) {
		/* Non-blocking: weft__io_begin made it so. */
		int r = own_slot(io, s, c->fd, IO_OWN_NONBLOCK);
		if (r < 0)
			return r == -EPERM ? (int)events : r; /* -EPERM: a regular file, always ready */
		take_registered(c, io, s);
	}
	return (int)events;
}

/* Register a stackless task's wait in its op (see wait_begin): -EINPROGRESS,
 * or the ready mask / an error when it did not have to wait. */
static int step_wait(io_call *c, uint32_t events, const io_mark *since)
{
	io_op *op = (io_op *)c->op;
	/* weft__io_begin finished the op's last wait: idle, and the task may
	 * open a new one. */
	assert(op != NULL && op->n.owner == OP_IDLE && !weft_can_park());
	if (weft__io_deadline_passed(c->deadline))
		return -ETIMEDOUT; /* a past deadline polls: nothing to register */
	op->n.waker = weft_park_prepare();
	assert(op->n.waker.parker != NULL);
	op->progress = c->progress;
	op->fd = c->fd; /* (also for OP_RETRY: weft__io_begin_obj's repeat takes it) */
	int r = wait_begin(c->io, c->s, c->fd, c->gen, events, c->foreign, since, &op->n);
	if (r == WAIT_NOROOM) { /* come back after the others (and the poller) ran */
		op->n.owner = OP_RETRY;
		op->n.status = (int)events; /* (nothing linked: n is the op's) */
		weft_unpark(op->n.waker, 0);
	} else if (r != 0) {
		return r;
	} else {
		op_set_gen(op, c->gen);
		op->n.owner = OP_PARKED | (c->foreign ? OP_FOREIGN : 0);
		r = c->deadline == WEFT_NEVER ? 0 : weft_park_deadline(op->n.waker, c->deadline);
		if (r < 0) { /* no memory for the timer: give up the wait */
			op->n.owner = OP_IDLE;
			r = wait_end(c->io, c->s, c->fd, c->gen, events, c->foreign, &op->n, r);
			return r < 0 ? r : (int)events;
		}
	}
	r = weft_step_register(c->op);
	/* weft_step_begin let this task register, and nothing else has since. */
	assert(r == -EINPROGRESS);
	return r;
}

int weft__io_wait(io_call *c, uint32_t events, const io_mark *m)
{
	assert(events != 0 && (c->foreign ? m == NULL : m != NULL));
	uint8_t kind = weft__io_kind(c);
	/* Only a stackless task in a _step form holds an op. */
	assert((c->op != NULL) == (kind == IO_REGISTER));
	switch (kind) {
	case IO_POLL:
		return thread_wait(c->fd, events, c->deadline);
	case IO_REFUSE: /* a past deadline has passed; any other would be waited for */
		return weft__io_deadline_passed(c->deadline) ? -ETIMEDOUT : -EWOULDBLOCK;
	default:
		break;
	}
	if (!c->foreign) {
		if (!m->valid)
			return call_register(c, events);
		/* Data read other than by weft_read (see socket.c, read_some). */
		if ((events & POLLIN) && !c->reader &&
		    (atomic_load_explicit(&c->s->flags, memory_order_relaxed) & IO_DRAINED))
			atomic_fetch_and_explicit(&c->s->flags, ~IO_DRAINED, memory_order_relaxed);
	}
	assert(c->s != NULL && c->io != NULL);
	const io_mark *since = c->foreign ? NULL : m;
	if (kind == IO_PARK)
		return slot_wait(c->io, c->s, c->fd, c->gen, events, c->deadline, c->foreign, since);
	return step_wait(c, events, since);
}

/* ------------------------------------------------------------ weft_fd_wait */

static int check_fd_wait(int fd, uint32_t events)
{
	if (fd < 0)
		return -EBADF;
	if ((events & (POLLIN | POLLOUT)) == 0 || (events & ~(uint32_t)(POLLIN | POLLOUT | POLLPRI | POLLRDHUP)))
		return -EINVAL;
	return 0;
}

/* weft_fd_wait's check before each wait: forget old reports, then ask the
 * kernel what holds now (anything that becomes ready after this point is
 * reported again), and arm the descriptor with epoll. Returns the ready
 * mask, or 0 (c->gen: the generation to wait for), or a negative errno.
 * Callers that do not wait in the poller (no slot) only ask. */
static int foreign_check(io_call *c, uint32_t events)
{
	io_slot *s = c->s;
	if (s) {
		atomic_fetch_and_explicit(&s->ready, ~(events | ERRBITS | POLLRDHUP), memory_order_relaxed);
		c->gen = atomic_load_explicit(&s->gen, memory_order_acquire);
	}
	struct pollfd p = {.fd = c->fd, .events = (short)events};
	int r = poll(&p, 1, 0);
	if (r < 0)
		return -errno;
	if (r > 0)
		return p.revents & POLLNVAL ? -EBADF : p.revents;
	if (s && c->io->backend == BACKEND_EPOLL) {
		r = weft__epoll_arm_foreign(c->io, c->fd, c->gen);
		if (r < 0)
			return r == -EPERM ? (int)events : r; /* a regular file: always ready */
	}
	return 0;
}

/* weft_fd_wait and its _step form (and, with its own call id, the
 * process wait's). It does not assume the descriptor is
 * the same file from one call to the next (another library may close it
 * and reuse the number), so poll(2) has the last word after every wake-up
 * (a report may be stale, or a cancelled poll's). */
int weft__io_fd_wait(int fd, uint32_t events, weft_time_t deadline, weft_op_t *op, uint8_t call)
{
	int r = check_fd_wait(fd, events);
	if (r < 0)
		return r;
	io_call c;
	/* A wait's identity for the step protocol is its descriptor and its
	 * events: a repeat on op that asks for other events is another call,
	 * -EBUSY while op's wait is registered (weft_step_begin), as a repeat
	 * on another descriptor is. */
	call_init(&c, fd, deadline, IO_CALL_FOREIGN);
	r = begin_more(&c, op, call, (const void *)((uintptr_t)(uint32_t)fd | (uintptr_t)events << 32), false);
	if (r < 0)
		return r;
	for (;;) {
		r = foreign_check(&c, events);
		if (r != 0)
			return r;
		r = weft__io_wait(&c, events, NULL);
		if (r < 0)
			return r;
	}
}

int weft_fd_wait(int fd, uint32_t events, weft_time_t deadline)
{
	return weft__io_fd_wait(fd, events, deadline, NULL, WEFT__IO_FD_WAIT_STEP);
}

int weft_fd_wait_step(int fd, uint32_t events, weft_time_t deadline, weft_op_t *op)
{
	return op ? weft__io_fd_wait(fd, events, deadline, op, WEFT__IO_FD_WAIT_STEP) : -EINVAL;
}

/* ------------------------------------------------------------ the socket code's view */

void weft__io_connected(int fd)
{
	weft_io *io = io_peek();
	io_slot *s = io ? weft__io_slot(io, fd, false) : NULL;
	if (s)
		atomic_store_explicit(&s->seen, 0, memory_order_relaxed);
}

void weft__io_kick(weft_runtime_t *rt, int fd, uint32_t events)
{
	weft_io *io = rt ? weft_runtime_poller(rt, &io_ops) : io_peek();
	io_slot *s = io ? weft__io_slot(io, fd, false) : NULL;
	if (!s)
		return;
	slot_lock(s);
	count_report(s, events);
	atomic_fetch_or_explicit(&s->ready, events, memory_order_release);
	wake_matching(s, events, 0);
	slot_unlock(s);
}

bool weft__io_notsock(int fd)
{
	weft_io *io = io_peek();
	io_slot *s = io ? weft__io_slot(io, fd, false) : NULL;
	return s && (atomic_load_explicit(&s->flags, memory_order_relaxed) & IO_NOTSOCK);
}

void weft__io_set_notsock(int fd)
{
	weft_io *io = io_peek();
	io_slot *s = io ? weft__io_slot(io, fd, false) : NULL;
	if (s)
		atomic_fetch_or_explicit(&s->flags, IO_NOTSOCK, memory_order_relaxed);
}

/* ------------------------------------------------------------ closing */

/* Close fd's slot in io, if it has one: bump the generation (reports and
 * waits of the old file end), wake the waiters with -EBADF, drop the
 * registration; with io_uring, cancel its polls and wait (at most 100 ms)
 * until the poller has seen them end, so that close(2) really closes. */
static void slot_close(weft_io *io, int fd)
{
	io_slot *s = weft__io_slot(io, fd, false);
	if (!s)
		return;
	io_waiter closer = {0};
	bool wait = false;
	slot_lock(s);
	uint32_t gen = atomic_load_explicit(&s->gen, memory_order_relaxed);
	atomic_store_explicit(&s->gen, gen + 1, memory_order_relaxed);
	atomic_store_explicit(&s->flags, 0, memory_order_relaxed);
	atomic_store_explicit(&s->ready, 0, memory_order_relaxed);
	wake_matching(s, 0, -EBADF);
	assert(s->head == NULL); /* every waiter of the old generation is gone */
#ifdef WEFT_HAVE_URING
	if (io->backend == BACKEND_URING && weft__uring_close(io, s, fd, gen) && weft_can_park()) {
		closer.waker = weft_park_prepare();
		s->closer = &closer;
		wait = true;
	}
#endif
	slot_unlock(s);
	if (!wait)
		return;
	weft_time_t until = weft_deadline_in(100 * WEFT_MSEC);
	if (weft_park(closer.waker, until) == -ECANCELED) {
		/* A cancelled task cannot park: let the others (and the
		 * poller) run until the polls are gone. */
		for (bool done = false; !done && weft_now() < until;) {
			weft_yield();
			slot_lock(s);
			done = s->closer != &closer;
			slot_unlock(s);
		}
	}
	slot_lock(s);
	bool late = s->closer == &closer;
	if (late)
		s->closer = NULL;
	slot_unlock(s);
	/* A poll that has not ended keeps the file open after close(2): shut
	 * a socket down so its peer sees the end (ENOTSOCK for other
	 * descriptors is harmless). */
	if (late)
		shutdown(fd, SHUT_RDWR);
}

/* fd's slots in every other poller: a registration made by a task of
 * another runtime than the caller's (or, for a plain thread, than the
 * default one). Each poller is pinned while its slot is closed (which may
 * park), so its runtime cannot free it meanwhile (see "every poller"). */
static void close_elsewhere(weft_io *cur, int fd)
{
	pthread_mutex_lock(&pollers.mu);
	for (weft_io *io = pollers.head; io; io = io->next_io) {
		if (io == cur || io->dying || !weft__io_slot(io, fd, false))
			continue;
		io->users++;
		pthread_mutex_unlock(&pollers.mu);
		slot_close(io, fd);
		pthread_mutex_lock(&pollers.mu);
		/* Still listed (a dying poller waits for its users before it
		 * unlinks), so io->next_io is current. */
		assert(io->listed && io->users > 0);
		if (--io->users == 0 && io->dying)
			pthread_cond_broadcast(&pollers.cv);
	}
	pthread_mutex_unlock(&pollers.mu);
}

int weft_close(int fd)
{
	if (fd < 0)
		return -EBADF;
	weft_io *cur = io_peek();
	if (cur)
		slot_close(cur, fd);
	/* Other pollers exist: one of them may hold the registration. */
	if (atomic_load_explicit(&pollers.n, memory_order_acquire) > (cur ? 1 : 0))
		close_elsewhere(cur, fd);
	if (close(fd) < 0 && errno != EINTR) /* Linux frees fd even on EINTR */
		return -errno;
	return 0;
}
