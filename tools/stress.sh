#!/usr/bin/env bash
# `make stress`: the long version of the reliability tests (not part of
# `make check`).  Each scenario runs STRESS_RUNS times (default 50) under the
# agent with every feature on (exact heap, CPU sampling at 999 Hz, socket
# and libpq tracing at their default), each run under a time limit
# (STRESS_TIMEOUT seconds, default 120), after one plain run of the same
# command (no agent) that says what its stdout and exit status must be.
# Per scenario the table gives:
#   runs     runs made
#   hangs    runs still going at the time limit: a gdb backtrace of every
#            thread of every process of the run is saved, then it is killed
#   crashes  runs whose exit status differs from the plain run's (a signal
#            or a non-zero status the plain program did not have)
#   diffs    runs whose stdout differs from the plain run's (normalized
#            where the program prints pids)
#   undecodable  runs with a report that did not decode to its end:
#            `perfagent report` failed or a summary.txt has a decode fault
#   note     per-scenario extras (the full-filesystem one: runs where the
#            agent did not say exactly one line)
# Scenarios: 1000-thread churn, fork from many threads, exec storm,
# dlopen/dlclose loop, C++ exceptions, a signal storm at a thread inside the
# malloc hooks, a collector killed / stalled / restarted mid-run, file output
# on a full filesystem (a 1 MiB tmpfs; needs root), and CPython's whole
# test_subprocess module under `perfagent run` (STRESS_SUBPROCESS_RUNS,
# default STRESS_RUNS; each takes ~1 min traced).  STRESS_ONLY="a b" runs
# the scenarios whose names contain a word.
# The runs' files go to build/stress/ (B=DIR: DIR/stress/); a failing run's
# directory is kept there, a passing one removed.  Exit status 1 when any
# scenario had a hang or a crash, else 0.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
B=${B:-build}
case $B in /*) BD=$B ;; *) BD=$ROOT/$B ;; esac
AGENT=$BD/libperfagent.so PERFAGENT=$BD/perfagent COLLECTOR=$BD/perfagent-collector W=$BD/workloads
RUNS=${STRESS_RUNS:-50}
SUBP_RUNS=${STRESS_SUBPROCESS_RUNS:-$RUNS}
LIMIT=${STRESS_TIMEOUT:-120}
ONLY=${STRESS_ONLY:-}
OUT=$BD/stress
unset LD_PRELOAD $(compgen -e | grep '^PERFAGENT_')
export LC_ALL=C TZ=UTC

for f in "$AGENT" "$PERFAGENT" "$COLLECTOR" "$W/thread_churn" "$W/fork_mt" "$W/fire_ops" "$W/dlopen_loop" \
    "$W/cxx_throw" "$W/sig_storm" "$W/churn"; do
    [ -e "$f" ] || { echo "stress: missing $f (make all test-bins)" >&2; exit 2; }
done
rm -rf "$OUT"
mkdir -p "$OUT"
chmod 755 "$OUT"
TABLE=$OUT/table.txt
: >"$TABLE"
BAD=0

# run_limited DIR SECONDS CMD... : CMD in its own session, stdout/stderr in
# DIR/out, DIR/err; RC = its exit status, or "hang" (then DIR/hang.txt has
# the gdb backtraces and the whole session is killed)
run_limited() {
    local dir=$1 lim=$2 pid i p
    shift 2
    setsid "$@" >"$dir/out" 2>"$dir/err" </dev/null &
    pid=$!
    for ((i = 0; i < lim * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ] && break
        sleep 0.1
    done
    if [ "$i" -ge $((lim * 10)) ]; then
        for p in $(ps -eo pid=,sid= | awk -v s="$pid" '$2 == s { print $1 }'); do
            echo "=== pid $p: $(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null)"
            timeout -k 5 60 gdb -p "$p" -batch -ex 'thread apply all bt' 2>&1 | grep -E '^(Thread|#)'
        done >"$dir/hang.txt" 2>&1
        kill -9 -- -"$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        RC=hang
    else
        wait "$pid"
        RC=$?
    fi
}

# undecodable DIR... : 0 when every report of the .pfr files under DIR
# (or, for a directory holding index.json, its summaries) decoded to the end
undecodable() {
    local d f bad=0
    for d in "$@"; do
        if [ ! -f "$d/index.json" ]; then
            ls "$d"/*.pfr >/dev/null 2>&1 || continue
            timeout -k 5 300 "$PERFAGENT" report "$d"/*.pfr -o "$d/rep" >"$d/report.log" 2>&1 || bad=1
            d=$d/rep
        fi
        for f in "$d"/*/summary.txt; do
            [ -f "$f" ] || continue
            grep -q '^decode: *no fault' "$f" || bad=1
        done
    done
    return $bad
}

