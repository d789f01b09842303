/*
 * report_trace.c — trace.json (report_trace.h): the Chrome Trace Event
 * format's JSON object form, {"traceEvents": [...], "displayTimeUnit":
 * "ms", "otherData": {...}}.  Every span is a complete event ("ph": "X")
 * with ts and dur in microseconds since the agent started (Hello's
 * CLOCK_MONOTONIC reading; the agent stamps sockets and libpq calls with
 * that same clock, so threads line up), args named after OpenTelemetry's
 * semantic conventions (http.*, url.path, server.*, network.*, db.*,
 * error.type; perfagent.* for what they have no name for).
 *
 * Viewers draw a thread's complete events as a stack, so two of them that
 * partially overlap on one thread are drawn wrong (an event loop serving
 * two connections at once does exactly that).  Each thread's spans are
 * therefore dealt into lanes in which they nest: lane 0 is the thread's own
 * track, lane k (k > 0) a track of its own, tid + k * LANE_STRIDE, named
 * "<thread> [k]".
 *
 * Deterministic: spans sorted with a total order, times printed from
 * integers (ns -> "us.nnn").
 */
#include "report_trace.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

#define LANE_STRIDE (1u << 22) /* above any Linux tid (pid_max <= 2^22) */
#define MAX_LANES 200          /* tid + 199 * 2^22 < 2^31; the last lane takes the rest */
#define NAME_MAX_LEN 256

enum { SRC_NET, SRC_CONNECT, SRC_PQ };

typedef struct tspan {
    uint32_t tid, lane;
    uint8_t src;
    uint32_t idx; /* in the net model's spans or the query model's events */
    uint64_t start, end; /* ns since the origin */
} tspan_t;

typedef struct lane {
    uint64_t *ends; /* the spans open in it, outermost first */
    size_t n, cap;
} lane_t;

int trace_reports_wanted(const rep_input_t *in)
{
    const net_span_t *sp;
    uint64_t dropped;
    return net_model_spans(in->net, &sp, &dropped) > 0 || (in->pq && in->pq->n_ev > 0);
}

static int cmp_tspan(const void *a, const void *b)
{
    const tspan_t *x = a, *y = b;
    if (x->tid != y->tid)
        return x->tid < y->tid ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end) /* the longer one first: it holds the other */
        return x->end > y->end ? -1 : 1;
    if (x->src != y->src)
        return x->src < y->src ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_out(const void *a, const void *b)
{
    const tspan_t *x = a, *y = b;
    if (x->lane != y->lane)
        return x->lane < y->lane ? -1 : 1;
    return cmp_tspan(a, b);
}

/* Deals the spans of one thread (v[0..n), sorted by cmp_tspan) into lanes
 * in which they nest; returns the number of lanes used or -ENOMEM. */
static int deal_lanes(tspan_t *v, size_t n, lane_t *lanes)
{
    unsigned used = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned l = 0;
        for (;; l++) {
            lane_t *ln = &lanes[l];
            if (l == used)
                used++;
            while (ln->n && ln->ends[ln->n - 1] <= v[i].start)
                ln->n--;
            if (!ln->n || ln->ends[ln->n - 1] >= v[i].end || l == MAX_LANES - 1)
                break;
        }
        lane_t *ln = &lanes[l];
        if (ln->n == ln->cap) {
            size_t cap = ln->cap ? ln->cap * 2 : 8;
            uint64_t *e = realloc(ln->ends, cap * sizeof(*e));
            if (!e)
                return -ENOMEM;
            ln->ends = e, ln->cap = cap;
        }
        ln->ends[ln->n++] = v[i].end;
        v[i].lane = l;
    }
    for (unsigned l = 0; l < used; l++)
        lanes[l].n = 0;
    return (int)used;
}

/* ---- values ------------------------------------------------------------- */

static void put_us(json_t *j, uint64_t ns)
{
    char b[32];
    snprintf(b, sizeof(b), "%" PRIu64 ".%03u", ns / 1000, (unsigned)(ns % 1000));
    json_raw(j, b);
}

