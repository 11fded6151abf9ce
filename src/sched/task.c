/* task.c - task records, spawn, join, detach, cancel, names, task-local storage.
 *
 * Records and ids
 * ---------------
 * Task records live in slabs of WEFT_SLAB_TASKS, found through a table of
 * slab pointers; slot s is record s % WEFT_SLAB_TASKS of slab s /
 * WEFT_SLAB_TASKS. A task's id is (runtime index << 56) | (generation <<
 * 32) | slot: the runtime index (internal.h) lets an id resolve from any
 * thread, whatever runtime is current there; the 24-bit generation (1 ..
 * 2^24 - 1) is bumped when the record is freed, and a slot whose
 * generations are used up is retired, so an id never names two tasks in a
 * runtime's life and a stale id is detected, not obeyed.
 * Slabs are never unmapped (a later runtime of the same index reuses them),
 * so reading a record through a stale id is always safe. A slab sits at a
 * WEFT_SLAB_ALIGN boundary and ends with one aux pointer per record and its
 * runtime (internal.h), so a 64-byte record needs neither field of its own.
 *
 * Lifetime: refs counts the running task (until it finishes), the handle (a
 * joinable, not yet joined task), and transient lookups (weft__task_ref). The
 * record is freed when refs reaches 0. A lookup increments refs only if it is
 * not 0 and then re-checks the id: if the record was freed and reused in
 * between, the id differs and the lookup backs out.
 *
 * Joining: the `handle` byte makes joining exclusive (LIVE -> JOINING by
 * CAS; DETACHED and a second joiner are refused). The joiner stores its waker
 * and moves join_state NONE -> WAITING; the finishing task exchanges
 * join_state to DONE and, if it saw WAITING, wakes the joiner. A joiner that
 * times out moves WAITING -> NONE; if that fails the task has finished and
 * the join succeeds after all. A join that succeeds sets the handle JOINED
 * before dropping its reference: the finishing worker may still hold one for
 * a moment, and lookups refuse a JOINED record, so the id is dead (-ESRCH)
 * from the moment weft_join returns. A stackless joiner (weft_join_step)
 * does the same in two halves around its step's return: the call that
 * registers keeps the looked-up record in its op, and the repeat finishes
 * (join_woke), as weft_join does after its park.
 *
 * Free records are cached per worker (no lock) and exchanged in batches with
 * the runtime (slab_lock). A worker gives back FREE_BATCH records as one
 * chain, kept whole on rt->free_batches, so that a worker that runs dry takes
 * a chain in one step instead of walking records another worker has just
 * freed (a cache miss each, one after the other, under the lock).
 */
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../arch/context.h"

#define FREE_BATCH 64

/* Task-local storage keys: process-wide, like pthread keys. A key handle is
 * slot | generation << TLS_GEN_SHIFT; deleting a key bumps its slot's
 * generation, so the old handle stops working and values stored under it
 * are seen by no later key of that slot (each value carries the generation
 * it was stored under). */
#define TLS_GEN_SHIFT 6
#define TLS_GEN_MAX ((1u << (31 - TLS_GEN_SHIFT)) - 1)
#define TLS_GEN_RETIRED (TLS_GEN_MAX + 1) /* matches no handle */
_Static_assert(WEFT_TLS_KEYS == 1 << TLS_GEN_SHIFT, "a key's slot is its low bits");
static _Atomic uint64_t tls_used;
static void (*_Atomic tls_dtor[WEFT_TLS_KEYS])(void *);
static _Atomic uint32_t tls_gen[WEFT_TLS_KEYS];
static int tls_slot(weft_tls_key_t key);

weft_task *weft__task_at(struct weft_runtime *rt, uint32_t slot)
{
	uint32_t si = slot / WEFT_SLAB_TASKS;
	if (si >= atomic_load_explicit(&rt->nslabs, memory_order_acquire))
		return NULL;
	weft_task *slab = atomic_load_explicit(&rt->slabs[si], memory_order_acquire);
	return slab ? &slab[slot % WEFT_SLAB_TASKS] : NULL;
}

/* A new slab of WEFT_SLAB_ALIGN bytes at a WEFT_SLAB_ALIGN boundary
 * (records find their slab's tail by masking their address): map twice
 * that, keep the aligned half (both cuts are multiples of the page size,
 * whatever it is; the unused end costs address space only). NULL when out
 * of memory. */
