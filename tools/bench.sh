#!/usr/bin/env bash
# Overhead benchmark (`make bench`; not part of `make check`).
#
# Builds mallocbench (and cpubound) from the shared anchors into build/bench/
# and runs these configs INTERLEAVED round-robin (A B C ..., order rotated
# every round) on `mallocbench THREADS OPS 42`:
#   base       glibc, no agent
#   aa         the baseline again (A/A noise floor)
#   file       agent, exact mode (default unwinder: cfi), writing a .pfr to
#              /dev/shm (or tmp)
#   null       the same writing to /dev/null: the agent's cost without
#              storing the ~700 MB stream
#   run        agent, exact mode, through `perfagent run` (collector live)
#   libunwind  agent, exact mode, PERFAGENT_UNWIND=libunwind, file output
#   fp         agent, exact mode, PERFAGENT_UNWIND=fp, file output
#   heaptrack  heaptrack -o ... (when installed)
# and prints a table: median wall s, ratio vs base, min-max, median
# in-process s (mallocbench's elapsed_s), its ratio, peak RSS, output size,
# and the agent's drop counters (read from the stream's last AgentStats, and
# `perfagent report`'s summary.txt).  A config that dropped events is flagged:
# exact mode with drops is not exact.
#
# Environment: BENCH_OPS (ops per thread, default 40000000), BENCH_THREADS (2),
# BENCH_ROUNDS (5), BENCH_CONFIGS (space-separated subset), BENCH_CPU=1 (also
# cpubound 3 1: base vs agent), BENCH_TIMEOUT (s per run, 900), PA_SHARED
# (default $PA_ROOT/../shared), B (build dir), BENCH_KEEP=1 (keep outputs).
set -u
PA_ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-build}
case $B in /*) BD=$B ;; *) BD=$PA_ROOT/$B ;; esac
PA_SHARED=${PA_SHARED:-$PA_ROOT/../shared}
OPS=${BENCH_OPS:-40000000}
THREADS=${BENCH_THREADS:-2}
ROUNDS=${BENCH_ROUNDS:-5}
TMO=${BENCH_TIMEOUT:-900}
AGENT=$BD/libperfagent.so
PERFAGENT=$BD/perfagent
BIN=$BD/bench
unset LD_PRELOAD $(compgen -e | grep '^PERFAGENT_')

die() { echo "bench: $*" >&2; exit 1; }
[ -f "$PA_SHARED/anchors/workloads/mallocbench.c" ] || die "no $PA_SHARED/anchors/workloads/mallocbench.c (set PA_SHARED)"
[ -f "$AGENT" ] && [ -x "$PERFAGENT" ] || die "build the agent first (make)"
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is needed"
[ "$ROUNDS" -ge 1 ] 2>/dev/null || die "BENCH_ROUNDS must be >= 1"

mkdir -p "$BIN"
for w in mallocbench cpubound; do
    src=$PA_SHARED/anchors/workloads/$w.c
    [ -f "$src" ] || continue
    if [ ! -x "$BIN/$w" ] || [ "$src" -nt "$BIN/$w" ]; then
        cc -O2 -g -fno-omit-frame-pointer -fno-ipa-icf -pthread -o "$BIN/$w" "$src" || die "cannot build $w"
    fi
done
MB=$BIN/mallocbench

SCR_BASE=/dev/shm
[ -w /dev/shm ] || SCR_BASE=${TMPDIR:-/tmp}
S=$(mktemp -d "$SCR_BASE/pa-bench.XXXXXX")
cleanup() { [ -n "${BENCH_KEEP:-}" ] && echo "kept $S" >&2 || rm -rf "$S"; }
trap cleanup EXIT
RES=$S/results.tsv
: >"$RES"

# ---- configs: NAME|WORKLOAD|DESCRIPTION|COMMAND (run through bash -c; $O is
# the run's own output folder, emptied before each run)
ARGS="$THREADS $OPS 42"
CONFIGS=()
add() { CONFIGS+=("$1|$2|$3|$4"); }
add base mallocbench "glibc, no agent" "$MB $ARGS"
add aa mallocbench "baseline again (noise floor)" "$MB $ARGS"
add file mallocbench "agent exact, file on ${SCR_BASE}" \
    "env LD_PRELOAD=$AGENT PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT=\$O/mb.pfr $MB $ARGS"
add null mallocbench "agent exact, output /dev/null" \
    "env LD_PRELOAD=$AGENT PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT=/dev/null $MB $ARGS"
add run mallocbench "agent exact, perfagent run (collector)" \
    "$PERFAGENT run -o \$O/report --malloc-rate 1 -- $MB $ARGS"
add libunwind mallocbench "agent exact, UNWIND=libunwind, file" \
    "env LD_PRELOAD=$AGENT PERFAGENT_MALLOC_RATE=1 PERFAGENT_UNWIND=libunwind PERFAGENT_OUTPUT=\$O/mb.pfr $MB $ARGS"
add fp mallocbench "agent exact, UNWIND=fp, file" \
    "env LD_PRELOAD=$AGENT PERFAGENT_MALLOC_RATE=1 PERFAGENT_UNWIND=fp PERFAGENT_OUTPUT=\$O/mb.pfr $MB $ARGS"
if command -v heaptrack >/dev/null 2>&1; then
    add heaptrack mallocbench "heaptrack (full trace)" "heaptrack -o \$O/heaptrack $MB $ARGS"
fi
if [ "${BENCH_CPU:-0}" = 1 ] && [ -x "$BIN/cpubound" ]; then
    add cpu_base cpubound "no agent" "$BIN/cpubound 3 1"
    add cpu_agent cpubound "agent exact, file" \
        "env LD_PRELOAD=$AGENT PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT=\$O/cb.pfr $BIN/cpubound 3 1"
fi
if [ -n "${BENCH_CONFIGS:-}" ]; then
    sel=()
    for c in "${CONFIGS[@]}"; do
        for w in $BENCH_CONFIGS; do [ "${c%%|*}" = "$w" ] && sel+=("$c"); done
    done
    [ ${#sel[@]} -gt 0 ] || die "BENCH_CONFIGS matches no config"
    CONFIGS=("${sel[@]}")
fi
N=${#CONFIGS[@]}

# ---- drop counters: decode the last AgentStats of a .pfr (protobuf wire
# format, see proto/perfagent.proto) with a tiny reader, no dependencies.
pfr_stats() {
    python3 - "$@" <<'PY'
import sys

def varint(b, i):
    r = s = 0
    while True:
        if i >= len(b):
            raise ValueError("truncated varint")
        c = b[i]; i += 1
        r |= (c & 0x7F) << s; s += 7
        if not c & 0x80:
            return r, i

def fields(b):
    i = 0
    while i < len(b):
        k, i = varint(b, i)
        f, t = k >> 3, k & 7
        if t == 0:
            v, i = varint(b, i)
        elif t == 1:
            v = b[i:i + 8]; i += 8
        elif t == 5:
            v = b[i:i + 4]; i += 4
        elif t == 2:
            n, i = varint(b, i); v = b[i:i + n]; i += n
        else:
            raise ValueError("wire type %d" % t)
        yield f, t, v

NAMES = {1: "records", 3: "buffer_full", 4: "no_buffer", 5: "stack_table",
         6: "output", 7: "thread_exit", 12: "unwind_failures"}
tot = {}
for path in sys.argv[1:]:
    last, goodbye = None, False
    try:
        b = open(path, "rb").read()
        if b[:8] != b"PFAGENT1":
            raise ValueError("bad magic")
        i = 8
        while i < len(b):
            n, i = varint(b, i)
            if i + n > len(b):
                break                        # cut short: keep what we have
            for f, t, rec in fields(b[i:i + n]):
                if f == 2 and t == 2:
                    for rf, rt, body in fields(rec):
                        if rf == 10 and rt == 2:
                            last = {k: 0 for k in NAMES}
                            for sf, st, v in fields(body):
                                if sf in NAMES and st == 0:
                                    last[sf] = v
                        elif rf == 11:
                            goodbye = True
            i += n
    except (OSError, ValueError) as e:
        print("error=%s" % str(e).replace(" ", "_"))
        continue
    if last:
        for k, v in last.items():
            tot[NAMES[k]] = tot.get(NAMES[k], 0) + v
    tot["streams"] = tot.get("streams", 0) + 1
    tot["no_goodbye"] = tot.get("no_goodbye", 0) + (0 if goodbye else 1)
# records and streams always; the other counters only when not zero
print(" ".join("%s=%d" % (k, v) for k, v in sorted(tot.items())
               if v or k in ("records", "streams")))
PY
}

# drops from reports' summary.txt: the sum of the "  name: N" counters in
# their "drops" section
summary_drops() {
    awk '/^drops/ { f = 1; next } f && NF == 0 { f = 0 }
         f && $1 ~ /^[a-z_]+:$/ && $2 ~ /^[0-9]+$/ { s += $2 } END { print s + 0 }' "$@" 2>/dev/null
}

# ---- one run
run_one() { # ROUND INDEX
    local r=$1 c=${CONFIGS[$2]}
    local name=${c%%|*} rest=${c#*|}
    local cmd=${rest#*|*|}
    local O=$S/out.$name
    rm -rf "$O"; mkdir -p "$O"
    local t0 t1 wall rss el rc chk size drops=- dropinfo= note=
    O=$O timeout -k 10 "$TMO" /usr/bin/time -f '%e %M' -o "$S/time.txt" \
        bash -c "O=$O; exec $cmd" >"$S/stdout.txt" 2>"$S/stderr.txt" </dev/null
    rc=$?
    read -r wall rss <"$S/time.txt" 2>/dev/null || { wall=NA; rss=0; }
    case $wall in [0-9]*) ;; *) wall=NA ;; esac
    el=$(grep -o 'elapsed_s=[0-9.]*' "$S/stdout.txt" | head -1 | cut -d= -f2)
    chk=$(grep -o 'checksum=[0-9a-f]*' "$S/stdout.txt" | head -1 | cut -d= -f2)
    size=$(find "$O" -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
    [ "$rc" -ne 0 ] && note="exit $rc: $(tail -c 200 "$S/stderr.txt" | tr '\n\t|' '   ')"
    # agent configs: drop counters from the stream, and from the report
    case $name in
    file | fp | libunwind | cpu_agent)
        if ls "$O"/*.pfr >/dev/null 2>&1; then
            dropinfo=$(pfr_stats "$O"/*.pfr)
            drops=$(echo "$dropinfo" | tr ' ' '\n' | grep -E '^(buffer_full|no_buffer|stack_table|output|thread_exit)=' |
                cut -d= -f2 | awk '{ s += $1 } END { print s + 0 }')
            if [ "$r" = 0 ]; then # one report per config (not timed)
                "$PERFAGENT" report "$O"/*.pfr -o "$O/report" >/dev/null 2>&1 &&
                    dropinfo="$dropinfo report_drop_sum=$(summary_drops "$O"/report/*/summary.txt)"
            fi
        else
            note="${note:+$note; }no .pfr written"
        fi ;;
    run)
        if ls "$O"/report/*/summary.txt >/dev/null 2>&1; then
            drops=$(summary_drops "$O"/report/*/summary.txt)
            dropinfo="report_drop_sum=$drops"
        else
            note="${note:+$note; }no summary.txt"
        fi ;;
    esac
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$O" # a full trace is ~1.4 GB
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$r" "$wall" "${el:-NA}" "$rss" \
        "${size:-0}" "$drops" "${chk:-NA}" "$rc" "$dropinfo" "$note" >>"$RES"
    printf '  round %d %-10s wall %6s s  in-process %8s s  rss %6s KB  out %10s B  drops %s %s\n' \
        "$r" "$name" "$wall" "${el:-NA}" "$rss" "${size:-0}" "$drops" "${note:+ [$note]}" >&2
}

