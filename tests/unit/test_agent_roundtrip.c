/*
 * test_agent_roundtrip.c — the agent's encoders into the collector's
 * decoder, for every record kind: heap rows written by the hot path's own
 * encoders (agent/rows.h) into a real ring that wraps, cut and framed the
 * way the sender does it (rows.c, encode.c: the rows go out as ring bytes),
 * and the sender's record builders (records.c: Hello, ModuleMap, StackDef,
 * ThreadInfo, CpuSamples, AgentStats, Goodbye).  The frames go through the
 * collector's stream parser (magic, length prefix) and decoder (libcollector.a),
 * and what comes out must equal what went in.
 *
 * The agent files are compiled into this program (tests/tests.mk); what they
 * call from the rest of the agent (options, init, clock, modules, threads,
 * the sender's flush) is stubbed below with known values.
 */
#include "check.h"
#include "decode.h"
#include "encode.h"
#include "internal.h"
#include "records.h"
#include "event.h"
#include "rows.h"
#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

/* ---- stubs for the agent's other files ------------------------------------ */

PA_HIDDEN pa_config_t pa_cfg = {.malloc_rate = 1, .max_frames = 64, .buffer_kb = 4,
                                .unwinder = PA_UNWIND_CFI, .out_kind = PA_OUT_FILE,
                                .out_path = "/tmp/rt.pfr", .exe = "/usr/bin/rt"};
PA_HIDDEN int pa_unwind_strict;
PA_HIDDEN pa_stats_t pa_stats;
PA_HIDDEN int pa_clock_tsc;
static uint64_t fake_ns = 1000;

/* clock_hook: called with each reading (test_stack_wait moves time on
 * and publishes a stack from it, as a preempted thread would meanwhile). */
static void (*clock_hook)(void);
uint64_t pa_mono_ns(void)
{
    if (clock_hook)
        clock_hook();
    return fake_ns;
}
uint64_t pa_real_ns(void) { return 1700000000000000000ull; }
int pa_clock_is_tsc(void) { return 0; }
uint32_t pa_pid(void) { return 4242; }
uint32_t pa_parent_stream_pid(void) { return 17; }
uint64_t pa_start_mono_ns(void) { return 500; }
uint64_t pa_start_real_ns(void) { return 1699999999000000000ull; }
const char *pa_cpu_mechanism(void) { return "perf_event test"; }
unsigned pa_cpu_stack_bytes(void) { return 8192; }
void pa_cpu_stats(pa_cpu_stats_t *out)
{
    *out = (pa_cpu_stats_t){.samples = 11, .lost = 12, .truncated = 13, .no_regs = 14,
                            .stack_table = 15, .throttled = 16, .signals = 17, .overruns = 18};
}
void pa_log(int level, const char *first, ...) { (void)level, (void)first; }
void pa_log_num(int level, const char *msg, uint64_t v, const char *tail)
{
    (void)level, (void)msg, (void)v, (void)tail;
}

/* One module, as modules.c would hand it over. */
static const uint8_t mod_bid[20] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6,
                                    7,    8,    9,    10,   11, 12, 13, 14, 15, 16};
static const uint64_t mod_ranges[2][2] = {{0x400000, 0x401000}, {0x600000, 0x602000}};
static int modules_left = 1;
void pa_modules_refresh(int force) { (void)force; }
int pa_modules_pending(void) { return modules_left; }
int pa_modules_take(void (*fn)(void *ctx, const char *path, const uint8_t *bid, unsigned bid_len,
                               uint64_t bias, const uint64_t (*ranges)[2], unsigned nranges,
                               int full),
                    void *ctx)
{
    if (modules_left) {
        fn(ctx, "/opt/app/libx.so", mod_bid, sizeof(mod_bid), 0x7f0000000000ull, mod_ranges, 2,
           1);
        modules_left = 0;
    }
    return 0;
}

/* Thread slots: the test's own. */
static pa_thread_t slots[2];
unsigned pa_thread_count(void) { return 2; }
/* event.c's: the tests set pa_tls.thr themselves */
pa_thread_t *pa_thread_acquire(pa_tls_t *t) { (void)t; return NULL; }
PA_HIDDEN _Atomic int pa_agent_on;
PA_HIDDEN _Atomic int pa_need_sender;
int pa_sender_start(void) { return 0; }
PA_HIDDEN PA_TLS pa_tls_t pa_tls;
pa_thread_t *pa_thread_slot(unsigned i) { return &slots[i]; }

/* A full ring: no sender to wait for (ring.c's pa_ring_wait counts the
 * case in pa_wait_stats[3]), the row is dropped and counted by ring.h,
 * which is what the full-ring test checks. */
int pa_sender_running(void) { return 0; }
int pa_sender_output_ok(void) { return 0; }
PA_HIDDEN _Atomic uint64_t pa_sender_write_start;
#define ring_waits atomic_load(&pa_wait_stats[3])
void pa_sender_wake(void) {}

/* ---- the collector's side: everything decoded, copied ---------------------- */

