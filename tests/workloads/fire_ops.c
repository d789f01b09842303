/*
 * fire_ops — a host that keeps doing what a CPU sampler can break, while a
 * busy thread ("fire_busy") is sampled: tests/e2e/cpu_fire.sh runs each mode
 * 50 times under 4 kHz sampling and compares the output with a plain run.
 *
 *   usage: fire_ops MODE N
 *     dlopen N  two threads each dlopen, call into and dlclose libdlleak.so
 *               (beside this program) N times
 *     fork N    N forks from the main thread while another thread mallocs
 *               and frees; each child allocates, burns ~20 ms, exits 7
 *     exec N    the same, each child execs "fire_ops burn" (exits 0)
 *     churn N   three threads each make N malloc/calloc/realloc/
 *               posix_memalign/free calls on a 256-slot live set
 *     eintr N   one thread reads N bytes from a pipe whose writer sleeps
 *               0.3 ms between bytes, so the reader really blocks; one
 *               polls an empty pipe N times (1 ms timeout); the main
 *               thread sleeps N times 0.5 ms (nanosleep).  None retries on EINTR: each
 *               counts it, and the program prints the total (the writer's
 *               own EINTRs included); on stderr, by call, and how many
 *               reads found the pipe empty (blocked).
 *     burn      burn ~5 ms of CPU with a few allocations, exit 0
 * Every mode except burn also runs the busy thread: a fixed amount of
 * integer and floating-point work whose result it prints (a sampler that
 * corrupted a register or the FPU state would change it).  The output
 * depends only on the arguments:
 *   dlopen: threads=2 rounds=N sum=S busy=B
 *   fork: ok=N busy=B          exec: ok=N busy=B
 *   churn: threads=3 calls=N sum=S busy=B
 *   eintr: reads=N polls=N sleeps=N eintr=0 busy=B
 * ok counts the children that exited as expected.  Exit status 0 when
 * everything went as planned, 1 otherwise (an EINTR seen included).
 */
#include "wl.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>

/* ~150 ms of CPU: long enough that timer mode, which finds new threads at
 * the sender's rounds, samples it on a loaded machine (8000 rounds, ~50 ms,
 * went unsampled in 1 run of 50 under a loaded .ci/run). */
#define BUSY_ROUNDS 24000

static volatile int stop;
static long n_arg;
static char self_path[PATH_MAX];

static uint64_t thread_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Burn about US microseconds of this thread's CPU time. */
NOINLINE static uint64_t burn_us(long us)
{
    uint64_t end = thread_ns() + (uint64_t)us * 1000u, x = 88172645463325252ull;
    do {
        for (int i = 0; i < 2000; i++)
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    } while (thread_ns() < end);
    return x;
}

/* Fixed work, so its result is known: integer and double arithmetic. */
NOINLINE static void *busy(void *arg)
{
    uint64_t *res = arg, x = 0x9E3779B97F4A7C15ull;
    double acc = 1.0;
    for (int r = 0; r < BUSY_ROUNDS; r++) {
        for (int i = 0; i < 4000; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            acc = acc * 0.999999 + (double)(x & 0xffff) * 1e-6;
        }
        NO_TAIL();
    }
    uint64_t bits;
    memcpy(&bits, &acc, sizeof bits);
    *res = x ^ bits;
    return NULL;
}

/* ---- dlopen */
typedef void *(*make_fn)(size_t);
typedef unsigned long (*scratch_fn)(int);

static void *dl_worker(void *arg)
{
    unsigned long *sum = arg;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", self_path);
    char *slash = strrchr(path, '/');
    snprintf(slash ? slash + 1 : path, 32, "libdlleak.so");
    for (long i = 0; i < n_arg; i++) {
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h)
            return NULL;
        make_fn mk = (make_fn)dlsym(h, "dlleak_make_block");
        scratch_fn sc = (scratch_fn)dlsym(h, "dlleak_scratch");
        if (mk && sc) {
            unsigned char *p = mk(333);
            if (p)
                *sum += p[332];
            free(p);
            *sum += sc((int)i);
        }
        if (dlclose(h) != 0)
            return NULL;
    }
    return NULL;
}

