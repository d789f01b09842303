#!/usr/bin/env bash
# Real programs nobody here wrote, one-shot ones (the servers are in
# real_servers.sh), under the agent with every feature on: exact heap
# (PERFAGENT_MALLOC_RATE=1), CPU sampling at 999 Hz, libpq and socket
# tracing at their default (on); file output into a temp dir.  For each: the programs it needs are installed (a
# missing one is a FAIL naming its Debian package, which the Makefile's
# DEB_PKGS must list: `make deps` installs them); exit status and stdout are
# byte-identical to a run without the agent, and the exit status is the one
# the command is written to end with; every process it starts is in the
# report, each stream ended with the exit code that process had and lost
# nothing (no drops, no frees of blocks the agent never saw, no implied
# frees: exact mode is exact); and each named program recorded allocations.
# How many allocations a program makes is up to its version and libraries,
# so that stays "some"; what the command itself decides is pinned.
#
# Every prog prints the same 6 lines whatever fails (a fixed check count).
. "$(dirname "$0")/common.bash"
require_product
CK="$PY $PA_ROOT/tests/e2e/lib/checks.py"

export LC_ALL=C TZ=UTC

# Debian package of each program used below
declare -A PKG=([python3]=python3 [perl]=perl [sqlite3]=sqlite3 [git]=git [gzip]=gzip
    [sha256sum]=coreutils [sort]=coreutils [psql]=postgresql-client [mawk]=mawk [tar]=tar
    [bash]=bash [gcc]=gcc [make]=make [xz]=xz-utils [bzip2]=bzip2 [zstd]=zstd [sed]=sed
    [grep]=grep [find]=findutils [diff]=diffutils [node]=nodejs [jq]=jq)

# ---- inputs
D=$T/data; mkdir -p "$D"
"$PY" - "$D" <<'PY'
import random, sys
r = random.Random(42)
with open(sys.argv[1] + "/nums.txt", "w") as f:
    for i in range(50000):
        f.write("%d %d word%d\n" % (r.randrange(10**6), r.randrange(1000), r.randrange(5000)))
PY
# a C file for gcc, a 4-file project for make, JSON for jq, a tree for grep
# and find, two versions of a file for diff
cat >"$D/hello.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
int main(void)
{
    unsigned long s = 0;
    for (int i = 0; i < 1000; i++) {
        char *p = malloc(64 + i);
        s += (unsigned long)(p != NULL) * i;
        free(p);
    }
    printf("hello %lu\n", s);
    return 7;
}
EOF
P=$D/proj; mkdir -p "$P"
for m in a b c; do
    printf 'int f_%s(int x) { return x * %d + %d; }\n' "$m" "$(printf %d "'$m")" 5 >"$P/$m.c"
done
cat >"$P/main.c" <<'EOF'
#include <stdio.h>
int f_a(int), f_b(int), f_c(int);
int main(void) { printf("proj %d %d %d\n", f_a(1), f_b(2), f_c(3)); return 0; }
EOF
printf 'OBJS = a.o b.o c.o main.o\nall: proj\n\t./proj\nproj: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n%%.o: %%.c\n\t$(CC) -O1 -c -o $@ $<\n' >"$P/Makefile"
"$PY" - "$D" <<'PY'
import json, os, random, sys
d = sys.argv[1]
r = random.Random(7)
json.dump([{"a": r.randrange(10**6), "w": "word%d" % r.randrange(5000)} for _ in range(20000)],
          open(d + "/data.json", "w"))
for i in range(30):
    os.makedirs("%s/tree/d%d" % (d, i % 5), exist_ok=True)
    with open("%s/tree/d%d/f%02d.txt" % (d, i % 5, i), "w") as f:
        for k in range(400):
            f.write("line %d of %d: word%d\n" % (k, i, r.randrange(5000)))
lines = ["%d %s\n" % (k, "x" * (k % 17)) for k in range(3000)]
open(d + "/old.txt", "w").writelines(lines)
for k in (5, 700, 701, 2999):
    lines[k] = "changed %d\n" % k
open(d + "/new.txt", "w").writelines(lines[:2500] + ["inserted\n"] + lines[2500:])
PY
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
export GIT_CONFIG_NOSYSTEM=1 HOME=$T
REPO=$T/repo
{
    timeout 20 git init -q -b main "$REPO" && git -C "$REPO" config commit.gpgsign false
    for i in $(seq 1 20); do
        echo "line $i" >>"$REPO/file.txt"
        git -C "$REPO" add file.txt
        GIT_AUTHOR_DATE="2020-01-01T00:00:$(printf %02d "$i")Z" GIT_COMMITTER_DATE="2020-01-01T00:00:$(printf %02d "$i")Z" \
            timeout 20 git -C "$REPO" commit -q -m "commit $i"
    done
} >"$T/repo.log" 2>&1

