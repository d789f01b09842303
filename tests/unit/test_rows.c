/*
 * test_rows.c — protocol 2 heap rows straight through the decoder: delta
 * addr/ticks against each thread's previous row, sync rows, rows before a
 * sync (skipped and counted), the per-thread state table's bound and reset
 * rules, malformed rows, and the protocol version check.
 */
#include "check.h"
#include "streams.h"

/* ---- delta-encoded rows (protocol 2), straight through the decoder -------- */

/* A sink that keeps every row it is handed, with its tid. */
typedef struct rowcap {
    heap_row_t *rows;
    uint32_t *tids;
    size_t n, cap;
} rowcap_t;

static int cap_heap(void *ctx, uint32_t tid, const heap_row_t *rows, size_t n)
{
    rowcap_t *c = ctx;
    for (size_t i = 0; i < n; i++) {
        if (c->n == c->cap) {
            c->cap = c->cap ? 2 * c->cap : 256;
            c->rows = realloc(c->rows, c->cap * sizeof(*c->rows));
            c->tids = realloc(c->tids, c->cap * sizeof(*c->tids));
            if (!c->rows || !c->tids)
                abort();
        }
        c->rows[c->n] = rows[i];
        c->tids[c->n++] = tid;
    }
    return 0;
}

static decoder_t *cap_decoder(rowcap_t *c, uint64_t max_threads)
{
    decode_sink_t sink = {.ctx = c, .heap = cap_heap};
    decode_limits_t lim = {.max_threads = max_threads};
    memset(c, 0, sizeof(*c));
    decoder_t *d = decode_new(&lim, &sink);
    if (!d)
        abort();
    return d;
}

static void cap_free(decoder_t *d, rowcap_t *c)
{
    decode_free(d);
    free(c->rows);
    free(c->tids);
}

/* Decode one Batch of the given records (the frame body, no length). */
static int dec_batch(decoder_t *d, uint64_t seq, Perfagent__Record **recs, size_t n)
{
    buf_t body = {0};
    pack_batch(&body, seq, 0, recs, n);
    int rc = decode_frame(d, body.p, body.n, 0);
    free(body.p);
    return rc;
}

/* Hello (protocol `version`) and StackDef 1, as batch 0. */
static int dec_start(decoder_t *d, uint32_t version)
{
    Perfagent__Hello h = PERFAGENT__HELLO__INIT;
    h.protocol_version = version;
    uint64_t fr[1] = {0x401000};
    Perfagent__StackDef sd = PERFAGENT__STACK_DEF__INIT;
    sd.id = 1;
    sd.n_frames = 1;
    sd.frames = fr;
    Perfagent__Record r[2] = {PERFAGENT__RECORD__INIT, PERFAGENT__RECORD__INIT};
    Perfagent__Record *rp[2] = {&r[0], &r[1]};
    r[0].body_case = PERFAGENT__RECORD__BODY_HELLO;
    r[0].hello = &h;
    r[1].body_case = PERFAGENT__RECORD__BODY_STACK;
    r[1].stack = &sd;
    return dec_batch(d, 0, rp, 2);
}

/* One Batch of HeapEvents: rows[i] for tids[i]. */
static int dec_heap(decoder_t *d, uint64_t seq, const uint32_t *tids, const buf_t *rows, size_t n)
{
    Perfagent__HeapEvents he[8];
    Perfagent__Record r[8], *rp[8];
    for (size_t i = 0; i < n && i < 8; i++) {
        he[i] = (Perfagent__HeapEvents)PERFAGENT__HEAP_EVENTS__INIT;
        he[i].tid = tids[i];
        he[i].rows.data = rows[i].p;
        he[i].rows.len = rows[i].n;
        r[i] = (Perfagent__Record)PERFAGENT__RECORD__INIT;
        r[i].body_case = PERFAGENT__RECORD__BODY_HEAP;
        r[i].heap = &he[i];
        rp[i] = &r[i];
    }
    return dec_batch(d, seq, rp, n < 8 ? n : 8);
}

