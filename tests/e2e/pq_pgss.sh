#!/usr/bin/env bash
# Our normalized query texts (agent/pq_norm.c) against the real thing:
# PostgreSQL 15's pg_stat_statements, on a throwaway server
# (tests/e2e/lib/pg.bash).  psql runs a list of statements under the agent
# (libpq tracing only), one connection; then each statement's text and
# calls in our queries.json must be the server's query and calls, exactly,
# except where README says we differ on purpose (IN lists, comments and
# white space, utility statements), and there our text is the one given.
# The list also has texts that differ in integers only (the per-connection
# cache reuses one normalization for them) and texts of one length that
# differ elsewhere (a cache keyed by length would give a stale text).
# Prints 5 ok/FAIL lines.
source "$(dirname "$0")/common.bash"
source "$(dirname "$0")/lib/pg.bash"
require_product

PORT=$((55329 + $$ % 500))
if ! pg_start "$T/pg" "$PORT"; then
    fail pg.start "the server did not start"
fi
PSQL="psql -X -A -t -q -h $PG_SOCK -p $PORT -U postgres -d postgres"
$PSQL -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" -c "CREATE TABLE t (a int, b text, c bool)" \
    >"$T/setup.out" 2>&1

# One statement a line; all run on one connection, in this order.  (Not
# "ORDER BY (1)": the server files it under DISTINCT ON (1)'s query id.)
cat >"$T/q.sql" <<'SQL'
SELECT a FROM t WHERE c = true;
SELECT a FROM t WHERE c = false AND a = 1;
SELECT true, false, null;
SELECT a, count(*) FROM t GROUP BY 1;
SELECT a, b FROM t ORDER BY 2, 1 DESC;
SELECT a FROM t ORDER BY a + 1;
SELECT a FROM t WHERE a = 5;
SELECT b FROM t WHERE a = 5;
SELECT a FROM t WHERE a = -5;
SELECT a FROM t WHERE a = - 7;
SELECT a FROM t WHERE a = 123456;
SELECT a FROM t LIMIT 10 OFFSET 2;
SELECT a FROM t LIMIT ALL;
SELECT 'x'::text, 1::int, interval '1 day', date '2020-01-01';
SELECT row_number() OVER (ORDER BY 1) FROM t;
SELECT array_agg(a ORDER BY 1) FROM t;
SELECT DISTINCT ON (1) a FROM t;
SELECT a FROM t GROUP BY 1 HAVING count(*) > 2;
SELECT a FROM t GROUP BY ROLLUP (1);
SELECT E'a\'b', $$x$$;
SELECT a FROM t WHERE b = 'x' ORDER BY 1 LIMIT 3;
SELECT a FROM t WHERE a = -5::int;
SELECT a FROM t WHERE a - 5 > 0;
SELECT a FROM t WHERE a IS NULL AND c IS NOT TRUE;
SELECT a FROM t WHERE b = NULL OR c = NOT false;
SELECT a, b FROM (SELECT a, b FROM t ORDER BY 1) s GROUP BY 1, 2 ORDER BY 2 DESC, 1;
SELECT -1.5, - 2, 3-4;
INSERT INTO t VALUES (-1, 'x', true);
UPDATE t SET a = -a - 1 WHERE c;
SELECT CASE WHEN a > 1 THEN -1 ELSE 0 END FROM t;
VALUES (1, 'a'), (2, 'b');
SELECT a FROM t WHERE a = ANY('{1,2}'::int[]);
WITH x AS (SELECT 1 AS y) SELECT y FROM x ORDER BY 1;
SELECT a FROM t UNION SELECT 2 ORDER BY 1;
DELETE FROM t WHERE a = 3 RETURNING -a, 4;
SELECT a FROM t WHERE a IN (1, 2, 3);
SELECT  a   FROM t -- comment 7
;
SET work_mem = '64MB';
SELECT a FROM t WHERE a = 6;
SELECT a FROM t WHERE a IN (4, 5, 6);
SQL
# Where we differ on purpose: the server's text, then ours.
cat >"$T/differ" <<'EOF2'
SELECT a FROM t WHERE a IN ($1, $2, $3)|SELECT a FROM t WHERE a IN (...)
SELECT  a   FROM t -- comment 7|SELECT a FROM t
SET work_mem = '64MB'|SET work_mem = $1
EOF2

$PSQL -c "SELECT pg_stat_statements_reset()" >/dev/null 2>&1
run psql env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=0 PERFAGENT_CPU_HZ=0 PERFAGENT_NET=0 \
    PERFAGENT_OUTPUT="$T/q.pfr" $PSQL -v ON_ERROR_STOP=1 -f "$T/q.sql"
$PSQL -F '|' -c "SELECT calls, query FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'" \
    >"$T/pgss" 2>&1
expect_eq run "$(rc_of psql) $(wc -l <"$T/pgss")" "0 35"
D=$T/none
if report report "$T/rep" "$T/q.pfr"*; then D=$(proc_dir "$T/rep" psql); fi

# compare: "same" mismatches, "differ" mismatches, the texts of each side
# that the other lacks
$PY - "$T/pgss" "$D/queries.json" "$T/differ" >"$T/cmp" 2>&1 <<'PYEOF'
import json, sys
pg = {}
for line in open(sys.argv[1]):
    if "|" in line:
        n, q = line.rstrip("\n").split("|", 1)
        pg[q] = int(n)
try:
    ours = {q["query"]: q["calls"] for q in json.load(open(sys.argv[2]))["queries"]}
except Exception as e:
    ours = {}
    print("no queries.json: %s" % e)
differ = dict(l.rstrip("\n").split("|", 1) for l in open(sys.argv[3]))
same = [(q, n, ours.get(q)) for q, n in sorted(pg.items()) if q not in differ and ours.get(q) != n]
diff = [(p, o, pg.get(p), ours.get(o)) for p, o in sorted(differ.items())
        if pg.get(p) is None or pg.get(p) != ours.get(o)]
extra = sorted(set(ours) - set(pg) - set(differ.values()))
print("same", len(pg) - len(differ), same)
print("differ", len(differ), diff)
print("extra", extra)
PYEOF
expect_eq same "$(grep '^same' "$T/cmp" || head -c 300 "$T/cmp")" "same 32 []"
expect_eq differ "$(grep '^differ' "$T/cmp" || head -c 300 "$T/cmp")" "differ 3 []"
expect_eq extra "$(grep '^extra' "$T/cmp" || head -c 300 "$T/cmp")" "extra []"

pg_stop
finish
