#!/usr/bin/env bash
# `perfagent snapshot PID` on live processes, interval snapshots and the peak
# snapshot, in exact mode (PERFAGENT_MALLOC_RATE=1).
#
# tests/workloads/snapphase.c, `snapphase phases DIR P 10 1000`: steady_set
# holds 8 x 4096 B throughout; phase k leaks 10 x 1000 B more from
# leak_phase (k x 10000 B, 10k objects live after it), churn frees what it
# allocates (100 x 64 B); after phase k the workload creates DIR/phaseK (its
# pid inside) and waits for DIR/goK.  So a snapshot after phase k holds
# exactly steady_set 32768 B / 8 and leak_phase k x 10000 B / 10k, and its
# peak is the end of the last phase plus one churn block (64 B, 1 object).
# `snapphase churn DIR 4 64 100`: 4 threads each keep 64 blocks of 100 B
# from churn_slot and replace them one at a time until DIR/stop: 252 to 256
# of them live at any moment, none at exit.
#
# Fixed count: every check prints ok or FAIL whatever happens.
. "$(dirname "$0")/common.bash"
require_product "$W/snapphase" "$COLLECTOR"
SP=$W/snapphase

# waitf DIR NAME : wait (10 s at most) for DIR/NAME
waitf() {
    local i
    for ((i = 0; i < 200; i++)); do [ -s "$1/$2" ] && return 0; sleep 0.05; done
    return 1
}
# hj FILE -> "kind | total | leak_phase | steady_set | other stacks" of a heap.json
hj() {
    $PY - "$1" <<'PY' 2>&1
import json, sys
d = json.load(open(sys.argv[1]))
def leaf(fn):
    s = [x for x in d["stacks"] if x["frames"] and x["frames"][0]["function"] == fn]
    return " ".join("%d %d" % (x["bytes"], x["objects"]) for x in s) or "-"
other = [x for x in d["stacks"] if not x["frames"] or x["frames"][0]["function"] not in ("leak_phase", "steady_set")]
print(d["kind"], "|", d["total"]["bytes"], d["total"]["objects"], "|", leaf("leak_phase"), "|",
      leaf("steady_set"), "|", len(other))
PY
}
# snap NAME PID : perfagent snapshot PID into $T/NAME.{out,err,rc}
snap() { run "$1" "$PERFAGENT" snapshot --timeout 20 "$2"; }

# phased NAME P CMD... : start `CMD snapphase phases $T/NAME.w P 10 1000` in
# the background, take a snapshot after each phase (NAME.sK), then let it
# finish.  Its exit status in $T/NAME.rc.
# (PHASE_ARGS="N SIZE" overrides "10 1000")
phased() {
    local n=$1 p=$2 k pid; shift 2
    mkdir -p "$T/$n.w"
    ( timeout -k 5 "$TO" "$@" "$SP" phases "$T/$n.w" "$p" ${PHASE_ARGS:-10 1000} >"$T/$n.out" 2>"$T/$n.err" </dev/null
      echo $? >"$T/$n.rc" ) &
    local job=$!
    for ((k = 1; k <= p; k++)); do
        waitf "$T/$n.w" "phase$k" || break
        pid=$(cat "$T/$n.w/phase$k")
        snap "$n.s$k" "$pid"
        : >"$T/$n.w/go$k"
    done
    echo "$pid" >"$T/$n.pid"
    wait $job
}

# ---- under perfagent run ------------------------------------------------------
phased run 3 env PERFAGENT_MALLOC_RATE=1 "$PERFAGENT" run --cpu 0 -o "$T/run.o" --
PID=$(cat "$T/run.pid")
D=$T/run.o/$PID
expect_eq run.rc "$(rc_of run) $(rc_of run.s1) $(rc_of run.s2) $(rc_of run.s3)" "0 0 0 0" "$(cat "$T/run.s1.err" "$T/run.err" | head -c 300)"
# each prints the directory it wrote, and it is there when the command returns
expect_eq run.printed "$(cat "$T/run.s1.out" "$T/run.s2.out" "$T/run.s3.out" | tr '\n' ' ')" \
    "$D/snapshots/001 $D/snapshots/002 $D/snapshots/003 "
