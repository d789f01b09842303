/*
 * internal.h — what the agent's files share: attribute macros, the effective
 * configuration, per-thread state, and prototypes grouped by defining file.
 *
 * Rules every agent file keeps (README "Design"):
 *  - after init nothing here allocates from the host heap (memory comes from
 *    pa_mem_*, i.e. mmap) and nothing calls an interposed symbol directly;
 *  - hook_*.c only resolve the real symbol, check the guard, call the real
 *    function and hand off to a core function;
 *  - only sender.c / transport.c touch the output socket or file.
 */
#ifndef PA_INTERNAL_H
#define PA_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../proto/wire.h" /* magic, version, row tags, limits */

#define PA_HIDDEN __attribute__((visibility("hidden")))
#define PA_EXPORT __attribute__((visibility("default")))
#define PA_LIKELY(x) __builtin_expect(!!(x), 1)
#define PA_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PA_NOINLINE __attribute__((noinline))
#define PA_TLS __thread __attribute__((tls_model("initial-exec")))
#define PA_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define PA_AGENT_VERSION "0.1.0"
#define PA_MAX_FRAMES_LIMIT PA_WIRE_MAX_FRAMES
#define PA_MAX_THREADS 4096 /* thread buffers alive at once */
#define PA_ROW_MAX PA_WIRE_ROW_MAX

/* ---- effective configuration (options.c) ------------------------------ */
enum pa_out_kind { PA_OUT_FILE, PA_OUT_UNIX, PA_OUT_TCP };
enum pa_unwinder { PA_UNWIND_CFI, PA_UNWIND_LIBUNWIND, PA_UNWIND_FP, PA_UNWIND_VERIFY };
enum pa_cpu_mode { PA_CPU_MODE_AUTO, PA_CPU_MODE_PERF, PA_CPU_MODE_TIMER };
enum pa_loglevel { PA_LOG_QUIET, PA_LOG_INFO, PA_LOG_DEBUG };

typedef struct pa_config {
    int disabled;          /* PERFAGENT_DISABLE=1, setuid, or init failure */
    uint64_t malloc_rate;  /* 1 = exact; 0 = heap recording off */
    unsigned cpu_hz;       /* PERFAGENT_CPU_HZ: CPU samples a second a thread; 0 = off */
    int cpu_mode;          /* PERFAGENT_CPU_MODE: enum pa_cpu_mode */
    int net;               /* PERFAGENT_NET: socket and HTTP tracing (net.c), default 1 */
    unsigned max_frames;   /* PERFAGENT_MAX_FRAMES */
    unsigned buffer_kb;    /* PERFAGENT_BUFFER_KB, per thread */
    int unwinder;          /* enum pa_unwinder */
    int follow_exec;       /* PERFAGENT_FOLLOW_EXEC */
    int follow_fork;       /* PERFAGENT_FOLLOW_FORK */
    int loglevel;          /* PERFAGENT_LOG */
    int pq;                /* PERFAGENT_PQ: libpq tracing (pq.c) */
    int pq_literals;       /* PERFAGENT_PQ_LITERALS: raw query text leaves the process */
    int private_fds;       /* PERFAGENT_PRIVATE_FDS: the sender's own fd table (fdtable.c) */
    int out_kind;          /* enum pa_out_kind */
    int out_default;       /* no PERFAGENT_OUTPUT/COLLECTOR: say where at exit */
    char out_spec[512];    /* the value as given (template for files) */
    char out_path[512];    /* file: expanded path; unix: socket path */
    char tcp_host[256];
    unsigned tcp_port;
    char exe[512];         /* readlink(/proc/self/exe) */
    const char *exe_base;  /* points into exe */
} pa_config_t;

extern PA_HIDDEN pa_config_t pa_cfg;
/* PERFAGENT_UNWIND=cfi-strict (options.c): pa_cfg.unwinder is PA_UNWIND_CFI
 * and this is set.  The unwinder reads it only once a walk has failed; the
 * sender names the mode in Hello. */
extern PA_HIDDEN int pa_unwind_strict;

/* ---- per-thread state (thread.c) --------------------------------------- */
typedef struct pa_ring {
    uint8_t *buf;
    uint32_t size;          /* power of two */
    _Atomic uint64_t head;  /* bytes ever written (producer) */
    char pad1[64];
    _Atomic uint64_t tail;  /* bytes ever consumed (sender) */
    char pad2[64];
} pa_ring_t;

