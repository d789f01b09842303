/*
 * crash.c — keeping the data through a fatal signal (issue 16).
 *
 * The handler (on_fatal) runs in signal context, on the thread the signal
 * was delivered to, possibly in the middle of a malloc hook (the guard set,
 * its ring with a row half written, never committed) or of the sender's own
 * work.  It allocates nothing and takes no lock; it:
 *  1. notes the signal, si_code, the faulting address, the thread, and
 *     copies its registers and the top of its stack (process_vm_readv on our
 *     own pid, page by page, as cpu_timer.c does: a short stack ends the
 *     copy instead of faulting) into memory mapped at install;
 *  2. asks the sender for a crash flush — drain every ring, declare the
 *     stacks, the Crash record, a final AgentStats — and waits for it on a
 *     futex, at most CRASH_WAIT_MS.  The sender walks the copied stack with
 *     the .eh_frame rules (the same walk cpu.c does for a CPU sample: no
 *     unwinding in signal context) and interns it as a leaf_is_pc stack.
 *     When the crashing thread is the sender, it does that itself
 *     (pa_sender_crash_direct: a full flush when it was idle, else one frame
 *     with the crash only, written straight to the output);
 *  3. lets the process go on exactly as it would have without us: the
 *     program's handler runs (with its sa_mask, SA_SIGINFO or not,
 *     SA_RESETHAND and SA_NODEFER as it asked), or, for the default action,
 *     the disposition goes back to SIG_DFL and the signal comes again (a
 *     fault re-executes its instruction; a sent or raised one is raised
 *     again and arrives when we return), so the exit status and the core
 *     dump are the kernel's own.  An ignored signal stays ignored.
 * Only the first fatal signal of the process is recorded.  A fatal signal
 * in the thread already inside the handler takes the default action at
 * once; one in another thread waits (bounded) for the first to finish.
 *
 * The stack table: a thread that crashed while inside the agent (its guard
 * held and an agent frame on its stack) may hold a stack-table slot busy
 * forever, so its stack is not interned (Crash.stack_skipped says so).
 *
 * Stack overflow: the handler needs a stack of its own then.  The thread
 * that runs the constructor (the main thread) gets a 64 KiB alternate
 * signal stack when it has none; other threads have none (a stack overflow
 * there kills the process before the handler runs, as without us).
 */
#include "crash.h"
#include "unwind.h"

#include <errno.h>
#include <dlfcn.h>
#include <linux/futex.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define CRASH_WAIT_MS 1000          /* the bound on the wait for the flush */
#define STACK_COPY (64u << 10)      /* bytes of the crashing stack kept */
#define ALT_STACK (64u << 10)

PA_HIDDEN int pa_crash_enabled = 1;

/* The program's view of each managed signal: what it installed last (or
 * what was there at install), returned as sigaction's oldact. */
static struct sigaction prev[NSIG];
/* Our handler is the kernel's disposition for the signal. */
static volatile sig_atomic_t ours[NSIG];
static int installed;
static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
extern int __sigaction(int, const struct sigaction *, struct sigaction *);

/* The crash, once: owner is the tid of the thread recording it. */
static _Atomic uint32_t owner;
static _Atomic uint32_t done_word;    /* 1: recorded (or given up) */
static _Atomic uint32_t flushed_word; /* the sender's answer */
static _Atomic int requested;
static pa_crash_info_t info;
static int guard_at_crash;             /* the crashing thread's pa_tls.guard */
static uint64_t reg_ip, reg_sp, reg_bp;
static uint8_t *stack_copy;            /* STACK_COPY bytes, mapped at install */
static uint64_t copy_base;             /* the address stack_copy[0] came from */
static uint32_t stack_len;
static pa_ucache_t *walk_cache;        /* rules for the walk, ours alone */
static int prepared;


/* ---- which signals -------------------------------------------------------- */

/* Faults: handled unless ignored.  Terminations: handled only while their
 * action is the default one (a program's handler for SIGTERM is its
 * shutdown, not a crash). */
static int is_fault(int sig)
{
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGABRT;
}

static int is_term(int sig)
{
    return sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT;
}

static void *handler_of(const struct sigaction *sa)
{
    return sa->sa_flags & SA_SIGINFO ? (void *)sa->sa_sigaction : (void *)sa->sa_handler;
}

/* Whether our handler must be the kernel's disposition for act. */
static int wants_ours(int sig, const struct sigaction *act)
{
    void *h = handler_of(act);
    if (h == (void *)SIG_IGN)
        return 0; /* stays ignored for real: exec keeps it (nohup) */
    return is_fault(sig) || h == (void *)SIG_DFL;
}

