/*
 * hook_malloc.c — the interposed allocation API.  Each hook only: makes sure
 * init ran, forwards to the real function, and hands the result to heap.c
 * when the thread is not already inside the agent (pa_tls.guard).
 *
 * Order around the real call (heaptrack does the same): allocations are
 * recorded after the real call returns, frees before the real free, so an
 * address can't be reused by another thread before its free is recorded.
 *
 * On glibc 2.36 posix_memalign, aligned_alloc, valloc and pvalloc do NOT go
 * through an interposed malloc (memory-anchors P12, verified), so each is
 * hooked itself.  reallocarray does go through realloc on glibc but not on
 * other allocators, so it is hooked and its inner call guarded.
 */
#include "heap.h"

#include <errno.h>
#include <stdint.h>

/* Not-yet-initialized paths (init, or the bootstrap pool while dlsym runs in
 * the initializing thread), and the agent's own allocations through libc
 * (pa_tls.boot_serve). */
static PA_NOINLINE void *slow_alloc(size_t size, size_t align, int zero)
{
    void *p;
    if (pa_tls.boot_serve) {
        p = pa_boot_alloc(size, align);
        if (p || !pa_real.malloc)
            return p;
        return zero ? pa_real.calloc(1, size) : pa_real.malloc(size); /* pool full */
    }
    if (atomic_load_explicit(&pa_state, memory_order_acquire) == 1 && !pa_real.malloc &&
        pa_init_thread())
        return pa_boot_alloc(size, align); /* re-entered from dlsym */
    pa_init();
    if (!pa_real.malloc)
        return NULL;
    p = zero ? pa_real.calloc(1, size) : pa_real.malloc(size);
    /* The very first allocation of the process (often a large calloc from a
     * library constructor, memory-anchors P1) is recorded like any other. */
    if (pa_tls.guard == 0 && atomic_load_explicit(&pa_heap_on, memory_order_relaxed))
        PA_REC_ALLOC(p, size);
    return p;
}

#define READY() PA_LIKELY(pa_real.malloc != NULL)
/* malloc and calloc: the real allocator, unless init is not done or the
 * agent itself asked for the pool (one flag in the thread's own TLS). */
#define FAST() PA_LIKELY(READY() && !pa_tls.boot_serve)
#define RECORDING() PA_LIKELY(pa_tls.guard == 0 && atomic_load_explicit(&pa_heap_on, memory_order_relaxed))

/* Sampled mode's common case, an allocation that is not sampled, is the
 * guard word, a countdown and a tail call: the countdown is charged before
 * the real call (the decision does not depend on the address), so nothing
 * is live across the call and the hook needs no frame or saved registers.
 * Only heap.c's draw sets the countdown above 0, and it runs in sampled mode
 * after init resolved the real functions (or, with heap recording off for
 * good, HEAP_OFF_FOR_GOOD below); so a countdown still above 0 after the
 * charge means the real function is there and the allocation is not a
 * sample, and the fast path needs no other check (should recording have
 * stopped since, a non-sample has nothing to record either).  Exact mode
 * and a thread before init keep the countdown at 0: every call goes to the
 * *_slow function, which gives the charge back unless it is a sample.
 * callgrind, mallocbench 1 thread: 19 -> 10 instructions per malloc, 29 ->
 * 13 per calloc, against the five checks this replaced (heap on, sampling,
 * real function resolved, guard, pool).  PA_NOT_BUSY: heap.h. */
#define SAMPLING_FAST() PA_LIKELY(pa_heap_sampling && FAST() && RECORDING())
/* Heap recording off (PERFAGENT_MALLOC_RATE=0: CPU, libpq or socket
 * tracing alone) is a tail call as well: the *_rec path would only find
 * RECORDING() false after a frame of its own (libpq-only pgbench: ~1000
 * instructions a query in these hooks before). */
#define HEAP_OFF_FAST() (!atomic_load_explicit(&pa_heap_on, memory_order_relaxed) && FAST())

static PA_NOINLINE void *malloc_rec(size_t size)
{
    void *p;
    if (!FAST())
        return slow_alloc(size, 0, 0);
    p = pa_real.malloc(size);
    if (RECORDING())
        PA_REC_ALLOC(p, size);
    return p;
}

static PA_NOINLINE void *alloc_hit(void *p, size_t size)
{
    pa_heap_sample(p, size, PA_HOOK_FP());
    return p;
}

/* Heap recording off for good (PERFAGENT_MALLOC_RATE=0: CPU, libpq or
 * socket tracing alone), after init: a countdown that never ends lets the
 * fast path serve every call (nothing is recorded in this mode, and the
 * real functions are resolved).  It is the one other writer of a countdown
 * above 0. */
#define HEAP_OFF_FOR_GOOD() (pa_cfg.malloc_rate == 0)
#define COUNTDOWN_OFF (INT64_MAX / 2)

/* An allocation that charged the countdown (PA_NOT_BUSY() held) and is not a
 * sample: the charge given back; 1 when heap recording is off and the real
 * function may be called straight away, 0 for the *_rec path. */
