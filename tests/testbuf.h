/*
 * testbuf.h — a growable byte buffer, a protobuf varint writer and a Batch
 * packer, for the tests and the fuzz target that build perfagent streams by
 * hand.
 */
#ifndef PA_TESTBUF_H
#define PA_TESTBUF_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "perfagent.pb-c.h"

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf_t;

static inline void put(buf_t *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            abort();
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static inline void put_varint(buf_t *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    put(b, tmp, n);
}

/* Append one packed Batch of the given records (no length prefix) to `out`. */
static inline void pack_batch(buf_t *out, uint64_t seq, int round_end, Perfagent__Record **recs,
                              size_t n)
{
    Perfagent__Batch batch = PERFAGENT__BATCH__INIT;
    batch.seq = seq;
    batch.round_end = round_end;
    batch.n_records = n;
    batch.records = recs;
    size_t len = perfagent__batch__get_packed_size(&batch);
    uint8_t *tmp = malloc(len ? len : 1);
    if (!tmp)
        abort();
    perfagent__batch__pack(&batch, tmp);
    put(out, tmp, len);
    free(tmp);
}

/* One length-delimited frame holding that Batch, as the agent writes it. */
static inline void put_batch_frame(buf_t *b, uint64_t seq, int round_end, Perfagent__Record **recs,
                                   size_t n)
{
    buf_t body = {0};
    pack_batch(&body, seq, round_end, recs, n);
    put_varint(b, body.n);
    put(b, body.p, body.n);
    free(body.p);
}

#endif
