#!/usr/bin/env bash
# Bad input from the environment (issue 16): every PERFAGENT_* variable the
# agent reads, given junk one at a time ("abc", "-1", "1e99", "", " 5", "5x",
# 5000 bytes, "0x10", 20 digits, non-ASCII bytes, a newline) on a small real
# program (sort).  For each variable, over all the values:
#   .run     sort's stdout and exit status are the plain run's, every time
#   .lines   the agent's stderr lines per value, exactly: 1 for a bad value,
#            0 for an empty one (empty = unset) and for a value that is good
#            (any path is a good PERFAGENT_OUTPUT)
#   .named   each of those lines is "perfagent[PID]: ignoring VAR=VALUE: ...
#            DEFAULT-USED", the value shown on one line, cut to 48 bytes
#   .config  the stream's Hello.Config, decoded from the .pfr file, is the
#            one of a run with the variable unset (the default took effect)
# The defaults themselves are pinned once (defaults.config).  Then the
# warnings of a multi-process run (once, not per process), and the
# variables `perfagent run` and the collector read (no crash, the program's
# output unchanged, at most one line).
. "$(dirname "$0")/common.bash"
require_product
unset PERFAGENT_MALLOC_RATE # the defaults are what is fuzzed
export LC_ALL=C

D=$T/fz; mkdir -p "$D"
seq 1 300 | awk '{ print ($1 * 7919) % 1000, "w" $1 }' >"$T/in.txt"
WL=(sort -n "$T/in.txt")