#define MAX_ROWS 40000
typedef struct got {
    heap_row_t rows[MAX_ROWS];
    uint32_t row_tid[MAX_ROWS];
    size_t nrows;
    int hello;
    uint32_t hello_pid, hello_parent, hello_version, cfg_rate, cfg_frames, cfg_buffer_kb;
    char hello_exe[64], hello_argv0[256], cfg_unwinder[16], cfg_mech[32], cfg_output[64];
    size_t hello_argc;
    int modules;
    char mod_path[64];
    uint64_t mod_bias, mod_ranges[4][2];
    size_t mod_nranges, mod_bid_len;
    uint8_t mod_bid[20];
    int mod_full;
    unsigned nstacks;
    uint32_t stack_id[64];
    uint64_t stack_frames[64][8];
    size_t stack_n[64];
    int stack_leaf_pc[64], stack_trunc[64];
    unsigned nthreads;
    uint32_t thread_tid[8];
    char thread_name[8][16];
    int thread_exited[8];
    unsigned ncpu;
    uint32_t cpu_tid;
    uint32_t cpu_sid[64];
    uint64_t cpu_ns[64], cpu_period, cpu_thread_ns;
    size_t cpu_n;
    int stats;
    Perfagent__AgentStats st;
    uint64_t st_clock_mono;
    int goodbye, goodbye_code;
    unsigned round_ends;
    uint64_t round_start_ticks; /* the last round_end's */
    unsigned nquery;
    char query_text[4][64];
    uint64_t query_dur[4], query_rows[4];
    uint32_t query_tid[4], query_sid[4];
} got_t;

static got_t *g;

static int on_hello(void *ctx, const Perfagent__Hello *h)
{
    (void)ctx;
    g->hello++;
    g->hello_pid = h->pid;
    g->hello_parent = h->parent_stream_pid;
    g->hello_version = h->protocol_version;
    snprintf(g->hello_exe, sizeof(g->hello_exe), "%s", h->exe);
    g->hello_argc = h->n_argv;
    snprintf(g->hello_argv0, sizeof(g->hello_argv0), "%s", h->n_argv ? h->argv[0] : "");
    if (h->config) {
        g->cfg_rate = (uint32_t)h->config->malloc_rate;
        g->cfg_frames = h->config->max_frames;
        g->cfg_buffer_kb = h->config->buffer_kb;
        snprintf(g->cfg_unwinder, sizeof(g->cfg_unwinder), "%s", h->config->unwinder);
        snprintf(g->cfg_mech, sizeof(g->cfg_mech), "%s", h->config->cpu_mechanism);
        snprintf(g->cfg_output, sizeof(g->cfg_output), "%s", h->config->output);
    }
    return 0;
}

static int on_modules(void *ctx, const Perfagent__ModuleMap *m)
{
    (void)ctx;
    g->modules++;
    g->mod_full = m->full;
    if (m->n_modules == 1) {
        const Perfagent__Module *mo = m->modules[0];
        snprintf(g->mod_path, sizeof(g->mod_path), "%s", mo->path);
        g->mod_bias = mo->load_bias;
        g->mod_bid_len = mo->build_id.len;
        memcpy(g->mod_bid, mo->build_id.data, mo->build_id.len < 20 ? mo->build_id.len : 20);
        g->mod_nranges = mo->n_ranges;
        for (size_t i = 0; i < mo->n_ranges && i < 4; i++) {
            g->mod_ranges[i][0] = mo->ranges[i]->start;
            g->mod_ranges[i][1] = mo->ranges[i]->end;
        }
    }
    return 0;
}

static int on_stack(void *ctx, const Perfagent__StackDef *sd)
{
    (void)ctx;
    unsigned i = g->nstacks++;
    if (i >= 64)
        return 0;
    g->stack_id[i] = sd->id;
    g->stack_n[i] = sd->n_frames;
    for (size_t k = 0; k < sd->n_frames && k < 8; k++)
        g->stack_frames[i][k] = sd->frames[k];
    g->stack_leaf_pc[i] = sd->leaf_is_pc;
    g->stack_trunc[i] = sd->truncated;
    return 0;
}

static int on_heap(void *ctx, uint32_t tid, const heap_row_t *rows, size_t n)
{
    (void)ctx;
    for (size_t i = 0; i < n && g->nrows < MAX_ROWS; i++) {
        g->row_tid[g->nrows] = tid;
        g->rows[g->nrows++] = rows[i];
    }
    return 0;
}

static int on_thread(void *ctx, const Perfagent__ThreadInfo *t)
{
    (void)ctx;
    unsigned i = g->nthreads++;
    if (i < 8) {
        g->thread_tid[i] = t->tid;
        snprintf(g->thread_name[i], sizeof(g->thread_name[i]), "%s", t->name);
        g->thread_exited[i] = t->exited;
    }
    return 0;
}

static int on_cpu(void *ctx, const Perfagent__CpuSamples *cs)
{
    (void)ctx;
    g->ncpu++;
    g->cpu_tid = cs->tid;
    g->cpu_n = cs->n_stack_id;
    for (size_t i = 0; i < cs->n_stack_id && i < 64; i++) {
        g->cpu_sid[i] = cs->stack_id[i];
        g->cpu_ns[i] = cs->time_ns[i];
    }
    g->cpu_period = cs->period_ns;
    g->cpu_thread_ns = cs->thread_cpu_ns;
    return 0;
}

