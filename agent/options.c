/*
 * options.c — PERFAGENT_* variables, read once at init by walking environ (no
 * getenv: see libc.c).  A bad value never stops the host: it gets one warning
 * line naming the variable, the value and the default used instead (from
 * the run's first process only: config_speaker).  An empty value is no value.
 *
 *   PERFAGENT_DISABLE=1              pass-through, record nothing
 *   PERFAGENT_MALLOC_RATE=N          mean bytes between heap samples (default 524288), 1 = every allocation, 0 = off
 *   PERFAGENT_CPU_HZ=N               CPU samples per second per thread, 0 = off
 *   PERFAGENT_CPU_MODE=auto|perf|timer  perf_event, else timer_create signals
 *                                    (default), up to 10000
 *   PERFAGENT_OUTPUT=PATH            file output; %p = pid, %e = exe name
 *   PERFAGENT_COLLECTOR=unix:PATH | tcp:HOST:PORT
 *   PERFAGENT_MAX_FRAMES=N           1..256, default 64
 *   PERFAGENT_BUFFER_KB=N            per-thread buffer, 64..65536, default 4096
 *   PERFAGENT_UNWIND=cfi|cfi-strict|libunwind|fp|verify    default cfi
 *   PERFAGENT_FOLLOW_EXEC=0|1        default 1
 *   PERFAGENT_FOLLOW_FORK=0|1        default 1
 *   PERFAGENT_LOG=quiet|info|debug   default info
 *   PERFAGENT_PQ=0|1 PERFAGENT_PQ_LITERALS=0|1  libpq tracing (default on), raw query text (default off)
 *   PERFAGENT_NET=0|1                socket and HTTP tracing, default 1
 *   PERFAGENT_CRASH=0|1              fatal-signal handlers that keep the data (crash.c), default 1
 *   PERFAGENT_PRIVATE_FDS=0|1        the sender on an fd table of its own where safe (fdtable.c), default 1
 *   PERFAGENT_SNAPSHOT_INTERVAL=S    0..31536000, default 0 (none)
 *   PERFAGENT_CPU_STACK_KB=N         1..63, default 8 (used by cpu.c)
 */
#include "control.h"
#include "crash.h"
#include "internal.h"
#include "unwind.h" /* pa_unwind_strict */

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

PA_HIDDEN pa_config_t pa_cfg = {
    .malloc_rate = 524288, /* sampled; 1 = exact */
    .max_frames = 64,
    .buffer_kb = 4096,
    .unwinder = PA_UNWIND_CFI,
    .follow_exec = 1,
    .follow_fork = 1,
    .net = 1,
    .loglevel = PA_LOG_INFO,
    .pq = 1,
    .private_fds = 1,
};
PA_HIDDEN int pa_unwind_strict;

/* Whether this process speaks for the run about its configuration: every
 * process of a tree reads the same variables, so under `perfagent run` (its
 * root is run's child) and below a file owner (PERFAGENT_OUTPUT_OWNER, set
 * by the first process for its descendants) only the first one warns; the
 * others say it under PERFAGENT_LOG=debug.  Decided before init.c's
 * claim_tree, from the same variables. */
static int config_speaker(void)
{
    const char *run = pa_getenv("PERFAGENT_RUN_PID");
    uint64_t rp;
    if (pa_getenv("PERFAGENT_OUTPUT_OWNER"))
        return 0;
    return !(run && pa_parse_u64(run, &rp) == 0 && rp != (uint64_t)syscall(SYS_getppid));
}

/* The value as the warning shows it: at most 48 bytes, bytes outside
 * printable ASCII as \xNN, so a value with a newline is still one line and
 * a 5000-byte value cannot push the default used off the end of the line
 * (log.c cuts lines at 1 KiB). */
static void show_value(const char *v, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0, i = 0, len = pa_strlen(v);
    for (; v[i] && i < 48 && n + 5 < cap; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out[n++] = (char)c;
        } else {
            out[n++] = '\\', out[n++] = 'x';
            out[n++] = hex[c >> 4], out[n++] = hex[c & 15];
        }
    }
    out[n] = 0;
    if (i < len) {
        char num[24];
        pa_u64toa(len, num);
        n += pa_strlcpy(out + n, "... (", cap - n);
        n += pa_strlcpy(out + n, num, cap - n);
        pa_strlcpy(out + n, " bytes)", cap - n);
    }
}

static void warn_bad(const char *var, const char *val, const char *fallback)
{
    char shown[256];
    show_value(val, shown, sizeof(shown));
    pa_log(config_speaker() ? PA_LOG_QUIET + 1 : PA_LOG_DEBUG, "ignoring ", var, "=", shown,
           ": ", fallback, (const char *)NULL);
}

/* An empty value is an unset one (as ${VAR:-default} reads it): no line. */
static const char *opt_env(const char *var)
{
    const char *v = pa_getenv(var);
    return v && *v ? v : NULL;
}

