/* proc.c - processes: the per-runtime table, pids, spawn, death, waiting
 * for a process, information. The slot lifetime rules are in internal.h.
 *
 * Contexts. A runtime's context is made on its first actor call and
 * attached to it; its index (1..255) is the pids' runtime byte. Context
 * structs are never freed: a stopped runtime's struct is reused by the next
 * context that takes its index, so a lookup from outside may always read
 * ctxs[ix] and the struct it names. Such a lookup counts itself in `users`
 * and then re-checks that ctxs[ix] still names the struct; the destroy
 * clears ctxs[ix] first and then waits for `users` to drain before it frees
 * the slots (both seq_cst: one of the two sees the other). A caller running
 * on the runtime's own workers needs no count: the runtime cannot stop
 * under it (the destroy runs after every worker has exited).
 *
 * Death. A process dies in its task's end hook (wa_on_end), on the worker
 * that finished the task: it is marked ENDED under its lock (from then on no
 * link or monitor is added), its name is dropped and its exit counted, its
 * links and monitors are told (link.c), then it is marked `told` and its
 * waiters woken (a wait that comes before `told` queues, so no wait returns
 * before the end's effects can be seen), and its pid is cleared before its
 * life reference goes: from then on lookups fail, and the slot is reclaimed
 * when the last holder lets go.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../base/sized.h"
#include "internal.h"

static void ctx_destroy(void *arg);
static void ctx_dump(void *arg, int fd);
static void wa_on_end(void *local, void *result);
static const weft_runtime_ext_t ctx_key = {"actor", ctx_destroy, ctx_dump};

static pthread_mutex_t ctxs_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(struct wa_ctx *) ctxs[256]; /* live contexts by index */
static struct wa_ctx *store[256];	   /* every context struct made (never freed) */

struct wa_ctx *wa_ctx_make(weft_runtime_t *rt, int *err)
{
	*err = -ESHUTDOWN;
	if (!rt)
		rt = weft_runtime_current();
	if (!rt)
		return NULL;
	struct wa_ctx *c = weft_runtime_attached(rt, &ctx_key);
	if (c)
		return c;
	pthread_mutex_lock(&ctxs_lock);
	uint32_t ix = 0;
	for (uint32_t i = 1; i < 256; i++)
		if (!atomic_load(&ctxs[i]) && (!store[i] || (!store[i]->dying && atomic_load(&store[i]->users) == 0))) {
			ix = i;
			break;
		}
	*err = -EAGAIN; /* 255 runtimes with processes: cannot happen, runtimes are fewer */
	if (!ix) {
		pthread_mutex_unlock(&ctxs_lock);
		return NULL;
	}
	*err = -ENOMEM;
	if (!store[ix]) {
		store[ix] = calloc(1, sizeof(struct wa_ctx));
		if (!store[ix]) {
			pthread_mutex_unlock(&ctxs_lock);
			return NULL;
		}
		pthread_mutex_init(&store[ix]->lock, NULL);
		pthread_mutex_init(&store[ix]->reg_lock, NULL);
	}
	c = store[ix];
	/* Reset everything but the locks and users (a stale lookup may still
	 * be counting itself in and out). */
	c->rt = rt;
	c->index = ix;
	c->sim = weft_runtime_is_sim(rt);
	atomic_store(&c->free_pending, false);
	for (uint32_t i = 0; i < WA_CHUNKS; i++)
		atomic_store_explicit(&c->chunks[i], NULL, memory_order_relaxed);
	c->nslots = 0;
	c->free_head = NULL;
	atomic_store(&c->next_ref, 1);
	c->names = NULL;
	c->nnames = c->nbuckets = 0;
	atomic_store(&c->spawned, 0);
	atomic_store(&c->live, 0);
	atomic_store(&c->sent_dead, 0);
	atomic_store(&c->received_dead, 0);
	atomic_store(&c->delivered_dead, 0);
	atomic_store(&c->exits_normal, 0);
	atomic_store(&c->exits_killed, 0);
	atomic_store(&c->exits_other, 0);
	int e = weft_runtime_attach(rt, &ctx_key, c);
	if (e == 0)
		atomic_store(&ctxs[ix], c);
	pthread_mutex_unlock(&ctxs_lock);
	if (e == -EBUSY) /* another thread attached first */
		return weft_runtime_attached(rt, &ctx_key);
	*err = e;
	return e ? NULL : c;
}

