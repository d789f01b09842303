/*
 * encode.c — Batch building and framing for the sender (see encode.h).
 */
#include "encode.h"
#include "internal.h"
#include "rows.h"

#include <errno.h>
#include <string.h>

#define SCRATCH_BYTES (16u << 20) /* messages, and rows only to count lost ones */
#define MAX_RECORDS 65536

int pa_enc_init(pa_enc_t *e)
{
    memset(e, 0, sizeof(*e));
    e->cap_rec = MAX_RECORDS;
    e->heaps = pa_mmap_private(sizeof(*e->heaps) * PA_ENC_MAX_HEAPS);
    e->iov = pa_mmap_private(sizeof(*e->iov) * (3 * PA_ENC_MAX_HEAPS + 2));
    e->cap = SCRATCH_BYTES;
    e->scratch = pa_mmap_private(e->cap);
    e->out_cap = PA_ENC_HEAD + PA_MAX_FRAME;
    e->out = pa_mmap_private(e->out_cap);
    if (!e->heaps || !e->iov || !e->scratch || !e->out) {
        /* Let go of what was mapped: recording is off for good (sender.c
         * no_sender), and the address space is the program's. */
        pa_munmap(e->heaps, sizeof(*e->heaps) * PA_ENC_MAX_HEAPS);
        pa_munmap(e->iov, sizeof(*e->iov) * (3 * PA_ENC_MAX_HEAPS + 2));
        pa_munmap(e->scratch, e->cap);
        pa_munmap(e->out, e->out_cap);
        memset(e, 0, sizeof(*e));
        return -ENOMEM;
    }
    pa_enc_reset(e);
    return 0;
}

void pa_enc_reset(pa_enc_t *e)
{
    e->round_end = 0;
    e->pending = NULL;
    e->nrec = 0;
    e->nheap = 0;
    e->niov = 0;
    e->used = 0;
    e->payload = 0;
    e->olen = 0;
    e->seg = 0;
    e->ring_bytes = 0;
}

