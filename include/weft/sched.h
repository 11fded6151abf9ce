/* weft/sched.h - the runtime: workers, tasks, parking, statistics.
 *
 * A weft runtime runs tasks on N worker threads (default: one per CPU;
 * environment WEFT_WORKERS overrides). Two kinds of task share it:
 *
 *  - coroutines (stackful): a C function on its own stack. A blocking weft
 *    call (sleep, join, park, and in later modules channels, locks and
 *    sockets) parks the coroutine, never the worker thread.
 *  - stackless tasks: a step function called again and again with its state
 *    struct; it returns WEFT_STEP_DONE, WEFT_STEP_YIELD or WEFT_STEP_PARKED.
 *    A parked stackless task holds no C stack at all. It waits through the
 *    _step forms of the blocking calls, which all keep one protocol ("Step
 *    forms" below).
 *
 * Rules for code running in a coroutine (see docs/scheduler.md):
 *  - A coroutine may resume on a different OS thread after any blocking weft
 *    call. Do not cache the address of a C thread-local (`__thread`,
 *    `thread_local`, pthread_getspecific) across one: use task-local storage
 *    (weft_tls_*) instead. errno's value is saved and restored with the
 *    task, but glibc declares errno's address function `const`, so an
 *    optimizing compiler may reuse &errno computed before the call - the old
 *    thread's errno. Read errno before a blocking weft call and keep the
 *    value in a variable; do not rely on errno set before such a call being
 *    readable after it in the same function.
 *  - Raw blocking system calls and long loops block the worker. The monitor
 *    notices a worker stuck in one task for more than 10 ms and lets the other
 *    workers take its queue (and starts an extra worker if all are stuck, one
 *    of them in a blocking system call, and work waits), but the stuck task
 *    itself is not preempted.
 *
 * Task handles: a weft_task_t is the task's id, unique for the life of the
 * runtime (ids are not reused); it names its runtime, so joins, cancels and
 * names work from any thread or runtime. After its runtime stops, an id
 * gives -ESRCH (a later runtime may reuse ids). A task that is neither
 * detached nor joined keeps a small record (not its stack) until it is
 * joined. At most 255 runtimes run at once (weft_runtime_start: -EAGAIN).
 */
#ifndef WEFT_SCHED_H
#define WEFT_SCHED_H

#include <weft/base.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_runtime weft_runtime_t;
typedef uint64_t weft_task_t;

/* ---------------------------------------------------------------- runtime */

/* Configuration and statistics structs carry their size, so that later
 * versions can add fields at the end: set `size` to sizeof the struct, or
 * leave it 0, which means the first version's size (the fields below). A
 * size below that is -EINVAL; a larger one (a newer header than the library)
 * is -E2BIG unless the bytes the library does not know are all zero. */
typedef struct weft_config {
	size_t size;		  /* 0 or sizeof(weft_config_t) */
	int workers;		  /* 0: WEFT_WORKERS from the environment, else the number of CPUs; max 256 */
	size_t stack_size;	  /* default coroutine stack; 0: WEFT_STACK_SIZE or 64 KiB */
	size_t stack_cache_bytes; /* free stacks of each size kept resident when demand falls; 0: 1 MiB */
	bool no_monitor;	  /* do not start the monitor thread (stuck-worker detection) */
	bool no_sigquit_dump;	  /* do not install the SIGQUIT task dump handler */
	bool no_overflow_handler; /* do not install the SIGSEGV stack-overflow reporter */
	/* Added in 0.2 (a struct of the first version's size ends above). */
	bool sim;		/* a deterministic simulation runtime ("simulation" below) */
	uint64_t sim_seed;	/* 0: 1; WEFT_SIM_SEED from the environment overrides any seed */
	weft_time_t sim_run_ns; /* each task run advances the virtual clock by [0, sim_run_ns); 0: 2000; < 0: 0;
				 * at most WEFT_SEC (-EINVAL) */
	unsigned sim_flags;	/* WEFT_SIM_TRACE (or WEFT_SIM_TRACE=1 in the environment); others: -EINVAL */
	int sim_trace_fd;	/* where the trace goes; 0: stderr; < 0: -EINVAL */
} weft_config_t;

/* Start a runtime. cfg may be NULL (all defaults, environment honoured).
 * The first runtime started becomes the process default used by calls made
 * outside any runtime (weft_spawn from a plain thread); when it stops,
 * another runtime still running takes its place. */
int weft_runtime_start(weft_runtime_t **out, const weft_config_t *cfg);
/* Stop: wake the threads waiting for a stop request (below), cancel every
 * task still alive (their blocking calls return -ECANCELED), wait for them
 * to finish, join every thread, free everything.
 * Must be called from outside the runtime: -EDEADLK from one of its own
 * tasks (a task of another runtime may stop it; that task's worker blocks
 * meanwhile). -EINVAL if it was stopped already. Calls that other threads
 * (or other runtimes' tasks) make on the runtime or its tasks while it
 * stops are safe: they complete, or fail with -ESRCH / -ESHUTDOWN. The
 * runtime's memory is never returned, so a pointer to a stopped runtime
 * stays harmless: calls on it fail (the stop requests below succeed: there
 * is nothing left to wait for), until a later runtime started with
 * weft_runtime_start reuses it (as a later runtime may reuse its task ids). */
