/*
 * sender.c — the agent's one background thread.  It drains every thread's
 * ring, declares modules and stacks before the rows that use them, frames
 * Batches and writes them to the output (transport.c).  It is the only code
 * that touches the output; host threads only ever write to their own ring.
 * The records it adds are built by records.c; heap rows go out as the ring
 * bytes they are (rows.h, encode.h).
 *
 * The thread blocks all signals (the host may route signals to a particular
 * thread; heaptrack's timer thread does the same, KDE bug 378494) and holds
 * the reentrancy guard for its whole life, so it never records itself.
 *
 * It wakes every ROUND_MS (up to ROUND_MS_IDLE_MAX while the rings stay
 * quiet), when a ring fills past its wake mark (ring.h), or when asked to
 * stop.  Once every host thread has ended it ends the process itself, as
 * glibc would have (lastthread.c).  With no output (collector gone, backing
 * off) it still drains rings and counts the rows it had to drop, so host
 * threads never see full rings for long.
 */
#include "control.h"
#include "crash.h"
#include "encode.h"
#include "event.h"
#include "fdtable.h"
#include "internal.h"
#include "lastthread.h"
#include "records.h"
#include "rows.h"
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define ROUND_MS 20
/* A round that found the rings quiet (the wait ran out: no ring got a
 * quarter full, ring.h) lets the next wait double, up to this: an idle or
 * lightly loaded program is woken 10 times a second instead of 50.  Every
 * wakeup of ours takes a CPU from the program's threads (redis-benchmark's
 * client on this 2-CPU VM: the sender was 1.15% of its samples at 20 ms).
 * A ring filling wakes us at once and the period drops back to ROUND_MS. */
#define ROUND_MS_IDLE_MAX 100
/* AgentStats with a ClockSync: the stream's heartbeat.  A stream cut by
 * SIGKILL ends at the last one, so this is how far off its duration and
 * "last heard from" can be (issue 16). */
#define STATS_EVERY_NS 250000000ull
/* How long the sender waits for a stack id a preempted host thread took
 * but has not published, before declaring it empty (pa_rec_stacks_upto). */
#define STACK_WAIT_NS 200000000ull

PA_HIDDEN _Atomic int pa_need_sender;
PA_HIDDEN _Atomic uint32_t pa_sender_tid;

static pa_enc_t enc;
static int enc_ok;
static pa_transport_t tr = {.fd = -1};
static _Atomic uint32_t wake_word;
static _Atomic uint32_t done_word;
static _Atomic uint32_t first_round_word; /* 1 once the output was tried */
static _Atomic int stop_req;
static _Atomic int running;
static PA_TLS int on_sender;   /* this thread is the sender */
static sigset_t host_mask;     /* signal mask of the thread that started us */
PA_HIDDEN _Atomic uint64_t pa_sender_write_start;
/* pa_sender_main_ending: asked; and the sender on its own table let go. */
static _Atomic int reshare_req;
static _Atomic uint32_t handed_word;

int pa_sender_running(void)
{
    return atomic_load_explicit(&running, memory_order_relaxed) &&
           !atomic_load_explicit(&stop_req, memory_order_relaxed);
}

static int exit_code = -1;
/* Sender self-timing, printed at exit with PERFAGENT_LOG=debug: how long a
 * round took and how long the sender was away between rounds are what
 * decide whether rings overflow. */
static uint64_t dbg_rounds, dbg_max_round_ns, dbg_max_round_cpu_ns, dbg_max_gap_ns, dbg_write_ns, dbg_max_write_ns;
static int stream_open;        /* magic + Hello written on the current output */
/* The magic goes out with the stream's first frame, in one writev: a
 * process killed between the two would leave the collector a stream with
 * no Hello, a report of nobody (real_python under .ci/run, once). */
static int magic_due;
static unsigned stream_gen;    /* tr.streams when it was begun */
static uint32_t stacks_sent;   /* highest stack id declared to this stream */
static uint64_t last_stats_ns;
static uint64_t markers_sent;  /* SnapshotMarker ids on this stream: 1, 2, ... */
static int round_complete;     /* the last round sent every row before it began */
static volatile int sender_idle; /* in the wait between rounds (crash.c may flush then) */
static void crash_round(void);


