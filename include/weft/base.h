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

/* The version of the library linked (the header's WEFT_VERSION_* may be
 * older or newer): (major << 16) | (minor << 8) | patch, and "major.minor.patch". */
unsigned weft_version(void);
const char *weft_version_string(void);

/* Errors: every public function returns 0 (or a count) on success and a
 * negative errno value on failure; what a code means for a call is in that
 * call's header comment (-EPIPE from a channel: closed; from a socket: the
 * peer is gone). weft_strerror() gives the C library's text for the code
 * ("Broken pipe"), weft_err_name() its name ("EPIPE"); 0 gives "Success"
 * and "OK". Anything that is not 0 or a negative errno gives "Unknown error"
 * and "UNKNOWN". Never NULL; the strings are static. */
const char *weft_strerror(int err);
const char *weft_err_name(int err);

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
