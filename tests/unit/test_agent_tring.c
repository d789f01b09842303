/*
 * test_agent_tring.c — the typed ring (agent/ring.h, ring.c): records of
 * every length round the wrap point (pad records), reservations larger than
 * what is committed, a full ring that drops and counts, a sink that stops
 * the drain, and one producer thread against the draining thread for a
 * million records (order, contents and counts exact).
 */
#include "check.h"
#include "ring.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

/* ring.c's heap-ring half needs these; the typed ring never calls them. */
PA_HIDDEN pa_config_t pa_cfg;
PA_HIDDEN _Atomic uint64_t pa_sender_write_start;
int pa_sender_running(void) { return 0; }
void pa_sender_wake(void) {}
uint64_t pa_mono_ns(void) { return 0; }
const char *pa_getenv(const char *name) { (void)name; return NULL; }
int pa_sender_output_ok(void) { return 0; }

/* A record's payload: its sequence number, then bytes derived from it. */
static uint32_t rec_len(uint64_t seq) { return (uint32_t)((seq * 2654435761u) % 1500); }
static uint8_t rec_byte(uint64_t seq, uint32_t i) { return (uint8_t)(seq * 31 + i * 7); }

static int put(pa_tring_t *r, uint64_t seq, uint32_t reserve_extra)
{
    pa_trec_t rec;
    uint32_t len = rec_len(seq) + 8;
    uint8_t *p = pa_tring_reserve(r, 5, len + reserve_extra, &rec);
    if (!p)
        return -1;
    memcpy(p, &seq, 8);
    for (uint32_t i = 8; i < len; i++)
        p[i] = rec_byte(seq, i);
    pa_tring_commit(r, &rec, len);
    return 0;
}

typedef struct sink_state {
    uint64_t next, bad, taken, limit;
} sink_state_t;

static int sink(void *ctx, uint32_t kind, const uint8_t *p, uint32_t len)
{
    sink_state_t *s = ctx;
    uint64_t seq;
    if (s->limit && s->taken == s->limit)
        return -1;
    memcpy(&seq, p, 8);
    if (kind != 5 || len != rec_len(seq) + 8)
        s->bad++;
    for (uint32_t i = 8; i < len; i++)
        if (p[i] != rec_byte(seq, i)) {
            s->bad++;
            break;
        }
    if (seq < s->next)
        s->bad++; /* out of order or twice */
    s->next = seq + 1;
    s->taken++;
    return 0;
}

TEST(test_wrap_and_pads)
{
    pa_tring_t *r = pa_tring_new(16384);
    sink_state_t s = {0};
    uint64_t drained = 0;
    CHECK(r != NULL);
    /* 5000 records of 8..1507 bytes, drained every 7: the ring wraps ~190
     * times, each wrap leaving a pad unless a record ends exactly there. */
    for (uint64_t seq = 0; seq < 5000; seq++) {
        CHECK_EQ_U64(put(r, seq, seq % 3 ? 0 : 600), 0);
        if (seq % 7 == 6)
            drained += pa_tring_drain(r, sink, &s);
    }
    drained += pa_tring_drain(r, sink, &s);
    CHECK_EQ_U64(drained, 5000);
    CHECK_EQ_U64(s.taken, 5000);
    CHECK_EQ_U64(s.next, 5000);
    CHECK_EQ_U64(s.bad, 0);
    CHECK_EQ_U64(atomic_load(&r->records), 5000);
    CHECK_EQ_U64(atomic_load(&r->drops), 0);
    CHECK(!pa_tring_pending(r));
    pa_tring_free(r);
}

TEST(test_full_and_limits)
{
    pa_tring_t *r = pa_tring_new(4096);
    sink_state_t s = {0};
    pa_trec_t rec;
    CHECK(pa_tring_new(6000) == NULL); /* not a power of two */
    CHECK(pa_tring_new(2048) == NULL); /* too small */
    /* More than a quarter of the ring is refused (a record must never need
     * the whole ring plus a pad). */
    CHECK(pa_tring_reserve(r, 5, 1017, &rec) == NULL);
    CHECK_EQ_U64(atomic_load(&r->drops), 1);
    /* Reservations of 248 bytes committed with 8: each takes 16 bytes of
     * ring, so all 17 fit. */
    for (int i = 0; i < 17; i++) {
        void *p = pa_tring_reserve(r, 5, 248, &rec);
        if (p)
            pa_tring_commit(r, &rec, 8);
    }
    CHECK_EQ_U64(atomic_load(&r->records), 17);
    CHECK_EQ_U64(atomic_load(&r->drops), 1);
    /* Committed in full, 248-byte payloads take 256 bytes: 16 fill the
     * ring, the 17th is dropped. */
    pa_tring_reset(r);
    for (int i = 0; i < 17; i++) {
        void *p = pa_tring_reserve(r, 5, 248, &rec);
        if (p)
            pa_tring_commit(r, &rec, 248);
    }
    CHECK_EQ_U64(atomic_load(&r->records), 16);
    CHECK_EQ_U64(atomic_load(&r->drops), 1);
    pa_tring_free(r);
    /* A sink that stops: the rest stays, in order, for the next drain. */
    r = pa_tring_new(16384);
    for (uint64_t seq = 0; seq < 10; seq++)
        CHECK_EQ_U64(put(r, seq, 0), 0);
    s.limit = 4;
    CHECK_EQ_U64(pa_tring_drain(r, sink, &s), 4);
    CHECK(pa_tring_pending(r));
    s.limit = 0;
    CHECK_EQ_U64(pa_tring_drain(r, sink, &s), 6);
    CHECK_EQ_U64(s.next, 10);
    CHECK_EQ_U64(s.bad, 0);
    pa_tring_free(r);
}

/* One producer, one consumer, as host thread (or its signal handler) and
 * sender: every committed record arrives once, whole, in order. */
#define NREC 1000000
static pa_tring_t *shared;
static _Atomic int producer_done;

static void *producer(void *arg)
{
    uint64_t *dropped = arg;
    /* A full ring drops; the test's producer then tries the same record
     * again, so every record arrives and every drop is counted. */
    for (uint64_t seq = 0; seq < NREC; seq++)
        while (put(shared, seq, seq % 5 ? 0 : 200) < 0) {
            (*dropped)++;
            sched_yield();
        }
    atomic_store(&producer_done, 1);
    return NULL;
}

TEST(test_concurrent)
{
    pthread_t th;
    uint64_t dropped = 0;
    sink_state_t s = {0};
    shared = pa_tring_new(1 << 16);
    CHECK(shared != NULL);
    pthread_create(&th, NULL, producer, &dropped);
    while (!atomic_load(&producer_done))
        pa_tring_drain(shared, sink, &s);
    pthread_join(th, NULL);
    pa_tring_drain(shared, sink, &s);
    CHECK_EQ_U64(s.bad, 0);
    CHECK_EQ_U64(s.taken, NREC);
    CHECK_EQ_U64(s.taken, atomic_load(&shared->records));
    CHECK_EQ_U64(dropped, atomic_load(&shared->drops));
    printf("  %llu records taken, %llu dropped (ring full)\n", (unsigned long long)s.taken,
           (unsigned long long)dropped);
    pa_tring_free(shared);
}

int main(void)
{
    RUN(test_wrap_and_pads);
    RUN(test_full_and_limits);
    RUN(test_concurrent);
    CHECK_DONE();
}
