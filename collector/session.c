/*
 * session — the state of one traced process (see session.h).
 *
 * Owns the framing (stream.c) and decoding (decode.c) of its stream and
 * everything decoded: Hello, every module ever declared, interned stacks with
 * their totals, the live heap (applied by session_heap.c), threads, the last
 * AgentStats, snapshots.  It is decode.c's sink, so it only ever sees
 * validated records; it must not parse bytes itself.  Reports are rendered
 * by report.c from a rep_input_t.  The struct is in session_int.h.
 */
#include "session_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "json.h"
#include "earlyfree.h"
#include "livemap.h"
#include "round.h"
#include "report.h"
#include "stream.h"
#include "symtab.h"
#include "util.h"

/* ---- small helpers ------------------------------------------------------ */

static inline uint64_t mix64(uint64_t x)
{
    return x * UINT64_C(0x9E3779B97F4A7C15);
}

static inline size_t idx_home(const idx_t *x, uint64_t h)
{
    return (size_t)(mix64(h) >> 32) & (x->cap - 1);
}

static void idx_place(idx_t *x, uint64_t h, uint32_t v)
{
    size_t k = idx_home(x, h);
    while (x->slot[k])
        k = (k + 1) & (x->cap - 1);
    x->slot[k] = v;
}

/* Add position n (the n entries before it have keys key(ctx, i)). */
static int idx_add(idx_t *x, size_t n, uint64_t h, uint64_t (*key)(const void *, size_t),
                   const void *ctx)
{
    if ((n + 1) * 2 > x->cap) {
        idx_t nx = {.cap = x->cap ? x->cap * 2 : 64};
        if (!(nx.slot = calloc(nx.cap, sizeof(*nx.slot))))
            return -ENOMEM;
        for (size_t i = 0; i < n; i++)
            idx_place(&nx, key(ctx, i), (uint32_t)i + 1);
        free(x->slot);
        *x = nx;
    }
    idx_place(x, h, (uint32_t)n + 1);
    return 0;
}

#define IDX_FOREACH(x, h, k)                                                                       \
    for (size_t k = idx_home(x, h); (x)->cap && (x)->slot[k]; k = (k + 1) & ((x)->cap - 1))
/* ---- Hello / Goodbye / stats / snapshots ------------------------------- */

/* A (ticks, ns) pair: the first is kept, the latest is the second. */
static void clock_pair(session_t *s, const Perfagent__ClockSync *c)
{
    if (!c || (!c->ticks && !c->mono_ns))
        return;
    if (s->clk.n_pairs == 0) {
        s->clk.pair0_ticks = c->ticks;
        s->clk.pair0_ns = c->mono_ns;
    }
    s->clk.pair1_ticks = c->ticks;
    s->clk.pair1_ns = c->mono_ns;
    if (s->clk.n_pairs < 2)
        s->clk.n_pairs++;
}

static int on_hello(void *ctx, const Perfagent__Hello *h)
{
    session_t *s = ctx;
    /* protobuf-c strings are never NULL: absent ones are "". */
    s->proc.exe = strdup(h->exe);
    s->proc.argv_json = json_array_text(h->argv, h->n_argv);
    s->proc.agent_version = strdup(h->agent_version);
    s->proc.hostname = strdup(h->hostname);
    s->proc.unwinder = strdup(h->config ? h->config->unwinder : "");
    if (!s->proc.exe || !s->proc.argv_json || !s->proc.agent_version || !s->proc.hostname ||
        !s->proc.unwinder)
        return -ENOMEM;
    s->proc.has_hello = 1;
    s->proc.pid = h->pid;
    s->proc.ppid = h->ppid;
    s->proc.parent_stream_pid = h->parent_stream_pid;
    s->proc.protocol_version = h->protocol_version;
    s->clk.start_mono_ns = h->start_mono_ns;
    s->clk.start_unix_ns = h->start_time_unix_ns;
    s->clk.tsc = h->clock == PERFAGENT__CLOCK__CLOCK_TSC;
    clock_pair(s, h->clock_sync);
    s->proc.malloc_rate = h->config ? h->config->malloc_rate : 0;
    s->proc.max_frames = h->config ? h->config->max_frames : 0;
    s->proc.cpu_hz = h->config ? h->config->cpu_hz : 0;
    s->proc.cpu_stack_bytes = h->config ? h->config->cpu_stack_bytes : 0;
    if (!(s->proc.cpu_mechanism = strdup(h->config ? h->config->cpu_mechanism : "")))
        return -ENOMEM;
    return 0;
}