static int dec_thread_exit(decoder_t *d, uint64_t seq, uint32_t tid)
{
    Perfagent__ThreadInfo ti = PERFAGENT__THREAD_INFO__INIT;
    ti.tid = tid;
    ti.exited = 1;
    Perfagent__Record r = PERFAGENT__RECORD__INIT, *rp = &r;
    r.body_case = PERFAGENT__RECORD__BODY_THREAD;
    r.thread = &ti;
    return dec_batch(d, seq, &rp, 1);
}

static int same_row(const heap_row_t *r, unsigned kind, uint64_t addr, uint64_t size,
                    uint32_t stack, uint64_t ticks, uint64_t weight)
{
    return r->kind == kind && r->addr == addr && r->size == size && r->stack_id == stack &&
           r->ticks == ticks && r->weight == weight;
}

/* Three threads' rows, delta-encoded with a sync row every 5, cut into
 * HeapEvents of varying length and interleaved over several Batches: every
 * row comes out absolute, in order, each thread against its own state. */
TEST(test_delta_rows)
{
    enum { T = 3, N = 600 };
    static struct {
        unsigned kind;
        uint64_t addr, size, ticks, weight;
        uint32_t stack;
    } want[T][N];
    renc_t enc[T] = {{.every = 5}, {.every = 5}, {.every = 5}};
    uint32_t tids[T] = {100, 101, 7};
    rowcap_t c;
    decoder_t *d = cap_decoder(&c, 0);
    uint64_t x = 0x9e3779b97f4a7c15ull;

    CHECK_EQ_U64(dec_start(d, 2), 0);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < N; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            unsigned kind = (unsigned)(x % 3) + 1;
            /* near and far jumps, both ways; ticks mostly forward */
            uint64_t base = i ? want[t][i - 1].addr : 0x7f0000000000ull;
            uint64_t step = (x >> 8) % 4 == 0 ? (x >> 12) : ((x >> 12) % 4096) * 16;
            uint64_t addr = (x >> 40) & 1 ? base + step : base - step;
            if (!addr)
                addr = 16;
            uint64_t ticks = (i ? want[t][i - 1].ticks : 1000000) + (x >> 50) - 2000;
            want[t][i].kind = kind;
            want[t][i].addr = addr;
            want[t][i].size = kind == 2 ? 0 : (x >> 20) % 5000;
            want[t][i].stack = kind == 2 ? 0 : (uint32_t)((x >> 30) & 1);
            want[t][i].ticks = ticks;
            want[t][i].weight = kind == 3 ? (x >> 24) % 100000 : kind == 1 ? want[t][i].size : 0;
        }
    int pos[T] = {0}, seq = 1, left = T * N;
    while (left) {
        buf_t rows[T] = {{0}};
        uint32_t ft[T];
        size_t nf = 0;
        for (int t = 0; t < T; t++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int take = (int)(x % 40);
            if (take > N - pos[t])
                take = N - pos[t];
            if (!take)
                continue;
            for (int k = 0; k < take; k++, pos[t]++, left--) {
                __typeof__(want[0][0]) *w = &want[t][pos[t]];
                enc_row(&rows[nf], &enc[t], w->kind, w->addr, w->size, w->stack, w->ticks,
                        w->weight);
            }
            ft[nf++] = tids[t];
        }
        CHECK_EQ_U64(dec_heap(d, (uint64_t)seq++, ft, rows, nf), 0);
        for (size_t i = 0; i < nf; i++)
            free(rows[i].p);
    }
    CHECK(decode_error(d) == NULL);
    CHECK_EQ_U64(c.n, T * N);
    CHECK_EQ_U64(decode_counts(d)->rows_unsynced, 0);
    int got[T] = {0}, bad = 0;
    for (size_t i = 0; i < c.n; i++) {
        int t = c.tids[i] == 100 ? 0 : c.tids[i] == 101 ? 1 : 2;
        __typeof__(want[0][0]) *w = &want[t][got[t]++];
        bad += !same_row(&c.rows[i], w->kind, w->addr, w->size, w->stack, w->ticks, w->weight);
    }
    CHECK_EQ_U64(bad, 0);
    cap_free(d, &c);
}