static void *slab_map(void)
{
	char *m = mmap(NULL, 2 * WEFT_SLAB_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	char *a = (char *)(((uintptr_t)m + WEFT_SLAB_ALIGN - 1) & ~(WEFT_SLAB_ALIGN - 1));
	if (a > m)
		munmap(m, (size_t)(a - m));
	munmap(a + WEFT_SLAB_ALIGN, (size_t)(m + WEFT_SLAB_ALIGN - a));
	return a;
}

/* Under slab_lock: n records left the runtime's free lists. */
static inline void took_free(struct weft_runtime *rt, size_t n)
{
	assert(weft__mutex_held(&rt->slab_lock));
	assert(rt->nfree >= n);
	rt->nfree -= n;
	if (rt->nfree < rt->nfree_min)
		rt->nfree_min = rt->nfree;
}

static size_t page_bytes(void)
{
	static _Atomic size_t pg; /* every thread computes the same value */
	size_t v = atomic_load_explicit(&pg, memory_order_relaxed);
	if (!v) {
		long l = sysconf(_SC_PAGESIZE);
		v = l >= 4096 && l <= (long)(WEFT_SLAB_TASKS * sizeof(weft_task)) ? (size_t)l : 4096;
		atomic_store_explicit(&pg, v, memory_order_relaxed);
	}
	return v;
}

/* Records per page of records. */
static uint32_t page_records(void)
{
	return (uint32_t)(page_bytes() / sizeof(weft_task));
}

/* Under slab_lock: bring back a page of records given back to the OS (see
 * "Giving memory back"), each with the next generation and epoch of its
 * page's floor, onto `got`; up to *want are taken, the rest go on the free
 * list. Returns the new head of `got`. */
static weft_task *reuse_page(struct weft_runtime *rt, weft_task *got, uint32_t *want)
{
	assert(weft__mutex_held(&rt->slab_lock) && rt->nreleased > 0);
	uint32_t id = rt->released[--rt->nreleased];
	uint32_t si = id >> 8, pi = id & 0xff, rpp = page_records();
	weft_task *slab = atomic_load_explicit(&rt->slabs[si], memory_order_relaxed);
	weft_page_floor_t f = weft__slab_floors(slab)[pi];
	assert(f.gen != 0 && weft__slab_page_released(slab, pi));
	weft__slab_released(slab)[pi / 64] &= ~((uint64_t)1 << (pi % 64));
	for (uint32_t i = 0; i < rpp; i++) {
		uint32_t slot = si * WEFT_SLAB_TASKS + pi * rpp + i;
		weft_task *t = &slab[pi * rpp + i];
		/* Given back, so zero: nobody holds it (a lookup adds to refs
		 * only when it is not 0). */
		assert(atomic_load_explicit(&t->refs, memory_order_relaxed) == 0);
		atomic_store_explicit(&t->park.state, WEFT_PS(f.epoch, 0, WEFT_PH_IDLE), memory_order_relaxed);
		atomic_store_explicit(&t->id, (uint64_t)rt->index << WEFT_ID_RT_SHIFT | (uint64_t)f.gen << 32 | slot,
				      memory_order_release);
		atomic_store_explicit(&t->run_state, WEFT_RS_FREE, memory_order_relaxed);
		if (*want) {
			t->next = got;
			got = t;
			(*want)--;
		} else {
			t->next = rt->free_tasks;
			rt->free_tasks = t;
			rt->nfree++;
		}
	}
	return got;
}

/* Fresh records are touched one page at a time as spawns go on; populating
 * the next POPULATE_RECORDS of them in one call spares a page fault per page
 * (a fault costs far more, in a virtual machine above all). Best effort. */
#define POPULATE_RECORDS 1024
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static void populate_records(weft_task *first)
{
	_Static_assert(WEFT_SLAB_TASKS % POPULATE_RECORDS == 0, "a populated run stays in its slab");
	static _Atomic bool refused;
	if (atomic_load_explicit(&refused, memory_order_relaxed))
		return;
	if (madvise(first, POPULATE_RECORDS * sizeof(weft_task), MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
		atomic_store_explicit(&refused, true, memory_order_relaxed); /* kernel < 5.14 */
}

/* Take records for a worker cache (or one for a plain thread). */
static weft_task *alloc_slow(struct weft_runtime *rt, weft_worker *w)
{
	weft_task *got = NULL;
	pthread_mutex_lock(&rt->slab_lock);
	if (w && rt->free_batches) {
		weft_task *first = rt->free_batches;
		rt->free_batches = first->next_batch;
		took_free(rt, FREE_BATCH);
		pthread_mutex_unlock(&rt->slab_lock);
		w->free_tasks = first->next;
		w->nfree_tasks = FREE_BATCH - 1;
		return first;
	}
	uint32_t want = w ? FREE_BATCH : 1;
	if (!w && !rt->free_tasks && rt->free_batches) {
		/* A plain thread: break a chain up into single records. */
		weft_task *first = rt->free_batches;
		rt->free_batches = first->next_batch;
		weft_task *tail = first;
		while (tail->next)
			tail = tail->next;
		tail->next = rt->free_tasks;
		rt->free_tasks = first;
	}
	while (want && rt->free_tasks) {
		weft_task *t = rt->free_tasks;
		rt->free_tasks = t->next;
		t->next = got;
		got = t;
		want--;
		took_free(rt, 1);
	}
	while (want && rt->nreleased)
		got = reuse_page(rt, got, &want);
	while (want) {
		uint32_t slot = atomic_load_explicit(&rt->bump, memory_order_relaxed);
		uint32_t si = slot / WEFT_SLAB_TASKS;
		if (si >= WEFT_MAX_SLABS)
			break;
		if (si >= atomic_load_explicit(&rt->nslabs, memory_order_relaxed)) {
			void *m = slab_map();
			if (!m)
				break;
			*weft__slab_owner(m) = rt; /* the aux pointers are zero already */
			atomic_store_explicit(&rt->slabs[si], (weft_task *)m, memory_order_release);
			atomic_store_explicit(&rt->nslabs, si + 1, memory_order_release);
		}
		weft_task *t = weft__task_at(rt, slot);
		if (slot % POPULATE_RECORDS == 0)
			populate_records(t);
		weft__parker_init(&t->park);
		atomic_init(&t->id, (uint64_t)rt->index << WEFT_ID_RT_SHIFT | (uint64_t)1 << 32 | slot);
		atomic_init(&t->run_state, WEFT_RS_FREE);
		atomic_store_explicit(&rt->bump, slot + 1, memory_order_release);
		t->next = got;
		got = t;
		want--;
	}
	pthread_mutex_unlock(&rt->slab_lock);
	if (!got)
		return NULL;
	weft_task *first = got;
	if (w) {
		w->free_tasks = first->next;
		w->nfree_tasks = FREE_BATCH - want - 1;
	}
	return first;
}

static weft_task *task_alloc(struct weft_runtime *rt, weft_worker *w)
{
	if (w && w->free_tasks) {
		assert(w->nfree_tasks > 0);
		weft_task *t = w->free_tasks;
		w->free_tasks = t->next;
		w->nfree_tasks--;
		return t;
	}
	return alloc_slow(rt, w);
}

static void aux_free(_Atomic(weft_task_aux *) *xp)
{
	weft_task_aux *x = atomic_load_explicit(xp, memory_order_relaxed);
	if (!x)
		return;
	free(x->tls);
	free(x);
	atomic_store_explicit(xp, NULL, memory_order_relaxed);
}

weft_task_aux *weft__task_aux(weft_task *t)
{
	_Atomic(weft_task_aux *) *xp = weft__task_auxp(t);
	weft_task_aux *x = atomic_load_explicit(xp, memory_order_acquire);
	if (x)
		return x;
	weft_task_aux *n = calloc(1, sizeof *n);
	if (!n)
		return NULL;
	/* acq_rel: a reader that loads the pointer sees the zeroed record. */
	if (atomic_compare_exchange_strong_explicit(xp, &x, n, memory_order_acq_rel, memory_order_acquire))
		return n;
	free(n); /* someone else installed one first */
	return x;
}

static void task_release_record(weft_task *t)
{
	struct weft_runtime *rt = weft__task_rt(t);
	/* The last reference is gone: the task finished (DONE), or a spawn
	 * gave up on the record before the task existed (FREE). */
	assert(atomic_load_explicit(&t->refs, memory_order_relaxed) == 0);
	assert(atomic_load_explicit(&t->run_state, memory_order_relaxed) == WEFT_RS_DONE ||
	       atomic_load_explicit(&t->run_state, memory_order_relaxed) == WEFT_RS_FREE);
	aux_free(weft__task_auxp(t));
	uint64_t id = atomic_load_explicit(&t->id, memory_order_relaxed);
	/* Next generation: every handle to the old task is now stale. */
	uint64_t gen = (id + ((uint64_t)1 << 32)) & WEFT_ID_GEN_MASK;
	atomic_store_explicit(&t->id, (id & ~WEFT_ID_GEN_MASK) | gen, memory_order_release);
	atomic_store_explicit(&t->run_state, WEFT_RS_FREE, memory_order_relaxed);
	if (unlikely(gen == 0)) {
		/* Every generation of this slot has been used: retire it for
		 * good, so that no id ever names two tasks. Generation 0 is never
		 * handed out, so no handle matches it. (64 bytes per 2^24 tasks
		 * of one slot.) */
		return;
	}
	weft_worker *w = weft__self_worker;
	if (w && w->rt == rt) {
		t->next = w->free_tasks;
		w->free_tasks = t;
		if (++w->nfree_tasks <= 4 * FREE_BATCH)
			return;
		/* Too many cached: give a batch back. */
		weft_task *head = w->free_tasks, *tail = head;
		for (int i = 1; i < FREE_BATCH; i++)
			tail = tail->next;
		w->free_tasks = tail->next;
		w->nfree_tasks -= FREE_BATCH;
		tail->next = NULL;
		pthread_mutex_lock(&rt->slab_lock);
		head->next_batch = rt->free_batches;
		rt->free_batches = head;
		rt->nfree += FREE_BATCH;
		pthread_mutex_unlock(&rt->slab_lock);
		return;
	}
	pthread_mutex_lock(&rt->slab_lock);
	t->next = rt->free_tasks;
	rt->free_tasks = t;
	rt->nfree++;
	pthread_mutex_unlock(&rt->slab_lock);
}

void weft__task_cache_flush(weft_worker *w)
{
	struct weft_runtime *rt = w->rt;
	if (!w->free_tasks)
		return;
	weft_task *last = w->free_tasks;
	while (last->next)
		last = last->next;
	assert(w == weft__self_worker && w->nfree_tasks > 0);
	pthread_mutex_lock(&rt->slab_lock);
	last->next = rt->free_tasks;
	rt->free_tasks = w->free_tasks;
	rt->nfree += w->nfree_tasks;
	pthread_mutex_unlock(&rt->slab_lock);
	w->free_tasks = NULL;
	w->nfree_tasks = 0;
}

/* ------------------------------------------------------------ giving memory back */

/* The free lists' low watermark over a period says how many free records
 * nobody needed. When that is more than KEEP_RECORDS, the monitor gives back
 * the pages of records that are all free (MADV_DONTNEED), down to that
 * many. A page's memory then reads as zero: id 0 (generation 0, which no
 * handle has) and refs 0, so a stale lookup finds nothing, and a stale
 * waker fails its epoch check; its floor (in the slab's tail) records the
 * next generation and epoch of its records, with which the page comes back
 * when the free lists run dry (reuse_page), so ids and epochs never repeat.
 * Workers give their cached records back when they park, like stacks. */
#define KEEP_RECORDS 1024

/* Record page pi of slab was given back: give back the page of aux
 * pointers it shares with its neighbours too, once all of them are (those
 * pointers are NULL: a free record has no aux record). */
static void release_aux_page(weft_task *slab, uint32_t pi)
{
	uint32_t rpp = page_records();
	size_t per_page = page_bytes() / sizeof(_Atomic(weft_task_aux *)); /* records a page of aux pointers covers */
	if (per_page < rpp || per_page % rpp)
		return;
	uint32_t span = (uint32_t)(per_page / rpp), first = pi / span * span;
	for (uint32_t i = first; i < first + span; i++)
		if (!weft__slab_page_released(slab, i))
			return;
	(void)madvise(weft__slab_aux(slab) + (size_t)first * rpp, page_bytes(), MADV_DONTNEED);
}

static void release_pages(struct weft_runtime *rt, size_t max)
{
	assert(weft__mutex_held(&rt->slab_lock));
	uint32_t rpp = page_records(), per_slab = WEFT_SLAB_TASKS / rpp;
	uint32_t nslabs = atomic_load_explicit(&rt->nslabs, memory_order_relaxed);
	size_t nbits = (size_t)nslabs * WEFT_SLAB_TASKS;
	uint64_t *freebit = calloc((nbits + 63) / 64, sizeof *freebit);
	if (!freebit)
		return;
	/* Mark every listed record; a page whose records are all marked is
	 * free (retired records are on no list: their pages stay). */
	for (weft_task *b = rt->free_batches; b; b = b->next_batch)
		for (weft_task *t = b; t; t = t->next) {
			uint32_t slot = (uint32_t)atomic_load_explicit(&t->id, memory_order_relaxed);
			freebit[slot / 64] |= (uint64_t)1 << (slot % 64);
		}
	for (weft_task *t = rt->free_tasks; t; t = t->next) {
		uint32_t slot = (uint32_t)atomic_load_explicit(&t->id, memory_order_relaxed);
		freebit[slot / 64] |= (uint64_t)1 << (slot % 64);
	}
	/* Choose pages, up to max records, and make room to list them. */
	size_t npages = 0, room = rt->released_cap - rt->nreleased;
	for (uint32_t si = 0; si < nslabs && (npages + 1) * rpp <= max; si++) {
		for (uint32_t pi = 0; pi < per_slab && (npages + 1) * rpp <= max; pi++) {
			size_t first = (size_t)si * WEFT_SLAB_TASKS + (size_t)pi * rpp;
			bool all = true;
			for (uint32_t i = 0; i < rpp && all; i += 64)
				all = rpp - i >= 64
					      ? freebit[(first + i) / 64] == ~(uint64_t)0
					      : (freebit[(first + i) / 64] >> ((first + i) % 64) &
						 (((uint64_t)1 << (rpp - i)) - 1)) == (((uint64_t)1 << (rpp - i)) - 1);
			if (!all)
				continue;
			if (npages == room) {
				size_t cap = rt->released_cap ? 2 * rt->released_cap : 256;
				uint32_t *v = realloc(rt->released, cap * sizeof *v);
				if (!v)
					goto pick_done;
				rt->released = v;
				rt->released_cap = cap;
				room = cap - rt->nreleased;
			}
			rt->released[rt->nreleased + npages++] = si << 8 | pi;
		}
	}
pick_done:
	if (npages == 0) {
		free(freebit);
		return;
	}
	/* Unmark the chosen pages' records: they leave the lists. */
	for (size_t k = 0; k < npages; k++) {
		uint32_t id = rt->released[rt->nreleased + k];
		size_t first = (size_t)(id >> 8) * WEFT_SLAB_TASKS + (size_t)(id & 0xff) * rpp;
		for (uint32_t i = 0; i < rpp; i++)
			freebit[(first + i) / 64] &= ~((uint64_t)1 << ((first + i) % 64));
	}
	/* Rebuild the lists from what stays, in chains of FREE_BATCH. */
	weft_task *all = NULL;
	size_t kept = 0;
	weft_task *b = rt->free_batches;
	while (b) {
		weft_task *nb = b->next_batch;
		for (weft_task *t = b, *nt; t; t = nt) {
			nt = t->next;
			uint32_t slot = (uint32_t)atomic_load_explicit(&t->id, memory_order_relaxed);
			if (freebit[slot / 64] >> (slot % 64) & 1) {
				t->next = all;
				all = t;
				kept++;
			}
		}
		b = nb;
	}
	for (weft_task *t = rt->free_tasks, *nt; t; t = nt) {
		nt = t->next;
		uint32_t slot = (uint32_t)atomic_load_explicit(&t->id, memory_order_relaxed);
		if (freebit[slot / 64] >> (slot % 64) & 1) {
			t->next = all;
			all = t;
			kept++;
		}
	}
	free(freebit);
	rt->free_batches = rt->free_tasks = NULL;
	while (all) {
		weft_task *head = all, *tail = all;
		size_t n = 1;
		while (n < FREE_BATCH && tail->next)
			tail = tail->next, n++;
		all = tail->next;
		tail->next = NULL;
		if (n == FREE_BATCH) {
			head->next_batch = rt->free_batches;
			rt->free_batches = head;
		} else {
			tail->next = rt->free_tasks;
			rt->free_tasks = head;
		}
	}
	assert(kept + npages * rpp == rt->nfree); /* every record of a chosen page was listed */
	rt->nfree = rt->nfree_min = kept;
	/* Record each page's floor, then give its memory back. Under the
	 * lock: a page becomes reusable (reuse_page) only once it is zeroed. */
	for (size_t k = 0; k < npages; k++) {
		uint32_t id = rt->released[rt->nreleased + k];
		uint32_t si = id >> 8, pi = id & 0xff;
		weft_task *slab = atomic_load_explicit(&rt->slabs[si], memory_order_relaxed);
		weft_page_floor_t f = {0, 0};
		for (uint32_t i = 0; i < rpp; i++) {
			weft_task *t = &slab[pi * rpp + i];
			uint32_t gen =
				(uint32_t)((atomic_load_explicit(&t->id, memory_order_relaxed) & WEFT_ID_GEN_MASK) >>
					   32);
			uint64_t epoch = WEFT_PS_EPOCH(atomic_load_explicit(&t->park.state, memory_order_relaxed)) + 1;
			assert(gen != 0 && atomic_load_explicit(&t->refs, memory_order_relaxed) == 0);
			if (gen > f.gen)
				f.gen = gen;
			if (epoch > f.epoch)
				f.epoch = epoch;
		}
		weft__slab_floors(slab)[pi] = f;
		weft__slab_released(slab)[pi / 64] |= (uint64_t)1 << (pi % 64);
		(void)madvise(&slab[pi * rpp], page_bytes(), MADV_DONTNEED);
		release_aux_page(slab, pi);
	}
	rt->nreleased += npages;
}

size_t weft__task_scavenge(struct weft_runtime *rt, weft_time_t now)
{
	pthread_mutex_lock(&rt->slab_lock);
	if (now - rt->records_period < 200 * WEFT_MSEC) {
		pthread_mutex_unlock(&rt->slab_lock);
		return 0;
	}
	rt->records_period = now;
	size_t idle = rt->nfree_min, before = rt->nreleased;
	rt->nfree_min = rt->nfree;
	if (idle > KEEP_RECORDS)
		release_pages(rt, idle - KEEP_RECORDS);
	size_t n = (rt->nreleased - before) * page_records();
	pthread_mutex_unlock(&rt->slab_lock);
	return n;
}

void weft__task_unref(weft_task *t)
{
	/* acq_rel: the last owner sees every write of the others before freeing. */
	uint32_t was = atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel);
	assert(was > 0); /* never below zero */
	if (was == 1)
		task_release_record(t);
}

weft_task *weft__task_ref(struct weft_runtime *rt, weft_task_t id)
{
	if (id == 0 || !rt || (uint32_t)(id >> WEFT_ID_RT_SHIFT) != rt->index)
		return NULL;
	weft_task *t = weft__task_at(rt, (uint32_t)id);
	if (!t)
		return NULL;
	uint32_t r = atomic_load(&t->refs);
	do {
		if (r == 0)
			return NULL;
	} while (!atomic_compare_exchange_weak(&t->refs, &r, r + 1));
	if (atomic_load(&t->id) != id || atomic_load(&t->handle) == WEFT_H_JOINED) {
		weft__task_unref(t);
		return NULL;
	}
	return t;
}

weft_task *weft__task_get(weft_task_t id, int *err)
{
	if (err)
		*err = -ESRCH;
	struct weft_runtime *rt = weft__rt_of_id(id);
	if (!rt)
		return NULL;
	bool outside = !weft__on_rt(rt);
	if (outside && !weft__rt_hold(rt))
		return NULL;
	if (outside && unlikely(rt->sim) && !weft__sim_ours(rt)) {
		/* A sim's tasks are its owner thread's alone. */
		weft__rt_unhold(rt);
		if (err)
			*err = -EPERM;
		return NULL;
	}
	weft_task *t = weft__task_ref(rt, id);
	if (!t && outside)
		weft__rt_unhold(rt);
	return t;
}

void weft__task_put(weft_task *t)
{
	struct weft_runtime *rt = weft__task_rt(t);
	bool outside = !weft__on_rt(rt);
	weft__task_unref(t); /* may free the record: rt was read first */
	if (outside)
		weft__rt_unhold(rt);
}

/* A page's floor: the next generation and parker epoch its records may
 * take (see "Giving memory back"); gen 0: the page may never be used again
 * (a record in it has used up its generations). A record still referenced
 * (a finished task nobody joined, at destroy) keeps its generation in use. */
static weft_page_floor_t page_floor(weft_task *first, uint32_t rpp)
{
	weft_page_floor_t f = {0, 0};
	for (uint32_t i = 0; i < rpp; i++) {
		weft_task *t = &first[i];
		uint64_t gen = (atomic_load_explicit(&t->id, memory_order_relaxed) & WEFT_ID_GEN_MASK) >> 32;
		if (gen == 0) /* retired */
			return (weft_page_floor_t){0, 0};
		if (atomic_load_explicit(&t->refs, memory_order_relaxed) != 0)
			gen++;
		if (gen > (WEFT_ID_GEN_MASK >> 32))
			return (weft_page_floor_t){0, 0};
		uint64_t epoch = WEFT_PS_EPOCH(atomic_load_explicit(&t->park.state, memory_order_relaxed)) + 1;
		if (gen > f.gen)
			f.gen = (uint32_t)gen;
		if (epoch > f.epoch)
			f.epoch = epoch;
	}
	return f;
}

void weft__task_park_all(struct weft_runtime *rt)
{
	/* Every worker has exited and nothing outside holds the runtime: the
	 * table is ours. Each page gets its floor and is given back; the
	 * slabs stay, for stale wakers and for the next runtime of this
	 * index, which takes pages back as it needs them (reuse_page). */
	uint32_t n = atomic_load(&rt->nslabs), rpp = page_records(), per_slab = WEFT_SLAB_TASKS / rpp;
	size_t need = (size_t)n * per_slab;
	if (need > rt->released_cap) {
		uint32_t *v = realloc(rt->released, need * sizeof *v);
		if (v) {
			rt->released = v;
			rt->released_cap = need;
		}
	}
	rt->nreleased = 0;
	for (uint32_t si = 0; si < n; si++) {
		weft_task *slab = atomic_load(&rt->slabs[si]);
		for (uint32_t j = 0; j < WEFT_SLAB_TASKS; j++)
			aux_free(weft__slab_aux(slab) + j); /* records of finished, never-joined tasks */
		uint64_t *mask = weft__slab_released(slab);
		memset(mask, 0, WEFT_SLAB_RWORDS * sizeof *mask);
		for (uint32_t pi = 0; pi < per_slab; pi++) {
			weft_page_floor_t f = page_floor(&slab[pi * rpp], rpp);
			weft__slab_floors(slab)[pi] = f;
			if (f.gen == 0 || rt->nreleased == rt->released_cap)
				continue; /* never used again (or no room to list it: same) */
			mask[pi / 64] |= (uint64_t)1 << (pi % 64);
			rt->released[rt->nreleased++] = si << 8 | pi;
		}
		/* Records and aux pointers go back in one call; the tail
		 * (owner, masks, floors) stays. */
		(void)madvise(slab, WEFT_SLAB_TASKS * (sizeof(weft_task) + sizeof(weft_task_aux *)), MADV_DONTNEED);
	}
	rt->free_batches = rt->free_tasks = NULL;
	rt->nfree = rt->nfree_min = 0;
}

/* ------------------------------------------------------------ spawn */

static struct weft_runtime *pick_runtime(const weft_spawn_opts_t *o)
{
	if (o && o->runtime)
		return o->runtime;
	return weft_runtime_current();
}

static int spawn_locked(struct weft_runtime *rt, weft_task_t *out, bool step, void *fn, void *arg,
			const weft_spawn_opts_t *o);

static int spawn_common(weft_task_t *out, bool step, void *fn, void *arg, const weft_spawn_opts_t *o)
{
	if (out)
		*out = 0;
	if (!fn)
		return -EINVAL;
	struct weft_runtime *rt = pick_runtime(o);
	if (!rt)
		return -ESHUTDOWN;
	/* A worker of rt needs no count: stop frees rt only after joining its
	 * workers, and the tasks a running task spawns are live before it ends
	 * (stop waits for every live task). Leaving the shared counter alone
	 * keeps a spawning worker off a cache line the others read. */
	weft_worker *w = weft__self_worker;
	if (w && w->rt == rt)
		return spawn_locked(rt, out, step, fn, arg, o);
	atomic_fetch_add(&rt->spawning, 1);
	/* (Counted in spawning, rt's struct is not taken by another start.)
	 * Into a sim, only from its owner thread. */
	int e = unlikely(rt->sim) && !weft__sim_ours(rt) ? -EPERM : spawn_locked(rt, out, step, fn, arg, o);
	atomic_fetch_sub(&rt->spawning, 1);
	return e;
}

/* The body of a spawn, counted in rt->spawning (spawns from outside the
 * runtime's workers) so that stop waits for it. */
static int spawn_locked(struct weft_runtime *rt, weft_task_t *out, bool step, void *fn, void *arg,
			const weft_spawn_opts_t *o)
{
	/* live: a stale pointer may name a runtime that is gone, or one being
	 * started in its struct (runtime.c, "Lifetime"). */
	if (atomic_load(&rt->stopping) || !atomic_load(&rt->live))
		return -ESHUTDOWN;
	size_t ssize = 0;
	if (!step) {
		ssize = o && o->stack_size ? o->stack_size : rt->stack_default;
		if (ssize < WEFT_STACK_MIN || ssize > WEFT_STACK_MAX)
			return -EINVAL;
	}
	weft_worker *w = weft__self_worker;
	if (w && w->rt != rt)
		w = NULL;
	weft_task *t = task_alloc(rt, w);
	if (!t)
		return -ENOMEM;
	/* A free record of rt: nobody holds it, and its id is that of the task
	 * it is about to be (rt's index, a live generation, its own slot). */
	assert(atomic_load_explicit(&t->refs, memory_order_relaxed) == 0);
	assert(atomic_load_explicit(&t->run_state, memory_order_relaxed) == WEFT_RS_FREE);
	assert((atomic_load_explicit(&t->id, memory_order_relaxed) >> WEFT_ID_RT_SHIFT) == rt->index &&
	       (atomic_load_explicit(&t->id, memory_order_relaxed) & WEFT_ID_GEN_MASK) != 0 &&
	       weft__task_at(rt, (uint32_t)atomic_load_explicit(&t->id, memory_order_relaxed)) == t);
	t->stack = NULL; /* (a stackless task's step_op: no registration) */
	atomic_store_explicit(&t->flags, step ? WEFT_TF_STEP : 0, memory_order_relaxed);
	weft_group_t *group = o ? o->group : NULL;
	if (group || (o && (o->name || o->local || o->on_end))) {
		weft_task_aux *x = weft__task_aux(t);
		if (!x) {
			atomic_store(&t->refs, 1);
			weft__task_unref(t);
			return -ENOMEM;
		}
		if (o->name)
			strncpy(x->name, o->name, WEFT_NAME_LEN - 1);
		x->group = group;
		x->local = o->local;
		x->on_end = o->on_end;
	}
	if (group) { /* may mark it cancelled: a group that is cancelling */
		int e = weft__group_add(group, t);
		if (e) {
			atomic_store(&t->refs, 1);
			weft__task_unref(t);
			return e;
		}
	}
	t->fn = (weft_fn_t)fn;
	t->arg = arg;
	if (step)
		t->timer = NULL;
	else
		t->stack_req = ssize; /* the worker that first runs it takes the stack */
	bool detached = (o && o->detached) || group;
	atomic_store_explicit(&t->handle, detached ? WEFT_H_DETACHED : WEFT_H_LIVE, memory_order_relaxed);
	atomic_store_explicit(&t->join_state, WEFT_JOIN_NONE, memory_order_relaxed);
#ifdef WEFT_TSAN
	t->tsan_fiber = !step ? __tsan_create_fiber(0) : NULL;
#endif
#ifdef WEFT_ASAN
	t->asan_fake = NULL;
#endif
	weft_task_t id = atomic_load_explicit(&t->id, memory_order_relaxed);
	if (group) {
		void (*hook)(weft_group_t *) = atomic_load_explicit(&weft__group_spawn_hook, memory_order_relaxed);
		if (hook)
			hook(group);
	}
	/* release: a lookup that sees refs > 0 sees the initialised record. */
	atomic_store_explicit(&t->refs, detached ? 1 : 2, memory_order_release);
	if (group) /* not running yet: weft__ready below queues it */
		weft__group_published(group, t);
	if (w)
		atomic_store_explicit(&w->st_spawned, atomic_load_explicit(&w->st_spawned, memory_order_relaxed) + 1,
				      memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&rt->thread_spawned, 1, memory_order_relaxed);
	if (out)
		*out = id;
	weft__ready(t);
	return 0;
}

int weft_spawn(weft_task_t *out, weft_fn_t fn, void *arg, const weft_spawn_opts_t *opts)
{
	return spawn_common(out, false, (void *)fn, arg, opts);
}

int weft_spawn_step(weft_task_t *out, weft_step_fn_t step, void *state, const weft_spawn_opts_t *opts)
{
	return spawn_common(out, true, (void *)step, state, opts);
}

int weft_go(weft_fn_t fn, void *arg)
{
	static const weft_spawn_opts_t detached = {.detached = true};
	return spawn_common(NULL, false, (void *)fn, arg, &detached);
}

/* On the worker, the task off its stack (or its step returned DONE). */
void weft__task_finish(weft_worker *w, weft_task *t)
{
	struct weft_runtime *rt = weft__task_rt(t);
	/* Once, by the worker that ran it last, with the running reference. */
	assert(w == weft__self_worker && w->cur == NULL);
	assert(atomic_load_explicit(&t->run_state, memory_order_relaxed) == WEFT_RS_RUNNING);
	assert(atomic_load_explicit(&t->refs, memory_order_relaxed) > 0);
	/* A stackless task ends with no op registered (run_task checks it). */
	assert(!weft__is_step(t) || t->step_op == NULL);
	weft_task_aux *x = atomic_load_explicit(weft__task_auxp(t), memory_order_acquire);
	if (x && x->tls) {
		/* Destructors of the keys in use now, for values stored under
		 * them (not under a deleted key that had the same slot). */
		for (int k = 0; k < WEFT_TLS_KEYS; k++) {
			if (!x->tls[k].value || tls_slot((weft_tls_key_t)(k | x->tls[k].gen << TLS_GEN_SHIFT)) < 0)
				continue;
			void (*d)(void *) = atomic_load_explicit(&tls_dtor[k], memory_order_acquire);
			if (d)
				d(x->tls[k].value);
		}
		free(x->tls);
		x->tls = NULL;
	}
	if (x && x->on_end) {
		/* Once: the record ends here. Outside any task (w->cur is NULL),
		 * before a joiner or the group hears of the end. */
		void (*end)(void *, void *) = x->on_end;
		x->on_end = NULL;
		end(x->local, t->result);
	}
	if (weft__is_step(t) && t->timer) {
		/* A stackless task that finished with a deadline still armed. */
		weft__park_timer_drop(t);
	}
	if (!weft__is_step(t) && t->stack) {
#ifdef WEFT_HAVE_VALGRIND
		VALGRIND_STACK_DEREGISTER(t->stack->valgrind_id);
#endif
		weft__stack_free(rt->stacks, &w->stacks, t->stack);
		t->stack = NULL;
	}
	t->sp = NULL;
#ifdef WEFT_TSAN
	if (t->tsan_fiber) {
		__tsan_destroy_fiber(t->tsan_fiber);
		t->tsan_fiber = NULL;
	}
#endif
	atomic_store_explicit(&t->run_state, WEFT_RS_DONE, memory_order_release);
	atomic_store_explicit(&w->st_finished, atomic_load_explicit(&w->st_finished, memory_order_relaxed) + 1,
			      memory_order_release);
	if (x && x->group)
		weft__group_done(x->group, t);
	/* WAITING: the joiner installed the aux record and wrote its waker before. */
	uint8_t js = atomic_exchange(&t->join_state, WEFT_JOIN_WAKING);
	assert(js == WEFT_JOIN_NONE || js == WEFT_JOIN_WAITING); /* the task ends once */
	if (js == WEFT_JOIN_WAITING)
		weft_unpark(atomic_load_explicit(weft__task_auxp(t), memory_order_acquire)->join_waker, 0);
	atomic_store(&t->join_state, WEFT_JOIN_DONE);
	weft__task_unref(t);
}

/* ------------------------------------------------------------ join & co */

/* For assert(): only the joiner (holding the handle JOINING) moves
 * join_state between NONE and WAITING, so a CAS of its that fails has met
 * the finisher's WAKING or DONE. */
#define JOIN_ENDED(js) ((js) == WEFT_JOIN_WAKING || (js) == WEFT_JOIN_DONE)

/* The end of a join whose target has finished: take the result, let the
 * record go. The finisher may still be unparking our (timed-out) wait. */
static int join_finish(weft_task *t, void **result)
{
	/* The result is visible: we acquired join_state == DONE (a seq_cst load
	 * or failed CAS), or the wake that the finisher sent after storing it. */
	while (atomic_load(&t->join_state) == WEFT_JOIN_WAKING)
		sched_yield();
	assert(atomic_load_explicit(&t->join_state, memory_order_relaxed) == WEFT_JOIN_DONE);
	assert(atomic_load_explicit(&t->run_state, memory_order_relaxed) == WEFT_RS_DONE);
	assert(atomic_load_explicit(&t->handle, memory_order_relaxed) == WEFT_H_JOINING);
	if (result)
		*result = t->result;
	atomic_store(&t->handle, WEFT_H_JOINED);
	/* The handle's reference and the lookup's are both still held. */
	assert(atomic_load_explicit(&t->refs, memory_order_relaxed) >= 2);
	weft__task_unref(t); /* the handle */
	weft__task_put(t);   /* the lookup, and the hold on its runtime */
	return 0;
}

/* The joiner's wait on t ended with r: the join completes, unless r is an
 * error and t had not finished (it can be joined later). */
static int join_woke(weft_task *t, void **result, int r)
{
	if (r != 0) {
		uint8_t js = WEFT_JOIN_WAITING;
		if (atomic_compare_exchange_strong(&t->join_state, &js, WEFT_JOIN_NONE)) {
			atomic_store(&t->handle, WEFT_H_LIVE);
			weft__task_put(t);
			return r;
		}
		/* It finished meanwhile: the join succeeds after all. */
		assert(JOIN_ENDED(js));
	}
	return join_finish(t, result);
}

/* A stackless joiner's op: its call's id (first: weft_step_begin), then the
 * task it joins, held (looked up, handle taken) from the call that
 * registers to the repeat that completes. */
typedef struct join_op {
	uint8_t call;
	weft_task *t;
} join_op;
_Static_assert(sizeof(join_op) <= sizeof(((weft_op_t *)0)->opaque), "weft_op_t too small (its obj is the protocol's)");

/* The start of a join: t (looked up, its handle taken) has finished, or the
 * joiner waits for it - parking, or, a stackless joiner's op given,
 * registering there (-EINPROGRESS; its repeat calls join_woke). */
static int join_start(weft_task *t, void **result, weft_time_t deadline, weft_op_t *op)
{
	uint8_t js = atomic_load(&t->join_state);
	if (JOIN_ENDED(js))
		return join_finish(t, result);
	int err = 0;
	if (deadline != WEFT_NEVER && deadline <= weft_now())
		err = -ETIMEDOUT; /* a past deadline polls */
	else if (!op && !weft_can_park())
		err = -EPERM; /* a stackless task: weft_join_step */
	else if (unlikely(weft__sim_mine != NULL) && !weft__sim_ours(weft__task_rt(t)))
		err = -EPERM; /* a sim's thread: t's end would wake it from another thread */
	weft_task_aux *x = err ? NULL : weft__task_aux(t);
	if (!x) {
		atomic_store(&t->handle, WEFT_H_LIVE);
		weft__task_put(t);
		return err ? err : -ENOMEM;
	}
	weft_waker_t wk = weft_park_prepare();
	/* A stackless joiner got past weft_step_begin: it may open a wait. */
	assert(wk.parker != NULL || !op);
	x->join_waker = wk;
	js = WEFT_JOIN_NONE;
	if (!atomic_compare_exchange_strong(&t->join_state, &js, WEFT_JOIN_WAITING)) {
		assert(JOIN_ENDED(js));
		return join_finish(t, result);
	}
	if (!op)
		return join_woke(t, result, weft__park_on(wk, deadline, WEFT_WAIT_JOIN));
	((join_op *)op)->t = t; /* held across the steps */
	if (deadline != WEFT_NEVER && weft_park_deadline(wk, deadline) != 0)
		weft_unpark(wk, -ENOMEM); /* no timer: the repeat gives up */
	return weft_step_register(op);
}

/* Look id up and take its handle (LIVE -> JOINING); 0 or the error. */
static int join_take(weft_task_t id, weft_task **out)
{
	int e;
	weft_task *t = weft__task_get(id, &e);
	if (!t)
		return e;
	if (t == weft__cur_task()) {
		weft__task_put(t);
		return -EINVAL;
	}
	uint8_t h = WEFT_H_LIVE;
	if (!atomic_compare_exchange_strong(&t->handle, &h, WEFT_H_JOINING)) {
		weft__task_put(t);
		return h == WEFT_H_DETACHED ? -EINVAL : -ESRCH;
	}
	*out = t;
	return 0;
}

int weft__join(weft_task_t id, void **result, weft_time_t deadline)
{
	if (result)
		*result = NULL;
	weft_task *t = NULL;
	int r = join_take(id, &t);
	return r ? r : join_start(t, result, deadline, NULL);
}

int weft_join_until(weft_task_t t, void **result, weft_time_t deadline)
{
	return weft__join(t, result, deadline);
}

int weft_join(weft_task_t t, void **result)
{
	return weft__join(t, result, WEFT_NEVER);
}

int weft_join_step(weft_task_t id, void **result, weft_time_t deadline, weft_op_t *op)
{
	if (!op)
		return -EINVAL;
	int b = weft_step_begin(op, WEFT__STEP_JOIN, (const void *)(uintptr_t)id);
	if (b < 0)
		return b;
	if (result)
		*result = NULL;
	if (b == 1)
		return join_woke(((join_op *)op)->t, result, weft_park_result());
	if (b == WEFT_STEP_BLOCKS) /* a coroutine or a plain thread */
		return weft__join(id, result, deadline);
	weft_task *t = NULL;
	int r = join_take(id, &t);
	return r ? r : join_start(t, result, deadline, op);
}

int weft_detach(weft_task_t id)
{
	int e;
	weft_task *t = weft__task_get(id, &e);
	if (!t)
		return e;
	uint8_t h = WEFT_H_LIVE;
	if (!atomic_compare_exchange_strong(&t->handle, &h, WEFT_H_DETACHED)) {
		weft__task_put(t);
		return h == WEFT_H_DETACHED ? -EINVAL : -ESRCH;
	}
	assert(atomic_load_explicit(&t->refs, memory_order_relaxed) >= 2); /* the handle's and ours */
	weft__task_unref(t);						   /* the handle */
	weft__task_put(t);
	return 0;
}

int weft__task_cancel(weft_task *t)
{
	if (atomic_load(&t->run_state) == WEFT_RS_DONE)
		return -ESRCH;
	atomic_fetch_or(&t->flags, WEFT_TF_CANCELLED);
	uint64_t s = atomic_load(&t->park.state);
	int ph = WEFT_PS_PHASE(s);
	if ((ph == WEFT_PH_OPEN || ph == WEFT_PH_PARKED) && !(s & WEFT_PS_NOCANCEL))
		weft_unpark((weft_waker_t){.parker = &t->park, .epoch = WEFT_PS_EPOCH(s)}, -ECANCELED);
	return 0;
}

int weft_cancel(weft_task_t id)
{
	int e;
	weft_task *t = weft__task_get(id, &e);
	if (!t)
		return e;
	int r = weft__task_cancel(t);
	weft__task_put(t);
	return r;
}

bool weft_cancelled(void)
{
	weft_task *t = weft__cur_task();
	return t && (atomic_load_explicit(&t->flags, memory_order_relaxed) & WEFT_TF_CANCELLED);
}

int weft_yield(void)
{
	weft_worker *w = weft__self_worker;
	weft_task *t = w ? w->cur : NULL;
	if (!t) {
		if (unlikely(weft__sim_mine != NULL))
			weft__sim_yield(); /* a sim's owner thread: one task runs */
		else
			sched_yield();
		return 0;
	}
	if (weft__is_step(t))
		return -EPERM;
	weft__switch_to_sched(w, WEFT_ACT_YIELD);
	return weft_cancelled() ? -ECANCELED : 0;
}

int weft_exit(void *r)
{
	weft_worker *w = weft__self_worker;
	weft_task *t = w ? w->cur : NULL;
	if (!t || weft__is_step(t))
		return -EPERM;
	t->result = r;
	weft__switch_to_sched(w, WEFT_ACT_EXIT);
	__builtin_unreachable();
}

bool weft_can_park(void)
{
	weft_task *t = weft__cur_task();
	return !t || !weft__is_step(t);
}

int weft_worker_index(void)
{
	weft_worker *w = weft__self_worker;
	return w ? w->index : -1;
}

weft_task_t weft_self(void)
{
	weft_task *t = weft__cur_task();
	return t ? atomic_load_explicit(&t->id, memory_order_relaxed) : 0;
}

int weft_task_name(weft_task_t id, char *buf, size_t len)
{
	if (!buf || len == 0)
		return -EINVAL;
	int e;
	weft_task *t = weft__task_get(id, &e);
	if (!t)
		return e;
	weft_task_aux *x = atomic_load_explicit(weft__task_auxp(t), memory_order_acquire);
	size_t n = x ? strnlen(x->name, WEFT_NAME_LEN) : 0;
	if (n >= len)
		n = len - 1;
	if (n)
		memcpy(buf, x->name, n);
	buf[n] = 0;
	weft__task_put(t);
	return 0;
}

int weft_set_name(const char *name)
{
	weft_task *t = weft__cur_task();
	if (!t)
		return -EPERM;
	if (!name)
		return -EINVAL;
	weft_task_aux *x = weft__task_aux(t);
	if (!x)
		return -ENOMEM;
	strncpy(x->name, name, WEFT_NAME_LEN - 1);
	return 0;
}

/* ------------------------------------------------------------ task-local storage */

int weft_tls_key_create(weft_tls_key_t *key, void (*destructor)(void *))
{
	if (!key)
		return -EINVAL;
	uint64_t used = atomic_load(&tls_used);
	for (;;) {
		if (used == ~(uint64_t)0)
			return -EAGAIN;
		int k = __builtin_ctzll(~used);
		if (atomic_compare_exchange_weak(&tls_used, &used, used | ((uint64_t)1 << k))) {
			atomic_store_explicit(&tls_dtor[k], destructor, memory_order_release);
			*key = (weft_tls_key_t)(k | atomic_load(&tls_gen[k]) << TLS_GEN_SHIFT);
			return 0;
		}
	}
}

/* The slot of a key handle that names a key in use now, else -1. */
static int tls_slot(weft_tls_key_t key)
{
	if (key < 0)
		return -1;
	int k = key & (WEFT_TLS_KEYS - 1);
	uint32_t gen = (uint32_t)key >> TLS_GEN_SHIFT;
	if (!(atomic_load_explicit(&tls_used, memory_order_acquire) & ((uint64_t)1 << k)) ||
	    atomic_load_explicit(&tls_gen[k], memory_order_acquire) != gen)
		return -1;
	return k;
}

int weft_tls_key_delete(weft_tls_key_t key)
{
	int k = tls_slot(key);
	if (k < 0)
		return -EINVAL;
	uint32_t gen = (uint32_t)key >> TLS_GEN_SHIFT;
	/* Only the deleter that moves the generation on frees the slot. A slot
	 * whose generations are used up is retired, its bit left set for
	 * good, so that no handle ever names two keys (64 slots x 2^25
	 * deletions before keys run out). */
	bool last = gen == TLS_GEN_MAX;
	if (!atomic_compare_exchange_strong(&tls_gen[k], &gen, last ? TLS_GEN_RETIRED : gen + 1))
		return -EINVAL;
	atomic_store(&tls_dtor[k], NULL);
	if (!last)
		atomic_fetch_and(&tls_used, ~((uint64_t)1 << k));
	return 0;
}

int weft_tls_set(weft_tls_key_t key, void *value)
{
	weft_task *t = weft__cur_task();
	if (!t)
		return -EPERM;
	int k = tls_slot(key);
	if (k < 0)
		return -EINVAL;
	weft_task_aux *x = weft__task_aux(t);
	if (!x)
		return -ENOMEM;
	if (!x->tls) {
		x->tls = calloc(WEFT_TLS_KEYS, sizeof *x->tls);
		if (!x->tls)
			return -ENOMEM;
	}
	x->tls[k].value = value;
	x->tls[k].gen = (uint32_t)key >> TLS_GEN_SHIFT;
	return 0;
}

void *weft_task_local(void (*owner)(void *local, void *result))
{
	weft_task *t = weft__cur_task();
	weft_task_aux *x = t ? atomic_load_explicit(weft__task_auxp(t), memory_order_acquire) : NULL;
	/* on_end is cleared only as the task ends, after its last call */
	return x && x->on_end == owner ? x->local : NULL;
}

void *weft_tls_get(weft_tls_key_t key)
{
	weft_task *t = weft__cur_task();
	weft_task_aux *x = t ? atomic_load_explicit(weft__task_auxp(t), memory_order_acquire) : NULL;
	int k = tls_slot(key);
	if (!x || !x->tls || k < 0 || x->tls[k].gen != (uint32_t)key >> TLS_GEN_SHIFT)
		return NULL;
	return x->tls[k].value;
}
