/*
 * report_summary.c — summary.txt: what the stream said about the process
 * (Hello, Goodbye, duration), the totals, drops and warnings, threads.
 */
#include "report_int.h"
#include "json.h"
#include "util.h"

#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- time ---------------------------------------------------------------------- */

/* Ticks -> CLOCK_MONOTONIC ns; -1 when the clock cannot say (TSC without two
 * distinct ClockSync pairs). */
int ticks_to_ns(const rep_clock_t *c, uint64_t ticks, uint64_t *ns)
{
    if (!c->tsc) {
        *ns = ticks;
        return 0;
    }
    if (c->n_pairs < 2 || c->pair1_ticks <= c->pair0_ticks)
        return -1;
    __int128 d = (__int128)ticks - (__int128)c->pair0_ticks;
    __int128 v = (__int128)c->pair0_ns + d * ((__int128)c->pair1_ns - (__int128)c->pair0_ns) /
                                             (__int128)(c->pair1_ticks - c->pair0_ticks);
    if (v < 0 || v > (__int128)UINT64_MAX)
        return -1;
    *ns = (uint64_t)v;
    return 0;
}

/* ns since the agent started, -1 when unknown. */
int64_t since_start(const rep_input_t *in, uint64_t mono_ns)
{
    uint64_t start = in->clock.start_mono_ns;
    if (!in->proc.has_hello || mono_ns < start || mono_ns - start > INT64_MAX)
        return -1;
    return (int64_t)(mono_ns - start);
}

/* Hello and Goodbye carry wall-clock times: their difference is the run.
 * Without a Goodbye the run lasted at least until the last thing we heard. */
int64_t run_duration(const rep_input_t *in, int *partial)
{
    const rep_clock_t *c = &in->clock;
    uint64_t last = 0, v;

    *partial = 0;
    if (!in->proc.has_hello)
        return -1;
    if (in->goodbye && c->start_unix_ns && c->end_unix_ns >= c->start_unix_ns &&
        c->end_unix_ns - c->start_unix_ns <= INT64_MAX)
        return (int64_t)(c->end_unix_ns - c->start_unix_ns);
    /* The last AgentStats (a heartbeat, about once a second) or the crash
     * is the last time the agent was heard from. */
    if (c->n_pairs)
        last = c->pair1_ns;
    if (in->crash.has && in->crash.mono_ns > last)
        last = in->crash.mono_ns;
    if (c->has_ticks && ticks_to_ns(c, c->max_ticks, &v) == 0 && v > last)
        last = v;
    *partial = 1;
    return since_start(in, last);
}

#define TOP_TEMP 5 /* stacks listed under "temporary" and "peak live" */

/* The ids (>= 1) of the TOP_TEMP stacks of v[0..n) with the largest
 * nonzero uint64_t at byte offset `field` of each entry, largest first
 * (ties: lower id); returns how many. */
static size_t top_stacks(const rep_stack_t *v, size_t field, size_t n, uint32_t *top)
{
    size_t ntop = 0;
#define VAL(id) (*(const uint64_t *)((const char *)&v[id] + field))
    for (size_t id = 1; id < n; id++) {
        uint64_t x = VAL(id);
        size_t k;
        if (!x)
            continue;
        for (k = ntop; k > 0 && VAL(top[k - 1]) < x; k--)
            ;
        if (k >= TOP_TEMP)
            continue;
        if (ntop < TOP_TEMP)
            ntop++;
        memmove(&top[k + 1], &top[k], (ntop - 1 - k) * sizeof(top[0]));
        top[k] = (uint32_t)id;
    }
#undef VAL
    return ntop;
}

/* A stack named by its first frame, "function (file:line)", and a newline. */
static void put_first_frame(FILE *f, ctx_t *c, const rep_stack_t *st)
{
    char buf[96];
    if (resolve_stack(&c->r, st) == 0 && c->r.n) {
        const rframe_t *fr = &c->r.v[0];
        put_text(f, frame_name(fr, buf, sizeof(buf)));
        if (fr->file)
            fprintf(f, " (%s:%d)", base_name(fr->file), fr->line);
    } else {
        fputs("[no stack]", f);
    }
    fputc('\n', f);
}

