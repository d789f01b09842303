/*
 * leakdiff.c — see leakdiff.h.
 */
#include "leakdiff.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "flamegraph.h"
#include "json.h"
#include "jsonread.h"
#include "util.h"

#define PROG "perfagent diff"
#define TOP_ROWS 30

/* One stack of a snapshot (stacks with equal frames merged). */
typedef struct hstack {
    char *key;         /* frames as text: the match key */
    char *folded;      /* function names, root first, for the flame graph */
    const jr_t *frames; /* leaks.json's frames array */
    uint64_t bytes, objects;
    size_t snap; /* suspects: which snapshot */
} hstack_t;

typedef struct hsnap {
    char path[4096];
    jr_t doc;
    const jr_t *time; /* "time" as written, NULL when absent */
    hstack_t *v;
    size_t n;
    uint64_t bytes, objects;
} hsnap_t;

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The JSON file behind path: itself, DIR/heap.json, else DIR/leaks.json. */
static int heap_file(const char *path, char *out, size_t len)
{
    /* Never true; says so to gcc 12, whose -Wformat-truncation under the
     * sanitizers (make asan) otherwise sees a null `out` or `path` below. */
    if (!path || !out || !len)
        return -EINVAL;
    if (!is_dir(path)) {
        snprintf(out, len, "%s", path);
        return is_file(path) ? 0 : -ENOENT;
    }
    snprintf(out, len, "%s/heap.json", path);
    if (is_file(out))
        return 0;
    snprintf(out, len, "%s/leaks.json", path);
    return is_file(out) ? 0 : -ENOENT;
}

int leakdiff_is_heap(const char *path)
{
    char p[4096];
    size_t l = strlen(path);
    if (!is_dir(path))
        return l > 5 && strcmp(path + l - 5, ".json") == 0 && is_file(path);
    return heap_file(path, p, sizeof(p)) == 0;
}

static void sb_add(char **s, size_t *n, size_t *cap, const char *t)
{
    size_t l = strlen(t);
    if (!*s)
        return;
    if (*n + l + 1 > *cap) {
        char *g = realloc(*s, (*n + l + 1) * 2);
        if (!g) {
            free(*s);
            *s = NULL;
            return;
        }
        *s = g;
        *cap = (*n + l + 1) * 2;
    }
    memcpy(*s + *n, t, l + 1);
    *n += l;
}

/* The key (every frame's function, file, line and module) and the folded
 * text of one stack's frames; NULLs when out of memory. */
static void stack_text(const jr_t *frames, char **key, char **folded)
{
    size_t kn = 0, kc = 256, fn = 0, fc = 256;
    char line[32];
    *key = malloc(kc);
    *folded = malloc(fc);
    if (*key)
        (*key)[0] = 0;
    if (*folded)
        (*folded)[0] = 0;
    for (size_t i = 0; frames && i < frames->n; i++) {
        const jr_t *fr = &frames->items[i];
        const char *f = jr_str(jr_get(fr, "function")), *file = jr_str(jr_get(fr, "file"));
        const char *mod = jr_str(jr_get(fr, "module"));
        const jr_t *ln = jr_get(fr, "line");
        snprintf(line, sizeof(line), "%s", ln && ln->kind == JR_NUM ? ln->s : "0");
        sb_add(key, &kn, &kc, f ? f : "?");
        sb_add(key, &kn, &kc, "\x1f");
        sb_add(key, &kn, &kc, file ? file : "");
        sb_add(key, &kn, &kc, "\x1f");
        sb_add(key, &kn, &kc, line);
        sb_add(key, &kn, &kc, "\x1f");
        sb_add(key, &kn, &kc, mod ? mod : "");
        sb_add(key, &kn, &kc, "\x1e");
    }
    /* folded: root first, ';' in names replaced as the folded files do */
    for (size_t i = frames ? frames->n : 0; i-- > 0;) {
        const char *f = jr_str(jr_get(&frames->items[i], "function"));
        char *c = strdup(f ? f : "?");
        if (!c) {
            free(*folded);
            *folded = NULL;
            break;
        }
        for (char *p = c; *p; p++)
            if (*p == ';' || (unsigned char)*p < 0x20)
                *p = '_';
        sb_add(folded, &fn, &fc, c);
        if (i)
            sb_add(folded, &fn, &fc, ";");
        free(c);
    }
    if (*folded && !**folded) {
        free(*folded);
        *folded = strdup("[no frames]");
    }
}

