/*
 * decode — frame body -> validated records (see decode.h for the rules).
 *
 * Owns the per-frame arena that protobuf-c unpacks into (so one hostile frame
 * cannot make the collector allocate more than DECODE_MAX_ALLOC bytes, and
 * freeing a Batch is one reset), the set of defined stack ids, the per-tid
 * delta state of heap rows, and the stream-level ordering state (Hello
 * first, Goodbye last, seq).  Must never read a byte it has not
 * bounds-checked, nor trust a count from the wire.
 */
#include "decode.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK (64u << 10)
#define ROW_BATCH 256 /* rows handed to the sink per call */

/* ---- per-frame arena ---------------------------------------------------- */

typedef struct chunk {
    struct chunk *next;
    size_t cap, used;
    max_align_t data[];
} chunk_t;

enum { ARENA_OK, ARENA_OVER_LIMIT, ARENA_OVER_MALLOC };

typedef struct arena {
    chunk_t *head;
    size_t total; /* bytes handed out since the last reset */
    size_t limit;
    int over; /* an allocation failed: ARENA_OVER_* */
} arena_t;

static void *arena_alloc(void *ad, size_t size)
{
    arena_t *a = ad;
    size_t sz = (size + 15) & ~(size_t)15;
    if (sz < size || sz > a->limit - a->total) {
        a->over = ARENA_OVER_LIMIT;
        return NULL;
    }
    chunk_t *c = a->head;
    if (!c || c->cap - c->used < sz) {
        /* Big requests (HeapEvents.rows) get a chunk of their own, linked
         * behind the head so the head keeps its free space. */
        int own = sz > ARENA_CHUNK / 4;
        size_t cap = own ? sz : ARENA_CHUNK;
        chunk_t *n = malloc(sizeof(*n) + cap);
        if (!n) {
            a->over = ARENA_OVER_MALLOC;
            return NULL;
        }
        n->cap = cap;
        n->used = 0;
        if (own && c) {
            n->next = c->next;
            c->next = n;
        } else {
            n->next = c;
            a->head = n;
        }
        c = n;
    }
    void *p = (unsigned char *)c->data + c->used;
    c->used += sz;
    a->total += sz;
    return p;
}

static void arena_nofree(void *ad, void *p)
{
    /* Everything goes at once in arena_reset. */
}

/* Keep one standard chunk for the next frame, free the rest. */
static void arena_reset(arena_t *a)
{
    chunk_t *keep = NULL;
    for (chunk_t *c = a->head, *next; c; c = next) {
        next = c->next;
        if (!keep && c->cap == ARENA_CHUNK) {
            keep = c;
            continue;
        }
        free(c);
    }
    if (keep) {
        keep->next = NULL;
        keep->used = 0;
    }
    a->head = keep;
    a->total = 0;
    a->over = ARENA_OK;
}

/* ---- per-tid delta state -------------------------------------------------- */

/* The addr and ticks of a thread's last decoded row.  Open addressing with
 * linear probing, at most half full; looked up once per HeapEvents, not per
 * row. */
typedef struct tid_state {
    uint32_t tid;
    uint32_t used;
    uint64_t addr, ticks;
} tid_state_t;

typedef struct tid_table {
    tid_state_t *slot;
    size_t cap; /* power of two, or 0 */
    size_t n;
} tid_table_t;

static size_t tid_home(const tid_table_t *t, uint32_t tid)
{
    uint32_t h = tid * 0x9e3779b1u; /* tids are dense: spread them */
    return (h ^ (h >> 15)) & (t->cap - 1);
}

static tid_state_t *tid_find(const tid_table_t *t, uint32_t tid)
{
    if (!t->n)
        return NULL;
    for (size_t i = tid_home(t, tid);; i = (i + 1) & (t->cap - 1)) {
        if (!t->slot[i].used)
            return NULL;
        if (t->slot[i].tid == tid)
            return &t->slot[i];
    }
}

/* Forget every state.  The memory goes too, so that a stream that fills the
 * table and then forces resets cannot make each reset cost the whole table. */
