/* internal.h - the core's data structures: the scheduler's and the timers'.
 *
 * Vocabulary (docs/scheduler.md has the whole design):
 *   runtime  one weft_runtime_t: workers, the global queue, the task table.
 *   worker   an OS thread with a local run queue, a timer shard and caches.
 *   task     a coroutine (own stack, context-switched) or a stackless task
 *            (a step function called on the worker's own stack).
 *   parker   the waitable identity of a task or of a plain thread; its state
 *            word carries the current wait's epoch (see park.c).
 */
#ifndef WEFT_SCHED_INTERNAL_H
#define WEFT_SCHED_INTERNAL_H

#include <weft/sched.h>
#include <weft/time.h>

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <unistd.h>

#include "../arch/context.h"
#include "../base/cpu.h"
#include "../base/rand.h"
#include "stack.h"
#include "wheel.h"

#define WEFT_MAX_WORKERS 256
#define WEFT_EXTRA_WORKERS 64 /* the monitor may add this many when all are stuck */
#define WEFT_RUNQ_SIZE 4096   /* per-worker ring, a power of two */
#define WEFT_GQ_BATCH 128     /* most tasks taken from the global queue at once */
#define WEFT_TLS_KEYS 64
#define WEFT_NAME_LEN 16
#define WEFT_SLAB_TASKS 4096	       /* task records per slab */
#define WEFT_MAX_SLABS (1u << 20)      /* 4096 * 2^20 = 2^32 records at most */
#define WEFT_RUNNEXT_STREAK 16	       /* runs from the next-task slot before the queue gets a turn */
#define WEFT_GLOBAL_CHECK 61	       /* every this many runs, look at the global queue first */
#define WEFT_STEAL_AGE (50 * 1000)     /* ns a busy worker's queued work waits before another steals it... */
#define WEFT_STEAL_SHIFT_MAX 9	       /* ...doubled up to this many times while stealing proves costly */
#define WEFT_STEAL_STUCK (1000 * 1000) /* ns in one task run after which a victim's queue is taken anyway */
#define WEFT_STEAL_COMM (10 * 1000)    /* costly: a cross-worker wake per less busy time (ns) than this */

/* For assert() only: whether the calling thread holds m. glibc records the
 * owner's thread id in a mutex it locks (unless lock elision is switched on,
 * which it is not by default); with another C library the check passes. */
static inline bool weft__mutex_held(pthread_mutex_t *m)
{
#ifdef __GLIBC__
	return m->__data.__owner == gettid();
#else
	(void)m;
	return true;
#endif
}

/* ------------------------------------------------------------------ parker */

/* Parker state word: epoch << 16 | (-result) << 8 | phase.
 * The epoch names the current wait; every weft_park_prepare opens a new one. */
enum weft_phase {
	WEFT_PH_IDLE = 0,   /* no wait open */
	WEFT_PH_OPEN = 1,   /* wait open, the owner still running */
	WEFT_PH_PARKED = 2, /* wait open, the owner off CPU */
	WEFT_PH_WOKEN = 3,  /* wait ended; result recorded */
};
#define WEFT_PS(epoch, res, ph) (((uint64_t)(epoch) << 16) | ((uint64_t)(uint8_t)(-(res)) << 8) | (uint64_t)(ph))
#define WEFT_PS_EPOCH(s) ((s) >> 16)
#define WEFT_PH_MASK 0x03
#define WEFT_PS_NOCANCEL 0x80 /* in the phase byte: cancellation does not end this wait */
#define WEFT_PS_CLAIMED 0x40  /* in the phase byte: a waker claimed it; only weft_unpark_finish ends it */
#define WEFT_PS_PHASE(s) ((int)((s)&WEFT_PH_MASK))
#define WEFT_PS_RESULT(s) (-(int)(((s) >> 8) & 0xff))

/* A parker is its state word alone: a task's is the first word of its
 * record, a plain thread's is thread-local and the thread sleeps on the
 * state's low 32 bits as a futex (which the waking CAS always changes: the
 * phase lives there). Which of the two a waker names is in its epoch field's
 * top bit (WEFT_WAKER_THREAD): the epoch itself never reaches 2^48. */
typedef struct weft_parker {
	_Atomic uint64_t state;
} weft_parker_t;

#define WEFT_WAKER_THREAD ((uint64_t)1 << 63)

/* ------------------------------------------------------------------- timer */

