/*
 * util.c — see util.h.
 */
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int util_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    size_t nc;
    void *np;
    if (need <= *cap)
        return 0;
    nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2)
            return -ENOMEM;
        nc *= 2;
    }
    if (nc > SIZE_MAX / elem)
        return -ENOMEM;
    np = realloc(*p, nc * elem);
    if (!np)
        return -ENOMEM;
    memset((char *)np + *cap * elem, 0, (nc - *cap) * elem);
    *p = np;
    *cap = nc;
    return 0;
}

const char *util_env_show(const char *v, char *buf, size_t n)
{
    size_t len = strlen(v), o = 0;
    for (size_t i = 0; i < len && i < 48 && o + 5 < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c >= 0x20 && c < 0x7f)
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, n - o, "\\x%02x", c);
    }
    if (len > 48 && o + 24 < n)
        o += (size_t)snprintf(buf + o, n - o, "... (%zu bytes)", len);
    buf[o < n ? o : n - 1] = 0;
    return buf;
}

/* Warned-about variables, by name: one line per variable per process. */
static const char *warned[16];

uint64_t util_env_u64(const char *name, uint64_t lo, uint64_t hi, uint64_t dflt)
{
    const char *v = getenv(name);
    uint64_t x = 0;
    size_t i;
    char shown[160];
    if (!v || !*v)
        return dflt;
    for (i = 0; v[i] >= '0' && v[i] <= '9'; i++) {
        if (x > (UINT64_MAX - (uint64_t)(v[i] - '0')) / 10) {
            x = UINT64_MAX;
            i = strlen(v) + 1; /* overflow: out of range */
            break;
        }
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    if (i > 0 && v[i] == 0 && x >= lo && x <= hi)
        return x;
    for (i = 0; i < sizeof(warned) / sizeof(*warned); i++) {
        if (warned[i] && strcmp(warned[i], name) == 0)
            return dflt;
        if (!warned[i]) {
            warned[i] = name;
            break;
        }
    }
    fprintf(stderr, "perfagent: ignoring %s=%s: expected a whole number %" PRIu64 "..%" PRIu64
                    "; using %" PRIu64 "\n",
            name, util_env_show(v, shown, sizeof(shown)), lo, hi, dflt);
    return dflt;
}
