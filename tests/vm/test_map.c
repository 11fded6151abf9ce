/* test_map.c - persistent maps: random puts, gets and deletes against a
 * reference, old versions unchanged by updates, ascending order over keys
 * of every kind, map equality and order, collections in between. */
#include "rt_fixture.h"

#define KEYS 512

/* The reference: value per key, -1 when absent. */
struct ref {
	int64_t v[KEYS];
};

/* The map in register r matches the reference in size, order and values. */
static void check_map(rt *t, int r, const struct ref *ref)
{
	size_t n = 0;
	for (int k = 0; k < KEYS; k++)
		n += ref->v[k] >= 0;
	assert_int_equal(vm_map_size(R(r)), n);
	vm_map_iter it;
	vm_map_iter_init(&it, R(r));
	vm_value k, v;
	int last = -1;
	size_t seen = 0;
	while (vm_map_next(&it, &k, &v)) {
		int ki = (int)vm_small(k);
		assert_true(ki > last); /* ascending */
		for (int j = last + 1; j < ki; j++)
			assert_true(ref->v[j] < 0);
		assert_true(ref->v[ki] >= 0 && vm_small(v) == ref->v[ki]);
		last = ki;
		seen++;
	}
	assert_int_equal(seen, n);
}

static void test_random_against_reference(void **state)
{
	rt *t = *state;
	static struct ref ref, snap_ref;
	for (int k = 0; k < KEYS; k++)
		ref.v[k] = -1;
	uint64_t s = 12345;
	R(0) = vm_map_empty;
	for (int op = 0; op < 10000; op++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		int k = (int)((s >> 33) % KEYS);
		int what = (int)((s >> 20) % 3);
		R(1) = vm_from_small(k);
		R(2) = vm_from_small(op);
		vm_value got;
		if (what < 2) {
			assert_int_equal(vm_map_put(&t->p, &R(0), &R(1), &R(2), &R(0)), VM_OK);
			ref.v[k] = op;
		} else {
			assert_int_equal(vm_map_delete(&t->p, &R(0), &R(1), &R(0)), VM_OK);
			ref.v[k] = -1;
		}
		bool present = vm_map_get(&t->vm, R(0), R(1), &got);
		assert_true(present == (ref.v[k] >= 0));
		if (present)
			assert_true(got == vm_from_small(op));
		if (op == 5000) { /* a version to keep */
			R(3) = R(0);
			snap_ref = ref;
		}
		if (op % 500 == 0) {
			check_map(t, 0, &ref);
			assert_int_equal(vm_gc(&t->p, 0), 0);
		}
	}
	check_map(t, 0, &ref);
	check_map(t, 3, &snap_ref);
	/* emptied key by key */
	for (int k = 0; k < KEYS; k++) {
		R(1) = vm_from_small(k);
		assert_int_equal(vm_map_delete(&t->p, &R(0), &R(1), &R(0)), VM_OK);
		ref.v[k] = -1;
	}
	check_map(t, 0, &ref);
	assert_int_equal(vm_map_size(R(0)), 0);
	check_map(t, 3, &snap_ref);
}

static void test_persistence(void **state)
{
	rt *t = *state;
	R(0) = vm_map_empty;
	for (int i = 0; i < 100; i++) {
		R(1) = vm_from_small(i);
		assert_int_equal(vm_map_put(&t->p, &R(0), &R(1), &R(1), &R(0)), VM_OK);
	}
	R(1) = vm_from_small(50);
	R(2) = VM_TRUE;
	assert_int_equal(vm_map_put(&t->p, &R(0), &R(1), &R(2), &R(3)), VM_OK);
	assert_int_equal(vm_map_delete(&t->p, &R(0), &R(1), &R(4)), VM_OK);
	vm_value v;
	assert_true(vm_map_get(&t->vm, R(0), R(1), &v) && v == vm_from_small(50));
	assert_true(vm_map_get(&t->vm, R(3), R(1), &v) && v == VM_TRUE);
	assert_false(vm_map_get(&t->vm, R(4), R(1), &v));
	assert_int_equal(vm_map_size(R(0)), 100);
	assert_int_equal(vm_map_size(R(3)), 100);
	assert_int_equal(vm_map_size(R(4)), 99);
	/* deleting an absent key gives the same map back */
	R(1) = vm_from_small(1000);
	assert_int_equal(vm_map_delete(&t->p, &R(0), &R(1), &R(5)), VM_OK);
	assert_true(R(5) == R(0));
	/* a replaced value does not change the size */
	R(1) = vm_from_small(3);
	assert_int_equal(vm_map_put(&t->p, &R(0), &R(1), &R(2), &R(5)), VM_OK);
	assert_int_equal(vm_map_size(R(5)), 100);
	assert_false(vm_equal(R(5), R(0)));
	assert_true(vm_compare(&t->vm, R(0), R(5)) < 0); /* 3 < true at key 3 */
	R(1) = vm_from_small(3);
	assert_int_equal(vm_map_put(&t->p, &R(5), &R(1), &R(1), &R(6)), VM_OK);
	assert_true(vm_equal(R(6), R(0)));
	assert_int_equal(vm_compare(&t->vm, R(6), R(0)), 0);
	R(1) = vm_from_small(1);
	assert_int_equal(vm_map_put(&t->p, &R(2), &R(1), &R(1), &R(6)), VM_RAISE);
	assert_int_equal(rt_raised_kind(t), VM_A_BADARG);
}

