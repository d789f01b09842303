/*
 * net.c — socket and HTTP/1.x tracing (PERFAGENT_NET, default on): per-fd
 * state in a table indexed by fd, mapped at init (never the host heap).
 *
 * A connection's counters (bytes, calls, errors by errno) are summed in its
 * slot and sent as a SocketEvent "conn" when it closes, every
 * NET_FLUSH_NS while it lives, and at the final flush: one event per
 * connection, not per call.  On a plain-text HTTP/1.x connection each
 * request and its response make one SocketEvent "http" (http.c-like
 * parsing below: the first line and the headers that say where the
 * response ends: Content-Length, chunked, or the connection's end).
 * Requests wait in a FIFO until their response ends, so a peer that
 * pipelines (writes several requests, or several in one segment, before
 * the first response) has each response paired with its own request, and
 * such requests are marked pipelined rather than keep-alive.  A request's
 * head is read byte by byte by a small state machine that keeps its place
 * between calls (head_byte), so a head written or read in pieces (request
 * line, headers and blank line in separate writes, a server's short
 * reads) still ends where it ends and the next pipelined request is seen.
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
#define HTTP_HDR 4096 /* response headers are looked for in this much of a segment */
#define HTTP_PIPE 8   /* requests in flight on one connection; more: not followed */

enum { R_HEAD, R_BODY };
/* Where the request head parser is (head_byte). */
enum { RS_IDLE, RS_METHOD, RS_PATH, RS_QUERY, RS_VERSION, RS_LINE, RS_HDR };
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

/* Requests in order (a FIFO: HTTP/1 answers in request order, so the
 * response in progress is always the oldest request's). */
typedef struct http {
    uint8_t off;      /* not HTTP/1 (or not followable): not looked at again */
    uint8_t rcont;    /* the last request goes on for an unknown length (a head
                         split over writes, a chunked body): request-direction
                         bytes are its own until a response begins */
    uint8_t resp;     /* R_HEAD: the oldest request's response has not begun */
    uint8_t chunked;
    uint8_t cstate;   /* chunk parser */
    uint8_t tline;    /* chunk trailer: bytes on the current line */
    uint8_t first, n; /* q[first], ... n requests in flight */
    uint16_t status;
    uint32_t nreq;    /* requests begun on the connection */
    int64_t left;     /* response body bytes still to come; -1: until the connection ends */
    int64_t rleft;    /* request body bytes still to come */
    /* The request head being read, which may come in pieces: the request
     * (method, path) is the slot after the last one in flight, and joins
     * them once its line reads "... HTTP/1." */
    uint8_t rstate;   /* RS_* */
    uint8_t rpos;     /* bytes of the method, or of "HTTP/1.", so far */
    uint8_t lmatch;   /* header line: 1 "content-length:", 2 "transfer-encoding:" may still match */
    uint8_t lval;     /* V_*: in that header's value */
    uint8_t tmatch;   /* bytes of "chunked" matched in a Transfer-Encoding value */
    uint8_t hchunked; /* the request body is chunked */
    uint16_t lpos;    /* bytes on the head's current line (CR not counted), saturating */
    uint16_t plen;
    int64_t hclen;    /* its Content-Length; -1 none yet, -2 the value is next */
    uint64_t rstart, rbytes;
    uint64_t csize;
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
    socks = pa_mmap(sizeof(sock_t) * PA_NET_MAX_FD);
    if (!k || !socks)
        return -1;
    pa_net_kind = k;
    return 0;
}

uint64_t pa_net_now(void)
{
    return pa_mono_ns();
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

/* The offset just past "\r\n\r\n" in b[0..n), or 0. */
static size_t header_end(const char *b, size_t n)
{
    for (size_t i = 3; i < n; i++)
        if (b[i] == '\n' && b[i - 1] == '\r' && b[i - 2] == '\n' && b[i - 3] == '\r')
            return i + 1;
    return 0;
}

/* Content-Length (or -1) and whether Transfer-Encoding says chunked. */
static void parse_headers(const char *b, size_t n, int64_t *clen, int *chunked)
{
    static const char cl[] = "content-length:", te[] = "transfer-encoding:";
    *clen = -1;
    *chunked = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && b[i - 1] != '\n')
            continue;
        size_t k = 0;
        while (k < sizeof(cl) - 1 && i + k < n && lower(b[i + k]) == cl[k])
            k++;
        if (k == sizeof(cl) - 1) {
            int64_t v = 0;
            size_t j = i + k;
            while (j < n && b[j] == ' ')
                j++;
            if (j < n && b[j] >= '0' && b[j] <= '9') {
                while (j < n && b[j] >= '0' && b[j] <= '9' && v < (1ll << 50))
                    v = v * 10 + (b[j++] - '0');
                *clen = v;
            }
            continue;
        }
        k = 0;
        while (k < sizeof(te) - 1 && i + k < n && lower(b[i + k]) == te[k])
            k++;
        if (k == sizeof(te) - 1)
            for (size_t j = i + k; j + 7 <= n && b[j] != '\r'; j++)
                if (lower(b[j]) == 'c' && lower(b[j + 1]) == 'h' && lower(b[j + 6]) == 'd')
                    *chunked = 1;
    }
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
    h->status = 0;
    h->resp_bytes = 0;
    h->left = 0;
    h->chunked = 0;
}

