/*
 * test_pprof.c — collector/pprof.c: a profile built from known data is
 * written gzipped, gunzipped here with zlib, decoded with the generated
 * protobuf-c code (build/gen/profile.pb-c.h), and every table is compared
 * with values worked out by hand: the string table in interning order, the
 * functions (deduplicated by name and file), the locations (deduplicated by
 * address, inlined frames as several Lines innermost first), the mappings
 * and their has_* flags, the samples' location ids, values and labels.
 * Also: heap sample types, the rejected inputs, repeatable output, and a
 * profile large enough to grow every index and to deflate in several
 * output blocks.
 *
 * Also the driver of tests/e2e/pprof.sh, which reads the known profile with
 * `go tool pprof`: `test_pprof write FILE` writes it and exits.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "pprof.h"
#include "profile.pb-c.h"

/* ---- the known profile ---------------------------------------------------- */

static const pprof_mapping_t maps[] = {
    {0x400000, 0x500000, 0, "/usr/bin/app", "abc123"},
    {0x7f0000000000, 0x7f0000100000, 0x1000, "/lib/x86_64-linux-gnu/libc.so.6", NULL},
    {0x7f1000000000, 0x7f1000010000, 0, "/usr/lib/libstripped.so", "ffee"},
};

#define F(fn, file, line, addr, map) {fn, file, line, addr, map, 0}
#define FI(fn, file, line, addr, map) {fn, file, line, addr, map, 1}
#define MAIN F("main", "main.c", 40, 0x401200, 1)
/* helper is inlined into caller_b at 0x401100: one location, two Lines */
#define INL FI("helper", "hot.c", 20, 0x401100, 1), F("caller_b", "main.c", 30, 0x401100, 1)

static const pprof_frame_t st1[] = {F("leaf_a", "hot.c", 10, 0x401000, 1), INL, MAIN};
static const pprof_frame_t st2[] = {INL, MAIN};
/* leaf_a again at another address: a location of its own, same function */
static const pprof_frame_t st3[] = {F("memcpy", NULL, 0, 0x7f0000002000, 2),
                                    F("leaf_a", "hot.c", 11, 0x401010, 1), MAIN};
/* unsymbolized: a location without Line */
static const pprof_frame_t st4[] = {F(NULL, NULL, 0, 0x7f1000000500, 3), MAIN};
/* same name, two files: two functions */
static const pprof_frame_t st6[] = {F("static_fn", "a.c", 5, 0x401300, 1),
                                    F("static_fn", "b.c", 7, 0x401400, 1), MAIN};

#define PER 10000000 /* 100 Hz */
static const int64_t v1[] = {3, 3 * PER}, v2[] = {2, 2 * PER}, v3[] = {1, PER}, v4[] = {4, 4 * PER},
                     v5[] = {5, 5 * PER}, v6[] = {1, PER};
static const pprof_label_t th_main[] = {{"thread", "main", 0, NULL}};
static const pprof_label_t th_w1[] = {{"thread", "worker-1", 0, NULL}};
static const pprof_label_t th_num[] = {{"thread", "main", 0, NULL}, {"bytes", NULL, 4096, "bytes"}};

#define N(a) (sizeof(a) / sizeof((a)[0]))
static const pprof_sample_t samples[] = {
    {st1, N(st1), v1, th_main, 1}, {st2, N(st2), v2, th_w1, 1},  {st3, N(st3), v3, th_w1, 1},
    {st4, N(st4), v4, th_main, 1}, {st1, N(st1), v5, th_w1, 1},  {st6, N(st6), v6, th_num, 2},
};
static const char *const comments[] = {"perfagent test"};

static pprof_profile_t known(void)
{
    pprof_profile_t p = {0};
    pprof_set_cpu(&p, PER);
    p.time_nanos = 1700000000123456789;
    p.duration_nanos = 2500000000;
    p.mappings = maps;
    p.n_mappings = N(maps);
    p.samples = samples;
    p.n_samples = N(samples);
    p.comments = comments;
    p.n_comments = 1;
    return p;
}

/* ---- reading it back ------------------------------------------------------- */

