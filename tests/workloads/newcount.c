/*
 * libnewcount.so — a C++ runtime's operator new/delete that is not
 * libstdc++'s, for tests/e2e/alloc_api.sh: preloaded after the agent, it is
 * what the agent's operator hooks find as the real ones.  The agent calls
 * malloc and free directly only in place of libstdc++'s operators
 * (agent/hook_new.c); any other runtime's operators must still run, every
 * call.  These count their calls and print the counts at exit:
 *   newcount: new=N delete=M
 * so a run under the agent must print what a run without it does.
 * Plain, array, nothrow and sized forms; they allocate with malloc.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static _Atomic unsigned long news, deletes;

static void *counted_new(size_t n)
{
    void *p = malloc(n ? n : 1);
    atomic_fetch_add(&news, 1);
    if (!p)
        abort(); /* no exceptions from C: a test runtime */
    return p;
}

static void counted_delete(void *p)
{
    if (!p)
        return;
    atomic_fetch_add(&deletes, 1);
    free(p);
}

/* operator new(size_t), new[](size_t), and the nothrow forms */
void *_Znwm(size_t n) { return counted_new(n); }
void *_Znam(size_t n) { return counted_new(n); }
void *_ZnwmRKSt9nothrow_t(size_t n, const void *t) { (void)t; return counted_new(n); }
void *_ZnamRKSt9nothrow_t(size_t n, const void *t) { (void)t; return counted_new(n); }
/* operator delete, delete[], sized, nothrow */
void _ZdlPv(void *p) { counted_delete(p); }
void _ZdaPv(void *p) { counted_delete(p); }
void _ZdlPvm(void *p, size_t n) { (void)n; counted_delete(p); }
void _ZdaPvm(void *p, size_t n) { (void)n; counted_delete(p); }
void _ZdlPvRKSt9nothrow_t(void *p, const void *t) { (void)t; counted_delete(p); }
void _ZdaPvRKSt9nothrow_t(void *p, const void *t) { (void)t; counted_delete(p); }

__attribute__((destructor)) static void report(void)
{
    char line[96];
    int k = snprintf(line, sizeof(line), "newcount: new=%lu delete=%lu\n", atomic_load(&news),
                     atomic_load(&deletes));
    if (k > 0 && write(1, line, (size_t)k) < 0)
        _exit(3);
}
