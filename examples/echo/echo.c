/* echo - a TCP echo server: the io module's server helper runs one task per
 * connection; each task reads and writes back until the client hangs up.
 * Ctrl-C (or SIGTERM) stops it gracefully: no new connections, 5 s for the
 * open ones to finish, then they are shut down.
 *
 *   example_echo [PORT]        (default 7007; 0 picks a free port)
 *   then: nc 127.0.0.1 7007
 */
#include <weft.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

/* One connection. An idle client is dropped after 60 s; errors (a reset,
 * the deadline) end the loop like end of file does. The server closes fd. */
static void echo_conn(int fd, void *ctx)
{
	(void)ctx;
	char buf[4096];
	for (;;) {
		ssize_t n = weft_read(fd, buf, sizeof buf, weft_deadline_in(60 * WEFT_SEC));
		if (n <= 0)
			return;
		if (weft_write_all(fd, buf, (size_t)n, weft_deadline_in(10 * WEFT_SEC), NULL) < 0)
			return;
	}
}

static void *serve(void *srv)
{
	return (void *)(intptr_t)weft_server_serve(srv);
}

static void *echo_main(void *arg)
{
	int port = (int)(intptr_t)arg;
	int lfd = weft_tcp_listen("127.0.0.1", (uint16_t)port, 0);
	if (lfd < 0) {
		fprintf(stderr, "echo: listen: %s\n", weft_strerror(lfd));
		return (void *)1;
	}
	printf("echo: listening on 127.0.0.1:%d\n", weft_local_port(lfd));
	fflush(stdout);

	weft_server_t *srv;
	int r = weft_server_create(&srv, lfd, echo_conn, NULL, &(weft_server_opts_t){.max_conns = 10000});
	if (r < 0) {
		fprintf(stderr, "echo: %s\n", weft_strerror(r));
		return (void *)1;
	}
	weft_task_t server_task;
	weft_spawn(&server_task, serve, srv, &(weft_spawn_opts_t){.name = "accept"});

	/* Wait for Ctrl-C or SIGTERM, delivered as channel messages. */
	weft_chan_t *sigs;
	weft_chan_create(&sigs, sizeof(int), 4);
	weft_signal_notify(sigs, (int[]){SIGINT, SIGTERM}, 2);
	int sig = 0;
	weft_chan_recv(sigs, &sig);
	weft_signal_stop(sigs);
	weft_chan_release(sigs);

	printf("echo: signal %d, stopping (%d connections open, %llu served)\n", sig, weft_server_conns(srv),
	       (unsigned long long)weft_server_accepted(srv));
	r = weft_server_stop(srv, weft_deadline_in(5 * WEFT_SEC));
	if (r == -ETIMEDOUT)
		printf("echo: some connections had to be shut down\n");
	weft_join(server_task, NULL);
	weft_server_destroy(srv);
	return NULL;
}

int main(int argc, char **argv)
{
	int port = argc > 1 ? atoi(argv[1]) : 7007;
	if (port < 0 || port > 65535) {
		fprintf(stderr, "usage: %s [PORT]\n", argv[0]);
		return 2;
	}
	/* Signals go to the channel only: block them in every thread. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	return weft_main(echo_main, (void *)(intptr_t)port, NULL);
}
