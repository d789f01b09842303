#!/usr/bin/env bash
# `perfagent top` on a real report: leaks_fp in exact mode (file mode, then
# `perfagent report`), the alloc and inuse tables of its process.  Every
# allocation's bytes are known (tests/workloads/leaks.c): leak_site_a 300 x
# 1000, mid_p -> mid_q -> leak_site_b 200 x 256, leak_site_c 10 x 4096,
# leak_site_d -> inline_leaker (inlined) 33 x 2000, scratch_alloc the rest of
# the total leaks.c prints; all under main.  Each checked row is the whole
# row: self, self%, sum%, cum, cum% (percentages recomputed here with
# integers, rounded half up).
. "$(dirname "$0")/common.bash"
require_product
TOP="$PERFAGENT top"

A=300000 B=51200 C=40960 D=66000
LEAK_A=100000 LEAK_B=12800 LEAK_C=28672 LEAK_D=22000 LEAKED=163472

# pct X TOTAL -> "12.34" (half up, as top.c)
pct() {
    local h=$(( ($1 * 10000 + $2 / 2) / $2 ))
    printf '%d.%02d' $((h / 100)) $((h % 100))
}
# row OUT FUNC -> the row of FUNC in a table, fields joined by one space
row() { awk -v f="$2" 'NR > 4 && $NF == f { $1 = $1; print; exit }' "$T/$1.out"; }
# want_row NAME OUT FUNC SELF CUM SUM TOTAL: expect the whole row (raw)
want_row() {
    local n=$1 o=$2 f=$3 s=$4 c=$5 sum=$6 tot=$7
    expect_eq "$n" "$(row "$o" "$f")" "$s $(pct "$s" "$tot")% $(pct "$sum" "$tot")% $c $(pct "$c" "$tot")% $f"
}
# names OUT -> the program's functions in table order
names() {
    awk 'NR > 4 { print $NF }' "$T/$1.out" |
        grep -xE 'main|scratch_alloc|leak_site_[abcd]|inline_leaker|mid_[pq]' | tr '\n' ' '
}

run base "$W/leaks_fp"
ALLOCATED=$(sed -n 's/^allocated=\([0-9]*\)\/.*/\1/p' "$T/base.out")
S=$((ALLOCATED - A - B - C - D)) # scratch_alloc
run rec env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/x.pfr" "$W/leaks_fp"
same_output recorded.stdout_and_status base rec
report report "$T/rep" "$T/x.pfr" || finish
R=$(proc_dir "$T/rep" leaks_fp) # the process's directory (a path)

# 1. the reports dir (one process): alloc.folded (there is no cpu.folded
#    with samples in a heap run), exact bytes
run alloc $TOP "$T/rep" --raw -n 0
expect_eq alloc.exit "$(rc_of alloc) $(cat "$T/alloc.err")" "0 "
expect_eq alloc.file "$(sed -n 1p "$T/alloc.out")" "file: $R/alloc.folded"
expect_eq alloc.total "$(sed -n 2p "$T/alloc.out" | cut -d, -f1)" "total $ALLOCATED bytes in 5 stacks"
expect_eq alloc.order "$(names alloc)" \
    "scratch_alloc leak_site_a inline_leaker leak_site_b leak_site_c leak_site_d main mid_p mid_q "
want_row alloc.scratch_alloc alloc scratch_alloc "$S" "$S" "$S" "$ALLOCATED"
want_row alloc.leak_site_a alloc leak_site_a $A $A $((S + A)) "$ALLOCATED"
want_row alloc.inline_leaker alloc inline_leaker $D $D $((S + A + D)) "$ALLOCATED"
want_row alloc.leak_site_b alloc leak_site_b $B $B $((S + A + D + B)) "$ALLOCATED"
want_row alloc.leak_site_c alloc leak_site_c $C $C "$ALLOCATED" "$ALLOCATED"
want_row alloc.leak_site_d alloc leak_site_d 0 $D "$ALLOCATED" "$ALLOCATED"
want_row alloc.mid_p alloc mid_p 0 $B "$ALLOCATED" "$ALLOCATED"
want_row alloc.mid_q alloc mid_q 0 $B "$ALLOCATED" "$ALLOCATED"
want_row alloc.main alloc main 0 "$ALLOCATED" "$ALLOCATED" "$ALLOCATED"

