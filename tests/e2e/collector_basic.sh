#!/usr/bin/env bash
# End-to-end checks of perfagent-collector and `perfagent report`/`run`, fed
# with hand-made streams (tests/e2e/lib/pfstream.py), so they need no agent.
# Every good stream leaks exactly 200 bytes in 2 objects (3 x 100 allocated
# at stack 1, one freed), see pfstream.py.  Prints "ok NAME" / "FAIL NAME:
# why" per check.
. "$(dirname "$0")/common.bash"
cd "$PA_ROOT"
PY=(python3 "$PA_ROOT/tests/e2e/lib/pfstream.py")
COLL=$COLLECTOR
CLI=$PERFAGENT
tmp=$T

# wait_for TEST_CMD...: poll up to 5 s
wait_for() {
    for _ in $(seq 100); do "$@" && return 0; sleep 0.05; done
    return 1
}

# leak_totals DIR -> "bytes objects" from DIR/leaks.json ("total" object)
leak_totals() {
    python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["total"]; print(t["bytes"], t["objects"])' \
        "$1/leaks.json" 2>/dev/null
}

# The good stream's one leaked stack (pfstream.py: stack 1, frames leaf
# first; the stream declares no module, so no frame has a name).
STACK1="200 2 [unknown]@0x401234;[unknown]@0x401100;[unknown]@0x400f00"
STACK1_TXT="#1: 200 bytes in 2 objects|[unknown] (0x401234);[unknown] (0x401100);[unknown] (0x400f00)"

# check_leaks NAME DIR: the 200-bytes-in-2-objects stream was recorded in DIR:
# totals, the stack list of leaks.json and leaks.txt (count, bytes, objects,
# frames), and summary.txt's counters (3 allocations of 100 bytes, 1 free).
check_leaks() {
    local got
    got=$(leak_totals "$2")
    if [ "$got" = "200 2" ]; then ok "$1"; else fail "$1" "$2/leaks.json total = '${got:-missing}', want '200 2'"; fi
    expect_eq "$1.json_stacks" "$($PYQ stacklist "$2/leaks.json" 2>&1)" "$STACK1"
    expect_eq "$1.txt_stacks" "$($PYQ txtstacks "$2/leaks.txt" 2>&1)" "$STACK1_TXT"
    expect_eq "$1.txt_leaked_line" "$(grep '^leaked' "$2/leaks.txt" 2>&1)" \
        "leaked (live at end of stream): 200 bytes in 2 objects from 1 stacks"
    expect_eq "$1.summary_counts" "$($PYQ summary "$2/summary.txt" 2>&1)" \
        "allocations=3 bytes=300 frees=1 unknown=0 stale=0 early=0 implied=0 superseded=0"
}

for f in "$COLL" "$CLI"; do
    [ -x "$f" ] || { fail setup "$f not built"; finish; }
done

# --- start a unix collector --------------------------------------------------
"$COLL" --listen "unix:$tmp/s" -o "$tmp/out" 2>"$tmp/coll.log" &
cpid=$!; bg_add "$cpid"
if ! wait_for test -S "$tmp/s"; then
    fail collector_start "no socket after 5 s: $(cat "$tmp/coll.log")"; finish
fi

# (a) the socket file is owner-only
mode=$(stat -c %a "$tmp/s")
[ "$mode" = 600 ] && ok socket_mode_0600 || fail socket_mode_0600 "mode $mode"

# (b) two agents at once, each sending its stream in small pieces
"${PY[@]}" --connect "unix:$tmp/s" --pid 4242 --exe '/opt/app "one"\x' --arg app1 --arg=-v \
    --hold 0.3 --chunk 7 --out "$tmp/a.pfr" &
a=$!
"${PY[@]}" --connect "unix:$tmp/s" --pid 4243 --exe /usr/bin/app2 --arg app2 --arg 'x y' \
    --hold 0.3 --chunk 5 --out "$tmp/b.pfr" &
b=$!
wait $a; ra=$?; wait $b; rb=$?
[ $ra -eq 0 ] && [ $rb -eq 0 ] || fail two_agents "client exit status $ra/$rb"

index_has() { python3 - "$1/index.json" "$2" <<'EOF' 2>/dev/null
import json, sys
want = sorted(int(p) for p in sys.argv[2].split())
got = [p["pid"] for p in json.load(open(sys.argv[1]))["processes"]]
sys.exit(0 if got == want else 1)
EOF
}
if wait_for index_has "$tmp/out" "4242 4243"; then
    ok two_agents_index
else
    fail two_agents_index "index.json: $(cat "$tmp/out/index.json" 2>&1)"
