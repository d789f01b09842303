/*
 * report_jobs — writer processes for finished streams (see report_jobs.h).
 *
 * The child's message on its pipe: session_write_reports' result as 4
 * bytes (host order: the reader is our parent), then the summary text.
 * A child that dies before the 4 bytes (a crash in report code, OOM) is
 * -EIO with its wait status; whatever files it renamed into place stay.
 */
#include "report_jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define RJOB_MAX_CAP 8

unsigned rjob_max(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > RJOB_MAX_CAP)
        n = RJOB_MAX_CAP;
    return (unsigned)util_env_u64("PERFAGENT_REPORT_JOBS", 0, 64, (uint64_t)n);
}

/* Everything to the pipe, in the child (EINTR cannot happen: no handlers
 * run here, the collector takes its signals through a signalfd or not at
 * all, but a short write to a full pipe can). */
static void send_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    while (len) {
        ssize_t w = write(fd, c, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        c += w;
        len -= (size_t)w;
    }
}

static __attribute__((noreturn)) void child(int wfd, session_t *s, const char *dir)
{
    int32_t rc;
    const char *sum;
    /* The agents' sockets, the listener, epoll: the parent's alone.  A copy
     * held here would keep a connection the parent closed open for its
     * agent (close_range(2), Linux 5.9; on older kernels they stay until
     * this child exits, which is harmless). */
    if (wfd != 3) {
        if (dup2(wfd, 3) < 0)
            _exit(111);
        wfd = 3;
    }
    syscall(SYS_close_range, 4u, ~0u, 0u);
    rc = session_write_reports(s, dir);
    sum = rc == 0 ? session_summary(s) : NULL;
    send_all(wfd, &rc, sizeof(rc));
    if (sum)
        send_all(wfd, sum, strlen(sum));
    /* _exit: no atexit handlers (run.c's socket cleanup is the parent's),
     * no freeing a heap that dies with us. */
    _exit(0);
}

int rjob_start(rjob_t *j, session_t *s, const char *dir)
{
    int p[2];
    pid_t pid;

    j->pid = -1;
    j->fd = -1;
    j->buf = NULL;
    j->len = j->cap = 0;
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        int rc = -errno;
        close(p[0]);
        close(p[1]);
        return rc;
    }
    if (pid == 0) {
        close(p[0]);
        child(p[1], s, dir);
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    j->pid = pid;
    j->fd = p[0];
    session_free(s);
    return 0;
}

int rjob_read(rjob_t *j, int blocking)
{
    if (j->fd < 0)
        return 1;
    if (blocking)
        fcntl(j->fd, F_SETFL, 0);
    for (;;) {
        if (j->cap - j->len < 4096) {
            size_t cap = j->cap ? j->cap * 2 : 8192;
            char *b = realloc(j->buf, cap);
            if (!b) { /* the summary is lost, the reports are not: drain */
                char sink[4096];
                ssize_t r = read(j->fd, sink, sizeof(sink));
                if (r > 0 || (r < 0 && errno == EINTR))
                    continue;
                return r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
            }
            j->buf = b;
            j->cap = cap;
        }
        ssize_t r = read(j->fd, j->buf + j->len, j->cap - j->len - 1);
        if (r > 0) {
            j->len += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return 1; /* end of the pipe, or an error that ends it */
    }
}

int rjob_finish(rjob_t *j, int *status_out, const char **summary)
{
    int status = 0;
    int32_t rc;

    *summary = NULL;
    if (j->fd >= 0) {
        close(j->fd);
        j->fd = -1;
    }
    while (j->pid > 0 && waitpid(j->pid, &status, 0) < 0 && errno == EINTR)
        ;
    j->pid = -1;
    if (status_out)
        *status_out = status;
    if (j->len < sizeof(rc))
        return -EIO;
    memcpy(&rc, j->buf, sizeof(rc));
    if (rc == 0 && j->len > sizeof(rc)) {
        j->buf[j->len] = '\0'; /* rjob_read keeps a byte free */
        *summary = j->buf + sizeof(rc);
    }
    return rc;
}

void rjob_clear(rjob_t *j)
{
    if (j->fd >= 0)
        close(j->fd);
    j->fd = -1;
    free(j->buf);
    j->buf = NULL;
    j->len = j->cap = 0;
}
