/*
 * test_reports.c — the report files of a session whose stacks point into
 * this very program (real symbols through libdwfl), and after a fault; and
 * the live map (livemap.c) on its own: reuse, removal with backward shift,
 * growth, the entry cap and early frees.
 */
#include "check.h"
#include "streams.h"

/* ---- reports with real symbols ---------------------------------------------- */

/* Two frames of this very binary: return addresses inside pa_test_leaf and
 * pa_test_parent, symbolized through symtab like an agent's stack. */
#ifdef __clang__
#define NOCLONE
#else
#define NOCLONE __attribute__((noclone))
#endif
__attribute__((noinline)) NOCLONE uint64_t pa_test_ra(void);
__attribute__((noinline)) NOCLONE void pa_test_leaf(uint64_t *out);
__attribute__((noinline)) NOCLONE void pa_test_parent(uint64_t *out);

/* The source line of each pa_test_ra() call, taken where the call is written:
 * __LINE__ inside a macro is the line the macro is used on, so this stays
 * right whatever is edited above. */
static int leaf_line, parent_line;
#define RA_AT(dst, line_var) ((line_var) = __LINE__, (dst) = pa_test_ra())

uint64_t pa_test_ra(void)
{
    uint64_t r = (uint64_t)(uintptr_t)__builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
    return r;
}

void pa_test_leaf(uint64_t *out)
{
    RA_AT(out[0], leaf_line);
    __asm__ volatile("" ::: "memory");
}

void pa_test_parent(uint64_t *out)
{
    pa_test_leaf(out);
    RA_AT(out[1], parent_line);
    __asm__ volatile("" ::: "memory");
}

/* The one line of text (up to '}' in JSON, '\n' in text) that starts at the
 * first `start` in hay contains `want`. */
static int line_has(const char *hay, const char *start, char end, const char *want)
{
    const char *p = strstr(hay, start), *e;
    if (!p || !(e = strchr(p + 1, end)))
        return 0;
    const char *w = strstr(p, want);
    return w && w + strlen(want) <= e + 1;
}

TEST(test_reports)
{
    buf_t b = {0}, r = {0};
    char d[] = "/tmp/pa-decode-XXXXXX";
    uint64_t fr[2];
    int rc;

    pa_test_parent(fr);
    memset(&mod, 0, sizeof(mod));
    dl_iterate_phdr(phdr_cb, &mod);
    CHECK(mod.n_ranges > 0);
    use_real_module = 1;
    memset(stack_frames, 0, sizeof(stack_frames));
    stack_frames[1][0] = fr[0];
    stack_frames[1][1] = fr[1];
    stack_frames[2][0] = 0x10; /* in no module */
    stack_frames[2][1] = 0x20;
    put_header(&b, 1, 2);
    use_real_module = 0;
    row_alloc(&r, 0x1000, 100, 1, 10);
    row_alloc(&r, 0x2000, 28, 1, 11);
    row_alloc(&r, 0x3000, 500, 2, 12);
    row_alloc(&r, 0x4000, 9, 0, 13);
    row_free(&r, 0x2000, 14);
    put_heap(&b, 1, 1, &r, 5);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    CHECK_EQ_U64(session_end(s), 0);
    CHECK(mkdtemp(d) != NULL);
    CHECK_EQ_U64(session_write_reports(s, d), 0);

    char *json = slurp(d, "leaks.json"), *txt = slurp(d, "leaks.txt");
    char *alloc = slurp(d, "alloc.folded"), *inuse = slurp(d, "inuse.folded");
    char *sum = slurp(d, "summary.txt");
    CHECK(json && txt && alloc && inuse && sum);
    CHECK(contains(json, "\"pid\": 4242"));
    CHECK(contains(json, "\"mode\": \"exact\""));
    CHECK(contains(json, "\"total\": {\"bytes\": 609, \"objects\": 3}") ||
          contains(json, "\"bytes\": 609"));
    CHECK(contains(json, "\"function\": \"pa_test_leaf\""));
    CHECK(contains(json, "\"function\": \"pa_test_parent\""));
    CHECK(contains(json, "test_reports.c"));
    /* Exact file:line of both frames, in leaks.json and leaks.txt. */
    char want[128];
    CHECK(leaf_line > 0 && parent_line > leaf_line);
    snprintf(want, sizeof(want), "/tests/unit/test_reports.c\", \"line\": %d, \"module\"",
             leaf_line);
    CHECK(line_has(json, "\"function\": \"pa_test_leaf\"", '}', want));
    snprintf(want, sizeof(want), "/tests/unit/test_reports.c\", \"line\": %d, \"module\"",
             parent_line);
    CHECK(line_has(json, "\"function\": \"pa_test_parent\"", '}', want));
    snprintf(want, sizeof(want), "/tests/unit/test_reports.c:%d) [test_reports]", leaf_line);
    CHECK(line_has(txt, "\n    pa_test_leaf (", '\n', want));
    snprintf(want, sizeof(want), "/tests/unit/test_reports.c:%d) [test_reports]", parent_line);
    CHECK(line_has(txt, "\n    pa_test_parent (", '\n', want));
    char addr[40];
    snprintf(addr, sizeof(addr), "\"address\": \"0x%" PRIx64 "\"", fr[0]);
    CHECK(contains(json, addr));
    /* bytes desc: the 500-byte stack first, then 100, then 9 */
    const char *p500 = strstr(json, "\"bytes\": 500"), *p100 = strstr(json, "\"bytes\": 100");
    const char *p9 = strstr(json, "\"bytes\": 9,");
    CHECK(p500 && p100 && p9 && p500 < p100 && p100 < p9);
    CHECK(contains(txt, "#1: 500 bytes in 1 objects"));
    CHECK(contains(txt, "#2: 100 bytes in 1 objects"));
    CHECK(contains(txt, "\n    pa_test_leaf (/"));
    CHECK(contains(txt, "/test_reports.c:"));
    CHECK(contains(txt, "\n    [unknown] (0x10)\n"));
    if (getenv("PA_KEEP"))
        printf("%s\n%s\n%s\n%s\n%s\n", json, txt, alloc, inuse, sum);
    CHECK(contains(inuse, "pa_test_parent;pa_test_leaf 100\n"));
    CHECK(contains(alloc, "pa_test_parent;pa_test_leaf 128\n"));
    CHECK(contains(alloc, "[unknown];[unknown] 500\n"));
    CHECK(contains(alloc, "[no stack] 9\n"));
    CHECK(contains(sum, "pid:       4242"));
    CHECK(contains(sum, "cut: no Goodbye"));
    CHECK(contains(sum, "live at end (leaked): 609 bytes in 3 objects"));
    CHECK(!contains(sum, "numbers are incomplete"));
    CHECK_STREQ(session_summary(s), sum);
    /* folded lines are sorted */
    CHECK(strstr(alloc, "[no stack]") < strstr(alloc, "[unknown]"));
    free(json);
    free(txt);
    free(alloc);
    free(inuse);
    free(sum);
    rm_dir(d);
    session_free(s);
    memset(stack_frames, 0, sizeof(stack_frames));
    free(b.p);
    free(r.p);
}

