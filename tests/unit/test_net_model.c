/*
 * test_net_model.c — SocketEvents through the decoder (the socket sink and
 * its checks: strings within DECODE_MAX_STRING, at most
 * DECODE_MAX_SOCKET_ERRNOS errno counts, no sink = ignored) and
 * net_model's arithmetic: "conn" deltas summed per role and address (a
 * server's by its local address), a connection counted once, errors merged
 * by errno and named, nearest-rank percentiles, HTTP statuses, 4xx and 5xx.
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "net_model.h"
#include "streams.h"

static int cap_socket(void *ctx, const Perfagent__SocketEvent *ev)
{
    return net_model_add(ctx, ev);
}

static int dec_one(decoder_t *d, uint64_t seq, Perfagent__SocketEvent *ev)
{
    buf_t body = {0};
    Perfagent__Hello h = PERFAGENT__HELLO__INIT;
    Perfagent__Record r[2] = {PERFAGENT__RECORD__INIT, PERFAGENT__RECORD__INIT};
    Perfagent__Record *rp[2] = {&r[0], &r[1]};
    size_t n = 0;
    h.protocol_version = DECODE_PROTOCOL_VERSION;
    if (seq == 0) {
        r[n].body_case = PERFAGENT__RECORD__BODY_HELLO;
        r[n++].hello = &h;
    }
    r[n].body_case = PERFAGENT__RECORD__BODY_SOCKET;
    r[n++].socket = ev;
    pack_batch(&body, seq, 0, rp, n);
    int rc = decode_frame(d, body.p, body.n, 0);
    free(body.p);
    return rc;
}

static Perfagent__SocketEvent conn(const char *peer, const char *local, int role)
{
    Perfagent__SocketEvent ev = PERFAGENT__SOCKET_EVENT__INIT;
    ev.op = "conn";
    ev.peer = (char *)peer;
    ev.local = (char *)local;
    ev.transport = "tcp";
    ev.role = (Perfagent__SocketRole)role;
    return ev;
}

TEST(test_socket_decode)
{
    net_model_t *m = net_model_new();
    decode_sink_t sink = {.ctx = m, .socket = cap_socket};
    decoder_t *d = decode_new(NULL, &sink);
    Perfagent__SocketEvent ev = conn("127.0.0.1:80", "127.0.0.1:5000", 1);
    ev.opened = 1;
    ev.bytes_sent = 10;
    CHECK_EQ_U64(dec_one(d, 0, &ev), 0);
    CHECK_EQ_U64(net_model_events(m), 1);

    /* 65 errno counts: refused */
    Perfagent__SocketErrno e[65], *ep[65];
    for (int i = 0; i < 65; i++) {
        perfagent__socket_errno__init(&e[i]);
        e[i].code = i + 1;
        e[i].count = 1;
        ep[i] = &e[i];
    }
    ev.n_errors = 65;
    ev.errors = ep;
    CHECK_EQ_U64(dec_one(d, 1, &ev), -EPROTO);
    CHECK(strstr(decode_error(d), "errno counts") != NULL);
    decode_free(d);

    /* a peer longer than DECODE_MAX_STRING: refused */
    d = decode_new(NULL, &sink);
    char *longp = malloc(DECODE_MAX_STRING + 2);
    memset(longp, 'x', DECODE_MAX_STRING + 1);
    longp[DECODE_MAX_STRING + 1] = 0;
    ev = conn(longp, "", 1);
    CHECK_EQ_U64(dec_one(d, 0, &ev), -EPROTO);
    CHECK(strstr(decode_error(d), "socket event string") != NULL);
    decode_free(d);
    free(longp);
    CHECK_EQ_U64(net_model_events(m), 1);

    /* no socket sink: checked, then ignored and counted */
    decode_sink_t none = {0};
    d = decode_new(NULL, &none);
    ev = conn("127.0.0.1:80", "", 1);
    CHECK_EQ_U64(dec_one(d, 0, &ev), 0);
    CHECK_EQ_U64(decode_counts(d)->ignored_records, 1);
    decode_free(d);
    net_model_free(m);
}

