#!/usr/bin/env python3
"""HTTP/1.1 over raw sockets with RESPONSE heads in pieces and a chunked
request body before a pipelined request (tests/e2e/net_split.sh).

  http_pieces.py server PORTFILE   serve two connections, then exit; prints
                                   what it received and sent, per endpoint
  http_pieces.py client PORT       make them; prints the same from its side

The server writes every response in pieces and reads requests in 5-byte
recv()s; the client reads everything in 5-byte recv()s, so on the client
every head is cut every 5 bytes (status code, header names and values,
CRLF CRLF at every offset over the responses).

Connection A, kept alive, one request at a time; the server writes each
head in 5-byte send()s 1 ms apart (TCP_NODELAY), the X-Pad line in one,
and each body in three sends:
  GET /a          200, Content-Length 5
  POST /post      Expect: 100-continue: a "100 Continue" interim response
                  (in 5-byte sends too), then the body, then 201
  GET /chunk      200, chunked (4 + 16 bytes), the body cut in chunk lines
  HEAD /a         200, Content-Length 5 and no body
  GET /empty      204, no body
  GET /big        200, a head of ~5100 bytes (X-Pad: 5000 bytes, then
                  Content-Length 100: past the old 4096-byte window)
  GET /slow       200, 0.25 s between the status line and the rest
  GET /missing    404, Connection: close
Connection B, pipelined: the client writes four requests as one byte
string in 11-byte send()s (a chunk line, the chunked body's end and the
next request line share sends), then reads the responses:
  GET /a, POST /upload (Transfer-Encoding: chunked, three chunks and a
  trailer), GET /a, GET /chunk with Connection: close
and the server, once it has all four, writes each response a line per
send() (status line, each header, blank line), the body in two.

Output, one line per endpoint sorted by method and path, as http_split.py:
  METHOD PATH COUNT STATUS:N,... REQUEST_BYTES RESPONSE_BYTES KEEP_ALIVE PIPELINED
then "slow MS" (the client: send of GET /slow to its response's end; the
server: its receipt to the last send).  Response bytes include the 100
interim response's.
"""
import os
import socket
import sys
import time

from http_split import Table  # the per-endpoint table both workloads print

CHUNKED = b"4\r\nabcd\r\n10\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n"
BODIES = {"/a": b"hello", "/missing": b"not found", "/post": b"created", "/upload": b"stored",
          "/big": b"b" * 100, "/slow": b"slow", "/empty": b""}
STATUS = {"/a": 200, "/missing": 404, "/post": 201, "/upload": 201, "/chunk": 200, "/big": 200,
          "/slow": 200, "/empty": 204}
REASON = {200: "OK", 201: "Created", 204: "No Content", 404: "Not Found"}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
UPLOAD = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n"


def response(method, path, close):
    """(head lines, body) of the response."""
    status = STATUS[path]
    lines = ["HTTP/1.1 %d %s\r\n" % (status, REASON[status]), "Server: http_pieces\r\n"]
    if path == "/big":
        lines.append("X-Pad: " + "p" * 5000 + "\r\n")
    if close:
        lines.append("Connection: close\r\n")
    if path == "/chunk":
        body = CHUNKED
        lines.append("Transfer-Encoding: chunked\r\n")
    else:
        body = BODIES[path]
        if status != 204:
            lines.append("Content-Length: %d\r\n" % len(body))
    lines.append("\r\n")
    return [l.encode() for l in lines], b"" if method == "HEAD" else body


def split(b, n):
    return [b[i:i + n] for i in range(0, len(b), n)]


def send_pieces(c, pieces, pause):
    for p in pieces:
        if p:
            c.sendall(p)
            if pause:
                time.sleep(pause)
    return sum(len(p) for p in pieces)


def send_response(c, method, path, close, small):
    """small: the head in 5-byte sends (a long line whole), the body in 3;
    else a line per send, the body in 2.  Returns the bytes sent."""
    lines, body = response(method, path, close)
    if path == "/slow":  # the status line, a pause, the rest
        return send_pieces(c, [lines[0]], 0.25) + send_pieces(c, [b"".join(lines[1:]) + body], 0)
    if small:
        pieces = []
        for l in lines:
            pieces += [l] if len(l) > 100 else split(l, 5)
        k = (len(body) + 2) // 3
        pieces += split(body, k) if body else []
        return send_pieces(c, pieces, 0.001)
    k = (len(body) + 1) // 2
    return send_pieces(c, lines + (split(body, k) if body else []), 0)


