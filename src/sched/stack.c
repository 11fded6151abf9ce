/* stack.c - coroutine stacks: slabs, guard pages, per-worker caches, global pool.
 *
 * Design
 * ------
 * A slab is one anonymous mapping holding `nslots` stacks of one size class.
 * Slot i is [base + i*slot, base + (i+1)*slot), slot = guard + class size: a
 * guard region of GUARD_PAGES pages, then the usable stack, lo = slot start +
 * guard. Slabs are never
 * unmapped before the pool is destroyed, so a descriptor (weft_stack_t) stays
 * valid for the life of the pool. Descriptors live in an array beside the
 * slab, not in the stack memory: MADV_DONTNEED zeroes the stack, and the
 * descriptor of a released stack must survive it.
 *
 * Where a free stack can be (each stack is in exactly one place):
 *   - handed out to a task            counted in `in_use`
 *   - in a weft_stack_cache_t         known only to its owner thread
 *   - in the global pool, resident    pool->cls[].res list
 *   - in the global pool, released    pool->cls[].rel list (MADV_DONTNEED'd)
 *   - not carved yet                  slab->used <= index < slab->nslots
 *
 * Batched advice: where the kernel allows madvise advice on ourselves through
 * process_madvise (Linux >= 6.13), the guards of a carved batch and the
 * MADV_DONTNEED of a spilled batch are one system call, which also batches
 * the TLB flushes (an IPI to every CPU running the process, otherwise paid
 * per stack); else, or if the batched call falls short, one call per stack.
 *
 * Movement: alloc pops the cache; an empty cache takes a batch from the pool
 * (resident stacks first), and when the pool has none, carves a batch of new
 * slots from the class's current slab (mapping a new slab when it is full).
 * Free pushes onto the cache; a cache above its bound moves its coldest
 * stacks, in one batch, to the pool. Everything that is a syscall per stack
 * (installing a guard, MADV_DONTNEED) happens outside the pool mutex; the
 * mutex covers only list splicing, slot reservation and slab creation (one
 * mmap per 4..64 MiB of stacks).
 *
 * Resident budget: pool->resident_bytes sums the usable size of the resident
 * stacks in the pool (plus reservations for stacks about to enter it). A stack
 * enters the pool resident only if it can reserve its size under cache_bytes;
 * otherwise it is MADV_DONTNEED'd first. "Resident" is an upper bound: a stack
 * that ran counts its full usable size, whatever its task touched.
 *
 * Guards: chosen once per pool (probe of MADV_GUARD_INSTALL, or the
 * WEFT_STACK_GUARD environment variable) and installed once per slot, when it
 * is carved; guards survive MADV_DONTNEED of the usable range, so a recycled
 * slot keeps its guard. A guard that cannot be installed (mprotect budget
 * spent, or the call failing) leaves that stack with its canary only; its
 * s->guard says so.
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

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef PIDFD_SELF
#define PIDFD_SELF -10000 /* the calling process, for pidfd-taking calls (Linux >= 6.15) */
#endif

#define NCLASS 19			     /* 4 KiB << 0 .. 4 KiB << 18 = 1 GiB */
#define SLAB_MIN ((size_t)4 << 20)	     /* first slab of a class */
#define SLAB_MAX ((size_t)64 << 20)	     /* slabs double up to this */
#define CACHE_MAX_STACKS 64u		     /* per class, per cache */
#define CACHE_MAX_BYTES ((size_t)4 << 20)    /* per class, per cache */
#define GUARD_PAGES 16 /* 64 KiB with 4 KiB pages: frames up to that size are caught */
#define CANARY_ZONE 256			     /* bytes above lo that count as the guard */
#define NSHARD 16			     /* in_use counter shards */

_Static_assert(NCLASS <= sizeof(((weft_stack_cache_t *)0)->head) / sizeof(void *), "cache has a slot per class");
_Static_assert(((size_t)4096 << (NCLASS - 1)) == WEFT_STACK_MAX, "classes end at WEFT_STACK_MAX");

typedef struct weft_slab {
	struct weft_slab *next; /* older slab; immutable once published */
	char *base;
	size_t len;    /* nslots * slot */
	size_t slot;   /* guard + class size */
	uint32_t nslots;
	uint32_t used; /* carved slots; under pool->lock */
	weft_stack_t desc[];
} weft_slab_t;

