/*
 * test_symtab — collector/symtab.c against real objects.
 *
 * tests/golden/symtab/target.c (C) and target_cc.cc (C++) are built at run
 * time into shared objects in a temp dir and dlopen()ed here, so that real
 * runtime addresses, load bias, build-id and executable ranges come from
 * dl_iterate_phdr() exactly as the agent gets them.  Each target function
 * stores its return address in a global; we resolve that address - 1, as the
 * collector does for stack frames.  Expected lines are found by grepping the
 * sources for their "LINE:<mark>" comments; the golden check compares with
 * tests/golden/symtab/expected.txt.
 */
#include "check.h"
#include "symtab.h"

#include <ctype.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testmod.h"


static char root[PATH_MAX / 2]; /* repo root */
static char tmp[64];            /* scratch dir */
static char csrc[PATH_MAX], ccsrc[PATH_MAX];
static modinfo_t mc, mcc, mexe; /* libst_c.so, libst_cc.so, this program */
static void *hc, *hcc;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4 * PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        printf("# command failed (%d): %s\n", rc, cmd);
    return rc;
}

/* Line number of the line containing "LINE:<mark> " in file, or -1. */
static int line_of(const char *file, const char *mark)
{
    char want[128], buf[512];
    snprintf(want, sizeof want, "LINE:%s", mark);
    FILE *f = fopen(file, "r");
    int n = 0, found = -1;
    while (f && fgets(buf, sizeof buf, f)) {
        n++;
        char *m = strstr(buf, want);
        if (m && !(isalnum((unsigned char)m[strlen(want)]) || m[strlen(want)] == '_')) {
            found = n;
            break;
        }
    }
    if (f)
        fclose(f);
    return found;
}

static const char *base(const char *p)
{
    const char *s = p ? strrchr(p, '/') : NULL;
    return s ? s + 1 : p;
}

static int add(symtab_t *st, const modinfo_t *mi, const char *path)
{
    return symtab_add_module(st, path ? path : mi->path, mi->bid, mi->bid_len, mi->bias,
                             (const uint64_t(*)[2])mi->ranges, mi->n_ranges);
}

static uint64_t ret_addr(void *h, const char *fn, const char *var)
{
    if (strcmp(fn, "st_cc_tmpl") == 0) {
        long (*f)(long) = (long (*)(long))dlsym(h, fn);
        if (f)
            f(5);
    } else {
        int (*f)(int) = (int (*)(int))dlsym(h, fn);
        if (f)
            f(5);
    }
    volatile uintptr_t *v = dlsym(h, var);
    return v ? (uint64_t)*v - 1 : 0;
}

static int setup(void)
{
    const char *r = getenv("PA_ROOT");
    snprintf(root, sizeof root, "%s", r ? r : ".");
    snprintf(csrc, sizeof csrc, "%s/tests/golden/symtab/target.c", root);
    snprintf(ccsrc, sizeof ccsrc, "%s/tests/golden/symtab/target_cc.cc", root);
    snprintf(tmp, sizeof tmp, "/tmp/pa-symtab.XXXXXX");
    if (!mkdtemp(tmp))
        return -1;
    snprintf(mc.path, sizeof mc.path, "%s/libst_c.so", tmp);
    snprintf(mcc.path, sizeof mcc.path, "%s/libst_cc.so", tmp);
    if (sh("cc -O2 -g -fPIC -shared -Wl,--build-id -o '%s' '%s'", mc.path, csrc))
        return -1;
    /* g++ is a test dependency (DEB_PKGS in the Makefile): without it the
     * demangling tests cannot run, and a test that cannot run fails. */
    if (system("command -v g++ >/dev/null 2>&1") != 0) {
        printf("# g++ not found: run 'make deps' (as root)\n");
        return -1;
    }
    if (sh("g++ -O2 -g -fPIC -shared -Wl,--build-id -o '%s' '%s'", mcc.path, ccsrc))
        return -1;
    if (!(hc = dlopen(mc.path, RTLD_NOW)) || !(hcc = dlopen(mcc.path, RTLD_NOW))) {
        printf("# dlopen: %s\n", dlerror());
        return -1;
    }
    dl_iterate_phdr(phdr_cb, &mc);
    dl_iterate_phdr(phdr_cb, &mcc);
    dl_iterate_phdr(phdr_cb, &mexe);
    return mc.found && mc.bid_len && mc.n_ranges && mcc.found && mexe.found ? 0 : -1;
}

