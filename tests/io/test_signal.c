/* test_signal.c - signals as channel messages: delivery through the handler
 * and through the signalfd, several channels, drops when full, real-time
 * signals keep their count, the old disposition comes back, bad input. */
#include "weft_test.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <weft/io.h>

#include "blocking_check.h"

static _Atomic int old_handler_hits;

static void old_handler(int s)
{
	(void)s;
	atomic_fetch_add(&old_handler_hits, 1);
}

static int fds_before;

/* Every test starts with a counting handler as the "previous" disposition
 * of SIGUSR1, SIGUSR2 and SIGRTMIN+1 (so a stray signal cannot kill us),
 * and checks at the end that no descriptor was left open. */
static int setup(void **state)
{
	(void)state;
	struct sigaction sa = {.sa_handler = old_handler};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGRTMIN + 1, &sa, NULL);
	atomic_store(&old_handler_hits, 0);
	fds_before = wt_count_fds();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (wt_count_fds() != fds_before) {
		wt_dump_fds();
		return -1;
	}
	return 0;
}

/* A signal for the whole process. Under TSan, a raise to the running
 * thread instead: TSan defers a signal caught by a thread that sleeps in a
 * raw system call (a worker parked on its futex) until that thread wakes,
 * which may be much later. */
static void send_to_process(int s)
{
#ifdef __SANITIZE_THREAD__
	raise(s);
#else
	kill(getpid(), s);
#endif
}

static int recv_sig(weft_chan_t *ch)
{
	int s = 0;
	int e = weft_chan_recv_until(ch, &s, wt_hang_deadline());
	return e ? e : s;
}

/* ------------------------------------------------------------ basic delivery */

static void *basic_main(void *a)
{
	(void)a;
	weft_chan_t *ch, *other;
	weft_chan_create(&ch, sizeof(int), 8);
	weft_chan_create(&other, sizeof(int), 8);
	TCHECK_EQ(weft_signal_notify(ch, (int[]){SIGUSR1, SIGUSR2}, 2), 0);
	TCHECK_EQ(weft_signal_notify(other, (int[]){SIGUSR1}, 1), 0);
	TCHECK_EQ(weft_signal_notify(other, (int[]){SIGUSR1}, 1), 0); /* again: nothing changes */

	raise(SIGUSR1); /* to this worker thread: the handler forwards it */
	TCHECK_EQ(recv_sig(ch), SIGUSR1);
	TCHECK_EQ(recv_sig(other), SIGUSR1);
	send_to_process(SIGUSR2);
	TCHECK_EQ(recv_sig(ch), SIGUSR2);
	weft_sleep(5 * WEFT_MSEC);
	int s;
	TCHECK_EQ(weft_chan_try_recv(other, &s), -EAGAIN); /* it did not ask for SIGUSR2 */

	TCHECK_EQ(weft_signal_stop(other), 0);
	TCHECK_EQ(weft_signal_stop(other), -ENOENT);
	send_to_process(SIGUSR1);
	TCHECK_EQ(recv_sig(ch), SIGUSR1);
	TCHECK_EQ(weft_signal_stop(ch), 0);
	TCHECK_EQ(atomic_load(&old_handler_hits), 0);

	/* stopped: the old handler is back, nothing reaches the channel */
	send_to_process(SIGUSR1);
	WT_WAIT_UNTIL(atomic_load(&old_handler_hits) >= 1);
	TCHECK_EQ(atomic_load(&old_handler_hits), 1);
	TCHECK_EQ(weft_chan_try_recv(ch, &s), -EAGAIN);
	TCHECK_EQ(weft_chan_release(ch), 0);
	TCHECK_EQ(weft_chan_release(other), 0);
	return NULL;
}

static void test_basic_delivery(void **state)
{
	(void)state;
	wt_run(basic_main, NULL, 2);
}

/* ------------------------------------------------------------ blocked in every thread: the signalfd */

