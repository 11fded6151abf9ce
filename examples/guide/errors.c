/* errors.c - error handling: every call returns 0 (or a count) or a
 * negative errno; weft_err_name and weft_strerror say which. What a code
 * means depends on the call, and some are answers rather than failures. */
#include "check.h"

static void show(const char *what, int e)
{
	printf("%-28s %-10s %s\n", what, weft_err_name(e), weft_strerror(e));
}

static void *fail(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)-EIO; /* a task's failure, as its result */
}

static void *main_task(void *arg)
{
	(void)arg;
	weft_chan_t *ch;
	show("create, element size 0", weft_chan_create(&ch, 0, 1));
	CHECK(weft_chan_create(&ch, sizeof(int), 1));
	int v = 1;
	show("send", weft_chan_send(ch, &v));
	show("try_send, buffer full", weft_chan_try_send(ch, &v));
	show("send_until, past deadline", weft_chan_send_until(ch, &v, 0));
	CHECK(weft_chan_close(ch));
	show("send after close", weft_chan_send(ch, &v));
	show("recv after close", weft_chan_recv(ch, &v)); /* what was buffered first */
	show("recv after close, drained", weft_chan_recv(ch, &v));
	CHECK(weft_chan_release(ch));

	weft_mutex_t m = WEFT_MUTEX_INIT;
	show("unlock, not held", weft_mutex_unlock(&m));

	weft_task_t t;
	void *r;
	CHECK(weft_spawn(&t, fail, NULL, NULL));
	show("join", weft_join(t, &r));
	show("the task's result", (int)(intptr_t)r);
	show("join again", weft_join(t, &r)); /* the id died with the first join */
	return NULL;
}

int main(void)
{
	int e = weft_main(main_task, NULL, NULL);
	if (e != 0) {
		fprintf(stderr, "weft_main: %s\n", weft_strerror(e));
		return 1;
	}
	return 0;
}
