/* weft/base.h - what every weft module shares: errors, time, version. */
#ifndef WEFT_BASE_H
#define WEFT_BASE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0

/* Errors: every public function returns 0 (or a count) on success and a
 * negative errno value on failure. weft_strerror() turns one into text; it
 * also explains the weft-specific meaning where one exists (-EPIPE is "channel
 * closed", -ESRCH "no such task, or already joined", ...). Never NULL. */
const char *weft_strerror(int err);

/* Time: nanoseconds on CLOCK_MONOTONIC. Deadlines are absolute weft_time_t;
 * WEFT_NEVER means "no deadline". */
typedef int64_t weft_time_t;
#define WEFT_NEVER INT64_MAX
#define WEFT_MSEC ((weft_time_t)1000000)
#define WEFT_SEC ((weft_time_t)1000000000)

/* Current monotonic time in nanoseconds. */
weft_time_t weft_now(void);
/* now + ns, saturating at WEFT_NEVER (ns < 0 counts as 0). */
weft_time_t weft_deadline_in(weft_time_t ns);

#ifdef __cplusplus
}
#endif
#endif