fi
python3 - "$tmp/out/index.json" <<'EOF' && ok index_exe_argv || fail index_exe_argv "$(cat "$tmp/out/index.json")"
import json, sys
procs = {p["pid"]: p for p in json.load(open(sys.argv[1]))["processes"]}
a, b = procs[4242], procs[4243]
assert a["exe"] == '/opt/app "one"\\x' and a["argv"] == ["app1", "-v"] and a["dir"] == "4242", a
assert b["exe"] == "/usr/bin/app2" and b["argv"] == ["app2", "x y"] and b["dir"] == "4243", b
assert a["ppid"] == 1 and b["ppid"] == 1
EOF
check_leaks leaks_agent_4242 "$tmp/out/4242"
check_leaks leaks_agent_4243 "$tmp/out/4243"

# (c) two malformed agents next to a slow good one
"${PY[@]}" --connect "unix:$tmp/s" --pid 4244 --hold 1 --arg good &
g=$!
"${PY[@]}" --connect "unix:$tmp/s" --mode garbage --expect-close >"$tmp/garbage.out" &
x=$!
"${PY[@]}" --connect "unix:$tmp/s" --mode oversized --expect-close >"$tmp/big.out" &
y=$!
wait $x $y $g
for m in garbage:$x big:$y; do
    name=${m%%:*} pid=${m##*:}
    n=$(grep -c "unix:pid=$pid[^0-9]" "$tmp/coll.log")
    if [ "$(cat "$tmp/$name.out")" != closed ]; then
        fail "malformed_${name}_closed" "collector kept the connection open"
    elif [ "$n" -ne 1 ]; then
        fail "malformed_${name}_closed" "$n log lines name unix:pid=$pid, want 1: $(cat "$tmp/coll.log")"
    else
        ok "malformed_${name}_closed"
    fi
done
wait_for test -f "$tmp/out/4244/leaks.json"
check_leaks good_agent_beside_malformed "$tmp/out/4244"
if kill -0 "$cpid" 2>/dev/null; then ok collector_survives_faults; else fail collector_survives_faults "collector died"; fi

# (d) `perfagent report` of the same bytes gives the same files
"$CLI" report "$tmp/a.pfr" "$tmp/b.pfr" -o "$tmp/rep" >"$tmp/report.out" 2>"$tmp/report.err"
rc=$?
if [ $rc -ne 0 ]; then
    fail report_exit "exit $rc: $(cat "$tmp/report.err")"
else
    diffs=
    for p in 4242 4243; do
        for f in leaks.json leaks.txt alloc.folded inuse.folded summary.txt; do
            cmp -s "$tmp/out/$p/$f" "$tmp/rep/$p/$f" || diffs="$diffs $p/$f"
        done
    done
    [ -z "$diffs" ] && ok report_identical_to_live || fail report_identical_to_live "differ:$diffs"
    cmp -s "$tmp/rep/4242/summary.txt" <(head -c "$(stat -c %s "$tmp/rep/4242/summary.txt")" "$tmp/report.out") \
        && ok report_prints_summary || fail report_prints_summary "stdout: $(head -5 "$tmp/report.out")"
    index_has "$tmp/rep" "4242 4243" && ok report_index || fail report_index "$(cat "$tmp/rep/index.json")"
fi

# a truncated file: one stderr line naming it and an offset, exit 1, reports kept
size=$(stat -c %s "$tmp/a.pfr")
head -c $((size - 3)) "$tmp/a.pfr" >"$tmp/cut.pfr"
"$CLI" report "$tmp/cut.pfr" -o "$tmp/rep2" >/dev/null 2>"$tmp/cut.err"
rc=$?
lines=$(grep -c "cut.pfr" "$tmp/cut.err")
if [ $rc -ne 1 ]; then
    fail report_truncated "exit $rc, want 1"
elif [ "$lines" -ne 1 ] || ! grep -q "cut.pfr.*offset" "$tmp/cut.err"; then
    fail report_truncated "stderr: $(cat "$tmp/cut.err")"
else
    check_leaks report_truncated "$tmp/rep2/4242"
fi

# another uid is refused (SO_PEERCRED), even when the file mode would let it in
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && [ -x /usr/bin/python3 ]; then
    chmod 711 "$tmp"; chmod 666 "$tmp/s"
    cp tests/e2e/lib/pfstream.py "$tmp/pfstream.py"; chmod 644 "$tmp/pfstream.py"
    res=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
        /usr/bin/python3 "$tmp/pfstream.py" --connect "unix:$tmp/s" --pid 4249 --expect-close 2>&1)
    chmod 700 "$tmp"; chmod 600 "$tmp/s"
    if [ "$res" = closed ] && grep -q "refused: uid 65534" "$tmp/coll.log" && [ ! -e "$tmp/out/4249" ]; then
        ok other_uid_refused
    else
        fail other_uid_refused "client: $res; log: $(grep 65534 "$tmp/coll.log")"
    fi
