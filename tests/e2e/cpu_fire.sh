#!/usr/bin/env bash
# Safety under fire (issue 12, section 5): a host keeps doing what a CPU
# sampler can break while one of its threads is busy and everything is
# sampled at 4 kHz with the heap hooks recording every allocation
# (PERFAGENT_MALLOC_RATE=1; dlopen, fork, exec and eintr: odd runs, CPU only
# the even ones).  Scenarios (tests/workloads/fire_ops.c,
# cxx_throw.cc), CPU_FIRE_RUNS (default 50) runs each, per sampling mode:
#   dlopen  two threads dlopen, call into and dlclose a library 600 times
#   throw   two threads throw and catch 10000 C++ exceptions each (libgcc's
#           unwinder in the host's threads)
#   fork    4 forks while another thread allocates; children allocate, exit 7
#   exec    3 fork+exec of "fire_ops burn" while another thread allocates
#   churn   three threads make 100000 malloc/calloc/realloc/memalign/free calls
#   eintr   a blocking read(2) loop on a pipe whose writer pauses, a poll(2)
#           loop that times out and a nanosleep loop, none retrying on
#           EINTR: the program counts EINTR and must see none
# Every run must: exit with the plain run's status and print its exact
# stdout (a busy thread prints the result of fixed integer and FP work), not
# hang (timeout), leave whole streams that decode (Goodbye, no fault) in the
# expected shape (1 process; fork: + 4 fork children; exec: + 3 exec'd images and
# their fork children), sample the busy thread, and free no unknown block
# (fork children excepted: they free what they inherited).
# Modes: CPU_FIRE_MODES (default "perf timer"), passed as PERFAGENT_CPU_MODE.
# Output: one line per scenario's plain run, one per scenario and mode
# ("ok cpu_fire.dlopen.perf: 50/50 runs clean"; on FAIL the first failing
# run's details follow as # lines), and per mode the EINTR totals and
# whether most reads really blocked (on an empty pipe): a fixed
# count of lines whatever happens.  Runs go CPU_FIRE_JOBS (2) at a time.
. "$(dirname "$0")/common.bash"
require_product "$W/fire_ops" "$W/cxx_throw" "$W/libdlleak.so"

RUNS=${CPU_FIRE_RUNS:-50}
MODES="${CPU_FIRE_MODES:-perf timer}"
JOBS=${CPU_FIRE_JOBS:-2}
RUN_TO=30 # seconds for one run (each takes ~0.3 s)
SCENARIOS="dlopen throw fork exec churn eintr"
BUSY=bf18633340325350 # fire_ops's busy thread's result

cmd_of() {
    case $1 in
    dlopen) echo "$W/fire_ops dlopen 600" ;;
    throw) echo "$W/cxx_throw 10000" ;;
    fork) echo "$W/fire_ops fork 4" ;;
    exec) echo "$W/fire_ops exec 3" ;;
    churn) echo "$W/fire_ops churn 100000" ;;
    eintr) echo "$W/fire_ops eintr 150" ;;
    esac
}
# the plain run's exact stdout ("|" for newlines)
plain_want() {
    case $1 in
    dlopen) echo "dlopen: threads=2 rounds=600 sum=289200 busy=$BUSY|" ;;
    throw) echo "caught=10000|caught=10000|" ;;
    fork) echo "fork: ok=4 busy=$BUSY|" ;;
    exec) echo "exec: ok=3 busy=$BUSY|" ;;
    churn) echo "churn: threads=3 calls=100000 sum=30839935 busy=$BUSY|" ;;
    eintr) echo "eintr: reads=150 polls=150 sleeps=150 eintr=0 busy=$BUSY|" ;;
    esac
}
# the streams of one run, as digest prints them: processes (traced program /
# fork children / exec'd images), their Goodbye exit codes, how many are
# whole ("all" or how many), unknown frees outside fork children, how many
# busy threads were sampled (threads of that name but the main one in the
# traced program's stream: fire_ops's fire_busy, cxx_throw's two workers).  A fork child that only execs has a stream of its own only
# when it was sampled before its exec (not always): exec's F stands for
# "any number of fork children, each ended by its exec" (exit code -1).
# fork's T (timer mode, CPU only): a fork child has a stream only if a
# scheduler tick sampled it (timer signals come at ticks; a child of 20 ms
# under load may see none), so 0 to 4 children, each exiting 7.
shape_want() {
    local b=1
    [ "$1" = throw ] && b=2
    case $1 in
    fork) if [ "${2:-0}" = 1 ]; then echo "procs=1/T/0 exits=0/T/- whole=all unknown=0 busy=$b"
          else echo "procs=1/4/0 exits=0/7/- whole=all unknown=0 busy=$b"; fi ;;
    exec) echo "procs=1/F/3 exits=0/F/0 whole=all unknown=0 busy=$b" ;;
    *) echo "procs=1/0/0 exits=0/-/- whole=all unknown=0 busy=$b" ;;
    esac
}
busy_name() { if [ "$1" = throw ]; then echo cxx_throw; else echo fire_busy; fi; }

