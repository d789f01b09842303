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

#include "decode.h"
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

/* Rows, as the protocol spells them: a tag (kind, + 8 for a sync row), then
 * varints; in a delta row addr and ticks are zigzag'ed differences from the
 * thread's previous row. */
#define SYNC 8

static uint64_t zz(uint64_t d)
{
    return (d << 1) ^ (0 - (d >> 63));
}

static void put_row(buf_t *r, uint64_t tag, uint64_t addr, uint64_t size, uint32_t stack,
                    uint64_t ticks, uint64_t weight)
{
    put_varint(r, tag);
    put_varint(r, addr);
    if ((tag & 7) != 2) {
        put_varint(r, size);
        put_varint(r, stack);
    }
    put_varint(r, ticks);
    if ((tag & 7) == 3)
        put_varint(r, weight);
}

/* Sync (absolute) rows: each stands alone, as every row did in protocol 1. */
static void row_alloc(buf_t *r, uint64_t addr, uint64_t size, uint32_t stack, uint64_t ticks)
{
    put_row(r, 1 | SYNC, addr, size, stack, ticks, 0);
}

static void row_free(buf_t *r, uint64_t addr, uint64_t ticks)
{
    put_row(r, 2 | SYNC, addr, 0, 0, ticks, 0);
}

static void row_sample(buf_t *r, uint64_t addr, uint64_t size, uint32_t stack, uint64_t ticks,
                       uint64_t weight)
{
    put_row(r, 3 | SYNC, addr, size, stack, ticks, weight);
}

/* One thread's rows the way the agent writes them: a sync row first and then
 * every `every` rows, deltas in between. */
typedef struct renc {
    uint64_t addr, ticks;
    unsigned left, every;
} renc_t;

static void enc_row(buf_t *r, renc_t *e, unsigned kind, uint64_t addr, uint64_t size,
                    uint32_t stack, uint64_t ticks, uint64_t weight)
{
    if (!e->left)
        put_row(r, kind | SYNC, addr, size, stack, ticks, weight);
    else
        put_row(r, kind, zz(addr - e->addr), size, stack, zz(ticks - e->ticks), weight);
    e->left = e->left ? e->left - 1 : e->every - 1;
    e->addr = addr;
    e->ticks = ticks;
}

/* Frames of the stacks the standard header defines: stack id i has frames
 * {0x401000 + 16 i, 0x402000}.  Overridable for the symbolization test. */
static uint64_t stack_frames[8][2];
static int use_real_module;
static modinfo_t mod; /* this program, as the agent would declare it */

/* magic + frame seq 0: Hello (malloc_rate), ModuleMap, StackDefs 1..nstacks. */
static uint32_t g_protocol = 2; /* Hello.protocol_version of put_header */

static void put_header(buf_t *b, uint64_t rate, uint32_t nstacks)
{
    Perfagent__Config cfg = PERFAGENT__CONFIG__INIT;
    cfg.malloc_rate = rate;
    cfg.max_frames = 64;
    cfg.unwinder = "fp";
    char *argv[] = {"./app", "-x", "we\"ird\n"};
    Perfagent__Hello h = PERFAGENT__HELLO__INIT;
    h.protocol_version = g_protocol;
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
    Perfagent__Batch batch = PERFAGENT__BATCH__INIT;
    batch.seq = seq;
    batch.n_records = n;
    batch.records = recs;
    size_t len = perfagent__batch__get_packed_size(&batch);
    uint8_t *tmp = malloc(len ? len : 1);
    perfagent__batch__pack(&batch, tmp);
    int rc = decode_frame(d, tmp, len, 0);
    free(tmp);
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
    static const uint64_t addrs[] = {1, UINT64_MAX, 1, UINT64_C(0x8000000000000001), 1,
                                     UINT64_C(0x8000000000000000), UINT64_MAX, 2,
                                     UINT64_C(0x7fffffffffffffff), UINT64_C(0x8000000000000000)};
    static const uint64_t ticks[] = {0, UINT64_MAX, 0, UINT64_C(1) << 63, 0,
                                     UINT64_MAX, (UINT64_C(1) << 63) - 1, UINT64_MAX, 5, 4};
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
            wrong += c.n != before + 1 || !same_row(&c.rows[before], 2, 0x10000 + tid, 0, 0,
                                                    tid + 1, 0);
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
                                       "unknown tag 4", "unknown tag 0", "unknown tag 16",
                                       "unknown tag 137"};
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
    RUN(test_delta_rows);
    RUN(test_delta_zigzag_extremes);
    RUN(test_delta_before_sync);
    RUN(test_delta_forget);
    RUN(test_delta_table_bound);
    RUN(test_delta_malformed);
    RUN(test_protocol_version);
    RUN(test_reports);
    RUN(test_reports_after_fault);
    RUN(test_livemap);
    CHECK_DONE();
}