static int cmp_key(const void *a, const void *b)
{
    const hstack_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->snap > y->snap) - (x->snap < y->snap);
}

static void snap_free(hsnap_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].key);
        free(s->v[i].folded);
    }
    free(s->v);
    jr_free(&s->doc);
    memset(s, 0, sizeof(*s));
}

/* Reads one snapshot; stacks sorted by key, equal ones merged. */
static int snap_load(hsnap_t *s, const char *path)
{
    char err[512];
    const jr_t *st;
    memset(s, 0, sizeof(*s));
    if (heap_file(path, s->path, sizeof(s->path)) < 0) {
        fprintf(stderr, PROG ": %s: no heap.json or leaks.json\n", path);
        return 1;
    }
    if (jr_read_file(&s->doc, s->path, err, sizeof(err)) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    s->time = jr_get(&s->doc, "time");
    if (!(st = jr_get(&s->doc, "stacks")) || st->kind != JR_ARR) {
        fprintf(stderr, PROG ": %s: no \"stacks\" array (not a leaks.json or heap.json)\n",
                s->path);
        return 1;
    }
    if (!(s->v = calloc(st->n ? st->n : 1, sizeof(*s->v))))
        goto oom;
    for (size_t i = 0; i < st->n; i++) {
        hstack_t *h = &s->v[s->n++];
        const jr_t *fr = jr_get(&st->items[i], "frames");
        if (jr_u64(jr_get(&st->items[i], "bytes"), &h->bytes) < 0 ||
            jr_u64(jr_get(&st->items[i], "objects"), &h->objects) < 0 || !fr ||
            fr->kind != JR_ARR) {
            fprintf(stderr, PROG ": %s: stack %zu: needs bytes, objects and frames\n", s->path,
                    i + 1);
            return 1;
        }
        h->frames = fr;
        stack_text(fr, &h->key, &h->folded);
        if (!h->key || !h->folded)
            goto oom;
    }
    util_sort(s->v, s->n, sizeof(*s->v), cmp_key);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (k && strcmp(s->v[k - 1].key, s->v[i].key) == 0) {
            s->v[k - 1].bytes += s->v[i].bytes;
            s->v[k - 1].objects += s->v[i].objects;
            free(s->v[i].key);
            free(s->v[i].folded);
            continue;
        }
        s->v[k++] = s->v[i];
    }
    s->n = k;
    for (size_t i = 0; i < s->n; i++) {
        s->bytes += s->v[i].bytes;
        s->objects += s->v[i].objects;
    }
    return 0;
oom:
    fprintf(stderr, PROG ": out of memory\n");
    return 1;
}

/* ---- writing ------------------------------------------------------------------ */

/* A parsed value written back as it was read. */
static void jr_write(json_t *j, const jr_t *v)
{
    switch (v->kind) {
    case JR_NULL: json_null(j); break;
    case JR_FALSE: json_bool(j, 0); break;
    case JR_TRUE: json_bool(j, 1); break;
    case JR_NUM: json_raw(j, v->s); break;
    case JR_STR: json_str(j, v->s); break;
    case JR_ARR:
        json_arr_begin(j);
        for (size_t i = 0; i < v->n; i++)
            jr_write(j, &v->items[i]);
        json_arr_end(j);
        break;
    case JR_OBJ:
        json_obj_begin(j);
        for (size_t i = 0; i < v->n; i++) {
            json_key(j, v->keys[i]);
            jr_write(j, &v->items[i]);
        }
        json_obj_end(j);
        break;
    }
}