enum pa_thread_state { PA_THR_FREE = 0, PA_THR_ACTIVE = 1, PA_THR_RETIRED = 2 };

/* Cache-line aligned: slots sit side by side in one array, and a thread
 * writing its row count must not invalidate the line its neighbour reads
 * its ring from on every row (seen as +10% CPU in mallocbench when the
 * struct grew from 224 to 248 bytes). */
typedef struct __attribute__((aligned(64))) pa_thread {
    pa_ring_t ring;
    _Atomic int state;
    _Atomic int wake_sent;  /* producer woke the sender; sender clears */
    /* Set when a new stream begins under a running thread (an exec that
     * failed: pa_thread_resync_all); the producer's next row is then a sync
     * row, for the new stream's reader has no base for deltas.  On the line
     * each row reads anyway (rows.h). */
    _Atomic uint32_t resync;
    /* Producer only: rows left before the next sync row (0: the next row is
     * one, which is what a zeroed slot says), and the last committed row's
     * addr and ticks, the base of the next row's deltas. */
    uint32_t rows_to_sync;
    uint64_t tail_cache;    /* producer's last view of ring.tail */
    uint64_t prev_addr;
    uint64_t prev_ticks;
    /* Written only by the producer (relaxed load+store, no RMW), read by the
     * sender for AgentStats. */
    _Atomic uint64_t rows;
    _Atomic uint64_t drops_full;
    _Atomic uint64_t drops_stack_table; /* allocations with stack id 0 */
    _Atomic uint64_t unwind_failures;
    /* Full ring (thread.c pa_ring_wait): the producer sleeps on space_word
     * with `waiting` set; the sender bumps it after moving the tail. */
    _Atomic uint32_t space_word;
    _Atomic int waiting;
    uint64_t stall_tail;    /* producer: gave up waiting at this tail */
    /* Sender only: rows up to here are in the batch being built; the tail
     * moves there once that batch is written (sender.c). */
    uint64_t drained;
    char name[16];
    int name_sent;          /* sender only */
    uint32_t tid;
    /* Typed events the thread makes (libpq queries, ...): mapped at its
     * first event (event.c), kept when the slot is recycled. */
    struct pa_tring *events;
} pa_thread_t;

typedef struct pa_tls {
    int guard;         /* >0: inside the agent or a real allocator call */
    int dead;          /* the thread's buffer was retired (thread exiting) */
    pa_thread_t *thr;
    uint32_t tid;
    /* Sampled heap mode (heap.c): bytes left before the next sampled
     * allocation, and the thread's random state (0: not seeded yet). */
    int64_t sample_left;
    uint64_t rng;
    int boot_serve; /* >0: this thread's allocations come from the pool */
    /* Set by what may take long between a heap row's ticks and its commit
     * (a stack walk the memo did not save, a wait for ring room): the row
     * reads the clock again (rows.h). */
    int ticks_stale;
} pa_tls_t;

extern PA_HIDDEN PA_TLS pa_tls_t pa_tls;

/* Bumps a counter that only its owning thread writes (a pa_thread_t's,
 * a rule cache's): a plain load and store, no locked add on a line other
 * threads write.  Readers (the sender, the exit report) load it relaxed. */
