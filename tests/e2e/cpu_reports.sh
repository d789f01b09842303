#!/usr/bin/env bash
# The CPU reports themselves (collector/report_cpu.c): cpu.folded, cpu.svg
# and summary.txt's CPU section agree with each other, are deterministic
# (two `perfagent report`s and a live collector fed the same bytes write the
# same files), --per-thread only adds the thread roots (in `perfagent report`,
# the collector and `perfagent run`), and `perfagent run --cpu` / its
# default / PERFAGENT_CPU_HZ reach the program.
# (How accurate the samples are: cpu_accuracy.sh.)
#
# Fixed check count: every check prints its line whatever fails.
. "$(dirname "$0")/common.bash"
require_product "$W/cpu_mix" "$COLLECTOR"

sum_of() { awk '{n += $NF} END {print n + 0}' "$1" 2>/dev/null; }
# the folded lines with their first frame dropped, merged and sorted as the
# collector sorts (bytes)
strip_root() {
    awk '{c = $NF; sub(/ [0-9]+$/, ""); sub(/^[^;]*;/, ""); n[$0] += c} END {for (s in n) print s, n[s]}' "$1" |
        LC_ALL=C sort
}

# 1. one stream, reported twice and per thread
run mix env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=0 PERFAGENT_CPU_HZ=499 \
    PERFAGENT_OUTPUT="$T/mix.pfr" "$W/cpu_mix" 0.4 50:30:20 10:10:80
expect_eq mix.exit "$(rc_of mix)" 0
report rep1 "$T/r1" "$T/mix.pfr" && report rep2 "$T/r2" "$T/mix.pfr"
report rep_pt "$T/pt" --per-thread "$T/mix.pfr"
A=$(proc_dir "$T/r1" cpu_mix) B=$(proc_dir "$T/r2" cpu_mix) P=$(proc_dir "$T/pt" cpu_mix)
A=${A:-$T/none} B=${B:-$T/none} P=${P:-$T/none}
diffs=
for f in cpu.folded cpu.svg summary.txt; do cmp -s "$A/$f" "$B/$f" || diffs="$diffs $f"; done
expect_eq deterministic "${diffs:-none}" none "files that differ between two reports of one stream"

# the three views of one profile agree: summary.txt's count, the sum of
# cpu.folded, cpu.svg's data-total, the per-thread rows of summary.txt
total=$(sum_of "$A/cpu.folded")
expect_eq summary_samples "$(sed -n 's/^  samples:    \([0-9]*\) in \([0-9]*\) stacks (.*/\1 \2/p' "$A/summary.txt")" \
    "$total $(grep -c . "$A/cpu.folded")"
expect_eq svg_total "$(grep -o 'data-total="[0-9]*"' "$A/cpu.svg" | head -1)" "data-total=\"$total\""
expect_eq svg_title "$(grep -o '<text id="title"[^>]*>[^<]*' "$A/cpu.svg" | sed 's/.*>//')" \
    "CPU samples (499 Hz): cpu_mix (pid $(procs "$T/r1" | awk '{print $1}'))"
expect_eq thread_rows "$(awk '/^    tid [0-9]+ \(/ {n += $4} END {print n + 0}' "$A/summary.txt")" "$total"
# each thread's delivered rate is its samples x the period (1/499 s) over
# its CPU time (printed to the ms: the rate to within its rounding)
expect_eq thread_delivered "$(awk '/^    tid [0-9]+ \(mix[01]\): [0-9]+ samples, CPU [0-9.]+ s, delivered/ {
        d = $10; sub(/%$/, "", d); want = 100 * $4 / (499 * $7)
        if (d - want > 0.6 || want - d > 0.6) bad = bad " " $2 ": " d " vs " want; n++ }
        END { print n + 0, (bad == "" ? "agree" : bad) }' "$A/summary.txt")" "2 agree"
# (the workers' names; the main thread only starts them and may have no
# sample, and about 1 run in 40 has a sample of the agent's own sender
# thread, "perfagent-send")
expect_eq thread_names "$(grep -o '^    tid [0-9]* ([^)]*)' "$A/summary.txt" | sed 's/.*(//; s/)//' | grep '^mix' | sort | tr '\n' ' ')" \
    "mix0 mix1 "
