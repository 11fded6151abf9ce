/* blocking.c - the blocking pool: a call that would block its worker (a
 * file system call, a library with no asynchronous API) runs on a pool
 * thread while the task parks; the file helpers run there too. */
#include "check.h"

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/weft-guide-XXXXXX";
static char path[64];

/* Plain blocking C: runs on a pool thread. Its result is a pointer, so
 * errors travel as (void *)(intptr_t)-errno. */
static void *make_dir(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)(mkdtemp(dir) ? 0 : -errno);
}

static void *count_lines(void *arg)
{
	FILE *f = fopen(arg, "re");
	if (!f)
		return (void *)(intptr_t)-errno;
	long lines = 0;
	for (int c; (c = getc(f)) != EOF;)
		lines += c == '\n';
	fclose(f);
	return (void *)lines;
}

static void *remove_all(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)(unlink(path) == 0 && rmdir(dir) == 0 ? 0 : -errno);
}

static void *main_task(void *arg)
{
	(void)arg;
	void *r;
	CHECK(weft_blocking(make_dir, NULL, &r)); /* the pool ran it... */
	CHECK((intptr_t)r);			  /* ...and this is what it returned */
	snprintf(path, sizeof path, "%s/greeting.txt", dir);

	const char text[] = "hello, file\nsecond line\n";
	CHECK(weft_file_write_all(path, text, strlen(text), WEFT_FILE_ATOMIC));
	int fd = (int)CHECK(weft_file_open(path, O_RDWR, 0));
	CHECK(weft_file_pwrite(fd, "weft", 4, 7)); /* at offset 7 */
	char first[12];
	CHECK(weft_file_pread(fd, first, sizeof first, 0));
	CHECK(weft_close(fd));
	printf("first line now: %.11s\n", first);

	void *data;
	ssize_t size = CHECK(weft_file_read_all(path, &data, 0));
	printf("file: %zd bytes, ends with %s", size, (char *)data + 12);
	free(data);
	CHECK(weft_blocking(count_lines, path, &r));
	printf("lines: %ld\n", (long)CHECK((intptr_t)r));

	CHECK(weft_blocking(remove_all, NULL, &r));
	CHECK((intptr_t)r);
	EXPECT(weft_file_read_all(path, &data, 0), -ENOENT);

	weft_blocking_stats_t st;
	CHECK(weft_blocking_stats(NULL, &st));
	printf("pool jobs done: %s\n", st.completed >= 8 ? "8 or more" : "fewer than 8");
	return NULL;
}

int main(void)
{
	return (int)CHECK(weft_main(main_task, NULL, NULL));
}
