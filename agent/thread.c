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
#include "event.h"

#include <linux/futex.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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
        if (pa_ring_map(&thr->ring, size) < 0) {
            thr = NULL;
        } else {
            pa_ring_reset(thr, 0);
            if (thr->events)
                pa_tring_reset(thr->events);
            /* A new thread's first row is a sync row: readers know nothing
             * about this tid yet (or knew another thread by it). */
            thr->prev_addr = thr->prev_ticks = 0;
            thr->rows_to_sync = 0;
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
    if (thr->events) {
        atomic_fetch_add_explicit(&pa_events_dropped_gone, atomic_load(&thr->events->drops),
                                  memory_order_relaxed);
        atomic_store_explicit(&thr->events->drops, 0, memory_order_relaxed);
    }
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
            pa_ring_reset(thr, atomic_load_explicit(&thr->ring.head, memory_order_relaxed));
            /* Its events were the parent's to send (the ring's pages are
             * zero here: pa_mmap_private). */
            if (thr->events)
                pa_tring_reset(thr->events);
            /* The child's stream starts empty: its first row must be a sync
             * row (the ring's bytes are gone too, MADV_WIPEONFORK). */
            thr->rows_to_sync = 0;
            thr->tid = pa_tls.tid = pa_gettid();
            thr->rows = thr->drops_full = 0;
            thr->drops_stack_table = thr->unwind_failures = 0;
            thr->name_sent = 0;
        } else {
            thr->rows = thr->drops_full = 0;
            thr->drops_stack_table = thr->unwind_failures = 0;
            /* its events and their drop count were the parent's */
            if (thr->events)
                pa_tring_reset(thr->events);
            atomic_store_explicit(&thr->state, PA_THR_FREE, memory_order_relaxed);
        }
    }
    pa_events_after_fork_child();
    pa_tls.tid = pa_gettid();
}

void pa_thread_resync_all(void)
{
    unsigned n = atomic_load_explicit(&nslots, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        atomic_store_explicit(&slots[i].resync, 1, memory_order_relaxed);
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
