/*
 * cpu_model — what one process's CPU samples add up to: samples per stack
 * (for cpu.folded) and per thread (samples, CPU time, delivered rate, for
 * summary.txt).  Fed from the decoder's cpu callback (CpuSamples in
 * proto/perfagent.proto); it only counts, so it trusts what the decoder
 * checked and knows nothing of symbols: the folded writer asks a callback
 * for each stack's text.  Not thread-safe.
 */
#ifndef PA_CPU_MODEL_H
#define PA_CPU_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "perfagent.pb-c.h"

typedef struct cpu_model cpu_model_t;

typedef struct cpu_thread_stat {
    uint32_t tid;
    uint64_t samples;   /* samples of this thread */
    uint64_t period_ns; /* CPU time one sample stands for (the latest seen) */
    uint64_t cpu_ns;    /* the agent's latest reading of its CPU time, 0 = unknown */
    uint64_t first_ns, last_ns; /* CLOCK_MONOTONIC of its first and last sample */
} cpu_thread_stat_t;

/* Samples of one thread at one stack. */
typedef struct cpu_pair {
    uint32_t tid, stack_id;
    uint64_t count;
} cpu_pair_t;

cpu_model_t *cpu_model_new(void);
void cpu_model_free(cpu_model_t *m); /* accepts NULL */

/* n samples of thread tid, one per stack id (0 = no stack), each standing
 * for period_ns; time_ns (may be NULL) are their times.  0 or -ENOMEM. */
int cpu_model_add(cpu_model_t *m, uint32_t tid, const uint32_t *stack_ids,
                  const uint64_t *time_ns, size_t n, uint64_t period_ns);
/* The thread's CPU time as the agent read it (latest wins; 0 is ignored). */
int cpu_model_thread_cpu(cpu_model_t *m, uint32_t tid, uint64_t cpu_ns);
/* Both of the above for one decoded record. */
int cpu_model_add_record(cpu_model_t *m, const Perfagent__CpuSamples *cs);

uint64_t cpu_model_samples(const cpu_model_t *m);                 /* all threads */
uint64_t cpu_model_stack_samples(const cpu_model_t *m, uint32_t stack_id);
/* Threads sorted by tid; valid until the next add. */
size_t cpu_model_threads(const cpu_model_t *m, const cpu_thread_stat_t **out);
/* Delivered fraction of the requested rate: samples x period / CPU time;
 * 0 when the CPU time is unknown. */
double cpu_thread_delivered(const cpu_thread_stat_t *t);

/* Renders stack_id as "root;...;leaf" into a malloc'd string (*out), or
 * returns a negative errno.  Id 0 is passed too (no stack). */
typedef int (*cpu_render_fn)(void *ctx, uint32_t stack_id, char **out);

/* Folded stacks ("a;b;c COUNT\n", flamegraph.pl's input): one line per
 * distinct text, in byte order, counts of stacks that render alike summed.
 * 0, a negative errno from render, -ENOMEM, or -EIO when out fails. */
int cpu_model_write_folded(const cpu_model_t *m, FILE *out, cpu_render_fn render, void *ctx);

/* The same lines in memory, for writers that draw or tabulate them too
 * (cpu.folded, cpu.svg and the top table of the reports come from one
 * list).  With per_thread, samples are counted per (thread, stack) and
 * render_thread names both (tid is 0 otherwise).  *out is malloc'd, its
 * texts too: cpu_folded_free().  0, a negative errno from render, or -ENOMEM. */
typedef struct cpu_folded_line {
    char *text;
    uint64_t count;
} cpu_folded_line_t;
typedef int (*cpu_render_thread_fn)(void *ctx, uint32_t tid, uint32_t stack_id, char **out);
int cpu_model_folded(const cpu_model_t *m, int per_thread, cpu_render_thread_fn render, void *ctx,
                     cpu_folded_line_t **out, size_t *n);
void cpu_folded_free(cpu_folded_line_t *v, size_t n);

/* Every (thread, stack) with samples, in the order first seen; the array
 * belongs to the model.  Returns how many. */
size_t cpu_model_pairs(const cpu_model_t *m, const cpu_pair_t **out);

#endif
