/*
 * net_http.c — HTTP/1.x on a traced connection (net.c says how the two
 * fit): each request and its response make one SocketEvent "http".
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
 * The parser is not made safe for two threads on one connection at once
 * (a full-duplex HTTP/1 peer is rare): at worst one request is
 * misreported.  Runs under the reentrancy guard; never changes errno.
 */
#include "net_int.h"

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
void pa_http_emit(sock_t *s, int incomplete)
{
    http_t *h = &s->http;
    http_req_t *r = &h->q[h->first];
    Perfagent__SocketEvent ev = PERFAGENT__SOCKET_EVENT__INIT;
    static char op[] = "http";
    pa_net_fill_common(&ev, s);
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
    pa_net_emit(&ev);
    h->first = (uint8_t)((h->first + 1) % HTTP_PIPE);
    h->n--;
    h->resp = R_HEAD;
    h->sstate = SS_IDLE; /* a head cut by the connection's end */
    h->status = 0;
    h->resp_bytes = 0;
    body_begin(&h->rb, 0, 0);
}

/* Whether the response in flight ends with the connection. */
int pa_http_resp_to_end(const http_t *h)
{
    return h->resp == R_BODY && h->rb.left < 0 && !h->rb.chunked;
}

/* Every request in flight, when the connection ends (or at exit): the
 * oldest's response is complete if it was one that ends with the
 * connection. */
void pa_http_close(sock_t *s)
{
    http_t *h = &s->http;
    while (h->n)
        pa_http_emit(s, !pa_http_resp_to_end(h));
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
    if (h->n && pa_http_resp_to_end(h))
        pa_http_emit(s, 1); /* r stays the slot after the last one */
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
                pa_http_close(s);
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
                pa_http_emit(s, 0); /* complete without a body */
            }
            continue;
        }
        int end = body_iov(&h->rb, iov, iovcnt, off, total, &used);
        h->resp_bytes += used;
        off += used;
        if (!end)
            return;
        pa_http_emit(s, 0);
    }
}

/* Out of net.c's pa_net_io, which every call on a traced socket pays for:
 * the parsers would crowd its registers (the caller tests `off` first). */
void pa_http_data(sock_t *s, int dir, const struct iovec *iov, int iovcnt, size_t total,
                  uint64_t t0, uint64_t t1)
{
    int client = s->role == PERFAGENT__SOCKET_ROLE__ROLE_CLIENT;
    if ((dir == PA_NET_SEND) == client)
        http_req(s, iov, iovcnt, total, client ? t0 : t1);
    else
        http_resp(s, iov, iovcnt, total, t1);
}
