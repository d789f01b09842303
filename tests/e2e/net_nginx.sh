#!/usr/bin/env bash
# Socket and HTTP tracing with nginx (Debian's /usr/sbin/nginx, which no one
# here wrote) as the server, traced, and curl as the client, traced:
#  - nginx started the way users run it: a config in $T (-p $T -c
#    $T/nginx.conf), daemon with a master and 2 workers, a pid file, a
#    docroot of known files, listening on a free loopback port, sendfile on
#    (nginx calls sendfile64: its bytes must be seen);
#  - a readiness probe (GET /ready.txt, untraced curl) is taken out of the
#    server's numbers;
#  - curl fetches /index.html x3, /big.bin x2 (300000 bytes) and /missing x2
#    over one kept-alive connection: per path the client's counts,
#    statuses (200, 404) and request / response bytes equal what curl says
#    it sent and received;
#  - the workers' reports together: the same per path on the server side,
#    the same as nginx's own access.log, bytes both ways equal to the
#    client's, the response bytes of /big.bin = 2 x (headers + 300000);
#  - stopped with `nginx -s quit` (SIGQUIT to the master): the master exits,
#    the pid file goes, and each worker's stream ends cleanly (Goodbye);
#  - trace.json of the worker that served: 7 server http spans.
# Fixed check count: every check prints its line whatever fails.
. "$(dirname "$0")/common.bash"
NGINX=${NGINX:-/usr/sbin/nginx}
export PERFAGENT_MALLOC_RATE=0

