/*
 * pprof.c — the pprof writer (see pprof.h).
 *
 * Two passes: the first interns strings, functions and locations into the
 * tables of a builder (each with an open-addressing index over its entries'
 * hashes), the second lays those tables out as protobuf-c messages in a few
 * flat arrays, so packing needs no allocation per message.  Compression
 * streams the packed bytes through zlib as protobuf-c appends them, so a
 * large profile never exists uncompressed in memory when written to a file.
 *
 * Strings are interned in a fixed order (sample types, default type, period
 * type, mappings, then the samples' frames and labels in order, comments
 * last), which makes the table, and so the output, a function of the input.
 */
#include "pprof.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "profile.pb-c.h"

const pprof_value_type_t pprof_types_cpu[2] = {{"samples", "count"}, {"cpu", "nanoseconds"}};
const pprof_value_type_t pprof_types_heap[4] = {
    {"alloc_objects", "count"},
    {"alloc_space", "bytes"},
    {"inuse_objects", "count"},
    {"inuse_space", "bytes"},
};

void pprof_set_cpu(pprof_profile_t *p, int64_t period_ns)
{
    p->sample_types = pprof_types_cpu;
    p->n_sample_types = 2;
    p->period_type = pprof_types_cpu[1];
    p->period = period_ns;
}

void pprof_set_heap(pprof_profile_t *p, size_t first, size_t n, int64_t rate)
{
    if (first > 4)
        first = 4;
    if (n > 4 - first)
        n = 4 - first;
    p->sample_types = pprof_types_heap + first;
    p->n_sample_types = n;
    p->period_type = (pprof_value_type_t){"space", "bytes"};
    p->period = rate;
}

/* ---- an index of entries by hash ---------------------------------------- */

/* slot[] holds entry index + 1 (0 = empty); hash[i] is entry i's hash, kept
 * so growing never has to look at the entries themselves. */
typedef struct itab {
    uint32_t *slot;
    size_t cap; /* a power of two, or 0 */
    uint64_t *hash;
    size_t n, hcap;
} itab_t;

typedef int (*itab_eq_fn)(const void *ctx, uint32_t idx, const void *key);

static void itab_free(itab_t *t)
{
    free(t->slot);
    free(t->hash);
}

static int itab_grow(itab_t *t)
{
    size_t cap = t->cap ? t->cap * 2 : 64;
    uint32_t *slot = calloc(cap, sizeof(*slot));
    if (!slot)
        return -ENOMEM;
    for (size_t i = 0; i < t->n; i++) {
        size_t pos = t->hash[i] & (cap - 1);
        while (slot[pos])
            pos = (pos + 1) & (cap - 1);
        slot[pos] = (uint32_t)i + 1;
    }
    free(t->slot);
    t->slot = slot;
    t->cap = cap;
    return 0;
}

/* The entry equal to key (its index), or -1 with *pos the free slot where it
 * goes.  Keeps the load at most one half. */
static int64_t itab_get(itab_t *t, uint64_t h, itab_eq_fn eq, const void *ctx, const void *key,
                        size_t *pos)
{
    if ((t->n + 1) * 2 > t->cap && itab_grow(t) < 0)
        return -2;
    size_t p = h & (t->cap - 1);
    for (; t->slot[p]; p = (p + 1) & (t->cap - 1)) {
        uint32_t idx = t->slot[p] - 1;
        if (t->hash[idx] == h && eq(ctx, idx, key))
            return idx;
    }
    *pos = p;
    return -1;
}

/* Records entry t->n (the caller's next entry) at pos. */
static int itab_put(itab_t *t, size_t pos, uint64_t h)
{
    if (t->n >= UINT32_MAX - 1)
        return -EOVERFLOW;
    if (t->n == t->hcap) {
        size_t c = t->hcap ? t->hcap * 2 : 64;
        uint64_t *nh = realloc(t->hash, c * sizeof(*nh));
        if (!nh)
            return -ENOMEM;
        t->hash = nh;
        t->hcap = c;
    }
    t->hash[t->n] = h;
    t->slot[pos] = (uint32_t)t->n + 1;
    t->n++;
    return 0;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return mix(h, 0);
}

/* ---- the builder -------------------------------------------------------- */

typedef struct fn_key {
    uint32_t name, file;
} fn_key_t;

typedef struct line_ent {
    uint32_t fn; /* function index (id - 1) */
    int64_t line;
} line_ent_t;

