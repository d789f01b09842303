/*
 * net_model.c — see net_model.h.  Linear lookups over a bounded number of
 * keys: a process talks to few peers and serves few endpoints; past
 * NET_MODEL_MAX_KEYS everything lands in one "(other)" key.
 */
#include "net_model.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct net_model {
    net_peer_t *peers;
    size_t n_peers, cap_peers;
    net_endpoint_t *eps;
    size_t n_eps, cap_eps;
    uint64_t events;
    int sorted;
    net_wait_t *waits;
    size_t n_waits;
    net_dns_t *dns;
    size_t n_dns, cap_dns;
    uint64_t warn_ns, error_ns;
    net_slow_t *slow;
    size_t n_slow, cap_slow;
    uint64_t slow_more;
    uint64_t *stack_ns; /* by stack id */
    size_t cap_stack_ns;
    /* trace.json: spans, the strings they point to, and where each
     * connection's span is (its "conn" events share start, role and
     * addresses) */
    net_span_t *spans;
    size_t n_spans, cap_spans;
    uint64_t spans_dropped;
    char **strs; /* open addressing */
    size_t n_strs, cap_strs;
    uint32_t *conns; /* span index + 1, open addressing */
    size_t n_conns, cap_conns;
};

static uint64_t hash_bytes(const char *s, uint64_t h)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* The model's copy of s (NULL: ""), or NULL when out of memory. */
static const char *intern(net_model_t *m, const char *s)
{
    size_t k;
    if (!s)
        s = "";
    if ((m->n_strs + 1) * 2 > m->cap_strs) {
        size_t cap = m->cap_strs ? m->cap_strs * 2 : 256;
        char **v = calloc(cap, sizeof(*v));
        if (!v)
            return NULL;
        for (size_t i = 0; i < m->cap_strs; i++)
            if (m->strs[i]) {
                for (k = hash_bytes(m->strs[i], 0xcbf29ce484222325ull) & (cap - 1); v[k];
                     k = (k + 1) & (cap - 1))
                    ;
                v[k] = m->strs[i];
            }
        free(m->strs);
        m->strs = v;
        m->cap_strs = cap;
    }
    for (k = hash_bytes(s, 0xcbf29ce484222325ull) & (m->cap_strs - 1); m->strs[k];
         k = (k + 1) & (m->cap_strs - 1))
        if (!strcmp(m->strs[k], s))
            return m->strs[k];
    if (!(m->strs[k] = strdup(s)))
        return NULL;
    m->n_strs++;
    return m->strs[k];
}

/* A new span, zeroed, with the event's common fields; NULL with *rc = 0
 * when the list is full (counted), -ENOMEM when memory is. */
static net_span_t *span_new(net_model_t *m, const Perfagent__SocketEvent *ev, int kind, int *rc)
{
    net_span_t *sp;
    *rc = 0;
    if (m->n_spans >= NET_MODEL_MAX_SPANS) {
        m->spans_dropped++;
        return NULL;
    }
    if (m->n_spans == m->cap_spans &&
        util_grow((void **)&m->spans, &m->cap_spans, m->n_spans + 1, sizeof(*m->spans)) < 0) {
        *rc = -ENOMEM;
        return NULL;
    }
    sp = &m->spans[m->n_spans];
    memset(sp, 0, sizeof(*sp));
    sp->kind = (uint8_t)kind;
    sp->role = (uint8_t)ev->role;
    sp->tid = ev->tid;
    sp->start_ns = ev->start_ticks;
    sp->dur_ns = ev->duration_ns;
    if (!(sp->peer = intern(m, ev->peer)) || !(sp->local = intern(m, ev->local)) ||
        !(sp->transport = intern(m, ev->transport)) || !(sp->name = intern(m, "")) ||
        !(sp->path = sp->name)) {
        *rc = -ENOMEM;
        return NULL;
    }
    m->n_spans++;
    return sp;
}

