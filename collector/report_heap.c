/*
 * report_heap.c — the heap reports: leaks.json, leaks.txt (live stacks by
 * bytes), alloc.folded and inuse.folded.  Deterministic: total orders only.
 */
#include "report_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flamegraph.h"
#include "json.h"
#include "util.h"

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
int leak_list(const rep_input_t *in, uint32_t **out, size_t *n)
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

int write_leaks_json(FILE *f, ctx_t *c)
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
    if (c->snap) {
        char t[32];
        json_key(&j, "kind");
        json_str(&j, c->snap->kind);
        json_key(&j, "time"); /* seconds since the process started */
        if (c->snap->time_ns >= 0) {
            snprintf(t, sizeof(t), "%" PRId64 ".%06" PRId64, c->snap->time_ns / 1000000000,
                     c->snap->time_ns % 1000000000 / 1000);
            json_raw(&j, t);
        } else {
            json_null(&j);
        }
    }
    if (!c->snap && (rc = put_crash_json(&j, c)) < 0) /* the run's end, not a snapshot's */
        return rc;
    json_key(&j, "total"); /* of the stacks listed: suppressed ones are not */
    json_obj_begin(&j);
    json_key(&j, "bytes");
    json_u64(&j, in->totals.live_bytes - c->supp_bytes);
    json_key(&j, "objects");
    json_u64(&j, in->totals.live_objects - c->supp_objects);
    json_obj_end(&j);
    if (c->supp_stacks) {
        json_key(&j, "suppressed");
        json_obj_begin(&j);
        json_key(&j, "bytes");
        json_u64(&j, c->supp_bytes);
        json_key(&j, "objects");
        json_u64(&j, c->supp_objects);
        json_key(&j, "stacks");
        json_u64(&j, c->supp_stacks);
        json_obj_end(&j);
    }
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

int write_leaks_txt(FILE *f, ctx_t *c)
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
            in->totals.live_bytes - c->supp_bytes, in->totals.live_objects - c->supp_objects,
            c->n_leaks);
    put_suppressed(f, c, "");
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

/* alloc.folded and inuse.folded draw from the stacks that allocated. */
int heap_folded_want(const rep_stack_t *st, void *arg)
{
    (void)arg;
    return st->alloc_bytes || st->live_bytes;
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
 * same), sorted by bytes of the text, weights summed (saturating).  *out is
 * malloc'ed; the strings are c->folded's. */
static int folded_lines(ctx_t *c, int live, fg_line_t **out, size_t *nout)
{
    const rep_input_t *in = c->in;
    fline_t *v = malloc((in->n_stacks ? in->n_stacks : 1) * sizeof(*v));
    fg_line_t *o = malloc((in->n_stacks ? in->n_stacks : 1) * sizeof(*o));
    size_t n = 0, no = 0;
    if (!v || !o) {
        free(v);
        free(o);
        return -ENOMEM;
    }
    for (size_t id = 0; id < in->n_stacks; id++) {
        uint64_t w = live ? in->stacks[id].live_bytes : in->stacks[id].alloc_bytes;
        if (c->folded[id] && w)
            v[n++] = (fline_t){c->folded[id], w};
    }
    util_sort(v, n, sizeof(*v), cmp_fline);
    for (size_t i = 0; i < n;) {
        uint64_t w = 0;
        size_t k = i;
        for (; k < n && strcmp(v[k].s, v[i].s) == 0; k++)
            w = __builtin_add_overflow(w, v[k].w, &w) ? UINT64_MAX : w;
        o[no++] = (fg_line_t){.stack = v[i].s, .value = w};
        i = k;
    }
    free(v);
    *out = o;
    *nout = no;
    return 0;
}

static int write_folded(FILE *f, ctx_t *c, int live)
{
    fg_line_t *v;
    size_t n;
    int rc = folded_lines(c, live, &v, &n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s %" PRIu64 "\n", v[i].stack, v[i].value);
    free(v);
    return 0;
}

/* The same stacks as the folded file, drawn by the one flame graph renderer
 * every profile kind uses (flamegraph.c). */
static int write_svg(FILE *f, ctx_t *c, int live)
{
    const rep_input_t *in = c->in;
    char title[512];
    fg_line_t *v;
    size_t n;
    int rc = folded_lines(c, live, &v, &n);
    if (rc < 0)
        return rc;
    char what[96];
    if (c->snap && c->snap->time_ns >= 0)
        snprintf(what, sizeof(what), "Live heap at %" PRId64 ".%03" PRId64 " s (%s snapshot)",
                 c->snap->time_ns / 1000000000, c->snap->time_ns % 1000000000 / 1000000,
                 c->snap->kind);
    else if (c->snap)
        snprintf(what, sizeof(what), "Live heap (%s snapshot)", c->snap->kind);
    else
        snprintf(what, sizeof(what), "%s",
                 live ? "Live heap at end (inuse)" : "Allocated bytes (alloc)");
    snprintf(title, sizeof(title), "%s: %s (pid %" PRIu32 ")", what,
             in->proc.exe ? base_name(in->proc.exe) : "?", in->proc.pid);
    rc = flamegraph_write_svg(f, &(fg_input_t){
                                     .lines = v, .n_lines = n, .title = title, .unit = "bytes"});
    if (rc == -EOVERFLOW) {
        /* Only a hostile stream gets here (weights saturated at 2^64 - 1):
         * say so in the file rather than fail every report. */
        if (fflush(f) != 0 || ftruncate(fileno(f), 0) != 0)
            rc = -errno;
        rewind(f);
        fputs("<?xml version=\"1.0\" standalone=\"no\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
              "width=\"600\" height=\"40\"><text x=\"10\" y=\"24\">cannot draw: the values "
              "add up past 2^64</text></svg>\n",
              f);
        rc = rc == -EOVERFLOW ? 0 : rc;
    }
    free(v);
    return rc;
}

int write_alloc_folded(FILE *f, ctx_t *c)
{
    return write_folded(f, c, 0);
}

int write_inuse_folded(FILE *f, ctx_t *c)
{
    return write_folded(f, c, 1);
}

int write_alloc_svg(FILE *f, ctx_t *c)
{
    return write_svg(f, c, 0);
}

int write_inuse_svg(FILE *f, ctx_t *c)
{
    return write_svg(f, c, 1);
}