LONG=$(head -c 5000 /dev/zero | tr '\0' 7)
VALUES=(abc -1 1e99 "" " 5" 5x "$LONG" 0x10 99999999999999999999 $'\xc3\xa9\xff\xfe' $'5\n6')
NV=${#VALUES[@]}
ALL_BAD="1 1 1 0 1 1 1 1 1 1 1"     # the empty value is no value

# Hello.Config of each .pfr file given: "malloc_rate max_frames unwinder
# buffer_kb follow_exec follow_fork cpu_hz cpu_stack_bytes mechanism|output"
cat >"$T/hello.py" <<'PY'
import sys

def varint(b, i):
    v = s = 0
    while True:
        c = b[i]; i += 1
        v |= (c & 0x7F) << s; s += 7
        if c < 0x80:
            return v, i

def fields(b):
    i, out = 0, {}
    while i < len(b):
        key, i = varint(b, i)
        f, t = key >> 3, key & 7
        if t == 0:
            v, i = varint(b, i)
        elif t == 2:
            n, i = varint(b, i); v = b[i:i + n]; i += n
        elif t == 1:
            v = b[i:i + 8]; i += 8
        elif t == 5:
            v = b[i:i + 4]; i += 4
        else:
            raise ValueError("wire type %d" % t)
        out.setdefault(f, []).append(v)
    return out

for path in sys.argv[1:]:
    try:
        b = open(path, "rb").read()
        assert b[:8] == b"PFAGENT1", "no magic"
        n, i = varint(b, 8)
        batch = fields(b[i:i + n])
        hello = fields(fields(batch[2][0])[1][0])
        c = fields(hello.get(10, [b""])[0])
        g = lambda f, d=0: c.get(f, [d])[0]
        s = lambda f: g(f, b"").decode("utf-8", "replace")
        print(g(1), g(2), s(3), g(4), g(5), g(6), g(8), g(10), s(9).split(" ")[0] + "|" + s(7))
    except Exception as e:
        print("undecodable:", path, e)
PY
config() { "$PY" "$T/hello.py" "$@" 2>&1; }
strip_out() { sed 's/ *|.*//'; }      # the config without its output path

run base "${WL[@]}"
run dflt env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$D/dflt.pfr" "${WL[@]}"
run dflt_cpu env LD_PRELOAD="$AGENT" PERFAGENT_CPU_HZ=99 PERFAGENT_OUTPUT="$D/dflt_cpu.pfr" "${WL[@]}"
MECH=$(config "$D/dflt_cpu.pfr" | awk '{print $9}' | strip_out)
# the documented defaults (README's table), and 8 KiB copied per CPU sample
expect_eq defaults.config "$(config "$D/dflt.pfr" | strip_out) / $(config "$D/dflt_cpu.pfr" | awk '{print $7, $8}')" \
    "524288 64 cfi 4096 1 1 0 0 / 99 8192"
expect_eq defaults.quiet "$(cat "$T/dflt.err" "$T/dflt_cpu.err" | grep -c .)" 0

# fuzz VAR "LINES" DEFAULT-USED [EXTRA-ENV...] : VAR given each junk value
# (with EXTRA-ENV), checked as the header says against a run with VAR unset.
# OUT="N..." before the call: whole numbers just outside VAR's range, tried
# after the junk (one more "1" each in LINES).
fuzz() {
    local var=$1 want_lines=$2 used=$3 i v line got_run= got_lines= bad_named= got_cfg= want_cfg
    local -a vals=("${VALUES[@]}")
    shift 3
    for v in ${OUT:-}; do vals+=("$v") want_lines="$want_lines 1"; done
    run "u_$var" env "$@" LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$D/u_$var.pfr" "${WL[@]}"
    want_cfg=$(config "$D/u_$var.pfr" | strip_out)
    for ((i = 0; i < ${#vals[@]}; i++)); do
        v=${vals[$i]}
        run "f_${var}_$i" env "$@" LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$D/f_${var}_$i.pfr" \
            "$var=$v" "${WL[@]}"
        if [ "$(rc_of "f_${var}_$i")" != "$(rc_of base)" ] || ! cmp -s "$T/base.out" "$T/f_${var}_$i.out"; then
            got_run="$got_run $i:rc=$(rc_of "f_${var}_$i")"
        fi
        got_lines="$got_lines $(grep -c '' "$T/f_${var}_$i.err")"
        # one line: the variable, the value (printable, cut at 48 bytes), the default used
        line=$(head -1 "$T/f_${var}_$i.err")
        if [ -n "$line" ] && { [[ $line != *": $used" && $line != *"; $used" ]] ||
            ! grep -qE "^perfagent\[[0-9]+\]: ignoring $var=[ -~]{0,48}(\.\.\. \([0-9]+ bytes\))?: " <<<"$line"; }; then
            bad_named="$bad_named $i:$(head -c 120 "$T/f_${var}_$i.err" | tr '\n' '|')"
        fi
        [ "$(config "$D/f_${var}_$i.pfr" | strip_out)" == "$want_cfg" ] ||
            got_cfg="$got_cfg $i:$(config "$D/f_${var}_$i.pfr" | strip_out)"
    done
    expect_eq "$var.run" "${got_run:-same}" same "value index:exit status when stdout or status differ"
    expect_eq "$var.lines" "${got_lines# }" "$want_lines" "stderr lines per value"
    expect_eq "$var.named" "${bad_named:-all}" all "lines not naming $var, the value and '$used'"
    expect_eq "$var.config" "${got_cfg:-default}" default "Hello.Config differs from the unset run's ($want_cfg)"
}

OUT=1099511627777 fuzz PERFAGENT_MALLOC_RATE "$ALL_BAD" "using 524288"
OUT=10001 fuzz PERFAGENT_CPU_HZ "$ALL_BAD" "using 0 (CPU sampling off)"
OUT="0 257" fuzz PERFAGENT_MAX_FRAMES "$ALL_BAD" "using 64"
OUT="63 65537" fuzz PERFAGENT_BUFFER_KB "$ALL_BAD" "using 4096"
fuzz PERFAGENT_UNWIND "$ALL_BAD" "using cfi"
OUT=2 fuzz PERFAGENT_FOLLOW_EXEC "$ALL_BAD" "using 1"
OUT=2 fuzz PERFAGENT_FOLLOW_FORK "$ALL_BAD" "using 1"
fuzz PERFAGENT_DISABLE "$ALL_BAD" "using 0"
fuzz PERFAGENT_LOG "$ALL_BAD" "using info"
OUT=31536001 fuzz PERFAGENT_SNAPSHOT_INTERVAL "$ALL_BAD" "using 0 (no interval snapshots)"
fuzz PERFAGENT_PQ "$ALL_BAD" "using 1"
fuzz PERFAGENT_PQ_LITERALS "$ALL_BAD" "using 0"
fuzz PERFAGENT_NET "$ALL_BAD" "using 1"
OUT=2 fuzz PERFAGENT_PRIVATE_FDS "$ALL_BAD" "using 1"
fuzz PERFAGENT_CRASH "$ALL_BAD" "using 1"
fuzz PERFAGENT_COLLECTOR "$ALL_BAD" "writing a file instead"
# with CPU sampling on, where they matter (the mechanism and the bytes
# copied per sample are in the config)
fuzz PERFAGENT_CPU_MODE "$ALL_BAD" "using auto" PERFAGENT_CPU_HZ=99
OUT="0 64" fuzz PERFAGENT_CPU_STACK_KB "$ALL_BAD" "using 8" PERFAGENT_CPU_HZ=99
# internal (set by perfagent run and the agent itself): junk is ignored
# without a word
fuzz PERFAGENT_WAIT "0 0 0 0 0 0 0 0 0 0 0" "-"
fuzz PERFAGENT_RUN_PID "0 0 0 0 0 0 0 0 0 0 0" "-"
expect_eq mechanism.known "$MECH" "$(config "$D/u_PERFAGENT_CPU_MODE.pfr" | awk '{print $9}' | strip_out)"

# PERFAGENT_OUTPUT: every value but the empty and the 5000-byte one is a
# file name; each run in its own directory: the file is where the value
# says (%p-less: the name as given), else the default name, with one line
got_lines= got_files= got_run=
for ((i = 0; i < NV; i++)); do
    v=${VALUES[$i]}
    mkdir -p "$T/o$i"
    (cd "$T/o$i" && run "o_$i" env LD_PRELOAD="$AGENT" "PERFAGENT_OUTPUT=$v" "${WL[@]}")
    [ "$(rc_of "o_$i")" == "$(rc_of base)" ] && cmp -s "$T/base.out" "$T/o_$i.out" || got_run="$got_run $i"
    got_lines="$got_lines $(grep -c '' "$T/o_$i.err")"
    f=$(cd "$T/o$i" && ls -A)
    case $i in
    3 | 6) [[ $f == perfagent-sort.*.pfr ]] ;;
    *) [[ $f == "$v" ]] ;;
    esac && [ "$(config "$T/o$i/$f" | head -1 | awk '{print $1}')" = 524288 ] || got_files="$got_files $i:$(printf %q "$f")"
done
expect_eq PERFAGENT_OUTPUT.run "${got_run:-same}" same
expect_eq PERFAGENT_OUTPUT.lines "${got_lines# }" "0 0 0 0 0 0 1 0 0 0 0"
expect_true PERFAGENT_OUTPUT.named "$(cat "$T/o_6.err")" \
    grep -qE '^perfagent\[[0-9]+\]: ignoring PERFAGENT_OUTPUT=7{48}\.\.\. \(5000 bytes\): too long a path; using \./perfagent-%e\.%p\.pfr$' "$T/o_6.err"
expect_eq PERFAGENT_OUTPUT.files "${got_files:-all}" all "index:files in its directory"

# Many processes, one line: under perfagent run (the root is run's child)
# and with a %p-less file (its owner is the first process), only the first
# process warns.
run multi_run env PERFAGENT_MAX_FRAMES=abc "$PERFAGENT" run -o "$T/multi.rep" -- \
    sh -c 'sort -n "$1" | sort -r | sort -n >/dev/null; sort -n "$1"' _ "$T/in.txt"
expect_eq multi.run "$(rc_of multi_run) $(grep -c PERFAGENT_MAX_FRAMES "$T/multi_run.err") $(procs "$T/multi.rep" | wc -l)" \
    "0 1 5" "exit status, lines naming the variable, processes in the report"
run multi_file env LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$D/multi.pfr" PERFAGENT_UNWIND=xyz \
    sh -c 'sort -n "$1" | sort -r | sort -n >/dev/null; sort -n "$1"' _ "$T/in.txt"
expect_eq multi.file "$(rc_of multi_file) $(grep -c PERFAGENT_UNWIND "$T/multi_file.err") $(ls "$D"/multi.pfr* | wc -l)" \
    "0 1 5" "exit status, lines naming the variable, .pfr files"
cmp -s "$T/multi_run.out" "$T/base.out" && cmp -s "$T/multi_file.out" "$T/base.out"
expect_eq multi.stdout $? 0

# perfagent run's and the collector's own variables: the program runs as
# without them (exit status, stdout), and the lines naming the variable per
# value are pinned: every bad value gets one line naming the variable
# (collector/util.c util_env_u64: digits only, " 5" and "-1" included), as
# the agent's own variables do.  (PERFAGENT_SLOW_QUERY_MS and
# PERFAGENT_NPLUS1_MIN are read only for a stream with libpq events;
# PERFAGENT_LIB is below.)
# collector_var VAR "LINES"
collector_var() {
    local var=$1 i got_run= got_lines=
    for ((i = 0; i < NV; i++)); do
        run "c_${var}_$i" env "${var}=${VALUES[$i]}" "$PERFAGENT" run -o "$T/c$i.rep" -- "${WL[@]}"
        [ "$(rc_of "c_${var}_$i")" == "$(rc_of base)" ] && cmp -s "$T/base.out" "$T/c_${var}_$i.out" ||
            got_run="$got_run $i:rc=$(rc_of "c_${var}_$i")"
        got_lines="$got_lines $(grep -c "$var" "$T/c_${var}_$i.err")"
        rm -rf "$T/c$i.rep"
    done
    expect_eq "$var.run" "${got_run:-same}" same "value index:exit status when stdout or status differ"
    expect_eq "$var.lines" "${got_lines# }" "$2" "lines naming it per value"
}
collector_var PERFAGENT_SUPPRESSIONS "$ALL_BAD"
collector_var PERFAGENT_SLOW_REQUEST_MS "$ALL_BAD"
collector_var PERFAGENT_COLLECTOR_ROUND_ROWS "$ALL_BAD"
collector_var PERFAGENT_COLLECTOR_PENDING_MAX "$ALL_BAD"
# A PERFAGENT_LIB that is not a file: run refuses (one line, exit 1, the
# program not started) rather than run it untraced.
run lib_bad env PERFAGENT_LIB="$T/nope.so" "$PERFAGENT" run -o "$T/lib.rep" -- "${WL[@]}"
expect_eq PERFAGENT_LIB.refused "$(rc_of lib_bad) $(grep -c '' "$T/lib_bad.err") $(grep -c "PERFAGENT_LIB=$T/nope.so: no such file" "$T/lib_bad.err") $(grep -c '' "$T/lib_bad.out")" \
    "1 1 1 0" "exit status, stderr lines, naming it, stdout lines"
finish
