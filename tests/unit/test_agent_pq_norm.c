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

TEST(truncation)
{
    char small[8], o[4];
    uint64_t x;
    size_t n = pa_pq_normalize("SELECT 123456", 13, small, sizeof(small), o, sizeof(o), &x);
    CHECK_EQ_U64(n, 7);
    CHECK_STREQ(small, "SELECT ");
    CHECK_STREQ(o, "SEL");
}

int main(void)
{
    RUN(constants);
    RUN(params_and_layout);
    RUN(in_lists);
    RUN(hash_of_values);
    RUN(truncation);
    CHECK_DONE();
}
