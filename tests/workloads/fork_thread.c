/*
 * fork_thread — fork(2) from a thread that is not main.  The child's only
 * thread is the forking one; when its start routine returns, the child's
 * last thread has ended and the child exits with status 0 (POSIX; glibc
 * calls exit(0), so atexit handlers run and stdio is flushed).
 *   usage: fork_thread [WAIT_S=20]
 * The child leaks
 *   child_leak   4 x 3333 B  (13332 B)
 * printf()s "child done" (buffered: only exit's flush shows it when stdout
 * is a pipe) and returns from the thread.  The parent's thread polls
 * waitpid(WNOHANG) for at most WAIT_S seconds (as Python's test_threading
 * does); if the child is still there it SIGKILLs it and says so.  The parent
 * leaks
 *   parent_leak  2 x 4444 B  (8888 B)
 * Prints "fork_thread: parent=PID", then, once the child is reaped,
 * "fork_thread: child=PID status=S" (S as waitpid gives it) or, when it was
 * not, "fork_thread: child=PID still alive after N s".  Exit 0 when the
 * child exited with 0.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include "wl.h"

static int wait_s = 20;
static int result = 1;
static void *keep[8];

NOINLINE void *child_leak(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    return p;
}
NOINLINE void *parent_leak(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    return p;
}

static void *forker(void *arg)
{
    pid_t pid;
    fflush(stdout);
    pid = fork();
    WL_ASSERT(pid >= 0, 4);
    if (pid == 0) {
        for (int i = 0; i < 4; i++) {
            keep[i] = child_leak(3333);
            WL_ASSERT(keep[i] != NULL, 3);
            wl_touch(keep[i], 3333, (unsigned char)i);
        }
        printf("child done\n");
        return NULL; /* the child's last thread ends here */
    }
    for (int i = 0; i < wait_s * 100; i++) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        WL_ASSERT(r >= 0, 5);
        if (r == pid) {
            out("fork_thread: child=%d status=%d\n", (int)pid, st);
            result = st != 0;
            return NULL;
        }
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    out("fork_thread: child=%d still alive after %d s\n", (int)pid, wait_s);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t th;
    if (argc > 1)
        wait_s = atoi(argv[1]);
    out("fork_thread: parent=%d\n", (int)getpid());
    WL_ASSERT(pthread_create(&th, NULL, forker, NULL) == 0, 3);
    WL_ASSERT(pthread_join(th, NULL) == 0, 4);
    for (int i = 0; i < 2; i++) {
        keep[4 + i] = parent_leak(4444);
        WL_ASSERT(keep[4 + i] != NULL, 3);
    }
    return result;
}
