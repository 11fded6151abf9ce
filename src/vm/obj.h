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
/* a[i] = v on an array (else :badarg). */
int vm_index_set(vm_proc *p, vm_value a, vm_value i, vm_value v);
/* Tuples of n elements, uninitialised fields set to nil. */
int vm_tuple_new(vm_proc *p, size_t n, vm_value *out);
int vm_cons(vm_proc *p, const vm_value *head, const vm_value *tail, vm_value *out);

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

/* ------------------------------------------------------------ copying */

/* A deep copy of *v into p's heap (for messages, spawn arguments, mvar
 * values): words needed first (vm_copy_size), then the copy; big strings
 * are shared (counted), literals are copied too. */
size_t vm_copy_size(vm_value v);
int vm_copy(vm_proc *p, vm_value v, vm_value *out);

/* ------------------------------------------------------------ built-ins */

/* A built-in function: args point at nargs registers, out at the result's
 * register (may be one of the args: write it last). */
typedef int (*vm_bi_fn)(vm_proc *p, vm_value *args, uint32_t nargs, vm_value *out);

typedef struct vm_builtin {
	const char *name;
	vm_bi_fn fn;
	int8_t min_args, max_args; /* max -1: any number */
} vm_builtin;

/* The built-in named name (len bytes), or NULL. */
const vm_builtin *vm_builtin_find(const char *name, size_t len);

#endif
