/*
 * hook_new.c — C++ operator new/delete (the Itanium C++ ABI names).
 *
 * libstdc++'s operator new calls malloc through the PLT, but tcmalloc's and
 * jemalloc's replacements do not, so new/delete are hooked themselves
 * (memory-anchors P12).  The real operator runs with the guard raised, so a
 * malloc it makes inside is not counted a second time, and the stack starts
 * at the caller of operator new.
 *
 * Built with -fexceptions (Makefile): a throwing operator new (std::bad_alloc)
 * unwinds through these frames, and the guard is restored by a cleanup
 * handler on the way out.
 */
#include "heap.h"

#include <dlfcn.h>
#include <stddef.h>

typedef struct {
} pa_nothrow_t; /* std::nothrow_t: an empty struct passed by reference */

static void guard_exit(int *g)
{
    (void)g;
    pa_tls.guard--;
}
#define GUARDED int pa_g_ __attribute__((cleanup(guard_exit), unused)) = pa_tls.guard++

#define RECORDING() PA_LIKELY(pa_tls.guard == 0 && atomic_load_explicit(&pa_heap_on, memory_order_relaxed))

/* libstdc++'s plain operators are malloc and free: operator new(n) is
 * malloc(n ? n : 1) retried through the new_handler until it succeeds or
 * throws bad_alloc, new[] and the nothrow forms call it, and every plain or
 * sized delete ends in free(p) (libstdc++-v3/libsupc++ new_op.cc,
 * new_opv.cc, new_opnt.cc, del_op.cc, del_ops.cc, del_opv.cc).  Hooked
 * through the real operator, one `new char[n]` passed three hooks
 * (new[] -> new -> malloc, each through the PLT) and a delete[] three
 * filter tests: C++ new/delete pairs of 16-256 B on 2 threads ran 1.84x
 * their plain time in sampled mode, and 3.7x in exact mode.  So where the
 * real operator is libstdc++'s, every call goes to the real malloc or free
 * directly: non-samples in the exported fast path, samples and exact mode
 * in the slow path, which records them; a failed malloc still goes to the
 * real operator for the handler loop or the exception.  Other C++ runtimes
 * (tcmalloc and jemalloc define their own operators) and the aligned
 * forms take the guarded real call. */
static int from_libstdcxx(void *f)
{
    Dl_info di;
    const char *base;
    if (!f || !dladdr(f, &di) || !di.dli_fname)
        return 0;
    base = __builtin_strrchr(di.dli_fname, '/');
    base = base ? base + 1 : di.dli_fname;
    return __builtin_strncmp(base, "libstdc++.so", 12) == 0;
}

static PA_NOINLINE void *resolve_slow(void **slot, int *plain, const char *name)
{
    void *f;
    if (atomic_load_explicit(&pa_state, memory_order_acquire) != 2)
        pa_init();
    f = dlsym(RTLD_NEXT, name);
    /* *plain before the slot: a thread that sees the slot sees it too */
    if (plain)
        __atomic_store_n(plain, from_libstdcxx(f), __ATOMIC_RELAXED);
    __atomic_store_n(slot, f, __ATOMIC_RELEASE);
    return f;
}

static inline void *resolve(void **slot, int *plain, const char *name)
{
    void *f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    return PA_LIKELY(f != NULL) ? f : resolve_slow(slot, plain, name);
}

/* The form's real operator is libstdc++'s (resolve_slow set it). */
#define IS_PLAIN(sym) PA_LIKELY(__atomic_load_n(&sym##_plain, __ATOMIC_RELAXED))

/* Sampled mode and not a sample (the countdown, charged here, stays above
 * 0: set only by a sampled-mode draw after init, see hook_malloc.c), with
 * libstdc++'s operator: its malloc, called directly. */
#define CXX_FAST(sym) (IS_PLAIN(sym) && PA_NOT_BUSY())

/* What libstdc++'s operator new does, in its place: malloc(n ? n : 1), and
 * when that fails the real operator (sym##_retry) for the new_handler loop
 * or bad_alloc.  A tail call to it where it ends a function. */
#define PLAIN_NEW(sym, args, size)                                                              \
    ({                                                                                          \
        void *q_ = pa_real.malloc((size) ? (size) : 1);                                         \
        PA_LIKELY(q_ != NULL) ? q_ : sym##_retry args;                                          \
    })

/* What libstdc++'s operator delete does, in its place: free(p); not for the
 * agent's boot blocks, which only its free hook knows. */
#define PLAIN_FREE_OK(sym, p) (IS_PLAIN(sym) && !pa_is_boot(p))

/* Each operator is two functions: the exported one holds only the fast
 * path, so it saves no registers and ends in a tail call, and sym##_slow
 * (never inlined) the rest. */

/* One shape for every allocating form: resolve, allocate (libstdc++'s
 * operator: its malloc; another: the real operator with the guard up, so
 * its own malloc is not counted again), record after the call returned.
 * Not recording (inside another hook, or heap recording off): a tail call.
 * PLAIN: a form libstdc++ implements with malloc. */
