#!/usr/bin/env bash
# The program takes the agent's output fd (issue 16, "own fds survive the
# host"): a daemon closes every fd >= 3 (a close loop, close_range,
# closefrom), dup2s a file over them, or does both with raw syscalls no
# hook sees; then opens a file that lands on the freed numbers and writes
# to it.  The agent must never write into that file, must notice, reopen
# its file (append) or reconnect to the collector (resume), and go on in
# the same stream: exact allocation counts before and after, one process,
# a gap of 0 frames and 0 rows.  (The sender has an fd table of its own
# by default, which the program cannot reach: those runs set
# PERFAGENT_PRIVATE_FDS=0, and two more check the default.)  tests/workloads/daemonize.c says what the
# program does; each case prints 6 lines whatever happens.
. "$(dirname "$0")/common.bash"
require_product "$W/daemonize"
CK="$PY $PA_ROOT/tests/e2e/lib/checks.py"

NB=1000     # before_alloc: 1000 x 48 bytes, written before the fds go
NA=40000    # after_alloc: 40000 x 80 bytes, after (the issue's 40 000 rows)
HOST_WANT=$(for i in 0 1 2 3 4 5 6 7 8 9; do echo "host line $i"; done)

# host_want NAME: the host lines, then "tail N" for each number the run's
# stderr lists, sorted; host_bytes FILE: the file with its tails sorted
# (stdio flushes them at exit in its own order)
host_want() {
    echo "$HOST_WANT"
    grep -o '^tails:.*' "$T/$1.err" | head -1 | tr ' ' '\n' | grep -E '^[0-9]+$' |
        sed 's/^/tail /' | sort
}
ntails() { host_want "$1" | grep -c '^tail '; }
host_bytes() { head -n 10 "$1" 2>&1; tail -n +11 "$1" 2>/dev/null | sort; }

# check_case NAME REPORT-DIR [REOPENED] : the 6 checks on a run's reports
# and host file; REOPENED 0: the output was never the program's to take
# (the sender's own fd table, agent/fdtable.c), so no gap line
check_case() {
    local n=$1 rep=$2 reopened=${3:-1} d
    same_output "$n.stdout_and_status" "base" "$n"
    # the host's file holds what the host wrote: no agent byte in it, and
    # a "tail N" line from each stdio stream the program left on our old
    # numbers, flushed after the agent's destructor (none of them closed)
    expect_eq "$n.host_file" "$(host_bytes "$T/$n.host" | head -c 4000 | cat -v | tr '\n' '|')" \
        "$(host_want "$n" | cat -v | tr '\n' '|')" "the host file's bytes (cat -v, lines joined by |, tails sorted)"
    expect_eq "$n.one_process" "$(proc_count "$rep" daemonize)" 1 "processes named daemonize in $rep/index.json"
    d=$(proc_dir "$rep" daemonize)
    [ -n "$d" ] || d=/nonexistent
    check_site "$n.before_rows" "$d/leaks.json" before_alloc "$((NB * 48)) $NB"
    check_site "$n.after_rows" "$d/leaks.json" after_alloc "$((NA * 80)) $NA"
    # one stream, ended cleanly, nothing dropped; the gap line says so
    expect_eq "$n.stream" "$($CK sum "$d/summary.txt" exit_code drops rows 2>&1) $(grep -c 'output reopened [1-9][0-9]* times; gap: 0 frames lost, 0 heap rows dropped at the output' "$d/summary.txt" 2>&1)" \
        "0 0 $((NB + NA + 2 * $(ntails "$n"))) $reopened" "exit_code drops rows (each tail: its FILE and its buffer), and the gap line$(drop_note "$d/leaks.json")"
}

run base "$W/daemonize" loop "$NB" "$NA" "$T/base.host"
expect_eq base.host_file "$(host_bytes "$T/base.host")" "$(host_want base)"

for mode in loop range closefrom dup2 raw cloexec; do
    # file mode: PERFAGENT_OUTPUT, read back with perfagent report
    n=file_$mode
    # CPU sampling on: its perf events are numbers the program takes too;
    # the sender on the program's fd table (PERFAGENT_PRIVATE_FDS=0)
    run "$n" env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/$n.pfr" PERFAGENT_CPU_HZ=99 PERFAGENT_PRIVATE_FDS=0 \
        "$W/daemonize" "$mode" "$NB" "$NA" "$T/$n.host"
    sed -i "s/mode=$mode /mode=loop /" "$T/$n.out"
    timeout -k 5 "$TO" "$PERFAGENT" report "$T/$n.pfr" -o "$T/$n.rep" >/dev/null 2>"$T/$n.report.err"
    check_case "$n" "$T/$n.rep"
    # a collector: perfagent run (unix socket), the sender sharing the
    # program's fd table (as it does with CPU sampling on)
    n=run_$mode
    run "$n" env PERFAGENT_PRIVATE_FDS=0 "$PERFAGENT" run -o "$T/$n.rep" --malloc-rate 1 --cpu 0 -- \
        "$W/daemonize" "$mode" "$NB" "$NA" "$T/$n.host"
    sed -i "s/mode=$mode /mode=loop /" "$T/$n.out"
    check_case "$n" "$T/$n.rep"
done
# the sender on its own fd table (the default): the program's closes and
# dup2s never reach the output; nothing to reopen (range: with CPU
# sampling, whose perf events stay in the program's table, registered)
for mode in range raw; do
    n=private_$mode
    cpu=0
    [ $mode = range ] && cpu=99
    run "$n" "$PERFAGENT" run -o "$T/$n.rep" --malloc-rate 1 --cpu $cpu -- \
        "$W/daemonize" "$mode" "$NB" "$NA" "$T/$n.host"
    sed -i "s/mode=$mode /mode=loop /" "$T/$n.out"
    check_case "$n" "$T/$n.rep" 0
done
finish