void pa_sender_wake(void)
{
    atomic_fetch_add_explicit(&wake_word, 1, memory_order_release);
    pa_futex(&wake_word, FUTEX_WAKE_PRIVATE, 1, NULL);
}

/* ---- the batch ------------------------------------------------------------ */

static int flush_batch(void);
static int flush_batch_ex(int round_end);
/* pa_ticks() just before this round read the heads (Batch.round_start_ticks). */
static uint64_t round_start_ticks;

int pa_sender_room(pa_enc_t *e, size_t bytes)
{
    if (pa_enc_fits(e, bytes))
        return 0;
    flush_batch();
    return pa_enc_fits(e, bytes) ? 0 : -1;
}

/* CPU samples: read the perf rings (interning new stacks), declare those
 * stacks, then the samples.  With no output they are only counted. */
static void cpu_round(int final)
{
    if (!pa_cfg.cpu_hz)
        return;
    if (pa_cpu_drain() == 0 && !final)
        return;
    if (!stream_open) {
        pa_cpu_emit(NULL, NULL, final);
        return;
    }
    /* A sample's stack may sit behind an id a host thread is still
     * publishing (seen in a fork child under cpu_fire, and on a loaded
     * machine in CPython's test_subprocess: "stack id not defined"). */
    pa_rec_stacks_upto(&enc, &stacks_sent, pa_cpu_max_sid(), STACK_WAIT_NS);
    pa_cpu_emit(pa_rec_cpu, &enc, final);
}


static void count_rows(void *ctx, const uint8_t *rows, size_t len)
{
    pa_rows_walk(rows, len, SIZE_MAX, ctx);
}

/* Counts the heap rows of the current batch as lost to the output. */
static void count_lost_rows(void)
{
    uint64_t lost = 0;
    pa_enc_each_rows(&enc, count_rows, &lost);
    atomic_fetch_add_explicit(&pa_stats.drops_output, lost, memory_order_relaxed);
}

static int output_failed;
/* A fork child with CPU sampling starts its sender at once (no row may ever
 * come to start it), but opens its output only when it has something to
 * say: a child that just execs (system(3), a shell) leaves no stream, as
 * with heap recording alone.  ever_opened: a stream was started. */
static int lazy_output, ever_opened;

int pa_sender_output_ok(void)
{
    return !output_failed && !tr.dead && ever_opened;
}

static int events_pending(pa_thread_t *thr)
{
    pa_tring_t *r = __atomic_load_n(&thr->events, __ATOMIC_ACQUIRE);
    return r && pa_tring_pending(r);
}

/* No output: an event is lost (counted with the ring's drops). */
static int lose_event(void *ctx, uint32_t kind, const uint8_t *p, uint32_t len)
{
    pa_tring_t *r = ctx;
    (void)kind, (void)p, (void)len;
    atomic_fetch_add_explicit(&r->drops, 1, memory_order_relaxed);
    return 0;
}

/* The thread's typed events go on as they are (records.c pa_rec_event). */
static void drain_events(pa_thread_t *thr)
{
    pa_tring_t *r = __atomic_load_n(&thr->events, __ATOMIC_ACQUIRE);
    if (!r)
        return;
    if (stream_open)
        pa_tring_drain(r, pa_rec_event, &enc);
    else
        pa_tring_drain(r, lose_event, r);
}

static int something_to_say(void)
{
    for (unsigned i = 0, n = pa_thread_count(); i < n; i++) {
        pa_thread_t *thr = pa_thread_slot(i);
        if (atomic_load_explicit(&thr->state, memory_order_acquire) != PA_THR_FREE &&
            (atomic_load_explicit(&thr->ring.head, memory_order_acquire) != thr->drained ||
             events_pending(thr)))
            return 1;
    }
    return pa_cpu_pending();
}

/* The batch's rows are written (or lost and counted): give their ring space
 * back to the host threads. */
static void release_rows(void)
{
    for (unsigned i = 0; i < enc.nheap; i++) {
        pa_thread_t *thr = enc.heaps[i].thr;
        pa_ring_release(thr, enc.heaps[i].from + enc.heaps[i].len);
    }
    enc.nheap = 0;
}

