/* pool.h - small blocks for objects that are made and freed at a high rate
 * on many threads (channels), with their memory given back to the OS in the
 * background once it has sat unused for a while.
 *
 * Why not malloc: a channel is typically made by one task and freed by
 * another, on another worker; glibc then frees into the maker's arena under
 * its lock, grows and trims arenas as bursts come and go (a system call and
 * page faults each time, and a fault costs microseconds on a virtual
 * machine), and keeps the top of a thread arena resident after a spike
 * whatever malloc_trim is asked. The pool has no arenas: one free list per
 * run of blocks, per-thread caches, and a release a caller drives
 * (weft__pool_release, from the scheduler's monitor).
 *
 * Blocks of WEFT_POOL_ALIGN bytes or more are WEFT_POOL_ALIGN-aligned (a
 * cache line), smaller ones 8-aligned; they come in classes of 8-byte steps
 * below 64 bytes, 64-byte steps up to 1 KiB, then coarser ones (pool.c) up
 * to WEFT_POOL_MAX bytes (a bounded channel of a few hundred words), and
 * are not zeroed. Any thread may allocate
 * and free; a block may be freed on another thread than it was made on.
 * Under AddressSanitizer free blocks are poisoned, so a use after free is
 * reported as with malloc (until the block is handed out again).
 */
#ifndef WEFT_BASE_POOL_H
#define WEFT_BASE_POOL_H

#include <stddef.h>
#include <stdint.h>

#define WEFT_POOL_ALIGN 64
#define WEFT_POOL_MAX 4096
/* The release: a run whose blocks are all free goes back to the OS once it
 * has stayed so through WEFT_POOL_WINDOW periods of WEFT_POOL_PERIOD_NS. */
#define WEFT_POOL_PERIOD_NS ((int64_t)200 * 1000 * 1000)
#define WEFT_POOL_WINDOW 4

/* A block of at least `size` bytes (1 .. WEFT_POOL_MAX), or NULL (size out
 * of range, or no memory: the caller falls back to malloc). */
void *weft__pool_alloc(size_t size);
/* Give back a block weft__pool_alloc returned. */
void weft__pool_free(void *p);

/* Call every few milliseconds from any thread (now: monotonic ns); it does
 * nothing until a period has passed since it last looked. Returns the bytes
 * it gave back to the OS in this call. */
size_t weft__pool_release(int64_t now);

/* For tests: what the pool holds, summed over its classes. */
typedef struct weft_pool_stats {
	size_t runs;	 /* runs holding blocks of some class */
	size_t empty;	 /* of which every block is free (resident) */
	size_t released; /* runs given back to the OS and not reused since */
	size_t in_use;	 /* blocks out of their runs: in use, or in a thread's cache */
} weft_pool_stats_t;
weft_pool_stats_t weft__pool_stats(void);
/* Give the calling thread's cached blocks back to their runs (a thread
 * does this when it exits). */
void weft__pool_flush(void);

#endif
