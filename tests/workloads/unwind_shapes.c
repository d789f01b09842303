/*
 * unwind_shapes — allocations made under every frame shape the agent's
 * unwinder must get right.  Built with -fomit-frame-pointer, so a plain
 * frame-pointer walk would lose callers everywhere.  Run under
 * PERFAGENT_UNWIND=verify (tests/e2e/unwind.sh): for each stack the agent
 * compares its own cached .eh_frame walk with libunwind's unw_backtrace().
 *
 * Shapes: leaf sites at several depths, frames of different sizes, a
 * variable-length array and a realigned stack (the CFA is then rbp-based),
 * assembly without unwind information (left to libunwind), a recursion deeper than PERFAGENT_MAX_FRAMES (truncation),
 * callbacks from inside libc (qsort, bsearch), a signal handler (a signal
 * frame: again libunwind's job), and a second thread.
 *
 * Output: "allocs N" with the number of allocations made on purpose.
 */
#include "wl.h"

#include <pthread.h>
#include <signal.h>

static volatile unsigned long sink;
static unsigned long allocs;

static NOINLINE void *site(size_t n)
{
    void *p = malloc(n);
    NO_TAIL();
    allocs++;
    return p;
}

static NOINLINE void use_free(void *p)
{
    sink += (unsigned long)(uintptr_t)p;
    free(p);
    NO_TAIL();
}

/* Frames of several sizes and depths. */
static NOINLINE void depth3(int i)
{
    char pad[200];
    memset(pad, i, sizeof pad);
    sink += (unsigned char)pad[i % 200];
    use_free(site(32 + (size_t)i));
    NO_TAIL();
}

static NOINLINE void depth2(int i)
{
    char pad[5000];
    memset(pad, i, sizeof pad);
    sink += (unsigned char)pad[i % 5000];
    depth3(i);
    NO_TAIL();
}

static NOINLINE void depth1(int i)
{
    depth2(i);
    use_free(site(16));
    NO_TAIL();
}

/* A VLA: GCC keeps a frame pointer here and the CFA is rbp + 16. */
static NOINLINE void vla(int n)
{
    char buf[n];
    memset(buf, 1, (size_t)n);
    sink += (unsigned char)buf[n / 2];
    use_free(site((size_t)n));
    NO_TAIL();
}

/* An over-aligned local makes GCC realign the stack (and address the frame
 * from rbp, so the CFA is rbp-based even without frame pointers). */
static NOINLINE void realigned(int i, int a, int b, int c, int d, int e, int f, int g)
{
    char big[64] __attribute__((aligned(64)));
    memset(big, i, sizeof big);
    sink += (unsigned char)big[i & 63] + ((uintptr_t)big & 63) + (unsigned)(a + b + c + d + e + f + g);
    use_free(site(48));
    NO_TAIL();
}

/* Code without unwind information (no .cfi directives, so no FDE): the
 * agent must leave the stack to libunwind, which follows rbp here. */
void nocfi_call(void (*fn)(void));
__asm__(".text\n"
        ".globl nocfi_call\n"
        ".type nocfi_call, @function\n"
        "nocfi_call:\n"
        "  push %rbp\n"
        "  mov %rsp, %rbp\n"
        "  call *%rdi\n"
        "  pop %rbp\n"
        "  ret\n"
        ".size nocfi_call, .-nocfi_call\n");

static NOINLINE void via_nocfi(void)
{
    use_free(site(40));
    NO_TAIL();
}

/* Deeper than the default PERFAGENT_MAX_FRAMES (64). */
static NOINLINE void recurse(int left)
{
    if (left == 0)
        use_free(site(24));
    else
        recurse(left - 1);
    NO_TAIL();
}

static NOINLINE int cmp_alloc(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    if (((x ^ y) & 7) == 0)
        use_free(site(8));
    return (x > y) - (x < y);
}

static NOINLINE void in_libc(void)
{
    int v[64], key = 17;
    for (int i = 0; i < 64; i++)
        v[i] = (i * 37) % 64;
    qsort(v, 64, sizeof v[0], cmp_alloc);
    sink += (uintptr_t)bsearch(&key, v, 64, sizeof v[0], cmp_alloc) != 0;
}

/* malloc is not async-signal-safe; this program's main thread is in
 * raise() when the handler runs, so nothing else holds the arena. */
static void on_signal(int sig)
{
    use_free(site(64 + (size_t)sig));
}

static void all_shapes(void)
{
    for (int i = 0; i < 50; i++) {
        depth1(i);
        depth3(i);
        vla(16 + i);
        realigned(i, 1, 2, 3, 4, 5, 6, 7);
    }
    recurse(100);
    recurse(10);
    nocfi_call(via_nocfi);
    in_libc();
}

static void *thread_main(void *arg)
{
    (void)arg;
    all_shapes();
    return NULL;
}

int main(void)
{
    pthread_t t;
    all_shapes();
    signal(SIGUSR1, on_signal);
    raise(SIGUSR1);
    if (pthread_create(&t, NULL, thread_main, NULL) != 0)
        return 1;
    pthread_join(t, NULL);
    out("allocs %lu\n", allocs);
    return 0;
}