typedef struct weft_stack_class {
	weft_stack_t *res, *rel; /* free in the pool: resident / released */
	size_t nres, nrel;
	weft_slab_t *cur;	 /* slab being carved */
	unsigned nslabs;
} weft_stack_class_t;

/* in_use is changed on every alloc and free, by every worker; one shared
 * counter would bounce its cache line between them. Each cache updates the
 * shard its address hashes to, so workers mostly touch different lines; a
 * stack freed through another cache than it came from only moves the count
 * between shards (the sum, modulo 2^64, stays right). */
typedef struct weft_stack_shard {
	alignas(64) _Atomic size_t in_use;
} weft_stack_shard_t;

struct weft_stack_pool {
	pthread_mutex_t lock;
	weft_stack_class_t cls[NCLASS];
	size_t mapped_bytes, nslabs, nres, nrel; /* under lock */
	size_t mprotect_used;			 /* under lock */
	_Atomic(weft_slab_t *) slabs;		 /* newest first; see "Signal safety" */
	size_t page, guard, cache_bytes, mprotect_budget; /* guard = GUARD_PAGES pages */
	weft_guard_kind_t mode;
	_Atomic bool batch_advice; /* process_madvise on ourselves works (cleared at its first refusal) */
	alignas(64) _Atomic size_t resident_bytes;
	weft_stack_shard_t shard[NSHARD];
};

static size_t class_size(unsigned cls)
{
	return (size_t)4096 << cls;
}

/* Smallest class holding `size` usable bytes, and at least a page. */
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

int weft__stack_pool_create(weft_stack_pool_t **out, size_t cache_bytes, size_t mprotect_budget)
{
	if (!out)
		return -EINVAL;
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096;
	if (page > WEFT_STACK_MAX)
		return -EINVAL;
	size_t sz = (sizeof(weft_stack_pool_t) + 63) & ~(size_t)63;
	weft_stack_pool_t *p = aligned_alloc(64, sz);
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
	p->cache_bytes = cache_bytes;
	p->mprotect_budget = mprotect_budget;
	p->mode = choose_guard(page, mprotect_budget);
	atomic_init(&p->batch_advice, true);
	atomic_init(&p->slabs, NULL);
	atomic_init(&p->resident_bytes, 0);
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
	weft_slab_t *sl = atomic_load_explicit(&p->slabs, memory_order_relaxed);
	while (sl) {
		weft_slab_t *next = sl->next;
		munmap(sl->base, sl->len);
		free(sl);
		sl = next;
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}

weft_guard_kind_t weft__stack_guard_kind(const weft_stack_pool_t *p)
{
	return p->mode;
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
	size_t len = n * slot;
	weft_slab_t *sl = malloc(sizeof *sl + n * sizeof(weft_stack_t));
	if (!sl)
		return -ENOMEM;
	/* MAP_STACK makes the kernel (>= 6.7) keep transparent huge pages out,
	 * which MADV_NOHUGEPAGE does on older ones: a 2 MiB page behind 30
	 * small stacks would make each one resident in full and defeat
	 * MADV_DONTNEED of a single stack. Failure of the hint is harmless. */
	char *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
			  -1, 0);
	if (base == MAP_FAILED) {
		free(sl);
		return -ENOMEM;
	}
	(void)madvise(base, len, MADV_NOHUGEPAGE);
	sl->base = base;
	sl->len = len;
	sl->slot = slot;
	sl->nslots = (uint32_t)n;
	sl->used = 0;
	for (size_t i = 0; i < n; i++) {
		sl->desc[i] = (weft_stack_t){
			.lo = base + i * slot + p->guard,
			.size = class_size(k),
			.cls = (uint8_t)k,
			.guard = WEFT_GUARD_CANARY_ONLY,
		};
	}
	sl->next = atomic_load_explicit(&p->slabs, memory_order_relaxed);
	/* Release: a signal handler that finds this slab sees it built. */
	atomic_store_explicit(&p->slabs, sl, memory_order_release);
	c->cur = sl;
	c->nslabs++;
	p->nslabs++;
	p->mapped_bytes += len;
	return 0;
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
 * advise them all (the caller then goes range by range: both advices used
 * here are idempotent). */
static bool advise_batch(weft_stack_pool_t *p, const struct iovec *iov, size_t n, int advice)
{
#ifdef SYS_process_madvise
	if (n == 0 || !atomic_load_explicit(&p->batch_advice, memory_order_relaxed))
		return false;
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += iov[i].iov_len;
	long r = syscall(SYS_process_madvise, PIDFD_SELF, iov, n, advice, 0);
	if (r == (long)total)
		return true;
	if (r < 0 && errno != EAGAIN && errno != EINTR)
		atomic_store_explicit(&p->batch_advice, false, memory_order_relaxed); /* old kernel: stop trying */
	return false;
#else
	(void)p, (void)iov, (void)n, (void)advice;
	return false;
#endif
}

#define ADVISE_MAX 64 /* ranges per batched call (batches are at most 32 stacks) */

/* Scratch for batched advice, per thread: carve and put run on the spawning
 * or exiting task's stack, which may be as small as 4 KiB. */
static __thread struct iovec advise_iov[ADVISE_MAX];
static __thread weft_stack_t *advise_which[ADVISE_MAX];

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
	if (p->mode == WEFT_GUARD_MADVISE && n <= ADVISE_MAX) {
		struct iovec *iov = advise_iov;
		for (uint32_t i = 0; i < n; i++)
			iov[i] = (struct iovec){(char *)sl->desc[first + i].lo - p->guard, p->guard};
		batched = advise_batch(p, iov, n, MADV_GUARD_INSTALL);
	}
	/* Push them in reverse so that the cache hands them out in address
	 * order. */
	for (uint32_t i = n; i-- > 0;) {
		weft_stack_t *s = &sl->desc[first + i];
		weft_guard_kind_t g = p->mode;
		if (g == WEFT_GUARD_MPROTECT && i >= nmprotect)
			g = WEFT_GUARD_CANARY_ONLY;
		if (g != WEFT_GUARD_CANARY_ONLY && !batched && !install_guard((char *)s->lo - p->guard, p->guard, g))
			g = WEFT_GUARD_CANARY_ONLY;
		s->guard = (uint8_t)g;
		s->resident = false;
		s->next = c->head[k];
		c->head[k] = s;
		c->count[k]++;
	}
	return 0;
}

