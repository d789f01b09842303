#!/usr/bin/env bash
# Real servers nobody here wrote, and real clients against them, all under
# the agent with every feature on: exact heap (PERFAGENT_MALLOC_RATE=1), CPU
# sampling at 999 Hz, libpq and socket tracing at their default (on); file
# output into the temp dir.  Each server is started and stopped the way its
# users do it, on a free loopback port or a socket in the temp dir:
#  1. python3 -m http.server, curl against it; stopped with SIGINT (^C)
#  2. PostgreSQL 15: `pg_ctl start` with the agent in its environment (the
#     postmaster and every backend, checkpointer, walwriter... it forks),
#     psql -c and pgbench (2 clients on 2 threads) against it, both traced;
#     stopped with `pg_ctl stop -m fast`
#  3. nginx (daemon: a master and 2 workers), curl against it; stopped with
#     `nginx -s quit`
#  4. redis-server (jemalloc underneath the agent), redis-benchmark -n 2000
#     and redis-cli against it; stopped with `redis-cli shutdown nosave`
# Clients: stdout and exit status byte-identical to the same command run
# without the agent (where the output has timings, the part without them).
# Servers: they serve, stop when told, exit 0, and every process they
# started has a report whose stream ended cleanly (Goodbye) or by exec,
# with nothing dropped.  Every wait is bounded; the same lines print
# whatever fails (a fixed check count).
. "$(dirname "$0")/common.bash"
source "$(dirname "$0")/lib/pg.bash"
require_product
CK="$PY $PA_ROOT/tests/e2e/lib/checks.py"
export LC_ALL=C TZ=UTC HOME=$T
AG=(env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_CPU_HZ=999)
chmod 755 "$T"          # the postgres user writes its streams below it

