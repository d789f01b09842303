/*
 * fuzz_decode.c — libFuzzer target for the collector's untrusted-input path:
 * stream framing, decode.c validation, session state and report writing.
 *
 * Each input is one stream.  It is fed twice, in one piece and in small
 * chunks whose sizes come from the input, and the two sessions must agree
 * (totals, error text): framing must not depend on how bytes arrive.  Then
 * the reports are written into a scratch directory.
 *
 * PA_FUZZ_MAKE_SEEDS=DIR: write a seed corpus (valid streams built with the
 * protobuf-c encoder) into DIR and exit; `make fuzz` does this first.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "perfagent.pb-c.h"
#include "session.h"
#include "testbuf.h"

static char scratch[256];
static const char *const report_files[] = {"leaks.json", "leaks.txt", "alloc.folded",
                                           "inuse.folded", "summary.txt"};

/* ---- seed corpus ------------------------------------------------------------ */

/* buf_t, put(), put_varint(), put_batch_frame(), enc_row(): tests/testbuf.h */

#define REC(var, kind, field, ptr)                                                                 \
    Perfagent__Record var = PERFAGENT__RECORD__INIT;                                               \
    var.body_case = PERFAGENT__RECORD__BODY_##kind;                                                \
    var.field = (ptr)

/* A plausible stream: Hello, modules, stacks, heap rows from two threads,
 * thread names, a snapshot, stats (two clock pairs) and, if `bye`, Goodbye.
 * `gap`: the last batch's seq skips one, so its delta rows are skipped. */
/* When set and there is no Goodbye, the stream ends with a Crash instead
 * (a SIGSEGV on stack 2, as the agent's fatal-signal handler sends it). */
static int seed_crash;

