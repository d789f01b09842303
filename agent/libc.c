/*
 * libc.c — the few libc-like helpers the agent needs in places where calling
 * libc is unsafe: inside malloc hooks (stdio and getenv can allocate or take
 * locks, memory-anchors P2; gperftools#426 deadlocked in sscanf -> realloc)
 * and before libc has finished initializing.  Nothing here allocates.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

size_t pa_strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

size_t pa_strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = pa_strlen(src);
    if (size) {
        size_t c = n < size - 1 ? n : size - 1;
        for (size_t i = 0; i < c; i++)
            dst[i] = src[i];
        dst[c] = 0;
    }
    return n;
}

int pa_streq(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

int pa_startswith(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return 0;
    return 1;
}

/* getenv(3) without getenv: walks environ itself, so it is safe before libc's
 * own init and never races a setenv that reallocates (mimalloc does the same
 * in _mi_prim_getenv). */
const char *pa_getenv(const char *name)
{
    size_t n = pa_strlen(name);
    if (!environ)
        return NULL;
    for (char **e = environ; *e; e++) {
        const char *s = *e;
        size_t i = 0;
        while (i < n && s[i] == name[i])
            i++;
        if (i == n && s[i] == '=')
            return s + n + 1;
    }
    return NULL;
}

char *pa_u64toa(uint64_t v, char *buf)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *buf++ = tmp[--n];
    *buf = 0;
    return buf;
}

/* Strict decimal: digits only, no sign, no overflow.  0 or -EINVAL. */
int pa_parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !*s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -EINVAL;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

/* write(2) through syscall(2): a later issue interposes write/send for socket
 * tracing, and the agent must never trace itself. Retries EINTR and short
 * writes.  Returns bytes written or -errno. */
long pa_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    size_t done = 0;
    while (done < len) {
        long r = syscall(SYS_write, fd, p + done, len - done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EIO;
        done += (size_t)r;
    }
    return (long)done;
}

uint32_t pa_gettid(void)
{
    return (uint32_t)syscall(SYS_gettid);
}

uint32_t pa_getpid(void)
{
    return (uint32_t)syscall(SYS_getpid);
}
