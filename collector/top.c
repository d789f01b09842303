/*
 * top — self/cumulative table of folded stacks (see top.h), and the
 * `perfagent top` command that reads a report directory's folded file.
 *
 * Functions are interned in an open-addressing hash table keyed by the
 * frame's bytes.  Each function remembers the last stack that counted it
 * (a stamp), which is how a recursive function adds its stack's value to
 * cum once however often it appears in that stack.
 */
#include "top.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#include "util.h"

typedef struct fn {
    char *name;
    size_t len;
    uint64_t hash;
    uint64_t self, cum;
    uint64_t stamp; /* the stack that last added to cum (stacks count from 1) */
} fn_t;

struct top {
    fn_t *fn;
    size_t n_fn, cap_fn;
    uint32_t *slot; /* fn index + 1; 0 = empty; n_slot is a power of two */
    size_t n_slot;
    uint64_t total;
    uint64_t n_stacks;
    top_row_t *rows; /* the last top_rows() answer */
};

top_t *top_new(void)
{
    return calloc(1, sizeof(top_t));
}

void top_free(top_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_fn; i++)
        free(t->fn[i].name);
    free(t->fn);
    free(t->slot);
    free(t->rows);
    free(t);
}

uint64_t top_total(const top_t *t)
{
    return t->total;
}