int pa_enc_fits(const pa_enc_t *e, size_t bytes)
{
    return e->nrec + 1 < e->cap_rec && e->nheap < PA_ENC_MAX_HEAPS &&
           e->payload + bytes <= PA_BATCH_SOFT && e->used + bytes + 4096 <= e->cap;
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

/* Protobuf keys (field number << 3 | wire type) of the fields written by
 * hand; must match proto/perfagent.proto. */
#define KEY_BATCH_SEQ 0x08       /* Batch.seq = 1, varint */
#define KEY_BATCH_RECORDS 0x12   /* Batch.records = 2, length-delimited */
#define KEY_BATCH_ROUND_END 0x18 /* Batch.round_end = 3, varint */
#define KEY_BATCH_ROUND_START 0x20 /* Batch.round_start_ticks = 4, varint */
#define KEY_RECORD_HEAP 0x22     /* Record.heap = 4, length-delimited */
#define KEY_HEAP_TID 0x08        /* HeapEvents.tid = 1, varint */
#define KEY_HEAP_ROWS 0x12       /* HeapEvents.rows = 2, length-delimited */

/* Packs the pending record into the body as one Batch.records field.  A
 * record that would not fit the frame is dropped (cannot happen with the
 * soft limits: the frame is 8 MiB, batches are cut at 6). */
static void seal(pa_enc_t *e)
{
    Perfagent__Record *r = e->pending;
    size_t len, room = e->out_cap - PA_ENC_HEAD - e->olen - e->ring_bytes;
    uint8_t *p;
    if (!r)
        return;
    e->pending = NULL;
    len = perfagent__record__get_packed_size(r);
    if (1 + pa_varint_len(len) + len + 32 > room)
        return;
    p = e->out + PA_ENC_HEAD + e->olen;
    *p++ = KEY_BATCH_RECORDS;
    p = pa_put_varint(p, len);
    p += perfagent__record__pack(r, p);
    e->olen = (size_t)(p - (e->out + PA_ENC_HEAD));
}

Perfagent__Record *pa_enc_record(pa_enc_t *e, int body_case)
{
    Perfagent__Record *r;
    seal(e);
    if (e->nrec + 1 >= e->cap_rec)
        return NULL;
    r = pa_enc_alloc(e, sizeof(*r));
    if (!r)
        return NULL;
    perfagent__record__init(r);
    r->body_case = (Perfagent__Record__BodyCase)body_case;
    e->pending = r;
    e->nrec++;
    return r;
}

int pa_enc_raw_record(pa_enc_t *e, uint32_t field, const uint8_t *payload, size_t len)
{
    size_t inner = pa_varint_len((uint64_t)field << 3 | 2) + pa_varint_len(len) + len;
    uint8_t *p;
    seal(e);
    if (1 + pa_varint_len(inner) + inner + 32 > e->out_cap - PA_ENC_HEAD - e->olen - e->ring_bytes ||
        e->nrec + 1 >= e->cap_rec)
        return -ENOSPC;
    p = e->out + PA_ENC_HEAD + e->olen;
    *p++ = KEY_BATCH_RECORDS;
    p = pa_put_varint(p, inner);
    p = pa_put_varint(p, (uint64_t)field << 3 | 2);
    p = pa_put_varint(p, len);
    memcpy(p, payload, len);
    p += len;
    e->olen = (size_t)(p - (e->out + PA_ENC_HEAD));
    e->payload += len;
    e->nrec++;
    return 0;
}

static void add_iov(pa_enc_t *e, const void *base, size_t len)
{
    if (len) {
        e->iov[e->niov].iov_base = (void *)base;
        e->iov[e->niov].iov_len = len;
        e->niov++;
    }
}

int pa_enc_heap(pa_enc_t *e, pa_thread_t *thr, uint64_t from, size_t len)
{
    const pa_ring_t *r = &thr->ring;
    size_t he = 1 + pa_varint_len(thr->tid) + 1 + pa_varint_len(len) + len;
    size_t rec = 1 + pa_varint_len(he) + he;
    uint32_t mask = r->size - 1, off = (uint32_t)from & mask, first = r->size - off;
    uint8_t *body = e->out + PA_ENC_HEAD, *p;
    seal(e);
    if (1 + pa_varint_len(rec) + rec + 32 > e->out_cap - PA_ENC_HEAD - e->olen - e->ring_bytes ||
        e->nrec + 1 >= e->cap_rec || e->nheap >= PA_ENC_MAX_HEAPS)
        return -ENOSPC;
    p = body + e->olen;
    *p++ = KEY_BATCH_RECORDS;
    p = pa_put_varint(p, rec);
    *p++ = KEY_RECORD_HEAP;
    p = pa_put_varint(p, he);
    *p++ = KEY_HEAP_TID;
    p = pa_put_varint(p, thr->tid);
    *p++ = KEY_HEAP_ROWS;
    p = pa_put_varint(p, len);
    e->olen = (size_t)(p - body);
    /* The header ends the current output piece; the rows follow from the
     * ring, in two pieces when they wrap. */
    add_iov(e, body + e->seg, e->olen - e->seg);
    e->seg = e->olen;
    add_iov(e, r->buf + off, len <= first ? len : first);
    if (len > first)
        add_iov(e, r->buf, len - first);
    e->heaps[e->nheap].thr = thr;
    e->heaps[e->nheap].from = from;
    e->heaps[e->nheap].len = (uint32_t)len;
    e->nheap++;
    e->ring_bytes += len;
    e->payload += len;
    e->nrec++;
    return 0;
}

void pa_enc_each_rows(pa_enc_t *e, pa_enc_rows_fn *fn, void *ctx)
{
    for (unsigned i = 0; i < e->nheap; i++) {
        const pa_ring_t *r = &e->heaps[i].thr->ring;
        uint32_t len = e->heaps[i].len, off = (uint32_t)e->heaps[i].from & (r->size - 1);
        uint32_t first = r->size - off;
        uint8_t *tmp;
        if (len <= first) {
            fn(ctx, r->buf + off, len);
        } else if ((tmp = pa_enc_alloc_raw(e, len))) {
            memcpy(tmp, r->buf + off, first);
            memcpy(tmp + first, r->buf, len - first);
            fn(ctx, tmp, len);
        }
    }
}

size_t pa_enc_frame(pa_enc_t *e)
{
    uint8_t *body = e->out + PA_ENC_HEAD, *p;
    size_t hdr, total;
    uint8_t prefix[10];
    seal(e);
    if (!e->nrec)
        return 0;
    p = body + e->olen;
    *p++ = KEY_BATCH_SEQ;
    p = pa_put_varint(p, e->seq++);
    if (e->round_end) {
        *p++ = KEY_BATCH_ROUND_END;
        *p++ = 1;
        if (e->round_start_ticks) {
            *p++ = KEY_BATCH_ROUND_START;
            p = pa_put_varint(p, e->round_start_ticks);
        }
    }
    e->olen = (size_t)(p - body);
    add_iov(e, body + e->seg, e->olen - e->seg);
    e->seg = e->olen;
    total = e->olen + e->ring_bytes;
    if (total > PA_MAX_FRAME) /* cannot happen: see seal() */
        return 0;
    /* The length prefix goes in front of the first piece, which always
     * starts the body in `out` (a heap record's header comes first). */
    hdr = (size_t)(pa_put_varint(prefix, total) - prefix);
    memcpy(body - hdr, prefix, hdr);
    e->iov[0].iov_base = body - hdr;
    e->iov[0].iov_len += hdr;
    return hdr + total;
}

size_t pa_enc_prepend(pa_enc_t *e, const void *buf, size_t len, size_t frame_len)
{
    uint8_t *at;
    if (!e->niov || len > 16)
        return 0;
    at = (uint8_t *)e->iov[0].iov_base - len;
    if (at < e->out)
        return 0;
    memcpy(at, buf, len);
    e->iov[0].iov_base = at;
    e->iov[0].iov_len += len;
    return frame_len + len;
}
