/* registry.c - names to pids, per runtime.
 *
 * A chained hash table under the context's reg_lock; the name is also kept
 * in the process's cold part, so that its death (wa_reg_drop) and
 * weft_proc_info find it. Lock order: reg_lock, then the process lock. An
 * entry exists exactly while its process is ALIVE with that name: it is
 * added under both locks after checking ALIVE, and the death removes it
 * (the process is ENDED by then, so no new name can be added to it).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

bool wa_name_ok(const char *name)
{
	return name && name[0] && strnlen(name, WEFT_NAME_MAX + 1) <= WEFT_NAME_MAX;
}

static size_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)h;
}

/* Under reg_lock: the link that points at name's entry (or at NULL). */
static struct wa_name **find(struct wa_ctx *c, const char *name)
{
	if (!c->nbuckets)
		return NULL;
	struct wa_name **l = &c->names[hash(name) & (c->nbuckets - 1)];
	while (*l && strcmp((*l)->name, name) != 0)
		l = &(*l)->next;
	return l;
}

static int grow(struct wa_ctx *c)
{
	if (c->nnames < c->nbuckets)
		return 0;
	size_t nb = c->nbuckets ? c->nbuckets * 2 : 64;
	struct wa_name **b = calloc(nb, sizeof *b);
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < c->nbuckets; i++)
		for (struct wa_name *e = c->names[i], *next; e; e = next) {
			next = e->next;
			size_t h = hash(e->name) & (nb - 1);
			e->next = b[h];
			b[h] = e;
		}
	free(c->names);
	c->names = b;
	c->nbuckets = nb;
	return 0;
}

int wa_reg_add(struct wa_ctx *c, const char *name, struct wa_proc *p)
{
	pthread_mutex_lock(&c->reg_lock);
	struct wa_name **l = find(c, name);
	int e = 0;
	if (l && *l) {
		e = -EEXIST;
		goto out;
	}
	if ((e = grow(c)) != 0)
		goto out;
	struct wa_name *n = malloc(sizeof *n);
	if (!n) {
		e = -ENOMEM;
		goto out;
	}
	weft__spin_lock(&p->lock);
	struct wa_cold *cd = p->state == WA_ALIVE ? wa_cold(p) : NULL;
	e = p->state != WA_ALIVE ? -ESRCH : !cd ? -ENOMEM : cd->name[0] ? -EBUSY : 0;
	if (!e) {
		strcpy(cd->name, name);
		n->pid = atomic_load(&p->pid);
	}
	weft__spin_unlock(&p->lock);
	if (e) {
		free(n);
		goto out;
	}
	strcpy(n->name, name);
	l = find(c, name);
	n->next = NULL;
	*l = n;
	c->nnames++;
out:
	pthread_mutex_unlock(&c->reg_lock);
	return e;
}

void wa_reg_drop(struct wa_ctx *c, struct wa_proc *p)
{
	pthread_mutex_lock(&c->reg_lock);
	weft__spin_lock(&p->lock);
	char name[WEFT_NAME_MAX + 1] = "";
	if (p->cold && p->cold->name[0]) {
		strcpy(name, p->cold->name);
		p->cold->name[0] = 0;
	}
	weft__spin_unlock(&p->lock);
	struct wa_name **l = name[0] ? find(c, name) : NULL;
	if (l && *l) {
		struct wa_name *n = *l;
		*l = n->next;
		free(n);
		c->nnames--;
	}
	pthread_mutex_unlock(&c->reg_lock);
}

void wa_reg_free(struct wa_ctx *c)
{
	for (size_t i = 0; i < c->nbuckets; i++)
		for (struct wa_name *e = c->names[i], *next; e; e = next) {
			next = e->next;
			free(e);
		}
	free(c->names);
	c->names = NULL;
	c->nnames = c->nbuckets = 0;
}

int weft_register(const char *name, weft_pid_t pid)
{
	if (!wa_name_ok(name))
		return -EINVAL;
	int e;
	struct wa_proc *p = wa_get(pid, &e);
	if (!p)
		return e;
	struct wa_ctx *c = wa_ctx_hold(NULL, false, &e);
	if (c != p->ctx) /* names are per runtime: the caller's */
		e = c ? -EINVAL : e == -ESRCH ? -EINVAL : e;
	else
		e = wa_reg_add(c, name, p);
	if (c)
		wa_ctx_drop(c);
	wa_put(p);
	return e;
}

int weft_unregister(const char *name)
{
	if (!wa_name_ok(name))
		return -EINVAL;
	int e;
	struct wa_ctx *c = wa_ctx_hold(NULL, false, &e);
	if (!c)
		return e == -EPERM ? e : -ESRCH; /* no runtime, or no process ever: not registered */
	pthread_mutex_lock(&c->reg_lock);
	struct wa_name **l = find(c, name);
	weft_pid_t pid = 0;
	if (l && *l) {
		struct wa_name *n = *l;
		pid = n->pid;
		*l = n->next;
		free(n);
		c->nnames--;
	}
	struct wa_proc *p = pid ? wa_get(pid, &e) : NULL;
	if (p) {
		weft__spin_lock(&p->lock);
		if (p->cold && strcmp(p->cold->name, name) == 0)
			p->cold->name[0] = 0;
		weft__spin_unlock(&p->lock);
	}
	pthread_mutex_unlock(&c->reg_lock);
	if (p)
		wa_put(p);
	wa_ctx_drop(c);
	return pid ? 0 : -ESRCH;
}

weft_pid_t weft_whereis(const char *name)
{
	if (!wa_name_ok(name))
		return 0;
	int e;
	struct wa_ctx *c = wa_ctx_hold(NULL, false, &e);
	if (!c)
		return 0;
	pthread_mutex_lock(&c->reg_lock);
	struct wa_name **l = find(c, name);
	weft_pid_t pid = l && *l ? (*l)->pid : 0;
	pthread_mutex_unlock(&c->reg_lock);
	wa_ctx_drop(c);
	return pid;
}