typedef struct loc_ent {
    uint32_t mapping; /* id, 0 = none */
    uint64_t address;
    size_t line_off; /* into builder.lines */
    uint32_t n_lines;
} loc_ent_t;

typedef struct mapping_flags {
    size_t locs, with_lines;
    int files, numbers, inline_frames;
} mapping_flags_t;

typedef struct builder {
    const char **strs;
    size_t cap_strs;
    itab_t str_ix; /* str_ix.n = number of strings */
    fn_key_t *fns;
    size_t cap_fns;
    itab_t fn_ix;
    loc_ent_t *locs;
    size_t cap_locs;
    itab_t loc_ix;
    line_ent_t *lines; /* the interned locations' lines, back to back */
    size_t n_lines, cap_lines;
    uint64_t *sample_locs; /* every sample's location ids, back to back */
    size_t n_sample_locs, cap_sample_locs;
    size_t *sample_off; /* sample i's ids start at sample_off[i] */
    uint32_t *label_strs; /* per label: key, str, unit */
    size_t n_label_strs, cap_label_strs;
} builder_t;

static void builder_free(builder_t *b)
{
    free(b->strs);
    itab_free(&b->str_ix);
    free(b->fns);
    itab_free(&b->fn_ix);
    free(b->locs);
    itab_free(&b->loc_ix);
    free(b->lines);
    free(b->sample_locs);
    free(b->sample_off);
    free(b->label_strs);
}

static int str_eq(const void *ctx, uint32_t idx, const void *key)
{
    const builder_t *b = ctx;
    return strcmp(b->strs[idx], key) == 0;
}

/* The string table index of s (NULL = ""), or a negative errno. */
static int64_t intern(builder_t *b, const char *s)
{
    if (!s)
        s = "";
    uint64_t h = hash_str(s);
    size_t pos;
    int64_t i = itab_get(&b->str_ix, h, str_eq, b, s, &pos);
    if (i != -1)
        return i >= 0 ? i : -ENOMEM;
    if (util_grow((void **)&b->strs, &b->cap_strs, b->str_ix.n + 1, sizeof(*b->strs)) < 0)
        return -ENOMEM;
    b->strs[b->str_ix.n] = s;
    i = (int64_t)b->str_ix.n;
    int rc = itab_put(&b->str_ix, pos, h);
    return rc < 0 ? rc : i;
}

static int fn_eq(const void *ctx, uint32_t idx, const void *key)
{
    const builder_t *b = ctx;
    const fn_key_t *k = key;
    return b->fns[idx].name == k->name && b->fns[idx].file == k->file;
}

/* The function index of (name, file), or a negative errno. */
static int64_t intern_fn(builder_t *b, const char *name, const char *file)
{
    int64_t n = intern(b, name), f = n < 0 ? n : intern(b, file);
    if (f < 0)
        return f;
    fn_key_t k = {(uint32_t)n, (uint32_t)f};
    uint64_t h = mix(mix(0, k.name), k.file);
    size_t pos;
    int64_t i = itab_get(&b->fn_ix, h, fn_eq, b, &k, &pos);
    if (i != -1)
        return i >= 0 ? i : -ENOMEM;
    if (util_grow((void **)&b->fns, &b->cap_fns, b->fn_ix.n + 1, sizeof(*b->fns)) < 0)
        return -ENOMEM;
    b->fns[b->fn_ix.n] = k;
    i = (int64_t)b->fn_ix.n;
    int rc = itab_put(&b->fn_ix, pos, h);
    return rc < 0 ? rc : i;
}

/* A location being looked up: its lines are the builder's last n_lines. */
static int loc_eq(const void *ctx, uint32_t idx, const void *key)
{
    const builder_t *b = ctx;
    const loc_ent_t *k = key, *l = &b->locs[idx];
    return l->mapping == k->mapping && l->address == k->address && l->n_lines == k->n_lines &&
           memcmp(&b->lines[l->line_off], &b->lines[k->line_off],
                  k->n_lines * sizeof(line_ent_t)) == 0;
}

/* The location id of frames[0..n) (one physical frame, innermost first), or
 * a negative errno. */
