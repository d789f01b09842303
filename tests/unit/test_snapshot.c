/*
 * test_snapshot.c — snapshot directories from a hand-made stream with a
 * SnapshotMarker between two heap batches (report_snapshot.c, session.c's
 * copy of the live set at the marker), read back with jsonread.c; and the
 * suppression patterns (suppress.c).
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>

#include "check.h"
#include "jsonread.h"
#include "streams.h"
#include "suppress.h"

static char tmp[] = "/tmp/pa-test-snapshot.XXXXXX";

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static void put_marker(buf_t *b, uint64_t seq, uint64_t id, const char *label, uint64_t ticks)
{
    Perfagent__SnapshotMarker m = PERFAGENT__SNAPSHOT_MARKER__INIT;
    m.id = id;
    m.label = (char *)label;
    m.ticks = ticks;
    Perfagent__Record r = PERFAGENT__RECORD__INIT, *rp = &r;
    r.body_case = PERFAGENT__RECORD__BODY_SNAPSHOT;
    r.snapshot = &m;
    put_frame(b, seq, &rp, 1);
}

/* "kind time total_bytes total_objects | bytes objects of each stack" */
static void heap_json_line(const char *dir, char *out, size_t len)
{
    char path[4200], err[256];
    jr_t d;
    snprintf(path, sizeof(path), "%s/heap.json", dir);
    if (jr_read_file(&d, path, err, sizeof(err)) < 0) {
        snprintf(out, len, "%s", err);
        return;
    }
    const jr_t *t = jr_get(&d, "time"), *tot = jr_get(&d, "total"), *st = jr_get(&d, "stacks");
    uint64_t b = 0, o = 0;
    jr_u64(jr_get(tot, "bytes"), &b);
    jr_u64(jr_get(tot, "objects"), &o);
    int n = snprintf(out, len, "%s %s %" PRIu64 " %" PRIu64 " |", jr_str(jr_get(&d, "kind")),
                     t && t->kind == JR_NUM ? t->s : "null", b, o);
    for (size_t i = 0; st && i < st->n && n > 0 && (size_t)n < len; i++) {
        jr_u64(jr_get(&st->items[i], "bytes"), &b);
        jr_u64(jr_get(&st->items[i], "objects"), &o);
        n += snprintf(out + n, len - (size_t)n, " %" PRIu64 " %" PRIu64, b, o);
    }
    jr_free(&d);
}

/* A marker 2 ms after the start (mono ticks): 150 B live in stacks 1 and 2
 * (stack 2 allocated 80 B, 30 B of it freed); then stack 1 allocates 100
 * more and stack 2's block is freed. */
TEST(snapshot_marker_and_exit)
{
    buf_t b = {0}, r1 = {0}, r2 = {0};
    char dir[4200], sub[4300], got[512];
    put_header(&b, 1, 2);
    row_alloc(&r1, 0x1000, 100, 1, 6000);
    row_alloc(&r1, 0x2000, 50, 2, 6001);
    row_alloc(&r1, 0x4000, 30, 2, 6002); /* freed before the marker */
    row_free(&r1, 0x4000, 6003);
    put_heap(&b, 1, 7, &r1, 4);
    put_marker(&b, 2, 7, "mid", 5000 + 2000000);
    row_alloc(&r2, 0x3000, 100, 1, 2100000);
    row_free(&r2, 0x2000, 2100001);
    put_heap(&b, 3, 7, &r2, 2);
    put_stats_goodbye(&b, 4, 0);

    int rc = -1;
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK(rc == 0);
    CHECK(session_end(s) == 0);
    snprintf(dir, sizeof(dir), "%s/p", tmp);
    CHECK(session_write_reports(s, dir) == 0);

    snprintf(sub, sizeof(sub), "%s/snapshots/001", dir);
    heap_json_line(sub, got, sizeof(got));
    CHECK_STREQ(got, "marker 0.002000 150 2 | 100 1 50 1");
    snprintf(sub, sizeof(sub), "%s/snapshots/002", dir);
    heap_json_line(sub, got, sizeof(got));
    CHECK_STREQ(got, "exit 1.500000 200 2 | 200 2");
    char *f = slurp(sub, "inuse.folded");
    CHECK(f && strstr(f, " 200\n") && !strstr(f, " 50\n"));
    free(f);
    snprintf(sub, sizeof(sub), "%s/snapshots/001", dir);
    f = slurp(sub, "inuse.folded");
    CHECK(f && strstr(f, " 100\n") && strstr(f, " 50\n"));
    free(f);
    snprintf(sub, sizeof(sub), "%s/snapshots/003", dir);
    CHECK(access(sub, F_OK) != 0);
    session_free(s);
    free(b.p);
    free(r1.p);
    free(r2.p);
}

