/*
 * pq.c — libpq tracing, the core behind hook_pq.c: one QueryEvent per
 * query, connect, close and prepare, packed straight into the calling
 * thread's event ring (event.h).
 *
 * State lives in tables mapped at first use (pa_mmap; never the host heap):
 *  - connections by PGconn pointer: our id (per process, in connect order),
 *    where it goes (host or socket directory, port, db, user: read once
 *    through PQhost & co; never the password), an async connect or reset
 *    under way (PQconnectStart/PQresetStart .. the poll that ends it) and
 *    the FIFO of what was sent with PQsend*() and has not had its last
 *    result yet: one entry per query outside pipeline mode, up to FIFO in
 *    a pipeline;
 *  - the in-flight queries themselves: a pool of POOL records (text, stack,
 *    rows so far) shared by all connections, since a record is ~7 KiB and
 *    deep pipelines are rare.  A send that finds the FIFO or the pool full
 *    is not followed: it joins a "skip" entry that counts such sends, so
 *    that their results still line up with their sends (the records after
 *    them stay right), and their events are lost;
 *  - prepared statements by (connection id, name): the text, so that
 *    PQexecPrepared reports what was prepared.  A full probe window
 *    overwrites its first slot: a program preparing thousands of
 *    statements may see old ones reported as "EXECUTE name".
 * libpq allows one thread at a time on a connection, so a connection's
 * entry is only written by the thread using it; the tables' slots and the
 * pool's free list are claimed under a spin lock.
 *
 * libpq functions that only read a result (PQntuples, PQresultErrorField,
 * ...) are looked up with dlsym(RTLD_NEXT) the first time a hook runs: only
 * in processes where libpq is already loaded, since only libpq's callers
 * reach a hook.
 */
#include "pq.h"
#include "event.h"
#include "unwind.h"

#include <dlfcn.h>
#include <libpq-fe.h>


#define CONNS 256  /* connections open at once with their own entry */
#define FIFO 128   /* per connection: sends waiting for their results */
#define POOL 512   /* in-flight send records, all connections */
#define STMTS 1024 /* prepared statements remembered */
#define STMT_PROBE 8
#define NAME 64
#define INFO 128
#define CACHE_RAW 256 /* the longest text the per-connection cache keeps */
/* A FIFO entry is a pool index, or SKIP | the number of sends not followed. */
#define SKIP 0x80000000u

typedef struct pending {
    uint64_t t0;
    uint32_t sid;
    int kind;
    int copy;      /* a COPY_IN/OUT/BOTH result came: the query ends at its final result */
    int pipelined; /* sent in pipeline mode */
    uint64_t rows, hash;
    int failed;
    char op[16];
    char sqlstate[6];
    char err[128];
    char text[PA_PQ_TEXT];
    char raw[PA_PQ_RAW];
} pending_t;

typedef struct conn {
    void *pg; /* NULL: free */
    uint64_t id;
    int info;
    int connecting; /* 0, or PA_PQ_CONNECT / PA_PQ_RESET under way (async) */
    uint64_t ct0;
    uint32_t csid;
    char peer[INFO], db[NAME], user[NAME];
    unsigned head, n;
    uint32_t fifo[FIFO];
    uint32_t spare; /* a pool index + 1 kept for the next send (0: none) */
    /* The last text normalized on this connection, as sent, its template
     * and normalized: a program sending it again (a prepared statement,
     * BEGIN) or with other integers only (pgbench's "... WHERE aid = 4711")
     * skips the normalizer (pq_norm.c pa_pq_tmpl_match says when). */
    uint32_t craw_len; /* 0: empty */
    char craw[CACHE_RAW];
    pa_pq_tmpl_t ctmpl;
    char ctext[2 * CACHE_RAW]; /* "1,2" -> "$1,$2": the text may grow */
    uint32_t ctext_len;        /* strlen(ctext): a hit copies it with memcpy */
    char cop[16];
    uint64_t chash;
} conn_t;

