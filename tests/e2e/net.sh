#!/usr/bin/env bash
# Socket and HTTP tracing (agent/hook_net.c, agent/net.c, collector/
# net_model.c, report_net.c), with real peers:
#  1. net_echo (ours): 5 connections x 10000 bytes over IPv4, IPv6, a unix
#     socket and a non-blocking connect: exact bytes both ways for the
#     client and the server role, 50 client send calls, connect latencies
#     for the 5 connects; the program checks every result and errno itself;
#  2. a refused connect: -1 ECONNREFUSED for the program, counted as a
#     failed connection with ECONNREFUSED 1;
#  3. PERFAGENT_NET=0 with heap and CPU off: the agent writes nothing;
#  4. python3 -m http.server (HTTP/1.0, traced) and curl (traced) fetching
#     /a.bin x3, /b.bin?q=1 x2, /missing x2: per endpoint counts and
#     statuses on both sides, request and response bytes equal to what curl
#     says it sent and received (headers included), the summary's line;
#  5. the same server speaking HTTP/1.1, one curl fetching 3 paths over one
#     kept-alive connection: 1 connection, 3 requests, 2 on a reused one;
#  6. chunked responses (lib/chunked_server.py, traced, 100 + 2000 + 5
#     bytes in chunks written one by one) twice, then a 404, over one
#     kept-alive connection: each response ends where its last chunk does
#     (none incomplete), the raw bytes on both sides;
#  7. connections still open at _exit (lib/open_at_exit.py): reported by
#     the final flush, both roles, not closed, 123 bytes;
#  8. wait time: net_echo slow 3 200 blocks ~600 ms in recv under
#     wait_for_reply(): wall.folded's line for that stack holds 450-3600 ms
#     (the server's sleep starts a little before the client's recv can:
#     150 ms a round is the floor), and wall.svg exists; the same after the
#     socket was made non-blocking by fcntl(F_SETFL) and blocking again by
#     fcntl, and by ioctl(FIONBIO) (the agent does not time a non-blocking
#     socket's calls: it must see the flag go off again);
#  9. getaddrinfo: 3 lookups of localhost and one that fails with
#     EAI_SERVICE, as the program saw them;
# 10. the slow-request log: net_echo fetches /slow (the server sleeps 1.2
#     s): a WARN line in the client's http.txt with the stack that made the
#     connection (client_connect < http_get), and in the server's; an ERROR under
#     PERFAGENT_SLOW_REQUEST_MS=100,1100; the fast 404 never listed.
# 11. HTTP/1.1 pipelining: a python client (traced) writes GET /a.bin,
#     /b.bin?x=1 and /missing (Connection: close) before reading, in one
#     send ("one") or three ("three"), to http.server --protocol HTTP/1.1
#     (traced): each response paired with its request (status, request
#     and response bytes as the client split them), 2 of the 3 pipelined
#     and none keep-alive, on the client both ways and on the server (which
#     gets the three in one segment) for "one";
# 12. select and pselect: net_echo slow 3 200 select|pselect waits in
#     select/pselect on the socket: counted as waits of that call (3, the
#     time within 450-3600 ms; a recv preempted for 1 ms on a busy machine
#     may count as a wait too, not checked) at wait_select / wait_pselect.
# Fixed check count: every check prints its line whatever fails.
. "$(dirname "$0")/common.bash"
require_product "$W/net_echo"
export PERFAGENT_MALLOC_RATE=0 # sockets only: small streams

