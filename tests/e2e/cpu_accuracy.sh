#!/usr/bin/env bash
# CPU sampling accuracy, read from the reports (cpu.folded, summary.txt):
# cpu_mix's three threads split their own CPU time between hot_a/hot_b/hot_c
# in known, different mixes and measure each function's share with
# CLOCK_THREAD_CPUTIME_ID.  At 999 Hz over 2.2 s of each thread's CPU time
# the sampled self shares must be within 2 points of the measured ones, and
# each thread must get >= 95% (and <= 105%) of the requested samples for the
# CPU time it used.  The workload has no frame pointers: stacks come from
# the .eh_frame walk over the copied stack.
#  1. a .pfr through `perfagent report --per-thread`: shares per thread (the
#     thread name is cpu.folded's root), the summary's per-thread samples,
#     CPU time and delivered rate, the stream and the agent's counters;
#  2. `perfagent run --cpu 999`: the same program, shares of the whole
#     process from cpu.folded, per-thread delivered rates and names from
#     summary.txt, `perfagent top DIR` reading cpu.folded, cpu.svg's total.
#  3. the timer_create fallback (perf_event_open refused by
#     libcpu_noperf.so, as perf_event_paranoid 3 or seccomp would): the same
#     per-thread accuracy, the mechanism in the Hello, and every sample
#     accounted for: samples = signals + missed ticks counted again.
#  4. deep stack copies (63 KiB), which shorten the sender's rounds: nothing
#     lost, the full rate delivered.
#
# Every check prints its line whatever fails (fixed count: 3 + 3 x 7 + 7,
# then 2 + 3 + 3 x 2 + 3, then 3 + 2 x 7 + 3, then 3: 68).
. "$(dirname "$0")/common.bash"
require_product "$W/cpu_mix" "$W/libcpu_noperf.so"

HZ=999
MIX="60:30:10 20:30:50 10:80:10"
# The timer fallback with two threads, one after the other (cpu_mix -s):
# tick-driven CPU timers favour a thread's longest-running function when
# the thread waits for a CPU (README, "CPU sampling").  With both threads
# on the two CPUs the agent's sender or any other job was enough: 1 run in
# 20 here and one CI run had a share 3.1-3.4 standard errors off (the
# dominant function +4.4 points); one thread at a time, 40 runs stayed
# within 2.1.
TMIX="60:30:10 10:80:10"

# the ok/FAIL lines of the accuracy checks, from the workload's own
# measurements ($1), summary.txt ($2) and cpu.folded ($3).  $4: "thread"
# (per-thread shares: cpu.folded has thread roots; samples and CPU time
# against the workload's) or "process" (shares of the whole process); $5:
# the checks' name prefix; $6: the number of threads
accuracy() {
    $PY - "$@" "$HZ" <<'PYEOF'
import math, re, sys
work, summ, folded, mode, hz = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[-1])
# timer mode: samples per independent draw (a signal and its missed ticks
# share one stack), from the summary's signal count
draws = 1.0
for l in open(summ):
    m = re.match(r'^  signals:    (\d+) timer signals; (\d+) missed', l)
    if m and int(m.group(1)):
        draws = int(m.group(1)) / (int(m.group(1)) + int(m.group(2)))
kv = lambda line: dict(re.findall(r'(\w+)=(\S+)', line))
threads = [kv(l) for l in open(work) if l.startswith('thread ')]
# summary.txt: "    tid T (NAME): N samples, CPU S.mmm s, delivered P%"
rows = {}
for l in open(summ):
    m = re.match(r'^    tid (\d+) \((.*)\): (\d+) samples, CPU (\d+\.\d+) s, delivered (\d+\.\d)%$', l)
    if m:
        rows[m.group(1)] = (m.group(2), int(m.group(3)), float(m.group(4)), float(m.group(5)))
# cpu.folded self samples: (root, leaf) -> samples
self = {}
for l in open(folded):
    stack, n = l.rsplit(' ', 1)
    f = stack.split(';')
    self[(f[0], f[-1])] = self.get((f[0], f[-1]), 0) + int(n)