expect_eq run.dirs "$(ls "$D/snapshots" 2>&1 | tr '\n' ' ')" "001 002 003 004 peak "
expect_eq run.s1 "$(hj "$D/snapshots/001/heap.json")" "request | 42768 18 | 10000 10 | 32768 8 | 0"
expect_eq run.s3 "$(hj "$D/snapshots/003/heap.json")" "request | 62768 38 | 30000 30 | 32768 8 | 0"
expect_eq run.exit "$(hj "$D/snapshots/004/heap.json")" "exit | 62768 38 | 30000 30 | 32768 8 | 0"
# the peak: the last phase plus one churn block of 64 B, at a time between
# the second and the third snapshot
expect_eq run.peak "$(hj "$D/snapshots/peak/heap.json")" "peak | 62832 39 | 30000 30 | 32768 8 | 1"
expect_eq run.peak_time "$($PY -c '
import json, sys
t = [json.load(open(sys.argv[1] + "/" + n + "/heap.json"))["time"] for n in ("002", "peak", "003")]
print(t[0] < t[1] < t[2])' "$D/snapshots" 2>&1)" True
# summary.txt names the peak and the stacks holding the most at it
expect_eq run.peak_summary "$(grep -A3 '^  peak live:' "$D/summary.txt" 2>&1 | sed 's/ at [0-9.]* s (/ (/; s/ (snapphase.c:[0-9]*)$//' | tr '\n' '|')" \
    "  peak live:            62832 bytes in 39 objects (snapshots/peak/)|    32768 bytes in 8 objects at steady_set|    30000 bytes in 30 objects at leak_phase|    64 bytes in 1 objects at churn|"
# the diff of two live snapshots: exactly the growth of leak_phase, nothing else
run run.diff "$PERFAGENT" diff "$D/snapshots/001" "$D/snapshots/003" -o "$T/run.diff"
expect_eq run.leakdiff "$($PY -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(" ; ".join("%s %d %d %d" % (x["frames"][0]["function"], x["bytes_a"], x["bytes_b"], x["bytes_delta"]) for x in d["stacks"] if x["bytes_delta"] or x["objects_delta"]),
      "|", " ".join("%d" % x["objects_delta"] for x in d["stacks"] if x["objects_delta"]))' "$T/run.diff/leakdiff.json" 2>&1)" \
    "leak_phase 10000 30000 20000 | 20"

# ---- under a standalone collector -------------------------------------------------
"$COLLECTOR" --listen "unix:$T/coll.sock" -o "$T/coll.o" 2>"$T/coll.log" &
CPID=$!
wait_for_socket "$T/coll.sock" 10
phased coll 2 env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_COLLECTOR="unix:$T/coll.sock"
PID=$(cat "$T/coll.pid")
D=$(cd "$T/coll.o" 2>/dev/null && pwd)/$PID
expect_eq coll.rc "$(rc_of coll) $(rc_of coll.s1) $(rc_of coll.s2)" "0 0 0" "$(cat "$T/coll.s1.err" "$T/coll.err" | head -c 300)"
expect_eq coll.printed "$(cat "$T/coll.s1.out" "$T/coll.s2.out" | tr '\n' ' ')" "$D/snapshots/001 $D/snapshots/002 "
expect_eq coll.s2 "$(hj "$D/snapshots/002/heap.json" 2>&1)" "request | 52768 28 | 20000 20 | 32768 8 | 0"
kill -INT $CPID 2>/dev/null; wait $CPID 2>/dev/null
expect_eq coll.final "$(ls "$D/snapshots" 2>&1 | tr '\n' ' ') $(hj "$D/snapshots/003/heap.json" 2>&1)" \
    "001 002 003 peak  exit | 52768 28 | 20000 20 | 32768 8 | 0"

