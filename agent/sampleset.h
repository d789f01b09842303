/*
 * sampleset.h — the addresses of the live sampled blocks (sampled heap
 * mode, PERFAGENT_MALLOC_RATE > 1).  Every free asks whether its pointer
 * was sampled, so the question must cost a few ns and never be answered
 * "yes" falsely (a false yes would emit a FREE for a block the collector
 * never saw, or worse, drop a sampled block's real FREE later).
 *
 * Three layers (sampleset.c):
 *  - a bit filter, PA_SFILTER_SIZE bits (pa_sfilter_bit says which): the
 *    bit is set while at least one live sampled block maps there.  A free
 *    whose bit is 0 was not sampled: a multiply, shifts and one load from
 *    lines the thread's own frees keep in its caches (the byte counters it
 *    replaced, 256 KiB, missed them: ~9 ns a free in mallocbench).  With
 *    L live samples in a 64 MiB region a non-sampled free there passes with
 *    probability about L / 2^16 (test_agent_sampleset: 0.09% with 2000 live
 *    samples over 16 GiB);
 *  - behind it, one-byte counters per filter bit (how many live sampled
 *    blocks hash there, sticky at 255), touched only when a sampled block
 *    comes or goes; a counter and its bit change together under one of 256
 *    stripe locks, so the bit is never 0 while its counter is not;
 *  - the exact set: 256 shards, each an open-addressing table under its
 *    own spinlock, taken only on sampled allocations and on frees that
 *    pass the filter.
 * An address is added after the real allocator returned it and taken
 * before the real free (hook_malloc.c's order), so while it is in the set
 * no other thread can be handed the same address.
 */
#ifndef PA_SAMPLESET_H
#define PA_SAMPLESET_H

#include "internal.h"

/* The filter: 32 segments of 2^16 bits (8 KiB each, 256 KiB in all). */
#define PA_SFILTER_SEG_BITS 16
#define PA_SFILTER_SEGS_LOG 5
#define PA_SFILTER_BITS (PA_SFILTER_SEG_BITS + PA_SFILTER_SEGS_LOG)
#define PA_SFILTER_SIZE (1u << PA_SFILTER_BITS)

/* PA_SFILTER_SIZE bits.  An array, not a pointer to mmap'd memory: free()
 * loads no pointer first, and the array owns its cache lines (a pointer
 * that shared a line with the sampling path's locks was invalidated by
 * every sample of another thread). */
extern PA_HIDDEN _Atomic uint64_t pa_sfilter[PA_SFILTER_SIZE / 64];

static inline uint64_t pa_sample_hash(uint64_t addr)
{
    /* Blocks are 16-byte aligned: the low bits carry nothing. */
    return (addr >> 4) * 0x9E3779B97F4A7C15ull;
}

/* The filter bit of addr: a segment chosen by a hash of the address's
 * 64 MiB region, and in it the address itself in 16-byte units modulo
 * 1 MiB, not a hash.  The low part keeps blocks near each other on the
 * same filter lines, so a free's lookup is as cache-friendly as the
 * program's own access to its heap (a hashed index missed the caches on
 * most frees in mallocbench).  The segment keeps heaps apart: glibc gives
 * each thread's arena 64 MiB-aligned heaps of its own (jemalloc and
 * tcmalloc also carve big regions), so a thread's frees read, and its
 * samples write, lines that other threads' seldom touch.  With one filter
 * for all, every sample's bit change moved a line the other CPU was
 * reading (mallocbench, 2 threads: the free hook cost ~4% of the run; a
 * line moving between this VM's CPUs costs some hundreds of ns). */
static inline uint64_t pa_sfilter_bit(uint64_t addr)
{
    uint64_t seg = ((addr >> 26) * 0x9E3779B97F4A7C15ull) >> (64 - PA_SFILTER_SEGS_LOG);
    return seg << PA_SFILTER_SEG_BITS | ((addr >> 4) & ((1u << PA_SFILTER_SEG_BITS) - 1));
}

/* 0: addr is certainly not a live sampled block. */
static inline __attribute__((always_inline)) int pa_sampleset_maybe(const void *p)
{
    uint64_t b = pa_sfilter_bit((uint64_t)(uintptr_t)p);
    return (int)(atomic_load_explicit(&pa_sfilter[b >> 6], memory_order_relaxed) >> (b & 63)) & 1;
}

PA_HIDDEN int pa_sampleset_init(void);
/* 0, or -ENOSPC when addr's shard is full (the sample is dropped). */
PA_HIDDEN int pa_sampleset_add(uint64_t addr);
/* 1 when addr was in the set (it is removed), else 0. */
PA_HIDDEN int pa_sampleset_take(uint64_t addr);
/* fork(2): take every shard lock before, release after (init.c). */
PA_HIDDEN void pa_sampleset_lock(int take);
/* Live sampled blocks now, and samples dropped because a shard was full. */
PA_HIDDEN uint64_t pa_sampleset_count(void);
extern PA_HIDDEN _Atomic uint64_t pa_sampleset_full;

#endif