static uint64_t conn_hash(const net_span_t *sp)
{
    uint64_t h = sp->start_ns * 0x9e3779b97f4a7c15ull;
    h ^= (uintptr_t)sp->peer * 31 + (uintptr_t)sp->local * 17 + sp->role;
    return h * 0x100000001b3ull;
}

/* Same connection: made at the same moment with the same role and ends
 * (interned strings compare by address). */
static int conn_same(const net_span_t *a, const net_span_t *b)
{
    return a->start_ns == b->start_ns && a->role == b->role && a->peer == b->peer &&
           a->local == b->local && a->transport == b->transport;
}

/* The index of the span sp (just appended) is recorded; or the index of an
 * earlier span of the same connection is returned (and sp is to be
 * dropped).  SIZE_MAX: out of memory. */
static size_t conn_find(net_model_t *m, size_t idx)
{
    const net_span_t *sp = &m->spans[idx];
    size_t k;
    if ((m->n_conns + 1) * 2 > m->cap_conns) {
        size_t cap = m->cap_conns ? m->cap_conns * 2 : 256;
        uint32_t *v = calloc(cap, sizeof(*v));
        if (!v)
            return SIZE_MAX;
        for (size_t i = 0; i < m->cap_conns; i++)
            if (m->conns[i]) {
                for (k = conn_hash(&m->spans[m->conns[i] - 1]) & (cap - 1); v[k];
                     k = (k + 1) & (cap - 1))
                    ;
                v[k] = m->conns[i];
            }
        free(m->conns);
        m->conns = v;
        m->cap_conns = cap;
    }
    for (k = conn_hash(sp) & (m->cap_conns - 1); m->conns[k]; k = (k + 1) & (m->cap_conns - 1))
        if (conn_same(&m->spans[m->conns[k] - 1], sp))
            return m->conns[k] - 1;
    m->conns[k] = (uint32_t)idx + 1;
    m->n_conns++;
    return idx;
}

static int span_add(net_model_t *m, const Perfagent__SocketEvent *ev)
{
    int rc, kind = !strcmp(ev->op, "conn")   ? NET_SPAN_CONN
                   : !strcmp(ev->op, "http") ? NET_SPAN_HTTP
                   : !strcmp(ev->op, "dns")  ? NET_SPAN_DNS
                                             : NET_SPAN_WAIT;
    net_span_t *sp = span_new(m, ev, kind, &rc);
    if (!sp)
        return rc;
    switch (kind) {
    case NET_SPAN_CONN: {
        size_t idx = (size_t)(sp - m->spans), at = conn_find(m, idx);
        if (at == SIZE_MAX)
            return -ENOMEM;
        if (at != idx) { /* a later event of a connection: merged into its span */
            m->n_spans--;
            sp = &m->spans[at];
            if (ev->duration_ns > sp->dur_ns)
                sp->dur_ns = ev->duration_ns;
        }
        sp->closed |= ev->closed;
        sp->bytes_sent += ev->bytes_sent;
        sp->bytes_received += ev->bytes_received;
        if (ev->opened) {
            sp->tid = ev->tid;
            sp->error = ev->error;
            sp->connect_start_ns = ev->connect_start_ticks;
            sp->connect_ns = ev->connect_ns;
        }
        break;
    }
    case NET_SPAN_HTTP:
        sp->status = ev->http_status;
        sp->incomplete = ev->http_incomplete;
        sp->reused = ev->http_reused;
        sp->pipelined = ev->http_pipelined;
        sp->bytes_sent = ev->http_request_bytes;
        sp->bytes_received = ev->http_response_bytes;
        if (!(sp->name = intern(m, ev->http_method)) || !(sp->path = intern(m, ev->http_target)))
            return -ENOMEM;
        break;
    case NET_SPAN_DNS:
        sp->error = ev->error;
        if (!(sp->name = intern(m, ev->peer)))
            return -ENOMEM;
        break;
    default:
        if (!(sp->name = intern(m, ev->call)))
            return -ENOMEM;
    }
    return 0;
}

