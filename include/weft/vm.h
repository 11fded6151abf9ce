/* weft/vm.h - the weft language's VM, embedded in C: load source, call
 * functions with arguments built in C, read the results back, run a
 * program's main.
 *
 * The language is defined in LANGUAGE.md (docs/language.md for the
 * decisions this implementation made where it is silent). A weft_vm_t
 * holds one program: the files loaded into it, with their imports and the
 * prelude (the part of the standard library written in the language).
 * Its calls run on the calling thread, one at a time: a weft_vm_t is used
 * by one thread at a time.
 *
 * Values cross the boundary as terms (weft_vm_term_t): a kind and its
 * data, with tuples, lists and maps as arrays of terms. Terms passed in
 * are read, not kept; terms returned are allocated and freed with
 * weft_vm_term_free.
 */
#ifndef WEFT_VM_H
#define WEFT_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_vm weft_vm_t;

typedef struct weft_vm_opts {
	size_t size;		 /* sizeof(weft_vm_opts_t) */
	const char *lib_dir;	 /* the standard library (prelude.wf, ...); NULL: the one weft was built with */
	int out_fd;		 /* where print writes; 0: standard output (fd 1) */
	uint64_t seed;		 /* the program seed (random); 0: WEFT_SEED from the environment, or a fixed seed */
	uint64_t max_reductions; /* a call (or main) that runs longer is abandoned: -ETIMEDOUT; 0: no limit */
	size_t max_heap_bytes;	 /* the heap may not grow past this: the code raises :system_limit; 0: no limit */
} weft_vm_opts_t;

/* A VM with no program loaded yet: 0, -EINVAL, -EBADF (out_fd is not
 * open), -ENOMEM. print writes with write(2): a host that prints to a
 * pipe should ignore SIGPIPE (a failed write then raises (:error, :io,
 * :epipe) in the code, as any write error does). */
int weft_vm_create(weft_vm_t **out, const weft_vm_opts_t *opts);
void weft_vm_destroy(weft_vm_t *vm);

/* Compile a file (and what it imports) into vm. 0; -EINVAL if the source
 * has errors (weft_vm_error_count / weft_vm_error_get), -ENOENT or another
 * -errno if a file cannot be read (also listed as an error), -ENOMEM. The
 * constants of the file run on its first call or run. name only names the
 * source in messages (and its module: the name without directory and .wf). */
int weft_vm_load_file(weft_vm_t *vm, const char *path);
int weft_vm_load_source(weft_vm_t *vm, const char *name, const char *src, size_t len);

typedef struct weft_vm_error {
	const char *path;
	unsigned line, col; /* 1-based; col in bytes */
	const char *message;
	const char *source_line; /* the line the error is on, or NULL */
} weft_vm_error_t;

/* The errors of every load so far, in order (valid until the next load or
 * the VM is destroyed). */
size_t weft_vm_error_count(const weft_vm_t *vm);
int weft_vm_error_get(const weft_vm_t *vm, size_t i, weft_vm_error_t *out);
/* "PATH:LINE:COL: error: MESSAGE", the line and a caret, for each. */
void weft_vm_print_errors(const weft_vm_t *vm, FILE *f);

typedef enum weft_vm_kind {
	WEFT_VM_NIL,
	WEFT_VM_BOOL,
	WEFT_VM_INT,
	WEFT_VM_FLOAT,
	WEFT_VM_ATOM,	/* str: the name */
	WEFT_VM_STRING, /* str: the bytes */
	WEFT_VM_TUPLE,	/* items */
	WEFT_VM_LIST,	/* items */
	WEFT_VM_MAP,	/* items: key, value, key, value, ... (n = 2 * entries) */
	WEFT_VM_OTHER,	/* a closure, pid, ref or array (results only): str is how inspect writes it */
} weft_vm_kind_t;

typedef struct weft_vm_term {
	weft_vm_kind_t kind;
	bool b;
	int64_t i;
	double f;
	const char *str; /* NUL-terminated, len bytes (a string may hold NULs) */
	size_t len;
	struct weft_vm_term *items;
	size_t n;
} weft_vm_term_t;

/* Call fn of module (its name: a loaded file's name without .wf; NULL:
 * the last file loaded without errors) with nargs arguments. A file whose
 * load failed is never called. Returns 0 and the result in *result; 1 if
 * the call raised, with the raised value in *result (a runtime error is
 * (:error, kind, detail)); -ENOENT (no such module or function), -EINVAL
 * (a bad term: a float that is not finite, an unknown kind, a NULL with a
 * length, a map with an odd n), -E2BIG (arguments of more than 2^26 terms
 * in all, or a result nested deeper than 10,000), -ETIMEDOUT (the call ran
 * past opts.max_reductions and was abandoned), -ENOMEM; WEFT_VM_HALTED if
 * the code called halt(status) (the status: weft_vm_halt_status). */
#define WEFT_VM_HALTED 2
int weft_vm_call(weft_vm_t *vm, const char *module, const char *fn, const weft_vm_term_t *args, size_t nargs,
		 weft_vm_term_t **result);
int weft_vm_halt_status(const weft_vm_t *vm);
void weft_vm_term_free(weft_vm_term_t *t);

/* Run the last loaded file as a program (LANGUAGE.md "Programs and
 * errors"): main(args) or main(), args the strings argv[0 .. argc-1].
 * Returns the exit status: main's result if it is an integer 0..255, else
 * 0; 1 after a crash (reported on stderr); halt's status; -errno if it
 * cannot start. */
int weft_vm_run_main(weft_vm_t *vm, int argc, char **argv);

/* Print the bytecode of the last loaded file to f. */
int weft_vm_disassemble(const weft_vm_t *vm, FILE *f);

#ifdef __cplusplus
}
#endif

#endif
