/*
 * ring.c — both ends of the agent's rings, the only code that moves their
 * positions outside the inline producer paths of ring.h.
 *
 * A host thread's heap ring (pa_ring_t, in its pa_thread_t) holds heap rows
 * in their wire form; thread.c hands rings out and sender.c drains them, but
 * neither moves a head or a tail itself: the producer's wait when the ring
 * is full, the sender's release of drained bytes (and the wake-up of a
 * producer waiting for them), the resets at hand-out and in a fork child,
 * and the copy of a wrapped range are all here.
 *
 * A typed ring (pa_tring_t) holds variable-length records of any kind:
 * [u32 length][u32 kind][payload, padded to 8 bytes].  A record never wraps:
 * when one does not fit before the end of the buffer the producer writes a
 * pad record (kind PA_TREC_PAD) over the rest and starts again at offset 0,
 * so the consumer always sees a record in one piece and may hand it on
 * without a copy.  The producer never waits: a full typed ring drops the
 * record and counts it.  Producers may run in signal context (the timer
 * sampler, cpu_timer.c): reserve and commit take no lock, allocate nothing
 * and call nothing but memory stores; a ring has one producer at a time.
 * The sender drains typed rings generically (pa_tring_drain): it walks the
 * records and hands each to the sink of its kind.
 */
#include "ring.h"

#include <errno.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* How long a host thread with a full ring waits for the sender, at most,
 * before it drops rows; and how long a sender write may have been going on
 * before the wait is pointless (the output is slow, not the sender). */
#define WAIT_MAX_NS (100 * 1000000ull)
#define WRITE_SLOW_NS (20 * 1000000ull)
#define WAIT_SLICE_NS 1000000L
/* Wait mode (PERFAGENT_WAIT=1, set by `perfagent run`): how long the
 * sender may show no progress at all before a waiting thread gives up. */
#define WAIT_STALL_NS (5000 * 1000000ull)

/* ---- heap rings ----------------------------------------------------------- */

int pa_ring_map(pa_ring_t *r, uint32_t size)
{
    if (r->buf && r->size == size)
        return 0; /* a recycled slot keeps its ring */
    pa_munmap(r->buf, r->size);
    /* Private: a fork child's copy is zeroed (MADV_WIPEONFORK), it holds
     * the parent's rows, which the parent sends. */
    r->buf = pa_mmap_private(size);
    r->size = r->buf ? size : 0;
    return r->buf ? 0 : -ENOMEM;
}

void pa_ring_reset(pa_thread_t *thr, uint64_t pos)
{
    atomic_store_explicit(&thr->ring.head, pos, memory_order_relaxed);
    atomic_store_explicit(&thr->ring.tail, pos, memory_order_relaxed);
    thr->tail_cache = pos;
    thr->drained = pos;
    thr->stall_tail = UINT64_MAX;
    atomic_store_explicit(&thr->waiting, 0, memory_order_relaxed);
    atomic_store_explicit(&thr->wake_sent, 0, memory_order_relaxed);
}

