/* test_args.c - every call of weft/chan.h fed NULLs, invalid handles
 * (closed channels, a last reference with waiters) and out-of-range values
 * (sizes, capacities, deadlines, select cases, ops), from a plain thread, a
 * coroutine and a stackless task: each returns what the header documents,
 * and nothing crashes, hangs or asserts. */
#include "wt_kinds.h"

#include <limits.h>

#include "chan/chan_impl.h" /* the waiter counts, to see a receiver queued */

#define MAX_ELEM ((size_t)64 * 1024)
#define MAX_CAP ((ssize_t)1 << 30)

/* One channel of each kind, int-sized: rendezvous, bounded (2), unbounded. */
static void three(weft_chan_t *ch[3])
{
	TCHECK_EQ(weft_chan_create(&ch[0], sizeof(int), 0), 0);
	TCHECK_EQ(weft_chan_create(&ch[1], sizeof(int), 2), 0);
	TCHECK_EQ(weft_chan_create(&ch[2], sizeof(int), WEFT_CHAN_UNBOUNDED), 0);
}

static void release3(weft_chan_t *ch[3])
{
	for (int i = 0; i < 3; i++)
		TCHECK_EQ(weft_chan_release(ch[i]), 0);
}

/* ------------------------------------------------------------ create, references */

static void create_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_chan_t *ch = (weft_chan_t *)&ch;
	TCHECK_EQ(weft_chan_create(NULL, sizeof(int), 0), -EINVAL);
	static const size_t esize[] = {0, MAX_ELEM + 1, SIZE_MAX};
	for (size_t i = 0; i < sizeof esize / sizeof esize[0]; i++) {
		TCHECK_EQ(weft_chan_create(&ch, esize[i], 0), -EINVAL);
		TCHECK(ch == NULL);
		ch = (weft_chan_t *)&ch;
		TCHECK_EQ(weft_chan_create(&ch, esize[i], 4), -EINVAL);
		TCHECK(ch == NULL);
	}
	static const ssize_t caps[] = {-2, -SSIZE_MAX - 1, MAX_CAP + 1, SSIZE_MAX};
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		ch = (weft_chan_t *)&ch;
		TCHECK_EQ(weft_chan_create(&ch, sizeof(int), caps[i]), -EINVAL);
		TCHECK(ch == NULL);
	}
	/* The limits themselves are fine. */
	TCHECK_EQ(weft_chan_create(&ch, MAX_ELEM, 1), 0);
	TCHECK_EQ(weft_chan_elem_size(ch), MAX_ELEM);
	TCHECK_EQ(weft_chan_release(ch), 0);
	TCHECK_EQ(weft_chan_create(&ch, 1, WEFT_CHAN_UNBOUNDED), 0);
	TCHECK_EQ(weft_chan_cap(ch), -1);
	TCHECK_EQ(weft_chan_release(ch), 0);
}

static void test_create_refuses_bad_sizes(void **state)
{
	(void)state;
	wt_each_kind(create_body, NULL);
}

static void null_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	TCHECK_EQ(weft_chan_retain(NULL), -EINVAL);
	TCHECK_EQ(weft_chan_release(NULL), -EINVAL);
	TCHECK_EQ(weft_chan_close(NULL), -EINVAL);
	TCHECK(!weft_chan_closed(NULL));
	TCHECK_EQ(weft_chan_len(NULL), -EINVAL);
	TCHECK_EQ(weft_chan_cap(NULL), -EINVAL);
	TCHECK_EQ(weft_chan_elem_size(NULL), 0);
}

static void test_channel_calls_refuse_null(void **state)
{
	(void)state;
	wt_each_kind(null_body, NULL);
}

static void close_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_chan_t *ch[3];
	three(ch);
	for (int i = 0; i < 3; i++) {
		TCHECK_EQ(weft_chan_close(ch[i]), 0);
		TCHECK_EQ(weft_chan_close(ch[i]), -EPIPE);
		TCHECK(weft_chan_closed(ch[i]));
	}
	release3(ch);
}

