/* sup.c - supervisors (OTP's, for weft processes).
 *
 * A supervisor is a process (a coroutine) that traps exits, starts its
 * children linked to itself, and then only receives: an EXIT from a child
 * is a child's end, handled by the child's restart type and the strategy;
 * an EXIT with a reason other than NORMAL from anyone else (its parent's
 * end, a SHUTDOWN signal) stops it. Everything it knows is its own (the
 * struct sup, owned by the process), so there is no locking beyond the
 * restart counter that weft_sup_restarts reads.
 *
 * Stopping a child (OTP's shutdown protocol): unlink, monitor, send the
 * SHUTDOWN exit signal (KILL when the child's shutdown time is 0), wait
 * for the DOWN up to the shutdown time, then KILL and wait for the DOWN.
 * An EXIT the child sent before the unlink may be in the mailbox already:
 * it is dropped, so it is never taken for a fresh failure.
 *
 * Restart intensity: the times of the restarts within the last `period`;
 * one more than `intensity` stops every child and ends the supervisor with
 * SHUTDOWN, which its own supervisor sees as a child's failure. Time is
 * weft_now(), so under the simulation it is virtual and a crash loop's
 * count is exact.
 */
#include <stdlib.h>
#include <string.h>

#include "../base/sized.h"
#include "internal.h"

struct sup_child {
	weft_child_spec_t spec;
	weft_proc_opts_t opts;
	char id[WEFT_NAME_MAX + 1];
	char name[WEFT_NAME_MAX + 1];
	weft_pid_t pid; /* 0: not running */
};

struct sup {
	weft_sup_spec_t spec;
	struct sup_child *ch;
	size_t n;
	weft_time_t *times; /* restart times, oldest first, at most `intensity` */
	int ntimes;
	_Atomic int64_t *restarts; /* in the process's cold part, which outlives it */
};

static void sup_free(struct sup *s)
{
	free(s->ch);
	free(s->times);
	free(s);
}

static int start_child(struct sup_child *c)
{
	c->opts.link = true;
	c->opts.runtime = NULL; /* the supervisor's */
	c->opts.monitor = false;
	c->opts.monitor_ref = NULL;
	if (c->spec.sup)
		return weft_sup_start(&c->pid, c->spec.sup, &c->opts);
	return c->spec.fn ? weft_proc_spawn(&c->pid, c->spec.fn, c->spec.arg, &c->opts)
			  : weft_proc_spawn_step(&c->pid, c->spec.step, c->spec.arg, &c->opts);
}

static bool exit_from(const weft_msg_t *m, void *ctx)
{
	return m->kind == WEFT_MSG_EXIT && m->from == *(weft_pid_t *)ctx;
}

/* Stop child c (see "Stopping a child"). -ECANCELED if the supervisor
 * itself is being ended meanwhile. */
static int stop_child(struct sup_child *c)
{
	weft_pid_t pid = c->pid;
	if (!pid)
		return 0;
	c->pid = 0;
	(void)weft_unlink(pid);
	weft_ref_t ref;
	int e = weft_monitor(pid, &ref);
	if (e)
		return e;
	weft_time_t t = c->spec.shutdown;
	(void)weft_proc_signal(pid, t == 0 ? WEFT_EXIT_KILL : WEFT_EXIT_SHUTDOWN);
	weft_msg_t *m = NULL;
	e = weft_receive_ref(&m, ref, t == 0 || t == WEFT_NEVER ? WEFT_NEVER : weft_deadline_in(t));
	if (e == -ETIMEDOUT) {
		(void)weft_proc_signal(pid, WEFT_EXIT_KILL);
		e = weft_receive_ref(&m, ref, WEFT_NEVER);
	}
	weft_msg_destroy(m);
	/* An EXIT it sent before the unlink. */
	weft_match_t mt = {exit_from, &pid, 0};
	while (weft_receive_until(&m, &mt, 0) == 0)
		weft_msg_destroy(m);
	return e;
}

/* Stop children [from, n) in reverse order. */
static int stop_from(struct sup *s, size_t from)
{
	for (size_t i = s->n; i-- > from;) {
		int e = stop_child(&s->ch[i]);
		if (e == -ECANCELED)
			return e;
	}
	return 0;
}

/* Start children [from, n) in order: 0, or the first error (those
 * started are stopped again). */
static int start_from(struct sup *s, size_t from)
{
	for (size_t i = from; i < s->n; i++) {
		int e = start_child(&s->ch[i]);
		if (e) {
			s->ch[i].pid = 0;
			(void)stop_from(s, from);
			return e;
		}
	}
	return 0;
}

/* Count a restart: false if it is one too many. */
static bool may_restart(struct sup *s)
{
	if (s->spec.intensity < 0)
		return false;
	weft_time_t now = weft_now();
	int k = 0;
	for (int i = 0; i < s->ntimes; i++) /* keep those within the period */
		if (now - s->times[i] < s->spec.period)
			s->times[k++] = s->times[i];
	s->ntimes = k;
	if (s->ntimes >= s->spec.intensity)
		return false;
	s->times[s->ntimes++] = now;
	atomic_fetch_add(s->restarts, 1);
	return true;
}

/* End the supervisor: its children first. */
static void *sup_end(struct sup *s, int64_t reason)
{
	(void)stop_from(s, 0);
	sup_free(s);
	weft_proc_exit(reason, NULL, 0);
	return NULL;
}

