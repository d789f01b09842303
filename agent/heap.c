/*
 * heap.c — turns one allocation or free into a heap row in the calling
 * thread's ring (row format: HeapEvents in proto/perfagent.proto).  addr and
 * ticks are deltas from the thread's previous row, which halves the bytes
 * the sender copies and writes; an absolute "sync" row comes first after the
 * thread's state was reset and then every PA_WIRE_SYNC_ROWS rows.  Runs on the
 * host's threads inside malloc/free, so: no locks, no allocation, no
 * interposed calls; the guard is held while we unwind and intern, because
 * libunwind and dl_iterate_phdr may allocate (memory-anchors P2, P5).
 *
 * The entry points are noinline and everything below them is inlined, so a
 * stack captured here has exactly two agent frames on top (see unwind.h);
 * the hooks pass their own frame record (`from`, PA_HOOK_FP) and the walk
 * starts there, skipping both.
 */
#include "internal.h"
#include "ring.h"
#include "unwind.h"

static inline uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Signed 64-bit difference -> unsigned, small magnitudes first (the
 * protobuf sint64 mapping), so a short step back costs as little as one
 * forward. */
static inline uint64_t zigzag(uint64_t d)
{
    return (d << 1) ^ (0 - (d >> 63));
}

static inline __attribute__((always_inline)) pa_thread_t *thread_of(pa_tls_t *t)
{
    /* A fork child starts its sender lazily, from its first row: children
     * that only exec never open an output. */
    if (PA_UNLIKELY(atomic_load_explicit(&pa_need_sender, memory_order_relaxed)))
        pa_sender_start();
    if (PA_LIKELY(t->thr != NULL))
        return t->thr;
    if (t->dead) {
        atomic_fetch_add_explicit(&pa_stats.drops_thread_exit, 1, memory_order_relaxed);
        return NULL;
    }
    return pa_thread_acquire(t);
}

/* Delta state after a committed row.  A row dropped at reserve never gets
 * here: the reader never saw it, so it must not become the delta base. */
static inline __attribute__((always_inline)) void
row_committed(pa_thread_t *thr, uint64_t addr, uint64_t ticks)
{
    thr->prev_addr = addr;
    thr->prev_ticks = ticks;
    thr->rows_to_sync = thr->rows_to_sync ? thr->rows_to_sync - 1 : PA_WIRE_SYNC_ROWS - 1;
}

static inline __attribute__((always_inline)) void
record_alloc(pa_thread_t *thr, void *p, size_t size, uint64_t ticks, uintptr_t from)
{
    pa_row_t row;
    uint8_t *w;
    uint64_t addr = (uint64_t)(uintptr_t)p;
    int failed;
    uint32_t sid = pa_stack_id_from(from, pa_cfg.max_frames, &failed);
    if (PA_UNLIKELY(!sid))
        pa_count_own(failed ? &thr->unwind_failures : &thr->drops_stack_table);
    if (PA_UNLIKELY(!(w = pa_ring_reserve(thr, &row))))
        return;
    if (PA_UNLIKELY(!thr->rows_to_sync)) {
        *w++ = PA_WIRE_ROW_ALLOC | PA_WIRE_ROW_SYNC;
        w = put_varint(w, addr);
        w = put_varint(w, size);
        w = put_varint(w, sid);
        w = put_varint(w, ticks);
    } else {
        *w++ = PA_WIRE_ROW_ALLOC;
        w = put_varint(w, zigzag(addr - thr->prev_addr));
        w = put_varint(w, size);
        w = put_varint(w, sid);
        w = put_varint(w, zigzag(ticks - thr->prev_ticks));
    }
    pa_ring_commit(thr, &row, w);
    row_committed(thr, addr, ticks);
}

static inline __attribute__((always_inline)) void
record_free(pa_thread_t *thr, void *p, uint64_t ticks)
{
    pa_row_t row;
    uint8_t *w;
    uint64_t addr = (uint64_t)(uintptr_t)p;
    if (PA_UNLIKELY(!(w = pa_ring_reserve(thr, &row))))
        return;
    if (PA_UNLIKELY(!thr->rows_to_sync)) {
        *w++ = PA_WIRE_ROW_FREE | PA_WIRE_ROW_SYNC;
        w = put_varint(w, addr);
        w = put_varint(w, ticks);
    } else {
        *w++ = PA_WIRE_ROW_FREE;
        w = put_varint(w, zigzag(addr - thr->prev_addr));
        w = put_varint(w, zigzag(ticks - thr->prev_ticks));
    }
    pa_ring_commit(thr, &row, w);
    row_committed(thr, addr, ticks);
}

PA_NOINLINE void pa_heap_alloc(void *p, size_t size, uintptr_t from)
{
    pa_tls_t *t = &pa_tls;
    pa_thread_t *thr;
    uint64_t ticks;
    if (PA_UNLIKELY(!p))
        return;
    ticks = pa_ticks();
    t->guard++;
    thr = thread_of(t);
    if (PA_LIKELY(thr != NULL))
        record_alloc(thr, p, size, ticks, from);
    t->guard--;
}

PA_NOINLINE void pa_heap_free(void *p)
{
    pa_tls_t *t = &pa_tls;
    pa_thread_t *thr;
    uint64_t ticks = pa_ticks();
    t->guard++;
    thr = thread_of(t);
    if (PA_LIKELY(thr != NULL))
        record_free(thr, p, ticks);
    t->guard--;
}

/* realloc moved `old` to `p` (either may be NULL).  The FREE carries the
 * ticks read before the real call: from then on another thread may get
 * `old`'s address, and readers must see our FREE as older than its ALLOC. */
PA_NOINLINE void pa_heap_realloc(void *old, void *p, size_t size, uint64_t ticks_before,
                                 uintptr_t from)
{
    pa_tls_t *t = &pa_tls;
    pa_thread_t *thr;
    uint64_t ticks = pa_ticks();
    t->guard++;
    thr = thread_of(t);
    if (PA_LIKELY(thr != NULL)) {
        if (old)
            record_free(thr, old, ticks_before);
        if (p)
            record_alloc(thr, p, size, ticks, from);
    }
    t->guard--;
}
