/*
 * report — renders a rep_input_t into the five report files (see report.h).
 *
 * Owns symbolized stack rendering (frame names, inline expansion, folded
 * lines) and the file formats.  Must stay deterministic: everything is sorted
 * with total orders, nothing reads the time, and every string that came from
 * the stream is escaped (JSON) or has its control characters replaced (text),
 * so an agent cannot forge lines in a report.
 */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"

#define TOP_TXT 20      /* stacks in leaks.txt */
#define TOP_THREADS 10  /* threads in summary.txt */
#define INLINE_MAX 64   /* inline frames per address */
#define UNKNOWN_FN "??" /* symtab's "no function" */
#define UNKNOWN_MOD "[unknown]"

/* ---- growable string ---------------------------------------------------- */

typedef struct sb {
    char *p;
    size_t n, cap;
    int oom;
} sb_t;

static void sb_putn(sb_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

/* Folded-stack frame text: ';' separates frames and a newline ends a line, so
 * neither may appear inside a name (spaces are fine: the weight is after the
 * last space). */
static void sb_put_folded(sb_t *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (c == ';')
            c = ':';
        else if ((unsigned char)c < 0x20 || c == 0x7f)
            c = '?';
        sb_putn(b, &c, 1);
    }
}

/* Text reports: strings from the stream must not break lines. */
static void put_text(FILE *f, const char *s)
{
    if (!s) {
        fputs("?", f);
        return;
    }
    for (const char *p = s; *p; p++)
        fputc((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p, f);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
}

/* ---- symbolization ------------------------------------------------------- */

typedef struct rframe {
    const char *function; /* as symtab said, "??" when unknown */
    const char *file;     /* NULL when unknown */
    int line;
    const char *module;
    uint64_t raw;    /* the address from the stack (a return address) */
    uint64_t offset; /* of raw inside its module, 0 when unknown */
} rframe_t;

typedef struct resolver {
    const rep_input_t *in;
    rframe_t *v;
    size_t n, cap;
    sym_frame_t tmp[INLINE_MAX];
} resolver_t;

/* Resolve every frame of st, leaf first, inline frames expanded (innermost
 * first, as symtab returns them).  Return addresses are looked up at
 * address-1 so a call at the end of a function or before a noreturn call is
 * attributed to the caller's line, not the next one. */
static int resolve_stack(resolver_t *r, const rep_stack_t *st)
{
    r->n = 0;
    for (uint32_t i = 0; i < st->n_frames; i++) {
        uint64_t raw = r->in->frames[st->frames_off + i];
        uint64_t look = (i == 0 && st->leaf_is_pc) || raw == 0 ? raw : raw - 1;
        int n = r->in->symtab ? symtab_resolve(r->in->symtab, look, r->tmp, INLINE_MAX) : 0;
        if (n <= 0) {
            r->tmp[0] = (sym_frame_t){.function = UNKNOWN_FN, .module = UNKNOWN_MOD};
            n = 1;
        }
        if (r->n + (size_t)n > r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 64;
            while (cap < r->n + (size_t)n)
                cap *= 2;
            rframe_t *nv = realloc(r->v, cap * sizeof(*nv));
            if (!nv)
                return -ENOMEM;
            r->v = nv;
            r->cap = cap;
        }
        for (int k = 0; k < n; k++) {
            const sym_frame_t *sf = &r->tmp[k];
            r->v[r->n++] = (rframe_t){
                .function = sf->function ? sf->function : UNKNOWN_FN,
                .file = sf->file,
                .line = sf->line,
                .module = sf->module ? sf->module : UNKNOWN_MOD,
                .raw = raw,
                .offset = sf->offset ? sf->offset + (raw - look) : 0,
            };
        }
    }
    return 0;
}

/* The name a person sees: the function, else "[module+0xoffset]", else
 * "[unknown]". */
static const char *frame_name(const rframe_t *f, char *buf, size_t len)
{
    if (f->function && strcmp(f->function, UNKNOWN_FN) != 0 && f->function[0])
        return f->function;
    if (f->module && strcmp(f->module, UNKNOWN_MOD) != 0 && f->module[0]) {
        snprintf(buf, len, "[%s+0x%" PRIx64 "]", base_name(f->module), f->offset);
        return buf;
    }
    return "[unknown]";
}

/* ---- ordering -------------------------------------------------------------- */

static int cmp_u64_desc(uint64_t a, uint64_t b)
{
    return a > b ? -1 : a < b;
}

/* Leaks: bytes desc, objects desc, then the raw frame list, then the id, so
 * the order is total and depends on the stream only. */
static int cmp_leak(const void *pa, const void *pb, void *arg)
{
    const rep_input_t *in = arg;
    uint32_t ia = *(const uint32_t *)pa, ib = *(const uint32_t *)pb;
    const rep_stack_t *a = &in->stacks[ia], *b = &in->stacks[ib];
    int c;

    if ((c = cmp_u64_desc(a->live_bytes, b->live_bytes)) != 0)
        return c;
    if ((c = cmp_u64_desc(a->live_objects, b->live_objects)) != 0)
        return c;
    uint32_t n = a->n_frames < b->n_frames ? a->n_frames : b->n_frames;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t fa = in->frames[a->frames_off + i], fb = in->frames[b->frames_off + i];
        if (fa != fb)
            return fa < fb ? -1 : 1;
    }
    if (a->n_frames != b->n_frames)
        return a->n_frames < b->n_frames ? -1 : 1;
    return ia < ib ? -1 : ia > ib;
}

