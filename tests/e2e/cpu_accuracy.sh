#!/usr/bin/env bash
# CPU sampling accuracy (PERFAGENT_CPU_HZ, agent/cpu.c): cpu_mix's three
# threads split their own CPU time between hot_a/hot_b/hot_c in known,
# different mixes and measure each function's share with
# CLOCK_THREAD_CPUTIME_ID.  At 999 Hz over 2.2 s of each thread's CPU time
# the sampled self shares must be within 2 points of the measured ones, and
# each thread must get >= 95% (and <= 105%) of the requested samples for the
# CPU time it used.  The workload has no frame pointers: stacks come from
# the .eh_frame walk over the copied stack.  Read through the decoder and
# cpu_model (build/workloads/cpu_dump) until reports show CPU profiles.
#
# Every check prints its line whatever fails (fixed count: 3 + 3 x 5 + 5).
. "$(dirname "$0")/common.bash"
require_product "$W/cpu_mix" "$W/cpu_dump"

HZ=999
run mix env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=0 PERFAGENT_CPU_HZ=$HZ \
    PERFAGENT_OUTPUT="$T/mix.pfr" "$W/cpu_mix" 2.2 60:30:10 20:30:50 10:80:10
expect_eq mix.exit "$(rc_of mix)" 0
"$W/cpu_dump" "$T/mix.pfr" "$T/mix.folded" >"$T/dump.out" 2>&1
# the stream: decoded in full, ended with a Goodbye; the Hello names the
# mechanism, the rate and the stack copy size
expect_eq mix.stream "$(grep '^total' "$T/dump.out" | sed 's/.*goodbye=/goodbye=/')" \
    "goodbye=1 decode=ok"
expect_eq mix.config "$(grep '^config' "$T/dump.out" | sed 's/, user.*//')" \
    "config cpu_hz=$HZ stack_bytes=8192 mechanism=perf_event task-clock, per-CPU rings"

# per thread: name, three shares, delivered rate; one line each, always
$PY - "$T/mix.out" "$T/dump.out" "$HZ" <<'PYEOF'
import re, sys
work, dump, hz = sys.argv[1], sys.argv[2], int(sys.argv[3])
kv = lambda line: dict(re.findall(r'(\w+)=(\S+)', line))
threads = [kv(l) for l in open(work) if l.startswith('thread ')]
dl = open(dump).read().splitlines()
names = {kv(l)['tid']: kv(l) for l in dl if l.startswith('thread ')}
self = {}
for l in dl:
    if l.startswith('self '):
        d = kv(l)
        self[(d['tid'], d['fn'])] = int(d['samples'])
for k in range(3):
    w = threads[k] if k < len(threads) else None
    pre = 'cpu_accuracy.mix.thread%d' % k
    if not w:
        for c in ('name', 'share_a', 'share_b', 'share_c', 'delivered'):
            print('FAIL %s.%s: thread missing from the workload output' % (pre, c))
        continue
    tid = w['tid']
    d = names.get(tid, {})
    print(('ok %s.name' if d.get('name') == 'mix%d' % k else 'FAIL %s.name: got ' + str(d.get('name'))) % pre)
    ns = [int(w[f + '_ns']) for f in 'abc']
    got = [self.get((tid, 'hot_' + f), 0) for f in 'abc']
    for i, f in enumerate('abc'):
        want = 100.0 * ns[i] / sum(ns)
        have = 100.0 * got[i] / sum(got) if sum(got) else -100
        tag = '%s.share_%s' % (pre, f)
        print('# %s: sampled %.2f%%, measured %.2f%%' % (tag, have, want))
        if abs(want - have) <= 2.0:
            print('ok %s' % tag)
        else:
            print('FAIL %s: sampled %.2f%% (%d of %d), measured %.2f%%' % (tag, have, got[i], sum(got), want))
    samples = int(d.get('samples', 0))
    expect = int(w['cpu_ns']) * hz / 1e9
    pct = 100.0 * samples / expect
    print('# %s.delivered: %.1f%% (%d samples)' % (pre, pct, samples))
    if 95.0 <= pct <= 105.0:
        print('ok %s.delivered' % pre)
    else:
        print('FAIL %s.delivered: %d samples for %.3f s of CPU at %d Hz = %.1f%%' % (pre, samples, int(w['cpu_ns']) / 1e9, hz, pct))
PYEOF

# every worker stack is whole: the walk reached the outermost frame, and
# each hot function sits under worker_main under the thread start (folded,
# root first).  (A sample of the main thread inside ld.so's start code,
# which has no unwind rule, is truncated there, as it should be.)
expect_eq mix.no_truncated "$(grep '^truncated' "$T/dump.out" | grep -c 'worker_main\|hot_')" 0
# CPU stacks are marked leaf_is_pc (the leaf is symbolized at the pc)
expect_eq mix.leaf_is_pc "$(grep '^leaf_not_pc' "$T/dump.out")" "leaf_not_pc samples=0"
expect_eq mix.folded_shape "$(awk '{print $1}' "$T/mix.folded" | grep -c '^clone3;start_thread;worker_main;hot_[abc]$')" 3
# nothing lost on the way out: the agent's sample count is what was
# decoded.  The kernel may drop samples when the sender waits for a CPU
# longer than its rings last (~250 ms here): counted, and at most 1%.
sent=$(grep '^stats' "$T/dump.out" | sed 's/.*stats samples=\([0-9]*\).*/\1/')
lost=$(grep '^stats' "$T/dump.out" | sed 's/.* lost=\([0-9]*\).*/\1/')
expect_eq mix.all_sent "$sent" "$(grep '^total' "$T/dump.out" | sed 's/total samples=\([0-9]*\).*/\1/')"
echo "# lost=$lost of $sent"
expect_true mix.lost_small "lost $lost of $sent samples (> 1%)" [ "$((${lost:-1} * 100))" -le "${sent:-0}" ]
finish