typedef struct stmt {
    uint64_t conn_id; /* 0: free */
    char name[NAME];
    char text[PA_PQ_TEXT];
} stmt_t;

static conn_t *conns;
static stmt_t *stmts;
/* The connection this thread used last: one query takes three lookups
 * (send, result, NULL), and the table's lock is shared by all threads. */
static PA_TLS void *last_pg;
static PA_TLS conn_t *last_conn;
static pending_t *pool;
static uint16_t *pool_free; /* a stack of free pool indices, under table_lock */
static unsigned pool_nfree;
static _Atomic int table_lock;
static _Atomic uint64_t next_conn_id = 1;
static _Atomic int tables_state; /* 0 not yet, 1 mapped, -1 failed */

/* The result readers (libpq's, resolved lazily). */
static struct {
    ExecStatusType (*status)(const PGresult *);
    int (*ntuples)(const PGresult *);
    char *(*cmdtuples)(PGresult *);
    char *(*errfield)(const PGresult *, int);
    char *(*resmsg)(const PGresult *);
    char *(*host)(const PGconn *);
    char *(*port)(const PGconn *);
    char *(*db)(const PGconn *);
    char *(*user)(const PGconn *);
    ConnStatusType (*connstatus)(const PGconn *);
    char *(*connmsg)(const PGconn *);
    PGpipelineStatus (*pipeline)(const PGconn *); /* NULL before libpq 14 */
    int ok;
} fn;

void *pa_pq_real(void **slot, const char *name)
{
    void *f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (!f) {
        pa_tls.guard++; /* dlsym may allocate */
        f = dlsym(RTLD_NEXT, name);
        pa_tls.guard--;
        __atomic_store_n(slot, f, __ATOMIC_RELEASE);
    }
    return f;
}

int pa_pq_active(void)
{
    return pa_tls.guard == 0 &&
           atomic_load_explicit(&pa_state, memory_order_acquire) == 2 && pa_cfg.pq &&
           atomic_load_explicit(&pa_agent_on, memory_order_relaxed);
}

static void lock(void)
{
    while (atomic_exchange_explicit(&table_lock, 1, memory_order_acquire))
        __builtin_ia32_pause();
}

static void unlock(void)
{
    atomic_store_explicit(&table_lock, 0, memory_order_release);
}

/* Maps the tables and resolves the readers once; 0 when usable.  Called
 * with the guard held. */
static int setup(void)
{
    int st = atomic_load_explicit(&tables_state, memory_order_acquire);
    if (PA_LIKELY(st))
        return st > 0 ? 0 : -1;
    lock();
    if (!atomic_load(&tables_state)) {
#define R(field, name) (fn.field = (__typeof__(fn.field))dlsym(RTLD_NEXT, name))
        fn.ok = R(status, "PQresultStatus") && R(ntuples, "PQntuples") &&
                R(cmdtuples, "PQcmdTuples") && R(errfield, "PQresultErrorField") &&
                R(resmsg, "PQresultErrorMessage") && R(host, "PQhost") && R(port, "PQport") &&
                R(db, "PQdb") && R(user, "PQuser") && R(connstatus, "PQstatus") &&
                R(connmsg, "PQerrorMessage");
#undef R
        fn.pipeline = (__typeof__(fn.pipeline))dlsym(RTLD_NEXT, "PQpipelineStatus");
        conns = pa_mmap(CONNS * sizeof(conn_t));
        stmts = pa_mmap(STMTS * sizeof(stmt_t));
        pool = pa_mmap(POOL * sizeof(pending_t));
        pool_free = pa_mmap(POOL * sizeof(uint16_t));
        for (unsigned i = 0; pool_free && i < POOL; i++)
            pool_free[i] = (uint16_t)(POOL - 1 - i);
        pool_nfree = POOL;
        atomic_store(&tables_state, fn.ok && conns && stmts && pool && pool_free ? 1 : -1);
        if (atomic_load(&tables_state) < 0)
            pa_log(PA_LOG_QUIET + 1, "libpq tracing off: libpq's functions or memory missing",
                   (const char *)NULL);
    }
    unlock();
    return atomic_load(&tables_state) > 0 ? 0 : -1;
}