# ---- a process writing a .pfr file ---------------------------------------------------
phased file 2 env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/file.pfr"
PID=$(cat "$T/file.pid")
expect_eq file.rc "$(rc_of file) $(rc_of file.s1) $(rc_of file.s2)" "0 0 0"
expect_eq file.said "$(cat "$T/file.s2.out")" \
    "marker 2 recorded in $T/file.pfr: \`perfagent report $T/file.pfr -o DIR\` writes it as DIR/$PID/snapshots/002"
run file.report "$PERFAGENT" report "$T/file.pfr" -o "$T/file.rep"
D=$T/file.rep/$PID
expect_eq file.dirs "$(rc_of file.report) $(ls "$D/snapshots" 2>&1 | tr '\n' ' ')" "0 001 002 003 peak "
expect_eq file.s1 "$(hj "$D/snapshots/001/heap.json")" "request | 42768 18 | 10000 10 | 32768 8 | 0"
expect_eq file.s2 "$(hj "$D/snapshots/002/heap.json")" "request | 52768 28 | 20000 20 | 32768 8 | 0"

# ---- interval snapshots: every second of a ~3.5 s run ----------------------------------
mkdir -p "$T/iv.w"
( timeout -k 5 "$TO" env PERFAGENT_MALLOC_RATE=1 PERFAGENT_SNAPSHOT_INTERVAL=1 \
    "$PERFAGENT" run --cpu 0 -o "$T/iv.o" -- "$SP" phases "$T/iv.w" 1 10 1000 >"$T/iv.out" 2>"$T/iv.err"
  echo $? >"$T/iv.rc" ) &
JOB=$!
waitf "$T/iv.w" phase1
sleep 3.5
: >"$T/iv.w/go1"
wait $JOB
D=$T/iv.o/$(cat "$T/iv.w/phase1" 2>/dev/null)
# markers at about 1, 2 and 3 s (0.5 s of slack either way), then the exit
expect_eq iv.snapshots "$(rc_of iv) $($PY -c '
import json, sys, os
d = sys.argv[1]
v = [json.load(open(os.path.join(d, n, "heap.json"))) for n in sorted(os.listdir(d)) if n.isdigit()]
print(len(v), " ".join(x["kind"] for x in v), " ".join("%d" % x["total"]["bytes"] for x in v))' "$D/snapshots" 2>&1)" \
    "0 4 interval interval interval exit 42768 42768 42768 42768"
run iv.bad env PERFAGENT_SNAPSHOT_INTERVAL=soon LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT=/dev/null "$W/churn"
expect_eq iv.bad "$(rc_of iv.bad) $(grep -c SNAPSHOT_INTERVAL "$T/iv.bad.err")" "0 1"

# ---- a snapshot while 4 threads allocate and free ---------------------------------------
mkdir -p "$T/mt.w"
( timeout -k 5 "$TO" env PERFAGENT_MALLOC_RATE=1 "$PERFAGENT" run --cpu 0 -o "$T/mt.o" -- \
    "$SP" churn "$T/mt.w" 4 64 100 >"$T/mt.out" 2>"$T/mt.err"; echo $? >"$T/mt.rc" ) &
JOB=$!
waitf "$T/mt.w" ready
PID=$(cat "$T/mt.w/ready" 2>/dev/null)
for k in 1 2 3; do snap "mt.s$k" "$PID"; done
: >"$T/mt.w/stop"
wait $JOB
D=$T/mt.o/$PID
# each: churn_slot holds 252..256 blocks of 100 B, the total is the sum of
# the stacks, and nothing was lost on the way
mtcheck() {
    $PY - "$1" <<'PY' 2>&1
import json, sys
d = json.load(open(sys.argv[1]))
cs = [x for x in d["stacks"] if any(f["function"] == "churn_slot" for f in x["frames"][:1])]
b, o = sum(x["bytes"] for x in cs), sum(x["objects"] for x in cs)
sb, so = sum(x["bytes"] for x in d["stacks"]), sum(x["objects"] for x in d["stacks"])
print(252 <= o <= 256 and b == 100 * o, (sb, so) == (d["total"]["bytes"], d["total"]["objects"]))
PY
}
expect_eq mt.rc "$(rc_of mt) $(rc_of mt.s1) $(rc_of mt.s2) $(rc_of mt.s3)" "0 0 0 0" "$(head -c 300 "$T/mt.s1.err")"
expect_eq mt.consistent "$(for k in 001 002 003; do mtcheck "$D/snapshots/$k/heap.json"; done | tr '\n' ' ')" \
    "True True True True True True "
