/*
 * modules.c — the process's loaded ELF objects, for the collector's
 * symbolizer: path, build-id, load bias and executable ranges, read with
 * dl_iterate_phdr(3) from the loader's own list (no /proc parsing, no
 * allocation: build-ids come from the PT_NOTE segments already mapped).
 *
 * Every module ever seen is kept (never removed, bounded by MAX_MODULES), so
 * a library that was dlopen'ed, allocated and dlclose'd between two sender
 * rounds is still declared before stacks that point into it: the dlclose hook
 * refreshes the list before the real dlclose (heaptrack refreshes on its
 * dlopen/dlclose hooks for the same reason, memory-anchors P11).  We don't
 * hook dlopen: glibc's dlopen uses its caller's link map for RUNPATH and
 * $ORIGIN, which an interposer would change.
 */
#include "internal.h"

#include <elf.h>
#include <link.h>
#include <string.h>

#define MAX_MODULES 4096
#define MAX_RANGES 4

typedef struct pa_module {
    const char *path;           /* arena copy */
    uint64_t bias;
    uint8_t build_id[40];
    uint8_t build_id_len;
    uint8_t nranges;
    uint8_t present;            /* in the latest dl_iterate_phdr pass */
    uint8_t sent;               /* declared to the current stream */
    uint64_t ranges[MAX_RANGES][2];
} pa_module_t;

static pa_module_t *mods;
static unsigned nmods;
static _Atomic int mod_lock;
static uint64_t last_gen = ~0ull;
static int changed;                   /* present set changed since last take */
PA_HIDDEN uint64_t pa_agent_lo, pa_agent_hi; /* our own executable range */

static void lock(void)
{
    while (atomic_exchange_explicit(&mod_lock, 1, memory_order_acquire))
        __builtin_ia32_pause();
}

static void unlock(void)
{
    atomic_store_explicit(&mod_lock, 0, memory_order_release);
}

static void read_build_id(struct dl_phdr_info *info, pa_module_t *m)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        const uint8_t *p, *end;
        if (ph->p_type != PT_NOTE)
            continue;
        p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
        end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            size_t name = (nh->n_namesz + 3) & ~3u, desc = (nh->n_descsz + 3) & ~3u;
            const uint8_t *d = p + sizeof(*nh) + name;
            if (d + desc > end)
                break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                memcmp(p + sizeof(*nh), "GNU", 4) == 0 && nh->n_descsz <= sizeof(m->build_id)) {
                memcpy(m->build_id, d, nh->n_descsz);
                m->build_id_len = (uint8_t)nh->n_descsz;
                return;
            }
            p = d + desc;
        }
    }
}

struct scan_ctx {
    uint64_t gen;
    int first;
};

static int scan_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct scan_ctx *ctx = arg;
    pa_module_t cand;
    const char *path = info->dlpi_name;
    unsigned i;

    if (ctx->first) {
        ctx->first = 0;
        if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs))
            ctx->gen = info->dlpi_adds + info->dlpi_subs;
    }
    if (!path || !*path)
        path = pa_cfg.exe; /* the main program: the loader names it "" */
    memset(&cand, 0, sizeof(cand));
    cand.bias = info->dlpi_addr;
    for (i = 0; i < info->dlpi_phnum && cand.nranges < MAX_RANGES; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            cand.ranges[cand.nranges][0] = info->dlpi_addr + ph->p_vaddr;
            cand.ranges[cand.nranges][1] = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
            cand.nranges++;
        }
    }
    if (!cand.nranges)
        return 0;
    read_build_id(info, &cand);
    for (i = 0; i < nmods; i++) {
        pa_module_t *m = &mods[i];
        if (m->bias == cand.bias && m->build_id_len == cand.build_id_len &&
            memcmp(m->build_id, cand.build_id, cand.build_id_len) == 0 &&
            pa_streq(m->path, path)) {
            if (!m->present)
                changed = 1;
            m->present = 2; /* 2 = seen in this pass */
            return 0;
        }
    }
    if (nmods == MAX_MODULES)
        return 0;
    size_t len = pa_strlen(path) + 1;
    char *copy = pa_arena_alloc(len);
    if (!copy)
        return 0;
    memcpy(copy, path, len);
    cand.path = copy;
    cand.present = 2;
    mods[nmods++] = cand;
    changed = 1;
    return 0;
}

