/*
 * rows.h — heap rows (HeapEvents.rows, proto/wire.h): the producer's
 * encoders, inline in the hot path (heap.c), and the sender's walk over
 * rows already in a ring (rows.c).
 *
 * A row goes straight into the thread's ring (ring.h) in its wire form: the
 * sender hands ring bytes to writev(2) without touching them (encode.h), so
 * what is encoded here is exactly what the collector decodes.  addr and
 * ticks are zigzag'ed deltas from the thread's previous committed row; a
 * sync row (absolute values) comes first after the thread's state was reset
 * and then every PA_WIRE_SYNC_ROWS rows.  The round trip through the decoder
 * is tests/unit/test_agent_roundtrip.c.
 */
#ifndef PA_ROWS_H
#define PA_ROWS_H

#include "internal.h"
#include "ring.h"

static inline __attribute__((always_inline)) uint8_t *pa_put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Bytes pa_put_varint writes for v. */
static inline size_t pa_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Signed 64-bit difference -> unsigned, small magnitudes first (the
 * protobuf sint64 mapping), so a short step back costs as little as one
 * forward. */
static inline __attribute__((always_inline)) uint64_t pa_zigzag(uint64_t d)
{
    return (d << 1) ^ (0 - (d >> 63));
}

/* Delta state after a committed row.  A row dropped at reserve never gets
 * here: the reader never saw it, so it must not become the delta base. */
static inline __attribute__((always_inline)) void pa_row_committed(pa_thread_t *thr, uint64_t addr,
                                                                   uint64_t ticks)
{
    thr->prev_addr = addr;
    thr->prev_ticks = ticks;
    thr->rows_to_sync = thr->rows_to_sync ? thr->rows_to_sync - 1 : PA_WIRE_SYNC_ROWS - 1;
}

/* Whether the next row must be a sync row: every PA_WIRE_SYNC_ROWS rows,
 * and the first after pa_thread_resync_all (a new stream under a running
 * thread).  A restart racing with a row costs at most that one row, which
 * the collector counts as skipped before the thread's first sync row. */
static inline __attribute__((always_inline)) int pa_row_sync_due(pa_thread_t *thr)
{
    if (PA_UNLIKELY(atomic_load_explicit(&thr->resync, memory_order_relaxed))) {
        atomic_store_explicit(&thr->resync, 0, memory_order_relaxed);
        return 1;
    }
    return !thr->rows_to_sync;
}

/* A row's ticks are read early, where their latency hides behind the stack
 * walk, and read again when something slow came between: a walk the memo
 * did not save (pa_tls.ticks_stale, checked by heap.c's ALLOC paths) or a
 * wait for room in the ring (pa_ring_reserve).  So a row's ticks are at
 * most a few hundred ns older than its commit, unless its thread was
 * preempted in between, which Batch.round_start_ticks relies on
 * (proto/perfagent.proto): a row that misses its round while the sender
 * reads the heads is not older than that round's start, less the
 * collector's margin.  realloc's FREE keeps the ticks read before the real
 * call (heap.c): pa_row_free_fixed. */

/* An ALLOC row, or a SAMPLE row (sampled mode: an ALLOC that stands for
 * `weight` bytes), into thr's ring (dropped and counted when it stays
 * full).  Inlined with a constant tag, so each caller gets straight code. */
static inline __attribute__((always_inline)) void
pa_row_put_alloc(pa_thread_t *thr, unsigned tag, uint64_t addr, uint64_t size, uint32_t sid,
                 uint64_t ticks, uint64_t weight)
{
    pa_row_t row;
    uint8_t *w;
    if (PA_UNLIKELY(!(w = pa_ring_reserve(thr, &row, &ticks))))
        return;
    if (PA_UNLIKELY(pa_row_sync_due(thr))) {
        *w++ = (uint8_t)(tag | PA_WIRE_ROW_SYNC);
        w = pa_put_varint(w, addr);
        w = pa_put_varint(w, size);
        w = pa_put_varint(w, sid);
        w = pa_put_varint(w, ticks);
    } else {
        *w++ = (uint8_t)tag;
        w = pa_put_varint(w, pa_zigzag(addr - thr->prev_addr));
        w = pa_put_varint(w, size);
        w = pa_put_varint(w, sid);
        w = pa_put_varint(w, pa_zigzag(ticks - thr->prev_ticks));
    }
    if (tag == PA_WIRE_ROW_SAMPLE)
        w = pa_put_varint(w, weight);
    pa_ring_commit(thr, &row, w);
    pa_row_committed(thr, addr, ticks);
}

static inline __attribute__((always_inline)) void
pa_row_alloc(pa_thread_t *thr, uint64_t addr, uint64_t size, uint32_t sid, uint64_t ticks)
{
    pa_row_put_alloc(thr, PA_WIRE_ROW_ALLOC, addr, size, sid, ticks, 0);
}

static inline void pa_row_sample(pa_thread_t *thr, uint64_t addr, uint64_t size, uint32_t sid,
                                 uint64_t ticks, uint64_t weight)
{
    pa_row_put_alloc(thr, PA_WIRE_ROW_SAMPLE, addr, size, sid, ticks, weight);
}

/* One FREE row into thr's ring (fixed: its ticks are kept, see above). */
static inline __attribute__((always_inline)) void pa_row_put_free(pa_thread_t *thr, uint64_t addr,
                                                                  uint64_t ticks, int fixed)
{
    pa_row_t row;
    uint8_t *w;
    if (PA_UNLIKELY(!(w = pa_ring_reserve(thr, &row, fixed ? NULL : &ticks))))
        return;
    if (PA_UNLIKELY(pa_row_sync_due(thr))) {
        *w++ = PA_WIRE_ROW_FREE | PA_WIRE_ROW_SYNC;
        w = pa_put_varint(w, addr);
        w = pa_put_varint(w, ticks);
    } else {
        *w++ = PA_WIRE_ROW_FREE;
        w = pa_put_varint(w, pa_zigzag(addr - thr->prev_addr));
        w = pa_put_varint(w, pa_zigzag(ticks - thr->prev_ticks));
    }
    pa_ring_commit(thr, &row, w);
    pa_row_committed(thr, addr, ticks);
}

static inline __attribute__((always_inline)) void pa_row_free(pa_thread_t *thr, uint64_t addr,
                                                              uint64_t ticks)
{
    pa_row_put_free(thr, addr, ticks, 0);
}

/* realloc's FREE: ticks read before the real call, kept. */
static inline void pa_row_free_fixed(pa_thread_t *thr, uint64_t addr, uint64_t ticks)
{
    pa_row_put_free(thr, addr, ticks, 1);
}

/* ---- sender side (rows.c) ------------------------------------------------ */

/* Length of the whole rows at the start of p[0..len) that fit in `limit`
 * bytes; adds their number to *nrows. */
PA_HIDDEN size_t pa_rows_walk(const uint8_t *p, size_t len, size_t limit, uint64_t *nrows);

#endif
