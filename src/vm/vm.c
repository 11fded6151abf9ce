/* vm.c - the embedding API (weft/vm.h): a VM with its program, terms in
 * and out, running a program's main. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <weft/vm.h>

#include "interp.h"
#include "obj.h"

#ifndef WEFT_LIB_DIR
#define WEFT_LIB_DIR "/usr/local/share/weft/lib"
#endif

struct weft_vm {
	vm_state st;
	vm_program prog;
	vm_proc proc; /* runs the calls made from C and main */
	vm_module *last;
	uint32_t inits_done;	 /* modules whose constants have been set */
	uint64_t max_reductions; /* per call (weft_vm_opts_t), 0: none */
	char *lib_dir;
};

int weft_vm_create(weft_vm_t **out, const weft_vm_opts_t *uo)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	weft_vm_opts_t o = {0};
	if (uo) {
		if (uo->size < sizeof(size_t) || uo->size > 4096)
			return -EINVAL;
		memcpy(&o, uo, uo->size < sizeof o ? uo->size : sizeof o);
		if (uo->size > sizeof o)
			for (size_t i = sizeof o; i < uo->size; i++)
				if (((const unsigned char *)uo)[i])
					return -EINVAL; /* a newer field we do not know, set */
	}
	if (o.out_fd < 0)
		return -EINVAL;
	if (o.out_fd && fcntl(o.out_fd, F_GETFD) < 0)
		return -EBADF;
	weft_vm_t *vm = calloc(1, sizeof *vm);
	if (!vm)
		return -ENOMEM;
	const char *lib = o.lib_dir ? o.lib_dir : getenv("WEFT_LIB");
	vm->lib_dir = strdup(lib && *lib ? lib : WEFT_LIB_DIR);
	if (!vm->lib_dir || vm_state_init(&vm->st)) {
		free(vm->lib_dir);
		free(vm);
		return -ENOMEM;
	}
	if (vm_program_init(&vm->prog, &vm->st, vm->lib_dir) || vm_proc_init(&vm->proc, &vm->st)) {
		vm_program_free(&vm->prog);
		vm_state_free(&vm->st);
		free(vm->lib_dir);
		free(vm);
		return -ENOMEM;
	}
	vm->st.prog = &vm->prog;
	if (o.out_fd)
		vm->st.out_fd = o.out_fd;
	vm->max_reductions = o.max_reductions;
	vm->st.max_heap_words = o.max_heap_bytes / sizeof(vm_value);
	const char *stress = getenv("WEFT_GC_STRESS");
	vm->st.gc_stress = stress && strcmp(stress, "1") == 0;
	const char *seed = getenv("WEFT_SEED");
	if (o.seed)
		vm->st.seed = o.seed;
	else if (seed && *seed)
		vm->st.seed = strtoull(seed, NULL, 0);
	*out = vm;
	return 0;
}

void weft_vm_destroy(weft_vm_t *vm)
{
	if (!vm)
		return;
	vm_proc_free(&vm->proc);
	vm_program_free(&vm->prog);
	vm_state_free(&vm->st);
	free(vm->lib_dir);
	free(vm);
}

int weft_vm_load_file(weft_vm_t *vm, const char *path)
{
	if (!vm || !path)
		return -EINVAL;
	vm_module *m;
	int e = vm_compile_file(&vm->prog, path, &m);
	if (!e)
		vm->last = m;
	return e;
}

int weft_vm_load_source(weft_vm_t *vm, const char *name, const char *src, size_t len)
{
	if (!vm || !name || (!src && len))
		return -EINVAL;
	vm_module *m;
	int e = vm_compile_source(&vm->prog, name, src ? src : "", len, &m);
	if (!e)
		vm->last = m;
	return e;
}

size_t weft_vm_error_count(const weft_vm_t *vm)
{
	return vm ? vm->prog.nerrors : 0;
}