static void tid_clear(tid_table_t *t)
{
    free(t->slot);
    t->slot = NULL;
    t->cap = t->n = 0;
}

/* tid must not be in the table; the caller bounds n (max_threads). */
static tid_state_t *tid_add(tid_table_t *t, uint32_t tid)
{
    if ((t->n + 1) * 2 > t->cap) {
        tid_table_t g = {.cap = t->cap ? t->cap * 2 : 64};
        if (!(g.slot = calloc(g.cap, sizeof(*g.slot))))
            return NULL;
        for (size_t i = 0; i < t->cap; i++)
            if (t->slot[i].used)
                *tid_add(&g, t->slot[i].tid) = t->slot[i];
        free(t->slot);
        *t = g;
    }
    size_t i = tid_home(t, tid);
    while (t->slot[i].used)
        i = (i + 1) & (t->cap - 1);
    t->slot[i] = (tid_state_t){.tid = tid, .used = 1};
    t->n++;
    return &t->slot[i];
}

static void tid_remove(tid_table_t *t, uint32_t tid)
{
    tid_state_t *e = tid_find(t, tid);
    if (!e)
        return;
    /* Backward-shift deletion: move up every later entry of the probe run
     * whose home is not between the hole and itself, so lookups never stop
     * early at the hole. */
    size_t mask = t->cap - 1, hole = (size_t)(e - t->slot), j = hole;
    t->slot[hole].used = 0;
    for (;;) {
        j = (j + 1) & mask;
        if (!t->slot[j].used)
            break;
        size_t home = tid_home(t, t->slot[j].tid);
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            t->slot[hole] = t->slot[j];
            t->slot[j].used = 0;
            hole = j;
        }
    }
    t->n--;
}

/* ---- decoder state ------------------------------------------------------ */

struct decoder {
    decode_sink_t sink;
    uint64_t max_stacks;
    uint64_t max_frames_total;
    uint64_t max_threads;
    arena_t arena;
    ProtobufCAllocator pa;

    int saw_hello, saw_goodbye, saw_batch;
    uint64_t next_seq;
    uint32_t last_stack_id;
    uint64_t *stack_bits; /* defined stack ids */
    size_t stack_words;
    uint64_t frames_total;
    tid_table_t tids; /* heap rows' delta state */

    decode_counts_t counts;

    /* where we are, for messages */
    uint64_t offset;
    size_t record;
    int rc;
    uint64_t fault_off;
    char err[320];
};

decoder_t *decode_new(const decode_limits_t *lim, const decode_sink_t *sink)
{
    decoder_t *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->sink = *sink;
    d->max_stacks = lim && lim->max_stacks ? lim->max_stacks : DECODE_DEFAULT_MAX_STACKS;
    if (d->max_stacks > UINT32_MAX)
        d->max_stacks = UINT32_MAX;
    d->max_frames_total =
        lim && lim->max_frames_total ? lim->max_frames_total : DECODE_DEFAULT_MAX_FRAMES_TOTAL;
    d->max_threads = lim && lim->max_threads ? lim->max_threads : DECODE_DEFAULT_MAX_THREADS;
    d->arena.limit = DECODE_MAX_ALLOC;
    d->pa.alloc = arena_alloc;
    d->pa.free = arena_nofree;
    d->pa.allocator_data = &d->arena;
    return d;
}

void decode_free(decoder_t *d)
{
    if (!d)
        return;
    arena_reset(&d->arena);
    free(d->arena.head);
    free(d->stack_bits);
    tid_clear(&d->tids);
    free(d);
}

const char *decode_error(const decoder_t *d)
{
    return d->rc ? d->err : NULL;
}

uint64_t decode_fault_offset(const decoder_t *d)
{
    return d->fault_off;
}

const decode_counts_t *decode_counts(const decoder_t *d)
{
    return &d->counts;
}