static inline __attribute__((always_inline)) void pa_count_own(_Atomic uint64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* Where a stack capture starts: the calling hook's frame record, passed
 * down explicitly with the event (no per-thread side channel that a hook
 * which forgets to set it would leave stale for the next event).  The hook
 * files are built with frame pointers (Makefile), so the record holds the
 * hook's caller's return address, rsp and rbp: the unwinder starts there,
 * at the user's code, instead of stepping through the agent's own frames
 * (unwind.h).  0 means "from the capturing function itself". */
#define PA_HOOK_FP() ((uintptr_t)__builtin_frame_address(0))
/* The hooks' PA_REC_* macros, which pass PA_HOOK_FP(), are in heap.h. */

/* ---- agent-wide counters (stats.c) -------------------------------------- */
typedef struct pa_stats {
    _Atomic uint64_t drops_no_buffer;
    _Atomic uint64_t drops_stack_table; /* from threads already gone */
    _Atomic uint64_t drops_output;     /* frames */
    _Atomic uint64_t drops_thread_exit;
    _Atomic uint64_t drops_full_retired; /* from threads already gone */
    _Atomic uint64_t rows_retired;
    _Atomic uint64_t bytes_sent;
    _Atomic uint64_t threads;
    _Atomic uint64_t reconnects;
    _Atomic uint64_t unwind_failures;   /* from threads already gone */
} pa_stats_t;
extern PA_HIDDEN pa_stats_t pa_stats;

/* ---- init.c ------------------------------------------------------------- */
/* 0 before init, 1 while initializing, 2 ready, 3 shutting down / off. */
extern PA_HIDDEN _Atomic int pa_state;
/* Heap events are recorded only while this is set (init done, not disabled,
 * rate != 0, before the final flush). */
extern PA_HIDDEN _Atomic int pa_heap_on;
/* The stream is on: some feature (heap or CPU) is, from init until the final
 * flush.  Hello, modules, threads, the sender, fork/exec following and the
 * Goodbye depend on this, never on one feature. */
extern PA_HIDDEN _Atomic int pa_agent_on;
PA_HIDDEN void pa_init(void);
PA_HIDDEN void pa_fork_child_early(void);
PA_HIDDEN void pa_finish(void);
extern PA_HIDDEN int pa_exit_code; /* hook_exit.c; -1 until known */
PA_HIDDEN uint64_t pa_start_mono_ns(void);
PA_HIDDEN uint64_t pa_start_real_ns(void);
PA_HIDDEN uint32_t pa_pid(void);
PA_HIDDEN int pa_vfork_child(void); /* init.c says which hooks check it */
PA_HIDDEN uint32_t pa_parent_stream_pid(void);
PA_HIDDEN int pa_output_first(void);
PA_HIDDEN int pa_tree_root(void); /* the run's first traced process */

/* ---- real.c ------------------------------------------------------------- */
typedef struct pa_real_fns {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*reallocarray)(void *, size_t, size_t);
    void *(*memalign)(size_t, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    size_t (*malloc_usable_size)(void *);
    /* jemalloc's non-standard API, present only in jemalloc hosts */
    void *(*mallocx)(size_t, int);
    void *(*rallocx)(void *, size_t, int);
    size_t (*xallocx)(void *, size_t, size_t, int);
    void (*sdallocx)(void *, size_t, int);
    void (*dallocx)(void *, int);
} __attribute__((aligned(64))) pa_real_fns_t; /* read by every hook: whole lines, shared with no
                                                * variable that is written (sampleset.h) */
extern PA_HIDDEN pa_real_fns_t pa_real;
PA_HIDDEN int pa_real_resolve(void);
/* Bootstrap memory (heaptrack's DummyPool, memory-anchors P1), served only
 * to the initializing thread while pa_real_resolve() runs (dlsym may
 * allocate) and to a thread whose pa_tls.boot_serve is set (the agent's own
 * libc calls that allocate, e.g. pthread_create's DTV for the sender): what
 * the agent needs never comes from, or shifts, the host's heap.  NULL when
 * full.  pa_boot_size: a block's size. */
PA_HIDDEN void *pa_boot_alloc(size_t size, size_t align);
PA_HIDDEN size_t pa_boot_size(const void *p);
/* Whether the calling thread is the one running pa_init(). */
PA_HIDDEN int pa_init_thread(void);
#define PA_BOOT_POOL (64 * 1024)
extern PA_HIDDEN char pa_boot_pool[PA_BOOT_POOL];
/* Inline: free() asks this on every call. */
static inline int pa_is_boot(const void *p)
{
    return (uintptr_t)p - (uintptr_t)pa_boot_pool < PA_BOOT_POOL;
}

/* ---- heap.c (the recording core behind hook_malloc.c) ------------------ */
/* from: where the stack capture starts (PA_HOOK_FP()). */
/* Exact mode (malloc_rate 1): every event.  Sampled mode: see heap.h. */
PA_HIDDEN void pa_heap_alloc(void *p, size_t size, uintptr_t from);
PA_HIDDEN void pa_heap_free(void *p);
PA_HIDDEN void pa_heap_realloc(void *old, void *p, size_t size, uint64_t ticks_before,
                               uintptr_t from);

/* ---- thread.c ---------------------------------------------------------- */
PA_HIDDEN int pa_thread_setup(void);
PA_HIDDEN pa_thread_t *pa_thread_acquire(pa_tls_t *t);
PA_HIDDEN pa_thread_t *pa_thread_slot(unsigned i);
PA_HIDDEN unsigned pa_thread_count(void);
PA_HIDDEN void pa_thread_free_slot(pa_thread_t *thr);
PA_HIDDEN void pa_thread_after_fork_child(void);
/* A new stream begins while threads run (pa_sender_restart): each thread's
 * next heap row is a sync row. */
PA_HIDDEN void pa_thread_resync_all(void);
PA_HIDDEN void pa_thread_lock(int take);
/* The ring is full for a row at `head`: wait (bounded) for the sender to
 * make room.  1 when there is room now, 0 to drop the row. */
PA_HIDDEN int pa_ring_wait(pa_thread_t *thr, uint64_t head);
/* For PERFAGENT_LOG=debug: waits begun; waits that ended without room
 * because they took too long, because the collector was slow; full rings
 * that did not wait (no progress since the last wait, or no sender). */
extern PA_HIDDEN _Atomic uint64_t pa_wait_stats[4];

/* ---- stacks.c ----------------------------------------------------------- */
PA_HIDDEN int pa_stacks_init(size_t capacity);
/* Interns frames[0..n) and returns its id (>= 1), or 0 when the table is
 * full. Lock-free; safe from any thread (not from signal context yet). */
PA_HIDDEN uint32_t pa_stacks_intern(const uint64_t *frames, unsigned n, int truncated);
PA_HIDDEN uint32_t pa_stacks_count(void);
PA_HIDDEN uint32_t pa_stacks_ids_taken(void); /* failed ones included */
/* The same for a CPU sample's stack: frames[0] is the sampled pc, not a
 * return address (StackDef.leaf_is_pc); never the id of a heap stack. */
PA_HIDDEN uint32_t pa_stacks_intern_pc(const uint64_t *frames, unsigned n, int truncated);
/* Stack `id` if published, else NULL; *flags gets PA_STACK_* bits. */
enum { PA_STACK_TRUNCATED = 1, PA_STACK_LEAF_PC = 2 };
PA_HIDDEN const uint64_t *pa_stacks_get(uint32_t id, unsigned *n, int *flags);
PA_HIDDEN void pa_stacks_after_fork_child(void);
#ifdef PA_UNIT_TEST
PA_HIDDEN uint32_t pa_stacks_test_take(void);
PA_HIDDEN void pa_stacks_test_publish(uint32_t id, const uint64_t *frames, unsigned n);
#endif

/* ---- unwind.c (+ the inline capture in unwind.h) -------------------------- */
PA_HIDDEN int pa_unwind_init(void);
PA_HIDDEN void pa_unwind_report(void); /* counters, at exit */
/* Bumped after every dlclose: cached unwind rules may name unmapped code. */
extern PA_HIDDEN _Atomic uint64_t pa_unwind_gen;

/* ---- cpu.c: CPU sampling (PERFAGENT_CPU_HZ): perf_event, or timers -------- */
typedef struct pa_cpu_stats {
    uint64_t samples;     /* taken from the rings and sent */
    uint64_t lost;        /* PERF_RECORD_LOST: a ring was full */
    uint64_t truncated;   /* walks that stopped before the outermost frame */
    uint64_t no_regs;     /* samples without user registers or stack */
    uint64_t stack_table; /* samples sent with stack id 0: the table was full */
    uint64_t throttled;   /* PERF_RECORD_THROTTLE: the kernel slowed sampling */
    uint64_t signals;     /* timer mode: sampling signals handled */
    uint64_t overruns;    /* timer mode: missed ticks counted from their signal */
} pa_cpu_stats_t;
/* Host side: open the events (after the sender started), stop them before
 * the final flush, close them after it; a fork child drops the parent's. */
PA_HIDDEN void pa_cpu_start(void);
PA_HIDDEN void pa_cpu_disable(void);
PA_HIDDEN void pa_cpu_close(void);
PA_HIDDEN void pa_cpu_after_fork_child(void);
PA_HIDDEN int pa_cpu_active(void);
PA_HIDDEN int pa_cpu_pending(void); /* sender: samples wait in a ring */
/* Sender side: read the rings and intern the stacks (returns the samples
 * buffered), then, once the stacks are declared, hand the samples out one
 * thread at a time.  final: also every live thread's CPU time (n = 0). */
PA_HIDDEN int pa_cpu_drain(void);
/* Sender, first thing in a round: timer mode arms the threads born since
 * the last round before the round's heap and event work (a long round of
 * exact-mode rows let a short-lived busy thread go unsampled under load:
 * cpu_fire timer mode, 1 run in 50 under .ci/run).  Perf mode: nothing
 * (new threads inherit the events). */
PA_HIDDEN void pa_cpu_find_threads(void);
/* sender: how long its rounds may be while CPU sampling is on (cpu.c). */
PA_HIDDEN unsigned pa_cpu_round_ms(void);
/* The highest stack id among the samples drained and not yet emitted. */
PA_HIDDEN uint32_t pa_cpu_max_sid(void);
/* name: the thread's name when it should be (re)announced, else NULL. */
typedef void pa_cpu_emit_fn(void *ctx, uint32_t tid, const char *name, const uint32_t *sids,
                            const uint64_t *ns, unsigned n, uint64_t period_ns, uint64_t cpu_ns);
extern PA_HIDDEN _Atomic int pa_cpu_settled;
PA_HIDDEN void pa_cpu_emit(pa_cpu_emit_fn *fn, void *ctx, int final);
PA_HIDDEN const char *pa_cpu_mechanism(void);
PA_HIDDEN uint64_t pa_cpu_period_ns(void);
PA_HIDDEN unsigned pa_cpu_stack_bytes(void);
PA_HIDDEN void pa_cpu_stats(pa_cpu_stats_t *out);

/* ---- phdr.c: dl_iterate_phdr(3), safe across fork ------------------------ */
struct dl_phdr_info;
PA_HIDDEN int pa_phdr_each(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data);
/* fork: 1 in prepare (after the modules lock), 0 in the parent, 2 in the child */
PA_HIDDEN void pa_phdr_fork_gate(int what);

/* ---- modules.c ---------------------------------------------------------- */
PA_HIDDEN int pa_modules_init(void);
/* Re-read the loaded objects if dlopen/dlclose changed them; safe from any
 * thread, takes the modules lock.  Called by the dl hooks and the sender. */
PA_HIDDEN void pa_modules_refresh(int force);
PA_HIDDEN int pa_modules_pending(void); /* sender: anything for pa_modules_take? */
PA_HIDDEN void pa_modules_resend(void);
PA_HIDDEN void pa_modules_lock(int take);
PA_HIDDEN int pa_modules_take(void (*fn)(void *ctx, const char *path, const uint8_t *bid,
                                         unsigned bid_len, uint64_t bias,
                                         const uint64_t (*ranges)[2], unsigned nranges,
                                         int full),
                              void *ctx);
/* Our own executable range, set once at init: frames inside it are cut. */
extern PA_HIDDEN uint64_t pa_agent_lo, pa_agent_hi;
static inline int pa_in_agent(uint64_t ip)
{
    return ip >= pa_agent_lo && ip < pa_agent_hi;
}

/* ---- sender.c ----------------------------------------------------------- */
PA_HIDDEN int pa_sender_start(void);
/* pa_sender_start(), then wait up to timeout_ms until the output is open. */
PA_HIDDEN int pa_sender_start_wait(unsigned timeout_ms);
PA_HIDDEN void pa_sender_wake(void);
/* Final flush: ask the sender to drain everything and say goodbye, wait at
 * most timeout_ms. */
PA_HIDDEN void pa_sender_stop(int exit_code, unsigned timeout_ms);
PA_HIDDEN void pa_sender_after_fork_child(void);

PA_HIDDEN void pa_sender_restart(void);
/* The program's main thread is ending (hook_exit.c; fdtable.c says why). */
PA_HIDDEN void pa_sender_main_ending(void);
/* The output never failed (file written in full, or socket never lost). */
PA_HIDDEN int pa_sender_output_ok(void);
/* Set in a fork child: the first recorded row starts its sender. */
extern PA_HIDDEN _Atomic int pa_need_sender;
/* pa_mono_ns() when the sender's current write began, 0 when not writing;
 * whether a sender thread is draining rings at all. */
extern PA_HIDDEN _Atomic uint64_t pa_sender_write_start;
PA_HIDDEN int pa_sender_running(void);
/* The sender thread's tid once it runs (0 before): never sampled. */
extern PA_HIDDEN _Atomic uint32_t pa_sender_tid;

/* ---- clock.c ------------------------------------------------------------ */
PA_HIDDEN void pa_clock_init(void);
PA_HIDDEN int pa_clock_is_tsc(void);
PA_HIDDEN uint64_t pa_mono_ns(void);
PA_HIDDEN uint64_t pa_real_ns(void);
/* CLOCK_MONOTONIC ns estimated from the TSC (clock.c says how close), for
 * hooks that read the clock on every call; the sender keeps it calibrated. */
PA_HIDDEN uint64_t pa_fast_ns(void);
PA_HIDDEN void pa_fast_clock_update(void);
/* The sender's last reading of the clock (each round, ~20 ms), for checks
 * that need no better: "is this due yet". */
PA_HIDDEN uint64_t pa_coarse_ns(void);
static inline uint64_t pa_ticks(void)
{
#if defined(__x86_64__)
    extern PA_HIDDEN int pa_clock_tsc;
    if (PA_LIKELY(pa_clock_tsc)) {
        uint32_t lo, hi;
        __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
        return ((uint64_t)hi << 32) | lo;
    }
#endif
    return pa_mono_ns();
}

/* ---- mem.c: memory that never comes from the host heap ------------------ */
PA_HIDDEN void *pa_mmap(size_t size);        /* zeroed, NULL on failure */
PA_HIDDEN void *pa_mmap_private(size_t size); /* same, zero again in a fork child */
PA_HIDDEN void pa_munmap(void *p, size_t size);
PA_HIDDEN void *pa_arena_alloc(size_t size); /* never freed; NULL when out */

/* ---- libc.c: libc-free helpers safe in hooks ----------------------------- */
PA_HIDDEN size_t pa_strlen(const char *s);
PA_HIDDEN size_t pa_strlcpy(char *dst, const char *src, size_t size);
PA_HIDDEN int pa_streq(const char *a, const char *b);
PA_HIDDEN int pa_startswith(const char *s, const char *prefix);
PA_HIDDEN const char *pa_getenv(const char *name);
PA_HIDDEN char *pa_u64toa(uint64_t v, char *buf); /* returns end (NUL) */
PA_HIDDEN int pa_parse_u64(const char *s, uint64_t *out);
PA_HIDDEN long pa_write_all(int fd, const void *buf, size_t len);
PA_HIDDEN uint32_t pa_gettid(void);
PA_HIDDEN uint32_t pa_getpid(void);
/* futex(2) on a 32-bit word (clock.c), and a wait until *w is nonzero or
 * CLOCK_MONOTONIC reaches deadline_ns: 1 if it became nonzero, 0 on time. */
struct timespec;
PA_HIDDEN long pa_futex(_Atomic uint32_t *w, int op, uint32_t val, const struct timespec *ts);
PA_HIDDEN int pa_wait_word(_Atomic uint32_t *w, uint64_t deadline_ns);
PA_HIDDEN int pa_fd_high(int fd); /* our fds out of the program's low range */
/* Our long-lived fds besides the output (libc.c says why): register one,
 * ask whether a number still is ours, close it only if so; the program's
 * close/dup2/close_range/closefrom hooks report numbers they take. */
PA_HIDDEN void pa_fd_own(int fd);
#define PA_FD_LOW_MAX 1024 /* pa_fd_fill_low's base is at most 1024 - 64 */
PA_HIDDEN int pa_fd_fill_low(int *ph, int max);
PA_HIDDEN int pa_fd_low_base(void);
PA_HIDDEN void pa_fd_unwind_pipe(int rd, int wr);
PA_HIDDEN void pa_fd_closed(unsigned lo, unsigned hi); /* after the program closed [lo, hi] */
PA_HIDDEN void pa_fd_unwind_pipe_restore(void);
extern PA_HIDDEN _Atomic int pa_fd_unwind_pipe_closed;
PA_HIDDEN int pa_fd_ours(int fd);
PA_HIDDEN void pa_fd_close_own(int fd);
PA_HIDDEN void pa_fd_taken(unsigned lo, unsigned hi);

/* ---- log.c -------------------------------------------------------------- */
/* One line on stderr, "perfagent[pid]: " + the parts, via write(2); no
 * allocation.  Parts are strings; NULL ends the list. */
PA_HIDDEN void pa_log(int level, const char *first, ...) __attribute__((sentinel));
PA_HIDDEN void pa_log_num(int level, const char *msg, uint64_t v, const char *tail);

/* ---- net.c: socket and HTTP tracing (hook_net.c) -------------------------- */
PA_HIDDEN int pa_net_init(void);  /* at init, when PERFAGENT_NET is on */
PA_HIDDEN void pa_net_flush(void); /* at the final flush: open connections */

/* ---- options.c ---------------------------------------------------------- */
PA_HIDDEN void pa_options_load(void);
/* 1 when path exists and is not a regular file (a device such as /dev/null,
 * a FIFO): one sink for every process, never renamed per process; raw
 * syscall, safe after init. */
PA_HIDDEN int pa_path_is_special(const char *path);
PA_HIDDEN void pa_options_expand_output(uint32_t pid, int first);

#endif
