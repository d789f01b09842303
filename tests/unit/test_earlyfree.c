/*
 * test_earlyfree.c — rows that arrive out of ticks order: the pending-free
 * store (earlyfree.c) on its own, and the session's live heap when a drain
 * round is applied in pieces (session_heap.c: a round over the row limit,
 * as a slow output makes them).  The reference for every stream is the
 * live heap of its rows applied in ticks order, computed here while the
 * stream is generated; a piecewise session must give exactly that, or count
 * the rows it could not place and say so in its summary.
 */
#include "check.h"
#include "streams.h"

#include "earlyfree.h"

/* ---- the store alone ----------------------------------------------------- */

static uint64_t g_expired_n;
static void on_expired(void *ctx, const ef_entry_t *e)
{
    (void)ctx;
    g_expired_n += (uint64_t)(int64_t)e->n;
}

TEST(test_store)
{
    earlyfree_t *ef = earlyfree_new(3000);
    CHECK(ef != NULL);
    CHECK(earlyfree_find(ef, 0x10) == NULL);
    /* 2500 addresses over three rounds: grows past its first table */
    for (uint64_t i = 1; i <= 2500; i++)
        CHECK_EQ_U64(earlyfree_add(ef, i * 16, 1000 + i, 1, (uint32_t)(i % 3)), 0);
    CHECK_EQ_U64(earlyfree_count(ef), 2500);
    ef_entry_t *e = earlyfree_find(ef, 7 * 16);
    CHECK(e != NULL && e->ticks == 1007 && e->n == 1 && e->round == 1);
    earlyfree_remove(ef, e);
    CHECK(earlyfree_find(ef, 7 * 16) == NULL);
    CHECK_EQ_U64(earlyfree_count(ef), 2499);
    /* every other entry survives a removal next to it */
    for (uint64_t i = 1; i <= 2500; i++)
        CHECK((earlyfree_find(ef, i * 16) != NULL) == (i != 7));
    /* #3 (round 0) noted again in round 5: only the rest of rounds 0 and 1
     * expire before round 2 */
    e = earlyfree_find(ef, 3 * 16);
    earlyfree_touch(ef, e, 5);
    g_expired_n = 0;
    earlyfree_expire(ef, 2, on_expired, NULL);
    CHECK_EQ_U64(g_expired_n, 834 - 1 + 833 - 1); /* i % 3 == 1 but #7, == 0 but #3 */
    CHECK_EQ_U64(earlyfree_count(ef), 833 + 1);
    for (uint64_t i = 1; i <= 2500; i++)
        CHECK((earlyfree_find(ef, i * 16) != NULL) == (i % 3 == 2 || i == 3));
    /* an expired unmatched free is remembered for one older ALLOC */
    CHECK_EQ_U64(earlyfree_expired_after(ef, 9 * 16, 1000), 1);
    CHECK_EQ_U64(earlyfree_expired_after(ef, 9 * 16, 1000), 0);
    CHECK_EQ_U64(earlyfree_expired_after(ef, 12 * 16, 1012), 0); /* not older */
    CHECK_EQ_U64(earlyfree_expired_after(ef, 12 * 16, 1000), 0); /* forgotten */
    CHECK_EQ_U64(earlyfree_expired_after(ef, 5 * 16, 1000), 0);  /* still pending */
    CHECK_EQ_U64(earlyfree_expired_after(ef, 3 * 16, 1000), 0);  /* touched */
    /* the cap */
    for (uint64_t i = 0; i < 3000 - 834; i++)
        CHECK_EQ_U64(earlyfree_add(ef, 0x100000 + i * 16, 1, 1, 6), 0);
    CHECK_EQ_U64(earlyfree_add(ef, 0x900000, 1, 1, 6), -ENOSPC);
    CHECK_EQ_U64(earlyfree_peak(ef), 3000);
    /* everything expires; the table shrinks and still works */
    earlyfree_expire(ef, 7, NULL, NULL);
    CHECK_EQ_U64(earlyfree_count(ef), 0);
    CHECK(earlyfree_find(ef, 0x100000) == NULL);
    CHECK_EQ_U64(earlyfree_add(ef, 0x100000, 9, -1, 7), 0);
    CHECK(earlyfree_find(ef, 0x100000) != NULL && earlyfree_find(ef, 0x100000)->n == -1);
    earlyfree_free(ef);
}

