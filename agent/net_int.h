/*
 * net_int.h — what net.c (sockets: the per-fd table, connections, waits)
 * and net_http.c (the HTTP/1.x parser that runs on a connection's bytes)
 * share: the per-fd slot and the event helpers.
 */
#ifndef PA_NET_INT_H
#define PA_NET_INT_H

#include "net.h"
#include "perfagent.pb-c.h"

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

/* What every data call reads or writes (pa_net_io) is in the slot's first
 * cache line, http.off included: a program with many connections finds
 * the slot out of cache on most calls (the kernel's own work between two
 * calls on one socket evicts it), and each line more was one miss more
 * (perf annotate on redis-benchmark: the first load of the slot took 66%
 * of pa_net_io's samples when these were spread over three lines). */
typedef struct sock {
    uint8_t transport; /* 0 tcp, 1 udp, 2 unix */
    uint8_t role;      /* PERFAGENT__SOCKET_ROLE__* */
    _Atomic uint8_t connecting;
    uint8_t opened_sent;
    int32_t connect_err;
    _Atomic uint64_t last_emit_ns;
    _Atomic uint64_t sent, recvd, calls_send, calls_recv;
    uint32_t stack_id;
    uint32_t tid;      /* the thread that made the connection */
    http_t http;       /* off: byte 56 */
    uint64_t open_ns, connect_start_ns, connect_ns;
    struct {
        _Atomic int32_t code;
        _Atomic uint64_t count;
    } errs[NET_ERRS];
    char peer[NET_PEER], local[NET_PEER];
} __attribute__((aligned(64))) sock_t;
_Static_assert(__builtin_offsetof(sock_t, http) + __builtin_offsetof(http_t, off) < 64,
               "http.off in the slot's first line");

/* net.c: the fields every SocketEvent of a slot carries, and the event
 * ring (event.c). */
PA_HIDDEN void pa_net_fill_common(Perfagent__SocketEvent *ev, const sock_t *s);
PA_HIDDEN void pa_net_emit(Perfagent__SocketEvent *ev);

/* net_http.c: bytes a traced connection moved (dir PA_NET_SEND or
 * PA_NET_RECV; t0, now: the call's start and end); the request at the head
 * of the FIFO sent as one "http" event; whether the response being read
 * ends with the connection; the connection's end. */
PA_HIDDEN void pa_http_data(sock_t *s, int dir, const struct iovec *iov, int iovcnt, size_t n,
                            uint64_t t0, uint64_t now);
PA_HIDDEN void pa_http_emit(sock_t *s, int incomplete);
PA_HIDDEN int pa_http_resp_to_end(const http_t *h);
PA_HIDDEN void pa_http_close(sock_t *s);

#endif
