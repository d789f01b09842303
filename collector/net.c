/*
 * net — listen/accept helpers for the collector's unix and tcp listeners.
 *
 * Socket helpers only: no event loop, no sessions, no logging.  Errors are
 * returned as -errno with one line of text in the caller's buffer, the way
 * redis anet.c does it.
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int net_error(char *err, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Formats the message into err (NET_ERR_LEN) and returns rc (a -errno). */
static int net_error(char *err, int rc, const char *fmt, ...)
{
    va_list ap;
    if (err) {
        va_start(ap, fmt);
        vsnprintf(err, NET_ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---------------------------------------------------------------------------
 * unix:PATH
 * ------------------------------------------------------------------------- */

/* Is anybody accepting on the socket file at `path`?  A collector that died
 * without unlinking leaves a socket file behind; connect(2) on it fails with
 * ECONNREFUSED, and only then is it safe to remove. */
static int unix_in_use(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), rc;
    if (fd < 0)
        return -errno;
    rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ? 1 : -errno;
    close(fd);
    if (rc == -ECONNREFUSED)
        return 0;
    return rc == -EAGAIN ? 1 : rc; /* EAGAIN: alive, its backlog is just full */
}

static int listen_unix(char *err, const char *path, net_listener_t *l)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    mode_t old_mask;
    int fd = -1, rc;

    if (!*path)
        return net_error(err, -EINVAL, "unix: needs a socket path");
    if (strlen(path) >= sizeof(sa.sun_path))
        return net_error(err, -ENAMETOOLONG, "%s: socket path longer than %zu bytes", path,
                         sizeof(sa.sun_path) - 1);
    memcpy(sa.sun_path, path, strlen(path) + 1);

    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return net_error(err, -EEXIST, "%s exists and is not a socket; not replacing it", path);
        rc = unix_in_use(&sa);
        if (rc == 1)
            return net_error(err, -EADDRINUSE, "%s: another collector is listening there", path);
        if (rc < 0)
            return net_error(err, rc, "%s: %s", path, strerror(-rc));
        if (unlink(path) < 0 && errno != ENOENT)
            return net_error(err, -errno, "unlink stale socket %s: %s", path, strerror(errno));
    }

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return net_error(err, -errno, "socket(AF_UNIX): %s", strerror(errno));
    /* unix(7): the socket file is created with the process umask applied, and
     * connecting needs write permission on it.  Creating it under umask 0177
     * makes it 0600 from the first instant, with no chmod race.  bind(2)
     * never replaces an existing file (EADDRINUSE), so a file that appeared
     * after the lstat above is safe too. */
    old_mask = umask(0177);
    rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old_mask);
    if (rc < 0) {
        rc = net_error(err, -errno, "bind %s: %s", path, strerror(errno));
        goto fail;
    }
    if (stat(path, &st) < 0 || listen(fd, SOMAXCONN) < 0) {
        rc = net_error(err, -errno, "listen %s: %s", path, strerror(errno));
        unlink(path);
        goto fail;
    }
    l->fd = fd;
    l->is_unix = 1;
    l->loopback = 1;
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    memcpy(l->path, path, strlen(path) + 1);
    snprintf(l->addr, sizeof(l->addr), "unix:%s", path);
    return 0;
fail:
    close(fd);
    return rc;
}

/* ---------------------------------------------------------------------------
 * tcp:HOST:PORT
 * ------------------------------------------------------------------------- */

/* "tcp:1.2.3.4:5" / "tcp:[::1]:5" for a socket address. */
static void sockaddr_name(const struct sockaddr *sa, char *out, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(out, len, "tcp:%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(out, len, "tcp:[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(out, len, "tcp:?");
    }
}

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return 0;
}