static int gen_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs))
        *(uint64_t *)arg = info->dlpi_adds + info->dlpi_subs;
    return 1; /* the counters are the same in every callback: stop */
}

void pa_modules_refresh(int force)
{
    uint64_t gen = 0;
    struct scan_ctx ctx = {0, 1};
    if (!mods)
        return;
    pa_phdr_each(gen_cb, &gen);
    if (!force && gen == last_gen)
        return;
    lock();
    for (unsigned i = 0; i < nmods; i++)
        mods[i].present = mods[i].present ? 1 : 0;
    pa_phdr_each(scan_cb, &ctx);
    for (unsigned i = 0; i < nmods; i++) {
        if (mods[i].present == 1)
            changed = 1; /* was present, now gone */
        mods[i].present = mods[i].present == 2;
    }
    last_gen = ctx.gen;
    unlock();
}

/* Sender side: visit modules not yet declared to the stream (fn(m, 0)) and,
 * when the loaded set changed, the whole present set (fn(m, 1)).  Returns
 * whether a full map was visited. */
int pa_modules_take(void (*fn)(void *ctx, const char *path, const uint8_t *bid, unsigned bid_len,
                               uint64_t bias, const uint64_t (*ranges)[2], unsigned nranges,
                               int full),
                    void *ctx)
{
    int full;
    lock();
    for (unsigned i = 0; i < nmods; i++)
        if (!mods[i].sent && !mods[i].present) {
            pa_module_t *m = &mods[i];
            fn(ctx, m->path, m->build_id, m->build_id_len, m->bias,
               (const uint64_t(*)[2])m->ranges, m->nranges, 0);
            m->sent = 1;
        }
    full = changed;
    if (full) {
        for (unsigned i = 0; i < nmods; i++)
            if (mods[i].present) {
                pa_module_t *m = &mods[i];
                fn(ctx, m->path, m->build_id, m->build_id_len, m->bias,
                   (const uint64_t(*)[2])m->ranges, m->nranges, 1);
                m->sent = 1;
            }
        changed = 0;
    }
    unlock();
    return full;
}

static int self_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    uint64_t me = (uint64_t)(uintptr_t)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uint64_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && me >= lo && me < hi) {
            pa_agent_lo = lo;
            pa_agent_hi = hi;
            return 1;
        }
    }
    return 0;
}

int pa_modules_init(void)
{
    mods = pa_mmap(sizeof(pa_module_t) * MAX_MODULES);
    if (!mods)
        return -1;
    pa_phdr_each(self_cb, (void *)(uintptr_t)&pa_modules_init);
    pa_modules_refresh(1);
    return pa_agent_lo ? 0 : -1;
}

/* Anything for pa_modules_take to visit?  The sender asks every round
 * before it builds module maps (two 32 KiB pointer arrays a round, zeroed,
 * for nothing: 6 MB/s of memset on the sender under redis-benchmark). */
int pa_modules_pending(void)
{
    int any;
    lock();
    any = changed;
    for (unsigned i = 0; !any && i < nmods; i++)
        any = !mods[i].sent && !mods[i].present;
    unlock();
    return any;
}

/* A new stream starts from nothing: declare every module again. */
void pa_modules_resend(void)
{
    lock();
    for (unsigned i = 0; i < nmods; i++)
        mods[i].sent = 0;
    changed = 1;
    unlock();
}

/* fork(2): pa_modules_lock(1) in prepare, (0) in parent and child, so the
 * child never inherits a list half-way through an update. */
void pa_modules_lock(int take)
{
    if (take)
        lock();
    else
        unlock();
}
