/*
 * util — small helpers shared by collector files.
 */
#ifndef PA_UTIL_H
#define PA_UTIL_H

#include <stddef.h>
#include <stdlib.h>

/* Makes the array *p (of *cap elements of `elem` bytes) hold at least `need`
 * elements, doubling; new elements are zeroed.  0 or -ENOMEM (then *p and
 * *cap are unchanged). */
int util_grow(void **p, size_t *cap, size_t need, size_t elem);

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
