#!/usr/bin/env bash
# The collector goes away (kill -9), stops reading (SIGSTOP) or was never
# there while a traced program runs: the program must finish with the same
# exit status and byte-identical stdout as without the agent, in sane time.
. "$(dirname "$0")/common.bash"
require_product "$COLLECTOR"

# churn: 300 rounds x 20000 ops x 2 threads, 10 ms sleep per round (>= 3 s),
# exit status 3.
CHURN=("$W/churn" 300 20000 10000 2 3)
run base "${CHURN[@]}"
BASE_SECS=$(cat "$T/base.secs")
expect_eq baseline.exit_status "$(rc_of base)" 3
LIMIT=$(awk -v b="$BASE_SECS" 'BEGIN { printf "%d\n", 4 * b + 15 }')

# start_collector NAME ADDR : start perfagent-collector, wait until it listens
start_collector() {
    local n=$1 addr=$2 i
    "$COLLECTOR" --listen "$addr" -o "$T/$n.col" >"$T/$n.col.out" 2>"$T/$n.col.err" </dev/null &
    CPID=$!
    case $addr in
    unix:*) wait_for_socket "${addr#unix:}" 10 && return 0 ;;
    tcp:*)
        # listening = state 0A in /proc/net/tcp (no probe connection)
        local hex
        hex=$(printf '%04X' "${addr##*:}")
        for ((i = 0; i < 200; i++)); do
            awk -v h=":$hex" '$2 ~ h"$" && $4 == "0A" { f = 1 } END { exit !f }' /proc/net/tcp && return 0
            kill -0 $CPID 2>/dev/null || break
            sleep 0.05
        done ;;
    esac
    fail "$n.collector_started" "collector did not listen on $addr: $(head -c 300 "$T/$n.col.err" | tr '\n' '|')"
    return 1
}

# host_with NAME ADDR SIGNAL : run churn pointed at ADDR; after 0.5 s send
# SIGNAL (KILL or STOP) to the collector.
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
        kill -"$sig" "$CPID" 2>/dev/null || fail "$n.collector_alive" "the collector was gone before kill -$sig"
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
if start_collector k9 "unix:$T/k9.sock"; then
    host_with k9 "unix:$T/k9.sock" KILL
    check_host k9
fi

# 2. tcp collector, kill -9 after 0.5 s
PORT=$((20000 + RANDOM % 20000))
if start_collector tcp "tcp:127.0.0.1:$PORT"; then
    host_with tcp "tcp:127.0.0.1:$PORT" KILL
    check_host tcp
fi

# 3. a collector that stops reading (SIGSTOP) for the rest of the run:
# the agent must drop, not block the program or its exit
if start_collector stop "unix:$T/stop.sock"; then
    host_with stop "unix:$T/stop.sock" STOP
    check_host stop
    kill -CONT "$CPID" 2>/dev/null
    kill -9 "$CPID" 2>/dev/null
    wait "$CPID" 2>/dev/null
fi

# 4. no collector at all
host_with none "unix:$T/nobody-listens.sock" ""
check_host none

# 5. control: a live collector gets the whole stream and reports it.  A
# steady load (20 x 5000 ops, 5 ms apart): bursts of 40000 ops every 1 ms
# outran a collector sharing the 2 cores, and the agent dropped rows (as it
# must rather than block the program), which made this control flaky.
if start_collector live "unix:$T/live.sock"; then
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
    if [ -n "$d" ] && [ -f "$d/leaks.json" ]; then
        ok live.reported
        check_none live.churn_alloc_freed "$d/leaks.json" churn_alloc
        check_none live.churn_realloc_freed "$d/leaks.json" churn_realloc
        alloc=$($PYQ foldedsite "$d/alloc.folded" churn_alloc)
        if [ "${alloc:-0}" -gt 0 ] 2>/dev/null; then ok live.alloc_folded; else
            fail live.alloc_folded "no churn_alloc bytes in alloc.folded"; fi
    else
        fail live.reported "no churn process with leaks.json in $T/live.col/index.json"
    fi
fi
finish
