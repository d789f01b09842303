/*
 * server — the collector's event loop: one listening socket, many agent
 * connections, one session per connection (see session.h), every finished
 * stream written into an outdir (see outdir.h).
 *
 * Single-threaded, epoll(7) level-triggered.  A connection that faults is
 * closed alone; the others go on.  The embedding program adds its own
 * descriptors (a signalfd, ...) with server_watch() and decides when to stop
 * (server_stop, server_drain), so the daemon and `perfagent run` share it.
 */
#ifndef PA_SERVER_H
#define PA_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "outdir.h"

/* Kept equal to PA_AGENT_VERSION in agent/internal.h. */
#define PA_VERSION "0.1.0"

#define SERVER_ERR_LEN 512
#define SERVER_MAX_CONNS 1024

typedef struct server server_t;

typedef struct server_opts {
    const char *listen;  /* "unix:PATH" or "tcp:HOST:PORT"                     */
    outdir_t *out;       /* where finished streams go; not owned               */
    const char *sysroot; /* for the symbolizer, may be NULL                   */
    const char *prog;    /* log prefix: "perfagent-collector"                  */
    int quiet;           /* only faults and errors; no per-stream lines        */
    int max_conns;       /* 0 = SERVER_MAX_CONNS                               */
    int cpu_per_thread;  /* cpu.folded/cpu.svg: each stack under its thread's name */
} server_opts_t;

/* Called when a watched descriptor is readable. */
typedef void server_fd_fn(server_t *srv, int fd, void *arg);

/* Binds and listens.  NULL on failure with the reason in err (SERVER_ERR_LEN). */
server_t *server_new(const server_opts_t *opts, char *err);

/* Closes the listener (removing a unix socket file it created) and any
 * connection still open *without* writing its reports: server_run() has
 * already finished them.  Accepts NULL. */
void server_free(server_t *srv);

/* The bound address, e.g. "unix:/tmp/s" or "tcp:127.0.0.1:40123" (the real
 * port when 0 was asked for). */
const char *server_address(const server_t *srv);

/* 1 for a unix socket or a loopback tcp address; 0 when other hosts can
 * reach the listener. */
int server_is_local(const server_t *srv);

/* Watch another descriptor in the same loop (not owned: the caller closes it
 * after server_free).  Returns 0 or -errno. */
int server_watch(server_t *srv, int fd, server_fd_fn *fn, void *arg);

/* Serve until stopped.  Before returning, every connection still open is
 * finished: its session ended and its reports written, exactly once; and
 * index.json is up to date.  While serving, index.json is rewritten when the
 * loop is idle, at least once a second under load.
 * Returns 0, or -errno if epoll itself failed. */
int server_run(server_t *srv);

/* Make server_run() return at the next turn of the loop.  Safe to call from a
 * server_fd_fn callback (not from a signal handler: use a signalfd). */
void server_stop(server_t *srv);

/* Make server_run() return as soon as no agent connection is open, or after
 * timeout_ms at the latest (then what arrived is written, and logged).
 * Connections already queued on the listener count as open. */
void server_drain(server_t *srv, uint64_t timeout_ms);

/* Agent connections currently open. */
size_t server_conn_count(const server_t *srv);

#endif
