#!/usr/bin/env python3
"""Query perfagent report files for the e2e tests (tests/e2e/*.sh).

usage: pa_json.py COMMAND ARGS...
  site LEAKS FUNC [SKIP_RE]  "BYTES OBJECTS NSTACKS" summed over the stacks whose
                             leaf frame is FUNC, after skipping leading frames
                             that match SKIP_RE (e.g. operator new, strdup)
  frames LEAKS FUNC [N]      the first N (default 6) function names of the
                             biggest stack whose leaf is FUNC, joined by ";"
  lines LEAKS FUNC [N]       the same stack's first N frames as
                             "FUNC FILE:LINE" (FILE's base name), ";"-joined
  stacklist LEAKS            one line per stack, in file order:
                             "BYTES OBJECTS FUNC@ADDRESS;FUNC@ADDRESS..."
  txtlines TXT FUNC [N]      like lines, from a leaks.txt
  txthead TXT FUNC           the "#K: ..." heading line of that leaks.txt stack
  txtstacks TXT              one line per leaks.txt stack: its heading, "|",
                             its frame lines (indent removed) joined by ";"
  summary SUMMARY            the counters of summary.txt's "totals" as
                             "allocations=N bytes=N frees=N unknown=N stale=N
                             early=N implied=N superseded=N" (a line
                             summary.txt leaves out when zero counts 0; one
                             that must be there and is not shows "?")
  anyframe LEAKS FUNC        number of stacks with FUNC in any frame
  through LEAKS FUNC         "BYTES OBJECTS" summed over the stacks with FUNC
                             in any frame
  total LEAKS                "BYTES OBJECTS" from leaks.json "total"
  stacksum LEAKS             "BYTES OBJECTS" summed over all stacks
  sorted LEAKS               "yes" when stacks are sorted by bytes, descending
  agentframes LEAKS          number of frames whose module is libperfagent
  get JSON KEY               a top-level field (JSON-encoded unless a string)
  index INDEX                one line per process: "PID PPID EXE_BASENAME DIR"
                             (DIR made absolute, relative to the index's folder)
  folded FILE                sum of the counts of a folded-stacks file
  foldedcheck FILE           "ok" or a description of the first bad line
  foldedsite FILE FUNC       sum of the counts of the lines whose leaf (last)
                             frame is FUNC
  foldedpath FILE FUNC       the frames (root first, ";"-joined, parameter
                             lists removed) of the biggest line whose leaf is FUNC
Function names compare equal when they match exactly or once a trailing
parameter list "(...)" is removed.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from checks import parse_summary  # noqa: E402


def load(path):
    with open(path) as f:
        return json.load(f)


def strip_params(name):
    if not name:
        return ""
    name = name.strip()
    # remove one trailing balanced "(...)" plus cv/ref qualifiers
    m = re.match(r"^(.*?)(\(.*\))(\s*(const|volatile|&|&&))*\s*$", name)
    if m and m.group(1):
        return m.group(1)
    return name


def same_fn(a, b):
    return a == b or strip_params(a) == strip_params(b)


def fnames(stack):
    return [(fr.get("function") or "??") for fr in stack.get("frames", [])]


def leaf_index(stack, skip_re):
    names = fnames(stack)
    i = 0
    if skip_re:
        r = re.compile(skip_re)
        while i < len(names) and r.search(names[i]):
            i += 1
    return i, names


def cmd_site(leaks, func, skip_re=None):
    d = load(leaks)
    b = o = n = 0
    for st in d.get("stacks", []):
        i, names = leaf_index(st, skip_re)
        if i < len(names) and same_fn(names[i], func):
            b += int(st["bytes"])
            o += int(st["objects"])
            n += 1
    print(b, o, n)


def cmd_frames(leaks, func, n="6"):
    d = load(leaks)
    best = None
    for st in d.get("stacks", []):
        names = fnames(st)
        if names and same_fn(names[0], func):
            if best is None or int(st["bytes"]) > int(best["bytes"]):
                best = st
    if best is None:
        print("(no stack with leaf %s)" % func)
        return
    print(";".join(strip_params(x) for x in fnames(best)[: int(n)]))


def biggest_with_leaf(stacks, func, names_of):
    best = None
    for st in stacks:
        names = names_of(st)
        if names and same_fn(names[0], func):
            if best is None or int(st["bytes"]) > int(best["bytes"]):
                best = st
    return best


def cmd_lines(leaks, func, n="6"):
    best = biggest_with_leaf(load(leaks).get("stacks", []), func, fnames)
    if best is None:
        print("(no stack with leaf %s)" % func)
        return
    print(";".join("%s %s:%s" % (strip_params(fr.get("function") or "??"),
                                 os.path.basename(fr.get("file") or "?"), fr.get("line"))
                   for fr in best["frames"][: int(n)]))


def cmd_stacklist(leaks):
    for st in load(leaks).get("stacks", []):
        print(st["bytes"], st["objects"],
              ";".join("%s@%s" % (fr.get("function"), fr.get("address")) for fr in st["frames"]))


# leaks.txt: a stack is a heading "#K: B bytes in O objects" and one line per
# frame, "    NAME (FILE[:LINE]) [MODULE]", "    NAME [MODULE]" or
# "    NAME (0xADDRESS)" when the module is unknown.
TXT_HEAD = re.compile(r"^#\d+: (\d+) bytes in (\d+) objects$")
TXT_FRAME = re.compile(r"^    (.*?)(?: \(([^()]*?)(?::(\d+))?\))? (\[[^]]*\]|\(0x[0-9a-f]+\))$")


def txt_stacks(path):
    stacks, cur = [], None
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            m = TXT_HEAD.match(line)
            if m:
                cur = {"head": line, "bytes": m.group(1), "objects": m.group(2), "lines": [],
                       "frames": []}
                stacks.append(cur)
            elif cur is not None and line.startswith("    "):
                cur["lines"].append(line[4:])
                fm = TXT_FRAME.match(line)
                if fm:
                    cur["frames"].append((fm.group(1), fm.group(2), fm.group(3)))
            else:
                cur = None
    return stacks


def txt_names(st):
    return [fr[0] for fr in st["frames"]]


def cmd_txtlines(txt, func, n="6"):
    best = biggest_with_leaf(txt_stacks(txt), func, txt_names)
    if best is None:
        print("(no stack with leaf %s)" % func)
        return
    print(";".join("%s %s:%s" % (strip_params(name), os.path.basename(file or "?"), line or 0)
                   for name, file, line in best["frames"][: int(n)]))


def cmd_txthead(txt, func):
    best = biggest_with_leaf(txt_stacks(txt), func, txt_names)
    print(best["head"] if best else "(no stack with leaf %s)" % func)


def cmd_txtstacks(txt):
    for st in txt_stacks(txt):
        print(st["head"] + "|" + ";".join(st["lines"]))


# summary.txt is parsed in one place, lib/checks.py; these are the names
# this command prints for its keys (the ones it leaves out when zero read 0,
# a missing always-printed one "?").
SUMMARY_KEYS = [("allocations", "allocations"), ("bytes", "bytes_allocated"),
                ("frees", "frees"), ("unknown", "frees_unknown"), ("stale", "frees_stale"),
                ("early", "frees_early"), ("implied", "implied"), ("superseded", "superseded")]


def cmd_summary(path):
    v, _ = parse_summary(path)
    print(" ".join("%s=%s" % (out, v.get(key, "?")) for out, key in SUMMARY_KEYS))


def cmd_anyframe(leaks, func):
    d = load(leaks)
    print(sum(1 for st in d.get("stacks", []) if any(same_fn(x, func) for x in fnames(st))))


def cmd_through(leaks, func):
    b = o = 0
    for st in load(leaks).get("stacks", []):
        if any(same_fn(x, func) for x in fnames(st)):
            b += int(st["bytes"])
            o += int(st["objects"])
    print(b, o)


def cmd_total(leaks):
    t = load(leaks).get("total", {})
    print(t.get("bytes"), t.get("objects"))


def cmd_stacksum(leaks):
    d = load(leaks)
    print(sum(int(s["bytes"]) for s in d.get("stacks", [])),
          sum(int(s["objects"]) for s in d.get("stacks", [])))


def cmd_sorted(leaks):
    b = [int(s["bytes"]) for s in load(leaks).get("stacks", [])]
    print("yes" if all(b[i] >= b[i + 1] for i in range(len(b) - 1)) else "no")


def cmd_agentframes(leaks):
    n = 0
    for st in load(leaks).get("stacks", []):
        for fr in st.get("frames", []):
            if "libperfagent" in (fr.get("module") or ""):
                n += 1
    print(n)


def cmd_get(path, key):
    v = load(path).get(key)
    print(v if isinstance(v, str) else json.dumps(v))


def cmd_index(path):
    d = load(path)
    base = os.path.dirname(os.path.abspath(path))
    for p in d.get("processes", []):
        dr = str(p.get("dir", p.get("pid")))
        if not os.path.isabs(dr):
            dr = os.path.join(base, dr)
        exe = os.path.basename(p.get("exe") or "?") or "?"
        print(p.get("pid"), p.get("ppid"), exe, dr)


FOLDED = re.compile(r"^(.+) (\d+)$")


def cmd_folded(path):
    tot = 0
    with open(path) as f:
        for line in f:
            m = FOLDED.match(line.rstrip("\n"))
            if m:
                tot += int(m.group(2))
    print(tot)


def cmd_foldedcheck(path):
    with open(path) as f:
        for no, line in enumerate(f, 1):
            if not FOLDED.match(line.rstrip("\n")):
                print("line %d not 'a;b;c N': %r" % (no, line[:120]))
                return
    print("ok")


def folded_lines(path):
    with open(path) as f:
        for line in f:
            m = FOLDED.match(line.rstrip("\n"))
            if m:
                yield m.group(1).split(";"), int(m.group(2))


def cmd_foldedsite(path, func):
    print(sum(n for fr, n in folded_lines(path) if same_fn(fr[-1], func)))


def cmd_foldedpath(path, func):
    best = None
    for fr, n in folded_lines(path):
        if same_fn(fr[-1], func) and (best is None or n > best[1]):
            best = (fr, n)
    print(";".join(strip_params(x) for x in best[0]) if best else "(no line with leaf %s)" % func)


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        sys.exit(2)
    fn = globals().get("cmd_" + sys.argv[1])
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
