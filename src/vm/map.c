/* map.c - the language's maps: persistent AVL trees ordered by vm_compare.
 *
 * A node is a VM_OBJ_MAP object of six values: key, value, left, right,
 * height and size (small ints), so the collector scans it like any other
 * object and vm_map_size is O(1). The empty map is one static object of
 * size 0 outside every heap (vm_map_empty); a node's missing child is
 * that object. An update copies the path from the root to the changed
 * node (and the few nodes a rotation rebuilds) and shares everything
 * else: the old map is unchanged.
 *
 * Allocation: an update first reserves room for the worst case (three
 * nodes per level: the copied node and a double rotation's two), then
 * re-reads its operands and builds without further checks, so no
 * collection happens in the middle of a rebuild. An AVL tree of n nodes
 * is at most 1.44 log2(n + 2) high; a heap of at most 2^31 words holds
 * fewer than 2^29 nodes, so a path has fewer than 43 nodes and
 * VM_MAP_MAX_DEPTH (64) bounds every stack here.
 */
#include <stdlib.h>
#include <string.h>
#include <assert.h>

#include "obj.h"

enum { M_KEY, M_VAL, M_LEFT, M_RIGHT, M_HEIGHT, M_SIZE, M_FIELDS };

#define VM_NODE_WORDS (1 + M_FIELDS)

static const vm_value vm_map_empty_obj[2] __attribute__((aligned(8))) = {VM_OBJ_MAP, 0};

/* The address plus the tag: the same as VM_TAGGED for a 48-bit address,
 * and a constant the linker can relocate. */
const vm_value vm_map_empty = (vm_value)(uintptr_t)vm_map_empty_obj + (VM_TAG_OBJ << VM_TAG_SHIFT);

bool vm_is_map(vm_value v)
{
	return vm_is_kind(v, VM_OBJ_MAP);
}

static inline bool vm_node_empty(vm_value n)
{
	return vm_obj_size(n) == 0;
}

static inline int64_t vm_node_height(vm_value n)
{
	return vm_node_empty(n) ? 0 : vm_small(vm_fields(n)[M_HEIGHT]);
}

size_t vm_map_size(vm_value m)
{
	return vm_node_empty(m) ? 0 : (size_t)vm_small(vm_fields(m)[M_SIZE]);
}

bool vm_map_get(vm_state *vm, vm_value m, vm_value k, vm_value *v)
{
	while (!vm_node_empty(m)) {
		vm_value *f = vm_fields(m);
		int c = vm_compare(vm, k, f[M_KEY]);
		if (c == 0) {
			*v = f[M_VAL];
			return true;
		}
		m = c < 0 ? f[M_LEFT] : f[M_RIGHT];
	}
	return false;
}

/* ------------------------------------------------------------ updates */

/* A new node (room reserved by the caller). */
static vm_value vm_node(vm_proc *p, vm_value k, vm_value v, vm_value l, vm_value r)
{
	vm_header *o = vm_obj_take(p, VM_OBJ_MAP, M_FIELDS);
	int64_t hl = vm_node_height(l), hr = vm_node_height(r);
	o[1 + M_KEY] = k;
	o[1 + M_VAL] = v;
	o[1 + M_LEFT] = l;
	o[1 + M_RIGHT] = r;
	o[1 + M_HEIGHT] = vm_from_small(1 + (hl > hr ? hl : hr));
	o[1 + M_SIZE] = vm_from_small((int64_t)(1 + vm_map_size(l) + vm_map_size(r)));
	return vm_from_obj(o);
}

/* A node of k, v over l and r whose heights differ by at most 2,
 * rotated so that they differ by at most 1. */
static vm_value vm_balance(vm_proc *p, vm_value k, vm_value v, vm_value l, vm_value r)
{
	int64_t hl = vm_node_height(l), hr = vm_node_height(r);
	if (hl > hr + 1) {
		vm_value *fl = vm_fields(l);
		if (vm_node_height(fl[M_LEFT]) >= vm_node_height(fl[M_RIGHT]))
			return vm_node(p, fl[M_KEY], fl[M_VAL], fl[M_LEFT], vm_node(p, k, v, fl[M_RIGHT], r));
		vm_value *flr = vm_fields(fl[M_RIGHT]);
		return vm_node(p, flr[M_KEY], flr[M_VAL], vm_node(p, fl[M_KEY], fl[M_VAL], fl[M_LEFT], flr[M_LEFT]),
			       vm_node(p, k, v, flr[M_RIGHT], r));
	}
	if (hr > hl + 1) {
		vm_value *fr = vm_fields(r);
		if (vm_node_height(fr[M_RIGHT]) >= vm_node_height(fr[M_LEFT]))
			return vm_node(p, fr[M_KEY], fr[M_VAL], vm_node(p, k, v, l, fr[M_LEFT]), fr[M_RIGHT]);
		vm_value *frl = vm_fields(fr[M_LEFT]);
		return vm_node(p, frl[M_KEY], frl[M_VAL], vm_node(p, k, v, l, frl[M_LEFT]),
			       vm_node(p, fr[M_KEY], fr[M_VAL], frl[M_RIGHT], fr[M_RIGHT]));
	}
	return vm_node(p, k, v, l, r);
}

