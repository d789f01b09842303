/*
 * records.c — the sender's record builders: Hello, ModuleMap, StackDef,
 * ThreadInfo, CpuSamples, AgentStats and Goodbye, each added to the batch
 * being built (encode.h) from state the agent owns.  Heap rows are not
 * built here: they are already wire bytes in the rings (rows.h).  Sender
 * thread only (and the round-trip test, which drives these into the
 * collector's decoder: tests/unit/test_agent_roundtrip.c).
 */
#include "records.h"
#include "crash.h"
#include "event.h"
#include "sampleset.h"

#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* ---- the stream's header -------------------------------------------------- */

void pa_rec_hello(pa_enc_t *e)
{
    Perfagent__Record *r;
    Perfagent__Hello *h;
    Perfagent__Config *c;
    struct utsname un;
    char *buf;
    long fd, n = 0;

    if (pa_sender_room(e, 128 * 1024) < 0 || !(r = pa_enc_record(e, PERFAGENT__RECORD__BODY_HELLO)))
        return;
    h = r->hello = pa_enc_alloc(e, sizeof(*h));
    c = pa_enc_alloc(e, sizeof(*c));
    perfagent__hello__init(h);
    perfagent__config__init(c);
    h->protocol_version = PA_WIRE_PROTOCOL_VERSION;
    h->agent_version = PA_AGENT_VERSION;
    h->pid = pa_pid();
    h->ppid = (uint32_t)syscall(SYS_getppid);
    h->exe = pa_cfg.exe;
    h->start_time_unix_ns = pa_start_real_ns();
    h->start_mono_ns = pa_start_mono_ns();
    h->clock =
        pa_clock_is_tsc() ? PERFAGENT__CLOCK__CLOCK_TSC : PERFAGENT__CLOCK__CLOCK_MONOTONIC_NS;
    h->parent_stream_pid = pa_parent_stream_pid();
    if ((h->clock_sync = pa_enc_alloc(e, sizeof(*h->clock_sync)))) {
        perfagent__clock_sync__init(h->clock_sync);
        h->clock_sync->ticks = pa_ticks();
        h->clock_sync->mono_ns = pa_mono_ns();
    }
    if (syscall(SYS_uname, &un) == 0)
        h->hostname = pa_enc_strdup(e, un.nodename);
    c->malloc_rate = pa_cfg.malloc_rate;
    c->max_frames = pa_cfg.max_frames;
    c->unwinder = pa_cfg.unwinder == PA_UNWIND_FP          ? "fp"
                  : pa_cfg.unwinder == PA_UNWIND_LIBUNWIND ? "libunwind"
                  : pa_cfg.unwinder == PA_UNWIND_VERIFY    ? "verify"
                  : pa_unwind_strict                       ? "cfi-strict"
                                                           : "cfi";
    c->buffer_kb = pa_cfg.buffer_kb;
    c->follow_exec = pa_cfg.follow_exec;
    c->follow_fork = pa_cfg.follow_fork;
    c->output = pa_cfg.out_kind == PA_OUT_FILE ? pa_cfg.out_path : pa_cfg.out_spec;
    c->cpu_hz = pa_cfg.cpu_hz;
    c->cpu_mechanism = pa_cfg.cpu_hz ? (char *)pa_cpu_mechanism() : "";
    c->cpu_stack_bytes = pa_cpu_stack_bytes();
    h->config = c;

    /* argv from /proc/self/cmdline: NUL-separated, capped at 64 x 4 KiB. */
    buf = pa_enc_alloc(e, 64 * 1024 + 1);
    h->argv = pa_enc_alloc(e, 64 * sizeof(char *));
    fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && buf && h->argv) {
        long got;
        while (n < 64 * 1024 && (got = syscall(SYS_read, fd, buf + n, 64 * 1024 - n)) > 0)
            n += got;
        for (long i = 0; i < n && h->n_argv < 64;) {
            char *arg = buf + i;
            size_t len = pa_strlen(arg);
            if (len > 4095)
                arg[4095] = 0;
            h->argv[h->n_argv++] = arg;
            i += (long)len + 1;
        }
    }
    if (fd >= 0)
        syscall(SYS_close, fd);
}

/* ---- modules and stacks -------------------------------------------------- */

typedef struct modules_ctx {
    pa_enc_t *e;
    Perfagent__ModuleMap *maps[2]; /* [full] */
} modules_ctx_t;

