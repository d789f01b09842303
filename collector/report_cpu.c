/*
 * report_cpu.c — the CPU reports: cpu.folded (samples per symbolized stack,
 * root first, the leaf looked up at the sampled pc), cpu.svg (the same lines
 * through flamegraph.c) and the CPU section of summary.txt (how samples were
 * taken, per thread what was delivered, what was lost and why, the top
 * functions by self).
 *
 * cpu_prepare() builds every line once (cpu_model_folded merges stacks that
 * render alike, sorted by text), so the folded file, the flame graph and the
 * table can never disagree.  Deterministic: byte order of texts, threads by
 * samples then tid.
 */
#include "report_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flamegraph.h"
#include "top.h"
#include "util.h"

#define TOP_CPU_ROWS 20    /* functions in summary.txt's table */
#define TOP_CPU_THREADS 20 /* threads listed in summary.txt */

int cpu_reports_wanted(const rep_input_t *in)
{
    return in->cpu && (in->proc.cpu_hz || cpu_model_samples(in->cpu));
}

/* render_folded's filter: stacks with CPU samples. */
static int cpu_want(const rep_stack_t *st, void *arg)
{
    const rep_input_t *in = arg;
    return cpu_model_stack_samples(in->cpu, (uint32_t)(st - in->stacks)) != 0;
}

static int cmp_by_tid(const void *pa, const void *pb)
{
    const rep_thread_t *a = *(const rep_thread_t *const *)pa, *b = *(const rep_thread_t *const *)pb;
    return (a->tid > b->tid) - (a->tid < b->tid);
}

/* The name a ThreadInfo gave tid, NULL when none did. */
const char *cpu_thread_name(const ctx_t *c, uint32_t tid)
{
    size_t lo = 0, hi = c->n_by_tid;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->by_tid[mid]->tid < tid)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < c->n_by_tid && c->by_tid[lo]->tid == tid && c->by_tid[lo]->name &&
        c->by_tid[lo]->name[0])
        return c->by_tid[lo]->name;
    return NULL;
}

/* cpu_model's renderer: the stack's folded text, under its thread's name
 * ("[tid N]" when unnamed) in per-thread mode, the only one that passes a
 * tid (no thread has tid 0). */
static int render_cpu(void *ctx, uint32_t tid, uint32_t stack_id, char **out)
{
    const ctx_t *c = ctx;
    const char *text = stack_id < c->in->n_stacks ? c->cpu_folded[stack_id] : NULL;
    sb_t b = {0};
    char nb[32];

    if (tid) {
        const char *name = cpu_thread_name(c, tid);
        if (!name) {
            snprintf(nb, sizeof(nb), "[tid %" PRIu32 "]", tid);
            name = nb;
        }
        sb_put_folded(&b, name);
        sb_putn(&b, ";", 1);
    }
    /* Every sampled id is defined (decode.c checks): "[unknown]" is only a
     * guard. */
    sb_putn(&b, text ? text : "[unknown]", strlen(text ? text : "[unknown]"));
    if (b.oom) {
        free(b.p);
        return -ENOMEM;
    }
    *out = b.p;
    return 0;
}

int cpu_prepare(ctx_t *c)
{
    const rep_input_t *in = c->in;
    int rc;

    if (!cpu_reports_wanted(in))
        return 0;
    if (in->n_threads) {
        if (!(c->by_tid = malloc(in->n_threads * sizeof(*c->by_tid))))
            return -ENOMEM;
        for (size_t i = 0; i < in->n_threads; i++)
            c->by_tid[i] = &in->threads[i];
        util_sort(c->by_tid, in->n_threads, sizeof(*c->by_tid), cmp_by_tid);
        c->n_by_tid = in->n_threads;
    }
    if ((rc = render_folded(&c->r, cpu_want, (void *)in, &c->cpu_folded)) < 0)
        return rc;
    /* The table is by function whatever the file's roots are (thread names
     * are not functions), so the lines without threads are always made. */
    if ((rc = cpu_model_folded(in->cpu, 0, render_cpu, c, &c->cpu_lines, &c->n_cpu_lines)) < 0)
        return rc;
    if (in->cpu_per_thread &&
        (rc = cpu_model_folded(in->cpu, 1, render_cpu, c, &c->cpu_thread_lines,
                               &c->n_cpu_thread_lines)) < 0)
        return rc;
    return 0;
}

