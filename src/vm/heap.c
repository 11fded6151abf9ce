/* heap.c - a process's heap: bump allocation and a copying collector.
 *
 * The heap is one space [start, end) allocated from by bumping top. When a
 * request does not fit, vm_gc copies the live objects into a new space
 * (Cheney's algorithm: the roots' objects are copied first, then the new
 * space is scanned left to right, copying what each scanned object points
 * at, until the scan reaches the allocation point) and frees the old one.
 * Roots (state.h): the registers stack[0, sp), tmp[0, ntmp), raised.
 *
 * A copied object's header is replaced by VM_OBJ_FORWARD with the new
 * address in its first payload word: every object has at least one
 * payload word (vm_alloc rounds up), so there is room for it. Objects
 * outside the old space (the VM's literals, static objects) are not heap
 * objects of this process and are left where they are.
 *
 * Sizing. After a collection the heap holds what is live plus the request
 * and twice that again free (VM_HEAP_GROWTH = 3), so the next collection
 * is at least that far away and copying costs a third of what is
 * allocated at worst. Since live is known only after copying, the copy
 * goes into a space the size of the used part plus need (live cannot
 * exceed it); if that space is too small for the target or more than 4
 * times larger, the live data is copied once more into one of the target
 * size (cheap when it is small, rare when it is not).
 * So a heap grows with its live size and shrinks when most of it died.
 *
 * Memory is reused, not returned: the space a collection copies out of is
 * kept (one spare) and serves as the next collection's new space when it
 * is large enough, so a steady heap allocates nothing and takes no page
 * faults per collection (on a VM a fault costs microseconds).
 *
 * Big strings (VM_OBJ_BIGSTR) hold a count on their off-heap bytes; the
 * heap keeps a list of those it references. After a collection, every
 * listed string whose object was not copied loses the heap's count.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "state.h"

#define VM_HEAP_MIN 256	 /* words: a new process's first heap (2 KiB) */
#define VM_HEAP_GROWTH 3 /* a heap holds this many times its live data after a collection */

static inline size_t round_words(size_t w)
{
	return (w + 7) & ~(size_t)7;
}

/* Spaces of VM_SPACE_MAP bytes or more are mapped with their pages
 * populated in the one call (one kernel entry instead of a fault per
 * page); smaller ones come from malloc. */
#define VM_SPACE_MAP ((size_t)256 << 10)

static vm_value *space_alloc(size_t words)
{
	size_t bytes = words * sizeof(vm_value);
	if (bytes < VM_SPACE_MAP)
		return malloc(bytes);
	void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	return m == MAP_FAILED ? NULL : m;
}

static void space_free(vm_value *s, size_t words)
{
	size_t bytes = words * sizeof(vm_value);
	if (!s)
		return;
	if (bytes < VM_SPACE_MAP)
		free(s);
	else
		munmap(s, bytes);
}

int vm_heap_init(vm_heap *h, size_t words)
{
	memset(h, 0, sizeof *h);
	h->min_words = words < VM_HEAP_MIN ? VM_HEAP_MIN : round_words(words);
	h->start = space_alloc(h->min_words);
	if (!h->start)
		return -ENOMEM;
	h->top = h->start;
	h->end = h->start + h->min_words;
	return 0;
}

static void big_release(struct vm_bigstr *b)
{
	if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
		free(b);
}

/* A space of at least words (the spare if it is big enough and not more
 * than 4 times too big), or NULL. */
static vm_value *space_get(vm_heap *h, size_t words, size_t *got)
{
	if (h->spare && h->spare_words >= words && h->spare_words <= 4 * words) {
		vm_value *s = h->spare;
		*got = h->spare_words;
		h->spare = NULL;
		return s;
	}
	*got = words;
	return space_alloc(words);
}

/* Keep s (words long) as the spare, freeing the smaller of the two. */
static void space_put(vm_heap *h, vm_value *s, size_t words)
{
	if (h->spare && h->spare_words >= words) {
		space_free(s, words);
		return;
	}
	space_free(h->spare, h->spare_words);
	h->spare = s;
	h->spare_words = words;
}

void vm_heap_free(vm_heap *h)
{
	space_free(h->spare, h->spare_words);
	for (size_t i = 0; i < h->noff; i++)
		big_release(h->off[i]);
	free(h->off);
	space_free(h->start, (size_t)(h->end - h->start));
	memset(h, 0, sizeof *h);
}

int vm_heap_add_big(vm_proc *p, struct vm_bigstr *b)
{
	vm_heap *h = &p->heap;
	if (h->noff == h->capoff) {
		size_t cap = h->capoff ? 2 * h->capoff : 16;
		struct vm_bigstr **n = realloc(h->off, cap * sizeof *n);
		if (!n)
			return -ENOMEM;
		h->off = n;
		h->capoff = cap;
	}
	h->off[h->noff++] = b;
	return 0;
}

/* ------------------------------------------------------------ copying */

struct copier {
	vm_value *from_lo, *from_hi; /* the space copied out of */
	vm_value *to;		     /* the allocation point in the new space */
	struct vm_bigstr **big;	     /* the big strings of the copied objects */
	size_t nbig;
};

/* The new address of the object v names (copying it if needed), or v
 * itself when v is no object of the old space. */
