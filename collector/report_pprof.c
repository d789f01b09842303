/*
 * report_pprof.c — cpu.pb.gz and heap.pb.gz (write_heap_pprof, at the end).
 * cpu.pb.gz: the CPU profile as a gzipped pprof Profile
 * (pprof.c encodes), for `go tool pprof` and everything that reads it.
 *
 * Same samples as cpu.folded, kept apart per thread (a "thread" label on
 * each sample), with two values: samples/count and cpu/nanoseconds (samples
 * x the thread's period).  Each stack is resolved once (render.c's
 * resolver: leaf first, inline frames expanded); frames that came from one
 * address are one pprof Location with several Lines (all but the outermost
 * marked inlined).  Names are the ones the folded files and reports show
 * (frame_name: the function, else "[module+0xoffset]"), so `pprof -top`
 * agrees with `perfagent top`.  Mappings come from the modules the agent
 * declared (symtab_module_at), with their build-ids; addresses are kept as
 * the stack had them (the leaf a pc, callers return addresses).
 */
#include "report_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pprof.h"
#include "util.h"

typedef struct stack_frames {
    size_t off, n; /* into frames[] */
    int done;
} stack_frames_t;

typedef struct pctx {
    ctx_t *c;
    pprof_frame_t *frames;
    size_t n_frames, cap_frames;
    char **names; /* frame_name copies, one per frame (freed at the end) */
    size_t cap_names;
    pprof_mapping_t *maps;
    char **map_ids; /* hex build-ids, parallel to maps */
    size_t n_maps, cap_maps, cap_ids;
} pctx_t;

