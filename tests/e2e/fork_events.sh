#!/usr/bin/env bash
# Typed events (socket and libpq records) of a fork child whose forking
# thread had made events before the fork.  The thread's event ring was
# mapped MADV_WIPEONFORK with its header inside the wiped range, so in the
# child the ring's size read 0 and every event was dropped: postgres
# backends under the agent showed "events lost: 1-13" and none of their
# own socket traffic (agent/ring.c pa_tring_new).
. "$(dirname "$0")/common.bash"
require_product
cat >"$T/fk.py" <<'EOF'
import os, socket, sys
path = sys.argv[1]
srv = socket.socket(socket.AF_UNIX)
srv.bind(path)
srv.listen(8)

def client(n):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(b"x" * n)
    s.close()

def serve():
    c, _ = srv.accept()
    got = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        got += len(b)
    c.close()
    return got

# the parent's thread makes events first (its ring exists at the fork)
client(100)
first = serve()
kids = []
for n in (5000, 7000):
    pid = os.fork()
    if pid == 0:
        client(n)
        os._exit(0)
    kids.append(pid)
got = [serve(), serve()]
for p in kids:
    os.waitpid(p, 0)
print(first, sorted(got))
EOF
run fk env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/fk.pfr" "$PY" "$T/fk.py" "$T/sock"
expect_eq ran "$(rc_of fk) $(out_of fk)" "0 100 [5000, 7000]" "$(head -c 300 "$T/fk.err" | tr '\n' '|')"
report fk.report "$T/rep" "$T/fk.pfr"*
# per process: its client bytes to the socket, the events it lost
got=$($PY - "$T/rep" <<'PYEOF'
import json, os, sys
rows = []
for p in json.load(open(sys.argv[1] + "/index.json"))["processes"]:
    d = os.path.join(sys.argv[1], p["dir"])
    peers = json.load(open(d + "/net.json"))["peers"] if os.path.exists(d + "/net.json") else []
    sent = sum(x["bytes_sent"] for x in peers if x["role"] == "client")
    lost = [l.split()[2] for l in open(d + "/summary.txt") if l.strip().startswith("events lost:")]
    rows.append("%s/%s" % (sent, lost[0] if lost else "?"))
print(" ".join(sorted(rows, key=lambda r: int(r.split("/")[0]))))
PYEOF
)
expect_eq child_events "$got" "100/0 5000/0 7000/0" \
    "client bytes sent / events lost, per process (parent, two fork children)"

# A connection the parent accepted and a fork child serves (postgres'
# backends, a forking HTTP server): each process's report has it with the
# bytes that process moved (the parent read the first 500, the child the
# rest and the reply); connect latency stays the connecting process's.
cat >"$T/pre.py" <<'EOF'
import os, socket, sys
path = sys.argv[1]
srv = socket.socket(socket.AF_UNIX)
srv.bind(path)
srv.listen(8)
cli = os.fork()
if cli == 0:  # the client: its own process
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(b"q" * 3000)
    got = 0
    while got < 1000:
        b = s.recv(65536)
        if not b:
            break
        got += len(b)
    s.close()
    os._exit(0 if got == 1000 else 1)
c, _ = srv.accept()
got = 0
while got < 500:  # the parent reads the first 500 bytes itself
    got += len(c.recv(500 - got))
srvkid = os.fork()
if srvkid == 0:  # the server's child serves the rest
    while got < 3000:
        got += len(c.recv(65536))
    c.sendall(b"r" * 1000)
    c.close()
    os._exit(0)
c.close()  # the parent's copy, at once
print([os.waitpid(p, 0)[1] for p in (srvkid, cli)])
EOF
run pre env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/pre.pfr" "$PY" "$T/pre.py" "$T/sock2"
expect_eq prefork.ran "$(rc_of pre) $(out_of pre)" "0 [0, 0]" "$(head -c 300 "$T/pre.err" | tr '\n' '|')"
report prefork.report "$T/prerep" "$T/pre.pfr"*
got=$($PY - "$T/prerep" <<'PYEOF'
import json, os, sys
rows = []
for p in json.load(open(sys.argv[1] + "/index.json"))["processes"]:
    d = os.path.join(sys.argv[1], p["dir"])
    peers = json.load(open(d + "/net.json"))["peers"] if os.path.exists(d + "/net.json") else []
    for x in peers:
        rows.append("%s:%d:%d/%d:%d" % (x["role"], x["connections"], x["bytes_sent"],
                                        x["bytes_received"], 1 if x["connect_ms"] else 0))
print(" ".join(sorted(rows)))
PYEOF
)
# role:connections:sent/received:connect latency reported (1) or not (0)
expect_eq prefork.per_process "$got" "client:1:3000/1000:1 server:1:0/500:0 server:1:1000/2500:0" \
    "per process and peer (client, parent server, serving child)"
finish