static int on_goodbye(void *ctx, const Perfagent__Goodbye *g)
{
    session_t *s = ctx;
    int rc = session_flush_round(s);
    if (rc < 0)
        return rc;
    s->goodbye = 1;
    s->exit_code = g->exit_code;
    s->clk.end_unix_ns = g->end_time_unix_ns;
    return 0;
}

static int on_stats(void *ctx, const Perfagent__AgentStats *a)
{
    session_t *s = ctx;
    s->has_stats = 1;
    s->stats = (rep_agent_stats_t){
        .records = a->records,
        .bytes_sent = a->bytes_sent,
        .drops_buffer_full = a->drops_buffer_full,
        .drops_no_buffer = a->drops_no_buffer,
        .drops_stack_table = a->drops_stack_table,
        .drops_output = a->drops_output,
        .drops_thread_exit = a->drops_thread_exit,
        .stacks = a->stacks,
        .threads = a->threads,
        .reconnects = a->reconnects,
        .unwind_failures = a->unwind_failures,
        .cpu_samples = a->cpu_samples,
        .cpu_lost = a->cpu_lost,
        .cpu_truncated = a->cpu_truncated,
        .cpu_no_regs = a->cpu_no_regs,
        .cpu_stack_table = a->cpu_stack_table,
        .cpu_throttled = a->cpu_throttled,
        .cpu_signals = a->cpu_signals,
        .heap_samples_dropped = a->heap_samples_dropped,
        .heap_samples_live = a->heap_samples_live,
        .cpu_overruns = a->cpu_overruns,
        .events_dropped = a->events_dropped,
    };
    clock_pair(s, a->clock);
    return 0;
}

/* A fatal signal: the process's end, usually, with no Goodbye after it.
 * Only the first is kept (the agent sends one). */
static int on_crash(void *ctx, const Perfagent__Crash *c)
{
    session_t *s = ctx;
    rep_crash_t *cr = &s->crash;
    if (cr->has)
        return 0;
    if (!(cr->name = strdup(c->signal_name)) || !(cr->skipped = strdup(c->stack_skipped)))
        return -ENOMEM;
    cr->has = 1;
    cr->signo = c->signo;
    cr->code = c->code;
    cr->addr = c->addr;
    cr->tid = c->tid;
    cr->stack_id = c->stack_id;
    cr->sender_pid = c->sender_pid;
    cr->ticks = c->ticks;
    cr->mono_ns = c->mono_ns;
    cr->host_handler = c->host_handler;
    cr->direct = c->direct;
    return 0;
}

