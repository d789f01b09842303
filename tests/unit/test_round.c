/*
 * test_round.c — round.c, the buffer that puts one drain round of heap rows
 * back into ticks order.  round.h's contract: each round_add is a piece of
 * one thread's rows in ticks order; round_flush hands every row on merged by
 * ticks, ties going to the earlier run, and a run is a maximal stretch of
 * consecutive non-empty adds of one tid.  Runs follow each other in arrival
 * order, so that is exactly a stable sort of the rows, in arrival order, by
 * ticks: the reference here.  Rounds are random but seeded (the same rounds
 * every time), with 1 to 1000 runs from 1 to 64 threads, so both the linear
 * scan (up to 8 runs) and the heap (more) are compared row by row.
 */
#include "check.h"
#include "round.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* xorshift64: fixed seeds, so a failure names a case that replays. */
static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static uint64_t below(uint64_t *x, uint64_t n)
{
    return n ? rnd(x) % n : 0;
}

/* ---- what fn and pre are handed ------------------------------------------ */

/* Rows carry their arrival index in weight (unique), so the order fn sees
 * them in is comparable with the reference; size carries the tid they were
 * added under, so a row handed on under another thread's tid shows. */
typedef struct seen {
    uint64_t *ids;      /* weight of each row fn got, in order */
    uint32_t *tids;     /* tid fn got with it */
    uint8_t *state;     /* per id: 1 prefetched, 2 applied */
    size_t n, cap, nids;
    size_t fail_at;     /* fn's call number (1-based) that returns -EIO; 0 never */
    size_t pre_calls, pre_bad; /* pre on an unknown, applied or prefetched row */
} seen_t;

static void seen_reset(seen_t *s, size_t nids)
{
    if (nids > s->cap) {
        s->ids = realloc(s->ids, nids * sizeof(*s->ids));
        s->tids = realloc(s->tids, nids * sizeof(*s->tids));
        s->state = realloc(s->state, nids);
        s->cap = nids;
        if (!s->ids || !s->tids || !s->state)
            abort();
    }
    if (nids)
        memset(s->state, 0, nids);
    s->nids = nids;
    s->n = s->pre_calls = s->pre_bad = 0;
    s->fail_at = 0;
}

static void seen_free(seen_t *s)
{
    free(s->ids);
    free(s->tids);
    free(s->state);
}

static int on_row(void *ctx, uint32_t tid, const heap_row_t *row)
{
    seen_t *s = ctx;
    if (s->n < s->cap) {
        s->ids[s->n] = row->weight;
        s->tids[s->n] = tid;
    }
    if (row->weight < s->nids)
        s->state[row->weight] = 2;
    s->n++;
    return s->fail_at && s->n == s->fail_at ? -EIO : 0;
}

/* round.h: pre gets a row of the round a few places ahead of the one fn
 * gets, so never one fn already had, and there is no reason to name a row
 * twice. */
static void on_pre(void *ctx, const heap_row_t *row)
{
    seen_t *s = ctx;
    s->pre_calls++;
    if (row->weight >= s->nids || s->state[row->weight] != 0)
        s->pre_bad++;
    else
        s->state[row->weight] = 1;
}

/* ---- one random round ------------------------------------------------------ */

typedef struct add {
    uint32_t tid;
    size_t start, n; /* rows[start, start + n) of the round, arrival order */
} add_t;

typedef struct plan {
    heap_row_t *rows; /* every row, in arrival order; weight = index */
    add_t *adds;
    size_t nrows, nadds, runs;
} plan_t;

enum { TICKS_TIES, TICKS_WIDE, TICKS_EQUAL, TICKS_TOP };

/* A round of exactly `runs` runs over `threads` threads (runs >= threads
 * unless threads is 1): consecutive runs never share a tid, so a thread
 * comes back in several non-adjacent runs; a run reaches round_add in 1 to 3
 * pieces (as the decoder cuts HeapEvents), and empty adds of any tid fall in
 * between (they make no run, and do not split one).  Each thread's rows
 * have non-decreasing ticks across all its runs, as the agent writes them;
 * `ticks` picks how they compare across threads. */
