/*
 * hook_net.c — the socket calls (net.h, net.c).  Each hook resolves the
 * real function, calls it exactly as the host asked (same arguments, same
 * blocking), and hands what happened to net.c; errno and the return value
 * are the real call's, whatever net.c does.  read/write/readv/writev cost
 * one table byte for an fd that is not a traced socket.  Waits (time
 * blocked on sockets): poll, ppoll, select, pselect, epoll_wait,
 * epoll_pwait, and the blocking socket calls themselves.
 */
#include "net.h"
#include "transport.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <unistd.h>

#define REAL(fn, name)                                                                             \
    do {                                                                                           \
        if (PA_UNLIKELY(!fn))                                                                      \
            *(void **)&fn = dlsym(RTLD_NEXT, name);                                                \
    } while (0)

/* A data call on a traced socket: the real call between two clock reads
 * (none on a non-blocking socket or with MSG_DONTWAIT: such a call cannot
 * wait, net.c reads the clock itself when it needs a time), then net.c,
 * errno kept. */
#define IO_CALL(dir, iov, iovcnt, flags, call)                                                     \
    do {                                                                                           \
        uint64_t t0_ = pa_net_io_start(fd, flags);                                                 \
        ssize_t r_ = call;                                                                         \
        int e_ = errno;                                                                            \
        pa_net_io(fd, dir, iov, iovcnt, (long)r_, r_ < 0 ? e_ : 0, t0_, PA_HOOK_FP());             \
        errno = e_;                                                                                \
        return r_;                                                                                 \
    } while (0)

PA_EXPORT int socket(int domain, int type, int protocol)
{
    static int (*real)(int, int, int);
    REAL(real, "socket");
    int r = real(domain, type, protocol);
    if (r >= 0 && pa_net_active()) {
        int e = errno;
        pa_net_socket(r, domain, type);
        errno = e;
    }
    return r;
}

PA_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    static int (*real)(int, const struct sockaddr *, socklen_t);
    REAL(real, "connect");
    if (!pa_net_active())
        return real(fd, addr, len);
    int e = errno;
    pa_net_connect_begin(fd, addr, len, PA_HOOK_FP());
    errno = e;
    uint64_t t0 = pa_net_now();
    int r = real(fd, addr, len);
    e = errno;
    pa_net_connect_end(fd, r, r < 0 ? e : 0);
    pa_net_wait("connect", t0, PA_HOOK_FP());
    errno = e;
    return r;
}

/* The clock before a call that may block, 0 when not tracing. */
static inline uint64_t wait_start(void)
{
    return pa_net_active() ? pa_net_now() : 0;
}

static int accepted(int r, int nonblock, uint64_t t0, uintptr_t from)
{
    if (t0 && pa_net_active()) {
        int e = errno;
        /* The wait first: pa_net_accept walks the stack, which the first
         * time through a big module takes milliseconds (python3: 3-6 ms,
         * counted as an accept wait of the program's before). */
        pa_net_wait("accept", t0, from);
        if (r >= 0)
            pa_net_accept(r, nonblock, from);
        errno = e;
    }
    return r;
}

PA_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    static int (*real)(int, struct sockaddr *, socklen_t *);
    REAL(real, "accept");
    uint64_t t0 = wait_start();
    return accepted(real(fd, addr, len), 0, t0, PA_HOOK_FP());
}

PA_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    REAL(real, "accept4");
    uint64_t t0 = wait_start();
    return accepted(real(fd, addr, len, flags), flags & SOCK_NONBLOCK, t0, PA_HOOK_FP());
}

/* The fd calls below may take the agent's own output fd (issue 16: a daemon
 * closes every fd >= 3, or dup2s its files over them).  They let the call
 * happen exactly as asked -- same fd table afterwards, same return value and
 * errno -- and tell transport.c first, which waits for a write of ours in
 * flight and reopens the output elsewhere.  Swallowing a close of our fd
 * would return 0 too, but leave a number open that the program closed:
 * closefrom(3) must leave nothing (CPython's test_close_fds), and a later
 * dup2 onto that number would then take it anyway. */
