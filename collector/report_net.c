/*
 * report_net.c — net.json / net.txt (per peer and role: connections, bytes,
 * calls, connect latency percentiles, errors by errno name), http.json /
 * http.txt (per endpoint: requests, statuses, 4xx and 5xx, latency
 * percentiles) and the summary's "net" section, from in->net (net_model).
 * Written only for a process that made socket events.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "flamegraph.h"
#include "json.h"
#include "report_int.h"
#include "util.h"

int net_reports_wanted(const rep_input_t *in)
{
    return in->net && net_model_events(in->net) > 0;
}

static void put_ms(FILE *f, uint64_t ns)
{
    fprintf(f, "%.3f", ns / 1e6);
}

static void ms_raw(json_t *j, uint64_t ns)
{
    char b[32];
    snprintf(b, sizeof(b), "%.3f", ns / 1e6);
    json_raw(j, b);
}

/* p50, p95, p99 and max of v (sorted in place). */
static void pctls(uint64_t *v, size_t n, uint64_t out[4])
{
    out[0] = net_percentile(v, n, 50);
    out[1] = net_percentile(v, n, 95);
    out[2] = net_percentile(v, n, 99);
    out[3] = n ? v[n - 1] : 0;
}

static void json_pctls(json_t *j, const char *key, uint64_t *v, size_t n)
{
    static const char *const names[] = {"p50", "p95", "p99", "max"};
    uint64_t p[4];
    json_key(j, key);
    if (!n) {
        json_null(j);
        return;
    }
    pctls(v, n, p);
    json_obj_begin(j);
    for (int i = 0; i < 4; i++) {
        json_key(j, names[i]);
        ms_raw(j, p[i]);
    }
    json_obj_end(j);
}