int weft_vm_error_get(const weft_vm_t *vm, size_t i, weft_vm_error_t *out)
{
	if (!vm || !out || i >= vm->prog.nerrors)
		return -EINVAL;
	const vm_error *e = &vm->prog.errors[i];
	*out = (weft_vm_error_t){e->path, e->line, e->col, e->msg, e->text};
	return 0;
}

void weft_vm_print_errors(const weft_vm_t *vm, FILE *f)
{
	if (vm && f)
		vm_print_errors(&vm->prog, f);
}

int weft_vm_halt_status(const weft_vm_t *vm)
{
	return vm ? vm->st.halt_status : -EINVAL;
}

int weft_vm_disassemble(const weft_vm_t *vm, FILE *f)
{
	if (!vm || !f || !vm->last)
		return -EINVAL;
	vm_disassemble(&vm->prog, vm->last, f);
	return 0;
}

/* ------------------------------------------------------------ terms in */

/* Push one value on p's stack (a root). */
static int push(vm_proc *p, vm_value v)
{
	if (vm_stack_room(p, p->sp, 1))
		return -ENOMEM;
	p->stack[p->sp++] = v;
	return 0;
}

/* Build t on top of p's stack (one slot). 0, -EINVAL, -ENOMEM. */
static int build(vm_proc *p, const weft_vm_term_t *t, int depth, size_t *left)
{
	if (*left == 0)
		return -E2BIG; /* a DAG of terms can name 2^n of them */
	--*left;
	if (depth > 1000 ||
	    ((t->kind == WEFT_VM_TUPLE || t->kind == WEFT_VM_LIST || t->kind == WEFT_VM_MAP) && t->n && !t->items))
		return -EINVAL;
	switch (t->kind) {
	case WEFT_VM_NIL:
		return push(p, VM_NIL);
	case WEFT_VM_BOOL:
		return push(p, vm_bool(t->b));
	case WEFT_VM_INT: {
		int e = push(p, VM_NIL);
		if (!e && vm_int_new(p, t->i, &p->stack[p->sp - 1]))
			e = -ENOMEM;
		return e;
	}
	case WEFT_VM_FLOAT:
		if (!vm_float_ok(t->f))
			return -EINVAL;
		return push(p, vm_from_float(t->f));
	case WEFT_VM_ATOM: {
		if (!t->str && t->len)
			return -EINVAL;
		int64_t a = vm_atom_intern(p->vm, t->str ? t->str : "", t->len);
		return a < 0 ? (int)a : push(p, vm_from_atom((uint32_t)a));
	}
	case WEFT_VM_STRING: {
		if (!t->str && t->len)
			return -EINVAL;
		int e = push(p, VM_NIL);
		if (!e && vm_str_new(p, t->str ? t->str : "", t->len, &p->stack[p->sp - 1]))
			e = -ENOMEM;
		return e;
	}
	case WEFT_VM_TUPLE: {
		if (t->n > 1u << 20)
			return -EINVAL;
		uint32_t at = p->sp;
		for (size_t i = 0; i < t->n; i++) {
			int e = build(p, &t->items[i], depth + 1, left);
			if (e)
				return e;
		}
		size_t words = 1 + t->n < 2 ? 2 : 1 + t->n;
		if (vm_need(p, words))
			return -ENOMEM;
		vm_header *o = vm_take(p, words);
		o[0] = vm_hdr(VM_OBJ_TUPLE, t->n);
		o[1] = VM_NIL;
		for (size_t i = 0; i < t->n; i++)
			o[1 + i] = p->stack[at + i];
		p->sp = at;
		return push(p, vm_from_obj(o));
	}
	case WEFT_VM_LIST: {
		uint32_t at = p->sp;
		int e = push(p, VM_EMPTY);
		for (size_t i = 0; !e && i < t->n; i++)
			e = build(p, &t->items[i], depth + 1, left);
		for (size_t i = t->n; !e && i-- > 0;) {
			if (vm_cons(p, &p->stack[at + 1 + i], &p->stack[at], &p->stack[at]))
				e = -ENOMEM;
		}
		p->sp = at + 1;
		return e;
	}
	case WEFT_VM_MAP: {
		if (t->n % 2)
			return -EINVAL;
		uint32_t at = p->sp;
		int e = push(p, vm_map_empty);
		for (size_t i = 0; !e && i < t->n; i += 2) {
			e = build(p, &t->items[i], depth + 1, left);
			if (!e)
				e = build(p, &t->items[i + 1], depth + 1, left);
			if (!e && vm_map_put(p, &p->stack[at], &p->stack[at + 1], &p->stack[at + 2], &p->stack[at]))
				e = -ENOMEM;
			p->sp = at + 1;
		}
		return e;
	}
	default:
		return -EINVAL;
	}
}

