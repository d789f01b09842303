/*
 * cpu.c — CPU sampling (PERFAGENT_CPU_HZ), by perf_event_open(2) only: no
 * signal handler ever runs in a host thread.
 *
 * The kernel does the sampling.  Each CPU gets one PERF_COUNT_SW_TASK_CLOCK
 * event on this process's sampling root thread (inherit + inherit_thread:
 * every thread the root and its descendants create later is counted too,
 * fork children are not), with a fixed period of 1e9/hz ns of the thread's
 * CPU time.  A sample carries tid, time, the user registers ip/sp/bp and a
 * copy of the top of the user stack (PERF_SAMPLE_STACK_USER) and lands in
 * the ring of the CPU it was taken on: inherited events write to their
 * parent's ring, which the kernel only allows for per-CPU events (a
 * cpu = -1 inherited event refuses mmap with EINVAL, checked on 6.18).
 * Threads that already existed when sampling started (the agent loaded by
 * dlopen, or restarted after a failed exec) get their own events, found in
 * /proc/self/task, redirected into the same rings (PERF_EVENT_IOC_SET_OUTPUT).
 * The sender thread is created before the events are opened and is skipped
 * by the scan, so it is never sampled.
 *
 * The sender drains the rings every round (pa_cpu_drain, its thread only)
 * and unwinds each sample from the COPY with the .eh_frame rules of cfi.c:
 * a read inside [sp, sp + copied) comes from the copy, any other read ends
 * the walk and the stack is marked truncated.  Live memory is never read,
 * so a sample of a thread that has since moved on is still walked right.
 * Stacks are interned with leaf_is_pc (frames[0] is the sampled pc).
 *
 * Leading frames inside the agent are kept (time spent in the agent shows
 * as such); agent frames under the first frame outside it (main()'s
 * wrapper) are dropped, as for heap stacks.
 */
#include "cpu_int.h"
#include "unwind.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_CPUS 256
#define MAX_FDS 1024
#define RING_MIN_PAGES 16
/* Stack bytes copied per sample (tests/e2e/cpu_accuracy.sh and README give
 * the measured cost of 8, 16 and 32 KiB).  perf --call-graph dwarf copies
 * 8 KiB too. */
#define STACK_BYTES_DEFAULT 8192
#define ROUND_SAMPLES 16384 /* samples buffered between two emits */
#define TIDS 8192           /* threads whose CPU time we follow */

/* x86-64 perf register numbers (arch/x86/include/uapi/asm/perf_regs.h). */
#define REG_BP 6
#define REG_SP 7
#define REG_IP 8

typedef struct cpu_ring {
    struct perf_event_mmap_page *meta;
    uint8_t *data;
    uint64_t size; /* data bytes, a power of two */
    size_t map_len;
} cpu_ring_t;

static cpu_ring_t rings[MAX_CPUS];
static _Atomic unsigned nrings; /* published after the rings are mapped */
static int fds[MAX_FDS];
static unsigned nfds;
static unsigned stack_bytes = STACK_BYTES_DEFAULT;
static uint64_t period_ns;
static int user_only; /* exclude_kernel was needed (perf_event_paranoid) */
static char mechanism[200] = "off";
static int timer_mode; /* cpu_timer.c samples instead of perf_event */
/* pa_cpu_start finished (either way): the sender's first round waits for
 * it, so the Hello names the mechanism that is actually in use. */
PA_HIDDEN _Atomic int pa_cpu_settled;

/* Sender-only state from here on. */
static uint32_t buf_tid[ROUND_SAMPLES], buf_sid[ROUND_SAMPLES];
static uint64_t buf_ns[ROUND_SAMPLES];
static unsigned nbuf;
static uint8_t rec_tmp[65536]; /* a record that wraps the ring end */
static pa_ucache_t *walk_cache;
static struct {
    uint32_t tid;
    uint8_t gone;     /* its CPU clock refused: the thread has exited */
    uint8_t named;    /* its name was read (and sent) */
    uint64_t cpu_ns;  /* its CPU time when last read */
    char name[16];
} tids[TIDS];
static pa_cpu_stats_t st;

