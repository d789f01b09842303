/* static_hello — a statically linked program (LD_PRELOAD does not apply to
 * it); allocates a little and prints a deterministic line. */
#include "wl.h"

int main(void)
{
    unsigned long sum = 0;
    for (int i = 0; i < 1000; i++) {
        unsigned char *p = malloc(16 + (size_t)i);
        WL_ASSERT(p != NULL, 3);
        wl_touch(p, 16 + (size_t)i, (unsigned char)i);
        sum += p[i];
        free(p);
    }
    out("static_hello: sum=%lu\n", sum);
    return 0;
}
