/* test_file.c - file helpers on the blocking pool: round trips, atomic
 * writes, offsets, errors, cancellation, no leaked descriptors. */
#include "weft_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <weft/io.h>

#include "blocking_check.h"

static char dir[64];

static const char *in_dir(char *buf, const char *name)
{
	snprintf(buf, 512, "%s/%s", dir, name);
	return buf;
}

static int entries(void)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/weft-file-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			unlink(in_dir(p, e->d_name));
	closedir(d);
	return rmdir(dir);
}

static void fill(char *buf, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (char)(seed >> 16);
	}
}

/* ------------------------------------------------------------ round trips */

static void round_trips(void)
{
	char p[512];
	const char *f = in_dir(p, "a");
	size_t big = (size_t)WT_SIZE(3 << 20, 1 << 20);
	char *src = malloc(big + 4); /* each mode writes from src + mode */
	fill(src, big + 4, 1);
	void *got = NULL;
	unsigned modes[] = {0, WEFT_FILE_SYNC, WEFT_FILE_ATOMIC, WEFT_FILE_ATOMIC | WEFT_FILE_SYNC};
	for (int m = 0; m < 4; m++) {
		for (size_t len = 0; len <= big; len = len ? len * 16 : 1) {
			TCHECK_EQ(weft_file_write_all(f, src + m, len, modes[m]), 0);
			ssize_t n = weft_file_read_all(f, &got, 0);
			TCHECK_EQ(n, (ssize_t)len);
			TCHECK(n >= 0 && memcmp(got, src + m, len) == 0 && ((char *)got)[len] == '\0');
			free(got);
		}
	}
	/* append */
	TCHECK_EQ(weft_file_write_all(f, "abc", 3, 0), 0);
	TCHECK_EQ(weft_file_write_all(f, "def", 3, WEFT_FILE_APPEND), 0);
	TCHECK_EQ(weft_file_read_all(f, &got, 0), 6);
	TCHECK(memcmp(got, "abcdef", 6) == 0);
	free(got);
	/* a file whose size stat() does not know */
	ssize_t n = weft_file_read_all("/proc/self/status", &got, 0);
	TCHECK(n > 0 && strstr(got, "Pid:") != NULL);
	free(got);
	TCHECK_EQ(entries(), 1); /* no temporary file left behind */
	free(src);
}

static void *round_trip_main(void *a)
{
	(void)a;
	round_trips();
	return NULL;
}

static void test_round_trips(void **state)
{
	(void)state;
	int fds = wt_count_fds();
	wt_run(round_trip_main, NULL, 2);
	round_trips(); /* and from a plain thread, inline */
	assert_int_equal(atomic_load(&tcheck_failures), 0);
	WT_ASSERT_FDS(fds);
}

/* ------------------------------------------------------------ atomic replace */

static void *atomic_main(void *a)
{
	(void)a;
	char p[512];
	const char *f = in_dir(p, "kept-mode");
	TCHECK_EQ(weft_file_write_all(f, "old", 3, 0), 0);
	TCHECK_EQ(chmod(f, 0640), 0);
	TCHECK_EQ(weft_file_write_all(f, "new!", 4, WEFT_FILE_ATOMIC), 0);
	struct stat st;
	TCHECK_EQ(stat(f, &st), 0);
	TCHECK_EQ(st.st_mode & 07777, 0640);
	TCHECK_EQ(st.st_size, 4);
	/* a failed atomic write leaves the old file and nothing else */
	char sub[256];
	snprintf(sub, sizeof sub, "%s/sub", dir);
	TCHECK_EQ(mkdir(sub, 0700), 0);
	TCHECK_EQ(weft_file_write_all(sub, "x", 1, WEFT_FILE_ATOMIC), -EISDIR);
	TCHECK_EQ(rmdir(sub), 0);
	TCHECK_EQ(entries(), 1);
	return NULL;
}

static void test_atomic_replace(void **state)
{
	(void)state;
	wt_run(atomic_main, NULL, 1);
}

/* ------------------------------------------------------------ offsets */