static void kv_str(json_t *j, const char *k, const char *v)
{
    json_key(j, k);
    json_str(j, v);
}

static void kv_u64(json_t *j, const char *k, uint64_t v)
{
    json_key(j, k);
    json_u64(j, v);
}

static void kv_bool(json_t *j, const char *k, int v)
{
    json_key(j, k);
    json_bool(j, v);
}

/* "1.2.3.4:80", "[::1]:80", "unix:/path" -> address and port (0: none). */
static void split_addr(const char *a, char *host, size_t cap, unsigned *port)
{
    const char *colon = strrchr(a, ':');
    size_t n;
    *port = 0;
    if (!strncmp(a, "unix:", 5)) {
        snprintf(host, cap, "%s", a + 5);
        return;
    }
    if (!colon || colon == a) {
        snprintf(host, cap, "%s", a);
        return;
    }
    *port = (unsigned)strtoul(colon + 1, NULL, 10);
    n = (size_t)(colon - a);
    if (n >= 2 && a[0] == '[' && a[n - 1] == ']')
        a++, n -= 2;
    snprintf(host, cap, "%.*s", (int)n, a);
}

/* `prefix`.address and `prefix`.port of an address (nothing when empty). */
static void kv_addr(json_t *j, const char *prefix, const char *a)
{
    char host[256], key[64];
    unsigned port;
    if (!a || !*a)
        return;
    split_addr(a, host, sizeof(host), &port);
    snprintf(key, sizeof(key), "%s.address", prefix);
    kv_str(j, key, host);
    if (port) {
        snprintf(key, sizeof(key), "%s.port", prefix);
        kv_u64(j, key, port);
    }
}

/* server.*, client.* and network.* of a span on a connection. */
static void kv_conn(json_t *j, const net_span_t *s)
{
    int server = s->role == PERFAGENT__SOCKET_ROLE__ROLE_SERVER;
    kv_addr(j, "server", server ? s->local : s->peer);
    if (server)
        kv_addr(j, "client", s->peer);
    kv_addr(j, "network.peer", s->peer);
    kv_addr(j, "network.local", s->local);
    if (*s->transport)
        kv_str(j, "network.transport", s->transport);
    kv_str(j, "perfagent.role", net_role_name(s->role));
}

/* ---- events ------------------------------------------------------------- */

static void event_head(json_t *j, const ctx_t *c, const tspan_t *t, const char *cat,
                       const char *name)
{
    json_obj_begin(j);
    kv_str(j, "name", name);
    kv_str(j, "cat", cat);
    kv_str(j, "ph", "X");
    json_key(j, "ts");
    put_us(j, t->start);
    json_key(j, "dur");
    put_us(j, t->end - t->start);
    kv_u64(j, "pid", c->in->proc.pid);
    kv_u64(j, "tid", t->tid + (uint64_t)t->lane * LANE_STRIDE);
    json_key(j, "args");
    json_obj_begin(j);
}

