/*
 * test_top.c — collector/top.c: self and cumulative values of hand-made
 * folded stacks (recursion, shared callers, duplicate lines, zero counts),
 * every column of the text table and of --json, byte and percentage
 * rounding, and `perfagent top` itself (top_main) on files in a temp dir:
 * which file it picks, exit codes and the exact one-line messages.
 *
 * Also the test driver of tests/e2e/top.sh until `perfagent top` is wired:
 * `test_top top ARGS...` is `perfagent top ARGS...`.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "top.h"

/* The hand-made profile (samples).  Total 54.
 *   b:    leaf of 3 lines (10 + 5 duplicate + 20)  self 35, cum 35
 *   a:    caller of b twice, leaf once              self 7,  cum 22
 *   c:    shares b as callee with a                 self 0,  cum 20
 *   r:    r;r;r (8) counts once; r;x;r;x (4) once    self 8,  cum 12
 *   x:    mutual recursion with r, leaf             self 4,  cum 4
 *   main: root of all                               self 0,  cum 54
 *   zero: only in a 0-count line: not a function at all */
static const top_input_t prof[] = {
    {"main;a;b", 10}, {"main;a;b", 5},     {"main;c;b", 20},    {"main;a", 7},
    {"main;r;r;r", 8}, {"main;r;x;r;x", 4}, {"main;zero", 0},
};
#define N_PROF (sizeof(prof) / sizeof(prof[0]))

/* The same as a folded file. */
#define PROF_FOLDED                                                                          \
    "main;a;b 10\nmain;a;b 5\nmain;c;b 20\nmain;a 7\nmain;r;r;r 8\nmain;r;x;r;x 4\nmain;zero 0\n"

/* Every column, checked by hand: self% = self/54, sum% = running self sum,
 * cum% = cum/54, each rounded half up to two decimals. */
static const char prof_table[] = "total 54 samples in 6 stacks, 6 functions\n"
                                 "showing 6 of 6 functions, by self\n"
                                 "self   self%    sum% cum    cum%  function\n"
                                 "  35  64.81%  64.81%  35  64.81%  b\n"
                                 "   8  14.81%  79.63%  12  22.22%  r\n"
                                 "   7  12.96%  92.59%  22  40.74%  a\n"
                                 "   4   7.41% 100.00%   4   7.41%  x\n"
                                 "   0   0.00% 100.00%  20  37.04%  c\n"
                                 "   0   0.00% 100.00%  54 100.00%  main\n";

static char *mem_text(void (*fill)(FILE *))
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    fill(f);
    fclose(f);
    return buf;
}

static top_t *load(const top_input_t *in, size_t n)
{
    top_t *t = top_new();
    for (size_t i = 0; t && i < n; i++)
        CHECK(top_add(t, in[i].stack, strlen(in[i].stack), in[i].value) == 0);
    return t;
}

/* The row of name in rows, or NULL. */
static const top_row_t *row_of(const top_row_t *rows, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].name, name) == 0)
            return &rows[i];
    return NULL;
}