/* ---- the real sigaction and the program's view ----------------------------- */

int pa_crash_real_sigaction(int sig, const struct sigaction *act, struct sigaction *oldact)
{
    if (!real_sigaction) {
        /* dlsym may allocate: from the pool, never the host's heap. */
        void *f;
        pa_tls.guard++;
        pa_tls.boot_serve++;
        f = dlsym(RTLD_NEXT, "sigaction");
        pa_tls.boot_serve--;
        pa_tls.guard--;
        *(void **)&real_sigaction = f ? f : (void *)__sigaction;
    }
    return real_sigaction(sig, act, oldact);
}

int pa_crash_manages(int sig)
{
    return installed && sig > 0 && sig < NSIG && (is_fault(sig) || is_term(sig));
}

static void on_fatal(int sig, siginfo_t *si, void *ucv);

static void our_action(struct sigaction *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sa_sigaction = on_fatal;
    /* SA_ONSTACK: the alternate stack where there is one (stack overflow).
     * The terminations wait while we flush: a second one must not end the
     * process under us. */
    sa->sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa->sa_mask);
    sigaddset(&sa->sa_mask, SIGTERM);
    sigaddset(&sa->sa_mask, SIGINT);
    sigaddset(&sa->sa_mask, SIGHUP);
    sigaddset(&sa->sa_mask, SIGQUIT);
    sigaddset(&sa->sa_mask, SIGPIPE); /* a write to a dead collector */
}

int pa_crash_sigaction(int sig, const struct sigaction *act, struct sigaction *oldact)
{
    struct sigaction old = prev[sig];
    if (act) {
        int want = wants_ours(sig, act);
        if (!want) {
            if (pa_crash_real_sigaction(sig, act, NULL) < 0)
                return -1;
        } else if (!ours[sig]) {
            struct sigaction mine;
            our_action(&mine);
            if (pa_crash_real_sigaction(sig, &mine, NULL) < 0)
                return -1;
        }
        prev[sig] = *act;
        ours[sig] = want;
    }
    if (oldact)
        *oldact = old;
    return 0;
}

/* ---- install ----------------------------------------------------------------- */

/* The constructor's thread (main) gets an alternate signal stack when it
 * has none, so a stack overflow there still reaches the handler. */
static void main_alt_stack(void)
{
    stack_t cur, ss;
    if (sigaltstack(NULL, &cur) != 0 || !(cur.ss_flags & SS_DISABLE))
        return; /* the program (or a runtime) has its own */
    if (!(ss.ss_sp = pa_mmap(ALT_STACK)))
        return;
    ss.ss_size = ALT_STACK;
    ss.ss_flags = 0;
    if (sigaltstack(&ss, NULL) != 0)
        pa_munmap(ss.ss_sp, ALT_STACK);
}

void pa_crash_install(void)
{
    struct sigaction mine;
    if (!pa_crash_enabled || installed)
        return;
    stack_copy = pa_mmap(STACK_COPY);
    walk_cache = pa_mmap(sizeof(*walk_cache));
    if (!stack_copy || !walk_cache)
        return;
    our_action(&mine);
    for (int sig = 1; sig < NSIG; sig++) {
        if (!is_fault(sig) && !is_term(sig))
            continue;
        if (pa_crash_real_sigaction(sig, NULL, &prev[sig]) != 0)
            continue;
        if (!wants_ours(sig, &prev[sig]))
            continue;
        if (pa_crash_real_sigaction(sig, &mine, NULL) == 0)
            ours[sig] = 1;
    }
    main_alt_stack();
    installed = 1;
}

/* ---- the stack --------------------------------------------------------------- */

/* [from, from + STACK_COPY) as far as it is readable, one page per iovec
 * so a short stack ends the copy at its last page (process_vm_readv(2)). */
static long copy_from(uint64_t from)
{
    struct iovec local = {stack_copy, STACK_COPY}, remote[STACK_COPY / 4096 + 1];
    uint64_t a = from, end = from + STACK_COPY;
    unsigned n = 0;
    while (a < end && n < PA_ARRAY_LEN(remote)) {
        uint64_t next = (a | 4095) + 1;
        if (next > end)
            next = end;
        remote[n].iov_base = (void *)a;
        remote[n++].iov_len = next - a;
        a = next;
    }
    return syscall(SYS_process_vm_readv, (long)pa_getpid(), &local, 1ul, remote, (unsigned long)n,
                   0ul);
}

/* The crashing stack from sp up.  A stack overflow leaves sp on the guard
 * page (or below it): the frames start at the next readable page. */
