/*
 * leakn — leaks N blocks of SIZE bytes from one known function, keeps a
 * steady working set, and churns temporaries: two runs with different N are
 * two snapshots of "a service whose heap grows from one stack".
 * usage: leakn N [SIZE]   (SIZE defaults to 1000)
 *
 * Known live heap at exit (exact mode, requested sizes), checked by
 * tests/e2e/snapshots.sh:
 *   leak_n       N x SIZE   main -> leak_n
 *   steady_set   8 x 4096   main -> steady_set (the same whatever N)
 * churn() allocates and frees 1000 blocks of 64 bytes (nothing live).
 */
#include "wl.h"

#include <stdlib.h>

static void *steady[8];
void *volatile leakn_sink; /* the leaked blocks pass through here */

NOINLINE void *leak_n(size_t size)
{
    void *p = malloc(size);
    NO_TAIL();
    return p;
}

NOINLINE void steady_set(void)
{
    for (int i = 0; i < 8; i++)
        steady[i] = malloc(4096);
    NO_TAIL();
}

NOINLINE void churn(void)
{
    for (int i = 0; i < 1000; i++) {
        void *volatile p = malloc(64);
        free(p);
    }
    NO_TAIL();
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10;
    size_t size = argc > 2 ? (size_t)atol(argv[2]) : 1000;
    steady_set();
    for (long i = 0; i < n; i++) {
        leakn_sink = leak_n(size);
        churn();
    }
    outfd(1, "leaked=%ld size=%zu\n", n, size);
    return steady[0] ? 0 : 1;
}