static void seed_stream(buf_t *b, uint64_t rate, int tsc, int bye, int gap)
{
    Perfagent__Config cfg = PERFAGENT__CONFIG__INIT;
    cfg.malloc_rate = rate;
    cfg.max_frames = 64;
    cfg.unwinder = "fp";
    char *argv[] = {"./app", "--flag"};
    Perfagent__Hello h = PERFAGENT__HELLO__INIT;
    h.protocol_version = 2;
    h.agent_version = "0.1.0";
    h.pid = 77;
    h.ppid = 1;
    h.exe = "/usr/bin/app";
    h.n_argv = 2;
    h.argv = argv;
    h.start_time_unix_ns = 1700000000000000000ull;
    h.start_mono_ns = 1000;
    h.clock = tsc ? PERFAGENT__CLOCK__CLOCK_TSC : PERFAGENT__CLOCK__CLOCK_MONOTONIC_NS;
    h.config = &cfg;
    Perfagent__Range rg = PERFAGENT__RANGE__INIT, *rgp = &rg;
    rg.start = 0x400000;
    rg.end = 0x480000;
    uint8_t bid[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    Perfagent__Module m0 = PERFAGENT__MODULE__INIT, m1 = PERFAGENT__MODULE__INIT;
    m0.path = "";
    m0.n_ranges = 1;
    m0.ranges = &rgp;
    m1.path = "/nonexistent/libfoo.so";
    m1.build_id.data = bid;
    m1.build_id.len = sizeof(bid);
    m1.load_bias = 0x7f0000000000ull;
    Perfagent__Module *mp[2] = {&m0, &m1};
    Perfagent__ModuleMap mm = PERFAGENT__MODULE_MAP__INIT;
    mm.full = 1;
    mm.n_modules = 2;
    mm.modules = mp;
    uint64_t f1[3] = {0x401010, 0x402020, 0x403030}, f2[2] = {0x401050, 0x7f0000001234ull};
    Perfagent__StackDef s1 = PERFAGENT__STACK_DEF__INIT, s2 = PERFAGENT__STACK_DEF__INIT;
    s1.id = 1;
    s1.n_frames = 3;
    s1.frames = f1;
    s2.id = 2;
    s2.n_frames = 2;
    s2.frames = f2;
    s2.truncated = 1;
    REC(r0, HELLO, hello, &h);
    REC(r1, MODULES, modules, &mm);
    REC(r2, STACK, stack, &s1);
    REC(r3, STACK, stack, &s2);
    Perfagent__Record *hdr[4] = {&r0, &r1, &r2, &r3};
    put(b, PA_WIRE_MAGIC, PA_WIRE_MAGIC_LEN);
    put_batch_frame(b, 0, 0, hdr, 4);

    buf_t rows = {0};
    uint64_t kind = rate == 1 ? 1 : 3;
    /* a sync row first, deltas after (PA_WIRE_SYNC_ROWS is far off) */
    renc_t p77 = {.every = 1024}, p78 = {.every = 1024};
    for (uint64_t i = 0; i < 6; i++)
        enc_row(&rows, &p77, kind, 0x10000 + 16 * (i ^ 3), 24 + i, i % 3, 2000 + i, rate);
    enc_row(&rows, &p77, 2, 0x10000, 0, 0, 2100, 0);
    Perfagent__HeapEvents he = PERFAGENT__HEAP_EVENTS__INIT;
    he.tid = 77;
    he.rows.data = rows.p;
    he.rows.len = rows.n;
    he.count = 7;
    Perfagent__ThreadInfo ti = PERFAGENT__THREAD_INFO__INIT;
    ti.tid = 78;
    ti.name = "worker";
    /* CPU samples (leaf_is_pc would be set on their stacks; the decoder
     * checks lengths and ids whoever reads them) */
    uint32_t cids[3] = {1, 2, 0};
    uint64_t cns[3] = {5000, 6000, 7000};
    Perfagent__CpuSamples cs = PERFAGENT__CPU_SAMPLES__INIT;
    cs.tid = 78;
    cs.n_stack_id = cs.n_time_ns = 3;
    cs.stack_id = cids;
    cs.time_ns = cns;
    cs.period_ns = 1001001;
    cs.thread_cpu_ns = 3003003;
    REC(r4, HEAP, heap, &he);
    REC(r5, THREAD, thread, &ti);
    REC(r5c, CPU, cpu, &cs);
    Perfagent__Record *mid[3] = {&r4, &r5, &r5c};
    put_batch_frame(b, 1, 0, mid, 3);

    rows.n = 0;
    /* the other thread frees a block of the first, then reuses it */
    enc_row(&rows, &p78, 2, 0x10010, 0, 0, 2200, 0);
    enc_row(&rows, &p78, kind, 0x10010, 100, 1, 2300, rate);
    enc_row(&rows, &p78, 2, 0x10010, 0, 0, 2290, 0);
    he.tid = 78;
    he.rows.data = rows.p;
    he.rows.len = rows.n;
    he.count = 3;
    buf_t more = {0}; /* the first thread again: deltas from its last row */
    enc_row(&more, &p77, kind, 0x10030, 40, 2, 2400, rate);
    enc_row(&more, &p77, 2, 0x10020, 0, 0, 2410, 0);
    Perfagent__HeapEvents he2 = PERFAGENT__HEAP_EVENTS__INIT;
    he2.tid = 77;
    he2.rows.data = more.p;
    he2.rows.len = more.n;
    he2.count = 2;
    Perfagent__SnapshotMarker sm = PERFAGENT__SNAPSHOT_MARKER__INIT;
    sm.id = 1;
    sm.label = "checkpoint";
    sm.ticks = 2250;
    Perfagent__ClockSync c0 = PERFAGENT__CLOCK_SYNC__INIT, c1 = PERFAGENT__CLOCK_SYNC__INIT;
    c0.ticks = 1500;
    c0.mono_ns = 1500;
    c1.ticks = 3000;
    c1.mono_ns = 2500;
    Perfagent__AgentStats st0 = PERFAGENT__AGENT_STATS__INIT, st1 = PERFAGENT__AGENT_STATS__INIT;
    st0.clock = &c0;
    st1.clock = &c1;
    st1.records = 9;
    st1.drops_buffer_full = 1;
    Perfagent__Goodbye g = PERFAGENT__GOODBYE__INIT;
    g.end_time_unix_ns = h.start_time_unix_ns + 2000000;
    Perfagent__ThreadInfo gone = PERFAGENT__THREAD_INFO__INIT;
    gone.tid = 78;
    gone.exited = 1;
    REC(r6, STATS, stats, &st0);
    REC(r7, HEAP, heap, &he);
    REC(r8, HEAP, heap, &he2);
    REC(r9, THREAD, thread, &gone);
    REC(r10, SNAPSHOT, snapshot, &sm);
    REC(r11, STATS, stats, &st1);
    REC(r12, GOODBYE, goodbye, &g);
    Perfagent__Crash cr = PERFAGENT__CRASH__INIT;
    cr.signo = 11;
    cr.code = 1;
    cr.tid = 77;
    cr.stack_id = 2;
    cr.ticks = 2900;
    cr.mono_ns = 2450;
    cr.signal_name = "SIGSEGV";
    REC(r13, CRASH, crash, &cr);
    Perfagent__Record *tail[7] = {&r6, &r7, &r8, &r9, &r10, &r11, bye ? &r12 : &r13};
    put_batch_frame(b, gap ? 3 : 2, 0, tail, bye || seed_crash ? 7 : 6);
    free(rows.p);
    free(more.p);
}

/* A stream of the typed events: libpq connects, queries (one failing), a
 * close; socket connections, an HTTP request/response, a DNS lookup and a
 * wait, each with a stack. */
static void seed_events(buf_t *b)
{
    Perfagent__Config cfg = PERFAGENT__CONFIG__INIT;
    cfg.max_frames = 64;
    cfg.unwinder = "cfi";
    Perfagent__Hello h = PERFAGENT__HELLO__INIT;
    h.protocol_version = 2;
    h.agent_version = "0.1.0";
    h.pid = 90;
    h.exe = "/usr/bin/client";
    h.start_time_unix_ns = 1700000000000000000ull;
    h.start_mono_ns = 1000;
    h.config = &cfg;
    uint64_t f1[2] = {0x401010, 0x402020};
    Perfagent__StackDef s1 = PERFAGENT__STACK_DEF__INIT;
    s1.id = 1;
    s1.n_frames = 2;
    s1.frames = f1;
    REC(r0, HELLO, hello, &h);
    REC(r1, STACK, stack, &s1);

    Perfagent__QueryEvent q[4];
    static const uint32_t qkind[4] = {1, 0, 0, 2};
    static const char *const qtext[4] = {"", "SELECT name FROM items WHERE id = $1",
                                         "INSERT INTO nope VALUES ($1)", ""};
    static const char *const qop[4] = {"CONNECT", "SELECT", "INSERT", "CLOSE"};
    for (int i = 0; i < 4; i++) {
        q[i] = (Perfagent__QueryEvent)PERFAGENT__QUERY_EVENT__INIT;
        q[i].tid = 90;
        q[i].kind = qkind[i];
        q[i].text = (char *)qtext[i];
        q[i].operation = (char *)qop[i];
        q[i].conn_id = 1;
        q[i].database = "app";
        q[i].user = "me";
        q[i].peer = "/tmp:5432";
        q[i].stack_id = 1;
        q[i].start_mono_ns = 2000 + 1000 * (uint64_t)i;
        q[i].start_ticks = q[i].start_mono_ns;
        q[i].duration_ns = 500 + 100 * (uint64_t)i;
        q[i].rows = i == 1 ? 1 : 0;
        q[i].params_hash = i == 1 ? 0x1234 : 0;
    }
    q[2].sqlstate = "42P01";
    q[2].error = "42P01 relation \"nope\" does not exist";

    Perfagent__SocketErrno e = PERFAGENT__SOCKET_ERRNO__INIT, *ep = &e;
    e.code = 104; /* ECONNRESET */
    e.count = 2;
    Perfagent__SocketEvent n[4];
    static const char *const nop[4] = {"conn", "http", "dns", "wait"};
    for (int i = 0; i < 4; i++) {
        n[i] = (Perfagent__SocketEvent)PERFAGENT__SOCKET_EVENT__INIT;
        n[i].tid = 90;
        n[i].op = (char *)nop[i];
        n[i].peer = i == 2 ? "example.invalid" : "127.0.0.1:8080";
        n[i].stack_id = 1;
        n[i].start_ticks = 6000 + 1000 * (uint64_t)i;
        n[i].duration_ns = 300 + (uint64_t)i;
    }
    n[0].role = PERFAGENT__SOCKET_ROLE__ROLE_CLIENT;
    n[0].transport = "tcp";
    n[0].local = "127.0.0.1:40000";
    n[0].bytes_sent = 77;
    n[0].bytes_received = 1234;
    n[0].calls_send = 1;
    n[0].calls_recv = 3;
    n[0].connect_ns = 90;
    n[0].opened = n[0].closed = 1;
    n[0].n_errors = 1;
    n[0].errors = &ep;
    n[1].role = PERFAGENT__SOCKET_ROLE__ROLE_CLIENT;
    n[1].http_method = "GET";
    n[1].http_target = "/index.html";
    n[1].http_status = 200;
    n[1].http_request_bytes = 77;
    n[1].http_response_bytes = 1234;
    n[2].error = -2; /* EAI_NONAME */
    n[3].call = "poll";

    Perfagent__Record rq[4], rn[4];
    for (int i = 0; i < 4; i++) {
        rq[i] = (Perfagent__Record)PERFAGENT__RECORD__INIT;
        rq[i].body_case = PERFAGENT__RECORD__BODY_QUERY;
        rq[i].query = &q[i];
        rn[i] = (Perfagent__Record)PERFAGENT__RECORD__INIT;
        rn[i].body_case = PERFAGENT__RECORD__BODY_SOCKET;
        rn[i].socket = &n[i];
    }
    Perfagent__Goodbye g = PERFAGENT__GOODBYE__INIT;
    g.end_time_unix_ns = h.start_time_unix_ns + 20000;
    REC(rg, GOODBYE, goodbye, &g);
    Perfagent__Record *all[11] = {&r0, &r1, &rq[0], &rq[1], &rq[2], &rq[3],
                                  &rn[0], &rn[1], &rn[2], &rn[3], &rg};
    put(b, PA_WIRE_MAGIC, PA_WIRE_MAGIC_LEN);
    put_batch_frame(b, 0, 0, all, 2);
    put_batch_frame(b, 1, 0, all + 2, 9);
}

static void write_seed(const char *dir, const char *name, const buf_t *b)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->p, 1, b->n, f) != b->n || fclose(f) != 0) {
        fprintf(stderr, "fuzz_decode: cannot write %s\n", path);
        exit(1);
    }
}

