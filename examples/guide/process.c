/* process.c - subprocesses: a filter with piped stdin and stdout, an exit
 * code, and a command that does not exist. */
#include "check.h"

#include <string.h>

static void *main_task(void *arg)
{
	(void)arg;
	weft_time_t deadline = weft_deadline_in(5 * WEFT_SEC);
	const char *const tr[] = {"tr", "a-z", "A-Z", NULL}; /* found in PATH */
	weft_process_opts_t opts = {.stdio = {WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, WEFT_STDIO_INHERIT}};
	weft_process_t *p;
	CHECK(weft_process_spawn(&p, tr, &opts));
	const char text[] = "shout this\n";
	CHECK(weft_process_write(p, text, strlen(text), deadline));
	CHECK(weft_process_close(p, WEFT_STDIN)); /* tr sees end of file */
	char out[64];
	size_t got = 0;
	ssize_t n;
	while ((n = CHECK(weft_process_read(p, WEFT_STDOUT, out + got, sizeof out - 1 - got, deadline))) > 0)
		got += (size_t)n; /* 0: end of file, tr has closed its stdout */
	out[got] = '\0';
	weft_exit_status_t st;
	CHECK(weft_process_wait(p, &st, deadline));
	CHECK(weft_process_destroy(p));
	printf("tr printed %s", out);
	printf("tr exited with %d\n", st.code);

	const char *const sh[] = {"sh", "-c", "exit 3", NULL};
	CHECK(weft_process_spawn(&p, sh, NULL)); /* opts NULL: stdio inherited */
	CHECK(weft_process_wait(p, &st, deadline));
	CHECK(weft_process_destroy(p));
	printf("sh exited with %d (signal %d)\n", st.code, st.signal);

	const char *const missing[] = {"no-such-command-here", NULL};
	int e = weft_process_spawn(&p, missing, NULL);
	printf("spawning a missing command: %s\n", weft_err_name(e));
	return e == -ENOENT ? NULL : (void *)1;
}

int main(void)
{
	return (int)CHECK(weft_main(main_task, NULL, NULL));
}