pre = 'cpu_accuracy.%s' % sys.argv[5]
def share(tag, want, got, tot):
    have = 100.0 * got / tot if tot else -100
    # perf_event: 2 points, as the issue asks.  Timer signals come once a
    # scheduler tick (250 Hz), each standing for ~4 samples at 999 Hz: the
    # draws are fewer, so 3 standard errors of a share of `draws` draws
    # (~6 points for p = 0.5 over 2.2 s), never less than 2.
    tol = 2.0
    if draws < 1.0 and tot:
        p = min(max(want / 100.0, 0.01), 0.99)
        tol = max(2.0, 300.0 * math.sqrt(p * (1 - p) / (tot * draws)))
    print('# %s: sampled %.2f%%, measured %.2f%% (tolerance %.2f)' % (tag, have, want, tol))
    if abs(want - have) <= tol:
        print('ok %s' % tag)
    else:
        print('FAIL %s: sampled %.2f%% (%d of %d), measured %.2f%%' % (tag, have, got, tot, want))
if mode == 'process':
    ns = [sum(int(w[f + '_ns']) for w in threads) for f in 'abc']
    got = [sum(v for (r, leaf), v in self.items() if leaf == 'hot_' + f) for f in 'abc']
    for i, f in enumerate('abc'):
        share('%s.share_%s' % (pre, f), 100.0 * ns[i] / sum(ns) if sum(ns) else 0, got[i], sum(got))
for k in range(int(sys.argv[6])):
    w = threads[k] if k < len(threads) else None
    tp = '%s.thread%d' % (pre, k)
    checks = ('name', 'delivered') + (('share_a', 'share_b', 'share_c', 'samples', 'cpu_time') if mode == 'thread' else ())
    if not w:
        for c in checks:
            print('FAIL %s.%s: thread missing from the workload output' % (tp, c))
        continue
    name, samples, secs, delivered = rows.get(w['tid'], (None, 0, 0.0, 0.0))
    print(('ok %s.name' if name == 'mix%d' % k else 'FAIL %s.name: summary.txt says ' + str(name)) % tp)
    print('# %s.delivered: %.1f%% (%d samples)' % (tp, delivered, samples))
    if 95.0 <= delivered <= 105.0:
        print('ok %s.delivered' % tp)
    else:
        print('FAIL %s.delivered: summary.txt says %.1f%% (%d samples for %.3f s)' % (tp, delivered, samples, secs))
    if mode != 'thread':
        continue
    ns = [int(w[f + '_ns']) for f in 'abc']
    got = [self.get(('mix%d' % k, 'hot_' + f), 0) for f in 'abc']
    for i, f in enumerate('abc'):
        share('%s.share_%s' % (tp, f), 100.0 * ns[i] / sum(ns), got[i], sum(got))
    # the samples against the CPU time the workload measured itself
    expect = int(w['cpu_ns']) * hz / 1e9
    pct = 100.0 * samples / expect
    print('# %s.samples: %.1f%% of %d Hz x %.3f s' % (tp, pct, hz, int(w['cpu_ns']) / 1e9))
    if 95.0 <= pct <= 105.0:
        print('ok %s.samples' % tp)
    else:
        print('FAIL %s.samples: %d samples for %.3f s of CPU at %d Hz = %.1f%%' % (tp, samples, int(w['cpu_ns']) / 1e9, hz, pct))
    # the agent's reading of the thread's CPU time is the workload's, within
    # 0.5%: the agent reads it in its sender's rounds (up to ~31 ms apart
    # here) and adds a period for each sample of a thread that ended since
    # (cpu.c, pa_cpu_emit): within a period or a few (measured: 0.03-0.2%)
    want_s = int(w['cpu_ns']) / 1e9
    if abs(secs - want_s) <= 0.005 * want_s:
        print('ok %s.cpu_time' % tp)
    else:
        print('FAIL %s.cpu_time: summary.txt %.3f s, the workload measured %.3f s' % (tp, secs, want_s))
PYEOF
}

# 1. a file, reported per thread
run mix env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=0 PERFAGENT_CPU_HZ=$HZ \
    PERFAGENT_OUTPUT="$T/mix.pfr" "$W/cpu_mix" 2.2 $MIX
expect_eq mix.exit "$(rc_of mix)" 0
RD=
if report mix.report "$T/mix.rep" --per-thread "$T/mix.pfr"; then
    RD=$(proc_dir "$T/mix.rep" cpu_mix)
fi
S=$RD/summary.txt F=$RD/cpu.folded
touch "$T/none"; [ -f "$S" ] || S=$T/none; [ -f "$F" ] || F=$T/none
# the stream: decoded in full, ended with a Goodbye
expect_eq mix.stream "$(grep -E '^(stream|decode):' "$S" | tr -s ' ' | tr '\n' '|')" \
    "stream: ended cleanly (Goodbye, exit code 0)|decode: no fault|"