freeport() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# tools NAME PROG... : one line, NAME.tools: the programs are installed
tools() {
    local n=$1 t missing=; shift
    for t in "$@"; do command -v "$t" >/dev/null 2>&1 || [ -x "$t" ] || missing="$missing $t"; done
    if [ -z "$missing" ]; then ok "$n.tools"; else
        fail "$n.tools" "not installed:$missing; run 'make deps' (the Makefile's DEB_PKGS)"; fi
}
# client NAME CMD... : CMD without and with the agent (its streams in
# $T/NAME/); one line, NAME.stdout_and_status
client() {
    local n=$1; shift
    run "base_$n" "$@"
    mkdir -p "$T/$n"
    run "$n" "${AG[@]}" PERFAGENT_OUTPUT="$T/$n/%e.%p.pfr" "$@"
    same_output "$n.stdout_and_status" "base_$n" "$n"
}
# streams NAME DIR WANT : report DIR/*.pfr into DIR.rep; one line,
# NAME.streams: `checks.py streams` (EXE exit=C lost=D/U/I/S, sorted;
# edited by the sed script SED when set)
streams() {
    local n=$1 dir=$2 got
    if timeout -k 5 "$TO" "$PERFAGENT" report "$dir"/*.pfr -o "$dir.rep" >"$dir.report.log" 2>&1; then
        got=$($CK streams "$dir.rep/index.json" 2>&1 | tr ';' '\n' | sed "${SED:-}" | paste -sd';')
    else
        got="perfagent report failed: $(head -c 200 "$dir.report.log" | tr '\n' '|')"
    fi
    expect_eq "$n.streams" "$got" "$3" "EXE exit=CODE lost=drops/unknown/implied/superseded"
}
# ended NAME DIR : for servers whose process set depends on timing: one
# line, NAME.streams_ended: "N processes, 0 cut, 0 lost" (N: at least MIN)
ended() {
    local n=$1 dir=$2 min=$3 got np cut lost
    timeout -k 5 "$TO" "$PERFAGENT" report "$dir"/*.pfr -o "$dir.rep" >"$dir.report.log" 2>&1
    got=$($CK streams "$dir.rep/index.json" 2>/dev/null | tr ';' '\n')
    np=$(grep -c . <<<"$got")
    cut=$(grep -vc ' exit=-\?[0-9][0-9]* ' <<<"$got")
    lost=$(grep -vcE ' lost=0/(0|f)/0/0$' <<<"$got")
    expect_eq "$n.streams_ended" "$([ "$np" -ge "$min" ] && echo ">=$min") processes, $cut cut, $lost lost" \
        ">=$min processes, 0 cut, 0 lost" "$(echo "$got" | sort | uniq -c | tr -s ' ' | tr '\n' '|')"
}
# waitpid_for PID SECONDS : wait for a background job of ours at most
# SECONDS; WST = its exit status, or "alive" (then it is killed)
waitpid_for() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        # a zombie still answers kill -0: ps says Z
        if ! kill -0 "$1" 2>/dev/null || [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" = Z ]; then
            wait "$1"; WST=$?; return
        fi
        sleep 0.1
    done
    kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null
    WST=alive
}
# gone PID... : "gone" when none of the PIDs runs any more (at most 15 s)
gone() {
    local i p alive
    for ((i = 0; i < 150; i++)); do
        alive=
        # (0, a pid not known, stands for nothing: not our process group)
        for p in "$@"; do [ "$p" != 0 ] && kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
        [ -z "$alive" ] && { echo gone; return; }
        sleep 0.1
    done
    echo "still running:$alive"
}
# rep N LINE : LINE N times, ";"-joined
rep() { local i out=$2; for ((i = 1; i < $1; i++)); do out="$out;$2"; done; echo "$out"; }
# until_ok SECONDS CMD... : run CMD (quietly) until it succeeds
until_ok() {
    local i s=$1; shift
    for ((i = 0; i < s * 10; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}

# ---- 1. python3 -m http.server, curl
tools http "$PY" curl
WWW=$T/www; mkdir -p "$WWW" "$T/httpd"
$PY -c 'import sys, random; r = random.Random(3); sys.stdout.write("".join("%d\n" % r.randrange(10**9) for _ in range(40000)))' >"$WWW/big.txt"
printf 'hello\n' >"$WWW/index.txt"
HPORT=$(freeport)
timeout -k 5 "$TO" "${AG[@]}" PERFAGENT_OUTPUT="$T/httpd/%e.%p.pfr" \
    "$PY" -m http.server --bind 127.0.0.1 --directory "$WWW" "$HPORT" >"$T/httpd.log" 2>&1 &
HPID=$!
until_ok 20 curl -sf "http://127.0.0.1:$HPORT/index.txt"
U=http://127.0.0.1:$HPORT
client curl_http curl -s -w '%{http_code} %{size_download}\n' "$U/index.txt" "$U/big.txt" "$U/index.txt"
# -f: a 404 is exit status 22
client curl_404 curl -sf "$U/missing.txt"
expect_eq curl_http.exit_status "$(rc_of curl_http) $(rc_of curl_404)" "0 22"
# ^C: SIGINT to python itself (timeout, which exits with python's status,
# would pass it on to python twice: to it and to its process group, and a
# second one landing in the first one's handling makes the exit 130)
kill -INT "$(ps --ppid "$HPID" -o pid= 2>/dev/null | tr -d ' ' | head -1)" 2>/dev/null
waitpid_for "$HPID" 20
expect_eq httpd.stopped_by_sigint "$WST" 0 "exit status of python3 -m http.server after SIGINT"
PYEXE=$(basename "$(readlink -f "$PY")")
streams httpd "$T/httpd" "$PYEXE exit=0 lost=0/0/0/0"
streams curl_http "$T/curl_http" "curl exit=0 lost=0/0/0/0"

# ---- 2. PostgreSQL, the server under the agent
tools pg "$PG_BIN/postgres" "$PG_BIN/initdb" psql pgbench
PGPORT=$((20000 + RANDOM % 20000))
PGD=$T/pg PG_SOCK=$T/pg/sock
mkdir -p "$PGD/sock" "$T/pgsrv"
chown -R postgres "$PGD" "$T/pgsrv" 2>/dev/null
pg_as "$PG_BIN/initdb" -D "$PGD/data" -U postgres --auth=trust -E UTF8 --no-sync >"$PGD/initdb.log" 2>&1
PG_DIR=$PGD
trap 'pg_stop; cleanup' EXIT
# how users start it, with the agent in pg_ctl's environment: pg_ctl, the
# shell it starts the postmaster with, the postmaster and all it forks
pg_as "${AG[@]}" PERFAGENT_OUTPUT="$T/pgsrv/%e.%p.pfr" "$PG_BIN/pg_ctl" -D "$PGD/data" -l "$PGD/server.log" -w -t 60 \
    -o "-k $PG_SOCK -p $PGPORT -c listen_addresses= -c fsync=off" start >"$T/pgstart.log" 2>&1
expect_eq pg.started "$? $(pg_as "$PG_BIN/pg_ctl" -D "$PGD/data" status >/dev/null 2>&1 && echo running)" "0 running" \
    "$(tail -3 "$PGD/server.log" 2>/dev/null | tr '\n' '|')"
PSQL=(psql -X -A -t -h "$PG_SOCK" -p "$PGPORT" -U postgres -d postgres)
timeout -k 5 "$TO" pgbench -i -s 1 -q -h "$PG_SOCK" -p "$PGPORT" -U postgres postgres >"$T/pgbench_init.log" 2>&1
client psql "${PSQL[@]}" -c "SELECT count(*), sum(abalance), min(aid), max(aid) FROM pgbench_accounts" \
    -c "CREATE TEMP TABLE t AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 5000) g" \
    -c "SELECT count(*), min(h), max(h) FROM t" -c "SELECT 1/0"
# the error is on stderr and makes psql's exit status 1; the 4 statements
# are in its libpq report (one of them with an error)
expect_eq psql.queries "$($PY - "$T/psql" "$PERFAGENT" <<'PYEOF' 2>&1
import glob, json, os, subprocess, sys
d = sys.argv[1] + ".q"
subprocess.run([sys.argv[2], "report", "-o", d] + glob.glob(sys.argv[1] + "/*.pfr"), capture_output=True)
qs = [q for f in glob.glob(d + "/*/queries.json") for q in json.load(open(f))["queries"]]
print(len(qs), sum(q["calls"] for q in qs), sum(q["errors"] for q in qs))
PYEOF
)" "4 4 1" "normalized queries, calls, errors in psql's queries.json"
# pgbench: select-only, 2 clients on 2 threads x 100 transactions; its
# report has timings: the processed count and the status are compared
run base_pgbench pgbench -n -S -t 100 -c 2 -j 2 -h "$PG_SOCK" -p "$PGPORT" -U postgres postgres
mkdir -p "$T/pgbench"
run pgbench "${AG[@]}" PERFAGENT_OUTPUT="$T/pgbench/%e.%p.pfr" pgbench -n -S -t 100 -c 2 -j 2 -h "$PG_SOCK" -p "$PGPORT" -U postgres postgres
tx() { echo "$(rc_of "$1") $(grep -o 'number of transactions actually processed: [0-9/]*' "$T/$1.out")"; }
expect_eq pgbench.processed "$(tx pgbench)" "$(tx base_pgbench)" "exit status and processed count; plain run: $(tx base_pgbench)"
expect_eq pgbench.queries "$($PY - "$T/pgbench" "$PERFAGENT" <<'PYEOF' 2>&1
import glob, json, os, subprocess, sys
d = sys.argv[1] + ".q"
subprocess.run([sys.argv[2], "report", "-o", d] + glob.glob(sys.argv[1] + "/*.pfr"), capture_output=True)
qs = [q for f in glob.glob(d + "/*/queries.json") for q in json.load(open(f))["queries"]]
print(sum(q["calls"] for q in qs if q["query"].startswith("SELECT abalance FROM pgbench_accounts")))
PYEOF
)" 200 "SELECT abalance calls in pgbench's queries.json (2 x 100)"
PGPID=$(head -1 "$PGD/data/postmaster.pid" 2>/dev/null)
PGKIDS=$(ps --ppid "${PGPID:-1}" -o pid= 2>/dev/null | tr -d ' ' | tr '\n' ' ')
pg_as timeout -k 5 60 "$PG_BIN/pg_ctl" -D "$PGD/data" -m fast -w -t 50 stop >"$T/pgstop.log" 2>&1
expect_eq pg.stopped "$? $(gone ${PGPID:-0} $PGKIDS) $([ -e "$PGD/data/postmaster.pid" ] && echo pidfile || echo no-pidfile)" \
    "0 gone no-pidfile" "$(tail -3 "$PGD/server.log" 2>/dev/null | tr '\n' '|')"
