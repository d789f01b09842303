/*
 * json — streaming JSON writer (see json.h).
 *
 * Owns nothing but the nesting state.  Output is a pure function of the
 * calls, which the reports rely on for byte-identical replays.
 */
#include "json.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void json_init(json_t *j, FILE *f, int pretty_depth)
{
    memset(j, 0, sizeof(*j));
    j->f = f;
    j->pretty_depth = pretty_depth;
}

static void indent(json_t *j, int depth)
{
    fputc('\n', j->f);
    for (int i = 0; i < depth; i++)
        fputs("  ", j->f);
}

/* Before any value or key: the separator and the line break. */
static void item_start(json_t *j)
{
    if (j->after_key) {
        j->after_key = 0;
        return;
    }
    if (j->depth == 0)
        return;
    int lvl = j->depth - 1;
    if (j->has_items[lvl])
        fputc(',', j->f);
    if (j->depth <= j->pretty_depth)
        indent(j, j->depth);
    else if (j->has_items[lvl])
        fputc(' ', j->f);
    j->has_items[lvl] = 1;
}

static void open_container(json_t *j, int c)
{
    item_start(j);
    fputc(c, j->f);
    if (j->depth < JSON_MAX_DEPTH)
        j->has_items[j->depth] = 0;
    j->depth++;
}

static void close_container(json_t *j, int c)
{
    if (j->depth == 0)
        return;
    j->depth--;
    int had = j->depth < JSON_MAX_DEPTH ? j->has_items[j->depth] : 1;
    if (had && j->depth < j->pretty_depth)
        indent(j, j->depth);
    fputc(c, j->f);
    if (j->depth == 0)
        fputc('\n', j->f);
}

void json_obj_begin(json_t *j)
{
    open_container(j, '{');
}

void json_obj_end(json_t *j)
{
    close_container(j, '}');
}

void json_arr_begin(json_t *j)
{
    open_container(j, '[');
}

void json_arr_end(json_t *j)
{
    close_container(j, ']');
}

void json_key(json_t *j, const char *key)
{
    item_start(j);
    json_write_string(j->f, key);
    fputs(": ", j->f);
    j->after_key = 1;
}

void json_str(json_t *j, const char *s)
{
    item_start(j);
    if (s)
        json_write_string(j->f, s);
    else
        fputs("null", j->f);
}

void json_u64(json_t *j, uint64_t v)
{
    item_start(j);
    fprintf(j->f, "%" PRIu64, v);
}

void json_i64(json_t *j, int64_t v)
{
    item_start(j);
    fprintf(j->f, "%" PRId64, v);
}

void json_bool(json_t *j, int v)
{
    item_start(j);
    fputs(v ? "true" : "false", j->f);
}

void json_null(json_t *j)
{
    item_start(j);
    fputs("null", j->f);
}

void json_raw(json_t *j, const char *text)
{
    item_start(j);
    fputs(text ? text : "null", j->f);
}

char *json_array_text(char *const *v, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    json_t j;

    if (!f)
        return NULL;
    json_init(&j, f, 0);
    json_arr_begin(&j);
    for (size_t i = 0; i < n; i++)
        json_str(&j, v[i]);
    json_arr_end(&j);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    if (len && buf[len - 1] == '\n') /* a finished document ends with \n */
        buf[len - 1] = '\0';
    return buf;
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned char c = p[0];
    unsigned lo = 0x80, hi = 0xBF;
    size_t n;

    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    /* p is NUL-terminated, so a short sequence stops at the NUL (not 0x80..). */
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

void json_write_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    fputc('"', f);
    while (*p) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
            p++;
        } else if (c < 0x20) {
            switch (c) {
            case '\n':
                fputs("\\n", f);
                break;
            case '\t':
                fputs("\\t", f);
                break;
            case '\r':
                fputs("\\r", f);
                break;
            default:
                fprintf(f, "\\u%04x", c);
            }
            p++;
        } else if (c < 0x80) {
            fputc(c, f);
            p++;
        } else {
            size_t n = utf8_len(p);
            if (n) {
                fwrite(p, 1, n, f);
                p += n;
            } else {
                fputs("\\ufffd", f);
                p++;
            }
        }
    }
    fputc('"', f);
}
