/*
 * round.c — see round.h.  A k-way merge over the runs of one round with a
 * binary min-heap of run heads: O(rows * log runs), and runs are few (about
 * one per thread that allocated during the round).
 */
#include "round.h"
#include "util.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct run {
    size_t start, end; /* [start, end) in rows */
    uint32_t tid;
} run_t;

struct round {
    heap_row_t *rows;
    size_t n, cap;
    run_t *runs;
    size_t nruns, cap_runs;
    size_t *heap; /* run indexes, min by the ticks of their next row */
    size_t *pos;  /* next row of each run */
};

round_t *round_new(void)
{
    return calloc(1, sizeof(round_t));
}

void round_free(round_t *r)
{
    if (!r)
        return;
    free(r->rows);
    free(r->runs);
    free(r->heap);
    free(r->pos);
    free(r);
}

int round_add(round_t *r, uint32_t tid, const heap_row_t *rows, size_t n)
{
    if (!n)
        return 0;
    if (util_grow((void **)&r->rows, &r->cap, r->n + n, sizeof(*r->rows)) < 0 ||
        util_grow((void **)&r->runs, &r->cap_runs, r->nruns + 1, sizeof(*r->runs)) < 0)
        return -ENOMEM;
    memcpy(r->rows + r->n, rows, n * sizeof(*rows));
    /* The decoder hands a HeapEvents over in pieces, and a thread's chunks
     * follow each other: a thread's rows are in ticks order, so rows that
     * continue the last run's thread extend it rather than add a run. */
    if (r->nruns && r->runs[r->nruns - 1].tid == tid && r->runs[r->nruns - 1].end == r->n)
        r->runs[r->nruns - 1].end += n;
    else
        r->runs[r->nruns++] = (run_t){.start = r->n, .end = r->n + n, .tid = tid};
    r->n += n;
    return 0;
}

size_t round_rows(const round_t *r)
{
    return r->n;
}

/* heap order: smaller ticks first, then the earlier run */
static inline int before(const round_t *r, size_t a, size_t b)
{
    uint64_t ta = r->rows[r->pos[a]].ticks, tb = r->rows[r->pos[b]].ticks;
    return ta < tb || (ta == tb && a < b);
}

static void sift_down(round_t *r, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && before(r, r->heap[l], r->heap[m]))
            m = l;
        if (l + 1 < n && before(r, r->heap[l + 1], r->heap[m]))
            m = l + 1;
        if (m == i)
            return;
        size_t t = r->heap[i];
        r->heap[i] = r->heap[m];
        r->heap[m] = t;
        i = m;
    }
}

/* How far ahead of the applied row `pre` looks, in rows of the same run:
 * far enough to cover a memory access, near enough that the line is still
 * cached when its row comes (runs interleave, so it may come later). */
#define AHEAD 8

static inline void ahead(const round_t *r, round_pre_fn pre, void *ctx, size_t i, size_t end)
{
    if (pre && i + AHEAD < end)
        pre(ctx, &r->rows[i + AHEAD]);
}

/* Few runs (the usual case: one per thread that allocated in the round):
 * scanning the heads beats a heap, which cost 14% of a report's time. */
#define LINEAR_RUNS 8

static int flush_linear(round_t *r, round_fn fn, round_pre_fn pre, void *ctx)
{
    size_t pos[LINEAR_RUNS], end[LINEAR_RUNS], k = r->nruns, left = r->n;
    int rc = 0;
    for (size_t i = 0; i < k; i++) {
        pos[i] = r->runs[i].start;
        end[i] = r->runs[i].end;
        for (size_t j = pos[i]; pre && j < end[i] && j < pos[i] + AHEAD; j++)
            pre(ctx, &r->rows[j]);
    }
    while (left && rc == 0) {
        size_t best = SIZE_MAX;
        uint64_t bt = 0;
        for (size_t i = 0; i < k; i++) /* ties: the earlier run, as the heap */
            if (pos[i] < end[i] && (best == SIZE_MAX || r->rows[pos[i]].ticks < bt)) {
                best = i;
                bt = r->rows[pos[i]].ticks;
            }
        ahead(r, pre, ctx, pos[best], end[best]);
        rc = fn(ctx, r->runs[best].tid, &r->rows[pos[best]]);
        pos[best]++;
        left--;
    }
    return rc;
}

int round_flush(round_t *r, round_fn fn, round_pre_fn pre, void *ctx)
{
    size_t nh = 0;
    int rc = 0;

    if (r->nruns == 1) { /* the common single-thread case: already ordered */
        for (size_t i = 0; pre && i < r->n && i < AHEAD; i++)
            pre(ctx, &r->rows[i]);
        for (size_t i = 0; i < r->n && rc == 0; i++) {
            ahead(r, pre, ctx, i, r->n);
            rc = fn(ctx, r->runs[0].tid, &r->rows[i]);
        }
        goto out;
    }
    if (r->nruns && r->nruns <= LINEAR_RUNS) {
        rc = flush_linear(r, fn, pre, ctx);
        goto out;
    }
    if (r->nruns) {
        size_t *h = realloc(r->heap, r->nruns * sizeof(*h));
        size_t *p = h ? realloc(r->pos, r->nruns * sizeof(*p)) : NULL;
        if (h)
            r->heap = h;
        if (!h || !p) {
            rc = -ENOMEM;
            goto out;
        }
        r->pos = p;
    }
    for (size_t i = 0; i < r->nruns; i++) {
        r->pos[i] = r->runs[i].start;
        r->heap[nh++] = i;
    }
    for (size_t i = nh / 2; i-- > 0;)
        sift_down(r, nh, i);
    while (nh && rc == 0) {
        size_t k = r->heap[0];
        ahead(r, pre, ctx, r->pos[k], r->runs[k].end);
        rc = fn(ctx, r->runs[k].tid, &r->rows[r->pos[k]]);
        if (++r->pos[k] == r->runs[k].end)
            r->heap[0] = r->heap[--nh];
        sift_down(r, nh, 0);
    }
out:
    r->n = 0;
    r->nruns = 0;
    return rc;
}