TEST(suppress_patterns)
{
    CHECK(suppress_match("make_ints", "wl::make_ints(unsigned long)") == 1);
    CHECK(suppress_match("^make_ints", "wl::make_ints(unsigned long)") == 0);
    CHECK(suppress_match("^wl::*ints(", "wl::make_ints(unsigned long)") == 1);
    CHECK(suppress_match("long)$", "wl::make_ints(unsigned long)") == 1);
    CHECK(suppress_match("long$", "wl::make_ints(unsigned long)") == 0);
    CHECK(suppress_match("a*b*c", "xaYbZc!") == 1);
    CHECK(suppress_match("a*b*c", "xaYcZb") == 0);
    CHECK(suppress_match("^_dl_init$", "_dl_init") == 1);
    CHECK(suppress_match("^_dl_init$", "_dl_init_paths") == 0);

    supp_t s = {0};
    char err[128] = "";
    CHECK(suppress_parse(&s, "# c\n\n  leak:foo  \nleak:b*r\r\n", "f", err, sizeof(err)) == 0);
    CHECK(s.n == 2 && !strcmp(s.v[0].pattern, "foo") && !strcmp(s.v[1].pattern, "b*r"));
    CHECK(suppress_parse(&s, "leak:x\nleak:\n", "f", err, sizeof(err)) == -EINVAL);
    CHECK_STREQ(err, "line 2: expected 'leak:PATTERN'");
    CHECK(s.n == 2); /* all or nothing */
    suppress_free(&s);
}

TEST(jsonread_values)
{
    jr_t d;
    char err[128];
    uint64_t v = 0;
    const char *t = "{\"a\": [1, 18446744073709551615, -2, 1.5], \"s\": \"x\\u00e9\\n\", \"n\": null}";
    CHECK(jr_parse(&d, t, strlen(t), err, sizeof(err)) == 0);
    const jr_t *a = jr_get(&d, "a");
    CHECK(a && a->n == 4);
    CHECK(a && jr_u64(&a->items[1], &v) == 0 && v == UINT64_MAX);
    CHECK(a && jr_u64(&a->items[2], &v) == -EINVAL && jr_u64(&a->items[3], &v) == -EINVAL);
    CHECK_STREQ(jr_str(jr_get(&d, "s")), "x\xc3\xa9\n");
    CHECK(jr_get(&d, "n") && jr_get(&d, "n")->kind == JR_NULL);
    jr_free(&d);
    CHECK(jr_parse(&d, "{\"a\": [1,}", 10, err, sizeof(err)) == -EINVAL);
    CHECK_STREQ(err, "offset 9: unexpected character");
    char deep[200];
    memset(deep, '[', sizeof(deep));
    CHECK(jr_parse(&d, deep, sizeof(deep), err, sizeof(err)) == -EINVAL);
    CHECK(contains(err, "nested too deep"));
}

int main(void)
{
    if (!mkdtemp(tmp)) {
        printf("FAIL test_snapshot: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    RUN(snapshot_marker_and_exit);
    RUN(suppress_patterns);
    RUN(jsonread_values);
    nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    CHECK_DONE();
}
