/* internal.h - the actor module's shared structures (docs/actor.md).
 *
 * A runtime's processes live in its context (struct wa_ctx), attached to
 * the runtime (weft_runtime_attach) on first use and destroyed when it
 * stops. A process is a slot of the context's table (struct wa_proc) plus
 * the task that runs it; the task's local word (weft_task_local, keyed by
 * the actor's end hook) is the
 * slot, and its end hook (wa_on_end) is the process's death.
 *
 * Lifetime of a slot (proc.c)
 * ---------------------------
 * Slots live in chunks that are never freed while the context lives, so a
 * stale pid may always read a slot (type-stable memory). `pid` is the
 * incarnation's pid, 0 while free. `refs` counts the incarnation's life
 * (1, dropped at its death) and every caller that holds it (wa_get: an
 * increment, then a re-check of the pid); WA_DEAD is set at death. When the
 * count reaches 0 with WA_DEAD set, whoever dropped it reclaims the slot:
 * the mailbox and the cold part are freed and the slot goes on the free
 * list. So a sender that found the process alive can finish its push, and
 * the message is freed with the mailbox, never delivered to a later
 * process of the same slot.
 *
 * The process lock (`lock`, a spinlock) guards state, the signal fields and
 * the cold part (links, monitors, name, waiters). Two process locks are
 * taken together only to link or monitor, lower address first. Order with
 * the others: registry lock -> process lock -> a wait queue's lock.
 *
 * Mailbox (mailbox.c)
 * -------------------
 * Senders push onto `inbox`, a lock-free LIFO (CAS); the receiver takes the
 * whole stack at once, reverses it and appends it to its private FIFO list
 * (`first` .. `*tail`), which only it touches. The inbox word is NULL
 * (empty), a message pointer (its stack), or WA_WAITING(epoch) = epoch << 1
 * | 1: empty, and the receiver is parked in the wait `epoch` of its parker
 * `rparker`. The sender whose CAS replaces a WAITING word wakes exactly that
 * wait (the epoch is in the word it replaced), so no wake is lost and none
 * lands on a later wait of the same task. Ordering: one sender's pushes
 * are in order on the stack, and the reversal keeps that order.
 */
#ifndef WEFT_ACTOR_INTERNAL_H
#define WEFT_ACTOR_INTERNAL_H

#include <assert.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <weft/actor.h>

#include "../base/cpu.h"
#include "../base/spin.h"

#define WA_MAGIC 0x70726f63u /* "proc": a task local word that is a process */

/* Pid layout: node 16 | runtime 8 | generation 18 | slot 22. */
#define WA_SLOT_BITS 22
#define WA_GEN_BITS 18
#define WA_SLOT_MASK ((UINT64_C(1) << WA_SLOT_BITS) - 1)
#define WA_GEN_MAX ((UINT32_C(1) << WA_GEN_BITS) - 1)
#define WA_RT_SHIFT (WA_SLOT_BITS + WA_GEN_BITS)
#define WA_PID(ix, gen, slot) ((uint64_t)(ix) << WA_RT_SHIFT | (uint64_t)(gen) << WA_SLOT_BITS | (slot))
#define WA_PID_RT(pid) ((uint32_t)((pid) >> WA_RT_SHIFT) & 0xff)
#define WA_PID_SLOT(pid) ((uint32_t)((pid)&WA_SLOT_MASK))
#define WA_REF_SHIFT 40 /* refs: runtime 8 | counter 40 */

#define WA_CHUNK 4096 /* slots per chunk */
#define WA_CHUNKS ((1u << WA_SLOT_BITS) / WA_CHUNK)
#define WA_CHUNK_BYTES (WA_CHUNK * sizeof(struct wa_proc))

#define WA_DEAD 0x80000000u /* in refs */

#define WA_WAITING(epoch) ((uintptr_t)(epoch) << 1 | 1)
#define WA_IS_WAITING(v) (((v)&1) != 0)

enum wa_state { WA_FREE = 0, WA_ALIVE = 1, WA_ENDED = 2 };

/* weft_msg_t.flags_ */
#define WA_MSG_MAGIC 0x6d730000u /* upper half: a message of weft_msg_create */
#define WA_MSG_SENT 0x1u	 /* handed over: not the caller's any more */