static void copy_stack(uint64_t sp)
{
    long got = 0;
    copy_base = sp;
    for (int i = 0; i < 4 && got <= 0; i++) {
        got = copy_from(copy_base);
        if (got <= 0)
            copy_base = (copy_base | 4095) + 1;
    }
    stack_len = got > 0 ? (uint32_t)got : 0;
}

static int copy_read(uint64_t a, uint64_t *v)
{
    if (a < copy_base || a - copy_base > stack_len || stack_len - (a - copy_base) < 8)
        return -1;
    memcpy(v, stack_copy + (a - copy_base), 8);
    return 0;
}

/* The walk cpu.c does for a CPU sample, over our copy: frames[0] = pc.
 * *agent: a frame of the agent's own code was met. */
static unsigned walk(uint64_t *frames, unsigned max, int *truncated, int *agent)
{
    uint64_t gen = atomic_load_explicit(&pa_unwind_gen, memory_order_acquire);
    uint64_t ip = reg_ip, sp = reg_sp, bp = reg_bp, key = ip | PA_UCACHE_EXACT;
    unsigned n = 0;
    int outside;
    *truncated = 1;
    *agent = 0;
    if (!ip || !max)
        return 0;
    if (walk_cache->gen != gen) {
        memset(walk_cache->e, 0, sizeof(walk_cache->e));
        walk_cache->gen = gen;
    }
    frames[n++] = ip;
    outside = !pa_in_agent(ip);
    *agent = !outside;
    for (;;) {
        const pa_ucache_ent_t *e = &walk_cache->e[pa_ucache_slot(key)];
        const pa_cfi_rule_t *r = &e->rule;
        uint64_t cfa, ra;
        if (e->key != key)
            r = pa_ucache_fill(walk_cache, key, 1); /* our own stack: no lock in a handler */
        if (r->kind == PA_CFI_OUTERMOST) {
            *truncated = 0;
            break;
        }
        if (r->kind != PA_CFI_STEP)
            break;
        cfa = (r->cfa_rbp ? bp : sp) + (uint64_t)(int64_t)r->cfa_off;
        if (cfa <= sp || copy_read(cfa - 8, &ra) < 0)
            break;
        if (r->rbp_off != PA_CFI_RBP_SAME && copy_read(cfa + (uint64_t)(int64_t)r->rbp_off, &bp) < 0)
            break;
        sp = cfa;
        if (ra == 0) {
            *truncated = 0;
            break;
        }
        key = ra;
        if (pa_in_agent(ra)) {
            *agent = 1;
            if (outside)
                continue; /* the hooks, main()'s wrapper */
        }
        outside |= !pa_in_agent(ra);
        if (n == max)
            break;
        frames[n++] = ra;
    }
    return n;
}

void pa_crash_prepare(void)
{
    static uint64_t frames[PA_MAX_FRAMES_LIMIT];
    int truncated, agent;
    unsigned n;
    if (prepared)
        return;
    prepared = 1;
    n = walk(frames, pa_cfg.max_frames, &truncated, &agent);
    if (!n) {
        info.skipped = "no stack could be read";
        return;
    }
    if (agent && guard_at_crash > 0) {
        /* It may hold a stack-table slot busy: interning could spin for
         * ever on it. */
        info.skipped = "the thread was inside the agent";
        return;
    }
    info.stack_id = pa_stacks_intern_pc(frames, n, truncated);
    if (!info.stack_id)
        info.skipped = "the agent's stack table was full";
}

const pa_crash_info_t *pa_crash_info(void)
{
    return &info;
}

int pa_crash_requested(void)
{
    return atomic_load_explicit(&requested, memory_order_acquire);
}

void pa_crash_flushed(int ok)
{
    (void)ok;
    atomic_store_explicit(&requested, 0, memory_order_relaxed);
    atomic_store_explicit(&flushed_word, 1, memory_order_release);
    pa_futex(&flushed_word, FUTEX_WAKE_PRIVATE, 1, NULL);
}

/* ---- the handler ------------------------------------------------------------- */

/* A fault the instruction makes again when we return (not sent, not
 * raised: si_code > 0 is the kernel's own for these). */
static int refaults(int sig, const siginfo_t *si)
{
    return si->si_code > 0 && (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE);
}

/* The default action, as the kernel would have taken it. */
static void die_default(int sig, const siginfo_t *si)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    pa_crash_real_sigaction(sig, &dfl, NULL);
    ours[sig] = 0;
    prev[sig] = dfl;
    if (refaults(sig, si))
        return; /* the instruction faults again: same signal, same core */
    /* Sent or raised: again, to this thread; it is blocked while we run,
     * so it arrives as we return. */
    syscall(SYS_tgkill, (long)pa_getpid(), (long)pa_gettid(), (long)sig);
}

