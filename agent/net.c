/*
 * net.c — socket and HTTP/1.x tracing (PERFAGENT_NET, default on): per-fd
 * state in a table indexed by fd, mapped at init (never the host heap).
 *
 * A connection's counters (bytes, calls, errors by errno) are summed in its
 * slot and sent as a SocketEvent "conn" when it closes, every
 * NET_FLUSH_NS while it lives, and at the final flush: one event per
 * connection, not per call.  On a plain-text HTTP/1.x connection each
 * request and its response make one SocketEvent "http" (http.c-like
 * parsing below: the first line and the headers that say where a
 * message ends: Content-Length, chunked, or the connection's end).
 * Requests wait in a FIFO until their response ends, so a peer that
 * pipelines (writes several requests, or several in one segment, before
 * the first response) has each response paired with its own request, and
 * such requests are marked pipelined rather than keep-alive.  Request and
 * response heads are read byte by byte by small state machines that keep
 * their place between calls (head_byte, resp_byte, hdr_byte), so a head
 * written or read in pieces (status or request line, headers and blank
 * line in separate writes, short reads) still ends where it ends, whatever
 * its length, and the next message is seen.  Bodies are skipped: a known
 * length at once, a chunked one (either direction) by its chunk sizes.
 *
 * Counters are bumped with relaxed atomics: a connection may be read by
 * one thread while another writes it.  The HTTP parser is not made safe
 * for that (a full-duplex HTTP/1 peer is rare); at worst one request is
 * misreported.  Everything here runs under the reentrancy guard and never
 * changes errno (hook_net.c saves it).
 */
#include "net.h"

#include "event.h"
#include "perfagent.pb-c.h"
#include "unwind.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define NET_PEER 112
#define NET_ERRS 6
#define NET_FLUSH_NS (10ull * 1000000000ull)
#define NET_WAIT_MIN_NS 1000000ull /* shorter blocking calls are not waits */
#define HTTP_PATH 128
#define HTTP_PIPE 8 /* requests in flight on one connection; more: not followed */

enum { R_HEAD, R_BODY };
/* Where the request head parser is (head_byte). */
enum { RS_IDLE, RS_METHOD, RS_PATH, RS_QUERY, RS_VERSION, RS_LINE, RS_HDR };
/* Where the response head parser is (resp_byte). */
enum { SS_IDLE, SS_VERSION, SS_STATUS, SS_LINE, SS_HDR };
enum { V_NONE, V_CLEN, V_TE }; /* the header value being read */
enum { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_DONE };

/* A request whose response has not ended. */
typedef struct http_req {
    uint8_t head;      /* HEAD request: no body whatever the headers say */
    uint8_t pipelined; /* sent while an earlier request's response had not ended */
    uint8_t reused;    /* not the connection's first request, not pipelined */
    char method[8];
    char path[HTTP_PATH];
    uint64_t start_ns, req_bytes;
} http_req_t;

/* The header lines of a head being read (hdr_byte), a few bytes whatever
 * the head's length. */
typedef struct hdrs {
    uint8_t lmatch;  /* this line: 1 "content-length:", 2 "transfer-encoding:" may still match */
    uint8_t lval;    /* V_*: in that header's value */
    uint8_t tmatch;  /* bytes of "chunked" matched in a Transfer-Encoding value */
    uint8_t chunked; /* Transfer-Encoding: chunked */
    uint16_t lpos;   /* bytes on the current line (CR not counted), saturating */
    int64_t clen;    /* Content-Length; -1 none yet, -2 the value is next */
} hdrs_t;

/* Where a message's body ends (body): after `left` bytes (-1: with the
 * connection), or a chunked body's last chunk and trailer. */
typedef struct msg_body {
    uint8_t chunked;
    uint8_t cstate; /* CH_* */
    uint8_t tline;  /* chunk trailer: bytes on the current line */
    int64_t left;
    uint64_t csize; /* bytes of the current chunk still to come */
} body_t;

/* Requests in order (a FIFO: HTTP/1 answers in request order, so the
 * response in progress is always the oldest request's).  Both heads are
 * read by state machines that keep their place here between calls, so
 * the memory per connection is fixed. */
