/*
 * report_jobs — a finished stream's reports written by a child process, so
 * the collector's event loop goes on reading the other agents meanwhile.
 *
 * Why: symbolizing and rendering one process's reports takes 0.1-1 s (DWARF
 * line tables, flame graphs); written inside the loop, 37 processes of a
 * test suite under `perfagent run` held the loop for 8.7 s of a 9 s run, so
 * agents that were exiting waited on a full socket and their final flush
 * timed out (issue 16).  fork(2) gives the writer a copy-on-write snapshot
 * of the session (the collector is single-threaded, so the child may use
 * malloc and libdw freely), the loop frees its own copy at once, and a
 * crash in report code costs that one process's reports instead of the
 * collector.
 *
 * A job is started (rjob_start), its pipe read as it becomes readable
 * (rjob_read) and, at the pipe's end, reaped (rjob_finish): the child sends
 * session_write_reports' result and the summary text.  The caller keeps the
 * queue, the limit and the event-loop registration (server.c).
 */
#ifndef PA_REPORT_JOBS_H
#define PA_REPORT_JOBS_H

#include <stddef.h>
#include <sys/types.h>

#include "session.h"

typedef struct rjob {
    pid_t pid;    /* the writer, -1 before rjob_start                  */
    int fd;       /* read end of its pipe (non-blocking), -1 when done */
    char *buf;    /* what the child sent so far                        */
    size_t len, cap;
} rjob_t;

/* How many writers may run at once: PERFAGENT_REPORT_JOBS when set (0 =
 * write in the caller, as `perfagent report` does), else the online CPUs,
 * at most 8.  A bad value is said once on stderr and the default used. */
unsigned rjob_max(void);

/* Forks a writer for s's reports into dir.  On success (0) s is freed: the
 * child has its own copy.  -errno (fork or pipe failed: the caller writes
 * the reports itself, s untouched). */
int rjob_start(rjob_t *j, session_t *s, const char *dir);

/* Reads what the child sent.  1 at the end of the pipe (call rjob_finish),
 * 0 for more later; blocking=1 waits for the end. */
int rjob_read(rjob_t *j, int blocking);

/* Reaps the child.  Returns session_write_reports' result, or -EIO when the
 * child died before saying (*status_out: the wait status, for the log);
 * *summary points into the job (valid until rjob_clear), or NULL. */
int rjob_finish(rjob_t *j, int *status_out, const char **summary);

/* Frees the job's buffer and closes its pipe. */
void rjob_clear(rjob_t *j);

#endif
