#!/usr/bin/env bash
# `perfagent run` owns its collector, so in exact mode a full buffer waits
# for it (PERFAGENT_WAIT=1, agent/ring.c wait mode) and no row is lost, even
# when the collector is far slower than the program; a standalone collector
# is never waited for beyond the documented bound (README,
# PERFAGENT_BUFFER_KB), and neither is a run's collector that stopped.
#
# The same 14 lines are printed whatever fails; the busy loops, the
# collectors and the programs are bounded by timeouts and killed.
. "$(dirname "$0")/common.bash"
require_product "$COLLECTOR"
CK="$PY $PA_ROOT/tests/e2e/lib/checks.py"

# churn without sleeps: 2 threads x 150 rounds x 20000 ops, ~12 M rows.
CHURN=("$W/churn" 150 20000 0 2)
run plain "${CHURN[@]}"
# The stalled collectors: the same ops with 10 ms sleeps (>= 1.5 s), so the
# program is surely still running when its collector stops.
CHURN_S=("$W/churn" 150 20000 10000 2)
run plain_s "${CHURN_S[@]}"
BASE_SECS=$(cat "$T/plain_s.secs")

# 1. The run's collector is slow: 64 KiB buffers and two busy loops taking
# both CPUs from it.  Without the wait this run lost 5-30% of its rows.
hogs=()
for i in 1 2; do
    (exec timeout 120 sh -c 'while :; do :; done') &
    hogs+=($!)
done
run slow env PERFAGENT_BUFFER_KB=64 "$PERFAGENT" run -o "$T/slow.rep" --malloc-rate 1 --cpu 0 -- "${CHURN[@]}"
kill "${hogs[@]}" 2>/dev/null
wait "${hogs[@]}" 2>/dev/null
same_output slow.output plain slow
d=$(proc_dir "$T/slow.rep" churn); d=${d:-$T/none}
s=$d/summary.txt
expect_eq slow.no_drops "$($CK sum "$s" drops frees_unknown implied superseded 2>&1)" "0 0 0 0" \
    "drops frees_unknown implied superseded"
check_none slow.churn_no_leaks "$d/leaks.json" churn_alloc
expect_eq slow.worker_counts "$($CK exited "$s" 2>&1)" "$($CK churn "$T/plain.out" 2>&1)" \
    "exited threads' allocations bytes frees"
expect_eq slow.alloc_folded "$($PYQ foldedsite "$d/alloc.folded" churn_alloc 2>&1)" \
    "$(awk '/^churn: thread=/ { sub("bytes=", "", $4); n += $4 } END { print n + 0 }' "$T/plain.out")" \
    "churn_alloc bytes in alloc.folded"

# The bound for the two stalled collectors below: the program may lose the
# 20 ms / 100 ms waits of a standalone collector, or one write timeout (2 s)
# for a run's collector, never pace itself to a collector that reads nothing.
LIMIT=$(awk -v b="$BASE_SECS" 'BEGIN { printf "%d\n", 8 * b + 6 }')
bounded() { # NAME SECS
    if awk -v s="$2" -v l="$LIMIT" 'BEGIN { exit !(s <= l) }'; then ok "$1"; else
        fail "$1" "took ${2}s with a collector that reads nothing (plain ${BASE_SECS}s, limit ${LIMIT}s)"; fi
}

# 2. A standalone collector that stops reading (SIGSTOP) once the program
# has connected: the program must not wait for it (drops are counted).
"$COLLECTOR" --listen "unix:$T/stop.sock" -o "$T/stop.col" >"$T/stop.col.out" 2>"$T/stop.col.err" </dev/null &
CPID=$!
if wait_for_socket "$T/stop.sock" 10; then ok stop.collector_started; else
    fail stop.collector_started "no socket: $(head -c 300 "$T/stop.col.err" | tr '\n' '|')"; fi
t0=$(date +%s.%N)
timeout -k 5 "$TO" env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_BUFFER_KB=64 \
    PERFAGENT_LOG=debug PERFAGENT_COLLECTOR="unix:$T/stop.sock" "${CHURN_S[@]}" \
    >"$T/stop.out" 2>"$T/stop.err" </dev/null &
hpid=$!
sleep 0.3
kill -STOP "$CPID" 2>/dev/null
wait "$hpid"
echo $? >"$T/stop.rc"
t1=$(date +%s.%N)
kill -CONT "$CPID" 2>/dev/null
kill -9 "$CPID" 2>/dev/null
wait "$CPID" 2>/dev/null
same_output stop.output plain_s stop
bounded stop.bounded "$(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }')"
# Rows were dropped, not waited for: the agent's own count of full buffers
# it did not wait out (PERFAGENT_LOG=debug).  How many depends on timing.
nw=$(sed -n 's/.*ring full, no wait: \([0-9]*\).*/\1/p' "$T/stop.err" | head -1)
if [ "${nw:-0}" -gt 0 ]; then ok stop.dropped; else
    fail stop.dropped "no 'ring full, no wait' count above 0 in the agent's debug log: ${nw:-none}"; fi

# 3. `perfagent run` itself stopped (its collector reads nothing): the
# program waits at most one write timeout, then drops as with a standalone
# collector.  perfagent cannot reap it while stopped: its end shows as a
# zombie (or as gone).
timeout -k 5 "$TO" env PERFAGENT_BUFFER_KB=64 "$PERFAGENT" run -o "$T/rstop.rep" --malloc-rate 1 --cpu 0 \
    -- "${CHURN_S[@]}" >"$T/rstop.out" 2>"$T/rstop.err" </dev/null &
rpid=$!
sleep 0.3
# timeout's child is perfagent (env execs it), whose child is churn
ppid=$(pgrep -P "$rpid" | head -1)
cpid=$(pgrep -P "${ppid:-0}" | head -1)
t0=$(date +%s.%N)
kill -STOP "${ppid:-0}" 2>/dev/null
for ((i = 0; i < 600; i++)); do
    st=$(ps -o stat= -p "${cpid:-0}" 2>/dev/null)
    case $st in Z* | "") break ;; esac
    sleep 0.05
done
t1=$(date +%s.%N)
kill -CONT "${ppid:-0}" 2>/dev/null
wait "$rpid"
echo $? >"$T/rstop.rc"
if [ -n "$cpid" ]; then ok rstop.started; else fail rstop.started "no child of perfagent run after 0.3 s"; fi
same_output rstop.output plain_s rstop
bounded rstop.bounded "$(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }')"
# perfagent run still reports the process, and counts the rows lost while
# it was stopped (how many depends on timing)
d=$(proc_dir "$T/rstop.rep" churn)
if [ -n "$d" ] && [ -f "$d/summary.txt" ]; then ok rstop.reported; else
    fail rstop.reported "no churn process in $T/rstop.rep/index.json"; d=$T/none; fi
# (a lost connection starts a new stream: one folder per stream, DIR/PID-2...)
lost=0
for f in "$T"/rstop.rep/*/summary.txt; do
    n=$($CK sum "$f" drops 2>/dev/null)
    [ "${n:-0}" -gt 0 ] 2>/dev/null && lost=$((lost + n))
done
if [ "$lost" -gt 0 ]; then ok rstop.dropped; else
    fail rstop.dropped "no drops counted in $T/rstop.rep/*/summary.txt"; fi
finish