const char *pa_cpu_mechanism(void) { return mechanism; }
uint64_t pa_cpu_period_ns(void) { return period_ns; }
unsigned pa_cpu_stack_bytes(void)
{
    if (timer_mode)
        return pa_cpu_timer_no_stack() ? 0 : stack_bytes;
    return nrings ? stack_bytes : 0;
}
void pa_cpu_stats(pa_cpu_stats_t *out)
{
    *out = st;
    if (timer_mode) {
        uint64_t lost;
        pa_cpu_timer_stats(&lost, &out->overruns, &out->signals);
        out->lost += lost;
    }
}

static long perf_open(struct perf_event_attr *a, int tid, int cpu, int group)
{
    return syscall(SYS_perf_event_open, a, tid, cpu, group, PERF_FLAG_FD_CLOEXEC);
}

static void set_mechanism(const char *a, const char *b, const char *c)
{
    char *p = mechanism, *end = mechanism + sizeof(mechanism);
    p += pa_strlcpy(p, a, (size_t)(end - p));
    if (b && p < end)
        p += pa_strlcpy(p, b, (size_t)(end - p));
    if (c && p < end)
        pa_strlcpy(p, c, (size_t)(end - p));
}

static void fill_attr(struct perf_event_attr *a, int inherit)
{
    memset(a, 0, sizeof(*a));
    a->size = sizeof(*a);
    a->type = PERF_TYPE_SOFTWARE;
    a->config = PERF_COUNT_SW_TASK_CLOCK;
    a->sample_period = period_ns;
    a->sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_REGS_USER |
                     PERF_SAMPLE_STACK_USER;
    a->sample_regs_user = (1ull << REG_BP) | (1ull << REG_SP) | (1ull << REG_IP);
    a->sample_stack_user = stack_bytes;
    a->exclude_kernel = (unsigned)user_only;
    a->exclude_hv = 1;
    a->inherit = (unsigned)inherit;
    a->inherit_thread = (unsigned)inherit;
    a->use_clockid = 1;
    a->clockid = CLOCK_MONOTONIC; /* sample times comparable with pa_mono_ns */
}

/* ~250 ms of samples of one busy CPU (a sample takes its full stack_bytes
 * in the ring, however little of the stack was valid), at least
 * RING_MIN_PAGES pages, at most 4 MiB.  The sender drains them every eighth
 * of that (pa_cpu_round_ms), but on a loaded machine it may wait for a CPU:
 * with 100 ms rings and 10 ms rounds, three busy threads on two shared CPUs
 * lost ~1% of their samples in one run of ten. */
static unsigned ring_pages(void)
{
    uint64_t want = (uint64_t)pa_cfg.cpu_hz * (stack_bytes + 128) / 4;
    unsigned pages = RING_MIN_PAGES;
    while ((uint64_t)pages * 4096 < want && pages < 1024)
        pages <<= 1;
    return pages;
}

static int map_ring(int fd, cpu_ring_t *r)
{
    /* Locked memory is limited (perf_event_mlock_kb, RLIMIT_MEMLOCK):
     * halve the ring until the kernel agrees. */
    for (unsigned pages = ring_pages(); pages >= RING_MIN_PAGES; pages >>= 1) {
        size_t len = (size_t)(pages + 1) * 4096;
        void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED)
            continue;
        /* A fork child must not drain the parent's rings. */
        madvise(m, len, MADV_DONTFORK);
        r->meta = m;
        r->data = (uint8_t *)m + r->meta->data_offset;
        r->size = r->meta->data_size;
        r->map_len = len;
        return 0;
    }
    return -errno;
}

/* Opens one event per CPU on `tid` (0 = the calling thread).  The first
 * call maps a ring per CPU; later calls send their samples to those rings. */
