/*
 * stream — incremental framing of an agent stream (proto/perfagent.proto):
 * the 8-byte magic "PFAGENT1", then frames of varint length N
 * (1 <= N <= max_frame) + N bytes.  Accepts input in chunks of any size and
 * hands each complete frame to a callback; a frame that arrives whole inside
 * one chunk is passed without copying.
 *
 * It only checks the framing; the frame bytes are decode.c's business.
 * Not thread-safe.
 */
#ifndef PA_STREAM_H
#define PA_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "../proto/wire.h"

#define STREAM_MAGIC PA_WIRE_MAGIC
#define STREAM_MAGIC_LEN PA_WIRE_MAGIC_LEN
#define STREAM_MAX_FRAME PA_WIRE_MAX_FRAME /* the protocol's cap */

/* Called once per complete frame.  `offset` is the stream offset of the
 * frame's length varint, `body_offset` that of its first body byte.  Return 0
 * to go on, or a negative errno to stop the stream (stream_feed returns it;
 * the callback keeps its own error message). */
typedef int (*stream_frame_fn)(void *ctx, const uint8_t *frame, size_t len, uint64_t offset,
                               uint64_t body_offset);

typedef struct stream stream_t;

/* max_frame 0 = STREAM_MAX_FRAME.  Returns NULL when out of memory. */
stream_t *stream_new(stream_frame_fn fn, void *ctx, size_t max_frame);
void stream_free(stream_t *st); /* accepts NULL */

/* Consume len bytes.  Returns 0, -EPROTO (bad magic, bad length varint),
 * -E2BIG (frame longer than max_frame), -ENOMEM, or what the callback
 * returned.  After a fault every later call returns the same code. */
int stream_feed(stream_t *st, const uint8_t *buf, size_t len);

/* End of input.  Returns 0 when the stream stopped on a frame boundary after
 * the magic, -EPROTO when it was cut (inside the magic or a frame), or the
 * earlier fault. */
int stream_end(stream_t *st);

/* The framing fault ("bad magic", ...), NULL when none or when the callback
 * stopped the stream. */
const char *stream_error(const stream_t *st);
uint64_t stream_fault_offset(const stream_t *st); /* valid when stream_error() */
uint64_t stream_offset(const stream_t *st);       /* bytes consumed so far */
uint64_t stream_frames(const stream_t *st);       /* complete frames handed on */
/* Past the magic, between two frames: where a resumed connection may go on. */
int stream_at_boundary(const stream_t *st);

/* RESUME.  An agent whose connection the traced program took (closed it, or
 * dup2'ed over it: issue 16) reconnects and goes on with the same stream:
 * the new connection starts with the preamble proto/wire.h describes
 * (PA_WIRE_RESUME_MAGIC).  Given the first len bytes of a connection: -1
 * when they are not a resume preamble, 0 when more bytes are needed to
 * tell, else PA_WIRE_RESUME_LEN with *pid and *start_unix_ns set. */
int stream_resume_header(const uint8_t *buf, size_t len, uint32_t *pid, uint64_t *start_unix_ns);

#endif
