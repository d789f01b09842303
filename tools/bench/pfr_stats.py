#!/usr/bin/env python3
"""pfr_stats.py FILE.pfr... -- the agent's counters from .pfr streams, for
tools/bench.sh.  A tiny reader of the protobuf wire format (see
proto/perfagent.proto) with no dependencies, so the bench needs neither the
test binaries nor python-protobuf.

Prints one line of key=value:
  records, streams            always
  buffer_full ... unwind_failures, no_goodbye
                              the last AgentStats' drop counters, when not 0
  cpu_samples, cpu_lost       AgentStats.cpu_*, when CPU sampling was on
  cpu_threads                 threads with CpuSamples
  cpu_top_tid, cpu_top_samples, cpu_top_cpu_ns, cpu_top_period_ns
                              the thread with the most samples: its sample
                              count (stack ids in its CpuSamples records), its
                              CPU time (the latest thread_cpu_ns) and the
                              period one sample stands for; delivered fraction
                              = samples x period / cpu_ns (as cpu_model has it)
and error=TEXT for each stream that cannot be read.  Several files are summed (the
cpu_top_* fields come from the busiest thread of all of them).
"""
import sys


def varint(b, i):
    r = s = 0
    while True:
        if i >= len(b):
            raise ValueError("truncated varint")
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
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
            v = b[i:i + 8]
            i += 8
        elif t == 5:
            v = b[i:i + 4]
            i += 4
        elif t == 2:
            n, i = varint(b, i)
            v = b[i:i + n]
            i += n
        else:
            raise ValueError("wire type %d" % t)
        yield f, t, v


def count_varints(b):
    # a packed repeated varint field: every byte without the high bit ends one
    return sum(1 for c in b if not c & 0x80)


NAMES = {1: "records", 3: "buffer_full", 4: "no_buffer", 5: "stack_table",
         6: "output", 7: "thread_exit", 12: "unwind_failures",
         13: "cpu_samples", 14: "cpu_lost"}
DROPS = ("buffer_full", "no_buffer", "stack_table", "output", "thread_exit")

tot = {}
errors = []
threads = {}          # (file index, tid) -> [samples, cpu_ns, period_ns]
for fi, path in enumerate(sys.argv[1:]):
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
                if f != 2 or t != 2:
                    continue
                for rf, rt, body in fields(rec):
                    if rf == 10 and rt == 2:
                        last = {k: 0 for k in NAMES}
                        for sf, st, v in fields(body):
                            if sf in NAMES and st == 0:
                                last[sf] = v
                    elif rf == 11:
                        goodbye = True
                    elif rf == 6 and rt == 2:
                        tid, ns, cpu, per = 0, 0, 0, 0
                        for sf, st, v in fields(body):
                            if sf == 1 and st == 0:
                                tid = v
                            elif sf == 2:
                                ns += count_varints(v) if st == 2 else 1
                            elif sf == 4 and st == 0:
                                per = v
                            elif sf == 5 and st == 0:
                                cpu = v
                        th = threads.setdefault((fi, tid), [0, 0, 0])
                        th[0] += ns
                        if cpu:
                            th[1] = cpu          # running value: the latest wins
                        if per:
                            th[2] = per
            i += n
    except (OSError, ValueError) as e:
        errors.append("error=%s" % str(e).replace(" ", "_"))
        continue
    if last:
        for k, v in last.items():
            tot[NAMES[k]] = tot.get(NAMES[k], 0) + v
    tot["streams"] = tot.get("streams", 0) + 1
    tot["no_goodbye"] = tot.get("no_goodbye", 0) + (0 if goodbye else 1)

out = ["%s=%d" % (k, v) for k, v in sorted(tot.items())
       if v or k in ("records", "streams")]
if threads:
    (_, tid), (ns, cpu, per) = max(threads.items(), key=lambda kv: kv[1][0])
    out += ["cpu_threads=%d" % len(threads), "cpu_top_tid=%d" % tid,
            "cpu_top_samples=%d" % ns, "cpu_top_cpu_ns=%d" % cpu, "cpu_top_period_ns=%d" % per]
print(" ".join(errors + out))
