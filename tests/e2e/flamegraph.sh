#!/usr/bin/env bash
# perfagent flamegraph and perfagent diff: the command lines (usage errors
# exit 2, bad input names its line), the SVG (well-formed XML, same bytes
# for the same stacks in any order), and the SVG's script in a real browser
# (headless chromium): no console error, a search's exact "matched" share,
# a zoom that makes the frame full width, a 50,000-stack profile; the diff's
# table and graph from folded files and report directories; and the graph of
# a real report's inuse.folded (leaks_fp: 163472 bytes still allocated).
. "$(dirname "$0")/common.bash"
. "$(dirname "$0")/lib/headless.bash"
require_product
if [ ! -x "$CHROMIUM" ]; then
    echo "FAIL $SUITE: no chromium (make deps installs it)"
    exit 1
fi

# ---- the command lines ----------------------------------------------------------

usage() { # NAME ARGS... : exit 2 and exactly one line on stderr
    run "$1" "$PERFAGENT" "${@:2}"
    expect_eq "$1" "$(rc_of "$1") $(nlines "$T/$1.err")" "2 1" "$(head -c 200 "$T/$1.err")"
}
usage usage.fg_no_file flamegraph -o "$T/x.svg"
usage usage.fg_no_output flamegraph "$T/x.folded"
usage usage.fg_bad_unit flamegraph "$T/x.folded" -o "$T/x.svg" --unit parsecs
usage usage.fg_two_files flamegraph a b -o "$T/x.svg"
usage usage.fg_bad_option flamegraph --frobnicate
usage usage.diff_one diff "$T/a" -o "$T/d"
usage usage.diff_no_output diff "$T/a" "$T/b"

printf 'main;a 1\nmain;b 2\nmain;;c 3\n' >"$T/bad.folded"
run bad_input "$PERFAGENT" flamegraph "$T/bad.folded" -o "$T/bad.svg"
expect_eq bad_input "$(rc_of bad_input) $(cat "$T/bad_input.err")" \
    "1 perfagent flamegraph: $T/bad.folded: line 3: empty frame name"

# ---- a small profile with known shares ------------------------------------------
# total 1000.  ^parse$: main;run;parse is 250 and holds the recursive
# parse;parse (50), so the union is 250 = 25.00% (30.00% if the nested match
# were counted twice).  lex: 100 + 50 = 15.00%.  run: 550 of 1000, so its box
# is 649.00 px of 1180 before zooming, 1180.00 after; eval 300/550 of it.
cat >"$T/small.folded" <<'EOF'
main;init 50
main;run;parse;lex 100
main;run;parse;parse;lex 50
main;run;eval 300
main;run;parse 100
main;idle 400
EOF
run small "$PERFAGENT" flamegraph "$T/small.folded" -o "$T/small.svg" --title "small <test> & co"
expect_eq small.rc "$(rc_of small)" 0 "$(head -c 300 "$T/small.err")"
run small_xml "$PY" -c 'import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); print(len(d.getElementsByTagName("rect")))' "$T/small.svg"
# 10 frames and the background
expect_eq small.well_formed "$(out_of small_xml)" 11 "$(head -c 300 "$T/small_xml.err")"
# the same stacks in another order, one split in two: the same bytes
{ tac "$T/small.folded" | sed 's/^main;run;eval 300$/main;run;eval 100/'; echo "main;run;eval 200"; } >"$T/shuffled.folded"
run shuffled "$PERFAGENT" flamegraph "$T/shuffled.folded" -o "$T/shuffled.svg" --title "small <test> & co"
expect_true small.deterministic "$T/small.svg and $T/shuffled.svg differ" cmp -s "$T/small.svg" "$T/shuffled.svg"

# frame_box DOM NAME LEVEL : "x width shown|hidden" of that frame in the DOM
frame_box() {
    "$PY" - "$T/$1.dom" "$2" "$3" <<'EOF'
import re, sys
dom, name, level = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3]
for g in re.finditer(r'<g class="([^"]*)" data-v="\d+" data-o="\d+" data-l="(\d+)"><title>([^\n<]*)\n[^<]*</title><rect x="([^"]+)" y="\d+" width="([^"]+)"', dom):
    if g.group(3) == name and g.group(2) == level:
        print(g.group(4), g.group(5), "hidden" if "h" in g.group(1).split() else "shown")
        break
else:
    print("(no frame %s at level %s)" % (name, level))
EOF
}

browse load "$T/small.svg"
expect_eq browser.load "$(svg_attr load data-ready) $(svg_attr load data-frames) $(console_errors load)" \
    "1 10 0" "data-ready, frames, console messages; log: $(grep -E 'CONSOLE|Uncaught' "$T/load.log" | head -3)"
expect_eq browser.unzoomed_run "$(frame_box load run 2)" "541.00 649.00 shown" "after idle (400) and init (50)"

