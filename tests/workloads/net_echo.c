/*
 * net_echo — an echo server thread and a client in one process, with byte
 * counts known by construction (tests/e2e/net.sh):
 *
 *   net_echo tcp|tcp6|unix|nonblock N SIZE [UNIX_PATH]
 *     N connections; each client sends SIZE bytes in 1000-byte pieces
 *     (send, write, writev, sendmsg in turn: N*SIZE/1000 send calls),
 *     shuts its write side, and reads the echo to EOF (recv, read, readv,
 *     recvmsg in turn).  nonblock: the connect is non-blocking (EINPROGRESS,
 *     poll, getsockopt(SO_ERROR)).  Prints "ok conns=N sent=S received=R".
 *   net_echo refused
 *     connects to a port nobody listens on: expects -1 and ECONNREFUSED.
 *   net_echo slow N MS [select|pselect|fcntl|ioctl]
 *     N round trips of one byte over TCP; the server sleeps MS ms before
 *     each answer, so the client blocks about N*MS ms in recv, always from
 *     wait_for_reply() (or in select / pselect on the socket, from
 *     wait_select() / wait_pselect(), then a recv that does not block).
 *     fcntl / ioctl: the client socket is made non-blocking first (fcntl
 *     F_SETFL; a recv must fail with EAGAIN), then blocking again (fcntl
 *     F_SETFL, or ioctl FIONBIO); the waits are the same.
 *     Prints "ok slow=N".
 *   net_echo get PORT PATH
 *     one HTTP/1.0 GET of PATH from 127.0.0.1:PORT, connected in
 *     http_get(); prints the status line.
 *   net_echo dns N
 *     N getaddrinfo("localhost", "80") (resolved from /etc/hosts), then one
 *     for an unknown service name: expects EAI_SERVICE.
 *
 * Every call's result and errno are checked against what the C library
 * defines (errno untouched by a successful call, EAGAIN from an empty
 * non-blocking socket), so an agent that changed either makes it fail.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define PIECE 1000

static int family, nconn;
static struct sockaddr_storage addr;
static socklen_t addr_len;
static int lfd;

static void die(const char *what)
{
    fprintf(stderr, "net_echo: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void *server(void *arg)
{
    char buf[4096];
    for (int i = 0; i < nconn; i++) {
        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        ssize_t n;
        if (c < 0)
            die("accept4");
        while ((n = recv(c, buf, sizeof(buf), 0)) > 0)
            for (ssize_t off = 0; off < n;) {
                ssize_t w = send(c, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
                if (w <= 0)
                    die("server send");
                off += w;
            }
        if (n < 0)
            die("server recv");
        if (close(c) != 0)
            die("server close");
    }
    return NULL;
}

static ssize_t put(int fd, const char *p, size_t n, int k)
{
    struct iovec v[2] = {{(void *)p, n / 2}, {(void *)(p + n / 2), n - n / 2}};
    struct msghdr mh = {.msg_iov = v, .msg_iovlen = 2};
    switch (k % 4) {
    case 0:
        return send(fd, p, n, 0);
    case 1:
        return write(fd, p, n);
    case 2:
        return writev(fd, v, 2);
    default:
        return sendmsg(fd, &mh, 0);
    }
}

static ssize_t get(int fd, char *p, size_t n, int k)
{
    struct iovec v[2] = {{p, n / 2}, {p + n / 2, n - n / 2}};
    struct msghdr mh = {.msg_iov = v, .msg_iovlen = 2};
    switch (k % 4) {
    case 0:
        return recv(fd, p, n, 0);
    case 1:
        return read(fd, p, n);
    case 2:
        return readv(fd, v, 2);
    default:
        return recvmsg(fd, &mh, 0);
    }
}

static int client_connect(int nonblock)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        die("socket");
    errno = 0;
    int r = connect(fd, (struct sockaddr *)&addr, addr_len);
    if (!nonblock) {
        if (r != 0)
            die("connect");
        return fd;
    }
    if (r == 0)
        return fd; /* loopback may connect at once */
    if (r != -1 || errno != EINPROGRESS)
        die("non-blocking connect: expected EINPROGRESS");
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    if (poll(&p, 1, 5000) != 1)
        die("poll");
    int err = -1;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
        die("SO_ERROR");
    /* Empty socket, non-blocking: -1 EAGAIN, exactly as without the agent. */
    char c;
    errno = 0;
    if (recv(fd, &c, 1, 0) != -1 || (errno != EAGAIN && errno != EWOULDBLOCK))
        die("expected EAGAIN");
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
        die("fcntl");
    return fd;
}

