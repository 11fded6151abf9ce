/* test_sim.c - the io module under the simulation (docs/io.md, "Under the
 * simulation"; docs/exec.md, "sim"): a protocol over pipes, AF_UNIX socket
 * pairs and an eventfd plus a fixture file read and written through
 * weft_file_* repeat byte for byte under one seed, in this process and in
 * two fresh ones; every call into the world a seed cannot repeat is
 * refused with -ENOTSUP; the blocking pool is modelled (fn runs in its
 * task, then a seeded latency); a wait on a descriptor nothing can make
 * ready is a deadlock; and the server helper serves AF_UNIX clients under
 * a sweep of seeds. */
#include "io/wt_io.h"
#include "wt_sim.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* A sim executor of seed, the calling thread its owner. */
static weft_exec_t *sim_exec(uint64_t seed)
{
	weft_exec_t *ex = NULL;
	weft_exec_sim_opts_t o = {.size = sizeof o, .seed = seed};
	assert_int_equal(weft_exec_create_sim(&ex, &o), 0);
	return ex;
}

/* fn(arg) as a task of a fresh sim of seed, waited for; its result. */
static void *in_sim(weft_fn_t fn, void *arg, uint64_t seed)
{
	weft_exec_t *ex = sim_exec(seed);
	weft_exec_task_t h;
	void *r = NULL;
	assert_int_equal(weft_exec_spawn(ex, &h, fn, arg, NULL), 0);
	assert_int_equal(weft_exec_wait(ex, h, &r), 0);
	assert_int_equal(weft_exec_destroy(ex), 0);
	return r;
}

/* ------------------------------------------------------------ the fixture */

#define FIX_LEN (40 * 1024)

static char fixture_data[FIX_LEN];

/* The fixture's fixed contents, written to a new file; its path in buf. */
static void fixture_make(char *path, size_t len)
{
	for (size_t i = 0; i < FIX_LEN; i++)
		fixture_data[i] = i % 64 == 63 ? '\n' : (char)('a' + (i * 131 + i / 251) % 26);
	snprintf(path, len, "/tmp/weft-sim-fixture-%d-XXXXXX", (int)getpid());
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, fixture_data, FIX_LEN), FIX_LEN);
	close(fd);
}

/* ------------------------------------------------------------ the protocol */

/* What happened, in the order it happened: a line per event with the
 * virtual time since the start, the task, what and two numbers. */
typedef struct trail {
	weft_time_t t0;
	size_t len;
	char text[1 << 16];
} trail;

static void ev(trail *t, const char *what, long long a, long long b)
{
	if (t->len + 96 >= sizeof t->text)
		return;
	int n = snprintf(t->text + t->len, sizeof t->text - t->len, "%lld %llx %s %lld %lld\n",
			 (long long)(weft_now() - t->t0), (unsigned long long)weft_self(), what, a, b);
	t->len += (size_t)n;
}

static uint64_t fnv(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
	return h;
}

#define PAIRS 3
#define ROUNDS 6
#define MSGLEN 16
#define NOTES 4

typedef struct iomix {
	const char *path;
	char out[256];
	trail tr;
	int pipe[2], relay[2], pairs[PAIRS][2], efd;
	char sunk[FIX_LEN];
	size_t nsunk;
	long efd_sum;
	weft_op_t op;
	void *step_data;
	ssize_t step_len;
} iomix;

/* Reads the fixture through the pool's model and feeds it into the pipe
 * in chunks of varied sizes. */
static void *feeder(void *a)
{
	iomix *m = a;
	void *data = NULL;
	ssize_t n = weft_file_read_all(m->path, &data, 0);
	TCHECK_EQ(n, FIX_LEN);
	TCHECK(data && memcmp(data, fixture_data, FIX_LEN) == 0);
	ev(&m->tr, "read-fixture", n, 0);
	for (size_t off = 0, k = 0; data && off < (size_t)n; k++) {
		size_t len = 1 + (k * 7919) % 5000;
		if (len > (size_t)n - off)
			len = (size_t)n - off;
		TCHECK_EQ(weft_write_all(m->pipe[1], (char *)data + off, len, wt_hang_deadline(), NULL), (ssize_t)len);
		off += len;
	}
	free(data);
	TCHECK_EQ(weft_close(m->pipe[1]), 0);
	ev(&m->tr, "fed", n, 0);
	return NULL;
}

