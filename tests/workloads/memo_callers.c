/*
 * memo_callers — allocations that start their stack walk from the same
 * place but belong to different stacks: six callers reach one wrapper
 * through one middle function, so the allocation hook's frame, its return
 * address and the wrapper's frame are the same every time and only a word
 * further up (the middle function's return address) tells the callers
 * apart.  More callers than the agent's stack memo has ways per set, taken
 * round robin, so remembered walks are replaced all the time.  Every block
 * has the same size: a stack credited to the wrong caller shows only in
 * the per-caller counts.  Built without frame pointers.
 *
 * Leaks ROUNDS blocks of 64 bytes from each caller_K taken in turn, as many
 * again from callers picked in an irregular order, then ROUNDS more from
 * caller_0 and caller_1 alternating: 2*ROUNDS blocks from callers 2..5,
 * 3*ROUNDS from callers 0 and 1 (tests/e2e/unwind.sh).  Prints "leaked N".
 */
#include "wl.h"

#define ROUNDS 600
#define NCALLERS 6

static unsigned long leaked;
static void *volatile keep;

static NOINLINE void wrap(size_t n)
{
    keep = malloc(n);
    NO_TAIL();
    leaked++;
}

static NOINLINE void mid(size_t n)
{
    wrap(n);
    NO_TAIL();
}

#define CALLER(k)                                                                                  \
    static NOINLINE void caller_##k(void)                                                          \
    {                                                                                              \
        mid(64);                                                                                   \
        NO_TAIL();                                                                                 \
    }
CALLER(0)
CALLER(1)
CALLER(2)
CALLER(3)
CALLER(4)
CALLER(5)

static void (*const callers[NCALLERS])(void) = {caller_0, caller_1, caller_2,
                                                  caller_3, caller_4, caller_5};

int main(void)
{
    unsigned counts[NCALLERS] = {0};
    uint32_t x = 12345;
    for (int r = 0; r < ROUNDS; r++)
        for (int k = 0; k < NCALLERS; k++)
            callers[k]();
    /* Irregular order, same totals: each caller exactly ROUNDS more. */
    for (int done = 0; done < ROUNDS * NCALLERS;) {
        x = x * 1103515245u + 12345u;
        unsigned k = (x >> 16) % NCALLERS;
        if (counts[k] == ROUNDS)
            continue;
        counts[k]++;
        callers[k]();
        done++;
    }
    /* Two callers only: both walks fit in one memo set and are reused. */
    for (int r = 0; r < ROUNDS; r++) {
        caller_0();
        caller_1();
    }
    out("leaked %lu\n", leaked);
    return 0;
}
