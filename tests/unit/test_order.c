/*
 * test_order.c — the collector's live heap when rows arrive the way the
 * agent sends them: totals, cross-thread frees and reused addresses in and
 * across drain rounds (session_heap.c, round.c, the ORDER RULES of
 * proto/perfagent.proto), rounds applied at their round_end, sampled rows.
 * Streams are built with tests/streams.h and fed to a session; the checks
 * are on numbers.  Malformed input is test_decode.c's.
 */
#include "check.h"
#include "streams.h"

/* ---- tests ------------------------------------------------------------------ */
TEST(test_totals)
{
    buf_t b = {0};
    int rc;
    uint64_t v[4];
    session_totals_t t;

    build_basic(&b);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    CHECK_EQ_U64(session_end(s), 0);
    CHECK(session_error(s) == NULL);
    CHECK(session_has_hello(s));
    CHECK(session_has_goodbye(s));
    CHECK_EQ_U64(session_pid(s), 4242);
    CHECK_EQ_U64(session_ppid(s), 1);
    CHECK_STREQ(session_exe(s), "/usr/bin/app");
    CHECK_STREQ(session_argv_json(s), "[\"./app\", \"-x\", \"we\\\"ird\\n\"]");

    stack_totals(s, 1, v);
    CHECK_EQ_U64(v[0], 150);
    CHECK_EQ_U64(v[1], 2);
    CHECK_EQ_U64(v[2], 50);
    CHECK_EQ_U64(v[3], 1);
    stack_totals(s, 2, v);
    CHECK_EQ_U64(v[0], 7);
    CHECK_EQ_U64(v[1], 1);
    CHECK_EQ_U64(v[2], 7);
    CHECK_EQ_U64(v[3], 1);
    stack_totals(s, 3, v);
    CHECK_EQ_U64(v[0] + v[1] + v[2] + v[3], 0);
    stack_totals(s, 0, v);
    CHECK_EQ_U64(v[0], 1000);
    CHECK_EQ_U64(v[2], 1000);
    CHECK_EQ_U64(session_stack_totals(s, 4, NULL, NULL, NULL, NULL), -ENOENT);

    session_get_totals(s, &t);
    CHECK_EQ_U64(t.allocs, 4);
    CHECK_EQ_U64(t.samples, 0);
    CHECK_EQ_U64(t.frees, 2);
    CHECK_EQ_U64(t.frees_unknown, 1);
    CHECK_EQ_U64(t.bytes_allocated, 1157);
    CHECK_EQ_U64(t.objects_allocated, 4);
    CHECK_EQ_U64(t.live_bytes, 1057);
    CHECK_EQ_U64(t.live_objects, 3);
    CHECK_EQ_U64(t.live_blocks, 3);
    CHECK_EQ_U64(t.rows, 6);
    CHECK_EQ_U64(t.frames, 3);
    CHECK_EQ_U64(t.frames_lost, 0);
    CHECK_EQ_U64(t.stacks, 3);
    CHECK_EQ_U64(t.no_stack, 1);
    CHECK_EQ_U64(t.threads, 1);
    CHECK_EQ_U64(t.modules, 1);
    CHECK_EQ_U64(t.count_mismatch, 0);
    session_free(s);
    free(b.p);
}

/* Thread A allocates X and frees it; thread B then gets X from malloc.  B's
 * ALLOC reaches the collector before A's FREE. */
TEST(test_reorder_alloc_before_free)
{
    buf_t b = {0}, r = {0};
    uint64_t v[4];
    session_totals_t t;
    int rc;

    put_header(&b, 1, 2);
    row_alloc(&r, 0x5000, 64, 1, 100); /* A */
    put_heap(&b, 1, 1, &r, 1);
    r.n = 0;
    row_alloc(&r, 0x5000, 32, 2, 300); /* B */
    put_heap(&b, 2, 2, &r, 1);
    r.n = 0;
    row_free(&r, 0x5000, 200); /* A's free, older than B's alloc */
    put_heap(&b, 3, 1, &r, 1);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    stack_totals(s, 1, v);
    CHECK_EQ_U64(v[0], 64);
    CHECK_EQ_U64(v[2], 0);
    CHECK_EQ_U64(v[3], 0);
    stack_totals(s, 2, v);
    CHECK_EQ_U64(v[2], 32); /* B's block stays live */
    CHECK_EQ_U64(v[3], 1);
    session_get_totals(s, &t);
    CHECK_EQ_U64(t.live_bytes, 32);
    CHECK_EQ_U64(t.live_blocks, 1);
    CHECK_EQ_U64(t.frees_stale, 1);
    CHECK_EQ_U64(t.reuse_implied, 1);
    CHECK_EQ_U64(t.frees_unknown, 0);
    session_free(s);
    free(b.p);
    free(r.p);
}

