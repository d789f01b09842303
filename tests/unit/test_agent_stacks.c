/*
 * test_agent_stacks.c — the agent's stack interning table (agent/stacks.c):
 * ids, lookups, a full table (sticky: no id taken once full), and concurrent inserts of overlapping stacks
 * from several threads (each distinct stack must get exactly one id).
 */
#include "check.h"
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>

TEST(test_basic_ids)
{
    uint64_t a[3] = {0x401000, 0x402000, 0x403000};
    uint64_t b[3] = {0x401000, 0x402000, 0x403001};
    uint64_t c[2] = {0x401000, 0x402000};
    unsigned n = 0;
    int trunc = -1;
    const uint64_t *f;

    CHECK(pa_stacks_init(1000) == 0);
    uint32_t ia = pa_stacks_intern(a, 3, 0);
    uint32_t ib = pa_stacks_intern(b, 3, 1);
    uint32_t ic = pa_stacks_intern(c, 2, 0);
    CHECK_EQ_U64(ia, 1);
    CHECK_EQ_U64(ib, 2);
    CHECK_EQ_U64(ic, 3);
    CHECK_EQ_U64(pa_stacks_intern(a, 3, 0), ia);
    CHECK_EQ_U64(pa_stacks_intern(c, 2, 0), ic);
    CHECK_EQ_U64(pa_stacks_count(), 3);
    f = pa_stacks_get(ib, &n, &trunc);
    CHECK(f != NULL);
    CHECK_EQ_U64(n, 3);
    CHECK_EQ_U64(trunc, 1);
    CHECK(f && f[2] == 0x403001);
    CHECK(pa_stacks_get(4, &n, &trunc) == NULL); /* not yet published */
    CHECK(pa_stacks_get(0, &n, &trunc) == NULL);
}

#define THREADS 4
#define DISTINCT 900
static uint32_t ids[THREADS][DISTINCT];

static void *worker(void *arg)
{
    long t = (long)arg;
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < DISTINCT; i++) {
            /* each thread walks the same stacks in a different order */
            int k = (int)((i * 7919 + t * 104729) % DISTINCT);
            uint64_t f[4] = {0x500000u + (uint64_t)k, 0x600000, 0x700000u + (uint64_t)(k % 13),
                             0x800000};
            uint32_t id = pa_stacks_intern(f, 4, 0);
            if (round == 0)
                ids[t][k] = id;
            else if (ids[t][k] != id)
                ids[t][k] = 0; /* unstable id: flagged below */
        }
    return NULL;
}

TEST(test_concurrent_inserts)
{
    pthread_t th[THREADS];
    uint32_t before = pa_stacks_count();
    static unsigned char seen[DISTINCT + 10];
    for (long t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, worker, (void *)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    /* every thread got the same id for the same stack, ids are distinct per
     * stack, and exactly DISTINCT new ids were used */
    for (int k = 0; k < DISTINCT; k++) {
        for (int t = 1; t < THREADS; t++)
            CHECK_EQ_U64(ids[t][k], ids[0][k]);
        CHECK(ids[0][k] > before && ids[0][k] <= before + DISTINCT);
        if (ids[0][k] > before && ids[0][k] <= before + DISTINCT) {
            CHECK(!seen[ids[0][k] - before]);
            seen[ids[0][k] - before] = 1;
        }
    }
    CHECK_EQ_U64(pa_stacks_count(), before + DISTINCT);
}

TEST(test_full_table)
{
    /* capacity 1000: ids 1..1000 exist; the rest get 0, and known stacks
     * still resolve to their ids */
    uint64_t known[3] = {0x401000, 0x402000, 0x403000};
    uint32_t room = 1000 - pa_stacks_count();
    int zeros = 0;
    for (uint64_t i = 0; i < room + 50; i++) {
        uint64_t f[2] = {0x900000 + i, 1};
        if (pa_stacks_intern(f, 2, 0) == 0)
            zeros++;
    }
    CHECK_EQ_U64(zeros, 50);
    CHECK_EQ_U64(pa_stacks_count(), 1000);
    CHECK_EQ_U64(pa_stacks_intern(known, 3, 0), 1);
    /* Full is sticky: a million more new stacks take no id (a 32-bit id
     * bumped by each failed intern would wrap after 4 G of them). */
    uint32_t taken = pa_stacks_ids_taken();
    for (uint64_t i = 0; i < 1000000; i++) {
        uint64_t f[2] = {0xa00000 + i, 2};
        pa_stacks_intern(f, 2, 0);
    }
    CHECK_EQ_U64(pa_stacks_ids_taken(), taken);
    CHECK(taken <= 1001);
    CHECK_EQ_U64(pa_stacks_intern(known, 3, 0), 1);
}

int main(void)
{
    RUN(test_basic_ids);
    RUN(test_concurrent_inserts);
    RUN(test_full_table);
    CHECK_DONE();
}