#define NEW_HOOK(sym, params, args, size, PLAIN)                                                \
    static void *sym##_real;                                                                    \
    static int sym##_plain;                                                                     \
    /* libstdc++'s operator, its malloc failed: the real one runs the */                       \
    /* new_handler loop or throws bad_alloc, the guard up */                                    \
    static PA_NOINLINE void *sym##_retry params                                                 \
    {                                                                                           \
        GUARDED;                                                                                \
        return ((void *(*) params)sym##_real) args;                                             \
    }                                                                                           \
    static PA_NOINLINE void *sym##_slow params                                                  \
    {                                                                                           \
        void *(*fn) params =                                                                    \
            (void *(*) params)resolve(&sym##_real, PLAIN ? &sym##_plain : NULL, #sym);         \
        void *p;                                                                                \
        if (!RECORDING())                                                                       \
            return fn args;                                                                     \
        if (PLAIN && IS_PLAIN(sym)) {                                                           \
            p = PLAIN_NEW(sym, args, size);                                                     \
        } else {                                                                                \
            GUARDED;                                                                            \
            p = fn args;                                                                        \
        }                                                                                       \
        PA_REC_ALLOC(p, size);                                                                  \
        return p;                                                                               \
    }                                                                                           \
    PA_EXPORT void *sym params                                                                  \
    {                                                                                           \
        if (PLAIN && CXX_FAST(sym)) {                                                           \
            if (PA_LIKELY((pa_tls.sample_left -= (int64_t)(size)) > 0))                         \
                return PLAIN_NEW(sym, args, size);                                              \
            pa_tls.sample_left += (int64_t)(size);                                              \
        }                                                                                       \
        return sym##_slow args;                                                                 \
    }

/* Every deallocating form: record before the real call (see hook_malloc.c).
 * With libstdc++'s operator (PLAIN), the real free, except for the agent's
 * boot blocks (their free hook knows them).  Otherwise, sampled mode and a
 * block the filter says was never sampled: the real operator as a tail
 * call without the guard (an inner free finds the same filter bit clear);
 * else the real operator with the guard up. */
#define DELETE_HOOK(sym, params, args, PLAIN)                                                   \
    static void *sym##_real;                                                                    \
    static int sym##_plain;                                                                     \
    static PA_NOINLINE void sym##_slow params                                                   \
    {                                                                                           \
        void (*fn) params =                                                                     \
            (void (*) params)resolve(&sym##_real, PLAIN ? &sym##_plain : NULL, #sym);          \
        if (!p)                                                                                 \
            return;                                                                             \
        if (PA_LIKELY(pa_heap_sampling) && PA_LIKELY(!pa_sampleset_maybe(p)))                   \
            return fn args;                                                                     \
        if (RECORDING())                                                                        \
            PA_REC_FREE(p);                                                                     \
        if (PLAIN && PLAIN_FREE_OK(sym, p))                                                     \
            return pa_real.free(p);                                                             \
        GUARDED;                                                                                \
        fn args;                                                                                \
    }                                                                                           \
    PA_EXPORT void sym params                                                                   \
    {                                                                                           \
        if (PLAIN && IS_PLAIN(sym) && PA_LIKELY(pa_heap_sampling) &&                            \
            PA_LIKELY(!pa_sampleset_maybe(p)) && p && !pa_is_boot(p))                          \
            return pa_real.free(p);                                                             \
        sym##_slow args;                                                                        \
    }

/* operator new(size_t), new[](size_t) */
NEW_HOOK(_Znwm, (size_t n), (n), n, 1)
NEW_HOOK(_Znam, (size_t n), (n), n, 1)
/* nothrow */
NEW_HOOK(_ZnwmRKSt9nothrow_t, (size_t n, const pa_nothrow_t *t), (n, t), n, 1)
NEW_HOOK(_ZnamRKSt9nothrow_t, (size_t n, const pa_nothrow_t *t), (n, t), n, 1)
/* aligned (C++17) */
NEW_HOOK(_ZnwmSt11align_val_t, (size_t n, size_t al), (n, al), n, 0)
NEW_HOOK(_ZnamSt11align_val_t, (size_t n, size_t al), (n, al), n, 0)
NEW_HOOK(_ZnwmSt11align_val_tRKSt9nothrow_t, (size_t n, size_t al, const pa_nothrow_t *t),
         (n, al, t), n, 0)
NEW_HOOK(_ZnamSt11align_val_tRKSt9nothrow_t, (size_t n, size_t al, const pa_nothrow_t *t),
         (n, al, t), n, 0)

/* operator delete: plain, sized (C++14), aligned and sized+aligned (C++17),
 * nothrow */
DELETE_HOOK(_ZdlPv, (void *p), (p), 1)
DELETE_HOOK(_ZdaPv, (void *p), (p), 1)
DELETE_HOOK(_ZdlPvm, (void *p, size_t n), (p, n), 1)
DELETE_HOOK(_ZdaPvm, (void *p, size_t n), (p, n), 1)
DELETE_HOOK(_ZdlPvSt11align_val_t, (void *p, size_t al), (p, al), 0)
DELETE_HOOK(_ZdaPvSt11align_val_t, (void *p, size_t al), (p, al), 0)
DELETE_HOOK(_ZdlPvmSt11align_val_t, (void *p, size_t n, size_t al), (p, n, al), 0)
DELETE_HOOK(_ZdaPvmSt11align_val_t, (void *p, size_t n, size_t al), (p, n, al), 0)
DELETE_HOOK(_ZdlPvRKSt9nothrow_t, (void *p, const pa_nothrow_t *t), (p, t), 1)
DELETE_HOOK(_ZdaPvRKSt9nothrow_t, (void *p, const pa_nothrow_t *t), (p, t), 1)
