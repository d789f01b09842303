/*
 * real.c — finds the allocator functions our hooks forward to.
 *
 * dlsym(RTLD_NEXT) gives the next definition after libperfagent.so in the
 * lookup order: glibc's, or jemalloc's/tcmalloc's when the host preloads them
 * after us.  dlsym itself may allocate (a failed lookup formats a dlerror
 * string with malloc), which re-enters our hooks before the real functions
 * are known; those calls are served from a small static bootstrap pool, but
 * ONLY while resolution is running: memory-anchors P1 records a shim that
 * crashed by sending a large calloc made before init into such a pool.
 */
#include "internal.h"

#include <dlfcn.h>
#include <string.h>

PA_HIDDEN pa_real_fns_t pa_real;

/* PA_BOOT_POOL (64 KiB) is ample: glibc 2.36's dlsym allocates at most a few
 * hundred bytes (the dlerror buffer) per failed lookup, and a sender
 * thread's DTV is ~300 bytes (pa_sender_start).  Each block has a 16-byte
 * header with its size, so realloc and malloc_usable_size of a pool block
 * never read past it.  The bump is atomic: a thread that starts a sender
 * while another still initializes (a fork child's handler) may meet it. */
PA_HIDDEN char pa_boot_pool[PA_BOOT_POOL] __attribute__((aligned(64)));
static _Atomic size_t boot_used;

void *pa_boot_alloc(size_t size, size_t align)
{
    size_t used = atomic_load_explicit(&boot_used, memory_order_relaxed), off;
    if (align < 16)
        align = 16;
    if (align > PA_BOOT_POOL || size > PA_BOOT_POOL)
        return NULL;
    do {
        off = (used + 16 + align - 1) & ~(align - 1); /* room for the header */
        if (off > PA_BOOT_POOL - size)
            return NULL; /* full: the caller goes to the real allocator */
    } while (!atomic_compare_exchange_weak_explicit(&boot_used, &used, off + size,
                                                    memory_order_relaxed, memory_order_relaxed));
    memcpy(pa_boot_pool + off - 16, &size, sizeof(size));
    /* Static storage, never reused: already zero, fine for calloc. */
    return pa_boot_pool + off;
}

size_t pa_boot_size(const void *p)
{
    size_t n;
    memcpy(&n, (const char *)p - 16, sizeof(n));
    return n;
}

#define RESOLVE(name) (*(void **)&pa_real.name = dlsym(RTLD_NEXT, #name))

/* Returns 0, or -1 when a required function is missing (then the agent turns
 * itself off and the hooks cannot forward: nothing sensible is left to do). */
int pa_real_resolve(void)
{
    /* Optional ones first, while the hooks still serve allocations from the
     * pool: a failed dlsym leaves its dlerror message and state allocated,
     * and from the host's heap they would shift every block the program
     * allocates after them (mallocbench's two 40-byte worker structs then
     * shared a cache line: 1.6x "overhead" that was false sharing). */
    RESOLVE(mallocx);
    RESOLVE(rallocx);
    RESOLVE(xallocx);
    RESOLVE(sdallocx);
    RESOLVE(dallocx);
    RESOLVE(malloc);
    RESOLVE(free);
    RESOLVE(calloc);
    RESOLVE(realloc);
    if (!pa_real.malloc || !pa_real.free || !pa_real.calloc || !pa_real.realloc)
        return -1;
    RESOLVE(reallocarray);
    RESOLVE(memalign);
    RESOLVE(posix_memalign);
    RESOLVE(aligned_alloc);
    RESOLVE(valloc);
    RESOLVE(pvalloc);
    RESOLVE(malloc_usable_size);
    return 0;
}