/* ---- fork / exec: a thread allocating while the main thread forks */
static void *allocator(void *arg)
{
    uint64_t rng = 42;
    void *slot[64] = {0};
    (void)arg;
    while (!stop) {
        uint64_t r = wl_rnd(&rng);
        int i = (int)(r % 64);
        free(slot[i]);
        slot[i] = malloc(16 + (size_t)(r >> 40) % 2000);
        if (slot[i])
            memset(slot[i], 1, 16);
    }
    for (int i = 0; i < 64; i++)
        free(slot[i]);
    return NULL;
}

static void child_work(void)
{
    for (int i = 0; i < 100; i++) {
        /* volatile: the compiler may not drop a malloc/free pair */
        char *volatile p = malloc(64 + (size_t)i);
        if (p)
            p[0] = (char)i;
        free(p);
    }
    burn_us(20000); /* 5 scheduler ticks: timer mode samples it too */
}

static long do_fork(int exec)
{
    long ok = 0;
    pthread_t th;
    pthread_create(&th, NULL, allocator, NULL);
    for (long i = 0; i < n_arg; i++) {
        int st;
        burn_us(2000);
        pid_t p = fork();
        if (p == 0) {
            if (exec) {
                execl(self_path, "fire_ops", "burn", (char *)NULL);
                _exit(99);
            }
            child_work();
            exit(7);
        }
        if (p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == (exec ? 0 : 7))
            ok++;
    }
    stop = 1;
    pthread_join(th, NULL);
    return ok;
}

/* ---- churn */
typedef struct {
    int id;
    uint64_t sum;
} churner_t;

static void *churner(void *arg)
{
    churner_t *c = arg;
    uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(c->id + 1);
    unsigned char *slot[256] = {0};
    for (long k = 0; k < n_arg; k++) {
        uint64_t r = wl_rnd(&rng);
        int i = (int)(r % 256);
        size_t n = 1 + (size_t)(r >> 20) % 3000;
        switch ((r >> 8) % 5) {
        case 0:
            free(slot[i]);
            slot[i] = malloc(n);
            break;
        case 1:
            free(slot[i]);
            slot[i] = calloc(1, n);
            break;
        case 2: {
            unsigned char *q = realloc(slot[i], n);
            if (q)
                slot[i] = q;
            break;
        }
        case 3: {
            void *q = NULL;
            free(slot[i]);
            slot[i] = posix_memalign(&q, 64, n) == 0 ? q : NULL;
            break;
        }
        default:
            free(slot[i]);
            slot[i] = NULL;
            continue;
        }
        if (slot[i]) {
            slot[i][0] = (unsigned char)k;
            c->sum += slot[i][0] + ((uintptr_t)slot[i] % 16 == 0);
        }
    }
    for (int i = 0; i < 256; i++)
        free(slot[i]);
    return NULL;
}

/* ---- eintr: no call below retries on EINTR; each one counts it */
static int data_pipe[2], empty_pipe[2];
static long eintr_seen[4];     /* read, poll, nanosleep, the writer's nanosleep */
static long reads_blocked; /* read calls that found the pipe empty, so blocked */

/* The writer pauses 300 us of wall time between bytes (a nanosleep: the
 * reader blocks whatever the machine's load; an EINTR here is counted too,
 * then the rest of the pause is slept). */
static void *writer(void *arg)
{
    (void)arg;
    for (long i = 0; i < n_arg; i++) {
        struct timespec ts = {0, 300000};
        burn_us(20);
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            eintr_seen[3]++;
        if (write(data_pipe[1], "x", 1) != 1)
            break;
    }
    return NULL;
}

static void *reader(void *arg)
{
    long *reads = arg;
    char c;
    while (*reads < n_arg) {
        int avail = 0;
        if (ioctl(data_pipe[0], FIONREAD, &avail) == 0 && avail == 0)
            reads_blocked++;
        ssize_t r = read(data_pipe[0], &c, 1);
        if (r == 1)
            (*reads)++;
        else if (r < 0 && errno == EINTR)
            eintr_seen[0]++;
        else
            break;
        burn_us(50); /* on CPU between calls: sampled right up to the next read */
    }
    return NULL;
}

static void *poller(void *arg)
{
    long *polls = arg;
    while (*polls < n_arg) {
        struct pollfd p = {.fd = empty_pipe[0], .events = POLLIN};
        int r = poll(&p, 1, 1);
        if (r == 0)
            (*polls)++;
        else if (r < 0 && errno == EINTR)
            eintr_seen[1]++;
        else
            break;
        burn_us(50);
    }
    return NULL;
}

