/*
 * fgtree.c — folded-stack parsing (flamegraph.h) and the call tree behind a
 * flame graph (fgtree.h).
 */
#include "fgtree.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* ---- ordering ---------------------------------------------------------------- */

/* Compares two stacks frame by frame: ';' (end of a frame) sorts before any
 * other byte, so "a;b" < "a;b;c" < "a;b c".  With plain strcmp "a;b c" would
 * fall between "a;b" and "a;b;c" and split the lines under "a;b", which the
 * tree builder needs contiguous. */
static int stack_cmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned ca = (unsigned char)*a, cb = (unsigned char)*b;
        if (ca == cb) {
            if (!ca)
                return 0;
            continue;
        }
        /* end of string < ';' < every other byte */
        ca = ca == 0 ? 0 : ca == ';' ? 1 : ca + 1;
        cb = cb == 0 ? 0 : cb == ';' ? 1 : cb + 1;
        return ca < cb ? -1 : 1;
    }
}

static int line_cmp(const void *pa, const void *pb)
{
    return stack_cmp(((const fg_line_t *)pa)->stack, ((const fg_line_t *)pb)->stack);
}

size_t fg_lines_merge(fg_line_t *v, size_t n)
{
    size_t o = 0;
    util_sort(v, n, sizeof(*v), line_cmp);
    for (size_t i = 0; i < n; i++) {
        if (o && strcmp(v[o - 1].stack, v[i].stack) == 0) {
            /* saturate: fg_tree_build then reports the overflow */
            if (__builtin_add_overflow(v[o - 1].value, v[i].value, &v[o - 1].value))
                v[o - 1].value = UINT64_MAX;
            continue;
        }
        if (v[i].value) /* a zero line draws nothing */
            v[o++] = v[i];
    }
    return o;
}

/* ---- parsing ----------------------------------------------------------------- */

void fg_folded_free(fg_folded_t *f)
{
    free(f->lines);
    free(f->text);
    memset(f, 0, sizeof(*f));
}

/* Checks and cuts one line (NUL-terminated at its end) into stack and value.
 * Returns NULL or what is wrong with it. */
static const char *parse_line(char *s, size_t len, fg_line_t *out)
{
    size_t i = len, digits;
    uint64_t v = 0;

    while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
        i--;
    digits = len - i;
    if (!digits)
        return "no count at the end of the line";
    if (i == 0 || (s[i - 1] != ' ' && s[i - 1] != '\t'))
        return "expected 'STACK COUNT' (a space before the count)";
    for (size_t k = i; k < len; k++)
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s[k] - '0', &v))
            return "count does not fit in 64 bits";
    /* the stack ends before the blanks that precede the count */
    while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t'))
        i--;
    s[i] = '\0';
    if (!i)
        return "empty stack";
    if (s[0] == ';' || s[i - 1] == ';' || strstr(s, ";;"))
        return "empty frame name";
    out->stack = s;
    out->value = v;
    return NULL;
}

int fg_folded_parse(fg_folded_t *out, char *text, size_t len, char *err)
{
    size_t cap = 0, lineno = 0;
    char *p = text, *end = text + len;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    out->text = text;
    text[len] = '\0';
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p), next = n + 1;
        const char *why;
        fg_line_t l;

        lineno++;
        p[n] = '\0';
        if (n && p[n - 1] == '\r') /* written on Windows */
            p[--n] = '\0';
        if (strspn(p, " \t") == n) { /* blank lines are allowed */
            p += next;
            continue;
        }
        if (memchr(p, '\0', n)) {
            why = "NUL byte in the line";
        } else {
            why = parse_line(p, n, &l);
        }
        /* The sum of every line, before merging: then no stack's merged sum
         * can overflow, and the tree's totals fit. */
        if (!why && __builtin_add_overflow(out->total, l.value, &out->total))
            why = "the counts add up to 2^64 or more";
        if (why) {
            snprintf(err, FG_ERR_LEN, "line %zu: %s", lineno, why);
            rc = -EINVAL;
            goto fail;
        }
        if ((rc = util_grow((void **)&out->lines, &cap, out->n + 1, sizeof(*out->lines))) < 0) {
            snprintf(err, FG_ERR_LEN, "out of memory");
            goto fail;
        }
        out->lines[out->n++] = l;
        p += next;
    }
    out->n = fg_lines_merge(out->lines, out->n);
    return 0;
fail:
    fg_folded_free(out);
    return rc;
}