/* What the program asked for sig. */
static void chain(int sig, siginfo_t *si, void *ucv)
{
    struct sigaction h = prev[sig];
    void *fn = handler_of(&h);
    ucontext_t *uc = ucv;
    sigset_t m;
    if (fn == (void *)SIG_DFL) {
        die_default(sig, si);
        return;
    }
    if (fn == (void *)SIG_IGN) {
        if (refaults(sig, si))
            die_default(sig, si); /* the kernel kills for an ignored fault */
        return;
    }
    if (h.sa_flags & SA_RESETHAND) {
        /* The kernel resets on entry to the handler (sigaction(2)). */
        memset(&prev[sig], 0, sizeof(prev[sig]));
        prev[sig].sa_handler = SIG_DFL;
    }
    /* The mask its handler would run with: the interrupted one, its
     * sa_mask, and the signal itself unless SA_NODEFER. */
    m = uc->uc_sigmask;
    sigorset(&m, &m, &h.sa_mask);
    if (h.sa_flags & SA_NODEFER)
        sigdelset(&m, sig);
    else
        sigaddset(&m, sig);
    pthread_sigmask(SIG_SETMASK, &m, NULL);
    if (h.sa_flags & SA_SIGINFO)
        h.sa_sigaction(sig, si, ucv);
    else
        h.sa_handler(sig);
    /* Returning restores uc_sigmask (sigreturn). */
}

static void record(int sig, const siginfo_t *si, const ucontext_t *uc, uint32_t me)
{
    info.signo = sig;
    info.code = si->si_code;
    info.addr = sig != SIGABRT && is_fault(sig) && si->si_code > 0 ? (uint64_t)si->si_addr : 0;
    info.sender_pid = si->si_code <= 0 ? (uint32_t)si->si_pid : 0;
    info.tid = me;
    info.ticks = pa_ticks();
    info.mono_ns = pa_mono_ns();
    info.host_handler = handler_of(&prev[sig]) != (void *)SIG_DFL &&
                        handler_of(&prev[sig]) != (void *)SIG_IGN;
    guard_at_crash = pa_tls.guard;
    reg_ip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
    reg_sp = (uint64_t)uc->uc_mcontext.gregs[REG_RSP];
    reg_bp = (uint64_t)uc->uc_mcontext.gregs[REG_RBP];
    copy_stack(reg_sp);
    if (!atomic_load(&pa_agent_on))
        return; /* off, or the final flush is running: nothing to add */
    if (me == atomic_load(&pa_sender_tid)) {
        info.direct = !pa_sender_idle(); /* the rings are lost unless idle */
        pa_sender_crash_direct();
        return;
    }
    if (!pa_sender_running())
        return; /* no sender (a fork child that never recorded) */
    atomic_store_explicit(&requested, 1, memory_order_release);
    pa_sender_wake();
    pa_wait_word(&flushed_word, pa_mono_ns() + CRASH_WAIT_MS * 1000000ull);
}

static void on_fatal(int sig, siginfo_t *si, void *ucv)
{
    int saved = errno;
    uint32_t me = pa_gettid(), expect = 0;
    if (is_term(sig) && handler_of(&prev[sig]) != (void *)SIG_DFL) {
        chain(sig, si, ucv); /* the program's own, or ignored since */
        goto out;
    }
    if (atomic_compare_exchange_strong(&owner, &expect, me)) {
        record(sig, si, ucv, me);
        atomic_store_explicit(&done_word, 1, memory_order_release);
        pa_futex(&done_word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL);
    } else if (expect == me) {
        if (!atomic_load_explicit(&done_word, memory_order_acquire)) {
            /* A fatal signal inside our own handler: no second try. */
            die_default(sig, si);
            goto out;
        }
    } else {
        /* Another thread is recording: let it finish (bounded). */
        pa_wait_word(&done_word, pa_mono_ns() + CRASH_WAIT_MS * 1000000ull);
    }
    chain(sig, si, ucv);
out:
    errno = saved;
}

/* The sender blocks every signal (sender.c); the kernel ignores a blocked
 * handler for a fault and kills at once.  Unblock the faults on it, so a
 * crash of the sender reaches the handler too. */
void pa_crash_sender_unblock(void)
{
    sigset_t s;
    if (!installed)
        return;
    sigemptyset(&s);
    sigaddset(&s, SIGSEGV);
    sigaddset(&s, SIGBUS);
    sigaddset(&s, SIGILL);
    sigaddset(&s, SIGFPE);
    sigaddset(&s, SIGABRT);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
}
