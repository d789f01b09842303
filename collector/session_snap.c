/*
 * session_snap.c — snapshots written while the process runs: a collector
 * (perfagent run, perfagent-collector) writes each SnapshotMarker's live
 * heap into DIR/<pid>/snapshots/NNN as the marker arrives, so that
 * `perfagent snapshot PID` can return once it is on disk, and tells the
 * front end where (session_opts_t.snap_done), which answers the agent.
 * A file replayed by `perfagent report` keeps the live sets instead and
 * writes them with the reports (session.c on_snapshot, report_snapshot.c).
 */
#include "session_int.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* The process's report directory, asked of the front end once. */
static const char *root(session_t *s)
{
    char buf[PATH_MAX];
    if (s->snap_root || s->snap_root_rc)
        return s->snap_root;
    int rc = s->snap_dir(s->snap_arg, s, buf, sizeof(buf));
    if (rc == 0 && !(s->snap_root = strdup(buf)))
        rc = -ENOMEM;
    s->snap_root_rc = rc < 0 ? rc : 0;
    return s->snap_root;
}

int session_snapshot_live(session_t *s, rep_snapshot_t *sn)
{
    char path[PATH_MAX];
    rep_input_t in;
    const char *dir = root(s);
    int rc = s->snap_root_rc;

    if (dir) {
        /* The live heap now is the marker's: on_snapshot() applied every
         * row before it (the agent sends a marker after a whole round). */
        session_fill_input(s, &in);
        sn->dir_no = ++s->snap_dirs;
        sn->written = 1; /* even when it failed: the reports do not retry */
        rc = report_write_marker(&in, sn, s->stacks, dir, path, sizeof(path));
    }
    if (s->snap_done)
        s->snap_done(s->snap_arg, s, sn->id, sn->label, rc == 0 ? path : NULL, rc);
    return 0; /* a snapshot that could not be written never ends the stream */
}