/* Pipe to socket pair, a read at a time. */
static void *relay(void *a)
{
	iomix *m = a;
	char buf[3000];
	ssize_t n;
	while ((n = weft_read(m->pipe[0], buf, sizeof buf, wt_hang_deadline())) > 0) {
		ev(&m->tr, "relay", n, 0);
		TCHECK_EQ(weft_write_all(m->relay[0], buf, (size_t)n, wt_hang_deadline(), NULL), n);
	}
	TCHECK_EQ(n, 0);
	TCHECK_EQ(weft_shutdown(m->relay[0], SHUT_WR), 0);
	return NULL;
}

static void *sink(void *a)
{
	iomix *m = a;
	ssize_t n;
	while (m->nsunk < FIX_LEN &&
	       (n = weft_read(m->relay[1], m->sunk + m->nsunk, FIX_LEN - m->nsunk, wt_hang_deadline())) > 0) {
		ev(&m->tr, "sunk", n, (long long)m->nsunk);
		m->nsunk += (size_t)n;
	}
	char c;
	TCHECK_EQ(weft_read(m->relay[1], &c, 1, wt_hang_deadline()), 0); /* the relay's end of file */
	TCHECK_EQ(m->nsunk, FIX_LEN);
	TCHECK(memcmp(m->sunk, fixture_data, FIX_LEN) == 0);
	return NULL;
}

typedef struct pair_arg {
	iomix *m;
	int i;
} pair_arg;

static void *pinger(void *a)
{
	pair_arg *p = a;
	int fd = p->m->pairs[p->i][0];
	for (int k = 0; k < ROUNDS; k++) {
		/* (the formats fit MSGLEN: the pair and round numbers are small) */
		char q[MSGLEN + 24] = {0}, r[MSGLEN], want[MSGLEN + 24];
		snprintf(q, sizeof q, "ping %d %d", p->i, k);
		snprintf(want, sizeof want, "pong %d %d", p->i, k);
		TCHECK(strlen(q) < MSGLEN && strlen(want) < MSGLEN);
		TCHECK_EQ(weft_write_all(fd, q, MSGLEN, wt_hang_deadline(), NULL), MSGLEN);
		TCHECK_EQ(weft_read_full(fd, r, MSGLEN, wt_hang_deadline(), NULL), MSGLEN);
		TCHECK(strcmp(r, want) == 0);
		ev(&p->m->tr, "ponged", p->i, k);
		if (k % 2)
			weft_sleep((p->i + 1) * 200 * (WEFT_MSEC / 1000));
	}
	TCHECK_EQ(weft_shutdown(fd, SHUT_WR), 0);
	return NULL;
}

static void *ponger(void *a)
{
	pair_arg *p = a;
	int fd = p->m->pairs[p->i][1];
	char q[MSGLEN];
	ssize_t n;
	while ((n = weft_read_full(fd, q, MSGLEN, wt_hang_deadline(), NULL)) == MSGLEN) {
		q[1] = 'o';
		ev(&p->m->tr, "pinged", p->i, q[7]);
		TCHECK_EQ(weft_write_all(fd, q, MSGLEN, wt_hang_deadline(), NULL), MSGLEN);
	}
	TCHECK_EQ(n, 0);
	return NULL;
}

/* An eventfd: one task adds, another waits for it to be readable. */
static void *notifier(void *a)
{
	iomix *m = a;
	for (int k = 1; k <= NOTES; k++) {
		weft_sleep(k * 300 * (WEFT_MSEC / 1000));
		uint64_t v = (uint64_t)k;
		TCHECK_EQ(write(m->efd, &v, sizeof v), (ssize_t)sizeof v);
	}
	return NULL;
}

static void *efd_waiter(void *a)
{
	iomix *m = a;
	while (m->efd_sum < NOTES * (NOTES + 1) / 2) {
		int r = weft_fd_wait(m->efd, POLLIN, wt_hang_deadline());
		TCHECK(r > 0 && (r & POLLIN));
		if (r <= 0)
			break;
		uint64_t v = 0;
		TCHECK_EQ(read(m->efd, &v, sizeof v), (ssize_t)sizeof v);
		m->efd_sum += (long)v;
		ev(&m->tr, "eventfd", (long long)v, m->efd_sum);
	}
	return NULL;
}

/* A stackless task reads the fixture through the model's _step path. */
static weft_step_t step_reader(void *a, void **res)
{
	iomix *m = a;
	ssize_t n = weft_file_read_all_step(m->path, &m->step_data, 0, WEFT_NEVER, &m->op);
	if (n == -EINPROGRESS)
		return WEFT_STEP_PARKED;
	m->step_len = n;
	ev(&m->tr, "step-read", n, 0);
	*res = NULL;
	return WEFT_STEP_DONE;
}