/* Free what a destroyed context holds, by whoever lets it go last. */
static void ctx_free(struct wa_ctx *c)
{
	for (uint32_t i = 0; i < WA_CHUNKS; i++) {
		struct wa_proc *ch = atomic_load_explicit(&c->chunks[i], memory_order_relaxed);
		if (!ch)
			continue;
		/* Every process has died, so every slot was reclaimed; a slot
		 * that was not (a bug) still gets its memory back. */
		for (uint32_t j = 0; j < WA_CHUNK && i * WA_CHUNK + j < c->nslots; j++) {
			assert(atomic_load_explicit(&ch[j].pid, memory_order_relaxed) == 0);
			if (ch[j].cold || ch[j].first || atomic_load(&ch[j].inbox))
				wa_mailbox_free(&ch[j]);
		}
		munmap(ch, WA_CHUNK_BYTES);
		atomic_store_explicit(&c->chunks[i], NULL, memory_order_relaxed);
	}
	pthread_mutex_lock(&c->reg_lock);
	wa_reg_free(c);
	pthread_mutex_unlock(&c->reg_lock);
	c->rt = NULL;
	pthread_mutex_lock(&ctxs_lock);
	c->dying = false; /* its index may be taken again */
	pthread_mutex_unlock(&ctxs_lock);
}

/* At the runtime's stop, after every task has ended. Callers from outside
 * may still hold the context (a process of another runtime parked in a
 * wait on one of these processes, whose worker may be the very thread
 * stopping this runtime): the destroy does not wait for them. It marks the
 * context free-pending, and whichever of it and the last holder sees the
 * other (seq_cst on users and free_pending) frees it, once. */
static void ctx_destroy(void *arg)
{
	struct wa_ctx *c = arg;
	pthread_mutex_lock(&ctxs_lock);
	atomic_store(&ctxs[c->index], NULL);
	c->dying = true; /* its index is not taken again until it is freed */
	pthread_mutex_unlock(&ctxs_lock);
	atomic_store(&c->free_pending, true);
	if (atomic_load(&c->users) == 0 && atomic_exchange(&c->free_pending, false))
		ctx_free(c);
}

/* A holder from outside lets c go. */
static void users_drop(struct wa_ctx *c)
{
	if (atomic_fetch_sub(&c->users, 1) == 1 && atomic_load(&c->free_pending) &&
	    atomic_exchange(&c->free_pending, false))
		ctx_free(c);
}

static inline bool on_own_runtime(const struct wa_ctx *c)
{
	return weft_worker_index() >= 0 && weft_runtime_current() == c->rt;
}

/* Whether a call on c from here must count itself in c->users: not from
 * c's own processes, nor from its runtime's workers (c cannot be
 * destroyed under them). */
static inline bool needs_count(struct wa_ctx *c);

struct wa_proc *wa_self(void)
{
	struct wa_proc *p = weft_task_local(wa_on_end); /* a process's own word, never another layer's */
	assert(!p || p->magic == WA_MAGIC);
	return p;
}

static void reclaim(struct wa_proc *p);

/* Drop one reference; the one that takes a dead slot to zero reclaims it. */
static void unref(struct wa_proc *p)
{
	uint32_t v = atomic_load(&p->refs);
	for (;;) {
		assert((v & ~WA_DEAD) > 0);
		uint32_t nv = v == (WA_DEAD | 1) ? 0 : v - 1;
		if (atomic_compare_exchange_weak(&p->refs, &v, nv)) {
			if (v == (WA_DEAD | 1))
				reclaim(p);
			return;
		}
	}
}