/* A vfork child (init.c pa_vfork_child) closing or replacing a number
 * that means something to us: its fd table is its own, so nothing of ours
 * changes and nothing is recorded.  getpid(2) only for such a number. */
static inline int vfork_child_fd(int fd)
{
    return (pa_fd_ours(fd) || pa_transport_is_ours(fd) || pa_net_watch(fd)) && pa_vfork_child();
}

PA_EXPORT int close(int fd)
{
    static int (*real)(int);
    REAL(real, "close");
    if (PA_UNLIKELY(vfork_child_fd(fd)))
        return real(fd);
    if (pa_net_watch(fd)) {
        /* Reported before the real close: once closed, the number may be
         * another thread's new socket. */
        int e = errno;
        pa_net_close(fd);
        errno = e;
    }
    if (PA_UNLIKELY(pa_transport_is_ours(fd)))
        pa_transport_fd_closing((unsigned)fd, (unsigned)fd);
    if (fd >= 0)
        pa_fd_taken((unsigned)fd, (unsigned)fd);
    int r = real(fd);
    if (fd >= 0)
        pa_fd_closed((unsigned)fd, (unsigned)fd);
    return r;
}

/* dup2/dup3 onto our number replace it; with a bad oldfd they fail and
 * replace nothing (fcntl(F_GETFD) tells, without side effects). */
static void dup_onto(int oldfd, int newfd)
{
    if (PA_UNLIKELY(pa_transport_is_ours(newfd)) && oldfd != newfd) {
        int e = errno;
        if (syscall(SYS_fcntl, oldfd, F_GETFD) >= 0)
            pa_transport_fd_closing((unsigned)newfd, (unsigned)newfd);
        errno = e;
    }
    if (newfd >= 0 && oldfd != newfd)
        pa_fd_taken((unsigned)newfd, (unsigned)newfd); /* at worst a needless forget */
}

PA_EXPORT int dup2(int oldfd, int newfd)
{
    static int (*real)(int, int);
    REAL(real, "dup2");
    if (PA_UNLIKELY(vfork_child_fd(newfd)))
        return real(oldfd, newfd);
    dup_onto(oldfd, newfd);
    int r = real(oldfd, newfd);
    if (r >= 0 && oldfd != newfd && pa_net_watch(newfd)) {
        int e = errno;
        pa_net_close(newfd); /* dup2 closed it */
        errno = e;
    }
    return r;
}

PA_EXPORT int dup3(int oldfd, int newfd, int flags)
{
    static int (*real)(int, int, int);
    REAL(real, "dup3");
    if (PA_UNLIKELY(vfork_child_fd(newfd)))
        return real(oldfd, newfd, flags);
    dup_onto(oldfd, newfd);
    int r = real(oldfd, newfd, flags);
    if (r >= 0 && pa_net_watch(newfd)) {
        int e = errno;
        pa_net_close(newfd);
        errno = e;
    }
    return r;
}

/* close_range(2): CLOSE_RANGE_CLOEXEC closes nothing (ours is close-on-exec
 * already); CLOSE_RANGE_UNSHARE closes in a private copy of the caller's
 * table, and the sender's table (shared with the other threads) keeps our
 * fd.  Traced sockets in the range are the other helper's (net.c) to
 * notice: their numbers are checked when next used. */
PA_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
    static int (*real)(unsigned, unsigned, int);
    REAL(real, "close_range");
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    if (first <= last && !(flags & (CLOSE_RANGE_CLOEXEC | CLOSE_RANGE_UNSHARE)) &&
        !pa_vfork_child()) {
        pa_transport_fd_closing(first, last);
        pa_fd_taken(first, last);
        int r = real(first, last, flags);
        pa_fd_closed(first, last);
        return r;
    }
    return real(first, last, flags);
}

/* glibc's closefrom calls its internal close_range (or a /proc/self/fd
 * loop of internal closes): the close_range hook never sees it. */
PA_EXPORT void closefrom(int lowfd)
{
    static void (*real)(int);
    REAL(real, "closefrom");
    if (pa_vfork_child()) {
        real(lowfd);
        return;
    }
    pa_transport_fd_closing(lowfd < 0 ? 0 : (unsigned)lowfd, ~0U);
    pa_fd_taken(lowfd < 0 ? 0 : (unsigned)lowfd, ~0U);
    real(lowfd);
    pa_fd_closed(lowfd < 0 ? 0 : (unsigned)lowfd, ~0U);
}

