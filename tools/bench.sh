#!/usr/bin/env bash
# Overhead benchmark (`make bench`; not part of `make check`).
#
# Builds cpubound and mallocbench from the shared anchors
# ($PA_SHARED/anchors/workloads) into build/bench/ and runs two suites, one
# after the other.  Within a suite the configs run INTERLEAVED round-robin
# (A B C ..., order rotated every round), so that each config sees the same
# machine; the suites are not mixed, because a heap run writing ~700 MB slows
# the runs right after it on this VM (shared/anchors/RESULTS.md, "Noise").
#
# Suite "cpu" -- `cpubound 3 1` (fixed work, ~3 s, one busy thread):
#   base       no profiler
#   aa         the baseline again (A/A noise floor)
#   agent99    agent, CPU only: PERFAGENT_CPU_HZ=99 PERFAGENT_MALLOC_RATE=0,
#              .pfr file
#   agent999   the same at 999 Hz
#   timer999   the same with PERFAGENT_CPU_MODE=timer (the timer_create
#              fallback: ~250 signals/s, each standing for its missed ticks)
#   perf99     perf record -g -e cpu-clock -F 99 (when perf is installed;
#              -N --no-bpf-event as in the anchors: no build-id cache
#              copy, no BPF side-band thread that rounds perf's exit up to 1 s)
#   perf999    the same at 999 Hz
#   The table gives the in-process ratio (cpubound's own elapsed_s), its
#   spread, and the delivered rate of the busiest thread: samples / in-process
#   seconds for every profiler, and for the agent also the stream's own
#   figure (samples x period / the thread's CPU time, as reports compute it).
#   Targets: agent99 <= 1.01x, agent999 <= 1.03x in-process, delivered >= 95%.
#
# Suite "heap" -- `mallocbench THREADS OPS 42`:
#   base       glibc, no agent
#   aa         the baseline again (A/A noise floor)
#   floor      tools/bench/floor_shim.c preloaded: pass-through interposition,
#              a TLS byte countdown and a freed-pointer table lookup, nothing
#              recorded: what any preloaded sampler costs on this run's machine
#   sampled    agent, sampled heap (the default PERFAGENT_MALLOC_RATE), CPU
#              off, writing a .pfr (target <= 1.08x in-process)
#   sampled99  the same with CPU sampling at 99 Hz (target <= 1.10x)
#   file       agent, exact mode (default unwinder: cfi), writing a .pfr to
#              /dev/shm (or tmp)
#   null       the same writing to /dev/null: the agent's cost without
#              storing the ~700 MB stream
#   run        agent, exact mode, through `perfagent run` (collector live; --cpu 0)
#   libunwind  agent, exact mode, PERFAGENT_UNWIND=libunwind, file output
#   fp         agent, exact mode, PERFAGENT_UNWIND=fp, file output
#   heaptrack  heaptrack -o ... (when installed); its rounds run after all
#              the others' (it slows the runs that follow it)
#
# Suite "cxx" -- tools/bench/newbench.cc `newbench THREADS OPS`: C++
# new char[16..256] / delete[] churn through libstdc++'s operators:
#   base, floor (the shim above: it hooks malloc/free under libstdc++'s
#   operators), sampled (CPU off) and null (exact mode, output /dev/null:
#   a file would hold 2 GB), as in "heap".  OPS x 4 pairs: one pair costs
#   about a quarter of a mallocbench op.
#   The table gives median wall s, ratio vs base, min-max, median in-process s
#   (mallocbench's elapsed_s), its ratio and per-round ratios, CPU time
#   (user+sys) and its ratio, peak RSS, output size, and the agent's drop
#   counters (read from the stream's last AgentStats, and `perfagent
#   report`'s summary.txt).  A config that dropped events is flagged: exact
#   mode with drops is not exact.
#
# Both tables give, per config, how many CPUs the rest of the machine kept
# busy during its runs (/proc/stat's busy time minus the run's own CPU time,
# per wall second): on the shared 2-vCPU VM, other jobs, not the bench, make
# the elapsed-time ratios move (mallocbench at full size, one interleaved
# run, others ~1.4 CPUs: baseline 4.3-8.8 s, agent 8.5-20.8 s, per-round
# ratios 1.9-2.5x, CPU-time ratio 1.9-2.1x).  Read a ratio together with
# that column and with the CPU ratio.
#
# Environment: BENCH_SUITES ("cpu heap cxx pq net"), BENCH_ROUNDS (5, all suites),
# BENCH_CPU_ROUNDS (cpu suite, default BENCH_ROUNDS), BENCH_OPS (heap: ops per
# thread, 40000000), BENCH_THREADS (heap: 2), BENCH_CONFIGS (space-separated
# subset: NAME or SUITE.NAME), BENCH_TIMEOUT (s per run, 900), PA_SHARED
# (default $PA_ROOT/../shared), B (build dir), BENCH_KEEP=1 (keep outputs).
set -u
PA_ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-build}
case $B in /*) BD=$B ;; *) BD=$PA_ROOT/$B ;; esac
PA_SHARED=${PA_SHARED:-$PA_ROOT/../shared}
SUITES=${BENCH_SUITES:-cpu heap cxx pq net}
# pq and net are scripts of their own (tools/bench_pq.sh, tools/bench_net.sh:
# pgbench and redis-benchmark against throwaway servers), run after the
# suites here with their own interleaving and tables.
EXTRA=
for s in $SUITES; do case $s in pq | net) EXTRA="$EXTRA $s" ;; esac; done
SUITES=$(for s in $SUITES; do case $s in pq | net) ;; *) printf '%s ' "$s" ;; esac; done)
OPS=${BENCH_OPS:-40000000}
THREADS=${BENCH_THREADS:-2}
ROUNDS=${BENCH_ROUNDS:-5}
CPU_ROUNDS=${BENCH_CPU_ROUNDS:-$ROUNDS}
TMO=${BENCH_TIMEOUT:-900}
AGENT=$BD/libperfagent.so
PERFAGENT=$BD/perfagent
BIN=$BD/bench
TOOLS=$PA_ROOT/tools/bench
unset LD_PRELOAD $(compgen -e | grep '^PERFAGENT_')

die() { echo "bench: $*" >&2; exit 1; }
[ -f "$AGENT" ] && [ -x "$PERFAGENT" ] || die "build the agent first (make)"
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is needed"
for n in "$ROUNDS" "$CPU_ROUNDS"; do
    [ "$n" -ge 1 ] 2>/dev/null || die "BENCH_ROUNDS and BENCH_CPU_ROUNDS must be >= 1"
done
for suite in $SUITES; do
    case $suite in
    cpu) w=cpubound ;;
    heap) w=mallocbench ;;
    cxx)
        w=newbench
        if [ ! -x "$BIN/$w" ] || [ "$TOOLS/$w.cc" -nt "$BIN/$w" ]; then
            mkdir -p "$BIN"
            c++ -O2 -g -fno-omit-frame-pointer -pthread -o "$BIN/$w" "$TOOLS/$w.cc" || die "cannot build $w"
        fi
        continue
        ;;
    *) die "unknown suite '$suite' in BENCH_SUITES (cpu, heap, cxx, pq, net)" ;;
    esac
    src=$PA_SHARED/anchors/workloads/$w.c
    [ -f "$src" ] || die "no $src (set PA_SHARED)"
    mkdir -p "$BIN"
    if [ ! -x "$BIN/$w" ] || [ "$src" -nt "$BIN/$w" ]; then
        cc -O2 -g -fno-omit-frame-pointer -fno-ipa-icf -pthread -o "$BIN/$w" "$src" || die "cannot build $w"
    fi
done
FLOOR=$BIN/floor_shim.so
if [ ! -f "$FLOOR" ] || [ "$TOOLS/floor_shim.c" -nt "$FLOOR" ]; then
    mkdir -p "$BIN"
    cc -O2 -g -fPIC -shared -Wall -Wextra -Werror -o "$FLOOR" "$TOOLS/floor_shim.c" -ldl ||
        die "cannot build floor_shim.so"
fi
MB=$BIN/mallocbench
CB=$BIN/cpubound

SCR_BASE=/dev/shm
[ -w /dev/shm ] || SCR_BASE=${TMPDIR:-/tmp}
S=$(mktemp -d "$SCR_BASE/pa-bench.XXXXXX")
cleanup() { [ -n "${BENCH_KEEP:-}" ] && echo "kept $S" >&2 || rm -rf "$S"; }
trap cleanup EXIT
RES=$S/results.tsv
DESCS=$S/descs.tsv
: >"$RES"
: >"$DESCS"

# ---- configs: SUITE|NAME|KIND|HZ|DESCRIPTION|COMMAND.  COMMAND runs through
# bash -c; $O is the run's own output folder, emptied before each run.  KIND
# says what to read after the run: pfr (the agent's stream), run (perfagent
# run's report), perf (perf.data), - (nothing).  HZ: requested sample rate.
CONFIGS=()
add() { CONFIGS+=("$1|$2|$3|$4|$5|$6"); }
CARGS="3 1"
HARGS="$THREADS $OPS 42"
cpu_agent() { # HZ
    echo "env LD_PRELOAD=$AGENT PERFAGENT_MALLOC_RATE=0 PERFAGENT_CPU_HZ=$1 PERFAGENT_OUTPUT=\$O/cb.pfr $CB $CARGS"
}
perf_rec() { # HZ
    echo "perf record -N --no-bpf-event -g -e cpu-clock -F $1 -o \$O/perf.data -- $CB $CARGS"
}
add cpu base - 0 "no profiler" "$CB $CARGS"
add cpu aa - 0 "baseline again (noise floor)" "$CB $CARGS"
add cpu agent99 pfr 99 "agent, CPU only, 99 Hz, file" "$(cpu_agent 99)"
add cpu agent999 pfr 999 "agent, CPU only, 999 Hz, file" "$(cpu_agent 999)"
add cpu timer999 pfr 999 "agent, CPU only, 999 Hz asked, timer fallback" \
    "env PERFAGENT_CPU_MODE=timer $(cpu_agent 999)"
if command -v perf >/dev/null 2>&1; then
    add cpu perf99 perf 99 "perf record -g cpu-clock -F 99" "$(perf_rec 99)"
    add cpu perf999 perf 999 "perf record -g cpu-clock -F 999" "$(perf_rec 999)"
else
    echo "bench: perf not installed (apt-get install linux-perf): no perf configs" >&2
fi
add heap base - 0 "glibc, no agent" "$MB $HARGS"
add heap aa - 0 "baseline again (noise floor)" "$MB $HARGS"
add heap floor - 0 "minimal sampling shim (tools/bench/floor_shim.c)" "env LD_PRELOAD=$FLOOR $MB $HARGS"
add heap sampled pfr 0 "agent sampled (default rate), CPU off, file" \
    "env LD_PRELOAD=$AGENT PERFAGENT_CPU_HZ=0 PERFAGENT_OUTPUT=\$O/mb.pfr $MB $HARGS"
add heap sampled99 pfr 99 "agent sampled + CPU 99 Hz, file" \
    "env LD_PRELOAD=$AGENT PERFAGENT_CPU_HZ=99 PERFAGENT_OUTPUT=\$O/mb.pfr $MB $HARGS"
add heap file pfr 0 "agent exact, file on ${SCR_BASE}" \
    "env LD_PRELOAD=$AGENT PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT=\$O/mb.pfr $MB $HARGS"
add heap null - 0 "agent exact, output /dev/null" \
    "env LD_PRELOAD=$AGENT PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT=/dev/null $MB $HARGS"
add heap run run 0 "agent exact, perfagent run (collector)" \
    "$PERFAGENT run -o \$O/report --malloc-rate 1 --cpu 0 -- $MB $HARGS"
add heap libunwind pfr 0 "agent exact, UNWIND=libunwind, file" \
    "env LD_PRELOAD=$AGENT PERFAGENT_MALLOC_RATE=1 PERFAGENT_UNWIND=libunwind PERFAGENT_OUTPUT=\$O/mb.pfr $MB $HARGS"
add heap fp pfr 0 "agent exact, UNWIND=fp, file" \
    "env LD_PRELOAD=$AGENT PERFAGENT_MALLOC_RATE=1 PERFAGENT_UNWIND=fp PERFAGENT_OUTPUT=\$O/mb.pfr $MB $HARGS"
NB=$BIN/newbench
XARGS="$THREADS $((OPS * 4))" # a new/delete pair is ~4x cheaper than a mallocbench op
add cxx base - 0 "libstdc++, no agent" "$NB $XARGS"
add cxx floor - 0 "minimal sampling shim (malloc/free only)" "env LD_PRELOAD=$FLOOR $NB $XARGS"
add cxx sampled pfr 0 "agent sampled (default rate), CPU off, file" \
    "env LD_PRELOAD=$AGENT PERFAGENT_CPU_HZ=0 PERFAGENT_OUTPUT=\$O/nb.pfr $NB $XARGS"
add cxx null - 0 "agent exact, output /dev/null" \
    "env LD_PRELOAD=$AGENT PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT=/dev/null $NB $XARGS"
AFTER="heaptrack" # configs run after the interleaved rounds, not in them
if command -v heaptrack >/dev/null 2>&1; then
    add heap heaptrack - 0 "heaptrack (full trace)" "heaptrack -o \$O/heaptrack $MB $HARGS"
fi
if [ -n "${BENCH_CONFIGS:-}" ]; then
    sel=()
    for c in "${CONFIGS[@]}"; do
        IFS='|' read -r suite name _ <<<"$c"
        for w in $BENCH_CONFIGS; do
            [ "$name" = "$w" ] || [ "$suite.$name" = "$w" ] && { sel+=("$c"); break; }
        done
    done
    [ ${#sel[@]} -gt 0 ] || die "BENCH_CONFIGS matches no config"
    CONFIGS=("${sel[@]}")
fi

# drops from reports' summary.txt: the sum of the "  name: N" counters in
# their "drops" section
summary_drops() {
    awk '/^drops/ { f = 1; next } f && NF == 0 { f = 0 }
         f && $1 ~ /^[a-z_]+:$/ && $2 ~ /^[0-9]+$/ { s += $2 } END { print s + 0 }' "$@" 2>/dev/null
}
# busy CPU ticks of the whole machine (user nice system irq softirq steal of
# /proc/stat's cpu line; USER_HZ ticks)
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
HZ_TICKS=$(getconf CLK_TCK 2>/dev/null || echo 100)
kv() { # KEY LINE: the value of KEY=VALUE in LINE
    echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1
}

# ---- one run
run_one() { # ROUND CONFIG
    local r=$1
    local suite name kind hz desc cmd
    IFS='|' read -r suite name kind hz desc cmd <<<"$2"
    local O=$S/out.$suite.$name
    rm -rf "$O"; mkdir -p "$O"
    local wall rss usr sys cpu el rc chk size drops=- dropinfo= note= load top=- stream=- st b0 b1 others
    load=$(cut -d' ' -f1 /proc/loadavg)
    b0=$(busy_ticks)
    O=$O timeout -k 10 "$TMO" /usr/bin/time -f '%e %M %U %S' -o "$S/time.txt" \
        bash -c "O=$O; exec $cmd" >"$S/stdout.txt" 2>"$S/stderr.txt" </dev/null
    rc=$?
    b1=$(busy_ticks)
    read -r wall rss usr sys <"$S/time.txt" 2>/dev/null || { wall=NA; rss=0; }
    case $wall in [0-9]*) ;; *) wall=NA ;; esac
    cpu=$(awk -v u="$usr" -v s="$sys" 'BEGIN { if (u ~ /^[0-9.]+$/ && s ~ /^[0-9.]+$/) printf "%.2f", u + s; else print "NA" }')
    # what the rest of the machine (other users' jobs) ran meanwhile, in
    # CPUs: the machine's busy time over the run minus the run's own CPU
    # time, per second of wall time.  On a shared VM this, not the load
    # average, says whether a run was measured on a busy machine.
    others=$(awk -v b0="$b0" -v b1="$b1" -v hz="$HZ_TICKS" -v c="$cpu" -v w="$wall" \
        'BEGIN { if (c ~ /^[0-9.]+$/ && w + 0 > 0) { o = ((b1 - b0) / hz - c) / w; printf "%.2f", o < 0 ? 0 : o } else print "NA" }')
    el=$(grep -o 'elapsed_s=[0-9.]*' "$S/stdout.txt" | head -1 | cut -d= -f2)
    chk=$(grep -o 'checksum=[0-9a-f]*' "$S/stdout.txt" | head -1 | cut -d= -f2)
    size=$(find "$O" -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
    [ "$rc" -ne 0 ] && note="exit $rc: $(tail -c 200 "$S/stderr.txt" | tr '\n\t|' '   ')"
    case $kind in
    pfr) # drop counters and CPU samples from the stream, and from the report
        if ls "$O"/*.pfr >/dev/null 2>&1; then
            st=$(python3 "$TOOLS/pfr_stats.py" "$O"/*.pfr)
            drops=$(echo "$st" | tr ' ' '\n' | grep -E '^(buffer_full|no_buffer|stack_table|output|thread_exit)=' |
                cut -d= -f2 | awk '{ s += $1 } END { print s + 0 }')
            dropinfo=$(echo "$st" | tr ' ' '\n' | grep -v '^cpu_top_' | tr '\n' ' ' | sed 's/ $//')
            if [ "$hz" -gt 0 ]; then
                top=$(kv cpu_top_samples "$st")
                stream=$(awk -v n="${top:-0}" -v p="$(kv cpu_top_period_ns "$st")" -v c="$(kv cpu_top_cpu_ns "$st")" \
                    'BEGIN { if (c > 0) printf "%.2f", 100 * n * p / c; else print "-" }')
                : "${top:=0}"
            fi
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
    perf) # samples of the busiest thread; perf's own count of lost samples
        if [ -s "$O/perf.data" ]; then
            top=$(perf script -i "$O/perf.data" -F tid 2>/dev/null | sort | uniq -c | sort -rn | awk 'NR == 1 { print $1 }')
            : "${top:=0}"
            dropinfo="lost=$(perf report -i "$O/perf.data" --stats 2>/dev/null |
                awk '/^ *LOST events:/ { n += $3 } END { print n + 0 }')"
        else
            note="${note:+$note; }no perf.data"
        fi ;;
    esac
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$O" # a full heap trace is ~1.4 GB
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$suite" "$name" "$r" "$wall" \
        "${el:-NA}" "$rss" "${size:-0}" "$drops" "${chk:-NA}" "$rc" "$load" "$top" "$stream" \
        "$cpu" "$dropinfo" "$note" "$others" >>"$RES"
    printf '  round %d %-5s %-10s load %5s  others %4s CPUs  wall %6s s  in-process %8s s  cpu %6s s  rss %6s KB  out %10s B  drops %s%s%s\n' \
        "$r" "$suite" "$name" "$load" "$others" "$wall" "${el:-NA}" "$cpu" "$rss" "${size:-0}" "$drops" \
        "$([ "$top" != - ] && echo "  samples $top")" "${note:+ [$note]}" >&2
}

for suite in $SUITES; do
    cs=()
    for c in "${CONFIGS[@]}"; do
        [ "${c%%|*}" = "$suite" ] && cs+=("$c")
    done
    N=${#cs[@]}
    [ "$N" -gt 0 ] || continue
    n=$ROUNDS args=$HARGS w=mallocbench
    [ "$suite" = cpu ] && n=$CPU_ROUNDS args=$CARGS w=cpubound
    [ "$suite" = cxx ] && args=$XARGS w=newbench
    for c in "${cs[@]}"; do
        IFS='|' read -r _ name _ hz desc _ <<<"$c"
        printf '%s\t%s\t%s\t%s\t%s\n' "$suite" "$name" "$desc" "$hz" "$w $args" >>"$DESCS"
    done
    # heaptrack's runs come after everyone else's (issue 13): it slows the
    # runs that follow it on this VM (shared/anchors/RESULTS.md, "Noise")
    rot=() after=()
    for c in "${cs[@]}"; do
        IFS='|' read -r _ name _ <<<"$c"
        case " $AFTER " in *" $name "*) after+=("$c") ;; *) rot+=("$c") ;; esac
    done
    M=${#rot[@]}
    echo "bench: $suite: $N configs x $n rounds, $w $args, outputs in $S" >&2
    for ((r = 0; r < n; r++)); do
        for ((k = 0; k < M; k++)); do
            run_one "$r" "${rot[$(((k + r) % M))]}"
        done
    done
    for c in "${after[@]}"; do
        for ((r = 0; r < n; r++)); do
            run_one "$r" "$c"
        done
    done
done

echo "bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -r)"
[ -n "${SUITES// /}" ] && python3 "$TOOLS/table.py" "$RES" "$DESCS"

for s in $EXTRA; do
    echo
    echo "== suite $s (tools/bench_$s.sh)"
    B=$B "$PA_ROOT/tools/bench_$s.sh" || echo "bench: tools/bench_$s.sh failed (exit $?)" >&2
done
