/* file.c - file helpers on the blocking pool: read a whole file, write a
 * file (optionally atomically), open, pread/pwrite, and their _step forms.
 *
 * Each public call packs its arguments in a struct on the caller's stack and
 * runs a plain blocking function (a job, which returns its argument) on it
 * through weft_blocking, which never returns before that function has (so
 * the struct stays valid), and either runs it to the end (result 0) or not
 * at all (an error such as -ECANCELED): nothing is left half done for this
 * file to clean up. The _step forms run the same job through
 * weft__pool_step (blocking.c), which keeps the same promise: the job runs
 * to its end and its results come back to the call, or it never runs.
 */
#include "io_impl.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/rand.h"

#define READ_ALL_DEFAULT_MAX ((size_t)1 << 30)

/* ------------------------------------------------------------ read a whole file */

struct read_all {
	const char *path;
	size_t max;
	char *data;
	ssize_t r;
};

static ssize_t read_fd_all(int fd, size_t max, char **out)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max)
		return -EFBIG;
	/* st_size is a hint (procfs files say 0): read until end of file. */
	size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
	if (cap > max + 1)
		cap = max + 1;
	char *buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	size_t len = 0;
	for (;;) {
		if (len == cap) {
			if (len > max) {
				free(buf);
				return -EFBIG;
			}
			size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			char *nb = realloc(buf, ncap + 1);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = -errno;
			free(buf);
			return e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		free(buf);
		return -EFBIG;
	}
	buf[len] = '\0';
	*out = buf;
	return (ssize_t)len;
}

static void *read_all_job(void *a)
{
	struct read_all *ra = a;
	int fd = open(ra->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ra->r = -errno;
		return NULL;
	}
	ra->r = read_fd_all(fd, ra->max, &ra->data);
	close(fd);
	return ra;
}

static ssize_t read_all_call(const char *path, void **data, size_t max_size, weft_time_t deadline, weft_op_t *op)
{
	if (!path || !data)
		return -EINVAL;
	if (max_size == 0)
		max_size = READ_ALL_DEFAULT_MAX;
	else if (max_size > (size_t)SSIZE_MAX - 1)
		max_size = (size_t)SSIZE_MAX - 1; /* the size must fit the return value */
	struct read_all ra = {.path = path, .max = max_size};
	int e = op ? weft__pool_step(read_all_job, &ra, sizeof ra, deadline, op, WEFT__IO_FILE_READ_ALL_STEP, path)
		   : weft_blocking(read_all_job, &ra, NULL);
	if (e)
		return e;
	if (ra.r >= 0)
		*data = ra.data;
	return ra.r;
}

ssize_t weft_file_read_all(const char *path, void **data, size_t max_size)
{
	if (data)
		*data = NULL;
	return read_all_call(path, data, max_size, WEFT_NEVER, NULL);
}

ssize_t weft_file_read_all_step(const char *path, void **data, size_t max_size, weft_time_t deadline, weft_op_t *op)
{
	if (!op) {
		if (data)
			*data = NULL;
		return -EINVAL;
	}
	/* *data is set when the call completes (NULL on an error): a repeat
	 * before that, or an -EBUSY, changes nothing. */
	ssize_t r = read_all_call(path, data, max_size, deadline, op);
	if (data && r < 0 && r != -EINPROGRESS && r != -EBUSY)
		*data = NULL;
	return r;
}

/* ------------------------------------------------------------ write a file */

struct write_all {
	const char *path;
	const char *data;
	size_t len;
	unsigned flags;
	int r;
};

static int write_fd_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		/* The path may name a FIFO whose reader is gone: -EPIPE. (Pool
		 * threads block SIGPIPE anyway; a plain thread runs this itself.) */
		ssize_t n = IO_NOSIGPIPE(write(fd, p, len));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write, optionally fsync, close; the first error wins. */
static int fill_and_close(int fd, const struct write_all *wa, bool sync)
{
	int e = write_fd_all(fd, wa->data, wa->len);
	if (!e && sync && fsync(fd) < 0)
		e = -errno;
	if (close(fd) < 0 && !e && errno != EINTR)
		e = -errno;
	return e;
}

static int sync_parent_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!dir)
		return -ENOMEM;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return -errno;
	int e = fsync(fd) < 0 && errno != EINVAL ? -errno : 0; /* some file systems refuse */
	close(fd);
	return e;
}

static int write_atomic(const struct write_all *wa)
{
	size_t plen = strlen(wa->path);
	if (plen == 0)
		return -ENOENT;
	if (wa->path[plen - 1] == '/')
		return -EISDIR;
	struct stat old;
	bool have_old = stat(wa->path, &old) == 0;
	if (have_old && S_ISDIR(old.st_mode))
		return -EISDIR;
	char *tmp = malloc(plen + 32);
	if (!tmp)
		return -ENOMEM;
	int fd = -1;
	bool sim = weft__io_sim();
	for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
		/* Under sim the owner thread's seeded stream: the name is never
		 * compared, but a sim's system calls repeat with its seed. */
		uint64_t rnd = 0;
		if (sim)
			rnd = weft__trand();
		else if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != sizeof rnd)
			rnd = (uint64_t)weft_now() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)attempt;
		snprintf(tmp, plen + 32, "%s.tmp-%016llx", wa->path, (unsigned long long)rnd);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		int e = -errno;
		free(tmp);
		return e;
	}
	int e = 0;
	if (have_old && fchmod(fd, old.st_mode & 07777) < 0)
		e = -errno;
	if (!e)
		e = fill_and_close(fd, wa, true);
	else
		close(fd);
	if (!e && rename(tmp, wa->path) < 0)
		e = -errno;
	if (e)
		unlink(tmp);
	else
		e = sync_parent_dir(wa->path);
	free(tmp);
	return e;
}