# prog NAME TOOLS EXE-REGEX STATUS STREAMS CMD... : CMD without and with the
# agent.  TOOLS: the programs it needs; EXE-REGEX: program names each of
# which must have a process with allocations; STATUS: its exit status;
# STREAMS: `checks.py streams` of its report (every process, sorted; with
# SED=SCRIPT set, edited by that sed script first).
prog() {
    local n=$1 tools=$2 exes=$3 status=$4 streams=$5 t missing=
    shift 5
    for t in $tools; do
        command -v "$t" >/dev/null 2>&1 || missing="$missing $t (package ${PKG[$t]:-?})"
    done
    if [ -z "$missing" ]; then ok "$n.tools"; else
        fail "$n.tools" "not installed:$missing; run 'make deps' (the Makefile's DEB_PKGS)"; fi
    run "base_$n" "$@"
    mkdir -p "$T/$n"
    run "$n" env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_CPU_HZ=999 PERFAGENT_OUTPUT="$T/$n/%e.%p.pfr" "$@"
    same_output "$n.stdout_and_status" "base_$n" "$n"
    expect_eq "$n.exit_status" "$(rc_of "$n")" "$status" "124: timed out; stderr: $(head -c 200 "$T/$n.err" | tr '\n' '|')"
    report "$n.report" "$T/$n.rep" "$T/$n"/*.pfr
    expect_eq "$n.streams" "$($CK streams "$T/$n.rep/index.json" 2>&1 | tr ';' '\n' | sed "${SED:-}" | paste -sd';')" \
        "$streams" "EXE exit=CODE lost=drops/unknown/implied/superseded${SED:+; edited by: $SED}"
    check_allocs "$n" "$exes"
}

# check_allocs NAME EXE-REGEX : one line: each EXE has a process whose
# alloc.folded is not empty (`gzip -c FILE` makes no allocation at all: the
# decompressor does)
check_allocs() {
    local n=$1 e d b best why=
    for e in $2; do
        best=0
        for d in $(procs "$T/$n.rep" | awk -v e="^($e)\$" '$3 ~ e { print $4 }'); do
            b=$($PYQ folded "$d/alloc.folded" 2>/dev/null)
            [ "${b:-0}" -gt "$best" ] 2>/dev/null && best=$b
        done
        [ "$best" -gt 0 ] || why="$why $e"
    done
    if [ -z "$why" ]; then ok "$n.allocations"; else
        fail "$n.allocations" "no process with allocations for:$why (have: $(procs "$T/$n.rep" | awk '{print $3}' | tr '\n' ' '))"; fi
}

# j LINE... : the lines joined with ";" (as `checks.py streams` prints them)
j() { local IFS=';'; echo "$*"; }
# rep N LINE : LINE N times, ";"-joined
rep() { local i out=$2; for ((i = 1; i < $1; i++)); do out="$out;$2"; done; echo "$out"; }
# gcc (and collect2) start their helpers with vfork + execv: the parent's
# stream must go on to its own exit (a vfork child's exec once ended it
# "by exec", exit=-1: tests/e2e/vfork.sh).
VF=0

PYEXE=$(basename "$(readlink -f "$PY")")      # python3.11 on Debian 12
prog python python3 "$PYEXE" 0 "$PYEXE exit=0 lost=0/0/0/0" "$PY" -c '
import json, hashlib, collections
d = {str(i): [i * j for j in range(40)] for i in range(3000)}
s = json.dumps(d, sort_keys=True)
c = collections.Counter(ch for ch in s)
print(hashlib.sha256(s.encode()).hexdigest(), len(s), c.most_common(3))'
# python keeps 7 blocks of 77777 B that it got from libc's malloc through
# ctypes (libffi's ffi_call calls malloc directly): leaked, the only blocks
# allocated through ffi_call; then exits with status 3.
prog python_keep python3 "$PYEXE" 3 "$PYEXE exit=3 lost=0/0/0/0" "$PY" -c '
import ctypes, sys
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
keep = [libc.malloc(77777) for _ in range(7)]
print(sum(1 for p in keep if p))
sys.exit(3)'
d=$(proc_dir "$T/python_keep.rep" "$PYEXE")
expect_eq python_keep.kept_blocks "$($PYQ through "${d:-$T/none}/leaks.json" ffi_call 2>&1)" "544439 7" \
    "leaked bytes/objects through ffi_call: 7 x 77777 B"

prog perl perl perl 0 "perl exit=0 lost=0/0/0/0" perl -e '
my %h; $h{$_ % 997} .= "x$_" for 1 .. 200000;
my $t = 0; $t += length($h{$_}) for keys %h;
print "$t\n", join(",", (sort { $a <=> $b } keys %h)[0 .. 9]), "\n";
my @w = map { sprintf("%05d", ($_ * 7919) % 100000) } 1 .. 50000; print scalar(@w), " ", (sort @w)[123], "\n";'
prog sqlite sqlite3 sqlite3 0 "sqlite3 exit=0 lost=0/0/0/0" sqlite3 :memory: "create table t(a integer, b text);
with recursive c(x) as (select 1 union all select x + 1 from c where x < 20000)
insert into t select x, printf('row%05d', x) from c;
create index ti on t(b);
select count(*), sum(a), max(b) from t;
select b from t where a % 4000 = 0 order by a;
select group_concat(b, '') is not null, length(group_concat(b, '')) from t;"
# git runs no helper process for these three (no pager: stdout is a file)
prog git_version git git 0 "git exit=0 lost=0/0/0/0" git --version
prog git_log git git 0 "git exit=0 lost=0/0/0/0" git -C "$REPO" log --oneline
prog git_status git git 0 "git exit=0 lost=0/0/0/0" git -C "$REPO" status --porcelain=v1 --branch
# bash forks one child per pipeline element, each a fork copy (it frees
# blocks inherited from bash: "f") whose stream ends when it execs (-1)
prog gzip_pipe "bash gzip sha256sum" "bash gzip sha256sum" 0 \
    "$(j "bash exit=-1 lost=0/f/0/0" "bash exit=-1 lost=0/f/0/0" "bash exit=-1 lost=0/f/0/0" \
        "bash exit=0 lost=0/0/0/0" "gzip exit=0 lost=0/0/0/0" "gzip exit=0 lost=0/0/0/0" \
        "sha256sum exit=0 lost=0/0/0/0")" bash -c 'gzip -c "$1" | gzip -dc | sha256sum' _ "$D/nums.txt"
# Debian's psql is pg_wrapper, a perl script that execs the real psql
prog psql "psql perl" "perl psql" 0 "$(j "perl exit=-1 lost=0/0/0/0" "psql exit=0 lost=0/0/0/0")" psql --version
prog sort sort sort 0 "sort exit=0 lost=0/0/0/0" sort -k2,2n -k1,1n "$D/nums.txt"
prog awk mawk mawk 0 "mawk exit=0 lost=0/0/0/0" mawk '{ s[$2 % 100] += $1; n[$3]++ } END { for (k = 0; k < 100; k++) print k, s[k]; print length(n) }' "$D/nums.txt"
prog tar_pipe "bash tar sha256sum" "tar sha256sum" 0 \
    "$(j "bash exit=-1 lost=0/f/0/0" "bash exit=-1 lost=0/f/0/0" "bash exit=0 lost=0/0/0/0" \
        "sha256sum exit=0 lost=0/0/0/0" "tar exit=0 lost=0/0/0/0")" bash -c 'tar --sort=name --mtime=@0 --owner=0 --group=0 -cf - -C "$1" . | sha256sum' _ "$D"
# python with 8 threads hashing at once (the GIL switching between them)
prog python_threads python3 "$PYEXE" 0 "$PYEXE exit=0 lost=0/0/0/0" "$PY" -c '
import threading, hashlib
res = [None] * 8
def work(i):
    h, d = hashlib.sha256(), {}
    for k in range(20000):
        d[k] = str(k * i)
        h.update(d[k].encode())
    res[i] = h.hexdigest()[:16]
ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in ts: t.start()
for t in ts: t.join()
print(threading.active_count(), res)'
# git clone of the local repo (git runs upload-pack and index-pack), then gc
# (pack-refs, repack, pack-objects, prune, ...).  git forks and execs at
# once (nothing allocated in between): such a fork copy has a stream only
# when a CPU sample lands in it before its exec (now and then, at 999 Hz),
# so those are not counted, and whether the git it execs counts as a fork
# copy ("f": it may free what it inherited) varies with them: every git
# that ran is counted as one, 12 of them.
SED='/^git exit=-1 lost=0\/f\/0\/0$/d; s/^git exit=0 lost=0\/0\//git exit=0 lost=0\/f\//' prog git_clone "bash git" "git" 0 \
    "$(j "$(rep 6 "bash exit=-1 lost=0/f/0/0")" "bash exit=0 lost=0/0/0/0" "dash exit=0 lost=0/0/0/0" \
        "$(rep 12 "git exit=0 lost=0/f/0/0")" "grep exit=0 lost=0/0/0/0" \
        "rm exit=0 lost=0/0/0/0")" bash -c 'rm -rf "$2" && git clone -q "$1" "$2" && git -C "$2" gc -q &&
    git -C "$2" log --oneline -3 && git -C "$2" count-objects -v | grep -E "^(count|in-pack|packs):"' _ "$REPO" "$T/clone"
# gcc runs cc1, as, collect2 and ld, each exec'd from a vfork child; then
# the program it built runs (exit status 7)
prog gcc "bash gcc" "cc1 x86_64-linux-gnu-as x86_64-linux-gnu-ld.bfd hello" 7 \
    "$(j "bash exit=-1 lost=0/0/0/0" "bash exit=-1 lost=0/f/0/0" "cc1 exit=0 lost=0/0/0/0" "collect2 exit=$VF lost=0/0/0/0" \
        "hello exit=7 lost=0/0/0/0" "x86_64-linux-gnu-as exit=0 lost=0/0/0/0" "x86_64-linux-gnu-gcc-12 exit=$VF lost=0/0/0/0" \
        "x86_64-linux-gnu-ld.bfd exit=0 lost=0/0/0/0")" \
    bash -c 'gcc -O1 -o "$2" "$1" && exec "$2"' _ "$D/hello.c" "$T/hello"
# make -j2: 4 compiles at 2 at a time, a link, then the program
prog make "make gcc" "make cc1 proj" 0 \
    "$(j "$(rep 4 "cc1 exit=0 lost=0/0/0/0")" "collect2 exit=$VF lost=0/0/0/0" "make exit=0 lost=0/0/0/0" "proj exit=0 lost=0/0/0/0" \
        "$(rep 4 "x86_64-linux-gnu-as exit=0 lost=0/0/0/0")" "$(rep 5 "x86_64-linux-gnu-gcc-12 exit=$VF lost=0/0/0/0")" \
        "x86_64-linux-gnu-ld.bfd exit=0 lost=0/0/0/0")" make -s -j2 -B -C "$P"
prog xz "bash xz sha256sum" "xz" 0 \
    "$(j "$(rep 3 "bash exit=-1 lost=0/f/0/0")" "bash exit=0 lost=0/0/0/0" "sha256sum exit=0 lost=0/0/0/0" "$(rep 2 "xz exit=0 lost=0/0/0/0")")" bash -c 'xz -6 -c "$1" | xz -dc | sha256sum' _ "$D/nums.txt"
prog bzip2 "bash bzip2 sha256sum" "bzip2" 0 \
    "$(j "$(rep 3 "bash exit=-1 lost=0/f/0/0")" "bash exit=0 lost=0/0/0/0" "$(rep 2 "bzip2 exit=0 lost=0/0/0/0")" "sha256sum exit=0 lost=0/0/0/0")" bash -c 'bzip2 -c "$1" | bzip2 -dc | sha256sum' _ "$D/nums.txt"
prog zstd "bash zstd sha256sum" "zstd" 0 \
    "$(j "$(rep 3 "bash exit=-1 lost=0/f/0/0")" "bash exit=0 lost=0/0/0/0" "sha256sum exit=0 lost=0/0/0/0" "$(rep 2 "zstd exit=0 lost=0/0/0/0")")" bash -c 'zstd -q -c "$1" | zstd -q -dc | sha256sum' _ "$D/nums.txt"
prog sed sed sed 0 "sed exit=0 lost=0/0/0/0" sed -E -n 's/^([0-9]+) ([0-9]+) word(12[0-9])$/\3:\2:\1/p' "$D/nums.txt"
prog grep grep grep 0 "grep exit=0 lost=0/0/0/0" grep -rnE 'word(4321|17)\b' "$D/tree"
prog find find find 0 "find exit=0 lost=0/0/0/0" find "$D/tree" -type f -name 'f1*' -size +1k -printf '%P %s\n'
# diff exits 1 when the files differ
prog diff diff diff 1 "diff exit=1 lost=0/0/0/0" diff -u --label old --label new "$D/old.txt" "$D/new.txt"
prog node node node 0 "node exit=0 lost=0/0/0/0" node -e '
const m = new Map();
for (let i = 0; i < 100000; i++) m.set("k" + i, [i, i * 2, "v" + (i % 977)]);
let s = 0; for (const [k, v] of m) s += v[1] + v[2].length;
console.log(m.size, s, JSON.stringify([...m.keys()].slice(-3)));'
prog jq jq jq 0 "jq exit=0 lost=0/0/0/0" jq -c '[.[] | select(.a % 7 == 0)] | {n: length, top: (sort_by(.a) | .[-3:] | map(.w))}' "$D/data.json"
finish