static int on_snapshot(void *ctx, const Perfagent__SnapshotMarker *m)
{
    session_t *s = ctx;
    /* Mid-round: rows of threads drained after the marker may still come. */
    if (session_flush_early(s) < 0)
        return -ENOMEM;
    if (s->n_snaps >= MAX_SNAPSHOTS)
        return 0;
    if (util_grow((void **)&s->snaps, &s->cap_snaps, s->n_snaps + 1, sizeof(*s->snaps)) < 0)
        return -ENOMEM;
    rep_snapshot_t *sn = &s->snaps[s->n_snaps];
    if (!(sn->label = strdup(m->label)))
        return -ENOMEM;
    sn->id = m->id;
    sn->ticks = m->ticks;
    sn->live_bytes = s->t.live_bytes;
    sn->live_objects = s->t.live_objects;
    sn->bytes_allocated = s->t.bytes_allocated;
    sn->has_set = 0;
    sn->counts = NULL;
    sn->n_counts = 0;
    sn->dir_no = 0;
    sn->written = 0;
    s->n_snaps++;
    if (s->snap_dir)
        return session_snapshot_live(s, sn);
    if (s->n_snaps > SESSION_SNAPSHOT_SETS)
        return 0;
    /* The live set at this moment, sparse: every stack that has allocated. */
    size_t n = 0;
    for (size_t i = 0; i < s->n_stacks; i++)
        n += s->stacks[i].alloc_objects || s->stacks[i].live_objects;
    if (!(sn->counts = malloc((n ? n : 1) * sizeof(*sn->counts))))
        return -ENOMEM;
    for (size_t i = 0; i < s->n_stacks; i++) {
        const rep_stack_t *st = &s->stacks[i];
        if (st->alloc_objects || st->live_objects)
            sn->counts[sn->n_counts++] = (rep_snap_count_t){.stack_id = (uint32_t)i,
                                                            .alloc_bytes = st->alloc_bytes,
                                                            .alloc_objects = st->alloc_objects,
                                                            .live_bytes = st->live_bytes,
                                                            .live_objects = st->live_objects};
    }
    sn->has_set = 1;
    sn->dir_no = ++s->snap_dirs;
    return 0;
}

/* ---- modules ------------------------------------------------------------ */

static uint64_t module_hash(const char *path, const Perfagent__Module *m)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        h = (h ^ *p) * UINT64_C(1099511628211);
    for (size_t i = 0; i < m->build_id.len; i++)
        h = (h ^ m->build_id.data[i]) * UINT64_C(1099511628211);
    h ^= mix64(m->load_bias);
    for (size_t i = 0; i < m->n_ranges; i++)
        h ^= mix64(m->ranges[i]->start + 31 * m->ranges[i]->end + i);
    return h;
}

static int module_same(const module_rec_t *r, const char *path, const Perfagent__Module *m)
{
    if (r->load_bias != m->load_bias || r->build_id_len != m->build_id.len ||
        r->n_ranges != m->n_ranges || strcmp(r->path, path) != 0)
        return 0;
    if (r->build_id_len && memcmp(r->build_id, m->build_id.data, r->build_id_len) != 0)
        return 0;
    for (size_t i = 0; i < r->n_ranges; i++)
        if (r->ranges[i][0] != m->ranges[i]->start || r->ranges[i][1] != m->ranges[i]->end)
            return 0;
    return 1;
}

static uint64_t module_key(const void *ctx, size_t i)
{
    return ((const session_t *)ctx)->mods[i].hash;
}

static module_rec_t *module_find(session_t *s, uint64_t h, const char *path,
                                 const Perfagent__Module *m)
{
    IDX_FOREACH(&s->mod_index, h, k)
    {
        module_rec_t *r = &s->mods[s->mod_index.slot[k] - 1];
        if (r->hash == h && module_same(r, path, m))
            return r;
    }
    return NULL;
}

static int module_add(session_t *s, const Perfagent__Module *m)
{
    /* The loader names the main program "": the Hello's exe is its path. */
    const char *path = m->path && m->path[0] ? m->path : (s->proc.exe ? s->proc.exe : "");
    uint64_t h = module_hash(path, m);
    module_rec_t *r = module_find(s, h, path, m);
    if (r) {
        r->loaded = 1;
        return 0;
    }
    if (s->n_mods >= MAX_MODULES) {
        s->modules_dropped++;
        return 0;
    }
    if (util_grow((void **)&s->mods, &s->cap_mods, s->n_mods + 1, sizeof(*s->mods)) < 0)
        return -ENOMEM;
    r = &s->mods[s->n_mods];
    if (!(r->path = strdup(path)))
        return -ENOMEM;
    if (m->n_ranges && !(r->ranges = calloc(m->n_ranges, sizeof(*r->ranges)))) {
        free(r->path);
        r->path = NULL;
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->n_ranges; i++) {
        r->ranges[i][0] = m->ranges[i]->start;
        r->ranges[i][1] = m->ranges[i]->end;
    }
    r->n_ranges = m->n_ranges;
    if (m->build_id.len)
        memcpy(r->build_id, m->build_id.data, m->build_id.len);
    r->build_id_len = m->build_id.len;
    r->load_bias = m->load_bias;
    r->loaded = 1;
    r->hash = h;
    if (idx_add(&s->mod_index, s->n_mods, h, module_key, s) < 0) {
        free(r->ranges);
        free(r->path);
        memset(r, 0, sizeof(*r));
        return -ENOMEM;
    }
    s->n_mods++;
    return 0;
}

