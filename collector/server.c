/*
 * server — epoll loop and agent connections for the collector.
 *
 * Owns the listener, the connections and their sessions.  Each connection's
 * bytes go straight into its session (session_feed); the stream is finished
 * into the outdir exactly once, by conn_finish(), whether it ended with EOF,
 * a fault, a reset or the collector stopping.  One agent's fault closes that
 * connection only.  Never reads untrusted bytes itself: decode.c does.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net.h"
#include "outdir.h"
#include "perfagent.pb-c.h"
#include "report_jobs.h"
#include "session.h"
#include "stream.h"

#define READ_BUF (256 * 1024)
/* Reads per readiness event before going back to epoll_wait: with level
 * triggering the rest is picked up next turn, so one fast agent cannot
 * starve the others. */
#define READS_PER_EVENT 4
#define ACCEPTS_PER_EVENT 64
#define STOP_READS 64 /* at most 16 MiB more per connection when stopping */
#define INDEX_MAX_DELAY_MS 1000
/* A stream whose connection ended without a Goodbye while its process lives
 * on is held this long for the agent to resume it (stream.h RESUME): the
 * program took the agent's socket, and the agent reconnects within a round
 * (~20 ms).  A process that is gone is finished after PARK_GONE_MS
 * (checked every PARK_CHECK_MS), so a killed program's reports are not
 * delayed for long. */
#define PARK_MS 3000
#define PARK_CHECK_MS 20
/* ... but a stream whose process is gone is still held this long: the
 * agent may have reconnected and ended its process before we read the old
 * connection's EOF (a sender handing over as main's thread ends, then the
 * process exiting within a round: last_thread's pe_joined), and that
 * resume is then in the accept queue, or in the read queue unread. */
#define PARK_GONE_MS 200

enum watch_kind { W_LISTEN, W_CONN, W_USER, W_JOB };

/* What epoll_event.data.ptr points at: the first member of every watched
 * object, so one dispatch switch serves them all (redis ae's aeFileEvent). */
struct watch {
    enum watch_kind kind;
    int fd;
};

typedef struct conn {
    struct watch w;
    struct server *srv;
    session_t *sess;
    char peer[NET_PEER_LEN];
    uint64_t bytes_in;
    struct conn *prev, *next;
    /* Until the first PA_WIRE_RESUME_LEN bytes tell whether this connection
     * resumes a stream (fresh), they are kept in pre[]. */
    int fresh;
    uint8_t pre[PA_WIRE_RESUME_LEN];
    size_t npre;
    /* parked: the socket is gone (w.fd -1); the session waits for a resume
     * until parked_until, or until its process is gone. */
    int parked;
    uint64_t parked_at, parked_until;
    /* A resuming connection that came before this one's EOF waits here,
     * with what it sent after the preamble (held). */
    struct conn *resumer;
    int waiting; /* this is such a connection */
    uint8_t *held;
    size_t nheld;
    /* Collector -> agent Command frames (SnapshotWritten) are a few hundred
     * bytes, one per snapshot, and the agent reads them every round: they
     * are sent at once with MSG_DONTWAIT (no write queue) and MSG_NOSIGNAL
     * (a vanished agent cannot SIGPIPE the collector); one that does not
     * fit is logged and lost, and its requester times out. */
} conn_t;

/* A finished stream whose reports a child writes (report_jobs.h), or that
 * waits for a free writer (s set, rj not started). */
typedef struct job {
    struct watch w; /* w.fd: the writer's pipe while it runs */
    rjob_t rj;
    session_t *s;   /* queued: the session to write */
    outdir_entry_t *e;
    char *full;     /* the directory */
    char peer[NET_PEER_LEN];
    struct job *next;
} job_t;

typedef struct user_watch {
    struct watch w;
    server_fd_fn *fn;
    void *arg;
    struct user_watch *next;
} user_watch_t;

