#!/usr/bin/env python3
"""table.py RESULTS.tsv DESCS.tsv -- the tables of tools/bench.sh.

RESULTS.tsv, one run a line (written by bench.sh's run_one):
  suite name round wall_s inproc_s rss_kb out_bytes drops checksum rc load1
  top_samples stream_delivered_pct cpu_s info note others
(others = CPUs the rest of the machine kept busy during the run: the
machine's busy time from /proc/stat minus cpu_s, per wall second)
(cpu_s = user + sys of the whole command, GNU time: the profiler's own
process included, for perf)
DESCS.tsv, one config a line, in the order they are printed:
  suite name description requested_hz workload_args
The first config of each suite is its baseline: ratios are median/median
against it, and "per-round" ratios divide each run by the baseline's run of
the same round (neighbours in time, so they share the machine's mood).
"""
import statistics
import sys

# in-process targets of the issue (section 6, Benchmark): ratio and delivered rate
TARGETS = {("cpu", "agent99"): 1.01, ("cpu", "agent999"): 1.03}
MIN_DELIVERED = 95.0

res, descs = sys.argv[1:3]
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


def mm(xs, p=2, suffix=""):
    xs = [x for x in xs if x is not None]
    return ("%.*f%s-%.*f%s" % (p, min(xs), suffix, p, max(xs), suffix)) if xs else "-"


def f(x, p=2, suffix=""):
    return "-" if x is None else "%.*f%s" % (p, x, suffix)


