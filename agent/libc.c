/*
 * libc.c — the few libc-like helpers the agent needs in places where calling
 * libc is unsafe: inside malloc hooks (stdio and getenv can allocate or take
 * locks, memory-anchors P2; gperftools#426 deadlocked in sscanf -> realloc)
 * and before libc has finished initializing.  Nothing here allocates.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

size_t pa_strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

size_t pa_strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = pa_strlen(src);
    if (size) {
        size_t c = n < size - 1 ? n : size - 1;
        for (size_t i = 0; i < c; i++)
            dst[i] = src[i];
        dst[c] = 0;
    }
    return n;
}

int pa_streq(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

int pa_startswith(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return 0;
    return 1;
}

/* getenv(3) without getenv: walks environ itself, so it is safe before libc's
 * own init and never races a setenv that reallocates (mimalloc does the same
 * in _mi_prim_getenv). */
const char *pa_getenv(const char *name)
{
    size_t n = pa_strlen(name);
    if (!environ)
        return NULL;
    for (char **e = environ; *e; e++) {
        const char *s = *e;
        size_t i = 0;
        while (i < n && s[i] == name[i])
            i++;
        if (i == n && s[i] == '=')
            return s + n + 1;
    }
    return NULL;
}

char *pa_u64toa(uint64_t v, char *buf)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *buf++ = tmp[--n];
    *buf = 0;
    return buf;
}

/* Strict decimal: digits only, no sign, no overflow.  0 or -EINVAL. */
int pa_parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !*s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -EINVAL;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

/* write(2) through syscall(2): a later issue interposes write/send for socket
 * tracing, and the agent must never trace itself. Retries EINTR and short
 * writes.  Returns bytes written or -errno. */
long pa_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    size_t done = 0;
    while (done < len) {
        long r = syscall(SYS_write, fd, p + done, len - done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EIO;
        done += (size_t)r;
    }
    return (long)done;
}

uint32_t pa_gettid(void)
{
    return (uint32_t)syscall(SYS_gettid);
}

uint32_t pa_getpid(void)
{
    return (uint32_t)syscall(SYS_getpid);
}

/* Moves fd (close-on-exec) to the first free number at or above the top of
 * the usual fd range (RLIMIT_NOFILE's soft limit, at most 1024, minus 64):
 * out of the low numbers a program treats as its own.  A program that
 * execs with chosen fds open expects every other low fd closed (CPython's
 * test_subprocess test_close_fds, test_pass_fds: "fd 5 unexpectedly found"
 * when the exec'd program's agent had opened its output there; issue 16).
 * Returns the new fd, or fd itself when it cannot move (limit too low).
 * pa_fd_low_base: that base, -1 when the limit is too low for one. */
int pa_fd_low_base(void)
{
    struct rlimit rl;
    long base;
    if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl) != 0)
        return -1;
    base = rl.rlim_cur > 1024 ? 1024 : (long)rl.rlim_cur;
    base -= 64;
    return base < 16 ? -1 : (int)base;
}

int pa_fd_high(int fd)
{
    long base = pa_fd_low_base(), nfd;
    if (fd < 0 || base <= fd)
        return fd;
    nfd = syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, base);
    if (nfd < 0)
        return fd;
    syscall(SYS_close, fd);
    return (int)nfd;
}

/* Takes every free number below pa_fd_high's base with a placeholder (a
 * close-on-exec copy of one /dev/null fd), up to max of them, into ph[];
 * returns how many.  The caller closes them: in between, whatever a library
 * opens lands at the base or above (pa_unwind_init). */
int pa_fd_fill_low(int *ph, int max)
{
    long base = pa_fd_low_base(), fd, nul;
    int n = 0;
    if (base < 0 || max <= 0)
        return 0;
    nul = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC);
    if (nul < 0)
        return 0;
    if (nul >= base) {
        syscall(SYS_close, nul);
        return 0;
    }
    ph[n++] = (int)nul;
    while (n < max && (fd = syscall(SYS_fcntl, nul, F_DUPFD_CLOEXEC, 0)) >= 0) {
        if (fd >= base) {
            syscall(SYS_close, fd);
            break;
        }
        ph[n++] = (int)fd;
    }
    return n;
}

/* libunwind's memory-validation pipe (unwind.c pa_unwind_init puts it up
 * with our fds).  libunwind keeps the two numbers in a static and, when a
 * read of the read end fails (EBADF: the program closed it, a daemon's
 * closefrom(3)), closes both numbers -- by then maybe the program's files
 * -- and opens a new pipe at the lowest free ones, the program's (1.6's
 * x86_64/Ginit.c write_validate -> open_pipe).  Its reads and writes of one
 * byte would then go to the program's files.  So the fd hooks note when the
 * program closed them (pa_fd_closed), and before the agent's next call
 * into libunwind a pipe is put back at the same numbers
 * (pa_fd_unwind_pipe_restore): not at once, since closefrom(3) must leave
 * nothing open (fd_loss's daemonize checks).  A number the program dup2'd
 * a file onto is its own: left alone, as libunwind's reads of it cannot be
 * stopped.  Test: e2e unwind_fds. */