int weft_runtime_stop(weft_runtime_t *rt);
/* Stop requests, for a program whose main thread only waits until some
 * task, timer or thread decides that the program is done, then stops the
 * runtime (a task cannot stop its own runtime: -EDEADLK):
 *
 *     weft_runtime_wait_stop_request(rt);    (main thread)
 *     weft_runtime_stop(rt);
 *
 * weft_runtime_request_stop asks for that: it records the request and
 * wakes the waiters, and stops nothing itself. Callable from anywhere
 * (tasks, timer functions, plain threads), any number of times. 0, or
 * -EINVAL for NULL; -EPERM on a sim from another thread than its owner
 * ("simulation" below). */
int weft_runtime_request_stop(weft_runtime_t *rt);
/* Block the calling thread until a stop of rt has been requested
 * (weft_runtime_request_stop) or has begun (weft_runtime_stop from another
 * thread) - at once if either happened already. 0; -ETIMEDOUT from the
 * _until form when the deadline passes first (a past deadline polls);
 * -EINVAL for NULL; -EDEADLK from a task of rt; -EPERM on a sim from
 * another thread than its owner. From a task of another runtime it blocks
 * that task's worker thread. */
int weft_runtime_wait_stop_request(weft_runtime_t *rt);
int weft_runtime_wait_stop_request_until(weft_runtime_t *rt, weft_time_t deadline);
/* The runtime the caller runs in (a task or a worker), else the default. */
weft_runtime_t *weft_runtime_current(void);
/* The number of workers rt was started with; -EINVAL for NULL, -ESHUTDOWN
 * once it has stopped. */
int weft_runtime_workers(const weft_runtime_t *rt);

/* Convenience entry: start a runtime with cfg, run fn(arg) as a coroutine
 * named "main", wait for it, stop the runtime. Returns fn's int result cast
 * from its return value (intptr_t), or a negative errno if the runtime could
 * not start (-EINVAL for a NULL fn). Called from a task of another runtime,
 * it runs a runtime of its own inside it (that task's worker blocks while
 * it stops); -EPERM from a stackless task, which cannot wait for fn. */
int weft_main(void *(*fn)(void *), void *arg, const weft_config_t *cfg);

/* ------------------------------------------------------------- simulation
 *
 * A runtime started with cfg.sim runs every task on one thread, choosing
 * the next task among the ready ones with a PRNG seeded by sim_seed, on a
 * virtual clock: the same seed gives the same schedule, and the same
 * output, byte for byte. It is the runtime in a mode, not another
 * implementation: channels, locks, timers and groups work on it unchanged.
 *
 * Its thread is the one that started it (its owner). The owner runs the
 * simulation inside weft_sim_run and inside every blocking call it makes
 * as a plain thread (weft_join, weft_chan_recv, weft_sleep, ...), which
 * runs tasks until the call's wait ends. No other thread may touch the
 * runtime: spawn, join, cancel, detach, naming, timer calls, group calls
 * on a group of its tasks, stop requests and waits for them, extensions
 * and pollers, weft_sim_run, weft_sim_info and stop from another thread
 * get -EPERM and change nothing, and a wake-up from another thread of one
 * of its tasks or of its owner's own wait (a send on a channel a sim task
 * or the owner waits on) aborts the process with a report naming the
 * seed. Statistics and the task dump read it from anywhere. While a
 * thread owns a sim runtime, weft_now() there reads the virtual clock, and
 * weft_runtime_current() there is the sim.
 *
 * The clock starts at 10^12 ns plus a sub-millisecond offset drawn from
 * the seed. It moves when nothing is ready, to the next timer, at once,
 * and by [0, sim_run_ns) after each task run. Deadlines round up to 1 ms
 * ticks as in a normal runtime. A plain-thread wait the simulation can
 * never end (every task waits and no timer is pending) returns -EDEADLK,
 * with the seed, the clock and a task dump on stderr. A stop cancels what
 * is left; tasks it cannot end (they wait uncancellably on each other) are
 * reported and left behind.
 *
 * Starting one: from a plain thread that owns no other sim (-EBUSY) and
 * not from a task (-EPERM); cfg.workers is 0 or 1. A sim is never the
 * process default runtime. It restarts task ids: two sims of one seed give
 * their tasks the same ids, so a waker or id kept from an earlier sim may
 * name a task of a later one (never keep one). Nothing it runs may read
 * the real clock (clock_gettime), take randomness other than through the
 * runtime, create threads that call into it, or order anything by
 * address: those are the program's own nondeterminism, which no seed
 * repeats. Its I/O is limited to what a seed can repeat (pipes, AF_UNIX
 * sockets, eventfds, regular files; weft/io.h), and the blocking pool is
 * modelled. weft_exec_create_sim (weft/executors.h) makes an executor of
 * its own sim. docs/scheduler.md, "Simulation", has the whole model. */