# the table is summary.txt's and perfagent top's (the same rows)
expect_eq top_table "$(sed -n '/^cpu: top 20 functions by self$/,/^$/p' "$A/summary.txt" | sed -n '2,$p' | sed 's/^  //; /^$/d')" \
    "$("$PERFAGENT" top "$A" 2>&1 | sed 1d)"
expect_eq files_line "$(grep '^files' "$A/summary.txt")" \
    "files (in this directory): leaks.json leaks.txt alloc.folded inuse.folded alloc.svg inuse.svg heap.pb.gz cpu.folded cpu.svg cpu.pb.gz summary.txt snapshots/"
# --per-thread: the same stacks, each under its thread's name
expect_eq per_thread_roots "$(awk '{split($1, f, ";"); print f[1]}' "$P/cpu.folded" | sort -u | grep '^mix' | tr '\n' ' ')" \
    "mix0 mix1 "
expect_eq per_thread_same_stacks "$(strip_root "$P/cpu.folded" | md5sum)" "$(LC_ALL=C sort "$A/cpu.folded" | md5sum)"
expect_eq per_thread_mix0 "$(awk '$1 ~ /^mix0;/ {n += $NF} END {print n + 0}' "$P/cpu.folded")" \
    "$(awk '/^    tid [0-9]+ \(mix0\)/ {print $4}' "$P/summary.txt")"
expect_eq per_thread_svg "$(grep -o 'data-total="[0-9]*"' "$P/cpu.svg" | head -1)" "data-total=\"$total\""

# 2. a live collector fed the same bytes writes the same files, and with
# --per-thread the same files as `perfagent report --per-thread`
# live_feed DIR [OPTIONS]: a collector writing to DIR receives mix.pfr
live_feed() {
    local dir=$1 cpid; shift
    rm -f "$T/s"
    "$COLLECTOR" --listen "unix:$T/s" -o "$dir" -q "$@" 2>>"$T/coll.err" &
    cpid=$!
    for _ in $(seq 100); do [ -S "$T/s" ] && break; sleep 0.05; done
    $PY -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(open(sys.argv[2], "rb").read())
s.close()' "$T/s" "$T/mix.pfr" 2>>"$T/send.err"
    for _ in $(seq 200); do [ -f "$dir/$pid/summary.txt" ] && break; sleep 0.05; done
    kill -TERM "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
}
pid=$(procs "$T/r1" | awk '{print $1}')
live_feed "$T/live"
diffs=
for f in cpu.folded cpu.svg summary.txt; do cmp -s "$A/$f" "$T/live/$pid/$f" || diffs="$diffs $f"; done
expect_eq live_identical "${diffs:-none}" none "files that differ between perfagent report and the live collector"
live_feed "$T/live_pt" --per-thread
diffs=
for f in cpu.folded cpu.svg summary.txt; do cmp -s "$P/$f" "$T/live_pt/$pid/$f" || diffs="$diffs $f"; done
expect_eq live_per_thread "${diffs:-none}" none \
    "files that differ between perfagent report --per-thread and perfagent-collector --per-thread"

# 3. CPU off: no cpu files, no CPU section; perfagent top DIR reads alloc.folded
run off env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/off.pfr" "$W/leaks_fp"
report rep_off "$T/roff" "$T/off.pfr"
O=$(proc_dir "$T/roff" leaks_fp); O=${O:-$T/none}
expect_eq off.files "$(ls "$O" | grep -c '^cpu')" 0
expect_eq off.summary "$(grep -c '^cpu' "$O/summary.txt")" 0
expect_eq off.top "$("$PERFAGENT" top "$O" 2>&1 | head -1)" "file: $O/alloc.folded"

# 4. perfagent run: --cpu, its default (99), PERFAGENT_CPU_HZ, --cpu 0
rate() { grep '^  requested:' "$(proc_dir "$1" leaks_fp)/summary.txt" 2>/dev/null | awk '{print $2}'; }
run r_dflt "$PERFAGENT" run -o "$T/rd" -- "$W/leaks_fp"
expect_eq run.default "$(rc_of r_dflt) $(rate "$T/rd")" "0 99"
# the heap report is as exact as without sampling
check_site run.default_heap "$(proc_dir "$T/rd" leaks_fp)/leaks.json" leak_site_a "100000 100"
run r_env env PERFAGENT_CPU_HZ=250 "$PERFAGENT" run -o "$T/re" -- "$W/leaks_fp"
expect_eq run.env "$(rate "$T/re")" 250
run r_opt env PERFAGENT_CPU_HZ=250 "$PERFAGENT" run -o "$T/ro" --cpu 1234 -- "$W/leaks_fp"
expect_eq run.option "$(rate "$T/ro")" 1234
run r_off "$PERFAGENT" run -o "$T/r0" --cpu 0 -- "$W/leaks_fp"
expect_eq run.off "$(rc_of r_off) $(ls "$(proc_dir "$T/r0" leaks_fp)" | grep -c '^cpu') $(grep -c '^cpu' "$(proc_dir "$T/r0" leaks_fp)/summary.txt")" \
    "0 0 0"