def size(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1000.0


def stats_of(suite, name, desc, hz, args):
    rs = [r for r in rows if r[0] == suite and r[1] == name]
    ok = [r for r in rs if r[9] == "0"]
    return dict(
        suite=suite, name=name, desc=desc, hz=int(hz or 0), args=args, n=len(rs), nok=len(ok),
        wall={r[2]: num(r[3]) for r in ok}, el={r[2]: num(r[4]) for r in ok},
        rss=med([num(r[5]) for r in ok]), size=med([num(r[6]) for r in ok]),
        drops=[int(r[7]) for r in rs if r[7].isdigit()], chks=set(r[8] for r in ok),
        load=[num(r[10]) for r in rs],
        samples={r[2]: num(r[11]) for r in ok}, stream=[num(r[12]) for r in ok],
        cpu={r[2]: num(r[13]) for r in ok},
        info=next((r[14] for r in rs if r[14]), ""),
        notes=sorted(set(r[15] for r in rs if r[15])),
        others=[num(r[16]) if len(r) > 16 else None for r in ok])


def lo(d):
    xs = [x for x in d.values() if x is not None]
    return min(xs) if xs else None


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def per_round(s, b, key):
    return [ratio(s[key][k], b[key].get(k)) for k in s[key]]


OTHERS_HDR = "other jobs' CPUs during the runs, median (min-max)"


def others(s):
    xs = [x for x in s["others"] if x is not None]
    return "%s (%s)" % (f(med(xs)), mm(xs)) if xs else "-"


def notes_of(s, b):
    notes = []
    if s["nok"] < s["n"]:
        notes.append("%d/%d runs failed" % (s["n"] - s["nok"], s["n"]))
    if b["chks"] and s["chks"] and s["chks"] != b["chks"]:
        notes.append("CHECKSUM DIFFERS from baseline")
    return notes + s["notes"][:2]


suites = []
for suite, name, desc, hz, args in order:
    if suite not in [x[0] for x in suites]:
        suites.append((suite, []))
    [x for x in suites if x[0] == suite][0][1].append(stats_of(suite, name, desc, hz, args))

for suite, ss in suites:
    b = ss[0]
    loads = [l for s in ss for l in s["load"] if l is not None]
    rounds = max(s["n"] for s in ss)
    print()
    print("%s: %s, %d rounds interleaved (order rotated each round); medians; ratios are "
          "median/median vs %s; load average (1 min) before the runs: %s"
          % (suite, b["args"], rounds, b["name"], mm(loads)))
    print()
    if suite == "cpu":
        hdr = ["config", "mode", "median in-process s", "in-process ratio", "in-process min-max",
               "min/min ratio", "per-round ratio median (min-max)", "median wall s", "wall ratio",
               "median CPU s (user+sys)", "CPU ratio", "peak RSS MB", "output",
               "samples (busiest thread)", "Hz/thread (samples / in-process s)",
               "delivered, stream (samples x period / thread CPU)", OTHERS_HDR, "notes"]
    else:
        # per-round and CPU-time ratios as in the cpu table: on a shared
        # machine one config's runs can land in a busy spell (mallocbench
        # in-process ranged 1.4-2.4 s for the baseline and 1.9-5.1 s for
        # the agent in one 5-round run at load 5-6), so a median/median
        # ratio alone can be far off; CPU time moves much less.
        hdr = ["config", "mode", "median wall s", "wall ratio", "wall min-max", "median in-process s",
               "in-process ratio", "per-round in-process ratio median (min-max)",
               "median CPU s (user+sys)", "CPU ratio", "peak RSS MB", "output", "drops", OTHERS_HDR,
               "notes"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    flagged = []
    for s in ss:
        isb = s is b
        el, wall = med(s["el"].values()), med(s["wall"].values())
        rr = lambda a, c: "-" if isb else f(ratio(a, c), 3 if suite == "cpu" else 2, "x")
        notes = notes_of(s, b)
        if s["info"]:
            notes.append(s["info"])
        out = size(s["size"]) if s["size"] else "0"
        rss = f(s["rss"] / 1024.0 if s["rss"] else None, 1)
        if suite == "cpu":
            hzs = [ratio(n, s["el"].get(k)) for k, n in s["samples"].items() if n is not None]
            cells = [s["name"], s["desc"], f(el, 3), rr(el, med(b["el"].values())),
                     mm(s["el"].values(), 3), rr(lo(s["el"]), lo(b["el"])),
                     "-" if isb else "%s (%s)" % (f(med(per_round(s, b, "el")), 3, "x"),
                                                  mm(per_round(s, b, "el"), 3, "x")),
                     f(wall), rr(wall, med(b["wall"].values())),
                     f(med(s["cpu"].values())), rr(med(s["cpu"].values()), med(b["cpu"].values())),
                     rss, out,
                     f(med(s["samples"].values()), 0) if s["hz"] else "-",
                     ("%s (%s)" % (f(med(hzs), 1), mm(hzs, 1))) if s["hz"] and hzs else "-",
                     ("%s (%s)" % (f(med(s["stream"]), 1, "%"), mm(s["stream"], 1, "%")))
                     if any(x is not None for x in s["stream"]) else "-",
                     others(s), "; ".join(notes)]
        else:
            if s["drops"]:
                d = max(s["drops"])
                dtxt = "0" if d == 0 else "**max %d DROPPED (not exact)**" % d
                if d:
                    flagged.append(s["name"])
            else:
                dtxt = "-"
            cells = [s["name"], s["desc"], f(wall), rr(wall, med(b["wall"].values())),
                     mm(s["wall"].values()), f(el, 3), rr(el, med(b["el"].values())),
                     "-" if isb else "%s (%s)" % (f(med(per_round(s, b, "el")), 2, "x"),
                                                  mm(per_round(s, b, "el"), 2, "x")),
                     f(med(s["cpu"].values())), rr(med(s["cpu"].values()), med(b["cpu"].values())),
                     rss, out, dtxt, others(s), "; ".join(notes)]
        print("| " + " | ".join(cells) + " |")
    print()
    busy = [x for s in ss for x in s["others"] if x is not None]
    if busy and med(busy) >= 0.25:
        print("NOTE: other jobs kept a median %s CPUs (%s) of the machine busy during these "
              "runs: elapsed-time ratios carry that noise (see the per-round ratios); "
              "the CPU-time ratio moves much less." % (f(med(busy)), mm(busy)))
    if flagged:
        print("WARNING: %s dropped events: exact mode with drops is not exact." % ", ".join(flagged))
    elif any(s["drops"] for s in ss):
        print("No agent config dropped events.")
    # targets: in-process ratio, and the delivered rate against the thread's CPU time
    for s in ss:
        lim = TARGETS.get((suite, s["name"]))
        if lim is None:
            continue
        r = ratio(med(s["el"].values()), med(b["el"].values()))
        d = med(s["stream"])
        met_r = r is not None and r <= lim
        met_d = d is not None and d >= MIN_DELIVERED
        print("target %s: in-process %s (<= %.2fx: %s), delivered %s (>= %.0f%%: %s)"
              % (s["name"], f(r, 3, "x"), lim, "met" if met_r else "NOT MET",
                 f(d, 1, "%"), MIN_DELIVERED, "met" if met_d else "NOT MET"))