struct weft_shard;
typedef struct weft_tentry {
	weft_tnode_t node;
	void (*fire)(struct weft_tentry *e);
	struct weft_shard *shard; /* where it is armed; NULL when not */
	_Atomic int state;	  /* WEFT_TE_* */
	_Atomic uint64_t firing_thread;
} weft_tentry_t;
enum { WEFT_TE_IDLE = 0, WEFT_TE_PENDING = 1, WEFT_TE_FIRING = 2 };

typedef struct weft_shard {
	alignas(WEFT_CACHELINE) _Atomic uint32_t lock;
	weft_wheel_t wheel;
	_Atomic uint64_t next_tick; /* wheel's next expiry, readable without the lock */
	_Atomic uint64_t fired;
} weft_shard_t;

/* -------------------------------------------------------------------- task */

enum weft_run_state {
	WEFT_RS_RUNNABLE = 0,
	WEFT_RS_RUNNING = 1,
	WEFT_RS_WAITING = 2,
	WEFT_RS_DONE = 3,
	WEFT_RS_FREE = 4
};
/* While WAITING, run_state's high nibble says on what (for dumps). */
enum weft_wait_what { WEFT_WAIT_PARK = 0, WEFT_WAIT_JOIN, WEFT_WAIT_GROUP, WEFT_WAIT_SLEEP };
#define WEFT_RS_STATE(v) ((v)&0x0f)
#define WEFT_RS_WHAT(v) ((v) >> 4)
/* join_state: WAKING while the finisher unparks a joiner, so that a joiner
 * that timed out does not return (and a plain thread exit, taking its parker
 * with it) before the finisher is done with its waker. */
enum { WEFT_JOIN_NONE = 0, WEFT_JOIN_WAITING = 1, WEFT_JOIN_DONE = 2, WEFT_JOIN_WAKING = 3 };
/* JOINED: a join succeeded; the id resolves no more, even while the
 * finishing worker still holds its reference on the record. */
enum { WEFT_H_LIVE = 0, WEFT_H_DETACHED = 1, WEFT_H_JOINING = 2, WEFT_H_JOINED = 3 };
/* task->flags */
#define WEFT_TF_CANCELLED 0x01 /* sticky; set by weft_cancel */
#define WEFT_TF_STEP 0x02      /* a stackless task (fixed at spawn) */

/* A task's aux record: its cold part, allocated the first time one of its
 * fields is needed (a name, task-local storage, a group, a joiner), installed
 * once by CAS and freed with the record. Owned by the record: whoever may
 * read it holds a reference to the task. */
struct weft_tls_value {
	void *value;
	uint32_t gen; /* the generation of the key it was stored under (task.c) */
};

typedef struct weft_task_aux {
	char name[WEFT_NAME_LEN];
	struct weft_tls_value *tls; /* WEFT_TLS_KEYS slots, allocated on first set */
	weft_group_t *group;
	weft_waker_t join_waker;		   /* written by the joiner before join_state WAITING */
	void *local;				   /* weft_spawn_opts_t.local: set at spawn, read by the task */
	void (*on_end)(void *local, void *result); /* set at spawn, called by weft__task_finish */
} weft_task_aux;

/* A task record: 64 bytes, one cache line (slabs are page-aligned), so a
 * record handed from the spawning worker to the running one moves one line,
 * and records never share a line. With the 8-byte aux pointer in the slab's
 * tail, 72 bytes are the whole cost of a parked stackless task. */
struct weft_task {
	weft_parker_t park;	   /* first: a weft_waker_t's parker points here */
	struct weft_task *next;	   /* global queue / free list link; parked: the worker it parked on */
	_Atomic uint64_t id;	   /* 0 when the record is free */
	_Atomic uint32_t refs;	   /* running + handle + transient lookups */
	_Atomic uint8_t flags;	   /* WEFT_TF_* */
	_Atomic uint8_t handle;	   /* WEFT_H_*: who may still join */
	_Atomic uint8_t run_state; /* weft_run_state (| what << 4), for dumps and checks */
	_Atomic uint8_t join_state;
	union {
		weft_fn_t fn;
		weft_step_fn_t step;
		struct weft_task *next_batch; /* free: the next batch on rt->free_batches */
	};
	union {
		void *arg;    /* until the task ends */
		void *result; /* from then on */
	};
	union {
		void *sp;	      /* coroutine, once it has run: saved stack pointer */
		size_t stack_req;     /* coroutine, before its first run: the stack size asked for */
		weft_tentry_t *timer; /* stackless: deadline of the current wait */
	};
	union {
		weft_stack_t *stack; /* coroutine: its stack, taken when it first runs */
		void *step_op;	     /* stackless: its registered op (park.c, "Step registrations"), or NULL */
	};
	/* Its runtime and its weft_task_aux are in its slab's tail, see
	 * weft__task_rt and weft__task_auxp. */
#if defined(WEFT_ASAN)
	void *asan_fake;
#endif
#if defined(WEFT_TSAN)
	void *tsan_fiber;
#endif
} __attribute__((aligned(WEFT_CACHELINE))); /* sanitizer builds: 128 bytes, so that records tile pages */
typedef struct weft_task weft_task;
#if !defined(WEFT_ASAN) && !defined(WEFT_TSAN) && UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(struct weft_task) == 64, "a task record is one cache line: keep cold fields in weft_task_aux");
#endif

