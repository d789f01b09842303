#!/usr/bin/env bash
# HTTP/1.1 request heads in pieces (agent/net.c head_byte) and a connect
# that blocks (collector/net_model.c), with tests/workloads/http_split.py,
# both ends traced:
#  1. the client writes each request as request line, headers, blank line
#     (and body) in separate sends, 4 requests kept alive one at a time and
#     5 pipelined; the server reads in 7-byte recvs (request lines and
#     headers cut anywhere, pipelined requests several to a read).  Each
#     side's http.json must hold exactly what that side says it sent and
#     received: per endpoint count, statuses, request and response bytes,
#     keep-alive and pipelined counts, none incomplete.  (The old parser
#     took a head's later pieces, and the pipelined requests after it, for
#     the first request's bytes; on the server it gave up at the first cut
#     request line.)
#  2. RESPONSE heads in pieces and a chunked request body
#     (tests/workloads/http_pieces.py), both ends traced: the client reads
#     everything in 5-byte recvs, the server writes heads in 5-byte sends
#     or a line per send, one head ~5100 bytes long, a 100 Continue, HEAD,
#     204, chunked responses; a chunked POST pipelined with the requests
#     around it, written in 11-byte sends and read in 5-byte recvs.  The
#     same exact per-side tables; /slow's latency (0.25 s between its status
#     line and the rest) is the program's own measure, within 50 ms.  (The
#     old parser took a response head cut before its CRLF CRLF, or longer
#     than 4096 bytes, for a response ending with the connection, and a
#     chunked request body for everything until the next response.)
#  3. a connect that blocks ~1 s (full accept queue, SYN retransmitted): one
#     "connect" span in trace.json and no "wait" span beside it (there was
#     one, in a lane of its own); its time counted once as a wait, in
#     net.json and wall.folded.
# 10 checks, whatever fails.
. "$(dirname "$0")/common.bash"
require_product
export PERFAGENT_MALLOC_RATE=0 # sockets only
HS=$PA_ROOT/tests/workloads/http_split.py
HP=$PA_ROOT/tests/workloads/http_pieces.py

