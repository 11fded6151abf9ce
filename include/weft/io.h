/* weft/io.h - I/O: the netpoller, descriptors and sockets with deadlines,
 * the blocking pool, files, subprocesses and signals.
 *
 * Every blocking call here parks the calling task (never the worker), takes
 * an absolute deadline (WEFT_NEVER for none; -ETIMEDOUT when it passes), and
 * returns -ECANCELED when the task is cancelled. From a plain thread the
 * calls block the thread. Errors are negative errno values (weft_strerror).
 *
 * Lifetime (the POSIX destroy rule, for every object here): an object may
 * be closed, destroyed or freed as soon as every call on it has returned -
 * in particular by the task a wake-up let go, while whoever woke it is
 * still finishing: weft touches nothing of the object (nor a descriptor's
 * registration) after the wake-up that may let its owner free it. Each
 * section below says what this means for its objects.
 *
 * Under a simulation runtime (weft/sched.h, "simulation"; docs/io.md,
 * "Under the simulation"), in its tasks and on its owner thread, only what
 * a seed can repeat is allowed: descriptors that are pipes, AF_UNIX
 * sockets, eventfds or regular files; its poller is always epoll. These
 * return -ENOTSUP there: weft_socket of any family but AF_UNIX,
 * weft_bind_listen and weft_connect with another family's address,
 * weft_tcp_listen, weft_tcp_connect, weft_udp_bind, weft_getaddrinfo (and
 * their _step forms), weft_process_spawn, weft_signal_notify, a wait on
 * any other kind of descriptor, and every descriptor wait of the owner
 * thread itself (it would block the sim's only thread). The blocking pool
 * is modelled: fn runs at once in the calling task, which then waits a
 * latency drawn from the seed; fn must not wait for another task of the
 * sim.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <weft/chan.h>
#include <weft/exec.h>
#include <weft/sched.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ============================================= netpoller, descriptors, sockets */

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

/* The netpoller. Each runtime gets one on its first I/O call: epoll
 * (edge-triggered) or io_uring, chosen by the environment variable
 * WEFT_IO=epoll|uring|auto (default auto, which is epoll: it measured
 * faster; uring asks for io_uring, falling back to epoll with one line on
 * stderr saying why when the kernel does not allow it). Workers poll it
 * between tasks and sleep in it when idle; there is no poller thread.
 * See docs/io.md.
 *
 * Descriptors: every descriptor weft creates is O_NONBLOCK|O_CLOEXEC; close
 * it with weft_close (from any task or thread).
 *
 * Descriptors you pass in are made non-blocking. A deadline cannot end a
 * system call that blocks, so the first weft call that does I/O on a
 * descriptor in blocking mode (a pipe(2), a socket(2), an inherited stdin;
 * weft_read, weft_write, their vector, datagram, sendfile and _step forms,
 * weft_accept, weft_connect, and the listener given to weft_server_create)
 * sets O_NONBLOCK on it, and weft never clears it. O_NONBLOCK belongs to
 * the open file description, not to the number: every duplicate shares it
 * - dup(2)s, and the copies other processes hold (a terminal or pipe
 * inherited as stdin is shared with the shell and with siblings). Their
 * plain read(2)/write(2) then fail with EAGAIN where they used to wait, and
 * the change outlives this process. To keep another user's description
 * blocking, give weft a description of its own: open("/proc/self/fd/0",
 * O_RDONLY) (or "/dev/tty") opens a new one on the same pipe or terminal.
 * Do not clear O_NONBLOCK while weft uses a descriptor: a blocking call
 * would hold the worker past every deadline. weft_fd_wait only polls and
 * leaves the descriptor alone.
 *
 * SIGPIPE: a vanished reader gives -EPIPE, never a signal that kills.
 * Writes to sockets use MSG_NOSIGNAL; for writes that cannot (pipes,
 * sendfile), weft installs a SIGPIPE handler if SIGPIPE has its default
 * disposition (when a runtime's poller is installed, or at weft's first
 * such write, whichever comes first). The handler lets weft's own writes
 * fail with EPIPE and does what the default does for every other SIGPIPE
 * (the program's own writes still end the process). It is not SIG_IGN, so
 * children started by other code (system, popen) inherit the default
 * (exec resets a handler, but keeps an ignored signal ignored). A program
 * that sets SIGPIPE itself (SIG_IGN, its own handler) keeps its setting;
 * one that resets it to SIG_DFL after weft's first I/O call exposes weft's
 * pipe writes to the default action again.
 *
 * Reads and writes return the byte count (> 0), 0 at end of file
 * (reads), or a negative errno: -ETIMEDOUT (deadline; one already past
 * polls), -ECANCELED (the task was cancelled), -EBADF (bad descriptor, or
 * closed by weft_close while waiting), -EINVAL (a NULL buffer with a
 * length, a length above SSIZE_MAX - for the vector calls, a sum of
 * lengths, or a count outside 0..IOV_MAX), -ECONNRESET, -EPIPE, ... Stackless
 * tasks cannot park: there the calls that would block return -EWOULDBLOCK
 * (-ETIMEDOUT if the deadline has passed already).
 *
 * Lifetime: a descriptor may be closed with weft_close as soon as the calls
 * on it have returned, e.g. by a reader right after its weft_read returned,
 * while the poller that woke it is still handling the same batch of
 * reports; its number may be reused at once. */

/* The backend of rt's netpoller ("epoll" or "uring"), installing it if
 * needed; rt may be any running runtime (NULL: the current one), asked
 * from any task or thread. NULL if there is no runtime, it has stopped, or
 * the poller cannot be installed. */