/* The whole content of a gzip file, gunzipped (malloc'd), or NULL. */
static uint8_t *gunzip_file(const char *path, size_t *len)
{
    gzFile gz = gzopen(path, "rb");
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    int r;
    if (!gz || !buf)
        goto fail;
    while ((r = gzread(gz, buf + n, (unsigned)(cap - n))) > 0) {
        n += (size_t)r;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb)
                goto fail;
            buf = nb;
        }
    }
    if (r < 0 || gzdirect(gz))
        goto fail; /* an error, or not gzip at all (read through as it is) */
    gzclose(gz);
    *len = n;
    return buf;
fail:
    if (gz)
        gzclose(gz);
    free(buf);
    return NULL;
}

static char tmpdir[] = "/tmp/test_pprof.XXXXXX";

static char *tmp_path(const char *name)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    return path;
}

/* Writes p through pprof_write_file and decodes it again, or NULL. */
static Perftools__Profiles__Profile *roundtrip(const pprof_profile_t *p, const char *name)
{
    int rc = pprof_write_file(tmp_path(name), p);
    CHECK_EQ_U64(rc, 0);
    if (rc)
        return NULL;
    size_t len = 0;
    uint8_t *raw = gunzip_file(tmp_path(name), &len);
    CHECK(raw != NULL);
    if (!raw)
        return NULL;
    Perftools__Profiles__Profile *pr = perftools__profiles__profile__unpack(NULL, len, raw);
    CHECK(pr != NULL);
    free(raw);
    return pr;
}

static const char *str(const Perftools__Profiles__Profile *pr, int64_t i)
{
    return i >= 0 && (size_t)i < pr->n_string_table ? pr->string_table[i] : "(out of range)";
}

/* "name@file:line,name@file:line" of location id (1-based), "" when none */
static const char *loc_text(const Perftools__Profiles__Profile *pr, uint64_t id)
{
    static char buf[512];
    buf[0] = 0;
    if (id == 0 || id > pr->n_location)
        return "(bad id)";
    const Perftools__Profiles__Location *l = pr->location[id - 1];
    for (size_t i = 0; i < l->n_line; i++) {
        uint64_t f = l->line[i]->function_id;
        const char *nm = "(bad function)", *file = "";
        if (f >= 1 && f <= pr->n_function) {
            nm = str(pr, pr->function[f - 1]->name);
            file = str(pr, pr->function[f - 1]->filename);
        }
        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s@%s:%lld", i ? "," : "", nm,
                 file, (long long)l->line[i]->line);
    }
    return buf;
}

/* ---- tests ----------------------------------------------------------------- */

TEST(header_and_strings)
{
    pprof_profile_t p = known();
    Perftools__Profiles__Profile *pr = roundtrip(&p, "known.pb.gz");
    if (!pr)
        return;
    /* interning order: types, period type, mappings, frames and labels in
     * sample order, comments; each string once ("main" is a function and a
     * thread name, "bytes" a label key and its unit) */
    static const char *const want[] = {
        "",         "samples",  "count",        "cpu",   "nanoseconds",
        "/usr/bin/app", "abc123", "/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/libstripped.so",
        "ffee",     "leaf_a",   "hot.c",        "helper", "caller_b",
        "main.c",   "main",     "thread",       "worker-1", "memcpy",
        "static_fn", "a.c",     "b.c",          "bytes", "perfagent test",
    };
    CHECK_EQ_U64(pr->n_string_table, N(want));
    for (size_t i = 0; i < N(want) && i < pr->n_string_table; i++)
        CHECK_STREQ(pr->string_table[i], want[i]);
    CHECK_EQ_U64(pr->n_sample_type, 2);
    if (pr->n_sample_type == 2) {
        CHECK_STREQ(str(pr, pr->sample_type[0]->type), "samples");
        CHECK_STREQ(str(pr, pr->sample_type[0]->unit), "count");
        CHECK_STREQ(str(pr, pr->sample_type[1]->type), "cpu");
        CHECK_STREQ(str(pr, pr->sample_type[1]->unit), "nanoseconds");
    }
    CHECK(pr->period_type != NULL);
    if (pr->period_type) {
        CHECK_STREQ(str(pr, pr->period_type->type), "cpu");
        CHECK_STREQ(str(pr, pr->period_type->unit), "nanoseconds");
    }
    CHECK_EQ_U64(pr->period, PER);
    CHECK_EQ_U64(pr->time_nanos, 1700000000123456789ull);
    CHECK_EQ_U64(pr->duration_nanos, 2500000000ull);
    CHECK_EQ_U64(pr->default_sample_type, 0);
    CHECK_EQ_U64(pr->n_comment, 1);
    if (pr->n_comment == 1)
        CHECK_STREQ(str(pr, pr->comment[0]), "perfagent test");
    perftools__profiles__profile__free_unpacked(pr, NULL);
}

