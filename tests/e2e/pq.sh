#!/usr/bin/env bash
# libpq tracing against a real PostgreSQL 15 (a throwaway server in $T,
# tests/e2e/lib/pg.bash): our client tests/workloads/pq_app.c, whose calls,
# rows and errors per normalized query are known by construction; psql and
# pgbench, which no one here wrote; and a program without libpq, which must
# stay without it.  Heap and CPU recording are off in most runs: tracing
# libpq alone is a mode of its own (the stream starts at the first query).
source "$(dirname "$0")/common.bash"
source "$(dirname "$0")/lib/pg.bash"
require_product "$W/pq_app"

PORT=$((54329 + $$ % 500))
# qstat DIR TEXT: "calls rows errors prepares sqlstate:n..." of one query in queries.json
qstat() {
    $PY - "$1/queries.json" "$2" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
for q in d["queries"]:
    if q["query"] == sys.argv[2]:
        e = " ".join("%s:%d" % kv for kv in sorted(q["errors_by_sqlstate"].items()))
        print(q["calls"], q["rows"], q["errors"], q["prepares"], e)
        break
else:
    print("missing")
PYEOF
}
jget() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@" 2>&1; }
# qall DIR TEXT: qstat's fields, then what is not a call: "describes describe_errors aborted"
qall() {
    $PY - "$1/queries.json" "$2" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
for q in d["queries"]:
    if q["query"] == sys.argv[2]:
        e = " ".join("%s:%d" % kv for kv in sorted(q["errors_by_sqlstate"].items()))
        print(q["calls"], q["rows"], q["errors"], q["prepares"], q["describes"],
              q["describe_errors"], q["aborted"], e)
        break
else:
    print("missing")
PYEOF
}

if ! pg_start "$T/pg" "$PORT"; then
    fail pg.start "the server did not start"
fi
PSQL="psql -X -A -t -h $PG_SOCK -p $PORT -U postgres -d postgres"
$PSQL -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null 2>&1

# 1. our client, libpq tracing only
run app env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=0 PERFAGENT_OUTPUT="$T/app.pfr" \
    "$W/pq_app" "$PG_SOCK" "$PORT"
expect_eq app.run "$(rc_of app) $(cat "$T/app.out")" "0 done"
D=$T/none
if report app.report "$T/app.rep" "$T/app.pfr"; then D=$(proc_dir "$T/app.rep" pq_app); fi
expect_eq q.by_id "$(qstat "$D" 'SELECT name FROM items WHERE id = $1')" "20 20 0 0 "
expect_eq q.list "$(qstat "$D" 'SELECT id FROM items WHERE id <= $1 ORDER BY id')" "2 40 0 0 "
expect_eq q.in_list "$(qstat "$D" 'SELECT name FROM items WHERE id IN (...)')" "1 20 0 0 "
expect_eq q.insert "$(qstat "$D" 'INSERT INTO items SELECT g, $1 || g FROM generate_series($2, $3) g')" "1 100 0 0 "
expect_eq q.error "$(qstat "$D" 'SELECT * FROM no_such_table')" "2 0 2 0 42P01:2"
expect_eq q.prepared "$(qstat "$D" 'SELECT name, id FROM items WHERE id = $1')" "4 4 0 1 "
expect_eq q.params "$(qstat "$D" 'SELECT count(*) FROM items WHERE id > $1')" "3 3 0 0 "
# 3 PQsendQuery with "<= 10" and one PQsendQueryParams "<= $1" ("5")
expect_eq q.async "$(qstat "$D" 'SELECT id FROM items WHERE id <= $1')" "4 35 0 0 "
expect_eq q.async_prepared "$(qstat "$D" 'SELECT id FROM items WHERE id < $1')" "1 3 0 1 "
expect_eq q.update "$(qstat "$D" 'UPDATE items SET name = name WHERE id <= $1')" "1 12 0 0 "
expect_eq q.total "$(jget "$D/queries.json" 'len(d["queries"]), sum(q["calls"] for q in d["queries"])')" "(15, 45)"
expect_eq q.sorted "$(jget "$D/queries.json" '[q["total_ms"] for q in d["queries"]] == sorted([q["total_ms"] for q in d["queries"]], reverse=True) and d["queries"][0]["query"]')" 'SELECT pg_sleep($1)'
expect_eq q.stack "$(jget "$D/queries.json" '[q["stacks"][0]["frames"][:2] for q in d["queries"] if q["query"].startswith("SELECT * FROM no_such")][0]')" "['run', 'errors']"
expect_eq conns "$(jget "$D/queries.json" '" ".join("%s=%s" % (k, d["connections"][k]) for k in ("opened", "closed", "peak", "failed"))')" \
    "opened=3 closed=3 peak=2 failed=1"