typedef struct weft_sim_info {
	size_t size;	    /* 0 or sizeof(weft_sim_info_t) */
	uint64_t seed;	    /* the seed in use (after WEFT_SIM_SEED) */
	uint64_t hash;	    /* hash of the schedule so far: equal runs, equal hashes */
	uint64_t steps;	    /* task runs so far */
	weft_time_t now;    /* the virtual clock */
	uint64_t deadlocks; /* times a wait found nothing to run while tasks waited */
	uint64_t id;	    /* this sim's number, never another's in the process (weft_runtime_t structs are reused) */
} weft_sim_info_t;
enum { WEFT_SIM_TRACE = 1 /* one line per task run: seed, step, clock, task, name, action */ };
/* Run sim runtime rt on the calling thread until no task is left (0), the
 * virtual clock reaches deadline (-ETIMEDOUT; WEFT_NEVER: none), or every
 * task waits with nothing to end a wait (-EDEADLK, reported on stderr).
 * -EINVAL: rt NULL or not a sim; -EPERM: not rt's owner thread, or from a
 * task or timer function of rt. */
int weft_sim_run(weft_runtime_t *rt, weft_time_t deadline);
/* The seed, hash, steps, clock and deadlocks of sim rt so far. -EINVAL: rt
 * or out NULL, or rt not a live sim; -E2BIG as for weft_config_t. */
int weft_sim_info(weft_runtime_t *rt, weft_sim_info_t *out);
/* Whether rt is a sim runtime (false for NULL). */
bool weft_runtime_is_sim(const weft_runtime_t *rt);
/* Fold v into the schedule hash of the caller's sim (a task of it, or its
 * owner thread); nothing elsewhere. For tests that make their own output
 * part of what must repeat. */
void weft_sim_note(uint64_t v);

/* ------------------------------------------------------------------ tasks */

typedef void *(*weft_fn_t)(void *arg);

typedef enum weft_step {
	WEFT_STEP_DONE = 0,  /* finished; *result holds the task's result */
	WEFT_STEP_YIELD = 1, /* call me again after others have run */
	WEFT_STEP_PARKED = 2 /* a weft_waker_t was armed (weft_park_prepare); call me again when woken */
} weft_step_t;
/* A stackless task's step function. state is the pointer given at spawn.
 * Any other return value is a programming error: it is reported on stderr
 * with the task's id and name, and the task ends with the result
 * (void *)(intptr_t)-EINVAL. */
typedef weft_step_t (*weft_step_fn_t)(void *state, void **result);

typedef struct weft_group weft_group_t;
typedef struct weft_op weft_op_t; /* a stackless task's wait: "Step forms" below */

typedef struct weft_spawn_opts {
	size_t stack_size;	 /* coroutines: 0 = runtime default; 8 KiB .. 1 GiB, else -EINVAL */
	const char *name;	 /* copied (first 15 bytes); NULL = unnamed */
	bool detached;		 /* no join: the record is freed when the task ends */
	weft_group_t *group;	 /* join this task group (implies the group joins it) */
	weft_runtime_t *runtime; /* NULL: the current runtime, else the default */
	/* For the layers that build on tasks (a process is a task with a
	 * mailbox): a word the task reads with weft_task_local(), and a hook
	 * called once when the task ends, however it ends - it returned, called
	 * weft_exit, its step returned DONE, or it never ran (no stack) - with
	 * the local word and the task's result. The hook runs on the worker
	 * that finished the task, outside any task: it must not block (it may
	 * send, unpark, cancel, spawn). NULL: none. */
	void *local;
	void (*on_end)(void *local, void *result);
} weft_spawn_opts_t;

/* Spawn a coroutine running fn(arg). *out (may be NULL) receives its handle.
 * -EINVAL: NULL fn or bad stack size; -ESHUTDOWN: the runtime is stopping or
 * there is none; -ENOMEM; -EPERM: into a sim from another thread than its
 * owner ("simulation" above), or into a group of another sim ("task
 * groups" below). Callable from tasks and from any thread. The
 * coroutine's stack is taken when it first runs, by the worker that runs
 * it; the size asked for is rounded up to a power of two, of which the top
 * 64 bytes hold weft's bookkeeping. If no stack can be had then (out of
 * memory or address space), the coroutine ends without running, with the
 * result (void *)(intptr_t)-ENOMEM. */
int weft_spawn(weft_task_t *out, weft_fn_t fn, void *arg, const weft_spawn_opts_t *opts);
/* Spawn a stackless task. state is owned by the caller and must outlive the
 * task's last step: the runtime never touches it after the call that returns
 * WEFT_STEP_DONE, so that call may free it (a detached task that owns its
 * state). Same errors as weft_spawn. */
int weft_spawn_step(weft_task_t *out, weft_step_fn_t step, void *state, const weft_spawn_opts_t *opts);
/* Go's `go f(x)`: a detached coroutine running fn(arg) on the current
 * runtime (the default one from a plain thread), with the default stack.
 * Same errors as weft_spawn. */
int weft_go(weft_fn_t fn, void *arg);

