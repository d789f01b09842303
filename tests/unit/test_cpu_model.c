/*
 * test_cpu_model.c — CpuSamples through the decoder (the cpu sink and its
 * checks: lengths equal, stack ids defined, period in range, no sink =
 * ignored) and cpu_model's arithmetic: samples per stack and per thread, the
 * delivered rate, and cpu.folded (stacks that render alike are merged, lines
 * sorted, counts exact).
 */
#include "check.h"
#include "cpu_model.h"
#include "streams.h"

typedef struct cap {
    cpu_model_t *m;
    unsigned records;
} cap_t;

static int cap_cpu(void *ctx, const Perfagent__CpuSamples *cs)
{
    cap_t *c = ctx;
    c->records++;
    return cpu_model_add_record(c->m, cs);
}

static int dec_batch(decoder_t *d, uint64_t seq, Perfagent__Record **recs, size_t n)
{
    buf_t body = {0};
    pack_batch(&body, seq, 0, recs, n);
    int rc = decode_frame(d, body.p, body.n, 0);
    free(body.p);
    return rc;
}

/* Hello, then StackDefs 1 and 2 (leaf_is_pc), as batch 0. */
static int dec_start(decoder_t *d)
{
    Perfagent__Hello h = PERFAGENT__HELLO__INIT;
    h.protocol_version = DECODE_PROTOCOL_VERSION;
    uint64_t fr[2] = {0x401000, 0x402000};
    Perfagent__StackDef sd[2] = {PERFAGENT__STACK_DEF__INIT, PERFAGENT__STACK_DEF__INIT};
    Perfagent__Record r[3] = {PERFAGENT__RECORD__INIT, PERFAGENT__RECORD__INIT,
                              PERFAGENT__RECORD__INIT};
    Perfagent__Record *rp[3] = {&r[0], &r[1], &r[2]};
    r[0].body_case = PERFAGENT__RECORD__BODY_HELLO;
    r[0].hello = &h;
    for (int i = 0; i < 2; i++) {
        sd[i].id = (uint32_t)i + 1;
        sd[i].n_frames = 2;
        sd[i].frames = fr;
        sd[i].leaf_is_pc = 1;
        r[i + 1].body_case = PERFAGENT__RECORD__BODY_STACK;
        r[i + 1].stack = &sd[i];
    }
    return dec_batch(d, 0, rp, 3);
}

static int dec_cpu(decoder_t *d, uint64_t seq, uint32_t tid, const uint32_t *ids, size_t n_ids,
                   size_t n_times, uint64_t period, uint64_t cpu_ns)
{
    uint64_t times[16] = {0};
    Perfagent__CpuSamples cs = PERFAGENT__CPU_SAMPLES__INIT;
    Perfagent__Record r = PERFAGENT__RECORD__INIT, *rp = &r;
    for (size_t i = 0; i < 16; i++)
        times[i] = 1000 + i;
    cs.tid = tid;
    cs.stack_id = (uint32_t *)ids;
    cs.n_stack_id = n_ids;
    cs.time_ns = times;
    cs.n_time_ns = n_times;
    cs.period_ns = period;
    cs.thread_cpu_ns = cpu_ns;
    r.body_case = PERFAGENT__RECORD__BODY_CPU;
    r.cpu = &cs;
    return dec_batch(d, seq, &rp, 1);
}