typedef struct http {
    uint8_t off;      /* not HTTP/1 (or not followable): not looked at again */
    uint8_t rcont;    /* request-direction bytes that were not a request: the
                         last request's until a response begins */
    uint8_t resp;     /* R_HEAD: the oldest request's response has not begun */
    uint8_t first, n; /* q[first], ... n requests in flight */
    uint16_t status;
    uint32_t nreq;    /* requests begun on the connection */
    /* The response head being read (sstate != SS_IDLE), then its body. */
    uint8_t sstate;   /* SS_* */
    uint8_t spos;     /* bytes of "HTTP/1.x " or of the status so far */
    hdrs_t sh;
    body_t rb;
    /* The request head being read, which may come in pieces: the request
     * (method, path) is the slot after the last one in flight, and joins
     * them once its line reads "... HTTP/1."; then its body. */
    uint8_t rstate;   /* RS_* */
    uint8_t rpos;     /* bytes of the method, or of "HTTP/1.", so far */
    uint16_t plen;
    hdrs_t qh;
    body_t qb;
    uint64_t rstart, rbytes;
    uint64_t last_ns, resp_bytes;
    http_req_t q[HTTP_PIPE];
} http_t;

typedef struct sock {
    uint8_t transport; /* 0 tcp, 1 udp, 2 unix */
    uint8_t role;      /* PERFAGENT__SOCKET_ROLE__* */
    _Atomic uint8_t connecting;
    uint8_t opened_sent;
    int32_t connect_err;
    uint32_t stack_id;
    uint32_t tid;      /* the thread that made the connection */
    uint64_t open_ns, connect_start_ns, connect_ns;
    _Atomic uint64_t last_emit_ns;
    _Atomic uint64_t sent, recvd, calls_send, calls_recv;
    struct {
        _Atomic int32_t code;
        _Atomic uint64_t count;
    } errs[NET_ERRS];
    char peer[NET_PEER], local[NET_PEER];
    http_t http;
} sock_t;

PA_HIDDEN _Atomic uint8_t *pa_net_kind;
PA_HIDDEN _Atomic uint8_t *pa_net_nb;
static sock_t *socks;
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

static void fill_common(Perfagent__SocketEvent *ev, const sock_t *s)
{
    ev->tid = pa_tls.tid ? pa_tls.tid : pa_gettid();
    ev->role = (Perfagent__SocketRole)s->role;
    ev->peer = (char *)s->peer;
    ev->local = (char *)s->local;
    ev->transport = (char *)transports[s->transport];
    ev->stack_id = s->stack_id;
}

static void emit(Perfagent__SocketEvent *ev)
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

    fill_common(&ev, s);
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
    emit(&ev);
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

/* ---- HTTP/1.x ------------------------------------------------------------- */

static const char *const methods[] = {"GET",   "POST",    "PUT",     "DELETE", "HEAD",
                                      "PATCH", "OPTIONS", "CONNECT", "TRACE"};

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* A head's header lines start (after its first line). */
static void hdrs_begin(hdrs_t *x)
{
    x->lpos = 0, x->lmatch = 3, x->lval = V_NONE, x->tmatch = 0;
    x->chunked = 0, x->clen = -1;
}

/* One byte of a head's header lines, request or response: 1 when the head
 * ended with it (an empty line).  Content-Length and Transfer-Encoding are
 * matched as the bytes come, so a head cut anywhere (in a name, a value,
 * the final CRLF CRLF) reads the same as a whole one. */