void cpu_release(ctx_t *c)
{
    render_folded_free(c->cpu_folded, c->in->n_stacks);
    cpu_folded_free(c->cpu_lines, c->n_cpu_lines);
    cpu_folded_free(c->cpu_thread_lines, c->n_cpu_thread_lines);
    free(c->by_tid);
}

/* What cpu.folded and cpu.svg hold. */
static const cpu_folded_line_t *file_lines(const ctx_t *c, size_t *n)
{
    if (c->in->cpu_per_thread) {
        *n = c->n_cpu_thread_lines;
        return c->cpu_thread_lines;
    }
    *n = c->n_cpu_lines;
    return c->cpu_lines;
}

int write_cpu_folded(FILE *f, ctx_t *c)
{
    size_t n;
    const cpu_folded_line_t *v = file_lines(c, &n);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s %" PRIu64 "\n", v[i].text, v[i].count);
    return 0;
}

int write_cpu_svg(FILE *f, ctx_t *c)
{
    const rep_input_t *in = c->in;
    char title[512];
    size_t n;
    const cpu_folded_line_t *v = file_lines(c, &n);
    fg_line_t *lines = malloc((n ? n : 1) * sizeof(*lines));
    int rc;

    if (!lines)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        lines[i] = (fg_line_t){.stack = v[i].text, .value = v[i].count};
    snprintf(title, sizeof(title), "CPU samples (%" PRIu32 " Hz%s): %s (pid %" PRIu32 ")",
             in->proc.cpu_hz, in->cpu_per_thread ? ", per thread" : "",
             in->proc.exe ? base_name(in->proc.exe) : "?", in->proc.pid);
    rc = flamegraph_write_svg(f, &(fg_input_t){
                                     .lines = lines, .n_lines = n, .title = title, .unit = "samples"});
    free(lines);
    return rc;
}

/* ---- summary.txt ------------------------------------------------------------- */

static int cmp_cpu_thread(const void *pa, const void *pb)
{
    const cpu_thread_stat_t *a = *(const cpu_thread_stat_t *const *)pa,
                            *b = *(const cpu_thread_stat_t *const *)pb;
    int c = cmp_u64_desc(a->samples, b->samples);
    return c ? c : (a->tid > b->tid) - (a->tid < b->tid);
}

static void put_secs(FILE *f, uint64_t ns)
{
    fprintf(f, "%" PRIu64 ".%03" PRIu64 " s", ns / 1000000000, ns % 1000000000 / 1000000);
}

