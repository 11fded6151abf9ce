/* link.c - links, monitors and exit signals (Erlang's semantics).
 *
 * A link is a pair of entries, one in each process's link list; a monitor
 * is a pair too, {ref, watcher} in the target's `mons` and {ref, target} in
 * the watcher's `watches`. Both entries of a pair are added under both
 * process locks (wa_lock2) and only while both are ALIVE, so a link or
 * monitor never reaches a process that has started dying: that case gets
 * NOPROC instead.
 *
 * A dying process (wa_notify_end, state ENDED so its lists are final) takes
 * its lists and tells each other end, one process lock at a time:
 *  - a link partner gets an exit signal through the link (wa_signal with
 *    via_link): delivered only if the partner's entry for the link is still
 *    there, and it is removed in the same critical section, so after
 *    weft_unlink returns no signal comes through that link;
 *  - a watcher gets its DOWN message only if its watch entry is still
 *    there, removed and the message pushed in the same critical section of
 *    the watcher's lock, so after weft_demonitor returns (and, with flush,
 *    has emptied the mailbox of it) no DOWN for the ref can arrive;
 *  - the targets it watched lose their entries for it.
 * Exit and down messages are pushed after everything the dying process
 * sent (its task has ended), which keeps the order between two processes.
 *
 * An exit signal to a process that does not trap exits and must end sets
 * `signalled` and the reason (the first one wins) and cancels its task:
 * its blocking calls return -ECANCELED, and when it ends the reason is the
 * signal's.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int grow(void **arr, uint32_t *cap, uint32_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	uint32_t nc = *cap ? *cap * 2 : 4;
	void *a = realloc(*arr, nc * elem);
	if (!a)
		return -ENOMEM;
	*arr = a;
	*cap = nc;
	return 0;
}

static bool list_drop_pid(weft_pid_t *a, uint32_t *n, weft_pid_t pid)
{
	for (uint32_t i = 0; i < *n; i++)
		if (a[i] == pid) {
			a[i] = a[--*n];
			return true;
		}
	return false;
}

static bool list_drop_ref(struct wa_mon *a, uint32_t *n, weft_ref_t ref, weft_pid_t *pid)
{
	for (uint32_t i = 0; i < *n; i++)
		if (a[i].ref == ref) {
			if (pid)
				*pid = a[i].pid;
			a[i] = a[--*n];
			return true;
		}
	return false;
}

/* p's half of a link to other: 1 added, 0 there already, -ENOMEM. */
static int add_link(struct wa_proc *p, weft_pid_t other)
{
	struct wa_cold *c = wa_cold(p);
	if (!c)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->nlinks; i++)
		if (c->links[i] == other)
			return 0;
	if (grow((void **)&c->links, &c->caplinks, c->nlinks, sizeof *c->links))
		return -ENOMEM;
	c->links[c->nlinks++] = other;
	return 1;
}

int wa_link_locked(struct wa_proc *a, struct wa_proc *b)
{
	weft_pid_t pa = atomic_load(&a->pid), pb = atomic_load(&b->pid);
	int e = add_link(a, pb);
	if (e < 0)
		return e;
	if (add_link(b, pa) < 0) {
		if (e > 0) /* undo only what this call added */
			list_drop_pid(a->cold->links, &a->cold->nlinks, pb);
		return -ENOMEM;
	}
	return 0;
}

void wa_unlink_locked(struct wa_proc *p, struct wa_proc *other)
{
	weft_pid_t po = atomic_load(&other->pid), pp = atomic_load(&p->pid);
	if (p->cold)
		list_drop_pid(p->cold->links, &p->cold->nlinks, po);
	if (other->cold)
		list_drop_pid(other->cold->links, &other->cold->nlinks, pp);
}

static int add_mon(struct wa_mon **arr, uint32_t *n, uint32_t *cap, weft_ref_t ref, weft_pid_t pid)
{
	if (grow((void **)arr, cap, *n, sizeof **arr))
		return -ENOMEM;
	(*arr)[(*n)++] = (struct wa_mon){ref, pid};
	return 0;
}

int wa_monitor_locked(struct wa_proc *w, struct wa_proc *t, weft_ref_t ref)
{
	struct wa_cold *wc = wa_cold(w), *tc = wa_cold(t);
	if (!wc || !tc || add_mon(&wc->watches, &wc->nwatches, &wc->capwatches, ref, atomic_load(&t->pid)))
		return -ENOMEM;
	if (add_mon(&tc->mons, &tc->nmons, &tc->capmons, ref, atomic_load(&w->pid))) {
		list_drop_ref(wc->watches, &wc->nwatches, ref, NULL);
		return -ENOMEM;
	}
	return 0;
}