static void plan_make(plan_t *p, uint64_t *x, size_t runs, uint32_t threads, size_t max_run,
                      int ticks)
{
    uint32_t *run_tid = malloc(runs * sizeof(*run_tid));
    size_t *run_len = malloc(runs * sizeof(*run_len));
    uint64_t *last = calloc(threads, sizeof(*last));
    if (!run_tid || !run_len || !last)
        abort();
    p->nrows = 0;
    for (size_t i = 0; i < runs; i++) {
        /* every thread once in the first `threads` runs, then at random */
        uint32_t t = i < threads ? (uint32_t)i : (uint32_t)below(x, threads);
        if (i && t == run_tid[i - 1])
            t = (t + 1 + (uint32_t)below(x, threads - 1)) % threads;
        run_tid[i] = t;
        /* mostly short runs, some longer than round.c's prefetch distance */
        run_len[i] = 1 + below(x, below(x, 4) ? max_run : 4 * max_run);
        p->nrows += run_len[i];
    }
    p->rows = malloc(p->nrows * sizeof(*p->rows));
    p->adds = malloc(runs * 6 * sizeof(*p->adds)); /* 3 pieces, 3 empty adds */
    if (!p->rows || !p->adds)
        abort();
    for (uint32_t t = 0; t < threads; t++)
        last[t] = ticks == TICKS_TOP ? UINT64_MAX - 4000000 + below(x, 1000)
                  : ticks == TICKS_WIDE ? below(x, UINT64_C(1) << 40)
                  : ticks == TICKS_EQUAL ? 42
                                         : below(x, 8);
    size_t r = 0;
    p->nadds = 0;
    for (size_t i = 0; i < runs; i++) {
        uint32_t t = run_tid[i];
        size_t start = r;
        for (size_t k = 0; k < run_len[i]; k++, r++) {
            if (ticks == TICKS_TIES)
                last[t] += below(x, 3); /* equal ticks within and across threads */
            else if (ticks == TICKS_WIDE)
                last[t] += below(x, UINT64_C(1) << 30);
            else if (ticks == TICKS_TOP)
                last[t] += below(x, 2) ? 0 : below(x, 5); /* stays below UINT64_MAX */
            heap_row_t *w = &p->rows[r];
            memset(w, 0, sizeof(*w));
            w->kind = (uint8_t)(1 + below(x, 3));
            w->addr = 0x10000 + 16 * below(x, 64);
            w->size = 1000 + t; /* the tid the row was added under */
            w->ticks = last[t];
            w->weight = r;
            w->stack_id = (uint32_t)below(x, 5);
        }
        /* the run in 1..3 pieces, each maybe preceded by an empty add */
        size_t left = run_len[i], at = start, pieces = 1 + below(x, 3);
        while (left) {
            if (below(x, 4) == 0)
                p->adds[p->nadds++] = (add_t){.tid = 1000 + (uint32_t)below(x, threads), .start = at};
            size_t n = left > 1 && --pieces ? 1 + below(x, left - 1) : left;
            p->adds[p->nadds++] = (add_t){.tid = 1000 + t, .start = at, .n = n};
            at += n;
            left -= n;
        }
    }
    p->runs = runs;
    free(run_tid);
    free(run_len);
    free(last);
}

static void plan_free(plan_t *p)
{
    free(p->rows);
    free(p->adds);
}

static const heap_row_t *ref_rows;

/* The reference order: by ticks, ties by arrival (a total order). */
static int by_ticks_then_arrival(const void *a, const void *b)
{
    const heap_row_t *ra = &ref_rows[*(const size_t *)a], *rb = &ref_rows[*(const size_t *)b];
    if (ra->ticks != rb->ticks)
        return ra->ticks < rb->ticks ? -1 : 1;
    return ra->weight < rb->weight ? -1 : ra->weight > rb->weight;
}

/* Adds the plan to r, flushes, and counts the differences from the
 * reference order (0 when all is well); checks the row count, tids and
 * prefetches on the way. */
static size_t run_plan(round_t *r, seen_t *s, const plan_t *p, int with_pre)
{
    size_t *ord = malloc(p->nrows * sizeof(*ord)), bad = 0;
    if (!ord)
        abort();
    for (size_t i = 0; i < p->nrows; i++)
        ord[i] = i;
    ref_rows = p->rows;
    qsort(ord, p->nrows, sizeof(*ord), by_ticks_then_arrival);

    /* round_add copies: the caller's buffer is scribbled on after each add */
    heap_row_t *tmp = malloc(p->nrows * sizeof(*tmp));
    if (!tmp)
        abort();
    for (size_t i = 0; i < p->nadds; i++) {
        const add_t *a = &p->adds[i];
        memcpy(tmp, p->rows + a->start, a->n * sizeof(*tmp));
        CHECK_EQ_U64(round_add(r, a->tid, tmp, a->n), 0);
        memset(tmp, 0xa5, a->n * sizeof(*tmp));
    }
    CHECK_EQ_U64(round_rows(r), p->nrows);

    seen_reset(s, p->nrows);
    CHECK_EQ_U64(round_flush(r, on_row, with_pre ? on_pre : NULL, s), 0);
    CHECK_EQ_U64(round_rows(r), 0);
    CHECK_EQ_U64(s->n, p->nrows);
    for (size_t i = 0; i < p->nrows && i < s->n; i++) {
        bad += s->ids[i] != ord[i];
        /* the tid the row was added under, whatever run it merged from */
        bad += s->ids[i] < p->nrows && s->tids[i] != p->rows[s->ids[i]].size;
    }
    CHECK_EQ_U64(s->pre_bad, 0);
    if (!with_pre)
        CHECK_EQ_U64(s->pre_calls, 0);
    free(tmp);
    free(ord);
    return bad;
}