size_t net_model_spans(const net_model_t *m, const net_span_t **out, uint64_t *dropped)
{
    *out = m ? m->spans : NULL;
    *dropped = m ? m->spans_dropped : 0;
    return m ? m->n_spans : 0;
}

static const char *nz(const char *s) { return s && *s ? s : "(unknown)"; }

/* PERFAGENT_SLOW_REQUEST_MS=WARN[,ERROR]; a bad value is said once. */
static void slow_limits(uint64_t *warn, uint64_t *err)
{
    static int said;
    const char *v = getenv("PERFAGENT_SLOW_REQUEST_MS");
    char *end;
    unsigned long long w, e;
    *warn = 1000, *err = 3000;
    if (!v || !*v)
        return;
    if (*v < '0' || *v > '9') /* strtoull takes spaces and signs */
        end = (char *)v, w = 0;
    else
        w = strtoull(v, &end, 10);
    e = w * 3;
    if (*end == ',')
        e = strtoull(end + 1, &end, 10);
    if (*end || end == v || w == 0 || e < w || e > 86400000) {
        char shown[160];
        if (!said++)
            fprintf(stderr,
                    "perfagent: ignoring PERFAGENT_SLOW_REQUEST_MS=%s: expected WARN_MS or "
                    "WARN_MS,ERROR_MS; using 1000,3000\n",
                    util_env_show(v, shown, sizeof(shown)));
        return;
    }
    *warn = w, *err = e;
}

net_model_t *net_model_new(void)
{
    net_model_t *m = calloc(1, sizeof(net_model_t));
    if (m) {
        slow_limits(&m->warn_ns, &m->error_ns);
        m->warn_ns *= 1000000, m->error_ns *= 1000000;
    }
    return m;
}

void net_model_slow_limits(const net_model_t *m, uint64_t *warn_ns, uint64_t *error_ns)
{
    *warn_ns = m->warn_ns;
    *error_ns = m->error_ns;
}

static int cmp_slow(const void *a, const void *b)
{
    const net_slow_t *x = a, *y = b;
    if (x->duration_ns != y->duration_ns)
        return x->duration_ns > y->duration_ns ? -1 : 1;
    return strcmp(x->path, y->path);
}

size_t net_model_slow(net_model_t *m, const net_slow_t **out, uint64_t *more)
{
    if (m)
        util_sort(m->slow, m->n_slow, sizeof(*m->slow), cmp_slow);
    *out = m ? m->slow : NULL;
    *more = m ? m->slow_more : 0;
    return m ? m->n_slow : 0;
}

static int add_slow(net_model_t *m, const Perfagent__SocketEvent *ev)
{
    const char *addr = ev->role == PERFAGENT__SOCKET_ROLE__ROLE_SERVER && ev->local && *ev->local
                           ? ev->local
                           : ev->peer;
    if (m->n_slow >= NET_MODEL_MAX_SLOW) {
        m->slow_more++;
        return 0;
    }
    if (m->n_slow == m->cap_slow &&
        util_grow((void **)&m->slow, &m->cap_slow, m->n_slow + 1, sizeof(*m->slow)) < 0)
        return -ENOMEM;
    net_slow_t *s = &m->slow[m->n_slow];
    memset(s, 0, sizeof(*s));
    if (!(s->method = strdup(nz(ev->http_method))) || !(s->path = strdup(nz(ev->http_target))) ||
        !(s->address = strdup(nz(addr)))) {
        free(s->method);
        free(s->path);
        return -ENOMEM;
    }
    s->role = (int)ev->role;
    s->status = ev->http_status;
    s->stack_id = ev->stack_id;
    s->duration_ns = ev->duration_ns;
    m->n_slow++;
    return 0;
}