static int64_t intern_loc(builder_t *b, const pprof_frame_t *fr, size_t n)
{
    loc_ent_t k = {fr[0].mapping, fr[0].address, b->n_lines, 0};
    uint64_t h = mix(mix(0, k.mapping), k.address);
    for (size_t i = 0; i < n; i++) {
        if (!fr[i].function)
            continue; /* unsymbolized: no Line */
        int64_t f = intern_fn(b, fr[i].function, fr[i].file);
        if (f < 0)
            return f;
        if (util_grow((void **)&b->lines, &b->cap_lines, b->n_lines + 1, sizeof(*b->lines)) < 0)
            return -ENOMEM;
        /* zeroed first: the entries are compared with memcmp */
        memset(&b->lines[b->n_lines], 0, sizeof(line_ent_t));
        b->lines[b->n_lines].fn = (uint32_t)f;
        b->lines[b->n_lines].line = fr[i].line;
        b->n_lines++;
        k.n_lines++;
        h = mix(mix(h, (uint64_t)f), (uint64_t)fr[i].line);
    }
    size_t pos;
    int64_t i = itab_get(&b->loc_ix, h, loc_eq, b, &k, &pos);
    if (i == -2)
        return -ENOMEM;
    if (i >= 0) {
        b->n_lines -= k.n_lines; /* already known: drop the copy */
        return i + 1;
    }
    if (util_grow((void **)&b->locs, &b->cap_locs, b->loc_ix.n + 1, sizeof(*b->locs)) < 0)
        return -ENOMEM;
    b->locs[b->loc_ix.n] = k;
    i = (int64_t)b->loc_ix.n;
    int rc = itab_put(&b->loc_ix, pos, h);
    return rc < 0 ? rc : i + 1;
}

static int add_sample(builder_t *b, const pprof_profile_t *p, const pprof_sample_t *s)
{
    if (!s->values || (s->n_frames && !s->frames) || (s->n_labels && !s->labels))
        return -EINVAL;
    for (size_t i = 0; i < s->n_frames;) {
        /* one physical frame: the inlined frames up to the first that is not */
        size_t j = i;
        while (j < s->n_frames && s->frames[j].inlined)
            j++;
        if (j == s->n_frames)
            return -EINVAL; /* inlined into nothing */
        for (size_t k = i; k <= j; k++)
            if (s->frames[k].mapping > p->n_mappings || s->frames[k].address != s->frames[i].address ||
                s->frames[k].mapping != s->frames[i].mapping)
                return -EINVAL;
        int64_t id = intern_loc(b, &s->frames[i], j + 1 - i);
        if (id < 0)
            return (int)id;
        if (util_grow((void **)&b->sample_locs, &b->cap_sample_locs, b->n_sample_locs + 1,
                    sizeof(*b->sample_locs)) < 0)
            return -ENOMEM;
        b->sample_locs[b->n_sample_locs++] = (uint64_t)id;
        i = j + 1;
    }
    for (size_t i = 0; i < s->n_labels; i++) {
        const pprof_label_t *l = &s->labels[i];
        if (!l->key)
            return -EINVAL;
        if (util_grow((void **)&b->label_strs, &b->cap_label_strs, b->n_label_strs + 3,
                    sizeof(*b->label_strs)) < 0)
            return -ENOMEM;
        int64_t k = intern(b, l->key);
        int64_t v = k < 0 || !l->str ? k : intern(b, l->str);
        int64_t u = v < 0 || !l->num_unit ? v : intern(b, l->num_unit);
        if (u < 0)
            return (int)u;
        b->label_strs[b->n_label_strs++] = (uint32_t)k;
        b->label_strs[b->n_label_strs++] = l->str ? (uint32_t)v : 0;
        b->label_strs[b->n_label_strs++] = l->num_unit ? (uint32_t)u : 0;
    }
    return 0;
}

/* ---- laying out the messages --------------------------------------------- */

/* Every message of one profile, in flat arrays owned here. */
typedef struct layout {
    Perftools__Profiles__Profile prof;
    Perftools__Profiles__ValueType *vt; /* sample types, then the period type */
    Perftools__Profiles__ValueType **vt_p;
    Perftools__Profiles__Sample *smp;
    Perftools__Profiles__Sample **smp_p;
    Perftools__Profiles__Label *lab;
    Perftools__Profiles__Label **lab_p;
    Perftools__Profiles__Mapping *map;
    Perftools__Profiles__Mapping **map_p;
    Perftools__Profiles__Location *loc;
    Perftools__Profiles__Location **loc_p;
    Perftools__Profiles__Line *line;
    Perftools__Profiles__Line **line_p;
    Perftools__Profiles__Function *fn;
    Perftools__Profiles__Function **fn_p;
    int64_t *comment;
    builder_t b;
} layout_t;

