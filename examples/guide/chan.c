/* chan.c - channels: the three kinds, closing, and references. Producers
 * send numbers into a bounded channel; a consumer sums them until the
 * channel is closed and drained, and hands the sum back over a rendezvous
 * channel; an unbounded channel collects a note from each producer. */
#include "check.h"

enum { PRODUCERS = 3, EACH = 1000 };

struct work {
	weft_chan_t *numbers; /* bounded: senders wait while it is full */
	weft_chan_t *sum;     /* rendezvous: a send waits for the receiver */
	weft_chan_t *notes;   /* unbounded: a send never waits */
	long first;
};

static void *producer(void *arg)
{
	struct work *w = arg;
	for (long v = w->first; v < w->first + EACH; v++)
		CHECK(WEFT_CHAN_SEND(w->numbers, v)); /* checks sizeof v against the channel */
	int note = (int)(w->first / EACH);
	CHECK(weft_chan_send(w->notes, &note));
	return NULL;
}

static void *consumer(void *arg)
{
	struct work *w = arg;
	long v, sum = 0;
	int e;
	while ((e = weft_chan_recv(w->numbers, &v)) == 0)
		sum += v;
	EXPECT(e, -EPIPE); /* closed, and everything buffered was received */

	CHECK(weft_chan_release(w->numbers)); /* the consumer's own reference */
	/* Last: once main has the sum it may return, and w (in its frame) is gone. */
	CHECK(weft_chan_send(w->sum, &sum));
	return NULL;
}

static void *main_task(void *arg)
{
	(void)arg;
	weft_chan_t *numbers, *sum, *notes;
	CHECK(weft_chan_create(&numbers, sizeof(long), 8));
	CHECK(weft_chan_create(&sum, sizeof(long), 0));
	CHECK(weft_chan_create(&notes, sizeof(int), WEFT_CHAN_UNBOUNDED));

	struct work w[PRODUCERS];
	weft_group_t *g;
	CHECK(weft_group_create(&g, false));
	for (int i = 0; i < PRODUCERS; i++) {
		w[i] = (struct work){numbers, sum, notes, (long)i * EACH};
		CHECK(weft_spawn(NULL, producer, &w[i], &(weft_spawn_opts_t){.group = g}));
	}
	CHECK(weft_chan_retain(numbers)); /* a reference for the consumer */
	CHECK(weft_go(consumer, &w[0]));

	CHECK(weft_group_wait(g)); /* every number has been sent... */
	CHECK(weft_group_destroy(g));
	CHECK(weft_chan_close(numbers)); /* ...so no more come */
	CHECK(weft_chan_release(numbers));

	long total;
	CHECK(weft_chan_recv(sum, &total));
	printf("sum of 0..%d: %ld\n", PRODUCERS * EACH - 1, total);

	int note, notes_seen = 0;
	while (weft_chan_try_recv(notes, &note) == 0)
		notes_seen++;
	printf("notes: %d, closed: %s, buffered now: %zd\n", notes_seen, weft_chan_closed(notes) ? "yes" : "no",
	       weft_chan_len(notes));
	EXPECT(weft_chan_try_recv(notes, &note), -EAGAIN); /* empty, not closed */
	CHECK(weft_chan_release(sum));
	CHECK(weft_chan_release(notes));
	return NULL;
}

int main(void)
{
	return (int)CHECK(weft_main(main_task, NULL, NULL));
}