/* ------------------------------------------------------------ terms out */

static int unbuild(vm_proc *p, uint32_t slot, weft_vm_term_t *t, int depth);

/* The elements of the list in stack[slot] into items (n of them). A map's
 * entry list gives (k, v) tuples: each becomes two items. Every value is
 * re-read from its slot: a map's entries are built on the heap (a
 * collection may run). */
static int unbuild_list(vm_proc *p, uint32_t slot, weft_vm_term_t *items, size_t n, bool pairs, int depth)
{
	uint32_t cur = p->sp;
	if (push(p, p->stack[slot]) || push(p, VM_NIL))
		return -ENOMEM;
	uint32_t it = cur + 1;
	int e = 0;
	for (size_t i = 0; !e && i < n; i += pairs ? 2 : 1) {
		p->stack[it] = vm_fields(p->stack[cur])[0];
		p->stack[cur] = vm_fields(p->stack[cur])[1];
		if (!pairs) {
			e = unbuild(p, it, &items[i], depth + 1);
			continue;
		}
		for (int k = 0; !e && k < 2; k++) {
			if (push(p, vm_fields(p->stack[it])[k])) {
				e = -ENOMEM;
				break;
			}
			e = unbuild(p, p->sp - 1, &items[i + (size_t)k], depth + 1);
			p->sp--;
		}
	}
	p->sp = cur;
	return e;
}

static int unbuild(vm_proc *p, uint32_t slot, weft_vm_term_t *t, int depth)
{
	memset(t, 0, sizeof *t);
	if (depth > 10000)
		return -E2BIG;
	vm_value v = p->stack[slot];
	if (v == VM_NIL) {
		t->kind = WEFT_VM_NIL;
	} else if (v == VM_TRUE || v == VM_FALSE) {
		t->kind = WEFT_VM_BOOL;
		t->b = v == VM_TRUE;
	} else if (vm_is_int(v)) {
		t->kind = WEFT_VM_INT;
		t->i = vm_int(v);
	} else if (vm_is_float(v)) {
		t->kind = WEFT_VM_FLOAT;
		t->f = vm_float(v);
	} else if (vm_is_atom(v) || vm_is_str(v)) {
		size_t len;
		const char *s;
		if (vm_is_atom(v)) {
			t->kind = WEFT_VM_ATOM;
			s = vm_atom_name(p->vm, vm_atom(v), &len);
		} else {
			t->kind = WEFT_VM_STRING;
			s = vm_str_bytes(v);
			len = vm_str_len(v);
		}
		char *c = malloc(len + 1);
		if (!c)
			return -ENOMEM;
		memcpy(c, s, len);
		c[len] = 0;
		t->str = c;
		t->len = len;
	} else if (vm_is_kind(v, VM_OBJ_TUPLE)) {
		size_t n = vm_obj_size(v);
		t->kind = WEFT_VM_TUPLE;
		t->items = calloc(n ? n : 1, sizeof *t->items);
		if (!t->items)
			return -ENOMEM;
		t->n = n;
		for (size_t i = 0; i < n; i++) {
			if (push(p, vm_fields(p->stack[slot])[i]))
				return -ENOMEM;
			int e = unbuild(p, p->sp - 1, &t->items[i], depth + 1);
			p->sp--;
			if (e)
				return e;
		}
	} else if (vm_is_list(v)) {
		size_t n = 0;
		for (vm_value l = v; vm_is_kind(l, VM_OBJ_CONS); l = vm_fields(l)[1])
			n++;
		t->kind = WEFT_VM_LIST;
		t->items = calloc(n ? n : 1, sizeof *t->items);
		if (!t->items)
			return -ENOMEM;
		t->n = n;
		return unbuild_list(p, slot, t->items, n, false, depth);
	} else if (vm_is_map(v)) {
		size_t n = 2 * vm_map_size(v);
		t->kind = WEFT_VM_MAP;
		t->items = calloc(n ? n : 1, sizeof *t->items);
		if (!t->items)
			return -ENOMEM;
		t->n = n;
		uint32_t at = p->sp;
		if (push(p, VM_EMPTY))
			return -ENOMEM;
		if (vm_map_to_list(p, &p->stack[slot], &p->stack[at])) {
			p->sp = at;
			return -ENOMEM;
		}
		int e = unbuild_list(p, at, t->items, n, true, depth);
		p->sp = at;
		return e;
	} else {
		vm_buf b = {0};
		vm_inspect(p->vm, &b, v);
		if (b.oom) {
			free(b.b);
			return -ENOMEM;
		}
		t->kind = WEFT_VM_OTHER;
		t->str = b.b ? b.b : strdup("");
		t->len = b.len;
		if (!t->str)
			return -ENOMEM;
	}
	return 0;
}

