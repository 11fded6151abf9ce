/* switch_x86_64.S - context switch for x86-64 (System V ABI).
 *
 * Saved on the switching stack, from high to low addresses:
 *   return address, rbp, rbx, r12, r13, r14, r15, [mxcsr:4 | x87 cw:2 | pad:2]
 * The FPU control state is callee-saved in the ABI, so it travels with the
 * context; the status flags do not need to.
 */
	.text
	.globl	weft__ctx_switch
	.type	weft__ctx_switch, @function
	.p2align 4
weft__ctx_switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	weft__ctx_switch, .-weft__ctx_switch

/* First instructions of a new context: r12 = arg, r13 = entry. The stack is
 * 16-byte aligned here, so the call below gives entry the ABI's alignment.
 * entry never returns. */
	.globl	weft__ctx_trampoline
	.type	weft__ctx_trampoline, @function
	.p2align 4
weft__ctx_trampoline:
	.cfi_startproc
	.cfi_undefined rip
	movq	%r12, %rdi
	callq	*%r13
	ud2
	.cfi_endproc
	.size	weft__ctx_trampoline, .-weft__ctx_trampoline

	.section .note.GNU-stack,"",@progbits
