/*
 * snapshot_cmd.c — `perfagent snapshot PID [--timeout SECONDS]`.
 *
 * Connects to the abstract unix socket "@perfagent.<PID>" the agent's
 * sender listens on (agent/control.c says why abstract and SEQPACKET), sends
 * "snapshot" and waits for the one answer:
 *   "dir <id> <path>"   a collector (perfagent run, perfagent-collector)
 *                       wrote the snapshot directory: print <path>;
 *   "file <id> <path>"  the process writes a .pfr file: marker <id> is in it,
 *                       and `perfagent report` writes it as snapshots/NNN;
 *   "error <why>"       one line, exit 1.
 * The agent checks who asks (SO_PEERCRED): only the process's owner or root.
 */
#include "snapshot_cmd.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PROG "perfagent snapshot"
#define DEFAULT_TIMEOUT_S 10
/* report_snapshot.c writes the live sets of the first 64 markers of a file
 * (collector/session_int.h SESSION_SNAPSHOT_SETS). */
#define FILE_MARKER_SETS 64

static int fail(long pid, const char *why)
{
    fprintf(stderr, PROG ": pid %ld: %s\n", pid, why);
    return 1;
}

/* A path the agent gave relative to its working directory, made absolute. */
static void absolute(long pid, const char *path, char *out, size_t len)
{
    char link[64], cwd[PATH_MAX];
    ssize_t n;
    snprintf(link, sizeof(link), "/proc/%ld/cwd", pid);
    if (path[0] == '/' || (n = readlink(link, cwd, sizeof(cwd) - 1)) < 0) {
        snprintf(out, len, "%s", path);
        return;
    }
    cwd[n] = '\0';
    snprintf(out, len, "%s/%s", cwd, path);
}

static int ask(long pid, int timeout_s)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    char msg[PATH_MAX + 700], why[PATH_MAX + 800];
    int fd, n, len;

    if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
        return fail(pid, "no such process");
    /* sun_path[0] = 0: the abstract namespace; the name is not NUL-ended. */
    len = snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "perfagent.%ld", pid);
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(pid, strerror(errno));
    if (connect(fd, (struct sockaddr *)&un, offsetof(struct sockaddr_un, sun_path) + 1 + len) < 0) {
        int e = errno;
        close(fd);
        if (e == ECONNREFUSED || e == ENOENT) {
            snprintf(why, sizeof(why),
                     "no perfagent agent listens for it (nothing on @perfagent.%ld): not "
                     "started with perfagent, or an agent without snapshot requests", pid);
            return fail(pid, why);
        }
        return fail(pid, strerror(e));
    }
    if (send(fd, "snapshot", 8, MSG_NOSIGNAL) < 0) {
        int e = errno;
        close(fd);
        return fail(pid, strerror(e));
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long left = timeout_s * 1000L - ((t1.tv_sec - t0.tv_sec) * 1000L +
                                         (t1.tv_nsec - t0.tv_nsec) / 1000000L);
        if (left <= 0) {
            close(fd);
            snprintf(why, sizeof(why), "no answer within %d s", timeout_s);
            return fail(pid, why);
        }
        int r = poll(&p, 1, (int)left);
        if (r > 0 || (r < 0 && errno != EINTR))
            break;
    }
    n = (int)recv(fd, msg, sizeof(msg) - 1, 0);
    close(fd);
    if (n <= 0)
        return fail(pid, n == 0 ? "the agent closed the request without an answer"
                                : strerror(errno));
    msg[n] = '\0';

    unsigned long long id;
    int at = 0;
    if (strncmp(msg, "error ", 6) == 0)
        return fail(pid, msg + 6);
    if (sscanf(msg, "dir %llu %n", &id, &at) == 1 && at) {
        printf("%s\n", msg + at);
        return 0;
    }
    if (sscanf(msg, "file %llu %n", &id, &at) == 1 && at) {
        absolute(pid, msg + at, why, sizeof(why));
        printf("marker %llu recorded in %s: `perfagent report %s -o DIR` writes ", id, why, why);
        if (id <= FILE_MARKER_SETS)
            printf("it as DIR/%ld/snapshots/%03llu\n", pid, id);
        else
            printf("its totals only (a file's first %d markers get a snapshot directory)\n",
                   FILE_MARKER_SETS);
        return 0;
    }
    snprintf(why, sizeof(why), "unexpected answer '%.200s'", msg);
    return fail(pid, why);
}

int snapshot_main(int argc, char **argv)
{
    static const struct option opts[] = {{"timeout", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int timeout_s = DEFAULT_TIMEOUT_S, c;
    char *end;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 't': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 3600) {
                fprintf(stderr, PROG ": --timeout: expected 1 to 3600 seconds, not '%s'\n", optarg);
                return 2;
            }
            timeout_s = (int)v;
            break;
        }
        case 'h':
            printf("usage: perfagent snapshot PID [--timeout SECONDS]\n");
            return 0;
        default:
            fprintf(stderr, PROG ": unknown option or missing argument (see perfagent --help)\n");
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, PROG ": expected one PID (see perfagent --help)\n");
        return 2;
    }
    long pid = strtol(argv[optind], &end, 10);
    if (*end || pid <= 0 || pid > INT_MAX) {
        fprintf(stderr, PROG ": '%s' is not a process id (see perfagent --help)\n", argv[optind]);
        return 2;
    }
    return ask(pid, timeout_s);
}
