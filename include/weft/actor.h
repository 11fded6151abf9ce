/* weft/actor.h - processes: Erlang's process model as a C API.
 *
 * A process is a weft task (a coroutine or a stackless task) with a pid and
 * a mailbox. Processes send each other messages (bytes), receive them
 * selectively, link to and monitor each other, and register names. The
 * design is in docs/actor.md; the rules every module keeps (errors,
 * deadlines, step forms) in docs/api.md.
 *
 * Pids. A weft_pid_t is a 64-bit value: the node (top 16 bits; 0 is this
 * node, the rest is for distribution), then which runtime of this node
 * (8 bits), then a slot and that slot's generation. A pid stays unique for
 * its runtime's life: a stale pid never reaches a new process (a slot whose
 * generation would wrap is retired). 0 is no process. After its runtime has
 * stopped a pid names nothing (calls on it act as on a dead process); a
 * later runtime may reuse it.
 *
 * Messages. weft_send copies bytes into the receiver's mailbox; weft_send_msg
 * hands over a message allocated with weft_msg_create, without copying.
 * Neither blocks unless the receiver's mailbox is bounded. Messages between
 * any two processes arrive in the order sent, and so do the exit and down
 * signals among them. Sending to a dead process is not an error: the
 * message is dropped. Any thread or task may send; the sender's pid is in
 * the message (0 when the sender is not a process). The processes of a
 * simulation runtime belong to its owner thread, as its tasks do: a call
 * on one of them from another thread returns -EPERM and changes nothing.
 *
 * Receiving. A process takes messages out of its own mailbox with
 * weft_receive and its forms: the first message, in arrival order, that a
 * match accepts; the others stay, in order. A receive that waits does not
 * look again at the messages it has already rejected when a new one
 * arrives (Erlang's save pointer), and a receive for a reference made just
 * before it (weft_make_ref, weft_monitor) starts after the messages that
 * were there when the reference was made (OTP's request/reply trick).
 *
 * Ending. A process ends when its function returns (a stackless one: its
 * step returns WEFT_STEP_DONE) with the reason WEFT_EXIT_NORMAL - or, if
 * what it returns is a negative errno as a pointer (weft's convention for
 * a failed task, as in task groups), with that errno - or with the reason
 * given to weft_proc_exit. An exit signal (weft_proc_signal, or a
 * link to a process that ended abnormally) ends it too: its current or next
 * blocking weft call returns -ECANCELED (the task is cancelled), and when
 * it returns its reason is the signal's, whatever it returns. C cannot be
 * interrupted, so a process that never makes a blocking call runs on until
 * it returns; it should return when a call says -ECANCELED. When a process
 * has ended, its links get exit signals, its monitors down messages (after
 * everything it sent), its name is free and its mailbox is dropped.
 *
 * Exit reasons are int64_t codes: the WEFT_EXIT_* below, or any other value
 * a program gives (negative errno values, say), with optional detail bytes
 * that travel in exit and down messages.
 */
#ifndef WEFT_ACTOR_H
#define WEFT_ACTOR_H

#include <sys/types.h>
#include <weft/sched.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t weft_pid_t;
typedef uint64_t weft_ref_t;

#define WEFT_PID_NODE(pid) ((uint16_t)((pid) >> 48))

enum {
	WEFT_EXIT_NORMAL = 0,	/* returned; an exit signal with it ends nobody (but the sender itself) */
	WEFT_EXIT_KILL = 1,	/* as a signal (weft_proc_signal): cannot be trapped; the target ends KILLED */
	WEFT_EXIT_KILLED = 2,	/* ended by KILL */
	WEFT_EXIT_NOPROC = 3,	/* a link or monitor to a process that did not exist */
	WEFT_EXIT_SHUTDOWN = 4, /* asked to end (supervisors' shutdown) */
	WEFT_EXIT_ERROR = 5	/* a failure without a more precise code */
};

/* ---------------------------------------------------------------- messages */

