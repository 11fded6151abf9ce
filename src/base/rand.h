/* rand.h - pseudo-random numbers for spreading choices (which worker to
 * steal from, which ready case of a select goes first), not for anything
 * that must be unpredictable.
 *
 * weft__rand: xorshift64*, a few instructions on a 64-bit state that the
 * caller keeps (per worker, per thread).
 * weft__trand: the calling thread's own stream, for code that has no state
 * of its own to keep one in (select). Seeded on first use from the kernel;
 * a simulation runtime reseeds its owner thread's stream from its seed
 * (weft__trand_seed), so that every choice made through it repeats with
 * the seed (docs/scheduler.md, "Simulation"). Nothing else may seed a
 * module's choices: a module that needs randomness draws it here. */
#ifndef WEFT_BASE_RAND_H
#define WEFT_BASE_RAND_H

#include <stdint.h>

#include "cpu.h"

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

/* splitmix64: a well-mixed function of x, for turning seeds (which may be
 * small, or close to each other) into states. */
static inline uint64_t weft__mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The calling thread's stream state; 0 until first used. */
extern __thread uint64_t weft__trand_state __attribute__((tls_model("initial-exec")));
uint64_t weft__trand_init(void); /* seeds the stream, returns its first number */

static inline uint64_t weft__trand(void)
{
	if (unlikely(weft__trand_state == 0))
		return weft__trand_init();
	return weft__rand(&weft__trand_state);
}

/* Restart the calling thread's stream from seed (any value). */
void weft__trand_seed(uint64_t seed);

#endif
