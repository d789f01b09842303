/*
 * pthread_exit — main() ends with pthread_exit(NULL): POSIX says the process
 * goes on until its last thread ends, then exits with status 0 (exit(3):
 * atexit handlers run, stdio is flushed).
 *   usage: pthread_exit MODE [NWORKERS=2]
 *   running  main starts the workers and calls pthread_exit at once; each
 *            worker sleeps 100 ms, leaks, printf()s "worker N done" (stdio:
 *            buffered when stdout is a pipe, so only exit's flush shows it)
 *            and returns.  Workers print in order (a turn counter).
 *   joined   the same, but main joins the workers before pthread_exit: no
 *            other host thread is left when main's ends.
 *   sleep    one worker leaks, writes "ready" and sleeps 30 s (the test
 *            sends SIGTERM: status 143, as without the agent).
 *   slowexit like running with one worker, but an atexit handler writes
 *            "atexit sleeping" and sleeps 30 s: the exit runs on whatever
 *            thread is last (under the agent: the agent's), and a SIGTERM
 *            sent then must end the process (status 143).
 * Leaks, by construction:
 *   main_leak    3 x 999 B   (2997 B), before pthread_exit
 *   worker_leak  5 x 7001 B  (35005 B) per worker
 *   exit_leak    1 x 555 B, in an atexit handler (which runs on the thread
 *                that calls exit: the last one; not in mode sleep)
 * That atexit handler also writes "atexit ran".  First line: "pthread_exit: pid=PID".
 */
#include <pthread.h>
#include <time.h>
#include "wl.h"

#define MAXW 16

static int nworkers = 2;
static int turn;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static void *keep[MAXW * 5 + 4];

NOINLINE void *main_leak(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    return p;
}
NOINLINE void *exit_leak(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    return p;
}
NOINLINE void *worker_leak(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    return p;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void at_exit(void)
{
    keep[MAXW * 5 + 3] = exit_leak(555);
    out("atexit ran\n");
}

static void at_exit_slow(void)
{
    out("atexit sleeping\n");
    sleep_ms(30000);
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < 5; i++) {
        keep[3 + id * 5 + i] = worker_leak(7001);
        WL_ASSERT(keep[3 + id * 5 + i] != NULL, 3);
        wl_touch(keep[3 + id * 5 + i], 7001, (unsigned char)i);
    }
    pthread_mutex_lock(&mu);
    while (turn != id)
        pthread_cond_wait(&cv, &mu);
    printf("worker %d done\n", id);
    turn++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void *sleeper(void *arg)
{
    for (int i = 0; i < 5; i++)
        keep[3 + i] = worker_leak(7001);
    out("ready\n");
    sleep_ms(30000);
    return NULL;
}

static void *late_worker(void *arg)
{
    sleep_ms(100);
    return worker(arg);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "running";
    pthread_t th[MAXW];
    if (argc > 2)
        nworkers = atoi(argv[2]);
    WL_ASSERT(nworkers >= 0 && nworkers <= MAXW, 2);
    out("pthread_exit: pid=%d\n", (int)getpid());
    atexit(at_exit);
    for (int i = 0; i < 3; i++)
        keep[i] = main_leak(999);
    if (!strcmp(mode, "sleep")) {
        WL_ASSERT(pthread_create(&th[0], NULL, sleeper, NULL) == 0, 3);
    } else if (!strcmp(mode, "slowexit")) {
        atexit(at_exit_slow); /* runs before at_exit (reverse order) */
        WL_ASSERT(pthread_create(&th[0], NULL, late_worker, (void *)0) == 0, 3);
    } else {
        int joined = !strcmp(mode, "joined");
        WL_ASSERT(joined || !strcmp(mode, "running"), 2);
        for (int i = 0; i < nworkers; i++)
            WL_ASSERT(pthread_create(&th[i], NULL, joined ? worker : late_worker,
                                     (void *)(intptr_t)i) == 0, 3);
        for (int i = 0; joined && i < nworkers; i++)
            WL_ASSERT(pthread_join(th[i], NULL) == 0, 4);
    }
    pthread_exit(NULL);
}