/* 1-based mapping index of the module behind addr, 0 when none. */
static int mapping_of(pctx_t *x, uint64_t addr, uint32_t *idx)
{
    sym_module_info_t mi;
    *idx = 0;
    if (!x->c->in->symtab || symtab_module_at(x->c->in->symtab, addr, &mi) < 0)
        return 0;
    for (size_t i = 0; i < x->n_maps; i++)
        if (x->maps[i].start == mi.start && x->maps[i].limit == mi.limit) {
            *idx = (uint32_t)i + 1;
            return 0;
        }
    if (util_grow((void **)&x->maps, &x->cap_maps, x->n_maps + 1, sizeof(*x->maps)) < 0 ||
        util_grow((void **)&x->map_ids, &x->cap_ids, x->n_maps + 1, sizeof(*x->map_ids)) < 0)
        return -ENOMEM;
    char *hex = malloc(mi.build_id_len * 2 + 1);
    if (!hex)
        return -ENOMEM;
    for (size_t i = 0; i < mi.build_id_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", mi.build_id[i]);
    hex[mi.build_id_len * 2] = 0;
    x->map_ids[x->n_maps] = hex;
    /* The file offset of the range is not on the wire; pprof needs it only
     * to symbolize addresses itself, and our Locations carry their Lines. */
    x->maps[x->n_maps] = (pprof_mapping_t){.start = mi.start,
                                           .limit = mi.limit,
                                           .offset = 0,
                                           .file = mi.path,
                                           .build_id = mi.build_id_len ? hex : NULL};
    *idx = (uint32_t)++x->n_maps;
    return 0;
}

/* Resolves stack id into x->frames (once), recording where it went. */
static int stack_frames(pctx_t *x, uint32_t id, stack_frames_t *sf)
{
    const rep_input_t *in = x->c->in;
    resolver_t *r = &x->c->r;
    char nb[64];
    int rc;

    if (sf->done)
        return 0;
    sf->done = 1;
    sf->off = x->n_frames;
    sf->n = 0;
    if (id == 0 || id >= in->n_stacks || !in->stacks[id].defined)
        return 0;
    if ((rc = resolve_stack(r, &in->stacks[id])) < 0)
        return rc;
    if (util_grow((void **)&x->frames, &x->cap_frames, x->n_frames + r->n, sizeof(*x->frames)) < 0 ||
        util_grow((void **)&x->names, &x->cap_names, x->n_frames + r->n, sizeof(*x->names)) < 0)
        return -ENOMEM;
    for (size_t k = 0; k < r->n; k++) {
        const rframe_t *fr = &r->v[k];
        uint32_t map;
        char *name = strdup(frame_name(fr, nb, sizeof(nb)));
        if (!name)
            return -ENOMEM;
        x->names[x->n_frames] = name;
        if ((rc = mapping_of(x, fr->raw, &map)) < 0)
            return rc;
        x->frames[x->n_frames++] = (pprof_frame_t){
            .function = name,
            .file = fr->file,
            .line = fr->line,
            .address = fr->raw,
            .mapping = map,
            /* resolve_stack expands one address innermost first */
            .inlined = k + 1 < r->n && r->v[k + 1].raw == fr->raw,
        };
        sf->n++;
    }
    return 0;
}

/* Moves the program's own mapping to mappings[0] (pprof takes the first
 * for the main binary, and the first seen is often libc's), renumbers the
 * frames, and points sample i at the frames of stack ids[i]: x->frames
 * moved while it grew, so this comes after every stack_frames(). */
static void point_samples(pctx_t *x, pprof_sample_t *smp, size_t n, const uint32_t *ids,
                          const stack_frames_t *sf)
{
    const rep_input_t *in = x->c->in;
    for (size_t m = 1; in->proc.exe && m < x->n_maps; m++) {
        if (!x->maps[m].file || strcmp(x->maps[m].file, in->proc.exe) != 0)
            continue;
        pprof_mapping_t tm = x->maps[0];
        char *ti = x->map_ids[0];
        x->maps[0] = x->maps[m], x->map_ids[0] = x->map_ids[m];
        x->maps[m] = tm, x->map_ids[m] = ti;
        for (size_t k = 0; k < x->n_frames; k++)
            x->frames[k].mapping = x->frames[k].mapping == 1       ? (uint32_t)m + 1
                                   : x->frames[k].mapping == m + 1 ? 1
                                                                   : x->frames[k].mapping;
        break;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t id = ids[i];
        if (id < in->n_stacks && sf[id].n) {
            smp[i].frames = x->frames + sf[id].off;
            smp[i].n_frames = sf[id].n;
        }
    }
}

static void pctx_free(pctx_t *x)
{
    for (size_t i = 0; i < x->n_frames; i++)
        free(x->names[i]);
    free(x->names);
    free(x->frames);
    for (size_t i = 0; i < x->n_maps; i++)
        free(x->map_ids[i]);
    free(x->map_ids);
    free(x->maps);
}

/* t is sorted by tid (cpu_model_threads). */
static const cpu_thread_stat_t *thread_stat(const cpu_thread_stat_t *t, size_t n, uint32_t tid)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t[mid].tid < tid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && t[lo].tid == tid ? &t[lo] : NULL;
}

int write_cpu_pprof(FILE *f, ctx_t *c)
{
    const rep_input_t *in = c->in;
    const cpu_pair_t *pairs;
    const cpu_thread_stat_t *thr;
    size_t np = in->cpu ? cpu_model_pairs(in->cpu, &pairs) : 0;
    size_t nthr = in->cpu ? cpu_model_threads(in->cpu, &thr) : 0;
    uint64_t period = in->proc.cpu_hz ? 1000000000ull / in->proc.cpu_hz : 0;
    pctx_t x = {.c = c};
    stack_frames_t *sf = calloc(in->n_stacks ? in->n_stacks : 1, sizeof(*sf));
    pprof_sample_t *smp = calloc(np ? np : 1, sizeof(*smp));
    int64_t *vals = calloc(np ? 2 * np : 1, sizeof(*vals));
    pprof_label_t *labels = calloc(np ? np : 1, sizeof(*labels));
    char(*tidname)[24] = calloc(np ? np : 1, sizeof(*tidname)); /* "[tid N]" */
    uint32_t *ids = calloc(np ? np : 1, sizeof(*ids));
    int rc = -ENOMEM;

    if (!sf || !smp || !vals || !labels || !tidname || !ids)
        goto out;
    for (size_t i = 0; i < np; i++) {
        const cpu_thread_stat_t *t = thread_stat(thr, nthr, pairs[i].tid);
        uint64_t per = t && t->period_ns ? t->period_ns : period;
        uint32_t id = ids[i] = pairs[i].stack_id;
        if (id < in->n_stacks && (rc = stack_frames(&x, id, &sf[id])) < 0)
            goto out;
        /* ThreadInfo names live as long as the input */
        const char *name = cpu_thread_name(c, pairs[i].tid);
        if (!name) {
            snprintf(tidname[i], sizeof(tidname[i]), "[tid %" PRIu32 "]", pairs[i].tid);
            name = tidname[i];
        }
        labels[i] = (pprof_label_t){.key = "thread", .str = name};
        vals[2 * i] = (int64_t)pairs[i].count;
        vals[2 * i + 1] = (int64_t)(pairs[i].count * per);
        smp[i] = (pprof_sample_t){.values = &vals[2 * i], .labels = &labels[i], .n_labels = 1};
    }
    point_samples(&x, smp, np, ids, sf);
    pprof_profile_t p = {.mappings = x.maps,
                         .n_mappings = x.n_maps,
                         .samples = smp,
                         .n_samples = np,
                         .time_nanos = (int64_t)in->clock.start_unix_ns};
    if (in->clock.end_unix_ns > in->clock.start_unix_ns)
        p.duration_nanos = (int64_t)(in->clock.end_unix_ns - in->clock.start_unix_ns);
    pprof_set_cpu(&p, (int64_t)period);
    rc = pprof_write_gz(f, &p);
out:
    pctx_free(&x);
    free(ids);
    free(tidname);
    free(labels);
    free(vals);
    free(smp);
    free(sf);
    return rc;
}