struct server {
    int epfd;
    int spare_fd; /* kept open to survive EMFILE, see on_listen() */
    net_listener_t lis;
    struct watch lis_w;
    outdir_t *out;
    char *sysroot;
    char prog[64];
    int quiet;
    int cpu_per_thread; /* passed to every session */
    size_t max_conns;
    conn_t *conns;
    size_t nconns;
    user_watch_t *users;
    int stopping;
    int draining;
    uint64_t drain_deadline_ms, drain_timeout_ms;
    int index_dirty;   /* streams finished since index.json was written */
    uint64_t index_ms; /* when it was last written                      */
    uint8_t *buf;      /* READ_BUF bytes, shared: session_feed consumes it all */
    unsigned jobs_max;  /* report writers at once; 0: written in the loop */
    unsigned jobs_running;
    job_t *jobs;        /* running, then queued, in arrival order */
};

enum conn_end {
    END_EOF,     /* the agent closed the connection                      */
    END_FAULT,   /* session_feed() refused the stream                    */
    END_RESET,   /* read(2) failed (ECONNRESET, ...)                     */
    END_STOPPED, /* the collector is stopping with the stream still open */
};

static void srv_log(const server_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One line on stderr, written with a single write(2) so lines from a busy
 * collector do not interleave with the traced program's output mid-line. */
static void srv_log(const server_t *s, const char *fmt, ...)
{
    char line[1024];
    int n = snprintf(line, sizeof(line), "%s: ", s->prog);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    n = (int)strlen(line);
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0) {
        /* nowhere left to report it */
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------------------
 * connections
 * ------------------------------------------------------------------------- */

/* session_opts_t.snap_dir: the stream's report directory, named now. */
static int snap_dir(void *arg, session_t *sess, char *path, size_t len)
{
    conn_t *c = arg;
    return outdir_claim(c->srv->out, sess, path, len);
}

/* session_opts_t.snap_done: tell the agent (SnapshotWritten), which tells
 * whoever asked (perfagent snapshot PID). */
static void snap_done(void *arg, session_t *sess, uint64_t id, const char *label, const char *dir,
                      int rc)
{
    conn_t *c = arg;
    Perfagent__Command cmd = PERFAGENT__COMMAND__INIT;
    Perfagent__SnapshotWritten w = PERFAGENT__SNAPSHOT_WRITTEN__INIT;
    uint8_t buf[PATH_MAX + 600];
    char err[256];
    size_t n, hdr = 0;

    if (rc < 0) {
        snprintf(err, sizeof(err), "%s", strerror(-rc));
        w.error = err;
        srv_log(c->srv, "%s: pid %u: snapshot %llu not written: %s", c->peer, session_pid(sess),
                (unsigned long long)id, err);
    } else {
        w.dir = (char *)dir;
        if (!c->srv->quiet)
            srv_log(c->srv, "%s: pid %u: snapshot (%s) in %s", c->peer, session_pid(sess),
                    label, dir);
    }
    w.id = id;
    cmd.body_case = PERFAGENT__COMMAND__BODY_WRITTEN;
    cmd.written = &w;
    n = perfagent__command__get_packed_size(&cmd);
    if (n + 10 > sizeof(buf))
        return;
    /* The stream's framing: a varint length, then the message. */
    for (size_t v = n; ; v >>= 7) {
        buf[hdr++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        if (v <= 0x7f)
            break;
    }
    perfagent__command__pack(&cmd, buf + hdr);
    if (send(c->w.fd, buf, hdr + n, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)(hdr + n))
        srv_log(c->srv, "%s: cannot tell the agent where snapshot %llu is: %s", c->peer,
                (unsigned long long)id, strerror(errno));
}

static void conn_open(server_t *s, int fd, const char *peer)
{
    struct epoll_event ev = {.events = EPOLLIN};
    conn_t *c = calloc(1, sizeof(*c));
    session_opts_t so = {.sysroot = s->sysroot,
                         .peer = peer,
                         .cpu_per_thread = s->cpu_per_thread,
                         .snap_dir = snap_dir,
                         .snap_done = snap_done,
                         .snap_arg = c};

    if (c)
        c->srv = s;
    if (!c || !(c->sess = session_new(&so))) {
        srv_log(s, "%s: refused: out of memory", peer);
        goto fail;
    }
    c->w.kind = W_CONN;
    c->w.fd = fd;
    c->fresh = 1;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    ev.data.ptr = &c->w;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        srv_log(s, "%s: refused: epoll_ctl: %s", peer, strerror(errno));
        goto fail;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    return;
fail:
    if (c)
        session_free(c->sess);
    free(c);
    close(fd);
}

/* The one place a stream ends: closes the socket, ends the session, writes
 * its reports into the outdir and logs one line about it.  Faults are always
 * logged; a clean end only when not quiet. */
static void conn_report(server_t *s, conn_t *c, enum conn_end how, int read_errno);
static int conn_park(server_t *s, conn_t *c);
static int conn_resume(server_t *s, conn_t *c, conn_t *old);

static void conn_unlink(server_t *s, conn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
}

/* A resuming connection that cannot go on: closed, no report (it has no
 * stream of its own; the agent starts a new one on its next connection). */
static void conn_drop(server_t *s, conn_t *c)
{
    conn_unlink(s, c);
    if (c->w.fd >= 0) {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->w.fd, NULL);
        close(c->w.fd);
    }
    session_free(c->sess);
    free(c->held);
    free(c);
}

static void conn_finish(server_t *s, conn_t *c, enum conn_end how, int read_errno)
{
    if (c->w.fd >= 0) {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->w.fd, NULL);
        close(c->w.fd);
        c->w.fd = -1;
    }
    if (how == END_EOF && !c->parked && conn_park(s, c))
        return;
    conn_report(s, c, how, read_errno);
}

/* The reports are written: log it and let the next index list them. */
static void report_done(server_t *s, const char *peer, outdir_entry_t *e, int rc,
                        const char *summary, const char *where)
{
    outdir_done(e, rc, summary);
    s->index_dirty = 1;
    if (rc < 0)
        srv_log(s, "%s: writing reports to %s: %s", peer, where, strerror(-rc));
    else if (!s->quiet && e->has_hello)
        srv_log(s, "%s: pid %u (%s) done; reports in %s", peer, e->pid, e->exe ? e->exe : "?",
                where);
}

static void job_free(job_t *j)
{
    rjob_clear(&j->rj);
    session_free(j->s);
    free(j->full);
    free(j);
}

/* Starts queued jobs while writers are free.  A fork that fails writes
 * that job's reports here, in the loop, as before report_jobs existed. */
static void jobs_start(server_t *s)
{
    for (job_t *j = s->jobs; j && s->jobs_running < s->jobs_max; j = j->next) {
        struct epoll_event ev = {.events = EPOLLIN};
        int rc;
        if (!j->s)
            continue; /* running */
        rc = rjob_start(&j->rj, j->s, j->full);
        if (rc < 0) {
            srv_log(s, "%s: cannot start a report writer (%s); writing in the loop", j->peer,
                    strerror(-rc));
            rc = session_write_reports(j->s, j->full);
            report_done(s, j->peer, j->e, rc, rc == 0 ? session_summary(j->s) : NULL, j->full);
            session_free(j->s);
            j->s = NULL;
            j->rj.fd = -1; /* done: reaped by jobs_reap below */
            j->rj.pid = -1;
            continue;
        }
        j->s = NULL; /* rjob_start freed it */
        j->w.kind = W_JOB;
        j->w.fd = j->rj.fd;
        ev.data.ptr = &j->w;
        s->jobs_running++;
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, j->rj.fd, &ev) < 0)
            (void)rjob_read(&j->rj, 1); /* cannot watch it: wait for it now */
    }
}

