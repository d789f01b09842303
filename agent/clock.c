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
