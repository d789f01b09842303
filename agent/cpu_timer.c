/*
 * cpu_timer.c — CPU sampling where perf_event_open(2) is refused
 * (perf_event_paranoid 3, a seccomp filter, an old kernel), or when asked
 * for with PERFAGENT_CPU_MODE=timer: one POSIX CPU-time timer per thread
 * (timer_create(2) on the thread's CPU clock, SIGEV_THREAD_ID so the signal
 * goes to that thread) and a signal handler in the host's threads.
 *
 * The handler does what the kernel does for perf_event: it copies the
 * interrupted registers and the top of the stack into a ring of the
 * thread's own, and nothing else.  It takes no lock, allocates nothing,
 * calls no libc function but clock_gettime (async-signal-safe, signal-
 * safety(7)) and raw syscalls, and saves errno.  The stack is copied with
 * process_vm_readv(2) on our own pid, page by page, so a stack shallower
 * than the copy ends the copy (the call returns what it read) instead of
 * faulting; where that call is refused (seccomp filters often refuse it)
 * samples carry their pc only.  The ring (a typed ring, ring.h) belongs to
 * the signal: the thread's own code never writes it, so a handler cannot
 * interrupt a half-written record of its ring, and a ring has one producer
 * at a time (the signal is blocked while its handler runs).  The sender
 * drains the rings and hands each sample to cpu.c, which walks the copy
 * with the .eh_frame rules exactly as it walks a perf_event sample.  No
 * unwinding, no libunwind, no symbol lookup happens in signal context
 * (../shared/research/cpu-formats-tracing-anchors.md section 2).
 *
 * What a signal costs the host: SA_RESTART restarts read/write/wait-type
 * calls, but signal(7) lists calls that fail with EINTR after any handler
 * (poll, select, epoll_wait, nanosleep, ...).  A CPU-time timer only fires
 * while its thread runs, so a thread blocked in such a call is not
 * interrupted; one that is in the kernel on its way to block when its
 * timer expires can be.  That is the price of this mechanism, and why
 * perf_event is preferred.
 *
 * The signal is SIGPROF, unless the host has a handler for SIGPROF: then
 * the highest real-time signal with no handler, and Hello says which.  If
 * the host installs a handler for our signal later, the sender notices
 * (it checks every round) and stops the timers rather than feed the host
 * signals it did not ask for.
 *
 * POSIX CPU timers are checked on the scheduler tick (250 Hz here,
 * CONFIG_HZ): asked for more, a timer fires once a tick with an overrun
 * count, and each signal then stands for 1 + overrun periods (the sample
 * is counted that many times and the overruns are reported).
 *
 * Threads: those alive at start get a timer from pa_cpu_timer_start; the
 * sender finds new ones in /proc/self/task every round (so a thread's
 * first ~10 ms may go unsampled, and threads shorter than that are not
 * seen) and deletes the timers of threads that ended.
 */
#include "cpu_int.h"
#include "ring.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define SLOTS 4096             /* threads sampled at once */
#define RING_BYTES (128u << 10) /* per thread: ~15 samples of 8 KiB */
#define KIND_RAW 1             /* the one record kind in these rings */
#define MAX_OVERRUN (PA_CPU_MAX_WEIGHT - 1) /* one signal never stands for more */

/* A sample as the handler writes it; `stack` holds the copy of
 * [sp, sp + record length - sizeof(raw_t)). */
typedef struct raw {
    uint64_t time_ns; /* CLOCK_MONOTONIC */
    uint64_t ip, sp, bp;
    uint32_t overrun; /* expirations this signal stands for, minus one */
    uint32_t pad;
    uint8_t stack[];
} raw_t;

/* Slot tids: 0 never used (ends a probe), GONE freed (probes go on). */
#define GONE UINT32_MAX

typedef struct tslot {
    _Atomic uint32_t tid; /* 0, GONE, or a thread's; published after ring and timer */
    _Atomic int armed;    /* the handler may write (cleared before a delete) */
    int timer;            /* kernel timer id */
    uint32_t seen;        /* sender: scan generation that saw the thread */
    pa_tring_t *ring;     /* kept when the slot is freed, for the next thread */
} tslot_t;

