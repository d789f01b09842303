/*
 * livemap — open-addressing hash of live heap blocks (see livemap.h).
 *
 * Owns one flat slot array.  Exact-mode streams put every malloc and free
 * through here, so the hot paths do one multiply, one masked index and a
 * short linear scan; the table grows by doubling and never shrinks.  Never
 * stores more than max_entries blocks: past that, inserts fail and are
 * counted, so a hostile or huge stream cannot grow the collector unbounded.
 */
#include "livemap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define LIVEMAP_MIN_CAP 1024u
#define HUGE_PAGE (2u << 20)

struct livemap {
    live_entry_t *slots; /* cap entries, addr 0 = empty */
    size_t cap;          /* power of two */
    size_t mask;
    unsigned shift; /* 64 - log2(cap) */
    size_t count;
    size_t grow_at; /* grow when count reaches this (load 0.7) */
    uint64_t max_entries;
    uint64_t overflows;
};

/* Fibonacci hashing: malloc addresses are 16-byte aligned and clustered, the
 * multiply moves their entropy into the top bits that we keep. */
static inline size_t slot_of(const livemap_t *m, uint64_t addr)
{
    return (size_t)((addr * UINT64_C(0x9E3779B97F4A7C15)) >> m->shift);
}

/* Tables of 2 MiB and more are mmap'ed on a 2 MiB boundary and offered to
 * transparent huge pages: a lookup in a table of millions of entries is a
 * cache miss anyway, but without huge pages it is a TLB miss too (a page walk,
 * and a 2-level one under virtualization), which costs more than the miss. */
static live_entry_t *slots_alloc(size_t cap)
{
    size_t bytes = cap * sizeof(live_entry_t);
    if (bytes < HUGE_PAGE)
        return calloc(cap, sizeof(live_entry_t));
    uint8_t *p =
        mmap(NULL, bytes + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uint8_t *a = (uint8_t *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    munmap(a + bytes, (size_t)(p + HUGE_PAGE - a));
    madvise(a, bytes, MADV_HUGEPAGE); /* a hint: without THP it still works */
    return (live_entry_t *)a;
}

static void slots_free(live_entry_t *slots, size_t cap)
{
    if (cap * sizeof(live_entry_t) < HUGE_PAGE)
        free(slots);
    else if (slots)
        munmap(slots, cap * sizeof(live_entry_t));
}

static int table_alloc(livemap_t *m, size_t cap)
{
    live_entry_t *slots = slots_alloc(cap);
    if (!slots)
        return -ENOMEM;
    unsigned bits = 0;
    while (((size_t)1 << bits) < cap)
        bits++;
    m->slots = slots;
    m->cap = cap;
    m->mask = cap - 1;
    m->shift = 64 - bits;
    m->grow_at = cap / 10 * 7;
    return 0;
}

livemap_t *livemap_new(uint64_t max_entries)
{
    livemap_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->max_entries = max_entries ? max_entries : LIVEMAP_DEFAULT_MAX;
    if (table_alloc(m, LIVEMAP_MIN_CAP) < 0) {
        free(m);
        return NULL;
    }
    return m;
}

void livemap_free(livemap_t *m)
{
    if (!m)
        return;
    slots_free(m->slots, m->cap);
    free(m);
}

live_entry_t *livemap_find(livemap_t *m, uint64_t addr)
{
    size_t i = slot_of(m, addr);
    for (;;) {
        live_entry_t *e = &m->slots[i];
        if (e->addr == addr)
            return e;
        if (e->addr == 0)
            return NULL;
        i = (i + 1) & m->mask;
    }
}

void livemap_prefetch(const livemap_t *m, uint64_t addr)
{
    __builtin_prefetch(&m->slots[slot_of(m, addr)], 1);
}

/* Place e without checking load or duplicates (used by insert and rehash). */
static void place(livemap_t *m, const live_entry_t *e)
{
    size_t i = slot_of(m, e->addr);
    while (m->slots[i].addr != 0)
        i = (i + 1) & m->mask;
    m->slots[i] = *e;
}

static int grow(livemap_t *m)
{
    live_entry_t *old = m->slots;
    size_t old_cap = m->cap;
    if (old_cap > SIZE_MAX / 2 / sizeof(*old))
        return -ENOMEM;
    if (table_alloc(m, old_cap * 2) < 0)
        return -ENOMEM; /* table_alloc changes nothing on failure */
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].addr != 0)
            place(m, &old[i]);
    slots_free(old, old_cap);
    return 0;
}

int livemap_insert(livemap_t *m, const live_entry_t *e)
{
    if (m->count >= m->max_entries) {
        m->overflows++;
        return -ENOSPC;
    }
    if (m->count + 1 > m->grow_at) {
        int rc = grow(m);
        if (rc < 0)
            return rc;
    }
    place(m, e);
    m->count++;
    return 0;
}

/* Backward-shift deletion: walk the cluster after the hole and pull back every
 * entry whose home slot is not cyclically inside (hole, j], so lookups never
 * need tombstones. */
void livemap_remove(livemap_t *m, live_entry_t *e)
{
    size_t hole = (size_t)(e - m->slots);
    size_t j = hole;
    for (;;) {
        j = (j + 1) & m->mask;
        uint64_t a = m->slots[j].addr;
        if (a == 0)
            break;
        size_t home = slot_of(m, a);
        /* distance from home to j vs. distance from hole to j (mod cap) */
        if (((j - home) & m->mask) >= ((j - hole) & m->mask)) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    memset(&m->slots[hole], 0, sizeof(m->slots[hole]));
    m->count--;
}

size_t livemap_count(const livemap_t *m)
{
    return m->count;
}

uint64_t livemap_overflows(const livemap_t *m)
{
    return m->overflows;
}

const live_entry_t *livemap_next(const livemap_t *m, size_t *pos)
{
    for (size_t i = *pos; i < m->cap; i++) {
        if (m->slots[i].addr != 0) {
            *pos = i + 1;
            return &m->slots[i];
        }
    }
    *pos = m->cap;
    return NULL;
}