static inline vm_value evacuate(struct copier *c, vm_value v)
{
	if (!vm_is_obj(v))
		return v;
	vm_header *o = vm_obj(v);
	if ((vm_value *)o < c->from_lo || (vm_value *)o >= c->from_hi)
		return v; /* a literal or a static object */
	if (vm_hdr_kind(*o) == VM_OBJ_FORWARD)
		return vm_from_obj((void *)(uintptr_t)o[1]);
	size_t words = 1 + vm_hdr_size(*o);
	if (words < 2)
		words = 2;
	vm_header *n = c->to;
	for (size_t i = 0; i < words; i++) /* small objects: no call */
		n[i] = o[i];
	c->to += words;
	if (vm_hdr_kind(*o) == VM_OBJ_BIGSTR) {
		/* The copy takes a count of its own; the old list's counts
		 * all go after the collection. */
		struct vm_bigstr *b = (struct vm_bigstr *)(uintptr_t)o[1];
		atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
		c->big[c->nbig++] = b;
	}
	o[0] = vm_hdr(VM_OBJ_FORWARD, 1);
	o[1] = (vm_value)(uintptr_t)n;
	return vm_from_obj(n);
}

/* Copy everything reachable from p's roots out of [lo, hi) into `to`;
 * returns the new allocation point. big: room for one entry per big
 * string object of [lo, hi) (the heap's list has one per object). */
static vm_value *copy_live(vm_proc *p, vm_value *lo, vm_value *hi, vm_value *to, struct vm_bigstr **big, size_t *nbig)
{
	struct copier c = {lo, hi, to, big, 0};
	/* Slots above sp may hold values of frames gone since: they would
	 * dangle after this collection, so they go now. */
	for (uint32_t i = p->sp; i < p->stack_hw && i < p->stack_cap; i++)
		p->stack[i] = VM_NIL;
	p->stack_hw = p->sp;
	for (uint32_t i = 0; i < p->sp; i++)
		p->stack[i] = evacuate(&c, p->stack[i]);
	for (uint32_t i = 0; i < p->ntmp; i++)
		p->tmp[i] = evacuate(&c, p->tmp[i]);
	p->raised = evacuate(&c, p->raised);
	vm_value *scan = to;
	while (scan < c.to) {
		vm_header h = *scan;
		size_t size = vm_hdr_size(h);
		if (vm_hdr_kind(h) >= VM_OBJ_SCANNED)
			for (size_t i = 1; i <= size; i++)
				scan[i] = evacuate(&c, scan[i]);
		scan += 1 + size < 2 ? 2 : 1 + size;
	}
	*nbig = c.nbig;
	return c.to;
}

/* The heap's big-string list becomes nb (the survivors, counted anew);
 * the old list's counts are dropped. */
static void swap_big(vm_heap *h, struct vm_bigstr **nb, size_t n)
{
	for (size_t i = 0; i < h->noff; i++)
		big_release(h->off[i]);
	free(h->off);
	h->off = nb;
	h->noff = n;
	h->capoff = nb ? h->capoff : 0;
}

int vm_gc(vm_proc *p, size_t need)
{
	vm_heap *h = &p->heap;
	size_t used = (size_t)(h->top - h->start);
	size_t max = p->vm->max_heap_words;
	if (max && need > max)
		return -ENOMEM;
	/* Room for all of the used part (live cannot be more) and need: the
	 * first copy cannot run out. */
	size_t cap;
	vm_value *to = space_get(h, round_words(used + need), &cap);
	struct vm_bigstr **big = h->noff ? malloc(h->capoff * sizeof *big) : NULL;
	if (!to || (h->noff && !big)) {
		space_free(to, cap);
		free(big);
		return -ENOMEM;
	}
	size_t nbig, oldcap = (size_t)(h->end - h->start);
	vm_value *lo = h->start;
	vm_value *top = copy_live(p, lo, h->top, to, big, &nbig);
	swap_big(h, big, nbig);
	space_put(h, lo, oldcap);
	h->start = to;
	h->top = top;
	h->end = to + cap;
	size_t live = (size_t)(top - to);
	h->collections++;
	h->copied_words += live;
	size_t target = round_words(VM_HEAP_GROWTH * (live + need));
	if (target < h->min_words)
		target = h->min_words;
	if (max && live + need > max)
		return -ENOMEM; /* collected, but what is live leaves no room */
	if (max && target > max)
		target = max; /* (at least live + need) */
	if (cap >= target && cap <= 4 * target)
		return 0;
	/* Too tight (grow) or far too large (shrink): copy the live data once
	 * more into a space of the target size. If that cannot be had, the
	 * first copy serves: it has room for need. */
	size_t cap2;
	vm_value *to2 = space_get(h, target, &cap2);
	struct vm_bigstr **big2 = h->noff ? malloc(h->capoff * sizeof *big2) : NULL;
	if (!to2 || (h->noff && !big2)) {
		space_free(to2, cap2);
		free(big2);
		return 0;
	}
	vm_value *top2 = copy_live(p, to, top, to2, big2, &nbig);
	swap_big(h, big2, nbig);
	space_put(h, to, cap);
	h->start = to2;
	h->top = top2;
	h->end = to2 + cap2;
	return 0;
}
