/*
 * flamegraph.c — the SVG writer (see flamegraph.h).  Layout and colours are
 * computed here; the embedded script (flamegraph_js.c) only re-scales the
 * boxes for zoom and marks matches for search, from the data-* attributes
 * written on each frame.
 */
#include "flamegraph.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fgtree.h"

extern const char fg_script[], fg_style[];

#define SVG_W 1200
#define PLOT_X 10
#define PLOT_W 1180.0
#define FRAME_H 16
#define TOP 56
#define BOTTOM 32
#define CHAR_W 7.2 /* 12 px monospace: 0.6 em per character, as in the script */

/* ---- text -------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        k = 2;
    else if (c >= 0xe0 && c <= 0xef)
        k = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        k = 4;
    else
        return 0;
    if (k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    /* overlong forms, surrogates, above U+10FFFF, and U+FFFE/U+FFFF, which
     * XML 1.0 does not allow */
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0) ||
        (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90) ||
        (c == 0xef && s[1] == 0xbf && s[2] >= 0xbe))
        return 0;
    return k;
}

/* Writes n bytes of s as XML character data or attribute text: the five
 * special characters escaped, and what XML 1.0 cannot carry at all (control
 * characters, bytes that are not UTF-8) as '?', so any symbol name keeps the
 * file well-formed.  Stops after max_chars characters (SIZE_MAX: all). */
static void xml_put(FILE *f, const char *s, size_t n, size_t max_chars)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    for (size_t chars = 0; p < end && chars < max_chars; chars++) {
        size_t k = utf8_len(p, (size_t)(end - p));
        switch (*p) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            if (!k || *p < 0x20 || *p == 0x7f)
                fputc('?', f);
            else
                fwrite(p, 1, k, f);
        }
        p += k ? k : 1;
    }
}

/* Characters as the script counts them (code points; a bad byte is one). */
static size_t n_chars(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    size_t c = 0;
    for (; p < end; c++) {
        size_t k = utf8_len(p, (size_t)(end - p));
        p += k ? k : 1;
    }
    return c;
}

/* The label that fits a box w pixels wide: all of the name, its first
 * characters and "..", or nothing below 3 characters (the script's rule). */
static void put_label(FILE *f, const char *name, size_t len, double w)
{
    long fit = (long)floor((w - 6) / CHAR_W);
    size_t nc = n_chars(name, len);
    if (fit < 3)
        return;
    if (nc <= (size_t)fit) {
        xml_put(f, name, len, SIZE_MAX);
    } else {
        xml_put(f, name, len, (size_t)fit - 2);
        fputs("..", f);
    }
}

/* "1,234,567" */
static void put_grouped(FILE *f, uint64_t v)
{
    char d[24];
    int n = snprintf(d, sizeof(d), "%" PRIu64, v);
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            fputc(',', f);
        fputc(d[i], f);
    }
}

/* "1,234 samples" or "1,572,864 bytes (1.50 MiB)" */
static void put_value(FILE *f, uint64_t v, const char *unit)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    put_grouped(f, v);
    if (strcmp(unit, "bytes") != 0) {
        fprintf(f, " %s", unit);
        return;
    }
    fputs(v == 1 ? " byte" : " bytes", f);
    if (v >= 1024) {
        double x = (double)v / 1024;
        int u = 0;
        while (x >= 1024 && u < 5) {
            x /= 1024;
            u++;
        }
        fprintf(f, " (%.2f %s)", x, units[u]);
    }
}

static double pct(uint64_t v, uint64_t total)
{
    return total ? (double)v * 100.0 / (double)total : 0.0;
}

/* ---- colours ----------------------------------------------------------------- */

/* A warm colour from a stable hash (FNV-1a) of the name: the same function
 * has the same colour in every graph, and neighbours usually differ. */
static void put_warm(FILE *f, const char *name, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)name[i]) * 16777619u;
    fprintf(f, "rgb(%u,%u,%u)", 205 + h % 51, 60 + (h >> 8) % 171, (h >> 16) % 56);
}

/* Diff: red where the frame grew, blue where it shrank, stronger with the
 * change relative to the largest change drawn. */