struct wa_proc *wa_get(weft_pid_t pid, int *err)
{
	if (pid != 0 && WEFT_PID_NODE(pid) != 0) {
		*err = -EHOSTUNREACH;
		return NULL;
	}
	if (pid == 0 || WA_PID_RT(pid) == 0) {
		*err = -EINVAL;
		return NULL;
	}
	uint32_t ix = WA_PID_RT(pid);
	struct wa_proc *me = wa_self();
	struct wa_ctx *c = me ? me->ctx : NULL;
	bool counted = false;
	if (!c || c->index != ix) {
		c = atomic_load(&ctxs[ix]);
		if (!c) {
			*err = -ESRCH; /* a runtime that has stopped: as a dead process */
			return NULL;
		}
		if (!on_own_runtime(c)) {
			atomic_fetch_add(&c->users, 1);
			if (atomic_load(&ctxs[ix]) != c) {
				users_drop(c);
				*err = -ESRCH;
				return NULL;
			}
			counted = true;
			if (c->sim && weft_runtime_current() != c->rt) {
				/* a sim's processes belong to its owner thread */
				users_drop(c);
				*err = -EPERM;
				return NULL;
			}
		}
	}
	uint32_t slot = WA_PID_SLOT(pid);
	struct wa_proc *ch = atomic_load_explicit(&c->chunks[slot / WA_CHUNK], memory_order_acquire);
	struct wa_proc *p = ch ? &ch[slot % WA_CHUNK] : NULL;
	if (p && atomic_load(&p->pid) == pid) {
		atomic_fetch_add(&p->refs, 1);
		if (atomic_load(&p->pid) == pid)
			return p;
		unref(p);
	}
	if (counted)
		users_drop(c);
	*err = -ESRCH;
	return NULL;
}

static inline bool needs_count(struct wa_ctx *c)
{
	struct wa_proc *me = wa_self();
	return !(me && me->ctx == c) && !on_own_runtime(c);
}

void wa_put(struct wa_proc *p)
{
	struct wa_ctx *c = p->ctx;
	bool counted = needs_count(c);
	unref(p);
	if (counted)
		users_drop(c);
}

struct wa_ctx *wa_ctx_hold(weft_runtime_t *rt, bool create, int *err)
{
	struct wa_ctx *c;
	if (create) {
		c = wa_ctx_make(rt, err);
	} else {
		*err = -ESHUTDOWN;
		if (!rt)
			rt = weft_runtime_current();
		c = rt ? weft_runtime_attached(rt, &ctx_key) : NULL;
		if (!c)
			*err = rt ? -ESRCH : -ESHUTDOWN; /* no context: no processes */
	}
	if (!c || !needs_count(c))
		return c;
	atomic_fetch_add(&c->users, 1);
	if (atomic_load(&ctxs[c->index]) != c) {
		users_drop(c);
		*err = -ESHUTDOWN;
		return NULL;
	}
	if (c->sim && weft_runtime_current() != c->rt) {
		users_drop(c);
		*err = -EPERM;
		return NULL;
	}
	return c;
}

void wa_ctx_drop(struct wa_ctx *c)
{
	if (needs_count(c))
		users_drop(c);
}

struct wa_cold *wa_cold(struct wa_proc *p)
{
	assert(weft__spin_held(&p->lock));
	if (!p->cold) {
		p->cold = calloc(1, sizeof *p->cold);
		if (p->cold) {
			weft_waitq_init(&p->cold->waiters);
			weft_waitq_init(&p->cold->sendq);
		}
	}
	return p->cold;
}

weft_ref_t wa_new_ref(struct wa_ctx *c)
{
	uint64_t n = atomic_fetch_add_explicit(&c->next_ref, 1, memory_order_relaxed);
	return (uint64_t)c->index << WA_REF_SHIFT | (n & ((UINT64_C(1) << WA_REF_SHIFT) - 1));
}

void wa_lock2(struct wa_proc *a, struct wa_proc *b)
{
	assert(a != b);
	if (a > b) {
		struct wa_proc *t = a;
		a = b;
		b = t;
	}
	weft__spin_lock(&a->lock);
	weft__spin_lock(&b->lock);
}

void wa_unlock2(struct wa_proc *a, struct wa_proc *b)
{
	weft__spin_unlock(&a->lock);
	weft__spin_unlock(&b->lock);
}

/* ------------------------------------------------------------------ slots */

