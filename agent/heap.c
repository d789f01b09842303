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
#include "heap.h"
#include "rows.h"
#include "unwind.h"

#include <math.h>

PA_HIDDEN int pa_heap_sampling __attribute__((aligned(64))); /* read by every hook */

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

/* The ticks of an ALLOC row, read again after a stack walk the memo did
 * not save (rows.h says why). */
static inline __attribute__((always_inline)) uint64_t fresh_ticks(uint64_t ticks)
{
    if (PA_UNLIKELY(pa_tls.ticks_stale)) {
        pa_tls.ticks_stale = 0;
        return pa_ticks();
    }
    return ticks;
}

static inline __attribute__((always_inline)) void
record_alloc(pa_thread_t *thr, void *p, size_t size, uint64_t ticks, uintptr_t from)
{
    int failed;
    uint32_t sid = pa_stack_id_from(from, pa_cfg.max_frames, &failed);
    if (PA_UNLIKELY(!sid))
        pa_count_own(failed ? &thr->unwind_failures : &thr->drops_stack_table);
    pa_row_alloc(thr, (uint64_t)(uintptr_t)p, size, sid, fresh_ticks(ticks));
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
            pa_row_free_fixed(thr, (uint64_t)(uintptr_t)old, ticks_before);
        if (p)
            record_alloc(thr, p, size, ticks, from);
    }
    t->guard--;
}

/* ---- sampled mode (heap.h) ------------------------------------------------ */

/* The thread's next gap between sampled bytes: exponential with mean
 * malloc_rate, from a xorshift64* generator seeded by the thread.  Capped
 * far out (P(gap > 40 R) = e^-40) so the countdown never overflows. */
static int64_t draw_gap(pa_tls_t *t)
{
    uint64_t x = t->rng, r;
    double u, g, rate = (double)pa_cfg.malloc_rate;
    if (PA_UNLIKELY(!x)) {
        x = ((uint64_t)(t->tid ? t->tid : pa_gettid()) * 0x9E3779B97F4A7C15ull) ^ pa_ticks();
        x |= 1;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t->rng = x;
    r = x * 0x2545F4914F6CDD1Dull;
    u = (double)((r >> 11) + 1) * 0x1.0p-53; /* (0, 1] */
    g = -log(u) * rate;
    if (g > 40.0 * rate)
        g = 40.0 * rate;
    return (int64_t)g + 1;
}

/* The bytes a sample of `size` stands for: size / P(sampled), with
 * P(sampled) = 1 - exp(-size/R).  Dividing each sample (not a sum of them)
 * keeps the estimate unbiased for every size mix (jemalloc's
 * PROFILING_INTERNALS.md). */
static uint64_t weight_of(size_t size)
{
    double x = (double)size / (double)pa_cfg.malloc_rate;
    if (x > 40.0)
        return size;
    return (uint64_t)((double)size / -expm1(-x) + 0.5);
}

/* Sampled: into the set, then one SAMPLE row with the stack. */
static void record_sample(pa_tls_t *t, void *p, size_t size, uint64_t ticks, uintptr_t from)
{
    pa_thread_t *thr = thread_of(t);
    int failed;
    uint32_t sid;
    if (PA_UNLIKELY(!thr))
        return;
    if (pa_sampleset_add((uint64_t)(uintptr_t)p) < 0)
        return; /* counted in pa_sampleset_full */
    sid = pa_stack_id_from(from, pa_cfg.max_frames, &failed);
    if (PA_UNLIKELY(!sid))
        pa_count_own(failed ? &thr->unwind_failures : &thr->drops_stack_table);
    pa_row_sample(thr, (uint64_t)(uintptr_t)p, size, sid, fresh_ticks(ticks), weight_of(size));
}

/* The countdown went to 0 or below inside this allocation of `size`:
 * whether to sample it, with the countdown drawn again.  A thread's first
 * allocation gets here with a countdown never drawn: it is drawn now and
 * started at this allocation (memoryless: the same Poisson process). */
static int countdown_hit(pa_tls_t *t, size_t size)
{
    if (PA_UNLIKELY(!t->rng)) {
        int64_t g = draw_gap(t);
        if (g > (int64_t)size) {
            t->sample_left = g - (int64_t)size;
            return 0;
        }
    }
    t->sample_left = draw_gap(t);
    return 1;
}

PA_NOINLINE void pa_heap_sample(void *p, size_t size, uintptr_t from)
{
    pa_tls_t *t = &pa_tls;
    uint64_t ticks = pa_ticks();
    t->guard++;
    if (countdown_hit(t, size) && p)
        record_sample(t, p, size, ticks, from);
    t->guard--;
}

PA_NOINLINE void pa_heap_free_sampled(void *p)
{
    pa_tls_t *t = &pa_tls;
    uint64_t ticks = pa_ticks();
    t->guard++;
    if (pa_sampleset_take((uint64_t)(uintptr_t)p)) {
        pa_thread_t *thr = thread_of(t);
        if (PA_LIKELY(thr != NULL))
            pa_row_free(thr, (uint64_t)(uintptr_t)p, ticks);
    }
    t->guard--;
}

PA_NOINLINE int pa_heap_take_sampled(void *old)
{
    int was;
    pa_tls.guard++;
    was = pa_sampleset_take((uint64_t)(uintptr_t)old);
    pa_tls.guard--;
    return was;
}

PA_NOINLINE void pa_heap_resampled(void *old, int was, void *p, size_t size, int ok, int hit,
                                   uint64_t ticks_before, uintptr_t from)
{
    pa_tls_t *t = &pa_tls;
    uint64_t ticks = pa_ticks();
    t->guard++;
    if (!ok) {
        /* The call failed: the old block lives on, still sampled. */
        if (was)
            pa_sampleset_add((uint64_t)(uintptr_t)old);
        t->guard--;
        return;
    }
    if (was) {
        pa_thread_t *thr = thread_of(t);
        if (PA_LIKELY(thr != NULL))
            pa_row_free_fixed(thr, (uint64_t)(uintptr_t)old, ticks_before);
    }
    if (hit && countdown_hit(t, size)) /* the macro counted size down */
        record_sample(t, p, size, ticks, from);
    t->guard--;
}
