/*
 * lastthread.h — the sender's question "has every host thread ended?"
 * (lastthread.c).  Sender thread only.
 */
#ifndef PA_LASTTHREAD_H
#define PA_LASTTHREAD_H

#include "internal.h"

#include <signal.h>

/* 1 when the thread group leader is a zombie and the sender is the only
 * other thread: every host thread has ended. */
PA_HIDDEN int pa_host_threads_gone(void);
/* Unblocks, on the calling thread, the signals whose default action ends the
 * process, where the host kept that default and host_mask does not block
 * them. */
PA_HIDDEN void pa_unblock_fatal_signals(const sigset_t *host_mask);
PA_HIDDEN void pa_host_threads_after_fork(void);

#endif
