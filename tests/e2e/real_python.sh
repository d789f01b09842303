#!/usr/bin/env bash
# CPython's own test_subprocess module (Debian's libpython3.11-testsuite)
# under `perfagent run` with every feature on (exact heap, CPU at 999 Hz,
# libpq and socket tracing at their default, on): an exec'd child must not
# find the agent's fds among the numbers it expects closed (test_close_fds*,
# test_pass_fds*: "fd 5 unexpectedly found" before the agent moved its fds
# up, issue 16).  Those 15 tests, but test_pass_fds_redirected, which lists
# EVERY open fd of its child and so cannot pass while the child is traced:
# run on its own, its extra fds are pinned.  Not the whole module (25 s
# plain, 46-90 s traced here): on this loaded machine an exiting child's
# final flush to run's collector timed out (10 s) and its "the final flush
# timed out" line landed in the output that test_stderr_redirect_* and
# test_encoding_warning compare (issue 16 report; `make stress` runs it).
. "$(dirname "$0")/common.bash"
require_product
TO=${PA_TIMEOUT_SUBPROCESS:-300}
if [ -r /usr/lib/python3.11/test/test_subprocess.py ]; then ok subprocess.tools; else
    fail subprocess.tools "no /usr/lib/python3.11/test (package libpython3.11-testsuite; run 'make deps')"; fi
run subp env PERFAGENT_MALLOC_RATE=1 "$PERFAGENT" run --cpu 999 -o "$T/subp" -- \
    /usr/bin/python3 -m test -v test_subprocess -m 'test_close_fds*' -m 'test_pass_fds*' -i test_pass_fds_redirected
expect_eq subprocess.module_passes "$(rc_of subp) $(grep -c '^Tests result: SUCCESS$' "$T/subp.out")" "0 1" \
    "exit status, SUCCESS lines; $(grep -E '^(FAIL|ERROR):' "$T/subp.out" "$T/subp.err" | head -3 | tr '\n' '|')"
# the 9 POSIX fd tests (test_close_fds*, test_pass_fds* but the redirected
# one) ran (and passed: SUCCESS above); every process of the run has its report and each stream
# decoded to its end (the children the tests kill with SIGKILL end cut, as
# any killed process: counted, not pinned)
expect_eq subprocess.fd_tests_ran "$(grep -hE '^test_(close|pass)_fds[a-z_0-9]* \(test\.test_subprocess\.POSIXProcessTestCase\.' "$T/subp.err" "$T/subp.out" | wc -l)" 9
n=$(procs "$T/subp" | wc -l)
nsum=$(ls "$T/subp"/*/summary.txt 2>/dev/null | wc -l)
faults=$(grep -L '^decode: *no fault' "$T/subp"/*/summary.txt 2>/dev/null | wc -l)
cut=$(grep -l 'cut: no Goodbye' "$T/subp"/*/summary.txt 2>/dev/null | wc -l)
echo "# $n processes, $cut cut (killed by the tests), $(cat "$T/subp.secs") s"
expect_eq subprocess.reports "$([ "$n" -ge 10 ] && echo many) $((n - nsum)) $faults" "many 0 0" \
    "processes in index.json: $n; without summary.txt; summaries with a decode fault"
# test_pass_fds_redirected alone (verbose: its assertion prints the child's
# fd list).  Its child's fds beyond 0-2: the three it passes (the parent's
# three lowest free numbers) and the agent's own, at 960 and up (perf
# events, libunwind's memory-validation pipe; the output and the snapshot
# listener are in the agent's own fd table, agent/fdtable.c).  Before the fix
# (agent/unwind.c pa_unwind_init) libunwind opened that pipe at the lowest
# free numbers, 3 and 4, on the agent's first libunwind call: "5 3 4 high=4".
run subr env PERFAGENT_MALLOC_RATE=1 "$PERFAGENT" run --cpu 999 -o "$T/subr" -- \
    /usr/bin/python3 -m test -v test_subprocess -m test_pass_fds_redirected
list=$(grep -ho "output=b'[0-9,]*" "$T/subr.out" "$T/subr.err" | head -1 | sed "s/output=b'//")
low=$(echo "$list" | tr ',' '\n' | awk '$1 > 2 && $1 < 960' | tr '\n' ' ')
high=$(echo "$list" | tr ',' '\n' | awk '$1 >= 960' | wc -l)
# the three passed fds are the three lowest the parent had free
# How many of the agent's own fds (>= 960) the child holds when it lists
# them depends on timing (6 or 8 when the output and the listener were in
# the program's table, not explained: issue 16 note); what the test is
# about is that none is below 960, so only "some" is pinned there.
[ "$high" -ge 4 ] && high=some
expect_eq subprocess.redirected_fds "$(echo "$low" | wc -w) $(echo "$low" | awk '{print $1, $2}') high=$high" \
    "3 3 4 high=some" "child's fds: '$list'"
finish
