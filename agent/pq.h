/*
 * pq.h — libpq tracing: what hook_pq.c (the interposed PQ* functions) hands
 * to pq.c (timing, statement and connection tables, the QueryEvent), and
 * the normalizer (pq_norm.c).
 *
 * The hooks never call into libpq except through the real function they
 * wrap; pq.c reads results through pointers it resolves with
 * dlsym(RTLD_NEXT) the first time a hooked function runs, i.e. only in
 * programs that already have libpq loaded.
 */
#ifndef PA_PQ_H
#define PA_PQ_H

#include "internal.h"

#define PA_PQ_TEXT 4096 /* normalized text, as the issue asks */
#define PA_PQ_RAW 3072  /* PERFAGENT_PQ_LITERALS text: both fit PA_WIRE_EVENT_MAX */

/* QueryEvent.kind.  DESCRIBE: PQdescribePrepared/Portal (the server counts
 * no call of the statement); RESET: PQreset & co, a reconnect of the same
 * conn_id; ABORTED: a pipelined send that PGRES_PIPELINE_ABORTED skipped
 * (never ran).  PA_PQ_PORTAL: or'ed into DESCRIBE by the hooks when the
 * name is a portal's (never sent). */
enum {
    PA_PQ_QUERY = 0,
    PA_PQ_CONNECT = 1,
    PA_PQ_CLOSE = 2,
    PA_PQ_PREPARE = 3,
    PA_PQ_DESCRIBE = 4,
    PA_PQ_RESET = 5,
    PA_PQ_ABORTED = 6,
    PA_PQ_PORTAL = 0x100,
};

/* pq_norm.c: pg_stat_statements-style normalization of in[0..inlen)
 * (PostgreSQL 15's choices, see pq_norm.c): constants (numbers, 'strings',
 * E'..', $tag$..$tag$, TRUE, FALSE, NULL) become $n numbered
 * after the highest $n the text already has, a list of only constants and
 * parameters after IN becomes "IN (...)", comments are dropped and white
 * space runs become one space.  Writes at most cap-1 bytes and a NUL;
 * returns the length.  op gets the first keyword upper-cased (opcap bytes).
 * *hash gets an FNV-1a hash of the constants' text (0 when none), so that
 * runs of one query with different values can be told from repeats. */
PA_HIDDEN size_t pa_pq_normalize(const char *in, size_t inlen, char *out, size_t cap, char *op,
                                 size_t opcap, uint64_t *hash);

/* A text's shape for reuse (pa_pq_normalize_tmpl): the spans of its
 * replaced constants when all are plain integers (digits, then no name
 * character or '.'), so that a text differing only in those digits has
 * the same normalized text (pa_pq_tmpl_match).  exact: some other kind of
 * constant (a string, TRUE, an IN list ...): only the same bytes match. */
#define PA_PQ_SLOTS 16
typedef struct pa_pq_tmpl {
    int exact;
    unsigned n;
    uint16_t start[PA_PQ_SLOTS], end[PA_PQ_SLOTS];
} pa_pq_tmpl_t;
PA_HIDDEN size_t pa_pq_normalize_tmpl(const char *in, size_t inlen, char *out, size_t cap,
                                      char *op, size_t opcap, uint64_t *hash, pa_pq_tmpl_t *t);
/* q[0..qn) normalizes as r[0..rn) (of template t) did: 1, with *hash the
 * hash q's normalization would give (t->exact: unchanged), else 0. */
PA_HIDDEN int pa_pq_tmpl_match(const char *r, size_t rn, const pa_pq_tmpl_t *t, const char *q,
                               size_t qn, uint64_t *hash);

/* pq_norm.c: a QueryEvent (proto/perfagent.proto) encoded by hand, the
 * bytes protobuf-c would write.  pa_pq_event_size fills len[] (strlen of
 * each str[], NULL: empty) and returns the encoded size; pa_pq_event_pack
 * writes that many bytes and returns the count. */
enum {
    PA_PQ_S_TEXT,
    PA_PQ_S_RAW,
    PA_PQ_S_OP,
    PA_PQ_S_ERROR,
    PA_PQ_S_SQLSTATE,
    PA_PQ_S_DB,
    PA_PQ_S_PEER,
    PA_PQ_S_USER,
    PA_PQ_NSTR,
};
typedef struct pa_pq_event {
    uint32_t tid, stack_id, kind;
    int pipelined;
    uint64_t start_mono_ns, duration_ns, rows, conn_id, params_hash;
    const char *str[PA_PQ_NSTR];
    size_t len[PA_PQ_NSTR];
} pa_pq_event_t;
PA_HIDDEN size_t pa_pq_event_size(pa_pq_event_t *e);
PA_HIDDEN size_t pa_pq_event_pack(const pa_pq_event_t *e, uint8_t *buf);

/* pq.c: the hooks' hand-offs.  conn, results are PGconn * / PGresult *;
 * from is the hook's frame (PA_HOOK_FP), t0 pa_mono_ns() before the real
 * call.  stmt: the prepared statement's name (NULL for query text). */
PA_HIDDEN int pa_pq_active(void);
PA_HIDDEN void *pa_pq_real(void **slot, const char *name);
PA_HIDDEN void pa_pq_connected(void *conn, uint64_t t0, uintptr_t from);
/* Async connects: PQconnectStart* (kind CONNECT) and PQresetStart (kind
 * RESET, ok = its return value) start the clock; the PQconnectPoll or
 * PQresetPoll that returns PGRES_POLLING_OK or _FAILED (st) stops it.
 * pa_pq_reset: a blocking PQreset, timed from t0. */
PA_HIDDEN void pa_pq_connect_start(void *conn, int kind, int ok, uint64_t t0, uintptr_t from);
PA_HIDDEN void pa_pq_connect_poll(void *conn, int st);
PA_HIDDEN void pa_pq_reset(void *conn, uint64_t t0, uintptr_t from);
PA_HIDDEN void pa_pq_closing(void *conn, uintptr_t from);
PA_HIDDEN void pa_pq_prepared(void *conn, const char *name, const char *query, void *res,
                              uint64_t t0, uintptr_t from);
PA_HIDDEN void pa_pq_exec(void *conn, const char *query, const char *stmt, int nparams,
                          const char *const *values, const int *lengths, const int *formats,
                          void *res, uint64_t t0, uintptr_t from);
/* PQdescribePrepared (stmt) / PQdescribePortal (kind | PA_PQ_PORTAL). */
PA_HIDDEN void pa_pq_describe(void *conn, const char *name, int kind, void *res, uint64_t t0,
                              uintptr_t from);
/* Async: a successful PQsend*() queues the query (kind QUERY, PREPARE with
 * query and stmt, DESCRIBE [| PA_PQ_PORTAL] with stmt = the name); each
 * PQgetResult() adds its result to the oldest queued one, and the NULL that
 * ends it sends it (a COPY ends at its final result).  Pipelines queue
 * several: each is timed from its own send to its own NULL. */
PA_HIDDEN void pa_pq_sent(void *conn, int kind, const char *query, const char *stmt, int nparams,
                          const char *const *values, const int *lengths, const int *formats,
                          uint64_t t0, uintptr_t from);
PA_HIDDEN void pa_pq_result(void *conn, void *res);

#endif
