/* state.h - a VM instance (vm_state: atoms, loaded code) and a process's
 * state (vm_proc: its heap, registers, call frames).
 *
 * A process owns its heap: every heap value a process's registers hold
 * lives in its own heap, in the VM's literal area (constants the compiler
 * made, immortal), or off-heap (counted big strings). Nothing points into
 * another process's heap: messages and spawn arguments are copied.
 *
 * Allocation (heap.c). C code that builds values first makes room with
 * vm_need(p, words), which may run a collection, and then takes up to that
 * many words with vm_take without any further check. A collection moves
 * every object of the heap: the roots are p's registers (stack[0, sp)),
 * p->tmp[0, ntmp) and p->raised; a heap value held anywhere else (a C
 * local) is stale after a vm_need. So a built-in reads its arguments from
 * the argument registers again after each vm_need.
 */
#ifndef WEFT_VM_STATE_H
#define WEFT_VM_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "value.h"

typedef struct vm_state vm_state;
typedef struct vm_proc vm_proc;
typedef struct vm_proto vm_proto; /* a compiled function (code.h) */

/* ------------------------------------------------------------ atoms */

/* The atoms every VM has, interned first, in this order (atom.c). */
enum vm_fixed_atom {
	VM_A_OK,
	VM_A_ERROR,
	VM_A_NORMAL,
	VM_A_SHUTDOWN,
	VM_A_KILL,
	VM_A_KILLED,
	VM_A_NOPROC,
	VM_A_EXIT,
	VM_A_DOWN,
	VM_A_BADARITH,
	VM_A_OVERFLOW,
	VM_A_BADARG,
	VM_A_BADMATCH,
	VM_A_NOMATCH,
	VM_A_BADKEY,
	VM_A_BADARITY,
	VM_A_DEADLOCK,
	VM_A_UNDEF,	   /* a call of something that is not a function */
	VM_A_SYSTEM_LIMIT, /* out of memory, stack too deep */
	VM_A_COUNT
};

/* The atom table: names by index, read without a lock (chunks that never
 * move); interning under a mutex, with a hash index. */
#define VM_ATOM_CHUNK 4096
#define VM_ATOM_CHUNKS 1024 /* at most 4M atoms */
#define VM_ATOM_MAX_LEN 255

struct vm_atom {
	uint32_t len;
	uint32_t hash;
	char name[]; /* NUL-terminated */
};

struct vm_atoms {
	pthread_mutex_t lock;
	_Atomic(struct vm_atom **) chunks[VM_ATOM_CHUNKS];
	_Atomic uint32_t n;
	uint32_t *index; /* open addressing: atom + 1, 0 empty */
	uint32_t index_cap;
};

/* The atom named s (len bytes): its index, or -ENOMEM, -EINVAL (longer
 * than VM_ATOM_MAX_LEN), -ENOSPC (the table is full). */
int64_t vm_atom_intern(vm_state *vm, const char *s, size_t len);
/* The atom's name (NUL-terminated), its length in *len if len is not NULL. */
const char *vm_atom_name(vm_state *vm, uint32_t atom, size_t *len);
int vm_atoms_init(struct vm_atoms *t);
void vm_atoms_free(struct vm_atoms *t);

/* ------------------------------------------------------------ the VM */

/* The literal area: heap objects the compiler builds (constant strings,
 * tuples, closures of top-level functions), in chunks freed with the VM. */
struct vm_lit_chunk {
	struct vm_lit_chunk *next;
	size_t used, cap; /* words */
	vm_value w[];
};

struct vm_state {
	struct vm_atoms atoms;
	pthread_mutex_t lit_lock;
	struct vm_lit_chunk *lits;
	uint64_t seed;		 /* the program seed (WEFT_SEED) */
	vm_value args;		 /* args(): a list of strings (literal area), VM_EMPTY by default */
	int out_fd;		 /* print writes here (1 by default), one write per call */
	int halt_status;	 /* set by halt() before it returns VM_HALT */
	struct vm_program *prog; /* the program it runs (compile.h) */
	bool gc_stress;		 /* WEFT_GC_STRESS=1: collect at every allocation (testing) */
	size_t max_heap_words;	 /* a process's heap may not grow past this (0: no limit) */
	vm_value system_limit;	 /* (:error, :system_limit, nil), made once: raised when even that
				  * tuple could not be made */
};

/* A word block in the literal area (never collected), or NULL. A big
 * string object made there holds one count on its bytes (dropped when
 * the VM is freed). Thread-safe. */
vm_header *vm_lit_alloc(vm_state *vm, size_t words);

/* A string in the literal area (a big one off-heap, counted once), or
 * VM_NIL when out of memory. */
