#!/usr/bin/env bash
# Real programs nobody here wrote, under the agent in exact mode (file output
# into a temp dir): same exit status and byte-identical stdout as without
# it, and every process's .pfr decodes with allocations in it.
. "$(dirname "$0")/common.bash"
require_product

PY=/usr/bin/python3; [ -x "$PY" ] || PY=$(command -v python3)
export LC_ALL=C TZ=UTC

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
git init -q "$REPO" && git -C "$REPO" config commit.gpgsign false
for i in $(seq 1 20); do
    echo "line $i" >>"$REPO/file.txt"
    git -C "$REPO" add file.txt
    GIT_AUTHOR_DATE="2020-01-01T00:00:$(printf %02d "$i")Z" GIT_COMMITTER_DATE="2020-01-01T00:00:$(printf %02d "$i")Z" \
        git -C "$REPO" commit -q -m "commit $i"
done

# prog NAME EXE-REGEX CMD... : baseline vs agent; EXE-REGEX names the
# processes that must have a .pfr with allocations (all of them must match
# at least one process).
prog() {
    local n=$1 exes=$2; shift 2
    run "base_$n" "$@"
    mkdir -p "$T/$n"
    run "$n" env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/$n/%e.%p.pfr" "$@"
    if [ "$(rc_of "base_$n")" = 124 ]; then
        fail "$n.baseline" "the command itself timed out"
        return
    fi
    same_output "$n.stdout_and_status" "base_$n" "$n"
    check_pfrs "$n" "$exes"
}

check_pfrs() { # NAME EXE-REGEX...
    local n=$1 e d b
    if ! ls "$T/$n"/*.pfr >/dev/null 2>&1; then
        fail "$n.pfr" "no .pfr written in $T/$n"
        return
    fi
    report "$n.report" "$T/$n.rep" "$T/$n"/*.pfr || return
    # every EXE must be there; at least one process of each must have
    # allocations (`gzip -c FILE` makes none at all: the decompressor does)
    for e in $2; do
        local dirs best=0
        dirs=$(procs "$T/$n.rep" | awk -v e="^($e)\$" '$3 ~ e { print $4 }')
        if [ -z "$dirs" ]; then
            fail "$n.$e.recorded" "no process matching $e in index.json: $(procs "$T/$n.rep" | awk '{print $3}' | tr '\n' ' ')"
            continue
        fi
        for d in $dirs; do
            b=$($PYQ folded "$d/alloc.folded" 2>/dev/null)
            [ "${b:-0}" -gt "$best" ] 2>/dev/null && best=$b
        done
        if [ "$best" -gt 0 ]; then ok "$n.$e.allocations"; else
            fail "$n.$e.allocations" "alloc.folded is empty for every $e process ($dirs)"; fi
    done
}

prog python python3.11 "$PY" -c '
import json, hashlib, collections
d = {str(i): [i * j for j in range(40)] for i in range(3000)}
s = json.dumps(d, sort_keys=True)
c = collections.Counter(ch for ch in s)
print(hashlib.sha256(s.encode()).hexdigest(), len(s), c.most_common(3))'
prog perl perl perl -e '
my %h; $h{$_ % 997} .= "x$_" for 1 .. 200000;
my $t = 0; $t += length($h{$_}) for keys %h;
print "$t\n", join(",", (sort { $a <=> $b } keys %h)[0 .. 9]), "\n";
my @w = map { sprintf("%05d", ($_ * 7919) % 100000) } 1 .. 50000; print scalar(@w), " ", (sort @w)[123], "\n";'
prog sqlite sqlite3 sqlite3 :memory: "create table t(a integer, b text);
with recursive c(x) as (select 1 union all select x + 1 from c where x < 20000)
insert into t select x, printf('row%05d', x) from c;
create index ti on t(b);
select count(*), sum(a), max(b) from t;
select b from t where a % 4000 = 0 order by a;
select group_concat(b, '') is not null, length(group_concat(b, '')) from t;"
prog git_version git git --version
prog git_log git git -C "$REPO" log --oneline
prog git_status git git -C "$REPO" status --porcelain=v1 --branch
prog gzip_pipe "bash gzip sha256sum" bash -c 'gzip -c "$1" | gzip -dc | sha256sum' _ "$D/nums.txt"
prog psql "perl psql" psql --version
prog sort sort sort -k2,2n -k1,1n "$D/nums.txt"
prog awk mawk awk '{ s[$2 % 100] += $1; n[$3]++ } END { for (k = 0; k < 100; k++) print k, s[k]; print length(n) }' "$D/nums.txt"
prog tar_pipe "tar sha256sum" bash -c 'tar --sort=name --mtime=@0 --owner=0 --group=0 -cf - -C "$1" . | sha256sum' _ "$D"
finish