static void add_module(void *ctx, const char *path, const uint8_t *bid, unsigned bid_len,
                       uint64_t bias, const uint64_t (*ranges)[2], unsigned nranges, int full)
{
    modules_ctx_t *mc = ctx;
    pa_enc_t *e = mc->e;
    Perfagent__ModuleMap *map = mc->maps[full];
    Perfagent__Module *m;
    if (!map)
        return;
    if (map->n_modules == 4096)
        return;
    m = pa_enc_alloc(e, sizeof(*m));
    if (!m)
        return;
    perfagent__module__init(m);
    m->path = (char *)path;
    m->build_id.data = (uint8_t *)bid;
    m->build_id.len = bid_len;
    m->load_bias = bias;
    m->ranges = pa_enc_alloc(e, nranges * sizeof(*m->ranges));
    for (unsigned i = 0; m->ranges && i < nranges; i++) {
        Perfagent__Range *rg = pa_enc_alloc(e, sizeof(*rg));
        if (!rg)
            break;
        perfagent__range__init(rg);
        rg->start = ranges[i][0];
        rg->end = ranges[i][1];
        m->ranges[m->n_ranges++] = rg;
    }
    map->modules[map->n_modules++] = m;
}

void pa_rec_modules(pa_enc_t *e)
{
    modules_ctx_t mc = {.e = e};
    Perfagent__ModuleMap **maps = mc.maps;
    pa_modules_refresh(0);
    if (!pa_modules_pending())
        return;
    /* Module records are small: reserve generously, one batch holds them. */
    if (pa_sender_room(e, 2u << 20) < 0)
        return;
    for (int full = 0; full < 2; full++) {
        maps[full] = pa_enc_alloc(e, sizeof(**maps));
        if (maps[full]) {
            perfagent__module_map__init(maps[full]);
            maps[full]->full = full;
            /* Filled in order up to n_modules: no need to zero it. */
            maps[full]->modules = pa_enc_alloc_raw(e, 4096 * sizeof(void *));
            if (!maps[full]->modules)
                maps[full] = NULL;
        }
    }
    pa_modules_take(add_module, &mc);
    /* Records only for maps that say something (full=false with no modules
     * says nothing; full=true with none would unload all). */
    for (int full = 0; full < 2; full++) {
        Perfagent__Record *r;
        if (maps[full] && maps[full]->n_modules &&
            (r = pa_enc_record(e, PERFAGENT__RECORD__BODY_MODULES)))
            r->modules = maps[full];
    }
}

void pa_rec_stacks(pa_enc_t *e, uint32_t *sent)
{
    for (;;) {
        unsigned n = 0;
        int truncated = 0;
        const uint64_t *f = pa_stacks_get(*sent + 1, &n, &truncated);
        Perfagent__Record *r;
        Perfagent__StackDef *sd;
        if (!f)
            return;
        if (!n) {
            (*sent)++;
            continue; /* an id lost to fork: never used by any row */
        }
        /* Counted as sent only once its record is in the batch. */
        if (pa_sender_room(e, n * 10 + 64) < 0 ||
            !(r = pa_enc_record(e, PERFAGENT__RECORD__BODY_STACK)))
            return;
        (*sent)++;
        sd = r->stack = pa_enc_alloc(e, sizeof(*sd));
        perfagent__stack_def__init(sd);
        sd->id = *sent;
        sd->n_frames = n;
        sd->frames = (uint64_t *)f; /* read-only view of the stack table */
        sd->truncated = (truncated & PA_STACK_TRUNCATED) != 0;
        sd->leaf_is_pc = (truncated & PA_STACK_LEAF_PC) != 0;
    }
}

/* Declares every stack up to `need`, the highest id a record about to go
 * into the batch may name.  Ids are published out of order: a host thread
 * that took id k and was preempted before publishing it (stacks.c) holds
 * back every id after k, since StackDefs go out in id order.  On a loaded
 * machine that lasts milliseconds (two cores at load 16: a fd_status.py
 * child's CPU samples named id 568 while 567 was still unpublished,
 * "stack id not defined"), so wait for it, up to wait_ns per id; past that
 * the id goes out with no frames (counted with the stack-table drops: its
 * rows show an empty stack) so that the ids after it can.  Only the sender
 * waits; host threads never do. */
