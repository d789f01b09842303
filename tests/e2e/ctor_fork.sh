#!/usr/bin/env bash
# A library constructor that forks (tests/workloads/ctor_fork.c), before the
# agent's constructor ran (LD_PRELOAD="agent lib": the loader initializes the
# later object first) and after it ("lib agent").  Whatever the order, each
# process writes its own stream under its own pid with exact numbers:
#   daemon: the parent's 10 x 1000 B made and freed in the constructor, then
#           _exit() from the constructor; the child runs `leakn 5`
#           (5 x 1000 B at leak_n, 8 x 4096 B at steady_set live at exit).
#   child:  the child makes 100 x 100 B, frees 50 and exit(7)s inside the
#           constructor; the parent runs `leakn 5`.
# Before the fix the child of the first order kept its parent's pid (it wrote
# into the parent's file) and the early _exit/exit flushed nothing.
source "$(dirname "$0")/common.bash"
require_product "$W/libctorfork.so" "$W/leakn"
CK="$PY $PA_ROOT/tests/e2e/lib/checks.py"
LIB=$W/libctorfork.so

for mode in daemon child; do
    run "base_$mode" env CTOR_FORK=$mode LD_PRELOAD="$LIB" "$W/leakn" 5
    for order in first last; do
        n=${mode}_$order
        if [ $order = first ]; then pre="$AGENT $LIB"; else pre="$LIB $AGENT"; fi
        mkdir -p "$T/$n"
        run "$n" env CTOR_FORK=$mode LD_PRELOAD="$pre" PERFAGENT_MALLOC_RATE=1 \
            PERFAGENT_OUTPUT="$T/$n/out.pfr" "$W/leakn" 5
        same_output "$n.output" "base_$mode" "$n"
        expect_eq "$n.files" "$(ls "$T/$n" | wc -l)" 2 "one stream per process"
        D=$T/$n.rep
        report "$n.report" "$D" "$T/$n"/out.pfr* || true
        # the two streams: program, exit code, nothing lost ("f": the fork
        # child frees blocks it inherited, checks.py streams)
        streams=$($CK streams "$D/index.json" 2>&1)
        if [ $mode = daemon ]; then
            expect_eq "$n.streams" "$streams" "leakn exit=0 lost=0/0/0/0;leakn exit=0 lost=0/f/0/0"
        else
            expect_eq "$n.streams" "$streams" "leakn exit=0 lost=0/0/0/0;leakn exit=7 lost=0/f/0/0"
        fi
        # each process: allocations, frees, live bytes/objects (summary.txt)
        got=$(for d in $(procs "$D" | awk '{print $4}'); do
                  $CK sum "$d/summary.txt" allocations frees live_bytes live_objects; done | sort | tr '\n' ';')
        if [ $mode = daemon ]; then
            # parent: 10 made and freed; child: leakn 5 (13 + 5000 churn)
            want="10 10 0 0;5013 5000 37768 13;"
        else
            # child: 100 + stdout's buffer (suppressed: not in live), 50
            # freed; parent: leakn 5 + its own stdout buffer
            want="101 50 5000 50;5014 5000 37768 13;"
        fi
        expect_eq "$n.numbers" "$got" "$want" "allocations frees live_bytes live_objects per process"
        # the fork child is named as such, with its own pid in its stream
        expect_eq "$n.pids" "$(procs "$D" | awk '$1 != $2 {n++} END {print n + 0}')" 2 \
            "processes whose pid differs from their ppid"
    done
done
finish