# digest BUSYNAME SCENARIO [TICK] < `perfagent report` output (every
# process's summary); TICK=1: fork children counted as T (see shape_want)
digest() {
    awk -v busy="$1" -v sc="$2" -v tick="${3:-0}" '
    function flush() {
        if (!n) return
        k = forked ? 2 : image ? 3 : 1
        cnt[k]++
        if (!(k SUBSEP code in seen)) { seen[k, code] = 1; ex[k] = ex[k] (ex[k] == "" ? "" : ",") code }
        if (clean && nofault) whole++
        if (k != 2) unknown += unk
        if (k == 1) sampled += bs
    }
    /^perfagent summary$/ { flush(); n++; forked = image = clean = nofault = unk = bs = 0; code = "?"; next }
    /^pid: / { pid = $2 }
    /^pid: .*forked from/ { forked = 1 }
    /^argv: *\["fire_ops", "burn"\]$/ { image = 1 }
    /^stream: *ended cleanly \(Goodbye, exit code -?[0-9]+\)$/ {
        clean = 1; code = $NF; sub(/\)$/, "", code) }
    /^decode: *no fault$/ { nofault = 1 }
    /^    of unknown blocks: / { unk = $4 }
    $1 == "tid" && $2 != pid && $3 == "(" busy "):" && $5 == "samples," && $4 > 0 { bs++ }
    END {
        flush()
        for (k = 1; k <= 3; k++) if (ex[k] == "") ex[k] = "-"
        c2 = cnt[2] + 0
        if (sc == "exec" && (ex[2] == "-" || ex[2] == "-1")) { c2 = "F"; ex[2] = "F" }
        if (sc == "fork" && tick && c2 <= 4 && (ex[2] == "-" || ex[2] == "7")) { c2 = "T"; ex[2] = "T" }
        printf "procs=%d/%s/%d exits=%s/%s/%s whole=%s unknown=%d busy=%s\n",
            cnt[1], c2, cnt[3], ex[1], ex[2], ex[3], whole == n ? "all" : whole, unknown, sampled + 0
    }'
}

# one_run MODE SCENARIO I : run it under the agent, report it, and write
# $T/MODE.SCENARIO.I.v: "clean", or what differs from the plain run and the
# expected streams.  Leaves the files of a run that is not clean.
one_run() {
    local mode=$1 sc=$2 i=$3 n=$1.$2.$3 d s why=
    d=$T/$n.d
    mkdir -p "$d"
    # throw and churn record the heap always; the others every other run
    # (CPU only the rest: the agent must not need the heap to follow them)
    heap=1
    case $sc in throw | churn) ;; *) heap=$((i % 2)) ;; esac
    # shellcheck disable=SC2046
    TO=$RUN_TO run "$n" env LD_PRELOAD="$AGENT" PERFAGENT_CPU_MODE="$mode" PERFAGENT_CPU_HZ=4000 \
        PERFAGENT_MALLOC_RATE=$heap PERFAGENT_OUTPUT="$d/out.pfr" $(cmd_of "$sc")
    [ "$(rc_of "$n")" = "$(rc_of plain.$sc)" ] ||
        why="exit status $(rc_of "$n"), plain $(rc_of plain.$sc)$( [ "$(rc_of "$n")" = 124 ] && echo ' (timed out)'); "
    cmp -s "$T/$n.out" "$T/plain.$sc.out" ||
        why="${why}stdout '$(tr '\n' '|' <"$T/$n.out")'; "
    timeout -k 5 "$RUN_TO" "$PERFAGENT" report "$d"/out.pfr* -o "$d/rep" >"$T/$n.rep" 2>"$T/$n.reperr" ||
        why="${why}perfagent report exited $? ($(head -c 200 "$T/$n.reperr" | tr '\n' '|')); "
    local tick=0
    [ "$mode" = timer ] && [ "$heap" = 0 ] && tick=1
    s=$(digest "$(busy_name "$sc")" "$sc" $tick <"$T/$n.rep")
    [ "$s" = "$(shape_want "$sc" $tick)" ] ||
        why="${why}streams '$s', want '$(shape_want "$sc" $tick)' (heap $heap); "
    if [ -z "$why" ]; then
        echo clean >"$T/$n.v"
        rm -rf "$d" "$T/$n.rep"
    else
        echo "$why stderr: $(grep -v ': wrote ' "$T/$n.err" | head -c 300 | tr '\n' '|')" >"$T/$n.v"
    fi
}

