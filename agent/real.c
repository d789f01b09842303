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

PA_HIDDEN pa_real_fns_t pa_real;

/* PA_BOOT_POOL (64 KiB) is ample: glibc 2.36's dlsym allocates at most a few hundred bytes
 * (the dlerror buffer) per failed lookup. */
PA_HIDDEN char pa_boot_pool[PA_BOOT_POOL] __attribute__((aligned(64)));
static size_t boot_used;

void *pa_boot_alloc(size_t size, size_t align)
{
    size_t off;
    if (align < 16)
        align = 16;
    off = (boot_used + align - 1) & ~(align - 1);
    if (size > PA_BOOT_POOL || off > PA_BOOT_POOL - size)
        return NULL;
    boot_used = off + size;
    return pa_boot_pool + off; /* static storage: already zero, fine for calloc */
}

#define RESOLVE(name) (*(void **)&pa_real.name = dlsym(RTLD_NEXT, #name))

/* Returns 0, or -1 when a required function is missing (then the agent turns
 * itself off and the hooks cannot forward: nothing sensible is left to do). */
int pa_real_resolve(void)
{
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
    /* Optional: present only when the host uses jemalloc. */
    RESOLVE(mallocx);
    RESOLVE(rallocx);
    RESOLVE(xallocx);
    RESOLVE(sdallocx);
    RESOLVE(dallocx);
    return 0;
}