browse search "$T/small.svg" 's=%5Eparse%24'
expect_eq browser.search_matched "$(svg_attr search data-matched) $(console_errors search)" "25.00 0"
browse search_lex "$T/small.svg" 's=lex'
expect_eq browser.search_lex "$(svg_attr search_lex data-matched)" "15.00"

browse zoom "$T/small.svg" 'z=run'
expect_eq browser.zoom_state "$(svg_attr zoom data-zoom) $(svg_attr zoom data-zoom-width) $(svg_attr zoom data-visible) $(console_errors zoom)" \
    "run 1180.00 8 0" "zoomed frame, its width, frames shown (all main run parse lex parse lex eval), console"
expect_eq browser.zoom_run_full "$(frame_box zoom run 2)" "10.00 1180.00 shown"
expect_eq browser.zoom_child "$(frame_box zoom eval 3)" "10.00 643.64 shown" "eval: 300/550 of 1180 px, left of parse"
expect_eq browser.zoom_parent "$(frame_box zoom main 1)" "10.00 1180.00 shown"
expect_eq browser.zoom_hides "$(frame_box zoom idle 2)" "10.00 472.00 hidden" "idle is not under run"

# search and zoom together; the share is of the whole profile
browse both "$T/small.svg" 's=lex&z=run'
expect_eq browser.search_zoomed "$(svg_attr both data-matched) $(svg_attr both data-zoom) $(console_errors both)" "15.00 run 0"

# a regex that does not compile is reported on the page, not thrown
browse badre "$T/small.svg" 's=%28'
expect_eq browser.bad_regex "$(svg_attr badre data-matched) $(svg_attr badre data-ready) $(console_errors badre)" " 1 0"

# The console check itself: a copy whose script calls a function that does
# not exist must show exactly one error.
sed 's/^function search(q) {$/function search_gone(q) {/' "$T/small.svg" >"$T/broken.svg"
browse broken "$T/broken.svg" 's=lex'
expect_eq browser.detects_errors "$(console_errors broken)" 1 "$(grep -E 'CONSOLE|Uncaught' "$T/broken.log" | head -2)"

# ---- 50,000 distinct stacks -----------------------------------------------------
# Shaped like a real program: main;worker_K (K in 0..7), then a call chain
# where each level picks one of 6 callees with skewed odds (so some paths are
# wide and many narrow), ending in one of 3000 leaf functions.  worker_3's
# share is exact (its box is far above the 0.1% cut) whatever is pruned
# beneath it.
"$PY" - "$T/big.folded" >"$T/big.want" <<'EOF'
import random, sys
r = random.Random(42)
leaves = ["ns%d::Class%d<T%d>::method%d" % (i % 13, i % 97, i % 7, i) for i in range(3000)]
odds = [1.0 / (i + 1) ** 1.5 for i in range(6)]
seen, total, w3 = set(), 0, 0
with open(sys.argv[1], "w") as f:
    while len(seen) < 50000:
        k = r.randrange(8)
        chain = ["main", "worker_%d" % k]
        for d in range(r.randint(2, 14)):
            i = r.choices(range(6), odds)[0]
            chain.append("lib%d::step%d_%d(int)" % (k, d, i))
        chain.append(r.choice(leaves))
        st = ";".join(chain)
        if st in seen:
            continue
        seen.add(st)
        v = r.randint(1, 2000)
        total += v
        w3 += v if k == 3 else 0
        f.write("%s %d\n" % (st, v))
print("%d %.2f" % (total, w3 * 100.0 / total))
EOF
read -r BIG_TOTAL BIG_W3 <"$T/big.want"
run big "$PERFAGENT" flamegraph "$T/big.folded" -o "$T/big.svg"
BIG_BYTES=$(stat -c %s "$T/big.svg" 2>/dev/null || echo 0)
echo "# 50000 stacks ($(stat -c %s "$T/big.folded") bytes folded): rendered in $(cat "$T/big.secs") s, $BIG_BYTES bytes of SVG"
expect_eq big.rc "$(rc_of big)" 0 "$(head -c 300 "$T/big.err")"
# pruning keeps it small: under 2 MB (every one of the ~300,000 frames would be ~60 MB)
expect_true big.size "$BIG_BYTES bytes" test "$BIG_BYTES" -gt 10000 -a "$BIG_BYTES" -lt 2000000
browse big "$T/big.svg" 's=%5Eworker_3%24'
echo "# 50000 stacks: $(svg_attr big data-frames) frames drawn, $(svg_attr big data-hidden) under 0.1% not drawn; chromium load + search $(cat "$T/big.secs") s"
expect_eq big.browser "$(svg_attr big data-total) $(svg_attr big data-matched) $(console_errors big)" \
    "$BIG_TOTAL $BIG_W3 0"