static int on_query(void *ctx, const Perfagent__QueryEvent *q)
{
    (void)ctx;
    unsigned i = g->nquery++;
    if (i < 4) {
        snprintf(g->query_text[i], sizeof(g->query_text[i]), "%s", q->text);
        g->query_dur[i] = q->duration_ns;
        g->query_rows[i] = q->rows;
        g->query_tid[i] = q->tid;
        g->query_sid[i] = q->stack_id;
    }
    return 0;
}

static int on_stats(void *ctx, const Perfagent__AgentStats *st)
{
    (void)ctx;
    g->stats++;
    g->st = *st;
    g->st.clock = NULL;
    g->st_clock_mono = st->clock ? st->clock->mono_ns : 0;
    return 0;
}

static int on_goodbye(void *ctx, const Perfagent__Goodbye *gb)
{
    (void)ctx;
    g->goodbye++;
    g->goodbye_code = gb->exit_code;
    return 0;
}

static int on_round_end(void *ctx, uint64_t round_start_ticks)
{
    (void)ctx;
    g->round_ends++;
    g->round_start_ticks = round_start_ticks;
    return 0;
}

/* ---- the pipe: batch -> frame bytes -> stream parser -> decoder ------------ */

static pa_enc_t enc;
static decoder_t *dec;
static stream_t *stm;
static uint64_t frames_fed;
static int feed_rc;

static int on_frame(void *ctx, const uint8_t *frame, size_t len, uint64_t off, uint64_t body_off)
{
    (void)ctx, (void)off;
    frames_fed++;
    return decode_frame(dec, frame, len, body_off);
}

static void pipe_open(void)
{
    static const decode_sink_t sink = {
        .hello = on_hello, .modules = on_modules, .stack = on_stack, .heap = on_heap,
        .thread = on_thread, .cpu = on_cpu, .stats = on_stats, .goodbye = on_goodbye,
        .query = on_query,
        .round_end = on_round_end};
    memset(g, 0, sizeof(*g));
    decode_free(dec);
    stream_free(stm);
    dec = decode_new(NULL, &sink);
    stm = stream_new(on_frame, NULL, 0);
    frames_fed = 0;
    feed_rc = 0;
    if (!dec || !stm)
        abort();
    feed_rc = stream_feed(stm, (const uint8_t *)PA_WIRE_MAGIC, PA_WIRE_MAGIC_LEN);
    pa_enc_reset(&enc);
    enc.seq = 0;
}

/* What the sender's flush_batch does, with the stream parser for an output:
 * close the frame, write its iovecs, then give the rows' ring space back. */
static void flush(int round_end)
{
    size_t len;
    enc.round_end = round_end;
    enc.round_start_ticks = round_end ? 0xfedcba9876ull : 0; /* as the sender sets it */
    len = pa_enc_frame(&enc);
    if (len) {
        uint8_t *buf = malloc(len), *p = buf;
        size_t total = 0;
        for (unsigned i = 0; i < enc.niov; i++) {
            memcpy(p, enc.iov[i].iov_base, enc.iov[i].iov_len);
            p += enc.iov[i].iov_len;
            total += enc.iov[i].iov_len;
        }
        CHECK_EQ_U64(total, len);
        if (feed_rc == 0)
            feed_rc = stream_feed(stm, buf, len);
        if (feed_rc != 0)
            printf("  decode: %s\n", decode_error(dec) ? decode_error(dec) : "(stream)");
        free(buf);
    }
    for (unsigned i = 0; i < enc.nheap; i++)
        atomic_store(&enc.heaps[i].thr->ring.tail, enc.heaps[i].from + enc.heaps[i].len);
    pa_enc_reset(&enc);
}

/* The sender's room(): flush when the batch is full. */
int pa_sender_room(pa_enc_t *e, size_t bytes)
{
    if (pa_enc_fits(e, bytes))
        return 0;
    flush(0);
    return pa_enc_fits(e, bytes) ? 0 : -1;
}

/* The sender's drain_thread: rows [drained, head) go into the batch as ring
 * pieces, cut at a row boundary after at most `chunk` bytes (the sender cuts
 * at PA_ROWS_CHUNK; small here, so cuts fall everywhere). */
static unsigned cuts; /* backlogs cut at a row boundary */
static void drain(pa_thread_t *thr, size_t chunk)
{
    uint64_t head = atomic_load(&thr->ring.head);
    while (thr->drained < head) {
        size_t avail = head - thr->drained, take = avail < chunk ? avail : chunk;
        uint64_t nrows = 0;
        if (take < avail) {
            uint8_t tmp[4096];
            pa_ring_copy(&thr->ring, thr->drained, tmp, take);
            take = pa_rows_walk(tmp, take, take, &nrows);
            CHECK(take > 0);
            cuts++;
            if (!take)
                return;
        }
        CHECK(pa_enc_heap(&enc, thr, thr->drained, take) == 0);
        thr->drained += take;
    }
}

static void thread_init(pa_thread_t *thr, uint32_t tid, uint32_t ring_size)
{
    free(thr->ring.buf);
    memset(thr, 0, sizeof(*thr));
    thr->ring.buf = calloc(1, ring_size);
    thr->ring.size = ring_size;
    thr->tid = tid;
    thr->stall_tail = UINT64_MAX;
    atomic_store(&thr->state, PA_THR_ACTIVE);
}

