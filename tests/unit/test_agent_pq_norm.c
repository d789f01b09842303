/*
 * test_agent_pq_norm — agent/pq_norm.c: which parts of a query are
 * constants (become $n) and which are not, the numbering after the query's
 * own parameters, IN lists, the operation, truncation and the values' hash.
 */
#include "check.h"
#include "pq.h"

static char out[256], op[16];
static uint64_t h;

static const char *norm(const char *q)
{
    pa_pq_normalize(q, strlen(q), out, sizeof(out), op, sizeof(op), &h);
    return out;
}

TEST(constants)
{
    CHECK_STREQ(norm("SELECT name FROM items WHERE id = 42"), "SELECT name FROM items WHERE id = $1");
    CHECK_STREQ(op, "SELECT");
    CHECK_STREQ(norm("select * from t where a = 'it''s' and b = 1.5e3 and c = .5 and d = 0x1F"),
                "select * from t where a = $1 and b = $2 and c = $3 and d = $4");
    CHECK_STREQ(op, "SELECT");
    CHECK_STREQ(norm("SELECT E'a\\'b', B'101', X'ff', U&'x', $$dollar 'x' 1$$, $q$ 2 $q$"),
                "SELECT $1, $2, $3, $4, $5, $6");
    /* digits inside identifiers and quoted identifiers are no constants */
    CHECK_STREQ(norm("SELECT t1.c2 FROM \"Tab 3\" t1"), "SELECT t1.c2 FROM \"Tab 3\" t1");
    CHECK_EQ_U64(h, 0);
}

TEST(params_and_layout)
{
    /* new numbers follow the highest parameter, as pg_stat_statements */
    CHECK_STREQ(norm("UPDATE t SET a = $2, b = 7 WHERE id = $1"),
                "UPDATE t SET a = $2, b = $3 WHERE id = $1");
    CHECK_STREQ(op, "UPDATE");
    CHECK_STREQ(norm("  SELECT  1 -- the answer 42\n  /* 3 */ ,\t2  "), "SELECT $1 , $2");
    CHECK_STREQ(norm("(select 1)"), "(select $1)");
    CHECK_STREQ(op, "SELECT");
}

TEST(in_lists)
{
    CHECK_STREQ(norm("SELECT * FROM t WHERE id IN (1, 2, 3) AND x = 5"),
                "SELECT * FROM t WHERE id IN (...) AND x = $1");
    CHECK_STREQ(norm("SELECT * FROM t WHERE id in(7) AND x = 5"),
                "SELECT * FROM t WHERE id in(...) AND x = $1");
    CHECK_STREQ(norm("SELECT * FROM t WHERE id IN ($1, $2) AND s IN ('a','b')"),
                "SELECT * FROM t WHERE id IN (...) AND s IN (...)");
    /* not a list of constants: left as it is */
    CHECK_STREQ(norm("SELECT * FROM t WHERE id IN (SELECT 1)"),
                "SELECT * FROM t WHERE id IN (SELECT $1)");
    CHECK_STREQ(norm("SELECT * FROM t WHERE id IN (a, 2)"), "SELECT * FROM t WHERE id IN (a, $1)");
    CHECK_STREQ(norm("SELECT min(1, 2)"), "SELECT min($1, $2)");
}

TEST(hash_of_values)
{
    uint64_t a, b;
    norm("SELECT 1 WHERE x = 'a'");
    a = h;
    norm("SELECT 1 WHERE x = 'b'");
    b = h;
    CHECK(a != 0 && b != 0 && a != b);
    norm("SELECT 1 WHERE x = 'a'");
    CHECK_EQ_U64(h, a);
    norm("SELECT 12, 3");
    a = h;
    norm("SELECT 1, 23");
    CHECK(a != h);
}

/* What PostgreSQL 15's pg_stat_statements does, checked against the real
 * server (tests/e2e/pq_pgss.sh runs these through it). */
