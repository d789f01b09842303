/*
 * net.c — socket tracing (PERFAGENT_NET, default on): per-fd state in a
 * table indexed by fd, mapped at init (never the host heap).
 *
 * A connection's counters (bytes, calls, errors by errno) are summed in its
 * slot and sent as a SocketEvent "conn" when it closes, every
 * NET_FLUSH_NS while it lives, and at the final flush: one event per
 * connection, not per call.  A plain-text HTTP/1.x connection's bytes also
 * go to the parser in net_http.c (one "http" event a request).  Calls that
 * blocked 1 ms or more are "wait" events; getaddrinfo calls "dns" ones.
 *
 * Counters are bumped with relaxed atomics: a connection may be read by
 * one thread while another writes it.  Everything here runs under the
 * reentrancy guard and never changes errno (hook_net.c saves it).
 */
#include "net_int.h"

#include "event.h"
#include "unwind.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

PA_HIDDEN _Atomic uint8_t *pa_net_kind;
PA_HIDDEN _Atomic uint8_t *pa_net_nb;
static sock_t *socks;
/* For the hooks' prefetch of a slot (net.h pa_net_io_start). */
PA_HIDDEN char *pa_net_slots;
PA_HIDDEN const size_t pa_net_slot_size = sizeof(sock_t);
static _Atomic int hiwater; /* above every fd ever traced: the scans stop here */

static const char *const transports[] = {"tcp", "udp", "unix"};

int pa_net_init(void)
{
    /* Pages are touched only for fds in use.  Not wiped in a fork child:
     * the child has the parent's sockets too, and a server that accepts
     * and then forks (postgres, a forking HTTP server) serves the
     * connection in the child (pa_net_after_fork_child). */
    _Atomic uint8_t *k = pa_mmap(PA_NET_MAX_FD);
    pa_net_nb = pa_mmap(PA_NET_MAX_FD);
    socks = pa_mmap(sizeof(sock_t) * PA_NET_MAX_FD);
    if (!k || !socks || !pa_net_nb)
        return -1;
    pa_net_slots = (char *)socks;
    pa_net_kind = k;
    return 0;
}

/* Every time in this file comes from here (pa_fast_ns: CLOCK_MONOTONIC
 * estimated from the TSC); a recalibration may set it back by a few ns
 * between two reads, so differences go through elapsed(). */
uint64_t pa_net_now(void)
{
    return pa_fast_ns();
}

static uint64_t elapsed(uint64_t t0, uint64_t now)
{
    return now > t0 ? now - t0 : 0;
}

/* ---- addresses ------------------------------------------------------------ */

static void fmt_addr(const struct sockaddr *sa, socklen_t len, char *out)
{
    char host[INET6_ADDRSTRLEN], num[8], *p = out;
    out[0] = 0;
    if (!sa || len < sizeof(sa_family_t))
        return;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const void *)sa;
        if (!inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)))
            return;
        p += pa_strlcpy(p, host, NET_PEER);
        *p++ = ':';
        pa_u64toa(ntohs(in->sin_port), num);
        pa_strlcpy(p, num, 8);
    } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        if (!inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)))
            return;
        *p++ = '[';
        p += pa_strlcpy(p, host, NET_PEER - 2);
        *p++ = ']';
        *p++ = ':';
        pa_u64toa(ntohs(in6->sin6_port), num);
        pa_strlcpy(p, num, 8);
    } else if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = (const void *)sa;
        size_t n = len - offsetof(struct sockaddr_un, sun_path), i = 0;
        if (n > sizeof(un->sun_path))
            n = sizeof(un->sun_path);
        if (n == 0) {
            pa_strlcpy(out, "unix:(unnamed)", NET_PEER);
            return;
        }
        p += pa_strlcpy(p, "unix:", 8);
        if (un->sun_path[0] == 0) { /* abstract: "@name" as ss(8) shows it */
            *p++ = '@';
            i = 1;
        }
        for (; i < n && un->sun_path[i] && p < out + NET_PEER - 1; i++)
            *p++ = un->sun_path[i];
        *p = 0;
    }
}