static uint64_t hash_ptr(const void *p)
{
    return ((uint64_t)(uintptr_t)p >> 4) * 0x9e3779b97f4a7c15ull;
}

static void copy_info(char *dst, size_t cap, const char *src)
{
    pa_strlcpy(dst, src ? src : "", cap);
}

/* The entry of conn, made (with its info) when create and none exists;
 * NULL when the table is full. */
static conn_t *conn_get(void *pg, int create)
{
    size_t h = (size_t)(hash_ptr(pg) >> 56) % CONNS;
    conn_t *c = last_conn;
    /* Only the thread using pg writes its entry's pg (PQfinish), and a
     * free entry is claimed only while its pg is NULL: a match is ours. */
    if (c && last_pg == pg && __atomic_load_n(&c->pg, __ATOMIC_ACQUIRE) == pg)
        goto info;
    c = NULL;
    lock();
    for (size_t k = 0; k < CONNS; k++) {
        conn_t *e = &conns[(h + k) % CONNS];
        if (e->pg == pg) {
            c = e;
            break;
        }
        if (!e->pg && create && !c)
            c = e; /* first free slot; keep looking for pg itself */
    }
    if (c && c->pg != pg) {
        __atomic_store_n(&c->pg, pg, __ATOMIC_RELEASE);
        c->id = atomic_fetch_add(&next_conn_id, 1);
        c->info = 0;
        c->connecting = 0;
        c->head = c->n = 0;
        c->spare = 0;
        c->craw_len = 0;
    }
    unlock();
    if (c) {
        last_pg = pg;
        last_conn = c;
    }
info:
    if (c && !c->info && fn.connstatus((PGconn *)pg) == CONNECTION_OK) {
        const char *port = fn.port((PGconn *)pg);
        size_t n;
        copy_info(c->peer, sizeof(c->peer) - 8, fn.host((PGconn *)pg));
        n = pa_strlen(c->peer);
        c->peer[n] = ':';
        copy_info(c->peer + n + 1, 7, port);
        copy_info(c->db, sizeof(c->db), fn.db((PGconn *)pg));
        copy_info(c->user, sizeof(c->user), fn.user((PGconn *)pg));
        c->info = 1;
    }
    return c;
}

/* Gives a record back: kept as c's spare when it has none (the next send
 * takes it without the lock), else to the pool. */
static void pool_put(conn_t *c, uint32_t i)
{
    if (!c->spare) {
        c->spare = i + 1;
        return;
    }
    lock();
    pool_free[pool_nfree++] = (uint16_t)i;
    unlock();
}

/* Empties c's FIFO (the records go back to the pool).  The FIFO is only
 * used by the thread using the connection: no lock for it. */
static void fifo_clear(conn_t *c)
{
    for (unsigned k = 0; k < c->n; k++) {
        uint32_t e = c->fifo[(c->head + k) % FIFO];
        if (!(e & SKIP))
            pool_put(c, e);
    }
    c->head = c->n = 0;
}

static void conn_drop(conn_t *c)
{
    fifo_clear(c);
    lock();
    if (c->spare)
        pool_free[pool_nfree++] = (uint16_t)(c->spare - 1);
    c->spare = 0;
    __atomic_store_n(&c->pg, NULL, __ATOMIC_RELEASE);
    unlock();
}

/* A record for a new send at the tail of c's FIFO, or NULL when the FIFO
 * or the pool is full: then the send is counted in a skip entry. */