static void *sleeper(void *arg)
{
    long *sleeps = arg;
    while (*sleeps < n_arg) {
        struct timespec ts = {0, 500000};
        if (nanosleep(&ts, NULL) == 0)
            (*sleeps)++;
        else if (errno == EINTR)
            eintr_seen[2]++;
        else
            break;
        burn_us(50);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    uint64_t busy_res = 0;
    pthread_t bt;
    int rc = 0;
    n_arg = argc > 2 ? atol(argv[2]) : 10;
    if (!strcmp(mode, "burn")) {
        child_work();
        return 0;
    }
    ssize_t len = readlink("/proc/self/exe", self_path, sizeof self_path - 32);
    WL_ASSERT(len > 0 && n_arg > 0, 2);
    self_path[len] = 0;
    /* The busy thread is "fire_busy" from birth (a new thread takes its
     * creator's name): the agent reads a thread's name when it first sees
     * it, which may be before the thread could rename itself. */
    char own[16] = "";
    pthread_getname_np(pthread_self(), own, sizeof own);
    pthread_setname_np(pthread_self(), "fire_busy");
    pthread_create(&bt, NULL, busy, &busy_res);
    pthread_setname_np(pthread_self(), own);

    char line[256];
    if (!strcmp(mode, "dlopen")) {
        pthread_t t[2];
        unsigned long sum[2] = {0, 0};
        for (int i = 0; i < 2; i++)
            pthread_create(&t[i], NULL, dl_worker, &sum[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        snprintf(line, sizeof line, "dlopen: threads=2 rounds=%ld sum=%lu", n_arg, sum[0] + sum[1]);
        rc = sum[0] != sum[1];
    } else if (!strcmp(mode, "fork") || !strcmp(mode, "exec")) {
        long ok = do_fork(mode[0] == 'e');
        snprintf(line, sizeof line, "%s: ok=%ld", mode, ok);
        rc = ok != n_arg;
    } else if (!strcmp(mode, "churn")) {
        pthread_t t[3];
        churner_t c[3];
        for (int i = 0; i < 3; i++) {
            c[i] = (churner_t){.id = i, .sum = 0};
            pthread_create(&t[i], NULL, churner, &c[i]);
        }
        for (int i = 0; i < 3; i++)
            pthread_join(t[i], NULL);
        snprintf(line, sizeof line, "churn: threads=3 calls=%ld sum=%lu", n_arg,
                 (unsigned long)(c[0].sum + c[1].sum + c[2].sum));
    } else if (!strcmp(mode, "eintr")) {
        pthread_t t[3];
        long reads = 0, polls = 0, sleeps = 0;
        WL_ASSERT(pipe(data_pipe) == 0 && pipe(empty_pipe) == 0, 3);
        pthread_create(&t[0], NULL, writer, NULL);
        pthread_create(&t[1], NULL, reader, &reads);
        pthread_create(&t[2], NULL, poller, &polls);
        /* The main thread sleeps: a process-directed signal goes to it
         * first whenever it can take one. */
        sleeper(&sleeps);
        for (int i = 0; i < 3; i++)
            pthread_join(t[i], NULL);
        long e = eintr_seen[0] + eintr_seen[1] + eintr_seen[2] + eintr_seen[3];
        snprintf(line, sizeof line, "eintr: reads=%ld polls=%ld sleeps=%ld eintr=%ld", reads, polls,
                 sleeps, e);
        /* on stderr: how many reads blocked depends on timing */
        err("fire_ops: EINTR in read %ld, poll %ld, nanosleep %ld, writer %ld; %ld of %ld reads "
            "blocked\n",
            eintr_seen[0], eintr_seen[1], eintr_seen[2], eintr_seen[3], reads_blocked, reads);
        rc = e != 0 || reads != n_arg || polls != n_arg || sleeps != n_arg;
    } else {
        err("usage: fire_ops dlopen|fork|exec|churn|eintr N | burn\n");
        return 2;
    }
    pthread_join(bt, NULL);
    out("%s busy=%016llx\n", line, (unsigned long long)busy_res);
    return rc;
}