static void *io_main(void *a)
{
	iomix *m = a;
	m->tr.t0 = weft_now();
	m->tr.len = 0;
	m->nsunk = 0;
	m->efd_sum = 0;
	m->op = (weft_op_t)WEFT_OP_INIT;
	m->step_data = NULL;
	TCHECK_EQ(pipe2(m->pipe, O_CLOEXEC), 0);
	TCHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, m->relay), 0);
	for (int i = 0; i < PAIRS; i++)
		TCHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, m->pairs[i]), 0);
	m->efd = eventfd(0, EFD_CLOEXEC);
	TCHECK(m->efd >= 0);
	weft_task_t t[5 + 2 * PAIRS];
	int n = 0;
	TCHECK_EQ(weft_spawn(&t[n++], feeder, m, &(weft_spawn_opts_t){.name = "feeder"}), 0);
	TCHECK_EQ(weft_spawn(&t[n++], relay, m, &(weft_spawn_opts_t){.name = "relay"}), 0);
	TCHECK_EQ(weft_spawn(&t[n++], sink, m, &(weft_spawn_opts_t){.name = "sink"}), 0);
	TCHECK_EQ(weft_spawn(&t[n++], notifier, m, NULL), 0);
	TCHECK_EQ(weft_spawn(&t[n++], efd_waiter, m, NULL), 0);
	pair_arg pa[PAIRS];
	for (int i = 0; i < PAIRS; i++) {
		pa[i] = (pair_arg){m, i};
		TCHECK_EQ(weft_spawn(&t[n++], pinger, &pa[i], NULL), 0);
		TCHECK_EQ(weft_spawn(&t[n++], ponger, &pa[i], NULL), 0);
	}
	weft_task_t st;
	TCHECK_EQ(weft_spawn_step(&st, step_reader, m, NULL), 0);
	for (int i = 0; i < n; i++)
		TCHECK_EQ(weft_join(t[i], NULL), 0);
	TCHECK_EQ(weft_join(st, NULL), 0);
	TCHECK_EQ(m->step_len, FIX_LEN);
	TCHECK(m->step_data && memcmp(m->step_data, fixture_data, FIX_LEN) == 0);
	free(m->step_data);

	/* What the sink got, written back atomically (its temporary name
	 * comes from the seed), then read back in part. */
	snprintf(m->out, sizeof m->out, "%s.out", m->path);
	TCHECK_EQ(weft_file_write_all(m->out, m->sunk, FIX_LEN, WEFT_FILE_ATOMIC), 0);
	int fd = weft_file_open(m->out, O_RDONLY, 0);
	TCHECK(fd >= 0);
	char part[100];
	TCHECK_EQ(weft_file_pread(fd, part, sizeof part, 1000), (ssize_t)sizeof part);
	TCHECK(memcmp(part, fixture_data + 1000, sizeof part) == 0);
	close(fd);
	unlink(m->out);
	ev(&m->tr, "wrote-back", FIX_LEN, 0);

	TCHECK_EQ(weft_close(m->pipe[0]), 0);
	for (int k = 0; k < 2; k++)
		TCHECK_EQ(weft_close(m->relay[k]), 0);
	for (int i = 0; i < PAIRS; i++)
		for (int k = 0; k < 2; k++)
			TCHECK_EQ(weft_close(m->pairs[i][k]), 0);
	TCHECK_EQ(weft_close(m->efd), 0);
	weft_sim_note(fnv(m->tr.text, m->tr.len));
	return NULL;
}

/* One run of the protocol under seed on a sim executor: the schedule's
 * hash (which has the trail's folded in). */
static uint64_t io_run(uint64_t seed, iomix *m)
{
	atomic_store(&tcheck_failures, 0);
	weft_exec_t *ex = sim_exec(seed);
	weft_exec_task_t h;
	assert_int_equal(weft_exec_spawn(ex, &h, io_main, m, NULL), 0);
	assert_int_equal(weft_exec_wait(ex, h, NULL), 0);
	weft_sim_info_t i = {.size = sizeof i};
	assert_int_equal(weft_exec_sim_info(ex, &i), 0);
	assert_int_equal(i.deadlocks, 0);
	assert_int_equal(weft_exec_destroy(ex), 0);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
	return i.hash;
}

static char fixture_path[128];

