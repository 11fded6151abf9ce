/* pool.c - small blocks in runs, per-thread caches, background release (the
 * why is in pool.h).
 *
 * Layout
 * ------
 * Memory comes in chunks of CHUNK bytes reserved at CHUNK boundaries. A
 * chunk is RUNS runs of RUN bytes; run 0 holds the headers of all of them
 * (one pool_run of 64 bytes each), so a block finds its run's header by
 * masking its address, and a run's memory can go back to the OS while its
 * header stays. A run serves one class while it holds blocks: its free
 * blocks are a list linked through their first word, plus the blocks past
 * `bump` that were never handed out (a fresh run touches its pages only as
 * they are used).
 *
 * Where a run is (under its class's lock, or the global lock when COLD):
 *   FULL     every block handed out; on no list
 *   PARTIAL  some free, some handed out; on the class's partial list
 *   EMPTY    every block free, memory resident; on the class's empty list,
 *            newest first, stamped with the release epoch it became empty in
 *   COLD     memory given back to the OS; on the global cold list, of no
 *            class; the next run needed by any class is taken from here
 *            before a new one is carved
 * A refill takes blocks from partial runs first (filling holes keeps the
 * number of runs down), then from the newest empty run (the warmest), then
 * from a cold or new run.
 *
 * Classes: 8-byte steps below 64 bytes (7 tiny classes), 64-byte steps up
 * to 1 KiB (16), then 256-byte steps up to 2 KiB and 512-byte steps up to
 * 4 KiB (4 each). Every class from 64 bytes up is a multiple of 64, so its
 * blocks are WEFT_POOL_ALIGN-aligned; a tiny block is 8-aligned (a small
 * object - a channel without a buffer - pays for no padding). A run of
 * 64 KiB holds 16 blocks of the largest class.
 *
 * Thread caches: each thread keeps up to cache_max(k) blocks of class k
 * (CACHE of the small ones, fewer of the large: at most 32 KiB a class),
 * taken and given without a lock; a refill or a flush moves half of them
 * under the class's lock. A thread that exits flushes its cache (a pthread key's
 * destructor), and a scheduler worker flushes its own before it sleeps
 * (weft__pool_flush): a cached block keeps its run from emptying.
 *
 * Release: weft__pool_release advances the epoch once per period; runs that
 * have been EMPTY for WEFT_POOL_WINDOW epochs (the oldest are at the tail of
 * each empty list) are detached under the class lock, released with
 * MADV_DONTNEED without any lock (they belong to nobody then), and put on
 * the cold list. A burst that comes back within the window finds its runs
 * warm; after a spike, the memory goes back a window later.
 *
 * Lock order: a class's lock, then the global lock (a refill may need a
 * run). Nothing takes a class lock while holding the global one.
 */
#include "pool.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>

#include "cpu.h"
#include "spin.h"

#if defined(__SANITIZE_ADDRESS__)
#define POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ASAN 1
#endif
#endif
#ifdef POOL_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define RUN ((size_t)64 << 10)
#define RUNS 1024
#define CHUNK (RUN * RUNS)  /* 64 MiB */
#define NTINY 7		    /* classes of 8-byte steps: below 64 bytes */
#define NSMALL (NTINY + 16) /* then 64-byte steps: up to 1 KiB */
#define NCLASS (NSMALL + 8)
#define CACHE 32 /* blocks a thread caches of a small class */
#define HALF (CACHE / 2)
_Static_assert(WEFT_POOL_ALIGN == 64 && WEFT_POOL_MAX == 4096, "the classes of class_size");
#define RELEASE_BATCH 64

enum { R_FULL, R_PARTIAL, R_EMPTY, R_COLD };

typedef struct pool_run {
	struct pool_run *next, *prev; /* on its list (the cold list: next only) */
	void *free;		      /* free blocks below bump, linked through their first word */
	uint32_t bump;		      /* blocks [bump, cap) were never handed out */
	uint32_t nfree;		      /* free blocks: listed and past bump */
	uint32_t cap;		      /* blocks in the run */
	uint32_t stamp;		      /* EMPTY: the epoch it became empty in */
	uint8_t cls;
	uint8_t where; /* R_* */
} pool_run;
_Static_assert(sizeof(pool_run) <= 64, "a run header is 64 bytes");
_Static_assert(RUNS * 64 <= RUN, "the headers fit run 0");

