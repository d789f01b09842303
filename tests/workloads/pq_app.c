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
 *
 * pq_app SOCKET_DIR PORT async BAD_SOCKET_DIR: the other half of libpq, in
 * a process of its own (its own queries.json):
 *   async_connect: PQconnectStart (kept: c; 0.1 s before its first poll),
 *                 PQconnectStartParams (closed),
 *                 both polled to OK, open together; one to BAD_SOCKET_DIR
 *                 (fails); one given up with PQfinish while connecting
 *   resets:       PQreset(c), then PQresetStart(c) + PQresetPoll to OK
 *                 (0.1 s before the first poll)
 *   describes:    PQprepare d_stmt; 2 x PQdescribePrepared + 1 x
 *                 PQsendDescribePrepared; 1 x PQexecPrepared (rows 2);
 *                 PQdescribePrepared of no_stmt (26000); a cursor "cur"
 *                 described with PQdescribePortal and PQsendDescribePortal
 *   pipeline:     [BETWEEN 1..7 (7 rows), BETWEEN 1..3 (3), UPDATE id > 195 (5)]
 *                 + flush request + sync; [fast, flush request,
 *                 pg_sleep(0.3)] + sync: fast is timed to its own result;
 *                 [count id < 11 (1), no_such_table_p (42P01), 2 x id < $1
 *                 (aborted)] + sync, then count id < 11 again (1);
 *                 150 x "id = $1" (1 row each) in one pipeline, 20 of their
 *                 results read, 10 x "id >= $1 AND id < $2" (2 rows each)
 *                 sent behind the other 130, + sync
 *   copy:         COPY copy_t FROM STDIN of 250 rows (0.2 s between the data
 *                 and PQputCopyEnd), COPY (... a <= 40) TO STDOUT: 40 rows
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

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

/* ---- the async half -------------------------------------------------- */

static void msleep(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls an async connect or reset to its end, waiting on the socket as
 * libpq's manual says; PGRES_POLLING_OK or _FAILED. */
static PostgresPollingStatusType poll_to_end(PGconn *c, int reset)
{
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        fd_set fds;
        int fd = PQsocket(c);
        FD_ZERO(&fds);
        if (fd >= 0) {
            FD_SET(fd, &fds);
            if (st == PGRES_POLLING_READING)
                select(fd + 1, &fds, NULL, NULL, NULL);
            else
                select(fd + 1, NULL, &fds, NULL, NULL);
        }
        st = reset ? PQresetPoll(c) : PQconnectPoll(c);
    }
    return st;
}

static NOINLINE PGconn *async_connect(const char *sock, const char *port, const char *bad_sock)
{
    char info[512];
    const char *kw[] = {"host", "port", "dbname", "user", NULL};
    const char *val[] = {sock, port, "postgres", "postgres", NULL};
    PGconn *c, *c2, *bad, *gone;
    snprintf(info, sizeof(info), "host=%s port=%s dbname=postgres user=postgres", sock, port);
    c = PQconnectStart(info);
    msleep(100); /* the program does other things before it polls */
    if (!c || PQstatus(c) == CONNECTION_BAD || poll_to_end(c, 0) != PGRES_POLLING_OK)
        return NULL;
    c2 = PQconnectStartParams(kw, val, 0);
    if (!c2 || PQstatus(c2) == CONNECTION_BAD || poll_to_end(c2, 0) != PGRES_POLLING_OK)
        return NULL;
    run(c2, "SELECT 2 AS two");
    PQfinish(c2);
    snprintf(info, sizeof(info), "host=%s port=%s dbname=postgres user=postgres", bad_sock, port);
    bad = PQconnectStart(info);
    if (bad && PQstatus(bad) != CONNECTION_BAD && poll_to_end(bad, 0) != PGRES_POLLING_FAILED)
        return NULL;
    PQfinish(bad);
    snprintf(info, sizeof(info), "host=%s port=%s dbname=postgres user=postgres", sock, port);
    gone = PQconnectStart(info);
    PQfinish(gone); /* given up while connecting */
    return c;
}

static NOINLINE int resets(PGconn *c)
{
    PQreset(c);
    if (PQstatus(c) != CONNECTION_OK || !PQresetStart(c))
        return -1;
    msleep(100);
    if (poll_to_end(c, 1) != PGRES_POLLING_OK)
        return -1;
    return 0;
}

static NOINLINE void describes(PGconn *c)
{
    const char *v[1] = {"198"};
    PQclear(PQprepare(c, "d_stmt", "SELECT id, name FROM items WHERE id > $1", 1, NULL));
    PQclear(PQdescribePrepared(c, "d_stmt"));
    PQclear(PQdescribePrepared(c, "d_stmt"));
    PQsendDescribePrepared(c, "d_stmt");
    drain(c);
    PQclear(PQexecPrepared(c, "d_stmt", 1, v, NULL, NULL, 0));
    PQclear(PQdescribePrepared(c, "no_stmt"));
    run(c, "BEGIN");
    run(c, "DECLARE cur CURSOR FOR SELECT id FROM items");
    PQclear(PQdescribePortal(c, "cur"));
    PQsendDescribePortal(c, "cur");
    drain(c);
    run(c, "COMMIT");
}