/* heap.pb.gz: one sample per stack that allocated or holds live blocks,
 * with Go's four heap values (alloc_objects, alloc_space, inuse_objects,
 * inuse_space), so `go tool pprof -sample_index=inuse_space` reads it like
 * a Go heap profile.  The values are in->stacks' (for a snapshot, the
 * counts at that moment); the "no stack" bucket is a sample with no frames. */
int write_heap_pprof(FILE *f, ctx_t *c)
{
    const rep_input_t *in = c->in;
    size_t n = 0;
    pctx_t x = {.c = c};
    stack_frames_t *sf = calloc(in->n_stacks ? in->n_stacks : 1, sizeof(*sf));
    pprof_sample_t *smp = calloc(in->n_stacks ? in->n_stacks : 1, sizeof(*smp));
    int64_t *vals = calloc(in->n_stacks ? 4 * in->n_stacks : 1, sizeof(*vals));
    uint32_t *ids = calloc(in->n_stacks ? in->n_stacks : 1, sizeof(*ids));
    int rc = -ENOMEM;

    if (!sf || !smp || !vals || !ids)
        goto out;
    for (size_t id = 0; id < in->n_stacks; id++) {
        const rep_stack_t *st = &in->stacks[id];
        if (!st->alloc_bytes && !st->alloc_objects && !st->live_bytes && !st->live_objects)
            continue;
        if ((rc = stack_frames(&x, (uint32_t)id, &sf[id])) < 0)
            goto out;
        /* pprof values are int64: a hostile stream's saturated counts clamp */
        int64_t *v = &vals[4 * n];
        v[0] = st->alloc_objects > INT64_MAX ? INT64_MAX : (int64_t)st->alloc_objects;
        v[1] = st->alloc_bytes > INT64_MAX ? INT64_MAX : (int64_t)st->alloc_bytes;
        v[2] = st->live_objects > INT64_MAX ? INT64_MAX : (int64_t)st->live_objects;
        v[3] = st->live_bytes > INT64_MAX ? INT64_MAX : (int64_t)st->live_bytes;
        smp[n] = (pprof_sample_t){.values = v};
        ids[n++] = (uint32_t)id;
    }
    point_samples(&x, smp, n, ids, sf);
    pprof_profile_t p = {.mappings = x.maps,
                         .n_mappings = x.n_maps,
                         .samples = smp,
                         .n_samples = n,
                         .time_nanos = (int64_t)in->clock.start_unix_ns};
    pprof_set_heap(&p, 0, 4, (int64_t)(in->proc.malloc_rate ? in->proc.malloc_rate : 1));
    rc = pprof_write_gz(f, &p);
out:
    pctx_free(&x);
    free(ids);
    free(vals);
    free(smp);
    free(sf);
    return rc;
}
