// cxx_throw — C++ exceptions thrown and caught on two threads while they
// allocate: the unwinder (libgcc's, reading .eh_frame) runs in the host's
// threads at the same time as CPU sampling and the heap hooks.  Each thread
// throws ROUNDS exceptions through three frames, each carrying a heap string,
// and catches them; it prints how many it caught, so the output is known:
//   caught=ROUNDS (twice)   usage: cxx_throw [ROUNDS]   (default 20000)
// tests/e2e/cpu_process.sh runs it under 4 kHz sampling with exact heap
// recording and compares the output and status with a plain run.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#define NOINLINE __attribute__((noinline))

NOINLINE static void level3(long i)
{
    std::vector<int> v(static_cast<size_t>(16 + i % 64), 1);
    if (v.size() > 8)
        throw std::runtime_error("round " + std::to_string(i) + std::string(64, 'x'));
}

NOINLINE static void level2(long i)
{
    std::string keep(static_cast<size_t>(32 + i % 32), 'k');
    level3(i);
}

NOINLINE static void level1(long i)
{
    level2(i);
}

static void worker(long rounds, long *caught)
{
    for (long i = 0; i < rounds; i++) {
        try {
            level1(i);
        } catch (const std::runtime_error &e) {
            if (e.what()[0] == 'r')
                (*caught)++;
        }
    }
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? std::atol(argv[1]) : 20000;
    long caught[2] = {0, 0};
    std::thread a(worker, rounds, &caught[0]), b(worker, rounds, &caught[1]);
    a.join();
    b.join();
    std::printf("caught=%ld\ncaught=%ld\n", caught[0], caught[1]);
    return caught[0] == rounds && caught[1] == rounds ? 0 : 1;
}