static int on_modules(void *ctx, const Perfagent__ModuleMap *mm)
{
    session_t *s = ctx;
    int rc;
    /* full: what was loaded before is unloaded now, but stays known so stacks
     * recorded while it was mapped still resolve. */
    if (mm->full)
        for (size_t i = 0; i < s->n_mods; i++)
            s->mods[i].loaded = 0;
    for (size_t i = 0; i < mm->n_modules; i++)
        if ((rc = module_add(s, mm->modules[i])) < 0)
            return rc;
    return 0;
}

/* ---- stacks -------------------------------------------------------------- */

static int on_stack(void *ctx, const Perfagent__StackDef *sd)
{
    session_t *s = ctx;
    /* decode.c guarantees: id > every earlier id, id <= max_stacks, and the
     * frame pool stays under its total cap. */
    if (util_grow((void **)&s->stacks, &s->cap_stacks, (size_t)sd->id + 1, sizeof(*s->stacks)) < 0 ||
        util_grow((void **)&s->frames, &s->cap_frames, s->n_frames + sd->n_frames, sizeof(*s->frames)) <
            0)
        return -ENOMEM;
    rep_stack_t *st = &s->stacks[sd->id];
    st->frames_off = s->n_frames;
    st->n_frames = (uint32_t)sd->n_frames;
    st->defined = 1;
    st->leaf_is_pc = sd->leaf_is_pc != 0;
    st->truncated = sd->truncated != 0;
    if (sd->n_frames)
        memcpy(s->frames + s->n_frames, sd->frames, sd->n_frames * sizeof(*s->frames));
    s->n_frames += sd->n_frames;
    s->n_stacks = (size_t)sd->id + 1;
    s->t.stacks++;
    return 0;
}

/* ---- threads ------------------------------------------------------------- */

static uint64_t thread_key(const void *ctx, size_t i)
{
    return ((const session_t *)ctx)->threads[i].tid;
}

rep_thread_t *session_thread_get(session_t *s, uint32_t tid)
{
    IDX_FOREACH(&s->tid_index, tid, k)
    {
        if (s->threads[s->tid_index.slot[k] - 1].tid == tid)
            return &s->threads[s->tid_index.slot[k] - 1];
    }
    if (s->n_threads >= MAX_THREADS)
        return NULL; /* per-thread detail stops; the heap totals do not */
    if (util_grow((void **)&s->threads, &s->cap_threads, s->n_threads + 1, sizeof(*s->threads)) < 0 ||
        idx_add(&s->tid_index, s->n_threads, tid, thread_key, s) < 0)
        return NULL;
    rep_thread_t *t = &s->threads[s->n_threads++];
    memset(t, 0, sizeof(*t));
    t->tid = tid;
    s->t.threads = s->n_threads;
    return t;
}

static int on_thread(void *ctx, const Perfagent__ThreadInfo *ti)
{
    session_t *s = ctx;
    rep_thread_t *t = session_thread_get(s, ti->tid);
    if (!t)
        return 0; /* over the cap, or no memory for a detail we can live without */
    if (ti->name && ti->name[0]) {
        /* comm is 16 bytes; a longer name is an agent's choice we cap. */
        char *n = strndup(ti->name, 256);
        if (!n)
            return -ENOMEM;
        free(t->name);
        t->name = n;
    }
    if (ti->exited)
        t->exited = 1;
    return 0;
}
/* ---- CPU samples ---------------------------------------------------------- */