/* Where a page of records given back to the OS left off (task.c, "Giving
 * memory back"): its records' next generation and parker epoch start here. */
typedef struct weft_page_floor {
	uint64_t epoch;
	uint32_t gen;
} weft_page_floor_t;
#define WEFT_SLAB_RPAGES (WEFT_SLAB_TASKS * sizeof(weft_task) / 4096) /* record pages per slab, at most (4 KiB pages) */
#define WEFT_SLAB_RWORDS ((WEFT_SLAB_RPAGES + 63) / 64)

/* A slab (task.c) is one mapping, aligned to WEFT_SLAB_ALIGN:
 * WEFT_SLAB_TASKS records, then one weft_task_aux pointer per record, then
 * the runtime that owns the slab, then the floors of its record pages. A
 * record finds the first two from its own address. */
#define WEFT_SLAB_BYTES                                                                                                \
	(WEFT_SLAB_TASKS * (sizeof(weft_task) + sizeof(_Atomic(weft_task_aux *))) + sizeof(struct weft_runtime *) +    \
	 WEFT_SLAB_RWORDS * sizeof(uint64_t) + WEFT_SLAB_RPAGES * sizeof(weft_page_floor_t))
#define WEFT_SLAB_ALIGN ((uintptr_t)1 << 20) /* a power of two >= WEFT_SLAB_BYTES */

_Static_assert(WEFT_SLAB_BYTES <= WEFT_SLAB_ALIGN, "a slab fits its alignment");
_Static_assert(WEFT_SLAB_RPAGES <= 256, "a record page's index fits a byte");
_Static_assert(4096 % sizeof(struct weft_task) == 0, "records tile pages");

static inline _Atomic(weft_task_aux *) *weft__slab_aux(weft_task *slab)
{
	return (_Atomic(weft_task_aux *) *)(slab + WEFT_SLAB_TASKS);
}

static inline weft_task *weft__task_slab(weft_task *t)
{
	return (weft_task *)((uintptr_t)t & ~(WEFT_SLAB_ALIGN - 1));
}

/* Where t's weft_task_aux pointer is (NULL until weft__task_aux makes one). */
static inline _Atomic(weft_task_aux *) *weft__task_auxp(weft_task *t)
{
	weft_task *slab = weft__task_slab(t);
	return weft__slab_aux(slab) + (t - slab);
}

/* Where a slab records the runtime that owns it. */
static inline struct weft_runtime **weft__slab_owner(weft_task *slab)
{
	return (struct weft_runtime **)(weft__slab_aux(slab) + WEFT_SLAB_TASKS);
}

/* Which of a slab's record pages are given back (bit per page), and their
 * floors. */
static inline uint64_t *weft__slab_released(weft_task *slab)
{
	return (uint64_t *)(weft__slab_owner(slab) + 1);
}

static inline weft_page_floor_t *weft__slab_floors(weft_task *slab)
{
	return (weft_page_floor_t *)(weft__slab_released(slab) + WEFT_SLAB_RWORDS);
}

static inline bool weft__slab_page_released(weft_task *slab, uint32_t pi)
{
	return weft__slab_released(slab)[pi / 64] >> (pi % 64) & 1;
}

/* The runtime t belongs to. */
static inline struct weft_runtime *weft__task_rt(weft_task *t)
{
	return *weft__slab_owner(weft__task_slab(t));
}

/* ------------------------------------------------------------------ worker */

enum weft_action { WEFT_ACT_NONE = 0, WEFT_ACT_YIELD, WEFT_ACT_PARK, WEFT_ACT_EXIT };

