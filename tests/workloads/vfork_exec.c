/*
 * vfork_exec — spawns children with vfork(2) the way CPython's subprocess
 * does (3.10+): in the child, reset a signal handler, close every fd from 3
 * up, then execve; and one child whose execve fails and that _exit()s.  The
 * vfork child runs in the parent's memory, so whatever the agent's hooks do
 * there is done to the parent.  Then the parent works on: it must still be
 * recorded, to its end.
 * usage: vfork_exec N BUSY_MS   (N children that exec /bin/true, then one
 *                                that fails; BUSY_MS of CPU after them)
 *
 * Known heap (exact mode, requested sizes), checked by tests/e2e/vfork.sh:
 *   before    10 x 1000 B made and freed    main -> before
 *   leak_after 5 x 2000 B live at exit      main -> leak_after
 * Prints "children N+1 failed_exec 1" (the failed child's status 127).
 */
#include "wl.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

void *volatile vfork_sink;

NOINLINE void before(void)
{
    for (int i = 0; i < 10; i++) {
        void *volatile p = malloc(1000);
        free(p);
    }
    NO_TAIL();
}

NOINLINE void *leak_after(void)
{
    void *p = malloc(2000);
    NO_TAIL();
    return p;
}

NOINLINE void busy(long ms)
{
    struct timespec t0, t;
    volatile unsigned long x = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        for (int i = 0; i < 100000; i++)
            x += (unsigned long)i;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

/* What CPython's child_exec does, through the libc entry points the agent
 * interposes (sigaction, close_range, execve, _exit). */
static int spawn(const char *path)
{
    char *argv[] = {(char *)path, NULL};
    char *envp[] = {NULL};
    pid_t pid = vfork();
    if (pid == 0) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGSEGV, &dfl, NULL);
        sigaction(SIGPIPE, &dfl, NULL);
        close_range(3, ~0U, 0);
        execve(path, argv, envp);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 3, ms = argc > 2 ? atol(argv[2]) : 0;
    int ok = 0, failed = 0;
    before();
    for (long i = 0; i < n; i++)
        ok += spawn("/bin/true") == 0;
    failed += spawn("/nonexistent/vfork_exec") == 127;
    busy(ms);
    for (int i = 0; i < 5; i++)
        vfork_sink = leak_after();
    out("children %d failed_exec %d\n", ok + failed, failed);
    return 0;
}