size_t top_stacks(const top_t *t)
{
    return (size_t)t->n_stacks;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

/* Keeps the table at most half full: probes stay short. */
static int rehash(top_t *t)
{
    size_t ns = t->n_slot ? t->n_slot * 2 : 256;
    uint32_t *s = calloc(ns, sizeof(*s));
    if (!s)
        return -ENOMEM;
    for (size_t i = 0; i < t->n_fn; i++) {
        size_t k = t->fn[i].hash & (ns - 1);
        while (s[k])
            k = (k + 1) & (ns - 1);
        s[k] = (uint32_t)(i + 1);
    }
    free(t->slot);
    t->slot = s;
    t->n_slot = ns;
    return 0;
}

/* The function named by the n bytes at s, created with zeros if new. */
static fn_t *intern(top_t *t, const char *s, size_t n)
{
    uint64_t h = hash_bytes(s, n);
    size_t k;

    if ((t->n_fn + 1) * 2 > t->n_slot) {
        if (t->n_fn >= UINT32_MAX - 1 || rehash(t) < 0)
            return NULL;
    }
    for (k = h & (t->n_slot - 1); t->slot[k]; k = (k + 1) & (t->n_slot - 1)) {
        fn_t *f = &t->fn[t->slot[k] - 1];
        if (f->hash == h && f->len == n && memcmp(f->name, s, n) == 0)
            return f;
    }
    if (util_grow((void **)&t->fn, &t->cap_fn, t->n_fn + 1, sizeof(*t->fn)) < 0)
        return NULL;
    fn_t *f = &t->fn[t->n_fn];
    if (!(f->name = malloc(n + 1)))
        return NULL;
    memcpy(f->name, s, n);
    f->name[n] = '\0';
    f->len = n;
    f->hash = h;
    t->slot[k] = (uint32_t)(++t->n_fn);
    return f;
}

int top_add(top_t *t, const char *stack, size_t len, uint64_t value)
{
    const char *end = stack + len, *p, *q;
    uint64_t total;

    /* Check the whole line first, so a bad one adds nothing. */
    if (len == 0)
        return -EINVAL;
    for (p = stack;; p = q + 1) {
        q = memchr(p, ';', (size_t)(end - p));
        if (!q)
            q = end;
        if (q == p)
            return -EINVAL;
        if (q == end)
            break;
    }
    if (value == 0)
        return 0;
    /* No function's self or cum can exceed the total: checking it is enough. */
    if (__builtin_add_overflow(t->total, value, &total))
        return -EOVERFLOW;

    t->n_stacks++;
    for (p = stack;; p = q + 1) {
        q = memchr(p, ';', (size_t)(end - p));
        if (!q)
            q = end;
        fn_t *f = intern(t, p, (size_t)(q - p));
        if (!f)
            return -ENOMEM;
        if (f->stamp != t->n_stacks) {
            f->stamp = t->n_stacks;
            f->cum += value;
        }
        if (q == end) {
            f->self += value;
            break;
        }
    }
    t->total = total;
    return 0;
}

static int cmp_self(const void *a, const void *b)
{
    const top_row_t *x = a, *y = b;
    if (x->self != y->self)
        return x->self > y->self ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_cum(const void *a, const void *b)
{
    const top_row_t *x = a, *y = b;
    if (x->cum != y->cum)
        return x->cum > y->cum ? -1 : 1;
    return strcmp(x->name, y->name);
}

size_t top_rows(top_t *t, top_sort_t sort, const top_row_t **rows)
{
    free(t->rows);
    t->rows = NULL;
    *rows = NULL;
    if (!t->n_fn)
        return 0;
    if (!(t->rows = malloc(t->n_fn * sizeof(*t->rows))))
        return 0;
    for (size_t i = 0; i < t->n_fn; i++)
        t->rows[i] = (top_row_t){t->fn[i].name, t->fn[i].self, t->fn[i].cum};
    util_sort(t->rows, t->n_fn, sizeof(*t->rows), sort == TOP_SORT_CUM ? cmp_cum : cmp_self);
    *rows = t->rows;
    return t->n_fn;
}

/* ---- formatting -------------------------------------------------------------- */

/* x of total as "12.34" (rounded half up from the integers; total > 0). */
static void fmt_pct(char *buf, size_t n, uint64_t x, uint64_t total)
{
    unsigned __int128 h = ((unsigned __int128)x * 10000 + total / 2) / total;
    snprintf(buf, n, "%llu.%02llu", (unsigned long long)(h / 100), (unsigned long long)(h % 100));
}

static int is_bytes(const top_opts_t *o)
{
    return o->unit && strcmp(o->unit, "bytes") == 0;
}

/* v in the table's unit: "1.50 KiB" for human-readable bytes (binary
 * prefixes, two decimals rounded half up), else the integer. */
static void fmt_value(char *buf, size_t n, uint64_t v, const top_opts_t *o)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    uint64_t d = 1024;
    size_t k = 0;

    if (!is_bytes(o) || o->raw) {
        snprintf(buf, n, "%llu", (unsigned long long)v);
        return;
    }
    if (v < 1024) {
        snprintf(buf, n, "%llu B", (unsigned long long)v);
        return;
    }
    while (k + 1 < sizeof(units) / sizeof(units[0]) && v / d >= 1024) {
        d *= 1024;
        k++;
    }
    unsigned __int128 h = ((unsigned __int128)v * 100 + d / 2) / d;
    snprintf(buf, n, "%llu.%02llu %s", (unsigned long long)(h / 100),
             (unsigned long long)(h % 100), units[k]);
}

/* Frame text comes from a file: a control byte must not break the table. */
static void put_name(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
}

int top_print(FILE *f, top_t *t, const top_opts_t *o)
{
    const char *unit = o->unit ? o->unit : "samples";
    const top_row_t *rows;
    size_t n = top_rows(t, o->sort, &rows), shown, w_self = 4, w_cum = 3;
    char a[64], b[64], c[16], d[16], e[16];
    uint64_t sum = 0;

    if (n < t->n_fn)
        return -ENOMEM;
    shown = o->limit && o->limit < n ? o->limit : n;
    fmt_value(a, sizeof(a), t->total, o);
    if (is_bytes(o) && !o->raw && t->total >= 1024)
        fprintf(f, "total %s (%llu bytes)", a, (unsigned long long)t->total);
    else
        fprintf(f, "total %llu %s", (unsigned long long)t->total, unit);
    fprintf(f, " in %llu stacks, %zu functions\n", (unsigned long long)t->n_stacks, n);
    fprintf(f, "showing %zu of %zu functions, by %s\n", shown, n,
            o->sort == TOP_SORT_CUM ? "cum" : "self");
    /* Columns as wide as their widest shown value. */
    for (size_t i = 0; i < shown; i++) {
        fmt_value(a, sizeof(a), rows[i].self, o);
        fmt_value(b, sizeof(b), rows[i].cum, o);
        w_self = strlen(a) > w_self ? strlen(a) : w_self;
        w_cum = strlen(b) > w_cum ? strlen(b) : w_cum;
    }
    fprintf(f, "%*s %7s %7s %*s %7s  function\n", (int)w_self, "self", "self%", "sum%", (int)w_cum,
            "cum", "cum%");
    if (!shown)
        fputs("no samples\n", f);
    for (size_t i = 0; i < shown; i++) {
        sum += rows[i].self;
        fmt_value(a, sizeof(a), rows[i].self, o);
        fmt_value(b, sizeof(b), rows[i].cum, o);
        fmt_pct(c, sizeof(c), rows[i].self, t->total);
        fmt_pct(d, sizeof(d), sum, t->total);
        fmt_pct(e, sizeof(e), rows[i].cum, t->total);
        fprintf(f, "%*s %6s%% %6s%% %*s %6s%%  ", (int)w_self, a, c, d, (int)w_cum, b, e);
        put_name(f, rows[i].name);
        fputc('\n', f);
    }
    return ferror(f) ? -EIO : 0;
}

int top_print_json(FILE *f, top_t *t, const top_opts_t *o, const char *file, const char *kind)
{
    const top_row_t *rows;
    size_t n = top_rows(t, o->sort, &rows), shown;
    uint64_t sum = 0;
    char p[32];
    json_t j;

    if (n < t->n_fn)
        return -ENOMEM;
    shown = o->limit && o->limit < n ? o->limit : n;
    json_init(&j, f, 2);
    json_obj_begin(&j);
    json_key(&j, "file");
    json_str(&j, file);
    json_key(&j, "kind");
    json_str(&j, kind);
    json_key(&j, "unit");
    json_str(&j, o->unit ? o->unit : "samples");
    json_key(&j, "total");
    json_u64(&j, t->total);
    json_key(&j, "stacks");
    json_u64(&j, t->n_stacks);
    json_key(&j, "functions");
    json_u64(&j, n);
    json_key(&j, "sort");
    json_str(&j, o->sort == TOP_SORT_CUM ? "cum" : "self");
    json_key(&j, "rows");
    json_arr_begin(&j);
    for (size_t i = 0; i < shown; i++) {
        sum += rows[i].self;
        json_obj_begin(&j);
        json_key(&j, "function");
        json_str(&j, rows[i].name);
        json_key(&j, "self");
        json_u64(&j, rows[i].self);
        json_key(&j, "self_pct");
        fmt_pct(p, sizeof(p), rows[i].self, t->total);
        json_raw(&j, p);
        json_key(&j, "sum_pct");
        fmt_pct(p, sizeof(p), sum, t->total);
        json_raw(&j, p);
        json_key(&j, "cum");
        json_u64(&j, rows[i].cum);
        json_key(&j, "cum_pct");
        fmt_pct(p, sizeof(p), rows[i].cum, t->total);
        json_raw(&j, p);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_obj_end(&j);
    return ferror(f) ? -EIO : 0;
}

int top_write(FILE *f, const top_input_t *folded, size_t n_rows, const char *unit, size_t limit)
{
    top_opts_t o = {.unit = unit, .limit = limit, .sort = TOP_SORT_SELF};
    top_t *t = top_new();
    int rc = 0;

    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < n_rows && rc == 0; i++)
        rc = top_add(t, folded[i].stack, strlen(folded[i].stack), folded[i].value);
    if (rc == 0)
        rc = top_print(f, t, &o);
    top_free(t);
    return rc;
}

/* ---------------------------------------------------------------------------
 * perfagent top
 * ------------------------------------------------------------------------- */

#define PROG "perfagent top"

static const char top_usage[] =
    "usage: perfagent top [--kind cpu|alloc|inuse] [-n N] [--sort self|cum] [--raw] [--json]\n"
    "                     DIR|FILE\n"
    "\n"
    "Self and cumulative value by function, largest first, from a folded-stacks file\n"
    "(root first, 'f1;f2;...;leaf COUNT').  DIR is a process's report directory, or\n"
    "a reports directory holding exactly one process; its cpu.folded is read if\n"
    "present and not empty, else alloc.folded.  A function is the whole text of a\n"
    "frame.\n"
    "  --kind K       read DIR/K.folded; for a FILE, K sets the unit (cpu: samples,\n"
    "                 alloc and inuse: bytes; default from the file's name)\n"
    "  -n, --limit N  rows shown (default 20, 0 = all)\n"
    "  --sort S       self (default) or cum\n"
    "  --raw          bytes as exact integers, not KiB/MiB\n"
    "  --json         the rows as JSON (exact integers)\n";

static int top_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see perfagent top --help)\n");
    return 2;
}