fi

# (f) SIGTERM: a stream still open is finished with what arrived; exit 0
"${PY[@]}" --connect "unix:$tmp/s" --pid 4245 --mode open --ready "$tmp/open.ready" &
opid=$!; bg_add "$opid"
wait_for test -f "$tmp/open.ready"
kill -TERM "$cpid"
wait "$cpid"; rc=$?
if [ $rc -ne 0 ]; then
    fail sigterm_exit_0 "exit $rc"
else
    ok sigterm_exit_0
    check_leaks sigterm_keeps_open_stream "$tmp/out/4245"
    [ ! -e "$tmp/s" ] && ok socket_unlinked || fail socket_unlinked "$tmp/s still there"
fi
kill "$opid" 2>/dev/null; wait "$opid" 2>/dev/null

# (e) tcp on loopback, ephemeral port
"$COLL" --listen tcp::0 -o "$tmp/tcpout" 2>"$tmp/tcp.log" &
tpid=$!; bg_add "$tpid"
wait_for grep -q "listening on tcp:" "$tmp/tcp.log"
addr=$(sed -n 's/.*listening on \(tcp:[^,]*\),.*/\1/p' "$tmp/tcp.log")
case "$addr" in
tcp:127.0.0.1:[1-9]*)
    "${PY[@]}" --connect "$addr" --pid 4246
    wait_for test -f "$tmp/tcpout/4246/leaks.json"
    check_leaks tcp_loopback_ephemeral "$tmp/tcpout/4246"
    grep -q "tcp:127.0.0.1:[0-9]*: pid 4246" "$tmp/tcp.log" \
        && ok tcp_peer_named || fail tcp_peer_named "$(cat "$tmp/tcp.log")" ;;
*) fail tcp_loopback_ephemeral "listen address '$addr': $(cat "$tmp/tcp.log")" ;;
esac
kill -INT "$tpid"; wait "$tpid"; rc=$?
[ $rc -eq 0 ] && ok sigint_exit_0 || fail sigint_exit_0 "exit $rc"

# refusing to replace a file that is not a socket; usage errors
echo keep >"$tmp/notasock"
"$COLL" --listen "unix:$tmp/notasock" -o "$tmp/x" 2>"$tmp/nas.err"; rc=$?
if [ $rc -ne 0 ] && [ "$(cat "$tmp/notasock")" = keep ] && grep -q "not a socket" "$tmp/nas.err"; then
    ok refuse_non_socket
else
    fail refuse_non_socket "exit $rc: $(cat "$tmp/nas.err")"
fi
"$COLL" -o "$tmp/x" 2>/dev/null; r1=$?
"$CLI" frobnicate 2>/dev/null; r2=$?
"$CLI" run 2>/dev/null; r3=$?
[ "$r1$r2$r3" = 222 ] && ok usage_exit_2 || fail usage_exit_2 "got $r1 $r2 $r3"

# `perfagent run --collector-only`: the embedded collector, exit status passed through
PERFAGENT_LIB=/nonexistent "$CLI" run --collector-only -o "$tmp/runout" -- \
    "${PY[@]}" --connect env --pid 4247 --exit 3 2>"$tmp/run.err"
rc=$?
if [ $rc -ne 3 ]; then
    fail run_exit_status "exit $rc, want 3: $(cat "$tmp/run.err")"
else
    ok run_exit_status
    check_leaks run_embedded_collector "$tmp/runout/4247"
    grep -q "runout/4247" "$tmp/run.err" && ok run_prints_paths || fail run_prints_paths "$(cat "$tmp/run.err")"
fi
"$CLI" run --collector-only -o "$tmp/runout2" -- /nonexistent/cmd 2>"$tmp/run127.err"
rc=$?
[ $rc -eq 127 ] && [ "$(wc -l <"$tmp/run127.err")" -eq 1 ] && ok run_not_found_127 \
    || fail run_not_found_127 "exit $rc: $(cat "$tmp/run127.err")"
"$CLI" run --collector-only -o "$tmp/runout3" -- sh -c 'kill -TERM $$' 2>/dev/null
rc=$?
[ $rc -eq 143 ] && ok run_killed_128_plus_sig || fail run_killed_128_plus_sig "exit $rc, want 143"
# SIGTERM sent to `perfagent run` reaches the command
"$CLI" run --collector-only -o "$tmp/runout4" -- sleep 30 2>/dev/null &
rp=$!; bg_add "$rp"
sleep 0.5
kill -TERM "$rp"
wait "$rp"; rc=$?
[ $rc -eq 143 ] && ok run_forwards_sigterm || fail run_forwards_sigterm "exit $rc, want 143"
finish