PG_DIR=
# the processes: pg_ctl, the shell it starts, the postmaster, checkpointer,
# background writer, walwriter, autovacuum launcher, logical replication
# launcher, a backend per connection (psql x1, pgbench -i, pgbench x2...),
# and autovacuum workers when their time comes: at least 12
ended pg_server "$T/pgsrv" 12
expect_eq pg_server.postmaster "$($CK streams "$T/pgsrv.rep/index.json" 2>&1 | tr ';' '\n' | grep -c '^postgres exit=0 lost=0/0/0/0$')" 2 \
    "postgres streams that are no fork copy, ended with exit 0: the postmaster and pg_ctl's 'postgres -V'"
# Debian's psql and pgbench are pg_wrapper, a perl script that execs them
streams psql "$T/psql" "perl exit=-1 lost=0/0/0/0;psql exit=1 lost=0/0/0/0"
streams pgbench "$T/pgbench" "perl exit=-1 lost=0/0/0/0;pgbench exit=0 lost=0/0/0/0"
# One connection seen from both ends: the bytes psql sent and received on
# it are what the backend that served it (a fork child of the postmaster,
# which accepted the connection) received and sent.
expect_eq pg_server.backend_bytes "$($PY - "$T/psql.rep" "$T/pgsrv.rep" <<'PYEOF' 2>&1
import glob, json, sys
def peers(rep, role):
    out = []
    for f in glob.glob(rep + "/*/net.json"):
        for p in json.load(open(f))["peers"]:
            if p["role"] == role and p["transport"] == "unix":
                out.append((p["bytes_sent"], p["bytes_received"], p["connections"]))
    return out