void pa_ring_release(pa_thread_t *thr, uint64_t tail)
{
    /* seq_cst: the Dekker pair with pa_ring_wait (tail, then `waiting`). */
    atomic_store(&thr->ring.tail, tail);
    if (atomic_load(&thr->waiting)) {
        atomic_fetch_add(&thr->space_word, 1);
        syscall(SYS_futex, &thr->space_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
}

void pa_ring_copy(const pa_ring_t *r, uint64_t from, uint8_t *dst, size_t len)
{
    uint32_t mask = r->size - 1, off = (uint32_t)from & mask, first = r->size - off;
    if (len <= first) {
        memcpy(dst, r->buf + off, len);
    } else {
        memcpy(dst, r->buf + off, first);
        memcpy(dst + first, r->buf, len - first);
    }
}

/* A full ring means the sender fell behind.  On a machine whose cores are
 * all busy with the host's threads that is mostly the scheduler's doing:
 * the sender is runnable and waiting for a CPU, or in a file write that is
 * slow because the kernel's copy competes for the same CPUs (tmpfs: 6 MiB
 * writes of 20-30 ms seen with two mallocbench threads).  Dropping then
 * would make exact mode inexact for no good reason, so the thread sleeps
 * (which frees its CPU for the sender) until the sender moves the tail, but
 * never longer than WAIT_MAX_NS, and only once for a given tail: after a
 * wait that ended without room, rows are dropped until the sender shows
 * progress.  A collector is different: one that is slow must not slow the
 * host, so once a socket write has taken WRITE_SLOW_NS the wait ends and
 * rows are dropped and counted, as the README promises.
 *
 * Except a collector that exists only for this program: `perfagent run`
 * sets PERFAGENT_WAIT=1, and its collector (one process, on the same CPUs)
 * is then the output's speed, as a file's write is.  Dropping there lost a
 * third of mallocbench's rows, while waiting costs the program only the
 * collector's pace.  So in wait mode the thread waits with no time limit
 * and through slow writes, as long as the sender makes progress (the tail
 * moves); WAIT_STALL_NS without any progress is a collector that stopped
 * (SIGSTOP, a debugger) or a sender that cannot run, and the thread then
 * drops as above: waiting never becomes a hang.  A collector that is gone
 * ends the sender's write at once (EPIPE) or after its timeout
 * (transport.c: 2 s without a byte taken); the sender then frees the ring
 * by dropping, and from then on the rules for a standalone collector hold. */
PA_HIDDEN _Atomic uint64_t pa_wait_stats[4];

/* PERFAGENT_WAIT, read at the first full ring (not in options.c: it is
 * perfagent run's business, nobody else's).  Racing first readers store
 * the same value. */
static _Atomic int wait_mode = -1;

static int waits_for_collector(void)
{
    int m = atomic_load_explicit(&wait_mode, memory_order_relaxed);
    if (m < 0) {
        const char *v = pa_getenv("PERFAGENT_WAIT");
        m = v && v[0] == '1' && !v[1];
        atomic_store_explicit(&wait_mode, m, memory_order_relaxed);
    }
    return m;
}

int pa_ring_wait(pa_thread_t *thr, uint64_t head)
{
    pa_ring_t *r = &thr->ring;
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire), t0 = 0, seen = tail;
    /* Once a write to the collector has failed (it stopped reading for the
     * transport's timeout, or is gone), wait mode is over for good: a
     * collector that stalls that long would otherwise pace the program at
     * one buffer per timeout. */
    int patient = waits_for_collector() && pa_sender_output_ok();
    if (tail == thr->stall_tail || !pa_sender_running()) {
        atomic_fetch_add(&pa_wait_stats[3], 1);
        return 0;
    }
    atomic_fetch_add(&pa_wait_stats[0], 1);
    for (;;) {
        uint64_t now, ws;
        uint32_t w;
        /* Dekker with the sender (pa_ring_release): it stores the tail then
         * reads `waiting`; we store `waiting` then read the tail. */
        atomic_store(&thr->waiting, 1);
        w = atomic_load(&thr->space_word);
        tail = atomic_load(&r->tail);
        if (head + PA_ROW_MAX - tail <= r->size) {
            atomic_store_explicit(&thr->waiting, 0, memory_order_relaxed);
            thr->tail_cache = tail;
            return 1;
        }
        now = pa_mono_ns();
        if (!t0 || (patient && tail != seen)) {
            t0 = now; /* wait mode: the limit counts from the last progress */
            seen = tail;
        }
        ws = atomic_load_explicit(&pa_sender_write_start, memory_order_relaxed);
        if (now - t0 >= (patient ? WAIT_STALL_NS : WAIT_MAX_NS) || !pa_sender_running() ||
            (!patient && ws && now > ws && now - ws >= WRITE_SLOW_NS &&
             pa_cfg.out_kind != PA_OUT_FILE)) {
            int timed_out = now - t0 >= (patient ? WAIT_STALL_NS : WAIT_MAX_NS);
            atomic_store_explicit(&thr->waiting, 0, memory_order_relaxed);
            atomic_fetch_add(&pa_wait_stats[timed_out ? 1 : 2], 1);
            thr->stall_tail = tail;
            return 0;
        }
        if (!atomic_load_explicit(&thr->wake_sent, memory_order_relaxed)) {
            atomic_store_explicit(&thr->wake_sent, 1, memory_order_relaxed);
            pa_sender_wake();
        }
        struct timespec ts = {0, WAIT_SLICE_NS};
        syscall(SYS_futex, &thr->space_word, FUTEX_WAIT_PRIVATE, w, &ts, NULL, 0);
    }
}

/* ---- typed rings ------------------------------------------------------------ */

/* The header on a page of its own, the bytes after it: only the bytes are
 * wiped in a fork child (MADV_WIPEONFORK), so the child's ring keeps its
 * buf and size and pa_tring_reset makes it usable there.  With the header
 * wiped too, a fork child's size was 0 and every event of the forking
 * thread was dropped (postgres backends: "events lost", their socket
 * traffic missing; tests/e2e/fork_events.sh). */
#define TRING_HEAD 4096
_Static_assert(sizeof(pa_tring_t) <= TRING_HEAD, "ring header fits its page");

pa_tring_t *pa_tring_new(uint32_t size)
{
    pa_tring_t *r;
    if (size < 4096 || (size & (size - 1)))
        return NULL;
    r = pa_mmap(TRING_HEAD + (size_t)size);
    if (!r)
        return NULL;
    r->buf = (uint8_t *)r + TRING_HEAD;
    r->size = size;
#ifdef MADV_WIPEONFORK
    syscall(SYS_madvise, r->buf, (size_t)size, MADV_WIPEONFORK);
#endif
    return r;
}

void pa_tring_free(pa_tring_t *r)
{
    if (r)
        pa_munmap(r, TRING_HEAD + (size_t)r->size);
}

void pa_tring_reset(pa_tring_t *r)
{
    atomic_store_explicit(&r->head, 0, memory_order_relaxed);
    atomic_store_explicit(&r->tail, 0, memory_order_relaxed);
    r->tail_cache = 0;
    atomic_store_explicit(&r->records, 0, memory_order_relaxed);
    atomic_store_explicit(&r->drops, 0, memory_order_relaxed);
    atomic_store_explicit(&r->woke, 0, memory_order_relaxed);
}

int pa_tring_pending(const pa_tring_t *r)
{
    return atomic_load_explicit(&r->head, memory_order_acquire) !=
           atomic_load_explicit(&r->tail, memory_order_relaxed);
}

uint64_t pa_tring_drain(pa_tring_t *r, pa_tring_sink_fn *sink, void *ctx)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed), n = 0;
    uint32_t mask = r->size - 1;
    while (pos < head) {
        uint32_t off = (uint32_t)pos & mask;
        pa_trec_hdr_t h;
        memcpy(&h, r->buf + off, sizeof(h));
        if (h.kind == PA_TREC_PAD) {
            pos += r->size - off;
            continue;
        }
        /* Our own producers wrote it; a length that runs past the buffer
         * would be a bug (or a stray signal into a ring being recycled):
         * drop the rest rather than read out of bounds. */
        if (h.len > r->size - off - sizeof(h) || PA_TREC_SPAN(h.len) > head - pos) {
            pos = head;
            break;
        }
        if (sink(ctx, h.kind, r->buf + off + sizeof(h), h.len) < 0)
            break; /* no room now: the rest stays for the next round */
        pos += PA_TREC_SPAN(h.len);
        n++;
    }
    atomic_store_explicit(&r->tail, pos, memory_order_release);
    atomic_store_explicit(&r->woke, 0, memory_order_relaxed);
    return n;
}
