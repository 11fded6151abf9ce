/* obj.h - operations on values the interpreter and the built-ins share:
 * building objects, equality and the total order, arithmetic slow paths,
 * strings, maps, copying between heaps, and the table of built-ins.
 *
 * Conventions: a function that allocates takes the process; it may collect
 * (state.h), so its value arguments are passed by pointer into a root (a
 * register or p->tmp) and re-read after each vm_need, and its result is
 * written through `out` (a root) last. Functions that can fail return
 * VM_OK or VM_RAISE (p->raised set: the language's error value).
 */
#ifndef WEFT_VM_OBJ_H
#define WEFT_VM_OBJ_H

#include <stdio.h>

#include "state.h"

/* ------------------------------------------------------------ building */

/* Words an object of `size` payload words takes: at least 2, since the
 * collector forwards an object through its first payload word. */
static inline size_t vm_obj_words(size_t size)
{
	return size < 1 ? 2 : 1 + size;
}

/* The largest object the runtime builds, in payload words (1 GiB of
 * payload); a request beyond it (array(1e12, 0)) raises :system_limit. */
#define VM_OBJ_MAX ((size_t)1 << 27)
/* Room for `words` heap words: VM_OK, or VM_RAISE with :system_limit (no
 * memory, or more than 2^31 words asked). May collect (state.h). */
int vm_reserve(vm_proc *p, size_t words);
/* An object taken from the room a vm_reserve made: header written, the
 * payload left for the caller to fill before its next allocation. */
vm_header *vm_obj_take(vm_proc *p, unsigned kind, size_t size);
/* A string of len bytes taken from the room a vm_reserve of
 * vm_str_words(len) made; *bytes is where the caller writes the len bytes
 * (the NUL after them is written). Does not collect. A big string is
 * allocated off-heap here: 0, or -ENOMEM. */
int vm_str_take(vm_proc *p, size_t len, vm_value *out, char **bytes);
/* vm_reserve and vm_str_take in one: VM_OK, or VM_RAISE (:system_limit).
 * May collect: the caller re-reads its roots, then fills *bytes. */
int vm_str_alloc(vm_proc *p, size_t len, vm_value *out, char **bytes);

/* Words of a string object of len bytes on the heap (header included). */
size_t vm_str_words(size_t len);
/* A new string of len bytes (copied from s; s must not point into p's heap
 * unless it is pinned in a root and re-read by the caller). */
int vm_str_new(vm_proc *p, const char *s, size_t len, vm_value *out);
/* An integer of any int64 value (small, or a BIGINT object). */
int vm_int_new(vm_proc *p, int64_t i, vm_value *out);
/* A float; not finite: raises :badarith. */
int vm_float_new(vm_proc *p, double d, vm_value *out);

/* ------------------------------------------------------------ comparing */

/* Structural equality (1 == 1.0 is false; arrays by contents). */
bool vm_equal(vm_value a, vm_value b);
/* The total order of LANGUAGE.md: numbers < atoms < strings < tuples <
 * lists < maps < arrays < closures < pids < refs; <0, 0, >0. Numbers
 * compare by value (an int and a float equal by value: the int first). */
int vm_compare(vm_state *vm, vm_value a, vm_value b);
/* `<` and friends: numbers or strings, else raises :badarg. op is one of
 * VM_OP_LT, VM_OP_LE, VM_OP_GT, VM_OP_GE (ast.h). */
int vm_order(vm_proc *p, unsigned op, vm_value a, vm_value b, vm_value *out);

/* ------------------------------------------------------------ arithmetic */

/* The slow paths of + - * / % (op from enum vm_binop) and of the bitwise
 * operators and shifts, for any operands: ints of both forms, floats,
 * mixed; :overflow, :badarith (incl. division by zero and non-finite
 * results), :badarg for non-numbers. */
int vm_arith(vm_proc *p, unsigned op, const vm_value *a, const vm_value *b, vm_value *out);
int vm_negate(vm_proc *p, const vm_value *a, vm_value *out);
int vm_bnot(vm_proc *p, const vm_value *a, vm_value *out);
/* a ++ b: strings, or lists (a copied, b shared); else :badarg. */
int vm_concat(vm_proc *p, const vm_value *a, const vm_value *b, vm_value *out);

/* ------------------------------------------------------------ containers */

/* a[i]: tuples, lists, arrays, strings (a byte as an integer), maps
 * (missing key: (:badkey, k)); out of range or wrong kind: :badarg. */
int vm_index(vm_proc *p, const vm_value *a, const vm_value *i, vm_value *out);
/* a[i] = v on an array of p's heap (else :badarg: a top-level constant's
 * array is immutable). */
