/*
 * hook_pq.c — the interposed libpq API (pq.h).  Each hook only: resolves the
 * real function with dlsym(RTLD_NEXT) at its first call, calls it, and
 * hands the outcome to pq.c.  The agent neither links nor loads libpq: only
 * a program that calls PQexec & co (libpq is then loaded) reaches these.
 *
 * The real call runs outside the reentrancy guard, so the allocations libpq
 * makes for the program (PGresult, PGconn) are recorded like any other;
 * pq.c takes the guard for its own work.  A hook reached from inside
 * another hook's real call (libpq calling its own exported functions, e.g.
 * PQconnectdb -> PQconnectPoll, PQexec -> PQgetResult through the PLT) only
 * passes through: `depth` says so.
 *
 * Built with frame pointers (Makefile): PA_HOOK_FP() is where the calling
 * stack starts.
 */
#include "pq.h"

#include <libpq-fe.h>

static PA_TLS int depth;

#define REAL(name) ((__typeof__(&name))pa_pq_real(&real_##name, #name))
#define SLOT(name) static void *real_##name

/* When to record: the agent is on and this is the program's own call. */
#define TRACE() (depth == 0 && pa_pq_active())

SLOT(PQconnectdb);
SLOT(PQconnectdbParams);
SLOT(PQsetdbLogin);
SLOT(PQfinish);
SLOT(PQexec);
SLOT(PQexecParams);
SLOT(PQprepare);
SLOT(PQexecPrepared);
SLOT(PQsendQuery);
SLOT(PQsendQueryParams);
SLOT(PQsendPrepare);
SLOT(PQsendQueryPrepared);
SLOT(PQgetResult);
SLOT(PQconnectStart);
SLOT(PQconnectStartParams);
SLOT(PQconnectPoll);
SLOT(PQreset);
SLOT(PQresetStart);
SLOT(PQresetPoll);
SLOT(PQdescribePrepared);
SLOT(PQdescribePortal);
SLOT(PQsendDescribePrepared);
SLOT(PQsendDescribePortal);

PA_EXPORT PGconn *PQconnectdb(const char *conninfo)
{
    __typeof__(&PQconnectdb) real = REAL(PQconnectdb);
    uint64_t t0;
    PGconn *c;
    if (!TRACE())
        return real(conninfo);
    t0 = pa_mono_ns();
    depth++;
    c = real(conninfo);
    depth--;
    pa_pq_connected(c, t0, PA_HOOK_FP());
    return c;
}

PA_EXPORT PGconn *PQconnectdbParams(const char *const *keywords, const char *const *values,
                                    int expand_dbname)
{
    __typeof__(&PQconnectdbParams) real = REAL(PQconnectdbParams);
    uint64_t t0;
    PGconn *c;
    if (!TRACE())
        return real(keywords, values, expand_dbname);
    t0 = pa_mono_ns();
    depth++;
    c = real(keywords, values, expand_dbname);
    depth--;
    pa_pq_connected(c, t0, PA_HOOK_FP());
    return c;
}

PA_EXPORT PGconn *PQsetdbLogin(const char *host, const char *port, const char *options,
                               const char *tty, const char *db, const char *login,
                               const char *pwd)
{
    __typeof__(&PQsetdbLogin) real = REAL(PQsetdbLogin);
    uint64_t t0;
    PGconn *c;
    if (!TRACE())
        return real(host, port, options, tty, db, login, pwd);
    t0 = pa_mono_ns();
    depth++;
    c = real(host, port, options, tty, db, login, pwd);
    depth--;
    pa_pq_connected(c, t0, PA_HOOK_FP());
    return c;
}

PA_EXPORT void PQfinish(PGconn *conn)
{
    __typeof__(&PQfinish) real = REAL(PQfinish);
    /* Before the real call: the connection's entry is keyed by its address,
     * which the real call frees. */
    if (TRACE())
        pa_pq_closing(conn, PA_HOOK_FP());
    depth++;
    real(conn);
    depth--;
}

PA_EXPORT PGresult *PQexec(PGconn *conn, const char *query)
{
    __typeof__(&PQexec) real = REAL(PQexec);
    uint64_t t0;
    PGresult *r;
    if (!TRACE())
        return real(conn, query);
    t0 = pa_mono_ns();
    depth++;
    r = real(conn, query);
    depth--;
    pa_pq_exec(conn, query, NULL, 0, NULL, NULL, NULL, r, t0, PA_HOOK_FP());
    return r;
}

PA_EXPORT PGresult *PQexecParams(PGconn *conn, const char *command, int nParams,
                                 const Oid *paramTypes, const char *const *paramValues,
                                 const int *paramLengths, const int *paramFormats,
                                 int resultFormat)
{
    __typeof__(&PQexecParams) real = REAL(PQexecParams);
    uint64_t t0;
    PGresult *r;
    if (!TRACE())
        return real(conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats,
                    resultFormat);
    t0 = pa_mono_ns();
    depth++;
    r = real(conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats,
             resultFormat);
    depth--;
    pa_pq_exec(conn, command, NULL, nParams, paramValues, paramLengths, paramFormats, r, t0,
               PA_HOOK_FP());
    return r;
}

