// The echo workload's floor on io_uring: what the cheapest io_uring server
// this machine can run costs, next to echo_floor.c's epoll one. Not run by
// bench/compare; bench/results/echo.notes.md reports measurements with it.
// Usage: echo_floor_uring [port=0]   (prints "port=P pid=PID" like the peers,
// serves until killed).
//
// One thread and one ring (SINGLE_ISSUER | DEFER_TASKRUN: completions are
// produced only when this thread asks for them), no runtime, no tasks:
// - a multishot accept;
// - per connection one multishot receive into a ring of provided buffers
//   (buffer group 0, NBUF buffers of BUF_SIZE bytes): the data arrives with
//   its completion, no recv(2);
// - the echo is a send request straight from that buffer (no copy), and the
//   buffer goes back to the ring when the send completes;
// - one io_uring_enter per loop submits every send and reaps what came.
// A send that does not take everything, a receive error, or the end of the
// stream closes the connection (the echo workload causes none of these; the
// load generator reports a close as a failure). A receive that ends (the
// buffers ran out, the completion queue overflowed) is armed again.
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NBUF 4096 // a power of two
#define BUF_SIZE 2048

enum { T_ACCEPT = 1, T_RECV, T_SEND };
// user_data: kind << 56 | buffer id << 36 | length << 24 | fd (fd < 2^24,
// length <= BUF_SIZE < 2^12)
#define UD(kind, bid, len, fd) \
    ((uint64_t)(kind) << 56 | (uint64_t)(bid) << 36 | (uint64_t)(len) << 24 | (uint32_t)(fd))

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *bufs;
static int recycled; // buffers added to the ring since the last advance

static void die(const char *what, int err) {
    fprintf(stderr, "FAIL: echo_floor_uring: %s: %s\n", what, strerror(err));
    exit(1);
}

static struct io_uring_sqe *sqe(void) {
    struct io_uring_sqe *s = io_uring_get_sqe(&ring);
    if (!s) {
        io_uring_submit(&ring);
        s = io_uring_get_sqe(&ring);
        if (!s) die("io_uring_get_sqe", EBUSY);
    }
    return s;
}

static void recv_arm(int fd) {
    struct io_uring_sqe *s = sqe();
    io_uring_prep_recv_multishot(s, fd, NULL, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = 0;
    io_uring_sqe_set_data64(s, UD(T_RECV, 0, 0, fd));
}

static void recycle(int bid) {
    io_uring_buf_ring_add(br, bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(NBUF), recycled++);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int one = 1;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0) die("socket", errno);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0) die("bind", errno);
    if (listen(lfd, 4096) < 0) die("listen", errno);
    socklen_t alen = sizeof a;
    if (getsockname(lfd, (struct sockaddr *)&a, &alen) < 0) die("getsockname", errno);

    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                                         IORING_SETUP_CQSIZE,
                                .cq_entries = 8192};
    int r = io_uring_queue_init_params(1024, &ring, &p);
    if (r < 0) die("io_uring_queue_init_params", -r);
    if (posix_memalign((void **)&br, 4096, NBUF * sizeof(struct io_uring_buf)) ||
        !(bufs = malloc((size_t)NBUF * BUF_SIZE)))
        die("malloc", ENOMEM);
    struct io_uring_buf_reg reg = {.ring_addr = (unsigned long)br, .ring_entries = NBUF, .bgid = 0};
    if ((r = io_uring_register_buf_ring(&ring, &reg, 0)) < 0) die("io_uring_register_buf_ring", -r);
    io_uring_buf_ring_init(br);
    for (int i = 0; i < NBUF; i++) recycle(i);
    io_uring_buf_ring_advance(br, recycled);
    recycled = 0;

    printf("port=%d pid=%d\n", ntohs(a.sin_port), (int)getpid());
    fflush(stdout);

    struct io_uring_sqe *s = sqe();
    io_uring_prep_multishot_accept(s, lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, UD(T_ACCEPT, 0, 0, lfd));
    for (;;) {
        r = io_uring_submit_and_wait(&ring, 1);
        if (r < 0 && r != -EINTR) die("io_uring_submit_and_wait", -r);
        struct io_uring_cqe *c;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&ring, head, c) {
            n++;
            uint64_t ud = io_uring_cqe_get_data64(c);
            int kind = (int)(ud >> 56), fd = (int)(ud & 0xffffff);
            bool more = c->flags & IORING_CQE_F_MORE;
            if (kind == T_ACCEPT) {
                if (c->res >= 0) {
                    setsockopt(c->res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    recv_arm(c->res);
                }
                if (!more) die("multishot accept ended", c->res < 0 ? -c->res : EINVAL);
            } else if (kind == T_RECV) {
                if (c->res > 0 && (c->flags & IORING_CQE_F_BUFFER)) {
                    int bid = (int)(c->flags >> IORING_CQE_BUFFER_SHIFT);
                    s = sqe();
                    io_uring_prep_send(s, fd, bufs + (size_t)bid * BUF_SIZE, (size_t)c->res, MSG_NOSIGNAL);
                    io_uring_sqe_set_data64(s, UD(T_SEND, bid, c->res, fd));
                    if (!more) recv_arm(fd);
                } else if (c->res == -ENOBUFS) {
                    recv_arm(fd);
                } else if (!more) {
                    close(fd); // end of stream or an error
                }
            } else if (kind == T_SEND) {
                recycle((int)((ud >> 36) & 0xffff));
                if (c->res != (int)((ud >> 24) & 0xfff)) close(fd); // short send or error
            }
        }
        io_uring_cq_advance(&ring, n);
        if (recycled) {
            io_uring_buf_ring_advance(br, recycled);
            recycled = 0;
        }
    }
}