static void num_opt(const char *var, uint64_t lo, uint64_t hi, uint64_t *dst, const char *dflt)
{
    const char *v = opt_env(var);
    uint64_t x;
    if (!v)
        return;
    if (pa_parse_u64(v, &x) < 0 || x < lo || x > hi) {
        char msg[96], *p = msg;
        char a[24], b[24];
        pa_u64toa(lo, a);
        pa_u64toa(hi, b);
        p += pa_strlcpy(p, "expected a whole number from ", 40);
        p += pa_strlcpy(p, a, 24);
        p += pa_strlcpy(p, " to ", 8);
        p += pa_strlcpy(p, b, 24);
        p += pa_strlcpy(p, "; using ", 10);
        pa_strlcpy(p, dflt, (size_t)(msg + sizeof(msg) - p));
        warn_bad(var, v, msg);
        return;
    }
    *dst = x;
}

static void bool_opt(const char *var, int *dst)
{
    const char *v = opt_env(var);
    if (!v)
        return;
    if (pa_streq(v, "1") || pa_streq(v, "yes") || pa_streq(v, "true"))
        *dst = 1;
    else if (pa_streq(v, "0") || pa_streq(v, "no") || pa_streq(v, "false"))
        *dst = 0;
    else
        warn_bad(var, v, *dst ? "expected 0 or 1; using 1" : "expected 0 or 1; using 0");
}

/* "unix:PATH" or "tcp:HOST:PORT"; returns 0 or -1 */
static int parse_collector(const char *v)
{
    if (pa_startswith(v, "unix:") && v[5]) {
        if (pa_strlcpy(pa_cfg.out_path, v + 5, sizeof(pa_cfg.out_path)) >=
            sizeof(pa_cfg.out_path))
            return -1;
        pa_cfg.out_kind = PA_OUT_UNIX;
        return 0;
    }
    if (pa_startswith(v, "tcp:")) {
        const char *h = v + 4, *colon = NULL;
        uint64_t port;
        for (const char *s = h; *s; s++)
            if (*s == ':')
                colon = s;
        if (!colon || colon == h || (size_t)(colon - h) >= sizeof(pa_cfg.tcp_host))
            return -1;
        if (pa_parse_u64(colon + 1, &port) < 0 || port == 0 || port > 65535)
            return -1;
        for (size_t i = 0; i < (size_t)(colon - h); i++)
            pa_cfg.tcp_host[i] = h[i];
        pa_cfg.tcp_host[colon - h] = 0;
        pa_cfg.tcp_port = (unsigned)port;
        pa_cfg.out_kind = PA_OUT_TCP;
        return 0;
    }
    return -1;
}

