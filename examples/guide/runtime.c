/* runtime.c - a runtime started and stopped by hand. The main thread is a
 * plain thread: it spawns and joins like a task (blocking itself, not a
 * worker). A detached coroutine started with weft_go decides when the
 * program is done and asks for the stop. */
#include "check.h"

static long answer; /* written by the go'ed task, read after the stop */

static void *count_words(void *arg)
{
	const char *s = arg;
	long words = 0;
	for (int in = 0; *s; s++) {
		if (*s != ' ' && !in)
			words++;
		in = *s != ' ';
	}
	return (void *)words;
}

static void *finish(void *arg)
{
	answer = (long)arg * 2;
	CHECK(weft_runtime_request_stop(weft_runtime_current()));
	return NULL; /* detached: nobody joins it */
}

int main(void)
{
	weft_runtime_t *rt;
	weft_config_t cfg = {.size = sizeof cfg, .workers = 2};
	CHECK(weft_runtime_start(&rt, &cfg));
	printf("workers: %d\n", (int)CHECK(weft_runtime_workers(rt)));

	weft_task_t t;
	CHECK(weft_spawn(&t, count_words, "the quick brown fox", NULL));
	void *words;
	CHECK(weft_join(t, &words)); /* from a plain thread: blocks the thread */
	printf("words: %ld\n", (long)words);

	CHECK(weft_go(finish, words)); /* Go's `go finish(words)` */
	CHECK(weft_runtime_wait_stop_request(rt));
	CHECK(weft_runtime_stop(rt)); /* cancels what is left, waits, frees */
	printf("answer: %ld\n", answer);
	return 0;
}