/* ---- tests -------------------------------------------------------------------- */

/* The exact order of a small round the heap handles (9 runs, one more than
 * the linear scan takes), worked out by hand: ties across threads go to the
 * earlier run, a thread's second run is a run of its own. */
TEST(test_round_by_hand)
{
    /* run: tid, ticks...      (runs 0..8, arrival order) */
    static const struct {
        uint32_t tid;
        uint64_t ticks[3];
        size_t n;
    } in[9] = {
        {1, {50, 60, 90}, 3}, {2, {10, 60}, 2}, {3, {5}, 1},  {1, {95, 100}, 2}, {4, {60, 61}, 2},
        {2, {70}, 1},         {5, {1, 2, 3}, 3}, {3, {60}, 1}, {6, {0, 200}, 2},
    };
    /* rows numbered in arrival order: run 0 = 0..2, run 1 = 3..4, ... */
    static const uint64_t want[] = {15, 11, 12, 13, 5, 3, 0, 1, 4, 8, 14, 9, 10, 2, 6, 7, 16};
    round_t *r = round_new();
    seen_t s = {0};
    heap_row_t rows[3];
    uint64_t id = 0;

    CHECK(r != NULL);
    for (size_t i = 0; i < 9; i++) {
        for (size_t k = 0; k < in[i].n; k++)
            rows[k] = (heap_row_t){.addr = 16, .ticks = in[i].ticks[k], .weight = id++,
                                   .kind = ROW_ALLOC};
        CHECK_EQ_U64(round_add(r, in[i].tid, rows, in[i].n), 0);
    }
    CHECK_EQ_U64(round_rows(r), 17);
    seen_reset(&s, 17);
    CHECK_EQ_U64(round_flush(r, on_row, NULL, &s), 0);
    CHECK_EQ_U64(s.n, 17);
    for (size_t i = 0; i < 17 && i < s.n; i++)
        CHECK_EQ_U64(s.ids[i], want[i]);
    CHECK_EQ_U64(s.tids[0], 6);
    CHECK_EQ_U64(s.tids[6], 1);
    CHECK_EQ_U64(s.tids[10], 3); /* ticks 60 of tid 3's second run, after tid 4's */
    CHECK_EQ_U64(s.tids[16], 6);
    round_free(r);
    seen_free(&s);
}

/* Random rounds across the paths of round_flush: 1 run (passed through),
 * 2..8 (linear scan), 9 and up (heap), with many equal ticks, wide ticks,
 * all ticks equal (arrival order must come out) and ticks near UINT64_MAX.
 * One round_t for all of them, as a session reuses its own. */
TEST(test_round_random)
{
    static const size_t runs[] = {1, 2, 3, 5, 7, 8, 9, 10, 12, 16, 17, 31, 33, 64, 65, 100, 257, 1000};
    round_t *r = round_new();
    seen_t s = {0};
    size_t cases = 0, failed = 0, heap_cases = 0, rows = 0;

    CHECK(r != NULL);
    for (uint64_t seed = 1; seed <= 12; seed++)
        for (size_t i = 0; i < sizeof(runs) / sizeof(*runs); i++)
            for (int ticks = TICKS_TIES; ticks <= TICKS_TOP; ticks++) {
                uint64_t x = seed * 0x9e3779b97f4a7c15ull + i * 131 + (uint64_t)ticks;
                uint32_t threads = runs[i] == 1 ? 1 : 2 + (uint32_t)below(&x, 63);
                if (threads > runs[i])
                    threads = (uint32_t)runs[i];
                plan_t p;
                plan_make(&p, &x, runs[i], threads, runs[i] > 100 ? 6 : 24, ticks);
                size_t bad = run_plan(r, &s, &p, (int)(seed & 1));
                if (bad) {
                    printf("  case seed %llu runs %zu threads %u ticks %d: %zu rows out of order\n",
                           (unsigned long long)seed, runs[i], threads, ticks, bad);
                    failed++;
                }
                cases++;
                heap_cases += runs[i] > 8;
                rows += p.nrows;
                plan_free(&p);
            }
    CHECK_EQ_U64(failed, 0);
    CHECK_EQ_U64(cases, 12 * 18 * 4);
    CHECK_EQ_U64(heap_cases, 12 * 12 * 4);
    printf("  %zu rounds, %zu rows\n", cases, rows);
    round_free(r);
    seen_free(&s);
}

