/*
 * test_decode.c — the collector's stream path on malformed and awkward
 * input: framing (stream.c), decoding and validation (decode.c), stream
 * rules, modules, limits and chunked delivery.  Streams are built with
 * tests/streams.h and fed to a session; the checks are on numbers (totals,
 * fault offsets), not just return codes.  The live heap's ordering rules are
 * in test_order.c, protocol 2 rows through the decoder alone in test_rows.c,
 * reports and the live map in test_reports.c.
 */
#include "check.h"
#include "streams.h"

/* ---- tests ------------------------------------------------------------------ */

TEST(test_truncated_frame)
{
    buf_t b = {0};
    session_totals_t t;
    int rc;
    char want[64];

    size_t last = build_basic(&b);
    b.n -= 5; /* cut the Goodbye frame */
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    CHECK_EQ_U64(session_end(s), -EPROTO);
    CHECK_EQ_U64(session_fault_offset(s), last);
    snprintf(want, sizeof(want), "stream offset %zu:", last);
    CHECK(contains(session_error(s), want));
    CHECK(contains(session_error(s), "cut inside a frame"));
    CHECK(!session_has_goodbye(s));
    session_get_totals(s, &t);
    CHECK_EQ_U64(t.live_bytes, 1057); /* what came before the cut is kept */
    session_free(s);

    /* Cut inside the length varint of a frame. */
    buf_t c = {0};
    put_magic(&c);
    put(&c, "\x80", 1);
    s = feed(&c, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    CHECK_EQ_U64(session_end(s), -EPROTO);
    CHECK_EQ_U64(session_fault_offset(s), 8);
    session_free(s);

    /* Cut inside the magic, and an empty stream. */
    c.n = 5;
    s = feed(&c, 0, &rc, NULL);
    CHECK_EQ_U64(session_end(s), -EPROTO);
    CHECK(contains(session_error(s), "inside the magic"));
    session_free(s);
    c.n = 0;
    s = feed(&c, 0, &rc, NULL);
    CHECK_EQ_U64(session_end(s), -EPROTO);
    session_free(s);
    free(c.p);
    free(b.p);
}

TEST(test_oversized_frame)
{
    buf_t b = {0};
    int rc;

    put_magic(&b);
    put_varint(&b, (8u << 20) + 1);
    put(&b, "xxxx", 4);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, -E2BIG);
    CHECK_EQ_U64(session_fault_offset(s), 8);
    CHECK(contains(session_error(s), "stream offset 8:"));
    CHECK_EQ_U64(session_end(s), -E2BIG);
    session_free(s);

    /* Exactly 8 MiB passes the framing (then the stream is cut). */
    b.n = 0;
    put_magic(&b);
    put_varint(&b, 8u << 20);
    put(&b, "xxxx", 4);
    s = feed(&b, 1, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    CHECK_EQ_U64(session_end(s), -EPROTO);
    CHECK(contains(session_error(s), "4 of 8388608 bytes"));
    session_free(s);

    /* Zero-length frame. */
    b.n = 0;
    put_magic(&b);
    put_varint(&b, 0);
    s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, -EPROTO);
    CHECK_EQ_U64(session_fault_offset(s), 8);
    session_free(s);
    free(b.p);
}

TEST(test_bad_magic)
{
    buf_t b = {0};
    int rc;

    build_basic(&b);
    b.p[7] = '2';
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, -EPROTO);
    CHECK_EQ_U64(session_fault_offset(s), 7);
    CHECK(contains(session_error(s), "stream offset 7: bad magic"));
    CHECK(!session_has_hello(s));
    /* After a fault, input is refused with the same error. */
    CHECK_EQ_U64(session_feed(s, b.p + 8, b.n - 8), -EPROTO);
    CHECK(contains(session_error(s), "stream offset 7: bad magic"));
    CHECK_EQ_U64(session_end(s), -EPROTO);
    session_free(s);
    free(b.p);
}

