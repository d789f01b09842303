#!/usr/bin/env bash
# make mutants: every deliberate bug in tests/mutants/*.patch must be caught.
#
# Each patch starts with two header lines before its diff (patch(1) skips
# leading text that is not a diff):
#   Mutant: what the bug is
#   Tests:  words for tests/run.sh's TESTS filter (the tests that must catch it)
# For each one, the work tree (without .git, with the current build dir so
# that only what the patch touches is rebuilt) is copied to a scratch dir,
# the patch is applied, `make all test-bins` runs, then the named tests.  The
# mutant is killed when those tests fail; it survives when they all pass.  A
# patch that no longer applies, or a mutant that does not build, fails too:
# a mutant that cannot run proves nothing.
#
# Usage: tools/mutants.sh [NAME...]   (default: all; NAME without .patch)
# Environment: B (build dir, default build), MUTANTS_BASELINE=1 also runs
# each mutant's tests on the unpatched scratch copy first (they must pass).
# Ends with "N killed, N survived"; exit status 0 when every mutant died.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
B=${B:-build}
scratch=$(mktemp -d /tmp/pa-mutants.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
killed=0; survived=0; bad=()

if [ ! -x "$B/libperfagent.so" ] && [ ! -f "$B/libperfagent.so" ]; then
    echo "mutants: $B/libperfagent.so missing: run 'make all test-bins' first" >&2
    exit 2
fi

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for p in tests/mutants/*.patch; do names+=("$(basename "$p" .patch)"); done
fi

t_all=$SECONDS
for n in "${names[@]}"; do
    p=$ROOT/tests/mutants/$n.patch
    t0=$SECONDS
    if [ ! -f "$p" ]; then
        echo "FAIL mutant.$n: no $p"; survived=$((survived + 1)); bad+=("$n"); continue
    fi
    what=$(sed -n 's/^Mutant: *//p' "$p" | head -1)
    tests=$(sed -n 's/^Tests: *//p' "$p" | head -1)
    if [ -z "$tests" ]; then
        echo "FAIL mutant.$n: no 'Tests:' line"; survived=$((survived + 1)); bad+=("$n"); continue
    fi
    d=$scratch/$n
    mkdir -p "$d"
    # tar keeps mtimes: make rebuilds only what the patch changes.
    tar -C "$ROOT" --exclude=./.git --exclude='./build-*' -cf - . | tar -C "$d" -xf -
    log=$scratch/$n.log
    if [ -n "${MUTANTS_BASELINE:-}" ] &&
        ! (cd "$d" && B=$B TESTS="$tests" tests/run.sh) >"$log.base" 2>&1; then
        echo "FAIL mutant.$n: its tests ($tests) fail without the mutant:"
        tail -5 "$log.base" | sed 's/^/    | /'
        survived=$((survived + 1)); bad+=("$n"); continue
    fi
    if ! (cd "$d" && patch -p1 --no-backup-if-mismatch -s <"$p") >"$log" 2>&1; then
        echo "FAIL mutant.$n: patch no longer applies: $(head -3 "$log" | tr '\n' '|')"
        survived=$((survived + 1)); bad+=("$n"); rm -rf "$d"; continue
    fi
    if ! (cd "$d" && make -s B="$B" all test-bins) >>"$log" 2>&1; then
        echo "FAIL mutant.$n: does not build: $(grep -m3 -i error "$log" | tr '\n' '|')"
        survived=$((survived + 1)); bad+=("$n"); rm -rf "$d"; continue
    fi
    (cd "$d" && B=$B TESTS="$tests" tests/run.sh) >>"$log" 2>&1
    rc=$?
    summary=$(tail -1 "$log")
    if [ $rc -ne 0 ]; then
        killed=$((killed + 1))
        echo "ok mutant.$n: killed by $(sed -n 's/^failed: //p' "$log" | tail -1) ($summary; $((SECONDS - t0)) s) - $what"
    else
        survived=$((survived + 1)); bad+=("$n")
        echo "FAIL mutant.$n: SURVIVED $tests ($summary; $((SECONDS - t0)) s) - $what"
    fi
    rm -rf "$d"
done
[ ${#bad[@]} -gt 0 ] && echo "not killed: ${bad[*]}"
echo "mutants: $killed killed, $survived survived ($((SECONDS - t_all)) s)"
[ "$survived" -eq 0 ]