static int lu_fd[2] = {-1, -1};
PA_HIDDEN _Atomic int pa_fd_unwind_pipe_closed;

void pa_fd_unwind_pipe(int rd, int wr)
{
    lu_fd[0] = rd;
    lu_fd[1] = wr;
    pa_fd_own(rd);
    pa_fd_own(wr);
}

void pa_fd_closed(unsigned lo, unsigned hi)
{
    if (lu_fd[0] >= 0 && (((unsigned)lu_fd[0] >= lo && (unsigned)lu_fd[0] <= hi) ||
                          ((unsigned)lu_fd[1] >= lo && (unsigned)lu_fd[1] <= hi)))
        atomic_store_explicit(&pa_fd_unwind_pipe_closed, 1, memory_order_release);
}

void pa_fd_unwind_pipe_restore(void)
{
    int p[2], e = errno;
    if (!atomic_exchange_explicit(&pa_fd_unwind_pipe_closed, 0, memory_order_acq_rel))
        return;
    /* Both numbers free (a dup2'd file on either is the program's). */
    if (syscall(SYS_fcntl, lu_fd[0], F_GETFD) >= 0 || syscall(SYS_fcntl, lu_fd[1], F_GETFD) >= 0 ||
        syscall(SYS_pipe2, p, O_CLOEXEC | O_NONBLOCK) != 0) {
        errno = e;
        return;
    }
    for (int i = 0; i < 2; i++) {
        if (p[i] != lu_fd[i])
            syscall(SYS_dup3, p[i], lu_fd[i], O_CLOEXEC);
        if (p[i] != lu_fd[i] && p[i] != lu_fd[1 - i])
            syscall(SYS_close, p[i]);
    }
    pa_fd_own(lu_fd[0]);
    pa_fd_own(lu_fd[1]);
    errno = e;
}

/* The fds the agent keeps open besides its output (transport.c watches that
 * one itself): perf events, the snapshot listener and its clients.  A
 * daemon's closefrom(3), close_range or dup2 over them, and then its own
 * opens, give those numbers to the program; closing or reading them at exit
 * would close the program's files under it (stdio flushes after our
 * destructor ran) or take its connections.  So each is registered with the
 * identity fstat gives it (st_dev, st_ino), the program's fd calls
 * (hook_net.c) unregister what they close or replace, and the agent uses or
 * closes a number only while it is registered and still names the same
 * file.  Raw syscalls no hook sees are caught by the identity, except among
 * anonymous-inode files (perf events, epoll, eventfd share one inode).
 * Numbers from PA_OWN_FDS up are not tracked (pa_fd_high keeps ours low).
 * Test: fd_loss (the program's buffered files on our old numbers). */
#define PA_OWN_FDS 4096
static _Atomic uint64_t own_bits[PA_OWN_FDS / 64];
static uint64_t own_dev[PA_OWN_FDS], own_ino[PA_OWN_FDS];

void pa_fd_own(int fd)
{
    struct stat st;
    if (fd < 0 || fd >= PA_OWN_FDS || syscall(SYS_fstat, fd, &st) != 0)
        return;
    own_dev[fd] = (uint64_t)st.st_dev;
    own_ino[fd] = (uint64_t)st.st_ino;
    atomic_fetch_or_explicit(&own_bits[fd / 64], 1ull << (fd % 64), memory_order_release);
}

int pa_fd_ours(int fd)
{
    struct stat st;
    if (fd < 0)
        return 0;
    if (fd >= PA_OWN_FDS)
        return 1;
    if (!(atomic_load_explicit(&own_bits[fd / 64], memory_order_acquire) & (1ull << (fd % 64))))
        return 0;
    return syscall(SYS_fstat, fd, &st) == 0 && (uint64_t)st.st_dev == own_dev[fd] &&
           (uint64_t)st.st_ino == own_ino[fd];
}

void pa_fd_close_own(int fd)
{
    int ours = pa_fd_ours(fd);
    if (fd >= 0 && fd < PA_OWN_FDS)
        atomic_fetch_and_explicit(&own_bits[fd / 64], ~(1ull << (fd % 64)), memory_order_relaxed);
    if (ours)
        syscall(SYS_close, fd);
}

void pa_fd_taken(unsigned lo, unsigned hi)
{
    if (lo >= PA_OWN_FDS)
        return;
    if (hi >= PA_OWN_FDS)
        hi = PA_OWN_FDS - 1;
    for (unsigned w = lo / 64; w <= hi / 64; w++) {
        uint64_t m = ~0ull;
        if (w == lo / 64)
            m &= ~0ull << (lo % 64);
        if (w == hi / 64 && hi % 64 != 63)
            m &= (1ull << (hi % 64 + 1)) - 1;
        if (atomic_load_explicit(&own_bits[w], memory_order_relaxed) & m)
            atomic_fetch_and_explicit(&own_bits[w], ~m, memory_order_relaxed);
    }
}