# the plain runs: exact output, the reference for every run under the agent
for sc in $SCENARIOS; do
    # shellcheck disable=SC2046
    run plain.$sc $(cmd_of "$sc")
    expect_eq plain.$sc "$(rc_of plain.$sc) $(tr '\n' '|' <"$T/plain.$sc.out")" "0 $(plain_want "$sc")"
done

t0=$SECONDS
for mode in $MODES; do
    for sc in $SCENARIOS; do
        for ((i = 1; i <= RUNS; i++)); do
            while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
            # 3 failed runs say enough: skip the rest (a broken agent
            # fails in seconds, not minutes)
            if [ "$(cat "$T/$mode.$sc".*.v 2>/dev/null | grep -vcx clean)" -ge 3 ]; then
                echo "not run: 3 runs of this scenario had already failed" >"$T/$mode.$sc.$i.v"
                continue
            fi
            one_run "$mode" "$sc" "$i" &
        done
    done
done
wait
echo "# $((SECONDS - t0)) s for $RUNS runs of each scenario in modes: $MODES"

for mode in $MODES; do
    # which mechanism sampled (the Hello's, from one kept summary or a fresh run)
    run mech.$mode env LD_PRELOAD="$AGENT" PERFAGENT_CPU_MODE="$mode" PERFAGENT_CPU_HZ=4000 \
        PERFAGENT_OUTPUT="$T/mech.$mode.pfr" "$W/fire_ops" eintr 10
    echo "# mode $mode: $("$PERFAGENT" report "$T/mech.$mode.pfr" -o "$T/mech.$mode.rep" 2>&1 | grep -m1 '^  sampling:' | sed 's/^ *//')"
    for sc in $SCENARIOS; do
        good=0 first=
        for ((i = 1; i <= RUNS; i++)); do
            v=$(cat "$T/$mode.$sc.$i.v" 2>/dev/null || echo "no verdict (the run's job died)")
            if [ "$v" = clean ]; then
                good=$((good + 1))
            elif [ -z "$first" ]; then
                first="run $i: $v"
            fi
        done
        if [ "$good" -eq "$RUNS" ]; then
            ok "$sc.$mode: $good/$RUNS runs clean"
        else
            fail "$sc.$mode" "$good/$RUNS runs clean (same exit status and stdout as the plain run, whole streams, busy thread sampled, no unknown free)"
            echo "#   first failing $first" | head -c 2000
            echo
        fi
    done
    # EINTR seen by the runs under the agent, by call: read poll nanosleep
    # and the writer's nanosleep; and how many reads found the pipe empty
    # (blocked): most must have, or the read loop proved nothing
    counts=$(cat "$T/$mode.eintr."*.err 2>/dev/null |
        sed -n 's/^fire_ops: EINTR in read \([0-9]*\), poll \([0-9]*\), nanosleep \([0-9]*\), writer \([0-9]*\); \([0-9]*\) of \([0-9]*\) reads blocked$/\1 \2 \3 \4 \5 \6/p' |
        awk '{for (k = 1; k <= 6; k++) c[k] += $k; n++}
             END {printf "%d %d %d %d %d %d %d\n", n, c[1], c[2], c[3], c[4], c[5], c[6]}')
    read -r nr er ep es ew blocked reads <<<"$counts"
    expect_eq eintr.$mode.calls "$nr: $er $ep $es $ew" "$RUNS: 0 0 0 0" \
        "runs that printed their counts: EINTR in read, poll, nanosleep, the writer's nanosleep"
    expect_eq eintr.$mode.blocked "$([ "$reads" -gt 0 ] && [ $((blocked * 2)) -ge "$reads" ] && echo most)" most \
        "$blocked of $reads reads found the pipe empty"
done
finish