/* decode.c checked the record (ids 0 or defined, lengths, period): only
 * counting is left, in cpu_model. */
static int on_cpu(void *ctx, const Perfagent__CpuSamples *cs)
{
    return cpu_model_add_record(((session_t *)ctx)->cpu, cs);
}

static int on_query(void *ctx, const Perfagent__QueryEvent *q)
{
    return query_model_add(((session_t *)ctx)->pq, q);
}

static int on_socket(void *ctx, const Perfagent__SocketEvent *ev)
{
    return net_model_add(((session_t *)ctx)->net, ev);
}

/* ---- lifecycle and feeding ----------------------------------------------- */

/* A positive number from the environment, else 0 (= the default).  For the
 * reorder limits, which tests shrink to drive small streams through the
 * paths that big rounds take. */
static uint64_t env_u64(const char *name)
{
    return util_env_u64(name, 1, UINT64_MAX, 0);
}

static int on_frame(void *ctx, const uint8_t *frame, size_t len, uint64_t offset,
                    uint64_t body_offset)
{
    return decode_frame(((session_t *)ctx)->dec, frame, len, offset);
}

session_t *session_new(const session_opts_t *opts)
{
    session_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    decode_sink_t sink = {
        .ctx = s,
        .hello = on_hello,
        .modules = on_modules,
        .stack = on_stack,
        .heap = session_on_heap,
        .thread = on_thread,
        .cpu = on_cpu,
        .query = on_query,
        .socket = on_socket,
        .snapshot = on_snapshot,
        .stats = on_stats,
        .goodbye = on_goodbye,
        .crash = on_crash,
        .round_end = session_on_round_end,
    };
    decode_limits_t lim = {.max_stacks = opts ? opts->max_stacks : 0,
                           .max_threads = opts ? opts->max_threads : 0};
    if (opts && opts->sysroot && !(s->sysroot = strdup(opts->sysroot)))
        goto fail;
    s->stream = stream_new(on_frame, s, STREAM_MAX_FRAME);
    s->dec = decode_new(&lim, &sink);
    s->live = livemap_new(opts ? opts->max_live : 0);
    s->round = round_new();
    s->cpu = cpu_model_new();
    s->pq = query_model_new();
    s->net = net_model_new();
    s->cpu_per_thread = opts ? opts->cpu_per_thread : 0;
    if (opts && opts->snap_dir) {
        s->snap_dir = opts->snap_dir;
        s->snap_done = opts->snap_done;
        s->snap_arg = opts->snap_arg;
    }
    /* Stack 0 always exists: the bucket of allocations without a stack. */
    if (!s->stream || !s->dec || !s->live || !s->round || !s->cpu || !s->pq || !s->net ||
        session_set_reorder_limits(s, env_u64("PERFAGENT_COLLECTOR_ROUND_ROWS"),
                                   env_u64("PERFAGENT_COLLECTOR_PENDING_MAX")) < 0 ||
        util_grow((void **)&s->stacks, &s->cap_stacks, 1, sizeof(*s->stacks)) < 0)
        goto fail;
    s->stacks[0].defined = 1;
    s->n_stacks = 1;
    return s;
fail:
    session_free(s);
    return NULL;
}

void session_free(session_t *s)
{
    if (!s)
        return;
    stream_free(s->stream);
    decode_free(s->dec);
    livemap_free(s->live);
    round_free(s->round);
    cpu_model_free(s->cpu);
    query_model_free(s->pq);
    net_model_free(s->net);
    earlyfree_free(s->early);
    symtab_free(s->symtab);
    for (size_t i = 0; i < s->n_mods; i++) {
        free(s->mods[i].path);
        free(s->mods[i].ranges);
    }
    for (size_t i = 0; i < s->n_threads; i++)
        free(s->threads[i].name);
    for (size_t i = 0; i < s->n_snaps; i++) {
        free(s->snaps[i].label);
        free(s->snaps[i].counts);
    }
    free(s->mods);
    free(s->mod_index.slot);
    free(s->stacks);
    free(s->frames);
    free(s->threads);
    free(s->tid_index.slot);
    free(s->snaps);
    free(s->snap_root);
    free(s->pk);
    free(s->proc.exe);
    free(s->proc.argv_json);
    free(s->proc.agent_version);
    free(s->proc.hostname);
    free(s->proc.unwinder);
    free(s->proc.cpu_mechanism);
    free(s->sysroot);
    free(s->crash.name);
    free(s->crash.skipped);
    free(s->summary);
    free(s);
}

