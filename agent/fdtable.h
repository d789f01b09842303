/*
 * fdtable.h — the sender's own file-descriptor table (fdtable.c says why
 * and when).
 */
#ifndef PA_FDTABLE_H
#define PA_FDTABLE_H

#include "internal.h"

/* 1 while the sender runs on a table of its own (any thread may ask). */
extern PA_HIDDEN _Atomic int pa_fds_private;

/* The sender, as it starts: a table of its own when that is safe; returns
 * 1 if it has one, 0 if it shares the program's (and says why at debug). */
PA_HIDDEN int pa_fds_unshare(void);
/* 1 on the thread that runs on the private table (the sender). */
PA_HIDDEN int pa_fds_here(void);
/* The sender hands itself over to a thread on the program's table
 * (sender.c pa_sender_main_ending), or ends: this thread lets its table
 * go.  Nothing on a thread that shares the program's. */
PA_HIDDEN void pa_fds_leave(void);

/* Where a log line goes: 2, or on the private sender a copy of the
 * program's fd 2 as it is now (-1: none); then give it back. */
PA_HIDDEN int pa_fds_log_fd(void);
PA_HIDDEN void pa_fds_log_fd_done(int fd);

/* The program's main thread is ending (pthread_exit, cancelled): from now
 * on the sender shares the table (hook_exit.c). */
PA_HIDDEN void pa_fds_main_ending(void);
/* 0 once main's thread has ended, or where its end would not be seen (a
 * fork child of another thread): the process may then end with its last
 * host thread at any time (lastthread.c). */
PA_HIDDEN int pa_fds_main_alive(void);
/* fork(2): prepare notes which thread forks; the child's sender may run on
 * a table of its own only if it was main (its end is then caught). */
PA_HIDDEN void pa_fds_fork_prepare(void);
PA_HIDDEN void pa_fds_after_fork_child(void);

#endif
