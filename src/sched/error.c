/* error.c - weft_strerror, the clock. */
#include "internal.h"

#include <string.h>
#include <time.h>

const char *weft_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -EINVAL:
		return "invalid argument";
	case -ENOMEM:
		return "out of memory";
	case -ETIMEDOUT:
		return "deadline passed";
	case -ECANCELED:
		return "task cancelled";
	case -EPIPE:
		return "channel closed";
	case -ESRCH:
		return "no such task (finished and joined or detached, or never existed)";
	case -ESHUTDOWN:
		return "runtime not running or stopping";
	case -EPERM:
		return "not allowed from this context (e.g. a blocking call from a stackless task, or outside a task)";
	case -EDEADLK:
		return "would deadlock (e.g. stopping the runtime from one of its own tasks)";
	case -EBUSY:
		return "resource busy (e.g. a task group with running members)";
	case -EAGAIN:
		return "resource temporarily unavailable";
	default:
		break;
	}
	if (err < 0 && err > -4096) {
		static const char *const unknown = "unknown error";
		const char *s = strerrordesc_np(-err);
		return s ? s : unknown;
	}
	return "not an error code";
}

weft_time_t weft_now(void)
{
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