enum weft_msg_kind {
	WEFT_MSG_DATA = 0, /* sent by weft_send, weft_send_msg, weft_send_ref */
	WEFT_MSG_EXIT = 1, /* an exit signal to a process that traps exits: from, reason, detail */
	WEFT_MSG_DOWN = 2  /* a monitor fired: ref is the monitor's, from the process, reason, detail */
};

/* A message. The receiver owns it once a receive has returned it and frees
 * it with weft_msg_destroy. The fields are the receiver's to read; data
 * points at len bytes (the detail bytes of an EXIT or DOWN message), which
 * the receiver may also change. */
typedef struct weft_msg {
	struct weft_msg *next_; /* internal: the mailbox's link */
	weft_pid_t from;	/* the sender, 0 if it was not a process */
	weft_ref_t ref;		/* DATA: weft_send_ref's reference, else 0; DOWN: the monitor's */
	int64_t reason;		/* EXIT and DOWN: the exit reason */
	uint32_t kind;		/* enum weft_msg_kind */
	uint32_t flags_;	/* internal */
	size_t len;
	void *data;
} weft_msg_t;

/* A message of len bytes to fill and hand over with weft_send_msg (data
 * points at them). -EINVAL: out NULL; -EMSGSIZE: len above
 * WEFT_MSG_MAX; -ENOMEM. */
#define WEFT_MSG_MAX ((size_t)1 << 40)
int weft_msg_create(weft_msg_t **out, size_t len);
/* Free a message a receive returned (or one created and not sent). NULL
 * does nothing. */
void weft_msg_destroy(weft_msg_t *m);

/* Copy len bytes into to's mailbox. 0 also when `to` has ended (the
 * message is dropped). -EINVAL: to is 0 or names no runtime of this node,
 * data NULL with len > 0; -EHOSTUNREACH: another node's pid (no
 * distribution yet); -EMSGSIZE: len above the receiver's mailbox limit;
 * -ENOMEM. A bounded mailbox that is full makes the sender wait (from a
 * stackless task: -EPERM, use weft_send_step) until there is room or the
 * receiver ends; -ECANCELED if the sender is cancelled meanwhile (nothing
 * was sent). A process may send to itself (a full bounded mailbox of its
 * own: -EDEADLK). */
int weft_send(weft_pid_t to, const void *data, size_t len);
/* The same with a deadline (-ETIMEDOUT: nothing was sent), as a try form
 * (-EAGAIN when the mailbox is full), and as a step form. */
int weft_send_until(weft_pid_t to, const void *data, size_t len, weft_time_t deadline);
int weft_try_send(weft_pid_t to, const void *data, size_t len);
int weft_send_step(weft_pid_t to, const void *data, size_t len, weft_time_t deadline, weft_op_t *op);
/* A reply to a request: the message carries ref (the receiver takes it
 * with weft_receive_ref). Otherwise as weft_send. */
int weft_send_ref(weft_pid_t to, weft_ref_t ref, const void *data, size_t len);
/* Hand m over: on success (0, dropped or not) m is weft's; on failure it
 * is still the caller's. Waits like weft_send when the mailbox is bounded.
 * -EINVAL: m NULL, or not from weft_msg_create, or already sent. m->ref
 * is sent as it is (0: none). */
int weft_send_msg(weft_pid_t to, weft_msg_t *m);
/* Send to the process registered under name: -ESRCH if the name is not
 * registered (in the current runtime); otherwise as weft_send. */
int weft_send_name(const char *name, const void *data, size_t len);

/* What a receive takes: the first message for which fn(m, ctx) is true
 * (fn NULL: any message), among those whose ref is `ref` (0: all). NULL
 * for a match: the first message. fn runs in the receiving process, on
 * each message at most once per receive call; it must not receive, and
 * must not keep m. */
typedef struct weft_match {
	bool (*fn)(const weft_msg_t *m, void *ctx);
	void *ctx;
	weft_ref_t ref;
} weft_match_t;