static void test_blocked_everywhere(void **state)
{
	(void)state;
	sigset_t usr1, old;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &old); /* before the runtime: workers inherit it */
	weft_runtime_t *rt;
	assert_int_equal(weft_runtime_start(&rt, &(weft_config_t){.workers = 2}), 0);
	weft_chan_t *ch;
	assert_int_equal(weft_chan_create(&ch, sizeof(int), 4), 0);
	assert_int_equal(weft_signal_notify(ch, (int[]){SIGUSR1}, 1), 0);
	for (int i = 0; i < 3; i++) {
		kill(getpid(), SIGUSR1);
		assert_int_equal(recv_sig(ch), SIGUSR1); /* from this plain thread */
	}
	assert_int_equal(weft_signal_stop(ch), 0);
	assert_int_equal(weft_chan_release(ch), 0);
	assert_int_equal(weft_runtime_stop(rt), 0);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	assert_int_equal(atomic_load(&old_handler_hits), 0);
}

/* ------------------------------------------------------------ full channels drop */

/* Delivery is asynchronous (the delivery thread forwards each signal), so
 * "dropped" can only be checked once every signal sent has been handled:
 * a marker signal, sent last, tells when. raise() runs weft's handler in
 * this thread before it returns, so each signal is pending for the
 * delivery thread in the order sent, and Linux dequeues a standard signal
 * before a real-time one: when the marker reaches its channel, every
 * SIGUSR2 before it has been offered to the full channel and dropped. */
static void *drop_main(void *a)
{
	(void)a;
	weft_chan_t *ch, *mark;
	weft_chan_create(&ch, sizeof(int), 1);
	weft_chan_create(&mark, sizeof(int), 1);
	TCHECK_EQ(weft_signal_notify(ch, (int[]){SIGUSR2}, 1), 0);
	TCHECK_EQ(weft_signal_notify(mark, (int[]){SIGRTMIN + 1}, 1), 0);
	raise(SIGUSR2);
	WT_WAIT_UNTIL(weft_chan_len(ch) == 1);
	for (int i = 0; i < 5; i++)
		raise(SIGUSR2); /* the channel is full: dropped */
	raise(SIGRTMIN + 1);
	TCHECK_EQ(recv_sig(mark), SIGRTMIN + 1);
	int s;
	TCHECK_EQ(weft_chan_try_recv(ch, &s), 0);
	TCHECK_EQ(s, SIGUSR2);
	TCHECK_EQ(weft_chan_try_recv(ch, &s), -EAGAIN);
	TCHECK_EQ(weft_signal_stop(ch), 0);
	TCHECK_EQ(weft_signal_stop(mark), 0);
	weft_chan_release(ch);
	weft_chan_release(mark);
	return NULL;
}

static void test_full_channel_drops(void **state)
{
	(void)state;
	wt_run(drop_main, NULL, 2);
}

/* ------------------------------------------------------------ real-time signals: none lost */

enum { NRT = 300 };

static void *sender(void *a)
{
	(void)a;
	for (int i = 0; i < NRT; i++) {
		if (i % 2)
			kill(getpid(), SIGRTMIN + 1);
		else
			raise(SIGRTMIN + 1);
		if (i % 16 == 0)
			weft_yield();
	}
	return NULL;
}

static void *realtime_main(void *a)
{
	(void)a;
	weft_chan_t *ch;
	weft_chan_create(&ch, sizeof(int), 2 * NRT);
	TCHECK_EQ(weft_signal_notify(ch, (int[]){SIGRTMIN + 1}, 1), 0);
	weft_task_t t[2] = {wt_spawn(sender, NULL), wt_spawn(sender, NULL)};
#ifndef __SANITIZE_THREAD__
	for (int i = 0; i < 2 * NRT; i++)
		TCHECK_EQ(recv_sig(ch), SIGRTMIN + 1);
	wt_join(t[0]);
	wt_join(t[1]);
	weft_sleep(5 * WEFT_MSEC);
	int s;
	TCHECK_EQ(weft_chan_try_recv(ch, &s), -EAGAIN); /* nothing extra */
#else
	/* TSan's own signal handler keeps one pending instance per signal
	 * number, so queued real-time signals merge before weft sees them:
	 * check only that some arrive and none is invented. */
	wt_join(t[0]);
	wt_join(t[1]);
	/* At least one arrives (wait for it, however long delivery takes);
	 * then count what else comes. */
	int s, got = 0;
	TCHECK_EQ(recv_sig(ch), SIGRTMIN + 1);
	got++;
	while (weft_chan_recv_until(ch, &s, weft_deadline_in(200 * WEFT_MSEC)) == 0) {
		TCHECK_EQ(s, SIGRTMIN + 1);
		got++;
	}
	TCHECK(got >= 1 && got <= 2 * NRT);
#endif
	TCHECK_EQ(weft_signal_stop(ch), 0);
	weft_chan_release(ch);
	return NULL;
}

