/* stack.c - coroutine stacks: slabs, guards, per-worker caches, the pool and
 * its background release (the design is in stack.h).
 *
 * Layout
 * ------
 * A slab is one anonymous mapping holding `nslots` stacks of one size class.
 * Slot i is [base + i*slot, base + (i+1)*slot), slot = guard + class size:
 * a guard region of GUARD_PAGES pages, then the stack, whose top
 * WEFT_STACK_DESC bytes hold its descriptor. Slabs are unmapped only when the
 * pool is destroyed. While a stack is resident, everything about it is in
 * its descriptor (in the stack's top page); its slab keeps only what must
 * survive the release of its memory: the guard kind of each slot and a
 * bitmap of the slots that are cold (released), with a count, so that a
 * class finds cold stacks through the list of its slabs that have some.
 *
 * Lists
 * -----
 * A worker cache is singly linked per class (head = most recently freed, the
 * warmest), with a tail pointer so that a flush splices it in one step. The
 * pool's warm list is doubly linked (head = most recently given back; the
 * background release takes from the tail, the coldest). Cold stacks are
 * bits in their slabs' bitmaps. The pool mutex covers the lists, slot
 * reservation and slab creation; every system call (guards, populate,
 * release) happens outside it, on stacks that are in transit and owned by
 * the caller alone.
 *
 * Background release (weft__stack_scavenge)
 * -----------------------------------------
 * warm_min is the lowest length the warm list reached since the current
 * period began: that many stacks sat in the pool through the whole period,
 * unused. The lows of the last WEFT_STACK_SCAVENGE_WINDOW periods are kept (each
 * lowered as stacks are released, since those are gone): their minimum is
 * what sat unused through the whole window, and at each period boundary
 * that many beyond the floor (keep_bytes worth) are marked for release -
 * so work that comes back in bursts less than a window apart (rounds of
 * spawns) keeps its stacks, and a spike's stacks go back a window after
 * it ends; each call then releases at most SCAVENGE_CHUNK of
 * them (a few hundred process_madvise calls at most), so the thread running
 * it is never held long. Demand that returns mid-way takes stacks off the
 * warm list first, and the release never goes below the floor.
 *
 * Batched advice: where the kernel allows madvise advice on ourselves through
 * process_madvise (Linux >= 6.13), the guards of a carved batch, the
 * population of a batch's top pages and the release of a batch are one
 * system call each, which also batches the TLB flushes (an IPI to every CPU
 * running the process, otherwise paid per stack); else, or if the batched
 * call falls short, one call per stack. All three advices are idempotent.
 *
 * Signal safety: weft__stack_find_guard walks the slab list from pool->slabs.
 * A slab is fully built before it is published with a release store, and
 * neither the slab nor its `next` ever changes afterwards, so the handler's
 * acquire load sees complete slabs and takes no lock.
 */
#include "stack.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../base/cpu.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef PIDFD_SELF
#define PIDFD_SELF -10000 /* the calling process, for pidfd-taking calls (Linux >= 6.15) */
#endif

#define NCLASS WEFT_STACK_CLASSES
#define SLAB_MIN ((size_t)4 << 20)	  /* first slab of a class */
#define SLAB_MAX ((size_t)64 << 20)	  /* slabs double up to this */
#define CACHE_MAX_STACKS 64u		  /* per class, per cache */
#define CACHE_MAX_BYTES ((size_t)4 << 20) /* per class, per cache */
#define GUARD_PAGES 16			  /* 64 KiB with 4 KiB pages: frames up to that size are caught */
#define CANARY_ZONE 256			  /* bytes above lo that count as the guard */
#define NSHARD 16			  /* in_use counter shards */
#define ADVISE_MAX 64			  /* ranges per batched call (batches are at most 64 stacks) */
#define SCAVENGE_CHUNK 4096		  /* stacks released per weft__stack_scavenge call at most */

_Static_assert((WEFT_STACK_MIN << (NCLASS - 1)) == WEFT_STACK_MAX, "classes end at WEFT_STACK_MAX");

typedef struct weft_slab {
	struct weft_slab *next; /* older slab; immutable once published */
	char *base;
	size_t len;  /* nslots * slot */
	size_t slot; /* guard + class size */
	uint32_t nslots;
	uint32_t used;		     /* carved slots; under pool->lock */
	uint32_t ncold;		     /* set bits of cold (under pool->lock) */
	struct weft_slab *next_cold; /* the class's slabs with cold stacks (under pool->lock) */
	_Atomic(uint8_t *) guard;    /* each carved slot's weft_guard_kind_t; NULL while every
				      * slot has the pool's mode (made when one does not) */
	uint64_t cold[];	     /* slot i is cold (released) iff bit i is set */
} weft_slab_t;

