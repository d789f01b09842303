/*
 * unwind.c — unwinder setup and the slow paths of the cached-rule walk (the
 * walk itself is inline in unwind.h).
 *
 * Rule caches belong to thread slots, not threads: a slot's cache is mmap'd
 * when its first thread unwinds and is reused by the threads that get the
 * slot later, so a program that starts threads forever still has at most
 * PA_MAX_THREADS caches.  A rule depends only on the code at an address, so
 * it stays right across threads and fork; only dlclose (code unmapped, other
 * code mapped there later) makes it stale, which the generation counter
 * handles.
 */
#include "unwind.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string.h>

PA_HIDDEN PA_TLS pa_ucache_t *pa_ucache_tls;
PA_HIDDEN _Atomic uint64_t pa_unwind_gen = 1;
PA_HIDDEN _Atomic uint64_t pa_unwind_count_shared[PA_UC_N];
static _Atomic uint64_t mismatches, fills, others;
static pa_ucache_t *_Atomic slot_cache[PA_MAX_THREADS];

pa_ucache_t *pa_ucache_get(void)
{
    pa_thread_t *thr = pa_tls.thr;
    pa_ucache_t *c;
    uint64_t gen = atomic_load_explicit(&pa_unwind_gen, memory_order_acquire);
    size_t idx;
    if (!thr)
        return NULL;
    idx = (size_t)(thr - pa_thread_slot(0));
    if (idx >= PA_MAX_THREADS)
        return NULL;
    c = atomic_load_explicit(&slot_cache[idx], memory_order_acquire);
    if (!c) {
        if (!(c = pa_mmap(sizeof(*c))))
            return NULL;
        atomic_store_explicit(&slot_cache[idx], c, memory_order_release);
    }
    if (c->gen != gen) {
        memset(c->e, 0, sizeof(c->e));
        memset(c->memo, 0, sizeof(c->memo));
        c->gen = gen;
    }
    pa_ucache_tls = c;
    return c;
}

const pa_cfi_rule_t *pa_ucache_fill(pa_ucache_t *c, uint64_t key, int live)
{
    pa_ucache_ent_t *e = &c->e[pa_ucache_slot(key)];
    pa_cfi_rule_t r;
    /* A return address is looked up at the call instruction (ra - 1): a
     * noreturn call may be the last instruction of its function. */
    uint64_t pc = key & PA_UCACHE_EXACT ? key & ~PA_UCACHE_EXACT : key - 1;
    if (live)
        pa_cfi_find(pc, &r);
    else
        pa_cfi_find_walk(pc, &r);
    if (r.kind == PA_CFI_OTHER && atomic_fetch_add_explicit(&others, 1, memory_order_relaxed) < 5)
        pa_log_num(PA_LOG_DEBUG, "unwind: no simple rule at pc ", pc,
                   pa_unwind_strict ? " (stacks through it end there, cut short)"
                                    : " (stacks through it are left to libunwind)");
    atomic_fetch_add_explicit(&fills, 1, memory_order_relaxed);
    /* Key last, so a reader that sees the key sees its rule.  (The CPU
     * sampler, when it comes, must not fill from a signal handler that
     * interrupted a fill.) */
    e->key = 0;
    __asm__ volatile("" ::: "memory");
    e->rule = r;
    __asm__ volatile("" ::: "memory");
    e->key = key;
    return &e->rule;
}

static void log_frames(const char *what, const uint64_t *f, unsigned n)
{
    char line[40 * 19 + 64], *p = line;
    const char *hex = "0123456789abcdef";
    for (unsigned i = 0; i < n && i < 40; i++) {
        *p++ = ' ';
        *p++ = '0';
        *p++ = 'x';
        int started = 0;
        for (int sh = 60; sh >= 0; sh -= 4) {
            unsigned d = (unsigned)(f[i] >> sh) & 15;
            if (d || started || sh == 0) {
                *p++ = hex[d];
                started = 1;
            }
        }
    }
    *p = 0;
    pa_log(PA_LOG_INFO, "unwind verify: ", what, ":", line, NULL);
}

void pa_unwind_mismatch(const uint64_t *a, unsigned na, const uint64_t *b, unsigned nb)
{
    uint64_t k = atomic_fetch_add_explicit(&mismatches, 1, memory_order_relaxed);
    if (k < 3) { /* enough to debug; the total is logged at exit */
        log_frames("libunwind", a, na);
        log_frames("cfi", b, nb);
    }
}

void pa_unwind_memo_mismatch(uint32_t memo_sid, uint32_t sid)
{
    uint64_t k = atomic_fetch_add_explicit(&mismatches, 1, memory_order_relaxed);
    if (k < 3)
        pa_log_num(PA_LOG_INFO, "unwind verify: the memo named stack ", memo_sid,
                   sid ? " where libunwind's frames intern to another" : " where libunwind found none");
}