const char *weft_io_backend(weft_runtime_t *rt);

/* Wait until fd is ready for `events` (POLLIN and/or POLLOUT, from
 * <poll.h>) or the deadline passes. Returns the ready mask (> 0; POLLERR,
 * POLLHUP and POLLRDHUP are reported whenever they hold), -ETIMEDOUT,
 * -ECANCELED, -EBADF, -EINVAL. Works on any descriptor that supports poll
 * (sockets, pipes, eventfds, pidfds, signalfds, ...), including ones created
 * by other libraries; fd need not be non-blocking, but the usual pattern is:
 * try the operation on a non-blocking fd, and on EAGAIN wait. In a task it
 * parks the task; in a plain thread it is poll(2); in a stackless task it
 * asks poll(2) without waiting (-EWOULDBLOCK if not ready). -EINVAL:
 * events without POLLIN or POLLOUT, or with bits other than those, POLLPRI
 * and POLLRDHUP. The descriptor must stay open while waited on (closing
 * it with weft_close wakes the waiters with -EBADF; a plain close(2)
 * leaves them waiting until their deadline). */
int weft_fd_wait(int fd, uint32_t events, weft_time_t deadline);

/* Close fd: its waiters are woken with -EBADF, its registration is
 * dropped, then close(2). Every descriptor passed to weft_read, weft_write,
 * weft_accept... must be closed this way (a plain close(2) would leave its
 * registration behind). Callable from any task or plain thread, whichever
 * runtime registered fd. 0 or -EBADF. */
int weft_close(int fd);

/* Name resolution, run off the workers (getaddrinfo on another thread while
 * the task parks). Free *res with freeaddrinfo. Errors: -ENOENT (no such
 * host or service), -EAGAIN (temporary failure), -ENOMEM, -EINVAL,
 * -ECANCELED (cancelled before the lookup started; once it runs, it is
 * waited for and its result returned). The _step form: below. */
int weft_getaddrinfo(const char *host, const char *service, const struct addrinfo *hints, struct addrinfo **res);

/* A socket (O_NONBLOCK|O_CLOEXEC, registered with the poller). type is
 * SOCK_STREAM or SOCK_DGRAM (flags may be or'ed in). Returns the fd. */
int weft_socket(int domain, int type, int protocol);

/* TCP. host: a numeric address or a name (resolved off the workers); NULL
 * or "" listens on every IPv4 address ("::" for IPv6), and connects to
 * 127.0.0.1. port 0 picks a free port (weft_local_port tells which;
 * weft_tcp_connect: -EINVAL). Listening sockets set SO_REUSEADDR;
 * backlog <= 0 means SOMAXCONN. Connected sockets set TCP_NODELAY. Return
 * the fd or a negative errno. weft_tcp_connect tries each resolved address
 * in turn until one connects; its deadline covers the connects, not the
 * name lookup (getaddrinfo cannot be interrupted). */
int weft_tcp_listen(const char *host, uint16_t port, int backlog);
int weft_tcp_connect(const char *host, uint16_t port, weft_time_t deadline);
/* Unix-domain stream sockets (path: a filesystem path, or "@name" for the
 * abstract namespace). weft_unix_listen does not unlink an existing path. */
int weft_unix_listen(const char *path, int backlog);
int weft_unix_connect(const char *path, weft_time_t deadline);
/* UDP: a socket bound to host:port (host NULL: any; port 0: free port). */
int weft_udp_bind(const char *host, uint16_t port);

/* The generic forms, for any address family. */
int weft_bind_listen(int fd, const struct sockaddr *addr, socklen_t len, int backlog);
int weft_connect(int fd, const struct sockaddr *addr, socklen_t len, weft_time_t deadline);
/* Accept one connection (O_NONBLOCK|O_CLOEXEC); addr/len may be NULL.
 * Returns the new fd. -EMFILE/-ENFILE when descriptors run out (the pending
 * connection stays queued). */
int weft_accept(int lfd, struct sockaddr *addr, socklen_t *len, weft_time_t deadline);
/* The local port of a bound socket (IPv4/IPv6), or a negative errno. */
int weft_local_port(int fd);

/* One read or write: at least one byte unless end of file (0) or error. */
ssize_t weft_read(int fd, void *buf, size_t len, weft_time_t deadline);
ssize_t weft_write(int fd, const void *buf, size_t len, weft_time_t deadline);
ssize_t weft_readv(int fd, const struct iovec *iov, int iovcnt, weft_time_t deadline);
ssize_t weft_writev(int fd, const struct iovec *iov, int iovcnt, weft_time_t deadline);
/* Exactly len bytes: weft_read_full returns len, 0 if end of file comes
 * before the first byte, -EPROTO if it comes after some bytes but before
 * len (a truncated message); weft_write_all returns len. *done (done may be
 * NULL) gets the bytes transferred in every case, so that after an error
 * (-ETIMEDOUT, -EPIPE, ...) the caller knows how far it got. */
ssize_t weft_read_full(int fd, void *buf, size_t len, weft_time_t deadline, size_t *done);
ssize_t weft_write_all(int fd, const void *buf, size_t len, weft_time_t deadline, size_t *done);
/* Datagrams: one message each. addr/len may be NULL. */
ssize_t weft_recvfrom(int fd, void *buf, size_t len, struct sockaddr *addr, socklen_t *alen, weft_time_t deadline);
ssize_t weft_sendto(int fd, const void *buf, size_t len, const struct sockaddr *addr, socklen_t alen,
		    weft_time_t deadline);