static void test_a_seed_repeats_its_io(void **state)
{
	(void)state;
	static iomix m1, m2;
	m1.path = m2.path = fixture_path;
	uint64_t h1 = io_run(0x10, &m1), h2 = io_run(0x10, &m2);
	assert_true(h1 == h2);
	assert_int_equal(m1.tr.len, m2.tr.len);
	assert_memory_equal(m1.tr.text, m2.tr.text, m1.tr.len);
	/* The protocol ran (the relay's reads are what the schedule cut). */
	assert_non_null(strstr(m1.tr.text, " relay "));
	assert_non_null(strstr(m1.tr.text, " eventfd 4 10"));
	assert_non_null(strstr(m1.tr.text, " step-read 40960 "));
}

static void test_seeds_give_different_io_schedules(void **state)
{
	(void)state;
	static iomix m;
	m.path = fixture_path;
	enum { N = 8 };
	uint64_t h[N];
	int distinct = 0;
	for (int i = 0; i < N; i++) {
		h[i] = io_run(0x100 + (uint64_t)i, &m);
		bool seen = false;
		for (int j = 0; j < i; j++)
			seen |= h[j] == h[i];
		distinct += !seen;
	}
	assert_true(distinct >= N - 2);
}

/* In a fresh process (this program again, run with WT_SIM_IO_CHILD): the
 * protocol under WEFT_SIM_SEED, its hash and the trail's on stdout. */
static int io_child(void)
{
	static iomix m;
	char path[128];
	fixture_make(path, sizeof path);
	m.path = path;
	uint64_t h = io_run(0 /* WEFT_SIM_SEED decides */, &m);
	unlink(path);
	printf("%016llx %016llx\n", (unsigned long long)h, (unsigned long long)fnv(m.tr.text, m.tr.len));
	return 0;
}

/* The environment of a child: ours without the sim's variables, plus
 * those given. */
static char **child_env(char **add, int nadd)
{
	int n = 0;
	while (environ[n])
		n++;
	char **e = calloc((size_t)(n + nadd + 1), sizeof *e);
	int k = 0;
	for (int i = 0; i < n; i++)
		if (strncmp(environ[i], "WEFT_SIM_", 9) != 0 && strncmp(environ[i], "WT_SIM_", 7) != 0)
			e[k++] = environ[i];
	for (int i = 0; i < nadd; i++)
		e[k++] = add[i];
	e[k] = NULL;
	return e;
}

/* Runs the child with seed and a padding variable of pad bytes (which
 * moves its stack and environment); what it printed in out. */
static void run_child(uint64_t seed, size_t pad, char *out, size_t len)
{
	char seedvar[64], *padvar = malloc(pad + 16);
	snprintf(seedvar, sizeof seedvar, "WEFT_SIM_SEED=%#llx", (unsigned long long)seed);
	strcpy(padvar, "WEFT_SIM_PAD=");
	memset(padvar + 13, 'x', pad);
	padvar[13 + pad] = 0;
	char *add[] = {"WT_SIM_IO_CHILD=1", seedvar, padvar};
	char **envp = child_env(add, 3);
	int st = wt_sim_rerun(envp, STDOUT_FILENO, out, len);
	assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	free(envp);
	free(padvar);
}

static void test_a_seed_repeats_its_io_across_processes(void **state)
{
	(void)state;
	static iomix m;
	m.path = fixture_path;
	const char *replay = getenv("WEFT_SIM_SEED");
	uint64_t seed = replay && *replay ? strtoull(replay, NULL, 0) : 0x5eed10;
	uint64_t h = io_run(seed, &m);
	char want[64], a[64], b[64];
	snprintf(want, sizeof want, "%016llx %016llx\n", (unsigned long long)h,
		 (unsigned long long)fnv(m.tr.text, m.tr.len));
	run_child(seed, 3, a, sizeof a);
	run_child(seed, 3001, b, sizeof b);
	assert_string_equal(a, want);
	assert_string_equal(b, want);
}

/* ------------------------------------------------------------ refusals */

