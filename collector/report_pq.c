/*
 * report_pq.c — the libpq reports (query_model.h): queries.json and
 * queries.txt (per normalized query: calls, rows, errors by SQLSTATE,
 * latency, top calling stacks; by total time), slow_queries.json,
 * n_plus_one.json, pq.folded / pq.svg (time spent in libpq calls by
 * calling stack, in ns) and the "libpq" section of summary.txt.
 *
 * Thresholds are the collector's (its environment when it writes the
 * reports), not the agent's: the agent sends every call's duration, so
 * `perfagent report` can apply other ones to the same recording.
 *   PERFAGENT_SLOW_QUERY_MS   slow_queries.json: calls over it (default 1000)
 *   PERFAGENT_NPLUS1_MIN      n_plus_one.json: run length (default 5)
 *
 * N+1 rule: on one connection, a run of >= PERFAGENT_NPLUS1_MIN consecutive
 * calls of one normalized query from one calling stack, each with other
 * values than the call before it (QueryEvent.params_hash), right after a
 * call of another query (the "1").  Queries sent in pipeline mode are left
 * out: they do not wait for each other.  Deterministic: sorted, no clocks of now.
 */
#include "report_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "flamegraph.h"
#include "json.h"
#include "util.h"

#define TOP_STACKS 5   /* calling stacks per query */
#define TOP_SUMMARY 5  /* queries in summary.txt */

int pq_reports_wanted(const rep_input_t *in)
{
    return in->pq && in->pq->n_ev;
}