void pa_rec_stacks_upto(pa_enc_t *e, uint32_t *sent, uint32_t need, uint64_t wait_ns)
{
    uint64_t deadline = 0;
    uint32_t cap = pa_stacks_count(); /* ids past the capacity never come */
    if (need > cap)
        need = cap;
    pa_rec_stacks(e, sent);
    for (unsigned spins = 0; *sent < need; spins++) {
        uint64_t now = pa_mono_ns();
        uint32_t was = *sent;
        if (!deadline) {
            deadline = now + wait_ns;
        } else if (now >= deadline) {
            Perfagent__Record *r;
            if (pa_sender_room(e, 64) < 0 || !(r = pa_enc_record(e, PERFAGENT__RECORD__BODY_STACK)))
                return;
            r->stack = pa_enc_alloc(e, sizeof(*r->stack));
            perfagent__stack_def__init(r->stack);
            r->stack->id = ++*sent;
            r->stack->truncated = 1;
            atomic_fetch_add_explicit(&pa_stats.drops_stack_table, 1, memory_order_relaxed);
            deadline = 0;
            pa_rec_stacks(e, sent);
            continue;
        }
        if (spins < 64) {
            sched_yield();
        } else {
            struct timespec ts = {0, 50000}; /* preempted: let it run */
            nanosleep(&ts, NULL);
        }
        pa_rec_stacks(e, sent);
        if (*sent != was)
            deadline = 0; /* that one came: the next gets its own wait */
    }
}

/* ---- threads, CPU samples ------------------------------------------------- */

void pa_rec_thread(pa_enc_t *e, pa_thread_t *thr, int exited)
{
    Perfagent__Record *r;
    Perfagent__ThreadInfo *ti;
    if (!thr->name_sent) {
        char path[64] = "/proc/self/task/", *p = path + pa_strlen(path);
        long fd, n;
        p = pa_u64toa(thr->tid, p);
        pa_strlcpy(p, "/comm", 8);
        fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            n = syscall(SYS_read, fd, thr->name, sizeof(thr->name) - 1);
            syscall(SYS_close, fd);
            if (n > 0 && thr->name[n - 1] == '\n')
                thr->name[n - 1] = 0;
        }
    } else if (!exited) {
        return;
    }
    if (pa_sender_room(e, 128) < 0 || !(r = pa_enc_record(e, PERFAGENT__RECORD__BODY_THREAD)))
        return;
    ti = r->thread = pa_enc_alloc(e, sizeof(*ti));
    perfagent__thread_info__init(ti);
    ti->tid = thr->tid;
    /* A copy: once a retired slot is freed below, a new thread may take it
     * and clear the name before this batch is packed (a frame whose length
     * no longer matched its contents, seen with thread_churn). */
    ti->name = pa_enc_strdup(e, thr->name);
    if (!ti->name)
        ti->name = "";
    ti->exited = exited;
    thr->name_sent = 1;
}

/* One CpuSamples record (pa_cpu_emit's callback); the lists are copied:
 * the record is packed only when the next one starts. */
void pa_rec_cpu(void *ctx, uint32_t tid, const char *name, const uint32_t *sids, const uint64_t *ns,
                unsigned n, uint64_t period_ns, uint64_t cpu_ns)
{
    Perfagent__Record *r;
    Perfagent__CpuSamples *cs;
    pa_enc_t *e = ctx;
    if (name && pa_sender_room(e, 128) == 0 &&
        (r = pa_enc_record(e, PERFAGENT__RECORD__BODY_THREAD))) {
        Perfagent__ThreadInfo *ti = r->thread = pa_enc_alloc(e, sizeof(*ti));
        perfagent__thread_info__init(ti);
        ti->tid = tid;
        ti->name = pa_enc_strdup(e, name);
        if (!ti->name)
            ti->name = "";
    }
    if (pa_sender_room(e, (size_t)n * 16 + 64) < 0 ||
        !(r = pa_enc_record(e, PERFAGENT__RECORD__BODY_CPU)))
        return;
    cs = r->cpu = pa_enc_alloc(e, sizeof(*cs));
    perfagent__cpu_samples__init(cs);
    cs->tid = tid;
    cs->period_ns = period_ns;
    cs->thread_cpu_ns = cpu_ns;
    if (n) {
        cs->stack_id = pa_enc_alloc_raw(e, n * sizeof(*sids));
        cs->time_ns = pa_enc_alloc_raw(e, n * sizeof(*ns));
        if (!cs->stack_id || !cs->time_ns) {
            cs->stack_id = NULL, cs->time_ns = NULL;
            return;
        }
        memcpy(cs->stack_id, sids, n * sizeof(*sids));
        memcpy(cs->time_ns, ns, n * sizeof(*ns));
        cs->n_stack_id = cs->n_time_ns = n;
    }
}

