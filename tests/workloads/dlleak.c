/* libdlleak.so — loaded and unloaded by dlopen_loop. */
#include "wl.h"

NOINLINE void *dlleak_make_block(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    if (p)
        memset(p, 0x33, n);
    return p;
}

/* 20 blocks of 32 + (round * 7 + i * 13) % 900 bytes, all freed (dlopen_loop.c
 * computes the same sizes to print their total). */
NOINLINE unsigned long dlleak_scratch(int round)
{
    unsigned long sum = 0;
    for (int i = 0; i < 20; i++) {
        size_t n = 32 + (size_t)((round * 7 + i * 13) % 900);
        unsigned char *p = malloc(n);
        NO_TAIL();
        if (!p)
            return 0;
        memset(p, i, n);
        sum += p[n - 1];
        free(p);
    }
    return sum;
}
