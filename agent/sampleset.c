/*
 * sampleset.c — the set of live sampled block addresses (sampleset.h says
 * why it has a filter in front).  Shards are open-addressing tables with
 * linear probing and backward-shift deletion, so a table never fills with
 * tombstones however long the program churns; each is guarded by a
 * spinlock held for a few probes.  The 256 KiB of filter bits are .bss;
 * 2 MiB of counters (one byte a filter bit) and 256 x 8 KiB of tables are
 * mmap'd at init; all are touched as used.  What the sampling path writes
 * on every sample (the stripe locks) has cache lines of its own, away from
 * what every free reads (sampleset.h).
 *
 * Callers hold the agent's reentrancy guard (heap.c), so a signal handler
 * that allocates while its thread holds a shard lock is not recorded and
 * cannot deadlock on the lock.
 */
#include "sampleset.h"

#include <errno.h>
#include <sched.h>

#define SHARDS 256
#define SLOTS 1024        /* per shard, a power of two */
#define MAX_FILL 768      /* 75%: longer probe runs are not worth it */

typedef struct shard {
    _Atomic int lock;
    _Atomic uint32_t n; /* written under lock; read without (pa_sampleset_count) */
    uint64_t slot[SLOTS]; /* 0 = empty */
} shard_t;

PA_HIDDEN _Atomic uint64_t pa_sfilter[PA_SFILTER_SIZE / 64] __attribute__((aligned(64)));
PA_HIDDEN _Atomic uint64_t pa_sampleset_full;
static uint8_t *counts; /* per filter bit; under stripe[bit's word & 255] */
static shard_t *shards;
/* Taken by every sample: aligned, and 1 KiB, so in cache lines of its own. */
static _Atomic int stripe[256] __attribute__((aligned(64)));

int pa_sampleset_init(void)
{
    if (shards)
        return 0;
    counts = pa_mmap(PA_SFILTER_SIZE);
    shards = pa_mmap(sizeof(shard_t) * SHARDS);
    return counts && shards ? 0 : -ENOMEM;
}

/* The shards' and the filter stripes' spinlocks. */
static void lock(_Atomic int *l)
{
    for (unsigned spins = 0; atomic_exchange_explicit(l, 1, memory_order_acquire);) {
        /* The holder may have been preempted: give it the CPU. */
        if (++spins > 64)
            sched_yield();
    }
}

static void unlock(_Atomic int *l)
{
    atomic_store_explicit(l, 0, memory_order_release);
}

/* Called with addr's shard locked.  Two shards' blocks can share a filter
 * bit, so the bit and its counter change under the bit word's stripe lock
 * (taken after a shard lock, never the other way round): a block is in the
 * bit from its add until its take, whatever other blocks come and go. */
static void filter_add(uint64_t addr, int delta)
{
    uint64_t b = pa_sfilter_bit(addr), bit = 1ull << (b & 63);
    _Atomic uint64_t *word = &pa_sfilter[b >> 6];
    _Atomic int *l = &stripe[(b >> 6) & 255];
    uint8_t *c = &counts[b];
    lock(l);
    /* The word's only writers hold its stripe lock, so a load and a store
     * do what a locked read-modify-write would, without its stall: the
     * store waits in the store buffer while the line comes from the CPUs
     * whose frees read it.  Frees read the word without the lock and see
     * the old or the new value, both right for them (sampleset.h). */
    if (*c != 255) { /* sticky: more blocks share it than it can count */
        *c = (uint8_t)(*c + delta);
        if (*c == 0)
            atomic_store_explicit(word, atomic_load_explicit(word, memory_order_relaxed) & ~bit,
                                  memory_order_relaxed);
        else if (delta > 0 && *c == 1)
            atomic_store_explicit(word, atomic_load_explicit(word, memory_order_relaxed) | bit,
                                  memory_order_relaxed);
    }
    unlock(l);
}

/* The shard from the hash's low byte, the home slot from the bits above. */
static shard_t *shard_of(uint64_t h)
{
    return &shards[h & (SHARDS - 1)];
}

static unsigned home_of(uint64_t h)
{
    return (unsigned)(h >> 8) & (SLOTS - 1);
}

int pa_sampleset_add(uint64_t addr)
{
    uint64_t h = pa_sample_hash(addr);
    shard_t *s = shard_of(h);
    unsigned i = home_of(h);
    lock(&s->lock);
    if (s->n >= MAX_FILL) {
        unlock(&s->lock);
        atomic_fetch_add_explicit(&pa_sampleset_full, 1, memory_order_relaxed);
        return -ENOSPC;
    }
    for (;; i = (i + 1) & (SLOTS - 1)) {
        if (s->slot[i] == addr)
            break; /* cannot happen: a live block is allocated once */
        if (s->slot[i] == 0) {
            s->slot[i] = addr;
            atomic_store_explicit(&s->n, s->n + 1, memory_order_relaxed);
            filter_add(addr, 1);
            break;
        }
    }
    unlock(&s->lock);
    return 0;
}

int pa_sampleset_take(uint64_t addr)
{
    uint64_t h = pa_sample_hash(addr);
    shard_t *s = shard_of(h);
    unsigned i = home_of(h), j;
    lock(&s->lock);
    for (;; i = (i + 1) & (SLOTS - 1)) {
        if (s->slot[i] == 0) {
            unlock(&s->lock);
            return 0;
        }
        if (s->slot[i] == addr)
            break;
    }
    /* Backward-shift deletion (Knuth 6.4 algorithm R): move later entries
     * of the run into the hole when their home slot allows it, so lookups
     * may keep stopping at the first empty slot. */
    s->slot[i] = 0;
    for (j = (i + 1) & (SLOTS - 1); s->slot[j]; j = (j + 1) & (SLOTS - 1)) {
        unsigned k = home_of(pa_sample_hash(s->slot[j]));
        /* Move s->slot[j] to the hole i unless its home k lies cyclically
         * in (i, j]. */
        if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
            s->slot[i] = s->slot[j];
            s->slot[j] = 0;
            i = j;
        }
    }
    atomic_store_explicit(&s->n, s->n - 1, memory_order_relaxed);
    filter_add(addr, -1);
    unlock(&s->lock);
    return 1;
}

void pa_sampleset_lock(int take)
{
    if (!shards)
        return;
    for (unsigned i = 0; i < SHARDS; i++) {
        if (take)
            lock(&shards[i].lock);
        else
            unlock(&shards[i].lock);
    }
}

/* A sum over the shards, not a counter of its own: a global counter
 * changed by every sample and free of a sample was one more cache line
 * moving between the CPUs each time; this is read once a stats record. */
uint64_t pa_sampleset_count(void)
{
    uint64_t n = 0;
    if (!shards)
        return 0;
    for (unsigned i = 0; i < SHARDS; i++)
        n += atomic_load_explicit(&shards[i].n, memory_order_relaxed);
    return n;
}
