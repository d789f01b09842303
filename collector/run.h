/*
 * run — `perfagent run`: an embedded collector plus one traced command.
 */
#ifndef PA_RUN_H
#define PA_RUN_H

/* How long to wait for agent connections after the command exits (its fork
 * children may still be streaming). */
#define RUN_DRAIN_MS 10000

typedef struct run_opts {
    const char *outdir;      /* reports directory                                */
    const char *malloc_rate; /* PERFAGENT_MALLOC_RATE for the command, or NULL     */
    const char *sysroot;     /* for the symbolizer, may be NULL                  */
    int collector_only;      /* don't preload the agent: CMD connects by itself  */
    int cpu_per_thread;      /* cpu.folded/cpu.svg rooted at thread names        */
} run_opts_t;

/* Runs cmd (argv, NULL-terminated, cmd[0] looked up in PATH) with the agent
 * preloaded and an in-process collector on a private unix socket, waits for
 * it and its agents, prints each process's summary and report paths on
 * stderr.  Returns the exit status for perfagent: the command's own, 128+N
 * when signal N killed it, 127 when it could not be executed, 1 when the
 * collector could not be set up. */
int run_command(const run_opts_t *o, char *const cmd[]);

#endif
