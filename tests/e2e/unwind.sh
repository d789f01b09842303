#!/usr/bin/env bash
# The agent's own unwinder (PERFAGENT_UNWIND=cfi, the default) against
# libunwind's unw_backtrace(): under PERFAGENT_UNWIND=verify the agent takes
# every stack both ways and counts the stacks where they differ.  Run on a
# workload made of awkward frame shapes (tests/workloads/unwind_shapes.c)
# and on real programs nobody here wrote; all must report 0 mismatches.
# Then the default mode must give the same leak report as libunwind, and
# cfi must answer every stack of the leaks workloads by itself: under
# PERFAGENT_UNWIND=cfi-strict (no libunwind behind it) their leak numbers
# are exact, and the PERFAGENT_LOG=debug counters say no stack was handed to
# libunwind or cut short.  (In the default mode a cfi.c that answers
# nothing still gives right reports, through libunwind.)
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

# counters NAME : "ANSWERED LEFT CUT" from run NAME's PERFAGENT_LOG=debug
# exit lines (stacks answered by cfi, left to libunwind, cut short by
# cfi-strict); "-" for a line that is missing.
counters() {
    local k v out=
    for k in 'stacks answered by cfi' 'stacks left to libunwind' 'stacks cut short (cfi-strict)'; do
        v=$(grep -F "unwind: $k: " "$T/$1.err" | sed 's/.*: \([0-9]*\)$/\1/' | head -1)
        out="$out ${v:--}"
    done
    echo "${out# }"
}

# ---- the default mode gives the same leak report as libunwind
for u in cfi libunwind; do
    run "leaks_$u" env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_UNWIND=$u \
        PERFAGENT_LOG=debug PERFAGENT_OUTPUT="$T/leaks_$u.pfr" "$W/leaks_nofp"
    report "leaks_$u.report" "$T/leaks_$u.rep" "$T/leaks_$u.pfr"
done
# 5543: the program's allocations (it prints allocated=BYTES/5543), every
# one through cfi, none left to libunwind.
expect_eq leaks_cfi.counters "$(counters leaks_cfi)" "5543 0 -" "answered/left/cut"
a=$(proc_dir "$T/leaks_cfi.rep" leaks_nofp)
b=$(proc_dir "$T/leaks_libunwind.rep" leaks_nofp)
if [ -n "$a" ] && [ -n "$b" ] && [ -s "$a/leaks.txt" ] &&
    cmp -s <(tail -n +2 "$a/leaks.txt") <(tail -n +2 "$b/leaks.txt"); then
    ok leaks_same_report
else
    fail leaks_same_report "leaks.txt (after its pid line) differs between cfi and libunwind: $(diff "$a/leaks.txt" "$b/leaks.txt" 2>&1 | head -6 | tr '\n' '|')"
fi

# ---- cfi-strict: the leaks workloads' exact numbers (tests/e2e/leaks_exact.sh)
# with cfi alone, on frame-pointer and frame-pointer-less code.
SITE_A="100000 100"; SITE_B="12800 50"; SITE_C="28672 7"; SITE_D="22000 11"
TOTAL="163472 168"
for v in fp nofp; do
    n=strict_$v
    run "$n" env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_UNWIND=cfi-strict \
        PERFAGENT_LOG=debug PERFAGENT_OUTPUT="$T/$n.pfr" "$W/leaks_$v"
    expect_eq "$n.status" "$(rc_of "$n")" 0
    expect_eq "$n.counters" "$(counters "$n")" "5543 0 0" "answered/left/cut"
    report "$n.report" "$T/$n.rep" "$T/$n.pfr" || continue
    d=$(proc_dir "$T/$n.rep" "leaks_$v")
    check_site "$n.site_a" "$d/leaks.json" leak_site_a "$SITE_A"
    check_site "$n.site_b" "$d/leaks.json" leak_site_b "$SITE_B"
    check_site "$n.site_c" "$d/leaks.json" leak_site_c "$SITE_C"
    check_site "$n.site_inline" "$d/leaks.json" inline_leaker "$SITE_D"
    expect_eq "$n.total" "$($PYQ total "$d/leaks.json")" "$TOTAL"
    check_frames "$n.frames_b" "$d/leaks.json" leak_site_b "leak_site_b;mid_q;mid_p;main"
    check_frames "$n.frames_inline" "$d/leaks.json" inline_leaker "inline_leaker;leak_site_d;main"
    expect_eq "$n.none_truncated" "$(grep -c '^\[truncated\]' "$d/alloc.folded")" 0
done

# The shapes workload's three stacks that need libunwind (see verify above)
# are cut short in strict mode where the walk stopped, marked truncated,
# and said so once at exit; in the default mode they go to libunwind.
run shapes_cfi env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_LOG=debug \
    PERFAGENT_OUTPUT="$T/shapes_cfi.pfr" "$W/unwind_shapes"
expect_eq shapes_cfi.counters "$(counters shapes_cfi)" "507 3 -" "answered/left/cut"
run shapes_strict env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_UNWIND=cfi-strict \
    PERFAGENT_LOG=debug PERFAGENT_OUTPUT="$T/shapes_strict.pfr" "$W/unwind_shapes"
expect_eq shapes_strict.output "$(out_of shapes_strict) $(rc_of shapes_strict)" "allocs 509 0"
expect_eq shapes_strict.counters "$(counters shapes_strict)" "507 0 3" "answered/left/cut"
info='unwind: 3 stacks cut short where cfi had no rule (PERFAGENT_UNWIND=cfi-strict)'
expect_eq shapes_strict.info_line "$(grep -cF "$info" "$T/shapes_strict.err")" 1
if report shapes_strict.report "$T/shapes_strict.rep" "$T/shapes_strict.pfr"; then
    d=$(proc_dir "$T/shapes_strict.rep" unwind_shapes)
    # nocfi_call has no FDE: both threads' stacks end there (2 x 40 B); the
    # signal handler's ends at libc's signal trampoline (64 + SIGUSR1 B).
    f=$d/alloc.folded
    expect_eq shapes_strict.cut_nocfi "$(grep -c '^\[truncated\];nocfi_call;via_nocfi;site 80$' "$f")" 1
    expect_eq shapes_strict.cut_signal "$(grep -c '^\[truncated\];[^;]*;on_signal;site 74$' "$f")" 1    # the stream's Hello names the mode, so a report says how it was made
    expect_eq shapes_strict.unwinder "$(grep -c 'unwinder cfi-strict,' "$d/summary.txt")" 1
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
expect_eq memo.counters "$(counters memo_cfi)" "8400 0 -" "answered/left/cut"
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
