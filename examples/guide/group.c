/* group.c - task groups: wait for a set of tasks as one, and with
 * cancel_on_error, let the first failure cancel the rest. */
#include "check.h"

enum { PARTS = 4, N = 1000 };

struct part {
	const int *from;
	int len;
	long sum; /* the member's answer: the group joins members, so results go here */
};

static void *add_up(void *arg)
{
	struct part *p = arg;
	for (int i = 0; i < p->len; i++)
		p->sum += p->from[i];
	return NULL;
}

static void *fetch(void *arg)
{
	long id = (long)arg;
	if (id == 3) {
		CHECK(weft_sleep(5 * WEFT_MSEC));
		return (void *)(intptr_t)-EIO; /* a negative errno result is a failure */
	}
	return (void *)(intptr_t)weft_sleep_until(WEFT_NEVER); /* until cancelled */
}

static void *main_task(void *arg)
{
	(void)arg;
	static int numbers[N];
	for (int i = 0; i < N; i++)
		numbers[i] = i + 1;

	weft_group_t *g;
	CHECK(weft_group_create(&g, false));
	struct part parts[PARTS];
	for (int i = 0; i < PARTS; i++) {
		parts[i] = (struct part){numbers + i * (N / PARTS), N / PARTS, 0};
		CHECK(weft_spawn(NULL, add_up, &parts[i], &(weft_spawn_opts_t){.group = g}));
	}
	CHECK(weft_group_wait(g)); /* every member has finished */
	CHECK(weft_group_destroy(g));
	long sum = 0;
	for (int i = 0; i < PARTS; i++)
		sum += parts[i].sum;
	printf("sum 1..%d in %d parts: %ld\n", N, PARTS, sum);

	CHECK(weft_group_create(&g, true)); /* cancel_on_error */
	for (long id = 0; id < 4; id++)
		CHECK(weft_spawn(NULL, fetch, (void *)id, &(weft_spawn_opts_t){.group = g}));
	int e = weft_group_wait(g); /* the first failure; the others were cancelled */
	printf("group ended with %s\n", weft_err_name(e));
	CHECK(weft_group_destroy(g));
	return e == -EIO ? NULL : (void *)1;
}

int main(void)
{
	return (int)CHECK(weft_main(main_task, NULL, NULL));
}
