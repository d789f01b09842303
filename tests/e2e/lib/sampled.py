"""Helpers for heap_sampled.sh's checks of a sampled run's report folder:
the counters of summary.txt, the live bytes of leaks.json by function, and
an estimate-within-a-tolerance check that prints its "#" line and its
ok/FAIL line.  Imported by the script's inline Python (sys.path gets this
folder)."""
import json
import re


def load(d):
    """(summary.txt's text, leaks.json) of report folder d; empty ones
    when either is missing or unreadable, so every check still prints."""
    try:
        with open(d + '/summary.txt') as f:
            summ = f.read()
        with open(d + '/leaks.json') as f:
            leaks = json.load(f)
    except (OSError, ValueError):
        return '', {'stacks': []}
    return summ, leaks


def num(summ, label):
    """A counter of summary.txt ("  LABEL: N"), -1 when absent."""
    m = re.search(r'^  %s: *(\d+)' % label, summ, re.M)
    return int(m.group(1)) if m else -1


def live_at(leaks, function):
    """Live bytes of the stacks in leaks.json with FUNCTION in a frame."""
    return sum(s['bytes'] for s in leaks['stacks']
               if any(f.get('function') == function for f in s['frames']))


def within(name, got, exp, pct):
    """ok NAME when GOT is within PCT percent of EXP (FAIL when EXP is 0)."""
    rel = 100.0 * (got / exp - 1) if exp else 100.0
    print('# %s: %d vs %d (%+.2f%%, tolerance %g%%)' % (name, got, exp, rel, pct))
    if abs(rel) <= pct:
        print('ok %s' % name)
    else:
        print('FAIL %s: %d is %+.2f%% off %d' % (name, got, rel, exp))
