/*
 * fork_mt — fork while 4 threads allocate and free in loops.
 *   usage: fork_mt [NCHILDREN=3]
 * Each child (forked while the workers run) leaks
 *   child_leak   20 x 3000 B   (60000 B)
 * and exits with exit(0); nothing else is allocated in the child, so the
 * child's whole leak total is exactly that.  The parent waits for each
 * child, stops and joins the workers (whose blocks are all freed), then leaks
 *   parent_leak  30 x 5000 B   (150000 B)
 * Prints "fork_mt: parent=PID" and one "fork_mt: child=PID status=S" per
 * child on stdout, and on stderr one line per worker thread,
 *   "fork_mt: tid=T allocs=A bytes=B frees=F"
 * counting its malloc calls, the bytes they asked for and its frees of
 * non-NULL blocks (the numbers depend on timing, so they are not on stdout;
 * the agent's per-thread counts must equal them: every worker block is
 * freed by the worker that allocated it).  Exit 0 when every child exited
 * with 0.
 */
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include "wl.h"

#define NTHREADS 4

static volatile int stop;

typedef struct {
    unsigned long allocs, bytes, frees;
    pid_t tid;
} worker_count_t;
static worker_count_t counts[NTHREADS];

NOINLINE void *worker_alloc(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    return p;
}
NOINLINE void *child_leak(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    return p;
}
NOINLINE void *parent_leak(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    return p;
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t rng = 77 + (uint64_t)id;
    void *win[32] = {0};
    worker_count_t c = {.tid = gettid()};
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        int slot = (int)(wl_rnd(&rng) % 32);
        if (win[slot])
            c.frees++;
        free(win[slot]);
        size_t n = 8 + wl_rnd(&rng) % 2000;
        win[slot] = worker_alloc(n);
        WL_ASSERT(win[slot] != NULL, 3);
        c.allocs++;
        c.bytes += n;
        wl_touch(win[slot], n < 64 ? n : 64, (unsigned char)c.allocs);
        /* Some work between allocations, as real code does: the test is
         * about fork safety, not about outrunning the sender with four
         * threads that only call malloc on two cores (that drops rows, and
         * the agent counts them: see README, PERFAGENT_BUFFER_KB). */
        for (int k = 0; k < 300; k++)
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        __asm__ __volatile__("" : : "r"(rng));
    }
    for (int i = 0; i < 32; i++) {
        if (win[i])
            c.frees++;
        free(win[i]);
    }
    counts[id] = c;
    return NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    int nchildren = argc > 1 ? atoi(argv[1]) : 3;
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        WL_ASSERT(pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i) == 0, 3);
    out("fork_mt: parent=%d\n", (int)getpid());
    sleep_ms(30);

    int bad = 0;
    for (int c = 0; c < nchildren; c++) {
        pid_t pid = fork();
        WL_ASSERT(pid >= 0, 4);
        if (pid == 0) {
            void *keep[20];
            for (int i = 0; i < 20; i++) {
                keep[i] = child_leak(3000);
                WL_ASSERT(keep[i] != NULL, 3);
                wl_touch(keep[i], 3000, (unsigned char)i);
            }
            exit(0);
        }
        int st = 0;
        WL_ASSERT(waitpid(pid, &st, 0) == pid, 5);
        out("fork_mt: child=%d status=%d\n", (int)pid, st);
        if (st != 0)
            bad = 1;
        sleep_ms(10);
    }

    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    static void *pkeep[30];
    for (int i = 0; i < 30; i++) {
        pkeep[i] = parent_leak(5000);
        WL_ASSERT(pkeep[i] != NULL, 3);
        wl_touch(pkeep[i], 5000, (unsigned char)i);
    }
    for (int i = 0; i < NTHREADS; i++)
        err("fork_mt: tid=%d allocs=%lu bytes=%lu frees=%lu\n", (int)counts[i].tid,
            counts[i].allocs, counts[i].bytes, counts[i].frees);
    return bad;
}
