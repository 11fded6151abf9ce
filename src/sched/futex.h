/* futex.h - the futex calls the core sleeps and wakes with (parked workers,
 * plain threads waiting in weft_park, the monitor, waits for a stop request). */
#ifndef WEFT_SCHED_FUTEX_H
#define WEFT_SCHED_FUTEX_H

#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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
