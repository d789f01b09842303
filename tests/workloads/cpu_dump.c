/*
 * cpu_dump — test-only reader of a .pfr's CPU side: decoder + cpu_model +
 * symtab.  No test uses it any more (the reports show CPU samples:
 * cpu.folded, cpu.svg, summary.txt; tests/e2e/cpu_*.sh read those); kept
 * until its rule in tests/workloads/workloads.mk goes with it.
 *
 *   usage: cpu_dump FILE.pfr [FOLDED_OUT]
 *
 * Prints (one fact a line, key=value):
 *   process pid=N forked_from=PID|0 argv=ARGS...
 *   config cpu_hz=N stack_bytes=N mechanism=TEXT
 *   stats samples=N lost=N truncated=N no_regs=N stack_table=N throttled=N
 *   thread tid=T name=NAME samples=N cpu_ns=N delivered_pct=P
 *   self tid=T fn=FUNCTION samples=N      (leaf function, inline-innermost)
 *   truncated samples=N stack=ROOT;...;LEAF  (stacks whose walk stopped early)
 *   leaf_not_pc samples=N                 (samples whose stack lacks leaf_is_pc)
 *   total samples=N stacks_truncated=N goodbye=0|1 decode=ok|ERROR
 * and writes FOLDED_OUT with cpu_model_write_folded().
 */
#include "cpu_model.h"
#include "decode.h"
#include "stream.h"
#include "symtab.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXF 256

typedef struct stk {
    uint64_t *f;
    uint32_t n;
    int leaf_pc, truncated;
} stk_t;

typedef struct names {
    uint32_t tid;
    char name[32];
} names_t;

static struct {
    decoder_t *dec;
    symtab_t *sym;
    cpu_model_t *cpu;
    char *exe;
    stk_t *st;
    size_t n_st;
    names_t nm[4096];
    size_t n_nm;
    Perfagent__AgentStats last;
    int has_stats, goodbye;
    /* self samples per (tid, leaf function) */
    struct { uint32_t tid; const char *fn; uint64_t n; } self[4096];
    size_t n_self;
} g;

static int on_hello(void *c, const Perfagent__Hello *h)
{
    (void)c;
    g.exe = strdup(h->exe);
    printf("process pid=%u forked_from=%u argv=", h->pid, h->parent_stream_pid);
    for (size_t i = 0; i < h->n_argv; i++)
        printf("%s%s", i ? " " : "", h->argv[i]);
    printf("\n");
    printf("config cpu_hz=%u stack_bytes=%u mechanism=%s\n", h->config ? h->config->cpu_hz : 0,
           h->config ? h->config->cpu_stack_bytes : 0,
           h->config && h->config->cpu_mechanism[0] ? h->config->cpu_mechanism : "-");
    return 0;
}

static int on_modules(void *c, const Perfagent__ModuleMap *mm)
{
    (void)c;
    for (size_t i = 0; i < mm->n_modules; i++) {
        const Perfagent__Module *m = mm->modules[i];
        uint64_t (*r)[2] = calloc(m->n_ranges + 1, sizeof(*r));
        for (size_t j = 0; j < m->n_ranges; j++)
            r[j][0] = m->ranges[j]->start, r[j][1] = m->ranges[j]->end;
        symtab_add_module(g.sym, m->path[0] ? m->path : g.exe, m->build_id.data, m->build_id.len,
                          m->load_bias, (const uint64_t(*)[2])r, m->n_ranges);
        free(r);
    }
    return 0;
}

static int on_stack(void *c, const Perfagent__StackDef *sd)
{
    (void)c;
    if (sd->id >= g.n_st) {
        size_t n = g.n_st ? g.n_st : 1024;
        while (n <= sd->id)
            n *= 2;
        g.st = realloc(g.st, n * sizeof(*g.st));
        memset(g.st + g.n_st, 0, (n - g.n_st) * sizeof(*g.st));
        g.n_st = n;
    }
    g.st[sd->id].f = malloc(sd->n_frames * sizeof(uint64_t) + 1);
    memcpy(g.st[sd->id].f, sd->frames, sd->n_frames * sizeof(uint64_t));
    g.st[sd->id].n = (uint32_t)sd->n_frames;
    g.st[sd->id].leaf_pc = sd->leaf_is_pc;
    g.st[sd->id].truncated = sd->truncated;
    return 0;
}

static const char *leaf_fn(uint32_t id)
{
    sym_frame_t f[16];
    if (!id || id >= g.n_st || !g.st[id].n)
        return "[no stack]";
    uint64_t a = g.st[id].f[0] - (g.st[id].leaf_pc ? 0 : 1);
    if (symtab_resolve(g.sym, a, f, 16) < 1)
        return "[unknown]";
    return f[0].function;
}

static int on_cpu(void *c, const Perfagent__CpuSamples *cs)
{
    (void)c;
    for (size_t i = 0; i < cs->n_stack_id; i++) {
        const char *fn = leaf_fn(cs->stack_id[i]);
        size_t k = 0;
        while (k < g.n_self && !(g.self[k].tid == cs->tid && strcmp(g.self[k].fn, fn) == 0))
            k++;
        if (k == g.n_self && g.n_self < 4096)
            g.self[g.n_self++] = (typeof(g.self[0])){cs->tid, fn, 0};
        if (k < g.n_self)
            g.self[k].n++;
    }
    return cpu_model_add_record(g.cpu, cs);
}

