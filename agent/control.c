/*
 * control.c — the agent's end of `perfagent snapshot PID` (control.h).
 *
 * The sender listens on the abstract unix socket "@perfagent.<pid>"
 * (SOCK_SEQPACKET: one request or answer a message, no framing of our own;
 * abstract: no file to create, clean up or find a writable directory for,
 * and the name goes away with the process).  Abstract sockets have no
 * permissions, so each peer's uid is checked with SO_PEERCRED: root or the
 * process's own (real or effective) uid, else one refusal line.
 *
 * Everything here runs on the sender thread, in its rounds (every 10-20 ms),
 * with non-blocking raw syscalls on descriptors moved high (pa_fd_high) and
 * CLOEXEC: a request never blocks the sender, let alone a host thread, and
 * nothing is allocated (a fixed table of CTL_CLIENTS requesters).
 *
 * The conversation, one message each way (text):
 *   client -> agent   "snapshot"
 *   agent -> client   "dir <id> <path>"   the collector wrote the snapshot
 *                     "file <id> <path>"  marker <id> is in the file <path>
 *                     "error <why>"
 * With a collector, the answer comes from the collector: on reading the
 * SnapshotMarker it writes the snapshot directory and sends a Command
 * (SnapshotWritten: id, dir or error) back on the output socket, which this
 * file reads in the sender's rounds and hands to the requester waiting for
 * that id.
 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_CLIENTS 8
/* A client that connected but sent nothing, or whose collector never
 * answered, is let go after this long (the CLI's own timeout is shorter). */
#define CTL_IDLE_NS (30ull * 1000000000ull)

PA_HIDDEN unsigned pa_snapshot_interval_s;

enum { C_FREE, C_NEW, C_QUEUED, C_WAIT };

static struct ctl_client {
    int fd;
    int state;
    uint64_t id;    /* C_WAIT: the marker whose answer it waits for */
    uint64_t since; /* pa_mono_ns() of the last state change */
} cl[CTL_CLIENTS];
static int lis_fd = -1;
static uint64_t next_interval_ns;
/* The collector's Command frames, a partial one kept between rounds. */
static uint8_t inbuf[8192];
static size_t inlen;

/* Refusing before the request was read: read it first, since closing a
 * socket with unread data resets the connection and the peer would lose
 * our one line. */
static void refuse(int fd, const char *a, const char *b, const char *c);

static void say(int fd, const char *a, const char *b, const char *c)
{
    static char msg[sizeof(pa_cfg.out_path) + 600];
    size_t n = pa_strlcpy(msg, a, sizeof(msg));
    if (n < sizeof(msg) && b)
        n += pa_strlcpy(msg + n, b, sizeof(msg) - n);
    if (n < sizeof(msg) && c)
        n += pa_strlcpy(msg + n, c, sizeof(msg) - n);
    if (n >= sizeof(msg))
        n = sizeof(msg) - 1;
    syscall(SYS_sendto, fd, msg, n, MSG_DONTWAIT | MSG_NOSIGNAL, NULL, 0);
}

static void refuse(int fd, const char *a, const char *b, const char *c)
{
    char req[64];
    syscall(SYS_recvfrom, fd, req, sizeof(req), MSG_DONTWAIT, NULL, NULL);
    say(fd, a, b, c);
    syscall(SYS_close, fd);
}

static void drop(struct ctl_client *c)
{
    pa_fd_close_own(c->fd);
    c->fd = -1;
    c->state = C_FREE;
}

static void answer(struct ctl_client *c, const char *a, const char *b, const char *d)
{
    say(c->fd, a, b, d);
    drop(c);
}

static void answer_id(struct ctl_client *c, const char *kind, uint64_t id, const char *path)
{
    char num[24], head[48];
    pa_u64toa(id, num);
    size_t n = pa_strlcpy(head, kind, sizeof(head));
    n += pa_strlcpy(head + n, num, sizeof(head) - n);
    pa_strlcpy(head + n, " ", sizeof(head) - n);
    answer(c, head, path, NULL);
}

