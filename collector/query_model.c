/*
 * query_model.c — libpq QueryEvents, grouped by normalized text (see
 * query_model.h).  Inputs passed decode.c's checks (strings within
 * DECODE_MAX_STRING); stack ids are taken as given and checked by the
 * reports against the stacks the stream defined.
 */
#include "query_model.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GROW(v, n, cap)                                                                        \
    ((n) < (cap) ? 0                                                                           \
                 : grow((void **)&(v), &(cap), sizeof(*(v))))

static int grow(void **v, size_t *cap, size_t size)
{
    size_t nc = *cap ? *cap * 2 : 16;
    void *p = realloc(*v, nc * size);
    if (!p)
        return -ENOMEM;
    *v = p;
    *cap = nc;
    return 0;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

query_model_t *query_model_new(void)
{
    return calloc(1, sizeof(query_model_t));
}

void query_model_free(query_model_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_q; i++) {
        free(m->q[i].text);
        free(m->q[i].op);
        free(m->q[i].example);
        free(m->q[i].durs);
        free(m->q[i].errs);
        free(m->q[i].stacks);
    }
    for (size_t i = 0; i < m->n_ev; i++)
        free(m->ev[i].raw);
    for (size_t i = 0; i < m->n_fails; i++)
        free(m->fails[i].message);
    for (size_t i = 0; i < m->n_ci; i++) {
        free(m->ci[i].database);
        free(m->ci[i].peer);
        free(m->ci[i].user);
    }
    free(m->ci);
    free(m->q);
    free(m->index);
    free(m->ev);
    free(m->connect_ns);
    free(m->fails);
    free(m);
}

static int rehash(query_model_t *m)
{
    size_t cap = m->cap_index ? m->cap_index * 2 : 64;
    uint32_t *ix = calloc(cap, sizeof(*ix));
    if (!ix)
        return -ENOMEM;
    for (size_t i = 0; i < m->n_q; i++) {
        size_t k = m->q[i].hash & (cap - 1);
        while (ix[k])
            k = (k + 1) & (cap - 1);
        ix[k] = (uint32_t)i + 1;
    }
    free(m->index);
    m->index = ix;
    m->cap_index = cap;
    return 0;
}

/* The query of text (with op), created on first sight; -ENOMEM. */
static int query_of(query_model_t *m, const char *text, const char *op, uint32_t *out)
{
    uint64_t h = hash_str(text);
    size_t k;
    if ((m->n_q + 1) * 2 > m->cap_index && rehash(m) < 0)
        return -ENOMEM;
    for (k = h & (m->cap_index - 1); m->index[k]; k = (k + 1) & (m->cap_index - 1)) {
        qm_query_t *q = &m->q[m->index[k] - 1];
        if (q->hash == h && strcmp(q->text, text) == 0) {
            *out = m->index[k] - 1;
            return 0;
        }
    }
    if (GROW(m->q, m->n_q, m->cap_q) < 0)
        return -ENOMEM;
    qm_query_t *q = &m->q[m->n_q];
    memset(q, 0, sizeof(*q));
    q->hash = h;
    q->min_ns = UINT64_MAX;
    if (!(q->text = strdup(text)) || !(q->op = strdup(op))) {
        free(q->text);
        return -ENOMEM;
    }
    m->index[k] = (uint32_t)m->n_q + 1;
    *out = (uint32_t)m->n_q++;
    return 0;
}