static int open_thread(int tid, int inherit, int ncpu)
{
    struct perf_event_attr a;
    int first = atomic_load_explicit(&nrings, memory_order_relaxed) == 0;
    for (int cpu = 0; cpu < ncpu; cpu++) {
        long fd;
        if (nfds == MAX_FDS)
            return -EMFILE;
        fill_attr(&a, inherit);
        fd = perf_open(&a, tid, cpu, -1);
        if (fd < 0 && errno == EACCES && !user_only && first && cpu == 0) {
            /* perf_event_paranoid >= 2 without privilege: user mode only. */
            user_only = 1;
            fill_attr(&a, inherit);
            fd = perf_open(&a, tid, cpu, -1);
        }
        if (fd < 0)
            return -errno;
        fd = pa_fd_high((int)fd);
        pa_fd_own((int)fd);
        fds[nfds++] = (int)fd;
        if (first) {
            int r = map_ring((int)fd, &rings[cpu]);
            if (r < 0)
                return r;
        } else if (ioctl((int)fd, PERF_EVENT_IOC_SET_OUTPUT, fds[cpu]) < 0) {
            return -errno;
        }
    }
    if (first)
        atomic_store_explicit(&nrings, (unsigned)ncpu, memory_order_release);
    return 0;
}

int pa_cpu_each_task(void (*fn)(void *ctx, uint32_t tid), void *ctx)
{
    char buf[4096];
    uint32_t sender = atomic_load(&pa_sender_tid);
    long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    long n;
    if (fd < 0)
        return -1;
    while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
        for (long off = 0; off < n;) {
            struct {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *de = (void *)(buf + off);
            uint64_t tid;
            off += de->reclen;
            if (pa_parse_u64(de->name, &tid) < 0 || tid == 0 || tid > UINT32_MAX || tid == sender)
                continue;
            fn(ctx, (uint32_t)tid);
        }
    }
    syscall(SYS_close, fd);
    return n < 0 ? -1 : 0;
}

/* Threads alive now other than us and the sender get their own events. */
static void open_other(void *ctx, uint32_t tid)
{
    /* A thread that exits meanwhile refuses (ESRCH): fine. */
    if (tid != pa_gettid())
        open_thread((int)tid, 1, *(int *)ctx);
}

static void open_others(int ncpu)
{
    pa_cpu_each_task(open_other, &ncpu);
}

/* The timer fallback (cpu_timer.c); `because` says why it is used. */
static void start_timer(const char *because)
{
    char why[96], num[16];
    int r = pa_cpu_timer_start(pa_cfg.cpu_hz, stack_bytes, why, sizeof(why));
    if (r < 0) {
        set_mechanism("off: ", because, "; timer_create fallback failed too");
        pa_log(PA_LOG_QUIET + 1, "CPU sampling: the timer fallback failed: ", why,
               (const char *)NULL);
        return;
    }
    timer_mode = 1;
    pa_u64toa((uint64_t)pa_cpu_timer_signal(), num);
    set_mechanism("timer_create per-thread CPU-time timers, signal ", num, " (");
    size_t n = pa_strlen(mechanism);
    pa_strlcpy(mechanism + n, pa_cpu_timer_signal() == SIGPROF ? "SIGPROF" : "SIGPROF is the host's",
               sizeof(mechanism) - n);
    n = pa_strlen(mechanism);
    pa_strlcpy(mechanism + n, "; ", sizeof(mechanism) - n);
    n = pa_strlen(mechanism);
    pa_strlcpy(mechanism + n, because, sizeof(mechanism) - n);
    n = pa_strlen(mechanism);
    pa_strlcpy(mechanism + n, ")", sizeof(mechanism) - n);
}

void pa_cpu_start(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_CONF);
    const char *v;
    uint64_t kb;
    int r;

    if (!pa_cfg.cpu_hz || atomic_load(&nrings) || timer_mode) {
        atomic_store(&pa_cpu_settled, 1);
        return;
    }
    if ((v = pa_getenv("PERFAGENT_CPU_STACK_KB")) && pa_parse_u64(v, &kb) == 0 && kb >= 1 &&
        kb <= 63)
        stack_bytes = (unsigned)kb * 1024;
    period_ns = 1000000000ull / pa_cfg.cpu_hz;
    if (ncpu < 1 || ncpu > MAX_CPUS) {
        set_mechanism("off: more CPUs than the sampler handles", NULL, NULL);
        goto fail;
    }
    /* The sender must exist (and be skipped): it is the ring reader. */
    for (int i = 0; i < 1000 && !atomic_load(&pa_sender_tid); i++)
        sched_yield();
    if (pa_cfg.cpu_mode == PA_CPU_MODE_TIMER) {
        start_timer("PERFAGENT_CPU_MODE=timer");
        goto out;
    }
    if ((r = open_thread(0, 1, (int)ncpu)) < 0) {
        char why[96] = "perf_event_open refused: ";
        pa_strlcpy(why + pa_strlen(why), strerror(-r), sizeof(why) - pa_strlen(why));
        pa_cpu_close();
        if (pa_cfg.cpu_mode == PA_CPU_MODE_AUTO) {
            start_timer(why);
            goto out;
        }
        set_mechanism("off: ", why,
                      r == -EACCES || r == -EPERM ? " (see perf_event_paranoid)" : "");
        goto fail;
    }
    open_others((int)ncpu);
    set_mechanism("perf_event task-clock, per-CPU rings, ",
                  user_only ? "user time only" : "user and kernel time", NULL);
