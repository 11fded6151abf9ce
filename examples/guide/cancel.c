/* cancel.c - cancellation: weft_cancel makes the task's current or next
 * blocking call return -ECANCELED, and every later one (it is sticky). The
 * task cleans up and returns; its joiner still gets the result. A timer
 * serves as a watchdog for a loop that computes. */
#include "check.h"

static void *waiter(void *arg)
{
	(void)arg;
	int e = weft_sleep_until(WEFT_NEVER); /* would wait for ever */
	if (e == -ECANCELED) {
		EXPECT(weft_sleep(WEFT_MSEC), -ECANCELED); /* sticky: later calls fail too */
		printf("cancelled: %s\n", weft_cancelled() ? "yes" : "no");
	}
	return (void *)(intptr_t)e; /* the result says why it ended */
}

static void *spinner(void *arg)
{
	(void)arg;
	int e;
	while ((e = weft_yield()) == 0)
		; /* a long computation: a slice of work, then a yield */
	return (void *)(intptr_t)e;
}

static void watchdog(void *arg)
{
	weft_task_t *t = arg;
	CHECK(weft_cancel(*t)); /* a timer function must not block: cancelling does not */
}

static void *main_task(void *arg)
{
	(void)arg;
	weft_task_t t;
	CHECK(weft_spawn(&t, waiter, NULL, NULL));
	CHECK(weft_sleep(5 * WEFT_MSEC)); /* let it start waiting (it need not have) */
	CHECK(weft_cancel(t));
	void *r;
	CHECK(weft_join(t, &r));
	printf("waiter ended with %s\n", weft_err_name((int)(intptr_t)r));

	weft_timer_t *tm;
	CHECK(weft_spawn(&t, spinner, NULL, NULL));
	CHECK(weft_timer_create(&tm, watchdog, &t));
	CHECK(weft_timer_start(tm, weft_deadline_in(20 * WEFT_MSEC), 0)); /* once, in 20 ms */
	CHECK(weft_join(t, &r));
	CHECK(weft_timer_destroy(tm));
	printf("spinner stopped by the watchdog: %s\n", weft_err_name((int)(intptr_t)r));
	return NULL;
}

int main(void)
{
	return (int)CHECK(weft_main(main_task, NULL, NULL));
}