static tslot_t *slots; /* SLOTS entries, pa_mmap_private: empty in a fork child */
static _Atomic int active;
static int signo;
static unsigned stack_bytes;
static uint64_t period_ns;
static _Atomic int no_vm_read; /* process_vm_readv refused: pc-only samples */
static uint32_t scan_gen;
static uint64_t overruns, ring_drops_gone, signals;

static unsigned slot_of(uint32_t tid)
{
    return (tid * 2654435761u) & (SLOTS - 1);
}

/* Handler and sender: the slot of tid, or NULL. */
static tslot_t *find(uint32_t tid)
{
    for (unsigned k = 0, i = slot_of(tid); k < SLOTS; k++, i = (i + 1) & (SLOTS - 1)) {
        uint32_t t = atomic_load_explicit(&slots[i].tid, memory_order_acquire);
        if (t == tid)
            return &slots[i];
        if (t == 0)
            return NULL; /* GONE slots do not end the probe */
    }
    return NULL;
}

/* Copies up to `len` bytes from sp on into dst, one page per iovec so a
 * short stack ends the copy at the last readable page (process_vm_readv(2):
 * partial transfers stop at an iovec that fails, never inside one). */
static uint32_t copy_stack(uint8_t *dst, uint64_t sp, uint32_t len)
{
    struct iovec local = {dst, len}, remote[4];
    unsigned n = 0;
    uint64_t a = sp, end = sp + len;
    long got;
    if (atomic_load_explicit(&no_vm_read, memory_order_relaxed) || !len)
        return 0;
    while (a < end && n < 4) {
        uint64_t next = (a | 4095) + 1;
        if (next > end || n == 3)
            next = end;
        remote[n].iov_base = (void *)a;
        remote[n++].iov_len = next - a;
        a = next;
    }
    got = syscall(SYS_process_vm_readv, (long)syscall(SYS_getpid), &local, 1ul, remote,
                  (unsigned long)n, 0ul);
    if (got < 0) {
        if (errno != EFAULT) /* ENOSYS, EPERM: a filter refused it */
            atomic_store_explicit(&no_vm_read, 1, memory_order_relaxed);
        return 0;
    }
    return (uint32_t)got;
}

static void on_tick(int sig, siginfo_t *si, void *ucv)
{
    int saved = errno;
    const ucontext_t *uc = ucv;
    tslot_t *s;
    pa_trec_t rec;
    raw_t *r;
    struct timespec ts;
    (void)sig;
    /* Only our timers: a kill(2) of the signal from elsewhere is ignored. */
    if (si->si_code != SI_TIMER || !atomic_load_explicit(&active, memory_order_relaxed))
        goto out;
    s = find((uint32_t)syscall(SYS_gettid));
    if (!s || !atomic_load_explicit(&s->armed, memory_order_acquire))
        goto out;
    r = pa_tring_reserve(s->ring, KIND_RAW, (uint32_t)sizeof(*r) + stack_bytes, &rec);
    if (!r)
        goto out; /* ring full: counted in the ring */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    r->time_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    r->ip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
    r->sp = (uint64_t)uc->uc_mcontext.gregs[REG_RSP];
    r->bp = (uint64_t)uc->uc_mcontext.gregs[REG_RBP];
    r->overrun = si->si_overrun > 0 ? (uint32_t)si->si_overrun : 0;
    r->pad = 0;
    pa_tring_commit(s->ring, &rec, (uint32_t)sizeof(*r) + copy_stack(r->stack, r->sp, stack_bytes));
out:
    errno = saved;
}

/* ---- timers (host thread at start, then the sender) ------------------------ */

static int timer_arm(int id, uint64_t ns)
{
    struct itimerspec it = {{(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)},
                            {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)}};
    return (int)syscall(SYS_timer_settime, id, 0, &it, NULL);
}

/* A timer on tid's CPU clock that signals tid.  The clock id is the
 * kernel's per-thread CPU clock (MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED),
 * as clock_getcpuclockid(3)'s pthread sibling builds it); a thread of our
 * own process may use any sibling's. */
