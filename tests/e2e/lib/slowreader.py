#!/usr/bin/env python3
"""slowreader.py -- a throttled stand-in for the collector (tests only).

Listens on a unix socket and reads every connection at most RATE bytes per
second in all, saving each connection's bytes to OUTDIR/conn.N.pfr for
`perfagent report`.  A slow output is what makes the agent's drain rounds
long (each round then holds millions of rows), the case the collector must
still put back in time order.

    slowreader.py SOCKET OUTDIR RATE [--ready FILE] [--max-secs S]

--ready FILE is created once the socket listens.  SIGTERM or SIGINT stops
accepting; connections still open are read to their end (still throttled)
before the process exits 0.  --max-secs (default 120) bounds everything.
"""
import os
import signal
import socket
import sys
import threading
import time

CHUNK = 16384


class Throttle:
    """One budget shared by all connections: RATE bytes/s since start."""

    def __init__(self, rate):
        self.rate = rate
        self.t0 = time.monotonic()
        self.n = 0
        self.lock = threading.Lock()

    def take(self, n):
        with self.lock:
            self.n += n
            ahead = self.n / self.rate - (time.monotonic() - self.t0)
        if ahead > 0:
            time.sleep(ahead)


def serve(conn, path, throttle, deadline):
    with conn, open(path, "wb") as f:
        conn.settimeout(1.0)
        while time.monotonic() < deadline:
            try:
                b = conn.recv(CHUNK)
            except socket.timeout:
                continue
            if not b:
                break
            f.write(b)
            throttle.take(len(b))


def main():
    args = sys.argv[1:]
    ready, max_secs = None, 120.0
    if "--ready" in args:
        i = args.index("--ready")
        ready = args[i + 1]
        del args[i:i + 2]
    if "--max-secs" in args:
        i = args.index("--max-secs")
        max_secs = float(args[i + 1])
        del args[i:i + 2]
    if len(args) != 3:
        sys.exit(__doc__)
    path, outdir, rate = args[0], args[1], float(args[2])
    deadline = time.monotonic() + max_secs
    os.makedirs(outdir, exist_ok=True)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(16)
    srv.settimeout(0.2)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    if ready:
        open(ready, "w").close()
    throttle = Throttle(rate)
    threads = []
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        out = os.path.join(outdir, "conn.%d.pfr" % len(threads))
        t = threading.Thread(target=serve, args=(conn, out, throttle, deadline))
        t.start()
        threads.append(t)
    srv.close()
    os.unlink(path)
    for t in threads:
        t.join()
    print("slowreader: %d connections, %d bytes" % (len(threads), throttle.n))


if __name__ == "__main__":
    main()