static void net_event(json_t *j, const ctx_t *c, const tspan_t *t, const net_span_t *s)
{
    char name[NAME_MAX_LEN], eb[16];
    switch (s->kind) {
    case NET_SPAN_CONN:
        event_head(j, c, t, "net", t->src == SRC_CONNECT ? "connect" : "connection");
        kv_conn(j, s);
        if (s->error)
            kv_str(j, "error.type", net_errno_name(s->error, eb));
        if (t->src == SRC_NET) {
            kv_u64(j, "perfagent.bytes_sent", s->bytes_sent);
            kv_u64(j, "perfagent.bytes_received", s->bytes_received);
            kv_bool(j, "perfagent.closed", s->closed);
        }
        break;
    case NET_SPAN_HTTP: {
        int server = s->role == PERFAGENT__SOCKET_ROLE__ROLE_SERVER;
        /* OTel names a span "{method}" plus a low-cardinality target: the
         * path (its query string is never recorded) is that here. */
        snprintf(name, sizeof(name), "%s %s", s->name, s->path);
        event_head(j, c, t, "http", name);
        kv_str(j, "http.request.method", s->name);
        kv_str(j, "url.path", s->path);
        if (s->status)
            kv_u64(j, "http.response.status_code", s->status);
        kv_conn(j, s);
        kv_str(j, "network.protocol.name", "http");
        kv_u64(j, "http.request.size", s->bytes_sent);
        kv_u64(j, "http.response.size", s->bytes_received);
        /* error.type: the status for a client's 4xx and 5xx and a
         * server's 5xx (OTel's HTTP span status rules), _OTHER when no
         * complete response was seen. */
        if (s->status >= (server ? 500u : 400u) && s->status < 600) {
            snprintf(eb, sizeof(eb), "%u", s->status);
            kv_str(j, "error.type", eb);
        } else if (s->incomplete || !s->status) {
            kv_str(j, "error.type", "_OTHER");
        }
        kv_bool(j, "perfagent.http.keep_alive", s->reused);
        kv_bool(j, "perfagent.http.pipelined", s->pipelined);
        kv_bool(j, "perfagent.http.incomplete", s->incomplete);
        break;
    }
    case NET_SPAN_DNS:
        event_head(j, c, t, "dns", "getaddrinfo");
        kv_str(j, "dns.question.name", s->name);
        if (s->error)
            kv_str(j, "error.type", net_eai_name(s->error, eb));
        break;
    default:
        event_head(j, c, t, "wait", s->name);
        kv_str(j, "perfagent.wait.call", s->name);
    }
    json_obj_end(j);
    json_obj_end(j);
}

static const char *const pq_kinds[] = {"query", "connect", "close", "prepare"};

static void pq_event(json_t *j, const ctx_t *c, const tspan_t *t, const qm_event_t *e)
{
    const query_model_t *m = c->in->pq;
    const qm_query_t *q = e->query < m->n_q ? &m->q[e->query] : NULL;
    const char *kind = e->kind < 4 ? pq_kinds[e->kind] : "query";
    char name[NAME_MAX_LEN];
    if (e->kind == 1 || e->kind == 2 || !q)
        snprintf(name, sizeof(name), "postgresql %s", kind);
    else if (e->kind == 3)
        snprintf(name, sizeof(name), "prepare %s", q->op && *q->op ? q->op : "postgresql");
    else
        snprintf(name, sizeof(name), "%s", q->op && *q->op ? q->op : "postgresql");
    event_head(j, c, t, "db", name);
    kv_str(j, "db.system.name", "postgresql");
    if (q) {
        kv_str(j, "db.query.text", q->text); /* normalized: constants are $n */
        if (q->op && *q->op)
            kv_str(j, "db.operation.name", q->op);
    }
    if (e->kind == 0)
        kv_u64(j, "db.response.returned_rows", e->rows);
    const qm_conninfo_t *ci = query_model_conn(m, e->conn_id);
    if (ci && *ci->database)
        kv_str(j, "db.namespace", ci->database);
    if (ci && *ci->peer) {
        /* "host:port" or "socket-dir:port" (QueryEvent.peer) */
        char addr[256];
        const char *colon = strrchr(ci->peer, ':');
        size_t n = colon ? (size_t)(colon - ci->peer) : strlen(ci->peer);
        snprintf(addr, sizeof(addr), "%.*s", (int)(n < sizeof(addr) ? n : sizeof(addr) - 1), ci->peer);
        if (*addr)
            kv_str(j, "server.address", addr);
        if (colon && colon[1] >= '0' && colon[1] <= '9')
            kv_u64(j, "server.port", strtoull(colon + 1, NULL, 10));
    }
    if (e->failed) {
        /* The call's own SQLSTATE; "_OTHER" when the server gave none
         * (a connection error). */
        const char *st = e->sqlstate[0] ? e->sqlstate : "_OTHER";
        kv_str(j, "error.type", st);
        if (st[0] != '_')
            kv_str(j, "db.response.status_code", st);
    }
    kv_str(j, "perfagent.pq.call", kind);
    kv_u64(j, "perfagent.pq.connection", e->conn_id);
    json_obj_end(j);
    json_obj_end(j);
}

