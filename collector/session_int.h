/*
 * session_int.h — what session.c (records, modules, stacks, threads,
 * lifecycle) and session_heap.c (the live heap) share about one session.
 * Private to those two files.
 */
#ifndef PA_SESSION_INT_H
#define PA_SESSION_INT_H

#include "session.h"

#define SESSION_TEMP_NS 1000000ull /* "temporary": freed within 1 ms of its allocation */

#include <stddef.h>
#include <stdint.h>

#include "cpu_model.h"
#include "net_model.h"
#include "decode.h"
#include "earlyfree.h"
#include "livemap.h"
#include "query_model.h"
#include "report.h"
#include "round.h"
#include "stream.h"
#include "symtab.h"

#define MAX_MODULES 16384 /* distinct modules kept; more are counted only */
#define MAX_THREADS 65536 /* threads with their own totals */
#define MAX_SNAPSHOTS 4096
/* Markers whose live set by stack is kept (for DIR/snapshots/NNN): a set is
 * 40 bytes per stack that allocated, so the later ones keep totals only. */
#define SESSION_SNAPSHOT_SETS 64

/* A stack's counts as they were at the latest peak of live bytes, saved
 * when the stack is first changed after that peak (gen = the peak's
 * number); see session_heap.c "THE PEAK". */
typedef struct peak_save {
    uint64_t alloc_bytes, alloc_objects, live_bytes, live_objects;
    uint64_t gen;
} peak_save_t;

typedef struct module_rec {
    char *path;
    uint8_t build_id[DECODE_MAX_BUILD_ID];
    size_t build_id_len;
    uint64_t load_bias;
    uint64_t (*ranges)[2];
    size_t n_ranges;
    int loaded; /* in the latest full map (or added since) */
    uint64_t hash;
} module_rec_t;

/* Open-addressing index of array positions + 1 (0 = empty slot) under a
 * 64-bit key hash; callers compare the entries the probe visits. */
typedef struct idx {
    uint32_t *slot;
    size_t cap; /* power of two, or 0 */
} idx_t;

struct session {
    char *sysroot;
    stream_t *stream;
    decoder_t *dec;
    int rc;
    int ended;
    uint64_t fault_off;
    char err[512];

    rep_process_t proc; /* Hello */
    rep_clock_t clk;    /* Hello, Goodbye, ClockSync pairs and the latest ticks */

    /* Goodbye */
    int goodbye;
    int32_t exit_code;

    /* modules: every one ever declared, in order; hash index of rec+1 */
    module_rec_t *mods;
    size_t n_mods, cap_mods;
    idx_t mod_index; /* by module_hash */
    uint64_t modules_dropped;
    symtab_t *symtab;
    size_t mods_in_symtab;

    /* stacks, indexed by id; frames in one pool */
    rep_stack_t *stacks;
    size_t n_stacks, cap_stacks;
    uint64_t *frames;
    size_t n_frames, cap_frames;

    livemap_t *live;
    round_t *round; /* this drain round's rows, applied in ticks order */
    /* Frees no live block explains yet, and the barriers of a round applied
     * in pieces (session_heap.c says when and why). */
    earlyfree_t *early;
    uint32_t round_no;    /* round_end markers seen (wraps; earlyfree tags) */
    int split;            /* this round is being applied in pieces          */
    int early_flush;      /* the flush in progress is one of those pieces   */
    uint64_t round_max_ticks; /* the newest row buffered in this round      */
    uint64_t round_start_ticks; /* its Batch.round_start_ticks while applied */
    uint64_t late_from;   /* a whole round's FREEs from here on leave barriers */
    uint64_t round_rows;  /* rows buffered before a piece is applied        */
    uint64_t pending_max; /* earlyfree's capacity                           */
    int fed;              /* heap rows were fed: limits are fixed           */
    reorder_stats_t ro;
    uint32_t last_tid;
    rep_thread_t *last_thread;
    session_totals_t t;

    /* threads, with a tid -> index+1 hash */
    rep_thread_t *threads;
    size_t n_threads, cap_threads;
    idx_t tid_index; /* by tid */

    int has_stats;
    rep_agent_stats_t stats;
    rep_crash_t crash; /* the Crash record, if any */

    cpu_model_t *cpu;   /* CPU samples (created with the session) */
    net_model_t *net;   /* SocketEvents (created with the session) */
    int cpu_per_thread; /* session_opts_t.cpu_per_thread */
    query_model_t *pq;  /* libpq QueryEvents */

    rep_snapshot_t *snaps;
    size_t n_snaps, cap_snaps;
    unsigned snap_dirs; /* DIR/snapshots/NNN numbers given out */
    /* live snapshots (session_opts_t.snap_*; session_snap.c) */
    int (*snap_dir)(void *, session_t *, char *, size_t);
    void (*snap_done)(void *, session_t *, uint64_t, const char *, const char *, int);
    void *snap_arg;
    char *snap_root; /* the process's report directory, once asked */
    int snap_root_rc;

    /* the peak of live bytes (session_heap.c) */
    uint64_t peak_bytes, peak_objects, peak_ticks;
    uint64_t peak_gen; /* peaks reached so far */
    peak_save_t *pk;   /* by stack id, cap_pk entries */
    size_t cap_pk;
    int peak_lost;     /* out of memory for pk: no peak snapshot */

    char *summary;
};

/* Totals of allocations saturate: a hostile stream may claim 2^48-byte blocks
 * forever.  Live totals use plain wrapping adds instead, because every add is
 * undone by the same subtraction and modular arithmetic keeps that exact. */
static inline void add_sat(uint64_t *a, uint64_t b)
{
    if (__builtin_add_overflow(*a, b, a))
        *a = UINT64_MAX;
}

/* session.c: the thread record of tid (created on first sight), or NULL
 * past MAX_THREADS or out of memory. */
rep_thread_t *session_thread_get(session_t *s, uint32_t tid);

/* session_heap.c: decode.c's heap and round_end sinks, and the flush of the
 * buffered round that everything reading the live heap calls first.
 * session_flush_round() is for the end of the rows (Goodbye, end of stream,
 * a fault); session_flush_early() for a reader that needs the live heap in
 * the middle of a round (a snapshot marker): rows of that round may still
 * come, so it is applied as a piece. */
int session_on_heap(void *ctx, uint32_t tid, const heap_row_t *rows, size_t n);
int session_on_round_end(void *ctx, uint64_t round_start_ticks);
int session_flush_round(session_t *s);
int session_flush_early(session_t *s);

/* session.c: the read-only view the reports are written from, as of now. */
void session_fill_input(session_t *s, rep_input_t *in);
/* session_snap.c: a marker's snapshot written as it arrives (sn is the
 * marker just recorded; live mode); the stacks at the peak for the reports
 * (n_stacks entries, caller frees; NULL without a peak or memory). */
int session_snapshot_live(session_t *s, rep_snapshot_t *sn);
rep_stack_t *session_peak_stacks(const session_t *s);

#endif
