// Known C++ code for tests/unit/test_symtab.c (demangling), built at test
// time with `g++ -O2 -g -fPIC -shared`.  See target.c for the LINE: marks.
#include <stdint.h>

extern "C" {
volatile uintptr_t st_cc_ret;
}

namespace ns {

__attribute__((noinline, noipa)) static int record(int x)
{
    st_cc_ret = (uintptr_t)__builtin_return_address(0);
    return x + 1;
}

struct Klass {
    int v;
    __attribute__((noinline)) int method(int x);
};

int Klass::method(int x)
{
    int r = record(x); // LINE:method_call
    return r + v;
}

template <typename T> __attribute__((noinline)) T twice(T x)
{
    T r = (T)record((int)x); // LINE:tmpl_call
    return r * 2;
}

} // namespace ns

extern "C" int st_cc_method(int x)
{
    ns::Klass k{3};
    return k.method(x);
}

extern "C" long st_cc_tmpl(long x)
{
    return ns::twice<long>(x) + 1;
}
