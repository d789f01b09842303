#!/usr/bin/env bash
# trace.json (collector/report_trace.c): the Chrome Trace Event format, read
# back with python's json and checked the way a viewer would use it:
#  1. schema: a JSON object with traceEvents, displayTimeUnit "ms"; every
#     event has ph, name, pid (the process's), tid; "X" events have
#     numeric ts and dur >= 0, cat and args; every track an "X" event is on
#     has a thread_name "M" event; the main thread's name is the one the
#     stream carried (curl's comm);
#  2. nesting: on every track, no two spans partially overlap;
#  3. exact spans for a known workload: curl (traced) fetches /a.bin x3,
#     /b.bin?q=1 x2 and /missing x2 over kept-alive connections from
#     python3 -m http.server --protocol HTTP/1.1 (traced; it closes after
#     its first 404): 7 http spans with their method, url.path, status and
#     sizes as curl saw them, 2 connection spans with a connect span each,
#     every http span within its connection's lifetime (6 and 1); the server's trace has 7 server-role http spans
#     (plus the readiness probes, 404s) with the same paths and statuses;
#  4. libpq (tests/workloads/pq_app.c against a throwaway PostgreSQL): 45
#     query spans, 2 prepares, 4 connects (one failed), 3 closes, each with
#     db.system.name postgresql; the 20 N+1 SELECTs with their normalized
#     db.query.text and db.operation.name SELECT; the 2 failing ones with
#     error.type 42P01; no literal ('secret-literal-7731') anywhere; every
#     query span with the connection's db.namespace, server.address (the
#     socket directory) and server.port;
#  5. timestamps: relative to the process's start: every span starts within
#     the run (0 <= ts, ts + dur <= the run's length from summary.txt).
# Fixed check count: every check prints its line whatever fails.
. "$(dirname "$0")/common.bash"
. "$(dirname "$0")/lib/pg.bash"
require_product "$W/pq_app"
export PERFAGENT_MALLOC_RATE=0