/* Differences at the edges of 64 bits: wrap-around both ways, 2^63 (the
 * one zigzag value that needs all ten varint bytes), ticks going back. */
TEST(test_delta_zigzag_extremes)
{
    static const uint64_t addrs[] = {1,
                                     UINT64_MAX,
                                     1,
                                     UINT64_C(0x8000000000000001),
                                     1,
                                     UINT64_C(0x8000000000000000),
                                     UINT64_MAX,
                                     2,
                                     UINT64_C(0x7fffffffffffffff),
                                     UINT64_C(0x8000000000000000)};
    static const uint64_t ticks[] = {
        0,          UINT64_MAX, 0, UINT64_C(1) << 63, 0, UINT64_MAX, (UINT64_C(1) << 63) - 1,
        UINT64_MAX, 5,          4};
    enum { N = sizeof(addrs) / sizeof(addrs[0]) };
    renc_t e = {.every = 1000};
    buf_t r = {0};
    uint32_t tid = 1;
    rowcap_t c;
    decoder_t *d = cap_decoder(&c, 0);

    CHECK_EQ_U64(zz(UINT64_C(1) << 63), UINT64_MAX);
    CHECK_EQ_U64(zz(UINT64_MAX), 1); /* -1 */
    CHECK_EQ_U64(zz(1), 2);
    for (size_t i = 0; i < N; i++)
        enc_row(&r, &e, i % 2 ? 2 : 1, addrs[i], i % 2 ? 0 : 8, 0, ticks[i], 0);
    CHECK_EQ_U64(dec_start(d, 2), 0);
    CHECK_EQ_U64(dec_heap(d, 1, &tid, &r, 1), 0);
    CHECK_EQ_U64(c.n, N);
    for (size_t i = 0; i < c.n && i < N; i++) {
        CHECK_EQ_U64(c.rows[i].addr, addrs[i]);
        CHECK_EQ_U64(c.rows[i].ticks, ticks[i]);
        CHECK_EQ_U64(c.rows[i].kind, i % 2 ? 2 : 1);
    }
    cap_free(d, &c);
    free(r.p);
}

/* Delta rows with no state for their tid are checked, skipped and counted,
 * until the tid's first sync row; other tids are not affected. */
TEST(test_delta_before_sync)
{
    buf_t r[2] = {{0}, {0}};
    uint32_t tids[2] = {5, 6};
    rowcap_t c;
    decoder_t *d = cap_decoder(&c, 0);

    CHECK_EQ_U64(dec_start(d, 2), 0);
    /* tid 5 joins mid-ring: three deltas, then a sync row, then deltas */
    put_row(&r[0], 1, zz(16), 10, 1, zz(3), 0);
    put_row(&r[0], 2, zz((uint64_t)-16), 0, 0, zz(1), 0);
    put_row(&r[0], 3, zz(32), 10, 0, zz(1), 4096);
    put_row(&r[0], 1 | SYNC, 0x5000, 24, 1, 900, 0);
    put_row(&r[0], 2, zz(0), 0, 0, zz(5), 0);
    row_alloc(&r[1], 0x6000, 8, 0, 50); /* tid 6 synced */
    put_row(&r[1], 2, zz(0), 0, 0, zz((uint64_t)-1), 0);
    CHECK_EQ_U64(dec_heap(d, 1, tids, r, 2), 0);
    CHECK_EQ_U64(decode_counts(d)->rows_unsynced, 3);
    CHECK_EQ_U64(decode_counts(d)->rows, 4);
    CHECK_EQ_U64(c.n, 4);
    CHECK(same_row(&c.rows[0], 1, 0x5000, 24, 1, 900, 24));
    CHECK(same_row(&c.rows[1], 2, 0x5000, 0, 0, 905, 0));
    CHECK(same_row(&c.rows[2], 1, 0x6000, 8, 0, 50, 8));
    CHECK(same_row(&c.rows[3], 2, 0x6000, 0, 0, 49, 0));

    /* A skipped row still breaks the stream when it breaks a rule. */
    r[0].n = 0;
    tids[0] = 77;
    put_row(&r[0], 1, zz(16), 10, 9, zz(3), 0);
    CHECK_EQ_U64(dec_heap(d, 2, tids, r, 1), -EPROTO);
    CHECK(contains(decode_error(d), "heap row 0"));
    CHECK(contains(decode_error(d), "stack id not defined (9)"));
    cap_free(d, &c);

    /* Through a session: counted in the totals and in summary.txt. */
    buf_t b = {0};
    char dir[] = "/tmp/pa-decode-XXXXXX";
    session_totals_t t;
    int rc;
    put_header(&b, 1, 1);
    r[0].n = 0;
    put_row(&r[0], 1, zz(16), 10, 1, zz(3), 0);
    put_row(&r[0], 1, zz(16), 10, 1, zz(3), 0);
    row_alloc(&r[0], 0x1000, 10, 1, 1);
    put_heap(&b, 1, 9, &r[0], 3);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    session_get_totals(s, &t);
    CHECK_EQ_U64(t.rows, 1);
    CHECK_EQ_U64(t.rows_unsynced, 2);
    CHECK_EQ_U64(t.count_mismatch, 0); /* skipped rows are rows too */
    CHECK_EQ_U64(t.live_bytes, 10);
    CHECK(mkdtemp(dir) != NULL);
    CHECK_EQ_U64(session_write_reports(s, dir), 0);
    CHECK(contains(session_summary(s), "2 heap rows skipped before their thread's first sync row"));
    CHECK(contains(session_summary(s), "numbers are incomplete"));
    rm_dir(dir);
    session_free(s);
    free(b.p);
    free(r[0].p);
    free(r[1].p);
}

