/* atom.c - the VM's atom table: interning names, and names by index.
 *
 * Readers never lock: an atom, once interned, keeps its index and its
 * struct vm_atom forever (until vm_atoms_free), and lives in a chunk of
 * VM_ATOM_CHUNK slots that never moves. A writer (under t->lock) fills the
 * slot with a release store before it publishes the new count with a
 * release store; a reader that holds an index got it from an intern or
 * from a value that reached it through some synchronising path, and loads
 * the chunk pointer and the slot with acquire, so it sees the whole name.
 *
 * Interning takes the mutex for the lookup too: the hash index (open
 * addressing, linear probing, at most half full) is rebuilt when it
 * grows, so it cannot be read without the lock. Interning is rare next to
 * reading names (the compiler interns; to_atom is the only run-time path).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"

static const char *const vm_fixed_names[VM_A_COUNT] = {
	"ok",	  "error",    "normal",	  "shutdown", "kill",	      "killed",	  "noproc",
	"exit",	  "down",     "badarith", "overflow", "badarg",	      "badmatch", "nomatch",
	"badkey", "badarity", "deadlock", "undef",    "system_limit",
};

static uint32_t vm_atom_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

static struct vm_atom *vm_atom_at(struct vm_atoms *t, uint32_t a)
{
	struct vm_atom **chunk = atomic_load_explicit(&t->chunks[a / VM_ATOM_CHUNK], memory_order_acquire);
	return __atomic_load_n(&chunk[a % VM_ATOM_CHUNK], __ATOMIC_ACQUIRE);
}

/* Double the index (under the lock): every atom is hashed in anew. */
static int vm_atoms_grow(struct vm_atoms *t)
{
	uint32_t cap = t->index_cap ? 2 * t->index_cap : 64;
	uint32_t *index = calloc(cap, sizeof *index);
	if (!index)
		return -ENOMEM;
	uint32_t n = atomic_load_explicit(&t->n, memory_order_relaxed);
	for (uint32_t a = 0; a < n; a++) {
		uint32_t i = vm_atom_at(t, a)->hash & (cap - 1);
		while (index[i])
			i = (i + 1) & (cap - 1);
		index[i] = a + 1;
	}
	free(t->index);
	t->index = index;
	t->index_cap = cap;
	return 0;
}

static int64_t vm_atoms_intern(struct vm_atoms *t, const char *s, size_t len)
{
	if (len > VM_ATOM_MAX_LEN)
		return -EINVAL;
	uint32_t h = vm_atom_hash(s, len);
	pthread_mutex_lock(&t->lock);
	uint32_t n = atomic_load_explicit(&t->n, memory_order_relaxed);
	int64_t r;
	if (2 * (n + 1) > t->index_cap && (r = vm_atoms_grow(t)) < 0)
		goto out;
	uint32_t i = h & (t->index_cap - 1);
	for (; t->index[i]; i = (i + 1) & (t->index_cap - 1)) {
		struct vm_atom *a = vm_atom_at(t, t->index[i] - 1);
		if (a->hash == h && a->len == len && memcmp(a->name, s, len) == 0) {
			r = t->index[i] - 1;
			goto out;
		}
	}
	r = -ENOSPC;
	if (n >= (uint32_t)VM_ATOM_CHUNK * VM_ATOM_CHUNKS)
		goto out;
	r = -ENOMEM;
	struct vm_atom **chunk = atomic_load_explicit(&t->chunks[n / VM_ATOM_CHUNK], memory_order_relaxed);
	if (!chunk) {
		chunk = calloc(VM_ATOM_CHUNK, sizeof *chunk);
		if (!chunk)
			goto out;
		atomic_store_explicit(&t->chunks[n / VM_ATOM_CHUNK], chunk, memory_order_release);
	}
	struct vm_atom *a = malloc(sizeof *a + len + 1);
	if (!a)
		goto out;
	a->len = (uint32_t)len;
	a->hash = h;
	memcpy(a->name, s, len);
	a->name[len] = 0;
	__atomic_store_n(&chunk[n % VM_ATOM_CHUNK], a, __ATOMIC_RELEASE);
	atomic_store_explicit(&t->n, n + 1, memory_order_release);
	t->index[i] = n + 1;
	r = n;
out:
	pthread_mutex_unlock(&t->lock);
	return r;
}

int64_t vm_atom_intern(vm_state *vm, const char *s, size_t len)
{
	if (!vm || (!s && len))
		return -EINVAL;
	return vm_atoms_intern(&vm->atoms, s, len);
}

const char *vm_atom_name(vm_state *vm, uint32_t atom, size_t *len)
{
	if (!vm || atom >= atomic_load_explicit(&vm->atoms.n, memory_order_acquire))
		return NULL;
	struct vm_atom *a = vm_atom_at(&vm->atoms, atom);
	assert(a);
	if (len)
		*len = a->len;
	return a->name;
}

int vm_atoms_init(struct vm_atoms *t)
{
	if (!t)
		return -EINVAL;
	memset(t, 0, sizeof *t);
	int e = pthread_mutex_init(&t->lock, NULL);
	if (e)
		return -e;
	for (uint32_t i = 0; i < VM_A_COUNT; i++) {
		int64_t a = vm_atoms_intern(t, vm_fixed_names[i], strlen(vm_fixed_names[i]));
		if (a < 0) {
			vm_atoms_free(t);
			return (int)a;
		}
		assert(a == i);
	}
	return 0;
}

void vm_atoms_free(struct vm_atoms *t)
{
	if (!t)
		return;
	uint32_t n = atomic_load_explicit(&t->n, memory_order_relaxed);
	for (uint32_t c = 0; c < VM_ATOM_CHUNKS; c++) {
		struct vm_atom **chunk = atomic_load_explicit(&t->chunks[c], memory_order_relaxed);
		if (!chunk)
			break;
		for (uint32_t i = 0; i < VM_ATOM_CHUNK && c * VM_ATOM_CHUNK + i < n; i++)
			free(chunk[i]);
		free(chunk);
		atomic_store_explicit(&t->chunks[c], NULL, memory_order_relaxed);
	}
	free(t->index);
	t->index = NULL;
	t->index_cap = 0;
	atomic_store_explicit(&t->n, 0, memory_order_relaxed);
	pthread_mutex_destroy(&t->lock);
}
