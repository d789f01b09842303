#!/usr/bin/env python3
# How long exiting processes wait for the collector.  Run it under
#   PERFAGENT_MALLOC_RATE=1 perfagent run -o DIR -- tools/exit_latency.py K
# K python children at once, each importing a few modules (exact mode: a
# ~0.7 MB stream and ~0.3 s of reports each) and printing its monotonic
# clock as its last act; a thread per child notes when the child's stdout
# closes (after the agent's final flush).  Prints the largest and the
# median delay in seconds.  README, "Reliability": PERFAGENT_REPORT_JOBS=0
# (reports written in the collector's loop) against the default.
import subprocess, sys, time, threading
K = int(sys.argv[1])
code = ("import json, email.parser, http.client, decimal, asyncio, unittest, xml.dom.minidom, "
        "argparse, logging, sqlite3, sys, time; sys.stdout.write('%.6f' % time.monotonic())")
lat = []
def one():
    p = subprocess.Popen(["/usr/bin/python3", "-c", code], stdout=subprocess.PIPE)
    out = p.stdout.read()
    lat.append(time.monotonic() - float(out))
    p.wait()
ts = [threading.Thread(target=one) for _ in range(K)]
for t in ts: t.start()
for t in ts: t.join()
lat.sort()
print("max %.3f median %.3f" % (lat[-1], lat[len(lat) // 2]))