static inline int not_a_sample(size_t size)
{
    pa_tls.sample_left += (int64_t)size;
    if (!HEAP_OFF_FAST())
        return 0;
    if (HEAP_OFF_FOR_GOOD())
        pa_tls.sample_left = COUNTDOWN_OFF;
    return 1;
}

/* The countdown was charged and reached 0 or below (PA_NOT_BUSY() held). */
static PA_NOINLINE void *malloc_slow(size_t size)
{
    if (SAMPLING_FAST())
        return alloc_hit(pa_real.malloc(size), size);
    if (not_a_sample(size))
        return pa_real.malloc(size);
    return malloc_rec(size);
}

PA_EXPORT void *malloc(size_t size)
{
    if (PA_NOT_BUSY()) {
        if (PA_LIKELY((pa_tls.sample_left -= (int64_t)size) > 0))
            return pa_real.malloc(size);
        return malloc_slow(size);
    }
    if (FAST())
        return pa_real.malloc(size); /* the guard is up: nothing to record */
    return malloc_rec(size);
}

/* Our own malloc's address: `&malloc` in this object goes through the GOT
 * and names whichever malloc won the lookup (init.c uses both to tell). */
extern void *pa_malloc_self(size_t) __attribute__((alias("malloc"), visibility("hidden")));

static PA_NOINLINE void free_rec(void *p)
{
    if (PA_UNLIKELY(!p))
        return;
    if (PA_UNLIKELY(pa_is_boot(p)))
        return; /* bootstrap memory is static; never hand it to the real free */
    if (!READY())
        pa_init();
    if (RECORDING())
        PA_REC_FREE(p);
    if (pa_real.free)
        pa_real.free(p);
}

/* Sampled mode: a block the filter says was never sampled, and not from the
 * bootstrap pool, goes straight to the real free (a tail call; sampling is
 * set only after init resolved the real functions, and free(NULL) is the
 * real free's no-op).  A filter hit re-checks everything in free_rec. */
PA_EXPORT void free(void *p)
{
    if (PA_LIKELY(pa_heap_sampling) && PA_LIKELY(!pa_sampleset_maybe(p)) && PA_LIKELY(!pa_is_boot(p)))
        return pa_real.free(p);
    if (!atomic_load_explicit(&pa_heap_on, memory_order_relaxed) && pa_real.free && !pa_is_boot(p))
        return pa_real.free(p);
    free_rec(p);
}

static PA_NOINLINE void *calloc_rec(size_t n, size_t size, size_t total)
{
    void *p;
    if (!FAST())
        return slow_alloc(total, 0, 1);
    p = pa_real.calloc(n, size);
    if (RECORDING())
        PA_REC_ALLOC(p, total);
    return p;
}

/* As malloc_slow. */
static PA_NOINLINE void *calloc_slow(size_t n, size_t size, size_t total)
{
    if (SAMPLING_FAST())
        return alloc_hit(pa_real.calloc(n, size), total);
    if (not_a_sample(total))
        return pa_real.calloc(n, size);
    return calloc_rec(n, size, total);
}

PA_EXPORT void *calloc(size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (PA_NOT_BUSY()) {
        if (PA_LIKELY((pa_tls.sample_left -= (int64_t)total) > 0))
            return pa_real.calloc(n, size);
        return calloc_slow(n, size, total);
    }
    if (FAST())
        return pa_real.calloc(n, size); /* the guard is up: nothing to record */
    return calloc_rec(n, size, total);
}

static PA_NOINLINE void *realloc_rec(void *old, size_t size)
{
    void *p;
    uint64_t t0;
    int was;
    if (PA_UNLIKELY(old ? pa_is_boot(old) : pa_tls.boot_serve)) {
        /* A pool block moves to a new one, copying what both hold and
         * never reading past the old one; or the agent's own realloc(NULL)
         * (setenv grows environ so).  malloc serves the pool while the
         * agent asks for it (pa_tls.boot_serve), the host's heap after. */
        size_t keep = old ? pa_boot_size(old) : 0;
        char *np = malloc(size);
        const char *src = old;
        for (size_t i = 0; np && i < size && i < keep; i++)
            np[i] = src[i];
        return np;
    }
    if (!READY())
        pa_init();
    if (!RECORDING())
        return pa_real.realloc(old, size);
    was = PA_REALLOC_PRE(old);
    t0 = PA_REALLOC_T0(was);
    p = pa_real.realloc(old, size);
    /* realloc(p, 0) frees p and returns NULL or a minimal block; a failed
     * realloc leaves the old block alive (C11 7.22.3.5). */
    PA_REC_REALLOC(old, was, p, size, p || size == 0, t0);
    return p;
}

/* Sampled mode: an old block the filter says was never sampled (or NULL)
 * and a new size that does not end the countdown: the real realloc, as a
 * tail call.  Otherwise the countdown is given back, for realloc_rec
 * charges it after the call. */
PA_EXPORT void *realloc(void *old, size_t size)
{
    if (PA_NOT_BUSY() && PA_LIKELY(!pa_sampleset_maybe(old)) && PA_LIKELY(!pa_is_boot(old))) {
        if (PA_LIKELY((pa_tls.sample_left -= (int64_t)size) > 0))
            return pa_real.realloc(old, size);
        pa_tls.sample_left += (int64_t)size;
    }
    if (HEAP_OFF_FAST() && !pa_is_boot(old))
        return pa_real.realloc(old, size);
    return realloc_rec(old, size);
}

