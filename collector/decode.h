/*
 * decode — the only collector code that reads untrusted bytes.  Turns one
 * frame body (a serialized perfagent.Batch) into validated records and hands
 * them to a sink; HeapEvents.rows are parsed here into heap_row_t.
 *
 * Everything a sink receives has passed the checks below, so sinks may trust
 * lengths, counts and ids.  Protobuf messages passed to the sink live in a
 * per-frame arena: they are valid only during the callback.
 *
 * Checks (a failed check stops the stream, as the protocol says):
 *   - the Batch parses, using at most DECODE_MAX_ALLOC bytes of memory;
 *   - batch seq never goes back (a gap is counted as frames lost);
 *   - the first record of the stream is a Hello, there is one Hello and
 *     nothing follows the Goodbye; protocol_version is DECODE_PROTOCOL_VERSION
 *     (a stream of another version is refused, with a line that names it),
 *     clock is known;
 *   - strings <= DECODE_MAX_STRING bytes, argv <= DECODE_MAX_ARGV entries,
 *     build-id <= DECODE_MAX_BUILD_ID bytes, <= DECODE_MAX_MODULES modules per
 *     map and <= DECODE_MAX_RANGES ranges per module, each start < end;
 *   - StackDef ids: 1 <= id <= max_stacks and larger than every earlier id
 *     (gaps are allowed: their ids stay undefined); <= DECODE_MAX_FRAMES
 *     frames per stack and <= max_frames_total frames in all;
 *   - rows: known tag, decoded addr != 0, size and weight <= DECODE_MAX_SIZE,
 *     stack id 0 or defined, varints of at most 10 bytes, no truncation;
 *   - CpuSamples: as many time_ns as stack_id entries, every stack id 0 or
 *     defined, 1 <= period_ns <= DECODE_MAX_PERIOD_NS;
 *   - Crash: 1 <= signo <= 64, stack id 0 or defined.
 * Rows are delta-encoded per thread (HeapEvents in the proto): the decoder
 * keeps each tid's last addr and ticks and hands the sink absolute rows.
 * Delta rows of a tid it has no state for (the stream joined the agent's
 * rings mid-way, or the state was forgotten) are checked, skipped and
 * counted.  States are forgotten at a gap in Batch.seq, at a ThreadInfo
 * with exited set, and all at once when a sync row would make more than
 * max_threads of them: memory stays bounded, and the cost is skipped rows,
 * never wrong ones.
 * Records reserved for later issues (query, socket), records of an unknown
 * kind, and CpuSamples when the sink has no cpu callback are skipped and
 * counted (CpuSamples are checked all the same).
 *
 * Not thread-safe: one decoder per stream.
 */
#ifndef PA_DECODE_H
#define PA_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "../proto/wire.h"
#include "perfagent.pb-c.h"

#define DECODE_MAX_STRING 4096
#define DECODE_MAX_ARGV 64
#define DECODE_MAX_SOCKET_ERRNOS 64
#define DECODE_MAX_BUILD_ID 64
#define DECODE_MAX_MODULES 4096
#define DECODE_MAX_RANGES 64
#define DECODE_MAX_FRAMES PA_WIRE_MAX_FRAMES
#define DECODE_MAX_SIZE (UINT64_C(1) << 48) /* no block or weight is bigger */
#define DECODE_MAX_ALLOC (64u << 20)        /* unpack memory per frame */
#define DECODE_DEFAULT_MAX_STACKS (UINT64_C(1) << 21)
#define DECODE_DEFAULT_MAX_FRAMES_TOTAL (UINT64_C(1) << 26)
/* Threads with delta state at once.  The agent has at most 4096 thread
 * buffers alive and says when a thread exits, so an honest stream stays far
 * below this. */
#define DECODE_DEFAULT_MAX_THREADS 65536
#define DECODE_PROTOCOL_VERSION PA_WIRE_PROTOCOL_VERSION
#define DECODE_MAX_PERIOD_NS UINT64_C(10000000000) /* 10 s: below 0.1 Hz is no profile */

/* Row kinds; a row's tag is the kind, | ROW_SYNC when addr and ticks are
 * absolute instead of deltas (proto/wire.h). */
enum {
    ROW_ALLOC = PA_WIRE_ROW_ALLOC,
    ROW_FREE = PA_WIRE_ROW_FREE,
    ROW_SAMPLE = PA_WIRE_ROW_SAMPLE,
    ROW_SYNC = PA_WIRE_ROW_SYNC
};