/* "temporary": blocks freed within 1 ms of their allocation (the session
 * times each free, session_heap.c), in total and the top stacks by count,
 * each named by its first frame (file:line). */
static void put_temporaries(FILE *f, ctx_t *c)
{
    const rep_input_t *in = c->in;
    const session_totals_t *t = &in->totals;
    uint32_t top[TOP_TEMP];
    size_t ntop;
    if (!in->proc.malloc_rate)
        return;
    fprintf(f,
            "  temporary:            %" PRIu64 " objects, %" PRIu64
            " bytes freed within 1 ms of their allocation (%.1f%% of objects%s)\n",
            t->temp_objects, t->temp_bytes,
            t->objects_allocated ? 100.0 * (double)t->temp_objects / (double)t->objects_allocated
                                 : 0.0,
            in->proc.malloc_rate > 1 ? ", of sampled blocks, estimated" : "");
    if (t->temp_untimed)
        fprintf(f, "    (%" PRIu64 " frees not timed: the stream had no clock pairs yet)\n",
                t->temp_untimed);
    ntop = top_stacks(in->stacks, offsetof(rep_stack_t, temp_objects), in->n_stacks, top);
    for (size_t i = 0; i < ntop; i++) {
        const rep_stack_t *st = &in->stacks[top[i]];
        fprintf(f, "    %" PRIu64 " objects, %" PRIu64 " bytes at ", st->temp_objects,
                st->temp_bytes);
        put_first_frame(f, c, st);
    }
}

/* The peak of live bytes (exact mode: session_heap.c keeps the stacks as
 * they were then; DIR/snapshots/peak/ has all of them): when, how much, and
 * the TOP_TEMP stacks holding the most then, each by its first frame. */
static void put_peak(FILE *f, ctx_t *c)
{
    const rep_input_t *in = c->in;
    uint32_t top[TOP_TEMP];
    size_t ntop;
    uint64_t ns;
    if (!in->peak_stacks)
        return;
    fprintf(f, "  peak live:            %" PRIu64 " bytes in %" PRIu64 " objects", in->peak_live_bytes,
            in->peak_live_objects);
    if (ticks_to_ns(&in->clock, in->peak_ticks, &ns) == 0 && since_start(in, ns) >= 0)
        fprintf(f, " at %.3f s", (double)since_start(in, ns) / 1e9);
    fputs(" (snapshots/peak/)\n", f);
    ntop = top_stacks(in->peak_stacks, offsetof(rep_stack_t, live_bytes), in->n_stacks, top);
    for (size_t i = 0; i < ntop; i++) {
        fprintf(f, "    %" PRIu64 " bytes in %" PRIu64 " objects at ", in->peak_stacks[top[i]].live_bytes,
                in->peak_stacks[top[i]].live_objects);
        put_first_frame(f, c, &in->stacks[top[i]]);
    }
}

/* ---- a crash ------------------------------------------------------------------ */

/* How the signal came, from its si_code (siginfo(2)). */
static const char *crash_how(const rep_crash_t *cr)
{
    switch (cr->code) {
    case 0: return "sent by kill(2)";
    case -6: return "raised by the program (raise, abort, tgkill)";
    case -1: return "sent by sigqueue(3)";
    }
    return cr->code > 0 ? "a fault" : "sent";
}

/* "crashed with SIGSEGV (address 0x0) in thread 1234", how it came, and the
 * thread's stack, symbolized, leaf (the faulting pc) first. */