/* ---- streams -------------------------------------------------------------- */

enum { NTHR = 6, NADDR = 48, NSTACK = 3 };

typedef struct row {
    uint64_t addr, size, ticks;
    uint32_t stack;
    int is_free;
    uint64_t commit; /* when the agent's sender could see it (ticks or later) */
} row_t;

typedef struct thr {
    row_t *rows;
    size_t n, cap;
    uint64_t lag_until; /* a realloc's rows are committed after the call */
} thr_t;

/* A program's heap rows, per thread, and the live heap they leave when
 * applied in ticks order. */
typedef struct prog {
    thr_t t[NTHR];
    uint64_t ticks_end;
    uint64_t live_bytes[NSTACK + 1], live_objects[NSTACK + 1], live_blocks;
    uint64_t allocs, frees, unknown_frees;
} prog_t;

static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

static void emit(prog_t *p, int t, row_t r)
{
    thr_t *th = &p->t[t];
    if (th->n == th->cap) {
        th->cap = th->cap ? th->cap * 2 : 256;
        th->rows = realloc(th->rows, th->cap * sizeof(*th->rows));
        if (!th->rows)
            abort();
    }
    /* a thread's rows are committed in order, none before its ticks */
    r.commit = r.ticks > th->lag_until ? r.ticks : th->lag_until;
    th->rows[th->n++] = r;
    if (r.commit >= p->ticks_end)
        p->ticks_end = r.commit + 1;
}

/* A churn program over few addresses, so they are reused all the time:
 * threads allocate, free their own blocks, hand blocks to other threads
 * (which free them: cross-thread frees), realloc (FREE then ALLOC), and
 * free a few blocks allocated before the agent started.  A realloc's rows
 * are committed late (the agent writes its FREE, with the ticks from
 * before the call, after the call returned), so another thread's rows for
 * the address it freed can be sent first, even a round earlier. */
static void prog_make(prog_t *p, uint64_t seed, size_t steps)
{
    int owner[NADDR]; /* -1 = free */
    uint64_t size[NADDR];
    uint32_t stack[NADDR];
    uint64_t s = seed, ticks = 100;
    memset(p, 0, sizeof(*p));
    for (int a = 0; a < NADDR; a++)
        owner[a] = -1;
    for (size_t i = 0; i < steps; i++) {
        int t = (int)(rnd(&s) % NTHR), a = (int)(rnd(&s) % NADDR);
        uint64_t what = rnd(&s) % 100;
        uint64_t addr = 0x10000 + 0x40 * (uint64_t)a;
        ticks += 1 + rnd(&s) % 3;
        if (ticks < p->t[t].lag_until) /* still in its realloc */
            continue;
        if (owner[a] < 0 && what < 2) { /* a block from before the agent */
            emit(p, t, (row_t){.addr = 0x900000 + 0x40 * i, .ticks = ticks, .is_free = 1});
            p->frees++;
            p->unknown_frees++;
        } else if (owner[a] < 0) {
            owner[a] = t;
            size[a] = 1 + rnd(&s) % 500;
            stack[a] = 1 + (uint32_t)(rnd(&s) % NSTACK);
            emit(p, t, (row_t){addr, size[a], ticks, stack[a], 0, 0});
            p->allocs++;
        } else if (what < 30 && ticks >= p->t[owner[a]].lag_until) { /* handed to thread t */
            owner[a] = t;
        } else if (what < 45 && owner[a] == t) { /* realloc to another free address */
            int b = (int)(rnd(&s) % NADDR);
            if (owner[b] >= 0)
                continue;
            p->t[t].lag_until = ticks + 1 + rnd(&s) % 150;
            emit(p, t, (row_t){.addr = addr, .ticks = ticks, .is_free = 1});
            owner[a] = -1;
            owner[b] = t;
            size[b] = 1 + rnd(&s) % 500;
            stack[b] = stack[a];
            emit(p, t, (row_t){0x10000 + 0x40 * (uint64_t)b, size[b], ++ticks, stack[b], 0, 0});
            p->frees++;
            p->allocs++;
        } else if (owner[a] == t) {
            emit(p, t, (row_t){.addr = addr, .ticks = ticks, .is_free = 1});
            owner[a] = -1;
            p->frees++;
        }
    }
    if (ticks + 1 > p->ticks_end)
        p->ticks_end = ticks + 1;
    for (int a = 0; a < NADDR; a++)
        if (owner[a] >= 0) {
            p->live_bytes[stack[a]] += size[a];
            p->live_objects[stack[a]]++;
            p->live_blocks++;
        }
}