cli = [c for c in peers(sys.argv[1], "client") if c[0]]
srv = peers(sys.argv[2], "server")
print(len(cli), "found" if cli and (cli[0][1], cli[0][0], 1) in srv else "missing %s in %s" % (cli, srv))
PYEOF
)" "1 found" "psql's (sent, received) as a backend's (received, sent)"

# ---- 3. nginx: a master and 2 workers
NGINX=${NGINX:-/usr/sbin/nginx}
tools nginx "$NGINX" curl
N=$T/nginx; mkdir -p "$N/www" "$N/logs" "$T/ngx"
cp "$WWW/big.txt" "$WWW/index.txt" "$N/www/"
NPORT=$(freeport)
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
    server { listen 127.0.0.1:$NPORT; root $N/www; }
}
EOF
} >"$N/nginx.conf"
timeout -k 5 "$TO" "${AG[@]}" PERFAGENT_OUTPUT="$T/ngx/%e.%p.pfr" "$NGINX" -p "$N" -c "$N/nginx.conf" >"$T/ngx.log" 2>&1
expect_eq nginx.daemonized "$?" 0 "$(head -c 200 "$T/ngx.log" | tr '\n' '|')"
MASTER=$(cat "$N/nginx.pid" 2>/dev/null)
WORKERS=
for i in $(seq 100); do
    WORKERS=$(ps --ppid "${MASTER:-1}" -o pid= 2>/dev/null | tr -d ' ' | tr '\n' ' ')
    [ "$(wc -w <<<"$WORKERS")" = 2 ] && curl -sf -o /dev/null "http://127.0.0.1:$NPORT/index.txt" && break
    sleep 0.1
