/*
 * init.c — the agent's life cycle: one init funnel reachable from the
 * constructor and from the first hooked call (whichever comes first: another
 * library's constructor may allocate before ours runs), the final flush in
 * the destructor, and the fork/exec policy.
 *
 * Init may run inside the host's very first malloc, so it allocates nothing
 * from the host heap and calls nothing interposed; the sender thread is
 * started from the constructor, never from inside a malloc made before libc
 * finished initializing.
 */
#include "crash.h"
#include "fdtable.h"
#include "heap.h"
#include "net.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h> /* RENAME_NOREPLACE */
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

PA_HIDDEN _Atomic int pa_state;
PA_HIDDEN _Atomic int pa_heap_on __attribute__((aligned(64))); /* read by every hook */
PA_HIDDEN _Atomic int pa_agent_on;
PA_HIDDEN pa_stats_t pa_stats;

static _Atomic uint32_t init_tid;
static uint64_t start_mono, start_real;
static uint32_t my_pid, parent_stream_pid;
static int ctor_ran;
static int output_first = 1; /* this process owns a file name without %p */
static int output_claimed;    /* this image set PERFAGENT_OUTPUT_OWNER to its pid */
static int handed_over;       /* ... after the image before it handed it the name */

uint64_t pa_start_mono_ns(void) { return start_mono; }
uint64_t pa_start_real_ns(void) { return start_real; }
uint32_t pa_pid(void) { return my_pid; }

/* A vfork(2) child (CPython's subprocess spawns with it) runs in our memory,
 * on the suspended parent thread's stack and TLS, with its own fd table and
 * signal handlers, until it execs or _exits; no fork handler runs, so every
 * agent variable it sees is the parent's.  What a hook would do there (stop
 * the sender at exec or _exit, take a closed fd range for the program
 * taking our output, record a handler as the host's) would be done to the
 * parent: those hooks pass straight through (tests/e2e/vfork.sh).  One
 * getpid(2), so only for hooks that make a system call anyway. */
int pa_vfork_child(void)
{
    return my_pid && pa_getpid() != my_pid;
}
uint32_t pa_parent_stream_pid(void) { return parent_stream_pid; }
int pa_output_first(void) { return output_first; }

/* The first traced process of the run (claim_tree): the one that says
 * things once for the whole run. */
static int tree_root = 1;
int pa_tree_root(void) { return tree_root; }

#define STACK_TABLE_CAPACITY (1u << 20)
#define EXIT_FLUSH_MS 10000

/* Takes libperfagent.so out of LD_PRELOAD in place (no allocation), so exec'd
 * programs run without the agent (heaptrack unsetenv()s LD_PRELOAD for the
 * same policy; ld.so(8) splits LD_PRELOAD on ':' and ' '). */
static void drop_self_from_preload(void)
{
    extern char **environ;
    for (char **e = environ; e && *e; e++) {
        char *s = *e, *w, *r;
        if (!pa_startswith(s, "LD_PRELOAD="))
            continue;
        w = r = s + 11;
        while (*r) {
            char *tok = r, *end;
            int mine;
            while (*r && *r != ':' && *r != ' ')
                r++;
            end = r;
            mine = 0;
            for (char *q = tok; q + 15 <= end; q++)
                if (pa_startswith(q, "libperfagent.so"))
                    mine = 1;
            if (!mine && end > tok) {
                if (w != s + 11)
                    *w++ = ':';
                for (char *q = tok; q < end; q++)
                    *w++ = *q;
            }
            if (*r)
                r++;
        }
        *w = 0;
    }
}

/* Whether this is the run's first traced process, without changing the
 * environment (a setenv of ours reallocates the program's environ array
 * behind the guard: git then frees a block the stream never saw).  Under
 * `perfagent run` its pid is PERFAGENT_RUN_PID and the root is its child;
 * with a file output, a process that inherited PERFAGENT_OUTPUT_OWNER is
 * not the root (an image the name was handed to either: the image before
 * it already spoke for the run); otherwise every process speaks for itself. */
