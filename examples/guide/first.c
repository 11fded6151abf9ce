/* first.c - the first program: weft_main runs a coroutine on a fresh
 * runtime; it spawns more coroutines and joins them for their results. */
#include "check.h"

static void *square(void *arg)
{
	long n = (long)arg;
	return (void *)(n * n); /* the task's result, for whoever joins it */
}

static void *main_task(void *arg)
{
	(void)arg;
	weft_task_t t[10];
	for (long i = 0; i < 10; i++)
		CHECK(weft_spawn(&t[i], square, (void *)i, NULL));
	long sum = 0;
	for (int i = 0; i < 10; i++) {
		void *r;
		CHECK(weft_join(t[i], &r)); /* parks main_task until t[i] has finished */
		sum += (long)r;
	}
	printf("sum of squares 0..9: %ld\n", sum);
	return NULL; /* weft_main returns (int)(intptr_t) of this */
}

int main(void)
{
	return (int)CHECK(weft_main(main_task, NULL, NULL));
}