/* Finishes the jobs whose writer is done (pipe at its end), in any order. */
static void jobs_reap(server_t *s)
{
    for (job_t **pp = &s->jobs; *pp;) {
        job_t *j = *pp;
        if (j->s || j->rj.fd >= 0) {
            pp = &j->next;
            continue;
        }
        if (j->rj.pid > 0) {
            const char *sum;
            int status = 0, rc = rjob_finish(&j->rj, &status, &sum);
            s->jobs_running--;
            if (rc == -EIO && (WIFSIGNALED(status) || WIFEXITED(status))) {
                /* One line, instead of report_done's "Input/output error". */
                if (WIFSIGNALED(status))
                    srv_log(s, "%s: the report writer for pid %u died of %s; %s may be incomplete",
                            j->peer, j->e->pid, strsignal(WTERMSIG(status)), j->full);
                else
                    srv_log(s, "%s: the report writer for pid %u exited %d before it was done; "
                               "%s may be incomplete",
                            j->peer, j->e->pid, WEXITSTATUS(status), j->full);
                outdir_done(j->e, rc, NULL);
                s->index_dirty = 1;
            } else {
                report_done(s, j->peer, j->e, rc, sum, j->full);
            }
        }
        *pp = j->next;
        job_free(j);
    }
    jobs_start(s);
}