static void claim_tree(void)
{
    const char *run = pa_getenv("PERFAGENT_RUN_PID");
    uint64_t rp;
    if (pa_getenv("PERFAGENT_OUTPUT_OWNER") && (!output_first || handed_over))
        tree_root = 0;
    if (run && pa_parse_u64(run, &rp) == 0 && rp != (uint64_t)syscall(SYS_getppid))
        tree_root = 0;
}

/* The image before ours (same pid) owned the plain name and exec'd us: it
 * handed the name on (hook_exec.c, PERFAGENT_OUTPUT_OWNER=PID:0 or
 * PID:1:EXE), so the plain name holds the program the user ran, not a
 * wrapper that exec'd it (Debian's psql is the perl script pg_wrapper).
 * 0: it wrote nothing, the name is simply ours.  1: it wrote a stream,
 * which moves to NAME.PID (NAME.PID.N if taken: never over another file),
 * the name it would have had as any other process; EXE, its program's name,
 * says whether it was our name at all when the name has %e.  Returns
 * whether the plain name is ours. */
static int take_handover(const char *owner)
{
    char num[24], path[sizeof(pa_cfg.out_path) + 32];
    const char *colon = owner;
    uint64_t pid;
    int has_e = 0;
    size_t n;
    while (*colon && *colon != ':')
        colon++;
    if (!*colon || (size_t)(colon - owner) >= sizeof(num))
        return 0;
    for (n = 0; owner + n < colon; n++)
        num[n] = owner[n];
    num[n] = 0;
    if (pa_parse_u64(num, &pid) < 0 || pid != my_pid)
        return 0; /* inherited from an image of another process */
    if (pa_streq(colon + 1, "0"))
        return 1;
    if (colon[1] != '1' || colon[2] != ':')
        return 0;
    for (const char *s = pa_cfg.out_spec; *s; s++)
        if (s[0] == '%' && s[1] == 'e')
            has_e = 1;
    if (has_e && !pa_streq(colon + 3, pa_cfg.exe_base))
        return 1; /* its file has another name: ours is free */
    pa_options_expand_output(my_pid, 1);
    if (pa_path_is_special(pa_cfg.out_path))
        return 1; /* a FIFO or /dev/null: one sink for every stream */
    pa_u64toa(my_pid, num);
    for (unsigned i = 0; i < 100; i++) {
        char *p = path + pa_strlcpy(path, pa_cfg.out_path, sizeof(pa_cfg.out_path));
        *p++ = '.';
        p += pa_strlcpy(p, num, sizeof(num));
        if (i) {
            char k[24];
            *p++ = '.';
            pa_u64toa(i, k);
            pa_strlcpy(p, k, sizeof(k));
        }
        if (syscall(SYS_renameat2, AT_FDCWD, pa_cfg.out_path, AT_FDCWD, path,
                    RENAME_NOREPLACE) == 0)
            return 1;
        if (errno == ENOENT)
            return 1; /* it never got as far as the file */
        if (errno != EEXIST)
            return 0; /* no RENAME_NOREPLACE here (EINVAL): the old rule */
    }
    return 0;
}

/* A file name without %p is the first process's; mark it taken for exec'd
 * descendants, whose agents then add ".PID".  setenv allocates: fine here,
 * we hold the guard and run in the constructor. */
