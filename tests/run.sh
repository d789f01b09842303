#!/usr/bin/env bash
# Runs every test and ends with one line "N passed, N failed".
#
# A test is a line "ok NAME" or "FAIL NAME[: why]" printed by a unit-test
# binary (build/tests/test_*) or an end-to-end script (tests/e2e/*.sh).
#
# The runner knows what to expect (tests/expected-counts, one line per binary
# or script: NAME CHECKS TIMEOUT-SECONDS):
#   - a binary or script that prints fewer ok/FAIL lines than CHECKS (it
#     exited early, crashed midway, or lost a check) has the missing ones
#     counted as failures;
#   - one that runs longer than TIMEOUT is killed (SIGTERM, then SIGKILL
#     10 s later, with its whole process group) and fails with its name;
#   - one that exits non-zero without printing a FAIL line fails once;
#   - one with no line in tests/expected-counts fails: every test declares
#     how many checks it runs.
# More checks than expected pass, with a note to update the file:
#   make check-counts   reruns everything and rewrites tests/expected-counts
#                       from a run with no failure (UPDATE_COUNTS=1).
#
# Environment: B (build dir, default build), TESTS (space-separated name
# filter: run only binaries/scripts whose name contains one of the words),
# UPDATE_COUNTS=1 (rewrite tests/expected-counts after a fully green run;
# refused with TESTS set).  Exit status: 0 when nothing failed.
set -u
cd "$(dirname "$0")/.."
B=${B:-build}
export B
export PA_ROOT=$PWD
COUNTS=tests/expected-counts
DEFAULT_TIMEOUT=300
pass=0; fail=0; failed=(); seen=()
logdir=$(mktemp -d /tmp/pa-tests.XXXXXX)

want() {
    [ -z "${TESTS:-}" ] && return 0
    for w in $TESTS; do case "$1" in *"$w"*) return 0;; esac; done
    return 1
}

# expected NAME -> "CHECKS TIMEOUT", or nothing when NAME has no line
expected() {
    [ -f "$COUNTS" ] || return 0
    awk -v n="$1" '$1 == n { print $2, ($3 == "" ? "'$DEFAULT_TIMEOUT'" : $3); exit }' "$COUNTS"
}

run_one() { # name, command...
    local name=$1; shift
    local log="$logdir/$name.log" start=$SECONDS rc exp want_n limit
    exp=$(expected "$name")
    want_n=${exp% *}; limit=${exp#* }
    [ -n "$exp" ] || { want_n=; limit=$DEFAULT_TIMEOUT; }
    # timeout(1) puts the test in a process group of its own and signals the
    # whole group, so a collector the script started (even one that ignores
    # SIGTERM: -k) cannot outlive its script and hang the suite.
    timeout -k 10 "$limit" "$@" >"$log" 2>&1 </dev/null &
    local tpid=$!
    wait "$tpid"
    rc=$?
    # What is left of its process group (a child that ignored SIGTERM after
    # its script died, a collector the script forgot) goes too.
    kill -KILL -- "-$tpid" 2>/dev/null
    local p f ran extra=0 why= notes=()
    p=$(grep -c '^ok ' "$log"); f=$(grep -c '^FAIL ' "$log"); ran=$((p + f))
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        extra=1; why="timed out after ${limit} s (limit in $COUNTS)"
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        extra=1; why="exit status $rc"
    fi
    if [ -n "${UPDATE_COUNTS:-}" ]; then
        : # rewriting the counts: only real failures stop the rewrite
    elif [ -z "$want_n" ]; then
        extra=$((extra + 1)); why="${why:+$why; }no line in $COUNTS (run 'make check-counts')"
    elif [ "$ran" -lt "$want_n" ]; then
        # the checks it never reached fail (they include the crash or timeout)
        extra=$((want_n - ran))
        why="${why:+$why; }ran $ran of $want_n expected checks, $extra missing"
    elif [ "$ran" -gt "$want_n" ]; then
        notes+=("$((ran - want_n)) more than the $want_n expected: update $COUNTS")
    fi
    [ -n "$why" ] && echo "FAIL $name: $why" >>"$log"
    f=$((f + extra))
    pass=$((pass + p)); fail=$((fail + f))
    seen+=("$name $((p + f)) $limit $((SECONDS - start))")
    printf '%-34s %3d ok %3d failed  (%ds)\n' "$name" "$p" "$f" $((SECONDS - start))
    [ ${#notes[@]} -gt 0 ] && printf '    note: %s\n' "${notes[@]}"
    if [ "$f" -gt 0 ]; then
        failed+=("$name")
        grep -E '^(FAIL|  FAIL)' "$log" | head -20 | sed 's/^/    /'
        echo "    (log: $log; last lines:)"; tail -15 "$log" | sed 's/^/    | /'
    fi
}

for t in "$B"/tests/test_*; do
    [ -x "$t" ] || continue
    n=$(basename "$t"); want "$n" || continue
    run_one "$n" "$t"
done
for s in tests/e2e/*.sh; do
    [ -f "$s" ] || continue
    n=$(basename "$s" .sh); want "$n" || continue
    run_one "$n" bash "$s"
done

# A declared test that was not found (its binary not built, its script gone)
# fails with all of its checks.
if [ -z "${TESTS:-}" ] && [ -z "${UPDATE_COUNTS:-}" ] && [ -f "$COUNTS" ]; then
    while read -r n c _; do
        case $n in ''|'#'*) continue;; esac
        found=
        for s in "${seen[@]}"; do [ "${s%% *}" = "$n" ] && found=1 && break; done
        if [ -z "$found" ]; then
            echo "FAIL $n: declared in $COUNTS ($c checks) but not found"
            fail=$((fail + c)); failed+=("$n")
        fi
    done <"$COUNTS"
fi

if [ -n "${UPDATE_COUNTS:-}" ]; then
    if [ -n "${TESTS:-}" ] || [ "$fail" -ne 0 ]; then
        echo "UPDATE_COUNTS: not rewriting $COUNTS (needs a full run with no failure)"
    else
        {
            echo "# NAME CHECKS TIMEOUT-SECONDS: what tests/run.sh expects of each unit binary"
            echo "# and e2e script.  Written by 'make check-counts' from a run with no failure;"
            echo "# the timeout is kept, or 5x the run's time (at least 120 s) for a new test."
            for s in "${seen[@]}"; do
                set -- $s
                old=$(awk -v n="$1" '$1 == n { print $3 }' "$COUNTS" 2>/dev/null)
                t=${old:-$(( $4 * 5 > 120 ? $4 * 5 : 120 ))}
                echo "$1 $2 $t"
            done
        } >"$COUNTS.new" && mv "$COUNTS.new" "$COUNTS"
        echo "UPDATE_COUNTS: wrote $COUNTS"
    fi
fi

[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
