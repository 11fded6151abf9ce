/* format.c - text of values: inspect (source syntax) and print's form.
 *
 * Floats are written as the shortest decimal that reads back (strtod) to
 * the same double: the fewest significant digits, 1 to 17, that round
 * trip. The layout follows Python's repr: with the decimal exponent E of
 * the first digit, plain notation when -4 <= E < 16 and an exponent
 * otherwise, and always a `.` so that the text reads back as a float:
 * 1.0, 0.1, -2.5, 0.0001, 1234567890123456.0, 1.0e16, 1.0e30, 1.5e-7
 * (the exponent has no `+` and no leading zeros).
 *
 * Atoms whose name is not an identifier are written :"quoted" (to_atom
 * makes them). A string's bytes from 0x80 up are written as they are
 * (UTF-8 goes through); control bytes are escaped.
 *
 * inspect keeps its work on a stack of its own, not the C stack, so any
 * nesting depth is written.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obj.h"

void vm_buf_put(vm_buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->cap - b->len < n + 1) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap - b->len < n + 1) {
			if (cap > SIZE_MAX / 2) {
				b->oom = true;
				return;
			}
			cap *= 2;
		}
		char *nb = realloc(b->b, cap);
		if (!nb) {
			b->oom = true;
			return;
		}
		b->b = nb;
		b->cap = cap;
	}
	memcpy(b->b + b->len, s, n);
	b->len += n;
	b->b[b->len] = 0;
}

static void vm_buf_str(vm_buf *b, const char *s)
{
	vm_buf_put(b, s, strlen(s));
}

static void vm_put_float(vm_buf *b, double d)
{
	char e[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(e, sizeof e, "%.*e", prec - 1, d);
		if (strtod(e, NULL) == d)
			break;
	}
	/* e is [-]D[.DDD]e[+-]XX: split it into sign, digits and exponent */
	const char *s = e;
	char digits[24];
	int nd = 0;
	if (*s == '-') {
		vm_buf_put(b, "-", 1);
		s++;
	}
	for (; *s != 'e'; s++)
		if (*s != '.')
			digits[nd++] = *s;
	int exp = atoi(s + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	char out[48];
	int n = 0;
	if (exp < -4 || exp >= 16) {
		out[n++] = digits[0];
		out[n++] = '.';
		if (nd == 1)
			out[n++] = '0';
		for (int i = 1; i < nd; i++)
			out[n++] = digits[i];
		n += snprintf(out + n, sizeof out - (size_t)n, "e%d", exp);
	} else if (exp >= 0) {
		for (int i = 0; i <= exp; i++)
			out[n++] = i < nd ? digits[i] : '0';
		out[n++] = '.';
		if (nd <= exp + 1)
			out[n++] = '0';
		for (int i = exp + 1; i < nd; i++)
			out[n++] = digits[i];
	} else {
		out[n++] = '0';
		out[n++] = '.';
		for (int i = 0; i < -exp - 1; i++)
			out[n++] = '0';
		for (int i = 0; i < nd; i++)
			out[n++] = digits[i];
	}
	vm_buf_put(b, out, (size_t)n);
}

static void vm_put_quoted(vm_buf *b, const char *s, size_t len)
{
	vm_buf_put(b, "\"", 1);
	size_t run = 0; /* bytes written as they are, pending */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;
		char u[16];
		switch (c) {
		case '\n':
			esc = "\\n";
			break;
		case '\t':
			esc = "\\t";
			break;
		case '\r':
			esc = "\\r";
			break;
		case '"':
			esc = "\\\"";
			break;
		case '\\':
			esc = "\\\\";
			break;
		case 0:
			esc = "\\0";
			break;
		default:
			if (c < 0x20 || c == 0x7f) {
				snprintf(u, sizeof u, "\\u{%x}", c);
				esc = u;
			}
		}
		if (!esc)
			continue;
		vm_buf_put(b, s + run, i - run);
		vm_buf_str(b, esc);
		run = i + 1;
	}
	vm_buf_put(b, s + run, len - run);
	vm_buf_put(b, "\"", 1);
}