# pyq FILE EXPR : print EXPR evaluated with j = the JSON of FILE ("?" if none)
pyq() { $PY -c "import json,sys
try: j=json.load(open(sys.argv[1]))
except Exception: print('?'); sys.exit()
$2" "$1" 2>/dev/null || echo "?"; }
# peer_line NET_JSON ROLE : the peer of that role as one line
peer_line() {
    pyq "$1" "
for p in j['peers']:
    if p['role'] == '$2':
        print(p['transport'], p['connections'], p['closed'], p['connect_failed'], p['bytes_sent'],
              p['bytes_received'], p['calls_send'] if p['role'] == 'client' else '-',
              ','.join('%s:%d' % e for e in sorted(p['errors'].items())) or '-')"
}
one_dir() { ls -d "$1".rep/*/ 2>/dev/null | head -1; }

# 1. echo over four kinds of connection
for m in tcp tcp6 unix nonblock; do
    run $m env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/$m.pfr" "$W/net_echo" $m 5 10000 "$T/echo.sock"
    expect_eq $m.program "$(rc_of $m) $(out_of $m)" "0 ok conns=5 sent=50000 received=50000"
    "$PERFAGENT" report "$T/$m.pfr" -o "$T/$m.pfr.rep" >/dev/null 2>&1
    d=$(one_dir "$T/$m.pfr")
    tr=tcp; [ $m = unix ] && tr=unix
    expect_eq $m.client "$(peer_line "$d/net.json" client)" "$tr 5 5 0 50000 50000 50 -"
    expect_eq $m.server "$(peer_line "$d/net.json" server)" "$tr 5 5 0 50000 50000 - -"
    # the same address on both sides (a server's is its own), 5 connect
    # latencies recorded by the client (the non-blocking ones by
    # poll/getsockopt)
    want="127.0.0.1 5"; [ $m = tcp6 ] && want="::1 5"; [ $m = unix ] && want="unix:$T/echo.sock 5"
    expect_eq $m.address "$(pyq "$d/net.json" "
a = {p['role']: p['address'] for p in j['peers']}
c = [p for p in j['peers'] if p['role'] == 'client'][0]
host = a['client'].rsplit(':', 1)[0].strip('[]') if not a['client'].startswith('unix:') else a['client']
print(host if a['client'] == a['server'] else 'differ: %s' % a, 5 if c['connect_ms'] else 0)")" "$want"
done

# 2. a refused connect
run refused env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/refused.pfr" "$W/net_echo" refused
expect_eq refused.program "$(rc_of refused) $(out_of refused)" "0 refused rc=-1 errno=ECONNREFUSED"
"$PERFAGENT" report "$T/refused.pfr" -o "$T/refused.pfr.rep" >/dev/null 2>&1
expect_eq refused.counted "$(peer_line "$(one_dir "$T/refused.pfr")/net.json" client)" \
    "tcp 1 1 1 0 0 0 ECONNREFUSED:1"

# 3. off: nothing recorded, the program unchanged
run off env LD_PRELOAD="$AGENT" PERFAGENT_NET=0 PERFAGENT_OUTPUT="$T/off.pfr" "$W/net_echo" tcp 2 3000
expect_eq off.nothing "$(rc_of off) $(out_of off) $(ls "$T"/off.pfr* 2>/dev/null | wc -l)" \
    "0 ok conns=2 sent=6000 received=6000 0"

# 4. http.server and curl, both traced
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mkdir -p "$T/www"
head -c 1000 /dev/zero | tr '\0' a >"$T/www/a.bin"
head -c 50000 /dev/zero | tr '\0' b >"$T/www/b.bin"
# start_server NAME [ARGS...] : a traced http.server on a free port ($PORT)
start_server() {
    local name=$1 i; shift
    PORT=$(free_port)
    (cd "$T/www" && exec timeout -k 5 "$TO" env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/$name.pfr" \
        $PY -m http.server -b 127.0.0.1 "$@" "$PORT" >"$T/$name.log" 2>&1) &
    SRV=$!
    for i in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/ready" 2>/dev/null && break
        sleep 0.1
    done
}
# stop_server : SIGINT (KeyboardInterrupt): python exits through its
# destructors, so the agent's final flush runs
stop_server() { kill -INT $SRV 2>/dev/null; wait $SRV 2>/dev/null; }

start_server srv
URLS=() OUTS=()
for p in a.bin a.bin a.bin 'b.bin?q=1' 'b.bin?q=2' missing missing; do
    URLS+=("http://127.0.0.1:$PORT/$p"); OUTS+=(-o /dev/null)
done
run curl env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/curl.pfr" \
    curl -s -w '%{http_code} %{size_download} %{size_header} %{size_request}\n' "${OUTS[@]}" "${URLS[@]}"
stop_server
expect_eq http.curl "$(rc_of curl) $(awk '{print $1, $2}' "$T/curl.out" | sort | uniq -c | tr -s ' ' | tr '\n' '|')" \
    "0  3 200 1000| 2 200 50000| 2 404 $(awk '$1 == 404 {print $2; exit}' "$T/curl.out")|"
"$PERFAGENT" report "$T/curl.pfr" -o "$T/curl.pfr.rep" >/dev/null 2>&1
# the server's stream: the one file whose report has a server role
"$PERFAGENT" report "$T/srv.pfr" -o "$T/srv.pfr.rep" >/dev/null 2>&1
CD=$(one_dir "$T/curl.pfr") SD=$(one_dir "$T/srv.pfr")
# per path: count, statuses, request bytes, response bytes (from curl's -w)
want_ep() {
    awk -v st="$2" -v n="$3" '$1 == st { c++; rq += $4; rs += $2 + $3 } c == n { printf "%d %d %d\n", c, rq, rs; exit }' \
        <(sed -n "$1" "$T/curl.out")
}
ep_line() {
    pyq "$1" "
for e in j['endpoints']:
    if e['role'] == '$2' and e['path'] == '$3':
        print(e['method'], e['count'], e['errors_4xx'], e['errors_5xx'], e['incomplete'],
              ','.join('%s:%d' % s for s in sorted(e['statuses'].items())),
              e['request_bytes'], e['response_bytes'])"
}
for role in client server; do
    dir=$CD; [ $role = server ] && dir=$SD
    read -r c rq rs <<<"$(want_ep 1,3p 200 3)"
    expect_eq http.$role.a "$(ep_line "$dir/http.json" $role /a.bin)" "GET 3 0 0 0 200:3 $rq $rs"
    read -r c rq rs <<<"$(want_ep 4,5p 200 2)"
    expect_eq http.$role.b "$(ep_line "$dir/http.json" $role /b.bin)" "GET 2 0 0 0 200:2 $rq $rs"
    read -r c rq rs <<<"$(want_ep 6,7p 404 2)"
    expect_eq http.$role.missing "$(ep_line "$dir/http.json" $role /missing)" "GET 2 2 0 0 404:2 $rq $rs"
done
sent=$(awk '{s += $4} END {print s}' "$T/curl.out")
recvd=$(awk '{s += $2 + $3} END {print s}' "$T/curl.out")
expect_eq http.client.conns "$(peer_line "$CD/net.json" client)" "tcp 7 7 0 $sent $recvd 7 -"
# the server also answered start_server's readiness probe(s): one 404 each
probes=$(grep -c '"GET /ready' "$T/srv.log")
expect_eq http.server.conns "$(pyq "$SD/net.json" "
p = [p for p in j['peers'] if p['role'] == 'server'][0]
print(p['connections'] - $probes, p['bytes_received'] >= $sent)")" "7 True"
expect_eq http.summary "$(grep '^  http requests:' "$CD/summary.txt")" \
    "  http requests: 7 on 3 endpoints, 2 4xx, 0 5xx"

# 5. HTTP/1.1 keep-alive: one connection, three requests
start_server kas --protocol HTTP/1.1
run ka env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/ka.pfr" curl -s -o /dev/null -o /dev/null -o /dev/null \
    -w '%{http_code} %{num_connects}\n' "http://127.0.0.1:$PORT/a.bin" "http://127.0.0.1:$PORT/b.bin" \
    "http://127.0.0.1:$PORT/missing"
stop_server
"$PERFAGENT" report "$T/ka.pfr" -o "$T/ka.pfr.rep" >/dev/null 2>&1
KD=$(one_dir "$T/ka.pfr")
expect_eq keepalive.curl "$(rc_of ka) $(tr '\n' '|' <"$T/ka.out")" "0 200 1|200 0|404 0|"
expect_eq keepalive.counted "$(pyq "$KD/http.json" "
print(sorted((e['path'], e['count'], e['keep_alive'], e['incomplete']) for e in j['endpoints']))
")|$(peer_line "$KD/net.json" client | cut -d' ' -f2-4)" \
    "[('/a.bin', 1, 0, 0), ('/b.bin', 1, 1, 0), ('/missing', 1, 1, 0)]|1 1 0"

# 6. chunked
PORT=$(free_port)
timeout -k 5 "$TO" env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/chs.pfr" \
    $PY "$PA_ROOT/tests/e2e/lib/chunked_server.py" "$PORT" >"$T/chs.log" 2>&1 &
SRV=$!
for i in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/ready" && break; sleep 0.1; done
run get env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/get.pfr" "$W/net_echo" get "$PORT" /slow
run ch env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/ch.pfr" curl -s -o /dev/null -o /dev/null -o /dev/null \
    -w '%{http_code} %{size_download} %{size_header}\n' "http://127.0.0.1:$PORT/chunked" \
    "http://127.0.0.1:$PORT/chunked?x=1" "http://127.0.0.1:$PORT/other"
stop_server
"$PERFAGENT" report "$T/ch.pfr" -o "$T/ch.pfr.rep" >/dev/null 2>&1
"$PERFAGENT" report "$T/chs.pfr" -o "$T/chs.pfr.rep" >/dev/null 2>&1
expect_eq chunked.curl "$(rc_of ch) $(awk '{print $1, $2}' "$T/ch.out" | tr '\n' '|')" "0 200 2105|200 2105|404 2|"
# on the wire: per response its headers and 64\r\n...\r\n 7d0\r\n...\r\n 5\r\n...\r\n 0\r\n\r\n
raw=$(awk 'NR <= 2 {s += $3 + 2128} END {print s}' "$T/ch.out")
for role in client server; do
    dir=$(one_dir "$T/ch.pfr"); [ $role = server ] && dir=$(one_dir "$T/chs.pfr")
    expect_eq chunked.$role "$(pyq "$dir/http.json" "
print(sorted((e['path'], e['count'], e['incomplete'], e['keep_alive'], e['response_bytes'] if e['path'] == '/chunked' else '-')
             for e in j['endpoints'] if e['role'] == '$role' and e['path'] in ('/chunked', '/other')))")" \
        "[('/chunked', 2, 0, 1, $raw), ('/other', 1, 0, 1, '-')]"
done

# 7. open at exit
run oe env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/oe.pfr" $PY "$PA_ROOT/tests/e2e/lib/open_at_exit.py"
"$PERFAGENT" report "$T/oe.pfr" -o "$T/oe.pfr.rep" >/dev/null 2>&1
expect_eq open_at_exit "$(rc_of oe) $(out_of oe)|$(peer_line "$(one_dir "$T/oe.pfr")/net.json" client)|$(peer_line "$(one_dir "$T/oe.pfr")/net.json" server)" \
    "0 ok 123|tcp 1 0 0 123 0 1 -|tcp 1 0 0 0 123 - -"

# 8. wait time by stack
run slow env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/slow.pfr" "$W/net_echo" slow 3 200
"$PERFAGENT" report "$T/slow.pfr" -o "$T/slow.pfr.rep" >/dev/null 2>&1
d=$(one_dir "$T/slow.pfr")
us=$(awk '/;main;slow;wait_for_reply [0-9]+$/ {s += $NF} END {print s + 0}' "$d/wall.folded" 2>/dev/null)
expect_eq wait.by_stack "$(rc_of slow) $(out_of slow) $( [ "$us" -ge 450000 ] && [ "$us" -le 3600000 ] && echo in-range || echo "$us us") $(test -s "$d/wall.svg" && echo svg)" \
    "0 ok slow=3 in-range svg"
for how in fcntl ioctl; do
    run slow$how env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/slow$how.pfr" "$W/net_echo" slow 3 200 $how
    "$PERFAGENT" report "$T/slow$how.pfr" -o "$T/slow$how.pfr.rep" >/dev/null 2>&1
    d=$(one_dir "$T/slow$how.pfr")
    us=$(awk '/;main;slow;wait_for_reply [0-9]+$/ {s += $NF} END {print s + 0}' "$d/wall.folded" 2>/dev/null)
    expect_eq wait.after_$how "$(rc_of slow$how) $(out_of slow$how) $( [ "$us" -ge 450000 ] && [ "$us" -le 3600000 ] && echo in-range || echo "$us us")" \
        "0 ok slow=3 in-range"
done

# 9. name lookups
run dns env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/dns.pfr" "$W/net_echo" dns 3
"$PERFAGENT" report "$T/dns.pfr" -o "$T/dns.pfr.rep" >/dev/null 2>&1
expect_eq dns.counted "$(rc_of dns) $(out_of dns)|$(pyq "$(one_dir "$T/dns.pfr")/net.json" "
print([(d['host'], d['count'], d['failed'], d['errors'], d['latency_ms'] is not None) for d in j['dns']])")" \
    "0 dns ok=3 last=EAI_SERVICE|[('localhost', 4, 1, {'EAI_SERVICE': 1}, True)]"

# 10. slow requests (the server is section 6's)
"$PERFAGENT" report "$T/get.pfr" -o "$T/get.pfr.rep" >/dev/null 2>&1
slow_of() { sed -n '/^slow requests/,$p' "$1/http.txt" | sed -E 's/ +[0-9.]+ ms  / MS  /; s/127.0.0.1:[0-9]+/ADDR/' |
    awk 'NR == 1 {print; next} /connection made at/ {print (index($0, "at client_connect < http_get <") ? "  at client_connect < http_get" : "  at ?"); next} {print}' | tr '\n' '|'; }
expect_eq slow.client "$(rc_of get) $(out_of get)|$(slow_of "$(one_dir "$T/get.pfr")")" \
    "0 HTTP/1.1 200 OK|slow requests (WARN >= 1000 ms, ERROR >= 3000 ms; PERFAGENT_SLOW_REQUEST_MS): 1|WARN MS  client GET /slow 200 ADDR|  at client_connect < http_get|"
expect_eq slow.server "$(slow_of "$(one_dir "$T/chs.pfr")" | cut -d'|' -f1-3)" \
    "slow requests (WARN >= 1000 ms, ERROR >= 3000 ms; PERFAGENT_SLOW_REQUEST_MS): 1|WARN MS  server GET /slow 200 ADDR|  at ?"
PERFAGENT_SLOW_REQUEST_MS=100,1100 "$PERFAGENT" report "$T/get.pfr" -o "$T/get2.rep" >/dev/null 2>&1
expect_eq slow.limits "$(slow_of "$(one_dir "$T/get2")" | cut -d'|' -f1-2)" \
    "slow requests (WARN >= 100 ms, ERROR >= 1100 ms; PERFAGENT_SLOW_REQUEST_MS): 1|ERROR MS  client GET /slow 200 ADDR"
# 11. pipelining
cat >"$T/pipe.py" <<'PYEOF'
import socket, sys
port, mode = int(sys.argv[1]), sys.argv[2]
paths = ["/a.bin", "/b.bin?x=1", "/missing"]
reqs = [("GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n" % (p, "Connection: close\r\n" if i == 2 else "")).encode()
        for i, p in enumerate(paths)]
s = socket.create_connection(("127.0.0.1", port))
if mode == "one":
    s.sendall(b"".join(reqs))
else:
    for r in reqs:
        s.sendall(r)
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
s.close()
off, out = 0, []
for i, p in enumerate(paths):  # path status request-bytes response-bytes
    end = data.index(b"\r\n\r\n", off) + 4
    head = data[off:end].decode()
    clen = int([l.split(":")[1] for l in head.split("\r\n") if l.lower().startswith("content-length:")][0])
    out.append("%s %s %d %d" % (p.split("?")[0], head.split()[1], len(reqs[i]), end - off + clen))
    off = end + clen
print("|".join(out) + ("|" if off == len(data) else "|trailing bytes"))
PYEOF
# pipe_line HTTP_JSON ROLE : per endpoint path status request response, then
# keep-alive, pipelined, incomplete (a server's readiness probes aside)
pipe_line() {
    pyq "$1" "
v = [e for e in j['endpoints'] if e['role'] == '$2' and e['path'] != '/ready']
print('|'.join('%s %s %d %d' % (e['path'], ','.join(e['statuses']), e['request_bytes'], e['response_bytes'])
               for e in sorted(v, key=lambda e: e['path'])) + '|',
      sum(e['count'] for e in v), sum(e['keep_alive'] for e in v), sum(e['pipelined'] for e in v),
      sum(e['incomplete'] for e in v))" 2>/dev/null
}
# a server each: how "three" reaches the server depends on timing
for m in one three; do
    start_server pips$m --protocol HTTP/1.1
    run pipe$m env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/pipe$m.pfr" $PY "$T/pipe.py" "$PORT" $m
    stop_server
    "$PERFAGENT" report "$T/pipe$m.pfr" -o "$T/pipe$m.pfr.rep" >/dev/null 2>&1
done
"$PERFAGENT" report "$T/pipsone.pfr" -o "$T/pipsone.pfr.rep" >/dev/null 2>&1
want_pipe="$(out_of pipeone) 3 0 2 0"
expect_eq pipeline.program "$(rc_of pipeone) $(rc_of pipethree) $(out_of pipethree)" \
    "0 0 /a.bin 200 $(sed -n 's/^\/a.bin 200 \([0-9]* [0-9]*\)|.*/\1/p' "$T/pipeone.out")|/b.bin 200 $(sed -n 's/.*|\/b.bin 200 \([0-9]* [0-9]*\)|.*/\1/p' "$T/pipeone.out")|/missing 404 $(sed -n 's/.*|\/missing 404 \([0-9]* [0-9]*\)|$/\1/p' "$T/pipeone.out")|"
expect_eq pipeline.client.one "$(pipe_line "$(one_dir "$T/pipeone.pfr")/http.json" client)" "$want_pipe"
expect_eq pipeline.client.three "$(pipe_line "$(one_dir "$T/pipethree.pfr")/http.json" client)" "$want_pipe"
# the server: the readiness probes (404 /ready, one connection each) aside
expect_eq pipeline.server.one "$(pipe_line "$(one_dir "$T/pipsone.pfr")/http.json" server)" "$want_pipe"

# 12. select and pselect
for w in select pselect; do
    run sel$w env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/sel$w.pfr" "$W/net_echo" slow 3 200 $w
    "$PERFAGENT" report "$T/sel$w.pfr" -o "$T/sel$w.pfr.rep" >/dev/null 2>&1
    d=$(one_dir "$T/sel$w.pfr")
    us=$(awk -v f="wait_$w" '$0 ~ ";slow;" f " [0-9]+$" {s += $NF} END {print s + 0}' "$d/wall.folded" 2>/dev/null)
    expect_eq wait.$w "$(rc_of sel$w) $(out_of sel$w) $(pyq "$d/net.json" "print([(w['call'], w['count'], 450 <= w['ms'] <= 3600) for w in j['waits'] if w['call'] in ('select', 'pselect', 'poll')])") $( [ "${us:-0}" -ge 450000 ] && [ "$us" -le 3600000 ] && echo in-range || echo "$us us")" \
        "0 ok slow=3 [('$w', 3, True)] in-range"
done
finish