# the N+1: 20 by-id SELECTs after the list query, from list_then_each; the
# batched version (list + one IN) and the 4 prepared calls (< 5) are not.
expect_eq nplus1 "$(jget "$D/n_plus_one.json" '[(f["query"], f["preceding_query"], f["calls"], f["runs"], f["frames"][0]) for f in d["findings"]]')" \
    "[('SELECT name FROM items WHERE id = \$1', 'SELECT id FROM items WHERE id <= \$1 ORDER BY id', 20, 1, 'list_then_each')]"
expect_eq nplus1.min "$(PERFAGENT_NPLUS1_MIN=21 "$PERFAGENT" report -o "$T/app.rep21" "$T/app.pfr" >/dev/null 2>&1;
    jget "$(proc_dir "$T/app.rep21" pq_app)/n_plus_one.json" 'len(d["findings"])')" 0
expect_eq slow.default "$(jget "$D/slow_queries.json" 'd["threshold_ms"], len(d["queries"])')" "(1000, 0)"
PERFAGENT_SLOW_QUERY_MS=200 "$PERFAGENT" report -o "$T/app.slow" "$T/app.pfr" >/dev/null 2>&1
expect_eq slow.200 "$(jget "$(proc_dir "$T/app.slow" pq_app)/slow_queries.json" \
    '[(q["query"], q["duration_ms"] >= 300, q["frames"][:2]) for q in d["queries"]]')" \
    "[('SELECT pg_sleep(\$1)', True, ['slow', 'main'])]"
expect_eq folded "$(grep -c 'list_then_each' "$D/pq.folded" 2>&1) $(grep -c '^<svg\|<svg ' "$D/pq.svg" 2>&1)" "1 1"
expect_eq summary "$(sed -n '/^libpq/,/^$/p' "$D/summary.txt" | grep -E '^  (queries|connections|N\+1):' | sed 's/;.*//' | tr '\n' '|')" \
    "  queries:     45 calls of 15 normalized queries, 2 errors|  connections: 3 opened, 3 closed, peak 2, 1 failed|  N+1:         1 findings (n_plus_one.json)|"
expect_eq files "$(grep '^files' "$D/summary.txt" | grep -o 'queries.json.*pq.svg'; for f in queries.json queries.txt slow_queries.json n_plus_one.json pq.folded pq.svg; do [ -s "$D/$f" ] || echo "no $f"; done)" \
    "queries.json queries.txt slow_queries.json n_plus_one.json pq.folded pq.svg"
expect_eq literals.off "$(grep -rl 'secret-literal-7731' "$T/app.pfr" "$T/app.rep" | wc -l)" 0

# 1b. the async half (pq_app ... async): connects by PQconnectStart*/
# PQconnectPoll, resets, describes, pipelines, COPY; the server's
# pg_stat_statements counts what ran, for comparison
$PSQL -c "SELECT pg_stat_statements_reset()" >/dev/null 2>&1
run async env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=0 PERFAGENT_OUTPUT="$T/async.pfr" \
    "$W/pq_app" "$PG_SOCK" "$PORT" async "$T/nosock"