/* What makes the decoder forget a tid's state: a gap in Batch.seq (all
 * tids), a ThreadInfo with exited set (that tid). */
TEST(test_delta_forget)
{
    buf_t r = {0};
    uint32_t tid = 3, tid2 = 4;
    rowcap_t c;
    decoder_t *d = cap_decoder(&c, 0);

    CHECK_EQ_U64(dec_start(d, 2), 0);
    row_alloc(&r, 0x1000, 1, 0, 10);
    CHECK_EQ_U64(dec_heap(d, 1, &tid, &r, 1), 0);
    r.n = 0;
    row_alloc(&r, 0x9000, 1, 0, 10);
    CHECK_EQ_U64(dec_heap(d, 2, &tid2, &r, 1), 0);
    /* the state carries into the next Batch */
    r.n = 0;
    put_row(&r, 2, zz(0), 0, 0, zz(1), 0);
    CHECK_EQ_U64(dec_heap(d, 3, &tid, &r, 1), 0);
    CHECK_EQ_U64(c.n, 3);
    CHECK(same_row(&c.rows[2], 2, 0x1000, 0, 0, 11, 0));
    /* seq 4 lost: both tids' deltas are skipped */
    CHECK_EQ_U64(dec_heap(d, 5, &tid, &r, 1), 0);
    CHECK_EQ_U64(dec_heap(d, 6, &tid2, &r, 1), 0);
    CHECK_EQ_U64(decode_counts(d)->frames_lost, 1);
    CHECK_EQ_U64(decode_counts(d)->rows_unsynced, 2);
    CHECK_EQ_U64(c.n, 3);
    /* a sync row puts a tid back */
    r.n = 0;
    row_free(&r, 0x2000, 20);
    put_row(&r, 2, zz(16), 0, 0, zz(1), 0);
    CHECK_EQ_U64(dec_heap(d, 7, &tid, &r, 1), 0);
    CHECK_EQ_U64(c.n, 5);
    CHECK(same_row(&c.rows[4], 2, 0x2010, 0, 0, 21, 0));
    /* exited: tid 3 forgotten, a thread that reuses the tid starts over */
    CHECK_EQ_U64(dec_thread_exit(d, 8, tid), 0);
    r.n = 0;
    put_row(&r, 2, zz(16), 0, 0, zz(1), 0);
    CHECK_EQ_U64(dec_heap(d, 9, &tid, &r, 1), 0);
    CHECK_EQ_U64(decode_counts(d)->rows_unsynced, 3);
    CHECK_EQ_U64(c.n, 5);
    CHECK(decode_error(d) == NULL);
    cap_free(d, &c);
    free(r.p);
}