typedef struct weft_stack_class {
	weft_stack_t *warm_head, *warm_tail; /* free and resident */
	size_t nwarm;
	size_t warm_min;			 /* lowest nwarm since the period began */
	size_t lows[WEFT_STACK_SCAVENGE_WINDOW]; /* warm_min of the last periods, less what was released since */
	size_t to_release;			 /* marked at the last period boundary, not released yet (under lock) */
	weft_slab_t *cold_slabs;		 /* slabs with cold stacks */
	size_t ncold;
	weft_slab_t *cur; /* slab being carved */
	unsigned nslabs;
} weft_stack_class_t;

/* in_use is changed on every alloc and free, by every worker; one shared
 * counter would bounce its cache line between them. Each cache updates the
 * shard its address hashes to, so workers mostly touch different lines; a
 * stack freed through another cache than it came from only moves the count
 * between shards (the sum, modulo 2^64, stays right). */
typedef struct weft_stack_shard {
	alignas(WEFT_CACHELINE) _Atomic size_t in_use;
} weft_stack_shard_t;

/* Slab descriptors come from chunks of the pool's own (meta_alloc), not from
 * malloc: they live as long as the pool, and scattered among a program's
 * short-lived allocations each would pin a page of malloc's heap that could
 * otherwise go back to the OS after a spike. */
#define META_CHUNK ((size_t)64 << 10)
typedef struct meta_chunk {
	struct meta_chunk *next;
	size_t used, size;
} meta_chunk_t;

struct weft_stack_pool {
	pthread_mutex_t lock;
	meta_chunk_t *meta; /* newest first; under lock */
	weft_stack_class_t cls[NCLASS];
	size_t mapped_bytes, nslabs;			 /* under lock */
	size_t mprotect_used;				 /* under lock */
	_Atomic(weft_slab_t *) slabs;			 /* newest first; see "Signal safety" */
	size_t page, guard, keep_bytes, mprotect_budget; /* guard = GUARD_PAGES pages */
	weft_guard_kind_t mode;
	_Atomic uint32_t advice_refused; /* bit per advice kind process_madvise refused (A_*) */
	_Atomic bool populate_refused;	 /* madvise(MADV_POPULATE_WRITE) is not supported */
	_Atomic bool release_refused;	 /* MADV_DONTNEED failed (locked memory): stop releasing */
	_Atomic bool scavenging;	 /* one weft__stack_scavenge at a time */
	_Atomic bool release_pending;	 /* some class has to_release > 0 */
	_Atomic int64_t period_start;
	_Atomic size_t populated, released;
	weft_stack_shard_t shard[NSHARD];
};

enum { A_GUARD = 1, A_POPULATE = 2, A_RELEASE = 4 };

static size_t class_size(unsigned cls)
{
	return WEFT_STACK_MIN << cls;
}

/* Smallest class holding `size` bytes, and at least a page. */
static unsigned class_of(const weft_stack_pool_t *p, size_t size)
{
	if (size < p->page)
		size = p->page;
	unsigned cls = 0;
	while (class_size(cls) < size)
		cls++;
	assert(cls < NCLASS);
	return cls;
}

/* How many stacks of a class a per-worker cache keeps: 64 or 4 MiB worth,
 * whichever is smaller (none at all for classes above 4 MiB). */
static uint32_t cache_limit(unsigned cls)
{
	size_t n = CACHE_MAX_BYTES / class_size(cls);
	return n < CACHE_MAX_STACKS ? (uint32_t)n : CACHE_MAX_STACKS;
}

/* Stacks moved between a cache and the pool at once. */
static uint32_t batch_of(unsigned cls)
{
	uint32_t b = cache_limit(cls) / 2;
	return b ? b : 1;
}

/* Free stacks of class k the background release leaves in the pool. */
static size_t keep_of(const weft_stack_pool_t *p, unsigned k)
{
	return p->keep_bytes / class_size(k);
}

static weft_stack_shard_t *shard_of(weft_stack_pool_t *p, const weft_stack_cache_t *c)
{
	uintptr_t h = (uintptr_t)c;
	h ^= h >> 7 ^ h >> 13;
	return &p->shard[h % NSHARD];
}

static bool madvise_guard_works(size_t page)
{
	char *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return false;
	bool ok = madvise(m, page, MADV_GUARD_INSTALL) == 0;
	munmap(m, 2 * page);
	return ok;
}

