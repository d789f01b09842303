/*
 * test_decode.c — the collector's stream path: framing (stream.c), decoding
 * and validation (decode.c), the live heap and totals (session.c, livemap.c)
 * and the reports (report.c).  Streams are built here with the protobuf-c
 * encoder and hand-made HeapEvents rows, then fed to a session; the checks
 * are on numbers (totals per stack, fault offsets), not just return codes.
 */
#include "check.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "livemap.h"
#include "perfagent.pb-c.h"
#include "session.h"
#include "testbuf.h"
#include "testmod.h"

/* ---- stream building ------------------------------------------------------ */

/* buf_t, put(), put_varint(): tests/testbuf.h */

static void put_magic(buf_t *b)
{
    put(b, "PFAGENT1", 8);
}

/* Every frame ends a drain round unless a test says otherwise: then the
 * rows of each batch are applied as they come, which exercises the
 * collector's rules for rows that cross rounds out of order. */
static int g_round_end = 1;

/* One frame holding a Batch of the given records. */
static void put_frame(buf_t *b, uint64_t seq, Perfagent__Record **recs, size_t n)
{
    Perfagent__Batch batch = PERFAGENT__BATCH__INIT;
    batch.seq = seq;
    batch.round_end = g_round_end;
    batch.n_records = n;
    batch.records = recs;
    size_t len = perfagent__batch__get_packed_size(&batch);
    uint8_t *tmp = malloc(len ? len : 1);
    perfagent__batch__pack(&batch, tmp);
    put_varint(b, len);
    put(b, tmp, len);
    free(tmp);
}

static void row_alloc(buf_t *r, uint64_t addr, uint64_t size, uint32_t stack, uint64_t ticks)
{
    put_varint(r, 1);
    put_varint(r, addr);
    put_varint(r, size);
    put_varint(r, stack);
    put_varint(r, ticks);
}

static void row_free(buf_t *r, uint64_t addr, uint64_t ticks)
{
    put_varint(r, 2);
    put_varint(r, addr);
    put_varint(r, ticks);
}

static void row_sample(buf_t *r, uint64_t addr, uint64_t size, uint32_t stack, uint64_t ticks,
                       uint64_t weight)
{
    put_varint(r, 3);
    put_varint(r, addr);
    put_varint(r, size);
    put_varint(r, stack);
    put_varint(r, ticks);
    put_varint(r, weight);
}

/* Frames of the stacks the standard header defines: stack id i has frames
 * {0x401000 + 16 i, 0x402000}.  Overridable for the symbolization test. */
static uint64_t stack_frames[8][2];
static int use_real_module;
static modinfo_t mod; /* this program, as the agent would declare it */

/* magic + frame seq 0: Hello (malloc_rate), ModuleMap, StackDefs 1..nstacks. */
static void put_header(buf_t *b, uint64_t rate, uint32_t nstacks)
{
    Perfagent__Config cfg = PERFAGENT__CONFIG__INIT;
    cfg.malloc_rate = rate;
    cfg.max_frames = 64;
    cfg.unwinder = "fp";
    char *argv[] = {"./app", "-x", "we\"ird\n"};
    Perfagent__Hello h = PERFAGENT__HELLO__INIT;
    h.protocol_version = 1;
    h.agent_version = "0.1.0";
    h.pid = 4242;
    h.ppid = 1;
    h.exe = "/usr/bin/app";
    h.n_argv = 3;
    h.argv = argv;
    h.start_time_unix_ns = 1000000000000ull;
    h.start_mono_ns = 5000;
    h.config = &cfg;

    Perfagent__Range rg = PERFAGENT__RANGE__INIT, rgs[8];
    Perfagent__Range *rp[8] = {&rg};
    rg.start = 0x400000;
    rg.end = 0x500000;
    Perfagent__Module m = PERFAGENT__MODULE__INIT;
    Perfagent__Module *mp[1] = {&m};
    m.path = "";
    m.n_ranges = 1;
    m.ranges = rp;
    if (use_real_module) {
        m.path = mod.path;
        m.build_id.data = mod.bid;
        m.build_id.len = mod.bid_len;
        m.load_bias = mod.bias;
        for (size_t i = 0; i < mod.n_ranges; i++) {
            rgs[i] = (Perfagent__Range)PERFAGENT__RANGE__INIT;
            rgs[i].start = mod.ranges[i][0];
            rgs[i].end = mod.ranges[i][1];
            rp[i] = &rgs[i];
        }
        m.n_ranges = mod.n_ranges;
    }
    Perfagent__ModuleMap mm = PERFAGENT__MODULE_MAP__INIT;
    mm.full = 1;
    mm.n_modules = 1;
    mm.modules = mp;

    Perfagent__Record recs[10], *rptr[10];
    Perfagent__StackDef sd[8];
    size_t n = 0;
    recs[n] = (Perfagent__Record)PERFAGENT__RECORD__INIT;
    recs[n].body_case = PERFAGENT__RECORD__BODY_HELLO;
    recs[n++].hello = &h;
    recs[n] = (Perfagent__Record)PERFAGENT__RECORD__INIT;
    recs[n].body_case = PERFAGENT__RECORD__BODY_MODULES;
    recs[n++].modules = &mm;
    for (uint32_t i = 1; i <= nstacks && i < 8; i++) {
        sd[i] = (Perfagent__StackDef)PERFAGENT__STACK_DEF__INIT;
        sd[i].id = i;
        if (!stack_frames[i][0]) {
            stack_frames[i][0] = 0x401000 + 16 * i;
            stack_frames[i][1] = 0x402000;
        }
        sd[i].n_frames = 2;
        sd[i].frames = stack_frames[i];
        recs[n] = (Perfagent__Record)PERFAGENT__RECORD__INIT;
        recs[n].body_case = PERFAGENT__RECORD__BODY_STACK;
        recs[n++].stack = &sd[i];
    }
    for (size_t i = 0; i < n; i++)
        rptr[i] = &recs[i];
    put_magic(b);
    put_frame(b, 0, rptr, n);
}

