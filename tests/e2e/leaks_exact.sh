#!/usr/bin/env bash
# Exact-mode leak numbers for tests/workloads/leaks.c (leaks_fp, leaks_nofp):
# per-site bytes and objects, total, leaf names, frame order, the inlined
# site, the file:line of every program frame of each leaked stack (leaks.json
# and leaks.txt), the stack list of leaks.txt, the allocation and free counts
# of summary.txt, folded files; in file mode (default name, %e/%p name) then
# `perfagent report`, and through `perfagent run`.  The program's stdout and
# exit status must not change.
. "$(dirname "$0")/common.bash"
require_product

# Known by construction (see tests/workloads/leaks.c).
SITE_A="100000 100"; SITE_B="12800 50"; SITE_C="28672 7"; SITE_D="22000 11"
TOTAL="163472 168"
# Every malloc/calloc call of the program and every free() of a non-NULL
# block (leaks.c prints both; 5375 = 5543 - 168 leaked).  The agent sees
# exactly these: the loader allocates with its own minimal malloc before
# libc's is bound, the workloads avoid stdio (wl.h) so libc allocates
# nothing for them, and the agent does not record its own allocations.
# Measured identical in file mode, `perfagent run`, and fp and cfi unwinding.
ALLOCS=5543 FREES=5375

# The source line of each "LINE:<mark>" comment in leaks.c (marks the
# allocation call of each site and every call on the way to it).
SRC=$PA_ROOT/tests/workloads/leaks.c
at() { # FUNC MARK -> "FUNC leaks.c:LINE", the form of `pa_json.py lines`
    local l
    l=$(grep -n "LINE:$2 \*/" "$SRC" | cut -d: -f1)
    [ "$(echo "$l" | wc -w)" = 1 ] || l="(mark $2 found ${l:-0 times} in $SRC)"
    echo "$1 leaks.c:$l"
}
# leaf first, the program's frames down to main
LINES_A="$(at leak_site_a site_a);$(at main call_a)"
LINES_B="$(at leak_site_b site_b);$(at mid_q call_b_q);$(at mid_p call_b_p);$(at main call_b)"
LINES_C="$(at leak_site_c site_c);$(at main call_c)"
LINES_D="$(at inline_leaker site_d_inline);$(at leak_site_d site_d);$(at main call_d)"