def parse_request(buf):
    """(method, path, headers, head length, total length or None) of the
    first request in buf, or None while its head is incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode().split("\r\n")
    method, target, _ = lines[0].split(" ")
    hdr = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
    head = end + 4
    if hdr.get("transfer-encoding") == "chunked":
        p = head
        while True:
            e = buf.find(b"\r\n", p)
            if e < 0:
                return method, target.split("?")[0], hdr, head, None
            size = int(buf[p:e].split(b";")[0], 16)
            if size == 0:
                if buf[e + 2:e + 4] == b"\r\n":
                    total = e + 4
                else:
                    t = buf.find(b"\r\n\r\n", e + 2)
                    total = t + 4 if t >= 0 else None
                return method, target.split("?")[0], hdr, head, total
            p = e + 2 + size + 2
            if p > len(buf):
                return method, target.split("?")[0], hdr, head, None
    total = head + int(hdr.get("content-length", "0"))
    return method, target.split("?")[0], hdr, head, total if len(buf) >= total else None


def server(portfile):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.rename(portfile + ".tmp", portfile)
    t = Table()
    slow_ms = None
    for _ in range(2):
        c, _ = ls.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf, held, first, done, continued, t_first = b"", [], True, False, 0, None
        while not done:
            piece = c.recv(5)
            if not piece:
                break
            if not buf:
                t_first = time.monotonic()
            buf += piece
            while buf:
                r = parse_request(buf)
                if not r:
                    break
                method, path, hdr, head, total = r
                if total is None:
                    if hdr.get("expect") == "100-continue" and not continued:
                        continued = send_pieces(c, split(CONTINUE, 5), 0.001)
                    break
                buf = buf[total:]
                close = hdr.get("connection") == "close"
                if hdr.get("x-pipe") == "1":
                    held.append((method, path, total, close))
                    if not close:
                        continue
                    for i, (m, p, k, cl) in enumerate(held):
                        n = send_response(c, m, p, cl, False)
                        t.add(m, p, STATUS[p], k, n, 0, int(i > 0))
                    done = True
                    break
                n = continued + send_response(c, method, path, close, True)
                if path == "/slow":
                    slow_ms = (time.monotonic() - t_first) * 1000
                t.add(method, path, STATUS[path], total, n, int(not first), 0)
                first, continued = False, 0
                if close:
                    done = True
                    break
        c.close()
    ls.close()
    t.show()
    print("slow", "%.0f" % slow_ms if slow_ms else "-")


def read_response(s, buf, method):
    """One response from buf + s (5-byte recvs): (status, its length, rest)."""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode()
            status = int(head.split(" ")[1])
            n = None
            if method == "HEAD" or status in (100, 204, 304):
                n = end + 4
            elif "transfer-encoding: chunked" in head.lower():
                tail = buf.find(b"\r\n0\r\n\r\n", end)
                if tail >= 0:
                    n = tail + 7
            else:
                clen = [int(l.split(":")[1]) for l in head.split("\r\n")
                        if l.lower().startswith("content-length:")][0]
                if len(buf) >= end + 4 + clen:
                    n = end + 4 + clen
            if n is not None:
                return status, n, buf[n:]
        more = s.recv(5)
        if not more:
            raise SystemExit("connection ended inside a response")
        buf += more


def request(method, target, extra, body):
    head = "%s %s HTTP/1.1\r\nHost: localhost\r\n%s" % (method, target, extra)
    if body and "chunked" not in extra:
        head += "Content-Length: %d\r\n" % len(body)
    return (head + "\r\n").encode(), body


def client(port):
    t = Table()
    slow_ms = None
    # A: kept alive, one request at a time
    s = socket.create_connection(("127.0.0.1", port))
    buf = b""
    seq = [("GET", "/a", "", b""), ("POST", "/post", "Expect: 100-continue\r\n", b"hello world"),
           ("GET", "/chunk", "", b""), ("HEAD", "/a", "", b""), ("GET", "/empty", "", b""),
           ("GET", "/big", "", b""), ("GET", "/slow", "", b""),
           ("GET", "/missing", "Connection: close\r\n", b"")]
    for i, (m, target, extra, body) in enumerate(seq):
        head, body = request(m, target, extra, body)
        t0 = time.monotonic()
        s.sendall(head)
        k0 = 0
        if "100-continue" in extra:
            status, k0, buf = read_response(s, buf, m)
            if status != 100:
                raise SystemExit("expected 100 Continue, got %d" % status)
        if body:
            s.sendall(body)
        status, k, buf = read_response(s, buf, m)
        if target == "/slow":
            slow_ms = (time.monotonic() - t0) * 1000
        t.add(m, target, status, len(head) + len(body), k0 + k, int(i > 0), 0)
    if buf or s.recv(1):
        raise SystemExit("bytes after the last response on A")
    s.close()
    # B: four pipelined requests in 11-byte sends, then the four responses
    s = socket.create_connection(("127.0.0.1", port))
    reqs = [request("GET", "/a", "X-Pipe: 1\r\n", b""),
            request("POST", "/upload", "X-Pipe: 1\r\nTransfer-Encoding: chunked\r\n", UPLOAD),
            request("GET", "/a", "X-Pipe: 1\r\n", b""),
            request("GET", "/chunk", "X-Pipe: 1\r\nConnection: close\r\n", b"")]
    names = [("GET", "/a"), ("POST", "/upload"), ("GET", "/a"), ("GET", "/chunk")]
    for p in split(b"".join(h + b for h, b in reqs), 11):
        s.sendall(p)
    buf = b""
    for i, ((m, path), (h, b)) in enumerate(zip(names, reqs)):
        status, k, buf = read_response(s, buf, m)
        t.add(m, path, status, len(h) + len(b), k, 0, int(i > 0))
    if buf or s.recv(1):
        raise SystemExit("bytes after the last response on B")
    s.close()
    t.show()
    print("slow", "%.0f" % slow_ms if slow_ms else "-")


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2])
    else:
        client(int(sys.argv[2]))
