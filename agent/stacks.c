/*
 * stacks.c — interns call stacks: frames[] -> a small id, so each heap row
 * carries one varint and each stack crosses the wire once (heaptrack's
 * TraceTree idea, memory-anchors P22).
 *
 * Lock-free for the common case (stack already known: hash, probe, compare).
 * A new stack claims its hash slot with a CAS to BUSY, takes the next id,
 * copies its frames into an append-only arena, and publishes the slot; a
 * thread that meets BUSY spins the few nanoseconds the copy takes.  The
 * sender emits StackDefs in id order, stopping at the first id not yet
 * published, so a stack always precedes the rows that name it.
 *
 * All memory is reserved with mmap(MAP_NORESERVE) at init; pages cost only
 * when touched.  When the table is full new stacks get id 0 (counted).
 */
#include "internal.h"

#include <string.h>

#define SLOT_EMPTY 0u
#define SLOT_BUSY 0xffffffffu

typedef struct stack_entry {
    uint64_t hash;
    uint64_t off;           /* index into frames_arena */
    uint32_t n;
    uint8_t flags;          /* PA_STACK_TRUNCATED | PA_STACK_LEAF_PC */
    _Atomic uint8_t ready;  /* 1 published, 2 dead (never used: fork) */
} stack_entry_t;

static _Atomic uint32_t *slots;
static stack_entry_t *entries;     /* by id; entries[0] unused */
static uint64_t *frames_arena;
static size_t cap_slots, cap_ids, cap_frames;
static _Atomic uint32_t next_id = 1;
static _Atomic uint64_t frames_used;
/* Sticky once the ids or the frames run out: later new stacks get id 0
 * without taking an id each (a 32-bit id bumped by every failed intern
 * would wrap after 4 G of them and hand out ids again). */
static _Atomic int table_full;

int pa_stacks_init(size_t capacity)
{
    size_t s = 1;
    while (s < capacity * 2)
        s <<= 1; /* load factor <= 0.5 keeps probes short */
    cap_slots = s;
    cap_ids = capacity;
    cap_frames = capacity * 32; /* average depth budget; deeper stacks share */
    slots = pa_mmap(cap_slots * sizeof(*slots));
    entries = pa_mmap((cap_ids + 1) * sizeof(*entries));
    frames_arena = pa_mmap(cap_frames * sizeof(uint64_t));
    if (!slots || !entries || !frames_arena)
        return -1;
    return 0;
}

/* A rotate-xor chain (one cycle a frame, nothing for the CPU to wait on)
 * with a strong final mix: frames are compared on every hit anyway, so the
 * hash only has to spread stacks over the table and the thread cache. */
