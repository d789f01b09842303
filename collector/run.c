/*
 * run — `perfagent run`: starts the collector in-process on a unix socket in
 * a fresh private directory, spawns the command with libperfagent.so
 * preloaded and pointed at that socket, and serves until the command has
 * exited and its agents have hung up (at most RUN_DRAIN_MS after the exit).
 * The command's stdio is left alone; perfagent speaks only on stderr.
 */
#include "run.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "outdir.h"
#include "server.h"
#include "util.h"

#define PROG "perfagent"

extern char **environ;

struct run_state {
    pid_t child;
    int exited; /* reaped; status is valid */
    int status; /* waitpid(2) status       */
};

/* ---------------------------------------------------------------------------
 * setting up the command
 * ------------------------------------------------------------------------- */

static int usable_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Finds libperfagent.so: $PERFAGENT_LIB, else next to this executable (the
 * build tree: build/perfagent + build/libperfagent.so), else <bindir>/../lib
 * (an installed tree).  Writes an absolute path into lib (PATH_MAX). */
static int find_agent_lib(char *lib)
{
    const char *env = getenv("PERFAGENT_LIB");
    char self[PATH_MAX], cand[2][PATH_MAX + 32], *slash;
    ssize_t n;
    int i;

    if (env && *env) {
        if (!usable_file(env) || !realpath(env, lib)) {
            char shown[160];
            fprintf(stderr, PROG ": PERFAGENT_LIB=%s: %s\n", util_env_show(env, shown, sizeof(shown)),
                    usable_file(env) ? strerror(errno) : "no such file");
            return -ENOENT;
        }
    } else {
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n < 0) {
            fprintf(stderr, PROG ": /proc/self/exe: %s; set PERFAGENT_LIB\n", strerror(errno));
            return -errno;
        }
        self[n] = '\0';
        slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        snprintf(cand[0], sizeof(cand[0]), "%s/libperfagent.so", self);
        snprintf(cand[1], sizeof(cand[1]), "%s/../lib/libperfagent.so", self);
        for (i = 0; i < 2; i++)
            if (usable_file(cand[i]) && realpath(cand[i], lib))
                break;
        if (i == 2) {
            fprintf(stderr,
                    PROG ": cannot find libperfagent.so (looked for %s and %s); "
                         "build it with 'make' or set PERFAGENT_LIB\n",
                    cand[0], cand[1]);
            return -ENOENT;
        }
    }
    /* ld.so(8): LD_PRELOAD entries are separated by colons or spaces, so
     * such a path would silently preload something else. */
    if (strpbrk(lib, ": ")) {
        fprintf(stderr, PROG ": %s: a path with ':' or ' ' cannot go in LD_PRELOAD\n", lib);
        return -EINVAL;
    }
    return 0;
}

/* The command's environment: ours plus the agent's variables.  Set in our
 * own environment right before the spawn (nothing else in perfagent reads
 * them), which keeps whatever the user exported, including LD_PRELOAD. */
static int set_child_env(const run_opts_t *o, const char *lib, const char *addr)
{
    if (!o->collector_only) {
        const char *old = getenv("LD_PRELOAD");
        char *preload = NULL;
        if (asprintf(&preload, "%s%s%s", lib, old && *old ? ":" : "", old ? old : "") < 0)
            return -ENOMEM;
        setenv("LD_PRELOAD", preload, 1);
        free(preload);
    }
    setenv("PERFAGENT_COLLECTOR", addr, 1);
    /* This collector is the command's alone: a full buffer waits for it
     * rather than drop rows (agent/ring.c, wait mode; README, "Heap (exact
     * mode)").  A standalone collector never gets this: it must not slow
     * the programs it watches. */
    setenv("PERFAGENT_WAIT", "1", 1);
    /* The command (our child) is the run's root process: only its agent
     * says run-wide things on stderr once (agent/init.c claim_tree). */
    char pid[24];
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("PERFAGENT_RUN_PID", pid, 1);
    if (o->malloc_rate)
        setenv("PERFAGENT_MALLOC_RATE", o->malloc_rate, 1);
    return 0;
}

/* ---------------------------------------------------------------------------
 * while it runs
 * ------------------------------------------------------------------------- */

/* SIGCHLD, SIGINT and SIGTERM come in through a signalfd(2) watched by the
 * server loop, so the loop needs no handler and no self-pipe. */
static void on_signal(server_t *srv, int fd, void *arg)
{
    struct run_state *st = arg;
    struct signalfd_siginfo si;

    while (read(fd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGCHLD) {
            if (!st->exited && waitpid(st->child, &st->status, WNOHANG) == st->child) {
                st->exited = 1;
                /* Its agents (and those of fork children that outlived it)
                 * may still be sending their last batches. */
                server_drain(srv, RUN_DRAIN_MS);
            }
        } else if (!st->exited) {
            /* A terminal's ^C reaches the child directly (same foreground
             * process group; the kernel sends it with si_code SI_KERNEL,
             * signal(7)).  Forward only what was sent to us alone, so the
             * child does not see one ^C twice. */
            if (si.ssi_code != SI_KERNEL)
                kill(st->child, (int)si.ssi_signo);
        } else {
            fprintf(stderr, PROG ": %s: not waiting for the remaining agents\n",
                    strsignal((int)si.ssi_signo));
            server_stop(srv);
        }
    }
}