typedef struct weft_worker {
	/* Run queue (runq.c): head is advanced by the owner and by thieves (CAS),
	 * tail only by the owner. */
	alignas(WEFT_CACHELINE) _Atomic uint32_t head;
	alignas(WEFT_CACHELINE) _Atomic uint32_t tail;
	_Atomic(weft_task *) runnext;
	_Atomic(weft_task *) buf[WEFT_RUNQ_SIZE];

	/* Owner-private. */
	alignas(WEFT_CACHELINE) struct weft_runtime *rt;
	int index;
	_Atomic bool extra; /* started by the monitor (set before its thread starts; stats read it) */
	bool spinning;	    /* counted in rt->nspinning */
	bool stop_thread;
	bool joinable; /* its thread has not been joined yet */
	uint32_t tick; /* task runs, for fairness */
	uint32_t runnext_streak;
	uint64_t rng;
	void *sched_sp;	   /* the worker's own context while a coroutine runs */
	uint8_t wait_what; /* set by a coroutine about to park (WEFT_WAIT_*) */
	weft_task *cur;
	int action;	     /* what the coroutine asked for when it switched back */
	weft_shard_t *shard; /* this worker's timer shard */
	weft_stack_cache_t stacks;
	weft_task *free_tasks;
	uint32_t nfree_tasks;
	pthread_t thread;
	void *altstack;
	/* The steal gate (worker.c, "Stealing"). */
	weft_time_t steal_wait; /* find_work: sleep until then, gated work pending (0: none) */
	weft_time_t steal_t0;	/* when the last steal got work (0: none yet) */
	weft_time_t steal_i0;	/* this worker's st_idle_ns then */
	uint64_t steal_x0;	/* the cross-worker wakes then */
	uint32_t steal_shift;	/* the gate is WEFT_STEAL_AGE << this */
	/* Per victim, since this worker first saw work queued there: its
	 * `dry` count and when that was last seen to change (a change means
	 * its queues ran empty), and its mon_tick and when that last changed
	 * (unchanged while in_task: stuck in one task run). */
	struct {
		bool set;
		uint32_t dry, tick;
		weft_time_t at, tick_at;
	} seen[WEFT_MAX_WORKERS + WEFT_EXTRA_WORKERS];
#if defined(WEFT_ASAN)
	void *asan_fake;
	const void *asan_bottom;
	size_t asan_size;
#endif
#if defined(WEFT_TSAN)
	void *tsan_fiber;
#endif

	/* Parking (worker.c). */
	alignas(WEFT_CACHELINE) _Atomic uint32_t park_word;
	_Atomic bool woken_spinning; /* set by wakep when it hands us the spinning role */
	_Atomic bool parked;
	_Atomic bool in_poll; /* parked inside the poller's blocking poll, not the futex */
	_Atomic bool gated;   /* asleep in the steal gate: a global-queue put kicks it */
	bool dispatching;     /* inside poll: readied tasks queue here without wakep */

	/* Monitor. */
	_Atomic uint32_t mon_tick; /* copy of tick, published at each run */
	_Atomic uint8_t in_task;   /* running a task now */
	_Atomic uint8_t stuck;
	_Atomic uint32_t dry; /* times it found its own queues empty (the steal gate) */
	_Atomic bool exited;  /* an extra worker whose thread has ended (to be joined) */
	_Atomic pid_t tid;    /* its thread, for the monitor's computing-or-blocked check */

	/* Statistics: written by the owner (relaxed), read by anyone. */
	alignas(WEFT_CACHELINE) _Atomic uint64_t st_runs, st_steals, st_stolen, st_parks, st_spawned, st_finished;
	_Atomic uint64_t st_xwakes; /* tasks this worker's tasks woke that had parked on another worker */
	_Atomic int64_t st_idle_ns, st_park_start, st_start;
} weft_worker;

/* ----------------------------------------------------------------- runtime */

struct weft_runtime {
	/* Permanent: a runtime's struct is never freed; the next runtime to
	 * take its index reuses it (runtime.c, "Lifetime"), so these survive
	 * from one to the next and everything from `nbase` on is reset. */
	uint32_t index;		/* 1..WEFT_MAX_RUNTIMES: the top byte of its task ids */
	bool claimed;		/* taken by a runtime (under runtime.c's live_lock) */
	bool sim_only;		/* only sims have taken this index: a sim may restart its ids (sim.c) */
	_Atomic bool live;	/* started and not yet being destroyed */
	_Atomic uint32_t users; /* calls from outside its workers holding it (weft__rt_hold) */
	/* Spawns in flight from threads that are not rt's workers, drained by
	 * stop; on its own line, away from what workers read in their loop. */
	alignas(WEFT_CACHELINE) _Atomic uint32_t spawning;
	/* The task table's slabs outlive a runtime too (task.c, "Giving memory
	 * back"): a stale waker or id may point into them at any time. Slab
	 * pointers, then records; under slab_lock for writes. */
	_Atomic(weft_task *) *slabs; /* WEFT_MAX_SLABS entries, mmap'd once */
	_Atomic uint32_t nslabs;
	_Atomic uint32_t bump; /* records ever handed out: slots [0, bump) */
	uint32_t *released;    /* record pages given back to the OS: slab << 8 | page */
	size_t nreleased, released_cap;

