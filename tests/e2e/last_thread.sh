#!/usr/bin/env bash
# The process ends when its last thread does (POSIX), whatever the agent's
# own thread does: main() calling pthread_exit with workers still running
# or already joined or none, a child forked from a thread whose only thread
# returns (C and Python), and SIGTERM to a process whose main thread has
# ended (while a worker sleeps, and while an atexit handler runs on the
# agent's thread).  Each case under a file output, a unix-socket collector
# and `perfagent run`, with a time limit: a hang (the process outliving its
# last thread, SIGTERM pending forever) fails a check instead of the suite.
. "$(dirname "$0")/common.bash"
require_product "$COLLECTOR" "$W/pthread_exit" "$W/fork_thread"
TO=${PA_LT_TIMEOUT:-10}  # seconds per run; plain runs take < 0.5 s
WAIT_CHILD=5             # fork_thread: how long the parent waits for its child
PE=$W/pthread_exit
FT=$W/fork_thread
FTPY=$PA_ROOT/tests/workloads/fork_thread.py
MODES=${PA_LT_MODES:-file coll run}

# norm FILE : stdout with the pids taken out
norm() { sed -E 's/(pid|parent|child)=[0-9]+/\1=N/g' "$1"; }
# pids_in NAME : every pid the workload printed
pids_in() { grep -oE '(pid|parent|child)=[0-9]+' "$T/$1.out" 2>/dev/null | cut -d= -f2; }
# kill_left NAME : a hung workload outlives timeout's SIGTERM (and, under
# `perfagent run`, its parent): SIGKILL what is left of the ones we started.
kill_left() {
    local p
    for p in $(pids_in "$1"); do
        if grep -qaE 'pthread_exit|fork_thread' "/proc/$p/cmdline" 2>/dev/null; then
            kill -9 "$p" 2>/dev/null
            echo "# $1: killed pid $p, still alive after the run"
        fi
    done
}

# The collector shared by the "coll" runs.
COLL_DIR=$T/coll.rep
COLL_SOCK=$T/coll.sock
CPID=
case " $MODES " in *" coll "*)
    "$COLLECTOR" --listen "unix:$COLL_SOCK" -o "$COLL_DIR" >"$T/coll.out" 2>"$T/coll.err" </dev/null &
    CPID=$!
    wait_for_socket "$COLL_SOCK" 10 || fail collector_started "no socket: $(head -c 300 "$T/coll.err")"
esac

# launch MODE NAME CMD... : the command under the agent in MODE, in the
# background (BG = its pid); prints to $T/NAME.out/.err, status to .rc
launch() {
    local mode=$1 n=$2; shift 2
    local -a pre
    case $mode in
    file) mkdir -p "$T/$n.files"
          pre=(env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/$n.files/out.pfr") ;;
    coll) pre=(env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_COLLECTOR="unix:$COLL_SOCK") ;;
    run)  pre=("$PERFAGENT" run -o "$T/$n.rep" --malloc-rate 1 --) ;;
    plain) pre=() ;;
    esac
    (
        t0=$(date +%s.%N)
        timeout -k 5 "$TO" "${pre[@]}" "$@" >"$T/$n.out" 2>"$T/$n.err" </dev/null
        echo $? >"$T/$n.rc"
        echo "$t0 $(date +%s.%N)" | awk '{printf "%.2f\n", $2 - $1}' >"$T/$n.secs"
    ) 2>/dev/null & # (no "Terminated" line from bash for the SIGTERM cases)
    BG=$!
}
# runm MODE NAME CMD... : launch and wait
runm() { launch "$@"; wait "$BG"; kill_left "$2"; }

# repdir MODE NAME PID : RDIR = the report folder of PID (status 1 after a
# FAIL line)
repdir() {
    local mode=$1 n=$2 pid=$3 dir d= i
    RDIR=
    case $mode in
    file) dir=$T/$n.rep
          if [ ! -f "$dir/index.json" ]; then
              if ! ls "$T/$n.files"/out.pfr* >/dev/null 2>&1; then
                  fail "$n.pfr" "no .pfr in $T/$n.files (exit $(rc_of "$n"))"; return 1
              fi
              timeout -k 5 60 "$PERFAGENT" report "$T/$n.files"/out.pfr* -o "$dir" >/dev/null 2>"$T/$n.report.err" ||
                  { fail "$n.report" "perfagent report: $(head -c 300 "$T/$n.report.err")"; return 1; }
          fi ;;
    coll) dir=$COLL_DIR ;;
    run)  dir=$T/$n.rep ;;
    esac
    # a collector writes a process's reports once its stream ended
    for ((i = 0; i < 100; i++)); do
        d=$(procs "$dir" | awk -v p="$pid" '$1 == p { print $4 }' | tail -1)
        [ -n "$d" ] && [ -f "$d/leaks.txt" ] && grep -q '^stream: [ec]' "$d/leaks.txt" && break
        [ "$mode" = coll ] || break
        sleep 0.1
    done
    if [ -z "$d" ] || [ ! -f "$d/leaks.json" ]; then
        fail "$n.pid$pid.reported" "pid $pid not in $dir/index.json: $(procs "$dir" | tr '\n' '|')"
        return 1
    fi
    RDIR=$d
}
stream_of() { sed -n 's/^stream: //p' "$1/leaks.txt" | head -1; }
GOODBYE0="ended cleanly (Goodbye, exit code 0)"
CUT="cut: no Goodbye (the process crashed, was killed, or lost its connection)"