static void send1(PGconn *c, const char *q, int n, const char *a, const char *b)
{
    const char *v[2] = {a, b};
    if (!PQsendQueryParams(c, q, n, NULL, v, NULL, NULL, 0))
        fprintf(stderr, "send: %s", PQerrorMessage(c));
}

/* Reads n queries' results (each ends with a NULL), then the sync. */
static void read_pipeline(PGconn *c, int n)
{
    PGresult *r;
    for (int i = 0; i < n; i++)
        drain(c);
    r = PQgetResult(c);
    if (!r || PQresultStatus(r) != PGRES_PIPELINE_SYNC)
        fprintf(stderr, "pipeline: no sync\n");
    PQclear(r);
}

static NOINLINE void pipeline(PGconn *c)
{
    char v[16];
    PQenterPipelineMode(c);
    send1(c, "SELECT id FROM items WHERE id BETWEEN $1 AND $2", 2, "1", "7");
    send1(c, "SELECT id FROM items WHERE id BETWEEN $1 AND $2", 2, "1", "3");
    send1(c, "UPDATE items SET name = name WHERE id > $1", 1, "195", NULL);
    PQsendFlushRequest(c);
    PQpipelineSync(c);
    read_pipeline(c, 3);

    send1(c, "SELECT 'fast'", 0, NULL, NULL);
    PQsendFlushRequest(c); /* the server sends fast's result before sleeping */
    send1(c, "SELECT pg_sleep(0.3)", 0, NULL, NULL);
    PQpipelineSync(c);
    read_pipeline(c, 2);

    send1(c, "SELECT count(*) FROM items WHERE id < $1", 1, "11", NULL);
    send1(c, "SELECT * FROM no_such_table_p", 0, NULL, NULL);
    send1(c, "SELECT id FROM items WHERE id < $1", 1, "4", NULL);
    send1(c, "SELECT id FROM items WHERE id < $1", 1, "6", NULL);
    PQpipelineSync(c);
    read_pipeline(c, 4);
    send1(c, "SELECT count(*) FROM items WHERE id < $1", 1, "11", NULL);
    PQpipelineSync(c);
    read_pipeline(c, 1);

    for (int i = 1; i <= 150; i++) {
        snprintf(v, sizeof(v), "%d", i);
        send1(c, "SELECT id FROM items WHERE id = $1", 1, v, NULL);
    }
    PQflush(c);
    for (int i = 0; i < 20; i++) /* 20 results read, 130 in flight: */
        drain(c);
    for (int i = 1; i <= 10; i++) { /* 10 more sent behind them */
        char w[16];
        snprintf(v, sizeof(v), "%d", i);
        snprintf(w, sizeof(w), "%d", i + 2);
        send1(c, "SELECT id FROM items WHERE id >= $1 AND id < $2", 2, v, w);
    }
    PQpipelineSync(c);
    read_pipeline(c, 140);
    if (!PQexitPipelineMode(c))
        fprintf(stderr, "pipeline exit: %s", PQerrorMessage(c));
}

static NOINLINE void copy(PGconn *c)
{
    char line[64], *buf;
    PGresult *r;
    int n;
    run(c, "CREATE TABLE copy_t (a int, b text)");
    r = PQexec(c, "COPY copy_t FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN)
        fprintf(stderr, "copy in: %s", PQerrorMessage(c));
    PQclear(r);
    for (int i = 1; i <= 250; i++) {
        n = snprintf(line, sizeof(line), "%d\trow %d\n", i, i);
        PQputCopyData(c, line, n);
    }
    msleep(200);
    PQputCopyEnd(c, NULL);
    drain(c);
    PQsendQuery(c, "COPY (SELECT * FROM copy_t WHERE a <= 40) TO STDOUT");
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COPY_OUT)
        fprintf(stderr, "copy out: %s", PQerrorMessage(c));
    PQclear(r);
    n = 0;
    while (PQgetCopyData(c, &buf, 0) > 0) {
        n++;
        PQfreemem(buf);
    }
    drain(c);
    if (n != 40)
        fprintf(stderr, "copy out: %d rows\n", n);
}

static int async_main(const char *sock, const char *port, const char *bad_sock)
{
    PGconn *c = async_connect(sock, port, bad_sock);
    if (!c) {
        fprintf(stderr, "async connect failed\n");
        return 1;
    }
    if (resets(c) < 0) {
        fprintf(stderr, "reset: %s", PQerrorMessage(c));
        return 1;
    }
    run(c, "DROP TABLE IF EXISTS items");
    run(c, "DROP TABLE IF EXISTS copy_t");
    run(c, "CREATE TABLE items (id int PRIMARY KEY, name text)");
    run(c, "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 200) g");
    describes(c);
    pipeline(c);
    copy(c);
    PQfinish(c);
    printf("done\n");
    return 0;
}

int main(int argc, char **argv)
{
    char info[512];
    PGconn *c, *c2, *c3, *bad;
    if (argc >= 5 && strcmp(argv[3], "async") == 0)
        return async_main(argv[1], argv[2], argv[4]);
    if (argc < 3) {
        fprintf(stderr, "usage: pq_app SOCKET_DIR PORT [async BAD_SOCKET_DIR]\n");
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
