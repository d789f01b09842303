/*
 * diff.c — see diff.h.
 */
#include "diff.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "leakdiff.h"
#include "util.h"

#define PROG "perfagent diff"

/* ---- the function table ------------------------------------------------------ */

static uint32_t name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static int rehash(diff_table_t *t, size_t n_slots)
{
    uint32_t *s = calloc(n_slots, sizeof(*s));
    if (!s)
        return -ENOMEM;
    for (size_t i = 0; i < t->n; i++) {
        size_t k = name_hash(t->v[i].name, t->v[i].len) & (n_slots - 1);
        while (s[k])
            k = (k + 1) & (n_slots - 1);
        s[k] = (uint32_t)(i + 1);
    }
    free(t->slots);
    t->slots = s;
    t->n_slots = n_slots;
    return 0;
}

/* The entry of name, added when new; NULL when out of memory. */
static diff_fn_t *lookup(diff_table_t *t, const char *name, size_t len)
{
    size_t k;
    if ((t->n + 1) * 2 > t->n_slots && rehash(t, t->n_slots ? t->n_slots * 2 : 1024) < 0)
        return NULL;
    k = name_hash(name, len) & (t->n_slots - 1);
    for (; t->slots[k]; k = (k + 1) & (t->n_slots - 1)) {
        diff_fn_t *e = &t->v[t->slots[k] - 1];
        if (e->len == len && memcmp(e->name, name, len) == 0)
            return e;
    }
    if (t->n >= UINT32_MAX - 1 ||
        util_grow((void **)&t->v, &t->cap, t->n + 1, sizeof(*t->v)) < 0)
        return NULL;
    t->v[t->n] = (diff_fn_t){.name = name, .len = len};
    t->slots[k] = (uint32_t)++t->n;
    return &t->v[t->n - 1];
}

static int add_profile(diff_table_t *t, const fg_folded_t *p, int is_b)
{
    for (size_t i = 0; i < p->n; i++) {
        const char *s = p->lines[i].stack, *e;
        uint64_t v = p->lines[i].value;
        /* stamps are unique per (profile, line): recursion counts once */
        uint32_t stamp = (uint32_t)(i * 2 + (size_t)is_b + 1);
        diff_fn_t *fn = NULL;
        for (;; s = e + 1) {
            e = strchr(s, ';');
            if (!(fn = lookup(t, s, e ? (size_t)(e - s) : strlen(s))))
                return -ENOMEM;
            if (fn->stamp != stamp) {
                fn->stamp = stamp;
                *(is_b ? &fn->b_total : &fn->a_total) += v;
            }
            if (!e)
                break;
        }
        *(is_b ? &fn->b_self : &fn->a_self) += v; /* the leaf */
    }
    return 0;
}

int diff_table_build(diff_table_t *t, const fg_folded_t *a, const fg_folded_t *b)
{
    int rc;
    memset(t, 0, sizeof(*t));
    t->a_total = a->total;
    t->b_total = b->total;
    if ((rc = add_profile(t, a, 0)) < 0 || (rc = add_profile(t, b, 1)) < 0)
        diff_table_free(t);
    return rc;
}