# scenario NAME NORMALIZE CMD... : the plain run, then RUNS agent runs.
# NORMALIZE: a sed script for stdout (pids) or "".  CMD may use $RUNDIR
# (exported) for per-run files; the agent writes $RUNDIR/pfr/%e.%p.pfr.
# Hooks (functions, when defined for the scenario): pre_NAME before each
# run, post_NAME after it (may set NOTE_BAD=1 and DECODE_DIRS).
scenario() {
    local name=$1 norm=$2 n i base_rc hangs=0 crashes=0 diffs=0 undec=0 notes=0 t0 keep
    shift 2
    [ -n "$ONLY" ] && ! grep -qE "$(echo "$ONLY" | tr ' ' '|')" <<<"$name" && return 0
    n=$RUNS
    [ "$name" = test_subprocess ] && n=$SUBP_RUNS
    t0=$(date +%s)
    export RUNDIR=$OUT/$name.plain
    mkdir -p "$RUNDIR"
    declare -F pre_"$name" >/dev/null && pre_"$name"
    run_limited "$RUNDIR" "$LIMIT" env PA_STRESS_PLAIN=1 "$@"
    base_rc=$RC
    sed "$norm" "$RUNDIR/out" >"$OUT/$name.plain.out"
    declare -F post_"$name" >/dev/null && PLAIN=1 post_"$name"
    for ((i = 1; i <= n; i++)); do
        export RUNDIR=$OUT/$name.$i
        mkdir -p "$RUNDIR/pfr"
        chmod 777 "$RUNDIR/pfr"
        NOTE_BAD=0 DECODE_DIRS=$RUNDIR/pfr keep=0
        declare -F pre_"$name" >/dev/null && pre_"$name"
        run_limited "$RUNDIR" "$LIMIT" env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_CPU_HZ=999 \
            PERFAGENT_OUTPUT="$RUNDIR/pfr/%e.%p.pfr" "$@"
        declare -F post_"$name" >/dev/null && PLAIN= post_"$name"
        if [ "$RC" = hang ]; then hangs=$((hangs + 1)) keep=1
        elif [ "$RC" != "$base_rc" ]; then crashes=$((crashes + 1)) keep=1; fi
        if [ "$RC" != hang ] && ! sed "$norm" "$RUNDIR/out" | cmp -s - "$OUT/$name.plain.out"; then
            diffs=$((diffs + 1)) keep=1
        fi
        # shellcheck disable=SC2086
        undecodable $DECODE_DIRS || { undec=$((undec + 1)) keep=1; }
        [ "$NOTE_BAD" = 1 ] && { notes=$((notes + 1)) keep=1; }
        [ "$keep" = 1 ] && echo "# $name run $i: status $RC (plain $base_rc), kept $RUNDIR" >&2
        [ "$keep" = 1 ] || rm -rf "$RUNDIR"
    done
    printf '%-16s %5d %6d %8d %6d %12d %6s %6ds  plain status %s\n' "$name" "$n" "$hangs" "$crashes" "$diffs" "$undec" \
        "${NOTE_NAME:+$notes}" $(($(date +%s) - t0)) "$base_rc" | tee -a "$TABLE"
    [ $((hangs + crashes)) -gt 0 ] && BAD=1
    NOTE_NAME=
    return 0
}
NOTE_NAME=

printf '%-16s %5s %6s %8s %6s %12s %6s %7s\n' scenario runs hangs crashes diffs undecodable note time | tee -a "$TABLE"

# 1. 1000 threads, 16 alive at a time, each allocating, leaking and handing
# a block to main
scenario thread_churn "" "$W/thread_churn" 1000 16
# 2. fork from a process whose 4 threads allocate all the time, 20 children
scenario fork_mt 's/=[0-9][0-9]*/=N/g' "$W/fork_mt" 20
# 3. exec storm: 50 fork+exec of a child that burns CPU, while another
# thread allocates and a busy thread is sampled
scenario exec_storm "" "$W/fire_ops" exec 50
# 4. dlopen / call / dlclose, 500 times
scenario dlopen_loop "" "$W/dlopen_loop" 500
# 5. C++ exceptions on two threads, 20000 each
scenario cxx_throw "" "$W/cxx_throw" 20000
# 6. 10000 SIGUSR1 at a thread that allocates in a loop; the handler
# allocates too
scenario sig_storm "" "$W/sig_storm" 10000

