#!/usr/bin/env bash
# Processes and threads: fork while threads allocate (fork_mt), thread
# churn, dlopen/dlclose, exec following, PERFAGENT_DISABLE, bad settings,
# a static binary, an output that cannot be written, exit statuses, an
# exec that fails while another thread allocates.
#
# Every check prints exactly one ok/FAIL line whatever happens before it (a
# missing report makes the checks on it fail, never vanish), so the script
# always prints the same number of lines.  Numbers come from the workloads'
# header comments or from what they print they did.
. "$(dirname "$0")/common.bash"
require_product
CK="$PY $PA_ROOT/tests/e2e/lib/checks.py"
NONE=$T/no-such-process           # stands for the folder of a process that is not there

# rec NAME EXE PRELOAD CMD... : like record (common.bash) but always exactly
# two lines, NAME.report and NAME.process; RD is the report folder of the
# process named EXE, or $NONE (so that the checks on it fail).
rec() {
    local n=$1 exe=$2 pre=$3; shift 3
    run "$n" env LD_PRELOAD="$pre" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/$n.pfr" "$@"
    RD=$NONE
    if [ ! -s "$T/$n.pfr" ]; then
        fail "$n.report" "no $T/$n.pfr (exit $(rc_of "$n"); stderr: $(head -c 300 "$T/$n.err" | tr '\n' '|'))"
    else
        report "$n.report" "$T/$n.rep" "$T/$n.pfr"
    fi
    local d
    d=$(proc_dir "$T/$n.rep" "$exe")
    if [ -n "$d" ] && [ -f "$d/leaks.json" ]; then RD=$d; ok "$n.process"; else
        fail "$n.process" "no process $exe with a leaks.json in $T/$n.rep/index.json"; fi
}

# A run in exact mode with nothing lost: no drops, every free matched to its
# allocation (none of a block the agent never saw), no address reused
# without its free.  Then threads seen/exited and the Goodbye's exit code.
CLEAN="drops frees_unknown implied superseded"

# ---- fork_mt: parent and every child in index.json with their own numbers
# (fork_mt.c): 3 children each leak exactly 20 x 3000 B and make no other
# allocation or free; the parent's 4 workers free all they allocate, each
# in its own thread, and print their counts on stderr; the parent leaks
# 30 x 5000 B at parent_leak.
check_fork_mt() { # PREFIX RUN-NAME REPORT-DIR
    local p=$1 n=$2 dir=$3 parent kids k d i
    expect_eq "$p.exit_status" "$(rc_of "$n")" 0 "124 = timeout/deadlock; stderr: $(head -c 300 "$T/$n.err" | tr '\n' '|')"
    parent=$(sed -n 's/^fork_mt: parent=\([0-9]*\)$/\1/p' "$T/$n.out")
    kids=($(sed -n 's/^fork_mt: child=\([0-9]*\) status=0$/\1/p' "$T/$n.out"))
    expect_eq "$p.children_ran" "${#kids[@]}" 3 "children that exited with status 0"
    # parent + 3 children, all named fork_mt (no exec)
    expect_eq "$p.processes" "$($CK procs "$dir/index.json" 2>&1)" "4 fork_mt:4"
    d=$(procs "$dir" | awk -v p="${parent:-x}" '$1 == p { print $4 }')
    d=${d:-$NONE}
    check_site "$p.parent.parent_leak" "$d/leaks.json" parent_leak "150000 30"
    check_none "$p.parent.no_child_leak" "$d/leaks.json" child_leak
    check_none "$p.parent.workers_freed" "$d/leaks.json" worker_alloc
    # 5 threads: main (still running at exit) and the 4 joined workers
    expect_eq "$p.parent.clean" "$($CK sum "$d/summary.txt" $CLEAN threads_seen threads_exited exit_code 2>&1)" \
        "0 0 0 0 5 4 0" "$CLEAN threads_seen threads_exited exit_code"
    # each worker's allocations, bytes and frees as the agent counted them
    # are the ones the worker counted itself
    expect_eq "$p.parent.worker_counts" "$($CK threadmatch "$d/summary.txt" "$T/$n.err" fork_mt 2>&1)" \
        "listed=4 matched=4" "exited threads in summary.txt vs fork_mt's stderr"
    for i in 1 2 3; do
        k=${kids[$((i - 1))]:-x}
        d=$(procs "$dir" | awk -v p="$k" '$1 == p { print $4 }')
        expect_eq "$p.child$i.ppid" "$(procs "$dir" | awk -v p="$k" '$1 == p { print $2 }')" "$parent" \
            "child pid $k in index.json: $(procs "$dir" | awk '{print $1 "/" $2}' | tr '\n' ' ')"
        d=${d:-$NONE}
        check_site "$p.child$i.child_leak" "$d/leaks.json" child_leak "60000 20"
        expect_eq "$p.child$i.total" "$($PYQ total "$d/leaks.json" 2>&1)" "60000 20" "nothing but child_leak (no parent events copied into the child)"
        # 20 allocations, no free, one thread (the forking one), exit(0)
        expect_eq "$p.child$i.counts" "$($CK sum "$d/summary.txt" allocations frees $CLEAN threads_seen exit_code 2>&1)" \
            "20 0 0 0 0 0 1 0" "allocations frees $CLEAN threads_seen exit_code"
    done
}