expect_eq mt.exit "$($PYQ through "$D/leaks.json" churn_slot 2>&1) $(grep -cE '^  [a-z_]+: +0$' "$D/summary.txt") $(grep -c 'allocations,' "$D/summary.txt")" "0 0 5 5" "$(drop_note "$D/leaks.json")"

# ---- who may ask ------------------------------------------------------------------
mkdir -p "$T/own.w"
( timeout -k 5 "$TO" env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT=/dev/null "$SP" phases "$T/own.w" 1 10 1000 \
    >/dev/null 2>&1 ) &
JOB=$!
waitf "$T/own.w" phase1
PID=$(cat "$T/own.w/phase1" 2>/dev/null)
if command -v setpriv >/dev/null && [ "$(id -u)" = 0 ]; then
    run own.nobody setpriv --reuid=nobody --regid=nogroup --clear-groups "$PERFAGENT" snapshot "$PID"
    expect_eq own.nobody "$(rc_of own.nobody) $(nlines "$T/own.nobody.err") $(cat "$T/own.nobody.err")" \
        "1 1 perfagent snapshot: pid $PID: permission denied: uid $(id -u nobody) does not own pid $PID"
else
    ok own.nobody # not root: nobody else to be here
fi
: >"$T/own.w/go1"
wait $JOB
# a process without an agent, and no process at all
sleep 30 &
NOPID=$!
run none "$PERFAGENT" snapshot "$NOPID"
expect_eq none "$(rc_of none) $(nlines "$T/none.err") $(sed "s/ (nothing.*//" "$T/none.err")" \
    "1 1 perfagent snapshot: pid $NOPID: no perfagent agent listens for it"
kill $NOPID 2>/dev/null
run gone "$PERFAGENT" snapshot 2147483647
expect_eq gone "$(rc_of gone) $(cat "$T/gone.err")" "1 perfagent snapshot: pid 2147483647: no such process"
# ---- sampled mode (the default rate, 512 KiB): two snapshots 1 GiB of
# 64 KiB blocks apart; the diff's top stack is leak_phase and its growth is
# within 10% of 1 GiB (relative standard error sqrt(R / 1 GiB) = 2.2%); no
# other stack grows by more than 5% of that.
PHASE_ARGS="16384 65536" phased samp 2 env -u PERFAGENT_MALLOC_RATE "$PERFAGENT" run --cpu 0 -o "$T/samp.o" --
PID=$(cat "$T/samp.pid")
D=$T/samp.o/$PID
run samp.diff "$PERFAGENT" diff "$D/snapshots/001" "$D/snapshots/002" -o "$T/samp.diff"
expect_eq sampled.growth "$($PY -c '
import json, sys
d = json.load(open(sys.argv[1]))
s = sorted(d["stacks"], key=lambda x: -x["bytes_delta"])
top, want = s[0], 16384 * 65536
others = [x["bytes_delta"] for x in s[1:] if abs(x["bytes_delta"]) > 0.05 * want]
print("#", top["frames"][0]["function"], top["bytes_delta"], "%+.2f%%" % (100.0 * (top["bytes_delta"] / want - 1)), file=sys.stderr)
print(top["frames"][0]["function"], abs(top["bytes_delta"] / want - 1) <= 0.10, others)' "$T/samp.diff/leakdiff.json" 2>"$T/samp.note")" \
    "leak_phase True []" "$(cat "$T/samp.note" "$T/samp.err" 2>/dev/null | head -c 300)"
cat "$T/samp.note" 2>/dev/null
finish
