/*
 * log.c — the agent's diagnostics: one line on stderr per message, built in a
 * stack buffer and written with one write(2) so lines from several processes
 * don't interleave (PIPE_BUF atomicity, pipe(7)).  No stdio: it may allocate
 * and takes locks the host may hold (memory-anchors P2).
 */
#include "fdtable.h"
#include "internal.h"

#include <stdarg.h>

static void put(char *buf, size_t *n, size_t cap, const char *s)
{
    while (*s && *n < cap)
        buf[(*n)++] = *s++;
}

static void emit(char *buf, size_t n)
{
    int fd = pa_fds_log_fd(); /* the program's stderr, also from the sender */
    buf[n++] = '\n';
    if (fd >= 0)
        pa_write_all(fd, buf, n);
    pa_fds_log_fd_done(fd);
}

static size_t prefix(char *buf, size_t cap)
{
    char num[24];
    size_t n = 0;
    pa_u64toa(pa_getpid(), num);
    put(buf, &n, cap, "perfagent[");
    put(buf, &n, cap, num);
    put(buf, &n, cap, "]: ");
    return n;
}

void pa_log(int level, const char *first, ...)
{
    char buf[1024];
    size_t cap = sizeof(buf) - 1, n;
    va_list ap;
    if (level > pa_cfg.loglevel)
        return;
    n = prefix(buf, cap);
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        put(buf, &n, cap, s);
    va_end(ap);
    emit(buf, n);
}

void pa_log_num(int level, const char *msg, uint64_t v, const char *tail)
{
    char num[24];
    pa_u64toa(v, num);
    pa_log(level, msg, num, tail ? tail : "", (const char *)NULL);
}
