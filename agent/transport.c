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
 *
 * The program may take our fd (issue 16): a daemon closes every fd >= 3
 * (closefrom, close_range, a close loop) or dup2s its own file over it, and
 * the number may then name one of its files.  We must never write there.
 * Two defences, because a program can do it with raw syscalls no hook sees:
 *  - the fd hooks (hook_net.c) call pa_transport_fd_closing() before the
 *    real call: it marks the output taken and waits until no write of ours
 *    is in flight (the handshake below), so a write never races the number
 *    being reused;
 *  - before every write, and every sender round, fstat(fd) must still give
 *    the (st_dev, st_ino) the output had when we opened it.
 * A taken output is forgotten, never closed (the number is the program's),
 * and reopened: a file by its absolute path with O_APPEND, a collector by a
 * new connection that starts with the resume preamble (PA_WIRE_RESUME_MAGIC); in
 * both the stream goes on with the next frame, as if nothing happened.
 */
#include "fdtable.h"
#include "internal.h"
#include "transport.h"

#include <arpa/inet.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define SEND_TIMEOUT_MS 2000
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
/* A hook waits at most this long for a write in flight to our output (a
 * regular file's write takes microseconds; a stalled collector is cut short
 * with shutdown(2) after TAKE_SHUT_MS, which ends the write with EPIPE and
 * cuts the stream mid-frame).  100 ms was too short for a collector that is
 * writing a report (0.2 s of CPU for a python3 process, 0.9 s on a loaded
 * machine; under `perfagent run` it does that between reads): a fork child
 * of CPython's test runner, whose first frame declares its parent's 790 KB
 * of modules and stacks, closed its fds before exec while that frame was
 * blocked, and its stream ended "cut inside a frame" in 6 runs of 20 of
 * test_subprocess's fd tests (0 in 32 at 1 s).  The wait only lasts while a
 * write of ours is in flight, and only in a program closing our fd. */
#define TAKE_WAIT_MS 2000
#define TAKE_SHUT_MS 1000

static long sys_close(int fd)
{
    return syscall(SYS_close, fd);
}

/* ---- the hook handshake ----------------------------------------------------
 * A Dekker pair, seq_cst on both sides: the sender sets out_busy, then reads
 * out_taken; a hook sets out_taken, then reads out_busy.  So either the
 * sender sees the take before it writes, or the hook sees the write and
 * waits for it to return before the program's close/dup2 runs: the number
 * can never be reused (by the program's next open) under one of our
 * writes.  The hook cannot swallow the close instead: closefrom(3) must
 * leave nothing open (CPython's test_close_fds checks), and the program's
 * view of its fd table must be the one it asked for. */
static _Atomic int out_fd = -1; /* our output's number, as the hooks see it */
static _Atomic int out_taken;   /* a hook saw the program close or replace it */
static _Atomic int out_busy;    /* the sender is between its check and its write's end */

int pa_transport_is_ours(int fd)
{
    return fd >= 0 && fd == atomic_load_explicit(&out_fd, memory_order_relaxed);
}

void pa_transport_fd_closing(unsigned lo, unsigned hi)
{
    int fd = atomic_load_explicit(&out_fd, memory_order_relaxed);
    if (PA_LIKELY(fd < 0 || (unsigned)fd < lo || (unsigned)fd > hi))
        return;
    int e = errno, shut = 0;
    atomic_store(&out_taken, 1);
    uint64_t t0 = pa_mono_ns();
    while (atomic_load(&out_busy)) {
        uint64_t waited = pa_mono_ns() - t0;
        struct timespec ts = {0, 100000};
        if (waited > TAKE_WAIT_MS * 1000000ull)
            break; /* a FIFO nobody reads: the program's close must not hang */
        if (!shut && waited > TAKE_SHUT_MS * 1000000ull && pa_cfg.out_kind != PA_OUT_FILE) {
            syscall(SYS_shutdown, fd, SHUT_RDWR);
            shut = 1;
        }
        syscall(SYS_nanosleep, &ts, NULL);
    }
    errno = e;
}

/* Does t->fd still name what we opened? */
static int still_ours(const pa_transport_t *t)
{
    struct stat st;
    if (syscall(SYS_fstat, t->fd, &st) != 0)
        return 0;
    return (uint64_t)st.st_dev == t->dev && (uint64_t)st.st_ino == t->ino;
}

/* 1: t->fd is ours and stays ours until leave(); 0: it was taken. */
static int enter(const pa_transport_t *t)
{
    atomic_store(&out_busy, 1);
    if (!atomic_load(&out_taken) && still_ours(t))
        return 1;
    atomic_store(&out_busy, 0);
    return 0;
}

static void leave(void)
{
    atomic_store(&out_busy, 0);
}

/* A new fd is the output: remember what it is, and let the hooks see it. */
static void adopt(pa_transport_t *t, int fd)
{
    struct stat st;
    t->fd = fd;
    t->dev = t->ino = 0;
    if (syscall(SYS_fstat, fd, &st) == 0) {
        t->dev = (uint64_t)st.st_dev;
        t->ino = (uint64_t)st.st_ino;
    }
    atomic_store(&out_taken, 0);
    /* On the sender's own table the hooks' numbers are never ours. */
    atomic_store(&out_fd, pa_fds_here() ? -1 : fd);
}

/* The program took t->fd: forget it (never close it: the number is the
 * program's now).  resumable: no byte of a frame is pending on it. */
static void forget_taken(pa_transport_t *t, int resumable)
{
    char num[24];
    pa_u64toa((uint64_t)t->fd, num);
    pa_log(PA_LOG_INFO, "the program closed or replaced fd ", num,
           " (the agent's output); reopening it", (const char *)NULL);
    atomic_store(&out_fd, -1);
    atomic_store(&out_taken, 0);
    t->fd = -1;
    t->resume = resumable;
    t->retry_at_ns = 0;
}

#define TAKEN (-2L) /* raw_writev: the fd was taken, nothing was written */

/* One writev/sendmsg on a verified fd: what the syscall returned (-1 and
 * errno), or TAKEN. */
static long raw_writev(pa_transport_t *t, struct iovec *iov, unsigned cnt)
{
    long r;
    if (!enter(t))
        return TAKEN;
    if (pa_cfg.out_kind == PA_OUT_FILE) {
        r = syscall(SYS_writev, t->fd, iov, cnt);
    } else { /* MSG_NOSIGNAL: a dead collector must not SIGPIPE the host */
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = cnt};
        r = syscall(SYS_sendmsg, t->fd, &mh, MSG_NOSIGNAL);
    }
    int e = errno;
    leave();
    errno = e;
    return r;
}

