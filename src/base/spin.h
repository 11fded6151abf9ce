/* spin.h - a test-and-test-and-set spinlock for very short critical sections
 * (wait queues, timer shards, channels, the netpoller's descriptor slots).
 *
 * A holder of such a lock is almost always on a CPU and about to let go, so
 * a waiter spins with the pause hint. But the OS (or a hypervisor) may
 * preempt a thread inside its critical section, and a waiter that only spun
 * would then burn its whole time slice while the holder waits for a CPU -
 * on a machine with fewer CPUs than runnable threads, possibly the very CPU
 * the holder needs. So after WEFT_SPIN_PAUSES rounds a waiter gives its CPU
 * away at every further round (weft__spin_backoff): the preempted holder
 * gets to run and release the lock. No fairness and no sleeping, so the
 * sections must be short: one that may block (the netpoller's, queueing an
 * io_uring submission) costs its waiters yields, nothing worse.
 *
 * The lock word is a uint32_t (0 free, 1 held), so public structs that must
 * stay plain C (weft_waitq_t) can hold one.
 */
#ifndef WEFT_BASE_SPIN_H
#define WEFT_BASE_SPIN_H

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "cpu.h"

#define WEFT_SPIN_PAUSES 64 /* rounds of pause before a waiter starts yielding */

/* Round n (from 0) of a wait for something another thread is about to do
 * (release a lock, finish a short step): pause, or, after WEFT_SPIN_PAUSES
 * rounds, yield the CPU in case that thread was preempted. */
static inline void weft__spin_backoff(int n)
{
	if (n < WEFT_SPIN_PAUSES)
		weft__cpu_relax();
	else
		sched_yield();
}

static inline void weft__spin_lock(_Atomic uint32_t *l)
{
	for (int n = 0;; n++) {
		/* acquire: the critical section reads what the previous holder wrote. */
		if (!atomic_load_explicit(l, memory_order_relaxed) &&
		    !atomic_exchange_explicit(l, 1, memory_order_acquire))
			return;
		weft__spin_backoff(n);
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

#endif