/* Same history, but B's ALLOC arrives before A's ALLOC and FREE. */
TEST(test_reorder_alloc_before_alloc)
{
    buf_t b = {0}, r = {0};
    uint64_t v[4];
    session_totals_t t;
    int rc;

    put_header(&b, 1, 2);
    row_alloc(&r, 0x5000, 32, 2, 300); /* B */
    put_heap(&b, 1, 2, &r, 1);
    r.n = 0;
    row_alloc(&r, 0x5000, 64, 1, 100); /* A */
    row_free(&r, 0x5000, 200);
    put_heap(&b, 2, 1, &r, 2);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    stack_totals(s, 1, v);
    CHECK_EQ_U64(v[0], 64);
    CHECK_EQ_U64(v[2], 0);
    stack_totals(s, 2, v);
    CHECK_EQ_U64(v[2], 32);
    session_get_totals(s, &t);
    CHECK_EQ_U64(t.live_bytes, 32);
    CHECK_EQ_U64(t.allocs_superseded, 1);
    CHECK_EQ_U64(t.frees_stale, 1);
    session_free(s);
    free(b.p);
    free(r.p);
}

/* What thread_churn does, in one drain round: main frees two blocks that two
 * workers allocated at the same (reused) address, and main's rows come
 * first.  Inside a round the collector orders rows by ticks, so this is exact
 * with none of the out-of-order fallbacks. */
TEST(test_round_orders_threads)
{
    buf_t b = {0}, r = {0};
    uint64_t v[4];
    session_totals_t t;
    int rc;

    g_round_end = 0;
    put_header(&b, 1, 3);
    row_free(&r, 0x7000, 200); /* main frees W1's block */
    row_free(&r, 0x7000, 400); /* main frees W2's block, same address */
    put_heap(&b, 1, 10, &r, 2);
    r.n = 0;
    row_alloc(&r, 0x7000, 512, 3, 300); /* W2 */
    put_heap(&b, 2, 12, &r, 1);
    r.n = 0;
    row_alloc(&r, 0x7000, 512, 3, 100); /* W1 */
    g_round_end = 1;
    put_heap(&b, 3, 11, &r, 1);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    stack_totals(s, 3, v);
    CHECK_EQ_U64(v[0], 1024); /* allocated */
    CHECK_EQ_U64(v[1], 2);
    CHECK_EQ_U64(v[2], 0); /* live */
    CHECK_EQ_U64(v[3], 0);
    session_get_totals(s, &t);
    CHECK_EQ_U64(t.live_blocks, 0);
    CHECK_EQ_U64(t.frees, 2);
    CHECK_EQ_U64(t.frees_unknown, 0);
    CHECK_EQ_U64(t.frees_early, 0);
    CHECK_EQ_U64(t.frees_stale, 0);
    CHECK_EQ_U64(t.reuse_implied, 0);
    CHECK_EQ_U64(t.allocs_superseded, 0);
    session_free(s);
    free(b.p);
    free(r.p);
}

/* One address through three rounds and three threads, the stream fed a
 * frame at a time with the totals read after each: a round's rows wait
 * (buffered, in memory) until its round_end and are then all applied, in
 * ticks order, before the next round's.  X is allocated by thread 1 and
 * freed by thread 2 (the FREE arriving first, in a batch of its own), then
 * re-allocated by thread 2 in the next round, freed again by thread 2 and
 * re-allocated by thread 3 in the third (the ALLOC arriving first).  A
 * decoder that drops round_end leaves every row buffered until Goodbye: the
 * final numbers come out the same (ticks order across rounds is the order
 * they happened in), but the session holds the whole stream's rows meanwhile,
 * which this catches after the first round. */
