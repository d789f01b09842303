/*
 * session_heap.c — the live heap of one session: heap rows from decode.c are
 * buffered per drain round (round.c), applied in ticks order to the live map
 * (livemap.c) and to the per-stack, per-thread and process totals that the
 * reports read.  Rules for reused addresses and cross-thread frees are the
 * ORDER RULES of proto/perfagent.proto.
 *
 * THE INVARIANT.  For every address the session keeps the latest event
 * (by ticks) it has seen there while an older row of that address may still
 * arrive: an ALLOC as the address's live-map entry (with its ticks), a FREE
 * as its pending entry in s->early (earlyfree.h), never both.  A block is
 * live at the end iff the latest event of its address is its ALLOC, so the
 * live heap is exact in whatever order the rows of one address arrive, as
 * long as that latest event is not forgotten too soon.
 *
 * WHEN OLDER ROWS CAN STILL ARRIVE.  The agent commits an ALLOC row before
 * malloc returns and a FREE row before the real free, so per address the
 * rows are committed in ticks order; the exception is the FREE half of a
 * realloc, committed after the real call.  It sends rows in drain rounds
 * (agent/sender.c round_once; proto Batch.round_end): every row committed
 * before a round began is sent in it, one thread after another.  So:
 *   - Within a round an address's rows arrive in any order (threads are
 *     drained one after another); a round is buffered and merged by ticks.
 *     A FREE whose ALLOC comes in a later-drained thread of the round (or a
 *     block allocated before the agent started) finds nothing live: it is
 *     held as a pending entry, matched by an older ALLOC, and dropped at the
 *     round_end after the next one (slack for the realloc FREE, and for a
 *     round the agent closed without a round_end).
 *   - Across rounds little older arrives: that realloc FREE, and a row
 *     committed while the sender read the heads (one thread after another):
 *     it misses its round when its thread's head was read just before, and
 *     rows made after it by threads read later are in (test_order
 *     test_late_alloc_next_round).  A FREE that comes late is only stale or
 *     unknown: it never brings a block back.  A late ALLOC would, if a newer
 *     FREE of its address had been applied and forgotten: so a FREE of a
 *     round applied whole that removes a live block leaves a barrier, as in
 *     a piece (below), when it may be newer than such a row: ticks from the
 *     round's round_start_ticks on (Batch; a late row's ticks are not older,
 *     less LATE_MARGIN_NS for a thread preempted in the few ns between
 *     reading them and committing), or, from an agent that does not send
 *     it, within LATE_WINDOW_NS of the round's newest row.
 *   - A round over s->round_rows rows (a slow output makes rounds of
 *     millions of rows) is applied in pieces, before the rows of the threads
 *     drained after the cut have arrived.  While such a piece is applied, a
 *     FREE that removes a live block leaves a barrier (a pending entry with
 *     no unmatched free): an ALLOC older than it, arriving in a later piece,
 *     was freed already.  The last piece, at round_end, needs none.
 * WHAT IS COUNTED.  Frees of unknown blocks are not counted here but from
 * the balance (session.c, session_get_totals): every ALLOC not live is
 * matched by one FREE, whatever order the two came in.  The pending store
 * is bounded: a FREE or a barrier it has no room for is "unplaceable"; an
 * ALLOC older than an unmatched FREE that was already dropped (a lossy
 * check) arrived later than the agent promises and is "late".  Both make
 * the reports carry a WARNING instead of presenting a live heap that may be
 * wrong as exact.
 */
#include "session_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* THE PEAK.  The live heap by stack at the moment live bytes were highest,
 * exactly, without copying every stack at every new maximum (a growing heap
 * makes one per allocation): peak_gen counts the maxima; before a stack's
 * counts change, peak_touch() saves them if they were not saved since the
 * latest maximum.  So at the end a stack's counts at the peak are the saved
 * ones when it changed after the peak (pk[id].gen == peak_gen), else its
 * current ones.  One compare per change, a 40-byte save per stack per peak.
 * A round applied in pieces (session_flush_early) can show a moment with a
 * cross-thread FREE not yet applied: the peak may then include a block that
 * was freed already. */
static void peak_grow(session_t *s, uint32_t id)
{
    size_t cap = s->n_stacks > id ? s->n_stacks : (size_t)id + 1;
    if (cap < 2 * s->cap_pk)
        cap = 2 * s->cap_pk;
    peak_save_t *p = realloc(s->pk, cap * sizeof(*p));
    if (!p) {
        s->peak_lost = 1;
        return;
    }
    /* gen 0 != peak_gen: saved at their first touch (their counts are
     * unchanged since any peak, or zero). */
    memset(p + s->cap_pk, 0, (cap - s->cap_pk) * sizeof(*p));
    s->pk = p;
    s->cap_pk = cap;
}

