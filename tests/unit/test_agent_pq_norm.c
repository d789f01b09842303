/*
 * test_agent_pq_norm — agent/pq_norm.c: which parts of a query are
 * constants (become $n) and which are not, the numbering after the query's
 * own parameters, IN lists, the operation, truncation and the values' hash.
 */
#include <ctype.h>

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

/* The per-connection cache (pq.c) reuses a normalized text for a text
 * that pa_pq_tmpl_match says normalizes the same: it must never be wrong.
 * Each base text's integers are replaced, one at a time, by integers and
 * by things that are not (or that join what follows): wherever the match
 * says yes, the normalizer itself must give the same text and hash. */
TEST(template_reuse)
{
    static const char *base[] = {
        "SELECT abalance FROM pgbench_accounts WHERE aid = 4711;",
        "SELECT a, 2 FROM t WHERE b = 3 ORDER BY 1 LIMIT 10",
        "UPDATE t SET a = a - 5 WHERE id = 42 AND c = -6",
        "SELECT a FROM t WHERE a = 7x1 OR b = 5e OR c = 9",
        "SELECT a FROM t WHERE a = 5 AND b = 'x' AND c = 8",
        "SELECT a FROM t WHERE id IN (1, 2) AND c = 3",
        "SELECT t1.c2 FROM t1 WHERE x = 3.5 OR y = 4 OR z = 1::int",
        "SELECT $1, 5 FROM t WHERE a = 6",
        "5",
        "SELECT 1",
        "SELECT a FROM t WHERE a IN (1, b) AND c - 5 > 2 ORDER BY 1, 2 DESC",
        "SELECT x::int4 FROM t WHERE a = 1 LIMIT 2 OFFSET 3",
        "SELECT 1 FROM t WHERE a = 7 -- c 9\n AND b = 8 /* 1 */",
        "SELECT \"c 1\", -a, 3-4 FROM t GROUP BY 1 HAVING count(*) > 2",
        "INSERT INTO t VALUES (1, 2) RETURNING 3",
    };
    static const char *repl[] = {"7", "12345", "0", "0x1F", "5e3", "5.5", "-5", "'x'", "",
                                 "5a", "1_0", "007", " 9", "9 ", "1.", "$2"};
    char q[256], o2[256], op2[16], first[256];
    int hits = 0, tries = 0, wrong = 0;
    for (size_t b = 0; b < sizeof(base) / sizeof(base[0]); b++) {
        const char *r = base[b];
        size_t rn = strlen(r);
        pa_pq_tmpl_t t;
        uint64_t rh, qh, vh;
        pa_pq_normalize_tmpl(r, rn, out, sizeof(out), op, sizeof(op), &rh, &t);
        memcpy(first, out, sizeof(first));
        for (size_t i = 0; i < rn; i++) {
            size_t e = i;
            if (!isdigit((unsigned char)r[i]) || (i && isdigit((unsigned char)r[i - 1])))
                continue;
            while (isdigit((unsigned char)r[e]))
                e++;
            for (size_t k = 0; k < sizeof(repl) / sizeof(repl[0]); k++) {
                size_t qn = (size_t)snprintf(q, sizeof(q), "%.*s%s%s", (int)i, r, repl[k], r + e);
                tries++;
                if (!pa_pq_tmpl_match(r, rn, &t, q, qn, &vh))
                    continue;
                hits++;
                pa_pq_normalize(q, qn, o2, sizeof(o2), op2, sizeof(op2), &qh);
                if (strcmp(o2, first) || strcmp(op2, op) || qh != (t.exact ? rh : vh)) {
                    if (wrong++ < 5)
                        printf("  reused for \"%s\": \"%s\" (is \"%s\")\n", q, first, o2);
                }
            }
        }
    }
    CHECK_EQ_U64(wrong, 0);
    CHECK_EQ_U64(tries, 816);
    CHECK_EQ_U64(hits, 89);
    /* pgbench's texts: one normalization for all its ids, each id its hash */
    {
        pa_pq_tmpl_t t;
        uint64_t h1, v;
        const char *a = "SELECT abalance FROM pgbench_accounts WHERE aid = 4711;";
        const char *b2 = "SELECT abalance FROM pgbench_accounts WHERE aid = 93;";
        pa_pq_normalize_tmpl(a, strlen(a), out, sizeof(out), op, sizeof(op), &h1, &t);
        CHECK_EQ_U64(t.exact * 100 + t.n, 1);
        CHECK(pa_pq_tmpl_match(a, strlen(a), &t, b2, strlen(b2), &v) == 1);
        norm(b2);
        CHECK_EQ_U64(v, h);
        CHECK(v != h1);
        /* a different text of the same length is no match */
        CHECK(pa_pq_tmpl_match(a, strlen(a), &t, "SELECT bbalance FROM pgbench_accounts WHERE aid = 4711;", strlen(a), &v) == 0);
    }
}

/* The hand encoder writes what protobuf-c's perfagent__query_event__pack
 * writes for the same QueryEvent (these bytes are its output): fields in
 * number order, zeros and empty strings left out, 2-byte tags from 16 on,
 * 10-byte varints.  (A one-off comparison with protobuf-c on 200 000
 * random events found no difference.) */
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
    RUN(template_reuse);
    RUN(event_encoding);
    CHECK_DONE();
}
