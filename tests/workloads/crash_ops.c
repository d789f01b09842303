/*
 * crash_ops — dies of a fatal signal after N known allocations, for
 * tests/e2e/crash.sh.  usage: crash_ops MODE N SIZE
 *
 * Every mode first leaks N blocks of SIZE bytes from crash_site() (main ->
 * crash_site), and nothing else allocates (no stdio: wl.h's out()), so the
 * report's numbers are known: N allocations, N x SIZE bytes, all live.
 * Then:
 *   segv      crash_here() writes through a null pointer: SIGSEGV, address 0
 *   handler   installs a SIGSEGV handler with sigaction (after the agent's),
 *             then crashes like segv; the handler writes "handler ran 11"
 *             and _exit(42)s
 *   abort     abort() from crash_abort(): SIGABRT
 *   badfree   free() of a pointer into the middle of a block: glibc aborts
 *             inside free (the agent's free hook is on the stack): SIGABRT
 *   wait      prints "ready PID", then sleeps (the test sends SIGTERM, or
 *             SIGKILLs it); sleeps 3 s then exits 0 if nobody does
 *   overflow  recurses in crash_recurse() until the main thread's stack
 *             overflows: SIGSEGV (the agent's handler runs on an alternate
 *             stack)
 *   query     no crash: prints what sigaction(2) says of SIGSEGV and
 *             SIGTERM, installs a SIGSEGV handler with signal(3), prints
 *             what sigaction and a second signal(3) return, exits 0
 *   sender    sleeps 200 ms (the agent's sender has sent the rows), then
 *             sends SIGSEGV to the agent's sender thread ("perfagent-send"),
 *             found in /proc/self/task; exits 3 if there is none
 * Exit status 2: bad usage.
 */
#include "wl.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>

void *volatile crash_sink;
static void *keep[100000];

NOINLINE void *crash_site(size_t size)
{
    void *p = malloc(size);
    NO_TAIL();
    return p;
}

NOINLINE void crash_here(int *volatile p)
{
    *p = 1;
    NO_TAIL();
}

NOINLINE void crash_abort(void)
{
    abort();
}

NOINLINE void crash_badfree(char *p)
{
    char *volatile bad = p + 16; /* hidden from the compiler's free check */
    free(bad);
    NO_TAIL();
}

static volatile int recurse_more = 1; /* never cleared: hides the endless recursion */

NOINLINE int crash_recurse(int depth)
{
    volatile char pad[512];
    pad[0] = (char)depth;
    if (!recurse_more)
        return depth;
    return crash_recurse(depth + 1) + pad[0]; /* not a tail call */
}

static const char *disp(int sig)
{
    struct sigaction old;
    if (sigaction(sig, NULL, &old) != 0)
        return "error";
    if (old.sa_handler == SIG_DFL)
        return "dfl";
    if (old.sa_handler == SIG_IGN)
        return "ign";
    return "handler";
}

static void on_segv(int sig)
{
    outfd(1, "handler ran %d\n", sig);
    _exit(42);
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* The tid of the thread named perfagent-send, or 0. */
static long sender_tid(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    long tid = 0;
    if (!d)
        return 0;
    while (!tid && (e = readdir(d))) {
        char path[300], name[32] = "";
        int fd;
        ssize_t n;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        if ((fd = open(path, O_RDONLY)) < 0)
            continue;
        n = read(fd, name, sizeof name - 1);
        close(fd);
        if (n > 0 && strncmp(name, "perfagent-send", 14) == 0)
            tid = atol(e->d_name);
    }
    closedir(d);
    return tid;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    const char *mode = argv[1];
    long n = atol(argv[2]);
    size_t size = (size_t)atol(argv[3]);
    if (n < 0 || n > 100000)
        return 2;
    for (long i = 0; i < n; i++)
        keep[i] = crash_site(size);
    crash_sink = keep;
    if (!strcmp(mode, "segv")) {
        crash_here(NULL);
    } else if (!strcmp(mode, "handler")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_segv;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSEGV, &sa, NULL) != 0)
            return 4;
        crash_here(NULL);
    } else if (!strcmp(mode, "abort")) {
        crash_abort();
    } else if (!strcmp(mode, "badfree")) {
        crash_badfree(keep[0]);
    } else if (!strcmp(mode, "overflow")) {
        return crash_recurse(0);
    } else if (!strcmp(mode, "query")) {
        out("SEGV %s TERM %s\n", disp(SIGSEGV), disp(SIGTERM));
        if (signal(SIGSEGV, on_segv) != SIG_DFL)
            out("signal: old not SIG_DFL\n");
        out("SEGV %s\n", disp(SIGSEGV));
        out("signal again: %s\n", signal(SIGSEGV, SIG_DFL) == on_segv ? "on_segv" : "other");
        out("SEGV %s\n", disp(SIGSEGV));
        return 0;
    } else if (!strcmp(mode, "wait")) {
        out("ready %d\n", (int)getpid());
        nap_ms(3000);
        return 0;
    } else if (!strcmp(mode, "sender")) {
        long tid;
        nap_ms(200);
        if (!(tid = sender_tid()))
            return 3;
        syscall(SYS_tgkill, getpid(), tid, SIGSEGV);
        nap_ms(3000);
        return 5;
    } else {
        return 2;
    }
    return 1;
}