/* Splits "HOST:PORT" or "[V6]:PORT" in place; HOST may be empty. */
static int split_host_port(char *s, char **host, char **port)
{
    char *colon;
    if (*s == '[') {
        char *close_br = strchr(s, ']');
        if (!close_br || close_br[1] != ':')
            return -EINVAL;
        *close_br = '\0';
        *host = s + 1;
        *port = close_br + 2;
        return 0;
    }
    colon = strrchr(s, ':');
    if (!colon)
        return -EINVAL;
    *colon = '\0';
    *host = s;
    *port = colon + 1;
    return 0;
}

static int listen_tcp(char *err, const char *hostport, net_listener_t *l)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL, *ai;
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    char buf[256], *host, *port, *end;
    int fd = -1, rc, one = 1;
    unsigned long pnum;

    if (strlen(hostport) >= sizeof(buf))
        return net_error(err, -EINVAL, "tcp:%s: address too long", hostport);
    strcpy(buf, hostport);
    if (split_host_port(buf, &host, &port) < 0)
        return net_error(err, -EINVAL, "tcp:%s: expected tcp:HOST:PORT", hostport);
    pnum = strtoul(port, &end, 10);
    if (!*port || *end || pnum > 65535)
        return net_error(err, -EINVAL, "tcp:%s: bad port '%s'", hostport, port);
    /* No host means loopback, not INADDR_ANY: the collector has no
     * authentication on tcp, so exposing it is an explicit choice. */
    if (!*host)
        host = "127.0.0.1";
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0)
        return net_error(err, -EADDRNOTAVAIL, "tcp:%s: %s", hostport, gai_strerror(rc));

    rc = net_error(err, -EADDRNOTAVAIL, "tcp:%s: no usable address", hostport);
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = net_error(err, -errno, "socket: %s", strerror(errno));
            continue;
        }
        /* A restarted collector must be able to rebind while old connections
         * sit in TIME_WAIT (socket(7) SO_REUSEADDR). */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
            break;
        rc = net_error(err, -errno, "bind tcp:%s: %s", hostport, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return rc;
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) < 0) {
        rc = net_error(err, -errno, "getsockname: %s", strerror(errno));
        close(fd);
        return rc;
    }
    l->fd = fd;
    l->is_unix = 0;
    l->loopback = is_loopback((struct sockaddr *)&bound);
    sockaddr_name((struct sockaddr *)&bound, l->addr, sizeof(l->addr));
    return 0;
}

/* ---------------------------------------------------------------------------
 * public
 * ------------------------------------------------------------------------- */

int net_listen(char *err, const char *spec, net_listener_t *l)
{
    memset(l, 0, sizeof(*l));
    l->fd = -1;
    if (!strncmp(spec, "unix:", 5))
        return listen_unix(err, spec + 5, l);
    if (!strncmp(spec, "tcp:", 4))
        return listen_tcp(err, spec + 4, l);
    return net_error(err, -EINVAL, "'%s': expected unix:PATH or tcp:HOST:PORT", spec);
}

void net_unlisten(net_listener_t *l)
{
    struct stat st;
    if (l->fd < 0)
        return;
    close(l->fd);
    l->fd = -1;
    /* Only remove the file if it is still ours: a second collector may have
     * replaced a socket it found stale (or an admin moved things around). */
    if (l->is_unix && lstat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
        unlink(l->path);
}

int net_accept(char *err, const net_listener_t *l, char *peer, size_t peerlen, uid_t *uid)
{
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    int fd;

    do
        fd = accept4(l->fd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return -EAGAIN;
        return net_error(err, -errno, "accept: %s", strerror(errno));
    }
    *uid = (uid_t)-1;
    if (l->is_unix) {
        /* unix(7) SO_PEERCRED: the credentials the peer had when it called
         * connect(2); the pid names the agent in every log line. */
        struct ucred cred;
        socklen_t clen = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
            int rc = net_error(err, -errno, "SO_PEERCRED: %s", strerror(errno));
            close(fd);
            return rc;
        }
        *uid = cred.uid;
        snprintf(peer, peerlen, "unix:pid=%d", (int)cred.pid);
    } else {
        sockaddr_name((struct sockaddr *)&sa, peer, peerlen);
    }
    return fd;
}