# status_ok NAME WANT : exit status (124/137: still alive at the time limit)
status_ok() {
    expect_eq "$1.status" "$(rc_of "$1")" "$2" \
        "in $(cat "$T/$1.secs") s; 124/137 = still running after ${TO} s; stderr: $(head -c 200 "$T/$1.err" | tr '\n' '|')"
}
same_stdout() { # NAME BASE
    expect_eq "$1.stdout" "$(norm "$T/$1.out" | tr '\n' '|')" "$(norm "$T/$2.out" | tr '\n' '|')"
}

# ---- main() calls pthread_exit: workers running / joined / none ----------
pe_case() { # MODE TAG ARGS... (main_leak 3 x 999; worker_leak 5 x 7001 per
            # worker; exit_leak 555 in the atexit handler, on the agent's thread)
    local mode=$1 tag=$2; shift 2
    local n=pe_${tag}_$mode base=pe_${tag}_plain nw=$2 pid d
    [ -f "$T/$base.rc" ] || runm plain "$base" "$PE" "$@"
    runm "$mode" "$n" "$PE" "$@"
    status_ok "$n" 0
    same_stdout "$n" "$base"
    pid=$(sed -n 's/^pthread_exit: pid=//p' "$T/$n.out")
    [ -n "$pid" ] || { fail "$n.pid" "no pid line: $(head -c 200 "$T/$n.out")"; return; }
    repdir "$mode" "$n" "$pid" || return
    d=$RDIR
    expect_eq "$n.stream" "$(stream_of "$d")" "$GOODBYE0"
    check_site "$n.main_leak" "$d/leaks.json" main_leak "2997 3"
    check_site "$n.exit_leak" "$d/leaks.json" exit_leak "555 1"
    if [ "$nw" -gt 0 ]; then
        check_site "$n.worker_leak" "$d/leaks.json" worker_leak "$((35005 * nw)) $((5 * nw))"
    else
        # main_leak, exit_leak and the 56 B glibc's pthread_exit keeps when
        # it dlopens libgcc_s for its unwinding: nothing of the agent's own
        # exit path
        expect_eq "$n.total" "$($PYQ total "$d/leaks.json")" "3608 5"
    fi
}

# ---- fork from a thread: the child's only thread returns -----------------
ft_case() { # MODE LANG(c|py)
    local mode=$1 lang=$2 n=ft_$2_$1 base=ft_$2_plain pid kid d dk
    local -a cmd
    if [ "$lang" = c ]; then cmd=("$FT" "$WAIT_CHILD"); else cmd=("$PY" "$FTPY" "$WAIT_CHILD"); fi
    [ -f "$T/$base.rc" ] || runm plain "$base" "${cmd[@]}"
    runm "$mode" "$n" "${cmd[@]}"
    status_ok "$n" 0
    same_stdout "$n" "$base"
    pid=$(sed -n 's/^fork_thread[.py]*: parent=//p' "$T/$n.out")
    kid=$(sed -n 's/^fork_thread[.py]*: child=\([0-9]*\) status=0$/\1/p' "$T/$n.out")
    [ -n "$kid" ] || { fail "$n.child_exited" "$(grep child= "$T/$n.out")"; return; }
    ok "$n.child_exited"
    repdir "$mode" "$n" "$kid" || return
    dk=$RDIR
    expect_eq "$n.child.stream" "$(stream_of "$dk")" "$GOODBYE0"
    if [ "$lang" = c ]; then
        check_site "$n.child.child_leak" "$dk/leaks.json" child_leak "13332 4"
        check_none "$n.child.no_parent_leak" "$dk/leaks.json" parent_leak
        repdir "$mode" "$n" "$pid" || return
    d=$RDIR
        check_site "$n.parent.parent_leak" "$d/leaks.json" parent_leak "8888 2"
    else
        # libc malloc through ctypes: 3 x 123457 B, below ffi_call
        expect_eq "$n.child.malloc_leak" "$($PYQ through "$dk/leaks.json" ffi_call 2>&1)" "370371 3"
    fi
}