/* Send count bytes of in_fd (a regular file) from *offset (advanced; NULL:
 * from in_fd's file position) to the socket out_fd. Returns the bytes sent:
 * count, or fewer if the file ends first or if the deadline, a
 * cancellation or an error comes after some were sent (the error is then
 * not reported: the next call on out_fd sees it). -errno if none were. */
ssize_t weft_sendfile(int out_fd, int in_fd, off_t *offset, size_t count, weft_time_t deadline);
/* shutdown(2): SHUT_RD, SHUT_WR or SHUT_RDWR. */
int weft_shutdown(int fd, int how);

/* ------------------------------------------------------------ stackless tasks */

/* A stackless task cannot park, so the calls above return -EWOULDBLOCK
 * there instead of waiting (-ETIMEDOUT when the deadline has passed). Every
 * one that waits has a _step form (below; those of the blocking pool, the
 * files and the subprocesses are in the second part of this header). A
 * _step form waits the stackless way and keeps the
 * step protocol of weft/sched.h ("Step forms"): it takes the blocking
 * call's arguments and an op (a weft_op_t the caller owns, needing no
 * initialisation), and either completes, returning exactly what the
 * blocking call would, or registers the task to be woken (in op) and
 * returns -EINPROGRESS. The step function then returns WEFT_STEP_PARKED
 * and, when called again, repeats the same call with the same arguments
 * and the same op, which finishes the wait and tries again (it may register
 * again). A repeat made before the wait has ended returns -EINPROGRESS and
 * changes nothing.
 *  - Deadlines are absolute, so the repeat keeps it. One already past
 *    polls: the call does what it can without waiting, else -ETIMEDOUT,
 *    nothing registered. One that passes while the task is registered
 *    makes the repeat return -ETIMEDOUT.
 *  - weft_cancel of the task ends the wait: the repeat returns -ECANCELED.
 *    weft_close of the descriptor ends it too: -EBADF.
 *  - One registration at a time: while op is registered, every other _step
 *    call of the task (another op, or this op in another call) returns
 *    -EBUSY and changes nothing. "Another call" includes the same call on
 *    another descriptor, and weft_fd_wait_step with other events.
 *  - While the call is registered, op must not be reused, moved or freed
 *    (the task's waiter is linked in it); once it has completed, op (and
 *    the state holding it) may be freed at once, e.g. in the step that
 *    returns WEFT_STEP_DONE right after its read.
 *  - -EINVAL for a NULL op. In coroutines and plain threads the _step forms
 *    block like the blocking calls and leave op alone.
 * The errors are the blocking calls' (above), plus -EINPROGRESS and -EBUSY. */
int weft_fd_wait_step(int fd, uint32_t events, weft_time_t deadline, weft_op_t *op);
ssize_t weft_read_step(int fd, void *buf, size_t len, weft_time_t deadline, weft_op_t *op);
ssize_t weft_write_step(int fd, const void *buf, size_t len, weft_time_t deadline, weft_op_t *op);
ssize_t weft_readv_step(int fd, const struct iovec *iov, int iovcnt, weft_time_t deadline, weft_op_t *op);
ssize_t weft_writev_step(int fd, const struct iovec *iov, int iovcnt, weft_time_t deadline, weft_op_t *op);
ssize_t weft_recvfrom_step(int fd, void *buf, size_t len, struct sockaddr *addr, socklen_t *alen, weft_time_t deadline,
			   weft_op_t *op);
ssize_t weft_sendto_step(int fd, const void *buf, size_t len, const struct sockaddr *addr, socklen_t alen,
			 weft_time_t deadline, weft_op_t *op);
int weft_accept_step(int lfd, struct sockaddr *addr, socklen_t *len, weft_time_t deadline, weft_op_t *op);
/* A Unix listener whose backlog is full gives -EAGAIN here (the blocking
 * form sleeps and retries until its deadline). */
int weft_connect_step(int fd, const struct sockaddr *addr, socklen_t len, weft_time_t deadline, weft_op_t *op);
/* The calls that move a whole buffer, and sendfile, may register several
 * times before they complete. What they have moved so far lives in op
 * while the call is registered, and the repeat goes on from there: so it
 * must pass the same descriptor, buffer (and its contents, for writes) and
 * length (sendfile: the same file, offset pointer and count; the kernel
 * advances *offset, or in_fd's position, as bytes go). A repeat whose
 * length is below what has moved already gets -EINVAL (its op is no longer
 * registered). A call that is not a repeat (op not registered) starts at
 * byte 0.
 * weft_read_full_step and weft_write_all_step return what the blocking forms
 * do (len; weft_read_full_step: 0, or -EPROTO for end of file after some
 * bytes), and *done (done may be NULL) gets the bytes moved so far on every
 * return: the count kept in op with -EINPROGRESS, the total when the call
 * completes or fails (-ETIMEDOUT, -ECANCELED, -EPIPE...), 0 for -EINVAL and
 * -EBUSY. weft_sendfile_step returns what weft_sendfile does (the bytes
 * sent, also when a deadline, cancellation or error stops it after some
 * went; -errno if none did), and -EINPROGRESS while registered. */
ssize_t weft_read_full_step(int fd, void *buf, size_t len, weft_time_t deadline, size_t *done, weft_op_t *op);
ssize_t weft_write_all_step(int fd, const void *buf, size_t len, weft_time_t deadline, size_t *done, weft_op_t *op);
ssize_t weft_sendfile_step(int out_fd, int in_fd, off_t *offset, size_t count, weft_time_t deadline, weft_op_t *op);
/* Dialling: the socket is made by the call and kept in op while it is
 * registered (closed if the call fails); the repeat passes the same host
 * and port, or path (the strings belong to the call until it completes).
 * weft_tcp_connect_step looks a name up on the blocking pool first, the
 * way weft_getaddrinfo_step does (registered while it runs; numeric
 * addresses are parsed in place), then connects to each address in turn,
 * registering while one connects; op keeps the addresses left. Its
 * deadline covers the connects and the lookup's wait for a pool thread: a
 * lookup that has started runs to its end (as in weft_blocking_step), and
 * the connects after it see the deadline. Returns what weft_tcp_connect
 * and weft_unix_connect do: the connected descriptor, or the last error
 * (-EAGAIN from a Unix listener whose backlog is full, as for
 * weft_connect_step). */
