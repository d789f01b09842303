/*
 * test_flamegraph.c — the folded-stack parser, the call tree and its layout,
 * the SVG writer (pruning, escaping, determinism, diff colours) and the diff
 * table (diff.c), on hand-made inputs with hand-computed answers.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "diff.h"
#include "fgtree.h"

/* Parses a string literal (copied: the parser takes ownership). */
static int parse(fg_folded_t *f, const char *s, char *err)
{
    size_t n = strlen(s);
    char *t = malloc(n + 1);
    memcpy(t, s, n + 1);
    err[0] = '\0';
    return fg_folded_parse(f, t, n, err);
}

/* Renders to a malloc'd string. */
static char *render(const fg_input_t *in)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f || flamegraph_write_svg(f, in) < 0) {
        if (f)
            fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    return buf;
}

/* ---- parser ------------------------------------------------------------------ */

TEST(test_parse_sums)
{
    fg_folded_t f;
    char err[FG_ERR_LEN];
    /* duplicates summed across 2^32; CRLF, a tab, blank lines, a zero line,
     * a name with spaces and a count-like word inside the stack */
    int rc = parse(&f,
                   "main;work 4294967296\r\n"
                   "\n"
                   "main;operator new(unsigned long) 7\n"
                   "main;work\t4294967297\n"
                   "   \n"
                   "main;idle 0\n"
                   "main;f 12 5",
                   err);
    CHECK(rc == 0);
    CHECK_STREQ(err, "");
    CHECK_EQ_U64(f.n, 3);
    CHECK_EQ_U64(f.total, 8589934593ull + 7 + 5);
    if (f.n == 3) {
        /* frame order: ';' and the end of a frame before any other byte */
        CHECK_STREQ(f.lines[0].stack, "main;f 12");
        CHECK_EQ_U64(f.lines[0].value, 5);
        CHECK_STREQ(f.lines[1].stack, "main;operator new(unsigned long)");
        CHECK_EQ_U64(f.lines[1].value, 7);
        CHECK_STREQ(f.lines[2].stack, "main;work");
        CHECK_EQ_U64(f.lines[2].value, 8589934593ull);
    }
    fg_folded_free(&f);

    /* the largest count there is */
    CHECK(parse(&f, "a 18446744073709551615\n", err) == 0);
    CHECK_EQ_U64(f.total, UINT64_MAX);
    fg_folded_free(&f);
}