void net_model_free(net_model_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_peers; i++) {
        free(m->peers[i].transport);
        free(m->peers[i].address);
        free(m->peers[i].connect_ns);
        free(m->peers[i].errs);
    }
    for (size_t i = 0; i < m->n_eps; i++) {
        free(m->eps[i].method);
        free(m->eps[i].path);
        free(m->eps[i].latency_ns);
        free(m->eps[i].statuses);
    }
    for (size_t i = 0; i < m->n_waits; i++)
        free(m->waits[i].call);
    free(m->waits);
    for (size_t i = 0; i < m->n_dns; i++) {
        free(m->dns[i].host);
        free(m->dns[i].errs);
        free(m->dns[i].latency_ns);
    }
    free(m->dns);
    for (size_t i = 0; i < m->n_slow; i++) {
        free(m->slow[i].method);
        free(m->slow[i].path);
        free(m->slow[i].address);
    }
    free(m->slow);
    free(m->stack_ns);
    for (size_t i = 0; i < m->cap_strs; i++)
        free(m->strs[i]);
    free(m->strs);
    free(m->spans);
    free(m->conns);
    free(m->peers);
    free(m->eps);
    free(m);
}

static int push_u64(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
    if (*n == *cap && util_grow((void **)v, cap, *n + 1, sizeof(**v)) < 0)
        return -ENOMEM;
    (*v)[(*n)++] = x;
    return 0;
}

static net_peer_t *peer_get(net_model_t *m, int role, const char *transport, const char *addr)
{
    if (m->n_peers >= NET_MODEL_MAX_KEYS)
        addr = "(other)";
    for (size_t i = 0; i < m->n_peers; i++)
        if (m->peers[i].role == role && !strcmp(m->peers[i].address, addr) &&
            !strcmp(m->peers[i].transport, transport))
            return &m->peers[i];
    if (m->n_peers == m->cap_peers &&
        util_grow((void **)&m->peers, &m->cap_peers, m->n_peers + 1, sizeof(*m->peers)) < 0)
        return NULL;
    net_peer_t *p = &m->peers[m->n_peers];
    memset(p, 0, sizeof(*p));
    p->role = role;
    if (!(p->transport = strdup(transport)) || !(p->address = strdup(addr))) {
        free(p->transport);
        free(p->address);
        return NULL;
    }
    m->n_peers++;
    return p;
}

static net_endpoint_t *ep_get(net_model_t *m, int role, const char *method, const char *path)
{
    if (m->n_eps >= NET_MODEL_MAX_KEYS)
        method = "", path = "(other)";
    for (size_t i = 0; i < m->n_eps; i++)
        if (m->eps[i].role == role && !strcmp(m->eps[i].method, method) &&
            !strcmp(m->eps[i].path, path))
            return &m->eps[i];
    if (m->n_eps == m->cap_eps &&
        util_grow((void **)&m->eps, &m->cap_eps, m->n_eps + 1, sizeof(*m->eps)) < 0)
        return NULL;
    net_endpoint_t *e = &m->eps[m->n_eps];
    memset(e, 0, sizeof(*e));
    e->role = role;
    if (!(e->method = strdup(method)) || !(e->path = strdup(path))) {
        free(e->method);
        free(e->path);
        return NULL;
    }
    m->n_eps++;
    return e;
}