	alignas(WEFT_CACHELINE) int nbase; /* configured workers; the reset part starts here */
	_Atomic int nworkers;		   /* base + extra started so far */
	_Atomic(weft_worker *) workers[WEFT_MAX_WORKERS + WEFT_EXTRA_WORKERS]; /* set once per slot */
	weft_shard_t *shards;						       /* nbase shards */
	size_t stack_default;

	/* Global injection queue. */
	alignas(WEFT_CACHELINE) pthread_mutex_t gq_lock;
	weft_task *gq_head, *gq_tail;
	_Atomic uint32_t gq_len;

	/* Idle workers and spinning. */
	alignas(WEFT_CACHELINE) pthread_mutex_t idle_lock;
	weft_worker *idle[WEFT_MAX_WORKERS + WEFT_EXTRA_WORKERS];
	_Atomic int nidle;
	_Atomic int nspinning;
	_Atomic int ngated;	     /* workers asleep in the steal gate (worker.c, "Stealing") */
	_Atomic uint32_t fence_word; /* weft__full_fence under TSan */

	/* The poller (worker.c, poller section). ops is set once, under
	 * poller_lock, and never cleared while workers run; poll_busy admits one
	 * poller at a time. */
	alignas(WEFT_CACHELINE) _Atomic(const weft_poller_ops_t *) poller_ops;
	/* Runtime extensions, the attached state of modules (runtime.c; the
	 * one meaning of "ext" in the core): slots fill in order under
	 * poller_lock; next_ext is published after the slot is written. */
	const weft_runtime_ext_t *ext_keys[16];
	void *ext_ctx[16];
	_Atomic int next_ext;
	void *poller_ctx;
	pthread_mutex_t poller_lock;
	_Atomic bool poll_busy;
	_Atomic weft_time_t last_poll;

	/* Task table (the rest): free records; ids encode the slot. */
	alignas(WEFT_CACHELINE) pthread_mutex_t slab_lock;
	weft_task *free_batches;	    /* free records in chains of FREE_BATCH (under slab_lock) */
	weft_task *free_tasks;		    /* free records one by one (under slab_lock) */
	size_t nfree, nfree_min;	    /* records on those lists; its lowest since the period began */
	weft_time_t records_period;	    /* when the current release period began (under slab_lock) */
	_Atomic size_t released_since_trim; /* bytes given back since the last malloc_trim */
	weft_stack_pool_t *stacks;

	/* Counters not owned by a worker. */
	alignas(WEFT_CACHELINE) _Atomic uint64_t
		thread_spawned; /* spawns from plain threads (tasks finish on workers) */
	_Atomic uint64_t timers_active;
	pthread_mutex_t user_timers_lock; /* timer.c: weft_timer_t's not destroyed, freed at stop */
	struct weft_timer *user_timers;

	/* Lifecycle. */
	_Atomic bool stopping;		     /* no new spawns */
	_Atomic bool halt;		     /* workers exit */
	_Atomic bool stop_requested;	     /* weft_runtime_request_stop, or the stop began */
	_Atomic uint32_t stop_request_futex; /* bumped by each request: waiters sleep on it */
	pthread_t monitor;
	bool has_monitor;	/* configured (the workers read it) */
	bool sim;		/* a simulation runtime (sim.c): fixed from start to destroy */
	struct weft_sim *simst; /* its state, when sim */
	bool monitor_started;	/* its thread runs */
	_Atomic bool monitor_stop;
	_Atomic uint32_t monitor_futex;
	weft_config_t cfg;
	struct weft_runtime *next_rt; /* list of live runtimes, for signal handlers */
};

/* A full (seq_cst) fence between a store and a load to other locations, the
 * core of the spin/park protocol (worker.c). TSan does not model fences, so
 * its builds use a seq_cst read-modify-write of one shared word instead: all
 * such RMWs are totally ordered and each synchronizes with the one before,
 * which gives the same store->load guarantee (at the cost of a shared cache
 * line, which is why release builds use the fence). */
