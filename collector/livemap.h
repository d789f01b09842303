/*
 * livemap — the live heap of one traced process: block address -> what the
 * collector needs when that block is freed (its stack, weight, estimated
 * object count, and the ticks of its allocation for the cross-thread reorder
 * rule of proto/perfagent.proto).
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones, so heavy malloc/free churn never degrades probe lengths).
 * Address 0 marks an empty slot: decode.c rejects rows with addr 0.
 * Not thread-safe.
 */
#ifndef PA_LIVEMAP_H
#define PA_LIVEMAP_H

#include <stddef.h>
#include <stdint.h>

/* 32 bytes, so two entries share a cache line and a probe rarely straddles. */
typedef struct live_entry {
    uint64_t addr;     /* block address, never 0                          */
    uint64_t ticks;    /* Hello.clock value after the allocator returned   */
    uint64_t weight;   /* bytes the block stands for (= size in exact mode) */
    uint32_t stack_id; /* 0 = no stack                                     */
    uint32_t objects;  /* allocations the block stands for (1 when exact)  */
} live_entry_t;

typedef struct livemap livemap_t;

/* max_entries caps how many blocks are tracked (0 = LIVEMAP_DEFAULT_MAX).
 * Returns NULL when out of memory. */
#define LIVEMAP_DEFAULT_MAX (UINT64_C(1) << 24)
livemap_t *livemap_new(uint64_t max_entries);
void livemap_free(livemap_t *m); /* accepts NULL */

/* The entry for addr, or NULL.  The pointer is valid until the next insert or
 * remove. */
live_entry_t *livemap_find(livemap_t *m, uint64_t addr);

/* Hint that addr will be looked up soon: callers that see rows in batches
 * prefetch a few rows ahead, hiding the cache miss of a big table. */
void livemap_prefetch(const livemap_t *m, uint64_t addr);

/* Insert e (e->addr != 0 and not present: callers look it up first).
 * Returns 0, -ENOSPC when the map holds max_entries blocks (the block is not
 * tracked and livemap_overflows() grows), or -ENOMEM. */
int livemap_insert(livemap_t *m, const live_entry_t *e);

/* Remove the entry `e` points at (from livemap_find). */
void livemap_remove(livemap_t *m, live_entry_t *e);

size_t livemap_count(const livemap_t *m);
uint64_t livemap_overflows(const livemap_t *m);

/* Iterate: start with *pos = 0; returns the next entry or NULL at the end.
 * Order is the table order (not meaningful); do not modify the map meanwhile. */
const live_entry_t *livemap_next(const livemap_t *m, size_t *pos);

#endif
