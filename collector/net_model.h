/*
 * net_model — one process's sockets and HTTP requests, from its
 * SocketEvents (agent/net.c): per (role, address) the connections, bytes,
 * calls, connect latencies and errors by errno; per (role, method, path)
 * the requests, statuses and latencies.  "conn" events carry deltas and
 * are summed; the address is the peer's for a client and the local
 * (listening) one for a server, so a server's connections group by the
 * service, not by each client's ephemeral port.  Fed from the decoder's
 * socket callback, which checked the strings.  Not thread-safe.
 */
#ifndef PA_NET_MODEL_H
#define PA_NET_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "perfagent.pb-c.h"

#define NET_MODEL_MAX_KEYS 4096 /* more peers or endpoints: the rest in "(other)" */

typedef struct net_errno {
    int32_t code;
    uint64_t count;
} net_errno_t;

typedef struct net_peer {
    int role; /* Perfagent__SocketRole */
    char *transport, *address;
    uint64_t connections, closed, connect_failed;
    uint64_t bytes_sent, bytes_received, calls_send, calls_recv;
    uint64_t lifetime_ns; /* summed over closed connections */
    uint64_t *connect_ns; /* successful connects' latencies */
    size_t n_connect, cap_connect;
    net_errno_t *errs;
    size_t n_errs;
} net_peer_t;

typedef struct net_status {
    uint32_t status;
    uint64_t count;
} net_status_t;

typedef struct net_endpoint {
    int role;
    char *method, *path;
    uint64_t count, errors_4xx, errors_5xx, incomplete;
    uint64_t reused, pipelined; /* keep-alive (after a complete response), pipelined */
    uint64_t request_bytes, response_bytes;
    uint64_t *latency_ns;
    size_t n_latency, cap_latency;
    net_status_t *statuses;
    size_t n_statuses;
} net_endpoint_t;

/* Time blocked in one call (op "wait"), or at one stack. */
typedef struct net_wait {
    char *call;
    uint64_t count, ns;
} net_wait_t;

/* getaddrinfo calls for one name (op "dns"). */
typedef struct net_dns {
    char *host;
    uint64_t count, failed;
    net_errno_t *errs; /* by EAI_* code */
    size_t n_errs;
    uint64_t *latency_ns;
    size_t n_latency, cap_latency;
} net_dns_t;

/* One request at or over the warning threshold (PERFAGENT_SLOW_REQUEST_MS). */
#define NET_MODEL_MAX_SLOW 1000 /* kept; more are only counted */
typedef struct net_slow {
    int role;
    char *method, *path, *address;
    uint32_t status, stack_id;
    uint64_t duration_ns;
} net_slow_t;

/* One span of trace.json (report_trace.c), in arrival order: a
 * connection (its "conn" events merged: lifetime, bytes, and for a client
 * its connect call), an HTTP request, a getaddrinfo, a wait.  Times are
 * CLOCK_MONOTONIC ns.  Strings belong to the model (interned, never NULL). */
enum { NET_SPAN_CONN, NET_SPAN_HTTP, NET_SPAN_DNS, NET_SPAN_WAIT };
typedef struct net_span {
    uint8_t kind, role, closed, incomplete, reused, pipelined;
    uint32_t tid, status;
    int32_t error; /* conn: the connect's errno; dns: the EAI_* code */
    uint64_t start_ns, dur_ns;
    uint64_t connect_start_ns, connect_ns; /* conn, client: the connect call */
    uint64_t bytes_sent, bytes_received;   /* conn; http: request and response bytes */
    const char *peer, *local, *transport;
    const char *name; /* http: method; dns: the host asked for; wait: the call */
    const char *path; /* http */
} net_span_t;

#define NET_MODEL_MAX_SPANS (1u << 19) /* more: counted, not kept */

typedef struct net_model net_model_t;

net_model_t *net_model_new(void);
void net_model_free(net_model_t *m); /* accepts NULL */
/* 0 or -ENOMEM.  Unknown ops are ignored. */
int net_model_add(net_model_t *m, const Perfagent__SocketEvent *ev);
uint64_t net_model_events(const net_model_t *m);
/* Thresholds of the slow-request log (ns; defaults 1 s warn, 3 s error,
 * or PERFAGENT_SLOW_REQUEST_MS=WARN[,ERROR] read by net_model_new). */
void net_model_slow_limits(const net_model_t *m, uint64_t *warn_ns, uint64_t *error_ns);
/* Slow requests, slowest first; *more: how many were not kept. */
size_t net_model_slow(net_model_t *m, const net_slow_t **out, uint64_t *more);
/* The spans (valid until the next add); *dropped: how many were not kept. */
size_t net_model_spans(const net_model_t *m, const net_span_t **out, uint64_t *dropped);
/* Lookups by name, sorted. */
size_t net_model_dns(net_model_t *m, const net_dns_t **out);
/* "EAI_NONAME" for a getaddrinfo code, "EAI(<n>)" for another. */
const char *net_eai_name(int32_t code, char buf[16]);
/* Waits by call, sorted by name. */
size_t net_model_waits(net_model_t *m, const net_wait_t **out);
/* Time waited at stack id (0: none recorded; ids past the last are 0). */
uint64_t net_model_stack_wait_ns(const net_model_t *m, uint32_t stack_id);
/* Sorted by role, then address / method and path; valid until the next add. */
size_t net_model_peers(net_model_t *m, const net_peer_t **out);
size_t net_model_endpoints(net_model_t *m, const net_endpoint_t **out);
/* The q-th percentile (0..100, nearest rank) of v[0..n) (sorted in place);
 * 0 when n is 0. */
uint64_t net_percentile(uint64_t *v, size_t n, unsigned q);
const char *net_role_name(int role);
/* "ECONNREFUSED", or "E<number>" for a value the C library cannot name. */
const char *net_errno_name(int32_t code, char buf[16]);

#endif
