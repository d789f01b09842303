/*
 * transport.h — the sender's output channel (file, unix or tcp socket).
 * Only the sender thread calls these.  Functions return 0 or -errno.
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
} pa_transport_t;

int pa_transport_open(pa_transport_t *t);
/* 1 when open (opening it if the backoff allows), else 0. */
int pa_transport_ready(pa_transport_t *t);
int pa_transport_write(pa_transport_t *t, const void *buf, size_t len);
/* The same for a frame in pieces; iov[] is used up (advanced) on the way. */
struct iovec;
int pa_transport_writev(pa_transport_t *t, struct iovec *iov, unsigned n);
void pa_transport_close(pa_transport_t *t);

#endif