static int flush_batch_ex(int round_end)
{
    size_t len;
    int r = 0;
    if (!enc.nrec)
        return 0;
    enc.round_end = round_end;
    enc.round_start_ticks = round_end ? round_start_ticks : 0;
    len = pa_enc_frame(&enc);
    if (magic_due && len)
        len = pa_enc_prepend(&enc, PA_WIRE_MAGIC, PA_WIRE_MAGIC_LEN, len);
    uint64_t w0 = pa_mono_ns();
    atomic_store_explicit(&pa_sender_write_start, w0, memory_order_relaxed);
    int werr = stream_open && len ? pa_transport_writev(&tr, enc.iov, enc.niov) : 0;
    atomic_store_explicit(&pa_sender_write_start, 0, memory_order_relaxed);
    uint64_t wt = pa_mono_ns() - w0;
    dbg_write_ns += wt;
    if (wt > dbg_max_write_ns)
        dbg_max_write_ns = wt;
    if (!stream_open || werr < 0) {
        count_lost_rows();
        stream_open = 0;
        /* -ESTALE: the program took the output and only a new one could be
         * had (transport.c): the next round begins a stream on it. */
        if (werr != -ESTALE)
            output_failed = 1;
        r = -1;
    } else {
        if (len)
            magic_due = 0;
        atomic_fetch_add_explicit(&pa_stats.bytes_sent, len, memory_order_relaxed);
    }
    release_rows();
    pa_enc_reset(&enc);
    return r;
}

static int flush_batch(void)
{
    return flush_batch_ex(0);
}

/* A new output (first open, reconnect, fork child): magic, Hello, and every
 * module and stack again, since the reader starts from nothing. */
static void start_stream(void)
{
    if (enc.nheap) { /* cannot happen: no rows are taken while closed */
        count_lost_rows();
        release_rows();
    }
    pa_enc_reset(&enc);
    enc.seq = 0;
    magic_due = 1;
    stream_open = 1;
    stream_gen = tr.streams;
    ever_opened = 1;
    stacks_sent = 0;
    markers_sent = 0;
    pa_modules_resend();
    for (unsigned i = 0, n = pa_thread_count(); i < n; i++)
        pa_thread_slot(i)->name_sent = 0;
    pa_rec_hello(&enc);
}

static void drain_thread(pa_thread_t *thr, uint64_t head)
{
    pa_ring_t *ring = &thr->ring;
    uint64_t tail = thr->drained;
    while (tail < head) {
        size_t avail = head - tail, take = avail < PA_ROWS_CHUNK ? avail : PA_ROWS_CHUNK;
        uint64_t nrows = 0;
        if (pa_sender_room(&enc, take + 64) < 0)
            return;
        if (take < avail || !stream_open) {
            /* Where to cut (or, with no output, how many rows are lost):
             * walk a copy, since the rows may wrap around the ring. */
            uint8_t *dst = pa_enc_alloc_raw(&enc, take);
            size_t whole;
            if (!dst)
                return;
            pa_ring_copy(ring, tail, dst, take);
            whole = pa_rows_walk(dst, take, take, &nrows);
            enc.used -= (take + 15) & ~(size_t)15;
            enc.payload -= (take + 15) & ~(size_t)15;
            if (!whole)
                return; /* cannot happen: rows are far shorter than a chunk */
            take = whole;
        }
        if (stream_open) {
            if (pa_enc_heap(&enc, thr, tail, take) < 0)
                return; /* stays in the ring for the next round */
            thr->drained = tail += take;
            continue;
        }
        /* No output: the rows are lost; nothing in the batch points at
         * them, so their space goes back now. */
        atomic_fetch_add_explicit(&pa_stats.drops_output, nrows, memory_order_relaxed);
        thr->drained = tail += take;
        pa_ring_release(thr, tail);
    }
}

