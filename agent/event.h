/*
 * event.h — typed events from host threads (a libpq query, a socket
 * event): one packed protobuf message of a Record field (proto/wire.h,
 * PA_WIRE_EVENT_*) written straight into the calling thread's event ring,
 * which the sender passes on unchanged (sender.c, records.c
 * pa_rec_event).  A feature module reserves room, packs its message there
 * (protobuf-c's pack does not allocate) and commits what it wrote:
 *
 *     pa_event_t ev;
 *     uint8_t *p = pa_event_reserve(PA_WIRE_EVENT_QUERY, bound, &ev);
 *     if (p)
 *         pa_event_commit(&ev, perfagent__query_event__pack(&q, p));
 *
 * The caller holds the reentrancy guard (the first event of a thread maps
 * its ring).  Never waits: a full ring drops the event and counts it.
 */
#ifndef PA_EVENT_H
#define PA_EVENT_H

#include "ring.h"

typedef struct pa_event {
    pa_tring_t *ring;
    pa_trec_t rec;
} pa_event_t;

/* Room for up to maxlen (<= PA_WIRE_EVENT_MAX) bytes of an event of
 * `kind` in the calling thread's ring; NULL when the event is dropped (no
 * thread buffer, ring full: counted). */
PA_HIDDEN void *pa_event_reserve(uint32_t kind, uint32_t maxlen, pa_event_t *ev);

static inline void pa_event_commit(pa_event_t *ev, size_t len)
{
    pa_tring_commit(ev->ring, &ev->rec, (uint32_t)len);
}

/* Events dropped by every thread's ring so far, and by threads whose slot
 * was already recycled (AgentStats.events_dropped). */
PA_HIDDEN uint64_t pa_events_dropped(void);
PA_HIDDEN void pa_events_after_fork_child(void); /* thread.c, in a fork child */
extern PA_HIDDEN _Atomic uint64_t pa_events_dropped_gone;

#endif