static void layout_free(layout_t *l)
{
    free(l->vt);
    free(l->vt_p);
    free(l->smp);
    free(l->smp_p);
    free(l->lab);
    free(l->lab_p);
    free(l->map);
    free(l->map_p);
    free(l->loc);
    free(l->loc_p);
    free(l->line);
    free(l->line_p);
    free(l->fn);
    free(l->fn_p);
    free(l->comment);
    builder_free(&l->b);
}

/* calloc that accepts n = 0 (returns a non-NULL pointer then too). */
static void *zalloc(size_t n, size_t sz)
{
    return calloc(n ? n : 1, sz);
}

static int layout_build(layout_t *l, const pprof_profile_t *p)
{
    builder_t *b = &l->b;
    int64_t rc;
    size_t i;

    memset(l, 0, sizeof(*l));
    if (!p || !p->n_sample_types || !p->sample_types || (p->n_mappings && !p->mappings) ||
        (p->n_samples && !p->samples) || (p->n_comments && !p->comments))
        return -EINVAL;
    /* the messages whose strings come first, filled as they are interned */
    size_t n_vt = p->n_sample_types + 1; /* the last one is the period type */
    l->vt = zalloc(n_vt, sizeof(*l->vt));
    l->vt_p = zalloc(n_vt, sizeof(*l->vt_p));
    l->map = zalloc(p->n_mappings, sizeof(*l->map));
    l->map_p = zalloc(p->n_mappings, sizeof(*l->map_p));
    l->comment = zalloc(p->n_comments, sizeof(int64_t));
    b->sample_off = zalloc(p->n_samples + 1, sizeof(size_t));
    if (!l->vt || !l->vt_p || !l->map || !l->map_p || !l->comment || !b->sample_off)
        return -ENOMEM;
    for (i = 0; i < n_vt; i++) {
        perftools__profiles__value_type__init(&l->vt[i]);
        l->vt_p[i] = &l->vt[i];
    }
    for (i = 0; i < p->n_mappings; i++)
        perftools__profiles__mapping__init(&l->map[i]);

    if ((rc = intern(b, "")) < 0)
        return (int)rc;
    for (i = 0; i < p->n_sample_types; i++) {
        if ((rc = l->vt[i].type = intern(b, p->sample_types[i].type)) < 0 ||
            (rc = l->vt[i].unit = intern(b, p->sample_types[i].unit)) < 0)
            return (int)rc;
    }
    int64_t dflt = 0;
    if (p->default_sample_type && (dflt = intern(b, p->default_sample_type)) < 0)
        return (int)dflt;
    if (p->period_type.type && ((rc = l->vt[n_vt - 1].type = intern(b, p->period_type.type)) < 0 ||
                                (rc = l->vt[n_vt - 1].unit = intern(b, p->period_type.unit)) < 0))
        return (int)rc;
    for (i = 0; i < p->n_mappings; i++)
        if ((rc = l->map[i].filename = intern(b, p->mappings[i].file)) < 0 ||
            (rc = l->map[i].build_id = intern(b, p->mappings[i].build_id)) < 0)
            return (int)rc;
    for (i = 0; i < p->n_samples; i++) {
        b->sample_off[i] = b->n_sample_locs;
        if ((rc = add_sample(b, p, &p->samples[i])) < 0)
            return (int)rc;
    }
    b->sample_off[p->n_samples] = b->n_sample_locs;
    for (i = 0; i < p->n_comments; i++)
        if ((l->comment[i] = intern(b, p->comments[i])) < 0)
            return (int)l->comment[i];

    size_t n_fn = b->fn_ix.n, n_loc = b->loc_ix.n, n_lab = b->n_label_strs / 3;
    l->smp = zalloc(p->n_samples, sizeof(*l->smp));
    l->smp_p = zalloc(p->n_samples, sizeof(*l->smp_p));
    l->lab = zalloc(n_lab, sizeof(*l->lab));
    l->lab_p = zalloc(n_lab, sizeof(*l->lab_p));
    l->loc = zalloc(n_loc, sizeof(*l->loc));
    l->loc_p = zalloc(n_loc, sizeof(*l->loc_p));
    l->line = zalloc(b->n_lines, sizeof(*l->line));
    l->line_p = zalloc(b->n_lines, sizeof(*l->line_p));
    l->fn = zalloc(n_fn, sizeof(*l->fn));
    l->fn_p = zalloc(n_fn, sizeof(*l->fn_p));
    mapping_flags_t *mf = zalloc(p->n_mappings, sizeof(*mf));
    if (!l->smp || !l->smp_p || !l->lab || !l->lab_p || !l->loc || !l->loc_p || !l->line || !l->line_p || !l->fn || !l->fn_p || !mf) {
        free(mf);
        return -ENOMEM;
    }

    Perftools__Profiles__Profile *pr = &l->prof;
    perftools__profiles__profile__init(pr);
    pr->n_sample_type = p->n_sample_types;
    pr->sample_type = l->vt_p;
    if (p->period_type.type)
        pr->period_type = &l->vt[n_vt - 1];
    pr->period = p->period;
    pr->time_nanos = p->time_nanos;
    pr->duration_nanos = p->duration_nanos;
    pr->default_sample_type = dflt;
    pr->n_comment = p->n_comments;
    pr->comment = l->comment;

    for (i = 0; i < n_fn; i++) {
        Perftools__Profiles__Function *f = &l->fn[i];
        perftools__profiles__function__init(f);
        f->id = i + 1;
        f->name = f->system_name = b->fns[i].name;
        f->filename = b->fns[i].file;
        l->fn_p[i] = f;
    }
    for (i = 0; i < b->n_lines; i++) {
        perftools__profiles__line__init(&l->line[i]);
        l->line[i].function_id = b->lines[i].fn + 1;
        l->line[i].line = b->lines[i].line;
        l->line_p[i] = &l->line[i];
    }
    for (i = 0; i < n_loc; i++) {
        const loc_ent_t *e = &b->locs[i];
        Perftools__Profiles__Location *lo = &l->loc[i];
        perftools__profiles__location__init(lo);
        lo->id = i + 1;
        lo->mapping_id = e->mapping;
        lo->address = e->address;
        lo->n_line = e->n_lines;
        lo->line = l->line_p + e->line_off;
        l->loc_p[i] = lo;
        if (!e->mapping)
            continue;
        mapping_flags_t *m = &mf[e->mapping - 1];
        m->locs++;
        m->with_lines += e->n_lines > 0;
        m->inline_frames |= e->n_lines > 1;
        for (uint32_t k = 0; k < e->n_lines; k++) {
            const line_ent_t *ln = &b->lines[e->line_off + k];
            m->files |= b->fns[ln->fn].file != 0;
            m->numbers |= ln->line != 0;
        }
    }
    for (i = 0; i < p->n_mappings; i++) {
        const pprof_mapping_t *src = &p->mappings[i];
        Perftools__Profiles__Mapping *m = &l->map[i];
        m->id = i + 1;
        m->memory_start = src->start;
        m->memory_limit = src->limit;
        m->file_offset = src->offset;
        /* has_functions tells pprof not to symbolize the mapping itself: only
         * when every location in it came with its function */
        m->has_functions = mf[i].locs && mf[i].with_lines == mf[i].locs;
        m->has_filenames = mf[i].files;
        m->has_line_numbers = mf[i].numbers;
        m->has_inline_frames = mf[i].inline_frames;
        l->map_p[i] = m;
    }
    free(mf);
    size_t li = 0;
    for (i = 0; i < p->n_samples; i++) {
        const pprof_sample_t *s = &p->samples[i];
        Perftools__Profiles__Sample *sm = &l->smp[i];
        perftools__profiles__sample__init(sm);
        sm->n_location_id = b->sample_off[i + 1] - b->sample_off[i];
        /* NULL + 0 is undefined (UBSan, fuzz): a sample of no frames gets NULL */
        sm->location_id = sm->n_location_id ? b->sample_locs + b->sample_off[i] : NULL;
        sm->n_value = p->n_sample_types;
        sm->value = (int64_t *)s->values; /* packing only reads it */
        sm->n_label = s->n_labels;
        sm->label = s->n_labels ? l->lab_p + li : NULL;
        for (size_t k = 0; k < s->n_labels; k++, li++) {
            Perftools__Profiles__Label *lb = &l->lab[li];
            perftools__profiles__label__init(lb);
            lb->key = b->label_strs[3 * li];
            lb->str = b->label_strs[3 * li + 1];
            lb->num = s->labels[k].str ? 0 : s->labels[k].num;
            lb->num_unit = b->label_strs[3 * li + 2];
            l->lab_p[li] = lb;
        }
        l->smp_p[i] = sm;
    }
    pr->n_sample = p->n_samples;
    pr->sample = l->smp_p;
    pr->n_mapping = p->n_mappings;
    pr->mapping = l->map_p;
    pr->n_location = n_loc;
    pr->location = l->loc_p;
    pr->n_function = n_fn;
    pr->function = l->fn_p;
    pr->n_string_table = b->str_ix.n;
    pr->string_table = (char **)b->strs; /* packing only reads them */
    return 0;
}