vm_value vm_lit_str(vm_state *vm, const char *s, size_t len);

/* state.c: 0 or -ENOMEM. */
int vm_state_init(vm_state *vm);
void vm_state_free(vm_state *vm);

/* ------------------------------------------------------------ a heap */

typedef struct vm_heap {
	vm_value *start, *top, *end; /* the space: [start, end), next free word at top */
	struct vm_bigstr **off;	     /* big strings this heap references (one count each) */
	size_t noff, capoff;
	size_t min_words; /* never shrinks below */
	vm_value *spare;  /* the last collection's old space, kept for the next one */
	size_t spare_words;
	uint64_t collections, copied_words; /* statistics */
} vm_heap;

/* ------------------------------------------------------------ a process */

#define VM_TMP_ROOTS 8

/* An open `try` (interp.c): a raise in the frame at base or deeper
 * resumes there, at pc, with the value in register reg. */
typedef struct vm_handler {
	uint32_t base;
	uint32_t reg;
	const uint32_t *pc;
} vm_handler;

/* A frame of a crash's stack trace, innermost first. */
typedef struct vm_trace_ent {
	const vm_proto *proto;
	uint32_t line;
} vm_trace_ent;

struct vm_proc {
	vm_state *vm;
	vm_heap heap;
	vm_value *stack;	/* registers of every frame, and their links (interp.c) */
	uint32_t stack_cap, sp; /* sp: slots in use (roots) */
	/* A call in progress (interp.c): the running frame's base and its next
	 * instruction, saved when vm_run returns with a yield. */
	bool running;
	uint32_t base;
	const uint32_t *pc;
	uint32_t entry_nargs;	    /* a call set up, its arity not checked yet (else UINT32_MAX) */
	vm_value tmp[VM_TMP_ROOTS]; /* C code's roots across a vm_need */
	uint32_t ntmp;
	vm_handler *handlers;
	uint32_t nhandlers, cap_handlers;
	uint32_t stack_hw;   /* the highest sp since the last collection: slots above sp up
			      * to it may hold stale values, which the collector clears */
	vm_trace_ent *trace; /* the last raise's stack trace (innermost first, at most 200 frames) */
	uint32_t ntrace;
	bool trace_cut;	    /* there were more frames */
	vm_value raised;    /* the value being raised (VM_NIL when none) */
	uint64_t rand[2];   /* the process's generator */
	int64_t reductions; /* left in this slice */
};

/* Status of built-ins and of the run loop. */
enum vm_status {
	VM_OK = 0,
	VM_RAISE = 1, /* p->raised holds the value raised */
	VM_HALT = 2,  /* halt(status): the program ends at once (vm->halt_status) */
};

int vm_proc_init(vm_proc *p, vm_state *vm);
void vm_proc_free(vm_proc *p);

/* heap.c */
int vm_heap_init(vm_heap *h, size_t words);
void vm_heap_free(vm_heap *h);
/* Collect p's heap so that `need` more words fit; 0 or -ENOMEM. */
int vm_gc(vm_proc *p, size_t need);
/* Track a big string object just made in p's heap (VM_OBJ_BIGSTR, its
 * payload the vm_bigstr): the object's count on the bytes is the heap's,
 * dropped when a collection finds the object dead. 0 or -ENOMEM (then
 * drop the count yourself). */
int vm_heap_add_big(vm_proc *p, struct vm_bigstr *b);

/* Room for `words` words: 0, or -ENOMEM (then the process raises
 * :system_limit). May collect (see the top of this file). */
static inline int vm_need(vm_proc *p, size_t words)
{
	if ((size_t)(p->heap.end - p->heap.top) >= words && !p->vm->gc_stress)
		return 0;
	return vm_gc(p, words);
}

/* Take words (after a vm_need that covered them). */
static inline vm_header *vm_take(vm_proc *p, size_t words)
{
	vm_header *o = p->heap.top;
	p->heap.top += words;
	return o;
}

/* Raising, for built-ins: each returns VM_RAISE with p->raised set.
 * vm_raise raises v as it is (the built-in raise). A runtime error of
 * kind k with detail d is raised as (:error, k, d) - what `catch` sees and
 * what a crash reports: vm_raise2(p, k, d), e.g. (:badarg, :len) or
 * (:badkey, key); vm_raise_atom(p, k) for (:error, k, nil). If the tuple
 * cannot be built (no memory), :system_limit is raised instead. */
int vm_raise(vm_proc *p, vm_value v);
int vm_raise2(vm_proc *p, uint32_t kind_atom, vm_value detail);
int vm_raise_atom(vm_proc *p, uint32_t atom);

#endif
