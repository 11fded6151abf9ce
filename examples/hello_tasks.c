/* hello_tasks.c - a first weft program: spawn coroutines, sleep, join results. */
#include <weft.h>

#include <stdio.h>

static void *square(void *arg)
{
	long n = (long)arg;
	weft_sleep(n * WEFT_MSEC); /* parks this coroutine, not the thread */
	return (void *)(n * n);
}

static void *main_task(void *arg)
{
	(void)arg;
	weft_task_t t[10];
	for (long i = 0; i < 10; i++)
		weft_spawn(&t[i], square, (void *)i, NULL);
	long sum = 0;
	for (int i = 0; i < 10; i++) {
		void *r;
		weft_join(t[i], &r);
		sum += (long)r;
	}
	printf("sum of squares 0..9 = %ld\n", sum);
	return NULL;
}

int main(void)
{
	return weft_main(main_task, NULL, NULL) < 0;
}