static void put_heap(buf_t *b, uint64_t seq, uint32_t tid, const buf_t *rows, uint32_t count)
{
    Perfagent__HeapEvents he = PERFAGENT__HEAP_EVENTS__INIT;
    he.tid = tid;
    he.rows.data = rows->p;
    he.rows.len = rows->n;
    he.count = count;
    Perfagent__Record r = PERFAGENT__RECORD__INIT, *rp = &r;
    r.body_case = PERFAGENT__RECORD__BODY_HEAP;
    r.heap = &he;
    put_frame(b, seq, &rp, 1);
}

static void put_stats_goodbye(buf_t *b, uint64_t seq, uint64_t drops_full)
{
    Perfagent__ClockSync cs = PERFAGENT__CLOCK_SYNC__INIT;
    cs.ticks = 900;
    cs.mono_ns = 900;
    Perfagent__AgentStats st = PERFAGENT__AGENT_STATS__INIT;
    st.drops_buffer_full = drops_full;
    st.clock = &cs;
    Perfagent__Goodbye g = PERFAGENT__GOODBYE__INIT;
    g.exit_code = 0;
    g.end_time_unix_ns = 1000000000000ull + 1500000000ull;
    Perfagent__Record r[2] = {PERFAGENT__RECORD__INIT, PERFAGENT__RECORD__INIT};
    Perfagent__Record *rp[2] = {&r[0], &r[1]};
    r[0].body_case = PERFAGENT__RECORD__BODY_STATS;
    r[0].stats = &st;
    r[1].body_case = PERFAGENT__RECORD__BODY_GOODBYE;
    r[1].goodbye = &g;
    put_frame(b, seq, rp, 2);
}

/* Feed in chunks of `chunk` bytes (0 = all at once). */
static session_t *feed(const buf_t *b, size_t chunk, int *rc_feed, const session_opts_t *opts)
{
    session_opts_t def = {.peer = "test"};
    session_t *s = session_new(opts ? opts : &def);
    int rc = 0;
    if (!s)
        abort();
    if (!chunk)
        chunk = b->n ? b->n : 1;
    for (size_t off = 0; off < b->n && rc == 0; off += chunk)
        rc = session_feed(s, b->p + off, b->n - off < chunk ? b->n - off : chunk);
    if (rc_feed)
        *rc_feed = rc;
    return s;
}

static void stack_totals(session_t *s, uint32_t id, uint64_t v[4])
{
    memset(v, 0xff, 4 * sizeof(*v));
    CHECK(session_stack_totals(s, id, &v[0], &v[1], &v[2], &v[3]) == 0);
}