/* ---- the file ----------------------------------------------------------- */

static int cmp_thread(const void *a, const void *b)
{
    const rep_thread_t *x = a, *y = b;
    return x->tid < y->tid ? -1 : x->tid > y->tid;
}

/* The name a ThreadInfo gave tid (the last one that named it), or NULL. */
static const char *thread_name(const rep_thread_t *v, size_t n, uint32_t tid)
{
    rep_thread_t key = {.tid = tid};
    const rep_thread_t *t = n ? bsearch(&key, v, n, sizeof(*v), cmp_thread) : NULL;
    return t && t->name && t->name[0] ? t->name : NULL;
}

static void meta(json_t *j, const ctx_t *c, const char *what, uint64_t tid, const char *name)
{
    json_obj_begin(j);
    kv_str(j, "name", what);
    kv_str(j, "ph", "M");
    kv_u64(j, "pid", c->in->proc.pid);
    kv_u64(j, "tid", tid);
    json_key(j, "args");
    json_obj_begin(j);
    kv_str(j, "name", name);
    json_obj_end(j);
    json_obj_end(j);
}

/* Times relative to origin, clamped to it. */
static void set_times(tspan_t *t, uint64_t origin, uint64_t start, uint64_t dur)
{
    uint64_t end = start + dur;
    t->start = start > origin ? start - origin : 0;
    t->end = end > origin ? end - origin : 0;
}

/* Every span, with times; *n_out. */
static int collect(const ctx_t *c, tspan_t **out, size_t *n_out, uint64_t *origin)
{
    const net_span_t *ns;
    uint64_t dropped;
    size_t nn = net_model_spans(c->in->net, &ns, &dropped), n = 0;
    const query_model_t *pq = c->in->pq;
    size_t np = pq ? pq->n_ev : 0;
    tspan_t *v = calloc(2 * nn + np + 1, sizeof(*v));

    if (!v)
        return -ENOMEM;
    /* The origin: the agent's start; without a Hello, the first span. */
    *origin = UINT64_MAX;
    if (c->in->proc.has_hello)
        *origin = c->in->clock.start_mono_ns;
    else {
        for (size_t i = 0; i < nn; i++)
            if (ns[i].start_ns < *origin)
                *origin = ns[i].start_ns;
        for (size_t i = 0; i < np; i++)
            if (pq->ev[i].start_ns < *origin)
                *origin = pq->ev[i].start_ns;
    }
    for (size_t i = 0; i < nn; i++) {
        const net_span_t *s = &ns[i];
        v[n] = (tspan_t){.tid = s->tid, .src = SRC_NET, .idx = (uint32_t)i};
        set_times(&v[n++], *origin, s->start_ns, s->dur_ns);
        if (s->kind == NET_SPAN_CONN && s->connect_start_ns) {
            v[n] = (tspan_t){.tid = s->tid, .src = SRC_CONNECT, .idx = (uint32_t)i};
            set_times(&v[n++], *origin, s->connect_start_ns, s->connect_ns);
        }
    }
    for (size_t i = 0; i < np; i++) {
        v[n] = (tspan_t){.tid = pq->ev[i].tid, .src = SRC_PQ, .idx = (uint32_t)i};
        set_times(&v[n++], *origin, pq->ev[i].start_ns, pq->ev[i].dur_ns);
    }
    *out = v;
    *n_out = n;
    return 0;
}