static void *refused_in_task(void *a)
{
	(void)a;
	TCHECK_EQ(weft_socket(AF_INET, SOCK_STREAM, 0), -ENOTSUP);
	TCHECK_EQ(weft_socket(AF_INET6, SOCK_DGRAM, 0), -ENOTSUP);
	TCHECK_EQ(weft_tcp_listen("127.0.0.1", 0, 8), -ENOTSUP);
	TCHECK_EQ(weft_tcp_connect("127.0.0.1", 9, wt_hang_deadline()), -ENOTSUP);
	weft_op_t op = WEFT_OP_INIT;
	TCHECK_EQ(weft_tcp_connect_step("127.0.0.1", 9, wt_hang_deadline(), &op), -ENOTSUP);
	TCHECK_EQ(weft_udp_bind("127.0.0.1", 0), -ENOTSUP);
	struct addrinfo *res = (struct addrinfo *)1;
	TCHECK_EQ(weft_getaddrinfo("localhost", "80", NULL, &res), -ENOTSUP);
	TCHECK(res == NULL);
	res = (struct addrinfo *)1;
	TCHECK_EQ(weft_getaddrinfo_step("localhost", "80", NULL, &res, WEFT_NEVER, &op), -ENOTSUP);
	TCHECK(res == NULL);

	/* An AF_UNIX socket is fine; an inet address on it is not. */
	int u = weft_socket(AF_UNIX, SOCK_STREAM, 0);
	TCHECK(u >= 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	TCHECK_EQ(weft_bind_listen(u, (struct sockaddr *)&sin, sizeof sin, 4), -ENOTSUP);
	TCHECK_EQ(weft_connect(u, (struct sockaddr *)&sin, sizeof sin, wt_hang_deadline()), -ENOTSUP);
	TCHECK_EQ(weft_close(u), 0);

	/* Processes, signals. */
	weft_process_t *p = (weft_process_t *)1;
	const char *argv[] = {"true", NULL};
	TCHECK_EQ(weft_process_spawn(&p, argv, NULL), -ENOTSUP);
	TCHECK(p == NULL);
	weft_chan_t *ch;
	TCHECK_EQ(weft_chan_create(&ch, sizeof(int), 1), 0);
	int sig = SIGUSR1;
	TCHECK_EQ(weft_signal_notify(ch, &sig, 1), -ENOTSUP);
	weft_chan_release(ch);

	/* Descriptors made elsewhere: a TCP listener and a timerfd are
	 * refused where a sim task would wait on them; an eventfd is not. */
	int tcp = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	TCHECK(tcp >= 0);
	TCHECK_EQ(bind(tcp, (struct sockaddr *)&sin, sizeof sin), 0);
	TCHECK_EQ(listen(tcp, 4), 0);
	TCHECK_EQ(weft_accept(tcp, NULL, NULL, wt_hang_deadline()), -ENOTSUP);
	TCHECK_EQ(weft_fd_wait(tcp, POLLIN, wt_hang_deadline()), -ENOTSUP);
	close(tcp);
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	TCHECK(tfd >= 0);
	TCHECK_EQ(weft_fd_wait(tfd, POLLIN, wt_hang_deadline()), -ENOTSUP);
	close(tfd);
	int efd = eventfd(1, EFD_CLOEXEC);
	TCHECK_EQ(weft_fd_wait(efd, POLLIN, wt_hang_deadline()), POLLIN);
	TCHECK_EQ(weft_close(efd), 0);

	/* io_uring is never a sim's backend. */
	TCHECK(strcmp(weft_io_backend(NULL), "epoll") == 0);
	return NULL;
}

/* What a plain thread that owns no sim does is not refused, sim or no
 * sim elsewhere in the process. */
static void *no_sim_thread(void *a)
{
	int fd = weft_socket(AF_INET, SOCK_STREAM, 0);
	*(int *)a = fd;
	if (fd >= 0)
		weft_close(fd);
	return NULL;
}

static void test_the_world_outside_is_refused(void **state)
{
	(void)state;
	setenv("WEFT_IO", "uring", 1);
	atomic_store(&tcheck_failures, 0);
	in_sim(refused_in_task, NULL, 1);
	unsetenv("WEFT_IO");
	assert_int_equal(atomic_load(&tcheck_failures), 0);

	/* The owner thread: the same refusals, and no descriptor waits (a
	 * plain thread would block the only thread the sim has). */
	weft_exec_t *ex = sim_exec(2);
	assert_int_equal(weft_socket(AF_INET, SOCK_STREAM, 0), -ENOTSUP);
	assert_int_equal(weft_tcp_listen(NULL, 0, 4), -ENOTSUP);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	char c;
	assert_int_equal(weft_read(p[0], &c, 1, wt_hang_deadline()), -ENOTSUP);
	assert_int_equal(weft_fd_wait(p[0], POLLIN, wt_hang_deadline()), -ENOTSUP);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(weft_fd_wait(p[0], POLLIN, wt_hang_deadline()), POLLIN); /* ready: no wait */
	assert_int_equal(weft_read(p[0], &c, 1, wt_hang_deadline()), 1);
	int other = -1;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, no_sim_thread, &other), 0);
	pthread_join(th, NULL);
	assert_true(other >= 0);
	assert_int_equal(weft_exec_destroy(ex), 0);
	/* No sim any more: the same thread may wait again. */
	assert_int_equal(write(p[1], "y", 1), 1);
	assert_int_equal(weft_read(p[0], &c, 1, wt_hang_deadline()), 1);
	weft_close(p[0]);
	weft_close(p[1]);
}