static int contains(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

static char *slurp(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *p = NULL;
    size_t cap = 0, n = 0, k;
    char tmp[4096];
    while ((k = fread(tmp, 1, sizeof(tmp), f)) > 0) {
        p = realloc(p, cap = n + k + 1);
        memcpy(p + n, tmp, k);
        n += k;
    }
    fclose(f);
    if (!p)
        p = calloc(1, 1);
    else
        p[n] = '\0';
    (void)cap;
    return p;
}

static const char *report_files[] = {"leaks.json", "leaks.txt", "alloc.folded", "inuse.folded",
                                     "summary.txt"};

static void rm_dir(const char *dir)
{
    char path[4200];
    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, report_files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* Standard exact-mode stream: stacks 1..3, one thread. */
static size_t build_basic(buf_t *b)
{
    buf_t r = {0};
    put_header(b, 1, 3);
    row_alloc(&r, 0x1000, 100, 1, 10);
    row_alloc(&r, 0x2000, 50, 1, 11);
    row_alloc(&r, 0x3000, 7, 2, 12);
    row_free(&r, 0x1000, 13);
    row_free(&r, 0xdead0, 14);          /* never allocated: ignored */
    row_alloc(&r, 0x4000, 1000, 0, 15); /* no stack */
    put_heap(b, 1, 100, &r, 6);
    free(r.p);
    size_t last = b->n;
    put_stats_goodbye(b, 2, 0);
    return last;
}

/* ---- tests ------------------------------------------------------------------ */

TEST(test_totals)
{
    buf_t b = {0};
    int rc;
    uint64_t v[4];
    session_totals_t t;

    build_basic(&b);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    CHECK_EQ_U64(session_end(s), 0);
    CHECK(session_error(s) == NULL);
    CHECK(session_has_hello(s));
    CHECK(session_has_goodbye(s));
    CHECK_EQ_U64(session_pid(s), 4242);
    CHECK_EQ_U64(session_ppid(s), 1);
    CHECK_STREQ(session_exe(s), "/usr/bin/app");
    CHECK_STREQ(session_argv_json(s), "[\"./app\", \"-x\", \"we\\\"ird\\n\"]");

    stack_totals(s, 1, v);
    CHECK_EQ_U64(v[0], 150);
    CHECK_EQ_U64(v[1], 2);
    CHECK_EQ_U64(v[2], 50);
    CHECK_EQ_U64(v[3], 1);
    stack_totals(s, 2, v);
    CHECK_EQ_U64(v[0], 7);
    CHECK_EQ_U64(v[1], 1);
    CHECK_EQ_U64(v[2], 7);
    CHECK_EQ_U64(v[3], 1);
    stack_totals(s, 3, v);
    CHECK_EQ_U64(v[0] + v[1] + v[2] + v[3], 0);
    stack_totals(s, 0, v);
    CHECK_EQ_U64(v[0], 1000);
    CHECK_EQ_U64(v[2], 1000);
    CHECK_EQ_U64(session_stack_totals(s, 4, NULL, NULL, NULL, NULL), -ENOENT);

    session_get_totals(s, &t);
    CHECK_EQ_U64(t.allocs, 4);
    CHECK_EQ_U64(t.samples, 0);
    CHECK_EQ_U64(t.frees, 2);
    CHECK_EQ_U64(t.frees_unknown, 1);
    CHECK_EQ_U64(t.bytes_allocated, 1157);
    CHECK_EQ_U64(t.objects_allocated, 4);
    CHECK_EQ_U64(t.live_bytes, 1057);
    CHECK_EQ_U64(t.live_objects, 3);
    CHECK_EQ_U64(t.live_blocks, 3);
    CHECK_EQ_U64(t.rows, 6);
    CHECK_EQ_U64(t.frames, 3);
    CHECK_EQ_U64(t.frames_lost, 0);
    CHECK_EQ_U64(t.stacks, 3);
    CHECK_EQ_U64(t.no_stack, 1);
    CHECK_EQ_U64(t.threads, 1);
    CHECK_EQ_U64(t.modules, 1);
    CHECK_EQ_U64(t.count_mismatch, 0);
    session_free(s);
    free(b.p);
}

/* Thread A allocates X and frees it; thread B then gets X from malloc.  B's
 * ALLOC reaches the collector before A's FREE. */
TEST(test_reorder_alloc_before_free)
{
    buf_t b = {0}, r = {0};
    uint64_t v[4];
    session_totals_t t;
    int rc;

    put_header(&b, 1, 2);
    row_alloc(&r, 0x5000, 64, 1, 100); /* A */
    put_heap(&b, 1, 1, &r, 1);
    r.n = 0;
    row_alloc(&r, 0x5000, 32, 2, 300); /* B */
    put_heap(&b, 2, 2, &r, 1);
    r.n = 0;
    row_free(&r, 0x5000, 200); /* A's free, older than B's alloc */
    put_heap(&b, 3, 1, &r, 1);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    stack_totals(s, 1, v);
    CHECK_EQ_U64(v[0], 64);
    CHECK_EQ_U64(v[2], 0);
    CHECK_EQ_U64(v[3], 0);
    stack_totals(s, 2, v);
    CHECK_EQ_U64(v[2], 32); /* B's block stays live */
    CHECK_EQ_U64(v[3], 1);
    session_get_totals(s, &t);
    CHECK_EQ_U64(t.live_bytes, 32);
    CHECK_EQ_U64(t.live_blocks, 1);
    CHECK_EQ_U64(t.frees_stale, 1);
    CHECK_EQ_U64(t.reuse_implied, 1);
    CHECK_EQ_U64(t.frees_unknown, 0);
    session_free(s);
    free(b.p);
    free(r.p);
}

/* Same history, but B's ALLOC arrives before A's ALLOC and FREE. */
TEST(test_reorder_alloc_before_alloc)
{
    buf_t b = {0}, r = {0};
    uint64_t v[4];
    session_totals_t t;
    int rc;

    put_header(&b, 1, 2);
    row_alloc(&r, 0x5000, 32, 2, 300); /* B */
    put_heap(&b, 1, 2, &r, 1);
    r.n = 0;
    row_alloc(&r, 0x5000, 64, 1, 100); /* A */
    row_free(&r, 0x5000, 200);
    put_heap(&b, 2, 1, &r, 2);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    stack_totals(s, 1, v);
    CHECK_EQ_U64(v[0], 64);
    CHECK_EQ_U64(v[2], 0);
    stack_totals(s, 2, v);
    CHECK_EQ_U64(v[2], 32);
    session_get_totals(s, &t);
    CHECK_EQ_U64(t.live_bytes, 32);
    CHECK_EQ_U64(t.allocs_superseded, 1);
    CHECK_EQ_U64(t.frees_stale, 1);
    session_free(s);
    free(b.p);
    free(r.p);
}

/* What thread_churn does, in one drain round: main frees two blocks that two
 * workers allocated at the same (reused) address, and main's rows come
 * first.  Inside a round the collector orders rows by ticks, so this is exact
 * with none of the out-of-order fallbacks. */
TEST(test_round_orders_threads)
{
    buf_t b = {0}, r = {0};
    uint64_t v[4];
    session_totals_t t;
    int rc;

    g_round_end = 0;
    put_header(&b, 1, 3);
    row_free(&r, 0x7000, 200); /* main frees W1's block */
    row_free(&r, 0x7000, 400); /* main frees W2's block, same address */
    put_heap(&b, 1, 10, &r, 2);
    r.n = 0;
    row_alloc(&r, 0x7000, 512, 3, 300); /* W2 */
    put_heap(&b, 2, 12, &r, 1);
    r.n = 0;
    row_alloc(&r, 0x7000, 512, 3, 100); /* W1 */
    g_round_end = 1;
    put_heap(&b, 3, 11, &r, 1);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    stack_totals(s, 3, v);
    CHECK_EQ_U64(v[0], 1024); /* allocated */
    CHECK_EQ_U64(v[1], 2);
    CHECK_EQ_U64(v[2], 0); /* live */
    CHECK_EQ_U64(v[3], 0);
    session_get_totals(s, &t);
    CHECK_EQ_U64(t.live_blocks, 0);
    CHECK_EQ_U64(t.frees, 2);
    CHECK_EQ_U64(t.frees_unknown, 0);
    CHECK_EQ_U64(t.frees_early, 0);
    CHECK_EQ_U64(t.frees_stale, 0);
    CHECK_EQ_U64(t.reuse_implied, 0);
    CHECK_EQ_U64(t.allocs_superseded, 0);
    session_free(s);
    free(b.p);
    free(r.p);
}

/* Thread A allocates X, thread B frees it, B's FREE arrives first.  A later
 * reuse of an address freed while unknown must still count as live. */
TEST(test_free_before_alloc)
{
    buf_t b = {0}, r = {0};
    uint64_t v[4];
    session_totals_t t;
    int rc;

    put_header(&b, 1, 1);
    row_free(&r, 0x5000, 200); /* B */
    row_free(&r, 0x6000, 50);  /* a block from before the agent */
    put_heap(&b, 1, 2, &r, 2);
    r.n = 0;
    row_alloc(&r, 0x5000, 64, 1, 100); /* A, allocated before B freed it */
    row_alloc(&r, 0x6000, 8, 1, 60);   /* reuse after the free: live */
    put_heap(&b, 2, 1, &r, 2);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    stack_totals(s, 1, v);
    CHECK_EQ_U64(v[0], 72);
    CHECK_EQ_U64(v[2], 8);
    CHECK_EQ_U64(v[3], 1);
    session_get_totals(s, &t);
    CHECK_EQ_U64(t.frees, 2);
    CHECK_EQ_U64(t.frees_early, 1);
    CHECK_EQ_U64(t.frees_unknown, 1);
    CHECK_EQ_U64(t.live_blocks, 1);
    session_free(s);
    free(b.p);
    free(r.p);
}

TEST(test_sampled)
{
    buf_t b = {0}, r = {0};
    uint64_t v[4];
    session_totals_t t;
    int rc;

    put_header(&b, 4096, 1);
    row_sample(&r, 0x1000, 100, 1, 10, 4096);  /* stands for ~41 objects */
    row_sample(&r, 0x2000, 8192, 1, 11, 8192); /* bigger than the rate: itself */
    row_free(&r, 0x2000, 12);
    row_free(&r, 0x3000, 13); /* not sampled */
    put_heap(&b, 1, 7, &r, 4);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    stack_totals(s, 1, v);
    CHECK_EQ_U64(v[0], 12288);
    CHECK_EQ_U64(v[1], 42);
    CHECK_EQ_U64(v[2], 4096);
    CHECK_EQ_U64(v[3], 41);
    session_get_totals(s, &t);
    CHECK_EQ_U64(t.samples, 2);
    CHECK_EQ_U64(t.allocs, 0);
    CHECK_EQ_U64(t.frees_unknown, 1);
    /* No Goodbye, but the stream stopped between frames: not a fault. */
    CHECK_EQ_U64(session_end(s), 0);
    CHECK(!session_has_goodbye(s));
    CHECK(session_error(s) == NULL);
    session_free(s);
    free(b.p);
    free(r.p);
}

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

    /* unknown kind */
    row_alloc(&r, 0x1000, 10, 1, 1);
    put_varint(&r, 9);
    put_varint(&r, 0x2000);
    session_t *s = rows_case(&r, &rc, &off);
    CHECK_EQ_U64(rc, -EPROTO);
    CHECK(contains(session_error(s), "heap row 1"));
    CHECK(contains(session_error(s), "unknown kind 9"));
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
    put_varint(&r, 1);
    put(&r, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
    s = rows_case(&r, &rc, &off);
    CHECK_EQ_U64(rc, -EPROTO);
    CHECK(contains(session_error(s), "addr varint too long"));
    session_free(s);

    /* 10 bytes that overflow 64 bits */
    r.n = 0;
    put_varint(&r, 1);
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
    /* A few thousand rows over several frames, so rows straddle chunks. */
    uint64_t seq = 1;
    for (int f = 0; f < 4; f++) {
        r.n = 0;
        for (uint64_t i = 0; i < 1000; i++) {
            uint64_t a = 0x10000 + 16 * ((i * 7919 + (uint64_t)f * 131) % 1500);
            if (i % 3 == 2)
                row_free(&r, a, 1000 * (uint64_t)f + i);
            else
                row_alloc(&r, a, i % 97 + 1, (uint32_t)(i % 4), 1000 * (uint64_t)f + i);
        }
        put_heap(&b, seq++, (uint32_t)(f % 2 + 1), &r, 1000);
    }
    put_stats_goodbye(&b, seq, 3);

    session_t *s0 = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    CHECK_EQ_U64(session_end(s0), 0);
    session_get_totals(s0, &t0);
    CHECK_EQ_U64(t0.rows, 4000);
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

/* ---- reports with real symbols ---------------------------------------------- */

/* Two frames of this very binary: return addresses inside pa_test_leaf and
 * pa_test_parent, symbolized through symtab like an agent's stack. */
#ifdef __clang__
#define NOCLONE
#else
#define NOCLONE __attribute__((noclone))
#endif
__attribute__((noinline)) NOCLONE uint64_t pa_test_ra(void);
__attribute__((noinline)) NOCLONE void pa_test_leaf(uint64_t *out);
__attribute__((noinline)) NOCLONE void pa_test_parent(uint64_t *out);

uint64_t pa_test_ra(void)
{
    uint64_t r = (uint64_t)(uintptr_t)__builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
    return r;
}

void pa_test_leaf(uint64_t *out)
{
    out[0] = pa_test_ra();
    __asm__ volatile("" ::: "memory");
}

void pa_test_parent(uint64_t *out)
{
    pa_test_leaf(out);
    out[1] = pa_test_ra();
    __asm__ volatile("" ::: "memory");
}

TEST(test_reports)
{
    buf_t b = {0}, r = {0};
    char d[] = "/tmp/pa-decode-XXXXXX";
    uint64_t fr[2];
    int rc;

    pa_test_parent(fr);
    memset(&mod, 0, sizeof(mod));
    dl_iterate_phdr(phdr_cb, &mod);
    CHECK(mod.n_ranges > 0);
    use_real_module = 1;
    memset(stack_frames, 0, sizeof(stack_frames));
    stack_frames[1][0] = fr[0];
    stack_frames[1][1] = fr[1];
    stack_frames[2][0] = 0x10; /* in no module */
    stack_frames[2][1] = 0x20;
    put_header(&b, 1, 2);
    use_real_module = 0;
    row_alloc(&r, 0x1000, 100, 1, 10);
    row_alloc(&r, 0x2000, 28, 1, 11);
    row_alloc(&r, 0x3000, 500, 2, 12);
    row_alloc(&r, 0x4000, 9, 0, 13);
    row_free(&r, 0x2000, 14);
    put_heap(&b, 1, 1, &r, 5);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    CHECK_EQ_U64(session_end(s), 0);
    CHECK(mkdtemp(d) != NULL);
    CHECK_EQ_U64(session_write_reports(s, d), 0);

    char *json = slurp(d, "leaks.json"), *txt = slurp(d, "leaks.txt");
    char *alloc = slurp(d, "alloc.folded"), *inuse = slurp(d, "inuse.folded");
    char *sum = slurp(d, "summary.txt");
    CHECK(json && txt && alloc && inuse && sum);
    CHECK(contains(json, "\"pid\": 4242"));
    CHECK(contains(json, "\"mode\": \"exact\""));
    CHECK(contains(json, "\"total\": {\"bytes\": 609, \"objects\": 3}") ||
          contains(json, "\"bytes\": 609"));
    CHECK(contains(json, "\"function\": \"pa_test_leaf\""));
    CHECK(contains(json, "\"function\": \"pa_test_parent\""));
    CHECK(contains(json, "test_decode.c"));
    char addr[40];
    snprintf(addr, sizeof(addr), "\"address\": \"0x%" PRIx64 "\"", fr[0]);
    CHECK(contains(json, addr));
    /* bytes desc: the 500-byte stack first, then 100, then 9 */
    const char *p500 = strstr(json, "\"bytes\": 500"), *p100 = strstr(json, "\"bytes\": 100");
    const char *p9 = strstr(json, "\"bytes\": 9,");
    CHECK(p500 && p100 && p9 && p500 < p100 && p100 < p9);
    CHECK(contains(txt, "#1: 500 bytes in 1 objects"));
    CHECK(contains(txt, "#2: 100 bytes in 1 objects"));
    CHECK(contains(txt, "\n    pa_test_leaf (/"));
    CHECK(contains(txt, "/test_decode.c:"));
    CHECK(contains(txt, "\n    [unknown] (0x10)\n"));
    if (getenv("PA_KEEP"))
        printf("%s\n%s\n%s\n%s\n%s\n", json, txt, alloc, inuse, sum);
    CHECK(contains(inuse, "pa_test_parent;pa_test_leaf 100\n"));
    CHECK(contains(alloc, "pa_test_parent;pa_test_leaf 128\n"));
    CHECK(contains(alloc, "[unknown];[unknown] 500\n"));
    CHECK(contains(alloc, "[no stack] 9\n"));
    CHECK(contains(sum, "pid:       4242"));
    CHECK(contains(sum, "cut: no Goodbye"));
    CHECK(contains(sum, "live at end (leaked): 609 bytes in 3 objects"));
    CHECK(!contains(sum, "numbers are incomplete"));
    CHECK_STREQ(session_summary(s), sum);
    /* folded lines are sorted */
    CHECK(strstr(alloc, "[no stack]") < strstr(alloc, "[unknown]"));
    free(json);
    free(txt);
    free(alloc);
    free(inuse);
    free(sum);
    rm_dir(d);
    session_free(s);
    memset(stack_frames, 0, sizeof(stack_frames));
    free(b.p);
    free(r.p);
}

/* Reports after a fault and without a Hello still get written. */
TEST(test_reports_after_fault)
{
    buf_t b = {0};
    char d[] = "/tmp/pa-decode-XXXXXX";
    int rc;

    put(&b, "garbage!", 8);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, -EPROTO);
    CHECK(mkdtemp(d) != NULL);
    CHECK_EQ_U64(session_write_reports(s, d), 0);
    char *sum = slurp(d, "summary.txt"), *json = slurp(d, "leaks.json");
    CHECK(contains(sum, "no Hello received"));
    CHECK(contains(sum, "FAULT: stream offset 0: bad magic"));
    CHECK(contains(json, "\"exe\": null"));
    free(sum);
    free(json);
    rm_dir(d);
    session_free(s);
    free(b.p);
}

/* ---- livemap ------------------------------------------------------------------ */

TEST(test_livemap)
{
    enum { N = 20000 };
    livemap_t *m = livemap_new(0);
    static uint8_t present[N];
    static uint64_t ticks[N];
    size_t count = 0;
    uint64_t x = 88172645463325252ull;

    memset(present, 0, sizeof(present));
    for (int op = 0; op < 400000; op++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t i = (size_t)(x % N);
        uint64_t addr = 0x7f0000000000ull + 16 * i;
        live_entry_t *e = livemap_find(m, addr);
        CHECK((e != NULL) == present[i]);
        if (e) {
            CHECK_EQ_U64(e->ticks, ticks[i]);
            livemap_remove(m, e);
            present[i] = 0;
            count--;
        } else {
            live_entry_t ne = {.addr = addr, .ticks = x, .weight = 1, .stack_id = 1, .objects = 1};
            CHECK_EQ_U64(livemap_insert(m, &ne), 0);
            ticks[i] = x;
            present[i] = 1;
            count++;
        }
    }
    CHECK_EQ_U64(livemap_count(m), count);
    size_t pos = 0, seen = 0;
    for (const live_entry_t *e; (e = livemap_next(m, &pos));)
        seen++;
    CHECK_EQ_U64(seen, count);
    for (size_t i = 0; i < N; i++)
        CHECK((livemap_find(m, 0x7f0000000000ull + 16 * i) != NULL) == present[i]);
    livemap_free(m);

    /* Big enough for the mmap'ed (huge page) table path, grown twice. */
    m = livemap_new(0);
    for (uint64_t a = 1; a <= 300000; a++) {
        live_entry_t ne = {.addr = a * 48, .ticks = a};
        CHECK_EQ_U64(livemap_insert(m, &ne), 0);
    }
    for (uint64_t a = 1; a <= 300000; a++) {
        live_entry_t *e = livemap_find(m, a * 48);
        CHECK(e && e->ticks == a);
        if (e && a % 2)
            livemap_remove(m, e);
    }
    CHECK_EQ_U64(livemap_count(m), 150000);
    livemap_free(m);

    m = livemap_new(3);
    for (uint64_t a = 1; a <= 5; a++) {
        live_entry_t ne = {.addr = a * 16};
        int rc = livemap_insert(m, &ne);
        CHECK_EQ_U64(rc, a <= 3 ? 0 : -ENOSPC);
    }
    CHECK_EQ_U64(livemap_overflows(m), 2);
    livemap_free(NULL);
    livemap_free(m);
}

int main(void)
{
    RUN(test_totals);
    RUN(test_reorder_alloc_before_free);
    RUN(test_reorder_alloc_before_alloc);
    RUN(test_free_before_alloc);
    RUN(test_round_orders_threads);
    RUN(test_sampled);
    RUN(test_truncated_frame);
    RUN(test_oversized_frame);
    RUN(test_bad_magic);
    RUN(test_garbage);
    RUN(test_bad_rows);
    RUN(test_stream_rules);
    RUN(test_modules);
    RUN(test_max_live);
    RUN(test_chunking);
    RUN(test_reports);
    RUN(test_reports_after_fault);
    RUN(test_livemap);
    CHECK_DONE();
}
