/* error.c - error texts and names, the version, the clock. */
#include "internal.h"

#include <string.h>
#include <time.h>

/* glibc's own tables (2.32 and later) give both the text and the name. */
const char *weft_strerror(int err)
{
	if (err == 0)
		return "Success";
	const char *s = err < 0 && err > -4096 ? strerrordesc_np(-err) : NULL;
	return s ? s : "Unknown error";
}

const char *weft_err_name(int err)
{
	if (err == 0)
		return "OK";
	const char *s = err < 0 && err > -4096 ? strerrorname_np(-err) : NULL;
	return s ? s : "UNKNOWN";
}

#define STR_(x) #x
#define STR(x) STR_(x)

unsigned weft_version(void)
{
	return (unsigned)WEFT_VERSION_MAJOR << 16 | (unsigned)WEFT_VERSION_MINOR << 8 | (unsigned)WEFT_VERSION_PATCH;
}

const char *weft_version_string(void)
{
	return STR(WEFT_VERSION_MAJOR) "." STR(WEFT_VERSION_MINOR) "." STR(WEFT_VERSION_PATCH);
}

weft_time_t weft_now(void)
{
	struct weft_sim *sm = weft__sim_mine;
	if (unlikely(sm != NULL))
		return sm->now; /* the owner thread of a simulation: its virtual clock */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (weft_time_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

weft_time_t weft_deadline_in(weft_time_t ns)
{
	if (ns <= 0)
		return weft_now();
	weft_time_t now = weft_now();
	return ns > WEFT_NEVER - now ? WEFT_NEVER : now + ns;
}