TEST(as_the_server)
{
    /* TRUE, FALSE, NULL are constants; the tests IS [NOT] ... are not */
    CHECK_STREQ(norm("SELECT a FROM t WHERE c = true AND d = FALSE OR e = null"),
                "SELECT a FROM t WHERE c = $1 AND d = $2 OR e = $3");
    CHECK_STREQ(norm("SELECT a FROM t WHERE c IS NOT TRUE AND b IS NULL OR c = NOT false"),
                "SELECT a FROM t WHERE c IS NOT TRUE AND b IS NULL OR c = NOT $1");
    CHECK_STREQ(norm("CREATE TABLE x (a int NOT NULL)"), "CREATE TABLE x (a int NOT NULL)");
    CHECK_STREQ(norm("SELECT a FROM t LIMIT ALL"), "SELECT a FROM t LIMIT $1");
    CHECK_STREQ(norm("SELECT ALL a FROM t"), "SELECT ALL a FROM t");
    /* a sign is part of the constant, not after an operand, not before a cast */
    CHECK_STREQ(norm("SELECT -1.5, - 2, 3-4, a -5, -a, -5::int FROM t WHERE a = -6"),
                "SELECT $1, $2, $3-$4, a -$5, -a, -$6::int FROM t WHERE a = $7");
    CHECK(h != 0);
    /* column numbers of ORDER BY, GROUP BY, DISTINCT ON stay */
    CHECK_STREQ(norm("SELECT a, b FROM t GROUP BY 1, 2 ORDER BY 2 DESC, 1 LIMIT 3"),
                "SELECT a, b FROM t GROUP BY 1, 2 ORDER BY 2 DESC, 1 LIMIT $1");
    CHECK_STREQ(norm("SELECT DISTINCT ON (1) a FROM (SELECT a FROM t ORDER BY 1) s ORDER BY (1)"),
                "SELECT DISTINCT ON (1) a FROM (SELECT a FROM t ORDER BY 1) s ORDER BY (1)");
    CHECK_STREQ(norm("SELECT a FROM t GROUP BY ROLLUP (1, 2) HAVING count(*) > 2"),
                "SELECT a FROM t GROUP BY ROLLUP (1, 2) HAVING count(*) > $1");
    /* ... but not in expressions, windows and aggregates, nor 1.5 */
    CHECK_STREQ(norm("SELECT array_agg(a ORDER BY 1), rank() OVER (ORDER BY 1) FROM t ORDER BY a + 1, 1.5"),
                "SELECT array_agg(a ORDER BY $1), rank() OVER (ORDER BY $2) FROM t ORDER BY a + $3, $4");
    CHECK_STREQ(norm("SELECT a FROM t ORDER BY f(1), 1::int"), "SELECT a FROM t ORDER BY f($1), $2::int");
    /* the statement's ';' is not part of it */
    CHECK_STREQ(norm("SELECT abalance FROM pgbench_accounts WHERE aid = 4711; "),
                "SELECT abalance FROM pgbench_accounts WHERE aid = $1");
    CHECK_STREQ(norm("SELECT 1; SELECT 2;"), "SELECT $1; SELECT $2");
}

TEST(truncation)
{
    char small[8], o[4];
    uint64_t x;
    size_t n = pa_pq_normalize("SELECT 123456", 13, small, sizeof(small), o, sizeof(o), &x);
    CHECK_EQ_U64(n, 7);
    CHECK_STREQ(small, "SELECT ");
    CHECK_STREQ(o, "SEL");
}

/* The hand encoder writes what protobuf-c's perfagent__query_event__pack
 * writes for the same QueryEvent (these bytes are its output): fields in
 * number order, zeros and empty strings left out, 2-byte tags from 16 on,
 * 10-byte varints.  (tools: 200 000 random events compared equal.) */
TEST(event_encoding)
{
    static const uint8_t want[] =
        "\x08\xe7\x24\x18\xac\x02\x22\x09\x53\x45\x4c\x45\x43\x54\x20\x24\x31\x28\x01"
        "\x38\x7f\x42\x02\x64\x62\x4a\x07\x2f\x73\x3a\x35\x34\x33\x32\x52\x06\x53\x45"
        "\x4c\x45\x43\x54\x60\x01\x6a\x01\x75\x80\x01\x80\x80\x80\x80\x80\x20\x88\x01"
        "\x81\x80\x80\x80\x80\x80\x80\x80\x80\x01\x90\x01\x01";
    uint8_t buf[256];
    pa_pq_event_t e = {.tid = 4711, .duration_ns = 300, .rows = 1, .stack_id = 127,
                       .conn_id = 1, .kind = 0, .start_mono_ns = 1ull << 40,
                       .params_hash = 0x8000000000000001ull, .pipelined = 1};
    size_t n;
    e.str[PA_PQ_S_TEXT] = "SELECT $1";
    e.str[PA_PQ_S_RAW] = "";
    e.str[PA_PQ_S_OP] = "SELECT";
    e.str[PA_PQ_S_ERROR] = NULL;
    e.str[PA_PQ_S_SQLSTATE] = "";
    e.str[PA_PQ_S_DB] = "db";
    e.str[PA_PQ_S_PEER] = "/s:5432";
    e.str[PA_PQ_S_USER] = "u";
    n = pa_pq_event_size(&e);
    CHECK_EQ_U64(n, sizeof(want) - 1);
    memset(buf, 0xee, sizeof(buf));
    CHECK_EQ_U64(pa_pq_event_pack(&e, buf), sizeof(want) - 1);
    CHECK(memcmp(buf, want, sizeof(want) - 1) == 0);
    CHECK_EQ_U64(buf[sizeof(want) - 1], 0xee); /* not a byte more */
}

int main(void)
{
    RUN(constants);
    RUN(params_and_layout);
    RUN(in_lists);
    RUN(hash_of_values);
    RUN(as_the_server);
    RUN(truncation);
    RUN(event_encoding);
    CHECK_DONE();
}
