/*
 * test_agent_phdr.c — agent/phdr.c: dl_iterate_phdr(3) across fork(2).
 *
 * glibc's fork does not re-initialize the loader lock dl_iterate_phdr holds
 * while its callback runs (dl_load_write_lock; glibc 2.36 posix/fork.c), so a
 * child forked while another thread is inside dl_iterate_phdr can never call
 * it again.  Two threads here walk the loaded objects without pause, with a
 * callback that lingers, while the main thread forks; each child calls
 * dl_iterate_phdr once under alarm(2).
 *   hazard_is_real  forks with no gate: some child hangs (the bug the gate
 *                   exists for is present on this glibc)
 *   gated_forks     forks with pa_phdr_fork_gate() in pthread_atfork
 *                   handlers, as agent/init.c installs them: every child's
 *                   call returns (200 forks)
 *   host_walk_cfi   walkers that call dl_iterate_phdr directly (a host
 *                   thread: no gate): each child's pa_cfi_find, as a malloc
 *                   hook calls it, still returns (100 forks)
 *   owner_passes    the forking thread itself may walk while its gate is
 *                   closed (a fork handler that runs after ours)
 */
#include "check.h"
#include "internal.h"
#include "cfi.h"

#include <stdlib.h>

#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static _Atomic int stop, gated, raw, child_cfi;
static _Atomic uint64_t walks;

static int linger_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct timespec ts = {0, 20000}; /* 20 us inside, per object */
    (void)info, (void)size, (void)arg;
    nanosleep(&ts, NULL);
    return 0;
}

static int count_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)info, (void)size;
    ++*(int *)arg;
    return 0;
}

static void *walker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        if (atomic_load(&raw)) /* a host thread: no gate of ours */
            dl_iterate_phdr(linger_cb, NULL);
        else
            pa_phdr_each(linger_cb, NULL);
        atomic_fetch_add(&walks, 1);
    }
    return NULL;
}

static void prepare(void) { if (atomic_load(&gated)) pa_phdr_fork_gate(1); }
static void parent(void) { if (atomic_load(&gated)) pa_phdr_fork_gate(0); }
static void child(void) { if (atomic_load(&gated)) pa_phdr_fork_gate(2); }

/* Forks up to n children (stopping at the first hung one when stop_at_hang);
 * returns how many hung (killed by their alarm). */
static int fork_children(int n, int stop_at_hang)
{
    int hung = 0;
    for (int i = 0; i < n; i++) {
        struct timespec gap = {0, 300000};
        nanosleep(&gap, NULL);
        pid_t p = fork();
        if (p == 0) {
            int objs = 0;
            alarm(2);
            if (atomic_load(&child_cfi)) {
                /* what a malloc hook does on a stack-memo miss */
                pa_cfi_rule_t r;
                pa_cfi_find((uint64_t)(uintptr_t)&qsort + 1, &r);
                _exit(r.kind == PA_CFI_STEP ? 0 : 3);
            }
            dl_iterate_phdr(count_cb, &objs);
            _exit(objs > 0 ? 0 : 3);
        }
        int st = 0;
        if (p < 0 || waitpid(p, &st, 0) != p)
            return -1;
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM) {
            hung++;
            if (stop_at_hang)
                break;
        } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            return -1;
        }
    }
    return hung;
}

TEST(hazard_is_real)
{
    atomic_store(&gated, 0);
    int hung = fork_children(40, 1);
    printf("  ungated: %d child hung within 40 forks\n", hung);
    CHECK(hung >= 1);
}

TEST(gated_forks)
{
    atomic_store(&gated, 1);
    uint64_t w0 = atomic_load(&walks);
    int hung = fork_children(200, 0);
    printf("  gated: %d of 200 children hung; %llu walks meanwhile\n", hung,
           (unsigned long long)(atomic_load(&walks) - w0));
    CHECK_EQ_U64((uint64_t)hung, 0);
    CHECK(atomic_load(&walks) - w0 >= 100); /* the walkers really ran */
}

/* A host thread inside dl_iterate_phdr at fork leaves the lock held in the
 * child, where no gate of ours helps; the hooks' unwind-table lookup must
 * not need it (cfi.c: _dl_find_object).  The hazard is the one
 * hazard_is_real shows; here every child's lookup returns. */
TEST(host_walk_cfi)
{
    uint64_t w0 = atomic_load(&walks);
    atomic_store(&gated, 0);
    atomic_store(&child_cfi, 1);
    int hung = fork_children(100, 0);
    atomic_store(&child_cfi, 0);
    printf("  host walks: %d of 100 children hung in pa_cfi_find; %llu walks meanwhile\n", hung,
           (unsigned long long)(atomic_load(&walks) - w0));
    CHECK_EQ_U64((uint64_t)hung, 0);
    CHECK(atomic_load(&walks) - w0 >= 50);
}

TEST(owner_passes)
{
    int objs = 0;
    pa_phdr_fork_gate(1);
    pa_phdr_each(count_cb, &objs); /* would wait forever if not let through */
    pa_phdr_fork_gate(0);
    CHECK(objs > 0);
}

int main(void)
{
    pthread_t th[2];
    pthread_atfork(prepare, parent, child);
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, walker, NULL);
    RUN(hazard_is_real);
    RUN(gated_forks);
    atomic_store(&raw, 1);
    RUN(host_walk_cfi);
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    RUN(owner_passes);
    CHECK_DONE();
}
