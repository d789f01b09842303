/*
 * cpu_ops — things a host does while it is CPU-sampled that a sampler can
 * break: interrupted system calls, fork, exec, dlopen.
 *
 *   usage: cpu_ops eintr N     N blocking reads of a pipe fed by a busy
 *                              thread, then N polls that time out; prints
 *                              eintr=COUNT reads=N polls=N
 *          cpu_ops fork N      N forks; each child burns ~20 ms and exits 7
 *          cpu_ops exec N      N fork+exec of this program ("cpu_ops burn")
 *          cpu_ops dlopen N    N dlopen/dlclose of libdlleak.so (beside us)
 *          cpu_ops burn        burn ~20 ms of CPU, exit 0
 * fork/exec/dlopen print ok=COUNT (the children that exited as expected,
 * the libraries opened) and burn CPU in a second thread throughout.
 */
#include "wl.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>

static volatile int stop;
static int pipefd[2];

NOINLINE uint64_t burn_ms(int ms)
{
    struct timespec t0, t;
    uint64_t x = 88172645463325252ull;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    do {
        for (int i = 0; i < 10000; i++)
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
    return x;
}

static void *feeder(void *arg)
{
    long n = (long)arg;
    for (long i = 0; i < n; i++) {
        burn_ms(1); /* the reader blocks meanwhile */
        if (write(pipefd[1], "x", 1) != 1)
            break;
    }
    return NULL;
}

static void *burner(void *arg)
{
    (void)arg;
    while (!stop)
        burn_ms(5);
    return NULL;
}

static int do_eintr(long n)
{
    pthread_t th;
    long eintr = 0, reads = 0, polls = 0;
    char c;
    if (pipe(pipefd) != 0)
        return 1;
    pthread_create(&th, NULL, feeder, (void *)n);
    while (reads < n) {
        ssize_t r = read(pipefd[0], &c, 1);
        if (r == 1)
            reads++;
        else if (r < 0 && errno == EINTR)
            eintr++;
        else
            break;
    }
    pthread_join(th, NULL);
    while (polls < n) {
        struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
        int r = poll(&p, 1, 2);
        if (r == 0)
            polls++;
        else if (r < 0 && errno == EINTR)
            eintr++;
        else
            break;
        burn_ms(1);
    }
    out("eintr=%ld reads=%ld polls=%ld\n", eintr, reads, polls);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    long n = argc > 2 ? atol(argv[2]) : 10, ok = 0;
    pthread_t th;
    if (!strcmp(mode, "burn")) {
        burn_ms(20);
        return 0;
    }
    if (!strcmp(mode, "eintr"))
        return do_eintr(n);
    pthread_create(&th, NULL, burner, NULL);
    for (long i = 0; i < n; i++) {
        burn_ms(5);
        if (!strcmp(mode, "fork") || !strcmp(mode, "exec")) {
            int st;
            pid_t p = fork();
            if (p == 0) {
                if (!strcmp(mode, "exec")) {
                    execl("/proc/self/exe", "cpu_ops", "burn", (char *)NULL);
                    _exit(99);
                }
                burn_ms(20);
                exit(7);
            }
            if (p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) &&
                WEXITSTATUS(st) == (!strcmp(mode, "exec") ? 0 : 7))
                ok++;
        } else if (!strcmp(mode, "dlopen")) {
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s", argv[0]);
            char *slash = strrchr(path, '/');
            snprintf(slash ? slash + 1 : path, sizeof path - (size_t)(slash ? slash + 1 - path : 0),
                     "libdlleak.so");
            void *h = dlopen(path, RTLD_NOW);
            if (h && dlsym(h, "dlleak_make_block"))
                ok++;
            if (h)
                dlclose(h);
        }
    }
    stop = 1;
    pthread_join(th, NULL);
    out("ok=%ld\n", ok);
    return 0;
}
