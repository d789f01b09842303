// newmix — C++ allocations of a known total, for the sampled heap's
// estimator through operator new (tests/e2e/heap_sampled.sh).
//
//   usage: newmix CHURN_MB [THREADS]
//
// Each thread churns new char[n] / delete[] with n from 1 KiB to 64 KiB (sizemix's medium mix)
// (xorshift, the same sequence every run), keeping at most 256 arrays live
// and deleting the oldest, until it has asked for CHURN_MB / THREADS MiB;
// all are deleted at the end.  libstdc++'s operator new[] calls operator
// new, which calls malloc: each request must be counted once.  One line at
// the end, the exact totals asked of new[]:
//   allocated=B objects=N
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <pthread.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noipa))
#define NO_TAIL() __asm__ volatile("" ::: "memory")

namespace
{

constexpr unsigned kLive = 256;
uint64_t churn_each;

struct Totals {
    uint64_t id;
    uint64_t bytes, objects;
};

NOINLINE char *churn_new(size_t n)
{
    char *p = new char[n];
    NO_TAIL();
    return p;
}

void *worker(void *arg)
{
    Totals *t = static_cast<Totals *>(arg);
    char *live[kLive] = {};
    uint64_t x = 0x9E3779B97F4A7C15ull ^ (t->id * 0xBF58476D1CE4E5B9ull), churned = 0;
    unsigned k = 0;
    while (churned < churn_each) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t n = 1024 + x % (63 * 1024 + 1);
        delete[] live[k];
        live[k] = churn_new(n);
        k = (k + 1) % kLive;
        churned += n;
        t->bytes += n;
        t->objects++;
    }
    for (unsigned i = 0; i < kLive; i++)
        delete[] live[i];
    return nullptr;
}

} // namespace

int main(int argc, char **argv)
{
    int nt = argc > 2 ? atoi(argv[2]) : 1;
    pthread_t th[16];
    static Totals t[16];
    uint64_t bytes = 0, objects = 0;
    char line[160];
    if (argc < 2 || nt < 1 || nt > 16) {
        fputs("usage: newmix CHURN_MB [THREADS]\n", stderr);
        return 2;
    }
    churn_each = strtoull(argv[1], nullptr, 10) * 1048576 / (uint64_t)nt;
    for (int i = 0; i < nt; i++) {
        t[i].id = (uint64_t)i + 1;
        pthread_create(&th[i], nullptr, worker, &t[i]);
    }
    for (int i = 0; i < nt; i++) {
        pthread_join(th[i], nullptr);
        bytes += t[i].bytes;
        objects += t[i].objects;
    }
    // snprintf + write: stdio's stdout buffer would be one more allocation
    int n = snprintf(line, sizeof line, "allocated=%llu objects=%llu\n", (unsigned long long)bytes,
                     (unsigned long long)objects);
    return write(1, line, (size_t)n) == n ? 0 : 1;
}