static void term_clear(weft_vm_term_t *t)
{
	if (t->kind == WEFT_VM_ATOM || t->kind == WEFT_VM_STRING || t->kind == WEFT_VM_OTHER)
		free((char *)t->str);
	if (t->items) {
		for (size_t i = 0; i < t->n; i++)
			term_clear(&t->items[i]);
		free(t->items);
	}
}

void weft_vm_term_free(weft_vm_term_t *t)
{
	if (t) {
		term_clear(t);
		free(t);
	}
}

/* ------------------------------------------------------------ calls */

/* The function value of a proto (its literal closure). */
static int proto_closure(vm_state *st, const vm_proto *pr, vm_value *out)
{
	vm_header *o = vm_lit_alloc(st, 2);
	if (!o)
		return -ENOMEM;
	o[0] = vm_hdr(VM_OBJ_CLOSURE, 1);
	o[1] = vm_from_native(pr);
	*out = vm_from_obj(o);
	return 0;
}

/* Run fn(args) in vm's process; the result (or the raised value) is left
 * in stack[0]. */
static enum vm_run run(weft_vm_t *vm, vm_value fn, uint32_t nargs)
{
	vm_proc *p = &vm->proc;
	vm_value args[200];
	memcpy(args, &p->stack[1], nargs * sizeof *args);
	vm_value r = VM_NIL;
	enum vm_run e = vm_call(p, fn, args, nargs, vm->max_reductions, &r);
	p->running = false;
	p->nhandlers = 0;
	p->sp = 1;
	p->stack[0] = e == VM_RUN_CRASH ? p->raised : r;
	p->raised = VM_NIL;
	return e;
}

/* The constants of every module loaded since the last run. */
static enum vm_run run_inits(weft_vm_t *vm)
{
	while (vm->inits_done < vm->prog.nmods) {
		vm_module *m = vm->prog.mods[vm->inits_done++];
		if (!m->init || m->failed)
			continue;
		vm_value fn;
		if (proto_closure(&vm->st, m->init, &fn))
			return VM_RUN_CRASH;
		vm->proc.sp = 1;
		enum vm_run e = run(vm, fn, 0);
		if (e != VM_RUN_DONE)
			return e;
	}
	return VM_RUN_DONE;
}

