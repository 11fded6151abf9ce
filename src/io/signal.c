/* signal.c - signals delivered as channel messages (weft_signal_notify).
 *
 * Pieces
 * ------
 * Signal dispositions and pending signals belong to the process, not to a
 * runtime, so this registry is process-wide (the one piece of global state
 * in the io module; guarded by reg.mu): a list of channels, each with the
 * set of signals it wants, a count per signal of the channels wanting it,
 * and one delivery thread that exists while the list is not empty.
 *
 * The delivery thread blocks every signal and sleeps in poll(2) on
 *   - a signalfd whose mask is the union of the wanted signals: it reports
 *     a wanted signal that is pending for the whole process (when every
 *     thread blocks it) or for the delivery thread itself;
 *   - an eventfd (ctl) that notify/stop write to when the mask changed or
 *     the thread must exit.
 * A wanted signal that arrives while some other thread has it unblocked is
 * delivered to that thread instead; for that case weft installs a handler
 * that forwards it (tgkill) to the delivery thread, where it is blocked, so
 * it becomes pending there and the signalfd reports it. The handler touches
 * no descriptor and no lock: only the delivery thread's tid, an atomic.
 * So delivery works whatever the threads' masks are, and real-time signals
 * keep their count (each forward queues one more).
 *
 * Invariants (under reg.mu)
 * ----------
 *  - count[s] = number of registrations whose set holds s; s is in the
 *    signalfd mask and has weft's handler installed iff count[s] > 0, and
 *    old[s] holds the disposition to restore when count[s] drops to 0.
 *  - Order: a signal is added to the signalfd mask before the handler is
 *    installed, and the handler is removed before the mask drops it, so a
 *    forwarded signal is always one the signalfd reports.
 *  - Sends happen under reg.mu, with the non-blocking weft_chan_try_send,
 *    so after weft_signal_stop has unlinked a channel (under the lock) no
 *    send can reach it, and the reference the registry held can be dropped.
 *  - The delivery thread is started when the list becomes non-empty and
 *    joined (its descriptors closed) when it becomes empty. A handler that
 *    started just before its disposition was restored may still forward one
 *    signal to a thread that has gone: tgkill then fails harmlessly (or, if
 *    the tid was reused by a new thread of this process, that thread gets
 *    the signal under its restored disposition, as if it came a moment
 *    later).
 */
#include <weft/io.h>

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

struct sigreg {
	struct sigreg *next;
	weft_chan_t *ch;
	sigset_t set;
	int nsigs; /* members of set (glibc's sigisemptyset overlooks real-time ones) */
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* the delivery thread has been joined (stopping ended) */
	struct sigreg *list;
	int count[NSIG];
	struct sigaction old[NSIG];
	sigset_t mask; /* union of the registrations' sets */
	int sfd, ctl;
	pthread_t thread;
	bool running, quit, stopping;
	_Atomic pid_t tid; /* the delivery thread, for the handler; 0 when none */
} reg = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .sfd = -1, .ctl = -1};

static bool signal_allowed(int s)
{
	if (s < 1 || s >= NSIG)
		return false;
	switch (s) {
	case SIGKILL:
	case SIGSTOP:
	case SIGSEGV:
	case SIGBUS:
	case SIGFPE:
	case SIGILL:
	case SIGTRAP:
	case SIGSYS:
		return false;
	}
	return s < 32 || s >= SIGRTMIN; /* 32..SIGRTMIN-1 are the C library's */
}

static void forward(int s)
{
	int saved = errno;
	pid_t tid = atomic_load_explicit(&reg.tid, memory_order_relaxed);
	if (tid > 0)
		syscall(SYS_tgkill, getpid(), tid, s);
	errno = saved;
}

/* Under reg.mu: send s to every channel that wants it. */
static void deliver(int s)
{
	for (struct sigreg *r = reg.list; r; r = r->next)
		if (sigismember(&r->set, s))
			weft_chan_try_send(r->ch, &s); /* full or closed: dropped */
}

static void *delivery_main(void *a)
{
	(void)a;
	pthread_setname_np(pthread_self(), "weft-signals");
	atomic_store(&reg.tid, (pid_t)syscall(SYS_gettid));
	struct pollfd p[2] = {{.fd = reg.sfd, .events = POLLIN}, {.fd = reg.ctl, .events = POLLIN}};
	for (;;) {
		if (poll(p, 2, -1) < 0)
			continue; /* EINTR cannot happen (all blocked), ENOMEM: retry */
		if (p[1].revents & POLLIN) {
			uint64_t v;
			ssize_t n = read(reg.ctl, &v, sizeof v);
			(void)n;
			pthread_mutex_lock(&reg.mu);
			bool quit = reg.quit;
			pthread_mutex_unlock(&reg.mu);
			if (quit)
				break;
		}
		if (p[0].revents & POLLIN) {
			/* Read under the lock, which also orders the read after
			 * every mask change (signalfd(2) on the same descriptor). */
			struct signalfd_siginfo si[16];
			pthread_mutex_lock(&reg.mu);
			ssize_t n = read(reg.sfd, si, sizeof si);
			for (ssize_t i = 0; i < n / (ssize_t)sizeof si[0]; i++)
				deliver((int)si[i].ssi_signo);
			pthread_mutex_unlock(&reg.mu);
		}
	}
	atomic_store(&reg.tid, 0);
	return NULL;
}