PA_EXPORT void *reallocarray(void *old, size_t n, size_t size)
{
    size_t total;
    void *p;
    uint64_t t0;
    int was;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (!READY())
        pa_init();
    if (!RECORDING() || !pa_real.reallocarray)
        return realloc(old, total);
    was = PA_REALLOC_PRE(old);
    t0 = PA_REALLOC_T0(was);
    pa_tls.guard++; /* glibc's reallocarray calls realloc: count once */
    p = pa_real.reallocarray(old, n, size);
    pa_tls.guard--;
    PA_REC_REALLOC(old, was, p, total, p || total == 0, t0);
    return p;
}

/* The aligned family: one shape, four entry points. */
#define ALIGNED_HOOK(name, call, size_expr)                                                   \
    {                                                                                         \
        void *p;                                                                              \
        if (!READY())                                                                         \
            pa_init();                                                                        \
        if (!pa_real.name)                                                                    \
            return NULL;                                                                      \
        pa_tls.guard++; /* some allocators implement these on top of malloc */                \
        p = call;                                                                             \
        pa_tls.guard--;                                                                       \
        if (RECORDING())                                                                      \
            PA_REC_ALLOC(p, size_expr);                                                       \
        return p;                                                                             \
    }

PA_EXPORT void *memalign(size_t align, size_t size)
    ALIGNED_HOOK(memalign, pa_real.memalign(align, size), size)
PA_EXPORT void *aligned_alloc(size_t align, size_t size)
    ALIGNED_HOOK(aligned_alloc, pa_real.aligned_alloc(align, size), size)
PA_EXPORT void *valloc(size_t size)
    ALIGNED_HOOK(valloc, pa_real.valloc(size), size)
PA_EXPORT void *pvalloc(size_t size)
    ALIGNED_HOOK(pvalloc, pa_real.pvalloc(size), size)

PA_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
    int r;
    if (!READY())
        pa_init();
    if (!pa_real.posix_memalign)
        return ENOMEM;
    pa_tls.guard++;
    r = pa_real.posix_memalign(out, align, size);
    pa_tls.guard--;
    if (r == 0 && RECORDING())
        PA_REC_ALLOC(*out, size);
    return r;
}

PA_EXPORT size_t malloc_usable_size(void *p)
{
    if (!READY())
        pa_init();
    if (PA_UNLIKELY(pa_is_boot(p)))
        return pa_boot_size(p);
    if (!pa_real.malloc_usable_size)
        return 0;
    return pa_real.malloc_usable_size(p);
}

/* ---- jemalloc's non-standard API (jemalloc(3)), only used by jemalloc hosts.
 * jemalloc's own malloc does not call these through the PLT, so nothing is
 * counted twice. */

PA_EXPORT void *mallocx(size_t size, int flags)
{
    void *p;
    if (!READY())
        pa_init();
    if (!pa_real.mallocx)
        return NULL;
    p = pa_real.mallocx(size, flags);
    if (RECORDING())
        PA_REC_ALLOC(p, size);
    return p;
}

PA_EXPORT void *rallocx(void *old, size_t size, int flags)
{
    void *p;
    uint64_t t0;
    int was;
    if (!READY())
        pa_init();
    if (!pa_real.rallocx)
        return NULL;
    if (!RECORDING())
        return pa_real.rallocx(old, size, flags);
    was = PA_REALLOC_PRE(old);
    t0 = PA_REALLOC_T0(was);
    p = pa_real.rallocx(old, size, flags);
    PA_REC_REALLOC(old, was, p, size, p != NULL, t0);
    return p;
}

/* xallocx resizes in place: same address, new size. */
PA_EXPORT size_t xallocx(void *p, size_t size, size_t extra, int flags)
{
    size_t r;
    uint64_t t0;
    int was;
    if (!READY())
        pa_init();
    if (!pa_real.xallocx)
        return 0;
    if (!RECORDING())
        return pa_real.xallocx(p, size, extra, flags);
    was = PA_REALLOC_PRE(p);
    t0 = PA_REALLOC_T0(was);
    r = pa_real.xallocx(p, size, extra, flags);
    /* jemalloc reports the usable size it resized to; the request is at
     * least `size` and we record that (requested sizes, like everywhere). */
    PA_REC_REALLOC(p, was, p, size, r >= size, t0);
    return r;
}

PA_EXPORT void sdallocx(void *p, size_t size, int flags)
{
    if (!READY())
        pa_init();
    if (!p || !pa_real.sdallocx)
        return;
    if (RECORDING())
        PA_REC_FREE(p);
    pa_real.sdallocx(p, size, flags);
}

PA_EXPORT void dallocx(void *p, int flags)
{
    if (!READY())
        pa_init();
    if (!p || !pa_real.dallocx)
        return;
    if (RECORDING())
        PA_REC_FREE(p);
    pa_real.dallocx(p, flags);
}