TEST(test_garbage)
{
    buf_t b = {0};
    int rc;

    /* A frame whose body is not a Batch. */
    put_magic(&b);
    put_varint(&b, 10);
    put(&b, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 10);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, -EPROTO);
    CHECK_EQ_U64(session_fault_offset(s), 8);
    CHECK(contains(session_error(s), "does not parse"));
    session_free(s);

    /* Random bytes after the magic: some fault, never a crash.  Fixed seed so
     * the outcome is the same every run. */
    srand(12345);
    for (int round = 0; round < 200; round++) {
        b.n = 0;
        put_magic(&b);
        size_t n = (size_t)(rand() % 300);
        for (size_t i = 0; i < n; i++) {
            uint8_t c = (uint8_t)rand();
            put(&b, &c, 1);
        }
        s = feed(&b, (size_t)(round % 7), &rc, NULL);
        int end = session_end(s);
        CHECK((rc < 0 || end < 0) == (session_error(s) != NULL));
        session_free(s);
    }

    /* A record before the Hello. */
    b.n = 0;
    put_magic(&b);
    Perfagent__Goodbye g = PERFAGENT__GOODBYE__INIT;
    Perfagent__Record r = PERFAGENT__RECORD__INIT, *rp = &r;
    r.body_case = PERFAGENT__RECORD__BODY_GOODBYE;
    r.goodbye = &g;
    put_frame(&b, 0, &rp, 1);
    s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, -EPROTO);
    CHECK(contains(session_error(s),
                   "stream offset 8: frame 0 record 0: first record is not a Hello"));
    session_free(s);
    free(b.p);
}

/* Rows: the first bad row stops the stream; rows before it count. */
static session_t *rows_case(const buf_t *rows, int *rc, size_t *heap_off)
{
    buf_t b = {0};
    put_header(&b, 1, 2);
    *heap_off = b.n;
    put_heap(&b, 1, 9, rows, 0);
    session_t *s = feed(&b, 0, rc, NULL);
    free(b.p);
    return s;
}