static bool vm_is_ident(const char *s, size_t len)
{
	if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

static void vm_put_atom(vm_state *vm, vm_buf *b, uint32_t a)
{
	size_t len;
	const char *name = vm_atom_name(vm, a, &len);
	char u[32];
	if (!name) {
		snprintf(u, sizeof u, ":#%" PRIu32, a);
		vm_buf_str(b, u);
		return;
	}
	vm_buf_put(b, ":", 1);
	if (vm_is_ident(name, len))
		vm_buf_put(b, name, len);
	else
		vm_put_quoted(b, name, len);
}

/* inspect's work: values to write and text between them, on a stack of
 * our own (a value nested 10^6 deep, as a list of lists can be, must not
 * need 10^6 C frames). An entry is a text when text is not NULL; the text
 * vm_list_rest means "the rest of a list, v, after an element". */
typedef struct vm_fmt_entry {
	vm_value v;
	const char *text;
} vm_fmt_entry;

typedef struct vm_fmt_stack {
	vm_fmt_entry *e;
	size_t n, cap;
	/* The arrays being written (opened, not yet closed): one met again
	 * inside itself is a cycle (a[0] = a), written #array<...>. */
	vm_value *open;
	size_t nopen, capopen;
	vm_fmt_entry local[64];
} vm_fmt_stack;

static const char vm_list_rest[] = "";
static const char vm_array_close[] = "]>";

/* false (and b->oom set) when out of memory. */
static bool vm_fmt_push(vm_fmt_stack *s, vm_buf *b, vm_value v, const char *text)
{
	if (s->n == s->cap) {
		size_t cap = 2 * s->cap;
		vm_fmt_entry *e = s->e == s->local ? malloc(cap * sizeof *e) : realloc(s->e, cap * sizeof *e);
		if (!e) {
			b->oom = true;
			return false;
		}
		if (s->e == s->local)
			memcpy(e, s->local, sizeof s->local);
		s->e = e;
		s->cap = cap;
	}
	s->e[s->n++] = (vm_fmt_entry){v, text};
	return true;
}

/* Elements separated by ", ", then close: pushed so as to pop in order. */
static void vm_push_seq(vm_fmt_stack *s, vm_buf *b, const vm_value *v, size_t n, const char *close)
{
	if (!vm_fmt_push(s, b, 0, close))
		return;
	for (size_t i = n; i-- > 0;)
		if (!vm_fmt_push(s, b, v[i], NULL) || (i > 0 && !vm_fmt_push(s, b, 0, ", ")))
			return;
}

/* The entries k => v, separated by ", ", then "}". */
static void vm_push_map(vm_fmt_stack *s, vm_buf *b, vm_value m)
{
	if (!vm_fmt_push(s, b, 0, "}"))
		return;
	size_t from = s->n;
	vm_map_iter it;
	vm_map_iter_init(&it, m);
	vm_value k, x;
	for (bool first = true; vm_map_next(&it, &k, &x); first = false)
		if ((!first && !vm_fmt_push(s, b, 0, ", ")) || !vm_fmt_push(s, b, k, NULL) ||
		    !vm_fmt_push(s, b, 0, " => ") || !vm_fmt_push(s, b, x, NULL))
			return;
	for (size_t i = from, j = s->n; i + 1 < j; i++, j--) { /* pop in order */
		vm_fmt_entry t = s->e[i];
		s->e[i] = s->e[j - 1];
		s->e[j - 1] = t;
	}
}

/* Writes what a value alone says; pushes the parts of a container. */
static void vm_put_obj(vm_buf *b, vm_fmt_stack *s, vm_value v)
{
	char num[48];
	vm_value *f = vm_fields(v);
	size_t n = vm_obj_size(v);
	switch (vm_hdr_kind(*vm_obj(v))) {
	case VM_OBJ_BIGINT:
		snprintf(num, sizeof num, "%" PRId64, vm_int(v));
		vm_buf_str(b, num);
		return;
	case VM_OBJ_STR:
	case VM_OBJ_BIGSTR:
		vm_put_quoted(b, vm_str_bytes(v), vm_str_len(v));
		return;
	case VM_OBJ_PID:
		snprintf(num, sizeof num, "#pid<%" PRIu64 ">", f[0]);
		vm_buf_str(b, num);
		return;
	case VM_OBJ_REF:
		snprintf(num, sizeof num, "#ref<%" PRIu64 ">", f[0]);
		vm_buf_str(b, num);
		return;
	case VM_OBJ_TUPLE:
		vm_buf_put(b, "(", 1);
		vm_push_seq(s, b, f, n, n == 1 ? ",)" : ")");
		return;
	case VM_OBJ_CONS:
		vm_buf_put(b, "[", 1);
		if (vm_fmt_push(s, b, f[1], vm_list_rest))
			vm_fmt_push(s, b, f[0], NULL);
		return;
	case VM_OBJ_MAP:
		vm_buf_put(b, "%{", 2);
		vm_push_map(s, b, v);
		return;
	case VM_OBJ_ARRAY:
		for (size_t i = 0; i < s->nopen; i++)
			if (s->open[i] == v) {
				vm_buf_str(b, "#array<...>");
				return;
			}
		if (s->nopen == s->capopen) {
			size_t cap = s->capopen ? 2 * s->capopen : 16;
			vm_value *o = realloc(s->open, cap * sizeof *o);
			if (!o) {
				b->oom = true;
				return;
			}
			s->open = o;
			s->capopen = cap;
		}
		s->open[s->nopen++] = v;
		vm_buf_put(b, "#array<[", 8);
		vm_push_seq(s, b, f, n, vm_array_close);
		return;
	case VM_OBJ_CLOSURE: {
		const char *name = "?";
		int arity = 0;
		if (vm_is_native(f[0]))
			vm_proto_describe(vm_native(f[0]), &name, &arity);
		vm_buf_str(b, "#fn<");
		vm_buf_str(b, name);
		snprintf(num, sizeof num, "/%d>", arity);
		vm_buf_str(b, num);
		return;
	}
	default:
		snprintf(num, sizeof num, "#object<%u>", vm_hdr_kind(*vm_obj(v)));
		vm_buf_str(b, num);
		return;
	}
}

/* The rest of a list after an element: ", " and the next, or " | " and
 * an improper tail, then "]". */
static void vm_put_list_rest(vm_buf *b, vm_fmt_stack *s, vm_value v)
{
	if (v == VM_EMPTY) {
		vm_buf_put(b, "]", 1);
	} else if (vm_is_kind(v, VM_OBJ_CONS)) {
		vm_buf_put(b, ", ", 2);
		if (vm_fmt_push(s, b, vm_fields(v)[1], vm_list_rest))
			vm_fmt_push(s, b, vm_fields(v)[0], NULL);
	} else {
		vm_buf_put(b, " | ", 3);
		if (vm_fmt_push(s, b, 0, "]"))
			vm_fmt_push(s, b, v, NULL);
	}
}

void vm_inspect(vm_state *vm, vm_buf *b, vm_value v)
{
	vm_fmt_stack s = {.e = s.local, .n = 0, .cap = sizeof s.local / sizeof s.local[0], .open = NULL};
	vm_fmt_push(&s, b, v, NULL);
	char num[32];
	while (s.n > 0 && !b->oom) {
		vm_fmt_entry e = s.e[--s.n];
		v = e.v;
		if (e.text == vm_list_rest)
			vm_put_list_rest(b, &s, v);
		else if (e.text == vm_array_close) {
			assert(s.nopen > 0);
			s.nopen--;
			vm_buf_str(b, e.text);
		} else if (e.text)
			vm_buf_str(b, e.text);
		else if (vm_is_float(v))
			vm_put_float(b, vm_float(v));
		else if (vm_is_small(v)) {
			snprintf(num, sizeof num, "%" PRId64, vm_small(v));
			vm_buf_str(b, num);
		} else if (vm_is_atom(v))
			vm_put_atom(vm, b, vm_atom(v));
		else if (vm_is_obj(v))
			vm_put_obj(b, &s, v);
		else if (vm_is_native(v))
			vm_buf_str(b, "#native");
		else
			vm_buf_str(b, v == VM_NIL ? "nil" : v == VM_TRUE ? "true" : v == VM_FALSE ? "false" : "[]");
	}
	if (s.e != s.local)
		free(s.e);
	free(s.open);
}

void vm_print_value(vm_state *vm, vm_buf *b, vm_value v)
{
	if (vm_is_str(v))
		vm_buf_put(b, vm_str_bytes(v), vm_str_len(v));
	else
		vm_inspect(vm, b, v);
}
