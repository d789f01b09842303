/*
 * pq_app.c — a libpq client whose queries are known by construction, for
 * tests/e2e/pq.sh: pq_app SOCKET_DIR PORT.  Every phase's calls, rows and
 * errors are counted in its comment; the functions are noinline so that
 * their names are on the calling stacks.
 *
 *   setup:        CREATE TABLE, INSERT 100 rows (rows 100)
 *   list_then_each (N+1): 1 list query (rows 20), then 20 x
 *                 "SELECT name FROM items WHERE id = <n>" (rows 1 each)
 *   batched:      the same list query, then one IN list of 20 ids (rows 20)
 *   errors:       2 x SELECT from a missing table (SQLSTATE 42P01)
 *   prepared:     PQprepare + 4 x PQexecPrepared (rows 1 each)
 *   params:       3 x PQexecParams "... WHERE id > $1" (rows 1 each: count)
 *   async:        3 x PQsendQuery (rows 10 each); PQsendQueryParams (rows 5);
 *                 PQsendPrepare + PQsendQueryPrepared (rows 3)
 *   update:       UPDATE 12 rows; literal query with 'secret-literal-7731'
 *   slow:         SELECT pg_sleep(0.3)
 *   connections:  PQconnectdb (main), PQsetdbLogin, PQconnectdbParams, each
 *                 closed; one failed connect (no such database)
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))

static void run(PGconn *c, const char *q)
{
    PQclear(PQexec(c, q));
}

static NOINLINE void setup(PGconn *c)
{
    run(c, "DROP TABLE IF EXISTS items");
    run(c, "CREATE TABLE items (id int PRIMARY KEY, name text)");
    run(c, "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g");
}

static NOINLINE void list_then_each(PGconn *c)
{
    char q[128];
    PQclear(PQexec(c, "SELECT id FROM items WHERE id <= 20 ORDER BY id"));
    for (int i = 1; i <= 20; i++) {
        snprintf(q, sizeof(q), "SELECT name FROM items WHERE id = %d", i);
        PQclear(PQexec(c, q));
    }
}

static NOINLINE void batched(PGconn *c)
{
    char q[512];
    int n = snprintf(q, sizeof(q), "SELECT name FROM items WHERE id IN (");
    PQclear(PQexec(c, "SELECT id FROM items WHERE id <= 20 ORDER BY id"));
    for (int i = 1; i <= 20; i++)
        n += snprintf(q + n, sizeof(q) - (size_t)n, "%s%d", i > 1 ? ", " : "", i + 20);
    snprintf(q + n, sizeof(q) - (size_t)n, ")");
    PQclear(PQexec(c, q));
}

static NOINLINE void errors(PGconn *c)
{
    run(c, "SELECT * FROM no_such_table");
    run(c, "SELECT * FROM no_such_table");
}

static NOINLINE void prepared(PGconn *c)
{
    PQclear(PQprepare(c, "get_item", "SELECT name, id FROM items WHERE id = $1", 1, NULL));
    for (int i = 0; i < 4; i++) {
        char v[16];
        const char *vals[1] = {v};
        snprintf(v, sizeof(v), "%d", 50 + i);
        PQclear(PQexecPrepared(c, "get_item", 1, vals, NULL, NULL, 0));
    }
}

static NOINLINE void params(PGconn *c)
{
    const char *vals[1] = {"97"};
    for (int i = 0; i < 3; i++)
        PQclear(PQexecParams(c, "SELECT count(*) FROM items WHERE id > $1", 1, NULL, vals, NULL,
                             NULL, 0));
}

static void drain(PGconn *c)
{
    PGresult *r;
    while ((r = PQgetResult(c)))
        PQclear(r);
}

static NOINLINE void async(PGconn *c)
{
    const char *five[1] = {"5"}, *four[1] = {"4"};
    for (int i = 0; i < 3; i++) {
        PQsendQuery(c, "SELECT id FROM items WHERE id <= 10");
        drain(c);
    }
    PQsendQueryParams(c, "SELECT id FROM items WHERE id <= $1", 1, NULL, five, NULL, NULL, 0);
    drain(c);
    PQsendPrepare(c, "async_stmt", "SELECT id FROM items WHERE id < $1", 1, NULL);
    drain(c);
    PQsendQueryPrepared(c, "async_stmt", 1, four, NULL, NULL, 0);
    drain(c);
}

static NOINLINE void update(PGconn *c)
{
    run(c, "UPDATE items SET name = name WHERE id <= 12");
    run(c, "SELECT count(*) FROM items WHERE name = 'secret-literal-7731'");
}

static NOINLINE void slow(PGconn *c)
{
    PQclear(PQexec(c, "SELECT pg_sleep(0.3)")); /* PQexec called from here */
}

int main(int argc, char **argv)
{
    char info[512];
    PGconn *c, *c2, *c3, *bad;
    if (argc < 3) {
        fprintf(stderr, "usage: pq_app SOCKET_DIR PORT\n");
        return 2;
    }
    snprintf(info, sizeof(info), "host=%s port=%s dbname=postgres user=postgres", argv[1], argv[2]);
    c = PQconnectdb(info);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "connect: %s", PQerrorMessage(c));
        return 1;
    }
    setup(c);
    list_then_each(c);
    batched(c);
    errors(c);
    prepared(c);
    params(c);
    async(c);
    update(c);
    slow(c);
    c2 = PQsetdbLogin(argv[1], argv[2], NULL, NULL, "postgres", "postgres", NULL);
    run(c2, "SELECT 1");
    PQfinish(c2);
    {
        const char *kw[] = {"host", "port", "dbname", "user", NULL};
        const char *val[] = {argv[1], argv[2], "postgres", "postgres", NULL};
        c3 = PQconnectdbParams(kw, val, 0);
        run(c3, "SELECT 1");
        PQfinish(c3);
    }
    snprintf(info, sizeof(info), "host=%s port=%s dbname=no_such_db user=postgres", argv[1], argv[2]);
    bad = PQconnectdb(info);
    PQfinish(bad);
    PQfinish(c);
    printf("done\n");
    return 0;
}