/* A header the decoder needs before rows: Hello and stacks 1..n. */
static void header(unsigned nstacks)
{
    static uint32_t sent;
    pa_rec_hello(&enc);
    if (nstacks) {
        sent = 0;
        for (unsigned i = 1; i <= nstacks; i++) {
            uint64_t f[3] = {0x401000 + i, 0x402000, 0x403000 + 16 * i};
            CHECK_EQ_U64(pa_stacks_intern(f, 3, 0), i);
        }
        pa_rec_stacks(&enc, &sent);
        CHECK_EQ_U64(sent, nstacks);
    }
}

/* ---- heap rows -------------------------------------------------------------- */

typedef struct want {
    uint8_t kind;
    uint32_t tid, sid;
    uint64_t addr, size, ticks, weight; /* weight: SAMPLE rows only */
} want_t;
static want_t want[MAX_ROWS];
static size_t nwant;

/* Addresses that step forward, back, far and near (every delta size), sizes
 * of every varint length, ticks that mostly rise but sometimes go back
 * (realloc's FREE carries the time before its ALLOC). */
static void make_row(pa_thread_t *thr, size_t i, uint64_t *addr, uint64_t *ticks)
{
    static const int64_t steps[] = {16, -16, 4096, -1000000, 1ll << 40, -(1ll << 40), 0, 48};
    want_t *w = &want[nwant++];
    *addr += (uint64_t)steps[i % 8] + 0x10 * (i % 5);
    *ticks += i % 7 == 3 ? (uint64_t)-5 : 1 + i * 13 % 1000;
    w->tid = thr->tid;
    w->addr = *addr;
    w->ticks = *ticks;
    if (i % 3 == 2) {
        w->kind = PA_WIRE_ROW_FREE;
        pa_row_free(thr, w->addr, w->ticks);
    } else {
        w->kind = PA_WIRE_ROW_ALLOC;
        w->size = (uint64_t)1 << (i % 45);
        w->sid = (uint32_t)(i % 4); /* 0: no stack, 1..3 defined */
        pa_row_alloc(thr, w->addr, w->size, w->sid, w->ticks);
    }
}

static int rows_match(size_t from, size_t n)
{
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++) {
        const want_t *w = &want[from + i];
        const heap_row_t *r = &g->rows[i];
        if (r->kind != w->kind || r->addr != w->addr || r->ticks != w->ticks ||
            g->row_tid[i] != w->tid ||
            (w->kind == PA_WIRE_ROW_ALLOC &&
             (r->size != w->size || r->stack_id != w->sid || r->weight != w->size)) ||
            (w->kind == PA_WIRE_ROW_SAMPLE &&
             (r->size != w->size || r->stack_id != w->sid || r->weight != w->weight))) {
            printf("  row %zu: kind %u/%u addr %#llx/%#llx ticks %llu/%llu size %llu/%llu "
                   "sid %u/%u\n",
                   i, r->kind, w->kind, (unsigned long long)r->addr,
                   (unsigned long long)w->addr, (unsigned long long)r->ticks,
                   (unsigned long long)w->ticks, (unsigned long long)r->size,
                   (unsigned long long)w->size, r->stack_id, w->sid);
            bad = 1;
        }
    }
    return !bad;
}

/* 5000 rows of two threads through 4 KiB rings (each wraps five times, rows
 * cross the wrap point), drained every 37 rows in pieces of at most 128
 * bytes cut at row boundaries (pa_rows_walk, as the sender cuts a
 * backlog): every row decodes to what was encoded, sync rows included (one
 * per thread at its start, then every PA_WIRE_SYNC_ROWS). */
TEST(test_heap_rows)
{
    uint64_t addr[2] = {0x7f0000001000ull, 0x10000}, ticks[2] = {1000000, 5};
    pipe_open();
    thread_init(&slots[0], 101, 4096);
    thread_init(&slots[1], 202, 4096);
    nwant = 0;
    cuts = 0;
    header(3);
    flush(1);
    for (size_t i = 0; i < 5000; i++) {
        int t = (i / 3) % 2;
        make_row(&slots[t], i, &addr[t], &ticks[t]);
        if (i % 37 == 36 || i == 4999) {
            drain(&slots[0], 128);
            drain(&slots[1], 128);
            flush(1);
        }
    }
    CHECK_EQ_U64(feed_rc, 0);
    CHECK_EQ_U64(ring_waits, 0);
    CHECK_EQ_U64(cuts, 270); /* pieces the 128-byte limit cut off */
    CHECK_EQ_U64(atomic_load(&slots[0].rows) + atomic_load(&slots[1].rows), 5000);
    /* rows of both threads, in the order the batches carried them: per
     * thread that is the encoding order, so compare per thread */
    size_t k[2] = {0, 0}, ok = 1;
    for (size_t i = 0; i < g->nrows && ok; i++) {
        int t = g->row_tid[i] == 202;
        while (k[t] < nwant && want[k[t]].tid != g->row_tid[i])
            k[t]++;
        const want_t *w = &want[k[t]++];
        const heap_row_t *r = &g->rows[i];
        if (r->kind != w->kind || r->addr != w->addr || r->ticks != w->ticks ||
            (w->kind == PA_WIRE_ROW_ALLOC && (r->size != w->size || r->stack_id != w->sid))) {
            printf("  row %zu (tid %u) differs\n", i, g->row_tid[i]);
            ok = 0;
        }
    }
    CHECK(ok);
    CHECK_EQ_U64(g->nrows, 5000);
    CHECK_EQ_U64(decode_counts(dec)->rows, 5000);
    CHECK_EQ_U64(decode_counts(dec)->rows_unsynced, 0);
    /* The rows' bytes, exactly (the encoding is deterministic): each 4 KiB
     * ring went round five times. */
    CHECK_EQ_U64(atomic_load(&slots[0].ring.head), 21676);
    CHECK_EQ_U64(atomic_load(&slots[1].ring.head), 21927);
    /* Rows in threes: 2501 rows for tid 101, 2499 for 202.  Sync rows at
     * 0, 1024 and 2048; after row n-1 the next is 3 * 1024 - n rows away. */
    CHECK_EQ_U64(atomic_load(&slots[0].rows), 2501);
    CHECK_EQ_U64(atomic_load(&slots[1].rows), 2499);
    CHECK_EQ_U64(slots[0].rows_to_sync, 3 * PA_WIRE_SYNC_ROWS - 2501);
    CHECK_EQ_U64(slots[1].rows_to_sync, 3 * PA_WIRE_SYNC_ROWS - 2499);
}

