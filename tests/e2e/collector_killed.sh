#!/usr/bin/env bash
# The collector goes away (kill -9), stops reading (SIGSTOP) or was never
# there while a traced program runs: the program must finish with the same
# exit status and byte-identical stdout as without the agent, in sane time.
# Each case prints the same lines whether its collector started or not, so
# the check count is fixed.  Every wait is bounded: the program runs under
# timeout, a killed collector is reaped, a stopped one is killed.
. "$(dirname "$0")/common.bash"
require_product "$COLLECTOR"
CK="$PY $PA_ROOT/tests/e2e/lib/checks.py"

# churn: 300 rounds x 20000 ops x 2 threads, 10 ms sleep per round (>= 3 s),
# exit status 3.
CHURN=("$W/churn" 300 20000 10000 2 3)
run base "${CHURN[@]}"
BASE_SECS=$(cat "$T/base.secs")
expect_eq baseline.exit_status "$(rc_of base)" 3
# 300 rounds x 20000 ops x 2 threads
expect_eq baseline.ops "$(sed -n 's/^churn: threads=2 rounds=300 ops=\([0-9]*\) .*/\1/p' "$T/base.out")" 12000000
LIMIT=$(awk -v b="$BASE_SECS" 'BEGIN { printf "%d\n", 4 * b + 15 }')

# start_collector NAME ADDR : start perfagent-collector, wait (at most 10 s)
# until it listens; one line, NAME.collector_started
start_collector() {
    local n=$1 addr=$2 i
    "$COLLECTOR" --listen "$addr" -o "$T/$n.col" >"$T/$n.col.out" 2>"$T/$n.col.err" </dev/null &
    CPID=$!
    case $addr in
    unix:*) wait_for_socket "${addr#unix:}" 10 && { ok "$n.collector_started"; return 0; } ;;
    tcp:*)
        # listening = state 0A in /proc/net/tcp (no probe connection)
        local hex
        hex=$(printf '%04X' "${addr##*:}")
        for ((i = 0; i < 200; i++)); do
            awk -v h=":$hex" '$2 ~ h"$" && $4 == "0A" { f = 1 } END { exit !f }' /proc/net/tcp && { ok "$n.collector_started"; return 0; }
            kill -0 $CPID 2>/dev/null || break
            sleep 0.05
        done ;;
    esac
    fail "$n.collector_started" "collector did not listen on $addr: $(head -c 300 "$T/$n.col.err" | tr '\n' '|')"
    return 1
}

# host_with NAME ADDR SIGNAL : run churn pointed at ADDR; after 0.5 s send
# SIGNAL (KILL or STOP) to the collector.  With a SIGNAL, two lines:
# NAME.killed_mid_run and NAME.collector_alive.
host_with() {
    local n=$1 addr=$2 sig=$3 hpid t0 t1
    t0=$(date +%s.%N)
    timeout -k 5 "$TO" env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_COLLECTOR="$addr" \
        "${CHURN[@]}" >"$T/$n.out" 2>"$T/$n.err" </dev/null &
    hpid=$!
    sleep 0.5
    if [ -n "$sig" ]; then
        if kill -0 "$hpid" 2>/dev/null; then ok "$n.killed_mid_run"; else
            fail "$n.killed_mid_run" "the program had already exited after 0.5 s"; fi
        if kill -"$sig" "$CPID" 2>/dev/null; then ok "$n.collector_alive"; else
            fail "$n.collector_alive" "the collector was gone before kill -$sig"; fi
        [ "$sig" = KILL ] && wait "$CPID" 2>/dev/null
    fi
    wait "$hpid"
    echo $? >"$T/$n.rc"
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{printf "%.2f\n", $2 - $1}' >"$T/$n.secs"
}