TEST(functions_mappings_locations)
{
    pprof_profile_t p = known();
    Perftools__Profiles__Profile *pr = roundtrip(&p, "known.pb.gz");
    if (!pr)
        return;
    /* functions: by (name, file), ids from 1 in first-seen order */
    static const struct { const char *name, *file; } fw[] = {
        {"leaf_a", "hot.c"}, {"helper", "hot.c"}, {"caller_b", "main.c"}, {"main", "main.c"},
        {"memcpy", ""},      {"static_fn", "a.c"}, {"static_fn", "b.c"},
    };
    CHECK_EQ_U64(pr->n_function, N(fw));
    for (size_t i = 0; i < N(fw) && i < pr->n_function; i++) {
        const Perftools__Profiles__Function *f = pr->function[i];
        CHECK_EQ_U64(f->id, i + 1);
        CHECK_STREQ(str(pr, f->name), fw[i].name);
        CHECK_STREQ(str(pr, f->system_name), fw[i].name);
        CHECK_STREQ(str(pr, f->filename), fw[i].file);
    }
    /* mappings: in the caller's order, ids from 1; has_* from their
     * locations (libstripped has one without a Line: no functions) */
    static const struct { int fn, files, lines, inl; } mf[] = {{1, 1, 1, 1}, {1, 0, 0, 0}, {0, 0, 0, 0}};
    CHECK_EQ_U64(pr->n_mapping, 3);
    for (size_t i = 0; i < 3 && i < pr->n_mapping; i++) {
        const Perftools__Profiles__Mapping *m = pr->mapping[i];
        CHECK_EQ_U64(m->id, i + 1);
        CHECK_EQ_U64(m->memory_start, maps[i].start);
        CHECK_EQ_U64(m->memory_limit, maps[i].limit);
        CHECK_EQ_U64(m->file_offset, maps[i].offset);
        CHECK_STREQ(str(pr, m->filename), maps[i].file);
        CHECK_STREQ(str(pr, m->build_id), maps[i].build_id ? maps[i].build_id : "");
        CHECK_EQ_U64(m->has_functions, mf[i].fn);
        CHECK_EQ_U64(m->has_filenames, mf[i].files);
        CHECK_EQ_U64(m->has_line_numbers, mf[i].lines);
        CHECK_EQ_U64(m->has_inline_frames, mf[i].inl);
    }
    /* locations: one per physical frame, first-seen order */
    static const struct { uint64_t map, addr; const char *lines; } lw[] = {
        {1, 0x401000, "leaf_a@hot.c:10"},
        {1, 0x401100, "helper@hot.c:20,caller_b@main.c:30"},
        {1, 0x401200, "main@main.c:40"},
        {2, 0x7f0000002000, "memcpy@:0"},
        {1, 0x401010, "leaf_a@hot.c:11"},
        {3, 0x7f1000000500, ""},
        {1, 0x401300, "static_fn@a.c:5"},
        {1, 0x401400, "static_fn@b.c:7"},
    };
    CHECK_EQ_U64(pr->n_location, N(lw));
    for (size_t i = 0; i < N(lw) && i < pr->n_location; i++) {
        const Perftools__Profiles__Location *l = pr->location[i];
        CHECK_EQ_U64(l->id, i + 1);
        CHECK_EQ_U64(l->mapping_id, lw[i].map);
        CHECK_EQ_U64(l->address, lw[i].addr);
        CHECK_STREQ(loc_text(pr, i + 1), lw[i].lines);
    }
    perftools__profiles__profile__free_unpacked(pr, NULL);
}

