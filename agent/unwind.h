/*
 * unwind.h — stack capture, inlined into heap.c's entry points so that only
 * two agent frames (the hook and the core entry) sit above the user's code.
 *
 * Default (PERFAGENT_UNWIND=cfi): our own walk over rules read from
 * .eh_frame (cfi.c), cached per thread by return address.  A frame costs a
 * hash, one cache line and one or two loads from the stack, about 2 ns,
 * where libunwind's unw_backtrace() spends ~10 ns (its trace cache is
 * reached through more indirection and per-frame validation).  It is right
 * for code without frame pointers, like libunwind and unlike a plain
 * frame-pointer walk.  Any frame whose rule is not "CFA = rsp|rbp + k,
 * return address at CFA-8" (signal frames, realigned stacks, code without
 * unwind info) hands the whole stack to unw_backtrace(), so such stacks come
 * out exactly as libunwind reports them.  PERFAGENT_UNWIND=verify runs both
 * and counts disagreements (tests/e2e/unwind.sh).
 *
 * PERFAGENT_UNWIND=cfi-strict (for tests): the same walk, but such a stack
 * is kept as far as the walk got (the frames up to and including the one
 * without a rule), marked truncated, instead of going to libunwind; a walk
 * that got no frame at all counts as an unwind failure.  The hand-off is
 * otherwise silent, so a cfi.c bug that makes every frame "other" would
 * leave every report right and only slower; in strict mode it shows up as
 * cut stacks.  Both hand-offs and cuts are counted (PERFAGENT_LOG=debug).
 *
 * PERFAGENT_UNWIND=libunwind: unw_backtrace() only, its fast path that caches
 * frame descriptions per address; never the unw_init_local/unw_step loop,
 * which costs ~13 us and ~39 rt_sigprocmask calls per stack (memory-anchors
 * P6).  PERFAGENT_UNWIND=fp walks frame pointers: right only when every
 * frame keeps one (-fno-omit-frame-pointer); otherwise callers go missing.
 *
 * Leading frames inside libperfagent.so are skipped: the result starts at the
 * return address into the code that called the allocation function.
 */
#ifndef PA_UNWIND_H
#define PA_UNWIND_H

#include "internal.h"
#include "cfi.h"

#define UNW_LOCAL_ONLY /* the _UL* local fast path, libunwind(3) */
#include <libunwind.h>

/* Room for the agent's own frames above max, plus one to tell a truncated
 * stack from an exact fit. */
#define PA_UNWIND_SLACK 8
#define PA_UNWIND_BUF (PA_MAX_FRAMES_LIMIT + PA_UNWIND_SLACK)

/* ---- the per-thread rule cache (unwind.c) ------------------------------ */
#define PA_UCACHE_BITS 11
#define PA_UCACHE_EXACT (1ull << 63) /* key flag: look up pc itself, not pc-1 */

typedef struct pa_ucache_ent {
    uint64_t key; /* return address (rule of key-1), or pc | PA_UCACHE_EXACT */
    pa_cfi_rule_t rule;
} pa_ucache_ent_t;

/* Stack memo: a finished walk remembers every stack word it read (address
 * and value, in order) and the stack id it interned.  The walk is a pure
 * function of the hook frame it starts from, the words it reads and the
 * rules (fixed within a generation), so when the same hook frame finds the
 * same words again the walk would produce the same frames: the id is reused
 * and both the walk and the intern are skipped.  The words are compared in
 * the order the walk read them, stopping at the first difference, so the
 * check reads only what the walk itself would read (never a stale address
 * of a stack that is gone). */
#define PA_MEMO_WORDS 32
#define PA_MEMO_BITS 6      /* 64 memos a thread slot */
#define PA_MEMO_WAYS_BITS 2 /* in sets of 4 */

typedef struct pa_memo {
    uint64_t fp;  /* hook frame the walk started at; 0: empty */
    uint32_t n;   /* words read; > PA_MEMO_WORDS: too deep to remember */
    uint32_t sid;
    uint64_t addr[PA_MEMO_WORDS];
    uint64_t val[PA_MEMO_WORDS];
} pa_memo_t;

