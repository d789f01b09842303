/*
 * fdtable.c — the agent's own fds and the program's: ours kept out of the
 * program's low numbers and registered with their identity (issue 16), and
 * the sender's own file-descriptor table (issue 15), which takes them out
 * of the program's reach altogether where it is safe.
 *
 * The sender's own table.  Why.  A process whose fd table has a single user takes no reference on
 * the file in each fd syscall (fs/file.c __fget_light: a table whose count
 * is 1 cannot lose the file under the call).  A second thread that shares
 * the table makes every read, write, send, recv and epoll_ctl take one and
 * drop it (fdget/fput), and in a single-threaded program the sender is that
 * second thread.  Measured on redis-benchmark's client (README, "Sockets
 * and HTTP"): the sender on a table of its own moved its GET throughput
 * from 0.935x to 0.977x of the plain run.
 *
 * How.  As it starts, the sender calls close_range(0, ~0U,
 * CLOSE_RANGE_UNSHARE) (close_range(2)): it gets a table of its own with
 * none of the program's fds in it, in one call that copies none of them
 * (so it never holds a reference to a pipe or socket of the program's:
 * a parent waiting for EOF on the program's stdout is never kept
 * waiting).  0, 1 and 2 become /dev/null so that nothing of ours lands on
 * them.  What the sender opens from then on (its output, the snapshot
 * socket, /proc files) the program can neither see nor close nor dup2 a
 * file over, so transport.c's taken-output defence and libc.c's registry
 * stand down for those (pa_fds_here).  The sender's log lines go to the
 * program's fd 2 as it is when the line is written: pidfd_getfd(2) on a
 * pidfd of the process takes a copy of it from the thread-group leader's
 * table (Linux 5.6; a caller in the same thread group passes ptrace's
 * access check, kernel/ptrace.c __ptrace_may_access).
 *
 * CPU sampling does not stand in the way: its perf events are opened,
 * disabled and closed by the program's threads (cpu.c pa_cpu_start, at
 * exec and exit) and stay in the program's table, registered as before;
 * the sender only reads their mapped rings, and the timer fallback's
 * timers are no fds.  libunwind (and its memory-check pipe, in the
 * program's table) runs on the program's threads only: the sender walks
 * CPU samples with the .eh_frame rules alone.
 *
 * When not.  The sender shares the program's table, as before, when:
 *  - the program's main thread has ended (pthread_exit, or cancelled):
 *    when the last of its threads ends, the kernel closes the program's
 *    table with it, and the sender's exit(0) in its place (lastthread.c)
 *    must still flush stdio and run atexit handlers on the program's fds.
 *    A cleanup handler under main() (hook_exit.c) sees main's thread
 *    unwind and hands the sender over to a new thread on the program's
 *    table first (sender.c pa_sender_main_ending; the stream goes on through
 *    the resume path transport.c has for a taken output);
 *  - in a fork child forked from a thread other than main: its only
 *    thread ends by returning from its start routine, which nothing sees
 *    in time;
 *  - PERFAGENT_PRIVATE_FDS=0, or the kernel (before 5.9) or a seccomp
 *    filter refuses close_range's unshare, pidfd_open or pidfd_getfd.
 * Not caught: a main thread that ends by a raw exit syscall while other
 * threads go on (no libc does that); the program's fds are then closed
 * with its last thread, before the sender's exit(0) could flush stdio.
 * Test: e2e private_fds.
 */
#include "fdtable.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

PA_HIDDEN _Atomic int pa_fds_private;
static _Atomic int may_unshare = 1; /* main's thread has not ended */
static PA_TLS int here;             /* this thread is on the private table */
static int log_pidfd = -1;          /* the process, for its fd 2 (here only) */
static int fork_from_main;          /* set by pa_fds_fork_prepare */

static long pidfd_open_self(void)
{
    return syscall(SYS_pidfd_open, (long)pa_getpid(), 0L);
}

static long program_stderr(long pidfd)
{
    return syscall(SYS_pidfd_getfd, pidfd, 2L, 0L);
}

static int shared(const char *why)
{
    pa_log(PA_LOG_DEBUG, "the sender shares the program's fd table: ", why, (const char *)NULL);
    return 0;
}

int pa_fds_unshare(void)
{
    long pidfd, fd;
    if (!pa_cfg.private_fds)
        return 0;
    if (!atomic_load(&may_unshare))
        return shared("the program's main thread has ended, or this is a fork "
                      "child of another thread");
    /* The log path first, while the program's table is ours too: without
     * it the sender's lines would be lost, so no private table. */
    pidfd = pidfd_open_self();
    if (pidfd < 0)
        return shared("pidfd_open refused");
    fd = program_stderr(pidfd);
    int err = errno;
    if (fd >= 0)
        syscall(SYS_close, fd);
    syscall(SYS_close, pidfd);
    if (fd < 0 && err != EBADF) /* EBADF: the program has no fd 2 now */
        return shared("pidfd_getfd refused");
    if (syscall(SYS_close_range, 0L, (long)~0U, (long)CLOSE_RANGE_UNSHARE) != 0)
        return shared("close_range(CLOSE_RANGE_UNSHARE) refused");
    here = 1;
    for (int i = 0; i < 3; i++)
        if (syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC) < 0)
            break;
    log_pidfd = (int)pidfd_open_self();
    atomic_store(&pa_fds_private, 1);
    pa_log(PA_LOG_DEBUG, "the sender runs on an fd table of its own", (const char *)NULL);
    return 1;
}

int pa_fds_here(void)
{
    return here;
}

void pa_fds_leave(void)
{
    if (!here)
        return;
    if (log_pidfd >= 0)
        syscall(SYS_close, log_pidfd);
    log_pidfd = -1;
    here = 0;
    atomic_store(&pa_fds_private, 0);
}

int pa_fds_log_fd(void)
{
    if (!here)
        return 2;
    return log_pidfd < 0 ? -1 : (int)program_stderr(log_pidfd);
}

void pa_fds_log_fd_done(int fd)
{
    if (here && fd >= 0)
        syscall(SYS_close, fd);
}

void pa_fds_main_ending(void)
{
    atomic_store(&may_unshare, 0);
}

int pa_fds_main_alive(void)
{
    return atomic_load_explicit(&may_unshare, memory_order_relaxed);
}

void pa_fds_fork_prepare(void)
{
    fork_from_main = pa_gettid() == pa_getpid();
}

void pa_fds_after_fork_child(void)
{
    /* None of the parent sender's private fds is in this table: forget
     * them without closing (the numbers may be the program's). */
    log_pidfd = -1;
    here = 0;
    atomic_store(&pa_fds_private, 0);
    if (!fork_from_main)
        atomic_store(&may_unshare, 0);
    fork_from_main = 0;
}

/* ---- the agent's fds in the program's table ---------------------------- */

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

/* On the sender's private table (fdtable.c) the program cannot reach our
 * fds: nothing is registered, every number of ours stays ours. */
void pa_fd_own(int fd)
{
    struct stat st;
    if (pa_fds_here() || fd < 0 || fd >= PA_OWN_FDS || syscall(SYS_fstat, fd, &st) != 0)
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
    if (pa_fds_here())
        return 1;
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
    if (fd >= 0 && fd < PA_OWN_FDS && !pa_fds_here())
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