/* One pass over everything; returns whether any ring had rows. */
static int round_once(int final)
{
    static uint64_t heads[PA_MAX_THREADS];
    static int states[PA_MAX_THREADS];
    static pa_thread_t *gone[PA_MAX_THREADS];
    unsigned n = pa_thread_count(), ngone = 0;
    int any = 0, complete = 1;

    if (pa_cfg.cpu_hz)
        pa_cpu_find_threads();
    if (lazy_output) {
        round_complete = 1; /* nothing was made: nothing to wait for */
        if (!something_to_say())
            return 0;
        lazy_output = 0;
    }
    /* Every round, not only when closed: an output the program took (a
     * daemon's closefrom, issue 16) is noticed and reopened at once, even
     * with nothing to write. */
    int ready = pa_transport_ready(&tr);
    if (stream_open && (!ready || tr.streams != stream_gen))
        stream_open = 0; /* the output could not be resumed: a new stream */
    if (!stream_open && ready)
        start_stream();
    /* Heads first: every stack a visible row names is published by now.
     * Read one after another: a row committed meanwhile may miss this round
     * while a later one of a thread read after it is in; its ticks are at
     * least this, less a margin (rows.h pa_row_ticks), which the round_end
     * tells. */
    round_start_ticks = pa_ticks();
#if defined(__x86_64__)
    /* rdtsc is not ordered with later loads: lfence waits for it to
     * complete first (Intel SDM, RDTSC), so the heads are read after. */
    __asm__ __volatile__("lfence" ::: "memory");
#endif
    for (unsigned i = 0; i < n; i++) {
        pa_thread_t *thr = pa_thread_slot(i);
        states[i] = atomic_load_explicit(&thr->state, memory_order_acquire);
        heads[i] = states[i] == PA_THR_FREE
                       ? 0
                       : atomic_load_explicit(&thr->ring.head, memory_order_acquire);
    }
    if (stream_open) {
        pa_rec_modules(&enc);
        /* Every id a visible row may name was taken by now; one taken
         * before it may still be unpublished (records.c says why). */
        pa_rec_stacks_upto(&enc, &stacks_sent, pa_stacks_ids_taken(), STACK_WAIT_NS);
    }
    for (unsigned i = 0; i < n; i++) {
        pa_thread_t *thr = pa_thread_slot(i);
        if (states[i] == PA_THR_FREE)
            continue;
        if (stream_open && !thr->name_sent)
            pa_rec_thread(&enc, thr, 0);
        if (heads[i] != thr->drained)
            any = 1;
        drain_thread(thr, heads[i]);
        if (events_pending(thr))
            any = 1;
        drain_events(thr);
        atomic_store_explicit(&thr->wake_sent, 0, memory_order_relaxed);
        if (states[i] == PA_THR_RETIRED && thr->drained == heads[i] && !events_pending(thr)) {
            if (stream_open)
                pa_rec_thread(&enc, thr, 1); /* after its last rows */
            gone[ngone++] = thr; /* freed once the batch no longer needs its ring */
        }
    }
    cpu_round(final);
    if (stream_open && (final || pa_mono_ns() - last_stats_ns >= STATS_EVERY_NS))
        last_stats_ns = pa_rec_stats(&enc);
    /* THE ROUND GUARANTEE (what Batch.round_end promises; the collector's
     * side is collector/session_heap.c "THE INVARIANT").  Kept by three
     * things together:
     *  - ring.h: a row is committed (head moved, release) only once it is
     *    whole, and a thread's rows are committed in the order it made them;
     *  - thread.c: a slot is RETIRED after its thread's last row and FREE
     *    (reusable) only once the sender has drained and written all of it,
     *    below, after this round's flush; a new thread takes a FREE slot or
     *    a new one, so no round ever drains a slot whose head it did not
     *    snapshot, and a slot's rows never mix two threads;
     *  - here: every slot's head is read first, then each slot is drained
     *    up to that head, and round_end is set only when all of them were.
     * So at a round_end every row committed before the round began has been
     * sent.  Rows committed during the round (a thread that started after
     * the snapshot, a thread that went on allocating) go in the next round;
     * a slow output only makes rounds longer and larger, never out of
     * order — a round of millions of rows is the collector's to apply in
     * pieces (it was, wrongly, before the pending-free store: issue 11). */
    for (unsigned i = 0; i < n; i++)
        if (states[i] != PA_THR_FREE && pa_thread_slot(i)->drained < heads[i])
            complete = 0;
    flush_batch_ex(complete && enc.nrec);
    round_complete = complete;
    for (unsigned i = 0; i < ngone; i++)
        pa_thread_free_slot(gone[i]);
    return any;
}

/* A SnapshotMarker for what pa_ctl_poll() asked (want: PA_CTL_WANT_*), once
 * a round has sent every row committed before the request was read (THE
 * ROUND GUARANTEE above: the marker then follows all of them in the stream,
 * in a batch of its own after the round's round_end).  Returns the bits
 * still wanted. */