/* Take the first message match accepts out of the calling process's
 * mailbox into *out, waiting for one if there is none (forever; _until: to
 * the deadline, -ETIMEDOUT; a past deadline polls). -EPERM: the caller is
 * not a process, or (weft_receive) a stackless one that would wait: it
 * uses weft_receive_step; -ECANCELED: the process was told to end (an exit
 * signal) or cancelled, and no message matched; -EBUSY: a receive is in
 * progress already (called from a match function); -EINVAL: out NULL. */
int weft_receive(weft_msg_t **out, const weft_match_t *match);
int weft_receive_until(weft_msg_t **out, const weft_match_t *match, weft_time_t deadline);
int weft_receive_step(weft_msg_t **out, const weft_match_t *match, weft_time_t deadline, weft_op_t *op);
/* weft_receive_until for the message that carries ref (weft_send_ref, a
 * DOWN of the monitor ref). When ref is the caller's newest reference, the
 * messages that were in the mailbox when it was made are not examined. */
int weft_receive_ref(weft_msg_t **out, weft_ref_t ref, weft_time_t deadline);

/* A new reference, unique in the runtime's life (0 outside a runtime).
 * Made in a process, it also marks the mailbox for weft_receive_ref. */
weft_ref_t weft_make_ref(void);

/* --------------------------------------------------------------- processes */

typedef struct weft_proc_opts {
	size_t size;		 /* 0 or sizeof(weft_proc_opts_t), as weft_config_t */
	const char *name;	 /* register this name for it (-EEXIST if taken; nothing spawned) */
	bool link;		 /* link it to the caller before it runs (the caller must be a process) */
	bool monitor;		 /* monitor it from the caller; the reference in *monitor_ref */
	weft_ref_t *monitor_ref; /* required with monitor */
	bool trap_exits;	 /* start with exits trapped */
	bool bounded;		 /* the mailbox holds at most mailbox_bound messages (>= 1) */
	size_t mailbox_bound;
	size_t max_message;	 /* largest message accepted (-EMSGSIZE to senders); 0: WEFT_MSG_MAX */
	size_t stack_size;	 /* coroutines, as weft_spawn_opts_t */
	weft_runtime_t *runtime; /* NULL: the caller's runtime, else the default one */
} weft_proc_opts_t;

/* Start a process running fn(arg) (a coroutine) or step(state) (a stackless
 * task; state as for weft_spawn_step). *out (may be NULL) receives its pid.
 * -EINVAL: fn NULL, bad options (bounded with a bound of 0, monitor
 * without monitor_ref, a name longer than WEFT_NAME_MAX or empty); -EPERM:
 * link or monitor asked by a caller that is not a process of the same
 * runtime (processes link within their runtime), or as for weft_spawn;
 * -EEXIST: the name is taken; -EAGAIN: the runtime's process slots are
 * exhausted; -ESHUTDOWN, -ENOMEM: as weft_spawn. */
#define WEFT_NAME_MAX 63
int weft_proc_spawn(weft_pid_t *out, weft_fn_t fn, void *arg, const weft_proc_opts_t *opts);
int weft_proc_spawn_step(weft_pid_t *out, weft_step_fn_t step, void *state, const weft_proc_opts_t *opts);

/* The calling process's pid, 0 if the caller is not a process. */
weft_pid_t weft_proc_self(void);
/* Whether pid names a process that has not ended (false for 0 and stale
 * pids; a process told to end by a signal counts as ended). */
bool weft_proc_alive(weft_pid_t pid);

/* End the calling process with reason (detail: len bytes copied into the
 * exit and down messages it causes; may be NULL). A coroutine does not
 * return from it; a stackless task gets 0 and its step must return
 * WEFT_STEP_DONE. -EPERM: not a process; -EMSGSIZE: detail above 64 KiB. */
int weft_proc_exit(int64_t reason, const void *detail, size_t len);
/* Send an exit signal with reason to pid (Erlang's exit/2): a process that
 * traps exits gets a WEFT_MSG_EXIT message; otherwise NORMAL is ignored
 * (unless pid is the caller) and any other reason ends it with that
 * reason. WEFT_EXIT_KILL cannot be trapped and ends it with KILLED. 0 also
 * when pid has ended; -EINVAL: 0 or no runtime of this node;
 * -EHOSTUNREACH: another node. Callable from anywhere (a signal from a
 * plain thread comes from pid 0). */