static int count_stack(qm_query_t *q, uint32_t sid, uint64_t ns)
{
    for (size_t i = 0; i < q->n_stacks; i++)
        if (q->stacks[i].stack_id == sid) {
            q->stacks[i].calls++;
            q->stacks[i].ns += ns;
            return 0;
        }
    qm_count_t *v = realloc(q->stacks, (q->n_stacks + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    q->stacks = v;
    v[q->n_stacks++] = (qm_count_t){.stack_id = sid, .calls = 1, .ns = ns};
    return 0;
}

static int count_error(qm_query_t *q, const char *sqlstate)
{
    const char *code = sqlstate[0] ? sqlstate : "?";
    for (size_t i = 0; i < q->n_errs; i++)
        if (strcmp(q->errs[i].sqlstate, code) == 0) {
            q->errs[i].n++;
            return 0;
        }
    qm_err_t *v = realloc(q->errs, (q->n_errs + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    q->errs = v;
    memset(&v[q->n_errs], 0, sizeof(*v));
    strncpy(v[q->n_errs].sqlstate, code, sizeof(v->sqlstate) - 1);
    v[q->n_errs++].n = 1;
    return 0;
}

static int connect_event(query_model_t *m, const Perfagent__QueryEvent *e)
{
    if (e->kind == 2) {
        m->closed++;
        if (m->open_now)
            m->open_now--;
        return 0;
    }
    if (e->error[0]) {
        m->failed++;
        for (size_t i = 0; i < m->n_fails; i++)
            if (strcmp(m->fails[i].message, e->error) == 0) {
                m->fails[i].n++;
                return 0;
            }
        qm_conn_fail_t *v = realloc(m->fails, (m->n_fails + 1) * sizeof(*v));
        if (!v)
            return -ENOMEM;
        m->fails = v;
        if (!(v[m->n_fails].message = strdup(e->error)))
            return -ENOMEM;
        v[m->n_fails++].n = 1;
        return 0;
    }
    if (e->kind == 5) {
        m->resets++; /* the same connection again: not another one open */
    } else {
        m->opened++;
        if (++m->open_now > m->peak)
            m->peak = m->open_now;
    }
    if (GROW(m->connect_ns, m->n_connect, m->cap_connect) < 0)
        return -ENOMEM;
    m->connect_ns[m->n_connect++] = e->duration_ns;
    return 0;
}

const qm_conninfo_t *query_model_conn(const query_model_t *m, uint64_t conn_id)
{
    for (size_t i = m ? m->n_ci : 0; i-- > 0;)
        if (m->ci[i].conn_id == conn_id)
            return &m->ci[i];
    return NULL;
}

static int add_conninfo(query_model_t *m, const Perfagent__QueryEvent *e)
{
    qm_conninfo_t c = {.conn_id = e->conn_id};
    if (!(c.database = strdup(e->database)) || !(c.peer = strdup(e->peer)) ||
        !(c.user = strdup(e->user)) || GROW(m->ci, m->n_ci, m->cap_ci) < 0) {
        free(c.database);
        free(c.peer);
        free(c.user);
        return -ENOMEM;
    }
    m->ci[m->n_ci++] = c;
    return 0;
}

int query_model_add(query_model_t *m, const Perfagent__QueryEvent *e)
{
    qm_event_t ev = {
        .query = UINT32_MAX,
        .kind = e->kind,
        .stack_id = e->stack_id,
        .tid = e->tid,
        .conn_id = e->conn_id,
        .start_ns = e->start_mono_ns,
        .dur_ns = e->duration_ns,
        .rows = e->rows,
        .params_hash = e->params_hash,
        .failed = e->error[0] != 0,
        .pipelined = e->pipelined,
    };
    int rc;

    if (e->sqlstate[0]) {
        strncpy(ev.sqlstate, e->sqlstate, sizeof(ev.sqlstate) - 1);
        ev.sqlstate[sizeof(ev.sqlstate) - 1] = 0;
    }
    if ((e->kind == 1 || e->kind == 5) && !query_model_conn(m, e->conn_id) &&
        (rc = add_conninfo(m, e)) < 0)
        return rc;
    if (e->kind == 1 || e->kind == 2 || e->kind == 5) {
        if ((rc = connect_event(m, e)) < 0)
            return rc;
    } else {
        uint32_t qi;
        qm_query_t *q;
        if ((rc = query_of(m, e->text, e->operation, &qi)) < 0)
            return rc;
        q = &m->q[qi];
        ev.query = qi;
        if (e->kind == 3) {
            q->prepares++;
            q->prepare_ns += e->duration_ns;
        } else if (e->kind == 4) {
            q->describes++;
            q->describe_errors += e->error[0] != 0;
        } else if (e->kind == 6) {
            q->aborted++;
        } else {
            q->calls++;
            q->rows += e->rows;
            q->total_ns += e->duration_ns;
            if (e->duration_ns < q->min_ns)
                q->min_ns = e->duration_ns;
            if (e->duration_ns > q->max_ns)
                q->max_ns = e->duration_ns;
            if (GROW(q->durs, q->n_durs, q->cap_durs) < 0)
                return -ENOMEM;
            q->durs[q->n_durs++] = e->duration_ns;
            if (e->error[0]) {
                q->errors++;
                if ((rc = count_error(q, e->sqlstate)) < 0)
                    return rc;
            }
            if ((rc = count_stack(q, e->stack_id, e->duration_ns)) < 0)
                return rc;
            if (e->text_raw[0] && !q->example && !(q->example = strdup(e->text_raw)))
                return -ENOMEM;
        }
        if (e->text_raw[0] && !(ev.raw = strdup(e->text_raw)))
            return -ENOMEM;
    }
    if (GROW(m->ev, m->n_ev, m->cap_ev) < 0) {
        free(ev.raw);
        return -ENOMEM;
    }
    m->ev[m->n_ev++] = ev;
    return 0;
}

void query_model_wait(const query_model_t *m, uint64_t *ns, size_t n)
{
    for (size_t i = 0; i < m->n_ev; i++)
        if (m->ev[i].stack_id < n)
            ns[m->ev[i].stack_id] += m->ev[i].dur_ns;
}