static int send_marker(int want, uint64_t now)
{
    if (!want || !round_complete)
        return want;
    if (!stream_open) {
        pa_ctl_marker_done(0, PA_CTL_LOST,
                           output_failed ? "the agent has lost its output (see its log)"
                                         : "the agent has no output open yet",
                           now);
        return 0;
    }
    uint64_t id = ++markers_sent;
    /* A ClockSync pair now: a collector converting TSC ticks needs two, and
     * the marker's time is wanted when it arrives, not at the end. */
    last_stats_ns = pa_rec_stats(&enc);
    pa_rec_snapshot(&enc, id, want & PA_CTL_WANT_REQUEST ? "request" : "interval");
    int r = flush_batch();
    pa_ctl_marker_done(id, r < 0 ? PA_CTL_LOST : pa_cfg.out_kind == PA_OUT_FILE ? PA_CTL_TO_FILE
                                                                             : PA_CTL_TO_COLLECTOR,
                       "writing the marker failed", now);
    return 0;
}

static void finish_stream(void)
{
    /* Drain until the rings are empty: rows made while we flushed count too
     * (bounded: recording is already off). */
    for (int i = 0; i < 64 && round_once(1); i++)
        ;
    if (stream_open) {
        pa_rec_goodbye(&enc, exit_code);
        flush_batch();
    }
    pa_transport_close(&tr);
}


/* ---- the last host thread (lastthread.c says how it is detected) ------- */
static void debug_report(void);

static __attribute__((noreturn)) void last_thread_exit(void)
{
    pa_log(PA_LOG_DEBUG, "every host thread has ended: exit(0), as glibc would",
           (const char *)NULL);
    pa_unblock_fatal_signals(&host_mask);
    /* Nobody is left to drain rings while we run exit: a host thread's
     * ring wait (pa_sender_running) must not wait for us. */
    atomic_store_explicit(&stop_req, 1, memory_order_release);
    /* From here this thread stands in for the host's last thread: what its
     * atexit handlers and destructors allocate and free is the host's. */
    pa_tls.guard = 0;
    exit(0);
}

static void sender_end(void)
{
    finish_stream();
    pa_ctl_close();
    if (pa_cfg.loglevel >= PA_LOG_DEBUG)
        debug_report();
    /* Its own table holds nothing more of ours: a sender started after a
     * failed exec (pa_sender_restart) decides anew, and a fork child must
     * not take the numbers for a private table's (pa_transport_after_fork). */
    pa_fds_leave();
    atomic_store_explicit(&done_word, 1, memory_order_release);
    pa_futex(&done_word, FUTEX_WAKE_PRIVATE, 1, NULL);
}


static void debug_report(void)
{
    pa_log_num(PA_LOG_DEBUG, "ring waits: ", pa_wait_stats[0], "");
    pa_log_num(PA_LOG_DEBUG, "ring waits timed out: ", pa_wait_stats[1], "");
    pa_log_num(PA_LOG_DEBUG, "ring waits cut by a slow write: ", pa_wait_stats[2], "");
    pa_log_num(PA_LOG_DEBUG, "ring full, no wait: ", pa_wait_stats[3], "");
    char a[24], b[24], c[24], d[24], e[24], f[24];
    pa_u64toa(dbg_rounds, a);
    pa_u64toa(dbg_max_round_ns / 1000, b);
    pa_u64toa(dbg_max_gap_ns / 1000, c);
    pa_u64toa(dbg_write_ns / 1000000, d);
    pa_u64toa(dbg_max_write_ns / 1000, e);
    pa_u64toa(dbg_max_round_cpu_ns / 1000, f);
    pa_log(PA_LOG_DEBUG, "sender: ", a, " rounds, longest ", b, " us (", f, " us on CPU), longest gap ", c,
           " us; writes ", d, " ms in all, longest ", e, " us", (const char *)NULL);
}

/* Between two rounds, for pa_sender_main_ending: everything this thread
 * opened on its own table is closed (the thread's end would close it too),
 * the output so that the next sender resumes the stream. */