mkdir -p "$T/fm"
run fm env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/fm/out.pfr" "$W/fork_mt"
# one file per process: the first gets the name, each child NAME.PID
want=$( (echo out.pfr; sed -n 's/^fork_mt: child=\([0-9]*\).*/out.pfr.\1/p' "$T/fm.out") | sort | tr '\n' ' ')
expect_eq fork.file.child_files "$(ls "$T/fm" | sort | tr '\n' ' ')" "$want"
report fork.file.report "$T/fm.rep" "$T"/fm/out.pfr*
check_fork_mt fork.file fm "$T/fm.rep"

run fmrun "$PERFAGENT" run -o "$T/fmrun.rep" --malloc-rate 1 -- "$W/fork_mt"
check_fork_mt fork.run fmrun "$T/fmrun.rep"

# ---- thread_churn: 200 threads, 8 at a time, exact totals.  Three runs:
# thread start/exit races show up only in some runs.
run base_tc "$W/thread_churn"
for i in 1 2 3; do
    rec tc$i thread_churn "$AGENT" "$W/thread_churn"
    check_site threads$i.leak_a "$RD/leaks.json" thread_leak_a "200000 200"
    check_site threads$i.leak_b "$RD/leaks.json" thread_leak_b "4800 200"
    check_none threads$i.scratch_freed "$RD/leaks.json" thread_scratch
    check_none threads$i.cross_thread_free "$RD/leaks.json" handoff_alloc
    check_frames threads$i.frames "$RD/leaks.json" thread_leak_a "thread_leak_a;thread_main"
    # every scratch byte allocated is in alloc.folded: the total the workload
    # printed (500 blocks a thread, sizes from its seeded generator)
    expect_eq threads$i.scratch_allocated "$($PYQ foldedsite "$RD/alloc.folded" thread_scratch 2>&1)" \
        "$(sed -n 's/.* scratch=\([0-9]*\) B.*/\1/p' "$T/base_tc.out")" "thread_scratch bytes in alloc.folded"
    expect_eq threads$i.handoff_allocated "$($PYQ foldedsite "$RD/alloc.folded" handoff_alloc 2>&1)" 102400 "200 x 512 B"
    # main + 200 workers, all joined; each listed worker: 503 allocations,
    # 500 frees (its handoff block is freed by main) and its own bytes
    expect_eq threads$i.counts "$($CK sum "$RD/summary.txt" $CLEAN threads_seen threads_exited exit_code 2>&1)" \
        "0 0 0 0 201 200 0" "$CLEAN threads_seen threads_exited exit_code"
    expect_eq threads$i.worker_counts "$($CK threadmatch "$RD/summary.txt" "$T/tc$i.err" thread_churn 2>&1)" \
        "listed=10 matched=10" "the 10 threads summary.txt lists vs thread_churn's stderr"
    same_output threads$i.stdout_and_status base_tc tc$i
done