static void on_job(server_t *s, job_t *j, int blocking)
{
    if (rjob_read(&j->rj, blocking) == 0)
        return;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, j->rj.fd, NULL);
    close(j->rj.fd);
    j->rj.fd = -1;
    jobs_reap(s);
}

/* Every report written (the loop has ended): waits for the writers. */
static void jobs_wait(server_t *s)
{
    while (s->jobs) {
        job_t *j = s->jobs;
        while (j && j->s)
            j = j->next;
        if (!j) {
            jobs_start(s);
            continue;
        }
        on_job(s, j, 1);
    }
}

/* Writes c's reports: by a writer process when allowed (the loop goes on
 * reading the other agents), else here. */
static int report_submit(server_t *s, conn_t *c, char *where, size_t wlen)
{
    char oerr[OUTDIR_ERR_LEN];
    outdir_entry_t *e;
    char *full;
    int rc = outdir_begin(s->out, c->sess, &e, &full, oerr);
    job_t *j;

    snprintf(where, wlen, "?");
    if (rc < 0) {
        srv_log(s, "%s: %s", c->peer, oerr);
        return rc;
    }
    if (s->jobs_max && (j = calloc(1, sizeof(*j)))) {
        j->s = c->sess;
        c->sess = NULL;
        j->e = e;
        j->full = full;
        j->rj.fd = j->rj.pid = -1;
        snprintf(j->peer, sizeof(j->peer), "%s", c->peer);
        job_t **pp = &s->jobs;
        while (*pp)
            pp = &(*pp)->next;
        *pp = j;
        snprintf(where, wlen, "%s", full);
        jobs_start(s);
        return 0;
    }
    rc = session_write_reports(c->sess, full);
    report_done(s, c->peer, e, rc, rc == 0 ? session_summary(c->sess) : NULL, full);
    snprintf(where, wlen, "%s", full);
    free(full);
    return rc;
}

static void conn_report(server_t *s, conn_t *c, enum conn_end how, int read_errno)
{
    char what[600], where[600];
    const char *serr;
    int fault = how == END_FAULT, has_hello;
    uint32_t pid;

    if (c->resumer) { /* it waited for a stream that ends here after all */
        srv_log(s, "%s: pid %u: the stream to resume ended; closed", c->resumer->peer,
                session_pid(c->sess));
        conn_drop(s, c->resumer);
        c->resumer = NULL;
    }
    if (how != END_FAULT && session_end(c->sess) < 0)
        fault = 1; /* cut short in the middle of a frame */
    serr = session_error(c->sess);

    if (c->bytes_in == 0) {
        /* A probe (a second collector checking for a stale socket, a port
         * scan): nothing to report, so no directory either. */
        if (!s->quiet)
            srv_log(s, "%s: closed without sending anything", c->peer);
        goto out;
    }
    has_hello = session_has_hello(c->sess);
    pid = session_pid(c->sess);
    if (!has_hello)
        snprintf(what, sizeof(what), "no Hello received%s%s", serr ? ": " : "", serr ? serr : "");
    else if (fault)
        snprintf(what, sizeof(what), "pid %u: %s", pid, serr ? serr : "stream fault");
    else if (how == END_RESET)
        snprintf(what, sizeof(what), "pid %u: connection lost: %s", pid, strerror(read_errno));
    else if (how == END_STOPPED)
        snprintf(what, sizeof(what), "pid %u: stream still open when the collector stopped", pid);
    else
        what[0] = '\0';
    /* what[] is a copy: session_error points into the session, which a
     * writer takes. */
    (void)report_submit(s, c, where, sizeof(where));
    if (what[0])
        srv_log(s, "%s: %s; kept what arrived in %s", c->peer, what, where);
out:
    conn_unlink(s, c);
    session_free(c->sess);
    free(c->held);
    free(c);
}