static int add_conn(net_model_t *m, const Perfagent__SocketEvent *ev)
{
    int role = (int)ev->role;
    const char *addr = role == PERFAGENT__SOCKET_ROLE__ROLE_SERVER && ev->local && *ev->local
                           ? ev->local
                           : ev->peer;
    net_peer_t *p = peer_get(m, role, nz(ev->transport), nz(addr));
    if (!p)
        return -ENOMEM;
    if (ev->opened) {
        p->connections++;
        if (ev->error)
            p->connect_failed++;
        else if (ev->connect_ns && push_u64(&p->connect_ns, &p->n_connect, &p->cap_connect,
                                            ev->connect_ns) < 0)
            return -ENOMEM;
    }
    if (ev->closed) {
        p->closed++;
        p->lifetime_ns += ev->duration_ns;
    }
    p->bytes_sent += ev->bytes_sent;
    p->bytes_received += ev->bytes_received;
    p->calls_send += ev->calls_send;
    p->calls_recv += ev->calls_recv;
    for (size_t i = 0; i < ev->n_errors; i++) {
        const Perfagent__SocketErrno *e = ev->errors[i];
        size_t k = 0;
        while (k < p->n_errs && p->errs[k].code != e->code)
            k++;
        if (k == p->n_errs) {
            net_errno_t *n = realloc(p->errs, (p->n_errs + 1) * sizeof(*n));
            if (!n)
                return -ENOMEM;
            p->errs = n;
            p->errs[p->n_errs++] = (net_errno_t){.code = e->code};
        }
        p->errs[k].count += e->count;
    }
    return 0;
}

static int add_http(net_model_t *m, const Perfagent__SocketEvent *ev)
{
    net_endpoint_t *e = ep_get(m, (int)ev->role, nz(ev->http_method), nz(ev->http_target));
    size_t k = 0;
    if (!e)
        return -ENOMEM;
    e->count++;
    e->errors_4xx += ev->http_status >= 400 && ev->http_status < 500;
    e->errors_5xx += ev->http_status >= 500 && ev->http_status < 600;
    e->incomplete += ev->http_incomplete;
    e->reused += ev->http_reused;
    e->pipelined += ev->http_pipelined;
    e->request_bytes += ev->http_request_bytes;
    e->response_bytes += ev->http_response_bytes;
    if (push_u64(&e->latency_ns, &e->n_latency, &e->cap_latency, ev->duration_ns) < 0)
        return -ENOMEM;
    while (k < e->n_statuses && e->statuses[k].status != ev->http_status)
        k++;
    if (k == e->n_statuses) {
        net_status_t *n = realloc(e->statuses, (e->n_statuses + 1) * sizeof(*n));
        if (!n)
            return -ENOMEM;
        e->statuses = n;
        e->statuses[e->n_statuses++] = (net_status_t){.status = ev->http_status};
    }
    e->statuses[k].count++;
    return ev->duration_ns >= m->warn_ns ? add_slow(m, ev) : 0;
}

#define NET_MODEL_MAX_STACK_ID (1u << 22) /* past the decoder's default stack limit */

static int add_wait(net_model_t *m, const Perfagent__SocketEvent *ev)
{
    const char *call = ev->call && *ev->call ? ev->call : "(unknown)";
    size_t k = 0;
    while (k < m->n_waits && strcmp(m->waits[k].call, call))
        k++;
    if (k == m->n_waits) {
        if (m->n_waits >= 64)
            return 0; /* the agent names a handful of calls */
        net_wait_t *n = realloc(m->waits, (m->n_waits + 1) * sizeof(*n));
        if (!n)
            return -ENOMEM;
        m->waits = n;
        if (!(m->waits[k].call = strdup(call)))
            return -ENOMEM;
        m->waits[k].count = m->waits[k].ns = 0;
        m->n_waits++;
    }
    m->waits[k].count++;
    m->waits[k].ns += ev->duration_ns;
    if (ev->stack_id < NET_MODEL_MAX_STACK_ID) {
        if (ev->stack_id >= m->cap_stack_ns) {
            size_t old = m->cap_stack_ns;
            if (util_grow((void **)&m->stack_ns, &m->cap_stack_ns, (size_t)ev->stack_id + 1,
                          sizeof(*m->stack_ns)) < 0)
                return -ENOMEM;
            memset(m->stack_ns + old, 0, (m->cap_stack_ns - old) * sizeof(*m->stack_ns));
        }
        m->stack_ns[ev->stack_id] += ev->duration_ns;
    }
    return 0;
}