static void *sup_main(void *arg)
{
	struct sup *s = arg;
	struct wa_proc *me = wa_self();
	assert(me->cold && me->cold->is_sup); /* made at the spawn (wa_spawn_sup) */
	s->restarts = &me->cold->sup_restarts;
	int e = start_from(s, 0);
	if (e)
		return sup_end(s, e);
	for (;;) {
		weft_msg_t *m;
		e = weft_receive(&m, NULL);
		if (e) /* killed: the links take the children */
			return sup_end(s, WEFT_EXIT_KILLED);
		if (m->kind != WEFT_MSG_EXIT) {
			weft_msg_destroy(m);
			continue;
		}
		weft_pid_t from = m->from;
		int64_t reason = m->reason;
		weft_msg_destroy(m);
		size_t i = 0;
		while (i < s->n && s->ch[i].pid != from)
			i++;
		if (i == s->n) { /* not a child's */
			if (reason == WEFT_EXIT_NORMAL)
				continue;
			return sup_end(s, reason);
		}
		struct sup_child *c = &s->ch[i];
		c->pid = 0;
		weft_restart_t rt = c->spec.restart;
		bool again =
			rt == WEFT_RESTART_PERMANENT ||
			(rt == WEFT_RESTART_TRANSIENT && reason != WEFT_EXIT_NORMAL && reason != WEFT_EXIT_SHUTDOWN);
		if (!again)
			continue;
		if (!may_restart(s))
			return sup_end(s, WEFT_EXIT_SHUTDOWN);
		size_t from_i = s->spec.strategy == WEFT_SUP_ONE_FOR_ALL ? 0 : i;
		if (s->spec.strategy != WEFT_SUP_ONE_FOR_ONE && stop_from(s, from_i) == -ECANCELED)
			return sup_end(s, WEFT_EXIT_KILLED);
		if (s->spec.strategy == WEFT_SUP_ONE_FOR_ONE)
			e = start_child(c);
		else
			e = start_from(s, from_i);
		if (e)
			return sup_end(s, e);
	}
}

int weft_sup_start(weft_pid_t *out, const weft_sup_spec_t *spec, const weft_proc_opts_t *opts)
{
	weft_sup_spec_t sp;
	int e = weft__opts_in(&sp, sizeof sp, spec, spec ? spec->size : 0);
	if (!spec)
		return -EINVAL;
	if (e)
		return e;
	if ((sp.nchildren && !sp.children) || sp.strategy > WEFT_SUP_REST_FOR_ONE || sp.period < 0 ||
	    sp.intensity > WEFT_SUP_INTENSITY_MAX)
		return -EINVAL;
	for (size_t i = 0; i < sp.nchildren; i++) {
		const weft_child_spec_t *c = &sp.children[i];
		if ((c->fn != NULL) + (c->step != NULL) + (c->sup != NULL) != 1 ||
		    c->restart > WEFT_RESTART_TEMPORARY || c->shutdown < 0 ||
		    (c->id && strnlen(c->id, WEFT_NAME_MAX + 1) > WEFT_NAME_MAX) ||
		    (c->opts && c->opts->name && !wa_name_ok(c->opts->name)))
			return -EINVAL;
	}
	if (sp.intensity == 0 && sp.period == 0) {
		sp.intensity = 1;
		sp.period = 5 * WEFT_SEC;
	}
	struct sup *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->spec = sp;
	s->n = sp.nchildren;
	s->ch = calloc(s->n ? s->n : 1, sizeof *s->ch);
	s->times = calloc(sp.intensity > 0 ? (size_t)sp.intensity : 1, sizeof *s->times);
	if (!s->ch || !s->times) {
		free(s->ch);
		free(s->times);
		free(s);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->n; i++) {
		struct sup_child *c = &s->ch[i];
		c->spec = sp.children[i];
		if (c->spec.id)
			strcpy(c->id, c->spec.id);
		c->spec.id = c->id;
		if (c->spec.opts) {
			e = weft__opts_in(&c->opts, sizeof c->opts, c->spec.opts, c->spec.opts->size);
			if (e) {
				free(s->ch);
				free(s->times);
				free(s);
				return e;
			}
			if (c->opts.name) {
				strcpy(c->name, c->opts.name);
				c->opts.name = c->name;
			}
		}
		c->opts.size = sizeof c->opts;
		c->spec.opts = NULL;
	}
	s->spec.children = NULL;
	weft_proc_opts_t o;
	e = weft__opts_in(&o, sizeof o, opts, opts ? opts->size : 0);
	if (!e) {
		o.size = sizeof o;
		o.trap_exits = true;
		e = wa_spawn_sup(out, sup_main, s, &o);
	}
	if (e) {
		free(s->ch);
		free(s->times);
		free(s);
	}
	return e;
}

int64_t weft_sup_restarts(weft_pid_t sup)
{
	int e;
	struct wa_proc *p = wa_get(sup, &e);
	if (!p)
		return e;
	weft__spin_lock(&p->lock);
	int64_t n = p->cold && p->cold->is_sup ? atomic_load(&p->cold->sup_restarts) : -EINVAL;
	weft__spin_unlock(&p->lock);
	wa_put(p);
	return n;
}
