/*
 * heap.c — turns one allocation or free into a heap row in the calling
 * thread's ring (row format: HeapEvents in proto/perfagent.proto).  Runs on
 * the host's threads inside malloc/free, so: no locks, no allocation, no
 * interposed calls; the guard is held while we unwind and intern, because
 * libunwind and dl_iterate_phdr may allocate (memory-anchors P2, P5).
 *
 * The entry points are noinline and everything below them is inlined, so a
 * stack captured here has exactly two agent frames on top (see unwind.h).
 */
#include "internal.h"
#include "ring.h"
#include "unwind.h"

enum { ROW_ALLOC = 1, ROW_FREE = 2, ROW_SAMPLE = 3 };

static inline uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
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

static inline __attribute__((always_inline)) void
record_alloc(pa_thread_t *thr, void *p, size_t size, uint64_t ticks)
{
    uint64_t buf[PA_UNWIND_BUF];
    pa_row_t row;
    uint8_t *w;
    unsigned first = 0;
    int truncated = 0;
    unsigned n = pa_unwind_here(buf, pa_cfg.max_frames, &first, &truncated);
    uint32_t sid = 0;
    if (PA_LIKELY(n)) {
        sid = pa_stacks_intern(buf + first, n, truncated);
        if (PA_UNLIKELY(!sid))
            atomic_fetch_add_explicit(&pa_stats.drops_stack_table, 1, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&pa_stats.unwind_failures, 1, memory_order_relaxed);
    }
    if (PA_UNLIKELY(!(w = pa_ring_reserve(thr, &row))))
        return;
    *w++ = ROW_ALLOC;
    w = put_varint(w, (uint64_t)(uintptr_t)p);
    w = put_varint(w, size);
    w = put_varint(w, sid);
    w = put_varint(w, ticks);
    pa_ring_commit(thr, &row, w);
}

static inline __attribute__((always_inline)) void
record_free(pa_thread_t *thr, void *p, uint64_t ticks)
{
    pa_row_t row;
    uint8_t *w;
    if (PA_UNLIKELY(!(w = pa_ring_reserve(thr, &row))))
        return;
    *w++ = ROW_FREE;
    w = put_varint(w, (uint64_t)(uintptr_t)p);
    w = put_varint(w, ticks);
    pa_ring_commit(thr, &row, w);
}

PA_NOINLINE void pa_heap_alloc(void *p, size_t size)
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
        record_alloc(thr, p, size, ticks);
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
PA_NOINLINE void pa_heap_realloc(void *old, void *p, size_t size, uint64_t ticks_before)
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
            record_alloc(thr, p, size, ticks);
    }
    t->guard--;
}