/* The first stream of the first process owns the configured name and
 * truncates it (like perf record -o).  Every other stream (a fork child, an
 * exec'd program that has the same pid as the image before it, a restart
 * after a failed exec) must not overwrite anything: it takes the first free
 * name among PATH, PATH.1 ... PATH.99 (O_EXCL, open(2)).  A device or FIFO
 * is written as it is by every stream. */
/* Where the file is, absolute: the program may chdir (a daemon does
 * chdir("/")) before we need to reopen it. */
static void remember_path(pa_transport_t *t)
{
    char link[40] = "/proc/self/fd/", num[24];
    pa_u64toa((uint64_t)t->fd, num);
    pa_strlcpy(link + 14, num, sizeof(link) - 14);
    long n = syscall(SYS_readlinkat, AT_FDCWD, link, t->path, sizeof(t->path) - 1);
    if (n <= 0 || t->path[0] != '/')
        n = (long)pa_strlcpy(t->path, pa_cfg.out_path, sizeof(t->path));
    t->path[n < (long)sizeof(t->path) ? n : (long)sizeof(t->path) - 1] = '\0';
}

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
    adopt(t, pa_fd_high((int)fd));
    remember_path(t);
    return 0;
}

/* The output taken (forget_taken): the same file again, for append, if it
 * is still the file we wrote (a file renamed over it, or deleted, is not:
 * its stream would not begin with our magic). */
