#!/usr/bin/env bash
# CPU sampling and the process around it (agent/cpu.c, init.c, sender.c):
#  1. default: PERFAGENT_CPU_HZ unset = off, no CPU records; a bad value
#     warns once and stays off;
#  2. no EINTR: a blocking read loop and a poll loop under 4 kHz sampling
#     (perf_event sampling sends the host no signal at all);
#  3. fork, fork+exec and dlopen under sampling, 10 each: nothing hangs or
#     crashes, every process's stream is whole (Goodbye, decodes), a fork
#     child that only execs leaves no stream of its own;
#  4. perf_event_open refused (libcpu_noperf.so, as perf_event_paranoid 3 or
#     seccomp would): one warning, the Hello says why, heap recording exact;
#  5. CPU and heap together: both in one stream.
# Fixed check count: every check prints its line whatever fails.
. "$(dirname "$0")/common.bash"
require_product "$W/cpu_ops" "$W/cpu_dump" "$W/libcpu_noperf.so" "$W/cpu_mix"

dump() { "$W/cpu_dump" "$1" 2>&1; }
tail_of() { dump "$1" | grep '^total' | sed 's/.*goodbye=/goodbye=/'; }
CPU="PERFAGENT_MALLOC_RATE=0 PERFAGENT_CPU_HZ"

# 1. off by default; a bad value is refused with one line
run dflt env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/dflt.pfr" "$W/cpu_ops" burn
expect_eq default.off "$(dump "$T/dflt.pfr" | grep -E '^(config|total)' | tr '\n' ' ')" \
    "config cpu_hz=0 stack_bytes=0 mechanism=- total samples=0 stacks_truncated=0 goodbye=1 decode=ok "
run bad env LD_PRELOAD="$AGENT" PERFAGENT_CPU_HZ=fast PERFAGENT_OUTPUT="$T/bad.pfr" "$W/cpu_ops" burn
expect_eq default.bad_value "$(sed 's/^perfagent\[[0-9]*\]: //' "$T/bad.err" | grep CPU_HZ)" \
    "ignoring PERFAGENT_CPU_HZ=fast: expected a whole number from 0 to 10000; using 0 (CPU sampling off)"

# 2. 300 blocking reads (the feeder burns 1 ms between bytes) and 300 polls
# that time out, sampled at 4000 Hz
run eintr env LD_PRELOAD="$AGENT" $CPU=4000 PERFAGENT_OUTPUT="$T/eintr.pfr" "$W/cpu_ops" eintr 300
expect_eq eintr.none "$(rc_of eintr) $(out_of eintr)" "0 eintr=0 reads=300 polls=300"
expect_eq eintr.stream "$(tail_of "$T/eintr.pfr")" "goodbye=1 decode=ok"
expect_eq eintr.rate "$(dump "$T/eintr.pfr" | grep -o '^config cpu_hz=[0-9]*')" "config cpu_hz=4000"

# 3. fork / exec / dlopen, 10 each, a busy thread sampled throughout
for m in fork exec dlopen; do
    mkdir -p "$T/$m"
    run $m env LD_PRELOAD="$AGENT" $CPU=999 PERFAGENT_OUTPUT="$T/$m/out.pfr" "$W/cpu_ops" $m 10
    expect_eq $m.ok "$(rc_of $m) $(out_of $m)" "0 ok=10"
    # fork: the parent and 10 children; exec: the parent and 10 exec'd
    # images ("cpu_ops burn"); dlopen: one.  A fork child that execs has a
    # stream of its own only if it was sampled before its exec (its exec
    # took a sample period of CPU: only on a busy machine), so exec counts
    # the streams by what ran in them; every stream must be whole.
    want=11; [ $m = dlopen ] && want=1
    whole=0 total=0 burn=0 parent=0
    for f in "$T/$m"/*; do
        total=$((total + 1))
        [ "$(tail_of "$f")" = "goodbye=1 decode=ok" ] && whole=$((whole + 1))
        dump "$f" | grep -q '^process .* argv=cpu_ops burn$' && burn=$((burn + 1))
        dump "$f" | grep -q "^process .* forked_from=0 argv=.*cpu_ops $m 10\$" && parent=$((parent + 1))
    done
    if [ $m = exec ]; then
        expect_eq $m.streams "$burn $parent" "10 1" "exec'd images, parent"
    else
        expect_eq $m.streams "$total" $want
    fi
    expect_eq $m.whole "$whole" "$total"
done

# 4. refused: one warning, the Hello says why, the heap is exact regardless
run noperf env LD_PRELOAD="$W/libcpu_noperf.so:$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_CPU_HZ=999 \
    PERFAGENT_OUTPUT="$T/noperf.pfr" "$W/leaks_fp"
expect_eq refused.warning "$(sed 's/^perfagent\[[0-9]*\]: //' "$T/noperf.err" | grep -c 'CPU sampling off')" 1
expect_eq refused.hello "$(dump "$T/noperf.pfr" | grep '^config')" \
    "config cpu_hz=999 stack_bytes=0 mechanism=off: perf_event_open refused (Permission denied; see perf_event_paranoid)"
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
expect_eq both.cpu_stream "$(dump "$T/both.pfr" | grep -E '^config' | sed 's/, user.*//')" \
    "config cpu_hz=999 stack_bytes=8192 mechanism=perf_event task-clock, per-CPU rings"
finish
