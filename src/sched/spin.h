/* spin.h - a test-and-test-and-set spinlock for very short critical sections
 * (wait queues, timer shards), and futex wrappers. A waiter spins with a pause
 * hint, then yields the CPU so a preempted holder can finish. */
#ifndef WEFT_SCHED_SPIN_H
#define WEFT_SCHED_SPIN_H

#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline void weft__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

static inline void weft__spin_lock(_Atomic uint32_t *l)
{
	for (int n = 0;; n++) {
		/* acquire: the critical section reads what the previous holder wrote. */
		if (!atomic_load_explicit(l, memory_order_relaxed) &&
		    !atomic_exchange_explicit(l, 1, memory_order_acquire))
			return;
		if (n < 64)
			weft__cpu_relax();
		else
			sched_yield();
	}
}

static inline void weft__spin_unlock(_Atomic uint32_t *l)
{
	atomic_store_explicit(l, 0, memory_order_release);
}

/* For assert() only: whether l is held. A spinlock records no owner, so this
 * says that somebody holds it - the caller, where a comment says "under the
 * lock" and the code is right. */
#define weft__spin_held(l) (atomic_load_explicit((l), memory_order_relaxed) != 0)

static inline void weft__futex_wait(_Atomic uint32_t *addr, uint32_t val, const struct timespec *rel)
{
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, rel, NULL, 0);
}

static inline void weft__futex_wake(_Atomic uint32_t *addr, int n)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

static inline struct timespec weft__ts_of(int64_t ns)
{
	if (ns < 0)
		ns = 0;
	return (struct timespec){.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
}

#endif