/* Wait for t to finish and get its result (may be NULL). From a task it parks;
 * from a plain thread it blocks the thread. Errors: -ESRCH (no such task, or
 * already joined), -EINVAL (t is detached, or t is the caller), -ECANCELED
 * (the caller was cancelled: t keeps running and can be joined later),
 * -ETIMEDOUT (weft_join_until; a past deadline polls), -EPERM (when t has
 * not finished: a stackless task in weft_join or weft_join_until; a task
 * or the owner thread of a simulation, when t is another runtime's). A task
 * that was cancelled and exited through weft_exit or returned still
 * delivers its result. */
int weft_join(weft_task_t t, void **result);
int weft_join_until(weft_task_t t, void **result, weft_time_t deadline);
/* weft_join_until for stackless tasks ("Step forms" below): while the call
 * is registered, t's handle is taken (another join gets -ESRCH); a
 * deadline or a cancellation gives it back, as in weft_join_until. */
int weft_join_step(weft_task_t t, void **result, weft_time_t deadline, weft_op_t *op);
/* Let t's record be freed when it ends. -ESRCH, -EINVAL (already detached). */
int weft_detach(weft_task_t t);
/* Ask t to stop: its current or next blocking weft call returns -ECANCELED,
 * and so does every later one (cancellation is sticky). -ESRCH if t has
 * finished or never existed. */
int weft_cancel(weft_task_t t);
/* Whether the calling task has been cancelled (false outside tasks). */
bool weft_cancelled(void);

/* Give other tasks a turn. From a plain thread: sched_yield(). Returns 0, or
 * -ECANCELED if the task has been cancelled (it still yielded); -EPERM in a
 * stackless task, which yields by returning WEFT_STEP_YIELD. */
int weft_yield(void);
/* End the calling coroutine with result r (stackless tasks return DONE).
 * From outside a coroutine: returns -EPERM. */
int weft_exit(void *r);

/* Whether the caller may block in weft_park (and so in every blocking weft
 * call): true in coroutines and plain threads, false in stackless tasks,
 * which must use the non-blocking and _step forms instead. */
bool weft_can_park(void);

/* Whether waiting by spinning for a resource that another thread holds is
 * worth it now (a lock's slow path asks before it spins instead of parking):
 * true on plain threads; in a task, only when another worker of its runtime
 * may be running the holder and this worker has no other task to run (as Go
 * decides). */
bool weft_spin_worthwhile(void);

/* The calling task's id, 0 outside tasks. */
weft_task_t weft_self(void);
/* The calling task's local word (weft_spawn_opts_t.local), if the task was
 * spawned with the end hook `owner`: each layer passes its own hook, so it
 * sees only the words of its own tasks. NULL otherwise, and outside tasks. */
void *weft_task_local(void (*owner)(void *local, void *result));
/* The index (0 .. workers-1, then extra workers) of the worker thread the
 * caller runs on, or -1 on any other thread (a plain thread, the monitor, a
 * blocking-pool thread). A task can move between workers at every wait. */
int weft_worker_index(void);
/* Copy t's name into buf (always NUL-terminated). -ESRCH if t is unknown. */
int weft_task_name(weft_task_t t, char *buf, size_t len);
/* Set the calling task's name (copied). -EPERM outside tasks. */
int weft_set_name(const char *name);

/* Task-local storage: a key per use; values are per task, NULL initially.
 * The destructor (may be NULL) runs at task exit for non-NULL values.
 * Keys are process-wide and may be created and deleted from anywhere;
 * create: -EAGAIN when all 64 keys are taken; set: -EPERM outside tasks
 * (get returns NULL there). A deleted key's
 * handle stops working (-EINVAL; get returns NULL), no destructor runs for
 * the values stored under it, and no key created later sees them. */
typedef int weft_tls_key_t;
int weft_tls_key_create(weft_tls_key_t *key, void (*destructor)(void *));
int weft_tls_key_delete(weft_tls_key_t key);
int weft_tls_set(weft_tls_key_t key, void *value);
void *weft_tls_get(weft_tls_key_t key);

/* ------------------------------------------------------------ task groups */

/* A group waits for all its tasks; with cancel_on_error, the first task that
 * finishes with a failure (a result in the range [-4095, -1] as intptr_t,
 * i.e. a negative errno) cancels every other task of the group. Members are
 * joined by the group: do not join them yourself.
 * A group whose members are tasks of a sim runtime belongs to that sim's
 * owner thread, like its tasks: every call below from another thread
 * returns -EPERM (changing nothing), and so does a spawn into the group
 * while it has running members of another runtime than the new task's,
 * when either is a sim. */
int weft_group_create(weft_group_t **out, bool cancel_on_error);
/* Wait until every member has finished. Returns 0, or the first failure
 * (negative errno) reported by a member; -ECANCELED if the waiter itself is
 * cancelled; -ETIMEDOUT from weft_group_wait_until when the deadline passes
 * first (a past deadline polls); -EPERM in a stackless task when members
 * are still running (it uses weft_group_wait_step, "Step forms" below);
 * -EINVAL for NULL; -EPERM (above). From a plain thread it blocks the
 * thread. */
int weft_group_wait(weft_group_t *g);
int weft_group_wait_until(weft_group_t *g, weft_time_t deadline);
int weft_group_wait_step(weft_group_t *g, weft_time_t deadline, weft_op_t *op);
/* Cancel every member still running. -EINVAL for NULL; -EPERM (above). */
int weft_group_cancel(weft_group_t *g);
/* Free the group. -EBUSY if members are still running; -EINVAL for NULL;
 * -EPERM (above). */
int weft_group_destroy(weft_group_t *g);

/* ------------------------------------------------------------ parking */

/* Park/unpark: the one primitive under every blocking operation.
 *
 * A waiter (a task or a plain thread) calls weft_park_prepare() to open a new
 * "wait"; the waker_t it gets names that one wait. It hands the waker to
 * whoever will wake it (a wait queue, a timer, another task), re-checks its
 * condition, then parks:
 *   - a coroutine or a plain thread calls weft_park(w, deadline), which
 *     returns when the wait has been woken;
 *   - a stackless task returns WEFT_STEP_PARKED from its step; the step is
 *     called again once the wait has been woken, and weft_park_result()
 *     says why.
 * weft_unpark(w, 0) wakes the wait; it succeeds exactly once per wait (it
 * returns true for the call that woke it, false for every other, including
 * wakes aimed at a wait that has already ended). A wake that comes before
 * the waiter parks is not lost: the park returns at once.
 * Results: 0 woken; -ETIMEDOUT the deadline passed; -ECANCELED the task was
 * cancelled (checked when the wait opens, too). */
typedef struct weft_waker {
	void *parker;	/* internal: the task or thread */
	uint64_t epoch; /* which wait of that parker */
} weft_waker_t;

weft_waker_t weft_park_prepare(void);
/* When no wait can be opened, the waker returned has a NULL parker, and
 * weft_park and weft_park_deadline on it return why: -ENOMEM (a plain
 * thread found no memory for its parker), or -EBUSY (a stackless task whose
 * op is registered, or a waker claimed its current wait: see "Step forms"
 * below); weft_unpark of it does nothing. */
/* The same, for a wait that cancellation must not end: the caller waits for
 * something it cannot abandon (a blocking-pool job using the caller's
 * memory, a cleanup). weft_cancel still marks the task; its next ordinary
 * wait ends with -ECANCELED. Deadlines work as usual. */
weft_waker_t weft_park_prepare_uncancellable(void);
/* Block until w's wait is woken, or the deadline passes. w must be the
 * caller's own current wait (-EINVAL otherwise, e.g. the waker of a wait
 * that has ended since); -EPERM in a stackless task. */
int weft_park(weft_waker_t w, weft_time_t deadline);
/* Stackless tasks: arm a deadline on the current wait before returning
 * WEFT_STEP_PARKED (0, or -ENOMEM; a deadline armed earlier in the same
 * step is replaced; a past deadline ends the wait at once), and read the
 * outcome after being resumed. -EPERM outside stackless tasks, -EINVAL if w
 * is not the caller's current wait. */
int weft_park_deadline(weft_waker_t w, weft_time_t deadline);
int weft_park_result(void);
/* Wake w's wait with result `reason` (0, or a negative errno the parker will
 * see; anything outside 0..-255 is delivered as -EINVAL). True iff this
 * call woke it (false for a waker naming no wait: {0}, or a wait that has
 * ended). Callable from tasks, timer callbacks and plain threads (not from
 * signal handlers). */
bool weft_unpark(weft_waker_t w, int reason);
/* Two-phase wake, for a waker that finds the waiter under a lock and must
 * not touch the object holding that lock once the waiter may run (the
 * waiter may free it the moment its wait ends). weft_unpark_claim(w) claims
 * w's wait: true if it was open and unclaimed; from then on nothing else
 * can end it (no deadline, no cancellation, no other unpark), so the waiter
 * and whatever it handed over (a buffer on its stack) stay put. The claimer
 * hands over what it must, releases its lock, and then calls
 * weft_unpark_finish(w, reason), exactly once, which wakes the waiter with
 * that result (reasons as for weft_unpark). False from claim: the wait has
 * ended, or another waker has it; hand nothing over. A finish for a wait w
 * does not name claimed (ended, or never claimed) does nothing. */
bool weft_unpark_claim(weft_waker_t w);
void weft_unpark_finish(weft_waker_t w, int reason);