/* A PA_UC_* count over every slot's cache and the shared one (threads
 * still running may add a few while this reads: the count is for a log
 * line). */
static uint64_t total(unsigned what)
{
    uint64_t sum = atomic_load_explicit(&pa_unwind_count_shared[what], memory_order_relaxed);
    for (size_t i = 0; i < PA_MAX_THREADS; i++) {
        pa_ucache_t *c = atomic_load_explicit(&slot_cache[i], memory_order_acquire);
        if (c)
            sum += atomic_load_explicit(&c->count[what], memory_order_relaxed);
    }
    return sum;
}

/* Counters for PERFAGENT_LOG=debug and the verify mode's exit line.  In cfi
 * mode a stack is answered by cfi, left to libunwind or (cfi-strict) cut
 * short: the three add up to the stacks taken (tests/e2e/unwind.sh). */
void pa_unwind_report(void)
{
    uint64_t m = atomic_load(&mismatches), fb = total(PA_UC_FALLBACKS);
    uint64_t cuts = total(PA_UC_CUTS);
    if (pa_cfg.unwinder == PA_UNWIND_VERIFY) {
        char a[24], b[24], f[24];
        pa_u64toa(m, a);
        pa_u64toa(fb, b);
        pa_u64toa(atomic_load(&fills), f);
        pa_log(PA_LOG_INFO, "unwind verify: ", a, " mismatches, ", b,
               " stacks left to libunwind, ", f, " rules read", NULL);
    } else if (pa_cfg.unwinder == PA_UNWIND_CFI) {
        /* Strict mode exists to make cfi's gaps visible: say so even
         * without debug logging. */
        if (pa_unwind_strict && cuts)
            pa_log_num(PA_LOG_INFO, "unwind: ", cuts,
                       " stacks cut short where cfi had no rule (PERFAGENT_UNWIND=cfi-strict)");
        pa_log_num(PA_LOG_DEBUG, "unwind: stacks answered by cfi: ", total(PA_UC_ANSWERS), "");
        pa_log_num(PA_LOG_DEBUG, "unwind: stacks left to libunwind: ", fb, "");
        if (pa_unwind_strict)
            pa_log_num(PA_LOG_DEBUG, "unwind: stacks cut short (cfi-strict): ", cuts, "");
        pa_log_num(PA_LOG_DEBUG, "unwind: rules read from .eh_frame: ", atomic_load(&fills), "");
        pa_log_num(PA_LOG_DEBUG, "unwind: stacks walked (memo missed): ", total(PA_UC_WALKS), "");
    }
}

/* The first unwind allocates libunwind's caches and may take the loader lock
 * through dl_iterate_phdr: do it once, under the guard, before any hook
 * records (jemalloc's prof_unwind_init does the same for libgcc).  Must run
 * after libunwind's own initialization: see pa_ctor() in init.c. */
int pa_unwind_init(void)
{
    uint64_t buf[PA_UNWIND_BUF];
    unsigned first;
    int truncated;
    int r, nph = 0, ph[PA_FD_LOW_MAX], base, pipe_fd[2] = {-1, -1};
    uint64_t before = 0;
    if (pa_cfg.unwinder == PA_UNWIND_FP)
        return 0;
    /* libunwind's first call opens its memory-validation pipe (1.6's
     * x86_64/Ginit.c tdep_init_mem_validate -> open_pipe: pipe2 at the
     * lowest free numbers, 3 and 4 in a fresh process), and programs expect
     * those numbers free (CPython's test_pass_fds_redirected lists them).
     * Every free number below the agent's range is taken by a placeholder
     * for the call, so the pipe lands up there with the agent's own fds. */
    nph = pa_fd_fill_low(ph, PA_FD_LOW_MAX);
    base = pa_fd_low_base();
    for (int i = 0; base >= 0 && i < 64; i++)
        if (syscall(SYS_fcntl, base + i, F_GETFD) >= 0)
            before |= 1ull << i;
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_GLOBAL);
    r = pa_unwind_libunwind(buf, 8, &first, &truncated) > 0 ? 0 : -1;
    /* The pipe: the two new numbers up there (libc.c says what it is
     * watched for). */
    for (int i = 0, k = 0; base >= 0 && i < 64 && k < 2; i++)
        if (!(before & (1ull << i)) && syscall(SYS_fcntl, base + i, F_GETFD) >= 0)
            pipe_fd[k++] = base + i;
    if (pipe_fd[1] >= 0)
        pa_fd_unwind_pipe(pipe_fd[0], pipe_fd[1]);
    while (nph > 0)
        syscall(SYS_close, ph[--nph]);
    return r;
}
