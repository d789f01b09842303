/*
 * temps — temporary and longer-lived allocations, for the summary's
 * "temporary" line (freed within 1 ms of the allocation; tests/e2e/
 * heap_sampled.sh).  temp_site: 1000 blocks of 100 bytes, each freed right
 * away; kept_site: 20 blocks of 200 bytes, each freed after 3 ms of sleep.
 */
#include "wl.h"

#include <time.h>

NOINLINE void *temp_site(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    return p;
}

NOINLINE void *kept_site(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    return p;
}

int main(void)
{
    struct timespec ms3 = {0, 3000000};
    for (int i = 0; i < 1000; i++) {
        void *volatile p = temp_site(100);
        free(p);
    }
    for (int i = 0; i < 20; i++) {
        void *volatile p = kept_site(200);
        nanosleep(&ms3, NULL);
        free(p);
    }
    out("temps=1000 kept=20\n");
    return 0;
}
