/* check.h - how the guide's examples treat a call that fails when it should
 * not: say which call, where and why on stderr, and end the process with
 * status 1. (A real program handles its errors; docs/guide.md, "Errors".) */
#ifndef GUIDE_CHECK_H
#define GUIDE_CHECK_H

#include <weft.h>

#include <stdio.h>
#include <stdlib.h>

static inline long guide_check(long r, long want, const char *call, const char *file, int line)
{
	if (want == 0 ? r >= 0 : r == want)
		return r;
	fprintf(stderr, "%s:%d: %s returned %ld (%s: %s)", file, line, call, r, weft_err_name((int)r),
		weft_strerror((int)r));
	if (want != 0)
		fprintf(stderr, ", expected %s", weft_err_name((int)want));
	fprintf(stderr, "\n");
	exit(1);
}

/* CHECK(call): the call's result (0 or a count), unless it is a negative
 * errno. EXPECT(call, -ETIMEDOUT): the call must fail with that code. */
#define CHECK(call) guide_check((call), 0, #call, __FILE__, __LINE__)
#define EXPECT(call, err) ((void)guide_check((call), (err), #call, __FILE__, __LINE__))

#endif