/* ---------------------------------------------------------------------------
 * after
 * ------------------------------------------------------------------------- */

static void print_results(const outdir_t *out)
{
    size_t n = outdir_count(out);
    if (n == 0) {
        fprintf(stderr, PROG ": no agent connected, nothing recorded (a statically linked "
                             "program, or PERFAGENT_DISABLE set?)\n");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const outdir_entry_t *e = outdir_get(out, i);
        if (e->summary && *e->summary) {
            size_t len = strlen(e->summary);
            fputs(e->summary, stderr);
            if (e->summary[len - 1] != '\n')
                fputc('\n', stderr);
        }
        if (e->has_hello)
            fprintf(stderr, PROG ": pid %u (%s): reports in %s/%s/\n", e->pid,
                    e->exe ? e->exe : "?", outdir_path(out), e->dir);
        else
            fprintf(stderr, PROG ": unidentified stream: reports in %s/%s/\n", outdir_path(out),
                    e->dir);
    }
    fprintf(stderr, PROG ": index: %s/index.json\n", outdir_path(out));
}

static int exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 1;
}

int run_command(const run_opts_t *o, char *const cmd[])
{
    char lib[PATH_MAX] = "", tmpdir[PATH_MAX] = "", addr[PATH_MAX + 16];
    char err[SERVER_ERR_LEN > OUTDIR_ERR_LEN ? SERVER_ERR_LEN : OUTDIR_ERR_LEN];
    const char *tmp = getenv("TMPDIR");
    struct run_state st = {.child = -1};
    server_opts_t so = {
        .prog = PROG, .quiet = 1, .sysroot = o->sysroot, .cpu_per_thread = o->cpu_per_thread};
    posix_spawnattr_t attr;
    outdir_t *out = NULL;
    server_t *srv = NULL;
    sigset_t mask, oldmask;
    int rc, sfd = -1, status = 1, masked = 0;

    if (!o->collector_only && find_agent_lib(lib) < 0)
        return 1;
    if (!(out = outdir_new(o->outdir, err))) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    /* A private 0700 directory (mkdtemp(3)) holds the socket: nobody else
     * can even reach the socket file.  sun_path is 108 bytes (unix(7)), so a
     * deep $TMPDIR falls back to /tmp. */
    if (!tmp || !*tmp || strlen(tmp) > 80)
        tmp = "/tmp";
    snprintf(tmpdir, sizeof(tmpdir), "%s/perfagent-XXXXXX", tmp);
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, PROG ": mkdtemp %s: %s\n", tmpdir, strerror(errno));
        tmpdir[0] = '\0';
        goto out;
    }
    snprintf(addr, sizeof(addr), "unix:%s/s", tmpdir);
    so.listen = addr;
    so.out = out;

    /* Block before the spawn so a command that exits at once cannot send
     * SIGCHLD before the signalfd exists; the child gets the old mask back. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, &oldmask);
    masked = 1;
    sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        fprintf(stderr, PROG ": signalfd: %s\n", strerror(errno));
        goto out;
    }
    if (!(srv = server_new(&so, err))) {
        fprintf(stderr, PROG ": %s\n", err);
        goto out;
    }
    if ((rc = server_watch(srv, sfd, on_signal, &st)) < 0 ||
        (rc = set_child_env(o, lib, addr)) < 0) {
        fprintf(stderr, PROG ": %s\n", strerror(-rc));
        goto out;
    }

    /* posix_spawnp(3) reports a failed exec as its return value (glibc
     * waits for the exec in the child), so "cannot execute" needs no pipe. */
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &oldmask);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    rc = posix_spawnp(&st.child, cmd[0], NULL, &attr, cmd, environ);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        fprintf(stderr, PROG ": %s: %s\n", cmd[0], strerror(rc));
        status = 127;
        goto out;
    }

    /* The command has its environment; from here on ours only feeds the
     * symbolizer, which must never reach for the network (see main_cli.c). */
    unsetenv("DEBUGINFOD_URLS");
    rc = server_run(srv);
    if (!st.exited) { /* only when the loop itself failed */
        kill(st.child, SIGTERM);
        while (waitpid(st.child, &st.status, 0) < 0 && errno == EINTR)
            ;
        st.exited = 1;
    }
    print_results(out);
    status = exit_code(st.status);
out:
    server_free(srv); /* unlinks the socket */
    if (tmpdir[0])
        rmdir(tmpdir);
    if (sfd >= 0)
        close(sfd);
    if (masked)
        sigprocmask(SIG_SETMASK, &oldmask, NULL);
    outdir_free(out);
    return status;
}