struct wa_mon {
	weft_ref_t ref;
	weft_pid_t pid; /* the watcher (in a target's list) or the target (in a watcher's) */
};

/* The part of a process most never need: allocated on first use, under the
 * process lock, freed when the slot is reclaimed. */
struct wa_cold {
	weft_pid_t *links;
	uint32_t nlinks, caplinks;
	struct wa_mon *mons; /* who monitors this process */
	uint32_t nmons, capmons;
	struct wa_mon *watches; /* whom it monitors */
	uint32_t nwatches, capwatches;
	char name[WEFT_NAME_MAX + 1];
	void *detail; /* the exit detail (weft_proc_exit, or the signal that ended it) */
	size_t detail_len;
	weft_waitq_t waiters; /* weft_proc_wait */
	/* A bounded mailbox: senders wait in sendq while count >= bound;
	 * nsendw counts them (changed under sendq's lock, read without). */
	weft_waitq_t sendq;
	_Atomic uint32_t nsendw;
	bool is_sup;		      /* a supervisor (sup.c), from its spawn on */
	_Atomic int64_t sup_restarts; /* its restarts, read by weft_sup_restarts */
};

struct wa_ctx;

/* A slot: 160 bytes, no padding between the senders' and the receiver's
 * fields (a sender's push reads what the receiver wrote last anyway, and
 * a million idle processes cost 64 bytes less each). */
struct wa_proc {
	_Atomic uint64_t pid;
	_Atomic uint32_t refs;
	_Atomic uint32_t lock;
	uint32_t magic;
	uint32_t gen;  /* the next incarnation's generation (under the context lock) */
	uint32_t slot; /* its index in the context's table */
	/* Under the lock (state is also read without it). */
	_Atomic uint8_t state; /* enum wa_state */
	bool signalled;	       /* told to end by an exit signal */
	bool exit_set;	       /* weft_proc_exit was called */
	_Atomic bool trap;     /* written by the process, read by signallers under the lock */
	bool receiving;	       /* the process alone */
	bool used_mvars;       /* it has locked an MVar (mvar.c; the process alone sets it) */
	bool told;	       /* ENDED and its end told to everyone (wa_notify_end): waiters may
				* return; until then a waiter queues, as for a live process */
	struct wa_ctx *ctx;
	_Atomic weft_task_t task; /* set after the spawn (0 before) */
	/* Mailbox, the senders' side. */
	_Atomic uintptr_t inbox;
	_Atomic size_t count; /* messages in the mailbox (inbox and list) */
	size_t bound;	      /* 0: unbounded */
	size_t max_message;
	union {
		_Atomic(void *) rparker;   /* the receiver's parker, for WAITING words */
		struct wa_proc *next_free; /* a free slot: the free list */
	};
	/* Mailbox, the receiver's side. */
	weft_msg_t *first;
	weft_msg_t **tail; /* &last->next_, or &first */
	weft_msg_t **mark; /* weft_make_ref's mark: the link after which mark_ref's replies are */
	weft_ref_t mark_ref;
	_Atomic uint64_t examined, received; /* written by the process alone (relaxed), read by info */
	int64_t reason;			     /* signalled or exit_set: why it ends (under the lock) */
	struct wa_cold *cold;
};

struct wa_name {
	struct wa_name *next;
	weft_pid_t pid;
	char name[WEFT_NAME_MAX + 1];
};

struct wa_ctx {
	weft_runtime_t *rt;
	uint32_t index;		   /* 1..255: the pids' runtime byte */
	_Atomic uint32_t users;	   /* lookups from outside the runtime in progress */
	bool dying;		   /* destroyed, not yet freed (under ctxs_lock): its index stays taken */
	_Atomic bool free_pending; /* destroyed: the last holder frees it (proc.c) */
	bool sim;		   /* a simulation runtime's: only its owner thread may call in */
	pthread_mutex_t lock;	   /* slot allocation */
	_Atomic(struct wa_proc *) chunks[WA_CHUNKS];
	uint32_t nslots;	   /* slots ever handed out */
	struct wa_proc *free_head; /* free slots, last freed first */
	_Atomic uint64_t next_ref;
	/* Registry. */
	pthread_mutex_t reg_lock;
	struct wa_name **names;
	size_t nnames, nbuckets;
	/* Statistics. */
	_Atomic uint64_t spawned, live, sent_dead, received_dead, delivered_dead;
	_Atomic uint64_t exits_normal, exits_killed, exits_other;
};