static void prog_free(prog_t *p)
{
    for (int t = 0; t < NTHR; t++)
        free(p->t[t].rows);
}

/* The stream the agent would send: rounds cut at commit-time boundaries
 * (every row committed before a round began is in it), each round's threads one after
 * another in a shuffled order, a thread's rows in HeapEvents of up to
 * `chunk` rows, round_end on the round's last batch.  Returns the rounds
 * with more than round_rows rows (those a session applies in pieces). */
static uint64_t prog_stream(const prog_t *p, buf_t *b, uint64_t seed, int nrounds, size_t chunk,
                            uint64_t round_rows)
{
    uint64_t s = seed, seq = 1, split = 0;
    size_t pos[NTHR] = {0};
    put_header(b, 1, NSTACK);
    for (int r = 0; r < nrounds; r++) {
        uint64_t end = r + 1 == nrounds ? UINT64_MAX : p->ticks_end * (uint64_t)(r + 1) / nrounds;
        int order[NTHR];
        size_t in_round = 0;
        for (int t = 0; t < NTHR; t++)
            order[t] = t;
        for (int t = NTHR - 1; t > 0; t--) {
            int k = (int)(rnd(&s) % (uint64_t)(t + 1)), x = order[t];
            order[t] = order[k];
            order[k] = x;
        }
        for (int k = 0; k < NTHR; k++) {
            const thr_t *th = &p->t[order[k]];
            while (pos[order[k]] < th->n && th->rows[pos[order[k]]].commit < end) {
                buf_t rows = {0};
                uint32_t n = 0;
                while (n < chunk && pos[order[k]] < th->n && th->rows[pos[order[k]]].commit < end) {
                    const row_t *w = &th->rows[pos[order[k]]++];
                    if (w->is_free)
                        row_free(&rows, w->addr, w->ticks);
                    else
                        row_alloc(&rows, w->addr, w->size, w->stack, w->ticks);
                    n++;
                }
                g_round_end = 0;
                put_heap(b, seq++, (uint32_t)(order[k] + 1), &rows, n);
                in_round += n;
                free(rows.p);
            }
        }
        g_round_end = 1;
        put_frame(b, seq++, NULL, 0); /* the round's last batch */
        split += in_round > round_rows;
    }
    put_stats_goodbye(b, seq, 0);
    return split;
}

static session_t *session_limited(uint64_t round_rows, uint64_t pending_max)
{
    session_t *s = session_new(&(session_opts_t){.peer = "test"});
    if (!s || session_set_reorder_limits(s, round_rows, pending_max) != 0)
        abort();
    return s;
}

static void check_exact(session_t *s, const prog_t *p)
{
    session_totals_t t;
    reorder_stats_t ro;
    uint64_t v[4];
    session_get_totals(s, &t);
    session_get_reorder(s, &ro);
    CHECK_EQ_U64(t.allocs, p->allocs);
    CHECK_EQ_U64(t.frees, p->frees);
    CHECK_EQ_U64(t.live_blocks, p->live_blocks);
    CHECK_EQ_U64(t.frees_unknown, p->unknown_frees);
    for (uint32_t k = 1; k <= NSTACK; k++) {
        stack_totals(s, k, v);
        CHECK_EQ_U64(v[2], p->live_bytes[k]);
        CHECK_EQ_U64(v[3], p->live_objects[k]);
    }
    CHECK_EQ_U64(ro.unplaceable, 0);
    CHECK_EQ_U64(ro.rows_late, 0);
}

/* Random churn, cut into rounds, each round fed whole and in pieces of
 * every size from one row up: the live heap and the unknown frees are the
 * in-order ones every time. */