static void test_close_twice(void **state)
{
	(void)state;
	wt_each_kind(close_body, NULL);
}

static _Atomic int received;

static void *receiver(void *a)
{
	int v;
	TCHECK_EQ(weft_chan_recv(a, &v), -EPIPE);
	atomic_fetch_add(&received, 1); /* its call on the channel has returned */
	return NULL;
}

static void busy_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	weft_chan_t *ch[3];
	three(ch);
	for (int i = 0; i < 3; i++) {
		weft_task_t t;
		TCHECK_EQ(weft_spawn(&t, receiver, ch[i], NULL), 0);
		/* Queued, and done with the reference a bounded channel's
		 * receive holds while it queues. */
		WT_WAIT_UNTIL(chan_waiting(ch[i], false) == 1 && atomic_load(&ch[i]->refs) == 1);
		/* The last reference, with a task blocked on it: kept alive. */
		TCHECK_EQ(weft_chan_release(ch[i]), -EBUSY);
		TCHECK_EQ(weft_chan_close(ch[i]), 0);
		if (kind == WT_STEP)
			TCHECK_EQ(weft_detach(t), 0);
		else
			TCHECK_EQ(weft_join(t, NULL), 0);
	}
	/* The last references may go once the receives have returned (a
	 * buffered channel's receiver retries after the close to see it). */
	WT_WAIT_UNTIL(atomic_load(&received) == 3);
	atomic_store(&received, 0);
	release3(ch);
}

static void test_release_of_the_last_reference_with_waiters(void **state)
{
	(void)state;
	wt_each_kind(busy_body, NULL);
}

/* ------------------------------------------------------------ send, recv */

static void send_null_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_chan_t *ch[3];
	three(ch);
	int v = 1;
	TCHECK_EQ(weft_chan_send(NULL, &v), -EINVAL);
	TCHECK_EQ(weft_chan_send_until(NULL, &v, INT64_MIN), -EINVAL);
	TCHECK_EQ(weft_chan_try_send(NULL, &v), -EINVAL);
	TCHECK_EQ(weft_chan_recv(NULL, &v), -EINVAL);
	TCHECK_EQ(weft_chan_recv_until(NULL, &v, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_chan_try_recv(NULL, &v), -EINVAL);
	for (int i = 0; i < 3; i++) {
		TCHECK_EQ(weft_chan_send(ch[i], NULL), -EINVAL);
		TCHECK_EQ(weft_chan_send_until(ch[i], NULL, WEFT_NEVER), -EINVAL);
		TCHECK_EQ(weft_chan_try_send(ch[i], NULL), -EINVAL);
		TCHECK_EQ(weft_chan_recv(ch[i], NULL), -EINVAL);
		TCHECK_EQ(weft_chan_recv_until(ch[i], NULL, INT64_MIN), -EINVAL);
		TCHECK_EQ(weft_chan_try_recv(ch[i], NULL), -EINVAL);
		TCHECK_EQ(weft_chan_len(ch[i]), 0); /* nothing was sent */
	}
	release3(ch);
}

static void test_send_and_recv_refuse_null(void **state)
{
	(void)state;
	wt_each_kind(send_null_body, NULL);
}