static pending_t *fifo_push(conn_t *c)
{
    uint32_t *tail = c->n ? &c->fifo[(c->head + c->n - 1) % FIFO] : NULL;
    int i = -1;
    if (c->n < FIFO) {
        if (c->spare) {
            i = (int)c->spare - 1;
            c->spare = 0;
        } else {
            lock();
            if (pool_nfree)
                i = pool_free[--pool_nfree];
            unlock();
        }
        if (i >= 0) {
            c->fifo[(c->head + c->n++) % FIFO] = (uint32_t)i;
            return &pool[i];
        }
    }
    if (tail && (*tail & SKIP)) {
        (*tail)++;
    } else if (c->n < FIFO) {
        c->fifo[(c->head + c->n++) % FIFO] = SKIP | 1;
    } else {
        /* Full, and the newest is followed: it joins the new send's skip. */
        pool_put(c, *tail);
        *tail = SKIP | 2;
    }
    return NULL;
}

/* Drops the FIFO's head (its record goes back to the pool). */
static void fifo_pop(conn_t *c)
{
    uint32_t e = c->fifo[c->head];
    if (!(e & SKIP))
        pool_put(c, e);
    c->head = (c->head + 1) % FIFO;
    c->n--;
}

static stmt_t *stmt_slot(uint64_t conn_id, const char *name, int create)
{
    uint64_t h = (conn_id * 0x9e3779b97f4a7c15ull) ^ 0xcbf29ce484222325ull;
    stmt_t *first = NULL;
    for (const char *s = name; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    for (unsigned k = 0; k < STMT_PROBE; k++) {
        stmt_t *e = &stmts[(h + k) % STMTS];
        if (e->conn_id == conn_id && pa_streq(e->name, name))
            return e;
        if (!first && (!e->conn_id || k == STMT_PROBE - 1))
            first = e;
    }
    return create ? first : NULL;
}

/* Fills a pending query from its text: normalized text, operation, the
 * values' hash (with the parameters' values), raw text when allowed.  c:
 * the connection whose cache to use, or NULL. */
static void fill_text(pending_t *p, conn_t *c, const char *query, int nparams,
                      const char *const *values, const int *lengths, const int *formats)
{
    size_t n = query ? __builtin_strlen(query) : 0;
    uint64_t vh;
    if (c && n && c->craw_len && pa_pq_tmpl_match(c->craw, c->craw_len, &c->ctmpl, query, n, &vh)) {
        __builtin_memcpy(p->text, c->ctext, c->ctext_len + 1);
        __builtin_memcpy(p->op, c->cop, sizeof(p->op));
        p->hash = c->ctmpl.exact ? c->chash : vh;
    } else {
        int keep = c && n && n <= sizeof(c->craw);
        size_t tl = pa_pq_normalize_tmpl(query ? query : "", n, p->text, sizeof(p->text), p->op,
                                         sizeof(p->op), &p->hash, keep ? &c->ctmpl : NULL);
        if (c)
            c->craw_len = 0;
        if (keep && tl < sizeof(c->ctext)) {
            __builtin_memcpy(c->craw, query, n);
            __builtin_memcpy(c->ctext, p->text, tl + 1);
            c->ctext_len = (uint32_t)tl;
            __builtin_memcpy(c->cop, p->op, sizeof(c->cop));
            c->chash = p->hash;
            c->craw_len = (uint32_t)n;
        }
    }
    for (int i = 0; values && i < nparams; i++) {
        const char *v = values[i];
        size_t len = !v ? 0 : formats && formats[i] ? (size_t)(lengths ? lengths[i] : 0)
                                                    : pa_strlen(v);
        uint64_t h = p->hash ? p->hash : 0xcbf29ce484222325ull;
        for (size_t j = 0; j < len; j++)
            h = (h ^ (unsigned char)v[j]) * 0x100000001b3ull;
        p->hash = ((h ^ (v ? 0xfe : 0xfd)) * 0x100000001b3ull) | 1;
    }
    p->raw[0] = 0;
    if (pa_cfg.pq_literals)
        pa_strlcpy(p->raw, query ? query : "", sizeof(p->raw));
}

static uint32_t stack_of(uintptr_t from)
{
    int failed;
    return pa_stack_id_from(from, pa_cfg.max_frames, &failed);
}

static void start(pending_t *p, int kind, uint64_t t0, uintptr_t from)
{
    p->t0 = t0;
    p->kind = kind;
    p->copy = 0;
    p->pipelined = 0;
    p->rows = 0;
    p->failed = 0;
    p->sqlstate[0] = 0;
    p->err[0] = 0;
    p->sid = stack_of(from);
}

/* Adds one result: rows, and the first error's SQLSTATE and message. */
static void take_result(pending_t *p, PGresult *r)
{
    ExecStatusType st;
    if (!r) {
        p->failed = 1;
        return;
    }
    st = fn.status(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_SINGLE_TUPLE) {
        p->rows += (uint64_t)fn.ntuples(r);
    } else if (st == PGRES_COMMAND_OK) {
        uint64_t v;
        const char *t = fn.cmdtuples(r);
        if (t && *t && pa_parse_u64(t, &v) == 0)
            p->rows += v;
    } else if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE ||
               st == PGRES_NONFATAL_ERROR) {
        const char *s = fn.errfield(r, PG_DIAG_SQLSTATE);
        if (!p->failed) {
            pa_strlcpy(p->sqlstate, s ? s : "", sizeof(p->sqlstate));
            /* The primary message only: the detail line may quote values. */
            s = fn.errfield(r, PG_DIAG_MESSAGE_PRIMARY);
            pa_strlcpy(p->err, s ? s : "", sizeof(p->err));
        }
        p->failed = 1;
    }
}