/* fcntl(F_SETFL) and ioctl(FIONBIO) on a traced socket: whether its data
 * calls can block (net.h pa_net_nb).  The third argument is read as
 * glibc's own fcntl reads it (one machine word, whatever the command). */
PA_EXPORT int fcntl(int fd, int cmd, ...)
{
    static int (*real)(int, int, ...);
    va_list ap;
    long arg;
    int r;
    va_start(ap, cmd);
    arg = va_arg(ap, long);
    va_end(ap);
    REAL(real, "fcntl");
    r = real(fd, cmd, arg);
    if (cmd == F_SETFL && r == 0 && pa_net_watch(fd))
        pa_net_set_nonblock(fd, (arg & O_NONBLOCK) != 0);
    return r;
}

/* Programs built with _FILE_OFFSET_BITS=64 call fcntl64 (glibc 2.28); on
 * 64-bit glibc the two are one function, so one hook serves both. */
PA_EXPORT int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

PA_EXPORT int ioctl(int fd, unsigned long req, ...)
{
    static int (*real)(int, unsigned long, ...);
    va_list ap;
    void *arg;
    int r;
    va_start(ap, req);
    arg = va_arg(ap, void *);
    va_end(ap);
    REAL(real, "ioctl");
    r = real(fd, req, arg);
    if (PA_UNLIKELY(req == FIONBIO) && r == 0 && arg && pa_net_watch(fd))
        pa_net_set_nonblock(fd, *(const int *)arg != 0);
    return r;
}

PA_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    static ssize_t (*real)(int, const void *, size_t, int);
    REAL(real, "send");
    if (pa_net_watch(fd) != PA_NET_CONN)
        return real(fd, buf, n, flags);
    struct iovec v = {(void *)buf, n};
    IO_CALL(PA_NET_SEND, &v, 1, flags, real(fd, buf, n, flags));
}

PA_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
                         const struct sockaddr *addr, socklen_t alen)
{
    static ssize_t (*real)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    REAL(real, "sendto");
    if (pa_net_watch(fd) != PA_NET_CONN)
        return real(fd, buf, n, flags, addr, alen);
    struct iovec v = {(void *)buf, n};
    IO_CALL(PA_NET_SEND, &v, 1, flags, real(fd, buf, n, flags, addr, alen));
}

PA_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    static ssize_t (*real)(int, const struct msghdr *, int);
    REAL(real, "sendmsg");
    if (pa_net_watch(fd) != PA_NET_CONN || !msg)
        return real(fd, msg, flags);
    IO_CALL(PA_NET_SEND, msg->msg_iov, (int)msg->msg_iovlen, flags, real(fd, msg, flags));
}

PA_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    static ssize_t (*real)(int, void *, size_t, int);
    REAL(real, "recv");
    /* MSG_PEEK leaves the bytes for the next call: counted there. */
    if (pa_net_watch(fd) != PA_NET_CONN || (flags & MSG_PEEK))
        return real(fd, buf, n, flags);
    struct iovec v = {buf, n};
    IO_CALL(PA_NET_RECV, &v, 1, flags, real(fd, buf, n, flags));
}

PA_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
                           socklen_t *alen)
{
    static ssize_t (*real)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
    REAL(real, "recvfrom");
    if (pa_net_watch(fd) != PA_NET_CONN || (flags & MSG_PEEK))
        return real(fd, buf, n, flags, addr, alen);
    struct iovec v = {buf, n};
    IO_CALL(PA_NET_RECV, &v, 1, flags, real(fd, buf, n, flags, addr, alen));
}

PA_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    static ssize_t (*real)(int, struct msghdr *, int);
    REAL(real, "recvmsg");
    if (pa_net_watch(fd) != PA_NET_CONN || !msg || (flags & MSG_PEEK))
        return real(fd, msg, flags);
    IO_CALL(PA_NET_RECV, msg->msg_iov, (int)msg->msg_iovlen, flags, real(fd, msg, flags));
}

