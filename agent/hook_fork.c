/*
 * hook_fork.c — fork(2) made before the agent has initialized: a library
 * constructor that runs before ours (the loader initializes LD_PRELOAD's
 * later objects and the program's dependencies first) and forks before any
 * hooked call.  The parent initializes the agent here, so that the child
 * knows it is a fork child (init.c's adopt_early_fork: its own pid, the
 * parent's stream pid, a file name of its own) instead of a second "first"
 * process truncating the parent's output file.  After init this is one
 * load and the real fork.  Test: ctor_fork's child_first.
 */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <unistd.h>

PA_EXPORT pid_t fork(void)
{
    static pid_t (*real)(void);
    pid_t (*f)(void) = __atomic_load_n(&real, __ATOMIC_ACQUIRE);
    if (PA_UNLIKELY(atomic_load_explicit(&pa_state, memory_order_acquire) == 0))
        pa_init();
    if (!f) {
        *(void **)&f = dlsym(RTLD_NEXT, "fork");
        __atomic_store_n(&real, f, __ATOMIC_RELEASE);
    }
    if (!f) { /* a raw SYS_fork would skip glibc's own fork bookkeeping */
        errno = ENOSYS;
        return -1;
    }
    pid_t r = f();
    if (r == 0)
        pa_fork_child_early();
    return r;
}