static void emit(const conn_t *c, const pending_t *p, uint64_t end)
{
    pa_pq_event_t q;
    pa_event_t ev;
    size_t len;
    uint8_t *buf;

    q.tid = pa_tls.tid ? pa_tls.tid : (pa_tls.tid = pa_gettid());
    q.start_mono_ns = p->t0;
    q.duration_ns = end > p->t0 ? end - p->t0 : 0;
    q.kind = (uint32_t)p->kind;
    q.str[PA_PQ_S_TEXT] = p->text;
    q.str[PA_PQ_S_RAW] = p->raw;
    q.str[PA_PQ_S_OP] = p->op;
    q.rows = p->rows;
    q.str[PA_PQ_S_SQLSTATE] = p->sqlstate;
    q.str[PA_PQ_S_ERROR] = p->failed && !p->err[0] ? "failed" : p->err;
    q.stack_id = p->sid;
    q.conn_id = c ? c->id : 0;
    q.str[PA_PQ_S_DB] = c ? c->db : "";
    q.str[PA_PQ_S_PEER] = c ? c->peer : "";
    q.str[PA_PQ_S_USER] = c ? c->user : "";
    q.params_hash = p->hash;
    q.pipelined = p->pipelined != 0;
    /* pq_norm.c's encoder: protobuf-c's bytes at a tenth of its cost. */
    len = pa_pq_event_size(&q);
    if ((buf = pa_event_reserve(PA_WIRE_EVENT_QUERY, (uint32_t)len, &ev)))
        pa_event_commit(&ev, pa_pq_event_pack(&q, buf));
}

/* A pending record on the stack for the synchronous calls: ~7 KiB, well
 * within any thread's stack that runs libpq. */
static void emit_now(void *pg, pending_t *p, uint64_t end)
{
    conn_t *c = pg ? conn_get(pg, 1) : NULL;
    emit(c, p, end);
}

/* Outside pipeline mode libpq takes a new query only once the previous
 * one's results are all read, so whatever is still queued then is a query
 * whose final NULL the program never asked for (PQexec reads and drops the
 * rest itself, through calls we pass through): it ends now, with the rows
 * and errors it had. */
static void flush_stale(conn_t *c, uint64_t end)
{
    if (!c->n || (fn.pipeline && fn.pipeline((PGconn *)c->pg) != PQ_PIPELINE_OFF))
        return;
    while (c->n) {
        uint32_t e = c->fifo[c->head];
        if (!(e & SKIP))
            emit(c, &pool[e], end);
        fifo_pop(c);
    }
}

