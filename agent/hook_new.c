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

static void *resolve(void **slot, const char *name)
{
    void *f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (!f) {
        if (atomic_load_explicit(&pa_state, memory_order_acquire) != 2)
            pa_init();
        f = dlsym(RTLD_NEXT, name);
        __atomic_store_n(slot, f, __ATOMIC_RELEASE);
    }
    return f;
}

/* One shape for every allocating form: resolve, call with the guard up,
 * record after the call returned. */
#define NEW_HOOK(sym, params, args, size)                                                       \
    PA_EXPORT void *sym params                                                                  \
    {                                                                                           \
        static void *real;                                                                      \
        void *(*fn) params = (void *(*) params)resolve(&real, #sym);                          \
        void *p;                                                                                \
        int rec = RECORDING();                                                                  \
        {                                                                                       \
            GUARDED;                                                                            \
            p = fn args;                                                                        \
        }                                                                                       \
        if (rec)                                                                                \
            PA_REC_ALLOC(p, size);                                                              \
        return p;                                                                               \
    }

/* Every deallocating form: record before the real call (see hook_malloc.c). */
#define DELETE_HOOK(sym, params, args)                                                          \
    PA_EXPORT void sym params                                                                   \
    {                                                                                           \
        static void *real;                                                                      \
        void (*fn) params = (void (*) params)resolve(&real, #sym);                            \
        if (!p)                                                                                 \
            return;                                                                             \
        if (RECORDING())                                                                        \
            PA_REC_FREE(p);                                                                     \
        GUARDED;                                                                                \
        fn args;                                                                                \
    }

/* operator new(size_t), new[](size_t) */
NEW_HOOK(_Znwm, (size_t n), (n), n)
NEW_HOOK(_Znam, (size_t n), (n), n)
/* nothrow */
NEW_HOOK(_ZnwmRKSt9nothrow_t, (size_t n, const pa_nothrow_t *t), (n, t), n)
NEW_HOOK(_ZnamRKSt9nothrow_t, (size_t n, const pa_nothrow_t *t), (n, t), n)
/* aligned (C++17) */
NEW_HOOK(_ZnwmSt11align_val_t, (size_t n, size_t al), (n, al), n)
NEW_HOOK(_ZnamSt11align_val_t, (size_t n, size_t al), (n, al), n)
NEW_HOOK(_ZnwmSt11align_val_tRKSt9nothrow_t, (size_t n, size_t al, const pa_nothrow_t *t),
         (n, al, t), n)
NEW_HOOK(_ZnamSt11align_val_tRKSt9nothrow_t, (size_t n, size_t al, const pa_nothrow_t *t),
         (n, al, t), n)

/* operator delete: plain, sized (C++14), aligned and sized+aligned (C++17),
 * nothrow */
DELETE_HOOK(_ZdlPv, (void *p), (p))
DELETE_HOOK(_ZdaPv, (void *p), (p))
DELETE_HOOK(_ZdlPvm, (void *p, size_t n), (p, n))
DELETE_HOOK(_ZdaPvm, (void *p, size_t n), (p, n))
DELETE_HOOK(_ZdlPvSt11align_val_t, (void *p, size_t al), (p, al))
DELETE_HOOK(_ZdaPvSt11align_val_t, (void *p, size_t al), (p, al))
DELETE_HOOK(_ZdlPvmSt11align_val_t, (void *p, size_t n, size_t al), (p, n, al))
DELETE_HOOK(_ZdaPvmSt11align_val_t, (void *p, size_t n, size_t al), (p, n, al))
DELETE_HOOK(_ZdlPvRKSt9nothrow_t, (void *p, const pa_nothrow_t *t), (p, t))
DELETE_HOOK(_ZdaPvRKSt9nothrow_t, (void *p, const pa_nothrow_t *t), (p, t))
