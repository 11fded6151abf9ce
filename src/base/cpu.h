/* cpu.h - what the CPU and the compiler offer every module: the pause hint
 * for spin loops, branch hints, and the cache-line size shared data is
 * padded to. */
#ifndef WEFT_BASE_CPU_H
#define WEFT_BASE_CPU_H

/* The line size assumed for padding: 64 bytes on x86-64 and on the common
 * aarch64 cores. Data written by different threads goes on different lines
 * (alignas(WEFT_CACHELINE)), so that one thread's writes do not keep taking
 * the line away from another (false sharing). */
#define WEFT_CACHELINE 64

/* Hints for the compiler (and the reader). */
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Tell the CPU this is a spin-wait loop: x86's pause (which also keeps the
 * loop from flooding the memory pipeline and gives a hyperthread sibling the
 * core), aarch64's yield. */
static inline void weft__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif
