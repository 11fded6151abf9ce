/* interp.h - running bytecode in a process: start a call, run it for a
 * budget of reductions, resume it. */
#ifndef WEFT_VM_INTERP_H
#define WEFT_VM_INTERP_H

#include "compile.h"

enum vm_run {
	VM_RUN_DONE,  /* the call returned: its value in *result */
	VM_RUN_YIELD, /* the budget is spent: vm_run again to go on */
	VM_RUN_CRASH, /* an uncaught raise: p->raised, p->trace */
	VM_RUN_HALT,  /* halt(status): vm->halt_status */
	VM_RUN_LIMIT, /* vm_call's limit of reductions was reached: the call is abandoned */
};

/* Set p up to call fn (a closure value) with args (copied into p's
 * registers; they must be p's values: immediates, literals or objects of
 * p's heap). 0, or -EINVAL (fn is no function), -ENOMEM. A wrong number
 * of arguments raises (:badarity, name) when the call runs. */
int vm_call_setup(vm_proc *p, vm_value fn, const vm_value *args, uint32_t nargs);

/* Run p's call for at most `budget` reductions (one per call and per
 * backward jump). */
enum vm_run vm_run(vm_proc *p, int64_t budget, vm_value *result);

/* Run fn(args) to its end in p (budget after budget): DONE, CRASH or
 * HALT; LIMIT after max_reductions in all (0: no limit). */
enum vm_run vm_call(vm_proc *p, vm_value fn, const vm_value *args, uint32_t nargs, uint64_t max_reductions,
		    vm_value *result);

/* Room for registers [0, base + nregs): 0, -E2BIG (past the stack
 * limit), -ENOMEM. The stack may move. */
int vm_stack_room(vm_proc *p, uint32_t base, uint32_t nregs);

/* Print a crash as LANGUAGE.md says: "** process #pid<N> crashed: REASON"
 * and the trace, to f. */
void vm_print_crash(vm_proc *p, const char *who, FILE *f);

/* A deep copy of v into the VM's literal area (top-level constants): 0
 * or -ENOMEM. */
int vm_lit_copy(vm_state *vm, vm_value v, vm_value *out);

#endif