static vm_value vm_insert(vm_proc *p, vm_value m, vm_value k, vm_value v)
{
	if (vm_node_empty(m))
		return vm_node(p, k, v, vm_map_empty, vm_map_empty);
	vm_value *f = vm_fields(m);
	int c = vm_compare(p->vm, k, f[M_KEY]);
	if (c == 0)
		return vm_node(p, k, v, f[M_LEFT], f[M_RIGHT]);
	if (c < 0)
		return vm_balance(p, f[M_KEY], f[M_VAL], vm_insert(p, f[M_LEFT], k, v), f[M_RIGHT]);
	return vm_balance(p, f[M_KEY], f[M_VAL], f[M_LEFT], vm_insert(p, f[M_RIGHT], k, v));
}

/* m without its smallest node, whose key and value go to *k, *v. */
static vm_value vm_remove_min(vm_proc *p, vm_value m, vm_value *k, vm_value *v)
{
	vm_value *f = vm_fields(m);
	if (vm_node_empty(f[M_LEFT])) {
		*k = f[M_KEY];
		*v = f[M_VAL];
		return f[M_RIGHT];
	}
	vm_value l = vm_remove_min(p, f[M_LEFT], k, v);
	return vm_balance(p, f[M_KEY], f[M_VAL], l, f[M_RIGHT]);
}

/* m without k, which the caller knows is present. */
static vm_value vm_remove(vm_proc *p, vm_value m, vm_value k)
{
	vm_value *f = vm_fields(m);
	int c = vm_compare(p->vm, k, f[M_KEY]);
	if (c < 0)
		return vm_balance(p, f[M_KEY], f[M_VAL], vm_remove(p, f[M_LEFT], k), f[M_RIGHT]);
	if (c > 0)
		return vm_balance(p, f[M_KEY], f[M_VAL], f[M_LEFT], vm_remove(p, f[M_RIGHT], k));
	if (vm_node_empty(f[M_RIGHT]))
		return f[M_LEFT];
	if (vm_node_empty(f[M_LEFT]))
		return f[M_RIGHT];
	vm_value mk, mv;
	vm_value r = vm_remove_min(p, f[M_RIGHT], &mk, &mv);
	return vm_balance(p, mk, mv, f[M_LEFT], r);
}

/* Room for an update of m: three nodes per level, and one more level. */
static int vm_map_reserve(vm_proc *p, vm_value m)
{
	return vm_reserve(p, 3 * (size_t)(vm_node_height(m) + 2) * VM_NODE_WORDS);
}

/* Whether v holds an array (itself, or inside a tuple, list, map or a
 * closure's captured values). A key may not: an array can change after
 * it was put, and the map's order (and every lookup) would then be
 * wrong. Iterative; arrays end the walk, so cycles (which go through an
 * array) cannot loop it. */
static bool vm_holds_array(vm_value v)
{
	vm_value local[64], *st = local;
	size_t n = 0, cap = 64;
	bool found = false;
	st[n++] = v;
	while (n && !found) {
		vm_value x = st[--n];
		if (!vm_is_obj(x))
			continue;
		unsigned kind = vm_hdr_kind(*vm_obj(x));
		if (kind == VM_OBJ_ARRAY) {
			found = true;
			break;
		}
		if (kind < VM_OBJ_SCANNED)
			continue;
		size_t size = vm_obj_size(x);
		if (n + size > cap) {
			size_t ncap = 2 * (n + size);
			vm_value *t = st == local ? malloc(ncap * sizeof *t) : realloc(st, ncap * sizeof *t);
			if (!t)
				break; /* no memory: let it in unchecked */
			if (st == local)
				memcpy(t, local, n * sizeof *t);
			st = t;
			cap = ncap;
		}
		memcpy(st + n, vm_fields(x), size * sizeof *st);
		n += size;
	}
	if (st != local)
		free(st);
	return found;
}

int vm_map_put(vm_proc *p, const vm_value *m, const vm_value *k, const vm_value *v, vm_value *out)
{
	if (!vm_is_map(*m))
		return vm_raise_atom(p, VM_A_BADARG);
	if (vm_holds_array(*k))
		return vm_raise2(p, VM_A_BADARG, *k);
	if (vm_map_reserve(p, *m))
		return VM_RAISE;
	vm_value *limit = p->heap.top + 3 * (vm_node_height(*m) + 2) * VM_NODE_WORDS;
	vm_value r = vm_insert(p, *m, *k, *v);
	assert(p->heap.top <= limit);
	(void)limit;
	*out = r;
	return VM_OK;
}

