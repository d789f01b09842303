/*
 * crash.h — fatal signals (crash.c): the agent's handler for SIGSEGV,
 * SIGBUS, SIGILL, SIGFPE, SIGABRT, and SIGTERM/SIGINT/SIGHUP/SIGQUIT while
 * their action is the default one.  It records a Crash (signal, address,
 * thread, stack), gets what the rings hold to the output (bounded wait),
 * then lets the process die exactly as it would have, or runs the handler
 * the program installed (hook_signal.c keeps that one as "the previous").
 */
#ifndef PA_CRASH_H
#define PA_CRASH_H

#include "internal.h"

#include <signal.h>

/* PERFAGENT_CRASH (options.c): 0 leaves every signal disposition alone. */
extern PA_HIDDEN int pa_crash_enabled;

/* From the constructor (init.c), once the sender runs: install the handlers
 * where the disposition is one we handle. */
PA_HIDDEN void pa_crash_install(void);

/* ---- hook_signal.c's core ---------------------------------------------- */
/* Whether sig's disposition is kept by us (installed and one of the set);
 * when not, the hooks pass the call to the real sigaction unchanged. */
PA_HIDDEN int pa_crash_manages(int sig);
/* sigaction(2) for a managed signal: the program's handler becomes "the
 * previous" (ours stays installed where it must), oldact gets what the
 * program would have seen without us.  0 or -1 with errno. */
PA_HIDDEN int pa_crash_sigaction(int sig, const struct sigaction *act, struct sigaction *oldact);
/* The real sigaction (the next one in the lookup order, else libc's). */
PA_HIDDEN int pa_crash_real_sigaction(int sig, const struct sigaction *act,
                                      struct sigaction *oldact);

/* ---- the sender's side ---------------------------------------------------- */
typedef struct pa_crash_info {
    int signo;
    int code;             /* si_code */
    uint64_t addr;        /* si_addr of a fault signal, else 0 */
    uint32_t tid;
    uint32_t sender_pid;  /* si_pid of a kill(2)/tgkill(2), else 0 */
    uint32_t stack_id;    /* set by pa_crash_prepare(); 0: none */
    uint64_t ticks, mono_ns;
    int host_handler;     /* the program's own handler runs after the flush */
    int direct;           /* written by the crashing thread itself */
    const char *skipped;  /* why stack_id is 0 (a string constant), or NULL */
} pa_crash_info_t;

/* 1 while a crashing thread waits for the sender's crash flush. */
PA_HIDDEN int pa_crash_requested(void);
/* Sender (or the crashing sender itself): walk the copied stack and intern
 * it; idempotent. */
PA_HIDDEN void pa_crash_prepare(void);
PA_HIDDEN const pa_crash_info_t *pa_crash_info(void);
/* Sender: the crash batch was written (ok 1) or could not be (0); releases
 * the crashing thread. */
PA_HIDDEN void pa_crash_flushed(int ok);
/* sender.c, at the sender's start: let the faults reach the handler there. */
PA_HIDDEN void pa_crash_sender_unblock(void);

/* sender.c: the crash flush asked by a host thread (in the sender's loop),
 * and the one the crashing sender does itself: one frame holding the crash
 * (and its stack) written straight to the output, without the batch being
 * built (it may be half made).  1 when written. */
PA_HIDDEN int pa_sender_crash_direct(void);
/* The sender is in its wait between rounds (nothing of its own half done). */
PA_HIDDEN int pa_sender_idle(void);

#endif