int weft_proc_signal(weft_pid_t pid, int64_t reason);
int weft_proc_signal_detail(weft_pid_t pid, int64_t reason, const void *detail, size_t len);
/* Trap exits in the calling process (exit signals become WEFT_MSG_EXIT
 * messages, NORMAL ones included), or stop trapping them. Returns the
 * previous setting (0 or 1), -EPERM when not a process. */
int weft_proc_trap_exits(bool on);

/* Wait until pid has ended (any caller; from a stackless task the _step
 * form). 0 once it has ended, also when it had ended before the call (or
 * never existed: a pid of this node that names no live process);
 * -ETIMEDOUT; -ECANCELED; -EDEADLK: pid is the caller; -EINVAL: 0 or no
 * runtime byte; -EHOSTUNREACH: another node's. */
int weft_proc_wait(weft_pid_t pid, weft_time_t deadline);
int weft_proc_wait_step(weft_pid_t pid, weft_time_t deadline, weft_op_t *op);

/* --------------------------------------------------- links and monitors */

/* Link the calling process and pid: when either ends with a reason other
 * than NORMAL, the other gets an exit signal with that reason. Linking
 * twice is one link. A dead pid sends the caller the exit signal NOPROC
 * (trapped: a message; otherwise the caller is told to end) and returns
 * -ESRCH. -EPERM: not a process, or pid is in another runtime; -EINVAL:
 * pid is the caller or 0. */
int weft_link(weft_pid_t pid);
/* Remove the link (if any). Afterwards no exit signal comes through it.
 * -EPERM, -EINVAL as weft_link; 0 when there was none. */
int weft_unlink(weft_pid_t pid);
/* Monitor pid: when it ends, the caller gets one WEFT_MSG_DOWN message
 * with *ref (and the reason); a dead pid gives it at once, with NOPROC.
 * Monitors stack (two calls: two messages). -EPERM: not a process, or pid
 * in another runtime; -EINVAL: ref NULL, pid 0 or the caller. */
int weft_monitor(weft_pid_t pid, weft_ref_t *ref);
/* Remove the monitor ref: no down message comes for it after the call.
 * flush: also drop its down message if it is in the mailbox already.
 * -ENOENT: no such monitor of the caller's (fired already, or removed);
 * -EPERM: not a process; -EBUSY: flush from a match function (a receive
 * is walking the mailbox; nothing was changed). */
int weft_demonitor(weft_ref_t ref, bool flush);

/* ---------------------------------------------------------------- registry */

/* Names to pids, per runtime (the caller's, else the default one). A name
 * is freed when its process ends. register: -EEXIST name taken, -EBUSY
 * the process has a name already, -ESRCH pid has ended, -EINVAL bad name
 * (NULL, empty, longer than WEFT_NAME_MAX) or pid; unregister: -ESRCH if
 * not registered. whereis: the pid, 0 if none. */
int weft_register(const char *name, weft_pid_t pid);
int weft_unregister(const char *name);
weft_pid_t weft_whereis(const char *name);

/* ------------------------------------------------------------------ MVars */

/* An MVar: a named shared value behind a lock (LANGUAGE.md, "MVars").
 * weft_mvar_read copies the value out under the lock; a writer holds the
 * lock across its own code (lock, get and set, unlock) and replaces or
 * changes the value in place. Waiters - coroutines, stackless tasks (the
 * _step forms), plain threads - are parked, never spinning a worker, and
 * woken one at a time in FIFO order. As in sync's mutex (which it is), a
 * caller that finds the lock free may take it ahead of a woken waiter,
 * until a waiter has waited over 1 ms: from then on the lock is handed
 * over in strict FIFO order. The lock belongs to the caller that took it
 * (its task, or its thread): another caller's unlock, get or set is
 * -EPERM; locking again while holding it is -EDEADLK (not reentrant), and
 * the holder's reads do not wait. A process that ends holding MVars
 * releases them (the values stay as last set). Names are process-wide:
 * weft_mvar_find looks one up. Lifetimes: destroy is -EBUSY while the lock
 * is held or waited for; the caller must know that no other call on it
 * can still come (as for every weft object). */
