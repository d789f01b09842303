/*
 * transport.h — the sender's output channel (file, unix or tcp socket).
 * Only the sender thread calls these, except pa_transport_fd_closing(),
 * which the fd hooks (hook_net.c) call on host threads.  Functions return
 * 0 or -errno.
 */
#ifndef PA_TRANSPORT_H
#define PA_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct pa_transport {
    int fd;               /* -1 when closed */
    int dead;             /* file mode failure: never retry */
    int failed_logged;    /* one line per outage, not per try */
    int ever_connected;
    unsigned backoff_ms;
    uint64_t retry_at_ns;
    /* What fd named when we opened it (fstat): a number that names anything
     * else now was taken by the program (issue 16). */
    uint64_t dev, ino;
    /* The program took the output between two whole frames: the next open
     * continues the same stream (a file reopened for append, a connection
     * that starts with the resume preamble) instead of starting a new one. */
    int resume;
    /* Set by the open that continued the stream, else 0. */
    int resumed;
    /* Opens that began a new output (not resumes): a sender whose stream
     * was begun on an earlier one starts a new stream. */
    unsigned streams;
    int carried;          /* this output has bytes of the stream (resumable) */
    char path[600];       /* file: absolute path at open, to reopen it */
} pa_transport_t;

int pa_transport_open(pa_transport_t *t);
/* 1 when open (opening it if the backoff allows), else 0.  An output the
 * program took is noticed here too (and reopened). */
int pa_transport_ready(pa_transport_t *t);
/* Writes all of buf; -ESTALE when the output was taken and could only be
 * reopened as a new stream (the caller starts one: magic, Hello...). */
int pa_transport_write(pa_transport_t *t, const void *buf, size_t len);
/* The same for a frame in pieces; iov[] is used up (advanced) on the way. */
struct iovec;
int pa_transport_writev(pa_transport_t *t, struct iovec *iov, unsigned n);
/* Closes the output if the number still names it (never a program's fd). */
void pa_transport_close(pa_transport_t *t);
/* A fork child: forgets the parent's output, closing our copy only if the
 * number still names it, and clears the hook handshake. */
void pa_transport_after_fork(pa_transport_t *t);
/* The sender hands over to a thread on another fd table: closes the
 * output, to be reopened by the next one where the stream left off. */
void pa_transport_release(pa_transport_t *t);
/* For reading the collector's commands: the fd while it is verified ours
 * (hooks that would close it wait until pa_transport_unhold()), else -1. */
int pa_transport_hold(pa_transport_t *t);
void pa_transport_unhold(void);

/* Hooks (close, dup2, dup3, close_range, closefrom): the program is about
 * to close or replace every fd in [lo, hi].  If that takes ours, the
 * sender is told, and this waits (bounded) until no write of ours is in
 * flight, so the number is never reused under a write. */
void pa_transport_fd_closing(unsigned lo, unsigned hi);
/* fd is our output's number (one relaxed load: for the hooks' fast path). */
int pa_transport_is_ours(int fd);

#endif