# check_lines PREFIX PROCDIR : file:line of each leaked stack's program
# frames in leaks.json and leaks.txt, and leaks.txt's stack headings (sorted
# by bytes: a, c, d, b).
check_lines() {
    local p=$1 d=$2 site fn want n
    for site in A:leak_site_a B:leak_site_b C:leak_site_c D:inline_leaker; do
        fn=${site#*:}; site=${site%%:*}
        want=LINES_$site; want=${!want}
        n=$(echo "$want" | awk -F';' '{print NF}')
        expect_eq "$p.json_lines_$fn" "$($PYQ lines "$d/leaks.json" "$fn" "$n" 2>&1)" "$want" "leaf first"
        expect_eq "$p.txt_lines_$fn" "$($PYQ txtlines "$d/leaks.txt" "$fn" "$n" 2>&1)" "$want" "leaf first"
    done
    expect_eq "$p.txt_head_a" "$($PYQ txthead "$d/leaks.txt" leak_site_a 2>&1)" "#1: 100000 bytes in 100 objects"
    expect_eq "$p.txt_head_c" "$($PYQ txthead "$d/leaks.txt" leak_site_c 2>&1)" "#2: 28672 bytes in 7 objects"
    expect_eq "$p.txt_head_d" "$($PYQ txthead "$d/leaks.txt" inline_leaker 2>&1)" "#3: 22000 bytes in 11 objects"
    expect_eq "$p.txt_head_b" "$($PYQ txthead "$d/leaks.txt" leak_site_b 2>&1)" "#4: 12800 bytes in 50 objects"
    expect_eq "$p.txt_stacks" "$($PYQ txtstacks "$d/leaks.txt" 2>&1 | wc -l)" 4
    expect_eq "$p.json_stacks" "$($PYQ stacklist "$d/leaks.json" 2>&1 | wc -l)" 4
    expect_eq "$p.txt_leaked_line" "$(grep '^leaked' "$d/leaks.txt")" \
        "leaked (live at end of stream): 163472 bytes in 168 objects from 4 stacks"
}

# check_counts PREFIX PROCDIR : summary.txt's allocation and free counters.
# Nothing may be unknown, stale, early or implied by address reuse: a free
# the agent lost would show as one fewer free, often hidden as an implied
# free when the address is reused, so both are pinned.
check_counts() {
    expect_eq "$1.summary_counts" "$($PYQ summary "$2/summary.txt" 2>&1)" \
        "allocations=$ALLOCS bytes=$ALLOCATED frees=$FREES unknown=0 stale=0 early=0 implied=0 superseded=0" \
        "$(drop_note "$2/leaks.json")"
    expect_eq "$1.summary_live" "$(grep '^  live at end' "$2/summary.txt")" \
        "  live at end (leaked): 163472 bytes in 168 objects, 4 stacks"
}

# svg_of SVG FUNC -> "TOTAL VALUE": data-total of a flame graph, and the sum
# of the drawn boxes named FUNC (their data-v); "-" when the file is not a
# well-formed SVG.
svg_of() {
    $PY - "$1" "$2" <<'PY' 2>/dev/null || echo -
import sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
v = sum(int(g.get("data-v")) for g in root.iter(ns + "g")
        if g.get("class") == "f" and g.find(ns + "title").text.split("\n")[0] == sys.argv[2])
print(root.get("data-total"), v)
PY
}

# check_leaks PREFIX PROCDIR : every number of one leaks run's report.
check_leaks() {
    local p=$1 d=$2 lj=$2/leaks.json
    if [ ! -f "$lj" ]; then
        fail "$p.leaks_json" "no $lj"
        return
    fi
    expect_eq "$p.mode" "$($PYQ get "$lj" mode)" exact
    expect_eq "$p.malloc_rate" "$($PYQ get "$lj" malloc_rate)" 1
    check_site "$p.site_a" "$lj" leak_site_a "$SITE_A"
    check_site "$p.site_b" "$lj" leak_site_b "$SITE_B"
    check_site "$p.site_c_calloc" "$lj" leak_site_c "$SITE_C"
    check_site "$p.site_inline" "$lj" inline_leaker "$SITE_D"
    expect_eq "$p.total" "$($PYQ total "$lj")" "$TOTAL"
    expect_eq "$p.stacks_add_up" "$($PYQ stacksum "$lj")" "$TOTAL"
    check_none "$p.no_freed_site" "$lj" scratch_alloc
    expect_eq "$p.sorted_by_bytes" "$($PYQ sorted "$lj")" yes
    expect_eq "$p.no_agent_frames" "$($PYQ agentframes "$lj")" 0
    check_frames "$p.frames_a" "$lj" leak_site_a "leak_site_a;main"
    check_frames "$p.frames_b" "$lj" leak_site_b "leak_site_b;mid_q;mid_p;main"
    check_frames "$p.frames_c" "$lj" leak_site_c "leak_site_c;main"
    check_frames "$p.frames_inline" "$lj" inline_leaker "inline_leaker;leak_site_d;main"
    # frame fields: file and line of the leaf, module of the program
    local info
    info=$(python3 - "$lj" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for st in d["stacks"]:
    fr = st["frames"][0]
    if fr.get("function") == "leak_site_a":
        print("%s %s %s %s" % ((fr.get("file") or "").split("/")[-1], fr.get("line"),
              (fr.get("module") or "").split("/")[-1], "addr" if fr.get("address") else "noaddr"))
        break
PY
)
    case $info in
    "leaks.c "[0-9]*" leaks_"*" addr") ok "$p.frame_fields" ;;
    *) fail "$p.frame_fields" "leaf frame of leak_site_a: '$info', want 'leaks.c LINE leaks_* addr'" ;;
    esac
    if [ -s "$d/leaks.txt" ] && grep -q leak_site_b "$d/leaks.txt"; then ok "$p.leaks_txt"; else fail "$p.leaks_txt" "missing or without leak_site_b"; fi
    if [ -s "$d/summary.txt" ]; then ok "$p.summary_txt"; else fail "$p.summary_txt" "missing or empty"; fi
    check_lines "$p" "$d"
    check_counts "$p" "$d"
    expect_eq "$p.inuse_folded_format" "$($PYQ foldedcheck "$d/inuse.folded" 2>&1)" ok
    expect_eq "$p.alloc_folded_format" "$($PYQ foldedcheck "$d/alloc.folded" 2>&1)" ok
    expect_eq "$p.inuse_folded_total" "$($PYQ folded "$d/inuse.folded" 2>&1)" "${TOTAL% *}"
    expect_eq "$p.inuse_folded_site_b" "$($PYQ foldedsite "$d/inuse.folded" leak_site_b 2>&1)" "${SITE_B% *}"
    expect_eq "$p.alloc_folded_site_a" "$($PYQ foldedsite "$d/alloc.folded" leak_site_a 2>&1)" 300000
    expect_eq "$p.alloc_folded_total" "$($PYQ folded "$d/alloc.folded" 2>&1)" "$ALLOCATED" "every requested byte"
    # the flame graphs draw the same numbers: total, and leak_site_b's box
    # (frames under 0.1% of the total are not drawn; site b is 7.8%)
    expect_eq "$p.inuse_svg" "$(svg_of "$d/inuse.svg" leak_site_b)" "${TOTAL% *} ${SITE_B% *}"
    expect_eq "$p.alloc_svg" "$(svg_of "$d/alloc.svg" leak_site_a)" "$ALLOCATED 300000"
    local path
    path=$($PYQ foldedpath "$d/inuse.folded" leak_site_b 2>&1)
    case $path in
    *"main;mid_p;mid_q;leak_site_b") ok "$p.folded_root_first" ;;
    *) fail "$p.folded_root_first" "inuse.folded path for leak_site_b: '$path'" ;;
    esac
}

