/*
 * unwind.c — one-time unwinder setup (the capture itself is in unwind.h).
 */
#include "unwind.h"

/* The first unwind allocates libunwind's caches and may take the loader lock
 * through dl_iterate_phdr: do it once, under the guard, before any hook
 * records (jemalloc's prof_unwind_init does the same for libgcc).  Must run
 * after libunwind's own initialization: see pa_ctor() in init.c. */
int pa_unwind_init(void)
{
    uint64_t buf[PA_UNWIND_BUF];
    unsigned first;
    int truncated;
    if (pa_cfg.unwinder == PA_UNWIND_LIBUNWIND)
        unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_GLOBAL);
    return pa_unwind_here(buf, 8, &first, &truncated) > 0 ? 0 : -1;
}
