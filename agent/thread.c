/*
 * thread.c — per-thread buffers.  Each host thread that allocates gets a
 * single-producer/single-consumer byte ring (the thread writes heap rows, the
 * sender thread drains them), so the hot path takes no lock and threads never
 * contend (heaptrack's global lock made 2 threads ~11x slower, memory-anchors
 * P9).  Ring memory is mmap'd, bounded by PA_MAX_THREADS x buffer_kb, and
 * recycled: a thread's slot is retired by a pthread key destructor when the
 * thread exits, drained by the sender, then handed to the next new thread.
 */
#include "internal.h"

#include <linux/futex.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* How long a host thread with a full ring waits for the sender, at most,
 * before it drops rows; and how long a sender write may have been going on
 * before the wait is pointless (the output is slow, not the sender). */
#define WAIT_MAX_NS (100 * 1000000ull)
#define WRITE_SLOW_NS (20 * 1000000ull)
#define WAIT_SLICE_NS 1000000L

PA_HIDDEN PA_TLS pa_tls_t pa_tls;

static pa_thread_t *slots;          /* PA_MAX_THREADS entries, mmap'd */
static _Atomic unsigned nslots;     /* high-water mark of used entries */
static _Atomic int slots_lock;      /* serializes slot hand-out (rare) */
static pthread_key_t exit_key;
static int have_key;

pa_thread_t *pa_thread_slot(unsigned i)
{
    return &slots[i];
}

unsigned pa_thread_count(void)
{
    return atomic_load_explicit(&nslots, memory_order_acquire);
}

/* Runs at thread exit (pthread_key_create(3)).  From here on the thread's
 * rows would have no buffer: they are dropped and counted (drops_thread_exit);
 * C++ thread_local destructors run before key destructors in glibc, so those
 * frees are still recorded. */
static void thread_exit(void *arg)
{
    pa_thread_t *thr = arg;
    pa_tls.dead = 1;
    pa_tls.thr = NULL;
    if (thr)
        atomic_store_explicit(&thr->state, PA_THR_RETIRED, memory_order_release);
    pa_sender_wake();
}

int pa_thread_setup(void)
{
    slots = pa_mmap(sizeof(pa_thread_t) * PA_MAX_THREADS);
    if (!slots)
        return -1;
    /* pthread_key_create does not allocate for the first PTHREAD_KEYS_MAX
     * keys' first level (glibc keeps 32 in struct pthread). */
    if (pthread_key_create(&exit_key, thread_exit) == 0)
        have_key = 1;
    return 0;
}

pa_thread_t *pa_thread_acquire(pa_tls_t *t)
{
    pa_thread_t *thr = NULL;
    uint32_t size = 1u << 16;
    unsigned n, i;

    if (!slots)
        return NULL;
    while (size < pa_cfg.buffer_kb * 1024u)
        size <<= 1;
    while (atomic_exchange_explicit(&slots_lock, 1, memory_order_acquire))
        ;
    n = atomic_load_explicit(&nslots, memory_order_relaxed);
    for (i = 0; i < n; i++)
        if (atomic_load_explicit(&slots[i].state, memory_order_acquire) == PA_THR_FREE) {
            thr = &slots[i];
            break;
        }
    if (!thr && n < PA_MAX_THREADS)
        thr = &slots[n];
    if (thr) {
        if (!thr->ring.buf || thr->ring.size != size) {
            pa_munmap(thr->ring.buf, thr->ring.size);
            thr->ring.buf = pa_mmap_private(size);
            thr->ring.size = thr->ring.buf ? size : 0;
        }
        if (!thr->ring.buf) {
            thr = NULL;
        } else {
            atomic_store_explicit(&thr->ring.head, 0, memory_order_relaxed);
            atomic_store_explicit(&thr->ring.tail, 0, memory_order_relaxed);
            thr->tail_cache = 0;
            thr->drained = 0;
            thr->stall_tail = UINT64_MAX;
            atomic_store_explicit(&thr->waiting, 0, memory_order_relaxed);
            /* A new thread's first row is a sync row: readers know nothing
             * about this tid yet (or knew another thread by it). */
            thr->prev_addr = thr->prev_ticks = 0;
            thr->rows_to_sync = 0;
            atomic_store_explicit(&thr->wake_sent, 0, memory_order_relaxed);
            thr->tid = t->tid ? t->tid : (t->tid = pa_gettid());
            thr->rows = thr->drops_full = 0;
            thr->drops_stack_table = thr->unwind_failures = 0;
            thr->name_sent = 0;
            memset(thr->name, 0, sizeof(thr->name));
            atomic_store_explicit(&thr->state, PA_THR_ACTIVE, memory_order_release);
            if (thr == &slots[n])
                atomic_store_explicit(&nslots, n + 1, memory_order_release);
        }
    }
    atomic_store_explicit(&slots_lock, 0, memory_order_release);
    if (!thr) {
        atomic_fetch_add_explicit(&pa_stats.drops_no_buffer, 1, memory_order_relaxed);
        return NULL;
    }
    atomic_fetch_add_explicit(&pa_stats.threads, 1, memory_order_relaxed);
    t->thr = thr;
    /* glibc's pthread_setspecific allocates only for keys >= 32. */
    if (have_key)
        pthread_setspecific(exit_key, thr);
    return thr;
}

