/* test_retry.c - a waiter's re-try of a bounded ring (select.c,
 * recheck_buffered): with its own node queued and the channel's lock held,
 * a waiter re-tries the ring, and a re-try that succeeds hands its change on
 * to the other side's waiters (chan_notify_one), side after side. That
 * hand-over must never come back to the re-trying node itself: it would
 * complete the waiter's operation a second time - a sender's element put
 * into the ring again (a value received twice), a receiver's buffer
 * overwritten by the next element (a value lost).
 *
 * The interleaving that leads there is forced, not waited for, with the
 * test hook weft__chan_hook (chan_impl.h), which lets a thread stop at two
 * points where the OS could have preempted it. On a channel of capacity 1,
 * with S the waiter (a sender; the other case is the mirror image):
 *  1. W, a receiver, waits on the empty ring (queued).
 *  2. X sends without the lock: its element fills the ring, and X stops
 *     (NOTIFY) before it takes the lock to hand that element to W.
 *  3. S sends: the ring is full, so S queues its node and, holding the lock,
 *     stops before its re-try (RETRY).
 *  4. H receives X's element without the lock (H then waits for the lock
 *     to notify the senders): the ring has room again.
 *  5. S's re-try puts its element, and hands it to W, which frees the slot
 *     again - with S's own node still queued and counted, so the hand-over
 *     goes on to the senders' queue: before the fix it claimed S's node and
 *     put S's element into the ring a second time. Only then does X take
 *     the lock: W has been served, so X finds nobody to notify.
 * Both stops are needed: a waiter queued while the ring holds what it waits
 * for (W at 3) exists only while the notifier of that change (X) is on its
 * way to the lock, and S must take the lock first; and the ring changes
 * under S's lock only by a lock-free operation (H's) between S's attempt
 * and its re-try. */
#include "weft_test.h"

#include <pthread.h>
#include <time.h>

#include "chan/chan_impl.h" /* weft__chan_hook, the waiter counts, the lock */

enum { ROLE_NONE, ROLE_W, ROLE_X, ROLE_S, ROLE_H };
static __thread int role; /* which thread of the scenario this is */

enum { ST_START, ST_X_STOPPED, ST_S_RETRYING, ST_S_DONE };
static _Atomic int stage;

typedef struct {
	weft_chan_t *ch;
	bool s_sends; /* S is a sender (else a receiver) */
	long w_val, x_val, s_val, h_val;
	int w_res, x_res, s_res, h_res;
} scene_t;

static scene_t *scene;

/* Polls cond until it holds; a failed check if the hang guard passes first. */
#define UNTIL(cond)                                                                                                    \
	do {                                                                                                           \
		weft_time_t give_up_ = wt_hang_deadline();                                                             \
		while (!(cond) && weft_now() < give_up_) {                                                             \
			struct timespec ts_ = {0, 50 * 1000};                                                          \
			nanosleep(&ts_, NULL);                                                                         \
		}                                                                                                      \
		TCHECK(cond);                                                                                          \
	} while (0)

static void hook(weft_chan_t *ch, int where)
{
	if (ch != scene->ch)
		return;
	if (where == CHAN_HOOK_NOTIFY && role == ROLE_X) {
		/* 2: X has published; it takes the lock only once S is done. */
		atomic_store(&stage, ST_X_STOPPED);
		UNTIL(atomic_load(&stage) == ST_S_DONE);
	} else if (where == CHAN_HOOK_RETRY && role == ROLE_S) {
		/* 3: S is queued, holds the lock, and re-tries next. */
		atomic_store(&stage, ST_S_RETRYING);
		/* 4: until H has claimed its slot of the ring (an element to take,
		 * a slot to fill): the re-try waits for H's copy if need be. */
		UNTIL(weft_chan_len(ch) == (scene->s_sends ? 0 : 1));
	}
}

static void *w_thread(void *a)
{
	scene_t *s = a;
	role = ROLE_W;
	s->w_res = s->s_sends ? weft_chan_recv(s->ch, &s->w_val) : weft_chan_send(s->ch, &s->w_val);
	return NULL;
}

static void *x_thread(void *a)
{
	scene_t *s = a;
	role = ROLE_X;
	s->x_res = s->s_sends ? weft_chan_try_send(s->ch, &s->x_val) : weft_chan_try_recv(s->ch, &s->x_val);
	return NULL;
}