int vm_map_delete(vm_proc *p, const vm_value *m, const vm_value *k, vm_value *out)
{
	if (!vm_is_map(*m))
		return vm_raise_atom(p, VM_A_BADARG);
	vm_value v;
	if (!vm_map_get(p->vm, *m, *k, &v)) {
		*out = *m;
		return VM_OK;
	}
	if (vm_map_reserve(p, *m))
		return VM_RAISE;
	vm_value *limit = p->heap.top + 3 * (vm_node_height(*m) + 2) * VM_NODE_WORDS;
	vm_value r = vm_remove(p, *m, *k);
	assert(p->heap.top <= limit);
	(void)limit;
	*out = r;
	return VM_OK;
}

/* ------------------------------------------------------------ iteration */

static void vm_iter_push_left(vm_map_iter *it, vm_value n)
{
	while (!vm_node_empty(n)) {
		assert(it->n < VM_MAP_MAX_DEPTH);
		it->stack[it->n++] = n;
		n = vm_fields(n)[M_LEFT];
	}
}

void vm_map_iter_init(vm_map_iter *it, vm_value m)
{
	it->n = 0;
	vm_iter_push_left(it, m);
}

bool vm_map_next(vm_map_iter *it, vm_value *k, vm_value *v)
{
	if (it->n == 0)
		return false;
	vm_value *f = vm_fields(it->stack[--it->n]);
	*k = f[M_KEY];
	*v = f[M_VAL];
	vm_iter_push_left(it, f[M_RIGHT]);
	return true;
}

bool vm_map_equal(vm_value a, vm_value b)
{
	if (vm_map_size(a) != vm_map_size(b))
		return false;
	vm_map_iter ia, ib;
	vm_map_iter_init(&ia, a);
	vm_map_iter_init(&ib, b);
	vm_value ka, va, kb, vb;
	while (vm_map_next(&ia, &ka, &va)) {
		vm_map_next(&ib, &kb, &vb);
		if (!vm_equal(ka, kb) || !vm_equal(va, vb))
			return false;
	}
	return true;
}

int vm_map_compare(vm_state *vm, vm_value a, vm_value b)
{
	vm_map_iter ia, ib;
	vm_map_iter_init(&ia, a);
	vm_map_iter_init(&ib, b);
	vm_value ka, va, kb, vb;
	for (;;) {
		bool more_a = vm_map_next(&ia, &ka, &va), more_b = vm_map_next(&ib, &kb, &vb);
		if (!more_a || !more_b)
			return more_a - more_b;
		int c = vm_compare(vm, ka, kb);
		if (!c)
			c = vm_compare(vm, va, vb);
		if (c)
			return c;
	}
}

/* The entries as a list, built from the last one back: what = 0 (k, v)
 * tuples, 1 keys, 2 values. */
static int vm_map_list(vm_proc *p, const vm_value *m, int what, vm_value *out)
{
	if (!vm_is_map(*m))
		return vm_raise_atom(p, VM_A_BADARG);
	size_t n = vm_map_size(*m);
	if (vm_reserve(p, n * (what == 0 ? 6 : 3)))
		return VM_RAISE;
	/* The descending walk: the mirror of vm_map_next. */
	vm_value stack[VM_MAP_MAX_DEPTH], l = VM_EMPTY, x = *m;
	int sp = 0;
	for (;;) {
		while (!vm_node_empty(x)) {
			assert(sp < VM_MAP_MAX_DEPTH);
			stack[sp++] = x;
			x = vm_fields(x)[M_RIGHT];
		}
		if (sp == 0)
			break;
		vm_value *f = vm_fields(stack[--sp]);
		vm_value e = what == 1 ? f[M_KEY] : f[M_VAL];
		if (what == 0) {
			vm_header *t = vm_obj_take(p, VM_OBJ_TUPLE, 2);
			t[1] = f[M_KEY];
			t[2] = f[M_VAL];
			e = vm_from_obj(t);
		}
		vm_header *c = vm_obj_take(p, VM_OBJ_CONS, 2);
		c[1] = e;
		c[2] = l;
		l = vm_from_obj(c);
		x = f[M_LEFT];
	}
	*out = l;
	return VM_OK;
}

int vm_map_to_list(vm_proc *p, const vm_value *m, vm_value *out)
{
	return vm_map_list(p, m, 0, out);
}

int vm_map_keys(vm_proc *p, const vm_value *m, vm_value *out)
{
	return vm_map_list(p, m, 1, out);
}

int vm_map_values(vm_proc *p, const vm_value *m, vm_value *out)
{
	return vm_map_list(p, m, 2, out);
}