TEST(test_round_end_applies)
{
    enum { X = 0x9000, Y = 0xa000 };
    buf_t b = {0}, r = {0};
    size_t end[6];
    uint64_t v[4];
    session_totals_t t;

    put_header(&b, 1, 3);
    end[0] = b.n;
    g_round_end = 0; /* round 1, first batch */
    row_free(&r, X, 200);
    put_heap(&b, 1, 2, &r, 1);
    end[1] = b.n;
    g_round_end = 1; /* round 1, last batch */
    r.n = 0;
    row_alloc(&r, X, 64, 1, 100);
    row_alloc(&r, Y, 8, 1, 150);
    put_heap(&b, 2, 1, &r, 2);
    end[2] = b.n;
    r.n = 0; /* round 2 */
    row_alloc(&r, X, 32, 2, 300);
    row_free(&r, Y, 310);
    put_heap(&b, 3, 2, &r, 2);
    end[3] = b.n;
    r.n = 0; /* round 3: thread 3's ALLOC arrives before thread 2's FREE */
    {
        buf_t r3 = {0};
        row_alloc(&r3, X, 16, 3, 500);
        row_free(&r, X, 400);
        Perfagent__HeapEvents he[2] = {PERFAGENT__HEAP_EVENTS__INIT, PERFAGENT__HEAP_EVENTS__INIT};
        Perfagent__Record rec[2] = {PERFAGENT__RECORD__INIT, PERFAGENT__RECORD__INIT};
        Perfagent__Record *rp[2] = {&rec[0], &rec[1]};
        he[0].tid = 3;
        he[0].rows.data = r3.p;
        he[0].rows.len = r3.n;
        he[1].tid = 2;
        he[1].rows.data = r.p;
        he[1].rows.len = r.n;
        for (int i = 0; i < 2; i++) {
            rec[i].body_case = PERFAGENT__RECORD__BODY_HEAP;
            rec[i].heap = &he[i];
        }
        put_frame(&b, 4, rp, 2);
        free(r3.p);
    }
    end[4] = b.n;
    put_stats_goodbye(&b, 5, 0);
    end[5] = b.n;

    session_t *s = session_new(&(session_opts_t){.peer = "test"});
    CHECK(s != NULL);
    for (size_t f = 0; f < 6; f++) {
        size_t from = f ? end[f - 1] : 0;
        CHECK_EQ_U64(session_feed(s, b.p + from, end[f] - from), 0);
        session_get_totals(s, &t);
        switch (f) {
        case 0:
        case 1: /* round 1 is not over: its FREE waits for the ALLOC */
            CHECK_EQ_U64(t.rows, f ? 1 : 0);
            CHECK_EQ_U64(t.allocs + t.frees, 0);
            break;
        case 2: /* round 1 applied in ticks order: X freed, Y live */
            CHECK_EQ_U64(t.allocs, 2);
            CHECK_EQ_U64(t.frees, 1);
            CHECK_EQ_U64(t.frees_unknown, 0);
            CHECK_EQ_U64(t.frees_early, 0);
            CHECK_EQ_U64(t.live_blocks, 1);
            CHECK_EQ_U64(t.live_bytes, 8);
            stack_totals(s, 1, v);
            CHECK_EQ_U64(v[2], 8);
            break;
        case 3: /* X live again, thread 2's; Y freed */
            CHECK_EQ_U64(t.allocs, 3);
            CHECK_EQ_U64(t.frees, 2);
            CHECK_EQ_U64(t.live_blocks, 1);
            CHECK_EQ_U64(t.live_bytes, 32);
            stack_totals(s, 2, v);
            CHECK_EQ_U64(v[2], 32);
            stack_totals(s, 1, v);
            CHECK_EQ_U64(v[2], 0);
            break;
        default: /* X is thread 3's block; nothing reordered across rounds */
            CHECK_EQ_U64(t.allocs, 4);
            CHECK_EQ_U64(t.frees, 3);
            CHECK_EQ_U64(t.live_blocks, 1);
            CHECK_EQ_U64(t.live_bytes, 16);
            stack_totals(s, 3, v);
            CHECK_EQ_U64(v[2], 16);
            CHECK_EQ_U64(v[3], 1);
            stack_totals(s, 2, v);
            CHECK_EQ_U64(v[2], 0);
            CHECK_EQ_U64(t.frees_unknown + t.frees_early + t.frees_stale, 0);
            CHECK_EQ_U64(t.reuse_implied + t.allocs_superseded, 0);
            break;
        }
    }
    CHECK_EQ_U64(session_end(s), 0);
    session_get_totals(s, &t);
    CHECK_EQ_U64(t.live_bytes, 16);
    CHECK_EQ_U64(t.rows, 7);
    session_free(s);
    free(b.p);
    free(r.p);
}

/* The agent reads the threads' ring heads one after another, so a row
 * committed while it reads them can miss its round while rows made after it
 * (in threads read later) are in: here thread 1's ALLOC of X (ticks 100),
 * committed just after thread 1's head was read, comes a round after thread
 * 2's FREE of it (200), thread 3's ALLOC of X again (300) and thread 4's
 * FREE of that (400).  The round applied whole must remember that X was
 * freed at 400, or the late ALLOC makes X live for good (churn_order's
 * thread_stress, 1 run in ~10: 36 blocks "leaked").  With the round's
 * round_start_ticks (350: the agent noted the heads after thread 3's
 * ALLOC), and without it (an older agent: the collector's window). */
