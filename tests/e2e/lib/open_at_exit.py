import os, socket
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
c = socket.create_connection(l.getsockname()); s, _ = l.accept()
c.sendall(b"x" * 123); n = 0
while n < 123: n += len(s.recv(1000))
print("ok", n, flush=True)
os._exit(0)  # no close: the connections are reported by the exit flush
