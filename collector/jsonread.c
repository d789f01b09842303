/*
 * jsonread.c — see jsonread.h.  Recursive descent over a buffer.
 */
#include "jsonread.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct jp {
    const char *p, *end, *start;
    char *err;
    size_t errlen;
    int depth;
} jp_t;

static int fail(jp_t *j, const char *why)
{
    snprintf(j->err, j->errlen, "offset %zu: %s", (size_t)(j->p - j->start), why);
    return -EINVAL;
}

static void ws(jp_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int hex4(jp_t *j, unsigned *out)
{
    unsigned v = 0;
    if (j->end - j->p < 4)
        return fail(j, "short \\u escape");
    for (int i = 0; i < 4; i++) {
        char c = *j->p++;
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return fail(j, "bad \\u escape");
    }
    *out = v;
    return 0;
}

static void put_utf8(char *o, size_t *n, unsigned cp)
{
    if (cp < 0x80) {
        o[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        o[(*n)++] = (char)(0xc0 | cp >> 6);
        o[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        o[(*n)++] = (char)(0xe0 | cp >> 12);
        o[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        o[(*n)++] = (char)(0xf0 | cp >> 18);
        o[(*n)++] = (char)(0x80 | (cp >> 12 & 0x3f));
        o[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[(*n)++] = (char)(0x80 | (cp & 0x3f));
    }
}

/* At the opening quote; the decoded string is never longer than its text. */
static int string(jp_t *j, char **out)
{
    const char *q = ++j->p;
    while (q < j->end && *q != '"')
        q += *q == '\\' ? 2 : 1;
    if (q >= j->end)
        return fail(j, "unterminated string");
    char *o = malloc((size_t)(q - j->p) + 1);
    size_t n = 0;
    int rc;
    if (!o)
        return -ENOMEM;
    while (*j->p != '"') {
        unsigned char c = (unsigned char)*j->p++;
        if (c < 0x20) {
            rc = fail(j, "control character in string");
            goto bad;
        }
        if (c != '\\') {
            o[n++] = (char)c;
            continue;
        }
        c = (unsigned char)*j->p++;
        switch (c) {
        case '"': case '\\': case '/': o[n++] = (char)c; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if ((rc = hex4(j, &cp)) < 0)
                goto bad;
            if (cp >= 0xd800 && cp < 0xdc00 && j->end - j->p >= 6 && j->p[0] == '\\' &&
                j->p[1] == 'u') {
                j->p += 2;
                if ((rc = hex4(j, &lo)) < 0)
                    goto bad;
                cp = lo >= 0xdc00 && lo < 0xe000 ? 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00)
                                                  : 0xfffd;
            } else if (cp >= 0xd800 && cp < 0xe000) {
                cp = 0xfffd;
            }
            put_utf8(o, &n, cp);
            break;
        }
        default:
            rc = fail(j, "bad escape");
            goto bad;
        }
    }
    j->p++;
    o[n] = 0;
    *out = o;
    return 0;
bad:
    free(o);
    return rc;
}

static int value(jp_t *j, jr_t *v);

static int container(jp_t *j, jr_t *v, int obj)
{
    size_t cap = 0;
    int rc;
    if (++j->depth > JR_MAX_DEPTH)
        return fail(j, "nested too deep");
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
        j->p++;
        j->depth--;
        return 0;
    }
    for (;;) {
        ws(j);
        if (util_grow((void **)&v->items, &cap, v->n + 1, sizeof(*v->items)) < 0)
            return -ENOMEM;
        if (obj) {
            size_t kc = cap;
            char **k = realloc(v->keys, kc * sizeof(*k));
            if (!k)
                return -ENOMEM;
            v->keys = k;
            if (j->p >= j->end || *j->p != '"')
                return fail(j, "expected a key");
            if ((rc = string(j, &v->keys[v->n])) < 0)
                return rc;
            ws(j);
            if (j->p >= j->end || *j->p != ':') {
                free(v->keys[v->n]);
                return fail(j, "expected ':'");
            }
            j->p++;
            ws(j);
        }
        memset(&v->items[v->n], 0, sizeof(v->items[0]));
        rc = value(j, &v->items[v->n]);
        v->n++; /* counted even when half built, so jr_free frees it */
        if (rc < 0)
            return rc;
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
            j->p++;
            j->depth--;
            return 0;
        }
        return fail(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int literal(jp_t *j, const char *word, jr_kind_t k, jr_t *v)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return fail(j, "unexpected character");
    j->p += n;
    v->kind = k;
    return 0;
}

static int value(jp_t *j, jr_t *v)
{
    ws(j);
    if (j->p >= j->end)
        return fail(j, "unexpected end");
    switch (*j->p) {
    case '{':
        v->kind = JR_OBJ;
        return container(j, v, 1);
    case '[':
        v->kind = JR_ARR;
        return container(j, v, 0);
    case '"':
        v->kind = JR_STR;
        return string(j, &v->s);
    case 'n':
        return literal(j, "null", JR_NULL, v);
    case 't':
        return literal(j, "true", JR_TRUE, v);
    case 'f':
        return literal(j, "false", JR_FALSE, v);
    default: {
        const char *q = j->p;
        while (q < j->end && strchr("+-0123456789.eE", *q))
            q++;
        if (q == j->p)
            return fail(j, "unexpected character");
        v->kind = JR_NUM;
        if (!(v->s = strndup(j->p, (size_t)(q - j->p))))
            return -ENOMEM;
        char *e;
        strtod(v->s, &e);
        if (*e)
            return fail(j, "bad number");
        j->p = q;
        return 0;
    }
    }
}

int jr_parse(jr_t *out, const char *text, size_t len, char *err, size_t errlen)
{
    jp_t j = {.p = text, .end = text + len, .start = text, .err = err, .errlen = errlen};
    memset(out, 0, sizeof(*out));
    int rc = value(&j, out);
    if (rc == 0) {
        ws(&j);
        if (j.p != j.end)
            rc = fail(&j, "text after the value");
    }
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    if (rc < 0)
        jr_free(out);
    return rc;
}

int jr_read_file(jr_t *out, const char *path, char *err, size_t errlen)
{
    char *text = NULL, e2[200];
    size_t len = 0, n;
    char buf[65536];
    memset(out, 0, sizeof(*out));
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    FILE *m = open_memstream(&text, &len);
    while (m && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, m);
    int bad = ferror(f);
    fclose(f);
    if (!m || fclose(m) != 0 || bad) {
        snprintf(err, errlen, "%s: cannot read it", path);
        free(text);
        return -EIO;
    }
    int rc = jr_parse(out, text, len, e2, sizeof(e2));
    if (rc < 0)
        snprintf(err, errlen, "%s: %s", path, e2);
    free(text);
    return rc;
}

void jr_free(jr_t *v)
{
    for (size_t i = 0; i < v->n; i++) {
        jr_free(&v->items[i]);
        if (v->kind == JR_OBJ && v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->s);
    memset(v, 0, sizeof(*v));
}

const jr_t *jr_get(const jr_t *obj, const char *key)
{
    if (!obj || obj->kind != JR_OBJ)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return &obj->items[i];
    return NULL;
}

int jr_u64(const jr_t *v, uint64_t *out)
{
    char *e;
    if (!v || v->kind != JR_NUM || v->s[0] == '-' || v->s[0] == '+')
        return -EINVAL;
    errno = 0;
    unsigned long long x = strtoull(v->s, &e, 10);
    if (*e || errno)
        return -EINVAL;
    *out = x;
    return 0;
}

const char *jr_str(const jr_t *v)
{
    return v && v->kind == JR_STR ? v->s : NULL;
}
