#!/usr/bin/env bash
# vfork(2) children (tests/workloads/vfork_exec.c, the way CPython's
# subprocess spawns since 3.10): the child runs in the parent's memory with
# no fork handler run, until it execs or _exits.  The agent's hooks it calls
# there (sigaction, close_range, execve, _exit) must leave the parent's
# agent alone.  Before the fix the first child's execve stopped the
# parent's sender (its stream ended "cut" at the first spawn, CPU rings
# unmapped under it), its close_range took the parent's output for the
# program's, and its sigaction overwrote the parent's saved handlers; with
# CPU sampling the parent's stream then named stacks it never defined
# (CPython's test_subprocess: "stack id not defined").
source "$(dirname "$0")/common.bash"
require_product "$W/vfork_exec"
CK="$PY $PA_ROOT/tests/e2e/lib/checks.py"

# shared: CPU sampling as cpu, the agent's thread on the program's fd table
# (PERFAGENT_PRIVATE_FDS=0), where a child's close_range could reach the
# agent's output; by default it has a table of its own (agent/fdtable.c)
for v in heap cpu shared; do
    if [ $v != heap ]; then cpu="--cpu 999"; busy=300; else cpu=; busy=0; fi
    pf=1
    [ $v = shared ] && pf=0
    run "$v" env PERFAGENT_PRIVATE_FDS=$pf "$PERFAGENT" run $cpu -o "$T/$v" -- "$W/vfork_exec" 3 $busy
    expect_eq "$v.output" "$(rc_of "$v") $(cat "$T/$v.out")" "0 children 4 failed_exec 1" \
        "stderr: $(head -c 300 "$T/$v.err" | tr '\n' '|')"
    # the parent alone is traced (/bin/true is, too; the failed child never
    # becomes a process of its own): its stream ends with its Goodbye
    d=$(proc_dir "$T/$v" vfork_exec)
    expect_eq "$v.parent_stream" "$(grep -E '^(stream|decode):' "$d/summary.txt" 2>/dev/null | tr -s ' ' | tr '\n' '|')" \
        "stream: ended cleanly (Goodbye, exit code 0)|decode: no fault|"
    # every allocation of the parent, made after the spawns included:
    # 10 made and freed before, 5 x 2000 B live at exit
    expect_eq "$v.parent_numbers" "$($CK sum "$d/summary.txt" allocations frees live_bytes live_objects exit_code)" \
        "15 10 10000 5 0"
    expect_eq "$v.leak_after" "$(grep -c 'leak_after' "$d/leaks.txt" 2>/dev/null | awk '{print ($1 > 0)}')" 1
    # the children's close_range never took the parent's output: it was
    # not reopened (since the collector resumes a stream whose connection
    # is still being read, a taken output costs only that reopen)
    expect_eq "$v.output_kept" "$(grep -c 'output reopened' "$d/summary.txt" 2>&1)" 0
done
finish