int weft_tcp_connect_step(const char *host, uint16_t port, weft_time_t deadline, weft_op_t *op);
int weft_unix_connect_step(const char *path, weft_time_t deadline, weft_op_t *op);
/* weft_getaddrinfo on the blocking pool, the _step way (weft_blocking_step
 * says what the deadline and a cancellation do: they end a lookup that has
 * not started, -ETIMEDOUT or -ECANCELED; one that has started completes).
 * *res is set when the call completes (NULL on an error); host, service
 * and hints belong to the call until then. */
int weft_getaddrinfo_step(const char *host, const char *service, const struct addrinfo *hints, struct addrinfo **res,
			  weft_time_t deadline, weft_op_t *op);

/* ------------------------------------------------------------ servers */

/* An accept loop that hands each connection to a new task. The server owns
 * the listening socket (closed when serving ends) and each connection's fd
 * (closed after the handler returns: the handler must not close it).
 * Lifetime: when weft_server_stop returns, serve has ended and every
 * connection's handler has returned and its descriptor (and the listener)
 * has been closed; the server may then be destroyed at once, even though
 * serve's and the connections' tasks may still be finishing (they hold
 * references of their own to what they still touch). */
typedef struct weft_server weft_server_t;
/* Runs in the connection's task. */
typedef void (*weft_conn_fn_t)(int fd, void *ctx);
typedef struct weft_server_opts {
	int max_conns;	   /* at most this many live connections; 0 = no limit */
	size_t stack_size; /* connection tasks' stacks (coroutine executors); 0 = default */
	weft_exec_t *exec; /* runs one task per connection (weft/exec.h); NULL: detached coroutines of the
			    * current runtime. The connection's descriptor is registered with the poller of the
			    * runtime where its task first waits (a plain thread's waits poll it itself), so any
			    * executor will do; it must outlive the server's connections. */
} weft_server_opts_t;

/* Create a server on listening socket lfd (ownership passes to the server,
 * even on failure). opts may be NULL. -EBADF: lfd is not an open
 * descriptor; -EINVAL: out or fn NULL, max_conns < 0. */
int weft_server_create(weft_server_t **out, int lfd, weft_conn_fn_t fn, void *ctx, const weft_server_opts_t *opts);
/* Run the accept loop in the calling task until weft_server_stop (returns
 * 0) or a fatal error on the listener (negative errno). Accepted TCP
 * connections get TCP_NODELAY. Transient accept
 * errors are skipped; when descriptors run out (EMFILE/ENFILE/ENOBUFS/
 * ENOMEM) it backs off (1 ms doubling to 100 ms) and keeps serving the
 * connections it has; pending connections wait in the listen queue.
 * -ECANCELED if the calling task is cancelled. Call it once: -EBUSY
 * after that. -EWOULDBLOCK from a stackless task (nothing changes: the
 * server can be served from a coroutine or thread). */
int weft_server_serve(weft_server_t *s);
/* Stop accepting (the listener is closed), then wait until every connection
 * has ended or the deadline passes; at the deadline the remaining
 * connections are shut down (their reads see end of file) and waited for.
 * Callable from any task or thread, once, including a connection's handler
 * (its own connection is neither waited for nor shut down). Returns 0, or
 * -ETIMEDOUT when connections had to be shut down; -EALREADY if it was
 * called before; -EWOULDBLOCK from a stackless task when it would have to
 * wait (it stopped accepting; weft_server_destroy says -EBUSY until the
 * connections have ended). */
int weft_server_stop(weft_server_t *s, weft_time_t deadline);
/* Live connections (-EINVAL for NULL), accepted connections in total (0
 * for NULL). */
int weft_server_conns(const weft_server_t *s);
uint64_t weft_server_accepted(const weft_server_t *s);
/* Free a server whose serve has returned and whose connections have all
 * ended (after weft_server_stop): -EBUSY otherwise; -EINVAL for NULL. */
int weft_server_destroy(weft_server_t *s);

/* ============================================= blocking pool, files, processes, signals */

/* --- The blocking pool -------------------------------------------------
 *
 * Each runtime has a pool of threads for calls that would block a worker
 * (file system calls, getaddrinfo, libraries without an async API). It is
 * created on first use, grows on demand up to a limit (default 128; the
 * environment variable WEFT_BLOCKING_MAX or weft_blocking_set_limits
 * changes it), and a thread that has been idle for the idle time (default
 * 10 s) exits. Jobs wait in one FIFO queue; none is lost or dropped. The
 * pool is destroyed (its threads joined) by weft_runtime_stop. Pool threads
 * block every asynchronous signal. */