/* A FIFO wait queue, the building block of channels and locks. A waiter
 * links a node (with its waker and a payload pointer) under the queue's lock
 * and parks; a waker pops nodes and unparks them. Nodes are owned by the
 * waiter (usually on its stack). The pop is the delivery: a waker sets
 * n->status (and hands over n->data) under the lock as it pops, and the
 * waiter honours it even if its wait ended at the same moment (timeout,
 * cancellation). Typical waiter:
 *
 *     weft_waitq_node_t n;
 *     weft_waitq_lock(q);
 *     if (ready) { ...; weft_waitq_unlock(q); return; }
 *     weft_waitq_push(q, &n);          // arms n.waker with a new wait
 *     weft_waitq_unlock(q);
 *     int r = weft_park(n.waker, deadline);
 *     if (r != 0 && weft_waitq_remove(q, &n))
 *         return r;                    // timed out or cancelled, still queued:
 *                                      // nothing was delivered
 *     // popped by a waker: n.status / n.data carry what it delivered
 *
 * Wakers unpark after releasing the lock and touch nothing of the queue
 * afterwards, so the woken side may free the object holding the queue as
 * soon as it returns (when no other call on it is in progress). A waker
 * copies n->waker before unlocking: once the lock is free, a waiter whose
 * wait ended may return and its node vanish; unparking a wait that has
 * already ended is harmless (weft_unpark returns false).
 */
typedef struct weft_waitq_node {
	struct weft_waitq_node *next, *prev;
	weft_waker_t waker;
	void *data; /* payload for handoffs, owned by the waiter */
	int status; /* set by the waker before unparking */
	bool queued;
} weft_waitq_node_t;

typedef struct weft_waitq {
	uint32_t lock; /* spinlock word; use weft_waitq_lock */
	weft_waitq_node_t *head, *tail;
	size_t len;
} weft_waitq_t;

/* clang-format off */
#define WEFT_WAITQ_INIT {0, NULL, NULL, 0}
/* clang-format on */
/* A NULL queue or node makes each of these do nothing (pop: NULL, remove:
 * false, wake_one and wake_all: -EINVAL). */
void weft_waitq_init(weft_waitq_t *q);
void weft_waitq_lock(weft_waitq_t *q);
void weft_waitq_unlock(weft_waitq_t *q);
/* Under the lock: open a new wait for the caller, store its waker in n, and
 * append n. */
void weft_waitq_push(weft_waitq_t *q, weft_waitq_node_t *n);
/* Under the lock: pop the first node (NULL if empty). */
weft_waitq_node_t *weft_waitq_pop(weft_waitq_t *q);
/* Takes the lock: unlink n if it is still queued; true if it was. */
bool weft_waitq_remove(weft_waitq_t *q, weft_waitq_node_t *n);
/* Takes the lock: pop the first waiter, deliver status to it and unpark it
 * (after unlocking). Returns how many were popped (0/1). */
int weft_waitq_wake_one(weft_waitq_t *q, int status);
/* Takes the lock: the same for every waiter queued when the call began;
 * returns how many were popped. */
int weft_waitq_wake_all(weft_waitq_t *q, int status);

/* ------------------------------------------------------------ step forms */

/* The step protocol: how a stackless task waits inside a weft call. Every
 * blocking call a stackless task needs has a _step form (join, group wait,
 * the sync primitives, channel send, receive and select, the socket
 * calls, the blocking pool and the file and lookup calls that run on it,
 * the subprocess calls), and they all keep these rules (docs/api.md, "Who
 * may call"):
 *
 *  - A _step form takes the blocking call's arguments, an absolute deadline
 *    (WEFT_NEVER: none) and an op, a struct the caller owns (weft_op_t). Its
 *    buffers (what a read fills, what a send copies) belong to the call
 *    like the op until it completes: not in the step function's frame,
 *    which is gone while the task waits. It either
 *    completes, returning what the blocking call would (0, a count, a
 *    negative errno), or registers the task to be woken and returns
 *    -EINPROGRESS.
 *  - After -EINPROGRESS the step function returns WEFT_STEP_PARKED. When
 *    it is called again it repeats the same call, with the same arguments
 *    and the same op: that finishes the wait and completes, or registers
 *    again (-EINPROGRESS again). A repeat made before the wait has ended
 *    (after a WEFT_STEP_YIELD, say) returns -EINPROGRESS and changes
 *    nothing.
 *  - Deadlines: a repeat keeps the deadline (it is absolute). One already
 *    past polls: the call completes if it can without waiting, else
 *    returns -ETIMEDOUT, registering nothing. One that passes while the
 *    task is registered makes the repeat return -ETIMEDOUT.
 *  - Cancellation: weft_cancel ends the registered wait and the repeat
 *    returns -ECANCELED - unless what the call waited for was handed to it
 *    at that moment (a lock, a permit, a value): then it completes as
 *    usual, and nothing is lost. As with the blocking calls, a call that
 *    completes without waiting succeeds in a cancelled task too.
 *  - One registration at a time: from the -EINPROGRESS to the repeat that
 *    completes, op is the task's registration and owns its wait. Meanwhile
 *    every other _step call (another op, or the same op in another call,
 *    or on another object - another lock, channel, descriptor, task)
 *    returns -EBUSY and changes nothing, and weft_park_prepare refuses
 *    (-EBUSY). A wait the task opened itself with weft_park_prepare is
 *    abandoned (its waker wakes nothing any more) when it opens another or
 *    begins a _step call - except while a waker has claimed it
 *    (weft_unpark_claim): until the claimer's weft_unpark_finish, both are
 *    -EBUSY too.
 *  - The op needs no initialisation (WEFT_OP_INIT zeroes one). While it is
 *    registered it belongs to the call: do not move, reuse or free it (a
 *    wait queue may link it). Once its call has completed it is the
 *    caller's again, to reuse for any call or free at once - in the step
 *    that returns WEFT_STEP_DONE, say. A stackless task that ends with an
 *    op registered is a fatal programming error (reported on stderr; the
 *    process aborts).
 *  - Lifetimes are the blocking calls': the object waited on (a lock, a
 *    channel, a socket, a group) may be destroyed as soon as no call on it
 *    is in progress, and a registered call is in progress until its repeat
 *    has completed.
 *  - Coroutines and plain threads may call the _step forms too: they block
 *    as the blocking call does and never return -EINPROGRESS (op stays
 *    idle).
 *
 * In a step function:
 *
 *     int r = weft_mutex_lock_step(&s->m, WEFT_NEVER, &s->op);
 *     if (r == -EINPROGRESS)
 *         return WEFT_STEP_PARKED;   // called again once woken: repeats this
 *     if (r < 0)
 *         ...                        // -ECANCELED, -ETIMEDOUT, ...
 *     ... the mutex is held ...
 */