static const char *const kinds[] = {"cpu", "alloc", "inuse"};

/* 1 for a file that is not a directory; 2 if it is also not empty. */
static int file_exists(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0 || S_ISDIR(st.st_mode))
        return 0;
    return st.st_size > 0 ? 2 : 1;
}

/* Does dir hold any of the folded files? */
static int is_proc_dir(const char *dir)
{
    char p[PATH_MAX];
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s.folded", dir, kinds[i]);
        if (file_exists(p))
            return 1;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* DIR is a process directory, or an output directory (index.json and one
 * subdirectory per process): the one process directory under it goes into
 * out.  A choice among several would be a guess, so that is an error. */
static int find_proc_dir(const char *dir, char *out, size_t n)
{
    char p[PATH_MAX], **names = NULL;
    size_t nn = 0, cap = 0;
    struct dirent *de;
    DIR *d;
    int rc = 1;

    if (is_proc_dir(dir)) {
        snprintf(out, n, "%s", dir);
        return 0;
    }
    if (!(d = opendir(dir))) {
        fprintf(stderr, PROG ": %s: %s\n", dir, strerror(errno));
        return 1;
    }
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        if (!is_proc_dir(p))
            continue;
        if (util_grow((void **)&names, &cap, nn + 1, sizeof(*names)) < 0 ||
            !(names[nn] = strdup(de->d_name))) {
            fprintf(stderr, PROG ": out of memory\n");
            goto out;
        }
        nn++;
    }
    if (nn == 0) {
        fprintf(stderr, PROG ": %s: no cpu.folded, alloc.folded or inuse.folded in it or in a "
                        "process directory under it\n", dir);
        goto out;
    }
    util_sort(names, nn, sizeof(*names), cmp_str);
    if (nn > 1) {
        fprintf(stderr, PROG ": %s holds %zu processes (%s, %s%s): name one, e.g. %s/%s\n", dir,
                nn, names[0], names[1], nn > 2 ? ", ..." : "", dir, names[0]);
        goto out;
    }
    snprintf(out, n, "%s/%s", dir, names[0]);
    rc = 0;
out:
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

/* The kind a file's name says ("alloc.folded" -> alloc), NULL if none. */
static const char *kind_of_name(const char *path)
{
    const char *base = strrchr(path, '/');
    char want[32];
    base = base ? base + 1 : path;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        snprintf(want, sizeof(want), "%s.folded", kinds[i]);
        if (strcmp(base, want) == 0)
            return kinds[i];
    }
    return NULL;
}