static void make_seeds(const char *dir)
{
    buf_t b = {0};
    mkdir(dir, 0755);
    seed_stream(&b, 1, 0, 1, 0);
    write_seed(dir, "exact", &b);
    b.n = 0;
    seed_stream(&b, 512 * 1024, 1, 1, 0);
    write_seed(dir, "sampled-tsc", &b);
    b.n = 0;
    seed_stream(&b, 1, 0, 1, 1);
    write_seed(dir, "seq-gap", &b);
    b.n = 0;
    seed_crash = 1;
    seed_stream(&b, 1, 1, 0, 0);
    write_seed(dir, "crash", &b);
    seed_crash = 0;
    b.n = 0;
    seed_stream(&b, 1, 1, 0, 0);
    write_seed(dir, "cut", &b);
    b.n -= 3;
    write_seed(dir, "truncated", &b);
    b.n = 8;
    write_seed(dir, "magic-only", &b);
    b.n = 0;
    seed_events(&b);
    write_seed(dir, "events", &b);
    free(b.p);
}

/* ---- the target ---------------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void cleanup(void)
{
    char path[512];
    for (size_t i = 0; i < sizeof(report_files) / sizeof(report_files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", scratch, report_files[i]);
        unlink(path);
    }
    rmdir(scratch);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *seeds = getenv("PA_FUZZ_MAKE_SEEDS");
    if (seeds) {
        make_seeds(seeds);
        exit(0);
    }
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(scratch, sizeof(scratch), "%s/pa-fuzz-%d", base, (int)getpid());
    atexit(cleanup);
    return 0;
}

/* Small caps so hostile ids and counts hit the limits quickly. */
static session_t *new_session(void)
{
    session_opts_t o = {.peer = "fuzz", .max_stacks = 4096, .max_live = 1024, .max_threads = 8};
    session_t *s = session_new(&o);
    if (!s)
        abort();
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    session_t *whole = new_session(), *chunked = new_session();
    session_totals_t tw, tc;

    int rw = session_feed(whole, data, size);
    int ew = session_end(whole);

    /* Chunk sizes 1..16 taken from the input itself, cycling. */
    int rc = 0;
    for (size_t off = 0, i = 0; off < size && rc == 0; i++) {
        size_t n = (size_t)(data[i % size] & 15) + 1;
        if (n > size - off)
            n = size - off;
        rc = session_feed(chunked, data + off, n);
        off += n;
    }
    int ec = session_end(chunked);

    /* How bytes arrive must not change what was decoded. */
    session_get_totals(whole, &tw);
    session_get_totals(chunked, &tc);
    const char *errw = session_error(whole), *errc = session_error(chunked);
    if ((rw < 0 ? rw : ew) != (rc < 0 ? rc : ec) || memcmp(&tw, &tc, sizeof(tw)) != 0 ||
        (errw == NULL) != (errc == NULL) || (errw && strcmp(errw, errc) != 0)) {
        fprintf(stderr, "fuzz_decode: chunked feed differs: %s | %s\n", errw ? errw : "-",
                errc ? errc : "-");
        __builtin_trap();
    }
    /* Live totals must never exceed what was allocated in exact terms. */
    if (tw.live_blocks > tw.allocs + tw.samples)
        __builtin_trap();

    if (session_write_reports(whole, scratch) < 0 || !session_summary(whole))
        __builtin_trap();
    cleanup(); /* libFuzzer may end with _Exit: leave nothing behind */
    session_free(whole);
    session_free(chunked);
    return 0;
}