static void set_fault(session_t *s, int rc)
{
    s->rc = rc;
    if (stream_error(s->stream)) {
        s->fault_off = stream_fault_offset(s->stream);
        snprintf(s->err, sizeof(s->err), "stream offset %" PRIu64 ": %s", s->fault_off,
                 stream_error(s->stream));
    } else if (decode_error(s->dec)) {
        s->fault_off = decode_fault_offset(s->dec);
        snprintf(s->err, sizeof(s->err), "%s", decode_error(s->dec));
    } else {
        s->fault_off = stream_offset(s->stream);
        snprintf(s->err, sizeof(s->err), "stream offset %" PRIu64 ": %s", s->fault_off,
                 strerror(-rc));
    }
}

int session_feed(session_t *s, const uint8_t *buf, size_t len)
{
    if (s->rc)
        return s->rc;
    int rc = stream_feed(s->stream, buf, len);
    if (rc < 0) {
        set_fault(s, rc);
        (void)session_flush_round(s); /* rows before the fault count, as the proto says */
    }
    return rc;
}

int session_end(session_t *s)
{
    int rc;
    s->ended = 1;
    /* A stream cut mid-round (crash, kill, lost connection) still has its
     * last rows applied, even after a decode fault. */
    rc = session_flush_round(s);
    if (s->rc)
        return s->rc;
    if (rc < 0) {
        set_fault(s, rc);
        return rc;
    }
    rc = stream_end(s->stream);
    if (rc < 0)
        set_fault(s, rc);
    return rc;
}

/* ---- accessors ----------------------------------------------------------- */

uint64_t session_start_unix_ns(const session_t *s)
{
    return s->clk.start_unix_ns;
}

int session_may_resume(const session_t *s)
{
    return s->proc.has_hello && !s->goodbye && !s->rc && !s->ended;
}

int session_resumable(const session_t *s)
{
    return session_may_resume(s) && stream_at_boundary(s->stream);
}

void session_set_snap_arg(session_t *s, void *arg)
{
    s->snap_arg = arg;
}

const char *session_error(const session_t *s)
{
    return s->rc ? s->err : NULL;
}

uint64_t session_fault_offset(const session_t *s)
{
    return s->rc ? s->fault_off : 0;
}

int session_has_hello(const session_t *s)
{
    return s->proc.has_hello;
}

int session_has_goodbye(const session_t *s)
{
    return s->goodbye;
}

uint32_t session_pid(const session_t *s)
{
    return s->proc.pid;
}

uint32_t session_ppid(const session_t *s)
{
    return s->proc.ppid;
}

const char *session_exe(const session_t *s)
{
    return s->proc.exe;
}

const char *session_argv_json(const session_t *s)
{
    return s->proc.argv_json ? s->proc.argv_json : "[]";
}

const char *session_summary(const session_t *s)
{
    return s->summary;
}

