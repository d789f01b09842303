// cxx_oom — operator new at the end of memory, for tests/e2e/alloc_api.sh:
// the agent calls malloc in place of libstdc++'s operator new, and when that
// malloc fails, the real operator must still run the new_handler and throw
// std::bad_alloc, and the nothrow form must return nullptr.
//
// It caps its address space (RLIMIT_AS) 64 MiB above what it has mapped,
// installs a new_handler that counts its calls and removes itself on the
// third, and news 1000-byte arrays (kept) until bad_alloc is thrown.  Then
// one nothrow new of the same size.  Prints one line:
//   handler=3 bad_alloc=1 nothrow=null
// (no array count: how many fit depends on the mappings already there).
#include <cstdio>
#include <new>
#include <sys/resource.h>
#include <unistd.h>

static int calls;

static void handler()
{
    if (++calls == 3)
        std::set_new_handler(nullptr);
}

static long mapped_bytes()
{
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld", &pages) != 1)
        pages = 0;
    if (f)
        fclose(f);
    return pages * sysconf(_SC_PAGESIZE);
}

int main()
{
    struct rlimit rl;
    int bad = 0;
    rl.rlim_cur = rl.rlim_max = (rlim_t)mapped_bytes() + (64L << 20);
    if (setrlimit(RLIMIT_AS, &rl) != 0) {
        perror("setrlimit");
        return 2;
    }
    std::set_new_handler(handler);
    try {
        for (;;) {
            char *p = new char[1000];
            p[0] = 1; // kept: the heap only grows
        }
    } catch (const std::bad_alloc &) {
        bad = 1;
    }
    char *q = new (std::nothrow) char[1000];
    char line[96];
    int n = snprintf(line, sizeof line, "handler=%d bad_alloc=%d nothrow=%s\n", calls, bad,
                     q ? "non-null" : "null");
    return write(1, line, (size_t)n) == n ? 0 : 1;
}