/* ---------------------------------------------------------------------------
 * resumed streams (stream.h RESUME)
 * ------------------------------------------------------------------------- */

/* Is the traced process still there?  Its leader may be a zombie while
 * other threads go on (main called pthread_exit: the agent's sender hands
 * over then, agent/fdtable.c); a zombie with no other thread is gone
 * (num_threads, field 20 of proc(5)'s stat, counts the zombie leader). */
static int pid_alive(uint32_t pid)
{
    char path[64], st[512];
    snprintf(path, sizeof(path), "/proc/%u/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, st, sizeof(st) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    st[n] = '\0';
    const char *p = strrchr(st, ')'); /* comm may hold spaces and parens */
    if (!p || p[1] != ' ' || p[2] == 'X')
        return 0;
    if (p[2] != 'Z')
        return 1;
    unsigned field = 3; /* p + 2 is field 3, the state */
    for (p += 2; *p && field < 20; p++)
        if (*p == ' ')
            field++;
    return field == 20 && strtoul(p, NULL, 10) > 1;
}

/* The connection ended (EOF) without a Goodbye: hold its session for a
 * resume if its process lives on.  1 when parked. */
static int conn_park(server_t *s, conn_t *c)
{
    if (s->stopping || !session_resumable(c->sess))
        return 0;
    c->parked = 1;
    c->parked_at = now_ms();
    c->parked_until = c->parked_at + PARK_MS;
    if (c->resumer)
        conn_resume(s, c->resumer, c);
    return 1;
}

/* c (a new connection, its preamble read) takes over old's session; old
 * was parked.  Then what c sent after the preamble is fed. */
static int conn_resume(server_t *s, conn_t *c, conn_t *old)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->w};
    session_free(c->sess);
    c->sess = old->sess;
    old->sess = NULL;
    session_set_snap_arg(c->sess, c);
    c->bytes_in += old->bytes_in;
    c->waiting = 0;
    old->resumer = NULL;
    if (!s->quiet)
        srv_log(s, "%s: pid %u: the agent's connection was cut between frames; the stream goes on here",
                c->peer, session_pid(c->sess));
    conn_unlink(s, old);
    free(old->held);
    free(old);
    epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->w.fd, &ev);
    if (c->nheld) {
        int rc = session_feed(c->sess, c->held, c->nheld);
        free(c->held);
        c->held = NULL;
        c->nheld = 0;
        if (rc < 0) {
            conn_finish(s, c, END_FAULT, 0);
            return 1;
        }
    }
    return 0;
}

/* The first bytes of a connection.  Returns how many of buf[0..n) were
 * used up here (the rest goes to the session), or -1 when c was finished. */
