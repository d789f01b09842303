/*
 * unwind.h — stack capture, inlined into heap.c's entry points so that only
 * two agent frames (the hook and the core entry) sit above the user's code:
 * every frame libunwind steps costs ~10 ns here.
 *
 * Default: libunwind's unw_backtrace(), its fast path that caches frame
 * descriptions per address; never the unw_init_local/unw_step loop, which
 * costs ~13 us and ~39 rt_sigprocmask calls per stack (memory-anchors P6).
 * It is right for code built without frame pointers (most distro libraries).
 *
 * PERFAGENT_UNWIND=fp walks frame pointers: faster, but only right when
 * every frame keeps one (-fno-omit-frame-pointer); otherwise callers silently
 * go missing.
 *
 * Leading frames inside libperfagent.so are skipped: the result starts at the
 * return address into the code that called the allocation function.
 */
#ifndef PA_UNWIND_H
#define PA_UNWIND_H

#include "internal.h"

#define UNW_LOCAL_ONLY /* the _UL* local fast path, libunwind(3) */
#include <libunwind.h>

/* Room for the agent's own frames above max, plus one to tell a truncated
 * stack from an exact fit. */
#define PA_UNWIND_SLACK 8
#define PA_UNWIND_BUF (PA_MAX_FRAMES_LIMIT + PA_UNWIND_SLACK)

/* Fills buf; returns the number of frames and sets *first to the index of
 * the first non-agent frame (frames are buf[*first .. *first + n)). */
static inline __attribute__((always_inline)) unsigned
pa_unwind_here(uint64_t *buf, unsigned max, unsigned *first, int *truncated)
{
    unsigned n = 0, skip = 0;
    *truncated = 0;
    if (PA_LIKELY(pa_cfg.unwinder == PA_UNWIND_LIBUNWIND)) {
        unsigned want = max + PA_UNWIND_SLACK;
        int r = unw_backtrace((void **)buf, (int)want);
        if (r <= 0)
            return 0;
        n = (unsigned)r;
        while (skip < n && pa_in_agent(buf[skip]))
            skip++;
        n -= skip;
        if (n > max || (unsigned)r == want) {
            *truncated = 1;
            if (n > max)
                n = max;
        }
    } else {
        uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
        /* Frame records must move up the stack and stay within a plausible
         * window (8 MiB: the default stack size). */
        uintptr_t lo = fp, hi = fp + (8u << 20);
        int leading = 1;
        while (fp >= lo && fp + 16 <= hi && !(fp & 7)) {
            uintptr_t next = ((uintptr_t *)fp)[0], ret = ((uintptr_t *)fp)[1];
            if (ret < 4096)
                break;
            if (!(leading && pa_in_agent(ret))) {
                leading = 0;
                if (n == max) {
                    *truncated = 1;
                    break;
                }
                buf[n++] = ret;
            }
            if (next <= fp)
                break;
            fp = next;
        }
    }
    *first = skip;
    return n;
}

#endif