/* Sampled mode: SAMPLE rows (an ALLOC with the weight it stands for, any
 * size up to 2^44 and weights up to 2^47) among FREE rows, through a ring
 * that wraps, decoded with their weights. */
TEST(test_sample_rows)
{
    uint64_t addr = 0x700000, ticks = 9;
    pipe_open();
    thread_init(&slots[0], 505, 4096);
    nwant = 0;
    header(3);
    flush(1);
    for (size_t i = 0; i < 3000; i++) {
        want_t *w = &want[nwant++];
        addr += i % 4 == 1 ? (uint64_t)-4096 : (uint64_t)(64 * (i % 9));
        ticks += 1 + i % 11;
        w->tid = 505;
        w->addr = addr;
        w->ticks = ticks;
        if (i % 4 == 3) {
            w->kind = PA_WIRE_ROW_FREE;
            pa_row_free(&slots[0], addr, ticks);
        } else {
            w->kind = PA_WIRE_ROW_SAMPLE;
            w->size = (uint64_t)1 << (i % 45);
            w->weight = w->size + ((uint64_t)524288 << (i % 4));
            w->sid = (uint32_t)(i % 4);
            pa_row_sample(&slots[0], addr, w->size, w->sid, ticks, w->weight);
        }
        if (i % 50 == 49 || i == 2999) {
            drain(&slots[0], 4096);
            flush(1);
        }
    }
    CHECK_EQ_U64(feed_rc, 0);
    CHECK_EQ_U64(g->nrows, 3000);
    CHECK_EQ_U64(decode_counts(dec)->rows_unsynced, 0);
    CHECK(rows_match(0, g->nrows));
}

/* Typed events (event.h): QueryEvents packed into the thread's event ring
 * by the producer API, passed on by the sender's sink (records.c
 * pa_rec_event), decoded as Record.query; a kind the wire does not allow
 * is dropped; a ring that wraps keeps every event whole. */
TEST(test_events)
{
    pa_event_t ev;
    uint8_t *p;
    pipe_open();
    thread_init(&slots[0], 606, 4096);
    pa_tls.thr = &slots[0];
    atomic_store(&pa_agent_on, 1);
    header(3);
    flush(1);
    for (unsigned i = 0; i < 300; i++) {
        Perfagent__QueryEvent q = PERFAGENT__QUERY_EVENT__INIT;
        char text[48];
        snprintf(text, sizeof(text), "SELECT $1 FROM t%u", i);
        q.tid = 606;
        q.text = text;
        q.duration_ns = 1000 + i;
        q.rows = i;
        q.stack_id = 1 + i % 2;
        p = pa_event_reserve(PA_WIRE_EVENT_QUERY, (uint32_t)perfagent__query_event__get_packed_size(&q), &ev);
        if (p)
            pa_event_commit(&ev, perfagent__query_event__pack(&q, p));
        if (i == 5) { /* not a pass-through kind: dropped by the sender */
            if ((p = pa_event_reserve(PA_WIRE_EVENT_QUERY + 40, 8, &ev)))
                pa_event_commit(&ev, 8);
        }
        if (i % 100 == 99) {
            pa_tring_drain(slots[0].events, pa_rec_event, &enc);
            flush(1);
        }
    }
    CHECK_EQ_U64(feed_rc, 0);
    CHECK_EQ_U64(g->nquery, 300);
    CHECK_STREQ(g->query_text[0], "SELECT $1 FROM t0");
    CHECK_STREQ(g->query_text[3], "SELECT $1 FROM t3");
    CHECK_EQ_U64(g->query_dur[2], 1002);
    CHECK_EQ_U64(g->query_rows[3], 3);
    CHECK_EQ_U64(g->query_tid[1], 606);
    CHECK_EQ_U64(g->query_sid[1], 2);
    CHECK_EQ_U64(atomic_load(&slots[0].events->records), 301);
    CHECK_EQ_U64(atomic_load(&slots[0].events->drops), 0);
    CHECK_EQ_U64(pa_events_dropped(), 0);
    pa_tls.thr = NULL;
}

