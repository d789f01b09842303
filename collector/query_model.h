/*
 * query_model — what the collector knows about one process's libpq calls
 * (QueryEvents from agent/pq.c): per normalized query its calls, rows,
 * errors by SQLSTATE, durations and calling stacks; connections; and every
 * event in arrival order, from which report_pq.c finds slow queries and
 * N+1 runs.  Texts are what the agent sent: normalized unless the process
 * ran with PERFAGENT_PQ_LITERALS=1 (then text_raw is kept as an example).
 */
#ifndef PA_QUERY_MODEL_H
#define PA_QUERY_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "perfagent.pb-c.h"

typedef struct qm_count {
    uint32_t stack_id;
    uint64_t calls, ns;
} qm_count_t;

typedef struct qm_err {
    char sqlstate[8];
    uint64_t n;
} qm_err_t;

typedef struct qm_query {
    char *text, *op;
    char *example; /* the first call's raw text, NULL without literals */
    uint64_t calls, rows, errors, prepares, total_ns, min_ns, max_ns, prepare_ns;
    /* Not calls (pg_stat_statements counts neither): PQdescribePrepared
     * of the statement (and how many failed), and pipelined sends that
     * PGRES_PIPELINE_ABORTED skipped after an earlier query failed. */
    uint64_t describes, describe_errors, aborted;
    uint64_t *durs; /* every call's duration */
    size_t n_durs, cap_durs;
    qm_err_t *errs;
    size_t n_errs;
    qm_count_t *stacks;
    size_t n_stacks;
    uint64_t hash;
} qm_query_t;

/* One event, in arrival order (a connection's events come from one thread,
 * so they are in order). */
typedef struct qm_event {
    uint32_t query; /* index in queries; UINT32_MAX for connect/close */
    uint32_t kind;  /* QueryEvent.kind: 0 query, 1 connect, 2 close, 3 prepare,
                       4 describe, 5 reset, 6 aborted in a pipeline */
    uint32_t stack_id, tid;
    uint64_t conn_id, start_ns, dur_ns, rows, params_hash;
    int failed;
    int pipelined; /* sent in pipeline mode: no round trip of its own */
    char *raw;     /* text_raw or NULL */
    char sqlstate[6]; /* this call's SQLSTATE, "" on success or unknown */
} qm_event_t;

/* What a connection's first CONNECT (or RESET) event said about it. */
typedef struct qm_conninfo {
    uint64_t conn_id;
    char *database, *peer, *user; /* "" when the agent did not know */
} qm_conninfo_t;

typedef struct qm_conn_fail {
    char *message;
    uint64_t n;
} qm_conn_fail_t;

typedef struct query_model {
    qm_query_t *q;
    size_t n_q, cap_q;
    uint32_t *index; /* open addressing, query index + 1 */
    size_t cap_index;
    qm_event_t *ev;
    size_t n_ev, cap_ev;
    /* connections; resets: PQreset & co that reconnected (a failed one
     * counts in failed, as a failed connect does); connect_ns has both */
    uint64_t opened, closed, open_now, peak, failed, resets;
    uint64_t *connect_ns;
    size_t n_connect, cap_connect;
    qm_conn_fail_t *fails;
    size_t n_fails;
    qm_conninfo_t *ci;
    size_t n_ci, cap_ci;
} query_model_t;

query_model_t *query_model_new(void);
void query_model_free(query_model_t *m); /* accepts NULL */
/* 0 or -ENOMEM. */
int query_model_add(query_model_t *m, const Perfagent__QueryEvent *e);
/* The connection conn_id's database, peer and user, or NULL. */
const qm_conninfo_t *query_model_conn(const query_model_t *m, uint64_t conn_id);
/* Wait time per stack id (every call, prepare and connect), for pq.folded:
 * the sum over stacks; ns[id] for id < n (caller's array, zeroed). */
void query_model_wait(const query_model_t *m, uint64_t *ns, size_t n);

#endif