int pprof_encode(const pprof_profile_t *p, uint8_t **out, size_t *len)
{
    layout_t l;
    int rc = layout_build(&l, p);
    if (rc == 0) {
        size_t n = perftools__profiles__profile__get_packed_size(&l.prof);
        uint8_t *buf = malloc(n ? n : 1);
        if (!buf) {
            rc = -ENOMEM;
        } else {
            *len = perftools__profiles__profile__pack(&l.prof, buf);
            *out = buf;
        }
    }
    layout_free(&l);
    return rc;
}

/* ---- gzip ------------------------------------------------------------------ */

/* A ProtobufCBuffer that deflates what protobuf-c appends into FILE f. */
typedef struct gz_sink {
    ProtobufCBuffer base;
    z_stream z;
    FILE *f;
    int err;
    unsigned char out[64 * 1024];
} gz_sink_t;

/* Deflates data[0..len) with flush (Z_NO_FLUSH or Z_FINISH) and writes what
 * comes out; sets g->err on failure. */
static void gz_run(gz_sink_t *g, const uint8_t *data, size_t len, int flush)
{
    for (;;) {
        /* zlib's avail_in is 32 bits wide: larger appends go in pieces */
        if (g->z.avail_in == 0 && len) {
            size_t piece = len > (1u << 30) ? (1u << 30) : len;
            g->z.next_in = (Bytef *)data;
            g->z.avail_in = (uInt)piece;
            data += piece;
            len -= piece;
        }
        int fl = len ? Z_NO_FLUSH : flush;
        g->z.next_out = g->out;
        g->z.avail_out = sizeof(g->out);
        int zr = deflate(&g->z, fl);
        if (zr == Z_STREAM_ERROR) {
            g->err = -EIO;
            return;
        }
        size_t have = sizeof(g->out) - g->z.avail_out;
        if (have && fwrite(g->out, 1, have, g->f) != have) {
            g->err = -EIO;
            return;
        }
        if (fl == Z_FINISH) {
            if (zr == Z_STREAM_END)
                return;
        } else if (g->z.avail_out != 0 && g->z.avail_in == 0 && len == 0) {
            return; /* all taken in, nothing more pending to write */
        }
    }
}

