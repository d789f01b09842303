/*
 * heap_untouched.c — what the agent's start leaves in the program's heap
 * (tests/e2e/alloc_api.sh).  Prints, first thing in main, the main arena's
 * bytes in use and its size (mallinfo2(3)): 0 and 0 in a plain run, and
 * must be the same under the agent, whose own start (failed dlsym lookups,
 * the sender thread's DTV, setenv of PERFAGENT_OUTPUT_OWNER) takes nothing
 * from the host's heap.  Then grows the environment by 300 setenv calls
 * (environ, which the agent's setenv may have placed in its own pool, is
 * moved by glibc's realloc), reads every variable back, unsets half,
 * clears the environment and prints how it went:
 *   "at main: in use 0, arena 0"
 *   "env: set 300, read back 300, unset 150, left 0"
 * With the argument "clear": clearenv() first thing, which frees environ
 * when setenv made it (glibc's last_environ): under the agent, the pool
 * block its own setenv made, so the hooks must keep it from the real
 * free in every heap mode.  Prints "cleared: N left".
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h> /* environ (_GNU_SOURCE) */

int main(int argc, char **argv)
{
    struct mallinfo2 mi = mallinfo2();
    char name[32], val[32];
    int set = 0, back = 0, unset = 0, left = 0;
    if (argc > 1 && strcmp(argv[1], "clear") == 0) {
        clearenv();
        for (char **e = environ; e && *e; e++)
            left++;
        printf("cleared: %d left\n", left);
        return 0;
    }
    printf("at main: in use %zu, arena %zu\n", mi.uordblks, mi.arena);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "HU_VAR_%d", i);
        snprintf(val, sizeof(val), "value-%d", i * 7);
        set += setenv(name, val, 1) == 0;
    }
    for (int i = 0; i < 300; i++) {
        const char *v;
        snprintf(name, sizeof(name), "HU_VAR_%d", i);
        snprintf(val, sizeof(val), "value-%d", i * 7);
        v = getenv(name);
        back += v && strcmp(v, val) == 0;
    }
    for (int i = 0; i < 300; i += 2) {
        snprintf(name, sizeof(name), "HU_VAR_%d", i);
        unset += unsetenv(name) == 0 && !getenv(name);
    }
    clearenv();
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "HU_VAR_%d", i);
        left += getenv(name) != NULL;
    }
    printf("env: set %d, read back %d, unset %d, left %d\n", set, back, unset, left);
    return 0;
}
