/* lang.c - the weft language embedded in C: load source (its errors come
 * back as values with positions), call a function with arguments built in
 * C, read the result, catch what it raises. */
#include "check.h"

#include <string.h>
#include <weft/vm.h>

static const char *BROKEN = "fn area(w, h) {\n  w * hight\n}\n";

static const char *SHAPES = "fn area(shape) {\n"
			    "  match shape {\n"
			    "    (:rect, w, h) -> w * h\n"
			    "    (:square, s) -> s * s\n"
			    "  }\n"
			    "}\n"
			    "fn total(shapes) { fold(map(shapes, area), 0, fn(a, x) { a + x }) }\n";

int main(void)
{
	weft_vm_t *vm;
	CHECK(weft_vm_create(&vm, NULL));

	/* A compile error is a value: path, line, column, message. */
	EXPECT(weft_vm_load_source(vm, "broken.wf", BROKEN, strlen(BROKEN)), -EINVAL);
	weft_vm_error_t err;
	CHECK(weft_vm_error_get(vm, 0, &err));
	printf("%s:%u:%u: %s\n", err.path, err.line, err.col, err.message);

	CHECK(weft_vm_load_source(vm, "shapes.wf", SHAPES, strlen(SHAPES)));

	/* [(:rect, 3, 4), (:square, 5)] built in C */
	weft_vm_term_t rect[] = {{.kind = WEFT_VM_ATOM, .str = "rect", .len = 4},
				 {.kind = WEFT_VM_INT, .i = 3},
				 {.kind = WEFT_VM_INT, .i = 4}};
	weft_vm_term_t square[] = {{.kind = WEFT_VM_ATOM, .str = "square", .len = 6}, {.kind = WEFT_VM_INT, .i = 5}};
	weft_vm_term_t items[] = {{.kind = WEFT_VM_TUPLE, .items = rect, .n = 3},
				  {.kind = WEFT_VM_TUPLE, .items = square, .n = 2}};
	weft_vm_term_t list = {.kind = WEFT_VM_LIST, .items = items, .n = 2};
	weft_vm_term_t *res;
	CHECK(weft_vm_call(vm, "shapes", "total", &list, 1, &res));
	printf("total area: %lld\n", (long long)res->i);
	weft_vm_term_free(res);

	/* A raise comes back as 1 and the raised value: here no clause of
	 * area's match takes a circle. */
	weft_vm_term_t circle[] = {{.kind = WEFT_VM_ATOM, .str = "circle", .len = 6}, {.kind = WEFT_VM_INT, .i = 2}};
	weft_vm_term_t shape = {.kind = WEFT_VM_TUPLE, .items = circle, .n = 2};
	int r = CHECK(weft_vm_call(vm, NULL, "area", &shape, 1, &res));
	printf("raised: %d, (%s, %s, ...)\n", r, res->items[0].str, res->items[1].str);
	weft_vm_term_free(res);

	weft_vm_destroy(vm);
	return 0;
}
