/*
 * heap.c — turns one allocation or free into a heap row in the calling
 * thread's ring (the row encoders and their format: rows.h).  Runs on the
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
#include "rows.h"
#include "unwind.h"

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
record_alloc(pa_thread_t *thr, void *p, size_t size, uint64_t ticks, uintptr_t from)
{
    int failed;
    uint32_t sid = pa_stack_id_from(from, pa_cfg.max_frames, &failed);
    if (PA_UNLIKELY(!sid))
        pa_count_own(failed ? &thr->unwind_failures : &thr->drops_stack_table);
    pa_row_alloc(thr, (uint64_t)(uintptr_t)p, size, sid, ticks);
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
        pa_row_free(thr, (uint64_t)(uintptr_t)p, ticks);
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
            pa_row_free(thr, (uint64_t)(uintptr_t)old, ticks_before);
        if (p)
            record_alloc(thr, p, size, ticks, from);
    }
    t->guard--;
}
