/* arena.c - the bump allocator of arena.h.
 *
 * The arena is a list of chunks, the newest first; allocations bump a
 * pointer in the newest chunk. An allocation larger than a quarter of the
 * usual chunk gets a chunk of its own, linked after the newest one, so the
 * space left in the newest chunk is not thrown away.
 */
#include "arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <assert.h>

#define VM_ARENA_CHUNK 16384 /* bytes of payload in an ordinary chunk */

struct vm_chunk {
	struct vm_chunk *next;
	size_t size, used;
	alignas(8) unsigned char data[];
};

struct vm_arena {
	struct vm_chunk *head;
};

struct vm_arena *vm_arena_create(void)
{
	return calloc(1, sizeof(struct vm_arena));
}

static struct vm_chunk *vm_chunk_new(size_t size)
{
	if (size > SIZE_MAX - sizeof(struct vm_chunk))
		return NULL;
	struct vm_chunk *c = malloc(sizeof(struct vm_chunk) + size);
	if (!c)
		return NULL;
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
	if (size > VM_ARENA_CHUNK / 4) {
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
	struct vm_chunk *c = vm_chunk_new(VM_ARENA_CHUNK);
	if (!c)
		return NULL;
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
		free(c);
		c = next;
	}
	free(a);
}
