/*
 * report_snapshot.c — snapshot directories: the live heap by stack at one
 * moment, as heap.json (leaks.json's schema plus "time" and "kind"),
 * inuse.folded, inuse.svg and heap.pb.gz.
 *
 * report_write_snapshot() takes the live set as a full rep_stack_t array
 * (the process's frames, the counts of that moment), so whoever holds a
 * live set — the exit report, a SnapshotMarker's copy, later a snapshot
 * asked for while the process runs — writes it through the same code as
 * the exit report's own files.
 */
#include "report_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int report_write_snapshot(const rep_input_t *in, const rep_heap_snap_t *sn, const char *dir)
{
    rep_input_t v = *in;
    v.stacks = sn->stacks;
    v.totals.live_bytes = sn->live_bytes;
    v.totals.live_objects = sn->live_objects;
    v.no_suppress = 1; /* a snapshot is the whole live heap */
    ctx_t c = {.in = &v, .r = {.in = &v}, .snap = sn};
    int rc;

    if ((rc = leak_list(&v, &c.leaks, &c.n_leaks)) < 0)
        goto out;
    if ((rc = mkdir_p(dir)) < 0)
        goto out;
    if ((rc = render_folded(&c.r, heap_folded_want, NULL, &c.folded)) < 0)
        goto out;
    if ((rc = write_file(dir, "heap.json", write_leaks_json, &c)) < 0 ||
        (rc = write_file(dir, "inuse.folded", write_inuse_folded, &c)) < 0 ||
        (rc = write_file(dir, "inuse.svg", write_inuse_svg, &c)) < 0 ||
        (rc = write_file(dir, "heap.pb.gz", write_heap_pprof, &c)) < 0)
        goto out;
out:
    render_folded_free(c.folded, v.n_stacks);
    free(c.leaks);
    free(c.r.v);
    return rc;
}

/* A marker's sparse live set as a full stack array (frames from in). */
static rep_stack_t *expand(const rep_input_t *in, const rep_snapshot_t *m)
{
    rep_stack_t *v = malloc((in->n_stacks ? in->n_stacks : 1) * sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < in->n_stacks; i++) {
        v[i] = in->stacks[i];
        v[i].alloc_bytes = v[i].alloc_objects = v[i].live_bytes = v[i].live_objects = 0;
    }
    for (size_t k = 0; k < m->n_counts; k++) {
        const rep_snap_count_t *e = &m->counts[k];
        if (e->stack_id >= in->n_stacks)
            continue; /* cannot happen: ids come from the same session */
        v[e->stack_id].alloc_bytes = e->alloc_bytes;
        v[e->stack_id].alloc_objects = e->alloc_objects;
        v[e->stack_id].live_bytes = e->live_bytes;
        v[e->stack_id].live_objects = e->live_objects;
    }
    return v;
}

/* "marker" for a label this version did not send. */
static const char *marker_kind(const char *label)
{
    if (label && (strcmp(label, "request") == 0 || strcmp(label, "interval") == 0))
        return label;
    return "marker";
}

static int64_t time_of(const rep_input_t *in, uint64_t ticks)
{
    uint64_t mono;
    return ticks_to_ns(&in->clock, ticks, &mono) == 0 ? since_start(in, mono) : -1;
}

int report_write_marker(const rep_input_t *in, const rep_snapshot_t *m, const rep_stack_t *stacks,
                        const char *dir, char *path, size_t len)
{
    rep_heap_snap_t sn = {
        .kind = marker_kind(m->label),
        .time_ns = time_of(in, m->ticks),
        .stacks = stacks,
        .live_bytes = m->live_bytes,
        .live_objects = m->live_objects,
    };
    if ((size_t)snprintf(path, len, "%s/snapshots/%03u", dir, m->dir_no) >= len)
        return -ENAMETOOLONG;
    return report_write_snapshot(in, &sn, path);
}

int report_write_snapshots(const rep_input_t *in, const char *dir)
{
    char path[4096];
    unsigned last = 0;
    int rc = 0, partial;

    for (size_t i = 0; i < in->n_snapshots && rc == 0; i++) {
        const rep_snapshot_t *m = &in->snapshots[i];
        if (m->dir_no > last)
            last = m->dir_no;
        if (!m->has_set || m->written || !m->dir_no)
            continue;
        rep_stack_t *st = expand(in, m);
        if (!st)
            return -ENOMEM;
        rc = report_write_marker(in, m, st, dir, path, sizeof(path));
        free(st);
    }
    if (rc < 0)
        return rc;
    if (in->peak_stacks) {
        /* Not an NNN: those are the time-ordered series that diff
         * --suspects reads, and the peak is known only now. */
        rep_heap_snap_t pk = {.kind = "peak",
                              .time_ns = time_of(in, in->peak_ticks),
                              .stacks = in->peak_stacks,
                              .live_bytes = in->peak_live_bytes,
                              .live_objects = in->peak_live_objects};
        snprintf(path, sizeof(path), "%s/snapshots/peak", dir);
        if ((rc = report_write_snapshot(in, &pk, path)) < 0)
            return rc;
    }
    rep_heap_snap_t ex = {.kind = "exit",
                          .time_ns = run_duration(in, &partial),
                          .stacks = in->stacks,
                          .live_bytes = in->totals.live_bytes,
                          .live_objects = in->totals.live_objects};
    snprintf(path, sizeof(path), "%s/snapshots/%03u", dir, last + 1);
    return report_write_snapshot(in, &ex, path);
}