/* One connect or reset (kind), or its failure (pg NULL or not
 * CONNECTION_OK: libpq's message, trailing new lines dropped).  A failed
 * connect has no connection entry (PQfinish still comes: no CLOSE for
 * it); a reset keeps c's.  1 when it failed. */
static int connect_event(conn_t *c, void *pg, int kind, uint64_t t0, uint32_t sid, uint64_t end,
                         const char *why)
{
    pending_t p;
    p.t0 = t0;
    p.kind = kind;
    p.sid = sid;
    p.rows = p.hash = 0;
    p.failed = p.copy = p.pipelined = 0;
    p.sqlstate[0] = p.err[0] = p.text[0] = p.raw[0] = 0;
    pa_strlcpy(p.op, kind == PA_PQ_RESET ? "RESET" : "CONNECT", sizeof(p.op));
    if (why || !pg || fn.connstatus((PGconn *)pg) != CONNECTION_OK) {
        const char *m = why ? why : pg ? fn.connmsg((PGconn *)pg) : "out of memory";
        size_t n;
        p.failed = 1;
        pa_strlcpy(p.err, m ? m : "", sizeof(p.err));
        /* The first line: libpq's hints follow on the next ones. */
        for (n = 0; p.err[n]; n++)
            if (p.err[n] == '\n') {
                p.err[n] = 0;
                break;
            }
        while (n && (p.err[n - 1] == '\n' || p.err[n - 1] == ' '))
            p.err[--n] = 0;
        emit(kind == PA_PQ_RESET ? c : NULL, &p, end);
        return 1;
    }
    emit(c ? c : conn_get(pg, 1), &p, end);
    return 0;
}

void pa_pq_connected(void *pg, uint64_t t0, uintptr_t from)
{
    uint64_t end = pa_mono_ns();
    pa_tls.guard++;
    if (setup() == 0)
        connect_event(NULL, pg, PA_PQ_CONNECT, t0, stack_of(from), end, NULL);
    pa_tls.guard--;
}

void pa_pq_connect_start(void *pg, int kind, int ok, uint64_t t0, uintptr_t from)
{
    conn_t *c;
    uint32_t sid;
    pa_tls.guard++;
    if (setup() < 0)
        goto out;
    sid = stack_of(from);
    c = pg ? conn_get(pg, kind == PA_PQ_RESET) : NULL;
    if (c && kind == PA_PQ_RESET)
        fifo_clear(c); /* the old session's results are gone with it */
    if (!pg || !ok || fn.connstatus((PGconn *)pg) == CONNECTION_BAD) {
        connect_event(c, pg, kind, t0, sid, pa_mono_ns(),
                      pg && fn.connstatus((PGconn *)pg) == CONNECTION_OK ? "failed" : NULL);
        goto out;
    }
    if (c || (c = conn_get(pg, 1))) {
        c->connecting = kind;
        c->ct0 = t0;
        c->csid = sid;
    }
out:
    pa_tls.guard--;
}

void pa_pq_connect_poll(void *pg, int st)
{
    uint64_t end;
    conn_t *c;
    if (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED)
        return; /* still on the way: the common case, nothing to do */
    end = pa_mono_ns();
    pa_tls.guard++;
    if (setup() == 0 && pg && (c = conn_get(pg, 0)) && c->connecting) {
        int kind = c->connecting;
        c->connecting = 0;
        if (connect_event(c, pg, kind, c->ct0, c->csid, end, NULL) && kind == PA_PQ_CONNECT)
            conn_drop(c);
    }
    pa_tls.guard--;
}

void pa_pq_reset(void *pg, uint64_t t0, uintptr_t from)
{
    uint64_t end = pa_mono_ns();
    conn_t *c;
    pa_tls.guard++;
    if (setup() == 0 && pg) {
        if ((c = conn_get(pg, 0))) {
            fifo_clear(c);
            c->connecting = 0;
        }
        connect_event(c, pg, PA_PQ_RESET, t0, stack_of(from), end, NULL);
    }
    pa_tls.guard--;
}

