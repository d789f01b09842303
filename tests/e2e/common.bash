# Sourced by tests/e2e/*.sh (not a test itself: run.sh only runs *.sh).
#
# Each check prints "ok NAME" or "FAIL NAME: why".  Provides absolute paths
# to the product and the workloads, a temp dir removed at exit, and helpers
# to run a command under the agent with a timeout and capture its stdout,
# stderr and exit status.

set -u
# Start from a clean agent environment whatever the caller's is.
unset LD_PRELOAD $(compgen -e | grep '^PERFAGENT_')
# The tests check exact numbers: exact heap mode unless a test says
# otherwise (the agent's default is sampling; tests of the default unset
# this, e.g. `env -u PERFAGENT_MALLOC_RATE`).
export PERFAGENT_MALLOC_RATE=1
PA_ROOT=${PA_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
B=${B:-build}
case $B in /*) BD=$B ;; *) BD=$PA_ROOT/$B ;; esac
AGENT=$BD/libperfagent.so
PERFAGENT=$BD/perfagent
COLLECTOR=$BD/perfagent-collector
W=$BD/workloads
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
PYQ="$PY $PA_ROOT/tests/e2e/pa_json.py"
LIBDIR=/usr/lib/x86_64-linux-gnu
JEMALLOC=$LIBDIR/libjemalloc.so.2
TCMALLOC=$LIBDIR/libtcmalloc.so.4
SUITE=$(basename "$0" .sh)
TO=${PA_TIMEOUT:-60}          # seconds allowed for any single command

T=$(mktemp -d /tmp/pa-e2e-"$SUITE".XXXXXX)
cleanup() {
    local p
    # only our own background jobs still running (collectors we started)
    for p in $(jobs -p); do kill -9 "$p" 2>/dev/null; done
    if [ -n "${PA_KEEP:-}" ]; then echo "# kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

# bg_add PID : a background process to kill at exit if still running (every
# background job of the script is killed at exit anyway; kept for callers).
bg_add() { :; }

NFAIL=0
ok()   { echo "ok $SUITE.$1"; }
fail() { echo "FAIL $SUITE.$1: $2"; NFAIL=$((NFAIL + 1)); }
# expect_eq NAME GOT WANT [CONTEXT]
expect_eq() {
    if [ "$2" == "$3" ]; then ok "$1"; else fail "$1" "got '$2', want '$3'${4:+ ($4)}"; fi
}
# expect_true NAME WHY-IF-FALSE CMD...
expect_true() {
    local n=$1 why=$2; shift 2
    if "$@"; then ok "$n"; else fail "$n" "$why"; fi
}
finish() { [ "$NFAIL" -eq 0 ]; exit $?; }

# The product must exist (make check builds it first).
require_product() {
    local f missing=
    for f in "$AGENT" "$PERFAGENT" "$@"; do [ -e "$f" ] || missing="$missing $f"; done
    for f in leaks_fp allocfns churn; do [ -x "$W/$f" ] || missing="$missing $W/$f"; done
    if [ -n "$missing" ]; then
        echo "FAIL $SUITE: missing:$missing (run make first)"
        exit 1
    fi
}

# run NAME CMD... : run CMD with the timeout; stdout, stderr and exit status
# land in $T/NAME.out, $T/NAME.err, $T/NAME.rc and the elapsed seconds in
# $T/NAME.secs.  The environment is inherited; use `env VAR=x CMD` to set some.
run() {
    local name=$1; shift
    local t0 t1
    t0=$(date +%s.%N)
    timeout -k 5 "$TO" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null
    echo $? >"$T/$name.rc"
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{printf "%.2f\n", $2 - $1}' >"$T/$name.secs"
}
rc_of()   { cat "$T/$1.rc"; }
out_of()  { cat "$T/$1.out"; }
nlines()  { wc -l <"$1" | tr -d ' '; }

# The agent's environment for exact mode.
agent_env() { echo "LD_PRELOAD=$AGENT PERFAGENT_MALLOC_RATE=1"; }

# same_output NAME BASE RUN : exit status and stdout of RUN equal BASE's.
same_output() {
    local n=$1 a=$2 b=$3
    if [ "$(rc_of "$a")" != "$(rc_of "$b")" ]; then
        fail "$n" "exit status $(rc_of "$b") under the agent, $(rc_of "$a") without (stderr: $(head -c 300 "$T/$b.err" | tr '\n' '|'))"
    elif ! cmp -s "$T/$a.out" "$T/$b.out"; then
        fail "$n" "stdout differs: $(diff "$T/$a.out" "$T/$b.out" | head -5 | tr '\n' '|')"
    else
        ok "$n"
    fi
}

# report NAME OUTDIR FILE.pfr... : perfagent report; ok/FAIL NAME.
report() {
    local n=$1 dir=$2; shift 2
    timeout -k 5 "$TO" "$PERFAGENT" report "$@" -o "$dir" >"$T/$n.report.out" 2>"$T/$n.report.err"
    local rc=$?
    if [ $rc -ne 0 ]; then
        fail "$n" "perfagent report exited $rc: $(head -c 300 "$T/$n.report.err" | tr '\n' '|')"
        return 1
    fi
    if [ ! -f "$dir/index.json" ]; then
        fail "$n" "no $dir/index.json"
        return 1
    fi
    ok "$n"
}

# procs DIR : "PID PPID EXE DIR" per process of DIR/index.json
procs() { $PYQ index "$1/index.json" 2>/dev/null; }
# proc_dir DIR EXE : the report folder of the one process named EXE
proc_dir() { procs "$1" | awk -v e="$2" '$3 == e { print $4 }' | head -1; }
proc_count() { procs "$1" | awk -v e="$2" '$3 == e' | wc -l | tr -d ' '; }

# drop_note LEAKS : the non-zero drop counters of summary.txt beside LEAKS
# (to explain a wrong number; exact mode with drops is not exact)
drop_note() {
    local s
    s=$(dirname "$1")/summary.txt
    [ -f "$s" ] || return 0
    awk '/^drops/ { f = 1; next } f && NF == 0 { f = 0 }
         f && $1 ~ /^[a-z_]+:$/ && $2 ~ /^[0-9]+$/ && $2 > 0 { d = d " " $1 " " $2 }
         END { if (d != "") printf "; agent dropped:%s", d }' "$s"
}

# check_site NAME LEAKS FUNC "BYTES OBJECTS" [SKIP_RE]
check_site() {
    local got
    got=$($PYQ site "$2" "$3" ${5:+"$5"} 2>&1 | awk '{print $1, $2}')
    expect_eq "$1" "$got" "$4" "leak bytes/objects at $3$(drop_note "$2")"
}

# check_none NAME LEAKS FUNC : no leaked stack has FUNC in any frame
check_none() {
    expect_eq "$1" "$($PYQ through "$2" "$3" 2>&1)" "0 0" "leaked bytes/objects through $3$(drop_note "$2")"
}

# check_frames NAME LEAKS FUNC "f0;f1;..." : leaf-first names of its stack
check_frames() {
    local want=$4 got
    local n
    n=$(echo "$want" | awk -F';' '{print NF}')
    got=$($PYQ frames "$2" "$3" "$n" 2>&1)
    expect_eq "$1" "$got" "$want" "frames, leaf first"
}


# wait_for_socket PATH SECONDS
wait_for_socket() {
    local i
    for ((i = 0; i < $2 * 20; i++)); do
        [ -S "$1" ] && return 0
        sleep 0.05
    done
    return 1
}

# record NAME EXE PRELOAD CMD... : run CMD in exact mode with LD_PRELOAD=PRELOAD
# writing $T/NAME.pfr, then report it into $T/NAME.rep.  Sets RD to the
# report folder of the process named EXE (empty when something failed, after
# a FAIL line).  Extra agent variables can be passed through `env` in CMD.
record() {
    local n=$1 exe=$2 pre=$3; shift 3
    RD=
    run "$n" env LD_PRELOAD="$pre" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/$n.pfr" "$@"
    if [ ! -s "$T/$n.pfr" ]; then
        fail "$n.pfr" "no $T/$n.pfr (exit $(rc_of "$n"); stderr: $(head -c 300 "$T/$n.err" | tr '\n' '|'))"
        return 1
    fi
    report "$n.report" "$T/$n.rep" "$T/$n.pfr" || return 1
    RD=$(proc_dir "$T/$n.rep" "$exe")
    if [ -z "$RD" ] || [ ! -f "$RD/leaks.json" ]; then
        fail "$n.leaks_json" "no process $exe with a leaks.json in $T/$n.rep/index.json"
        RD=
        return 1
    fi
}