static void put_time_json(json_t *j, const hsnap_t *s)
{
    json_obj_begin(j);
    json_key(j, "time");
    if (s->time && s->time->kind == JR_NUM)
        json_raw(j, s->time->s);
    else
        json_null(j);
    json_obj_end(j);
}

static void put_time_txt(FILE *f, const hsnap_t *s)
{
    if (s->time && s->time->kind == JR_NUM)
        fprintf(f, " at %s s", s->time->s);
}

/* "leaf (file:line) <- caller (file:line) <- ..." up to 4 frames */
static void put_stack_line(FILE *f, const jr_t *frames)
{
    for (size_t i = 0; frames && i < frames->n && i < 4; i++) {
        const jr_t *fr = &frames->items[i];
        const char *fn = jr_str(jr_get(fr, "function")), *file = jr_str(jr_get(fr, "file"));
        const jr_t *ln = jr_get(fr, "line");
        const char *b = file ? strrchr(file, '/') : NULL;
        fprintf(f, "%s%s", i ? " <- " : "", fn ? fn : "?");
        if (file)
            fprintf(f, " (%s%s%s)", b ? b + 1 : file, ln && ln->kind == JR_NUM ? ":" : "",
                    ln && ln->kind == JR_NUM ? ln->s : "");
    }
    if (frames && frames->n > 4)
        fputs(" <- ...", f);
    if (!frames || !frames->n)
        fputs("[no frames]", f);
}

typedef struct drow {
    const hstack_t *a, *b; /* NULL when absent there */
    int64_t db, dobj;
} drow_t;

static uint64_t vb(const hstack_t *h) { return h ? h->bytes : 0; }
static uint64_t vo(const hstack_t *h) { return h ? h->objects : 0; }

static int cmp_drow(const void *pa, const void *pb)
{
    const drow_t *x = pa, *y = pb;
    if (x->db != y->db)
        return x->db > y->db ? -1 : 1;
    if (x->dobj != y->dobj)
        return x->dobj > y->dobj ? -1 : 1;
    return strcmp((x->b ? x->b : x->a)->key, (y->b ? y->b : y->a)->key);
}

static FILE *open_out(const char *outdir, const char *name, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", outdir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
    return f;
}

static int close_out(FILE *f, const char *path)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, PROG ": %s: write failed\n", path);
        return 1;
    }
    printf("%s\n", path);
    return 0;
}

