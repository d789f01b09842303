/*
 * cpu_model.c — CPU sample accumulation (see cpu_model.h).
 *
 * Samples per stack live in an array indexed by stack id (ids are small and
 * dense: the agent hands them out from 1).  Threads are an array kept sorted
 * by tid with a hash index beside it, rebuilt when the array moves, so both
 * the per-record lookup and the sorted listing are cheap.
 */
#include "cpu_model.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct cpu_model {
    uint64_t *per_stack; /* samples by stack id */
    size_t n_stack;
    uint64_t total;
    cpu_thread_stat_t *thr; /* sorted by tid */
    size_t n_thr, cap_thr;
    uint32_t *idx; /* open addressing: thread index + 1, 0 = empty */
    size_t idx_cap;
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
    if (m->n_thr == m->cap_thr) {
        size_t cap = m->cap_thr ? m->cap_thr * 2 : 16;
        cpu_thread_stat_t *t = realloc(m->thr, cap * sizeof(*t));
        if (!t)
            return NULL;
        m->thr = t;
        m->cap_thr = cap;
    }
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

int cpu_model_add(cpu_model_t *m, uint32_t tid, const uint32_t *stack_ids,
                  const uint64_t *time_ns, size_t n, uint64_t period_ns)
{
    cpu_thread_stat_t *t = thread_get(m, tid);
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = stack_ids[i];
        if (id >= m->n_stack) {
            size_t cap = m->n_stack ? m->n_stack : 1024;
            while (cap <= id)
                cap *= 2;
            uint64_t *p = realloc(m->per_stack, cap * sizeof(*p));
            if (!p)
                return -ENOMEM;
            memset(p + m->n_stack, 0, (cap - m->n_stack) * sizeof(*p));
            m->per_stack = p;
            m->n_stack = cap;
        }
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

typedef struct folded_line {
    char *text;
    uint64_t count;
} folded_line_t;

static int by_text(const void *a, const void *b)
{
    return strcmp(((const folded_line_t *)a)->text, ((const folded_line_t *)b)->text);
}

int cpu_model_write_folded(const cpu_model_t *m, FILE *out, cpu_render_fn render, void *ctx)
{
    folded_line_t *v = NULL;
    size_t n = 0;
    int rc = 0;
    for (size_t id = 0; id < m->n_stack; id++)
        n += m->per_stack[id] != 0;
    if (n && !(v = calloc(n, sizeof(*v))))
        return -ENOMEM;
    n = 0;
    for (size_t id = 0; id < m->n_stack; id++) {
        if (!m->per_stack[id])
            continue;
        if ((rc = render(ctx, (uint32_t)id, &v[n].text)) < 0)
            goto out;
        v[n++].count = m->per_stack[id];
    }
    qsort(v, n, sizeof(*v), by_text);
    for (size_t i = 0; i < n;) {
        uint64_t c = 0;
        size_t j = i;
        for (; j < n && strcmp(v[j].text, v[i].text) == 0; j++)
            c += v[j].count;
        if (fprintf(out, "%s %llu\n", v[i].text, (unsigned long long)c) < 0) {
            rc = -EIO;
            goto out;
        }
        i = j;
    }
out:
    for (size_t i = 0; i < n; i++)
        free(v[i].text);
    free(v);
    return rc;
}