static void hand_over(void)
{
    pa_ctl_after_fork(); /* the snapshot listener: the next sender listens anew */
    pa_transport_release(&tr);
    pa_fds_leave();
    atomic_store(&pa_sender_tid, 0);
    atomic_store_explicit(&handed_word, 1, memory_order_release);
    pa_futex(&handed_word, FUTEX_WAKE_PRIVATE, 1, NULL);
}

static void *sender_main(void *arg)
{
    uint64_t last_round_end = 0, last_check = 0;
    int orphaned = 0, want_marker = 0;
    long wait_ms = ROUND_MS;
    (void)arg;
    on_sender = 1;
    atomic_store(&pa_sender_tid, pa_gettid());
    pa_tls.guard = 1; /* for life: the sender never records itself */
    /* Before it opens anything: what it opens from here on is its own. */
    pa_fds_unshare();
    /* Visible in top -H / ps -L; the name is the kernel's comm, no alloc. */
    pthread_setname_np(pthread_self(), "perfagent-send");
    pa_crash_sender_unblock();
    /* CPU sampling starts once we exist (we must not be sampled); the
     * first round's Hello states how it went, so wait for it (bounded). */
    for (int i = 0; i < 1000 && pa_cfg.cpu_hz && !atomic_load(&pa_cpu_settled); i++) {
        struct timespec ms = {0, 1000000L};
        nanosleep(&ms, NULL);
    }
    pa_ctl_open();
    for (;;) {
        uint32_t w = atomic_load_explicit(&wake_word, memory_order_acquire);
        /* With CPU sampling on, no longer than its rings allow: nothing
         * wakes us when they fill (cpu.c, pa_cpu_round_ms). */
        long cap = pa_cfg.cpu_hz ? (long)pa_cpu_round_ms() : ROUND_MS_IDLE_MAX;
        struct timespec ts = {0, (wait_ms < cap ? wait_ms : cap) * 1000000L};
        uint64_t t0, t1;
        if (atomic_load_explicit(&stop_req, memory_order_acquire))
            break;
        if (atomic_load_explicit(&reshare_req, memory_order_acquire)) {
            hand_over();
            return NULL;
        }
        struct timespec c0, c1;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
        t0 = pa_mono_ns();
        if (last_round_end && t0 - last_round_end > dbg_max_gap_ns)
            dbg_max_gap_ns = t0 - last_round_end;
        /* Requests read before the round's heads are read are answered
         * by a marker after it (send_marker). */
        want_marker |= pa_ctl_poll(t0);
        pa_fast_clock_update();
        if (pa_crash_requested())
            crash_round();
        round_once(0);
        want_marker = send_marker(want_marker, t0);
        if (stream_open && pa_cfg.out_kind != PA_OUT_FILE) {
            /* Held: a number the program took may be its own socket now,
             * whose bytes are not ours to read. */
            int fd = pa_transport_hold(&tr);
            if (fd >= 0)
                pa_ctl_collector_input(fd);
            pa_transport_unhold();
        }
        if (!atomic_load_explicit(&first_round_word, memory_order_relaxed)) {
            atomic_store_explicit(&first_round_word, 1, memory_order_release);
            pa_futex(&first_round_word, FUTEX_WAKE_PRIVATE, 1, NULL);
        }
        t1 = last_round_end = pa_mono_ns();
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
        dbg_rounds++;
        if (t1 - t0 > dbg_max_round_ns) {
            dbg_max_round_ns = t1 - t0;
            dbg_max_round_cpu_ns = (uint64_t)(c1.tv_sec - c0.tv_sec) * 1000000000ull +
                                   (uint64_t)(c1.tv_nsec - c0.tv_nsec);
        }
        if (atomic_load_explicit(&stop_req, memory_order_acquire))
            break;
        /* At most once per ROUND_MS, however often rings wake us. */
        if (t1 - last_check >= ROUND_MS * 1000000ull) {
            last_check = t1;
            if (pa_host_threads_gone()) {
                orphaned = 1;
                break;
            }
        }
        sender_idle = 1;
        long fr = pa_futex(&wake_word, FUTEX_WAIT_PRIVATE, w, &ts);
        int quiet = fr < 0 && errno == ETIMEDOUT;
        sender_idle = 0;
        /* Not once main's thread is gone: the last-thread check
         * (lastthread.c) must then come every ROUND_MS. */
        if (!quiet || !pa_fds_main_alive())
            wait_ms = ROUND_MS;
        else if ((wait_ms *= 2) > ROUND_MS_IDLE_MAX)
            wait_ms = ROUND_MS_IDLE_MAX;
    }
    if (orphaned)
        last_thread_exit();
    sender_end();
    return NULL;
}