TEST(test_bad_rows)
{
    buf_t r = {0};
    uint64_t v[4];
    size_t off;
    int rc;
    char want[64];

    /* unknown tag */
    row_alloc(&r, 0x1000, 10, 1, 1);
    put_varint(&r, 12);
    put_varint(&r, 0x2000);
    session_t *s = rows_case(&r, &rc, &off);
    CHECK_EQ_U64(rc, -EPROTO);
    CHECK(contains(session_error(s), "heap row 1"));
    CHECK(contains(session_error(s), "unknown tag 12"));
    CHECK_EQ_U64(session_fault_offset(s), off);
    snprintf(want, sizeof(want), "stream offset %zu: frame 1 record 0:", off);
    CHECK(contains(session_error(s), want));
    stack_totals(s, 1, v);
    CHECK_EQ_U64(v[2], 10); /* the good row before it was applied */
    session_free(s);

    /* undefined stack id */
    r.n = 0;
    row_alloc(&r, 0x1000, 10, 5, 1);
    s = rows_case(&r, &rc, &off);
    CHECK_EQ_U64(rc, -EPROTO);
    CHECK(contains(session_error(s), "stack id not defined (5)"));
    session_free(s);

    /* addr 0 */
    r.n = 0;
    row_alloc(&r, 0, 10, 1, 1);
    s = rows_case(&r, &rc, &off);
    CHECK(contains(session_error(s), "addr 0"));
    session_free(s);

    /* huge varint: 11 bytes */
    r.n = 0;
    put_varint(&r, 1 | SYNC);
    put(&r, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
    s = rows_case(&r, &rc, &off);
    CHECK_EQ_U64(rc, -EPROTO);
    CHECK(contains(session_error(s), "addr varint too long"));
    session_free(s);

    /* 10 bytes that overflow 64 bits */
    r.n = 0;
    put_varint(&r, 1 | SYNC);
    put(&r, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10);
    s = rows_case(&r, &rc, &off);
    CHECK(contains(session_error(s), "varint too long"));
    session_free(s);

    /* the largest 10-byte varint is a valid address */
    r.n = 0;
    row_alloc(&r, UINT64_MAX, 10, 1, 1);
    s = rows_case(&r, &rc, &off);
    CHECK_EQ_U64(rc, 0);
    stack_totals(s, 1, v);
    CHECK_EQ_U64(v[2], 10);
    session_free(s);

    /* truncated row */
    r.n = 0;
    row_alloc(&r, 0x1000, 10, 1, 1);
    r.n--;
    s = rows_case(&r, &rc, &off);
    CHECK(contains(session_error(s), "ticks truncated"));
    session_free(s);

    /* size beyond the 2^48 cap */
    r.n = 0;
    row_alloc(&r, 0x1000, UINT64_C(1) << 50, 1, 1);
    s = rows_case(&r, &rc, &off);
    CHECK(contains(session_error(s), "size too large"));
    session_free(s);
    free(r.p);
}

static void put_stackdef(buf_t *b, uint64_t seq, uint32_t id)
{
    uint64_t fr[1] = {0x401000};
    Perfagent__StackDef sd = PERFAGENT__STACK_DEF__INIT;
    sd.id = id;
    sd.n_frames = 1;
    sd.frames = fr;
    Perfagent__Record r = PERFAGENT__RECORD__INIT, *rp = &r;
    r.body_case = PERFAGENT__RECORD__BODY_STACK;
    r.stack = &sd;
    put_frame(b, seq, &rp, 1);
}

TEST(test_stream_rules)
{
    buf_t b = {0};
    session_totals_t t;
    int rc;

    /* stack id reused */
    put_header(&b, 1, 2);
    put_stackdef(&b, 1, 2);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, -EPROTO);
    CHECK(contains(session_error(s), "stack id 2 reused"));
    session_free(s);

    /* seq going back */
    b.n = 0;
    put_header(&b, 1, 1);
    put_stackdef(&b, 0, 2);
    s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, -EPROTO);
    CHECK(contains(session_error(s), "batch seq 0 after 0"));
    session_free(s);

    /* seq gaps count lost frames; stack id gaps leave ids undefined */
    b.n = 0;
    put_header(&b, 1, 1);
    put_stackdef(&b, 3, 4);
    s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    session_get_totals(s, &t);
    CHECK_EQ_U64(t.frames_lost, 2);
    CHECK_EQ_U64(t.stacks, 2);
    CHECK_EQ_U64(session_stack_totals(s, 4, NULL, NULL, NULL, NULL), 0);
    CHECK_EQ_U64(session_stack_totals(s, 3, NULL, NULL, NULL, NULL), -ENOENT);
    buf_t r = {0};
    row_alloc(&r, 0x1000, 1, 3, 1);
    buf_t c = {0};
    put_heap(&c, 4, 1, &r, 1);
    CHECK_EQ_U64(session_feed(s, c.p, c.n), -EPROTO);
    CHECK(contains(session_error(s), "stack id not defined (3)"));
    session_free(s);

    /* stack id beyond max_stacks */
    session_opts_t o = {.max_stacks = 3};
    b.n = 0;
    put_header(&b, 1, 3);
    put_stackdef(&b, 1, 4);
    s = feed(&b, 0, &rc, &o);
    CHECK_EQ_U64(rc, -E2BIG);
    session_free(s);

    /* nothing after Goodbye */
    b.n = 0;
    build_basic(&b);
    put_stackdef(&b, 3, 4);
    s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, -EPROTO);
    CHECK(contains(session_error(s), "record after Goodbye"));
    CHECK(session_has_goodbye(s));
    session_free(s);

    /* a HeapEvents count that does not match is only counted */
    b.n = 0;
    r.n = 0;
    put_header(&b, 1, 1);
    row_alloc(&r, 0x1000, 1, 1, 1);
    put_heap(&b, 1, 1, &r, 5);
    s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    session_get_totals(s, &t);
    CHECK_EQ_U64(t.count_mismatch, 1);
    CHECK_EQ_U64(t.live_bytes, 1);
    session_free(s);
    free(r.p);
    free(c.p);
    free(b.p);
}

