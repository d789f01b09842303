/*
 * thread_stress — the shape of mimalloc's test-stress: NTHREADS threads
 * re-created every iteration, each allocating blocks of random sizes (some
 * large: 1 in 100 is 100x, 1 in 10000 is 10000x), freeing random ones of
 * its own, reallocating some, and swapping blocks with the other threads
 * through a shared transfer array, so many blocks are freed by a thread
 * other than the one that allocated them (often one that did not exist when
 * they were allocated).  Between iterations main frees half the transfer
 * array; after the last it frees all of it.  Everything is freed except
 *   stress_leak_own  1 x 48 B per thread and iteration   (e.g. 16 x 6 x 48 B)
 *   stress_leak_big  1 x 100000 B per iteration, made by thread 1 and
 *                    handed to main through the transfer array's last slot
 *   usage: thread_stress [NTHREADS=16] [ITERS=6] [OPS=3000]
 */
#include <pthread.h>
#include <stdatomic.h>
#include "wl.h"

#define NX 1000 /* transfer slots; the last one carries the big leak */

static _Atomic(void *) xfer[NX];
static void *leaks_big[64], *leaks_own[64 * 64]; /* reachable, never freed */
static int nthreads = 16, iters = 6, ops = 3000;

NOINLINE void *stress_alloc(size_t n)
{
    void *p = calloc(n, 8);
    NO_TAIL();
    return p;
}
NOINLINE void *stress_realloc(void *p, size_t n)
{
    void *q = realloc(p, n * 8);
    NO_TAIL();
    return q;
}
NOINLINE void *stress_leak_own(void)
{
    void *p = malloc(48);
    NO_TAIL();
    return p;
}
NOINLINE void *stress_leak_big(void)
{
    void *p = malloc(100000);
    NO_TAIL();
    return p;
}

static size_t items(uint64_t *s)
{
    size_t n = (size_t)1 << (wl_rnd(s) % 5);
    if (wl_rnd(s) % 100 == 0)
        n *= wl_rnd(s) % 100 == 0 ? 10000 : 100;
    return n;
}

typedef struct arg {
    int id, iter;
    void *own_leak;
} arg_t;

static void *worker(void *vp)
{
    arg_t *a = vp;
    uint64_t s = (uint64_t)a->id * 7919 + (uint64_t)a->iter * 104729 + 1;
    size_t cap = (size_t)ops, top = 0;
    void **d = malloc(cap * sizeof(*d)); /* freed below */
    WL_ASSERT(d != NULL, 3);
    for (int i = 0; i < ops; i++) {
        size_t n = items(&s);
        void *p = stress_alloc(n);
        WL_ASSERT(p != NULL, 3);
        d[top++] = p;
        uint64_t r = wl_rnd(&s);
        if (r % 3 == 0) { /* free one of ours */
            size_t k = wl_rnd(&s) % top;
            free(d[k]);
            d[k] = d[--top];
        } else if (r % 7 == 1) { /* resize one (it may move) */
            size_t k = wl_rnd(&s) % top;
            void *q = stress_realloc(d[k], items(&s));
            WL_ASSERT(q != NULL, 3);
            d[k] = q;
        }
        if (wl_rnd(&s) % 4 == 0 && top) { /* swap with whoever put one there */
            size_t k = wl_rnd(&s) % top;
            d[k] = atomic_exchange(&xfer[wl_rnd(&s) % (NX - 1)], d[k]);
            if (!d[k])
                d[k] = d[--top];
        }
    }
    for (size_t i = 0; i < top; i++)
        free(d[i]);
    free(d);
    a->own_leak = stress_leak_own();
    if (a->id == 1) {
        void *b = stress_leak_big();
        WL_ASSERT(b != NULL, 3);
        atomic_store(&xfer[NX - 1], b);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        nthreads = atoi(argv[1]);
    if (argc > 2)
        iters = atoi(argv[2]);
    if (argc > 3)
        ops = atoi(argv[3]);
    WL_ASSERT(nthreads >= 2 && nthreads <= 64 && iters > 0 && iters <= 64 && ops > 0, 2);
    static pthread_t th[64];
    static arg_t args[64];
    int nown = 0;
    for (int it = 0; it < iters; it++) {
        for (int i = 0; i < nthreads; i++) {
            args[i] = (arg_t){.id = i, .iter = it};
            WL_ASSERT(pthread_create(&th[i], NULL, worker, &args[i]) == 0, 4);
        }
        for (int i = 0; i < nthreads; i++) {
            pthread_join(th[i], NULL);
            leaks_own[nown++] = args[i].own_leak;
        }
        leaks_big[it] = atomic_exchange(&xfer[NX - 1], NULL);
        for (int i = 0; i < NX - 1; i++)
            if (it + 1 == iters || i % 2)
                free(atomic_exchange(&xfer[i], NULL));
    }
    out("thread_stress: threads=%d iters=%d ops=%d leaked=%d x 48 B + %d x 100000 B\n", nthreads,
        iters, ops, nown, iters);
    return 0;
}
