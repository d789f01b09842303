/*
 * net.h — what the socket hooks (hook_net.c) ask the tracing core (net.c).
 *
 * The hooks see every read and write of the process, so the test "is this
 * fd a socket we trace?" is inline: one byte of a table indexed by fd
 * (mapped at init, never from the host heap).  Everything past that test
 * runs in net.c under the reentrancy guard, after the real call, and never
 * touches errno (the hooks save and restore it around the core).
 */
#ifndef PA_NET_H
#define PA_NET_H

#include "internal.h"

#include <sys/socket.h>
#include <sys/uio.h>

#define PA_NET_MAX_FD 65536 /* higher fds are not traced (counted nowhere) */

/* pa_net_kind[fd] */
enum { PA_NET_NONE = 0, PA_NET_SOCKET = 1 /* socket(), no peer yet */, PA_NET_CONN = 2 };
enum { PA_NET_SEND = 0, PA_NET_RECV = 1 };

extern PA_HIDDEN _Atomic uint8_t *pa_net_kind; /* NULL: tracing off */

/* The fd's kind when the calling thread may trace now (net on, agent on,
 * not inside the agent), else 0. */
static inline __attribute__((always_inline)) int pa_net_watch(int fd)
{
    _Atomic uint8_t *k = pa_net_kind;
    if (PA_LIKELY(!k) || (unsigned)fd >= PA_NET_MAX_FD)
        return 0;
    int v = atomic_load_explicit(&k[fd], memory_order_relaxed);
    if (PA_LIKELY(!v) || pa_tls.guard ||
        !atomic_load_explicit(&pa_agent_on, memory_order_relaxed))
        return 0;
    return v;
}

/* 1 while the fd is known non-blocking: O_NONBLOCK from socket(2),
 * accept4(2), fcntl(F_SETFL) or ioctl(FIONBIO), all hooked.  Its data
 * calls cannot wait and are not timed.  A flag changed behind our back
 * (a raw syscall, or fcntl on a dup sharing the open file description)
 * can leave it set on a blocking socket: that socket's waits go unseen. */
extern PA_HIDDEN _Atomic uint8_t *pa_net_nb;
PA_HIDDEN uint64_t pa_net_now(void);
PA_HIDDEN void pa_net_set_nonblock(int fd, int on);

/* The socket slots (net.c), for pa_net_io_start's prefetch. */
extern PA_HIDDEN char *pa_net_slots;
extern PA_HIDDEN const size_t pa_net_slot_size;

/* The start time of a data call on a traced connection (pa_net_watch said
 * PA_NET_CONN), or 0: not timed (it cannot block). */
static inline __attribute__((always_inline)) uint64_t pa_net_io_start(int fd, int flags)
{
    /* The slot pa_net_io will update after the call: fetched while the
     * kernel works (it is out of cache on most calls of a program with
     * many connections, net_int.h sock_t). */
    __builtin_prefetch(pa_net_slots + (size_t)fd * pa_net_slot_size, 1);
    if ((flags & MSG_DONTWAIT) || atomic_load_explicit(&pa_net_nb[fd], memory_order_relaxed))
        return 0;
    return pa_net_now();
}

/* Whether tracing is on at all for a call that may create a traced fd. */
static inline int pa_net_active(void)
{
    return pa_net_kind && !pa_tls.guard &&
           atomic_load_explicit(&pa_agent_on, memory_order_relaxed);
}

/* fork(2), in the child: the inherited connections become the child's. */
PA_HIDDEN void pa_net_after_fork_child(void);
PA_HIDDEN void pa_net_socket(int fd, int domain, int type);
/* connect: before the real call (peer, start time, stack) and after it. */
PA_HIDDEN void pa_net_connect_begin(int fd, const struct sockaddr *sa, socklen_t len,
                                    uintptr_t from);
PA_HIDDEN void pa_net_connect_end(int fd, int r, int err);
/* nonblock: accept4's SOCK_NONBLOCK (accept(2)'s sockets never inherit it). */
PA_HIDDEN void pa_net_accept(int fd, int nonblock, uintptr_t from);
/* getsockopt(SO_ERROR) returned `soerr` for fd (a non-blocking connect's
 * outcome); poll saw fd writable (ok) or failed. */
PA_HIDDEN void pa_net_connect_result(int fd, int soerr);
PA_HIDDEN void pa_net_poll_ready(int fd, int ok);
/* A data call: iov NULL when the bytes are not visible (sendfile). */
PA_HIDDEN void pa_net_io(int fd, int dir, const struct iovec *iov, int iovcnt, long r, int err,
                         uint64_t t0, uintptr_t from);
/* A call that may block began at t0 and returned: 1 ms or more is a wait
 * (its stack from `from`). */
PA_HIDDEN void pa_net_wait(const char *call, uint64_t t0, uintptr_t from);
/* getaddrinfo(node) returned rc after starting at t0. */
PA_HIDDEN void pa_net_dns(const char *node, int rc, uint64_t t0);
/* close(fd), dup2 onto fd: forget it, then report it. */
PA_HIDDEN void pa_net_close(int fd);

#endif
