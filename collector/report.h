/*
 * report — writes one process's reports (leaks.json, leaks.txt, alloc.folded,
 * inuse.folded, summary.txt) from a read-only view of its session.
 *
 * session.c fills a rep_input_t and calls report_write(); report.c never sees
 * session_t, so what the reports may depend on is exactly this struct (the
 * stream's contents, plus what symtab reads from the collector's disk).
 * Output is deterministic: sorted, no clocks of "now", no pointers.
 */
#ifndef PA_REPORT_H
#define PA_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "cpu_model.h"
#include "query_model.h"
#include "net_model.h"
#include "session.h"
#include "symtab.h"

/* One interned stack and what was allocated from it.  Index = stack id; id 0
 * is the "no stack" bucket (the agent's stack table was full or the unwind
 * failed).  Byte and object counts follow the mode: exact = requested sizes
 * and real objects; sampled = sample weights and estimated objects. */
typedef struct rep_stack {
    uint64_t frames_off; /* first frame in rep_input_t.frames */
    uint32_t n_frames;
    uint8_t defined; /* 0 for ids skipped by the agent */
    uint8_t leaf_is_pc;
    uint8_t truncated;
    uint64_t alloc_bytes, alloc_objects;
    uint64_t live_bytes, live_objects;
    uint64_t temp_bytes, temp_objects; /* freed within SESSION_TEMP_NS of their allocation */
} rep_stack_t;

typedef struct rep_thread {
    uint32_t tid;
    char *name; /* NULL when no ThreadInfo named it */
    int exited;
    uint64_t allocs, frees, bytes;
} rep_thread_t;

/* A stack's counts at one moment (a snapshot's live set, sparse). */
typedef struct rep_snap_count {
    uint32_t stack_id;
    uint64_t alloc_bytes, alloc_objects;
    uint64_t live_bytes, live_objects;
} rep_snap_count_t;

/* A SnapshotMarker: totals at that moment and, for the first
 * SESSION_SNAPSHOT_SETS markers, the live set by stack (counts, n_counts:
 * every stack that had allocated by then), from which the reports write
 * DIR/snapshots/NNN/.  has_set = 0: totals only. */
typedef struct rep_snapshot {
    uint64_t id;
    char *label;
    uint64_t ticks;
    uint64_t live_bytes, live_objects;
    uint64_t bytes_allocated;
    int has_set;
    rep_snap_count_t *counts;
    size_t n_counts;
    unsigned dir_no; /* its DIR/snapshots/NNN, 0 = none              */
    int written;     /* written when it arrived (a collector): not again */
} rep_snapshot_t;

/* The last AgentStats (running totals). */
typedef struct rep_agent_stats {
    uint64_t records, bytes_sent;
    uint64_t drops_buffer_full, drops_no_buffer, drops_stack_table, drops_output, drops_thread_exit;
    uint64_t stacks, threads, reconnects, unwind_failures;
    /* CPU sampling (proto AgentStats.cpu_*; zeros when it was off) */
    uint64_t cpu_samples, cpu_lost, cpu_truncated, cpu_no_regs, cpu_stack_table, cpu_throttled;
    uint64_t cpu_signals, cpu_overruns; /* timer mode */
    uint64_t heap_samples_dropped, heap_samples_live; /* sampled heap mode */
    uint64_t events_dropped; /* typed events (queries, sockets) lost: a thread's event ring was full */
} rep_agent_stats_t;

/* The stream's Crash record (a fatal signal the agent caught). */
typedef struct rep_crash {
    int has;
    int32_t signo, code;
    uint64_t addr;
    uint32_t tid, stack_id, sender_pid;
    uint64_t ticks, mono_ns;
    int host_handler, direct;
    char *name;    /* "SIGSEGV", ... */
    char *skipped; /* why stack_id is 0 ("" when it is not) */
} rep_crash_t;

/* From the Hello: zeros and NULLs without one. */
typedef struct rep_process {
    int has_hello;
    uint32_t pid, ppid, parent_stream_pid, protocol_version, max_frames;
    char *exe, *argv_json, *agent_version, *hostname, *unwinder;
    uint64_t malloc_rate; /* Config.malloc_rate: 1 = exact */
    uint32_t cpu_hz, cpu_stack_bytes; /* Config: 0 = CPU sampling not asked for */
    char *cpu_mechanism;              /* Config.cpu_mechanism: how, or why not */
} rep_process_t;

/* What the stream said about time.  Durations are derived from it when the
 * summary is written: Hello/Goodbye wall-clock times when both exist, else
 * Hello's start_mono_ns up to the last ticks or ClockSync seen.  TSC ticks map
 * to ns linearly through the first and the latest ClockSync pair. */
