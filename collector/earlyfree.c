/*
 * earlyfree — see earlyfree.h.
 *
 * Usually (rows in ticks order, whole rounds) the store is empty or holds a
 * few frees of blocks allocated before the agent started, so every ALLOC
 * that misses the live map pays one compare here.  Rounds applied in pieces
 * fill it with one entry per freed address for a round or two; the table
 * then grows, and shrinks again once expiry has emptied it, because every
 * expiry that finds old entries scans the whole table.
 */
#include "earlyfree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define EF_MIN_CAP 1024u
#define GONE_BITS 12 /* expired frees remembered: 4096 slots, 64 KiB */

/* Round numbers wrap (a long-lived session sees a round every few ms). */
static inline int round_before(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

typedef struct gone {
    uint64_t addr, ticks;
} gone_t;

struct earlyfree {
    ef_entry_t *slots; /* cap entries, addr 0 = empty */
    size_t cap;        /* power of two */
    size_t mask;
    unsigned shift; /* 64 - log2(cap) */
    size_t count, peak;
    uint64_t max_entries;
    /* When count > 0, no entry is older than this round (a lower bound:
     * touching and removing entries never lowers it), so expire() knows when
     * it has nothing to do without scanning. */
    uint32_t oldest;
    gone_t *gone; /* 1 << GONE_BITS */
    int any_gone; /* spares a cache miss per ALLOC until then */
};

static inline size_t slot_of(const earlyfree_t *ef, uint64_t addr)
{
    return (size_t)((addr * UINT64_C(0x9E3779B97F4A7C15)) >> ef->shift);
}

static void place(earlyfree_t *ef, const ef_entry_t *e)
{
    size_t i = slot_of(ef, e->addr);
    while (ef->slots[i].addr != 0)
        i = (i + 1) & ef->mask;
    ef->slots[i] = *e;
}

/* Moves every entry into a new table of cap slots; on -ENOMEM nothing
 * changed. */
static int rehash(earlyfree_t *ef, size_t cap)
{
    ef_entry_t *old = ef->slots;
    size_t old_cap = ef->cap;
    ef_entry_t *slots = calloc(cap, sizeof(*slots));
    unsigned bits = 0;

    if (!slots)
        return -ENOMEM;
    while (((size_t)1 << bits) < cap)
        bits++;
    ef->slots = slots;
    ef->cap = cap;
    ef->mask = cap - 1;
    ef->shift = 64 - bits;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].addr != 0)
            place(ef, &old[i]);
    free(old);
    return 0;
}

earlyfree_t *earlyfree_new(uint64_t max_entries)
{
    earlyfree_t *ef = calloc(1, sizeof(*ef));
    if (!ef)
        return NULL;
    ef->max_entries = max_entries ? max_entries : EARLYFREE_DEFAULT_MAX;
    ef->gone = calloc((size_t)1 << GONE_BITS, sizeof(*ef->gone));
    if (!ef->gone || rehash(ef, EF_MIN_CAP) < 0) {
        free(ef->gone);
        free(ef);
        return NULL;
    }
    return ef;
}

void earlyfree_free(earlyfree_t *ef)
{
    if (!ef)
        return;
    free(ef->slots);
    free(ef->gone);
    free(ef);
}

ef_entry_t *earlyfree_find(earlyfree_t *ef, uint64_t addr)
{
    if (ef->count == 0)
        return NULL;
    for (size_t i = slot_of(ef, addr);; i = (i + 1) & ef->mask) {
        ef_entry_t *e = &ef->slots[i];
        if (e->addr == addr)
            return e;
        if (e->addr == 0)
            return NULL;
    }
}

void earlyfree_prefetch(const earlyfree_t *ef, uint64_t addr)
{
    if (ef->count)
        __builtin_prefetch(&ef->slots[slot_of(ef, addr)], 1);
}