/* The state table is bounded: past max_threads tids the decoder forgets
 * them all (counted rows are skipped), it never grows or fails. */
TEST(test_delta_table_bound)
{
    buf_t r = {0};
    rowcap_t c;
    decoder_t *d = cap_decoder(&c, 4);
    uint64_t seq = 1;

    CHECK_EQ_U64(dec_start(d, 2), 0);
    for (uint32_t tid = 1; tid <= 4; tid++) {
        r.n = 0;
        row_alloc(&r, 0x1000 * tid, 1, 0, 10);
        CHECK_EQ_U64(dec_heap(d, seq++, &tid, &r, 1), 0);
    }
    /* all four known */
    for (uint32_t tid = 1; tid <= 4; tid++) {
        r.n = 0;
        put_row(&r, 2, zz(0), 0, 0, zz(1), 0);
        CHECK_EQ_U64(dec_heap(d, seq++, &tid, &r, 1), 0);
    }
    CHECK_EQ_U64(c.n, 8);
    CHECK_EQ_U64(decode_counts(d)->rows_unsynced, 0);
    /* a fifth: over the bound, the others are forgotten */
    uint32_t five = 5;
    r.n = 0;
    row_alloc(&r, 0x5000, 1, 0, 10);
    CHECK_EQ_U64(dec_heap(d, seq++, &five, &r, 1), 0);
    for (uint32_t tid = 1; tid <= 5; tid++) {
        r.n = 0;
        put_row(&r, 2, zz(0), 0, 0, zz(1), 0);
        CHECK_EQ_U64(dec_heap(d, seq++, &tid, &r, 1), 0);
    }
    CHECK_EQ_U64(decode_counts(d)->rows_unsynced, 4);
    CHECK_EQ_U64(c.n, 10);
    CHECK(same_row(&c.rows[9], 2, 0x5000, 0, 0, 11, 0));
    /* exits make room again: many threads in turn, never more than 2 alive */
    for (uint32_t tid = 1000; tid < 3000; tid++) {
        r.n = 0;
        row_alloc(&r, 0x1000, 1, 0, 10);
        put_row(&r, 2, zz(0), 0, 0, zz(1), 0);
        CHECK_EQ_U64(dec_heap(d, seq++, &tid, &r, 1), 0);
        if (tid > 1000)
            CHECK_EQ_U64(dec_thread_exit(d, seq++, tid - 1), 0);
    }
    CHECK_EQ_U64(decode_counts(d)->rows_unsynced, 4);
    CHECK_EQ_U64(c.n, 10 + 4000);
    CHECK(decode_error(d) == NULL);
    cap_free(d, &c);

    /* Many tids at once, then every third exits: the others keep their
     * state (the table's deletions keep every probe run intact). */
    enum { M = 3000 };
    d = cap_decoder(&c, 0);
    seq = 1;
    CHECK_EQ_U64(dec_start(d, 2), 0);
    for (uint32_t tid = 1; tid <= M; tid++) {
        r.n = 0;
        row_alloc(&r, 0x10000 + tid, 1, 0, tid);
        CHECK_EQ_U64(dec_heap(d, seq++, &tid, &r, 1), 0);
    }
    for (uint32_t tid = 3; tid <= M; tid += 3)
        CHECK_EQ_U64(dec_thread_exit(d, seq++, tid), 0);
    size_t before = c.n;
    int wrong = 0;
    for (uint32_t tid = 1; tid <= M; tid++) {
        r.n = 0;
        put_row(&r, 2, zz(0), 0, 0, zz(1), 0);
        uint64_t skipped = decode_counts(d)->rows_unsynced;
        CHECK_EQ_U64(dec_heap(d, seq++, &tid, &r, 1), 0);
        if (tid % 3 == 0)
            wrong += decode_counts(d)->rows_unsynced != skipped + 1;
        else
            wrong +=
                c.n != before + 1 || !same_row(&c.rows[before], 2, 0x10000 + tid, 0, 0, tid + 1, 0);
        before = c.n;
    }
    CHECK_EQ_U64(wrong, 0);
    CHECK_EQ_U64(decode_counts(d)->rows_unsynced, M / 3);
    cap_free(d, &c);
    free(r.p);
}

