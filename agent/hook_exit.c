/*
 * hook_exit.c — process exit.  exit(3) only notes the status: the final
 * flush happens in the destructor (init.c), after the program's own atexit
 * handlers and static destructors have freed what they free.  _exit(2) and
 * _Exit(3) skip destructors, so they flush here first (bytehound hooks them
 * for the same reason, memory-anchors P14).
 *
 * A program that returns from main() exits through glibc's internal call
 * to exit, which no preloaded exit() sees; so __libc_start_main is
 * interposed to run main() under a wrapper that notes its return value.
 * The wrapper's frame sits under main() in every stack; the unwinders drop
 * frames inside the agent wherever they are (unwind.h).  Its cleanup
 * handler sees main's thread end without returning (fdtable.c says why
 * that matters).
 */
#include "internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

PA_HIDDEN int pa_exit_code = -1;

typedef int (*pa_main_fn)(int, char **, char **);
static pa_main_fn real_main;
static int libc_started;

/* main's thread unwinding: pthread_exit or a cancel (glibc runs the
 * cleanup handlers of the frames it unwinds, pthread_cleanup_push(3)). */
static void main_ending(void *arg)
{
    (void)arg;
    pa_sender_main_ending();
}

static PA_NOINLINE int main_wrapper(int argc, char **argv, char **envp)
{
    int r;
    pthread_cleanup_push(main_ending, NULL);
    r = real_main(argc, argv, envp);
    pthread_cleanup_pop(0);
    pa_exit_code = r & 0xff;
    __asm__ volatile("" ::: "memory"); /* not a tail call: r is needed */
    return r;
}

/* glibc's signature (csu/libc-start.c); the last arguments are unused by
 * 2.34+ but passed through unchanged. */
PA_EXPORT int __libc_start_main(pa_main_fn main, int argc, char **argv, void (*init)(void),
                                void (*fini)(void), void (*rtld_fini)(void), void *stack_end)
{
    int (*real)(pa_main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void),
                void *);
    *(void **)&real = dlsym(RTLD_NEXT, "__libc_start_main");
    if (!real)
        syscall(SYS_exit_group, 127);
    real_main = main;
    libc_started = 1;
    return real(main_wrapper, argc, argv, init, fini, rtld_fini, stack_end);
}

PA_EXPORT void exit(int status)
{
    static void (*real)(int);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "exit");
    if (!pa_vfork_child()) /* not the parent's code (init.c pa_vfork_child) */
        pa_exit_code = status & 0xff;
    /* exit() from a constructor (a daemonizing library, a fork child that
     * ends in one): __libc_start_main has not registered the loader's
     * _dl_fini yet, so no destructor of ours would run: flush here.  Test:
     * process_model's ctor_fork. */
    if (!libc_started && !pa_vfork_child())
        pa_finish();
    if (real)
        real(status);
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
}

static __attribute__((noreturn)) void quick_exit_path(const char *name, int status)
{
    void (*real)(int);
    /* A vfork child's _exit (its exec failed) ends the child only: the
     * recording it would finish is its parent's (init.c pa_vfork_child). */
    if (pa_vfork_child())
        syscall(SYS_exit_group, status);
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