#ifdef WEFT_TSAN
#define weft__full_fence(rt) ((void)atomic_fetch_add(&(rt)->fence_word, 0))
#else
#define weft__full_fence(rt) atomic_thread_fence(memory_order_seq_cst)
#endif

/* ------------------------------------------------------------ thread state */

/* The worker this thread is, or NULL. initial-exec: one instruction. */
extern __thread weft_worker *weft__self_worker __attribute__((tls_model("initial-exec")));

static inline weft_task *weft__cur_task(void)
{
	weft_worker *w = weft__self_worker;
	return w ? w->cur : NULL;
}

static inline bool weft__is_step(const weft_task *t)
{
	return (atomic_load_explicit(&t->flags, memory_order_relaxed) & WEFT_TF_STEP) != 0;
}

static inline bool weft__task_cancelled(weft_task *t)
{
	return (atomic_load(&t->flags) & WEFT_TF_CANCELLED) != 0;
}

/* ------------------------------------------------------------- functions */

/* runq.c */
enum { WEFT_RUNQ_NEXT = 0, WEFT_RUNQ_RING = 1, WEFT_RUNQ_GLOBAL = 2 };
int weft__runq_put(weft_worker *w, weft_task *t, bool next);
weft_task *weft__runq_get(weft_worker *w);
uint32_t weft__runq_steal(weft_worker *thief, weft_worker *victim, bool take_next);
bool weft__runq_empty(weft_worker *w);
uint32_t weft__runq_len(weft_worker *w);
void weft__gq_put(struct weft_runtime *rt, weft_task *head, weft_task *tail, uint32_t n);
weft_task *weft__gq_get(struct weft_runtime *rt, weft_worker *w, uint32_t max);

/* worker.c */
void weft__ready(weft_task *t);		   /* make a parked or new task runnable */
void weft__wakep(struct weft_runtime *rt); /* wake an idle worker if none spins */
void weft__switch_to_sched(weft_worker *w, int action);
int weft__worker_start(struct weft_runtime *rt, int index, bool extra);
weft_worker *weft__worker_alloc(struct weft_runtime *rt, int index); /* the struct, no thread; NULL: no memory */
int weft__run_task(weft_worker *w, weft_task *t);		     /* run t once; its weft_action */
void weft__poll_once(weft_worker *w);				     /* a non-blocking poll, if a poller is installed */
void weft__worker_kick(weft_worker *w);				     /* wake w from its futex or its poll */
/* Kick up to n workers asleep in the steal gate. */
void weft__kick_gated(struct weft_runtime *rt, uint32_t n);
/* A timer was armed earlier than sleepers know: wakep, and kick a gated worker. */
void weft__wake_for_timer(struct weft_runtime *rt);
void weft__poll_from_monitor(struct weft_runtime *rt);
void *weft__worker_main(void *arg);

/* task.c */
weft_task *weft__task_ref(struct weft_runtime *rt, weft_task_t id); /* +1 ref or NULL; rt is id's */
void weft__task_unref(weft_task *t);
/* The task an id names, in any runtime, with a reference, its runtime held
 * if the caller is not one of its workers; NULL if there is none. Give it
 * back with weft__task_put. */
weft_task *weft__task_get(weft_task_t id, int *err); /* err (may be NULL): -ESRCH, or -EPERM (sim.c) */
void weft__task_put(weft_task *t);
void weft__task_finish(weft_worker *w, weft_task *t);
void weft__task_park_all(struct weft_runtime *rt); /* at destroy: every record's memory goes back */
void weft__task_cache_flush(weft_worker *w);
/* The background release of free records' memory (the monitor, each tick). */
size_t weft__task_scavenge(struct weft_runtime *rt, weft_time_t now);
weft_task *weft__task_at(struct weft_runtime *rt, uint32_t slot);
int weft__join(weft_task_t id, void **result, weft_time_t deadline);
int weft__task_cancel(weft_task *t);
weft_task_aux *weft__task_aux(weft_task *t); /* get or create; NULL: out of memory */
/* Park the calling coroutine, recording what it waits on for dumps. */
int weft__park_on(weft_waker_t w, weft_time_t deadline, int what);
/* A member joins its group in two steps around the publication of its
 * record: weft__group_add before (counts it, records its id, marks it
 * cancelled if the group is cancelling), weft__group_published after (a
 * cancel that began in between could not look the record up: it marks it
 * now). */
int weft__group_add(weft_group_t *g, weft_task *t);
void weft__group_published(weft_group_t *g, weft_task *t);
/* Tests only: called by spawn between weft__group_add and the record's
 * publication (a test cancels the group there). NULL otherwise. */
