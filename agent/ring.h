/*
 * ring.h — the producer side of a thread's ring, inline in the hot path.
 *
 * A row is encoded straight into the ring when PA_ROW_MAX contiguous bytes
 * are free before the wrap point, else into a stack buffer and copied in two
 * parts.  The producer keeps its own copy of the consumer's tail and re-reads
 * the shared one only when the ring looks full, so the cache line the sender
 * writes is not pulled in on every row.
 */
#ifndef PA_RING_H
#define PA_RING_H

#include "internal.h"

#include <string.h>

typedef struct pa_row {
    uint8_t *start;          /* where the row is being written */
    uint8_t tmp[PA_ROW_MAX]; /* used near the wrap point */
} pa_row_t;

/* Returns where to encode a row of at most PA_ROW_MAX bytes, or NULL (row
 * dropped and counted) when the ring stays full (pa_ring_wait). */
static inline uint8_t *pa_ring_reserve(pa_thread_t *thr, pa_row_t *row)
{
    pa_ring_t *r = &thr->ring;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t mask = r->size - 1, off = (uint32_t)head & mask;
    if (PA_UNLIKELY(head + PA_ROW_MAX - thr->tail_cache > r->size)) {
        thr->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (head + PA_ROW_MAX - thr->tail_cache > r->size && !pa_ring_wait(thr, head)) {
            atomic_store_explicit(&thr->drops_full,
                                  atomic_load_explicit(&thr->drops_full, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
            return NULL;
        }
    }
    row->start = PA_LIKELY(off + PA_ROW_MAX <= r->size) ? r->buf + off : row->tmp;
    return row->start;
}

static inline void pa_ring_commit(pa_thread_t *thr, pa_row_t *row, uint8_t *end)
{
    pa_ring_t *r = &thr->ring;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t len = (uint32_t)(end - row->start), mask = r->size - 1, off = (uint32_t)head & mask;
    if (PA_UNLIKELY(row->start == row->tmp)) {
        uint32_t first = r->size - off;
        if (len <= first) {
            memcpy(r->buf + off, row->tmp, len);
        } else {
            memcpy(r->buf + off, row->tmp, first);
            memcpy(r->buf, row->tmp + first, len - first);
        }
    }
    atomic_store_explicit(&r->head, head + len, memory_order_release);
    atomic_store_explicit(&thr->rows, atomic_load_explicit(&thr->rows, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    /* Wake the sender once the ring is a quarter full (once, not per row: a
     * futex wake is a syscall), leaving it three quarters of the ring's time
     * to get scheduled on a busy machine before rows are dropped. */
    if (PA_UNLIKELY(head + len - thr->tail_cache > r->size / 4) &&
        !atomic_load_explicit(&thr->wake_sent, memory_order_relaxed)) {
        thr->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (head + len - thr->tail_cache > r->size / 4) {
            atomic_store_explicit(&thr->wake_sent, 1, memory_order_relaxed);
            pa_sender_wake();
        }
    }
}

#endif