typedef struct rep_clock {
    int tsc; /* Hello.clock == CLOCK_TSC */
    uint64_t start_mono_ns, start_unix_ns;
    uint64_t end_unix_ns; /* Goodbye's, 0 without one */
    int n_pairs;          /* ClockSync pairs seen (counted up to 2) */
    uint64_t pair0_ticks, pair0_ns, pair1_ticks, pair1_ns;
    int has_ticks;
    uint64_t max_ticks; /* latest heap row ticks */
} rep_clock_t;

typedef struct rep_input {
    rep_process_t proc;
    rep_clock_t clock;

    /* how the stream went */
    int goodbye;
    int32_t exit_code;
    int ended;         /* session_end() was called */
    const char *fault; /* session_error(), NULL when none */
    uint64_t stream_bytes;

    /* the heap */
    const rep_stack_t *stacks; /* n_stacks entries, [0] = no stack */
    size_t n_stacks;
    const uint64_t *frames;
    session_totals_t totals;
    const rep_thread_t *threads;
    size_t n_threads;
    const rep_snapshot_t *snapshots;
    size_t n_snapshots;
    /* The live heap when live bytes were highest (exact mode; NULL: none):
     * n_stacks entries as in stacks, at peak_ticks. */
    const rep_stack_t *peak_stacks;
    uint64_t peak_ticks, peak_live_bytes, peak_live_objects;

    int has_stats;
    rep_agent_stats_t stats;
    rep_crash_t crash;

    /* CPU samples per stack id, per thread and per (thread, stack); NULL
     * when the session kept none.  CPU reports are written when this has
     * samples or the Hello asked for sampling (cpu_hz). */
    const cpu_model_t *cpu;
    int cpu_per_thread; /* cpu.folded roots each stack at its thread's name */
    const query_model_t *pq; /* libpq queries (report_pq.c); NULL or empty: no pq files */

    /* SocketEvents (report_net.c): net.* and http.* are written when it
     * has any.  Not const: its lists sort in place. */
    net_model_t *net;

    symtab_t *symtab; /* NULL: every frame is "[unknown]" */
    int no_suppress;  /* leaks.*: show what the suppressions would hide */
} rep_input_t;

/* One snapshot of the live heap, as report_write_snapshot() writes it. */
typedef struct rep_heap_snap {
    const char *kind;          /* "exit", "marker" (later "request", "interval", "peak") */
    int64_t time_ns;           /* since the process started; -1 = unknown */
    const rep_stack_t *stacks; /* in->n_stacks entries: the frames of in->stacks,
                                  alloc_* and live_* as they were at that moment */
    uint64_t live_bytes, live_objects; /* the sums of stacks[].live_* */
} rep_heap_snap_t;

/* Writes one snapshot directory: heap.json (leaks.json's schema plus "time",
 * seconds since the process started or null, and "kind"), inuse.folded,
 * inuse.svg and heap.pb.gz (Go's four heap sample types) into dir (created
 * with parents).  in gives the process, the frames and the symbols; sn the
 * counts.  No suppressions: a snapshot is the whole live heap.  0 or -errno. */
int report_write_snapshot(const rep_input_t *in, const rep_heap_snap_t *sn, const char *dir);

/* The snapshot of marker m (m->dir_no set) into DIR/snapshots/NNN, whose
 * path goes to path[len]; stacks: in->n_stacks entries, the counts at the
 * marker.  0 or -errno. */
int report_write_marker(const rep_input_t *in, const rep_snapshot_t *m, const rep_stack_t *stacks,
                        const char *dir, char *path, size_t len);

/* The live sets of in->snapshots (those not written already) and the exit:
 * DIR/snapshots/001, 002, ... in the order taken (dir_no), the exit one last,
 * and DIR/snapshots/peak (in->peak_stacks).  0 or -errno of the first
 * failure. */
int report_write_snapshots(const rep_input_t *in, const char *dir);

/* Write the files (leaks.json, leaks.txt, alloc.folded, inuse.folded,
 * alloc.svg, inuse.svg, heap.pb.gz, summary.txt, snapshots/NNN/, and with
 * CPU samples cpu.folded, cpu.svg and cpu.pb.gz) into dir (created with parents if missing), each via a
 * temporary name and rename(2).  *summary receives the summary text (caller
 * frees) even when a file could not be written, NULL if out of memory.
 * Returns 0 or -errno of the first failure. */
int report_write(const rep_input_t *in, const char *dir, char **summary);

/* report_write() with the reorder counters (NULL = none): their WARNINGs go
 * into summary.txt and leaks.txt next to the drop warning. */
int report_write_ex(const rep_input_t *in, const reorder_stats_t *ro, const char *dir,
                    char **summary);

#endif