echo "bench: $N configs x $ROUNDS rounds, mallocbench $ARGS, outputs in $S" >&2
for ((r = 0; r < ROUNDS; r++)); do
    for ((k = 0; k < N; k++)); do
        run_one "$r" $(((k + r) % N))
    done
done

# ---- table
DESCS=$S/descs.tsv
: >"$DESCS"
for c in "${CONFIGS[@]}"; do
    IFS='|' read -r name wl desc _ <<<"$c"
    printf '%s\t%s\t%s\n' "$name" "$wl" "$desc" >>"$DESCS"
done
python3 - "$RES" "$DESCS" "$ARGS" "$ROUNDS" <<'PY'
import statistics, sys
res, descs, args, rounds = sys.argv[1:5]
rows = [l.rstrip("\n").split("\t") for l in open(res) if l.strip()]
order = [l.rstrip("\n").split("\t") for l in open(descs) if l.strip()]

def num(x):
    try:
        return float(x)
    except ValueError:
        return None

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def size(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1000.0

stats, base_of = {}, {}
for name, wl, desc in order:
    rs = [r for r in rows if r[0] == name]
    ok = [r for r in rs if r[8] == "0"]
    walls = [num(r[2]) for r in ok]
    els = [num(r[3]) for r in ok]
    drops = [int(r[6]) for r in rs if r[6].isdigit()]
    stats[name] = dict(wl=wl, desc=desc, n=len(rs), nok=len(ok), wall=med(walls), el=med(els),
                       wmin=min([w for w in walls if w is not None], default=None),
                       wmax=max([w for w in walls if w is not None], default=None),
                       rss=med([num(r[4]) for r in ok]), size=med([num(r[5]) for r in ok]),
                       drops=drops, chks=set(r[7] for r in ok),
                       info=next((r[9] for r in rs if r[9]), ""),
                       notes=sorted(set(r[10] for r in rs if r[10])))
    base_of.setdefault(wl, name)

print()
print("mallocbench %s, %s rounds interleaved; medians; ratios are median/median vs the workload's baseline" % (args, rounds))
print()
hdr = ["config", "mode", "median wall s", "wall ratio", "wall min-max", "median in-process s",
       "in-process ratio", "peak RSS MB", "output", "drops", "notes"]
print("| " + " | ".join(hdr) + " |")
print("|" + "---|" * len(hdr))
flagged = []
for name, wl, desc in order:
    s = stats[name]
    b = stats[base_of[wl]]
    f = lambda x, p=2: "-" if x is None else ("%.*f" % (p, x))
    ratio = lambda a, c: "-" if (a is None or c is None or c == 0 or name == base_of[wl]) else "%.2fx" % (a / c)
    notes = []
    if s["nok"] < s["n"]:
        notes.append("%d/%d runs failed" % (s["n"] - s["nok"], s["n"]))
    if b["chks"] and s["chks"] and s["chks"] != b["chks"]:
        notes.append("CHECKSUM DIFFERS from baseline")
    notes += s["notes"][:2]
    if s["drops"]:
        d = max(s["drops"])
        dtxt = "0" if d == 0 else "**max %d DROPPED (not exact)**" % d
        if d:
            flagged.append(name)
    else:
        dtxt = "-"
    if s["info"]:
        notes.append(s["info"])
    print("| " + " | ".join([
        name, desc, f(s["wall"]), ratio(s["wall"], b["wall"]),
        "%s-%s" % (f(s["wmin"]), f(s["wmax"])), f(s["el"], 3), ratio(s["el"], b["el"]),
        f(s["rss"] / 1024.0 if s["rss"] else None, 1),
        size(s["size"]) if s["size"] else "0", dtxt, "; ".join(notes)]) + " |")
print()
if flagged:
    print("WARNING: %s dropped events: exact mode with drops is not exact." % ", ".join(flagged))
else:
    if any(stats[n]["drops"] for n in stats):
        print("No agent config dropped events.")
PY