/* Run fn(arg) on a pool thread while the calling task parks (its worker
 * keeps running other tasks); fn's return value goes to *result (result may
 * be NULL). From a plain thread (not a task), fn runs directly on it.
 *
 * fn cannot be interrupted, and arg may live on the caller's stack, so the
 * call never returns before fn has returned. Cancellation: a task already
 * cancelled gets -ECANCELED at once and fn does not run; a task cancelled
 * while fn runs stays parked until fn ends and gets its result as usual
 * (0): the cancel shows at its next blocking call, weft_blocking included.
 * Errors: -EINVAL (fn NULL), -EWOULDBLOCK (from a stackless task, which
 * cannot park; fn does not run), -ECANCELED, -ESHUTDOWN (the runtime is
 * stopping and has no pool yet), -ENOMEM (no memory, or no pool thread could
 * be started while none is running).
 * Lifetime: when weft_blocking returns, the pool is done with the call: arg
 * (and whatever fn used) may be freed at once, and the calling task may
 * end (the pool thread touches nothing of the call after waking it). */
int weft_blocking(weft_fn_t fn, void *arg, void **result);

/* weft_blocking for stackless tasks, keeping the step protocol of
 * weft/sched.h ("Step forms"; in coroutines and plain threads it blocks).
 * The first call queues the job and registers (-EINPROGRESS); the repeat
 * (same fn, arg, result, deadline and op) collects fn's result into
 * *result (result may be NULL; left alone on errors) and returns 0. The
 * job lives in op: fn, arg and op belong to the call until it completes.
 * What the deadline and a cancellation do depends on where the job is, as
 * fn cannot be interrupted and may use arg:
 *  - before the job has been queued (a task already cancelled, a deadline
 *    already past): -ECANCELED or -ETIMEDOUT, and fn does not run;
 *  - while it waits in the pool's queue: the job is taken out of the
 *    queue and the repeat returns -ETIMEDOUT or -ECANCELED; fn never runs;
 *  - once a pool thread runs fn: nothing stops it, and the call goes on
 *    waiting for its end, whatever comes: the repeat registers again
 *    (-EINPROGRESS: a wait that neither a deadline nor a cancellation
 *    ends) and completes with fn's result (0) once fn has returned. The
 *    cancel shows at the task's next blocking call, as with weft_blocking.
 * So a call that returns -ETIMEDOUT or -ECANCELED never ran fn, and one
 * that returns 0 ran it to its end: either way, when the call completes
 * the pool is done with it, and op, arg (and what fn used) are the
 * caller's again, to free at once. A job that has been queued is never
 * abandoned to the pool. In coroutines the same rules hold (the deadline
 * and a cancellation take a queued job back; a running one is waited
 * for); a plain thread runs fn itself, unless the deadline has passed
 * (-ETIMEDOUT: fn does not run). While registered, the job's op is -EBUSY
 * to every other _step call; its object (for that rule) is fn.
 * Errors: -EINVAL (fn or op NULL), -EINPROGRESS, -EBUSY, -ETIMEDOUT,
 * -ECANCELED, and weft_blocking's -ESHUTDOWN and -ENOMEM (also: no memory
 * for the deadline's timer, nothing queued). */
int weft_blocking_step(weft_fn_t fn, void *arg, void **result, weft_time_t deadline, weft_op_t *op);

/* Set rt's pool limits (rt NULL: the current runtime): max_threads in
 * 1..4096 (0 keeps the current value), idle time in ns, >= 1 ms
 * (0 keeps the current value; WEFT_NEVER: idle threads never exit). Idle threads above a lower limit exit at
 * once, busy ones when their job ends; idle threads pick up a new idle time
 * at once.
 * -EINVAL (also: no runtime), -ESHUTDOWN (rt is stopping or has stopped),
 * -ENOMEM. */
int weft_blocking_set_limits(weft_runtime_t *rt, int max_threads, weft_time_t idle);

typedef struct weft_blocking_stats {
	uint32_t threads;   /* pool threads alive */
	uint32_t idle;	    /* of which waiting for a job */
	uint32_t max;	    /* the limit on threads */
	uint64_t queued;    /* jobs waiting for a thread */
	uint64_t running;   /* jobs running now */
	uint64_t completed; /* jobs finished since the pool was created */
} weft_blocking_stats_t;

/* Read rt's pool statistics (rt NULL: the current runtime); all zero but
 * max when no pool has been created yet. -EINVAL (no runtime, out NULL),
 * -ESHUTDOWN (rt has stopped). */
int weft_blocking_stats(weft_runtime_t *rt, weft_blocking_stats_t *out);

/* --- Files ---------------------------------------------------------------
 *
 * Each of these runs on the blocking pool (weft_blocking), so it parks the
 * calling task and follows weft_blocking's cancellation rule: a task already
 * cancelled gets -ECANCELED and nothing is done; once started, the call
 * completes and reports its real result. No deadlines: file I/O cannot be
 * interrupted. Every descriptor opened is O_CLOEXEC.
 *
 * Each has a _step form (after it) for stackless tasks: the same
 * arguments, then a deadline and an op, with weft_blocking_step's rules.
 * The deadline bounds only the wait for a pool thread: the deadline or a
 * cancellation that comes before the call has started gives -ETIMEDOUT or
 * -ECANCELED with nothing done; once it has started, it completes and
 * reports its real result, as above. Its arguments (path, data, buf)
 * belong to the call until it completes; its outputs (*data) are set when
 * it completes. While registered, the call keeps a copy of its arguments
 * in memory of its own (malloc'd: -ENOMEM); its object, for -EBUSY, is
 * the path (pread, pwrite: the descriptor). Errors: the blocking forms',
 * plus -EINVAL for a NULL op, -EINPROGRESS, -EBUSY, -ETIMEDOUT. */

/* Read the whole file at path into a new buffer: *data receives it
 * (malloc'd, one NUL byte past the end for convenience; free() it), and the
 * return value is its size. max_size bounds it (0: 1 GiB): -EFBIG beyond.
 * Also -ENOENT, -EISDIR, -EACCES, ... (the system call's errno), -EINVAL,
 * -ENOMEM. On error *data is NULL. */