__attribute__((format(printf, 3, 4))) static int fail(decoder_t *d, int rc, const char *fmt, ...)
{
    char what[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    d->rc = rc;
    d->fault_off = d->offset;
    snprintf(d->err, sizeof(d->err), "stream offset %" PRIu64 ": frame %" PRIu64 " record %zu: %s",
             d->offset, d->counts.frames, d->record, what);
    return rc;
}

static int sink_failed(decoder_t *d, int rc)
{
    return fail(d, rc, "cannot store the record: %s", strerror(-rc));
}

/* ---- field checks ------------------------------------------------------- */

static int str_ok(const char *s)
{
    return !s || strnlen(s, DECODE_MAX_STRING + 1) <= DECODE_MAX_STRING;
}

static int check_hello(decoder_t *d, const Perfagent__Hello *h)
{
    if (d->saw_hello)
        return fail(d, -EPROTO, "second Hello");
    if (h->protocol_version == 1)
        return fail(d, -EPROTO, "recorded by an older agent (protocol 1); re-record");
    if (h->protocol_version != DECODE_PROTOCOL_VERSION)
        return fail(d, -EPROTO, "unsupported protocol_version %" PRIu32 " (this collector reads %d)",
                    h->protocol_version, DECODE_PROTOCOL_VERSION);
    if (h->clock != PERFAGENT__CLOCK__CLOCK_MONOTONIC_NS && h->clock != PERFAGENT__CLOCK__CLOCK_TSC)
        return fail(d, -EPROTO, "unknown clock %d", (int)h->clock);
    if (!str_ok(h->exe) || !str_ok(h->agent_version) || !str_ok(h->hostname))
        return fail(d, -EPROTO, "Hello string longer than %d bytes", DECODE_MAX_STRING);
    if (h->n_argv > DECODE_MAX_ARGV)
        return fail(d, -EPROTO, "argv has %zu entries (max %d)", h->n_argv, DECODE_MAX_ARGV);
    for (size_t i = 0; i < h->n_argv; i++)
        if (!str_ok(h->argv[i]))
            return fail(d, -EPROTO, "argv[%zu] longer than %d bytes", i, DECODE_MAX_STRING);
    if (h->config && (!str_ok(h->config->unwinder) || !str_ok(h->config->output)))
        return fail(d, -EPROTO, "Config string longer than %d bytes", DECODE_MAX_STRING);
    return 0;
}

static int check_modules(decoder_t *d, const Perfagent__ModuleMap *mm)
{
    if (mm->n_modules > DECODE_MAX_MODULES)
        return fail(d, -EPROTO, "ModuleMap has %zu modules (max %d)", mm->n_modules,
                    DECODE_MAX_MODULES);
    for (size_t i = 0; i < mm->n_modules; i++) {
        const Perfagent__Module *m = mm->modules[i];
        if (!str_ok(m->path))
            return fail(d, -EPROTO, "module %zu: path longer than %d bytes", i, DECODE_MAX_STRING);
        if (m->build_id.len > DECODE_MAX_BUILD_ID)
            return fail(d, -EPROTO, "module %zu: build-id of %zu bytes (max %d)", i,
                        m->build_id.len, DECODE_MAX_BUILD_ID);
        if (m->n_ranges > DECODE_MAX_RANGES)
            return fail(d, -EPROTO, "module %zu: %zu ranges (max %d)", i, m->n_ranges,
                        DECODE_MAX_RANGES);
        for (size_t j = 0; j < m->n_ranges; j++)
            if (m->ranges[j]->start >= m->ranges[j]->end)
                return fail(d, -EPROTO, "module %zu: empty or inverted range %zu", i, j);
    }
    return 0;
}

static int stack_defined(const decoder_t *d, uint64_t id)
{
    return id <= d->last_stack_id && (d->stack_bits[id >> 6] >> (id & 63)) & 1;
}

static int check_and_mark_stack(decoder_t *d, const Perfagent__StackDef *sd)
{
    uint32_t id = sd->id;

    if (id == 0 || id > d->max_stacks)
        return fail(d, -E2BIG, "stack id %" PRIu32 " out of range (1..%" PRIu64 ")", id,
                    d->max_stacks);
    if (id <= d->last_stack_id)
        return fail(d, -EPROTO, "stack id %" PRIu32 " reused or out of order (last %" PRIu32 ")",
                    id, d->last_stack_id);
    if (sd->n_frames > DECODE_MAX_FRAMES)
        return fail(d, -EPROTO, "stack %" PRIu32 " has %zu frames (max %d)", id, sd->n_frames,
                    DECODE_MAX_FRAMES);
    if (sd->n_frames > d->max_frames_total - d->frames_total)
        return fail(d, -E2BIG, "more than %" PRIu64 " stack frames in all", d->max_frames_total);
    size_t words = (size_t)(id >> 6) + 1;
    if (words > d->stack_words) {
        size_t nw = d->stack_words ? d->stack_words : 64;
        while (nw < words)
            nw *= 2;
        uint64_t *nb = realloc(d->stack_bits, nw * sizeof(*nb));
        if (!nb)
            return fail(d, -ENOMEM, "out of memory");
        memset(nb + d->stack_words, 0, (nw - d->stack_words) * sizeof(*nb));
        d->stack_bits = nb;
        d->stack_words = nw;
    }
    d->stack_bits[id >> 6] |= UINT64_C(1) << (id & 63);
    d->counts.stack_id_gaps += id - d->last_stack_id - 1;
    d->last_stack_id = id;
    d->frames_total += sd->n_frames;
    return 0;
}

/* ---- HeapEvents.rows ---------------------------------------------------- */

enum { VR_OK = 0, VR_TRUNC = 1, VR_LONG = 2 };

static inline int rd_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    if (p < end && *p < 0x80) {
        *out = *p;
        *pp = p + 1;
        return VR_OK;
    }
    uint64_t v = 0;
    if (end - p >= 10) {
        /* Fast path: all ten possible bytes are in bounds, so only the
         * length rule needs checking (most rows are far from the end). */
        for (unsigned i = 0; i < 10; i++) {
            uint8_t b = p[i];
            if (i == 9 && b > 1)
                return VR_LONG;
            v |= (uint64_t)(b & 0x7f) << (7 * i);
            if (!(b & 0x80)) {
                *out = v;
                *pp = p + i + 1;
                return VR_OK;
            }
        }
        return VR_LONG;
    }
    for (unsigned i = 0; i < 10; i++) {
        if (p >= end)
            return VR_TRUNC;
        uint8_t b = *p++;
        if (i == 9 && b > 1)
            return VR_LONG; /* would not fit 64 bits, or an 11th byte follows */
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            *pp = p;
            return VR_OK;
        }
    }
    return VR_LONG;
}

