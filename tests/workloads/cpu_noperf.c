/*
 * libcpu_noperf.so — preloaded before libperfagent.so, it refuses
 * perf_event_open(2) the way perf_event_paranoid 3 or a seccomp filter
 * would (EACCES), so tests see the agent's "sampling refused" path on any
 * machine.  Every other syscall(2) goes through.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>

long syscall(long nr, ...)
{
    static long (*real)(long, ...);
    long a[6];
    va_list ap;
    va_start(ap, nr);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (nr == SYS_perf_event_open) {
        errno = EACCES;
        return -1;
    }
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "syscall");
    return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