static ssize_t conn_first_bytes(server_t *s, conn_t *c, const uint8_t *buf, size_t n)
{
    uint32_t pid;
    uint64_t start;
    size_t take = n < sizeof(c->pre) - c->npre ? n : sizeof(c->pre) - c->npre;
    memcpy(c->pre + c->npre, buf, take);
    c->npre += take;
    int r = stream_resume_header(c->pre, c->npre, &pid, &start);
    if (r == 0)
        return (ssize_t)take; /* too few bytes to tell */
    c->fresh = 0;
    if (r < 0) { /* an ordinary stream: what was kept goes first */
        size_t kept = c->npre - take;
        if (kept && session_feed(c->sess, c->pre, kept) < 0) {
            conn_finish(s, c, END_FAULT, 0);
            return -1;
        }
        return 0;
    }
    conn_t *old = NULL;
    for (conn_t *o = s->conns; o; o = o->next)
        /* One not read to its end yet may be mid-frame now: conn_park
         * decides at its EOF (a sender that hands over to another thread,
         * agent/fdtable.c, reconnects as soon as it closed). */
        if (o != c && o->sess && !o->resumer && session_pid(o->sess) == pid &&
            session_start_unix_ns(o->sess) == start &&
            (o->parked ? session_resumable(o->sess) : session_may_resume(o->sess)))
            old = o;
    if (!old) {
        /* The collector restarted, or the stream had ended: without its
         * Hello and stacks the frames cannot be read.  Closing makes the
         * agent start a new stream on its next connection. */
        srv_log(s, "%s: pid %u asked to resume a stream this collector does not hold; closed",
                c->peer, pid);
        conn_drop(s, c);
        return -1;
    }
    /* Hold the rest until old's last bytes are in (epoll may report the new
     * connection before the old one's EOF). */
    if (n > take) {
        c->held = malloc(n - take);
        if (!c->held) {
            conn_finish(s, c, END_FAULT, 0);
            return -1;
        }
        memcpy(c->held, buf + take, n - take);
        c->nheld = n - take;
    }
    old->resumer = c;
    c->waiting = 1;
    if (old->parked)
        return conn_resume(s, c, old) ? -1 : (ssize_t)n;
    /* Not ended yet: stop reading c until old's EOF parks it. */
    struct epoll_event ev = {.events = 0, .data.ptr = &c->w};
    epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->w.fd, &ev);
    return (ssize_t)n;
}

/* Parked sessions whose time is up or whose process is gone are finished. */
static void park_sweep(server_t *s, int all)
{
    uint64_t now = now_ms();
    for (conn_t *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->parked && (all || now >= c->parked_until ||
                          (now >= c->parked_at + PARK_GONE_MS && !pid_alive(session_pid(c->sess)))))
            conn_report(s, c, END_EOF, 0);
    }
}

static int any_parked(const server_t *s)
{
    for (const conn_t *c = s->conns; c; c = c->next)
        if (c->parked)
            return 1;
    return 0;
}

/* Reads up to `max_reads` times.  Returns 1 when the connection was finished
 * (EOF, fault, error) and freed, 0 when it is still open. */
static int conn_read(server_t *s, conn_t *c, int max_reads)
{
    if (c->parked || c->waiting)
        return 0; /* no socket, or waiting for the stream it resumes */
    for (int i = 0; i < max_reads; i++) {
        ssize_t n = read(c->w.fd, s->buf, READ_BUF), used = 0;
        if (n > 0) {
            c->bytes_in += (uint64_t)n;
            if (c->fresh && (used = conn_first_bytes(s, c, s->buf, (size_t)n)) < 0)
                return 1;
            if (c->waiting) /* the rest is held until the old stream's EOF */
                return 0;
            if (used == n)
                continue;
            if (session_feed(c->sess, s->buf + used, (size_t)(n - used)) < 0) {
                conn_finish(s, c, END_FAULT, 0);
                return 1;
            }
        } else if (n == 0) {
            conn_finish(s, c, END_EOF, 0);
            return 1;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        } else if (errno != EINTR) {
            conn_finish(s, c, END_RESET, errno);
            return 1;
        }
    }
    return 0;
}

/* index.json is rewritten when the loop has nothing else to do, and at least
 * every INDEX_MAX_DELAY_MS under load: rewriting it per stream would cost
 * O(processes^2) for a daemon that outlives thousands of them. */
static void index_flush(server_t *s)
{
    char err[OUTDIR_ERR_LEN];
    s->index_dirty = 0;
    s->index_ms = now_ms();
    if (outdir_write_index(s->out, err) < 0)
        srv_log(s, "%s", err);
}

/* ---------------------------------------------------------------------------
 * listener
 * ------------------------------------------------------------------------- */