/* WEFT_STACK_GUARD=madvise|mprotect|canary forces a mode; madvise on a kernel
 * without it, or any other value, gives the default: the best available. */
static weft_guard_kind_t choose_guard(size_t page, size_t mprotect_budget)
{
	const char *env = getenv("WEFT_STACK_GUARD");
	bool madv = madvise_guard_works(page);
	if (env && strcmp(env, "canary") == 0)
		return WEFT_GUARD_CANARY_ONLY;
	if (madv && !(env && strcmp(env, "mprotect") == 0))
		return WEFT_GUARD_MADVISE;
	return mprotect_budget ? WEFT_GUARD_MPROTECT : WEFT_GUARD_CANARY_ONLY;
}

int weft__stack_pool_create(weft_stack_pool_t **out, size_t keep_bytes, size_t mprotect_budget)
{
	if (!out)
		return -EINVAL;
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096;
	if (page > WEFT_STACK_MIN) /* the smallest class must hold a whole page */
		return -EINVAL;
	size_t sz = (sizeof(weft_stack_pool_t) + 63) & ~(size_t)63;
	weft_stack_pool_t *p = aligned_alloc(WEFT_CACHELINE, sz);
	if (!p)
		return -ENOMEM;
	memset(p, 0, sizeof *p);
	if (pthread_mutex_init(&p->lock, NULL) != 0) {
		free(p);
		return -ENOMEM;
	}
	p->page = page;
	/* A guard of GUARD_PAGES pages, not one: a function whose frame is
	 * larger than a page would step over a single guard page into the
	 * neighbouring stack. The guard costs address space only. */
	p->guard = GUARD_PAGES * page;
	p->keep_bytes = keep_bytes;
	p->mprotect_budget = mprotect_budget;
	p->mode = choose_guard(page, mprotect_budget);
	atomic_init(&p->slabs, NULL);
	atomic_init(&p->advice_refused, 0);
	atomic_init(&p->populate_refused, false);
	atomic_init(&p->release_refused, false);
	atomic_init(&p->scavenging, false);
	atomic_init(&p->release_pending, false);
	atomic_init(&p->period_start, 0);
	atomic_init(&p->populated, 0);
	atomic_init(&p->released, 0);
	for (int i = 0; i < NSHARD; i++)
		atomic_init(&p->shard[i].in_use, 0);
	*out = p;
	return 0;
}

static size_t in_use(weft_stack_pool_t *p)
{
	size_t n = 0;
	for (int i = 0; i < NSHARD; i++)
		n += atomic_load_explicit(&p->shard[i].in_use, memory_order_relaxed);
	return n;
}