static int write_diff(const hsnap_t *a, const hsnap_t *b, drow_t *r, size_t n, const char *outdir)
{
    char path[4200];
    FILE *f;
    json_t j;
    int rc = 0;

    if (!(f = open_out(outdir, "leakdiff.json", path, sizeof(path))))
        return 1;
    json_init(&j, f, 3);
    json_obj_begin(&j);
    json_key(&j, "a");
    put_time_json(&j, a);
    json_key(&j, "b");
    put_time_json(&j, b);
    json_key(&j, "stacks");
    json_arr_begin(&j);
    for (size_t i = 0; i < n; i++) {
        json_obj_begin(&j);
        json_key(&j, "bytes_a");
        json_u64(&j, vb(r[i].a));
        json_key(&j, "bytes_b");
        json_u64(&j, vb(r[i].b));
        json_key(&j, "bytes_delta");
        json_i64(&j, r[i].db);
        json_key(&j, "objects_a");
        json_u64(&j, vo(r[i].a));
        json_key(&j, "objects_b");
        json_u64(&j, vo(r[i].b));
        json_key(&j, "objects_delta");
        json_i64(&j, r[i].dobj);
        json_key(&j, "frames"); /* B's: its addresses are the latest */
        jr_write(&j, (r[i].b ? r[i].b : r[i].a)->frames);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_obj_end(&j);
    fputc('\n', f);
    rc |= close_out(f, path);

    if (!(f = open_out(outdir, "leakdiff.txt", path, sizeof(path))))
        return 1;
    size_t grew = 0, shrank = 0;
    for (size_t i = 0; i < n; i++)
        grew += r[i].db > 0, shrank += r[i].db < 0;
    fputs("perfagent leak diff: the live heap by stack, from A to B\n", f);
    fprintf(f, "A: %s", a->path);
    put_time_txt(f, a);
    fprintf(f, ": %" PRIu64 " bytes in %" PRIu64 " objects, %zu stacks\n", a->bytes, a->objects,
            a->n);
    fprintf(f, "B: %s", b->path);
    put_time_txt(f, b);
    fprintf(f, ": %" PRIu64 " bytes in %" PRIu64 " objects, %zu stacks\n", b->bytes, b->objects,
            b->n);
    fprintf(f, "change: %+" PRId64 " bytes, %+" PRId64 " objects; %zu stacks grew, %zu shrank\n",
            (int64_t)(b->bytes - a->bytes), (int64_t)(b->objects - a->objects), grew, shrank);
    fprintf(f, "\n%12s %10s %12s %12s  %s\n", "bytes_delta", "obj_delta", "bytes_a", "bytes_b",
            "stack (leaf first)");
    size_t shown = 0;
    for (size_t i = 0; i < n && shown < TOP_ROWS; i++) {
        if (!r[i].db && !r[i].dobj)
            continue;
        fprintf(f, "%+12" PRId64 " %+10" PRId64 " %12" PRIu64 " %12" PRIu64 "  ", r[i].db,
                r[i].dobj, vb(r[i].a), vb(r[i].b));
        put_stack_line(f, (r[i].b ? r[i].b : r[i].a)->frames);
        fputc('\n', f);
        shown++;
    }
    if (!shown)
        fputs("(no stack changed)\n", f);
    else if (grew + shrank > shown)
        fprintf(f, "(%zu more changed stacks in leakdiff.json)\n", grew + shrank - shown);
    rc |= close_out(f, path);

    /* the differential flame graph: sized by B, red grew, blue shrank */
    fg_line_t *la = calloc(a->n ? a->n : 1, sizeof(*la)), *lb = calloc(b->n ? b->n : 1, sizeof(*lb));
    size_t na = 0, nb = 0;
    char title[256];
    if (!la || !lb) {
        free(la);
        free(lb);
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].bytes)
            la[na++] = (fg_line_t){a->v[i].folded, a->v[i].bytes};
    for (size_t i = 0; i < b->n; i++)
        if (b->v[i].bytes)
            lb[nb++] = (fg_line_t){b->v[i].folded, b->v[i].bytes};
    snprintf(title, sizeof(title), "Live heap growth (red grew, blue shrank)");
    fg_input_t in = {.lines = lb, .n_lines = nb, .base = la, .n_base = na, .unit = "bytes",
                     .title = title};
    if ((f = open_out(outdir, "leakdiff.svg", path, sizeof(path)))) {
        if (flamegraph_write_svg(f, &in) < 0)
            fprintf(stderr, PROG ": %s: cannot draw\n", path), rc = 1;
        rc |= close_out(f, path);
    } else {
        rc = 1;
    }
    free(la);
    free(lb);
    return rc;
}

int leakdiff_run(const char *pa, const char *pb, const char *outdir)
{
    hsnap_t a, b;
    drow_t *r = NULL;
    size_t n = 0, i = 0, k = 0;
    int rc = 1;

    if (snap_load(&a, pa) || snap_load(&b, pb))
        goto out;
    if (!(r = calloc(a.n + b.n + 1, sizeof(*r)))) {
        fprintf(stderr, PROG ": out of memory\n");
        goto out;
    }
    /* both sorted by key: one merge walk joins them */
    while (i < a.n || k < b.n) {
        int c = i >= a.n ? 1 : k >= b.n ? -1 : strcmp(a.v[i].key, b.v[k].key);
        drow_t *d = &r[n++];
        d->a = c <= 0 ? &a.v[i++] : NULL;
        d->b = c >= 0 ? &b.v[k++] : NULL;
        d->db = (int64_t)(vb(d->b) - vb(d->a));
        d->dobj = (int64_t)(vo(d->b) - vo(d->a));
    }
    util_sort(r, n, sizeof(*r), cmp_drow);
    rc = write_diff(&a, &b, r, n, outdir);
out:
    free(r);
    snap_free(&a);
    snap_free(&b);
    return rc;
}