run r_bad "$PERFAGENT" run -o "$T/rb" --cpu 10001 -- "$W/leaks_fp"
expect_eq run.bad "$(rc_of r_bad) $(cat "$T/r_bad.err")" \
    "2 perfagent run: --cpu '10001': expected a whole number from 0 to 10000 (see perfagent --help)"
# 5. perfagent run --per-thread: the same roots as report --per-thread, from
# a live run.  A root is a thread's name: mix0 and mix1 (the workload names
# its workers), the main thread's (cpu_mix, from exec: ld.so's start-up is
# about 1 sample at 999 Hz) or, rarely, the agent's sender (perfagent-send).
NAMES='^(mix0|mix1|cpu_mix|perfagent-send)$'
# the first frame of each line of a folded file, one per line
roots_of() { awk '{sub(/ [0-9]+$/, ""); split($0, f, ";"); print f[1]}' "$1" 2>/dev/null; }
# "NAME SAMPLES ..." by root of a folded file, and by thread name from
# summary.txt's per-thread rows (threads of one name summed, as the roots are)
root_sums() {
    awk '{c = $NF; sub(/ [0-9]+$/, ""); split($0, f, ";"); n[f[1]] += c}
         END {for (k in n) print k, n[k]}' "$1" 2>/dev/null | LC_ALL=C sort | tr '\n' ' '
}
thread_sums() {
    sed -n 's/^    tid [0-9]* (\(.*\)): \([0-9]*\) samples, .*/\1 \2/p' "$1" 2>/dev/null |
        awk '{n[$1] += $2} END {for (k in n) print k, n[k]}' | LC_ALL=C sort | tr '\n' ' '
}
run r_pt "$PERFAGENT" run --per-thread --cpu 999 -o "$T/rpt" -- "$W/cpu_mix" 0.3 50:30:20 10:10:80
RP=$(proc_dir "$T/rpt" cpu_mix); RP=${RP:-$T/none}
expect_eq run_pt.exit "$(rc_of r_pt) $(grep '^  requested:' "$RP/summary.txt" 2>/dev/null | awk '{print $2}')" "0 999"
expect_eq run_pt.roots "$(roots_of "$RP/cpu.folded" | grep -Evc "$NAMES") $(roots_of "$RP/cpu.folded" | grep -E '^mix' | sort -u | tr '\n' ' ')" \
    "0 mix0 mix1 " "lines not rooted at a thread name, then the workers' roots"
expect_eq run_pt.thread_totals "$(root_sums "$RP/cpu.folded")" "$(thread_sums "$RP/summary.txt")" \
    "samples by root of cpu.folded vs by thread in summary.txt"
pt_total=$(sum_of "$RP/cpu.folded")
expect_eq run_pt.svg "$(grep -o 'data-total="[0-9]*"' "$RP/cpu.svg" 2>/dev/null | head -1) $(grep -c '<text id="title"[^>]*>CPU samples (999 Hz, per thread): cpu_mix' "$RP/cpu.svg" 2>/dev/null)" \
    "data-total=\"$pt_total\" 1"
# and without it no root is a thread's name (the stacks start at clone3 or _start)
run r_npt "$PERFAGENT" run --cpu 999 -o "$T/rnpt" -- "$W/cpu_mix" 0.3 50:30:20 10:10:80
RN=$(proc_dir "$T/rnpt" cpu_mix); RN=${RN:-$T/none}
expect_eq run_plain.roots "$(rc_of r_npt) $(roots_of "$RN/cpu.folded" | grep -Ec "$NAMES") $(sum_of "$RN/cpu.folded")" \
    "0 0 $(sed -n 's/^  samples:    \([0-9]*\) in .*/\1/p' "$RN/summary.txt" 2>/dev/null)" \
    "exit, lines rooted at a thread name, samples in cpu.folded (= summary.txt's)"
finish