static void put_diff_colour(FILE *f, double delta, double maxabs)
{
    double s = maxabs > 0 ? fabs(delta) / maxabs : 0;
    int c = (int)lround(215.0 * (1.0 - (s > 1 ? 1 : s)));
    if (delta > 0)
        fprintf(f, "rgb(255,%d,%d)", c, c);
    else if (delta < 0)
        fprintf(f, "rgb(%d,%d,255)", c, c);
    else
        fputs("rgb(225,225,225)", f);
}

/* ---- the document ------------------------------------------------------------ */

typedef struct render {
    FILE *f;
    const fg_input_t *in;
    const char *unit;
    fg_tree_t t;
    int diff;
    double scale;   /* diff: A's values times this are comparable to B's */
    uint64_t a_total;
    double maxabs;  /* diff: largest |B - scaled A| of a drawn frame */
    uint64_t min_v; /* smallest total drawn */
    size_t drawn;
} render_t;

static int drawn(const render_t *r, const fg_node_t *nd)
{
    return nd->depth == 0 || nd->total >= r->min_v;
}

static void put_frame(render_t *r, const fg_node_t *nd)
{
    FILE *f = r->f;
    uint64_t tot = r->t.total;
    long long l = fg_edge(nd->offset, 0, tot, PLOT_W);
    long long rt = fg_edge(nd->offset + nd->total, 0, tot, PLOT_W);
    double w = (double)(rt - l) / 100.0;
    int y = TOP + (int)(r->t.max_depth - nd->depth) * FRAME_H;

    fprintf(f, "<g class=\"f\" data-v=\"%" PRIu64 "\" data-o=\"%" PRIu64 "\" data-l=\"%u\">",
            nd->total, nd->offset, nd->depth);
    fputs("<title>", f);
    xml_put(f, nd->name, nd->name_len, SIZE_MAX);
    fputc('\n', f);
    put_value(f, nd->total, r->unit);
    fprintf(f, ", %.2f%%", pct(nd->total, tot));
    if (nd->self && nd->first_child != FG_NONE) {
        fputs("; self ", f);
        put_value(f, nd->self, r->unit);
    }
    if (r->diff) {
        double a = nd->base; /* A's own value */
        double delta = (double)nd->total - a * r->scale;
        fputs("; A: ", f);
        put_value(f, (uint64_t)llround(a), r->unit);
        fprintf(f, ", %.2f%%; change %s", r->a_total ? a * 100.0 / (double)r->a_total : 0.0,
                delta < 0 ? "-" : "+");
        put_value(f, (uint64_t)llround(fabs(delta)), r->unit);
        fprintf(f, " (%+.2f points)",
                pct(nd->total, tot) - (r->a_total ? a * 100.0 / (double)r->a_total : 0.0));
    }
    fprintf(f, "</title><rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" fill=\"",
            PLOT_X + (double)l / 100.0, y, w, FRAME_H - 1);
    if (r->diff)
        put_diff_colour(f, (double)nd->total - nd->base * r->scale, r->maxabs);
    else
        put_warm(f, nd->name, nd->name_len);
    fprintf(f, "\"/><text x=\"%.2f\" y=\"%d\">", PLOT_X + (double)l / 100.0 + 3, y + 12);
    put_label(f, nd->name, nd->name_len, w);
    fputs("</text></g>\n", f);
    r->drawn++;
}