static int refused(void)
{
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(in);
    /* A port that was free a moment ago and has no listener. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&in, sizeof(in)) != 0 ||
        getsockname(s, (struct sockaddr *)&in, &len) != 0)
        die("bind");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    errno = 0;
    int r = connect(fd, (struct sockaddr *)&in, sizeof(in));
    int e = errno;
    close(fd);
    close(s);
    printf("refused rc=%d errno=%s\n", r, e == ECONNREFUSED ? "ECONNREFUSED" : strerror(e));
    return r == -1 && e == ECONNREFUSED ? 0 : 1;
}

static int slow_ms;

static void *slow_server(void *arg)
{
    char c;
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        die("accept");
    while (recv(fd, &c, 1, 0) == 1) {
        usleep((useconds_t)slow_ms * 1000);
        if (send(fd, &c, 1, 0) != 1)
            die("slow send");
    }
    close(fd);
    return NULL;
}

/* Where the client waits: the frame wall.folded must show. */
static __attribute__((noinline)) ssize_t wait_for_reply(int fd, char *c)
{
    ssize_t r = recv(fd, c, 1, 0);
    __asm__ volatile("" ::: "memory"); /* not a tail call: keep this frame */
    return r;
}

/* The same wait in select / pselect (1 ready fd, errno untouched), then
 * the byte that is there. */
static __attribute__((noinline)) ssize_t wait_select(int fd, char *c)
{
    fd_set rs;
    struct timeval tv = {10, 0};
    FD_ZERO(&rs);
    FD_SET(fd, &rs);
    errno = 0;
    if (select(fd + 1, &rs, NULL, NULL, &tv) != 1 || !FD_ISSET(fd, &rs) || errno != 0)
        die("select");
    return recv(fd, c, 1, 0);
}

static __attribute__((noinline)) ssize_t wait_pselect(int fd, char *c)
{
    fd_set rs;
    struct timespec ts = {10, 0};
    FD_ZERO(&rs);
    FD_SET(fd, &rs);
    errno = 0;
    if (pselect(fd + 1, &rs, NULL, NULL, &ts, NULL) != 1 || !FD_ISSET(fd, &rs) || errno != 0)
        die("pselect");
    return recv(fd, c, 1, 0);
}

static ssize_t (*waiter)(int, char *) = wait_for_reply;
static const char *flip; /* "fcntl" or "ioctl": O_NONBLOCK on, then off */

static void set_nonblock(int fd, int on)
{
    if (!on && !strcmp(flip, "ioctl")) {
        if (ioctl(fd, FIONBIO, &on) != 0)
            die("ioctl FIONBIO");
        return;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) != 0)
        die("fcntl F_SETFL");
}

static int slow(int n)
{
    struct sockaddr_in *in = (void *)&addr;
    pthread_t th;
    char c = 'x';
    family = AF_INET;
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr_len = sizeof(*in);
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, addr_len) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&addr, &addr_len) != 0)
        die("listen");
    pthread_create(&th, NULL, slow_server, NULL);
    int fd = client_connect(0);
    if (flip) {
        set_nonblock(fd, 1);
        errno = 0;
        if (recv(fd, &c, 1, 0) != -1 || errno != EAGAIN)
            die("non-blocking recv");
        set_nonblock(fd, 0);
    }
    for (int i = 0; i < n; i++)
        if (send(fd, &c, 1, 0) != 1 || waiter(fd, &c) != 1)
            die("slow round trip");
    close(fd);
    pthread_join(th, NULL);
    close(lfd);
    printf("ok slow=%d\n", n);
    return 0;
}

static int dns(int n)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    for (int i = 0; i < n; i++) {
        int r = getaddrinfo("localhost", "80", &hints, &res);
        if (r != 0) {
            fprintf(stderr, "net_echo: getaddrinfo localhost: %s\n", gai_strerror(r));
            return 1;
        }
        freeaddrinfo(res);
    }
    int r = getaddrinfo("localhost", "no-such-service-perfagent", &hints, &res);
    printf("dns ok=%d last=%s\n", n, r == EAI_SERVICE ? "EAI_SERVICE" : gai_strerror(r));
    return r == EAI_SERVICE ? 0 : 1;
}