static inline void peak_touch(session_t *s, uint32_t id)
{
    if (id >= s->cap_pk) {
        peak_grow(s, id);
        if (id >= s->cap_pk)
            return;
    }
    peak_save_t *p = &s->pk[id];
    if (p->gen != s->peak_gen) {
        const rep_stack_t *st = &s->stacks[id];
        p->alloc_bytes = st->alloc_bytes;
        p->alloc_objects = st->alloc_objects;
        p->live_bytes = st->live_bytes;
        p->live_objects = st->live_objects;
        p->gen = s->peak_gen;
    }
}

rep_stack_t *session_peak_stacks(const session_t *s)
{
    if (s->peak_lost || !s->peak_gen)
        return NULL;
    rep_stack_t *v = malloc(s->n_stacks * sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < s->n_stacks; i++) {
        v[i] = s->stacks[i];
        if (i < s->cap_pk && s->pk[i].gen == s->peak_gen) {
            v[i].alloc_bytes = s->pk[i].alloc_bytes;
            v[i].alloc_objects = s->pk[i].alloc_objects;
            v[i].live_bytes = s->pk[i].live_bytes;
            v[i].live_objects = s->pk[i].live_objects;
        }
    }
    return v;
}

static inline void live_add(session_t *s, const live_entry_t *e)
{
    rep_stack_t *st = &s->stacks[e->stack_id];
    peak_touch(s, e->stack_id);
    st->live_bytes += e->weight;
    st->live_objects += e->objects;
    s->t.live_bytes += e->weight;
    s->t.live_objects += e->objects;
    if (s->t.live_bytes > s->peak_bytes) {
        s->peak_bytes = s->t.live_bytes;
        s->peak_objects = s->t.live_objects;
        s->peak_ticks = e->ticks;
        s->peak_gen++; /* this moment is the peak: later changes save first */
    }
}

static inline void live_sub(session_t *s, const live_entry_t *e)
{
    rep_stack_t *st = &s->stacks[e->stack_id];
    peak_touch(s, e->stack_id);
    st->live_bytes -= e->weight;
    st->live_objects -= e->objects;
    s->t.live_bytes -= e->weight;
    s->t.live_objects -= e->objects;
}

/* A SAMPLE stands for weight bytes of allocations of `size` bytes each:
 * weight / size = 1 / P(sampled) objects, the Horvitz-Thompson estimate.
 * Counts are integers (a live block gives back exactly what it added), so
 * the fraction is rounded up with probability equal to it, the coin being
 * a hash of the row: unbiased, where rounding to nearest was not (blocks of
 * 256 KiB..4 MiB at R = 512 KiB have 1/P of 1.0..1.6 and came out +3.5%),
 * and the same on every run of the same stream. */