static void late_alloc(uint64_t round_start)
{
    enum { X = 0x7000 };
    buf_t b = {0}, r = {0};
    session_totals_t t;
    uint64_t v[4];
    int rc;

    tb_round_start_ticks = round_start;

    put_header(&b, 1, 2);
    g_round_end = 0;
    row_free(&r, X, 200);
    put_heap(&b, 1, 2, &r, 1);
    r.n = 0;
    row_alloc(&r, X, 48, 2, 300);
    put_heap(&b, 2, 3, &r, 1);
    r.n = 0;
    g_round_end = 1; /* round 1 ends */
    row_free(&r, X, 400);
    put_heap(&b, 3, 4, &r, 1);
    r.n = 0;
    row_alloc(&r, X, 64, 1, 100); /* round 2: the late one */
    put_heap(&b, 4, 1, &r, 1);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    session_get_totals(s, &t);
    CHECK_EQ_U64(t.allocs, 2);
    CHECK_EQ_U64(t.frees, 2);
    CHECK_EQ_U64(t.live_blocks, 0);
    CHECK_EQ_U64(t.live_bytes, 0);
    stack_totals(s, 1, v);
    CHECK_EQ_U64(v[0], 64);
    CHECK_EQ_U64(v[2], 0);
    session_free(s);
    free(b.p);
    free(r.p);
    tb_round_start_ticks = 0;
}

TEST(test_late_alloc_next_round)
{
    late_alloc(350);
    late_alloc(0);
}

/* Thread A allocates X, thread B frees it, B's FREE arrives first.  A later
 * reuse of an address freed while unknown must still count as live. */
TEST(test_free_before_alloc)
{
    buf_t b = {0}, r = {0};
    uint64_t v[4];
    session_totals_t t;
    int rc;

    put_header(&b, 1, 1);
    row_free(&r, 0x5000, 200); /* B */
    row_free(&r, 0x6000, 50);  /* a block from before the agent */
    put_heap(&b, 1, 2, &r, 2);
    r.n = 0;
    row_alloc(&r, 0x5000, 64, 1, 100); /* A, allocated before B freed it */
    row_alloc(&r, 0x6000, 8, 1, 60);   /* reuse after the free: live */
    put_heap(&b, 2, 1, &r, 2);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    stack_totals(s, 1, v);
    CHECK_EQ_U64(v[0], 72);
    CHECK_EQ_U64(v[2], 8);
    CHECK_EQ_U64(v[3], 1);
    session_get_totals(s, &t);
    CHECK_EQ_U64(t.frees, 2);
    CHECK_EQ_U64(t.frees_early, 1);
    CHECK_EQ_U64(t.frees_unknown, 1);
    CHECK_EQ_U64(t.live_blocks, 1);
    session_free(s);
    free(b.p);
    free(r.p);
}

TEST(test_sampled)
{
    buf_t b = {0}, r = {0};
    uint64_t v[4];
    session_totals_t t;
    int rc;

    put_header(&b, 4096, 1);
    row_sample(&r, 0x1000, 100, 1, 10, 4096);  /* stands for ~41 objects */
    row_sample(&r, 0x2000, 8192, 1, 11, 8192); /* bigger than the rate: itself */
    row_free(&r, 0x2000, 12);
    row_free(&r, 0x3000, 13); /* not sampled */
    put_heap(&b, 1, 7, &r, 4);
    session_t *s = feed(&b, 0, &rc, NULL);
    CHECK_EQ_U64(rc, 0);
    stack_totals(s, 1, v);
    CHECK_EQ_U64(v[0], 12288);
    CHECK_EQ_U64(v[1], 42);
    CHECK_EQ_U64(v[2], 4096);
    CHECK_EQ_U64(v[3], 41);
    session_get_totals(s, &t);
    CHECK_EQ_U64(t.samples, 2);
    CHECK_EQ_U64(t.allocs, 0);
    CHECK_EQ_U64(t.frees_unknown, 1);
    /* No Goodbye, but the stream stopped between frames: not a fault. */
    CHECK_EQ_U64(session_end(s), 0);
    CHECK(!session_has_goodbye(s));
    CHECK(session_error(s) == NULL);
    session_free(s);
    free(b.p);
    free(r.p);
}

int main(void)
{
    RUN(test_totals);
    RUN(test_reorder_alloc_before_free);
    RUN(test_reorder_alloc_before_alloc);
    RUN(test_free_before_alloc);
    RUN(test_late_alloc_next_round);
    RUN(test_round_orders_threads);
    RUN(test_round_end_applies);
    RUN(test_sampled);
    CHECK_DONE();
}