/* Stacks with live blocks, sorted.  *out is malloc'ed (caller frees). */
static int leak_list(const rep_input_t *in, uint32_t **out, size_t *n)
{
    size_t k = 0;
    uint32_t *v = malloc((in->n_stacks ? in->n_stacks : 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < in->n_stacks; i++)
        if (in->stacks[i].defined && (in->stacks[i].live_bytes || in->stacks[i].live_objects))
            v[k++] = (uint32_t)i;
    qsort_r(v, k, sizeof(*v), cmp_leak, (void *)in);
    *out = v;
    *n = k;
    return 0;
}

/* ---- output files ---------------------------------------------------------- */

typedef struct ctx {
    const rep_input_t *in;
    const reorder_stats_t *ro; /* NULL when the caller has none */
    resolver_t r;
    uint32_t *leaks;
    size_t n_leaks;
    char **folded; /* per stack id, NULL when it allocated nothing */
} ctx_t;

static const char *mode_name(const rep_input_t *in)
{
    return in->proc.malloc_rate == 1 ? "exact" : "sampled";
}

static int write_leaks_json(FILE *f, ctx_t *c)
{
    const rep_input_t *in = c->in;
    char nb[64], addr[32];
    json_t j;
    int rc;

    json_init(&j, f, 4);
    json_obj_begin(&j);
    json_key(&j, "pid");
    json_u64(&j, in->proc.pid);
    json_key(&j, "exe");
    json_str(&j, in->proc.exe);
    json_key(&j, "mode");
    json_str(&j, mode_name(in));
    json_key(&j, "malloc_rate");
    json_u64(&j, in->proc.malloc_rate);
    json_key(&j, "total");
    json_obj_begin(&j);
    json_key(&j, "bytes");
    json_u64(&j, in->totals.live_bytes);
    json_key(&j, "objects");
    json_u64(&j, in->totals.live_objects);
    json_obj_end(&j);
    json_key(&j, "stacks");
    json_arr_begin(&j);
    for (size_t i = 0; i < c->n_leaks; i++) {
        const rep_stack_t *st = &in->stacks[c->leaks[i]];
        if ((rc = resolve_stack(&c->r, st)) < 0)
            return rc;
        json_obj_begin(&j);
        json_key(&j, "bytes");
        json_u64(&j, st->live_bytes);
        json_key(&j, "objects");
        json_u64(&j, st->live_objects);
        json_key(&j, "frames");
        json_arr_begin(&j);
        for (size_t k = 0; k < c->r.n; k++) {
            const rframe_t *fr = &c->r.v[k];
            snprintf(addr, sizeof(addr), "0x%" PRIx64, fr->raw);
            json_obj_begin(&j);
            json_key(&j, "function");
            json_str(&j, frame_name(fr, nb, sizeof(nb)));
            json_key(&j, "file");
            json_str(&j, fr->file);
            json_key(&j, "line");
            json_i64(&j, fr->line);
            json_key(&j, "module");
            json_str(&j, fr->module);
            json_key(&j, "address");
            json_str(&j, addr);
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_obj_end(&j);
    return 0;
}

static void put_drops(FILE *f, const rep_input_t *in, const char *indent)
{
    const rep_agent_stats_t *s = &in->stats;
    if (!in->has_stats) {
        fprintf(f, "%sno AgentStats received: drop counts unknown\n", indent);
        return;
    }
    fprintf(f,
            "%sbuffer_full %" PRIu64 ", no_buffer %" PRIu64 ", stack_table %" PRIu64
            ", output %" PRIu64 ", thread_exit %" PRIu64 "\n",
            indent, s->drops_buffer_full, s->drops_no_buffer, s->drops_stack_table, s->drops_output,
            s->drops_thread_exit);
}

static int incomplete(const rep_input_t *in)
{
    const rep_agent_stats_t *s = &in->stats;
    return (in->has_stats && (s->drops_buffer_full | s->drops_no_buffer | s->drops_stack_table |
                              s->drops_output | s->drops_thread_exit)) ||
           in->totals.frames_lost || in->totals.rows_unsynced || in->totals.live_untracked;
}

static void put_incomplete_warning(FILE *f, const rep_input_t *in)
{
    if (incomplete(in))
        fputs("WARNING: data was dropped (see the drop counts): numbers are incomplete\n", f);
}

/* Rows the collector could not put back in time order (session_heap.c):
 * the live heap may be wrong although nothing was dropped, so say so where
 * the drop warning goes rather than present it as exact. */
static void put_order_warning(FILE *f, const reorder_stats_t *ro)
{
    if (ro && ro->unplaceable)
        fprintf(f,
                "WARNING: %" PRIu64 " heap rows could not be put back in time order (the "
                "collector's pending-free store of %" PRIu64 " entries was full): live numbers "
                "may be wrong\n",
                ro->unplaceable, ro->pending_max);
    if (ro && ro->rows_late)
        fprintf(f,
                "WARNING: %" PRIu64 " allocations arrived after a newer free of their address "
                "had been given up on (later than the agent's order promise): live numbers may "
                "be wrong\n",
                ro->rows_late);
}

static void put_stream_state(FILE *f, const rep_input_t *in)
{
    if (in->goodbye)
        fprintf(f, "ended cleanly (Goodbye, exit code %" PRId32 ")", in->exit_code);
    else if (in->fault)
        fputs("stopped at a decode fault (no Goodbye)", f);
    else if (in->ended)
        fputs("cut: no Goodbye (the process crashed, was killed, or lost its connection)", f);
    else
        fputs("still open (reports written while recording)", f);
}

static int write_leaks_txt(FILE *f, ctx_t *c)
{
    const rep_input_t *in = c->in;
    char nb[64];
    int rc;

    fprintf(f, "perfagent leak report: pid %" PRIu32 " ", in->proc.pid);
    put_text(f, in->proc.exe ? in->proc.exe : "(no Hello)");
    fprintf(f, "\nmode: %s (malloc_rate %" PRIu64 ")%s\n", mode_name(in), in->proc.malloc_rate,
            in->proc.malloc_rate == 1 ? "" : ": bytes and objects are estimates");
    fprintf(f,
            "leaked (live at end of stream): %" PRIu64 " bytes in %" PRIu64
            " objects from %zu stacks\n",
            in->totals.live_bytes, in->totals.live_objects, c->n_leaks);
    fputs("stream: ", f);
    put_stream_state(f, in);
    fputc('\n', f);
    if (in->fault) {
        fputs("fault: ", f);
        put_text(f, in->fault);
        fputc('\n', f);
    }
    fputs("drops: ", f);
    put_drops(f, in, "");
    if (in->totals.live_untracked)
        fprintf(f, "live blocks not tracked (max_live reached): %" PRIu64 "\n",
                in->totals.live_untracked);
    put_incomplete_warning(f, in);
    put_order_warning(f, c->ro);

    size_t top = c->n_leaks < TOP_TXT ? c->n_leaks : TOP_TXT;
    for (size_t i = 0; i < top; i++) {
        const rep_stack_t *st = &in->stacks[c->leaks[i]];
        if ((rc = resolve_stack(&c->r, st)) < 0)
            return rc;
        fprintf(f, "\n#%zu: %" PRIu64 " bytes in %" PRIu64 " objects\n", i + 1, st->live_bytes,
                st->live_objects);
        if (c->leaks[i] == 0)
            fputs("    [no stack] (the agent's stack table was full or the unwind failed)\n", f);
        else if (c->r.n == 0)
            fputs("    [no frames]\n", f);
        for (size_t k = 0; k < c->r.n; k++) {
            const rframe_t *fr = &c->r.v[k];
            fputs("    ", f);
            put_text(f, frame_name(fr, nb, sizeof(nb)));
            if (fr->file) {
                fputs(" (", f);
                put_text(f, fr->file);
                if (fr->line > 0)
                    fprintf(f, ":%d", fr->line);
                fputc(')', f);
            }
            if (strcmp(fr->module, UNKNOWN_MOD) == 0) {
                fprintf(f, " (0x%" PRIx64 ")\n", fr->raw); /* no module: the address helps */
            } else {
                fputs(" [", f);
                put_text(f, base_name(fr->module));
                fputs("]\n", f);
            }
        }
        if (st->truncated)
            fputs("    ... (stack truncated)\n", f);
    }
    if (c->n_leaks > top)
        fprintf(f, "\n%zu more stacks in leaks.json\n", c->n_leaks - top);
    return 0;
}

/* The folded text of every stack that allocated anything, root first. */
static int build_folded(ctx_t *c)
{
    const rep_input_t *in = c->in;
    char nb[64];
    int rc;

    if (!(c->folded = calloc(in->n_stacks ? in->n_stacks : 1, sizeof(*c->folded))))
        return -ENOMEM;
    for (size_t id = 0; id < in->n_stacks; id++) {
        const rep_stack_t *st = &in->stacks[id];
        if (!st->defined || (!st->alloc_bytes && !st->live_bytes))
            continue;
        sb_t b = {0};
        if (id == 0) {
            sb_putn(&b, "[no stack]", 10);
        } else {
            if ((rc = resolve_stack(&c->r, st)) < 0)
                return rc;
            if (st->truncated)
                sb_putn(&b, "[truncated]", 11);
            for (size_t k = c->r.n; k-- > 0;) {
                if (b.n)
                    sb_putn(&b, ";", 1);
                sb_put_folded(&b, frame_name(&c->r.v[k], nb, sizeof(nb)));
            }
            if (!b.n)
                sb_putn(&b, "[unknown]", 9);
        }
        if (b.oom) {
            free(b.p);
            return -ENOMEM;
        }
        c->folded[id] = b.p;
    }
    return 0;
}

typedef struct fline {
    const char *s;
    uint64_t w;
} fline_t;

static int cmp_fline(const void *a, const void *b)
{
    return strcmp(((const fline_t *)a)->s, ((const fline_t *)b)->s);
}

/* One line per distinct symbolized stack (different ids can symbolize the
 * same), sorted by bytes of the text. */
static int write_folded(FILE *f, ctx_t *c, int live)
{
    const rep_input_t *in = c->in;
    fline_t *v = malloc((in->n_stacks ? in->n_stacks : 1) * sizeof(*v));
    size_t n = 0;
    if (!v)
        return -ENOMEM;
    for (size_t id = 0; id < in->n_stacks; id++) {
        uint64_t w = live ? in->stacks[id].live_bytes : in->stacks[id].alloc_bytes;
        if (c->folded[id] && w)
            v[n++] = (fline_t){c->folded[id], w};
    }
    qsort(v, n, sizeof(*v), cmp_fline);
    for (size_t i = 0; i < n;) {
        uint64_t w = 0;
        size_t k = i;
        for (; k < n && strcmp(v[k].s, v[i].s) == 0; k++)
            w = __builtin_add_overflow(w, v[k].w, &w) ? UINT64_MAX : w;
        fprintf(f, "%s %" PRIu64 "\n", v[i].s, w);
        i = k;
    }
    free(v);
    return 0;
}

static int write_alloc_folded(FILE *f, ctx_t *c)
{
    return write_folded(f, c, 0);
}

static int write_inuse_folded(FILE *f, ctx_t *c)
{
    return write_folded(f, c, 1);
}

/* ---- time ---------------------------------------------------------------------- */

/* Ticks -> CLOCK_MONOTONIC ns; -1 when the clock cannot say (TSC without two
 * distinct ClockSync pairs). */
static int ticks_to_ns(const rep_clock_t *c, uint64_t ticks, uint64_t *ns)
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
static int64_t since_start(const rep_input_t *in, uint64_t mono_ns)
{
    uint64_t start = in->clock.start_mono_ns;
    if (!in->proc.has_hello || mono_ns < start || mono_ns - start > INT64_MAX)
        return -1;
    return (int64_t)(mono_ns - start);
}

/* Hello and Goodbye carry wall-clock times: their difference is the run.
 * Without a Goodbye the run lasted at least until the last thing we heard. */
static int64_t run_duration(const rep_input_t *in, int *partial)
{
    const rep_clock_t *c = &in->clock;
    uint64_t last = 0, v;

    *partial = 0;
    if (!in->proc.has_hello)
        return -1;
    if (in->goodbye && c->start_unix_ns && c->end_unix_ns >= c->start_unix_ns &&
        c->end_unix_ns - c->start_unix_ns <= INT64_MAX)
        return (int64_t)(c->end_unix_ns - c->start_unix_ns);
    if (c->n_pairs)
        last = c->pair1_ns;
    if (c->has_ticks && ticks_to_ns(c, c->max_ticks, &v) == 0 && v > last)
        last = v;
    *partial = 1;
    return since_start(in, last);
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

static int write_summary(FILE *f, ctx_t *c)
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
            t->live_bytes, t->live_objects, c->n_leaks);
    if (t->live_untracked)
        fprintf(f,
                "  not tracked:          %" PRIu64 " blocks (max_live reached: live numbers "
                "are a lower bound)\n",
                t->live_untracked);
    fprintf(f, "  stacks:               %" PRIu64 " (%" PRIu64 " allocations without a stack)\n",
            t->stacks, t->no_stack);
    fprintf(f, "  modules:              %" PRIu64 "\n", t->modules);

    fputs("\ndrops (last AgentStats)\n", f);
    if (in->has_stats) {
        const rep_agent_stats_t *s = &in->stats;
        fprintf(f, "  buffer_full:  %" PRIu64 "\n", s->drops_buffer_full);
        fprintf(f, "  no_buffer:    %" PRIu64 "\n", s->drops_no_buffer);
        fprintf(f, "  stack_table:  %" PRIu64 "\n", s->drops_stack_table);
        fprintf(f, "  output:       %" PRIu64 "\n", s->drops_output);
        fprintf(f, "  thread_exit:  %" PRIu64 "\n", s->drops_thread_exit);
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
            qsort(tv, in->n_threads, sizeof(*tv), cmp_thread);
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
          "summary.txt\n",
          f);
    return 0;
}

/* ---- files ------------------------------------------------------------------ */

static int mkdir_p(const char *dir)
{
    char *p = dir[0] ? strdup(dir) : NULL;
    struct stat sb;
    int rc = 0;

    if (!p)
        return dir[0] ? -ENOMEM : -ENOENT;
    for (char *q = p + 1; *q; q++) {
        if (*q != '/')
            continue;
        *q = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *q = '/';
    }
    if (rc == 0 && mkdir(p, 0755) < 0 && errno != EEXIST)
        rc = -errno;
    if (rc == 0 && (stat(p, &sb) < 0 || !S_ISDIR(sb.st_mode)))
        rc = -ENOTDIR;
    free(p);
    return rc;
}

typedef int (*writer_fn)(FILE *f, ctx_t *c);

/* Write via "name.tmp" + rename, so a reader never sees half a file. */
static int write_file(const char *dir, const char *name, writer_fn fn, ctx_t *c)
{
    char path[4096], tmp[4096];
    int rc;

    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
        snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    rc = fn(f, c);
    if (fflush(f) != 0 && rc == 0)
        rc = -errno;
    if (ferror(f) && rc == 0)
        rc = -EIO;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int report_write(const rep_input_t *in, const char *dir, char **summary)
{
    return report_write_ex(in, NULL, dir, summary);
}

int report_write_ex(const rep_input_t *in, const reorder_stats_t *ro, const char *dir,
                    char **summary)
{
    ctx_t c = {.in = in, .ro = ro, .r = {.in = in}};
    char *text = NULL;
    size_t len = 0;
    int rc;

    *summary = NULL;
    if ((rc = leak_list(in, &c.leaks, &c.n_leaks)) < 0)
        goto out;
    /* The summary first: it is returned even when the files cannot be. */
    FILE *mf = open_memstream(&text, &len);
    if (mf) {
        write_summary(mf, &c);
        if (fclose(mf) == 0)
            *summary = text;
        else
            free(text);
    }
    if ((rc = mkdir_p(dir)) < 0)
        goto out;
    if ((rc = build_folded(&c)) < 0)
        goto out;
    if ((rc = write_file(dir, "leaks.json", write_leaks_json, &c)) < 0 ||
        (rc = write_file(dir, "leaks.txt", write_leaks_txt, &c)) < 0 ||
        (rc = write_file(dir, "alloc.folded", write_alloc_folded, &c)) < 0 ||
        (rc = write_file(dir, "inuse.folded", write_inuse_folded, &c)) < 0 ||
        (rc = write_file(dir, "summary.txt", write_summary, &c)) < 0)
        goto out;
out:
    if (c.folded)
        for (size_t i = 0; i < in->n_stacks; i++)
            free(c.folded[i]);
    free(c.folded);
    free(c.leaks);
    free(c.r.v);
    return rc;
}