void pa_ctl_open(void)
{
    struct sockaddr_un un;
    char num[24];
    long fd;

    if (pa_snapshot_interval_s)
        next_interval_ns = pa_mono_ns() + pa_snapshot_interval_s * 1000000000ull;
    if (lis_fd >= 0)
        return;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    pa_u64toa(pa_pid(), num);
    /* sun_path[0] = 0: the abstract namespace; the name is not NUL-ended. */
    size_t len = 1 + pa_strlcpy(un.sun_path + 1, "perfagent.", sizeof(un.sun_path) - 1);
    len += pa_strlcpy(un.sun_path + len, num, sizeof(un.sun_path) - len);
    fd = syscall(SYS_socket, AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (syscall(SYS_bind, fd, &un, offsetof(struct sockaddr_un, sun_path) + len) < 0 ||
        syscall(SYS_listen, fd, CTL_CLIENTS) < 0) {
        /* EADDRINUSE: another process with our pid number in this network
         * namespace (a pid namespace of its own) has it. */
        pa_log(PA_LOG_DEBUG, "no snapshot requests: cannot listen on @", un.sun_path + 1,
               (const char *)NULL);
        syscall(SYS_close, fd);
        return;
    }
    lis_fd = pa_fd_high((int)fd);
    pa_fd_own(lis_fd);
}

static void close_all(int tell)
{
    for (int i = 0; i < CTL_CLIENTS; i++) {
        if (cl[i].state == C_FREE)
            continue;
        if (tell)
            answer(&cl[i], "error the process is exiting; its snapshot, if taken, is written "
                           "with its reports", NULL, NULL);
        else
            drop(&cl[i]);
    }
    if (lis_fd >= 0)
        pa_fd_close_own(lis_fd);
    lis_fd = -1;
    inlen = 0;
}

void pa_ctl_close(void)
{
    close_all(1);
}

void pa_ctl_after_fork(void)
{
    close_all(0);
}

static void accept_new(uint64_t now)
{
    for (;;) {
        long fd = syscall(SYS_accept4, lis_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct ucred cr;
        socklen_t crlen = sizeof(cr);
        int slot = -1;
        if (fd < 0)
            return; /* EAGAIN, or the peer left already */
        if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0) {
            syscall(SYS_close, fd);
            continue;
        }
        if (cr.uid != 0 && cr.uid != getuid() && cr.uid != geteuid()) {
            char u[64], p[24];
            size_t k = pa_strlcpy(u, "error permission denied: uid ", sizeof(u));
            pa_u64toa(cr.uid, u + k);
            pa_u64toa(pa_pid(), p);
            refuse((int)fd, u, " does not own pid ", p);
            continue;
        }
        for (int i = 0; i < CTL_CLIENTS && slot < 0; i++)
            if (cl[i].state == C_FREE)
                slot = i;
        if (slot < 0) {
            refuse((int)fd, "error busy: too many snapshot requests at once", NULL, NULL);
            continue;
        }
        cl[slot] = (struct ctl_client){.fd = pa_fd_high((int)fd), .state = C_NEW, .since = now};
        pa_fd_own(cl[slot].fd);
    }
}

int pa_ctl_poll(uint64_t now)
{
    int want = 0;
    if (lis_fd >= 0 && !pa_fd_ours(lis_fd)) {
        /* The program closed or replaced it (libc.c): listen anew. */
        pa_fd_close_own(lis_fd);
        lis_fd = -1;
        pa_ctl_open();
    }
    if (lis_fd >= 0)
        accept_new(now);
    for (int i = 0; i < CTL_CLIENTS; i++) {
        struct ctl_client *c = &cl[i];
        char req[64];
        long n;
        if (c->state != C_FREE && !pa_fd_ours(c->fd)) {
            c->fd = -1; /* the program's now: forget it, never close it */
            c->state = C_FREE;
            continue;
        }
        switch (c->state) {
        case C_NEW:
            n = syscall(SYS_recvfrom, c->fd, req, sizeof(req) - 1, MSG_DONTWAIT, NULL, NULL);
            if (n > 0) {
                req[n] = 0;
                if (strncmp(req, "snapshot", 8) == 0) {
                    c->state = C_QUEUED;
                    c->since = now;
                    want |= PA_CTL_WANT_REQUEST;
                } else {
                    answer(c, "error unknown request", NULL, NULL);
                }
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR) ||
                       now - c->since > CTL_IDLE_NS) {
                drop(c); /* gone, or silent for too long */
            }
            break;
        case C_QUEUED:
            want |= PA_CTL_WANT_REQUEST;
            break;
        case C_WAIT:
            if (now - c->since > CTL_IDLE_NS)
                answer(c, "error the collector did not say where it wrote the snapshot", NULL,
                       NULL);
            break;
        }
    }
    if (pa_snapshot_interval_s && now >= next_interval_ns)
        want |= PA_CTL_WANT_INTERVAL;
    return want;
}

