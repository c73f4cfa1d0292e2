/* Load client for the TCP echo benchmark (bench/echo.py compiles and runs it).
 *
 * N connections to 127.0.0.1:PORT each ping-pong one M-byte message at a
 * time: send it, read back exactly M bytes, compare them with what was sent,
 * repeat. One thread, epoll, non-blocking sockets: written in C so the client
 * costs far less per message than any Python server, and the server's core is
 * the bottleneck being measured.
 *
 * After --warmup seconds it prints "start", after --duration more "end" (the
 * driver samples the server's CPU time when it reads those lines), then one
 * JSON line. Exit status: 0 ok, 1 some echoed bytes differed, 2 error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Message k of a connection is PATTERN + (k + conn) % SHIFTS, so consecutive
 * messages differ: an echo of a stale or duplicated message is caught too. */
#define SHIFTS 251

struct conn {
    int fd;
    int want_out;     /* EPOLLOUT registered: the last send was partial */
    uint64_t seq;     /* messages completed on this connection */
    size_t sent, got; /* bytes of the current message */
    unsigned char *in;
};

static unsigned char *pattern;
static size_t size = 64;
static uint64_t completed, mismatches;
static int epfd;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static const unsigned char *message(const struct conn *c, size_t index) {
    return pattern + (c->seq + index) % SHIFTS;
}

static void watch(struct conn *c, size_t index, int out) {
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.u64 = index};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
    c->want_out = out;
}

static void send_rest(struct conn *c, size_t index) {
    while (c->sent < size) {
        ssize_t n = send(c->fd, message(c, index) + c->sent, size - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) die("send");
            if (!c->want_out) watch(c, index, 1);
            return;
        }
        c->sent += n;
    }
    if (c->want_out) watch(c, index, 0);
}

static void receive(struct conn *c, size_t index) {
    for (;;) {
        /* Never ask for more than the rest of the message: the server may
         * only echo what was sent, so extra bytes cannot be there. */
        ssize_t n = recv(c->fd, c->in + c->got, size - c->got, 0);
        if (n == 0) {
            fprintf(stderr, "connection %zu: server closed it\n", index);
            exit(2);
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) die("recv");
            return;
        }
        c->got += n;
        if (c->got < size) continue;
        if (memcmp(c->in, message(c, index), size) != 0) mismatches++;
        completed++;
        c->seq++;
        c->sent = c->got = 0;
        send_rest(c, index);
        return;
    }
}

static struct conn *connect_all(int port, size_t count) {
    struct conn *conns = calloc(count, sizeof *conns);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (size_t i = 0; i < count; i++) {
        struct conn *c = &conns[i];
        int one = 1;
        c->in = malloc(size);
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (c->fd < 0) die("socket");
        /* Blocking connect keeps setup simple; the listen backlog is 1024. */
        if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0) die("fcntl");
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
    }
    return conns;
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s --port P [--connections N] [--size BYTES] [--warmup S] [--duration S]\n",
            argv0);
    exit(2);
}

int main(int argc, char **argv) {
    static const struct option options[] = {
        {"port", required_argument, 0, 'p'},     {"connections", required_argument, 0, 'c'},
        {"size", required_argument, 0, 's'},     {"warmup", required_argument, 0, 'w'},
        {"duration", required_argument, 0, 'd'}, {0, 0, 0, 0},
    };
    int port = 0, opt;
    size_t count = 100;
    double warmup = 1, duration = 5;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'c': count = strtoul(optarg, NULL, 10); break;
        case 's': size = strtoul(optarg, NULL, 10); break;
        case 'w': warmup = atof(optarg); break;
        case 'd': duration = atof(optarg); break;
        default: usage(argv[0]);
        }
    }
    if (port <= 0 || count == 0 || size == 0 || duration <= 0) usage(argv[0]);

    pattern = malloc(size + SHIFTS);
    srand(1);
    for (size_t i = 0; i < size + SHIFTS; i++) pattern[i] = (unsigned char)rand();
    epfd = epoll_create1(0);
    if (epfd < 0) die("epoll_create1");
    struct conn *conns = connect_all(port, count);
    for (size_t i = 0; i < count; i++) send_rest(&conns[i], i);

    double start_at = now() + warmup, end_at = start_at + duration;
    double window_start = 0, window = 0;
    uint64_t at_start = 0;
    int measuring = 0;
    struct epoll_event events[256];
    for (;;) {
        double t = now();
        if (!measuring && t >= start_at) {
            measuring = 1;
            window_start = t;
            at_start = completed;
            puts("start");
            fflush(stdout);
        }
        if (measuring && t >= end_at) {
            window = t - window_start;
            puts("end");
            fflush(stdout);
            break;
        }
        /* Wake at the next window edge even if the server has stalled. */
        int timeout_ms = (int)(((measuring ? end_at : start_at) - t) * 1000) + 1;
        int n = epoll_wait(epfd, events, 256, timeout_ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            size_t index = events[i].data.u64;
            struct conn *c = &conns[index];
            if (events[i].events & EPOLLOUT) send_rest(c, index);
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) receive(c, index);
        }
    }
    printf("{\"messages\": %llu, \"seconds\": %.6f, \"mismatches\": %llu, "
           "\"connections\": %zu, \"size\": %zu}\n",
           (unsigned long long)(completed - at_start), window,
           (unsigned long long)mismatches, count, size);
    return mismatches ? 1 : 0;
}