static void poke(void)
{
	uint64_t one = 1;
	ssize_t n = write(reg.ctl, &one, sizeof one);
	(void)n;
}

/* Under reg.mu: start the delivery thread with every signal blocked. */
static int start_delivery(void)
{
	sigset_t none;
	sigemptyset(&none);
	reg.sfd = signalfd(-1, &none, SFD_NONBLOCK | SFD_CLOEXEC);
	if (reg.sfd < 0)
		return -errno;
	reg.ctl = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int e = reg.ctl < 0 ? -errno : 0;
	if (!e) {
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		reg.quit = false;
		e = -pthread_create(&reg.thread, NULL, delivery_main, NULL);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	if (e) {
		close(reg.sfd);
		if (reg.ctl >= 0)
			close(reg.ctl);
		reg.sfd = reg.ctl = -1;
		return e;
	}
	/* The handler forwards to reg.tid: have it before any is installed. */
	while (atomic_load(&reg.tid) == 0)
		sched_yield();
	reg.running = true;
	return 0;
}

/* Under reg.mu, which it drops while joining (the thread may be waiting
 * for it in deliver); `stopping` keeps notify and stop out meanwhile. */
static void stop_delivery(void)
{
	reg.quit = true;
	reg.stopping = true;
	poke();
	pthread_t t = reg.thread;
	pthread_mutex_unlock(&reg.mu);
	pthread_join(t, NULL);
	pthread_mutex_lock(&reg.mu);
	close(reg.sfd);
	close(reg.ctl);
	reg.sfd = reg.ctl = -1;
	reg.running = false;
	reg.stopping = false;
	pthread_cond_broadcast(&reg.cv);
}

static void lock_registry(void)
{
	pthread_mutex_lock(&reg.mu);
	while (reg.stopping)
		pthread_cond_wait(&reg.cv, &reg.mu);
}

/* Under reg.mu: the first registration of s. */
static int want(int s)
{
	sigaddset(&reg.mask, s);
	if (signalfd(reg.sfd, &reg.mask, 0) < 0) {
		int e = -errno;
		sigdelset(&reg.mask, s);
		return e;
	}
	struct sigaction sa = {.sa_handler = forward, .sa_flags = SA_RESTART | SA_ONSTACK};
	sigfillset(&sa.sa_mask);
	if (sigaction(s, &sa, &reg.old[s]) < 0) {
		int e = -errno;
		sigdelset(&reg.mask, s);
		signalfd(reg.sfd, &reg.mask, 0);
		return e;
	}
	return 0;
}

/* Under reg.mu: the last registration of s is gone. */
static void unwant(int s)
{
	sigaction(s, &reg.old[s], NULL);
	sigdelset(&reg.mask, s);
	signalfd(reg.sfd, &reg.mask, 0);
}

int weft_signal_notify(weft_chan_t *ch, const int *signals, int n)
{
	if (!ch || !signals || n <= 0 || weft_chan_elem_size(ch) != sizeof(int))
		return -EINVAL;
	for (int i = 0; i < n; i++)
		if (!signal_allowed(signals[i]))
			return -EINVAL;
	if (weft_runtime_is_sim(weft_runtime_current()))
		return -ENOTSUP; /* signals come on their own time (io/sim.c) */
	int e = 0;
	lock_registry();
	struct sigreg *r = reg.list;
	while (r && r->ch != ch)
		r = r->next;
	bool fresh = !r;
	if (fresh) {
		r = calloc(1, sizeof *r);
		if (!r) {
			pthread_mutex_unlock(&reg.mu);
			return -ENOMEM;
		}
		r->ch = ch;
		sigemptyset(&r->set);
	}
	if (!reg.running)
		e = start_delivery();
	for (int i = 0; i < n && !e; i++) {
		int s = signals[i];
		if (sigismember(&r->set, s))
			continue;
		if (reg.count[s] == 0)
			e = want(s);
		if (!e) {
			reg.count[s]++;
			sigaddset(&r->set, s);
			r->nsigs++;
		}
	}
	/* On an error the signals added so far stay registered: the caller may
	 * stop the channel to undo them. */
	if (fresh && r->nsigs > 0) {
		weft_chan_retain(ch);
		r->next = reg.list;
		reg.list = r;
	} else if (fresh) {
		free(r);
	}
	if (reg.running) {
		poke(); /* the mask changed: poll again */
		if (!reg.list)
			stop_delivery();
	}
	pthread_mutex_unlock(&reg.mu);
	return e;
}

int weft_signal_stop(weft_chan_t *ch)
{
	if (!ch)
		return -EINVAL;
	lock_registry();
	struct sigreg **pp = &reg.list;
	while (*pp && (*pp)->ch != ch)
		pp = &(*pp)->next;
	struct sigreg *r = *pp;
	if (!r) {
		pthread_mutex_unlock(&reg.mu);
		return -ENOENT;
	}
	*pp = r->next;
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&r->set, s) && --reg.count[s] == 0)
			unwant(s);
	if (!reg.list)
		stop_delivery();
	pthread_mutex_unlock(&reg.mu);
	weft_chan_release(ch);
	free(r);
	return 0;
}