static void check_frame(const sym_frame_t *f, const char *fn, const char *file, const char *mark)
{
    CHECK_STREQ(f->function, fn);
    CHECK_STREQ(base(f->file), base(file));
    CHECK_EQ_U64(f->line, line_of(file, mark));
}

TEST(test_leaf)
{
    symtab_t *st = symtab_new(NULL);
    CHECK(st && add(st, &mc, NULL) == 0);
    uint64_t a = ret_addr(hc, "st_leaf", "st_ret");
    sym_frame_t f[8];
    CHECK_EQ_U64(symtab_resolve(st, a, f, 8), 1);
    check_frame(&f[0], "st_leaf", csrc, "leaf_call");
    CHECK_STREQ(f[0].module, mc.path);
    CHECK_EQ_U64(f[0].address, a);
    CHECK_EQ_U64(f[0].offset, a - mc.bias);
    /* absolute even though cc got a relative name when PA_ROOT is "." */
    CHECK(f[0].file && f[0].file[0] == '/' && access(f[0].file, R_OK) == 0);
    /* the module behind the address, as pprof's mappings need it */
    sym_module_info_t mi;
    CHECK_EQ_U64(symtab_module_at(st, a, &mi), 0);
    CHECK_STREQ(mi.path, mc.path);
    CHECK_EQ_U64(mi.build_id_len, mc.bid_len);
    CHECK(mi.build_id && memcmp(mi.build_id, mc.bid, mc.bid_len) == 0);
    CHECK_EQ_U64(mi.load_bias, mc.bias);
    CHECK(mi.start <= a && a < mi.limit);
    int in_range = 0;
    for (size_t r = 0; r < mc.n_ranges; r++)
        in_range |= mi.start == mc.ranges[r][0] && mi.limit == mc.ranges[r][1];
    CHECK(in_range);
    CHECK_EQ_U64(symtab_module_at(st, 16, &mi), (uint64_t)-ENOENT);
    symtab_free(st);
}

TEST(test_inline)
{
    symtab_t *st = symtab_new(NULL);
    CHECK(st && add(st, &mc, NULL) == 0);
    sym_frame_t f[8];
    uint64_t a = ret_addr(hc, "st_container", "st_ret");
    CHECK_EQ_U64(symtab_resolve(st, a, f, 8), 2);
    check_frame(&f[0], "st_inlined", csrc, "inline_call");
    check_frame(&f[1], "st_container", csrc, "inline_site");
    CHECK_EQ_U64(f[1].address, a);
    CHECK_STREQ(f[1].module, mc.path);

    a = ret_addr(hc, "st_outer", "st_ret");
    CHECK_EQ_U64(symtab_resolve(st, a, f, 8), 3);
    check_frame(&f[0], "st_deep", csrc, "deep_call");
    check_frame(&f[1], "st_mid", csrc, "deep_site");
    check_frame(&f[2], "st_outer", csrc, "mid_site");
    /* max truncates, keeping the innermost frames */
    CHECK_EQ_U64(symtab_resolve(st, a, f, 1), 1);
    CHECK_STREQ(f[0].function, "st_deep");
    symtab_free(st);
}

