#!/usr/bin/env bash
# Who gets a file name without %p (PERFAGENT_OUTPUT=DIR/out.pfr): the
# program the user ran, even when a wrapper execs it.  On Debian psql and
# pgbench are /usr/share/postgresql-common/pg_wrapper, a perl script that
# execs the real client in the same process: perl's agent used to claim the
# name (PERFAGENT_OUTPUT_OWNER) and psql's queries landed in out.pfr.PID.
# Now each image hands the name to the image it execs (agent/hook_exec.c,
# init.c take_handover); what an earlier image wrote moves to NAME.PID.
# Runs against a real PostgreSQL 15 (tests/e2e/lib/pg.bash) with the real
# /usr/bin/psql.  10 checks.
source "$(dirname "$0")/common.bash"
source "$(dirname "$0")/lib/pg.bash"
require_product

PORT=$((55329 + $$ % 500))
REAL_PSQL=$PG_BIN/psql
CONN=(-X -A -t -h "$T/pg/sock" -p "$PORT" -U postgres -d postgres)

# files NAME : every file in $T/NAME as "FILE=EXE@PID", sorted, each file
# read by its own perfagent report; the pid of the process in the file with
# the plain name (else of the first file) written P wherever it appears.
files() {
    local d=$T/$1 f
    for f in $(ls "$d"); do
        timeout -k 5 "$TO" "$PERFAGENT" report "$d/$f" -o "$T/$1.rep/$f" >/dev/null 2>&1
    done
    $PY - "$d" "$T/$1.rep" <<'PYEOF' 2>&1
import json, os, re, sys
d, rep = sys.argv[1], sys.argv[2]
rows = []
for f in sorted(os.listdir(d)):
    try:
        ps = json.load(open(os.path.join(rep, f, "index.json")))["processes"]
        who = ",".join("%s@%d" % (os.path.basename(p["exe"]), p["pid"]) for p in ps)
    except Exception as e:
        who = "unreadable(%s)" % type(e).__name__
    rows.append((f, who))
plain = [w for f, w in rows if not re.search(r"\.\d+$", f)] or [w for f, w in rows]
pid = re.search(r"@(\d+)", plain[0]).group(1) if plain and "@" in plain[0] else None
out = []
for f, w in rows:
    s = "%s=%s" % (f, w)
    if pid:
        s = re.sub(r"\b%s\b" % pid, "P", s)
    out.append(s)
print(" ".join(out) or "no files")
PYEOF
}
# calls REPORT-DIR : calls of 'SELECT $1 AS answer' in the psql process's queries.json
calls() {
    local d
    d=$(proc_dir "$1" psql)
    $PY -c 'import json,sys
for q in json.load(open(sys.argv[1]))["queries"]:
    if q["query"] == "SELECT $1 AS answer": print(q["calls"]); break
else: print("missing")' "${d:-/none}/queries.json" 2>&1
}

if ! pg_start "$T/pg" "$PORT"; then
    fail pg.start "the server did not start"
fi

# 0. the premise: /usr/bin/psql is Debian's perl wrapper, not psql itself
expect_eq psql_is_wrapper "$(basename "$(readlink -f /usr/bin/psql)") $(head -c 15 /usr/bin/psql)" \
    "pg_wrapper #!/usr/bin/perl"

# 1. libpq tracing only (the stream starts at the first query): perl writes
# nothing and execs psql, which must take out.pfr itself
mkdir -p "$T/pq"
run pq env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=0 PERFAGENT_OUTPUT="$T/pq/out.pfr" \
    /usr/bin/psql "${CONN[@]}" -c "SELECT 42 AS answer"
expect_eq pq.run "$(rc_of pq) $(cat "$T/pq.out")" "0 42"
expect_eq pq.files "$(files pq)" "out.pfr=psql@P" "out.pfr.PID is the old bug"
expect_eq pq.query_in_plain_name "$(calls "$T/pq.rep/out.pfr")" 1

# 2. heap recording: perl writes a stream before its exec; psql's is the
# plain name, perl's moves to out.pfr.PID (same pid: one process, two images)
mkdir -p "$T/heap"
run heap env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/heap/out.pfr" \
    /usr/bin/psql "${CONN[@]}" -c "SELECT 42 AS answer"
expect_eq heap.files "$(rc_of heap) $(files heap)" "0 out.pfr=psql@P out.pfr.P=perl@P"

# 3. three images: dash execs the wrapper, which execs psql; the second move
# finds out.pfr.PID taken and takes out.pfr.PID.1 (never over a file)
mkdir -p "$T/chain"
run chain env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/chain/out.pfr" \
    /bin/sh -c 'exec /usr/bin/psql "$@"' sh "${CONN[@]}" -c "SELECT 42 AS answer"
expect_eq chain.files "$(rc_of chain) $(files chain)" \
    "0 out.pfr=psql@P out.pfr.P=dash@P out.pfr.P.1=perl@P"

# 4. an exec with an envp of the caller's (python's os.execve with a dict:
# the agent passes on an edited copy, not environ)
mkdir -p "$T/envp"
run envp env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=0 PERFAGENT_OUTPUT="$T/envp/out.pfr" \
    "$PY" -c 'import os, sys; os.execve(sys.argv[1], sys.argv[1:], dict(os.environ))' \
    "$REAL_PSQL" "${CONN[@]}" -c "SELECT 42 AS answer"
expect_eq envp.files "$(rc_of envp) $(files envp)" "0 out.pfr=psql@P"

# 5. %e in the name: perl's file is perl.pfr, so psql.pfr is free for psql
mkdir -p "$T/exe"
run exe env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/exe/%e.pfr" \
    /usr/bin/psql "${CONN[@]}" -c "SELECT 42 AS answer"
expect_eq exe.files "$(rc_of exe) $(files exe)" "0 perl.pfr=perl@P psql.pfr=psql@P"

# 6. a fork child never takes the name: the shell forks psql (not its last
# command), writes nothing itself (libpq only); psql is out.pfr.PID
mkdir -p "$T/fork"
run fork env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=0 PERFAGENT_OUTPUT="$T/fork/out.pfr" \
    /bin/sh -c '"$@"; exit $?' sh "$REAL_PSQL" "${CONN[@]}" -c "SELECT 42 AS answer"
expect_eq fork.files "$(rc_of fork) $(files fork)" "0 out.pfr.P=psql@P"

# 7. PERFAGENT_FOLLOW_EXEC=0: psql runs without the agent, so the name keeps
# what perl wrote
mkdir -p "$T/nofollow"
run nofollow env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_FOLLOW_EXEC=0 \
    PERFAGENT_OUTPUT="$T/nofollow/out.pfr" /usr/bin/psql "${CONN[@]}" -c "SELECT 42 AS answer"
expect_eq nofollow.files "$(rc_of nofollow) $(files nofollow)" "0 out.pfr=perl@P"

finish
