/*
 * suppress.c — see suppress.h.
 */
#include "suppress.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* One-time allocations of glibc, libstdc++ and the dynamic loader that stay
 * live until exit by design (heaptrack and valgrind suppress the same):
 *   - libstdc++'s emergency exception pool (eh_alloc.cc: the constructor of
 *     the static `pool`, freed only by __gnu_cxx::__freeres under valgrind);
 *   - the loader's per-thread TLS and dtv (_dl_allocate_tls, allocate_dtv,
 *     _dl_resize_dtv, _dl_update_slotinfo: kept for the thread's reuse);
 *   - stdio's buffers (_IO_file_doallocate): stdout's is never freed. */
static const struct {
    const char *pattern, *module;
} builtin[] = {
    {"(anonymous namespace)::pool::pool", NULL},
    {"__gnu_cxx::__freeres", NULL},
    /* the pool again, in a libstdc++ without symbols (Debian's): its own
     * frames only, under the loader's call of its constructors */
    {"^_dl_init$", "libstdc++.so"},
    {"_dl_allocate_tls", NULL},
    {"allocate_dtv", NULL},
    {"_dl_resize_dtv", NULL},
    {"_dl_update_slotinfo", NULL},
    {"_IO_file_doallocate", NULL},
};

static int add_rule(supp_t *s, const char *pat, size_t len, const char *origin,
                    const char *module)
{
    size_t cap = s->n; /* grown one by one: lists are short */
    supp_rule_t *v = realloc(s->v, (cap + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    s->v = v;
    if (!(v[s->n].pattern = strndup(pat, len)))
        return -ENOMEM;
    v[s->n].module = module;
    v[s->n++].origin = origin;
    return 0;
}

int suppress_add_builtins(supp_t *s)
{
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
        if (add_rule(s, builtin[i].pattern, strlen(builtin[i].pattern), "built-in",
                     builtin[i].module) < 0)
            return -ENOMEM;
    s->n_builtin = s->n;
    return 0;
}

int suppress_parse(supp_t *s, const char *text, const char *origin, char *err, size_t errlen)
{
    size_t first = s->n, lineno = 0;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *a = p, *z = p + len;
        lineno++;
        p = e ? e + 1 : p + len;
        while (a < z && (*a == ' ' || *a == '\t'))
            a++;
        while (z > a && (z[-1] == ' ' || z[-1] == '\t' || z[-1] == '\r'))
            z--;
        if (a == z || *a == '#')
            continue;
        if ((size_t)(z - a) <= 5 || strncmp(a, "leak:", 5) != 0) {
            snprintf(err, errlen, "line %zu: expected 'leak:PATTERN'", lineno);
            goto bad;
        }
        if (add_rule(s, a + 5, (size_t)(z - a - 5), origin, NULL) < 0) {
            snprintf(err, errlen, "out of memory");
            goto bad;
        }
    }
    return 0;
bad:
    /* all or nothing: a half-read file would suppress surprising things */
    while (s->n > first)
        free(s->v[--s->n].pattern);
    return -EINVAL;
}

void suppress_free(supp_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].pattern);
    free(s->v);
    free(s->file);
    memset(s, 0, sizeof(*s));
}

/* p (up to pe) matches s exactly from its start to its end; '*' = any run */
static int glob(const char *p, const char *pe, const char *s, const char *se)
{
    const char *star = NULL, *ss = NULL;
    while (s < se) {
        if (p < pe && *p == '*') {
            star = ++p;
            ss = s;
        } else if (p < pe && *p == *s) {
            p++;
            s++;
        } else if (star) {
            p = star;
            s = ++ss;
        } else {
            return 0;
        }
    }
    while (p < pe && *p == '*')
        p++;
    return p == pe;
}

int suppress_match(const char *pattern, const char *s)
{
    size_t pl = strlen(pattern);
    int anchor_start = pl && pattern[0] == '^';
    int anchor_end = pl > (size_t)anchor_start && pattern[pl - 1] == '$';
    size_t core = pl - (size_t)anchor_start - (size_t)anchor_end;
    char buf[512], *q = core + 3 <= sizeof(buf) ? buf : malloc(core + 3);
    size_t n = 0;
    if (!q)
        return 0;
    /* unanchored = a '*' before and after, so one glob decides */
    if (!anchor_start)
        q[n++] = '*';
    memcpy(q + n, pattern + anchor_start, core);
    n += core;
    if (!anchor_end)
        q[n++] = '*';
    int m = glob(q, q + n, s, s + strlen(s));
    if (q != buf)
        free(q);
    return m;
}

/* The frames from the leaf are in `module` up to one whose function
 * matches the pattern (at least one frame in the module). */
static int module_rule(const supp_rule_t *u, const resolver_t *r)
{
    size_t k = 0;
    for (; k < r->n && r->v[k].module && strstr(r->v[k].module, u->module); k++)
        ;
    for (; k > 0 && k < r->n; k++) { /* the loader's frames up to the pattern */
        if (r->v[k].function && suppress_match(u->pattern, r->v[k].function))
            return 1;
        if (!r->v[k].module || !strstr(r->v[k].module, "ld-linux"))
            return 0;
    }
    return 0;
}

size_t suppress_stack(const supp_t *s, const resolver_t *r)
{
    for (size_t i = 0; s && i < s->n; i++) {
        if (s->v[i].module) {
            if (module_rule(&s->v[i], r))
                return i + 1;
            continue;
        }
        for (size_t k = 0; k < r->n; k++) {
            const rframe_t *f = &r->v[k];
            if ((f->function && suppress_match(s->v[i].pattern, f->function)) ||
                (f->file && suppress_match(s->v[i].pattern, f->file)) ||
                (f->module && suppress_match(s->v[i].pattern, f->module)))
                return i + 1;
        }
    }
    return 0;
}

static supp_t g_rules;
static int g_loaded, g_disabled;

void suppress_disable(void)
{
    g_disabled = 1;
}

const supp_t *suppress_rules(void)
{
    char err[256];
    if (g_disabled)
        return NULL;
    if (g_loaded)
        return &g_rules;
    if (suppress_add_builtins(&g_rules) < 0)
        return NULL;
    g_loaded = 1;
    const char *path = getenv("PERFAGENT_SUPPRESSIONS");
    if (!path || !*path)
        return &g_rules;
    char *text = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        char shown[160];
        fprintf(stderr, "perfagent: PERFAGENT_SUPPRESSIONS=%s: %s; using the built-in "
                        "suppressions only\n", util_env_show(path, shown, sizeof(shown)),
                strerror(errno));
        return &g_rules;
    }
    FILE *m = open_memstream(&text, &len);
    char buf[4096];
    size_t n;
    while (m && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, m);
    int rerr = ferror(f);
    fclose(f);
    if (!m || fclose(m) != 0 || rerr) {
        char shown[160];
        fprintf(stderr, "perfagent: PERFAGENT_SUPPRESSIONS=%s: cannot read it; using the "
                        "built-in suppressions only\n", util_env_show(path, shown, sizeof(shown)));
        free(text);
        return &g_rules;
    }
    g_rules.file = strdup(path);
    if (memchr(text, 0, len) ||
        suppress_parse(&g_rules, text, g_rules.file ? g_rules.file : "file", err, sizeof(err)) < 0)
        fprintf(stderr, "perfagent: PERFAGENT_SUPPRESSIONS=%s: %s; using the built-in "
                        "suppressions only\n", path, memchr(text, 0, len) ? "not text" : err);
    free(text);
    return &g_rules;
}
