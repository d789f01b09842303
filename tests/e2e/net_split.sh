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
#  2. a connect that blocks ~1 s (full accept queue, SYN retransmitted): one
#     "connect" span in trace.json and no "wait" span beside it (there was
#     one, in a lane of its own); its time counted once as a wait, in
#     net.json and wall.folded.
# 6 checks, whatever fails.
. "$(dirname "$0")/common.bash"
require_product
export PERFAGENT_MALLOC_RATE=0 # sockets only
HS=$PA_ROOT/tests/workloads/http_split.py

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

# 2. a connect that blocks
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