void pa_pq_closing(void *pg, uintptr_t from)
{
    conn_t *c;
    pa_tls.guard++;
    if (setup() == 0 && pg && (c = conn_get(pg, 0))) {
        if (c->connecting == PA_PQ_CONNECT) {
            /* Given up before it was made: a failed connect, never opened. */
            connect_event(c, pg, PA_PQ_CONNECT, c->ct0, c->csid, pa_mono_ns(),
                          "PQfinish before the connection was made");
        } else {
            pending_t p;
            start(&p, PA_PQ_CLOSE, pa_mono_ns(), from);
            pa_strlcpy(p.op, "CLOSE", sizeof(p.op));
            p.text[0] = p.raw[0] = 0;
            p.hash = 0;
            emit(c, &p, p.t0);
        }
        conn_drop(c);
    }
    pa_tls.guard--;
}

/* Remembers a statement's text under (connection, name). */
static void remember(void *pg, const char *name, const char *query)
{
    conn_t *c = conn_get(pg, 1);
    stmt_t *s;
    if (!c || !name || !query)
        return;
    lock();
    if ((s = stmt_slot(c->id, name, 1))) {
        s->conn_id = c->id;
        pa_strlcpy(s->name, name, sizeof(s->name));
        pa_strlcpy(s->text, query, sizeof(s->text));
    }
    unlock();
}

/* The text to describe a statement by: its prepared text, copied into buf
 * (the slot may be overwritten meanwhile), or "EXECUTE name". */
static const char *stmt_text(void *pg, const char *name, char *buf, size_t cap)
{
    conn_t *c = conn_get(pg, 1);
    stmt_t *s;
    lock();
    s = c ? stmt_slot(c->id, name, 0) : NULL;
    if (s)
        pa_strlcpy(buf, s->text, cap);
    unlock();
    if (!s) {
        size_t n = pa_strlcpy(buf, "EXECUTE ", cap);
        pa_strlcpy(buf + n, name, cap - n);
    }
    return buf;
}

/* A describe's text: the prepared statement's (so that it lands on the
 * statement's row, as describes, not calls), or "DESCRIBE PORTAL name"
 * (we do not follow portals: DECLARE's text is the cursor's query). */
static void describe_target(pending_t *p, void *pg, const char *name, int portal)
{
    char buf[PA_PQ_TEXT];
    const char *text = buf;
    if (portal) {
        size_t n = pa_strlcpy(buf, "DESCRIBE PORTAL ", sizeof(buf));
        pa_strlcpy(buf + n, name ? name : "", sizeof(buf) - n);
    } else {
        text = stmt_text(pg, name ? name : "", buf, sizeof(buf));
    }
    fill_text(p, NULL, text, 0, NULL, NULL, NULL);
}

void pa_pq_prepared(void *pg, const char *name, const char *query, void *res, uint64_t t0,
                    uintptr_t from)
{
    uint64_t end = pa_mono_ns();
    pending_t p;
    pa_tls.guard++;
    if (setup() < 0 || !pg)
        goto out;
    start(&p, PA_PQ_PREPARE, t0, from);
    fill_text(&p, NULL, query, 0, NULL, NULL, NULL);
    take_result(&p, res);
    p.rows = 0;
    if (!p.failed)
        remember(pg, name ? name : "", query);
    emit_now(pg, &p, end);
out:
    pa_tls.guard--;
}

void pa_pq_describe(void *pg, const char *name, int kind, void *res, uint64_t t0, uintptr_t from)
{
    uint64_t end = pa_mono_ns();
    pending_t p;
    pa_tls.guard++;
    if (setup() < 0 || !pg)
        goto out;
    start(&p, PA_PQ_DESCRIBE, t0, from);
    describe_target(&p, pg, name, kind & PA_PQ_PORTAL);
    take_result(&p, res);
    p.rows = 0;
    emit_now(pg, &p, end);
out:
    pa_tls.guard--;
}

