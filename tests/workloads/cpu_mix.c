/*
 * cpu_mix — CPU-bound threads with a known split of their own CPU time
 * between three named functions, the ground truth for the CPU sampler
 * (tests/e2e/cpu_accuracy.sh).  Built -O2 -fomit-frame-pointer: the
 * sampler's walk must not need frame pointers.
 *
 *   usage: cpu_mix [-s] SECONDS MIX...      MIX = A:B:C, e.g. 60:30:10
 *
 * One thread per MIX (named mix0, mix1, ...), all at once, or with -s one
 * after another, so that they do not compete for this VM's two CPUs (the
 * timer fallback's tick-driven samples are biased for a thread that waits
 * for a CPU: README, "CPU sampling").  A round calls hot_a, hot_b
 * and hot_c with k x A, B and C units of the same serial work (k from 1 to
 * 8, pseudo-random, the same sequence every run); the thread runs
 * rounds until its own CPU time reaches SECONDS.  Every call is timed with
 * CLOCK_THREAD_CPUTIME_ID, so what each function cost is measured, not
 * assumed.  One line per thread:
 *   thread tid=T name=mixK cpu_ns=N a_ns=N b_ns=N c_ns=N rounds=N x=HEX
 * (cpu_ns: the thread's whole CPU time at its end, rounds and timing
 * included; rounds per CPU second measure what sampling costs the thread.)
 */
#include "wl.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>

#define UNIT 10000 /* serial steps a unit, ~12 us here */
#define STEP(x, c) do { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x += (c); } while (0)

NOINLINE uint64_t hot_a(uint64_t x, long n) { for (long i = 0; i < n; i++) STEP(x, 0xA5); return x; }
NOINLINE uint64_t hot_b(uint64_t x, long n) { for (long i = 0; i < n; i++) STEP(x, 0xB7); return x; }
NOINLINE uint64_t hot_c(uint64_t x, long n) { for (long i = 0; i < n; i++) STEP(x, 0xC3); return x; }

typedef struct worker {
    int id;
    long a, b, c;
    double secs;
    uint64_t ns_a, ns_b, ns_c, cpu_ns, x, rounds;
    pid_t tid;
} worker_t;

static uint64_t tcpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    char name[16];
    uint64_t x = 0x9E3779B97F4A7C15ull + (uint64_t)w->id, limit = (uint64_t)(w->secs * 1e9);
    snprintf(name, sizeof name, "mix%d", w->id);
    pthread_setname_np(pthread_self(), name);
    w->tid = (pid_t)syscall(SYS_gettid);
    uint32_t r = 12345u + (uint32_t)w->id;
    while (tcpu() < limit) {
        /* Rounds of 1..8 x 100 units, in a pseudo-random order: rounds of
         * one fixed length (~1.2 ms) next to a 1 ms sampling period saw
         * only ~5 phases and were off by 1.5 points. */
        long k = 1 + ((r = r * 1103515245u + 12345u) >> 16) % 8;
        uint64_t t0 = tcpu();
        x = hot_a(x, k * w->a * UNIT);
        uint64_t t1 = tcpu();
        x = hot_b(x, k * w->b * UNIT);
        uint64_t t2 = tcpu();
        x = hot_c(x, k * w->c * UNIT);
        uint64_t t3 = tcpu();
        w->ns_a += t1 - t0, w->ns_b += t2 - t1, w->ns_c += t3 - t2;
        w->rounds++;
    }
    w->x = x;
    w->cpu_ns = tcpu();
    return NULL;
}

int main(int argc, char **argv)
{
    int serial = argc > 1 && strcmp(argv[1], "-s") == 0;
    argc -= serial, argv += serial;
    int n = argc - 2;
    if (argc < 3) {
        outfd(2, "usage: cpu_mix [-s] SECONDS A:B:C...\n");
        return 2;
    }
    worker_t w[n];
    pthread_t th[n];
    for (int i = 0; i < n; i++) {
        w[i] = (worker_t){.id = i, .secs = atof(argv[1])};
        if (sscanf(argv[i + 2], "%ld:%ld:%ld", &w[i].a, &w[i].b, &w[i].c) != 3) {
            outfd(2, "bad mix %s\n", argv[i + 2]);
            return 2;
        }
        pthread_create(&th[i], NULL, worker_main, &w[i]);
        if (serial)
            pthread_join(th[i], NULL);
    }
    for (int i = 0; i < n; i++) {
        if (!serial)
            pthread_join(th[i], NULL);
        outfd(1,
              "thread tid=%d name=mix%d cpu_ns=%llu a_ns=%llu b_ns=%llu c_ns=%llu rounds=%llu "
              "x=%llx\n",
              (int)w[i].tid, i, (unsigned long long)w[i].cpu_ns, (unsigned long long)w[i].ns_a,
              (unsigned long long)w[i].ns_b, (unsigned long long)w[i].ns_c,
              (unsigned long long)w[i].rounds, (unsigned long long)w[i].x);
    }
    return 0;
}