static uint64_t env_num(const char *name, uint64_t dflt)
{
    /* a run of at least 2 calls; a day in ms: beyond, a typo */
    if (strcmp(name, "PERFAGENT_NPLUS1_MIN") == 0)
        return util_env_u64(name, 2, 1000000000, dflt);
    return util_env_u64(name, 1, 86400000, dflt);
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest rank of sorted v[0..n). */
static uint64_t pct(const uint64_t *v, size_t n, unsigned p)
{
    size_t r;
    if (!n)
        return 0;
    r = (n * p + 99) / 100;
    return v[r ? r - 1 : 0];
}

static const query_model_t *qm_sorted_model; /* qsort has no context */

static int cmp_query(const void *pa, const void *pb)
{
    const qm_query_t *a = &qm_sorted_model->q[*(const uint32_t *)pa],
                     *b = &qm_sorted_model->q[*(const uint32_t *)pb];
    int c = cmp_u64_desc(a->total_ns, b->total_ns);
    return c ? c : strcmp(a->text, b->text);
}

static int cmp_stack_count(const void *pa, const void *pb)
{
    const qm_count_t *a = pa, *b = pb;
    int c = cmp_u64_desc(a->calls, b->calls);
    return c ? c : (a->stack_id > b->stack_id) - (a->stack_id < b->stack_id);
}

/* Queries in report order (by total time, then text), durations sorted. */
static uint32_t *order(const query_model_t *m)
{
    uint32_t *v = malloc((m->n_q ? m->n_q : 1) * sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < m->n_q; i++) {
        v[i] = (uint32_t)i;
        util_sort(m->q[i].durs, m->q[i].n_durs, sizeof(uint64_t), cmp_u64);
        util_sort(m->q[i].stacks, m->q[i].n_stacks, sizeof(qm_count_t), cmp_stack_count);
    }
    qm_sorted_model = m;
    util_sort(v, m->n_q, sizeof(*v), cmp_query);
    return v;
}

/* The stack's function names, leaf first, into a JSON array. */
static int json_frames(json_t *j, ctx_t *c, uint32_t sid)
{
    const rep_input_t *in = c->in;
    char nb[64];
    int rc;
    json_arr_begin(j);
    if (sid && sid < in->n_stacks && in->stacks[sid].defined) {
        if ((rc = resolve_stack(&c->r, &in->stacks[sid])) < 0)
            return rc;
        for (size_t k = 0; k < c->r.n; k++)
            json_str(j, frame_name(&c->r.v[k], nb, sizeof(nb)));
    }
    json_arr_end(j);
    return 0;
}

static void put_frames_txt(FILE *f, ctx_t *c, uint32_t sid, const char *indent)
{
    const rep_input_t *in = c->in;
    char nb[64];
    if (!sid || sid >= in->n_stacks || !in->stacks[sid].defined ||
        resolve_stack(&c->r, &in->stacks[sid]) < 0) {
        fprintf(f, "%s[no stack]\n", indent);
        return;
    }
    for (size_t k = 0; k < c->r.n; k++) {
        const rframe_t *fr = &c->r.v[k];
        fputs(indent, f);
        put_text(f, frame_name(fr, nb, sizeof(nb)));
        if (fr->file)
            fprintf(f, " (%s:%d)", base_name(fr->file), fr->line);
        fputc('\n', f);
    }
}

static void json_ms(json_t *j, const char *key, uint64_t ns)
{
    char b[32];
    snprintf(b, sizeof(b), "%.3f", ms(ns));
    json_key(j, key);
    json_raw(j, b);
}

static int write_queries_json(FILE *f, ctx_t *c)
{
    const query_model_t *m = c->in->pq;
    uint32_t *ord = order(m);
    json_t j;
    int rc = 0;
    if (!ord)
        return -ENOMEM;
    json_init(&j, f, 3);
    json_obj_begin(&j);
    json_key(&j, "queries");
    json_arr_begin(&j);
    for (size_t i = 0; i < m->n_q && rc == 0; i++) {
        const qm_query_t *q = &m->q[ord[i]];
        json_obj_begin(&j);
        json_key(&j, "query");
        json_str(&j, q->text);
        json_key(&j, "operation");
        json_str(&j, q->op);
        json_key(&j, "calls");
        json_u64(&j, q->calls);
        json_key(&j, "rows");
        json_u64(&j, q->rows);
        json_key(&j, "errors");
        json_u64(&j, q->errors);
        json_key(&j, "errors_by_sqlstate");
        json_obj_begin(&j);
        for (size_t k = 0; k < q->n_errs; k++) {
            json_key(&j, q->errs[k].sqlstate);
            json_u64(&j, q->errs[k].n);
        }
        json_obj_end(&j);
        json_key(&j, "prepares");
        json_u64(&j, q->prepares);
        json_key(&j, "describes");
        json_u64(&j, q->describes);
        json_key(&j, "describe_errors");
        json_u64(&j, q->describe_errors);
        json_key(&j, "aborted");
        json_u64(&j, q->aborted);
        json_ms(&j, "total_ms", q->total_ns);
        json_ms(&j, "mean_ms", q->calls ? q->total_ns / q->calls : 0);
        json_ms(&j, "min_ms", q->calls ? q->min_ns : 0);
        json_ms(&j, "max_ms", q->max_ns);
        json_ms(&j, "p50_ms", pct(q->durs, q->n_durs, 50));
        json_ms(&j, "p95_ms", pct(q->durs, q->n_durs, 95));
        json_ms(&j, "p99_ms", pct(q->durs, q->n_durs, 99));
        if (q->example) {
            json_key(&j, "example");
            json_str(&j, q->example);
        }
        json_key(&j, "stacks");
        json_arr_begin(&j);
        for (size_t k = 0; k < q->n_stacks && k < TOP_STACKS && rc == 0; k++) {
            json_obj_begin(&j);
            json_key(&j, "calls");
            json_u64(&j, q->stacks[k].calls);
            json_ms(&j, "total_ms", q->stacks[k].ns);
            json_key(&j, "frames");
            rc = json_frames(&j, c, q->stacks[k].stack_id);
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_key(&j, "connections");
    json_obj_begin(&j);
    json_key(&j, "opened");
    json_u64(&j, m->opened);
    json_key(&j, "closed");
    json_u64(&j, m->closed);
    json_key(&j, "peak");
    json_u64(&j, m->peak);
    json_key(&j, "failed");
    json_u64(&j, m->failed);
    json_key(&j, "resets");
    json_u64(&j, m->resets);
    util_sort(m->connect_ns, m->n_connect, sizeof(uint64_t), cmp_u64);
    json_ms(&j, "connect_p50_ms", pct(m->connect_ns, m->n_connect, 50));
    json_ms(&j, "connect_p95_ms", pct(m->connect_ns, m->n_connect, 95));
    json_ms(&j, "connect_max_ms", m->n_connect ? m->connect_ns[m->n_connect - 1] : 0);
    json_key(&j, "failures");
    json_obj_begin(&j);
    for (size_t k = 0; k < m->n_fails; k++) {
        json_key(&j, m->fails[k].message);
        json_u64(&j, m->fails[k].n);
    }
    json_obj_end(&j);
    json_obj_end(&j);
    json_obj_end(&j);
    fputc('\n', f);
    free(ord);
    return rc;
}

static int write_queries_txt(FILE *f, ctx_t *c)
{
    const query_model_t *m = c->in->pq;
    uint32_t *ord = order(m);
    if (!ord)
        return -ENOMEM;
    fprintf(f, "%zu normalized queries, by total time\n", m->n_q);
    for (size_t i = 0; i < m->n_q; i++) {
        const qm_query_t *q = &m->q[ord[i]];
        fprintf(f, "\n#%zu ", i + 1);
        put_text(f, q->text);
        fprintf(f,
                "\n  calls %" PRIu64 ", rows %" PRIu64 ", errors %" PRIu64 ", prepares %" PRIu64
                "\n  total %.3f ms, mean %.3f, min %.3f, max %.3f, p50 %.3f, p95 %.3f, p99 %.3f ms\n",
                q->calls, q->rows, q->errors, q->prepares, ms(q->total_ns),
                ms(q->calls ? q->total_ns / q->calls : 0), ms(q->calls ? q->min_ns : 0),
                ms(q->max_ns), ms(pct(q->durs, q->n_durs, 50)), ms(pct(q->durs, q->n_durs, 95)),
                ms(pct(q->durs, q->n_durs, 99)));
        if (q->describes || q->aborted)
            fprintf(f, "  not calls: %" PRIu64 " describes (%" PRIu64 " failed), %" PRIu64
                    " aborted in a pipeline\n", q->describes, q->describe_errors, q->aborted);
        for (size_t k = 0; k < q->n_errs; k++)
            fprintf(f, "  SQLSTATE %s: %" PRIu64 "\n", q->errs[k].sqlstate, q->errs[k].n);
        for (size_t k = 0; k < q->n_stacks && k < TOP_STACKS; k++) {
            fprintf(f, "  %" PRIu64 " calls, %.3f ms from:\n", q->stacks[k].calls,
                    ms(q->stacks[k].ns));
            put_frames_txt(f, c, q->stacks[k].stack_id, "    ");
        }
    }
    free(ord);
    return 0;
}

static int write_slow_json(FILE *f, ctx_t *c)
{
    const query_model_t *m = c->in->pq;
    uint64_t lim = env_num("PERFAGENT_SLOW_QUERY_MS", 1000) * 1000000ull;
    json_t j;
    int rc = 0;
    json_init(&j, f, 3);
    json_obj_begin(&j);
    json_key(&j, "threshold_ms");
    json_u64(&j, lim / 1000000);
    json_key(&j, "queries");
    json_arr_begin(&j);
    for (size_t i = 0; i < m->n_ev && rc == 0; i++) {
        const qm_event_t *e = &m->ev[i];
        int64_t at;
        if (e->query == UINT32_MAX || e->kind != 0 || e->dur_ns <= lim)
            continue;
        json_obj_begin(&j);
        json_key(&j, "query");
        json_str(&j, m->q[e->query].text);
        if (e->raw) {
            json_key(&j, "text");
            json_str(&j, e->raw);
        }
        json_ms(&j, "duration_ms", e->dur_ns);
        json_key(&j, "time_s");
        if ((at = since_start(c->in, e->start_ns)) >= 0) {
            char b[32];
            snprintf(b, sizeof(b), "%.3f", (double)at / 1e9);
            json_raw(&j, b);
        } else {
            json_null(&j);
        }
        json_key(&j, "rows");
        json_u64(&j, e->rows);
        json_key(&j, "failed");
        json_bool(&j, e->failed);
        json_key(&j, "connection");
        json_u64(&j, e->conn_id);
        json_key(&j, "tid");
        json_u64(&j, e->tid);
        json_key(&j, "frames");
        rc = json_frames(&j, c, e->stack_id);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_obj_end(&j);
    fputc('\n', f);
    return rc;
}

/* ---- N+1 ------------------------------------------------------------------ */

typedef struct finding {
    uint32_t query, prev, stack_id;
    uint64_t calls, runs, longest, ns;
} finding_t;

typedef struct nstate {
    uint64_t conn_id;
    uint32_t prev;          /* query before the run, UINT32_MAX: none */
    const qm_event_t *last; /* last query event in the run */
    uint64_t n, ns;
} nstate_t;

static int add_finding(finding_t **v, size_t *n, const nstate_t *s)
{
    for (size_t i = 0; i < *n; i++) {
        finding_t *x = &(*v)[i];
        if (x->query == s->last->query && x->prev == s->prev && x->stack_id == s->last->stack_id) {
            x->calls += s->n;
            x->runs++;
            x->ns += s->ns;
            if (s->n > x->longest)
                x->longest = s->n;
            return 0;
        }
    }
    finding_t *nv = realloc(*v, (*n + 1) * sizeof(*nv));
    if (!nv)
        return -ENOMEM;
    *v = nv;
    nv[(*n)++] = (finding_t){.query = s->last->query, .prev = s->prev, .stack_id = s->last->stack_id,
                             .calls = s->n, .runs = 1, .longest = s->n, .ns = s->ns};
    return 0;
}

static int cmp_finding(const void *pa, const void *pb)
{
    const finding_t *a = pa, *b = pb;
    int c = cmp_u64_desc(a->ns, b->ns);
    if (c)
        return c;
    c = cmp_u64_desc(a->calls, b->calls);
    return c ? c : (a->query > b->query) - (a->query < b->query);
}

/* The findings, sorted by time; 0 or -ENOMEM. */
static int n_plus_one(const query_model_t *m, uint64_t min, finding_t **out, size_t *nout)
{
    nstate_t *st = NULL;
    size_t ns = 0;
    finding_t *v = NULL;
    size_t n = 0;
    int rc = 0;
    *out = NULL;
    *nout = 0;
    for (size_t i = 0; i <= m->n_ev && rc == 0; i++) {
        const qm_event_t *e = i < m->n_ev ? &m->ev[i] : NULL;
        nstate_t *s = NULL;
        /* A pipelined loop is the batched fix, not the problem: its queries
         * share round trips.  They neither make nor break a run. */
        if (e && (e->kind != 0 || e->query == UINT32_MAX || e->pipelined))
            continue;
        if (!e) { /* end: close every run */
            for (size_t k = 0; k < ns && rc == 0; k++)
                if (st[k].last && st[k].n >= min && st[k].prev != UINT32_MAX)
                    rc = add_finding(&v, &n, &st[k]);
            break;
        }
        for (size_t k = 0; k < ns; k++)
            if (st[k].conn_id == e->conn_id)
                s = &st[k];
        if (!s) {
            nstate_t *nv = realloc(st, (ns + 1) * sizeof(*nv));
            if (!nv) {
                rc = -ENOMEM;
                break;
            }
            st = nv;
            s = &st[ns++];
            *s = (nstate_t){.conn_id = e->conn_id, .prev = UINT32_MAX};
        }
        if (s->last && s->last->query == e->query && s->last->stack_id == e->stack_id &&
            (e->params_hash != s->last->params_hash || !e->params_hash)) {
            s->n++;
            s->ns += e->dur_ns;
            s->last = e;
            continue;
        }
        /* The run ends here. */
        if (s->last && s->n >= min && s->prev != UINT32_MAX)
            rc = add_finding(&v, &n, s);
        s->prev = s->last ? s->last->query : UINT32_MAX;
        if (s->prev == e->query)
            s->prev = UINT32_MAX; /* a repeat with the same values is no "1" */
        s->last = e;
        s->n = 1;
        s->ns = e->dur_ns;
    }
    free(st);
    if (rc < 0) {
        free(v);
        return rc;
    }
    util_sort(v, n, sizeof(*v), cmp_finding);
    *out = v;
    *nout = n;
    return 0;
}

static int write_nplus1_json(FILE *f, ctx_t *c)
{
    const query_model_t *m = c->in->pq;
    uint64_t min = env_num("PERFAGENT_NPLUS1_MIN", 5);
    finding_t *v;
    size_t n;
    json_t j;
    int rc;
    if (min < 2)
        min = 2;
    if ((rc = n_plus_one(m, min, &v, &n)) < 0)
        return rc;
    json_init(&j, f, 3);
    json_obj_begin(&j);
    json_key(&j, "min_run");
    json_u64(&j, min);
    json_key(&j, "findings");
    json_arr_begin(&j);
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_obj_begin(&j);
        json_key(&j, "query");
        json_str(&j, m->q[v[i].query].text);
        json_key(&j, "preceding_query");
        json_str(&j, m->q[v[i].prev].text);
        json_key(&j, "calls");
        json_u64(&j, v[i].calls);
        json_key(&j, "runs");
        json_u64(&j, v[i].runs);
        json_key(&j, "longest_run");
        json_u64(&j, v[i].longest);
        json_ms(&j, "total_ms", v[i].ns);
        json_key(&j, "frames");
        rc = json_frames(&j, c, v[i].stack_id);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_obj_end(&j);
    fputc('\n', f);
    free(v);
    return rc;
}

/* ---- pq.folded, pq.svg ------------------------------------------------------ */

typedef struct wait_lines {
    fg_line_t *v;
    size_t n;
    char **folded;
} wait_lines_t;

typedef struct wait_arg {
    const uint64_t *ns;
    const rep_stack_t *stacks;
} wait_arg_t;

/* render_folded's filter: stacks with time in libpq. */
static int want_wait(const rep_stack_t *st, void *arg)
{
    const wait_arg_t *a = arg;
    return a->ns[st - a->stacks] != 0;
}

static int wait_prepare(ctx_t *c, wait_lines_t *w)
{
    const rep_input_t *in = c->in;
    uint64_t *ns = calloc(in->n_stacks ? in->n_stacks : 1, sizeof(*ns));
    int rc;
    memset(w, 0, sizeof(*w));
    if (!ns)
        return -ENOMEM;
    query_model_wait(in->pq, ns, in->n_stacks);
    if ((rc = render_folded(&c->r, want_wait, &(wait_arg_t){ns, in->stacks}, &w->folded)) < 0)
        goto out;
    if (!(w->v = malloc((in->n_stacks + 1) * sizeof(*w->v)))) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t id = 0; id < in->n_stacks; id++)
        if (ns[id])
            w->v[w->n++] = (fg_line_t){.stack = id && w->folded[id] ? w->folded[id] : "[no stack]",
                                       .value = ns[id]};
out:
    free(ns);
    return rc;
}

static int cmp_line(const void *pa, const void *pb)
{
    const fg_line_t *a = pa, *b = pb;
    return strcmp(a->stack, b->stack);
}

static int write_pq_folded(FILE *f, ctx_t *c)
{
    wait_lines_t w;
    int rc = wait_prepare(c, &w);
    if (rc == 0) {
        util_sort(w.v, w.n, sizeof(*w.v), cmp_line);
        /* Stacks that differ only in addresses render alike: one line. */
        for (size_t i = 0; i < w.n; i++) {
            uint64_t v = w.v[i].value;
            while (i + 1 < w.n && strcmp(w.v[i].stack, w.v[i + 1].stack) == 0)
                v += w.v[++i].value;
            fprintf(f, "%s %" PRIu64 "\n", w.v[i].stack, v);
        }
    }
    free(w.v);
    render_folded_free(w.folded, c->in->n_stacks);
    return rc;
}

static int write_pq_svg(FILE *f, ctx_t *c)
{
    wait_lines_t w;
    char title[512];
    int rc = wait_prepare(c, &w);
    if (rc == 0) {
        util_sort(w.v, w.n, sizeof(*w.v), cmp_line);
        snprintf(title, sizeof(title), "Time in libpq calls: %s (pid %" PRIu32 ")",
                 c->in->proc.exe ? base_name(c->in->proc.exe) : "?", c->in->proc.pid);
        rc = flamegraph_write_svg(f, &(fg_input_t){.lines = w.v, .n_lines = w.n, .title = title,
                                                   .unit = "ns"});
    }
    free(w.v);
    render_folded_free(w.folded, c->in->n_stacks);
    return rc;
}

int write_pq_reports(const char *dir, ctx_t *c)
{
    int rc;
    if ((rc = write_file(dir, "queries.json", write_queries_json, c)) < 0 ||
        (rc = write_file(dir, "queries.txt", write_queries_txt, c)) < 0 ||
        (rc = write_file(dir, "slow_queries.json", write_slow_json, c)) < 0 ||
        (rc = write_file(dir, "n_plus_one.json", write_nplus1_json, c)) < 0 ||
        (rc = write_file(dir, "pq.folded", write_pq_folded, c)) < 0 ||
        (rc = write_file(dir, "pq.svg", write_pq_svg, c)) < 0)
        return rc;
    return 0;
}

/* ---- summary.txt -------------------------------------------------------------- */

void write_pq_summary(FILE *f, ctx_t *c)
{
    const query_model_t *m = c->in->pq;
    uint64_t lim = env_num("PERFAGENT_SLOW_QUERY_MS", 1000) * 1000000ull;
    uint64_t min = env_num("PERFAGENT_NPLUS1_MIN", 5), calls = 0, errors = 0, wait = 0, slow = 0;
    uint32_t *ord = order(m);
    finding_t *v = NULL;
    size_t nf = 0;

    for (size_t i = 0; i < m->n_q; i++) {
        calls += m->q[i].calls;
        errors += m->q[i].errors;
    }
    for (size_t i = 0; i < m->n_ev; i++) {
        wait += m->ev[i].dur_ns;
        if (m->ev[i].kind == 0 && m->ev[i].query != UINT32_MAX && m->ev[i].dur_ns > lim)
            slow++;
    }
    fputs("\nlibpq\n", f);
    fprintf(f,
            "  queries:     %" PRIu64 " calls of %zu normalized queries, %" PRIu64
            " errors; %.3f ms in libpq calls\n",
            calls, m->n_q, errors, ms(wait));
    fprintf(f,
            "  connections: %" PRIu64 " opened, %" PRIu64 " closed, peak %" PRIu64 ", %" PRIu64
            " failed",
            m->opened, m->closed, m->peak, m->failed);
    if (m->resets)
        fprintf(f, "; %" PRIu64 " resets", m->resets);
    fputc('\n', f);
    fprintf(f, "  slow:        %" PRIu64 " calls over %" PRIu64 " ms (slow_queries.json)\n", slow,
            lim / 1000000);
    if (n_plus_one(m, min < 2 ? 2 : min, &v, &nf) == 0) {
        fprintf(f, "  N+1:         %zu findings (n_plus_one.json)\n", nf);
        for (size_t i = 0; i < nf; i++) {
            fprintf(f, "    %" PRIu64 " calls in %" PRIu64 " runs of ", v[i].calls, v[i].runs);
            put_text(f, m->q[v[i].query].text);
            fputc('\n', f);
        }
        free(v);
    }
    if (ord) {
        fprintf(f, "  top %d by total time:\n", TOP_SUMMARY);
        for (size_t i = 0; i < m->n_q && i < TOP_SUMMARY; i++) {
            const qm_query_t *q = &m->q[ord[i]];
            fprintf(f, "    %10.3f ms %8" PRIu64 " calls  ", ms(q->total_ns), q->calls);
            put_text(f, q->text);
            fputc('\n', f);
        }
        free(ord);
    }
}
