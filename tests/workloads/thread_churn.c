/*
 * thread_churn — 200 short-lived threads, at most 8 alive at a time.  Each
 * thread makes 500 malloc/free pairs (all freed), hands one 512 B block to
 * the main thread (freed there: a cross-thread free), and leaks
 *   thread_leak_a  1 x 1000 B   -> 200 x 1000 B = 200000 B
 *   thread_leak_b  1 x   24 B   -> 200 x   24 B =   4800 B  (calloc(3, 8))
 *   usage: thread_churn [NTHREADS=200] [CONCURRENT=8]
 * Each thread thus makes 503 allocations and 500 frees, and asks for
 * (its scratch bytes) + 1000 + 24 + 512 bytes.  On stderr, one line per thread
 *   "thread_churn: tid=T allocs=503 bytes=B frees=500"
 * (tids differ from run to run, so they are not on stdout); stdout has the
 * total of the scratch bytes, which is the same in every run.
 */
#include <pthread.h>
#include "wl.h"

NOINLINE void *thread_scratch(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    return p;
}
NOINLINE void *thread_leak_a(void)
{
    void *p = malloc(1000);
    NO_TAIL();
    return p;
}
NOINLINE void *thread_leak_b(void)
{
    void *p = calloc(3, 8);
    NO_TAIL();
    return p;
}
NOINLINE void *handoff_alloc(void)
{
    void *p = malloc(512);
    NO_TAIL();
    return p;
}

static void *leaked[2][4096];
static struct {
    pid_t tid;
    unsigned long scratch;
} done[4096];

static void *thread_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t rng = 1000 + (uint64_t)id;
    unsigned long scratch = 0;
    for (int i = 0; i < 500; i++) {
        size_t n = 1 + wl_rnd(&rng) % 700;
        scratch += n;
        void *p = thread_scratch(n);
        WL_ASSERT(p != NULL, 3);
        wl_touch(p, n, (unsigned char)i);
        free(p);
    }
    leaked[0][id] = thread_leak_a();
    leaked[1][id] = thread_leak_b();
    WL_ASSERT(leaked[0][id] && leaked[1][id], 3);
    void *h = handoff_alloc();
    WL_ASSERT(h != NULL, 3);
    wl_touch(h, 512, (unsigned char)id);
    done[id].tid = gettid();
    done[id].scratch = scratch;
    return h;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200;
    int conc = argc > 2 ? atoi(argv[2]) : 8;
    WL_ASSERT(n > 0 && n <= 4096 && conc > 0 && conc <= 64, 2);
    pthread_t th[64];
    unsigned long sum = 0;
    for (int base = 0; base < n; base += conc) {
        int k = n - base < conc ? n - base : conc;
        for (int i = 0; i < k; i++)
            WL_ASSERT(pthread_create(&th[i], NULL, thread_main, (void *)(intptr_t)(base + i)) == 0,
                      4);
        for (int i = 0; i < k; i++) {
            void *h = NULL;
            pthread_join(th[i], &h);
            sum += ((unsigned char *)h)[0];
            free(h);
        }
    }
    unsigned long scratch = 0;
    for (int i = 0; i < n; i++) {
        scratch += done[i].scratch;
        err("thread_churn: tid=%d allocs=503 bytes=%lu frees=500\n", (int)done[i].tid,
            done[i].scratch + 1000 + 24 + 512);
    }
    out("thread_churn: threads=%d leaked=%d x 1000 B + %d x 24 B sum=%lu scratch=%lu B in %d "
        "blocks\n",
        n, n, n, sum, scratch, n * 500);
    return 0;
}