/* Reports after a fault and without a Hello still get written. */
TEST(test_reports_after_fault)
{
    buf_t b = {0};
    char d[] = "/tmp/pa-decode-XXXXXX";
    int rc;

    put(&b, "garbage!", 8);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, -EPROTO);
    CHECK(mkdtemp(d) != NULL);
    CHECK_EQ_U64(session_write_reports(s, d), 0);
    char *sum = slurp(d, "summary.txt"), *json = slurp(d, "leaks.json");
    CHECK(contains(sum, "no Hello received"));
    CHECK(contains(sum, "FAULT: stream offset 0: bad magic"));
    CHECK(contains(json, "\"exe\": null"));
    free(sum);
    free(json);
    rm_dir(d);
    session_free(s);
    free(b.p);
}

/* ---- livemap ------------------------------------------------------------------ */

TEST(test_livemap)
{
    enum { N = 20000 };
    livemap_t *m = livemap_new(0);
    static uint8_t present[N];
    static uint64_t ticks[N];
    size_t count = 0;
    uint64_t x = 88172645463325252ull;

    memset(present, 0, sizeof(present));
    for (int op = 0; op < 400000; op++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t i = (size_t)(x % N);
        uint64_t addr = 0x7f0000000000ull + 16 * i;
        live_entry_t *e = livemap_find(m, addr);
        CHECK((e != NULL) == present[i]);
        if (e) {
            CHECK_EQ_U64(e->ticks, ticks[i]);
            livemap_remove(m, e);
            present[i] = 0;
            count--;
        } else {
            live_entry_t ne = {.addr = addr, .ticks = x, .weight = 1, .stack_id = 1, .objects = 1};
            CHECK_EQ_U64(livemap_insert(m, &ne), 0);
            ticks[i] = x;
            present[i] = 1;
            count++;
        }
    }
    CHECK_EQ_U64(livemap_count(m), count);
    size_t pos = 0, seen = 0;
    for (const live_entry_t *e; (e = livemap_next(m, &pos));)
        seen++;
    CHECK_EQ_U64(seen, count);
    for (size_t i = 0; i < N; i++)
        CHECK((livemap_find(m, 0x7f0000000000ull + 16 * i) != NULL) == present[i]);
    livemap_free(m);

    /* Big enough for the mmap'ed (huge page) table path, grown twice. */
    m = livemap_new(0);
    for (uint64_t a = 1; a <= 300000; a++) {
        live_entry_t ne = {.addr = a * 48, .ticks = a};
        CHECK_EQ_U64(livemap_insert(m, &ne), 0);
    }
    for (uint64_t a = 1; a <= 300000; a++) {
        live_entry_t *e = livemap_find(m, a * 48);
        CHECK(e && e->ticks == a);
        if (e && a % 2)
            livemap_remove(m, e);
    }
    CHECK_EQ_U64(livemap_count(m), 150000);
    livemap_free(m);

    m = livemap_new(3);
    for (uint64_t a = 1; a <= 5; a++) {
        live_entry_t ne = {.addr = a * 16};
        int rc = livemap_insert(m, &ne);
        CHECK_EQ_U64(rc, a <= 3 ? 0 : -ENOSPC);
    }
    CHECK_EQ_U64(livemap_overflows(m), 2);
    livemap_free(NULL);
    livemap_free(m);
}

int main(void)
{
    RUN(test_reports);
    RUN(test_reports_after_fault);
    RUN(test_livemap);
    CHECK_DONE();
}
