/* stack.h - coroutine stacks: carved from slabs, guarded, cached per worker,
 * populated in batches, returned to the OS in the background.
 *
 * Design
 * ------
 * Stacks are carved out of large anonymous mappings ("slabs") so that a
 * million live stacks need a few thousand mappings, not a million
 * (vm.max_map_count is 65530 by default). Each stack has a guard region at
 * its low end:
 *   - MADV_GUARD_INSTALL (Linux >= 6.13) when the kernel has it: the guard
 *     costs no mapping and no memory;
 *   - otherwise mprotect(PROT_NONE) while the number of guards so installed
 *     stays under a budget (each splits a mapping);
 *   - otherwise no guard page, only a canary word at the low end of the
 *     usable stack, checked by the scheduler at every switch.
 *
 * A stack's descriptor (weft_stack_t) lives in the top WEFT_STACK_DESC bytes
 * of the stack's own memory, in the page every task touches first: a live
 * stack costs exactly the pages its task touched, with no side table. The
 * usable stack is the rest of the slot, below the descriptor.
 *
 * Where a stack can be (each stack is in exactly one place):
 *   - bound to a task                      counted in `in_use`
 *   - in a worker's weft_stack_cache_t     known only to its owner thread
 *   - in the pool, warm (resident)         pool->cls[k] warm list
 *   - in the pool, cold (memory released)  a bit in its slab's cold bitmap
 *   - not carved yet                       slab->used <= slot < slab->nslots
 *
 * Memory: a spawn does not take a stack; the worker that first runs the
 * coroutine does, from its own cache (stack.h's user, worker.c). Freed stacks
 * go back to the freeing worker's cache, so a worker that runs many short
 * coroutines reuses the same warm stacks and the kernel is never involved.
 * Caches above their bound spill their colder half to the pool's warm list,
 * and a worker that goes idle flushes its whole cache there. Nothing on the
 * free path makes a system call. Memory goes back to the OS only in the
 * background (weft__stack_scavenge, run by the monitor thread): a stack that
 * stayed in the warm list through a whole scavenge period was not needed, and
 * is released (MADV_DONTNEED, batched) down to a small floor. Peak memory is
 * bounded by the peak number of live stacks; after a spike it comes back
 * down within two periods.
 *
 * First touch: a stack that has never run, or whose memory was released,
 * gets its top page populated before use (MADV_POPULATE_WRITE, one
 * process_madvise call for a whole batch where the kernel allows it), which
 * costs a fraction of the page fault it replaces.
 *
 * Thread safety: a weft_stack_cache_t belongs to one thread (a worker); the
 * pool is shared by all and protects itself.
 */
#ifndef WEFT_SCHED_STACK_H
#define WEFT_SCHED_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The smallest stack: every weft call (a 64-case select with a deadline is
 * the deepest) fits in it with room to spare, in the sanitizer builds too. */
#define WEFT_STACK_MIN ((size_t)8192)
#define WEFT_STACK_DEFAULT ((size_t)64 * 1024)
#define WEFT_STACK_MAX ((size_t)1 << 30)
#define WEFT_STACK_DESC ((size_t)64)		/* bytes at the top of each stack holding its descriptor */
#define WEFT_STACK_CANARY 0x5745465443414e59ull /* "WEFTCANY" */
#define WEFT_STACK_CLASSES 18			/* 8 KiB << 0 .. 8 KiB << 17 = 1 GiB */

typedef enum weft_guard_kind {
	WEFT_GUARD_MADVISE, /* MADV_GUARD_INSTALL */
	WEFT_GUARD_MPROTECT,
	WEFT_GUARD_CANARY_ONLY,
} weft_guard_kind_t;

/* The descriptor, at the top of the stack it describes: the stack grows down
 * from the descriptor's own address. */
typedef struct weft_stack {
	struct weft_stack *next, *prev; /* list links, owned by whoever holds the stack */
	void *lo;			/* lowest usable byte (just above the guard); canary lives here */
	size_t size;			/* usable bytes: lo .. lo + size == (char *)this descriptor */
	struct weft_slab *slab;		/* where it was carved, and its slot there */
	uint32_t slot;
	uint8_t cls;	      /* size class index */
	uint8_t guard;	      /* weft_guard_kind_t */
	unsigned valgrind_id; /* VALGRIND_STACK_REGISTER id while a task uses it */
} weft_stack_t;