ssize_t weft_file_read_all(const char *path, void **data, size_t max_size);
ssize_t weft_file_read_all_step(const char *path, void **data, size_t max_size, weft_time_t deadline, weft_op_t *op);

enum {
	WEFT_FILE_APPEND = 1 << 0, /* append instead of truncating */
	WEFT_FILE_SYNC = 1 << 1,   /* fsync the file before returning */
	WEFT_FILE_ATOMIC = 1 << 2  /* write a temporary file in the same directory,
				      fsync it, rename it over path, fsync the
				      directory: readers see the old or the new
				      contents, never a mix, even after a crash.
				      Not with APPEND. */
};

/* Write len bytes to path, created with mode 0666 & ~umask if missing
 * (ATOMIC keeps an existing file's mode). flags: WEFT_FILE_*. Returns 0.
 * Errors: the system calls' (-ENOENT for a missing directory, -EISDIR,
 * -ENOSPC, ...), -EINVAL (bad flags, data NULL with len > 0, len above
 * SSIZE_MAX). An ATOMIC write that fails before its rename leaves path
 * untouched and no temporary file behind; if only the final fsync of the
 * directory fails, the new contents are in place and the error is returned.
 * ATOMIC replaces a symbolic link at path with a regular file and keeps the
 * old file's mode, not its owner. */
int weft_file_write_all(const char *path, const void *data, size_t len, unsigned flags);
int weft_file_write_all_step(const char *path, const void *data, size_t len, unsigned flags, weft_time_t deadline,
			     weft_op_t *op);

/* open(2) on the pool; O_CLOEXEC is always added. Returns the descriptor. */
int weft_file_open(const char *path, int flags, unsigned mode);
int weft_file_open_step(const char *path, int flags, unsigned mode, weft_time_t deadline, weft_op_t *op);
/* pread/pwrite on the pool. They repeat until len bytes are transferred,
 * end of file (read) or an error; they return the count transferred, or a
 * negative errno when nothing was. -EINVAL (negative offset, offset + len
 * beyond INT64_MAX, buf NULL). */
ssize_t weft_file_pread(int fd, void *buf, size_t len, int64_t offset);
ssize_t weft_file_pwrite(int fd, const void *buf, size_t len, int64_t offset);
ssize_t weft_file_pread_step(int fd, void *buf, size_t len, int64_t offset, weft_time_t deadline, weft_op_t *op);
ssize_t weft_file_pwrite_step(int fd, const void *buf, size_t len, int64_t offset, weft_time_t deadline, weft_op_t *op);

/* --- Subprocesses ---------------------------------------------------------
 *
 * weft_process_spawn starts a command (posix_spawn; the parent's PATH is
 * searched when argv[0] has no '/'). Each of stdin, stdout and stderr is
 * inherited, /dev/null, or a pipe whose parent end is O_NONBLOCK |
 * O_CLOEXEC; the child gets a clean signal mask and default signal
 * dispositions, and no descriptor but 0, 1 and 2. The child's pid
 * is held by a pidfd (Linux >= 5.3), so kill can never hit a recycled pid,
 * and waiting parks on it in the netpoller (weft_fd_wait).
 *
 * No zombies, no leaks: weft_process_destroy closes every pipe end and, if
 * the child has not been reaped yet, kills it with SIGKILL and reaps it.
 *
 * Concurrency: different pipes of one process may be used by different tasks
 * at the same time (one writes stdin while another reads stdout: this is how
 * large data goes through a filter without deadlock). One pipe is used by one
 * task at a time, and is not closed while a call on it is running. wait and
 * kill may be called from any number of tasks.
 *
 * Forwarding (weft_process_forward) hands a pipe to a copier task that
 * streams it from or to a descriptor of the caller, on an executor.
 *
 * Lifetime: p may be destroyed as soon as every call on it has returned,
 * e.g. by the only task using it right after its weft_process_wait
 * returned; weft_process_destroy must not overlap another call on p.
 *
 * SIGPIPE: writing to a child that has exited returns -EPIPE (weft's
 * SIGPIPE handler, see the top of this header); weft does not ignore
 * SIGPIPE, and every child it starts gets the default disposition of every
 * signal, whatever the parent's. Do not set SIGCHLD to SIG_IGN: the kernel
 * would reap children itself and wait would fail with -ECHILD. */
typedef struct weft_process weft_process_t;

enum {
	WEFT_STDIO_INHERIT = 0, /* the child shares the parent's descriptor */
	WEFT_STDIO_PIPE = 1,	/* a pipe to the parent */
	WEFT_STDIO_NULL = 2	/* /dev/null */
};
enum { WEFT_STDIN = 0, WEFT_STDOUT = 1, WEFT_STDERR = 2 };

typedef struct weft_process_opts {
	const char *const *env; /* NULL-terminated "K=V" list; NULL: inherit */
	const char *cwd;	/* working directory; NULL: inherit */
	int stdio[3];		/* WEFT_STDIO_* for stdin, stdout, stderr */
	bool new_group;		/* put the child in a new process group */
} weft_process_opts_t;

/* Start argv[0] with arguments argv (NULL-terminated). opts may be NULL
 * (everything inherited). Ownership: argv, env and cwd are only read during
 * the call; *out is owned by the caller (weft_process_destroy).
 * Errors: -ENOENT (no such command or cwd: reported here, never as a child
 * exiting with 127), -EACCES, -ENOEXEC, ... (exec's errno), -EINVAL, -EMFILE,
 * -ENOMEM. */
