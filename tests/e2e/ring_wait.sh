#!/usr/bin/env bash
# A full ring with a file output (thread.c pa_ring_wait): on a machine whose
# CPUs are all busy, the sender thread falls behind because it waits for a
# CPU, not because the output is slow.  Exact mode must then stay exact: the
# host thread waits (bounded) instead of dropping rows.  And an output that
# never drains (a FIFO nobody reads) must not hang the host: the waits are
# bounded, rows are dropped and counted.
#
# The same lines are printed whatever fails (a fixed check count); the busy
# loops and the FIFO's reader are bounded by timeout and killed.
. "$(dirname "$0")/common.bash"
require_product
CK="$PY $PA_ROOT/tests/e2e/lib/checks.py"

# Two busy loops take both CPUs; the smallest ring (64 KiB) fills in well
# under a millisecond of churn.  Without the wait this run dropped ~45% of
# its rows (3.5 M of 8 M), leaving thousands of false leaks.
hogs=()
for i in 1 2; do
    (exec timeout 120 sh -c 'while :; do :; done') &
    hogs+=($!)
done
run busy env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_BUFFER_KB=64 \
    PERFAGENT_OUTPUT="$T/busy.pfr" "$W/churn" 100 20000 0 2
kill "${hogs[@]}" 2>/dev/null
wait "${hogs[@]}" 2>/dev/null
run plain "$W/churn" 100 20000 0 2
same_output busy.output plain busy
report busy.report "$T/busy.rep" "$T/busy.pfr"
d=$(proc_dir "$T/busy.rep" churn); d=${d:-$T/none}
s=$d/summary.txt
# nothing lost: no drops, every free matched to its allocation, no address
# reused without its free
expect_eq busy.no_drops "$($CK sum "$s" drops frees_unknown implied superseded 2>&1)" "0 0 0 0" \
    "drops frees_unknown implied superseded"
check_none busy.churn_no_leaks "$d/leaks.json" churn_alloc
# every allocation of the two workers, as churn counted them (stdout):
# allocations, bytes and frees per thread, and the bytes at churn_alloc
expect_eq busy.freed_all "$($CK exited "$s" 2>&1)" "$($CK churn "$T/plain.out" 2>&1)" \
    "exited threads' allocations bytes frees"
expect_eq busy.alloc_folded "$($PYQ foldedsite "$d/alloc.folded" churn_alloc 2>&1)" \
    "$(awk '/^churn: thread=/ { sub("bytes=", "", $4); n += $4 } END { print n + 0 }' "$T/plain.out")" \
    "churn_alloc bytes in alloc.folded"

# An output that accepts nothing: a FIFO whose reader never reads.  The
# sender's first write blocks for good; host threads wait at most once per
# stall and then drop.  The program must finish, with its own output.
mkfifo "$T/fifo"
(exec sleep 120 <"$T/fifo") &
reader=$!
run stuck env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_BUFFER_KB=64 \
    PERFAGENT_OUTPUT="$T/fifo" "$W/churn" 30 20000 0 2
kill "$reader" 2>/dev/null
run plain_small "$W/churn" 30 20000 0 2
same_output stuck.output plain_small stuck
secs=$(cat "$T/stuck.secs")
if awk -v s="$secs" 'BEGIN { exit !(s < 20) }'; then ok stuck.finished; else
    fail stuck.finished "took ${secs}s with an output that never drains"; fi

finish