# ---- dlopen_loop: stacks in a dlclose'd library resolve to its functions
run base_dl "$W/dlopen_loop"
rec dl dlopen_loop "$AGENT" "$W/dlopen_loop"
lj=$RD/leaks.json
check_site dlopen.leak "$lj" dlleak_make_block "66600 200"
check_frames dlopen.frames "$lj" dlleak_make_block "dlleak_make_block;call_into_plugin;main"
check_none dlopen.scratch_freed "$lj" dlleak_scratch
mod=$("$PY" -c '
import json, sys
for st in json.load(open(sys.argv[1]))["stacks"]:
    if st["frames"] and st["frames"][0].get("function") == "dlleak_make_block":
        print((st["frames"][0].get("module") or "").split("/")[-1]); break' "$lj" 2>&1)
expect_eq dlopen.module "$mod" libdlleak.so
# 200 x 333 B allocated at dlleak_make_block, and the 4000 scratch blocks'
# bytes that dlopen_loop computed and printed
expect_eq dlopen.make_block_allocated "$($PYQ foldedsite "$RD/alloc.folded" dlleak_make_block 2>&1)" 66600
expect_eq dlopen.scratch_allocated "$($PYQ foldedsite "$RD/alloc.folded" dlleak_scratch 2>&1)" \
    "$(sed -n 's/.* scratch=\([0-9]*\) B.*/\1/p' "$T/base_dl.out")" "dlleak_scratch bytes in alloc.folded"
expect_eq dlopen.counts "$($CK sum "$RD/summary.txt" $CLEAN threads_seen exit_code 2>&1)" "0 0 0 0 1 0" \
    "$CLEAN threads_seen exit_code"
same_output dlopen.stdout_and_status base_dl dl

# ---- exec following: a shell script runs leaks_fp (fork+exec) then execs allocfns
cat >"$T/script.sh" <<'SH'
#!/bin/sh
"$1/leaks_fp"
echo "child rc=$?"
exec "$1/allocfns"
SH
SHNAME=$(basename "$(readlink -f /bin/sh)")   # dash on Debian
run base_ex /bin/sh "$T/script.sh" "$W"
check_exec_tree() { # PREFIX REPORT-DIR FOLLOW(1|0)
    local p=$1 dir=$2 follow=$3 d want
    # the shell's stream ends at its exec (no exit code: -1)
    d=$(proc_dir "$dir" "$SHNAME"); d=${d:-$NONE}
    expect_eq "$p.shell_exec_ends_stream" "$($CK sum "$d/summary.txt" exit_code $CLEAN 2>&1)" "-1 0 0 0 0" "exit_code $CLEAN"
    if [ "$follow" = 1 ]; then
        # the shell (pid P, until its exec), leaks_fp (forked by the shell,
        # then exec'd), allocfns (pid P again, after the exec)
        want=$(printf '%s\n' allocfns:1 leaks_fp:1 "$SHNAME:1" | LC_ALL=C sort | tr '\n' ' ')
        expect_eq "$p.processes" "$($CK procs "$dir/index.json" 2>&1)" "3 ${want% }"
        d=$(proc_dir "$dir" leaks_fp); d=${d:-$NONE}
        expect_eq "$p.child_total" "$($PYQ total "$d/leaks.json" 2>&1)" "163472 168"
        check_site "$p.child_site_b" "$d/leaks.json" leak_site_b "12800 50"
        expect_eq "$p.child_counts" "$($CK sum "$d/summary.txt" exit_code $CLEAN 2>&1)" "0 0 0 0 0" "exit_code $CLEAN"
        d=$(proc_dir "$dir" allocfns); d=${d:-$NONE}
        expect_eq "$p.exec_image_total" "$($PYQ total "$d/leaks.json" 2>&1)" "19775 13"
        expect_eq "$p.exec_image_counts" "$($CK sum "$d/summary.txt" exit_code $CLEAN 2>&1)" "0 0 0 0 0" "exit_code $CLEAN"
    else
        # PERFAGENT_FOLLOW_EXEC=0: only the shell
        expect_eq "$p.processes" "$($CK procs "$dir/index.json" 2>&1)" "1 $SHNAME:1"
    fi
}
for follow in 1 0; do
    n=exec$follow
    mkdir -p "$T/$n"
    if [ $follow = 1 ]; then fe=(); else fe=(PERFAGENT_FOLLOW_EXEC=0); fi
    (cd "$T/$n" && run "$n" env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 "${fe[@]}" /bin/sh "$T/script.sh" "$W")
    same_output "exec.follow$follow.stdout_and_status" base_ex "$n"
    # one file per process (3 with follow, the shell's alone without)
    expect_eq "exec.follow$follow.files" "$(ls "$T/$n" | grep -c '\.pfr$')" $((1 + 2 * follow)) "files: $(ls "$T/$n" | tr '\n' ' ')"
    report "exec.follow$follow.report" "$T/$n.rep" "$T/$n"/*.pfr
    check_exec_tree "exec.follow$follow" "$T/$n.rep" $follow
done
run exrun "$PERFAGENT" run -o "$T/exrun.rep" --malloc-rate 1 -- /bin/sh "$T/script.sh" "$W"
same_output exec.run.stdout_and_status base_ex exrun
check_exec_tree exec.run "$T/exrun.rep" 1

# ---- PERFAGENT_DISABLE=1: nothing written, nothing said, same output
run base_lk "$W/leaks_fp"
mkdir -p "$T/dis"
(cd "$T/dis" && run dis env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_DISABLE=1 "$W/leaks_fp")
same_output disable.stdout_and_status base_lk dis
expect_eq disable.no_file "$(ls -A "$T/dis" | wc -l)" 0 "files in the cwd"
expect_eq disable.quiet "$(head -c 200 "$T/dis.err")" "" "stderr"

# ---- bad values: one warning line naming the value and the default used
# (README: the defaults are malloc rate 524288 (sampled), cfi, 64 frames,
# 4096 KiB), and the default is what the agent then uses: leaks_fp's exact
# numbers (sampled mode for a bad rate: the summary and leaks.txt say so),
# and the settings summary.txt reports.
check_bad() { # NAME VAR VALUE DEFAULT
    local n=$1 var=$2 val=$3 def=$4 pfr d
    mkdir -p "$T/$n"
    if [ "$var" = PERFAGENT_MALLOC_RATE ]; then
        (cd "$T/$n" && run "$n" env -u PERFAGENT_MALLOC_RATE LD_PRELOAD="$AGENT" "$var=$val" "$W/leaks_fp")
    else
        (cd "$T/$n" && run "$n" env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 "$var=$val" "$W/leaks_fp")
    fi
    same_output "$n.stdout_and_status" base_lk "$n"
    # the one exit line names the .pfr; every other line is a warning
    expect_eq "$n.one_warning" "$(grep -v '\.pfr' "$T/$n.err" | sed 's/^perfagent\[[0-9]*\]: //; s/: expected .*; using /: ...; using /')" \
        "ignoring $var=$val: ...; using $def" "stderr lines but the .pfr one"
    pfr=$(ls "$T/$n"/*.pfr 2>/dev/null | head -1)
    report "$n.report" "$T/$n.rep" "${pfr:-$T/$n/no.pfr}"
    d=$(proc_dir "$T/$n.rep" leaks_fp); d=${d:-$NONE}
    local rate=1
    if [ "$var" = PERFAGENT_MALLOC_RATE ]; then
        rate=$def
        expect_eq "$n.sampled_mode" "$(grep -c '^mode:      sampled (malloc_rate 524288)' "$d/summary.txt" 2>&1)" 1
        expect_eq "$n.estimates" "$(grep -c '^mode: sampled (malloc_rate 524288): bytes and objects are estimates$' "$d/leaks.txt" 2>&1)" 1
    else
        check_site "$n.exact_site_b" "$d/leaks.json" leak_site_b "12800 50"
        expect_eq "$n.exact_total" "$($PYQ total "$d/leaks.json" 2>&1)" "163472 168"
    fi
    expect_eq "$n.settings" "$(sed -n 's/^agent: .*, unwinder \([a-z]*\), max_frames \([0-9]*\), .*/\1 \2/p; s/^mode: .*(malloc_rate \([0-9]*\)).*/\1/p' "$d/summary.txt" 2>&1 | tr '\n' ' ')" \
        "cfi 64 $rate " "unwinder, max_frames, malloc_rate in summary.txt"
}
check_bad bad_rate PERFAGENT_MALLOC_RATE banana 524288
check_bad bad_unwind PERFAGENT_UNWIND sideways cfi
check_bad bad_frames PERFAGENT_MAX_FRAMES -7 64
check_bad bad_buffer PERFAGENT_BUFFER_KB 12abc 4096

