/*
 * Known C code for tests/unit/test_symtab.c, built at test time with
 * `cc -O2 -g -fPIC -shared`.  Each function calls st_record(), which saves
 * its return address in st_ret; the test resolves st_ret - 1 and checks the
 * frames against the "LINE:" marks below (and tests/golden/symtab/expected.txt,
 * so update that file when you move lines here).
 */
#include <stdint.h>

volatile uintptr_t st_ret;

/* noipa: no inlining, cloning or interprocedural assumptions about it. */
__attribute__((noinline, noipa)) int st_record(int x)
{
    st_ret = (uintptr_t)__builtin_return_address(0);
    return x + 1;
}

__attribute__((noinline)) int st_leaf(int x)
{
    int r = st_record(x); /* LINE:leaf_call */
    return r * 3;
}

static inline __attribute__((always_inline)) int st_inlined(int x)
{
    int r = st_record(x * 2); /* LINE:inline_call */
    return r + 7;
}

__attribute__((noinline)) int st_container(int x)
{
    int y = st_inlined(x); /* LINE:inline_site */
    return y * 5;
}

static inline __attribute__((always_inline)) int st_deep(int x)
{
    int r = st_record(x - 1); /* LINE:deep_call */
    return r ^ 1;
}

static inline __attribute__((always_inline)) int st_mid(int x)
{
    int r = st_deep(x + 4); /* LINE:deep_site */
    return r - 2;
}

__attribute__((noinline)) int st_outer(int x)
{
    int r = st_mid(x); /* LINE:mid_site */
    return r * 11;
}