PA_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
    static ssize_t (*real)(int, void *, size_t);
    REAL(real, "read");
    if (PA_LIKELY(pa_net_watch(fd) != PA_NET_CONN))
        return real(fd, buf, n);
    struct iovec v = {buf, n};
    IO_CALL(PA_NET_RECV, &v, 1, 0, real(fd, buf, n));
}

PA_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    static ssize_t (*real)(int, const void *, size_t);
    REAL(real, "write");
    if (PA_LIKELY(pa_net_watch(fd) != PA_NET_CONN))
        return real(fd, buf, n);
    struct iovec v = {(void *)buf, n};
    IO_CALL(PA_NET_SEND, &v, 1, 0, real(fd, buf, n));
}

PA_EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
    static ssize_t (*real)(int, const struct iovec *, int);
    REAL(real, "readv");
    if (PA_LIKELY(pa_net_watch(fd) != PA_NET_CONN))
        return real(fd, iov, iovcnt);
    IO_CALL(PA_NET_RECV, iov, iovcnt, 0, real(fd, iov, iovcnt));
}

PA_EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    static ssize_t (*real)(int, const struct iovec *, int);
    REAL(real, "writev");
    if (PA_LIKELY(pa_net_watch(fd) != PA_NET_CONN))
        return real(fd, iov, iovcnt);
    IO_CALL(PA_NET_SEND, iov, iovcnt, 0, real(fd, iov, iovcnt));
}

PA_EXPORT ssize_t sendfile(int fd, int in_fd, off_t *off, size_t n)
{
    static ssize_t (*real)(int, int, off_t *, size_t);
    REAL(real, "sendfile");
    if (PA_LIKELY(pa_net_watch(fd) != PA_NET_CONN))
        return real(fd, in_fd, off, n);
    IO_CALL(PA_NET_SEND, NULL, 0, 0, real(fd, in_fd, off, n));
}

/* What a program built with _FILE_OFFSET_BITS=64 calls (nginx does). */
PA_EXPORT ssize_t sendfile64(int fd, int in_fd, off64_t *off, size_t n)
{
    static ssize_t (*real)(int, int, off64_t *, size_t);
    REAL(real, "sendfile64");
    if (PA_LIKELY(pa_net_watch(fd) != PA_NET_CONN))
        return real(fd, in_fd, off, n);
    IO_CALL(PA_NET_SEND, NULL, 0, 0, real(fd, in_fd, off, n));
}

/* Name resolution latency (the lookups' own sockets, if a name service
 * opens them through the public calls, are traced as connections). */
PA_EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                          struct addrinfo **res)
{
    static int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    REAL(real, "getaddrinfo");
    if (!pa_net_active())
        return real(node, service, hints, res);
    uint64_t t0 = pa_net_now();
    int r = real(node, service, hints, res);
    int e = errno;
    if (pa_net_active())
        pa_net_dns(node, r, t0);
    errno = e;
    return r;
}

/* A non-blocking connect's outcome, as the host reads it. */
PA_EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    static int (*real)(int, int, int, void *, socklen_t *);
    REAL(real, "getsockopt");
    int r = real(fd, level, name, val, len);
    if (r == 0 && level == SOL_SOCKET && name == SO_ERROR && val && len &&
        *len >= sizeof(int) && pa_net_watch(fd) == PA_NET_CONN) {
        int e = errno;
        pa_net_connect_result(fd, *(int *)val);
        errno = e;
    }
    return r;
}

/* After poll/ppoll: non-blocking connects that became writable, and the
 * time blocked when the set holds a socket we trace (a wait). */
static void polled(const char *call, const struct pollfd *fds, nfds_t n, int r, uint64_t t0,
                   uintptr_t from)
{
    int e = errno, sock = 0;
    for (nfds_t i = 0; i < n; i++) {
        int k = pa_net_watch(fds[i].fd);
        sock |= k;
        if (r > 0 && k == PA_NET_CONN && (fds[i].revents & POLLOUT))
            pa_net_poll_ready(fds[i].fd, !(fds[i].revents & (POLLERR | POLLHUP)));
    }
    if (sock && t0)
        pa_net_wait(call, t0, from);
    errno = e;
}