# ---- SIGTERM while main() has ended -------------------------------------
# sleep: a worker sleeps (it takes the signal).  slowexit: the last worker
# returned and an atexit handler sleeps on whatever thread called exit (under
# the agent: the agent's): the signal must still end the process.
sig_case() { # MODE TAG(sleep|slowexit) MARKER
    local mode=$1 tag=$2 marker=$3 n=sig_${2}_$1 base=sig_${2}_plain pid d i r
    for r in $base $n; do
        [ "$r" = "$base" ] && [ -f "$T/$base.rc" ] && continue
        launch "$([ "$r" = "$base" ] && echo plain || echo "$mode")" "$r" "$PE" "$tag"
        for ((i = 0; i < 100; i++)); do
            grep -qx "$marker" "$T/$r.out" 2>/dev/null && break
            sleep 0.05
        done
        pid=$(sed -n 's/^pthread_exit: pid=//p' "$T/$r.out")
        sleep 0.3 # the sender writes rows within a round (20 ms)
        [ -n "$pid" ] && kill -TERM "$pid"
        wait "$BG"
        kill_left "$r"
    done
    status_ok "$n" 143
    expect_eq "$base.status" "$(rc_of "$base")" 143 "without the agent"
    same_stdout "$n" "$base"
    repdir "$mode" "$n" "$pid" || return
    d=$RDIR
    expect_eq "$n.stream" "$(stream_of "$d")" "ended by SIGTERM: the agent caught it and sent what its buffers held (no Goodbye)"
    check_site "$n.main_leak" "$d/leaks.json" main_leak "2997 3"
    check_site "$n.worker_leak" "$d/leaks.json" worker_leak "35005 5"
}

for mode in $MODES; do
    pe_case "$mode" running running 2
    pe_case "$mode" joined joined 2
    pe_case "$mode" alone joined 0
    ft_case "$mode" c
    ft_case "$mode" py
    sig_case "$mode" sleep ready
    sig_case "$mode" slowexit "atexit sleeping"
done

# ---- python3 -m test test_threading under `perfagent run` ----------------
# Its fork tests fork from threads and poll waitpid(WNOHANG); a child that
# outlives its last thread made it hang.  ~14 s under the agent, ~13 s
# without (2 cores); some of its tests fail on a given machine without the
# agent too, so the outcome is compared with a plain run's.  The agent's
# "wrote ..." line is silenced: several tests want an empty stderr.
pytest_outcome() { # LOG -> "ran N; failed: names..."
    local ran bad
    ran=$(sed -n 's/^Ran \([0-9]*\) tests.*/\1/p' "$1" | tail -1)
    bad=$(sed -n 's/^\(test[A-Za-z0-9_]*\) (.*) \.\.\. \(FAIL\|ERROR\)$/\1/p' "$1" | sort | tr '\n' ' ')
    echo "ran ${ran:-?}; failed: ${bad:-none}"
}
# Debian's python3 with its test package (libpython3.11-testsuite, in the
# Makefile's DEB_PKGS: make deps installs it); a missing one fails.
PYT=/usr/bin/python3
if ! "$PYT" -c 'import test.test_threading' 2>/dev/null; then
    fail pyt_run.status "$PYT has no test package (make deps installs libpython3.11-testsuite)"
    fail pyt_run.outcome "not run"
else
    TO=90 run pyt_plain "$PYT" -m test -v test_threading
    TO=90 run pyt_run env PERFAGENT_LOG=quiet "$PERFAGENT" run -o "$T/pyt.rep" --malloc-rate 1 -- \
        "$PYT" -m test -v test_threading
    echo "# test_threading: $(cat "$T/pyt_plain.secs") s plain, $(cat "$T/pyt_run.secs") s under perfagent run"
    expect_eq pyt_run.status "$(rc_of pyt_run)" "$(rc_of pyt_plain)" "124/137 = still running after 90 s"
    expect_eq pyt_run.outcome "$(pytest_outcome "$T/pyt_run.out")" "$(pytest_outcome "$T/pyt_plain.out")" "without the agent"
fi

if [ -n "$CPID" ]; then
    kill -TERM "$CPID" 2>/dev/null
    for ((i = 0; i < 100; i++)); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$CPID" 2>/dev/null
    wait "$CPID" 2>/dev/null
fi
finish
