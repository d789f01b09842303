/*
 * streams.h — builds perfagent streams for the collector's unit tests:
 * frames, Hello/ModuleMap/StackDef headers, hand-made HeapEvents rows
 * (sync and delta rows as the agent writes them), and a session fed from the
 * result.  Static helpers and state, one copy per test program.
 */
#ifndef PA_TEST_STREAMS_H
#define PA_TEST_STREAMS_H

/* Each test program uses some of these. */
#define UNUSED __attribute__((unused))

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

/* buf_t, put(), put_varint(), put_batch_frame(), put_row(), enc_row():
 * tests/testbuf.h */

static UNUSED void put_magic(buf_t *b)
{
    put(b, PA_WIRE_MAGIC, PA_WIRE_MAGIC_LEN);
}

/* Every frame ends a drain round unless a test says otherwise: then the
 * rows of each batch are applied as they come, which exercises the
 * collector's rules for rows that cross rounds out of order. */
static UNUSED int g_round_end = 1;

/* One frame holding a Batch of the given records. */
static UNUSED void put_frame(buf_t *b, uint64_t seq, Perfagent__Record **recs, size_t n)
{
    put_batch_frame(b, seq, g_round_end, recs, n);
}

/* Sync (absolute) rows: each stands alone, as every row did in protocol 1. */
static UNUSED void row_alloc(buf_t *r, uint64_t addr, uint64_t size, uint32_t stack, uint64_t ticks)
{
    put_row(r, PA_WIRE_ROW_ALLOC | SYNC, addr, size, stack, ticks, 0);
}

static UNUSED void row_free(buf_t *r, uint64_t addr, uint64_t ticks)
{
    put_row(r, PA_WIRE_ROW_FREE | SYNC, addr, 0, 0, ticks, 0);
}

static UNUSED void row_sample(buf_t *r, uint64_t addr, uint64_t size, uint32_t stack,
                              uint64_t ticks, uint64_t weight)
{
    put_row(r, PA_WIRE_ROW_SAMPLE | SYNC, addr, size, stack, ticks, weight);
}

/* Frames of the stacks the standard header defines: stack id i has frames
 * {0x401000 + 16 i, 0x402000}.  Overridable for the symbolization test. */
static UNUSED uint64_t stack_frames[8][2];
static UNUSED int use_real_module;
static UNUSED modinfo_t mod; /* this program, as the agent would declare it */

/* Hello.protocol_version of put_header */
static UNUSED uint32_t g_protocol = PA_WIRE_PROTOCOL_VERSION;

/* magic + frame seq 0: Hello (malloc_rate), ModuleMap, StackDefs 1..nstacks. */
static UNUSED void put_header(buf_t *b, uint64_t rate, uint32_t nstacks)
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

static UNUSED void put_heap(buf_t *b, uint64_t seq, uint32_t tid, const buf_t *rows, uint32_t count)
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

static UNUSED void put_stats_goodbye(buf_t *b, uint64_t seq, uint64_t drops_full)
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
static UNUSED session_t *feed(const buf_t *b, size_t chunk, int *rc_feed,
                              const session_opts_t *opts)
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

static UNUSED void stack_totals(session_t *s, uint32_t id, uint64_t v[4])
{
    memset(v, 0xff, 4 * sizeof(*v));
    CHECK(session_stack_totals(s, id, &v[0], &v[1], &v[2], &v[3]) == 0);
}

static UNUSED int contains(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

static UNUSED char *slurp(const char *dir, const char *name)
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

static UNUSED const char *report_files[] = {"leaks.json", "leaks.txt", "alloc.folded",
                                            "inuse.folded", "summary.txt"};

static UNUSED void rm_dir(const char *dir)
{
    char path[4200];
    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, report_files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* Standard exact-mode stream: stacks 1..3, one thread. */
static UNUSED size_t build_basic(buf_t *b)
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

#endif