out:
    /* Said once when the fallback was not asked for: the user should know
     * that the program now gets signals. */
    pa_log(timer_mode && pa_cfg.cpu_mode == PA_CPU_MODE_AUTO && pa_tree_root() ? PA_LOG_INFO
                                                                              : PA_LOG_DEBUG,
           "cpu sampling: ", mechanism,
           (const char *)NULL);
    atomic_store(&pa_cpu_settled, 1);
    return;
fail:
    /* Once per run: the programs it forks and execs would say it again on
     * stderr, which they may be capturing (CPython's test_subprocess). */
    pa_log(pa_tree_root() ? PA_LOG_QUIET + 1 : PA_LOG_DEBUG, "CPU sampling ", mechanism,
           "; everything else is recorded as usual", (const char *)NULL);
    atomic_store(&pa_cpu_settled, 1);
}

void pa_cpu_disable(void)
{
    if (timer_mode)
        pa_cpu_timer_disable();
    for (unsigned i = 0; i < nfds; i++)
        ioctl(fds[i], PERF_EVENT_IOC_DISABLE, 0);
}

void pa_cpu_close(void)
{
    if (timer_mode) {
        pa_cpu_timer_close();
        timer_mode = 0;
    }
    unsigned n = atomic_exchange(&nrings, 0);
    for (unsigned i = 0; i < n; i++)
        if (rings[i].meta)
            munmap(rings[i].meta, rings[i].map_len);
    memset(rings, 0, sizeof(rings));
    for (unsigned i = 0; i < nfds; i++)
        pa_fd_close_own(fds[i]);
    nfds = 0;
    atomic_store(&pa_cpu_settled, 0);
}

void pa_cpu_after_fork_child(void)
{
    /* The rings are not mapped here (MADV_DONTFORK); the fds are the
     * parent's events. */
    for (unsigned i = 0; i < nfds; i++)
        pa_fd_close_own(fds[i]);
    nfds = 0;
    memset(rings, 0, sizeof(rings));
    atomic_store(&nrings, 0);
    atomic_store(&pa_cpu_settled, 0);
    nbuf = 0;
    memset(tids, 0, sizeof(tids));
    memset(&st, 0, sizeof(st));
    pa_cpu_timer_after_fork_child();
    timer_mode = 0;
}

/* ---- the sender's side --------------------------------------------------- */

/* The copied stack: [sp, sp + len). */
typedef struct ustack {
    uint64_t sp;
    const uint8_t *data;
    uint64_t len;
} ustack_t;

static inline int copy_read(const ustack_t *u, uint64_t a, uint64_t *v)
{
    if (a < u->sp || a - u->sp > u->len || u->len - (a - u->sp) < 8)
        return -1;
    memcpy(v, u->data + (a - u->sp), 8);
    return 0;
}

static pa_ucache_t *cache_now(void)
{
    uint64_t gen = atomic_load_explicit(&pa_unwind_gen, memory_order_acquire);
    if (!walk_cache && !(walk_cache = pa_mmap(sizeof(*walk_cache))))
        return NULL;
    if (walk_cache->gen != gen) {
        memset(walk_cache->e, 0, sizeof(walk_cache->e));
        walk_cache->gen = gen;
    }
    return walk_cache;
}

/* Walks from (ip, sp, bp) through the copy.  frames[0] = ip.  Returns the
 * frame count; *truncated when the walk stopped before the outermost frame
 * (a read outside the copy, no rule, max frames). */