static int on_thread(void *c, const Perfagent__ThreadInfo *t)
{
    (void)c;
    if (g.n_nm < 4096 && t->name[0]) {
        g.nm[g.n_nm].tid = t->tid;
        snprintf(g.nm[g.n_nm++].name, 32, "%s", t->name);
    }
    return 0;
}

static int on_stats(void *c, const Perfagent__AgentStats *s)
{
    (void)c;
    g.last = *s;
    g.has_stats = 1;
    return 0;
}

static int on_goodbye(void *c, const Perfagent__Goodbye *gb)
{
    (void)c, (void)gb;
    g.goodbye = 1;
    return 0;
}

/* "root;...;leaf", inline frames expanded. */
static int render(void *c, uint32_t id, char **out)
{
    size_t cap = 256, len = 0;
    char *s = malloc(cap);
    (void)c;
    if (!s)
        return -ENOMEM;
    s[0] = 0;
    if (!id || id >= g.n_st || !g.st[id].n) {
        *out = strcpy(s, "[no stack]");
        return 0;
    }
    for (int i = (int)g.st[id].n - 1; i >= 0; i--) {
        sym_frame_t f[16];
        uint64_t a = g.st[id].f[i] - ((i == 0 && g.st[id].leaf_pc) ? 0 : 1);
        int n = symtab_resolve(g.sym, a, f, 16);
        for (int k = n - 1; k >= 0; k--) {
            size_t fl = strlen(f[k].function);
            if (len + fl + 2 > cap) {
                cap = (len + fl + 2) * 2;
                s = realloc(s, cap);
            }
            if (len)
                s[len++] = ';';
            memcpy(s + len, f[k].function, fl + 1);
            len += fl;
        }
    }
    *out = s;
    return 0;
}

static int on_frame(void *c, const uint8_t *f, size_t len, uint64_t off, uint64_t body)
{
    (void)c, (void)off;
    return decode_frame(g.dec, f, len, body);
}

int main(int argc, char **argv)
{
    decode_sink_t sink = {.hello = on_hello, .modules = on_modules, .stack = on_stack,
                          .cpu = on_cpu, .thread = on_thread, .stats = on_stats,
                          .goodbye = on_goodbye};
    static uint8_t buf[1 << 16];
    FILE *in;
    size_t n;
    int rc = 0;
    if (argc < 2 || !(in = fopen(argv[1], "rb"))) {
        fprintf(stderr, "usage: cpu_dump FILE.pfr [FOLDED_OUT]\n");
        return 2;
    }
    g.sym = symtab_new(NULL);
    g.cpu = cpu_model_new();
    g.dec = decode_new(NULL, &sink);
    stream_t *st = stream_new(on_frame, NULL, 0);
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        rc = stream_feed(st, buf, n);
    if (rc == 0)
        rc = stream_end(st);
    fclose(in);
    if (g.has_stats)
        printf("stats samples=%" PRIu64 " lost=%" PRIu64 " truncated=%" PRIu64 " no_regs=%" PRIu64
               " stack_table=%" PRIu64 " throttled=%" PRIu64 "\n",
               g.last.cpu_samples, g.last.cpu_lost, g.last.cpu_truncated, g.last.cpu_no_regs,
               g.last.cpu_stack_table, g.last.cpu_throttled);
    const cpu_thread_stat_t *t;
    size_t nt = cpu_model_threads(g.cpu, &t);
    for (size_t i = 0; i < nt; i++) {
        const char *name = "-";
        for (size_t k = 0; k < g.n_nm; k++)
            if (g.nm[k].tid == t[i].tid)
                name = g.nm[k].name;
        printf("thread tid=%u name=%s samples=%" PRIu64 " cpu_ns=%" PRIu64 " delivered_pct=%.1f\n",
               t[i].tid, name, t[i].samples, t[i].cpu_ns, 100.0 * cpu_thread_delivered(&t[i]));
    }
    for (size_t k = 0; k < g.n_self; k++)
        printf("self tid=%u fn=%s samples=%" PRIu64 "\n", g.self[k].tid, g.self[k].fn, g.self[k].n);
    uint64_t trunc = 0;
    for (size_t id = 1; id < g.n_st; id++)
        if (g.st[id].truncated && g.st[id].leaf_pc && cpu_model_stack_samples(g.cpu, (uint32_t)id)) {
            char *txt = NULL;
            trunc += cpu_model_stack_samples(g.cpu, (uint32_t)id);
            if (render(NULL, (uint32_t)id, &txt) == 0)
                printf("truncated samples=%" PRIu64 " stack=%s\n",
                       cpu_model_stack_samples(g.cpu, (uint32_t)id), txt);
            free(txt);
        }
    uint64_t not_pc = 0;
    for (size_t id = 1; id < g.n_st; id++)
        if (g.st[id].n && !g.st[id].leaf_pc)
            not_pc += cpu_model_stack_samples(g.cpu, (uint32_t)id);
    printf("leaf_not_pc samples=%" PRIu64 "\n", not_pc);
    printf("total samples=%" PRIu64 " stacks_truncated=%" PRIu64 " goodbye=%d decode=%s\n",
           cpu_model_samples(g.cpu), trunc, g.goodbye,
           rc == 0 ? "ok" : decode_error(g.dec) ? decode_error(g.dec) : "stream error");
    if (argc > 2) {
        FILE *f = fopen(argv[2], "w");
        if (!f || cpu_model_write_folded(g.cpu, f, render, NULL) < 0)
            rc = -EIO;
        if (f)
            fclose(f);
    }
    return rc == 0 ? 0 : 1;
}
