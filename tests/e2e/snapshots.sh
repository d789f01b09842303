#!/usr/bin/env bash
# Heap snapshots, heap.pb.gz, leak diffs, leak suspects and suppressions on
# real runs in exact mode (PERFAGENT_MALLOC_RATE=1).
#
# tests/workloads/leakn.c, `leakn N 1000`: leak_n holds N x 1000 B at exit,
# steady_set 8 x 4096 B whatever N, churn allocates 1000 x 64 B per leaked
# block and frees them.  Runs with N = 10, 20, 30 are three snapshots of a
# heap that grows from one stack by 10000 B and 10 objects per step.
# tests/workloads/cxx_new.cc leaks 1272 B in 3 objects (make_foo) and 1000 B
# in 1 (make_ints); libstdc++'s emergency exception pool (72704 B, 1 object,
# allocated by its constructor under _dl_init) is suppressed by default.
#
# Fixed count: every check prints ok or FAIL whatever happens.
. "$(dirname "$0")/common.bash"
require_product "$W/leakn" "$W/cxx_new"

# ---- three runs, their exit snapshots ---------------------------------------
for n in 10 20 30; do
    run "r$n" env PERFAGENT_MALLOC_RATE=1 "$PERFAGENT" run --cpu 0 -o "$T/r$n" -- "$W/leakn" $n 1000
