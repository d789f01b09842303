/*
 * floor_shim.c — the least a preloaded sampling heap profiler can do, for
 * `make bench` to measure beside the agent (config "floor"): interposed
 * malloc/calloc/realloc/free that forward to glibc through pointers from
 * dlsym(RTLD_NEXT), a byte countdown in initial-exec TLS on every
 * allocation, and on every free a lookup of the pointer in a small
 * direct-mapped table of "sampled" ones.  It records nothing and keeps no
 * stacks; it is the floor of issue 13's benchmark (the issue measured
 * 1.023x for pass-through alone and 1.058x for this shape on mallocbench),
 * so each bench run shows how far the agent's sampled mode is above it on
 * that run's machine.  Not thread-safe in its table (a benchmark fixture,
 * not a profiler: a lost entry only changes which free does a store).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>

#define RATE 524288
#define TABLE 4096

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static __thread int64_t left __attribute__((tls_model("initial-exec"))) = RATE;
static uintptr_t sampled[TABLE];
/* dlsym may calloc (its error state) before real_calloc is known. */
static char boot[4096] __attribute__((aligned(16)));
static size_t boot_used;

static void resolve(void) __attribute__((constructor));
static void resolve(void)
{
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_free = dlsym(RTLD_NEXT, "free");
}

static size_t slot(const void *p)
{
    return ((uintptr_t)p >> 4) & (TABLE - 1);
}

static __attribute__((noinline)) void *hit(void *p)
{
    left = RATE;
    sampled[slot(p)] = (uintptr_t)p;
    return p;
}

void *malloc(size_t n)
{
    if (__builtin_expect(!real_malloc, 0))
        resolve();
    if ((left -= (int64_t)n) > 0)
        return real_malloc(n);
    return hit(real_malloc(n));
}

void *calloc(size_t k, size_t n)
{
    if (__builtin_expect(!real_calloc, 0)) {
        size_t want = (k * n + 15) & ~(size_t)15;
        if (k && n > sizeof(boot) / k)
            return NULL;
        if (boot_used + want > sizeof(boot))
            return NULL;
        boot_used += want;
        return boot + boot_used - want; /* .bss: already zero */
    }
    if ((left -= (int64_t)(k * n)) > 0)
        return real_calloc(k, n);
    return hit(real_calloc(k, n));
}

void *realloc(void *old, size_t n)
{
    if (sampled[slot(old)] == (uintptr_t)old)
        sampled[slot(old)] = 0;
    if ((left -= (int64_t)n) > 0)
        return real_realloc(old, n);
    return hit(real_realloc(old, n));
}

void free(void *p)
{
    if ((char *)p >= boot && (char *)p < boot + sizeof(boot))
        return;
    if (__builtin_expect(sampled[slot(p)] == (uintptr_t)p, 0))
        sampled[slot(p)] = 0;
    real_free(p);
}