static int add_thread(uint32_t tid)
{
    struct sigevent sev;
    tslot_t *s = NULL;
    int id;
    /* The caller found no slot for tid: take the first free or freed one
     * on its probe path (the sender is the only writer of tids). */
    for (unsigned k = 0, i = slot_of(tid); k < SLOTS; k++, i = (i + 1) & (SLOTS - 1)) {
        uint32_t t = atomic_load_explicit(&slots[i].tid, memory_order_relaxed);
        if (t == 0 || t == GONE) {
            s = &slots[i];
            break;
        }
    }
    if (!s)
        return -ENOSPC;
    if (!s->ring && !(s->ring = pa_tring_new(RING_BYTES)))
        return -ENOMEM;
    pa_tring_reset(s->ring);
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = signo;
    sev._sigev_un._tid = (int)tid;
    if (syscall(SYS_timer_create, (clockid_t)((~tid << 3) | 6), &sev, &id) < 0)
        return -errno; /* ESRCH / EINVAL: the thread ended meanwhile */
    s->timer = id;
    s->seen = scan_gen;
    atomic_store_explicit(&s->armed, 1, memory_order_relaxed);
    atomic_store_explicit(&s->tid, tid, memory_order_release);
    if (timer_arm(id, period_ns) < 0) {
        int e = -errno;
        atomic_store_explicit(&s->armed, 0, memory_order_relaxed);
        syscall(SYS_timer_delete, id);
        s->timer = -1;
        atomic_store_explicit(&s->tid, GONE, memory_order_release);
        return e;
    }
    return 0;
}

/* A thread that ended: its timer goes; the caller drains its last samples
 * and then frees the slot (GONE, keeping the ring for the next thread). */
static void stop_slot(tslot_t *s)
{
    atomic_store_explicit(&s->armed, 0, memory_order_release);
    syscall(SYS_timer_delete, s->timer);
    s->timer = -1;
}