static void claim_output(void)
{
    int has_pid = 0;
    const char *owner;
    char val[24];
    if (pa_cfg.out_kind != PA_OUT_FILE)
        return;
    for (const char *s = pa_cfg.out_spec; *s; s++)
        if (s[0] == '%' && s[1] == 'p')
            has_pid = 1;
    if (has_pid)
        return;
    if ((owner = pa_getenv("PERFAGENT_OUTPUT_OWNER"))) {
        if (!take_handover(owner)) {
            output_first = 0;
            return;
        }
        handed_over = 1;
    }
    pa_u64toa(my_pid, val);
    /* setenv copies environ and the string with malloc: from the pool, so
     * the host's heap starts where it would without us (800 bytes there
     * moved mallocbench's worker structs onto one cache line), and the
     * host's later setenv or clearenv moves or frees pool blocks, which the
     * hooks know (never an "unknown free"). */
    pa_tls.guard++;
    pa_tls.boot_serve++;
    setenv("PERFAGENT_OUTPUT_OWNER", val, 1);
    pa_tls.boot_serve--;
    pa_tls.guard--;
    output_claimed = 1;
}

/* hook_exec.c: the environment entry that hands this image's plain name to
 * the image it execs (take_handover), or NULL when it has none to hand on:
 * a fork child, a name with %p, a collector, PERFAGENT_FOLLOW_EXEC=0 (the
 * next image runs without us and the name keeps what we wrote). */
PA_HIDDEN const char *pa_output_handover(int wrote);
const char *pa_output_handover(int wrote)
{
    static char entry[sizeof(pa_cfg.exe) + 64] = "PERFAGENT_OUTPUT_OWNER=";
    char *p = entry + 23;
    if (!output_claimed || !output_first || !pa_cfg.follow_exec)
        return NULL;
    p = pa_u64toa(my_pid, p);
    *p++ = ':';
    *p++ = wrote ? '1' : '0';
    *p = 0;
    if (wrote) {
        *p++ = ':';
        pa_strlcpy(p, pa_cfg.exe_base, sizeof(pa_cfg.exe));
    }
    return entry;
}

static void atfork_prepare(void)
{
    pa_tls.guard++;
    pa_fds_fork_prepare();
    pa_modules_lock(1);
    /* After the modules lock (a scan holds it around dl_iterate_phdr and
     * would otherwise wait at the gate while we wait for the lock). */
    pa_phdr_fork_gate(1);
    pa_thread_lock(1);
    pa_sampleset_lock(1);
}

static void atfork_parent(void)
{
    pa_sampleset_lock(0);
    pa_thread_lock(0);
    pa_phdr_fork_gate(0);
    pa_modules_lock(0);
    pa_tls.guard--;
}

static void atfork_child(void)
{
    pa_sampleset_lock(0);
    pa_thread_lock(0);
    pa_phdr_fork_gate(2);
    pa_modules_lock(0);
    parent_stream_pid = my_pid;
    my_pid = pa_getpid();
    output_first = 0;
    output_claimed = 0;
    tree_root = 0;
    /* The parent's perf events are not ours: close them either way
     * (inherit_thread: a fork child never inherits them). */
    pa_cpu_after_fork_child();
    if (!pa_cfg.follow_fork) {
        atomic_store(&pa_heap_on, 0);
        atomic_store(&pa_agent_on, 0);
    } else {
        pa_thread_after_fork_child();
        pa_net_after_fork_child();
        pa_stacks_after_fork_child();
        pa_modules_resend();
        pa_sender_after_fork_child();
    }
    pa_fds_after_fork_child(); /* after the sender forgot the parent's fds */
    start_mono = pa_mono_ns();
    start_real = pa_real_ns();
    if (pa_cfg.follow_fork && pa_cfg.cpu_hz && atomic_load(&pa_agent_on)) {
        /* No row may ever start this child's sender (CPU only, or a child
         * that computes without allocating): start it now, then sample. */
        pa_sender_start();
        pa_cpu_start();
    }
    pa_tls.guard--;
}

/* memory-anchors P15: an allocator that comes before us in the lookup order
 * (preloaded first, or the executable's own malloc) takes the calls and we
 * never see them.  Say so once instead of reporting an empty heap. */
