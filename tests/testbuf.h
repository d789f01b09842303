/*
 * testbuf.h — a growable byte buffer, a protobuf varint writer, a Batch
 * packer and a heap-row encoder, for the tests and the fuzz target that
 * build perfagent streams by hand.
 */
#ifndef PA_TESTBUF_H
#define PA_TESTBUF_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/wire.h"
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

/* Batch.round_start_ticks of the batches with round_end (0: not sent, as
 * from an agent before the field). */
static uint64_t tb_round_start_ticks __attribute__((unused));

/* Append one packed Batch of the given records (no length prefix) to `out`. */
static inline void pack_batch(buf_t *out, uint64_t seq, int round_end, Perfagent__Record **recs,
                              size_t n)
{
    Perfagent__Batch batch = PERFAGENT__BATCH__INIT;
    batch.seq = seq;
    batch.round_end = round_end;
    batch.round_start_ticks = round_end ? tb_round_start_ticks : 0;
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

/* Rows, as the protocol spells them (proto/wire.h): a tag (kind, | SYNC for
 * a sync row), then varints; in a delta row addr and ticks are zigzag'ed
 * differences from the thread's previous row. */
#define SYNC PA_WIRE_ROW_SYNC

static inline uint64_t zz(uint64_t d)
{
    return (d << 1) ^ (0 - (d >> 63));
}

static inline void put_row(buf_t *r, uint64_t tag, uint64_t addr, uint64_t size, uint32_t stack,
                           uint64_t ticks, uint64_t weight)
{
    uint64_t kind = tag & ~(uint64_t)SYNC;
    put_varint(r, tag);
    put_varint(r, addr);
    if (kind != PA_WIRE_ROW_FREE) {
        put_varint(r, size);
        put_varint(r, stack);
    }
    put_varint(r, ticks);
    if (kind == PA_WIRE_ROW_SAMPLE)
        put_varint(r, weight);
}

/* One thread's rows the way the agent writes them: a sync row first and then
 * every `every` rows, deltas in between. */
typedef struct renc {
    uint64_t addr, ticks;
    unsigned left, every;
} renc_t;

static inline void enc_row(buf_t *r, renc_t *e, unsigned kind, uint64_t addr, uint64_t size,
                           uint32_t stack, uint64_t ticks, uint64_t weight)
{
    if (!e->left)
        put_row(r, kind | SYNC, addr, size, stack, ticks, weight);
    else
        put_row(r, kind, zz(addr - e->addr), size, stack, zz(ticks - e->ticks), weight);
    e->left = e->left ? e->left - 1 : e->every - 1;
    e->addr = addr;
    e->ticks = ticks;
}

#endif
