/*
 * allocfns — every allocation function of the C API.  Each via_* function is
 * called twice from one call site in main; the first block is freed, the
 * second leaks, so every function leaks exactly one block of a distinct
 * requested size (tests/e2e/alloc_api.sh checks these, keep them in sync):
 *
 *   via_malloc          malloc(1001)                      1001
 *   via_calloc          calloc(3, 334)                    1002
 *   via_realloc_grow    realloc(setup_block(100), 1003)   1003
 *   via_realloc_shrink  realloc(setup_block(5000), 1004)  1004
 *   via_realloc_null    realloc(NULL, 1005)               1005
 *   via_reallocarray    reallocarray(NULL, 2, 503)        1006
 *   via_memalign        memalign(64, 1007)                1007
 *   via_posix_memalign  posix_memalign(&p, 128, 1008)     1008
 *   via_aligned_alloc   aligned_alloc(256, 1024)          1024
 *   via_valloc          valloc(1010)                      1010
 *   via_pvalloc         pvalloc(8192)                     8192
 *   via_strdup          strdup(<1011 chars>)              1012
 *   via_strndup         strndup(<1011 chars>, 500)         501
 *   total 13 objects, 19775 B
 *
 * Also, none of which may leak: realloc(p, 0) of a setup_block(1111) block
 * (via_realloc_zero), reallocarray growing a block, free(NULL), a calloc
 * whose n*size overflows (must fail with NULL).  Alignment, zeroing and
 * contents are verified; a wrong result exits with code 3..9.
 *
 * Allocation and free events (alloc_api.sh pins them in summary.txt): a
 * realloc that moves or resizes a block is one free and one allocation,
 * realloc(NULL, n) one allocation, realloc(p, 0) one free; free(NULL) and
 * the failed calloc are none.  Per loop pass: 13 via_* blocks + 3
 * setup_blocks = 16 allocations, 3 frees by realloc; two passes, 13 blocks
 * freed by the first: 32 allocations, 19 frees.  Then setup_block(64),
 * reallocarray to 2400 B, free: 2 allocations, 2 frees.  Total 34
 * allocations of 54436 B (2 x 25986 + 64 + 2400), 21 frees (34 - 13).
 */
#include <errno.h>
#include <malloc.h>
#include "wl.h"

static char text[1012];

NOINLINE void *setup_block(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    WL_ASSERT(p != NULL, 3);
    wl_touch(p, n, 0x5a);
    return p;
}

NOINLINE void *via_malloc(void)
{
    void *p = malloc(1001);
    NO_TAIL();
    return p;
}
NOINLINE void *via_calloc(void)
{
    void *p = calloc(3, 334);
    NO_TAIL();
    return p;
}
NOINLINE void *via_realloc_grow(void *old)
{
    void *p = realloc(old, 1003);
    NO_TAIL();
    return p;
}
NOINLINE void *via_realloc_shrink(void *old)
{
    void *p = realloc(old, 1004);
    NO_TAIL();
    return p;
}
NOINLINE void *via_realloc_null(void)
{
    void *p = realloc(NULL, 1005);
    NO_TAIL();
    return p;
}
NOINLINE void *via_realloc_zero(void *old)
{
    void *p = realloc(old, 0);
    NO_TAIL();
    return p;
}
NOINLINE void *via_reallocarray(void)
{
    void *p = reallocarray(NULL, 2, 503);
    NO_TAIL();
    return p;
}
NOINLINE void *via_reallocarray_grow(void *old)
{
    void *p = reallocarray(old, 4, 600);
    NO_TAIL();
    return p;
}
NOINLINE void *via_memalign(void)
{
    void *p = memalign(64, 1007);
    NO_TAIL();
    return p;
}
NOINLINE void *via_posix_memalign(void)
{
    void *p = NULL;
    int rc = posix_memalign(&p, 128, 1008);
    NO_TAIL();
    WL_ASSERT(rc == 0, 5);
    return p;
}
NOINLINE void *via_aligned_alloc(void)
{
    void *p = aligned_alloc(256, 1024);
    NO_TAIL();
    return p;
}
NOINLINE void *via_valloc(void)
{
    void *p = valloc(1010);
    NO_TAIL();
    return p;
}
NOINLINE void *via_pvalloc(void)
{
    void *p = pvalloc(8192);
    NO_TAIL();
    return p;
}
NOINLINE void *via_strdup(void)
{
    void *p = strdup(text);
    NO_TAIL();
    return p;
}
NOINLINE void *via_strndup(void)
{
    void *p = strndup(text, 500);
    NO_TAIL();
    return p;
}
static volatile size_t huge_count = SIZE_MAX / 2;
NOINLINE void *via_calloc_overflow(void)
{
    void *p = calloc(huge_count, 4);
    NO_TAIL();
    return p;
}

