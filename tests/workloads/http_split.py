#!/usr/bin/env python3
"""HTTP/1.1 over raw sockets with request heads in pieces (tests/e2e/net_split.sh).

  http_split.py server PORTFILE   serve two connections, then exit; prints
                                  what it received and sent, per endpoint
  http_split.py client PORT       make them; prints the same from its side
  http_split.py slowconnect       a connect that blocks about 1 s: prints
                                  "connect ok" and its milliseconds

The client writes every request in pieces: the request line, the headers,
the blank line and the body each in a send() of their own.  Connection A is
kept alive and sequential (GET /a?x=1, POST /post, GET /chunk, GET /missing:
one response read before the next request).  Connection B pipelines five
requests (GET /a, GET /missing, POST /post, GET /a, GET /a with
Connection: close), all written before any response is read.  The server
reads in 7-byte recv()s, so request lines and headers are cut anywhere and
the pipelined requests arrive several to a read; it answers a sequential
request at once and the pipelined ones (X-Pipe: 1) once it has all five,
each response in one send (chunked for /chunk).

Output, one line per endpoint sorted by method and path:
  METHOD PATH COUNT STATUS:N,... REQUEST_BYTES RESPONSE_BYTES KEEP_ALIVE PIPELINED
request and response bytes as they went over the wire (heads included);
KEEP_ALIVE: requests that were not their connection's first and were sent
after the previous response ended; PIPELINED: sent before it ended.
"""
import socket
import sys

BODIES = {"/a": b"hello", "/missing": b"not found", "/post": b"created"}
STATUS = {"/a": 200, "/missing": 404, "/post": 201, "/chunk": 200}
REASON = {200: "OK", 201: "Created", 404: "Not Found"}


class Table:
    def __init__(self):
        self.rows = {}

    def add(self, method, path, status, req, resp, ka, pipe):
        r = self.rows.setdefault((method, path), [0, {}, 0, 0, 0, 0])
        r[0] += 1
        r[1][status] = r[1].get(status, 0) + 1
        r[2] += req
        r[3] += resp
        r[4] += ka
        r[5] += pipe

    def show(self):
        for (m, p), r in sorted(self.rows.items()):
            st = ",".join("%d:%d" % kv for kv in sorted(r[1].items()))
            print(m, p, r[0], st, r[2], r[3], r[4], r[5])


def response(path, close):
    status = STATUS[path]
    head = "HTTP/1.1 %d %s\r\n" % (status, REASON[status])
    if close:
        head += "Connection: close\r\n"
    if path == "/chunk":
        body = b"4\r\nabcd\r\n10\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n"
        head += "Transfer-Encoding: chunked\r\n\r\n"
    else:
        body = BODIES[path]
        head += "Content-Length: %d\r\n\r\n" % len(body)
    return head.encode() + body


