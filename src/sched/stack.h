/* stack.h - coroutine stacks: pooled, guarded, returned to the OS beyond a cache bound.
 *
 * Design
 * ------
 * Stacks are carved out of large anonymous mappings ("slabs") so that a
 * million live stacks need a few thousand mappings, not a million
 * (vm.max_map_count is 65530 by default). Each stack has one guard page at its
 * low end:
 *   - MADV_GUARD_INSTALL (Linux >= 6.13) when the kernel has it: the guard
 *     costs no mapping and no memory;
 *   - otherwise mprotect(PROT_NONE) while the number of guards so installed
 *     stays under a budget (each splits a mapping);
 *   - otherwise no guard page, only a canary word at the low end of the
 *     usable stack, checked by the scheduler at every switch.
 * Stacks with a guard page carry no canary: writing it would touch the stack's
 * lowest page, and a parked task's memory is what `idle` measures.
 *
 * Freed stacks go to a per-worker cache (no lock), overflowing in batches to a
 * global pool (one mutex, taken once per batch). Stacks held in the global
 * pool beyond `cache_bytes` have their memory returned with MADV_DONTNEED
 * (their address range and guard stay, so reuse is cheap).
 *
 * Sizes are rounded up to a page multiple; stacks of different sizes live in
 * different size classes (powers of two from 4 KiB up to 1 GiB).
 *
 * Thread safety: a weft_stack_cache_t belongs to one thread (a worker); the
 * pool is shared by all and protects itself.
 */
#ifndef WEFT_SCHED_STACK_H
#define WEFT_SCHED_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEFT_STACK_MIN ((size_t)4096)
#define WEFT_STACK_DEFAULT ((size_t)64 * 1024)
#define WEFT_STACK_MAX ((size_t)1 << 30)
#define WEFT_STACK_CANARY 0x5745465443414e59ull /* "WEFTCANY" */

typedef enum weft_guard_kind {
	WEFT_GUARD_MADVISE, /* MADV_GUARD_INSTALL */
	WEFT_GUARD_MPROTECT,
	WEFT_GUARD_CANARY_ONLY,
} weft_guard_kind_t;

typedef struct weft_stack {
	void *lo;		 /* lowest usable byte (just above the guard page); canary lives here */
	size_t size;		 /* usable bytes, lo .. lo+size; the stack grows down from lo+size */
	struct weft_stack *next; /* free-list link, owned by whoever holds the stack */
	uint8_t cls;		 /* size class index */
	uint8_t guard;		 /* weft_guard_kind_t */
	bool resident;		 /* false after MADV_DONTNEED */
	unsigned valgrind_id;	 /* VALGRIND_STACK_REGISTER id while a task uses it */
} weft_stack_t;

typedef struct weft_stack_pool weft_stack_pool_t;

typedef struct weft_stack_cache {
	weft_stack_t *head[32]; /* per size class */
	uint32_t count[32];
} weft_stack_cache_t;

/* Create the shared pool. cache_bytes: how many bytes of free stacks may stay
 * resident in the global pool (beyond it they are MADV_DONTNEED'd).
 * mprotect_budget: how many mprotect guards may be installed when
 * MADV_GUARD_INSTALL is unavailable. Returns 0 or -ENOMEM. */
int weft__stack_pool_create(weft_stack_pool_t **out, size_t cache_bytes, size_t mprotect_budget);
/* Unmap everything. Every stack must have been freed (caches flushed) first. */
void weft__stack_pool_destroy(weft_stack_pool_t *p);

/* Get a stack of at least `size` usable bytes (WEFT_STACK_MIN..WEFT_STACK_MAX,
 * else -EINVAL; 0 means WEFT_STACK_DEFAULT); -ENOMEM when the OS refuses memory. */
int weft__stack_alloc(weft_stack_pool_t *p, weft_stack_cache_t *c, size_t size, weft_stack_t **out);
void weft__stack_free(weft_stack_pool_t *p, weft_stack_cache_t *c, weft_stack_t *s);
/* Return every stack in the cache to the pool (worker exit). */
void weft__stack_cache_flush(weft_stack_pool_t *p, weft_stack_cache_t *c);

/* False when a canary-guarded stack's canary has been overwritten. */
static inline bool weft__stack_canary_ok(const weft_stack_t *s)
{
	return s->guard != WEFT_GUARD_CANARY_ONLY || *(const volatile uint64_t *)s->lo == WEFT_STACK_CANARY;
}

/* Which guard mechanism the pool uses (for logs and tests). */
weft_guard_kind_t weft__stack_guard_kind(const weft_stack_pool_t *p);

/* If addr lies in the guard page (or the lowest 256 bytes, the canary zone) of
 * a stack of this pool, return that stack; else NULL. Async-signal-safe (no
 * locks, no allocation): used by the SIGSEGV handler. */
weft_stack_t *weft__stack_find_guard(weft_stack_pool_t *p, const void *addr);

/* Statistics: bytes mapped, stacks in use, stacks cached (resident), mappings. */
typedef struct weft_stack_stats {
	size_t mapped_bytes, in_use, cached, released, slabs;
} weft_stack_stats_t;
void weft__stack_stats(weft_stack_pool_t *p, weft_stack_stats_t *out);

#endif