/* A reader that joins mid-ring (a new stream after a reconnect) gets no
 * delta rows until the thread's next sync row, and from there exact rows:
 * exactly the rows before it are skipped. */
TEST(test_join_mid_ring)
{
    uint64_t addr = 0x500000, ticks = 77;
    pipe_open();
    thread_init(&slots[0], 303, 1 << 16);
    nwant = 0;
    uint64_t cut = 0;
    for (size_t i = 0; i < 1500; i++) {
        make_row(&slots[0], i, &addr, &ticks);
        if (i == 699)
            cut = atomic_load(&slots[0].ring.head);
    }
    /* The stream starts at row 700: the rows before went to an earlier
     * stream. */
    slots[0].drained = cut;
    atomic_store(&slots[0].ring.tail, cut);
    header(3);
    drain(&slots[0], 1 << 16);
    flush(1);
    CHECK_EQ_U64(feed_rc, 0);
    /* rows 700..1023 are deltas without a base; 1024 is a sync row */
    CHECK_EQ_U64(decode_counts(dec)->rows_unsynced, PA_WIRE_SYNC_ROWS - 700);
    CHECK_EQ_U64(g->nrows, 1500 - PA_WIRE_SYNC_ROWS);
    CHECK(rows_match(PA_WIRE_SYNC_ROWS, g->nrows));
}

/* A full ring drops the row at reserve and counts it; the dropped row must
 * not become the base of the next row's deltas (the reader never saw it). */
TEST(test_full_ring)
{
    uint64_t addr = 0x900000, ticks = 1;
    pipe_open();
    thread_init(&slots[0], 404, 4096);
    nwant = 0;
    atomic_store(&pa_wait_stats[3], 0);
    header(3);
    flush(1);
    /* fill without draining: rows stop fitting after ~4096 bytes */
    for (size_t i = 0; i < 600; i++)
        make_row(&slots[0], i, &addr, &ticks);
    uint64_t dropped = atomic_load(&slots[0].drops_full);
    uint64_t kept = atomic_load(&slots[0].rows);
    CHECK_EQ_U64(kept + dropped, 600);
    CHECK(dropped > 0);
    CHECK_EQ_U64(ring_waits, dropped);
    /* the rows that made it are the first `kept` ones */
    drain(&slots[0], 4096);
    flush(1);
    size_t base = nwant;
    for (size_t i = 600; i < 700; i++)
        make_row(&slots[0], i, &addr, &ticks);
    drain(&slots[0], 4096);
    flush(1);
    CHECK_EQ_U64(feed_rc, 0);
    CHECK_EQ_U64(g->nrows, kept + 100);
    CHECK(rows_match(0, kept));
    /* after the drops, the next rows (deltas from the last kept row) are
     * exact */
    int ok = 1;
    for (size_t i = 0; i < 100 && ok; i++) {
        const want_t *w = &want[base + i];
        const heap_row_t *r = &g->rows[kept + i];
        ok = r->addr == w->addr && r->ticks == w->ticks && r->kind == w->kind;
    }
    CHECK(ok);
    CHECK_EQ_U64(decode_counts(dec)->rows_unsynced, 0);
}

/* ---- the other records -------------------------------------------------------- */

TEST(test_hello_modules_threads)
{
    pipe_open();
    thread_init(&slots[0], 505, 4096);
    thread_init(&slots[1], 506, 4096);
    memcpy(slots[0].name, "worker-1", 9);
    pa_rec_hello(&enc);
    modules_left = 1;
    pa_rec_modules(&enc);
    pa_rec_thread(&enc, &slots[0], 0);
    pa_rec_thread(&enc, &slots[0], 0); /* name sent: nothing */
    pa_rec_thread(&enc, &slots[0], 1); /* exited: again, with the flag */
    flush(1);
    CHECK_EQ_U64(feed_rc, 0);
    CHECK_EQ_U64(g->hello, 1);
    CHECK_EQ_U64(g->hello_version, PA_WIRE_PROTOCOL_VERSION);
    CHECK_EQ_U64(g->hello_pid, 4242);
    CHECK_EQ_U64(g->hello_parent, 17);
    CHECK_STREQ(g->hello_exe, "/usr/bin/rt");
    CHECK(g->hello_argc >= 1);
    CHECK(strstr(g->hello_argv0, "test_agent_roundtrip") != NULL);
    CHECK_EQ_U64(g->cfg_rate, 1);
    CHECK_EQ_U64(g->cfg_frames, 64);
    CHECK_EQ_U64(g->cfg_buffer_kb, 4);
    CHECK_STREQ(g->cfg_unwinder, "cfi");
    CHECK_STREQ(g->cfg_output, "/tmp/rt.pfr");
    CHECK_STREQ(g->cfg_mech, ""); /* cpu_hz 0: no mechanism named */
    CHECK_EQ_U64(g->modules, 1);
    CHECK_EQ_U64(g->mod_full, 1);
    CHECK_STREQ(g->mod_path, "/opt/app/libx.so");
    CHECK_EQ_U64(g->mod_bias, 0x7f0000000000ull);
    CHECK_EQ_U64(g->mod_bid_len, 20);
    CHECK(memcmp(g->mod_bid, mod_bid, 20) == 0);
    CHECK_EQ_U64(g->mod_nranges, 2);
    CHECK_EQ_U64(g->mod_ranges[1][0], 0x600000);
    CHECK_EQ_U64(g->mod_ranges[1][1], 0x602000);
    /* the thread's name is read from /proc/self/task/<tid>/comm when it
     * was not sent; tid 505 is not ours, so the name stays as set */
    CHECK_EQ_U64(g->nthreads, 2);
    CHECK_EQ_U64(g->thread_tid[0], 505);
    CHECK_STREQ(g->thread_name[0], "worker-1");
    CHECK_EQ_U64(g->thread_exited[0], 0);
    CHECK_EQ_U64(g->thread_tid[1], 505);
    CHECK_EQ_U64(g->thread_exited[1], 1);
    CHECK_EQ_U64(g->round_ends, 1);
    CHECK_EQ_U64(g->round_start_ticks, 0xfedcba9876ull);
}

