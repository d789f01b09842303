/*
 * hook_signal.c — sigaction(2) and the signal(3) family, so that a handler
 * the program installs for a signal crash.c handles becomes "the previous"
 * one (run after the crash flush) while ours stays installed, and the
 * program still sees its own old handler in oldact.  Thin: resolve the real
 * call, hand managed signals to crash.c, pass the rest through unchanged.
 *
 * signal(3) in glibc is sigaction with SA_RESTART and the signal blocked in
 * its handler (BSD semantics); sysv_signal(3) is SA_RESETHAND|SA_NODEFER.
 * glibc's signal() calls its internal sigaction, which no preloaded symbol
 * sees, hence these.
 */
#include "crash.h"

#include <errno.h>

PA_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *oldact)
{
    /* A vfork child's handlers are its own; the saved ones are its parent's. */
    if (!pa_crash_manages(sig) || pa_vfork_child())
        return pa_crash_real_sigaction(sig, act, oldact);
    return pa_crash_sigaction(sig, act, oldact);
}

static __sighandler_t set_handler(int sig, __sighandler_t h, int flags, int block_self)
{
    struct sigaction act, old;
    if (sig <= 0 || sig >= NSIG || h == SIG_ERR) {
        errno = EINVAL;
        return SIG_ERR;
    }
    act.sa_handler = h;
    sigemptyset(&act.sa_mask);
    if (block_self)
        sigaddset(&act.sa_mask, sig);
    act.sa_flags = flags;
    if (sigaction(sig, &act, &old) < 0)
        return SIG_ERR;
    return old.sa_handler;
}

PA_EXPORT __sighandler_t signal(int sig, __sighandler_t h)
{
    return set_handler(sig, h, SA_RESTART, 1);
}

PA_EXPORT __sighandler_t bsd_signal(int sig, __sighandler_t h)
{
    return set_handler(sig, h, SA_RESTART, 1);
}

PA_EXPORT __sighandler_t sysv_signal(int sig, __sighandler_t h)
{
    return set_handler(sig, h, SA_RESETHAND | SA_NODEFER, 0);
}