bool wa_unwatch_locked(struct wa_proc *w, weft_ref_t ref, weft_pid_t *target)
{
	return w->cold && list_drop_ref(w->cold->watches, &w->cold->nwatches, ref, target);
}

static weft_msg_t *signal_msg(uint32_t kind, weft_pid_t from, weft_ref_t ref, int64_t reason, const void *detail,
			      size_t len)
{
	weft_msg_t *m = wa_msg_new(len);
	if (!m)
		return NULL;
	if (len)
		memcpy(m->data, detail, len);
	m->kind = kind;
	m->from = from;
	m->ref = ref;
	m->reason = reason;
	return m;
}

void wa_signal(struct wa_proc *p, weft_pid_t from, int64_t reason, const void *detail, size_t len, bool via_link,
	       bool kill)
{
	enum { NONE, END, MSG } act = NONE;
	weft_task_t task = 0;
	weft__spin_lock(&p->lock);
	weft_pid_t self = atomic_load(&p->pid);
	if (p->state != WA_ALIVE || (via_link && !(p->cold && list_drop_pid(p->cold->links, &p->cold->nlinks, from)))) {
		weft__spin_unlock(&p->lock);
		return;
	}
	if (kill) {
		act = END;
		reason = WEFT_EXIT_KILLED;
		len = 0;
	} else if (atomic_load(&p->trap)) {
		act = MSG;
	} else if (reason != WEFT_EXIT_NORMAL || from == self) {
		act = END;
	}
	if (act == MSG) {
		/* Pushed under the lock: see "unlink" above. A message that
		 * cannot be allocated is lost (the process is told nothing). */
		weft_msg_t *m = signal_msg(WEFT_MSG_EXIT, from, 0, reason, detail, len);
		if (m)
			wa_push(p, m);
	} else if (act == END && !p->signalled) {
		p->signalled = true;
		p->reason = reason;
		(void)wa_set_detail(p, detail, len);
		task = atomic_load(&p->task);
	}
	weft__spin_unlock(&p->lock);
	if (task)
		(void)weft_cancel(task);
}

int weft_proc_signal_detail(weft_pid_t pid, int64_t reason, const void *detail, size_t len)
{
	if (len && !detail)
		return -EINVAL;
	if (len > ((size_t)64 << 10))
		return -EMSGSIZE;
	int e;
	struct wa_proc *p = wa_get(pid, &e);
	if (!p)
		return e == -ESRCH ? 0 : e;
	wa_signal(p, weft_proc_self(), reason, detail, len, false, reason == WEFT_EXIT_KILL);
	wa_put(p);
	return 0;
}

int weft_proc_signal(weft_pid_t pid, int64_t reason)
{
	return weft_proc_signal_detail(pid, reason, NULL, 0);
}

/* The caller and the process pid names, for a link or a monitor. */
static int pair(weft_pid_t pid, struct wa_proc **me, struct wa_proc **q)
{
	*me = wa_self();
	if (!*me)
		return -EPERM;
	if (pid == 0 || pid == atomic_load(&(*me)->pid))
		return -EINVAL;
	int e;
	*q = wa_get(pid, &e);
	if (!*q)
		return e;
	if ((*q)->ctx != (*me)->ctx) {
		wa_put(*q);
		return -EPERM;
	}
	return 0;
}

int weft_link(weft_pid_t pid)
{
	struct wa_proc *me, *q;
	int e = pair(pid, &me, &q);
	if (e == -ESRCH) {
		wa_signal(me, pid, WEFT_EXIT_NOPROC, NULL, 0, false, false);
		return -ESRCH;
	}
	if (e)
		return e;
	wa_lock2(me, q);
	bool dead = q->state != WA_ALIVE;
	if (!dead)
		e = wa_link_locked(me, q);
	wa_unlock2(me, q);
	wa_put(q);
	if (dead) {
		wa_signal(me, pid, WEFT_EXIT_NOPROC, NULL, 0, false, false);
		return -ESRCH;
	}
	return e;
}

int weft_unlink(weft_pid_t pid)
{
	struct wa_proc *me, *q;
	int e = pair(pid, &me, &q);
	if (e == -ESRCH) { /* gone: only our side is left, if any */
		weft__spin_lock(&me->lock);
		if (me->cold)
			list_drop_pid(me->cold->links, &me->cold->nlinks, pid);
		weft__spin_unlock(&me->lock);
		return 0;
	}
	if (e)
		return e;
	wa_lock2(me, q);
	wa_unlink_locked(me, q);
	wa_unlock2(me, q);
	wa_put(q);
	return 0;
}

static void down_now(struct wa_proc *me, weft_ref_t ref, weft_pid_t pid)
{
	weft_msg_t *m = signal_msg(WEFT_MSG_DOWN, pid, ref, WEFT_EXIT_NOPROC, NULL, 0);
	if (m)
		wa_push(me, m);
}