pyq() { $PY -c "import json,sys
try: j=json.load(open(sys.argv[1]))
except Exception: print('?'); sys.exit()
$2" "$1" 2>/dev/null || echo "?"; }
# one_dir PFR : the report folder of the only process in PFR's report
one_dir() { procs "$1.rep" | awk 'NR == 1 { print $4 }'; }
# rows HTTP_JSON ROLE : the endpoints of that role as http_split.py prints
# them, then the sum of incomplete requests
rows() {
    pyq "$1" "
v = sorted((e for e in j['endpoints'] if e['role'] == '$2'), key=lambda e: (e['method'], e['path']))
for e in v:
    st = ','.join('%s:%d' % kv for kv in sorted(e['statuses'].items()))
    print(e['method'], e['path'], e['count'], st, e['request_bytes'], e['response_bytes'], e['keep_alive'], e['pipelined'])
print('incomplete', sum(e['incomplete'] for e in v))"
}

# 1. split heads, kept alive and pipelined
timeout -k 5 "$TO" env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/srv.pfr" \
    "$PY" "$HS" server "$T/port" >"$T/srv.out" 2>"$T/srv.err" &
srv=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.05; done
run cli env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/cli.pfr" "$PY" "$HS" client "$(cat "$T/port" 2>/dev/null)"
wait "$srv"
echo $? >"$T/srv.rc"
for p in srv cli; do "$PERFAGENT" report "$T/$p.pfr" -o "$T/$p.pfr.rep" >/dev/null 2>&1; done
# what the program did, bytes aside (they are what they are: the program
# counts them; the agent must agree below)
expect_eq split.program "$(rc_of srv) $(rc_of cli) $(cmp -s "$T/srv.out" "$T/cli.out" && echo same || echo differ) $(awk '{ printf "%s %s %s %s %s %s|", $1, $2, $3, $4, $7, $8 }' "$T/cli.out")" \
    "0 0 same GET /a 4 200:4 0 2|GET /chunk 1 200:1 1 0|GET /missing 2 404:2 1 1|POST /post 2 201:2 1 1|" \
    "server and client tables: $(tr '\n' '|' <"$T/srv.out") / $(tr '\n' '|' <"$T/cli.out") $(head -c 300 "$T/cli.err" "$T/srv.err" | tr '\n' '|')"
expect_eq split.client "$(rows "$(one_dir "$T/cli.pfr")/http.json" client | tr '\n' '|')" \
    "$(tr '\n' '|' <"$T/cli.out")incomplete 0|"
expect_eq split.server "$(rows "$(one_dir "$T/srv.pfr")/http.json" server | tr '\n' '|')" \
    "$(tr '\n' '|' <"$T/srv.out")incomplete 0|"

# 2. response heads in pieces, a chunked request body pipelined
timeout -k 5 "$TO" env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/psrv.pfr" \
    "$PY" "$HP" server "$T/pport" >"$T/psrv.out" 2>"$T/psrv.err" &
srv=$!
for _ in $(seq 100); do [ -s "$T/pport" ] && break; sleep 0.05; done
run pcli env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/pcli.pfr" "$PY" "$HP" client "$(cat "$T/pport" 2>/dev/null)"
wait "$srv"
echo $? >"$T/psrv.rc"
for p in psrv pcli; do
    "$PERFAGENT" report "$T/$p.pfr" -o "$T/$p.pfr.rep" >/dev/null 2>&1
    grep -v '^slow ' "$T/$p.out" >"$T/$p.tab"
done
expect_eq pieces.program "$(rc_of psrv) $(rc_of pcli) $(cmp -s "$T/psrv.tab" "$T/pcli.tab" && echo same || echo differ) $(awk '{ printf "%s %s %s %s %s %s|", $1, $2, $3, $4, $7, $8 }' "$T/pcli.tab")" \
    "0 0 same GET /a 3 200:3 0 1|GET /big 1 200:1 1 0|GET /chunk 2 200:2 1 1|GET /empty 1 204:1 1 0|GET /missing 1 404:1 1 0|GET /slow 1 200:1 1 0|HEAD /a 1 200:1 1 0|POST /post 1 201:1 1 0|POST /upload 1 201:1 0 1|" \
    "server and client tables: $(tr '\n' '|' <"$T/psrv.out") / $(tr '\n' '|' <"$T/pcli.out") $(head -c 300 "$T/pcli.err" "$T/psrv.err" | tr '\n' '|')"
expect_eq pieces.client "$(rows "$(one_dir "$T/pcli.pfr")/http.json" client | tr '\n' '|')" \
    "$(tr '\n' '|' <"$T/pcli.tab")incomplete 0|"
expect_eq pieces.server "$(rows "$(one_dir "$T/psrv.pfr")/http.json" server | tr '\n' '|')" \
    "$(tr '\n' '|' <"$T/psrv.tab")incomplete 0|"
# slow_ms HTTP_JSON ROLE PROGRAM_OUT : /slow's latency as the agent saw it,
# and whether it is >= 250 ms and within 50 ms of the program's
slow_ms() {
    pyq "$1" "
p = [l.split()[1] for l in open('$3') if l.startswith('slow ')]
e = [e for e in j['endpoints'] if e['role'] == '$2' and e['path'] == '/slow']
ms = e[0]['latency_ms']['max'] if e else None
print(ms is not None and ms >= 250 and p[0] != '-' and abs(ms - float(p[0])) < 50, ms, p[0] if p else '-')"
}
expect_eq pieces.slow_latency "$(slow_ms "$(one_dir "$T/pcli.pfr")/http.json" client "$T/pcli.out" | awk '{ print $1 }') $(slow_ms "$(one_dir "$T/psrv.pfr")/http.json" server "$T/psrv.out" | awk '{ print $1 }')" \
    "True True" "client: $(slow_ms "$(one_dir "$T/pcli.pfr")/http.json" client "$T/pcli.out"), server: $(slow_ms "$(one_dir "$T/psrv.pfr")/http.json" server "$T/psrv.out") (ok, agent ms, program ms)"

# 3. a connect that blocks
run slow env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/slow.pfr" "$PY" "$HS" slowconnect
"$PERFAGENT" report "$T/slow.pfr" -o "$T/slow.pfr.rep" >/dev/null 2>&1
d=$(one_dir "$T/slow.pfr")
expect_eq connect.program "$(rc_of slow) $(out_of slow)" "0 connect ok slow"
# spans: "net connect" x2 (one >= 500 ms), no "wait connect"
expect_eq connect.trace "$(pyq "$d/trace.json" "
X = [e for e in j['traceEvents'] if e.get('ph') == 'X']
c = [e for e in X if e['cat'] == 'net' and e['name'] == 'connect']
print(len(c), sum(e['dur'] >= 500000 for e in c), sum(e['cat'] == 'wait' and e['name'] == 'connect' for e in X))")" \
    "2 1 0" "connect spans, of them >= 500 ms, wait spans named connect"
# the wait: once in net.json, and wall.folded's total is that wait
us=$(awk '{ s += $NF } END { print s + 0 }' "$d/wall.folded" 2>/dev/null)
expect_eq connect.wait_once "$(pyq "$d/net.json" "
w = [x for x in j['waits'] if x['call'] == 'connect']
print(len(w), w[0]['count'] if w else 0, w[0]['ms'] >= 500 if w else '-', abs(w[0]['ms'] * 1000 - $us) < 2 if w else '-')")" \
    "1 1 True True" "net.json waits for connect: rows, count, >= 500 ms, = wall.folded's ${us} us (ms to 3 places)"
finish
