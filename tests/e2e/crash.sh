#!/usr/bin/env bash
# Fatal signals keep the data (agent/crash.c, issue 16).  tests/workloads/
# crash_ops.c leaks N blocks of SIZE bytes from crash_site() and then dies in
# a known way; nothing else allocates, so every number is exact:
#  - file mode (.pfr), one case per way to die: the run ends exactly as the
#    plain run does (waitpid status: the signal and the core-dump flag, via
#    lib/wait_status.py, which allows cores), the report has N x SIZE at
#    crash_site, one "crashed with SIG..." line with the crashing function
#    in the stack, and the stream is "ended by SIG...", not "cut";
#  - `perfagent run`: SIGSEGV (status 139 as from bash), SIGTERM with the
#    default action (143), SIGKILL after ~1 s (137): the rows are there and
#    the duration runs to the last heartbeat (AgentStats every 250 ms);
#  - a handler the program installs (sigaction, after the agent's) still
#    runs; sigaction/signal show the program its own dispositions;
#  - PERFAGENT_CRASH=0: no handler, no Crash record.
. "$(dirname "$0")/common.bash"
require_product "$W/crash_ops"
WS="$PY $PA_ROOT/tests/e2e/lib/wait_status.py"

N=25 SIZE=4096
SITE="$((N * SIZE)) $N"

