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

if ! pg_start "$T/pg" "$PORT"; then
    fail pg.start "the server did not start"
fi

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
PSQL="psql -X -A -t -h $PG_SOCK -p $PORT -U postgres -d postgres"
timeout 60 pgbench -i -s 1 -q -h "$PG_SOCK" -p "$PORT" -U postgres postgres >"$T/pgi.out" 2>&1
$PSQL -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null 2>&1
$PSQL -c "SELECT pg_stat_statements_reset()" >/dev/null 2>&1
run bench env PERFAGENT_MALLOC_RATE=0 "$PERFAGENT" run -o "$T/bench" -- \
    pgbench -n -S -t 25 -c 2 -j 1 -h "$PG_SOCK" -p "$PORT" -U postgres postgres
G=$(proc_dir "$T/bench" pgbench)
pgss=$($PSQL -c "SELECT calls FROM pg_stat_statements WHERE query LIKE 'SELECT abalance FROM pgbench_accounts%'" 2>&1)
expect_eq pgbench "$(grep -o 'number of transactions actually processed: [0-9/]*' "$T/bench.out") $(qstat "$G" 'SELECT abalance FROM pgbench_accounts WHERE aid = $1;') pgss=$pgss" \
    "number of transactions actually processed: 50/50 50 50 0 0  pgss=50"

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