/* Reads the folded file into t.  0, or 1 after one line on stderr. */
static int read_folded(top_t *t, const char *path)
{
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    int rc = 1;

    if (!f) {
        fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
        return 1;
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        const char *why = NULL, *sp;
        char *cnt, *endp;
        unsigned long long v;
        int e;

        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (len == 0)
            continue; /* a blank line holds no stack */
        if (strlen(line) != (size_t)len)
            why = "NUL byte in the line";
        else if (!(sp = strrchr(line, ' ')))
            why = "expected 'STACK COUNT'";
        else if (sp == line)
            why = "no stack before the count";
        if (why) {
            fprintf(stderr, PROG ": %s:%zu: %s\n", path, lineno, why);
            goto out;
        }
        cnt = (char *)sp + 1;
        errno = 0;
        v = strtoull(cnt, &endp, 10);
        if (!*cnt || *endp || cnt[strspn(cnt, "0123456789")] || errno == ERANGE) {
            fprintf(stderr, PROG ": %s:%zu: count '%.40s' is not a whole number below 2^64\n",
                    path, lineno, cnt);
            goto out;
        }
        e = top_add(t, line, (size_t)(sp - line), v);
        if (e == -EINVAL)
            why = "empty frame (';;', or ';' at an end of the stack)";
        else if (e == -EOVERFLOW)
            why = "the counts add up past 2^64-1";
        else if (e < 0)
            why = strerror(-e);
        if (why) {
            fprintf(stderr, PROG ": %s:%zu: %s\n", path, lineno, why);
            goto out;
        }
    }
    if (ferror(f)) {
        fprintf(stderr, PROG ": %s: read: %s\n", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(line);
    fclose(f);
    return rc;
}

int top_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"kind", required_argument, NULL, 'k'}, {"limit", required_argument, NULL, 'n'},
        {"sort", required_argument, NULL, 's'}, {"raw", no_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},       {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    top_opts_t o = {.limit = 20, .sort = TOP_SORT_SELF};
    const char *kind = NULL, *arg;
    char dir[PATH_MAX], path[PATH_MAX + 16];
    int c, json = 0, rc = 1;
    struct stat st;
    top_t *t = NULL;

    optind = 0; /* glibc: start over, so top_main can run more than once */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k':
            kind = NULL;
            for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
                if (strcmp(optarg, kinds[i]) == 0)
                    kind = kinds[i];
            if (!kind)
                return top_usage_error("--kind '%s': expected cpu, alloc or inuse", optarg);
            break;
        case 'n':
            if (!*optarg || strspn(optarg, "0123456789") != strlen(optarg) || strlen(optarg) > 9)
                return top_usage_error("-n '%s': expected a whole number (0 = all)", optarg);
            o.limit = (size_t)strtoul(optarg, NULL, 10);
            break;
        case 's':
            if (strcmp(optarg, "self") == 0)
                o.sort = TOP_SORT_SELF;
            else if (strcmp(optarg, "cum") == 0)
                o.sort = TOP_SORT_CUM;
            else
                return top_usage_error("--sort '%s': expected self or cum", optarg);
            break;
        case 'r':
            o.raw = 1;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            fputs(top_usage, stdout);
            return 0;
        case ':':
            return top_usage_error("option '%s' needs an argument", argv[optind - 1]);
        default: {
            char opt[3] = {'-', (char)optopt, '\0'};
            return top_usage_error("unknown option '%s'", optopt ? opt : argv[optind - 1]);
        }
        }
    }
    if (optind >= argc)
        return top_usage_error("%sneeds a DIR or FILE", "");
    if (argc - optind > 1)
        return top_usage_error("one DIR or FILE, not also '%s'", argv[optind + 1]);
    arg = argv[optind];

    if (stat(arg, &st) < 0) {
        fprintf(stderr, PROG ": %s: %s\n", arg, strerror(errno));
        return 1;
    }
    if (S_ISDIR(st.st_mode)) {
        if (find_proc_dir(arg, dir, sizeof(dir)))
            return 1;
        if (!kind) {
            snprintf(path, sizeof(path), "%s/cpu.folded", dir);
            /* An empty cpu.folded (profiling off, or no sample taken)
             * would be a table of nothing where the heap has a story. */
            kind = file_exists(path) == 2 ? "cpu" : "alloc";
        }
        snprintf(path, sizeof(path), "%s/%s.folded", dir, kind);
    } else {
        snprintf(path, sizeof(path), "%s", arg);
        if (!kind)
            kind = kind_of_name(arg);
    }
    o.unit = kind && strcmp(kind, "cpu") != 0 ? "bytes" : "samples";

    if (!(t = top_new())) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    if (read_folded(t, path))
        goto out;
    if (json) {
        c = top_print_json(stdout, t, &o, path, kind);
    } else {
        printf("file: %s\n", path);
        c = top_print(stdout, t, &o);
    }
    if (c == -ENOMEM) {
        fprintf(stderr, PROG ": out of memory\n");
        goto out;
    }
    if (fflush(stdout) != 0 || c < 0) {
        fprintf(stderr, PROG ": writing the table: %s\n", strerror(errno ? errno : EIO));
        goto out;
    }
    rc = 0;
out:
    top_free(t);
    return rc;
}