int earlyfree_add(earlyfree_t *ef, uint64_t addr, uint64_t ticks, int32_t n, uint32_t round)
{
    if (ef->count >= ef->max_entries)
        return -ENOSPC;
    /* load at most 0.7, as livemap: a round applied in pieces holds an
     * entry per freed address, and the table's memory comes on top of the
     * round's buffered rows */
    if (ef->count + 1 > ef->cap / 10 * 7) {
        if (ef->cap > SIZE_MAX / 2 / sizeof(ef_entry_t))
            return -ENOMEM;
        int rc = rehash(ef, ef->cap * 2);
        if (rc < 0)
            return rc;
    }
    place(ef, &(ef_entry_t){.addr = addr, .ticks = ticks, .n = n, .round = round});
    if (ef->count++ == 0 || round_before(round, ef->oldest))
        ef->oldest = round;
    if (ef->count > ef->peak)
        ef->peak = ef->count;
    return 0;
}

void earlyfree_touch(earlyfree_t *ef, ef_entry_t *e, uint32_t round)
{
    (void)ef; /* a later round than before: `oldest` stays a lower bound */
    e->round = round;
}

/* Backward-shift deletion, as in livemap.c. */
static void remove_at(earlyfree_t *ef, size_t hole)
{
    size_t j = hole;
    for (;;) {
        j = (j + 1) & ef->mask;
        uint64_t a = ef->slots[j].addr;
        if (a == 0)
            break;
        size_t home = slot_of(ef, a);
        if (((j - home) & ef->mask) >= ((j - hole) & ef->mask)) {
            ef->slots[hole] = ef->slots[j];
            hole = j;
        }
    }
    memset(&ef->slots[hole], 0, sizeof(ef->slots[hole]));
    ef->count--;
}

void earlyfree_remove(earlyfree_t *ef, ef_entry_t *e)
{
    remove_at(ef, (size_t)(e - ef->slots));
}

static inline gone_t *gone_slot(earlyfree_t *ef, uint64_t addr)
{
    return &ef->gone[(addr * UINT64_C(0x9E3779B97F4A7C15)) >> (64 - GONE_BITS)];
}

void earlyfree_expire(earlyfree_t *ef, uint32_t min_round, ef_expire_fn fn, void *ctx)
{
    uint32_t oldest = 0;
    int kept = 0;

    if (ef->count == 0 || !round_before(ef->oldest, min_round))
        return;
    /* A deletion pulls later entries of the cluster back into slot i, so i
     * is looked at again; entries pulled across the wrap come from slots
     * already scanned (kept), so nothing is skipped. */
    for (size_t i = 0; i < ef->cap;) {
        ef_entry_t *e = &ef->slots[i];
        if (e->addr != 0 && round_before(e->round, min_round)) {
            if (fn)
                fn(ctx, e);
            if (e->n > 0) {
                *gone_slot(ef, e->addr) = (gone_t){e->addr, e->ticks};
                ef->any_gone = 1;
            }
            remove_at(ef, i);
            continue;
        }
        if (e->addr != 0 && (!kept || round_before(e->round, oldest))) {
            oldest = e->round;
            kept = 1;
        }
        i++;
    }
    ef->oldest = oldest;
    /* After a burst the table may be far bigger than what is left: shrink,
     * or every later expiry would scan the burst's table. */
    size_t cap = ef->cap;
    while (cap > EF_MIN_CAP && ef->count * 8 < cap)
        cap /= 2;
    if (cap < ef->cap)
        (void)rehash(ef, cap); /* out of memory: keep the big table */
}

int earlyfree_expired_after(earlyfree_t *ef, uint64_t addr, uint64_t ticks)
{
    if (!ef->any_gone)
        return 0;
    gone_t *g = gone_slot(ef, addr);
    if (g->addr != addr)
        return 0;
    g->addr = 0; /* an ALLOC of addr ends what that free could tell */
    return g->ticks > ticks;
}

size_t earlyfree_count(const earlyfree_t *ef)
{
    return ef->count;
}

size_t earlyfree_peak(const earlyfree_t *ef)
{
    return ef->peak;
}