/* Waits up to timeout_ms for the sender's first round: the output is open
 * (or known to be unreachable) before the program's main() runs.  Opening can
 * be slow: O_TRUNC of a 300 MB file left by an earlier run took ~100 ms, in
 * which two mallocbench threads overflowed 4 MiB rings. */
static void wait_first_round(unsigned timeout_ms)
{
    pa_wait_word(&first_round_word, pa_mono_ns() + (uint64_t)timeout_ms * 1000000ull);
}

int pa_sender_start_wait(unsigned timeout_ms)
{
    int r = pa_sender_start();
    if (r == 0 && pa_cfg.cpu_hz)
        pa_cpu_start();
    if (r == 0)
        wait_first_round(timeout_ms);
    return r;
}

static int spawn(void);

/* No sender thread could be started: the agent records nothing more. */
static void no_sender(const char *line)
{
    pa_log(PA_LOG_QUIET + 1, line, (const char *)NULL);
    atomic_store(&pa_heap_on, 0);
    atomic_store(&pa_agent_on, 0);
    atomic_store(&running, 0);
}

int pa_sender_start(void)
{
    int expect = 0, r;

    atomic_store_explicit(&pa_need_sender, 0, memory_order_relaxed);
    if (!atomic_compare_exchange_strong(&running, &expect, 1))
        return 0;
    if (!enc_ok)
        enc_ok = pa_enc_init(&enc) == 0;
    if (!enc_ok) {
        /* No thread: the state of a failed thread start, `running` back
         * to 0 with recording off (tested by private_fds.sh's enc_oom,
         * under a seccomp filter failing this mmap). */
        no_sender("out of memory for the sender; recording off");
        return -ENOMEM;
    }
    pa_options_expand_output(pa_pid(), pa_output_first());
    r = spawn();
    if (r != 0)
        no_sender("cannot start the sender thread; recording off");
    return -r;
}