static int sig_is_ours(int sig)
{
    struct sigaction cur;
    if (sigaction(sig, NULL, &cur) != 0)
        return 0;
    return (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_tick;
}

static int sig_is_free(int sig)
{
    struct sigaction cur;
    /* SIG_IGN is the host's choice too: a handler of ours would turn it
     * into SIG_DFL in every program it execs (execve(2)). */
    return sigaction(sig, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) &&
           cur.sa_handler == SIG_DFL;
}

/* Threads in /proc/self/task that have no timer get one; slots whose
 * thread is not listed any more are stopped (and drained by the caller). */
static void scan_one(void *ctx, uint32_t tid)
{
    tslot_t *s = find(tid);
    (void)ctx;
    if (s)
        s->seen = scan_gen;
    else
        add_thread(tid);
}

static void scan(void)
{
    scan_gen++;
    /* Unread (fd limit, /proc not mounted): no thread counts as ended. */
    if (pa_cpu_each_task(scan_one, NULL) < 0)
        for (unsigned i = 0; i < SLOTS; i++)
            slots[i].seen = scan_gen;
}

int pa_cpu_timer_start(unsigned hz, unsigned copy_bytes, char *why, size_t why_len)
{
    struct sigaction sa;
    if (!slots && !(slots = pa_mmap_private(sizeof(tslot_t) * SLOTS))) {
        pa_strlcpy(why, "out of memory", why_len);
        return -ENOMEM;
    }
    stack_bytes = copy_bytes;
    period_ns = 1000000000ull / hz;
    if (!signo) {
        /* SIGPROF unless the host handles it; else a free real-time one. */
        if (sig_is_free(SIGPROF)) {
            signo = SIGPROF;
        } else {
            for (int s = SIGRTMAX; s >= SIGRTMIN + 2 && !signo; s--)
                if (sig_is_free(s))
                    signo = s;
            if (!signo) {
                pa_strlcpy(why, "the host handles SIGPROF and every real-time signal", why_len);
                return -EBUSY;
            }
        }
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_tick;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigfillset(&sa.sa_mask); /* nothing of the host's runs inside ours */
        if (sigaction(signo, &sa, NULL) != 0) {
            pa_strlcpy(why, "sigaction refused", why_len);
            signo = 0;
            return -errno;
        }
    }
    /* The handler stays installed for good: a signal still queued when the
     * timers stop must not meet SIG_DFL, which for SIGPROF kills. */
    atomic_store(&active, 1);
    scan();
    why[0] = 0;
    return 0;
}

int pa_cpu_timer_signal(void)
{
    return signo;
}

int pa_cpu_timer_no_stack(void)
{
    return atomic_load(&no_vm_read);
}

/* The sender's sink: one raw sample to cpu.c. */
static int take(void *ctx, uint32_t kind, const uint8_t *p, uint32_t len)
{
    tslot_t *s = ctx;
    raw_t r;
    if (!pa_cpu_room())
        return -1; /* the round's buffer is full: the rest waits */
    if (kind != KIND_RAW || len < sizeof(r))
        return 0;
    memcpy(&r, p, sizeof(r));
    if (r.overrun > MAX_OVERRUN)
        r.overrun = MAX_OVERRUN;
    signals++;
    overruns += r.overrun;
    pa_cpu_take(atomic_load_explicit(&s->tid, memory_order_relaxed), r.time_ns, r.ip, r.sp, r.bp,
                p + sizeof(r), len - sizeof(r), 1 + r.overrun);
    return 0;
}

void pa_cpu_timer_find(void)
{
    if (atomic_load(&active) && sig_is_ours(signo))
        scan();
}

void pa_cpu_timer_drain(void)
{
    if (!atomic_load(&active))
        return;
    if (!sig_is_ours(signo)) {
        /* The host took our signal over: stop feeding it signals. */
        pa_cpu_timer_disable();
        atomic_store(&active, 0);
        pa_log(PA_LOG_QUIET + 1, "the program installed its own handler for the sampling "
                                 "signal; CPU sampling stopped", (const char *)NULL);
        return;
    }
    scan();
    for (unsigned i = 0; i < SLOTS; i++) {
        tslot_t *s = &slots[i];
        uint32_t t = atomic_load_explicit(&s->tid, memory_order_acquire);
        int ended;
        if (t == 0 || t == GONE)
            continue;
        if ((ended = s->seen != scan_gen))
            stop_slot(s);
        pa_tring_drain(s->ring, take, s);
        if (ended && !pa_tring_pending(s->ring)) {
            ring_drops_gone += atomic_load(&s->ring->drops);
            atomic_store_explicit(&s->tid, GONE, memory_order_release);
        }
    }
}

int pa_cpu_timer_pending(void)
{
    if (!atomic_load(&active) || !slots)
        return 0;
    for (unsigned i = 0; i < SLOTS; i++) {
        uint32_t t = atomic_load_explicit(&slots[i].tid, memory_order_acquire);
        if (t && t != GONE && pa_tring_pending(slots[i].ring))
            return 1;
    }
    return 0;
}

void pa_cpu_timer_stats(uint64_t *lost, uint64_t *overrun, uint64_t *signals_out)
{
    uint64_t d = ring_drops_gone;
    for (unsigned i = 0; slots && i < SLOTS; i++) {
        uint32_t t = atomic_load_explicit(&slots[i].tid, memory_order_relaxed);
        if (t && t != GONE)
            d += atomic_load_explicit(&slots[i].ring->drops, memory_order_relaxed);
    }
    *lost = d;
    *overrun = overruns;
    *signals_out = signals;
}

/* Stop every timer (before the final drain); samples already in the
 * rings stay there for it. */
void pa_cpu_timer_disable(void)
{
    for (unsigned i = 0; slots && i < SLOTS; i++) {
        uint32_t t = atomic_load(&slots[i].tid);
        if (t && t != GONE && slots[i].timer >= 0)
            timer_arm(slots[i].timer, 0);
    }
}

void pa_cpu_timer_close(void)
{
    atomic_store(&active, 0);
    for (unsigned i = 0; slots && i < SLOTS; i++) {
        uint32_t t = atomic_load(&slots[i].tid);
        if (t && t != GONE) {
            if (slots[i].timer >= 0)
                stop_slot(&slots[i]);
            /* After the final drain: a restart (failed exec) starts over. */
            atomic_store(&slots[i].tid, GONE);
        }
    }
}

/* fork(2): POSIX timers are not inherited, the slot table is zeroed
 * (pa_mmap_private) and its rings with it; the handler stays installed. */
void pa_cpu_timer_after_fork_child(void)
{
    atomic_store(&active, 0);
    if (slots) /* normally zeroed already (MADV_WIPEONFORK); the rings too */
        memset(slots, 0, sizeof(tslot_t) * SLOTS);
    overruns = ring_drops_gone = signals = 0;
    atomic_store(&no_vm_read, 0);
}
