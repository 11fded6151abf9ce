/* compile.h - programs: source files compiled to bytecode (compile.c),
 * with their imports, top-level functions and constants. */
#ifndef WEFT_VM_COMPILE_H
#define WEFT_VM_COMPILE_H

#include <stdio.h>

#include "ast.h"
#include "code.h"

/* A global not yet set (a constant read before its initialiser ran). */
#define VM_UNSET VM_TAGGED(VM_TAG_CONST, 4)

typedef struct vm_error {
	char *path; /* as given */
	uint32_t line, col;
	char *msg;
	char *text; /* the source line, without its newline (NULL if unknown) */
} vm_error;

typedef struct vm_fnent {
	const char *name;
	vm_proto *proto;
	vm_value closure; /* the function as a value (a literal closure) */
} vm_fnent;

typedef struct vm_module {
	char *path; /* as given or resolved */
	char *base; /* the file name without directory and .wf */
	vm_fnent *fns;
	uint32_t nfns;
	uint32_t *index; /* names of fns and consts: open addressing, entry + 1 (consts: | 1 << 31) */
	uint32_t index_cap;
	struct vm_module **imports; /* by base name, in the module's scope */
	uint32_t nimports;
	uint32_t *consts; /* global indexes of the module's top-level constants */
	const char **const_names;
	uint32_t nconsts;
	vm_proto *init; /* evaluates the constants, in order (NULL if none) */
	bool done;	/* compiled (imports that come back to it are cycles until then) */
	bool failed;	/* it had errors: never run, called or imported */
} vm_module;

typedef struct vm_program {
	vm_state *vm;
	struct vm_arena *arena; /* protos, code, names: freed with the program */
	vm_module **mods;	/* in the order their initialisers run (imports first) */
	uint32_t nmods, capmods;
	vm_value *globals;	/* top-level constants of every module (literal area), VM_UNSET until set */
	vm_value *global_names; /* each one's name, an atom (for :undef) */
	uint32_t nglobals, capglobals;
	vm_module *prelude;  /* functions every module sees (lib/prelude.wf) */
	bool prelude_failed; /* it did not compile: every load fails */
	const char *lib_dir;
	vm_error *errors;
	uint32_t nerrors, caperrors;
	struct vm_biwrap *biwraps; /* built-ins used as values: a function each */
	uint32_t nbiwraps, capbiwraps;
} vm_program;

/* A built-in as a value: a function of its (fixed) arity that calls it. */
struct vm_biwrap {
	const void *builtin;
	vm_value closure;
};

/* A program on vm; lib_dir is where `import "name"` without a path and
 * the prelude are found (NULL: no prelude). 0 or -ENOMEM. */
int vm_program_init(vm_program *prog, vm_state *vm, const char *lib_dir);
void vm_program_free(vm_program *prog);

/* Compile the file at path (and its imports). 0, or -EINVAL with the
 * errors in prog->errors, or -ENOMEM, or -errno if the file cannot be
 * read (also recorded as an error). */
int vm_compile_file(vm_program *prog, const char *path, vm_module **out);
/* The same for source in memory (path only names it). */
int vm_compile_source(vm_program *prog, const char *path, const char *src, size_t len, vm_module **out);

/* A top-level function of m, or NULL. */
const vm_fnent *vm_module_fn(const vm_module *m, const char *name);

/* Print the errors as "PATH:LINE:COL: error: MSG", the line and a caret. */
void vm_print_errors(const vm_program *prog, FILE *f);

/* Print the bytecode of every function of m (and its closures), with the
 * source line of each instruction. */
void vm_disassemble(const vm_program *prog, const vm_module *m, FILE *f);

#endif
