/*
 * util — small helpers shared by collector files.
 */
#ifndef PA_UTIL_H
#define PA_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Makes the array *p (of *cap elements of `elem` bytes) hold at least `need`
 * elements, doubling; new elements are zeroed.  0 or -ENOMEM (then *p and
 * *cap are unchanged). */
int util_grow(void **p, size_t *cap, size_t need, size_t elem);

/* Environment settings of the collector side, read as the agent reads its
 * own (agent/options.c): digits only, within [lo, hi]; anything else (junk,
 * a sign, spaces, overflow) is one line on stderr, once per variable per
 * process, naming the variable, the value (util_env_show) and the default
 * used.  Unset or empty: the default, silently. */
uint64_t util_env_u64(const char *name, uint64_t lo, uint64_t hi, uint64_t dflt);
/* v for a one-line message: at most 48 bytes of it, bytes outside
 * printable ASCII as \xNN, "... (N bytes)" when cut; written into buf. */
const char *util_env_show(const char *v, char *buf, size_t n);

/* qsort(3) for arrays that may be empty: glibc declares qsort's base nonnull,
 * so qsort(NULL, 0, ...) is undefined behaviour (UBSan, found by the fuzz
 * target on streams with no rows of a kind), and the compiler may drop a
 * later NULL check because of it. */
static inline void util_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, size, cmp);
}

#endif