static int add_dns(net_model_t *m, const Perfagent__SocketEvent *ev)
{
    const char *host = m->n_dns >= NET_MODEL_MAX_KEYS ? "(other)" : nz(ev->peer);
    size_t i = 0, k = 0;
    while (i < m->n_dns && strcmp(m->dns[i].host, host))
        i++;
    if (i == m->n_dns) {
        if (m->n_dns == m->cap_dns &&
            util_grow((void **)&m->dns, &m->cap_dns, m->n_dns + 1, sizeof(*m->dns)) < 0)
            return -ENOMEM;
        memset(&m->dns[i], 0, sizeof(m->dns[i]));
        if (!(m->dns[i].host = strdup(host)))
            return -ENOMEM;
        m->n_dns++;
    }
    net_dns_t *d = &m->dns[i];
    d->count++;
    if (push_u64(&d->latency_ns, &d->n_latency, &d->cap_latency, ev->duration_ns) < 0)
        return -ENOMEM;
    if (!ev->error)
        return 0;
    d->failed++;
    while (k < d->n_errs && d->errs[k].code != ev->error)
        k++;
    if (k == d->n_errs) {
        net_errno_t *n = realloc(d->errs, (d->n_errs + 1) * sizeof(*n));
        if (!n)
            return -ENOMEM;
        d->errs = n;
        d->errs[d->n_errs++] = (net_errno_t){.code = ev->error};
    }
    d->errs[k].count++;
    return 0;
}

static int cmp_dns(const void *a, const void *b)
{
    return strcmp(((const net_dns_t *)a)->host, ((const net_dns_t *)b)->host);
}

size_t net_model_dns(net_model_t *m, const net_dns_t **out)
{
    if (m)
        util_sort(m->dns, m->n_dns, sizeof(*m->dns), cmp_dns);
    *out = m ? m->dns : NULL;
    return m ? m->n_dns : 0;
}

const char *net_eai_name(int32_t code, char buf[16])
{
    static const struct {
        int code;
        const char *name;
    } names[] = {{EAI_BADFLAGS, "EAI_BADFLAGS"}, {EAI_NONAME, "EAI_NONAME"},
                 {EAI_AGAIN, "EAI_AGAIN"},       {EAI_FAIL, "EAI_FAIL"},
                 {EAI_FAMILY, "EAI_FAMILY"},     {EAI_SOCKTYPE, "EAI_SOCKTYPE"},
                 {EAI_SERVICE, "EAI_SERVICE"},   {EAI_MEMORY, "EAI_MEMORY"},
                 {EAI_SYSTEM, "EAI_SYSTEM"},     {EAI_OVERFLOW, "EAI_OVERFLOW"},
                 {EAI_NODATA, "EAI_NODATA"},     {EAI_ADDRFAMILY, "EAI_ADDRFAMILY"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].code == code)
            return names[i].name;
    snprintf(buf, 16, "EAI(%d)", (int)code);
    return buf;
}

static int cmp_wait(const void *a, const void *b)
{
    return strcmp(((const net_wait_t *)a)->call, ((const net_wait_t *)b)->call);
}

size_t net_model_waits(net_model_t *m, const net_wait_t **out)
{
    if (m)
        util_sort(m->waits, m->n_waits, sizeof(*m->waits), cmp_wait);
    *out = m ? m->waits : NULL;
    return m ? m->n_waits : 0;
}

uint64_t net_model_stack_wait_ns(const net_model_t *m, uint32_t stack_id)
{
    return m && stack_id < m->cap_stack_ns ? m->stack_ns[stack_id] : 0;
}

