/*
 * report — renders a rep_input_t into one process's report files (see
 * report.h): the pieces several files share (warnings, stream state) and the
 * writing of files; each kind's reports are in files of their own
 * (report_heap.c, report_summary.c), stack rendering in render.c.
 *
 * Must stay deterministic: everything is sorted with total orders, nothing
 * reads the time, and every string that came from the stream is escaped
 * (JSON) or has its control characters replaced (text), so an agent cannot
 * forge lines in a report.
 */
#include "report_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report_trace.h"
#include "suppress.h"

const char *mode_name(const rep_input_t *in)
{
    return in->proc.malloc_rate == 1 ? "exact" : "sampled";
}

int cmp_u64_desc(uint64_t a, uint64_t b)
{
    return a > b ? -1 : a < b;
}

void put_drops(FILE *f, const rep_input_t *in, const char *indent)
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

void put_incomplete_warning(FILE *f, const rep_input_t *in)
{
    if (incomplete(in))
        fputs("WARNING: data was dropped (see the drop counts): numbers are incomplete\n", f);
}

/* Rows the collector could not put back in time order (session_heap.c):
 * the live heap may be wrong although nothing was dropped, so say so where
 * the drop warning goes rather than present it as exact. */
void put_order_warning(FILE *f, const reorder_stats_t *ro)
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

void put_stream_state(FILE *f, const rep_input_t *in)
{
    if (in->goodbye)
        fprintf(f, "ended cleanly (Goodbye, exit code %" PRId32 ")", in->exit_code);
    else if (in->fault)
        fputs("stopped at a decode fault (no Goodbye)", f);
    else if (in->crash.has)
        fprintf(f, "ended by %s: the agent caught it and sent what its buffers held (no Goodbye)",
                in->crash.signo > 0 && in->crash.name[0] ? in->crash.name : "a fatal signal");
    else if (in->ended)
        fputs("cut: no Goodbye (the process crashed, was killed, or lost its connection)", f);
    else
        fputs("still open (reports written while recording)", f);
}

/* ---- files ------------------------------------------------------------------ */

int mkdir_p(const char *dir)
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

int write_file(const char *dir, const char *name, writer_fn fn, ctx_t *c)
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

/* Takes the suppressed stacks out of c->leaks (suppress.h) and counts them. */
static int apply_suppressions(ctx_t *c)
{
    const rep_input_t *in = c->in;
    const supp_t *rules = in->no_suppress ? NULL : suppress_rules();
    size_t k = 0;
    int rc;

    if (!rules || !rules->n || !c->n_leaks)
        return 0;
    if (!(c->supp_rule = calloc(in->n_stacks, sizeof(*c->supp_rule))))
        return -ENOMEM;
    for (size_t i = 0; i < c->n_leaks; i++) {
        const rep_stack_t *st = &in->stacks[c->leaks[i]];
        if ((rc = resolve_stack(&c->r, st)) < 0)
            return rc;
        size_t rule = suppress_stack(rules, &c->r);
        if (!rule || rule > UINT16_MAX) {
            c->leaks[k++] = c->leaks[i];
            continue;
        }
        c->supp_rule[c->leaks[i]] = (uint16_t)rule;
        c->supp_bytes += st->live_bytes;
        c->supp_objects += st->live_objects;
        c->supp_stacks++;
    }
    c->n_leaks = k;
    return 0;
}

void put_suppressed(FILE *f, const ctx_t *c, const char *indent)
{
    const supp_t *rules = c->in->no_suppress ? NULL : suppress_rules();
    if (!c->supp_stacks || !rules)
        return;
    fprintf(f,
            "%ssuppressed (not leaks: one-time runtime allocations; --no-suppress shows them): "
            "%" PRIu64 " bytes in %" PRIu64 " objects from %" PRIu64 " stacks\n",
            indent, c->supp_bytes, c->supp_objects, c->supp_stacks);
    for (size_t r = 1; r <= rules->n && r <= UINT16_MAX; r++) {
        uint64_t b = 0, o = 0, n = 0;
        for (size_t id = 0; id < c->in->n_stacks; id++)
            if (c->supp_rule[id] == r) {
                b += c->in->stacks[id].live_bytes;
                o += c->in->stacks[id].live_objects;
                n++;
            }
        if (!n)
            continue;
        fprintf(f, "%s  leak:", indent);
        if (rules->v[r - 1].module) {
            put_text(f, rules->v[r - 1].module);
            fputs(" called from ", f);
        }
        put_text(f, rules->v[r - 1].pattern);
        fputs(" (", f);
        put_text(f, rules->v[r - 1].origin);
        fprintf(f, "): %" PRIu64 " bytes in %" PRIu64 " objects from %" PRIu64 " stacks\n", b,
                o, n);
    }
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
    if ((rc = leak_list(in, &c.leaks, &c.n_leaks)) < 0 || (rc = apply_suppressions(&c)) < 0 ||
        (rc = cpu_prepare(&c)) < 0)
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
    if ((rc = render_folded(&c.r, heap_folded_want, NULL, &c.folded)) < 0)
        goto out;
    if ((rc = write_file(dir, "leaks.json", write_leaks_json, &c)) < 0 ||
        (rc = write_file(dir, "leaks.txt", write_leaks_txt, &c)) < 0 ||
        (rc = write_file(dir, "alloc.folded", write_alloc_folded, &c)) < 0 ||
        (rc = write_file(dir, "inuse.folded", write_inuse_folded, &c)) < 0 ||
        (rc = write_file(dir, "alloc.svg", write_alloc_svg, &c)) < 0 ||
        (rc = write_file(dir, "inuse.svg", write_inuse_svg, &c)) < 0 ||
        (rc = write_file(dir, "heap.pb.gz", write_heap_pprof, &c)) < 0 ||
        (rc = report_write_snapshots(in, dir)) < 0)
        goto out;
    if (cpu_reports_wanted(in) && ((rc = write_file(dir, "cpu.folded", write_cpu_folded, &c)) < 0 ||
                                   (rc = write_file(dir, "cpu.svg", write_cpu_svg, &c)) < 0 ||
                                   (rc = write_file(dir, "cpu.pb.gz", write_cpu_pprof, &c)) < 0))
        goto out;
    if (pq_reports_wanted(in) && (rc = write_pq_reports(dir, &c)) < 0)
        goto out;
    if (net_reports_wanted(in) && ((rc = write_file(dir, "net.json", write_net_json, &c)) < 0 ||
                                   (rc = write_file(dir, "net.txt", write_net_txt, &c)) < 0 ||
                                   (rc = write_file(dir, "http.json", write_http_json, &c)) < 0 ||
                                   (rc = write_file(dir, "http.txt", write_http_txt, &c)) < 0))
        goto out;
    if (wall_reports_wanted(in) && ((rc = write_file(dir, "wall.folded", write_wall_folded, &c)) < 0 ||
                                    (rc = write_file(dir, "wall.svg", write_wall_svg, &c)) < 0))
        goto out;
    if (trace_reports_wanted(in) && (rc = write_file(dir, "trace.json", write_trace_json, &c)) < 0)
        goto out;
    rc = write_file(dir, "summary.txt", write_summary, &c);
out:
    cpu_release(&c);
    free(c.supp_rule);
    render_folded_free(c.folded, in->n_stacks);
    free(c.leaks);
    free(c.r.v);
    return rc;
}
