/*
 * daemonize — the classic daemon step "close every fd >= 3" in the middle of
 * a run, then host files that land on the freed numbers (issue 16, "own fds
 * survive the host"; tests/e2e/fd_loss.sh).
 * usage: daemonize MODE NBEFORE NAFTER HOSTFILE
 *
 *   1. before_alloc: NBEFORE blocks of 48 bytes, leaked; 150 ms pause, so the
 *      agent has written them to its output before anything is closed.
 *   2. every fd >= 3 goes, by MODE:
 *        loop     close() of each number listed in /proc/self/fd
 *        range    close_range(3, ~0U, 0)
 *        closefrom closefrom(3)
 *        dup2     dup2() of a host file (/dev/null) over each listed number,
 *                 then close() of each
 *        raw      the same as dup2 and range, but as raw syscalls (no libc
 *                 wrapper an interposer could see): dup3 over each number,
 *                 close_range(3, ~0U, 0), and the host file's dup3s in 3.
 *        cloexec  close_range(3, ~0U, CLOSE_RANGE_CLOEXEC): closes nothing
 *   3. after_alloc: NAFTER/2 blocks of 80 bytes, leaked.
 *   4. HOSTFILE is created and dup'ed onto every number listed in step 2,
 *      so the host's file is what those numbers name now; 10 times: a line
 *      "host line I\n" written to it, NAFTER/20 after_alloc blocks, 20 ms
 *      pause (the agent writes in between).  Anything else in HOSTFILE is
 *      bytes the agent wrote into a host file.
 *   5. a stdio stream on each of those numbers gets "tail N\n", flushed at
 *      exit after the agent's destructor (stderr lists the numbers): the
 *      agent must not have closed any of them.
 *
 * Known live heap at exit (exact mode, requested sizes):
 *   before_alloc   NBEFORE x 48   main -> before_alloc
 *   after_alloc    NAFTER  x 80   main -> after_alloc   (NAFTER a multiple of 20)
 */
#include "wl.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <time.h>

void *volatile daemonize_sink;

NOINLINE void before_alloc(long n)
{
    for (long i = 0; i < n; i++)
        daemonize_sink = malloc(48);
    NO_TAIL();
}

NOINLINE void after_alloc(long n)
{
    for (long i = 0; i < n; i++)
        daemonize_sink = malloc(80);
    NO_TAIL();
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The numbers >= 3 open now, read with raw getdents64 into a stack buffer
 * (opendir would allocate, and its own fd would be listed). */
static int list_fds(int *fds, int max)
{
    char buf[8192];
    int n = 0;
    long dfd = syscall(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY);
    WL_ASSERT(dfd >= 0, 2);
    for (;;) {
        long got = syscall(SYS_getdents64, dfd, buf, sizeof(buf));
        WL_ASSERT(got >= 0, 2);
        if (got == 0)
            break;
        for (long off = 0; off < got;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            int fd = atoi(d->d_name);
            if (d->d_name[0] >= '0' && d->d_name[0] <= '9' && fd >= 3 && fd != dfd && n < max)
                fds[n++] = fd;
            off += d->d_reclen;
        }
    }
    syscall(SYS_close, dfd);
    return n;
}

static int dup_over(int from, int to, int raw)
{
    return raw ? (int)syscall(SYS_dup3, from, to, 0) : dup2(from, to);
}

int main(int argc, char **argv)
{
    static int fds[4096];
    WL_ASSERT(argc == 5, 2);
    const char *mode = argv[1];
    long nbefore = atol(argv[2]), nafter = atol(argv[3]);
    int raw = !strcmp(mode, "raw");
    WL_ASSERT(nafter % 20 == 0, 2);

    before_alloc(nbefore);
    pause_ms(150);

    int nfds = list_fds(fds, 4096);
    if (!strcmp(mode, "loop")) {
        for (int i = 0; i < nfds; i++)
            WL_ASSERT(close(fds[i]) == 0, 3);
    } else if (!strcmp(mode, "range")) {
        WL_ASSERT(close_range(3, ~0U, 0) == 0, 3);
    } else if (!strcmp(mode, "closefrom")) {
        closefrom(3);
    } else if (!strcmp(mode, "dup2") || raw) {
        int nul = open("/dev/null", O_WRONLY);
        WL_ASSERT(nul >= 0, 3);
        for (int i = 0; i < nfds; i++)
            if (fds[i] != nul)
                WL_ASSERT(dup_over(nul, fds[i], raw) == fds[i], 3);
        if (raw) {
            WL_ASSERT(syscall(SYS_close_range, 3, ~0U, 0) == 0, 3);
        } else {
            for (int i = 0; i < nfds; i++)
                if (fds[i] != nul)
                    WL_ASSERT(close(fds[i]) == 0, 3);
            WL_ASSERT(close(nul) == 0, 3);
        }
    } else if (!strcmp(mode, "cloexec")) {
        WL_ASSERT(close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0, 3);
    } else {
        err("daemonize: unknown mode %s\n", mode);
        return 2;
    }
    /* Nothing of ours may be left open (cloexec closes nothing). */
    int left = list_fds(fds + nfds, 4096 - nfds);
    after_alloc(nafter / 2);

    int hf = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    WL_ASSERT(hf >= 0, 4);
    for (int i = 0; i < nfds; i++)
        if (fds[i] != hf)
            WL_ASSERT(dup_over(hf, fds[i], raw) == fds[i], 4);
    for (int i = 0; i < 10; i++) {
        char line[32];
        int n = snprintf(line, sizeof(line), "host line %d\n", i);
        WL_ASSERT(write(hf, line, (size_t)n) == n, 5);
        after_alloc(nafter / 20);
        pause_ms(20);
    }
    /* 5. a buffered stdio stream on each of those numbers, one line each,
     *    flushed only by exit(3), after the agent's destructor: a number
     *    the agent closed at exit (its perf events, its snapshot listener)
     *    loses its line.  stderr lists them: "tails: N N ..." */
    err("tails:");
    for (int i = 0; i < nfds; i++) {
        if (fds[i] == hf)
            continue;
        FILE *f = fdopen(fds[i], "w");
        WL_ASSERT(f != NULL, 7);
        WL_ASSERT(fprintf(f, "tail %d\n", fds[i]) > 0, 7);
        err(" %d", fds[i]);
    }
    err("\n");
    out("daemonize: mode=%s before=%ld after=%ld\n", mode, nbefore, nafter);
    if (strcmp(mode, "cloexec"))
        WL_ASSERT(left == 0, 6);
    return 0;
}