static void past_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_chan_t *ch[3];
	three(ch);
	int v = 7, out;
	static const weft_time_t past[] = {INT64_MIN, -1, 0};
	/* Full: the bounded one holds two. */
	TCHECK_EQ(weft_chan_send(ch[1], &v), 0);
	TCHECK_EQ(weft_chan_send(ch[1], &v), 0);
	for (size_t i = 0; i < sizeof past / sizeof past[0]; i++) {
		TCHECK_EQ(weft_chan_send_until(ch[0], &v, past[i]), -ETIMEDOUT); /* nobody receives */
		TCHECK_EQ(weft_chan_send_until(ch[1], &v, past[i]), -ETIMEDOUT);
		TCHECK_EQ(weft_chan_recv_until(ch[0], &out, past[i]), -ETIMEDOUT);
		TCHECK_EQ(weft_chan_recv_until(ch[2], &out, past[i]), -ETIMEDOUT);
	}
	TCHECK_EQ(weft_chan_try_send(ch[0], &v), -EAGAIN);
	TCHECK_EQ(weft_chan_try_send(ch[1], &v), -EAGAIN);
	TCHECK_EQ(weft_chan_try_recv(ch[0], &out), -EAGAIN);
	TCHECK_EQ(weft_chan_try_recv(ch[2], &out), -EAGAIN);
	/* A past deadline still does what can be done at once. */
	out = 0;
	TCHECK_EQ(weft_chan_recv_until(ch[1], &out, INT64_MIN), 0);
	TCHECK_EQ(out, 7);
	TCHECK_EQ(weft_chan_send_until(ch[2], &v, INT64_MIN), 0);
	TCHECK_EQ(weft_chan_len(ch[1]), 1);
	TCHECK_EQ(weft_chan_len(ch[2]), 1);
	release3(ch);
}

static void test_a_past_deadline_polls(void **state)
{
	(void)state;
	wt_each_kind(past_body, NULL);
}

static void step_blocking_body(enum wt_kind kind, void *arg)
{
	(void)arg;
	if (kind != WT_STEP)
		return;
	weft_chan_t *ch[3];
	three(ch);
	int v = 5, out = 0;
	/* Nothing can complete: a stackless task cannot wait. */
	TCHECK_EQ(weft_chan_recv(ch[0], &out), -EPERM);
	TCHECK_EQ(weft_chan_recv(ch[1], &out), -EPERM);
	TCHECK_EQ(weft_chan_recv_until(ch[2], &out, weft_deadline_in(WEFT_SEC)), -EPERM);
	TCHECK_EQ(weft_chan_send(ch[0], &v), -EPERM);
	TCHECK_EQ(weft_chan_send_until(ch[0], &v, WEFT_NEVER), -EPERM);
	/* ... and it left nothing queued behind: no receiver takes a send. */
	TCHECK_EQ(weft_chan_try_send(ch[0], &v), -EAGAIN);
	TCHECK_EQ(weft_chan_try_recv(ch[0], &out), -EAGAIN);
	/* What completes at once, does. */
	TCHECK_EQ(weft_chan_send(ch[1], &v), 0);
	TCHECK_EQ(weft_chan_send(ch[1], &v), 0);
	TCHECK_EQ(weft_chan_send(ch[1], &v), -EPERM); /* full */
	TCHECK_EQ(weft_chan_recv(ch[1], &out), 0);
	TCHECK_EQ(out, 5);
	TCHECK_EQ(weft_chan_send(ch[2], &v), 0);
	TCHECK_EQ(weft_chan_recv(ch[2], &out), 0);
	TCHECK_EQ(weft_chan_close(ch[0]), 0);
	TCHECK_EQ(weft_chan_recv(ch[0], &out), -EPIPE);
	release3(ch);
}

static void test_blocking_forms_in_a_stackless_task(void **state)
{
	(void)state;
	wt_each_kind(step_blocking_body, NULL);
}

static void closed_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_chan_t *ch[3];
	three(ch);
	int v = 3, out;
	for (int i = 0; i < 3; i++) {
		TCHECK_EQ(weft_chan_close(ch[i]), 0);
		TCHECK_EQ(weft_chan_send(ch[i], &v), -EPIPE);
		TCHECK_EQ(weft_chan_send_until(ch[i], &v, INT64_MIN), -EPIPE);
		TCHECK_EQ(weft_chan_try_send(ch[i], &v), -EPIPE);
		TCHECK_EQ(weft_chan_recv(ch[i], &out), -EPIPE);
		TCHECK_EQ(weft_chan_recv_until(ch[i], &out, INT64_MIN), -EPIPE);
		TCHECK_EQ(weft_chan_try_recv(ch[i], &out), -EPIPE);
		weft_op_t op = WEFT_OP_INIT;
		TCHECK_EQ(weft_chan_send_step(ch[i], &v, WEFT_NEVER, &op), -EPIPE);
		TCHECK_EQ(weft_chan_recv_step(ch[i], &out, WEFT_NEVER, &op), -EPIPE);
	}
	release3(ch);
}

