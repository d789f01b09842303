/*
 * control.h — `perfagent snapshot PID` on the agent's side (control.c): a
 * listening socket the sender polls in its rounds, and the interval
 * snapshots of PERFAGENT_SNAPSHOT_INTERVAL.  Only the sender thread calls
 * these (pa_ctl_after_fork: the fork child, before it has a sender).
 */
#ifndef PA_CONTROL_H
#define PA_CONTROL_H

#include <stdint.h>

#include "internal.h"

/* PERFAGENT_SNAPSHOT_INTERVAL in seconds, 0 = off (options.c). */
extern PA_HIDDEN unsigned pa_snapshot_interval_s;

/* What pa_ctl_poll() asks the sender for. */
enum { PA_CTL_WANT_REQUEST = 1, PA_CTL_WANT_INTERVAL = 2 };

/* How a marker went (pa_ctl_marker_done). */
enum { PA_CTL_TO_FILE, PA_CTL_TO_COLLECTOR, PA_CTL_LOST };

/* Listens on the abstract unix socket "@perfagent.<pid>" (sender start). */
PA_HIDDEN void pa_ctl_open(void);
/* Answers whoever still waits and stops listening (sender end). */
PA_HIDDEN void pa_ctl_close(void);
/* fork child: the parent's sockets are not ours to answer on. */
PA_HIDDEN void pa_ctl_after_fork(void);
/* Accepts connections and reads requests without blocking; returns the
 * PA_CTL_WANT_* bits of the markers now due. */
PA_HIDDEN int pa_ctl_poll(uint64_t now_ns);
/* The marker the requests wait for was written as marker `id` of the
 * stream (how = PA_CTL_TO_FILE / PA_CTL_TO_COLLECTOR), or not (PA_CTL_LOST,
 * `why` says why).  Resets the interval clock. */
PA_HIDDEN void pa_ctl_marker_done(uint64_t id, int how, const char *why, uint64_t now_ns);
/* Reads the collector's Command frames (SnapshotWritten) from the output
 * socket without blocking, and passes each answer to its requester. */
PA_HIDDEN void pa_ctl_collector_input(int fd);

#endif
