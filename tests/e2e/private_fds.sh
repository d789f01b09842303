#!/usr/bin/env bash
# The sender's own fd table (agent/fdtable.c, issue 15): where it is safe
# the agent's thread runs on a table of its own, made empty as it starts,
# so the program's fd syscalls keep the kernel's single-user fast path and
# the program's table holds nothing of the agent's.  Checked by reading
# /proc/PID/task/TID/fd of the program's thread and of the agent's
# (perfagent-send):
#  - by default (CPU sampling off or on) the output is in the sender's
#    table and not in the program's, and the sender holds none of the
#    program's fds (its stdout pipe); with CPU sampling the perf events are
#    in the program's table; PERFAGENT_PRIVATE_FDS=0 shares the table (the
#    output is in the program's) -- the check can fail;
#  - the sender's log lines reach the program's fd 2 as it is when they are
#    written (python dup2s a file over its stderr, then the collector dies);
#  - where the kernel refuses close_range's unshare, pidfd_open or
#    pidfd_getfd (tests/workloads/seccomp_deny.c), the sender stays on the
#    program's table, numbered as with PERFAGENT_PRIVATE_FDS=0, and records;
#    with no memory for its encoder it says so once, records nothing and
#    leaves the program be;
#  - main() ending with pthread_exit hands the sender over to a thread on
#    the program's table (its fds are the worker's), so the process's exit
#    on the agent's thread still has the program's fds; the stream goes on.
. "$(dirname "$0")/common.bash"
require_product "$COLLECTOR" "$W/pthread_exit" "$W/seccomp_deny"

