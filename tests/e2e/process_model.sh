#!/usr/bin/env bash
# Processes and threads: fork while threads allocate (fork_mt), thread
# churn, dlopen/dlclose, exec following, PERFAGENT_DISABLE, bad settings,
# a static binary, an output that cannot be written.
. "$(dirname "$0")/common.bash"
require_product

# ---- fork_mt: parent and every child in index.json with their own numbers
check_fork_mt() { # PREFIX RUN-NAME REPORT-DIR
    local p=$1 n=$2 dir=$3 parent kids k line d
    if [ "$(rc_of "$n")" != 0 ]; then
        fail "$p.exit_status" "fork_mt exited $(rc_of "$n") (124 = timeout/deadlock); stderr: $(head -c 300 "$T/$n.err" | tr '\n' '|')"
        return
    fi
    ok "$p.exit_status"
    parent=$(sed -n 's/^fork_mt: parent=\([0-9]*\)$/\1/p' "$T/$n.out")
    kids=$(sed -n 's/^fork_mt: child=\([0-9]*\) status=0$/\1/p' "$T/$n.out")
    expect_eq "$p.children_ran" "$(echo $kids | wc -w)" 3
    [ -f "$dir/index.json" ] || { fail "$p.index" "no $dir/index.json"; return; }
    line=$(procs "$dir" | awk -v p="$parent" '$1 == p')
    if [ -z "$line" ]; then
        fail "$p.parent_in_index" "pid $parent not in index.json: $(procs "$dir" | tr '\n' '|')"
    else
        ok "$p.parent_in_index"
        d=$(echo "$line" | awk '{print $4}')
        check_site "$p.parent.parent_leak" "$d/leaks.json" parent_leak "150000 30"
        check_none "$p.parent.no_child_leak" "$d/leaks.json" child_leak
        check_none "$p.parent.workers_freed" "$d/leaks.json" worker_alloc
    fi
    local i=0
    for k in $kids; do
        i=$((i + 1))
        line=$(procs "$dir" | awk -v p="$k" '$1 == p')
        if [ -z "$line" ]; then
            fail "$p.child$i.in_index" "child pid $k not in index.json: $(procs "$dir" | tr '\n' '|')"
            continue
        fi
        ok "$p.child$i.in_index"
        expect_eq "$p.child$i.ppid" "$(echo "$line" | awk '{print $2}')" "$parent"
        d=$(echo "$line" | awk '{print $4}')
        check_site "$p.child$i.child_leak" "$d/leaks.json" child_leak "60000 20"
        expect_eq "$p.child$i.total" "$($PYQ total "$d/leaks.json")" "60000 20" "nothing but child_leak (no parent events copied into the child)"
    done
}

mkdir -p "$T/fm"
run fm env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/fm/out.pfr" "$W/fork_mt"
kids=$(sed -n 's/^fork_mt: child=\([0-9]*\).*/\1/p' "$T/fm.out")
missing=
for k in $kids; do [ -s "$T/fm/out.pfr.$k" ] || missing="$missing out.pfr.$k"; done
[ -s "$T/fm/out.pfr" ] || missing="$missing out.pfr"
if [ -z "$missing" ] && [ -n "$kids" ]; then ok fork.file.child_files; else
    fail fork.file.child_files "missing$missing; have: $(ls "$T/fm" | tr '\n' ' ')"; fi
if ls "$T"/fm/out.pfr* >/dev/null 2>&1 && report fork.file.report "$T/fm.rep" "$T"/fm/out.pfr*; then
    check_fork_mt fork.file fm "$T/fm.rep"
fi

run fmrun "$PERFAGENT" run -o "$T/fmrun.rep" --malloc-rate 1 -- "$W/fork_mt"
check_fork_mt fork.run fmrun "$T/fmrun.rep"

# ---- thread_churn: 200 threads, 8 at a time, exact totals.  Three runs:
# thread start/exit races show up only in some runs.
run base_tc "$W/thread_churn"
for i in 1 2 3; do
    if record tc$i thread_churn "$AGENT" "$W/thread_churn"; then
        check_site threads$i.leak_a "$RD/leaks.json" thread_leak_a "200000 200"
        check_site threads$i.leak_b "$RD/leaks.json" thread_leak_b "4800 200"
        check_none threads$i.scratch_freed "$RD/leaks.json" thread_scratch
        check_none threads$i.cross_thread_free "$RD/leaks.json" handoff_alloc
        check_frames threads$i.frames "$RD/leaks.json" thread_leak_a "thread_leak_a;thread_main"
    fi
    same_output threads$i.stdout_and_status base_tc tc$i
