/*
 * session_heap.c — the live heap of one session: heap rows from decode.c are
 * buffered per drain round (round.c), applied in ticks order to the live map
 * (livemap.c) and to the per-stack, per-thread and process totals that the
 * reports read.  Rules for reused addresses and cross-thread frees are the
 * ORDER RULES of proto/perfagent.proto.
 */
#include "session_int.h"

#include <errno.h>

static inline void live_add(session_t *s, const live_entry_t *e)
{
    rep_stack_t *st = &s->stacks[e->stack_id];
    st->live_bytes += e->weight;
    st->live_objects += e->objects;
    s->t.live_bytes += e->weight;
    s->t.live_objects += e->objects;
}

static inline void live_sub(session_t *s, const live_entry_t *e)
{
    rep_stack_t *st = &s->stacks[e->stack_id];
    st->live_bytes -= e->weight;
    st->live_objects -= e->objects;
    s->t.live_bytes -= e->weight;
    s->t.live_objects -= e->objects;
}

/* A SAMPLE stands for weight bytes of allocations of about `size` bytes each:
 * weight / size objects, rounded, at least the one we saw. */
static inline uint32_t est_objects(const heap_row_t *r)
{
    if (r->kind == ROW_ALLOC || r->size == 0 || r->weight <= r->size)
        return 1;
    uint64_t o = (r->weight + r->size / 2) / r->size;
    return o > UINT32_MAX ? UINT32_MAX : (uint32_t)o;
}

static int heap_alloc(session_t *s, const heap_row_t *r)
{
    uint32_t objects = est_objects(r);
    rep_stack_t *st = &s->stacks[r->stack_id];

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
    if (livemap_take_free(s->live, r->addr, r->ticks)) {
        /* Freed (by another thread) before we heard of it. */
        s->t.frees_early++;
        s->t.frees_unknown--;
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

static void heap_free(session_t *s, const heap_row_t *r)
{
    s->t.frees++;
    live_entry_t *e = livemap_find(s->live, r->addr);
    if (e) {
        if (r->ticks < e->ticks) {
            s->t.frees_stale++; /* frees an older block at this address */
            return;
        }
        live_sub(s, e);
        livemap_remove(s->live, e);
        return;
    }
    s->t.frees_unknown++;
    livemap_note_free(s->live, r->addr, r->ticks);
}

static void prefetch_row(void *ctx, const heap_row_t *r)
{
    session_t *s = ctx;
    livemap_prefetch(s->live, r->addr);
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

/* Applies the buffered round (see round.h); also called before anything
 * that reads the live heap: snapshots, Goodbye, the end of the stream. */
int session_flush_round(session_t *s)
{
    s->last_thread = NULL; /* on_thread() may have moved the threads array */
    return round_flush(s->round, apply_row, prefetch_row, s);
}

/* Rows of one HeapEvents: buffered until the round ends.  A round larger
 * than ROUND_MAX_ROWS (a huge burst) is applied early: still correct
 * per thread, and the livemap's early-free cache covers most of the rest. */
#define ROUND_MAX_ROWS (4u << 20)

int session_on_heap(void *ctx, uint32_t tid, const heap_row_t *rows, size_t n)
{
    session_t *s = ctx;
    int rc = round_add(s->round, tid, rows, n);
    if (rc == 0 && round_rows(s->round) > ROUND_MAX_ROWS)
        rc = session_flush_round(s);
    return rc;
}

int session_on_round_end(void *ctx)
{
    return session_flush_round(ctx);
}