void session_get_totals(const session_t *s, session_totals_t *out)
{
    const decode_counts_t *dc = decode_counts(s->dec);
    *out = s->t;
    out->live_blocks = livemap_count(s->live);
    out->live_untracked = livemap_overflows(s->live);
    /* From the balance, not counted per row: every ALLOC (or SAMPLE) that
     * is not live or untracked was freed by exactly one FREE row, in
     * whichever order they arrived (session_heap.c), so the FREE rows left
     * over are the frees of blocks the stream never showed allocated.  Never
     * below 0: a FREE lost with the agent's drops leaves the balance short. */
    uint64_t freed = s->t.allocs + s->t.samples - out->live_blocks - out->live_untracked;
    out->frees_unknown = s->t.frees > freed ? s->t.frees - freed : 0;
    out->modules = s->n_mods + s->modules_dropped;
    out->frames = dc->frames;
    out->frames_lost = dc->frames_lost;
    out->rows = dc->rows;
    out->ignored_records = dc->ignored_records;
    out->count_mismatch = dc->count_mismatch;
    out->rows_unsynced = dc->rows_unsynced;
    out->cpu_samples = cpu_model_samples(s->cpu);
}

int session_stack_totals(const session_t *s, uint32_t id, uint64_t *alloc_bytes,
                         uint64_t *alloc_objects, uint64_t *live_bytes, uint64_t *live_objects)
{
    if (id >= s->n_stacks || !s->stacks[id].defined)
        return -ENOENT;
    const rep_stack_t *st = &s->stacks[id];
    if (alloc_bytes)
        *alloc_bytes = st->alloc_bytes;
    if (alloc_objects)
        *alloc_objects = st->alloc_objects;
    if (live_bytes)
        *live_bytes = st->live_bytes;
    if (live_objects)
        *live_objects = st->live_objects;
    return 0;
}

/* ---- reports --------------------------------------------------------------- */

static int symtab_sync(session_t *s)
{
    if (!s->symtab && !(s->symtab = symtab_new(s->sysroot)))
        return -ENOMEM;
    for (; s->mods_in_symtab < s->n_mods; s->mods_in_symtab++) {
        const module_rec_t *m = &s->mods[s->mods_in_symtab];
        /* A module symtab refuses still resolves to "[unknown]": not fatal. */
        (void)symtab_add_module(s->symtab, m->path, m->build_id, m->build_id_len, m->load_bias,
                                (const uint64_t(*)[2])m->ranges, m->n_ranges);
    }
    return 0;
}

void session_fill_input(session_t *s, rep_input_t *in_out)
{
    rep_input_t in = {0};

    symtab_sync(s); /* without a symtab, frames print as [unknown] */

    in.proc = s->proc;
    in.proc.argv_json = (char *)session_argv_json(s);
    in.clock = s->clk;
    in.goodbye = s->goodbye;
    in.exit_code = s->exit_code;
    in.ended = s->ended;
    in.fault = session_error(s);
    in.stream_bytes = stream_offset(s->stream);
    in.stacks = s->stacks;
    in.n_stacks = s->n_stacks;
    in.frames = s->frames;
    session_get_totals(s, &in.totals);
    in.threads = s->threads;
    in.n_threads = s->n_threads;
    in.snapshots = s->snaps;
    in.n_snapshots = s->n_snaps;
    in.has_stats = s->has_stats;
    in.stats = s->stats;
    in.crash = s->crash;
    in.cpu = s->cpu;
    in.cpu_per_thread = s->cpu_per_thread;
    in.pq = s->pq;
    in.net = s->net;
    in.symtab = s->symtab;
    *in_out = in;
}

int session_write_reports(session_t *s, const char *dir)
{
    rep_input_t in;
    rep_stack_t *peak = NULL;

    (void)session_flush_round(s); /* normally a no-op: session_end() flushed */
    session_fill_input(s, &in);
    /* Sampled counts are estimates: the highest of them overstates the
     * peak, so only exact mode has one. */
    if (s->proc.malloc_rate == 1 && s->peak_gen && (peak = session_peak_stacks(s))) {
        in.peak_stacks = peak;
        in.peak_ticks = s->peak_ticks;
        in.peak_live_bytes = s->peak_bytes;
        in.peak_live_objects = s->peak_objects;
    }

    reorder_stats_t ro;
    session_get_reorder(s, &ro);
    char *summary = NULL;
    int rc = report_write_ex(&in, &ro, dir, &summary);
    if (summary) {
        free(s->summary);
        s->summary = summary;
    }
    free(peak);
    return rc;
}