done

# ---- dlopen_loop: stacks in a dlclose'd library resolve to its functions
run base_dl "$W/dlopen_loop"
if record dl dlopen_loop "$AGENT" "$W/dlopen_loop"; then
    lj=$RD/leaks.json
    check_site dlopen.leak "$lj" dlleak_make_block "66600 200"
    check_frames dlopen.frames "$lj" dlleak_make_block "dlleak_make_block;call_into_plugin;main"
    check_none dlopen.scratch_freed "$lj" dlleak_scratch
    mod=$(python3 -c '
import json, sys
for st in json.load(open(sys.argv[1]))["stacks"]:
    if st["frames"] and st["frames"][0].get("function") == "dlleak_make_block":
        print((st["frames"][0].get("module") or "").split("/")[-1]); break' "$lj" 2>&1)
    expect_eq dlopen.module "$mod" libdlleak.so
fi
same_output dlopen.stdout_and_status base_dl dl

# ---- exec following: a shell script runs leaks_fp (fork+exec) then execs allocfns
cat >"$T/script.sh" <<'SH'
#!/bin/sh
"$1/leaks_fp"
echo "child rc=$?"
exec "$1/allocfns"
SH
run base_ex /bin/sh "$T/script.sh" "$W"
check_exec_tree() { # PREFIX REPORT-DIR FOLLOW(1|0)
    local p=$1 dir=$2 follow=$3 shells d
    shells=$(procs "$dir" | awk '$3 == "sh" || $3 == "dash" || $3 == "bash"' | wc -l)
    if [ "$shells" -ge 1 ]; then ok "$p.shell_recorded"; else
        fail "$p.shell_recorded" "no sh/dash process in index.json: $(procs "$dir" | tr '\n' '|')"; fi
    if [ "$follow" = 1 ]; then
        d=$(proc_dir "$dir" leaks_fp)
        if [ -n "$d" ]; then
            ok "$p.child_recorded"
            expect_eq "$p.child_total" "$($PYQ total "$d/leaks.json")" "163472 168"
            check_site "$p.child_site_b" "$d/leaks.json" leak_site_b "12800 50"
        else
            fail "$p.child_recorded" "no leaks_fp process in index.json: $(procs "$dir" | tr '\n' '|')"
        fi
        d=$(proc_dir "$dir" allocfns)
        if [ -n "$d" ]; then
            ok "$p.exec_image_recorded"
            expect_eq "$p.exec_image_total" "$($PYQ total "$d/leaks.json")" "19775 13"
        else
            fail "$p.exec_image_recorded" "no allocfns process (exec'd over the shell) in index.json: $(procs "$dir" | tr '\n' '|')"
        fi
    else
        expect_eq "$p.child_not_recorded" "$(procs "$dir" | awk '$3 == "leaks_fp" || $3 == "allocfns"' | wc -l)" 0 "with PERFAGENT_FOLLOW_EXEC=0"
    fi
}
for follow in 1 0; do
    n=exec$follow
    mkdir -p "$T/$n"
    if [ $follow = 1 ]; then fe=(); else fe=(PERFAGENT_FOLLOW_EXEC=0); fi
    (cd "$T/$n" && run "$n" env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 "${fe[@]}" /bin/sh "$T/script.sh" "$W")
    same_output "exec.follow$follow.stdout_and_status" base_ex "$n"
    if ls "$T/$n"/*.pfr >/dev/null 2>&1 && report "exec.follow$follow.report" "$T/$n.rep" "$T/$n"/*.pfr; then
        check_exec_tree "exec.follow$follow" "$T/$n.rep" $follow
    else
        fail "exec.follow$follow.files" "no .pfr written in $T/$n: $(ls "$T/$n" | tr '\n' ' ')"
    fi
done
run exrun "$PERFAGENT" run -o "$T/exrun.rep" --malloc-rate 1 -- /bin/sh "$T/script.sh" "$W"
same_output exec.run.stdout_and_status base_ex exrun
if [ -f "$T/exrun.rep/index.json" ]; then check_exec_tree exec.run "$T/exrun.rep" 1; else
    fail exec.run.index "no $T/exrun.rep/index.json (exit $(rc_of exrun))"; fi

# ---- PERFAGENT_DISABLE=1: nothing written, nothing said, same output
run base_lk "$W/leaks_fp"
mkdir -p "$T/dis"
(cd "$T/dis" && run dis env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_DISABLE=1 "$W/leaks_fp")
same_output disable.stdout_and_status base_lk dis
expect_eq disable.no_file "$(ls -A "$T/dis" | wc -l)" 0 "files in the cwd"
expect_eq disable.quiet "$(head -c 200 "$T/dis.err")" "" "stderr"

# ---- bad values: one warning line each, the default is used
check_bad() { # NAME VAR VALUE EXACT(1|0)
    local n=$1 var=$2 val=$3 exact=$4 others warn pfr
    mkdir -p "$T/$n"
    if [ "$var" = PERFAGENT_MALLOC_RATE ]; then
        (cd "$T/$n" && run "$n" env LD_PRELOAD="$AGENT" "$var=$val" "$W/leaks_fp")
    else
        (cd "$T/$n" && run "$n" env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 "$var=$val" "$W/leaks_fp")
    fi
    same_output "$n.stdout_and_status" base_lk "$n"
    # the one exit line names the .pfr; every other line is a warning
    others=$(grep -v '\.pfr' "$T/$n.err" | wc -l)
    warn=$(grep -c -- "$var" "$T/$n.err")
    if [ "$others" = 1 ] && [ "$warn" = 1 ]; then ok "$n.one_warning"; else
        fail "$n.one_warning" "want exactly one warning line naming $var; stderr: $(head -c 400 "$T/$n.err" | tr '\n' '|')"; fi
    pfr=$(ls "$T/$n"/*.pfr 2>/dev/null | head -1)
    if [ -z "$pfr" ]; then fail "$n.still_records" "no .pfr written"; return; fi
    report "$n.report" "$T/$n.rep" "$pfr" || return
    local d
    d=$(proc_dir "$T/$n.rep" leaks_fp)
    if [ "$exact" = 1 ]; then
        check_site "$n.exact_site_b" "$d/leaks.json" leak_site_b "12800 50"
        expect_eq "$n.exact_total" "$($PYQ total "$d/leaks.json")" "163472 168"
    else
        local rate
        rate=$($PYQ get "$d/leaks.json" malloc_rate)
        if [[ $rate =~ ^[1-9][0-9]*$ ]]; then ok "$n.default_rate"; else
            fail "$n.default_rate" "malloc_rate in leaks.json is '$rate', want the positive default"; fi
        if [ "$($PYQ folded "$d/alloc.folded")" -gt 0 ] 2>/dev/null; then ok "$n.still_records_heap"; else
            fail "$n.still_records_heap" "alloc.folded is empty"; fi
    fi
}
check_bad bad_rate PERFAGENT_MALLOC_RATE banana 0
check_bad bad_unwind PERFAGENT_UNWIND sideways 1
check_bad bad_frames PERFAGENT_MAX_FRAMES -7 1
check_bad bad_buffer PERFAGENT_BUFFER_KB 12abc 1

# ---- a static binary: LD_PRELOAD does not apply; it must simply run
run base_st "$W/static_hello"
mkdir -p "$T/st"
(cd "$T/st" && run st env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 "$W/static_hello")
same_output static.stdout_and_status base_st st

# ---- an output that cannot be written: one clear line, program unaffected
: >"$T/notadir"
run unw env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/notadir/x.pfr" "$W/leaks_fp"
same_output unwritable.stdout_and_status base_lk unw
if [ "$(nlines "$T/unw.err")" = 1 ] && grep -q "notadir" "$T/unw.err"; then ok unwritable.one_line; else
    fail unwritable.one_line "want one stderr line naming the path; got: $(head -c 400 "$T/unw.err" | tr '\n' '|')"; fi
run full env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT=/dev/full "$W/leaks_fp"
same_output dev_full.stdout_and_status base_lk full

# The exit status reaches Goodbye whether the program returns it from main()
# (glibc's internal exit call: seen through the __libc_start_main wrapper),
# calls exit(3) or _exit(2).  The wrapper's frame must not show in stacks.
run ret3 env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/ret3.pfr" \
    "$W/churn" 2 100 0 1 3
expect_eq exit_code.main_return.status "$(rc_of ret3)" 3
if report exit_code.report "$T/ret3.rep" "$T/ret3.pfr"; then
    d=$(proc_dir "$T/ret3.rep" churn)
    expect_eq exit_code.main_return.goodbye \
        "$(sed -n 's/^stream: *ended cleanly (Goodbye, exit code \(-*[0-9]*\)).*/\1/p' "$d/summary.txt")" 3
    expect_eq exit_code.no_agent_frames "$($PYQ agentframes "$d/leaks.json")" 0
fi
finish