static int hdr_byte(hdrs_t *x, int c)
{
    static const char cl[] = "content-length:", te[] = "transfer-encoding:", chunked[] = "chunked";
    int lc = lower(c);
    if (c == '\n') {
        if (!x->lpos)
            return 1;
        if (x->clen == -2)
            x->clen = -1; /* "Content-Length:" and no number */
        x->lpos = 0, x->lmatch = 3, x->lval = V_NONE;
        return 0;
    }
    if (c == '\r')
        return 0;
    if (x->lval == V_CLEN) {
        if (c >= '0' && c <= '9' && x->clen < (1ll << 50))
            x->clen = (x->clen < 0 ? 0 : x->clen * 10) + (c - '0');
        else if (c != ' ' || x->clen != -2)
            x->lval = V_NONE; /* the number ended */
    } else if (x->lval == V_TE) {
        if (lc == chunked[x->tmatch]) {
            if (++x->tmatch == sizeof(chunked) - 1)
                x->chunked = 1, x->tmatch = 0;
        } else {
            x->tmatch = lc == 'c';
        }
    } else if (x->lmatch) {
        if (x->lpos >= sizeof(cl) - 1 || lc != cl[x->lpos])
            x->lmatch &= (uint8_t)~1;
        if (x->lpos >= sizeof(te) - 1 || lc != te[x->lpos])
            x->lmatch &= (uint8_t)~2;
        if ((x->lmatch & 1) && x->lpos == sizeof(cl) - 2)
            x->lval = V_CLEN, x->lmatch = 0, x->clen = -2;
        if ((x->lmatch & 2) && x->lpos == sizeof(te) - 2)
            x->lval = V_TE, x->lmatch = 0, x->tmatch = 0;
    }
    if (x->lpos < UINT16_MAX)
        x->lpos++;
    return 0;
}

/* A body follows its head: chunked, or `clen` bytes (-1: until the
 * connection ends). */
static void body_begin(body_t *m, int chunked, int64_t clen)
{
    m->chunked = (uint8_t)chunked;
    m->cstate = CH_SIZE;
    m->tline = 0;
    m->csize = 0;
    m->left = chunked ? 0 : clen;
}

/* The oldest request in flight, with its response as far as it went, as
 * one "http" event; the next request's response is next. */
static void http_emit(sock_t *s, int incomplete)
{
    http_t *h = &s->http;
    http_req_t *r = &h->q[h->first];
    Perfagent__SocketEvent ev = PERFAGENT__SOCKET_EVENT__INIT;
    static char op[] = "http";
    fill_common(&ev, s);
    ev.op = op;
    ev.start_ticks = r->start_ns;
    /* No response byte: no latency (last_ns may be an earlier response's). */
    ev.duration_ns = h->resp_bytes && h->last_ns > r->start_ns ? h->last_ns - r->start_ns : 0;
    ev.http_method = r->method;
    ev.http_target = r->path;
    ev.http_status = h->status;
    ev.http_request_bytes = r->req_bytes;
    ev.http_response_bytes = h->resp_bytes;
    ev.http_reused = r->reused;
    ev.http_pipelined = r->pipelined;
    ev.http_incomplete = incomplete;
    emit(&ev);
    h->first = (uint8_t)((h->first + 1) % HTTP_PIPE);
    h->n--;
    h->resp = R_HEAD;
    h->sstate = SS_IDLE; /* a head cut by the connection's end */
    h->status = 0;
    h->resp_bytes = 0;
    body_begin(&h->rb, 0, 0);
}

/* Whether the response in flight ends with the connection. */
static int resp_to_end(const http_t *h)
{
    return h->resp == R_BODY && h->rb.left < 0 && !h->rb.chunked;
}

/* Every request in flight, when the connection ends (or at exit): the
 * oldest's response is complete if it was one that ends with the
 * connection. */
static void http_close(sock_t *s)
{
    http_t *h = &s->http;
    while (h->n)
        http_emit(s, !resp_to_end(h));
}

/* Body bytes b[0..n) (b NULL: not visible) of a message, either
 * direction: 1 when it ended, *used = the bytes that were its own (the rest
 * is the next message's).  A known length is skipped at once; a chunked
 * body is read byte by byte only where its sizes and CRLFs are. */