# 7. the collector: churn (>= 6 s, exit status 3) sends to a collector that
# is stalled (SIGSTOP) for 0.5 s, resumed, killed (-9), and restarted on the
# same socket 0.5 s later (the agent retries with a backoff of up to 2 s); the program must finish as the plain run, and the
# restarted collector's reports must decode.  The agent's env in the
# scenario points at the collector instead of a file.
collector_churn() {
    if [ -n "${PA_STRESS_PLAIN:-}" ]; then exec "$W/churn" 600 5000 10000 2 3; fi
    # only churn is traced: not this shell, not the collectors
    local sock=$RUNDIR/col.sock c1 c2 h pre=$LD_PRELOAD
    unset LD_PRELOAD
    "$COLLECTOR" --listen "unix:$sock" -o "$RUNDIR/col1" -q >"$RUNDIR/col1.log" 2>&1 &
    c1=$!
    for ((h = 0; h < 100; h++)); do [ -S "$sock" ] && break; sleep 0.05; done
    env LD_PRELOAD="$pre" PERFAGENT_OUTPUT= PERFAGENT_COLLECTOR="unix:$sock" "$W/churn" 600 5000 10000 2 3 &
    h=$!
    sleep 0.5; kill -STOP "$c1"
    sleep 0.5; kill -CONT "$c1"
    sleep 0.3; kill -9 "$c1"; wait "$c1" 2>/dev/null
    rm -f "$sock"
    sleep 0.5
    "$COLLECTOR" --listen "unix:$sock" -o "$RUNDIR/col2" -q >"$RUNDIR/col2.log" 2>&1 &
    c2=$!
    wait "$h"
    local rc=$?
    kill -TERM "$c2"
    for ((h = 0; h < 200; h++)); do kill -0 "$c2" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$c2" 2>/dev/null
    wait "$c2" 2>/dev/null
    return $rc
}
export -f collector_churn
export W COLLECTOR
post_collector() {
    [ -n "$PLAIN" ] && return
    DECODE_DIRS=$RUNDIR/col2
    # the restarted collector must have the resumed stream
    [ -f "$RUNDIR/col2/index.json" ] || NOTE_BAD=1
}
NOTE_NAME=1 scenario collector "" bash -c collector_churn

# 8. the file output on a full filesystem: a 1 MiB tmpfs; churn writes far
# more (exact mode).  The program must finish as the plain run, the agent
# say one line (perfagent[PID]: ...) on stderr, and `perfagent report` make
# a report of the cut file (note: runs where either did not happen).
FULL=$OUT/full
pre_full_fs() {
    mountpoint -q "$FULL" || { mkdir -p "$FULL" && mount -t tmpfs -o size=1m tmpfs "$FULL"; }
    rm -rf "${FULL:?}"/*
}
post_full_fs() {
    [ -n "$PLAIN" ] && return
    DECODE_DIRS=
    [ "$(grep -c '^perfagent\[' "$RUNDIR/err")" = 1 ] || NOTE_BAD=1
    # the file ends where the filesystem filled up, inside a frame: its
    # report says so (a decode fault at the cut) but must still be written
    # (`perfagent report` then exits 1, having kept what it decoded)
    timeout -k 5 120 "$PERFAGENT" report "$FULL/churn.pfr" -o "$RUNDIR/rep" >"$RUNDIR/report.log" 2>&1
    ls "$RUNDIR"/rep/*/summary.txt >/dev/null 2>&1 || NOTE_BAD=1
}
if [ "$(id -u)" = 0 ]; then
    NOTE_NAME=1 scenario full_fs "" env PERFAGENT_OUTPUT="$FULL/churn.pfr" "$W/churn" 50 20000 1000 2 3
    umount "$FULL" 2>/dev/null
else
    echo "full_fs: skipped (mount needs root)" | tee -a "$TABLE"
fi

# 9. CPython's whole test_subprocess module under `perfagent run` (its
# reports in -o DIR: each process's summary must decode)
post_test_subprocess() {
    [ -n "$PLAIN" ] && return
    DECODE_DIRS=$RUNDIR/rep
    # which tests failed, and the reports that did not decode, for the log
    grep -hE '^(FAIL|ERROR): ' "$RUNDIR/out" "$RUNDIR/err" | sort -u >"$RUNDIR/failed_tests.txt"
    grep -h '^decode: *FAULT' "$RUNDIR"/rep/*/summary.txt 2>/dev/null | sed 's/[0-9][0-9]*/N/g' | sort | uniq -c >"$RUNDIR/decode_faults.txt"
    [ -s "$RUNDIR/failed_tests.txt" ] && sed 's/^/#   /' "$RUNDIR/failed_tests.txt" >&2
    [ -s "$RUNDIR/decode_faults.txt" ] && sed 's/^/#   /' "$RUNDIR/decode_faults.txt" >&2
    return 0
}
if [ -r /usr/lib/python3.11/test/test_subprocess.py ]; then
    LIMIT=${STRESS_SUBPROCESS_TIMEOUT:-600} scenario test_subprocess 's/.*\(Tests result: [A-Z_, ]*\).*/\1/p; d' \
        bash -c 'if [ -n "${PA_STRESS_PLAIN:-}" ]; then exec /usr/bin/python3 -m test -v test_subprocess; fi
            exec env -u LD_PRELOAD -u PERFAGENT_OUTPUT "$0" run --cpu 999 -o "$RUNDIR/rep" -- /usr/bin/python3 -m test -v test_subprocess' "$PERFAGENT"
else
    echo "test_subprocess: skipped (no /usr/lib/python3.11/test: package libpython3.11-testsuite)" | tee -a "$TABLE"
fi

echo "table: $TABLE; kept runs (failures) under $OUT"
exit $BAD
