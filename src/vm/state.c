/* state.c - creating and freeing a VM instance and a process's state; the
 * literal area; raising errors from C. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"

#define VM_LIT_CHUNK 8192 /* words */
#define VM_STACK_FIRST 256

int vm_state_init(vm_state *vm)
{
	memset(vm, 0, sizeof *vm);
	int e = vm_atoms_init(&vm->atoms);
	if (e)
		return e;
	pthread_mutex_init(&vm->lit_lock, NULL);
	vm->args = VM_EMPTY;
	vm->out_fd = 1;
	vm->seed = 0x5eedULL;
	vm_header *t = vm_lit_alloc(vm, 4);
	if (!t) {
		vm_state_free(vm);
		return -ENOMEM;
	}
	t[0] = vm_hdr(VM_OBJ_TUPLE, 3);
	t[1] = vm_from_atom(VM_A_ERROR);
	t[2] = vm_from_atom(VM_A_SYSTEM_LIMIT);
	t[3] = VM_NIL;
	vm->system_limit = vm_from_obj(t);
	return 0;
}

void vm_state_free(vm_state *vm)
{
	struct vm_lit_chunk *c = vm->lits;
	while (c) {
		struct vm_lit_chunk *n = c->next;
		/* Big strings among the literals hold a count each. */
		size_t i = 0;
		while (i < c->used) {
			vm_header h = c->w[i];
			if (vm_hdr_kind(h) == VM_OBJ_BIGSTR) {
				struct vm_bigstr *b = (struct vm_bigstr *)(uintptr_t)c->w[i + 1];
				if (atomic_fetch_sub(&b->refs, 1) == 1)
					free(b);
			}
			size_t words = 1 + vm_hdr_size(h);
			i += words < 2 ? 2 : words;
		}
		free(c);
		c = n;
	}
	vm->lits = NULL;
	pthread_mutex_destroy(&vm->lit_lock);
	vm_atoms_free(&vm->atoms);
}

vm_header *vm_lit_alloc(vm_state *vm, size_t words)
{
	if (words < 2)
		words = 2;
	pthread_mutex_lock(&vm->lit_lock);
	struct vm_lit_chunk *c = vm->lits;
	if (!c || c->cap - c->used < words) {
		size_t cap = words > VM_LIT_CHUNK ? words : VM_LIT_CHUNK;
		struct vm_lit_chunk *n = malloc(sizeof *n + cap * sizeof(vm_value));
		if (!n) {
			pthread_mutex_unlock(&vm->lit_lock);
			return NULL;
		}
		n->used = 0;
		n->cap = cap;
		n->next = c;
		vm->lits = c = n;
	}
	vm_header *o = &c->w[c->used];
	c->used += words;
	/* Whoever fills it writes a header; until then it is a dead word
	 * pair, which vm_state_free's walk skips. */
	o[0] = vm_hdr(VM_OBJ_BIGINT, words - 1);
	pthread_mutex_unlock(&vm->lit_lock);
	return o;
}

vm_value vm_lit_str(vm_state *vm, const char *s, size_t len)
{
	if (len >= VM_BIGSTR_MIN) {
		struct vm_bigstr *b = malloc(sizeof *b + len + 1);
		vm_header *o = b ? vm_lit_alloc(vm, 2) : NULL;
		if (!o) {
			free(b);
			return VM_NIL;
		}
		atomic_init(&b->refs, 1);
		b->len = len;
		memcpy(b->bytes, s, len);
		b->bytes[len] = 0;
		o[0] = vm_hdr(VM_OBJ_BIGSTR, 1);
		o[1] = (vm_value)(uintptr_t)b;
		return vm_from_obj(o);
	}
	size_t words = 2 + (len + 8) / 8;
	vm_header *o = vm_lit_alloc(vm, words);
	if (!o)
		return VM_NIL;
	memset(o, 0, words * sizeof *o);
	o[0] = vm_hdr(VM_OBJ_STR, words - 1);
	o[1] = len;
	memcpy(o + 2, s, len);
	return vm_from_obj(o);
}

int vm_proc_init(vm_proc *p, vm_state *vm)
{
	memset(p, 0, sizeof *p);
	p->vm = vm;
	p->raised = VM_NIL;
	int e = vm_heap_init(&p->heap, 0);
	if (e)
		return e;
	p->stack = malloc(VM_STACK_FIRST * sizeof *p->stack);
	if (!p->stack) {
		vm_proc_free(p);
		return -ENOMEM;
	}
	p->stack_cap = VM_STACK_FIRST;
	for (uint32_t i = 0; i < VM_STACK_FIRST; i++)
		p->stack[i] = VM_NIL;
	return 0;
}

void vm_proc_free(vm_proc *p)
{
	vm_heap_free(&p->heap);
	free(p->stack);
	free(p->handlers);
	free(p->trace);
	p->stack = NULL;
	p->handlers = NULL;
	p->trace = NULL;
}

/* ------------------------------------------------------------ raising */

int vm_raise(vm_proc *p, vm_value v)
{
	p->raised = v;
	return VM_RAISE;
}

int vm_raise2(vm_proc *p, uint32_t kind_atom, vm_value detail)
{
	/* detail survives the collection as p->raised, its root */
	p->raised = detail;
	if (vm_need(p, 4)) {
		p->raised = p->vm->system_limit;
		return VM_RAISE;
	}
	vm_header *t = vm_take(p, 4);
	t[0] = vm_hdr(VM_OBJ_TUPLE, 3);
	t[1] = vm_from_atom(VM_A_ERROR);
	t[2] = vm_from_atom(kind_atom);
	t[3] = p->raised;
	p->raised = vm_from_obj(t);
	return VM_RAISE;
}

int vm_raise_atom(vm_proc *p, uint32_t atom)
{
	return vm_raise2(p, atom, VM_NIL);
}