# tq FILE EXPR : EXPR evaluated with t = trace.json's object, X = its "X"
# events, tracks = {track: [X events]}, nest() = the nesting verdict
tq() {
    $PY - "$1" "$2" <<'PYEOF' 2>/dev/null || echo "?"
import json, sys
try:
    t = json.load(open(sys.argv[1]))
except Exception as e:
    print("unreadable: %s" % e); sys.exit()
ev = t.get("traceEvents", []) if isinstance(t, dict) else []
X = [e for e in ev if e.get("ph") == "X"]
tracks = {}
for e in X:
    tracks.setdefault(e.get("tid"), []).append(e)
def schema():
    bad = []
    if not isinstance(t, dict) or t.get("displayTimeUnit") != "ms":
        bad.append("container")
    pids = {e.get("pid") for e in ev}
    if len(pids) != 1:
        bad.append("pids %s" % pids)
    for e in ev:
        if e.get("ph") not in ("X", "M") or not isinstance(e.get("name"), str) or \
           not isinstance(e.get("tid"), int):
            bad.append("event %s" % e); break
    for e in X:
        if not all(isinstance(e.get(k), (int, float)) for k in ("ts", "dur")) or e["ts"] < 0 or \
           e["dur"] < 0 or not isinstance(e.get("cat"), str) or not isinstance(e.get("args"), dict):
            bad.append("X %s" % e); break
    named = {e["tid"] for e in ev if e.get("ph") == "M" and e.get("name") == "thread_name"}
    if set(tracks) - named:
        bad.append("unnamed tracks %s" % (set(tracks) - named))
    return "ok" if not bad else "; ".join(bad)
def nest():
    # ns integers from the printed microseconds: exact comparisons
    us = lambda v: round(v * 1000)
    for tid, v in tracks.items():
        stack = []
        for e in sorted(v, key=lambda e: (us(e["ts"]), -us(e["dur"]))):
            s, end = us(e["ts"]), us(e["ts"]) + us(e["dur"])
            while stack and stack[-1][0] <= s:
                stack.pop()
            if stack and stack[-1][0] < end:
                return "partial overlap on %s: %s [%d, %d] and %s ending %d" % (
                    tid, e["name"], s, end, stack[-1][1], stack[-1][0])
            stack.append((end, e["name"]))
    return "ok"
def thread_name(tid):
    return [e["args"]["name"] for e in ev if e.get("ph") == "M" and e.get("name") == "thread_name" and e["tid"] == tid]
def within(inner, outer):
    us = lambda v: round(v * 1000)
    return us(outer["ts"]) <= us(inner["ts"]) and \
        us(inner["ts"]) + us(inner["dur"]) <= us(outer["ts"]) + us(outer["dur"])
print(eval(sys.argv[2]))
PYEOF
}

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# 1-3. http.server and curl
mkdir -p "$T/www"
head -c 1000 /dev/zero | tr '\0' a >"$T/www/a.bin"
head -c 50000 /dev/zero | tr '\0' b >"$T/www/b.bin"
PORT=$(free_port)
(cd "$T/www" && exec timeout -k 5 "$TO" env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/srv.pfr" \
    $PY -m http.server -b 127.0.0.1 --protocol HTTP/1.1 "$PORT" >"$T/srv.log" 2>&1) &
SRV=$!
for i in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/ready" && break; sleep 0.1; done
URLS=() OUTS=()
for p in a.bin a.bin a.bin 'b.bin?q=1' 'b.bin?q=2' missing missing; do
    URLS+=("http://127.0.0.1:$PORT/$p"); OUTS+=(-o /dev/null)
done
run curl env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/curl.pfr" \
    curl -s -w '%{http_code} %{size_download} %{size_header} %{size_request} %{num_connects}\n' "${OUTS[@]}" "${URLS[@]}"
kill -INT $SRV 2>/dev/null; wait $SRV 2>/dev/null
"$PERFAGENT" report "$T/curl.pfr" -o "$T/curl.rep" >/dev/null 2>&1
"$PERFAGENT" report "$T/srv.pfr" -o "$T/srv.rep" >/dev/null 2>&1
CD=$(ls -d "$T"/curl.rep/*/ 2>/dev/null | head -1) SD=$(ls -d "$T"/srv.rep/*/ 2>/dev/null | head -1)
CT=$CD/trace.json ST=$SD/trace.json
expect_eq curl.ran "$(rc_of curl) $(awk '{c += $5} END {print NR, c}' "$T/curl.out")" "0 7 2"
expect_eq client.schema "$(tq "$CT" 'schema()')" ok
expect_eq server.schema "$(tq "$ST" 'schema()')" ok
expect_eq client.nesting "$(tq "$CT" 'nest()')" ok
expect_eq server.nesting "$(tq "$ST" 'nest()')" ok
expect_eq client.thread_name "$(tq "$CT" 'thread_name(t["otherData"]["pid"])')" "['curl']"
# per path: spans, statuses, request and response sizes (curl's -w: the
# request's bytes, the response's headers + body)
want=$(awk '{split("/a.bin /a.bin /a.bin /b.bin /b.bin /missing /missing", p, " ");
    k = p[NR] " " $1; n[k]++; rq[k] += $4; rs[k] += $2 + $3}
    END {for (k in n) print k, n[k], rq[k], rs[k]}' "$T/curl.out" | sort | tr '\n' '|')
expect_eq client.http "$(tq "$CT" '"|".join("%s %s %d %d %d" % (k + tuple(map(sum, zip(*v)))) for k, v in sorted(
    __import__("functools").reduce(lambda d, e: d.setdefault((e["args"]["url.path"], e["args"]["http.response.status_code"]), []).append(
        (1, e["args"]["http.request.size"], e["args"]["http.response.size"])) or d, [e for e in X if e["cat"] == "http"], {}).items())) + "|"')" "$want"
expect_eq client.http_attrs "$(tq "$CT" 'sorted({(e["name"], e["args"]["http.request.method"], e["args"]["server.port"], e["args"]["network.transport"], e["args"].get("error.type"), e["args"]["perfagent.role"]) for e in X if e["cat"] == "http"})')" \
    "[('GET /a.bin', 'GET', $PORT, 'tcp', None, 'client'), ('GET /b.bin', 'GET', $PORT, 'tcp', None, 'client'), ('GET /missing', 'GET', $PORT, 'tcp', '404', 'client')]"