int write_net_json(FILE *f, ctx_t *c)
{
    const net_peer_t *pv;
    size_t n = net_model_peers(c->in->net, &pv);
    json_t j;
    char eb[16];
    json_init(&j, f, 2);
    json_obj_begin(&j);
    json_key(&j, "pid");
    json_u64(&j, c->in->proc.pid);
    json_key(&j, "peers");
    json_arr_begin(&j);
    for (size_t i = 0; i < n; i++) {
        net_peer_t *p = (net_peer_t *)&pv[i];
        json_obj_begin(&j);
        json_key(&j, "role");
        json_str(&j, net_role_name(p->role));
        json_key(&j, "transport");
        json_str(&j, p->transport);
        json_key(&j, "address");
        json_str(&j, p->address);
        json_key(&j, "connections");
        json_u64(&j, p->connections);
        json_key(&j, "connect_failed");
        json_u64(&j, p->connect_failed);
        json_key(&j, "closed");
        json_u64(&j, p->closed);
        json_key(&j, "bytes_sent");
        json_u64(&j, p->bytes_sent);
        json_key(&j, "bytes_received");
        json_u64(&j, p->bytes_received);
        json_key(&j, "calls_send");
        json_u64(&j, p->calls_send);
        json_key(&j, "calls_recv");
        json_u64(&j, p->calls_recv);
        json_pctls(&j, "connect_ms", p->connect_ns, p->n_connect);
        json_key(&j, "lifetime_ms_avg");
        if (p->closed)
            ms_raw(&j, p->lifetime_ns / p->closed);
        else
            json_null(&j);
        json_key(&j, "errors");
        json_obj_begin(&j);
        for (size_t k = 0; k < p->n_errs; k++) {
            json_key(&j, net_errno_name(p->errs[k].code, eb));
            json_u64(&j, p->errs[k].count);
        }
        json_obj_end(&j);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    const net_wait_t *w;
    size_t nw = net_model_waits(c->in->net, &w);
    const net_dns_t *dv;
    size_t nd = net_model_dns(c->in->net, &dv);
    json_key(&j, "dns");
    json_arr_begin(&j);
    for (size_t i = 0; i < nd; i++) {
        net_dns_t *d = (net_dns_t *)&dv[i];
        json_obj_begin(&j);
        json_key(&j, "host");
        json_str(&j, d->host);
        json_key(&j, "count");
        json_u64(&j, d->count);
        json_key(&j, "failed");
        json_u64(&j, d->failed);
        json_key(&j, "errors");
        json_obj_begin(&j);
        for (size_t k = 0; k < d->n_errs; k++) {
            json_key(&j, net_eai_name(d->errs[k].code, eb));
            json_u64(&j, d->errs[k].count);
        }
        json_obj_end(&j);
        json_pctls(&j, "latency_ms", d->latency_ns, d->n_latency);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_key(&j, "waits");
    json_arr_begin(&j);
    for (size_t i = 0; i < nw; i++) {
        json_obj_begin(&j);
        json_key(&j, "call");
        json_str(&j, w[i].call);
        json_key(&j, "count");
        json_u64(&j, w[i].count);
        json_key(&j, "ms");
        ms_raw(&j, w[i].ns);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_obj_end(&j);
    fputc('\n', f);
    return 0;
}

static void put_waits(FILE *f, ctx_t *c, const char *indent)
{
    const net_wait_t *w;
    size_t n = net_model_waits(c->in->net, &w);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s%s: %" PRIu64 " calls blocked 1 ms or more, ", indent, w[i].call,
                w[i].count);
        put_ms(f, w[i].ns);
        fputs(" ms in all\n", f);
    }
}

int write_net_txt(FILE *f, ctx_t *c)
{
    const net_peer_t *pv;
    size_t n = net_model_peers(c->in->net, &pv);
    char eb[16];
    fprintf(f, "sockets of pid %" PRIu32 ": %zu peers (a server's address is its own)\n",
            c->in->proc.pid, n);
    if (wall_reports_wanted(c->in)) {
        fputs("\ntime blocked (by stack: wall.folded, wall.svg)\n", f);
        put_waits(f, c, "  ");
    }
    const net_dns_t *dv;
    size_t nd = net_model_dns(c->in->net, &dv);
    if (nd)
        fputs("\nname lookups (getaddrinfo)\n", f);
    for (size_t i = 0; i < nd; i++) {
        net_dns_t *d = (net_dns_t *)&dv[i];
        uint64_t q[4];
        pctls(d->latency_ns, d->n_latency, q);
        fputs("  ", f);
        put_text(f, d->host);
        fprintf(f, ": %" PRIu64 " lookups, %" PRIu64 " failed", d->count, d->failed);
        for (size_t k = 0; k < d->n_errs; k++)
            fprintf(f, " %s %" PRIu64, net_eai_name(d->errs[k].code, eb), d->errs[k].count);
        fputs(", ms p50 ", f);
        put_ms(f, q[0]);
        fputs(" p99 ", f);
        put_ms(f, q[2]);
        fputc('\n', f);
    }
    for (size_t i = 0; i < n; i++) {
        net_peer_t *p = (net_peer_t *)&pv[i];
        uint64_t q[4];
        fprintf(f, "\n%s %s ", net_role_name(p->role), p->transport);
        put_text(f, p->address);
        fprintf(f,
                "\n  connections: %" PRIu64 " (%" PRIu64 " failed to connect, %" PRIu64
                " closed)\n  bytes: %" PRIu64 " sent, %" PRIu64 " received\n  calls: %" PRIu64
                " send, %" PRIu64 " recv\n",
                p->connections, p->connect_failed, p->closed, p->bytes_sent, p->bytes_received,
                p->calls_send, p->calls_recv);
        if (p->n_connect) {
            pctls(p->connect_ns, p->n_connect, q);
            fputs("  connect ms: p50 ", f);
            put_ms(f, q[0]);
            fputs(" p95 ", f);
            put_ms(f, q[1]);
            fputs(" p99 ", f);
            put_ms(f, q[2]);
            fputs(" max ", f);
            put_ms(f, q[3]);
            fputc('\n', f);
        }
        if (p->closed) {
            fputs("  lifetime ms (average): ", f);
            put_ms(f, p->lifetime_ns / p->closed);
            fputc('\n', f);
        }
        if (p->n_errs) {
            fputs("  errors:", f);
            for (size_t k = 0; k < p->n_errs; k++)
                fprintf(f, " %s %" PRIu64, net_errno_name(p->errs[k].code, eb), p->errs[k].count);
            fputc('\n', f);
        }
    }
    return 0;
}

#define SLOW_TXT 50    /* slow requests listed in http.txt */
#define SLOW_FRAMES 12 /* frames of each */

/* The frames of stack sid (leaf first) into c->r; 0 when it has none. */
static size_t slow_frames(ctx_t *c, uint32_t sid)
{
    const rep_input_t *in = c->in;
    if (!sid || sid >= in->n_stacks || !in->stacks[sid].defined ||
        resolve_stack(&c->r, &in->stacks[sid]) < 0)
        return 0;
    return c->r.n < SLOW_FRAMES ? c->r.n : SLOW_FRAMES;
}

static const char *slow_level(const net_model_t *m, uint64_t ns)
{
    uint64_t w, e;
    net_model_slow_limits(m, &w, &e);
    return ns >= e ? "ERROR" : "WARN";
}

static void json_slow(json_t *j, ctx_t *c)
{
    const net_slow_t *sv;
    uint64_t more;
    size_t n = net_model_slow(c->in->net, &sv, &more);
    char nb[64];
    json_key(j, "slow");
    json_arr_begin(j);
    for (size_t i = 0; i < n; i++) {
        json_obj_begin(j);
        json_key(j, "level");
        json_str(j, slow_level(c->in->net, sv[i].duration_ns));
        json_key(j, "ms");
        ms_raw(j, sv[i].duration_ns);
        json_key(j, "role");
        json_str(j, net_role_name(sv[i].role));
        json_key(j, "method");
        json_str(j, sv[i].method);
        json_key(j, "path");
        json_str(j, sv[i].path);
        json_key(j, "status");
        json_u64(j, sv[i].status);
        json_key(j, "address");
        json_str(j, sv[i].address);
        json_key(j, "stack");
        json_arr_begin(j);
        for (size_t k = 0, nf = slow_frames(c, sv[i].stack_id); k < nf; k++)
            json_str(j, frame_name(&c->r.v[k], nb, sizeof(nb)));
        json_arr_end(j);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_key(j, "slow_not_listed");
    json_u64(j, more);
}

static void txt_slow(FILE *f, ctx_t *c)
{
    const net_slow_t *sv;
    uint64_t more, w, e;
    size_t n = net_model_slow(c->in->net, &sv, &more);
    char nb[64];
    net_model_slow_limits(c->in->net, &w, &e);
    fprintf(f, "\nslow requests (WARN >= %" PRIu64 " ms, ERROR >= %" PRIu64
               " ms; PERFAGENT_SLOW_REQUEST_MS): %zu\n",
            w / 1000000, e / 1000000, n + (size_t)more);
    for (size_t i = 0; i < n && i < SLOW_TXT; i++) {
        fprintf(f, "%-5s %10.3f ms  %s ", slow_level(c->in->net, sv[i].duration_ns),
                sv[i].duration_ns / 1e6, net_role_name(sv[i].role));
        put_text(f, sv[i].method);
        fputc(' ', f);
        put_text(f, sv[i].path);
        fprintf(f, " %" PRIu32 " ", sv[i].status);
        put_text(f, sv[i].address);
        fputc('\n', f);
        size_t nf = slow_frames(c, sv[i].stack_id);
        if (nf) {
            fputs("      connection made at ", f);
            for (size_t k = 0; k < nf; k++) {
                if (k)
                    fputs(" < ", f);
                put_text(f, frame_name(&c->r.v[k], nb, sizeof(nb)));
            }
            fputc('\n', f);
        }
    }
    if (n + more > SLOW_TXT)
        fprintf(f, "  ... and %" PRIu64 " more\n", (uint64_t)(n + more - SLOW_TXT));
}

int write_http_json(FILE *f, ctx_t *c)
{
    const net_endpoint_t *ev;
    size_t n = net_model_endpoints(c->in->net, &ev);
    json_t j;
    char sb[16];
    json_init(&j, f, 2);
    json_obj_begin(&j);
    json_key(&j, "pid");
    json_u64(&j, c->in->proc.pid);
    json_key(&j, "endpoints");
    json_arr_begin(&j);
    for (size_t i = 0; i < n; i++) {
        net_endpoint_t *e = (net_endpoint_t *)&ev[i];
        json_obj_begin(&j);
        json_key(&j, "role");
        json_str(&j, net_role_name(e->role));
        json_key(&j, "method");
        json_str(&j, e->method);
        json_key(&j, "path");
        json_str(&j, e->path);
        json_key(&j, "count");
        json_u64(&j, e->count);
        json_key(&j, "errors_4xx");
        json_u64(&j, e->errors_4xx);
        json_key(&j, "errors_5xx");
        json_u64(&j, e->errors_5xx);
        json_key(&j, "incomplete");
        json_u64(&j, e->incomplete);
        json_key(&j, "keep_alive");
        json_u64(&j, e->reused);
        json_key(&j, "pipelined");
        json_u64(&j, e->pipelined);
        json_key(&j, "request_bytes");
        json_u64(&j, e->request_bytes);
        json_key(&j, "response_bytes");
        json_u64(&j, e->response_bytes);
        json_key(&j, "statuses");
        json_obj_begin(&j);
        for (size_t k = 0; k < e->n_statuses; k++) {
            snprintf(sb, sizeof(sb), "%" PRIu32, e->statuses[k].status);
            json_key(&j, sb);
            json_u64(&j, e->statuses[k].count);
        }
        json_obj_end(&j);
        json_pctls(&j, "latency_ms", e->latency_ns, e->n_latency);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_slow(&j, c);
    json_obj_end(&j);
    fputc('\n', f);
    return 0;
}

int write_http_txt(FILE *f, ctx_t *c)
{
    const net_endpoint_t *ev;
    size_t n = net_model_endpoints(c->in->net, &ev);
    fprintf(f, "HTTP/1.x requests of pid %" PRIu32 ": %zu endpoints\n", c->in->proc.pid, n);
    if (n)
        fputs("\nrole    count   4xx   5xx  keep-alive  pipelined   p50 ms   p95 ms   p99 ms  "
              "endpoint\n",
              f);
    for (size_t i = 0; i < n; i++) {
        net_endpoint_t *e = (net_endpoint_t *)&ev[i];
        uint64_t q[4];
        pctls(e->latency_ns, e->n_latency, q);
        fprintf(f,
                "%-6s %6" PRIu64 " %5" PRIu64 " %5" PRIu64 " %11" PRIu64 " %10" PRIu64
                " %8.3f %8.3f %8.3f  ",
                net_role_name(e->role), e->count, e->errors_4xx, e->errors_5xx, e->reused,
                e->pipelined, q[0] / 1e6, q[1] / 1e6, q[2] / 1e6);
        put_text(f, e->method);
        fputc(' ', f);
        put_text(f, e->path);
        if (e->incomplete)
            fprintf(f, " (%" PRIu64 " incomplete)", e->incomplete);
        fputc('\n', f);
    }
    txt_slow(f, c);
    return 0;
}

void write_net_summary(FILE *f, ctx_t *c)
{
    const net_peer_t *pv;
    const net_endpoint_t *ev;
    size_t np = net_model_peers(c->in->net, &pv), ne = net_model_endpoints(c->in->net, &ev);
    uint64_t conns = 0, failed = 0, sent = 0, recvd = 0, reqs = 0, e4 = 0, e5 = 0;
    for (size_t i = 0; i < np; i++) {
        conns += pv[i].connections;
        failed += pv[i].connect_failed;
        sent += pv[i].bytes_sent;
        recvd += pv[i].bytes_received;
    }
    for (size_t i = 0; i < ne; i++) {
        reqs += ev[i].count;
        e4 += ev[i].errors_4xx;
        e5 += ev[i].errors_5xx;
    }
    fputs("\nnet\n", f);
    fprintf(f,
            "  connections: %" PRIu64 " (%" PRIu64 " failed to connect) with %zu peers, %" PRIu64
            " bytes sent, %" PRIu64 " received\n",
            conns, failed, np, sent, recvd);
    fprintf(f,
            "  http requests: %" PRIu64 " on %zu endpoints, %" PRIu64 " 4xx, %" PRIu64 " 5xx\n",
            reqs, ne, e4, e5);
    put_waits(f, c, "  blocked in ");
}

/* ---- wall.folded / wall.svg: time blocked in socket calls, by stack ------- */

int wall_reports_wanted(const rep_input_t *in)
{
    const net_wait_t *w;
    return in->net && net_model_waits(in->net, &w) > 0;
}

static int wall_want(const rep_stack_t *st, void *arg)
{
    const rep_input_t *in = arg;
    return net_model_stack_wait_ns(in->net, (uint32_t)(st - in->stacks)) != 0;
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(((const fg_line_t *)a)->stack, ((const fg_line_t *)b)->stack);
}

/* One line per distinct folded stack, microseconds waited, sorted; lines
 * point into *folded (free both). */
static int wall_lines(ctx_t *c, char ***folded, fg_line_t **out, size_t *n_out)
{
    const rep_input_t *in = c->in;
    fg_line_t *v;
    size_t n = 0, k = 0;
    int rc;
    *out = NULL;
    *n_out = 0;
    if ((rc = render_folded(&c->r, wall_want, (void *)in, folded)) < 0)
        return rc;
    if (!(v = malloc((in->n_stacks + 1) * sizeof(*v))))
        return -ENOMEM;
    for (size_t id = 0; id < in->n_stacks; id++) {
        uint64_t ns = net_model_stack_wait_ns(in->net, (uint32_t)id);
        if (ns)
            v[n++] = (fg_line_t){.stack = (*folded)[id] ? (*folded)[id] : "[unknown]",
                                 .value = ns / 1000};
    }
    util_sort(v, n, sizeof(*v), cmp_line);
    for (size_t i = 0; i < n; i++) {
        if (k && !strcmp(v[k - 1].stack, v[i].stack))
            v[k - 1].value += v[i].value;
        else
            v[k++] = v[i];
    }
    *out = v;
    *n_out = k;
    return 0;
}

int write_wall_folded(FILE *f, ctx_t *c)
{
    char **folded = NULL;
    fg_line_t *v;
    size_t n;
    int rc = wall_lines(c, &folded, &v, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        fprintf(f, "%s %" PRIu64 "\n", v[i].stack, (uint64_t)v[i].value);
    free(v);
    render_folded_free(folded, c->in->n_stacks);
    return rc;
}

int write_wall_svg(FILE *f, ctx_t *c)
{
    char **folded = NULL, title[512];
    fg_line_t *v;
    size_t n;
    int rc = wall_lines(c, &folded, &v, &n);
    if (rc == 0) {
        snprintf(title, sizeof(title), "Time blocked in socket calls (pid %" PRIu32 ")",
                 c->in->proc.pid);
        rc = flamegraph_write_svg(
            f, &(fg_input_t){.lines = v, .n_lines = n, .title = title, .unit = "us"});
    }
    free(v);
    render_folded_free(folded, c->in->n_stacks);
    return rc;
}
