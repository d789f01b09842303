/*
 * churn — configurable malloc/free churn whose stdout depends only on its
 * arguments (no timings), so a run under the agent can be compared
 * byte-for-byte with a plain run.
 *   usage: churn [ROUNDS=300] [OPS_PER_ROUND=20000] [SLEEP_US=10000] [THREADS=2] [EXIT=0]
 * Each thread runs ROUNDS rounds of OPS_PER_ROUND malloc/realloc/free ops on
 * a 1024-slot live set, sleeping SLEEP_US after each round, so the run takes
 * at least ROUNDS*SLEEP_US whatever the allocation overhead (the defaults:
 * ~3 s, 12 M ops).  Prints "churn: ... checksum=X" and exits with EXIT:
 * returned from main, or with exit(3) when EXIT is "xN", _exit(2) when "_N".
 * Everything is freed at the end.  Before that line, one line per thread
 *   "churn: thread=I mallocs=M bytes=B reallocs=R realloc_bytes=RB frees=F"
 * counts its calls (F: frees of non-NULL blocks, the final ones included);
 * they depend only on the arguments.
 */
#include <pthread.h>
#include <time.h>
#include "wl.h"

#define SLOTS 1024

static long rounds, ops_per_round, sleep_us;

typedef struct {
    int id;
    uint64_t checksum;
    uint64_t ops;
    uint64_t mallocs, bytes, reallocs, realloc_bytes, frees;
} worker_t;

NOINLINE void *churn_alloc(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    return p;
}
NOINLINE void *churn_realloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    NO_TAIL();
    return q;
}
NOINLINE void churn_free(void *p)
{
    free(p);
    NO_TAIL();
}

static void *worker(void *arg)
{
    worker_t *w = arg;
    uint64_t rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(w->id + 1);
    void *ptr[SLOTS] = {0};
    size_t size[SLOTS] = {0};
    for (long r = 0; r < rounds; r++) {
        for (long k = 0; k < ops_per_round; k++) {
            uint64_t x = wl_rnd(&rng);
            int i = (int)(x % SLOTS);
            size_t n = 16 + (size_t)((x >> 20) % 1000);
            if ((x >> 50) % 200 == 0)
                n = 16384 + (size_t)((x >> 30) % 50000);
            if (!ptr[i]) {
                unsigned char *p = churn_alloc(n);
                WL_ASSERT(p != NULL, 3);
                w->mallocs++;
                w->bytes += n;
                p[0] = (unsigned char)x;
                p[n - 1] = (unsigned char)(x >> 8);
                ptr[i] = p;
                size[i] = n;
            } else if ((x >> 40) % 8 == 0) {
                unsigned char *p = churn_realloc(ptr[i], n);
                WL_ASSERT(p != NULL, 3);
                w->reallocs++;
                w->realloc_bytes += n;
                w->checksum = w->checksum * 31 + p[0];
                p[n - 1] = (unsigned char)x;
                ptr[i] = p;
                size[i] = n;
            } else {
                unsigned char *p = ptr[i];
                w->checksum = w->checksum * 31 + p[0] + p[size[i] - 1];
                churn_free(p);
                w->frees++;
                ptr[i] = NULL;
            }
            w->ops++;
        }
        if (sleep_us > 0) {
            struct timespec ts = {sleep_us / 1000000, (sleep_us % 1000000) * 1000};
            nanosleep(&ts, NULL);
        }
    }
    for (int i = 0; i < SLOTS; i++) {
        w->frees += ptr[i] != NULL;
        free(ptr[i]);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    rounds = argc > 1 ? atol(argv[1]) : 300;
    ops_per_round = argc > 2 ? atol(argv[2]) : 20000;
    sleep_us = argc > 3 ? atol(argv[3]) : 10000;
    int nthreads = argc > 4 ? atoi(argv[4]) : 2;
    const char *ex = argc > 5 ? argv[5] : "0";
    int how = ex[0] == 'x' || ex[0] == '_' ? ex[0] : 0;
    int code = atoi(how ? ex + 1 : ex);
    WL_ASSERT(nthreads >= 1 && nthreads <= 64 && rounds >= 0 && ops_per_round >= 0, 2);

    worker_t w[64];
    pthread_t th[64];
    for (int i = 0; i < nthreads; i++) {
        w[i] = (worker_t){.id = i};
        WL_ASSERT(pthread_create(&th[i], NULL, worker, &w[i]) == 0, 4);
    }
    uint64_t checksum = 0, ops = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        checksum = checksum * 1000003 + w[i].checksum;
        ops += w[i].ops;
        out("churn: thread=%d mallocs=%llu bytes=%llu reallocs=%llu realloc_bytes=%llu "
            "frees=%llu\n",
            i, (unsigned long long)w[i].mallocs, (unsigned long long)w[i].bytes,
            (unsigned long long)w[i].reallocs, (unsigned long long)w[i].realloc_bytes,
            (unsigned long long)w[i].frees);
    }
    out("churn: threads=%d rounds=%ld ops=%llu checksum=%016llx\n", nthreads, rounds,
        (unsigned long long)ops, (unsigned long long)checksum);
    if (how == 'x')
        exit(code);
    if (how == '_')
        _exit(code);
    return code;
}