static int body(body_t *m, const char *b, size_t n, size_t *used)
{
    *used = n;
    if (!m->chunked) {
        if (m->left < 0)
            return 0;
        if ((int64_t)n > m->left)
            *used = (size_t)m->left;
        m->left -= (int64_t)*used;
        return m->left == 0;
    }
    for (size_t i = 0; i < n; i++) {
        int c = b ? b[i] : 'x';
        switch (m->cstate) {
        case CH_SIZE:
            if (c >= '0' && c <= '9')
                m->csize = m->csize * 16 + (uint64_t)(c - '0');
            else if (lower(c) >= 'a' && lower(c) <= 'f')
                m->csize = m->csize * 16 + (uint64_t)(lower(c) - 'a' + 10);
            else
                m->cstate = c == '\r' ? CH_SIZE_LF : CH_EXT;
            break;
        case CH_EXT:
            if (c == '\r')
                m->cstate = CH_SIZE_LF;
            break;
        case CH_SIZE_LF:
            m->cstate = m->csize ? CH_DATA : CH_TRAILER;
            m->tline = 0;
            break;
        case CH_DATA: {
            uint64_t take = n - i < m->csize ? n - i : m->csize;
            m->csize -= take;
            i += take - 1;
            if (!m->csize)
                m->cstate = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            m->cstate = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            m->cstate = CH_SIZE;
            break;
        case CH_TRAILER: /* lines until an empty one */
            if (c == '\n') {
                if (m->tline <= 1) {
                    m->cstate = CH_DONE;
                    *used = i + 1;
                    return 1;
                }
                m->tline = 0;
            } else {
                m->tline++;
            }
            break;
        }
    }
    return 0;
}

/* Body bytes of the data from offset `skip` on: 1 when the message ended,
 * *used = how many of them were its own. */
static int body_iov(body_t *m, const struct iovec *iov, int iovcnt, size_t skip, size_t total,
                    size_t *used)
{
    size_t u, done = 0;
    if (!iov || !m->chunked)
        return body(m, NULL, total - skip, used);
    for (int i = 0; i < iovcnt && total; i++) {
        size_t k = iov[i].iov_len < total ? iov[i].iov_len : total;
        total -= k;
        if (skip >= k) {
            skip -= k;
            continue;
        }
        int end = body(m, (const char *)iov[i].iov_base + skip, k - skip, &u);
        done += u;
        if (end) {
            *used = done;
            return 1;
        }
        skip = 0;
    }
    *used = done;
    return 0;
}

/* The request being read joins the FIFO (its line is a request's). */
static void req_commit(sock_t *s, http_req_t *r)
{
    http_t *h = &s->http;
    /* A response that was to end with the connection, and a new request
     * on it: it did not (it could not be followed). */
    if (h->n && resp_to_end(h))
        http_emit(s, 1); /* r stays the slot after the last one */
    r->pipelined = h->n > 0;
    r->reused = !r->pipelined && h->nreq > 0;
    r->start_ns = h->rstart;
    h->nreq++;
    h->n++;
}

/* One byte of a request head: 0 more to come, 1 the head ended with it,
 * -1 this is not a request (nothing was committed). */
static int head_byte(sock_t *s, int c)
{
    static const char ver[] = "HTTP/1.";
    http_t *h = &s->http;
    http_req_t *r = &h->q[(h->first + h->n) % HTTP_PIPE];
    switch (h->rstate) {
    case RS_METHOD:
        if (c == ' ') {
            r->method[h->rpos] = 0;
            for (unsigned m = 0; m < PA_ARRAY_LEN(methods); m++)
                if (pa_streq(r->method, methods[m])) {
                    r->head = m == 4;
                    h->rstate = RS_PATH;
                    h->plen = 0;
                    r->path[0] = 0;
                    return 0;
                }
            return -1;
        }
        if (c < 'A' || c > 'Z' || h->rpos >= sizeof(r->method) - 1)
            return -1;
        r->method[h->rpos++] = (char)c;
        return 0;
    case RS_PATH:
    case RS_QUERY: /* the query string is dropped */
        if (c == '\r' || c == '\n')
            return -1; /* HTTP/0.9 or not HTTP */
        if (c == ' ') {
            h->rstate = RS_VERSION;
            h->rpos = 0;
        } else if (c == '?') {
            h->rstate = RS_QUERY;
        } else if (h->rstate == RS_PATH && h->plen < HTTP_PATH - 1) {
            r->path[h->plen++] = (char)c;
            r->path[h->plen] = 0;
        }
        return 0;
    case RS_VERSION:
        if (c != ver[h->rpos])
            return -1;
        if (++h->rpos == sizeof(ver) - 1) {
            h->rstate = RS_LINE;
            req_commit(s, r);
        }
        return 0;
    case RS_LINE: /* the rest of the request line */
        if (c == '\n') {
            h->rstate = RS_HDR;
            hdrs_begin(&h->qh);
        }
        return 0;
    }
    return hdr_byte(&h->qh, c); /* RS_HDR */
}

/* One byte of a response head ("HTTP/1.x NNN ...", header lines, an empty
 * line): 0 more to come, 1 the head ended with it, -1 not a response. */
static int resp_byte(http_t *h, int c)
{
    static const char ver[] = "HTTP/1.";
    switch (h->sstate) {
    case SS_VERSION: /* "HTTP/1.", the minor version, a space */
        if (h->spos < sizeof(ver) - 1 ? c != ver[h->spos] : h->spos == sizeof(ver) && c != ' ')
            return -1;
        if (++h->spos == sizeof(ver) + 1)
            h->sstate = SS_STATUS, h->spos = 0, h->status = 0;
        return 0;
    case SS_STATUS:
        if (c < '0' || c > '9')
            return -1;
        h->status = (uint16_t)(h->status * 10 + (c - '0'));
        if (++h->spos == 3)
            h->sstate = SS_LINE;
        return 0;
    case SS_LINE: /* the reason phrase */
        if (c == '\n') {
            h->sstate = SS_HDR;
            hdrs_begin(&h->sh);
        }
        return 0;
    }
    return hdr_byte(&h->sh, c); /* SS_HDR */
}

/* Whether a head's bytes up to the next LF cannot matter: the rest of its
 * first line, or a header line that is not one the parser reads (lpos is
 * nonzero then, and only has to stay so). */
static int head_skip(const http_t *h, int resp)
{
    const hdrs_t *x = resp ? &h->sh : &h->qh;
    int st = resp ? h->sstate : h->rstate;
    if (st == (resp ? SS_LINE : RS_LINE))
        return 1;
    return st == (resp ? SS_HDR : RS_HDR) && !x->lmatch && x->lval == V_NONE;
}

/* Feeds bytes [skip, total) of the data to head_byte (a request head) or
 * resp_byte (a response head) until the head ends or is found not to be
 * one (*res 1 or -1) or the data ends (*res 0); returns how many it took.
 * The bytes that cannot matter (head_skip) are passed over with memchr:
 * most of a head (Date, Server, cookies) is read at memchr's speed. */
static size_t head_feed(sock_t *s, int resp, const struct iovec *iov, int iovcnt, size_t skip,
                        size_t total, int *res)
{
    size_t used = 0;
    *res = 0;
    for (int i = 0; i < iovcnt && total; i++) {
        size_t k = iov[i].iov_len < total ? iov[i].iov_len : total;
        const char *p = iov[i].iov_base;
        total -= k;
        if (skip >= k) {
            skip -= k;
            continue;
        }
        for (size_t j = skip; j < k; j++) {
            if (head_skip(&s->http, resp)) {
                const char *nl = __builtin_memchr(p + j, '\n', k - j);
                size_t to = nl ? (size_t)(nl - p) : k;
                used += to - j;
                if ((j = to) == k)
                    break;
            }
            used++;
            if ((*res = resp ? resp_byte(&s->http, p[j]) : head_byte(s, p[j])) != 0)
                return used;
        }
        skip = 0;
    }
    return used;
}

/* Request-direction bytes: new requests (several in one segment when the
 * peer pipelines), more of a head, or a body.  t: when they were sent
 * (client) or arrived (server). */
static void http_req(sock_t *s, const struct iovec *iov, int iovcnt, size_t total, uint64_t t)
{
    http_t *h = &s->http;
    size_t off = 0;
    while (off < total) {
        http_req_t *last = h->n ? &h->q[(h->first + h->n - 1) % HTTP_PIPE] : NULL;
        size_t used;
        int res;
        if (h->rcont) { /* more of the last request, of unknown length */
            if (last)
                last->req_bytes += total - off;
            return;
        }
        if (h->qb.left > 0 || h->qb.chunked) { /* the last request's body */
            int end = body_iov(&h->qb, iov, iovcnt, off, total, &used);
            if (last)
                last->req_bytes += used;
            off += used;
            if (end)
                body_begin(&h->qb, 0, 0);
            continue;
        }
        if (h->rstate == RS_IDLE) { /* a new request begins here */
            if (h->n == HTTP_PIPE) { /* too deep to follow: stop here */
                http_close(s);
                h->off = 1;
                return;
            }
            h->rstate = RS_METHOD;
            h->rpos = 0;
            hdrs_begin(&h->qh);
            h->rstart = t;
            h->rbytes = 0;
        }
        used = iov ? head_feed(s, 0, iov, iovcnt, off, total, &res) : 0;
        if (!iov)
            res = -1; /* not visible (sendfile): cannot be followed */
        off += used;
        h->rbytes += used;
        if (h->rstate >= RS_LINE) /* committed: the last request */
            h->q[(h->first + h->n - 1) % HTTP_PIPE].req_bytes = h->rbytes;
        if (res < 0) {
            h->rstate = RS_IDLE;
            if (!h->nreq) {
                h->off = 1; /* not HTTP/1: stop looking at this connection */
                return;
            }
            if (last)
                last->req_bytes += h->rbytes;
            h->rcont = 1; /* not a request line: the last request's */
            continue;
        }
        if (res == 0)
            return; /* the head goes on in the next call */
        h->rstate = RS_IDLE;
        /* A body of known length is skipped, a chunked one parsed, so the
         * next pipelined request is seen where it starts. */
        body_begin(&h->qb, h->qh.chunked, h->qh.clen < 0 ? 0 : h->qh.clen);
    }
}

/* Response-direction bytes: more of a head (which may come in pieces, cut
 * anywhere), a body, or the end of one response and the start of the next
 * in one segment (pipelining). */
static void http_resp(sock_t *s, const struct iovec *iov, int iovcnt, size_t total, uint64_t t)
{
    http_t *h = &s->http;
    size_t off = 0, used;
    h->last_ns = t;
    h->rcont = 0; /* a response began: whatever the request was, it is over */
    while (off < total && h->n) {
        if (h->resp == R_HEAD) {
            int res = -1;
            if (h->sstate == SS_IDLE)
                h->sstate = SS_VERSION, h->spos = 0;
            used = iov ? head_feed(s, 1, iov, iovcnt, off, total, &res) : 0;
            h->resp_bytes += used;
            off += used;
            if (res == 0)
                return; /* the head goes on in the next call */
            h->sstate = SS_IDLE;
            if (res < 0) { /* cannot be followed: it ends with the connection */
                h->resp = R_BODY;
                h->status = 0;
                body_begin(&h->rb, 0, -1);
                h->resp_bytes += total - off;
                return;
            }
            if (h->status >= 100 && h->status < 200)
                continue; /* interim: the real one follows */
            h->resp = R_BODY;
            body_begin(&h->rb, h->sh.chunked, h->sh.clen);
            if (h->q[h->first].head || h->status == 204 || h->status == 304 ||
                (!h->rb.chunked && h->rb.left == 0)) {
                h->rb.left = 0;
                http_emit(s, 0); /* complete without a body */
            }
            continue;
        }
        int end = body_iov(&h->rb, iov, iovcnt, off, total, &used);
        h->resp_bytes += used;
        off += used;
        if (!end)
            return;
        http_emit(s, 0);
    }
}

/* Not inlined: the parsers would crowd pa_net_io's registers, which every
 * call on a traced socket pays for, HTTP or not (the caller tests `off`). */
static __attribute__((noinline)) void http_data(sock_t *s, int dir, const struct iovec *iov,
                                                int iovcnt, size_t total, uint64_t t0,
                                                uint64_t t1)
{
    int client = s->role == PERFAGENT__SOCKET_ROLE__ROLE_CLIENT;
    if ((dir == PA_NET_SEND) == client)
        http_req(s, iov, iovcnt, total, client ? t0 : t1);
    else
        http_resp(s, iov, iovcnt, total, t1);
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
    emit(&ev);
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
    emit(&ev);
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
            http_data(s, dir, iov, iovcnt, (size_t)r, t0, now);
        }
    }
    else if (dir == PA_NET_RECV && s->http.n && resp_to_end(&s->http))
        http_emit(s, 0); /* the peer closed: that was the end of the response */
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
    http_close(s);
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
            http_close(&socks[fd]);
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