TEST(top_self_cum_values)
{
    static const struct {
        const char *name;
        uint64_t self, cum;
    } want[] = {{"b", 35, 35}, {"r", 8, 12}, {"a", 7, 22}, {"x", 4, 4}, {"c", 0, 20}, {"main", 0, 54}};
    top_t *t = load(prof, N_PROF);
    const top_row_t *rows;
    size_t n = top_rows(t, TOP_SORT_SELF, &rows);

    CHECK_EQ_U64(top_total(t), 54);
    CHECK_EQ_U64(top_stacks(t), 6);
    CHECK_EQ_U64(n, 6);
    CHECK(row_of(rows, n, "zero") == NULL);
    for (size_t i = 0; i < 6 && i < n; i++) {
        CHECK_STREQ(rows[i].name, want[i].name); /* self desc, then name: c before main */
        CHECK_EQ_U64(rows[i].self, want[i].self);
        CHECK_EQ_U64(rows[i].cum, want[i].cum);
    }
    /* by cum: main 54, b 35, a 22, c 20, r 12, x 4 */
    n = top_rows(t, TOP_SORT_CUM, &rows);
    static const char *const by_cum[] = {"main", "b", "a", "c", "r", "x"};
    for (size_t i = 0; i < 6 && i < n; i++)
        CHECK_STREQ(rows[i].name, by_cum[i]);
    top_free(t);

    /* equal values sort by name, in both orders */
    static const top_input_t tie[] = {{"m;zz", 3}, {"m;aa", 3}, {"m;mm", 3}};
    t = load(tie, 3);
    n = top_rows(t, TOP_SORT_SELF, &rows);
    CHECK_EQ_U64(n, 4);
    if (n == 4) {
        CHECK_STREQ(rows[0].name, "aa");
        CHECK_STREQ(rows[1].name, "mm");
        CHECK_STREQ(rows[2].name, "zz");
        CHECK_STREQ(rows[3].name, "m");
    }
    n = top_rows(t, TOP_SORT_CUM, &rows);
    if (n == 4) {
        CHECK_STREQ(rows[0].name, "m");
        CHECK_STREQ(rows[1].name, "aa");
        CHECK_STREQ(rows[3].name, "zz");
    }
    top_free(t);
}

/* A frame is its whole text: spaces, [module], templates, addresses. */
TEST(top_frame_text)
{
    static const top_input_t in[] = {
        {"_start [leaks_fp];main [leaks_fp];ns::K<int>::f(long) const", 6},
        {"_start [leaks_fp];main;[unknown]@0x7f0012", 2},
        {"_start [leaks_fp];main [leaks_fp];ns::K<int>::f(long) const;ns::K<int>::f(long) const", 1},
    };
    top_t *t = load(in, 3);
    const top_row_t *rows, *r;
    size_t n = top_rows(t, TOP_SORT_SELF, &rows);

    CHECK_EQ_U64(n, 5); /* "main" and "main [leaks_fp]" are two functions */
    CHECK((r = row_of(rows, n, "ns::K<int>::f(long) const")) && r->self == 7 && r->cum == 7);
    CHECK((r = row_of(rows, n, "[unknown]@0x7f0012")) && r->self == 2 && r->cum == 2);
    CHECK((r = row_of(rows, n, "main [leaks_fp]")) && r->self == 0 && r->cum == 7);
    CHECK((r = row_of(rows, n, "main")) && r->self == 0 && r->cum == 2);
    CHECK((r = row_of(rows, n, "_start [leaks_fp]")) && r->self == 0 && r->cum == 9);
    top_free(t);
}