static inline uint32_t est_objects(const heap_row_t *r)
{
    if (r->kind == ROW_ALLOC || r->size == 0 || r->weight <= r->size)
        return 1;
    uint64_t o = r->weight / r->size, rem = r->weight % r->size;
    uint64_t coin = (r->addr ^ (r->ticks * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
    if ((coin >> 32) % r->size < rem)
        o++;
    return o > UINT32_MAX ? UINT32_MAX : (uint32_t)o;
}

static int heap_alloc(session_t *s, const heap_row_t *r)
{
    uint32_t objects = est_objects(r);
    rep_stack_t *st = &s->stacks[r->stack_id];

    peak_touch(s, r->stack_id); /* before alloc_* change */
    add_sat(&st->alloc_bytes, r->weight);
    add_sat(&st->alloc_objects, objects);
    add_sat(&s->t.bytes_allocated, r->weight);
    add_sat(&s->t.objects_allocated, objects);
    if (r->stack_id == 0)
        s->t.no_stack++;

    live_entry_t *e = livemap_find(s->live, r->addr);
    if (e) {
        /* Proto ORDER rule: an ALLOC of a live address means the old block was
         * freed (its FREE, with older ticks, is still on the way).  If this
         * ALLOC is the older one, it is the block that was freed. */
        if (r->ticks < e->ticks) {
            s->t.allocs_superseded++;
            return 0;
        }
        live_sub(s, e);
        s->t.reuse_implied++;
        e->ticks = r->ticks;
        e->weight = r->weight;
        e->stack_id = r->stack_id;
        e->objects = objects;
        live_add(s, e);
        return 0;
    }
    ef_entry_t *p = earlyfree_find(s->early, r->addr);
    if (p) {
        if (r->ticks < p->ticks) {
            /* Freed before we heard of it: by one of the frees waiting
             * here, or (n <= 0: a barrier) by one still on the way. */
            if (p->n > 0)
                s->t.frees_early++;
            if (p->n > INT32_MIN)
                p->n--;
            return 0;
        }
        /* Newer than every FREE seen here: live again.  ALLOCs that waited
         * for a FREE were freed (the barrier says so). */
        if (p->n < 0)
            s->t.allocs_superseded += (uint64_t)(-(int64_t)p->n);
        earlyfree_remove(s->early, p);
    } else if (earlyfree_expired_after(s->early, r->addr, r->ticks)) {
        /* Its FREE came more than a round earlier: against the agent's
         * promise.  Freed, but the reports must say the order broke. */
        s->ro.rows_late++;
        s->t.frees_early++;
        return 0;
    }
    live_entry_t ne = {.addr = r->addr,
                       .ticks = r->ticks,
                       .weight = r->weight,
                       .stack_id = r->stack_id,
                       .objects = objects};
    int rc = livemap_insert(s->live, &ne);
    if (rc == -ENOSPC)
        return 0; /* counted by the map: live totals are a lower bound now */
    if (rc < 0)
        return rc;
    live_add(s, &ne);
    return 0;
}

/* A pending entry the store could not take (full, or out of memory): the
 * row is counted and the reports warn; the stream goes on. */
static void pend(session_t *s, uint64_t addr, uint64_t ticks, int32_t n)
{
    if (earlyfree_add(s->early, addr, ticks, n, s->round_no) < 0)
        s->ro.unplaceable++;
}

/* Whether the block lived less than SESSION_TEMP_NS: the tick rate comes
 * from the clock pairs (Hello's and the latest AgentStats'); with none yet
 * (a stream without them) the free is counted as untimed. */
static void note_lifetime(session_t *s, const live_entry_t *e, uint64_t free_ticks)
{
    const rep_clock_t *c = &s->clk;
    uint64_t dt = free_ticks - e->ticks;
    if (c->tsc) {
        if (c->n_pairs < 2 || c->pair1_ticks <= c->pair0_ticks || c->pair1_ns <= c->pair0_ns) {
            s->t.temp_untimed++;
            return;
        }
        /* dt ticks < 1 ms  <=>  dt * ns_span < 1 ms * tick_span */
        if ((unsigned __int128)dt * (c->pair1_ns - c->pair0_ns) >=
            (unsigned __int128)SESSION_TEMP_NS * (c->pair1_ticks - c->pair0_ticks))
            return;
    } else if (dt >= SESSION_TEMP_NS) {
        return;
    }
    rep_stack_t *st = &s->stacks[e->stack_id];
    st->temp_bytes += e->weight;
    st->temp_objects += e->objects;
    s->t.temp_bytes += e->weight;
    s->t.temp_objects += e->objects;
}

/* Ticks per `ns` nanoseconds from the clock pairs; 0 when not known yet. */
static uint64_t ns_to_ticks(const session_t *s, uint64_t ns)
{
    const rep_clock_t *c = &s->clk;
    if (!c->tsc)
        return ns;
    if (c->n_pairs < 2 || c->pair1_ticks <= c->pair0_ticks || c->pair1_ns <= c->pair0_ns)
        return 0;
    return (uint64_t)((unsigned __int128)ns * (c->pair1_ticks - c->pair0_ticks) /
                      (c->pair1_ns - c->pair0_ns));
}

/* The oldest ticks a FREE of the round about to be applied whole may have
 * and still be newer than a row of it that comes in the next round (see
 * the top): from such a FREE that removes a live block a barrier is kept.
 * A TSC stream whose tick rate is not known yet: every FREE (0). */
#define LATE_MARGIN_NS 100000ull  /* 100 us */
#define LATE_WINDOW_NS 20000000ull /* 20 ms: agents before round_start_ticks */
static uint64_t late_threshold(const session_t *s)
{
    uint64_t span, from;
    if (s->round_start_ticks) {
        span = ns_to_ticks(s, LATE_MARGIN_NS);
        from = s->round_start_ticks;
    } else {
        span = ns_to_ticks(s, LATE_WINDOW_NS);
        from = s->round_max_ticks;
    }
    return span && from > span ? from - span : 0;
}

static void heap_free(session_t *s, const heap_row_t *r)
{
    s->t.frees++;
    live_entry_t *e = livemap_find(s->live, r->addr);
    if (e) {
        if (r->ticks < e->ticks) {
            s->t.frees_stale++; /* frees an older block at this address */
            return;
        }
        note_lifetime(s, e, r->ticks);
        live_sub(s, e);
        livemap_remove(s->live, e);
        if (s->early_flush || r->ticks >= s->late_from)
            pend(s, r->addr, r->ticks, 0); /* the barrier: see the top */
        return;
    }
    ef_entry_t *p = earlyfree_find(s->early, r->addr);
    if (p) {
        if (p->n < INT32_MAX)
            p->n++; /* unmatched, or the FREE an older ALLOC waited for */
        if (r->ticks > p->ticks)
            p->ticks = r->ticks;
        earlyfree_touch(s->early, p, s->round_no);
        return;
    }
    pend(s, r->addr, r->ticks, 1);
}

static void prefetch_row(void *ctx, const heap_row_t *r)
{
    session_t *s = ctx;
    livemap_prefetch(s->live, r->addr);
    earlyfree_prefetch(s->early, r->addr);
}

/* One row, in ticks order (round.c merged the threads' rows). */
static int apply_row(void *ctx, uint32_t tid, const heap_row_t *r)
{
    session_t *s = ctx;
    rep_thread_t *t;
    int rc;

    if (tid != s->last_tid || !s->last_thread) {
        s->last_thread = session_thread_get(s, tid);
        s->last_tid = tid;
    }
    t = s->last_thread;
    if (!s->clk.has_ticks || r->ticks > s->clk.max_ticks) {
        s->clk.max_ticks = r->ticks;
        s->clk.has_ticks = 1;
    }
    if (r->kind == ROW_FREE) {
        heap_free(s, r);
        if (t)
            t->frees++;
        return 0;
    }
    if (r->kind == ROW_ALLOC)
        s->t.allocs++;
    else
        s->t.samples++;
    if (t) {
        t->allocs++;
        add_sat(&t->bytes, r->weight);
    }
    if ((rc = heap_alloc(s, r)) < 0)
        return rc;
    return 0;
}

static int flush(session_t *s, int early)
{
    int rc;
    s->last_thread = NULL; /* on_thread() may have moved the threads array */
    s->early_flush = early;
    if (!early)
        s->late_from = late_threshold(s); /* once a round, not once a free */
    rc = round_flush(s->round, apply_row, prefetch_row, s);
    s->early_flush = 0;
    if (!early)
        s->round_max_ticks = 0; /* the next round's newest row is its own */
    return rc;
}

/* Applies the buffered round (see round.h); also called before anything
 * that reads the live heap at the end: Goodbye, the end of the stream. */
int session_flush_round(session_t *s)
{
    return flush(s, 0);
}

int session_flush_early(session_t *s)
{
    if (round_rows(s->round) == 0)
        return 0;
    if (!s->split) {
        s->split = 1;
        s->ro.rounds_split++;
    }
    return flush(s, 1);
}

/* Rows of one HeapEvents: buffered until the round ends, or applied as a
 * piece when the round grows past s->round_rows (memory: 40 bytes a row). */
int session_on_heap(void *ctx, uint32_t tid, const heap_row_t *rows, size_t n)
{
    session_t *s = ctx;
    int rc = round_add(s->round, tid, rows, n);
    s->fed = 1;
    for (size_t i = 0; i < n; i++)
        if (rows[i].ticks > s->round_max_ticks)
            s->round_max_ticks = rows[i].ticks;
    if (rc == 0 && round_rows(s->round) > s->round_rows)
        rc = session_flush_early(s);
    return rc;
}

/* A pending entry two round_ends old: every row that could match it has
 * arrived.  ALLOCs that waited for a FREE that never came were freed (the
 * barrier proves it); frees still unmatched were of unknown blocks. */
static void expired(void *ctx, const ef_entry_t *e)
{
    session_t *s = ctx;
    if (e->n < 0)
        s->t.allocs_superseded += (uint64_t)(-(int64_t)e->n);
}

int session_on_round_end(void *ctx, uint64_t round_start_ticks)
{
    session_t *s = ctx;
    int rc;
    s->round_start_ticks = round_start_ticks;
    rc = flush(s, 0);
    s->round_start_ticks = 0;
    s->split = 0;
    s->round_no++;
    s->ro.rounds++;
    earlyfree_expire(s->early, s->round_no - 1, expired, s);
    return rc;
}

/* ---- limits and counters (reorder.h) ---------------------------------------- */

int session_set_reorder_limits(session_t *s, uint64_t round_rows, uint64_t pending_max)
{
    if (s->fed)
        return -EBUSY;
    earlyfree_t *ef = earlyfree_new(pending_max);
    if (!ef)
        return -ENOMEM;
    earlyfree_free(s->early);
    s->early = ef;
    s->pending_max = pending_max ? pending_max : EARLYFREE_DEFAULT_MAX;
    s->round_rows = round_rows ? round_rows : REORDER_DEFAULT_ROUND_ROWS;
    return 0;
}

void session_get_reorder(const session_t *s, reorder_stats_t *out)
{
    *out = s->ro;
    out->round_rows = s->round_rows;
    out->pending_max = s->pending_max;
    out->pending_peak = earlyfree_peak(s->early);
}