/* Accepts what is queued.  At EMFILE the pending connection would stay queued
 * and level-triggered epoll would wake us forever, so the spare descriptor is
 * given up to accept and drop it (the libev/nginx "reserve fd" trick). */
static void on_listen(server_t *s)
{
    char err[NET_ERR_LEN], peer[NET_PEER_LEN];
    uid_t uid;

    for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
        int fd = net_accept(err, &s->lis, peer, sizeof(peer), &uid);
        if (fd == -EAGAIN)
            return;
        if (fd == -EMFILE || fd == -ENFILE) {
            srv_log(s, "%s; dropping a connection", err);
            if (s->spare_fd >= 0) {
                close(s->spare_fd);
                fd = accept(s->lis.fd, NULL, NULL);
                if (fd >= 0)
                    close(fd);
                s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            }
            return;
        }
        if (fd < 0) {
            srv_log(s, "%s", err);
            return;
        }
        /* The socket file is 0600, but root-owned or setgid directories and
         * inherited descriptors exist: check the peer itself (unix(7)). */
        if (s->lis.is_unix && uid != 0 && uid != geteuid()) {
            srv_log(s, "%s: refused: uid %u is neither root nor the collector's uid %u", peer,
                    (unsigned)uid, (unsigned)geteuid());
            close(fd);
            continue;
        }
        if (s->nconns >= s->max_conns) {
            srv_log(s, "%s: refused: %zu connections already open (the maximum)", peer, s->nconns);
            close(fd);
            continue;
        }
        conn_open(s, fd, peer);
    }
}

/* ---------------------------------------------------------------------------
 * public
 * ------------------------------------------------------------------------- */

server_t *server_new(const server_opts_t *o, char *err)
{
    char nerr[NET_ERR_LEN];
    struct epoll_event ev = {.events = EPOLLIN};
    server_t *s = calloc(1, sizeof(*s));

    if (!s) {
        snprintf(err, SERVER_ERR_LEN, "out of memory");
        return NULL;
    }
    s->epfd = -1;
    s->spare_fd = -1;
    s->lis.fd = -1;
    s->out = o->out;
    s->quiet = o->quiet;
    s->cpu_per_thread = o->cpu_per_thread;
    s->max_conns = o->max_conns > 0 ? (size_t)o->max_conns : SERVER_MAX_CONNS;
    s->jobs_max = rjob_max();
    snprintf(s->prog, sizeof(s->prog), "%s", o->prog ? o->prog : "perfagent-collector");
    s->buf = malloc(READ_BUF);
    if (!s->buf || (o->sysroot && !(s->sysroot = strdup(o->sysroot)))) {
        snprintf(err, SERVER_ERR_LEN, "out of memory");
        goto fail;
    }
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        snprintf(err, SERVER_ERR_LEN, "epoll_create1: %s", strerror(errno));
        goto fail;
    }
    if (net_listen(nerr, o->listen, &s->lis) < 0) {
        snprintf(err, SERVER_ERR_LEN, "%s", nerr);
        goto fail;
    }
    s->lis_w.kind = W_LISTEN;
    s->lis_w.fd = s->lis.fd;
    ev.data.ptr = &s->lis_w;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lis.fd, &ev) < 0) {
        snprintf(err, SERVER_ERR_LEN, "epoll_ctl: %s", strerror(errno));
        goto fail;
    }
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return s;
fail:
    server_free(s);
    return NULL;
}

void server_free(server_t *s)
{
    if (!s)
        return;
    while (s->conns) { /* only after a failed server_run(): no reports */
        conn_t *c = s->conns;
        s->conns = c->next;
        close(c->w.fd);
        session_free(c->sess);
        free(c);
    }
    while (s->jobs) { /* only after a failed server_run() */
        job_t *j = s->jobs;
        s->jobs = j->next;
        if (j->rj.pid > 0) {
            const char *sum;
            (void)rjob_finish(&j->rj, NULL, &sum);
        }
        job_free(j);
    }
    while (s->users) {
        user_watch_t *u = s->users;
        s->users = u->next;
        free(u);
    }
    net_unlisten(&s->lis);
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->spare_fd >= 0)
        close(s->spare_fd);
    free(s->sysroot);
    free(s->buf);
    free(s);
}

