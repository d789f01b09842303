/*
 * demo — a pretend key/value service for `make demo`.  It serves 200
 * requests and frees everything it allocates per request, except in two
 * places, so the leak report has known answers:
 *
 *   cache_store()       a cache that never evicts: 100 entries x 1000 bytes
 *                       = 100000 bytes in 100 blocks
 *   log_slow_request()  a slow-request log kept forever: 50 x 256 bytes
 *                       = 12800 bytes in 50 blocks
 *
 * Deterministic: no randomness, no time.  Output goes through write(2), not
 * stdio, so libc's stdout buffer does not show up in the report.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REQUESTS 200
#define CACHE_KEYS 100
#define VALUE_SIZE 1000
#define SLOWLOG_SIZE 256

static char *cache[CACHE_KEYS]; /* never evicted: the first leak   */
static char *slowlog[REQUESTS]; /* never trimmed: the second leak  */
static int nslow;

static void say(const char *fmt, int a, int b)
{
    char line[160];
    int n = snprintf(line, sizeof(line), fmt, a, b);
    if (write(STDOUT_FILENO, line, (size_t)n) < 0)
        exit(1);
}

__attribute__((noinline)) static char *cache_store(int key)
{
    char *v = malloc(VALUE_SIZE);
    if (!v)
        exit(1);
    memset(v, 'a' + key % 26, VALUE_SIZE);
    cache[key] = v;
    return v;
}

__attribute__((noinline)) static void log_slow_request(int id, int key)
{
    char *entry = malloc(SLOWLOG_SIZE);
    if (!entry)
        exit(1);
    snprintf(entry, SLOWLOG_SIZE, "request %d for key %d took too long", id, key);
    slowlog[nslow++] = entry;
}

/* Per-request scratch memory, all of it freed. */
__attribute__((noinline)) static int handle_request(int id)
{
    int key = (id * 37) % CACHE_KEYS;
    char *scratch = malloc(4096), *reply;
    const char *value;
    int len;

    if (!scratch)
        exit(1);
    snprintf(scratch, 4096, "GET /kv/%d", key);
    value = cache[key] ? cache[key] : cache_store(key);
    reply = malloc(64 + (size_t)(id % 7) * 16);
    if (!reply)
        exit(1);
    len = snprintf(reply, 64, "%s -> %c", scratch, value[0]);
    if (id % 4 == 0)
        log_slow_request(id, key);
    free(reply);
    free(scratch);
    return len;
}

int main(void)
{
    long bytes = 0;
    say("demo: key/value service starting (%d requests, %d keys)\n", REQUESTS, CACHE_KEYS);
    for (int id = 0; id < REQUESTS; id++)
        bytes += handle_request(id);
    say("demo: served %d requests, %d slow ones logged\n", REQUESTS, nslow);
    say("demo: expected leaks: cache_store %d bytes, log_slow_request %d bytes\n",
        CACHE_KEYS * VALUE_SIZE, nslow * SLOWLOG_SIZE);
    return bytes > 0 ? 0 : 1;
}
