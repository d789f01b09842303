/*
 * event.c — the producer side of typed events (event.h): the calling
 * thread's slot and its event ring, mapped at the thread's first event.
 */
#include "event.h"

#define EVENT_RING_BYTES (256u << 10)

PA_HIDDEN _Atomic uint64_t pa_events_dropped_gone;
static _Atomic uint64_t dropped_no_ring;

void *pa_event_reserve(uint32_t kind, uint32_t maxlen, pa_event_t *ev)
{
    pa_tls_t *t = &pa_tls;
    pa_thread_t *thr;
    if (!atomic_load_explicit(&pa_agent_on, memory_order_relaxed) || maxlen > PA_WIRE_EVENT_MAX)
        return NULL;
    /* A fork child starts its sender at its first record (heap.c). */
    if (PA_UNLIKELY(atomic_load_explicit(&pa_need_sender, memory_order_relaxed)))
        pa_sender_start();
    thr = t->thr;
    if (!thr && (t->dead || !(thr = pa_thread_acquire(t)))) {
        atomic_fetch_add_explicit(&dropped_no_ring, 1, memory_order_relaxed);
        return NULL;
    }
    if (PA_UNLIKELY(!thr->events)) {
        /* Published to the sender (which reads thr->events) by the ring's
         * own head store at the first commit. */
        pa_tring_t *r = pa_tring_new(EVENT_RING_BYTES);
        if (!r) {
            atomic_fetch_add_explicit(&dropped_no_ring, 1, memory_order_relaxed);
            return NULL;
        }
        __atomic_store_n(&thr->events, r, __ATOMIC_RELEASE);
    }
    ev->ring = thr->events;
    return pa_tring_reserve(ev->ring, kind, maxlen, &ev->rec);
}

/* A fork child's stream counts its own losses, not its parent's. */
void pa_events_after_fork_child(void)
{
    atomic_store_explicit(&dropped_no_ring, 0, memory_order_relaxed);
    atomic_store_explicit(&pa_events_dropped_gone, 0, memory_order_relaxed);
}

uint64_t pa_events_dropped(void)
{
    uint64_t n = atomic_load_explicit(&dropped_no_ring, memory_order_relaxed) +
                 atomic_load_explicit(&pa_events_dropped_gone, memory_order_relaxed);
    for (unsigned i = 0, k = pa_thread_count(); i < k; i++) {
        pa_tring_t *r = __atomic_load_n(&pa_thread_slot(i)->events, __ATOMIC_ACQUIRE);
        if (r)
            n += atomic_load_explicit(&r->drops, memory_order_relaxed);
    }
    return n;
}