for v in fp nofp; do
    exe=leaks_$v
    run base_$v "$W/$exe"
    ALLOCATED=$(sed -n 's/^allocated=\([0-9]*\)\/.*/\1/p' "$T/base_$v.out")
    expect_eq "$v.workload_counts" "$(sed -n 's/^allocated=[0-9]*\/\([0-9]*\)$/\1/p; s/^freed=//p' "$T/base_$v.out" | tr '\n' ' ')" \
        "$ALLOCS $FREES " "allocations and frees leaks.c printed"

    # 1. file mode, default name ./perfagent-<exe>.<pid>.pfr
    mkdir -p "$T/cwd_$v"
    (cd "$T/cwd_$v" && run file_$v env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 "$W/$exe")
    same_output "$v.file.stdout_and_status" base_$v file_$v
    pfrs=("$T/cwd_$v"/perfagent-$exe.*.pfr)
    if [ ${#pfrs[@]} -eq 1 ] && [ -f "${pfrs[0]}" ]; then
        ok "$v.file.default_name"
        pfr=${pfrs[0]}
        pfr_pid=${pfr##*/perfagent-$exe.}; pfr_pid=${pfr_pid%.pfr}
        if [ "$(nlines "$T/file_$v.err")" = 1 ] && grep -q "perfagent-$exe.$pfr_pid.pfr" "$T/file_$v.err"; then
            ok "$v.file.one_stderr_line"
        else
            fail "$v.file.one_stderr_line" "want one line naming the .pfr, got: $(head -c 400 "$T/file_$v.err" | tr '\n' '|')"
        fi
        if report "$v.file.report" "$T/rep_$v" "$pfr"; then
            expect_eq "$v.file.index" "$(procs "$T/rep_$v" | awk '{print $1, $3}')" "$pfr_pid $exe"
            check_leaks "$v.file" "$(proc_dir "$T/rep_$v" "$exe")"
        fi
    else
        fail "$v.file.default_name" "want one perfagent-$exe.PID.pfr in the cwd, got: $(ls "$T/cwd_$v" | tr '\n' ' ')"
    fi

    # 2. perfagent run (collector live)
    run prun_$v "$PERFAGENT" run -o "$T/run_$v" --malloc-rate 1 -- "$W/$exe"
    same_output "$v.run.stdout_and_status" base_$v prun_$v
    if [ -f "$T/run_$v/index.json" ] && [ "$(proc_count "$T/run_$v" "$exe")" = 1 ]; then
        ok "$v.run.index"
        check_leaks "$v.run" "$(proc_dir "$T/run_$v" "$exe")"
    else
        fail "$v.run.index" "no single $exe process in $T/run_$v/index.json (rc $(rc_of prun_$v); $(head -c 300 "$T/prun_$v.err" | tr '\n' '|'))"
    fi
done
ALLOCATED=$(sed -n 's/^allocated=\([0-9]*\)\/.*/\1/p' "$T/base_fp.out")

# 3. perfagent run passes the command's exit status through
run base_rc7 "$W/leaks_fp" 7
run prun_rc7 "$PERFAGENT" run -o "$T/run_rc7" --malloc-rate 1 -- "$W/leaks_fp" 7
expect_eq run.exit_status_passthrough "$(rc_of prun_rc7)" 7
same_output run.exit7_stdout base_rc7 prun_rc7

# 4. PERFAGENT_OUTPUT with %e and %p; frame-pointer unwinder on leaks_fp
mkdir -p "$T/named"
run fpunw env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_UNWIND=fp \
    PERFAGENT_OUTPUT="$T/named/%e-at-%p.pfr" "$W/leaks_fp"
same_output fpunwind.stdout_and_status base_fp fpunw
pfrs=("$T/named"/leaks_fp-at-*.pfr)
if [ -f "${pfrs[0]}" ] && [ ${#pfrs[@]} -eq 1 ] && [[ ${pfrs[0]} =~ leaks_fp-at-[0-9]+\.pfr$ ]]; then
    ok output_pattern_e_p
    if report fpunwind.report "$T/rep_fpunw" "${pfrs[0]}"; then
        d=$(proc_dir "$T/rep_fpunw" leaks_fp)
        expect_eq fpunwind.mode "$($PYQ get "$d/leaks.json" mode)" exact
        check_site fpunwind.site_a "$d/leaks.json" leak_site_a "$SITE_A"
        check_site fpunwind.site_b "$d/leaks.json" leak_site_b "$SITE_B"
        check_site fpunwind.site_c "$d/leaks.json" leak_site_c "$SITE_C"
        expect_eq fpunwind.total "$($PYQ total "$d/leaks.json")" "$TOTAL"
        check_frames fpunwind.frames_b "$d/leaks.json" leak_site_b "leak_site_b;mid_q;mid_p;main"
        check_lines fpunwind "$d"
        check_counts fpunwind "$d"
        # the same stream reported twice gives identical files
        "$PERFAGENT" report "${pfrs[0]}" -o "$T/rep_fpunw2" >/dev/null 2>&1
        d2=$(proc_dir "$T/rep_fpunw2" leaks_fp)
        if [ -n "$d2" ] && cmp -s "$d/leaks.json" "$d2/leaks.json" && cmp -s "$d/alloc.folded" "$d2/alloc.folded"; then
            ok report_deterministic
        else
            fail report_deterministic "two reports of ${pfrs[0]} differ"
        fi
    fi
else
    fail output_pattern_e_p "want one leaks_fp-at-PID.pfr in $T/named, got: $(ls "$T/named" | tr '\n' ' ')"
fi
finish