_Static_assert(sizeof(weft_stack_t) <= WEFT_STACK_DESC, "the descriptor fits its slot");

typedef struct weft_stack_pool weft_stack_pool_t;

typedef struct weft_stack_cache {
	weft_stack_t *head[WEFT_STACK_CLASSES], *tail[WEFT_STACK_CLASSES];
	uint32_t count[WEFT_STACK_CLASSES];
} weft_stack_cache_t;

/* Create the shared pool. keep_bytes: free stacks of each class the
 * background release leaves resident (counted at their full size).
 * mprotect_budget: how many mprotect guards may be installed when
 * MADV_GUARD_INSTALL is unavailable. Returns 0, -EINVAL or -ENOMEM. */
int weft__stack_pool_create(weft_stack_pool_t **out, size_t keep_bytes, size_t mprotect_budget);
/* Unmap everything. Every stack must have been freed (caches flushed) first. */
void weft__stack_pool_destroy(weft_stack_pool_t *p);

/* Get a stack of at least `size` usable bytes (WEFT_STACK_MIN..WEFT_STACK_MAX,
 * else -EINVAL; 0 means WEFT_STACK_DEFAULT); -ENOMEM when the OS refuses memory. */
int weft__stack_alloc(weft_stack_pool_t *p, weft_stack_cache_t *c, size_t size, weft_stack_t **out);
void weft__stack_free(weft_stack_pool_t *p, weft_stack_cache_t *c, weft_stack_t *s);
/* Move every stack in the cache to the pool's warm list (a worker going idle
 * or exiting). No system call. */
void weft__stack_cache_flush(weft_stack_pool_t *p, weft_stack_cache_t *c);

/* The background release. Call it often (every few milliseconds) from any
 * thread; it does nothing until a period (WEFT_STACK_SCAVENGE_NS) has passed
 * since it last looked. Then, per class, the warm stacks that sat untaken
 * through the last WEFT_STACK_SCAVENGE_WINDOW periods, beyond the floor,
 * are released to the OS, a bounded number per call. now: monotonic ns.
 * Returns how many stacks it released in this call. */
#define WEFT_STACK_SCAVENGE_NS ((int64_t)200 * 1000 * 1000)
#define WEFT_STACK_SCAVENGE_WINDOW 4
size_t weft__stack_scavenge(weft_stack_pool_t *p, int64_t now);

/* False when a canary-guarded stack's canary has been overwritten. */
static inline bool weft__stack_canary_ok(const weft_stack_t *s)
{
	return s->guard != WEFT_GUARD_CANARY_ONLY || *(const volatile uint64_t *)s->lo == WEFT_STACK_CANARY;
}

/* The top of a stack (where a new context's first frame goes). */
static inline void *weft__stack_top(weft_stack_t *s)
{
	return (void *)s;
}

/* Which guard mechanism the pool uses (for logs and tests). */
weft_guard_kind_t weft__stack_guard_kind(const weft_stack_pool_t *p);

/* If addr lies in the guard region (or the lowest 256 bytes, the canary zone)
 * of a stack of this pool, return that stack's descriptor; else NULL. The
 * descriptor is only readable while the stack is in use. Async-signal-safe
 * (no locks, no allocation): used by the SIGSEGV handler. */
weft_stack_t *weft__stack_find_guard(weft_stack_pool_t *p, const void *addr);

/* Statistics: bytes mapped, stacks in use, free in the pool warm (resident)
 * and cold (released), mappings made. Stacks in worker caches are in none of
 * the free counts. */
typedef struct weft_stack_stats {
	size_t mapped_bytes, in_use, warm, cold, slabs;
	size_t populated, released; /* pages populated in batches, stacks released, since creation */
} weft_stack_stats_t;
void weft__stack_stats(weft_stack_pool_t *p, weft_stack_stats_t *out);

#endif