/* CPU samples as the sender emits them: stacks interned with leaf_is_pc,
 * declared, then the samples (and the thread's name first). */
TEST(test_cpu_samples)
{
    static uint32_t sent;
    uint64_t f1[4] = {0x401234, 0x402000, 0x403000, 0x404000}, f2[2] = {0x405555, 0x406000};
    uint32_t sids[5];
    uint64_t ns[5] = {100, 200, 300, 400, 1ull << 40};
    pipe_open();
    pa_rec_hello(&enc);
    uint32_t s1 = pa_stacks_intern_pc(f1, 4, 0), s2 = pa_stacks_intern_pc(f2, 2, 1);
    /* the same frames as a heap stack are another stack */
    uint32_t s3 = pa_stacks_intern(f1, 4, 0);
    CHECK(s1 != s3);
    sent = s1 - 1; /* earlier stacks went to an earlier test's stream */
    pa_rec_stacks(&enc, &sent);
    CHECK_EQ_U64(sent, s3);
    sids[0] = s1, sids[1] = s2, sids[2] = s1, sids[3] = 0, sids[4] = s3;
    pa_rec_cpu(&enc, 777, "cruncher", sids, ns, 5, 1000000, 123456789);
    flush(1);
    CHECK_EQ_U64(feed_rc, 0);
    CHECK_EQ_U64(g->nstacks, 3);
    CHECK_EQ_U64(g->stack_id[0], s1);
    CHECK_EQ_U64(g->stack_n[0], 4);
    CHECK_EQ_U64(g->stack_frames[0][0], 0x401234);
    CHECK_EQ_U64(g->stack_frames[0][3], 0x404000);
    CHECK_EQ_U64(g->stack_leaf_pc[0], 1);
    CHECK_EQ_U64(g->stack_trunc[0], 0);
    CHECK_EQ_U64(g->stack_id[1], s2);
    CHECK_EQ_U64(g->stack_trunc[1], 1);
    CHECK_EQ_U64(g->stack_leaf_pc[1], 1);
    CHECK_EQ_U64(g->stack_id[2], s3);
    CHECK_EQ_U64(g->stack_leaf_pc[2], 0);
    CHECK_EQ_U64(g->nthreads, 1);
    CHECK_EQ_U64(g->thread_tid[0], 777);
    CHECK_STREQ(g->thread_name[0], "cruncher");
    CHECK_EQ_U64(g->ncpu, 1);
    CHECK_EQ_U64(g->cpu_tid, 777);
    CHECK_EQ_U64(g->cpu_n, 5);
    int same = 1;
    for (int i = 0; i < 5; i++)
        same &= g->cpu_sid[i] == sids[i] && g->cpu_ns[i] == ns[i];
    CHECK(same);
    CHECK_EQ_U64(g->cpu_period, 1000000);
    CHECK_EQ_U64(g->cpu_thread_ns, 123456789);
    CHECK_EQ_U64(decode_counts(dec)->cpu_samples, 5);
}

/* A stack id taken by a thread that was preempted before publishing it
 * holds back the ids after it (StackDefs go in id order); a CPU sample of a
 * later stack must still never go out before its StackDef
 * (pa_rec_stacks_upto: wait for it, and past the wait declare it empty).
 * Before, the sender gave up after 1000 sched_yield()s and sent the
 * samples anyway: "stack id not defined" (CPython's test_subprocess). */
static uint32_t late_id;
static unsigned clock_reads, publish_at;
static const uint64_t late_f[3] = {0x40aaaa, 0x40bbbb, 0x40cccc};
static void clock_step(void)
{
    fake_ns += 1000000; /* 1 ms a reading */
    if (++clock_reads == publish_at)
        pa_stacks_test_publish(late_id, late_f, 3);
}