typedef struct weft_mvar weft_mvar_t;
/* A new MVar holding a copy of len bytes of value (len 0: empty). name
 * NULL: anonymous. -EINVAL (out NULL, value NULL with len > 0, a bad name
 * as for weft_register), -EEXIST (the name is taken), -EMSGSIZE (len above
 * WEFT_MSG_MAX), -ENOMEM. */
int weft_mvar_create(weft_mvar_t **out, const char *name, const void *value, size_t len);
int weft_mvar_destroy(weft_mvar_t *mv);
/* The MVar named name, NULL if none. */
weft_mvar_t *weft_mvar_find(const char *name);
/* Copy the value into buf (at most cap bytes) under the lock; returns the
 * value's whole length (more than cap: the copy was cut). Waits while
 * another caller holds the lock (forever; _until: -ETIMEDOUT; the step
 * form for stackless tasks, where weft_mvar_read would wait: -EPERM). The
 * holder reads its own value without waiting. -EINVAL (mv NULL, buf NULL
 * with cap > 0), -ECANCELED. */
ssize_t weft_mvar_read(weft_mvar_t *mv, void *buf, size_t cap);
ssize_t weft_mvar_read_until(weft_mvar_t *mv, void *buf, size_t cap, weft_time_t deadline);
ssize_t weft_mvar_read_step(weft_mvar_t *mv, void *buf, size_t cap, weft_time_t deadline, weft_op_t *op);
/* Take the lock (forever; _until: -ETIMEDOUT; try: -EAGAIN; step).
 * -EDEADLK: the caller holds it already; -EINVAL; -ECANCELED. */
int weft_mvar_lock(weft_mvar_t *mv);
int weft_mvar_lock_until(weft_mvar_t *mv, weft_time_t deadline);
int weft_mvar_try_lock(weft_mvar_t *mv);
int weft_mvar_lock_step(weft_mvar_t *mv, weft_time_t deadline, weft_op_t *op);
/* Under the lock: the value in place (*len bytes at *value, which the
 * holder may change; valid until it sets a new one or unlocks), and a new
 * value (copied). -EPERM: the caller does not hold the lock; -EINVAL;
 * -EMSGSIZE; -ENOMEM (the old value stays). */
int weft_mvar_get(weft_mvar_t *mv, void **value, size_t *len);
int weft_mvar_set(weft_mvar_t *mv, const void *value, size_t len);
/* Release the lock: -EPERM if the caller does not hold it. */
int weft_mvar_unlock(weft_mvar_t *mv);
/* lock, set, unlock. */
int weft_mvar_write(weft_mvar_t *mv, const void *value, size_t len);
/* How many callers are parked waiting for mv (for dumps and tests; one
 * still spinning is not counted). -EINVAL. */
ssize_t weft_mvar_waiting(weft_mvar_t *mv);

/* ------------------------------------------------------------- supervisors */

typedef enum weft_sup_strategy {
	WEFT_SUP_ONE_FOR_ONE = 0, /* restart the child that ended */
	WEFT_SUP_ONE_FOR_ALL = 1, /* stop all the others (in reverse order), restart all */
	WEFT_SUP_REST_FOR_ONE = 2 /* stop those started after it, restart it and them */
} weft_sup_strategy_t;

typedef enum weft_restart {
	WEFT_RESTART_PERMANENT = 0, /* always restarted */
	WEFT_RESTART_TRANSIENT = 1, /* restarted when it ends abnormally (not NORMAL or SHUTDOWN) */
	WEFT_RESTART_TEMPORARY = 2  /* never restarted */
} weft_restart_t;

