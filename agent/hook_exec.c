/*
 * hook_exec.c — the exec family.  exec replaces the image without running
 * destructors, so the stream would end without its last rows and without a
 * Goodbye; each hook flushes first (bounded, EXEC_FLUSH_MS) and, if exec
 * fails, recording resumes on a new stream.
 *
 * glibc's execv/execvp/execl* call execve internally, not through the PLT,
 * so each public entry point is hooked (varargs forms are turned into an
 * argv array on the stack, as exec(3) describes them).
 */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <unistd.h>

#define EXEC_FLUSH_MS 2000
#define MAX_ARGS 4096

static void *resolve(void **slot, const char *name)
{
    void *f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (!f) {
        f = dlsym(RTLD_NEXT, name);
        __atomic_store_n(slot, f, __ATOMIC_RELEASE);
    }
    return f;
}

/* Returns whether recording was on (so exec_failed() should resume it). */
static int exec_prepare(void)
{
    int on;
    if (atomic_load_explicit(&pa_state, memory_order_acquire) != 2 || pa_vfork_child())
        return 0; /* a vfork child: the sender and rings are its parent's */
    on = atomic_exchange(&pa_agent_on, 0);
    atomic_store(&pa_heap_on, 0);
    if (on && !atomic_load(&pa_need_sender)) {
        pa_tls.guard++;
        pa_cpu_disable();
        pa_sender_stop(-1, EXEC_FLUSH_MS);
        pa_cpu_close();
        pa_tls.guard--;
    }
    return on;
}

static void exec_failed(int was_on)
{
    int saved = errno;
    if (was_on) {
        pa_tls.guard++;
        pa_sender_restart();
        atomic_store(&pa_agent_on, 1);
        atomic_store(&pa_heap_on, pa_cfg.malloc_rate != 0);
        if (pa_cfg.cpu_hz)
            pa_cpu_start();
        pa_tls.guard--;
    }
    errno = saved;
}

#define EXEC_CALL(sym, type, call)                                                             \
    do {                                                                                       \
        static void *real;                                                                     \
        type fn = (type)resolve(&real, sym);                                                   \
        int on_, r_;                                                                           \
        if (!fn) {                                                                             \
            errno = ENOSYS;                                                                    \
            return -1;                                                                         \
        }                                                                                      \
        on_ = exec_prepare();                                                                  \
        r_ = call;                                                                             \
        exec_failed(on_);                                                                      \
        return r_;                                                                             \
    } while (0)

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execv_fn)(const char *, char *const[]);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);
typedef int (*execveat_fn)(int, const char *, char *const[], char *const[], int);

PA_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    EXEC_CALL("execve", execve_fn, fn(path, argv, envp));
}

PA_EXPORT int execv(const char *path, char *const argv[])
{
    EXEC_CALL("execv", execv_fn, fn(path, argv));
}

PA_EXPORT int execvp(const char *file, char *const argv[])
{
    EXEC_CALL("execvp", execv_fn, fn(file, argv));
}

PA_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    EXEC_CALL("execvpe", execve_fn, fn(file, argv, envp));
}

PA_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    EXEC_CALL("fexecve", fexecve_fn, fn(fd, argv, envp));
}

PA_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                       int flags)
{
    EXEC_CALL("execveat", execveat_fn, fn(dirfd, path, argv, envp, flags));
}

/* execl(3) family: collect the NULL-terminated varargs (and for execle the
 * envp after the NULL) into arrays, then take the array path above. */
#define COLLECT_ARGS(arg0, ap, argv)                                                           \
    do {                                                                                       \
        unsigned n_ = 0;                                                                       \
        argv[n_++] = (char *)arg0;                                                             \
        while (argv[n_ - 1] && n_ < MAX_ARGS)                                                  \
            argv[n_++] = va_arg(ap, char *);                                                   \
        if (argv[n_ - 1]) { /* too many: exec(3) would fail the same way */                    \
            va_end(ap);                                                                        \
            errno = E2BIG;                                                                     \
            return -1;                                                                         \
        }                                                                                      \
    } while (0)

PA_EXPORT int execl(const char *path, const char *arg, ...)
{
    char *argv[MAX_ARGS];
    va_list ap;
    va_start(ap, arg);
    COLLECT_ARGS(arg, ap, argv);
    va_end(ap);
    return execv(path, argv);
}

PA_EXPORT int execlp(const char *file, const char *arg, ...)
{
    char *argv[MAX_ARGS];
    va_list ap;
    va_start(ap, arg);
    COLLECT_ARGS(arg, ap, argv);
    va_end(ap);
    return execvp(file, argv);
}

PA_EXPORT int execle(const char *path, const char *arg, ...)
{
    char *argv[MAX_ARGS];
    char *const *envp;
    va_list ap;
    va_start(ap, arg);
    COLLECT_ARGS(arg, ap, argv);
    envp = va_arg(ap, char *const *);
    va_end(ap);
    return execve(path, argv, envp);
}
