/*
 * report_int.h — what the report files share (report.c writes the files;
 * report_heap.c the heap reports; report_summary.c summary.txt).
 */
#ifndef PA_REPORT_INT_H
#define PA_REPORT_INT_H

#include <stdio.h>

#include "render.h"
#include "report.h"

#define TOP_TXT 20     /* stacks in leaks.txt */
#define TOP_THREADS 10 /* threads in summary.txt */

typedef struct ctx {
    const rep_input_t *in;
    const reorder_stats_t *ro; /* NULL when the caller has none */
    resolver_t r;
    uint32_t *leaks;
    size_t n_leaks;
    char **folded; /* per stack id, NULL when it allocated nothing */
    /* CPU (report_cpu.c, cpu_prepare): folded text per stack id with
     * samples, the merged lines by stack and, per thread, the file's */
    char **cpu_folded;
    cpu_folded_line_t *cpu_lines, *cpu_thread_lines;
    size_t n_cpu_lines, n_cpu_thread_lines;
    const rep_thread_t **by_tid; /* in->threads sorted by tid, for names */
    size_t n_by_tid;
    const rep_heap_snap_t *snap; /* writing a snapshot (heap.json): NULL for the reports */
    /* suppress.c: per stack id, 0 or the 1-based rule that hides it from the
     * leak list (NULL: none); what was hidden, in total and per rule */
    uint16_t *supp_rule;
    uint64_t supp_bytes, supp_objects, supp_stacks;
} ctx_t;

/* "exact" or "sampled". */
const char *mode_name(const rep_input_t *in);
int cmp_u64_desc(uint64_t a, uint64_t b);
/* The drop counters on one line, or why there are none. */
void put_drops(FILE *f, const rep_input_t *in, const char *indent);
/* The WARNING lines that say a report is not exact (drops, lost frames,
 * rows the collector could not put in order); nothing when it is. */
void put_incomplete_warning(FILE *f, const rep_input_t *in);
void put_order_warning(FILE *f, const reorder_stats_t *ro);
void put_stream_state(FILE *f, const rep_input_t *in);

/* report.c */
int mkdir_p(const char *dir);
/* leaks.txt / summary.txt: what the suppressions hid, in total and by rule
 * (nothing when they hid nothing). */
void put_suppressed(FILE *f, const ctx_t *c, const char *indent);
typedef int (*writer_fn)(FILE *f, ctx_t *c);
/* Write via "name.tmp" + rename, so a reader never sees half a file. */
int write_file(const char *dir, const char *name, writer_fn fn, ctx_t *c);

/* report_summary.c: ticks -> CLOCK_MONOTONIC ns (-1: the clock cannot say);
 * ns since the agent started (-1: unknown); the run's length (-1: unknown). */
int ticks_to_ns(const rep_clock_t *c, uint64_t ticks, uint64_t *ns);
int64_t since_start(const rep_input_t *in, uint64_t mono_ns);
int64_t run_duration(const rep_input_t *in, int *partial);

/* report_heap.c */
int leak_list(const rep_input_t *in, uint32_t **out, size_t *n);
int heap_folded_want(const rep_stack_t *st, void *arg);
int write_leaks_json(FILE *f, ctx_t *c);
int write_leaks_txt(FILE *f, ctx_t *c);
int write_alloc_folded(FILE *f, ctx_t *c);
int write_inuse_folded(FILE *f, ctx_t *c);
int write_alloc_svg(FILE *f, ctx_t *c);
int write_inuse_svg(FILE *f, ctx_t *c);

/* report_cpu.c: CPU reports are written when cpu_reports_wanted();
 * cpu_prepare() builds what they need (0 or -ENOMEM), cpu_release() frees
 * it (also after a failed prepare). */
int cpu_reports_wanted(const rep_input_t *in);
int cpu_prepare(ctx_t *c);
void cpu_release(ctx_t *c);
int write_cpu_folded(FILE *f, ctx_t *c);
int write_cpu_svg(FILE *f, ctx_t *c);
void write_cpu_summary(FILE *f, ctx_t *c);
/* The name a ThreadInfo gave tid, NULL when none did (after cpu_prepare). */
const char *cpu_thread_name(const ctx_t *c, uint32_t tid);

/* report_pprof.c: cpu.pb.gz, heap.pb.gz */
int write_cpu_pprof(FILE *f, ctx_t *c);
int write_heap_pprof(FILE *f, ctx_t *c);

/* report_pq.c: queries.json, queries.txt, slow_queries.json, n_plus_one.json,
 * pq.folded, pq.svg when the process made libpq calls (pq_reports_wanted);
 * their summary.txt section. */
int pq_reports_wanted(const rep_input_t *in);
int write_pq_reports(const char *dir, ctx_t *c);
void write_pq_summary(FILE *f, ctx_t *c);
/* report_net.c: net.json, net.txt, http.json, http.txt and the summary's
 * "net" section, when the process made socket events. */
int net_reports_wanted(const rep_input_t *in);
int write_net_json(FILE *f, ctx_t *c);
int write_net_txt(FILE *f, ctx_t *c);
int write_http_json(FILE *f, ctx_t *c);
int write_http_txt(FILE *f, ctx_t *c);
void write_net_summary(FILE *f, ctx_t *c);
/* wall.folded / wall.svg: microseconds blocked in socket calls by stack */
int wall_reports_wanted(const rep_input_t *in);
int write_wall_folded(FILE *f, ctx_t *c);
int write_wall_svg(FILE *f, ctx_t *c);

/* report_summary.c */
int write_summary(FILE *f, ctx_t *c);
/* report_summary.c: the Crash record as a "crash" key of an open JSON
 * object (nothing without one); 0 or -ENOMEM. */
struct json;
int put_crash_json(struct json *j, ctx_t *c);

#endif
