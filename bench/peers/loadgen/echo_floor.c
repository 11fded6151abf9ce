// The echo workload's floor: the cheapest server this machine can run, to show
// what the load generator and the kernel allow before any runtime is involved.
// Usage: echo_floor [port=0]   (prints "port=P pid=PID" like the peers, serves
// until killed).
//
// One thread, one edge-triggered epoll set, no runtime, no tasks: on readiness
// it receives and sends back at once (a short read means the TCP receive queue
// is empty, so it stops there; a send that does not take everything - the peer's
// window full, which the echo workload never causes - drops the connection,
// which the load generator reports as a failure). Not a peer to beat: a server
// that owns one core and never hands work between threads; bench/compare shows
// it as the `floor` row of the echo table and leaves it out of "best peer".
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what) {
    fprintf(stderr, "FAIL: echo_floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int one = 1;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) die("socket");
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(lfd, 4096) < 0) die("listen");
    socklen_t alen = sizeof a;
    if (getsockname(lfd, (struct sockaddr *)&a, &alen) < 0) die("getsockname");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) die("epoll_ctl");
    printf("port=%d pid=%d\n", ntohs(a.sin_port), (int)getpid());
    fflush(stdout);

    struct epoll_event evs[256];
    char buf[4096];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event ce = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.fd = c};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce) < 0) close(c);
                }
                if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) die("accept4");
                continue;
            }
            for (;;) {
                ssize_t k = recv(fd, buf, sizeof buf, 0);
                if (k > 0) {
                    if (send(fd, buf, (size_t)k, MSG_NOSIGNAL) != k) {
                        close(fd);
                        break;
                    }
                    if (k < (ssize_t)sizeof buf) break; // the receive queue is empty
                    continue;
                }
                if (k < 0 && errno == EINTR) continue;
                if (k == 0 || errno != EAGAIN) close(fd); // EOF or error (close leaves the epoll set)
                break;
            }
        }
    }
}
