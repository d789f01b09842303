/*
 * phdr.c — the agent's one way to walk the loaded objects, dl_iterate_phdr(3),
 * made safe across fork(2).
 *
 * dl_iterate_phdr holds the loader's dl_load_write_lock while it runs the
 * callback.  glibc's fork re-initializes dl_load_lock and dl_load_tls_lock in
 * the child, but not that one (glibc 2.36 posix/fork.c), so a fork while any
 * other thread is inside dl_iterate_phdr leaves the child a lock nobody will
 * ever release.  Seen under tests/e2e/cpu_fire.sh (fork scenario, about one
 * run in 50): the parent's sender was refreshing the module list, and in the
 * child both the new sender (pa_modules_refresh) and the host's malloc hook
 * (pa_cfi_find, unwinding a stack) waited on _rtld_global's lock forever; the
 * child's exit then timed out its final flush.
 *
 * So every call of ours goes through pa_phdr_each(), and fork's prepare
 * handler closes a gate and waits for the calls inside to leave: none of our
 * threads is in dl_iterate_phdr when the child is made.  A call that meets a
 * closed gate waits for the fork to finish (microseconds).  The forking
 * thread never waits at its own gate (a handler that runs after ours and
 * allocates: the guard keeps our hooks from unwinding, and the owner check
 * covers the rest).  Host threads inside dl_iterate_phdr at a fork are the
 * host's own hazard; libgcc's unwinder no longer takes that lock
 * (_dl_find_object, glibc 2.35), and neither do our hooks' unwind-table
 * lookups (cfi.c), so only the child's sender would wait on it.
 */
#include "internal.h"

#include <link.h>
#include <sched.h>

static _Atomic uint32_t gate;   /* tid of the thread forking; 0: open */
static _Atomic int inside;      /* our calls inside dl_iterate_phdr */

int pa_phdr_each(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data)
{
    uint32_t g = atomic_load(&gate);
    int r;
    if (g && g == pa_gettid())
        return dl_iterate_phdr(cb, data);
    for (;;) {
        while (atomic_load(&gate))
            sched_yield();
        /* Dekker with pa_phdr_fork_gate(): both sides store, then load
         * (seq_cst), so either we see the gate or the forker sees us. */
        atomic_fetch_add(&inside, 1);
        if (!atomic_load(&gate))
            break;
        atomic_fetch_sub(&inside, 1);
    }
    r = dl_iterate_phdr(cb, data);
    atomic_fetch_sub(&inside, 1);
    return r;
}

/* fork(2): 1 in prepare (close and wait), 0 in the parent, 2 in the child
 * (the threads that were inside or waiting do not exist there). */
void pa_phdr_fork_gate(int what)
{
    if (what == 1) {
        atomic_store(&gate, pa_gettid());
        while (atomic_load(&inside))
            sched_yield();
        return;
    }
    if (what == 2)
        atomic_store(&inside, 0);
    atomic_store(&gate, 0);
}