int weft_process_spawn(weft_process_t **out, const char *const *argv, const weft_process_opts_t *opts);

/* The child's pid (valid until it is reaped), or -EINVAL. */
int weft_process_pid(const weft_process_t *p);
/* The parent's end of pipe `which` (WEFT_STDIN/STDOUT/STDERR), to drive it
 * yourself (with weft_fd_wait); still owned by p. -EBADF if not piped or
 * closed. */
int weft_process_fd(const weft_process_t *p, int which);

/* Write len bytes to the child's stdin, parking while the pipe is full.
 * Returns len; or, if an error or the deadline stops it after some bytes
 * went through, the count so far (the next call reports the error); else a
 * negative errno: -EPIPE (the child closed its stdin or exited), -ETIMEDOUT,
 * -ECANCELED, -EBADF (not piped, or closed), -EINVAL (p NULL, buf NULL
 * with len > 0, len above SSIZE_MAX). */
ssize_t weft_process_write(weft_process_t *p, const void *buf, size_t len, weft_time_t deadline);
/* Read up to len bytes from the child's stdout or stderr (which), parking
 * until some are there. Returns the count, 0 at end of file, or -ETIMEDOUT,
 * -ECANCELED, -EBADF, -EINVAL (p NULL, which not WEFT_STDOUT/STDERR, buf
 * NULL with len > 0, len above SSIZE_MAX). */
ssize_t weft_process_read(weft_process_t *p, int which, void *buf, size_t len, weft_time_t deadline);
/* Close the parent's end of a pipe (stdin: the child sees end of file).
 * -EBADF if not piped or already closed. */
int weft_process_close(weft_process_t *p, int which);

typedef struct weft_exit_status {
	int code;   /* exit code if the child exited, else -1 */
	int signal; /* the signal that killed it, else 0 */
} weft_exit_status_t;

/* Wait until the child has ended and reap it; *st (may be NULL) receives
 * how. After the first success every call returns 0 and the same status.
 * -ETIMEDOUT, -ECANCELED (the child keeps running, wait again later),
 * -ECHILD (someone else reaped it, e.g. SIGCHLD set to SIG_IGN). */
int weft_process_wait(weft_process_t *p, weft_exit_status_t *st, weft_time_t deadline);

/* The _step forms of wait, read and write, for stackless tasks (the step
 * protocol of weft/sched.h, "Step forms"; in coroutines and plain threads
 * they block like the blocking forms). They return what the blocking forms
 * do, plus -EINPROGRESS and -EBUSY, and -EINVAL for a NULL op. The wait
 * registers on the child's pidfd in the netpoller (without a pidfd, it
 * naps: a wait that ends after 1 ms, doubling to 50 ms, as the blocking
 * form sleeps); *st is written when it completes with 0. A deadline or a
 * cancellation leaves the child running, as for the blocking form. Read
 * and write are weft_read_step and weft_write_all_step on the pipe (the
 * write keeps what it has written in op and goes on from there: the repeat
 * passes the same buffer and length; stopped after some bytes by an error
 * or the deadline, it returns their count, as weft_process_write does).
 * The pipe must not be closed while a call on it is registered. */
int weft_process_wait_step(weft_process_t *p, weft_exit_status_t *st, weft_time_t deadline, weft_op_t *op);
ssize_t weft_process_read_step(weft_process_t *p, int which, void *buf, size_t len, weft_time_t deadline,
			       weft_op_t *op);
ssize_t weft_process_write_step(weft_process_t *p, const void *buf, size_t len, weft_time_t deadline, weft_op_t *op);
/* Send signal sig to the child. -ESRCH once it has been reaped (a signal to
 * an exited but unreaped child succeeds and does nothing); -EINVAL. */
int weft_process_kill(weft_process_t *p, int sig);
/* Close the pipes, kill (SIGKILL) and reap the child if nobody has reaped
 * it yet, free p. From a task the reaping parks on the blocking pool; a
 * stackless task (and a cancelled one) reaps on its own thread, which the
 * killed child keeps for the moment it takes to exit: no _step form is
 * needed. Copiers still forwarding are stopped first (what they have not
 * copied is dropped) and waited for: when destroy returns they have
 * closed their descriptors and write nothing more. A stackless or
 * cancelled task does not wait for them: they end on their own, at once
 * (each may still write the piece it holds). Returns 0, or -EINVAL for
 * NULL. */
int weft_process_destroy(weft_process_t *p);