int write_trace_json(FILE *f, ctx_t *c)
{
    const rep_input_t *in = c->in;
    const net_span_t *ns;
    uint64_t dropped, origin;
    tspan_t *v = NULL;
    rep_thread_t *threads = NULL;
    lane_t *lanes = NULL;
    size_t n = 0, lanes_total = 0;
    unsigned *nlanes = NULL; /* per tid group: lanes used */
    json_t j;
    int rc;

    net_model_spans(in->net, &ns, &dropped);
    if ((rc = collect(c, &v, &n, &origin)) < 0)
        goto out;
    rc = -ENOMEM;
    if (in->n_threads && !(threads = malloc(in->n_threads * sizeof(*threads))))
        goto out;
    if (in->n_threads)
        memcpy(threads, in->threads, in->n_threads * sizeof(*threads));
    util_sort(threads, in->n_threads, sizeof(*threads), cmp_thread);
    if (!(lanes = calloc(MAX_LANES, sizeof(*lanes))) || !(nlanes = calloc(n + 1, sizeof(*nlanes))))
        goto out;
    util_sort(v, n, sizeof(*v), cmp_tspan);
    for (size_t i = 0, g = 0; i < n; g++) {
        size_t k = i;
        while (k < n && v[k].tid == v[i].tid)
            k++;
        int used = deal_lanes(v + i, k - i, lanes);
        if (used < 0)
            goto out;
        nlanes[g] = (unsigned)used;
        lanes_total += (size_t)used;
        i = k;
    }

    json_init(&j, f, 2);
    json_obj_begin(&j);
    json_key(&j, "traceEvents");
    json_arr_begin(&j);
    {
        const char *exe = in->proc.exe ? strrchr(in->proc.exe, '/') : NULL;
        char pname[300];
        snprintf(pname, sizeof(pname), "%s (pid %" PRIu32 ")",
                 exe ? exe + 1 : in->proc.exe ? in->proc.exe : "process", in->proc.pid);
        meta(&j, c, "process_name", 0, pname);
    }
    /* A name per track: the thread's, and "<name> [k]" for its lanes. */
    for (size_t i = 0, g = 0; i < n; g++) {
        uint32_t tid = v[i].tid;
        const char *tn = thread_name(threads, in->n_threads, tid);
        char name[300];
        for (unsigned l = 0; l < nlanes[g]; l++) {
            int w = tn ? snprintf(name, sizeof(name), "%s", tn)
                       : snprintf(name, sizeof(name), "thread %" PRIu32, tid);
            if (l && w > 0 && (size_t)w < sizeof(name))
                snprintf(name + w, sizeof(name) - (size_t)w, " [%u]", l);
            meta(&j, c, "thread_name", tid + (uint64_t)l * LANE_STRIDE, name);
        }
        while (i < n && v[i].tid == tid)
            i++;
    }
    /* Within a track, parents before children (viewers like it so). */
    util_sort(v, n, sizeof(*v), cmp_out);
    for (size_t i = 0; i < n; i++) {
        if (v[i].src == SRC_PQ)
            pq_event(&j, c, &v[i], &in->pq->ev[v[i].idx]);
        else
            net_event(&j, c, &v[i], &ns[v[i].idx]);
    }
    json_arr_end(&j);
    kv_str(&j, "displayTimeUnit", "ms");
    json_key(&j, "otherData");
    json_obj_begin(&j);
    kv_u64(&j, "pid", in->proc.pid);
    kv_str(&j, "time_origin", in->proc.has_hello ? "agent start (Hello.start_mono_ns)"
                                                 : "first span (no Hello)");
    kv_u64(&j, "origin_mono_ns", origin == UINT64_MAX ? 0 : origin);
    kv_u64(&j, "spans", n);
    kv_u64(&j, "spans_dropped", dropped);
    kv_u64(&j, "tracks", lanes_total);
    json_obj_end(&j);
    json_obj_end(&j);
    fputc('\n', f);
    rc = 0;
out:
    if (lanes)
        for (unsigned l = 0; l < MAX_LANES; l++)
            free(lanes[l].ends);
    free(lanes);
    free(nlanes);
    free(threads);
    free(v);
    return rc;
}