void pa_options_load(void)
{
    const char *v;
    uint64_t x;
    long n;

    n = syscall(SYS_readlink, "/proc/self/exe", pa_cfg.exe, sizeof(pa_cfg.exe) - 1);
    pa_cfg.exe[n > 0 ? n : 0] = 0;
    pa_cfg.exe_base = pa_cfg.exe;
    for (const char *s = pa_cfg.exe; *s; s++)
        if (*s == '/')
            pa_cfg.exe_base = s + 1;
    if (!*pa_cfg.exe_base)
        pa_cfg.exe_base = "unknown";

    /* PERFAGENT_LOG first, so the warnings below honour it. */
    if ((v = opt_env("PERFAGENT_LOG"))) {
        if (pa_streq(v, "quiet"))
            pa_cfg.loglevel = PA_LOG_QUIET;
        else if (pa_streq(v, "info"))
            pa_cfg.loglevel = PA_LOG_INFO;
        else if (pa_streq(v, "debug"))
            pa_cfg.loglevel = PA_LOG_DEBUG;
        else
            warn_bad("PERFAGENT_LOG", v, "expected quiet, info or debug; using info");
    }
    bool_opt("PERFAGENT_DISABLE", &pa_cfg.disabled);

    x = pa_cfg.malloc_rate;
    num_opt("PERFAGENT_MALLOC_RATE", 0, 1ull << 40, &x, "524288");
    pa_cfg.malloc_rate = x;
    x = 0;
    num_opt("PERFAGENT_SNAPSHOT_INTERVAL", 0, 31536000, &x, "0 (no interval snapshots)");
    pa_snapshot_interval_s = (unsigned)x;
    x = pa_cfg.cpu_hz;
    num_opt("PERFAGENT_CPU_HZ", 0, 10000, &x, "0 (CPU sampling off)");
    pa_cfg.cpu_hz = (unsigned)x;
    /* Read again by cpu.c (pa_cpu_start) with the same rule, which takes
     * only a good value; checked here for the one line a bad one gets. */
    x = 8;
    num_opt("PERFAGENT_CPU_STACK_KB", 1, 63, &x, "8");
    if ((v = opt_env("PERFAGENT_CPU_MODE"))) {
        if (pa_streq(v, "auto"))
            pa_cfg.cpu_mode = PA_CPU_MODE_AUTO;
        else if (pa_streq(v, "perf"))
            pa_cfg.cpu_mode = PA_CPU_MODE_PERF;
        else if (pa_streq(v, "timer"))
            pa_cfg.cpu_mode = PA_CPU_MODE_TIMER;
        else
            warn_bad("PERFAGENT_CPU_MODE", v, "expected auto, perf or timer; using auto");
    }
    x = pa_cfg.max_frames;
    num_opt("PERFAGENT_MAX_FRAMES", 1, PA_MAX_FRAMES_LIMIT, &x, "64");
    pa_cfg.max_frames = (unsigned)x;
    x = pa_cfg.buffer_kb;
    num_opt("PERFAGENT_BUFFER_KB", 64, 65536, &x, "4096");
    pa_cfg.buffer_kb = (unsigned)x;

    if ((v = opt_env("PERFAGENT_UNWIND"))) {
        if (pa_streq(v, "cfi"))
            pa_cfg.unwinder = PA_UNWIND_CFI;
        else if (pa_streq(v, "cfi-strict")) /* cfi, with no libunwind behind it */
            pa_cfg.unwinder = PA_UNWIND_CFI, pa_unwind_strict = 1;
        else if (pa_streq(v, "libunwind"))
            pa_cfg.unwinder = PA_UNWIND_LIBUNWIND;
        else if (pa_streq(v, "fp"))
            pa_cfg.unwinder = PA_UNWIND_FP;
        else if (pa_streq(v, "verify"))
            pa_cfg.unwinder = PA_UNWIND_VERIFY;
        else
            warn_bad("PERFAGENT_UNWIND", v,
                     "expected cfi, cfi-strict, libunwind, fp or verify; using cfi");
    }
    bool_opt("PERFAGENT_FOLLOW_EXEC", &pa_cfg.follow_exec);
    bool_opt("PERFAGENT_FOLLOW_FORK", &pa_cfg.follow_fork);
    bool_opt("PERFAGENT_PQ", &pa_cfg.pq);
    bool_opt("PERFAGENT_PQ_LITERALS", &pa_cfg.pq_literals);
    bool_opt("PERFAGENT_NET", &pa_cfg.net);
    bool_opt("PERFAGENT_CRASH", &pa_crash_enabled);
    bool_opt("PERFAGENT_PRIVATE_FDS", &pa_cfg.private_fds);

    pa_cfg.out_kind = PA_OUT_FILE;
    if ((v = pa_getenv("PERFAGENT_COLLECTOR")) && *v) {
        if (parse_collector(v) < 0) {
            warn_bad("PERFAGENT_COLLECTOR", v,
                     "expected unix:PATH or tcp:HOST:PORT; writing a file instead");
            pa_cfg.out_kind = PA_OUT_FILE;
        } else {
            pa_strlcpy(pa_cfg.out_spec, v, sizeof(pa_cfg.out_spec));
            return;
        }
    }
    if ((v = pa_getenv("PERFAGENT_OUTPUT")) && *v &&
        pa_strlen(v) < sizeof(pa_cfg.out_spec) - 8) {
        pa_strlcpy(pa_cfg.out_spec, v, sizeof(pa_cfg.out_spec));
    } else {
        if (v && *v)
            warn_bad("PERFAGENT_OUTPUT", v, "too long a path; using ./perfagent-%e.%p.pfr");
        pa_strlcpy(pa_cfg.out_spec, "perfagent-%e.%p.pfr", sizeof(pa_cfg.out_spec));
        pa_cfg.out_default = 1;
    }
}

/* Expands %p / %e in the file template for this process.  A template without
 * %p names the first process's file (`first`); other processes (fork
 * children, exec'd programs: see init.c) append ".PID" so no two processes
 * share a file. */
int pa_path_is_special(const char *path)
{
    struct stat st;
    if (syscall(SYS_newfstatat, AT_FDCWD, path, &st, 0) != 0)
        return 0;
    return !S_ISREG(st.st_mode);
}

void pa_options_expand_output(uint32_t pid, int first)
{
    char num[24], *o = pa_cfg.out_path, *end = pa_cfg.out_path + sizeof(pa_cfg.out_path) - 1;
    int has_pid = 0;
    if (pa_cfg.out_kind != PA_OUT_FILE)
        return;
    pa_u64toa(pid, num);
    for (const char *s = pa_cfg.out_spec; *s && o < end; s++) {
        const char *sub = NULL;
        if (s[0] == '%' && s[1] == 'p')
            sub = num, has_pid = 1;
        else if (s[0] == '%' && s[1] == 'e')
            sub = pa_cfg.exe_base;
        if (sub) {
            while (*sub && o < end)
                *o++ = *sub++;
            s++;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
    /* A device or FIFO (PERFAGENT_OUTPUT=/dev/null, a pipe a reader holds
     * open) is one sink for every process: "/dev/null.1234" would be a
     * regular file made in /dev by each exec'd or forked child. */
    if (!has_pid && !first && pa_path_is_special(pa_cfg.out_path))
        return;
    if (!has_pid && !first) {
        const char *sub = num;
        if (o < end)
            *o++ = '.';
        while (*sub && o < end)
            *o++ = *sub++;
        *o = 0;
    }
}