pyq() { $PY -c "import json,sys
try: j=json.load(open(sys.argv[1]))
except Exception: print('?'); sys.exit()
$2" "$1" 2>/dev/null || echo "?"; }

N=$T/nginx
mkdir -p "$N/www" "$N/logs" "$N/out"
printf '<h1>perfagent</h1>\n' >"$N/www/index.html"
printf 'ready\n' >"$N/www/ready.txt"
head -c 300000 /dev/zero | tr '\0' z >"$N/www/big.bin"
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Workers run as root when the test does (they must write their streams and
# read $T, which is 0700).
{
    [ "$(id -u)" = 0 ] && echo "user root;"
    cat <<EOF
worker_processes 2;
pid $N/nginx.pid;
error_log $N/logs/error.log;
events { worker_connections 64; }
http {
    access_log $N/logs/access.log;
    client_body_temp_path $N/tmp_body;
    proxy_temp_path $N/tmp_proxy;
    fastcgi_temp_path $N/tmp_fastcgi;
    uwsgi_temp_path $N/tmp_uwsgi;
    scgi_temp_path $N/tmp_scgi;
    sendfile on;
    keepalive_requests 100;
    server {
        listen 127.0.0.1:$PORT;
        root $N/www;
    }
}
EOF
} >"$N/nginx.conf"

ngx() { timeout -k 5 "$TO" "$NGINX" -p "$N" -c "$N/nginx.conf" "$@"; }
# a daemon is no job of ours: stop it on any exit (a no-op once stopped)
ngx_kill() { [ -s "$N/nginx.pid" ] && kill -9 "$(cat "$N/nginx.pid")" $WORKERS 2>/dev/null; }
WORKERS=
trap 'ngx_kill; cleanup' EXIT
env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$N/out/ngx.%p.pfr" timeout -k 5 "$TO" \
    "$NGINX" -p "$N" -c "$N/nginx.conf" >"$T/ngx.log" 2>&1
MASTER=$(cat "$N/nginx.pid" 2>/dev/null)
for i in $(seq 100); do
    WORKERS=$(ps --ppid "${MASTER:-1}" -o pid= 2>/dev/null | tr -d ' ' | sort -n | tr '\n' ' ')
    [ "$(wc -w <<<"$WORKERS")" = 2 ] &&
        curl -sf -o /dev/null -w '%{size_request} %{size_header} %{size_download}' "http://127.0.0.1:$PORT/ready.txt" >"$T/probe" && break
    sleep 0.1
done
expect_eq nginx.started "$([ -n "$MASTER" ] && kill -0 "$MASTER" 2>/dev/null && echo master) $(wc -w <<<"$WORKERS")" "master 2"
# the readiness probe (one GET /ready.txt, curl untraced, nginx traced) is
# taken out of the server's numbers below
read -r probe_rq probe_hd probe_body <"$T/probe"

URLS=() OUTS=()
for p in index.html index.html index.html big.bin big.bin missing missing; do
    URLS+=("http://127.0.0.1:$PORT/$p"); OUTS+=(-o /dev/null)
done
run curl env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/curl.pfr" \
    curl -s -w '%{http_code} %{size_download} %{size_header} %{size_request} %{num_connects}\n' "${OUTS[@]}" "${URLS[@]}"
isz=$(stat -c %s "$N/www/index.html")
expect_eq curl.program "$(rc_of curl) $(awk '{print $1, $2}' "$T/curl.out" | uniq -c | tr -s ' ' | tr '\n' '|') $(awk '{c += $5} END {print c}' "$T/curl.out")" \
    "0  3 200 $isz| 2 200 300000| 2 404 $(awk '$1 == 404 {print $2; exit}' "$T/curl.out")| 1"

# stop it the way users do; the master waits for its workers
ngx -s quit 2>>"$T/ngx.log"
for i in $(seq 150); do kill -0 "$MASTER" 2>/dev/null || break; sleep 0.1; done
gone=$(for p in $MASTER $WORKERS; do kill -0 "$p" 2>/dev/null && echo "$p alive"; done)
expect_eq nginx.stopped "${gone:-all exited} $([ -e "$N/nginx.pid" ] && echo pidfile || echo no-pidfile)" "all exited no-pidfile"

"$PERFAGENT" report "$T/curl.pfr" -o "$T/curl.rep" >/dev/null 2>&1
CD=$(ls -d "$T"/curl.rep/*/ 2>/dev/null | head -1)
for w in $WORKERS; do "$PERFAGENT" report "$N/out/ngx.$w.pfr" -o "$T/w$w.rep" >/dev/null 2>&1; done
expect_eq workers.reports "$(for w in $WORKERS; do grep -c '^stream: *ended cleanly (Goodbye' "$T/w$w.rep/$w/summary.txt" 2>/dev/null || echo missing; done | tr '\n' ' ')" "1 1 "

# per path: count statuses request-bytes response-bytes, from curl's -w
want=$(awk '{split("/index.html /index.html /index.html /big.bin /big.bin /missing /missing", p, " ");
    k = p[NR]; n[k]++; st[k] = $1; rq[k] += $4; rs[k] += $2 + $3}
    END {for (k in n) print k, n[k], st[k] ":" n[k], rq[k], rs[k]}' "$T/curl.out" | sort | tr '\n' '|')
# ep_lines ROLE HTTP_JSON... : the same, summed over the files
ep_lines() {
    local role=$1; shift
    $PY - "$role" "$@" <<'PYEOF' 2>/dev/null || echo "?"
import json, sys
role, acc = sys.argv[1], {}
for f in sys.argv[2:]:
    try:
        j = json.load(open(f))
    except Exception:
        continue
    for e in j["endpoints"]:
        if e["role"] != role or e["path"] == "/ready.txt":
            continue
        a = acc.setdefault(e["path"], [0, {}, 0, 0])
        a[0] += e["count"]; a[2] += e["request_bytes"]; a[3] += e["response_bytes"]
        for s, n in e["statuses"].items():
            a[1][s] = a[1].get(s, 0) + n
print("|".join("%s %d %s %d %d" % (p, a[0], ",".join("%s:%d" % kv for kv in sorted(a[1].items())), a[2], a[3])
               for p, a in sorted(acc.items())) + "|")
PYEOF
}
WJ=() WN=()
for w in $WORKERS; do WJ+=("$T/w$w.rep/$w/http.json"); WN+=("$T/w$w.rep/$w/net.json"); done
expect_eq client.endpoints "$(ep_lines client "$CD/http.json")" "$want"
expect_eq server.endpoints "$(ep_lines server "${WJ[@]}")" "$want"
expect_eq server.access_log "$(awk '$7 != "/ready.txt" {print $7, $9}' "$N/logs/access.log" | sort | uniq -c | awk '{printf "%s %s:%s|", $2, $3, $1}')" \
    "$(tr '|' '\n' <<<"$want" | awk 'NF {printf "%s %s|", $1, $3}')"
expect_eq server.big_bytes "$(ep_lines server "${WJ[@]}" | tr '|' '\n' | awk '$1 == "/big.bin" {print $5}')" \
    "$(awk 'NR == 4 || NR == 5 {s += $3 + 300000} END {print s}' "$T/curl.out")"
# bytes both ways: the server's sent = the client's received (+ the
# probe's response), and back (+ the probe's request); the probe's own
# connection
expect_eq bytes "$($PY - "$CD/net.json" "$probe_rq" "$((probe_hd + probe_body))" "${WN[@]}" <<'PYEOF' 2>/dev/null || echo "?"
import json, sys
c = [p for p in json.load(open(sys.argv[1]))["peers"] if p["role"] == "client"]
s = [p for f in sys.argv[4:] for p in json.load(open(f))["peers"] if p["role"] == "server"]
rq, rs = int(sys.argv[2]), int(sys.argv[3])
print(sum(p["connections"] for p in c), sum(p["connections"] for p in s),
      sum(p["bytes_sent"] for p in c) + rq == sum(p["bytes_received"] for p in s),
      sum(p["bytes_received"] for p in c) + rs == sum(p["bytes_sent"] for p in s))
PYEOF
)" "1 2 True True"
# the worker that served: its timeline
served=$(for w in $WORKERS; do pyq "$T/w$w.rep/$w/http.json" "print($w if any(e['path'] == '/index.html' for e in j['endpoints']) else '')"; done | tr -d '\n ')
expect_eq server.trace "$(pyq "$T/w$served.rep/$served/trace.json" "
x = [e for e in j['traceEvents'] if e.get('ph') == 'X' and e['cat'] == 'http' and e['args']['url.path'] != '/ready.txt']
print(len(x), sorted(set((e['args']['perfagent.role'], e['args']['server.port']) for e in x)))")" \
    "7 [('server', $PORT)]"
finish