# py EXPR FILE : evaluate EXPR with d = the JSON of FILE (errors print)
py() { $PY -c "import json,sys; d=json.load(open(sys.argv[1])); print($1)" "$2" 2>&1 | tail -1; }
# The crash's frame names, leaf first, from leaks.json
FRAMES='" ".join(f["function"] for f in d.get("crash", {}).get("frames", []))'
pdir() { ls -d "$1"/*/ 2>/dev/null | head -1; }

# file_case MODE : plain and agent'd run of `crash_ops MODE N SIZE` (file
# output), then perfagent report; one line: MODE.report.  Leaves $D.
file_case() {
    local m=$1
    mkdir -p "$T/$m.p" "$T/$m.a"
    $WS "$T/$m.p" "$W/crash_ops" "$m" $N $SIZE >"$T/$m.plain_end"
    timeout -k 5 "$TO" $WS "$T/$m.a" env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 \
        PERFAGENT_OUTPUT="$T/$m.pfr" "$W/crash_ops" "$m" $N $SIZE >"$T/$m.agent_end"
    report "$m.report" "$T/$m.r" "$T/$m.pfr"
    D=$(pdir "$T/$m.r")
}

# fault_checks MODE SIG STACK_RE : the 4 checks every fault case shares
fault_checks() {
    local m=$1 sig=$2 re=$3
    check_site "$m.site" "$D/leaks.json" crash_site "$SITE"
    expect_eq "$m.crash_line" "$(grep -Ec "^crashed with $sig( \(address 0x[0-9a-f]+\))? in thread [0-9]+$" "$D/summary.txt" 2>/dev/null)" 1
    local fr
    fr=$(py "$FRAMES" "$D/leaks.json")
    if [[ "$fr" =~ $re ]]; then ok "$m.stack"; else fail "$m.stack" "crash frames '$fr' do not match '$re'"; fi
    expect_eq "$m.state" "$(grep -c "^stream:    ended by $sig: the agent caught it" "$D/summary.txt" 2>/dev/null) $(grep -c 'cut: no Goodbye' "$D/summary.txt" 2>/dev/null)" "1 0"
}

# ---- SIGSEGV at address 0 --------------------------------------------------
file_case segv
expect_eq segv.plain_end "$(cat "$T/segv.plain_end")" "signal 11 core $(sed -n 's/.*core //p' "$T/segv.plain_end")"
expect_eq segv.end "$(cat "$T/segv.agent_end")" "$(cat "$T/segv.plain_end")"
fault_checks segv SIGSEGV '^crash_here main '
expect_eq segv.json "$(py '[d["crash"][k] for k in ("signal", "signo", "code", "address", "host_handler")]' "$D/leaks.json")" \
    "['SIGSEGV', 11, 1, '0x0', False]"
expect_eq segv.totals "$(grep -c "^  allocations:          $N$" "$D/summary.txt")" 1

# ---- abort() ---------------------------------------------------------------
file_case abort
expect_eq abort.end "$(cat "$T/abort.agent_end")" "$(cat "$T/abort.plain_end")"
expect_eq abort.plain_end "$(sed 's/ core .*//' "$T/abort.plain_end")" "signal 6"
fault_checks abort SIGABRT '(^| )abort crash_abort main '

# ---- glibc aborts inside free() (the agent's free hook is on the stack) -------
file_case badfree
expect_eq badfree.end "$(cat "$T/badfree.agent_end")" "$(cat "$T/badfree.plain_end")"
fault_checks badfree SIGABRT ' _int_free __libc_free crash_badfree main '

# ---- stack overflow on the main thread (the alternate stack) ------------------
file_case overflow
expect_eq overflow.end "$(cat "$T/overflow.agent_end")" "$(cat "$T/overflow.plain_end")"
fault_checks overflow SIGSEGV '^crash_recurse crash_recurse crash_recurse'

# ---- the program's own SIGSEGV handler (installed after the agent's) --------
file_case handler
expect_eq handler.end "$(cat "$T/handler.agent_end") $(cat "$T/handler.a/stdout")" \
    "exit 42 handler ran 11"
expect_eq handler.plain_end "$(cat "$T/handler.plain_end") $(cat "$T/handler.p/stdout")" \
    "exit 42 handler ran 11"
check_site handler.site "$D/leaks.json" crash_site "$SITE"
expect_eq handler.lines "$(grep -Ec '^received SIGSEGV \(address 0x0\) in thread [0-9]+$' "$D/summary.txt") $(grep -c "^  the program's own handler for it ran" "$D/summary.txt") $(grep -c '^stream:    ended cleanly (Goodbye, exit code 42)' "$D/summary.txt")" \
    "1 1 1"

# ---- the agent's sender thread takes the signal ---------------------------------
file_case sender
expect_eq sender.plain_end "$(cat "$T/sender.plain_end")" "exit 3" "no sender without the agent"
expect_eq sender.end "$(sed 's/ core .*//' "$T/sender.agent_end")" "signal 11"
check_site sender.site "$D/leaks.json" crash_site "$SITE"
expect_eq sender.crash "$(grep -Ec '^crashed with SIGSEGV in thread [0-9]+$' "$D/summary.txt") $(py 'd["crash"]["stack_skipped"]' "$D/leaks.json")" \
    "1 the thread was inside the agent"

# ---- sigaction/signal show the program its own dispositions -------------------
run query.plain "$W/crash_ops" query 1 1
run query.agent env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT=/dev/null PERFAGENT_LOG=quiet "$W/crash_ops" query 1 1
same_output query.same query.plain query.agent
expect_eq query.text "$(tr '\n' '|' <"$T/query.agent.out")" "SEGV dfl TERM dfl|SEGV handler|signal again: on_segv|SEGV dfl|"

# ---- PERFAGENT_CRASH=0: the agent leaves the signals alone ------------------------
mkdir -p "$T/off.a"
timeout -k 5 "$TO" $WS "$T/off.a" env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_CRASH=0 \
    PERFAGENT_OUTPUT="$T/off.pfr" "$W/crash_ops" segv $N $SIZE >"$T/off.agent_end"
expect_eq off.end "$(cat "$T/off.agent_end")" "$(cat "$T/segv.plain_end")"
report off.report "$T/off.r" "$T/off.pfr"
expect_eq off.no_crash "$(grep -c '^crashed with' "$(pdir "$T/off.r")summary.txt" 2>/dev/null) $(grep -c 'cut: no Goodbye' "$(pdir "$T/off.r")summary.txt" 2>/dev/null)" "0 1"

# ---- perfagent run: SIGSEGV, status as from bash ------------------------------
BASH_RC=$(bash -c '"$0" segv 1 1; echo $?' "$W/crash_ops" 2>/dev/null)
run run_segv "$PERFAGENT" run --malloc-rate 1 --cpu 0 -o "$T/run_segv" -- "$W/crash_ops" segv $N $SIZE
expect_eq run_segv.status "$(rc_of run_segv) $BASH_RC" "139 139"
D=$(pdir "$T/run_segv")
check_site run_segv.site "$D/leaks.json" crash_site "$SITE"
expect_eq run_segv.crash_line "$(grep -Ec '^crashed with SIGSEGV \(address 0x0\) in thread [0-9]+$' "$D/summary.txt" 2>/dev/null)" 1

# run_signal NAME SIG AFTER : perfagent run of `crash_ops wait`; SIG to the
# program AFTER seconds after the start (once it printed "ready PID").
# Sets ELAPSED (start to the kill, seconds).
run_signal() {
    local n=$1 sig=$2 after=$3 t0 pid="" i
    t0=$(date +%s.%N)
    timeout -k 5 "$TO" "$PERFAGENT" run --malloc-rate 1 --cpu 0 -o "$T/$n" -- "$W/crash_ops" wait $N $SIZE \
        >"$T/$n.out" 2>"$T/$n.err" </dev/null &
    local rp=$!
    for ((i = 0; i < 200; i++)); do
        pid=$(sed -n 's/^ready \([0-9]*\)$/\1/p' "$T/$n.out" 2>/dev/null)
        [ -n "$pid" ] && break
        sleep 0.05
    done
    sleep "$(awk -v t0="$t0" -v a="$after" -v now="$(date +%s.%N)" 'BEGIN { s = a - (now - t0); print (s > 0 ? s : 0) }')"
    [ -n "$pid" ] && kill -"$sig" "$pid"
    ELAPSED=$(awk -v t0="$t0" -v now="$(date +%s.%N)" 'BEGIN { printf "%.3f\n", now - t0 }')
    wait $rp
    echo $? >"$T/$n.rc"
}

# ---- SIGTERM, default action ----------------------------------------------------
run_signal term TERM 0.5
expect_eq term.status "$(rc_of term)" 143
D=$(pdir "$T/term")
check_site term.site "$D/leaks.json" crash_site "$SITE"
expect_eq term.crash "$(grep -Ec '^crashed with SIGTERM in thread [0-9]+$' "$D/summary.txt" 2>/dev/null) $(grep -c '^stream:    ended by SIGTERM' "$D/summary.txt" 2>/dev/null)" "1 1"

# ---- SIGKILL after 1 s: nothing to catch; rows and the heartbeat are there -------
run_signal kill KILL 1.0
expect_eq kill.status "$(rc_of kill)" 137
D=$(pdir "$T/kill")
check_site kill.site "$D/leaks.json" crash_site "$SITE"
expect_eq kill.state "$(grep -c 'cut: no Goodbye' "$D/summary.txt" 2>/dev/null)" 1
# The duration runs from the agent's start (after perfagent run and the
# exec: up to ~0.3 s on a busy machine) to the last AgentStats (every
# 250 ms): within [ELAPSED - 0.7, ELAPSED].  Before the heartbeat it was
# ~0.01 s (the first AgentStats only).
DUR=$(sed -n 's/^duration:  \([0-9.]*\) s.*/\1/p' "$D/summary.txt" 2>/dev/null)
expect_true kill.duration "duration '${DUR}' s, killed ${ELAPSED} s after the start" \
    awk -v d="${DUR:-0}" -v e="$ELAPSED" 'BEGIN { exit !(d >= e - 0.7 && d <= e + 0.05) }'

finish