extern _Atomic(void (*)(weft_group_t *g)) weft__group_spawn_hook;
/* The core's _step calls' ids (weft_step_begin). */
enum { WEFT__STEP_JOIN = WEFT_STEP_ID_SCHED + 1, WEFT__STEP_GROUP_WAIT };
void weft__group_done(weft_group_t *g, weft_task *t);

/* park.c */
void weft__parker_init(weft_parker_t *p);
/* Tests only: called after every successful weft_unpark, on the waker's
 * thread (a test stretches the moment after a wake-up to catch a waker
 * that still touches the object it woke someone on). NULL otherwise. */
extern _Atomic(void (*)(void)) weft__unpark_hook;
int weft__park_commit(weft_task *t); /* after a task asked to park: 1 parked, 0 already woken */
/* The failed waker weft_park_prepare returns: no parker, the error's
 * positive value as its epoch (weft_park and weft_park_deadline return it). */
#define WEFT_WAKER_FAILED(err) ((weft_waker_t){.parker = NULL, .epoch = (uint64_t)(err)})

/* timer.c */
int weft__shards_create(struct weft_runtime *rt);
void weft__shards_destroy(struct weft_runtime *rt);
void weft__tentry_arm(weft_tentry_t *e, weft_time_t deadline, void (*fire)(weft_tentry_t *));
bool weft__tentry_cancel(weft_tentry_t *e); /* true if it had not fired; waits out a running fire */
void weft__tentry_done(weft_tentry_t *e);   /* a fire function's last touch of its entry */
size_t weft__timers_run(struct weft_runtime *rt, weft_shard_t *s, uint64_t now_tick);
size_t weft__timers_poll(weft_worker *w, bool all_shards);
size_t weft__timers_run_due(struct weft_runtime *rt, weft_shard_t *s); /* any thread (the monitor) */
weft_time_t weft__timers_next_deadline(struct weft_runtime *rt);
void weft__park_timer_fire(weft_tentry_t *e);
/* A stackless task's armed deadline (t->timer): cancel and free it. */
void weft__park_timer_drop(weft_task *t);

/* stats.c / monitor.c */
int weft__monitor_start(struct weft_runtime *rt);
/* Give memory nobody needed for a while back to the OS (the monitor, every
 * tick; a parking worker when there is no monitor). */
void weft__release_memory(struct weft_runtime *rt, weft_time_t now);
void weft__monitor_stop(struct weft_runtime *rt);
void weft__signals_install(struct weft_runtime *rt);
void weft__signals_remove(struct weft_runtime *rt);
void weft__fatal_task(weft_task *t, const char *what) __attribute__((noreturn));
/* "weft: <what> in task <id> '<name>': <value>" on stderr (signal-safe). */
void weft__report_task(weft_task *t, const char *what, long value);

/* sim.c: the simulation mode (docs/scheduler.md, "Simulation"). A sim
 * runtime has one worker and no thread: its owner thread becomes the
 * worker while it drives (weft__sim_drive). */
struct weft_sim {
	struct weft_runtime *rt;
	weft_time_t now;    /* the virtual clock */
	uint64_t seed;	    /* after WEFT_SIM_SEED */
	uint64_t rng;	    /* the schedule's stream */
	uint64_t hash;	    /* FNV-1a of the schedule */
	uint64_t steps;	    /* task runs */
	uint64_t deadlocks; /* waits that found nothing to run */
	uint64_t id;	    /* weft_sim_info's: from a process-wide count */
	weft_time_t run_ns; /* each run costs [0, run_ns) of virtual time */
	int trace_fd;	    /* -1: no trace */
	bool driving;	    /* inside weft__sim_drive (then weft__self_worker is the worker) */
	weft_task **ready;  /* swept from the queues, picked at random */
	size_t nready, ready_cap;
};
/* The sim the calling thread owns, or NULL: set from the sim's start to
 * the end of its stop. initial-exec: weft_now reads it on every call. */
extern __thread struct weft_sim *weft__sim_mine __attribute__((tls_model("initial-exec")));
/* At start, before the shards: the sim's state, the owner's TLS, the
 * seeds. -ENOMEM. */
int weft__sim_create(struct weft_runtime *rt, const weft_config_t *c);
void weft__sim_destroy(struct weft_sim *sm); /* after the runtime's destroy; clears the owner's TLS */
/* Restart the task table of an index only sims have used (ids and epochs
 * from the start), at start. */