static void *offsets_main(void *a)
{
	(void)a;
	char p[512];
	int fd = weft_file_open(in_dir(p, "at"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	TCHECK(fd >= 0);
	TCHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	char buf[8192], back[8192];
	fill(buf, sizeof buf, 7);
	TCHECK_EQ(weft_file_pwrite(fd, buf, sizeof buf, 4096), (ssize_t)sizeof buf);
	TCHECK_EQ(weft_file_pread(fd, back, sizeof back, 4096), (ssize_t)sizeof back);
	TCHECK(memcmp(buf, back, sizeof buf) == 0);
	TCHECK_EQ(weft_file_pread(fd, back, 100, 0), 100); /* the hole reads as zeros */
	TCHECK(back[0] == 0 && back[99] == 0);
	TCHECK_EQ(weft_file_pread(fd, back, sizeof back, 4096 + 8000), 192); /* short at EOF */
	TCHECK_EQ(weft_file_pread(fd, back, sizeof back, 1 << 20), 0);
	TCHECK_EQ(weft_file_pread(fd, back, 1, -1), -EINVAL);
	TCHECK_EQ(weft_file_pread(fd, NULL, 1, 0), -EINVAL);
	TCHECK_EQ(weft_file_pread(-1, back, 1, 0), -EBADF);
	close(fd);
	TCHECK_EQ(weft_file_pread(fd, back, 1, 0), -EBADF); /* closed */
	TCHECK_EQ(weft_file_open(in_dir(p, "missing"), O_RDONLY, 0), -ENOENT);
	TCHECK_EQ(weft_file_open(NULL, O_RDONLY, 0), -EINVAL);
	return NULL;
}

static void test_offsets(void **state)
{
	(void)state;
	int fds = wt_count_fds();
	wt_run(offsets_main, NULL, 1);
	WT_ASSERT_FDS(fds);
}

/* ------------------------------------------------------------ errors */

static void *errors_main(void *a)
{
	(void)a;
	char p[512], q[512];
	void *got = (void *)1;
	TCHECK_EQ(weft_file_read_all(in_dir(p, "nope"), &got, 0), -ENOENT);
	TCHECK(got == NULL);
	TCHECK_EQ(weft_file_read_all(dir, &got, 0), -EISDIR);
	TCHECK_EQ(weft_file_read_all(NULL, &got, 0), -EINVAL);
	TCHECK_EQ(weft_file_read_all(dir, NULL, 0), -EINVAL);
	TCHECK_EQ(weft_file_write_all(dir, "x", 1, 0), -EISDIR);
	TCHECK_EQ(weft_file_write_all(dir, "x", 1, WEFT_FILE_ATOMIC), -EISDIR);
	TCHECK_EQ(weft_file_write_all(in_dir(p, "no/such"), "x", 1, 0), -ENOENT);
	TCHECK_EQ(weft_file_write_all(in_dir(p, "no/such"), "x", 1, WEFT_FILE_ATOMIC), -ENOENT);
	TCHECK_EQ(weft_file_write_all(in_dir(p, "f"), NULL, 1, 0), -EINVAL);
	TCHECK_EQ(weft_file_write_all(in_dir(p, "f"), "x", 1, 1u << 9), -EINVAL);
	TCHECK_EQ(weft_file_write_all(in_dir(p, "f"), "x", 1, WEFT_FILE_ATOMIC | WEFT_FILE_APPEND), -EINVAL);
	TCHECK_EQ(weft_file_write_all(NULL, "x", 1, 0), -EINVAL);
	/* size limit */
	TCHECK_EQ(weft_file_write_all(in_dir(p, "ten"), "0123456789", 10, 0), 0);
	TCHECK_EQ(weft_file_read_all(p, &got, 9), -EFBIG);
	TCHECK(got == NULL);
	TCHECK_EQ(weft_file_read_all(p, &got, 10), 10);
	free(got);
	TCHECK_EQ(weft_file_read_all("/proc/self/status", &got, 10), -EFBIG);
	/* a file we may not read (unless we are root) */
	in_dir(q, "secret");
	TCHECK_EQ(weft_file_write_all(q, "s", 1, 0), 0);
	chmod(q, 0);
	ssize_t n = weft_file_read_all(q, &got, 0);
	if (geteuid() != 0)
		TCHECK_EQ(n, -EACCES);
	else if (n >= 0)
		free(got);
	unlink(q);
	unlink(p);
	TCHECK_EQ(entries(), 0);
	return NULL;
}

static void test_errors(void **state)
{
	(void)state;
	int fds = wt_count_fds();
	wt_run(errors_main, NULL, 1);
	WT_ASSERT_FDS(fds);
}

/* ------------------------------------------------------------ many tasks, cancellation */

enum { NWRITERS = 64 };

static void *writer(void *a)
{
	long i = (long)(intptr_t)a;
	char p[512], name[32], body[64];
	snprintf(name, sizeof name, "w%ld", i);
	int len = snprintf(body, sizeof body, "writer %ld says hello", i);
	for (int r = 0; r < 10; r++) {
		TCHECK_EQ(weft_file_write_all(in_dir(p, name), body, (size_t)len, r % 2 ? WEFT_FILE_ATOMIC : 0), 0);
		void *got;
		TCHECK_EQ(weft_file_read_all(p, &got, 0), len);
		TCHECK(memcmp(got, body, (size_t)len) == 0);
		free(got);
	}
	unlink(p);
	return NULL;
}

static void *cancelled_reader(void *a)
{
	(void)a;
	while (!weft_cancelled())
		weft_yield();
	void *got = (void *)1;
	TCHECK_EQ(weft_file_read_all("/proc/self/status", &got, 0), -ECANCELED);
	TCHECK(got == NULL);
	TCHECK_EQ(weft_file_open("/proc/self/status", O_RDONLY, 0), -ECANCELED);
	return NULL;
}

static void *many_main(void *a)
{
	(void)a;
	weft_task_t t[NWRITERS];
	for (long i = 0; i < NWRITERS; i++)
		t[i] = wt_spawn(writer, (void *)(intptr_t)i);
	for (int i = 0; i < NWRITERS; i++)
		wt_join(t[i]);
	TCHECK_EQ(entries(), 0);
	weft_task_t c = wt_spawn(cancelled_reader, NULL);
	weft_cancel(c);
	wt_join(c);
	return NULL;
}

static void test_many_tasks_and_cancel(void **state)
{
	(void)state;
	int fds = wt_count_fds();
	wt_run(many_main, NULL, 2);
	WT_ASSERT_FDS(fds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trips, setup, teardown),
		cmocka_unit_test_setup_teardown(test_atomic_replace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offsets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_tasks_and_cancel, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