static void *leaked[16];
static int nleaked;

/* Check a fresh block: non-NULL, aligned, usable for `n` bytes. */
static void check_block(void *p, size_t n, size_t align)
{
    WL_ASSERT(p != NULL, 3);
    WL_ASSERT(((uintptr_t)p & (align - 1)) == 0, 6);
    WL_ASSERT(malloc_usable_size(p) >= n, 7);
    wl_touch(p, n, 0xa5);
}

static void done(int i, void *p)
{
    if (i == 0)
        free(p);
    else
        leaked[nleaked++] = p;
}

int main(void)
{
    memset(text, 'x', 1011);
    free(NULL);

    for (int i = 0; i < 2; i++) {
        void *p;
        p = via_malloc();
        check_block(p, 1001, 16);
        done(i, p);

        p = via_calloc();
        WL_ASSERT(p != NULL, 3);
        for (int k = 0; k < 1002; k++)
            WL_ASSERT(((unsigned char *)p)[k] == 0, 4);
        check_block(p, 1002, 16);
        done(i, p);

        unsigned char *q = setup_block(100);
        p = via_realloc_grow(q);
        WL_ASSERT(p != NULL && ((unsigned char *)p)[99] == 0x5a, 8);
        check_block(p, 1003, 16);
        done(i, p);

        q = setup_block(5000);
        p = via_realloc_shrink(q);
        WL_ASSERT(p != NULL && ((unsigned char *)p)[1003] == 0x5a, 8);
        check_block(p, 1004, 16);
        done(i, p);

        p = via_realloc_null();
        check_block(p, 1005, 16);
        done(i, p);

        q = setup_block(1111);
        p = via_realloc_zero(q); /* glibc: frees q, returns NULL */
        if (p)
            free(p);

        p = via_reallocarray();
        check_block(p, 1006, 16);
        done(i, p);

        p = via_memalign();
        check_block(p, 1007, 64);
        done(i, p);
        p = via_posix_memalign();
        check_block(p, 1008, 128);
        done(i, p);
        p = via_aligned_alloc();
        check_block(p, 1024, 256);
        done(i, p);
        p = via_valloc();
        check_block(p, 1010, 4096);
        done(i, p);
        p = via_pvalloc();
        check_block(p, 8192, 4096);
        done(i, p);

        p = via_strdup();
        WL_ASSERT(p != NULL && strlen(p) == 1011, 9);
        done(i, p);
        p = via_strndup();
        WL_ASSERT(p != NULL && strlen(p) == 500, 9);
        done(i, p);

        free(NULL);
    }

    /* reallocarray growing an existing block; freed. */
    void *g = setup_block(64);
    void *h = via_reallocarray_grow(g);
    WL_ASSERT(h != NULL && ((unsigned char *)h)[63] == 0x5a, 8);
    free(h);

    /* calloc overflow must fail cleanly. */
    errno = 0;
    void *ov = via_calloc_overflow();
    WL_ASSERT(ov == NULL, 10);
    WL_ASSERT(errno == ENOMEM, 11);

    out("allocfns: %d leaked blocks, 19775 B\n", nleaked);
    return 0;
}