/* Per-slot unwind counters (pa_ucache_t.count), for the exit report. */
enum {
    PA_UC_ANSWERS,   /* stacks taken from the walk or the memo */
    PA_UC_WALKS,     /* walks the memo did not save */
    PA_UC_FALLBACKS, /* stacks handed to libunwind */
    PA_UC_CUTS,      /* cfi-strict: stacks cut short */
    PA_UC_N
};

typedef struct pa_ucache {
    uint64_t gen; /* pa_unwind_gen when filled; a dlclose makes it stale */
    /* Only the owning thread writes these (pa_count_own: no locked add on a
     * line every allocating thread would share); the exit report sums all
     * slots.  Beside gen, which every unwind reads. */
    _Atomic uint64_t count[PA_UC_N];
    pa_ucache_ent_t e[1u << PA_UCACHE_BITS];
    pa_memo_t memo[1u << PA_MEMO_BITS];
    uint8_t memo_next[1u << (PA_MEMO_BITS - PA_MEMO_WAYS_BITS)]; /* round robin */
} pa_ucache_t;

extern PA_HIDDEN PA_TLS pa_ucache_t *pa_ucache_tls;
extern PA_HIDDEN _Atomic uint64_t pa_unwind_gen;
/* This thread's cache, emptied if stale; NULL when none can be had. */
PA_HIDDEN pa_ucache_t *pa_ucache_get(void);
/* Cache miss: reads the rule for key from .eh_frame and stores it.  live:
 * key is on the calling thread's own stack, as it runs (its code cannot be
 * unloaded meanwhile: the lock-free lookup is safe); 0 for a copied stack
 * of another thread (the CPU sampler's), whose objects another thread may
 * dlclose while we read them: looked up under the loader's lock. */
PA_HIDDEN const pa_cfi_rule_t *pa_ucache_fill(pa_ucache_t *c, uint64_t key, int live);
/* PERFAGENT_UNWIND=verify: the two unwinders disagreed. */
PA_HIDDEN void pa_unwind_mismatch(const uint64_t *a, unsigned na, const uint64_t *b, unsigned nb);
/* The same counts from threads that had no rule cache (no thread slot). */
extern PA_HIDDEN _Atomic uint64_t pa_unwind_count_shared[PA_UC_N];
/* pa_unwind_strict (PERFAGENT_UNWIND=cfi-strict) is declared in internal.h. */

static inline __attribute__((always_inline)) void pa_ucache_count(pa_ucache_t *c, unsigned what)
{
    pa_count_own(&c->count[what]);
}

/* The same where the cache may be missing (slow paths only). */
static inline void pa_unwind_count(unsigned what)
{
    pa_ucache_t *c = pa_ucache_tls;
    if (c)
        pa_count_own(&c->count[what]);
    else
        atomic_fetch_add_explicit(&pa_unwind_count_shared[what], 1, memory_order_relaxed);
}

static inline unsigned pa_ucache_slot(uint64_t key)
{
    return (unsigned)((key * 0x9e3779b97f4a7c15ull) >> (64 - PA_UCACHE_BITS));
}

static inline __attribute__((always_inline)) pa_ucache_t *pa_ucache_now(void)
{
    pa_ucache_t *c = pa_ucache_tls;
    if (PA_UNLIKELY(!c || c->gen != atomic_load_explicit(&pa_unwind_gen, memory_order_relaxed)))
        c = pa_ucache_get();
    return c;
}

/* Stack word at `a`, noted in the memo being written (if any). */
static inline __attribute__((always_inline)) uint64_t pa_walk_read(pa_memo_t *log, uint64_t a)
{
    uint64_t v = *(const uint64_t *)a;
    if (log) {
        if (PA_LIKELY(log->n < PA_MEMO_WORDS)) {
            log->addr[log->n] = a;
            log->val[log->n] = v;
        }
        log->n++;
    }
    return v;
}