expect_eq a.run "$(rc_of async) $(cat "$T/async.out")" "0 done"
A=$T/none
report a.report "$T/async.rep" "$T/async.pfr" && A=$(proc_dir "$T/async.rep" pq_app)
# 2 async connects opened (one kept, one closed), a failed one (no server in
# the socket dir: its message's first line) and one given up while connecting;
# PQreset and PQresetStart/Poll are resets of the same connection, not opens
expect_eq a.conns "$(jget "$A/queries.json" '" ".join("%s=%s" % (k, d["connections"][k]) for k in ("opened", "closed", "peak", "failed", "resets"))')" \
    "opened=2 closed=2 peak=2 failed=2 resets=2"
expect_eq a.failures "$(jget "$A/queries.json" 'sorted(d["connections"]["failures"].items())')" \
    "[('PQfinish before the connection was made', 1), ('connection to server on socket \"$T/nosock/.s.PGSQL.$PORT\" failed: No such file or directory', 1)]"
# an async connect and a reset are timed from the start call to the poll
# that ends them (0.1 s of the program's own waiting in each), on the start
# call's stack in pq.folded
expect_eq a.connect_wait "$(jget "$A/queries.json" 'd["connections"]["connect_max_ms"] >= 100') $(awk '/;async_connect [0-9]/ { a += $NF >= 1e8 } /;resets [0-9]/ { r += $NF >= 1e8 } END { print a + 0, r + 0 }' "$A/pq.folded" 2>&1)" "True 1 1"
# describes: on the statement's row, not as calls (1 PQexecPrepared, 2 rows)
expect_eq a.describe "$(qall "$A" 'SELECT id, name FROM items WHERE id > $1')" "1 2 0 1 3 0 0 "
expect_eq a.describe_missing "$(qall "$A" 'EXECUTE no_stmt')" "0 0 0 0 1 1 0 "
expect_eq a.describe_portal "$(qall "$A" 'DESCRIBE PORTAL cur')" "0 0 0 0 2 0 0 "
# pipelines: each query its own rows; the failing one 42P01, the two after it
# aborted (not calls: they never ran), the next segment runs again
expect_eq a.pipe_rows "$(qall "$A" 'SELECT id FROM items WHERE id BETWEEN $1 AND $2') | $(qall "$A" 'UPDATE items SET name = name WHERE id > $1')" \
    "2 10 0 0 0 0 0  | 1 5 0 0 0 0 0 "
expect_eq a.pipe_abort "$(qall "$A" 'SELECT count(*) FROM items WHERE id < $1') | $(qall "$A" 'SELECT * FROM no_such_table_p') | $(qall "$A" 'SELECT id FROM items WHERE id < $1')" \
    "2 2 0 0 0 0 0  | 1 0 1 0 0 0 0 42P01:1 | 0 0 0 0 0 0 2 "
# each pipelined query is timed to its own result: 'fast' (flushed before the
# 0.3 s sleep) ends long before the sleep does
expect_eq a.pipe_timing "$(jget "$A/queries.json" 'sorted((q["query"], q["max_ms"] < 250, q["min_ms"] >= 300) for q in d["queries"] if q["query"] in ("SELECT $1", "SELECT pg_sleep($1)"))')" \
    "[('SELECT \$1', True, False), ('SELECT pg_sleep(\$1)', False, True)]"
# 150 sends in one pipeline: the first 127 are followed (128-deep FIFO, the
# last entry gives way to the skip that keeps the rest aligned), so the 10
# two-row queries sent after 20 of those results were read get their own
expect_eq a.pipe_deep "$(qall "$A" 'SELECT id FROM items WHERE id = $1') | $(qall "$A" 'SELECT id FROM items WHERE id >= $1 AND id < $2')" \
    "127 127 0 0 0 0 0  | 10 20 0 0 0 0 0 "
expect_eq a.pipe_not_nplus1 "$(jget "$A/n_plus_one.json" 'len(d["findings"])')" 0
# COPY: one call with PQcmdTuples' rows, timed to its final result (0.2 s
# between the data and PQputCopyEnd)
expect_eq a.copy "$(qall "$A" 'COPY copy_t FROM STDIN') $(jget "$A/queries.json" '[q["min_ms"] >= 200 for q in d["queries"] if q["query"] == "COPY copy_t FROM STDIN"]') | $(qall "$A" 'COPY (SELECT * FROM copy_t WHERE a <= $1) TO STDOUT')" \
    "1 250 0 0 0 0 0  [True] | 1 40 0 0 0 0 0 "
