#!/usr/bin/env python3
"""pfstream -- a hand-made perfagent stream (proto/perfagent.proto) for tests.

Plays a fake agent without the agent: hand-encodes the few protobuf fields
it needs (no protobuf module here), then sends the stream to a collector
and/or saves it as a .pfr file.

The good stream is one process (--pid) that allocates 3 blocks of 100 bytes
at stack 1 (frames 0x401234, 0x401100, 0x400f00, leaf first, in no declared
module) and frees one, so its leaks are exactly 200 bytes in 2 objects, one
stack (tests/e2e/collector_basic.sh checks all of this):

    frame 1  Batch{seq 0: Hello, StackDef 1, HeapEvents[ALLOC x3, FREE x1]}
    frame 2  Batch{seq 1: Goodbye{exit_code 0}}

Modes (--mode): good; garbage (magic, then a frame that is not protobuf);
oversized (magic, then a 9 MiB frame length); open (frame 1 only, then keep
the connection open until killed).  --expect-close: after sending, wait up to
5 s for the collector to close the connection and print "closed" or "open".
"""
import argparse
import os
import socket
import sys
import time

MAGIC = b"PFAGENT1"
ALLOC, FREE = 1, 2
SYNC = 8                         # tag = kind + SYNC: addr and ticks absolute
PROTOCOL = 2


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(field, n):          # wire type 0
    return varint(field << 3 | 0) + varint(n)


def f_bytes(field, data):        # wire type 2 (bytes, string, sub-message)
    if isinstance(data, str):
        data = data.encode()
    return varint(field << 3 | 2) + varint(len(data)) + data


def frame(batch):
    return varint(len(batch)) + batch


def batch(seq, records):
    # Batch.seq = 1, Batch.records = 2; Record is a oneof, field = body kind.
    return f_varint(1, seq) + b"".join(f_bytes(2, r) for r in records)


def hello(pid, ppid, exe, argv):
    body = (f_varint(1, PROTOCOL) + f_bytes(2, "0.1.0") + f_varint(3, pid) + f_varint(4, ppid) +
            f_bytes(5, exe) + b"".join(f_bytes(6, a) for a in argv) +
            f_varint(7, 1700000000 * 10**9) + f_varint(8, 5 * 10**9) + f_varint(9, 0) +
            f_bytes(10, f_varint(1, 1) + f_varint(2, 64) + f_bytes(3, "fp")) +
            f_bytes(12, "testhost"))
    return f_bytes(1, body)                                 # Record.hello = 1


def stackdef(sid, frames):
    packed = b"".join(varint(a) for a in frames)
    return f_bytes(3, f_varint(1, sid) + f_bytes(2, packed))  # Record.stack = 3


def zigzag(d):
    d &= (1 << 64) - 1
    return ((d << 1) ^ (-(d >> 63))) & ((1 << 64) - 1)


def heap(tid, rows):
    """rows: (kind, addr, ...fields..., ticks[, weight]) with absolute values.
    The first row is a sync row, the others are deltas from the row before
    (HeapEvents in proto/perfagent.proto)."""
    raw, prev = b"", None
    for row in rows:
        kind, addr = row[0], row[1]
        ti = 2 if kind == FREE else 4         # index of ticks in the row
        vals = list(row)
        if prev is None:
            vals[0] = kind | SYNC
        else:
            vals[1] = zigzag(addr - prev[0])
            vals[ti] = zigzag(row[ti] - prev[1])
        prev = (addr, row[ti])
        raw += b"".join(varint(v) for v in vals)
    return f_bytes(4, f_varint(1, tid) + f_bytes(2, raw) + f_varint(3, len(rows)))


def goodbye(code):
    return f_bytes(11, f_varint(1, code) + f_varint(2, 1700000001 * 10**9))


def good_stream(pid, exe, argv):
    t = 5 * 10**9
    rows = [(ALLOC, 0x10000, 100, 1, t + 1), (ALLOC, 0x10100, 100, 1, t + 2),
            (ALLOC, 0x10200, 100, 1, t + 3), (FREE, 0x10100, t + 4)]
    first = frame(batch(0, [hello(pid, 1, exe, argv),
                            stackdef(1, [0x401234, 0x401100, 0x400f00]),
                            heap(pid, rows)]))
    last = frame(batch(1, [goodbye(0)]))
    return MAGIC + first, last


def connect(spec):
    if spec.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(spec[5:])
    elif spec.startswith("tcp:"):
        host, port = spec[4:].rsplit(":", 1)
        s = socket.create_connection((host or "127.0.0.1", int(port)))
    else:
        sys.exit("pfstream: bad address " + spec)
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connect", help="unix:PATH or tcp:HOST:PORT ('env': $PERFAGENT_COLLECTOR)")
    ap.add_argument("--out", help="also write the stream to this .pfr file")
    ap.add_argument("--mode", default="good", choices=["good", "garbage", "oversized", "open"])
    ap.add_argument("--pid", type=int, default=os.getpid())
    ap.add_argument("--exe", default="/usr/bin/fake-agent")
    ap.add_argument("--arg", action="append", default=None, help="argv entry (repeatable)")
    ap.add_argument("--hold", type=float, default=0.0, help="seconds between the two frames")
    ap.add_argument("--chunk", type=int, default=0, help="send in chunks of this many bytes")
    ap.add_argument("--expect-close", action="store_true")
    ap.add_argument("--ready", help="touch this file once the first frame is sent")
    ap.add_argument("--exit", type=int, default=0, help="exit status")
    a = ap.parse_args()
    argv = a.arg if a.arg is not None else [a.exe]

    head, tail = good_stream(a.pid, a.exe, argv)
    if a.mode == "garbage":
        head, tail = MAGIC + varint(10) + b"\xff" * 10, b""
    elif a.mode == "oversized":
        head, tail = MAGIC + varint(9 << 20) + b"\x08\x00", b""
    elif a.mode == "open":
        tail = b""
    if a.out:
        with open(a.out, "wb") as f:
            f.write(head + tail)
    if not a.connect:
        return a.exit
    spec = os.environ["PERFAGENT_COLLECTOR"] if a.connect == "env" else a.connect
    s = connect(spec)

    def send(data):
        step = a.chunk or len(data) or 1
        for i in range(0, len(data), step):
            s.sendall(data[i:i + step])
            if a.chunk:
                time.sleep(0.001)

    try:
        send(head)
    except (BrokenPipeError, ConnectionResetError):
        if a.expect_close:     # closed before we were done: that counts
            print("closed")
            return a.exit
        raise
    if a.ready:
        open(a.ready, "w").close()
    if a.mode == "open":
        while True:
            time.sleep(60)
    time.sleep(a.hold)
    try:
        send(tail)
    except (BrokenPipeError, ConnectionResetError):
        pass
    if a.expect_close:
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
            print("closed")
        except socket.timeout:
            print("open")
        except ConnectionResetError:
            print("closed")
    s.close()
    return a.exit


if __name__ == "__main__":
    sys.exit(main())