/* proc.c */
/* weft_proc_spawn, for a supervisor: marked as one before it runs. */
int wa_spawn_sup(weft_pid_t *out, weft_fn_t fn, void *arg, const weft_proc_opts_t *opts);
/* A runtime's context (NULL rt: the current runtime), made on its first
 * use; NULL and *err (-ESHUTDOWN, -ENOMEM, -EPERM...) if it cannot be. */
struct wa_ctx *wa_ctx_make(weft_runtime_t *rt, int *err);
/* The same, held for the call (wa_ctx_drop after): a caller from outside
 * the runtime counts itself in. NULL and *err: -ESHUTDOWN (no runtime, or
 * stopping), -ESRCH (no context and not create: no process ever), -EPERM
 * (a sim, from another thread than its owner), or wa_ctx_make's. */
struct wa_ctx *wa_ctx_hold(weft_runtime_t *rt, bool create, int *err);
void wa_ctx_drop(struct wa_ctx *c);
struct wa_proc *wa_self(void);
/* The live incarnation pid names, with a reference (wa_put), or NULL:
 * *err says why (-EINVAL: no such runtime; -EHOSTUNREACH: another node;
 * -ESRCH: ended). A lookup from outside pid's runtime also holds the
 * context (wa_put lets it go). */
struct wa_proc *wa_get(weft_pid_t pid, int *err);
void wa_put(struct wa_proc *p);
struct wa_cold *wa_cold(struct wa_proc *p); /* under p's lock; NULL: no memory */
weft_ref_t wa_new_ref(struct wa_ctx *c);
void wa_lock2(struct wa_proc *a, struct wa_proc *b);
/* Under p's lock: set its exit detail (a copy). */
int wa_set_detail(struct wa_proc *p, const void *detail, size_t len);
void wa_unlock2(struct wa_proc *a, struct wa_proc *b);

/* mailbox.c */
/* Push m (a message the caller owns) into p's mailbox, ignoring the bound
 * (signals, and sends that have room already). */
void wa_push(struct wa_proc *p, weft_msg_t *m);
weft_msg_t *wa_msg_new(size_t len);
void wa_mailbox_free(struct wa_proc *p); /* reclaim: drop every message */
void wa_mark(struct wa_proc *p, weft_ref_t ref);
int wa_flush_ref(struct wa_proc *p, weft_ref_t ref, uint32_t kind);

/* link.c */
/* Under both locks (wa_lock2), both ALIVE: link a and b, or monitor t from
 * w with ref (0, or -ENOMEM with nothing added). Linking twice is one
 * link. */
int wa_link_locked(struct wa_proc *a, struct wa_proc *b);
int wa_monitor_locked(struct wa_proc *w, struct wa_proc *t, weft_ref_t ref);
/* Under both locks: remove both halves of p's link to other (if any). */
void wa_unlink_locked(struct wa_proc *p, struct wa_proc *other);
/* Under w's lock: remove w's half of monitor ref (its target in *target,
 * may be NULL); false if w has no such monitor. */
bool wa_unwatch_locked(struct wa_proc *w, weft_ref_t ref, weft_pid_t *target);
/* An exit signal from `from` to p (referenced). via_link: it comes
 * through a link (dropped if the link is gone). kill: untrappable. */
void wa_signal(struct wa_proc *p, weft_pid_t from, int64_t reason, const void *detail, size_t len, bool via_link,
	       bool kill);
void wa_notify_end(struct wa_proc *p, int64_t reason, const void *detail, size_t len);

/* mvar.c: release the MVars a process's task holds (at its death). */
void wa_mvar_release(weft_task_t task);

/* registry.c */
int wa_reg_add(struct wa_ctx *c, const char *name, struct wa_proc *p);
void wa_reg_drop(struct wa_ctx *c, struct wa_proc *p);
void wa_reg_free(struct wa_ctx *c);
bool wa_name_ok(const char *name);

#endif
