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

int report_write_snapshots(const rep_input_t *in, const char *dir)
{
    char path[4096];
    unsigned no = 0;
    int rc = 0, partial;

    for (size_t i = 0; i < in->n_snapshots && rc == 0; i++) {
        const rep_snapshot_t *m = &in->snapshots[i];
        if (!m->has_set)
            continue;
        rep_stack_t *st = expand(in, m);
        if (!st)
            return -ENOMEM;
        uint64_t mono;
        rep_heap_snap_t sn = {
            .kind = "marker",
            .time_ns = ticks_to_ns(&in->clock, m->ticks, &mono) == 0 ? since_start(in, mono) : -1,
            .stacks = st,
            .live_bytes = m->live_bytes,
            .live_objects = m->live_objects,
        };
        snprintf(path, sizeof(path), "%s/snapshots/%03u", dir, ++no);
        rc = report_write_snapshot(in, &sn, path);
        free(st);
    }
    if (rc < 0)
        return rc;
    rep_heap_snap_t ex = {.kind = "exit",
                          .time_ns = run_duration(in, &partial),
                          .stacks = in->stacks,
                          .live_bytes = in->totals.live_bytes,
                          .live_objects = in->totals.live_objects};
    snprintf(path, sizeof(path), "%s/snapshots/%03u", dir, ++no);
    return report_write_snapshot(in, &ex, path);
}