# 2. human-readable bytes (300000 B = 292.97 KiB), -n 3
run human $TOP "$T/rep" -n 3
expect_eq human.rows "$(awk 'NR > 4' "$T/human.out" | wc -l)" 3
expect_eq human.leak_site_a "$(row human leak_site_a)" \
    "292.97 KiB $(pct $A "$ALLOCATED")% $(pct $((S + A)) "$ALLOCATED")% 292.97 KiB $(pct $A "$ALLOCATED")% leak_site_a"
expect_eq human.inline_leaker "$(row human inline_leaker | cut -d' ' -f1,2)" "64.45 KiB"

# 3. by cum: main (tied with the libc frames above it), then cum descending,
#    ties by name; sum% still adds self in this order
run cum $TOP "$T/rep" --sort cum --raw -n 0
expect_eq cum.order "$(names cum)" \
    "main scratch_alloc leak_site_a inline_leaker leak_site_d leak_site_b mid_p mid_q leak_site_c "
want_row cum.leak_site_a cum leak_site_a $A $A $((S + A)) "$ALLOCATED"
want_row cum.leak_site_d cum leak_site_d 0 $D $((S + A + D)) "$ALLOCATED"

# 4. inuse: what leaked
run inuse $TOP --kind inuse --raw "$T/rep"
expect_eq inuse.file "$(sed -n 1p "$T/inuse.out")" "file: $R/inuse.folded"
expect_eq inuse.total "$(sed -n 2p "$T/inuse.out" | cut -d, -f1)" "total $LEAKED bytes in 4 stacks"
want_row inuse.leak_site_a inuse leak_site_a $LEAK_A $LEAK_A $LEAK_A $LEAKED
want_row inuse.leak_site_c inuse leak_site_c $LEAK_C $LEAK_C $((LEAK_A + LEAK_C)) $LEAKED
want_row inuse.inline_leaker inuse inline_leaker $LEAK_D $LEAK_D $((LEAK_A + LEAK_C + LEAK_D)) $LEAKED
want_row inuse.leak_site_b inuse leak_site_b $LEAK_B $LEAK_B $LEAKED $LEAKED
want_row inuse.main inuse main 0 $LEAKED $LEAKED $LEAKED
expect_eq inuse.no_scratch "$(row inuse scratch_alloc)" ""

# 5. --json: exact integers
run json $TOP "$T/rep" --json -n 0
got=$($PY - "$T/json.out" <<'PY' 2>&1
import json, sys
d = json.load(open(sys.argv[1]))
r = {x["function"]: x for x in d["rows"]}
print(d["kind"], d["unit"], d["total"], d["stacks"], d["sort"], d["file"].split("/")[-1],
      *["%s=%d/%d" % (f, r[f]["self"], r[f]["cum"]) for f in
        ("leak_site_a", "inline_leaker", "leak_site_b", "mid_p", "leak_site_c", "main")],
      "%.2f" % r["leak_site_a"]["self_pct"], "%.2f" % r["main"]["cum_pct"])
PY
)
expect_eq json.values "$got" "alloc bytes $ALLOCATED 5 self alloc.folded leak_site_a=$A/$A inline_leaker=$D/$D leak_site_b=$B/$B mid_p=0/$B leak_site_c=$C/$C main=0/$ALLOCATED $(pct $A "$ALLOCATED") 100.00"

# 6. the folded file given directly: the same table
run direct $TOP "$R/alloc.folded" --raw -n 0
expect_eq direct.same_table "$(cmp "$T/direct.out" "$T/alloc.out" 2>&1 && echo same)" same

finish