def parse_request(buf):
    """(method, path, headers, total length) of the first request, or None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode().split("\r\n")
    method, target, _ = lines[0].split(" ")
    hdr = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
    total = end + 4 + int(hdr.get("content-length", "0"))
    if len(buf) < total:
        return None
    return method, target.split("?")[0], hdr, total


def server(portfile):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    import os
    os.rename(portfile + ".tmp", portfile)
    t = Table()
    for _ in range(2):
        c, _ = ls.accept()
        buf, held, first, done = b"", [], True, False
        while not done:
            piece = c.recv(7)
            if not piece:
                break
            buf += piece
            while True:
                r = parse_request(buf)
                if not r:
                    break
                method, path, hdr, n = r
                buf = buf[n:]
                close = hdr.get("connection") == "close"
                if hdr.get("x-pipe") == "1":
                    held.append((method, path, n, close))
                    if not close:
                        continue
                    for i, (m, p, k, cl) in enumerate(held):
                        out = response(p, cl)
                        c.sendall(out)
                        t.add(m, p, STATUS[p], k, len(out), 0, int(i > 0))
                    done = True
                    break
                out = response(path, close)
                c.sendall(out)
                t.add(method, path, STATUS[path], n, len(out), int(not first), 0)
                first = False
                if close:
                    done = True
                    break
        c.close()
    ls.close()
    t.show()


def read_response(s, buf):
    """One response from buf + s: (status, its length, rest of buf)."""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode()
            status = int(head.split(" ")[1])
            if "transfer-encoding: chunked" in head.lower():
                tail = buf.find(b"\r\n0\r\n\r\n", end)
                if tail >= 0:
                    n = tail + 7
                    return status, n, buf[n:]
            else:
                clen = [int(l.split(":")[1]) for l in head.split("\r\n") if l.lower().startswith("content-length:")][0]
                n = end + 4 + clen
                if len(buf) >= n:
                    return status, n, buf[n:]
        more = s.recv(65536)
        if not more:
            raise SystemExit("connection ended inside a response")
        buf += more


def send_request(s, method, target, extra, body):
    """Writes the request in pieces; returns its length."""
    pieces = [("%s %s HTTP/1.1\r\n" % (method, target)).encode(),
              ("Host: localhost\r\nUser-Agent: http_split\r\n%s" % extra).encode()]
    if body:
        pieces[1] += ("Content-Length: %d\r\n" % len(body)).encode()
    pieces.append(b"\r\n")
    if body:
        pieces.append(body)
    for p in pieces:
        s.sendall(p)
    return sum(len(p) for p in pieces)


def client(port):
    t = Table()
    # A: kept alive, one request at a time
    s = socket.create_connection(("127.0.0.1", port))
    buf = b""
    for i, (m, target, body) in enumerate([("GET", "/a?x=1", b""), ("POST", "/post", b"hello world"),
                                           ("GET", "/chunk", b""), ("GET", "/missing", b"")]):
        last = i == 3
        n = send_request(s, m, target, "Connection: close\r\n" if last else "", body)
        status, k, buf = read_response(s, buf)
        t.add(m, target.split("?")[0], status, n, k, int(i > 0), 0)
    s.close()
    # B: five pipelined requests, then the five responses
    s = socket.create_connection(("127.0.0.1", port))
    reqs = [("GET", "/a", b""), ("GET", "/missing", b""), ("POST", "/post", b"0123456789abcdef"),
            ("GET", "/a", b""), ("GET", "/a", b"")]
    sent = []
    for i, (m, target, body) in enumerate(reqs):
        extra = "X-Pipe: 1\r\n" + ("Connection: close\r\n" if i == len(reqs) - 1 else "")
        sent.append(send_request(s, m, target, extra, body))
    buf = b""
    for i, (m, target, body) in enumerate(reqs):
        status, k, buf = read_response(s, buf)
        t.add(m, target, status, sent[i], k, 0, int(i > 0))
    if buf or s.recv(1):
        raise SystemExit("bytes after the last response")
    s.close()
    t.show()


def slowconnect():
    """A blocking connect that takes ~1 s: the listener's accept queue is full
    (backlog 0 holds one), so the kernel drops the SYN and the client sends
    it again after its 1 s initial retransmission timeout; by then a thread
    has accepted the first connection and the queue has room."""
    import threading, time
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    addr = ls.getsockname()
    first = socket.create_connection(addr)
    time.sleep(0.1)  # the first connection is in the queue
    got = []
    th = threading.Thread(target=lambda: (time.sleep(0.3), got.append(ls.accept()[0])))
    th.start()
    t0 = time.monotonic()
    second = socket.create_connection(addr)
    ms = (time.monotonic() - t0) * 1000
    th.join()
    print("connect ok", "slow" if ms >= 500 else "fast (%.1f ms)" % ms)
    for s in [first, second] + got:
        s.close()
    ls.close()


if __name__ == "__main__":
    if sys.argv[1] == "slowconnect":
        slowconnect()
    elif sys.argv[1] == "server":
        server(sys.argv[2])
    else:
        client(int(sys.argv[2]))
