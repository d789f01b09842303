/*
 * util — small helpers shared by collector files.
 */
#ifndef PA_UTIL_H
#define PA_UTIL_H

#include <stddef.h>

/* Makes the array *p (of *cap elements of `elem` bytes) hold at least `need`
 * elements, doubling; new elements are zeroed.  0 or -ENOMEM (then *p and
 * *cap are unchanged). */
int util_grow(void **p, size_t *cap, size_t need, size_t elem);

#endif
