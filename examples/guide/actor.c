/* actor.c - processes: a server that answers calls, a monitor that sees it
 * crash, a supervisor that restarts it, and an MVar that workers share. */
#include "check.h"

#include <string.h>

/* A request to the counter: a reference for the reply, and what to add. */
struct req {
	weft_ref_t ref;
	long add;
};

static void *counter(void *arg)
{
	(void)arg;
	long total = 0;
	for (;;) {
		weft_msg_t *m;
		if (weft_receive(&m, NULL) != 0)
			return NULL; /* -ECANCELED: told to end */
		struct req r;
		memcpy(&r, m->data, sizeof r);
		weft_pid_t from = m->from;
		weft_msg_destroy(m);
		if (r.add < 0)
			weft_proc_exit(WEFT_EXIT_ERROR, "negative", 8); /* a crash, with a detail */
		total += r.add;
		CHECK(weft_send_ref(from, r.ref, &total, sizeof total));
	}
}

/* A call: a fresh reference, the request, and a receive for the reply
 * alone (the messages already in the mailbox are not even looked at). */
static long call(weft_pid_t server, long add)
{
	struct req r = {weft_make_ref(), add};
	CHECK(weft_send(server, &r, sizeof r));
	weft_msg_t *m;
	CHECK(weft_receive_ref(&m, r.ref, weft_deadline_in(WEFT_SEC)));
	long total;
	memcpy(&total, m->data, sizeof total);
	weft_msg_destroy(m);
	return total;
}

static void *adder(void *arg)
{
	weft_mvar_t *hits = arg;
	for (int i = 0; i < 1000; i++) {
		CHECK(weft_mvar_lock(hits));
		void *v;
		size_t len;
		CHECK(weft_mvar_get(hits, &v, &len));
		(*(long *)v)++; /* the holder changes the value in place */
		CHECK(weft_mvar_unlock(hits));
	}
	return NULL;
}

static void *main_proc(void *arg)
{
	(void)arg;
	/* A server, monitored: its crash comes as one DOWN message. */
	weft_pid_t srv;
	weft_ref_t mon;
	CHECK(weft_proc_spawn(&srv, counter, NULL, &(weft_proc_opts_t){.monitor = true, .monitor_ref = &mon}));
	for (long i = 1; i <= 3; i++)
		printf("add %ld: total %ld\n", i, call(srv, i));
	struct req bad = {0, -1};
	CHECK(weft_send(srv, &bad, sizeof bad));
	weft_msg_t *down;
	CHECK(weft_receive_ref(&down, mon, weft_deadline_in(WEFT_SEC)));
	printf("down: reason %lld, detail \"%.*s\"\n", (long long)down->reason, (int)down->len, (char *)down->data);
	weft_msg_destroy(down);

	/* The same server under a supervisor, found by its name. */
	weft_child_spec_t child = {.id = "counter",
				   .fn = counter,
				   .restart = WEFT_RESTART_PERMANENT,
				   .shutdown = WEFT_SEC,
				   .opts = &(weft_proc_opts_t){.name = "counter"}};
	weft_sup_spec_t spec = {.strategy = WEFT_SUP_ONE_FOR_ONE, .children = &child, .nchildren = 1};
	weft_pid_t sup;
	CHECK(weft_sup_start(&sup, &spec, NULL));
	while (!weft_whereis("counter")) /* the supervisor starts it */
		CHECK(weft_sleep(WEFT_MSEC));
	weft_pid_t first = weft_whereis("counter");
	printf("supervised: total %ld\n", call(first, 10));
	CHECK(weft_send(first, &bad, sizeof bad)); /* crash it */
	while (weft_whereis("counter") == first || !weft_whereis("counter"))
		CHECK(weft_sleep(WEFT_MSEC));
	printf("restarted %lld time(s): total %ld\n", (long long)weft_sup_restarts(sup),
	       call(weft_whereis("counter"), 5));
	weft_ref_t sref;
	CHECK(weft_monitor(sup, &sref));
	CHECK(weft_proc_signal(sup, WEFT_EXIT_SHUTDOWN)); /* stops its children, then itself */
	CHECK(weft_receive_ref(&down, sref, weft_deadline_in(WEFT_SEC)));
	weft_msg_destroy(down);

	/* Shared state: four processes add to one MVar. */
	weft_mvar_t *hits;
	long zero = 0;
	CHECK(weft_mvar_create(&hits, "hits", &zero, sizeof zero));
	weft_pid_t w[4];
	for (int i = 0; i < 4; i++)
		CHECK(weft_proc_spawn(&w[i], adder, hits, NULL));
	for (int i = 0; i < 4; i++)
		CHECK(weft_proc_wait(w[i], WEFT_NEVER));
	long n;
	CHECK(weft_mvar_read(hits, &n, sizeof n));
	printf("hits: %ld\n", n);
	CHECK(weft_mvar_destroy(hits));
	return NULL;
}

static void *main_task(void *arg)
{
	(void)arg;
	weft_pid_t p;
	CHECK(weft_proc_spawn(&p, main_proc, NULL, NULL));
	CHECK(weft_proc_wait(p, WEFT_NEVER));
	return NULL;
}

int main(void)
{
	return (int)CHECK(weft_main(main_task, NULL, NULL));
}
