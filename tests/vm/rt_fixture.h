/* rt_fixture.h - a VM and one process for the runtime-object tests, and
 * helpers to build values, read raised errors and inspect values. */
#ifndef WEFT_TESTS_VM_RT_FIXTURE_H
#define WEFT_TESTS_VM_RT_FIXTURE_H

#include "../weft_test.h"

#include <string.h>

#include "vm/obj.h"

#define RT_REGS 64

typedef struct rt {
	vm_state vm;
	vm_proc p;
} rt;

static int rt_setup(void **state)
{
	rt *t = calloc(1, sizeof *t);
	assert_non_null(t);
	assert_int_equal(vm_state_init(&t->vm), 0);
	assert_int_equal(vm_proc_init(&t->p, &t->vm), 0);
	assert_true(t->p.stack_cap >= RT_REGS);
	for (int i = 0; i < RT_REGS; i++)
		t->p.stack[i] = VM_NIL;
	t->p.sp = RT_REGS; /* the registers the tests use are roots */
	*state = t;
	return 0;
}

static int rt_teardown(void **state)
{
	rt *t = *state;
	vm_proc_free(&t->p);
	vm_state_free(&t->vm);
	free(t);
	return 0;
}

/* The tests name no real function; inspect of a closure asks this. */
void vm_proto_describe(const void *proto, const char **name, int *arity)
{
	*name = proto ? (const char *)proto : "?";
	*arity = 2;
}

#define R(i) (t->p.stack[i])

static inline vm_value rt_int(rt *t, int64_t i)
{
	vm_value v;
	assert_int_equal(vm_int_new(&t->p, i, &v), VM_OK);
	return v;
}

static inline vm_value rt_atom(rt *t, const char *s)
{
	int64_t a = vm_atom_intern(&t->vm, s, strlen(s));
	assert_true(a >= 0);
	return vm_from_atom((uint32_t)a);
}

/* A string into register r. */
static inline void rt_str(rt *t, int r, const char *s)
{
	assert_int_equal(vm_str_new(&t->p, s, strlen(s), &R(r)), VM_OK);
}

/* The kind of the runtime error raised: (:error, kind, detail). */
static inline uint32_t rt_raised_kind(rt *t)
{
	vm_value r = t->p.raised;
	assert_true(vm_is_kind(r, VM_OBJ_TUPLE));
	assert_int_equal(vm_obj_size(r), 3);
	assert_true(vm_fields(r)[0] == vm_from_atom(VM_A_ERROR));
	assert_true(vm_is_atom(vm_fields(r)[1]));
	return vm_atom(vm_fields(r)[1]);
}

static inline vm_value rt_raised_detail(rt *t)
{
	rt_raised_kind(t);
	return vm_fields(t->p.raised)[2];
}

/* inspect(v) compared with the expected text. */
#define assert_inspect(t, v, text)                                                                                     \
	do {                                                                                                           \
		vm_buf b_ = {0};                                                                                       \
		vm_inspect(&(t)->vm, &b_, (v));                                                                        \
		assert_false(b_.oom);                                                                                  \
		assert_string_equal(b_.b, (text));                                                                     \
		free(b_.b);                                                                                            \
	} while (0)

/* A list of the registers [from, from + n) into register r. */
static inline void rt_list(rt *t, int r, int from, int n)
{
	vm_value l = VM_EMPTY;
	R(r + 0) = l;
	for (int i = from + n - 1; i >= from; i--)
		assert_int_equal(vm_cons(&t->p, &R(i), &R(r), &R(r)), VM_OK);
}

#endif
