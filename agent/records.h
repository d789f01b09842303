/*
 * records.h — the sender's record builders (records.c).  Each adds one
 * record (or none, when the batch has no room even after a flush) to the
 * batch `e`; strings and lists are copied into the batch's scratch unless
 * said otherwise, so the record stays right until the frame is written.
 */
#ifndef PA_RECORDS_H
#define PA_RECORDS_H

#include "encode.h"
#include "internal.h"

/* Room in e for `bytes` more payload and a record: flushes the batch when
 * it is full.  0, or -1 when there is still none.  Defined by the sender
 * (sender.c), which owns the batch and the output. */
PA_HIDDEN int pa_sender_room(pa_enc_t *e, size_t bytes);

PA_HIDDEN void pa_rec_hello(pa_enc_t *e);
/* ModuleMaps of what changed since the last call (pa_modules_resend: all). */
PA_HIDDEN void pa_rec_modules(pa_enc_t *e);
/* StackDefs of the published stacks after *sent, in id order; *sent is the
 * highest id declared on this stream.  Frames are a view of the stack table
 * (never freed), not a copy. */
PA_HIDDEN void pa_rec_stacks(pa_enc_t *e, uint32_t *sent);
PA_HIDDEN void pa_rec_stacks_upto(pa_enc_t *e, uint32_t *sent, uint32_t need, uint64_t wait_ns);
/* thr's ThreadInfo when its name was not sent yet, or when it exited. */
PA_HIDDEN void pa_rec_thread(pa_enc_t *e, pa_thread_t *thr, int exited);
/* pa_cpu_emit_fn: ctx is the pa_enc_t.  A ThreadInfo first when name is
 * set, then one CpuSamples. */
PA_HIDDEN void pa_rec_cpu(void *ctx, uint32_t tid, const char *name, const uint32_t *sids,
                          const uint64_t *ns, unsigned n, uint64_t period_ns, uint64_t cpu_ns);
/* AgentStats with a ClockSync; returns the ClockSync's mono_ns (0 when
 * there was no room: the caller tries again next round). */
PA_HIDDEN uint64_t pa_rec_stats(pa_enc_t *e);
PA_HIDDEN void pa_rec_goodbye(pa_enc_t *e, int exit_code);
/* pa_tring_sink_fn for a thread's event ring (ctx: the pa_enc_t). */
PA_HIDDEN int pa_rec_event(void *ctx, uint32_t kind, const uint8_t *p, uint32_t len);
/* A SnapshotMarker; label must be a string constant (not copied). */
PA_HIDDEN void pa_rec_snapshot(pa_enc_t *e, uint64_t id, const char *label);

/* The Crash record of `in` (crash.c's pa_crash_info()). */
struct pa_crash_info;
PA_HIDDEN void pa_rec_crash(pa_enc_t *e, const struct pa_crash_info *in);
/* For a crashing sender (no batch to trust): one whole frame (length
 * varint + Batch of seq) into buf holding the crash's StackDef when its id
 * is above stacks_sent, the Crash and an AgentStats; no allocation.
 * Returns its length, 0 when cap is too small. */
PA_HIDDEN size_t pa_rec_crash_frame(uint8_t *buf, size_t cap, uint64_t seq, uint32_t stacks_sent,
                                    const struct pa_crash_info *in);

#endif