# ---- a static binary: LD_PRELOAD does not apply; it must simply run
run base_st "$W/static_hello"
mkdir -p "$T/st"
(cd "$T/st" && run st env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 "$W/static_hello")
same_output static.stdout_and_status base_st st
expect_eq static.no_file "$(ls -A "$T/st" | wc -l)" 0 "files in the cwd (the agent is not loaded)"

# ---- an output that cannot be written: one clear line, program unaffected
: >"$T/notadir"
run unw env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/notadir/x.pfr" "$W/leaks_fp"
same_output unwritable.stdout_and_status base_lk unw
if [ "$(nlines "$T/unw.err")" = 1 ] && grep -q "notadir" "$T/unw.err"; then ok unwritable.one_line; else
    fail unwritable.one_line "want one stderr line naming the path; got: $(head -c 400 "$T/unw.err" | tr '\n' '|')"; fi
run full env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT=/dev/full "$W/leaks_fp"
same_output dev_full.stdout_and_status base_lk full
if [ "$(nlines "$T/full.err")" = 1 ] && grep -q "/dev/full" "$T/full.err"; then ok dev_full.one_line; else
    fail dev_full.one_line "want one stderr line naming /dev/full; got: $(head -c 400 "$T/full.err" | tr '\n' '|')"; fi