static int reopen_file(pa_transport_t *t)
{
    long fd = syscall(SYS_openat, AT_FDCWD, t->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    uint64_t dev = t->dev, ino = t->ino;
    if (fd < 0)
        return -errno;
    adopt(t, pa_fd_high((int)fd));
    if (t->dev == dev && t->ino == ino)
        return 0;
    atomic_store(&out_fd, -1);
    sys_close(t->fd);
    t->fd = -1;
    return -ESTALE;
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
    adopt(t, pa_fd_high((int)fd));
    return 0;
}

/* A new connection that continues the stream the program cut: the resume
 * preamble names it (pid, Hello start time), the collector finds the
 * session the old connection fed, and the next frame follows the last one
 * the old connection carried. */
static int send_resume(pa_transport_t *t)
{
    uint8_t pre[PA_WIRE_RESUME_LEN] = {0};
    uint32_t pid = pa_pid();
    uint64_t start = pa_start_real_ns();
    __builtin_memcpy(pre, PA_WIRE_RESUME_MAGIC, 8);
    for (int i = 0; i < 4; i++)
        pre[8 + i] = (uint8_t)(pid >> (8 * i));
    for (int i = 0; i < 8; i++)
        pre[16 + i] = (uint8_t)(start >> (8 * i));
    struct iovec one = {.iov_base = pre, .iov_len = sizeof(pre)};
    long r = raw_writev(t, &one, 1);
    return r == (long)sizeof(pre) ? 0 : r == TAKEN ? -ESTALE : -EIO;
}

int pa_transport_open(pa_transport_t *t)
{
    int r, resume = t->resume;
    t->fd = -1;
    t->resume = 0;
    t->resumed = 0;
    if (pa_cfg.out_kind == PA_OUT_FILE && resume && (r = reopen_file(t)) == 0) {
        t->resumed = 1;
        atomic_fetch_add_explicit(&pa_stats.reconnects, 1, memory_order_relaxed);
        return 0;
    }
    t->streams++;
    t->carried = 0;
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
    if (r == 0 && resume && (r = send_resume(t)) < 0) {
        atomic_store(&out_fd, -1);
        if (r != -ESTALE)
            sys_close(t->fd);
        t->fd = -1;
    }
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
    if ((t->resumed = resume)) {
        t->streams--; /* the stream goes on */
        t->carried = 1;
    }
    return 0;
}

/* May we try to (re)open now?  An output the program took between two
 * frames is reopened here, at once: a collector holds the cut session for
 * a short while only (collector/server.c PARK_MS). */
int pa_transport_ready(pa_transport_t *t)
{
    if (t->fd >= 0 && !atomic_load(&out_taken) && still_ours(t))
        return 1;
    if (t->fd >= 0)
        forget_taken(t, t->carried);
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
    t->resume = 0; /* the stream broke mid-frame: the next one is new */
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
    int started = 0; /* bytes of this frame went out: it cannot move */
    if (t->fd < 0)
        return -ENOTCONN;
    while (n) {
        unsigned cnt = n < IOV_MAX ? n : IOV_MAX;
        long r = raw_writev(t, iov, cnt);
        if (r == TAKEN) {
            forget_taken(t, !started && t->carried);
            if (started || pa_transport_open(t) < 0)
                return -ENOTCONN;
            if (!t->resumed)
                return -ESTALE; /* a new output: the caller starts a new stream */
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return write_failed(t, r);
        started = t->carried = 1;
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
    /* Only what is still ours: a number the program took is its own fd. */
    if (t->fd >= 0 && enter(t)) {
        atomic_store(&out_fd, -1);
        sys_close(t->fd);
        leave();
    }
    atomic_store(&out_fd, -1);
    t->fd = -1;
}

void pa_transport_after_fork(pa_transport_t *t)
{
    /* The child is one thread: no write is in flight here, whatever the
     * parent's sender was doing when fork copied out_busy. */
    atomic_store(&out_busy, 0);
    if (atomic_load(&pa_fds_private))
        t->fd = -1; /* it was in the parent sender's own table, not here */
    pa_transport_close(t);
    atomic_store(&out_taken, 0);
}

/* The sender hands over to a thread on another fd table (sender.c
 * pa_sender_main_ending), between two frames: close the output, and let the
 * next thread reopen it where the stream left off (the resume path of a
 * taken output: a file by its path, a collector by a resumed connection). */
void pa_transport_release(pa_transport_t *t)
{
    pa_transport_close(t);
    t->resume = t->carried;
    t->retry_at_ns = 0;
}

int pa_transport_hold(pa_transport_t *t)
{
    return t->fd >= 0 && enter(t) ? t->fd : -1;
}

void pa_transport_unhold(void)
{
    leave();
}