static unsigned pa_cpu_walk(uint64_t ip, uint64_t sp, uint64_t bp, const ustack_t *u,
                               uint64_t *frames, unsigned max, int *truncated)
{
    pa_ucache_t *c = cache_now();
    uint64_t key = ip | PA_UCACHE_EXACT;
    unsigned n = 0;
    int outside = 0; /* a frame outside the agent was kept */
    *truncated = 1;
    if (!c || !ip || !max)
        return 0;
    frames[n++] = ip;
    outside = !pa_in_agent(ip);
    for (;;) {
        const pa_ucache_ent_t *e = &c->e[pa_ucache_slot(key)];
        const pa_cfi_rule_t *r = &e->rule;
        uint64_t cfa, ra;
        if (e->key != key)
            r = pa_ucache_fill(c, key, 0); /* a copy: its code may be gone */
        if (r->kind == PA_CFI_OUTERMOST) {
            *truncated = 0;
            break;
        }
        if (r->kind != PA_CFI_STEP)
            break;
        cfa = (r->cfa_rbp ? bp : sp) + (uint64_t)(int64_t)r->cfa_off;
        if (cfa <= sp || copy_read(u, cfa - 8, &ra) < 0)
            break;
        if (r->rbp_off != PA_CFI_RBP_SAME &&
            copy_read(u, cfa + (uint64_t)(int64_t)r->rbp_off, &bp) < 0)
            break;
        sp = cfa;
        if (ra == 0) {
            *truncated = 0; /* the ABI's end-of-stack marker */
            break;
        }
        key = ra;
        if (pa_in_agent(ra) && outside)
            continue;
        outside |= !pa_in_agent(ra);
        if (n == max)
            break;
        frames[n++] = ra;
    }
    return n;
}

