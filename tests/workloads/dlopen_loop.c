/*
 * dlopen_loop — dlopen, call, dlclose libdlleak.so N times.
 *   usage: dlopen_loop [N=200] [PATH_TO_libdlleak.so]
 * (default path: libdlleak.so beside this executable.)  Each round calls
 * dlleak_make_block(333) through call_into_plugin; the block leaks:
 *   dlleak_make_block  N x 333 B   (frames: dlleak_make_block, call_into_plugin, main)
 * and dlleak_scratch(n) allocations inside the library are all freed: 20 a
 * round, of the sizes dlleak.c computes (the total is printed as scratch=).
 */
#include <dlfcn.h>
#include <limits.h>
#include "wl.h"

typedef void *(*make_fn)(size_t);
typedef unsigned long (*scratch_fn)(int);

NOINLINE void *call_into_plugin(make_fn f, size_t n)
{
    void *p = f(n);
    NO_TAIL();
    return p;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200;
    char path[PATH_MAX];
    if (argc > 2) {
        snprintf(path, sizeof path, "%s", argv[2]);
    } else {
        ssize_t len = readlink("/proc/self/exe", path, sizeof path - 32);
        WL_ASSERT(len > 0, 2);
        path[len] = 0;
        char *slash = strrchr(path, '/');
        strcpy(slash + 1, "libdlleak.so");
    }
    static void *leaked[100000];
    WL_ASSERT(n > 0 && n <= 100000, 2);
    unsigned long sum = 0, scratch = 0;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 20; k++) /* dlleak_scratch's sizes, as dlleak.c has them */
            scratch += 32 + (unsigned long)((i * 7 + k * 13) % 900);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            err("dlopen_loop: %s\n", dlerror());
            return 3;
        }
        make_fn mk = (make_fn)dlsym(h, "dlleak_make_block");
        scratch_fn sc = (scratch_fn)dlsym(h, "dlleak_scratch");
        WL_ASSERT(mk && sc, 4);
        leaked[i] = call_into_plugin(mk, 333);
        WL_ASSERT(leaked[i] != NULL, 5);
        sum += sc(i);
        WL_ASSERT(dlclose(h) == 0, 6);
    }
    out("dlopen_loop: rounds=%d leaked=%d x 333 B sum=%lu scratch=%lu B in %d blocks\n", n, n, sum,
        scratch, n * 20);
    return 0;
}