/* ---- suspects ------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The NNN subdirectories of dir, sorted (001, 002, ...). */
static int list_snapshots(const char *dir, char ***out, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **v = NULL, p[4200];
    size_t cap = 0;
    *n = 0;
    if (!d) {
        fprintf(stderr, PROG ": %s: %s\n", dir, strerror(errno));
        return 1;
    }
    while ((e = readdir(d))) {
        if (!e->d_name[0] || strspn(e->d_name, "0123456789") != strlen(e->d_name))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (!is_dir(p))
            continue;
        if (util_grow((void **)&v, &cap, *n + 1, sizeof(*v)) < 0 || !(v[*n] = strdup(p))) {
            closedir(d);
            fprintf(stderr, PROG ": out of memory\n");
            *out = v;
            return 1;
        }
        (*n)++;
    }
    closedir(d);
    util_sort(v, *n, sizeof(*v), cmp_str);
    *out = v;
    return 0;
}

typedef struct susp {
    size_t first; /* index of its first hstack_t in the joined array */
    int64_t growth;
} susp_t;

static int cmp_susp(const void *pa, const void *pb)
{
    const susp_t *x = pa, *y = pb;
    return x->growth != y->growth ? (x->growth > y->growth ? -1 : 1)
                                  : (x->first > y->first) - (x->first < y->first);
}

