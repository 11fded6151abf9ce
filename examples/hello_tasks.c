/* hello_tasks.c - a first weft program: spawn coroutines, sleep, join results. */
#include <weft.h>

#include <stdio.h>

static void *square(void *arg)
{
	long n = (long)arg;
	int e = weft_sleep(n * WEFT_MSEC); /* parks this coroutine, not the thread */
	if (e)
		return (void *)(intptr_t)e; /* -ECANCELED: cut short */
	return (void *)(n * n);
}

static void *main_task(void *arg)
{
	(void)arg;
	weft_task_t t[10];
	for (long i = 0; i < 10; i++) {
		int e = weft_spawn(&t[i], square, (void *)i, NULL);
		if (e) {
			fprintf(stderr, "spawn: %s\n", weft_strerror(e));
			return (void *)1;
		}
	}
	long sum = 0;
	for (int i = 0; i < 10; i++) {
		void *r;
		int e = weft_join(t[i], &r);
		if (e) {
			fprintf(stderr, "join: %s\n", weft_strerror(e));
			return (void *)1;
		}
		sum += (long)r;
	}
	printf("sum of squares 0..9 = %ld\n", sum);
	return NULL;
}

int main(void)
{
	int e = weft_main(main_task, NULL, NULL); /* main_task's result, or a negative errno */
	if (e < 0)
		fprintf(stderr, "weft_main: %s\n", weft_strerror(e));
	return e != 0;
}
