/*
 * test_agent_sampleset.c — the set of live sampled addresses (agent/
 * sampleset.c): membership exactly as a reference set says through 400 000
 * random adds and takes (long probe runs, backward-shift deletion, shards
 * filled to their limit), the filter never saying "no" for a member, a full
 * shard refusing and counting, four threads adding and taking their own
 * addresses at once, and what the filter costs a free (printed).
 */
#include "check.h"
#include "sampleset.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define N 200000
static uint64_t addrs[N];
static unsigned char in[N];

static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

TEST(test_against_reference)
{
    uint64_t x = 88172645463325252ull, live = 0, bad = 0, filter_miss = 0;
    CHECK_EQ_U64(pa_sampleset_init(), 0);
    /* 200 000 random 16-byte aligned addresses (distinct: 44 random bits).
     * Not an arithmetic series: its multiplicative hashes would spread
     * perfectly, never collide and never exercise the deletion's shifts. */
    for (unsigned i = 0; i < N; i++)
        addrs[i] = 0x7f0000000000ull + ((rnd(&x) & ((1ull << 40) - 1)) << 4) + ((uint64_t)i << 4);
    for (unsigned op = 0; op < 2 * N; op++) {
        unsigned i = (unsigned)(rnd(&x) % N);
        if (!in[i]) {
            if (pa_sampleset_add(addrs[i]) == 0)
                in[i] = 1, live++;
        } else if (rnd(&x) & 1) {
            if (pa_sampleset_take(addrs[i]) != 1)
                bad++;
            in[i] = 0, live--;
        }
    }
    for (unsigned i = 0; i < N; i++) {
        if (in[i] && !pa_sampleset_maybe((void *)(uintptr_t)addrs[i]))
            filter_miss++;
        if (pa_sampleset_take(addrs[i]) != in[i])
            bad++;
        in[i] = 0;
    }
    CHECK_EQ_U64(bad, 0);
    CHECK_EQ_U64(filter_miss, 0);
    CHECK_EQ_U64(pa_sampleset_count(), 0);
    printf("  %llu live after the random phase, %llu adds refused (shard full)\n", (unsigned long long)live,
           (unsigned long long)atomic_load(&pa_sampleset_full));
    /* Empty again: the filter has no member left (no counter reached the
     * sticky 255 here), so it says "no" for every address. */
    uint64_t yes = 0;
    for (unsigned i = 0; i < N; i++)
        yes += pa_sampleset_maybe((void *)(uintptr_t)addrs[i]) != 0;
    CHECK_EQ_U64(yes, 0);
}

TEST(test_full_shard)
{
    /* Addresses that all land in shard 0: keep those whose hash's low byte
     * is 0.  A shard takes 768; the 769th is refused and counted. */
    uint64_t before = atomic_load(&pa_sampleset_full), got = 0, a = 0x100000;
    uint64_t mine[800];
    unsigned n = 0;
    while (n < 800) {
        if ((pa_sample_hash(a) & 255) == 0)
            mine[n++] = a;
        a += 16;
    }
    for (unsigned i = 0; i < 800; i++)
        got += pa_sampleset_add(mine[i]) == 0;
    CHECK_EQ_U64(got, 768);
    CHECK_EQ_U64(atomic_load(&pa_sampleset_full) - before, 32);
    for (unsigned i = 0; i < 800; i++)
        got -= pa_sampleset_take(mine[i]);
    CHECK_EQ_U64(got, 0);
    CHECK_EQ_U64(pa_sampleset_count(), 0);
}

static void *churn(void *arg)
{
    uint64_t base = 0x500000000000ull + (uint64_t)(uintptr_t)arg * 0x100000000ull, x = base | 1;
    uint64_t *bad = calloc(1, sizeof(*bad));
    unsigned char mine[4096] = {0};
    for (unsigned op = 0; op < 500000; op++) {
        unsigned i = (unsigned)(rnd(&x) % 4096);
        uint64_t a = base + (uint64_t)i * 48;
        if (!mine[i]) {
            mine[i] = pa_sampleset_add(a) == 0;
        } else {
            if (!pa_sampleset_maybe((void *)(uintptr_t)a) || pa_sampleset_take(a) != 1)
                (*bad)++;
            mine[i] = 0;
        }
    }
    for (unsigned i = 0; i < 4096; i++)
        if (mine[i] && pa_sampleset_take(base + (uint64_t)i * 48) != 1)
            (*bad)++;
    return bad;
}

TEST(test_threads)
{
    pthread_t th[4];
    uint64_t bad = 0;
    for (uintptr_t i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, churn, (void *)i);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        bad += *(uint64_t *)r;
        free(r);
    }
    CHECK_EQ_U64(bad, 0);
    CHECK_EQ_U64(pa_sampleset_count(), 0);
}

/* What every free pays in sampled mode for a block that was not sampled,
 * with 2000 live samples (1 GiB of live heap at 512 KiB): printed for
 * README; no time limit here (benchmarks hold those). */
TEST(test_cost)
{
    uint64_t x = 7, sum = 0;
    struct timespec a, b;
    for (unsigned i = 0; i < 2000; i++)
        pa_sampleset_add(0x600000000000ull + (rnd(&x) % (1u << 30)) * 16);
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (unsigned i = 0; i < 10000000; i++)
        sum += pa_sampleset_maybe((void *)(uintptr_t)(0x10000000ull + (uint64_t)i * 48));
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e7;
    printf("  filter: %.2f ns a free, %.2f%% of non-sampled frees passed it\n", ns,
           100.0 * (double)sum / 1e7);
    CHECK(sum < 10000000 / 20); /* at most 5% false "maybe" with 2000 live */
}

int main(void)
{
    RUN(test_against_reference);
    RUN(test_full_shard);
    RUN(test_threads);
    RUN(test_cost);
    CHECK_DONE();
}
