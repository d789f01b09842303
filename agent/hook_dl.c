/*
 * hook_dl.c — dlclose(3): declare the modules (including the one about to
 * go) before the loader unmaps it, so stacks that point into it still
 * resolve (see modules.c for why dlopen is not hooked), and retire cached
 * unwind rules after it.
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
    int r = real_dlclose(handle);
    /* After the unmap: unwind rules cached from here on describe only code
     * that is mapped now (unwind.c). */
    atomic_fetch_add_explicit(&pa_unwind_gen, 1, memory_order_release);
    return r;
}
