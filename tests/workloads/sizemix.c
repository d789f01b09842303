/*
 * sizemix — allocations of a known total in one size mix, for the sampled
 * heap's estimator (tests/e2e/heap_sampled.sh).
 *
 *   usage: sizemix MIX CHURN_MB LEAK_MB [THREADS]
 *
 * MIX picks the sizes of the churned blocks (xorshift, the same sequence
 * every run): small 16..256 B, medium 1..64 KiB, large 256 KiB..4 MiB,
 * mixed (90% small, 9% medium, 1% large).  Each thread allocates from
 * churn_site until it has allocated CHURN_MB / THREADS MiB, keeping at most
 * 256 blocks live and freeing the oldest (so the churned blocks all end
 * freed), then leaks LEAK_MB / THREADS MiB in 64 KiB blocks from leak_site.
 * Churned bytes have a first touch only (blocks are not written), so a
 * 4 GiB churn costs time, not memory.  One line at the end:
 *   allocated=B objects=N churned=B leaked=B leaked_objects=N
 * with the exact totals of what was asked of malloc.
 */
#include "wl.h"

#include <pthread.h>

#define LIVE 256
#define LEAK_BLOCK 65536

static const char *mix;
static uint64_t churn_each, leak_each;

typedef struct totals {
    uint64_t id; /* seeds the thread's sizes: the same every run */
    uint64_t bytes, objects, churned, leaked, leaked_objects;
} totals_t;

NOINLINE void *churn_site(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    return p;
}

NOINLINE void *leak_site(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    return p;
}

static size_t next_size(uint64_t *x)
{
    uint64_t r;
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    r = *x;
    if (!strcmp(mix, "small"))
        return 16 + r % 241;
    if (!strcmp(mix, "medium"))
        return 1024 + r % (63 * 1024 + 1);
    if (!strcmp(mix, "large"))
        return (256u << 10) + r % ((3840u << 10) + 1);
    /* mixed */
    switch ((r >> 40) % 100) {
    case 0:
        return (256u << 10) + r % ((3840u << 10) + 1);
    case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8: case 9:
        return 1024 + r % (63 * 1024 + 1);
    default:
        return 16 + r % 241;
    }
}

static void *worker(void *arg)
{
    totals_t *t = arg;
    void *live[LIVE] = {0};
    uint64_t x = 0x9E3779B97F4A7C15ull ^ (t->id * 0xBF58476D1CE4E5B9ull);
    unsigned k = 0;
    while (t->churned < churn_each) {
        size_t n = next_size(&x);
        free(live[k]);
        live[k] = churn_site(n);
        k = (k + 1) % LIVE;
        t->churned += n;
        t->bytes += n;
        t->objects++;
    }
    for (unsigned i = 0; i < LIVE; i++)
        free(live[i]);
    while (t->leaked < leak_each) {
        if (!leak_site(LEAK_BLOCK))
            break;
        t->leaked += LEAK_BLOCK;
        t->leaked_objects++;
        t->bytes += LEAK_BLOCK;
        t->objects++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int nt = argc > 4 ? atoi(argv[4]) : 1;
    pthread_t th[16];
    totals_t t[16], sum = {0};
    if (argc < 4 || nt < 1 || nt > 16) {
        outfd(2, "usage: sizemix small|medium|large|mixed CHURN_MB LEAK_MB [THREADS]\n");
        return 2;
    }
    mix = argv[1];
    churn_each = strtoull(argv[2], NULL, 10) * 1048576 / (uint64_t)nt;
    leak_each = strtoull(argv[3], NULL, 10) * 1048576 / (uint64_t)nt;
    memset(t, 0, sizeof(t));
    for (int i = 0; i < nt; i++) {
        t[i].id = (uint64_t)i + 1;
        pthread_create(&th[i], NULL, worker, &t[i]);
    }
    for (int i = 0; i < nt; i++) {
        pthread_join(th[i], NULL);
        sum.bytes += t[i].bytes;
        sum.objects += t[i].objects;
        sum.churned += t[i].churned;
        sum.leaked += t[i].leaked;
        sum.leaked_objects += t[i].leaked_objects;
    }
    out("allocated=%llu objects=%llu churned=%llu leaked=%llu leaked_objects=%llu\n",
        (unsigned long long)sum.bytes, (unsigned long long)sum.objects,
        (unsigned long long)sum.churned, (unsigned long long)sum.leaked,
        (unsigned long long)sum.leaked_objects);
    return 0;
}
