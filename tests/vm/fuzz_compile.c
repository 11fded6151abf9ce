/* fuzz_compile.c - the libFuzzer target of the whole language front end
 * and the interpreter: any bytes are compiled (lexer, parser, compiler,
 * with the prelude); a program that compiles has its `main` run for a
 * bounded number of reductions with a bounded heap. Nothing may crash,
 * leak or read out of bounds. Built with -DWEFT_FUZZ=ON (clang only); run
 * as build/fuzz/fuzz_compile -max_total_time=600 tests/vm/corpus/compile. */
#include "vm/compile.h"
#include "vm/interp.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <weft/time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The VM alone is linked (the core is built by gcc only): its one use of
 * the core, the clock of now_ms and now_us, is given here. */
weft_time_t weft_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (weft_time_t)ts.tv_sec * 1000000000 + (weft_time_t)ts.tv_nsec;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int devnull = -1;
	if (devnull < 0) {
		devnull = open("/dev/null", O_RDWR);
		dup2(devnull, 0); /* read_line sees the end at once */
	}
	vm_state st;
	vm_program prog;
	vm_proc p;
	if (vm_state_init(&st))
		return 0;
	st.out_fd = devnull;
	st.max_heap_words = 1 << 20;
	if (vm_program_init(&prog, &st, WEFT_LIB_DIR) || vm_proc_init(&p, &st)) {
		vm_program_free(&prog);
		vm_state_free(&st);
		return 0;
	}
	st.prog = &prog;
	vm_module *m;
	if (vm_compile_source(&prog, "fuzz.wf", (const char *)data, size, &m) == 0) {
		/* constants first, then main: each for at most 100,000 reductions */
		vm_value r;
		bool ok = true;
		for (uint32_t i = 0; ok && i < prog.nmods; i++) {
			vm_module *mm = prog.mods[i];
			if (!mm->init)
				continue;
			vm_header *o = vm_lit_alloc(&st, 2);
			o[0] = vm_hdr(VM_OBJ_CLOSURE, 1);
			o[1] = vm_from_native(mm->init);
			ok = vm_call_setup(&p, vm_from_obj(o), NULL, 0) == 0 && vm_run(&p, 100000, &r) == VM_RUN_DONE;
		}
		const vm_fnent *f = vm_module_fn(m, "main");
		if (ok && f && f->proto->nparams == 0 && vm_call_setup(&p, f->closure, NULL, 0) == 0)
			(void)vm_run(&p, 100000, &r);
	}
	vm_proc_free(&p);
	vm_program_free(&prog);
	vm_state_free(&st);
	return 0;
}
