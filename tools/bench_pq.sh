#!/usr/bin/env bash
# libpq tracing overhead (issue 14): `pgbench -S -c 2 -j 2 -T 10` over the
# unix socket of a throwaway PostgreSQL (tests/e2e/lib/pg.bash: initdb in a
# temp dir, no TCP, always stopped), select-only after `pgbench -i`.
#
# Configs, interleaved round-robin (the order rotated every round, so that
# all of them share the machine's ups and downs), median of the rounds:
#   base     pgbench alone
#   pq       LD_PRELOAD agent, libpq tracing only (PERFAGENT_MALLOC_RATE=0
#            PERFAGENT_CPU_HZ=0 PERFAGENT_NET=0: socket tracing, on by
#            default, would hook the same send/recv calls), writing a .pfr
#   default  LD_PRELOAD agent with its defaults (sampled heap, CPU sampling,
#            libpq and socket tracing), writing a .pfr
# The table: median TPS (pgbench's "without initial connection time"), its
# ratio to base's median (target >= 0.97 for pq), min-max, the per-round
# ratios (each against the base run of the same round), the spread of
# base's own runs (the noise floor), and pgbench's own CPU time (user + sys)
# per transaction with its ratio: on a loaded machine TPS moves with the
# other jobs, the client's CPU per transaction much less.  Then a check that the agent traced
# every transaction: the SELECT's calls in the last pq run's queries.json
# against pgbench's "actually processed".
#
# Then, with valgrind, the agent's cost in instructions, which the machine's
# load does not move: a C client (compiled here) sends N pgbench -S
# queries (PQsendQuery + PQgetResult, as pgbench) under callgrind, with
# the agent (libpq tracing only) and without; the marginal instructions a
# query ((run of 2N - run of N) / N) in the client's own thread, where the
# hooks run (the agent's sender thread is left out: under valgrind its
# rounds follow the clock, not the queries).  Modes: same (one text),
# distinct (pgbench's: the id varies), prepared (PQsendQueryPrepared).
#
# Standalone (`make bench` calls it): tools/bench_pq.sh [B=build dir]
# Environment: BENCH_PQ_T (seconds per run, 10), BENCH_PQ_ROUNDS (5),
# BENCH_PQ_CONFIGS ("base pq default"), BENCH_PQ_IR (queries N for the
# instruction counts, 2000; 0: skip them), B (build dir, "build").
set -u
cd "$(dirname "$0")/.."
B=${B:-build}
SECS=${BENCH_PQ_T:-10}
ROUNDS=${BENCH_PQ_ROUNDS:-5}
CONFIGS=(${BENCH_PQ_CONFIGS:-base pq default})
AGENT=$PWD/$B/libperfagent.so
PERFAGENT=$PWD/$B/perfagent
PY=${PY:-python3}
for f in "$AGENT" "$PERFAGENT"; do
    [ -e "$f" ] || { echo "bench_pq: $f missing: run 'make all' first" >&2; exit 2; }
done
command -v pgbench >/dev/null || { echo "bench_pq: no pgbench" >&2; exit 2; }

T=$(mktemp -d /tmp/bench_pq.XXXXXX)
cleanup() { rm -rf "$T"; }
source tests/e2e/lib/pg.bash # pg_start installs the trap: pg_stop, then cleanup
PORT=$((56000 + $$ % 1000))
if ! pg_start "$T/pg" "$PORT"; then
    echo "bench_pq: the server did not start" >&2
    pg_stop
    cleanup
    exit 1
fi
PGB=(pgbench -h "$PG_SOCK" -p "$PORT" -U postgres)
"${PGB[@]}" -i -s 1 -q postgres >"$T/init.out" 2>&1 || { cat "$T/init.out" >&2; exit 1; }

