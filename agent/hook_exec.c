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
#include <sys/mman.h>
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

PA_HIDDEN const char *pa_output_handover(int wrote); /* init.c */

/* Returns whether recording was on (so exec_failed() should resume it);
 * *wrote: whether this image started a stream (opened its output). */
static int exec_prepare(int *wrote)
{
    int on;
    *wrote = 0;
    if (atomic_load_explicit(&pa_state, memory_order_acquire) != 2 || pa_vfork_child())
        return 0; /* a vfork child: the sender and rings are its parent's */
    on = atomic_exchange(&pa_agent_on, 0);
    atomic_store(&pa_heap_on, 0);
    if (on && !atomic_load(&pa_need_sender)) {
        *wrote = 1;
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

/* The plain output name (a PERFAGENT_OUTPUT without %p) goes to the image
 * this one execs, the same process (init.c take_handover): it sees
 * PERFAGENT_OUTPUT_OWNER=PID:W instead of PID, W saying whether we wrote a
 * stream there.  Only the environment the exec passes on changes, never
 * the host's strings: in environ one pointer is swapped (and put back if
 * exec fails); a caller's own envp, maybe read-only, is copied into an
 * mmap'd array (no malloc in an exec that may follow a vfork or fork of a
 * threaded program).  An envp without the variable is left alone: the
 * host took it out. */
typedef struct {
    char **slot, *saved; /* environ's entry swapped */
    char **copy;         /* or the copy of the caller's envp */
    size_t bytes;
} handover_t;

static char *const *handover_env(char *const *envp, int wrote, handover_t *h)
{
    extern char **environ;
    const char *entry = pa_output_handover(wrote);
    size_t n, at = (size_t)-1;
    void *m;
    if (!entry || !envp)
        return envp;
    for (n = 0; envp[n]; n++)
        if (at == (size_t)-1 && pa_startswith(envp[n], "PERFAGENT_OUTPUT_OWNER="))
            at = n;
    if (at == (size_t)-1)
        return envp;
    if (envp == environ) {
        h->slot = &environ[at];
        h->saved = environ[at];
        environ[at] = (char *)entry;
        return envp;
    }
    m = mmap(NULL, (n + 1) * sizeof(char *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
    if (m == MAP_FAILED)
        return envp; /* the old rule: the next image takes NAME.PID */
    h->copy = m;
    h->bytes = (n + 1) * sizeof(char *);
    for (size_t i = 0; i <= n; i++)
        h->copy[i] = envp[i];
    h->copy[at] = (char *)entry;
    return h->copy;
}

/* exec failed: this image keeps the name (and errno stays exec's). */
static void handover_undo(handover_t *h)
{
    int saved = errno;
    if (h->slot)
        *h->slot = h->saved;
    if (h->copy)
        munmap(h->copy, h->bytes);
    errno = saved;
}

/* ENV: the environment the call passes on; CALL passes env_ for it. */
#define EXEC_CALL(sym, type, env, call)                                                        \
    do {                                                                                       \
        extern char **environ;                                                                 \
        static void *real;                                                                     \
        type fn = (type)resolve(&real, sym);                                                   \
        handover_t ho_ = {0};                                                                  \
        char *const *env_;                                                                     \
        int on_, wrote_, r_;                                                                   \
        if (!fn) {                                                                             \
            errno = ENOSYS;                                                                    \
            return -1;                                                                         \
        }                                                                                      \
        on_ = exec_prepare(&wrote_);                                                           \
        env_ = on_ ? handover_env(env, wrote_, &ho_) : (env);                                  \
        (void)env_;                                                                            \
        r_ = call;                                                                             \
        handover_undo(&ho_);                                                                   \
        exec_failed(on_);                                                                      \
        return r_;                                                                             \
    } while (0)

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execv_fn)(const char *, char *const[]);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);
typedef int (*execveat_fn)(int, const char *, char *const[], char *const[], int);

PA_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    EXEC_CALL("execve", execve_fn, envp, fn(path, argv, env_));
}

PA_EXPORT int execv(const char *path, char *const argv[])
{
    EXEC_CALL("execv", execv_fn, environ, fn(path, argv));
}

PA_EXPORT int execvp(const char *file, char *const argv[])
{
    EXEC_CALL("execvp", execv_fn, environ, fn(file, argv));
}

PA_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    EXEC_CALL("execvpe", execve_fn, envp, fn(file, argv, env_));
}

PA_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    EXEC_CALL("fexecve", fexecve_fn, envp, fn(fd, argv, env_));
}

PA_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                       int flags)
{
    EXEC_CALL("execveat", execveat_fn, envp, fn(dirfd, path, argv, env_, flags));
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