static void check_interposition(void)
{
    extern void *pa_malloc_self(size_t);
    Dl_info who;
    const ElfW(Sym) *sym = NULL;
    void *found = dlsym(RTLD_DEFAULT, "malloc");
    if (!found || found == (void *)&pa_malloc_self)
        return;
    if (dladdr1(found, &who, (void **)&sym, RTLD_DL_SYMENT) == 0 || !who.dli_fname)
        who.dli_fname = "another object";
    /* A non-PIE executable that takes malloc's address gets a "canonical
     * PLT" stub: dlsym returns the stub (an undefined symbol with a value),
     * which itself jumps to whoever won the lookup, normally us (python3 on
     * Debian 12 is such a program). */
    if (sym && sym->st_shndx == SHN_UNDEF)
        return;
    pa_log(PA_LOG_QUIET + 1, "malloc resolves to ", who.dli_fname,
           ", which comes before libperfagent.so: its allocations are not seen "
           "(put libperfagent.so first in LD_PRELOAD)",
           (const char *)NULL);
}

void pa_init(void)
{
    int expect = 0;
    uint32_t me = pa_gettid();

    if (!atomic_compare_exchange_strong(&pa_state, &expect, 1)) {
        /* Another thread is initializing: wait for it (init is short).  The
         * initializing thread itself re-enters only through dlsym, which the
         * hooks serve from the bootstrap pool before calling us. */
        if (atomic_load(&init_tid) != me)
            while (atomic_load_explicit(&pa_state, memory_order_acquire) == 1)
                __builtin_ia32_pause();
        return;
    }
    atomic_store(&init_tid, me);
    pa_tls.guard++;
    my_pid = pa_getpid();
    pa_options_load();
    if (pa_real_resolve() < 0) {
        pa_log(PA_LOG_QUIET + 1, "cannot find the real malloc; agent off", (const char *)NULL);
        atomic_store(&pa_state, 3);
        pa_tls.guard--;
        return;
    }
    if (getauxval(AT_SECURE)) {
        /* setuid/setgid: ld.so only preloads from system paths here anyway
         * (ld.so(8)); don't write profiles of privileged programs. */
        pa_cfg.disabled = 1;
    }
    if (!pa_cfg.disabled && (pa_cfg.malloc_rate || pa_cfg.cpu_hz || pa_cfg.pq || pa_cfg.net)) {
        pa_clock_init();
        start_mono = pa_mono_ns();
        start_real = pa_real_ns();
        if (pa_stacks_init(STACK_TABLE_CAPACITY) < 0 || pa_thread_setup() < 0 ||
            pa_modules_init() < 0 || pa_unwind_init() < 0 ||
            (pa_cfg.malloc_rate > 1 && pa_sampleset_init() < 0) ||
            (pa_cfg.net && pa_net_init() < 0)) {
            pa_log(PA_LOG_QUIET + 1, "agent setup failed (out of memory?); recording off",
                   (const char *)NULL);
            pa_cfg.disabled = 1;
        }
    }
    /* Recording starts here, possibly inside another library's constructor
     * (libselinux allocates in its own), so those allocations are seen too;
     * rows wait in the rings until the constructor starts the sender. */
    pa_heap_sampling = pa_cfg.malloc_rate > 1;
    atomic_store(&pa_heap_on, !pa_cfg.disabled && pa_cfg.malloc_rate != 0);
    atomic_store(&pa_agent_on, !pa_cfg.disabled && (pa_cfg.malloc_rate || pa_cfg.cpu_hz ||
                                                  pa_cfg.pq || pa_cfg.net));
    atomic_store_explicit(&pa_state, 2, memory_order_release);
    if (atomic_load(&pa_heap_on))
        check_interposition();
    pa_tls.guard--;
}

int pa_init_thread(void)
{
    return atomic_load(&init_tid) == pa_gettid();
}