/* ------------------------------------------------------------ deadlock */

static void *read_one(void *a)
{
	char c = 0;
	ssize_t n = weft_read(*(int *)a, &c, 1, WEFT_NEVER);
	return (void *)(intptr_t)(n == 1 ? c : n);
}

/* A task waits on a pipe nobody writes, and nothing else can run: the
 * owner's wait is a deadlock. A write by the owner makes the pipe ready,
 * and the next drive's poll finds it. */
static void test_a_wait_on_a_silent_descriptor_is_a_deadlock(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	weft_exec_t *ex = sim_exec(3);
	weft_exec_task_t h;
	assert_int_equal(weft_exec_spawn(ex, &h, read_one, &p[0], NULL), 0);
	void *r = NULL;
	assert_int_equal(weft_exec_wait(ex, h, &r), -EDEADLK);
	weft_sim_info_t i = {.size = sizeof i};
	assert_int_equal(weft_exec_sim_info(ex, &i), 0);
	assert_int_equal(i.deadlocks, 1);
	assert_int_equal(write(p[1], "z", 1), 1);
	assert_int_equal(weft_exec_wait(ex, h, &r), 0);
	assert_int_equal((intptr_t)r, 'z');
	assert_int_equal(weft_exec_destroy(ex), 0);
	weft_close(p[0]);
	weft_close(p[1]);
}

/* ------------------------------------------------------------ the pool, modelled */

typedef struct model {
	pthread_t thread;
	weft_task_t task;
	int runs;
} model;

static void *note_caller(void *a)
{
	model *m = a;
	m->thread = pthread_self();
	m->task = weft_self();
	m->runs++;
	return (void *)77;
}

typedef struct latency {
	model m;
	weft_time_t took;
	int r;
	void *res;
} latency;

static void *call_blocking(void *a)
{
	latency *l = a;
	weft_time_t t0 = weft_now();
	l->r = weft_blocking(note_caller, &l->m, &l->res);
	l->took = weft_now() - t0;
	weft_blocking_stats_t st;
	TCHECK_EQ(weft_blocking_stats(NULL, &st), 0);
	TCHECK_EQ(st.threads, 0); /* no pool thread ever started */
	return NULL;
}

/* fn runs at once, on the owner thread, in the calling task; the task then
 * waits a latency from the seed: less than a millisecond, rounded to the
 * timer's tick, and not the same for every seed. */
static void test_blocking_runs_inline_then_waits_a_seeded_latency(void **state)
{
	(void)state;
	weft_time_t took[12];
	int distinct = 0;
	for (int s = 0; s < 12; s++) {
		latency l = {0};
		atomic_store(&tcheck_failures, 0);
		in_sim(call_blocking, &l, 40 + (uint64_t)s);
		assert_int_equal(atomic_load(&tcheck_failures), 0);
		assert_int_equal(l.r, 0);
		assert_int_equal((intptr_t)l.res, 77);
		assert_int_equal(l.m.runs, 1);
		assert_true(pthread_equal(l.m.thread, pthread_self()));
		assert_true(l.m.task != 0);
		assert_true(l.took >= 0 && l.took < 2 * WEFT_MSEC + WEFT_MSEC / 10);
		took[s] = l.took;
		bool seen = false;
		for (int j = 0; j < s; j++)
			seen |= took[j] == took[s];
		distinct += !seen;
	}
	assert_true(distinct >= 2);
}

typedef struct cancel_during {
	model m;
	weft_sem_t in_fn;
	weft_task_t caller;
	int blocking, after, before;
	bool returned, during;
} cancel_during;

static void *release_then_note(void *a)
{
	cancel_during *c = a;
	weft_sem_release(&c->in_fn, 1); /* wakes the canceller; fn itself never waits */
	return note_caller(&c->m);
}

static void *blocking_caller(void *a)
{
	cancel_during *c = a;
	c->blocking = weft_blocking(release_then_note, c, NULL);
	c->returned = true;
	c->after = weft_sleep(WEFT_SEC); /* the cancel shows at the next wait */
	return NULL;
}

static void *canceller(void *a)
{
	cancel_during *c = a;
	TCHECK_EQ(weft_sem_acquire(&c->in_fn), 0);
	c->during = !c->returned; /* fn has run; the caller waits out the latency */
	TCHECK_EQ(weft_cancel(c->caller), 0);
	return NULL;
}