TEST(sample_table)
{
    pprof_profile_t p = known();
    Perftools__Profiles__Profile *pr = roundtrip(&p, "known.pb.gz");
    if (!pr)
        return;
    static const struct {
        size_t n;
        uint64_t ids[3];
        int64_t v0;
        const char *labels; /* "key=str" or "key=num unit", joined by ' ' */
    } sw[] = {
        {3, {1, 2, 3}, 3, "thread=main"}, {2, {2, 3}, 2, "thread=worker-1"},
        {3, {4, 5, 3}, 1, "thread=worker-1"}, {2, {6, 3}, 4, "thread=main"},
        {3, {1, 2, 3}, 5, "thread=worker-1"}, {3, {7, 8, 3}, 1, "thread=main bytes=4096 bytes"},
    };
    CHECK_EQ_U64(pr->n_sample, N(sw));
    for (size_t i = 0; i < N(sw) && i < pr->n_sample; i++) {
        const Perftools__Profiles__Sample *s = pr->sample[i];
        CHECK_EQ_U64(s->n_location_id, sw[i].n);
        for (size_t k = 0; k < sw[i].n && k < s->n_location_id; k++)
            CHECK_EQ_U64(s->location_id[k], sw[i].ids[k]);
        CHECK_EQ_U64(s->n_value, 2);
        if (s->n_value == 2) {
            CHECK_EQ_U64(s->value[0], sw[i].v0);
            CHECK_EQ_U64(s->value[1], sw[i].v0 * PER);
        }
        char lab[128] = "";
        for (size_t k = 0; k < s->n_label; k++) {
            const Perftools__Profiles__Label *l = s->label[k];
            size_t o = strlen(lab);
            if (l->str)
                snprintf(lab + o, sizeof(lab) - o, "%s%s=%s", k ? " " : "", str(pr, l->key),
                         str(pr, l->str));
            else
                snprintf(lab + o, sizeof(lab) - o, "%s%s=%lld %s", k ? " " : "", str(pr, l->key),
                         (long long)l->num, str(pr, l->num_unit));
        }
        CHECK_STREQ(lab, sw[i].labels);
    }
    perftools__profiles__profile__free_unpacked(pr, NULL);
}

/* The file is gzip with a repeatable header (no mtime, no name), and the
 * same input gives the same bytes from pprof_encode and pprof_write_gz. */
TEST(gzip_and_repeatable)
{
    pprof_profile_t p = known();
    CHECK_EQ_U64(pprof_write_file(tmp_path("a.pb.gz"), &p), 0);
    CHECK_EQ_U64(pprof_write_file(tmp_path("b.pb.gz"), &p), 0);
    FILE *a = fopen(tmp_path("a.pb.gz"), "rb"), *b = fopen(tmp_path("b.pb.gz"), "rb");
    unsigned char ba[4096], bb[4096];
    size_t na = a ? fread(ba, 1, sizeof(ba), a) : 0, nb = b ? fread(bb, 1, sizeof(bb), b) : 0;
    if (a)
        fclose(a);
    if (b)
        fclose(b);
    CHECK(na > 18 && na == nb && memcmp(ba, bb, na) == 0);
    /* magic, deflate, no flags, mtime 0 */
    CHECK(na > 10 && ba[0] == 0x1f && ba[1] == 0x8b && ba[2] == 8 && ba[3] == 0);
    CHECK(na > 10 && ba[4] == 0 && ba[5] == 0 && ba[6] == 0 && ba[7] == 0);
    uint8_t *e1 = NULL, *e2 = NULL;
    size_t l1 = 0, l2 = 0, lg = 0;
    CHECK_EQ_U64(pprof_encode(&p, &e1, &l1), 0);
    CHECK_EQ_U64(pprof_encode(&p, &e2, &l2), 0);
    uint8_t *g = gunzip_file(tmp_path("a.pb.gz"), &lg);
    CHECK(e1 && e2 && g && l1 == l2 && l1 == lg && memcmp(e1, e2, l1) == 0 &&
          memcmp(e1, g, l1) == 0);
    free(e1);
    free(e2);
    free(g);
}