TEST(test_net_sums)
{
    net_model_t *m = net_model_new();
    const net_peer_t *p;
    const net_endpoint_t *e;
    char nb[16];
    Perfagent__SocketErrno er[2], *erp[2] = {&er[0], &er[1]};
    perfagent__socket_errno__init(&er[0]);
    perfagent__socket_errno__init(&er[1]);

    /* one client connection in three events (opened, periodic, closed) */
    Perfagent__SocketEvent ev = conn("10.0.0.1:80", "10.0.0.2:4000", 1);
    ev.opened = 1, ev.connect_ns = 3000000, ev.bytes_sent = 100, ev.calls_send = 1;
    CHECK_EQ_U64(net_model_add(m, &ev), 0);
    ev.opened = 0, ev.bytes_sent = 50, ev.bytes_received = 7, ev.calls_recv = 2;
    er[0].code = ECONNRESET, er[0].count = 2;
    ev.n_errors = 1, ev.errors = erp;
    CHECK_EQ_U64(net_model_add(m, &ev), 0);
    ev.closed = 1, ev.bytes_sent = 0, ev.bytes_received = 3, ev.duration_ns = 9000000;
    er[0].count = 1, er[1].code = EPIPE, er[1].count = 4;
    ev.n_errors = 2;
    CHECK_EQ_U64(net_model_add(m, &ev), 0);
    /* a refused one to the same peer */
    ev = conn("10.0.0.1:80", "", 1);
    ev.opened = 1, ev.closed = 1, ev.error = ECONNREFUSED;
    er[0].code = ECONNREFUSED, er[0].count = 1;
    ev.n_errors = 1, ev.errors = erp;
    CHECK_EQ_U64(net_model_add(m, &ev), 0);
    /* two server connections from two client ports: one address, its own */
    for (int i = 0; i < 2; i++) {
        ev = conn(i ? "10.0.0.9:5001" : "10.0.0.9:5002", "10.0.0.2:8080", 2);
        ev.opened = 1, ev.closed = 1, ev.bytes_received = 11;
        CHECK_EQ_U64(net_model_add(m, &ev), 0);
    }
    CHECK_EQ_U64(net_model_peers(m, &p), 2);
    CHECK_STREQ(net_role_name(p[0].role), "client");
    CHECK_STREQ(p[0].address, "10.0.0.1:80");
    CHECK_EQ_U64(p[0].connections, 2);
    CHECK_EQ_U64(p[0].connect_failed, 1);
    CHECK_EQ_U64(p[0].closed, 2);
    CHECK_EQ_U64(p[0].bytes_sent, 150);
    CHECK_EQ_U64(p[0].bytes_received, 10);
    CHECK_EQ_U64(p[0].calls_send, 3); /* the fields stay set from event to event */
    CHECK_EQ_U64(p[0].calls_recv, 4);
    CHECK_EQ_U64(p[0].n_connect, 1);
    CHECK_EQ_U64(p[0].lifetime_ns, 9000000);
    CHECK_EQ_U64(p[0].n_errs, 3); /* sorted by errno: EPIPE 32, ECONNRESET 104, ECONNREFUSED 111 */
    CHECK_STREQ(net_errno_name(p[0].errs[0].code, nb), "EPIPE");
    CHECK_EQ_U64(p[0].errs[0].count, 4);
    CHECK_STREQ(net_errno_name(p[0].errs[1].code, nb), "ECONNRESET");
    CHECK_EQ_U64(p[0].errs[1].count, 3);
    CHECK_STREQ(net_errno_name(p[0].errs[2].code, nb), "ECONNREFUSED");
    CHECK_STREQ(net_errno_name(100000, nb), "E100000");
    CHECK_STREQ(p[1].address, "10.0.0.2:8080");
    CHECK_EQ_U64(p[1].connections, 2);
    CHECK_EQ_U64(p[1].bytes_received, 22);

    /* 100 requests of 1..100 ms; statuses 200 x97, 404 x2, 503 x1 */
    for (unsigned i = 1; i <= 100; i++) {
        ev = conn("10.0.0.1:80", "", 1);
        ev.op = "http";
        ev.http_method = "GET";
        ev.http_target = "/x";
        ev.http_status = i <= 97 ? 200 : i <= 99 ? 404 : 503;
        ev.duration_ns = (uint64_t)(101 - i) * 1000000;
        ev.http_reused = i > 1;
        CHECK_EQ_U64(net_model_add(m, &ev), 0);
    }
    CHECK_EQ_U64(net_model_endpoints(m, &e), 1);
    CHECK_EQ_U64(e[0].count, 100);
    CHECK_EQ_U64(e[0].errors_4xx, 2);
    CHECK_EQ_U64(e[0].errors_5xx, 1);
    CHECK_EQ_U64(e[0].reused, 99);
    CHECK_EQ_U64(e[0].n_statuses, 3);
    CHECK_EQ_U64(e[0].statuses[1].status, 404);
    uint64_t *lat = (uint64_t *)e[0].latency_ns;
    CHECK_EQ_U64(net_percentile(lat, 100, 50), 50000000);
    CHECK_EQ_U64(net_percentile(lat, 100, 95), 95000000);
    CHECK_EQ_U64(net_percentile(lat, 100, 99), 99000000);
    CHECK_EQ_U64(net_percentile(lat, 3, 50), 2000000);
    CHECK_EQ_U64(net_percentile(lat, 0, 50), 0);
    net_model_free(m);
}

int main(void)
{
    RUN(test_socket_decode);
    RUN(test_net_sums);
    CHECK_DONE();
}