TEST(test_cxx)
{
    symtab_t *st = symtab_new(NULL);
    CHECK(st && add(st, &mcc, NULL) == 0);
    sym_frame_t f[8];
    uint64_t a = ret_addr(hcc, "st_cc_method", "st_cc_ret");
    CHECK_EQ_U64(symtab_resolve(st, a, f, 8), 1);
    check_frame(&f[0], "ns::Klass::method(int)", ccsrc, "method_call");
    a = ret_addr(hcc, "st_cc_tmpl", "st_cc_ret");
    CHECK_EQ_U64(symtab_resolve(st, a, f, 8), 1);
    check_frame(&f[0], "long ns::twice<long>(long)", ccsrc, "tmpl_call");
    symtab_free(st);

    /* without DWARF the ELF symbol is demangled too */
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/ccsym/libst_cc.so", tmp);
    CHECK(sh("mkdir -p '%s/ccsym' && objcopy --strip-debug '%s' '%s'", tmp, mcc.path, p) == 0);
    st = symtab_new(NULL);
    CHECK(st && add(st, &mcc, p) == 0);
    a = ret_addr(hcc, "st_cc_method", "st_cc_ret");
    CHECK_EQ_U64(symtab_resolve(st, a, f, 8), 1);
    CHECK_STREQ(f[0].function, "ns::Klass::method(int)");
    CHECK(f[0].file == NULL);
    symtab_free(st);
}

/* A module whose file does not match is never parsed: "??" with offsets. */
TEST(test_rejected_files)
{
    sym_frame_t f[8];
    uint64_t a = ret_addr(hc, "st_leaf", "st_ret");
    modinfo_t bad = mc;
    bad.bid[0] ^= 0xff;
    symtab_t *st = symtab_new(NULL);
    CHECK(st && add(st, &bad, NULL) == 0);
    CHECK_EQ_U64(symtab_resolve(st, a, f, 8), 1);
    CHECK_STREQ(f[0].function, "??");
    CHECK(f[0].file == NULL && f[0].line == 0);
    CHECK_STREQ(f[0].module, mc.path);
    CHECK_EQ_U64(f[0].offset, a - mc.bias);
    symtab_free(st);

    /* no build-id: absolute regular ELF only */
    char fifo[PATH_MAX + 16], txt[PATH_MAX + 16];
    snprintf(fifo, sizeof fifo, "%s/fifo", tmp);
    snprintf(txt, sizeof txt, "%s/notelf.so", tmp);
    CHECK(mkfifo(fifo, 0600) == 0); /* opening it would block */
    CHECK(sh("cp '%s' '%s'", csrc, txt) == 0);
    const char *paths[] = {mc.path, "libst_c.so", fifo, "/dev/zero", tmp, txt, "/nonexistent"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        st = symtab_new(NULL);
        modinfo_t nob = mc;
        nob.bid_len = 0;
        CHECK(st && add(st, &nob, paths[i]) == 0);
        CHECK_EQ_U64(symtab_resolve(st, a, f, 8), 1);
        CHECK_STREQ(f[0].function, i == 0 ? "st_leaf" : "??");
        CHECK_STREQ(f[0].module, paths[i]);
        symtab_free(st);
    }
}

TEST(test_unknown_and_args)
{
    symtab_t *st = symtab_new(NULL);
    sym_frame_t f[2];
    CHECK(st && add(st, &mc, NULL) == 0);
    CHECK_EQ_U64(symtab_resolve(st, 0x10, f, 2), 1);
    CHECK_STREQ(f[0].function, "??");
    CHECK_STREQ(f[0].module, "[unknown]");
    CHECK(f[0].file == NULL && f[0].line == 0 && f[0].offset == 0 && f[0].address == 0x10);
    CHECK_EQ_U64(symtab_resolve(st, 0x10, f, 0), 0);
    const uint64_t bad_range[1][2] = {{10, 5}};
    CHECK_EQ_U64(symtab_add_module(st, NULL, NULL, 0, 0, NULL, 0), -EINVAL);
    CHECK_EQ_U64(symtab_add_module(st, "/x", NULL, 4, 0, NULL, 0), -EINVAL);
    CHECK_EQ_U64(symtab_add_module(st, "/x", NULL, 0, 0, bad_range, 1), -EINVAL);
    CHECK_EQ_U64(symtab_add_module(NULL, "/x", NULL, 0, 0, NULL, 0), -EINVAL);
    CHECK_EQ_U64(add(st, &mc, NULL), 0); /* duplicate announcement is fine */
    symtab_free(st);
    symtab_free(NULL);
}