void diff_table_free(diff_table_t *t)
{
    free(t->v);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

double diff_share(uint64_t v, uint64_t total)
{
    return total ? (double)v * 100.0 / (double)total : 0.0;
}

/* ---- diff.txt ---------------------------------------------------------------- */

typedef struct row {
    const diff_fn_t *fn;
    double a, b, d;
} row_t;

static int row_cmp(const void *pa, const void *pb)
{
    const row_t *x = pa, *y = pb;
    double ax = fabs(x->d), ay = fabs(y->d);
    size_t m = x->fn->len < y->fn->len ? x->fn->len : y->fn->len;
    int c;
    if (ax != ay)
        return ax > ay ? -1 : 1;
    if ((c = memcmp(x->fn->name, y->fn->name, m)))
        return c;
    return x->fn->len < y->fn->len ? -1 : x->fn->len > y->fn->len;
}

/* Whether a/ta == b/tb exactly (shares compared without rounding). */
static int same_share(uint64_t a, uint64_t ta, uint64_t b, uint64_t tb)
{
    if (!ta || !tb)
        return (ta ? a : 0) == 0 && (tb ? b : 0) == 0;
    return (unsigned __int128)a * tb == (unsigned __int128)b * ta;
}

static void put_table(FILE *f, const diff_table_t *t, row_t *rows, int self, size_t top)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) {
        const diff_fn_t *fn = &t->v[i];
        uint64_t a = self ? fn->a_self : fn->a_total, b = self ? fn->b_self : fn->b_total;
        if (same_share(a, t->a_total, b, t->b_total))
            continue;
        rows[n].fn = fn;
        rows[n].a = diff_share(a, t->a_total);
        rows[n].b = diff_share(b, t->b_total);
        rows[n].d = rows[n].b - rows[n].a;
        n++;
    }
    util_sort(rows, n, sizeof(*rows), row_cmp);
    fprintf(f, "\nby %s share (%s), largest changes first:\n", self ? "self" : "total",
            self ? "the function at the top of the stack"
                 : "the function anywhere on the stack, once per stack");
    fprintf(f, "%8s %8s %8s  %s\n", "A%", "B%", "delta", "function");
    for (size_t i = 0; i < n && i < top; i++)
        fprintf(f, "%8.2f %8.2f %+8.2f  %.*s\n", rows[i].a, rows[i].b, rows[i].d,
                (int)rows[i].fn->len, rows[i].fn->name);
    if (!n)
        fputs("(no function's share changed)\n", f);
    else if (n > top)
        fprintf(f, "(%zu more functions changed)\n", n - top);
}

int diff_write_txt(FILE *f, const diff_table_t *t, const char *name_a, const char *name_b,
                   const char *unit, size_t top)
{
    row_t *rows = malloc((t->n ? t->n : 1) * sizeof(*rows));
    if (!rows)
        return -ENOMEM;
    fprintf(f, "perfagent diff: how each function's share of the profile changed from A to B\n");
    fprintf(f, "A: %s (%" PRIu64 " %s)\nB: %s (%" PRIu64 " %s)\n", name_a, t->a_total, unit,
            name_b, t->b_total, unit);
    fprintf(f, "share: the function's %s / the profile's total, in %%; delta: B%% - A%%, "
               "in points\n", unit);
    put_table(f, t, rows, 0, top);
    put_table(f, t, rows, 1, top);
    free(rows);
    return ferror(f) ? -EIO : 0;
}

/* ---- the subcommand ---------------------------------------------------------- */

const char *fg_unit_for(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    return !strcmp(b, "alloc.folded") || !strcmp(b, "inuse.folded") ? "bytes" : "samples";
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int has_file(const char *dir, const char *name)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Diffs one pair of folded files into DIR/STEM.svg and DIR/STEM.txt. */
static int diff_pair(const diff_opts_t *o, const char *pa, const char *pb, const char *stem,
                     const char *unit)
{
    fg_folded_t a = {0}, b = {0};
    diff_table_t t = {0};
    char err[FG_ERR_LEN], path[4096], title[1024];
    FILE *f = NULL;
    int rc = 1;

    if (fg_folded_read(&a, pa, err) < 0 || fg_folded_read(&b, pb, err) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        goto out;
    }
    if (diff_table_build(&t, &a, &b) < 0) {
        fprintf(stderr, PROG ": out of memory\n");
        goto out;
    }
    snprintf(title, sizeof(title), "%s -> %s", pa, pb);
    fg_input_t in = {.lines = b.lines, .n_lines = b.n, .base = a.lines, .n_base = a.n,
                     .normalize = o->normalize, .unit = unit,
                     .title = o->title ? o->title : title};

    snprintf(path, sizeof(path), "%s/%s.svg", o->outdir, stem);
    errno = 0;
    if (!(f = fopen(path, "w")) || flamegraph_write_svg(f, &in) < 0 || fclose(f) != 0) {
        fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno ? errno : EIO));
        f = NULL;
        goto out;
    }
    printf("%s\n", path);
    snprintf(path, sizeof(path), "%s/%s.txt", o->outdir, stem);
    errno = 0;
    if (!(f = fopen(path, "w")) || diff_write_txt(f, &t, pa, pb, unit, 30) < 0 ||
        fclose(f) != 0) {
        fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno ? errno : EIO));
        f = NULL;
        goto out;
    }
    f = NULL;
    printf("%s\n", path);
    rc = 0;
