// newbench — C++ new[]/delete[] churn for `make bench` (suite "cxx"):
// THREADS threads each run OPS / THREADS iterations of "delete[] the array
// allocated 256 iterations ago, new char[16..256]" (xorshift sizes, the same
// every run), the shape of a C++ service's small temporaries.  Prints one
// line, as mallocbench does:
//   threads=T ops=N elapsed_s=S checksum=X
// elapsed_s is the time between starting the threads and joining them.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <pthread.h>

namespace
{

struct alignas(64) Worker { // a line each: no false sharing between threads
    pthread_t th;
    uint64_t seed, ops, sum;
};

void *work(void *arg)
{
    Worker *w = static_cast<Worker *>(arg);
    char *live[256] = {};
    uint64_t x = w->seed, sum = 0;
    unsigned k = 0;
    for (uint64_t i = 0; i < w->ops; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        delete[] live[k];
        live[k] = new char[16 + x % 241];
        live[k][0] = (char)x; // touch it, as a program would
        sum += (unsigned char)live[k][0];
        k = (k + 1) & 255;
    }
    for (char *p : live)
        delete[] p;
    w->sum = sum;
    return nullptr;
}

} // namespace

int main(int argc, char **argv)
{
    int nt = argc > 1 ? atoi(argv[1]) : 2;
    uint64_t ops = argc > 2 ? strtoull(argv[2], nullptr, 10) : 40000000;
    static Worker w[64];
    uint64_t sum = 0;
    timespec a, b;
    if (nt < 1 || nt > 64) {
        fputs("usage: newbench THREADS OPS\n", stderr);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < nt; i++) {
        w[i].seed = 0x9E3779B97F4A7C15ull ^ (uint64_t)(i + 1) * 0xBF58476D1CE4E5B9ull;
        w[i].ops = ops / (uint64_t)nt;
        pthread_create(&w[i].th, nullptr, work, &w[i]);
    }
    for (int i = 0; i < nt; i++) {
        pthread_join(w[i].th, nullptr);
        sum += w[i].sum;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("threads=%d ops=%llu elapsed_s=%.4f checksum=%016llx\n", nt, (unsigned long long)ops,
           (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9,
           (unsigned long long)sum);
    return 0;
}