# two connections (http.server closes one after its first 404), a connect
# inside each, every request inside the connection of its local port, the
# connections' bytes those of their requests (a connect that blocked 1 ms
# or more is also a "connect" wait span, cat "wait": not these)
expect_eq client.connections "$(tq "$CT" '(lambda c, k, h: (len(c), len(k), sum(e["args"]["perfagent.closed"] for e in c),
    sorted(sum(within(x, e) and x["args"]["network.local.port"] == e["args"]["network.local.port"] for x in k) for e in c),
    sorted(sum(within(x, e) and x["args"]["network.local.port"] == e["args"]["network.local.port"] for x in h) for e in c),
    sum(e["args"]["perfagent.bytes_sent"] for e in c) == sum(e["args"]["http.request.size"] for e in h)))(
    [e for e in X if e["cat"] == "net" and e["name"] == "connection"], [e for e in X if e["cat"] == "net" and e["name"] == "connect"],
    [e for e in X if e["cat"] == "http"])')" \
    "(2, 2, 2, [1, 1], [1, 6], True)"
probes=$(grep -c '"GET /ready' "$T/srv.log")
expect_eq server.http "$(tq "$ST" 'sorted(__import__("collections").Counter((e["args"]["url.path"], e["args"]["http.response.status_code"], e["args"]["perfagent.role"], e["args"]["server.port"]) for e in X if e["cat"] == "http").items())')" \
    "[(('/a.bin', 200, 'server', $PORT), 3), (('/b.bin', 200, 'server', $PORT), 2), (('/missing', 404, 'server', $PORT), 2), (('/ready', 404, 'server', $PORT), $probes)]"
# 5. relative to the process's start: within the run
# (summary.txt's duration has 3 decimals: 1 ms of rounding allowed)
runlen=$(awk '/^duration:/ {print $2; exit}' "$CD/summary.txt" 2>/dev/null)
expect_eq client.times "$(tq "$CT" 'min(e["ts"] for e in X) > 0 and all(e["ts"] + e["dur"] <= 1e6 * ('"${runlen:-0}"' + 0.001) for e in X)')" True

# 4. libpq
PGPORT=$((54329 + $$ % 500 + 500))
if pg_start "$T/pg" "$PGPORT"; then
    run app env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/app.pfr" "$W/pq_app" "$PG_SOCK" "$PGPORT"
else
    echo 1 >"$T/app.rc"; echo "no server" >"$T/app.out"
fi
"$PERFAGENT" report "$T/app.pfr" -o "$T/app.rep" >/dev/null 2>&1
AD=$(ls -d "$T"/app.rep/*/ 2>/dev/null | head -1) AT=$(ls -d "$T"/app.rep/*/ 2>/dev/null | head -1)/trace.json
expect_eq pq.ran "$(rc_of app) $(out_of app)" "0 done"
expect_eq pq.schema_nesting "$(tq "$AT" 'schema(), nest()')" "('ok', 'ok')"
expect_eq pq.calls "$(tq "$AT" 'sorted(__import__("collections").Counter((e["args"]["perfagent.pq.call"], e["args"]["db.system.name"]) for e in X if e["cat"] == "db").items())')" \
    "[(('close', 'postgresql'), 3), (('connect', 'postgresql'), 4), (('prepare', 'postgresql'), 2), (('query', 'postgresql'), 45)]"
expect_eq pq.n_plus_one "$(tq "$AT" 'sorted(__import__("collections").Counter((e["name"], e["args"]["db.operation.name"], e["args"]["db.response.returned_rows"]) for e in X if e["cat"] == "db" and e["args"].get("db.query.text") == "SELECT name FROM items WHERE id = $1").items())')" \
    "[(('SELECT', 'SELECT', 1), 20)]"
expect_eq pq.errors "$(tq "$AT" 'sorted((e["args"].get("db.query.text", "-"), e["args"]["error.type"]) for e in X if e["cat"] == "db" and "error.type" in e["args"])')" \
    "[('-', '_OTHER'), ('SELECT * FROM no_such_table', '42P01'), ('SELECT * FROM no_such_table', '42P01')]"
expect_eq pq.no_literal "$(grep -c 'secret-literal-7731' "$AT" 2>&1)" 0
# the connection's attributes on every query span: the database, the
# socket directory and port the program connected to
expect_eq pq.connection "$(tq "$AT" 'sorted(__import__("collections").Counter((e["args"].get("db.namespace"), e["args"].get("server.address") == "'"$PG_SOCK"'", e["args"].get("server.port")) for e in X if e["cat"] == "db" and e["args"]["perfagent.pq.call"] == "query").items())')" \
    "[(('postgres', True, $PGPORT), 45)]"
finish