/* An address cached as unknown is looked up again once its module arrives. */
TEST(test_late_module)
{
    symtab_t *st = symtab_new(NULL);
    sym_frame_t f[8];
    uint64_t a = ret_addr(hc, "st_leaf", "st_ret");
    CHECK(st && symtab_resolve(st, a, f, 8) == 1);
    CHECK_STREQ(f[0].module, "[unknown]");
    CHECK(add(st, &mc, NULL) == 0);
    CHECK(symtab_resolve(st, a, f, 8) == 1);
    CHECK_STREQ(f[0].function, "st_leaf");
    symtab_free(st);
}

/* Stripped file + separate debuginfo: by build-id under <sysroot>/usr/lib/debug,
 * by .gnu_debuglink in <dir>/.debug; and the symbol-table fallback. */
TEST(test_separate_debuginfo)
{
    char hex[2 * sizeof mc.bid + 1];
    for (size_t i = 0; i < mc.bid_len; i++)
        sprintf(hex + 2 * i, "%02x", mc.bid[i]);
    int rc = sh("set -e; cd '%s'; objcopy --only-keep-debug libst_c.so libst_c.debug;"
                "mkdir -p sr/opt/pa sr/usr/lib/debug/.build-id/%.2s dl/.debug sym;"
                "objcopy --strip-debug libst_c.so sr/opt/pa/libst_c.so;"
                "cp libst_c.debug sr/usr/lib/debug/.build-id/%.2s/%s.debug;"
                "objcopy --strip-debug --add-gnu-debuglink=libst_c.debug libst_c.so dl/libst_c.so;"
                "cp libst_c.debug dl/.debug/libst_c.debug;"
                "objcopy --strip-debug libst_c.so sym/libst_c.so",
                tmp, hex, hex, hex + 2);
    CHECK(rc == 0);
    uint64_t a = ret_addr(hc, "st_container", "st_ret");
    sym_frame_t f[8];
    char sr[PATH_MAX + 8], p[PATH_MAX + 32];

    /* /opt/pa/libst_c.so exists only in the sysroot */
    snprintf(sr, sizeof sr, "%s/sr", tmp);
    symtab_t *st = symtab_new(sr);
    CHECK(st && add(st, &mc, "/opt/pa/libst_c.so") == 0);
    CHECK_EQ_U64(symtab_resolve(st, a, f, 8), 2);
    check_frame(&f[0], "st_inlined", csrc, "inline_call");
    check_frame(&f[1], "st_container", csrc, "inline_site");
    CHECK_STREQ(f[0].module, "/opt/pa/libst_c.so");
    symtab_free(st);

    snprintf(p, sizeof p, "%s/dl/libst_c.so", tmp);
    st = symtab_new(NULL);
    CHECK(st && add(st, &mc, p) == 0);
    CHECK_EQ_U64(symtab_resolve(st, a, f, 8), 2);
    check_frame(&f[1], "st_container", csrc, "inline_site");
    symtab_free(st);

    /* no debuginfo anywhere: ELF .symtab names the physical function */
    snprintf(p, sizeof p, "%s/sym/libst_c.so", tmp);
    st = symtab_new(NULL);
    CHECK(st && add(st, &mc, p) == 0);
    CHECK_EQ_U64(symtab_resolve(st, a, f, 8), 1);
    CHECK_STREQ(f[0].function, "st_container");
    CHECK(f[0].file == NULL && f[0].line == 0);
    symtab_free(st);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Cache hits return the same strings; also prints the measured costs. */
TEST(test_cache)
{
    symtab_t *st = symtab_new(NULL);
    CHECK(st && add(st, &mc, NULL) == 0);
    uint64_t a[3] = {ret_addr(hc, "st_leaf", "st_ret"), ret_addr(hc, "st_container", "st_ret"),
                     ret_addr(hc, "st_outer", "st_ret")};
    sym_frame_t f1[8], f2[8];
    double t0 = now_ns();
    int n1 = symtab_resolve(st, a[2], f1, 8);
    double t1 = now_ns();
    int n2 = symtab_resolve(st, a[2], f2, 8);
    CHECK(n1 == 3 && n2 == 3);
    for (int i = 0; i < n1 && i < n2; i++) {
        CHECK(f1[i].function == f2[i].function);
        CHECK(f1[i].file == f2[i].file);
        CHECK(f1[i].module == f2[i].module);
        CHECK(f1[i].line == f2[i].line);
    }
    enum { N = 3000000 };
    symtab_resolve(st, a[0], f1, 8);
    symtab_resolve(st, a[1], f1, 8);
    double t2 = now_ns();
    for (int i = 0; i < N; i++)
        symtab_resolve(st, a[i % 3], f1, 8);
    double t3 = now_ns();
    printf("# perf: first lookup (open + DWARF load) %.0f us, cached hit %.1f ns/call\n",
           (t1 - t0) / 1e3, (t3 - t2) / N);
    symtab_free(st);

    /* Uncached cost over this test program (symtab.c's own DWARF). */
    st = symtab_new(NULL);
    CHECK(st && add(st, &mexe, NULL) == 0);
    uint64_t self = (uint64_t)(uintptr_t)&symtab_resolve;
    CHECK(symtab_resolve(st, self, f1, 8) >= 1);
    CHECK_STREQ(f1[0].function, "symtab_resolve");
    CHECK_STREQ(base(f1[0].file), "symtab.c");
    size_t n = 0;
    double t4 = now_ns();
    for (size_t r = 0; r < mexe.n_ranges; r++)
        for (uint64_t x = mexe.ranges[r][0]; x < mexe.ranges[r][1]; x += 16, n++)
            symtab_resolve(st, x, f1, 8);
    double t5 = now_ns();
    printf("# perf: uncached lookups over %zu addresses of %s: %.1f us/call\n", n, base(mexe.path),
           (t5 - t4) / 1e3 / (double)n);
    symtab_free(st);
}

/* Golden: "function file:line" per frame, basenames only. */
TEST(test_golden)
{
    symtab_t *st = symtab_new(NULL);
    CHECK(st && add(st, &mc, NULL) == 0);
    CHECK(add(st, &mcc, NULL) == 0);
    static const char *const cases[][3] = {
        {"c", "st_leaf", "st_ret"},        {"c", "st_container", "st_ret"},
        {"c", "st_outer", "st_ret"},       {"cc", "st_cc_method", "st_cc_ret"},
        {"cc", "st_cc_tmpl", "st_cc_ret"},
    };
    char got[4096] = "", want[4096] = "", line[512], path[PATH_MAX + 64];
    size_t gl = 0, wl = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int cc = cases[i][0][1] == 'c';
        sym_frame_t f[8];
        int n = symtab_resolve(st, ret_addr(cc ? hcc : hc, cases[i][1], cases[i][2]), f, 8);
        for (int k = 0; k < n; k++)
            gl += (size_t)snprintf(got + gl, sizeof got - gl, "%s %s:%d\n", f[k].function,
                                   f[k].file ? base(f[k].file) : "??", f[k].line);
    }
    snprintf(path, sizeof path, "%s/tests/golden/symtab/expected.txt", root);
    FILE *fp = fopen(path, "r");
    CHECK(fp != NULL);
    while (fp && fgets(line, sizeof line, fp))
        if (line[0] != '#')
            wl += (size_t)snprintf(want + wl, sizeof want - wl, "%s", line);
    if (fp)
        fclose(fp);
    CHECK_STREQ(got, want);
    symtab_free(st);
}

int main(void)
{
    if (setup() != 0) {
        printf("FAIL setup\n");
        return 1;
    }
    RUN(test_leaf);
    RUN(test_inline);
    RUN(test_cxx);
    RUN(test_rejected_files);
    RUN(test_unknown_and_args);
    RUN(test_late_module);
    RUN(test_separate_debuginfo);
    RUN(test_cache);
    RUN(test_golden);
    if (tmp[0])
        sh("rm -rf '%s'", tmp);
    CHECK_DONE();
}