# run CONFIG ROUND: one pgbench run; its output in $T/CONFIG.ROUND.out
run() {
    local cfg=$1 r=$2 out=$T/$1.$2
    local cmd=("${PGB[@]}" -n -S -c 2 -j 2 -T "$SECS" postgres)
    local TIMEFORMAT='%U %S' # bash's time: pgbench's user and system CPU seconds
    {
        time case $cfg in
        base) "${cmd[@]}" ;;
        pq) env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=0 PERFAGENT_CPU_HZ=0 PERFAGENT_NET=0 \
                PERFAGENT_OUTPUT="$out.pfr" "${cmd[@]}" ;;
        default) env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$out.pfr" "${cmd[@]}" ;;
        *) echo "unknown config $cfg" >&2; return 1 ;;
        esac >"$out.out" 2>&1
    } 2>"$out.cpu"
    echo "$cfg $r $(sed -n 's/^tps = \([0-9.]*\) (without.*/\1/p' "$out.out")" \
        "$(sed -n 's/.*actually processed: \([0-9]*\).*/\1/p' "$out.out") $(tail -1 "$out.cpu")" >>"$T/tps"
}

echo "bench_pq: pgbench -S -c 2 -j 2 -T $SECS, $ROUNDS rounds of: ${CONFIGS[*]}"
echo "bench_pq: load before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
: >"$T/tps"
n=${#CONFIGS[@]}
for ((r = 1; r <= ROUNDS; r++)); do
    for ((k = 0; k < n; k++)); do
        run "${CONFIGS[$(((k + r - 1) % n))]}" "$r"
    done
done
echo "bench_pq: load after:  $(cut -d' ' -f1-3 /proc/loadavg)"

$PY - "$T/tps" "${CONFIGS[@]}" <<'EOF'
import statistics, sys
rows, cpu = {}, {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) == 6:  # config round tps transactions user sys
        rows.setdefault(f[0], {})[int(f[1])] = float(f[2])
        if int(f[3]):
            cpu.setdefault(f[0], {})[int(f[1])] = (float(f[4]) + float(f[5])) / int(f[3]) * 1e6
    else:
        rows.setdefault(f[0], {})[int(f[1])] = None
base = rows.get("base", {})
bmed = statistics.median([v for v in base.values() if v]) if any(base.values()) else None
bcpu = statistics.median(cpu["base"].values()) if cpu.get("base") else None
print("%-8s %10s %7s %21s  %-36s %9s %7s" % ("config", "median tps", "ratio", "min-max tps",
      "per-round tps ratio (vs its base)", "CPU us/tx", "ratio"))
for cfg in sys.argv[2:]:
    v = rows.get(cfg, {})
    ok = [x for x in v.values() if x]
    if not ok:
        print("%-8s %10s   (no tps: see its .out)" % (cfg, "-"))
        continue
    med = statistics.median(ok)
    per = ["%.3f" % (v[r] / base[r]) if v.get(r) and base.get(r) else "-" for r in sorted(v)]
    c = statistics.median(cpu[cfg].values()) if cpu.get(cfg) else None
    print("%-8s %10.0f %7s %10.0f-%-10.0f  %-36s %9s %7s" % (cfg, med,
          "%.3fx" % (med / bmed) if bmed else "-", min(ok), max(ok), " ".join(per),
          "%.1f" % c if c else "-", "%.3fx" % (c / bcpu) if c and bcpu else "-"))
if bmed and len([x for x in base.values() if x]) > 1:
    ok = [x for x in base.values() if x]
    print("base spread: %.1f%% (max-min over median); CPU us/tx: pgbench's user+sys CPU per"
          " transaction (median), the client's cost whatever the machine's load" %
          (100 * (max(ok) - min(ok)) / bmed))
EOF

# Did the agent see every transaction?  (-S: one SELECT per transaction)
last=$T/pq.$ROUNDS
if [ -e "$last.pfr" ] || ls "$last".pfr* >/dev/null 2>&1; then
    "$PERFAGENT" report -o "$T/rep" "$last".pfr* >/dev/null 2>&1
    d=$(ls -d "$T"/rep/*/ 2>/dev/null | head -1)
    calls=$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(q["calls"] for q in d["queries"] if q["query"].startswith("SELECT abalance")))' "$d/queries.json" 2>/dev/null)
    ev=$(awk '$1 == "events" && $2 == "lost:" {print $3; exit}' "$d/summary.txt" 2>/dev/null)
    echo "bench_pq: last pq run: pgbench processed $(sed -n 's/.*actually processed: \([0-9]*\).*/\1/p' "$last.out") transactions, queries.json has ${calls:-none} SELECT calls, ${ev:-?} events dropped (event ring full)"
fi

# Instructions a query (see the top): callgrind, client thread only.
IR_N=${BENCH_PQ_IR:-2000}
if [ "$IR_N" != 0 ] && command -v valgrind >/dev/null; then
    cat >"$T/irq.c" <<'CEOF'
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* irq SOCKDIR PORT MODE N: N pgbench -S queries; MODE same, distinct, prepared */
int main(int argc, char **argv)
{
    char ci[512], q[128], v[16];
    const char *vals[1] = {v};
    int n = argc > 4 ? atoi(argv[4]) : 0, prep = argc > 3 && !strcmp(argv[3], "prepared");
    PGconn *c;
    if (argc < 5)
        return 2;
    snprintf(ci, sizeof(ci), "host=%s port=%s user=postgres dbname=postgres", argv[1], argv[2]);
    c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK)
        return 1;
    if (prep)
        PQclear(PQprepare(c, "s", "SELECT abalance FROM pgbench_accounts WHERE aid = $1", 1, NULL));
    for (int i = 0; i < n; i++) {
        PGresult *r;
        int aid = !strcmp(argv[3], "same") ? 4711 : 1 + (i * 7919) % 100000;
        snprintf(v, sizeof(v), "%d", aid);
        snprintf(q, sizeof(q), "SELECT abalance FROM pgbench_accounts WHERE aid = %d;", aid);
        if (!(prep ? PQsendQueryPrepared(c, "s", 1, vals, NULL, NULL, 0) : PQsendQuery(c, q)))
            return 1;
        while ((r = PQgetResult(c)))
            PQclear(r);
    }
    PQfinish(c);
    return 0;
}
CEOF
    if ${CC:-cc} -O2 -o "$T/irq" "$T/irq.c" $(pkg-config --cflags --libs libpq) 2>"$T/irq.err"; then
        # ir MODE N [AGENT]: instructions of the client's main thread
        ir() {
            rm -f "$T/cg.out"*
            env ${3:+LD_PRELOAD=$3} PERFAGENT_MALLOC_RATE=0 PERFAGENT_CPU_HZ=0 PERFAGENT_NET=0 \
                PERFAGENT_OUTPUT="$T/ir.pfr" valgrind --tool=callgrind --separate-threads=yes \
                --callgrind-out-file="$T/cg.out" "$T/irq" "$PG_SOCK" "$PORT" "$1" "$2" >/dev/null 2>&1
            awk '/^summary:|^totals:/ {print $2; exit}' "$T/cg.out-01" 2>/dev/null
            rm -f "$T/cg.out"* "$T/ir.pfr"*
        }
        echo "bench_pq: instructions a query (callgrind, client thread, marginal over $IR_N queries):"
        for m in same distinct prepared; do
            b1=$(ir $m "$IR_N") b2=$(ir $m $((2 * IR_N)))
            a1=$(ir $m "$IR_N" "$AGENT") a2=$(ir $m $((2 * IR_N)) "$AGENT")
            if [ -n "$b1" ] && [ -n "$b2" ] && [ -n "$a1" ] && [ -n "$a2" ]; then
                printf '  %-9s client alone %6d, with the agent %6d: the agent %6d\n' "$m" \
                    $(((b2 - b1) / IR_N)) $(((a2 - a1) / IR_N)) $(((a2 - a1 - b2 + b1) / IR_N))
            else
                echo "  $m: a callgrind run failed"
            fi
        done
    else
        echo "bench_pq: the instruction counts' client did not build: $(head -c 200 "$T/irq.err")"
    fi
fi
