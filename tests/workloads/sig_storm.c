/*
 * sig_storm — a signal storm at a thread that allocates all the time, so
 * the signals land inside the malloc hooks (`make stress`, tools/stress.sh).
 *   usage: sig_storm [NSIGNALS=10000]
 * One thread ("alloc_loop") mallocs, writes and frees blocks of 16-4111 B in
 * a loop, keeping a 64-slot live set, with a little work of its own between
 * the calls.  The main thread sends it SIGUSR1
 * NSIGNALS times with pthread_kill, each time waiting until the handler has
 * run (so no signal coalesces with a pending one: exactly NSIGNALS
 * deliveries).  The handler allocates too (malloc, write, free), which is
 * what the agent's hooks must survive when the signal interrupted one of
 * them.  glibc's own malloc is not async-signal-safe (a handler allocating
 * while glibc holds the arena lock deadlocks with or without the agent), so
 * the handler looks at the interrupted instruction (ucontext) and does not
 * allocate when it is inside libc or ld.so: everywhere else (the program,
 * the agent's hooks and unwinder) it does.
 * stdout: "sig_storm: signals=N handled=N" (always the same); stderr: how
 * many handlers allocated and how many found the thread inside libc.
 * Exit 0; everything allocated is freed.
 */
#include "wl.h"

#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

struct range {
    uintptr_t lo, hi;
};
static struct range skip[8]; /* executable segments of libc and ld.so */
static int nskip;

static atomic_long handled, in_handler_allocs, in_libc;
static atomic_int stop;

static int find_libs(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    const char *n = info->dlpi_name;
    if (!n || (!strstr(n, "libc.so") && !strstr(n, "ld-linux")))
        return 0;
    for (int i = 0; i < info->dlpi_phnum && nskip < 8; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            skip[nskip].lo = info->dlpi_addr + ph->p_vaddr;
            skip[nskip].hi = skip[nskip].lo + ph->p_memsz;
            nskip++;
        }
    }
    return 0;
}

static int pc_in_libc(uintptr_t pc)
{
    for (int i = 0; i < nskip; i++)
        if (pc >= skip[i].lo && pc < skip[i].hi)
            return 1;
    return 0;
}

NOINLINE static void on_usr1(int sig, siginfo_t *si, void *uc_)
{
    (void)sig;
    (void)si;
    ucontext_t *uc = uc_;
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    if (pc_in_libc(pc)) {
        atomic_fetch_add(&in_libc, 1);
    } else {
        size_t n = 24 + (size_t)(atomic_load(&handled) % 500);
        char *p = malloc(n);
        if (p) {
            memset(p, 0x5a, n);
            free(p);
        }
        atomic_fetch_add(&in_handler_allocs, 1);
    }
    atomic_fetch_add(&handled, 1);
}

NOINLINE static void *alloc_loop(void *arg)
{
    (void)arg;
    void *live[64] = {0};
    unsigned long i = 0;
    while (!atomic_load(&stop)) {
        size_t n = 16 + (i * 2654435761u) % 4096;
        unsigned k = (unsigned)(i % 64);
        free(live[k]);
        live[k] = malloc(n);
        if (live[k])
            memset(live[k], (int)(i & 0xff), n < 64 ? n : 64);
        /* some work of its own between calls: fewer rows to record, and
         * signals land in the program as well as in the hooks */
        for (volatile int w = 0; w < 300; w++)
            ;
        i++;
    }
    for (int k = 0; k < 64; k++)
        free(live[k]);
    return NULL;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000;
    dl_iterate_phdr(find_libs, NULL);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) != 0) {
        perror("sigaction");
        return 1;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, alloc_loop, NULL) != 0) {
        fprintf(stderr, "sig_storm: pthread_create failed\n");
        return 1;
    }
    for (long i = 0; i < n; i++) {
        if (pthread_kill(t, SIGUSR1) != 0)
            break;
        while (atomic_load(&handled) <= i)
            sched_yield();
    }
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    printf("sig_storm: signals=%ld handled=%ld\n", n, atomic_load(&handled));
    fprintf(stderr, "sig_storm: handler allocated %ld times, found the thread in libc %ld times (libc/ld.so segments: %d)\n",
            atomic_load(&in_handler_allocs), atomic_load(&in_libc), nskip);
    return 0;
}
