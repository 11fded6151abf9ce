/* context.c - building the first frame of a new context (see context.h). */
#include "context.h"

#include <string.h>

void weft__ctx_trampoline(void);

void *weft__ctx_make(void *stack_top, void (*entry)(void *), void *arg)
{
	uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
#if defined(__x86_64__)
	/* After the switch pops 8 + 6*8 bytes and returns (8 more), rsp = top:
	 * 16-byte aligned at the trampoline, as it expects. */
	uint64_t *sp = (uint64_t *)top;
	*--sp = (uint64_t)(uintptr_t)weft__ctx_trampoline; /* return address */
	*--sp = 0;					   /* rbp */
	*--sp = 0;					   /* rbx */
	*--sp = (uint64_t)(uintptr_t)arg;		   /* r12 */
	*--sp = (uint64_t)(uintptr_t)entry;		   /* r13 */
	*--sp = 0;					   /* r14 */
	*--sp = 0;					   /* r15 */
	*--sp = 0;					   /* control words */
	uint32_t mxcsr = 0x1f80;			   /* all exceptions masked, round to nearest */
	uint16_t fcw = 0x037f;				   /* x87: same, extended precision */
	memcpy(sp, &mxcsr, 4);
	memcpy((char *)sp + 4, &fcw, 2);
	return sp;
#elif defined(__aarch64__)
	uint64_t *sp = (uint64_t *)(top - 176);
	memset(sp, 0, 176);
	sp[0] = (uint64_t)(uintptr_t)arg;		    /* x19 */
	sp[1] = (uint64_t)(uintptr_t)entry;		    /* x20 */
	sp[11] = (uint64_t)(uintptr_t)weft__ctx_trampoline; /* x30 */
	sp[20] = 0;					    /* fpcr: default */
	return sp;
#else
#error "weft: no context switch for this architecture"
#endif
}