static struct wa_proc *slot_alloc(struct wa_ctx *c, int *err)
{
	pthread_mutex_lock(&c->lock);
	struct wa_proc *p = c->free_head;
	if (p) {
		c->free_head = p->next_free;
	} else if (c->nslots < (1u << WA_SLOT_BITS)) {
		uint32_t slot = c->nslots;
		struct wa_proc *ch = atomic_load_explicit(&c->chunks[slot / WA_CHUNK], memory_order_relaxed);
		if (!ch) {
			/* Populated at once: one call instead of a page fault every
			 * 25 spawns (faults are dear on a virtual machine). Zeroed
			 * by the kernel; each slot is set up when first handed out. */
			void *m = mmap(NULL, WA_CHUNK_BYTES, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
			if (m == MAP_FAILED) {
				pthread_mutex_unlock(&c->lock);
				*err = -ENOMEM;
				return NULL;
			}
			ch = m;
			/* release: a lookup that finds the chunk sees it zeroed */
			atomic_store_explicit(&c->chunks[slot / WA_CHUNK], ch, memory_order_release);
		}
		p = &ch[slot % WA_CHUNK];
		p->slot = slot;
		p->magic = WA_MAGIC;
		p->gen = 1;
		p->ctx = c;
		c->nslots++;
	} else {
		pthread_mutex_unlock(&c->lock);
		*err = -EAGAIN;
		return NULL;
	}
	pthread_mutex_unlock(&c->lock);
	return p;
}

/* The last reference to a dead slot is gone: free what it holds and make
 * it free (a slot whose generations are used up is retired instead). */
static void reclaim(struct wa_proc *p)
{
	assert(atomic_load(&p->pid) == 0 && p->state == WA_ENDED);
	wa_mailbox_free(p);
	p->state = WA_FREE;
	struct wa_ctx *c = p->ctx;
	pthread_mutex_lock(&c->lock);
	if (p->gen <= WA_GEN_MAX) {
		/* Last in, first out: the next spawn gets a slot still in the
		 * cache. Stale pids stay harmless whatever the order: the
		 * generation tells incarnations apart, and a slot retires
		 * before its generation wraps. */
		p->next_free = c->free_head;
		c->free_head = p;
	}
	pthread_mutex_unlock(&c->lock);
}

/* ------------------------------------------------------------------ spawn */

/* A spawn that failed after the slot was set up (its pid may have been
 * seen: through its name, by a waiter or a monitor that found it there):
 * take back the caller's halves of the link and the monitor, then let it
 * die as any process does, with the error as its reason, so everyone else
 * who reached it hears of the end. */
static void unspawn(struct wa_proc *p, struct wa_proc *me, weft_ref_t mref, int err)
{
	if (me) {
		wa_lock2(me, p);
		wa_unlink_locked(me, p);
		if (mref)
			wa_unwatch_locked(me, mref, NULL);
		wa_unlock2(me, p);
	}
	weft__spin_lock(&p->lock);
	if (!p->signalled) {
		p->exit_set = true;
		p->reason = err;
	}
	weft__spin_unlock(&p->lock);
	wa_on_end(p, NULL);
}

static int spawn_common(weft_pid_t *out, bool step, void *fn, void *arg, const weft_proc_opts_t *uo, bool sup)
{
	weft_proc_opts_t o;
	int e = weft__opts_in(&o, sizeof o, uo, uo ? uo->size : 0);
	if (e)
		return e;
	if (!fn || (o.bounded && o.mailbox_bound == 0) || (o.monitor && !o.monitor_ref) ||
	    (o.name && !wa_name_ok(o.name)) || o.max_message > WEFT_MSG_MAX)
		return -EINVAL;
	struct wa_proc *me = wa_self();
	struct wa_ctx *c = wa_ctx_make(o.runtime, &e);
	if (!c)
		return e;
	if ((o.link || o.monitor) && (!me || me->ctx != c))
		return -EPERM;
	struct wa_proc *p = slot_alloc(c, &e);
	if (!p)
		return e;
	/* A free slot: nobody refers to it but stale lookups, which fail. */
	assert(p->state == WA_FREE && atomic_load(&p->pid) == 0);
	uint32_t gen = p->gen++;
	weft_pid_t pid = WA_PID(c->index, gen, p->slot);
	atomic_store_explicit(&p->task, 0, memory_order_relaxed);
	atomic_store_explicit(&p->inbox, 0, memory_order_relaxed);
	atomic_store_explicit(&p->count, 0, memory_order_relaxed);
	p->bound = o.bounded ? o.mailbox_bound : 0;
	p->max_message = o.max_message ? o.max_message : WEFT_MSG_MAX;
	atomic_store_explicit(&p->rparker, NULL, memory_order_relaxed);
	p->first = NULL;
	p->tail = &p->first;
	p->mark = NULL;
	p->mark_ref = 0;
	atomic_store_explicit(&p->examined, 0, memory_order_relaxed);
	atomic_store_explicit(&p->received, 0, memory_order_relaxed);
	p->receiving = false;
	p->used_mvars = false;
	p->told = false;
	p->state = WA_ALIVE;
	p->signalled = p->exit_set = false;
	atomic_store_explicit(&p->trap, o.trap_exits, memory_order_relaxed);
	p->reason = 0;
	assert(p->cold == NULL);
	if (o.bounded || sup) {
		p->cold = calloc(1, sizeof *p->cold);
		if (!p->cold) {
			p->state = WA_ENDED;
			atomic_fetch_or(&p->refs, WA_DEAD | 1);
			unref(p);
			return -ENOMEM;
		}
		weft_waitq_init(&p->cold->waiters);
		weft_waitq_init(&p->cold->sendq);
		p->cold->is_sup = sup;
	}
	atomic_fetch_add(&p->refs, 1); /* its life */
	atomic_store(&p->pid, pid);
	atomic_fetch_add(&c->live, 1);
	if (o.name && (e = wa_reg_add(c, o.name, p)) != 0) {
		unspawn(p, NULL, 0, e);
		return e;
	}
	weft_ref_t mref = 0;
	if (o.link || o.monitor) {
		if (o.monitor)
			mref = wa_new_ref(c);
		wa_lock2(me, p);
		e = o.link ? wa_link_locked(me, p) : 0;
		if (!e && o.monitor)
			e = wa_monitor_locked(me, p, mref);
		wa_unlock2(me, p);
		if (e) {
			unspawn(p, me, mref, e);
			return e;
		}
		if (o.monitor)
			wa_mark(me, mref);
	}
	weft_spawn_opts_t so = {
		.stack_size = o.stack_size,
		.name = o.name,
		.detached = true,
		.runtime = c->rt,
		.local = p,
		.on_end = wa_on_end,
	};
	weft_task_t t;
	e = step ? weft_spawn_step(&t, (weft_step_fn_t)fn, arg, &so) : weft_spawn(&t, (weft_fn_t)fn, arg, &so);
	if (e) {
		unspawn(p, o.link || o.monitor ? me : NULL, mref, e);
		return e;
	}
	atomic_fetch_add(&c->spawned, 1); /* spawns that failed are not counted */
	/* A signal that came before the task id was known cancels it now. */
	weft__spin_lock(&p->lock);
	bool cancel = false;
	if (atomic_load(&p->pid) == pid) {
		atomic_store(&p->task, t);
		cancel = p->signalled;
	}
	weft__spin_unlock(&p->lock);
	if (cancel)
		(void)weft_cancel(t);
	if (out)
		*out = pid;
	if (o.monitor)
		*o.monitor_ref = mref;
	return 0;
}

int weft_proc_spawn(weft_pid_t *out, weft_fn_t fn, void *arg, const weft_proc_opts_t *opts)
{
	return spawn_common(out, false, (void *)fn, arg, opts, false);
}

int weft_proc_spawn_step(weft_pid_t *out, weft_step_fn_t step, void *state, const weft_proc_opts_t *opts)
{
	return spawn_common(out, true, (void *)step, state, opts, false);
}

int wa_spawn_sup(weft_pid_t *out, weft_fn_t fn, void *arg, const weft_proc_opts_t *opts)
{
	return spawn_common(out, false, (void *)fn, arg, opts, true);
}

/* ------------------------------------------------------------------ death */

static void wa_on_end(void *local, void *result)
{
	struct wa_proc *p = local;
	assert(p->magic == WA_MAGIC);
	weft__spin_lock(&p->lock);
	assert(p->state == WA_ALIVE);
	p->state = WA_ENDED;
	/* A result that is a negative errno (weft's failure convention, as
	 * for task groups) is a failure: a stackless step that returned
	 * garbage (-EINVAL), a coroutine that never got a stack (-ENOMEM). */
	intptr_t r = (intptr_t)result;
	int64_t reason = p->signalled || p->exit_set ? p->reason : r >= -4095 && r <= -1 ? r : WEFT_EXIT_NORMAL;
	void *detail = p->cold ? p->cold->detail : NULL;
	size_t dlen = p->cold ? p->cold->detail_len : 0;
	weft__spin_unlock(&p->lock);
	struct wa_ctx *c = p->ctx;
	/* The name goes and the counts change before anyone hears of the end
	 * (a waiter that returns finds the name free). */
	wa_reg_drop(c, p);
	if (p->used_mvars)
		wa_mvar_release(atomic_load(&p->task));
	atomic_fetch_add(&c->received_dead, atomic_load_explicit(&p->received, memory_order_relaxed));
	atomic_fetch_add(reason == WEFT_EXIT_NORMAL   ? &c->exits_normal
			 : reason == WEFT_EXIT_KILLED ? &c->exits_killed
						      : &c->exits_other,
			 1);
	atomic_fetch_sub(&c->live, 1);
	wa_notify_end(p, reason, detail, dlen);
	/* From here lookups fail; holders finish, the last one reclaims. */
	atomic_store(&p->pid, 0);
	atomic_fetch_or(&p->refs, WA_DEAD);
	unref(p);
}

/* ------------------------------------------------------------- self, exit */

weft_pid_t weft_proc_self(void)
{
	struct wa_proc *p = wa_self();
	return p ? atomic_load_explicit(&p->pid, memory_order_relaxed) : 0;
}

bool weft_proc_alive(weft_pid_t pid)
{
	int e;
	struct wa_proc *p = wa_get(pid, &e);
	if (!p)
		return false;
	weft__spin_lock(&p->lock);
	bool alive = p->state == WA_ALIVE && !p->signalled;
	weft__spin_unlock(&p->lock);
	wa_put(p);
	return alive;
}

#define WA_DETAIL_MAX ((size_t)64 << 10)

/* Under p's lock: make detail (len bytes, copied) p's exit detail. */
int wa_set_detail(struct wa_proc *p, const void *detail, size_t len)
{
	struct wa_cold *cd = len || p->cold ? wa_cold(p) : NULL;
	if (len && !cd)
		return -ENOMEM;
	void *d = NULL;
	if (len) {
		d = malloc(len);
		if (!d)
			return -ENOMEM;
		memcpy(d, detail, len);
	}
	if (cd) {
		free(cd->detail);
		cd->detail = d;
		cd->detail_len = len;
	}
	return 0;
}

int weft_proc_exit(int64_t reason, const void *detail, size_t len)
{
	struct wa_proc *p = wa_self();
	if (!p)
		return -EPERM;
	if (len > WA_DETAIL_MAX)
		return -EMSGSIZE;
	if (len && !detail)
		return -EINVAL;
	weft__spin_lock(&p->lock);
	int e = 0;
	if (!p->signalled && !p->exit_set) {
		e = wa_set_detail(p, detail, len);
		p->exit_set = true;
		p->reason = reason;
	}
	weft__spin_unlock(&p->lock);
	if (weft_can_park())
		weft_exit(NULL); /* a coroutine: does not return */
	return e;
}

int weft_proc_trap_exits(bool on)
{
	struct wa_proc *p = wa_self();
	if (!p)
		return -EPERM;
	return atomic_exchange(&p->trap, on) ? 1 : 0;
}

/* -------------------------------------------------------- waiting for one */

#define WA_STEP_WAIT (WEFT_STEP_ID_ACTOR + 3)

/* The op of weft_proc_wait_step: the call byte, then the queue node (its
 * data: the process, referenced while the node is queued). */
struct wait_op {
	uint8_t call;
	uint8_t pad[7];
	weft_waitq_node_t n;
};
_Static_assert(sizeof(struct wait_op) <= sizeof(((weft_op_t *)0)->opaque), "the wait fits an op");

/* Queue n on p's waiters, or -ESRCH: p's end had been told. A process
 * that is ENDED but still telling (its counts, name, links and monitors:
 * wa_on_end) is waited for like a live one, so a wait never returns before
 * what the end changes can be seen. */
static int wait_enqueue(struct wa_proc *p, weft_waitq_node_t *n)
{
	weft__spin_lock(&p->lock);
	if (p->told) { /* ended before the call */
		weft__spin_unlock(&p->lock);
		return -ESRCH;
	}
	struct wa_cold *cd = wa_cold(p);
	if (!cd) {
		weft__spin_unlock(&p->lock);
		return -ENOMEM;
	}
	weft_waitq_lock(&cd->waiters);
	weft_waitq_push(&cd->waiters, n);
	weft_waitq_unlock(&cd->waiters);
	weft__spin_unlock(&p->lock);
	return 0;
}

static int wait_check(weft_pid_t pid, struct wa_proc **out)
{
	struct wa_proc *me = wa_self();
	if (me && atomic_load_explicit(&me->pid, memory_order_relaxed) == pid)
		return -EDEADLK;
	int e;
	*out = wa_get(pid, &e);
	return *out ? 0 : e == -ESRCH ? 1 : e; /* 1: ended already */
}

int weft_proc_wait(weft_pid_t pid, weft_time_t deadline)
{
	struct wa_proc *p;
	int e = wait_check(pid, &p);
	if (e)
		return e > 0 ? 0 : e;
	if (!weft_can_park()) {
		weft__spin_lock(&p->lock);
		bool alive = !p->told;
		weft__spin_unlock(&p->lock);
		wa_put(p);
		return !alive ? 0 : deadline != WEFT_NEVER && weft_now() >= deadline ? -ETIMEDOUT : -EPERM;
	}
	weft_waitq_node_t n;
	e = wait_enqueue(p, &n);
	if (e) {
		wa_put(p);
		return e == -ESRCH ? 0 : e;
	}
	int r = weft_park(n.waker, deadline);
	if (r != 0 && weft_waitq_remove(&p->cold->waiters, &n)) {
		wa_put(p);
		return r;
	}
	wa_put(p);
	return 0;
}

int weft_proc_wait_step(weft_pid_t pid, weft_time_t deadline, weft_op_t *op)
{
	int b = weft_step_begin(op, WA_STEP_WAIT, (const void *)(uintptr_t)pid);
	if (b == WEFT_STEP_BLOCKS)
		return weft_proc_wait(pid, deadline);
	if (b < 0)
		return b;
	struct wait_op *wo = (struct wait_op *)op->opaque;
	if (b == 1) { /* the wait ended */
		struct wa_proc *p = wo->n.data;
		int r = weft_park_result();
		if (r != 0 && weft_waitq_remove(&p->cold->waiters, &wo->n)) {
			wa_put(p);
			return r;
		}
		wa_put(p);
		return 0;
	}
	struct wa_proc *p;
	int e = wait_check(pid, &p);
	if (e)
		return e > 0 ? 0 : e;
	if (deadline != WEFT_NEVER && weft_now() >= deadline) {
		weft__spin_lock(&p->lock);
		bool alive = !p->told;
		weft__spin_unlock(&p->lock);
		wa_put(p);
		return alive ? -ETIMEDOUT : 0;
	}
	e = wait_enqueue(p, &wo->n);
	if (e) {
		wa_put(p);
		return e == -ESRCH ? 0 : e;
	}
	wo->n.data = p;
	if (deadline != WEFT_NEVER)
		(void)weft_park_deadline(wo->n.waker, deadline);
	return weft_step_register(op);
}

/* -------------------------------------------------------------- visibility */

static void info_of(struct wa_proc *p, weft_pid_t pid, weft_proc_info_t *in)
{
	in->pid = pid;
	in->task = atomic_load(&p->task);
	in->mailbox_len = atomic_load(&p->count);
	in->trap_exits = atomic_load(&p->trap);
	in->receiving = WA_IS_WAITING(atomic_load(&p->inbox));
	in->examined = atomic_load_explicit(&p->examined, memory_order_relaxed);
	in->received = atomic_load_explicit(&p->received, memory_order_relaxed);
	if (p->cold) {
		strcpy(in->name, p->cold->name);
		in->links = p->cold->nlinks;
		in->monitors = p->cold->nmons;
	}
}

int weft_proc_info(weft_pid_t pid, weft_proc_info_t *info)
{
	if (!info)
		return -EINVAL;
	weft_proc_info_t in;
	int e = weft__opts_in(&in, sizeof in, NULL, 0);
	if (info->size != 0 && info->size < sizeof in)
		return -EINVAL;
	struct wa_proc *p = wa_get(pid, &e);
	if (!p)
		return e;
	weft__spin_lock(&p->lock);
	bool alive = p->state == WA_ALIVE;
	if (alive)
		info_of(p, pid, &in);
	weft__spin_unlock(&p->lock);
	wa_put(p);
	if (!alive)
		return -ESRCH;
	size_t size = info->size ? info->size : sizeof in;
	in.size = size;
	memset(info, 0, size);
	memcpy(info, &in, sizeof in);
	return 0;
}

/* Call f on every live process of c (holding it). */
static void each_proc(struct wa_ctx *c, void (*f)(struct wa_proc *p, weft_pid_t pid, void *arg), void *arg)
{
	pthread_mutex_lock(&c->lock);
	uint32_t n = c->nslots;
	pthread_mutex_unlock(&c->lock);
	for (uint32_t s = 0; s < n; s++) {
		struct wa_proc *ch = atomic_load_explicit(&c->chunks[s / WA_CHUNK], memory_order_acquire);
		if (!ch)
			continue;
		weft_pid_t pid = atomic_load(&ch[s % WA_CHUNK].pid);
		int e;
		struct wa_proc *p = pid ? wa_get(pid, &e) : NULL;
		if (!p)
			continue;
		f(p, pid, arg);
		wa_put(p);
	}
}

struct stats_acc {
	uint64_t received, queued;
};

static void stats_one(struct wa_proc *p, weft_pid_t pid, void *arg)
{
	(void)pid;
	struct stats_acc *a = arg;
	if (p->state != WA_ALIVE) /* dying: counted in the context already */
		return;
	a->received += atomic_load_explicit(&p->received, memory_order_relaxed);
	a->queued += atomic_load(&p->count);
}

int weft_actor_stats(weft_runtime_t *rt, weft_actor_stats_t *out)
{
	if (!out)
		return -EINVAL;
	if (out->size != 0 && out->size < sizeof *out)
		return -EINVAL;
	int e;
	struct wa_ctx *c = wa_ctx_hold(rt, false, &e);
	weft_actor_stats_t s = {0};
	size_t size = out->size ? out->size : sizeof s;
	s.size = size;
	if (c) {
		struct stats_acc a = {0, 0};
		each_proc(c, stats_one, &a);
		s.spawned = atomic_load(&c->spawned);
		s.live = atomic_load(&c->live);
		s.received = atomic_load(&c->received_dead) + a.received;
		s.sent = s.received + a.queued + atomic_load(&c->delivered_dead);
		s.dropped = atomic_load(&c->sent_dead);
		s.exits_normal = atomic_load(&c->exits_normal);
		s.exits_killed = atomic_load(&c->exits_killed);
		s.exits_other = atomic_load(&c->exits_other);
		wa_ctx_drop(c);
	} else if (e != -ESRCH) {
		return e; /* -ESRCH: a runtime without processes: all zero */
	}
	memset(out, 0, size);
	memcpy(out, &s, sizeof s);
	return 0;
}

struct dump_arg {
	int fd;
	int err;
};

static void dump_one(struct wa_proc *p, weft_pid_t pid, void *arg)
{
	struct dump_arg *d = arg;
	weft_proc_info_t in = {0};
	weft_pid_t links[4];
	size_t nl = 0;
	weft__spin_lock(&p->lock);
	bool alive = p->state == WA_ALIVE;
	if (alive) {
		info_of(p, pid, &in);
		for (; p->cold && nl < p->cold->nlinks && nl < 4; nl++)
			links[nl] = p->cold->links[nl];
	}
	bool signalled = p->signalled;
	weft__spin_unlock(&p->lock);
	if (!alive || d->err)
		return;
	char line[384], lk[96] = "";
	for (size_t i = 0, o = 0; i < nl && o < sizeof lk; i++)
		o += (size_t)snprintf(lk + o, sizeof lk - o, "%s%#llx", i ? "," : " [", (unsigned long long)links[i]);
	if (nl)
		strncat(lk, in.links > nl ? ",...]" : "]", sizeof lk - strlen(lk) - 1);
	int n = snprintf(line, sizeof line, "  proc %#llx task %#llx '%s' mailbox %zu links %zu%s monitors %zu%s%s%s\n",
			 (unsigned long long)pid, (unsigned long long)in.task, in.name, in.mailbox_len, in.links, lk,
			 in.monitors, in.trap_exits ? " trap_exits" : "", in.receiving ? " waits: receive" : "",
			 signalled ? " (told to end)" : "");
	if (n > 0 && write(d->fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0)
		d->err = -errno;
}

/* The task dump's part (weft_task_dump, on the runtime's behalf). */
static void ctx_dump(void *arg, int fd)
{
	struct wa_ctx *c = arg;
	struct dump_arg d = {fd, 0};
	each_proc(c, dump_one, &d);
}

int weft_actor_dump(weft_runtime_t *rt, int fd)
{
	if (fd < 0 || fcntl(fd, F_GETFL) < 0)
		return -EBADF;
	int e;
	struct wa_ctx *c = wa_ctx_hold(rt, false, &e);
	if (!c)
		return e == -ESRCH ? 0 : e;
	struct dump_arg d = {fd, 0};
	each_proc(c, dump_one, &d);
	wa_ctx_drop(c);
	return d.err;
}