static void sock_name(int fd, int peer, char *out)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    /* Raw syscalls: neither sets the host's errno nor meets a hook. */
    if (syscall(peer ? SYS_getpeername : SYS_getsockname, fd, &ss, &len) != 0) {
        out[0] = 0;
        return;
    }
    fmt_addr((struct sockaddr *)&ss, len, out);
}

static uint8_t transport_of(int fd, int family)
{
    int type = 0;
    socklen_t len = sizeof(type);
    if (family == AF_UNIX)
        return 2;
    syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_TYPE, &type, &len);
    return type == SOCK_DGRAM ? 1 : 0;
}

/* ---- events ----------------------------------------------------------------- */

void pa_net_fill_common(Perfagent__SocketEvent *ev, const sock_t *s)
{
    ev->tid = pa_tls.tid ? pa_tls.tid : pa_gettid();
    ev->role = (Perfagent__SocketRole)s->role;
    ev->peer = (char *)s->peer;
    ev->local = (char *)s->local;
    ev->transport = (char *)transports[s->transport];
    ev->stack_id = s->stack_id;
}

void pa_net_emit(Perfagent__SocketEvent *ev)
{
    pa_event_t e;
    size_t need = perfagent__socket_event__get_packed_size(ev);
    uint8_t *p = pa_event_reserve(PA_WIRE_EVENT_SOCKET, (uint32_t)need, &e);
    if (p)
        pa_event_commit(&e, perfagent__socket_event__pack(ev, p));
}

/* The counters since the last "conn" event (taken: two threads flushing
 * at once each send what they took, and no byte is sent twice). */
static void emit_conn(sock_t *s, int closed, uint64_t now)
{
    Perfagent__SocketEvent ev = PERFAGENT__SOCKET_EVENT__INIT;
    Perfagent__SocketErrno errs[NET_ERRS], *perr[NET_ERRS];
    static char op[] = "conn";
    size_t n = 0;

    pa_net_fill_common(&ev, s);
    ev.tid = s->tid; /* a connection's track is its maker's */
    ev.op = op;
    ev.start_ticks = s->open_ns;
    ev.bytes_sent = atomic_exchange_explicit(&s->sent, 0, memory_order_relaxed);
    ev.bytes_received = atomic_exchange_explicit(&s->recvd, 0, memory_order_relaxed);
    ev.calls_send = atomic_exchange_explicit(&s->calls_send, 0, memory_order_relaxed);
    ev.calls_recv = atomic_exchange_explicit(&s->calls_recv, 0, memory_order_relaxed);
    for (unsigned i = 0; i < NET_ERRS; i++) {
        uint64_t c = atomic_exchange_explicit(&s->errs[i].count, 0, memory_order_relaxed);
        if (!c)
            continue;
        perfagent__socket_errno__init(&errs[n]);
        errs[n].code = atomic_load_explicit(&s->errs[i].code, memory_order_relaxed);
        errs[n].count = c;
        perr[n] = &errs[n];
        n++;
    }
    ev.n_errors = n;
    ev.errors = perr;
    if (!s->opened_sent) {
        s->opened_sent = 1;
        ev.opened = 1;
        ev.error = s->connect_err;
        ev.connect_ns = s->connect_ns;
        ev.connect_start_ticks = s->connect_start_ns;
    }
    ev.closed = closed;
    ev.duration_ns = now > s->open_ns ? now - s->open_ns : 0; /* lifetime so far */
    atomic_store_explicit(&s->last_emit_ns, now, memory_order_relaxed);
    pa_net_emit(&ev);
}

static void count_err(sock_t *s, int err)
{
    /* Not failures: a non-blocking socket with nothing to do, a signal. */
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == EINPROGRESS)
        return;
    for (unsigned i = 0; i < NET_ERRS; i++) {
        int32_t c = atomic_load_explicit(&s->errs[i].code, memory_order_relaxed);
        if (c == 0) {
            int32_t z = 0;
            if (!atomic_compare_exchange_strong(&s->errs[i].code, &z, err) && z != err)
                continue;
            c = err;
        }
        if (c == err) {
            atomic_fetch_add_explicit(&s->errs[i].count, 1, memory_order_relaxed);
            return;
        }
    }
}