/* Move up to `want` stacks of class k from the pool onto the cache list:
 * resident ones first, and on top of the list, so that the cache hands out
 * warm memory before released memory. Returns how many. */
static uint32_t take(weft_stack_pool_t *p, weft_stack_cache_t *c, unsigned k, uint32_t want)
{
	weft_stack_class_t *cl = &p->cls[k];
	size_t res_bytes = 0;
	pthread_mutex_lock(&p->lock);
	uint32_t nres = cl->nres < want ? (uint32_t)cl->nres : want;
	uint32_t nrel = cl->nrel < want - nres ? (uint32_t)cl->nrel : want - nres;
	for (uint32_t i = 0; i < nrel; i++) {
		weft_stack_t *s = cl->rel;
		cl->rel = s->next;
		s->next = c->head[k];
		c->head[k] = s;
	}
	for (uint32_t i = 0; i < nres; i++) {
		weft_stack_t *s = cl->res;
		cl->res = s->next;
		res_bytes += s->size;
		s->next = c->head[k];
		c->head[k] = s;
	}
	cl->nrel -= nrel;
	cl->nres -= nres;
	p->nrel -= nrel;
	p->nres -= nres;
	pthread_mutex_unlock(&p->lock);
	c->count[k] += nres + nrel;
	/* Relaxed: a budget, not a publication; the stacks went through the lock. */
	atomic_fetch_sub_explicit(&p->resident_bytes, res_bytes, memory_order_relaxed);
	return nres + nrel;
}

/* Reserve `size` bytes of the pool's resident budget. */
static bool reserve_resident(weft_stack_pool_t *p, size_t size)
{
	size_t cur = atomic_load_explicit(&p->resident_bytes, memory_order_relaxed);
	do {
		if (size > p->cache_bytes || cur > p->cache_bytes - size)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&p->resident_bytes, &cur, cur + size, memory_order_relaxed,
							memory_order_relaxed));
	return true;
}

/* MADV_DONTNEED m stacks: batched, else one by one. Locked memory
 * (mlockall) refuses DONTNEED: such a stack stays resident, over budget, and
 * is counted so. */
static void release_chunk(weft_stack_pool_t *p, const struct iovec *iov, weft_stack_t **which, size_t m)
{
	if (m == 0)
		return;
	bool batched = advise_batch(p, iov, m, MADV_DONTNEED);
	for (size_t i = 0; i < m; i++) {
		if (batched || madvise(iov[i].iov_base, iov[i].iov_len, MADV_DONTNEED) == 0)
			which[i]->resident = false;
		else
			atomic_fetch_add_explicit(&p->resident_bytes, which[i]->size, memory_order_relaxed);
	}
}