PA_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    static int (*real)(struct pollfd *, nfds_t, int);
    REAL(real, "poll");
    uint64_t t0 = timeout ? wait_start() : 0;
    int r = real(fds, n, timeout);
    if ((r > 0 || t0) && pa_net_active())
        polled("poll", fds, n, r, t0, PA_HOOK_FP());
    return r;
}

PA_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
    static int (*real)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
    REAL(real, "ppoll");
    uint64_t t0 = !ts || ts->tv_sec || ts->tv_nsec ? wait_start() : 0;
    int r = real(fds, n, ts, mask);
    if ((r > 0 || t0) && pa_net_active())
        polled("ppoll", fds, n, r, t0, PA_HOOK_FP());
    return r;
}

/* Whether select's sets hold a socket we trace (read before the call: the
 * call rewrites them).  A word of the set at a time: most are empty. */
static int fdsets_watched(int nfds, const fd_set *r, const fd_set *w, const fd_set *x)
{
    const size_t bits = 8 * sizeof(__fd_mask);
    if (nfds > FD_SETSIZE)
        nfds = FD_SETSIZE; /* the kernel reads no further for an fd_set */
    for (int base = 0; base < nfds; base += (int)bits) {
        __fd_mask m = 0;
        size_t k = (size_t)base / bits;
        m |= r ? __FDS_BITS(r)[k] : 0;
        m |= w ? __FDS_BITS(w)[k] : 0;
        m |= x ? __FDS_BITS(x)[k] : 0;
        for (; m; m &= m - 1) {
            int fd = base + __builtin_ctzl((unsigned long)m);
            if (fd < nfds && pa_net_watch(fd))
                return 1;
        }
    }
    return 0;
}

/* select/pselect: the time blocked when the sets hold a socket we trace,
 * as poll's.  Readiness is not used to settle a non-blocking connect: a
 * failed one is writable too, and select says nothing of the error. */
PA_EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *tv)
{
    static int (*real)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
    REAL(real, "select");
    uint64_t t0 = 0;
    if ((!tv || tv->tv_sec || tv->tv_usec) && pa_net_active() && fdsets_watched(nfds, r, w, x))
        t0 = pa_net_now();
    int ret = real(nfds, r, w, x, tv);
    if (t0 && pa_net_active()) {
        int e = errno;
        pa_net_wait("select", t0, PA_HOOK_FP());
        errno = e;
    }
    return ret;
}

PA_EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *x, const struct timespec *ts,
                      const sigset_t *mask)
{
    static int (*real)(int, fd_set *, fd_set *, fd_set *, const struct timespec *,
                       const sigset_t *);
    REAL(real, "pselect");
    uint64_t t0 = 0;
    if ((!ts || ts->tv_sec || ts->tv_nsec) && pa_net_active() && fdsets_watched(nfds, r, w, x))
        t0 = pa_net_now();
    int ret = real(nfds, r, w, x, ts, mask);
    if (t0 && pa_net_active()) {
        int e = errno;
        pa_net_wait("pselect", t0, PA_HOOK_FP());
        errno = e;
    }
    return ret;
}

/* epoll's events carry the host's data, not fds: every blocking wait of a
 * process that traces sockets counts. */
PA_EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int maxev, int timeout)
{
    static int (*real)(int, struct epoll_event *, int, int);
    REAL(real, "epoll_wait");
    uint64_t t0 = timeout ? wait_start() : 0;
    int r = real(epfd, ev, maxev, timeout);
    if (t0 && pa_net_active()) {
        int e = errno;
        pa_net_wait("epoll_wait", t0, PA_HOOK_FP());
        errno = e;
    }
    return r;
}

PA_EXPORT int epoll_pwait(int epfd, struct epoll_event *ev, int maxev, int timeout,
                          const sigset_t *mask)
{
    static int (*real)(int, struct epoll_event *, int, int, const sigset_t *);
    REAL(real, "epoll_pwait");
    uint64_t t0 = timeout ? wait_start() : 0;
    int r = real(epfd, ev, maxev, timeout, mask);
    if (t0 && pa_net_active()) {
        int e = errno;
        pa_net_wait("epoll_pwait", t0, PA_HOOK_FP());
        errno = e;
    }
    return r;
}