static __attribute__((noinline)) int http_get(int port, const char *path)
{
    struct sockaddr_in *in = (void *)&addr;
    char req[512], resp[4096];
    size_t got = 0;
    ssize_t r;
    family = AF_INET;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr_len = sizeof(*in);
    int fd = client_connect(0);
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
    if (send(fd, req, (size_t)n, 0) != n)
        die("get send");
    while ((r = recv(fd, resp + got, sizeof(resp) - 1 - got, 0)) > 0)
        got += (size_t)r;
    close(fd);
    resp[got] = 0;
    resp[strcspn(resp, "\r\n")] = 0;
    printf("%s\n", resp);
    __asm__ volatile("" ::: "memory");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "get"))
        return http_get(atoi(argv[2]), argv[3]);
    if (argc >= 3 && !strcmp(argv[1], "dns"))
        return dns(atoi(argv[2]));
    if (argc >= 2 && !strcmp(argv[1], "refused"))
        return refused();
    if (argc >= 4 && !strcmp(argv[1], "slow")) {
        slow_ms = atoi(argv[3]);
        if (argc >= 5 && (!strcmp(argv[4], "fcntl") || !strcmp(argv[4], "ioctl")))
            flip = argv[4];
        else if (argc >= 5)
            waiter = !strcmp(argv[4], "select") ? wait_select : wait_pselect;
        return slow(atoi(argv[2]));
    }
    if (argc < 4) {
        fprintf(stderr, "usage: net_echo tcp|tcp6|unix|nonblock N SIZE [PATH] | refused\n");
        return 2;
    }
    const char *mode = argv[1];
    nconn = atoi(argv[2]);
    size_t size = (size_t)atol(argv[3]);
    int nonblock = !strcmp(mode, "nonblock");
    memset(&addr, 0, sizeof(addr));
    if (!strcmp(mode, "unix")) {
        struct sockaddr_un *un = (void *)&addr;
        family = AF_UNIX;
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof(un->sun_path), "%s", argc > 4 ? argv[4] : "/tmp/net_echo.sock");
        unlink(un->sun_path);
        addr_len = sizeof(*un);
    } else if (!strcmp(mode, "tcp6")) {
        struct sockaddr_in6 *in6 = (void *)&addr;
        family = AF_INET6;
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_loopback;
        addr_len = sizeof(*in6);
    } else {
        struct sockaddr_in *in = (void *)&addr;
        family = AF_INET;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr_len = sizeof(*in);
    }
    lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, addr_len) != 0 || listen(lfd, 16) != 0)
        die("listen");
    if (family != AF_UNIX && getsockname(lfd, (struct sockaddr *)&addr, &addr_len) != 0)
        die("getsockname");
    pthread_t th;
    pthread_create(&th, NULL, server, NULL);

    char *out = malloc(size + 1), *in = malloc(size + PIECE);
    uint64_t sent = 0, received = 0;
    for (size_t i = 0; i < size; i++)
        out[i] = (char)('a' + i % 26);
    for (int c = 0; c < nconn; c++) {
        int fd = client_connect(nonblock);
        int k = 0;
        for (size_t off = 0; off < size; off += PIECE, k++) {
            size_t n = size - off < PIECE ? size - off : PIECE;
            errno = 4321; /* a successful call leaves errno alone */
            ssize_t w = put(fd, out + off, n, k);
            if (w != (ssize_t)n || errno != 4321)
                die("client send");
            sent += (uint64_t)w;
        }
        if (shutdown(fd, SHUT_WR) != 0)
            die("shutdown");
        size_t got = 0;
        ssize_t r;
        k = 0;
        while ((r = get(fd, in + got, size + PIECE - got < PIECE ? size + PIECE - got : PIECE, k++)) > 0)
            got += (size_t)r;
        if (r < 0 || got != size || memcmp(in, out, size) != 0)
            die("client echo");
        received += got;
        if (close(fd) != 0)
            die("client close");
    }
    pthread_join(th, NULL);
    close(lfd);
    if (family == AF_UNIX)
        unlink(((struct sockaddr_un *)&addr)->sun_path);
    printf("ok conns=%d sent=%llu received=%llu\n", nconn, (unsigned long long)sent,
           (unsigned long long)received);
    free(out);
    free(in);
    return 0;
}
