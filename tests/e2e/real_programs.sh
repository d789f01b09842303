#!/usr/bin/env bash
# Real programs nobody here wrote, under the agent in exact mode (file output
# into a temp dir).  For each: the programs it needs are installed (a
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
    [bash]=bash)

# ---- inputs
D=$T/data; mkdir -p "$D"
"$PY" - "$D" <<'PY'
import random, sys
r = random.Random(42)
with open(sys.argv[1] + "/nums.txt", "w") as f:
    for i in range(50000):
        f.write("%d %d word%d\n" % (r.randrange(10**6), r.randrange(1000), r.randrange(5000)))
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
# STREAMS: `checks.py streams` of its report (every process, sorted).
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
    run "$n" env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/$n/%e.%p.pfr" "$@"
    same_output "$n.stdout_and_status" "base_$n" "$n"
    expect_eq "$n.exit_status" "$(rc_of "$n")" "$status" "124: timed out; stderr: $(head -c 200 "$T/$n.err" | tr '\n' '|')"
    report "$n.report" "$T/$n.rep" "$T/$n"/*.pfr
    expect_eq "$n.streams" "$($CK streams "$T/$n.rep/index.json" 2>&1)" "$streams" "EXE exit=CODE lost=drops/unknown/implied/superseded"
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
finish
