#!/usr/bin/env bash
# A full ring with a file output (thread.c pa_ring_wait): on a machine whose
# CPUs are all busy, the sender thread falls behind because it waits for a
# CPU, not because the output is slow.  Exact mode must then stay exact: the
# host thread waits (bounded) instead of dropping rows.  And an output that
# never drains (a FIFO nobody reads) must not hang the host: the waits are
# bounded, rows are dropped and counted.
. "$(dirname "$0")/common.bash"
require_product

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
if report busy.report "$T/busy.rep" "$T/busy.pfr"; then
    d=$(proc_dir "$T/busy.rep" churn)
    s=$d/summary.txt
    expect_eq busy.no_drops "$(awk '/^drops/ { f = 1; next } f && NF == 0 { f = 0 }
        f && $1 ~ /^[a-z_]+:$/ { n += $2 } END { print n + 0 }' "$s")" 0
    check_none busy.churn_no_leaks "$d/leaks.json" churn_alloc
    # every allocation of the two workers matched by its free
    expect_eq busy.freed_all "$(awk '/^  tid .*\(exited\)/ { a = $4; f = $8; sub(",", "", a);
        if (a != f) bad++; n++ } END { print n + 0, bad + 0 }' "$s")" "2 0"
fi

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
