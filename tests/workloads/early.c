/* libearly.so — see calloc_first.c.  Its constructor runs before those of
 * LD_PRELOADed libraries (it is a DT_NEEDED dependency of the program). */
#include "wl.h"

unsigned char *early_lib_block;
static int early_lib_bad;

NOINLINE void *early_lib_alloc(void)
{
    void *p = calloc(1, 65536);
    NO_TAIL();
    return p;
}

__attribute__((constructor)) static void early_lib_ctor(void)
{
    early_lib_block = early_lib_alloc();
    if (!early_lib_block) {
        early_lib_bad = 1;
        return;
    }
    for (int i = 0; i < 65536; i++)
        if (early_lib_block[i] != 0)
            early_lib_bad = 2;
    memset(early_lib_block, 0x11, 65536);
}

int early_lib_check(void)
{
    if (early_lib_bad)
        return early_lib_bad;
    for (int i = 0; i < 65536; i++)
        if (early_lib_block[i] != 0x11)
            return 3;
    return 0;
}