int net_model_add(net_model_t *m, const Perfagent__SocketEvent *ev)
{
    int rc;
    m->events++;
    m->sorted = 0;
    /* A connect that blocked is a wait (wall.folded, net.json's waits) but
     * not a span of its own: its connection's "connect" span covers it.  A
     * second span for the same time, which starts and ends a few hundred ns
     * after the connect span (the agent reads the clock on each side of its
     * bookkeeping), cannot nest in it: trace.json showed a lane of its own,
     * as if the thread did two things for that second. */
    int connect_wait = ev->op && !strcmp(ev->op, "wait") && ev->call && !strcmp(ev->call, "connect");
    if (ev->op && !connect_wait &&
        (!strcmp(ev->op, "conn") || !strcmp(ev->op, "http") || !strcmp(ev->op, "wait") ||
         !strcmp(ev->op, "dns")) &&
        (rc = span_add(m, ev)) < 0)
        return rc;
    if (ev->op && !strcmp(ev->op, "conn"))
        return add_conn(m, ev);
    if (ev->op && !strcmp(ev->op, "http"))
        return add_http(m, ev);
    if (ev->op && !strcmp(ev->op, "wait"))
        return add_wait(m, ev);
    if (ev->op && !strcmp(ev->op, "dns"))
        return add_dns(m, ev);
    return 0;
}

uint64_t net_model_events(const net_model_t *m)
{
    return m ? m->events : 0;
}

static int cmp_peer(const void *a, const void *b)
{
    const net_peer_t *x = a, *y = b;
    if (x->role != y->role)
        return x->role < y->role ? -1 : 1;
    int c = strcmp(x->address, y->address);
    return c ? c : strcmp(x->transport, y->transport);
}

static int cmp_ep(const void *a, const void *b)
{
    const net_endpoint_t *x = a, *y = b;
    if (x->role != y->role)
        return x->role < y->role ? -1 : 1;
    int c = strcmp(x->path, y->path);
    return c ? c : strcmp(x->method, y->method);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_errno(const void *a, const void *b)
{
    const net_errno_t *x = a, *y = b;
    return x->code < y->code ? -1 : x->code > y->code;
}

static int cmp_status(const void *a, const void *b)
{
    const net_status_t *x = a, *y = b;
    return x->status < y->status ? -1 : x->status > y->status;
}

static void sort_all(net_model_t *m)
{
    if (m->sorted)
        return;
    util_sort(m->peers, m->n_peers, sizeof(*m->peers), cmp_peer);
    util_sort(m->eps, m->n_eps, sizeof(*m->eps), cmp_ep);
    for (size_t i = 0; i < m->n_peers; i++)
        util_sort(m->peers[i].errs, m->peers[i].n_errs, sizeof(net_errno_t), cmp_errno);
    for (size_t i = 0; i < m->n_eps; i++)
        util_sort(m->eps[i].statuses, m->eps[i].n_statuses, sizeof(net_status_t), cmp_status);
    m->sorted = 1;
}

size_t net_model_peers(net_model_t *m, const net_peer_t **out)
{
    if (!m) {
        *out = NULL;
        return 0;
    }
    sort_all(m);
    *out = m->peers;
    return m->n_peers;
}

size_t net_model_endpoints(net_model_t *m, const net_endpoint_t **out)
{
    if (!m) {
        *out = NULL;
        return 0;
    }
    sort_all(m);
    *out = m->eps;
    return m->n_eps;
}

uint64_t net_percentile(uint64_t *v, size_t n, unsigned q)
{
    if (!n)
        return 0;
    util_sort(v, n, sizeof(*v), cmp_u64);
    size_t rank = (q * n + 99) / 100; /* nearest rank, 1-based */
    if (rank < 1)
        rank = 1;
    return v[rank - 1];
}

const char *net_role_name(int role)
{
    return role == PERFAGENT__SOCKET_ROLE__ROLE_CLIENT   ? "client"
           : role == PERFAGENT__SOCKET_ROLE__ROLE_SERVER ? "server"
                                                         : "unknown";
}

const char *net_errno_name(int32_t code, char buf[16])
{
    const char *s = code > 0 ? strerrorname_np(code) : NULL;
    if (s)
        return s;
    snprintf(buf, 16, "E%d", (int)code);
    return buf;
}