expect_true big.browser_time "took $(cat "$T/big.secs") s" awk -v s="$(cat "$T/big.secs")" 'BEGIN { exit !(s < 20) }'

# ---- diff -----------------------------------------------------------------------
# A: foo 60, bar 40.  B: foo 50, bar;foo 100, baz 50, rec;rec 40 (total 240).
printf 'main;foo 60\nmain;bar 40\n' >"$T/A.folded"
printf 'main;foo 50\nmain;bar;foo 100\nmain;baz 50\nmain;rec;rec 40\n' >"$T/B.folded"
run diff "$PERFAGENT" diff "$T/A.folded" "$T/B.folded" -o "$T/d1" --normalize
expect_eq diff.rc "$(rc_of diff) $(out_of diff | tr '\n' ' ')" "0 $T/d1/diff.svg $T/d1/diff.txt " "$(head -c 300 "$T/diff.err")"
expect_eq diff.txt_total "$(sed -n '/^by total/,/^$/p' "$T/d1/diff.txt" | tail -n +3 | sed '/^$/d' | tr -s ' ' | tr '\n' '|')" \
    " 0.00 20.83 +20.83 baz| 0.00 16.67 +16.67 rec| 60.00 62.50 +2.50 foo| 40.00 41.67 +1.67 bar|"
expect_eq diff.txt_self "$(sed -n '/^by self/,$p' "$T/d1/diff.txt" | tail -n +3 | tr -s ' ' | tr '\n' '|')" \
    " 40.00 0.00 -40.00 bar| 0.00 20.83 +20.83 baz| 0.00 16.67 +16.67 rec| 60.00 62.50 +2.50 foo|"
browse diff "$T/d1/diff.svg" 's=foo'
# foo: main;foo 50 + main;bar;foo 100 of 240
expect_eq diff.browser "$(svg_attr diff data-diff) $(svg_attr diff data-total) $(svg_attr diff data-matched) $(console_errors diff)" \
    "1 240 62.50 0"

# report directories: cpu.folded when both have it, else inuse and alloc
mkdir -p "$T/ra" "$T/rb"
cp "$T/A.folded" "$T/ra/inuse.folded"; cp "$T/B.folded" "$T/rb/inuse.folded"
cp "$T/A.folded" "$T/ra/alloc.folded"; cp "$T/A.folded" "$T/rb/alloc.folded"
run diff_heap "$PERFAGENT" diff "$T/ra" "$T/rb" -o "$T/d2"
expect_eq diff.dirs_heap "$(rc_of diff_heap) $(cd "$T/d2" && ls | tr '\n' ' ')$(sed -n 2p "$T/d2/diff.txt")" \
    "0 alloc-diff.svg alloc-diff.txt diff.svg diff.txt A: $T/ra/inuse.folded (100 bytes)"
expect_eq diff.dirs_alloc_same "$(grep -c 'no function' "$T/d2/alloc-diff.txt")" 2 "A vs A: nothing changed, in both tables"
cp "$T/B.folded" "$T/ra/cpu.folded"; cp "$T/A.folded" "$T/rb/cpu.folded"
run diff_cpu "$PERFAGENT" diff "$T/ra" "$T/rb" -o "$T/d3"
expect_eq diff.dirs_cpu "$(rc_of diff_cpu) $(cd "$T/d3" && ls | tr '\n' ' ')$(sed -n 2p "$T/d3/diff.txt")" \
    "0 diff.svg diff.txt A: $T/ra/cpu.folded (240 samples)"
run diff_mixed "$PERFAGENT" diff "$T/ra" "$T/B.folded" -o "$T/d4"
expect_eq diff.mixed "$(rc_of diff_mixed) $(nlines "$T/diff_mixed.err")" "1 1"

# ---- a real report --------------------------------------------------------------
run real "$PERFAGENT" run -o "$T/real" -- "$W/leaks_fp"
RD=$(proc_dir "$T/real" leaks_fp)
run real_fg "$PERFAGENT" flamegraph "$RD/inuse.folded" -o "$T/real.svg"
browse real "$T/real.svg"
# 100% frames: all, _start, __libc_start_main_impl, __libc_start_call_main,
# main; leak_site_a holds 100000 of the 163472 bytes (tests/e2e/leaks_exact.sh)
expect_eq real.inuse "$(rc_of real_fg) $(svg_attr real data-total) $(grep -c '163,472 bytes (159.64 KiB), 100.00%' "$T/real.svg") $(console_errors real)" \
    "0 163472 5 0" "exit, total, the full-width frames, console"
expect_eq real.site_a "$(grep -A1 '<title>leak_site_a$' "$T/real.svg" | grep -c '^100,000 bytes (97.66 KiB), 61.17%</title>')" 1

finish
