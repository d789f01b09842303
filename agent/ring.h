/*
 * ring.h — the producer side of a thread's ring, inline in the hot path.
 *
 * A row is encoded straight into the ring when PA_ROW_MAX contiguous bytes
 * are free before the wrap point, else into a stack buffer and copied in two
 * parts.  The producer keeps its own copy of the consumer's tail and re-reads
 * the shared one only when the ring looks full, so the cache line the sender
 * writes is not pulled in on every row.
 */
#ifndef PA_RING_H
#define PA_RING_H

/*
 * Two kinds of ring, both owned by this file and ring.c (the only code that
 * moves a head or a tail):
 *
 * Heap rings (pa_ring_t, one per host thread that allocates) hold heap rows
 * only, already in their wire form.  The sender sends a ring range as the
 * `rows` bytes of one HeapEvents record without copying it (encode.h), and
 * walks rows only to cut a backlog or count lost rows (rows.c).  The fixed
 * PA_ROW_MAX reserve keeps this path the few instructions mallocbench
 * measures.
 *
 * Typed rings (pa_tring_t) hold records of any kind and length:
 * [u32 length][u32 kind][payload padded to 8], never split at the wrap (a
 * pad record fills the end instead).  The producer reserves the most it may
 * write, fills the payload in place and commits what it wrote; one encoder
 * per kind writes the payload.  The sender drains a typed ring generically
 * (pa_tring_drain): it walks the records and hands each to the sink of its
 * kind, which either consumes it in the agent (the timer sampler's raw
 * stack copies, cpu_timer.c, become CpuSamples after an unwind and an
 * intern) or passes it on as a Record field (a thread's event ring,
 * event.h: kinds PA_WIRE_EVENT_* of proto/wire.h, packed messages copied
 * into the batch by records.c pa_rec_event; sender.c drains every thread's
 * event ring in each round, with its heap rows).  A typed ring never makes its producer wait:
 * when full, the record is dropped and counted in the ring.  Producers may
 * be signal handlers: nothing here locks, allocates or calls out.
 */

#include "internal.h"

#include <string.h>

/* How far ahead of the head pa_ring_reserve prefetches (bytes). */
#define PA_RING_PREFETCH 1024

typedef struct pa_row {
    uint8_t *start;          /* where the row is being written */
    uint8_t tmp[PA_ROW_MAX]; /* used near the wrap point */
} pa_row_t;

/* Returns where to encode a row of at most PA_ROW_MAX bytes, or NULL (row
 * dropped and counted) when the ring stays full (pa_ring_wait).  After a
 * wait for room, *ticks (unless NULL) is read again (rows.h says why). */
static inline uint8_t *pa_ring_reserve(pa_thread_t *thr, pa_row_t *row, uint64_t *ticks)
{
    pa_ring_t *r = &thr->ring;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t mask = r->size - 1, off = (uint32_t)head & mask;
    if (PA_UNLIKELY(head + PA_ROW_MAX - thr->tail_cache > r->size)) {
        thr->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (head + PA_ROW_MAX - thr->tail_cache > r->size) {
            if (!pa_ring_wait(thr, head)) {
                atomic_store_explicit(&thr->drops_full,
                                      atomic_load_explicit(&thr->drops_full, memory_order_relaxed) + 1,
                                      memory_order_relaxed);
                return NULL;
            }
            if (ticks)
                *ticks = pa_ticks();
        }
    }
    /* Ask for the line ~1 KiB (~128 rows) ahead, for writing: it was last
     * touched a ring lap ago (the sender's copy out of it), and the first
     * row into it stalled on fetching it (perf annotate, exact mode,
     * mallocbench: 8% of pa_heap_free's samples on that one store).  Exact
     * mode to a file, 5 interleaved rounds: 2.10x -> 1.91x (256 B ahead:
     * 1.96x; 2 KiB: as 1 KiB); to /dev/null 1.82x -> 1.80x. */
    __builtin_prefetch(r->buf + ((off + PA_RING_PREFETCH) & mask), 1, 3);
    row->start = PA_LIKELY(off + PA_ROW_MAX <= r->size) ? r->buf + off : row->tmp;
    return row->start;
}