void write_cpu_summary(FILE *f, ctx_t *c)
{
    const rep_input_t *in = c->in;
    const rep_agent_stats_t *s = &in->stats;
    const cpu_thread_stat_t *t;
    size_t nt = cpu_model_threads(in->cpu, &t);
    uint64_t total = cpu_model_samples(in->cpu), no_stack = cpu_model_stack_samples(in->cpu, 0);
    uint64_t cpu_ns = 0, want = 0;

    fputs("\ncpu\n  sampling:   ", f);
    put_text(f, in->proc.cpu_mechanism && in->proc.cpu_mechanism[0] ? in->proc.cpu_mechanism
                                                                    : "?");
    fprintf(f, "\n  requested:  %" PRIu32 " Hz of each thread's CPU time, %" PRIu32
               " stack bytes copied per sample\n",
            in->proc.cpu_hz, in->proc.cpu_stack_bytes);
    fprintf(f, "  samples:    %" PRIu64 " in %zu stacks (%" PRIu64 " without a stack)", total,
            c->n_cpu_lines, no_stack);
    if (in->has_stats)
        fprintf(f, "; the agent sent %" PRIu64, s->cpu_samples);
    fputc('\n', f);
    if (in->has_stats) {
        fprintf(f,
                "  lost:       %" PRIu64 " (kernel ring full: the sender fell behind), %" PRIu64
                " (no user registers or stack)\n",
                s->cpu_lost, s->cpu_no_regs);
        fprintf(f,
                "  partial:    %" PRIu64 " truncated stacks (deeper than the copy or max_frames), "
                "%" PRIu64 " without a stack (stack table full)\n",
                s->cpu_truncated, s->cpu_stack_table);
        fprintf(f, "  throttled:  %" PRIu64 " times (the kernel lowered the rate)\n",
                s->cpu_throttled);
        if (s->cpu_signals)
            fprintf(f,
                    "  signals:    %" PRIu64 " timer signals; %" PRIu64
                    " missed ticks counted as more samples of their signal's stack (the "
                    "timer fires at most once a scheduler tick)\n",
                    s->cpu_signals, s->cpu_overruns);
        if (s->cpu_lost || s->cpu_no_regs || s->cpu_throttled)
            fputs("WARNING: CPU samples were lost or throttled: counts are low, shares "
                  "approximate\n",
                  f);
    } else {
        fputs("  lost:       no AgentStats received: unknown\n", f);
    }
    /* The agent marks every CPU stack leaf_is_pc; one that is not had its
     * leaf looked up as a return address (at pc - 1), which can name the
     * function before the sampled one.  Only a broken agent sends those. */
    uint64_t not_pc = 0;
    for (size_t id = 1; id < in->n_stacks; id++)
        if (in->stacks[id].defined && in->stacks[id].n_frames && !in->stacks[id].leaf_is_pc)
            not_pc += cpu_model_stack_samples(in->cpu, (uint32_t)id);
    if (not_pc)
        fprintf(f,
                "WARNING: %" PRIu64 " CPU samples have stacks not marked as sampled pcs "
                "(leaf_is_pc): their leaf functions may be wrong\n",
                not_pc);

    const cpu_thread_stat_t **tv = nt ? malloc(nt * sizeof(*tv)) : NULL;
    for (size_t i = 0; i < nt; i++) {
        cpu_ns += t[i].cpu_ns;
        if (t[i].cpu_ns)
            want += t[i].samples * t[i].period_ns;
    }
    fprintf(f, "  threads:    %zu sampled, CPU time ", nt);
    put_secs(f, cpu_ns);
    if (cpu_ns)
        fprintf(f, ", delivered %.1f%% of the requested rate", 100.0 * (double)want / (double)cpu_ns);
    fputc('\n', f);
    if (tv) {
        for (size_t i = 0; i < nt; i++)
            tv[i] = &t[i];
        util_sort(tv, nt, sizeof(*tv), cmp_cpu_thread);
        size_t top = nt < TOP_CPU_THREADS ? nt : TOP_CPU_THREADS;
        uint64_t rest = 0;
        for (size_t i = 0; i < top; i++) {
            const char *name = cpu_thread_name(c, tv[i]->tid);
            fprintf(f, "    tid %" PRIu32, tv[i]->tid);
            if (name) {
                fputs(" (", f);
                put_text(f, name);
                fputc(')', f);
            }
            fprintf(f, ": %" PRIu64 " samples, CPU ", tv[i]->samples);
            if (tv[i]->cpu_ns) {
                put_secs(f, tv[i]->cpu_ns);
                fprintf(f, ", delivered %.1f%%\n", 100.0 * cpu_thread_delivered(tv[i]));
            } else {
                fputs("unknown\n", f);
            }
        }
        for (size_t i = top; i < nt; i++)
            rest += tv[i]->samples;
        if (nt > top)
            fprintf(f, "    %zu more threads: %" PRIu64 " samples\n", nt - top, rest);
        free(tv);
    }

    fprintf(f, "\ncpu: top %d functions by self\n", TOP_CPU_ROWS);
    top_input_t *rows = malloc((c->n_cpu_lines ? c->n_cpu_lines : 1) * sizeof(*rows));
    if (!rows) {
        fputs("  (out of memory)\n", f);
        return;
    }
    for (size_t i = 0; i < c->n_cpu_lines; i++)
        rows[i] = (top_input_t){.stack = c->cpu_lines[i].text, .value = c->cpu_lines[i].count};
    /* Indented like the rest of the section: made in memory first. */
    char *text = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&text, &len);
    int rc = mf ? top_write(mf, rows, c->n_cpu_lines, "samples", TOP_CPU_ROWS) : -ENOMEM;
    if (mf && fclose(mf) != 0 && rc == 0)
        rc = -ENOMEM;
    if (rc < 0) {
        fputs("  (the table could not be made)\n", f);
    } else {
        for (char *p = text, *nl; p < text + len; p = nl + 1) {
            if (!(nl = memchr(p, '\n', (size_t)(text + len - p))))
                nl = text + len;
            fputs("  ", f);
            fwrite(p, 1, (size_t)(nl - p), f);
            fputc('\n', f);
        }
    }
    free(text);
    free(rows);
}
