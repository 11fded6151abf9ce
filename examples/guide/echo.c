/* echo.c - sockets: a TCP echo server on 127.0.0.1 (a free port), run by
 * the server helper with one task per connection, and clients that talk
 * to it with deadlines. */
#include "check.h"

#include <string.h>

enum { CLIENTS = 3 };

/* One connection, in its own task. The server closes fd when it returns. */
static void echo_conn(int fd, void *ctx)
{
	(void)ctx;
	char buf[512];
	for (;;) {
		ssize_t n = weft_read(fd, buf, sizeof buf, weft_deadline_in(5 * WEFT_SEC));
		if (n <= 0) /* 0: the client hung up; < 0: an error or the deadline */
			return;
		if (weft_write_all(fd, buf, (size_t)n, weft_deadline_in(WEFT_SEC), NULL) < 0)
			return;
	}
}

static void *serve(void *srv)
{
	return (void *)(intptr_t)weft_server_serve(srv); /* until weft_server_stop */
}

struct client {
	uint16_t port;
	int id;
	size_t echoed;
};

static void *client(void *arg)
{
	struct client *c = arg;
	weft_time_t deadline = weft_deadline_in(2 * WEFT_SEC); /* for the whole exchange */
	int fd = (int)CHECK(weft_tcp_connect("127.0.0.1", c->port, deadline));
	char msg[64], back[64];
	int len = snprintf(msg, sizeof msg, "hello from client %d", c->id);
	CHECK(weft_write_all(fd, msg, (size_t)len, deadline, NULL));
	CHECK(weft_read_full(fd, back, (size_t)len, deadline, NULL));
	if (memcmp(msg, back, (size_t)len) == 0)
		c->echoed = (size_t)len;
	CHECK(weft_close(fd));
	return NULL;
}

static void *main_task(void *arg)
{
	(void)arg;
	int lfd = (int)CHECK(weft_tcp_listen("127.0.0.1", 0, 0)); /* port 0: any free port */
	uint16_t port = (uint16_t)CHECK(weft_local_port(lfd));
	weft_server_t *srv;
	CHECK(weft_server_create(&srv, lfd, echo_conn, NULL, NULL)); /* srv owns lfd now */
	weft_task_t accept_task;
	CHECK(weft_spawn(&accept_task, serve, srv, NULL));

	struct client c[CLIENTS];
	weft_group_t *g;
	CHECK(weft_group_create(&g, false));
	for (int i = 0; i < CLIENTS; i++) {
		c[i] = (struct client){port, i, 0};
		CHECK(weft_spawn(NULL, client, &c[i], &(weft_spawn_opts_t){.group = g}));
	}
	CHECK(weft_group_wait(g));
	CHECK(weft_group_destroy(g));
	size_t total = 0;
	for (int i = 0; i < CLIENTS; i++)
		total += c[i].echoed;
	printf("%d clients, %zu bytes echoed\n", CLIENTS, total);

	/* A read with a deadline: after its echo the server has nothing more to say. */
	int fd = (int)CHECK(weft_tcp_connect("127.0.0.1", port, weft_deadline_in(WEFT_SEC)));
	char b = '!';
	CHECK(weft_write(fd, &b, 1, weft_deadline_in(WEFT_SEC)));
	CHECK(weft_read(fd, &b, 1, weft_deadline_in(WEFT_SEC)));
	ssize_t n = weft_read(fd, &b, 1, weft_deadline_in(20 * WEFT_MSEC));
	printf("read with a 20 ms deadline: %s\n", weft_err_name((int)n));
	CHECK(weft_close(fd));

	CHECK(weft_server_stop(srv, weft_deadline_in(WEFT_SEC))); /* no more accepts; connections end */
	void *r;
	CHECK(weft_join(accept_task, &r));
	CHECK((intptr_t)r); /* serve's own result */
	printf("served %llu connections\n", (unsigned long long)weft_server_accepted(srv));
	CHECK(weft_server_destroy(srv));
	return NULL;
}

int main(void)
{
	return (int)CHECK(weft_main(main_task, NULL, NULL));
}