/* Deltas that break the rules stop the stream like any bad row. */
TEST(test_delta_malformed)
{
    buf_t r = {0};
    uint32_t tid = 1;
    rowcap_t c;
    decoder_t *d;

    /* a delta that lands on address 0 */
    d = cap_decoder(&c, 0);
    CHECK_EQ_U64(dec_start(d, 2), 0);
    row_alloc(&r, 0x1000, 1, 0, 10);
    put_row(&r, 2, zz((uint64_t)-0x1000), 0, 0, zz(1), 0);
    CHECK_EQ_U64(dec_heap(d, 1, &tid, &r, 1), -EPROTO);
    CHECK(contains(decode_error(d), "heap row 1"));
    CHECK(contains(decode_error(d), "addr 0"));
    CHECK_EQ_U64(c.n, 1); /* the row before it was handed on */
    cap_free(d, &c);

    /* a truncated delta, an 11-byte delta, an unknown tag, for a known tid
     * and for an unknown one */
    static const char *const want[] = {"ticks truncated", "addr varint too long",
                                       "unknown tag 4",   "unknown tag 0",
                                       "unknown tag 16",  "unknown tag 137"};
    for (int known = 0; known < 2; known++)
        for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
            d = cap_decoder(&c, 0);
            CHECK_EQ_U64(dec_start(d, 2), 0);
            r.n = 0;
            if (known)
                row_alloc(&r, 0x1000, 1, 0, 10);
            switch (k) {
            case 0:
                put_row(&r, 2, zz(16), 0, 0, zz(1), 0);
                r.n--;
                break;
            case 1:
                put_varint(&r, 2);
                put(&r, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x81\x01", 11);
                put_varint(&r, 1);
                break;
            default:
                put_varint(&r, k == 2 ? 4 : k == 3 ? 0 : k == 4 ? 16 : 137);
                put_varint(&r, 16);
                put_varint(&r, 2);
                break;
            }
            CHECK_EQ_U64(dec_heap(d, 1, &tid, &r, 1), -EPROTO);
            CHECK(contains(decode_error(d), want[k]));
            CHECK_EQ_U64(c.n, (size_t)known);
            cap_free(d, &c);
        }
    free(r.p);
}

/* ---- round_end, straight through the decoder ------------------------------ */

/* A sink that writes down the order of heap pieces and round ends. */
typedef struct evlog {
    char s[512];
    int round_end_rc; /* what round_end returns */
} evlog_t;

static int log_heap(void *ctx, uint32_t tid, const heap_row_t *rows, size_t n)
{
    evlog_t *l = ctx;
    size_t k = strlen(l->s);
    snprintf(l->s + k, sizeof(l->s) - k, "h%" PRIu32 ":%zu ", tid, n);
    return 0;
}

static int log_round_end(void *ctx, uint64_t round_start_ticks)
{
    (void)round_start_ticks;
    evlog_t *l = ctx;
    size_t k = strlen(l->s);
    snprintf(l->s + k, sizeof(l->s) - k, "E ");
    return l->round_end_rc;
}

/* One Batch of HeapEvents (rows[i] for tids[i]) with round_end as given. */
static int dec_heap_round(decoder_t *d, uint64_t seq, int round_end, const uint32_t *tids,
                          const buf_t *rows, size_t n)
{
    Perfagent__HeapEvents he[4];
    Perfagent__Record r[4], *rp[4];
    buf_t body = {0};
    for (size_t i = 0; i < n && i < 4; i++) {
        he[i] = (Perfagent__HeapEvents)PERFAGENT__HEAP_EVENTS__INIT;
        he[i].tid = tids[i];
        he[i].rows.data = rows[i].p;
        he[i].rows.len = rows[i].n;
        r[i] = (Perfagent__Record)PERFAGENT__RECORD__INIT;
        r[i].body_case = PERFAGENT__RECORD__BODY_HEAP;
        r[i].heap = &he[i];
        rp[i] = &r[i];
    }
    pack_batch(&body, seq, round_end, rp, n < 4 ? n : 4);
    int rc = decode_frame(d, body.p, body.n, 0);
    free(body.p);
    return rc;
}