static int is_copy(ExecStatusType st)
{
    return st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH;
}

void pa_pq_exec(void *pg, const char *query, const char *stmt, int nparams,
                const char *const *values, const int *lengths, const int *formats, void *res,
                uint64_t t0, uintptr_t from)
{
    uint64_t end = pa_mono_ns();
    pending_t p, *q;
    conn_t *c;
    char buf[PA_PQ_TEXT];
    pa_tls.guard++;
    if (setup() < 0 || !pg)
        goto out;
    if ((c = conn_get(pg, 1)))
        flush_stale(c, t0);
    start(&p, PA_PQ_QUERY, t0, from);
    if (stmt)
        query = stmt_text(pg, stmt, buf, sizeof(buf));
    fill_text(&p, c, query, nparams, values, lengths, formats);
    if (res && c && is_copy(fn.status(res)) && (q = fifo_push(c))) {
        /* COPY: the data calls follow, and the statement ends at the
         * final result the program reads with PQgetResult. */
        *q = p;
        q->copy = 1;
        goto out;
    }
    take_result(&p, res);
    emit(c, &p, end);
out:
    pa_tls.guard--;
}

void pa_pq_sent(void *pg, int kind, const char *query, const char *stmt, int nparams,
                const char *const *values, const int *lengths, const int *formats, uint64_t t0,
                uintptr_t from)
{
    conn_t *c;
    pending_t *p;
    char buf[PA_PQ_TEXT];
    pa_tls.guard++;
    if (setup() < 0 || !pg || !(c = conn_get(pg, 1)))
        goto out;
    flush_stale(c, t0);
    if (!(p = fifo_push(c)))
        goto out;
    start(p, kind & ~PA_PQ_PORTAL, t0, from);
    p->pipelined = fn.pipeline && fn.pipeline((PGconn *)pg) != PQ_PIPELINE_OFF;
    if ((kind & ~PA_PQ_PORTAL) == PA_PQ_DESCRIBE) {
        describe_target(p, pg, stmt, kind & PA_PQ_PORTAL);
        goto out;
    }
    if (stmt && kind != PA_PQ_PREPARE)
        query = stmt_text(pg, stmt, buf, sizeof(buf));
    fill_text(p, c, query, nparams, values, lengths, formats);
    if (kind == PA_PQ_PREPARE)
        remember(pg, stmt ? stmt : "", query);
out:
    pa_tls.guard--;
}

void pa_pq_result(void *pg, void *res)
{
    conn_t *c;
    pending_t *p;
    uint32_t *e;
    pa_tls.guard++;
    if (setup() < 0 || !pg || !(c = conn_get(pg, 0)) || !c->n)
        goto out;
    e = &c->fifo[c->head];
    if (*e & SKIP) {
        /* A send we do not follow: its NULL ends it. */
        if (!res && --*e == SKIP)
            fifo_pop(c);
        goto out;
    }
    p = &pool[*e];
    if (res) {
        ExecStatusType st = fn.status(res);
        if (st == PGRES_PIPELINE_SYNC) /* ends a pipeline's segment: no query */
            goto out;
        if (is_copy(st)) { /* the data calls follow; then the final result */
            p->copy = 1;
            goto out;
        }
        if (st == PGRES_PIPELINE_ABORTED) {
            /* An earlier query of the pipeline failed: this one never ran. */
            p->kind = PA_PQ_ABORTED;
            p->failed = 1;
            pa_strlcpy(p->err, "pipeline aborted", sizeof(p->err));
            goto out;
        }
        take_result(p, res);
        if (p->kind != PA_PQ_QUERY)
            p->rows = 0;
        if (!p->copy)
            goto out;
        /* A COPY's final result ends it: a program may well move on
         * without asking for the NULL (PQexec would drop it for him). */
    }
    /* The clock is read only here, where a query ends: the results
     * before its last need none (one clock read a query fewer). */
    emit(c, p, pa_mono_ns());
    fifo_pop(c);
out:
    pa_tls.guard--;
}
