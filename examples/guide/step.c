/* step.c - stackless tasks: a step function called again and again with
 * its state, holding no stack while it waits. It waits through the _step
 * forms of the blocking calls, which all keep one protocol (docs/api.md,
 * "Who may call"), or with a wait of its own (here: a sleep). */
#include "check.h"

struct summer {
	weft_chan_t *ch;
	long v, sum;
	weft_op_t op; /* the registration while it waits: no initialisation needed */
};

static weft_step_t summer_step(void *state, void **result)
{
	struct summer *s = state;
	for (;;) {
		int r = weft_chan_recv_step(s->ch, &s->v, WEFT_NEVER, &s->op);
		if (r == -EINPROGRESS)
			return WEFT_STEP_PARKED; /* called again when woken: repeats the same call */

		if (r < 0) { /* -EPIPE: closed and drained */
			*result = (void *)(intptr_t)(r == -EPIPE ? s->sum : r);
			return WEFT_STEP_DONE;
		}
		s->sum += s->v;
	}
}

struct napper {
	int naps;
	bool napping;
};

static weft_step_t napper_step(void *state, void **result)
{
	struct napper *s = state;
	if (s->napping) { /* called again: the wait has ended, weft_park_result() says how */
		s->napping = false;
		int r = weft_park_result();
		if (r != -ETIMEDOUT) { /* -ECANCELED */
			*result = (void *)(intptr_t)r;
			return WEFT_STEP_DONE;
		}
		s->naps++;
	}
	if (s->naps == 3) {
		*result = NULL;
		return WEFT_STEP_DONE;
	}
	/* A stackless task cannot park inside a call; a wait that nobody wakes
	 * ends at its deadline. */
	EXPECT(weft_sleep(WEFT_MSEC), -EPERM);
	weft_waker_t w = weft_park_prepare();
	CHECK(weft_park_deadline(w, weft_deadline_in(WEFT_MSEC)));
	s->napping = true;
	return WEFT_STEP_PARKED;
}

static void *main_task(void *arg)
{
	(void)arg;
	struct summer s = {0};
	CHECK(weft_chan_create(&s.ch, sizeof(long), 0));
	weft_task_t t;
	CHECK(weft_spawn_step(&t, summer_step, &s, NULL));
	for (long v = 1; v <= 100; v++)
		CHECK(weft_chan_send(s.ch, &v));
	CHECK(weft_chan_close(s.ch));
	void *sum;
	CHECK(weft_join(t, &sum)); /* stackless tasks are joined like coroutines */
	CHECK(weft_chan_release(s.ch));
	printf("stackless sum of 1..100: %ld\n", (long)sum);

	struct napper n = {0};
	void *r;
	CHECK(weft_spawn_step(&t, napper_step, &n, NULL));
	CHECK(weft_join(t, &r));
	CHECK((intptr_t)r);
	printf("naps taken: %d\n", n.naps);
	return NULL;
}

int main(void)
{
	return (int)CHECK(weft_main(main_task, NULL, NULL));
}
