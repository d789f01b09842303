/*
 * stream — the framing state machine (see stream.h).
 *
 * Owns the partial-frame buffer and the stream offset.  Never looks inside a
 * frame.  Faults are sticky: once the framing is broken nothing after it can
 * be trusted, so the stream refuses further input and remembers where it
 * broke.
 */
#include "stream.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A frame buffer this big is released after its frame, so a session that once
 * saw an 8 MiB frame does not keep 8 MiB for the rest of its life. */
#define STREAM_KEEP_BUF (1u << 20)
#define VARINT_MAX_BYTES 10

enum { ST_MAGIC, ST_LEN, ST_BODY, ST_FAULT };

struct stream {
    stream_frame_fn fn;
    void *ctx;
    size_t max_frame;
    int state;
    uint64_t off; /* stream bytes consumed */
    uint64_t frames;

    size_t magic_have;

    uint64_t len; /* the length varint being read, then the body length */
    unsigned len_bytes;
    uint64_t frame_off;

    uint8_t *buf; /* partial body */
    size_t cap, have;

    int rc;
    int has_err; /* 0 when the callback stopped us: it owns the message */
    uint64_t fault_off;
    char err[128];
};

stream_t *stream_new(stream_frame_fn fn, void *ctx, size_t max_frame)
{
    stream_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->fn = fn;
    st->ctx = ctx;
    st->max_frame = max_frame ? max_frame : STREAM_MAX_FRAME;
    st->state = ST_MAGIC;
    return st;
}

void stream_free(stream_t *st)
{
    if (!st)
        return;
    free(st->buf);
    free(st);
}

static int fault(stream_t *st, int rc, uint64_t at, const char *msg)
{
    st->state = ST_FAULT;
    st->rc = rc;
    st->fault_off = at;
    st->has_err = msg != NULL;
    if (msg)
        snprintf(st->err, sizeof(st->err), "%s", msg);
    return rc;
}

static int deliver(stream_t *st, const uint8_t *body)
{
    int rc = st->fn(st->ctx, body, (size_t)st->len, st->frame_off, st->frame_off + st->len_bytes);
    if (rc < 0)
        return fault(st, rc, st->frame_off, NULL);
    st->frames++;
    st->state = ST_LEN;
    st->len = 0;
    st->len_bytes = 0;
    st->have = 0;
    if (st->cap > STREAM_KEEP_BUF) {
        free(st->buf);
        st->buf = NULL;
        st->cap = 0;
    }
    return 0;
}

/* Read one byte of the length varint.  Rejects the frame as soon as the value
 * passes max_frame, so a hostile length never reaches an allocation. */
static int len_byte(stream_t *st, uint8_t b)
{
    if (st->len_bytes == 0)
        st->frame_off = st->off;
    unsigned shift = 7 * st->len_bytes;
    st->len_bytes++;
    st->off++;
    if (shift < 64)
        st->len |= (uint64_t)(b & 0x7f) << shift;
    if ((shift >= 64 && (b & 0x7f)) || st->len > st->max_frame) {
        char msg[96];
        snprintf(msg, sizeof(msg), "frame length exceeds the %zu byte cap", st->max_frame);
        return fault(st, -E2BIG, st->frame_off, msg);
    }
    if (b & 0x80) {
        if (st->len_bytes >= VARINT_MAX_BYTES)
            return fault(st, -EPROTO, st->frame_off, "frame length varint longer than 10 bytes");
        return 0;
    }
    if (st->len == 0)
        return fault(st, -EPROTO, st->frame_off, "empty frame (length 0)");
    st->state = ST_BODY;
    st->have = 0;
    return 0;
}

static int buffer_body(stream_t *st, const uint8_t *p, size_t n)
{
    size_t need = st->have + n; /* <= st->len <= max_frame */
    if (need > st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 4096;
        if (cap < need)
            cap = need;
        if (cap > st->len)
            cap = (size_t)st->len;
        uint8_t *nb = realloc(st->buf, cap);
        if (!nb)
            return fault(st, -ENOMEM, st->frame_off, "out of memory buffering a frame");
        st->buf = nb;
        st->cap = cap;
    }
    memcpy(st->buf + st->have, p, n);
    st->have += n;
    return 0;
}

int stream_feed(stream_t *st, const uint8_t *buf, size_t len)
{
    const uint8_t *p = buf, *end = buf + len;
    int rc;

    if (st->state == ST_FAULT)
        return st->rc;
    while (p < end) {
        switch (st->state) {
        case ST_MAGIC:
            if (*p != (uint8_t)STREAM_MAGIC[st->magic_have])
                return fault(st, -EPROTO, st->off, "bad magic (not a perfagent stream)");
            p++;
            st->off++;
            if (++st->magic_have == STREAM_MAGIC_LEN)
                st->state = ST_LEN;
            break;
        case ST_LEN:
            if ((rc = len_byte(st, *p++)) < 0)
                return rc;
            break;
        case ST_BODY: {
            size_t want = (size_t)st->len - st->have;
            size_t n = (size_t)(end - p) < want ? (size_t)(end - p) : want;
            if (st->have == 0 && n == want) {
                /* The whole body is in this chunk: no copy. */
                st->off += n;
                p += n;
                if ((rc = deliver(st, p - n)) < 0)
                    return rc;
                break;
            }
            if ((rc = buffer_body(st, p, n)) < 0)
                return rc;
            st->off += n;
            p += n;
            if (st->have == st->len && (rc = deliver(st, st->buf)) < 0)
                return rc;
            break;
        }
        default:
            return st->rc;
        }
    }
    return 0;
}

int stream_end(stream_t *st)
{
    char msg[128];

    switch (st->state) {
    case ST_FAULT:
        return st->rc;
    case ST_MAGIC:
        return fault(st, -EPROTO, st->off,
                     st->off ? "stream cut inside the magic" : "empty stream (no magic)");
    case ST_LEN:
        if (st->len_bytes == 0)
            return 0;
        return fault(st, -EPROTO, st->frame_off, "stream cut inside a frame length");
    default:
        snprintf(msg, sizeof(msg), "stream cut inside a frame (%zu of %" PRIu64 " bytes)", st->have,
                 st->len);
        return fault(st, -EPROTO, st->frame_off, msg);
    }
}

const char *stream_error(const stream_t *st)
{
    return st->state == ST_FAULT && st->has_err ? st->err : NULL;
}

uint64_t stream_fault_offset(const stream_t *st)
{
    return st->fault_off;
}

uint64_t stream_offset(const stream_t *st)
{
    return st->off;
}

uint64_t stream_frames(const stream_t *st)
{
    return st->frames;
}

int stream_at_boundary(const stream_t *st)
{
    return st->state == ST_LEN && st->len_bytes == 0;
}

int stream_resume_header(const uint8_t *buf, size_t len, uint32_t *pid, uint64_t *start_unix_ns)
{
    size_t n = len < PA_WIRE_RESUME_LEN ? len : PA_WIRE_RESUME_LEN;
    if (memcmp(buf, PA_WIRE_RESUME_MAGIC, n < 8 ? n : 8) != 0)
        return -1;
    if (len < PA_WIRE_RESUME_LEN)
        return 0;
    *pid = 0;
    *start_unix_ns = 0;
    for (int i = 3; i >= 0; i--)
        *pid = (*pid << 8) | buf[8 + i];
    for (int i = 7; i >= 0; i--)
        *start_unix_ns = (*start_unix_ns << 8) | buf[16 + i];
    return PA_WIRE_RESUME_LEN;
}