static void test_operations_on_a_closed_channel(void **state)
{
	(void)state;
	wt_each_kind(closed_body, NULL);
}

/* ------------------------------------------------------------ sized */

static void sized_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_chan_t *ch[3];
	three(ch);
	int v = 9;
	static const size_t sizes[] = {0, sizeof(int) - 1, sizeof(int) + 1, SIZE_MAX};
	TCHECK_EQ(weft_chan_send_sized(NULL, &v, sizeof v), -EINVAL);
	TCHECK_EQ(weft_chan_recv_sized(NULL, &v, sizeof v), -EINVAL);
	for (int c = 0; c < 3; c++) {
		for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
			TCHECK_EQ(weft_chan_send_sized(ch[c], &v, sizes[i]), -EINVAL);
			TCHECK_EQ(weft_chan_recv_sized(ch[c], &v, sizes[i]), -EINVAL);
		}
		TCHECK_EQ(weft_chan_send_sized(ch[c], NULL, sizeof v), -EINVAL);
		TCHECK_EQ(weft_chan_recv_sized(ch[c], NULL, sizeof v), -EINVAL);
		long wrong = 1;
		TCHECK_EQ(WEFT_CHAN_SEND(ch[c], wrong), -EINVAL);
		TCHECK_EQ(WEFT_CHAN_RECV(ch[c], wrong), -EINVAL);
	}
	TCHECK_EQ(WEFT_CHAN_SEND(ch[1], v), 0);
	int out = 0;
	TCHECK_EQ(WEFT_CHAN_RECV(ch[1], out), 0);
	TCHECK_EQ(out, 9);
	release3(ch);
}

static void test_sized_forms_refuse_other_sizes(void **state)
{
	(void)state;
	wt_each_kind(sized_body, NULL);
}

/* ------------------------------------------------------------ stackless forms */

static void step_null_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_chan_t *ch[3];
	three(ch);
	int v = 1;
	weft_op_t op = WEFT_OP_INIT;
	TCHECK_EQ(weft_chan_send_step(NULL, &v, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_chan_recv_step(NULL, &v, WEFT_NEVER, &op), -EINVAL);
	for (int i = 0; i < 3; i++) {
		TCHECK_EQ(weft_chan_send_step(ch[i], NULL, WEFT_NEVER, &op), -EINVAL);
		TCHECK_EQ(weft_chan_send_step(ch[i], &v, WEFT_NEVER, NULL), -EINVAL);
		TCHECK_EQ(weft_chan_recv_step(ch[i], NULL, WEFT_NEVER, &op), -EINVAL);
		TCHECK_EQ(weft_chan_recv_step(ch[i], &v, WEFT_NEVER, NULL), -EINVAL);
		TCHECK_EQ(weft_chan_len(ch[i]), 0);
	}
	/* Ready ones complete in any kind of caller. */
	TCHECK_EQ(weft_chan_send_step(ch[1], &v, WEFT_NEVER, &op), 0);
	TCHECK_EQ(weft_chan_recv_step(ch[1], &v, WEFT_NEVER, &op), 0);
	release3(ch);
}

static void test_step_forms_refuse_null(void **state)
{
	(void)state;
	wt_each_kind(step_null_body, NULL);
}

/* ------------------------------------------------------------ select */