typedef struct pool_class {
	_Atomic uint32_t lock;
	pool_run *partial;	      /* doubly linked */
	pool_run *empty, *empty_tail; /* doubly linked, newest first */
	size_t nruns, nempty, out;    /* runs of this class; EMPTY ones; blocks handed out of runs */
} __attribute__((aligned(WEFT_CACHELINE))) pool_class;

static pool_class classes[NCLASS];

static struct {
	pthread_mutex_t lock; /* the chunk being carved and the cold list */
	char *chunk;
	uint32_t next_run;
	pool_run *cold;
	size_t ncold;
	_Atomic uint32_t epoch;
	_Atomic int64_t period_start;
	_Atomic bool releasing;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

static inline size_t class_size(unsigned k)
{
	if (k < NTINY)
		return (size_t)(k + 1) * 8;
	if (k < NSMALL)
		return (size_t)(k - NTINY + 1) * WEFT_POOL_ALIGN;
	if (k < NSMALL + 4)
		return 1024 + (size_t)(k - NSMALL + 1) * 256;
	return 2048 + (size_t)(k - NSMALL - 3) * 512;
}

/* The class of a size in 1 .. WEFT_POOL_MAX: the smallest that holds it. */
static inline unsigned class_of(size_t size)
{
	if (size < WEFT_POOL_ALIGN)
		return (unsigned)((size - 1) / 8);
	if (size <= 1024)
		return NTINY + (unsigned)((size - 1) / WEFT_POOL_ALIGN);
	if (size <= 2048)
		return NSMALL + (unsigned)((size - 1025) / 256);
	return NSMALL + 4 + (unsigned)((size - 2049) / 512);
}

/* Blocks a thread caches of class k: CACHE, or up to 32 KiB of the large. */
static inline unsigned cache_max(unsigned k)
{
	return k < NSMALL ? CACHE : (unsigned)(32768 / class_size(k));
}

static inline pool_run *run_of(const void *b)
{
	uintptr_t c = (uintptr_t)b & ~(uintptr_t)(CHUNK - 1);
	return (pool_run *)c + (((uintptr_t)b - c) / RUN);
}

static inline char *run_base(const pool_run *r)
{
	uintptr_t c = (uintptr_t)r & ~(uintptr_t)(CHUNK - 1);
	return (char *)c + ((uintptr_t)r - c) / sizeof(pool_run) * RUN;
}

/* ------------------------------------------------------------ lists */

static void list_add(pool_run **head, pool_run **tail, pool_run *r)
{
	r->prev = NULL;
	r->next = *head;
	if (*head)
		(*head)->prev = r;
	else if (tail)
		*tail = r;
	*head = r;
}

static void list_del(pool_run **head, pool_run **tail, pool_run *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		*head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else if (tail)
		*tail = r->prev;
	r->next = r->prev = NULL;
}

/* ------------------------------------------------------------ runs */

/* Map a chunk at a CHUNK boundary; NULL if the OS refuses. */
static char *chunk_new(void)
{
	size_t len = 2 * CHUNK;
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	uintptr_t a = ((uintptr_t)m + CHUNK - 1) & ~(uintptr_t)(CHUNK - 1);
	if (a > (uintptr_t)m)
		munmap(m, a - (uintptr_t)m);
	if ((uintptr_t)m + len > a + CHUNK)
		munmap((char *)a + CHUNK, (uintptr_t)m + len - (a + CHUNK));
	return (char *)a;
}

/* A run for class k, taken from the cold list or carved; NULL without
 * memory. Under k's lock (the lock order allows the global one inside). */
static pool_run *run_new(unsigned k)
{
	pool_run *r = NULL;
	pthread_mutex_lock(&g.lock);
	if (g.cold) {
		r = g.cold;
		g.cold = r->next;
		g.ncold--;
		assert(r->where == R_COLD);
	} else {
		if (!g.chunk || g.next_run == RUNS) {
			char *c = chunk_new();
			if (c) {
				g.chunk = c;
				g.next_run = 1; /* run 0 holds the headers */
			}
		}
		if (g.chunk && g.next_run < RUNS)
			r = (pool_run *)g.chunk + g.next_run++;
	}
	pthread_mutex_unlock(&g.lock);
	if (!r)
		return NULL;
	size_t size = class_size(k);
	*r = (pool_run){.cls = (uint8_t)k, .cap = (uint32_t)(RUN / size), .where = R_PARTIAL};
	r->nfree = r->cap;
	/* Released or fresh: every byte is zero, nothing is poisoned that a
	 * block handed out will not unpoison. */
	return r;
}

/* Under the class lock: one block of r. */
static void *run_take(pool_run *r, size_t size)
{
	assert(r->nfree > 0 && r->where != R_COLD);
	void *b = r->free;
	if (b) {
		UNPOISON(b, sizeof(void *));
		r->free = *(void **)b;
	} else {
		assert(r->bump < r->cap);
		b = run_base(r) + (size_t)r->bump++ * size;
	}
	r->nfree--;
	return b;
}

/* ------------------------------------------------------------ thread caches */

typedef struct pool_tcache {
	uint16_t n[NCLASS];
	void *blk[NCLASS][CACHE];
} pool_tcache;

static __thread pool_tcache tc;
static __thread bool tc_registered;
static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;

static void tc_exit(void *unused)
{
	(void)unused;
	weft__pool_flush();
}

static void tc_key_make(void)
{
	pthread_key_create(&tc_key, tc_exit);
}

/* A thread that caches blocks flushes them when it exits. */
static void tc_register(void)
{
	tc_registered = true;
	pthread_once(&tc_once, tc_key_make);
	pthread_setspecific(tc_key, &tc);
}

/* Give n blocks of class k back to their runs. */
static void give_back(unsigned k, void **blk, unsigned n)
{
	pool_class *cl = &classes[k];
	size_t size = class_size(k);
	uint32_t epoch = atomic_load_explicit(&g.epoch, memory_order_relaxed);
	weft__spin_lock(&cl->lock);
	for (unsigned i = 0; i < n; i++) {
		void *b = blk[i];
		pool_run *r = run_of(b);
		/* A block of this class, from a run that holds blocks. */
		assert(r->cls == k && (r->where == R_FULL || r->where == R_PARTIAL) && r->nfree < r->cap);
		UNPOISON(b, sizeof(void *));
		*(void **)b = r->free;
		POISON(b, size);
		r->free = b;
		if (r->nfree++ == 0) {
			r->where = R_PARTIAL;
			list_add(&cl->partial, NULL, r);
		}
		if (r->nfree == r->cap) {
			list_del(&cl->partial, NULL, r);
			r->where = R_EMPTY;
			r->stamp = epoch;
			list_add(&cl->empty, &cl->empty_tail, r);
			cl->nempty++;
		}
	}
	assert(cl->out >= n);
	cl->out -= n;
	weft__spin_unlock(&cl->lock);
}

/* Fill the cache of class k with up to half its size and return one more;
 * NULL without memory. */
static void *refill(unsigned k)
{
	pool_class *cl = &classes[k];
	size_t size = class_size(k);
	unsigned want = cache_max(k) / 2 + 1;
	void *got[HALF + 1];
	assert(want <= HALF + 1);
	unsigned n = 0;
	weft__spin_lock(&cl->lock);
	while (n < want) {
		pool_run *r = cl->partial;
		if (!r && cl->empty) {
			r = cl->empty;
			list_del(&cl->empty, &cl->empty_tail, r);
			cl->nempty--;
			r->where = R_PARTIAL;
			list_add(&cl->partial, NULL, r);
		}
		if (!r) {
			r = run_new(k);
			if (!r)
				break;
			cl->nruns++;
			list_add(&cl->partial, NULL, r);
		}
		while (n < want && r->nfree > 0)
			got[n++] = run_take(r, size);
		if (r->nfree == 0) {
			list_del(&cl->partial, NULL, r);
			r->where = R_FULL;
		}
	}
	cl->out += n;
	weft__spin_unlock(&cl->lock);
	if (n == 0)
		return NULL;
	pool_tcache *c = &tc;
	assert(c->n[k] == 0);
	for (unsigned i = 1; i < n; i++) {
		POISON(got[i], size);
		c->blk[k][c->n[k]++] = got[i];
	}
	if (!tc_registered)
		tc_register();
	return got[0];
}

/* ------------------------------------------------------------ the calls */

void *weft__pool_alloc(size_t size)
{
	if (size == 0 || size > WEFT_POOL_MAX)
		return NULL;
	unsigned k = class_of(size);
	assert(k < NCLASS && class_size(k) >= size && (k == 0 || class_size(k - 1) < size));
	pool_tcache *c = &tc;
	void *b = likely(c->n[k] > 0) ? c->blk[k][--c->n[k]] : refill(k);
	if (b) {
		UNPOISON(b, class_size(k));
		assert(((uintptr_t)b & (size < WEFT_POOL_ALIGN ? 7 : WEFT_POOL_ALIGN - 1)) == 0);
	}
	return b;
}

void weft__pool_free(void *p)
{
	if (!p)
		return;
	pool_run *r = run_of(p);
	unsigned k = r->cls;
	assert(k < NCLASS && ((uintptr_t)p - (uintptr_t)run_base(r)) % class_size(k) == 0);
	POISON(p, class_size(k));
	pool_tcache *c = &tc;
	unsigned max = cache_max(k);
	assert(c->n[k] <= max);
	if (unlikely(c->n[k] == max)) {
		/* Keep the newest half (the warmest); give the oldest back. */
		unsigned half = max / 2;
		give_back(k, c->blk[k], half);
		memmove(c->blk[k], c->blk[k] + half, (max - half) * sizeof(void *));
		c->n[k] = max - half;
	}
	c->blk[k][c->n[k]++] = p;
	if (unlikely(!tc_registered))
		tc_register();
}

void weft__pool_flush(void)
{
	pool_tcache *c = &tc;
	for (unsigned k = 0; k < NCLASS; k++) {
		if (c->n[k])
			give_back(k, c->blk[k], c->n[k]);
		c->n[k] = 0;
	}
}

/* Detach up to RELEASE_BATCH runs of class k that have been empty since
 * epoch `before` or earlier, into out[]; how many. */
static unsigned detach_old(unsigned k, uint32_t epoch, pool_run **out)
{
	pool_class *cl = &classes[k];
	unsigned n = 0;
	weft__spin_lock(&cl->lock);
	while (n < RELEASE_BATCH && cl->empty_tail && epoch - cl->empty_tail->stamp >= WEFT_POOL_WINDOW) {
		pool_run *r = cl->empty_tail;
		assert(r->where == R_EMPTY && r->nfree == r->cap);
		list_del(&cl->empty, &cl->empty_tail, r);
		cl->nempty--;
		cl->nruns--;
		r->where = R_COLD;
		out[n++] = r;
	}
	weft__spin_unlock(&cl->lock);
	return n;
}

size_t weft__pool_release(int64_t now)
{
	if (atomic_load_explicit(&g.releasing, memory_order_relaxed) ||
	    atomic_exchange_explicit(&g.releasing, true, memory_order_acquire))
		return 0;
	size_t bytes = 0;
	int64_t start = atomic_load_explicit(&g.period_start, memory_order_relaxed);
	if (start == 0 || now - start >= WEFT_POOL_PERIOD_NS) {
		atomic_store_explicit(&g.period_start, now, memory_order_relaxed);
		uint32_t epoch = atomic_fetch_add_explicit(&g.epoch, 1, memory_order_relaxed) + 1;
		pool_run *batch[RELEASE_BATCH];
		for (unsigned k = 0; k < NCLASS; k++) {
			unsigned n;
			while ((n = detach_old(k, epoch, batch)) > 0) {
				/* Ours alone: on no list, of no class. */
				for (unsigned i = 0; i < n; i++) {
					if (madvise(run_base(batch[i]), RUN, MADV_DONTNEED) == 0)
						bytes += RUN;
					UNPOISON(run_base(batch[i]), RUN);
				}
				pthread_mutex_lock(&g.lock);
				for (unsigned i = 0; i < n; i++) {
					batch[i]->next = g.cold;
					g.cold = batch[i];
				}
				g.ncold += n;
				pthread_mutex_unlock(&g.lock);
			}
		}
	}
	atomic_store_explicit(&g.releasing, false, memory_order_release);
	return bytes;
}

weft_pool_stats_t weft__pool_stats(void)
{
	weft_pool_stats_t s = {0};
	for (unsigned k = 0; k < NCLASS; k++) {
		pool_class *cl = &classes[k];
		weft__spin_lock(&cl->lock);
		s.runs += cl->nruns;
		s.empty += cl->nempty;
		s.in_use += cl->out;
		weft__spin_unlock(&cl->lock);
	}
	pthread_mutex_lock(&g.lock);
	s.released = g.ncold;
	pthread_mutex_unlock(&g.lock);
	return s;
}
