/*
 * cpu_model.c — CPU sample accumulation (see cpu_model.h).
 *
 * Samples per stack live in an array indexed by stack id (ids are small and
 * dense: the agent hands them out from 1).  Threads are an array kept sorted
 * by tid with a hash index beside it, rebuilt when the array moves, so both
 * the per-record lookup and the sorted listing are cheap.  Samples per
 * (thread, stack) pair, for the per-thread folded stacks, are an array in
 * first-seen order with a hash index: a pair per distinct stack a thread
 * ran, far fewer than samples.
 */
#include "cpu_model.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef cpu_pair_t pair_t;

struct cpu_model {
    uint64_t *per_stack; /* samples by stack id */
    size_t n_stack;
    uint64_t total;
    cpu_thread_stat_t *thr; /* sorted by tid */
    size_t n_thr, cap_thr;
    uint32_t *idx; /* open addressing: thread index + 1, 0 = empty */
    size_t idx_cap;
    pair_t *pairs; /* (tid, stack id) counts, first-seen order */
    size_t n_pairs, cap_pairs;
    uint32_t *pidx; /* open addressing: pair index + 1, 0 = empty */
    size_t pidx_cap;
};

cpu_model_t *cpu_model_new(void)
{
    return calloc(1, sizeof(cpu_model_t));
}

void cpu_model_free(cpu_model_t *m)
{
    if (!m)
        return;
    free(m->per_stack);
    free(m->thr);
    free(m->idx);
    free(m->pairs);
    free(m->pidx);
    free(m);
}

static size_t hash_tid(uint32_t tid, size_t cap)
{
    return (size_t)((tid * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

static int reindex(cpu_model_t *m)
{
    size_t cap = 64;
    while (cap < m->cap_thr * 2)
        cap <<= 1;
    uint32_t *idx = calloc(cap, sizeof(*idx));
    if (!idx)
        return -ENOMEM;
    for (size_t i = 0; i < m->n_thr; i++) {
        size_t h = hash_tid(m->thr[i].tid, cap);
        while (idx[h])
            h = (h + 1) & (cap - 1);
        idx[h] = (uint32_t)i + 1;
    }
    free(m->idx);
    m->idx = idx;
    m->idx_cap = cap;
    return 0;
}

static cpu_thread_stat_t *thread_get(cpu_model_t *m, uint32_t tid)
{
    size_t lo = 0, hi = m->n_thr;
    if (m->idx) {
        for (size_t h = hash_tid(tid, m->idx_cap); m->idx[h]; h = (h + 1) & (m->idx_cap - 1))
            if (m->thr[m->idx[h] - 1].tid == tid)
                return &m->thr[m->idx[h] - 1];
    }
    if (util_grow((void **)&m->thr, &m->cap_thr, m->n_thr + 1, sizeof(*m->thr)) < 0)
        return NULL;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->thr[mid].tid < tid)
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(&m->thr[lo + 1], &m->thr[lo], (m->n_thr - lo) * sizeof(*m->thr));
    m->thr[lo] = (cpu_thread_stat_t){.tid = tid};
    m->n_thr++;
    /* Indexes after lo moved: rebuild (threads are few next to samples). */
    if (reindex(m) < 0) {
        memmove(&m->thr[lo], &m->thr[lo + 1], (m->n_thr - lo - 1) * sizeof(*m->thr));
        m->n_thr--;
        return NULL;
    }
    return &m->thr[lo];
}

static size_t hash_pair(uint32_t tid, uint32_t id, size_t cap)
{
    uint64_t k = ((uint64_t)tid << 32 | id) * 0x9e3779b97f4a7c15ull;
    return (size_t)(k >> 32) & (cap - 1);
}

/* One more sample of (tid, id).  0 or -ENOMEM (nothing counted). */
static int pair_add(cpu_model_t *m, uint32_t tid, uint32_t id)
{
    size_t h;
    if (m->pidx) {
        for (h = hash_pair(tid, id, m->pidx_cap); m->pidx[h]; h = (h + 1) & (m->pidx_cap - 1)) {
            pair_t *p = &m->pairs[m->pidx[h] - 1];
            if (p->tid == tid && p->stack_id == id) {
                p->count++;
                return 0;
            }
        }
    }
    if (util_grow((void **)&m->pairs, &m->cap_pairs, m->n_pairs + 1, sizeof(*m->pairs)) < 0)
        return -ENOMEM;
    if ((m->n_pairs + 1) * 2 > m->pidx_cap) {
        size_t cap = m->pidx_cap ? m->pidx_cap * 2 : 512;
        uint32_t *idx = calloc(cap, sizeof(*idx));
        if (!idx)
            return -ENOMEM;
        for (size_t i = 0; i < m->n_pairs; i++) {
            for (h = hash_pair(m->pairs[i].tid, m->pairs[i].stack_id, cap); idx[h];
                 h = (h + 1) & (cap - 1))
                ;
            idx[h] = (uint32_t)i + 1;
        }
        free(m->pidx);
        m->pidx = idx;
        m->pidx_cap = cap;
    }
    for (h = hash_pair(tid, id, m->pidx_cap); m->pidx[h]; h = (h + 1) & (m->pidx_cap - 1))
        ;
    m->pairs[m->n_pairs] = (pair_t){.tid = tid, .stack_id = id, .count = 1};
    m->pidx[h] = (uint32_t)++m->n_pairs;
    return 0;
}

int cpu_model_add(cpu_model_t *m, uint32_t tid, const uint32_t *stack_ids,
                  const uint64_t *time_ns, size_t n, uint64_t period_ns)
{
    cpu_thread_stat_t *t = thread_get(m, tid);
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = stack_ids[i];
        /* n_stack is the array's size: new counters start at 0 */
        if (util_grow((void **)&m->per_stack, &m->n_stack, (size_t)id + 1,
                      sizeof(*m->per_stack)) < 0)
            return -ENOMEM;
        if (pair_add(m, tid, id) < 0)
            return -ENOMEM;
        m->per_stack[id]++;
    }
    if (n && time_ns) {
        if (!t->samples || time_ns[0] < t->first_ns)
            t->first_ns = time_ns[0];
        if (time_ns[n - 1] > t->last_ns)
            t->last_ns = time_ns[n - 1];
    }
    t->samples += n;
    m->total += n;
    if (period_ns)
        t->period_ns = period_ns;
    return 0;
}

int cpu_model_thread_cpu(cpu_model_t *m, uint32_t tid, uint64_t cpu_ns)
{
    cpu_thread_stat_t *t;
    if (!cpu_ns)
        return 0;
    if (!(t = thread_get(m, tid)))
        return -ENOMEM;
    t->cpu_ns = cpu_ns;
    return 0;
}

int cpu_model_add_record(cpu_model_t *m, const Perfagent__CpuSamples *cs)
{
    int rc = cpu_model_add(m, cs->tid, cs->stack_id, cs->time_ns, cs->n_stack_id, cs->period_ns);
    return rc < 0 ? rc : cpu_model_thread_cpu(m, cs->tid, cs->thread_cpu_ns);
}

uint64_t cpu_model_samples(const cpu_model_t *m)
{
    return m->total;
}

uint64_t cpu_model_stack_samples(const cpu_model_t *m, uint32_t stack_id)
{
    return stack_id < m->n_stack ? m->per_stack[stack_id] : 0;
}

size_t cpu_model_threads(const cpu_model_t *m, const cpu_thread_stat_t **out)
{
    *out = m->thr;
    return m->n_thr;
}

double cpu_thread_delivered(const cpu_thread_stat_t *t)
{
    if (!t->cpu_ns)
        return 0;
    return (double)t->samples * (double)t->period_ns / (double)t->cpu_ns;
}

static int by_text(const void *a, const void *b)
{
    return strcmp(((const cpu_folded_line_t *)a)->text, ((const cpu_folded_line_t *)b)->text);
}

void cpu_folded_free(cpu_folded_line_t *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].text);
    free(v);
}