PA_EXPORT PGresult *PQprepare(PGconn *conn, const char *stmtName, const char *query, int nParams,
                              const Oid *paramTypes)
{
    __typeof__(&PQprepare) real = REAL(PQprepare);
    uint64_t t0;
    PGresult *r;
    if (!TRACE())
        return real(conn, stmtName, query, nParams, paramTypes);
    t0 = pa_mono_ns();
    depth++;
    r = real(conn, stmtName, query, nParams, paramTypes);
    depth--;
    pa_pq_prepared(conn, stmtName, query, r, t0, PA_HOOK_FP());
    return r;
}

PA_EXPORT PGresult *PQexecPrepared(PGconn *conn, const char *stmtName, int nParams,
                                   const char *const *paramValues, const int *paramLengths,
                                   const int *paramFormats, int resultFormat)
{
    __typeof__(&PQexecPrepared) real = REAL(PQexecPrepared);
    uint64_t t0;
    PGresult *r;
    if (!TRACE())
        return real(conn, stmtName, nParams, paramValues, paramLengths, paramFormats,
                    resultFormat);
    t0 = pa_mono_ns();
    depth++;
    r = real(conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat);
    depth--;
    pa_pq_exec(conn, NULL, stmtName ? stmtName : "", nParams, paramValues, paramLengths,
               paramFormats, r, t0, PA_HOOK_FP());
    return r;
}

PA_EXPORT int PQsendQuery(PGconn *conn, const char *query)
{
    __typeof__(&PQsendQuery) real = REAL(PQsendQuery);
    uint64_t t0;
    int ok;
    if (!TRACE())
        return real(conn, query);
    t0 = pa_mono_ns();
    depth++;
    ok = real(conn, query);
    depth--;
    if (ok)
        pa_pq_sent(conn, PA_PQ_QUERY, query, NULL, 0, NULL, NULL, NULL, t0, PA_HOOK_FP());
    return ok;
}

PA_EXPORT int PQsendQueryParams(PGconn *conn, const char *command, int nParams,
                                const Oid *paramTypes, const char *const *paramValues,
                                const int *paramLengths, const int *paramFormats,
                                int resultFormat)
{
    __typeof__(&PQsendQueryParams) real = REAL(PQsendQueryParams);
    uint64_t t0;
    int ok;
    if (!TRACE())
        return real(conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats,
                    resultFormat);
    t0 = pa_mono_ns();
    depth++;
    ok = real(conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats,
              resultFormat);
    depth--;
    if (ok)
        pa_pq_sent(conn, PA_PQ_QUERY, command, NULL, nParams, paramValues, paramLengths,
                   paramFormats, t0, PA_HOOK_FP());
    return ok;
}

PA_EXPORT int PQsendPrepare(PGconn *conn, const char *stmtName, const char *query, int nParams,
                            const Oid *paramTypes)
{
    __typeof__(&PQsendPrepare) real = REAL(PQsendPrepare);
    uint64_t t0;
    int ok;
    if (!TRACE())
        return real(conn, stmtName, query, nParams, paramTypes);
    t0 = pa_mono_ns();
    depth++;
    ok = real(conn, stmtName, query, nParams, paramTypes);
    depth--;
    if (ok)
        pa_pq_sent(conn, PA_PQ_PREPARE, query, stmtName ? stmtName : "", 0, NULL, NULL, NULL, t0,
                   PA_HOOK_FP());
    return ok;
}

PA_EXPORT int PQsendQueryPrepared(PGconn *conn, const char *stmtName, int nParams,
                                  const char *const *paramValues, const int *paramLengths,
                                  const int *paramFormats, int resultFormat)
{
    __typeof__(&PQsendQueryPrepared) real = REAL(PQsendQueryPrepared);
    uint64_t t0;
    int ok;
    if (!TRACE())
        return real(conn, stmtName, nParams, paramValues, paramLengths, paramFormats,
                    resultFormat);
    t0 = pa_mono_ns();
    depth++;
    ok = real(conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat);
    depth--;
    if (ok)
        pa_pq_sent(conn, PA_PQ_QUERY, NULL, stmtName ? stmtName : "", nParams, paramValues,
                   paramLengths, paramFormats, t0, PA_HOOK_FP());
    return ok;
}

PA_EXPORT PGresult *PQgetResult(PGconn *conn)
{
    __typeof__(&PQgetResult) real = REAL(PQgetResult);
    PGresult *r;
    if (!TRACE())
        return real(conn);
    depth++;
    r = real(conn);
    depth--;
    pa_pq_result(conn, r);
    return r;
}

/* ---- async connects and resets ---------------------------------------------
 * The clock runs from the start call to the poll that says OK or FAILED
 * (the program's own waiting between polls included: that is the connect's
 * latency).  PQconnectdb & co call these themselves: depth passes them. */