TEST(test_stack_wait)
{
    for (int late = 0; late < 2; late++) {
        static uint32_t sent;
        uint64_t f[2] = {0x40dddd, 0x40eeee + (uint64_t)late};
        uint64_t ns[1] = {5};
        uint64_t drops0 = atomic_load(&pa_stats.drops_stack_table);
        pipe_open();
        pa_rec_hello(&enc);
        sent = pa_stacks_count(); /* earlier stacks went to earlier streams */
        late_id = pa_stacks_test_take();
        uint32_t sid = pa_stacks_intern_pc(f, 2, 0);
        CHECK_EQ_U64(sid, late_id + 1);
        /* without the wait the StackDefs stop before late_id */
        pa_rec_stacks(&enc, &sent);
        CHECK_EQ_U64(sent, late_id - 1);
        clock_reads = 0;
        publish_at = late ? 0 : 5; /* published at the 5th reading, or never */
        clock_hook = clock_step;
        pa_rec_stacks_upto(&enc, &sent, sid, 100000000ull);
        clock_hook = NULL;
        CHECK_EQ_U64(sent, sid);
        pa_rec_cpu(&enc, 778, "late", &sid, ns, 1, 1000000, 1000);
        flush(1);
        CHECK_EQ_U64(feed_rc, 0);
        CHECK_EQ_U64(g->nstacks, 2);
        CHECK_EQ_U64(g->stack_id[0], late_id);
        /* published in time: its frames; never: none, counted */
        CHECK_EQ_U64(g->stack_n[0], late ? 0 : 3);
        CHECK_EQ_U64(g->stack_frames[0][2], late ? 0 : 0x40cccc);
        CHECK_EQ_U64(g->stack_id[1], sid);
        CHECK_EQ_U64(g->stack_n[1], 2);
        CHECK_EQ_U64(g->ncpu, 1);
        CHECK_EQ_U64(g->cpu_sid[0], sid);
        CHECK_EQ_U64(atomic_load(&pa_stats.drops_stack_table) - drops0, late ? 1 : 0);
        /* the wait: until the 5th reading (published), or 100 ms of 1 ms
         * readings after the first (never) */
        CHECK_EQ_U64(clock_reads, late ? 101 : 5);
    }
}

/* AgentStats sums live threads and retired ones; Goodbye ends the stream. */
TEST(test_stats_goodbye)
{
    pipe_open();
    thread_init(&slots[0], 1, 4096);
    thread_init(&slots[1], 2, 4096);
    atomic_store(&slots[1].state, PA_THR_FREE); /* a free slot counts nothing */
    atomic_store(&slots[0].rows, 100);
    atomic_store(&slots[1].rows, 1000);
    atomic_store(&slots[0].drops_full, 3);
    atomic_store(&slots[0].drops_stack_table, 4);
    atomic_store(&slots[0].unwind_failures, 5);
    atomic_store(&pa_stats.rows_retired, 20);
    atomic_store(&pa_stats.drops_full_retired, 30);
    atomic_store(&pa_stats.drops_stack_table, 40);
    atomic_store(&pa_stats.unwind_failures, 50);
    atomic_store(&pa_stats.drops_thread_exit, 6);
    atomic_store(&pa_stats.threads, 7);
    pa_cfg.cpu_hz = 99;
    fake_ns = 31337;
    pa_rec_hello(&enc);
    CHECK_EQ_U64(pa_rec_stats(&enc), 31337);
    pa_rec_goodbye(&enc, 3);
    flush(1);
    pa_cfg.cpu_hz = 0;
    CHECK_EQ_U64(feed_rc, 0);
    CHECK_STREQ(g->cfg_mech, "perf_event test");
    CHECK_EQ_U64(g->stats, 1);
    CHECK_EQ_U64(g->st.records, 120);
    CHECK_EQ_U64(g->st.drops_buffer_full, 33);
    CHECK_EQ_U64(g->st.drops_stack_table, 44);
    CHECK_EQ_U64(g->st.unwind_failures, 55);
    CHECK_EQ_U64(g->st.drops_thread_exit, 6);
    CHECK_EQ_U64(g->st.threads, 7);
    CHECK_EQ_U64(g->st.cpu_samples, 11);
    CHECK_EQ_U64(g->st.cpu_throttled, 16);
    CHECK_EQ_U64(g->st.cpu_signals, 17);
    CHECK_EQ_U64(g->st.cpu_overruns, 18);
    CHECK_EQ_U64(g->st_clock_mono, 31337);
    CHECK_EQ_U64(g->goodbye, 1);
    CHECK_EQ_U64(g->goodbye_code, 3);
    CHECK_EQ_U64(stream_end(stm), 0);
}

/* The collector's stream parser and the decoder agree with proto/wire.h. */
TEST(test_wire_constants)
{
    CHECK(memcmp(STREAM_MAGIC, PA_WIRE_MAGIC, PA_WIRE_MAGIC_LEN) == 0);
    CHECK_EQ_U64(STREAM_MAGIC_LEN, PA_WIRE_MAGIC_LEN);
    CHECK_EQ_U64(STREAM_MAX_FRAME, PA_WIRE_MAX_FRAME);
    CHECK_EQ_U64(DECODE_PROTOCOL_VERSION, PA_WIRE_PROTOCOL_VERSION);
    CHECK_EQ_U64(DECODE_MAX_FRAMES, PA_MAX_FRAMES_LIMIT);
}

int main(void)
{
    static got_t got;
    g = &got;
    if (pa_enc_init(&enc) < 0 || pa_stacks_init(1000) < 0)
        return 1;
    RUN(test_wire_constants);
    RUN(test_heap_rows);
    RUN(test_join_mid_ring);
    RUN(test_sample_rows);
    RUN(test_events);
    RUN(test_full_ring);
    RUN(test_hello_modules_threads);
    RUN(test_cpu_samples);
    RUN(test_stack_wait);
    RUN(test_stats_goodbye);
    decode_free(dec);
    stream_free(stm);
    CHECK_DONE();
}
