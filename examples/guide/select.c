/* select.c - waiting on several channels at once: merge two streams until
 * both are closed, give up on a reply at a deadline, and poll (Go's
 * `default:`) with a deadline already past. */
#include "check.h"

struct stream {
	weft_chan_t *ch;
	long from, to;
};

static void *send_range(void *arg)
{
	struct stream *s = arg;
	for (long v = s->from; v <= s->to; v++)
		CHECK(weft_chan_send(s->ch, &v));
	CHECK(weft_chan_close(s->ch));
	return NULL;
}

static void *never_replies(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)weft_sleep_until(WEFT_NEVER); /* until cancelled */
}

static void *main_task(void *arg)
{
	(void)arg;
	struct stream a = {NULL, 1, 100}, b = {NULL, 101, 200};
	CHECK(weft_chan_create(&a.ch, sizeof(long), 0));
	CHECK(weft_chan_create(&b.ch, sizeof(long), 4));
	weft_task_t ta, tb;
	CHECK(weft_spawn(&ta, send_range, &a, NULL));
	CHECK(weft_spawn(&tb, send_range, &b, NULL));

	long va, vb, sum = 0;
	weft_select_case_t cases[2] = {
		{.ch = a.ch, .op = WEFT_SELECT_RECV, .buf = &va},
		{.ch = b.ch, .op = WEFT_SELECT_RECV, .buf = &vb},
	};
	size_t open = 2;
	while (open > 0) {
		int k = (int)CHECK(weft_select(cases, open, WEFT_NEVER));
		if (cases[k].result == -EPIPE) { /* closed and drained: drop the case */
			cases[k] = cases[--open];
			continue;
		}
		sum += *(long *)cases[k].buf;
	}
	printf("merged sum: %ld\n", sum);
	CHECK(weft_join(ta, NULL));
	CHECK(weft_join(tb, NULL));

	/* A reply that does not come in time. */
	weft_chan_t *reply;
	long v = 0;
	CHECK(weft_chan_create(&reply, sizeof(long), 1));
	weft_task_t slow;
	CHECK(weft_spawn(&slow, never_replies, NULL, NULL));
	weft_select_case_t c = {.ch = reply, .op = WEFT_SELECT_RECV, .buf = &v};
	int k = weft_select(&c, 1, weft_deadline_in(20 * WEFT_MSEC));
	printf("waiting 20 ms for a reply: %s\n", weft_err_name(k));
	CHECK(weft_cancel(slow));
	CHECK(weft_join(slow, NULL));

	/* A past deadline polls: the buffer has room for one value, then none. */
	weft_select_case_t put = {.ch = reply, .op = WEFT_SELECT_SEND, .buf = &v};
	CHECK(weft_select(&put, 1, 0)); /* case 0, done at once */
	k = weft_select(&put, 1, 0);
	printf("polling a full channel: %s\n", weft_err_name(k));
	CHECK(weft_chan_release(reply));
	CHECK(weft_chan_release(a.ch));
	CHECK(weft_chan_release(b.ch));
	return NULL;
}

int main(void)
{
	return (int)CHECK(weft_main(main_task, NULL, NULL));
}