/* A bad stack adds nothing; the total cannot wrap. */
TEST(top_add_rejects)
{
    top_t *t = top_new();
    const top_row_t *rows;
    static const char *const bad[] = {"", "a;;b", ";a", "a;", ";"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(top_add(t, bad[i], strlen(bad[i]), 5) == -EINVAL);
    CHECK_EQ_U64(top_total(t), 0);
    CHECK_EQ_U64(top_rows(t, TOP_SORT_SELF, &rows), 0);
    CHECK(top_add(t, "a;b", 3, UINT64_MAX - 1) == 0);
    CHECK(top_add(t, "a;c", 3, 2) == -EOVERFLOW);
    CHECK(top_add(t, "a;c", 3, 1) == 0);
    CHECK(top_total(t) == UINT64_MAX);
    CHECK_EQ_U64(top_rows(t, TOP_SORT_SELF, &rows), 3);
    /* len bounds the stack: the rest of the string is not read */
    top_free(t);
    t = top_new();
    CHECK(top_add(t, "a;b;c", 3, 4) == 0);
    CHECK_EQ_U64(top_rows(t, TOP_SORT_SELF, &rows), 2);
    top_free(t);
}

static void fill_prof(FILE *f)
{
    CHECK(top_write(f, prof, N_PROF, "samples", 0) == 0);
}

static void fill_prof_limit(FILE *f)
{
    CHECK(top_write(f, prof, N_PROF, "samples", 2) == 0);
}

static void fill_empty(FILE *f)
{
    CHECK(top_write(f, prof + 6, 1, "bytes", 20) == 0); /* only the 0-count line */
}

/* Bytes: B below 1 KiB, then binary prefixes, two decimals half up. */
static const top_input_t bytes_in[] = {
    {"m;b0", 1023},   {"m;b1", 1024},       {"m;b2", 1536},          {"m;b3", 300000},
    {"m;b4", 1048575}, {"m;b5", 5 * 1048576}, {"m;b6", 3221225472ULL}, {"m;b7", 5},
};

static void fill_bytes(FILE *f)
{
    CHECK(top_write(f, bytes_in, 8, "bytes", 0) == 0);
}

static void fill_bytes_raw(FILE *f)
{
    top_opts_t o = {.unit = "bytes", .limit = 3, .sort = TOP_SORT_CUM, .raw = 1};
    top_t *t = load(bytes_in, 8);
    CHECK(top_print(f, t, &o) == 0);
    top_free(t);
}

static void fill_half_up(FILE *f)
{
    /* 1/800 = 0.125% exactly: half up gives 0.13 (printf's %.2f gives 0.12) */
    static const top_input_t in[] = {{"one", 1}, {"rest", 799}};
    CHECK(top_write(f, in, 2, "samples", 0) == 0);
}

static void fill_json(FILE *f)
{
    top_opts_t o = {.unit = "samples", .limit = 3, .sort = TOP_SORT_CUM};
    top_t *t = load(prof, N_PROF);
    CHECK(top_print_json(f, t, &o, "p/cpu.folded", "cpu") == 0);
    top_free(t);
}

TEST(top_table_text)
{
    char *s = mem_text(fill_prof);
    CHECK_STREQ(s, prof_table);
    free(s);

    s = mem_text(fill_prof_limit);
    CHECK_STREQ(s, "total 54 samples in 6 stacks, 6 functions\n"
                   "showing 2 of 6 functions, by self\n"
                   "self   self%    sum% cum    cum%  function\n"
                   "  35  64.81%  64.81%  35  64.81%  b\n"
                   "   8  14.81%  79.63%  12  22.22%  r\n");
    free(s);

    s = mem_text(fill_empty);
    CHECK_STREQ(s, "total 0 bytes in 0 stacks, 0 functions\n"
                   "showing 0 of 0 functions, by self\n"
                   "self   self%    sum% cum    cum%  function\n"
                   "no samples\n");
    free(s);

    s = mem_text(fill_half_up);
    CHECK_STREQ(s, "total 800 samples in 2 stacks, 2 functions\n"
                   "showing 2 of 2 functions, by self\n"
                   "self   self%    sum% cum    cum%  function\n"
                   " 799  99.88%  99.88% 799  99.88%  rest\n"
                   "   1   0.13% 100.00%   1   0.13%  one\n");
    free(s);
}

TEST(top_table_bytes)
{
    /* total 3227820515 = 3.01 GiB (/ 2^30 = 3.0061...); b6 = 3 GiB exactly is
     * 99.7957...% of it; the running sum passes 99.995% at b3 */
    char *s = mem_text(fill_bytes);
    CHECK_STREQ(s, "total 3.01 GiB (3227820515 bytes) in 8 stacks, 9 functions\n"
                   "showing 9 of 9 functions, by self\n"
                   "       self   self%    sum%         cum    cum%  function\n"
                   "   3.00 GiB  99.80%  99.80%    3.00 GiB  99.80%  b6\n"
                   "   5.00 MiB   0.16%  99.96%    5.00 MiB   0.16%  b5\n"
                   "1024.00 KiB   0.03%  99.99% 1024.00 KiB   0.03%  b4\n"
                   " 292.97 KiB   0.01% 100.00%  292.97 KiB   0.01%  b3\n"
                   "   1.50 KiB   0.00% 100.00%    1.50 KiB   0.00%  b2\n"
                   "   1.00 KiB   0.00% 100.00%    1.00 KiB   0.00%  b1\n"
                   "     1023 B   0.00% 100.00%      1023 B   0.00%  b0\n"
                   "        5 B   0.00% 100.00%         5 B   0.00%  b7\n"
                   "        0 B   0.00% 100.00%    3.01 GiB 100.00%  m\n");
    free(s);

    s = mem_text(fill_bytes_raw);
    CHECK_STREQ(s, "total 3227820515 bytes in 8 stacks, 9 functions\n"
                   "showing 3 of 9 functions, by cum\n"
                   "      self   self%    sum%        cum    cum%  function\n"
                   "         0   0.00%   0.00% 3227820515 100.00%  m\n"
                   "3221225472  99.80%  99.80% 3221225472  99.80%  b6\n"
                   "   5242880   0.16%  99.96%    5242880   0.16%  b5\n");
    free(s);
}

TEST(top_json)
{
    char *s = mem_text(fill_json);
    CHECK_STREQ(s, "{\n"
                   "  \"file\": \"p/cpu.folded\",\n"
                   "  \"kind\": \"cpu\",\n"
                   "  \"unit\": \"samples\",\n"
                   "  \"total\": 54,\n"
                   "  \"stacks\": 6,\n"
                   "  \"functions\": 6,\n"
                   "  \"sort\": \"cum\",\n"
                   "  \"rows\": [\n"
                   "    {\"function\": \"main\", \"self\": 0, \"self_pct\": 0.00, \"sum_pct\": 0.00, "
                   "\"cum\": 54, \"cum_pct\": 100.00},\n"
                   "    {\"function\": \"b\", \"self\": 35, \"self_pct\": 64.81, \"sum_pct\": 64.81, "
                   "\"cum\": 35, \"cum_pct\": 64.81},\n"
                   "    {\"function\": \"a\", \"self\": 7, \"self_pct\": 12.96, \"sum_pct\": 77.78, "
                   "\"cum\": 22, \"cum_pct\": 40.74}\n"
                   "  ]\n"
                   "}\n");
    free(s);
}

/* ---- the command ------------------------------------------------------------- */

static char tmp[] = "/tmp/pa-test-top.XXXXXX";
static char out[1 << 16], err[4096];

static void put_file(const char *rel, const char *text, size_t n)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", tmp, rel);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) {
        CHECK(fwrite(text, 1, n, f) == n);
        fclose(f);
    }
}
#define PUT(rel, lit) put_file(rel, lit, sizeof(lit) - 1)
#define STARTS(s, lit) (strncmp(s, lit, sizeof(lit) - 1) == 0)

