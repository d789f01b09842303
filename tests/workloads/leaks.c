/*
 * leaks — leaks from four call sites at different depths; everything else is
 * freed.  Built twice: leaks_fp (-fno-omit-frame-pointer) and leaks_nofp
 * (-fomit-frame-pointer).  usage: leaks [EXIT_CODE]
 *
 * Known leaks (exact mode, requested sizes); tests/e2e/leaks_exact.sh checks
 * these numbers, keep them in sync:
 *   leak_site_a    100 x 1000 B  main -> leak_site_a            (300 calls)
 *   leak_site_b     50 x  256 B  main -> mid_p -> mid_q -> leak_site_b (200 calls)
 *   leak_site_c      7 x 4096 B  calloc(64, 64), main -> leak_site_c (10 calls)
 *   inline_leaker   11 x 2000 B  inlined into leak_site_d, main -> leak_site_d (33 calls)
 *   total          168 objects, 163472 B
 * scratch_alloc makes 5000 more allocations, all freed.  The program prints
 * allocated=BYTES/COUNT: every byte it requested (5543 allocations), which is
 * what alloc.folded must add up to; and freed=COUNT: its free() calls of
 * non-NULL blocks (5375 = 5543 - 168 leaked), the frees summary.txt must
 * count (the agent records no free(NULL)).
 *
 * "LINE:<mark>" comments mark each allocation call and each call on the way
 * to it; leaks_exact.sh greps them to know the exact file:line of every
 * frame of the leaked stacks.
 */
#include "wl.h"

#define A_CALLS 300
#define A_SIZE 1000
#define B_CALLS 200
#define B_SIZE 256
#define C_CALLS 10
#define D_CALLS 33
#define D_SIZE 2000

static void *kept[A_CALLS + B_CALLS + C_CALLS + D_CALLS];
static int nkept, nfreed;

NOINLINE void *leak_site_a(size_t n)
{
    void *p = malloc(n); /* LINE:site_a */
    NO_TAIL();
    return p;
}

NOINLINE void *leak_site_b(size_t n)
{
    void *p = malloc(n); /* LINE:site_b */
    NO_TAIL();
    return p;
}

NOINLINE void *mid_q(size_t n)
{
    void *p = leak_site_b(n); /* LINE:call_b_q */
    NO_TAIL();
    return p;
}

NOINLINE void *mid_p(size_t n)
{
    void *p = mid_q(n); /* LINE:call_b_p */
    NO_TAIL();
    return p;
}

NOINLINE void *leak_site_c(void)
{
    void *p = calloc(64, 64); /* LINE:site_c */
    NO_TAIL();
    return p;
}

static inline __attribute__((always_inline)) void *inline_leaker(size_t n)
{
    void *p = malloc(n); /* LINE:site_d_inline */
    NO_TAIL();
    return p;
}

NOINLINE void *leak_site_d(size_t n)
{
    void *p = inline_leaker(n); /* LINE:site_d */
    NO_TAIL();
    return p;
}

NOINLINE void *scratch_alloc(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    return p;
}

static void keep(void *p)
{
    WL_ASSERT(p != NULL, 3);
    kept[nkept++] = p;
}

/* free() that counts the blocks it really frees (free(NULL) is no event). */
static void release(void *p)
{
    nfreed += p != NULL;
    free(p);
}

int main(int argc, char **argv)
{
    int code = argc > 1 ? atoi(argv[1]) : 0;
    uint64_t rng = 12345, sum = 0;
    unsigned long long allocated = (unsigned long long)A_CALLS * A_SIZE +
                                   (unsigned long long)B_CALLS * B_SIZE + C_CALLS * 4096ULL +
                                   (unsigned long long)D_CALLS * D_SIZE;
    int nalloc = A_CALLS + B_CALLS + C_CALLS + D_CALLS;

    for (int i = 0; i < A_CALLS; i++) {
        unsigned char *p = leak_site_a(A_SIZE); /* LINE:call_a */
        WL_ASSERT(p != NULL, 3);
        wl_touch(p, A_SIZE, (unsigned char)i);
        sum += p[A_SIZE - 1];
        if (i % 3 == 0)
            keep(p); /* 100 leaked */
        else
            release(p);
    }
    for (int i = 0; i < B_CALLS; i++) {
        unsigned char *p = mid_p(B_SIZE); /* LINE:call_b */
        WL_ASSERT(p != NULL, 3);
        wl_touch(p, B_SIZE, (unsigned char)i);
        sum += p[7];
        if (i % 4 == 0)
            keep(p); /* 50 leaked */
        else
            release(p);
    }
    for (int i = 0; i < C_CALLS; i++) {
        unsigned char *p = leak_site_c(); /* LINE:call_c */
        WL_ASSERT(p != NULL, 3);
        for (int k = 0; k < 4096; k++)
            WL_ASSERT(p[k] == 0, 4);
        if (i < 7)
            keep(p); /* 7 leaked */
        else
            release(p);
    }
    for (int i = 0; i < D_CALLS; i++) {
        unsigned char *p = leak_site_d(D_SIZE); /* LINE:call_d */
        WL_ASSERT(p != NULL, 3);
        wl_touch(p, D_SIZE, (unsigned char)i);
        sum += p[D_SIZE / 2];
        if (i % 3 == 1)
            keep(p); /* 11 leaked */
        else
            release(p);
    }
    /* Churn: a live window of 64 blocks, every block freed in the end. */
    void *win[64] = {0};
    for (int i = 0; i < 5000; i++) {
        int slot = (int)(wl_rnd(&rng) % 64);
        release(win[slot]);
        size_t n = 16 + wl_rnd(&rng) % 3000;
        unsigned char *p = scratch_alloc(n);
        allocated += n;
        nalloc++;
        WL_ASSERT(p != NULL, 3);
        wl_touch(p, n, (unsigned char)i);
        sum += p[n - 1];
        win[slot] = p;
    }
    for (int i = 0; i < 64; i++)
        release(win[i]);

    out("leaks: a=100x1000 b=50x256 c=7x4096 d=11x2000 total=163472/168 kept=%d sum=%llu\n", nkept,
        (unsigned long long)sum);
    out("allocated=%llu/%d\n", allocated, nalloc);
    out("freed=%d\n", nfreed);
    return code;
}