int cpu_model_folded(const cpu_model_t *m, int per_thread, cpu_render_thread_fn render, void *ctx,
                     cpu_folded_line_t **out, size_t *nout)
{
    cpu_folded_line_t *v = NULL;
    size_t n = 0, k = 0;
    int rc = 0;

    *out = NULL;
    *nout = 0;
    if (per_thread) {
        n = m->n_pairs;
    } else {
        for (size_t id = 0; id < m->n_stack; id++)
            n += m->per_stack[id] != 0;
    }
    if (n && !(v = calloc(n, sizeof(*v))))
        return -ENOMEM;
    if (per_thread) {
        for (; k < m->n_pairs; k++) {
            if ((rc = render(ctx, m->pairs[k].tid, m->pairs[k].stack_id, &v[k].text)) < 0)
                goto fail;
            v[k].count = m->pairs[k].count;
        }
    } else {
        for (size_t id = 0; id < m->n_stack; id++) {
            if (!m->per_stack[id])
                continue;
            if ((rc = render(ctx, 0, (uint32_t)id, &v[k].text)) < 0)
                goto fail;
            v[k++].count = m->per_stack[id];
        }
    }
    if (k) /* v may be NULL when nothing was sampled: util_sort(NULL, 0) is undefined */
        util_sort(v, k, sizeof(*v), by_text);
    /* Different ids can render alike (the same function reached through
     * different return addresses of one line): one line, counts summed. */
    n = 0;
    for (size_t i = 0; i < k;) {
        size_t j = i + 1;
        for (; j < k && strcmp(v[j].text, v[i].text) == 0; j++) {
            v[i].count += v[j].count;
            free(v[j].text);
        }
        v[n++] = v[i];
        i = j;
    }
    *out = v;
    *nout = n;
    return 0;
fail:
    cpu_folded_free(v, k);
    return rc;
}

typedef struct render_adapter {
    cpu_render_fn fn;
    void *ctx;
} render_adapter_t;

static int render_stack_only(void *ctx, uint32_t tid, uint32_t stack_id, char **out)
{
    const render_adapter_t *a = ctx;
    (void)tid;
    return a->fn(a->ctx, stack_id, out);
}

int cpu_model_write_folded(const cpu_model_t *m, FILE *out, cpu_render_fn render, void *ctx)
{
    render_adapter_t a = {.fn = render, .ctx = ctx};
    cpu_folded_line_t *v;
    size_t n;
    int rc = cpu_model_folded(m, 0, render_stack_only, &a, &v, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (fprintf(out, "%s %llu\n", v[i].text, (unsigned long long)v[i].count) < 0)
            rc = -EIO;
    cpu_folded_free(v, n);
    return rc;
}

size_t cpu_model_pairs(const cpu_model_t *m, const cpu_pair_t **out)
{
    *out = m->pairs;
    return m->n_pairs;
}