/* Every request in flight, when the connection ends (or at exit): the
 * oldest's response is complete if it was one that ends with the
 * connection. */
static void http_close(sock_t *s)
{
    http_t *h = &s->http;
    while (h->n)
        http_emit(s, !(h->resp == R_BODY && h->left < 0 && !h->chunked));
}

/* Body bytes b[0..n) (b NULL: not visible) of the response in flight: 1
 * when it ended, *used = the bytes that were its own (the rest is the next
 * response's). */
static int body(http_t *h, const char *b, size_t n, size_t *used)
{
    *used = n;
    if (!h->chunked) {
        if (h->left < 0)
            return 0;
        if ((int64_t)n > h->left)
            *used = (size_t)h->left;
        h->left -= (int64_t)*used;
        return h->left == 0;
    }
    for (size_t i = 0; i < n; i++) {
        int c = b ? b[i] : 'x';
        switch (h->cstate) {
        case CH_SIZE:
            if (c >= '0' && c <= '9')
                h->csize = h->csize * 16 + (uint64_t)(c - '0');
            else if (lower(c) >= 'a' && lower(c) <= 'f')
                h->csize = h->csize * 16 + (uint64_t)(lower(c) - 'a' + 10);
            else
                h->cstate = c == '\r' ? CH_SIZE_LF : CH_EXT;
            break;
        case CH_EXT:
            if (c == '\r')
                h->cstate = CH_SIZE_LF;
            break;
        case CH_SIZE_LF:
            h->cstate = h->csize ? CH_DATA : CH_TRAILER;
            h->tline = 0;
            break;
        case CH_DATA: {
            uint64_t take = n - i < h->csize ? n - i : h->csize;
            h->csize -= take;
            i += take - 1;
            if (!h->csize)
                h->cstate = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            h->cstate = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            h->cstate = CH_SIZE;
            break;
        case CH_TRAILER: /* lines until an empty one */
            if (c == '\n') {
                if (h->tline <= 1) {
                    h->cstate = CH_DONE;
                    *used = i + 1;
                    return 1;
                }
                h->tline = 0;
            } else {
                h->tline++;
            }
            break;
        }
    }
    return 0;
}

/* Body bytes of the data from offset `skip` on: 1 when the response ended,
 * *used = how many of them were its own. */
static int body_iov(http_t *h, const struct iovec *iov, int iovcnt, size_t skip, size_t total,
                    size_t *used)
{
    size_t u, done = 0;
    if (!iov || !h->chunked)
        return body(h, NULL, total - skip, used);
    for (int i = 0; i < iovcnt && total; i++) {
        size_t k = iov[i].iov_len < total ? iov[i].iov_len : total;
        total -= k;
        if (skip >= k) {
            skip -= k;
            continue;
        }
        int end = body(h, (const char *)iov[i].iov_base + skip, k - skip, &u);
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

/* Bytes [skip, total) of the data, at most cap - 1 of them, NUL-terminated,
 * contiguous. */
static size_t gather(const struct iovec *iov, int iovcnt, size_t skip, size_t total, char *buf,
                     size_t cap)
{
    size_t n = 0, want = total - skip;
    for (int i = 0; i < iovcnt && n < want && n < cap - 1 && total; i++) {
        size_t k = iov[i].iov_len < total ? iov[i].iov_len : total;
        const char *p = iov[i].iov_base;
        total -= k;
        if (skip >= k) {
            skip -= k;
            continue;
        }
        p += skip, k -= skip, skip = 0;
        if (k > cap - 1 - n)
            k = cap - 1 - n;
        __builtin_memcpy(buf + n, p, k);
        n += k;
    }
    buf[n] = 0;
    return n;
}

/* The request being read joins the FIFO (its line is a request's). */
static void req_commit(sock_t *s, http_req_t *r)
{
    http_t *h = &s->http;
    /* A response that was to end with the connection, and a new request
     * on it: it did not (it could not be followed). */
    if (h->n && h->resp == R_BODY && h->left < 0 && !h->chunked)
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
    static const char cl[] = "content-length:", te[] = "transfer-encoding:",
                      ver[] = "HTTP/1.", chunked[] = "chunked";
    http_t *h = &s->http;
    http_req_t *r = &h->q[(h->first + h->n) % HTTP_PIPE];
    int lc = lower(c);
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
            h->lpos = 0, h->lmatch = 3, h->lval = V_NONE;
        }
        return 0;
    }
    /* RS_HDR: header lines until an empty one */
    if (c == '\n') {
        if (!h->lpos)
            return 1;
        h->lpos = 0, h->lmatch = 3, h->lval = V_NONE;
        return 0;
    }
    if (c == '\r')
        return 0;
    if (h->lval == V_CLEN) {
        if (c >= '0' && c <= '9' && h->hclen < (1ll << 50))
            h->hclen = (h->hclen < 0 ? 0 : h->hclen * 10) + (c - '0');
        else if (c != ' ' || h->hclen != -2)
            h->lval = V_NONE; /* the number ended */
    } else if (h->lval == V_TE) {
        if (lc == chunked[h->tmatch]) {
            if (++h->tmatch == sizeof(chunked) - 1)
                h->hchunked = 1, h->tmatch = 0;
        } else {
            h->tmatch = lc == 'c';
        }
    } else if (h->lmatch) {
        if (h->lpos >= sizeof(cl) - 1 || lc != cl[h->lpos])
            h->lmatch &= (uint8_t)~1;
        if (h->lpos >= sizeof(te) - 1 || lc != te[h->lpos])
            h->lmatch &= (uint8_t)~2;
        if ((h->lmatch & 1) && h->lpos == sizeof(cl) - 2)
            h->lval = V_CLEN, h->lmatch = 0, h->hclen = -2;
        if ((h->lmatch & 2) && h->lpos == sizeof(te) - 2)
            h->lval = V_TE, h->lmatch = 0, h->tmatch = 0;
    }
    if (h->lpos < UINT16_MAX)
        h->lpos++;
    return 0;
}

/* Feeds bytes [skip, total) of the data to head_byte until the head ends
 * or is found not to be one (*res 1 or -1) or the data ends (*res 0);
 * returns how many it took. */
static size_t head_feed(sock_t *s, const struct iovec *iov, int iovcnt, size_t skip,
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
            used++;
            if ((*res = head_byte(s, p[j])) != 0)
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
        if (h->rcont || h->rleft > 0) { /* more of the last request */
            size_t take = total - off;
            if (!h->rcont && (int64_t)take > h->rleft)
                take = (size_t)h->rleft;
            if (!h->rcont)
                h->rleft -= (int64_t)take;
            if (last)
                last->req_bytes += take;
            off += take;
            continue;
        }
        if (h->rstate == RS_IDLE) { /* a new request begins here */
            if (h->n == HTTP_PIPE) { /* too deep to follow: stop here */
                http_close(s);
                h->off = 1;
                return;
            }
            h->rstate = RS_METHOD;
            h->rpos = 0, h->hchunked = 0, h->hclen = -1;
            h->rstart = t;
            h->rbytes = 0;
        }
        used = iov ? head_feed(s, iov, iovcnt, off, total, &res) : 0;
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
        if (h->hclen == -2)
            h->hclen = -1;
        h->rcont = h->hchunked;
        h->rleft = h->hchunked || h->hclen < 0 ? 0 : h->hclen;
    }
}