static void *self_cancelled_blocking(void *a)
{
	cancel_during *c = a;
	weft_cancel(weft_self());
	c->before = weft_blocking(note_caller, &c->m, NULL);
	return NULL;
}

static void *cancel_main(void *a)
{
	cancel_during *c = a;
	weft_task_t k;
	TCHECK_EQ(weft_spawn(&k, canceller, c, NULL), 0);
	TCHECK_EQ(weft_spawn(&c->caller, blocking_caller, c, NULL), 0);
	TCHECK_EQ(weft_join(c->caller, NULL), 0);
	TCHECK_EQ(weft_join(k, NULL), 0);
	weft_task_t s;
	TCHECK_EQ(weft_spawn(&s, self_cancelled_blocking, c, NULL), 0);
	TCHECK_EQ(weft_join(s, NULL), 0);
	return NULL;
}

/* The rules of the real pool: a task cancelled before the call gets
 * -ECANCELED and fn never runs; one cancelled during it gets fn's result,
 * and the cancel at its next wait. */
static void test_blocking_keeps_its_cancellation_rules(void **state)
{
	(void)state;
	cancel_during c = {.in_fn = WEFT_SEM_INIT(0)};
	atomic_store(&tcheck_failures, 0);
	in_sim(cancel_main, &c, 5);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
	assert_true(c.during);
	assert_int_equal(c.blocking, 0);
	assert_int_equal(c.after, -ECANCELED);
	assert_int_equal(c.before, -ECANCELED);
	assert_int_equal(c.m.runs, 1); /* the first call's fn only */
}

typedef struct step_model {
	model m;
	weft_op_t op;
	void *res;
	int first, last, past;
} step_model;

static weft_step_t blocking_stepper(void *a, void **res)
{
	step_model *s = a;
	int r = weft_blocking_step(note_caller, &s->m, &s->res, WEFT_NEVER, &s->op);
	if (!s->first)
		s->first = r;
	if (r == -EINPROGRESS)
		return WEFT_STEP_PARKED;
	s->last = r;
	weft_op_t op2 = WEFT_OP_INIT;
	s->past = weft_blocking_step(note_caller, &s->m, NULL, 0, &op2); /* a past deadline: fn never runs */
	*res = NULL;
	return WEFT_STEP_DONE;
}

static void *step_main(void *a)
{
	weft_task_t t;
	TCHECK_EQ(weft_spawn_step(&t, blocking_stepper, a, NULL), 0);
	TCHECK_EQ(weft_join(t, NULL), 0);
	return NULL;
}

static void test_blocking_step_is_modelled_too(void **state)
{
	(void)state;
	step_model s = {.op = WEFT_OP_INIT};
	atomic_store(&tcheck_failures, 0);
	in_sim(step_main, &s, 6);
	assert_int_equal(atomic_load(&tcheck_failures), 0);
	assert_int_equal(s.first, -EINPROGRESS); /* fn ran; the latency is waited for */
	assert_int_equal(s.last, 0);
	assert_int_equal((intptr_t)s.res, 77);
	assert_int_equal(s.past, -ETIMEDOUT);
	assert_int_equal(s.m.runs, 1);
	assert_true(pthread_equal(s.m.thread, pthread_self()));
}

/* ------------------------------------------------------------ the server */

#define CLIENTS 4
#define ECHOES 3
#define ECHO_LEN 48

typedef struct srv {
	char path[64];
	_Atomic int live, max_live, echoed;
	uint64_t accepted;
	int served, stopped, clients_ok;
} srv;

static int srv_names;

static void echo(int fd, void *ctx)
{
	srv *s = ctx;
	int n = atomic_fetch_add(&s->live, 1) + 1;
	if (n > atomic_load(&s->max_live))
		atomic_store(&s->max_live, n);
	char buf[512];
	ssize_t r;
	while ((r = weft_read(fd, buf, sizeof buf, wt_hang_deadline())) > 0)
		if (weft_write_all(fd, buf, (size_t)r, wt_hang_deadline(), NULL) != r)
			break;
	atomic_fetch_sub(&s->live, 1);
}

typedef struct client_arg {
	srv *s;
	int i;
} client_arg;