/* What the constructor starts: the output, the fork handlers, the sender. */
static void start_recording(void)
{
    ctor_ran = 1;
    if (!atomic_load(&pa_agent_on))
        return;
    pa_tls.guard++;
    if (!pa_cfg.follow_exec)
        drop_self_from_preload();
    claim_output();
    claim_tree();
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    /* Before the sender starts: it unblocks the faults for itself then. */
    pa_crash_install(); /* fatal signals keep the rows (crash.c) */
    /* Starts CPU sampling too, after the sender exists: threads made from
     * here on inherit the sampling event, and the sender is not one. */
    if (pa_cfg.malloc_rate || pa_cfg.cpu_hz)
        pa_sender_start_wait(1000);
    else /* libpq tracing alone: no stream before the first query, so a
          * program that never uses libpq writes nothing (pq.c) */
        atomic_store(&pa_need_sender, 1);
    pa_tls.guard--;
}

/* A constructor that ran before ours (LD_PRELOAD's later objects and the
 * program's dependencies initialize first) allocated, which initialized the
 * agent through a hook, and then forked: our fork handlers were not
 * registered yet, so this child still has the parent's pid, threads and
 * rings.  Do what atfork_child would have done (its locks are spinlocks:
 * releasing a free one is harmless).  Test: process_model's ctor_fork. */
static void adopt_early_fork(void)
{
    if (my_pid == pa_getpid())
        return;
    pa_tls.guard++;
    atfork_child();
}

/* hook_fork.c, in the child of a fork made before our constructor ran (no
 * fork handlers yet): adopt it now, before its first row lands in a ring
 * that atfork_child would reset as the parent's. */
void pa_fork_child_early(void)
{
    if (!ctor_ran && atomic_load(&pa_state) == 2)
        adopt_early_fork();
}

__attribute__((constructor)) static void pa_ctor(void)
{
    pa_init();
    if (ctor_ran || atomic_load(&pa_state) != 2)
        return;
    adopt_early_fork();
    start_recording();
}

/* The final flush: once per process image, from the destructor or from
 * _exit (hook_exit.c). */
void pa_finish(void)
{
    int was_on;
    if (!ctor_ran && atomic_load(&pa_state) == 2 && atomic_load(&pa_agent_on)) {
        /* _exit (or exit) inside a constructor that ran before ours, after
         * recording began through a hook: the rows are in the rings and no
         * output or sender exists yet.  Start them to flush (under this
         * process's own pid, if that constructor forked it). */
        adopt_early_fork();
        start_recording();
    }
    if (pa_cfg.net && atomic_load(&pa_agent_on) && !atomic_load(&pa_need_sender))
        pa_net_flush(); /* open connections' counters, while events are taken */
    was_on = atomic_exchange(&pa_agent_on, 0);
    atomic_store(&pa_heap_on, 0);
    if (!was_on || atomic_load(&pa_need_sender))
        return; /* off, or a fork child that never recorded: nothing to say */
    pa_tls.guard++;
    pa_cpu_disable(); /* no new samples; the final round drains the rest */
    pa_sender_stop(pa_exit_code, EXIT_FLUSH_MS);
    pa_cpu_close();
    pa_unwind_report();
    if (pa_cfg.out_kind == PA_OUT_FILE && pa_sender_output_ok()) {
        /* A pipe or /dev/null is a fine output, but not one to report on. */
        struct stat st;
        int regular = stat(pa_cfg.out_path, &st) == 0 && S_ISREG(st.st_mode);
        pa_log(PA_LOG_INFO, "wrote ", pa_cfg.out_path,
               regular ? " (view it with: perfagent report " : "",
               regular ? pa_cfg.out_path : "", regular ? " -o DIR)" : "", (const char *)NULL);
    }
    pa_tls.guard--;
    atomic_store(&pa_state, 3);
}

/* Runs from _dl_fini, after atexit handlers and the program's static
 * destructors (our library was initialized before the program), so most of
 * the program's frees are recorded before the final flush. */
__attribute__((destructor)) static void pa_dtor(void)
{
    pa_finish();
}
