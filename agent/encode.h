/*
 * encode.h — builds Batch messages (proto/perfagent.proto) out of memory the
 * agent owns, straight into the output buffer.  protobuf-c's pack functions
 * do not allocate, so nothing here touches the host heap.  Only the sender
 * thread uses it.
 *
 * The batch body is written as it grows: a record made with pa_enc_record()
 * is packed (as one `records` field) when the next one is started or the
 * frame is closed, so the caller fills it in between.  Heap rows are not
 * copied at all: pa_enc_heap writes their record header by hand and the
 * frame becomes an iovec list, output-buffer pieces between pieces of the
 * threads' rings, for one writev(2).  The rows stay in their ring until the
 * frame is written; the sender moves the ring tails after that (sender.c).
 * seq and round_end go at the end of the body (protobuf fields may come in
 * any order), and the length prefix in front of it.
 */
#ifndef PA_ENCODE_H
#define PA_ENCODE_H

#include "../proto/wire.h"
#include "perfagent.pb-c.h"
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define PA_MAX_FRAME PA_WIRE_MAX_FRAME
#define PA_BATCH_SOFT (6u << 20)    /* flush a batch past this many bytes */
/* Most heap bytes in one HeapEvents.  A backlog no larger than this is sent
 * whole; a larger one (rings over 4 MiB) is cut at a row boundary, which
 * takes a walk over the rows (it cost 6% of a mallocbench run at 1 MiB). */
#define PA_ROWS_CHUNK (4u << 20)

/* Room in front of the body for the frame's length varint, and for the
 * stream's magic in front of a stream's first frame (pa_enc_prepend). */
#define PA_ENC_HEAD 32
/* Heap records in one batch (each adds up to three iovecs). */
#define PA_ENC_MAX_HEAPS 4096

struct pa_thread;
typedef struct pa_enc_heap {
    struct pa_thread *thr;
    uint64_t from;                  /* ring position of the rows */
    uint32_t len;
} pa_enc_heap_t;

typedef struct pa_enc {
    int round_end;                  /* set the batch's round_end field */
    uint64_t round_start_ticks;     /* and with it this (0: not sent) */
    Perfagent__Record *pending;     /* made, not yet packed into the body */
    unsigned nrec, cap_rec;         /* records in this batch */
    uint8_t *scratch;               /* bump memory for this batch's messages */
    size_t used, cap;
    size_t payload;                 /* rough size of what was added */
    uint64_t seq;
    uint8_t *out;                   /* PA_ENC_HEAD bytes, then the body */
    size_t olen, out_cap;           /* bytes of the body in `out` */
    size_t seg;                     /* where the current `out` piece began */
    size_t ring_bytes;              /* bytes of the body in rings */
    pa_enc_heap_t *heaps;           /* this batch's heap records, in order */
    unsigned nheap;
    struct iovec *iov;              /* the frame, once closed */
    unsigned niov;
} pa_enc_t;

/* Maps the encoder's buffers: 0, or -ENOMEM with nothing left mapped. */
int pa_enc_init(pa_enc_t *e);
void pa_enc_reset(pa_enc_t *e);
/* Room for `bytes` more payload and one more record? */
int pa_enc_fits(const pa_enc_t *e, size_t bytes);
void *pa_enc_alloc(pa_enc_t *e, size_t size);   /* zeroed, NULL when out */
void *pa_enc_alloc_raw(pa_enc_t *e, size_t size); /* not zeroed: to be overwritten */
char *pa_enc_strdup(pa_enc_t *e, const char *s);
Perfagent__Record *pa_enc_record(pa_enc_t *e, int body_case);
/* A HeapEvents record for thr's rows at ring bytes [from, from+len) (the
 * ring may wrap); they must stay there until the frame is written.
 * -ENOSPC when the batch has no room (the caller checked pa_enc_fits, so
 * only a bug gets that). */
int pa_enc_heap(pa_enc_t *e, struct pa_thread *thr, uint64_t from, size_t len);
/* One Batch.records entry made of a record already packed elsewhere: the
 * Record field `field` (its oneof case) holding `payload`, a serialized
 * message of that field's type; copied.  -ENOSPC when the batch is full. */
int pa_enc_raw_record(pa_enc_t *e, uint32_t field, const uint8_t *payload, size_t len);
/* After pa_enc_frame: puts `len` bytes (at most 16) in front of the
 * frame, in its first iovec, and returns them added to the frame's length;
 * 0 when they do not fit (cannot happen: PA_ENC_HEAD). */
size_t pa_enc_prepend(pa_enc_t *e, const void *buf, size_t len, size_t frame_len);
/* Closes the batch as one frame: e->iov[0..e->niov); returns its length
 * (0 if the batch is empty).  Valid until pa_enc_reset. */
size_t pa_enc_frame(pa_enc_t *e);
/* Rows of the batch's heap records, each contiguous (a wrapped piece is
 * copied to scratch), for counting them when the frame is lost. */
typedef void pa_enc_rows_fn(void *ctx, const uint8_t *rows, size_t len);
void pa_enc_each_rows(pa_enc_t *e, pa_enc_rows_fn *fn, void *ctx);

#endif
