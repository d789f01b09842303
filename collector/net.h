/*
 * net — listening-socket and accept helpers for the collector (anet style):
 * every function returns 0 / a descriptor, or a negative errno with one line
 * of text in the caller's `err` buffer (NET_ERR_LEN bytes).  Nothing here
 * logs; the caller decides what to print.
 */
#ifndef PA_NET_H
#define PA_NET_H

#include <stddef.h>
#include <sys/types.h>

#define NET_ERR_LEN 256
#define NET_PEER_LEN 64

typedef struct net_listener {
    int fd; /* non-blocking, close-on-exec; -1 when not listening    */
    int is_unix;
    char path[108]; /* unix: the socket file we created (sun_path size)       */
    dev_t dev;      /* unix: identity of that file, so net_unlisten() never   */
    ino_t ino;      /*       unlinks a socket someone else put there later    */
    char addr[160]; /* canonical address: "unix:/x/s", "tcp:127.0.0.1:40123" */
    int loopback;   /* tcp: bound to a loopback address only                  */
} net_listener_t;

/* Listen on `spec`: "unix:PATH" (file created 0600; an existing non-socket
 * file is never replaced, a stale socket file nobody listens on is) or
 * "tcp:HOST:PORT" / "tcp:[V6]:PORT" (HOST empty = 127.0.0.1, PORT 0 = any).
 * Returns 0 and fills `l`, or -errno. */
int net_listen(char *err, const char *spec, net_listener_t *l);

/* Close the listener and, for unix, remove the socket file if it is still the
 * one we created.  Accepts a listener that never listened (fd -1). */
void net_unlisten(net_listener_t *l);

/* Accept one connection (non-blocking, close-on-exec).  Returns the fd, or
 * -EAGAIN when the queue is empty, or another -errno.  `peer` gets
 * "unix:pid=N" (from SO_PEERCRED) or "tcp:1.2.3.4:5"; for unix sockets `uid`
 * gets the peer's uid, for tcp it is set to (uid_t)-1. */
int net_accept(char *err, const net_listener_t *l, char *peer, size_t peerlen, uid_t *uid);

#endif
