/*
 * report_files — `perfagent report FILE...`: each file decoded into a
 * session in turn, its reports written by a writer process (report_jobs.h)
 * while the next file is read, up to PERFAGENT_REPORT_JOBS at once.  What a
 * file prints (its error lines on stderr, its summary on stdout) comes out
 * in the files' order, as when they were written one after another; a
 * recording of 36 processes (tests/e2e/real_servers.sh) is written about
 * twice as fast on two CPUs.
 */
#include "report_files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report_jobs.h"
#include "session.h"

#define PROG "perfagent"

/* One file: its decode outcome, and once written its summary. */
typedef struct rf {
    int bad;       /* 1 decode fault, 2 read error, 3 reports not written */
    char *errline; /* printed before the summary; NULL for none */
    outdir_entry_t *e;
    char *full;    /* the report directory */
    rjob_t rj;
    int running, done;
    char *summary; /* written: what to print on stdout */
} rf_t;

/* Reads path into a new session (NULL when it cannot even start). */
static session_t *decode(const char *path, const char *sysroot, int per_thread, int *bad)
{
    static uint8_t buf[256 * 1024];
    char peer[PATH_MAX + 8];
    session_opts_t so = {.sysroot = sysroot, .peer = peer, .cpu_per_thread = per_thread};
    session_t *s;
    ssize_t n;
    int fd;

    *bad = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
        return NULL;
    }
    snprintf(peer, sizeof(peer), "file:%s", path);
    if (!(s = session_new(&so))) {
        fprintf(stderr, PROG ": %s: out of memory\n", path);
        close(fd);
        return NULL;
    }
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, PROG ": %s: read: %s\n", path, strerror(errno));
            *bad = 2; /* an I/O error, not a decode fault: report it as such */
            break;
        }
        if (session_feed(s, buf, (size_t)n) < 0) {
            *bad = 1;
            break;
        }
    }
    close(fd);
    if (!*bad && session_end(s) < 0)
        *bad = 1; /* the file ends in the middle of a frame */
    return s;
}

/* One line per failed file: what went wrong, where (session_error names the
 * stream offset), and where the partial reports went. */
static char *error_line(const char *path, const session_t *s, int bad, const outdir_t *out,
                        const outdir_entry_t *e)
{
    char *line = NULL;
    int r = -1;
    if (bad == 1)
        r = asprintf(&line, PROG ": %s: %s; kept what was decoded in %s/%s\n", path,
                     session_error(s) ? session_error(s) : "decode failed", outdir_path(out),
                     e ? e->dir : "?");
    else if (!bad && e && !e->has_hello)
        r = asprintf(&line, PROG ": %s: no Hello in the stream; reports in %s/%s\n", path,
                     outdir_path(out), e->dir);
    return r < 0 ? NULL : line;
}

static void print_summary(const char *sum)
{
    if (sum && *sum) {
        fputs(sum, stdout);
        if (sum[strlen(sum) - 1] != '\n')
            putchar('\n');
    }
}

/* Written here, in this process: PERFAGENT_REPORT_JOBS=0, or a fork that
 * failed. */
static void write_here(rf_t *f, const char *path, session_t *s)
{
    int rc = session_write_reports(s, f->full);
    if (rc < 0) {
        fprintf(stderr, PROG ": %s: writing reports to %s: %s\n", path, f->full, strerror(-rc));
        f->bad = f->bad ? f->bad : 3;
    }
    outdir_done(f->e, rc, rc == 0 ? session_summary(s) : NULL);
    f->summary = rc == 0 && session_summary(s) ? strdup(session_summary(s)) : NULL;
    f->done = 1;
}

/* Waits for f's writer and takes its outcome. */
static void wait_one(rf_t *f, const char *path)
{
    const char *sum;
    int status = 0, rc;
    while (rjob_read(&f->rj, 1) == 0)
        ;
    rc = rjob_finish(&f->rj, &status, &sum);
    if (rc < 0) {
        fprintf(stderr, PROG ": %s: writing reports to %s: %s\n", path, f->full,
                rc == -EIO ? "the report writer died before it was done" : strerror(-rc));
        f->bad = f->bad ? f->bad : 3;
    }
    outdir_done(f->e, rc, sum);
    f->summary = sum ? strdup(sum) : NULL;
    rjob_clear(&f->rj);
    f->running = 0;
    f->done = 1;
}

int report_files(outdir_t *out, char *const *paths, int n, const char *sysroot, int per_thread)
{
    unsigned jobs = rjob_max(), running = 0;
    rf_t *v = calloc(n > 0 ? (size_t)n : 1, sizeof(*v));
    int failed = 0, printed = 0, next = 0; /* next: the oldest writer that may run */
    char err[OUTDIR_ERR_LEN];

    if (!v) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    for (int i = 0; i <= n; i++) {
        /* A free writer for file i (at the end: every writer done).  The
         * oldest is waited for: it is also the next to print. */
        while (running && (i == n || running >= jobs)) {
            while (!v[next].running)
                next++;
            wait_one(&v[next], paths[next]);
            running--;
        }
        while (printed < n && v[printed].done) {
            rf_t *f = &v[printed];
            if (f->errline)
                fputs(f->errline, stderr);
            print_summary(f->summary);
            failed |= f->bad != 0;
            printed++;
        }
        if (i == n)
            break;
        rf_t *f = &v[i];
        session_t *s = decode(paths[i], sysroot, per_thread, &f->bad);
        if (!s) {
            f->bad = 1;
            f->done = 1;
            continue;
        }
        if (outdir_begin(out, s, &f->e, &f->full, err) < 0) {
            fprintf(stderr, PROG ": %s: %s\n", paths[i], err);
            f->bad = f->bad ? f->bad : 3;
            f->done = 1;
            session_free(s);
            continue;
        }
        f->errline = error_line(paths[i], s, f->bad, out, f->e);
        /* One file, or none may run: no fork. */
        if (n == 1 || jobs == 0 || rjob_start(&f->rj, s, f->full) < 0) {
            write_here(f, paths[i], s);
            session_free(s);
            continue;
        }
        f->running = 1; /* rjob_start freed s: the writer has its copy */
        running++;
    }
    for (int i = 0; i < n; i++) {
        free(v[i].errline);
        free(v[i].full);
        free(v[i].summary);
    }
    free(v);
    return failed;
}