static void test_realtime_counted(void **state)
{
	(void)state;
	wt_run(realtime_main, NULL, 2);
}

/* ------------------------------------------------------------ start and stop repeatedly */

static void *churn(void *a)
{
	(void)a;
	weft_chan_t *ch;
	weft_chan_create(&ch, sizeof(int), 64);
	for (int i = 0; i < WT_SIZE(200, 50); i++) {
		TCHECK_EQ(weft_signal_notify(ch, (int[]){SIGUSR1, SIGUSR2}, 2), 0);
		if (i % 8 == 0)
			send_to_process(SIGUSR1);
		TCHECK_EQ(weft_signal_stop(ch), 0);
	}
	int s;
	while (weft_chan_try_recv(ch, &s) == 0)
		TCHECK_EQ(s, SIGUSR1);
	weft_chan_release(ch);
	return NULL;
}

static void *churn_main(void *a)
{
	(void)a;
	weft_task_t t[4];
	for (int i = 0; i < 4; i++)
		t[i] = wt_spawn(churn, NULL);
	for (int i = 0; i < 4; i++)
		wt_join(t[i]);
	return NULL;
}

static void test_notify_stop_churn(void **state)
{
	(void)state;
	wt_run(churn_main, NULL, 2);
	/* signals caught between a stop and the next notify went to the old
	 * handler: that is the expected behaviour, not a failure */
}

/* ------------------------------------------------------------ SIGCHLD next to subprocesses */

static void *sigchld_main(void *a)
{
	(void)a;
	weft_chan_t *ch;
	weft_chan_create(&ch, sizeof(int), 4);
	TCHECK_EQ(weft_signal_notify(ch, (int[]){SIGCHLD}, 1), 0);
	weft_process_t *p;
	TCHECK_EQ(weft_process_spawn(&p, (const char *const[]){"sh", "-c", "exit 7", NULL}, NULL), 0);
	TCHECK_EQ(recv_sig(ch), SIGCHLD);
	/* the notification does not reap: the exit status is still there */
	weft_exit_status_t st;
	TCHECK_EQ(weft_process_wait(p, &st, wt_hang_deadline()), 0);
	TCHECK_EQ(st.code, 7);
	TCHECK_EQ(weft_process_destroy(p), 0);
	TCHECK_EQ(weft_signal_stop(ch), 0);
	weft_chan_release(ch);
	return NULL;
}

static void test_sigchld_with_process(void **state)
{
	(void)state;
	/* Blocked everywhere (so the signalfd takes it, whatever TSan does with
	 * handlers); the child still starts with an empty mask. */
	sigset_t chld, old;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &chld, &old);
	wt_run(sigchld_main, NULL, 2);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	assert_false(wt_have_zombie());
}

/* ------------------------------------------------------------ bad input */

static void test_bad_input(void **state)
{
	(void)state;
	weft_chan_t *ch, *wide;
	assert_int_equal(weft_chan_create(&ch, sizeof(int), 1), 0);
	assert_int_equal(weft_chan_create(&wide, sizeof(long), 1), 0);
	const int bad[] = {0, -1, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, 32, 33, NSIG, 1000};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(weft_signal_notify(ch, &bad[i], 1), -EINVAL);
	assert_int_equal(weft_signal_notify(ch, (int[]){SIGUSR1, SIGKILL}, 2), -EINVAL); /* nothing added */
	assert_int_equal(weft_signal_stop(ch), -ENOENT);
	assert_int_equal(weft_signal_notify(NULL, (int[]){SIGUSR1}, 1), -EINVAL);
	assert_int_equal(weft_signal_notify(ch, NULL, 1), -EINVAL);
	assert_int_equal(weft_signal_notify(ch, (int[]){SIGUSR1}, 0), -EINVAL);
	assert_int_equal(weft_signal_notify(wide, (int[]){SIGUSR1}, 1), -EINVAL);
	assert_int_equal(weft_signal_stop(NULL), -EINVAL);
	assert_int_equal(weft_chan_release(ch), 0);
	assert_int_equal(weft_chan_release(wide), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_basic_delivery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blocked_everywhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_channel_drops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_realtime_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_stop_churn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigchld_with_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
