/*
 * hook_dl.c — dlclose(3): declare the modules (including the one about to
 * go) before the loader unmaps it, so stacks that point into it still
 * resolve (see modules.c for why dlopen is not hooked).
 */
#include "internal.h"

#include <dlfcn.h>

static int (*real_dlclose)(void *);

PA_EXPORT int dlclose(void *handle)
{
    if (!real_dlclose)
        *(void **)&real_dlclose = dlsym(RTLD_NEXT, "dlclose");
    if (!real_dlclose)
        return -1;
    if (atomic_load_explicit(&pa_state, memory_order_acquire) == 2 && pa_tls.guard == 0) {
        pa_tls.guard++;
        pa_modules_refresh(0);
        pa_tls.guard--;
    }
    return real_dlclose(handle);
}
