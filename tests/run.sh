#!/usr/bin/env bash
# Runs every test and ends with one line "N passed, N failed".
#
# A test is a line "ok NAME" or "FAIL NAME[: why]" printed by a unit-test
# binary (build/tests/test_*) or an end-to-end script (tests/e2e/*.sh).  A
# binary or script that exits non-zero without printing a FAIL line counts as
# one failure named after itself.  Exit status: 0 when nothing failed.
#
# Environment: B (build dir, default build), TESTS (space-separated name
# filter: run only binaries/scripts whose name contains one of the words).
set -u
cd "$(dirname "$0")/.."
B=${B:-build}
export B
export PA_ROOT=$PWD
pass=0; fail=0; failed=()
logdir=$(mktemp -d /tmp/pa-tests.XXXXXX)

want() {
    [ -z "${TESTS:-}" ] && return 0
    for w in $TESTS; do case "$1" in *"$w"*) return 0;; esac; done
    return 1
}

run_one() { # name, command...
    local name=$1; shift
    local log="$logdir/$name.log" start=$SECONDS rc
    "$@" >"$log" 2>&1 </dev/null
    rc=$?
    local p f
    p=$(grep -c '^ok ' "$log"); f=$(grep -c '^FAIL ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "FAIL $name: exit status $rc" >>"$log"; fi
    pass=$((pass + p)); fail=$((fail + f))
    printf '%-34s %3d ok %3d failed  (%ds)\n' "$name" "$p" "$f" $((SECONDS - start))
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

[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
