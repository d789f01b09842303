/*
 * encode.c — Batch building and framing for the sender (see encode.h).
 */
#include "encode.h"
#include "internal.h"

#include <string.h>

#define SCRATCH_BYTES (16u << 20) /* rows copies (<= 6 MiB + a chunk) + messages */
#define MAX_RECORDS 65536

int pa_enc_init(pa_enc_t *e)
{
    memset(e, 0, sizeof(*e));
    e->cap_rec = MAX_RECORDS;
    e->recs = pa_mmap_private(sizeof(*e->recs) * MAX_RECORDS);
    e->cap = SCRATCH_BYTES;
    e->scratch = pa_mmap_private(e->cap);
    e->out_cap = PA_MAX_FRAME + 16;
    e->out = pa_mmap_private(e->out_cap);
    if (!e->recs || !e->scratch || !e->out)
        return -1;
    pa_enc_reset(e);
    return 0;
}

void pa_enc_reset(pa_enc_t *e)
{
    perfagent__batch__init(&e->batch);
    e->nrec = 0;
    e->used = 0;
    e->payload = 0;
}

int pa_enc_fits(const pa_enc_t *e, size_t bytes)
{
    return e->nrec + 1 < e->cap_rec && e->payload + bytes <= PA_BATCH_SOFT &&
           e->used + bytes + 4096 <= e->cap;
}

void *pa_enc_alloc_raw(pa_enc_t *e, size_t size)
{
    void *p;
    size = (size + 15) & ~(size_t)15;
    if (e->used + size > e->cap)
        return NULL;
    p = e->scratch + e->used;
    e->used += size;
    e->payload += size;
    return p;
}

void *pa_enc_alloc(pa_enc_t *e, size_t size)
{
    void *p = pa_enc_alloc_raw(e, size);
    if (p)
        memset(p, 0, size);
    return p;
}

char *pa_enc_strdup(pa_enc_t *e, const char *s)
{
    size_t n = pa_strlen(s) + 1;
    char *d = pa_enc_alloc(e, n);
    if (d)
        memcpy(d, s, n);
    return d;
}

Perfagent__Record *pa_enc_record(pa_enc_t *e, int body_case)
{
    Perfagent__Record *r;
    if (e->nrec + 1 >= e->cap_rec)
        return NULL;
    r = pa_enc_alloc(e, sizeof(*r));
    if (!r)
        return NULL;
    perfagent__record__init(r);
    r->body_case = (Perfagent__Record__BodyCase)body_case;
    e->recs[e->nrec++] = r;
    return r;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

size_t pa_enc_frame(pa_enc_t *e)
{
    size_t len, hdr;
    if (!e->nrec)
        return 0;
    e->batch.seq = e->seq++;
    e->batch.n_records = e->nrec;
    e->batch.records = e->recs;
    len = perfagent__batch__get_packed_size(&e->batch);
    if (len > PA_MAX_FRAME) {
        /* Can't happen with the soft limits above; refuse rather than emit
         * a frame every reader must reject. */
        pa_enc_reset(e);
        return 0;
    }
    hdr = put_varint(e->out, len);
    perfagent__batch__pack(&e->batch, e->out + hdr);
    pa_enc_reset(e);
    return hdr + len;
}
