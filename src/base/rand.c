/* rand.c - the per-thread random stream (rand.h). */
#include "rand.h"

#include <sys/random.h>

__thread uint64_t weft__trand_state __attribute__((tls_model("initial-exec")));

void weft__trand_seed(uint64_t seed)
{
	uint64_t s = weft__mix64(seed);
	weft__trand_state = s ? s : 1; /* xorshift's state is never 0 */
}

uint64_t weft__trand_init(void)
{
	uint64_t seed;
	/* A stream that failed to get entropy still spreads choices: the
	 * address of its state differs between threads. */
	if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != sizeof seed)
		seed = (uint64_t)(uintptr_t)&weft__trand_state;
	weft__trand_seed(seed);
	return weft__rand(&weft__trand_state);
}
