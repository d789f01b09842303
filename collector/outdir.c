/*
 * outdir — finishes sessions into a reports directory and keeps its
 * index.json.  The one place that decides directory names and the index
 * format (see outdir.h), so the live collector and `perfagent report` agree
 * byte for byte.
 */
#include "outdir.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "util.h"

struct outdir {
    char *path;
    outdir_entry_t **v; /* arrival order; each entry its own allocation so
                         * pointers handed out stay valid */
    size_t n, cap;
    unsigned unknown; /* streams without a Hello so far */
    /* Directories named before their stream ended (outdir_claim). */
    struct claim {
        const session_t *s;
        uint32_t pid;
        char *name;
    } *claims;
    size_t nclaims, capclaims;
};

static int out_error(char *err, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int out_error(char *err, int rc, const char *fmt, ...)
{
    va_list ap;
    if (err) {
        va_start(ap, fmt);
        vsnprintf(err, OUTDIR_ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* mkdir -p: creates each missing component of `path`. */
static int mkdir_p(const char *path)
{
    char *p = strdup(path), *s;
    int rc = 0;
    if (!p)
        return -ENOMEM;
    for (s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0777) < 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    free(p);
    if (rc == 0) {
        struct stat st;
        if (stat(path, &st) < 0)
            rc = -errno;
        else if (!S_ISDIR(st.st_mode))
            rc = -ENOTDIR;
    }
    return rc;
}

outdir_t *outdir_new(const char *path, char *err)
{
    outdir_t *o;
    int rc = mkdir_p(path);
    if (rc < 0) {
        out_error(err, rc, "cannot create %s: %s", path, strerror(-rc));
        return NULL;
    }
    o = calloc(1, sizeof(*o));
    if (!o || !(o->path = strdup(path))) {
        free(o);
        out_error(err, -ENOMEM, "out of memory");
        return NULL;
    }
    return o;
}

void outdir_free(outdir_t *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n; i++) {
        free(o->v[i]->exe);
        free(o->v[i]->argv_json);
        free(o->v[i]->dir);
        free(o->v[i]->summary);
        free(o->v[i]);
    }
    for (size_t i = 0; i < o->nclaims; i++)
        free(o->claims[i].name);
    free(o->claims);
    free(o->v);
    free(o->path);
    free(o);
}

const char *outdir_path(const outdir_t *o)
{
    return o->path;
}

size_t outdir_count(const outdir_t *o)
{
    return o->n;
}

const outdir_entry_t *outdir_get(const outdir_t *o, size_t i)
{
    return i < o->n ? o->v[i] : NULL;
}

/* ---------------------------------------------------------------------------
 * index.json
 * ------------------------------------------------------------------------- */

static int by_pid(const void *a, const void *b)
{
    const outdir_entry_t *x = *(const outdir_entry_t *const *)a;
    const outdir_entry_t *y = *(const outdir_entry_t *const *)b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int outdir_write_index(outdir_t *o, char *err)
{
    const outdir_entry_t **sorted = calloc(o->n ? o->n : 1, sizeof(*sorted));
    size_t n = 0, len = strlen(o->path) + 32;
    char *tmp = malloc(len), *final = malloc(len);
    FILE *f = NULL;
    int rc = 0;

    if (!sorted || !tmp || !final) {
        rc = out_error(err, -ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < o->n; i++)
        if (o->v[i]->has_hello && !o->v[i]->pending)
            sorted[n++] = o->v[i];
    util_sort(sorted, n, sizeof(*sorted), by_pid);

    snprintf(tmp, len, "%s/.index.json.tmp", o->path);
    snprintf(final, len, "%s/index.json", o->path);
    f = fopen(tmp, "w");
    if (!f) {
        rc = out_error(err, -errno, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    fputs("{\"processes\":[", f);
    for (size_t i = 0; i < n; i++) {
        const outdir_entry_t *e = sorted[i];
        fprintf(f, "%s\n{\"pid\":%u,\"ppid\":%u,\"exe\":", i ? "," : "", e->pid, e->ppid);
        json_write_string(f, e->exe ? e->exe : ""); /* RFC 8259, bad UTF-8 -> U+FFFD */
        fprintf(f, ",\"argv\":%s,\"dir\":", e->argv_json);
        json_write_string(f, e->dir);
        fputc('}', f);
    }
    fputs(n ? "\n]}\n" : "]}\n", f);
    if (fflush(f) != 0 || ferror(f)) {
        rc = out_error(err, -errno, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    /* rename(2) replaces index.json atomically: readers see the old or the
     * new index, never a partial one. */
    if (rename(tmp, final) < 0)
        rc = out_error(err, -errno, "rename %s: %s", final, strerror(errno));
out:
    if (f && fclose(f) != 0 && rc == 0)
        rc = out_error(err, -errno, "%s: %s", tmp, strerror(errno));
    if (rc < 0 && tmp)
        unlink(tmp);
    free(sorted);
    free(tmp);
    free(final);
    return rc;
}

/* ---------------------------------------------------------------------------
 * finishing a session
 * ------------------------------------------------------------------------- */

/* "<pid>", or "<pid>-<k>" for the k-th stream with that pid. */
static char *dir_name(outdir_t *o, const session_t *s)
{
    char buf[48];
    unsigned same = 0;
    uint32_t pid = session_pid(s);
    if (!session_has_hello(s)) {
        snprintf(buf, sizeof(buf), "unknown-%u", ++o->unknown);
        return strdup(buf);
    }
    for (size_t i = 0; i < o->n; i++)
        same += o->v[i]->has_hello && o->v[i]->pid == pid;
    for (size_t i = 0; i < o->nclaims; i++)
        same += o->claims[i].pid == pid;
    if (same)
        snprintf(buf, sizeof(buf), "%u-%u", pid, same + 1);
    else
        snprintf(buf, sizeof(buf), "%u", pid);
    return strdup(buf);
}

int outdir_claim(outdir_t *o, const session_t *s, char *path, size_t len)
{
    char *name, *abs;
    int rc = 0;

    if (!session_has_hello(s))
        return -ENOENT;
    for (size_t i = 0; i < o->nclaims; i++)
        if (o->claims[i].s == s)
            return -EEXIST;
    if (o->nclaims == o->capclaims) {
        size_t cap = o->capclaims ? o->capclaims * 2 : 8;
        struct claim *v = realloc(o->claims, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        o->claims = v;
        o->capclaims = cap;
    }
    if (!(name = dir_name(o, s)))
        return -ENOMEM;
    /* Absolute: the one who asks (perfagent snapshot) has a cwd of its own. */
    if (!(abs = realpath(o->path, NULL)))
        rc = -errno;
    else if ((size_t)snprintf(path, len, "%s/%s", abs, name) >= len)
        rc = -ENAMETOOLONG;
    free(abs);
    if (rc < 0) {
        free(name);
        return rc;
    }
    o->claims[o->nclaims++] = (struct claim){.s = s, .pid = session_pid(s), .name = name};
    return 0;
}

int outdir_begin(outdir_t *o, const session_t *s, outdir_entry_t **entry, char **full, char *err)
{
    outdir_entry_t *e;

    *full = NULL;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        outdir_entry_t **v = realloc(o->v, cap * sizeof(*v));
        if (!v)
            return out_error(err, -ENOMEM, "out of memory");
        o->v = v;
        o->cap = cap;
    }
    e = calloc(1, sizeof(*e));
    if (!e)
        return out_error(err, -ENOMEM, "out of memory");
    e->seq = (unsigned)o->n;
    e->has_hello = session_has_hello(s);
    e->pid = e->has_hello ? session_pid(s) : 0;
    e->ppid = e->has_hello ? session_ppid(s) : 0;
    e->exe = e->has_hello ? strdup(session_exe(s) ? session_exe(s) : "") : NULL;
    e->argv_json = strdup(e->has_hello && session_argv_json(s) ? session_argv_json(s) : "[]");
    e->dir = NULL;
    e->pending = 1;
    for (size_t i = 0; i < o->nclaims; i++)
        if (o->claims[i].s == s) {
            e->dir = o->claims[i].name; /* the name it was given early */
            o->claims[i] = o->claims[--o->nclaims];
            break;
        }
    if (!e->dir)
        e->dir = dir_name(o, s);
    if ((e->has_hello && !e->exe) || !e->argv_json || !e->dir ||
        asprintf(full, "%s/%s", o->path, e->dir) < 0) {
        *full = NULL;
        free(e->exe);
        free(e->argv_json);
        free(e->dir);
        free(e);
        return out_error(err, -ENOMEM, "out of memory");
    }
    o->v[o->n++] = e;
    *entry = e;
    return 0;
}

void outdir_done(outdir_entry_t *e, int rc, const char *summary)
{
    free(e->summary);
    e->summary = strdup(rc == 0 && summary ? summary : "");
    e->pending = 0;
}

int outdir_add(outdir_t *o, session_t *s, const outdir_entry_t **entry, char *err)
{
    outdir_entry_t *e;
    char *full;
    int rc = outdir_begin(o, s, &e, &full, err);

    if (rc < 0)
        return rc;
    rc = session_write_reports(s, full);
    if (rc < 0)
        out_error(err, rc, "writing reports to %s: %s", full, strerror(-rc));
    outdir_done(e, rc, rc == 0 ? session_summary(s) : NULL);
    if (entry)
        *entry = e;
    free(full);
    return rc;
}
