/* arena.c - the bump allocator of arena.h.
 *
 * The arena is a list of chunks, the newest first; allocations bump a
 * pointer in the newest chunk. An allocation larger than a quarter of the
 * usual chunk gets a chunk of its own, linked after the newest one, so the
 * space left in the newest chunk is not thrown away.
 *
 * Ordinary chunks double in size (16 KiB up to 1 MiB), so a large parse
 * makes few of them; chunks of 256 KiB or more are mapped with their pages
 * populated in the one call (a fault per page costs microseconds on a
 * virtual machine).
 */
#include "arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <assert.h>
#include <stdbool.h>
#include <sys/mman.h>

#define VM_ARENA_CHUNK 16384		     /* bytes of payload in the first ordinary chunk */
#define VM_ARENA_CHUNK_MAX ((size_t)1 << 20) /* ... doubling up to this */
#define VM_ARENA_MAP ((size_t)256 << 10)     /* chunks from here on are mapped */

struct vm_chunk {
	struct vm_chunk *next;
	size_t size, used;
	bool mapped;
	alignas(8) unsigned char data[];
};

struct vm_arena {
	struct vm_chunk *head;
	size_t next_size; /* the next ordinary chunk's */
};

struct vm_arena *vm_arena_create(void)
{
	return calloc(1, sizeof(struct vm_arena));
}

static struct vm_chunk *vm_chunk_new(size_t size)
{
	if (size > SIZE_MAX - sizeof(struct vm_chunk))
		return NULL;
	size_t bytes = sizeof(struct vm_chunk) + size;
	bool mapped = bytes >= VM_ARENA_MAP;
	struct vm_chunk *c;
	if (mapped) {
		void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		c = m == MAP_FAILED ? NULL : m;
	} else {
		c = malloc(bytes);
	}
	if (!c)
		return NULL;
	c->mapped = mapped;
	c->next = NULL;
	c->size = size;
	c->used = 0;
	return c;
}

void *vm_arena_alloc(struct vm_arena *a, size_t size)
{
	if (!a || size > SIZE_MAX - 7)
		return NULL;
	size = size ? (size + 7) & ~(size_t)7 : 8;
	struct vm_chunk *h = a->head;
	if (h && h->size - h->used >= size) {
		void *p = h->data + h->used;
		h->used += size;
		assert(h->used <= h->size);
		return p;
	}
	if (!a->next_size)
		a->next_size = VM_ARENA_CHUNK;
	if (size > a->next_size / 4) {
		struct vm_chunk *big = vm_chunk_new(size);
		if (!big)
			return NULL;
		big->used = size;
		if (h) {
			big->next = h->next;
			h->next = big;
		} else {
			a->head = big;
		}
		return big->data;
	}
	struct vm_chunk *c = vm_chunk_new(a->next_size);
	if (!c)
		return NULL;
	if (a->next_size < VM_ARENA_CHUNK_MAX)
		a->next_size *= 2;
	c->next = h;
	a->head = c;
	c->used = size;
	return c->data;
}

char *vm_arena_strdup(struct vm_arena *a, const char *s, size_t len)
{
	if (!s && len > 0)
		return NULL;
	if (len == SIZE_MAX)
		return NULL;
	char *d = vm_arena_alloc(a, len + 1);
	if (!d)
		return NULL;
	if (len)
		memcpy(d, s, len);
	d[len] = 0;
	return d;
}

void vm_arena_destroy(struct vm_arena *a)
{
	if (!a)
		return;
	struct vm_chunk *c = a->head;
	while (c) {
		struct vm_chunk *next = c->next;
		if (c->mapped)
			munmap(c, sizeof(struct vm_chunk) + c->size);
		else
			free(c);
		c = next;
	}
	free(a);
}