static vm_module *find_mod(weft_vm_t *vm, const char *name)
{
	if (!name)
		return vm->last;
	for (uint32_t i = 0; i < vm->prog.nmods; i++)
		if (!vm->prog.mods[i]->failed && strcmp(vm->prog.mods[i]->base, name) == 0)
			return vm->prog.mods[i];
	return NULL;
}

static int result_term(weft_vm_t *vm, weft_vm_term_t **result)
{
	weft_vm_term_t *t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	int e = unbuild(&vm->proc, 0, t, 0);
	vm->proc.sp = 0;
	if (e) {
		weft_vm_term_free(t);
		return e;
	}
	*result = t;
	return 0;
}

int weft_vm_call(weft_vm_t *vm, const char *module, const char *fn, const weft_vm_term_t *args, size_t nargs,
		 weft_vm_term_t **result)
{
	if (!vm || !fn || (nargs && !args) || !result || nargs > 200)
		return -EINVAL;
	*result = NULL;
	vm_module *m = find_mod(vm, module);
	const vm_fnent *f = m ? vm_module_fn(m, fn) : NULL;
	if (!f)
		return -ENOENT;
	vm_proc *p = &vm->proc;
	enum vm_run r = run_inits(vm);
	if (r == VM_RUN_DONE) {
		p->sp = 1;
		p->stack[0] = VM_NIL;
		size_t left = (size_t)1 << 26;
		for (size_t i = 0; i < nargs; i++) {
			int e = build(p, &args[i], 0, &left);
			if (e) {
				p->sp = 0;
				return e;
			}
		}
		r = run(vm, f->closure, (uint32_t)nargs);
	}
	if (r == VM_RUN_HALT) {
		p->sp = 0;
		return WEFT_VM_HALTED;
	}
	if (r == VM_RUN_LIMIT) {
		p->sp = 0;
		return -ETIMEDOUT;
	}
	int e = result_term(vm, result);
	return e ? e : r == VM_RUN_CRASH;
}

/* ------------------------------------------------------------ main */

int weft_vm_run_main(weft_vm_t *vm, int argc, char **argv)
{
	if (!vm || argc < 0 || (argc && !argv))
		return -EINVAL;
	if (!vm->last)
		return -ENOENT;
	/* args: a literal list, shared by every process */
	vm_value list = VM_EMPTY;
	for (int i = argc; i-- > 0;) {
		vm_value s = vm_lit_str(&vm->st, argv[i], strlen(argv[i]));
		vm_header *c = vm_lit_alloc(&vm->st, 3);
		if (s == VM_NIL || !c)
			return -ENOMEM;
		c[0] = vm_hdr(VM_OBJ_CONS, 2);
		c[1] = s;
		c[2] = list;
		list = vm_from_obj(c);
	}
	vm->st.args = list;
	const vm_fnent *f = vm_module_fn(vm->last, "main");
	if (!f) {
		fprintf(stderr, "%s: no function `main`\n", vm->last->path);
		return 1;
	}
	vm_proc *p = &vm->proc;
	enum vm_run r = run_inits(vm);
	if (r == VM_RUN_DONE) {
		p->sp = 1;
		uint32_t nargs = 0;
		if (f->proto->nparams == 1) {
			p->stack[p->sp++] = list;
			nargs = 1;
		}
		r = run(vm, f->closure, nargs);
	}
	switch (r) {
	case VM_RUN_DONE: {
		vm_value v = p->stack[0];
		p->sp = 0;
		return vm_is_small(v) && vm_small(v) >= 0 && vm_small(v) <= 255 ? (int)vm_small(v) : 0;
	}
	case VM_RUN_HALT:
		p->sp = 0;
		return vm->st.halt_status;
	default:
		p->raised = p->stack[0];
		vm_print_crash(p, "#pid<1>", stderr);
		p->raised = VM_NIL;
		p->sp = 0;
		return 1;
	}
}
