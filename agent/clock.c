/*
 * clock.c — event timestamps.  Heap rows need a clock that is consistent
 * across CPUs (readers order threads' events by it, see HeapEvents in
 * proto/perfagent.proto) and cheap: on this project's reference machine
 * clock_gettime(CLOCK_MONOTONIC) costs ~29 ns through the vDSO and rdtsc
 * ~11 ns.  We use the TSC only where the kernel itself trusts it as its
 * clocksource (so it is invariant and synchronized), else CLOCK_MONOTONIC;
 * the sender ships (ticks, ns) pairs so the collector can convert.
 */
#include "internal.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

PA_HIDDEN int pa_clock_tsc;

uint64_t pa_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t pa_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int pa_clock_is_tsc(void)
{
    return pa_clock_tsc;
}

/* ---- CLOCK_MONOTONIC estimated from the TSC (pa_fast_ns) -----------------
 * Socket tracing reads the clock twice around every send, recv and wait,
 * and the vDSO's clock_gettime was ~1% of redis-benchmark's CPU under the
 * agent (perf, GET test).  Where the TSC is the kernel's clocksource, the
 * estimate is mono = ns0 + (tsc - tsc0) * mult / 2^32: a rdtsc, a few
 * loads and a multiply.  The sender keeps it true (pa_fast_clock_update,
 * each round): the first mult is measured over >= 20 ms; then every
 * second a new anchor is taken ON the current line (so the estimate never
 * jumps) with a slope that meets the real clock a second later (NTP slews
 * CLOCK_MONOTONIC by up to 500 ppm; an error above 1 ms, e.g. after a
 * suspend, is corrected by a jump).  Until the first mult, and without a
 * TSC, it is clock_gettime itself.
 * Two slots: the sender fills the one readers are not told to use, then
 * flips the index; a reader re-reads the index and falls back to
 * clock_gettime if it changed (a reader is never made to wait). */
typedef struct fast_slot {
    uint64_t tsc0, ns0, mult; /* mult: ns per tick, 32.32 fixed point */
} fast_slot_t;
static fast_slot_t fast_slots[2];
static _Atomic uint32_t fast_idx; /* bit 0: the slot; + 2 per publish; 0: not calibrated */
static uint64_t cal_tsc, cal_ns;  /* the sender's: first pair, for the first mult */
static uint64_t next_update_ns;

#define FAST_FIRST_NS 20000000ull   /* measure the first mult over this */
#define FAST_PERIOD_NS 1000000000ull /* then re-anchor this often */
#define FAST_JUMP_NS 1000000ull      /* a larger error is corrected at once */

static uint64_t slot_ns(const fast_slot_t *s, uint64_t tsc)
{
    if (tsc <= s->tsc0) /* another CPU's anchor a few ticks ahead of ours */
        return s->ns0;
    return s->ns0 + (uint64_t)(((unsigned __int128)(tsc - s->tsc0) * s->mult) >> 32);
}

uint64_t pa_fast_ns(void)
{
    uint32_t i = atomic_load_explicit(&fast_idx, memory_order_acquire);
    fast_slot_t s;
    if (PA_UNLIKELY(!i))
        return pa_mono_ns();
    s = fast_slots[i & 1];
    atomic_thread_fence(memory_order_acquire); /* the slot is read before the check */
    if (PA_UNLIKELY(atomic_load_explicit(&fast_idx, memory_order_relaxed) != i))
        return pa_mono_ns();
    return slot_ns(&s, pa_ticks());
}

static void publish(uint64_t tsc0, uint64_t ns0, uint64_t mult)
{
    uint32_t i = atomic_load_explicit(&fast_idx, memory_order_relaxed);
    uint32_t next = ((i & ~1u) + 2) | ((i & 1) ^ 1); /* the other slot; never 0 */
    fast_slot_t *s = &fast_slots[next & 1];
    s->tsc0 = tsc0;
    s->ns0 = ns0;
    s->mult = mult;
    atomic_store_explicit(&fast_idx, next, memory_order_release);
}

static _Atomic uint64_t coarse_ns;

uint64_t pa_coarse_ns(void)
{
    uint64_t ns = atomic_load_explicit(&coarse_ns, memory_order_relaxed);
    return ns ? ns : pa_fast_ns();
}

void pa_fast_clock_update(void)
{
    uint64_t tsc, ns, cur, rate;
    uint32_t i;
    if (!pa_clock_tsc) {
        atomic_store_explicit(&coarse_ns, pa_mono_ns(), memory_order_relaxed);
        return;
    }
    /* A pair read back to back; one the thread was preempted inside
     * (clock reads more than 2 us apart) is read again, at most 3 times. */
    for (int tries = 0;; tries++) {
        uint64_t before = pa_mono_ns();
        tsc = pa_ticks();
        ns = pa_mono_ns();
        if (ns - before <= 2000 || tries == 2)
            break;
    }
    atomic_store_explicit(&coarse_ns, ns, memory_order_relaxed);
    if (!cal_tsc) {
        cal_tsc = tsc, cal_ns = ns;
        return;
    }
    if (ns < next_update_ns || tsc <= cal_tsc || ns <= cal_ns)
        return;
    i = atomic_load_explicit(&fast_idx, memory_order_relaxed);
    if (!i && ns - cal_ns < FAST_FIRST_NS)
        return;
    /* The long-run rate, from the first pair. */
    rate = (uint64_t)(((unsigned __int128)(ns - cal_ns) << 32) / (tsc - cal_tsc));
    if (!i) {
        publish(tsc, ns, rate);
    } else {
        /* The line through the estimate now that reaches the real clock
         * one period later. */
        uint64_t period_ticks = (uint64_t)(((unsigned __int128)FAST_PERIOD_NS << 32) / rate);
        cur = slot_ns(&fast_slots[i & 1], tsc);
        if (cur > ns + FAST_JUMP_NS || ns > cur + FAST_JUMP_NS || !period_ticks)
            publish(tsc, ns, rate);
        else
            publish(tsc, cur,
                    (uint64_t)(((unsigned __int128)(ns + FAST_PERIOD_NS - cur) << 32) / period_ticks));
    }
    next_update_ns = ns + FAST_PERIOD_NS;
}

/* Called once at init (single-threaded).  Reads the current clocksource with
 * raw syscalls: open/read may be interposed by other preloads. */

void pa_clock_init(void)
{
#if defined(__x86_64__)
    char buf[32] = {0};
    long fd = syscall(SYS_openat, AT_FDCWD,
                      "/sys/devices/system/clocksource/clocksource0/current_clocksource",
                      O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        long n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
        syscall(SYS_close, fd);
        if (n >= 3 && buf[0] == 't' && buf[1] == 's' && buf[2] == 'c')
            pa_clock_tsc = 1;
    }
#endif
}

/* The agent's one futex(2) wrapper, and its one timed wait on a word (the
 * sender's first round and final flush, the crash flush). */
long pa_futex(_Atomic uint32_t *w, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, w, op, val, ts, NULL, 0);
}

int pa_wait_word(_Atomic uint32_t *w, uint64_t deadline_ns)
{
    while (!atomic_load_explicit(w, memory_order_acquire)) {
        uint64_t now = pa_mono_ns();
        struct timespec ts;
        if (now >= deadline_ns)
            return 0;
        ts.tv_sec = (time_t)((deadline_ns - now) / 1000000000ull);
        ts.tv_nsec = (long)((deadline_ns - now) % 1000000000ull);
        pa_futex(w, FUTEX_WAIT_PRIVATE, 0, &ts);
    }
    return 1;
}
