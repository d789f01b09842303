#!/usr/bin/env bash
# The collector writes a finished stream's reports in a child process
# (collector/report_jobs.c), so its loop goes on reading the other agents:
# written in the loop, the reports of 37 exiting processes held a loaded
# `perfagent run` for 8.7 s of 9 and the agents' final flushes timed out
# (issue 16).  Stream A is a real one (python3 importing a few modules, exact
# mode: its reports take ~0.3 s); B is pfstream's hand-made one (pid 4242,
# 200 bytes leaked).  A writer held with SIGSTOP makes the order certain.
. "$(dirname "$0")/common.bash"
require_product
PFS=("$PY" "$PA_ROOT/tests/e2e/lib/pfstream.py")

run rec env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/a.pfr" \
    /usr/bin/python3 -c 'import json, email.parser, http.client, decimal, asyncio, unittest'
report a.ref "$T/ref" "$T/a.pfr"
apid=$(procs "$T/ref" | awk 'NR == 1 {print $1}')

# start NAME [ENV...] : a collector on $T/NAME.s writing $T/NAME, log in
# $T/NAME.err; its pid in CPID.
start() {
    local n=$1; shift
    env "$@" "$COLLECTOR" --listen "unix:$T/$n.s" -o "$T/$n" 2>"$T/$n.err" &
    CPID=$!
    wait_for_socket "$T/$n.s" 10
}
send() { # send SOCKET FILE
    $PY -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(open(sys.argv[2], "rb").read()); s.close()' "$1" "$2"
}
# writer PID : the pid of the first child PID has (polled for 20 s), or ""
writer() {
    $PY -c 'import sys, time, glob
end = time.time() + 20
while time.time() < end:
    for f in glob.glob("/proc/%s/task/*/children" % sys.argv[1]):
        try:
            kids = open(f).read().split()
        except OSError:
            kids = []
        if kids:
            print(kids[0]); sys.exit(0)
    time.sleep(0.0005)' "$1"
}
# wait_index DIR N : until DIR/index.json lists N processes (20 s)
wait_index() {
    local i
    for ((i = 0; i < 400; i++)); do
        [ "$(procs "$1" | wc -l)" -ge "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

# 1. A's writer stopped: B is read, written and listed meanwhile; A is not
#    listed until its reports are whole, and they equal perfagent report's.
start s1 PERFAGENT_REPORT_JOBS=2
send "$T/s1.s" "$T/a.pfr"
wpid=$(writer "$CPID")
[ -n "$wpid" ] && kill -STOP "$wpid"
expect_eq held.writer "$([ -n "$wpid" ] && echo found)" found "a child of the collector writing A's reports"
"${PFS[@]}" --connect "unix:$T/s1.s" --pid 4242 >"$T/b1.out" 2>&1
wait_index "$T/s1" 1
expect_eq held.b_first "$(procs "$T/s1" | awk '{print $1}' | tr '\n' ' ')" "4242 " \
    "index.json while A's writer is stopped: B only (a pending entry is not listed)"
expect_eq held.b_leaks "$($PYQ total "$T/s1/4242/leaks.json" 2>&1)" "200 2" "B's leaked bytes, objects"
[ -n "$wpid" ] && kill -CONT "$wpid"
wait_index "$T/s1" 2
expect_eq held.both "$(procs "$T/s1" | awk '{print $1}' | sort -n | tr '\n' ' ')" \
    "$(printf '%s\n' 4242 "$apid" | sort -n | tr '\n' ' ')"
diffs=
for f in leaks.json leaks.txt alloc.folded inuse.folded summary.txt heap.pb.gz; do
    cmp -s "$T/ref/$apid/$f" "$T/s1/$apid/$f" || diffs="$diffs $f"
done
expect_eq held.same_reports "${diffs:-none}" none "files differing from perfagent report's"
# the log says done in the order the reports were finished
order=$(grep -oE 'pid [0-9]+ \([^)]*\) done' "$T/s1.err" | awk '{print $2}' | tr '\n' ' ')
expect_eq held.log_order "$order" "4242 $apid " "'done' lines in $T/s1.err"
kill -TERM "$CPID"; wait "$CPID"
expect_eq held.exit "$?" 0

# 2. A writer that dies (SIGKILL here; a crash in report code alike) costs
#    that one process's reports, said in one line; the collector goes on.
start s2 PERFAGENT_REPORT_JOBS=1
send "$T/s2.s" "$T/a.pfr"
wpid=$(writer "$CPID")
[ -n "$wpid" ] && kill -KILL "$wpid"
"${PFS[@]}" --connect "unix:$T/s2.s" --pid 4343 >"$T/b2.out" 2>&1
wait_index "$T/s2" 2
expect_eq killed.logged "$(grep -c "the report writer for pid $apid died of Killed; .* may be incomplete" "$T/s2.err")" 1 \
    "$(head -c 400 "$T/s2.err" | tr '\n' '|')"
expect_eq killed.alive "$(kill -0 "$CPID" 2>/dev/null && echo yes)" yes "collector still running"
expect_eq killed.next_ok "$($PYQ total "$T/s2/4343/leaks.json" 2>&1)" "200 2" "the next stream's leaks"
kill -TERM "$CPID"; wait "$CPID"
expect_eq killed.exit "$?" 0

# 3. PERFAGENT_REPORT_JOBS=0: written in the loop, no child at all (the
#    reports the same); a bad value is one line and the default.
start s3 PERFAGENT_REPORT_JOBS=0
send "$T/s3.s" "$T/a.pfr"
wait_index "$T/s3" 1
kill -TERM "$CPID"; wait "$CPID"
diffs=
for f in leaks.json summary.txt alloc.folded; do
    cmp -s "$T/ref/$apid/$f" "$T/s3/$apid/$f" || diffs="$diffs $f"
done
expect_eq inloop.same_reports "${diffs:-none}" none
start s4 PERFAGENT_REPORT_JOBS=lots
send "$T/s4.s" "$T/a.pfr"
wait_index "$T/s4" 1
kill -TERM "$CPID"; wait "$CPID"
expect_eq badenv.line "$(grep -c 'PERFAGENT_REPORT_JOBS' "$T/s4.err")" 1 "$(head -c 300 "$T/s4.err" | tr '\n' '|')"
expect_eq badenv.reports "$([ -s "$T/s4/$apid/leaks.json" ] && echo yes)" yes

# 4. `perfagent run` prints each process's summary at the end: the text
#    comes back from the writer through its pipe, whole.
run prun "$PERFAGENT" run -o "$T/prun" -- "$W/leaks_fp"
d=$(proc_dir "$T/prun" leaks_fp)
expect_eq run.summary_printed "$($PY -c 'import sys
print("whole" if open(sys.argv[1]).read() in open(sys.argv[2]).read() else "missing")' \
    "$d/summary.txt" "$T/prun.err" 2>&1)" whole "summary.txt's text in run's stderr"

# 5. `perfagent report` of several files: written by writers too
#    (report_files.c), with the same directory, stdout and stderr as when
#    written one after another (PERFAGENT_REPORT_JOBS=0), a bad file and a
#    cut one in the middle included: every line in the files' order.
mkdir -p "$T/multi"
run mrec env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/multi/p.%p.pfr" /usr/bin/python3 -c '
import subprocess
for i in range(4):
    subprocess.run(["/bin/sh", "-c", "sort /etc/passwd >/dev/null"])'
first=$(ls "$T/multi"/p.*.pfr | head -1)
head -c 3000 "$first" >"$T/multi/p.5-cut.pfr"
echo garbage >"$T/multi/p.3-bad.pfr"
files=$(ls "$T/multi"/*.pfr | sort)
# shellcheck disable=SC2086
env PERFAGENT_REPORT_JOBS=0 "$PERFAGENT" report $files -o "$T/m0" >"$T/m0.out" 2>"$T/m0.err"; r0=$?
# shellcheck disable=SC2086
env PERFAGENT_REPORT_JOBS=2 "$PERFAGENT" report $files -o "$T/m2" >"$T/m2.out" 2>"$T/m2.err"; r2=$?
sed -i "s|$T/m0|DIR|g" "$T/m0.err"; sed -i "s|$T/m2|DIR|g" "$T/m2.err"
# the two files that did not decode say so, in the files' order
bad=$(grep -o 'p\.[^ ]*pfr: .*kept what was decoded' "$T/m2.err" | sed 's/:.*//' | tr '\n' ' ')
expect_eq multi.same "$r0 $r2 $(echo "$files" | wc -l) $(procs "$T/m2" | wc -l) $(cmp -s "$T/m0.out" "$T/m2.out" && echo stdout) $(cmp -s "$T/m0.err" "$T/m2.err" && echo stderr) $(diff -r "$T/m0" "$T/m2" >/dev/null && echo tree) $bad" \
    "1 1 $(ls "$T/multi"/p.*.pfr | wc -l) $(($(ls "$T/multi"/p.*.pfr | wc -l) - 1)) stdout stderr tree p.3-bad.pfr p.5-cut.pfr " \
    "exit statuses, files, processes indexed, identical outputs; $(diff "$T/m0.err" "$T/m2.err" | head -3 | tr '\n' '|')"
finish