void weft__sim_reset_table(struct weft_runtime *rt);
/* Run tasks on the owner thread until done(arg), the virtual clock reaches
 * deadline (-ETIMEDOUT), or nothing can run nor become ready (-EDEADLK).
 * Owner thread only; -EDEADLK from inside a drive (a timer function that
 * waits). */
int weft__sim_drive(struct weft_sim *sm, bool (*done)(void *), void *arg, weft_time_t deadline);
/* The owner's plain-thread wait on parker state *state (PARKED): drive
 * until it leaves PARKED (0) or deadline (-ETIMEDOUT), or -EDEADLK
 * (reported). */
int weft__sim_wait(_Atomic uint64_t *state, weft_time_t deadline);
void weft__sim_yield(void); /* weft_yield on the owner thread: one task run */
/* stop_finish: cancel and drive until no task is live (true), or give up
 * on tasks that wait uncancellably on each other (false, reported); the
 * runtime is then abandoned: weft__sim_abandon. */
bool weft__sim_stop(struct weft_runtime *rt);
void weft__sim_abandon(struct weft_runtime *rt);
int weft__sim_wait_stop_request(struct weft_runtime *rt, weft_time_t deadline);
/* Whether the caller may touch sim rt: its owner thread (driving or not). */
static inline bool weft__sim_ours(const struct weft_runtime *rt)
{
	return weft__sim_mine != NULL && weft__sim_mine == rt->simst;
}
/* Whether the caller must be refused (-EPERM) what it asks of rt: rt is a
 * live sim and the caller is not its owner thread. live first: seen set,
 * it publishes the start's fields (sim, simst). */
static inline bool weft__sim_foreign(struct weft_runtime *rt)
{
	return atomic_load(&rt->live) && rt->sim && !weft__sim_ours(rt);
}
/* A wake-up of a sim's task from another thread: report and abort. */
void weft__sim_leak(struct weft_runtime *rt, const char *what) __attribute__((noreturn));
/* Shuffle each run of equal expiry ticks in a fired list (timer.c). */
void weft__sim_shuffle_fires(struct weft_runtime *rt, weft_tnode_t **list);

/* runtime.c */
extern struct weft_runtime *weft__default_rt;
extern struct weft_runtime *weft__live_rts;

/* Task ids: runtime index << 56 | generation (24 bits) << 32 | slot, so an
 * id names its runtime and resolves from anywhere (weft__task_get). */
#define WEFT_MAX_RUNTIMES 255
#define WEFT_ID_RT_SHIFT 56
#define WEFT_ID_GEN_MASK ((uint64_t)0xffffff << 32)
/* The runtime struct an id names (live or not), or NULL. */
struct weft_runtime *weft__rt_of_id(weft_task_t id);
/* A call from outside rt's workers holds rt while it uses it: true if rt is
 * live (then weft__rt_unhold it), false if it is gone or going. Destroying
 * a runtime waits until nobody holds it. */
bool weft__rt_hold(struct weft_runtime *rt);
/* At stop: cancel every task of rt not finished. */
void weft__cancel_all(struct weft_runtime *rt);
void weft__rt_unhold(struct weft_runtime *rt);

/* Whether the caller is one of rt's workers (or a task running on one): it
 * needs no hold, because rt outlives its workers' tasks. */
/* The runtime whose monitor runs on this thread (monitor.c), or NULL. The
 * monitor runs a stuck worker's due timers, so it counts as the runtime's
 * own thread: stop joins it before freeing anything. */
extern __thread struct weft_runtime *weft__monitor_of;

static inline bool weft__on_rt(const struct weft_runtime *rt)
{
	weft_worker *w = weft__self_worker;
	return (w && w->rt == rt) || (!w && weft__monitor_of == rt);
}

/* Sized structs (weft_config_t, weft_stats_t): how many bytes of the
 * caller's struct to use. size 0 means the first version (v1 bytes); less
 * than v1 is -EINVAL; more than this library knows is -E2BIG unless the
 * bytes it does not know are zero. When a version adds fields, v1 stays the
 * first version's size (offsetof its first added field). */
#define WEFT__CONFIG_V1 offsetof(weft_config_t, sim)
#define WEFT__STATS_V1 sizeof(weft_stats_t)
static inline long weft__sized(const void *p, size_t size, size_t v1, size_t known)
{
	if (size == 0)
		return (long)v1;
	if (size < v1)
		return -EINVAL;
	for (size_t i = known; i < size; i++)
		if (((const unsigned char *)p)[i])
			return -E2BIG;
	return (long)(size < known ? size : known);
}

#endif