static int flush_rows(decoder_t *d, uint32_t tid, const heap_row_t *rows, size_t n)
{
    int rc;
    if (n == 0 || !d->sink.heap)
        return 0;
    d->counts.rows += n;
    if ((rc = d->sink.heap(d->sink.ctx, tid, rows, n)) < 0)
        return sink_failed(d, rc);
    return 0;
}

static const char *const field_names[] = {"tag", "addr", "size", "stack_id", "ticks", "weight"};

/* Inverse of the agent's zigzag: 0, 1, 2, 3 ... -> 0, -1, 1, -2 ... */
static inline uint64_t unzigzag(uint64_t z)
{
    return (z >> 1) ^ (0 - (z & 1));
}

/* Hand on the good rows before the bad one (the protocol keeps them), then
 * fail with the row's index and position. */
#define ROW_FAIL(fmt, ...)                                                                         \
    do {                                                                                           \
        rc = flush_rows(d, he->tid, rows, n);                                                      \
        return rc < 0 ? rc                                                                         \
                      : fail(d, -EPROTO, "heap row %" PRIu64 " (byte %td of rows): " fmt, nrow,    \
                             row_start - base, ##__VA_ARGS__);                                     \
    } while (0)

static int decode_rows(decoder_t *d, const Perfagent__HeapEvents *he)
{
    static const uint8_t none[1];
    /* protobuf-c leaves data NULL for empty rows; NULL + 0 is still UB. */
    const uint8_t *base = he->rows.len ? he->rows.data : none;
    const uint8_t *p = base, *end = base + he->rows.len;
    heap_row_t rows[ROW_BATCH];
    size_t n = 0;
    uint64_t nrow = 0;
    int rc, vr;
    /* The tid's delta state, in locals for the loop and stored back after:
     * nothing else touches the table meanwhile. */
    tid_state_t *st = tid_find(&d->tids, he->tid);
    int known = st != NULL;
    uint64_t prev_addr = known ? st->addr : 0, prev_ticks = known ? st->ticks : 0;

    while (p < end) {
        const uint8_t *row_start = p;
        uint64_t v[6] = {0}; /* tag addr size stack_id ticks weight */
        unsigned nf, kind;
        if ((vr = rd_varint(&p, end, &v[0])) != VR_OK)
            ROW_FAIL("tag %s", vr == VR_TRUNC ? "truncated" : "varint too long");
        /* tag + its varints (proto/wire.h) */
        if ((nf = 1 + pa_wire_row_varints(v[0])) == 1)
            ROW_FAIL("unknown tag %" PRIu64, v[0]);
        kind = (unsigned)v[0] & ~(unsigned)ROW_SYNC;
        for (unsigned f = 1; f < nf; f++) {
            /* FREE is tag addr ticks: its second field goes to the ticks slot. */
            unsigned slot = (kind == ROW_FREE && f == 2) ? 4 : f;
            if ((vr = rd_varint(&p, end, &v[slot])) != VR_OK)
                ROW_FAIL("%s %s", field_names[slot],
                         vr == VR_TRUNC ? "truncated" : "varint too long");
        }
        if (v[2] > DECODE_MAX_SIZE)
            ROW_FAIL("size too large (%" PRIu64 ")", v[2]);
        if (v[5] > DECODE_MAX_SIZE)
            ROW_FAIL("weight too large (%" PRIu64 ")", v[5]);
        if (v[3] != 0 && !stack_defined(d, v[3]))
            ROW_FAIL("stack id not defined (%" PRIu64 ")", v[3]);
        if (!(v[0] & ROW_SYNC)) {
            if (!known) {
                /* No base to add the deltas to: checked, skipped, counted. */
                d->counts.rows_unsynced++;
                nrow++;
                continue;
            }
            v[1] = prev_addr + unzigzag(v[1]);
            v[4] = prev_ticks + unzigzag(v[4]);
        }
        if (v[1] == 0)
            ROW_FAIL("addr 0");
        known = 1;
        prev_addr = v[1];
        prev_ticks = v[4];
        nrow++;
        heap_row_t *r = &rows[n++];
        r->kind = (uint8_t)kind;
        r->addr = v[1];
        r->size = v[2];
        r->stack_id = (uint32_t)v[3];
        r->ticks = v[4];
        r->weight = kind == ROW_ALLOC ? v[2] : v[5];
        if (n == ROW_BATCH) {
            if ((rc = flush_rows(d, he->tid, rows, n)) < 0)
                return rc;
            n = 0;
        }
    }
#undef ROW_FAIL
    if (n && (rc = flush_rows(d, he->tid, rows, n)) < 0)
        return rc;
    if (known && !st) {
        /* A new tid.  Past the bound, forget every thread rather than grow
         * (or fail an honest stream that lost some exit records): each
         * thread then skips rows until its next sync row. */
        if (d->tids.n >= d->max_threads)
            tid_clear(&d->tids);
        if (!(st = tid_add(&d->tids, he->tid)))
            return fail(d, -ENOMEM, "out of memory");
    }
    if (st) {
        st->addr = prev_addr;
        st->ticks = prev_ticks;
    }
    /* Only a consistency hint: the rows themselves were all valid.  0 is
     * proto3's "not set", so it is not a mismatch. */
    if (he->count != 0 && he->count != nrow)
        d->counts.count_mismatch++;
    return 0;
}

/* ---- CPU samples ---------------------------------------------------------- */

static int check_cpu(decoder_t *d, const Perfagent__CpuSamples *cs)
{
    if (cs->n_stack_id != cs->n_time_ns)
        return fail(d, -EPROTO, "cpu samples of tid %" PRIu32 ": %zu stack ids but %zu times",
                    cs->tid, cs->n_stack_id, cs->n_time_ns);
    if (cs->period_ns == 0 || cs->period_ns > DECODE_MAX_PERIOD_NS)
        return fail(d, -EPROTO, "cpu samples of tid %" PRIu32 ": period_ns %" PRIu64
                    " out of range", cs->tid, cs->period_ns);
    for (size_t i = 0; i < cs->n_stack_id; i++)
        if (cs->stack_id[i] != 0 && !stack_defined(d, cs->stack_id[i]))
            return fail(d, -EPROTO, "cpu samples of tid %" PRIu32 ": stack id not defined (%" PRIu32
                        ")", cs->tid, cs->stack_id[i]);
    return 0;
}

/* ---- records ------------------------------------------------------------ */

#define CALL(cb, arg) (d->sink.cb ? d->sink.cb(d->sink.ctx, (arg)) : 0)

static int decode_record(decoder_t *d, const Perfagent__Record *r)
{
    int rc = 0;

    if (!d->saw_hello && r->body_case != PERFAGENT__RECORD__BODY_HELLO)
        return fail(d, -EPROTO, "first record is not a Hello");
    if (d->saw_goodbye)
        return fail(d, -EPROTO, "record after Goodbye");

    switch (r->body_case) {
    case PERFAGENT__RECORD__BODY_HELLO:
        if ((rc = check_hello(d, r->hello)) < 0)
            return rc;
        d->saw_hello = 1;
        rc = CALL(hello, r->hello);
        break;
    case PERFAGENT__RECORD__BODY_MODULES:
        if ((rc = check_modules(d, r->modules)) < 0)
            return rc;
        rc = CALL(modules, r->modules);
        break;
    case PERFAGENT__RECORD__BODY_STACK:
        if ((rc = check_and_mark_stack(d, r->stack)) < 0)
            return rc;
        rc = CALL(stack, r->stack);
        break;
    case PERFAGENT__RECORD__BODY_HEAP:
        if ((rc = decode_rows(d, r->heap)) < 0)
            return rc;
        break;
    case PERFAGENT__RECORD__BODY_THREAD:
        if (!str_ok(r->thread->name))
            return fail(d, -EPROTO, "thread name longer than %d bytes", DECODE_MAX_STRING);
        /* Sent after the thread's last row; a later thread with the same
         * tid starts with a sync row. */
        if (r->thread->exited)
            tid_remove(&d->tids, r->thread->tid);
        rc = CALL(thread, r->thread);
        break;
    case PERFAGENT__RECORD__BODY_SNAPSHOT:
        if (!str_ok(r->snapshot->label))
            return fail(d, -EPROTO, "snapshot label longer than %d bytes", DECODE_MAX_STRING);
        rc = CALL(snapshot, r->snapshot);
        break;
    case PERFAGENT__RECORD__BODY_STATS:
        rc = CALL(stats, r->stats);
        break;
    case PERFAGENT__RECORD__BODY_GOODBYE:
        d->saw_goodbye = 1;
        rc = CALL(goodbye, r->goodbye);
        break;
    case PERFAGENT__RECORD__BODY_CRASH: {
        const Perfagent__Crash *c = r->crash;
        if (c->signo <= 0 || c->signo > 64)
            return fail(d, -EPROTO, "crash with signal %" PRId32 " (1..64)", c->signo);
        if (c->stack_id != 0 && !stack_defined(d, c->stack_id))
            return fail(d, -EPROTO, "crash stack id not defined (%" PRIu32 ")", c->stack_id);
        if (!str_ok(c->signal_name) || !str_ok(c->stack_skipped))
            return fail(d, -EPROTO, "crash string longer than %d bytes", DECODE_MAX_STRING);
        rc = CALL(crash, c);
        break;
    }
    case PERFAGENT__RECORD__BODY_CPU:
        if ((rc = check_cpu(d, r->cpu)) < 0)
            return rc;
        if (!d->sink.cpu) {
            d->counts.ignored_records++; /* a reader without a CPU model */
            return 0;
        }
        d->counts.cpu_samples += r->cpu->n_stack_id;
        rc = CALL(cpu, r->cpu);
        break;
    case PERFAGENT__RECORD__BODY_QUERY:
        if (!str_ok(r->query->text) || !str_ok(r->query->error) || !str_ok(r->query->database) ||
            !str_ok(r->query->peer) || !str_ok(r->query->operation) ||
            !str_ok(r->query->sqlstate) || !str_ok(r->query->user) || !str_ok(r->query->text_raw))
            return fail(d, -EPROTO, "query string longer than %d bytes", DECODE_MAX_STRING);
        if (!d->sink.query) {
            d->counts.ignored_records++; /* a reader without a query model */
            return 0;
        }
        rc = CALL(query, r->query);
        break;
    case PERFAGENT__RECORD__BODY_SOCKET: {
        const Perfagent__SocketEvent *se = r->socket;
        if (!str_ok(se->op) || !str_ok(se->peer) || !str_ok(se->local) ||
            !str_ok(se->transport) || !str_ok(se->http_method) || !str_ok(se->http_target) ||
            !str_ok(se->call))
            return fail(d, -EPROTO, "socket event string longer than %d bytes",
                        DECODE_MAX_STRING);
        if (se->n_errors > DECODE_MAX_SOCKET_ERRNOS)
            return fail(d, -EPROTO, "socket event with %zu errno counts (at most %d)",
                        se->n_errors, DECODE_MAX_SOCKET_ERRNOS);
        if (!d->sink.socket) {
            d->counts.ignored_records++; /* a reader without a net model */
            return 0;
        }
        rc = CALL(socket, se);
        break;
    }
    default:
        /* Unknown kinds come from a newer agent: they change nothing we
         * report. */
        d->counts.ignored_records++;
        return 0;
    }
    if (rc < 0)
        return sink_failed(d, rc);
    d->counts.records++;
    return 0;
}

int decode_frame(decoder_t *d, const uint8_t *buf, size_t len, uint64_t offset)
{
    int rc = 0;

    if (d->rc)
        return d->rc;
    d->offset = offset;
    d->record = 0;
    Perfagent__Batch *b = perfagent__batch__unpack(&d->pa, len, buf);
    if (!b) {
        if (d->arena.over == ARENA_OVER_LIMIT)
            rc = fail(d, -E2BIG, "batch needs more than %u bytes to unpack", DECODE_MAX_ALLOC);
        else if (d->arena.over == ARENA_OVER_MALLOC)
            rc = fail(d, -ENOMEM, "out of memory unpacking the batch");
        else
            rc = fail(d, -EPROTO, "batch does not parse");
        goto out;
    }
    if (d->saw_batch && b->seq < d->next_seq) {
        rc = fail(d, -EPROTO, "batch seq %" PRIu64 " after %" PRIu64, b->seq, d->next_seq - 1);
        goto out;
    }
    if (b->seq == UINT64_MAX) {
        rc = fail(d, -EPROTO, "batch seq out of range");
        goto out;
    }
    if (b->seq != d->next_seq) {
        /* Lost frames held rows that later deltas are relative to. */
        d->counts.frames_lost += b->seq - d->next_seq;
        tid_clear(&d->tids);
    }
    d->next_seq = b->seq + 1;
    d->saw_batch = 1;
    for (size_t i = 0; i < b->n_records; i++) {
        d->record = i;
        if ((rc = decode_record(d, b->records[i])) < 0)
            goto out;
    }
    if (b->round_end && d->sink.round_end &&
        (rc = d->sink.round_end(d->sink.ctx, b->round_start_ticks)) < 0) {
        /* A fault like any sink error: later frames are refused, not
         * applied on top of a round the sink could not apply. */
        rc = fail(d, rc, "cannot end the round: %s", strerror(-rc));
        goto out;
    }
    d->counts.frames++;
out:
    arena_reset(&d->arena); /* frees b: every byte of it lives in the arena */
    return rc;
}
