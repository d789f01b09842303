/*
 * session — everything the collector knows about one traced process: its
 * Hello, modules, interned stacks, live heap, per-stack totals, threads and
 * agent stats.  Fed raw stream bytes (from a socket or a .pfr file) in chunks
 * of any size; it does the framing and decoding (through decode.c, the only
 * code that reads untrusted bytes) and writes the reports.
 *
 * Not thread-safe: one session is owned by one connection or one file.
 */
#ifndef PA_SESSION_H
#define PA_SESSION_H

#include <stddef.h>
#include <stdint.h>

typedef struct session session_t;

typedef struct session_opts {
    const char *sysroot;      /* for the symbolizer, may be NULL            */
    const char *peer;         /* for log lines: "unix:pid=123", "file:x.pfr" */
    uint64_t max_stacks;      /* caps against hostile agents (0 = default)  */
    uint64_t max_threads;     /* threads with heap-row delta state (0 = default) */
    uint64_t max_live;        /* live allocations tracked (0 = default)     */
    int cpu_per_thread;       /* cpu.folded: each stack under its thread's name */
    /* Live snapshots (a collector; NULL for a file, whose markers are kept
     * for the reports).  snap_dir: the process's report directory, absolute,
     * into path[len]; asked once, at the first SnapshotMarker; 0 or -errno.
     * Each marker's snapshot is then written at once into
     * <path>/snapshots/NNN and snap_done says where (dir) or why not (rc <
     * 0; dir NULL).  label is the marker's ("request", "interval"). */
    int (*snap_dir)(void *arg, session_t *s, char *path, size_t len);
    void (*snap_done)(void *arg, session_t *s, uint64_t id, const char *label, const char *dir,
                      int rc);
    void *snap_arg;
} session_opts_t;

session_t *session_new(const session_opts_t *opts);
void session_free(session_t *s); /* accepts NULL */

/* Feed the next `len` bytes of the stream.  Returns 0, or -EPROTO/-E2BIG/
 * -ENOMEM on a fault; after a fault the session ignores further input and
 * session_error() says what and at which stream offset.  Reports can still be
 * written from what was decoded before the fault. */
int session_feed(session_t *s, const uint8_t *buf, size_t len);

/* The stream ended (EOF / connection closed).  Returns 0 when it ended on a
 * frame boundary, -EPROTO when a frame was cut short (recorded in error). */
int session_end(session_t *s);

const char *session_error(const session_t *s); /* NULL when none */
int session_has_hello(const session_t *s);
uint32_t session_pid(const session_t *s);
uint32_t session_ppid(const session_t *s);
const char *session_exe(const session_t *s);
/* argv as a JSON array text, e.g. ["./app","-x"]; owned by the session. */
const char *session_argv_json(const session_t *s);

/* Write leaks.json, leaks.txt, alloc.folded, inuse.folded, alloc.svg,
 * inuse.svg and summary.txt, and cpu.folded and cpu.svg when the stream
 * has CPU samples or asked for them, into `dir` (created if missing).  Output depends only on the stream bytes,
 * so a file replayed with `perfagent report` gives identical files.
 * Returns 0 or -errno. */
int session_write_reports(session_t *s, const char *dir);

/* The summary text (what summary.txt holds); owned by the session, valid
 * after session_write_reports(). */
const char *session_summary(const session_t *s);

/* ---- additions: counters for tests and front ends ---------------------- */

/* What the stream said, totalled.  Bytes/objects follow the mode: exact =
 * requested sizes and real objects; sampled = sample weights and estimated
 * objects (weight / size per sample, rounded, at least 1). */
