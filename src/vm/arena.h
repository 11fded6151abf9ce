/* arena.h - a bump allocator in chunks, freed all at once (the parser's
 * tree and the compiler's scratch live in one).
 *
 * Allocations are 8-byte aligned and never freed one by one: the arena
 * owns them and vm_arena_destroy frees every one. An arena is used by one
 * thread at a time.
 */
#ifndef WEFT_VM_ARENA_H
#define WEFT_VM_ARENA_H

#include <stddef.h>

struct vm_arena;

/* A new, empty arena, or NULL if out of memory. */
struct vm_arena *vm_arena_create(void);

/* size bytes (uninitialised, 8-byte aligned, valid until the arena is
 * destroyed), or NULL if out of memory or a is NULL. A size of 0 gives a
 * valid pointer too. */
void *vm_arena_alloc(struct vm_arena *a, size_t size);

/* A copy of the len bytes at s (which may hold NULs), followed by a NUL,
 * or NULL if out of memory or a is NULL (or s is NULL with len > 0). */
char *vm_arena_strdup(struct vm_arena *a, const char *s, size_t len);

/* Frees the arena and everything allocated from it; NULL is a no-op. */
void vm_arena_destroy(struct vm_arena *a);

#endif