TEST(test_pieces_random)
{
    static const uint64_t limits[] = {1, 2, 3, 7, 40, 333, 0};
    for (uint64_t seed = 1; seed <= 12; seed++) {
        prog_t p;
        prog_make(&p, seed * 7919, 3000);
        for (size_t li = 0; li < sizeof(limits) / sizeof(limits[0]); li++) {
            uint64_t lim = limits[li] ? limits[li] : REORDER_DEFAULT_ROUND_ROWS;
            buf_t b = {0};
            int nrounds = 1 + (int)(seed % 4) * 10;
            uint64_t split = prog_stream(&p, &b, seed, nrounds, 1 + seed % 5, lim);
            session_t *s = session_limited(limits[li], 0);
            CHECK_EQ_U64(session_feed(s, b.p, b.n), 0);
            CHECK_EQ_U64(session_end(s), 0);
            check_exact(s, &p);
            reorder_stats_t ro;
            session_get_reorder(s, &ro);
            CHECK_EQ_U64(ro.rounds_split, split);
            CHECK_EQ_U64(ro.round_rows, lim);
            if (li == 0)
                CHECK_EQ_U64(split, (uint64_t)nrounds);
            session_free(s);
            free(b.p);
        }
        prog_free(&p);
    }
}

/* X's four lifetimes' rows from four threads, the round cut after the
 * first two threads: thread 1's ALLOC and thread 4's FREE of the second
 * block are applied before thread 2's FREE of the first block and thread
 * 3's ALLOC of the second.  Without a barrier after the FREE that found a
 * live block, the ALLOC arriving last would be a false leak. */
TEST(test_pieces_barrier)
{
    enum { X = 0x7000 };
    buf_t b = {0}, r = {0};
    session_totals_t t;
    reorder_stats_t ro;
    int order[4] = {1, 4, 2, 3};

    put_header(&b, 1, 1);
    g_round_end = 0;
    for (int k = 0; k < 4; k++) {
        r.n = 0;
        switch (order[k]) {
        case 1:
            row_alloc(&r, X, 10, 1, 100);
            break;
        case 2:
            row_free(&r, X, 200);
            break;
        case 3:
            row_alloc(&r, X, 20, 1, 300);
            break;
        case 4:
            row_free(&r, X, 400);
            break;
        }
        put_heap(&b, 1 + (uint64_t)k, (uint32_t)order[k], &r, 1);
    }
    g_round_end = 1;
    put_frame(&b, 5, NULL, 0);
    put_stats_goodbye(&b, 6, 0);
    for (int lim = 1; lim <= 4; lim++) {
        session_t *s = session_limited((uint64_t)lim, 0);
        CHECK_EQ_U64(session_feed(s, b.p, b.n), 0);
        CHECK_EQ_U64(session_end(s), 0);
        session_get_totals(s, &t);
        session_get_reorder(s, &ro);
        CHECK_EQ_U64(t.live_blocks, 0);
        CHECK_EQ_U64(t.live_bytes, 0);
        CHECK_EQ_U64(t.frees_unknown, 0);
        CHECK_EQ_U64(ro.rounds_split, lim < 4);
        CHECK(!contains(session_summary(s), "WARNING"));
        session_free(s);
    }
    free(b.p);
    free(r.p);
}

/* A store too small for a round's pieces: the rows it cannot hold are
 * counted, and summary.txt and leaks.txt say the live heap may be wrong. */
