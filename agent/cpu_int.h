/*
 * cpu_int.h — what cpu.c (CPU sampling, the perf_event mechanism and the
 * unwinding of every sample) and cpu_timer.c (the timer_create fallback)
 * share.  Sender thread only, except where said.
 */
#ifndef PA_CPU_INT_H
#define PA_CPU_INT_H

#include "internal.h"

/* cpu.c: one sample of tid taken at time_ns (CLOCK_MONOTONIC), registers
 * ip/sp/bp and the copy of [sp, sp + len) in stack: walked, interned and
 * buffered for the next emit, counted `weight` times (a timer signal that
 * stands for missed ticks). */
PA_HIDDEN void pa_cpu_take(uint32_t tid, uint64_t time_ns, uint64_t ip, uint64_t sp, uint64_t bp,
                           const uint8_t *stack, uint64_t len, unsigned weight);
/* Most times one sample may be counted. */
#define PA_CPU_MAX_WEIGHT 1024
/* Room for one more sample (of any weight) in this round's buffer. */
PA_HIDDEN int pa_cpu_room(void);

/* Calls fn for every thread of the process but the sender (from
 * /proc/self/task; raw syscalls, no allocation).  -1 when the list could
 * not be read (in full). */
PA_HIDDEN int pa_cpu_each_task(void (*fn)(void *ctx, uint32_t tid), void *ctx);

/* cpu_timer.c.  start: host thread (pa_cpu_start); on failure `why` says
 * why in a few words.  The rest: sender, except after_fork_child. */
PA_HIDDEN int pa_cpu_timer_start(unsigned hz, unsigned stack_bytes, char *why, size_t why_len);
PA_HIDDEN int pa_cpu_timer_signal(void);
PA_HIDDEN int pa_cpu_timer_no_stack(void); /* process_vm_readv refused */
PA_HIDDEN void pa_cpu_timer_drain(void);
PA_HIDDEN void pa_cpu_timer_find(void); /* arm new threads only */
PA_HIDDEN int pa_cpu_timer_pending(void);
PA_HIDDEN void pa_cpu_timer_stats(uint64_t *lost, uint64_t *overruns, uint64_t *signals);
PA_HIDDEN void pa_cpu_timer_disable(void);
PA_HIDDEN void pa_cpu_timer_close(void);
PA_HIDDEN void pa_cpu_timer_after_fork_child(void);

#endif
