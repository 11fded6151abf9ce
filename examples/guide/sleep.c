/* sleep.c - sleeping, and deadlines: absolute times on CLOCK_MONOTONIC,
 * shared by every call of one operation. */
#include "check.h"

static void *slow(void *arg)
{
	CHECK(weft_sleep(50 * WEFT_MSEC)); /* parks this coroutine, not its worker */
	return arg;
}

static void *main_task(void *arg)
{
	(void)arg;
	weft_time_t t0 = weft_now();
	CHECK(weft_sleep(10 * WEFT_MSEC));
	CHECK(weft_sleep_until(t0 + 20 * WEFT_MSEC));
	printf("slept at least 20 ms: %s\n", weft_now() - t0 >= 20 * WEFT_MSEC ? "yes" : "no");

	weft_task_t t;
	CHECK(weft_spawn(&t, slow, "done", NULL));
	void *r;
	/* A deadline is a point in time: every call of the operation gets the same one. */
	weft_time_t deadline = weft_deadline_in(10 * WEFT_MSEC);
	EXPECT(weft_join_until(t, &r, deadline), -ETIMEDOUT);
	EXPECT(weft_join_until(t, &r, deadline), -ETIMEDOUT); /* past: polls */
	EXPECT(weft_join_until(t, &r, 0), -ETIMEDOUT);	      /* 0 is long past: polls */
	printf("join timed out; the task runs on\n");

	CHECK(weft_join_until(t, &r, WEFT_NEVER)); /* WEFT_NEVER: no deadline */
	printf("joined: %s\n", (const char *)r);
	return NULL;
}

int main(void)
{
	return (int)CHECK(weft_main(main_task, NULL, NULL));
}