# The exit status reaches Goodbye whether the program returns it from main()
# (glibc's internal exit call: seen through the __libc_start_main wrapper),
# calls exit(3) or _exit(2) (churn's EXIT argument: 3, x5, _6).  The
# wrapper's frame must not show in stacks.
for e in main_return:3:3 exit_call:x5:5 underscore_exit:_6:6; do
    IFS=: read -r name arg code <<<"$e"
    run "ex_$name" env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/ex_$name.pfr" \
        "$W/churn" 2 100 0 1 "$arg"
    expect_eq "exit_code.$name.status" "$(rc_of "ex_$name")" "$code"
    report "exit_code.$name.report" "$T/ex_$name.rep" "$T/ex_$name.pfr"
    d=$(proc_dir "$T/ex_$name.rep" churn); d=${d:-$NONE}
    expect_eq "exit_code.$name.goodbye" "$($CK sum "$d/summary.txt" exit_code 2>&1)" "$code"
    expect_eq "exit_code.$name.no_agent_frames" "$($PYQ agentframes "$d/leaks.json" 2>&1)" 0
done
# ---- a device as the output: PERFAGENT_OUTPUT=/dev/null is one sink for
# every process; fork_mt's 3 children once each made a regular file
# /dev/null.<pid> (or /dev/null.N) in /dev.
before=$(ls -d /dev/null.* 2>/dev/null | wc -l)
run devnull env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT=/dev/null "$W/fork_mt"
expect_eq devnull.status "$(rc_of devnull)" 0
expect_eq devnull.no_files_in_dev "$(ls -d /dev/null.* 2>/dev/null | wc -l)" "$before" "files named /dev/null.* after the run"
expect_eq devnull.still_a_device "$(stat -c %F /dev/null)" "character special file"

# ---- an execve that fails while another thread allocates (exec_fail_mt):
# recording stops for the exec and resumes on a new stream (FILE.1); the
# threads that ran on must start it with sync rows, or the collector skips
# their rows until the next one (1024 rows later: all of after_leak's)
run execfail env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/execfail.pfr" "$W/exec_fail_mt"
expect_eq execfail.output "$(out_of execfail)" "exec_errno=2 churned=more"
report execfail.report "$T/execfail.rep" "$T"/execfail.pfr*
d=$(ls -d "$T"/execfail.rep/*-2 2>/dev/null | head -1); d=${d:-$NONE}
check_site execfail.after_leak "$d/leaks.json" after_leak "100000 100"
expect_eq execfail.none_skipped "$(grep -c 'rows skipped before' "$d/summary.txt" 2>&1)" 0 \
    "$(grep 'rows skipped' "$d/summary.txt" 2>&1)"
finish
