#!/usr/bin/env bash
# The agent's own unwinder (PERFAGENT_UNWIND=cfi, the default) against
# libunwind's unw_backtrace(): under PERFAGENT_UNWIND=verify the agent takes
# every stack both ways and counts the stacks where they differ.  Run on a
# workload made of awkward frame shapes (tests/workloads/unwind_shapes.c)
# and on real programs nobody here wrote; all must report 0 mismatches.
# Then the default mode must give the same leak report as libunwind.
. "$(dirname "$0")/common.bash"
require_product "$W/unwind_shapes"

export LC_ALL=C

# verify_line NAME : the "unwind verify: M mismatches, F stacks left to
# libunwind, R rules read" numbers of every process of run NAME, one line
# "M F R" each.
verify_nums() {
    sed -n 's/.*unwind verify: \([0-9]*\) mismatches, \([0-9]*\) stacks left to libunwind, \([0-9]*\) rules read.*/\1 \2 \3/p' \
        "$T/$1.err"
}

# verify NAME MIN_FALLBACKS MAX_FALLBACKS CMD... : run CMD under verify mode;
# every process must report 0 mismatches and read rules; the first
# process's fallback count must be within [MIN, MAX].
verify() {
    local n=$1 lo=$2 hi=$3 nums bad
    shift 3
    mkdir -p "$T/$n.d"
    run "$n" env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_UNWIND=verify \
        PERFAGENT_OUTPUT="$T/$n.d/%p.pfr" "$@"
    nums=$(verify_nums "$n")
    if [ -z "$nums" ]; then
        fail "$n.verified" "no 'unwind verify' line (exit $(rc_of "$n"); stderr: $(head -c 300 "$T/$n.err" | tr '\n' '|'))"
        return
    fi
    bad=$(echo "$nums" | awk '$1 != 0 || $3 == 0' | head -1)
    if [ -n "$bad" ]; then
        fail "$n.same_stacks" "mismatches/fallbacks/rules = $bad: $(grep -m4 'verify' "$T/$n.err" | tr '\n' '|' | head -c 600)"
    else
        ok "$n.same_stacks"
    fi
    local fb
    fb=$(echo "$nums" | head -1 | awk '{print $2}')
    if [ "$fb" -ge "$lo" ] && [ "$fb" -le "$hi" ]; then
        ok "$n.fallbacks"
    else
        fail "$n.fallbacks" "$fb stacks left to libunwind, want $lo..$hi"
    fi
}

# ---- the shapes workload: the signal frame and the two calls through code
# without unwind info (one per thread) must go to libunwind, nothing else.
verify shapes 3 3 "$W/unwind_shapes"
expect_eq shapes.output "$(out_of shapes)" "allocs 509"
verify shapes_max4 3 3 env PERFAGENT_MAX_FRAMES=4 "$W/unwind_shapes"
verify shapes_max200 3 3 env PERFAGENT_MAX_FRAMES=200 "$W/unwind_shapes"

# ---- real programs (their allocations come from deep inside libc, libpython,
# libperl, libsqlite3, libstdc++ ...: thousands of distinct stacks)
PY=/usr/bin/python3; [ -x "$PY" ] || PY=$(command -v python3)
verify python3 0 0 "$PY" -c '
import json, re, collections, decimal
d = collections.Counter(re.findall(r"\w+", open("/etc/services").read()))
print(len(json.dumps(d.most_common(50))), decimal.Decimal(1) / 7)'
verify perl 0 0 perl -e 'my %h; $h{$_ % 97} .= "x" x ($_ % 13) for 1 .. 20000; print scalar(keys %h), "\n"'
verify sqlite3 0 0 sqlite3 :memory: 'create table t(a,b); with recursive c(x) as (select 1 union all select x+1 from c limit 5000) insert into t select x, hex(randomblob(20)) from c; select count(*), max(length(b)) from t;'
verify sort 0 0 sh -c 'seq 20000 | sort -R --random-source=/dev/zero | sort -n | tail -1'
# libstdc++ allocates its emergency pool from a constructor the loader runs
# from _dl_start_user, assembly without unwind info: one stack for libunwind.
verify cxx_new 1 1 "$W/cxx_new"

# ---- the default mode gives the same leak report as libunwind
for u in cfi libunwind; do
    run "leaks_$u" env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_UNWIND=$u \
        PERFAGENT_OUTPUT="$T/leaks_$u.pfr" "$W/leaks_nofp"
    report "leaks_$u.report" "$T/leaks_$u.rep" "$T/leaks_$u.pfr"
done
a=$(proc_dir "$T/leaks_cfi.rep" leaks_nofp)
b=$(proc_dir "$T/leaks_libunwind.rep" leaks_nofp)
if [ -n "$a" ] && [ -n "$b" ] && [ -s "$a/leaks.txt" ] &&
    cmp -s <(tail -n +2 "$a/leaks.txt") <(tail -n +2 "$b/leaks.txt"); then
    ok leaks_same_report
else
    fail leaks_same_report "leaks.txt (after its pid line) differs between cfi and libunwind: $(diff "$a/leaks.txt" "$b/leaks.txt" 2>&1 | head -6 | tr '\n' '|')"
fi

# ---- the stack memo: six callers share the hook frame, the wrapper's frame
# and every word up to the middle function's return address; a walk reused
# for the wrong caller would move blocks between callers (all are 64 B).
verify memo 0 0 "$W/memo_callers"
expect_eq memo.output "$(out_of memo)" "leaked 8400"
run memo_cfi env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_LOG=debug \
    PERFAGENT_OUTPUT="$T/memo_cfi.pfr" "$W/memo_callers"
report memo_cfi.report "$T/memo_cfi.rep" "$T/memo_cfi.pfr"
d=$(proc_dir "$T/memo_cfi.rep" memo_callers)
for k in 0 1 2 3 4 5; do
    want="76800 1200"
    [ $k -lt 2 ] && want="115200 1800"
    expect_eq "memo.caller_$k" "$($PYQ through "$d/leaks.json" "caller_$k")" "$want"
done
expect_eq memo.total "$($PYQ total "$d/leaks.json")" "537600 8400"
# The memo was used: the two-caller phase walks each stack only once.
walked=$(sed -n 's/.*stacks walked (memo missed): \([0-9]*\).*/\1/p' "$T/memo_cfi.err")
if [ -n "$walked" ] && [ "$walked" -gt 0 ] && [ "$walked" -lt 8000 ]; then
    ok memo.reused
else
    fail memo.reused "stacks walked: '${walked}' of 8400 allocations"
fi

# ---- a bad value falls back to the default with one warning line
run badval env LD_PRELOAD="$AGENT" PERFAGENT_UNWIND=bogus PERFAGENT_OUTPUT="$T/badval.pfr" "$W/unwind_shapes"
expect_eq badval.warning "$(grep -c 'PERFAGENT_UNWIND' "$T/badval.err")" 1
expect_eq badval.status "$(rc_of badval)" 0

finish