TEST(test_unplaceable_warns)
{
    char dir[] = "/tmp/pa-test-earlyfree.XXXXXX";
    buf_t b = {0}, r = {0};
    reorder_stats_t ro;
    session_totals_t t;

    CHECK(mkdtemp(dir) != NULL);
    put_header(&b, 1, 1);
    g_round_end = 0;
    /* thread 1 frees three blocks thread 2 allocated; thread 2 comes later */
    row_free(&r, 0x1000, 200);
    row_free(&r, 0x2000, 210);
    row_free(&r, 0x3000, 220);
    put_heap(&b, 1, 1, &r, 3);
    r.n = 0;
    row_alloc(&r, 0x1000, 8, 1, 100);
    row_alloc(&r, 0x2000, 8, 1, 110);
    row_alloc(&r, 0x3000, 8, 1, 120);
    put_heap(&b, 2, 2, &r, 3);
    g_round_end = 1;
    put_frame(&b, 3, NULL, 0);
    put_stats_goodbye(&b, 4, 0);

    session_t *s = session_limited(2, 2); /* the third free has no room */
    CHECK_EQ_U64(session_feed(s, b.p, b.n), 0);
    CHECK_EQ_U64(session_end(s), 0);
    CHECK_EQ_U64(session_write_reports(s, dir), 0);
    session_get_totals(s, &t);
    session_get_reorder(s, &ro);
    CHECK_EQ_U64(ro.unplaceable, 1);
    CHECK_EQ_U64(ro.pending_peak, 2);
    CHECK_EQ_U64(t.live_blocks, 1); /* 0x3000: wrong, and said to be */
    const char *want = "WARNING: 1 heap rows could not be put back in time order (the "
                       "collector's pending-free store of 2 entries was full)";
    CHECK(contains(session_summary(s), want));
    char *txt = slurp(dir, "leaks.txt");
    CHECK(contains(txt, want));
    free(txt);
    session_free(s);

    /* the same stream with room: exact, no warning */
    s = session_limited(2, 3);
    CHECK_EQ_U64(session_feed(s, b.p, b.n), 0);
    CHECK_EQ_U64(session_end(s), 0);
    CHECK_EQ_U64(session_write_reports(s, dir), 0);
    session_get_totals(s, &t);
    CHECK_EQ_U64(t.live_blocks, 0);
    CHECK(!contains(session_summary(s), "WARNING"));
    txt = slurp(dir, "leaks.txt");
    CHECK(txt != NULL && !contains(txt, "WARNING"));
    free(txt);
    session_free(s);
    rm_dir(dir);
    free(b.p);
    free(r.p);
}

/* A FREE held over two round_ends is given up on; an older ALLOC of its
 * address arriving after that broke the agent's promise: counted, not
 * made live, and the summary warns. */
TEST(test_late_alloc_warns)
{
    char dir[] = "/tmp/pa-test-earlyfree.XXXXXX";
    buf_t b = {0}, r = {0};
    reorder_stats_t ro;
    session_totals_t t;

    CHECK(mkdtemp(dir) != NULL);
    put_header(&b, 1, 1);
    row_free(&r, 0x5000, 500); /* round R */
    put_heap(&b, 1, 1, &r, 1);
    r.n = 0;
    row_alloc(&r, 0x6000, 8, 1, 600); /* round R+1: in time */
    row_alloc(&r, 0x5000, 8, 1, 400);
    put_heap(&b, 2, 2, &r, 2);
    r.n = 0;
    row_free(&r, 0x7000, 700); /* round S */
    put_heap(&b, 3, 1, &r, 1);
    put_frame(&b, 4, NULL, 0); /* round S+1: nothing */
    r.n = 0;
    row_alloc(&r, 0x7000, 8, 1, 650); /* round S+2: too late */
    put_heap(&b, 5, 2, &r, 1);
    put_stats_goodbye(&b, 6, 0);
    session_t *s = feed(&b, 0, NULL, NULL);
    CHECK_EQ_U64(session_end(s), 0);
    CHECK_EQ_U64(session_write_reports(s, dir), 0);
    session_get_totals(s, &t);
    session_get_reorder(s, &ro);
    CHECK_EQ_U64(t.live_blocks, 1); /* 0x6000 */
    CHECK_EQ_U64(t.frees_early, 2);
    CHECK_EQ_U64(t.frees_unknown, 0);
    CHECK_EQ_U64(ro.rows_late, 1);
    const char *want = "WARNING: 1 allocations arrived after a newer free of their address";
    CHECK(contains(session_summary(s), want));
    char *txt = slurp(dir, "leaks.txt");
    CHECK(contains(txt, want));
    free(txt);
    session_free(s);
    rm_dir(dir);
    free(b.p);
    free(r.p);
}

int main(void)
{
    RUN(test_store);
    RUN(test_pieces_random);
    RUN(test_pieces_barrier);
    RUN(test_unplaceable_warns);
    RUN(test_late_alloc_warns);
    CHECK_DONE();
}