/* The cached-rule walk.  Starts from the frame record at `from` (a hook's,
 * PA_HOOK_FP), or from right here when from is 0.  Returns the
 * frame count (frames are buf[0..n), agent frames already skipped), or, when
 * some frame needs libunwind, a negative r with the frames walked until then
 * in buf[0..~r) (the last one is the frame without a rule; cfi-strict keeps
 * them). */
static inline __attribute__((always_inline)) int
pa_unwind_cfi(uint64_t *buf, unsigned max, int *truncated, uintptr_t from, pa_memo_t *log)
{
#if defined(__x86_64__)
    pa_ucache_t *c = pa_ucache_now();
    uint64_t key, sp, bp, ra;
    unsigned n = 0;
    if (PA_UNLIKELY(!c))
        return ~0;
    if (PA_LIKELY(from)) {
        /* A frame-pointer frame: saved rbp at [fp], return address above
         * it, and the caller's rsp (the CFA) just past both. */
        bp = pa_walk_read(log, from);
        ra = pa_walk_read(log, from + 8);
        sp = from + 16;
        goto have_ra;
    }
    /* Where we are: the address of the mov that follows, and rsp/rbp as
     * they are there (no CFI changes inside an asm statement). */
    __asm__ volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2"
                     : "=r"(key), "=r"(sp), "=r"(bp));
    key |= PA_UCACHE_EXACT;
    for (;;) {
        const pa_ucache_ent_t *e = &c->e[pa_ucache_slot(key)];
        const pa_cfi_rule_t *r = &e->rule;
        uint64_t cfa;
        if (PA_UNLIKELY(e->key != key))
            r = pa_ucache_fill(c, key, 1);
        if (PA_UNLIKELY(r->kind != PA_CFI_STEP)) {
            if (r->kind == PA_CFI_OUTERMOST)
                break;
            return ~(int)n;
        }
        cfa = (r->cfa_rbp ? bp : sp) + (uint64_t)(int64_t)r->cfa_off;
        /* Each caller's frame lies above its callee's: a rule that says
         * otherwise is applied to a stack it does not describe. */
        if (PA_UNLIKELY(cfa <= sp))
            return ~(int)n;
        ra = pa_walk_read(log, cfa - 8);
        if (r->rbp_off != PA_CFI_RBP_SAME)
            bp = pa_walk_read(log, cfa + (uint64_t)(int64_t)r->rbp_off);
        sp = cfa;
    have_ra:
        if (PA_UNLIKELY(ra == 0))
            break; /* the ABI's end-of-stack marker */
        key = ra;
        if (pa_in_agent(ra))
            continue; /* the hooks on top, main()'s wrapper at the bottom */
        if (PA_UNLIKELY(n == max)) {
            *truncated = 1;
            break;
        }
        buf[n++] = ra;
    }
    pa_ucache_count(c, PA_UC_ANSWERS);
    return (int)n;
#else
    (void)buf, (void)max, (void)truncated, (void)from, (void)log;
    return ~0;
#endif
}

static inline __attribute__((always_inline)) unsigned
pa_unwind_libunwind(uint64_t *buf, unsigned max, unsigned *first, int *truncated)
{
    unsigned n, skip = 0, want = max + PA_UNWIND_SLACK;
    /* libunwind's pipe, closed by the program: back before libunwind
     * would reopen it at the program's numbers (libc.c says why). */
    if (PA_UNLIKELY(atomic_load_explicit(&pa_fd_unwind_pipe_closed, memory_order_relaxed)))
        pa_fd_unwind_pipe_restore();
    int r = unw_backtrace((void **)buf, (int)want);
    if (r <= 0)
        return 0;
    n = (unsigned)r;
    while (skip < n && pa_in_agent(buf[skip]))
        skip++;
    /* Agent frames further down (main()'s wrapper, hook_exit.c) go too. */
    n = skip;
    for (unsigned i = skip; i < (unsigned)r; i++)
        if (!pa_in_agent(buf[i]))
            buf[n++] = buf[i];
    n -= skip;
    if (n > max || (unsigned)r == want) {
        *truncated = 1;
        if (n > max)
            n = max;
    }
    *first = skip;
    return n;
}

