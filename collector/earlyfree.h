/*
 * earlyfree — the collector's memory of FREEs that no live block explains
 * yet, so that rows arriving out of ticks order still give an exact live
 * heap (the rules that use it are in session_heap.c).
 *
 * One entry per address: the latest FREE ticks seen there (a "barrier": an
 * ALLOC older than it was freed already, whenever it arrives) and how many
 * of the frees noted there are still unmatched (n > 0) or how many ALLOCs
 * older than the barrier still wait for their FREE (n < 0).  Keeping the
 * latest event per address, not a list of frees, is what makes the live
 * heap exact in any arrival order: the block at an address is live at the
 * end iff its latest event (by ticks) is an ALLOC.
 *
 * Entries carry the number of the round they were last noted in and are
 * dropped by earlyfree_expire() once the rows that could still match them
 * have all arrived (see session_heap.c).  The store holds at most
 * max_entries addresses: a caller that finds it full counts the row as
 * unplaceable and warns.  Open addressing with linear probing and
 * backward-shift deletion, like livemap.  Not thread-safe.
 */
#ifndef PA_EARLYFREE_H
#define PA_EARLYFREE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ef_entry {
    uint64_t addr;  /* never 0 (decode.c rejects rows at address 0) */
    uint64_t ticks; /* the latest FREE of addr seen                  */
    int32_t n;      /* unmatched frees (> 0) or waiting allocs (< 0) */
    uint32_t round; /* round the entry was last noted in              */
} ef_entry_t;

typedef struct earlyfree earlyfree_t;

/* max_entries 0 = EARLYFREE_DEFAULT_MAX.  NULL when out of memory. */
#define EARLYFREE_DEFAULT_MAX (UINT64_C(1) << 23)
earlyfree_t *earlyfree_new(uint64_t max_entries);
void earlyfree_free(earlyfree_t *ef); /* accepts NULL */

/* The entry of addr or NULL; valid until the next note, remove or expire.
 * Costs one compare when the store is empty (the usual case). */
ef_entry_t *earlyfree_find(earlyfree_t *ef, uint64_t addr);

/* Hint that addr will be looked up soon (see livemap_prefetch); nothing
 * when the store is empty. */
void earlyfree_prefetch(const earlyfree_t *ef, uint64_t addr);

/* A new entry for addr (not present: callers look it up first) with the
 * given ticks, n and round.  0, -ENOSPC when max_entries addresses are held,
 * or -ENOMEM. */
int earlyfree_add(earlyfree_t *ef, uint64_t addr, uint64_t ticks, int32_t n, uint32_t round);

/* Moves e (from earlyfree_find) to round `round`: noted again. */
void earlyfree_touch(earlyfree_t *ef, ef_entry_t *e, uint32_t round);

void earlyfree_remove(earlyfree_t *ef, ef_entry_t *e);

/* Drops every entry last noted before round `min_round` (rounds compare
 * modulo 2^32), calling fn (when not NULL) for each first.  Cheap when no
 * entry is that old. */
typedef void (*ef_expire_fn)(void *ctx, const ef_entry_t *e);
void earlyfree_expire(earlyfree_t *ef, uint32_t min_round, ef_expire_fn fn, void *ctx);

/* Whether an unmatched FREE of addr with ticks later than `ticks` was
 * expired (lossy: the last of each of 4096 hash slots is remembered): an
 * ALLOC that finds one arrived later than the stream's order rules allow.
 * Forgets what it found. */
int earlyfree_expired_after(earlyfree_t *ef, uint64_t addr, uint64_t ticks);

size_t earlyfree_count(const earlyfree_t *ef);
size_t earlyfree_peak(const earlyfree_t *ef); /* most entries held at once */

#endif