done
expect_eq run.rc "$(rc_of r10) $(rc_of r20) $(rc_of r30)" "0 0 0"
pd() { ls -d "$T/$1"/*/ 2>/dev/null | head -1 | sed 's:/$::'; } # the process's report dir
D10=$(pd r10) D20=$(pd r20) D30=$(pd r30)
S10=$D10/snapshots/001 S20=$D20/snapshots/001 S30=$D30/snapshots/001
expect_eq snap.dirs "$(ls "$D10/snapshots" 2>&1 | tr '\n' ' ')" "001 peak "
expect_eq snap.files "$(ls "$S10" 2>&1 | tr '\n' ' ')" "heap.json heap.pb.gz inuse.folded inuse.svg "

# hj FILE -> "kind time>0 | total | leak_n | steady_set" of a heap.json
hj() {
    $PY - "$1" <<'PY' 2>&1
import json, sys
d = json.load(open(sys.argv[1]))
def leaf(fn):
    s = [x for x in d["stacks"] if x["frames"] and x["frames"][0]["function"] == fn]
    return " ".join("%d %d" % (x["bytes"], x["objects"]) for x in s)
print(d["kind"], isinstance(d["time"], float) and d["time"] > 0, "|",
      d["total"]["bytes"], d["total"]["objects"], "|", leaf("leak_n"), "|", leaf("steady_set"),
      "|", len(d["stacks"]), d["mode"])
PY
}
expect_eq snap.heap_json10 "$(hj "$S10/heap.json")" "exit True | 42768 18 | 10000 10 | 32768 8 | 2 exact"
expect_eq snap.heap_json30 "$(hj "$S30/heap.json")" "exit True | 62768 38 | 30000 30 | 32768 8 | 2 exact"
expect_eq snap.folded "$(awk '$1 ~ /;leak_n$/ { print $2 }' "$S30/inuse.folded" 2>&1)" 30000
# the exit snapshot is the exit report's live heap
expect_eq snap.same_as_report "$(cmp "$S30/inuse.folded" "$D30/inuse.folded" 2>&1 && cmp "$S30/heap.pb.gz" "$D30/heap.pb.gz" 2>&1 && echo same)" same

# ---- heap.pb.gz read by go tool pprof -----------------------------------------
GO=$(command -v go)
pprof_top() { # NAME FILE SAMPLE_INDEX -> $T/NAME.out
    local n=$1 f=$2 si=$3 unit=-unit=B
    case $si in *_objects) unit=-unit=minimum ;; esac
    if [ -z "$GO" ]; then echo "go not found" >"$T/$n.out"; return; fi
    mkdir -p "$T/home"
    run "$n" env HOME="$T/home" GOCACHE="$T/gocache" GOPATH="$T/gopath" GOPROXY=off \
        PPROF_TMPDIR="$T" PPROF_BINARY_PATH="$T/none" TZ=UTC \
        "$GO" tool pprof -top -sample_index="$si" "$unit" -symbolize=none "$f"
}
# flat FILE FUNC -> the flat column of FUNC's -top row
flat() { awk -v f="$2" 'NF == 6 && $6 == f { print $1 }' "$T/$1.out"; }
pprof_top inuse "$D30/heap.pb.gz" inuse_space
expect_eq pprof.inuse "$(grep '^Type:' "$T/inuse.out") $(flat inuse leak_n) $(flat inuse steady_set) $(flat inuse churn)" \
    "Type: inuse_space 30000B 32768B "
pprof_top alloc "$D30/heap.pb.gz" alloc_space
expect_eq pprof.alloc "$(grep '^Type:' "$T/alloc.out") $(flat alloc leak_n) $(flat alloc steady_set) $(flat alloc churn)" \
    "Type: alloc_space 30000B 32768B 1920000B"
pprof_top objs "$S30/heap.pb.gz" inuse_objects
expect_eq pprof.inuse_objects "$(sed -n 's/^Showing nodes accounting for \([0-9]*\),.*/\1/p' "$T/objs.out") $(flat objs leak_n)" \
    "38 30"

# ---- perfagent diff on two snapshots -------------------------------------------
run diff "$PERFAGENT" diff "$S10" "$S30" -o "$T/d"
expect_eq diff.files "$(rc_of diff) $(ls "$T/d" 2>&1 | grep leakdiff | tr '\n' ' ')" \
    "0 leakdiff.json leakdiff.svg leakdiff.txt "
# ld FILE -> the shape and the numbers of a leakdiff.json
ld() {
    $PY - "$1" <<'PY' 2>&1
import json, sys
d = json.load(open(sys.argv[1]))
s = d["stacks"]
print(sorted(d), sorted(d["a"]), sorted(d["b"]), "|", list(s[0]) if s else "", "|",
      " ; ".join("%s %d %d %d %d %d %d" % (x["frames"][0]["function"], x["bytes_a"], x["bytes_b"],
                 x["bytes_delta"], x["objects_a"], x["objects_b"], x["objects_delta"]) for x in s))
PY
}
expect_eq diff.json "$(ld "$T/d/leakdiff.json")" \
    "['a', 'b', 'stacks'] ['time'] ['time'] | ['bytes_a', 'bytes_b', 'bytes_delta', 'objects_a', 'objects_b', 'objects_delta', 'frames'] | leak_n 10000 30000 20000 10 30 20 ; steady_set 32768 32768 0 8 8 0"
expect_eq diff.times "$($PY -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); d=json.load(open(sys.argv[3])); print(d["a"]["time"] == a["time"], d["b"]["time"] == b["time"])' "$S10/heap.json" "$S30/heap.json" "$T/d/leakdiff.json" 2>&1)" "True True"
expect_eq diff.frames "$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); f=d["stacks"][0]["frames"]; print(f[0]["function"], f[1]["function"], f[0]["file"].endswith("leakn.c"), sorted(f[0]))' "$T/d/leakdiff.json" 2>&1)" \
    "leak_n main True ['address', 'file', 'function', 'line', 'module']"
expect_eq diff.txt "$(grep -E '^ +\+20000 +\+20 +10000 +30000  leak_n \(leakn.c:[0-9]+\) <- main' "$T/d/leakdiff.txt" | wc -l) $(grep -c '^change: +20000 bytes, +20 objects; 1 stacks grew, 0 shrank$' "$T/d/leakdiff.txt")" "1 1"
expect_eq diff.svg "$($PY - "$T/d/leakdiff.svg" <<'PY' 2>&1
import sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
v = sum(int(g.get("data-v")) for g in root.iter(ns + "g")
        if g.get("class") == "f" and g.find(ns + "title").text.split("\n")[0] == "leak_n")
print(root.get("data-total"), v)
PY
)" "62768 30000"
# B to A: the leak is now the largest shrink, last
run diffr "$PERFAGENT" diff "$S30" "$S10" -o "$T/dr"
expect_eq diff.reverse "$($PY -c 'import json,sys; s=json.load(open(sys.argv[1]))["stacks"]; print(len(s), s[-1]["frames"][0]["function"], s[-1]["bytes_delta"], s[-1]["objects_delta"])' "$T/dr/leakdiff.json" 2>&1)" \
    "2 leak_n -20000 -20"