TEST(heap_types)
{
    static const pprof_frame_t fr[] = {F("alloc_here", "x.c", 3, 0x401500, 1), MAIN};
    static const int64_t v[] = {7, 7000, 2, 2000};
    static const pprof_sample_t s[] = {{fr, 2, v, NULL, 0}};
    pprof_profile_t p = {0};
    pprof_set_heap(&p, 0, 4, 524288);
    p.default_sample_type = "inuse_space";
    p.mappings = maps;
    p.n_mappings = 1;
    p.samples = s;
    p.n_samples = 1;
    Perftools__Profiles__Profile *pr = roundtrip(&p, "heap.pb.gz");
    if (!pr)
        return;
    static const char *const tw[] = {"alloc_objects", "count", "alloc_space", "bytes",
                                     "inuse_objects", "count", "inuse_space", "bytes"};
    CHECK_EQ_U64(pr->n_sample_type, 4);
    for (size_t i = 0; i < 4 && i < pr->n_sample_type; i++) {
        CHECK_STREQ(str(pr, pr->sample_type[i]->type), tw[2 * i]);
        CHECK_STREQ(str(pr, pr->sample_type[i]->unit), tw[2 * i + 1]);
    }
    CHECK_STREQ(str(pr, pr->default_sample_type), "inuse_space");
    CHECK(pr->period_type && strcmp(str(pr, pr->period_type->type), "space") == 0 &&
          strcmp(str(pr, pr->period_type->unit), "bytes") == 0);
    CHECK_EQ_U64(pr->period, 524288);
    CHECK(pr->n_sample == 1 && pr->sample[0]->n_value == 4 && pr->sample[0]->value[0] == 7 &&
          pr->sample[0]->value[1] == 7000 && pr->sample[0]->value[2] == 2 &&
          pr->sample[0]->value[3] == 2000 && pr->sample[0]->n_label == 0);
    perftools__profiles__profile__free_unpacked(pr, NULL);

    /* a subset: inuse only */
    pprof_set_heap(&p, 2, 2, 1);
    p.default_sample_type = NULL;
    CHECK(p.n_sample_types == 2 && strcmp(p.sample_types[0].type, "inuse_objects") == 0 &&
          strcmp(p.sample_types[1].type, "inuse_space") == 0 && p.period == 1);
}

TEST(rejected)
{
    static const pprof_frame_t last_inl[] = {F("a", "a.c", 1, 0x401000, 1),
                                             FI("b", "b.c", 2, 0x401100, 1)};
    static const pprof_frame_t inl_addr[] = {FI("a", "a.c", 1, 0x401000, 1),
                                             F("b", "b.c", 2, 0x401001, 1)};
    static const pprof_frame_t inl_map[] = {FI("a", "a.c", 1, 0x401000, 1),
                                            F("b", "b.c", 2, 0x401000, 2)};
    static const pprof_frame_t bad_map[] = {F("a", "a.c", 1, 0x401000, 4)};
    static const pprof_frame_t good[] = {F("a", "a.c", 1, 0x401000, 3)};
    static const pprof_label_t nokey[] = {{NULL, "x", 0, NULL}};
    static const int64_t v[] = {1, 1};
    const struct {
        pprof_sample_t s;
        int want;
    } cases[] = {
        {{last_inl, 2, v, NULL, 0}, -EINVAL}, {{inl_addr, 2, v, NULL, 0}, -EINVAL},
        {{inl_map, 2, v, NULL, 0}, -EINVAL},  {{bad_map, 1, v, NULL, 0}, -EINVAL},
        {{good, 1, NULL, NULL, 0}, -EINVAL},  {{good, 1, v, nokey, 1}, -EINVAL},
        {{good, 1, v, NULL, 0}, 0},
    };
    for (size_t i = 0; i < N(cases); i++) {
        pprof_profile_t p = known();
        p.samples = &cases[i].s;
        p.n_samples = 1;
        uint8_t *out = NULL;
        size_t len = 0;
        int rc = pprof_encode(&p, &out, &len);
        if (rc != cases[i].want)
            printf("  case %zu: %d\n", i, rc);
        CHECK_EQ_U64(rc, cases[i].want);
        free(out);
    }
    pprof_profile_t p = known();
    p.n_sample_types = 0;
    uint8_t *out = NULL;
    size_t len;
    CHECK_EQ_U64(pprof_encode(&p, &out, &len), -EINVAL);
    p = known();
    CHECK_EQ_U64(pprof_write_file("/nonexistent-dir/x.pb.gz", &p), -ENOENT);
    FILE *full = fopen("/dev/full", "wb");
    CHECK(full && pprof_write_gz(full, &p) == -EIO);
    if (full)
        fclose(full);
}