static void sub_dir(const char *rel)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", tmp, rel);
    CHECK(mkdir(p, 0755) == 0);
}

static void slurp(int fd, char *buf, size_t cap)
{
    ssize_t n = pread(fd, buf, cap - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
}

/* top_main(argv) with stdout and stderr in out and err.  "@" at the start
 * of an argument stands for the temp dir. */
static int top(const char *a0, ...)
{
    char *argv[16], store[16][512];
    int argc = 0, rc, so, se, fo, fe;
    va_list ap;

    argv[argc++] = (char *)"top";
    va_start(ap, a0);
    for (const char *a = a0; a && argc < 15; a = va_arg(ap, const char *)) {
        if (a[0] == '@')
            snprintf(store[argc], sizeof(store[argc]), "%s%s", tmp, a + 1);
        else
            snprintf(store[argc], sizeof(store[argc]), "%s", a);
        argv[argc] = store[argc];
        argc++;
    }
    va_end(ap);
    argv[argc] = NULL;

    fflush(stdout);
    fo = open(tmp, O_TMPFILE | O_RDWR, 0600);
    fe = open(tmp, O_TMPFILE | O_RDWR, 0600);
    so = dup(1);
    se = dup(2);
    dup2(fo, 1);
    dup2(fe, 2);
    rc = top_main(argc, argv);
    fflush(stdout);
    dup2(so, 1);
    dup2(se, 2);
    slurp(fo, out, sizeof(out));
    slurp(fe, err, sizeof(err));
    close(so);
    close(se);
    close(fo);
    close(fe);
    return rc;
}

/* out/err with the temp dir's path replaced by "@" (exact messages). */
static const char *at(const char *s)
{
    static char buf[2][1 << 16];
    static int k;
    char *b = buf[k ^= 1], *w = b;
    size_t tl = strlen(tmp);
    while (*s && w < b + sizeof(buf[0]) - 2) {
        if (strncmp(s, tmp, tl) == 0) {
            *w++ = '@';
            s += tl;
        } else {
            *w++ = *s++;
        }
    }
    *w = '\0';
    return b;
}

TEST(top_cli_picks_file)
{
    /* a process dir with cpu.folded and alloc.folded: cpu wins */
    sub_dir("p");
    PUT("p/cpu.folded", PROF_FOLDED);
    PUT("p/alloc.folded", "main;big 3000\nmain;small 1000\n");
    PUT("p/inuse.folded", "main;small 1000\n");
    CHECK(top("@/p", NULL) == 0);
    {
        char want[1024];
        snprintf(want, sizeof(want), "file: @/p/cpu.folded\n%s", prof_table);
        CHECK_STREQ(at(out), want); /* the file gives what the rows gave */
    }
    CHECK_STREQ(err, "");

    /* --kind alloc: bytes, human-readable; --raw; -n */
    CHECK(top("--kind", "alloc", "@/p", "-n", "2", NULL) == 0);
    CHECK_STREQ(at(out), "file: @/p/alloc.folded\n"
                         "total 3.91 KiB (4000 bytes) in 2 stacks, 3 functions\n"
                         "showing 2 of 3 functions, by self\n"
                         "    self   self%    sum%      cum    cum%  function\n"
                         "2.93 KiB  75.00%  75.00% 2.93 KiB  75.00%  big\n"
                         "  1000 B  25.00% 100.00%   1000 B  25.00%  small\n");
    CHECK(top("--kind=inuse", "--raw", "--sort", "cum", "@/p", NULL) == 0);
    CHECK_STREQ(at(out), "file: @/p/inuse.folded\n"
                         "total 1000 bytes in 1 stacks, 2 functions\n"
                         "showing 2 of 2 functions, by cum\n"
                         "self   self%    sum%  cum    cum%  function\n"
                         "   0   0.00%   0.00% 1000 100.00%  main\n"
                         "1000 100.00% 100.00% 1000 100.00%  small\n");

    /* an empty cpu.folded: alloc */
    sub_dir("e");
    PUT("e/cpu.folded", "");
    PUT("e/alloc.folded", "m;h 5\n");
    CHECK(top("@/e", NULL) == 0);
    CHECK(STARTS(at(out), "file: @/e/alloc.folded\ntotal 5 bytes in 1 stacks,"));

    /* only alloc.folded: alloc */
    sub_dir("q");
    PUT("q/alloc.folded", "m;f 7\n");
    CHECK(top("@/q", "--json", NULL) == 0);
    CHECK_STREQ(at(out), "{\n  \"file\": \"@/q/alloc.folded\",\n  \"kind\": \"alloc\",\n"
                         "  \"unit\": \"bytes\",\n  \"total\": 7,\n  \"stacks\": 1,\n"
                         "  \"functions\": 2,\n  \"sort\": \"self\",\n  \"rows\": [\n"
                         "    {\"function\": \"f\", \"self\": 7, \"self_pct\": 100.00, "
                         "\"sum_pct\": 100.00, \"cum\": 7, \"cum_pct\": 100.00},\n"
                         "    {\"function\": \"m\", \"self\": 0, \"self_pct\": 0.00, "
                         "\"sum_pct\": 100.00, \"cum\": 7, \"cum_pct\": 100.00}\n  ]\n}\n");

    /* a reports dir with one process under it: that process */
    sub_dir("out1");
    sub_dir("out1/4242");
    PUT("out1/index.json", "{}\n");
    PUT("out1/4242/alloc.folded", "m;g 9\n");
    CHECK(top("@/out1", "-n", "1", NULL) == 0);
    CHECK_STREQ(at(out), "file: @/out1/4242/alloc.folded\n"
                         "total 9 bytes in 1 stacks, 2 functions\n"
                         "showing 1 of 2 functions, by self\n"
                         "self   self%    sum% cum    cum%  function\n"
                         " 9 B 100.00% 100.00% 9 B 100.00%  g\n");

    /* a FILE: the kind from its name, else samples (kind null) unless --kind */
    PUT("other.txt", "m;g 2048\n");
    CHECK(top("@/other.txt", "-n", "0", "--json", NULL) == 0);
    CHECK(strstr(out, "\"kind\": null,\n  \"unit\": \"samples\",\n  \"total\": 2048,") != NULL);
    CHECK(top("@/other.txt", "--kind", "inuse", NULL) == 0);
    CHECK(strstr(out, "\ntotal 2.00 KiB (2048 bytes) in 1 stacks, 2 functions\n") != NULL);
    CHECK(top("@/p/inuse.folded", NULL) == 0);
    CHECK(strstr(out, "\ntotal 1000 bytes in 1 stacks") != NULL);

    /* empty file: the heads and "no samples", exit 0; blank lines and CRLF */
    PUT("empty.folded", "");
    CHECK(top("@/empty.folded", NULL) == 0);
    CHECK_STREQ(at(out), "file: @/empty.folded\ntotal 0 samples in 0 stacks, 0 functions\n"
                         "showing 0 of 0 functions, by self\n"
                         "self   self%    sum% cum    cum%  function\nno samples\n");
    PUT("crlf.folded", "\na;b 3\r\n\r\na 1\n");
    CHECK(top("@/crlf.folded", "--raw", NULL) == 0);
    CHECK(strstr(out, "\ntotal 4 samples in 2 stacks, 2 functions\n") != NULL);
    CHECK(strstr(out, "   3  75.00%  75.00%   3  75.00%  b\n") != NULL);
}

/* Malformed input: one line naming file:line, exit 1, nothing on stdout. */
TEST(top_cli_malformed)
{
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"a;b 1\na;b\n", "@/bad.folded:2: expected 'STACK COUNT'"},
        {"a;b 1\n\na;b 12x\n", "@/bad.folded:3: count '12x' is not a whole number below 2^64"},
        {"a 18446744073709551616\n",
         "@/bad.folded:1: count '18446744073709551616' is not a whole number below 2^64"},
        {"a -1\n", "@/bad.folded:1: count '-1' is not a whole number below 2^64"},
        {"a 1 \n", "@/bad.folded:1: count '' is not a whole number below 2^64"},
        {"a;;b 1\n", "@/bad.folded:1: empty frame (';;', or ';' at an end of the stack)"},
        {"a; 1\n", "@/bad.folded:1: empty frame (';;', or ';' at an end of the stack)"},
        {" 5\n", "@/bad.folded:1: no stack before the count"},
        {"a 18446744073709551615\nb 1\n", "@/bad.folded:2: the counts add up past 2^64-1"},
        {"a\0b 1\n", "@/bad.folded:1: NUL byte in the line"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[256];
        size_t n = strlen(bad[i].text);
        if (i == sizeof(bad) / sizeof(bad[0]) - 1)
            n = 6; /* the one with a NUL inside */
        put_file("bad.folded", bad[i].text, n);
        snprintf(want, sizeof(want), "perfagent top: %s\n", bad[i].msg);
        int rc = top("@/bad.folded", NULL);
        CHECK_EQ_U64(rc, 1);
        CHECK_STREQ(at(err), want);
        CHECK_STREQ(out, "");
        if (rc != 1 || strcmp(at(err), want) != 0)
            printf("  (case %zu)\n", i);
    }
}