int leakdiff_suspects(char *const *paths, size_t np, const char *outdir)
{
    char **listed = NULL, path[4200];
    size_t nl = 0, nall = 0, ns = 0;
    hsnap_t *s = NULL;
    hstack_t *all = NULL;
    susp_t *sus = NULL;
    uint64_t *bytes = NULL, *objs = NULL;
    int rc = 1;

    if (np == 1) {
        if (list_snapshots(paths[0], &listed, &nl))
            goto out;
        paths = listed;
        np = nl;
    }
    if (np < 3) {
        fprintf(stderr, PROG ": --suspects needs 3 or more snapshots (found %zu)\n", np);
        goto out;
    }
    if (!(s = calloc(np, sizeof(*s))))
        goto oom;
    for (size_t i = 0; i < np; i++) {
        if (snap_load(&s[i], paths[i]))
            goto out;
        nall += s[i].n;
    }
    if (!(all = calloc(nall ? nall : 1, sizeof(*all))) ||
        !(sus = calloc(nall ? nall : 1, sizeof(*sus))) || !(bytes = calloc(np, sizeof(*bytes))) ||
        !(objs = calloc(np, sizeof(*objs))))
        goto oom;
    nall = 0;
    for (size_t i = 0; i < np; i++)
        for (size_t k = 0; k < s[i].n; k++) {
            all[nall] = s[i].v[k];
            all[nall++].snap = i;
        }
    util_sort(all, nall, sizeof(*all), cmp_key);
    /* a group = one stack across the snapshots (absent = 0 bytes) */
    for (size_t g = 0; g < nall;) {
        size_t e = g;
        while (e < nall && strcmp(all[e].key, all[g].key) == 0)
            e++;
        memset(bytes, 0, np * sizeof(*bytes));
        for (size_t k = g; k < e; k++)
            bytes[all[k].snap] = all[k].bytes;
        int every = 1;
        for (size_t i = 1; i < np && every; i++)
            every = bytes[i] > bytes[i - 1];
        if (every)
            sus[ns++] = (susp_t){.first = g, .growth = (int64_t)(bytes[np - 1] - bytes[0])};
        g = e;
    }
    util_sort(sus, ns, sizeof(*sus), cmp_susp);

    FILE *f = open_out(outdir, "suspects.json", path, sizeof(path));
    json_t j;
    if (!f)
        goto out;
    json_init(&j, f, 3);
    json_obj_begin(&j);
    json_key(&j, "snapshots");
    json_arr_begin(&j);
    for (size_t i = 0; i < np; i++) {
        json_obj_begin(&j);
        json_key(&j, "path");
        json_str(&j, s[i].path);
        json_key(&j, "time");
        if (s[i].time && s[i].time->kind == JR_NUM)
            json_raw(&j, s[i].time->s);
        else
            json_null(&j);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_key(&j, "stacks");
    json_arr_begin(&j);
    for (size_t q = 0; q < ns; q++) {
        const hstack_t *h = &all[sus[q].first];
        const jr_t *frames = NULL;
        memset(bytes, 0, np * sizeof(*bytes));
        memset(objs, 0, np * sizeof(*objs));
        for (const hstack_t *x = h; x < all + nall && strcmp(x->key, h->key) == 0; x++) {
            bytes[x->snap] = x->bytes;
            objs[x->snap] = x->objects;
            frames = x->frames; /* the latest snapshot's */
        }
        json_obj_begin(&j);
        json_key(&j, "growth_bytes");
        json_i64(&j, sus[q].growth);
        json_key(&j, "growth_objects");
        json_i64(&j, (int64_t)(objs[np - 1] - objs[0]));
        json_key(&j, "bytes");
        json_arr_begin(&j);
        for (size_t i = 0; i < np; i++)
            json_u64(&j, bytes[i]);
        json_arr_end(&j);
        json_key(&j, "objects");
        json_arr_begin(&j);
        for (size_t i = 0; i < np; i++)
            json_u64(&j, objs[i]);
        json_arr_end(&j);
        json_key(&j, "frames");
        jr_write(&j, frames);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_obj_end(&j);
    fputc('\n', f);
    if (close_out(f, path))
        goto out;

    if (!(f = open_out(outdir, "suspects.txt", path, sizeof(path))))
        goto out;
    fprintf(f, "perfagent leak suspects: stacks whose live bytes grew in every one of the %zu "
               "intervals between %zu snapshots\n", np - 1, np);
    for (size_t i = 0; i < np; i++) {
        fprintf(f, "  #%zu %s", i + 1, s[i].path);
        put_time_txt(f, &s[i]);
        fprintf(f, ": %" PRIu64 " bytes in %" PRIu64 " objects\n", s[i].bytes, s[i].objects);
    }
    fprintf(f, "\n%zu suspects, by growth from the first snapshot to the last\n", ns);
    if (ns)
        fprintf(f, "%4s %12s %10s  %s\n", "rank", "growth", "objects", "stack (leaf first)");
    for (size_t q = 0; q < ns; q++) {
        const hstack_t *h = &all[sus[q].first], *last = h;
        uint64_t o0 = h->snap == 0 ? h->objects : 0;
        for (const hstack_t *x = h; x < all + nall && strcmp(x->key, h->key) == 0; x++)
            last = x;
        fprintf(f, "%4zu %+12" PRId64 " %+10" PRId64 "  ", q + 1, sus[q].growth,
                (int64_t)(last->objects - o0));
        put_stack_line(f, last->frames);
        fputc('\n', f);
    }
    rc = close_out(f, path);
    goto out;
oom:
    fprintf(stderr, PROG ": out of memory\n");
out:
    /* `all` only borrows the snapshots' strings */
    for (size_t i = 0; s && i < np; i++)
        snap_free(&s[i]);
    free(s);
    free(all);
    free(sus);
    free(bytes);
    free(objs);
    for (size_t i = 0; i < nl; i++)
        free(listed[i]);
    free(listed);
    return rc;
}