/* Forwarding: the "command executor with stdin forwarding". A copier task
 * streams one piped slot of the child from or to a descriptor of the
 * caller until the stream ends: for WEFT_STDIN it reads fd until end of
 * file, writing the child's stdin, which it then closes (the child sees
 * end of file); for WEFT_STDOUT and WEFT_STDERR it reads the child's pipe
 * until end of file, writing fd. One call per slot: the three may go to
 * one descriptor or to different ones (stdout and stderr to one fd
 * interleave at arbitrary points), on one executor or different ones, at
 * once or later (after writing a header with weft_process_write, say).
 *
 * The slot's pipe is the copier's from then on: weft_process_fd, _read,
 * _write and _close get -EBADF for it, and the copier closes it when it
 * ends. fd stays the caller's, who may close it at once: the copier works
 * on a duplicate of its own (F_DUPFD_CLOEXEC), closed when it ends (a
 * pipe's reader sees end of file then, if no other writer is open). The
 * duplicate shares fd's open file description: its offset, and O_NONBLOCK,
 * which forward sets when poll can wait on fd (a pipe, socket or terminal;
 * the top of this header says what that does to the description's other
 * users: forward open("/proc/self/fd/0", O_RDONLY), not 0, to keep the
 * shell's terminal blocking).
 *
 * The copier is a weft_exec_spawn task of opts->exec, or a
 * weft_exec_spawn_blocking one where poll cannot wait on fd (a regular
 * file, /dev/null, /dev/zero), which then holds a thread of the
 * executor's blocking pool until it ends. It waits (for input, for room)
 * on an epoll set of its own through weft_fd_wait, so it needs no
 * capability of the executor and stops at once when p is destroyed,
 * whether it runs as a coroutine or on a thread.
 *
 * Ends. The stdin copier ends without error when the child stops
 * reading: a write fails with EPIPE, or, while it waits for input, the
 * child closes its stdin or exits; the rest of the input stays unread. An
 * output copier ends at end of file - when the child, and every process
 * that inherited the pipe, have closed it - or at an error writing fd
 * (-EPIPE: fd's reader is gone, also seen while it waits for the child);
 * closing the pipe then makes the child's next write fail.
 *
 * 0; -EINVAL (p NULL, which not WEFT_STDIN/STDOUT/STDERR, opts->size
 * below the first version, opts->exec destroyed); -E2BIG (opts larger
 * than this library knows, with non-zero bytes it does not); -EBADF (fd
 * not open, or not open for reading (stdin) or writing (stdout, stderr);
 * the slot not piped, or its pipe closed); -EALREADY (the slot is
 * forwarded already); -ENOTSUP (an executor without
 * WEFT_EXEC_CAP_REAL_IO); -EMFILE, -ENOMEM; the errors of weft_exec_spawn
 * (-ESHUTDOWN: exec NULL and no runtime). After an error nothing has
 * changed: the pipe is still p's, fd as it was. */
typedef struct weft_process_forward_opts {
	size_t size;	   /* 0 or sizeof(weft_process_forward_opts_t) */
	weft_exec_t *exec; /* runs the copier (must outlive it); NULL: a coroutine of the current runtime */
} weft_process_forward_opts_t;
int weft_process_forward(weft_process_t *p, int which, int fd, const weft_process_forward_opts_t *opts);
/* Wait until every copier forwarding so far has ended. Returns 0, or the
 * first error a copier met: its descriptor's (-EPIPE: fd's reader is gone;
 * -ENOSPC, -EIO...), or -ENOMEM / -ESHUTDOWN when its executor could not
 * run it or stopped it (the executor destroyed, the runtime stopped). A
 * child that exits before reading all its input is no error. Once every
 * copier has ended, every call returns the same (0 if nothing was
 * forwarded); forwarding another slot later makes the next call wait for
 * it. This is not the child's end (weft_process_wait is): a child may
 * exit before its output is copied, or close its output and go on.
 * -ETIMEDOUT (the deadline passed first; a past deadline polls),
 * -ECANCELED (the caller was cancelled): the copiers go on, wait again
 * later. -EBUSY: another forward wait on p is in progress (one at a
 * time). -EWOULDBLOCK: a stackless task, copiers still running (the _step
 * form waits). -EINVAL: p NULL, or a copier's executor destroyed. Other
 * errors of weft_exec_wait_until on a copier's handle are returned as
 * they are (-EDEADLK...). The _step form keeps the step protocol of
 * weft/sched.h ("Step forms"), with -EINPROGRESS, -EBUSY (also: another
 * registration of the task), and -EINVAL for a NULL op. */
int weft_process_forward_wait(weft_process_t *p, weft_time_t deadline);
int weft_process_forward_wait_step(weft_process_t *p, weft_time_t deadline, weft_op_t *op);

/* --- Signals as channel messages -----------------------------------------
 *
 * Like Go's signal.Notify: after weft_signal_notify(ch, sigs, n), each
 * arrival of one of sigs is sent to ch as an int (the signal number), by a
 * non-blocking send: if ch is full the signal is dropped for that channel,
 * so give it a buffer (a rendezvous channel only gets signals while a
 * receiver waits). Several channels may ask for one signal; each gets it.
 * Standard signals that arrive close together may be merged into one, as
 * the kernel merges them.
 *
 * How: one delivery thread per process (signal dispositions are
 * process-wide) reads a signalfd for the signals that are blocked in every
 * thread, and weft installs a handler for every wanted signal that
 * forwards it (tgkill) to the delivery thread, where it is blocked and so
 * becomes pending for the signalfd; delivery works whatever the threads'
 * masks are. Blocking the signals in
 * every thread (pthread_sigmask in main before starting runtimes and other
 * threads; workers inherit it) is recommended: then they never interrupt
 * system calls with EINTR. The signal's previous disposition is restored
 * when the last channel stops listening for it.
 *
 * Lifetime: when weft_signal_stop(ch) returns, nothing of weft touches ch
 * any more: the channel may be released at once, e.g. by a receiver right
 * after it received a signal.
 *
 * Not allowed (-EINVAL): SIGKILL, SIGSTOP and the synchronous faults
 * (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS), and numbers outside
 * 1..SIGRTMAX or reserved by the C library. */

/* Deliver signals[0..n-1] to ch (whose elements must be int-sized: -EINVAL).
 * Takes a reference to ch until weft_signal_stop. Adding a signal already
 * delivered to ch does nothing. -EINVAL, -ENOMEM, -EAGAIN (no thread). */
int weft_signal_notify(weft_chan_t *ch, const int *signals, int n);
/* Stop delivering to ch; when it returns, no further signal is sent to ch
 * and weft's reference to it has been dropped. -ENOENT if ch was not
 * registered. */
int weft_signal_stop(weft_chan_t *ch);

#ifdef __cplusplus
}
#endif
#endif