# heap.json files and report directories (leaks.json) give the same table
run diffj "$PERFAGENT" diff "$S10/heap.json" "$S30/heap.json" -o "$T/dj"
expect_eq diff.json_files "$(rc_of diffj) $(cmp "$T/d/leakdiff.json" "$T/dj/leakdiff.json" 2>&1 && echo same)" "0 same"
run diffrep "$PERFAGENT" diff "$D10" "$D30" -o "$T/drep"
expect_eq diff.report_dirs "$(rc_of diffrep) $(ld "$T/drep/leakdiff.json" | sed 's/.*| //')" \
    "0 leak_n 10000 30000 20000 10 30 20 ; steady_set 32768 32768 0 8 8 0"
# folded files: the function diff as before, no leakdiff
run difff "$PERFAGENT" diff "$D10/inuse.folded" "$D30/inuse.folded" -o "$T/df"
expect_eq diff.folded "$(rc_of difff) $(ls "$T/df" 2>&1 | tr '\n' ' ')" "0 diff.svg diff.txt "

# ---- suspects across three snapshots ---------------------------------------------
mkdir -p "$T/S"
cp -r "$S10" "$T/S/001" && cp -r "$S20" "$T/S/002" && cp -r "$S30" "$T/S/003"
run sus "$PERFAGENT" diff --suspects "$T/S" -o "$T/sus"
expect_eq suspects.files "$(rc_of sus) $(ls "$T/sus" 2>&1 | tr '\n' ' ')" "0 suspects.json suspects.txt "
expect_eq suspects.json "$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["snapshots"]), " ; ".join("%s %d %d %s %s" % (x["frames"][0]["function"], x["growth_bytes"], x["growth_objects"], x["bytes"], x["objects"]) for x in d["stacks"]))' "$T/sus/suspects.json" 2>&1)" \
    "3 leak_n 20000 20 [10000, 20000, 30000] [10, 20, 30]"
expect_eq suspects.txt "$(grep -cE '^ +1 +\+20000 +\+20  leak_n \(leakn.c:[0-9]+\)' "$T/sus/suspects.txt") $(grep -c '^1 suspects' "$T/sus/suspects.txt")" "1 1"
# not grown in every interval (20 -> 10 -> 30): no suspect
mkdir -p "$T/S2"
cp -r "$S20" "$T/S2/001" && cp -r "$S10" "$T/S2/002" && cp -r "$S30" "$T/S2/003"
run sus2 "$PERFAGENT" diff --suspects "$T/S2/001" "$T/S2/002" "$T/S2/003" -o "$T/sus2"
expect_eq suspects.not_monotonic "$(rc_of sus2) $($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["stacks"]))' "$T/sus2/suspects.json" 2>&1)" "0 0"
run sus3 "$PERFAGENT" diff --suspects "$T/S2/001" "$T/S2/002" -o "$T/sus3"
expect_eq suspects.too_few "$(rc_of sus3) $(cat "$T/sus3.err")" \
    "2 perfagent diff: --suspects needs a snapshots directory or 3 or more snapshots (see perfagent --help)"

# ---- suppressions ---------------------------------------------------------------
LEAKED_SUPP="leaked (live at end of stream): 2272 bytes in 4 objects from 2 stacks"
SUPP_LINE="suppressed (not leaks: one-time runtime allocations; --no-suppress shows them): 72704 bytes in 1 objects from 1 stacks"
run cx env PERFAGENT_MALLOC_RATE=1 "$PERFAGENT" run --cpu 0 -o "$T/cx" -- "$W/cxx_new"
C=$(pd cx)
expect_eq supp.default_leaked "$(rc_of cx) $(grep '^leaked' "$C/leaks.txt" 2>&1)" "0 $LEAKED_SUPP"
expect_eq supp.default_rule "$(grep -A1 '^suppressed' "$C/leaks.txt" 2>&1 | tr '\n' '|')" \
    "$SUPP_LINE|  leak:libstdc++.so called from ^_dl_init$ (built-in): 72704 bytes in 1 objects from 1 stacks|"
expect_eq supp.summary "$(grep -A1 '^  live at end' "$C/summary.txt" 2>&1 | tr '\n' '|')" \
    "  live at end (leaked): 2272 bytes in 4 objects, 2 stacks|  $SUPP_LINE|"
