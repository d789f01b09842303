/*
 * lastthread.c — does the process still have a thread of the host's?  The
 * sender asks once per round; see the comment below for why this matters
 * and why /proc is the way to tell.  Runs on the sender thread only: raw
 * syscalls, no allocation, no interposed call.
 */
#include "lastthread.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The last host thread.
 * POSIX: when main() calls pthread_exit() the process goes on until its last
 * thread ends, then exits with status 0; a fork child forked from a thread
 * ends when that thread returns.  glibc implements this by counting live
 * threads (__nptl_nthreads): the thread that takes the count to 0 calls
 * exit(0).  The sender is one of the counted threads, so without more the
 * host's last thread just ends, leaving a zombie main thread and our thread,
 * which blocks every signal: a process that only SIGKILL ends.
 *
 * Mechanism: once per round (ROUND_MS) the sender reads the thread group
 * leader's /proc/self/task/PID/stat.  State 'Z' with num_threads 2 (the
 * zombie leader and us) means every host thread has ended.  Why this one:
 *  - the leader is the only thread that lingers after it ended (as a zombie,
 *    until the whole group is gone); any other thread is reaped as it exits.
 *    A zombie never comes back, and a thread can only be created by a live
 *    one, so a single read saying "leader Z, 2 threads" is never wrong;
 *  - it needs no cooperation from the host: it sees main's pthread_exit,
 *    threads returning from their start routine, threads that never
 *    allocated (no key destructor of ours runs for those), raw clone()
 *    threads, fork children (the forking thread is the child's leader; their
 *    sender starts lazily, and polls from then on), and programs that never
 *    call exit();
 *  - glibc's counter is private (GLIBC_PRIVATE), so we cannot take ourselves
 *    out of it, and hooking pthread_exit/exit misses a start routine's
 *    return.
 * Cost: one open+read+close of a ~300-byte per-task procfs file (not the
 * whole-process /proc/self/stat, which walks every thread) per round, on
 * the sender only: 2.3 us measured with 0, 100 or 1000 threads, i.e. ~0.01%
 * of one CPU at 50 checks a second.  The price is latency: the process
 * ends ~20 ms (one round) after its last host thread (README "Design").
 * Without /proc (not mounted, hidepid) the check gives up after the first
 * failure and the old behaviour remains.
 *
 * Then we do what glibc would have done in the last thread: exit(0), from
 * this thread, so atexit handlers and stdio flushing run (a worker's buffered
 * printf reaches its pipe) and our destructor ends the stream with a Goodbye
 * carrying status 0; pa_sender_stop() flushes inline when called here. */
static char leader_stat[64];
static int leader_check_off;

/* 1 when the leader is a zombie and we are the only other thread. */
int pa_host_threads_gone(void)
{
    char buf[512];
    long fd, n;
    const char *p, *close_paren = NULL;
    unsigned field = 3, nthreads = 0;
    char state = 0;

    if (leader_check_off)
        return 0;
    if (!leader_stat[0]) {
        char *q = leader_stat + pa_strlcpy(leader_stat, "/proc/self/task/", sizeof(leader_stat));
        q = pa_u64toa(pa_getpid(), q);
        pa_strlcpy(q, "/stat", 8);
    }
    fd = syscall(SYS_openat, AT_FDCWD, leader_stat, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        leader_check_off = 1;
        pa_log(PA_LOG_DEBUG, "cannot read ", leader_stat,
               ": a process whose last thread ends stays alive", (const char *)NULL);
        return 0;
    }
    n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
    syscall(SYS_close, fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    /* "pid (comm) S ppid ...": comm may hold spaces and ')'; the last ')'
     * ends it.  Field 3 is the state, field 20 num_threads (proc(5)). */
    for (p = buf; *p; p++)
        if (*p == ')')
            close_paren = p;
    if (!close_paren)
        return 0;
    for (p = close_paren + 1; *p && field <= 20; field++) {
        while (*p == ' ')
            p++;
        if (field == 3)
            state = *p;
        if (field == 20)
            while (*p >= '0' && *p <= '9')
                nthreads = nthreads * 10 + (unsigned)(*p++ - '0');
        while (*p && *p != ' ')
            p++;
    }
    return state == 'Z' && nthreads >= 1 && nthreads <= 2;
}

/* A process-directed signal sent now finds no thread but ours, which blocks
 * everything: it would stay pending forever.  Unblock the signals whose
 * default action ends the process, where the host left that default in
 * place and the thread that started us did not block them, so a pending
 * one (sent in the last round) ends the process now, with its own status,
 * and one sent during the flush or a slow atexit handler still does.
 * SIGPIPE stays blocked: the final flush may write to a broken pipe, which
 * raises it at this thread (the write fails with EPIPE and is counted). */
void pa_unblock_fatal_signals(const sigset_t *host_mask)
{
    sigset_t set;
    sigemptyset(&set);
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        switch (sig) {
        case SIGKILL: case SIGSTOP: case SIGPIPE: /* see above */
        case SIGCHLD: case SIGCONT: case SIGURG: case SIGWINCH: /* default: ignore */
        case SIGTSTP: case SIGTTIN: case SIGTTOU: /* default: stop */
            continue;
        }
        if (sigismember(host_mask, sig) == 1)
            continue;
        /* EINVAL for glibc's internal signals (SIGCANCEL, SIGSETXID). */
        if (sigaction(sig, NULL, &sa) != 0 || (sa.sa_flags & SA_SIGINFO) ||
            sa.sa_handler != SIG_DFL)
            continue;
        sigaddset(&set, sig);
    }
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/* fork(2) child: the leader is now the forking thread, another pid. */
void pa_host_threads_after_fork(void)
{
    leader_stat[0] = 0;
    leader_check_off = 0;
}
