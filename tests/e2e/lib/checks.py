#!/usr/bin/env python3
"""Exact numbers out of a perfagent report folder, for the e2e scripts
(process_model.sh, real_programs.sh, collector_killed.sh, ring_wait.sh).

usage: checks.py COMMAND ARGS...
  sum SUMMARY KEY...      the values of KEYs from summary.txt, space-separated
                          (a key that summary.txt does not show prints "?")
  threads SUMMARY [TID..] one line per thread listed in summary.txt (the top
                          ones), "TID ALLOCS BYTES FREES exited|live", sorted
                          by tid; with TIDs only those (a TID not listed
                          prints "TID missing")
  procs INDEX             "N EXE:COUNT ..." the number of processes in
                          index.json and how many per program name (sorted)
  wlthreads FILE TAG      the "TAG: tid=T allocs=A bytes=B frees=F" lines a
                          workload printed, as "T A B F exited", sorted by tid
  threadmatch SUMMARY FILE TAG
                          "listed=L matched=M": L exited threads listed in
                          summary.txt, M of them equal to the workload's
                          wlthreads line for their tid (the first that is not
                          is appended)
  streams INDEX           one line per process of index.json, sorted, ";"-joined:
                          "EXE exit=C lost=D/U/I/S" (C: the Goodbye's exit
                          code, -1 for a stream ended by exec; D/U/I/S: drops,
                          frees of unknown blocks, implied frees, superseded
                          allocations, all 0 when nothing was lost).  A fork
                          copy (its parent in the index runs the same
                          program) frees blocks it inherited, which its own
                          stream never saw allocated: its U shows as "f"
  exited SUMMARY          "ALLOCS BYTES FREES" of each exited thread listed in
                          summary.txt, sorted, ";"-joined
  churn OUT               the same for the worker threads of churn's stdout:
                          the agent counts a realloc as one allocation (its
                          new size) plus one free, so a worker's row is
                          "mallocs+reallocs bytes+realloc_bytes frees+reallocs"

summary.txt keys: allocations bytes_allocated objects_allocated frees
  frees_unknown frees_stale frees_early implied superseded live_bytes
  live_objects live_stacks no_stack drops (the sum of the five counters;
  "?" when no AgentStats arrived) threads_seen threads_exited exit_code
  ("?" unless the stream ended with a Goodbye) rows.  Counters that
  summary.txt prints only when non-zero (stale, early, implied, superseded)
  read 0 when absent.
"""
import json
import re
import sys
from collections import Counter


def parse_summary(path):
    with open(path) as f:
        text = f.read()
    v = {k: "0" for k in ("frees_stale", "frees_early", "implied", "superseded")}

    def grab(key, pattern):
        m = re.search(pattern, text, re.M)
        if m:
            v[key] = m.group(1)

    grab("allocations", r"^  allocations:\s+(\d+)")
    grab("bytes_allocated", r"^  bytes allocated:\s+(\d+)")
    grab("objects_allocated", r"^  objects allocated:\s+(\d+)")
    grab("frees", r"^  frees:\s+(\d+)")
    grab("frees_unknown", r"^    of unknown blocks:\s+(\d+)")
    grab("frees_stale", r"^    stale \(reordered\):\s+(\d+)")
    grab("frees_early", r"^    before their alloc:\s+(\d+)")
    grab("implied", r"^  address reuse:\s+(\d+) implied frees")
    grab("superseded", r"^  address reuse:\s+\d+ implied frees, (\d+) late")
    m = re.search(r"^  live at end \(leaked\): (\d+) bytes in (\d+) objects, (\d+) stacks", text, re.M)
    if m:
        v["live_bytes"], v["live_objects"], v["live_stacks"] = m.groups()
    grab("no_stack", r"^  stacks:\s+\d+ \((\d+) allocations without a stack\)")
    grab("exit_code", r"^stream:\s+ended cleanly \(Goodbye, exit code (-?\d+)\)")
    grab("rows", r"(\d+) heap rows")
    m = re.search(r"^drops \(last AgentStats\)\n((?:  \w+:\s+\d+\n)+)", text, re.M)
    if m:
        v["drops"] = str(sum(int(x) for x in re.findall(r":\s+(\d+)", m.group(1))))
    m = re.search(r"^threads: (\d+) seen, (\d+) exited", text, re.M)
    if m:
        v["threads_seen"], v["threads_exited"] = m.groups()
    else:
        v["threads_seen"] = v["threads_exited"] = "0"
    return v, text


def cmd_sum(path, *keys):
    v, _ = parse_summary(path)
    print(" ".join(v.get(k, "?") for k in keys))


