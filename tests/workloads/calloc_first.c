/*
 * calloc_first — the process's first allocations are large callocs made
 * before the agent's own constructor can run:
 *   - libearly.so (a DT_NEEDED library, initialized before LD_PRELOADed
 *     libraries) callocs 64 KiB in early_lib_alloc from its constructor;
 *   - this program's constructor(101) callocs 48 KiB in early_exe_alloc.
 * Both blocks must be zeroed and usable, and both leak:
 *   early_lib_alloc  1 x 65536 B
 *   early_exe_alloc  1 x 49152 B      total 2 objects, 114688 B
 * main then makes 100 malloc/free pairs (no leak).
 */
#include "wl.h"

extern unsigned char *early_lib_block;
extern int early_lib_check(void);

static unsigned char *early_exe_block;

NOINLINE void *early_exe_alloc(void)
{
    void *p = calloc(16, 3072);
    NO_TAIL();
    return p;
}

__attribute__((constructor(101))) static void early_exe_ctor(void)
{
    early_exe_block = early_exe_alloc();
    WL_ASSERT(early_exe_block != NULL, 3);
    for (int i = 0; i < 49152; i++)
        WL_ASSERT(early_exe_block[i] == 0, 4);
    memset(early_exe_block, 0xee, 49152);
}

int main(void)
{
    WL_ASSERT(early_lib_check() == 0, 5);
    for (int i = 0; i < 49152; i++)
        WL_ASSERT(early_exe_block[i] == 0xee, 6);
    unsigned long sum = 0;
    for (int i = 0; i < 100; i++) {
        unsigned char *p = malloc(100 + (size_t)i);
        WL_ASSERT(p != NULL, 3);
        wl_touch(p, 100 + (size_t)i, (unsigned char)i);
        sum += p[i];
        free(p);
    }
    out("calloc_first: ok sum=%lu\n", sum);
    return 0;
}