/* ---- counters and the end ------------------------------------------------- */

/* AgentStats' counters as of now into st (cs: its ClockSync). */
static void stats_fill(Perfagent__AgentStats *st, Perfagent__ClockSync *cs)
{
    uint64_t rows = atomic_load(&pa_stats.rows_retired);
    uint64_t full = atomic_load(&pa_stats.drops_full_retired);
    uint64_t no_stack = atomic_load(&pa_stats.drops_stack_table);
    uint64_t unwind_failed = atomic_load(&pa_stats.unwind_failures);
    unsigned n = pa_thread_count();
    for (unsigned i = 0; i < n; i++) {
        pa_thread_t *thr = pa_thread_slot(i);
        if (atomic_load_explicit(&thr->state, memory_order_acquire) == PA_THR_FREE)
            continue;
        rows += atomic_load_explicit(&thr->rows, memory_order_relaxed);
        full += atomic_load_explicit(&thr->drops_full, memory_order_relaxed);
        no_stack += atomic_load_explicit(&thr->drops_stack_table, memory_order_relaxed);
        unwind_failed += atomic_load_explicit(&thr->unwind_failures, memory_order_relaxed);
    }
    perfagent__agent_stats__init(st);
    perfagent__clock_sync__init(cs);
    st->records = rows;
    st->bytes_sent = atomic_load(&pa_stats.bytes_sent);
    st->drops_buffer_full = full;
    st->drops_no_buffer = atomic_load(&pa_stats.drops_no_buffer);
    st->drops_stack_table = no_stack;
    st->drops_output = atomic_load(&pa_stats.drops_output);
    st->drops_thread_exit = atomic_load(&pa_stats.drops_thread_exit);
    st->stacks = pa_stacks_count();
    st->threads = atomic_load(&pa_stats.threads);
    st->reconnects = atomic_load(&pa_stats.reconnects);
    st->unwind_failures = unwind_failed;
    st->events_dropped = pa_events_dropped();
    if (pa_cfg.malloc_rate > 1) {
        st->heap_samples_dropped = atomic_load(&pa_sampleset_full);
        st->heap_samples_live = pa_sampleset_count();
    }
    if (pa_cfg.cpu_hz) {
        pa_cpu_stats_t cst;
        pa_cpu_stats(&cst);
        st->cpu_samples = cst.samples;
        st->cpu_lost = cst.lost;
        st->cpu_truncated = cst.truncated;
        st->cpu_no_regs = cst.no_regs;
        st->cpu_stack_table = cst.stack_table;
        st->cpu_throttled = cst.throttled;
        st->cpu_signals = cst.signals;
        st->cpu_overruns = cst.overruns;
    }
    cs->ticks = pa_ticks();
    cs->mono_ns = pa_mono_ns();
    st->clock = cs;
}

uint64_t pa_rec_stats(pa_enc_t *e)
{
    Perfagent__Record *r;
    Perfagent__AgentStats *st;
    Perfagent__ClockSync *cs;
    if (pa_sender_room(e, 256) < 0 || !(r = pa_enc_record(e, PERFAGENT__RECORD__BODY_STATS)))
        return 0;
    st = r->stats = pa_enc_alloc(e, sizeof(*st));
    cs = pa_enc_alloc(e, sizeof(*cs));
    stats_fill(st, cs);
    return cs->mono_ns;
}

void pa_rec_goodbye(pa_enc_t *e, int exit_code)
{
    Perfagent__Record *r;
    if (pa_sender_room(e, 256) < 0 || !(r = pa_enc_record(e, PERFAGENT__RECORD__BODY_GOODBYE)))
        return;
    r->goodbye = pa_enc_alloc(e, sizeof(*r->goodbye));
    perfagent__goodbye__init(r->goodbye);
    r->goodbye->exit_code = exit_code;
    r->goodbye->end_time_unix_ns = pa_real_ns();
}

/* A thread's typed event (event.h), passed on as the Record field it is;
 * kinds not listed in proto/wire.h are dropped. */
