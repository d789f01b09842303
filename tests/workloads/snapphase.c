/*
 * snapphase — a heap that grows in phases, or churns in threads, waiting
 * for the test between steps, so `perfagent snapshot PID` is taken at known
 * points (tests/e2e/snapshots_live.sh).  DIR is a directory the test
 * watches: the workload creates DIR/<name> files to say where it is and
 * waits for DIR/<name> files the test creates (polling every 5 ms, giving
 * up after 60 s so a broken test cannot hang).
 *
 * Each file it creates holds its pid.
 *
 *   snapphase phases DIR P N SIZE
 *     steady_set() holds 8 x 4096 B for the whole run.  For k = 1..P:
 *     leak_phase() leaks N blocks of SIZE bytes (phase k: k*N blocks live),
 *     churn() allocates and frees 100 x 64 B; then creates DIR/phaseK and
 *     waits for DIR/goK.  At exit: leak_phase P*N x SIZE live, steady_set
 *     8 x 4096, nothing else from this program.
 *   snapphase churn DIR T K SIZE
 *     T threads each hold K blocks of SIZE bytes (churn_slot) and replace
 *     them one at a time (free, then malloc; 20, then a 0.2 ms pause) until
 *     DIR/stop exists; DIR/ready
 *     once all T hold their K.  At any moment a thread holds K or K-1 of
 *     them; at exit all are freed (nothing from churn_slot is live).
 */
#include "wl.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *dir;
static void *steady[8];
void *volatile snapphase_sink;
static volatile int stop_now;
static int nthreads, per_thread;
static size_t size;
static volatile int filled;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void touch(const char *name)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    char pid[24];
    /* open/write, not stdio: no allocation of ours in the heap the test
     * checks (fopen's buffer would be in the peak snapshot). */
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
        if (write(fd, pid, (size_t)n) < 0)
            err("snapphase: %s: write failed\n", p);
        close(fd);
    }
}

static int exists(const char *name)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

static int wait_for(const char *name)
{
    struct timespec ms5 = {0, 5000000};
    for (int i = 0; i < 12000; i++) {
        if (exists(name))
            return 0;
        nanosleep(&ms5, NULL);
    }
    err("snapphase: gave up waiting for %s/%s\n", dir, name);
    return -1;
}

NOINLINE void *leak_phase(size_t sz)
{
    void *p = malloc(sz);
    NO_TAIL();
    return p;
}

NOINLINE void steady_set(void)
{
    for (int i = 0; i < 8; i++)
        steady[i] = malloc(4096);
    NO_TAIL();
}

NOINLINE void churn(void)
{
    for (int i = 0; i < 100; i++) {
        void *volatile p = malloc(64);
        free(p);
    }
    NO_TAIL();
}

NOINLINE void *churn_slot(size_t sz)
{
    void *p = malloc(sz);
    NO_TAIL();
    return p;
}

static void *churner(void *arg)
{
    void **slot = calloc((size_t)per_thread, sizeof(*slot));
    for (int i = 0; i < per_thread; i++)
        slot[i] = churn_slot(size);
    pthread_mutex_lock(&mu);
    filled++;
    pthread_mutex_unlock(&mu);
    /* Bursts of 20 with a 0.2 ms pause: ~100000 replacements a second a
     * thread, a rate an exact-mode collector keeps up with (no drops). */
    struct timespec pause = {0, 200000};
    for (unsigned long i = 0; !stop_now; i++) {
        int k = (int)(i % (unsigned long)per_thread);
        free(slot[k]);
        slot[k] = churn_slot(size);
        if (i % 20 == 19)
            nanosleep(&pause, NULL);
    }
    for (int i = 0; i < per_thread; i++)
        free(slot[i]);
    free(slot);
    return NULL;
}

static int phases(int p, long n)
{
    char name[32];
    steady_set();
    for (int k = 1; k <= p; k++) {
        for (long i = 0; i < n; i++)
            snapphase_sink = leak_phase(size);
        churn();
        snprintf(name, sizeof(name), "phase%d", k);
        touch(name);
        snprintf(name, sizeof(name), "go%d", k);
        if (wait_for(name) < 0)
            return 1;
    }
    return steady[0] ? 0 : 1;
}

static int churns(void)
{
    pthread_t th[64];
    struct timespec ms1 = {0, 1000000};
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, churner, NULL);
    for (;;) {
        pthread_mutex_lock(&mu);
        int f = filled;
        pthread_mutex_unlock(&mu);
        if (f == nthreads)
            break;
        nanosleep(&ms1, NULL);
    }
    touch("ready");
    int rc = wait_for("stop");
    stop_now = 1;
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    return rc < 0;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        err("usage: snapphase phases DIR P N SIZE | snapphase churn DIR T K SIZE\n");
        return 2;
    }
    dir = argv[2];
    size = (size_t)atol(argv[5]);
    if (!strcmp(argv[1], "phases"))
        return phases(atoi(argv[3]), atol(argv[4]));
    nthreads = atoi(argv[3]);
    per_thread = atoi(argv[4]);
    if (nthreads < 1 || nthreads > 64 || per_thread < 1)
        return 2;
    return churns();
}