/* decode.h: round_end is called once after the last record of a Batch with
 * round_end set, and never for one without.  A round of two batches, a
 * round of one, then a sink whose round_end fails: that stops the stream
 * like any other sink error (decode.h: "After a fault the decoder refuses
 * every later frame with the same code"), with a message saying so. */
TEST(test_round_end_calls)
{
    evlog_t l = {.round_end_rc = 0};
    decode_sink_t sink = {.ctx = &l, .heap = log_heap, .round_end = log_round_end};
    decoder_t *d = decode_new(NULL, &sink);
    buf_t r[2] = {{0}, {0}};
    uint32_t tids[2] = {5, 6};

    CHECK(d != NULL);
    CHECK_EQ_U64(dec_start(d, 2), 0);
    row_alloc(&r[0], 0x1000, 8, 1, 10);
    row_free(&r[0], 0x2000, 11);
    row_alloc(&r[1], 0x2000, 8, 1, 5);
    CHECK_EQ_U64(dec_heap_round(d, 1, 0, tids, r, 1), 0);
    CHECK_STREQ(l.s, "h5:2 ");
    CHECK_EQ_U64(dec_heap_round(d, 2, 1, tids, r, 2), 0);
    CHECK_STREQ(l.s, "h5:2 h5:2 h6:1 E ");
    l.s[0] = '\0';
    tids[0] = 7;
    CHECK_EQ_U64(dec_heap_round(d, 3, 1, tids, r, 1), 0);
    CHECK_STREQ(l.s, "h7:2 E ");
    CHECK_EQ_U64(decode_counts(d)->frames, 4);
    CHECK(decode_error(d) == NULL);

    l.s[0] = '\0';
    l.round_end_rc = -ENOMEM;
    CHECK_EQ_U64(dec_heap_round(d, 4, 1, tids, r, 1), -ENOMEM);
    CHECK_STREQ(l.s, "h7:2 E ");
    CHECK(contains(decode_error(d), "frame 4 record 0: cannot end the round: "));
    CHECK_EQ_U64(dec_heap_round(d, 5, 1, tids, r, 1), -ENOMEM);
    CHECK_STREQ(l.s, "h7:2 E "); /* refused: nothing more reached the sink */
    CHECK_EQ_U64(decode_counts(d)->frames, 4);
    decode_free(d);
    free(r[0].p);
    free(r[1].p);
}

/* Only protocol 2 is read; a protocol 1 recording says what to do. */
TEST(test_protocol_version)
{
    rowcap_t c;
    decoder_t *d = cap_decoder(&c, 0);
    CHECK_EQ_U64(dec_start(d, 1), -EPROTO);
    CHECK(contains(decode_error(d), "recorded by an older agent (protocol 1); re-record"));
    cap_free(d, &c);
    d = cap_decoder(&c, 0);
    CHECK_EQ_U64(dec_start(d, 3), -EPROTO);
    CHECK(contains(decode_error(d), "unsupported protocol_version 3 (this collector reads 2)"));
    cap_free(d, &c);
    d = cap_decoder(&c, 0);
    CHECK_EQ_U64(dec_start(d, 0), -EPROTO);
    CHECK(contains(decode_error(d), "unsupported protocol_version 0"));
    cap_free(d, &c);

    /* and through a session, one line naming the version */
    buf_t b = {0};
    int rc;
    g_protocol = 1;
    put_header(&b, 1, 1);
    g_protocol = 2;
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, -EPROTO);
    CHECK(contains(session_error(s), "frame 0 record 0: recorded by an older agent (protocol 1)"));
    CHECK(!session_has_hello(s));
    session_free(s);
    free(b.p);
}

int main(void)
{
    RUN(test_delta_rows);
    RUN(test_delta_zigzag_extremes);
    RUN(test_delta_before_sync);
    RUN(test_delta_forget);
    RUN(test_delta_table_bound);
    RUN(test_delta_malformed);
    RUN(test_round_end_calls);
    RUN(test_protocol_version);
    CHECK_DONE();
}