/* Usage errors exit 2 with one line; runtime errors exit 1. */
TEST(top_cli_errors)
{
    static const char see[] = " (see perfagent top --help)\n";
    char want[256];
#define USAGE(msg, ...)                                                                      \
    do {                                                                                     \
        snprintf(want, sizeof(want), "perfagent top: %s%s", msg, see);                       \
        CHECK_EQ_U64(top(__VA_ARGS__, NULL), 2);                                             \
        CHECK_STREQ(err, want);                                                              \
        CHECK_STREQ(out, "");                                                                \
    } while (0)
    USAGE("needs a DIR or FILE", "-n", "3");
    USAGE("unknown option '--bogus'", "--bogus", "@/p");
    USAGE("unknown option '-x'", "-x", "@/p");
    USAGE("option '-n' needs an argument", "@/p", "-n");
    USAGE("option '--sort' needs an argument", "@/p", "--sort");
    USAGE("-n '5k': expected a whole number (0 = all)", "-n", "5k", "@/p");
    USAGE("-n '': expected a whole number (0 = all)", "-n", "", "@/p");
    USAGE("--sort 'flat': expected self or cum", "--sort", "flat", "@/p");
    USAGE("--kind 'heap': expected cpu, alloc or inuse", "--kind", "heap", "@/p");
    USAGE("one DIR or FILE, not also 'extra'", "@/p", "extra");
#undef USAGE
    CHECK_EQ_U64(top(NULL), 2);
    CHECK_STREQ(err, "perfagent top: needs a DIR or FILE (see perfagent top --help)\n");

    CHECK_EQ_U64(top("--help", NULL), 0);
    CHECK(STARTS(out, "usage: perfagent top [--kind cpu|alloc|inuse] [-n N]"));
    CHECK_STREQ(err, "");

    CHECK_EQ_U64(top("@/nothing-here", NULL), 1);
    CHECK_STREQ(at(err), "perfagent top: @/nothing-here: No such file or directory\n");
    CHECK_STREQ(out, "");
    /* --kind names a file the process dir lacks */
    CHECK_EQ_U64(top("--kind", "cpu", "@/q", NULL), 1);
    CHECK_STREQ(at(err), "perfagent top: @/q/cpu.folded: No such file or directory\n");
    /* no folded file anywhere */
    sub_dir("none");
    sub_dir("none/1");
    CHECK_EQ_U64(top("@/none", NULL), 1);
    CHECK_STREQ(at(err), "perfagent top: @/none: no cpu.folded, alloc.folded or inuse.folded in "
                         "it or in a process directory under it\n");
    /* two processes: no guessing */
    sub_dir("out2");
    sub_dir("out2/20");
    sub_dir("out2/10");
    PUT("out2/20/alloc.folded", "m 1\n");
    PUT("out2/10/cpu.folded", "m 1\n");
    CHECK_EQ_U64(top("@/out2", NULL), 1);
    CHECK_STREQ(at(err), "perfagent top: @/out2 holds 2 processes (10, 20): name one, e.g. "
                         "@/out2/10\n");
    CHECK_STREQ(out, "");
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(p);
}

int main(int argc, char **argv)
{
    /* the e2e driver: `test_top top ARGS` = `perfagent top ARGS` */
    if (argc > 1 && strcmp(argv[1], "top") == 0)
        return top_main(argc - 1, argv + 1);

    if (!mkdtemp(tmp)) {
        printf("FAIL test_top: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    RUN(top_self_cum_values);
    RUN(top_frame_text);
    RUN(top_add_rejects);
    RUN(top_table_text);
    RUN(top_table_bytes);
    RUN(top_json);
    RUN(top_cli_picks_file);
    RUN(top_cli_malformed);
    RUN(top_cli_errors);
    nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    CHECK_DONE();
}