/* 64 bytes: the whole of a stackless task's wait. */
struct weft_op {
	uint64_t opaque[7]; /* internal: the wait of the call registered in it */
	const void *obj;    /* internal: the object that call works on */
};
/* clang-format off */
#define WEFT_OP_INIT {{0}, 0}
/* clang-format on */

/* Writing a _step form (as the modules do; a program may write its own).
 * The first byte of an op names the call registered in it: each module
 * numbers its calls from its own base. */
enum {
	WEFT_STEP_ID_SCHED = 0x10, /* join, group wait */
	WEFT_STEP_ID_CHAN = 0x20,
	WEFT_STEP_ID_SYNC = 0x30,
	WEFT_STEP_ID_IO = 0x40,
	WEFT_STEP_ID_IO_POOL = 0x50, /* io: the blocking pool, files, name lookups */
	WEFT_STEP_ID_EXEC = 0x60,    /* the waits of executors whose tasks are not weft tasks (weft/exec.h) */
	WEFT_STEP_ID_ACTOR = 0x70,   /* processes: receive, bounded send, wait (weft/actor.h) */
	WEFT_STEP_ID_USER = 0xf0     /* 0xf0 .. 0xff: a program's own */
};
/* First thing in a _step call on op, `call` its id (not 0), `obj` what it
 * works on (the lock, channel, task...: a repeat on another object is
 * another call). In a coroutine or a plain thread: WEFT_STEP_BLOCKS (block
 * as the blocking call does; op is left alone). In a stackless task:
 *   0             op is not registered: start the operation (op's first
 *                 byte is now `call`, its obj `obj`; op->opaque is the
 *                 caller's to set up, past that first byte);
 *   1             op was registered by this call on obj and its wait has
 *                 ended: it is registered no more. Finish that wait now
 *                 (its result is weft_park_result()), then complete or
 *                 register again;
 *   -EINPROGRESS  op is registered by this call on obj, its wait not
 *                 ended yet;
 *   -EBUSY        another registration (another op, call or object), or a
 *                 claimed wait, is pending;
 *   -EINVAL       op NULL or call 0.
 * The call returns the negative ones as they are. */
int weft_step_begin(weft_op_t *op, uint8_t call, const void *obj);
#define WEFT_STEP_BLOCKS 2
/* The call has opened a wait (weft_park_prepare, or weft_waitq_push),
 * handed its waker to its wakers and armed its deadline
 * (weft_park_deadline): make op the task's registration. Returns
 * -EINPROGRESS, for the call to return; -EPERM outside a stackless task;
 * -EBUSY if an op is registered already; -EINVAL if op did not go through
 * weft_step_begin (its first byte is 0) or no wait is open (nothing could
 * ever end the registration). */
int weft_step_register(weft_op_t *op);
/* Register op with a wait that has ended already: the task runs again once
 * the others have had a turn, and the repeat's weft_step_begin returns 1
 * with a result of 0 (-ECANCELED in a cancelled task). For a call that
 * must try again later with nothing to wait for. -EINPROGRESS, or the
 * errors of weft_park_prepare and weft_step_register. */
int weft_step_retry(weft_op_t *op);

/* Runtime extensions: per-runtime state of the modules above the core (the
 * io module's blocking pool, ...). `key` identifies the module (its address
 * is the key); ctx is owned by the runtime from a successful attach on and
 * is passed to key->destroy at weft_runtime_stop, after every task has ended
 * and every worker has exited, in reverse order of attachment. At most 16
 * per runtime.
 * -EINVAL: rt or key NULL; -EBUSY: key already attached (the caller keeps
 * ctx; use the attached one); -ESHUTDOWN: the runtime is stopping or has
 * stopped; -ENOSPC: no slot left; -EPERM: a sim, from another thread than
 * its owner. */