/* Equal ticks across runs, by hand: adjacent adds of one tid (an empty add
 * of another between them) are one run; tid 1's rows that come back after
 * tid 2's run wait behind its equal ticks; tid 3's older row goes first. */
TEST(test_round_ties_between_runs)
{
    round_t *r = round_new();
    seen_t s = {0};
    heap_row_t a[2] = {{.ticks = 7, .weight = 0}, {.ticks = 7, .weight = 1}};
    heap_row_t b[1] = {{.ticks = 7, .weight = 2}};
    heap_row_t c[2] = {{.ticks = 7, .weight = 3}, {.ticks = 8, .weight = 4}};
    heap_row_t d[1] = {{.ticks = 6, .weight = 5}};

    CHECK(r != NULL);
    CHECK_EQ_U64(round_add(r, 1, a, 1), 0);
    CHECK_EQ_U64(round_add(r, 2, b, 0), 0); /* empty: no run */
    CHECK_EQ_U64(round_add(r, 1, a + 1, 1), 0);
    CHECK_EQ_U64(round_add(r, 2, b, 1), 0);
    CHECK_EQ_U64(round_add(r, 1, c, 2), 0); /* tid 1 again: a new run */
    CHECK_EQ_U64(round_add(r, 3, d, 1), 0);
    seen_reset(&s, 6);
    CHECK_EQ_U64(round_flush(r, on_row, on_pre, &s), 0);
    static const uint64_t want[] = {5, 0, 1, 2, 3, 4};
    CHECK_EQ_U64(s.n, 6);
    for (size_t i = 0; i < 6 && i < s.n; i++)
        CHECK_EQ_U64(s.ids[i], want[i]);
    CHECK_EQ_U64(s.tids[0], 3);
    CHECK_EQ_U64(s.tids[3], 2);
    CHECK_EQ_U64(s.tids[4], 1);
    /* nothing buffered: a flush of an empty round calls nobody */
    seen_reset(&s, 6);
    CHECK_EQ_U64(round_flush(r, on_row, on_pre, &s), 0);
    CHECK_EQ_U64(s.n, 0);
    CHECK_EQ_U64(s.pre_calls, 0);
    round_free(r);
    round_free(NULL);
    seen_free(&s);
}

/* round.h: round_flush stops at fn's first error and still empties the
 * buffer; the next round starts clean.  In each of the three paths. */
TEST(test_round_fn_error)
{
    static const size_t runs[] = {1, 4, 40};
    round_t *r = round_new();
    seen_t s = {0};

    CHECK(r != NULL);
    for (size_t i = 0; i < 3; i++) {
        uint64_t x = 0x1234567 + i;
        plan_t p;
        plan_make(&p, &x, runs[i], runs[i] == 1 ? 1 : 3, 10, TICKS_TIES);
        for (size_t k = 0; k < p.nadds; k++)
            CHECK_EQ_U64(round_add(r, p.adds[k].tid, p.rows + p.adds[k].start, p.adds[k].n), 0);
        seen_reset(&s, p.nrows);
        s.fail_at = p.nrows / 2 + 1;
        CHECK_EQ_U64(round_flush(r, on_row, on_pre, &s), -EIO);
        CHECK_EQ_U64(s.n, p.nrows / 2 + 1);
        CHECK_EQ_U64(round_rows(r), 0);
        /* the same round again, in full: nothing left over from the first */
        CHECK_EQ_U64(run_plan(r, &s, &p, 1), 0);
        plan_free(&p);
    }
    round_free(r);
    seen_free(&s);
}

int main(void)
{
    RUN(test_round_by_hand);
    RUN(test_round_random);
    RUN(test_round_ties_between_runs);
    RUN(test_round_fn_error);
    CHECK_DONE();
}