/* A child: a process started as fn(arg) (a coroutine), step(arg) (a
 * stackless task: the same state again at each restart) or a supervisor
 * with the spec sup (which must stay valid while its parent runs), linked
 * to the supervisor, with opts (may be NULL; link is implied; its runtime
 * is the supervisor's). shutdown: how long to wait after the SHUTDOWN exit
 * signal before KILL (0: KILL at once; WEFT_NEVER: wait for ever, as for a
 * child that is a supervisor). */
struct weft_sup_spec;
typedef struct weft_child_spec {
	const char *id; /* for dumps and errors; may be NULL */
	weft_fn_t fn;
	weft_step_fn_t step; /* exactly one of fn, step and sup */
	const struct weft_sup_spec *sup;
	void *arg;
	weft_restart_t restart;
	weft_time_t shutdown;
	const weft_proc_opts_t *opts;
} weft_child_spec_t;

#define WEFT_SUP_INTENSITY_MAX 65536
typedef struct weft_sup_spec {
	size_t size; /* 0 or sizeof(weft_sup_spec_t) */
	weft_sup_strategy_t strategy;
	/* At most `intensity` restarts in `period` ns; one more and the
	 * supervisor stops its children and ends with WEFT_EXIT_SHUTDOWN, so
	 * the failure escalates to its own supervisor. intensity 0 and period
	 * 0 mean OTP's defaults, 1 in 5 s; intensity < 0: no restarts at all;
	 * at most WEFT_SUP_INTENSITY_MAX. */
	int intensity;
	weft_time_t period;
	const weft_child_spec_t *children; /* copied; started in this order */
	size_t nchildren;
} weft_sup_spec_t;

/* Start a supervisor process with opts (may be NULL: trap_exits is
 * implied; link to a supervising caller with opts->link). It starts its
 * children in order before anything else; a child that cannot be started
 * stops those started and ends the supervisor with that error as its
 * reason. It ends, after stopping its children in reverse order (each with
 * its shutdown time), when it gets an exit signal from a process that is
 * not its child (SHUTDOWN from weft_proc_signal, or its parent's end) -
 * with that reason - or when the restart intensity is exceeded.
 * -EINVAL: spec NULL, no children with nchildren > 0, a child with not
 * exactly one of fn, step and sup, a bad strategy or restart; and weft_proc_spawn's
 * errors. */
int weft_sup_start(weft_pid_t *out, const weft_sup_spec_t *spec, const weft_proc_opts_t *opts);
/* How many restarts sup has made (for tests and dumps), from its spawn
 * on. -ESRCH (ended), -EINVAL (not a supervisor). */
int64_t weft_sup_restarts(weft_pid_t sup);

/* -------------------------------------------------------------- visibility */

typedef struct weft_proc_info {
	size_t size; /* 0 or sizeof(weft_proc_info_t) */
	weft_pid_t pid;
	weft_task_t task;	      /* the task that runs it */
	char name[WEFT_NAME_MAX + 1]; /* registered name, "" if none */
	size_t mailbox_len;	      /* messages in the mailbox */
	size_t links;
	size_t monitors; /* monitors on it */
	bool trap_exits;
	bool receiving;	   /* waiting in a receive */
	uint64_t examined; /* messages a match has looked at, in the process's life */
	uint64_t received;
} weft_proc_info_t;
/* -ESRCH: pid has ended; -EINVAL: info NULL, bad size (as weft_config_t). */
int weft_proc_info(weft_pid_t pid, weft_proc_info_t *info);

/* Counts of a runtime's processes (the caller's, else the default one). */
typedef struct weft_actor_stats {
	size_t size; /* 0 or sizeof(weft_actor_stats_t) */
	uint64_t spawned, live;
	uint64_t sent, received, dropped; /* dropped: sent to a process that had ended */
	uint64_t exits_normal, exits_killed, exits_other;
} weft_actor_stats_t;
int weft_actor_stats(weft_runtime_t *rt, weft_actor_stats_t *out);
/* Write one line per live process of rt to fd: pid, name, mailbox
 * length, links, monitors and what it waits on. -EBADF, -EINVAL. */
int weft_actor_dump(weft_runtime_t *rt, int fd);

#ifdef __cplusplus
}
#endif
#endif