int weft_monitor(weft_pid_t pid, weft_ref_t *ref)
{
	if (!ref)
		return -EINVAL;
	struct wa_proc *me, *q;
	int e = pair(pid, &me, &q);
	if (e && e != -ESRCH)
		return e;
	weft_ref_t r = wa_new_ref(me->ctx);
	wa_mark(me, r);
	if (e == -ESRCH) {
		down_now(me, r, pid);
		*ref = r;
		return 0;
	}
	wa_lock2(me, q);
	bool dead = q->state != WA_ALIVE;
	if (!dead)
		e = wa_monitor_locked(me, q, r);
	wa_unlock2(me, q);
	wa_put(q);
	if (e)
		return e;
	if (dead)
		down_now(me, r, pid);
	*ref = r;
	return 0;
}

int weft_demonitor(weft_ref_t ref, bool flush)
{
	struct wa_proc *me = wa_self();
	if (!me)
		return -EPERM;
	if (flush && me->receiving)
		return -EBUSY; /* from a match function: the walk owns the mailbox */
	weft_pid_t target = 0;
	weft__spin_lock(&me->lock);
	bool found = wa_unwatch_locked(me, ref, &target);
	weft__spin_unlock(&me->lock);
	if (found) {
		int e;
		struct wa_proc *q = wa_get(target, &e);
		if (q) {
			weft__spin_lock(&q->lock);
			if (q->cold)
				list_drop_ref(q->cold->mons, &q->cold->nmons, ref, NULL);
			weft__spin_unlock(&q->lock);
			wa_put(q);
		}
	}
	if (flush)
		(void)wa_flush_ref(me, ref, WEFT_MSG_DOWN);
	return found ? 0 : -ENOENT;
}

void wa_notify_end(struct wa_proc *p, int64_t reason, const void *detail, size_t len)
{
	weft_pid_t self = atomic_load(&p->pid);
	weft__spin_lock(&p->lock);
	assert(p->state == WA_ENDED);
	struct wa_cold *cd = p->cold;
	weft_pid_t *links = NULL;
	struct wa_mon *mons = NULL, *watches = NULL;
	uint32_t nlinks = 0, nmons = 0, nwatches = 0;
	if (cd) { /* final: nothing is added to an ENDED process */
		links = cd->links;
		nlinks = cd->nlinks;
		mons = cd->mons;
		nmons = cd->nmons;
		watches = cd->watches;
		nwatches = cd->nwatches;
		cd->links = NULL;
		cd->mons = cd->watches = NULL;
		cd->nlinks = cd->caplinks = cd->nmons = cd->capmons = cd->nwatches = cd->capwatches = 0;
	}
	weft__spin_unlock(&p->lock);
	int e;
	/* Every link partner gets the signal, NORMAL included: one that traps
	 * exits sees it as a message, the others ignore it (but the link goes). */
	for (uint32_t i = 0; i < nlinks; i++) {
		struct wa_proc *q = wa_get(links[i], &e);
		if (!q)
			continue;
		wa_signal(q, self, reason, detail, len, true, false);
		wa_put(q);
	}
	for (uint32_t i = 0; i < nmons; i++) {
		struct wa_proc *q = wa_get(mons[i].pid, &e);
		if (!q)
			continue;
		weft__spin_lock(&q->lock);
		if (q->cold && list_drop_ref(q->cold->watches, &q->cold->nwatches, mons[i].ref, NULL)) {
			weft_msg_t *m = signal_msg(WEFT_MSG_DOWN, self, mons[i].ref, reason, detail, len);
			if (m)
				wa_push(q, m);
		}
		weft__spin_unlock(&q->lock);
		wa_put(q);
	}
	for (uint32_t i = 0; i < nwatches; i++) {
		struct wa_proc *q = wa_get(watches[i].pid, &e);
		if (!q)
			continue;
		weft__spin_lock(&q->lock);
		if (q->cold)
			list_drop_ref(q->cold->mons, &q->cold->nmons, watches[i].ref, NULL);
		weft__spin_unlock(&q->lock);
		wa_put(q);
	}
	free(links);
	free(mons);
	free(watches);
	/* Every count, name and signal is done: from here a wait for p
	 * returns at once, and those queued meanwhile are woken now. A waiter
	 * may have added the cold part since it was taken above. */
	weft__spin_lock(&p->lock);
	p->told = true;
	cd = p->cold;
	weft__spin_unlock(&p->lock);
	if (cd) {
		weft_waitq_wake_all(&cd->waiters, 0);
		weft_waitq_wake_all(&cd->sendq, 0); /* they see ENDED and drop their messages */
	}
}