static inline __attribute__((always_inline)) unsigned
pa_unwind_fp(uint64_t *buf, unsigned max, int *truncated)
{
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    /* Frame records must move up the stack and stay within a plausible
     * window (8 MiB: the default stack size). */
    uintptr_t lo = fp, hi = fp + (8u << 20);
    unsigned n = 0;
    while (fp >= lo && fp + 16 <= hi && !(fp & 7)) {
        uintptr_t next = ((uintptr_t *)fp)[0], ret = ((uintptr_t *)fp)[1];
        if (ret < 4096)
            break;
        if (!pa_in_agent(ret)) {
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
    return n;
}

/* Fills buf with the stack from `from` (see pa_unwind_cfi; only the cfi
 * walks use it, the others start here and skip the agent's frames); returns
 * the number of frames and sets *first to the index of the first non-agent
 * frame (frames are buf[*first .. *first + n)). */
static inline __attribute__((always_inline)) unsigned
pa_unwind_from(uintptr_t from, uint64_t *buf, unsigned max, unsigned *first, int *truncated)
{
    int n;
    *truncated = 0;
    *first = 0;
    if (PA_LIKELY(pa_cfg.unwinder == PA_UNWIND_CFI)) {
        if (PA_LIKELY((n = pa_unwind_cfi(buf, max, truncated, from, NULL)) >= 0))
            return (unsigned)n;
        if (pa_unwind_strict) {
            pa_unwind_count(PA_UC_CUTS);
            *truncated = 1;
            return (unsigned)~n;
        }
        pa_unwind_count(PA_UC_FALLBACKS);
        *truncated = 0;
        return pa_unwind_libunwind(buf, max, first, truncated);
    }
    if (pa_cfg.unwinder == PA_UNWIND_FP)
        return pa_unwind_fp(buf, max, truncated);
    if (pa_cfg.unwinder == PA_UNWIND_VERIFY) {
        uint64_t mine[PA_UNWIND_BUF];
        int mine_trunc = 0;
        unsigned nl = pa_unwind_libunwind(buf, max, first, truncated);
        n = pa_unwind_cfi(mine, max, &mine_trunc, from, NULL);
        if (n < 0)
            pa_unwind_count(PA_UC_FALLBACKS);
        else if ((unsigned)n != nl || mine_trunc != *truncated ||
                 __builtin_memcmp(mine, buf + *first, nl * sizeof(*buf)))
            pa_unwind_mismatch(buf + *first, nl, mine, (unsigned)n);
        return nl;
    }
    return pa_unwind_libunwind(buf, max, first, truncated);
}

/* The memo set for walks from hook frame fp.  Sets, not single slots: a
 * wrapper (an xmalloc, a site reached by two calls in one function) starts
 * walks from the same frame and return address toward different callers. */
static inline __attribute__((always_inline)) pa_memo_t *pa_memo_set(pa_ucache_t *c, uintptr_t fp)
{
    uint64_t k = (fp ^ ((const uint64_t *)fp)[1]) * 0x9e3779b97f4a7c15ull;
    return &c->memo[(k >> (64 - PA_MEMO_BITS + PA_MEMO_WAYS_BITS)) << PA_MEMO_WAYS_BITS];
}

/* The remembered stack id if a walk from fp would read the same words as
 * one of the set's walks did, else 0. */
static inline __attribute__((always_inline)) uint32_t pa_memo_hit(const pa_memo_t *set, uintptr_t fp)
{
    for (unsigned w = 0; w < (1u << PA_MEMO_WAYS_BITS); w++) {
        const pa_memo_t *m = &set[w];
        unsigned i = 0;
        if (m->fp != fp)
            continue;
        while (i < m->n && *(const uint64_t *)m->addr[i] == m->val[i])
            i++;
        if (i == m->n)
            return m->sid;
    }
    return 0;
}

/* The cfi walk through the memo: the stack's id, or 0 with *status 0 (no
 * frame, or the stack table is full: *status 1) or -1 (a frame needs
 * libunwind; never under cfi-strict, which interns the frames walked as a
 * truncated stack and does not remember it, so each such stack is counted
 * as cut). */
static inline __attribute__((always_inline)) uint32_t
pa_stack_id_cfi(pa_ucache_t *c, uintptr_t from, unsigned max, int *status)
{
    uint64_t buf[PA_UNWIND_BUF];
    pa_memo_t *set = pa_memo_set(c, from), *m;
    unsigned si = (unsigned)(set - c->memo) >> PA_MEMO_WAYS_BITS;
    int r, truncated = 0;
    uint32_t sid;
    if (PA_LIKELY((sid = pa_memo_hit(set, from)) != 0)) {
        pa_ucache_count(c, PA_UC_ANSWERS);
        return sid;
    }
    pa_ucache_count(c, PA_UC_WALKS);
    pa_tls.ticks_stale = 1;
    m = &set[c->memo_next[si]++ & ((1u << PA_MEMO_WAYS_BITS) - 1)];
    m->fp = 0;
    m->n = 0;
    r = pa_unwind_cfi(buf, max, &truncated, from, m);
    if (PA_UNLIKELY(r < 0) && pa_unwind_strict) {
        pa_ucache_count(c, PA_UC_CUTS);
        if (!(r = ~r)) {
            *status = 0;
            return 0;
        }
        *status = 1;
        return pa_stacks_intern(buf, (unsigned)r, 1);
    }
    if (r <= 0) {
        *status = r < 0 ? -1 : 0;
        return 0;
    }
    sid = pa_stacks_intern(buf, (unsigned)r, truncated);
    if (sid && m->n <= PA_MEMO_WORDS) {
        m->sid = sid;
        m->fp = from;
    }
    *status = 1;
    return sid;
}

/* PERFAGENT_UNWIND=verify: the memo named another stack than libunwind. */
PA_HIDDEN void pa_unwind_memo_mismatch(uint32_t memo_sid, uint32_t sid);

/* The interned id of the stack whose walk starts at `from` (the hook's
 * frame record, PA_HOOK_FP; 0: the calling stack, from right here): 0 with
 * *failed set when no frame could be read, 0 alone when the stack table is
 * full.  The start is an argument, never per-thread state: a new event kind
 * captures its stack by calling this with its own hook's frame. */
static inline __attribute__((always_inline)) uint32_t
pa_stack_id_from(uintptr_t from, unsigned max, int *failed)
{
    uint64_t buf[PA_UNWIND_BUF];
    unsigned first = 0, n;
    int truncated = 0, status;
    uint32_t sid, memo_sid = 0;
    pa_ucache_t *c;
    *failed = 0;
    if (PA_LIKELY(pa_cfg.unwinder == PA_UNWIND_CFI && from) && PA_LIKELY((c = pa_ucache_now()))) {
        if (PA_LIKELY((sid = pa_stack_id_cfi(c, from, max, &status)) != 0))
            return sid;
        if (status >= 0) {
            *failed = !status;
            return 0;
        }
        pa_ucache_count(c, PA_UC_FALLBACKS);
        n = pa_unwind_libunwind(buf, max, &first, &truncated);
    } else {
        pa_tls.ticks_stale = 1; /* every stack walked */
        if (pa_cfg.unwinder == PA_UNWIND_VERIFY && from && (c = pa_ucache_now()))
            memo_sid = pa_stack_id_cfi(c, from, max, &status);
        n = pa_unwind_from(from, buf, max, &first, &truncated);
    }
    if (PA_UNLIKELY(!n)) {
        *failed = 1;
        return 0;
    }
    sid = pa_stacks_intern(buf + first, n, truncated);
    if (PA_UNLIKELY(memo_sid) && memo_sid != sid)
        pa_unwind_memo_mismatch(memo_sid, sid);
    return sid;
}

#endif