const char *server_address(const server_t *s)
{
    return s->lis.addr;
}

int server_is_local(const server_t *s)
{
    return s->lis.loopback;
}

size_t server_conn_count(const server_t *s)
{
    return s->nconns;
}

int server_watch(server_t *s, int fd, server_fd_fn *fn, void *arg)
{
    struct epoll_event ev = {.events = EPOLLIN};
    user_watch_t *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->w.kind = W_USER;
    u->w.fd = fd;
    u->fn = fn;
    u->arg = arg;
    ev.data.ptr = &u->w;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int rc = -errno;
        free(u);
        return rc;
    }
    u->next = s->users;
    s->users = u;
    return 0;
}

void server_stop(server_t *s)
{
    s->stopping = 1;
}

void server_drain(server_t *s, uint64_t timeout_ms)
{
    if (s->draining)
        return;
    s->draining = 1;
    s->drain_timeout_ms = timeout_ms;
    s->drain_deadline_ms = now_ms() + timeout_ms;
}

/* While draining: may the loop end, and how long may it sleep? */
static int drain_done(server_t *s, int *timeout)
{
    uint64_t now;
    /* An agent that connected just before its process exited may still sit
     * in the accept queue: it counts as open (listen(2) backlog). */
    on_listen(s);
    if (s->nconns == 0)
        return 1;
    now = now_ms();
    if (now >= s->drain_deadline_ms) {
        srv_log(s, "%zu agent connection(s) still open after %.1f s; writing what arrived",
                s->nconns, s->drain_timeout_ms / 1000.0);
        return 1;
    }
    *timeout = (int)(s->drain_deadline_ms - now);
    return 0;
}

int server_run(server_t *s)
{
    struct epoll_event ev[64];
    int rc = 0;

    while (!s->stopping) {
        int timeout = -1, n;
        if (s->draining && drain_done(s, &timeout))
            break;
        if (s->index_dirty)
            timeout = 0; /* just poll: write the index once nothing is pending */
        int parked = any_parked(s);
        if (parked && (timeout < 0 || timeout > PARK_CHECK_MS))
            timeout = PARK_CHECK_MS;
        /* epoll(7): level-triggered, so whatever a handler leaves unread is
         * reported again on the next call. */
        n = epoll_wait(s->epfd, ev, (int)(sizeof(ev) / sizeof(ev[0])), timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            srv_log(s, "epoll_wait: %s", strerror(errno));
            break;
        }
        if (parked)
            park_sweep(s, 0);
        if (s->index_dirty && (n == 0 || now_ms() - s->index_ms >= INDEX_MAX_DELAY_MS))
            index_flush(s);
        for (int i = 0; i < n; i++) {
            struct watch *w = ev[i].data.ptr;
            if (w->kind == W_LISTEN) {
                on_listen(s);
            } else if (w->kind == W_CONN) {
                conn_read(s, (conn_t *)w, READS_PER_EVENT);
            } else if (w->kind == W_JOB) {
                on_job(s, (job_t *)w, 0);
            } else {
                user_watch_t *u = (user_watch_t *)w;
                u->fn(s, u->w.fd, u->arg);
            }
        }
    }
    /* Stopping: what the agents already sent sits in the socket buffers;
     * read it (a bounded amount: an agent that never stops sending must not
     * hold up the exit) so the reports cover everything that arrived. */
    park_sweep(s, 1);
    for (;;) { /* connections waiting to resume: the stream ends here */
        conn_t *w = s->conns;
        while (w && !w->waiting)
            w = w->next;
        if (!w)
            break;
        for (conn_t *o = s->conns; o; o = o->next)
            if (o->resumer == w)
                o->resumer = NULL;
        conn_drop(s, w);
    }
    for (conn_t *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (conn_read(s, c, STOP_READS) == 0)
            conn_finish(s, c, END_STOPPED, 0);
    }
    jobs_wait(s);
    if (s->index_dirty)
        index_flush(s);
    return rc;
}