/* ---- the calls --------------------------------------------------------------- */

static void sock_reset(int fd, int family, uint8_t transport, int role)
{
    sock_t *s = &socks[fd];
    __builtin_memset(s, 0, sizeof(*s));
    s->transport = transport;
    s->role = (uint8_t)role;
    s->open_ns = pa_net_now();
    s->tid = pa_tls.tid ? pa_tls.tid : pa_gettid();
    atomic_store_explicit(&s->last_emit_ns, s->open_ns, memory_order_relaxed);
    (void)family;
    for (int h = atomic_load_explicit(&hiwater, memory_order_relaxed); fd >= h;)
        if (atomic_compare_exchange_weak(&hiwater, &h, fd + 1))
            break;
}

void pa_net_socket(int fd, int domain, int type)
{
    int t = type & 0xf;
    if ((unsigned)fd >= PA_NET_MAX_FD ||
        (domain != AF_INET && domain != AF_INET6 && domain != AF_UNIX) ||
        (t != SOCK_STREAM && t != SOCK_DGRAM))
        return;
    pa_tls.guard++;
    sock_reset(fd, domain, domain == AF_UNIX ? 2 : t == SOCK_DGRAM ? 1 : 0, 0);
    pa_net_set_nonblock(fd, (type & SOCK_NONBLOCK) != 0);
    atomic_store(&pa_net_kind[fd], PA_NET_SOCKET);
    pa_tls.guard--;
}

void pa_net_connect_begin(int fd, const struct sockaddr *sa, socklen_t len, uintptr_t from)
{
    int failed;
    sock_t *s;
    if ((unsigned)fd >= PA_NET_MAX_FD || !sa || len < sizeof(sa_family_t) ||
        (sa->sa_family != AF_INET && sa->sa_family != AF_INET6 && sa->sa_family != AF_UNIX))
        return;
    s = &socks[fd];
    if (atomic_load(&pa_net_kind[fd]) == PA_NET_CONN) {
        /* A non-blocking connect asked again, or a UDP socket re-aimed:
         * the connection stays what it was. */
        return;
    }
    pa_tls.guard++;
    if (atomic_load(&pa_net_kind[fd]) == PA_NET_NONE)
        sock_reset(fd, sa->sa_family, transport_of(fd, sa->sa_family), 0);
    s->role = PERFAGENT__SOCKET_ROLE__ROLE_CLIENT;
    s->tid = pa_tls.tid ? pa_tls.tid : pa_gettid();
    fmt_addr(sa, len, s->peer);
    s->stack_id = pa_stack_id_from(from, pa_cfg.max_frames, &failed);
    s->connect_start_ns = pa_net_now();
    atomic_store(&s->connecting, 1);
    atomic_store(&pa_net_kind[fd], PA_NET_CONN);
    pa_tls.guard--;
}

static void connect_done(sock_t *s, int fd, int err, uint64_t now)
{
    uint8_t one = 1;
    if (!atomic_compare_exchange_strong(&s->connecting, &one, 0))
        return;
    s->connect_ns = elapsed(s->connect_start_ns, now);
    s->connect_err = err;
    if (err)
        count_err(s, err);
    else
        sock_name(fd, 0, s->local);
}

void pa_net_connect_end(int fd, int r, int err)
{
    sock_t *s = &socks[fd];
    if ((unsigned)fd >= PA_NET_MAX_FD || atomic_load(&pa_net_kind[fd]) != PA_NET_CONN)
        return;
    pa_tls.guard++;
    if (r == 0 || err == EISCONN)
        connect_done(s, fd, 0, pa_net_now());
    else if (err != EINPROGRESS && err != EALREADY && err != EINTR && err != EAGAIN)
        connect_done(s, fd, err, pa_net_now());
    pa_tls.guard--;
}

void pa_net_connect_result(int fd, int soerr)
{
    sock_t *s = &socks[fd];
    if (!atomic_load(&s->connecting))
        return;
    pa_tls.guard++;
    connect_done(s, fd, soerr, pa_net_now());
    pa_tls.guard--;
}