typedef struct session_totals {
    uint64_t allocs;            /* ALLOC rows                                   */
    uint64_t samples;           /* SAMPLE rows                                  */
    uint64_t frees;             /* FREE rows                                    */
    uint64_t frees_unknown;     /* FREEs with no ALLOC in the stream (balance)  */
    uint64_t frees_stale;       /* older than the live block there: ignored     */
    uint64_t frees_early;       /* arrived before their (cross-thread) ALLOC    */
    uint64_t reuse_implied;     /* ALLOC on a live address: old block freed     */
    uint64_t allocs_superseded; /* ALLOC older than the live block there        */
    uint64_t bytes_allocated, objects_allocated;
    uint64_t live_bytes, live_objects; /* live now = leaked at end of stream   */
    /* Temporary allocations: freed within SESSION_TEMP_NS (1 ms, as the
     * issue asks; heaptrack counts "freed before the next allocation"),
     * when the clock could tell (has_temp), and the frees it could not
     * time (no tick rate yet). */
    uint64_t temp_bytes, temp_objects, temp_untimed;
    uint64_t live_blocks;       /* entries in the live map                      */
    uint64_t live_untracked;    /* blocks not tracked: max_live reached         */
    uint64_t no_stack;          /* allocations with stack id 0                  */
    uint64_t stacks;            /* StackDefs                                    */
    uint64_t modules;           /* distinct modules declared                    */
    uint64_t threads;           /* threads seen                                 */
    uint64_t frames;            /* stream frames decoded                        */
    uint64_t frames_lost;       /* gaps in Batch.seq                            */
    uint64_t rows;              /* heap rows decoded                            */
    uint64_t ignored_records;   /* reserved / unknown record kinds              */
    uint64_t count_mismatch;    /* HeapEvents.count != rows                     */
    uint64_t rows_unsynced;     /* delta rows skipped before their tid's sync row */
    uint64_t cpu_samples;       /* CPU samples decoded (all threads)            */
} session_totals_t;

void session_get_totals(const session_t *s, session_totals_t *out);

/* Per-stack totals of stack `id` (0 = the "no stack" bucket).  Returns 0, or
 * -ENOENT when the stream defined no such stack. */
int session_stack_totals(const session_t *s, uint32_t id, uint64_t *alloc_bytes,
                         uint64_t *alloc_objects, uint64_t *live_bytes, uint64_t *live_objects);

int session_has_goodbye(const session_t *s);
/* The Hello's start_time_unix_ns (with the pid, what names a stream). */
uint64_t session_start_unix_ns(const session_t *s);
/* A stream that may go on where it stopped: a Hello, no Goodbye, no fault,
 * and its framing between two frames (a resumed connection, stream.h). */
int session_resumable(const session_t *s);
/* All of that but the frame boundary, which a connection not read to its
 * end yet may still reach. */
int session_may_resume(const session_t *s);
/* The stream goes on through another connection: snap_arg follows it. */
void session_set_snap_arg(session_t *s, void *arg);
/* Stream offset of the fault session_error() describes (0 when none). */
uint64_t session_fault_offset(const session_t *s);

/* ---- reordering (session_heap.c keeps the rules) ----------------------------
 * How the session puts heap rows back in time order, as tests, front ends
 * and the reports need to see it: the limits it applies and what it counted. */
/* Rows buffered per drain round before the round is applied in pieces (see
 * session_heap.c), and addresses the pending-free store may hold. */
#define REORDER_DEFAULT_ROUND_ROWS (UINT64_C(4) << 20)

typedef struct reorder_stats {
    uint64_t rounds;       /* round_end markers seen                          */
    uint64_t rounds_split; /* rounds over round_rows rows, applied in pieces  */
    uint64_t round_rows;   /* the limit in force                              */
    uint64_t pending_peak; /* most addresses held in the pending-free store   */
    uint64_t pending_max;  /* the store's capacity                            */
    uint64_t unplaceable;  /* rows the store had no room for: WARNING         */
    uint64_t rows_late;    /* ALLOCs older than a FREE already expired: WARNING */
} reorder_stats_t;

/* Limits for a session that has not been fed yet (0 = default for each).
 * The environment can set them for any session too, for tests and tuning:
 * PERFAGENT_COLLECTOR_ROUND_ROWS and PERFAGENT_COLLECTOR_PENDING_MAX.
 * Returns 0, -EBUSY once rows were fed, or -ENOMEM. */
int session_set_reorder_limits(session_t *s, uint64_t round_rows, uint64_t pending_max);

void session_get_reorder(const session_t *s, reorder_stats_t *out);

#endif