static void *client(void *a)
{
	client_arg *c = a;
	int fd = weft_unix_connect(c->s->path, wt_hang_deadline());
	TCHECK(fd >= 0);
	if (fd < 0)
		return NULL;
	int ok = 0;
	for (int k = 0; k < ECHOES; k++) {
		unsigned char out[ECHO_LEN], in[ECHO_LEN];
		for (int j = 0; j < ECHO_LEN; j++)
			out[j] = (unsigned char)(c->i * 31 + k * 7 + j);
		if (weft_write_all(fd, out, ECHO_LEN, wt_hang_deadline(), NULL) != ECHO_LEN ||
		    weft_read_full(fd, in, ECHO_LEN, wt_hang_deadline(), NULL) != ECHO_LEN || memcmp(in, out, ECHO_LEN))
			break;
		ok++;
		atomic_fetch_add(&c->s->echoed, 1);
	}
	TCHECK_EQ(ok, ECHOES);
	weft_close(fd);
	return (void *)(intptr_t)ok;
}

static void *serve(void *a)
{
	return (void *)(intptr_t)weft_server_serve(a);
}

/* The server helper on a weft executor over the sim (DETERMINISTIC): an
 * abstract AF_UNIX listener, clients beyond the connection limit waiting
 * in its backlog, a graceful stop. */
static void *server_main(void *a)
{
	srv *s = a;
	memset(s, 0, sizeof *s);
	snprintf(s->path, sizeof s->path, "@weft-sim-%d-%d", (int)getpid(), srv_names++);
	weft_exec_t *ex;
	TCHECK_EQ(weft_exec_create_runtime(&ex, NULL), 0);
	TCHECK(weft_exec_caps(ex) & WEFT_EXEC_CAP_DETERMINISTIC);
	int lfd = weft_unix_listen(s->path, 16);
	TCHECK(lfd >= 0);
	weft_server_t *sv;
	weft_server_opts_t o = {.max_conns = 2, .exec = ex};
	TCHECK_EQ(weft_server_create(&sv, lfd, echo, s, &o), 0);
	weft_task_t st, ct[CLIENTS];
	TCHECK_EQ(weft_spawn(&st, serve, sv, &(weft_spawn_opts_t){.name = "serve"}), 0);
	client_arg ca[CLIENTS];
	for (int i = 0; i < CLIENTS; i++) {
		ca[i] = (client_arg){s, i};
		TCHECK_EQ(weft_spawn(&ct[i], client, &ca[i], &(weft_spawn_opts_t){.name = "client"}), 0);
	}
	for (int i = 0; i < CLIENTS; i++) {
		void *r = NULL;
		TCHECK_EQ(weft_join(ct[i], &r), 0);
		s->clients_ok += (intptr_t)r == ECHOES;
	}
	s->stopped = weft_server_stop(sv, wt_hang_deadline());
	void *r = NULL;
	TCHECK_EQ(weft_join(st, &r), 0);
	s->served = (int)(intptr_t)r;
	s->accepted = weft_server_accepted(sv);
	TCHECK_EQ(weft_server_destroy(sv), 0);
	TCHECK_EQ(weft_exec_destroy(ex), 0);
	return NULL;
}

static void server_check(void *a)
{
	srv *s = a;
	TCHECK_EQ(s->clients_ok, CLIENTS);
	TCHECK_EQ(atomic_load(&s->echoed), CLIENTS * ECHOES);
	TCHECK_EQ(s->accepted, CLIENTS);
	TCHECK(atomic_load(&s->max_live) >= 1 && atomic_load(&s->max_live) <= 2);
	TCHECK_EQ(atomic_load(&s->live), 0);
	TCHECK_EQ(s->stopped, 0);
	TCHECK_EQ(s->served, 0);
}

static void test_the_server_sim(void **state)
{
	(void)state;
	static srv s;
	int before = wt_fd_count();
	wt_sim_sweep("server_unix", server_main, server_check, &s, WT_SIZE3(100, 30, 5));
	assert_int_equal(wt_fd_count(), before);
}

static int setup(void **state)
{
	(void)state;
	fixture_make(fixture_path, sizeof fixture_path);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(fixture_path);
	return 0;
}

int main(void)
{
	if (getenv("WT_SIM_IO_CHILD"))
		return io_child();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_seed_repeats_its_io),
		cmocka_unit_test(test_seeds_give_different_io_schedules),
		cmocka_unit_test(test_a_seed_repeats_its_io_across_processes),
		WT_IO_TEST(test_the_world_outside_is_refused),
		WT_IO_TEST(test_a_wait_on_a_silent_descriptor_is_a_deadlock),
		cmocka_unit_test(test_blocking_runs_inline_then_waits_a_seeded_latency),
		cmocka_unit_test(test_blocking_keeps_its_cancellation_rules),
		cmocka_unit_test(test_blocking_step_is_modelled_too),
		cmocka_unit_test(test_the_server_sim),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