void pa_net_poll_ready(int fd, int ok)
{
    /* Writable: connected.  An error: the errno comes with the host's
     * getsockopt(SO_ERROR) or its next call (reading SO_ERROR here would
     * clear it for the host). */
    if (ok)
        pa_net_connect_result(fd, 0);
}

void pa_net_accept(int fd, int nonblock, uintptr_t from)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int failed;
    sock_t *s;
    if ((unsigned)fd >= PA_NET_MAX_FD)
        return;
    pa_tls.guard++;
    s = &socks[fd];
    if (syscall(SYS_getsockname, fd, &ss, &len) != 0)
        ss.ss_family = AF_INET;
    sock_reset(fd, ss.ss_family, ss.ss_family == AF_UNIX ? 2 : 0, PERFAGENT__SOCKET_ROLE__ROLE_SERVER);
    fmt_addr((struct sockaddr *)&ss, len, s->local);
    sock_name(fd, 1, s->peer);
    s->stack_id = pa_stack_id_from(from, pa_cfg.max_frames, &failed);
    pa_net_set_nonblock(fd, nonblock);
    atomic_store(&pa_net_kind[fd], PA_NET_CONN);
    pa_tls.guard--;
}

void pa_net_set_nonblock(int fd, int on)
{
    if ((unsigned)fd < PA_NET_MAX_FD && pa_net_nb)
        atomic_store_explicit(&pa_net_nb[fd], (uint8_t)(on != 0), memory_order_relaxed);
}

static void emit_wait(const char *call, uint64_t t0, uint64_t ns, uintptr_t from)
{
    Perfagent__SocketEvent ev = PERFAGENT__SOCKET_EVENT__INIT;
    static char op[] = "wait";
    int failed;
    ev.tid = pa_tls.tid ? pa_tls.tid : pa_gettid();
    ev.op = op;
    ev.call = (char *)call;
    ev.start_ticks = t0;
    ev.duration_ns = ns;
    ev.stack_id = pa_stack_id_from(from, pa_cfg.max_frames, &failed);
    pa_net_emit(&ev);
}

void pa_net_dns(const char *node, int rc, uint64_t t0)
{
    Perfagent__SocketEvent ev = PERFAGENT__SOCKET_EVENT__INIT;
    static char op[] = "dns";
    char name[256];
    uint64_t now = pa_net_now();
    pa_tls.guard++;
    pa_strlcpy(name, node ? node : "", sizeof(name));
    ev.tid = pa_tls.tid ? pa_tls.tid : pa_gettid();
    ev.op = op;
    ev.peer = name;
    ev.error = rc;
    ev.start_ticks = t0;
    ev.duration_ns = elapsed(t0, now);
    pa_net_emit(&ev);
    pa_tls.guard--;
}

void pa_net_wait(const char *call, uint64_t t0, uintptr_t from)
{
    uint64_t now = pa_net_now();
    if (elapsed(t0, now) < NET_WAIT_MIN_NS)
        return;
    pa_tls.guard++;
    emit_wait(call, t0, elapsed(t0, now), from);
    pa_tls.guard--;
}

/* t0 == 0: an untimed call (pa_net_io_start: it could not block); the
 * clock is read here only when something needs a time. */
