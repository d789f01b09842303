/*
 * exec_fail_mt — an execve that fails while another thread allocates, for
 * tests/e2e/process_model.sh.  The agent stops recording around an exec
 * (the new image starts a stream of its own) and resumes when the exec
 * fails; every thread's allocations after that must be recorded again,
 * including those of a thread that allocated while recording was paused.
 *
 * A worker churns malloc(64)/free until main, once the worker is running,
 * has called execve on a path that does not exist (ENOENT) and said so;
 * then the worker leaks 100 blocks of 1000 B from after_leak.  Prints:
 *   exec_errno=2 churned=more
 */
#include "wl.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

static _Atomic int phase; /* 0: churn, 1: exec failed, leak now */
static _Atomic unsigned long churned;

NOINLINE void *churn_site(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    return p;
}

NOINLINE void *after_leak(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    return p;
}

static void *worker(void *arg)
{
    (void)arg;
    while (!atomic_load(&phase)) {
        free(churn_site(64));
        atomic_fetch_add_explicit(&churned, 1, memory_order_relaxed);
    }
    for (int i = 0; i < 100; i++)
        if (!after_leak(1000))
            return NULL;
    return NULL;
}

int main(void)
{
    pthread_t th;
    char *argv[] = {"/nonexistent/exec_fail_mt", NULL};
    char *envp[] = {NULL};
    int err;
    pthread_create(&th, NULL, worker, NULL);
    while (atomic_load(&churned) < 100000)
        ; /* the worker is allocating */
    execve(argv[0], argv, envp);
    err = errno;
    atomic_store(&phase, 1);
    pthread_join(th, NULL);
    out("exec_errno=%d churned=%s\n", err, atomic_load(&churned) > 100000 ? "more" : "100000");
    return 0;
}
