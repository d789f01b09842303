#!/usr/bin/env bash
# CPU sampling and the process around it (agent/cpu.c, init.c, sender.c):
#  1. default: PERFAGENT_CPU_HZ unset = off, no CPU records; a bad value
#     warns once and stays off;
#  2. no EINTR: a blocking read loop and a poll loop under 4 kHz sampling
#     (perf_event sampling sends the host no signal at all);
#  3. (fork, exec, dlopen and C++ exceptions under sampling: cpu_fire.sh)
#  4. perf_event_open refused (libcpu_noperf.so, as perf_event_paranoid 3 or
#     seccomp would): the timer_create fallback, said once, named in the
#     Hello with the reason, samples taken, heap recording exact; with
#     PERFAGENT_CPU_MODE=perf no fallback: one warning, sampling off;
#  5. CPU and heap together: both in one stream.
# Everything is read from the reports (`perfagent report`, summary.txt).
# Fixed check count: every check prints its line whatever fails.
. "$(dirname "$0")/common.bash"
require_product "$W/cpu_ops" "$W/libcpu_noperf.so" "$W/cpu_mix"

# summ FILE.pfr : the summary.txt of its one process (`perfagent report`
# prints it), in $T/FILE.rep/
summ() { "$PERFAGENT" report "$1" -o "$1.rep" 2>/dev/null; }
tail_of() { summ "$1" | grep -E '^(stream|decode):' | tr -s ' ' | tr '\n' '|'; }
WHOLE="stream: ended cleanly (Goodbye, exit code 0)|decode: no fault|"
CPU="PERFAGENT_MALLOC_RATE=0 PERFAGENT_CPU_HZ"
cpu_lines() { grep -E '^(cpu$|  (sampling|requested|samples):)' | sed 's/, user.*//; s/ in [0-9]* stacks.*//'; }

# 1. off by default: no CPU section, no cpu.folded; a bad value is refused
# with one line
run dflt env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/dflt.pfr" "$W/cpu_ops" burn
expect_eq default.off "$(summ "$T/dflt.pfr" | cpu_lines | wc -l) $(tail_of "$T/dflt.pfr")" "0 $WHOLE"
expect_eq default.no_files "$(ls "$T/dflt.pfr.rep"/*/ | grep -c '^cpu\.')" 0
run bad env LD_PRELOAD="$AGENT" PERFAGENT_CPU_HZ=fast PERFAGENT_OUTPUT="$T/bad.pfr" "$W/cpu_ops" burn
expect_eq default.bad_value "$(sed 's/^perfagent\[[0-9]*\]: //' "$T/bad.err" | grep CPU_HZ)" \
    "ignoring PERFAGENT_CPU_HZ=fast: expected a whole number from 0 to 10000; using 0 (CPU sampling off)"

# 2. 300 blocking reads (the feeder burns 1 ms between bytes) and 300 polls
# that time out, sampled at 4000 Hz
run eintr env LD_PRELOAD="$AGENT" $CPU=4000 PERFAGENT_OUTPUT="$T/eintr.pfr" "$W/cpu_ops" eintr 300
expect_eq eintr.none "$(rc_of eintr) $(out_of eintr)" "0 eintr=0 reads=300 polls=300"
expect_eq eintr.stream "$(tail_of "$T/eintr.pfr")" "$WHOLE"
expect_eq eintr.rate "$(summ "$T/eintr.pfr" | grep '^  requested:' | awk '{print $2, $3}')" "4000 Hz"

# 4. refused: the timer fallback (said once, named in the Hello with the
# reason), the heap exact regardless; and the samples of 0.5 s of CPU
# (cpu_mix measures its own) within 10% of 999 Hz
run noperf env LD_PRELOAD="$W/libcpu_noperf.so:$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_CPU_HZ=999 \
    PERFAGENT_OUTPUT="$T/noperf.pfr" "$W/leaks_fp"