/* Give a list of n stacks of class k to the pool. */
static void put(weft_stack_pool_t *p, unsigned k, weft_stack_t *list, uint32_t n)
{
	/* Those over the resident budget give their memory back, a chunk of
	 * them per system call where possible (release_chunk). */
	struct iovec *iov = advise_iov;
	weft_stack_t **which = advise_which;
	size_t m = 0;
	for (weft_stack_t *s = list; s; s = s->next) {
		assert(s->cls == k);
		if (!s->resident || reserve_resident(p, s->size))
			continue;
		iov[m] = (struct iovec){s->lo, s->size};
		which[m++] = s;
		if (m == ADVISE_MAX) {
			release_chunk(p, iov, which, m);
			m = 0;
		}
	}
	release_chunk(p, iov, which, m);
	weft_stack_class_t *cl = &p->cls[k];
	uint32_t seen = 0;
	pthread_mutex_lock(&p->lock);
	while (list) {
		weft_stack_t *s = list;
		list = s->next;
		if (s->resident) {
			s->next = cl->res;
			cl->res = s;
			cl->nres++;
			p->nres++;
		} else {
			s->next = cl->rel;
			cl->rel = s;
			cl->nrel++;
			p->nrel++;
		}
		seen++;
	}
	pthread_mutex_unlock(&p->lock);
	assert(seen == n);
	(void)seen;
	(void)n;
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
		if (take(p, c, k, want) == 0) {
			int e = carve(p, c, k, want);
			if (e)
				return e;
		}
	}
	weft_stack_t *s = c->head[k];
	assert(s && s->cls == k && c->count[k] > 0);
	c->head[k] = s->next;
	c->count[k]--;
	s->next = NULL;
	/* Canary-only stacks: every time (the task before may have smashed it,
	 * DONTNEED zeroed it). Guarded stacks get none: writing it would make the
	 * stack's lowest page resident for every task. */
	if (s->guard == WEFT_GUARD_CANARY_ONLY)
		*(volatile uint64_t *)s->lo = WEFT_STACK_CANARY;
	s->resident = true;
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
	assert(k < NCLASS && s->size == class_size(k) && s->resident);
	atomic_fetch_sub_explicit(&shard_of(p, c)->in_use, 1, memory_order_relaxed);
	s->next = c->head[k];
	c->head[k] = s;
	uint32_t lim = cache_limit(k);
	if (++c->count[k] <= lim)
		return;
	/* Over the bound: keep the lim/2 most recently freed (warmest), give
	 * the colder rest to the pool in one batch. */
	uint32_t keep = lim / 2, n = c->count[k] - keep;
	weft_stack_t *spill;
	if (keep == 0) {
		spill = c->head[k];
		c->head[k] = NULL;
	} else {
		weft_stack_t *last = c->head[k];
		for (uint32_t i = 1; i < keep; i++)
			last = last->next;
		spill = last->next;
		last->next = NULL;
	}
	c->count[k] = keep;
	put(p, k, spill, n);
}

void weft__stack_cache_flush(weft_stack_pool_t *p, weft_stack_cache_t *c)
{
	for (unsigned k = 0; k < NCLASS; k++) {
		if (!c->head[k])
			continue;
		put(p, k, c->head[k], c->count[k]);
		c->head[k] = NULL;
		c->count[k] = 0;
	}
}

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
		return off < p->guard + CANARY_ZONE ? &sl->desc[i] : NULL;
	}
	return NULL;
}

/* in_use: handed out and not freed. cached: free in the global pool and
 * resident. released: free in the global pool and holding no memory (returned
 * with MADV_DONTNEED, or carved and never used). Stacks in per-worker caches
 * are in none of them. slabs: mmaps made (the kernel may merge neighbours,
 * and mprotect guards split them, so /proc/self/maps differs). */
void weft__stack_stats(weft_stack_pool_t *p, weft_stack_stats_t *out)
{
	memset(out, 0, sizeof *out);
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	out->mapped_bytes = p->mapped_bytes;
	out->cached = p->nres;
	out->released = p->nrel;
	out->slabs = p->nslabs;
	pthread_mutex_unlock(&p->lock);
	out->in_use = in_use(p);
}
