/*
 * hook_exit.c — process exit.  exit(3) only notes the status: the final
 * flush happens in the destructor (init.c), after the program's own atexit
 * handlers and static destructors have freed what they free.  _exit(2) and
 * _Exit(3) skip destructors, so they flush here first (bytehound hooks them
 * for the same reason, memory-anchors P14).
 */
#include "internal.h"

#include <dlfcn.h>
#include <sys/syscall.h>
#include <unistd.h>

PA_HIDDEN int pa_exit_code = -1;

PA_EXPORT void exit(int status)
{
    static void (*real)(int);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "exit");
    pa_exit_code = status & 0xff;
    if (real)
        real(status);
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
}

static __attribute__((noreturn)) void quick_exit_path(const char *name, int status)
{
    void (*real)(int);
    pa_exit_code = status & 0xff;
    pa_finish();
    *(void **)&real = dlsym(RTLD_NEXT, name);
    if (real)
        real(status);
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
}

PA_EXPORT void _exit(int status)
{
    quick_exit_path("_exit", status);
}

PA_EXPORT void _Exit(int status)
{
    quick_exit_path("_Exit", status);
}
