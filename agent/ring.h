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

/*
 * Design note: other event kinds (not built yet).  The next one is libpq
 * query events from host threads (QueryEvent in proto/perfagent.proto).
 *
 * Today a thread's ring holds heap rows only, already in their wire form.
 * The sender sends a ring range as the `rows` bytes of one HeapEvents
 * record: it writes the few header bytes into the output buffer and points
 * an iovec at the ring (encode.h, pa_enc_heap), so rows are never copied.
 * The sender walks rows in only two cases: to cut a backlog larger than
 * PA_ROWS_CHUNK, and to count rows lost with a frame (rows.c).  This only
 * works because every byte in the range is a heap row.
 *
 * So a new kind does not go into this ring.  It gets a second ring per
 * thread, mapped the first time the thread records such an event (most
 * threads never run a query).  That ring holds typed, length-prefixed
 * records: each one is [varint Record field key][varint length][payload],
 * which is byte for byte a field of a serialized perfagent.Record (for a
 * query: key 0x3a = Record.query (7), length-delimited; the payload is a packed
 * QueryEvent).  The sender drains that ring generically: it reads each
 * key and length to find where the record ends, and does not care about
 * the kind.  It writes one Batch.records key and length into the output
 * buffer and points an iovec at the record's ring bytes.  So these records
 * are zero-copy too, and HeapEvents and its delta rows stay exactly as
 * they are.  The pieces:
 *  - proto/wire.h: the record keys allowed in the typed ring (the sender
 *    refuses anything else), the largest record (a query's text is cut at
 *    4 KiB), and its own sync rule (none: these records are absolute).
 *  - this file: pa_ring_reserve_n/commit_n take the length as an argument,
 *    and the ring as a parameter instead of thr->ring.  The heap path keeps
 *    its compile-time PA_ROW_MAX, so its code does not change (mallocbench
 *    is the check).
 *  - hook_libpq.c runs the real PQexec and times it.  It then calls a core
 *    query.c, which captures the stack with pa_stack_id_from(PA_HOOK_FP()),
 *    the explicit start that heap.c uses too, and packs the QueryEvent
 *    straight into the reserved bytes.  protobuf-c's pack does not
 *    allocate; text longer than the cap is cut first.
 *  - sender.c: for every thread with a typed ring, round_once snapshots
 *    the heap head and the typed head together, and drains both before
 *    round_end.  That keeps the round promise: everything committed
 *    before the snapshot is in the round.  The collector puts queries and
 *    rows in order by ticks (QueryEvent.start_ticks).
 *  - Drops are counted per thread and per ring (like drops_full), and they
 *    are summed into AgentStats by kind.
 *  - test_agent_roundtrip gains the query kind: the real encoder, a
 *    wrapping ring and the decoder, like the heap rows.
 * Why not just add a row tag to the heap ring?  The decoder reads the
 * whole range as heap rows.  Mixing kinds in would make the sender split
 * each range around the foreign records (more iovecs, or copies), and
 * their length would make PA_ROW_MAX, the fixed reserve size, much larger.
 */

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