static void select_bad_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_chan_t *ch[3];
	three(ch);
	int v = 4, out = 0;
	TCHECK_EQ(weft_chan_send(ch[1], &v), 0); /* a ready receive */
	weft_select_case_t good = {ch[1], WEFT_SELECT_RECV, &out, 0};
	TCHECK_EQ(weft_select(NULL, 1, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_select(NULL, 0, INT64_MIN), -EINVAL);
	TCHECK_EQ(weft_select(&good, 0, WEFT_NEVER), -EINVAL);
	weft_select_case_t many[65];
	for (int i = 0; i < 65; i++)
		many[i] = good;
	TCHECK_EQ(weft_select(many, 65, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_select(many, SIZE_MAX, WEFT_NEVER), -EINVAL);
	TCHECK_EQ(weft_chan_len(ch[1]), 1);
	/* One bad case spoils the select: nothing is done, the ready case
	 * included. */
	weft_select_case_t bad[] = {
		{NULL, WEFT_SELECT_RECV, &out, 0},
		{ch[1], WEFT_SELECT_RECV, NULL, 0},
		{ch[1], WEFT_SELECT_SEND, NULL, 0},
		{ch[1], 2, &out, 0},
		{ch[1], -1, &out, 0},
		{ch[1], INT_MAX, &out, 0},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		weft_select_case_t cs[2] = {good, bad[i]};
		TCHECK_EQ(weft_select(cs, 2, WEFT_NEVER), -EINVAL);
		TCHECK_EQ(weft_select(cs, 2, INT64_MIN), -EINVAL);
		TCHECK_EQ(weft_chan_len(ch[1]), 1);
	}
	release3(ch);
}

static void test_select_refuses_bad_cases(void **state)
{
	(void)state;
	wt_each_kind(select_bad_body, NULL);
}

static void select_past_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_chan_t *ch[3];
	three(ch);
	int v = 8, out = 0;
	TCHECK_EQ(weft_chan_send(ch[1], &v), 0);
	TCHECK_EQ(weft_chan_send(ch[1], &v), 0); /* full */
	weft_select_case_t cs[] = {
		{ch[0], WEFT_SELECT_RECV, &out, 0},
		{ch[0], WEFT_SELECT_SEND, &v, 0},
		{ch[1], WEFT_SELECT_SEND, &v, 0},
		{ch[2], WEFT_SELECT_RECV, &out, 0},
	};
	static const weft_time_t past[] = {INT64_MIN, -1, 0};
	for (size_t i = 0; i < sizeof past / sizeof past[0]; i++)
		TCHECK_EQ(weft_select(cs, 4, past[i]), -ETIMEDOUT);
	/* A stackless task cannot wait for one. */
	if (kind == WT_STEP) {
		TCHECK_EQ(weft_select(cs, 4, WEFT_NEVER), -EPERM);
		TCHECK_EQ(weft_select(cs, 4, weft_deadline_in(WEFT_SEC)), -EPERM);
		TCHECK_EQ(weft_chan_try_send(ch[0], &v), -EAGAIN); /* nothing left queued */
	}
	/* A ready case is taken whatever the deadline and the caller. */
	TCHECK_EQ(weft_chan_send(ch[2], &v), 0);
	TCHECK_EQ(weft_select(cs, 4, INT64_MIN), 3);
	TCHECK_EQ(cs[3].result, 0);
	TCHECK_EQ(out, 8);
	TCHECK_EQ(weft_chan_close(ch[0]), 0);
	TCHECK_EQ(weft_select(cs, 2, WEFT_NEVER) >= 0, 1);
	TCHECK_EQ(cs[0].result + cs[1].result, -EPIPE);
	release3(ch);
}

static void test_select_with_nothing_ready(void **state)
{
	(void)state;
	wt_each_kind(select_past_body, NULL);
}

/* weft_select_step refuses what weft_select refuses, and a NULL op, before
 * anything else (-EINVAL, nothing done, nothing registered); what needs no
 * wait completes in every kind of caller, and a past deadline polls. */
