/*
 * wl.h — shared helpers for the test workloads (tests/workloads/).
 *
 * Workloads are small deterministic programs whose allocations and leaks are
 * known by construction.  Every allocation site is a separate function kept
 * as its own frame (NOINLINE) with a NO_TAIL() barrier after the allocation
 * call, so a tail jump cannot erase the site from the recorded stack.
 *
 * Output goes through out(), which formats into a stack buffer and write(2)s
 * it: no stdio, so libc's stdout buffer is never allocated and the programs'
 * leak totals are exactly the sum of their leak sites.
 */
#ifndef PA_WL_H
#define PA_WL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__clang__)
#define NOINLINE __attribute__((noinline, used))
#else
#define NOINLINE __attribute__((noinline, noipa, used))
#endif
#define NO_TAIL() __asm__ volatile("" ::: "memory")

/* printf to a file descriptor without stdio (vsnprintf does not allocate for
 * the plain conversions used here). */
__attribute__((format(printf, 2, 3), unused)) static void outfd(int fd, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf)
        n = sizeof buf - 1;
    for (int off = 0; off < n;) {
        ssize_t w = write(fd, buf + off, (size_t)(n - off));
        if (w <= 0)
            return;
        off += (int)w;
    }
}
#define out(...) outfd(1, __VA_ARGS__)
#define err(...) outfd(2, __VA_ARGS__)

/* Abort the workload with a message and a distinct exit code. */
#define WL_ASSERT(cond, code)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            err("%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                           \
            _exit(code);                                                                           \
        }                                                                                          \
    } while (0)

/* Write a pattern into a block so it is really used. */
static inline void wl_touch(void *p, size_t n, unsigned char tag)
{
    memset(p, tag, n);
}

static inline uint64_t wl_rnd(uint64_t *s)
{ /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

#endif