typedef struct weft_runtime_ext {
	const char *name;
	void (*destroy)(void *ctx);
	/* Optional: print the module's part of weft_task_dump to fd (after
	 * the tasks; the processes of the actor module, say). */
	void (*dump)(void *ctx, int fd);
} weft_runtime_ext_t;
int weft_runtime_attach(weft_runtime_t *rt, const weft_runtime_ext_t *key, void *ctx);
/* The ctx attached under key, or NULL (also for NULL arguments and a
 * stopped runtime). Lock-free; safe from any thread. */
void *weft_runtime_attached(weft_runtime_t *rt, const weft_runtime_ext_t *key);

/* ------------------------------------------------------------ pollers */

/* An event source the workers drive: the io module's netpoller plugs in
 * here, and so can another library's event loop. The scheduler calls
 *   poll(ctx, timeout): collect ready events and wake their waiters with
 *       weft_unpark; block at most `timeout` ns (0: do not block; WEFT_NEVER:
 *       until an event or wake()). Returns the number of events handled, or a
 *       negative errno (the scheduler then falls back to its futex park).
 *       At most one thread is inside poll at any time: a worker, or the
 *       monitor (timeout 0; weft_worker_index() is -1 there). The monitor
 *       sleeps between its checks, so a poller whose kernel requests
 *       belong to the thread that submits them (io_uring) should submit
 *       from workers only.
 *   wake(ctx): make a poll that is blocked now (or is about to block) return
 *       soon. Called from any thread, possibly concurrently with poll.
 *   destroy(ctx): at weft_runtime_stop, after every worker has exited.
 * Workers poll without blocking when their run queue is empty and every 61
 * task runs; an idle worker blocks in poll (bounded by its next timer)
 * instead of sleeping on its futex; the monitor polls when nobody has for
 * 10 ms. */
typedef struct weft_poller_ops {
	int (*poll)(void *ctx, weft_time_t timeout);
	void (*wake)(void *ctx);
	void (*destroy)(void *ctx);
} weft_poller_ops_t;

/* Install the runtime's poller (once). -EINVAL if rt or ops is NULL or ops
 * lacks poll or wake; -EBUSY if one is installed already (the caller keeps
 * ctx); -ESHUTDOWN if the runtime is stopping or has stopped; -EPERM on a
 * sim from another thread than its owner. */
int weft_runtime_set_poller(weft_runtime_t *rt, const weft_poller_ops_t *ops, void *ctx);
/* The installed poller's ctx if its ops are `ops`, else NULL (also for NULL
 * arguments and a stopped runtime). */
void *weft_runtime_poller(weft_runtime_t *rt, const weft_poller_ops_t *ops);

/* ------------------------------------------------------------ statistics */

typedef struct weft_worker_stats {
	uint64_t tasks_run; /* task runs (a resumed task counts again) */
	uint64_t steals;    /* successful steals from other workers */
	uint64_t stolen;    /* tasks moved by those steals */
	uint64_t parks;	    /* times the worker went to sleep */
	uint64_t xwakes;    /* wakes by its tasks of tasks that had parked on another worker */
	uint64_t busy_ns;   /* time not parked since start */
	uint32_t queue_len; /* local run queue length now */
	bool stuck;	    /* the monitor sees it stuck in one task > 10 ms */
	bool extra;	    /* started by the monitor because all were stuck */
} weft_worker_stats_t;

typedef struct weft_stats {
	size_t size;			  /* in: 0 or sizeof(weft_stats_t) */
	uint64_t spawned, finished, live; /* tasks */
	uint64_t switches;		  /* context switches into tasks (both kinds) */
	uint64_t timers_active, timers_fired;
	uint64_t global_queue_len;
	uint64_t stacks_in_use, stack_bytes_mapped;
	double load_imbalance;		 /* (max - min) / mean of per-worker busy time; 0 = even */
	int workers;			 /* out: the runtime's workers now, extra ones included */
	int per_worker_len;		 /* in: entries per_worker has room for (0: none) */
	weft_worker_stats_t *per_worker; /* in: where the first min(workers, per_worker_len) go */
} weft_stats_t;

/* Read the statistics at any time, without stopping anything (each counter is
 * read atomically; the set is not a consistent snapshot). rt NULL = current.
 * The caller sets size, per_worker and per_worker_len; the call fills the
 * rest. -EINVAL: out is NULL, a bad size, per_worker_len < 0, or NULL
 * per_worker with a length; -E2BIG (see weft_config_t); -ESHUTDOWN: no
 * runtime, or it has stopped. */
int weft_stats(weft_runtime_t *rt, weft_stats_t *out);
/* Print statistics, one line per worker, to fd. 0, or the errors of
 * weft_stats, or the negative errno of the first failed write (-EBADF...). */
int weft_stats_print(weft_runtime_t *rt, int fd);
/* Print every live task (id, name, state, what it waits on, what it runs)
 * to fd, then what the runtime's extensions add (the actor module: every
 * process, with its pid, name, mailbox length, links and what it waits
 * on). Also done on SIGQUIT (to stderr) unless disabled in the config.
 * Returns the number of tasks printed, or an error as weft_stats_print. */
int weft_task_dump(weft_runtime_t *rt, int fd);

#ifdef __cplusplus
}
#endif
#endif