/* Sender: a retired slot is drained; fold its counters in and recycle it. */
void pa_thread_free_slot(pa_thread_t *thr)
{
    atomic_fetch_add_explicit(&pa_stats.rows_retired, thr->rows, memory_order_relaxed);
    atomic_fetch_add_explicit(&pa_stats.drops_full_retired, thr->drops_full,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&pa_stats.drops_stack_table, thr->drops_stack_table,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&pa_stats.unwind_failures, thr->unwind_failures,
                              memory_order_relaxed);
    thr->rows = thr->drops_full = 0;
    thr->drops_stack_table = thr->unwind_failures = 0;
    atomic_store_explicit(&thr->state, PA_THR_FREE, memory_order_release);
}

/* Only the forking thread survives in the child: every other slot belongs to
 * a thread that does not exist here, and the rows still in our own ring were
 * made by the parent and will be sent by it. */
void pa_thread_after_fork_child(void)
{
    unsigned n = atomic_load_explicit(&nslots, memory_order_relaxed);
    for (unsigned i = 0; i < n; i++) {
        pa_thread_t *thr = &slots[i];
        if (thr == pa_tls.thr) {
            uint64_t h = atomic_load_explicit(&thr->ring.head, memory_order_relaxed);
            atomic_store_explicit(&thr->ring.tail, h, memory_order_relaxed);
            thr->tail_cache = h;
            thr->drained = h;
            thr->stall_tail = UINT64_MAX;
            atomic_store_explicit(&thr->waiting, 0, memory_order_relaxed);
            /* The child's stream starts empty: its first row must be a sync
             * row (the ring's bytes are gone too, MADV_WIPEONFORK). */
            thr->rows_to_sync = 0;
            thr->tid = pa_tls.tid = pa_gettid();
            thr->rows = thr->drops_full = 0;
            thr->drops_stack_table = thr->unwind_failures = 0;
            thr->name_sent = 0;
            atomic_store_explicit(&thr->wake_sent, 0, memory_order_relaxed);
        } else {
            thr->rows = thr->drops_full = 0;
            thr->drops_stack_table = thr->unwind_failures = 0;
            atomic_store_explicit(&thr->state, PA_THR_FREE, memory_order_relaxed);
        }
    }
    pa_tls.tid = pa_gettid();
}

/* fork(2) prepare/parent/child, like pa_modules_lock(). */
void pa_thread_lock(int take)
{
    if (take)
        while (atomic_exchange_explicit(&slots_lock, 1, memory_order_acquire))
            ;
    else
        atomic_store_explicit(&slots_lock, 0, memory_order_release);
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
 * rows are dropped and counted, as the README promises. */
PA_HIDDEN _Atomic uint64_t pa_wait_stats[4];
int pa_ring_wait(pa_thread_t *thr, uint64_t head)
{
    pa_ring_t *r = &thr->ring;
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire), t0 = 0;
    if (tail == thr->stall_tail || !pa_sender_running()) {
        atomic_fetch_add(&pa_wait_stats[3], 1);
        return 0;
    }
    atomic_fetch_add(&pa_wait_stats[0], 1);
    for (;;) {
        uint64_t now, ws;
        uint32_t w;
        /* Dekker with the sender (pa_sender_made_room): it stores the tail
         * then reads `waiting`; we store `waiting` then read the tail. */
        atomic_store(&thr->waiting, 1);
        w = atomic_load(&thr->space_word);
        tail = atomic_load(&r->tail);
        if (head + PA_ROW_MAX - tail <= r->size) {
            atomic_store_explicit(&thr->waiting, 0, memory_order_relaxed);
            thr->tail_cache = tail;
            return 1;
        }
        now = pa_mono_ns();
        if (!t0)
            t0 = now;
        ws = atomic_load_explicit(&pa_sender_write_start, memory_order_relaxed);
        if (now - t0 >= WAIT_MAX_NS || !pa_sender_running() ||
            (ws && now > ws && now - ws >= WRITE_SLOW_NS && pa_cfg.out_kind != PA_OUT_FILE)) {
            atomic_store_explicit(&thr->waiting, 0, memory_order_relaxed);
            atomic_fetch_add(&pa_wait_stats[now - t0 >= WAIT_MAX_NS ? 1 : 2], 1);
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