void pa_net_io(int fd, int dir, const struct iovec *iov, int iovcnt, long r, int err, uint64_t t0,
               uintptr_t from)
{
    sock_t *s = &socks[fd];
    uint64_t now = 0;
    pa_tls.guard++;
    if (t0) {
        now = pa_net_now();
        if (elapsed(t0, now) >= NET_WAIT_MIN_NS)
            emit_wait(dir == PA_NET_SEND ? "send" : "recv", t0, elapsed(t0, now), from);
    }
    if (atomic_load_explicit(&s->connecting, memory_order_relaxed)) {
        if (!now)
            t0 = now = pa_net_now();
        if (r >= 0)
            connect_done(s, fd, 0, t0);
        else if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR)
            connect_done(s, fd, err, now), err = 0; /* counted once, as the connect's */
    }
    if (r < 0) {
        if (err && err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
            atomic_fetch_add_explicit(dir == PA_NET_SEND ? &s->calls_send : &s->calls_recv, 1,
                                      memory_order_relaxed);
            count_err(s, err);
        }
        goto out;
    }
    atomic_fetch_add_explicit(dir == PA_NET_SEND ? &s->calls_send : &s->calls_recv, 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(dir == PA_NET_SEND ? &s->sent : &s->recvd, (uint64_t)r,
                              memory_order_relaxed);
    if (r > 0) {
        if (!s->http.off && s->transport != 1) {
            if (!now)
                t0 = now = pa_net_now();
            pa_http_data(s, dir, iov, iovcnt, (size_t)r, t0, now);
        }
    }
    else if (dir == PA_NET_RECV && s->http.n && pa_http_resp_to_end(&s->http))
        pa_http_emit(s, 0); /* the peer closed: that was the end of the response */
    /* An untimed call asks the sender's clock (read each round) whether the
     * connection is due for its periodic event. */
    if (elapsed(atomic_load_explicit(&s->last_emit_ns, memory_order_relaxed),
                now ? now : pa_coarse_ns()) > NET_FLUSH_NS)
        emit_conn(s, 0, now ? now : pa_net_now());
out:
    pa_tls.guard--;
}

void pa_net_close(int fd)
{
    sock_t *s;
    if ((unsigned)fd >= PA_NET_MAX_FD || !pa_net_kind)
        return;
    atomic_store_explicit(&pa_net_nb[fd], 0, memory_order_relaxed); /* the number's next socket */
    if (atomic_exchange(&pa_net_kind[fd], PA_NET_NONE) != PA_NET_CONN)
        return;
    pa_tls.guard++;
    s = &socks[fd];
    pa_http_close(s);
    emit_conn(s, 1, pa_net_now());
    pa_tls.guard--;
}

void pa_net_flush(void)
{
    uint64_t now;
    if (!pa_net_kind)
        return;
    pa_tls.guard++;
    now = pa_net_now();
    for (int fd = 0, n = atomic_load(&hiwater); fd < n; fd++)
        if (atomic_load_explicit(&pa_net_kind[fd], memory_order_relaxed) == PA_NET_CONN) {
            pa_http_close(&socks[fd]);
            emit_conn(&socks[fd], 0, now);
        }
    pa_tls.guard--;
}

/* The child has every socket the parent had, and the parent reports what
 * it did on them (its counters' unsent part included).  Each connection
 * starts over here as the child's own: opened now, by this thread, no
 * bytes yet, its HTTP parser at a message boundary (a request the parent
 * had half read is the parent's), and no connect of its own (so connect
 * latency is counted once, in the process that connected). */
void pa_net_after_fork_child(void)
{
    uint64_t now;
    uint32_t tid = pa_gettid();
    if (!pa_net_kind)
        return;
    now = pa_net_now();
    for (int fd = 0, n = atomic_load(&hiwater); fd < n; fd++) {
        sock_t *s = &socks[fd];
        if (atomic_load_explicit(&pa_net_kind[fd], memory_order_relaxed) != PA_NET_CONN)
            continue;
        atomic_store_explicit(&s->sent, 0, memory_order_relaxed);
        atomic_store_explicit(&s->recvd, 0, memory_order_relaxed);
        atomic_store_explicit(&s->calls_send, 0, memory_order_relaxed);
        atomic_store_explicit(&s->calls_recv, 0, memory_order_relaxed);
        for (unsigned i = 0; i < NET_ERRS; i++)
            atomic_store_explicit(&s->errs[i].count, 0, memory_order_relaxed);
        __builtin_memset(&s->http, 0, sizeof(s->http));
        s->opened_sent = 0;
        s->connect_err = 0;
        s->connect_ns = s->connect_start_ns = 0;
        atomic_store_explicit(&s->connecting, 0, memory_order_relaxed);
        s->open_ns = now;
        s->tid = tid;
        atomic_store_explicit(&s->last_emit_ns, now, memory_order_relaxed);
    }
}