static void *s_thread(void *a)
{
	scene_t *s = a;
	role = ROLE_S;
	s->s_res = s->s_sends ? weft_chan_send(s->ch, &s->s_val) : weft_chan_recv(s->ch, &s->s_val);
	atomic_store(&stage, ST_S_DONE);
	return NULL;
}

static void *h_thread(void *a)
{
	scene_t *s = a;
	role = ROLE_H;
	s->h_res = s->s_sends ? weft_chan_try_recv(s->ch, &s->h_val) : weft_chan_try_send(s->ch, &s->h_val);
	return NULL;
}

static void scenario(bool s_sends)
{
	atomic_store(&weft__chan_hook, NULL); /* (left set by a failed scenario) */
	atomic_store(&tcheck_failures, 0);
	atomic_store(&stage, ST_START);
	scene_t s = {.s_sends = s_sends};
	scene = &s;
	assert_int_equal(weft_chan_create(&s.ch, sizeof(long), 1), 0);
	weft_chan_t *ch = s.ch;
	if (s.s_sends) {
		/* X's element, which H takes; S's, which W gets. */
		s.x_val = 1;
		s.s_val = 2;
	} else {
		/* The ring full when W queues, with the element X takes; W's,
		 * which goes into the ring; H's, which S gets. */
		long first = 10;
		assert_int_equal(weft_chan_try_send(ch, &first), 0);
		s.w_val = 20;
		s.h_val = 30;
	}
	atomic_store(&weft__chan_hook, hook);
	pthread_t w, x, sth, h;
	/* 1: W queued, and out of its locked section (which counted its node:
	 * the lock taken once after that). */
	assert_int_equal(pthread_create(&w, NULL, w_thread, &s), 0);
	UNTIL(chan_waiting(ch, !s.s_sends) == 1);
	chan_lock(ch);
	chan_unlock(ch);
	assert_int_equal(pthread_create(&x, NULL, x_thread, &s), 0);
	UNTIL(atomic_load(&stage) == ST_X_STOPPED);
	assert_int_equal(pthread_create(&sth, NULL, s_thread, &s), 0);
	UNTIL(atomic_load(&stage) >= ST_S_RETRYING);
	assert_int_equal(pthread_create(&h, NULL, h_thread, &s), 0);
	assert_int_equal(pthread_join(sth, NULL), 0);
	assert_int_equal(pthread_join(x, NULL), 0);
	assert_int_equal(pthread_join(h, NULL), 0);
	assert_int_equal(pthread_join(w, NULL), 0);
	atomic_store(&weft__chan_hook, NULL);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
	assert_int_equal(s.w_res, 0);
	assert_int_equal(s.x_res, 0);
	assert_int_equal(s.s_res, 0);
	assert_int_equal(s.h_res, 0);
	long v = 0;
	int more = weft_chan_try_recv(ch, &v);
	if (s.s_sends) {
		assert_int_equal(s.h_val, 1);
		assert_int_equal(s.w_val, 2);
		/* S's element was received by W: it is not in the ring too. */
		if (more == 0)
			print_message("value %ld received twice: by W, and again from the ring\n", v);
		assert_int_equal(more, -EAGAIN);
	} else {
		assert_int_equal(s.x_val, 10);
		/* S's re-try took H's element, and W's went into the ring: S
		 * was not handed W's element over H's (which would be lost). */
		if (s.s_val != 30)
			print_message("S received %ld, not H's 30: H's value lost\n", s.s_val);
		assert_int_equal(s.s_val, 30);
		assert_int_equal(more, 0);
		assert_int_equal(v, 20);
		assert_int_equal(weft_chan_try_recv(ch, &v), -EAGAIN);
	}
	assert_int_equal(chan_waiting(ch, false), 0);
	assert_int_equal(chan_waiting(ch, true), 0);
	assert_int_equal(weft_chan_release(ch), 0);
}

/* S sends: before the fix, the hand-over came back to S's node and put S's
 * element into the ring again, for a second receiver. */
static void test_retrying_sender_is_not_handed_its_own_slot(void **state)
{
	(void)state;
	scenario(true);
}

/* S receives (the mirror image: W a sender queued on the full ring, X and H
 * a receive and a send without the lock): before the fix, the hand-over
 * came back to S's node and gave it W's element over H's, which was lost. */
static void test_retrying_receiver_is_not_handed_its_own_element(void **state)
{
	(void)state;
	scenario(false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retrying_sender_is_not_handed_its_own_slot),
		cmocka_unit_test(test_retrying_receiver_is_not_handed_its_own_element),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