static inline void pa_ring_commit(pa_thread_t *thr, pa_row_t *row, uint8_t *end)
{
    pa_ring_t *r = &thr->ring;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t len = (uint32_t)(end - row->start), mask = r->size - 1, off = (uint32_t)head & mask;
    if (PA_UNLIKELY(row->start == row->tmp)) {
        uint32_t first = r->size - off;
        if (len <= first) {
            memcpy(r->buf + off, row->tmp, len);
        } else {
            memcpy(r->buf + off, row->tmp, first);
            memcpy(r->buf, row->tmp + first, len - first);
        }
    }
    atomic_store_explicit(&r->head, head + len, memory_order_release);
    atomic_store_explicit(&thr->rows, atomic_load_explicit(&thr->rows, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    /* Wake the sender once the ring is a quarter full (once, not per row: a
     * futex wake is a syscall), leaving it three quarters of the ring's time
     * to get scheduled on a busy machine before rows are dropped. */
    if (PA_UNLIKELY(head + len - thr->tail_cache > r->size / 4) &&
        !atomic_load_explicit(&thr->wake_sent, memory_order_relaxed)) {
        thr->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (head + len - thr->tail_cache > r->size / 4) {
            atomic_store_explicit(&thr->wake_sent, 1, memory_order_relaxed);
            pa_sender_wake();
        }
    }
}

/* ---- heap rings: the sender's side and resets (ring.c) ------------------- */
/* Maps a ring of `size` bytes (a power of two) unless r has one of that
 * size already; -ENOMEM. */
PA_HIDDEN int pa_ring_map(pa_ring_t *r, uint32_t size);
/* Empties thr's ring at position pos (a new thread's slot: 0; a fork child:
 * its head). */
PA_HIDDEN void pa_ring_reset(pa_thread_t *thr, uint64_t pos);
/* The sender is done with thr's bytes before `tail`: hand them back and wake
 * the producer if it waits for room (pa_ring_wait). */
PA_HIDDEN void pa_ring_release(pa_thread_t *thr, uint64_t tail);
/* Copies ring bytes [from, from+len) into dst (the ring may wrap). */
PA_HIDDEN void pa_ring_copy(const pa_ring_t *r, uint64_t from, uint8_t *dst, size_t len);

/* ---- typed rings --------------------------------------------------------- */
enum { PA_TREC_PAD = 0 }; /* kind of the filler at the end of the buffer */

typedef struct pa_trec_hdr {
    uint32_t len;  /* payload bytes */
    uint32_t kind; /* PA_TREC_PAD, or the kind's number (its sink knows it) */
} pa_trec_hdr_t;

/* Ring bytes a record of `len` payload bytes takes. */
#define PA_TREC_SPAN(len) (sizeof(pa_trec_hdr_t) + (((uint64_t)(len) + 7) & ~(uint64_t)7))

typedef struct pa_tring {
    uint8_t *buf;
    uint32_t size;             /* power of two, >= 4096 */
    _Atomic uint64_t head;     /* bytes ever committed (producer) */
    char pad1[64];
    _Atomic uint64_t tail;     /* bytes ever drained (sender) */
    char pad2[64];
    uint64_t tail_cache;       /* producer's last view of tail */
    _Atomic uint64_t records;  /* committed; producer-written, sender-read */
    _Atomic uint64_t drops;    /* dropped: the ring was full */
    _Atomic int woke;          /* the producer woke the sender; cleared by a drain */
} pa_tring_t;

/* A reservation: where the record's header is, and its ring position. */
typedef struct pa_trec {
    pa_trec_hdr_t *hdr;
    uint64_t pos;
} pa_trec_t;

/* mmap'd (never the host heap); its bytes are zeroed in a fork child, its
 * header kept (reset it there with pa_tring_reset).  NULL when
 * size is not a power of two >= 4096 or memory is short. */
PA_HIDDEN pa_tring_t *pa_tring_new(uint32_t size);
PA_HIDDEN void pa_tring_free(pa_tring_t *r);
PA_HIDDEN void pa_tring_reset(pa_tring_t *r); /* no producer may run */

/* Room for a record of up to maxlen payload bytes of `kind`: returns where
 * to write the payload, or NULL (dropped and counted) when the ring is full
 * or maxlen is more than a quarter of it. */
static inline void *pa_tring_reserve(pa_tring_t *r, uint32_t kind, uint32_t maxlen, pa_trec_t *rec)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t mask = r->size - 1, off = (uint32_t)head & mask;
    uint64_t span = PA_TREC_SPAN(maxlen), pad = off + span > r->size ? r->size - off : 0;
    if (PA_UNLIKELY(span > r->size / 4))
        goto drop;
    if (PA_UNLIKELY(head + pad + span - r->tail_cache > r->size)) {
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (head + pad + span - r->tail_cache > r->size)
            goto drop;
    }
    if (pad) {
        /* The consumer reads this pad only after the commit that moves head
         * past it (release), so it may be written now. */
        pa_trec_hdr_t *p = (pa_trec_hdr_t *)(r->buf + off);
        p->len = (uint32_t)(pad - sizeof(*p));
        p->kind = PA_TREC_PAD;
        head += pad;
        off = 0;
    }
    rec->hdr = (pa_trec_hdr_t *)(r->buf + off);
    rec->hdr->kind = kind;
    rec->pos = head;
    return rec->hdr + 1;
drop:
    atomic_store_explicit(&r->drops, atomic_load_explicit(&r->drops, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    return NULL;
}

/* Publishes the reserved record with len (<= the reserved maxlen) bytes. */
static inline void pa_tring_commit(pa_tring_t *r, pa_trec_t *rec, uint32_t len)
{
    rec->hdr->len = len;
    atomic_store_explicit(&r->records, atomic_load_explicit(&r->records, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&r->head, rec->pos + PA_TREC_SPAN(len), memory_order_release);
    /* Past half full: wake the sender now rather than at its next round
     * (ROUND_MS), as heap rings do.  pgbench at 45 k queries/s a thread
     * filled 256 KiB between rounds: 8 017 of 924 787 queries dropped.
     * Once per drain; a futex wake is async-signal-safe (the CPU timer
     * sampler commits from its handler). */
    if (PA_UNLIKELY(rec->pos - r->tail_cache > r->size / 2) &&
        !atomic_load_explicit(&r->woke, memory_order_relaxed)) {
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (rec->pos - r->tail_cache > r->size / 2) {
            atomic_store_explicit(&r->woke, 1, memory_order_relaxed);
            pa_sender_wake();
        }
    }
}

/* Sender side.  The sink gets each record's kind and payload (valid during
 * the call); it returns 0 when it took the record, < 0 to stop the drain
 * there (no room in the batch: the record stays for the next round).
 * Returns the records taken. */
typedef int pa_tring_sink_fn(void *ctx, uint32_t kind, const uint8_t *p, uint32_t len);
PA_HIDDEN uint64_t pa_tring_drain(pa_tring_t *r, pa_tring_sink_fn *sink, void *ctx);
PA_HIDDEN int pa_tring_pending(const pa_tring_t *r);

#endif