accuracy "$T/mix.out" "$S" "$F" thread thread 3
# the Hello names the mechanism, the rate and the stack copy size
expect_eq mix.config "$(grep -E '^  (sampling|requested):' "$S" | sed 's/, user.*//' | tr '\n' '|')" \
    "  sampling:   perf_event task-clock, per-CPU rings|  requested:  $HZ Hz of each thread's CPU time, 8192 stack bytes copied per sample|"
# every worker stack is whole: the walk reached the outermost frame, and
# each hot function sits under worker_main under the thread start (folded,
# root first).  (A sample of the main thread inside ld.so's start code,
# which has no unwind rule, is truncated there, as it should be.)
expect_eq mix.no_truncated "$(grep '\[truncated\]' "$F" | grep -c 'worker_main\|hot_')" 0
# CPU stacks are marked leaf_is_pc (the leaf is symbolized at the pc)
expect_eq mix.leaf_is_pc "$(grep -c 'not marked as sampled pcs' "$S")" 0
expect_eq mix.folded_shape "$(awk '{print $1}' "$F" | grep -c '^mix[012];clone3;start_thread;worker_main;hot_[abc]$')" 9
# nothing lost on the way out: the agent's sample count is what was
# decoded, and what cpu.folded holds.  The kernel may drop samples when the
# sender waits for a CPU longer than its rings last (~250 ms here):
# counted, and at most 1%.
got=$(sed -n 's/^  samples:    \([0-9]*\) in .*; the agent sent \([0-9]*\)$/\1 \2/p' "$S")
expect_eq mix.all_sent "$got" "$(awk '{n += $NF} END {print n + 0, n + 0}' "$F")" "decoded, sent vs cpu.folded"
lost=$(sed -n 's/^  lost:       \([0-9]*\) (kernel.*/\1/p' "$S")
sent=${got#* }
echo "# lost=$lost of $sent"
expect_true mix.lost_small "lost ${lost:-?} of ${sent:-?} samples (> 1%)" [ "$((${lost:-1} * 100))" -le "${sent:-0}" ]
# the table of summary.txt is by function, not by thread: its top three
# rows are the hot functions
expect_eq mix.top_rows "$(sed -n '/^cpu: top 20 functions by self$/,$p' "$S" | sed -n '5,7p' | awk '{print $6}' | sort | tr '\n' ' ')" \
    "hot_a hot_b hot_c "

# 2. the same under `perfagent run --cpu 999`
run prun "$PERFAGENT" run -o "$T/prun" --cpu $HZ --malloc-rate 0 -- "$W/cpu_mix" 2.2 $MIX
expect_eq run.exit "$(rc_of prun)" 0
RD=$(proc_dir "$T/prun" cpu_mix)
S=$RD/summary.txt F=$RD/cpu.folded
[ -n "$RD" ] && [ -f "$S" ] || S=$T/none; [ -n "$RD" ] && [ -f "$F" ] || F=$T/none
expect_eq run.requested "$(grep '^  requested:' "$S" | awk '{print $2, $3}')" "$HZ Hz"
accuracy "$T/prun.out" "$S" "$F" process process 3
# `perfagent top DIR` reads cpu.folded (samples) when it has samples
total=$(awk '{n += $NF} END {print n + 0}' "$F")
lines=$(grep -c . "$F")
expect_eq run.top_dir "$("$PERFAGENT" top "$RD" 2>&1 | head -2 | sed 's/, [0-9]* functions$//' | tr '\n' '|')" \
    "file: $RD/cpu.folded|total $total samples in $lines stacks|"
expect_eq run.top_first "$("$PERFAGENT" top -n 1 "$RD" 2>&1 | tail -1 | awk '{print $6}')" \
    "$(awk '{n = split($1, f, ";"); s[f[n]] += $NF} END {for (k in s) print s[k], k}' "$F" | sort -k1,1nr -k2 | head -1 | awk '{print $2}')"
# cpu.svg draws every sample of cpu.folded
expect_eq run.svg_total "$(grep -o 'data-total="[0-9]*"' "$RD/cpu.svg" 2>&1 | head -1)" "data-total=\"$total\""
# 3. the timer fallback, chosen by the agent because perf_event_open is
# refused (PERFAGENT_CPU_MODE=auto, the default)
run tmix env LD_PRELOAD="$W/libcpu_noperf.so:$AGENT" PERFAGENT_MALLOC_RATE=0 PERFAGENT_CPU_HZ=$HZ \
    PERFAGENT_OUTPUT="$T/tmix.pfr" "$W/cpu_mix" -s 2.2 $TMIX
expect_eq timer.exit "$(rc_of tmix)" 0
RD=
if report timer.report "$T/tmix.rep" --per-thread "$T/tmix.pfr"; then
    RD=$(proc_dir "$T/tmix.rep" cpu_mix)
fi
S=$RD/summary.txt F=$RD/cpu.folded
[ -n "$RD" ] && [ -f "$S" ] || S=$T/none; [ -n "$RD" ] && [ -f "$F" ] || F=$T/none
expect_eq timer.stream "$(grep -E '^(stream|decode):' "$S" | tr -s ' ' | tr '\n' '|')" \
    "stream: ended cleanly (Goodbye, exit code 0)|decode: no fault|"
accuracy "$T/tmix.out" "$S" "$F" thread timer 2
expect_eq timer.config "$(grep -E '^  (sampling|requested):' "$S" | tr '\n' '|')" \
    "  sampling:   timer_create per-thread CPU-time timers, signal 27 (SIGPROF; perf_event_open refused: Permission denied)|  requested:  $HZ Hz of each thread's CPU time, 8192 stack bytes copied per sample|"
# the copied stacks are walked whole, as for perf samples: every hot
# function under worker_main under the thread start, none truncated
expect_eq timer.folded_shape "$(awk '{print $1}' "$F" | grep -c '^mix[01];clone3;start_thread;worker_main;hot_[abc]$') $(grep '\[truncated\]' "$F" | grep -c 'worker_main\|hot_')" "6 0"
# each signal is one sample, each missed tick one more: nothing else
sent=$(sed -n 's/^  samples:    [0-9]* in .*; the agent sent \([0-9]*\)$/\1/p' "$S")
sig=$(sed -n 's/^  signals:    \([0-9]*\) timer signals; \([0-9]*\) missed ticks.*/\1 \2/p' "$S")
expect_eq timer.accounted "$(awk '{n += $NF} END {print n + 0}' "$F") ${sent:-?}" "$(echo "${sig:-0 0}" | awk '{print $1 + $2, $1 + $2}')" \
    "cpu.folded, sent vs signals + overruns"
# 4. deep stack copies: at 63 KiB a sample a perf ring (4 MiB at most)
# holds ~64 ms of one CPU at 999 Hz, so the sender must drain it more
# often than the ~31 ms rounds of the default copy size
# (pa_cpu_round_ms: an eighth of the ring's time, here 10 ms): two busy
# threads on the two CPUs lose at most 1% of their samples, and get >= 95%
run deep env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=0 PERFAGENT_CPU_HZ=$HZ PERFAGENT_CPU_STACK_KB=63 \
    PERFAGENT_OUTPUT="$T/deep.pfr" "$W/cpu_mix" 1.0 $TMIX
RD=
if report deep.report "$T/deep.rep" "$T/deep.pfr"; then
    RD=$(proc_dir "$T/deep.rep" cpu_mix)
fi
S=$RD/summary.txt
[ -n "$RD" ] && [ -f "$S" ] || S=$T/none
got=$(sed -n 's/^  samples:    \([0-9]*\) in .*; the agent sent \([0-9]*\)$/\1 \2/p' "$S")
lost=$(sed -n 's/^  lost:       \([0-9]*\) (kernel.*/\1/p' "$S")
sent=${got#* }
echo "# deep: lost=$lost of $sent"
expect_true deep.lost_small "lost ${lost:-?} of ${sent:-?} samples (> 1%)" [ "$((${lost:-1} * 100))" -le "${sent:-0}" ]
cpu_ms=$(awk -F'cpu_ns=' '/cpu_ns=/ {split($2, a, " "); n += a[1]} END {print int(n / 1e6)}' "$T/deep.out")
expect_true deep.delivered "${sent:-?} samples for $cpu_ms ms of CPU at $HZ Hz" \
    [ "$((${sent:-0} * 1000 * 100))" -ge "$((cpu_ms * HZ * 95))" ]
finish