TEST(test_modules)
{
    buf_t b = {0};
    int rc;
    session_totals_t t;

    put_header(&b, 1, 0); /* module "" (= exe) */
    Perfagent__Range rg[2] = {PERFAGENT__RANGE__INIT, PERFAGENT__RANGE__INIT};
    Perfagent__Range *rp0[1] = {&rg[0]}, *rp1[1] = {&rg[1]};
    rg[0].start = 0x400000;
    rg[0].end = 0x500000;
    rg[1].start = 0x7f0000;
    rg[1].end = 0x7f1000;
    Perfagent__Module m[2] = {PERFAGENT__MODULE__INIT, PERFAGENT__MODULE__INIT};
    m[0].path = "/usr/bin/app"; /* the same module as "" in the Hello's map */
    m[0].n_ranges = 1;
    m[0].ranges = rp0;
    m[1].path = "/lib/libfoo.so";
    m[1].n_ranges = 1;
    m[1].ranges = rp1;
    Perfagent__Module *mp[2] = {&m[0], &m[1]};
    Perfagent__ModuleMap mm = PERFAGENT__MODULE_MAP__INIT;
    mm.full = 1;
    mm.n_modules = 2;
    mm.modules = mp;
    Perfagent__Record r = PERFAGENT__RECORD__INIT, *rpp = &r;
    r.body_case = PERFAGENT__RECORD__BODY_MODULES;
    r.modules = &mm;
    put_frame(&b, 1, &rpp, 1);
    put_frame(&b, 2, &rpp, 1); /* again: nothing new */
    m[1].load_bias = 0x1000;   /* same path, other bias: new */
    put_frame(&b, 3, &rpp, 1);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    session_get_totals(s, &t);
    CHECK_EQ_U64(t.modules, 3);

    /* invalid: inverted range, oversized build-id */
    rg[1].start = 0x7f2000;
    buf_t c = {0};
    put_frame(&c, 4, &rpp, 1);
    CHECK_EQ_U64(session_feed(s, c.p, c.n), -EPROTO);
    CHECK(contains(session_error(s), "inverted range"));
    session_free(s);
    uint8_t bid[65] = {0};
    rg[1].start = 0x7f0000;
    m[1].build_id.data = bid;
    m[1].build_id.len = 65;
    c.n = 0;
    put_frame(&c, 4, &rpp, 1);
    s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(session_feed(s, c.p, c.n), -EPROTO);
    CHECK(contains(session_error(s), "build-id of 65 bytes"));
    session_free(s);
    free(c.p);
    free(b.p);
}

TEST(test_max_live)
{
    buf_t b = {0}, r = {0};
    session_totals_t t;
    session_opts_t o = {.max_live = 2};
    int rc;

    put_header(&b, 1, 1);
    row_alloc(&r, 0x1000, 1, 1, 1);
    row_alloc(&r, 0x2000, 2, 1, 2);
    row_alloc(&r, 0x3000, 4, 1, 3); /* over the cap: not tracked */
    row_free(&r, 0x3000, 4);        /* so its free is unknown */
    row_free(&r, 0x1000, 5);
    row_alloc(&r, 0x4000, 8, 1, 6); /* room again */
    put_heap(&b, 1, 1, &r, 6);
    session_t *s = feed(&b, 0, &rc, &o);
    CHECK_EQ_U64(rc, 0);
    session_get_totals(s, &t);
    CHECK_EQ_U64(t.live_untracked, 1);
    CHECK_EQ_U64(t.live_blocks, 2);
    CHECK_EQ_U64(t.live_bytes, 10);
    CHECK_EQ_U64(t.bytes_allocated, 15);
    CHECK_EQ_U64(t.frees_unknown, 1);
    session_free(s);
    free(b.p);
    free(r.p);
}

