#!/usr/bin/env bash
# libunwind's memory-validation pipe and the program's fds
# (tests/workloads/unwind_fds.c).  libunwind opens it at the lowest free
# numbers on its first call (1.6's x86_64/Ginit.c open_pipe), which was the
# agent's pa_unwind_init: 3 and 4 in every traced process, numbers programs
# expect free (CPython's test_pass_fds_redirected).  And once the program
# has closed it (a daemon's closefrom(3)), libunwind's next validation read
# fails and it reopens the pipe at the lowest free numbers again, closing
# the old numbers first, which may be the program's files by then.  Fixed:
# the pipe is opened above the program's range (agent/unwind.c), and put
# back at its numbers when the program closes them (agent/libc.c
# pa_fd_closed), so libunwind never reads or closes a number of the
# program's.
source "$(dirname "$0")/common.bash"
require_product "$W/unwind_fds"

run base "$W/unwind_fds" x
for mode in plain closed; do
    if [ $mode = closed ]; then arg=x; else arg=; fi
    run "$mode" env PERFAGENT_OUTPUT="$T/$mode.pfr" LD_PRELOAD="$AGENT" "$W/unwind_fds" $arg
    # no close-on-exec fd below 960 at any point; libunwind's pipe up
    # there (put back after the close_range)
    expect_eq "$mode.fds" "$(rc_of "$mode") $(tr '\n' '|' <"$T/$mode.out")" \
        "0 start: -|closed: -|after: - pipes at 960+: 2|" \
        "stderr: $(head -c 300 "$T/$mode.err" | tr '\n' '|')"
done
# without the agent: nothing of the kind
expect_eq base.fds "$(rc_of base) $(tr '\n' '|' <"$T/base.out")" \
    "0 start: -|closed: -|after: - pipes at 960+: 0|"
# the allocations under the frame without unwind info were recorded
report closed.report "$T/closed.rep" "$T/closed.pfr" || true
d=$(proc_dir "$T/closed.rep" unwind_fds)
expect_eq closed.stacks "$(grep -c 'alloc_leaf' "$d/alloc.folded" 2>/dev/null | awk '{print ($1 > 0)}')" 1
finish