/* The sender thread itself; 0 or pthread_create's error. */
static int spawn(void)
{
    pthread_t th;
    pthread_attr_t attr;
    sigset_t all, old;
    int r;

    /* The thread inherits our signal mask: block everything for it only. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    host_mask = old;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* pthread_create callocs the thread's DTV: from the pool, not from the
     * host's heap (pa_boot_alloc says why). */
    pa_tls.guard++;
    pa_tls.boot_serve++;
    r = pthread_create(&th, &attr, sender_main, NULL);
    pa_tls.boot_serve--;
    pa_tls.guard--;
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

/* The program's main thread is ending (pthread_exit, or cancelled; the
 * cleanup handler under main, hook_exit.c): a sender on a table of its
 * own hands over to a new one on the program's table, which outlives
 * main's thread with the others (fdtable.c says why).  The new thread is
 * started by this one, so it shares this table.  Bounded: a round under
 * way (a write to a slow collector) ends within SEND_TIMEOUT_MS. */
void pa_sender_main_ending(void)
{
    pa_tls.guard++;
    pa_fds_main_ending();
    if (!atomic_load(&pa_fds_private) || !atomic_load(&running) || on_sender ||
        atomic_load(&done_word))
        goto out;
    atomic_store(&handed_word, 0);
    atomic_store_explicit(&reshare_req, 1, memory_order_release);
    pa_sender_wake();
    if (!pa_wait_word(&handed_word, pa_mono_ns() + 5000000000ull)) {
        pa_log(PA_LOG_INFO, "the agent's thread did not let go of its fd table in 5 s; "
                            "the program's output at exit may be lost", (const char *)NULL);
        goto out;
    }
    atomic_store(&reshare_req, 0);
    if (spawn() != 0)
        no_sender("cannot restart the sender thread; recording off");
out:
    pa_tls.guard--;
}

void pa_sender_stop(int code, unsigned timeout_ms)
{
    uint64_t deadline = pa_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    if (!atomic_load(&running))
        return;
    exit_code = code;
    if (on_sender) {
        /* exit(3) from last_thread_exit() (or an exit or exec in the host's
         * atexit handlers it ran): we are the sender, so waiting for it would
         * only time out.  Flush here; finish_stream() is bounded. */
        if (!atomic_load(&done_word))
            sender_end();
        return;
    }
    atomic_store_explicit(&stop_req, 1, memory_order_release);
    pa_sender_wake();
    if (!pa_wait_word(&done_word, deadline))
        pa_log(PA_LOG_QUIET + 1, "the final flush timed out; the end of the recording is lost",
               (const char *)NULL);
}

/* exec failed after pa_sender_stop(): start over on a new stream (a new
 * connection, or a new file: transport.c never truncates a file this run may
 * have written). */
void pa_sender_restart(void)
{
    if (atomic_load(&running) && !atomic_load(&done_word))
        return;
    pa_sender_after_fork_child();
    /* The threads' next rows would be deltas from rows the old stream had */
    pa_thread_resync_all();
    atomic_store(&pa_need_sender, 0);
    pa_sender_start();
}

/* fork(2): the child has no sender thread and must not write to the parent's
 * output; it starts its own stream when it first records something. */
void pa_sender_after_fork_child(void)
{
    pa_transport_after_fork(&tr); /* closes our copy only if it is still ours */
    pa_ctl_after_fork();
    markers_sent = 0;
    memset(&tr, 0, sizeof(tr));
    tr.fd = -1;
    /* The batch may name rings of threads that do not exist here. */
    pa_enc_reset(&enc);
    stream_open = 0;
    stacks_sent = 0;
    atomic_store(&running, 0);
    atomic_store(&stop_req, 0);
    atomic_store(&done_word, 0);
    atomic_store(&wake_word, 0);
    atomic_store(&first_round_word, 0);
    atomic_store(&reshare_req, 0);
    atomic_store(&handed_word, 0);
    atomic_store(&pa_sender_tid, 0);
    last_stats_ns = 0;
    /* Our leader is the forking thread, under another pid. */
    pa_host_threads_after_fork();
    ever_opened = 0;
    lazy_output = pa_cfg.cpu_hz != 0;
    atomic_store(&pa_need_sender, 1);
}

/* ---- a fatal signal (crash.c) ---------------------------------------------- */

/* Asked by a crashing host thread, which waits (bounded) for this: every
 * row the rings hold, the crash's stack, the Crash record and the counters,
 * written now.  The stream stays open: the program's own handler may carry
 * on. */
static void crash_round(void)
{
    int ok;
    pa_crash_prepare();
    /* Rows other threads keep making do not hold the crash back for long. */
    for (int i = 0; i < 8 && round_once(0); i++)
        ;
    ok = stream_open;
    if (stream_open) {
        pa_rec_stacks(&enc, &stacks_sent);
        pa_rec_crash(&enc, pa_crash_info());
        last_stats_ns = pa_rec_stats(&enc);
        ok = flush_batch() == 0;
    }
    pa_crash_flushed(ok);
}

/* The sender itself took the fatal signal (signal context, on this
 * thread).  Interrupted in its wait between rounds, nothing of its own is
 * half done: the full crash flush runs here.  Interrupted anywhere else
 * (its batch may be half built, its write half done): one frame with the
 * crash alone, written straight to the output unless a write was under
 * way; the rows still in the rings are lost then. */
int pa_sender_idle(void)
{
    return sender_idle;
}

int pa_sender_crash_direct(void)
{
    static uint8_t frame[16384];
    size_t len;
    if (!stream_open || tr.fd < 0 || magic_due)
        return 0; /* magic_due: not even the Hello went out */
    if (sender_idle) {
        crash_round();
        return 1;
    }
    if (atomic_load_explicit(&pa_sender_write_start, memory_order_relaxed))
        return 0;
    pa_crash_prepare();
    if (!(len = pa_rec_crash_frame(frame, sizeof(frame), enc.seq, stacks_sent, pa_crash_info())))
        return 0;
    for (size_t off = 0; off < len;) {
        long w = syscall(SYS_sendto, tr.fd, frame + off, len - off, MSG_NOSIGNAL, NULL, 0);
        if (w < 0 && errno == ENOTSOCK)
            w = syscall(SYS_write, tr.fd, frame + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return 0;
        off += (size_t)w;
    }
    enc.seq++; /* the seq is taken: if the process goes on, seq stays increasing */
    return 1;
}
