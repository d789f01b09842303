#!/usr/bin/env bash
# collector/pprof.c read by the real pprof: `go tool pprof` (Debian package
# golang-go, installed by make deps) on the known profile of
# tests/unit/test_pprof.c (`test_pprof write FILE`), offline (HOME, GOCACHE
# and GOPATH in the temp dir, GOPROXY=off, -symbolize=none).  The profile,
# 16 samples at 10 ms (values: samples, cpu ns), every stack leaf first:
#   3  leaf_a; helper (inlined into caller_b); main     thread main
#   2  helper (inlined into caller_b); main             thread worker-1
#   1  memcpy (libc, no file); leaf_a; main             thread worker-1
#   4  an unsymbolized address in libstripped.so; main  thread main
#   5  leaf_a; helper (inlined into caller_b); main     thread worker-1
#   1  static_fn (a.c); static_fn (b.c); main           thread main, bytes 4096
# So by function, flat/cum: leaf_a 8/9, [libstripped.so] 4/4, helper 2/10,
# memcpy 1/1, static_fn 1/1 (pprof merges the two by name), caller_b 0/10,
# main 0/16; per thread 8 and 8 samples.
#
# Fixed count: 15 checks, each printed whatever fails.
. "$(dirname "$0")/common.bash"
TP=$BD/tests/test_pprof
CHECKS=(go write top.exit top.header top.leaf_a top.libstripped top.helper top.memcpy
    top.static_fn top.caller_b top.main cpu.leaf_a traces.threads tags.thread raw.mappings
    report.files report.header report.hot_a report.hot_b report.hot_c report.total report.thread)

GO=$(command -v go)
why=
[ -n "$GO" ] || why="go not found: install golang-go (make deps)"
[ -z "$why" ] && [ ! -x "$TP" ] && why="missing $TP (run make test-bins)"
if [ -n "$why" ]; then
    for c in "${CHECKS[@]}"; do fail "$c" "$why"; done
    finish
fi
ok go

"$TP" write "$T/k.pb.gz" 2>"$T/write.err"
expect_eq write "$? $(cat "$T/write.err")" "0 "

mkdir -p "$T/home"
# pprof_run NAME ARGS... : go tool pprof ARGS... -symbolize=none k.pb.gz, offline
pprof_run() {
    local n=$1; shift
    run "$n" env HOME="$T/home" GOCACHE="$T/gocache" GOPATH="$T/gopath" GOFLAGS=-mod=mod \
        GOPROXY=off PPROF_TMPDIR="$T" PPROF_BINARY_PATH="$T/none" TZ=UTC \
        "$GO" tool pprof "$@" -symbolize=none "${PPROF_FILE:-$T/k.pb.gz}"
}
# row OUT NAME -> "flat cum" of the -top row of function NAME (the fields
# after the five numeric columns)
row() {
    awk -v f="$2" 'NF >= 6 { n = $6; for (i = 7; i <= NF; i++) n = n " " $i }
        NF >= 6 && n == f { print $1, $4; exit }' "$T/$1.out"
}

pprof_run top -top -sample_index=samples
expect_eq top.exit "$(rc_of top) $(cat "$T/top.err")" "0 "
expect_eq top.header "$(grep -E '^(File|Build ID|Type|Duration):' "$T/top.out" | tr '\n' '|')" \
    "File: app|Build ID: abc123|Type: samples|Duration: 2.50s, Total samples = 16 |"
expect_eq top.leaf_a "$(row top leaf_a)" "8 9"
expect_eq top.libstripped "$(row top '[libstripped.so]')" "4 4"
expect_eq top.helper "$(row top 'helper (inline)')" "2 10"
expect_eq top.memcpy "$(row top memcpy)" "1 1"
expect_eq top.static_fn "$(row top static_fn)" "1 1"
expect_eq top.caller_b "$(row top caller_b)" "0 10"
expect_eq top.main "$(row top main)" "0 16"

# the default sample type is the last one, cpu/nanoseconds: 8 x 10 ms
pprof_run cpu -top
expect_eq cpu.leaf_a "$(grep '^Type:' "$T/cpu.out") $(row cpu leaf_a)" "Type: cpu 80ms 90ms"

# -traces: one block per sample, in order, each naming its thread
pprof_run traces -traces
expect_eq traces.threads "$(awk '$1 == "thread:" { printf "%s ", $2 }' "$T/traces.out")" \
    "main worker-1 worker-1 main worker-1 main "
pprof_run tags -tags -sample_index=samples
expect_eq tags.thread "$(awk '/^ thread:/ { on = 1; next } on && NF == 0 { on = 0 } on' \
    "$T/tags.out" | tr -s ' ' | tr '\n' '|')" " 8.0 (50.00%): main| 8.0 (50.00%): worker-1|"

# -raw: the mappings with their build ids and what they carry
pprof_run raw -raw
expect_eq raw.mappings "$(sed -n '/^Mappings/,$p' "$T/raw.out" | sed 1d | tr '\n' '|')" \
    "1: 0x400000/0x500000/0x0 /usr/bin/app abc123 [FN][FL][LN][IN]|2: 0x7f0000000000/0x7f0000100000/0x1000 /lib/x86_64-linux-gnu/libc.so.6  [FN]|3: 0x7f1000000000/0x7f1000010000/0x0 /usr/lib/libstripped.so ffee |"
# ---- a real report's cpu.pb.gz: cpu_mix at 999 Hz under `perfagent run`.
# pprof's flat samples per function must equal cpu.folded's (both come from
# the same samples), the total too, and the worker's thread name must be
# the samples' label.
run mix env PERFAGENT_MALLOC_RATE=0 "$PERFAGENT" run -o "$T/mix" --cpu 999 -- "$W/cpu_mix" 1 60:30:10
d=$(ls -d "$T/mix"/*/ 2>/dev/null | head -1)
expect_eq report.files "$(rc_of mix) $(ls "$d" 2>/dev/null | grep -c '^cpu\.\(folded\|svg\|pb\.gz\)$')" "0 3"
PPROF_FILE=$d/cpu.pb.gz pprof_run mixtop -top -sample_index=samples -nodecount=100
expect_eq report.header "$(grep -E '^(File|Type):' "$T/mixtop.out" | tr '\n' '|')" "File: cpu_mix|Type: samples|"
# leaf_of FUNC -> samples whose leaf is FUNC in cpu.folded
leaf_of() { awk -v f="$1" '{ n = split($1, a, ";"); if (a[n] == f) s += $NF } END { print s + 0 }' "$d/cpu.folded"; }
for fn in hot_a hot_b hot_c; do
    expect_eq "report.$fn" "$(row mixtop $fn | awk '{print $1}')" "$(leaf_of $fn)" "flat samples, pprof vs cpu.folded"
done
expect_eq report.total "$(sed -n 's/.*Total samples = \([0-9]*\).*/\1/p' "$T/mixtop.out")" \
    "$(awk '{ s += $NF } END { print s + 0 }' "$d/cpu.folded")"
PPROF_FILE=$d/cpu.pb.gz pprof_run mixtags -tags -sample_index=samples
expect_eq report.thread "$(awk '/^ thread:/ { on = 1; next } on && NF == 0 { on = 0 } on' "$T/mixtags.out" |
    grep -c 'mix0$')" 1 "a thread label named after the worker"
finish