check_host() { # NAME
    local n=$1 secs
    secs=$(cat "$T/$n.secs")
    if [ "$(rc_of "$n")" = 124 ] || [ "$(rc_of "$n")" = 137 ]; then
        fail "$n.no_hang" "the program did not finish within ${TO}s (timeout)"
    else
        ok "$n.no_hang"
    fi
    same_output "$n.stdout_and_status" base "$n"
    if awk -v s="$secs" -v l="$LIMIT" 'BEGIN { exit !(s <= l) }'; then ok "$n.sane_time"; else
        fail "$n.sane_time" "took ${secs}s, baseline ${BASE_SECS}s (limit ${LIMIT}s)"; fi
}

# 1. unix socket collector, kill -9 after 0.5 s
start_collector k9 "unix:$T/k9.sock"
host_with k9 "unix:$T/k9.sock" KILL
check_host k9

# 2. tcp collector, kill -9 after 0.5 s
PORT=$((20000 + RANDOM % 20000))
start_collector tcp "tcp:127.0.0.1:$PORT"
host_with tcp "tcp:127.0.0.1:$PORT" KILL
check_host tcp

# 3. a collector that stops reading (SIGSTOP) for the rest of the run:
# the agent must drop, not block the program or its exit
start_collector stop "unix:$T/stop.sock"
host_with stop "unix:$T/stop.sock" STOP
check_host stop
kill -CONT "$CPID" 2>/dev/null
kill -9 "$CPID" 2>/dev/null
wait "$CPID" 2>/dev/null

# 4. no collector at all
host_with none "unix:$T/nobody-listens.sock" ""
check_host none

# 5. control: a live collector gets the whole stream and reports it.  A
# steady load (20 x 5000 ops, 5 ms apart): bursts of 40000 ops every 1 ms
# outran a collector sharing the 2 cores, and the agent dropped rows (as it
# must rather than block the program), which made this control flaky.
# Nothing is lost, so the numbers are churn's own (it prints them).
start_collector live "unix:$T/live.sock"
run live env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_COLLECTOR="unix:$T/live.sock" \
    "$W/churn" 20 5000 5000 2 3
run base_small "$W/churn" 20 5000 5000 2 3
same_output live.stdout_and_status base_small live
for ((i = 0; i < 100; i++)); do
    [ -n "$(proc_dir "$T/live.col" churn)" ] && break
    sleep 0.1
done
kill -TERM "$CPID" 2>/dev/null
for ((i = 0; i < 100; i++)); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.1; done
kill -9 "$CPID" 2>/dev/null
wait "$CPID" 2>/dev/null
d=$(proc_dir "$T/live.col" churn)
if [ -n "$d" ] && [ -f "$d/leaks.json" ]; then ok live.reported; else
    fail live.reported "no churn process with leaks.json in $T/live.col/index.json"; d=$T/none; fi
check_none live.churn_alloc_freed "$d/leaks.json" churn_alloc
check_none live.churn_realloc_freed "$d/leaks.json" churn_realloc
# bytes asked for at each site, as churn counted them (stdout)
expect_eq live.alloc_folded "$($PYQ foldedsite "$d/alloc.folded" churn_alloc 2>&1)" \
    "$(awk '/^churn: thread=/ { sub("bytes=", "", $4); n += $4 } END { print n + 0 }' "$T/base_small.out")" \
    "churn_alloc bytes in alloc.folded$(drop_note "$d/leaks.json")"
expect_eq live.realloc_folded "$($PYQ foldedsite "$d/alloc.folded" churn_realloc 2>&1)" \
    "$(awk '/^churn: thread=/ { sub("realloc_bytes=", "", $6); n += $6 } END { print n + 0 }' "$T/base_small.out")" \
    "churn_realloc bytes in alloc.folded$(drop_note "$d/leaks.json")"
# each worker thread: allocations, bytes, frees as churn counted them
expect_eq live.worker_counts "$($CK exited "$d/summary.txt" 2>&1)" "$($CK churn "$T/base_small.out" 2>&1)" \
    "exited threads' allocations bytes frees$(drop_note "$d/leaks.json")"
expect_eq live.stream "$($CK sum "$d/summary.txt" exit_code drops frees_unknown implied superseded 2>&1)" "3 0 0 0 0" \
    "exit_code drops frees_unknown implied superseded"
finish