done
trap '[ -n "$MASTER" ] && kill -9 $MASTER $WORKERS 2>/dev/null; cleanup' EXIT
expect_eq nginx.started "$([ -n "$MASTER" ] && kill -0 "$MASTER" 2>/dev/null && echo master) $(wc -w <<<"$WORKERS")" "master 2"
U=http://127.0.0.1:$NPORT
client curl_nginx curl -s -w '%{http_code} %{size_download}\n' "$U/index.txt" "$U/big.txt" "$U/nothing" "$U/big.txt"
timeout -k 5 20 "$NGINX" -p "$N" -c "$N/nginx.conf" -s quit >>"$T/ngx.log" 2>&1
expect_eq nginx.stopped "$(gone ${MASTER:-0} $WORKERS) $([ -e "$N/nginx.pid" ] && echo pidfile || echo no-pidfile)" "gone no-pidfile"
MASTER=
# the process nginx started as (exits 0 once the daemon runs), the master
# (its fork copy) and the two workers (the master's).  When the master's
# stream begins after its parent has exited (ppid 1), checks.py cannot tell
# it is a fork copy: its frees of inherited blocks then show as a number
# (~2000) instead of "f"; the frees of unknown blocks are not compared here
SED='s/^nginx exit=0 lost=0\/\([0-9][0-9]*\|f\)\/0\/0$/nginx exit=0 lost=0\/N\/0\/0/' \
    streams nginx "$T/ngx" "$(rep 4 "nginx exit=0 lost=0/N/0/0")"
streams curl_nginx "$T/curl_nginx" "curl exit=0 lost=0/0/0/0"

# ---- 4. redis-server (jemalloc) with redis-benchmark and redis-cli
tools redis redis-server redis-benchmark redis-cli
RPORT=$(freeport)
mkdir -p "$T/redis" "$T/rdata"
timeout -k 5 "$TO" "${AG[@]}" PERFAGENT_OUTPUT="$T/redis/%e.%p.pfr" \
    redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$T/rdata" --daemonize no \
    >"$T/redis.log" 2>&1 &
RPID=$!
until_ok 20 redis-cli -p "$RPORT" ping
expect_eq redis.started "$(redis-cli -p "$RPORT" ping 2>&1) $(grep -o 'malloc=[a-z]*' <<<"$(redis-server --version)")" "PONG malloc=jemalloc"
# redis-benchmark: its lines have rates; the tests it ran and its status
# are compared
run base_rbench redis-benchmark -p "$RPORT" -n 2000 -c 10 -t set,get,incr,lpush,lrange -q
mkdir -p "$T/rbench"
run rbench "${AG[@]}" PERFAGENT_OUTPUT="$T/rbench/%e.%p.pfr" redis-benchmark -p "$RPORT" -n 2000 -c 10 -t set,get,incr,lpush,lrange -q
tests_of() { echo "$(rc_of "$1") $(tr '\r' '\n' <"$T/$1.out" | grep -o '^[A-Z_0-9 ()]*: [0-9.]* requests per second' | sed 's/: .*//' | tr '\n' ',')"; }
expect_eq rbench.tests "$(tests_of rbench)" "$(tests_of base_rbench)" "exit status, the tests reported"
redis-cli -p "$RPORT" del k l >/dev/null 2>&1
client rcli redis-cli -p "$RPORT" eval "redis.call('set','k','v1'); for i=1,500 do redis.call('rpush','l',i) end; return {redis.call('get','k'), redis.call('llen','l'), redis.call('del','l')}" 0
redis-cli -p "$RPORT" del k l >/dev/null 2>&1
# stopped the way its users stop it
timeout -k 5 20 redis-cli -p "$RPORT" shutdown nosave >"$T/rshut.log" 2>&1
waitpid_for "$RPID" 20
expect_eq redis.stopped "$WST" 0 "redis-server's exit status after SHUTDOWN NOSAVE"
# Debian's redis-server is a link to redis-check-rdb (one binary)
streams redis "$T/redis" "redis-check-rdb exit=0 lost=0/0/0/0"
d=$(proc_dir "$T/redis.rep" redis-check-rdb)
expect_eq redis.allocations "$([ "$($PYQ folded "${d:-$T/none}/alloc.folded" 2>/dev/null || echo 0)" -gt 0 ] 2>/dev/null && echo some)" some \
    "redis-server's allocations (through jemalloc's malloc) are recorded"
streams rbench "$T/rbench" "redis-benchmark exit=0 lost=0/0/0/0"
streams rcli "$T/rcli" "redis-cli exit=0 lost=0/0/0/0"
finish