static int put_crash(FILE *f, ctx_t *c)
{
    const rep_crash_t *cr = &c->in->crash;
    char nb[96];
    int rc;
    if (!cr->has)
        return 0;
    fputc('\n', f);
    fputs(c->in->goodbye ? "received " : "crashed with ", f);
    put_text(f, cr->name[0] ? cr->name : "a signal");
    if (cr->addr || (cr->code > 0 && cr->signo != 6))
        fprintf(f, " (address 0x%" PRIx64 ")", cr->addr);
    fprintf(f, " in thread %" PRIu32 "\n  signal %" PRId32 ", si_code %" PRId32 ": %s", cr->tid,
            cr->signo, cr->code, crash_how(cr));
    if (cr->sender_pid && cr->code <= 0)
        fprintf(f, ", pid %" PRIu32, cr->sender_pid);
    fputc('\n', f);
    if (cr->host_handler)
        fputs("  the program's own handler for it ran after the agent's flush\n", f);
    if (cr->direct)
        fputs("  caught on the agent's own sender thread: rows it had not sent were lost\n", f);
    if (!cr->stack_id || cr->stack_id >= c->in->n_stacks || !c->in->stacks[cr->stack_id].defined) {
        fputs("  [no stack]", f);
        if (cr->skipped[0]) {
            fputs(": ", f);
            put_text(f, cr->skipped);
        }
        fputc('\n', f);
        return 0;
    }
    const rep_stack_t *st = &c->in->stacks[cr->stack_id];
    if ((rc = resolve_stack(&c->r, st)) < 0)
        return rc;
    for (size_t k = 0; k < c->r.n; k++) {
        const rframe_t *fr = &c->r.v[k];
        fprintf(f, "  #%-2zu ", k);
        put_text(f, frame_name(fr, nb, sizeof(nb)));
        if (fr->file) {
            fputs(" (", f);
            put_text(f, base_name(fr->file));
            if (fr->line > 0)
                fprintf(f, ":%d", fr->line);
            fputc(')', f);
        }
        fputs(" [", f);
        put_text(f, base_name(fr->module));
        fputs("]\n", f);
    }
    if (st->truncated)
        fputs("  ... (stack truncated)\n", f);
    return 0;
}

int put_crash_json(struct json *j, ctx_t *c)
{
    const rep_crash_t *cr = &c->in->crash;
    char nb[96], addr[32];
    int rc;
    if (!cr->has)
        return 0;
    json_key(j, "crash");
    json_obj_begin(j);
    json_key(j, "signal");
    json_str(j, cr->name);
    json_key(j, "signo");
    json_i64(j, cr->signo);
    json_key(j, "code");
    json_i64(j, cr->code);
    snprintf(addr, sizeof(addr), "0x%" PRIx64, cr->addr);
    json_key(j, "address");
    json_str(j, addr);
    json_key(j, "tid");
    json_u64(j, cr->tid);
    json_key(j, "host_handler");
    json_raw(j, cr->host_handler ? "true" : "false");
    json_key(j, "direct");
    json_raw(j, cr->direct ? "true" : "false");
    json_key(j, "time"); /* seconds since the process started */
    int64_t at = since_start(c->in, cr->mono_ns);
    if (at >= 0) {
        char t[32];
        snprintf(t, sizeof(t), "%" PRId64 ".%06" PRId64, at / 1000000000, at % 1000000000 / 1000);
        json_raw(j, t);
    } else {
        json_null(j);
    }
    json_key(j, "frames");
    json_arr_begin(j);
    if (cr->stack_id && cr->stack_id < c->in->n_stacks && c->in->stacks[cr->stack_id].defined) {
        if ((rc = resolve_stack(&c->r, &c->in->stacks[cr->stack_id])) < 0)
            return rc;
        for (size_t k = 0; k < c->r.n; k++) {
            const rframe_t *fr = &c->r.v[k];
            snprintf(addr, sizeof(addr), "0x%" PRIx64, fr->raw);
            json_obj_begin(j);
            json_key(j, "function");
            json_str(j, frame_name(fr, nb, sizeof(nb)));
            json_key(j, "file");
            json_str(j, fr->file);
            json_key(j, "line");
            json_i64(j, fr->line);
            json_key(j, "module");
            json_str(j, fr->module);
            json_key(j, "address");
            json_str(j, addr);
            json_obj_end(j);
        }
    }
    json_arr_end(j);
    json_key(j, "stack_skipped");
    json_str(j, cr->skipped);
    json_obj_end(j);
    return 0;
}

