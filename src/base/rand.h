/* rand.h - a pseudo-random generator for spreading choices (which worker
 * to steal from, which ready case of a select goes first), not for
 * anything that must be unpredictable: xorshift64*, a few instructions on a
 * 64-bit state that the caller keeps (per worker, per thread). */
#ifndef WEFT_BASE_RAND_H
#define WEFT_BASE_RAND_H

#include <stdint.h>

/* The next number; *s must not be 0 (it then never becomes 0). */
static inline uint64_t weft__rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

#endif
