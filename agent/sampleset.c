/*
 * sampleset.c — the set of live sampled block addresses (sampleset.h says
 * why it has a filter in front).  Shards are open-addressing tables with
 * linear probing and backward-shift deletion, so a table never fills with
 * tombstones however long the program churns; each is guarded by a
 * spinlock held for a few probes.  Memory is mmap'd at init: 32 KiB of
 * filter bits, 256 KiB of counters and 256 x 8 KiB of tables, touched as
 * used.
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
    uint32_t n;
    uint64_t slot[SLOTS]; /* 0 = empty */
} shard_t;

PA_HIDDEN _Atomic uint64_t *pa_sfilter;
PA_HIDDEN _Atomic uint64_t pa_sampleset_full;
static uint8_t *counts; /* per filter bit; under stripe[bit's word & 255] */
static _Atomic int stripe[256];
static shard_t *shards;
static _Atomic uint64_t live;

int pa_sampleset_init(void)
{
    if (shards)
        return 0;
    pa_sfilter = pa_mmap(PA_SFILTER_SIZE / 8);
    counts = pa_mmap(PA_SFILTER_SIZE);
    shards = pa_mmap(sizeof(shard_t) * SHARDS);
    return pa_sfilter && counts && shards ? 0 : -ENOMEM;
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
    _Atomic int *l = &stripe[(b >> 6) & 255];
    uint8_t *c = &counts[b];
    lock(l);
    if (*c != 255) { /* sticky: more blocks share it than it can count */
        *c = (uint8_t)(*c + delta);
        if (*c == 0)
            atomic_fetch_and_explicit(&pa_sfilter[b >> 6], ~bit, memory_order_relaxed);
        else if (delta > 0 && *c == 1)
            atomic_fetch_or_explicit(&pa_sfilter[b >> 6], bit, memory_order_relaxed);
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
            s->n++;
            filter_add(addr, 1);
            atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
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
    s->n--;
    filter_add(addr, -1);
    atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
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

uint64_t pa_sampleset_count(void)
{
    return atomic_load_explicit(&live, memory_order_relaxed);
}
