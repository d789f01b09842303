/*
 * ctor_fork — libctorfork.so, a library whose constructor forks, for
 * tests/e2e/ctor_fork.sh.  LD_PRELOAD="agent lib": the loader initializes
 * the later object first, so this constructor runs BEFORE the agent's; with
 * "lib agent" it runs after.  CTOR_FORK selects what the constructor does:
 *
 *   daemon  10 x 1000 B from ctor_parent_block, all freed, then fork; the
 *           parent waits for the child and _exit()s with its status (its
 *           stream: 10 allocations, 10 frees, exit code = the child's); the
 *           child returns and runs the program's main().
 *   child   fork first; the child makes 100 x 100 B at ctor_child_block,
 *           frees 50 of them and exit(7)s from inside the constructor (no
 *           destructor runs: __libc_start_main never ran); the parent
 *           continues to main().  Child's stream: 100 allocations of
 *           ctor_child_block plus stdout's buffer, 50 frees, 50 x 100 B live.
 */
#include "wl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void *volatile ctor_fork_sink;

NOINLINE void *ctor_parent_block(void)
{
    void *p = malloc(1000);
    NO_TAIL();
    return p;
}

NOINLINE void *ctor_child_block(void)
{
    void *p = malloc(100);
    NO_TAIL();
    return p;
}

__attribute__((constructor)) static void ctor_fork(void)
{
    const char *mode = getenv("CTOR_FORK");
    int st = 0;
    if (!mode)
        return;
    if (strcmp(mode, "daemon") == 0) {
        for (int i = 0; i < 10; i++) {
            ctor_fork_sink = ctor_parent_block();
            free(ctor_fork_sink);
        }
        pid_t p = fork();
        if (p > 0) {
            waitpid(p, &st, 0);
            _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 99);
        }
    } else if (strcmp(mode, "child") == 0) {
        pid_t p = fork();
        if (p == 0) {
            void *keep[100];
            for (int i = 0; i < 100; i++)
                keep[i] = ctor_child_block();
            for (int i = 0; i < 100; i += 2)
                free(keep[i]);
            for (int i = 1; i < 100; i += 2)
                ctor_fork_sink = keep[i];
            printf("ctor child done\n");
            exit(7);
        }
        waitpid(p, &st, 0);
        printf("ctor child status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        fflush(stdout);
    }
}
