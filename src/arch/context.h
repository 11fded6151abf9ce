/* context.h - switching between stacks (switch_<arch>.S) and telling the
 * sanitizers and Valgrind about it.
 *
 * A context is a saved stack pointer. weft__ctx_switch(&from, to) pushes the
 * callee-saved registers and the FPU control state (x86-64: MXCSR and the x87
 * control word; aarch64: FPCR) on the current stack, stores the stack pointer
 * in *from, loads `to` and pops the same from there. No system call, no signal
 * mask. weft__ctx_make prepares a fresh stack so that the first switch to it
 * calls entry(arg) on it; entry must never return.
 */
#ifndef WEFT_ARCH_CONTEXT_H
#define WEFT_ARCH_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

void weft__ctx_switch(void **from, void *to);
void *weft__ctx_make(void *stack_top, void (*entry)(void *), void *arg);

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif

#ifdef WEFT_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old, size_t *size_old);
#endif
#ifdef WEFT_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define WEFT_HAVE_VALGRIND 1
#endif
#endif

#endif