static void gz_append(ProtobufCBuffer *buf, size_t len, const uint8_t *data)
{
    gz_sink_t *g = (gz_sink_t *)buf;
    if (!g->err && len)
        gz_run(g, data, len, Z_NO_FLUSH);
}

int pprof_write_gz(FILE *f, const pprof_profile_t *p)
{
    layout_t l;
    gz_sink_t *g = NULL;
    int rc = layout_build(&l, p);
    if (rc < 0)
        goto out;
    g = calloc(1, sizeof(*g));
    if (!g) {
        rc = -ENOMEM;
        goto out;
    }
    g->base.append = gz_append;
    g->f = f;
    /* windowBits 15 + 16: a gzip header and trailer instead of zlib's; the
     * header zlib writes has no name and mtime 0, so output is repeatable */
    if (deflateInit2(&g->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        free(g);
        g = NULL;
        rc = -ENOMEM;
        goto out;
    }
    perftools__profiles__profile__pack_to_buffer(&l.prof, &g->base);
    if (!g->err)
        gz_run(g, NULL, 0, Z_FINISH);
    deflateEnd(&g->z);
    rc = g->err;
    if (rc == 0 && fflush(f) != 0)
        rc = -EIO;
out:
    free(g);
    layout_free(&l);
    return rc;
}

int pprof_write_file(const char *path, const pprof_profile_t *p)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int e = -errno;
        close(fd);
        return e;
    }
    int rc = pprof_write_gz(f, p);
    if (fclose(f) != 0 && rc == 0)
        rc = errno ? -errno : -EIO;
    return rc;
}
