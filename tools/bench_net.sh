#!/usr/bin/env bash
# Socket tracing overhead (issue 15; standalone, `make bench` may call it).
#
# A socket-heavy loopback workload no one here wrote: redis-benchmark
# (-t get,set -n N -c 50, one event loop, ~N*2 round trips over 50
# connections) against redis-server (--save "" --appendonly no, a port of
# its own, in a temporary directory).  Three configs, INTERLEAVED round-robin
# (base client server base client server ...) so each sees the same machine:
#   base     no agent
#   client   the agent in redis-benchmark: LD_PRELOAD, PERFAGENT_MALLOC_RATE=0
#            PERFAGENT_CPU_HZ=0 (socket tracing only, which is on by
#            default), a .pfr file
#   server   the same agent in redis-server instead
#   client_shared  (only when asked) the client's agent with
#            PERFAGENT_PRIVATE_FDS=0: its thread shares the program's fd
#            table (agent/fdtable.c), as it did before
# Every run starts its own server and stops it (SIGTERM: redis exits
# normally, so a traced server writes its stream).  The table gives, per
# test, the median requests/s of ROUNDS runs, its spread (min-max) and the
# ratio to base.  Target: >= 0.95x.
#
# Usage: tools/bench_net.sh   Environment: B (build dir, default build),
# BENCH_NET_N (requests per test, default 100000), BENCH_NET_ROUNDS
# (default 5), BENCH_NET_CONFIGS (default "base client server").
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
B=${B:-build}
N=${BENCH_NET_N:-100000}
ROUNDS=${BENCH_NET_ROUNDS:-5}
CONFIGS=${BENCH_NET_CONFIGS:-base client server}
AGENT=$ROOT/$B/libperfagent.so
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
for tool in redis-server redis-benchmark redis-cli; do
    command -v $tool >/dev/null || { echo "bench_net: $tool not installed (Makefile DEB_PKGS)" >&2; exit 2; }
done
[ -f "$AGENT" ] || { echo "bench_net: $AGENT missing: run 'make all' first" >&2; exit 2; }

T=$(mktemp -d /tmp/pa-bench-net.XXXXXX)
SRV=
stop_server() {
    [ -n "$SRV" ] || return 0
    kill -TERM "$SRV" 2>/dev/null
    wait "$SRV" 2>/dev/null
    SRV=
}
trap 'stop_server; rm -rf "$T"' EXIT
AGENT_ENV=(LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=0 PERFAGENT_CPU_HZ=0)

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# one CONFIG ROUND : one run; appends "config test rps" lines to $T/results
one() {
    local cfg=$1 round=$2 port i srv_env=() cli_env=()
    port=$(free_port)
    [ "$cfg" = server ] && srv_env=("${AGENT_ENV[@]}" PERFAGENT_OUTPUT="$T/server.$round.%p.pfr")
    [ "$cfg" = client ] && cli_env=("${AGENT_ENV[@]}" PERFAGENT_OUTPUT="$T/client.$round.%p.pfr")
    [ "$cfg" = client_shared ] &&
        cli_env=("${AGENT_ENV[@]}" PERFAGENT_PRIVATE_FDS=0 PERFAGENT_OUTPUT="$T/client_shared.$round.%p.pfr")
    (cd "$T" && exec env "${srv_env[@]}" redis-server --port "$port" --bind 127.0.0.1 --save "" \
        --appendonly no --dir "$T" --logfile "$T/redis.$cfg.$round.log") &
    SRV=$!
    for i in $(seq 100); do
        redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break
        sleep 0.05
    done
    env "${cli_env[@]}" redis-benchmark -h 127.0.0.1 -p "$port" -q --csv -t get,set -n "$N" -c 50 \
        >"$T/out.$cfg.$round" 2>"$T/err.$cfg.$round"
    stop_server
    # --csv: "test","rps",...: one line per test after the header
    awk -F'","' -v c="$cfg" -v r="$round" 'NR > 1 {gsub(/"/, "", $1); print c, $1, $2, r}' "$T/out.$cfg.$round" >>"$T/results"
}

echo "bench_net: redis-benchmark -t get,set -n $N -c 50 against redis-server, $ROUNDS rounds," \
    "configs interleaved; load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
for r in $(seq "$ROUNDS"); do
    for cfg in $CONFIGS; do one $cfg "$r"; done
done
traced=$(ls "$T"/client.*.pfr 2>/dev/null | wc -l)/$(ls "$T"/server.*.pfr 2>/dev/null | wc -l)
$PY - "$T/results" "$traced" $CONFIGS <<'PYEOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
rps, by_round = {}, {}
for cfg, test, v, rnd in rows:
    rps.setdefault((cfg, test), []).append(float(v))
    by_round[(cfg, test, rnd)] = float(v)
tests = sorted({r[1] for r in rows})
# paired: each round's ratio to the base run of the same round (they ran
# minutes apart at most), then the median and spread of those
def paired(cfg, t):
    rs = [by_round[(cfg, t, r)] / by_round[("base", t, r)] for (c, tt, r) in by_round
          if c == cfg and tt == t and by_round.get(("base", t, r))]
    return sorted(rs)
print("%-8s %-5s %12s %22s %7s %s" % ("config", "test", "median rps", "min-max", "ratio",
                                      "paired per round: median (min-max)"))
worst = None
for cfg in sys.argv[3:]:
    for t in tests:
        v = rps.get((cfg, t), [])
        if not v:
            print("%-8s %-5s %12s" % (cfg, t, "no result"))
            continue
        med = statistics.median(v)
        base = statistics.median(rps.get(("base", t), [0])) or 0
        ratio = med / base if base else float("nan")
        if cfg != "base":
            worst = ratio if worst is None else min(worst, ratio)
        pr = paired(cfg, t) if cfg != "base" else []
        ptxt = "%.3fx (%.3f-%.3f)" % (statistics.median(pr), pr[0], pr[-1]) if pr else ""
        print("%-8s %-5s %12.0f %10.0f-%-11.0f %6.3fx %s" % (cfg, t, med, min(v), max(v), ratio, ptxt))
print("streams written (client/server runs): %s; target >= 0.95x: worst %s" %
      (sys.argv[2], "%.3fx" % worst if worst is not None else "?"))
PYEOF