static uint64_t thread_cpu_ns(uint32_t tid, int *gone)
{
    /* The kernel's per-thread CPU clock id (CPUCLOCK_SCHED of a tid); a
     * thread of our own process may be read by any of its threads. */
    clockid_t id = (clockid_t)((~tid << 3) | 6);
    struct timespec ts;
    if (syscall(SYS_clock_gettime, id, &ts) != 0) {
        *gone = 1;
        return 0;
    }
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The thread's comm, for a ThreadInfo: CPU-only runs have no heap thread
 * buffers to name threads. */
static const char *thread_name(unsigned slot)
{
    char path[64] = "/proc/self/task/", *p = path + pa_strlen(path);
    long fd, n;
    p = pa_u64toa(tids[slot].tid, p);
    pa_strlcpy(p, "/comm", 8);
    fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    n = syscall(SYS_read, fd, tids[slot].name, sizeof(tids[slot].name) - 1);
    syscall(SYS_close, fd);
    if (n <= 0)
        return NULL;
    tids[slot].name[n - (tids[slot].name[n - 1] == '\n')] = 0;
    return tids[slot].name;
}

static unsigned tid_slot(uint32_t tid)
{
    unsigned i = (tid * 2654435761u) & (TIDS - 1);
    for (unsigned k = 0; k < TIDS; k++, i = (i + 1) & (TIDS - 1))
        if (tids[i].tid == tid || tids[i].tid == 0) {
            tids[i].tid = tid;
            return i;
        }
    return TIDS; /* full: that thread's CPU time is not reported */
}

static void take_sample(const uint8_t *p, size_t len)
{
    uint64_t abi, regs[3], size, dyn = 0, t;
    uint32_t tid;
    size_t off = 8 + 4; /* header, pid */

    if (len < off + 4 + 8 + 8)
        return;
    memcpy(&tid, p + off, 4);
    /* Our own sender is not the host's CPU time.  It is created before the
     * events so it inherits none, but the /proc scan (open_others) can meet
     * it before it has published its tid under load (seen 1 run in 40). */
    if (tid == atomic_load_explicit(&pa_sender_tid, memory_order_relaxed))
        return;
    memcpy(&t, p + off + 4, 8);
    memcpy(&abi, p + off + 12, 8);
    off += 20;
    if (abi == PERF_SAMPLE_REGS_ABI_NONE || len < off + 24 + 8) {
        st.no_regs++;
        return;
    }
    memcpy(regs, p + off, 24);
    off += 24;
    memcpy(&size, p + off, 8);
    off += 8;
    if (size > len - off || (size && len - off - size < 8)) {
        st.no_regs++;
        return;
    }
    if (size)
        memcpy(&dyn, p + off + size, 8);
    pa_cpu_take(tid, t, regs[2], regs[1], regs[0], p + off, dyn < size ? dyn : size, 1);
}

uint32_t pa_cpu_max_sid(void)
{
    uint32_t m = 0;
    for (unsigned i = 0; i < nbuf; i++)
        if (buf_sid[i] > m)
            m = buf_sid[i];
    return m;
}

int pa_cpu_room(void)
{
    return nbuf + PA_CPU_MAX_WEIGHT <= ROUND_SAMPLES;
}

void pa_cpu_take(uint32_t tid, uint64_t t, uint64_t ip, uint64_t sp, uint64_t bp,
                 const uint8_t *stack, uint64_t len, unsigned weight)
{
    uint64_t frames[PA_MAX_FRAMES_LIMIT];
    ustack_t u = {.sp = sp, .data = stack, .len = len};
    int truncated;
    uint32_t sid;
    unsigned n = pa_cpu_walk(ip, sp, bp, &u, frames, pa_cfg.max_frames, &truncated);
    if (!n) {
        st.no_regs++;
        return;
    }
    if (truncated)
        st.truncated++;
    /* Stacks of CPU samples are interned apart from heap stacks: their leaf
     * is an exact pc. */
    sid = pa_stacks_intern_pc(frames, n, truncated);
    if (!sid)
        st.stack_table++;
    for (unsigned w = 0; w < weight && nbuf < ROUND_SAMPLES; w++) {
        buf_tid[nbuf] = tid;
        buf_sid[nbuf] = sid;
        buf_ns[nbuf] = t;
        nbuf++;
        st.samples++;
    }
}

/* The longest the sender may leave the rings undrained.  Perf mode: an
 * eighth of the time the smallest ring takes to fill at the sampling rate
 * (so rounds late by several periods on a loaded machine still lose
 * nothing), 10 to 100 ms; the rings are sized for ~250 ms (ring_pages)
 * and may be halved by the locked-memory limit.  Longer rounds are fewer
 * wakeups of ours, each of which takes a CPU from the program's threads
 * when they keep every CPU busy (mallocbench, 2 threads, 99 Hz, 9
 * interleaved rounds: 1.110x with 10 ms rounds, 1.096x with 100 ms,
 * CPU off 1.075x; another 9: 10 ms 1.095x, these rounds (39 ms) 1.068x,
 * CPU off 1.058x).  Timer mode: 10 ms, since new threads
 * are found in the rounds (pa_cpu_find_threads) and a timer ring holds
 * ~15 samples (cpu_timer.c, RING_BYTES). */
unsigned pa_cpu_round_ms(void)
{
    uint64_t bytes = 0, ms;
    unsigned n = atomic_load_explicit(&nrings, memory_order_acquire);
    if (!pa_cfg.cpu_hz)
        return 100;
    if (timer_mode)
        return 10;
    for (unsigned i = 0; i < n; i++)
        if (rings[i].size && (!bytes || rings[i].size < bytes))
            bytes = rings[i].size;
    ms = bytes / (stack_bytes + 128) * 1000 / pa_cfg.cpu_hz / 8;
    return ms < 10 ? 10 : ms > 100 ? 100 : (unsigned)ms;
}

void pa_cpu_find_threads(void)
{
    if (timer_mode)
        pa_cpu_timer_find();
}

int pa_cpu_drain(void)
{
    unsigned n = atomic_load_explicit(&nrings, memory_order_acquire);
    if (timer_mode) {
        pa_cpu_timer_drain();
        return (int)nbuf;
    }
    for (unsigned i = 0; i < n; i++) {
        cpu_ring_t *r = &rings[i];
        uint64_t head = __atomic_load_n(&r->meta->data_head, __ATOMIC_ACQUIRE);
        uint64_t tail = r->meta->data_tail;
        while (tail < head && pa_cpu_room()) {
            struct perf_event_header h;
            uint64_t off = tail & (r->size - 1);
            const uint8_t *rec;
            if (off + sizeof(h) <= r->size) {
                memcpy(&h, r->data + off, sizeof(h));
            } else {
                uint64_t first = r->size - off;
                memcpy(&h, r->data + off, first);
                memcpy((uint8_t *)&h + first, r->data, sizeof(h) - first);
            }
            if (h.size < sizeof(h) || h.size > head - tail)
                break; /* cannot happen: the kernel writes whole records */
            if (off + h.size <= r->size) {
                rec = r->data + off;
            } else {
                uint64_t first = r->size - off;
                memcpy(rec_tmp, r->data + off, first);
                memcpy(rec_tmp + first, r->data, h.size - first);
                rec = rec_tmp;
            }
            if (h.type == PERF_RECORD_SAMPLE) {
                take_sample(rec, h.size);
            } else if (h.type == PERF_RECORD_LOST && h.size >= 24) {
                uint64_t lost;
                memcpy(&lost, rec + 16, 8);
                st.lost += lost;
            } else if (h.type == PERF_RECORD_THROTTLE) {
                st.throttled++;
            }
            tail += h.size;
        }
        __atomic_store_n(&r->meta->data_tail, tail, __ATOMIC_RELEASE);
    }
    return (int)nbuf;
}

void pa_cpu_emit(pa_cpu_emit_fn *fn, void *ctx, int final)
{
    static uint8_t done[ROUND_SAMPLES];
    static uint32_t sids[ROUND_SAMPLES];
    static uint64_t ns[ROUND_SAMPLES];
    memset(done, 0, nbuf);
    for (unsigned i = 0; i < nbuf; i++) {
        uint32_t tid = buf_tid[i];
        unsigned k = 0, slot;
        uint64_t cpu = 0;
        const char *name = NULL;
        if (done[i])
            continue;
        for (unsigned j = i; j < nbuf; j++)
            if (!done[j] && buf_tid[j] == tid) {
                done[j] = 1;
                sids[k] = buf_sid[j];
                ns[k++] = buf_ns[j];
            }
        if ((slot = tid_slot(tid)) < TIDS) {
            int gone = tids[slot].gone;
            uint64_t v = gone ? 0 : thread_cpu_ns(tid, &gone);
            if (gone) {
                /* It ended after our last reading, which is up to a round
                 * old (pa_cpu_round_ms): these k samples, one period of
                 * its CPU time each, are what it ran since, within a
                 * period (cpu_accuracy.sh: a thread's CPU time within 0.5%). */
                tids[slot].gone = 1;
                tids[slot].cpu_ns += (uint64_t)k * period_ns;
            } else if (v) {
                tids[slot].cpu_ns = v;
            }
            cpu = tids[slot].cpu_ns;
            if (!tids[slot].named && !gone) {
                tids[slot].named = 1;
                name = thread_name(slot);
            }
        }
        if (fn)
            fn(ctx, tid, name, sids, ns, k, period_ns, cpu);
    }
    nbuf = 0;
    if (!final)
        return;
    /* Last word on every thread still alive: its CPU time now. */
    for (unsigned i = 0; i < TIDS; i++) {
        int gone = 0;
        uint64_t v;
        if (!tids[i].tid || tids[i].gone)
            continue;
        v = thread_cpu_ns(tids[i].tid, &gone);
        if (gone || v == tids[i].cpu_ns)
            continue;
        tids[i].cpu_ns = v;
        if (fn)
            fn(ctx, tids[i].tid, thread_name(i), NULL, NULL, 0, period_ns, v);
    }
}

int pa_cpu_pending(void)
{
    if (timer_mode)
        return pa_cpu_timer_pending() || nbuf != 0;
    unsigned n = atomic_load_explicit(&nrings, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        if (__atomic_load_n(&rings[i].meta->data_head, __ATOMIC_ACQUIRE) != rings[i].meta->data_tail)
            return 1;
    return nbuf != 0;
}

int pa_cpu_active(void)
{
    return timer_mode || atomic_load_explicit(&nrings, memory_order_relaxed) != 0;
}