int vm_index_set(vm_proc *p, vm_value a, vm_value i, vm_value v);
/* Tuples of n elements, uninitialised fields set to nil. */
int vm_tuple_new(vm_proc *p, size_t n, vm_value *out);
int vm_cons(vm_proc *p, const vm_value *head, const vm_value *tail, vm_value *out);
/* The length of a proper list, or -1 (not a list, or an improper one). */
int64_t vm_list_len(vm_value l);

/* Maps (map.c): persistent and ordered by vm_compare. */
extern const vm_value vm_map_empty; /* the empty map (a literal object) */
bool vm_is_map(vm_value v);
size_t vm_map_size(vm_value m);
/* The value of key k, or false if absent. */
bool vm_map_get(vm_state *vm, vm_value m, vm_value k, vm_value *v);
/* A new map: m with k set to v (m unchanged). */
int vm_map_put(vm_proc *p, const vm_value *m, const vm_value *k, const vm_value *v, vm_value *out);
/* The entries in ascending key order as a list of (k, v) tuples. */
int vm_map_to_list(vm_proc *p, const vm_value *m, vm_value *out);

/* In-order iteration (no allocation: the map must not move meanwhile, so
 * no vm_need between vm_map_iter_init and the last vm_map_next). */
#define VM_MAP_MAX_DEPTH 64
typedef struct vm_map_iter {
	vm_value stack[VM_MAP_MAX_DEPTH];
	int n;
} vm_map_iter;
void vm_map_iter_init(vm_map_iter *it, vm_value m);
bool vm_map_next(vm_map_iter *it, vm_value *k, vm_value *v);
/* A new map: m without k (m itself when k is absent). */
int vm_map_delete(vm_proc *p, const vm_value *m, const vm_value *k, vm_value *out);
/* The keys, the values, in ascending key order, as lists. */
int vm_map_keys(vm_proc *p, const vm_value *m, vm_value *out);
int vm_map_values(vm_proc *p, const vm_value *m, vm_value *out);
/* vm_equal and vm_compare on two maps. */
bool vm_map_equal(vm_value a, vm_value b);
int vm_map_compare(vm_state *vm, vm_value a, vm_value b);

/* ------------------------------------------------------------ text */

/* inspect(v) appended to a growing buffer. */
typedef struct vm_buf {
	char *b;
	size_t len, cap;
	bool oom;
} vm_buf;
void vm_buf_put(vm_buf *b, const char *s, size_t n);
void vm_inspect(vm_state *vm, vm_buf *b, vm_value v);
/* print's form: strings raw, the rest as inspect. */
void vm_print_value(vm_state *vm, vm_buf *b, vm_value v);
/* A function prototype's name and arity, for inspect's #fn<name/arity>:
 * the compiler defines it (format.c only calls it). */
void vm_proto_describe(const void *proto, const char **name, int *arity);

/* ------------------------------------------------------------ copying */

/* A deep copy of *v into p's heap (for messages, spawn arguments, mvar
 * values): words needed first (vm_copy_size), then the copy; big strings
 * are shared (counted), literals are copied too (the static empty map is
 * not: it is in no heap). v must not be in p's heap (vm_copy reserves the
 * room itself, which may collect p's heap). Sharing inside v is not kept:
 * a value reached twice is copied twice. vm_copy_size is SIZE_MAX past
 * 2^31 words (vm_copy then raises :system_limit). */
size_t vm_copy_size(vm_value v);
int vm_copy(vm_proc *p, vm_value v, vm_value *out);

/* ------------------------------------------------------------ built-ins */

/* A built-in function: args point at nargs registers (the caller has
 * checked nargs against min_args, max_args), out at the result's
 * register (may be one of the args: write it last). */
typedef int (*vm_bi_fn)(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out);

typedef struct vm_builtin {
	const char *name;
	vm_bi_fn fn;
	int8_t min_args, max_args; /* max -1: any number */
} vm_builtin;

/* The built-in named name (len bytes), or NULL. */
const vm_builtin *vm_builtin_find(const char *name, size_t len);
/* Built-ins by number (fewer than 256; the BUILTIN instruction's C): its
 * number, and the built-in of a number (NULL past the last). */
unsigned vm_builtin_index(const vm_builtin *b);
const vm_builtin *vm_builtin_at(unsigned i);
/* Seed p's generator (random, random_float): at spawn, from the program
 * seed and the spawn order; by seed(n). An unseeded generator (all zero)
 * seeds itself from vm->seed on first use. */
void vm_rand_seed(vm_proc *p, uint64_t seed);

#endif