static void test_keys_of_every_kind_in_order(void **state)
{
	rt *t = *state;
	/* inserted out of order; listed in the total order */
	R(10) = rt_atom(t, "b");
	rt_str(t, 11, "s");
	R(12) = vm_from_float(1.5);
	R(13) = VM_EMPTY;
	R(14) = rt_atom(t, "a");
	R(15) = vm_from_small(2);
	R(16) = VM_NIL;
	assert_int_equal(vm_tuple_new(&t->p, 1, &R(17)), VM_OK);
	R(18) = vm_from_float(2.0);
	R(0) = vm_map_empty;
	for (int i = 10; i <= 18; i++)
		assert_int_equal(vm_map_put(&t->p, &R(0), &R(i), &R(i), &R(0)), VM_OK);
	assert_inspect(
		t, R(0),
		"%{1.5 => 1.5, 2 => 2, 2.0 => 2.0, nil => nil, :a => :a, :b => :b, \"s\" => \"s\", (nil,) => (nil,), "
		"[] => []}");
	assert_int_equal(vm_map_to_list(&t->p, &R(0), &R(1)), VM_OK);
	assert_inspect(
		t, R(1),
		"[(1.5, 1.5), (2, 2), (2.0, 2.0), (nil, nil), (:a, :a), (:b, :b), (\"s\", \"s\"), ((nil,), (nil,)), "
		"([], [])]");
	assert_int_equal(vm_map_keys(&t->p, &R(0), &R(1)), VM_OK);
	assert_inspect(t, R(1), "[1.5, 2, 2.0, nil, :a, :b, \"s\", (nil,), []]");
	assert_int_equal(vm_map_values(&t->p, &R(0), &R(1)), VM_OK);
	assert_inspect(t, R(1), "[1.5, 2, 2.0, nil, :a, :b, \"s\", (nil,), []]");
	R(2) = vm_map_empty;
	assert_int_equal(vm_map_to_list(&t->p, &R(2), &R(1)), VM_OK);
	assert_true(R(1) == VM_EMPTY);
	/* a map as a key, and string keys equal by contents */
	rt_str(t, 3, "s");
	vm_value v;
	assert_true(vm_map_get(&t->vm, R(0), R(3), &v) && vm_equal(v, R(11)));
	assert_int_equal(vm_map_put(&t->p, &R(2), &R(0), &R(3), &R(2)), VM_OK);
	assert_true(vm_map_get(&t->vm, R(2), R(0), &v) && v == R(3));
	assert_false(vm_map_get(&t->vm, R(2), vm_map_empty, &v));
}

/* Large maps keep the AVL height bound (the iterator's stack). */
static void test_large_sequential(void **state)
{
	rt *t = *state;
	int n = WT_SIZE(200000, 50000);
	R(0) = vm_map_empty;
	for (int i = 0; i < n; i++) {
		R(1) = vm_from_small(i);
		assert_int_equal(vm_map_put(&t->p, &R(0), &R(1), &R(1), &R(0)), VM_OK);
	}
	assert_int_equal(vm_map_size(R(0)), n);
	/* height: at most 1.44 log2(n + 2) */
	int64_t h = vm_small(vm_fields(R(0))[4]);
	assert_true(h <= 26);
	for (int i = 0; i < n; i += 2) {
		R(1) = vm_from_small(i);
		assert_int_equal(vm_map_delete(&t->p, &R(0), &R(1), &R(0)), VM_OK);
	}
	assert_int_equal(vm_map_size(R(0)), n / 2);
	vm_map_iter it;
	vm_map_iter_init(&it, R(0));
	vm_value k, v;
	int want = 1;
	while (vm_map_next(&it, &k, &v)) {
		assert_true(k == vm_from_small(want));
		want += 2;
	}
	assert_int_equal(want, n + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_random_against_reference, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_persistence, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_keys_of_every_kind_in_order, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_large_sequential, rt_setup, rt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
