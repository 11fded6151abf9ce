/* ring.c - N coroutines in a ring pass a token around LAPS times, each hop a
 * rendezvous channel send. */
#include <weft.h>

#include <stdio.h>
#include <stdlib.h>

enum { N = 1000, LAPS = 10 };
static weft_chan_t *ring[N], *done;

static void *member(void *arg)
{
	long i = (long)arg;
	for (;;) {
		long hops;
		if (weft_chan_recv(ring[i], &hops) != 0)
			return NULL; /* closed: the ring is shutting down */
		if (hops == 0) {
			weft_chan_send(done, &i);
			return NULL;
		}
		hops--;
		weft_chan_send(ring[(i + 1) % N], &hops);
	}
}

static void *main_task(void *arg)
{
	(void)arg;
	for (int i = 0; i < N; i++)
		weft_chan_create(&ring[i], sizeof(long), 0);
	weft_chan_create(&done, sizeof(long), 0);
	for (long i = 0; i < N; i++)
		weft_spawn(NULL, member, (void *)i, &(weft_spawn_opts_t){.detached = true, .stack_size = 16384});
	long hops = (long)N * LAPS, last;
	weft_time_t t0 = weft_now();
	weft_chan_send(ring[0], &hops);
	weft_chan_recv(done, &last);
	weft_time_t d = weft_now() - t0;
	printf("%ld hops around %d coroutines in %.1f ms; the token stopped at member %ld\n", hops, N, (double)d / 1e6,
	       last);
	for (int i = 0; i < N; i++)
		weft_chan_close(ring[i]); /* the other members return */
	return NULL;
}

int main(void)
{
	return weft_main(main_task, NULL, NULL) < 0;
}
