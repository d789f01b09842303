/*
 * transport.c — where the stream goes: a file, or a collector over a unix or
 * TCP socket.  Used only by the sender thread (nothing here runs on a host
 * thread), always through raw syscalls so that a later socket-tracing hook
 * never sees the agent's own traffic.
 *
 * A collector that is slow makes the sender wait at most SEND_TIMEOUT_MS per
 * write (SO_SNDTIMEO, socket(7)); meanwhile host threads keep writing to
 * their rings and drop rows when full: the host never waits.  A collector
 * that is gone (EPIPE/ECONNRESET, or a write timeout) is reconnected with
 * exponential backoff; every new connection starts a fresh stream.
 */
#include "internal.h"
#include "transport.h"

#include <arpa/inet.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define SEND_TIMEOUT_MS 2000
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000

static long sys_close(int fd)
{
    return syscall(SYS_close, fd);
}

/* The first stream of the first process owns the configured name and
 * truncates it (like perf record -o).  Every other stream (a fork child, an
 * exec'd program that has the same pid as the image before it, a restart
 * after a failed exec) must not overwrite anything: it takes the first free
 * name among PATH, PATH.1 ... PATH.99 (O_EXCL, open(2)).  A device or FIFO
 * is written as it is by every stream. */
static int open_file(pa_transport_t *t)
{
    static int opened_before;
    char path[sizeof(pa_cfg.out_path) + 8];
    long fd;
    if (pa_path_is_special(pa_cfg.out_path)) {
        /* /dev/null, a FIFO: every stream goes there as it is (O_EXCL would
         * refuse it, and "/dev/null.1" would be a regular file in /dev). */
        fd = syscall(SYS_openat, AT_FDCWD, pa_cfg.out_path, O_WRONLY | O_CLOEXEC);
    } else if (pa_output_first() && !opened_before) {
        fd = syscall(SYS_openat, AT_FDCWD, pa_cfg.out_path,
                     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    } else {
        fd = -1;
        errno = EEXIST;
        for (unsigned i = 0; i < 100 && fd < 0 && errno == EEXIST; i++) {
            char num[24], *p = path + pa_strlcpy(path, pa_cfg.out_path, sizeof(pa_cfg.out_path));
            if (i) {
                *p++ = '.';
                pa_u64toa(i, num);
                pa_strlcpy(p, num, sizeof(num));
            }
            fd = syscall(SYS_openat, AT_FDCWD, path,
                         O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
            if (fd >= 0)
                pa_strlcpy(pa_cfg.out_path, path, sizeof(pa_cfg.out_path));
        }
    }
    if (fd < 0)
        return -errno;
    opened_before = 1;
    t->fd = pa_fd_high((int)fd);
    return 0;
}

/* IPv4 dotted quad or "localhost"; name lookup would mean getaddrinfo, which
 * allocates and may load NSS modules from the sender thread. */
static int parse_ipv4(const char *h, struct in_addr *out)
{
    if (pa_streq(h, "localhost"))
        h = "127.0.0.1";
    return inet_pton(AF_INET, h, out) == 1 ? 0 : -EINVAL;
}

static int connect_socket(pa_transport_t *t)
{
    struct sockaddr_un un;
    struct sockaddr_in in;
    struct sockaddr *sa;
    socklen_t salen;
    long fd;
    int domain, err;
    struct timeval tv = {SEND_TIMEOUT_MS / 1000, (SEND_TIMEOUT_MS % 1000) * 1000};

    if (pa_cfg.out_kind == PA_OUT_UNIX) {
        __builtin_memset(&un, 0, sizeof(un));
        un.sun_family = AF_UNIX;
        if (pa_strlcpy(un.sun_path, pa_cfg.out_path, sizeof(un.sun_path)) >= sizeof(un.sun_path))
            return -ENAMETOOLONG;
        sa = (struct sockaddr *)&un;
        salen = sizeof(un);
        domain = AF_UNIX;
    } else {
        __builtin_memset(&in, 0, sizeof(in));
        in.sin_family = AF_INET;
        in.sin_port = htons((uint16_t)pa_cfg.tcp_port);
        if (parse_ipv4(pa_cfg.tcp_host, &in.sin_addr) < 0)
            return -EINVAL;
        sa = (struct sockaddr *)&in;
        salen = sizeof(in);
        domain = AF_INET;
    }
    fd = syscall(SYS_socket, domain, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (domain == AF_INET) {
        int one = 1;
        syscall(SYS_setsockopt, fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (syscall(SYS_connect, fd, sa, salen) < 0) {
        err = -errno;
        sys_close((int)fd);
        return err;
    }
    t->fd = pa_fd_high((int)fd);
    return 0;
}

int pa_transport_open(pa_transport_t *t)
{
    int r;
    t->fd = -1;
    if (pa_cfg.out_kind == PA_OUT_FILE) {
        r = open_file(t);
        if (r < 0 && !t->failed_logged) {
            t->failed_logged = 1;
            pa_log(PA_LOG_QUIET + 1, "cannot write ", pa_cfg.out_path,
                   ": recording off, the program runs on", (const char *)NULL);
        }
        if (r < 0)
            t->dead = 1; /* a file that can't be opened won't open later */
        return r;
    }
    r = connect_socket(t);
    if (r < 0) {
        if (!t->failed_logged) {
            t->failed_logged = 1;
            pa_log(PA_LOG_QUIET + 1, "cannot reach the collector at ", pa_cfg.out_spec,
                   "; retrying in the background, records are dropped meanwhile",
                   (const char *)NULL);
        }
        t->backoff_ms = t->backoff_ms ? t->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (t->backoff_ms > BACKOFF_MAX_MS)
            t->backoff_ms = BACKOFF_MAX_MS;
        t->retry_at_ns = pa_mono_ns() + (uint64_t)t->backoff_ms * 1000000ull;
        return r;
    }
    if (t->failed_logged)
        pa_log(PA_LOG_INFO, "reconnected to the collector at ", pa_cfg.out_spec,
               (const char *)NULL);
    if (t->ever_connected)
        atomic_fetch_add_explicit(&pa_stats.reconnects, 1, memory_order_relaxed);
    t->ever_connected = 1;
    t->failed_logged = 0;
    t->backoff_ms = 0;
    return 0;
}

/* May we try to (re)open now? */
int pa_transport_ready(pa_transport_t *t)
{
    if (t->fd >= 0)
        return 1;
    if (t->dead)
        return 0;
    if (t->retry_at_ns && pa_mono_ns() < t->retry_at_ns)
        return 0;
    return pa_transport_open(t) == 0;
}

/* The write failed: one line per outage, close; a file is given up, a
 * collector is retried after the backoff. */
static int write_failed(pa_transport_t *t, long r)
{
    int err = r < 0 ? -errno : -EIO;
    if (!t->failed_logged) {
        t->failed_logged = 1;
        pa_log(PA_LOG_QUIET + 1,
               pa_cfg.out_kind == PA_OUT_FILE ? "write failed on " : "lost the collector at ",
               pa_cfg.out_kind == PA_OUT_FILE ? pa_cfg.out_path : pa_cfg.out_spec,
               "; records are dropped and counted", (const char *)NULL);
    }
    pa_transport_close(t);
    if (pa_cfg.out_kind == PA_OUT_FILE)
        t->dead = 1;
    else
        t->retry_at_ns = pa_mono_ns() + BACKOFF_MIN_MS * 1000000ull;
    return err;
}

/* Writes all of iov[0..n); on failure closes the connection (the stream is
 * broken mid-frame, so the next connection must start a new one). */
int pa_transport_writev(pa_transport_t *t, struct iovec *iov, unsigned n)
{
    if (t->fd < 0)
        return -ENOTCONN;
    while (n) {
        unsigned cnt = n < IOV_MAX ? n : IOV_MAX;
        long r;
        if (pa_cfg.out_kind == PA_OUT_FILE) {
            r = syscall(SYS_writev, t->fd, iov, cnt);
        } else { /* MSG_NOSIGNAL: a dead collector must not SIGPIPE the host */
            struct msghdr mh = {.msg_iov = iov, .msg_iovlen = cnt};
            r = syscall(SYS_sendmsg, t->fd, &mh, MSG_NOSIGNAL);
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return write_failed(t, r);
        /* Partial writes: skip what went, shorten the piece it ended in. */
        while (n && (size_t)r >= iov->iov_len) {
            r -= (long)iov->iov_len;
            iov++;
            n--;
        }
        if (n) {
            iov->iov_base = (char *)iov->iov_base + r;
            iov->iov_len -= (size_t)r;
        }
    }
    return 0;
}

int pa_transport_write(pa_transport_t *t, const void *buf, size_t len)
{
    struct iovec one = {.iov_base = (void *)buf, .iov_len = len};
    return len ? pa_transport_writev(t, &one, 1) : 0;
}

void pa_transport_close(pa_transport_t *t)
{
    if (t->fd >= 0)
        sys_close(t->fd);
    t->fd = -1;
}