THREAD = re.compile(r"^  tid (\d+)(?: \(.*\))?: (\d+) allocations, (\d+) bytes, (\d+) frees( \(exited\))?$")


def cmd_threads(path, *tids):
    _, text = parse_summary(path)
    rows = {}
    for line in text.splitlines():
        m = THREAD.match(line)
        if m:
            rows[int(m.group(1))] = "%s %s %s %s %s" % (
                m.group(1), m.group(2), m.group(3), m.group(4), "exited" if m.group(5) else "live")
    want = sorted(int(t) for t in tids) if tids else sorted(rows)
    for t in want:
        print(rows.get(t, "%d missing" % t))


def cmd_procs(path):
    with open(path) as f:
        d = json.load(f)
    ps = d.get("processes", [])
    c = Counter((p.get("exe") or "?").rsplit("/", 1)[-1] for p in ps)
    print(len(ps), " ".join("%s:%d" % (k, c[k]) for k in sorted(c)))


def cmd_wlthreads(path, tag):
    r = re.compile(r"^%s: tid=(\d+) allocs=(\d+) bytes=(\d+) frees=(\d+)$" % re.escape(tag))
    rows = []
    with open(path) as f:
        for line in f:
            m = r.match(line.rstrip("\n"))
            if m:
                rows.append(tuple(int(x) for x in m.groups()))
    for t in sorted(rows):
        print("%d %d %d %d exited" % t)


def cmd_threadmatch(path, wlfile, tag):
    _, text = parse_summary(path)
    r = re.compile(r"^%s: tid=(\d+) allocs=(\d+) bytes=(\d+) frees=(\d+)$" % re.escape(tag))
    want = {}
    with open(wlfile) as f:
        for line in f:
            m = r.match(line.rstrip("\n"))
            if m:
                want[m.group(1)] = m.group(2, 3, 4)
    listed = matched = 0
    bad = ""
    for line in text.splitlines():
        m = THREAD.match(line)
        if not (m and m.group(5)):
            continue
        listed += 1
        if want.get(m.group(1)) == m.group(2, 3, 4):
            matched += 1
        elif not bad:
            w = want.get(m.group(1))
            bad = " first_diff=tid %s: agent %s, workload %s" % (
                m.group(1), "/".join(m.group(2, 3, 4)), "/".join(w) if w else "no line")
    print("listed=%d matched=%d%s" % (listed, matched, bad))


def cmd_streams(path):
    import os
    with open(path) as f:
        d = json.load(f)
    base = os.path.dirname(os.path.abspath(path))
    ps = d.get("processes", [])
    exe_of = lambda p: (p.get("exe") or "?").rsplit("/", 1)[-1]
    exes_by_pid = {}
    for p in ps:
        exes_by_pid.setdefault(p.get("pid"), set()).add(exe_of(p))
    rows = []
    for p in ps:
        exe = exe_of(p)
        try:
            v, _ = parse_summary(os.path.join(base, str(p.get("dir")), "summary.txt"))
        except OSError:
            rows.append("%s no-summary" % exe)
            continue
        fork_copy = exe in exes_by_pid.get(p.get("ppid"), ())
        rows.append("%s exit=%s lost=%s/%s/%s/%s" % (
            exe, v.get("exit_code", "?"), v.get("drops", "?"),
            "f" if fork_copy else v.get("frees_unknown", "?"), v["implied"], v["superseded"]))
    print(";".join(sorted(rows)))


def cmd_exited(path):
    _, text = parse_summary(path)
    rows = []
    for line in text.splitlines():
        m = THREAD.match(line)
        if m and m.group(5):
            rows.append(tuple(int(x) for x in m.group(2, 3, 4)))
    print(";".join("%d %d %d" % r for r in sorted(rows)))


CHURN = re.compile(r"^churn: thread=\d+ mallocs=(\d+) bytes=(\d+) reallocs=(\d+) "
                   r"realloc_bytes=(\d+) frees=(\d+)$")


def cmd_churn(path):
    rows = []
    with open(path) as f:
        for line in f:
            m = CHURN.match(line.rstrip("\n"))
            if m:
                a, b, r, rb, fr = (int(x) for x in m.groups())
                rows.append((a + r, b + rb, fr + r))
    print(";".join("%d %d %d" % r for r in sorted(rows)))


def main():
    fn = globals().get("cmd_" + sys.argv[1]) if len(sys.argv) > 2 else None
    if not fn:
        sys.stderr.write(__doc__)
        sys.exit(2)
    try:
        fn(*sys.argv[2:])
    except (OSError, ValueError, KeyError, TypeError) as e:
        print("ERROR %s: %s" % (type(e).__name__, e))
        sys.exit(1)


if __name__ == "__main__":
    main()