static void *write_all_job(void *a)
{
	struct write_all *wa = a;
	if (wa->flags & WEFT_FILE_ATOMIC) {
		wa->r = write_atomic(wa);
		return wa;
	}
	int oflags = O_WRONLY | O_CREAT | O_CLOEXEC | (wa->flags & WEFT_FILE_APPEND ? O_APPEND : O_TRUNC);
	int fd = open(wa->path, oflags, 0666);
	wa->r = fd < 0 ? -errno : fill_and_close(fd, wa, wa->flags & WEFT_FILE_SYNC);
	return wa;
}

static int write_all_call(const char *path, const void *data, size_t len, unsigned flags, weft_time_t deadline,
			  weft_op_t *op)
{
	const unsigned known = WEFT_FILE_APPEND | WEFT_FILE_SYNC | WEFT_FILE_ATOMIC;
	if (!path || (!data && len > 0) || len > (size_t)SSIZE_MAX || (flags & ~known) ||
	    ((flags & WEFT_FILE_ATOMIC) && (flags & WEFT_FILE_APPEND)))
		return -EINVAL;
	struct write_all wa = {.path = path, .data = data, .len = len, .flags = flags};
	int e = op ? weft__pool_step(write_all_job, &wa, sizeof wa, deadline, op, WEFT__IO_FILE_WRITE_ALL_STEP, path)
		   : weft_blocking(write_all_job, &wa, NULL);
	return e ? e : wa.r;
}

int weft_file_write_all(const char *path, const void *data, size_t len, unsigned flags)
{
	return write_all_call(path, data, len, flags, WEFT_NEVER, NULL);
}

int weft_file_write_all_step(const char *path, const void *data, size_t len, unsigned flags, weft_time_t deadline,
			     weft_op_t *op)
{
	return op ? write_all_call(path, data, len, flags, deadline, op) : -EINVAL;
}

/* ------------------------------------------------------------ open, pread, pwrite */

struct open_args {
	const char *path;
	int flags;
	unsigned mode;
	int r;
};

static void *open_job(void *a)
{
	struct open_args *o = a;
	o->r = open(o->path, o->flags | O_CLOEXEC, (mode_t)o->mode);
	if (o->r < 0)
		o->r = -errno;
	return o;
}

static int open_call(const char *path, int flags, unsigned mode, weft_time_t deadline, weft_op_t *op)
{
	if (!path)
		return -EINVAL;
	struct open_args o = {.path = path, .flags = flags, .mode = mode};
	int e = op ? weft__pool_step(open_job, &o, sizeof o, deadline, op, WEFT__IO_FILE_OPEN_STEP, path)
		   : weft_blocking(open_job, &o, NULL);
	return e ? e : o.r;
}

int weft_file_open(const char *path, int flags, unsigned mode)
{
	return open_call(path, flags, mode, WEFT_NEVER, NULL);
}

int weft_file_open_step(const char *path, int flags, unsigned mode, weft_time_t deadline, weft_op_t *op)
{
	return op ? open_call(path, flags, mode, deadline, op) : -EINVAL;
}

struct rw_at {
	int fd;
	char *buf;
	size_t len;
	int64_t off;
	bool write;
	ssize_t r;
};

static void *rw_at_job(void *a)
{
	struct rw_at *x = a;
	size_t done = 0;
	while (done < x->len) {
		ssize_t n = x->write ? pwrite(x->fd, x->buf + done, x->len - done, (off_t)(x->off + (int64_t)done))
				     : pread(x->fd, x->buf + done, x->len - done, (off_t)(x->off + (int64_t)done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (done == 0) {
				x->r = -errno;
				return x;
			}
			break;
		}
		if (n == 0)
			break; /* end of file */
		done += (size_t)n;
	}
	x->r = (ssize_t)done;
	return x;
}

static ssize_t rw_at(int fd, void *buf, size_t len, int64_t off, bool write, weft_time_t deadline, weft_op_t *op)
{
	if (fd < 0)
		return -EBADF;
	if (!buf || off < 0 || len > SSIZE_MAX || (uint64_t)off + len > (uint64_t)INT64_MAX)
		return -EINVAL;
	struct rw_at x = {.fd = fd, .buf = buf, .len = len, .off = off, .write = write};
	int e = op ? weft__pool_step(rw_at_job, &x, sizeof x, deadline, op,
				     write ? WEFT__IO_FILE_PWRITE_STEP : WEFT__IO_FILE_PREAD_STEP,
				     (const void *)(intptr_t)fd)
		   : weft_blocking(rw_at_job, &x, NULL);
	return e ? e : x.r;
}

ssize_t weft_file_pread(int fd, void *buf, size_t len, int64_t offset)
{
	return rw_at(fd, buf, len, offset, false, WEFT_NEVER, NULL);
}

ssize_t weft_file_pwrite(int fd, const void *buf, size_t len, int64_t offset)
{
	return rw_at(fd, (void *)buf, len, offset, true, WEFT_NEVER, NULL);
}

ssize_t weft_file_pread_step(int fd, void *buf, size_t len, int64_t offset, weft_time_t deadline, weft_op_t *op)
{
	return op ? rw_at(fd, buf, len, offset, false, deadline, op) : -EINVAL;
}

ssize_t weft_file_pwrite_step(int fd, const void *buf, size_t len, int64_t offset, weft_time_t deadline, weft_op_t *op)
{
	return op ? rw_at(fd, (void *)buf, len, offset, true, deadline, op) : -EINVAL;
}
