/* pipeline.c - three stages connected by channels: generate -> square -> sum.
 * Closing a channel tells the next stage that no more values come. */
#include <weft.h>

#include <stdio.h>

static void *generate(void *arg)
{
	weft_chan_t *out = arg;
	for (long i = 1; i <= 1000; i++)
		weft_chan_send(out, &i);
	weft_chan_close(out);
	return NULL;
}

struct stage {
	weft_chan_t *in, *out;
};

static void *square(void *arg)
{
	struct stage *s = arg;
	long v;
	while (weft_chan_recv(s->in, &v) == 0) { /* -EPIPE once closed and drained */
		v *= v;
		weft_chan_send(s->out, &v);
	}
	weft_chan_close(s->out);
	return NULL;
}

static void *main_task(void *arg)
{
	(void)arg;
	weft_chan_t *numbers, *squares;
	weft_chan_create(&numbers, sizeof(long), 0);  /* rendezvous */
	weft_chan_create(&squares, sizeof(long), 64); /* bounded buffer */
	struct stage sq = {numbers, squares};
	weft_spawn(NULL, generate, numbers, &(weft_spawn_opts_t){.detached = true, .name = "generate"});
	weft_spawn(NULL, square, &sq, &(weft_spawn_opts_t){.detached = true, .name = "square"});
	long v, sum = 0;
	while (weft_chan_recv(squares, &v) == 0)
		sum += v;
	printf("sum of squares 1..1000 = %ld\n", sum); /* 333833500 */
	weft_chan_release(numbers);
	weft_chan_release(squares);
	return NULL;
}

int main(void)
{
	return weft_main(main_task, NULL, NULL) < 0;
}
