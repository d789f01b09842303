/*
 * wire.h — the constants of the perfagent stream that are not in
 * perfagent.proto: the magic, the protocol version, the heap-row tags and
 * their field counts, and the limits both sides agree on.  The one copy:
 * included by the agent (agent/internal.h, encode.h), the collector's
 * decoder (collector/decode.h) and the tests that write streams by hand
 * (tests/testbuf.h), so a change here changes all three together and the
 * round-trip test (tests/unit/test_agent_roundtrip.c) sees it.
 *
 * Only constants and one pure table lookup: no types of either side, no
 * includes beyond <stdint.h>.  Names are PA_WIRE_*.
 */
#ifndef PA_WIRE_H
#define PA_WIRE_H

#include <stdint.h>

/* A stream starts with these 8 bytes (no NUL), then varint-length frames,
 * each one serialized perfagent.Batch. */
#define PA_WIRE_MAGIC "PFAGENT1"
#define PA_WIRE_MAGIC_LEN 8
/* A connection that resumes a stream (the traced program closed or took
 * the agent's socket, issue 16) starts with this preamble instead: the 8
 * magic bytes, the stream's pid (u32 little endian), 4 zero bytes, its
 * Hello's start_time_unix_ns (u64 LE); then the stream's next frame, with
 * Batch.seq going on.  agent/transport.c writes it, collector/stream.c
 * reads it. */
#define PA_WIRE_RESUME_MAGIC "PFRESUM1"
#define PA_WIRE_RESUME_LEN 24
/* Hello.protocol_version.  2: heap rows are delta-encoded (sync rows). */
#define PA_WIRE_PROTOCOL_VERSION 2
/* The largest frame body either side writes or accepts. */
#define PA_WIRE_MAX_FRAME (8u << 20)
/* Frames per StackDef: PERFAGENT_MAX_FRAMES may not exceed it, the decoder
 * refuses longer stacks. */
#define PA_WIRE_MAX_FRAMES 256

/* ---- heap rows (HeapEvents.rows) ----------------------------------------
 * A row is a tag varint, then varints whose number depends on the tag only:
 *   ALLOC   addr size stack_id ticks
 *   FREE    addr ticks
 *   SAMPLE  addr size stack_id ticks weight
 * The tag is the kind, | PA_WIRE_ROW_SYNC when addr and ticks are absolute;
 * without it they are zigzag'ed differences from the thread's previous row. */
enum {
    PA_WIRE_ROW_ALLOC = 1,
    PA_WIRE_ROW_FREE = 2,
    PA_WIRE_ROW_SAMPLE = 3,
    PA_WIRE_ROW_SYNC = 0x08,
};
/* Tags are below this (a table indexed by tag has this many entries). */
#define PA_WIRE_ROW_TAGS 16
/* A sync row at least every this many rows of a thread: a reader that joins
 * mid-ring (a new stream after a reconnect) skips at most this many. */
#define PA_WIRE_SYNC_ROWS 1024
/* The longest row: a tag byte and at most five 10-byte varints (SAMPLE). */
#define PA_WIRE_ROW_MAX 64

/* ---- typed events from host threads ---------------------------------------
 * Records a host thread makes itself (a libpq query, a socket event) go
 * through the thread's event ring (agent/ring.h, pa_tring_t) as the packed
 * message of one Record field, the ring record's kind being the field's
 * number; the sender passes them on as Batch.records unchanged.  Only these
 * fields may come that way (the sender drops any other kind). */
#define PA_WIRE_EVENT_QUERY 7  /* Record.query: QueryEvent */
#define PA_WIRE_EVENT_SOCKET 8 /* Record.socket: SocketEvent */
/* The largest event payload a thread may reserve (a query's text is cut to
 * 4 KiB before packing). */
#define PA_WIRE_EVENT_MAX 8192

/* Varints after the tag, indexed by tag (0: not a tag).  A table, not a
 * switch: the agent's sender walks every row of a backlog it must cut. */
#define PA_WIRE_ROW_VARINTS_INIT                                                   \
    {                                                                              \
        [PA_WIRE_ROW_ALLOC] = 4, [PA_WIRE_ROW_FREE] = 2, [PA_WIRE_ROW_SAMPLE] = 5,  \
        [PA_WIRE_ROW_ALLOC | PA_WIRE_ROW_SYNC] = 4,                                \
        [PA_WIRE_ROW_FREE | PA_WIRE_ROW_SYNC] = 2,                                 \
        [PA_WIRE_ROW_SAMPLE | PA_WIRE_ROW_SYNC] = 5,                               \
    }

static inline unsigned pa_wire_row_varints(uint64_t tag)
{
    static const uint8_t n[PA_WIRE_ROW_TAGS] = PA_WIRE_ROW_VARINTS_INIT;
    return tag < PA_WIRE_ROW_TAGS ? n[tag] : 0;
}

#endif