expect_eq a.total "$(jget "$A/queries.json" 'len(d["queries"]), sum(q["calls"] for q in d["queries"])')" "(23, 157)"
# the server agrees on what ran: the described statement ran once, the
# aborted ones never, the COPY once with its rows
pgss_a=$($PSQL -F ' ' -c "SELECT coalesce(sum(calls) FILTER (WHERE query = 'SELECT id, name FROM items WHERE id > \$1'), 0),
    coalesce(sum(calls) FILTER (WHERE query = 'SELECT id FROM items WHERE id < \$1'), 0),
    coalesce(sum(calls) FILTER (WHERE query = 'COPY copy_t FROM STDIN'), 0),
    coalesce(sum(rows) FILTER (WHERE query = 'COPY copy_t FROM STDIN'), 0) FROM pg_stat_statements" 2>&1)
ours_a=$(jget "$A/queries.json" '" ".join(str(sum(q[k] for q in d["queries"] if q["query"] == t)) for t, k in (("SELECT id, name FROM items WHERE id > $1", "calls"), ("SELECT id FROM items WHERE id < $1", "calls"), ("COPY copy_t FROM STDIN", "calls"), ("COPY copy_t FROM STDIN", "rows")))')
expect_eq a.pgss "ours $ours_a, server $pgss_a" "ours 1 0 1 250, server 1 0 1 250"

# 2. literals on request, with the heap recorded too
run lit env LD_PRELOAD="$AGENT" PERFAGENT_PQ_LITERALS=1 PERFAGENT_OUTPUT="$T/lit.pfr" \
    "$W/pq_app" "$PG_SOCK" "$PORT"
L=$T/none
report lit.report "$T/lit.rep" "$T/lit.pfr" && L=$(proc_dir "$T/lit.rep" pq_app)
expect_eq literals.on "$(jget "$L/queries.json" '[q.get("example") for q in d["queries"] if "secret" in q.get("example", "")]')" \
    "[\"SELECT count(*) FROM items WHERE name = 'secret-literal-7731'\"]"

# 3. off: PERFAGENT_PQ=0 with heap, CPU and socket tracing off records nothing
run off env LD_PRELOAD="$AGENT" PERFAGENT_PQ=0 PERFAGENT_NET=0 PERFAGENT_MALLOC_RATE=0 PERFAGENT_OUTPUT="$T/off.pfr" \
    "$W/pq_app" "$PG_SOCK" "$PORT"
expect_eq off "$(rc_of off) $(cat "$T/off.out") $(ls "$T"/off.pfr* 2>/dev/null | wc -l)" "0 done 0"

# 4. psql -c under perfagent run
run psql env PERFAGENT_MALLOC_RATE=0 "$PERFAGENT" run -o "$T/psql" -- \
    psql -X -A -t -h "$PG_SOCK" -p "$PORT" -U postgres -d postgres -c "SELECT 42 AS answer"
P=$(proc_dir "$T/psql" psql)
expect_eq psql "$(rc_of psql) $(head -1 "$T/psql.out") $(qstat "$P" 'SELECT $1 AS answer')" "0 42 1 1 0 0 "

# 5. pgbench: select-only, 2 clients x 25 transactions; the statement count
# must match pgbench's own and the server's pg_stat_statements
timeout 60 pgbench -i -s 1 -q -h "$PG_SOCK" -p "$PORT" -U postgres postgres >"$T/pgi.out" 2>&1
$PSQL -c "SELECT pg_stat_statements_reset()" >/dev/null 2>&1
run bench env PERFAGENT_MALLOC_RATE=0 "$PERFAGENT" run -o "$T/bench" -- \
    pgbench -n -S -t 25 -c 2 -j 1 -h "$PG_SOCK" -p "$PORT" -U postgres postgres
G=$(proc_dir "$T/bench" pgbench)
pgss=$($PSQL -c "SELECT calls FROM pg_stat_statements WHERE query LIKE 'SELECT abalance FROM pgbench_accounts%'" 2>&1)
expect_eq pgbench "$(grep -o 'number of transactions actually processed: [0-9/]*' "$T/bench.out") $(qstat "$G" 'SELECT abalance FROM pgbench_accounts WHERE aid = $1') pgss=$pgss" \
    "number of transactions actually processed: 50/50 50 50 0 0  pgss=50"

# 5b. pgbench's TPC-B-like script, prepared (PQprepare + PQsendQueryPrepared),
# 2 clients x 20 transactions on 2 threads, with its per-statement report
# (-r): every statement of the script runs once per transaction, so each
# must have pgbench's transaction count as calls, its failures column as
# errors, one prepare per client; and the server's pg_stat_statements calls
# for the five DML statements.  (pg_stat_statements counts the prepared
# BEGIN and END once per PREPARE, not per execution: not compared.)
$PSQL -c "SELECT pg_stat_statements_reset()" >/dev/null 2>&1
run tpcb env PERFAGENT_MALLOC_RATE=0 "$PERFAGENT" run -o "$T/tpcb" -- \
    pgbench -n -r -M prepared -t 20 -c 2 -j 2 -h "$PG_SOCK" -p "$PORT" -U postgres postgres
$PSQL -F '|' -c "SELECT calls, query FROM pg_stat_statements" >"$T/tpcb.pgss" 2>&1
G=$(proc_dir "$T/tpcb" pgbench)
expect_eq pgbench.tpcb "$($PY - "$T/tpcb.out" "$G/queries.json" "$T/tpcb.pgss" <<'PYEOF' 2>&1
import json, re, sys
out = open(sys.argv[1]).read()
tx = re.search(r"actually processed: (\d+)/(\d+)", out)
failed = re.search(r"number of failed transactions: (\d+)", out)
ours = {q["query"]: q for q in json.load(open(sys.argv[2]))["queries"]}
pgss = {}
for line in open(sys.argv[3]):
    if "|" in line:
        n, q = line.rstrip("\n").split("|", 1)
        pgss[q] = int(n)
n_tx = int(tx.group(1))
stmts, bad = 0, []
# "  0.169  0  BEGIN;": latency, failures, command; \set lines are not SQL
for m in re.finditer(r"^\s+[\d.]+\s+(\d+)\s+([A-Z].*;)$", out, re.M):
    fails, cmd = int(m.group(1)), m.group(2)
    names = []
    def num(v):
        if v.group(1) not in names:
            names.append(v.group(1))
        return "$%d" % (names.index(v.group(1)) + 1)
    text = re.sub(r":(\w+)", num, cmd)[:-1]  # the statement ends before its ';'
    q = ours.get(text)
    got = (q["calls"], q["errors"], q["prepares"]) if q else None
    if got != (n_tx, fails, 2):
        bad.append("%s: ours %s, pgbench %d/%d" % (text, got, n_tx, fails))
    if not text.startswith(("BEGIN", "END")) and pgss.get(text) != (q or {}).get("calls"):
        bad.append("%s: pgss %s" % (text, pgss.get(text)))
    stmts += 1
print("tx %s/%s failed %s, %d statements, %d in pgss" % (tx.group(1), tx.group(2),
      failed.group(1), stmts, sum(1 for t in pgss if t.startswith(("UPDATE pgbench", "SELECT abalance", "INSERT INTO pgbench_history")))), bad)
PYEOF
)" "tx 40/40 failed 0, 7 statements, 5 in pgss []"

# 6. a program without libpq never gets it
env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=0 PERFAGENT_OUTPUT="$T/sleep.pfr" sleep 2 &
spid=$!
sleep 0.5
maps=$(cat /proc/$spid/maps 2>/dev/null)
wait $spid
expect_eq no_libpq "agent=$(grep -c libperfagent <<<"$maps" | tr -d ' ' | sed 's/^[1-9][0-9]*$/yes/') libpq=$(grep -c libpq <<<"$maps") files=$(ls "$T"/sleep.pfr* 2>/dev/null | wc -l)" \
    "agent=yes libpq=0 files=0"

pg_stop
finish