static int same_reports(const char *d1, const char *d2)
{
    int same = 1;
    for (size_t i = 0; i < 5; i++) {
        char *a = slurp(d1, report_files[i]), *b = slurp(d2, report_files[i]);
        if (!a || !b || strcmp(a, b) != 0) {
            printf("  # %s differs between %s and %s\n", report_files[i], d1, d2);
            same = 0;
        }
        free(a);
        free(b);
    }
    return same;
}

/* Any chunking gives the same session, and replaying gives identical files. */
TEST(test_chunking)
{
    buf_t b = {0}, r = {0};
    session_totals_t t0, t1;
    char d0[] = "/tmp/pa-decode-XXXXXX", d1[] = "/tmp/pa-decode-XXXXXX";
    int rc;

    put_header(&b, 1, 3);
    /* A few thousand rows over several frames, so rows straddle chunks; two
     * threads, delta-encoded like the agent does, so each thread's state
     * carries across frames. */
    uint64_t seq = 1;
    renc_t enc[2] = {{.every = 64}, {.every = 64}};
    for (int f = 0; f < 4; f++) {
        r.n = 0;
        for (uint64_t i = 0; i < 1000; i++) {
            uint64_t a = 0x10000 + 16 * ((i * 7919 + (uint64_t)f * 131) % 1500);
            if (i % 3 == 2)
                enc_row(&r, &enc[f % 2], 2, a, 0, 0, 1000 * (uint64_t)f + i, 0);
            else
                enc_row(&r, &enc[f % 2], 1, a, i % 97 + 1, (uint32_t)(i % 4),
                        1000 * (uint64_t)f + i, 0);
        }
        put_heap(&b, seq++, (uint32_t)(f % 2 + 1), &r, 1000);
    }
    put_stats_goodbye(&b, seq, 3);

    session_t *s0 = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    CHECK_EQ_U64(session_end(s0), 0);
    session_get_totals(s0, &t0);
    CHECK_EQ_U64(t0.rows, 4000);
    CHECK_EQ_U64(t0.rows_unsynced, 0);
    CHECK(mkdtemp(d0) != NULL);
    CHECK_EQ_U64(session_write_reports(s0, d0), 0);
    CHECK(contains(session_summary(s0), "numbers are incomplete")); /* 3 drops */

    size_t chunks[] = {1, 2, 3, 7, 4096};
    for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
        session_t *s1 = feed(&b, chunks[k], &rc, NULL);
        CHECK_EQ_U64(rc, 0);
        CHECK_EQ_U64(session_end(s1), 0);
        session_get_totals(s1, &t1);
        CHECK(memcmp(&t0, &t1, sizeof(t0)) == 0);
        for (uint32_t id = 0; id <= 3; id++) {
            uint64_t v0[4], v1[4];
            stack_totals(s0, id, v0);
            stack_totals(s1, id, v1);
            CHECK(memcmp(v0, v1, sizeof(v0)) == 0);
        }
        if (k == 0) {
            CHECK(mkdtemp(d1) != NULL);
            CHECK_EQ_U64(session_write_reports(s1, d1), 0);
            CHECK(same_reports(d0, d1));
            CHECK_STREQ(session_summary(s0), session_summary(s1));
            rm_dir(d1);
        }
        session_free(s1);
    }
    rm_dir(d0);
    session_free(s0);
    free(b.p);
    free(r.p);
}

int main(void)
{
    RUN(test_truncated_frame);
    RUN(test_oversized_frame);
    RUN(test_bad_magic);
    RUN(test_garbage);
    RUN(test_bad_rows);
    RUN(test_stream_rules);
    RUN(test_modules);
    RUN(test_max_live);
    RUN(test_chunking);
    CHECK_DONE();
}