/* 20000 samples with distinct leaf addresses (and 5000 functions, 20000
 * strings of their own) under one shared caller: every index grows many
 * times, and the output spans many 64 KiB deflate blocks. */
TEST(large)
{
    enum { NS = 20000, NF = 5000 };
    pprof_frame_t(*fr)[2] = calloc(NS, sizeof(*fr));
    pprof_sample_t *s = calloc(NS, sizeof(*s));
    int64_t(*v)[2] = calloc(NS, sizeof(*v));
    char(*names)[24] = calloc(NF, sizeof(*names));
    char(*threads)[24] = calloc(NS, sizeof(*threads));
    pprof_label_t *lab = calloc(NS, sizeof(*lab));
    if (!fr || !s || !v || !names || !threads || !lab) {
        CHECK(0);
        goto out;
    }
    for (int i = 0; i < NF; i++)
        snprintf(names[i], sizeof(names[i]), "fn_%d", i);
    for (int i = 0; i < NS; i++) {
        fr[i][0] = (pprof_frame_t)F(names[i % NF], "big.c", i, 0x410000 + 16 * (uint64_t)i, 1);
        fr[i][1] = (pprof_frame_t)MAIN;
        v[i][0] = i + 1;
        v[i][1] = (int64_t)(i + 1) * PER;
        snprintf(threads[i], sizeof(threads[i]), "t%d", i);
        lab[i] = (pprof_label_t){"thread", threads[i], 0, NULL};
        s[i] = (pprof_sample_t){fr[i], 2, v[i], &lab[i], 1};
    }
    pprof_profile_t p = known();
    p.samples = s;
    p.n_samples = NS;
    Perftools__Profiles__Profile *pr = roundtrip(&p, "large.pb.gz");
    if (!pr)
        goto out;
    CHECK_EQ_U64(pr->n_function, NF + 1);
    CHECK_EQ_U64(pr->n_location, NS + 1);
    /* "", 4 types, 5 mapping strings, NF names, big.c, main, main.c,
     * thread, NS thread names, the comment */
    CHECK_EQ_U64(pr->n_string_table, 1 + 4 + 5 + NF + 3 + 1 + NS + 1);
    size_t bad = 0;
    for (size_t i = 0; i < NS && i < pr->n_sample; i++) {
        const Perftools__Profiles__Sample *sm = pr->sample[i];
        char want[64];
        snprintf(want, sizeof(want), "fn_%zu@big.c:%zu", i % NF, i);
        /* leaf i is location i + 1, except that main (location 2) comes
         * second in first-seen order */
        uint64_t leaf = i == 0 ? 1 : i + 2;
        if (sm->n_location_id != 2 || sm->location_id[0] != leaf || sm->location_id[1] != 2 ||
            strcmp(loc_text(pr, leaf), want) != 0 ||
            pr->location[leaf - 1]->address != 0x410000 + 16 * i ||
            sm->value[0] != (int64_t)i + 1 || sm->n_label != 1 ||
            strcmp(str(pr, sm->label[0]->str), threads[i]) != 0)
            bad++;
    }
    CHECK_EQ_U64(pr->n_sample, NS);
    CHECK_EQ_U64(bad, 0);
    perftools__profiles__profile__free_unpacked(pr, NULL);
out:
    free(fr);
    free(s);
    free(v);
    free(names);
    free(threads);
    free(lab);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "write") == 0) {
        pprof_profile_t p = known();
        int rc = pprof_write_file(argv[2], &p);
        if (rc < 0)
            fprintf(stderr, "test_pprof: %s: %s\n", argv[2], strerror(-rc));
        return rc < 0;
    }
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(header_and_strings);
    RUN(functions_mappings_locations);
    RUN(sample_table);
    RUN(gzip_and_repeatable);
    RUN(heap_types);
    RUN(rejected);
    RUN(large);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    CHECK_DONE();
}