/* A response's head at b[0..n) for request r.  Returns its length (body
 * bytes follow) with h->resp = R_BODY; 0 when it is an interim (1xx) one
 * or a complete one without a body (*len its length, nothing to wait for
 * then); -1 when it cannot be followed (the message ends with the
 * connection). */
static long resp_head(http_t *h, const http_req_t *r, const char *b, size_t n, size_t *len)
{
    size_t end;
    int chunked;
    int64_t clen;
    h->resp = R_BODY, h->left = -1, h->chunked = 0;
    *len = 0;
    if (n < 12 || !pa_startswith(b, "HTTP/1.") || b[8] != ' ')
        return -1;
    h->status = (uint16_t)((b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0'));
    if (!(end = header_end(b, n)))
        return -1;
    *len = end;
    if (h->status >= 100 && h->status < 200) { /* interim: the real one follows */
        h->resp = R_HEAD;
        return 0;
    }
    parse_headers(b, end, &clen, &chunked);
    h->chunked = (uint8_t)chunked;
    h->cstate = CH_SIZE;
    h->csize = 0;
    h->left = chunked ? 0 : clen;
    if (r->head || h->status == 204 || h->status == 304 || (!chunked && clen == 0)) {
        h->left = 0;
        return 0;
    }
    return (long)end;
}

/* Response-direction bytes: the end of one response and the start of the
 * next may share a segment (pipelining). */
static void http_resp(sock_t *s, const struct iovec *iov, int iovcnt, size_t total, uint64_t t)
{
    http_t *h = &s->http;
    char buf[HTTP_HDR + 1];
    size_t off = 0, used;
    h->last_ns = t;
    h->rcont = 0; /* a response began: whatever the request was, it is over */
    while (off < total && h->n) {
        if (h->resp == R_HEAD) {
            size_t n = iov ? gather(iov, iovcnt, off, total, buf, sizeof(buf)) : 0, len;
            long hl = resp_head(h, &h->q[h->first], buf, n, &len);
            if (hl < 0) { /* cannot be followed: it ends with the connection */
                h->resp_bytes += total - off;
                return;
            }
            h->resp_bytes += len;
            off += len;
            if (hl == 0 && h->resp == R_BODY)
                http_emit(s, 0); /* complete without a body */
            continue;
        }
        int end = body_iov(h, iov, iovcnt, off, total, &used);
        h->resp_bytes += used;
        off += used;
        if (!end)
            return;
        http_emit(s, 0);
    }
}

static void http_data(sock_t *s, int dir, const struct iovec *iov, int iovcnt, size_t total,
                      uint64_t t0, uint64_t t1)
{
    int client = s->role == PERFAGENT__SOCKET_ROLE__ROLE_CLIENT;
    if (s->http.off || s->transport == 1)
        return;
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
    s->open_ns = pa_mono_ns();
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
    s->connect_start_ns = pa_mono_ns();
    atomic_store(&s->connecting, 1);
    atomic_store(&pa_net_kind[fd], PA_NET_CONN);
    pa_tls.guard--;
}

static void connect_done(sock_t *s, int fd, int err, uint64_t now)
{
    uint8_t one = 1;
    if (!atomic_compare_exchange_strong(&s->connecting, &one, 0))
        return;
    s->connect_ns = now - s->connect_start_ns;
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
        connect_done(s, fd, 0, pa_mono_ns());
    else if (err != EINPROGRESS && err != EALREADY && err != EINTR && err != EAGAIN)
        connect_done(s, fd, err, pa_mono_ns());
    pa_tls.guard--;
}

void pa_net_connect_result(int fd, int soerr)
{
    sock_t *s = &socks[fd];
    if (!atomic_load(&s->connecting))
        return;
    pa_tls.guard++;
    connect_done(s, fd, soerr, pa_mono_ns());
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

void pa_net_accept(int fd, uintptr_t from)
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
    atomic_store(&pa_net_kind[fd], PA_NET_CONN);
    pa_tls.guard--;
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
    uint64_t now = pa_mono_ns();
    pa_tls.guard++;
    pa_strlcpy(name, node ? node : "", sizeof(name));
    ev.tid = pa_tls.tid ? pa_tls.tid : pa_gettid();
    ev.op = op;
    ev.peer = name;
    ev.error = rc;
    ev.start_ticks = t0;
    ev.duration_ns = now - t0;
    emit(&ev);
    pa_tls.guard--;
}

void pa_net_wait(const char *call, uint64_t t0, uintptr_t from)
{
    uint64_t now = pa_mono_ns();
    if (now - t0 < NET_WAIT_MIN_NS)
        return;
    pa_tls.guard++;
    emit_wait(call, t0, now - t0, from);
    pa_tls.guard--;
}

void pa_net_io(int fd, int dir, const struct iovec *iov, int iovcnt, long r, int err, uint64_t t0,
               uintptr_t from)
{
    sock_t *s = &socks[fd];
    uint64_t now;
    pa_tls.guard++;
    now = pa_mono_ns();
    if (now - t0 >= NET_WAIT_MIN_NS)
        emit_wait(dir == PA_NET_SEND ? "send" : "recv", t0, now - t0, from);
    if (atomic_load_explicit(&s->connecting, memory_order_relaxed)) {
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
    if (r > 0)
        http_data(s, dir, iov, iovcnt, (size_t)r, t0, now);
    else if (dir == PA_NET_RECV && s->http.n && s->http.resp == R_BODY && s->http.left < 0 &&
             !s->http.chunked)
        http_emit(s, 0); /* the peer closed: that was the end of the response */
    if (now - atomic_load_explicit(&s->last_emit_ns, memory_order_relaxed) > NET_FLUSH_NS)
        emit_conn(s, 0, now);
out:
    pa_tls.guard--;
}

void pa_net_close(int fd)
{
    sock_t *s;
    if ((unsigned)fd >= PA_NET_MAX_FD || !pa_net_kind)
        return;
    if (atomic_exchange(&pa_net_kind[fd], PA_NET_NONE) != PA_NET_CONN)
        return;
    pa_tls.guard++;
    s = &socks[fd];
    http_close(s);
    emit_conn(s, 1, pa_mono_ns());
    pa_tls.guard--;
}

void pa_net_flush(void)
{
    uint64_t now;
    if (!pa_net_kind)
        return;
    pa_tls.guard++;
    now = pa_mono_ns();
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
    now = pa_mono_ns();
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