static inline uint64_t hash_frames(const uint64_t *f, unsigned n)
{
    uint64_t h = 0x243f6a8885a308d3ull ^ n;
    for (unsigned i = 0; i < n; i++)
        h = ((h << 7) | (h >> 57)) ^ f[i];
    h *= 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

/* leaf_pc is part of a stack's identity: the same addresses as a CPU
 * sample's stack (leaf = exact pc) and as a heap stack (all return
 * addresses) symbolize differently.  Truncation is not: the first interned
 * one wins, as before. */
static inline int same(const stack_entry_t *e, uint64_t h, const uint64_t *f, unsigned n,
                       unsigned leaf_pc)
{
    const uint64_t *g;
    if (e->hash != h || e->n != n || (e->flags & PA_STACK_LEAF_PC) != leaf_pc)
        return 0;
    g = frames_arena + e->off;
    for (unsigned i = 0; i < n; i++) /* short: cheaper than a memcmp call */
        if (g[i] != f[i])
            return 0;
    return 1;
}

/* Each thread remembers the stacks it interned recently, by hash:
 * allocation sites repeat, and this skips the shared table (two likely
 * cache misses) for a repeat. */
#define TCACHE 64
static PA_TLS uint32_t recent[TCACHE];

static uint32_t intern(const uint64_t *frames, unsigned n, int truncated, unsigned leaf_pc)
{
    uint64_t h = hash_frames(frames, n) ^ (leaf_pc ? 0x5bd1e9955bd1e995ull : 0);
    size_t mask = cap_slots - 1, i = (size_t)h & mask;

    if (!slots)
        return 0;
    uint32_t *hint = &recent[h & (TCACHE - 1)];
    if (*hint && same(&entries[*hint], h, frames, n, leaf_pc))
        return *hint;
    for (size_t probes = 0; probes < cap_slots; probes++, i = (i + 1) & mask) {
        uint32_t v = atomic_load_explicit(&slots[i], memory_order_acquire);
        while (v == SLOT_BUSY) {
            __builtin_ia32_pause();
            v = atomic_load_explicit(&slots[i], memory_order_acquire);
        }
        if (v != SLOT_EMPTY) {
            if (same(&entries[v], h, frames, n, leaf_pc))
                return *hint = v;
            continue;
        }
        /* Empty: a new stack.  Claim the slot (losing the CAS means someone
         * else just took it: re-examine the same slot). */
        if (atomic_load_explicit(&table_full, memory_order_relaxed))
            return 0;
        uint32_t expect = SLOT_EMPTY;
        if (!atomic_compare_exchange_strong_explicit(&slots[i], &expect, SLOT_BUSY,
                                                     memory_order_acq_rel,
                                                     memory_order_acquire)) {
            i = (i - 1) & mask;
            probes--;
            continue;
        }
        uint32_t id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
        uint64_t off = atomic_fetch_add_explicit(&frames_used, n, memory_order_relaxed);
        if (id > cap_ids || off + n > cap_frames) {
            /* Full: leave the slot empty again so lookups keep working. */
            atomic_store_explicit(&table_full, 1, memory_order_relaxed);
            if (id <= cap_ids)
                atomic_store_explicit(&entries[id].ready, 2, memory_order_release);
            atomic_store_explicit(&slots[i], SLOT_EMPTY, memory_order_release);
            return 0;
        }
        memcpy(frames_arena + off, frames, n * sizeof(*frames));
        entries[id].hash = h;
        entries[id].off = off;
        entries[id].n = n;
        entries[id].flags = (uint8_t)((truncated ? PA_STACK_TRUNCATED : 0) | leaf_pc);
        atomic_store_explicit(&entries[id].ready, 1, memory_order_release);
        atomic_store_explicit(&slots[i], id, memory_order_release);
        return *hint = id;
    }
    return 0;
}

uint32_t pa_stacks_intern(const uint64_t *frames, unsigned n, int truncated)
{
    return intern(frames, n, truncated, 0);
}

uint32_t pa_stacks_intern_pc(const uint64_t *frames, unsigned n, int truncated)
{
    return intern(frames, n, truncated, PA_STACK_LEAF_PC);
}

/* Ids handed out, failed ones included (pa_stacks_count caps at the
 * capacity); with the sticky flag it stops near the capacity. */
uint32_t pa_stacks_ids_taken(void)
{
    return atomic_load_explicit(&next_id, memory_order_acquire) - 1;
}

uint32_t pa_stacks_count(void)
{
    uint32_t n = atomic_load_explicit(&next_id, memory_order_acquire) - 1;
    return n > cap_ids ? (uint32_t)cap_ids : n;
}

/* Returns the frames of `id`, NULL if not yet published; sets *n = 0 for an
 * id that will never be published (skip it). */
const uint64_t *pa_stacks_get(uint32_t id, unsigned *n, int *truncated)
{
    stack_entry_t *e;
    uint8_t r;
    if (id == 0 || id > cap_ids || !entries)
        return NULL;
    e = &entries[id];
    r = atomic_load_explicit(&e->ready, memory_order_acquire);
    if (r == 0)
        return NULL;
    if (r == 2) {
        *n = 0;
        return frames_arena;
    }
    *n = e->n;
    *truncated = e->flags;
    return frames_arena + e->off;
}

/* fork(2) child: a thread that was inserting is gone; free its slot and
 * retire its id so neither lookups nor the sender wait for it. */
void pa_stacks_after_fork_child(void)
{
    uint32_t last = pa_stacks_count();
    if (!slots)
        return;
    for (size_t i = 0; i < cap_slots; i++)
        if (atomic_load_explicit(&slots[i], memory_order_relaxed) == SLOT_BUSY)
            atomic_store_explicit(&slots[i], SLOT_EMPTY, memory_order_relaxed);
    for (uint32_t id = 1; id <= last; id++)
        if (atomic_load_explicit(&entries[id].ready, memory_order_relaxed) == 0)
            atomic_store_explicit(&entries[id].ready, 2, memory_order_relaxed);
}

#ifdef PA_UNIT_TEST
/* A host thread preempted between taking an id and publishing it, as two
 * halves a test can run at chosen times (test_agent_roundtrip). */
uint32_t pa_stacks_test_take(void)
{
    return atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
}

void pa_stacks_test_publish(uint32_t id, const uint64_t *frames, unsigned n)
{
    uint64_t off = atomic_fetch_add_explicit(&frames_used, n, memory_order_relaxed);
    memcpy(frames_arena + off, frames, n * sizeof(*frames));
    entries[id].hash = hash_frames(frames, n);
    entries[id].off = off;
    entries[id].n = n;
    entries[id].flags = 0;
    atomic_store_explicit(&entries[id].ready, 1, memory_order_release);
}
#endif