static void select_step_body(enum wt_kind kind, void *arg)
{
	(void)kind, (void)arg;
	weft_chan_t *ch[3];
	three(ch);
	int v = 4, out = 0;
	TCHECK_EQ(weft_chan_send(ch[1], &v), 0); /* a ready receive */
	weft_select_case_t good = {ch[1], WEFT_SELECT_RECV, &out, 0};
	weft_op_t op = WEFT_OP_INIT;
	TCHECK_EQ(weft_select_step(NULL, 1, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_select_step(NULL, 3, INT64_MIN, &op), -EINVAL);
	TCHECK_EQ(weft_select_step(NULL, 0, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_select_step(&good, 0, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_select_step(&good, (size_t)-1, WEFT_NEVER, &op), -EINVAL); /* n < 0 */
	TCHECK_EQ(weft_select_step(&good, (size_t)INT_MIN, WEFT_NEVER, &op), -EINVAL);
	weft_select_case_t many[65];
	for (int i = 0; i < 65; i++)
		many[i] = good;
	TCHECK_EQ(weft_select_step(many, 65, WEFT_NEVER, &op), -EINVAL);
	TCHECK_EQ(weft_select_step(&good, 1, WEFT_NEVER, NULL), -EINVAL);
	TCHECK_EQ(weft_select_step(&good, 1, INT64_MIN, NULL), -EINVAL);
	TCHECK_EQ(weft_select_step(NULL, 1, WEFT_NEVER, NULL), -EINVAL);
	TCHECK_EQ(weft_chan_len(ch[1]), 1);
	weft_select_case_t bad[] = {
		{NULL, WEFT_SELECT_RECV, &out, 0},
		{NULL, WEFT_SELECT_SEND, &v, 0},
		{ch[1], WEFT_SELECT_RECV, NULL, 0},
		{ch[0], WEFT_SELECT_SEND, NULL, 0},
		{ch[1], 2, &out, 0},
		{ch[1], -1, &out, 0},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		weft_select_case_t cs[2] = {good, bad[i]};
		TCHECK_EQ(weft_select_step(cs, 2, WEFT_NEVER, &op), -EINVAL);
		TCHECK_EQ(weft_select_step(cs, 2, INT64_MIN, &op), -EINVAL);
		TCHECK_EQ(weft_select_step(&bad[i], 1, WEFT_NEVER, &op), -EINVAL);
		TCHECK_EQ(weft_chan_len(ch[1]), 1);
	}
	/* Nothing was registered by any of them: a past deadline polls... */
	weft_select_case_t idle[] = {
		{ch[0], WEFT_SELECT_RECV, &out, 0},
		{ch[0], WEFT_SELECT_SEND, &v, 0},
		{ch[2], WEFT_SELECT_RECV, &out, 0},
	};
	static const weft_time_t past[] = {INT64_MIN, -1, 0};
	for (size_t i = 0; i < sizeof past / sizeof past[0]; i++)
		TCHECK_EQ(weft_select_step(idle, 3, past[i], &op), -ETIMEDOUT);
	TCHECK_EQ(weft_chan_try_send(ch[0], &v), -EAGAIN); /* nothing left queued */
	/* ... and what is ready is taken, with any deadline. */
	TCHECK_EQ(weft_select_step(&good, 1, WEFT_NEVER, &op), 0);
	TCHECK_EQ(out, 4);
	TCHECK_EQ(weft_chan_close(ch[2]), 0);
	TCHECK_EQ(weft_select_step(idle, 3, INT64_MIN, &op), 2);
	TCHECK_EQ(idle[2].result, -EPIPE);
	release3(ch);
}

static void test_select_step_refuses_bad_input(void **state)
{
	(void)state;
	wt_each_kind(select_step_body, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_refuses_bad_sizes),
		cmocka_unit_test(test_channel_calls_refuse_null),
		cmocka_unit_test(test_close_twice),
		cmocka_unit_test(test_release_of_the_last_reference_with_waiters),
		cmocka_unit_test(test_send_and_recv_refuse_null),
		cmocka_unit_test(test_a_past_deadline_polls),
		cmocka_unit_test(test_blocking_forms_in_a_stackless_task),
		cmocka_unit_test(test_operations_on_a_closed_channel),
		cmocka_unit_test(test_sized_forms_refuse_other_sizes),
		cmocka_unit_test(test_step_forms_refuse_null),
		cmocka_unit_test(test_select_refuses_bad_cases),
		cmocka_unit_test(test_select_with_nothing_ready),
		cmocka_unit_test(test_select_step_refuses_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