PA_EXPORT PGconn *PQconnectStart(const char *conninfo)
{
    __typeof__(&PQconnectStart) real = REAL(PQconnectStart);
    uint64_t t0;
    PGconn *c;
    if (!TRACE())
        return real(conninfo);
    t0 = pa_mono_ns();
    depth++;
    c = real(conninfo);
    depth--;
    pa_pq_connect_start(c, PA_PQ_CONNECT, 1, t0, PA_HOOK_FP());
    return c;
}

PA_EXPORT PGconn *PQconnectStartParams(const char *const *keywords, const char *const *values,
                                       int expand_dbname)
{
    __typeof__(&PQconnectStartParams) real = REAL(PQconnectStartParams);
    uint64_t t0;
    PGconn *c;
    if (!TRACE())
        return real(keywords, values, expand_dbname);
    t0 = pa_mono_ns();
    depth++;
    c = real(keywords, values, expand_dbname);
    depth--;
    pa_pq_connect_start(c, PA_PQ_CONNECT, 1, t0, PA_HOOK_FP());
    return c;
}

PA_EXPORT PostgresPollingStatusType PQconnectPoll(PGconn *conn)
{
    __typeof__(&PQconnectPoll) real = REAL(PQconnectPoll);
    PostgresPollingStatusType st;
    if (!TRACE())
        return real(conn);
    depth++;
    st = real(conn);
    depth--;
    pa_pq_connect_poll(conn, (int)st);
    return st;
}

PA_EXPORT void PQreset(PGconn *conn)
{
    __typeof__(&PQreset) real = REAL(PQreset);
    uint64_t t0;
    if (!TRACE()) {
        real(conn);
        return;
    }
    t0 = pa_mono_ns();
    depth++;
    real(conn);
    depth--;
    pa_pq_reset(conn, t0, PA_HOOK_FP());
}

PA_EXPORT int PQresetStart(PGconn *conn)
{
    __typeof__(&PQresetStart) real = REAL(PQresetStart);
    uint64_t t0;
    int ok;
    if (!TRACE())
        return real(conn);
    t0 = pa_mono_ns();
    depth++;
    ok = real(conn);
    depth--;
    pa_pq_connect_start(conn, PA_PQ_RESET, ok, t0, PA_HOOK_FP());
    return ok;
}

PA_EXPORT PostgresPollingStatusType PQresetPoll(PGconn *conn)
{
    __typeof__(&PQresetPoll) real = REAL(PQresetPoll);
    PostgresPollingStatusType st;
    if (!TRACE())
        return real(conn);
    depth++;
    st = real(conn);
    depth--;
    pa_pq_connect_poll(conn, (int)st);
    return st;
}

/* ---- describes: on the statement's row, never as its calls ------------- */

PA_EXPORT PGresult *PQdescribePrepared(PGconn *conn, const char *stmt)
{
    __typeof__(&PQdescribePrepared) real = REAL(PQdescribePrepared);
    uint64_t t0;
    PGresult *r;
    if (!TRACE())
        return real(conn, stmt);
    t0 = pa_mono_ns();
    depth++;
    r = real(conn, stmt);
    depth--;
    pa_pq_describe(conn, stmt, PA_PQ_DESCRIBE, r, t0, PA_HOOK_FP());
    return r;
}

PA_EXPORT PGresult *PQdescribePortal(PGconn *conn, const char *portal)
{
    __typeof__(&PQdescribePortal) real = REAL(PQdescribePortal);
    uint64_t t0;
    PGresult *r;
    if (!TRACE())
        return real(conn, portal);
    t0 = pa_mono_ns();
    depth++;
    r = real(conn, portal);
    depth--;
    pa_pq_describe(conn, portal, PA_PQ_DESCRIBE | PA_PQ_PORTAL, r, t0, PA_HOOK_FP());
    return r;
}

PA_EXPORT int PQsendDescribePrepared(PGconn *conn, const char *stmt)
{
    __typeof__(&PQsendDescribePrepared) real = REAL(PQsendDescribePrepared);
    uint64_t t0;
    int ok;
    if (!TRACE())
        return real(conn, stmt);
    t0 = pa_mono_ns();
    depth++;
    ok = real(conn, stmt);
    depth--;
    if (ok)
        pa_pq_sent(conn, PA_PQ_DESCRIBE, NULL, stmt ? stmt : "", 0, NULL, NULL, NULL, t0,
                   PA_HOOK_FP());
    return ok;
}

PA_EXPORT int PQsendDescribePortal(PGconn *conn, const char *portal)
{
    __typeof__(&PQsendDescribePortal) real = REAL(PQsendDescribePortal);
    uint64_t t0;
    int ok;
    if (!TRACE())
        return real(conn, portal);
    t0 = pa_mono_ns();
    depth++;
    ok = real(conn, portal);
    depth--;
    if (ok)
        pa_pq_sent(conn, PA_PQ_DESCRIBE | PA_PQ_PORTAL, NULL, portal ? portal : "", 0, NULL, NULL,
                   NULL, t0, PA_HOOK_FP());
    return ok;
}