TEST(test_cpu_decode)
{
    cap_t c = {.m = cpu_model_new()};
    decode_sink_t sink = {.ctx = &c, .cpu = cap_cpu};
    decoder_t *d = decode_new(NULL, &sink);
    static const uint32_t ids[] = {1, 2, 1, 0, 1};
    CHECK_EQ_U64(dec_start(d), 0);
    CHECK_EQ_U64(dec_cpu(d, 1, 77, ids, 5, 5, 1001001, 6000000), 0);
    CHECK_EQ_U64(dec_cpu(d, 2, 78, ids, 2, 2, 1001001, 0), 0);
    CHECK_EQ_U64(c.records, 2);
    CHECK_EQ_U64(decode_counts(d)->cpu_samples, 7);
    CHECK_EQ_U64(decode_counts(d)->ignored_records, 0);
    CHECK_EQ_U64(cpu_model_samples(c.m), 7);
    CHECK_EQ_U64(cpu_model_stack_samples(c.m, 1), 4);
    CHECK_EQ_U64(cpu_model_stack_samples(c.m, 2), 2);
    CHECK_EQ_U64(cpu_model_stack_samples(c.m, 0), 1);
    /* a samples-free record only updates the thread's CPU time */
    CHECK_EQ_U64(dec_cpu(d, 3, 78, ids, 0, 0, 1001001, 2002002), 0);
    const cpu_thread_stat_t *t;
    CHECK_EQ_U64(cpu_model_threads(c.m, &t), 2);
    CHECK_EQ_U64(t[0].tid, 77);
    CHECK_EQ_U64(t[0].samples, 5);
    CHECK_EQ_U64(t[0].cpu_ns, 6000000);
    CHECK_EQ_U64(t[0].first_ns, 1000);
    CHECK_EQ_U64(t[0].last_ns, 1004);
    CHECK_EQ_U64(t[1].tid, 78);
    CHECK_EQ_U64(t[1].samples, 2);
    CHECK_EQ_U64(t[1].cpu_ns, 2002002);
    /* 5 x 1.001001 ms of 6 ms = 83.4%; 2 x 1.001001 of 2.002002 ms = 100% */
    CHECK_EQ_U64((uint64_t)(cpu_thread_delivered(&t[0]) * 10000 + 0.5), 8342);
    CHECK_EQ_U64((uint64_t)(cpu_thread_delivered(&t[1]) * 10000 + 0.5), 10000);
    decode_free(d);

    /* malformed: each stops the stream and names what was wrong */
    static const struct {
        size_t n_ids, n_times;
        uint64_t period;
        uint32_t bad_id;
        const char *want;
    } bad[] = {
        {3, 2, 1000, 0, "3 stack ids but 2 times"},
        {2, 3, 1000, 0, "2 stack ids but 3 times"},
        {2, 2, 0, 0, "period_ns 0 out of range"},
        {2, 2, DECODE_MAX_PERIOD_NS + 1, 0, "out of range"},
        {2, 2, 1000, 3, "stack id not defined (3)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint32_t v[3] = {1, bad[i].bad_id ? bad[i].bad_id : 2, 1};
        d = decode_new(NULL, &sink);
        CHECK_EQ_U64(dec_start(d), 0);
        CHECK_EQ_U64(dec_cpu(d, 1, 5, v, bad[i].n_ids, bad[i].n_times, bad[i].period, 0), -EPROTO);
        CHECK(contains(decode_error(d), bad[i].want));
        decode_free(d);
    }
    /* a reader without a cpu callback checks and skips them */
    decode_sink_t none = {0};
    d = decode_new(NULL, &none);
    CHECK_EQ_U64(dec_start(d), 0);
    CHECK_EQ_U64(dec_cpu(d, 1, 5, ids, 2, 2, 1000, 0), 0);
    CHECK_EQ_U64(decode_counts(d)->ignored_records, 1);
    CHECK_EQ_U64(decode_counts(d)->cpu_samples, 0);
    CHECK_EQ_U64(dec_cpu(d, 2, 5, ids, 2, 1, 1000, 0), -EPROTO);
    decode_free(d);
    cpu_model_free(c.m);
}

/* Stack ids 1..4 render as: 1 "main;a", 2 "main;b", 3 "main;a" (another pc
 * in a), 4 fails. */
static int render(void *ctx, uint32_t id, char **out)
{
    static const char *txt[] = {"[no stack]", "main;a", "main;b", "main;a"};
    (void)ctx;
    if (id > 3)
        return -EINVAL;
    *out = strdup(txt[id]);
    return *out ? 0 : -ENOMEM;
}

TEST(test_cpu_folded)
{
    cpu_model_t *m = cpu_model_new();
    static const uint32_t a[] = {3, 1, 2, 1, 0, 3, 3};
    char *text = NULL;
    size_t len = 0;
    CHECK_EQ_U64(cpu_model_add(m, 10, a, NULL, 7, 1000000), 0);
    CHECK_EQ_U64(cpu_model_add(m, 9, a + 2, NULL, 1, 1000000), 0);
    FILE *f = open_memstream(&text, &len);
    CHECK_EQ_U64(cpu_model_write_folded(m, f, render, NULL), 0);
    fclose(f);
    /* byte order; ids 1 and 3 merged (2 + 3); id 0 kept as its own line */
    CHECK_STREQ(text, "[no stack] 1\nmain;a 5\nmain;b 2\n");
    free(text);
    const cpu_thread_stat_t *t;
    CHECK_EQ_U64(cpu_model_threads(m, &t), 2);
    CHECK_EQ_U64(t[0].tid, 9); /* sorted by tid, whatever the order seen */
    CHECK_EQ_U64(t[1].samples, 7);
    CHECK_EQ_U64(cpu_thread_delivered(&t[1]) == 0, 1); /* CPU time unknown */
    /* a render failure is returned, nothing leaks */
    static const uint32_t four = 4;
    CHECK_EQ_U64(cpu_model_add(m, 9, &four, NULL, 1, 1000000), 0);
    f = open_memstream(&text, &len);
    CHECK_EQ_U64(cpu_model_write_folded(m, f, render, NULL), -EINVAL);
    fclose(f);
    free(text);
    /* many threads: the index survives growth */
    for (uint32_t tid = 1000; tid < 1300; tid++)
        CHECK_EQ_U64(cpu_model_add(m, tid, a, NULL, tid % 7, 1000), 0);
    CHECK_EQ_U64(cpu_model_threads(m, &t), 302);
    uint64_t sum = 0;
    for (size_t i = 0; i < 302; i++) {
        CHECK(i == 0 || t[i - 1].tid < t[i].tid);
        sum += t[i].samples;
    }
    CHECK_EQ_U64(sum, cpu_model_samples(m));
    CHECK_EQ_U64(sum, 7 + 1 + 1 + 898); /* 898: tid % 7 summed over 1000..1299 */
    cpu_model_free(m);
}

int main(void)
{
    RUN(test_cpu_decode);
    RUN(test_cpu_folded);
    CHECK_DONE();
}