static void put_ns(FILE *f, int64_t ns)
{
    fprintf(f, "%" PRId64 ".%03" PRId64 " s", ns / 1000000000, ns % 1000000000 / 1000000);
}

static int cmp_thread(const void *pa, const void *pb)
{
    const rep_thread_t *a = *(const rep_thread_t *const *)pa, *b = *(const rep_thread_t *const *)pb;
    int c = cmp_u64_desc(a->bytes, b->bytes);
    return c ? c : (a->tid > b->tid) - (a->tid < b->tid);
}

int write_summary(FILE *f, ctx_t *c)
{
    const rep_input_t *in = c->in;
    const session_totals_t *t = &in->totals;

    fputs("perfagent summary\n", f);
    if (in->proc.has_hello) {
        fprintf(f, "pid:       %" PRIu32 " (ppid %" PRIu32, in->proc.pid, in->proc.ppid);
        if (in->proc.parent_stream_pid)
            fprintf(f, ", forked from the traced pid %" PRIu32, in->proc.parent_stream_pid);
        fputs(")\nexe:       ", f);
        put_text(f, in->proc.exe);
        fputs("\nargv:      ", f);
        put_text(f, in->proc.argv_json);
        fputs("\nagent:     ", f);
        put_text(f, in->proc.agent_version);
        fprintf(f, " (protocol %" PRIu32 "), unwinder ", in->proc.protocol_version);
        put_text(f, in->proc.unwinder);
        fprintf(f, ", max_frames %" PRIu32 ", host ", in->proc.max_frames);
        put_text(f, in->proc.hostname && in->proc.hostname[0] ? in->proc.hostname : "?");
        fprintf(f, "\nmode:      %s (malloc_rate %" PRIu64 ")", mode_name(in),
                in->proc.malloc_rate);
        if (in->proc.malloc_rate == 1)
            fputs(": every allocation recorded\n", f);
        else if (in->proc.malloc_rate == 0)
            fputs(": heap profiling was off\n", f);
        else
            fprintf(f,
                    ": one sample per %" PRIu64 " bytes on average; bytes are sample "
                    "weights, objects are estimated as weight/size per sample\n",
                    in->proc.malloc_rate);
        fprintf(f, "clock:     %s\n", in->clock.tsc ? "TSC" : "CLOCK_MONOTONIC");
    } else {
        fputs("no Hello received: the process is unknown\n", f);
    }
    int partial;
    int64_t dur = run_duration(in, &partial);
    fputs("duration:  ", f);
    if (dur >= 0) {
        put_ns(f, dur);
        fputs(partial ? " (at least: up to the last data received)\n" : "\n", f);
    } else {
        fputs("unknown\n", f);
    }
    fputs("stream:    ", f);
    put_stream_state(f, in);
    fprintf(f, "\n           %" PRIu64 " bytes, %" PRIu64 " frames, %" PRIu64 " heap rows\n",
            in->stream_bytes, t->frames, t->rows);
    if (t->frames_lost)
        fprintf(f, "           %" PRIu64 " frames lost (gaps in Batch.seq)\n", t->frames_lost);
    /* The output reopened or reconnected (a program that closed the agent's
     * fd, a collector that went away: issue 16), and what that cost. */
    if (in->has_stats && (in->stats.reconnects || in->stats.drops_output))
        fprintf(f,
                "           output reopened %" PRIu64 " times; gap: %" PRIu64
                " frames lost, %" PRIu64 " heap rows dropped at the output\n",
                in->stats.reconnects, t->frames_lost, in->stats.drops_output);
    if (t->ignored_records)
        fprintf(f, "           %" PRIu64 " records of kinds this collector ignores\n",
                t->ignored_records);
    if (t->count_mismatch)
        fprintf(f, "           %" PRIu64 " HeapEvents whose count did not match their rows\n",
                t->count_mismatch);
    if (t->rows_unsynced)
        fprintf(f,
                "           %" PRIu64 " heap rows skipped before their thread's first sync row "
                "(the stream began mid-buffer, or followed lost frames)\n",
                t->rows_unsynced);
    fputs("decode:    ", f);
    if (in->fault) {
        fputs("FAULT: ", f);
        put_text(f, in->fault);
        fputs("\n           (everything before the fault is reported)\n", f);
    } else {
        fputs("no fault\n", f);
    }
    int rc = put_crash(f, c);
    if (rc < 0)
        return rc;

    fputs("\ntotals\n", f);
    fprintf(f, "  allocations:          %" PRIu64 "%s\n", t->allocs + t->samples,
            t->samples ? " (samples)" : "");
    fprintf(f, "  bytes allocated:      %" PRIu64 "\n", t->bytes_allocated);
    fprintf(f, "  objects allocated:    %" PRIu64 "\n", t->objects_allocated);
    fprintf(f, "  frees:                %" PRIu64 "\n", t->frees);
    fprintf(f,
            "    of unknown blocks:  %" PRIu64 " (ignored: allocated before the agent or "
            "not sampled)\n",
            t->frees_unknown);
    if (t->frees_stale)
        fprintf(f, "    stale (reordered):  %" PRIu64 " (older than the block now there)\n",
                t->frees_stale);
    if (t->frees_early)
        fprintf(f, "    before their alloc: %" PRIu64 " (cross-thread, matched later)\n",
                t->frees_early);
    if (t->reuse_implied || t->allocs_superseded)
        fprintf(f,
                "  address reuse:        %" PRIu64 " implied frees, %" PRIu64
                " late allocations already freed\n",
                t->reuse_implied, t->allocs_superseded);
    if (c->ro && (c->ro->rounds_split || c->ro->unplaceable || c->ro->rows_late))
        fprintf(f,
                "  reordering:           %" PRIu64 " drain rounds over %" PRIu64
                " rows applied in pieces; at most %" PRIu64 " frees pending (of %" PRIu64
                "), %" PRIu64 " rows unplaceable, %" PRIu64 " late\n",
                c->ro->rounds_split, c->ro->round_rows, c->ro->pending_peak, c->ro->pending_max,
                c->ro->unplaceable, c->ro->rows_late);
    fprintf(f, "  live at end (leaked): %" PRIu64 " bytes in %" PRIu64 " objects, %zu stacks\n",
            t->live_bytes - c->supp_bytes, t->live_objects - c->supp_objects, c->n_leaks);
    put_suppressed(f, c, "  ");
    if (t->live_untracked)
        fprintf(f,
                "  not tracked:          %" PRIu64 " blocks (max_live reached: live numbers "
                "are a lower bound)\n",
                t->live_untracked);
    fprintf(f, "  stacks:               %" PRIu64 " (%" PRIu64 " allocations without a stack)\n",
            t->stacks, t->no_stack);
    fprintf(f, "  modules:              %" PRIu64 "\n", t->modules);
    put_temporaries(f, c);
    put_peak(f, c);

    fputs("\ndrops (last AgentStats)\n", f);
    if (in->has_stats) {
        const rep_agent_stats_t *s = &in->stats;
        fprintf(f, "  buffer_full:  %" PRIu64 "\n", s->drops_buffer_full);
        fprintf(f, "  no_buffer:    %" PRIu64 "\n", s->drops_no_buffer);
        fprintf(f, "  stack_table:  %" PRIu64 "\n", s->drops_stack_table);
        fprintf(f, "  output:       %" PRIu64 "\n", s->drops_output);
        fprintf(f, "  thread_exit:  %" PRIu64 "\n", s->drops_thread_exit);
        if (in->proc.malloc_rate > 1)
            fprintf(f,
                    "  sample_table: %" PRIu64 " (sampled allocations not recorded: the agent's "
                    "table of %" PRIu64 " live samples was full)\n",
                    s->heap_samples_dropped, s->heap_samples_live);
        /* queries and socket events lost (a thread's event ring was full,
         * or no ring could be had): missing from queries.json, net.json
         * and trace.json.  Two words, so that the heap drop lines above
         * stay the block tests sum for exact heap mode. */
        fprintf(f, "  events lost:  %" PRIu64 " (queries and socket events)\n", s->events_dropped);
        fprintf(f,
                "  (agent: %" PRIu64 " rows, %" PRIu64 " stacks, %" PRIu64 " threads, %" PRIu64
                " reconnects, %" PRIu64 " unwind failures, %" PRIu64 " bytes sent)\n",
                s->records, s->stacks, s->threads, s->reconnects, s->unwind_failures,
                s->bytes_sent);
    } else {
        fputs("  no AgentStats received: drop counts unknown\n", f);
    }
    put_incomplete_warning(f, in);
    put_order_warning(f, c->ro);

    if (in->n_threads) {
        const rep_thread_t **tv = malloc(in->n_threads * sizeof(*tv));
        size_t exited = 0;
        for (size_t i = 0; i < in->n_threads; i++)
            exited += in->threads[i].exited != 0;
        fprintf(f, "\nthreads: %zu seen, %zu exited\n", in->n_threads, exited);
        if (tv) {
            for (size_t i = 0; i < in->n_threads; i++)
                tv[i] = &in->threads[i];
            util_sort(tv, in->n_threads, sizeof(*tv), cmp_thread);
            size_t top = in->n_threads < TOP_THREADS ? in->n_threads : TOP_THREADS;
            for (size_t i = 0; i < top; i++) {
                fprintf(f, "  tid %" PRIu32, tv[i]->tid);
                if (tv[i]->name) {
                    fputs(" (", f);
                    put_text(f, tv[i]->name);
                    fputc(')', f);
                }
                fprintf(f, ": %" PRIu64 " allocations, %" PRIu64 " bytes, %" PRIu64 " frees%s\n",
                        tv[i]->allocs, tv[i]->bytes, tv[i]->frees,
                        tv[i]->exited ? " (exited)" : "");
            }
            free(tv);
        }
    }

    if (cpu_reports_wanted(in))
        write_cpu_summary(f, c);
    if (pq_reports_wanted(in))
        write_pq_summary(f, c);

    if (net_reports_wanted(in))
        write_net_summary(f, c);

    if (in->n_snapshots) {
        fputs("\nsnapshots\n", f);
        for (size_t i = 0; i < in->n_snapshots; i++) {
            const rep_snapshot_t *sn = &in->snapshots[i];
            fprintf(f, "  #%" PRIu64 " \"", sn->id);
            put_text(f, sn->label);
            fputs("\" at ", f);
            uint64_t mono;
            int64_t at =
                ticks_to_ns(&in->clock, sn->ticks, &mono) == 0 ? since_start(in, mono) : -1;
            if (at >= 0)
                put_ns(f, at);
            else
                fputs("?", f);
            fprintf(f,
                    ": live %" PRIu64 " bytes in %" PRIu64 " objects, %" PRIu64
                    " bytes allocated so far\n",
                    sn->live_bytes, sn->live_objects, sn->bytes_allocated);
        }
    }

    fputs("\nfiles (in this directory): leaks.json leaks.txt alloc.folded inuse.folded "
          "alloc.svg inuse.svg heap.pb.gz ",
          f);
    if (pq_reports_wanted(in))
        fputs("queries.json queries.txt slow_queries.json n_plus_one.json pq.folded pq.svg ", f);
    fputs(cpu_reports_wanted(in) ? "cpu.folded cpu.svg cpu.pb.gz summary.txt snapshots/\n"
                                 : "summary.txt snapshots/\n",
          f);
    if (net_reports_wanted(in))
        fputs(wall_reports_wanted(in) ? "  and net.json net.txt http.json http.txt wall.folded wall.svg\n"
                                      : "  and net.json net.txt http.json http.txt\n",
              f);
    return 0;
}
