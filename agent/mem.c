/*
 * mem.c — the agent's own memory.  After init the agent must not allocate from
 * the host heap (it would perturb what we measure and could recurse into our
 * own hooks), so everything it keeps comes from anonymous mmap(2): thread
 * rings, the stack table, the modules journal, encode buffers.  The arena is a
 * bump allocator for small objects that live as long as the process.
 */
#include "internal.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

void *pa_mmap(size_t size)
{
    /* MAP_NORESERVE: large tables are reserved up front and only the pages
     * touched cost memory. raw syscall: mmap may be traced by a later issue. */
    long r = syscall(SYS_mmap, NULL, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r < 0 && r > -4096)
        return NULL;
    if ((void *)r == MAP_FAILED)
        return NULL;
    return (void *)r;
}

/* Memory whose contents a fork child never uses (thread rings: the child
 * empties its own; the sender's buffers: the child starts a new stream).
 * MADV_WIPEONFORK (madvise(2), Linux 4.14) gives the child zero pages instead
 * of copy-on-write ones, so the parent does not copy every page it writes
 * after a fork (fork_mt dropped rows while its threads paid for that). */
void *pa_mmap_private(size_t size)
{
    void *p = pa_mmap(size);
#ifdef MADV_WIPEONFORK
    if (p)
        syscall(SYS_madvise, p, size, MADV_WIPEONFORK);
#endif
    return p;
}

void pa_munmap(void *p, size_t size)
{
    if (p)
        syscall(SYS_munmap, p, size);
}

#define ARENA_CHUNK (1u << 20)

static _Atomic(uintptr_t) arena_cur, arena_end;
static _Atomic int arena_lock;

void *pa_arena_alloc(size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (size > ARENA_CHUNK)
        return NULL;
    while (atomic_exchange_explicit(&arena_lock, 1, memory_order_acquire))
        ;
    uintptr_t cur = atomic_load_explicit(&arena_cur, memory_order_relaxed);
    uintptr_t end = atomic_load_explicit(&arena_end, memory_order_relaxed);
    if (!cur || cur + size > end) {
        void *chunk = pa_mmap(ARENA_CHUNK);
        if (!chunk) {
            atomic_store_explicit(&arena_lock, 0, memory_order_release);
            return NULL;
        }
        cur = (uintptr_t)chunk;
        end = cur + ARENA_CHUNK;
    }
    atomic_store_explicit(&arena_cur, cur + size, memory_order_relaxed);
    atomic_store_explicit(&arena_end, end, memory_order_relaxed);
    atomic_store_explicit(&arena_lock, 0, memory_order_release);
    return (void *)cur;
}