/* One decoded HeapEvents row.  FREE rows have size = weight = stack_id = 0;
 * ALLOC rows have weight = size. */
typedef struct heap_row {
    uint64_t addr;
    uint64_t size;
    uint64_t ticks;
    uint64_t weight;
    uint32_t stack_id;
    uint8_t kind; /* ROW_* */
} heap_row_t;

/* The sink: each callback returns 0, or a negative errno (-ENOMEM) that stops
 * the stream.  Unset callbacks are skipped.  heap receives the rows of one
 * HeapEvents in order, possibly over several calls. */
typedef struct decode_sink {
    void *ctx;
    int (*hello)(void *ctx, const Perfagent__Hello *h);
    int (*modules)(void *ctx, const Perfagent__ModuleMap *m);
    int (*stack)(void *ctx, const Perfagent__StackDef *sd);
    int (*heap)(void *ctx, uint32_t tid, const heap_row_t *rows, size_t n);
    int (*thread)(void *ctx, const Perfagent__ThreadInfo *t);
    /* One thread's CPU samples: n_stack_id == n_time_ns, ids 0 or defined. */
    int (*cpu)(void *ctx, const Perfagent__CpuSamples *cs);
    int (*snapshot)(void *ctx, const Perfagent__SnapshotMarker *m);
    /* A libpq query (strings within DECODE_MAX_STRING). */
    int (*query)(void *ctx, const Perfagent__QueryEvent *q);
    /* A socket connection's counters or an HTTP request (strings within
     * DECODE_MAX_STRING, at most DECODE_MAX_SOCKET_ERRNOS errno counts). */
    int (*socket)(void *ctx, const Perfagent__SocketEvent *ev);
    int (*stats)(void *ctx, const Perfagent__AgentStats *st);
    int (*goodbye)(void *ctx, const Perfagent__Goodbye *g);
    /* A fatal signal (1 <= signo <= 64, stack_id 0 or defined, strings
     * within DECODE_MAX_STRING). */
    int (*crash)(void *ctx, const Perfagent__Crash *c);
    /* after the last record of a Batch with round_end set */
    int (*round_end)(void *ctx, uint64_t round_start_ticks); /* Batch.round_start_ticks, 0: none */
} decode_sink_t;

typedef struct decode_limits {
    uint64_t max_stacks;       /* 0 = DECODE_DEFAULT_MAX_STACKS */
    uint64_t max_frames_total; /* 0 = DECODE_DEFAULT_MAX_FRAMES_TOTAL */
    uint64_t max_threads;      /* 0 = DECODE_DEFAULT_MAX_THREADS */
} decode_limits_t;

/* What the decoder saw, for the summary. */
typedef struct decode_counts {
    uint64_t frames;          /* frames decoded */
    uint64_t records;         /* records handed on */
    uint64_t rows;            /* heap rows handed on */
    uint64_t frames_lost;     /* by gaps in Batch.seq */
    uint64_t ignored_records; /* reserved or unknown record kinds */
    uint64_t count_mismatch;  /* HeapEvents whose count (if set) differs from its rows */
    uint64_t stack_id_gaps;   /* StackDef ids skipped */
    uint64_t rows_unsynced;   /* delta rows skipped: no sync row of their tid yet */
    uint64_t cpu_samples;     /* CPU samples handed to the cpu callback */
} decode_counts_t;

typedef struct decoder decoder_t;

/* lim may be NULL (defaults).  The sink is copied. */
decoder_t *decode_new(const decode_limits_t *lim, const decode_sink_t *sink);
void decode_free(decoder_t *d); /* accepts NULL */

/* Decode one frame body; `offset` is its stream offset (for messages).
 * Returns 0, -EPROTO (bad data), -E2BIG (a limit), -ENOMEM, or the sink's
 * error.  Records before the faulty one have reached the sink.  After a fault
 * the decoder refuses every later frame with the same code. */
int decode_frame(decoder_t *d, const uint8_t *buf, size_t len, uint64_t offset);

/* "stream offset N: frame F record R: what", NULL when none. */
const char *decode_error(const decoder_t *d);
uint64_t decode_fault_offset(const decoder_t *d);
const decode_counts_t *decode_counts(const decoder_t *d);

#endif
