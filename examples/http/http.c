/* http - a minimal HTTP/1.1 server with keep-alive and pipelining, enough
 * for wrk: every request gets "Hello, World!". One task per connection
 * (the io module's server helper); each reads requests into a buffer,
 * answers every complete one it holds with a single write, and reads on.
 *
 *   example_http [PORT]        (default 8080)
 *   wrk -t2 -c100 -d10s http://127.0.0.1:8080/
 *
 * Not a real HTTP implementation: no chunked request bodies, one fixed
 * response; requests with a body (Content-Length) have it skipped. */
#include <weft.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BUF 8192
#define IDLE_TIMEOUT (30 * WEFT_SEC)

static const char BODY[] = "Hello, World!";

/* Find the end of the header block in buf[0..len): index after "\r\n\r\n", or 0. */
static size_t header_end(const char *buf, size_t len)
{
	for (size_t i = 3; i < len; i++)
		if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
			return i + 1;
	return 0;
}

/* The value of header `name` in the header block, or NULL (not terminated). */
static const char *header(const char *h, size_t len, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	for (const char *p = h, *end = h + len; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			break;
		if ((size_t)(eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			const char *ve = eol;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
				ve--;
			*vlen = (size_t)(ve - v);
			return v;
		}
		p = eol + 1;
	}
	return NULL;
}

static void http_conn(int fd, void *ctx)
{
	(void)ctx;
	char in[BUF], out[BUF];
	size_t have = 0;
	for (;;) {
		ssize_t n = weft_read(fd, in + have, sizeof in - have, weft_deadline_in(IDLE_TIMEOUT));
		if (n <= 0)
			return; /* end of file, reset, idle timeout */
		have += (size_t)n;
		/* Answer every complete request in the buffer (pipelining). */
		size_t used = 0, olen = 0;
		bool close_after = false;
		for (;;) {
			size_t hend = header_end(in + used, have - used);
			if (!hend)
				break;
			const char *req = in + used;
			size_t vlen, body = 0;
			const char *v = header(req, hend, "Content-Length", &vlen);
			if (v)
				body = strtoul(v, NULL, 10);
			if (body > sizeof in || hend + body > have - used) {
				if (body > sizeof in - hend)
					return; /* too large for this example */
				break;		/* the body has not all arrived */
			}
			bool http10 = memmem(req, hend, "HTTP/1.0\r\n", 10) != NULL;
			v = header(req, hend, "Connection", &vlen);
			if (v && vlen == 5 && strncasecmp(v, "close", 5) == 0)
				close_after = true;
			else if (http10 && !(v && vlen == 10 && strncasecmp(v, "keep-alive", 10) == 0))
				close_after = true;
			if (olen + 256 > sizeof out) {
				if (weft_write_all(fd, out, olen, weft_deadline_in(IDLE_TIMEOUT), NULL) < 0)
					return;
				olen = 0;
			}
			olen += (size_t)snprintf(
				out + olen, sizeof out - olen,
				"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n%s",
				sizeof BODY - 1, close_after ? "Connection: close\r\n" : "", BODY);
			used += hend + body;
			if (close_after)
				break;
		}
		if (olen && weft_write_all(fd, out, olen, weft_deadline_in(IDLE_TIMEOUT), NULL) < 0)
			return;
		if (close_after)
			return;
		if (have == sizeof in && used == 0)
			return; /* a header block larger than the buffer */
		memmove(in, in + used, have - used);
		have -= used;
	}
}

static void *serve(void *srv)
{
	return (void *)(intptr_t)weft_server_serve(srv);
}

static void *http_main(void *arg)
{
	int lfd = weft_tcp_listen("0.0.0.0", (uint16_t)(intptr_t)arg, 0);
	if (lfd < 0) {
		fprintf(stderr, "http: listen: %s\n", weft_strerror(lfd));
		return (void *)1;
	}
	printf("http: listening on port %d\n", weft_local_port(lfd));
	fflush(stdout);
	weft_server_t *srv;
	if (weft_server_create(&srv, lfd, http_conn, NULL, NULL) < 0)
		return (void *)1;
	weft_task_t server_task;
	weft_spawn(&server_task, serve, srv, &(weft_spawn_opts_t){.name = "accept"});

	weft_chan_t *sigs;
	weft_chan_create(&sigs, sizeof(int), 4);
	weft_signal_notify(sigs, (int[]){SIGINT, SIGTERM}, 2);
	int sig;
	weft_chan_recv(sigs, &sig);
	weft_signal_stop(sigs);
	weft_chan_release(sigs);
	printf("http: stopping after %llu connections\n", (unsigned long long)weft_server_accepted(srv));
	weft_server_stop(srv, weft_deadline_in(2 * WEFT_SEC));
	weft_join(server_task, NULL);
	weft_server_destroy(srv);
	return NULL;
}

int main(int argc, char **argv)
{
	int port = argc > 1 ? atoi(argv[1]) : 8080;
	if (port < 0 || port > 65535) {
		fprintf(stderr, "usage: %s [PORT]\n", argv[0]);
		return 2;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	return weft_main(http_main, (void *)(intptr_t)port, NULL);
}
