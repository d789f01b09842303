/*
 * heap.h — what the allocation hooks call (hook_malloc.c, hook_new.c): one
 * macro per event, so each hook stays "call the real function, hand off".
 *
 * Exact mode (PERFAGENT_MALLOC_RATE=1): every allocation and free becomes
 * a row (heap.c).  Sampled mode (rate R > 1): the bytes a thread allocates
 * are cut by a Poisson process of mean R — an exponential countdown in
 * initial-exec TLS, one subtraction and one branch per allocation — and an
 * allocation is sampled when a point of the process falls inside it
 * (probability 1 - exp(-size/R)); it is recorded as a SAMPLE row with the
 * unbiased weight size / (1 - exp(-size/R)) bytes (README, "Sampled heap").
 * A free is recorded only when its block was sampled, which the filter of
 * sampleset.h answers in a few ns for every other block.  realloc takes
 * the old block out of the set before the real call (afterwards another
 * thread may be handed its address) and puts it back if the call failed.
 */
#ifndef PA_HEAP_H
#define PA_HEAP_H

#include "internal.h"
#include "sampleset.h"

/* malloc_rate > 1, fixed at init (before any hook records). */
extern PA_HIDDEN int pa_heap_sampling;

PA_HIDDEN void pa_heap_sample(void *p, size_t size, uintptr_t from);
PA_HIDDEN void pa_heap_free_sampled(void *p);
/* realloc in sampled mode: take `old` out of the set before the real call
 * (returns whether it was sampled); after it, pa_heap_resampled when the old
 * block was sampled or the new one is a sample (PA_REC_REALLOC). */
PA_HIDDEN int pa_heap_take_sampled(void *old);
PA_HIDDEN void pa_heap_resampled(void *old, int was_sampled, void *p, size_t size, int ok, int hit,
                                 uint64_t ticks_before, uintptr_t from);

/* The thread is in no agent code and no guarded real call, and is not
 * served from the bootstrap pool: a hook may charge the sampling countdown
 * (hook_malloc.c says why that one check is enough on the fast path). */
#define PA_NOT_BUSY() PA_LIKELY((pa_tls.guard | pa_tls.boot_serve) == 0)

#define PA_REC_ALLOC(p, size)                                                                  \
    do {                                                                                       \
        if (!pa_heap_sampling)                                                                 \
            pa_heap_alloc((p), (size), PA_HOOK_FP());                                          \
        else if (PA_UNLIKELY((pa_tls.sample_left -= (int64_t)(size)) <= 0))                   \
            pa_heap_sample((p), (size), PA_HOOK_FP());                                         \
    } while (0)

#define PA_REC_FREE(p)                                                                         \
    do {                                                                                       \
        if (!pa_heap_sampling)                                                                 \
            pa_heap_free(p);                                                                   \
        else if (PA_UNLIKELY(pa_sampleset_maybe(p)))                                           \
            pa_heap_free_sampled(p);                                                           \
    } while (0)

/* Before the real realloc-like call: whether `old` was a sampled block
 * (taken out of the set).  Exact mode: 0, nothing to do. */
#define PA_REALLOC_PRE(old)                                                                    \
    (pa_heap_sampling && (old) && PA_UNLIKELY(pa_sampleset_maybe(old)) ? pa_heap_take_sampled(old) \
                                                                         : 0)

/* After it: ok = the call succeeded (old was freed or resized, p is the
 * block now); !ok = old lives on unchanged. */
/* The time of the old block's FREE row, read before the real call: always in
 * exact mode, only for a sampled old block in sampled mode. */
#define PA_REALLOC_T0(was) (!pa_heap_sampling || (was) ? pa_ticks() : 0)

#define PA_REC_REALLOC(old, was, p, size, ok, t0)                                              \
    do {                                                                                       \
        if (!pa_heap_sampling) {                                                               \
            if (ok)                                                                            \
                pa_heap_realloc((old), (p), (size), (t0), PA_HOOK_FP());                       \
        } else {                                                                               \
            /* The countdown inline, as for malloc: the call out only for a  \
             * sampled old block or a new sample. */                           \
            int hit_ = (ok) && (p) && PA_UNLIKELY((pa_tls.sample_left -= (int64_t)(size)) <= 0); \
            if (PA_UNLIKELY((was) || hit_))                                                    \
                pa_heap_resampled((old), (was), (p), (size), (ok), hit_, (t0), PA_HOOK_FP());  \
        }                                                                                      \
    } while (0)

#endif