static void put_head(render_t *r, int height, size_t n_stacks)
{
    FILE *f = r->f;
    const char *title = r->in->title ? r->in->title : "Flame graph";
    size_t hidden = r->t.n - r->drawn;
    unsigned ppm = r->in->min_ppm ? r->in->min_ppm : 1000;

    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
            "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"%d\" viewBox=\"0 0 %d %d\" data-total=\"%" PRIu64
            "\" data-plot-x=\"%d\" data-plot-w=\"%.0f\" data-frames=\"%zu\" "
            "data-hidden=\"%zu\" data-diff=\"%d\" data-matched=\"\" data-zoom=\"\">\n",
            SVG_W, height, SVG_W, height, r->t.total, PLOT_X, PLOT_W, r->drawn, hidden,
            r->diff);
    fprintf(f, "<style>%s</style>\n", fg_style);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#f7f3ea\"/>\n", SVG_W,
            height);
    fprintf(f, "<text id=\"title\" x=\"%d\" y=\"22\">", SVG_W / 2);
    xml_put(f, title, strlen(title), SIZE_MAX);
    fprintf(f, "</text>\n<text id=\"sub\" x=\"%d\" y=\"40\">", SVG_W / 2);
    if (r->diff) {
        fputs("widths: B, ", f);
        put_value(f, r->t.total, r->unit);
        fputs("; A: ", f);
        put_value(f, r->a_total, r->unit);
        if (r->in->normalize)
            fprintf(f, " scaled by %.4g to B's total", r->scale);
        fputs("; red: grew from A to B, blue: shrank", f);
    } else {
        put_value(f, r->t.total, r->unit);
        fprintf(f, " in %zu stacks", n_stacks);
    }
    if (hidden)
        fprintf(f, "; %zu of %zu frames under %.2g%% not drawn (counted in their parent)", hidden,
                r->t.n, ppm / 10000.0);
    fprintf(f, "</text>\n<text id=\"reset\" class=\"btn h\" x=\"%d\" y=\"22\">Reset Zoom</text>\n",
            PLOT_X);
    fprintf(f, "<text id=\"search\" class=\"btn\" x=\"%d\" y=\"22\">Search</text>\n",
            SVG_W - PLOT_X);
    fprintf(f, "<text id=\"details\" x=\"%d\" y=\"%d\"> </text>\n", PLOT_X, height - 12);
    fprintf(f, "<text id=\"matched\" x=\"%d\" y=\"%d\"> </text>\n", SVG_W - PLOT_X, height - 12);
}

/* Copies and merges lines into a tree. */
static int build(fg_tree_t *t, const fg_line_t *lines, size_t n, size_t *n_out)
{
    fg_line_t *v = malloc((n ? n : 1) * sizeof(*v));
    int rc;
    if (!v)
        return -ENOMEM;
    memcpy(v, lines, n * sizeof(*v));
    n = fg_lines_merge(v, n);
    rc = fg_tree_build(t, v, n);
    free(v); /* the tree points into the caller's strings, not into v */
    if (n_out)
        *n_out = n;
    return rc;
}

int flamegraph_write_svg(FILE *f, const fg_input_t *in)
{
    render_t r = {.f = f, .in = in, .unit = in->unit ? in->unit : "samples", .diff = !!in->base};
    fg_tree_t a = {0};
    unsigned ppm = in->min_ppm ? in->min_ppm : 1000;
    size_t n_stacks = 0;
    int rc, height;

    if ((rc = build(&r.t, in->lines, in->n_lines, &n_stacks)) < 0)
        goto out;
    /* smallest drawn value: ceil(total * ppm / 1e6), at least 1 */
    r.min_v = (uint64_t)(((unsigned __int128)r.t.total * ppm + 999999) / 1000000);
    if (!r.min_v)
        r.min_v = 1;
    if (r.diff) {
        if ((rc = build(&a, in->base, in->n_base, NULL)) < 0)
            goto out;
        r.a_total = a.total;
        r.scale = in->normalize && a.total ? (double)r.t.total / (double)a.total : 1.0;
        fg_tree_set_base(&r.t, &a, 1.0); /* raw A values; scaled where compared */
        for (size_t i = 1; i < r.t.n; i++) {
            const fg_node_t *nd = &r.t.v[i];
            double d = fabs((double)nd->total - nd->base * r.scale);
            if (drawn(&r, nd) && d > r.maxabs)
                r.maxabs = d;
        }
    }
    for (size_t i = 0; i < r.t.n; i++)
        r.drawn += drawn(&r, &r.t.v[i]);
    height = TOP + (int)(r.t.max_depth + 1) * FRAME_H + BOTTOM;
    put_head(&r, height, n_stacks);
    r.drawn = 0;
    fputs("<g id=\"frames\">\n", f);
    /* The tree is in pre-order: every frame follows its parent. */
    for (size_t i = 0; i < r.t.n; i++)
        if (drawn(&r, &r.t.v[i]))
            put_frame(&r, &r.t.v[i]);
    fputs("</g>\n", f);
    if (!r.t.total)
        fprintf(f, "<text x=\"%d\" y=\"%d\">no samples</text>\n", PLOT_X, TOP - 4);
    fprintf(f, "<script type=\"text/ecmascript\"><![CDATA[\n%s]]></script>\n</svg>\n", fg_script);
    rc = ferror(f) ? -EIO : 0;
out:
    fg_tree_free(&a);
    fg_tree_free(&r.t);
    return rc;
}