# sender_of PID : the tid of the perfagent-send thread (waits up to 5 s)
sender_of() {
    local i t
    for ((i = 0; i < 100; i++)); do
        for t in /proc/"$1"/task/*; do
            if [ "$(cat "$t/comm" 2>/dev/null)" = perfagent-send ]; then
                basename "$t"
                return 0
            fi
        done
        sleep 0.05
    done
}
# fds PID TID : "NUMBER TARGET" per fd of the thread's table, sorted
fds() {
    local f
    for f in /proc/"$1"/task/"$2"/fd/*; do
        [ -e "$f" ] || [ -L "$f" ] || continue
        echo "$(basename "$f") $(readlink "$f")"
    done | sort -n
}
# has PATTERN : how many lines of stdin match (fixed string)
has() { grep -cF -- "$1"; }

mkfifo "$T/pipe"
# table NAME ENV... : `sleep 3` under the agent, its stdout a pipe; leaves
# the program's and the sender's tables in $T/NAME.prog and $T/NAME.send.
# With PRE set (an array), the whole command runs under it.
PRE=()
table() {
    local n=$1 pid tid; shift
    cat "$T/pipe" >/dev/null &
    ${PRE[@]+"${PRE[@]}"} env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/$n.pfr" "$@" sleep 3 >"$T/pipe" 2>"$T/$n.err" &
    pid=$!
    tid=$(sender_of "$pid")
    fds "$pid" "$pid" >"$T/$n.prog"
    if [ -n "$tid" ]; then fds "$pid" "$tid" >"$T/$n.send"; else echo "no perfagent-send thread" >"$T/$n.send"; fi
    wait "$pid"
    echo $? >"$T/$n.rc"
}
table priv
table shared PERFAGENT_PRIVATE_FDS=0
table cpu PERFAGENT_CPU_HZ=99
# priv, cpu: output in the sender's table only; no pipe of the program's
# there; cpu: the perf events (anon_inode:[perf_event]) in the program's
for n in priv cpu; do
    expect_eq $n.sender_table "$(has "$T/$n.pfr" <"$T/$n.send") $(has "$T/pipe" <"$T/$n.send") $(has perf_event <"$T/$n.send")" "1 0 0" \
        "the sender's table: $(tr '\n' '|' <"$T/$n.send")"
done
expect_eq cpu.program_table "$(has "$T/cpu.pfr" <"$T/cpu.prog") $(has perf_event <"$T/cpu.prog" | awk '{print ($1 > 0)}')" "0 1" \
    "the program's table: $(tr '\n' '|' <"$T/cpu.prog")"
expect_eq priv.program_table "$(has "$T/priv.pfr" <"$T/priv.prog") $(grep -cx "1 $T/pipe" "$T/priv.prog")" "0 1" \
    "the program's table: $(tr '\n' '|' <"$T/priv.prog")"
expect_eq priv.run "$(rc_of priv) $(wc -c <"$T/priv.err")" "0 0" "stderr: $(head -c 300 "$T/priv.err")"
# shared (PERFAGENT_PRIVATE_FDS=0): one table, with the output in it
expect_eq shared.one_table "$(has "$T/shared.pfr" <"$T/shared.prog") $(cmp -s "$T/shared.prog" "$T/shared.send" && echo same)" "1 same" \
    "program: $(tr '\n' '|' <"$T/shared.prog"); sender: $(tr '\n' '|' <"$T/shared.send")"

# every stream complete
for n in priv shared cpu; do
    timeout -k 5 "$TO" "$PERFAGENT" report "$T/$n.pfr" -o "$T/$n.rep" >/dev/null 2>&1
    expect_eq "$n.stream" "$(sed -n 's/^stream: *//p' "$(proc_dir "$T/$n.rep" sleep)/summary.txt" 2>&1)" \
        "ended cleanly (Goodbye, exit code 0)"
done

# Where the kernel refuses what the private table needs (a seccomp filter
# here, as a container profile or an older kernel would), the sender stays
# on the program's table, says why at debug level, and records as before.
for c in "range close_range/EPERM close_range(CLOSE_RANGE_UNSHARE) refused" \
    "getfd pidfd_getfd/EPERM pidfd_getfd refused" "open pidfd_open/ENOSYS pidfd_open refused"; do
    read -r n rule why <<<"$c"
    PRE=("$W/seccomp_deny" "$rule" --)
    table "sc_$n" PERFAGENT_LOG=debug
    PRE=()
    expect_eq "sc_$n.fallback" "$(rc_of "sc_$n") $(has "shares the program's fd table: $why" <"$T/sc_$n.err") $(has "fd table of its own" <"$T/sc_$n.err")" "0 1 0" \
        "the agent's lines on its fd table: $(grep -F 'fd table' "$T/sc_$n.err" | head -4 | tr '\n' '|')"
    expect_eq "sc_$n.one_table" "$(has "$T/sc_$n.pfr" <"$T/sc_$n.prog") $(cmp -s "$T/sc_$n.prog" "$T/sc_$n.send" && echo same)" "1 same" \
        "program: $(tr '\n' '|' <"$T/sc_$n.prog"); sender: $(tr '\n' '|' <"$T/sc_$n.send")"
    # the program's fds as numbered with PERFAGENT_PRIVATE_FDS=0: nothing
    # opened in its table on the belief that the table was the sender's own
    expect_eq "sc_$n.same_fds" "$(cut -d' ' -f1 "$T/sc_$n.prog" | tr '\n' ' ')" "$(cut -d' ' -f1 "$T/shared.prog" | tr '\n' ' ')" \
        "$(tr '\n' '|' <"$T/sc_$n.prog")"
    timeout -k 5 "$TO" "$PERFAGENT" report "$T/sc_$n.pfr" -o "$T/sc_$n.rep" >/dev/null 2>&1
    expect_eq "sc_$n.stream" "$(sed -n 's/^stream: *//p' "$(proc_dir "$T/sc_$n.rep" sleep)/summary.txt" 2>&1)" \
        "ended cleanly (Goodbye, exit code 0)"
done

# No memory for the sender's encoder (the filter fails that one mmap, of
# PA_ENC_HEAD + PA_WIRE_MAX_FRAME bytes): one line, recording off, the
# program unaffected, nothing written.
frame=$(sed -n 's/^#define PA_WIRE_MAX_FRAME (\([0-9]*\)u << \([0-9]*\)).*/\1 \2/p' "$PA_ROOT/proto/wire.h")
encbuf=$(((${frame% *} << ${frame#* }) + 32))
"$W/seccomp_deny" "mmap:1=$encbuf/ENOMEM" -- env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 \
    PERFAGENT_OUTPUT="$T/oom.pfr" sh -c 'echo one; echo two' >"$T/oom.out" 2>"$T/oom.err" </dev/null
expect_eq enc_oom "$? $(tr '\n' ' ' <"$T/oom.out")$(grep -c . "$T/oom.err") $(has "out of memory for the sender; recording off" <"$T/oom.err") $([ -e "$T/oom.pfr" ] && echo written)" \
    "0 one two 1 1 " "frame '$frame' -> $encbuf; stderr: $(head -c 400 "$T/oom.err" | tr '\n' '|')"

# The sender's log line goes to the program's fd 2 of the moment.
"$COLLECTOR" --listen "unix:$T/c.sock" -o "$T/c.rep" >"$T/c.out" 2>"$T/c.err" </dev/null &
CPID=$!
wait_for_socket "$T/c.sock" 10 || fail log.collector "no socket $T/c.sock"
cat >"$T/log.py" <<'EOF'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.dup2(fd, 2)
print("ready", flush=True)
time.sleep(3)   # the test kills the collector meanwhile
print("done", flush=True)
EOF
env LD_PRELOAD="$AGENT" PERFAGENT_COLLECTOR="unix:$T/c.sock" python3 "$T/log.py" "$T/log.newerr" \
    >"$T/log.out" 2>"$T/log.err" </dev/null &
LPID=$!
for ((i = 0; i < 100; i++)); do grep -q ready "$T/log.out" 2>/dev/null && break; sleep 0.05; done
{ kill -9 "$CPID"; wait "$CPID"; } 2>/dev/null
wait "$LPID"
expect_eq log.status "$? $(tr '\n' ' ' <"$T/log.out")" "0 ready done "
expect_eq log.line "$(has "lost the collector at unix:$T/c.sock" <"$T/log.newerr") $(wc -c <"$T/log.err")" "1 0" \
    "the program's stderr after its dup2: $(head -c 300 "$T/log.newerr" | tr '\n' '|'); before: $(head -c 300 "$T/log.err" | tr '\n' '|')"

# main() calls pthread_exit; a worker sleeps: the sender now shares the
# worker's table (its fds, with the output among them).
env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/pe.pfr" "$W/pthread_exit" sleep \
    >"$T/pe.out" 2>"$T/pe.err" </dev/null &
PID=$!
for ((i = 0; i < 100; i++)); do grep -q ready "$T/pe.out" 2>/dev/null && break; sleep 0.05; done
sleep 0.2
TID=$(sender_of "$PID")
WORKER=$(for t in /proc/"$PID"/task/*; do t=${t##*/}; [ "$t" != "$PID" ] && [ "$t" != "$TID" ] && echo "$t"; done | head -1)
fds "$PID" "$WORKER" >"$T/pe.worker"
fds "$PID" "$TID" >"$T/pe.send"
expect_eq pe.one_table "$(has "$T/pe.pfr" <"$T/pe.worker") $(cmp -s "$T/pe.worker" "$T/pe.send" && echo same)" "1 same" \
    "worker $WORKER: $(tr '\n' '|' <"$T/pe.worker"); sender $TID: $(tr '\n' '|' <"$T/pe.send")"
kill -TERM "$PID"
wait "$PID"
expect_eq pe.status "$?" 143
timeout -k 5 "$TO" "$PERFAGENT" report "$T/pe.pfr" -o "$T/pe.rep" >/dev/null 2>&1
d=$(proc_dir "$T/pe.rep" pthread_exit)
# main_leak 3 x 999 and the sleeper's 5 x 7001, in one stream across the handover
check_site pe.main_leak "$d/leaks.json" main_leak "2997 3"
check_site pe.worker_leak "$d/leaks.json" worker_leak "35005 5"
expect_eq pe.stream "$(grep -c 'output reopened 1 times; gap: 0 frames lost, 0 heap rows dropped' "$d/summary.txt" 2>&1)" 1 \
    "$(grep -E '^(stream|output)' "$d/summary.txt" 2>&1 | tr '\n' '|')"
finish