void weft__stack_pool_destroy(weft_stack_pool_t *p)
{
	if (!p)
		return;
	assert(in_use(p) == 0);
	for (weft_slab_t *sl = atomic_load_explicit(&p->slabs, memory_order_relaxed); sl; sl = sl->next)
		munmap(sl->base, sl->len);
	while (p->meta) {
		meta_chunk_t *next = p->meta->next;
		munmap(p->meta, p->meta->size);
		p->meta = next;
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}

weft_guard_kind_t weft__stack_guard_kind(const weft_stack_pool_t *p)
{
	return p->mode;
}

/* Zeroed memory for a slab descriptor, living as long as the pool. Under
 * the lock. NULL when out of memory. */
static void *meta_alloc(weft_stack_pool_t *p, size_t size)
{
	size = (size + 15) & ~(size_t)15;
	meta_chunk_t *c = p->meta;
	size_t hdr = (sizeof *c + 15) & ~(size_t)15;
	if (!c || c->size - c->used < size) {
		size_t len = hdr + size > META_CHUNK ? (hdr + size + p->page - 1) & ~(p->page - 1) : META_CHUNK;
		c = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (c == MAP_FAILED)
			return NULL;
		c->next = p->meta;
		c->used = hdr;
		c->size = len;
		p->meta = c;
	}
	void *m = (char *)c + c->used;
	c->used += size;
	return m; /* fresh anonymous memory: zero */
}

/* Map a new slab for class k and make it current. Called with the lock held:
 * one mmap per 4..64 MiB of stacks is rare enough, and it keeps one slab in
 * carving per class. */
static int slab_new(weft_stack_pool_t *p, unsigned k)
{
	weft_stack_class_t *c = &p->cls[k];
	size_t slot = p->guard + class_size(k);
	size_t target = SLAB_MAX;
	if (c->nslabs < 4)
		target = SLAB_MIN << c->nslabs;
	size_t n = target / slot;
	if (n == 0)
		n = 1;
	size_t len = n * slot, words = (n + 63) / 64;
	weft_slab_t *sl = meta_alloc(p, sizeof *sl + words * sizeof(uint64_t));
	if (!sl)
		return -ENOMEM;
	atomic_init(&sl->guard, NULL);
	/* MAP_STACK makes the kernel (>= 6.7) keep transparent huge pages out,
	 * which MADV_NOHUGEPAGE does on older ones: a 2 MiB page behind 30
	 * small stacks would make each one resident in full and defeat the
	 * release of a single stack. Failure of the hint is harmless. */
	char *base =
		mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (base == MAP_FAILED)
		return -ENOMEM; /* sl stays in the pool's metadata, unused */
	(void)madvise(base, len, MADV_NOHUGEPAGE);
	sl->base = base;
	sl->len = len;
	sl->slot = slot;
	sl->nslots = (uint32_t)n;
	sl->used = 0;
	sl->next = atomic_load_explicit(&p->slabs, memory_order_relaxed);
	/* Release: a signal handler that finds this slab sees it built. */
	atomic_store_explicit(&p->slabs, sl, memory_order_release);
	c->cur = sl;
	c->nslabs++;
	p->nslabs++;
	p->mapped_bytes += len;
	return 0;
}

/* The descriptor of slot i of a slab of class k. */
static weft_stack_t *slot_desc(const weft_stack_pool_t *p, const weft_slab_t *sl, unsigned k, size_t i)
{
	return (weft_stack_t *)(sl->base + i * sl->slot + p->guard + class_size(k) - WEFT_STACK_DESC);
}

static bool install_guard(void *addr, size_t len, weft_guard_kind_t kind)
{
	if (kind == WEFT_GUARD_MPROTECT)
		return mprotect(addr, len, PROT_NONE) == 0;
	assert(kind == WEFT_GUARD_MADVISE);
	/* The kernel may ask to retry (EAGAIN: racing page-table changes,
	 * EINTR: a signal); anything else, or many retries, leaves the stack
	 * with its canary only. */
	for (int tries = 0; tries < 8; tries++) {
		if (madvise(addr, len, MADV_GUARD_INSTALL) == 0)
			return true;
		if (errno != EAGAIN && errno != EINTR)
			break;
	}
	return false;
}

/* One process_madvise for n ranges; false if it is unavailable or did not
 * advise them all (the caller then goes range by range). `kind` (A_*) names
 * the advice for remembering a refusal: an old kernel allows process_madvise
 * on ourselves for some advice only. */
static bool advise_batch(weft_stack_pool_t *p, const struct iovec *iov, size_t n, int advice, uint32_t kind)
{
#ifdef SYS_process_madvise
	if (n == 0 || (atomic_load_explicit(&p->advice_refused, memory_order_relaxed) & kind))
		return false;
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += iov[i].iov_len;
	long r = syscall(SYS_process_madvise, PIDFD_SELF, iov, n, advice, 0);
	if (r == (long)total)
		return true;
	if (r < 0 && errno != EAGAIN && errno != EINTR && errno != ENOMEM)
		atomic_fetch_or_explicit(&p->advice_refused, kind, memory_order_relaxed); /* stop trying */
	return false;
#else
	(void)p, (void)iov, (void)n, (void)advice, (void)kind;
	return false;
#endif
}

/* Scratch for batched advice, per thread (kept off the caller's stack). */
static __thread struct iovec advise_iov[ADVISE_MAX];
static __thread weft_stack_t *batch_desc[ADVISE_MAX];
static __thread weft_slab_t *batch_slab[ADVISE_MAX];
static __thread uint32_t batch_slot[ADVISE_MAX];
static __thread uint8_t batch_guard[ADVISE_MAX];

/* Make the top pages of n stacks resident (descriptors in `d`) in one call
 * where possible: a page fault costs far more than populating a page in a
 * batch. Best effort: a stack whose page is not populated faults it in. */
static void populate_tops(weft_stack_pool_t *p, weft_stack_t **d, size_t n)
{
	if (n == 0 || atomic_load_explicit(&p->populate_refused, memory_order_relaxed))
		return;
	struct iovec *iov = advise_iov;
	for (size_t i = 0; i < n; i++)
		iov[i] = (struct iovec){(char *)d[i] + WEFT_STACK_DESC - p->page, p->page};
	if (!advise_batch(p, iov, n, MADV_POPULATE_WRITE, A_POPULATE)) {
		for (size_t i = 0; i < n; i++) {
			if (madvise(iov[i].iov_base, iov[i].iov_len, MADV_POPULATE_WRITE) != 0 && errno == EINVAL) {
				atomic_store_explicit(&p->populate_refused, true,
						      memory_order_relaxed); /* kernel < 5.14 */
				return;
			}
		}
	}
	atomic_fetch_add_explicit(&p->populated, n, memory_order_relaxed);
}

/* A carved slot's guard kind. */
static uint8_t slot_guard(const weft_stack_pool_t *p, const weft_slab_t *sl, uint32_t slot)
{
	uint8_t *kinds = atomic_load_explicit(&sl->guard, memory_order_acquire);
	return kinds ? kinds[slot] : (uint8_t)p->mode;
}

/* Write a fresh descriptor for a stack of class k whose memory is resident
 * (or about to fault in) and push it on the cache. */
static void push_new(weft_stack_pool_t *p, weft_stack_cache_t *c, unsigned k, weft_slab_t *sl, uint32_t slot)
{
	weft_stack_t *s = slot_desc(p, sl, k, slot);
	*s = (weft_stack_t){
		.next = c->head[k],
		.lo = (char *)s + WEFT_STACK_DESC - class_size(k),
		.size = class_size(k) - WEFT_STACK_DESC,
		.slab = sl,
		.slot = slot,
		.cls = (uint8_t)k,
		.guard = slot_guard(p, sl, slot),
	};
	if (!c->head[k])
		c->tail[k] = s;
	c->head[k] = s;
	c->count[k]++;
	(void)p;
}

/* Carve up to `want` new stacks of class k onto the cache list. */
static int carve(weft_stack_pool_t *p, weft_stack_cache_t *c, unsigned k, uint32_t want)
{
	weft_stack_class_t *cl = &p->cls[k];
	pthread_mutex_lock(&p->lock);
	if (!cl->cur || cl->cur->used == cl->cur->nslots) {
		int e = slab_new(p, k);
		if (e) {
			pthread_mutex_unlock(&p->lock);
			return e;
		}
	}
	weft_slab_t *sl = cl->cur;
	uint32_t first = sl->used, n = sl->nslots - first;
	if (n > want)
		n = want;
	if (n > ADVISE_MAX)
		n = ADVISE_MAX;
	sl->used += n;
	size_t nmprotect = 0;
	if (p->mode == WEFT_GUARD_MPROTECT) {
		size_t left = p->mprotect_budget - p->mprotect_used;
		nmprotect = n < left ? n : left;
		p->mprotect_used += nmprotect;
	}
	pthread_mutex_unlock(&p->lock);

	/* The slots [first, first+n) are ours alone now. */
	bool batched = false;
	if (p->mode == WEFT_GUARD_MADVISE) {
		struct iovec *iov = advise_iov;
		for (uint32_t i = 0; i < n; i++)
			iov[i] = (struct iovec){sl->base + (first + i) * sl->slot, p->guard};
		batched = advise_batch(p, iov, n, MADV_GUARD_INSTALL, A_GUARD);
	}
	for (uint32_t i = 0; i < n; i++) {
		weft_guard_kind_t g = p->mode;
		if (g == WEFT_GUARD_MPROTECT && i >= nmprotect)
			g = WEFT_GUARD_CANARY_ONLY;
		if (g != WEFT_GUARD_CANARY_ONLY && !batched &&
		    !install_guard(sl->base + (first + i) * sl->slot, p->guard, g))
			g = WEFT_GUARD_CANARY_ONLY;
		uint8_t *kinds = atomic_load_explicit(&sl->guard, memory_order_acquire);
		if (g != p->mode && !kinds) {
			/* The first slot of this slab without the pool's guard:
			 * record every slot's kind from now on (release: a
			 * reader that finds the array sees it filled). */
			pthread_mutex_lock(&p->lock);
			kinds = atomic_load_explicit(&sl->guard, memory_order_relaxed);
			if (!kinds && (kinds = meta_alloc(p, sl->nslots)) != NULL) {
				memset(kinds, p->mode, sl->nslots);
				atomic_store_explicit(&sl->guard, kinds, memory_order_release);
			}
			pthread_mutex_unlock(&p->lock);
		}
		if (kinds)
			kinds[first + i] = (uint8_t)g; /* the slot is ours: no lock */
		else if (g != p->mode)
			g = 0xff; /* its kind cannot be kept: the slot is not used */
		batch_guard[i] = (uint8_t)g;
		batch_desc[i] = slot_desc(p, sl, k, first + i);
	}
	populate_tops(p, batch_desc, n);
	/* Pushed in reverse so that the cache hands them out in address order. */
	for (uint32_t i = n; i-- > 0;)
		if (batch_guard[i] != 0xff)
			push_new(p, c, k, sl, first + i);
	return 0;
}

/* Move up to `want` warm stacks of class k from the pool onto the cache
 * list. Returns how many. */
static uint32_t take_warm(weft_stack_pool_t *p, weft_stack_cache_t *c, unsigned k, uint32_t want)
{
	weft_stack_class_t *cl = &p->cls[k];
	uint32_t n = 0;
	pthread_mutex_lock(&p->lock);
	while (n < want && cl->warm_head) {
		weft_stack_t *s = cl->warm_head;
		cl->warm_head = s->next;
		if (cl->warm_head)
			cl->warm_head->prev = NULL;
		else
			cl->warm_tail = NULL;
		s->prev = NULL;
		s->next = c->head[k];
		if (!c->head[k])
			c->tail[k] = s;
		c->head[k] = s;
		n++;
	}
	cl->nwarm -= n;
	if (cl->nwarm < cl->warm_min)
		cl->warm_min = cl->nwarm;
	pthread_mutex_unlock(&p->lock);
	c->count[k] += n;
	return n;
}

/* Move up to `want` cold stacks of class k onto the cache list, populating
 * their top pages first. Returns how many. */
static uint32_t take_cold(weft_stack_pool_t *p, weft_stack_cache_t *c, unsigned k, uint32_t want)
{
	weft_stack_class_t *cl = &p->cls[k];
	if (want > ADVISE_MAX)
		want = ADVISE_MAX;
	uint32_t n = 0;
	pthread_mutex_lock(&p->lock);
	while (n < want && cl->cold_slabs) {
		weft_slab_t *sl = cl->cold_slabs;
		for (uint32_t w = 0; n < want && sl->ncold; w++) {
			while (sl->cold[w] && n < want) {
				uint32_t bit = (uint32_t)__builtin_ctzll(sl->cold[w]);
				sl->cold[w] &= sl->cold[w] - 1;
				sl->ncold--;
				batch_slab[n] = sl;
				batch_slot[n] = w * 64 + bit;
				batch_desc[n] = slot_desc(p, sl, k, w * 64 + bit);
				n++;
			}
		}
		if (sl->ncold == 0)
			cl->cold_slabs = sl->next_cold;
	}
	cl->ncold -= n;
	pthread_mutex_unlock(&p->lock);
	populate_tops(p, batch_desc, n);
	for (uint32_t i = 0; i < n; i++)
		push_new(p, c, k, batch_slab[i], batch_slot[i]);
	return n;
}

/* Give a list of stacks of class k (singly linked, `first` .. `last`, n
 * of them, owned by the caller) to the head of the pool's warm list. */
static void put_warm(weft_stack_pool_t *p, unsigned k, weft_stack_t *first, weft_stack_t *last, uint32_t n)
{
	/* Link the batch both ways before taking the lock: it is ours. */
	weft_stack_t *prev = NULL;
	uint32_t seen = 0;
	for (weft_stack_t *s = first;; s = s->next) {
		assert(s->cls == k);
		s->prev = prev;
		prev = s;
		seen++;
		if (s == last)
			break;
	}
	assert(seen == n);
	(void)seen;
	weft_stack_class_t *cl = &p->cls[k];
	pthread_mutex_lock(&p->lock);
	last->next = cl->warm_head;
	if (cl->warm_head)
		cl->warm_head->prev = last;
	else
		cl->warm_tail = last;
	cl->warm_head = first;
	cl->nwarm += n;
	pthread_mutex_unlock(&p->lock);
}

int weft__stack_alloc(weft_stack_pool_t *p, weft_stack_cache_t *c, size_t size, weft_stack_t **out)
{
	if (!p || !c || !out)
		return -EINVAL;
	if (size == 0)
		size = WEFT_STACK_DEFAULT;
	if (size < WEFT_STACK_MIN || size > WEFT_STACK_MAX)
		return -EINVAL;
	unsigned k = class_of(p, size);
	if (!c->head[k]) {
		assert(c->count[k] == 0);
		uint32_t want = batch_of(k);
		if (take_warm(p, c, k, want) == 0 && take_cold(p, c, k, want) == 0) {
			int e = carve(p, c, k, want);
			if (e)
				return e;
		}
	}
	weft_stack_t *s = c->head[k];
	assert(s && s->cls == k && c->count[k] > 0);
	c->head[k] = s->next;
	if (!c->head[k])
		c->tail[k] = NULL;
	c->count[k]--;
	s->next = s->prev = NULL;
	/* Canary-only stacks: every time (the task before may have smashed it,
	 * a release zeroed it). Guarded stacks get none: writing it would make
	 * the stack's lowest page resident for every task. */
	if (s->guard == WEFT_GUARD_CANARY_ONLY)
		*(volatile uint64_t *)s->lo = WEFT_STACK_CANARY;
	atomic_fetch_add_explicit(&shard_of(p, c)->in_use, 1, memory_order_relaxed);
	*out = s;
	return 0;
}

void weft__stack_free(weft_stack_pool_t *p, weft_stack_cache_t *c, weft_stack_t *s)
{
	if (!s)
		return;
	assert(p && c);
	unsigned k = s->cls;
	assert(k < NCLASS && s->size == class_size(k) - WEFT_STACK_DESC);
	atomic_fetch_sub_explicit(&shard_of(p, c)->in_use, 1, memory_order_relaxed);
	s->next = c->head[k];
	if (!c->head[k])
		c->tail[k] = s;
	c->head[k] = s;
	uint32_t lim = cache_limit(k);
	if (++c->count[k] <= lim)
		return;
	/* Over the bound: keep the lim/2 most recently freed (warmest), give
	 * the colder rest to the pool in one batch. */
	uint32_t keep = lim / 2, n = c->count[k] - keep;
	weft_stack_t *spill, *last = NULL;
	if (keep == 0) {
		spill = c->head[k];
		c->head[k] = NULL;
	} else {
		last = c->head[k];
		for (uint32_t i = 1; i < keep; i++)
			last = last->next;
		spill = last->next;
		last->next = NULL;
	}
	weft_stack_t *spill_last = c->tail[k];
	c->tail[k] = last;
	c->count[k] = keep;
	put_warm(p, k, spill, spill_last, n);
}

void weft__stack_cache_flush(weft_stack_pool_t *p, weft_stack_cache_t *c)
{
	for (unsigned k = 0; k < NCLASS; k++) {
		if (!c->head[k])
			continue;
		put_warm(p, k, c->head[k], c->tail[k], c->count[k]);
		c->head[k] = c->tail[k] = NULL;
		c->count[k] = 0;
	}
}

/* ------------------------------------------------------------ background release */

/* Release up to `max` warm stacks of class k from the cold end of the warm
 * list. Returns how many. */
static size_t release_class(weft_stack_pool_t *p, unsigned k, size_t max)
{
	weft_stack_class_t *cl = &p->cls[k];
	size_t done = 0;
	while (done < max && !atomic_load_explicit(&p->release_refused, memory_order_relaxed)) {
		/* Under the lock: detach a batch from the tail, and make room in
		 * the cold vector first, so that nothing can fail once the memory
		 * is gone. */
		size_t keep = keep_of(p, k), n = 0;
		pthread_mutex_lock(&p->lock);
		size_t avail = cl->nwarm > keep ? cl->nwarm - keep : 0;
		size_t want = cl->to_release < avail ? cl->to_release : avail;
		if (want > max - done)
			want = max - done;
		if (want > ADVISE_MAX)
			want = ADVISE_MAX;
		while (n < want) {
			weft_stack_t *s = cl->warm_tail;
			cl->warm_tail = s->prev;
			if (cl->warm_tail)
				cl->warm_tail->next = NULL;
			else
				cl->warm_head = NULL;
			batch_desc[n++] = s;
		}
		cl->nwarm -= n;
		cl->to_release -= n;
		for (int w = 0; w < WEFT_STACK_SCAVENGE_WINDOW; w++)
			cl->lows[w] = cl->lows[w] > n ? cl->lows[w] - n : 0;
		if (cl->nwarm < cl->warm_min)
			cl->warm_min = cl->nwarm;
		pthread_mutex_unlock(&p->lock);
		if (n == 0)
			break;

		struct iovec *iov = advise_iov;
		for (size_t i = 0; i < n; i++) {
			weft_stack_t *s = batch_desc[i];
			assert(slot_guard(p, s->slab, s->slot) == s->guard || s->guard == WEFT_GUARD_CANARY_ONLY);
			batch_slab[i] = s->slab; /* the descriptor goes with the memory */
			batch_slot[i] = s->slot;
			iov[i] = (struct iovec){s->lo, class_size(k)};
		}
		bool batched = advise_batch(p, iov, n, MADV_DONTNEED, A_RELEASE);
		size_t kept = 0;
		pthread_mutex_lock(&p->lock);
		for (size_t i = 0; i < n; i++) {
			weft_stack_t *s = batch_desc[i];
			if (batched || madvise(iov[i].iov_base, iov[i].iov_len, MADV_DONTNEED) == 0) {
				weft_slab_t *sl = batch_slab[i];
				uint32_t slot = batch_slot[i];
				assert(!(sl->cold[slot / 64] >> (slot % 64) & 1));
				sl->cold[slot / 64] |= (uint64_t)1 << (slot % 64);
				if (sl->ncold++ == 0) {
					sl->next_cold = cl->cold_slabs;
					cl->cold_slabs = sl;
				}
				cl->ncold++;
				continue;
			}
			/* Locked memory (mlockall) refuses: the stack stays warm, and
			 * the pool stops trying. */
			atomic_store_explicit(&p->release_refused, true, memory_order_relaxed);
			s->prev = NULL;
			s->next = cl->warm_head;
			if (cl->warm_head)
				cl->warm_head->prev = s;
			else
				cl->warm_tail = s;
			cl->warm_head = s;
			cl->nwarm++;
			kept++;
		}
		pthread_mutex_unlock(&p->lock);
		atomic_fetch_add_explicit(&p->released, n - kept, memory_order_relaxed);
		done += n - kept;
	}
	return done;
}

size_t weft__stack_scavenge(weft_stack_pool_t *p, int64_t now)
{
	if (!p || atomic_load_explicit(&p->scavenging, memory_order_relaxed) ||
	    atomic_exchange_explicit(&p->scavenging, true, memory_order_acquire))
		return 0;
	int64_t start = atomic_load_explicit(&p->period_start, memory_order_relaxed);
	if (now - start >= WEFT_STACK_SCAVENGE_NS) {
		/* A period ended: what never left the warm list is surplus. */
		atomic_store_explicit(&p->period_start, now, memory_order_relaxed);
		bool any = false;
		pthread_mutex_lock(&p->lock);
		for (unsigned k = 0; k < NCLASS; k++) {
			weft_stack_class_t *cl = &p->cls[k];
			size_t keep = keep_of(p, k), low = cl->warm_min;
			memmove(cl->lows + 1, cl->lows, (WEFT_STACK_SCAVENGE_WINDOW - 1) * sizeof cl->lows[0]);
			cl->lows[0] = low;
			for (int w = 1; w < WEFT_STACK_SCAVENGE_WINDOW; w++)
				if (cl->lows[w] < low)
					low = cl->lows[w];
			cl->to_release = low > keep ? low - keep : 0;
			cl->warm_min = cl->nwarm;
			any |= cl->to_release != 0;
		}
		pthread_mutex_unlock(&p->lock);
		atomic_store_explicit(&p->release_pending, any, memory_order_relaxed);
	}
	size_t done = 0;
	if (atomic_load_explicit(&p->release_pending, memory_order_relaxed)) {
		for (unsigned k = 0; k < NCLASS && done < SCAVENGE_CHUNK; k++)
			done += release_class(p, k, SCAVENGE_CHUNK - done);
		if (done < SCAVENGE_CHUNK) /* every class had less than a chunk left: all done */
			atomic_store_explicit(&p->release_pending, false, memory_order_relaxed);
	}
	atomic_store_explicit(&p->scavenging, false, memory_order_release);
	return done;
}

/* ------------------------------------------------------------ lookups */

weft_stack_t *weft__stack_find_guard(weft_stack_pool_t *p, const void *addr)
{
	if (!p)
		return NULL;
	uintptr_t a = (uintptr_t)addr;
	/* Acquire: pairs with the release in slab_new. */
	for (weft_slab_t *sl = atomic_load_explicit(&p->slabs, memory_order_acquire); sl; sl = sl->next) {
		uintptr_t base = (uintptr_t)sl->base;
		if (a < base || a - base >= sl->len)
			continue;
		size_t i = (a - base) / sl->slot, off = (a - base) % sl->slot;
		if (off >= p->guard + CANARY_ZONE)
			return NULL;
		return (weft_stack_t *)(sl->base + (i + 1) * sl->slot - WEFT_STACK_DESC);
	}
	return NULL;
}

void weft__stack_stats(weft_stack_pool_t *p, weft_stack_stats_t *out)
{
	memset(out, 0, sizeof *out);
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	out->mapped_bytes = p->mapped_bytes;
	for (unsigned k = 0; k < NCLASS; k++) {
		out->warm += p->cls[k].nwarm;
		out->cold += p->cls[k].ncold;
	}
	out->slabs = p->nslabs;
	pthread_mutex_unlock(&p->lock);
	out->in_use = in_use(p);
	out->populated = atomic_load_explicit(&p->populated, memory_order_relaxed);
	out->released = atomic_load_explicit(&p->released, memory_order_relaxed);
}
