// cxx_new — C++ allocation: new/delete, new[]/delete[], nothrow and aligned
// new, std::vector growth, std::string.  Known leaks (requested sizes; the
// agent sees operator new's malloc, so the leaf frame may be operator new and
// the site its caller).  tests/e2e/alloc_api.sh checks these:
//   wl::Factory::make_foo(int)   3 x 424 B   (new Foo)     5 calls, 2 deleted
//   wl::make_ints(unsigned long) 1 x 1000 B  (new int[250]) 2 calls, 1 deleted
// Everything else is freed.  libstdc++'s own start-up allocation (its
// emergency exception pool) is a separate, expected "leak".
#include <cstdint>
#include <cstdio>
#include <new>
#include <string>
#include <vector>

#include <unistd.h>

#define NOINLINE __attribute__((noinline, noipa))
#define NO_TAIL() __asm__ volatile("" ::: "memory")

namespace wl
{

struct Foo {
    char name[200];
    long vals[28];
};
static_assert(sizeof(Foo) == 424, "Foo is 424 bytes");

struct alignas(64) Wide {
    char bytes[192];
};

struct Factory {
    static Foo *make_foo(int i);
};

NOINLINE Foo *Factory::make_foo(int i)
{
    Foo *f = new Foo();
    NO_TAIL();
    f->vals[0] = i;
    return f;
}

NOINLINE int *make_ints(std::size_t n)
{
    int *p = new int[n];
    NO_TAIL();
    for (std::size_t k = 0; k < n; k++)
        p[k] = static_cast<int>(k);
    return p;
}

NOINLINE std::size_t grow_vector(int n)
{
    std::vector<int> v;
    for (int i = 0; i < n; i++)
        v.push_back(i);
    std::vector<std::string> names;
    for (int i = 0; i < 50; i++)
        names.push_back("a string that is longer than the small-string buffer #" +
                        std::to_string(i));
    std::size_t sum = 0;
    for (auto &s : names)
        sum += s.size();
    return v.size() + sum;
}

NOINLINE std::uint64_t misc_news()
{
    std::uint64_t sum = 0;
    Foo *a = new (std::nothrow) Foo();
    sum += a->name[0] == 0;
    delete a;
    Wide *w = new Wide();
    sum += (reinterpret_cast<std::uintptr_t>(w) & 63) == 0;
    delete w;
    Wide *wa = new Wide[3];
    sum += (reinterpret_cast<std::uintptr_t>(wa) & 63) == 0;
    delete[] wa;
    std::string s(5000, 'q');
    s += s;
    sum += s.size();
    return sum;
}

} // namespace wl

int main()
{
    wl::Foo *keep[8];
    int nkeep = 0;
    for (int i = 0; i < 5; i++) {
        wl::Foo *f = wl::Factory::make_foo(i);
        if (i % 2 == 1)
            delete f;
        else
            keep[nkeep++] = f;
    }
    int *ints[2];
    for (int i = 0; i < 2; i++)
        ints[i] = wl::make_ints(250);
    delete[] ints[0];

    std::size_t g = wl::grow_vector(10000);
    std::uint64_t m = wl::misc_news();

    char buf[256];
    int n = std::snprintf(buf, sizeof buf,
                          "cxx_new: kept=%d vals=%ld,%ld,%ld ints=%d grow=%zu misc=%llu\n", nkeep,
                          keep[0]->vals[0], keep[1]->vals[0], keep[2]->vals[0], ints[1][249], g,
                          static_cast<unsigned long long>(m));
    if (write(1, buf, static_cast<std::size_t>(n)) != n)
        return 1;
    return 0;
}
