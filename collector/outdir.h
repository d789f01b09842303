/*
 * outdir — the reports directory: one subdirectory per finished stream and an
 * index.json listing the processes.  Shared by the live collector (server.c),
 * `perfagent run` and `perfagent report`, so every front end lays the
 * directory out identically:
 *
 *     OUTDIR/index.json   {"processes":[{"pid":N,"ppid":N,"exe":"...",
 *                          "argv":[...],"dir":"N"}, ...]}  sorted by pid
 *     OUTDIR/<pid>/       leaks.json leaks.txt alloc.folded inuse.folded
 *                         summary.txt (session_write_reports)
 *
 * A second stream with a pid already used in this OUTDIR (an exec'd program
 * keeps its pid; pids get reused) goes to "<pid>-2", "<pid>-3", ...  A stream
 * that never sent a Hello goes to "unknown-<n>" and is not in the index.
 * index.json is rewritten by outdir_write_index() (temp file + rename(2)), so
 * a reader never sees half of it; callers batch the rewrites (a daemon that
 * sees thousands of processes must not rewrite a growing index per process).
 * Not thread-safe.
 */
#ifndef PA_OUTDIR_H
#define PA_OUTDIR_H

#include <stddef.h>
#include <stdint.h>

#include "session.h"

#define OUTDIR_ERR_LEN 512

typedef struct outdir outdir_t;

typedef struct outdir_entry {
    int has_hello;
    unsigned seq; /* arrival order, from 0                              */
    uint32_t pid, ppid;
    char *exe;       /* NULL without a Hello                               */
    char *argv_json; /* "[...]", "[]" without a Hello                      */
    char *dir;       /* name inside OUTDIR: "123", "123-2", "unknown-1"     */
    char *summary;   /* session_summary() text, "" if none                 */
    int pending;     /* reports still being written (report_jobs.h): not
                      * in index.json yet                                  */
} outdir_entry_t;

/* Creates `path` (and its parents) if missing.  NULL on failure, with the
 * reason in err (OUTDIR_ERR_LEN bytes). */
outdir_t *outdir_new(const char *path, char *err);
void outdir_free(outdir_t *o); /* accepts NULL */

const char *outdir_path(const outdir_t *o);

/* Finish a stream: write its reports into a fresh subdirectory and record it
 * for the index.  Call once per session, after session_end() (or after a
 * fault).  *entry (if non-NULL) points at the record, valid until
 * outdir_free().  Returns 0 or -errno with the reason in err; the entry is
 * recorded even when writing failed, so its directory name is never reused. */
int outdir_add(outdir_t *o, session_t *s, const outdir_entry_t **entry, char *err);

/* outdir_add in two halves, for reports written elsewhere (report_jobs.h):
 * outdir_begin records s's entry, pending, and gives the directory to
 * write into (*full, malloc'd); outdir_done takes the outcome (rc of
 * session_write_reports, the summary text or NULL) and lists the entry in
 * the next index.json.  outdir_begin returns 0 or -ENOMEM. */
int outdir_begin(outdir_t *o, const session_t *s, outdir_entry_t **entry, char **full, char *err);
void outdir_done(outdir_entry_t *e, int rc, const char *summary);

/* Rewrite index.json from every stream added so far.  Returns 0 or -errno
 * with the reason in err. */
int outdir_write_index(outdir_t *o, char *err);

/* The subdirectory s's reports will go to, named now (a collector writing
 * snapshots while the stream runs): its absolute path into path[len].
 * outdir_add() later uses the same name.  0, or -ENOENT before s's Hello,
 * -EEXIST when already claimed, -ENOMEM, -errno of realpath(3). */
int outdir_claim(outdir_t *o, const session_t *s, char *path, size_t len);

size_t outdir_count(const outdir_t *o);
const outdir_entry_t *outdir_get(const outdir_t *o, size_t i); /* in arrival order */

#endif