out:
    if (f)
        fclose(f);
    diff_table_free(&t);
    fg_folded_free(&a);
    fg_folded_free(&b);
    return rc;
}

int diff_run(const diff_opts_t *o)
{
    int da = o->a && is_dir(o->a), db = o->b && is_dir(o->b), rc = 0, done = 0;
    char pa[4096], pb[4096];

    if (o->suspects) {
        if (mkdir(o->outdir, 0777) < 0 && errno != EEXIST) {
            fprintf(stderr, PROG ": %s: %s\n", o->outdir, strerror(errno));
            return 1;
        }
        return leakdiff_suspects(o->paths, o->n_paths, o->outdir);
    }
    int heap = leakdiff_is_heap(o->a) && leakdiff_is_heap(o->b);
    if (heap && !(da && db)) {
        /* heap.json / leaks.json files (or one of them a directory) */
        if (mkdir(o->outdir, 0777) < 0 && errno != EEXIST) {
            fprintf(stderr, PROG ": %s: %s\n", o->outdir, strerror(errno));
            return 1;
        }
        return leakdiff_run(o->a, o->b, o->outdir);
    }
    if (da != db) {
        fprintf(stderr, PROG ": %s and %s: give two folded files or two report directories\n",
                o->a, o->b);
        return 1;
    }
    if (mkdir(o->outdir, 0777) < 0 && errno != EEXIST) {
        fprintf(stderr, PROG ": %s: %s\n", o->outdir, strerror(errno));
        return 1;
    }
    if (!da)
        return diff_pair(o, o->a, o->b, "diff", o->unit ? o->unit : fg_unit_for(o->b));
    /* Report directories: the CPU profile when both have one; otherwise the
     * heap: what is still allocated (the leak diff) as diff.*, and every
     * allocation as alloc-diff.*. */
    static const struct {
        const char *file, *stem, *unit;
    } kinds[] = {{"cpu.folded", "diff", "samples"},
                 {"inuse.folded", "diff", "bytes"},
                 {"alloc.folded", "alloc-diff", "bytes"}};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (!has_file(o->a, kinds[i].file) || !has_file(o->b, kinds[i].file))
            continue;
        snprintf(pa, sizeof(pa), "%s/%s", o->a, kinds[i].file);
        snprintf(pb, sizeof(pb), "%s/%s", o->b, kinds[i].file);
        rc |= diff_pair(o, pa, pb, kinds[i].stem, o->unit ? o->unit : kinds[i].unit);
        done++;
        if (i == 0)
            break; /* a CPU profile is the diff */
    }
    /* Heap snapshots or report directories with leaks.json: the live heap
     * by stack as well (leakdiff.*), matched by frames. */
    if (heap) {
        rc |= leakdiff_run(o->a, o->b, o->outdir);
        done++;
    }
    if (!done) {
        fprintf(stderr,
                PROG ": %s and %s: no cpu.folded, inuse.folded or alloc.folded in both "
                     "(give a process's report directory, DIR/<pid>)\n",
                o->a, o->b);
        return 1;
    }
    return rc;
}