void pa_ctl_marker_done(uint64_t id, int how, const char *why, uint64_t now)
{
    if (pa_snapshot_interval_s)
        next_interval_ns = now + pa_snapshot_interval_s * 1000000000ull;
    for (int i = 0; i < CTL_CLIENTS; i++) {
        struct ctl_client *c = &cl[i];
        if (c->state != C_QUEUED)
            continue;
        if (how == PA_CTL_LOST) {
            answer(c, "error ", why, NULL);
        } else if (how == PA_CTL_TO_FILE) {
            answer_id(c, "file ", id, pa_cfg.out_path);
        } else {
            c->state = C_WAIT;
            c->id = id;
            c->since = now;
        }
    }
}

/* ---- the collector's answers ------------------------------------------------ */

/* A varint at p (< end): its value, and the bytes it took in *used (0 when
 * it is not whole). */
static uint64_t varint(const uint8_t *p, const uint8_t *end, size_t *used)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 10 && p + i < end; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *used = i + 1;
            return v;
        }
    }
    *used = 0;
    return 0;
}

/* One field of a message at *p: its number and wire type; a length-delimited
 * field's bytes in *val and *vlen, a varint's value in *num.  0 when malformed. */
static int field(const uint8_t **p, const uint8_t *end, uint32_t *no, const uint8_t **val,
                 size_t *vlen, uint64_t *num)
{
    size_t u;
    uint64_t key = varint(*p, end, &u);
    if (!u)
        return 0;
    *p += u;
    *no = (uint32_t)(key >> 3);
    switch (key & 7) {
    case 0:
        *num = varint(*p, end, &u);
        if (!u)
            return 0;
        *p += u;
        return 1;
    case 1:
    case 5: {
        size_t w = (key & 7) == 1 ? 8 : 4;
        if ((size_t)(end - *p) < w)
            return 0;
        *p += w;
        return 1;
    }
    case 2:
        *vlen = (size_t)varint(*p, end, &u);
        if (!u || *vlen > (size_t)(end - *p - u))
            return 0;
        *val = *p + u;
        *p += u + *vlen;
        return 1;
    default:
        return 0;
    }
}

/* Command { SnapshotWritten written = 2 { id = 1; dir = 2; error = 3 } } */
static void on_command(const uint8_t *p, const uint8_t *end)
{
    static char dir[sizeof(inbuf)], err[256];
    const uint8_t *val = NULL, *q, *qend;
    size_t vlen = 0;
    uint64_t num = 0, id = 0;
    uint32_t no;
    int found = 0;

    dir[0] = err[0] = 0;
    while (p < end) {
        if (!field(&p, end, &no, &val, &vlen, &num))
            return;
        if (no != 2 || !val)
            continue;
        found = 1;
        for (q = val, qend = val + vlen; q < qend;) {
            const uint8_t *s = NULL;
            size_t slen = 0;
            if (!field(&q, qend, &no, &s, &slen, &num))
                return;
            if (no == 1)
                id = num;
            else if ((no == 2 || no == 3) && s) {
                char *d = no == 2 ? dir : err;
                size_t cap = no == 2 ? sizeof(dir) : sizeof(err);
                if (slen >= cap)
                    slen = cap - 1;
                memcpy(d, s, slen);
                d[slen] = 0;
            }
        }
        val = NULL;
    }
    if (!found)
        return;
    for (int i = 0; i < CTL_CLIENTS; i++) {
        struct ctl_client *c = &cl[i];
        if (c->state != C_WAIT || c->id != id)
            continue;
        if (err[0] || !dir[0])
            answer(c, "error the collector could not write the snapshot: ",
                   err[0] ? err : "no directory", NULL);
        else
            answer_id(c, "dir ", id, dir);
    }
}

void pa_ctl_collector_input(int fd)
{
    for (;;) {
        long n = syscall(SYS_recvfrom, fd, inbuf + inlen, sizeof(inbuf) - inlen, MSG_DONTWAIT,
                         NULL, NULL);
        if (n <= 0)
            return; /* nothing now; a closed connection is the writer's to see */
        inlen += (size_t)n;
        size_t off = 0;
        for (;;) {
            size_t u;
            uint64_t len = varint(inbuf + off, inbuf + inlen, &u);
            if (!u)
                break;
            if (len > sizeof(inbuf) - u) {
                inlen = off = 0; /* not a frame we can hold: resynchronizing is hopeless */
                break;
            }
            if (off + u + len > inlen)
                break;
            on_command(inbuf + off + u, inbuf + off + u + len);
            off += u + len;
        }
        memmove(inbuf, inbuf + off, inlen - off);
        inlen -= off;
    }
}