int fg_folded_read(fg_folded_t *out, const char *path, char *err)
{
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap + 1);
    int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (fd < 0 || !buf) {
        rc = fd < 0 ? -errno : -ENOMEM;
        snprintf(err, FG_ERR_LEN, "%s: %s", path, strerror(-rc));
        goto fail;
    }
    for (;;) {
        ssize_t r;
        if (len == cap) {
            char *nb = cap > SIZE_MAX / 4 ? NULL : realloc(buf, cap * 2 + 1);
            if (!nb) {
                rc = -ENOMEM;
                snprintf(err, FG_ERR_LEN, "%s: out of memory", path);
                goto fail;
            }
            buf = nb;
            cap *= 2;
        }
        r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            snprintf(err, FG_ERR_LEN, "%s: read: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (fd > 0)
        close(fd);
    fd = -1;
    if ((rc = fg_folded_parse(out, buf, len, err)) < 0) {
        char why[FG_ERR_LEN];
        memcpy(why, err, sizeof(why));
        snprintf(err, FG_ERR_LEN, "%s: %.200s", path, why);
    }
    return rc;
fail:
    if (fd > 0)
        close(fd);
    free(buf);
    return rc;
}

/* ---- the tree ---------------------------------------------------------------- */

void fg_tree_free(fg_tree_t *t)
{
    free(t->v);
    memset(t, 0, sizeof(*t));
}

static int new_node(fg_tree_t *t, uint32_t parent, const char *name, size_t len)
{
    fg_node_t *nd;
    if (t->n >= FG_NONE - 1 || len > UINT32_MAX)
        return -ENOMEM;
    if (util_grow((void **)&t->v, &t->cap, t->n + 1, sizeof(*t->v)) < 0)
        return -ENOMEM;
    nd = &t->v[t->n];
    *nd = (fg_node_t){.name = name, .name_len = (uint32_t)len, .parent = parent,
                      .first_child = FG_NONE, .last_child = FG_NONE, .next_sibling = FG_NONE};
    if (parent != FG_NONE) {
        fg_node_t *p = &t->v[parent];
        nd->depth = p->depth + 1;
        if (nd->depth > t->max_depth)
            t->max_depth = nd->depth;
        /* input order is name order: a new child goes last */
        if (p->last_child == FG_NONE)
            p->first_child = (uint32_t)t->n;
        else
            t->v[p->last_child].next_sibling = (uint32_t)t->n;
        p->last_child = (uint32_t)t->n;
    }
    t->n++;
    return 0;
}

int fg_tree_build(fg_tree_t *t, const fg_line_t *lines, size_t n)
{
    uint32_t *path = NULL; /* path[d] = node at depth d of the previous line */
    size_t path_cap = 0, depth_prev = 0;
    int rc;

    memset(t, 0, sizeof(*t));
    if ((rc = new_node(t, FG_NONE, "all", 3)) < 0)
        goto fail;
    if ((rc = util_grow((void **)&path, &path_cap, 16, sizeof(*path))) < 0)
        goto fail;
    path[0] = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = lines[i].stack, *e;
        uint64_t v = lines[i].value;
        size_t d = 0;
        int same = 1; /* still on the previous line's path */

        if (__builtin_add_overflow(t->total, v, &t->total)) {
            rc = -EOVERFLOW;
            goto fail;
        }
        t->v[0].total = t->total;
        for (;; s = e + 1) {
            size_t len;
            e = strchr(s, ';');
            len = e ? (size_t)(e - s) : strlen(s);
            d++;
            if (same && d <= depth_prev) {
                const fg_node_t *nd = &t->v[path[d]];
                same = nd->name_len == len && memcmp(nd->name, s, len) == 0;
            } else {
                same = 0;
            }
            if (!same) {
                if ((rc = util_grow((void **)&path, &path_cap, d + 1, sizeof(*path))) < 0 ||
                    (rc = new_node(t, path[d - 1], s, len)) < 0)
                    goto fail;
                path[d] = (uint32_t)(t->n - 1);
            }
            /* no overflow: every node's total is at most the root's */
            t->v[path[d]].total += v;
            if (!e)
                break;
        }
        t->v[path[d]].self += v;
        depth_prev = d;
    }
    /* Offsets: nodes are in pre-order, so a parent's offset is known before
     * its children are placed side by side from its left edge. */
    for (size_t i = 0; i < t->n; i++) {
        uint64_t off = t->v[i].offset;
        for (uint32_t c = t->v[i].first_child; c != FG_NONE; c = t->v[c].next_sibling) {
            t->v[c].offset = off;
            off += t->v[c].total;
        }
    }
    free(path);
    return 0;
fail:
    free(path);
    fg_tree_free(t);
    return rc;
}

/* Both trees list children in the same (byte) order: walk them side by side. */
static void set_base(fg_tree_t *t, uint32_t bn, const fg_tree_t *a, uint32_t an, double scale)
{
    uint32_t ac = a->v[an].first_child;
    t->v[bn].base = (double)a->v[an].total * scale;
    for (uint32_t c = t->v[bn].first_child; c != FG_NONE; c = t->v[c].next_sibling) {
        const fg_node_t *b = &t->v[c];
        int cmp = 1;
        while (ac != FG_NONE) {
            const fg_node_t *x = &a->v[ac];
            size_t m = x->name_len < b->name_len ? x->name_len : b->name_len;
            cmp = memcmp(x->name, b->name, m);
            if (!cmp)
                cmp = x->name_len < b->name_len ? -1 : x->name_len > b->name_len;
            if (cmp >= 0)
                break;
            ac = x->next_sibling;
        }
        if (ac != FG_NONE && cmp == 0)
            set_base(t, c, a, ac, scale);
        /* else: the path is new in B; its subtree keeps base 0 */
    }
}

void fg_tree_set_base(fg_tree_t *t, const fg_tree_t *a, double scale)
{
    for (size_t i = 0; i < t->n; i++)
        t->v[i].base = 0;
    if (t->n && a->n)
        set_base(t, 0, a, 0, scale);
}

long long fg_edge(uint64_t off, uint64_t zoff, uint64_t ztotal, double width)
{
    if (!ztotal)
        return 0;
    /* the same expression, in the same order, as the SVG's script */
    return llround((double)(off - zoff) * width / (double)ztotal * 100.0);
}