expect_eq supp.json "$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["total"], d["suppressed"], len(d["stacks"]))' "$C/leaks.json" 2>&1)" \
    "{'bytes': 2272, 'objects': 4} {'bytes': 72704, 'objects': 1, 'stacks': 1} 2"
# a snapshot is the whole live heap
expect_eq supp.snapshot_whole "$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["total"], "suppressed" in d)' "$C/snapshots/001/heap.json" 2>&1)" \
    "{'bytes': 74976, 'objects': 5} False"
run cxn env PERFAGENT_MALLOC_RATE=1 "$PERFAGENT" run --cpu 0 --no-suppress -o "$T/cxn" -- "$W/cxx_new"
CN=$(pd cxn)
expect_eq supp.run_no_suppress "$(rc_of cxn) $(grep '^leaked' "$CN/leaks.txt" 2>&1) $(grep -c suppressed "$CN/leaks.txt" "$CN/summary.txt" | tr '\n' ' ')" \
    "0 leaked (live at end of stream): 74976 bytes in 5 objects from 3 stacks $CN/leaks.txt:0 $CN/summary.txt:0 "
# perfagent report, with and without --no-suppress
run cxf env PERFAGENT_MALLOC_RATE=1 LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/cx.pfr" "$W/cxx_new"
run rep "$PERFAGENT" report "$T/cx.pfr" -o "$T/rep"
run repn "$PERFAGENT" report --no-suppress "$T/cx.pfr" -o "$T/repn"
expect_eq supp.report "$(rc_of rep) $(grep -h '^leaked' "$T"/rep/*/leaks.txt 2>&1)" "0 $LEAKED_SUPP"
expect_eq supp.report_no_suppress "$(rc_of repn) $(grep -h '^leaked' "$T"/repn/*/leaks.txt 2>&1)" \
    "0 leaked (live at end of stream): 74976 bytes in 5 objects from 3 stacks"
# a user's file (LSan format): comments, blank lines, a '*' wildcard
printf '# our own\n\nleak:make_ints\n  leak:wl::Fact*make_foo  \n' >"$T/supp.txt"
run repu env PERFAGENT_SUPPRESSIONS="$T/supp.txt" "$PERFAGENT" report "$T/cx.pfr" -o "$T/repu"
expect_eq supp.file "$(rc_of repu) $(cat "$T/repu.err")$(grep -h -A3 '^leaked' "$T"/repu/*/leaks.txt 2>&1 | tr '\n' '|')" \
    "0 leaked (live at end of stream): 0 bytes in 0 objects from 0 stacks|suppressed (not leaks: one-time runtime allocations; --no-suppress shows them): 74976 bytes in 5 objects from 3 stacks|  leak:libstdc++.so called from ^_dl_init$ (built-in): 72704 bytes in 1 objects from 1 stacks|  leak:make_ints ($T/supp.txt): 1000 bytes in 1 objects from 1 stacks|"
expect_eq supp.file_wildcard "$(grep -h 'leak:wl::Fact' "$T"/repu/*/summary.txt 2>&1)" \
    "    leak:wl::Fact*make_foo ($T/supp.txt): 1272 bytes in 3 objects from 1 stacks"
# a bad file: one line, the reports go on with the built-ins
printf 'leak:make_ints\nthis is not a rule\n' >"$T/bad.txt"
run repb env PERFAGENT_SUPPRESSIONS="$T/bad.txt" "$PERFAGENT" report "$T/cx.pfr" -o "$T/repb"
expect_eq supp.bad_file "$(rc_of repb) $(grep -c . "$T/repb.err") $(grep -c "PERFAGENT_SUPPRESSIONS=$T/bad.txt: line 2: expected 'leak:PATTERN'; using the built-in suppressions only" "$T/repb.err") $(grep -h '^leaked' "$T"/repb/*/leaks.txt 2>&1)" \
    "0 1 1 $LEAKED_SUPP"
run repm env PERFAGENT_SUPPRESSIONS="$T/missing.txt" "$PERFAGENT" report "$T/cx.pfr" -o "$T/repm"
expect_eq supp.missing_file "$(rc_of repm) $(cat "$T/repm.err") | $(grep -h '^leaked' "$T"/repm/*/leaks.txt 2>&1)" \
    "0 perfagent: PERFAGENT_SUPPRESSIONS=$T/missing.txt: No such file or directory; using the built-in suppressions only | $LEAKED_SUPP"
finish
