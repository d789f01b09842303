/*
 * encode.h — builds Batch messages (proto/perfagent.proto) out of memory the
 * agent owns and frames them into the output buffer.  protobuf-c's pack
 * functions do not allocate, so nothing here touches the host heap.  Only
 * the sender thread uses it.
 */
#ifndef PA_ENCODE_H
#define PA_ENCODE_H

#include "perfagent.pb-c.h"
#include <stddef.h>
#include <stdint.h>

#define PA_MAGIC "PFAGENT1"
#define PA_MAX_FRAME (8u << 20)     /* the protocol's cap */
#define PA_BATCH_SOFT (6u << 20)    /* flush a batch past this many bytes */
/* Most heap bytes in one HeapEvents.  A backlog no larger than this is sent
 * whole; a larger one (rings over 4 MiB) is cut at a row boundary, which
 * takes a walk over the rows (it cost 6% of a mallocbench run at 1 MiB). */
#define PA_ROWS_CHUNK (4u << 20)

typedef struct pa_enc {
    Perfagent__Batch batch;
    Perfagent__Record **recs;
    unsigned nrec, cap_rec;
    uint8_t *scratch;               /* bump memory for this batch's messages */
    size_t used, cap;
    size_t payload;                 /* rough size of what was added */
    uint64_t seq;
    uint8_t *out;                   /* framed output: varint + batch */
    size_t out_cap;
} pa_enc_t;

int pa_enc_init(pa_enc_t *e);
void pa_enc_reset(pa_enc_t *e);
/* Room for `bytes` more payload and one more record? */
int pa_enc_fits(const pa_enc_t *e, size_t bytes);
void *pa_enc_alloc(pa_enc_t *e, size_t size);   /* zeroed, NULL when out */
void *pa_enc_alloc_raw(pa_enc_t *e, size_t size); /* not zeroed: to be overwritten */
char *pa_enc_strdup(pa_enc_t *e, const char *s);
Perfagent__Record *pa_enc_record(pa_enc_t *e, int body_case);
/* Packs the batch as one frame into e->out; returns the frame length (0 if
 * the batch is empty) and resets the batch. */
size_t pa_enc_frame(pa_enc_t *e);

#endif