TEST(test_parse_errors)
{
    static const struct {
        const char *text, *err;
    } bad[] = {
        {"a;b\n", "line 1: no count at the end of the line"},
        {"ok 1\n\nmain;;f 3\n", "line 3: empty frame name"},
        {"ok 1\n;main 3\n", "line 2: empty frame name"},
        {"main; 3\n", "line 1: empty frame name"},
        {"main 18446744073709551616\n", "line 1: count does not fit in 64 bits"},
        {"x 1\nmain -5\n", "line 2: expected 'STACK COUNT' (a space before the count)"},
        {"main 1.5\n", "line 1: expected 'STACK COUNT' (a space before the count)"},
        {"42\n", "line 1: expected 'STACK COUNT' (a space before the count)"},
        {"x 1\ny 2\n   7\n", "line 3: empty stack"},
        {"a 18446744073709551615\nb 1\n", "line 2: the counts add up to 2^64 or more"},
        /* the same stack twice must not saturate quietly */
        {"a 18446744073709551615\na 1\n", "line 2: the counts add up to 2^64 or more"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fg_folded_t f;
        char err[FG_ERR_LEN];
        int rc = parse(&f, bad[i].text, err);
        CHECK(rc == -EINVAL);
        CHECK_STREQ(err, bad[i].err);
        CHECK(f.n == 0 && f.lines == NULL && f.text == NULL);
    }
    /* a NUL byte inside a line */
    {
        fg_folded_t f;
        char err[FG_ERR_LEN], *t = malloc(16);
        memcpy(t, "a 1\nb\0c 2\n", 11);
        CHECK(fg_folded_parse(&f, t, 10, err) == -EINVAL);
        CHECK_STREQ(err, "line 2: NUL byte in the line");
    }
}

/* ---- tree and layout --------------------------------------------------------- */

static const fg_node_t *child(const fg_tree_t *t, uint32_t parent, const char *name)
{
    for (uint32_t c = t->v[parent].first_child; c != FG_NONE; c = t->v[c].next_sibling)
        if (t->v[c].name_len == strlen(name) && !memcmp(t->v[c].name, name, strlen(name)))
            return &t->v[c];
    return NULL;
}

TEST(test_tree_values)
{
    fg_folded_t f;
    fg_tree_t t;
    char err[FG_ERR_LEN];
    /* "a;b c" sorts between "a;b" and "a;b;c" with strcmp: the tree must
     * still have one "b" under "a" */
    CHECK(parse(&f, "a;b;c 30\na;b c 1\na;b 10\na;d 60\na;b;c 5\n", err) == 0);
    CHECK(fg_tree_build(&t, f.lines, f.n) == 0);
    CHECK_EQ_U64(t.n, 6); /* all a b c "b c" d */
    CHECK_EQ_U64(t.total, 106);
    CHECK_EQ_U64(t.max_depth, 3);
    const fg_node_t *a = child(&t, 0, "a");
    CHECK(a != NULL);
    if (a) {
        uint32_t ai = (uint32_t)(a - t.v);
        const fg_node_t *b = child(&t, ai, "b"), *bc = child(&t, ai, "b c"), *d = child(&t, ai, "d");
        CHECK(b && bc && d);
        if (b && bc && d) {
            const fg_node_t *c = child(&t, (uint32_t)(b - t.v), "c");
            CHECK_EQ_U64(a->total, 106);
            CHECK_EQ_U64(a->self, 0);
            CHECK_EQ_U64(b->total, 45);
            CHECK_EQ_U64(b->self, 10);
            CHECK_EQ_U64(bc->total, 1);
            CHECK_EQ_U64(d->total, 60);
            CHECK(c && c->total == 35 && c->self == 35);
            /* children left to right in byte order of their names */
            CHECK_EQ_U64(b->offset, 0);
            CHECK_EQ_U64(bc->offset, 45);
            CHECK_EQ_U64(d->offset, 46);
            CHECK(c && c->offset == 0);
            /* widths proportional to values: 60/106 of 1180 px = 667.92 */
            CHECK_EQ_U64(fg_edge(d->offset + d->total, 0, 106, 1180) - fg_edge(d->offset, 0, 106, 1180),
                         66792);
            CHECK_EQ_U64(fg_edge(b->offset + b->total, 0, 106, 1180), 50094); /* 45/106 */
            /* zoomed on b: b fills the plot, c is 35/45 of it */
            CHECK_EQ_U64(fg_edge(b->offset + b->total, b->offset, b->total, 1180), 118000);
            CHECK_EQ_U64(fg_edge(35, 0, 45, 1180), 91778);
        }
    }
    fg_tree_free(&t);
    fg_folded_free(&f);
}

/* A deterministic pseudo-random profile: n stacks of depth 1..12 over 40
 * names, values spread over 6 orders of magnitude. */
static char *gen_profile(size_t n, uint32_t seed)
{
    size_t cap = n * 120 + 64, len = 0;
    char *s = malloc(cap);
    uint32_t x = seed;
#define NEXT() (x = x * 1103515245u + 12345u, (x >> 8) & 0xffff)
    for (size_t i = 0; i < n; i++) {
        unsigned depth = 1 + NEXT() % 12;
        for (unsigned d = 0; d < depth; d++)
            len += (size_t)snprintf(s + len, cap - len, "%sfn%u", d ? ";" : "", NEXT() % 40);
        unsigned mag = NEXT() % 6, v = 1 + NEXT() % 9;
        while (mag--)
            v *= 10;
        len += (size_t)snprintf(s + len, cap - len, " %u\n", v);
    }
#undef NEXT
    return s;
}

TEST(test_layout_nesting)
{
    fg_folded_t f;
    fg_tree_t t;
    char err[FG_ERR_LEN], *s = gen_profile(3000, 7);
    size_t bad_nest = 0, bad_sum = 0, bad_width = 0;

    CHECK(fg_folded_parse(&f, s, strlen(s), err) == 0);
    CHECK(fg_tree_build(&t, f.lines, f.n) == 0);
    CHECK_EQ_U64(t.total, f.total);
    for (size_t i = 0; i < t.n; i++) {
        const fg_node_t *p = &t.v[i];
        long long pl = fg_edge(p->offset, 0, t.total, 1180);
        long long pr = fg_edge(p->offset + p->total, 0, t.total, 1180);
        uint64_t sum = p->self;
        /* width = value / total of the plot, to a hundredth of a pixel */
        if (llabs((pr - pl) - llround((double)p->total * 118000.0 / (double)t.total)) > 1)
            bad_width++;
        for (uint32_t c = p->first_child; c != FG_NONE; c = t.v[c].next_sibling) {
            const fg_node_t *k = &t.v[c];
            sum += k->total;
            if (fg_edge(k->offset, 0, t.total, 1180) < pl ||
                fg_edge(k->offset + k->total, 0, t.total, 1180) > pr)
                bad_nest++;
        }
        if (sum != p->total)
            bad_sum++;
    }
    CHECK_EQ_U64(bad_width, 0);
    CHECK_EQ_U64(bad_nest, 0); /* a child's box never leaves its parent's */
    CHECK_EQ_U64(bad_sum, 0);  /* self + children = total, exactly */
    fg_tree_free(&t);
    fg_folded_free(&f);
}

/* ---- the SVG ----------------------------------------------------------------- */

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

TEST(test_svg_prune_and_boxes)
{
    fg_folded_t f;
    fg_tree_t t;
    char err[FG_ERR_LEN], *s = gen_profile(3000, 11), *svg;
    size_t want_drawn = 0, outside = 0, boxes = 0, narrow = 0;
    char attr[64];

    CHECK(fg_folded_parse(&f, s, strlen(s), err) == 0);
    CHECK(fg_tree_build(&t, f.lines, f.n) == 0);
    for (size_t i = 0; i < t.n; i++) /* at least 0.1% of the total, and the root */
        want_drawn += i == 0 || t.v[i].total * 1000 >= t.total;
    fg_input_t in = {.lines = f.lines, .n_lines = f.n, .title = "t"};
    svg = render(&in);
    CHECK(svg != NULL);
    if (!svg)
        goto out;
    CHECK_EQ_U64(count(svg, "<g class=\"f\""), want_drawn);
    CHECK(want_drawn < t.n / 4); /* pruning matters on this input */
    snprintf(attr, sizeof(attr), "data-frames=\"%zu\" data-hidden=\"%zu\"", want_drawn,
             t.n - want_drawn);
    CHECK(strstr(svg, attr) != NULL);
    /* Every drawn box, parsed back: width matches its value, and it lies
     * within the box of the frame drawn below it that contains its offset. */
    for (const char *p = svg; (p = strstr(p, "<g class=\"f\" data-v=\"")); p++) {
        unsigned long long v, o;
        unsigned l;
        double x, w;
        const char *r = strstr(p, "<rect x=\"");
        if (sscanf(p, "<g class=\"f\" data-v=\"%llu\" data-o=\"%llu\" data-l=\"%u\"", &v, &o, &l) != 3 ||
            !r || sscanf(r, "<rect x=\"%lf\" y=\"%*d\" width=\"%lf\"", &x, &w) != 2) {
            outside++;
            continue;
        }
        boxes++;
        if (fabs(w - (double)v * 1180.0 / (double)t.total) > 0.011)
            outside++;
        if (w < 1.18 - 0.011 && l > 0)
            narrow++;
        /* the parent in the tree: the node at depth l-1 containing [o, o+v) */
        for (size_t i = 0; l > 0 && i < t.n; i++) {
            const fg_node_t *q = &t.v[i];
            if (q->depth == l - 1 && q->offset <= o && o + v <= q->offset + q->total) {
                double qx = 10 + fg_edge(q->offset, 0, t.total, 1180) / 100.0;
                double qr = 10 + fg_edge(q->offset + q->total, 0, t.total, 1180) / 100.0;
                if (x < qx - 1e-9 || x + w > qr + 1e-6)
                    outside++;
                break;
            }
        }
    }
    CHECK_EQ_U64(boxes, want_drawn);
    CHECK_EQ_U64(outside, 0);
    CHECK_EQ_U64(narrow, 0); /* nothing under 0.1% (1.18 px) is drawn */
    free(svg);
out:
    fg_tree_free(&t);
    fg_folded_free(&f);
}

TEST(test_svg_escape_and_determinism)
{
    /* the same stacks in another order and split differently */
    fg_line_t l1[] = {{"main;std::map<int, std::string>::find(int const&)", 30},
                      {"main;say \"hi\" & 'bye'", 10},
                      {"main;bad\x01\xff" "byte;caf\xc3\xa9", 5},
                      {"main;std::map<int, std::string>::find(int const&)", 15}};
    fg_line_t l2[] = {{"main;bad\x01\xff" "byte;caf\xc3\xa9", 5},
                      {"main;std::map<int, std::string>::find(int const&)", 45},
                      {"main;say \"hi\" & 'bye'", 10}};
    fg_input_t a = {.lines = l1, .n_lines = 4, .title = "<T&>", .unit = "bytes"};
    fg_input_t b = {.lines = l2, .n_lines = 3, .title = "<T&>", .unit = "bytes"};
    char *sa = render(&a), *sb = render(&b);
    CHECK(sa && sb);
    if (!sa || !sb)
        goto out;
    CHECK_STREQ(sa, sb); /* same input, same bytes */
    CHECK(strstr(sa, "<title>std::map&lt;int, std::string&gt;::find(int const&amp;)\n"
                     "45 bytes, 75.00%</title>") != NULL);
    CHECK(strstr(sa, "<title>say &quot;hi&quot; &amp; &apos;bye&apos;\n") != NULL);
    /* a control character and a byte that is not UTF-8 become '?'; UTF-8 stays */
    CHECK(strstr(sa, "<title>bad??byte\n") != NULL);
    CHECK(strstr(sa, "<title>caf\xc3\xa9\n") != NULL);
    CHECK(strstr(sa, "<text id=\"title\" x=\"600\" y=\"22\">&lt;T&amp;&gt;</text>") != NULL);
    CHECK(strstr(sa, "60 bytes in 3 stacks") != NULL);
    /* nothing unescaped in the frames: every '<' starts a tag, every '&'
     * an entity */
    {
        char *fr = strstr(sa, "<g id=\"frames\">"), *end = fr ? strstr(fr, "<script") : NULL;
        CHECK(fr && end);
        if (fr && end) {
            *end = '\0';
            CHECK_EQ_U64(count(fr, "<int"), 0);
            CHECK_EQ_U64(count(fr, "& "), 0);
            CHECK_EQ_U64(count(fr, "&"), count(fr, "&amp;") + count(fr, "&lt;") +
                                             count(fr, "&gt;") + count(fr, "&quot;") +
                                             count(fr, "&apos;"));
        }
    }
out:
    free(sa);
    free(sb);
}

TEST(test_svg_units)
{
    fg_line_t l[] = {{"main;grow", 3221225472ull}, {"main;tick", 1}};
    fg_input_t in = {.lines = l, .n_lines = 2, .unit = "bytes", .min_ppm = 1};
    char *s = render(&in);
    CHECK(s != NULL);
    if (s) {
        CHECK(strstr(s, "<title>grow\n3,221,225,472 bytes (3.00 GiB), 100.00%</title>") != NULL);
        CHECK(strstr(s, "<title>tick\n1 byte, 0.00%</title>") == NULL); /* under 1 ppm */
        free(s);
    }
    in.unit = NULL;
    in.min_ppm = 0;
    l[1].value = 5000000;
    s = render(&in);
    CHECK(s != NULL);
    if (s) {
        CHECK(strstr(s, "<title>tick\n5,000,000 samples, 0.15%</title>") != NULL);
        free(s);
    }
}

/* ---- diff -------------------------------------------------------------------- */

static const char *diff_a = "main;foo 60\nmain;bar 40\n";
static const char *diff_b = "main;foo 50\nmain;bar;foo 100\nmain;baz 50\nmain;rec;rec 40\n";

/* The fill of the frame named name at depth l (first in document order). */
static int fill_of(const char *svg, const char *name, unsigned l, char *out, size_t n)
{
    char key[128];
    snprintf(key, sizeof(key), "data-l=\"%u\"><title>%s\n", l, name);
    const char *p = strstr(svg, key), *q;
    if (!p || !(p = strstr(p, "fill=\"")) || !(q = strchr(p + 6, '"')))
        return -1;
    snprintf(out, n, "%.*s", (int)(q - p - 6), p + 6);
    return 0;
}

TEST(test_diff_table)
{
    fg_folded_t a, b;
    diff_table_t t;
    char err[FG_ERR_LEN], *txt = NULL;
    size_t len = 0;
    FILE *f;

    CHECK(parse(&a, diff_a, err) == 0 && parse(&b, diff_b, err) == 0);
    CHECK(diff_table_build(&t, &a, &b) == 0);
    CHECK_EQ_U64(t.a_total, 100);
    CHECK_EQ_U64(t.b_total, 240);
    for (size_t i = 0; i < t.n; i++) {
        const diff_fn_t *fn = &t.v[i];
        if (fn->len == 3 && !memcmp(fn->name, "rec", 3)) {
            CHECK_EQ_U64(fn->b_total, 40); /* recursion counts once per stack */
            CHECK_EQ_U64(fn->b_self, 40);
        } else if (fn->len == 3 && !memcmp(fn->name, "foo", 3)) {
            CHECK(fn->a_total == 60 && fn->a_self == 60 && fn->b_total == 150 && fn->b_self == 150);
        }
    }
    f = open_memstream(&txt, &len);
    CHECK(diff_write_txt(f, &t, "A.folded", "B.folded", "samples", 30) == 0);
    fclose(f);
    /* total: foo 60% -> 150/240 = 62.50%; bar 40% -> 100/240 = 41.67%;
     * baz 0 -> 50/240 = 20.83%; rec 0 -> 40/240 = 16.67%; main 100% both
     * (left out).  self: bar 40% -> 0. */
    CHECK_STREQ(txt,
                "perfagent diff: how each function's share of the profile changed from A to B\n"
                "A: A.folded (100 samples)\n"
                "B: B.folded (240 samples)\n"
                "share: the function's samples / the profile's total, in %; delta: B% - A%, in points\n"
                "\n"
                "by total share (the function anywhere on the stack, once per stack), largest changes first:\n"
                "      A%       B%    delta  function\n"
                "    0.00    20.83   +20.83  baz\n"
                "    0.00    16.67   +16.67  rec\n"
                "   60.00    62.50    +2.50  foo\n"
                "   40.00    41.67    +1.67  bar\n"
                "\n"
                "by self share (the function at the top of the stack), largest changes first:\n"
                "      A%       B%    delta  function\n"
                "   40.00     0.00   -40.00  bar\n"
                "    0.00    20.83   +20.83  baz\n"
                "    0.00    16.67   +16.67  rec\n"
                "   60.00    62.50    +2.50  foo\n");
    free(txt);
    /* only the top 2 */
    txt = NULL;
    f = open_memstream(&txt, &len);
    CHECK(diff_write_txt(f, &t, "A", "B", "samples", 2) == 0);
    fclose(f);
    CHECK_EQ_U64(count(txt, "(2 more functions changed)\n"), 2);
    free(txt);
    diff_table_free(&t);

    /* the diff graph: sized by B, A scaled by 240/100 */
    fg_input_t in = {.lines = b.lines, .n_lines = b.n, .base = a.lines, .n_base = a.n,
                     .normalize = 1};
    char *svg = render(&in), fill[64];
    CHECK(svg != NULL);
    if (svg) {
        CHECK(strstr(svg, "data-total=\"240\"") != NULL);
        /* deltas: main 240-240 = 0; main;foo 50-144 = -94; main;bar;foo
         * 100-0 = +100 (the largest: full red); baz +50 */
        CHECK(fill_of(svg, "main", 1, fill, sizeof(fill)) == 0);
        CHECK_STREQ(fill, "rgb(225,225,225)");
        CHECK(fill_of(svg, "foo", 3, fill, sizeof(fill)) == 0);
        CHECK_STREQ(fill, "rgb(255,0,0)");
        CHECK(fill_of(svg, "foo", 2, fill, sizeof(fill)) == 0);
        CHECK_STREQ(fill, "rgb(13,13,255)"); /* 215 * (1 - 94/100) */
        CHECK(fill_of(svg, "baz", 2, fill, sizeof(fill)) == 0);
        CHECK_STREQ(fill, "rgb(255,108,108)"); /* 215 * (1 - 50/100) = 107.5 */
        CHECK(strstr(svg, "<title>foo\n50 samples, 20.83%; A: 60 samples, 60.00%; change "
                          "-94 samples (-39.17 points)</title>") != NULL);
        free(svg);
    }
    /* without --normalize the values are compared as they are: main grew
     * from 100 to 240 (+140, the largest change) */
    in.normalize = 0;
    svg = render(&in);
    CHECK(svg != NULL);
    if (svg) {
        CHECK(fill_of(svg, "main", 1, fill, sizeof(fill)) == 0);
        CHECK_STREQ(fill, "rgb(255,0,0)");
        CHECK(fill_of(svg, "foo", 2, fill, sizeof(fill)) == 0);
        CHECK_STREQ(fill, "rgb(200,200,255)"); /* -10 of 140: 215 * (1 - 1/14) = 199.6 */
        free(svg);
    }
    fg_folded_free(&a);
    fg_folded_free(&b);
}

int main(void)
{
    RUN(test_parse_sums);
    RUN(test_parse_errors);
    RUN(test_tree_values);
    RUN(test_layout_nesting);
    RUN(test_svg_prune_and_boxes);
    RUN(test_svg_escape_and_determinism);
    RUN(test_svg_units);
    RUN(test_diff_table);
    CHECK_DONE();
}