expect_eq refused.said_once "$(sed 's/^perfagent\[[0-9]*\]: //' "$T/noperf.err" | grep -c '^cpu sampling: timer_create per-thread CPU-time timers, signal 27 (SIGPROF; perf_event_open refused: Permission denied)$')" 1
expect_eq refused.hello "$(summ "$T/noperf.pfr" | cpu_lines | head -3 | tr '\n' '|')" \
    "cpu|  sampling:   timer_create per-thread CPU-time timers, signal 27 (SIGPROF; perf_event_open refused: Permission denied)|  requested:  999 Hz of each thread's CPU time, 8192 stack bytes copied per sample|"
run tburn env LD_PRELOAD="$W/libcpu_noperf.so:$AGENT" $CPU=999 PERFAGENT_OUTPUT="$T/tburn.pfr" "$W/cpu_mix" 0.5 60:30:10
n=$(summ "$T/tburn.pfr" | sed -n 's/^    tid [0-9]* (mix0): \([0-9]*\) samples, .*/\1/p')
want=$(out_of tburn | sed -n 's/.* cpu_ns=\([0-9]*\) .*/\1/p' | awk '{printf "%d", $1 * 999 / 1e9}')
expect_true refused.timer_samples "${n:-no} samples of mix0, ${want:-?} expected" \
    [ "$(( ${n:-0} * 10 ))" -ge "$(( ${want:-1} * 9 ))" -a "$(( ${n:-0} * 10 ))" -le "$(( ${want:-0} * 11 ))" ]
# a host that ignores SIGPROF keeps it ignored: the sampler takes the
# highest real-time signal instead and says so
run tign bash -c "trap '' PROF; exec env LD_PRELOAD='$W/libcpu_noperf.so:$AGENT' $CPU=999 PERFAGENT_OUTPUT='$T/tign.pfr' '$W/cpu_ops' burn"
expect_eq refused.host_sigprof "$(summ "$T/tign.pfr" | grep '^  sampling:')" \
    "  sampling:   timer_create per-thread CPU-time timers, signal 64 (SIGPROF is the host's; perf_event_open refused: Permission denied)"
# asked for perf_event only: no fallback, one warning, sampling off
run perfonly env LD_PRELOAD="$W/libcpu_noperf.so:$AGENT" PERFAGENT_CPU_MODE=perf $CPU=999 \
    PERFAGENT_OUTPUT="$T/perfonly.pfr" "$W/cpu_ops" burn
expect_eq refused.perf_only "$(sed 's/^perfagent\[[0-9]*\]: //' "$T/perfonly.err" | grep -c 'CPU sampling off')|$(summ "$T/perfonly.pfr" | cpu_lines | tr '\n' '|')" \
    "1|cpu|  sampling:   off: perf_event_open refused: Permission denied (see perf_event_paranoid)|  requested:  999 Hz of each thread's CPU time, 0 stack bytes copied per sample|  samples:    0|"
if report refused.report "$T/noperf.rep" "$T/noperf.pfr"; then
    check_site refused.heap_exact "$(proc_dir "$T/noperf.rep" leaks_fp)/leaks.json" leak_site_a "100000 100"
else
    fail refused.heap_exact "no report"
fi

# 5. heap and CPU in one stream
run both env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_CPU_HZ=999 \
    PERFAGENT_OUTPUT="$T/both.pfr" "$W/leaks_fp"
expect_eq both.exit "$(rc_of both)" 0
if report both.report "$T/both.rep" "$T/both.pfr"; then
    check_site both.heap_exact "$(proc_dir "$T/both.rep" leaks_fp)/leaks.json" leak_site_a "100000 100"
else
    fail both.heap_exact "no report"
fi
expect_eq both.cpu_stream "$(summ "$T/both.pfr" | cpu_lines | head -3 | tr '\n' '|')" \
    "cpu|  sampling:   perf_event task-clock, per-CPU rings|  requested:  999 Hz of each thread's CPU time, 8192 stack bytes copied per sample|"
# the heap run's CPU samples are in cpu.folded: its total is the summary's
expect_eq both.cpu_folded "$(awk '{n += $NF} END {print n + 0}' "$(proc_dir "$T/both.rep" leaks_fp)/cpu.folded" 2>&1)" \
    "$(sed -n 's/^  samples:    \([0-9]*\) in .*/\1/p' "$(proc_dir "$T/both.rep" leaks_fp)/summary.txt" 2>&1)"
finish