int pa_rec_event(void *ctx, uint32_t kind, const uint8_t *p, uint32_t len)
{
    pa_enc_t *e = ctx;
    if (kind != PA_WIRE_EVENT_QUERY && kind != PA_WIRE_EVENT_SOCKET)
        return 0;
    if (pa_sender_room(e, (size_t)len + 32) < 0)
        return -1; /* stays in the ring for the next round */
    return pa_enc_raw_record(e, kind, p, len) < 0 ? -1 : 0;
}

void pa_rec_snapshot(pa_enc_t *e, uint64_t id, const char *label)
{
    Perfagent__Record *r;
    if (pa_sender_room(e, 128) < 0 || !(r = pa_enc_record(e, PERFAGENT__RECORD__BODY_SNAPSHOT)))
        return;
    r->snapshot = pa_enc_alloc(e, sizeof(*r->snapshot));
    perfagent__snapshot_marker__init(r->snapshot);
    r->snapshot->id = id;
    r->snapshot->label = (char *)label; /* a string constant: outlives the frame */
    r->snapshot->ticks = pa_ticks();
}

/* ---- a crash (crash.c) ------------------------------------------------------ */

static const char *signame(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    case SIGQUIT: return "SIGQUIT";
    }
    return "signal";
}

static void crash_fill(Perfagent__Crash *c, const pa_crash_info_t *in)
{
    perfagent__crash__init(c);
    c->signo = in->signo;
    c->code = in->code;
    c->addr = in->addr;
    c->tid = in->tid;
    c->stack_id = in->stack_id;
    c->ticks = in->ticks;
    c->mono_ns = in->mono_ns;
    c->signal_name = (char *)signame(in->signo); /* string constants */
    c->host_handler = in->host_handler != 0;
    c->sender_pid = in->sender_pid;
    c->stack_skipped = (char *)(in->skipped ? in->skipped : "");
    c->direct = in->direct != 0;
}

void pa_rec_crash(pa_enc_t *e, const pa_crash_info_t *in)
{
    Perfagent__Record *r;
    if (pa_sender_room(e, 256) < 0 || !(r = pa_enc_record(e, PERFAGENT__RECORD__BODY_CRASH)))
        return;
    if ((r->crash = pa_enc_alloc(e, sizeof(*r->crash))))
        crash_fill(r->crash, in);
}

/* Varint into p; returns the end. */
static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

size_t pa_rec_crash_frame(uint8_t *buf, size_t cap, uint64_t seq, uint32_t stacks_sent,
                          const pa_crash_info_t *in)
{
    Perfagent__Record recs[3], *rp[3];
    Perfagent__StackDef sd;
    Perfagent__Crash c;
    Perfagent__AgentStats st;
    Perfagent__ClockSync cs;
    Perfagent__Batch b;
    unsigned n = 0;
    size_t len;
    uint8_t *p;

    crash_fill(&c, in);
    if (in->stack_id > stacks_sent) {
        /* Declared here on its own: ids may skip (the proto allows gaps). */
        unsigned nf = 0;
        int flags = 0;
        const uint64_t *f = pa_stacks_get(in->stack_id, &nf, &flags);
        if (f && nf) {
            perfagent__stack_def__init(&sd);
            sd.id = in->stack_id;
            sd.n_frames = nf;
            sd.frames = (uint64_t *)f;
            sd.truncated = (flags & PA_STACK_TRUNCATED) != 0;
            sd.leaf_is_pc = (flags & PA_STACK_LEAF_PC) != 0;
            perfagent__record__init(&recs[n]);
            recs[n].body_case = PERFAGENT__RECORD__BODY_STACK;
            recs[n].stack = &sd;
            n++;
        } else {
            c.stack_id = 0;
            c.stack_skipped = "the stack was not published";
        }
    }
    perfagent__record__init(&recs[n]);
    recs[n].body_case = PERFAGENT__RECORD__BODY_CRASH;
    recs[n].crash = &c;
    n++;
    stats_fill(&st, &cs);
    perfagent__record__init(&recs[n]);
    recs[n].body_case = PERFAGENT__RECORD__BODY_STATS;
    recs[n].stats = &st;
    n++;
    for (unsigned i = 0; i < n; i++)
        rp[i] = &recs[i];
    perfagent__batch__init(&b);
    b.seq = seq;
    b.n_records = n;
    b.records = rp;
    len = perfagent__batch__get_packed_size(&b);
    if (len + 10 > cap)
        return 0;
    p = put_varint(buf, len);
    perfagent__batch__pack(&b, p);
    return (size_t)(p - buf) + len;
}
